// dq_mv.wgsl — the generic plan's matrix-vector product (decode): y = W x (+ b) (+= into y) for
// weights of any type (dq.wgsl, the pipeline constant WT: the variants mv_<type>). TPR
// invocations share a row (4 elements at a time, then lanes_sum), 256 / TPR rows a workgroup.
// P.flags: bit 0 adds the bias VB[norm_off + row0 + r]; bit 1 accumulates into Y (residual);
// bit 2 takes the input row of token S.last (the output head after a prompt chunk), else row 0;
// bit 3 multiplies the product by the per-tensor scale VB[norm2_off] (BitNet) before the bias.
// Rows of a split matrix part write Y[out_off + row0 + r].

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let r = wg.x * (256u / TPR) + tid / TPR;
  let lane = tid % TPR;
  let rr = min(r, P.rows - 1u);
  let t = select(0u, S.last, (P.flags & 4u) != 0u);
  let xb = (P.in_off + t * P.in_stride) / 4u;
  let rb = P.w_off + rr * P.row_bytes;
  var acc = 0.0;
  for (var k = lane * 4u; k < P.cols; k += TPR * 4u) { acc += dot(dq(rb, k), X[xb + k / 4u]); }
  acc = lanes_sum(acc, tid);
  if (r < P.rows && lane == 0u) {
    var y = acc;
    if ((P.flags & 8u) != 0u) { y *= VB[P.norm2_off]; }
    if ((P.flags & 1u) != 0u) { y += VB[P.norm_off + P.row0 + r]; }
    let o = P.out_off + P.row0 + r;
    if ((P.flags & 2u) != 0u) { Y[o] += y; } else { Y[o] = y; }
  }
}
