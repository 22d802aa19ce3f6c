// qkv.wgsl — the attention entry for one token (decode), fused: h = RMSNorm(x) * attn_norm; one
// head of Q, K or V = its HD rows of the [q|k|v] matrix times h; for Q and K heads the per-head
// RMSNorm (QK-norm) and NeoX RoPE at position S.pos; Q goes to row 0 of the qkv buffer, K and V
// into the layer's KV cache at S.pos. One workgroup per head: n_head + 2 n_head_kv workgroups.
// Rows are split as in matvec.wgsl, 4 at a time per group of TPR invocations.

override HD: u32 = 128u;   // head dimension
override KV16: bool = false;  // KV cache as f16 pairs (else f32)

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> NW: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> QKV: array<f32>;
@group(0) @binding(4) var<storage, read_write> KV: array<u32>;
@group(0) @binding(5) var<storage, read> ROPE: array<vec2<f32>>;
@group(0) @binding(6) var<uniform> P: Params;
@group(0) @binding(7) var<uniform> S: Step;

var<workgroup> hv: array<f32, HD>;  // the head before QK-norm and RoPE
var<workgroup> ho: array<f32, HD>;  // after

// This lane's share of dot(W[r], h) for rows r0 .. r0 + 3 (clamped to the matrix; rows past the
// head are computed but not kept).
fn rows_part(r0: u32, lane: u32) -> vec4<f32> {
  let nw = P.cols / 32u;
  let last = P.rows - 1u;
  let a = vec4<u32>(min(r0, last), min(r0 + 1u, last), min(r0 + 2u, last), min(r0 + 3u, last)) * P.row_bytes + P.w_off;
  var acc = vec4<f32>(0.0);
  for (var w = lane; w < nw; w += TPR) {
    var xs: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) { xs[i] = X[w * 8u + i] * NW[P.norm_off / 4u + w * 8u + i]; }
    let bo = (w >> 2u) * 18u;
    let wo = bo + 2u + (w & 3u) * 4u;
    acc += vec4<f32>(wscale(a.x + bo) * sdot32(xs, w32(a.x + wo)), wscale(a.y + bo) * sdot32(xs, w32(a.y + wo)),
                     wscale(a.z + bo) * sdot32(xs, w32(a.z + wo)), wscale(a.w + bo) * sdot32(xs, w32(a.w + wo)));
  }
  return acc;
}

fn nw_at(i: u32) -> f32 { return NW[i / 4u][i % 4u]; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let hh = wg.x;
  let pos = S.pos;
  if (pos >= P.n_ctx || hh >= P.n_head + 2u * P.n_head_kv) { return; }
  var ss = 0.0;
  for (var i = tid; i < P.cols / 4u; i += 256u) { let v = X[i]; ss += dot(v, v); }
  ss = wg_sum(ss, tid);
  let rs = inverseSqrt(ss / f32(P.cols) + P.eps);
  let groups = 256u / TPR;
  let lane = tid % TPR;
  let grp = tid / TPR;
  for (var k = 0u; k < (HD + groups * 4u - 1u) / (groups * 4u); k++) {
    let rl = (k * groups + grp) * 4u;   // rows rl .. rl + 3 of the head
    let tot = lanes_sum4(rows_part(hh * HD + rl, lane), tid) * rs;
    for (var j = 0u; j < 4u; j++) {
      if (lane == 0u && rl + j < HD) { hv[rl + j] = tot[j]; }
    }
  }
  workgroupBarrier();
  let half = HD / 2u;
  if (hh < P.n_head + P.n_head_kv) {
    // QK-norm: y = x * rsqrt(mean(x^2) + eps) * w, then rotate pairs (i, i + half).
    var s2 = 0.0;
    for (var i = tid; i < HD; i += 256u) { s2 += hv[i] * hv[i]; }
    s2 = wg_sum(s2, tid);
    let r2 = inverseSqrt(s2 / f32(HD) + P.eps);
    let noff = select(P.flags, P.norm2_off, hh < P.n_head);
    for (var i = tid; i < half; i += 256u) {
      let a = hv[i] * r2 * nw_at(noff + i);
      let b = hv[i + half] * r2 * nw_at(noff + i + half);
      let cs = ROPE[pos * half + i];
      ho[i] = a * cs.x - b * cs.y;
      ho[i + half] = a * cs.y + b * cs.x;
    }
  } else {
    for (var i = tid; i < HD; i += 256u) { ho[i] = hv[i]; }
  }
  workgroupBarrier();
  if (hh < P.n_head) {
    for (var i = tid; i < HD; i += 256u) { QKV[P.q_off + hh * HD + i] = ho[i]; }
    return;
  }
  // K heads, then V heads: element e of the cache row at pos; V starts at word v_off.
  var kh = hh - P.n_head;
  var base = 0u;
  if (kh >= P.n_head_kv) { kh -= P.n_head_kv; base = P.v_off; }
  let e0 = pos * P.kv_dim + kh * HD;
  if (KV16) {
    for (var j = tid; j < half; j += 256u) { KV[base + e0 / 2u + j] = pack2x16float(vec2<f32>(ho[2u * j], ho[2u * j + 1u])); }
  } else {
    for (var i = tid; i < HD; i += 256u) { KV[base + e0 + i] = bitcast<u32>(ho[i]); }
  }
}
