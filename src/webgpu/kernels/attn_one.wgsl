// attn_one.wgsl — the generic plan's attention of ONE token (decode): causal grouped-query
// attention of the token at position S.pos over the cache positions 0 .. S.pos, f32 throughout.
// q comes from the qkv row (already QK-normed and rotated; rope.wgsl has written this token's k
// and v into the cache), the result goes to O[h * HDR ..]. The grid is n_head x S.splits: workgroup
// (h, s) of 256 takes the s-th of S.splits ranges of whole tiles of keys ("flash decoding", as
// attn_dec.wgsl does for the fused plan; one workgroup per head walking all keys took 50-86 us at
// position 256 on the H100 with most SMs idle). Keys go in tiles of 32 with an online softmax:
//   - scores: 8 invocations a key, each a strided quarter-row of the dims (neighbouring
//     invocations read neighbouring 16 bytes of the key row), summed through workgroup memory;
//   - values: invocation i owns output dim i % HD for the keys k % (256 / HD) == i / HD of the
//     tile (neighbouring invocations read neighbouring floats of a value row); the 256 / HD
//     partial outputs of a dim are summed at the end.
// With one range (S.splits == 1) the workgroup writes the normalised output to O itself; else
// it writes its running max m, sum of weights l and unnormalised output o to
// PART[(h * SPLITS_MAX + s) * (HD + 4)] = {m, l, 0, 0, o[HDR]}, and the MERGE form of this kernel
// (grid n_head, a dispatch of its own: the generic plan's Wo product reads O as it is) combines a
// head's S.splits partials: O = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M), M = max_s m_s.
// HD: 32, 64, 128 or 256 (the staged head dimension); HDR: the real one (a multiple of 8 <= HD).
// ROPE (kernel attn_one_r; the decode step then runs no rope.wgsl): q and this token's k come from
// the qkv row unrotated; every workgroup rotates q in workgroup memory (table RT[pos][NROT / 2]:
// cos, sin), the workgroups whose range holds the token's own position also rotate its k into kw
// and take its value into vw, and use them for that position instead of the cache; the first q
// head of each KV group among them writes k and v into the cache (f32, or f16 pairs with KV16)
// for the next steps. No workgroup reads a cache row another writes in the same dispatch.

override HD: u32 = 128u;
override HDR: u32 = HD;
override KV16: bool = false;  // KV cache as f16 pairs (else f32)
override MERGE: bool = false; // the merge of the partials (grid n_head)
override SPLITS_MAX: u32 = 32u; // PART's ranges a head (the host's GEN_ATT_SPLITS)
override ROPE: bool = false;  // (attn_one_r) rope.wgsl's decode work here: see below
override NROT: u32 = 0u;      // ROPE: rotated dims (even, <= HDR)
override NEOX: bool = true;   // ROPE: pairs (i, i + NROT / 2), else (2i, 2i + 1)

const TK: u32 = 32u;          // keys per tile
const NEG: f32 = -3.0e38;

// The bindings come from an ending: attn_io.wgsl (kernel attn_one: QKV, KV read only, O, PART, P,
// S) or attn_io_r.wgsl (kernel attn_one_r, ROPE: KV read_write, the RoPE table RT before P, S),
// with kv_put, the cache write (none in attn_io.wgsl).

var<workgroup> qv: array<vec4<f32>, 64>;  // q (HDR dims, zeros after)
var<workgroup> xs: array<f32, 256>;       // per invocation: a partial score, at the end a partial output
var<workgroup> sc: array<f32, TK>;        // the tile's scores (NEG past the last key)
var<workgroup> kw: array<vec4<f32>, 64>;  // ROPE: this token's rotated key (HDR dims, zeros after)
var<workgroup> vw: array<f32, 256>;       // ROPE: this token's value

// Cache elements e .. e + 3 (e a multiple of 4) from word base on.
fn kv4(base: u32, e: u32) -> vec4<f32> {
  if (KV16) {
    let w = base + e / 2u;
    return vec4<f32>(unpack2x16float(KV[w]), unpack2x16float(KV[w + 1u]));
  }
  let w = base + e;
  return bitcast<vec4<f32>>(vec4<u32>(KV[w], KV[w + 1u], KV[w + 2u], KV[w + 3u]));
}

fn kv1(base: u32, e: u32) -> f32 {
  if (KV16) {
    let v = unpack2x16float(KV[base + e / 2u]);
    return select(v.x, v.y, (e & 1u) != 0u);
  }
  return bitcast<f32>(KV[base + e]);
}

// MERGE: O[h * HDR + d] from the S.splits partials of head h (invocation d < HDR).
fn merge(h: u32, tid: u32) {
  if (tid >= HDR) { return; }
  let base = h * SPLITS_MAX * (HD + 4u);
  let ns = S.splits;
  var m = NEG;
  for (var s = 0u; s < ns; s++) { m = max(m, PART[base + s * (HD + 4u)]); }
  var l = 0.0;
  var o = 0.0;
  for (var s = 0u; s < ns; s++) {
    let b = base + s * (HD + 4u);
    let w = exp(PART[b] - m);  // 0 for a range without keys (m_s = NEG, l_s = o_s = 0)
    l += w * PART[b + 1u];
    o += w * PART[b + 4u + tid];
  }
  O[h * HDR + tid] = o / l;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  if (h >= P.n_head) { return; }
  if (MERGE) {
    merge(h, tid);
    return;
  }
  let kvh = h / (P.n_head / P.n_head_kv);
  let kn = min(S.pos + 1u, P.n_ctx);
  // this workgroup's tiles: t0 .. t1 - 1 of the nt tiles of keys (none past the last range)
  let nt = (kn + TK - 1u) / TK;
  let ns = max(S.splits, 1u);
  let tps = (nt + ns - 1u) / ns;
  let t0 = min(wg.y * tps, nt);
  let t1 = min(t0 + tps, nt);
  let own = ROPE && S.pos < kn && S.pos >= t0 * TK && S.pos < t1 * TK;  // holds the token's own key
  if (tid < HD / 4u) {
    var q = vec4<f32>(0.0);
    var k = vec4<f32>(0.0);
    if (4u * tid < HDR) {
      let b = P.q_off + h * HDR + 4u * tid;
      q = vec4<f32>(QKV[b], QKV[b + 1u], QKV[b + 2u], QKV[b + 3u]);
      if (own) {
        let c = P.q_off + (P.n_head + kvh) * HDR + 4u * tid;
        k = vec4<f32>(QKV[c], QKV[c + 1u], QKV[c + 2u], QKV[c + 3u]);
      }
    }
    qv[tid] = q;
    kw[tid] = k;
  }
  if (own && tid < HDR) { vw[tid] = QKV[P.q_off + (P.n_head + P.n_head_kv + kvh) * HDR + tid]; }
  workgroupBarrier();
  if (ROPE) {
    let half = NROT / 2u;
    if (tid < half) {  // one rotation pair an invocation
      var i0 = 2u * tid;
      var i1 = i0 + 1u;
      if (NEOX) {
        i0 = tid;
        i1 = tid + half;
      }
      let cs = RT[S.pos * half + tid];
      let a = qv[i0 / 4u][i0 % 4u];
      let b = qv[i1 / 4u][i1 % 4u];
      qv[i0 / 4u][i0 % 4u] = a * cs.x - b * cs.y;
      qv[i1 / 4u][i1 % 4u] = a * cs.y + b * cs.x;
      if (own) {
        let ka = kw[i0 / 4u][i0 % 4u];
        let kb = kw[i1 / 4u][i1 % 4u];
        kw[i0 / 4u][i0 % 4u] = ka * cs.x - kb * cs.y;
        kw[i1 / 4u][i1 % 4u] = ka * cs.y + kb * cs.x;
      }
    }
    workgroupBarrier();
    if (own && h % (P.n_head / P.n_head_kv) == 0u) {  // k, v into the cache at the token's position
      let e0 = S.pos * P.kv_dim + kvh * HDR;
      if (KV16) {
        for (var j = tid; j < HDR / 2u; j += 256u) {
          kv_put(e0 / 2u + j, pack2x16float(vec2<f32>(kw[j / 2u][2u * (j % 2u)], kw[j / 2u][2u * (j % 2u) + 1u])));
          kv_put(P.v_off + e0 / 2u + j, pack2x16float(vec2<f32>(vw[2u * j], vw[2u * j + 1u])));
        }
      } else if (tid < HDR) {
        kv_put(e0 + tid, bitcast<u32>(kw[tid / 4u][tid % 4u]));
        kv_put(P.v_off + e0 + tid, bitcast<u32>(vw[tid]));
      }
    }
  }

  let sk = tid / 8u;        // scores: key sk of the tile, dims 4 (tid % 8) + 32 i
  let sd = tid % 8u;
  let od = tid % HD;        // values: output dim od, keys k with k % NS == ks
  let ks = tid / HD;
  let NS = 256u / HD;
  var m = NEG;
  var l = 0.0;
  var o = 0.0;
  for (var t = t0; t < t1; t++) {
    let j = t * TK + sk;
    var s = 0.0;
    if (own && j == S.pos) {
      for (var d = 4u * sd; d < HDR; d += 32u) { s += dot(qv[d / 4u], kw[d / 4u]); }
    } else if (j < kn) {
      let kb = j * P.kv_dim + kvh * HDR;
      for (var d = 4u * sd; d < HDR; d += 32u) { s += dot(qv[d / 4u], kv4(0u, kb + d)); }
    }
    xs[tid] = s;
    workgroupBarrier();
    if (tid < TK) {
      var a = 0.0;
      for (var u = 0u; u < 8u; u++) { a += xs[tid * 8u + u]; }
      sc[tid] = select(NEG, a * P.scale, t * TK + tid < kn);
    }
    workgroupBarrier();
    var mt = NEG;
    for (var k = 0u; k < TK; k++) { mt = max(mt, sc[k]); }
    let mn = max(m, mt);
    let corr = exp(m - mn);
    var lt = 0.0;
    for (var k = 0u; k < TK; k++) { lt += exp(sc[k] - mn); }  // exp(NEG - mn) = 0 past the last key
    var ot = 0.0;
    if (od < HDR) {
      for (var k = ks; k < TK; k += NS) {
        let jk = min(t * TK + k, kn - 1u);  // past the last key: p = 0, any row in range
        var v: f32;
        if (own && jk == S.pos) { v = vw[od]; } else { v = kv1(P.v_off, jk * P.kv_dim + kvh * HDR + od); }
        ot += exp(sc[k] - mn) * v;
      }
    }
    l = l * corr + lt;
    o = o * corr + ot;
    m = mn;
    workgroupBarrier();  // sc and xs are rewritten by the next tile
  }
  xs[tid] = o;
  workgroupBarrier();
  if (tid < HD && tid < HDR) {
    var a = 0.0;
    for (var u = 0u; u < NS; u++) { a += xs[u * HD + tid]; }
    if (ns == 1u) {
      O[h * HDR + tid] = a / l;
    } else {
      let b = (h * SPLITS_MAX + wg.y) * (HD + 4u);
      if (tid == 0u) {
        PART[b] = m;
        PART[b + 1u] = l;
      }
      PART[b + 4u + tid] = a;
    }
  }
}
