// mm_dp.wgsl — Y[t][r] = W[r] . X[t] for a prompt chunk on packed 4 x 8-bit integer dot products
// (WGSL's dot4I8Packed, a core feature: no subgroup matrices, no f16). The input comes quantised
// as for mm_sg.wgsl (xq.wgsl: per token and 128-block, hi and lo int8 planes and a scale d), so
//   sum_k w_k q_k = 256 (W . hi) + (W . lo) + 128 sum_k w_k
// with w = +-1 as int8 bytes; the integer sums of a 128-block are scaled by d_w[r] * d_x[t] in f32.
// A workgroup of 128 owns TR = 64 rows x TT = 64 tokens; an invocation 8 rows (rg + 8 i) x 4
// tokens (tg + 16 j), rg = tid % 8, tg = tid / 8: per 16 weights it loads 8 weight and 8 input
// vec4s of workgroup memory for 256 dot4I8Packed (the 4 x 4 kernel before loaded 12 for 128). A
// 32-wide subgroup reads 8 rows and 4 tokens of workgroup memory a load: the rows' 16-byte words
// swizzled by row, the tokens' by token (no bank conflicts), and writes 8 consecutive rows of 4
// tokens. K goes in steps of half a block (64 weights): the step's weights expanded to +-1 bytes
// (64 rows x 16 words) and input planes (64 tokens x 16 hi + 16 lo words) in workgroup memory,
// the next step's global loads issued before this step's products. 13,056 bytes of workgroup
// memory (under WebGPU's default 16 KiB).
// RESID: Y += W X. Rows go to Y[out_off + t * out_stride + row0 + r].
// Bounds: rows past P.rows are read as row P.rows - 1 and never written; tokens past S.n read
// XQ rows the host allocated (tokens rounded up to TT) and are never written.
// The host's grid is (rows / TR, tokens / TT) rounded up (src/backend_webgpu.c MMD_TR, MMD_TT).

override RESID: bool = false;
override LO: u32 = 0u;
override SC: u32 = 0u;

const TR = 64u;                 // rows of a tile
const TT = 64u;                 // tokens of a tile
const XB = 256u;                // where the input planes start in sm (vec4 units): TR * 4

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

// [TR rows][4 vec4, swizzled by row] +-1 weight bytes of the step, then [TT tokens][hi 4, lo 4
// vec4, each four swizzled by token].
var<workgroup> sm: array<vec4<u32>, 768>;
var<workgroup> wd: array<f32, TR>;            // weight scales of the block's rows
var<workgroup> ws: array<f32, TR>;            // 128 * sum of the rows' +-1 over the block
var<workgroup> xd: array<f32, TT>;            // input scales of the tile's tokens

// Four +-1 bytes of 4 weights (sign bit set: +1).
fn pm1(nib: u32) -> u32 {
  let e = ((nib & 15u) * 0x00204081u) & 0x01010101u;  // 0/1 bytes
  return 0xFFFFFFFFu ^ (e * 0xFEu);                   // 1 -> 0x01, 0 -> 0xFF
}

// a + four weight words (16 weights) against one plane's 16 bytes of a token, as a chain of
// accumulating dot products.
fn dot16(a: i32, w: vec4<u32>, x: vec4<u32>) -> i32 {
  var s = a + dot4I8Packed(w.x, x.x);
  s += dot4I8Packed(w.y, x.y);
  s += dot4I8Packed(w.z, x.z);
  s += dot4I8Packed(w.w, x.w);
  return s;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t0 = wg.y * TT;
  let nb = P.cols / 128u;
  let kv = P.cols / 16u;        // vec4s per token row of a plane
  // staging: row sr = tid / 2 (its block's 18 bytes in 5 words; half sp of the step's 64
  // weights), token tid / 2 (hi and lo vec4s 2 sp, 2 sp + 1 of the step)
  let sr = tid / 2u;
  let sp = tid % 2u;
  let rbase = P.w_off + min(wg.x * TR + sr, P.rows - 1u) * P.row_bytes;
  let xt = t0 + sr;
  let xrow = xt * kv + 2u * sp;
  let xs = XB + sr * 8u;
  let xz = sr & 3u;             // the staged token's swizzle
  // products: rows rg + 8 i, tokens tg + 16 j; the rows' and the tokens' swizzles
  let rg = tid % 8u;
  let tg = tid / 8u;
  let sw = (rg >> 1u) & 3u;
  let tz = tg & 3u;
  var acc: array<vec4<f32>, 8>;  // [row i][token j]
  var hi: array<vec4<i32>, 8>;   // the block's integer sums [row i][token j], hi and lo planes
  var lo: array<vec4<i32>, 8>;
  for (var i = 0u; i < 8u; i++) { acc[i] = vec4<f32>(0.0); hi[i] = vec4<i32>(0); lo[i] = vec4<i32>(0); }
  var wv: array<u32, 5>;
  var xa: array<vec4<u32>, 4>;  // hi 2 sp, hi 2 sp + 1, lo 2 sp, lo 2 sp + 1
  var dn = 0.0;
  {
    let w0 = rbase / 4u;
    for (var i = 0u; i < 5u; i++) { wv[i] = W[w0 + i]; }  // W is padded: word w0 + 4 exists
    xa[0] = XQ[xrow];
    xa[1] = XQ[xrow + 1u];
    xa[2] = XQ[LO / 4u + xrow];
    xa[3] = XQ[LO / 4u + xrow + 1u];
    if (tid < TT) { let si = SC + (t0 + tid) * nb; dn = bitcast<f32>(XQ[si / 4u][si % 4u]); }
  }
  for (var st = 0u; st < 2u * nb; st++) {
    let b = st / 2u;
    let h = st % 2u;
    let odd = ((rbase + b * 18u) & 2u) != 0u;
    if (h == 0u && sp == 0u) {
      let sv = unpack2x16float(wv[0]);
      wd[sr] = select(sv.x, sv.y, odd);
      var pc = 0u;
      for (var i = 0u; i < 4u; i++) { pc += countOneBits(select((wv[i] >> 16u) | (wv[i + 1u] << 16u), wv[i + 1u], odd)); }
      ws[sr] = 128.0 * f32(2 * i32(pc) - 128);
    }
    if (h == 0u && tid < TT) { xd[tid] = dn; }
    {
      // this thread's 32 weights of the step: word 2 h + sp of the block, as vec4s 2 sp, 2 sp + 1
      let wi = 2u * h + sp;
      let bits = select((wv[wi] >> 16u) | (wv[wi + 1u] << 16u), wv[wi + 1u], odd);
      let rz = (sr >> 1u) & 3u;
      sm[sr * 4u + ((2u * sp) ^ rz)] = vec4<u32>(pm1(bits), pm1(bits >> 4u), pm1(bits >> 8u), pm1(bits >> 12u));
      sm[sr * 4u + ((2u * sp + 1u) ^ rz)] = vec4<u32>(pm1(bits >> 16u), pm1(bits >> 20u), pm1(bits >> 24u), pm1(bits >> 28u));
    }
    sm[xs + ((2u * sp) ^ xz)] = xa[0];
    sm[xs + ((2u * sp + 1u) ^ xz)] = xa[1];
    sm[xs + 4u + ((2u * sp) ^ xz)] = xa[2];
    sm[xs + 4u + ((2u * sp + 1u) ^ xz)] = xa[3];
    workgroupBarrier();
    // the next step's loads
    if (st + 1u < 2u * nb) {
      let nbk = (st + 1u) / 2u;
      let nh = (st + 1u) % 2u;
      if (nh == 0u) {
        let w0 = (rbase + nbk * 18u) / 4u;
        for (var i = 0u; i < 5u; i++) { wv[i] = W[w0 + i]; }
        if (tid < TT) { let si = SC + (t0 + tid) * nb + nbk; dn = bitcast<f32>(XQ[si / 4u][si % 4u]); }
      }
      let o = xrow + nbk * 8u + nh * 4u;
      xa[0] = XQ[o];
      xa[1] = XQ[o + 1u];
      xa[2] = XQ[LO / 4u + o];
      xa[3] = XQ[LO / 4u + o + 1u];
    }
    for (var q = 0u; q < 4u; q++) {
      var xh: array<vec4<u32>, 4>;
      var xl: array<vec4<u32>, 4>;
      for (var j = 0u; j < 4u; j++) {
        xh[j] = sm[XB + (tg + 16u * j) * 8u + (q ^ tz)];
        xl[j] = sm[XB + (tg + 16u * j) * 8u + 4u + (q ^ tz)];
      }
      for (var i = 0u; i < 8u; i++) {
        let w = sm[(rg + 8u * i) * 4u + (q ^ sw)];
        hi[i] = vec4<i32>(dot16(hi[i].x, w, xh[0]), dot16(hi[i].y, w, xh[1]), dot16(hi[i].z, w, xh[2]), dot16(hi[i].w, w, xh[3]));
        lo[i] = vec4<i32>(dot16(lo[i].x, w, xl[0]), dot16(lo[i].y, w, xl[1]), dot16(lo[i].z, w, xl[2]), dot16(lo[i].w, w, xl[3]));
      }
    }
    if (h == 1u) {
      let dx = vec4<f32>(xd[tg], xd[tg + 16u], xd[tg + 32u], xd[tg + 48u]);
      for (var i = 0u; i < 8u; i++) {
        let r = rg + 8u * i;
        acc[i] += (wd[r] * dx) * (vec4<f32>(hi[i] * 256 + lo[i]) + ws[r]);
        hi[i] = vec4<i32>(0);
        lo[i] = vec4<i32>(0);
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let r = wg.x * TR + rg + 8u * i;
    if (r >= P.rows) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let t = t0 + tg + 16u * j;
      if (t < S.n) {
        let o = P.out_off + t * P.out_stride + P.row0 + r;
        var y = acc[i][j];
        if (RESID) { y += Y[o]; }
        Y[o] = y;
      }
    }
  }
}
