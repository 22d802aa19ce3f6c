// attn_xq.wgsl — the output of attention.wgsl written quantised (kernel `attention_q`, with xq.wgsl;
// appended by web/gpu.mjs): for HD = HDR = 128 a head's output row is one 128-block of the Wo
// product's input, and its 32 dim groups dg are 32 consecutive invocations, so the block goes
// out as quant.wgsl would write it (xq_store; LO, SC, XQ_WG as for quant). The block's max is the
// subgroup's on 32-wide subgroups, else taken through attention's ps, free by now (xq.wgsl's own
// buffer would take the kernel over WebGPU's default 16 KiB). Saves the quant dispatch and the
// f32 round trip of the attention output.

@group(0) @binding(2) var<storage, read_write> XQ: array<u32>;

// The largest v over the 32 consecutive invocations of tid's row; uniform control flow.
fn attn_amax(v: f32, tid: u32) -> f32 {
  if (!XQ_WG) { return lanes_max(v, tid); }
  workgroupBarrier();  // the previous row's reads of ps are done
  ps[tid].x = v;
  workgroupBarrier();
  for (var s = 16u; s > 0u; s = s >> 1u) {
    if (tid % 32u < s) { ps[tid].x = max(ps[tid].x, ps[tid + s].x); }
    workgroupBarrier();
  }
  return ps[tid - tid % 32u].x;
}

fn attn_store(v: vec4<f32>, t: u32, h: u32, dg: u32, ok: bool, tid: u32) {
  let a = abs(v);
  xq_store(v, attn_amax(max(max(a.x, a.y), max(a.z, a.w)), tid), t, h, P.n_head * HD, dg, ok);
}
