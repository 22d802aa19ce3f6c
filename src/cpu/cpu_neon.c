/* cpu_neon.c — the CPU kernels for AArch64 (NEON).
 *
 * The Q1_0 product looks the weights up rather than multiplying by them: per token, tables of the
 * 16 subset sums of every group of 4 activations (cpu_kern.h, built once per product, three byte
 * chunks of each 17-bit sum), indexed with tbl by the 4 sign bits a row has in the group, which are
 * one nibble of the repacked mask. One tbl thus does 16 rows x 4 columns of one chunk: about 4.5
 * instructions per 32 weights for both activation planes (int16 precision), against 8 with sdot
 * (mask expansion + one sdot per plane) and 12 without (AND + sadalp per plane). The byte sums of
 * the lookups are exact (widened to 16 bits every 4 lookups) and equal the portable kernel's
 * integer sums. Plain ARMv8.0 NEON, so there is nothing to detect at run time: sdot would not
 * help. Not timed on ARM hardware (these machines are x86); tested under qemu (tests/neon.sh).
 * Also attention (one query at a time) and half <-> float conversion. AArch64 always has NEON, so
 * this table is used on every AArch64 build; elsewhere the file only defines an empty table.
 */
#include "cpu_kern.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#define NEON_ON 1
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define NEON_INLINE static inline __attribute__((always_inline))

static int neon_supported(void) { return 1; }

/* ---- activation quantisation ----------------------------------------------------------------- */

/* K: CK_K8 (ql NULL), CK_K16 or CK_K14 (two planes). */
NEON_INLINE void neon_quant_k(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c, const float K) {
    for (int b = 0; b < cols / CK_BLK; b++) {
        const float *xb = x + (size_t)b * CK_BLK;
        float32x4_t mx = vdupq_n_f32(0.0f);
        for (int i = 0; i < 32; i++) mx = vmaxq_f32(mx, vabsq_f32(vld1q_f32(xb + 4 * i)));
        const float amax = vmaxvq_f32(mx);
        if (amax == 0.0f) {
            memset(q + (size_t)b * CK_BLK, 0, CK_BLK);
            if (ql) memset(ql + (size_t)b * CK_BLK, 0, CK_BLK);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float sx = amax / K;
        const float32x4_t inv = vdupq_n_f32(K / amax);
        const int32x4_t kmax = vdupq_n_s32((int)K), kmin = vdupq_n_s32(-(int)K);
        int32x4_t sum = vdupq_n_s32(0);
        for (int i = 0; i < 16; i++) { /* 8 values at a time */
            int32x4_t v0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xb + 8 * i), inv)); /* ties to even */
            int32x4_t v1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xb + 8 * i + 4), inv));
            v0 = vmaxq_s32(vminq_s32(v0, kmax), kmin);
            v1 = vmaxq_s32(vminq_s32(v1, kmax), kmin);
            sum = vaddq_s32(sum, vaddq_s32(v0, v1));
            if (ql) {
                const int32x4_t h0 = vshrq_n_s32(vaddq_s32(v0, vdupq_n_s32(64)), 7);
                const int32x4_t h1 = vshrq_n_s32(vaddq_s32(v1, vdupq_n_s32(64)), 7);
                const int32x4_t l0 = vsubq_s32(v0, vshlq_n_s32(h0, 7)), l1 = vsubq_s32(v1, vshlq_n_s32(h1, 7));
                vst1_s8(q + (size_t)b * CK_BLK + 8 * i, vmovn_s16(vcombine_s16(vmovn_s32(h0), vmovn_s32(h1))));
                vst1_s8(ql + (size_t)b * CK_BLK + 8 * i, vmovn_s16(vcombine_s16(vmovn_s32(l0), vmovn_s32(l1))));
            } else {
                vst1_s8(q + (size_t)b * CK_BLK + 8 * i, vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1))));
            }
        }
        a[b] = 2.0f * sx;
        c[b] = -sx * (float)vaddvq_s32(sum);
    }
}

static void neon_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    if (ql) neon_quant_k(x, cols, q, ql, a, c, CK_K16);
    else neon_quant_k(x, cols, q, NULL, a, c, CK_K8);
}

static void neon_quant14(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    neon_quant_k(x, cols, q, ql, a, c, CK_K14);
}

/* ---- Q1_0 product: lookup tables ------------------------------------------------------------- */

/* Tables of cpu_kern.h, bit for bit as ck_lut_generic. Per group, the 16 subset sums of each
 * plane's 4 values in 16-bit lanes: entries 0..7 = bits 0..2 of k selecting p[0..2], entries
 * 8..15 the same plus p[3]. With T = 128 T_h + T_l (T_h = 0 for int8) and v = T + CK_LUT_BIAS:
 * c0 = T_l mod 64 (the bias is a multiple of 64), u = v >> 6 = 2 T_h + (T_l >> 6) + bias / 64,
 * c1 = u mod 64, c2 = u >> 6: all in 16 bits, though v needs 17. */
NEON_INLINE void neon_subsets(const int8_t *p, int16x8_t *lo, int16x8_t *hi) {
    static const int16_t b0[8] = {0, 1, 0, 1, 0, 1, 0, 1}, b1[8] = {0, 0, 1, 1, 0, 0, 1, 1}, b2[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    int16x8_t t = vmulq_n_s16(vld1q_s16(b0), p[0]);
    t = vmlaq_n_s16(t, vld1q_s16(b1), p[1]);
    t = vmlaq_n_s16(t, vld1q_s16(b2), p[2]);
    *lo = t;
    *hi = vaddq_s16(t, vdupq_n_s16(p[3]));
}

static void neon_lut(const int8_t *q, const int8_t *ql, int cols, uint8_t *lut) {
    const int16x8_t ub = vdupq_n_s16(CK_LUT_BIAS / 64), m63 = vdupq_n_s16(63);
    for (int g = 0; g < cols / 4; g++) {
        uint8_t *o = lut + (size_t)(g / 2) * 96 + 16 * (g % 2);
        int16x8_t th[2] = {vdupq_n_s16(0), vdupq_n_s16(0)}, tl[2];
        if (ql) neon_subsets(q + 4 * g, &th[0], &th[1]);
        neon_subsets(ql ? ql + 4 * g : q + 4 * g, &tl[0], &tl[1]);
        uint8x8_t c[3][2];
        for (int h = 0; h < 2; h++) {
            const int16x8_t u = vaddq_s16(vaddq_s16(vaddq_s16(th[h], th[h]), vshrq_n_s16(tl[h], 6)), ub);
            c[0][h] = vmovn_u16(vreinterpretq_u16_s16(vandq_s16(tl[h], m63)));
            c[1][h] = vmovn_u16(vreinterpretq_u16_s16(vandq_s16(u, m63)));
            c[2][h] = vmovn_u16(vreinterpretq_u16_s16(vshrq_n_s16(u, 6)));
        }
        for (int k = 0; k < 3; k++) vst1q_u8(o + 32 * k, vcombine_u8(c[k][0], c[k][1]));
    }
}

/* Blocks [b0, b1) of one tile for tokens t0 .. t0 + nt - 1, accumulated into y (which holds the
 * sums of blocks [0, b0) unless b0 = 0). Per pair of groups, the 16 mask bytes give the nibble
 * indices: low nibbles (rows 0, 2 .. 14 of group 2p in bytes 0..7, of 2p + 1 in bytes 8..15) and
 * high nibbles (rows 1, 3 .. 15); index vector of group 2p = its low then high nibbles, so byte j
 * of every lookup is row 2j (j < 8) or 2(j - 8) + 1: even rows, then odd rows, in both groups,
 * which therefore add up in the same bytes (4 lookups per byte sum, then widened to 16 bits). */
static void neon_tile(const uint8_t *tile, int b0, int b1, const ck_act *x, int t0, int nt, float *y, size_t ys,
                      int left) {
    float32x4_t acc[8][4]; /* per token: even rows 0..6, 8..14; odd rows 1..7, 9..15 */
    for (int t = 0; t < nt; t++) {
        if (b0 == 0 || left < 16) {
            float tmp[16] = {0};
            if (b0 > 0) memcpy(tmp, y + (size_t)t * ys, (size_t)left * sizeof(float));
            const float32x4x2_t p = vld2q_f32(tmp), r = vld2q_f32(tmp + 8);
            acc[t][0] = p.val[0], acc[t][1] = r.val[0], acc[t][2] = p.val[1], acc[t][3] = r.val[1];
        } else {
            const float32x4x2_t p = vld2q_f32(y + (size_t)t * ys), r = vld2q_f32(y + (size_t)t * ys + 8);
            acc[t][0] = p.val[0], acc[t][1] = r.val[0], acc[t][2] = p.val[1], acc[t][3] = r.val[1];
        }
    }
    const uint8x16_t lo4 = vdupq_n_u8(15);
    for (int b = b0; b < b1; b++) {
        const uint8_t *tb = tile + (size_t)b * CK_TB_BYTES;
        uint8x16_t idx[32]; /* [pair][group of the pair] */
        for (int p = 0; p < 16; p++) {
            const uint8x16_t m = vld1q_u8(tb + 32 + 16 * p), l = vandq_u8(m, lo4), h = vshrq_n_u8(m, 4);
            idx[2 * p] = vreinterpretq_u8_u64(vzip1q_u64(vreinterpretq_u64_u8(l), vreinterpretq_u64_u8(h)));
            idx[2 * p + 1] = vreinterpretq_u8_u64(vzip2q_u64(vreinterpretq_u64_u8(l), vreinterpretq_u64_u8(h)));
        }
        const uint16x8x2_t dh = vld2q_u16((const uint16_t *)(const void *)tb); /* even rows, odd rows */
        const float32x4_t d[4] = {vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(dh.val[0]))),
                                  vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(dh.val[0]))),
                                  vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(dh.val[1]))),
                                  vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(dh.val[1])))};
        for (int t = 0; t < nt; t++) {
            const size_t tt = (size_t)(t0 + t);
            const uint8_t *L = x->lut + tt * x->lut_stride + (size_t)b * 16 * 96;
            uint16x8_t ae[3], ao[3];
            for (int p0 = 0; p0 < 16; p0 += 2) {
                uint8x16_t s8[3];
                for (int c = 0; c < 3; c++) {
                    s8[c] = vqtbl1q_u8(vld1q_u8(L + 96 * p0 + 32 * c), idx[2 * p0]);
                    s8[c] = vaddq_u8(s8[c], vqtbl1q_u8(vld1q_u8(L + 96 * p0 + 32 * c + 16), idx[2 * p0 + 1]));
                    s8[c] = vaddq_u8(s8[c], vqtbl1q_u8(vld1q_u8(L + 96 * (p0 + 1) + 32 * c), idx[2 * p0 + 2]));
                    s8[c] = vaddq_u8(s8[c], vqtbl1q_u8(vld1q_u8(L + 96 * (p0 + 1) + 32 * c + 16), idx[2 * p0 + 3]));
                    ae[c] = p0 == 0 ? vmovl_u8(vget_low_u8(s8[c])) : vaddw_u8(ae[c], vget_low_u8(s8[c]));
                    ao[c] = p0 == 0 ? vmovl_high_u8(s8[c]) : vaddw_high_u8(ao[c], s8[c]);
                }
            }
            /* S = A0 + 64 A1 + 4096 A2 - 32 bias (each A <= 32 * 63), per half of 4 rows */
            const uint16x8_t *A[2] = {ae, ao};
            const float32x4_t va = vdupq_n_f32(x->a[tt * (size_t)x->nb + b]), vc = vdupq_n_f32(x->c[tt * (size_t)x->nb + b]);
            for (int k = 0; k < 4; k++) {
                const uint16x8_t *a = A[k / 2];
                uint32x4_t s;
                if (k % 2 == 0) {
                    s = vmovl_u16(vget_low_u16(a[0]));
                    s = vmlal_n_u16(s, vget_low_u16(a[1]), 64);
                    s = vmlal_n_u16(s, vget_low_u16(a[2]), 4096);
                } else {
                    s = vmovl_high_u16(a[0]);
                    s = vmlal_high_n_u16(s, a[1], 64);
                    s = vmlal_high_n_u16(s, a[2], 4096);
                }
                const int32x4_t si = vsubq_s32(vreinterpretq_s32_u32(s), vdupq_n_s32(32 * CK_LUT_BIAS));
                acc[t][k] = vfmaq_f32(acc[t][k], d[k], vfmaq_f32(vc, vcvtq_f32_s32(si), va));
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        const float32x4x2_t p = {{acc[t][0], acc[t][2]}}, r = {{acc[t][1], acc[t][3]}};
        if (left >= 16) {
            vst2q_f32(y + (size_t)t * ys, p);
            vst2q_f32(y + (size_t)t * ys + 8, r);
        } else {
            float tmp[16];
            vst2q_f32(tmp, p);
            vst2q_f32(tmp + 8, r);
            memcpy(y + (size_t)t * ys, tmp, (size_t)left * sizeof(float));
        }
    }
}

/* Tokens in groups of 8, columns in slices whose tables (1.5 KB per token and block) stay in L1
 * while the slice is swept over the tiles: 16 blocks for one token, fewer for more. */
static void neon_gemm(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys) {
    const int nb = w->nb;
    for (int t0 = 0; t0 < n; t0 += 8) {
        const int nt = n - t0 < 8 ? n - t0 : 8, sb = nt == 1 ? 16 : nt <= 2 ? 8 : 2;
        for (int b0 = 0; b0 < nb; b0 += sb) {
            const int b1 = b0 + sb < nb ? b0 + sb : nb;
            for (int tile = tile0; tile < tile1; tile++)
                neon_tile(w->data + (size_t)tile * nb * CK_TB_BYTES, b0, b1, x, t0, nt,
                          y + (size_t)t0 * ys + (size_t)tile * CK_TILE, ys, w->rows - tile * CK_TILE);
        }
    }
}

/* ---- attention ------------------------------------------------------------------------------- */

static void neon_attn(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                      float scale, float *out, float *sc) {
    if (hd % 16) {
        ck_attn_generic(q, k, v, stride, npos, hd, scale, out, sc);
        return;
    }
    float mx = -INFINITY;
    for (int j = 0; j < npos; j++) {
        const float *kj = k + (size_t)j * stride;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i += 16) {
            a0 = vfmaq_f32(a0, vld1q_f32(q + i), vld1q_f32(kj + i));
            a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), vld1q_f32(kj + i + 4));
            a2 = vfmaq_f32(a2, vld1q_f32(q + i + 8), vld1q_f32(kj + i + 8));
            a3 = vfmaq_f32(a3, vld1q_f32(q + i + 12), vld1q_f32(kj + i + 12));
        }
        sc[j] = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3))) * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    float den = 0.0f;
    for (int j = 0; j < npos; j++) {
        sc[j] = expf(sc[j] - mx);
        den += sc[j];
    }
    const float inv = 1.0f / den;
    for (int i = 0; i < hd; i += 16) {
        float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0, o2 = o0, o3 = o0;
        for (int j = 0; j < npos; j++) {
            const float *vj = v + (size_t)j * stride + i;
            o0 = vfmaq_n_f32(o0, vld1q_f32(vj), sc[j]);
            o1 = vfmaq_n_f32(o1, vld1q_f32(vj + 4), sc[j]);
            o2 = vfmaq_n_f32(o2, vld1q_f32(vj + 8), sc[j]);
            o3 = vfmaq_n_f32(o3, vld1q_f32(vj + 12), sc[j]);
        }
        vst1q_f32(out + i, vmulq_n_f32(o0, inv));
        vst1q_f32(out + i + 4, vmulq_n_f32(o1, inv));
        vst1q_f32(out + i + 8, vmulq_n_f32(o2, inv));
        vst1q_f32(out + i + 12, vmulq_n_f32(o3, inv));
    }
}

static void neon_f16_to_f32(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    ck_f16_to_f32_generic(dst + i, src + i, n - i);
}

static void neon_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0; /* rounds as FPCR says: to nearest even unless someone changed it */
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    ck_f32_to_f16_generic(dst + i, src + i, n - i);
}

#endif

#ifdef NEON_ON
const ck_isa ck_isa_neon = {
    .name = "neon",
    .compiled = 1,
    .supported = neon_supported,
    .quant = neon_quant,
    .quant14 = neon_quant14,
    .lut = neon_lut,
    .gemm = neon_gemm,
    .attn = neon_attn,
    .f16_to_f32 = neon_f16_to_f32,
    .f32_to_f16 = neon_f32_to_f16,
};
#else
const ck_isa ck_isa_neon = {.name = "neon", .compiled = 0};
#endif
