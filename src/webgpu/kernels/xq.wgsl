// xq.wgsl — writing a prompt chunk's product input in the quantised form mm_sg.wgsl reads (see
// quant.wgsl): per token and 128-block, q = round(x / d) with d = max|x| / 32767, as two int8
// planes (hi = q >> 8 at word 0, lo = (q & 255) - 128 at word LO) and the scale (at word SC).
// Used by quant.wgsl and, fused, by rmsnorm.wgsl and swiglu.wgsl (QOUT); only where mm_sg runs,
// i.e. on 32-wide subgroups (red_sg.wgsl: lanes_max is the subgroup's max). The kernel declares
// `XQ: array<u32>` (read_write).

override LO: u32 = 0u;
override SC: u32 = 0u;

// A 32-lane subgroup's block: lane `lane` holds inputs 4 lane .. 4 lane + 3 of block b of token
// t (rows of `cols` inputs); ok: this subgroup has a block to write. Uniform control flow.
fn xq_put(x: vec4<f32>, t: u32, b: u32, cols: u32, lane: u32, ok: bool, tid: u32) {
  let a = abs(x);
  let amax = lanes_max(max(max(a.x, a.y), max(a.z, a.w)), tid);
  let sc = q16_scale(amax);
  if (ok) {
    let q = q16(x, sc.y);
    let o = t * (cols / 4u) + b * 32u + lane;
    XQ[o] = q16_hi(q);
    XQ[LO + o] = q16_lo(q);
    if (lane == 0u) { XQ[SC + t * (cols / 128u) + b] = bitcast<u32>(sc.x); }
  }
}
