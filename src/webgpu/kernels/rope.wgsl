// rope.wgsl — the generic plan's RoPE and KV-cache write, after the q, k, v products (and QK-norm):
// for token t at position S.pos + t, rotates the first NROT dims of each q and k head in the qkv
// buffer (NEOX: element i with i + NROT / 2, else 2i with 2i + 1; the table ROPE[pos][NROT / 2]
// holds cos, sin with the frequency factors and position scaling already in), writes q back and
// k, v into the layer's cache (f32, or f16 pairs with KV16). Grid: (n_head + 2 n_head_kv) x n.

override HD: u32 = 128u;
override NROT: u32 = 128u;
override NEOX: bool = true;
override KV16: bool = false;

@group(0) @binding(0) var<storage, read_write> QKV: array<f32>;
@group(0) @binding(1) var<storage, read_write> KV: array<u32>;
@group(0) @binding(2) var<storage, read> ROPE: array<vec2<f32>>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

var<workgroup> ho: array<f32, HD>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let hh = wg.x;
  let t = wg.y;
  let pos = S.pos + t;
  if (t >= S.n || pos >= P.n_ctx || hh >= P.n_head + 2u * P.n_head_kv) { return; }
  let base = t * P.q_stride + hh * HD;
  for (var i = tid; i < HD; i += 64u) { ho[i] = QKV[base + i]; }
  workgroupBarrier();
  let half = NROT / 2u;
  if (hh < P.n_head + P.n_head_kv) {
    for (var i = tid; i < half; i += 64u) {
      var i0 = 2u * i;
      var i1 = 2u * i + 1u;
      if (NEOX) { i0 = i; i1 = i + half; }
      let a = QKV[base + i0];
      let b = QKV[base + i1];
      let cs = ROPE[pos * half + i];
      ho[i0] = a * cs.x - b * cs.y;
      ho[i1] = a * cs.y + b * cs.x;
    }
  }
  workgroupBarrier();
  if (hh < P.n_head) {
    for (var i = tid; i < HD; i += 64u) { QKV[base + i] = ho[i]; }
    return;
  }
  var kh = hh - P.n_head;
  var vb = 0u;
  if (kh >= P.n_head_kv) { kh -= P.n_head_kv; vb = P.v_off; }
  let e0 = pos * P.kv_dim + kh * HD;
  if (KV16) {
    for (var j = tid; j < HD / 2u; j += 64u) { KV[vb + e0 / 2u + j] = pack2x16float(vec2<f32>(ho[2u * j], ho[2u * j + 1u])); }
  } else {
    for (var i = tid; i < HD; i += 64u) { KV[vb + e0 + i] = bitcast<u32>(ho[i]); }
  }
}
