// gateup.wgsl — the feed-forward entry for one token (decode): h = RMSNorm(x) * ffn_norm
// (quantised in workgroup memory as matvec.wgsl does, qx.wgsl), then
// y[i] = silu(gate_i . h) * (up_i . h) for i < n_ff. Gate and up rows sit back to back in one
// matrix of 2 n_ff rows (gate rows first), so one dispatch does norm, both products and SwiGLU.
// Work is split as in matvec.wgsl: a group of TPR invocations takes 4 outputs (8 rows) at a time.

override ROWS: u32 = 32u;
override KW: u32 = 0u;      // 32-weight words a row when fixed (cols / 32), 0: from P.cols (matvec.wgsl)

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> NW: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

// This lane's shares of gate rows r0 .. r0 + 3 (clamped) and of the matching up rows.
fn rows_part(r0: u32, lane: u32) -> array<vec4<f32>, 2> {
  let nw = select(P.cols / 32u, KW, KW != 0u);
  let last = P.rows - 1u;
  let g = vec4<u32>(min(r0, last), min(r0 + 1u, last), min(r0 + 2u, last), min(r0 + 3u, last)) * P.row_bytes + P.w_off;
  let u = g + vec4<u32>(P.rows * P.row_bytes);
  var ag = vec4<f32>(0.0);
  var au = vec4<f32>(0.0);
  for (var it = 0u; it < (nw + TPR - 1u) / TPR; it++) {
    let w = lane + it * TPR;
    if (w >= nw) { break; }
    let q = qx_load(w);
    let bo = (w >> 2u) * 18u;
    let wo = bo + 2u + (w & 3u) * 4u;
    let dg = vec4<f32>(wscale(g.x + bo), wscale(g.y + bo), wscale(g.z + bo), wscale(g.w + bo));
    let du = vec4<f32>(wscale(u.x + bo), wscale(u.y + bo), wscale(u.z + bo), wscale(u.w + bo));
    let sg = vec4<f32>(f32(qdot(w32(g.x + wo), q)), f32(qdot(w32(g.y + wo), q)), f32(qdot(w32(g.z + wo), q)),
                       f32(qdot(w32(g.w + wo), q)));
    let su = vec4<f32>(f32(qdot(w32(u.x + wo), q)), f32(qdot(w32(u.y + wo), q)), f32(qdot(w32(u.z + wo), q)),
                       f32(qdot(w32(u.w + wo), q)));
    ag += dg * sg * q.d;
    au += du * su * q.d;
  }
  return array<vec4<f32>, 2>(ag, au);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  if (S.n == 0u) { return; }
  let groups = 256u / TPR;
  let lane = tid % TPR;
  let grp = tid / TPR;
  let nk = (ROWS + groups * 4u - 1u) / (groups * 4u);
  let nw = select(P.cols / 32u, KW, KW != 0u);
  var touched = 0u;  // the weights first: their loads overlap the input's staging
  for (var k = 0u; k < nk; k++) {
    let r0 = wg.x * ROWS + (k * groups + grp) * 4u;
    let last = P.rows - 1u;
    let g = vec4<u32>(min(r0, last), min(r0 + 1u, last), min(r0 + 2u, last), min(r0 + 3u, last)) * P.row_bytes + P.w_off;
    touched ^= w_touch(g, nw, lane) ^ w_touch(g + vec4<u32>(P.rows * P.row_bytes), nw, lane);
  }
  var ss = 0.0;
  for (var i = tid; i < P.cols / 4u; i += 256u) { let v = X[i]; ss += dot(v, v); }
  ss = wg_sum(ss, tid);
  let rs = inverseSqrt(ss / f32(P.cols) + P.eps);
  for (var b = tid; b < P.cols / 32u; b += 256u) {
    var xs: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) { xs[i] = X[b * 8u + i] * rs * NW[P.norm_off / 4u + b * 8u + i]; }
    qx_block(b, xs);
  }
  workgroupBarrier();
  for (var k = 0u; k < nk; k++) {
    let rl = (k * groups + grp) * 4u;
    let part = rows_part(wg.x * ROWS + rl, lane);
    let g = lanes_sum4(part[0], tid);
    let u = lanes_sum4(part[1], tid);
    for (var j = 0u; j < 4u; j++) {
      let r = wg.x * ROWS + rl + j;
      if (lane == 0u && rl + j < ROWS && r < P.rows) { Y[r] = g[j] / (1.0 + exp(-g[j])) * u[j]; }
    }
  }
  if (P.rows == 0u && touched == 1u) { Y[0] = 0.0; }  // never: keeps the touch loads
}
