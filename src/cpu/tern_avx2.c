/* tern_avx2.c — the ternary kernels (tern.h) for x86-64 with AVX2 (no VNNI).
 *
 * A 16-row tile is done as two halves of 8 rows (one 256-bit register holds 8 rows x 4 columns of
 * codes). Per half and 16-column chunk: one 32-byte load v; the codes of column 4k + c sit at bits
 * 2k, 2k+1 of their byte, and one shift gives all four columns with two ands each: v & 3 (k = 0),
 * v & 12 (k = 1, the code times 4), (v >> 4) & 3 (k = 2), (v >> 4) & 12 (k = 3, times 4).
 * vpmaddubsw with the token's 4 activations broadcast gives int16 pair sums, added in int16 over the
 * 64 columns of the block into one sum for k = 0, 2 and one for k = 1, 3 (at most 8 x 2 x 12 x 128 =
 * 24576: no overflow), each widened once a block by vpmaddwd: S = S02 + (S13 >> 2), exact since
 * S13 is a multiple of 4. Per scale group (64 or 256 columns, tern.h) one fp16 conversion of the
 * rows' scales; with up to 4 tokens in 16 registers, each block's float sum is multiplied by them
 * (as tk_gemm_generic up to float rounding: no group sums to keep in registers).
 * Codes are unpacked once for up to 4 tokens. The activation quantisation is vectorised too
 * (bit-identical to the portable one).
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

/* Half h (rows 8h..8h+7) of a tile times T tokens (T <= 4), P planes, GS blocks a scale; writes nrow rows. */
TK2_INLINE void tk2_half(const uint8_t *tile, int ng, int h, const tk_act *x, size_t t0, float *y, size_t ys, int nrow,
                         const int T, const int P, const int GS) {
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int g = 0; g < ng; g++) {
        const uint8_t *tg = tile + (size_t)g * TK_GB_BYTES(GS);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(tg + 16 * h)));
#pragma GCC unroll 1
        for (int i = 0; i < GS; i++) {
            const uint8_t *tb = tg + 32 + 256 * i;
            const int b = g * GS + i;
            __m256i s[4][2], sl[4][2]; /* [token][0: k = 0, 2; 1: k = 1, 3 (codes times 4)] */
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) s[t][0] = s[t][1] = sl[t][0] = sl[t][1] = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m256i v = _mm256_load_si256((const __m256i *)(const void *)(tb + 64 * j + 32 * h));
                const __m256i v4 = _mm256_srli_epi16(v, 4);
                const __m256i w[4] = {_mm256_and_si256(v, m3), _mm256_and_si256(v, m12), _mm256_and_si256(v4, m3),
                                      _mm256_and_si256(v4, m12)};
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    const size_t off = (size_t)b * TK_BLK + 16 * j + 4 * k;
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) {
                        s[t][k & 1] =
                            _mm256_add_epi16(s[t][k & 1], _mm256_maddubs_epi16(w[k], tk2_bcast4(xq + t * xs + off)));
                        if (P == 2)
                            sl[t][k & 1] = _mm256_add_epi16(sl[t][k & 1],
                                                            _mm256_maddubs_epi16(w[k], tk2_bcast4(xl + t * xs + off)));
                    }
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256i st = _mm256_add_epi32(_mm256_madd_epi16(s[t][0], ones),
                                              _mm256_srai_epi32(_mm256_madd_epi16(s[t][1], ones), 2));
                if (P == 2) {
                    const __m256i lt = _mm256_add_epi32(_mm256_madd_epi16(sl[t][0], ones),
                                                        _mm256_srai_epi32(_mm256_madd_epi16(sl[t][1], ones), 2));
                    st = _mm256_add_epi32(_mm256_slli_epi32(st, 7), lt); /* S = 128 S_h + S_l */
                }
                const __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(st), _mm256_set1_ps(xa[t * ns + b]),
                                                 _mm256_set1_ps(xc[t * ns + b]));
                acc[t] = _mm256_fmadd_ps(d, f, acc[t]); /* per block: no group sums kept in registers */
            }
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

/* One token's activations (tern.h), bit-identical to tk_quant_generic: the same float products,
 * rounded to nearest even by vcvtps2dq as nearbyintf does, then clamped. */
static void tk2_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    const float K = ql ? TK_K16 : TK_K8;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7); /* undoes the packs' lane interleave */
    for (int b = 0; b < cols / TK_BLK; b++) {
        const float *xb = x + (size_t)b * TK_BLK;
        __m256 v[8], mx = _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[i]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        const float amax = _mm_cvtss_f32(m4);
        int8_t *qb = q + (size_t)b * TK_BLK, *lb = ql ? ql + (size_t)b * TK_BLK : NULL;
        if (amax == 0.0f) {
            memset(qb, 0, TK_BLK);
            if (lb) memset(lb, 0, TK_BLK);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float inv = K / amax, sx = amax / K;
        const __m256 vinv = _mm256_set1_ps(inv);
        const __m256i kmax = _mm256_set1_epi32((int)K), kmin = _mm256_set1_epi32(-(int)K);
        __m256i qi[8], sum = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vinv));
            qi[i] = _mm256_max_epi32(_mm256_min_epi32(qi[i], kmax), kmin);
            sum = _mm256_add_epi32(sum, qi[i]);
        }
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        const int isum = _mm_cvtsi128_si32(s4);
        __m256i hi[8], lo[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            if (lb) {
                hi[i] = _mm256_srai_epi32(_mm256_add_epi32(qi[i], _mm256_set1_epi32(64)), 7); /* floor((Q + 64) / 128) */
                lo[i] = _mm256_sub_epi32(qi[i], _mm256_slli_epi32(hi[i], 7));
            } else {
                hi[i] = qi[i];
            }
        }
#pragma GCC unroll 2
        for (int i = 0; i < 8; i += 4) {
            const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(hi[i], hi[i + 1]), _mm256_packs_epi32(hi[i + 2], hi[i + 3]));
            _mm256_storeu_si256((__m256i *)(void *)(qb + 8 * i), _mm256_permutevar8x32_epi32(p, order));
            if (lb) {
                const __m256i pl =
                    _mm256_packs_epi16(_mm256_packs_epi32(lo[i], lo[i + 1]), _mm256_packs_epi32(lo[i + 2], lo[i + 3]));
                _mm256_storeu_si256((__m256i *)(void *)(lb + 8 * i), _mm256_permutevar8x32_epi32(pl, order));
            }
        }
        a[b] = sx;
        c[b] = -sx * (float)isum;
    }
}

#define TK2_CASES(P, GS)                                                                                \
    switch (n - t0 < 4 ? n - t0 : 4) {                                                                  \
    case 1: tk2_half(td, ng, h, x, (size_t)t0, yy, ys, nrow, 1, P, GS); break;                          \
    case 2: tk2_half(td, ng, h, x, (size_t)t0, yy, ys, nrow, 2, P, GS); break;                          \
    case 3: tk2_half(td, ng, h, x, (size_t)t0, yy, ys, nrow, 3, P, GS); break;                          \
    default: tk2_half(td, ng, h, x, (size_t)t0, yy, ys, nrow, 4, P, GS); break;                         \
    }

/* One function per group size, so each is as large as the one layout's was. */
#define TK2_GEMM(NAME, GS)                                                                              \
    static __attribute__((noinline)) void NAME(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, \
                                               float *y, size_t ys) {                                   \
        const int ng = w->nb / GS;                                                                      \
        const size_t tile_bytes = (size_t)ng * TK_GB_BYTES(GS);                                         \
        for (int tile = tile0; tile < tile1; tile++) {                                                  \
            const uint8_t *td = w->data + (size_t)tile * tile_bytes;                                    \
            for (int h = 0; h < 2; h++) {                                                               \
                const int nrow = w->rows - tile * TK_TILE - 8 * h;                                      \
                if (nrow <= 0) break;                                                                   \
                for (int t0 = 0; t0 < n; t0 += 4) {                                                     \
                    float *yy = y + (size_t)t0 * ys + (size_t)tile * TK_TILE + 8 * h;                   \
                    if (x->ql) {                                                                        \
                        TK2_CASES(2, GS)                                                                \
                    } else {                                                                            \
                        TK2_CASES(1, GS)                                                                \
                    }                                                                                   \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    }
TK2_GEMM(tk2_gemm1, 1)
TK2_GEMM(tk2_gemm4, 4)

static void tk2_gemm(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ys) {
    (w->gs == 4 ? tk2_gemm4 : tk2_gemm1)(w, tile0, tile1, x, n, y, ys);
}

const tk_isa tk_isa_avx2 = {
    .name = "avx2",
    .compiled = 1,
    .supported = tk2_supported,
    .quant = tk2_quant,
    .gemm = tk2_gemm,
};

#else
const tk_isa tk_isa_avx2 = {.name = "avx2", .compiled = 0};
#endif
