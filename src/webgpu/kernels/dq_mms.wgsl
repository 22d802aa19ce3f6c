// dq_mms.wgsl — the generic plan's prompt product on the GPU's matrix units (WebGPU's
// experimental subgroup matrices: 16 x 16 x 32 int8 products into int32 on 32-wide subgroups, the
// only kind Dawn offers on NVIDIA: no f16 or f32 matrices), for weights of any type (dq.wgsl,
// constant WT: the variants mms_<type>): Y[t] = W X[t] (+ b) (+= into Y).
// The input comes quantised by quant.wgsl (per token and 128-block: q = 256 hi + lo + 128 in two
// int8 planes, scale dx). Per 128-block of K the tile's weights are decoded once (dq) and
// requantised per row to 16 bits, w = D p with D = max|w| / 32512 and p = 256 ph + pl (ph, pl
// int8, pl in -128..127), so
//   sum_k p_k q_k = 65536 (ph . hi) + 256 (pl . hi + ph . lo) + (pl . lo) + 128 sum_k p_k
// from int8 products into two int32 matrices: ph . hi, and 256 (pl . hi + ph . lo) + pl . lo (the
// two middle products accumulated, the matrix times 256 — subgroupMatrixScalarMultiply, at most
// 2^30 — then pl . lo added; pl . lo matters where a block's input has an outlier: its other q
// are small, carried by lo, and leaving it out gave relative errors of 1e-2 on single outputs).
// The block's scales D[r] dx[t] are applied in f32 through workgroup memory, as in mm_sg.wgsl.
// A workgroup is four subgroups over TR = 64 rows x TT = 64 tokens (32 rows x 32 tokens each;
// 37,632 bytes of workgroup memory: on the H100 1.16-1.29x the 32 x 64 tile of two subgroups, which
// fits SwiftShader's 32 KiB), so that a decoded weight serves 64 tokens; its 128 invocations decode
// 64 weights of a row each (two a
// row: the row's max through subgroupShuffleXor; dq64: Q4_K and Q6_K read each quant word once)
// and copy the input planes into workgroup memory.
// Each subgroup's matrix loads of the inputs use literal offsets (a switch on the subgroup index,
// uniform across the subgroup but not to WGSL's uniformity analysis: the host switches
// chromium.subgroup_matrix_uniformity off, as for mm_sg.wgsl).
// Bounds: rows past P.rows are read as row P.rows - 1 and never written; tokens past S.n read XQ
// rows the host allocated (tokens rounded up to 64) and are never written. Needs cols % 128 == 0.
// P.flags as dq_mmt.wgsl: bit 0 bias (VB[norm_off + row0 + r]), bit 1 residual, bit 3 per-tensor
// scale (VB[norm2_off]). Rows go to Y[out_off + t * out_stride + row0 + r].
// The host's grid is (ceil(rows / TR), ceil(tokens / TT)), its workgroup memory check
// 4 (SMW + 2 TR + TT) bytes (src/webgpu/backend_webgpu.c MMG_TR, MMG_TT, MMG_WG_MEM).

override LO: u32 = 0u;
override SC: u32 = 0u;

const TR = 64u;                 // rows of a tile: 32 a subgroup
const TT = 64u;                 // tokens of a tile: 32 a subgroup
const AS = 36u;                 // words per staged row of 128 int8 (with padding)
const WL = 2304u;               // TR * AS: the weights' low plane
const XO = 4608u;               // 2 * TR * AS: the input planes, hi then lo
const XL = 6912u;               // XO + TT * AS: the input's lo plane
const SMW = 9216u;              // 2 TR AS + 2 TT AS staged, >= 4 * 2048 of results

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<vec4<i32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> VB: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

// [ph, pl][TR rows][AS], then [hi, lo][TT tokens][AS]; after the products per subgroup
// [8 matrices][16 rows][16 tokens] of results; at the end [token][33] sums.
var<workgroup> sm: array<i32, SMW>;
var<workgroup> wd: array<f32, TR>;            // D of the block's rows
var<workgroup> ws: array<f32, TR>;            // 128 * sum of the rows' p over the block
var<workgroup> xd: array<f32, TT>;            // input scales of the tile's tokens

alias LM = subgroup_matrix_left<i8, 32, 16>;
alias RM = subgroup_matrix_right<i8, 16, 32>;
alias CM = subgroup_matrix_result<i32, 16, 16>;

fn ldw(off: u32) -> LM { return subgroupMatrixLoad<LM, row_major>(&sm, off, AS); }
fn ldx(off: u32) -> RM { return subgroupMatrixLoad<RM, col_major>(&sm, off, AS); }

// Elements k0 .. k0 + 63 of the row at byte rb (k0 % 64 == 0) as 16 vec4: Q4_K and Q6_K read
// each quant word, scale and f16 once (a 64-weight run lies in one group of their blocks), the
// other types call dq() 16 times.
fn dq64(rb: u32, k0: u32) -> array<vec4<f32>, 16> {
  var o: array<vec4<f32>, 16>;
  switch (WT) {
    case 12u: {  // Q4_K: group g's 32 bytes: low nibbles elements 0-31, high ones 32-63
      let a = rb + (k0 / 256u) * 144u;
      let g = (k0 % 256u) / 64u;
      let d = h16(a);
      let dm = h16(a + 2u);
      let s0 = scale_min_k4(a + 4u, 2u * g);
      let s1 = scale_min_k4(a + 4u, 2u * g + 1u);
      for (var j = 0u; j < 8u; j++) {
        let w = b32(a + 16u + g * 32u + 4u * j);
        o[j] = u8x4(w & 0x0f0f0f0fu) * (d * s0.x) - dm * s0.y;
        o[8u + j] = u8x4((w >> 4u) & 0x0f0f0f0fu) * (d * s1.x) - dm * s1.y;
      }
    }
    case 14u: {  // Q6_K: half n, quarters c = 2 h + cc (h = which 64 of the half)
      let a = rb + (k0 / 256u) * 210u;
      let e0 = k0 % 256u;
      let n = e0 / 128u;
      let h = (e0 % 128u) / 64u;
      let d = h16(a + 208u);
      for (var j = 0u; j < 8u; j++) {
        let qh = b32(a + 128u + 32u * n + 4u * j);
        for (var cc = 0u; cc < 2u; cc++) {
          let c = 2u * h + cc;
          let lo = (b32(a + 64u * n + 32u * cc + 4u * j) >> (h * 4u)) & 0x0f0f0f0fu;
          let hi = ((qh >> (2u * c)) & 0x03030303u) << 4u;
          let sc = f32((i32(b8(a + 192u + 8u * n + j / 4u + 2u * c)) << 24u) >> 24u);
          o[cc * 8u + j] = (u8x4(lo | hi) - 32.0) * (d * sc);
        }
      }
    }
    default: {
      for (var k = 0u; k < 16u; k++) { o[k] = dq(rb, k0 + 4u * k); }
    }
  }
  return o;
}

// 16-bit p of four weights times 1 / D, split into the int8 planes (ph, pl) as packed words.
fn split16(w: vec4<f32>, inv: f32) -> vec2<u32> {
  let p = clamp(vec4<i32>(round(w * inv)), vec4<i32>(-32512), vec4<i32>(32512));
  let l = ((p + vec4<i32>(128)) & vec4<i32>(255)) - vec4<i32>(128);
  let h = (p - l) >> vec4<u32>(8u);
  return vec2<u32>(pack4xI8(h), pack4xI8(l));
}
fn sum16(w: vec4<f32>, inv: f32) -> i32 {
  let p = clamp(vec4<i32>(round(w * inv)), vec4<i32>(-32512), vec4<i32>(32512));
  return (p.x + p.y) + (p.z + p.w);
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let r0 = wg.x * TR;
  let t0 = wg.y * TT;
  let nb = P.cols / 128u;
  let kv = P.cols / 16u;        // vec4s per token row of a plane
  let sr = tid / 2u;            // staging: row sr, columns 64 (tid % 2) .. + 63 of the block
  let hf = tid % 2u;
  let rb = P.w_off + min(r0 + sr, P.rows - 1u) * P.row_bytes;
  let sg = tid / 32u;           // subgroup: rows 32 (sg % 2) .., tokens 32 (sg / 2) .. of the tile
  let sr0 = (sg % 2u) * 32u;
  let st0 = (sg / 2u) * 32u;
  let lane = tid % 32u;
  let mb = sg * 2048u;          // its results in sm
  var acc: array<f32, 32>;      // [row tile 2][token tile 2][8 rows]
  for (var i = 0u; i < 32u; i++) { acc[i] = 0.0; }
  for (var b = 0u; b < nb; b++) {
    // the input planes and scales of the block (issued first: they do not wait for the decode)
    var xv: array<vec4<i32>, 8>;
    for (var k = 0u; k < 8u; k++) {
      let i = tid + 128u * k;             // [plane 2][token 64][vec4 8]
      xv[k] = XQ[(i / 512u) * (LO / 4u) + (t0 + (i / 8u) % 64u) * kv + b * 8u + i % 8u];
    }
    var dx = 0.0;
    if (tid < TT) {
      let si = SC + (t0 + tid) * nb + b;
      dx = bitcast<f32>(XQ[si / 4u][si % 4u]);
    }
    // 64 weights of the row, decoded
    var wv = dq64(rb, b * 128u + hf * 64u);
    var m = 0.0;
    for (var k = 0u; k < 16u; k++) {
      let a = abs(wv[k]);
      m = max(m, max(max(a.x, a.y), max(a.z, a.w)));
    }
    m = max(m, subgroupShuffleXor(m, 1u));
    let d = m / 32512.0;
    var inv = 0.0;
    if (d > 0.0) { inv = 1.0 / d; }
    var ps = 0;
    for (var k = 0u; k < 16u; k++) {
      let s = split16(wv[k], inv);
      ps += sum16(wv[k], inv);
      sm[sr * AS + hf * 16u + k] = bitcast<i32>(s.x);
      sm[WL + sr * AS + hf * 16u + k] = bitcast<i32>(s.y);
    }
    ps += subgroupShuffleXor(ps, 1u);
    if (hf == 0u) {
      wd[sr] = d;
      ws[sr] = 128.0 * f32(ps);
    }
    for (var k = 0u; k < 8u; k++) {
      let i = tid + 128u * k;
      let o = XO + (i / 512u) * (TT * AS) + ((i / 8u) % 64u) * AS + (i % 8u) * 4u;
      let v = xv[k];
      sm[o] = v.x;
      sm[o + 1u] = v.y;
      sm[o + 2u] = v.z;
      sm[o + 3u] = v.w;
    }
    if (tid < TT) { xd[tid] = dx; }
    workgroupBarrier();
    var c0 = CM(); var c1 = CM(); var c2 = CM(); var c3 = CM();
    var c4 = CM(); var c5 = CM(); var c6 = CM(); var c7 = CM();
    // Matrices: weights ph a0, a1 and pl e0, e1 (rows 0-15, 16-31), input hi h0, h1 and lo l0, l1
    // (the subgroup's tokens 0-15, 16-31). c0..c3: ph . hi; c4..c7: 256 (pl . hi + ph . lo) +
    // pl . lo; index 2 (row tile) + token tile.
    switch (sg) {
      case 0u: {
        for (var ks = 0u; ks < 4u; ks++) {
          let a0 = ldw(ks * 8u);
          let a1 = ldw(16u * AS + ks * 8u);
          let e0 = ldw(WL + ks * 8u);
          let e1 = ldw(WL + 16u * AS + ks * 8u);
          let h0 = ldx(XO + ks * 8u);
          let h1 = ldx(XO + 16u * AS + ks * 8u);
          let l0 = ldx(XL + ks * 8u);
          let l1 = ldx(XL + 16u * AS + ks * 8u);
          c0 = subgroupMatrixMultiplyAccumulate(a0, h0, c0);
          c1 = subgroupMatrixMultiplyAccumulate(a0, h1, c1);
          c2 = subgroupMatrixMultiplyAccumulate(a1, h0, c2);
          c3 = subgroupMatrixMultiplyAccumulate(a1, h1, c3);
          c4 = subgroupMatrixMultiplyAccumulate(e0, h0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, h1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, h0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, h1, c7);
          c4 = subgroupMatrixMultiplyAccumulate(a0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(a0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(a1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(a1, l1, c7);
        }
        c4 = subgroupMatrixScalarMultiply(c4, 256);
        c5 = subgroupMatrixScalarMultiply(c5, 256);
        c6 = subgroupMatrixScalarMultiply(c6, 256);
        c7 = subgroupMatrixScalarMultiply(c7, 256);
        for (var ks = 0u; ks < 4u; ks++) {
          let e0 = ldw(WL + ks * 8u);
          let e1 = ldw(WL + 16u * AS + ks * 8u);
          let l0 = ldx(XL + ks * 8u);
          let l1 = ldx(XL + 16u * AS + ks * 8u);
          c4 = subgroupMatrixMultiplyAccumulate(e0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, l1, c7);
        }
      }
      case 1u: {
        for (var ks = 0u; ks < 4u; ks++) {
          let a0 = ldw(32u * AS + ks * 8u);
          let a1 = ldw(48u * AS + ks * 8u);
          let e0 = ldw(WL + 32u * AS + ks * 8u);
          let e1 = ldw(WL + 48u * AS + ks * 8u);
          let h0 = ldx(XO + ks * 8u);
          let h1 = ldx(XO + 16u * AS + ks * 8u);
          let l0 = ldx(XL + ks * 8u);
          let l1 = ldx(XL + 16u * AS + ks * 8u);
          c0 = subgroupMatrixMultiplyAccumulate(a0, h0, c0);
          c1 = subgroupMatrixMultiplyAccumulate(a0, h1, c1);
          c2 = subgroupMatrixMultiplyAccumulate(a1, h0, c2);
          c3 = subgroupMatrixMultiplyAccumulate(a1, h1, c3);
          c4 = subgroupMatrixMultiplyAccumulate(e0, h0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, h1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, h0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, h1, c7);
          c4 = subgroupMatrixMultiplyAccumulate(a0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(a0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(a1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(a1, l1, c7);
        }
        c4 = subgroupMatrixScalarMultiply(c4, 256);
        c5 = subgroupMatrixScalarMultiply(c5, 256);
        c6 = subgroupMatrixScalarMultiply(c6, 256);
        c7 = subgroupMatrixScalarMultiply(c7, 256);
        for (var ks = 0u; ks < 4u; ks++) {
          let e0 = ldw(WL + 32u * AS + ks * 8u);
          let e1 = ldw(WL + 48u * AS + ks * 8u);
          let l0 = ldx(XL + ks * 8u);
          let l1 = ldx(XL + 16u * AS + ks * 8u);
          c4 = subgroupMatrixMultiplyAccumulate(e0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, l1, c7);
        }
      }
      case 2u: {
        for (var ks = 0u; ks < 4u; ks++) {
          let a0 = ldw(ks * 8u);
          let a1 = ldw(16u * AS + ks * 8u);
          let e0 = ldw(WL + ks * 8u);
          let e1 = ldw(WL + 16u * AS + ks * 8u);
          let h0 = ldx(XO + 32u * AS + ks * 8u);
          let h1 = ldx(XO + 48u * AS + ks * 8u);
          let l0 = ldx(XL + 32u * AS + ks * 8u);
          let l1 = ldx(XL + 48u * AS + ks * 8u);
          c0 = subgroupMatrixMultiplyAccumulate(a0, h0, c0);
          c1 = subgroupMatrixMultiplyAccumulate(a0, h1, c1);
          c2 = subgroupMatrixMultiplyAccumulate(a1, h0, c2);
          c3 = subgroupMatrixMultiplyAccumulate(a1, h1, c3);
          c4 = subgroupMatrixMultiplyAccumulate(e0, h0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, h1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, h0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, h1, c7);
          c4 = subgroupMatrixMultiplyAccumulate(a0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(a0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(a1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(a1, l1, c7);
        }
        c4 = subgroupMatrixScalarMultiply(c4, 256);
        c5 = subgroupMatrixScalarMultiply(c5, 256);
        c6 = subgroupMatrixScalarMultiply(c6, 256);
        c7 = subgroupMatrixScalarMultiply(c7, 256);
        for (var ks = 0u; ks < 4u; ks++) {
          let e0 = ldw(WL + ks * 8u);
          let e1 = ldw(WL + 16u * AS + ks * 8u);
          let l0 = ldx(XL + 32u * AS + ks * 8u);
          let l1 = ldx(XL + 48u * AS + ks * 8u);
          c4 = subgroupMatrixMultiplyAccumulate(e0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, l1, c7);
        }
      }
      default: {
        for (var ks = 0u; ks < 4u; ks++) {
          let a0 = ldw(32u * AS + ks * 8u);
          let a1 = ldw(48u * AS + ks * 8u);
          let e0 = ldw(WL + 32u * AS + ks * 8u);
          let e1 = ldw(WL + 48u * AS + ks * 8u);
          let h0 = ldx(XO + 32u * AS + ks * 8u);
          let h1 = ldx(XO + 48u * AS + ks * 8u);
          let l0 = ldx(XL + 32u * AS + ks * 8u);
          let l1 = ldx(XL + 48u * AS + ks * 8u);
          c0 = subgroupMatrixMultiplyAccumulate(a0, h0, c0);
          c1 = subgroupMatrixMultiplyAccumulate(a0, h1, c1);
          c2 = subgroupMatrixMultiplyAccumulate(a1, h0, c2);
          c3 = subgroupMatrixMultiplyAccumulate(a1, h1, c3);
          c4 = subgroupMatrixMultiplyAccumulate(e0, h0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, h1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, h0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, h1, c7);
          c4 = subgroupMatrixMultiplyAccumulate(a0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(a0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(a1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(a1, l1, c7);
        }
        c4 = subgroupMatrixScalarMultiply(c4, 256);
        c5 = subgroupMatrixScalarMultiply(c5, 256);
        c6 = subgroupMatrixScalarMultiply(c6, 256);
        c7 = subgroupMatrixScalarMultiply(c7, 256);
        for (var ks = 0u; ks < 4u; ks++) {
          let e0 = ldw(WL + 32u * AS + ks * 8u);
          let e1 = ldw(WL + 48u * AS + ks * 8u);
          let l0 = ldx(XL + 32u * AS + ks * 8u);
          let l1 = ldx(XL + 48u * AS + ks * 8u);
          c4 = subgroupMatrixMultiplyAccumulate(e0, l0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(e0, l1, c5);
          c6 = subgroupMatrixMultiplyAccumulate(e1, l0, c6);
          c7 = subgroupMatrixMultiplyAccumulate(e1, l1, c7);
        }
      }
    }
    workgroupBarrier();
    // Matrix m at mb + m * 256, element (row i, token j) at + i * 16 + j; c4.. 1024 words on.
    subgroupMatrixStore<row_major>(&sm, mb + 0u, c0, 16u);
    subgroupMatrixStore<row_major>(&sm, mb + 256u, c1, 16u);
    subgroupMatrixStore<row_major>(&sm, mb + 512u, c2, 16u);
    subgroupMatrixStore<row_major>(&sm, mb + 768u, c3, 16u);
    subgroupMatrixStore<row_major>(&sm, mb + 1024u, c4, 16u);
    subgroupMatrixStore<row_major>(&sm, mb + 1280u, c5, 16u);
    subgroupMatrixStore<row_major>(&sm, mb + 1536u, c6, 16u);
    subgroupMatrixStore<row_major>(&sm, mb + 1792u, c7, 16u);
    workgroupBarrier();
    // Lane: token j = lane % 16, rows i = lane / 16 + 2 e (one bank each).
    let j = lane % 16u;
    for (var tt = 0u; tt < 2u; tt++) {
      let sx = xd[st0 + tt * 16u + j];
      for (var rt = 0u; rt < 2u; rt++) {
        let o = mb + (rt * 2u + tt) * 256u + j;
        for (var e = 0u; e < 8u; e++) {
          let i = lane / 16u + 2u * e;
          let r = sr0 + rt * 16u + i;
          let v = 65536.0 * f32(sm[o + i * 16u]) + f32(sm[o + 1024u + i * 16u]) + ws[r];
          acc[(rt * 2u + tt) * 8u + e] += wd[r] * sx * v;
        }
      }
    }
    workgroupBarrier();
  }
  // Out through this subgroup's part of sm ([token][33]) so that a lane writes one row of each token.
  for (var tt = 0u; tt < 2u; tt++) {
    for (var rt = 0u; rt < 2u; rt++) {
      for (var e = 0u; e < 8u; e++) {
        sm[mb + (tt * 16u + lane % 16u) * 33u + rt * 16u + lane / 16u + 2u * e] = bitcast<i32>(acc[(rt * 2u + tt) * 8u + e]);
      }
    }
  }
  workgroupBarrier();
  let r = r0 + sr0 + lane;
  if (r < P.rows) {
    var s = 1.0;
    if ((P.flags & 8u) != 0u) { s = VB[P.norm2_off]; }
    var bias = 0.0;
    if ((P.flags & 1u) != 0u) { bias = VB[P.norm_off + P.row0 + r]; }
    for (var tl = 0u; tl < 32u; tl++) {
      let t = t0 + st0 + tl;
      if (t < S.n) {
        let o = P.out_off + t * P.out_stride + P.row0 + r;
        var y = bitcast<f32>(sm[mb + tl * 33u + lane]) * s + bias;
        if ((P.flags & 2u) != 0u) { y += Y[o]; }
        Y[o] = y;
      }
    }
  }
}
