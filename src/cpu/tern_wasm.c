/* tern_wasm.c — the ternary kernels (tern.h) for WebAssembly SIMD128.
 *
 * As tern_neon.c without dotprod: a 16-row tile a quarter (4 rows, 16 bytes of a chunk) at a time,
 * (v >> 2k) & 3 gives the codes of 4 columns of the 4 rows, i16x8.extmul with the token's 4
 * activations broadcast gives 16-bit products, added in 16 bits over the block's 64 columns (at
 * most 16 x 2 x 3 x 127 = 12192 per lane: no overflow) and folded to one int32 per row by a
 * pairwise extend-add and one shuffle-add. One token at a time; the activation quantisation is the
 * portable one. Tested by tests/wasm-kernels.sh (node). Elsewhere the file only defines an empty table.
 */
#include "tern.h"

#if defined(__wasm_simd128__)
#include <string.h>
#include <wasm_simd128.h>

#include "quant.h"

static int tkw_supported(void) { return 1; }

/* [r0a, r0b, r1a, r1b] + [r2a, r2b, r3a, r3b] -> [r0, r1, r2, r3] */
static inline v128_t tkw_fold(v128_t lo16, v128_t hi16) {
    const v128_t a = wasm_i32x4_extadd_pairwise_i16x8(lo16), b = wasm_i32x4_extadd_pairwise_i16x8(hi16);
    return wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 2, 4, 6), wasm_i32x4_shuffle(a, b, 1, 3, 5, 7));
}

static void tkw_gemm(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ys) {
    const int gs = w->gs, ng = w->nb / gs;
    const size_t tile_bytes = (size_t)ng * TK_GB_BYTES(gs);
    const v128_t m3 = wasm_i8x16_splat(3);
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * tile_bytes;
        const int nrow = w->rows - tile * TK_TILE;
        for (int t = 0; t < n; t++) {
            const int8_t *xq = x->q + (size_t)t * x->cols, *xl = x->ql ? x->ql + (size_t)t * x->cols : NULL;
            const float *xa = x->a + (size_t)t * x->nb, *xc = x->c + (size_t)t * x->nb;
            float out[TK_TILE] = {0};
            for (int g = 0; g < ng; g++) {
                const uint8_t *tg = td + (size_t)g * TK_GB_BYTES(gs);
                for (int q = 0; q < 4; q++) {
                    v128_t gsum = wasm_f32x4_splat(0.0f);
                    for (int i = 0; i < gs; i++) {
                        const uint8_t *tb = tg + 32 + 256 * i;
                        const int b = g * gs + i;
                        v128_t h_lo = wasm_i16x8_splat(0), h_hi = h_lo, l_lo = h_lo, l_hi = h_lo;
                        for (int j = 0; j < 4; j++) {
                            const v128_t v = wasm_v128_load(tb + 64 * j + 16 * q);
                            for (int k = 0; k < 4; k++) {
                                const v128_t wk = wasm_v128_and(wasm_u8x16_shr(v, (uint32_t)(2 * k)), m3);
                                const size_t off = (size_t)b * TK_BLK + 16 * j + 4 * k;
                                int32_t h4;
                                memcpy(&h4, xq + off, 4);
                                const v128_t xh = wasm_i32x4_splat(h4);
                                h_lo = wasm_i16x8_add(h_lo, wasm_i16x8_extmul_low_i8x16(wk, xh));
                                h_hi = wasm_i16x8_add(h_hi, wasm_i16x8_extmul_high_i8x16(wk, xh));
                                if (xl) {
                                    int32_t l4;
                                    memcpy(&l4, xl + off, 4);
                                    const v128_t xlo = wasm_i32x4_splat(l4);
                                    l_lo = wasm_i16x8_add(l_lo, wasm_i16x8_extmul_low_i8x16(wk, xlo));
                                    l_hi = wasm_i16x8_add(l_hi, wasm_i16x8_extmul_high_i8x16(wk, xlo));
                                }
                            }
                        }
                        v128_t st = tkw_fold(h_lo, h_hi);
                        if (xl) st = wasm_i32x4_add(wasm_i32x4_shl(st, 7), tkw_fold(l_lo, l_hi));
                        const v128_t f = wasm_f32x4_add(
                            wasm_f32x4_mul(wasm_f32x4_convert_i32x4(st), wasm_f32x4_splat(xa[b])), wasm_f32x4_splat(xc[b]));
                        gsum = wasm_f32x4_add(gsum, f);
                    }
                    float fv[4];
                    wasm_v128_store(fv, gsum);
                    for (int r = 0; r < 4; r++) {
                        uint16_t d;
                        memcpy(&d, tg + 2 * (4 * q + r), 2);
                        out[4 * q + r] += ob_fp16_to_f32(d) * fv[r];
                    }
                }
            }
            for (int r = 0; r < TK_TILE && r < nrow; r++) y[(size_t)t * ys + (size_t)tile * TK_TILE + r] = out[r];
        }
    }
}

const tk_isa tk_isa_wasm = {
    .name = "wasm",
    .compiled = 1,
    .supported = tkw_supported,
    .quant = tk_quant_generic,
    .gemm = tkw_gemm,
};

#else
const tk_isa tk_isa_wasm = {.name = "wasm", .compiled = 0};
#endif
