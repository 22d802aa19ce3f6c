// dq.wgsl — reading weights of any GGML type in their file layout from `W: array<u32>` (declared by
// the kernel): one function per type, dq_<type>(rb, k), gives elements k .. k + 3 (k a multiple of
// 4) of the row that starts at byte rb. Block layouts exactly as GGML's ggml-common.h; every
// block size is even, so 16-bit fields lie at even byte offsets, but 32-bit groups of quants may
// straddle two array words (b32). The generic plan's products, embedding and tests pick a type
// with the pipeline constant WT (the GGML type id): dq() switches on it, and the compiler keeps
// only that branch. The fused Qwen3 / Q1_0 kernels do not use this file (q1.wgsl).

override WT: u32 = 0u;

// 32 bits at byte offset a (any alignment). Buffers are padded to 4 bytes, so W[i + 1] exists
// whenever a + 4 does not pass the data.
fn b32(a: u32) -> u32 {
  let i = a >> 2u;
  let s = (a & 3u) * 8u;
  if (s == 0u) { return W[i]; }
  return (W[i] >> s) | (W[i + 1u] << (32u - s));
}
fn b8(a: u32) -> u32 { return (W[a >> 2u] >> ((a & 3u) * 8u)) & 255u; }
// The f16 at byte offset a (even).
fn h16(a: u32) -> f32 {
  let v = unpack2x16float(W[a >> 2u]);
  return select(v.x, v.y, (a & 2u) != 0u);
}
// Four unsigned bytes of a word as floats.
fn u8x4(w: u32) -> vec4<f32> { return vec4<f32>(unpack4xU8(w)); }

fn dq_f32(rb: u32, k: u32) -> vec4<f32> {
  let i = (rb >> 2u) + k;
  return bitcast<vec4<f32>>(vec4<u32>(W[i], W[i + 1u], W[i + 2u], W[i + 3u]));
}
fn dq_f16(rb: u32, k: u32) -> vec4<f32> {   // rows of whole words (cols % 4 == 0, rb % 4 == 0)
  let i = (rb >> 2u) + k / 2u;
  return vec4<f32>(unpack2x16float(W[i]), unpack2x16float(W[i + 1u]));
}
fn dq_bf16(rb: u32, k: u32) -> vec4<f32> {
  let i = (rb >> 2u) + k / 2u;
  let a = W[i];
  let b = W[i + 1u];
  return bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));
}
// Q8_0: 34 bytes / 32: f16 d, int8 qs[32].
fn dq_q8_0(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 32u) * 34u;
  return vec4<f32>(unpack4xI8(b32(a + 2u + k % 32u))) * h16(a);
}
// Q4_0: 18 bytes / 32: f16 d, qs[16]; element j < 16: low nibble of qs[j], else high of qs[j - 16];
// value (q - 8) d.
fn dq_q4_0(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 32u) * 18u;
  let j = k % 32u;
  let q = (b32(a + 2u + j % 16u) >> ((j / 16u) * 4u)) & 0x0f0f0f0fu;
  return (u8x4(q) - 8.0) * h16(a);
}
// Q4_1: 20 bytes / 32: f16 d, f16 m, qs[16]; value q d + m.
fn dq_q4_1(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 32u) * 20u;
  let j = k % 32u;
  let q = (b32(a + 4u + j % 16u) >> ((j / 16u) * 4u)) & 0x0f0f0f0fu;
  return u8x4(q) * h16(a) + h16(a + 2u);
}
// The fifth bits of elements j .. j + 3 (bit j of qh) as 0x10 in each byte.
fn hi5(qh: u32, j: u32) -> u32 {
  let h = (qh >> j) & 15u;
  return ((h & 1u) | ((h & 2u) << 7u) | ((h & 4u) << 14u) | ((h & 8u) << 21u)) << 4u;
}
// Q5_0: 22 bytes / 32: f16 d, u32 qh (bit j: fifth bit of element j), qs[16] as Q4_0; (q - 16) d.
fn dq_q5_0(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 32u) * 22u;
  let j = k % 32u;
  let q = ((b32(a + 6u + j % 16u) >> ((j / 16u) * 4u)) & 0x0f0f0f0fu) | hi5(b32(a + 2u), j);
  return (u8x4(q) - 16.0) * h16(a);
}
// Q5_1: 24 bytes / 32: f16 d, f16 m, u32 qh, qs[16]; q d + m.
fn dq_q5_1(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 32u) * 24u;
  let j = k % 32u;
  let q = ((b32(a + 8u + j % 16u) >> ((j / 16u) * 4u)) & 0x0f0f0f0fu) | hi5(b32(a + 4u), j);
  return u8x4(q) * h16(a) + h16(a + 2u);
}
// Q2_K: 84 bytes / 256: scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16 dmin.
// Element e: half n = e / 128, quarter j = (e % 128) / 32, l = e % 32: q = (qs[32 n + l] >> 2 j) & 3,
// scale byte sc[8 n + 2 j + l / 16]; value d (sc & 15) q - dmin (sc >> 4).
fn dq_q2_K(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 256u) * 84u;
  let e = k % 256u;
  let n = e / 128u;
  let j = (e % 128u) / 32u;
  let l = e % 32u;
  let q = (b32(a + 16u + 32u * n + l) >> (2u * j)) & 0x03030303u;
  let sc = b8(a + 8u * n + 2u * j + l / 16u);
  return u8x4(q) * (h16(a + 80u) * f32(sc & 15u)) - h16(a + 82u) * f32(sc >> 4u);
}
// Q3_K: 110 bytes / 256: hmask[32], qs[64], scales[12] (16 6-bit scales), f16 d. Element e (n, j,
// l as Q2_K): q = (qs[32 n + l] >> 2 j) & 3, minus 4 where bit 4 n + j of hmask[l] is clear; 6-bit
// scale s = 8 n + 2 j + l / 16: low 4 bits the low (s < 8) or high nibble of scales[s % 8], high 2
// bits bits 2 (s / 4) of scales[8 + s % 4]; value d (scale - 32) q.
fn dq_q3_K(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 256u) * 110u;
  let e = k % 256u;
  let n = e / 128u;
  let j = (e % 128u) / 32u;
  let l = e % 32u;
  let q = (b32(a + 32u + 32u * n + l) >> (2u * j)) & 0x03030303u;
  let hb = (b32(a + l) >> (4u * n + j)) & 0x01010101u;
  let s = 8u * n + 2u * j + l / 16u;
  let lo = (b8(a + 96u + s % 8u) >> (4u * (s / 8u))) & 15u;
  let hi = (b8(a + 104u + s % 4u) >> (2u * (s / 4u))) & 3u;
  let sc = f32(i32(lo | (hi << 4u)) - 32);
  return (u8x4(q | (hb << 2u)) - 4.0) * (h16(a + 108u) * sc);
}
// The 6-bit scale and min of sub-block s of a Q4_K / Q5_K block (scales at byte sc), as GGML's
// get_scale_min_k4.
fn scale_min_k4(sc: u32, s: u32) -> vec2<f32> {
  if (s < 4u) { return vec2<f32>(f32(b8(sc + s) & 63u), f32(b8(sc + s + 4u) & 63u)); }
  let d = (b8(sc + s + 4u) & 15u) | ((b8(sc + s - 4u) >> 6u) << 4u);
  let m = (b8(sc + s + 4u) >> 4u) | ((b8(sc + s) >> 6u) << 4u);
  return vec2<f32>(f32(d), f32(m));
}
// Q4_K: 144 bytes / 256: f16 d, f16 dmin, scales[12], qs[128]. Element e: group g = e / 64 of
// qs[32 g ..], low nibbles for (e % 64) < 32, high ones after; sub-block 2 g + that half;
// value d sc q - dmin m.
fn dq_q4_K(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 256u) * 144u;
  let e = k % 256u;
  let g = e / 64u;
  let hh = (e % 64u) / 32u;
  let sm = scale_min_k4(a + 4u, 2u * g + hh);
  let q = (b32(a + 16u + g * 32u + e % 32u) >> (hh * 4u)) & 0x0f0f0f0fu;
  return u8x4(q) * (h16(a) * sm.x) - h16(a + 2u) * sm.y;
}
// Q5_K: 176 bytes / 256: f16 d, f16 dmin, scales[12], qh[32], qs[128]; as Q4_K plus a fifth bit,
// bit 2 g + half of qh[e % 32].
fn dq_q5_K(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 256u) * 176u;
  let e = k % 256u;
  let g = e / 64u;
  let hh = (e % 64u) / 32u;
  let sm = scale_min_k4(a + 4u, 2u * g + hh);
  let lo = (b32(a + 48u + g * 32u + e % 32u) >> (hh * 4u)) & 0x0f0f0f0fu;
  let hi = ((b32(a + 16u + e % 32u) >> (2u * g + hh)) & 0x01010101u) << 4u;
  return u8x4(lo | hi) * (h16(a) * sm.x) - h16(a + 2u) * sm.y;
}
// Q6_K: 210 bytes / 256: ql[128], qh[64], int8 scales[16], f16 d. Element e: half n = e / 128,
// quarter c = (e % 128) / 32, l = e % 32: low 4 bits from ql[64 n + 32 (c & 1) + l] (high nibble
// for c >= 2), 2 high bits (qh[32 n + l] >> 2 c) & 3, scale sc[8 n + l / 16 + 2 c]; (q - 32) d sc.
fn dq_q6_K(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 256u) * 210u;
  let e = k % 256u;
  let n = e / 128u;
  let c = (e % 128u) / 32u;
  let l = e % 32u;
  let lo = (b32(a + 64u * n + 32u * (c & 1u) + l) >> ((c >> 1u) * 4u)) & 0x0f0f0f0fu;
  let hi = ((b32(a + 128u + 32u * n + l) >> (2u * c)) & 0x03030303u) << 4u;
  let sc = f32((i32(b8(a + 192u + 8u * n + l / 16u + 2u * c)) << 24u) >> 24u);
  return (u8x4(lo | hi) - 32.0) * (h16(a + 208u) * sc);
}
// Q1_0: 18 bytes / 128: f16 d, 128 sign bits (bit j % 8 of byte j / 8: +d, else -d).
fn dq_q1_0(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 128u) * 18u;
  let j = k % 128u;
  let bits = (b8(a + 2u + j / 8u) >> (j % 8u)) & 15u;
  let on = (vec4<u32>(bits) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
  let d = h16(a);
  return select(vec4<f32>(-d), vec4<f32>(d), on == vec4<u32>(1u));
}
// Q2_0: 18 bytes / 64: f16 d, qs[16] of 2-bit codes (element j: bits 2 (j % 4) of qs[j / 4]);
// value (q - 1) d: -d, 0, d, 2d.
fn dq_q2_0(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 64u) * 18u;
  let q = (vec4<u32>(b8(a + 2u + (k % 64u) / 4u)) >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(3u);
  return (vec4<f32>(q) - 1.0) * h16(a);
}
// TQ2_0: 66 bytes / 256: qs[64], f16 d. Element e: byte 32 (e / 128) + e % 32, bits 2 ((e % 128) / 32);
// value (q - 1) d.
fn dq_tq2_0(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 256u) * 66u;
  let e = k % 256u;
  let q = (b32(a + 32u * (e / 128u) + e % 32u) >> (2u * ((e % 128u) / 32u))) & 0x03030303u;
  return (u8x4(q) - 1.0) * h16(a + 64u);
}
// TQ1_0: 54 bytes / 256: qs[48] (5 base-3 digits a byte), qh[4] (4 a byte), f16 d. A byte holds its
// digits as a fraction of 256: digit n of byte b is ((b 3^n) mod 256) 3 / 256. Elements: qs[0..32)
// digit n -> 32 n + m; qs[32..48) digit n -> 160 + 16 n + m; qh digit n -> 240 + 4 n + j. Four
// consecutive elements are the same digit of four consecutive bytes. Value (digit - 1) d.
fn dq_tq1_0(rb: u32, k: u32) -> vec4<f32> {
  let a = rb + (k / 256u) * 54u;
  let e = k % 256u;
  var o = e % 32u;
  var n = e / 32u;
  if (e >= 240u) { o = 48u; n = (e - 240u) / 4u; }
  else if (e >= 160u) { o = 32u + (e - 160u) % 16u; n = (e - 160u) / 16u; }
  var p = 1u;
  for (var i = 0u; i < n; i++) { p *= 3u; }
  let q = (((unpack4xU8(b32(a + o)) * p) & vec4<u32>(255u)) * 3u) >> vec4<u32>(8u);
  return (vec4<f32>(q) - 1.0) * h16(a + 52u);
}

// Elements k .. k + 3 of the row at byte rb, of type WT.
fn dq(rb: u32, k: u32) -> vec4<f32> {
  switch (WT) {
    case 1u: { return dq_f16(rb, k); }
    case 30u: { return dq_bf16(rb, k); }
    case 8u: { return dq_q8_0(rb, k); }
    case 2u: { return dq_q4_0(rb, k); }
    case 3u: { return dq_q4_1(rb, k); }
    case 6u: { return dq_q5_0(rb, k); }
    case 7u: { return dq_q5_1(rb, k); }
    case 10u: { return dq_q2_K(rb, k); }
    case 11u: { return dq_q3_K(rb, k); }
    case 12u: { return dq_q4_K(rb, k); }
    case 13u: { return dq_q5_K(rb, k); }
    case 14u: { return dq_q6_K(rb, k); }
    case 41u: { return dq_q1_0(rb, k); }
    case 42u: { return dq_q2_0(rb, k); }
    case 34u: { return dq_tq1_0(rb, k); }
    case 35u: { return dq_tq2_0(rb, k); }
    default: { return dq_f32(rb, k); }
  }
}
