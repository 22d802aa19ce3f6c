/* tern_neon.c — the ternary kernels (tern.h) for AArch64 NEON (sdot when built with dotprod).
 *
 * A 16-row tile is handled a quarter (4 rows, 16 bytes of a chunk) at a time: (v >> 2k) & 3 gives
 * the codes of 4 columns of the 4 rows; with dotprod, sdot with the token's 4 activations
 * broadcast adds them into one int32 lane per row; without, smlal multiplies-and-adds 8 bytes at a
 * time into 16-bit sums (at most 16 x 3 x 127 = 6096 per block: no overflow), folded to one int32
 * per row per block by two pairwise adds. One token at a time; the activation quantisation is the
 * portable one. Tested under qemu (tests/neon.sh). Elsewhere the file only defines an empty table.
 */
#include "tern.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

static int tkn_supported(void) { return 1; }

/* acc[q] += the 4 rows' 4-column dots of codes w with broadcast activations xb */
#if defined(__ARM_FEATURE_DOTPROD)
#define TKN_DOT(acc, w, xb) (acc = vdotq_s32(acc, w, xb))
#else
#define TKN_DOT(acc, w, xb)                                                                        \
    do {                                                                                           \
        acc##_lo = vmlal_s8(acc##_lo, vget_low_s8(w), vget_low_s8(xb));                            \
        acc##_hi = vmlal_s8(acc##_hi, vget_high_s8(w), vget_high_s8(xb));                          \
    } while (0)
#endif

static void tkn_gemm(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ys) {
    const int gs = w->gs, ng = w->nb / gs;
    const size_t tile_bytes = (size_t)ng * TK_GB_BYTES(gs);
    const uint8x16_t m3 = vdupq_n_u8(3);
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * tile_bytes;
        const int nrow = w->rows - tile * TK_TILE;
        for (int t = 0; t < n; t++) {
            const int8_t *xq = x->q + (size_t)t * x->cols, *xl = x->ql ? x->ql + (size_t)t * x->cols : NULL;
            const float *xa = x->a + (size_t)t * x->nb, *xc = x->c + (size_t)t * x->nb;
            float32x4_t acc[4];
            for (int q = 0; q < 4; q++) acc[q] = vdupq_n_f32(0.0f);
            for (int g = 0; g < ng; g++) {
                const uint8_t *tg = td + (size_t)g * TK_GB_BYTES(gs);
                for (int q = 0; q < 4; q++) {
                    float32x4_t gsum = vdupq_n_f32(0.0f);
                    for (int i = 0; i < gs; i++) {
                        const uint8_t *tb = tg + 32 + 256 * i;
                        const int b = g * gs + i;
#if defined(__ARM_FEATURE_DOTPROD)
                        int32x4_t sh = vdupq_n_s32(0), sl = vdupq_n_s32(0);
#else
                        int16x8_t sh_lo = vdupq_n_s16(0), sh_hi = vdupq_n_s16(0), sl_lo = vdupq_n_s16(0),
                                  sl_hi = vdupq_n_s16(0);
#endif
                        for (int j = 0; j < 4; j++) {
                            const uint8x16_t v = vld1q_u8(tb + 64 * j + 16 * q);
                            const int8x16_t wk[4] = {vreinterpretq_s8_u8(vandq_u8(v, m3)),
                                                     vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), m3)),
                                                     vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), m3)),
                                                     vreinterpretq_s8_u8(vshrq_n_u8(v, 6))};
                            for (int k = 0; k < 4; k++) {
                                const size_t off = (size_t)b * TK_BLK + 16 * j + 4 * k;
                                int32_t h4, l4;
                                __builtin_memcpy(&h4, xq + off, 4);
                                const int8x16_t xh = vreinterpretq_s8_s32(vdupq_n_s32(h4));
                                TKN_DOT(sh, wk[k], xh);
                                if (xl) {
                                    __builtin_memcpy(&l4, xl + off, 4);
                                    const int8x16_t xlo = vreinterpretq_s8_s32(vdupq_n_s32(l4));
                                    TKN_DOT(sl, wk[k], xlo);
                                }
                            }
                        }
#if !defined(__ARM_FEATURE_DOTPROD)
                        const int32x4_t sh = vpaddq_s32(vpaddlq_s16(sh_lo), vpaddlq_s16(sh_hi));
                        const int32x4_t sl = vpaddq_s32(vpaddlq_s16(sl_lo), vpaddlq_s16(sl_hi));
#endif
                        const int32x4_t st = xl ? vaddq_s32(vshlq_n_s32(sh, 7), sl) : sh;
                        const float32x4_t f = vfmaq_f32(vdupq_n_f32(xc[b]), vcvtq_f32_s32(st), vdupq_n_f32(xa[b]));
                        gsum = vaddq_f32(gsum, f);
                    }
                    const float32x4_t d =
                        vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)(tg + 8 * q))));
                    acc[q] = vfmaq_f32(acc[q], d, gsum);
                }
            }
            float out[16];
            for (int q = 0; q < 4; q++) vst1q_f32(out + 4 * q, acc[q]);
            for (int r = 0; r < TK_TILE && r < nrow; r++) y[(size_t)t * ys + (size_t)tile * TK_TILE + r] = out[r];
        }
    }
}

const tk_isa tk_isa_neon = {
    .name = "neon",
    .compiled = 1,
    .supported = tkn_supported,
    .quant = tk_quant_generic,
    .gemm = tkn_gemm,
};

#else
const tk_isa tk_isa_neon = {.name = "neon", .compiled = 0};
#endif
