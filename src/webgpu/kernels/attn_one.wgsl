// attn_one.wgsl — the generic plan's attention of ONE token (decode): causal grouped-query
// attention of the token at position S.pos over the cache positions 0 .. S.pos, f32 throughout.
// q comes from the qkv row (already QK-normed and rotated; rope.wgsl has written this token's k
// and v into the cache), the result goes to O[h * HDR ..]. One workgroup of 256 per q head (the
// prompt kernel, attention.wgsl, gives a whole KV group of q heads one workgroup, which for one
// token left all but a handful of SMs idle). Keys go in tiles of 32 with an online softmax:
//   - scores: 8 invocations a key, each a strided quarter-row of the dims (neighbouring
//     invocations read neighbouring 16 bytes of the key row), summed through workgroup memory;
//   - values: invocation i owns output dim i % HD for the keys k % (256 / HD) == i / HD of the
//     tile (neighbouring invocations read neighbouring floats of a value row); the 256 / HD
//     partial outputs of a dim are summed at the end.
// HD: 32, 64, 128 or 256 (the staged head dimension); HDR: the real one (a multiple of 8 <= HD).

override HD: u32 = 128u;
override HDR: u32 = HD;
override KV16: bool = false;  // KV cache as f16 pairs (else f32)

const TK: u32 = 32u;          // keys per tile
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> KV: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  if (h >= P.n_head) { return; }
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
  let nt = (kn + TK - 1u) / TK;
  for (var t = 0u; t < nt; t++) {
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
    O[h * HDR + tid] = a / l;
  }
}
