// mm_sg.wgsl — Y[t][r] = W[r] . X[t] for a prompt chunk on the GPU's matrix units (WebGPU's
// experimental subgroup matrices: 16 x 16 x 32 int8 products into int32, 32-wide subgroups). The
// input comes quantised by quant.wgsl (per token and 128-block: hi and lo int8 planes, scale d);
// each weight is +-1 as int8. Per 128-block of K a subgroup's tile of 32 rows x 32 tokens gets
//   sum_k w_k q_k = 256 (W . hi) + (W . lo) + 128 sum_k w_k
// from int8 products (2 x 2 matrices of 16 x 16, hi and lo apart: eight independent int32
// matrices), and the block's scales d_w[r] * d_x[t] are applied in f32 before the next block.
// A workgroup is two subgroups over TR = 64 rows x TT = 32 tokens: the block's weights of its 64
// rows are expanded to bytes and the tile's input planes copied into workgroup memory once for
// both (subgroup-matrix loads straight from a storage buffer are ~4x slower on an H100; one
// subgroup a workgroup staged the input twice as often: 26% slower). Integer results go through
// workgroup memory over the staged block (row-major, per subgroup) to be scaled, each lane owning
// one token and eight rows of a matrix; the sums leave through workgroup memory too, so that the
// writes of Y are coalesced.
// Each subgroup's matrix loads use offsets that are literals (a switch on the subgroup): offsets
// computed from the subgroup index made them ~45% slower on an NVIDIA H200 (for the result
// stores it makes no difference). The switch is
// uniform across each subgroup (sg_size 32, invocations laid out contiguously, probed by the
// host) but not provably so to WGSL's uniformity analysis: the host switches that diagnostic off
// (chromium.subgroup_matrix_uniformity).
// RESID: Y += W X. Rows go to Y[out_off + t * out_stride + row0 + r].
// Bounds: rows past P.rows are read as row P.rows - 1 and never written; tokens past S.n read
// XQ rows the host allocated (tokens rounded up to TT) and are never written.
// The host's grid is (rows / TR, tokens / TT) rounded up, its workgroup memory check
// 4 (SMW + 2 TR + TT) bytes (src/backend_webgpu.c MMS_TR, MMS_TT, MMS_WG_MEM).

override RESID: bool = false;
override LO: u32 = 0u;
override SC: u32 = 0u;

const TR = 64u;                 // rows of a tile: 32 a subgroup
const TT = 32u;                 // tokens of a tile
const AS = 36u;                 // words per staged row of 128 bytes (with padding)
const XO = 2304u;               // TR * AS: where the input planes start in sm
const SMW = 4608u;              // TR * AS + 2 * TT * AS staged, >= 2 * 2048 of results

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<vec4<i32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

// [TR rows][AS] weights, int8 +-1, then [hi, lo][TT tokens][AS] input planes; after the products
// per subgroup [8 matrices][16 rows][16 tokens] of results; at the end [token][33] sums.
var<workgroup> sm: array<i32, SMW>;
var<workgroup> wd: array<f32, TR>;            // weight scales of the block's rows
var<workgroup> ws: array<f32, TR>;            // 128 * sum of the rows' +-1 over the block
var<workgroup> xd: array<f32, TT>;            // input scales of the tile's tokens

alias LM = subgroup_matrix_left<i8, 32, 16>;
alias RM = subgroup_matrix_right<i8, 16, 32>;
alias CM = subgroup_matrix_result<i32, 16, 16>;

fn ldw(off: u32) -> LM { return subgroupMatrixLoad<LM, row_major>(&sm, off, AS); }
fn ldx(off: u32) -> RM { return subgroupMatrixLoad<RM, col_major>(&sm, off, AS); }

// What one invocation loads from global memory for one block: its row's 18 bytes (5 words cover
// them), its half of the tile's input planes, its token's input scale. Loaded a block ahead.
struct Pre { w: array<u32, 5>, x: array<vec4<i32>, 8>, d: f32 }

fn fetch(b: u32, blk: u32, t0: u32, tid: u32, nb: u32, kv: u32) -> Pre {
  var f: Pre;
  let w0 = blk / 4u;
  for (var i = 0u; i < 5u; i++) { f.w[i] = W[w0 + i]; }  // W is padded: word w0 + 4 exists
  for (var k = 0u; k < 8u; k++) {
    let i = tid + 64u * k;              // [plane 2][token 32][vec4 8]
    f.x[k] = XQ[(i / 256u) * (LO / 4u) + (t0 + (i / 8u) % 32u) * kv + b * 8u + i % 8u];
  }
  let si = SC + (t0 + tid % 32u) * nb + b;
  f.d = bitcast<f32>(XQ[si / 4u][si % 4u]);
  return f;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t0 = wg.y * TT;
  let nb = P.cols / 128u;
  let kv = P.cols / 16u;        // vec4s per token row of a plane
  let rbase = P.w_off + min(wg.x * TR + tid, P.rows - 1u) * P.row_bytes;  // staging: one row each
  let sg = tid / 32u;           // subgroup: rows 32 sg .. 32 sg + 31 of the tile
  let lane = tid % 32u;
  let rb = sg * 2048u;          // its results in sm
  var acc: array<f32, 32>;      // [row tile 2][token tile 2][8 rows]
  for (var i = 0u; i < 32u; i++) { acc[i] = 0.0; }
  var f = fetch(0u, rbase, t0, tid, nb, kv);
  for (var b = 0u; b < nb; b++) {
    // the block's scale and sign words from the 5 words (the block starts at an even byte)
    let odd = ((rbase + b * 18u) & 2u) != 0u;
    let sv = unpack2x16float(f.w[0]);
    wd[tid] = select(sv.x, sv.y, odd);
    var pc = 0u;
    for (var wi = 0u; wi < 4u; wi++) {
      let bits = select((f.w[wi] >> 16u) | (f.w[wi + 1u] << 16u), f.w[wi + 1u], odd);
      pc += countOneBits(bits);
      for (var nib = 0u; nib < 8u; nib++) {
        let e = (((bits >> (4u * nib)) & 15u) * 0x00204081u) & 0x01010101u;  // 0/1 bytes
        sm[tid * AS + wi * 8u + nib] = bitcast<i32>(0xFFFFFFFFu ^ (e * 0xFEu));  // +1 / -1 bytes
      }
    }
    ws[tid] = 128.0 * f32(2 * i32(pc) - 128);
    for (var k = 0u; k < 8u; k++) {
      let i = tid + 64u * k;
      let o = XO + (i / 256u) * (TT * AS) + ((i / 8u) % 32u) * AS + (i % 8u) * 4u;
      let v = f.x[k];
      sm[o] = v.x;
      sm[o + 1u] = v.y;
      sm[o + 2u] = v.z;
      sm[o + 3u] = v.w;
    }
    if (tid < TT) { xd[tid] = f.d; }
    workgroupBarrier();
    if (b + 1u < nb) { f = fetch(b + 1u, rbase + (b + 1u) * 18u, t0, tid, nb, kv); }
    var c0 = CM(); var c1 = CM(); var c2 = CM(); var c3 = CM();
    var c4 = CM(); var c5 = CM(); var c6 = CM(); var c7 = CM();
    // Matrices: weights a0, a1 (rows 0-15, 16-31 of the subgroup's), input hi h0, h1 and lo l0,
    // l1 (tokens 0-15, 16-31); the same code twice with the subgroup's weight offset as a literal
    // (a switch around the weight loads alone, inside the K loop: 6% slower on the H100).
    switch (sg) {
      case 0u: {
        for (var ks = 0u; ks < 4u; ks++) {
          let a0 = ldw(ks * 8u);
          let a1 = ldw(16u * AS + ks * 8u);
          let h0 = ldx(XO + ks * 8u);
          let h1 = ldx(XO + 16u * AS + ks * 8u);
          let l0 = ldx(XO + TT * AS + ks * 8u);
          let l1 = ldx(XO + TT * AS + 16u * AS + ks * 8u);
          c0 = subgroupMatrixMultiplyAccumulate(a0, h0, c0);
          c1 = subgroupMatrixMultiplyAccumulate(a0, l0, c1);
          c2 = subgroupMatrixMultiplyAccumulate(a0, h1, c2);
          c3 = subgroupMatrixMultiplyAccumulate(a0, l1, c3);
          c4 = subgroupMatrixMultiplyAccumulate(a1, h0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(a1, l0, c5);
          c6 = subgroupMatrixMultiplyAccumulate(a1, h1, c6);
          c7 = subgroupMatrixMultiplyAccumulate(a1, l1, c7);
        }
      }
      default: {
        for (var ks = 0u; ks < 4u; ks++) {
          let a0 = ldw(32u * AS + ks * 8u);
          let a1 = ldw(48u * AS + ks * 8u);
          let h0 = ldx(XO + ks * 8u);
          let h1 = ldx(XO + 16u * AS + ks * 8u);
          let l0 = ldx(XO + TT * AS + ks * 8u);
          let l1 = ldx(XO + TT * AS + 16u * AS + ks * 8u);
          c0 = subgroupMatrixMultiplyAccumulate(a0, h0, c0);
          c1 = subgroupMatrixMultiplyAccumulate(a0, l0, c1);
          c2 = subgroupMatrixMultiplyAccumulate(a0, h1, c2);
          c3 = subgroupMatrixMultiplyAccumulate(a0, l1, c3);
          c4 = subgroupMatrixMultiplyAccumulate(a1, h0, c4);
          c5 = subgroupMatrixMultiplyAccumulate(a1, l0, c5);
          c6 = subgroupMatrixMultiplyAccumulate(a1, h1, c6);
          c7 = subgroupMatrixMultiplyAccumulate(a1, l1, c7);
        }
      }
    }
    workgroupBarrier();
    // Matrix m = rt * 4 + tt * 2 + (0 hi, 1 lo) at rb + m * 256, element (row i, token j) + i * 16 + j.
    subgroupMatrixStore<row_major>(&sm, rb + 0u, c0, 16u);
    subgroupMatrixStore<row_major>(&sm, rb + 256u, c1, 16u);
    subgroupMatrixStore<row_major>(&sm, rb + 512u, c2, 16u);
    subgroupMatrixStore<row_major>(&sm, rb + 768u, c3, 16u);
    subgroupMatrixStore<row_major>(&sm, rb + 1024u, c4, 16u);
    subgroupMatrixStore<row_major>(&sm, rb + 1280u, c5, 16u);
    subgroupMatrixStore<row_major>(&sm, rb + 1536u, c6, 16u);
    subgroupMatrixStore<row_major>(&sm, rb + 1792u, c7, 16u);
    workgroupBarrier();
    // Lane: token j = lane % 16, rows i = lane / 16 + 2 e (one bank each).
    let j = lane % 16u;
    for (var tt = 0u; tt < 2u; tt++) {
      let dx = xd[tt * 16u + j];
      for (var rt = 0u; rt < 2u; rt++) {
        let m = rb + (rt * 4u + tt * 2u) * 256u + j;
        let r = sg * 32u + rt * 16u;
        for (var e = 0u; e < 8u; e++) {
          let i = lane / 16u + 2u * e;
          let v = 256.0 * f32(sm[m + i * 16u]) + f32(sm[m + 256u + i * 16u]) + ws[r + i];
          acc[(rt * 2u + tt) * 8u + e] += wd[r + i] * dx * v;
        }
      }
    }
    workgroupBarrier();
  }
  // Out through this subgroup's part of sm ([token][33]) so that a lane writes one row of each token.
  for (var tt = 0u; tt < 2u; tt++) {
    for (var rt = 0u; rt < 2u; rt++) {
      for (var e = 0u; e < 8u; e++) {
        sm[rb + (tt * 16u + lane % 16u) * 33u + rt * 16u + lane / 16u + 2u * e] = bitcast<i32>(acc[(rt * 2u + tt) * 8u + e]);
      }
    }
  }
  workgroupBarrier();
  let r = wg.x * TR + sg * 32u + lane;
  if (r < P.rows) {
    for (var tl = 0u; tl < 32u; tl++) {
      let t = t0 + tl;
      if (t < S.n) {
        let o = P.out_off + t * P.out_stride + P.row0 + r;
        var y = bitcast<f32>(sm[rb + tl * 33u + lane]);
        if (RESID) { y += Y[o]; }
        Y[o] = y;
      }
    }
  }
}
