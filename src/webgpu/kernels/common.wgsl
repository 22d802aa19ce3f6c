// common.wgsl — prepended to every kernel: the parameter blocks and small helpers.
// Params, Step and Samp mirror wg_params, wg_step and wg_samp in src/backend_webgpu.c field for
// field (all 32-bit); change them together. No bindings live here.

struct Params {
  rows: u32, cols: u32, row_bytes: u32, w_off: u32,    // W[rows][cols], Q1_0 rows at byte w_off
  row0: u32, in_off: u32, in_stride: u32, out_off: u32, // first row of a part; input offset, row stride
  out_stride: u32, norm_off: u32, norm2_off: u32, flags: u32,
  n_head: u32, n_head_kv: u32, head_dim: u32, kv_dim: u32,
  q_off: u32, q_stride: u32, n_ctx: u32, v_off: u32,   // q rows in the qkv buffer; V's first word
  eps: f32, scale: f32, n_ff: u32, pad: u32,
}

// tokens, first position, n - 1, pos + n; splits: workgroups per head of attn_dec.wgsl
struct Step { n: u32, pos: u32, last: u32, kv_len: u32, splits: u32, pad0: u32, pad1: u32, pad2: u32 }

struct Samp {
  temp: f32, mode: u32, top_k: u32, top_p: f32,
  min_p: f32, rep: f32, pres: f32, freq: f32,
  last_n: i32, pen_on: u32, u: f32, pad: u32,
}

// Sum of +x[i] where bit i of nib is set, -x[i] where it is clear: four Q1_0 weights of sign only.
fn sdot4(x: vec4<f32>, nib: u32) -> f32 {
  let on = (vec4<u32>(nib) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
  let s = select(-x, x, on == vec4<u32>(1u));
  return (s.x + s.y) + (s.z + s.w);
}

// Sum over one 32-weight word: x holds the 32 activations, bits the 32 signs.
fn sdot32(x: array<vec4<f32>, 8>, bits: u32) -> f32 {
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) { s += sdot4(x[i], bits >> (4u * i)); }
  return s;
}

// The 16-bit quantisation of the products' inputs (decode: qx.wgsl, qo.wgsl; prompt: xq.wgsl): a
// block's scale d = max|x| / 32767 and 1 / d (0 for an all-zero block), q = round(x / d), and q
// as two int8 planes, hi = q >> 8 and lo = (q & 255) - 128 (q = 256 hi + lo + 128).
fn q16_scale(amax: f32) -> vec2<f32> {
  let d = amax / 32767.0;
  var inv = 0.0;
  if (d > 0.0) { inv = 1.0 / d; }
  return vec2<f32>(d, inv);
}
fn q16(x: vec4<f32>, inv: f32) -> vec4<i32> {
  return clamp(vec4<i32>(round(x * inv)), vec4<i32>(-32767), vec4<i32>(32767));
}
fn q16_hi(q: vec4<i32>) -> u32 { return pack4xI8(q >> vec4<u32>(8u)); }
fn q16_lo(q: vec4<i32>) -> u32 { return pack4xI8((q & vec4<i32>(255)) - vec4<i32>(128)); }

const KEY_NEG_INF: u32 = 0x007fffffu;  // the key of -inf (and of NaN)

// Order-preserving key of a logit: larger float, larger key. NaN ranks as -inf, +inf as the
// largest finite float (as src/sample.c treats them).
fn key_of(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return KEY_NEG_INF; }
  var c = b;
  if (c == 0x7f800000u) { c = 0x7f7fffffu; }
  if ((c >> 31u) == 1u) { return ~c; }
  return c | 0x80000000u;
}

fn val_of(k: u32) -> f32 {
  if (k >= 0x80000000u) { return bitcast<f32>(k & 0x7fffffffu); }
  return bitcast<f32>(~k);
}

// a ranks above b: higher key, or the same key and a lower id.
fn better(ak: u32, ai: u32, bk: u32, bi: u32) -> bool {
  return ak > bk || (ak == bk && ai < bi);
}

var<workgroup> am_k: array<u32, 256>;
var<workgroup> am_i: array<u32, 256>;

// The best (key, id) over a 256-invocation workgroup (id 0xffffffff: none); uniform control flow.
fn wg_argmax(k: u32, i: u32, tid: u32) -> vec2<u32> {
  am_k[tid] = k;
  am_i[tid] = i;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (tid < s && am_i[tid + s] != 0xffffffffu &&
        (am_i[tid] == 0xffffffffu || better(am_k[tid + s], am_i[tid + s], am_k[tid], am_i[tid]))) {
      am_k[tid] = am_k[tid + s];
      am_i[tid] = am_i[tid + s];
    }
    workgroupBarrier();
  }
  let r = vec2<u32>(am_k[0], am_i[0]);
  workgroupBarrier();
  return r;
}
