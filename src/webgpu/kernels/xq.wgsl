// xq.wgsl — writing a prompt chunk's product input in the quantised form mm_sg.wgsl reads (see
// quant.wgsl): per token and 128-block, q = round(x / d) with d = max|x| / 32767, as two int8
// planes (hi = q >> 8 at word 0, lo = (q & 255) - 128 at word LO) and the scale (at word SC).
// Used by quant.wgsl and, fused, by rmsnorm.wgsl and swiglu.wgsl (QOUT), for mm_sg.wgsl and
// mm_dp.wgsl. A block's max is over 32 consecutive invocations: the subgroup's (red_sg.wgsl's
// lanes_max) on 32-wide subgroups, else (XQ_WG) through workgroup memory. The kernel declares
// `XQ: array<u32>` (read_write).

override LO: u32 = 0u;
override SC: u32 = 0u;
override XQ_WG: bool = false;

var<workgroup> xq_red: array<f32, 256>;

// The largest v over the 32 consecutive invocations of tid's block; uniform control flow.
fn xq_amax(v: f32, tid: u32) -> f32 {
  if (!XQ_WG) { return lanes_max(v, tid); }
  xq_red[tid] = v;
  workgroupBarrier();
  for (var s = 16u; s > 0u; s = s >> 1u) {
    if (tid % 32u < s) { xq_red[tid] = max(xq_red[tid], xq_red[tid + s]); }
    workgroupBarrier();
  }
  let r = xq_red[tid - tid % 32u];
  workgroupBarrier();
  return r;
}

// A 32-lane subgroup's block: lane `lane` holds inputs 4 lane .. 4 lane + 3 of block b of token
// t (rows of `cols` inputs); ok: this subgroup has a block to write. Uniform control flow.
fn xq_put(x: vec4<f32>, t: u32, b: u32, cols: u32, lane: u32, ok: bool, tid: u32) {
  let a = abs(x);
  xq_store(x, xq_amax(max(max(a.x, a.y), max(a.z, a.w)), tid), t, b, cols, lane, ok);
}

// xq_put's writing, given the block's largest |x| (attn_xq.wgsl takes the max itself).
fn xq_store(x: vec4<f32>, amax: f32, t: u32, b: u32, cols: u32, lane: u32, ok: bool) {
  let sc = q16_scale(amax);
  if (ok) {
    let q = q16(x, sc.y);
    let o = t * (cols / 4u) + b * 32u + lane;
    XQ[o] = q16_hi(q);
    XQ[LO + o] = q16_lo(q);
    if (lane == 0u) { XQ[SC + t * (cols / 128u) + b] = bitcast<u32>(sc.x); }
  }
}
