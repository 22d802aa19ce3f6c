// dq_mvb.wgsl — the generic plan's fast matrix-vector product (decode) for the block types Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K (constant WT; other types run dq_mv.wgsl). Same
// contract as dq_mv (P.flags: bit 0 bias, bit 1 residual, bit 2 the input row of token S.last,
// bit 3 per-tensor scale), TPR lanes a row, RPG passes of 256 / TPR rows a workgroup, cols % 32 == 0.
//
// A row is cut into slots of 8 weights that consecutive lanes take in turn (slot g: lane g % TPR),
// laid out so that a subgroup's loads are coalesced: 32 consecutive slots are one K-quant block
// (or 8 blocks of the 32-weight types), a lane reads one or two whole quant words of it and the
// 8 inputs those words multiply, which for neighbouring lanes are neighbouring words and vec4s.
// (An earlier form gave each lane whole 32-weight units: its input loads, 128 bytes apart from
// lane to lane, touched 32 cache lines per instruction and bounded the H100 at ~300-400 GB/s.)
// Per slot the sum is taken per scale group as d (Σ q x - zero Σ x) or d s Σ q x - dmin m Σ x.
// (On the H100 this moved the Q6_K output head of a Llama-3.2-1B-shaped file from 582 to 274 us;
// the layers' small products stay latency-bound at 20-30 us: bench/results/h100-2026-12-07-gputypes.)
//
// Fused forms for one token (the host picks them only where they hold):
//   NORM: the input is RMSNorm(x) with the weights at VB[P.q_off] and P.eps, computed here (each
//         workgroup sums x^2 itself) instead of by a norm dispatch writing h.
//   GU:   each row is a row of the gate matrix (at P.w_off) and the same row of the up matrix (at
//         byte P.v_off of the same buffer): y = act(gate x) * (up x) (ACT as act.wgsl), instead
//         of two products and an act dispatch. No bias, scale or residual then.

override NORM: bool = false;
override GU: bool = false;
override ACT: u32 = 0u;
override RPG: u32 = 1u;  // row passes a workgroup: rows RPG * 256 / TPR (the output head: fewer
                         // workgroups, each reading x and, with NORM, summing its squares once)

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<vec4<f32>>;  // the vectors (16-byte loads of the norm weights)
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

const M4: u32 = 0x0f0f0f0fu;

var<private> XB: u32;    // the input row's first vec4
var<private> XS: f32;    // NORM: 1 / rms of the input (else 1)
var<private> NW: u32;    // NORM: the norm weights' first vec4 in VB (the host aligns vectors to 4 floats)

// Inputs 4 i .. 4 i + 3 of the row; with NORM times the norm weights (the row's sum is then
// multiplied by 1 / rms once, in main: every slot's sum is linear in the inputs).
fn xin(i: u32) -> vec4<f32> {
  if (NORM) {
    return X[XB + i] * VB[NW + i];
  }
  return X[XB + i];
}

// Float i of the vectors.
fn vb1(i: u32) -> f32 { return VB[i / 4u][i % 4u]; }

fn hsum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }

// Quants as floats without an int -> float conversion (quarter rate on NVIDIA: with one a weight
// the products were bound by it): an n-bit field placed in the top n mantissa bits of 1.0 is
// exactly 1 + q / 2^n, and Σ q x = 2^n (Σ (1 + q / 2^n) x - Σ x); the Σ x are needed for the
// offsets and mins anyway. nib: the low nibbles of w's four bytes; q6: its four 6-bit bytes; q8:
// its four int8 bytes, as unsigned b + 128 (Σ b x = 256 Σ f x - 384 Σ x).
const ONE: u32 = 0x3f800000u;
fn nib(w: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>((vec4<u32>(w << 19u, w << 11u, w << 3u, w >> 5u) & vec4<u32>(0x00780000u)) | vec4<u32>(ONE));
}
fn q6f(w: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>((vec4<u32>(w << 17u, w << 9u, w << 1u, w >> 7u) & vec4<u32>(0x007e0000u)) | vec4<u32>(ONE));
}
fn q8f(w: u32) -> vec4<f32> {
  let v = w ^ 0x80808080u;
  return bitcast<vec4<f32>>((vec4<u32>(v << 15u, v << 7u, v >> 1u, v >> 9u) & vec4<u32>(0x007f8000u)) | vec4<u32>(ONE));
}
// Small unsigned integers as floats: 2^23 + n, less 2^23.
fn ufl(v: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(v | vec4<u32>(0x4b000000u)) - vec4<f32>(8388608.0);
}

// Scales and mins of sub-blocks 2 j and 2 j + 1 of the Q4_K / Q5_K block at byte a (a multiple
// of 4): (sc0, sc1, m0, m1), as GGML's get_scale_min_k4, four sub-blocks a word at once (the 12
// bytes w0 w1 w2 at a + 4: sub-block s < 4 has scale w0[s] & 63 and min w1[s] & 63; s >= 4 has
// scale w2[s - 4] & 15 | (w0[s - 4] >> 6) << 4 and min w2[s - 4] >> 4 | (w1[s - 4] >> 6) << 4),
// without branches (j differs from lane to lane).
fn kpair(a: u32, j: u32) -> vec4<f32> {
  let i = a / 4u + 1u;
  let w0 = W[i];
  let w1 = W[i + 1u];
  let w2 = W[i + 2u];
  let hi = j >= 2u;
  let sc = select(w0 & 0x3f3f3f3fu, (w2 & M4) | ((w0 >> 2u) & 0x30303030u), hi);
  let mn = select(w1 & 0x3f3f3f3fu, ((w2 >> 4u) & M4) | ((w1 >> 2u) & 0x30303030u), hi);
  let sh = 16u * (j % 2u);
  return ufl(vec4<u32>(sc >> sh, sc >> (sh + 8u), mn >> sh, mn >> (sh + 8u)) & vec4<u32>(255u));
}

// 32 bits at an even byte offset a, without a branch: the types of 18, 22 and 34 bytes a block
// have their quants at 2 mod 4 in every other block, and with 4 slots a block the lanes of a
// subgroup cover 8 blocks, so dq.wgsl's b32 (a branch on the alignment) would run both ways.
// (W[i + 1] past the data is read but not used.)
fn b32e(a: u32) -> u32 {
  let i = a >> 2u;
  let w0 = W[i];
  let w1 = W[i + 1u];
  return select((w0 >> 16u) | (w1 << 16u), w0, (a & 2u) == 0u);
}
// The same for 64 bits (two words) at an even byte offset.
fn b64e(a: u32) -> vec2<u32> {
  let i = a >> 2u;
  let w = vec3<u32>(W[i], W[i + 1u], W[i + 2u]);
  return select((w.xy >> vec2<u32>(16u)) | (w.yz << vec2<u32>(16u)), w.xy, (a & 2u) == 0u);
}

// Q8_0, 34 bytes / 32: f16 d, int8 qs[32]. Slot g: block g / 4, weights 8 (g % 4) .. + 7.
fn s_q8_0(rb: u32, g: u32) -> f32 {
  let a = rb + (g / 4u) * 34u;
  let q = b64e(a + 2u + 8u * (g % 4u));
  let x0 = xin(2u * g);
  let x1 = xin(2u * g + 1u);
  return h16(a) * (256.0 * (dot(q8f(q.x), x0) + dot(q8f(q.y), x1)) - 384.0 * (hsum(x0) + hsum(x1)));
}

// Q4_0, 18 bytes / 32: f16 d, qs[16] (element j < 16 the low nibble of qs[j], else the high one of
// qs[j - 16]); (q - 8) d. Slot g: block g / 4, quant word p = g % 4: elements 4 p .. and 16 + 4 p ...
fn s_q4_0(rb: u32, g: u32) -> f32 {
  let b = g / 4u;
  let p = g % 4u;
  let a = rb + b * 18u;
  let q = b32e(a + 2u + 4u * p);
  let x0 = xin(8u * b + p);
  let x1 = xin(8u * b + 4u + p);
  return h16(a) * (dot(u8x4(q & M4), x0) + dot(u8x4((q >> 4u) & M4), x1) - 8.0 * (hsum(x0) + hsum(x1)));
}

// Q4_1, 20 bytes / 32: f16 d, f16 m, qs[16]; q d + m.
fn s_q4_1(rb: u32, g: u32) -> f32 {
  let b = g / 4u;
  let p = g % 4u;
  let a = rb + b * 20u;
  let q = b32(a + 4u + 4u * p);
  let x0 = xin(8u * b + p);
  let x1 = xin(8u * b + 4u + p);
  return h16(a) * (dot(u8x4(q & M4), x0) + dot(u8x4((q >> 4u) & M4), x1)) + h16(a + 2u) * (hsum(x0) + hsum(x1));
}

// Q5_0, 22 bytes / 32: f16 d, u32 qh (bit j: fifth bit of element j), qs[16] as Q4_0; (q - 16) d.
fn s_q5_0(rb: u32, g: u32) -> f32 {
  let b = g / 4u;
  let p = g % 4u;
  let a = rb + b * 22u;
  let qh = b32e(a + 2u);
  let q = b32e(a + 6u + 4u * p);
  let x0 = xin(8u * b + p);
  let x1 = xin(8u * b + 4u + p);
  let s = dot(u8x4((q & M4) | hi5(qh, 4u * p)), x0) + dot(u8x4(((q >> 4u) & M4) | hi5(qh, 16u + 4u * p)), x1);
  return h16(a) * (s - 16.0 * (hsum(x0) + hsum(x1)));
}

// Q5_1, 24 bytes / 32: f16 d, f16 m, u32 qh, qs[16]; q d + m.
fn s_q5_1(rb: u32, g: u32) -> f32 {
  let b = g / 4u;
  let p = g % 4u;
  let a = rb + b * 24u;
  let qh = b32(a + 4u);
  let q = b32(a + 8u + 4u * p);
  let x0 = xin(8u * b + p);
  let x1 = xin(8u * b + 4u + p);
  let s = dot(u8x4((q & M4) | hi5(qh, 4u * p)), x0) + dot(u8x4(((q >> 4u) & M4) | hi5(qh, 16u + 4u * p)), x1);
  return h16(a) * s + h16(a + 2u) * (hsum(x0) + hsum(x1));
}

// Q4_K, 144 bytes / 256 (blocks at multiples of 16 bytes): f16 d, f16 dmin, scales[12], qs[128].
// Slot g: block g / 32, s = g % 32: pair j = s / 8 of sub-blocks (2 j: low nibbles, 2 j + 1: high
// ones of qs[32 j ..]), quant word m = s % 8: elements 64 j + 4 m .. and 64 j + 32 + 4 m ...
fn s_q4_K(rb: u32, g: u32) -> f32 {
  let b = g / 32u;
  let s = g % 32u;
  let j = s / 8u;
  let a = rb + b * 144u;
  let q = W[(a + 16u + 32u * j) / 4u + s % 8u];
  let xo = 64u * b + 16u * j + s % 8u;
  let x0 = xin(xo);
  let x1 = xin(xo + 8u);
  let k = kpair(a, j);
  let dm = unpack2x16float(W[a / 4u]);
  let s0 = hsum(x0);
  let s1 = hsum(x1);
  return dm.x * (k.x * 16.0 * (dot(nib(q), x0) - s0) + k.y * 16.0 * (dot(nib(q >> 4u), x1) - s1)) - dm.y * (k.z * s0 + k.w * s1);
}

// Q5_K, 176 bytes / 256: f16 d, f16 dmin, scales[12], qh[32], qs[128]; as Q4_K plus the fifth bit
// of element l of sub-block t, bit t of qh[l].
fn s_q5_K(rb: u32, g: u32) -> f32 {
  let b = g / 32u;
  let s = g % 32u;
  let j = s / 8u;
  let a = rb + b * 176u;
  let q = W[(a + 48u + 32u * j) / 4u + s % 8u];
  let h = W[(a + 16u) / 4u + s % 8u] >> (2u * j);
  let xo = 64u * b + 16u * j + s % 8u;
  let x0 = xin(xo);
  let x1 = xin(xo + 8u);
  let k = kpair(a, j);
  let dm = unpack2x16float(W[a / 4u]);
  let q0 = (q & M4) | ((h & 0x01010101u) << 4u);
  let q1 = ((q >> 4u) & M4) | ((h & 0x02020202u) << 3u);
  return dm.x * (k.x * dot(u8x4(q0), x0) + k.y * dot(u8x4(q1), x1)) - dm.y * (k.z * hsum(x0) + k.w * hsum(x1));
}

// Q6_K, 210 bytes / 256: ql[128], qh[64], int8 scales[16], f16 d. Slot g: block g / 32, s = g % 32:
// half n = s / 16, k = s % 16, c = k / 8, l = 4 (k % 8): the ql word at 64 n + 4 k holds in its low
// nibbles elements 128 n + 32 c + l .. + 3 (high bits at shift 2 c of the qh word at 128 + 32 n + l)
// and in its high nibbles the same + 64 (shift 2 c + 4); scales sc[8 n + l / 16 + 2 c] and that + 4
// (the same byte of the next word); (q - 32) d sc, computed
// as 64 Σ (1 + q / 64) x - 96 Σ x (q6f).
fn s_q6_K(rb: u32, g: u32) -> f32 {
  let b = g / 32u;
  let s = g % 32u;
  let n = s / 16u;
  let k = s % 16u;
  let c = k / 8u;
  let l = 4u * (k % 8u);
  let a = rb + b * 210u;
  let ql = b32(a + 64u * n + 4u * k);
  let qh = b32(a + 128u + 32u * n + l) >> (2u * c);
  let q0 = (ql & M4) | ((qh & 0x03030303u) << 4u);
  let q1 = ((ql >> 4u) & M4) | (((qh >> 4u) & 0x03030303u) << 4u);
  let xo = 64u * b + 32u * n + 8u * c + l / 4u;
  let x0 = xin(xo);
  let x1 = xin(xo + 16u);
  let si = a + 192u + 8u * n + l / 16u + 2u * c;
  let sw = si >> 2u;
  let ss = 24u - 8u * (si & 3u);
  // the two int8 scales as unsigned s + 128 (the top byte after the shift), less 128
  let sc = ufl(vec4<u32>((W[sw] << ss) >> 24u, (W[sw + 1u] << ss) >> 24u, 0u, 0u) ^ vec4<u32>(128u)) - 128.0;
  return h16(a + 208u) * (sc.x * (64.0 * dot(q6f(q0), x0) - 96.0 * hsum(x0)) + sc.y * (64.0 * dot(q6f(q1), x1) - 96.0 * hsum(x1)));
}

fn slot(rb: u32, g: u32) -> f32 {
  switch (WT) {
    case 2u: { return s_q4_0(rb, g); }
    case 3u: { return s_q4_1(rb, g); }
    case 6u: { return s_q5_0(rb, g); }
    case 7u: { return s_q5_1(rb, g); }
    case 12u: { return s_q4_K(rb, g); }
    case 13u: { return s_q5_K(rb, g); }
    case 14u: { return s_q6_K(rb, g); }
    default: { return s_q8_0(rb, g); }
  }
}

// Σ over the lane's slots of the row at byte rb, two slots an iteration so that the loads of both
// are in flight together. (Four an iteration measured no faster on the H100 for the layers'
// products and ~10 % slower for the output head, Q6_K and Q8_0.)
fn row_dot(rb: u32, lane: u32, ns: u32) -> f32 {
  var acc = 0.0;
  var g = lane;
  while (g + TPR < ns) {
    acc += slot(rb, g) + slot(rb, g + TPR);
    g += 2u * TPR;
  }
  if (g < ns) { acc += slot(rb, g); }
  return acc;
}

// GU: the gate row at ra and the up row at rb. For the 32-weight types (light slots) two slots of
// each an iteration, interleaved; for the K-quants one row after the other (on the H100: Q8_0
// 8960 x 1536 in 38.6 us interleaved against 52.1 us one after the other, Q4_K 8192 x 2048 in
// 87.6 us against 67.8 us).
fn row_dot2(ra: u32, rb: u32, lane: u32, ns: u32) -> vec2<f32> {
  if (WT >= 12u) { return vec2<f32>(row_dot(ra, lane, ns), row_dot(rb, lane, ns)); }
  var acc = vec2<f32>(0.0);
  for (var g = lane; g < ns; g += 2u * TPR) {
    let g1 = g + TPR;
    let h = min(g1, ns - 1u);
    acc += vec2<f32>(slot(ra, g) + select(0.0, slot(ra, h), g1 < ns), slot(rb, g) + select(0.0, slot(rb, h), g1 < ns));
  }
  return acc;
}

fn act(x: f32) -> f32 {
  if (ACT == 1u) {
    let z = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1.0 + (1.0 - 2.0 / (exp(2.0 * z) + 1.0)));
  } else if (ACT == 2u) {
    return select(0.0, x * x, x > 0.0);
  }
  return x / (1.0 + exp(-x));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let lane = tid % TPR;
  let t = select(0u, S.last, (P.flags & 4u) != 0u);
  XB = (P.in_off + t * P.in_stride) / 4u;
  XS = 1.0;
  if (NORM) {
    var ss = 0.0;
    for (var i = tid; i < P.cols / 4u; i += 256u) { let v = X[XB + i]; ss += dot(v, v); }
    XS = 1.0 / sqrt(wg_sum(ss, tid) / f32(P.cols) + P.eps);
    NW = P.q_off / 4u;
  }
  let ns = P.cols / 8u;
  for (var k = 0u; k < RPG; k++) {
    let r = (wg.x * RPG + k) * (256u / TPR) + tid / TPR;
    let rr = min(r, P.rows - 1u);
    var acc: f32;
    if (GU) {
      let gu = row_dot2(P.w_off + rr * P.row_bytes, P.v_off + rr * P.row_bytes, lane, ns);
      acc = act(lanes_sum(gu.x, tid) * XS) * (lanes_sum(gu.y, tid) * XS);
    } else {
      acc = lanes_sum(row_dot(P.w_off + rr * P.row_bytes, lane, ns), tid) * XS;
    }
    if (r < P.rows && lane == 0u) {
      var y = acc;
      if ((P.flags & 8u) != 0u) { y *= vb1(P.norm2_off); }
      if ((P.flags & 1u) != 0u) { y += vb1(P.norm_off + P.row0 + r); }
      let o = P.out_off + P.row0 + r;
      if ((P.flags & 2u) != 0u) { Y[o] += y; } else { Y[o] = y; }
    }
  }
}
