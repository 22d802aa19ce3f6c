// qo.wgsl — the producer side of a pre-quantised decode vector (format: qx.wgsl, "pre-quantised
// inputs"): a kernel that computes whole 32-element blocks of a vector writes them quantised for
// the next product as well, exactly as qx_block would (common.wgsl's q16). The kernel
// declares `QO: array<u32>` (read_write), puts each block's values times the next norm's weights
// in qv_y and the raw values in qv_r, and after a barrier calls qv_put from the invocations
// tid < 8 * blocks.

override QVB: u32 = 1u;  // blocks a workgroup produces
var<workgroup> qv_y: array<vec4<f32>, QVB * 8u>;  // values to quantise
var<workgroup> qv_r: array<vec4<f32>, QVB * 8u>;  // raw values (their sum of squares)

// Invocation tid (< 8 * QVB) writes word tid % 8 (elements 8 k + tid % 8: qx.wgsl) of both
// halves of local block tid / 8 as global block b; the first of each 8 also the block's scale
// and sums.
fn qv_put(tid: u32, b: u32) {
  let i = (tid / 8u) * 8u;
  let j = tid % 8u;
  var amax = 0.0;
  for (var k = 0u; k < 8u; k++) {
    let a = abs(qv_y[i + k]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  let sc = q16_scale(amax);
  let c = j & 3u;
  let h = i + (j >> 2u);
  // elements 8 k + j, k < 4
  let q = q16(vec4<f32>(qv_y[h][c], qv_y[h + 2u][c], qv_y[h + 4u][c], qv_y[h + 6u][c]), sc.y);
  let o = b * 20u;
  QO[o + j] = q16_hi(q);
  QO[o + 8u + j] = q16_lo(q);
  if (j == 0u) {
    var sum = 0;
    var ss = 0.0;
    for (var k = 0u; k < 8u; k++) {
      let qk = q16(qv_y[i + k], sc.y);
      sum += qk.x + qk.y + qk.z + qk.w;
      let r = qv_r[i + k];
      ss += dot(r, r);
    }
    QO[o + 16u] = bitcast<u32>(sc.x);
    QO[o + 17u] = bitcast<u32>(sum);
    QO[o + 18u] = bitcast<u32>(ss);
    QO[o + 19u] = 0u;
  }
}
