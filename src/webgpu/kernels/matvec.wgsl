// matvec.wgsl — y = W h for one input row (decode): Q1_0 weights against the input quantised to 16
// bits per element (qx.wgsl: two dot4I8Packed per 4 weights instead of a float select and add per
// weight). The input comes either pre-quantised (QIN: the producer wrote it in qx.wgsl's block
// form, each lane loads the blocks it needs straight into registers; with NORM the 1 / rms comes
// from the blocks' sums of squares, the norm weights are already in) or is staged whole by every
// workgroup in workgroup memory: NORM: h = RMSNorm(x) * norm weights (reduced here: no separate
// pass); COMBINE: the input is the attention of one token as split partials (attn_dec.wgsl:
// PART[h][s] = {m, l, 0, 0, o[HD]}, HD + 4 floats, S = the step's splits), merged here (one pass
// over a head's splits per 32-element block). Then a workgroup computes ROWS rows: invocations form
// groups of TPR that share rows, a group takes 4 rows at a time, each lane takes every TPR-th
// 32-weight word and loads its quantised inputs once for the 4 rows, and lanes_sum4 adds the
// group's partial sums. RESID: y += W h (the residual add, in place). QOUT (ROWS = 32, rows a
// multiple of 32): the workgroup's 32 outputs times the norm weights at norm2_off are also written
// pre-quantised to QO, as block (row0 + first row) / 32, for the next product (qo.wgsl). LASTROW:
// the input row is S.last (the last token of a prompt chunk). Output row r goes to
// Y[out_off + row0 + r] (row0: first row of this part of a split matrix). ARGMAX: the workgroup also writes the best
// (order-preserving key, row) of its rows to AM[row0 / ROWS + workgroup] (the output head:
// sample.wgsl reduces these instead of scanning the whole vocabulary). PF_WG: the grid has PF_WG
// workgroups more than the product's; they only read words PF_A0 .. PF_A0 + PF_AN - 1 of W, one
// word per 32-byte sector, so that the later dispatches whose weights lie there (the decode step's
// next products, same layer buffer) find them in L2 instead of waiting for device memory.

override ROWS: u32 = 32u;
override NORM: bool = false;
override RESID: bool = false;
override LASTROW: bool = false;
override COMBINE: bool = false;
override HD: u32 = 128u;    // head dimension (COMBINE; a multiple of 32)
override ARGMAX: bool = false;
override QIN: bool = false;
override QOUT: bool = false;
override QST: bool = false; // QIN, staged: the workgroup first copies the pre-quantised input into
                            // workgroup memory (QXW = cols / 4) while its weights' loads are on
                            // their way; then each lane holds only its weights in registers
                            // (long rows, the down product: 3x the loads a lane, a register
                            // batch each, when the input blocks also came from memory)
override PF_WG: u32 = 0u;   // prefetching workgroups after the product's (0: none)
override PF_A0: u32 = 0u;   // first word of W they read
override PF_AN: u32 = 0u;   // words of W they cover
override KW: u32 = 0u;      // 32-weight words a row when fixed (cols / 32), 0: from P.cols. A
                            // constant trip count lets the compiler unroll the word loop and
                            // issue all its weight loads at once (the loop is latency-bound).

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> NW: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> AM: array<u32>;  // [slot][2] (ARGMAX)
@group(0) @binding(5) var<storage, read> QI: array<vec4<u32>>;    // pre-quantised input (QIN)
@group(0) @binding(6) var<storage, read_write> QO: array<u32>;    // pre-quantised output (QOUT)
@group(0) @binding(7) var<uniform> P: Params;
@group(0) @binding(8) var<uniform> S: Step;

var<workgroup> ys: array<f32, ROWS>;

// Block b (32 elements, within one head: HD is a multiple of 32) of the attention output, merged
// from the head's partials in one pass (an online softmax over the splits): each split's {m, l}
// and its 8 vec4s are loaded together, so the merge costs one round trip a split and no barrier.
fn merged_block(b: u32) -> array<vec4<f32>, 8> {
  let ns = S.splits;
  let rec = HD / 4u + 1u;  // vec4s per partial
  let h = (b * 32u) / HD;
  let d4 = (b * 8u) % (HD / 4u);
  var mx = -3.0e38;
  var den = 0.0;
  var num: array<vec4<f32>, 8>;
  for (var s = 0u; s < ns; s++) {
    let base = (h * ns + s) * rec;
    let ml = X[base];
    var o: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) { o[i] = X[base + 1u + d4 + i]; }
    let mn = max(mx, ml.x);
    let a = exp(mx - mn);
    let c = exp(ml.x - mn);
    den = den * a + c * ml.y;
    for (var i = 0u; i < 8u; i++) { num[i] = num[i] * a + c * o[i]; }
    mx = mn;
  }
  let r = 1.0 / den;
  for (var i = 0u; i < 8u; i++) { num[i] *= r; }
  return num;
}

// The quantised input block of word w: staged in workgroup memory, or pre-quantised (QIN).
fn qblock(w: u32) -> QBlock {
  if (QIN && !QST) { return qv_load(w); }
  return qx_load(w);
}

// This lane's share of dot(W[r], h) for rows r0 .. r0 + 3 (clamped to the matrix). No early exit:
// every iteration's loads can be issued before the first product.
fn rows_part(r0: u32, lane: u32) -> vec4<f32> {
  let nw = select(p_cols() / 32u, KW, KW != 0u);
  let a = rows4(r0);
  var acc = vec4<f32>(0.0);
  for (var it = 0u; it < (nw + TPR - 1u) / TPR; it++) {
    let w = min(lane + it * TPR, nw - 1u);
    let q = qblock(w);
    let bo = (w >> 2u) * 18u;
    let wo = bo + 2u + (w & 3u) * 4u;
    let d = vec4<f32>(wscale(a.x + bo), wscale(a.y + bo), wscale(a.z + bo), wscale(a.w + bo));
    let s = vec4<f32>(f32(qdot(w32(a.x + wo), q)), f32(qdot(w32(a.y + wo), q)), f32(qdot(w32(a.z + wo), q)),
                      f32(qdot(w32(a.w + wo), q)));
    acc += select(vec4<f32>(0.0), d * s * q.d, lane + it * TPR < nw);
  }
  return acc;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let nb = (p_rows() + ROWS - 1u) / ROWS;
  if (PF_WG != 0u && wg.x >= nb) {
    // a prefetching workgroup: its loads are independent and all in flight at once; the value
    // only keeps them alive (the guard on the uniform P.rows is never true for a product)
    var t = 0u;
    for (var i = ((wg.x - nb) * 256u + tid) * 8u; i < PF_AN; i += PF_WG * 2048u) { t ^= W[PF_A0 + i]; }
    if (P.rows == 0u && t == 1u) { Y[0] = 0.0; }
    return;
  }
  var x4 = P.in_off / 4u;
  if (LASTROW) { x4 += S.last * (P.in_stride / 4u); }
  var rs = 1.0;
  let lane = tid % TPR;
  var touched = 0u;
  let guard = P.rows;  // read at the start, so that the end waits for no load
  // The epilogue's own loads of the first rows (the residual, the next norm's weights) go out
  // first: issued after the sums, each would cost one more round trip at the end.
  let groups = 256u / TPR;
  let grp = tid / TPR;
  var y_pre = vec4<f32>(0.0);
  var nw_pre = vec4<f32>(0.0);
  if (RESID && grp * 4u < ROWS) {
    for (var j = 0u; j < 4u; j++) {
      let r = min(wg.x * ROWS + grp * 4u + j, p_rows() - 1u);
      y_pre[j] = Y[p_out() + r];
    }
  }
  if (QOUT && grp * 4u < 32u) { nw_pre = NW[(P.norm2_off + wg.x * 32u + grp * 4u) / 4u]; }
  if (QIN) {
    if (NORM) {  // 1 / rms from the sums of squares of the blocks (each group covers them all)
      let nw = p_cols() / 32u;
      var ss = 0.0;
      for (var w = lane; w < nw; w += TPR) { ss += qv_ssq(w); }
      rs = inverseSqrt(lanes_sum(ss, tid) / f32(p_cols()) + P.eps);
    }
  }
  if (!QIN || QST) {
    // the weights' loads first, so that they are on their way while the input is staged
    for (var k = 0u; k < (ROWS + groups * 4u - 1u) / (groups * 4u); k++) {
      touched ^= w_touch(rows4(wg.x * ROWS + (k * groups + tid / TPR) * 4u), select(p_cols() / 32u, KW, KW != 0u), lane);
    }
  }
  if (QIN && QST) {
    for (var b = tid; b < p_cols() / 32u; b += 256u) {
      let q = qv_load(b);
      qh[2u * b] = q.h0;
      qh[2u * b + 1u] = q.h1;
      ql[2u * b] = q.l0;
      ql[2u * b + 1u] = q.l1;
      qd[b] = q.d;
      qsum[b] = q.s;
    }
    workgroupBarrier();
  }
  if (!QIN) {
    if (NORM) {
      var ss = 0.0;
      for (var i = tid; i < p_cols() / 4u; i += 256u) { let v = X[x4 + i]; ss += dot(v, v); }
      ss = wg_sum(ss, tid);
      rs = inverseSqrt(ss / f32(p_cols()) + P.eps);
    }
    for (var b = tid; b < p_cols() / 32u; b += 256u) {
      var xs: array<vec4<f32>, 8>;
      if (COMBINE) {
        xs = merged_block(b);
      } else {
        for (var i = 0u; i < 8u; i++) {
          let k = b * 8u + i;
          if (NORM) {
            xs[i] = X[x4 + k] * rs * NW[P.norm_off / 4u + k];
          } else {
            xs[i] = X[x4 + k];
          }
        }
      }
      qx_block(b, xs);
    }
    workgroupBarrier();
    rs = 1.0;  // applied while staging
  }
  for (var k = 0u; k < (ROWS + groups * 4u - 1u) / (groups * 4u); k++) {
    let rl = (k * groups + grp) * 4u;
    let tot = lanes_sum4(rows_part(wg.x * ROWS + rl, lane), tid) * rs;
    var y4 = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
      let r = wg.x * ROWS + rl + j;
      if (lane == 0u && rl + j < ROWS && r < p_rows()) {
        let o = p_out() + r;
        var y = tot[j];
        if (RESID) {
          if (k == 0u) { y += y_pre[j]; } else { y += Y[o]; }
        }
        Y[o] = y;
        y4[j] = y;
        if (ARGMAX) { ys[rl + j] = y; }
      }
    }
    if (QOUT && lane == 0u && rl < 32u) {
      qv_r[rl / 4u] = y4;
      var nw4 = nw_pre;
      if (k != 0u) { nw4 = NW[(P.norm2_off + wg.x * 32u + rl) / 4u]; }
      qv_y[rl / 4u] = y4 * nw4;
    }
  }
  if (QOUT) {
    workgroupBarrier();
    if (tid < 8u) { qv_put(tid, (P.row0 + wg.x * 32u) / 32u); }
  }
  if (ARGMAX) {
    // best (key, row) of the workgroup's rows, ties to the lower row
    workgroupBarrier();
    var bk = 0u;
    var bi = 0xffffffffu;
    for (var i = tid; i < ROWS; i += 256u) {
      let r = wg.x * ROWS + i;
      if (r < p_rows()) {
        let k = key_of(ys[i]);
        if (bi == 0xffffffffu || k > bk) { bk = k; bi = P.row0 + r; }
      }
    }
    let best = wg_argmax(bk, bi, tid);
    if (tid == 0u) {
      let slot = P.row0 / ROWS + wg.x;
      AM[2u * slot] = best.x;
      AM[2u * slot + 1u] = best.y;
    }
  }
  // never (P.rows, not a constant the compiler could fold as it could F_ROWS): keeps the touch loads
  if (guard == 0u && touched == 1u) { Y[0] = 0.0; }
}
