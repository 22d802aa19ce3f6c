// qk_rope.wgsl — for a prompt chunk, after the [q|k|v] product: per-head RMSNorm (QK-norm) and
// NeoX RoPE of Q (in place) and K, and K and V into the layer's KV cache at positions
// S.pos + t. One workgroup per (head of q, k or v; token). The decode path does this inside
// qkv.wgsl.

override HD: u32 = 128u;
override KV16: bool = false;

@group(0) @binding(0) var<storage, read_write> QKV: array<f32>;
@group(0) @binding(1) var<storage, read_write> KV: array<u32>;
@group(0) @binding(2) var<storage, read> NW: array<f32>;
@group(0) @binding(3) var<storage, read> ROPE: array<vec2<f32>>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

var<workgroup> hv: array<f32, HD>;
var<workgroup> ho: array<f32, HD>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let hh = wg.x;
  let t = wg.y;
  let pos = S.pos + t;
  if (t >= S.n || pos >= P.n_ctx || hh >= P.n_head + 2u * P.n_head_kv) { return; }
  let base = t * P.q_stride + hh * HD;
  for (var i = tid; i < HD; i += 256u) { hv[i] = QKV[base + i]; }
  workgroupBarrier();
  let half = HD / 2u;
  if (hh < P.n_head + P.n_head_kv) {
    var s2 = 0.0;
    for (var i = tid; i < HD; i += 256u) { s2 += hv[i] * hv[i]; }
    s2 = wg_sum(s2, tid);
    let r2 = inverseSqrt(s2 / f32(HD) + P.eps);
    let noff = select(P.norm2_off, P.norm_off, hh < P.n_head);
    for (var i = tid; i < half; i += 256u) {
      let a = hv[i] * r2 * NW[noff + i];
      let b = hv[i + half] * r2 * NW[noff + i + half];
      let cs = ROPE[pos * half + i];
      ho[i] = a * cs.x - b * cs.y;
      ho[i + half] = a * cs.y + b * cs.x;
    }
  } else {
    for (var i = tid; i < HD; i += 256u) { ho[i] = hv[i]; }
  }
  workgroupBarrier();
  if (hh < P.n_head) {
    for (var i = tid; i < HD; i += 256u) { QKV[base + i] = ho[i]; }
    return;
  }
  var kh = hh - P.n_head;
  var vb = 0u;
  if (kh >= P.n_head_kv) { kh -= P.n_head_kv; vb = P.v_off; }
  let e0 = pos * P.kv_dim + kh * HD;
  if (KV16) {
    for (var j = tid; j < half; j += 256u) { KV[vb + e0 / 2u + j] = pack2x16float(vec2<f32>(ho[2u * j], ho[2u * j + 1u])); }
  } else {
    for (var i = tid; i < HD; i += 256u) { KV[vb + e0 + i] = bitcast<u32>(ho[i]); }
  }
}
