// attention.wgsl — causal grouped-query attention of a prompt chunk, tiled (flash attention, f32
// throughout). Token t of the step sits at position S.pos + t and sees positions 0..S.pos + t
// (earlier chunks' cache included); head h reads KV head h / (n_head / n_head_kv). q comes from
// the qkv buffer (already QK-normed and rotated), the result goes to O[t][n_head * HD].
//
// One workgroup of 256 owns 32 rows: QH q heads of one KV group x BT = 32 / QH consecutive
// tokens; the grid is (n_head / QH) x ceil(n / BT), y = 0 taking the last (longest) tokens. It
// walks the keys up to its last token's position in tiles of 32, skipping the tiles above the
// diagonal and masking inside the last one; K and V are staged once for all its q heads:
//   - scores in HD / 32 stages of 32 dims: q and k slices staged in workgroup memory, each
//     invocation accumulating 1 row x 4 keys (keys ks, ks + 8, ks + 16, ks + 24);
//   - online softmax per row (running max and sum, the 8 invocations of a row exchanging their
//     maxima through workgroup memory), the weights to ps;
//   - values in stages of min(32, 2048 / HD) keys; each invocation owns HD / 32 rows x 4 dims
//     of the output in registers, rescaled by the row's correction once per tile.
// The next stage's global reads are issued (into registers) before this stage's arithmetic.
// Workgroup memory: 14,976 bytes for every HD (within WebGPU's default 16 KiB).
// The result leaves through attn_store (uniform control flow, every invocation): attn_o.wgsl
// writes it to O[t][n_head * HDR] (binding 2; kernel `attention`), attn_xq.wgsl (kernel
// `attention_q`, HD = HDR = 128: a head is one 128-block) quantised for mm_sg / mm_dp as
// quant.wgsl would (binding 2 is XQ; the same workgroup memory, + 1,024 bytes of red_wg.wgsl's
// buffer without subgroups).

override HD: u32 = 128u;      // staged head dimension: 32, 64, 128 or 256
override HDR: u32 = HD;       // the heads' real dimension, a multiple of 8 <= HD (Phi-2: 80 in HD 128);
                              // dims from HDR on stage as zeros and are not written
override KV16: bool = false;  // KV cache as f16 pairs (else f32)
override QH: u32 = 1u;        // q heads per workgroup, dividing n_head / n_head_kv: 1, 2, 4 or 8

const BR: u32 = 32u;          // rows (q head x token) per workgroup
const BK: u32 = 32u;          // keys per tile
const DC: u32 = 32u;          // dims per score stage
const SW: u32 = DC / 4u + 1u; // vec4s per staged row of a score stage (one of padding)
const PW: u32 = BK / 4u + 1u; // vec4s per row of ps (one of padding)
const NEG: f32 = -3.0e38;

override BT: u32 = BR / QH;               // tokens per workgroup
override NC: u32 = HD / DC;               // score stages per tile
override VK: u32 = min(BK, 2048u / HD);   // keys per value stage (at most 2048 floats)
override NV: u32 = BK / VK;               // value stages per tile
override VI: u32 = VK * HD / 8u;          // invocations loading a value stage (8 floats each)
override NG: u32 = HD / 4u;               // invocations along the dims of one output row
override OR: u32 = HD / 32u;              // output rows per invocation

@group(0) @binding(0) var<storage, read> QKV: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> KV: array<vec4<u32>>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

// Score stage: q rows 0..31 and key rows 32..63, SW vec4s each. Value stage: VK rows of HD / 4.
var<workgroup> stg: array<vec4<f32>, 576>;
// Softmax weights of the tile, PW vec4s a row: vec4 q holds keys q, q + 8, q + 16, q + 24 (as one
// score invocation computes them; whole-vec4 stores), and a value stage stages keys in that order.
var<workgroup> ps: array<vec4<f32>, 288>;
var<workgroup> xch: array<f32, 256>;       // per invocation: its row's partial max, at the end its sum
var<workgroup> cs: array<f32, 32>;         // per row: the tile's rescale of the output

// The workgroup's place, set once.
var<private> h0: u32;     // its first q head
var<private> t0: u32;     // its first token
var<private> kvh: u32;    // its KV head
var<private> kmax: u32;   // keys it may read: 0..kmax - 1

// Raw global words of one stage for one invocation: 8 floats of one row, or 8 f16 in .a.
struct Ld { a: vec4<u32>, b: vec4<u32> }

// Stage st of key tile kt: st < NC the q and k slices of dims st * DC .. (invocations 128..255
// read q, 0..127 k); else value stage st - NC. Keys from kmax on read as zeros.
fn fetch(kt: u32, st: u32, tid: u32) -> Ld {
  var r = Ld(vec4<u32>(0u), vec4<u32>(0u));
  var j: u32;
  var e: u32;   // element of the cache half
  var base = 0u;
  var ok = true;
  if (st < NC) {
    let d = st * DC + (tid % 4u) * 8u;
    if (tid >= 128u) {
      let row = (tid - 128u) / 4u;
      let t = min(t0 + row % BT, S.n - 1u);
      if (d >= HDR) { return r; }
      let b = (P.q_off + t * P.q_stride + (h0 + row / BT) * HDR + d) / 4u;
      return Ld(bitcast<vec4<u32>>(QKV[b]), bitcast<vec4<u32>>(QKV[b + 1u]));
    }
    j = kt * BK + tid / 4u;
    e = j * P.kv_dim + kvh * HDR + d;
    ok = d < HDR;
  } else {
    let vr = tid / (HD / 8u);  // staged row: key q + 8 (vr % 4) of the stage's quads q
    let dv = (tid % (HD / 8u)) * 8u;
    ok = tid < VI && dv < HDR;
    j = kt * BK + (st - NC) * (VK / 4u) + vr / 4u + 8u * (vr % 4u);
    e = j * P.kv_dim + kvh * HDR + dv;
    base = P.v_off;
  }
  if (ok && j < kmax) {
    if (KV16) {
      r.a = KV[(base + e / 2u) / 4u];
    } else {
      let w = (base + e) / 4u;
      r.a = KV[w];
      r.b = KV[w + 1u];
    }
  }
  return r;
}

// Writes what fetch(., st, tid) read into the stage buffer (the matching barrier is the caller's).
fn put(l: Ld, st: u32, tid: u32) {
  var x = bitcast<vec4<f32>>(l.a);
  var y = bitcast<vec4<f32>>(l.b);
  if (KV16 && (st >= NC || tid < 128u)) {
    x = vec4<f32>(unpack2x16float(l.a.x), unpack2x16float(l.a.y));
    y = vec4<f32>(unpack2x16float(l.a.z), unpack2x16float(l.a.w));
  }
  var i = tid * 2u;  // value stage: row tid / (HD / 8), 8-float group tid % (HD / 8)
  if (st < NC) {
    let row = select(32u + tid / 4u, (tid - 128u) / 4u, tid >= 128u);
    i = row * SW + (tid % 4u) * 2u;
  } else if (tid >= VI) {
    return;
  }
  stg[i] = x;
  stg[i + 1u] = y;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let nqt = (S.n + BT - 1u) / BT;
  if (S.n == 0u || wg.y >= nqt || (wg.x + 1u) * QH > P.n_head) { return; }
  let tw = (nqt - 1u - wg.y) * BT;
  let kn = min(S.pos + min(tw + BT - 1u, S.n - 1u) + 1u, P.n_ctx);  // uniform (private vars are not)
  if (kn == 0u) { return; }
  h0 = wg.x * QH;
  t0 = tw;
  kvh = h0 / (P.n_head / P.n_head_kv);
  kmax = kn;
  let nkt = (kn + BK - 1u) / BK;

  // scores: row sr, keys ks + 8 i of the tile; its keys end at kend
  let sr = tid / 8u;
  let ks = tid % 8u;
  let kend = min(S.pos + min(t0 + sr % BT, S.n - 1u) + 1u, P.n_ctx);
  var m = NEG;   // the row's running max
  var l = 0.0;   // this invocation's share of the row's running sum
  // output: rows rg * OR + i, dims dg * 4 ..
  let dg = tid % NG;
  let rg = tid / NG;
  var o: array<vec4<f32>, 8>;  // zeros

  var ld = fetch(0u, 0u, tid);
  for (var kt = 0u; kt < nkt; kt++) {
    var acc = vec4<f32>(0.0);
    for (var st = 0u; st < NC; st++) {
      put(ld, st, tid);
      workgroupBarrier();
      ld = fetch(kt, st + 1u, tid);
      for (var d = 0u; d < DC / 4u; d++) {
        let q = stg[sr * SW + d];
        let k0 = stg[(32u + ks) * SW + d];
        let k1 = stg[(40u + ks) * SW + d];
        let k2 = stg[(48u + ks) * SW + d];
        let k3 = stg[(56u + ks) * SW + d];
        acc = fma(vec4<f32>(q.x), vec4<f32>(k0.x, k1.x, k2.x, k3.x), acc);
        acc = fma(vec4<f32>(q.y), vec4<f32>(k0.y, k1.y, k2.y, k3.y), acc);
        acc = fma(vec4<f32>(q.z), vec4<f32>(k0.z, k1.z, k2.z, k3.z), acc);
        acc = fma(vec4<f32>(q.w), vec4<f32>(k0.w, k1.w, k2.w, k3.w), acc);
      }
      if (st + 1u < NC) { workgroupBarrier(); }
    }

    // online softmax of the row
    let j = kt * BK + ks;
    let vis = vec4<u32>(j, j + 8u, j + 16u, j + 24u) < vec4<u32>(kend);
    let sc = select(vec4<f32>(NEG), acc * P.scale, vis);
    xch[tid] = max(max(sc.x, sc.y), max(sc.z, sc.w));
    workgroupBarrier();  // also: every score stage is done with stg
    var mt = xch[sr * 8u];
    for (var u = 1u; u < 8u; u++) { mt = max(mt, xch[sr * 8u + u]); }
    let mn = max(m, mt);
    let corr = exp(m - mn);
    let p = select(vec4<f32>(0.0), exp(sc - vec4<f32>(mn)), vis);
    l = l * corr + (p.x + p.y) + (p.z + p.w);
    m = mn;
    if (ks == 0u) { cs[sr] = corr; }
    ps[sr * PW + ks] = p;

    // values
    for (var v = 0u; v < NV; v++) {
      put(ld, NC + v, tid);
      workgroupBarrier();  // for v = 0 also publishes ps and cs
      if (v + 1u < NV) {
        ld = fetch(kt, NC + v + 1u, tid);
      } else if (kt + 1u < nkt) {
        ld = fetch(kt + 1u, 0u, tid);
      }
      if (v == 0u) {
        for (var i = 0u; i < OR; i++) { o[i] *= cs[rg * OR + i]; }
      }
      for (var k4 = 0u; k4 < VK / 4u; k4++) {  // keys q, q + 8, q + 16, q + 24; q = v * VK / 4 + k4
        let v0 = stg[(k4 * 4u) * NG + dg];
        let v1 = stg[(k4 * 4u + 1u) * NG + dg];
        let v2 = stg[(k4 * 4u + 2u) * NG + dg];
        let v3 = stg[(k4 * 4u + 3u) * NG + dg];
        for (var i = 0u; i < OR; i++) {
          let w = ps[(rg * OR + i) * PW + v * (VK / 4u) + k4];
          var a = fma(vec4<f32>(w.x), v0, o[i]);
          a = fma(vec4<f32>(w.y), v1, a);
          a = fma(vec4<f32>(w.z), v2, a);
          o[i] = fma(vec4<f32>(w.w), v3, a);
        }
      }
      workgroupBarrier();
    }
  }

  xch[tid] = l;
  workgroupBarrier();
  for (var i = 0u; i < OR; i++) {
    let row = rg * OR + i;
    let t = t0 + row % BT;
    var lt = 0.0;
    for (var u = 0u; u < 8u; u++) { lt += xch[row * 8u + u]; }
    attn_store(o[i] / lt, t, h0 + row / BT, dg, t < S.n && dg < HDR / 4u, tid);
  }
}
