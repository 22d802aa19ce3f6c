// rmsnorm.wgsl — h[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w for each token t of a prompt chunk
// (one workgroup per token); rows of P.cols floats, norm weights at NW[norm_off]. QOUT (where
// the products run on subgroup matrices): h goes straight into the quantised input of mm_sg.wgsl
// (xq.wgsl, one 32-wide subgroup a 128-block) instead of Y, which saves the quant pass.

override QOUT: bool = false;

@group(0) @binding(0) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> Y: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> NW: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> XQ: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t = wg.x;
  if (t >= S.n) { return; }
  let n4 = P.cols / 4u;
  let b = t * n4;
  var ss = 0.0;
  for (var i = tid; i < n4; i += 256u) { let v = X[b + i]; ss += dot(v, v); }
  ss = wg_sum(ss, tid);
  let r = inverseSqrt(ss / f32(P.cols) + P.eps);
  if (QOUT) {
    let nb = P.cols / 128u;
    for (var k = 0u; k < (nb + 7u) / 8u; k++) {  // subgroup tid / 32 takes blocks tid / 32 + 8 k
      let blk = k * 8u + tid / 32u;
      let ok = blk < nb;
      let i = min(blk, nb - 1u) * 32u + tid % 32u;
      xq_put(X[b + i] * r * NW[P.norm_off / 4u + i], t, blk, P.cols, tid % 32u, ok, tid);
    }
    return;
  }
  for (var i = tid; i < n4; i += 256u) { Y[b + i] = X[b + i] * r * NW[P.norm_off / 4u + i]; }
}
