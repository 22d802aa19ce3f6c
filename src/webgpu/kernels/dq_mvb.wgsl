// dq_mvb.wgsl — the generic plan's fast matrix-vector product (decode) for the block types Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K (constant WT; other types run dq_mv.wgsl). Same
// contract as dq_mv (P.flags: bit 0 bias, bit 1 residual, bit 2 the input row of token S.last,
// bit 3 per-tensor scale), but a lane takes whole units of 32 weights instead of 4 at a time: a
// row's units are dealt round-robin to its TPR lanes (consecutive lanes, consecutive bytes of the
// row), 256 / TPR rows a workgroup. A unit is one block of the 32-weight types and one sub-block
// of the 256-weight K-quants. Per unit the block's scale (and min) is read once, the quants as
// whole 32-bit words (8 of them for 32 bytes), and the sum is taken in integer-free form:
// s = Σ q x per scale group, then d (s - zero Σ x) or d s + m Σ x, so the inner loop is one
// unpack and one 4-wide dot per 4 weights. Needs cols % 32 == 0.

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

const M4: u32 = 0x0f0f0f0fu;

// Σx over the unit's 32 inputs at X[xo ..], in halves of 16 (x: low 16, y: high 16).
fn xsum(xo: u32) -> vec2<f32> {
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    a += X[xo + i];
    b += X[xo + 4u + i];
  }
  return vec2<f32>(dot(a, vec4<f32>(1.0)), dot(b, vec4<f32>(1.0)));
}

// Blocks of 2 mod 4 bytes (Q8_0, Q4_0) start at byte 0 or 2 of a word, alternating between
// neighbouring lanes. Their f16 d and the quant word i after it come from aligned loads: word w0
// holds d (low half for an even start), and quant word i is the high half of word w0 + i and the
// low half of w0 + i + 1 (even start) or word w0 + 1 + i (odd start). Both forms are computed and
// selected, so that the lanes do not diverge (b32 would branch per word).
fn qword(w0: u32, i: u32, odd: bool) -> u32 {
  let n = W[w0 + 1u + i];
  return select((W[w0 + i] >> 16u) | (n << 16u), n, odd);
}

// Q8_0, 34 bytes: f16 d, int8 qs[32].
fn u_q8_0(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + u * 34u;
  let w0 = a / 4u;
  let odd = (a & 2u) != 0u;
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) { s += dot(vec4<f32>(unpack4xI8(qword(w0, i, odd))), X[xo + i]); }
  let d = unpack2x16float(W[w0]);
  return s * select(d.x, d.y, odd);
}

// Q4_0, 18 bytes: f16 d, qs[16]: element j < 16 the low nibble of qs[j], else the high one of
// qs[j - 16]; (q - 8) d.
fn u_q4_0(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + u * 18u;
  let w0 = a / 4u;
  let odd = (a & 2u) != 0u;
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let q = qword(w0, i, odd);
    s += dot(u8x4(q & M4), X[xo + i]) + dot(u8x4((q >> 4u) & M4), X[xo + 4u + i]);
  }
  let x = xsum(xo);
  let d = unpack2x16float(W[w0]);
  return select(d.x, d.y, odd) * (s - 8.0 * (x.x + x.y));
}

// Q4_1, 20 bytes: f16 d, f16 m, qs[16]; q d + m.
fn u_q4_1(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + u * 20u;
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let q = b32(a + 4u + 4u * i);
    s += dot(u8x4(q & M4), X[xo + i]) + dot(u8x4((q >> 4u) & M4), X[xo + 4u + i]);
  }
  let x = xsum(xo);
  return h16(a) * s + h16(a + 2u) * (x.x + x.y);
}

// Q5_0, 22 bytes: f16 d, u32 qh, qs[16] as Q4_0 with the fifth bits; (q - 16) d.
fn u_q5_0(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + u * 22u;
  let qh = b32(a + 2u);
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let q = b32(a + 6u + 4u * i);
    s += dot(u8x4((q & M4) | hi5(qh, 4u * i)), X[xo + i]) + dot(u8x4(((q >> 4u) & M4) | hi5(qh, 16u + 4u * i)), X[xo + 4u + i]);
  }
  let x = xsum(xo);
  return h16(a) * (s - 16.0 * (x.x + x.y));
}

// Q5_1, 24 bytes: f16 d, f16 m, u32 qh, qs[16]; q d + m.
fn u_q5_1(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + u * 24u;
  let qh = b32(a + 4u);
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let q = b32(a + 8u + 4u * i);
    s += dot(u8x4((q & M4) | hi5(qh, 4u * i)), X[xo + i]) + dot(u8x4(((q >> 4u) & M4) | hi5(qh, 16u + 4u * i)), X[xo + 4u + i]);
  }
  let x = xsum(xo);
  return h16(a) * s + h16(a + 2u) * (x.x + x.y);
}

// Q4_K, 144 bytes / 256 (blocks at multiples of 4 bytes): unit u is sub-block s = u % 8, the low
// (s even) or high nibbles of qs[32 (s / 2) ..]; d sc q - dmin m.
fn u_q4_K(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + (u / 8u) * 144u;
  let sb = u % 8u;
  let sh = (sb & 1u) * 4u;
  let w0 = (a + 16u + (sb / 2u) * 32u) / 4u;
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) { s += dot(u8x4((W[w0 + i] >> sh) & M4), X[xo + i]); }
  let dm = unpack2x16float(W[a / 4u]);
  let sm = scale_min_k4(a + 4u, sb);
  let x = xsum(xo);
  return dm.x * sm.x * s - dm.y * sm.y * (x.x + x.y);
}

// Q5_K, 176 bytes / 256: as Q4_K with qs at 48 and the fifth bit s of qh[l] (qh at 16).
fn u_q5_K(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + (u / 8u) * 176u;
  let sb = u % 8u;
  let sh = (sb & 1u) * 4u;
  let w0 = (a + 48u + (sb / 2u) * 32u) / 4u;
  let h0 = (a + 16u) / 4u;
  var s = 0.0;
  for (var i = 0u; i < 8u; i++) {
    let q = ((W[w0 + i] >> sh) & M4) | (((W[h0 + i] >> sb) & 0x01010101u) << 4u);
    s += dot(u8x4(q), X[xo + i]);
  }
  let dm = unpack2x16float(W[a / 4u]);
  let sm = scale_min_k4(a + 4u, sb);
  let x = xsum(xo);
  return dm.x * sm.x * s - dm.y * sm.y * (x.x + x.y);
}

// Q6_K, 210 bytes / 256: unit u is half n = s / 4, quarter c = s % 4 (s = u % 8): low bits from
// ql[64 n + 32 (c & 1) + l] (high nibbles for c >= 2), high bits (qh[32 n + l] >> 2 c) & 3, scales
// sc[8 n + 2 c] for l < 16 and sc[8 n + 2 c + 1] after; (q - 32) d sc.
fn u_q6_K(rb: u32, u: u32, xo: u32) -> f32 {
  let a = rb + (u / 8u) * 210u;
  let sb = u % 8u;
  let n = sb / 4u;
  let c = sb % 4u;
  let lo0 = a + 64u * n + 32u * (c & 1u);
  let hi0 = a + 128u + 32u * n;
  var s0 = 0.0;
  var s1 = 0.0;
  for (var i = 0u; i < 8u; i++) {
    let q = ((b32(lo0 + 4u * i) >> ((c >> 1u) * 4u)) & M4) | (((b32(hi0 + 4u * i) >> (2u * c)) & 0x03030303u) << 4u);
    let v = dot(u8x4(q), X[xo + i]);
    if (i < 4u) { s0 += v; } else { s1 += v; }
  }
  let x = xsum(xo);
  let sc = b32(a + 192u + 8u * n + 2u * c);
  let sc0 = f32((i32(sc) << 24u) >> 24u);
  let sc1 = f32((i32(sc) << 16u) >> 24u);
  return h16(a + 208u) * (sc0 * (s0 - 32.0 * x.x) + sc1 * (s1 - 32.0 * x.y));
}

fn unit(rb: u32, u: u32, xo: u32) -> f32 {
  switch (WT) {
    case 2u: { return u_q4_0(rb, u, xo); }
    case 3u: { return u_q4_1(rb, u, xo); }
    case 6u: { return u_q5_0(rb, u, xo); }
    case 7u: { return u_q5_1(rb, u, xo); }
    case 12u: { return u_q4_K(rb, u, xo); }
    case 13u: { return u_q5_K(rb, u, xo); }
    case 14u: { return u_q6_K(rb, u, xo); }
    default: { return u_q8_0(rb, u, xo); }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let r = wg.x * (256u / TPR) + tid / TPR;
  let lane = tid % TPR;
  let rr = min(r, P.rows - 1u);
  let t = select(0u, S.last, (P.flags & 4u) != 0u);
  let xb = (P.in_off + t * P.in_stride) / 4u;
  let rb = P.w_off + rr * P.row_bytes;
  let nu = P.cols / 32u;
  var acc = 0.0;
  for (var u = lane; u < nu; u += TPR) { acc += unit(rb, u, xb + u * 8u); }
  acc = lanes_sum(acc, tid);
  if (r < P.rows && lane == 0u) {
    var y = acc;
    if ((P.flags & 8u) != 0u) { y *= VB[P.norm2_off]; }
    if ((P.flags & 1u) != 0u) { y += VB[P.norm_off + P.row0 + r]; }
    let o = P.out_off + P.row0 + r;
    if ((P.flags & 2u) != 0u) { Y[o] += y; } else { Y[o] = y; }
  }
}
