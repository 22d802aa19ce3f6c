// norm.wgsl — the generic plan's norms, one workgroup per vector: RMSNorm y = x / sqrt(mean(x^2)
// + eps) w, or with LN LayerNorm y = (x - mean) / sqrt(var + eps) w + b. Vector h of token t
// (grid h x t, t < S.n) has P.cols floats at in_off + t in_stride + h cols and goes to out_off +
// t out_stride + h cols of Y, or back into X with INPLACE (QK-norm, sub-norms). Weights at
// VB[norm_off], LayerNorm's bias at VB[norm2_off]; for QK-norm (QK) vectors h >= n_head are k
// heads and take the weights at norm2_off.

override LN: bool = false;
override INPLACE: bool = false;
override QK: bool = false;

@group(0) @binding(0) var<storage, read_write> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<storage, read> VB: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let t = wg.y;
  if (t >= S.n) { return; }
  let n = P.cols;
  let xb = P.in_off + t * P.in_stride + h * n;
  let yb = P.out_off + t * P.out_stride + h * n;
  var mean = 0.0;
  if (LN) {
    var s = 0.0;
    for (var i = tid; i < n; i += 256u) { s += X[xb + i]; }
    mean = wg_sum(s, tid) / f32(n);
  }
  var ss = 0.0;
  for (var i = tid; i < n; i += 256u) { let v = X[xb + i] - mean; ss += v * v; }
  let r = 1.0 / sqrt(wg_sum(ss, tid) / f32(n) + P.eps);
  var wo = P.norm_off;
  if (QK && h >= P.n_head) { wo = P.norm2_off; }
  for (var i = tid; i < n; i += 256u) {
    var y = (X[xb + i] - mean) * r * VB[wo + i];
    if (LN) { y += VB[P.norm2_off + i]; }
    if (INPLACE) { X[xb + i] = y; } else { Y[yb + i] = y; }
  }
}
