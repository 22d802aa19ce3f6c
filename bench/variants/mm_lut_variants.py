#!/usr/bin/python3
# mm_lut_variants.py — writes the prompt product by table lookups (same bindings and quantised
# input as src/webgpu/kernels/mm_dp.wgsl; SHIPPED_HEAD below says how it works) as candidates for
# bench/kernel-bench.mjs (--dp-variant FILE): TR rows x TT tokens a workgroup (8 rows x 4 tokens
# an invocation), NG groups of 4 weights (4 NG weights) a K-step. Checked against the shipped
# kernel on SwiftShader (kernel-bench --small: all agree) and, as a drop-in mm_dp.wgsl (128 x 32,
# NG 4; git history of branch gpupp), by tests/webgpu.test.mjs's mm_dp tests; not timed on a GPU.
#   usage: /usr/bin/python3 bench/variants/mm_lut_variants.py OUT_DIR [--shipped FILE]
#   -> OUT_DIR/lut{TR}x{TT}g{NG}.wgsl; --shipped FILE: a complete mm_dp.wgsl of 128 x 32, NG 4
#      (to adopt it, the host's MMD_TR 128, MMD_TT 32, MMD_WG_MEM 10880 and the memory check of
#      tests/webgpu.test.mjs "mm_dp: the host grid ..." follow: 64 NG TT + 4 (5 TR + TT) bytes)
import os
import sys

SHIPPED_HEAD = """// mm_dp.wgsl (table lookups) — Y[t][r] = W[r] . X[t] for a prompt chunk by table lookups on plain integer adds
// (core WGSL: no subgroups, no subgroup matrices, no f16). The input comes quantised as for
// mm_sg.wgsl (xq.wgsl: per token and 128-block, hi and lo int8 planes and a scale d), i.e. 16-bit
// integers q = 256 hi + lo + 128. The weights are signs, so 4 consecutive weights of a row against
// one token give one of 16 sums +-q0 +-q1 +-q2 +-q3: per K-step of 16 the workgroup writes these
// sums (int32, [group of 4 weights][sum][token]) for its TT tokens, and an invocation adds, per row
// and group, the entry that the row's 4 sign bits select, for 4 tokens with one 16-byte load: both
// planes of the input at once and 4 adds per 16 weight x token pairs (the shipped dot4I8Packed form
// takes 8 dot products and their adds). The integer sums of a
// 128-block (|sum| < 2^22) are scaled by d_w[r] * d_x[t] in f32.
// A workgroup of 128 owns TR = 128 rows x TT = 32 tokens; 8 invocations (a quarter of a 32-wide
// subgroup) 8 rows, each invocation those 8 rows x 4 tokens (4 q .. 4 q + 3, q = tid % 8), so a
// quarter subgroup's 16-byte loads read 128 consecutive bytes (no bank conflicts) and the row's
// sign bits are one broadcast load. The tables' writes are whole vec4s (no component stores, which
// a compiler may turn into a read-modify-write of the vec4): invocation tid writes sums 4 c ..
// 4 c + 3 (c = tid / 8 % 4) of the token quad tid % 8 for the group tid / 32. Per 128-block the
// weights' sign bits and scales are staged in workgroup memory (one invocation a row); the next
// step's global loads are issued before this step's lookups. 10,880 bytes of workgroup memory
// (under WebGPU's default 16 KiB). Written by bench/variants/mm_lut_variants.py --shipped.
// RESID: Y += W X. Rows go to Y[out_off + t * out_stride + row0 + r].
// Bounds: rows past P.rows are read as row P.rows - 1 and never written; tokens past S.n read
// XQ rows the host allocated (tokens rounded up to TT) and are never written.
// The host's grid is (rows / TR, tokens / TT) rounded up (src/backend_webgpu.c MMD_TR, MMD_TT).

"""

BODY = """override RESID: bool = false;
override LO: u32 = 0u;
override SC: u32 = 0u;

const TR = @TR@u;
const TT = @TT@u;
const NG = @NG@u;                // groups of 4 weights a step
const LQ = TT / 4u;             // invocations per 8 rows (4 tokens each)
const NTH = TR / 8u * LQ;       // invocations (@NTH@)
const SB = 32u / NG;            // steps a 128-block
const BI = NG * TT / NTH;       // table pieces an invocation writes a step
const PW = NTH / TR;            // invocations staging a row's block
const WW = 4u / PW;             // words of sign bits each of them stages
const GV = 4u * TT;             // vec4s of a group's table: 16 sums x TT / 4 token quads

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

var<workgroup> tab: array<vec4<i32>, NG * GV>;  // [group][sum][token quad] vec4 of 4 tokens
var<workgroup> wb: array<u32, 4u * TR>;         // [row][4 words]: the block's sign bits
var<workgroup> wd: array<f32, TR>;              // the block's weight scales
var<workgroup> xd: array<f32, TT>;              // the block's input scales

// The 16-bit input q = 256 hi + lo + 128 of byte j of the two planes' words.
fn qv(hi: u32, lo: u32, j: u32) -> i32 {
  return extractBits(bitcast<i32>(hi), 8u * j, 8u) * 256 + extractBits(bitcast<i32>(lo), 8u * j, 8u) + 128;
}

@compute @workgroup_size(@NTH@)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let t0 = wg.y * TT;
  let nb = P.cols / 128u;
  let kv = P.cols / 16u;        // vec4s per token row of a plane
  // staging of the weights: row sr, words WW sp .. WW sp + WW - 1 of its block's bits
  let sr = tid / PW;
  let sp = tid % PW;
  let rbase = P.w_off + min(wg.x * TR + sr, P.rows - 1u) * P.row_bytes;
  // lookups: rows 8 h + i, tokens 4 q + j
  let q = tid % LQ;
  let h = tid / LQ;
  var acc: array<vec4<f32>, 8>;
  var s: array<vec4<i32>, 8>;
  for (var i = 0u; i < 8u; i++) { acc[i] = vec4<f32>(0.0); s[i] = vec4<i32>(0); }
  var wv: array<u32, WW + 1u>;
  // table pieces: piece it = tid + NTH m is token quad it % LQ, sums 4 c .. 4 c + 3 with
  // c = (it / LQ) % 4, group it / TT; the planes' words of its 4 tokens for the next step
  var xh: array<vec4<u32>, BI>;
  var xl: array<vec4<u32>, BI>;
  var dn = 0.0;
  {
    let w0 = rbase / 4u + WW * sp;
    for (var i = 0u; i <= WW; i++) { wv[i] = W[w0 + i]; }
    for (var m = 0u; m < BI; m++) {
      let it = tid + m * NTH;
      let g = it / TT;
      for (var j = 0u; j < 4u; j++) {
        let o = (t0 + 4u * (it % LQ) + j) * kv + g / 4u;
        xh[m][j] = XQ[o][g % 4u];
        xl[m][j] = XQ[LO / 4u + o][g % 4u];
      }
    }
    if (tid < TT) { let si = SC + (t0 + tid) * nb; dn = bitcast<f32>(XQ[si / 4u][si % 4u]); }
  }
  let ns = SB * nb;
  for (var st = 0u; st < ns; st++) {
    let b = st / SB;
    let kb = st % SB;
    if (kb == 0u) {
      let odd = ((rbase + b * 18u) & 2u) != 0u;
      if (sp == 0u) {
        let sv = unpack2x16float(wv[0]);
        wd[sr] = select(sv.x, sv.y, odd);
      }
      for (var j = 0u; j < WW; j++) {
        wb[sr * 4u + WW * sp + j] = select((wv[j] >> 16u) | (wv[j + 1u] << 16u), wv[j + 1u], odd);
      }
      if (tid < TT) { xd[tid] = dn; }
    }
    for (var m = 0u; m < BI; m++) {
      let it = tid + m * NTH;
      let c = (it / LQ) % 4u;
      var e0: vec4<i32>;
      var d0: vec4<i32>;
      var d1: vec4<i32>;
      for (var j = 0u; j < 4u; j++) {
        let q0 = qv(xh[m][j], xl[m][j], 0u);
        let q1 = qv(xh[m][j], xl[m][j], 1u);
        let q2 = qv(xh[m][j], xl[m][j], 2u);
        let q3 = qv(xh[m][j], xl[m][j], 3u);
        e0[j] = select(-q2, q2, (c & 1u) != 0u) + select(-q3, q3, (c & 2u) != 0u) - q0 - q1;
        d0[j] = 2 * q0;
        d1[j] = 2 * q1;
      }
      let o = (it / TT) * GV + 4u * c * LQ + it % LQ;
      tab[o] = e0;
      tab[o + LQ] = e0 + d0;
      tab[o + 2u * LQ] = e0 + d1;
      tab[o + 3u * LQ] = e0 + d0 + d1;
    }
    workgroupBarrier();
    // the next step's loads
    if (st + 1u < ns) {
      let nbk = (st + 1u) / SB;
      let nk = (st + 1u) % SB;
      if (nk == 0u) {
        let w0 = (rbase + nbk * 18u) / 4u + WW * sp;
        for (var i = 0u; i <= WW; i++) { wv[i] = W[w0 + i]; }
        if (tid < TT) { let si = SC + (t0 + tid) * nb + nbk; dn = bitcast<f32>(XQ[si / 4u][si % 4u]); }
      }
      for (var m = 0u; m < BI; m++) {
        let it = tid + m * NTH;
        let g = it / TT;
        for (var j = 0u; j < 4u; j++) {
          let o = (t0 + 4u * (it % LQ) + j) * kv + nbk * 8u + nk * (NG / 4u) + g / 4u;
          xh[m][j] = XQ[o][g % 4u];
          xl[m][j] = XQ[LO / 4u + o][g % 4u];
        }
      }
    }
    for (var i = 0u; i < 8u; i++) {
      let bits = wb[(8u * h + i) * 4u + kb * NG / 8u] >> ((4u * NG * kb) % 32u);
      for (var g = 0u; g < NG; g++) {
        s[i] += tab[g * GV + ((bits >> (4u * g)) & 15u) * LQ + q];
      }
    }
    if (kb == SB - 1u) {
      let dx = vec4<f32>(xd[4u * q], xd[4u * q + 1u], xd[4u * q + 2u], xd[4u * q + 3u]);
      for (var i = 0u; i < 8u; i++) {
        acc[i] += (wd[8u * h + i] * dx) * vec4<f32>(s[i]);
        s[i] = vec4<i32>(0);
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    let r = wg.x * TR + 8u * h + i;
    if (r >= P.rows) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let t = t0 + 4u * q + j;
      if (t < S.n) {
        let o = P.out_off + t * P.out_stride + P.row0 + r;
        var y = acc[i][j];
        if (RESID) { y += Y[o]; }
        Y[o] = y;
      }
    }
  }
}
"""


def gen(TR, TT, NG):
    nth = TR // 8 * (TT // 4)
    assert nth <= 256 and NG * TT % nth == 0 and nth % TR == 0 and nth >= TT and 32 % NG == 0
    mem = 64 * NG * TT + 4 * (5 * TR + TT)
    return mem, (BODY.replace("@TR@", str(TR)).replace("@TT@", str(TT)).replace("@NG@", str(NG))
                 .replace("@NTH@", str(nth)))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for TR, TT, NG in [(128, 32, 4), (128, 32, 8), (128, 64, 4), (64, 64, 4)]:
        mem, body = gen(TR, TT, NG)
        with open(os.path.join(out, f"lut{TR}x{TT}g{NG}.wgsl"), "w") as f:
            f.write(f"// tile: {TR} x {TT}\n// candidate written by bench/variants/mm_lut_variants.py: table lookups, {4 * NG} weights a\n"
                    f"// step, {mem} bytes of workgroup memory; the scheme as in its SHIPPED_HEAD\n" + body)
    if "--shipped" in sys.argv:
        with open(sys.argv[sys.argv.index("--shipped") + 1], "w") as f:
            f.write(SHIPPED_HEAD + gen(128, 32, 4)[1])


if __name__ == "__main__":
    main()
