/* tern_avx2.c — the ternary kernels (tern.h) for x86-64 with AVX2 (no VNNI).
 *
 * A 16-row tile is done as two halves of 8 rows (one 256-bit register holds 8 rows x 4 columns of
 * codes). Per half and 16-column chunk: one 32-byte load, (v >> 2k) & 3 gives 4 columns of codes
 * as unsigned bytes, and vpmaddubsw with the token's 4 activations broadcast gives int16 pair
 * sums, which are added in int16 over the 64 columns of the block (at most 16 x 2 x 3 x 127 =
 * 12192: no overflow) and widened once per block by vpmaddwd. Codes are unpacked once for up to
 * 4 tokens. The activation quantisation is the portable one (a small part of the work).
 */
#include "tern.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <string.h>

#define TK2_INLINE static inline __attribute__((always_inline))

static int tk2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

TK2_INLINE __m256i tk2_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Half h (rows 8h..8h+7) of a tile times T tokens (T <= 4), P planes; writes rows where mask. */
TK2_INLINE void tk2_half(const uint8_t *tile, int nb, int h, const tk_act *x, size_t t0, float *y, size_t ys, int nrow,
                         const int T, const int P) {
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * TK_TB_BYTES;
        __m256i s[4], sl[4];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) s[t] = sl[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256i v = _mm256_load_si256((const __m256i *)(const void *)(tb + 32 + 64 * j + 32 * h));
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m256i w = _mm256_and_si256(k ? _mm256_srli_epi16(v, 2 * k) : v, m3);
                const size_t off = (size_t)b * TK_BLK + 16 * j + 4 * k;
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(w, tk2_bcast4(xq + t * xs + off)));
                    if (P == 2) sl[t] = _mm256_add_epi16(sl[t], _mm256_maddubs_epi16(w, tk2_bcast4(xl + t * xs + off)));
                }
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(tb + 16 * h)));
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i st = _mm256_madd_epi16(s[t], ones);
            if (P == 2) st = _mm256_add_epi32(_mm256_slli_epi32(st, 7), _mm256_madd_epi16(sl[t], ones));
            const __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(st), _mm256_set1_ps(xa[t * ns + b]),
                                             _mm256_set1_ps(xc[t * ns + b]));
            acc[t] = _mm256_fmadd_ps(d, f, acc[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        if (nrow >= 8) {
            _mm256_storeu_ps(y + t * ys, acc[t]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[t]);
            memcpy(y + t * ys, tmp, (size_t)nrow * sizeof(float));
        }
    }
}

#define TK2_CASES(P)                                                                                    \
    switch (n - t0 < 4 ? n - t0 : 4) {                                                                  \
    case 1: tk2_half(td, nb, h, x, (size_t)t0, yy, ys, nrow, 1, P); break;                              \
    case 2: tk2_half(td, nb, h, x, (size_t)t0, yy, ys, nrow, 2, P); break;                              \
    case 3: tk2_half(td, nb, h, x, (size_t)t0, yy, ys, nrow, 3, P); break;                              \
    default: tk2_half(td, nb, h, x, (size_t)t0, yy, ys, nrow, 4, P); break;                             \
    }

static void tk2_gemm(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ys) {
    const int nb = w->nb;
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * nb * TK_TB_BYTES;
        for (int h = 0; h < 2; h++) {
            const int nrow = w->rows - tile * TK_TILE - 8 * h;
            if (nrow <= 0) break;
            for (int t0 = 0; t0 < n; t0 += 4) {
                float *yy = y + (size_t)t0 * ys + (size_t)tile * TK_TILE + 8 * h;
                if (x->ql) {
                    TK2_CASES(2)
                } else {
                    TK2_CASES(1)
                }
            }
        }
    }
}

const tk_isa tk_isa_avx2 = {
    .name = "avx2",
    .compiled = 1,
    .supported = tk2_supported,
    .quant = tk_quant_generic,
    .gemm = tk2_gemm,
};

#else
const tk_isa tk_isa_avx2 = {.name = "avx2", .compiled = 0};
#endif
