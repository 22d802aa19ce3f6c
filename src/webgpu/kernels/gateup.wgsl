// gateup.wgsl — the feed-forward entry for one token (decode): with h = RMSNorm(x) * ffn_norm,
// y[i] = silu(gate_i . h) * (up_i . h) for i < n_ff. The input comes pre-quantised (qx.wgsl; the
// Wo kernel wrote x * ffn_norm that way, so only 1 / rms is left to apply, from the blocks' sums
// of squares), and the output leaves pre-quantised too (qo.wgsl): the down product reads nothing
// else. Gate and up rows sit back to back in one matrix of 2 n_ff rows (gate rows first), so one
// dispatch does the norm, both products and SwiGLU. A workgroup takes 32 outputs (ROWS = 32, one
// output block; n_ff a multiple of 32); a group of TPR invocations takes 4 outputs (8 rows) at a
// time, each lane every TPR-th 32-weight word (matvec.wgsl). PF_WG: the grid has PF_WG workgroups
// more, which only read words PF_A0 .. PF_A0 + PF_AN - 1 of PFW (the next layer's [q|k|v] weights),
// one a 32-byte sector, so that the next layer's first product finds them in L2.

override ROWS: u32 = 32u;
override KW: u32 = 0u;      // 32-weight words a row when fixed (cols / 32), 0: from P.cols (matvec.wgsl)
override PF_WG: u32 = 0u;   // prefetching workgroups after the product's (0: none)
override PF_A0: u32 = 0u;   // first word of PFW they read
override PF_AN: u32 = 0u;   // words of PFW they cover

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> QI: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> QO: array<u32>;
@group(0) @binding(3) var<storage, read> PFW: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

// This lane's shares of gate rows r0 .. r0 + 3 (clamped) and of the matching up rows; no early
// exit, so that every iteration's loads can be issued at once.
fn rows_part(r0: u32, lane: u32) -> array<vec4<f32>, 2> {
  let nw = select(p_cols() / 32u, KW, KW != 0u);
  let g = rows4(r0);
  let u = g + vec4<u32>(p_rows() * p_rb());
  var ag = vec4<f32>(0.0);
  var au = vec4<f32>(0.0);
  for (var it = 0u; it < (nw + TPR - 1u) / TPR; it++) {
    let w = min(lane + it * TPR, nw - 1u);
    let q = qv_load(w);
    let bo = (w >> 2u) * 18u;
    let wo = bo + 2u + (w & 3u) * 4u;
    let dg = vec4<f32>(wscale(g.x + bo), wscale(g.y + bo), wscale(g.z + bo), wscale(g.w + bo));
    let du = vec4<f32>(wscale(u.x + bo), wscale(u.y + bo), wscale(u.z + bo), wscale(u.w + bo));
    let sg = vec4<f32>(f32(qdot(w32(g.x + wo), q)), f32(qdot(w32(g.y + wo), q)), f32(qdot(w32(g.z + wo), q)),
                       f32(qdot(w32(g.w + wo), q)));
    let su = vec4<f32>(f32(qdot(w32(u.x + wo), q)), f32(qdot(w32(u.y + wo), q)), f32(qdot(w32(u.z + wo), q)),
                       f32(qdot(w32(u.w + wo), q)));
    let on = lane + it * TPR < nw;
    ag += select(vec4<f32>(0.0), dg * sg * q.d, on);
    au += select(vec4<f32>(0.0), du * su * q.d, on);
  }
  return array<vec4<f32>, 2>(ag, au);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let nb = (p_rows() + ROWS - 1u) / ROWS;
  if (PF_WG != 0u && wg.x >= nb) {
    var t = 0u;  // a prefetching workgroup (matvec.wgsl's PF_WG)
    for (var i = ((wg.x - nb) * 256u + tid) * 8u; i < PF_AN; i += PF_WG * 2048u) { t ^= PFW[PF_A0 + i]; }
    if (P.rows == 0u && t == 1u) { QO[0] = 0u; }
    return;
  }
  let groups = 256u / TPR;
  let lane = tid % TPR;
  let grp = tid / TPR;
  let nw = p_cols() / 32u;
  var ss = 0.0;
  for (var w = lane; w < nw; w += TPR) { ss += qv_ssq(w); }
  let rs = inverseSqrt(lanes_sum(ss, tid) / f32(p_cols()) + P.eps);
  for (var k = 0u; k < (ROWS + groups * 4u - 1u) / (groups * 4u); k++) {
    let rl = (k * groups + grp) * 4u;
    let part = rows_part(wg.x * ROWS + rl, lane);
    let g = lanes_sum4(part[0], tid) * rs;
    let u = lanes_sum4(part[1], tid) * rs;
    let y = g / (vec4<f32>(1.0) + exp(-g)) * u;
    if (lane == 0u && rl < 32u) {
      qv_y[rl / 4u] = y;
      qv_r[rl / 4u] = y;
    }
  }
  workgroupBarrier();
  if (S.n == 0u) { return; }  // (no token; checked last, so that no load waits for it)
  if (tid < 8u) { qv_put(tid, wg.x); }
}
