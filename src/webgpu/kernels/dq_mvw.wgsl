// dq_mvw.wgsl — the generic plan's decode product for Q4_K rows (the bulk of a Q4_K_M file), with
// the contract of dq_mvb.wgsl (P.flags: bit 0 bias, bit 1 residual, bit 2 the input row of token
// S.last, bit 3 per-tensor scale; NORM, GU and ACT as there) and three changes that dq_mvb's
// 8-weight slots cannot make (on the H100 its products ran at 300-900 GB/s, bound by instructions:
// about 7 a weight, 1.75 of them quarter-rate int -> float conversions):
//   - a lane takes whole 32-weight chunks: one 16-byte load of quants (qs bytes 16 c .. 16 c + 15
//     of its block: chunk c of 8) and one of its block's 16-byte head (d, dmin, the 12 bytes of
//     scales), so the scales are decoded once per 32 weights and every weight load is 16 bytes;
//   - no int -> float conversion per weight: a nibble n becomes the float 1 + n / 16 by placing it
//     in the mantissa of 1.0 (two integer instructions), and Σ n x = 16 (Σ (1 + n / 16) x - Σ x),
//     where Σ x over the sub-block is needed for the mins anyway;
//   - RW rows a subgroup (GU: RW gate rows and the same up rows) take the same chunks, so that
//     each input vec4 (with NORM, times its norm weight) is loaded once for all of them.
// Rows start at multiples of 16 bytes (the host checks P.w_off, P.v_off and P.row_bytes), TPR lanes
// a row group, 256 / TPR row groups a workgroup, cols % 256 == 0. Two chunks an iteration so that
// the loads of both are in flight together.

override NORM: bool = false;
override GU: bool = false;
override ACT: u32 = 0u;
override RW: u32 = 1u;  // output rows a subgroup (1 .. 2)

@group(0) @binding(0) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

const M4: u32 = 0x0f0f0f0fu;
const ONE: u32 = 0x3f800000u;
const NMAX: u32 = 4u;  // weight rows a subgroup at most (RW 2 with GU)

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

// Chunk c of the Q4_K block whose 16-byte head is W[h] (quants W[h + 1 ..]): its two sub-blocks'
// part (sub-block 2 j: the low nibbles, 2 j + 1: the high ones, j = c / 2) against the inputs x
// (x[0 .. 3] the low nibbles', x[4 .. 7] the high ones'), whose sums are sx.
fn q4k(h: u32, c: u32, x: ptr<function, array<vec4<f32>, 8>>, sx: vec2<f32>) -> f32 {
  let hd = W[h];
  let q = W[h + 1u + c];
  let j = c / 2u;
  // scales and mins of sub-blocks 2 j, 2 j + 1 (dq_mvb's kpair)
  let hi = j >= 2u;
  let sc = select(hd.y & 0x3f3f3f3fu, (hd.w & M4) | ((hd.y >> 2u) & 0x30303030u), hi);
  let mn = select(hd.z & 0x3f3f3f3fu, ((hd.w >> 4u) & M4) | ((hd.z >> 2u) & 0x30303030u), hi);
  let sh = 16u * (j % 2u);
  let k = ufl(vec4<u32>(sc >> sh, sc >> (sh + 8u), mn >> sh, mn >> (sh + 8u)) & vec4<u32>(255u));
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

// The inputs of chunk g (block g / 8, chunk c = g % 8: sub-block pair j = c / 2, half c % 2) and
// their two sums.
fn load_x(g: u32, x: ptr<function, array<vec4<f32>, 8>>) -> vec2<f32> {
  let c = g % 8u;
  let xo = 64u * (g / 8u) + 16u * (c / 2u) + 4u * (c % 2u);
  var s = vec4<f32>(0.0);
  var t = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    (*x)[i] = xin(xo + i);
    (*x)[4u + i] = xin(xo + 8u + i);
    s += (*x)[i];
    t += (*x)[4u + i];
  }
  return vec2<f32>(hsum(s), hsum(t));
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
  var xs = 1.0;
  if (NORM) {
    var ss = 0.0;
    for (var i = tid; i < P.cols / 4u; i += 256u) { let v = X[XB + i]; ss += dot(v, v); }
    xs = 1.0 / sqrt(wg_sum(ss, tid) / f32(P.cols) + P.eps);
    NW = P.q_off / 4u;
  }
  let nr = select(1u, 2u, GU) * RW;  // weight rows of this subgroup
  let r0 = (wg.x * (256u / TPR) + tid / TPR) * RW;  // its first output row
  var hb: array<u32, NMAX>;  // each weight row's first block head (vec4 index)
  for (var k = 0u; k < nr; k++) {
    let r = min(r0 + select(k, k / 2u, GU), P.rows - 1u);
    let base = select(P.w_off, P.v_off, GU && (k % 2u) == 1u);
    hb[k] = (base + r * P.row_bytes) / 16u;
  }
  var acc: array<f32, NMAX>;
  for (var k = 0u; k < NMAX; k++) { acc[k] = 0.0; }
  let nc = P.cols / 32u;
  var xa: array<vec4<f32>, 8>;
  var xb: array<vec4<f32>, 8>;
  var g = lane;
  while (g + TPR < nc) {
    let g1 = g + TPR;
    let sa = load_x(g, &xa);
    let sb = load_x(g1, &xb);
    for (var k = 0u; k < nr; k++) {
      acc[k] += q4k(hb[k] + 9u * (g / 8u), g % 8u, &xa, sa) + q4k(hb[k] + 9u * (g1 / 8u), g1 % 8u, &xb, sb);
    }
    g += 2u * TPR;
  }
  if (g < nc) {
    let sa = load_x(g, &xa);
    for (var k = 0u; k < nr; k++) { acc[k] += q4k(hb[k] + 9u * (g / 8u), g % 8u, &xa, sa); }
  }
  for (var o = 0u; o < RW; o++) {
    var v: f32;
    if (GU) {
      v = act(lanes_sum(acc[2u * o], tid) * xs) * (lanes_sum(acc[2u * o + 1u], tid) * xs);
    } else {
      v = lanes_sum(acc[o], tid) * xs;
    }
    let r = r0 + o;
    if (r < P.rows && lane == 0u) {
      var y = v;
      if ((P.flags & 8u) != 0u) { y *= VB[P.norm2_off / 4u][P.norm2_off % 4u]; }
      if ((P.flags & 1u) != 0u) { let bi = P.norm_off + P.row0 + r; y += VB[bi / 4u][bi % 4u]; }
      let oi = P.out_off + P.row0 + r;
      if ((P.flags & 2u) != 0u) { Y[oi] += y; } else { Y[oi] = y; }
    }
  }
}
