// qo.wgsl — the producer side of a pre-quantised decode vector (format: qx.wgsl, "pre-quantised
// inputs"): a kernel that computes whole 32-element blocks of a vector writes them quantised for
// the next product as well, exactly as qx_block would (16-bit q, d = max|x| / 32767). The kernel
// declares `QO: array<u32>` (read_write), puts each block's values times the next norm's weights
// in qv_y and the raw values in qv_r, and after a barrier calls qv_put from the invocations
// tid < 8 * blocks.

override QVB: u32 = 1u;  // blocks a workgroup produces
var<workgroup> qv_y: array<vec4<f32>, QVB * 8u>;  // values to quantise
var<workgroup> qv_r: array<vec4<f32>, QVB * 8u>;  // raw values (their sum of squares)

// Invocation tid (< 8 * QVB) writes word tid % 8 of both halves of local block tid / 8 as global
// block b; the first of each 8 also the block's scale and sums.
fn qv_put(tid: u32, b: u32) {
  let i = (tid / 8u) * 8u;
  let j = tid % 8u;
  var amax = 0.0;
  for (var k = 0u; k < 8u; k++) {
    let a = abs(qv_y[i + k]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  let d = amax / 32767.0;
  var inv = 0.0;
  if (d > 0.0) { inv = 1.0 / d; }
  let q = clamp(vec4<i32>(round(qv_y[i + j] * inv)), vec4<i32>(-32767), vec4<i32>(32767));
  let o = b * 20u;
  QO[o + j] = pack4xI8(q >> vec4<u32>(8u));
  QO[o + 8u + j] = pack4xI8((q & vec4<i32>(255)) - vec4<i32>(128));
  if (j == 0u) {
    var sum = 0;
    var ss = 0.0;
    for (var k = 0u; k < 8u; k++) {
      let qk = clamp(vec4<i32>(round(qv_y[i + k] * inv)), vec4<i32>(-32767), vec4<i32>(32767));
      sum += qk.x + qk.y + qk.z + qk.w;
      let r = qv_r[i + k];
      ss += dot(r, r);
    }
    QO[o + 16u] = bitcast<u32>(d);
    QO[o + 17u] = bitcast<u32>(sum);
    QO[o + 18u] = bitcast<u32>(ss);
    QO[o + 19u] = 0u;
  }
}
