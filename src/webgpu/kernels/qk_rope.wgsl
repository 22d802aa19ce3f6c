// qk_rope.wgsl — for a prompt chunk, after the [q|k|v] product: per-head RMSNorm (QK-norm) and
// NeoX RoPE of Q (in place) and K, and K and V into the layer's KV cache at positions
// S.pos + t. TPR consecutive invocations per (head of q, k or v; token), 256 / TPR heads of one
// token a workgroup (grid: heads rounded up to 256 / TPR, tokens); each invocation takes the
// pairs (i, i + HD / 2), i = lane, lane + TPR, .., straight from and to global memory, and the
// head's sum of squares is lanes_sum's (a subgroup's on subgroup devices). The decode path does
// this inside attn_dec.wgsl.

override HD: u32 = 128u;
override KV16: bool = false;

@group(0) @binding(0) var<storage, read_write> QKV: array<f32>;
@group(0) @binding(1) var<storage, read_write> KV: array<u32>;
@group(0) @binding(2) var<storage, read> NW: array<f32>;
@group(0) @binding(3) var<storage, read> ROPE: array<vec2<f32>>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

override NU: u32 = (HD / 4u + TPR - 1u) / TPR;  // units (below) an invocation takes
const QU: u32 = 16u;          // units an invocation holds at most: HD <= 256, TPR >= 4

// Unit u of a head: its elements 2u, 2u + 1 and their RoPE partners 2u + HD / 2, 2u + 1 + HD / 2
// (adjacent pairs: one f16 word each in an f16 cache).
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let hh = wg.x * (256u / TPR) + tid / TPR;
  let lane = tid % TPR;
  let t = wg.y;
  let pos = S.pos + t;
  // uniform across the workgroup; hh's own bound is checked after lanes_sum (every invocation
  // takes part in it)
  if (t >= S.n || pos >= P.n_ctx) { return; }
  let nh = P.n_head + 2u * P.n_head_kv;
  let half = HD / 2u;
  let base = t * P.q_stride + min(hh, nh - 1u) * HD;
  var a: array<vec2<f32>, QU>;
  var b: array<vec2<f32>, QU>;
  var s2 = 0.0;
  for (var k = 0u; k < NU; k++) {
    let i = 2u * (lane + k * TPR);
    if (i < half) {
      a[k] = vec2<f32>(QKV[base + i], QKV[base + i + 1u]);
      b[k] = vec2<f32>(QKV[base + half + i], QKV[base + half + i + 1u]);
      s2 += dot(a[k], a[k]) + dot(b[k], b[k]);
    }
  }
  s2 = lanes_sum(s2, tid);
  if (hh >= nh) { return; }
  if (hh < P.n_head + P.n_head_kv) {
    let r2 = inverseSqrt(s2 / f32(HD) + P.eps);
    let noff = select(P.norm2_off, P.norm_off, hh < P.n_head);
    for (var k = 0u; k < NU; k++) {
      let i = 2u * (lane + k * TPR);
      if (i < half) {
        let x = a[k] * r2 * vec2<f32>(NW[noff + i], NW[noff + i + 1u]);
        let y = b[k] * r2 * vec2<f32>(NW[noff + half + i], NW[noff + half + i + 1u]);
        let c0 = ROPE[pos * half + i];
        let c1 = ROPE[pos * half + i + 1u];
        let cs = vec2<f32>(c0.x, c1.x);
        let sn = vec2<f32>(c0.y, c1.y);
        a[k] = x * cs - y * sn;
        b[k] = x * sn + y * cs;
      }
    }
  }
  if (hh < P.n_head) {
    for (var k = 0u; k < NU; k++) {
      let i = 2u * (lane + k * TPR);
      if (i < half) {
        QKV[base + i] = a[k].x;
        QKV[base + i + 1u] = a[k].y;
        QKV[base + half + i] = b[k].x;
        QKV[base + half + i + 1u] = b[k].y;
      }
    }
    return;
  }
  var kh = hh - P.n_head;
  var vb = 0u;
  if (kh >= P.n_head_kv) { kh -= P.n_head_kv; vb = P.v_off; }
  let e0 = pos * P.kv_dim + kh * HD;
  for (var k = 0u; k < NU; k++) {
    let i = 2u * (lane + k * TPR);
    if (i < half) {
      if (KV16) {
        KV[vb + (e0 + i) / 2u] = pack2x16float(a[k]);
        KV[vb + (e0 + half + i) / 2u] = pack2x16float(b[k]);
      } else {
        KV[vb + e0 + i] = bitcast<u32>(a[k].x);
        KV[vb + e0 + i + 1u] = bitcast<u32>(a[k].y);
        KV[vb + e0 + half + i] = bitcast<u32>(b[k].x);
        KV[vb + e0 + half + i + 1u] = bitcast<u32>(b[k].y);
      }
    }
  }
}
