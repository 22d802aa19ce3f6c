// dq_mm.wgsl — the generic plan's matrix-matrix product (prompt chunks): Y[t] = W X[t] (+ b)
// (+= into Y) for weights of any type (dq.wgsl, constant WT: the variants mm_<type>). An
// invocation owns one row and TT tokens: each 4 weights are decoded once for all of them. Grid:
// ceil(rows / 64) x ceil(n / TT). X rows at in_off + t in_stride, Y rows at out_off + t out_stride
// (+ row0 + r for a part of a split matrix); P.flags as in dq_mv.wgsl (bit 0 bias, bit 1 residual,
// bit 3 per-tensor scale).

const TT: u32 = 8u;

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.x * 64u + lid;
  let t0 = wg.y * TT;
  if (r >= P.rows || t0 >= S.n) { return; }
  let nt = min(TT, S.n - t0);
  let rb = P.w_off + r * P.row_bytes;
  var acc: array<f32, TT>;
  for (var k = 0u; k < P.cols; k += 4u) {
    let w = dq(rb, k);
    for (var j = 0u; j < nt; j++) { acc[j] += dot(w, X[(P.in_off + (t0 + j) * P.in_stride + k) / 4u]); }
  }
  var b = 0.0;
  if ((P.flags & 1u) != 0u) { b = VB[P.norm_off + P.row0 + r]; }
  var s = 1.0;
  if ((P.flags & 8u) != 0u) { s = VB[P.norm2_off]; }
  for (var j = 0u; j < nt; j++) {
    acc[j] *= s;
    let o = P.out_off + (t0 + j) * P.out_stride + P.row0 + r;
    if ((P.flags & 2u) != 0u) { Y[o] += acc[j] + b; } else { Y[o] = acc[j] + b; }
  }
}
