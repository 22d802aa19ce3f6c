// qx.wgsl — the input vector of a decode product, quantised in workgroup memory for integer dot
// products (prepended to matvec.wgsl and gateup.wgsl by web/gpu.mjs). Each block of 32 inputs
// (one 32-bit word of Q1_0 signs) becomes 16-bit integers q = round(x / d), d = max|x| / 32767,
// stored as two packed int8 halves: hi = q >> 8 and lo = (q & 255) - 128, so q = 256 hi + lo +
// 128. The bytes are interleaved: byte k of word i (i < 8, k < 4) holds element 8 k + i, so
// that the 0/1 bytes of the weight bits that meet word i are just (bits >> i) & 0x01010101 (two
// instructions instead of four for a nibble spread). The sum over the set bits of a weight word is
// then two dot4I8Packed per 4 weights, and the signed dot is 2 * (sum over set bits) - (sum of
// all q). 16 bits keep the product's relative error near 1e-5 (8 bits alone gave ~3 % on the CPU
// path).

override QXW: u32 = 512u;   // u32 words per half = cols / 4 of the widest input (a multiple of 8)

var<workgroup> qh: array<vec4<u32>, QXW / 4u>;  // [cols / 16] hi bytes, 16 inputs a vec4
var<workgroup> ql: array<vec4<u32>, QXW / 4u>;  // lo bytes
var<workgroup> qd: array<f32, QXW / 8u>;        // [cols / 32] scales
var<workgroup> qsum: array<i32, QXW / 8u>;      // sums of q

// The 4 elements of block x (32 values as 8 vec4s) that interleaved word i holds: 8 k + i, k < 4.
fn qx_word(x: array<vec4<f32>, 8>, i: u32) -> vec4<f32> {
  let j = i >> 2u;
  let c = i & 3u;
  return vec4<f32>(x[j][c], x[2u + j][c], x[4u + j][c], x[6u + j][c]);
}

// Quantises block b (32 inputs in x) into the arrays above.
fn qx_block(b: u32, x: array<vec4<f32>, 8>) {
  var amax = 0.0;
  for (var i = 0u; i < 8u; i++) {
    let a = abs(x[i]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  let sc = q16_scale(amax);
  var sum = 0;
  var hw: array<u32, 8>;
  var lw: array<u32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let q = q16(qx_word(x, i), sc.y);
    sum += q.x + q.y + q.z + q.w;
    hw[i] = q16_hi(q);
    lw[i] = q16_lo(q);
  }
  qh[2u * b] = vec4<u32>(hw[0], hw[1], hw[2], hw[3]);
  qh[2u * b + 1u] = vec4<u32>(hw[4], hw[5], hw[6], hw[7]);
  ql[2u * b] = vec4<u32>(lw[0], lw[1], lw[2], lw[3]);
  ql[2u * b + 1u] = vec4<u32>(lw[4], lw[5], lw[6], lw[7]);
  qd[b] = sc.x;
  qsum[b] = sum;
}

// The quantised block b, loaded once and used for several weight rows.
struct QBlock { h0: vec4<u32>, h1: vec4<u32>, l0: vec4<u32>, l1: vec4<u32>, d: f32, s: i32 }

fn qx_load(b: u32) -> QBlock {
  return QBlock(qh[2u * b], qh[2u * b + 1u], ql[2u * b], ql[2u * b + 1u], qd[b], qsum[b]);
}

// dot(signs of the 32 bits, x of block q) / q.d, exactly, as an integer. Byte k of e_i is bit
// 8 k + i of the word: the element byte k of word i holds.
fn qdot(bits: u32, q: QBlock) -> i32 {
  let m = 0x01010101u;
  let e0 = bits & m;
  let e1 = (bits >> 1u) & m;
  let e2 = (bits >> 2u) & m;
  let e3 = (bits >> 3u) & m;
  let e4 = (bits >> 4u) & m;
  let e5 = (bits >> 5u) & m;
  let e6 = (bits >> 6u) & m;
  let e7 = (bits >> 7u) & m;
  let hs = dot4I8Packed(e0, q.h0.x) + dot4I8Packed(e1, q.h0.y) + dot4I8Packed(e2, q.h0.z) + dot4I8Packed(e3, q.h0.w) +
           dot4I8Packed(e4, q.h1.x) + dot4I8Packed(e5, q.h1.y) + dot4I8Packed(e6, q.h1.z) + dot4I8Packed(e7, q.h1.w);
  let ls = dot4I8Packed(e0, q.l0.x) + dot4I8Packed(e1, q.l0.y) + dot4I8Packed(e2, q.l0.z) + dot4I8Packed(e3, q.l0.w) +
           dot4I8Packed(e4, q.l1.x) + dot4I8Packed(e5, q.l1.y) + dot4I8Packed(e6, q.l1.z) + dot4I8Packed(e7, q.l1.w);
  let on = 256 * hs + ls + 128 * i32(countOneBits(bits));
  return 2 * on - q.s;
}

// ---- pre-quantised inputs (decode) ----------------------------------------------------------
// Between the decode kernels a vector travels already quantised in this form, so that the consumer
// loads the blocks its lanes need straight into registers instead of every workgroup staging (and
// norming) the whole input first. Block b (32 elements) is 20 words at word 20 b: 8 hi words, 8 lo
// words (bytes interleaved as above), the scale d, the sum of q (i32), the sum of squares of the
// raw values (f32), 0. The producer (qo.wgsl) quantises y * norm weights, so a consumer that norms
// only multiplies by 1 / rms, which the sums of squares give it. The kernel declares `QI:
// array<vec4<u32>>`.

fn qv_load(b: u32) -> QBlock {
  let o = b * 5u;
  let m = QI[o + 4u];
  return QBlock(QI[o], QI[o + 1u], QI[o + 2u], QI[o + 3u], bitcast<f32>(m.x), bitcast<i32>(m.y));
}

// Sum of squares of the raw values of block b.
fn qv_ssq(b: u32) -> f32 { return bitcast<f32>(QI[b * 5u + 4u].z); }
