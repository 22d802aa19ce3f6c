// sample.wgsl — picks the next token from the logits on the GPU, so only its id is read back and
// the next step can embed it without a round trip. One workgroup, after the output head
// (matvec.wgsl with ARGMAX) left the best logit of every HR = P.cols rows in AM; src/sample.c's
// steps in its order: penalties over the last last_n tokens of the history (repeat: divide a positive logit,
// multiply a negative one; presence; frequency — once per distinct token), then greedy argmax
// (ties to the lowest id), or top-k (1..256, here by radix select on order-preserving keys, then
// a bitonic sort best first), softmax with temperature, top-p (smallest best-first prefix
// reaching top_p), min-p (w < min_p dropped), and the draw with the host's uniform u. NaN counts
// as -inf and +inf as the largest finite float, as in sample.c; all comparisons use integer keys,
// so no step depends on how the GPU treats infinities. The logits are modified in place.

@group(0) @binding(0) var<storage, read_write> L: array<f32>;
@group(0) @binding(1) var<storage, read> HIST: array<u32>;
@group(0) @binding(2) var<storage, read_write> TOK: array<u32>;
@group(0) @binding(3) var<storage, read_write> AM: array<u32>;  // the head's best per P.cols rows
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;
@group(0) @binding(6) var<uniform> SP: Samp;

var<workgroup> rk: array<u32, 256>;        // reduction keys, then candidate keys
var<workgroup> ri: array<u32, 256>;        // reduction ids, then candidate ids
var<workgroup> cnt: array<atomic<u32>, 256>;
var<workgroup> sh: array<u32, 4>;
var<workgroup> ncand: atomic<u32>;
var<workgroup> cw: array<f32, 256>;

// Tokens of the penalty window: the last repeat_last_n of the history (-1: all of it).
fn pen_window(kv_len: u32) -> u32 {
  if (SP.last_n >= 0 && u32(SP.last_n) < kv_len) { return u32(SP.last_n); }
  return kv_len;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
  let V = P.rows;
  let kv_len = min(S.kv_len, P.n_ctx);

  // 1. penalties, once per distinct token of the window (the first occurrence applies them)
  if (SP.pen_on != 0u) {
    let win = pen_window(kv_len);
    let start = kv_len - win;
    for (var i = tid; i < win; i += 256u) {
      let t = HIST[start + i];
      if (t >= V) { continue; }
      var first = true;
      var c = 0u;
      for (var j = 0u; j < win; j++) {
        if (HIST[start + j] == t) {
          if (j < i) { first = false; }
          c += 1u;
        }
      }
      let k = key_of(L[t]);
      if (!first || k == KEY_NEG_INF) { continue; }
      var l = val_of(k);
      if (l > 0.0) { l = l / SP.rep; } else { l = l * SP.rep; }
      L[t] = l - (SP.pres + f32(c) * SP.freq);
    }
  }
  storageBarrier();
  workgroupBarrier();

  // 2. argmax, ties to the lowest id: over the output head's per-workgroup bests (AM[slot] for
  // rows slot * HR ..), after re-scanning the slots that hold a penalised token.
  let HR = P.cols;
  let nslots = (V + HR - 1u) / HR;
  if (SP.pen_on != 0u) {
    let win = pen_window(kv_len);
    let start = kv_len - win;
    for (var i = tid; i < win; i += 256u) {
      let t = HIST[start + i];
      if (t >= V) { continue; }
      let r0 = (t / HR) * HR;
      var k0 = 0u;
      var i0 = 0xffffffffu;
      for (var r = r0; r < min(r0 + HR, V); r++) {
        let k = key_of(L[r]);
        if (i0 == 0xffffffffu || k > k0) { k0 = k; i0 = r; }
      }
      AM[2u * (t / HR)] = k0;
      AM[2u * (t / HR) + 1u] = i0;
    }
    storageBarrier();
    workgroupBarrier();
  }
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var i = tid; i < nslots; i += 256u) {
    let k = AM[2u * i];
    let id = AM[2u * i + 1u];
    if (id != 0xffffffffu && (bi == 0xffffffffu || better(k, id, bk, bi))) { bk = k; bi = id; }
  }
  rk[tid] = bk;
  ri[tid] = bi;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (tid < s && better(rk[tid + s], ri[tid + s], rk[tid], ri[tid])) {
      rk[tid] = rk[tid + s];
      ri[tid] = ri[tid + s];
    }
    workgroupBarrier();
  }
  let maxk = workgroupUniformLoad(&rk[0]);
  let best = workgroupUniformLoad(&ri[0]);
  if (SP.mode == 0u || maxk == KEY_NEG_INF || SP.top_k == 0u || SP.top_k > 256u || SP.top_k >= V) {
    if (tid == 0u) { TOK[0] = best; }
    return;
  }

  // 3. the key of the k-th best logit: radix select, 8 bits a pass from the top
  var prefix = 0u;
  var mask = 0u;
  var remaining = SP.top_k;
  for (var rp = 0u; rp < 4u; rp++) {
    let shift = 24u - rp * 8u;
    atomicStore(&cnt[tid], 0u);
    workgroupBarrier();
    for (var i = tid; i < V; i += 256u) {
      let k = key_of(L[i]);
      if ((k & mask) == prefix) { atomicAdd(&cnt[(k >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (tid == 0u) {
      var cum = 0u;
      var d = 255u;
      loop {
        let c = atomicLoad(&cnt[d]);
        if (cum + c >= remaining || d == 0u) { break; }
        cum += c;
        d -= 1u;
      }
      sh[0] = prefix | (d << shift);
      sh[1] = remaining - cum;
    }
    prefix = workgroupUniformLoad(&sh[0]);
    remaining = workgroupUniformLoad(&sh[1]);
    mask = mask | (255u << shift);
  }

  // 4. candidates: every key above the threshold, and the `remaining` lowest ids at it. Each
  // invocation scans a contiguous chunk, so tie ranks follow from a prefix sum of tie counts.
  let chunk = (V + 255u) / 256u;
  let lo = min(tid * chunk, V);
  let hi = min(lo + chunk, V);
  var ties = 0u;
  for (var i = lo; i < hi; i++) { if (key_of(L[i]) == prefix) { ties += 1u; } }
  atomicStore(&cnt[tid], ties);
  if (tid == 0u) { atomicStore(&ncand, 0u); }
  rk[tid] = 0u;            // padding: ranks below every candidate
  ri[tid] = 0xffffffffu;
  workgroupBarrier();
  var rank = 0u;
  for (var j = 0u; j < tid; j++) { rank += atomicLoad(&cnt[j]); }
  workgroupBarrier();
  for (var i = lo; i < hi; i++) {
    let k = key_of(L[i]);
    var take = k > prefix;
    if (k == prefix) {
      take = rank < remaining;
      rank += 1u;
    }
    if (take) {
      let slot = atomicAdd(&ncand, 1u);
      if (slot < 256u) { rk[slot] = k; ri[slot] = i; }
    }
  }
  workgroupBarrier();

  // 5. bitonic sort of the 256 slots, best first
  for (var size = 2u; size <= 256u; size = size << 1u) {
    for (var stride = size / 2u; stride > 0u; stride = stride >> 1u) {
      let j = tid ^ stride;
      if (j > tid) {
        let best_first = (tid & size) == 0u;
        if (better(rk[j], ri[j], rk[tid], ri[tid]) == best_first) {
          let tk = rk[tid];
          let ti = ri[tid];
          rk[tid] = rk[j];
          ri[tid] = ri[j];
          rk[j] = tk;
          ri[j] = ti;
        }
      }
      workgroupBarrier();
    }
  }

  // 6. temperature, top-p, min-p and the draw, sequentially over at most 256 candidates
  if (tid == 0u) {
    let K = SP.top_k;
    let mx = val_of(maxk);
    var z = 0.0;
    for (var j = 0u; j < K; j++) {
      var w = 0.0;
      if (rk[j] != KEY_NEG_INF) { w = exp((val_of(rk[j]) - mx) / SP.temp); }
      cw[j] = w;
      z += w;
    }
    var nc = K;
    if (SP.top_p < 1.0) {
      let goal = SP.top_p * z;
      var cum = 0.0;
      for (var j = 0u; j < K; j++) {
        cum += cw[j];
        if (cum >= goal) { nc = j + 1u; break; }
      }
    }
    if (SP.min_p > 0.0) {
      var m = 0u;
      for (var j = 0u; j < nc; j++) {
        if (cw[j] >= SP.min_p) { cw[m] = cw[j]; ri[m] = ri[j]; m += 1u; }
      }
      nc = m;
    }
    var total = 0.0;
    for (var j = 0u; j < nc; j++) { total += cw[j]; }
    var pick = best;
    if (nc > 0u && total > 0.0) {
      let goal = SP.u * total;
      var cum = 0.0;
      var last = 0xffffffffu;
      var found = false;
      for (var j = 0u; j < nc; j++) {
        if (cw[j] <= 0.0) { continue; }
        cum += cw[j];
        last = j;
        if (cum > goal) { pick = ri[j]; found = true; break; }
      }
      if (!found && last != 0xffffffffu) { pick = ri[last]; }
    }
    TOK[0] = pick;
  }
}
