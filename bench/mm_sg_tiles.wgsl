// tile: 64 x 64
// mm_sg_tiles.wgsl — a CANDIDATE for web/kernels/mm_sg.wgsl, kept under bench/ for tuning with
// bench/kernel-bench.mjs (--mm-variant bench/mm_sg_tiles.wgsl --mm 1x1,2x1,2x2,...): it has not
// run on a GPU yet, and the engine does not use it. The tile line above must match SGR and SGT
// (kernel-bench rewrites both for --mm). To ship it: the host's grid and the quantised input's
// token rounding (src/backend_webgpu.c, mm_step and the xq allocation) follow the tile, and
// gpu.mjs adds `diagnostic(off, chromium.subgroup_matrix_uniformity);` after the enables.
// mm_sg.wgsl — Y[t][r] = W[r] . X[t] for a prompt chunk on the GPU's matrix units (WebGPU's
// experimental subgroup matrices: 16 x 16 x 32 int8 products into int32, 32-wide subgroups). The
// input comes quantised by xq.wgsl (per token and 128-block: hi and lo int8 planes, scale d);
// each weight is +-1 as int8. Per 128-block of K a subgroup's tile of 32 rows x 32 tokens gets
//   sum_k w_k q_k = 256 (W . hi) + (W . lo) + 128 sum_k w_k
// as one int32 matrix per 16 x 16 (the hi products, times 256, then the lo products added), and
// the block's scales d_w[r] * d_x[t] are applied in f32 before the next block.
// A workgroup is SGR x SGT subgroups (rows x tokens): the block's weights of TR = 32 SGR rows,
// expanded to bytes, and the input planes of TT = 32 SGT tokens are staged once in workgroup
// memory for all of them (subgroup-matrix loads straight from a storage buffer are ~4x slower on
// an H100). Each subgroup's integer results go through its own part of workgroup memory to be
// scaled, each lane owning one token and eight rows of a matrix; the block's scales are double
// buffered, so a block costs two barriers. The sums leave through workgroup memory too, so that
// the writes of Y are coalesced.
// The offsets of a subgroup's matrices depend on its index in the workgroup, which WGSL's
// uniformity analysis cannot see is uniform across the subgroup: the host switches that
// diagnostic off (chromium.subgroup_matrix_uniformity); every call is in uniform control flow.
// RESID: Y += W X. Rows go to Y[out_off + t * out_stride + row0 + r].
// Bounds: rows past P.rows are read as row P.rows - 1 and never written; tokens past S.n read
// XQ rows the host allocated (tokens rounded up to TT) and are never written.

override RESID: bool = false;
override LO: u32 = 0u;
override SC: u32 = 0u;

const SGR = 2u;                 // subgroups along the rows of a tile (1, 2 or 4)
const SGT = 2u;                 // ... along its tokens (1, 2 or 4)
const NSG = SGR * SGT;
const NT = 32u * NSG;           // invocations
const TR = 32u * SGR;           // rows of a tile
const TT = 32u * SGT;           // tokens of a tile
const AS = 36u;                 // words per staged row of 128 bytes (with padding)
const WPI = 4u / SGT;           // sign words of a row an invocation expands (SGT invocations a row)
const XV = 16u / SGR;           // vec4s of the input planes an invocation stages
const RS = 1056u;               // words of a subgroup's result area: 4 x 16 x 16, and 32 x 33 at the end

var<workgroup> wa: array<i32, TR * AS>;       // [TR rows][AS]: the block's weights, int8 +-1
var<workgroup> xr: array<i32, 2u * TT * AS>;  // [hi, lo][TT tokens][AS]: the block's input planes
var<workgroup> res: array<i32, NSG * RS>;     // per subgroup: [4 matrices][16 rows][16 tokens]
var<workgroup> wd: array<f32, 2u * TR>;       // [block & 1][row]: weight scales of the block
var<workgroup> ws: array<f32, 2u * TR>;       // [block & 1][row]: 128 * sum of the row's +-1
var<workgroup> xd: array<f32, 2u * TT>;       // [block & 1][token]: input scales

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<vec4<i32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

alias LM = subgroup_matrix_left<i8, 32, 16>;
alias RM = subgroup_matrix_right<i8, 16, 32>;
alias CM = subgroup_matrix_result<i32, 16, 16>;

fn ldw(off: u32) -> LM { return subgroupMatrixLoad<LM, row_major>(&wa, off, AS); }
fn ldx(off: u32) -> RM { return subgroupMatrixLoad<RM, col_major>(&xr, off, AS); }

// What one invocation loads from global memory for one block: the 18 bytes of its row (5 words
// cover them), its share of the tile's input planes, one token's input scale. A block ahead.
struct Pre { w: array<u32, 5>, x: array<vec4<i32>, XV>, d: f32 }

fn fetch(b: u32, blk: u32, t0: u32, tid: u32, nb: u32, kv: u32) -> Pre {
  var f: Pre;
  let w0 = blk / 4u;
  for (var i = 0u; i < 5u; i++) { f.w[i] = W[w0 + i]; }  // W is padded: word w0 + 4 exists
  for (var k = 0u; k < XV; k++) {
    let i = tid + NT * k;               // [plane 2][token TT][vec4 8]
    f.x[k] = XQ[(i / (8u * TT)) * (LO / 4u) + (t0 + (i / 8u) % TT) * kv + b * 8u + i % 8u];
  }
  let si = SC + (t0 + tid % TT) * nb + b;
  f.d = bitcast<f32>(XQ[si / 4u][si % 4u]);
  return f;
}

// Writes a fetched block into workgroup memory (scales into half h of their double buffer).
fn stage(f: Pre, odd: bool, tid: u32, h: u32) {
  let row = tid / SGT;
  let part = tid % SGT;
  if (part == 0u) {
    let sv = unpack2x16float(f.w[0]);
    var pc = 0u;
    for (var wi = 0u; wi < 4u; wi++) {
      pc += countOneBits(select((f.w[wi] >> 16u) | (f.w[wi + 1u] << 16u), f.w[wi + 1u], odd));
    }
    wd[h * TR + row] = select(sv.x, sv.y, odd);
    ws[h * TR + row] = 128.0 * f32(2 * i32(pc) - 128);
  }
  for (var j = 0u; j < WPI; j++) {
    let wi = part * WPI + j;
    let bits = select((f.w[wi] >> 16u) | (f.w[wi + 1u] << 16u), f.w[wi + 1u], odd);
    for (var nib = 0u; nib < 8u; nib++) {
      let e = (((bits >> (4u * nib)) & 15u) * 0x00204081u) & 0x01010101u;  // 0/1 bytes
      wa[row * AS + wi * 8u + nib] = bitcast<i32>(0xFFFFFFFFu ^ (e * 0xFEu));  // +1 / -1 bytes
    }
  }
  for (var k = 0u; k < XV; k++) {
    let i = tid + NT * k;
    let o = (i / (8u * TT)) * (TT * AS) + ((i / 8u) % TT) * AS + (i % 8u) * 4u;
    let v = f.x[k];
    xr[o] = v.x;
    xr[o + 1u] = v.y;
    xr[o + 2u] = v.z;
    xr[o + 3u] = v.w;
  }
  if (tid < TT) { xd[h * TT + tid] = f.d; }
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t0 = wg.y * TT;
  let nb = P.cols / 128u;
  let kv = P.cols / 16u;        // vec4s per token row of a plane
  let rbase = P.w_off + min(wg.x * TR + tid / SGT, P.rows - 1u) * P.row_bytes;  // this invocation's staged row
  let sg = tid / 32u;
  let lane = tid % 32u;
  let sr = sg % SGR;            // this subgroup's rows and tokens within the tile
  let st = sg / SGR;
  let wb = sr * 32u * AS;
  let xb = st * 32u * AS;
  let rb = sg * RS;
  var acc: array<f32, 32>;      // [row tile 2][token tile 2][8 rows]
  for (var i = 0u; i < 32u; i++) { acc[i] = 0.0; }
  var f = fetch(0u, rbase, t0, tid, nb, kv);
  for (var b = 0u; b < nb; b++) {
    let h = b & 1u;
    stage(f, ((rbase + b * 18u) & 2u) != 0u, tid, h);
    workgroupBarrier();
    if (b + 1u < nb) { f = fetch(b + 1u, rbase + (b + 1u) * 18u, t0, tid, nb, kv); }
    var c0 = CM(); var c1 = CM(); var c2 = CM(); var c3 = CM();
    for (var ks = 0u; ks < 4u; ks++) {
      let a0 = ldw(wb + ks * 8u);
      let a1 = ldw(wb + 16u * AS + ks * 8u);
      let x0 = ldx(xb + ks * 8u);
      let x1 = ldx(xb + 16u * AS + ks * 8u);
      c0 = subgroupMatrixMultiplyAccumulate(a0, x0, c0);
      c1 = subgroupMatrixMultiplyAccumulate(a0, x1, c1);
      c2 = subgroupMatrixMultiplyAccumulate(a1, x0, c2);
      c3 = subgroupMatrixMultiplyAccumulate(a1, x1, c3);
    }
    c0 = subgroupMatrixScalarMultiply(c0, 256);
    c1 = subgroupMatrixScalarMultiply(c1, 256);
    c2 = subgroupMatrixScalarMultiply(c2, 256);
    c3 = subgroupMatrixScalarMultiply(c3, 256);
    for (var ks = 0u; ks < 4u; ks++) {
      let a0 = ldw(wb + ks * 8u);
      let a1 = ldw(wb + 16u * AS + ks * 8u);
      let x0 = ldx(TT * AS + xb + ks * 8u);
      let x1 = ldx(TT * AS + xb + 16u * AS + ks * 8u);
      c0 = subgroupMatrixMultiplyAccumulate(a0, x0, c0);
      c1 = subgroupMatrixMultiplyAccumulate(a0, x1, c1);
      c2 = subgroupMatrixMultiplyAccumulate(a1, x0, c2);
      c3 = subgroupMatrixMultiplyAccumulate(a1, x1, c3);
    }
    subgroupMatrixStore<row_major>(&res, rb, c0, 16u);
    subgroupMatrixStore<row_major>(&res, rb + 256u, c1, 16u);
    subgroupMatrixStore<row_major>(&res, rb + 512u, c2, 16u);
    subgroupMatrixStore<row_major>(&res, rb + 768u, c3, 16u);
    workgroupBarrier();
    // Matrix m = rt * 2 + tt; element (row i, token j) at rb + m * 256 + i * 16 + j.
    // Lane: token j = lane % 16, rows i = lane / 16 + 2 e (one bank each).
    let j = lane % 16u;
    for (var tt = 0u; tt < 2u; tt++) {
      let dx = xd[h * TT + st * 32u + tt * 16u + j];
      for (var rt = 0u; rt < 2u; rt++) {
        let m = rb + (rt * 2u + tt) * 256u + j;
        let r = h * TR + sr * 32u + rt * 16u;
        for (var e = 0u; e < 8u; e++) {
          let i = lane / 16u + 2u * e;
          acc[(rt * 2u + tt) * 8u + e] += wd[r + i] * dx * (f32(res[m + i * 16u]) + ws[r + i]);
        }
      }
    }
  }
  // Out through this subgroup's result area ([token][33]) so that a lane writes one row of each token.
  workgroupBarrier();
  for (var tt = 0u; tt < 2u; tt++) {
    for (var rt = 0u; rt < 2u; rt++) {
      for (var e = 0u; e < 8u; e++) {
        res[rb + (tt * 16u + lane % 16u) * 33u + rt * 16u + lane / 16u + 2u * e] = bitcast<i32>(acc[(rt * 2u + tt) * 8u + e]);
      }
    }
  }
  workgroupBarrier();
  let r = wg.x * TR + sr * 32u + lane;
  if (r < P.rows) {
    for (var tl = 0u; tl < 32u; tl++) {
      let t = t0 + st * 32u + tl;
      if (t < S.n) {
        let o = P.out_off + t * P.out_stride + P.row0 + r;
        var y = bitcast<f32>(res[rb + tl * 33u + lane]);
        if (RESID) { y += Y[o]; }
        Y[o] = y;
      }
    }
  }
}
