// dq_mvw.wgsl — the generic plan's decode product for Q4_K and Q6_K rows (WT 12, 14: a Q4_K_M file's
// weights), with
// the contract of dq_mvb.wgsl (P.flags: bit 0 bias, bit 1 residual, bit 2 the input row of token
// S.last, bit 3 per-tensor scale; NORM, GU and ACT as there) and three changes that dq_mvb's
// 8-weight slots cannot make (on the H100 its products ran at 300-900 GB/s, bound by instructions:
// about 7 a weight, 1.75 of them quarter-rate int -> float conversions):
//   - a lane takes whole 32-weight chunks (chunk c of a block's 8): Q4_K one 16-byte load of quants
//     (qs bytes 16 c ..) and one of its block's 16-byte head (d, dmin, the 12 bytes of scales);
//     Q6_K (blocks of 210 bytes, at any even offset mod 16) 16 bytes each of ql, qh and the scales
//     (+ d), each two aligned 16-byte loads shifted into place; the scales decoded once per chunk;
//   - no int -> float conversion per weight: a nibble n becomes the float 1 + n / 16 by placing it
//     in the mantissa of 1.0 (two integer instructions), and Σ n x = 16 (Σ (1 + n / 16) x - Σ x),
//     where Σ x over the sub-block is needed for the mins anyway;
//   - RW rows a subgroup (GU: RW gate rows and the same up rows) take the same chunks, so that
//     each input vec4 (with NORM, times its norm weight) is loaded once for all of them.
// Q4_K rows start at multiples of 16 bytes, Q6_K rows at even bytes (the host checks P.w_off,
// P.v_off and P.row_bytes), KS subgroups of TPR lanes a row group (KS > 1: each takes every KS-th
// run of TPR chunks, their sums meet in workgroup memory), 256 / (KS TPR) row groups a workgroup, RPG passes,
// cols % 256 == 0. Two chunks an
// iteration so that the loads of both are in flight together. (ld16 may read the 16-byte word
// after the bytes it uses: the host's weight buffers end in one more word, wt_size.)

override NORM: bool = false;
override GU: bool = false;
override ACT: u32 = 0u;
override RW: u32 = 1u;  // output rows a subgroup (1 .. 2)
override RPG: u32 = 1u; // row passes a workgroup (the output head: each workgroup's norm read once for more rows)
override KS: u32 = 1u;  // subgroups a row group (1, 2, 4): long rows of few rows split K over KS subgroups
override WT: u32 = 12u; // 12: Q4_K, 14: Q6_K
// IQ (Q4_K): integer products. The workgroup first quantises its input row (x, with NORM times
// the norm weights) into workgroup memory, per 32-block q = round(x / d) with |q| <= 32639 as
// two int8 planes q = 256 hi + lo (hi = (q + 128) >> 8, lo in -128 .. 127: no offset term), d, and
// each 16 elements' sum of q; a chunk's 32 nibbles then meet the planes in 16 dot4I8Packed
// (Σ n q = 256 Σ n hi + Σ n lo), about 50 instructions a chunk and row against ~170 in floats.
// KMAX: the largest cols the pipeline serves (the staging's size; 32 without IQ).
override IQ: bool = false;
override KMAX: u32 = 32u;

@group(0) @binding(0) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

const M4: u32 = 0x0f0f0f0fu;
const ONE: u32 = 0x3f800000u;

var<workgroup> ks_part: array<vec4<f32>, 256u / TPR>;  // KS > 1: each subgroup's row sums

var<workgroup> qh: array<vec4<u32>, KMAX / 16u>;  // IQ: the hi plane, 16 elements a vec4
var<workgroup> ql: array<vec4<u32>, KMAX / 16u>;  // IQ: the lo plane
var<workgroup> qd: array<f32, KMAX / 32u>;        // IQ: d of each 32-block
var<workgroup> qs: array<f32, KMAX / 16u>;        // IQ: sum of q over each 16 elements

var<private> XB: u32;
var<private> NW: u32;

fn xin(i: u32) -> vec4<f32> {
  if (NORM) {
    return X[XB + i] * VB[NW + i];
  }
  return X[XB + i];
}

fn hsum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }

// 1 + n / 16 for the low nibbles n of the four bytes of w (exact: n lands in mantissa bits 19-22).
fn nib(w: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>((vec4<u32>(w << 19u, w << 11u, w << 3u, w >> 5u) & vec4<u32>(0x00780000u)) | vec4<u32>(ONE));
}

// A small integer as a float without a conversion instruction: 2^23 + n, less 2^23.
fn ufl(v: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(v | vec4<u32>(0x4b000000u)) - vec4<f32>(8388608.0);
}

// The scales and mins (sc 2 j, sc 2 j + 1, m 2 j, m 2 j + 1) of chunk c's two sub-blocks
// (j = c / 2) from its Q4_K block's head hd (dq_mvb's kpair).
fn q4k_sm(hd: vec4<u32>, c: u32) -> vec4<f32> {
  let j = c / 2u;
  let hi = j >= 2u;
  let sc = select(hd.y & 0x3f3f3f3fu, (hd.w & M4) | ((hd.y >> 2u) & 0x30303030u), hi);
  let mn = select(hd.z & 0x3f3f3f3fu, ((hd.w >> 4u) & M4) | ((hd.z >> 2u) & 0x30303030u), hi);
  let sh = 16u * (j % 2u);
  return ufl(vec4<u32>(sc >> sh, sc >> (sh + 8u), mn >> sh, mn >> (sh + 8u)) & vec4<u32>(255u));
}

// Chunk c of the Q4_K block whose 16-byte head is W[h] (quants W[h + 1 ..]): its two sub-blocks'
// part (sub-block 2 j: the low nibbles, 2 j + 1: the high ones, j = c / 2) against the inputs x
// (x[0 .. 3] the low nibbles', x[4 .. 7] the high ones'), whose sums are sx.
fn q4k(h: u32, c: u32, x: ptr<function, array<vec4<f32>, 8>>, sx: vec2<f32>) -> f32 {
  let hd = W[h];
  let q = W[h + 1u + c];
  let k = q4k_sm(hd, c);
  let dm = unpack2x16float(hd.x);
  var a0 = nib(q.x) * (*x)[0];
  var a1 = nib(q.x >> 4u) * (*x)[4];
  a0 = fma(nib(q.y), (*x)[1], a0);
  a1 = fma(nib(q.y >> 4u), (*x)[5], a1);
  a0 = fma(nib(q.z), (*x)[2], a0);
  a1 = fma(nib(q.z >> 4u), (*x)[6], a1);
  a0 = fma(nib(q.w), (*x)[3], a0);
  a1 = fma(nib(q.w >> 4u), (*x)[7], a1);
  let s0 = 16.0 * (hsum(a0) - sx.x);
  let s1 = 16.0 * (hsum(a1) - sx.y);
  return dm.x * (k.x * s0 + k.y * s1) - dm.y * (k.z * sx.x + k.w * sx.y);
}

// 1 + q / 64 for the four 6-bit bytes of w.
fn q6f(w: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>((vec4<u32>(w << 17u, w << 9u, w << 1u, w >> 7u) & vec4<u32>(0x007e0000u)) | vec4<u32>(ONE));
}

// The 16 bytes at the even byte offset o (Q6_K blocks of 210 bytes start at every even offset mod
// 16): two 16-byte loads and a shift by o % 16 without branches (by 8 bytes, 4, then 2); .e: the
// 16-bit word after them (bytes o + 16, o + 17) in its low half.
struct B16 { v: vec4<u32>, e: u32 }
fn ld16(o: u32) -> B16 {
  let i = o >> 4u;
  let a = W[i];
  let b = W[i + 1u];
  let s8 = (o & 8u) != 0u;
  let lo = select(a, vec4<u32>(a.z, a.w, b.x, b.y), s8);
  let hi = select(b.xy, b.zw, s8);
  let s4 = (o & 4u) != 0u;
  let w = select(lo, vec4<u32>(lo.y, lo.z, lo.w, hi.x), s4);
  let e = select(hi.x, hi.y, s4);
  if ((o & 2u) == 0u) { return B16(w, e & 0xffffu); }
  return B16((w >> vec4<u32>(16u)) | (vec4<u32>(w.y, w.z, w.w, e) << vec4<u32>(16u)), e >> 16u);
}

// Byte j (0 .. 15) of v, as an int8, as a float.
fn s8f(v: vec4<u32>, j: u32) -> f32 {
  let w = select(select(v.x, v.y, j >= 4u), select(v.z, v.w, j >= 12u), j >= 8u);
  return ufl(vec4<u32>(((w >> (8u * (j % 4u))) & 255u) ^ 128u)).x - 128.0;
}

// Q6_K, 210 bytes / 256: ql[128], qh[64], int8 scales[16], f16 d. Chunk c = g % 8 of block g / 8
// (at byte a): half n = c / 4, t = c % 4, u = t % 2, p = t / 2: the 16 ql bytes at 64 n + 16 t hold
// in their low nibbles elements 128 n + 32 p + 16 u + i (high bits at shift 2 p of the qh byte at
// 128 + 32 n + 16 u + i, scale sc[8 n + u + 2 p]) and in their high nibbles the same + 64 (shift
// 2 p + 4, scale + 4); value (q - 32) d sc, as 64 Σ (1 + q / 64) x - 96 Σ x.
fn q6k(rb: u32, g: u32, x: ptr<function, array<vec4<f32>, 8>>, sx: vec2<f32>) -> f32 {
  let c = g % 8u;
  let n = c / 4u;
  let t = c % 4u;
  let u = t % 2u;
  let p = t / 2u;
  let a = rb + (g / 8u) * 210u;
  let ql = ld16(a + 64u * n + 16u * t).v;
  let qh = ld16(a + 128u + 32u * n + 16u * u).v >> vec4<u32>(2u * p);
  let tl = ld16(a + 192u);
  let j = 8u * n + u + 2u * p;
  let d = unpack2x16float(tl.e).x;
  let l4 = ql & vec4<u32>(M4);
  let h4 = (ql >> vec4<u32>(4u)) & vec4<u32>(M4);
  let lo = l4 | ((qh & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
  let hi = h4 | (((qh >> vec4<u32>(4u)) & vec4<u32>(0x03030303u)) << vec4<u32>(4u));
  var a0 = q6f(lo.x) * (*x)[0];
  var a1 = q6f(hi.x) * (*x)[4];
  a0 = fma(q6f(lo.y), (*x)[1], a0);
  a1 = fma(q6f(hi.y), (*x)[5], a1);
  a0 = fma(q6f(lo.z), (*x)[2], a0);
  a1 = fma(q6f(hi.z), (*x)[6], a1);
  a0 = fma(q6f(lo.w), (*x)[3], a0);
  a1 = fma(q6f(hi.w), (*x)[7], a1);
  return d * (s8f(tl.v, j) * (64.0 * hsum(a0) - 96.0 * sx.x) + s8f(tl.v, j + 4u) * (64.0 * hsum(a1) - 96.0 * sx.y));
}

// Chunk g's part of the row at byte rb (Q4_K: at vec4 rb / 16).
fn chunk(rb: u32, g: u32, x: ptr<function, array<vec4<f32>, 8>>, sx: vec2<f32>) -> f32 {
  if (WT == 14u) { return q6k(rb, g, x, sx); }
  return q4k(rb / 16u + 9u * (g / 8u), g % 8u, x, sx);
}

// The inputs of chunk g and their two sums. Q4_K: block g / 8, chunk c = g % 8: sub-block pair
// j = c / 2, half c % 2; Q6_K as q6k.
fn load_x(g: u32, x: ptr<function, array<vec4<f32>, 8>>) -> vec2<f32> {
  let c = g % 8u;
  var xo = 64u * (g / 8u) + 16u * (c / 2u) + 4u * (c % 2u);
  var xh = 8u;
  if (WT == 14u) {
    xo = 64u * (g / 8u) + 32u * (c / 4u) + 8u * ((c % 4u) / 2u) + 4u * (c % 2u);
    xh = 16u;
  }
  // (written out: constant indices keep the arrays in registers)
  (*x)[0] = xin(xo);
  (*x)[1] = xin(xo + 1u);
  (*x)[2] = xin(xo + 2u);
  (*x)[3] = xin(xo + 3u);
  (*x)[4] = xin(xo + xh);
  (*x)[5] = xin(xo + xh + 1u);
  (*x)[6] = xin(xo + xh + 2u);
  (*x)[7] = xin(xo + xh + 3u);
  return vec2<f32>(hsum(((*x)[0] + (*x)[1]) + ((*x)[2] + (*x)[3])), hsum(((*x)[4] + (*x)[5]) + ((*x)[6] + (*x)[7])));
}

// IQ: the input row (times the norm weights with NORM) quantised into qh, ql, qd, qs; a 32-block
// an invocation.
fn stage(tid: u32) {
  for (var b = tid; b < P.cols / 32u; b += 256u) {
    var v: array<vec4<f32>, 8>;
    var m = 0.0;
    for (var i = 0u; i < 8u; i++) {
      v[i] = xin(8u * b + i);
      let a = abs(v[i]);
      m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
    }
    let d = m / 32639.0;
    let inv = select(0.0, 1.0 / d, d > 0.0);
    var hw: array<u32, 8>;
    var lw: array<u32, 8>;
    var s0 = 0;
    var s1 = 0;
    for (var i = 0u; i < 8u; i++) {
      let q = clamp(vec4<i32>(round(v[i] * inv)), vec4<i32>(-32639), vec4<i32>(32639));
      let h = (q + vec4<i32>(128)) >> vec4<u32>(8u);
      hw[i] = pack4xI8(h);
      lw[i] = pack4xI8(q - 256 * h);
      let t = (q.x + q.y) + (q.z + q.w);
      if (i < 4u) { s0 += t; } else { s1 += t; }
    }
    qh[2u * b] = vec4<u32>(hw[0], hw[1], hw[2], hw[3]);
    qh[2u * b + 1u] = vec4<u32>(hw[4], hw[5], hw[6], hw[7]);
    ql[2u * b] = vec4<u32>(lw[0], lw[1], lw[2], lw[3]);
    ql[2u * b + 1u] = vec4<u32>(lw[4], lw[5], lw[6], lw[7]);
    qd[b] = d;
    qs[2u * b] = f32(s0);
    qs[2u * b + 1u] = f32(s1);
  }
}

// IQ: a chunk's quantised inputs (Q4_K chunk c of block g / 8: sub-blocks 2 j and 2 j + 1, half
// c % 2 of each): the planes of 16 elements of each, their d and their sums of q.
struct XQ { h0: vec4<u32>, l0: vec4<u32>, h1: vec4<u32>, l1: vec4<u32>, d: vec2<f32>, s: vec2<f32> }
fn load_xq(g: u32) -> XQ {
  let c = g % 8u;
  let e = 16u * (g / 8u) + 4u * (c / 2u) + c % 2u;  // 16-element group of sub-block 2 j's half
  let b = e / 2u;                                     // its 32-block
  return XQ(qh[e], ql[e], qh[e + 2u], ql[e + 2u], vec2<f32>(qd[b], qd[b + 1u]), vec2<f32>(qs[e], qs[e + 2u]));
}

fn dot4(w: vec4<u32>, x: vec4<u32>) -> i32 {
  return (dot4I8Packed(w.x, x.x) + dot4I8Packed(w.y, x.y)) + (dot4I8Packed(w.z, x.z) + dot4I8Packed(w.w, x.w));
}

// IQ: chunk c of the Q4_K block whose head is W[h] against the quantised inputs x.
fn iq4k(h: u32, c: u32, x: XQ) -> f32 {
  let hd = W[h];
  let q = W[h + 1u + c];
  let k = q4k_sm(hd, c);
  let dm = unpack2x16float(hd.x);
  let n0 = q & vec4<u32>(M4);
  let n1 = (q >> vec4<u32>(4u)) & vec4<u32>(M4);
  let s0 = f32(256 * dot4(n0, x.h0) + dot4(n0, x.l0));
  let s1 = f32(256 * dot4(n1, x.h1) + dot4(n1, x.l1));
  return dm.x * (k.x * x.d.x * s0 + k.y * x.d.y * s1) - dm.y * (k.z * x.d.x * x.s.x + k.w * x.d.y * x.s.y);
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

// Output row r (if it exists): the product v, times the per-tensor scale, plus the bias, into or
// added to Y (P.flags).
fn store(r: u32, v: f32, lane: u32) {
  if (r < P.rows && lane == 0u) {
    var y = v;
    if ((P.flags & 8u) != 0u) { y *= VB[P.norm2_off / 4u][P.norm2_off % 4u]; }
    if ((P.flags & 1u) != 0u) { let bi = P.norm_off + P.row0 + r; y += VB[bi / 4u][bi % 4u]; }
    let oi = P.out_off + P.row0 + r;
    if ((P.flags & 2u) != 0u) { Y[oi] += y; } else { Y[oi] = y; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let lane = tid % TPR;
  let sub = tid / TPR;
  let ks = sub % KS;       // this subgroup's part of K: chunks ks TPR + lane, then every KS TPR
  let t = select(0u, S.last, (P.flags & 4u) != 0u);
  XB = (P.in_off + t * P.in_stride) / 4u;
  var xs = 1.0;
  if (NORM) {
    var ss = 0.0;
    for (var i = tid; i < P.cols / 4u; i += 256u) { let v = X[XB + i]; ss += dot(v, v); }
    xs = 1.0 / sqrt(wg_sum(ss, tid) / f32(P.cols) + P.eps);
    NW = P.q_off / 4u;
  }
  if (IQ) {
    stage(tid);
    workgroupBarrier();
  }
  // The subgroup's weight rows: h0 .. h3 their first bytes (GU: gate, up of row r0, then of r0 + 1;
  // else rows r0, r0 + 1), the accumulators a0 .. a3 (scalars, not arrays: registers for sure).
  let nr = select(1u, 2u, GU) * RW;
  let step = TPR * KS;
  for (var rp = 0u; rp < RPG; rp++) {
    let r0 = ((wg.x * RPG + rp) * (256u / step) + sub / KS) * RW;  // its first output row
    let rl = P.rows - 1u;
    var h0: u32;
    var h1: u32;
    var h2: u32;
    var h3: u32;
    if (GU) {
      h0 = P.w_off + min(r0, rl) * P.row_bytes;
      h1 = P.v_off + min(r0, rl) * P.row_bytes;
      h2 = P.w_off + min(r0 + 1u, rl) * P.row_bytes;
      h3 = P.v_off + min(r0 + 1u, rl) * P.row_bytes;
    } else {
      h0 = P.w_off + min(r0, rl) * P.row_bytes;
      h1 = P.w_off + min(r0 + 1u, rl) * P.row_bytes;
    }
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    let nc = P.cols / 32u;
    var xa: array<vec4<f32>, 8>;
    var xb: array<vec4<f32>, 8>;
    var g = ks * TPR + lane;
    if (IQ) {
      for (; g < nc; g += step) {
        let xq = load_xq(g);
        let c = g % 8u;
        let o = 9u * (g / 8u);
        a0 += iq4k(h0 / 16u + o, c, xq);
        if (nr > 1u) { a1 += iq4k(h1 / 16u + o, c, xq); }
        if (nr > 2u) { a2 += iq4k(h2 / 16u + o, c, xq); }
        if (nr > 3u) { a3 += iq4k(h3 / 16u + o, c, xq); }
      }
    }
    while (!IQ && g + step < nc) {
      let g1 = g + step;
      let sa = load_x(g, &xa);
      let sb = load_x(g1, &xb);
      a0 += chunk(h0, g, &xa, sa) + chunk(h0, g1, &xb, sb);
      if (nr > 1u) { a1 += chunk(h1, g, &xa, sa) + chunk(h1, g1, &xb, sb); }
      if (nr > 2u) { a2 += chunk(h2, g, &xa, sa) + chunk(h2, g1, &xb, sb); }
      if (nr > 3u) { a3 += chunk(h3, g, &xa, sa) + chunk(h3, g1, &xb, sb); }
      g += 2u * step;
    }
    if (!IQ && g < nc) {
      let sa = load_x(g, &xa);
      a0 += chunk(h0, g, &xa, sa);
      if (nr > 1u) { a1 += chunk(h1, g, &xa, sa); }
      if (nr > 2u) { a2 += chunk(h2, g, &xa, sa); }
      if (nr > 3u) { a3 += chunk(h3, g, &xa, sa); }
    }
    var sm = vec4<f32>(lanes_sum(a0, tid), 0.0, 0.0, 0.0);
    if (nr > 1u) { sm.y = lanes_sum(a1, tid); }
    if (nr > 2u) { sm.z = lanes_sum(a2, tid); }
    if (nr > 3u) { sm.w = lanes_sum(a3, tid); }
    if (KS > 1u) {  // the row group's KS subgroups' sums, in the first of them
      if (lane == 0u) { ks_part[sub] = sm; }
      workgroupBarrier();
      if (ks == 0u) {
        for (var j = 1u; j < KS; j++) { sm += ks_part[sub + j]; }
      }
      workgroupBarrier();
    }
    let first = lane | ks;  // 0 in the one invocation of the row group that stores
    if (GU) {
      store(r0, act(sm.x * xs) * (sm.y * xs), first);
      if (RW > 1u) { store(r0 + 1u, act(sm.z * xs) * (sm.w * xs), first); }
    } else {
      store(r0, sm.x * xs, first);
      if (RW > 1u) { store(r0 + 1u, sm.y * xs, first); }
    }
  }
}
