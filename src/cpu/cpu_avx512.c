/* cpu_avx512.c — the CPU kernels for x86-64 with AVX-512 BW/VL and VNNI (Zen 4+, Ice Lake+).
 *
 * Q1_0 product, per 16-row tile and per group of 4 columns: the tile's 64-bit sign mask becomes
 * 64 bytes of 0/1 (one masked move), and one vpdpbusd per token and activation plane adds the int8
 * activations of the 4 columns, broadcast to all lanes, where the row's bit is set: lane r = sum
 * over the set bits of row r. Weight bits are expanded once and reused across up to 8 tokens, so
 * a batch costs about one vpdpbusd per 64 weights per token and plane (~85% of the core's vpdpbusd
 * rate on Zen 5); one token (generation) takes two tiles at a time so that its broadcasts serve
 * both. Per 128 columns the integer sums are converted and scaled in float (cpu_kern.h gives the
 * algebra). Where the CPU has VBMI, one token and several (prompts) instead look the sums up in
 * per-token vpermb tables (the same integer sums, fewer instructions; see the sections below). Also here: the activation quantisation, attention (several queries of a KV head per
 * pass over its keys and values), SwiGLU and half <-> float conversion. Built with the flags of
 * the "per-ISA kernel flags" block of the Makefile; without them (other compilers, other CPUs)
 * this file only defines an empty table.
 */
#include "cpu_kern.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)
#define AVX512_ON 1
#include <immintrin.h>
#include <math.h>
#include <string.h>
#define PFI (CK_PREFETCH_BYTES / CK_TB_BYTES) /* prefetch distance in tile-blocks */

#define AVX512_INLINE static inline __attribute__((always_inline))

static int avx512_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("fma");
}

/* ---- activation quantisation ----------------------------------------------------------------- */

/* K: CK_K8 (ql NULL), CK_K16 or CK_K14 (two planes). */
AVX512_INLINE void avx512_quant_k(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c, const float K) {
    for (int b = 0; b < cols / CK_BLK; b++) {
        const float *xb = x + (size_t)b * CK_BLK;
        __m512 v[8], mx = _mm512_setzero_ps();
        for (int i = 0; i < 8; i++) {
            v[i] = _mm512_loadu_ps(xb + 16 * i);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(v[i]));
        }
        const float amax = _mm512_reduce_max_ps(mx);
        if (amax == 0.0f) {
            memset(q + (size_t)b * CK_BLK, 0, CK_BLK);
            if (ql) memset(ql + (size_t)b * CK_BLK, 0, CK_BLK);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float sx = amax / K;
        const __m512 inv = _mm512_set1_ps(K / amax);
        const __m512i kmax = _mm512_set1_epi32((int)K), kmin = _mm512_set1_epi32(-(int)K);
        __m512i sum = _mm512_setzero_si512();
        for (int i = 0; i < 8; i++) {
            /* cvtps2dq rounds to nearest even (default MXCSR); |x * inv| <= K (+ rounding). */
            __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(v[i], inv));
            qi = _mm512_max_epi32(_mm512_min_epi32(qi, kmax), kmin);
            sum = _mm512_add_epi32(sum, qi);
            if (ql) {
                const __m512i h = _mm512_srai_epi32(_mm512_add_epi32(qi, _mm512_set1_epi32(64)), 7);
                _mm_storeu_si128((__m128i *)(q + (size_t)b * CK_BLK + 16 * i), _mm512_cvtepi32_epi8(h));
                _mm_storeu_si128((__m128i *)(ql + (size_t)b * CK_BLK + 16 * i),
                                 _mm512_cvtepi32_epi8(_mm512_sub_epi32(qi, _mm512_slli_epi32(h, 7))));
            } else {
                _mm_storeu_si128((__m128i *)(q + (size_t)b * CK_BLK + 16 * i), _mm512_cvtepi32_epi8(qi));
            }
        }
        a[b] = 2.0f * sx;
        c[b] = -sx * (float)_mm512_reduce_add_epi32(sum);
    }
}

static void avx512_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    if (ql) avx512_quant_k(x, cols, q, ql, a, c, CK_K16);
    else avx512_quant_k(x, cols, q, NULL, a, c, CK_K8);
}

static void avx512_quant14(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    avx512_quant_k(x, cols, q, ql, a, c, CK_K14);
}

/* int8 with one scale per 32 columns (cpu_kern.h): the same steps as ck_quant32_generic, bit for
 * bit (the same amax, the same K / amax, conversions rounding to nearest even, c summed in the
 * same order). */
static void avx512_quant32(const float *x, int cols, int8_t *q, float *a, float *c) {
    const __m512i kmax = _mm512_set1_epi32(127), kmin = _mm512_set1_epi32(-127);
    for (int b = 0; b < cols / CK_BLK; b++) {
        float ck[4];
        for (int k = 0; k < 4; k++) {
            const size_t o = (size_t)b * CK_BLK + 32 * (size_t)k;
            const __m512 v0 = _mm512_loadu_ps(x + o), v1 = _mm512_loadu_ps(x + o + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            if (amax == 0.0f) {
                memset(q + o, 0, 32);
                a[4 * (size_t)b + k] = ck[k] = 0.0f;
                continue;
            }
            const float sx = amax / CK_K8;
            const __m512 inv = _mm512_set1_ps(CK_K8 / amax);
            const __m512i q0 = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v0, inv)), kmax), kmin);
            const __m512i q1 = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v1, inv)), kmax), kmin);
            _mm_storeu_si128((__m128i *)(q + o), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(q + o + 16), _mm512_cvtepi32_epi8(q1));
            a[4 * (size_t)b + k] = 2.0f * sx;
            ck[k] = -sx * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        }
        c[b] = ((ck[0] + ck[1]) + ck[2]) + ck[3];
    }
}

/* ---- Q1_0 product ---------------------------------------------------------------------------- */

AVX512_INLINE __m512i avx512_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* One tile (16 rows) times T tokens (T <= 8, a compile-time constant after inlining), P planes.
 * With few tokens the sums are split over U accumulators so that vpdpbusd latency is not the
 * limit. */
AVX512_INLINE void avx512_tile(const uint8_t *tile, int nb, const ck_act *x, size_t t0, float *y, size_t ys,
                               __mmask16 km, const int T, const int P) {
    const int U = P == 2 ? (T == 1 ? 2 : 1) : (T == 1 ? 4 : T == 2 ? 2 : 1);
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * CK_TB_BYTES;
        const uint64_t *m = (const uint64_t *)(const void *)(tb + 32);
        const int8_t *xb = xq + (size_t)b * CK_BLK, *lb = P == 2 ? xl + (size_t)b * CK_BLK : NULL;
        __m512i s[8][4], sl[8][2];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
#pragma GCC unroll 4
            for (int u = 0; u < U; u++) s[t][u] = _mm512_setzero_si512();
            if (P == 2)
#pragma GCC unroll 2
                for (int u = 0; u < U; u++) sl[t][u] = _mm512_setzero_si512();
        }
#pragma GCC unroll 32
        for (int g = 0; g < CK_TB_MASKS; g++) {
            const __m512i w = _mm512_maskz_mov_epi8(_cvtu64_mask64(m[g]), ones);
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                s[t][g % U] = _mm512_dpbusd_epi32(s[t][g % U], w, avx512_bcast4(xb + t * xs + 4 * g));
                if (P == 2) sl[t][g % U] = _mm512_dpbusd_epi32(sl[t][g % U], w, avx512_bcast4(lb + t * xs + 4 * g));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)tb));
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512i st = s[t][0];
#pragma GCC unroll 4
            for (int u = 1; u < U; u++) st = _mm512_add_epi32(st, s[t][u]);
            if (P == 2) {
                __m512i lt = sl[t][0];
#pragma GCC unroll 2
                for (int u = 1; u < U; u++) lt = _mm512_add_epi32(lt, sl[t][u]);
                st = _mm512_add_epi32(_mm512_slli_epi32(st, 7), lt); /* S = 128 S_h + S_l */
            }
            const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st), _mm512_set1_ps(xa[t * ns + b]),
                                             _mm512_set1_ps(xc[t * ns + b]));
            acc[t] = _mm512_fmadd_ps(d, f, acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ys, km, acc[t]);
}

/* One tile times T tokens (T <= 8) with int8 activations scaled per 32 columns: as avx512_tile
 * with one plane, but each block's 32 groups are summed in four runs of 8 (32 columns), each run's
 * integer sum converted and scaled by its own a_k into a float per row before the next. */
AVX512_INLINE void avx512_tile32(const uint8_t *tile, int nb, const ck_act *x, size_t t0, float *y, size_t ys,
                                 __mmask16 km, const int T) {
    const int U = T == 1 ? 4 : T == 2 ? 2 : 1;
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs;
    const float *xa = x->a + t0 * ns * 4, *xc = x->c + t0 * ns;
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * CK_TB_BYTES;
        const uint64_t *m = (const uint64_t *)(const void *)(tb + 32);
        const int8_t *xb = xq + (size_t)b * CK_BLK;
        __m512 f[8];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) f[t] = _mm512_set1_ps(xc[t * ns + b]);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m512i s[8][4];
#pragma GCC unroll 8
            for (int t = 0; t < T; t++)
#pragma GCC unroll 4
                for (int u = 0; u < U; u++) s[t][u] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int g = 8 * k; g < 8 * k + 8; g++) {
                const __m512i w = _mm512_maskz_mov_epi8(_cvtu64_mask64(m[g]), ones);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++)
                    s[t][g % U] = _mm512_dpbusd_epi32(s[t][g % U], w, avx512_bcast4(xb + t * xs + 4 * g));
            }
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m512i st = s[t][0];
#pragma GCC unroll 4
                for (int u = 1; u < U; u++) st = _mm512_add_epi32(st, s[t][u]);
                f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st), _mm512_set1_ps(xa[(t * ns + b) * 4 + k]), f[t]);
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)tb));
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t] = _mm512_fmadd_ps(d, f[t], acc[t]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ys, km, acc[t]);
}

#define AVX512_CASES32                                                                                  \
    switch (n - t0 < 8 ? n - t0 : 8) {                                                                  \
    case 1: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 1); break;                                 \
    case 2: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 2); break;                                 \
    case 3: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 3); break;                                 \
    case 4: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 4); break;                                 \
    case 5: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 5); break;                                 \
    case 6: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 6); break;                                 \
    case 7: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 7); break;                                 \
    default: avx512_tile32(td, nb, x, (size_t)t0, yy, ys, km, 8); break;                                \
    }

#define AVX512_CASES(P)                                                                                 \
    switch (n - t0 < 8 ? n - t0 : 8) {                                                                  \
    case 1: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 1, P); break;                                \
    case 2: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 2, P); break;                                \
    case 3: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 3, P); break;                                \
    case 4: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 4, P); break;                                \
    case 5: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 5, P); break;                                \
    case 6: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 6, P); break;                                \
    case 7: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 7, P); break;                                \
    default: avx512_tile(td, nb, x, (size_t)t0, yy, ys, km, 8, P); break;                               \
    }

/* One token, two tiles at once: the token's broadcast activations serve both tiles, which
 * matters when one token is all there is (generation) and the loop is short of instructions to
 * keep memory streaming. */
AVX512_INLINE void avx512_tile2_t1(const uint8_t *ta, const uint8_t *tb, int nb, const ck_act *x, size_t t0, float *ya,
                                   float *yb, __mmask16 kb, const int P) {
    const int8_t *xq = x->q + t0 * (size_t)x->cols, *xl = P == 2 ? x->ql + t0 * (size_t)x->cols : NULL;
    const float *xa = x->a + t0 * (size_t)x->nb, *xc = x->c + t0 * (size_t)x->nb;
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        { /* both weight streams (cpu_kern.h): the block each reads PFI iterations on, in the next
           * pair of tiles once past the end of these (tiles are adjacent: the next pair starts 2 nb
           * tile-blocks after ta, and after tb) */
            const int bp = b + PFI;
            const size_t off = (size_t)(bp < nb ? bp : nb + bp) * CK_TB_BYTES;
            for (int o = 0; o < CK_TB_BYTES; o += 64) {
                _mm_prefetch((const char *)ta + off + o, CK_PREFETCH_HINT);
                _mm_prefetch((const char *)tb + off + o, CK_PREFETCH_HINT);
            }
        }
        const uint64_t *m0 = (const uint64_t *)(const void *)(ta + (size_t)b * CK_TB_BYTES + 32);
        const uint64_t *m1 = (const uint64_t *)(const void *)(tb + (size_t)b * CK_TB_BYTES + 32);
        const int8_t *xb = xq + (size_t)b * CK_BLK, *lb = P == 2 ? xl + (size_t)b * CK_BLK : NULL;
        __m512i h0[2], h1[2], l0[2], l1[2];
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) h0[u] = h1[u] = l0[u] = l1[u] = _mm512_setzero_si512();
#pragma GCC unroll 32
        for (int g = 0; g < CK_TB_MASKS; g++) {
            const __m512i w0 = _mm512_maskz_mov_epi8(_cvtu64_mask64(m0[g]), ones);
            const __m512i w1 = _mm512_maskz_mov_epi8(_cvtu64_mask64(m1[g]), ones);
            const __m512i xh = avx512_bcast4(xb + 4 * g);
            h0[g % 2] = _mm512_dpbusd_epi32(h0[g % 2], w0, xh);
            h1[g % 2] = _mm512_dpbusd_epi32(h1[g % 2], w1, xh);
            if (P == 2) {
                const __m512i xlo = avx512_bcast4(lb + 4 * g);
                l0[g % 2] = _mm512_dpbusd_epi32(l0[g % 2], w0, xlo);
                l1[g % 2] = _mm512_dpbusd_epi32(l1[g % 2], w1, xlo);
            }
        }
        __m512i s0 = _mm512_add_epi32(h0[0], h0[1]), s1 = _mm512_add_epi32(h1[0], h1[1]);
        if (P == 2) {
            s0 = _mm512_add_epi32(_mm512_slli_epi32(s0, 7), _mm512_add_epi32(l0[0], l0[1]));
            s1 = _mm512_add_epi32(_mm512_slli_epi32(s1, 7), _mm512_add_epi32(l1[0], l1[1]));
        }
        const __m512 va = _mm512_set1_ps(xa[b]), vc = _mm512_set1_ps(xc[b]);
        const __m512 d0 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(ta + (size_t)b * CK_TB_BYTES)));
        const __m512 d1 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(tb + (size_t)b * CK_TB_BYTES)));
        acc0 = _mm512_fmadd_ps(d0, _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), va, vc), acc0);
        acc1 = _mm512_fmadd_ps(d1, _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), va, vc), acc1);
    }
    _mm512_storeu_ps(ya, acc0);
    _mm512_mask_storeu_ps(yb, kb, acc1);
}

/* ---- one token through vpermb tables (AVX-512 VBMI) ------------------------------------------ */

static int avx512_vbmi(void) {
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512vbmi") ? 1 : 0;
    }
    return ok;
}

/* The tables of cpu_kern.h (CK_VT_PER_COL, or CK_VT2_PER_COL with planes = 2): per group j of a
 * 16-column chunk, the 16 subset sums as int32 lanes k, each one vpdpbusd of the constant bit
 * pattern of k (bytes 0/1) with the group's 4 high bytes, another with its 4 low ones, v = 128 H +
 * L; then the three (two) low bytes of v. */
static int avx512_vtab(const int8_t *q, const int8_t *ql, int cols, int planes, uint8_t *tab) {
    if (!avx512_vbmi()) return 0;
    uint32_t pat[16];
    for (int k = 0; k < 16; k++)
        pat[k] = (uint32_t)(k & 1) | (uint32_t)(k >> 1 & 1) << 8 | (uint32_t)(k >> 2 & 1) << 16 | (uint32_t)(k >> 3 & 1) << 24;
    const __m512i bits = _mm512_loadu_si512(pat), z = _mm512_setzero_si512();
    const int P = planes == 2 ? 2 : 3;
    for (int i = 0; i < cols / 16; i++) {
        uint8_t *t = tab + (size_t)i * 64 * P;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const size_t o = 16 * (size_t)i + 4 * (size_t)j;
            const __m512i H = _mm512_dpbusd_epi32(z, bits, avx512_bcast4(q + o));
            const __m512i L = _mm512_dpbusd_epi32(z, bits, avx512_bcast4(ql + o));
            const __m512i v = _mm512_add_epi32(_mm512_slli_epi32(H, 7), L);
            _mm_storeu_si128((__m128i *)(void *)(t + 16 * j), _mm512_cvtepi32_epi8(v));
            _mm_storeu_si128((__m128i *)(void *)(t + 64 + 16 * j), _mm512_cvtepi32_epi8(_mm512_srai_epi32(v, 8)));
            if (P == 3) _mm_storeu_si128((__m128i *)(void *)(t + 128 + 16 * j), _mm512_cvtepi32_epi8(_mm512_srai_epi32(v, 16)));
        }
    }
    return 1;
}

/* Routes of the vpermb-table kernels (one token and prompts): mask bytes to qwords, nibbles to bytes, and j into bits 4-5. */
static const uint8_t avx512_vt_routes[3][64] = {
#define R8(q) 0 + q, 8 + q, 16 + q, 24 + q, 0 + q, 8 + q, 16 + q, 24 + q
    {R8(0), R8(1), R8(2), R8(3), R8(4), R8(5), R8(6), R8(7)},
#undef R8
#define C8 0, 8, 16, 24, 4, 12, 20, 28
    {C8, C8, C8, C8, C8, C8, C8, C8},
#undef C8
#define J8 0, 16, 32, 48, 0, 16, 32, 48
    {J8, J8, J8, J8, J8, J8, J8, J8},
#undef J8
};

/* One token, tiles [tile0, tile1). Per 4 groups of a tile-block: the 32 mask bytes are routed (vpermb) so that
 * qword q holds byte q of each of the 4 masks (rows 2q and 2q+1), vpmultishiftqb moves row r's
 * nibble of group j to byte 4 r + j, a ternary-logic op keeps the nibble and sets bits 4-5 to j
 * (the 16-entry part of the tables for group j), one vpermb per table looks up the 64 (row, group)
 * sums, and one vpdpbusd per table adds each row's 4 into its int32 lane: with P = 3 tables
 * (int16) 9 vector ops per 256 weights where the two-plane kernel takes 8 vpdpbusd and 4 mask
 * expansions; with P = 2 (int14, CK_VT2_PER_COL) 7. The top table is signed, the others unsigned. */
__attribute__((target("avx512vbmi"), always_inline)) static inline void avx512_gemv_vt_p(const ck_q1 *w, int tile0, int tile1,
                                                                                         const ck_act *x, float *y, const int P) {
    const int nb = w->nb;
    const __m512i route = _mm512_loadu_si512(avx512_vt_routes[0]), ctrl = _mm512_loadu_si512(avx512_vt_routes[1]),
                  jbits = _mm512_loadu_si512(avx512_vt_routes[2]), nib = _mm512_set1_epi8(15), ones = _mm512_set1_epi8(1);
    const size_t tstride = (size_t)64 * P, bstride = (size_t)CK_BLK / 16 * tstride; /* table bytes per 16 columns, per block */
    /* Two tiles a pass (two weight streams, both prefetched, sharing the table loads): in one
     * interleaved kernel run from memory 96 against 64-68 G weights/s for one tile a pass (32768 x
     * 8192, shared machine; the same in cache), and 2-5 % more tokens/s in the model (interleaved
     * onebit bench, heavily loaded machine); the odd tile left over goes through the loop below. */
    for (; tile0 + 1 < tile1; tile0 += 2) {
        const uint8_t *ta = w->data + (size_t)tile0 * nb * CK_TB_BYTES, *tc = ta + (size_t)nb * CK_TB_BYTES;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
        for (int b = 0; b < nb; b++) {
            const uint8_t *t0 = ta + (size_t)b * CK_TB_BYTES, *t1 = tc + (size_t)b * CK_TB_BYTES, *tab = x->vt + (size_t)b * bstride;
            { /* as avx512_tile2_t1 */
                const int bp = b + PFI;
                const size_t off = (size_t)(bp < nb ? bp : nb + bp) * CK_TB_BYTES;
                for (int o = 0; o < CK_TB_BYTES; o += 64) {
                    _mm_prefetch((const char *)ta + off + o, CK_PREFETCH_HINT);
                    _mm_prefetch((const char *)tc + off + o, CK_PREFETCH_HINT);
                }
            }
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, r0 = s0, r1 = s0, r2 = s0;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const __m512i m = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(t0 + 32 + 32 * i)));
                const __m512i m1 = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(t1 + 32 + 32 * i)));
                __m512i idx = _mm512_multishift_epi64_epi8(ctrl, _mm512_permutexvar_epi8(route, m));
                idx = _mm512_ternarylogic_epi32(idx, nib, jbits, 0xEA);
                __m512i id1 = _mm512_multishift_epi64_epi8(ctrl, _mm512_permutexvar_epi8(route, m1));
                id1 = _mm512_ternarylogic_epi32(id1, nib, jbits, 0xEA);
                const uint8_t *t = tab + tstride * i;
                const __m512i T0 = _mm512_loadu_si512(t), T1 = _mm512_loadu_si512(t + 64);
                s0 = _mm512_dpbusd_epi32(s0, _mm512_permutexvar_epi8(idx, T0), ones);
                r0 = _mm512_dpbusd_epi32(r0, _mm512_permutexvar_epi8(id1, T0), ones);
                if (P == 3) {
                    const __m512i T2 = _mm512_loadu_si512(t + 128);
                    s1 = _mm512_dpbusd_epi32(s1, _mm512_permutexvar_epi8(idx, T1), ones);
                    s2 = _mm512_dpbusd_epi32(s2, ones, _mm512_permutexvar_epi8(idx, T2));
                    r1 = _mm512_dpbusd_epi32(r1, _mm512_permutexvar_epi8(id1, T1), ones);
                    r2 = _mm512_dpbusd_epi32(r2, ones, _mm512_permutexvar_epi8(id1, T2));
                } else {
                    s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_permutexvar_epi8(idx, T1));
                    r1 = _mm512_dpbusd_epi32(r1, ones, _mm512_permutexvar_epi8(id1, T1));
                }
            }
            __m512i sa = _mm512_add_epi32(s0, _mm512_slli_epi32(s1, 8)), sb = _mm512_add_epi32(r0, _mm512_slli_epi32(r1, 8));
            if (P == 3) sa = _mm512_add_epi32(sa, _mm512_slli_epi32(s2, 16)), sb = _mm512_add_epi32(sb, _mm512_slli_epi32(r2, 16));
            const __m512 va = _mm512_set1_ps(x->a[b]), vc = _mm512_set1_ps(x->c[b]);
            acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)t0)), _mm512_fmadd_ps(_mm512_cvtepi32_ps(sa), va, vc), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)t1)), _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb), va, vc), acc1);
        }
        const int left = w->rows - (tile0 + 1) * CK_TILE;
        _mm512_storeu_ps(y + (size_t)tile0 * CK_TILE, acc0);
        _mm512_mask_storeu_ps(y + (size_t)(tile0 + 1) * CK_TILE, left >= CK_TILE ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1), acc1);
    }
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * nb * CK_TB_BYTES;
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const uint8_t *tb = td + (size_t)b * CK_TB_BYTES, *tab = x->vt + (size_t)b * bstride;
            for (int o = 0; o < CK_TB_BYTES; o += 64) _mm_prefetch((const char *)tb + CK_PREFETCH_BYTES + o, CK_PREFETCH_HINT);
            __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const __m512i m = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(tb + 32 + 32 * i)));
                __m512i idx = _mm512_multishift_epi64_epi8(ctrl, _mm512_permutexvar_epi8(route, m));
                idx = _mm512_ternarylogic_epi32(idx, nib, jbits, 0xEA); /* (idx & 15) | 16 j */
                const uint8_t *t = tab + tstride * i;
                s0 = _mm512_dpbusd_epi32(s0, _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(t)), ones);
                if (P == 3) {
                    s1 = _mm512_dpbusd_epi32(s1, _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(t + 64)), ones);
                    s2 = _mm512_dpbusd_epi32(s2, ones, _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(t + 128)));
                } else {
                    s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(t + 64)));
                }
            }
            __m512i s = _mm512_add_epi32(s0, _mm512_slli_epi32(s1, 8));
            if (P == 3) s = _mm512_add_epi32(s, _mm512_slli_epi32(s2, 16));
            const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)tb));
            acc = _mm512_fmadd_ps(d, _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(x->a[b]), _mm512_set1_ps(x->c[b])), acc);
        }
        const int left = w->rows - tile * CK_TILE;
        _mm512_mask_storeu_ps(y + (size_t)tile * CK_TILE, left >= CK_TILE ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1), acc);
    }
}

__attribute__((target("avx512vbmi"))) static void avx512_gemv_vt(const ck_q1 *w, int tile0, int tile1, const ck_act *x,
                                                                  float *y) {
    if (x->vt_planes == 2) avx512_gemv_vt_p(w, tile0, tile1, x, y, 2);
    else avx512_gemv_vt_p(w, tile0, tile1, x, y, 3);
}

/* ---- prompts through vpermb tables (AVX-512 VBMI) -------------------------------------------- */

/* Several tokens (ck_act.vtm: every token's tables, P byte planes): the indexes of a tile-block
 * depend only on the weights, so they are computed once (as in avx512_gemv_vt: vpermb +
 * vpmultishiftqb + vpternlogd per 4 groups) and serve every token, each of which then costs P
 * vpermb (its tables as the memory operand) and P vpdpbusd per 256 weights: 6 ops for int16 (three
 * planes) where the two-plane kernel (avx512_tile) takes 8 vpdpbusd, 4 for sums that fit an int16
 * (two planes). The integer sums are the same, and so are the float steps per block and their
 * order (acc = fma(d, fma(S, a, c), acc) from acc = 0, blocks in order): the outputs equal
 * avx512_tile's bit for bit. The accumulators live in y (a float stored and loaded back is the
 * same float), so that a block's tables can be used by several tiles before the next block's.
 * Order: per VTM_TILES tiles and per block, the tiles' indexes (VTM_TILES x 8 vectors, 8 KiB);
 * then per VTM_TOKENS tokens (their tables of the block: 1.5 KiB each with three planes, which
 * stay in L1 while every tile of the group reads them; ck_vtm_stride pads the tokens apart so that
 * they do not share L1 sets) and per tile, groups of VTM_T tokens with the tile's 8 index vectors
 * in registers (3 x 4 int32 accumulators: 21 of the 32 zmm registers). Measured on Zen 4,
 * bench/q1-kernels.c 2048 x 2048, 64 tokens, one thread (shared machine): 8 tiles a group 157-165,
 * 16 tiles 168-173, 32 tiles 175-179 G weights x tokens/s (the backend's claims are >= 8 tiles,
 * CPUK_VTM_TILES, which did as well in the model and spread less on a shared machine); 16 tokens a group 120 unpadded, 157 padded; groups of 2 or 3 tokens the same as
 * 4; two tiles a pass sharing each table load (VTM_NT 2) the same with 2 tokens and slower with 3
 * or 4 (spills); software prefetch of the next tables made no difference. The constants may be
 * overridden (-D) to measure again. */
#ifndef VTM_TILES
#define VTM_TILES 16
#endif
#ifndef VTM_TOKENS
#define VTM_TOKENS 8
#endif
#ifndef VTM_NT
#define VTM_NT 1
#endif
#ifndef VTM_T
#define VTM_T 4
#endif
#define VTM_INLINE static inline __attribute__((always_inline, target("avx512vbmi")))


/* T tokens (t .. t + T - 1) times NT tiles (1 or 2: each table loaded once serves both) of one
 * block, the tiles' indexes id[NT][8]: the block's integer sums, then per tile y[t'][16 rows] =
 * fma(d, fma(S, a, c), y, or 0 on the first block); the last tile's rows masked by km. */
VTM_INLINE void avx512_vtm_tok(const __m512i *id, const ck_act *x, size_t t, int b, const __m512 *d, float *yt, size_t ys,
                               __mmask16 km, int first, const int T, const int P, const int NT) {
    const __m512i ones = _mm512_set1_epi8(1);
    const size_t ts = x->vtm_stride, ns = (size_t)x->nb;
    const uint8_t *tab = x->vtm + t * ts + (size_t)b * 8 * 64 * P;
    __m512i s[2][6][3];
#pragma GCC unroll 2
    for (int u = 0; u < NT; u++)
#pragma GCC unroll 6
        for (int k = 0; k < T; k++)
#pragma GCC unroll 3
            for (int p = 0; p < P; p++) s[u][k][p] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        __m512i ix[2];
#pragma GCC unroll 2
        for (int u = 0; u < NT; u++) ix[u] = id[8 * u + i];
#pragma GCC unroll 6
        for (int k = 0; k < T; k++)
#pragma GCC unroll 3
            for (int p = 0; p < P; p++) {
                const __m512i tb = _mm512_loadu_si512(tab + k * ts + 64 * (P * i + p));
#pragma GCC unroll 2
                for (int u = 0; u < NT; u++) {
                    const __m512i L = _mm512_permutexvar_epi8(ix[u], tb);
                    /* the top plane is signed, the others unsigned */
                    s[u][k][p] = p == P - 1 ? _mm512_dpbusd_epi32(s[u][k][p], ones, L) : _mm512_dpbusd_epi32(s[u][k][p], L, ones);
                }
            }
    }
#pragma GCC unroll 2
    for (int u = 0; u < NT; u++)
#pragma GCC unroll 6
        for (int k = 0; k < T; k++) {
            __m512i si = _mm512_add_epi32(s[u][k][0], _mm512_slli_epi32(s[u][k][1], 8));
            if (P == 3) si = _mm512_add_epi32(si, _mm512_slli_epi32(s[u][k][2], 16));
            const size_t o = (t + k) * ns + b;
            const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_set1_ps(x->a[o]), _mm512_set1_ps(x->c[o]));
            float *yp = yt + k * ys + CK_TILE * u;
            const __mmask16 m = u == NT - 1 ? km : (__mmask16)0xFFFF;
            const __m512 prev = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, yp);
            _mm512_mask_storeu_ps(yp, m, _mm512_fmadd_ps(d[u], f, prev));
        }
}

/* Tokens [t0, t1) of NT tiles, in groups of VTM_T tokens and the rest. */
VTM_INLINE void avx512_vtm_pass(const __m512i *id, const ck_act *x, int t0, int t1, int b, const __m512 *d, float *yt,
                                size_t ys, __mmask16 km, const int P, const int NT) {
    int t = t0;
    for (; t + VTM_T <= t1; t += VTM_T) avx512_vtm_tok(id, x, (size_t)t, b, d, yt + (size_t)t * ys, ys, km, b == 0, VTM_T, P, NT);
    switch (t1 - t) {
    case 5: avx512_vtm_tok(id, x, (size_t)t, b, d, yt + (size_t)t * ys, ys, km, b == 0, 5, P, NT); break;
    case 4: avx512_vtm_tok(id, x, (size_t)t, b, d, yt + (size_t)t * ys, ys, km, b == 0, 4, P, NT); break;
    case 3: avx512_vtm_tok(id, x, (size_t)t, b, d, yt + (size_t)t * ys, ys, km, b == 0, 3, P, NT); break;
    case 2: avx512_vtm_tok(id, x, (size_t)t, b, d, yt + (size_t)t * ys, ys, km, b == 0, 2, P, NT); break;
    case 1: avx512_vtm_tok(id, x, (size_t)t, b, d, yt + (size_t)t * ys, ys, km, b == 0, 1, P, NT); break;
    default: break;
    }
}

VTM_INLINE void avx512_gemm_vtm_p(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys,
                                  const int P) {
    const int nb = w->nb;
    const __m512i route = _mm512_loadu_si512(avx512_vt_routes[0]), ctrl = _mm512_loadu_si512(avx512_vt_routes[1]),
                  jbits = _mm512_loadu_si512(avx512_vt_routes[2]), nib = _mm512_set1_epi8(15);
    __m512i ib[VTM_TILES][8];
    __m512 dv[VTM_TILES];
    for (int tg = tile0; tg < tile1; tg += VTM_TILES) {
        const int ntl = tile1 - tg < VTM_TILES ? tile1 - tg : VTM_TILES;
        for (int b = 0; b < nb; b++) {
            for (int k = 0; k < ntl; k++) {
                const uint8_t *tb = w->data + ((size_t)(tg + k) * nb + b) * CK_TB_BYTES;
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    const __m512i m = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(tb + 32 + 32 * i)));
                    const __m512i idx = _mm512_multishift_epi64_epi8(ctrl, _mm512_permutexvar_epi8(route, m));
                    ib[k][i] = _mm512_ternarylogic_epi32(idx, nib, jbits, 0xEA); /* (idx & 15) | 16 j */
                }
                dv[k] = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)tb));
            }
            for (int t0 = 0; t0 < n; t0 += VTM_TOKENS) {
                const int t1 = n - t0 < VTM_TOKENS ? n : t0 + VTM_TOKENS;
                for (int k = 0; k < ntl; k += VTM_NT) {
                    const int nt = ntl - k < VTM_NT ? ntl - k : VTM_NT; /* tiles this pass */
                    const int tile = tg + k, left = w->rows - (tile + nt - 1) * CK_TILE;
                    const __mmask16 km = left >= CK_TILE ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                    { /* the next tokens' tables (of this block, else the first ones of the next), a
                       * share per pass; in the first tokens' passes the tiles' next tile-blocks */
                        const int nt0 = t1 < n ? t1 : 0, nbk = t1 < n ? b : b + 1;
                        const int ntok = n - nt0 < VTM_TOKENS ? n - nt0 : VTM_TOKENS;
                        for (int j = k / VTM_NT; nbk < nb && j < ntok; j += (ntl + VTM_NT - 1) / VTM_NT) {
                            const char *p = (const char *)x->vtm + (size_t)(nt0 + j) * x->vtm_stride + (size_t)nbk * 512 * P;
                            for (int o = 0; o < 512 * P; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
                        }
                        for (int u = 0; t0 == 0 && b + 1 < nb && u < nt; u++)
                            for (int o = 0; o < CK_TB_BYTES; o += 64)
                                _mm_prefetch((const char *)w->data + ((size_t)(tile + u) * nb + b + 1) * CK_TB_BYTES + o, _MM_HINT_T0);
                    }
                    float *yt = y + (size_t)tile * CK_TILE;
                    if (nt == 2) avx512_vtm_pass(ib[k], x, t0, t1, b, dv + k, yt, ys, km, P, 2);
                    else avx512_vtm_pass(ib[k], x, t0, t1, b, dv + k, yt, ys, km, P, 1);
                }
            }
        }
    }
}

/* The plane count as a constant: 3 (int16) or 2. */
__attribute__((target("avx512vbmi"))) static void avx512_gemm_vtm(const ck_q1 *w, int tile0, int tile1, const ck_act *x,
                                                                   int n, float *y, size_t ys) {
    if (x->vtm_planes == 2) avx512_gemm_vtm_p(w, tile0, tile1, x, n, y, ys, 2);
    else avx512_gemm_vtm_p(w, tile0, tile1, x, n, y, ys, 3);
}

static void avx512_gemm(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys) {
    const int nb = w->nb;
    if (x->vtm && !x->s32 && avx512_vbmi()) {
        avx512_gemm_vtm(w, tile0, tile1, x, n, y, ys);
        return;
    }
    if (n == 1 && x->vt && !x->s32) {
        avx512_gemv_vt(w, tile0, tile1, x, y);
        return;
    }
    if (x->s32) { /* int8 per 32: one tile at a time, one token included (one weight stream) */
        for (int tile = tile0; tile < tile1; tile++) {
            const uint8_t *td = w->data + (size_t)tile * nb * CK_TB_BYTES;
            const int left = w->rows - tile * CK_TILE;
            const __mmask16 km = left >= CK_TILE ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            for (int t0 = 0; t0 < n; t0 += 8) {
                float *yy = y + (size_t)tile * CK_TILE + (size_t)t0 * ys;
                AVX512_CASES32
            }
        }
        return;
    }
    if (n == 1) /* pairs of tiles; an odd one left over goes through the general path */
        for (; tile0 + 1 < tile1; tile0 += 2) {
            const uint8_t *td = w->data + (size_t)tile0 * nb * CK_TB_BYTES;
            const int left = w->rows - (tile0 + 1) * CK_TILE;
            const __mmask16 kb = left >= CK_TILE ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            float *ya = y + (size_t)tile0 * CK_TILE;
            if (x->ql) avx512_tile2_t1(td, td + (size_t)nb * CK_TB_BYTES, nb, x, 0, ya, ya + CK_TILE, kb, 2);
            else avx512_tile2_t1(td, td + (size_t)nb * CK_TB_BYTES, nb, x, 0, ya, ya + CK_TILE, kb, 1);
        }
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * nb * CK_TB_BYTES;
        const int left = w->rows - tile * CK_TILE;
        const __mmask16 km = left >= CK_TILE ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        for (int t0 = 0; t0 < n; t0 += 8) {
            float *yy = y + (size_t)tile * CK_TILE + (size_t)t0 * ys;
            if (x->ql) AVX512_CASES(2) else AVX512_CASES(1)
        }
    }
}

/* ---- attention ------------------------------------------------------------------------------- */

/* e^x for x <= 88: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial for e^r, 2^n applied with
 * vscalefps; relative error ~2e-7; x below -87 gives ~0. */
AVX512_INLINE __m512 avx512_exp(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Lane j of the result = sum of the lanes of v[j], for 16 vectors. */
AVX512_INLINE __m512 avx512_hsum16(const __m512 *v) {
    __m512 w[8], x[4], y[2];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        w[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        const __m512d p = _mm512_castps_pd(w[2 * k]), q = _mm512_castps_pd(w[2 * k + 1]);
        x[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(p, q)), _mm512_castpd_ps(_mm512_unpackhi_pd(p, q)));
    }
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++)
        y[k] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x88), _mm512_shuffle_f32x4(y[0], y[1], 0xDD));
}

/* head_dim 128 (Qwen3): q and the output stay in registers. */
static void avx512_attn128(const float *q, const float *k, const float *v, size_t stride, int npos,
                           float scale, float *out, float *sc) {
    __m512 qv[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 16 <= npos; j += 16) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int jj = 0; jj < 16; jj++) {
            const float *kj = k + (size_t)(j + jj) * stride;
            __m512 a0 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kj));
            __m512 a1 = _mm512_mul_ps(qv[1], _mm512_loadu_ps(kj + 16));
            a0 = _mm512_fmadd_ps(qv[2], _mm512_loadu_ps(kj + 32), a0);
            a1 = _mm512_fmadd_ps(qv[3], _mm512_loadu_ps(kj + 48), a1);
            a0 = _mm512_fmadd_ps(qv[4], _mm512_loadu_ps(kj + 64), a0);
            a1 = _mm512_fmadd_ps(qv[5], _mm512_loadu_ps(kj + 80), a1);
            a0 = _mm512_fmadd_ps(qv[6], _mm512_loadu_ps(kj + 96), a0);
            a1 = _mm512_fmadd_ps(qv[7], _mm512_loadu_ps(kj + 112), a1);
            acc[jj] = _mm512_add_ps(a0, a1);
        }
        const __m512 s = _mm512_mul_ps(avx512_hsum16(acc), _mm512_set1_ps(scale));
        _mm512_storeu_ps(sc + j, s);
        vmax = _mm512_max_ps(vmax, s);
    }
    float mx = _mm512_reduce_max_ps(vmax);
    for (; j < npos; j++) {
        const float *kj = k + (size_t)j * stride;
        __m512 a = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kj));
#pragma GCC unroll 8
        for (int i = 1; i < 8; i++) a = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(kj + 16 * i), a);
        sc[j] = _mm512_reduce_add_ps(a) * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    /* Probabilities, unnormalised. */
    const __m512 vm = _mm512_set1_ps(mx);
    __m512 vden = _mm512_setzero_ps();
    for (j = 0; j + 16 <= npos; j += 16) {
        const __m512 e = avx512_exp(_mm512_sub_ps(_mm512_loadu_ps(sc + j), vm));
        _mm512_storeu_ps(sc + j, e);
        vden = _mm512_add_ps(vden, e);
    }
    if (j < npos) {
        const __mmask16 km = (__mmask16)((1u << (npos - j)) - 1);
        const __m512 e = avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(km, sc + j), vm));
        _mm512_mask_storeu_ps(sc + j, km, e);
        vden = _mm512_add_ps(vden, _mm512_maskz_mov_ps(km, e));
    }
    const float inv = 1.0f / _mm512_reduce_add_ps(vden);
    __m512 o[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) o[i] = _mm512_setzero_ps();
    for (j = 0; j < npos; j++) {
        const float *vj = v + (size_t)j * stride;
        const __m512 p = _mm512_set1_ps(sc[j]);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) o[i] = _mm512_fmadd_ps(p, _mm512_loadu_ps(vj + 16 * i), o[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) _mm512_storeu_ps(out + 16 * i, _mm512_mul_ps(o[i], _mm512_set1_ps(inv)));
}

/* One cache row of 16 nd floats or IEEE halves (f16) at element offset off, as floats at dst. */
AVX512_INLINE void avx512_row(float *dst, const void *src, size_t off, const int f16, const int nd) {
#pragma GCC unroll 8
    for (int d = 0; d < nd; d++)
        _mm512_store_ps(dst + 16 * d,
                        f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)((const uint16_t *)src + off + 16 * d)))
                            : _mm512_loadu_ps((const float *)src + off + 16 * d));
}

/* Prefetches rows [r0, r1) of the n keys followed by the n values (16 nd elements each, IEEE halves
 * or floats) into L2: the rows of one KV head lie kv_dim elements apart, a stride the hardware
 * prefetchers do not follow, and the row copies below waited on memory (~57 % of the samples of
 * attention at 512 positions on average). The passes fetch ATT_PF rows ahead of the block they
 * read, the key pass running on into the first values. Bonsai-shaped tg1024 on Zen 4 (interleaved
 * onebit bench, with the cache on huge pages, forward.c): 76-81 tok/s without, 83-89 with 128
 * rows; into L1 (T0) or 16-64 rows ahead no better than without. */
#ifndef ATT_PF
#define ATT_PF 128
#endif
AVX512_INLINE void avx512_rows_pf(const void *kp, const void *vp, size_t stride, int n, int r0, int r1, const int f16,
                                  const int nd) {
    const size_t esz = f16 ? 2 : 4, bytes = (size_t)16 * nd * esz;
    for (int r = r0 < 0 ? 0 : r0; r < r1 && r < 2 * n; r++) {
        const char *row = (const char *)(r < n ? kp : vp) + (size_t)(r < n ? r : r - n) * stride * esz;
        for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(row + o, _MM_HINT_T1);
    }
}

/* Several queries of one KV head (head_dim 16 nd: 64 or 128). Keys and values are taken 16 rows (8 KB) at a
 * time and used by every query before moving on, so they are read from memory once and from L1
 * by the other queries. The 16 rows are first copied next to each other: in the cache they lie
 * kv_dim floats apart (4 KB for Qwen3-1.7B), which maps them all onto the same L1 sets and evicts
 * them before the next query. Pass 1 writes the scaled scores, pass 2 turns them into
 * unnormalised probabilities, pass 3 accumulates the values. */
AVX512_INLINE void avx512_attn_multi_nd(const float *const *q, float *const *out, const int *npos, int nq, const void *kp,
                                        const void *vp, size_t stride, float scale, float *sc, const int f16, const int nd) {
    const int hd = 16 * nd;
    int maxn = 0;
    for (int i = 0; i < nq; i++) maxn = npos[i] > maxn ? npos[i] : maxn;
    const __m512 vscale = _mm512_set1_ps(scale);
    __attribute__((aligned(64))) float blk[16 * 128]; /* 16 key or value rows, contiguous */
    int jb = 0;
    avx512_rows_pf(kp, vp, stride, maxn, 0, ATT_PF, f16, nd);
    for (; jb + 16 <= maxn; jb += 16) {
        avx512_rows_pf(kp, vp, stride, maxn, jb + ATT_PF, jb + ATT_PF + 16, f16, nd);
        for (int jj = 0; jj < 16; jj++) avx512_row(blk + hd * jj, kp, (size_t)(jb + jj) * stride, f16, nd);
        for (int i = 0; i < nq; i++) {
            if (jb >= npos[i]) continue; /* keys past the query's position: masked below */
            __m512 qv[8], acc[16];
#pragma GCC unroll 8
            for (int d = 0; d < nd; d++) qv[d] = _mm512_loadu_ps(q[i] + 16 * d);
#pragma GCC unroll 16
            for (int jj = 0; jj < 16; jj++) {
                const float *kj = blk + hd * jj;
                __m512 a0 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kj));
                __m512 a1 = _mm512_mul_ps(qv[1], _mm512_loadu_ps(kj + 16));
#pragma GCC unroll 4
                for (int d = 2; d < nd; d += 2) {
                    a0 = _mm512_fmadd_ps(qv[d], _mm512_loadu_ps(kj + 16 * d), a0);
                    a1 = _mm512_fmadd_ps(qv[d + 1], _mm512_loadu_ps(kj + 16 * d + 16), a1);
                }
                acc[jj] = _mm512_add_ps(a0, a1);
            }
            _mm512_storeu_ps(sc + (size_t)i * maxn + jb, _mm512_mul_ps(avx512_hsum16(acc), vscale));
        }
    }
    for (; jb < maxn; jb++) { /* the last < 16 keys */
        avx512_row(blk, kp, (size_t)jb * stride, f16, nd);
        const float *kj = blk;
        for (int i = 0; i < nq; i++) {
            if (jb >= npos[i]) continue;
            __m512 a = _mm512_mul_ps(_mm512_loadu_ps(q[i]), _mm512_loadu_ps(kj));
#pragma GCC unroll 8
            for (int d = 1; d < nd; d++) a = _mm512_fmadd_ps(_mm512_loadu_ps(q[i] + 16 * d), _mm512_loadu_ps(kj + 16 * d), a);
            sc[(size_t)i * maxn + jb] = _mm512_reduce_add_ps(a) * scale;
        }
    }
    float inv[CK_ATTN_MAXQ];
    for (int i = 0; i < nq; i++) {
        float *si = sc + (size_t)i * maxn;
        const int n = npos[i];
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        int j = 0;
        for (; j + 16 <= n; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(si + j));
        if (j < n) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, (__mmask16)((1u << (n - j)) - 1), si + j));
        const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 vden = _mm512_setzero_ps();
        for (j = 0; j + 16 <= n; j += 16) {
            const __m512 e = avx512_exp(_mm512_sub_ps(_mm512_loadu_ps(si + j), vm));
            _mm512_storeu_ps(si + j, e);
            vden = _mm512_add_ps(vden, e);
        }
        if (j < n) {
            const __mmask16 km = (__mmask16)((1u << (n - j)) - 1);
            const __m512 e = _mm512_maskz_mov_ps(km, avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(km, si + j), vm)));
            _mm512_mask_storeu_ps(si + j, km, e);
            vden = _mm512_add_ps(vden, e);
        }
        inv[i] = 1.0f / _mm512_reduce_add_ps(vden);
        memset(out[i], 0, (size_t)hd * sizeof(float));
    }
    for (jb = 0; jb < maxn; jb += 16) {
        const int jn = maxn - jb < 16 ? maxn - jb : 16;
        avx512_rows_pf(kp, vp, stride, maxn, maxn + jb + ATT_PF, maxn + jb + ATT_PF + 16, f16, nd);
        for (int jj = 0; jj < jn; jj++) avx512_row(blk + hd * jj, vp, (size_t)(jb + jj) * stride, f16, nd);
        /* Two queries at a time: 16 independent accumulator chains keep the FMA units busy. */
        for (int i = 0; i < nq; i += 2) {
            const int n0 = npos[i] - jb < jn ? npos[i] - jb : jn;
            const int n1 = i + 1 < nq ? (npos[i + 1] - jb < jn ? npos[i + 1] - jb : jn) : 0;
            const float *s0 = sc + (size_t)i * maxn + jb, *s1 = sc + (size_t)(i + 1) * maxn + jb;
            __m512 o0[8], o1[8];
#pragma GCC unroll 8
            for (int d = 0; d < nd; d++) {
                o0[d] = n0 > 0 ? _mm512_loadu_ps(out[i] + 16 * d) : _mm512_setzero_ps();
                o1[d] = n1 > 0 ? _mm512_loadu_ps(out[i + 1] + 16 * d) : _mm512_setzero_ps();
            }
            const int nboth = n0 < n1 ? n0 : n1;
            int jj = 0;
            for (; jj < nboth; jj++) {
                const float *vj = blk + hd * jj;
                const __m512 p0 = _mm512_set1_ps(s0[jj]), p1 = _mm512_set1_ps(s1[jj]);
#pragma GCC unroll 8
                for (int d = 0; d < nd; d++) {
                    const __m512 vv = _mm512_load_ps(vj + 16 * d);
                    o0[d] = _mm512_fmadd_ps(p0, vv, o0[d]);
                    o1[d] = _mm512_fmadd_ps(p1, vv, o1[d]);
                }
            }
            for (int j0 = jj; j0 < n0; j0++) {
                const __m512 p0 = _mm512_set1_ps(s0[j0]);
#pragma GCC unroll 8
                for (int d = 0; d < nd; d++) o0[d] = _mm512_fmadd_ps(p0, _mm512_load_ps(blk + hd * j0 + 16 * d), o0[d]);
            }
            for (int j1 = jj; j1 < n1; j1++) {
                const __m512 p1 = _mm512_set1_ps(s1[j1]);
#pragma GCC unroll 8
                for (int d = 0; d < nd; d++) o1[d] = _mm512_fmadd_ps(p1, _mm512_load_ps(blk + hd * j1 + 16 * d), o1[d]);
            }
            if (n0 > 0)
#pragma GCC unroll 8
                for (int d = 0; d < nd; d++) _mm512_storeu_ps(out[i] + 16 * d, o0[d]);
            if (n1 > 0)
#pragma GCC unroll 8
                for (int d = 0; d < nd; d++) _mm512_storeu_ps(out[i + 1] + 16 * d, o1[d]);
        }
    }
    for (int i = 0; i < nq; i++) {
        const __m512 s = _mm512_set1_ps(inv[i]);
#pragma GCC unroll 8
        for (int d = 0; d < nd; d++) _mm512_storeu_ps(out[i] + 16 * d, _mm512_mul_ps(_mm512_loadu_ps(out[i] + 16 * d), s));
    }
}

/* One query: head_dim 128 as avx512_attn128, 64 through the several-query path, others generic. */
static void avx512_attn(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                        float scale, float *out, float *scratch) {
    if (hd == 128) avx512_attn128(q, k, v, stride, npos, scale, out, scratch);
    else if (hd == 64) avx512_attn_multi_nd(&q, &out, &npos, 1, k, v, stride, scale, scratch, 0, 4);
    else ck_attn_generic(q, k, v, stride, npos, hd, scale, out, scratch);
}

static void avx512_attn_multi(const float *const *q, float *const *out, const int *npos, int nq, const float *k,
                              const float *v, size_t stride, int hd, float scale, float *sc) {
    if (hd == 128) avx512_attn_multi_nd(q, out, npos, nq, k, v, stride, scale, sc, 0, 8);
    else if (hd == 64) avx512_attn_multi_nd(q, out, npos, nq, k, v, stride, scale, sc, 0, 4);
    else
        for (int i = 0; i < nq; i++) avx512_attn(q[i], k, v, stride, npos[i], hd, scale, out[i], sc);
}

/* The same on a half cache: rows widened as they are copied into the block (no float copy of the
 * cache; generation re-read every row of it a token). */
static int avx512_attn_multi_f16(const float *const *q, float *const *out, const int *npos, int nq, const uint16_t *k,
                                 const uint16_t *v, size_t stride, int hd, float scale, float *sc) {
    if (hd == 128) avx512_attn_multi_nd(q, out, npos, nq, k, v, stride, scale, sc, 1, 8);
    else if (hd == 64) avx512_attn_multi_nd(q, out, npos, nq, k, v, stride, scale, sc, 1, 4);
    else return 0;
    return 1;
}

/* ---- elementwise ----------------------------------------------------------------------------- */

static void avx512_swiglu(float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        /* silu(x) = x / (1 + e^-x); e^-x is capped at e^88 (finite), where silu is ~0 anyway */
        const __m512 e = avx512_exp(_mm512_min_ps(_mm512_sub_ps(_mm512_setzero_ps(), x), _mm512_set1_ps(88.0f)));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), _mm512_loadu_ps(u + i)));
    }
    ck_swiglu_generic(g + i, u + i, n - i);
}

static void avx512_f16_to_f32(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(src + i))));
    ck_f16_to_f32_generic(dst + i, src + i, n - i);
}

static void avx512_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    ck_f32_to_f16_generic(dst + i, src + i, n - i);
}

/* Q2_0 rows (blocks of 64 in 18 bytes: f16 d, 16 bytes of 2-bit codes, four a byte from the low
 * bits up): (q - 1) * d, 16 elements (4 code bytes) a step: the 32-bit word broadcast, shifted by
 * 0, 2 .. 30 and masked. The product is the reference's one rounding: equal bit for bit. */
static void avx512_dq_q2_0(const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    const __m512i sh = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                  three = _mm512_set1_epi32(3), one = _mm512_set1_epi32(1);
    for (size_t b = 0; b < n / 64; b++, p += 18, dst += 64) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss((uint16_t)(p[0] | p[1] << 8)));
        for (int i = 0; i < 4; i++) {
            const uint8_t *c = p + 2 + 4 * i;
            const __m512i v = _mm512_set1_epi32((int)((uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
                                                      (uint32_t)c[3] << 24));
            const __m512i q = _mm512_sub_epi32(_mm512_and_si512(_mm512_srlv_epi32(v, sh), three), one);
            _mm512_storeu_ps(dst + 16 * i, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d));
        }
    }
}

/* TQ2_0 rows (blocks of 256 in 66 bytes: qs[64], f16 d; each 32 bytes hold 128 elements, four
 * groups of 32 at shifts 0, 2, 4, 6): (q - 1) * d, 16 code bytes widened a step. */
static void avx512_dq_tq2_0(const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    const __m512i one = _mm512_set1_epi32(1);
    const __m128i three = _mm_set1_epi8(3);
    for (size_t b = 0; b < n / 256; b++, p += 66)  {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss((uint16_t)(p[64] | p[65] << 8)));
        for (int j = 0; j < 64; j += 32)
            for (int s = 0; s < 8; s += 2)
                for (int h = 0; h < 32; h += 16, dst += 16) {
                    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + j + h));
                    const __m128i c = _mm_and_si128(_mm_srl_epi16(v, _mm_cvtsi32_si128(s)), three);
                    const __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(c), one);
                    _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d));
                }
    }
}

#endif

#ifdef AVX512_ON
const ck_isa ck_isa_avx512 = {
    .name = "avx512",
    .compiled = 1,
    .supported = avx512_supported,
    .quant = avx512_quant,
    .quant14 = avx512_quant14,
    .quant32 = avx512_quant32,
    .vtab = avx512_vtab,
    .gemm = avx512_gemm,
    .attn = avx512_attn,
    .attn_multi = avx512_attn_multi,
    .attn_multi_f16 = avx512_attn_multi_f16,
    .swiglu = avx512_swiglu,
    .f16_to_f32 = avx512_f16_to_f32,
    .f32_to_f16 = avx512_f32_to_f16,
    .dq_q2_0 = avx512_dq_q2_0,
    .dq_tq2_0 = avx512_dq_tq2_0,
};
#else
const ck_isa ck_isa_avx512 = {.name = "avx512", .compiled = 0};
#endif
