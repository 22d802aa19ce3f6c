// dq_mmt.wgsl — the generic plan's matrix-matrix product (prompt chunks), tiled: Y[t] = W X[t]
// (+ b) (+= into Y) for weights of any type (dq.wgsl, constant WT: the variants mmt_<type>).
// A workgroup of 256 owns a tile of 64 rows x 64 tokens; per step of 32 columns it stages the
// tile's weights, decoded once (dq, 2 vec4 an invocation), and its inputs (2 vec4 an invocation)
// in workgroup memory, then each invocation accumulates 4 rows x 4 tokens (rows rg + 16 i, tokens
// tg + 16 j) from there: 16 four-wide dots per 8 staged reads. Grid: ceil(rows / 64) x
// ceil(n / 64). X rows at in_off + t in_stride, Y rows at out_off + t out_stride (+ row0 + r of
// a split matrix's part); P.flags as in dq_mv.wgsl (bit 0 bias, bit 1 residual, bit 3 per-tensor
// scale). Needs cols % 4 == 0.

const BM: u32 = 64u;  // rows a tile
const BN: u32 = 64u;  // tokens a tile
const SW: u32 = 9u;   // vec4s a staged row: 8 (32 columns) and one of padding

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

var<workgroup> ws: array<vec4<f32>, 576>;  // BM x SW
var<workgroup> xs: array<vec4<f32>, 576>;  // BN x SW

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let r0 = wg.x * BM;
  let t0 = wg.y * BN;
  if (t0 >= S.n) { return; }
  let rg = tid % 16u;
  let tg = tid / 16u;
  var acc: array<vec4<f32>, 4>;  // acc[i][j]: row rg + 16 i, token tg + 16 j
  for (var k0 = 0u; k0 < P.cols; k0 += 32u) {
    for (var h = 0u; h < 2u; h++) {
      let idx = tid + 256u * h;
      let sr = idx / 8u;         // staged row (weights) and token (inputs)
      let k = k0 + (idx % 8u) * 4u;
      var w = vec4<f32>(0.0);
      if (r0 + sr < P.rows && k < P.cols) { w = dq(P.w_off + (r0 + sr) * P.row_bytes, k); }
      ws[sr * SW + idx % 8u] = w;
      var x = vec4<f32>(0.0);
      if (t0 + sr < S.n && k < P.cols) { x = X[(P.in_off + (t0 + sr) * P.in_stride + k) / 4u]; }
      xs[sr * SW + idx % 8u] = x;
    }
    workgroupBarrier();
    for (var k4 = 0u; k4 < 8u; k4++) {
      let x0 = xs[tg * SW + k4];
      let x1 = xs[(tg + 16u) * SW + k4];
      let x2 = xs[(tg + 32u) * SW + k4];
      let x3 = xs[(tg + 48u) * SW + k4];
      for (var i = 0u; i < 4u; i++) {
        let w = ws[(rg + 16u * i) * SW + k4];
        acc[i] += vec4<f32>(dot(w, x0), dot(w, x1), dot(w, x2), dot(w, x3));
      }
    }
    workgroupBarrier();
  }
  var s = 1.0;
  if ((P.flags & 8u) != 0u) { s = VB[P.norm2_off]; }
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + rg + 16u * i;
    if (r >= P.rows) { continue; }
    var b = 0.0;
    if ((P.flags & 1u) != 0u) { b = VB[P.norm_off + P.row0 + r]; }
    for (var j = 0u; j < 4u; j++) {
      let t = t0 + tg + 16u * j;
      if (t >= S.n) { continue; }
      let o = P.out_off + t * P.out_stride + P.row0 + r;
      let y = acc[i][j] * s + b;
      if ((P.flags & 2u) != 0u) { Y[o] += y; } else { Y[o] = y; }
    }
  }
}
