// attn_dec.wgsl — attention of ONE token (decode), split over the keys ("flash decoding"): the
// grid is n_head x S; workgroup (h, s) takes the s-th of S equal ranges of the n_keys = pos + 1
// positions and writes a partial result: its running max m, its sum of weights l and its
// unnormalised output o, to PART[h][s] = {m, l, 0, 0, o[HD]} (HD + 4 floats). The consumer
// (matvec.wgsl with COMBINE, the Wo product) merges the S partials of a head, so the split
// costs no dispatch of its own. Splitting keeps every SM busy at long contexts where one
// workgroup per head (16 of them) left most of the GPU idle.
//
// The input is the raw [q|k|v] row of the token (the fused norm+QKV product): each workgroup
// applies QK-norm and NeoX RoPE to its q head and to the new key, which it uses from workgroup
// memory rather than from the cache (no workgroup reads a cache row another one writes in this
// dispatch); all global reads of that prologue are issued together (the kernel is latency-bound). The first q head of each
// KV group writes the new key and value into the layer's cache for the steps that follow.
// Keys go in tiles of 64: 4 invocations a key for the scores (HD / 4 dims each); each group of
// TPR lanes then takes the tile's max and sum itself (no barrier), and every invocation owns 4
// output dims of every (1024 / HD)-th key of the tile, its value rows loaded at once as 16-byte
// reads together with the key rows, with an online softmax across tiles.

override HD: u32 = 128u;       // head dimension: 32, 64, 128 or 256
override KV16: bool = false;   // KV cache as f16 pairs (else f32)

override A_NH: u32 = 0u;       // n_head, n_head_kv, kv_dim, n_ctx fixed at pipeline creation
override A_NKV: u32 = 0u;      // (0: from P), so that the first loads wait for no uniform load
override A_KD: u32 = 0u;
override A_NCTX: u32 = 0u;
override PF_WG: u32 = 0u;      // prefetching workgroups: the grid is (n_head + PF_WG) x S, and the
override PF_A0: u32 = 0u;      // PF_WG x S past the heads only read words PF_A0 .. PF_A0 + PF_AN - 1
override PF_AN: u32 = 0u;      // of PFW (the layer's Wo, gate/up and down weights), one a 32-byte
                               // sector, so that those products find them in L2 (matvec.wgsl)

const TK: u32 = 64u;           // keys per tile

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read_write> KV: array<vec4<u32>>;  // 16-byte reads of key rows
@group(0) @binding(2) var<storage, read_write> PART: array<f32>;
@group(0) @binding(3) var<storage, read> NW: array<f32>;
@group(0) @binding(4) var<storage, read> ROPE: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> PFW: array<u32>;
@group(0) @binding(6) var<uniform> P: Params;
@group(0) @binding(7) var<uniform> S: Step;

var<workgroup> raw: array<f32, HD>;   // q * norm weights (before the 1/rms scale)
var<workgroup> kraw: array<f32, HD>;  // the new key * norm weights
var<workgroup> qs: array<f32, HD>;   // q, normed and rotated
var<workgroup> kc: array<f32, HD>;   // the new key, normed and rotated
var<workgroup> vc: array<f32, HD>;   // the new value
var<workgroup> sc: array<f32, TK>;   // scores of the tile
var<workgroup> part: array<f32, 256>;
var<workgroup> part4: array<vec4<f32>, 256>;  // the P.V partial sums of the key groups

// Value elements e .. e + 3 of the cache (e a multiple of 4).
fn v_row(e: u32) -> vec4<f32> {
  if (KV16) {
    let w = P.v_off + e / 2u;
    let v = KV[w / 4u];
    let h = select(v.xy, v.zw, (w % 4u) != 0u);
    return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
  }
  return bitcast<vec4<f32>>(KV[(P.v_off + e) / 4u]);
}

// dot(qs[i0 .. i0 + HD / 4], key elements e0 ..) of the K half; e0 a multiple of HD / 4 (of 8).
fn kdot(i0: u32, e0: u32) -> f32 {
  var d = 0.0;
  if (KV16) {
    for (var i = 0u; i < HD / 32u; i++) {
      let v = KV[e0 / 8u + i];
      let b = i0 + i * 8u;
      d += dot(vec4<f32>(qs[b], qs[b + 1u], qs[b + 2u], qs[b + 3u]), vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)));
      d += dot(vec4<f32>(qs[b + 4u], qs[b + 5u], qs[b + 6u], qs[b + 7u]), vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w)));
    }
  } else {
    for (var i = 0u; i < HD / 16u; i++) {
      let v = bitcast<vec4<f32>>(KV[e0 / 4u + i]);
      let b = i0 + i * 4u;
      d += dot(vec4<f32>(qs[b], qs[b + 1u], qs[b + 2u], qs[b + 3u]), v);
    }
  }
  return d;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let s = wg.y;
  let ns = nwg.y;
  let n_head = select(P.n_head, A_NH, A_NH != 0u);
  if (h >= n_head) {
    var t = 0u;  // a prefetching workgroup: its loads only feed a guard that is never true
    for (var i = ((h - n_head + PF_WG * s) * 256u + tid) * 8u; i < PF_AN; i += PF_WG * ns * 2048u) { t ^= PFW[PF_A0 + i]; }
    if (P.n_head == 0u && t == 1u) { PART[0] = 0.0; }
    return;
  }
  let grp = n_head / select(P.n_head_kv, A_NKV, A_NKV != 0u);
  let kvh = h / grp;
  let kd = select(P.kv_dim, A_KD, A_KD != 0u);
  let qd = n_head * HD;

  // q, the new key and value: every global read of the prologue issued at once (one
  // invocation an element; the ones that need no step data before the position is known),
  // then QK-norm and RoPE from workgroup memory.
  let half = HD / 2u;
  var sq = 0.0;
  var sk = 0.0;
  var qv = 0.0;
  var kv = 0.0;
  if (tid < HD) {
    qv = QKV[h * HD + tid];
    kv = QKV[qd + kvh * HD + tid];
    vc[tid] = QKV[qd + kd + kvh * HD + tid];
    sq = qv * qv;
    sk = kv * kv;
  }
  let pos = S.pos;
  if (pos >= select(P.n_ctx, A_NCTX, A_NCTX != 0u)) { return; }
  var cs = vec2<f32>(1.0, 0.0);
  if (tid < HD) {
    cs = ROPE[pos * half + tid % half];
    raw[tid] = qv * NW[P.norm_off + tid];
    kraw[tid] = kv * NW[P.norm2_off + tid];
  }
  let n_keys = pos + 1u;
  let range = (n_keys + ns - 1u) / ns;
  let j0 = min(s * range, n_keys);
  let j1 = min(j0 + range, n_keys);
  let has_new = j1 == n_keys && j0 < j1;
  let ss = wg_sum2(vec2<f32>(sq, sk), tid);  // its barriers publish raw, kraw, vc
  let rq = inverseSqrt(ss.x / f32(HD) + P.eps);
  let rk = inverseSqrt(ss.y / f32(HD) + P.eps);
  if (tid < HD) {
    let j = tid % half;
    let qa = raw[j] * rq;
    let qb = raw[j + half] * rq;
    let ka = kraw[j] * rk;
    let kb = kraw[j + half] * rk;
    qs[tid] = select(qa * cs.y + qb * cs.x, qa * cs.x - qb * cs.y, tid < half);
    kc[tid] = select(ka * cs.y + kb * cs.x, ka * cs.x - kb * cs.y, tid < half);
  }
  workgroupBarrier();
  if (has_new && h % grp == 0u) {
    let e0 = pos * kd + kvh * HD;
    if (KV16) {
      for (var j = tid; j < HD / 8u; j += 256u) {
        let b = 8u * j;
        KV[e0 / 8u + j] = vec4<u32>(pack2x16float(vec2<f32>(kc[b], kc[b + 1u])), pack2x16float(vec2<f32>(kc[b + 2u], kc[b + 3u])),
                                    pack2x16float(vec2<f32>(kc[b + 4u], kc[b + 5u])), pack2x16float(vec2<f32>(kc[b + 6u], kc[b + 7u])));
        KV[(P.v_off + e0 / 2u) / 4u + j] = vec4<u32>(pack2x16float(vec2<f32>(vc[b], vc[b + 1u])), pack2x16float(vec2<f32>(vc[b + 2u], vc[b + 3u])),
                                                     pack2x16float(vec2<f32>(vc[b + 4u], vc[b + 5u])), pack2x16float(vec2<f32>(vc[b + 6u], vc[b + 7u])));
      }
    } else {
      for (var j = tid; j < HD / 4u; j += 256u) {
        let b = 4u * j;
        KV[e0 / 4u + j] = bitcast<vec4<u32>>(vec4<f32>(kc[b], kc[b + 1u], kc[b + 2u], kc[b + 3u]));
        KV[(P.v_off + e0) / 4u + j] = bitcast<vec4<u32>>(vec4<f32>(vc[b], vc[b + 1u], vc[b + 2u], vc[b + 3u]));
      }
    }
  }

  // online softmax over tiles of TK keys
  let dq = HD / 4u;            // dims per scoring invocation
  let kq = tid / 4u;           // the tile's key this invocation scores
  let quarter = tid % 4u;
  let lane = tid % TPR;
  let v4 = HD / 4u;            // invocations per value row (4 dims each)
  let ng = 256u / v4;          // key groups of the P.V product: keys og, og + ng, ...
  let od = (tid % v4) * 4u;    // this invocation's 4 output dims
  let og = tid / v4;
  let vbase = kvh * HD + od;
  var m = -3.0e38;
  var l = 0.0;
  var acc = vec4<f32>(0.0);
  for (var t0 = j0; t0 < j1; t0 += TK) {
    let j = t0 + kq;
    // The value rows of this invocation's keys are loaded with the key rows (both sets of loads
    // on their way at once; the values are used after the softmax).
    let cnt = min(TK, j1 - t0);
    var vr: array<vec4<f32>, 16>;  // TK / ng = HD / 16 of them
    for (var i = 0u; i < TK / ng; i++) {
      let jj = t0 + min(og + i * ng, cnt - 1u);
      vr[i] = v_row(vbase + jj * kd);
      if (jj == pos) { vr[i] = vec4<f32>(vc[od], vc[od + 1u], vc[od + 2u], vc[od + 3u]); }
    }
    // unconditional loads of a valid row (no branch around them), the new key from kc
    let jc = min(j, j1 - 1u);
    var d = kdot(quarter * dq, jc * kd + kvh * HD + quarter * dq);
    if (jc == pos) {
      d = 0.0;
      for (var i = 0u; i < dq; i++) { d += qs[quarter * dq + i] * kc[quarter * dq + i]; }
    }
    part[tid] = d;
    workgroupBarrier();
    if (quarter == 0u) {
      var sv = -3.0e38;
      if (j < j1) { sv = (part[tid] + part[tid + 1u] + part[tid + 2u] + part[tid + 3u]) * P.scale; }
      sc[kq] = sv;
    }
    workgroupBarrier();
    // The tile's max and sum, each group of TPR lanes reducing the TK scores itself.
    var lm = -3.0e38;
    for (var c = lane; c < TK; c += TPR) { lm = max(lm, sc[c]); }
    let mt = max(m, lanes_max(lm, tid));
    var ls = 0.0;
    for (var c = lane; c < TK; c += TPR) { ls += select(0.0, exp(sc[c] - mt), c < cnt); }
    let corr = exp(m - mt);
    l = l * corr + lanes_sum(ls, tid);
    acc *= corr;
    for (var i = 0u; i < TK / ng; i++) {
      let c = og + i * ng;
      acc += select(0.0, exp(sc[c] - mt), c < cnt) * vr[i];
    }
    m = mt;
    workgroupBarrier();
  }
  part4[tid] = acc;
  workgroupBarrier();
  let base = (h * ns + s) * (HD + 4u);
  if (tid < v4) {
    var o = vec4<f32>(0.0);
    for (var g = 0u; g < ng; g++) { o += part4[g * v4 + tid]; }
    for (var e = 0u; e < 4u; e++) { PART[base + 4u + tid * 4u + e] = o[e]; }
  }
  if (tid == 0u) {
    PART[base] = m;
    PART[base + 1u] = l;
    PART[base + 2u] = 0.0;
    PART[base + 3u] = 0.0;
  }
}
