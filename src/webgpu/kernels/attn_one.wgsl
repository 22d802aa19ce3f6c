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

override HD: u32 = 128u;
override HDR: u32 = HD;
override KV16: bool = false;  // KV cache as f16 pairs (else f32)
override MERGE: bool = false; // the merge of the partials (grid n_head)
override SPLITS_MAX: u32 = 32u; // PART's ranges a head (the host's GEN_ATT_SPLITS)

const TK: u32 = 32u;          // keys per tile
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> KV: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<storage, read_write> PART: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

var<workgroup> qv: array<vec4<f32>, 64>;  // q (HDR dims, zeros after)
var<workgroup> xs: array<f32, 256>;       // per invocation: a partial score, at the end a partial output
var<workgroup> sc: array<f32, TK>;        // the tile's scores (NEG past the last key)

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
  if (tid < HD / 4u) {
    var q = vec4<f32>(0.0);
    if (4u * tid < HDR) {
      let b = P.q_off + h * HDR + 4u * tid;
      q = vec4<f32>(QKV[b], QKV[b + 1u], QKV[b + 2u], QKV[b + 3u]);
    }
    qv[tid] = q;
  }
  workgroupBarrier();

  let sk = tid / 8u;        // scores: key sk of the tile, dims 4 (tid % 8) + 32 i
  let sd = tid % 8u;
  let od = tid % HD;        // values: output dim od, keys k with k % NS == ks
  let ks = tid / HD;
  let NS = 256u / HD;
  var m = NEG;
  var l = 0.0;
  var o = 0.0;
  // this workgroup's tiles: t0 .. t1 - 1 of the nt tiles of keys (none past the last range)
  let nt = (kn + TK - 1u) / TK;
  let ns = max(S.splits, 1u);
  let tps = (nt + ns - 1u) / ns;
  let t0 = min(wg.y * tps, nt);
  let t1 = min(t0 + tps, nt);
  for (var t = t0; t < t1; t++) {
    let j = t * TK + sk;
    var s = 0.0;
    if (j < kn) {
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
        ot += exp(sc[k] - mn) * kv1(P.v_off, jk * P.kv_dim + kvh * HDR + od);
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
