/* cpu_avx2.c — the CPU kernels for x86-64 with AVX2, FMA and F16C (Haswell and later, Zen 1+).
 *
 * Same tiles and arithmetic as the AVX-512 file, in 256-bit registers: a tile is handled as two
 * halves of 8 rows; half h of a group's 64-bit mask (32 bits, one per row and column) is expanded
 * to 32 bytes of 0/1 with a byte shuffle, an AND with the bit of each byte, a compare and an
 * absolute value. vpmaddubsw multiplies them with the token's 4 activations of a plane (broadcast)
 * into 16-bit pairs, summed over the 32 groups of a block in 16 bits (at most 32 * 2 * 127 = 8128:
 * no overflow), then one vpmaddwd per block widens to one int32 per row. Up to 4 tokens share an
 * expansion. Also attention (one query at a time), SwiGLU and half <-> float conversion. Built
 * with the flags of the "per-ISA kernel flags" block of the Makefile; without them this file only
 * defines an empty table.
 */
#include "cpu_kern.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define AVX2_ON 1
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AVX2_INLINE static inline __attribute__((always_inline))

static int avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

AVX2_INLINE float avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE float avx2_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- activation quantisation ----------------------------------------------------------------- */

/* Packs 32 int32 (4 vectors) to int8 in order: the packs work per 128-bit lane, the permute puts
 * the 4-byte groups back in order. */
AVX2_INLINE void avx2_store32(int8_t *dst, const __m256i *v) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    _mm256_storeu_si256((__m256i *)(void *)dst, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

static void avx2_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    const float K = ql ? CK_K16 : CK_K8;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int b = 0; b < cols / CK_BLK; b++) {
        const float *xb = x + (size_t)b * CK_BLK;
        __m256 mx = _mm256_setzero_ps();
        for (int i = 0; i < 16; i++) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(xb + 8 * i), absmask));
        const float amax = avx2_hmax(mx);
        if (amax == 0.0f) {
            memset(q + (size_t)b * CK_BLK, 0, CK_BLK);
            if (ql) memset(ql + (size_t)b * CK_BLK, 0, CK_BLK);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float sx = amax / K;
        const __m256 inv = _mm256_set1_ps(K / amax);
        const __m256i kmax = _mm256_set1_epi32((int)K), kmin = _mm256_set1_epi32(-(int)K);
        __m256i sum = _mm256_setzero_si256();
        for (int i = 0; i < 4; i++) {
            __m256i v[4], h[4];
            for (int k = 0; k < 4; k++) {
                v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 32 * i + 8 * k), inv));
                v[k] = _mm256_max_epi32(_mm256_min_epi32(v[k], kmax), kmin);
                sum = _mm256_add_epi32(sum, v[k]);
            }
            if (ql) {
                for (int k = 0; k < 4; k++) {
                    h[k] = _mm256_srai_epi32(_mm256_add_epi32(v[k], _mm256_set1_epi32(64)), 7);
                    v[k] = _mm256_sub_epi32(v[k], _mm256_slli_epi32(h[k], 7));
                }
                avx2_store32(q + (size_t)b * CK_BLK + 32 * i, h);
                avx2_store32(ql + (size_t)b * CK_BLK + 32 * i, v);
            } else {
                avx2_store32(q + (size_t)b * CK_BLK + 32 * i, v);
            }
        }
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        a[b] = 2.0f * sx;
        c[b] = -sx * (float)_mm_cvtsi128_si32(s4);
    }
}

/* ---- Q1_0 product ---------------------------------------------------------------------------- */

AVX2_INLINE __m256i avx2_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Half h (8 rows) of one tile times T <= 4 tokens, P planes. */
AVX2_INLINE void avx2_half(const uint8_t *tile, int nb, int h, const ck_act *x, size_t t0, float *y, size_t ys,
                           int left, const int T, const int P) {
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                          3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16,
                                          32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    __m256 acc[4];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * CK_TB_BYTES;
        const uint8_t *m = tb + 32 + 4 * h; /* the half's 32 bits of mask g are at m + 8 g */
        const int8_t *xb = xq + (size_t)b * CK_BLK, *lb = P == 2 ? xl + (size_t)b * CK_BLK : NULL;
        __m256i s[4], sl[4];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) s[t] = sl[t] = _mm256_setzero_si256();
#pragma GCC unroll 32
        for (int g = 0; g < CK_TB_MASKS; g++) {
            /* byte i of the half <- bit i: pick its mask byte, isolate the bit, 0xFF -> 1 */
            __m256i w = _mm256_and_si256(_mm256_shuffle_epi8(avx2_bcast4(m + 8 * g), shuf), bits);
            w = _mm256_abs_epi8(_mm256_cmpeq_epi8(w, bits));
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(w, avx2_bcast4(xb + t * xs + 4 * g)));
                if (P == 2) sl[t] = _mm256_add_epi16(sl[t], _mm256_maddubs_epi16(w, avx2_bcast4(lb + t * xs + 4 * g)));
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(const void *)(tb + 16 * h)));
        const __m256i one16 = _mm256_set1_epi16(1);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i st = _mm256_madd_epi16(s[t], one16);
            if (P == 2) st = _mm256_add_epi32(_mm256_slli_epi32(st, 7), _mm256_madd_epi16(sl[t], one16));
            const __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(st), _mm256_set1_ps(xa[t * ns + b]),
                                             _mm256_set1_ps(xc[t * ns + b]));
            acc[t] = _mm256_fmadd_ps(d, f, acc[t]);
        }
    }
    if (left >= 8) {
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) _mm256_storeu_ps(y + t * ys, acc[t]);
    } else {
        const __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ys, km, acc[t]);
    }
}

#define AVX2_CASES(P)                                                                                   \
    switch (n - t0 < 4 ? n - t0 : 4) {                                                                  \
    case 1: avx2_half(td, nb, h, x, (size_t)t0, yy, ys, left, 1, P); break;                             \
    case 2: avx2_half(td, nb, h, x, (size_t)t0, yy, ys, left, 2, P); break;                             \
    case 3: avx2_half(td, nb, h, x, (size_t)t0, yy, ys, left, 3, P); break;                             \
    default: avx2_half(td, nb, h, x, (size_t)t0, yy, ys, left, 4, P); break;                            \
    }

static void avx2_gemm(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys) {
    const int nb = w->nb;
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * nb * CK_TB_BYTES;
        for (int h = 0; h < 2; h++) {
            const int left = w->rows - tile * CK_TILE - 8 * h;
            if (left <= 0) break;
            for (int t0 = 0; t0 < n; t0 += 4) {
                float *yy = y + (size_t)tile * CK_TILE + 8 * h + (size_t)t0 * ys;
                if (x->ql) AVX2_CASES(2) else AVX2_CASES(1)
            }
        }
    }
}

/* ---- attention ------------------------------------------------------------------------------- */

/* e^x for x <= 88: x = n ln2 + r, degree-6 polynomial for e^r, 2^n built in the exponent bits;
 * x below -87 gives ~0. */
AVX2_INLINE __m256 avx2_exp(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static void avx2_attn(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                      float scale, float *out, float *sc) {
    if (hd % 32) {
        ck_attn_generic(q, k, v, stride, npos, hd, scale, out, sc);
        return;
    }
    float mx = -INFINITY;
    for (int j = 0; j < npos; j++) {
        const float *kj = k + (size_t)j * stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kj + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(kj + i + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), _mm256_loadu_ps(kj + i + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), _mm256_loadu_ps(kj + i + 24), a3);
        }
        sc[j] = avx2_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 vden = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= npos; j += 8) {
        const __m256 e = avx2_exp(_mm256_sub_ps(_mm256_loadu_ps(sc + j), vm));
        _mm256_storeu_ps(sc + j, e);
        vden = _mm256_add_ps(vden, e);
    }
    float den = avx2_hsum(vden);
    for (; j < npos; j++) {
        sc[j] = expf(sc[j] - mx);
        den += sc[j];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / den);
    for (int i = 0; i < hd; i += 32) {
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (j = 0; j < npos; j++) {
            const float *vj = v + (size_t)j * stride + i;
            const __m256 p = _mm256_set1_ps(sc[j]);
            o0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj), o0);
            o1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 8), o1);
            o2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 16), o2);
            o3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(vj + 24), o3);
        }
        _mm256_storeu_ps(out + i, _mm256_mul_ps(o0, inv));
        _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(o1, inv));
        _mm256_storeu_ps(out + i + 16, _mm256_mul_ps(o2, inv));
        _mm256_storeu_ps(out + i + 24, _mm256_mul_ps(o3, inv));
    }
}

/* ---- elementwise ----------------------------------------------------------------------------- */

static void avx2_swiglu(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        /* silu(x) = x / (1 + e^-x); e^-x is capped at e^88 (finite), where silu is ~0 anyway */
        const __m256 e = avx2_exp(_mm256_min_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), _mm256_set1_ps(88.0f)));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), _mm256_loadu_ps(u + i)));
    }
    ck_swiglu_generic(g + i, u + i, n - i);
}

static void avx2_f16_to_f32(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    ck_f16_to_f32_generic(dst + i, src + i, n - i);
}

static void avx2_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    ck_f32_to_f16_generic(dst + i, src + i, n - i);
}

/* Q2_0 rows (blocks of 64 in 18 bytes: f16 d, 16 bytes of 2-bit codes, four a byte from the low
 * bits up): (q - 1) * d, 8 elements (2 code bytes) a step: the 16-bit pair broadcast, shifted by
 * 0, 2 .. 14 and masked. The product is the reference's one rounding: equal bit for bit. */
static void avx2_dq_q2_0(const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    const __m256i sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), three = _mm256_set1_epi32(3),
                  one = _mm256_set1_epi32(1);
    for (size_t b = 0; b < n / 64; b++, p += 18, dst += 64) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss((uint16_t)(p[0] | p[1] << 8)));
        for (int i = 0; i < 8; i++) {
            const __m256i v = _mm256_set1_epi32(p[2 + 2 * i] | p[3 + 2 * i] << 8);
            const __m256i q = _mm256_sub_epi32(_mm256_and_si256(_mm256_srlv_epi32(v, sh), three), one);
            _mm256_storeu_ps(dst + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
    }
}

/* TQ2_0 rows (blocks of 256 in 66 bytes: qs[64], f16 d; each 32 bytes hold 128 elements, four
 * groups of 32 at shifts 0, 2, 4, 6): (q - 1) * d, 8 code bytes widened a step. */
static void avx2_dq_tq2_0(const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    const __m256i one = _mm256_set1_epi32(1);
    for (size_t b = 0; b < n / 256; b++, p += 66) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss((uint16_t)(p[64] | p[65] << 8)));
        for (int j = 0; j < 64; j += 32) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + j));
            for (int s = 0; s < 8; s += 2, dst += 32) {
                const __m256i c = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(3));
                const __m128i lo = _mm256_castsi256_si128(c), hi = _mm256_extracti128_si256(c, 1);
                const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
                for (int k = 0; k < 4; k++) {
                    const __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(part[k]), one);
                    _mm256_storeu_ps(dst + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
                }
            }
        }
    }
}

#endif

#ifdef AVX2_ON
const ck_isa ck_isa_avx2 = {
    .name = "avx2",
    .compiled = 1,
    .supported = avx2_supported,
    .quant = avx2_quant,
    .gemm = avx2_gemm,
    .attn = avx2_attn,
    .swiglu = avx2_swiglu,
    .f16_to_f32 = avx2_f16_to_f32,
    .f32_to_f16 = avx2_f32_to_f16,
    .dq_q2_0 = avx2_dq_q2_0,
    .dq_tq2_0 = avx2_dq_tq2_0,
};
#else
const ck_isa ck_isa_avx2 = {.name = "avx2", .compiled = 0};
#endif
