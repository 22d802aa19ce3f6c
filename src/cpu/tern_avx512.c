/* tern_avx512.c — the ternary kernels (tern.h) for x86-64 with AVX-512 BW/VL and VNNI.
 *
 * Per 16-row tile and 16-column chunk: one 64-byte load, and (v >> 2k) & 3 for k = 0..3 gives the
 * codes of 4 columns of the 16 rows as 64 unsigned bytes (row r in bytes 4r..4r+3); one vpdpbusd
 * per token and activation plane adds the token's 4 int8 activations, broadcast to every lane,
 * weighted by the codes. Codes are unpacked once and used for up to 8 tokens, so a batch costs
 * about one vpdpbusd per 64 weights per token and plane. Per 64 columns the integer sums are
 * converted and scaled in float (tern.h gives the algebra). One token (generation) skips the
 * shifts: v & (3 << 2k) is its own accumulator's operand, the 4^k removed once a block
 * (tk5_tile1); its 4 accumulators also keep vpdpbusd latency out of the way. Per scale group (64 or
 * 256 columns, tern.h) one fp16 conversion of the rows' scales and, for one token, one multiply by
 * them; with several tokens each block's float sum is multiplied (as tk_gemm_generic up to float
 * rounding: no group sums to keep in registers next to 8 tokens' accumulators). Built with the
 * Makefile's per-ISA flags; otherwise an empty table.
 */
#include "tern.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <string.h>

#define TK5_INLINE static inline __attribute__((always_inline))

static int tk5_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("fma");
}

static void tk5_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    const float K = ql ? TK_K16 : TK_K8;
    for (int b = 0; b < cols / TK_BLK; b++) {
        const float *xb = x + (size_t)b * TK_BLK;
        __m512 v[4], mx = _mm512_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm512_loadu_ps(xb + 16 * i);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(v[i]));
        }
        const float amax = _mm512_reduce_max_ps(mx);
        if (amax == 0.0f) {
            memset(q + (size_t)b * TK_BLK, 0, TK_BLK);
            if (ql) memset(ql + (size_t)b * TK_BLK, 0, TK_BLK);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float sx = amax / K;
        const __m512 inv = _mm512_set1_ps(K / amax);
        const __m512i kmax = _mm512_set1_epi32((int)K), kmin = _mm512_set1_epi32(-(int)K);
        __m512i sum = _mm512_setzero_si512();
        for (int i = 0; i < 4; i++) {
            __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(v[i], inv)); /* nearest even */
            qi = _mm512_max_epi32(_mm512_min_epi32(qi, kmax), kmin);
            sum = _mm512_add_epi32(sum, qi);
            if (ql) {
                const __m512i h = _mm512_srai_epi32(_mm512_add_epi32(qi, _mm512_set1_epi32(64)), 7);
                _mm_storeu_si128((__m128i *)(q + (size_t)b * TK_BLK + 16 * i), _mm512_cvtepi32_epi8(h));
                _mm_storeu_si128((__m128i *)(ql + (size_t)b * TK_BLK + 16 * i),
                                 _mm512_cvtepi32_epi8(_mm512_sub_epi32(qi, _mm512_slli_epi32(h, 7))));
            } else {
                _mm_storeu_si128((__m128i *)(q + (size_t)b * TK_BLK + 16 * i), _mm512_cvtepi32_epi8(qi));
            }
        }
        a[b] = sx;
        c[b] = -sx * (float)_mm512_reduce_add_epi32(sum);
    }
}

TK5_INLINE __m512i tk5_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* One tile (16 rows) times T tokens (T <= 8, constant after inlining), P planes, GS blocks a scale. */
TK5_INLINE void tk5_tile(const uint8_t *tile, int ng, const tk_act *x, size_t t0, float *y, size_t ys, __mmask16 km,
                         const int T, const int P, const int GS) {
    const int U = T == 1 ? 4 : T == 2 ? 2 : 1; /* accumulators per token and plane */
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++) {
        const uint8_t *tg = tile + (size_t)g * TK_GB_BYTES(GS);
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)tg));
#pragma GCC unroll 1
        for (int i = 0; i < GS; i++) {
            const uint8_t *tb = tg + 32 + 256 * i;
            const int b = g * GS + i;
            __m512i s[8][4], sl[8][4];
#pragma GCC unroll 8
            for (int t = 0; t < T; t++)
#pragma GCC unroll 4
                for (int u = 0; u < U; u++) s[t][u] = sl[t][u] = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m512i v = _mm512_loadu_si512((const void *)(tb + 64 * j));
                __m512i w[4];
                w[0] = _mm512_and_si512(v, m3);
                w[1] = _mm512_and_si512(_mm512_srli_epi16(v, 2), m3);
                w[2] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m3);
                w[3] = _mm512_and_si512(_mm512_srli_epi16(v, 6), m3);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    const size_t off = (size_t)b * TK_BLK + 16 * j + 4 * k;
#pragma GCC unroll 8
                    for (int t = 0; t < T; t++) {
                        s[t][k % U] = _mm512_dpbusd_epi32(s[t][k % U], w[k], tk5_bcast4(xq + t * xs + off));
                        if (P == 2)
                            sl[t][k % U] = _mm512_dpbusd_epi32(sl[t][k % U], w[k], tk5_bcast4(xl + t * xs + off));
                    }
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m512i st = s[t][0];
#pragma GCC unroll 4
                for (int u = 1; u < U; u++) st = _mm512_add_epi32(st, s[t][u]);
                if (P == 2) {
                    __m512i lt = sl[t][0];
#pragma GCC unroll 4
                    for (int u = 1; u < U; u++) lt = _mm512_add_epi32(lt, sl[t][u]);
                    st = _mm512_add_epi32(_mm512_slli_epi32(st, 7), lt); /* S = 128 S_h + S_l */
                }
                const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st), _mm512_set1_ps(xa[t * ns + b]),
                                                 _mm512_set1_ps(xc[t * ns + b]));
                acc[t] = _mm512_fmadd_ps(d, f, acc[t]); /* per block: no group sums kept in registers */
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ys, km, acc[t]);
}

/* One tile times one token (generation), P planes. The codes of column 4k + c sit at bits 2k, 2k+1
 * of their byte; instead of shifting them down, v & (3 << 2k) is used as it is (at most 192: still an
 * unsigned byte), which weighs that column's products by 4^k: each k has its own accumulator, and
 * S = s0 + (s1 >> 2) + (s2 >> 4) + (s3 >> 6), exact since s_k is a multiple of 4^k (per block at most
 * 4 x 4 x 192 x 128 per plane: far from int32 overflow, also after the high plane's x 128). Four
 * ands and four vpdpbusd a plane per 64 bytes, no shifts: the kernel that streams the weights. */
TK5_INLINE void tk5_tile1(const uint8_t *tile, int ng, const tk_act *x, size_t t0, float *y, __mmask16 km, const int P,
                          const int GS) {
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    const __m512i mk[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0C), _mm512_set1_epi8(0x30),
                           _mm512_set1_epi8((char)0xC0)};
    __m512 acc = _mm512_setzero_ps();
    for (int g = 0; g < ng; g++) {
        const uint8_t *tg = tile + (size_t)g * TK_GB_BYTES(GS);
        __m512 gsum = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int i = 0; i < GS; i++) {
            const uint8_t *tb = tg + 32 + 256 * i;
            const int b = g * GS + i;
            __m512i s[4], sl[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) s[k] = sl[k] = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m512i v = _mm512_loadu_si512((const void *)(tb + 64 * j));
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    const __m512i w = _mm512_and_si512(v, mk[k]);
                    const size_t off = (size_t)b * TK_BLK + 16 * j + 4 * k;
                    s[k] = _mm512_dpbusd_epi32(s[k], w, tk5_bcast4(xq + off));
                    if (P == 2) sl[k] = _mm512_dpbusd_epi32(sl[k], w, tk5_bcast4(xl + off));
                }
            }
            if (P == 2)
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) s[k] = _mm512_add_epi32(_mm512_slli_epi32(s[k], 7), sl[k]); /* 128 S_h + S_l */
            const __m512i st = _mm512_add_epi32(_mm512_add_epi32(s[0], _mm512_srai_epi32(s[1], 2)),
                                                _mm512_add_epi32(_mm512_srai_epi32(s[2], 4), _mm512_srai_epi32(s[3], 6)));
            const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st), _mm512_set1_ps(xa[b]), _mm512_set1_ps(xc[b]));
            gsum = GS == 1 ? f : _mm512_add_ps(gsum, f);
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)tg));
        acc = _mm512_fmadd_ps(d, gsum, acc);
    }
    _mm512_mask_storeu_ps(y, km, acc);
}

#define TK5_CASES(P, GS)                                                                                \
    switch (n - t0 < 8 ? n - t0 : 8) {                                                                  \
    case 1: tk5_tile1(td, ng, x, (size_t)t0, yy, km, P, GS); break;                                     \
    case 2: tk5_tile(td, ng, x, (size_t)t0, yy, ys, km, 2, P, GS); break;                               \
    case 3: tk5_tile(td, ng, x, (size_t)t0, yy, ys, km, 3, P, GS); break;                               \
    case 4: tk5_tile(td, ng, x, (size_t)t0, yy, ys, km, 4, P, GS); break;                               \
    case 5: tk5_tile(td, ng, x, (size_t)t0, yy, ys, km, 5, P, GS); break;                               \
    case 6: tk5_tile(td, ng, x, (size_t)t0, yy, ys, km, 6, P, GS); break;                               \
    case 7: tk5_tile(td, ng, x, (size_t)t0, yy, ys, km, 7, P, GS); break;                               \
    default: tk5_tile(td, ng, x, (size_t)t0, yy, ys, km, 8, P, GS); break;                              \
    }

/* One function per group size, so each is as large as the one layout's was. */
#define TK5_GEMM(NAME, GS)                                                                              \
    static __attribute__((noinline)) void NAME(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, \
                                               float *y, size_t ys) {                                   \
        const int ng = w->nb / GS;                                                                      \
        const size_t tile_bytes = (size_t)ng * TK_GB_BYTES(GS);                                         \
        for (int tile = tile0; tile < tile1; tile++) {                                                  \
            const uint8_t *td = w->data + (size_t)tile * tile_bytes;                                    \
            const int left = w->rows - tile * TK_TILE;                                                  \
            const __mmask16 km = left >= TK_TILE ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);   \
            for (int t0 = 0; t0 < n; t0 += 8) {                                                         \
                float *yy = y + (size_t)t0 * ys + (size_t)tile * TK_TILE;                               \
                if (x->ql) {                                                                            \
                    TK5_CASES(2, GS)                                                                    \
                } else {                                                                                \
                    TK5_CASES(1, GS)                                                                    \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    }
TK5_GEMM(tk5_gemm1, 1)
TK5_GEMM(tk5_gemm4, 4)

static void tk5_gemm(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ys) {
    (w->gs == 4 ? tk5_gemm4 : tk5_gemm1)(w, tile0, tile1, x, n, y, ys);
}

const tk_isa tk_isa_avx512 = {
    .name = "avx512",
    .compiled = 1,
    .supported = tk5_supported,
    .quant = tk5_quant,
    .gemm = tk5_gemm,
};

#else
const tk_isa tk_isa_avx512 = {.name = "avx512", .compiled = 0};
#endif
