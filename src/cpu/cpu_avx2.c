/* cpu_avx2.c — the CPU kernels for x86-64 with AVX2, FMA and F16C (Haswell and later, Zen 1+).
 *
 * The Q1_0 product looks the weights up rather than multiplying by them. Per token, once per
 * product, tables of the 16 subset sums of every group of 4 activations (int16 precision, three
 * byte chunks per 17-bit sum: cpu_kern.h); a row's 4 sign bits of a group (one nibble of the
 * repacked mask) index them with vpshufb, which so does 16 rows x 4 columns of two groups (one
 * per 128-bit lane) and one chunk: per 128 weights 3 shuffles, 3 byte adds, 3 instructions to
 * form the indices and ~3 to widen and combine, about 3.3 per 32 weights for both activation
 * planes, against ~8 when the sign bits were expanded to bytes and multiplied with vpmaddubsw
 * (and ~5 with AVX-VNNI's vpdpbusd, which is why there is no AVX-VNNI variant: this path does not
 * multiply). The sums are exact integers, equal to the portable kernel's. Tiles go in pairs, so
 * that each table chunk loaded serves 32 rows (loads, with the shuffles, are what bounds this
 * loop); tokens go in groups of 8 over slices of 16 blocks; one token takes whole rows, prefetched
 * ahead, its indices formed as they are used.
 * Also attention (one query at a time, on a float or a half cache), SwiGLU,
 * half <-> float conversion and the Q2_0 / TQ2_0 row decoders. Built with the flags of the
 * "per-ISA kernel flags" block of the Makefile; without them this file only defines an empty
 * table.
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

/* K: CK_K8 (ql NULL), CK_K16 or CK_K14 (two planes). */
AVX2_INLINE void avx2_quant_k(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c, const float K) {
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

static void avx2_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    if (ql) avx2_quant_k(x, cols, q, ql, a, c, CK_K16);
    else avx2_quant_k(x, cols, q, NULL, a, c, CK_K8);
}

static void avx2_quant14(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    avx2_quant_k(x, cols, q, ql, a, c, CK_K14);
}

/* ---- Q1_0 product: lookup tables ------------------------------------------------------------- */

/* The tables are cpu_kern.h's (built per token, bit for bit as ck_lut_generic). */
#define CK2_BIAS CK_LUT_BIAS
/* With one plane (int8), T is within +-4 * 127, so v = T + CK2_BIAS lies in [64516, 65532] and its
 * chunk c2 = v >> 12 is always 15: the product then skips those lookups (a third of them). */
#define CK2_C2_INT8 15
_Static_assert((CK2_BIAS - 4 * 127) >> 12 == CK2_C2_INT8 && (CK2_BIAS + 4 * 127) >> 12 == CK2_C2_INT8, "int8 c2");

/* 16 subset sums of one plane's 4 activations of group g, one per 16-bit lane k: bytes (bit 0,
 * bit 1) and (bit 2, bit 3) of k times the pairs (p[0], p[1]) and (p[2], p[3]). */
AVX2_INLINE __m256i avx2_subsets(const int8_t *p, __m256i b01, __m256i b23) {
    int16_t w01, w23;
    memcpy(&w01, p, 2);
    memcpy(&w23, p + 2, 2);
    return _mm256_add_epi16(_mm256_maddubs_epi16(b01, _mm256_set1_epi16(w01)), _mm256_maddubs_epi16(b23, _mm256_set1_epi16(w23)));
}

/* With T = 128 T_h + T_l (T_h, T_l the subset sums of the two planes; T_h = 0 for int8) and
 * v = T + CK2_BIAS: c0 = v mod 64 = T_l mod 64 (CK2_BIAS is a multiple of 64), and
 * u = v >> 6 = 2 T_h + (T_l >> 6) + CK2_BIAS / 64 (0 <= u < 2048), c1 = u mod 64, c2 = u >> 6:
 * all in 16 bits, though v needs 17. */
static void avx2_lut(const int8_t *q, const int8_t *ql, int cols, uint8_t *lut) {
    const __m256i b01 = _mm256_setr_epi8(0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0,
                                         0, 1, 1, 1);
    const __m256i b23 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1,
                                         1, 1, 1, 1);
    const __m256i m63 = _mm256_set1_epi16(63), ub = _mm256_set1_epi16(CK2_BIAS / 64);
    for (int p = 0; p < cols / 8; p++) {
        __m256i c[2][3];
        for (int h = 0; h < 2; h++) {
            const int g = 2 * p + h;
            const __m256i th = ql ? avx2_subsets(q + 4 * g, b01, b23) : _mm256_setzero_si256();
            const __m256i tl = avx2_subsets(ql ? ql + 4 * g : q + 4 * g, b01, b23);
            const __m256i u = _mm256_add_epi16(_mm256_add_epi16(_mm256_add_epi16(th, th), _mm256_srai_epi16(tl, 6)), ub);
            c[h][0] = _mm256_and_si256(tl, m63);
            c[h][1] = _mm256_and_si256(u, m63);
            c[h][2] = _mm256_srli_epi16(u, 6);
        }
        for (int k = 0; k < 3; k++) /* lane 0: group 2p's 16 bytes, lane 1: group 2p + 1's */
            _mm256_store_si256((__m256i *)(void *)(lut + (size_t)p * 96 + 32 * k),
                               _mm256_permute4x64_epi64(_mm256_packus_epi16(c[0][k], c[1][k]), 0xD8));
    }
}

/* The nibble indices of one tile-block: idx[p] holds, in lane h, row r's 4 bits of group 2p + h
 * in byte j, rows in the order r = 2 pi(j) for j < 8 and 2 pi(j - 8) + 1 for j >= 8 with pi =
 * (0 4 1 5 2 6 3 7): the order in which the sums come out even rows first (see avx2_block). */
AVX2_INLINE void avx2_idx(const uint8_t *tb, __m256i *idx) {
    const __m256i ctl = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15, 8,
                                         12, 9, 13, 10, 14, 11, 15);
    const __m256i sh = _mm256_setr_epi64x(0, 4, 0, 4), lo4 = _mm256_set1_epi8(15);
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) {
        const __m256i m = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(tb + 32 + 16 * p)));
        idx[p] = _mm256_and_si256(_mm256_srlv_epi64(_mm256_shuffle_epi8(m, ctl), sh), lo4);
    }
}

/* The sums S of avx2_block from the 16-bit sums of the chunks' bytes (ae: even bytes, ao: odd). */
AVX2_INLINE void avx2_sums(const __m256i *ae, const __m256i *ao, __m256i *se, __m256i *so) {
    /* F_c: lane 0 = even bytes (both groups), lane 1 = odd bytes; each <= 32 * 63. */
    __m256i F[3];
#pragma GCC unroll 3
    for (int c = 0; c < 3; c++)
        F[c] = _mm256_add_epi16(_mm256_permute2x128_si256(ae[c], ao[c], 0x20), _mm256_permute2x128_si256(ae[c], ao[c], 0x31));
    /* S + 32 * CK2_BIAS = F0 + 64 (F1 + 64 F2); G = F1 + 64 F2 <= 65504 fits 16 bits unsigned,
     * taken as signed minus 32768: S = F0 + 64 G' + 64 * 32768 - 32 * CK2_BIAS. */
    const __m256i G = _mm256_xor_si256(_mm256_add_epi16(F[1], _mm256_slli_epi16(F[2], 6)), _mm256_set1_epi16(-32768));
    const __m256i w = _mm256_set1_epi32(1 | 64 << 16), off = _mm256_set1_epi32(64 * 32768 - 32 * CK2_BIAS);
    *se = _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi16(F[0], G), w), off);
    *so = _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpackhi_epi16(F[0], G), w), off);

}

/* One token times one tile-block: the integer sums S of the 16 rows, even rows in *se and odd
 * rows in *so (8 int32 each). Byte sums of 4 lookups stay under 256 (63 * 4); they are widened to
 * 16 bits (even and odd bytes apart) every 4 lookups, and the two lanes (groups 2p and 2p + 1)
 * and the three chunks are combined once per block. */
AVX2_INLINE void avx2_block(const __m256i *idx, const uint8_t *L, __m256i *se, __m256i *so, const int P, const int C) {
    const __m256i lo8 = _mm256_set1_epi16(0xFF);
    __m256i ae[2][3], ao[2][3];
#pragma GCC unroll 4
    for (int j0 = 0; j0 < 16; j0 += 4) {
        __m256i s8[2][3];
#pragma GCC unroll 4
        for (int j = j0; j < j0 + 4; j++) {
#pragma GCC unroll 3
            for (int c = 0; c < C; c++) {
                const __m256i T = _mm256_load_si256((const __m256i *)(const void *)(L + 96 * j + 32 * c));
#pragma GCC unroll 2
                for (int p = 0; p < P; p++) {
                    const __m256i v = _mm256_shuffle_epi8(T, idx[16 * p + j]);
                    s8[p][c] = j == j0 ? v : _mm256_add_epi8(s8[p][c], v);
                }
            }
        }
#pragma GCC unroll 2
        for (int p = 0; p < P; p++)
#pragma GCC unroll 3
            for (int c = 0; c < C; c++) {
                const __m256i e = _mm256_and_si256(s8[p][c], lo8), o = _mm256_srli_epi16(s8[p][c], 8);
                ae[p][c] = j0 == 0 ? e : _mm256_add_epi16(ae[p][c], e);
                ao[p][c] = j0 == 0 ? o : _mm256_add_epi16(ao[p][c], o);
            }
    }
#pragma GCC unroll 2
    for (int p = 0; p < P; p++) {
        if (C == 2) ae[p][2] = ao[p][2] = _mm256_set1_epi16(16 * CK2_C2_INT8);
        avx2_sums(ae[p], ao[p], se + p, so + p);
    }
}

/* Rows 0..15 of y (left of them) <-> even / odd halves. */
AVX2_INLINE void avx2_load_eo(const float *y, int left, __m256 *e, __m256 *o) {
    __m256 a, b;
    if (left >= 16) {
        a = _mm256_loadu_ps(y);
        b = _mm256_loadu_ps(y + 8);
    } else {
        const __m256i i8 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        a = _mm256_maskload_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(left), i8));
        b = _mm256_maskload_ps(y + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), i8));
    }
    *e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

AVX2_INLINE void avx2_store_eo(float *y, int left, __m256 e, __m256 o) {
    const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
    const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20), b = _mm256_permute2f128_ps(lo, hi, 0x31);
    if (left >= 16) {
        _mm256_storeu_ps(y, a);
        _mm256_storeu_ps(y + 8, b);
    } else {
        const __m256i i8 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(left), i8), a);
        _mm256_maskstore_ps(y + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), i8), b);
    }
}

/* Blocks [b0, b1) of one tile for tokens t0 .. t0 + nt - 1 (nt <= 8), accumulated into y (which
 * holds the sums of blocks [0, b0) unless b0 = 0). */
AVX2_INLINE void avx2_tile(const uint8_t *tile, int nb, int b0, int b1, const ck_act *x, int t0, int nt, float *y,
                           size_t ys, int left, const int P, const int C) {
    __m256 acc[8][2][2];
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 2
        for (int p = 0; p < P; p++) {
            if (b0 == 0) acc[t][p][0] = acc[t][p][1] = _mm256_setzero_ps();
            else avx2_load_eo(y + (size_t)t * ys + CK_TILE * p, left - CK_TILE * p, &acc[t][p][0], &acc[t][p][1]);
        }
    const __m256i dctl = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13,
                                          2, 3, 6, 7, 10, 11, 14, 15);
    for (int b = b0; b < b1; b++) {
        __m256i idx[32];
        __m256 de[2], dodd[2];
#pragma GCC unroll 2
        for (int p = 0; p < P; p++) {
            const uint8_t *tb = tile + ((size_t)p * nb + b) * CK_TB_BYTES;
            avx2_idx(tb, idx + 16 * p);
            /* scales of the even rows, then the odd ones */
            const __m256i dh = _mm256_permute4x64_epi64(
                _mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)(const void *)tb), dctl), 0xD8);
            de[p] = _mm256_cvtph_ps(_mm256_castsi256_si128(dh));
            dodd[p] = _mm256_cvtph_ps(_mm256_extracti128_si256(dh, 1));
        }
        for (int t = 0; t < nt; t++) {
            const size_t tt = (size_t)(t0 + t);
            __m256i se[2], so[2];
            avx2_block(idx, x->lut + tt * x->lut_stride + (size_t)b * 16 * 96, se, so, P, C);
            const __m256 va = _mm256_set1_ps(x->a[tt * (size_t)x->nb + b]), vc = _mm256_set1_ps(x->c[tt * (size_t)x->nb + b]);
#pragma GCC unroll 2
            for (int p = 0; p < P; p++) {
                acc[t][p][0] = _mm256_fmadd_ps(de[p], _mm256_fmadd_ps(_mm256_cvtepi32_ps(se[p]), va, vc), acc[t][p][0]);
                acc[t][p][1] = _mm256_fmadd_ps(dodd[p], _mm256_fmadd_ps(_mm256_cvtepi32_ps(so[p]), va, vc), acc[t][p][1]);
            }
        }
    }
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 2
        for (int p = 0; p < P; p++) avx2_store_eo(y + (size_t)t * ys + CK_TILE * p, left - CK_TILE * p, acc[t][p][0], acc[t][p][1]);
}

/* The nibble indices of pair of groups j of a tile-block (avx2_idx's idx[j]), from its masks m. */
AVX2_INLINE __m256i avx2_idx1(const uint8_t *m, int j) {
    const __m256i ctl = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15, 8,
                                         12, 9, 13, 10, 14, 11, 15);
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(m + 16 * j)));
    return _mm256_and_si256(_mm256_srlv_epi64(_mm256_shuffle_epi8(v, ctl), _mm256_setr_epi64x(0, 4, 0, 4)),
                            _mm256_set1_epi8(15));
}

/* One token times P (1 or 2) adjacent tiles, whole rows: each table chunk is loaded once for
 * the P tiles, whose indices are formed as they are used (no stored copy). The sums are those of
 * avx2_block, per tile. */
AVX2_INLINE void avx2_t1(const uint8_t *ta, int nb, const ck_act *x, float *y, int left, const int P, const int C) {
    const uint8_t *tb = ta + (size_t)nb * CK_TB_BYTES;
    const __m256i lo8 = _mm256_set1_epi16(0xFF);
    const __m256i dctl = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13,
                                          2, 3, 6, 7, 10, 11, 14, 15);
    __m256 acc[2][2];
#pragma GCC unroll 2
    for (int p = 0; p < P; p++) acc[p][0] = acc[p][1] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        { /* the weight stream(s), CK_PREFETCH_BYTES ahead: past the end of these tiles, the next
           * P tiles (adjacent in memory) */
            const int bp = b + CK_PREFETCH_BYTES / CK_TB_BYTES;
            const size_t off = (size_t)(bp < nb ? bp : (P - 1) * nb + bp) * CK_TB_BYTES;
            for (int o = 0; o < CK_TB_BYTES; o += 64) {
                _mm_prefetch((const char *)ta + off + o, CK_PREFETCH_HINT);
                if (P == 2) _mm_prefetch((const char *)tb + off + o, CK_PREFETCH_HINT);
            }
        }
        const uint8_t *blk[2] = {ta + (size_t)b * CK_TB_BYTES, tb + (size_t)b * CK_TB_BYTES};
        const uint8_t *L = x->lut + (size_t)b * 16 * 96;
        __m256i ae[2][3], ao[2][3];
#pragma GCC unroll 4
        for (int j0 = 0; j0 < 16; j0 += 4) {
            __m256i s8[2][3];
#pragma GCC unroll 4
            for (int j = j0; j < j0 + 4; j++) {
                __m256i ix[2];
#pragma GCC unroll 2
                for (int p = 0; p < P; p++) ix[p] = avx2_idx1(blk[p] + 32, j);
#pragma GCC unroll 3
                for (int c = 0; c < C; c++) {
                    const __m256i T = _mm256_load_si256((const __m256i *)(const void *)(L + 96 * j + 32 * c));
#pragma GCC unroll 2
                    for (int p = 0; p < P; p++) {
                        const __m256i v = _mm256_shuffle_epi8(T, ix[p]);
                        s8[p][c] = j == j0 ? v : _mm256_add_epi8(s8[p][c], v);
                    }
                }
            }
#pragma GCC unroll 2
            for (int p = 0; p < P; p++)
#pragma GCC unroll 3
                for (int c = 0; c < C; c++) {
                    const __m256i e = _mm256_and_si256(s8[p][c], lo8), o = _mm256_srli_epi16(s8[p][c], 8);
                    ae[p][c] = j0 == 0 ? e : _mm256_add_epi16(ae[p][c], e);
                    ao[p][c] = j0 == 0 ? o : _mm256_add_epi16(ao[p][c], o);
                }
        }
        const __m256 va = _mm256_set1_ps(x->a[b]), vc = _mm256_set1_ps(x->c[b]);
#pragma GCC unroll 2
        for (int p = 0; p < P; p++) {
            __m256i se, so;
            if (C == 2) ae[p][2] = ao[p][2] = _mm256_set1_epi16(16 * CK2_C2_INT8);
            avx2_sums(ae[p], ao[p], &se, &so);
            const __m256i dh = _mm256_permute4x64_epi64(
                _mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)(const void *)blk[p]), dctl), 0xD8);
            const __m256 de = _mm256_cvtph_ps(_mm256_castsi256_si128(dh)), dodd = _mm256_cvtph_ps(_mm256_extracti128_si256(dh, 1));
            acc[p][0] = _mm256_fmadd_ps(de, _mm256_fmadd_ps(_mm256_cvtepi32_ps(se), va, vc), acc[p][0]);
            acc[p][1] = _mm256_fmadd_ps(dodd, _mm256_fmadd_ps(_mm256_cvtepi32_ps(so), va, vc), acc[p][1]);
        }
    }
#pragma GCC unroll 2
    for (int p = 0; p < P; p++) avx2_store_eo(y + CK_TILE * p, left - CK_TILE * p, acc[p][0], acc[p][1]);
}

/* Tiles in pairs (avx2_t1, avx2_tile: each table chunk loaded once for both). One token
 * (generation) takes whole rows: its product is bound by the weight stream, which the hardware
 * prefetchers follow best when each tile (nb * 288 bytes) is read once front to back; the tables
 * of a long row (72 KB for 6144 columns) then come from L2. Several tokens go in groups of 8 over
 * slices of 16 blocks (up to 2048 columns; 8 for two tokens), swept over the tiles: the 192 KB of
 * tables of a slice stay in L2, and the float sums of a tile are loaded and stored once a slice.
 * Slices of 2 blocks (tables in L1) were ~8% slower with tile pairs, whole 6144-column rows ~5%
 * (Zen 4, bench/q1-kernels.c, 64 tokens). */
AVX2_INLINE void avx2_gemm_c(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys, const int C) {
    const int nb = w->nb;
    if (n == 1) {
        int tile = tile0;
        for (; tile + 1 < tile1; tile += 2)
            avx2_t1(w->data + (size_t)tile * nb * CK_TB_BYTES, nb, x, y + (size_t)tile * CK_TILE, w->rows - tile * CK_TILE, 2, C);
        if (tile < tile1)
            avx2_t1(w->data + (size_t)tile * nb * CK_TB_BYTES, nb, x, y + (size_t)tile * CK_TILE, w->rows - tile * CK_TILE, 1, C);
        return;
    }
    for (int t0 = 0; t0 < n; t0 += 8) { /* n > 1 */
        const int nt = n - t0 < 8 ? n - t0 : 8, sb = nt <= 2 ? 8 : 16;
        for (int b0 = 0; b0 < nb; b0 += sb) {
            const int b1 = b0 + sb < nb ? b0 + sb : nb;
            int tile = tile0;
            for (; tile + 1 < tile1; tile += 2)
                avx2_tile(w->data + (size_t)tile * nb * CK_TB_BYTES, nb, b0, b1, x, t0, nt,
                          y + (size_t)t0 * ys + (size_t)tile * CK_TILE, ys, w->rows - tile * CK_TILE, 2, C);
            if (tile < tile1)
                avx2_tile(w->data + (size_t)tile * nb * CK_TB_BYTES, nb, b0, b1, x, t0, nt,
                          y + (size_t)t0 * ys + (size_t)tile * CK_TILE, ys, w->rows - tile * CK_TILE, 1, C);
        }
    }
}

static void avx2_gemm(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys) {
    if (x->ql) avx2_gemm_c(w, tile0, tile1, x, n, y, ys, 3);
    else avx2_gemm_c(w, tile0, tile1, x, n, y, ys, 2); /* one plane: c2 is constant */
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

/* 8 floats of a cache row: floats, or IEEE halves widened (f16). */
AVX2_INLINE __m256 avx2_ld8(const void *p, size_t off, const int f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)p + off)))
               : _mm256_loadu_ps((const float *)p + off);
}

/* One query (head_dim a multiple of 32) against a float or a half cache (f16: read in place). */
AVX2_INLINE void avx2_attn_any(const float *q, const void *k, const void *v, size_t stride, int npos, int hd,
                               float scale, float *out, float *sc, const int f16) {
    float mx = -INFINITY;
    for (int j = 0; j < npos; j++) {
        const size_t kj = (size_t)j * stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), avx2_ld8(k, kj + i, f16), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), avx2_ld8(k, kj + i + 8, f16), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), avx2_ld8(k, kj + i + 16, f16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), avx2_ld8(k, kj + i + 24, f16), a3);
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
            const size_t vj = (size_t)j * stride + i;
            const __m256 p = _mm256_set1_ps(sc[j]);
            o0 = _mm256_fmadd_ps(p, avx2_ld8(v, vj, f16), o0);
            o1 = _mm256_fmadd_ps(p, avx2_ld8(v, vj + 8, f16), o1);
            o2 = _mm256_fmadd_ps(p, avx2_ld8(v, vj + 16, f16), o2);
            o3 = _mm256_fmadd_ps(p, avx2_ld8(v, vj + 24, f16), o3);
        }
        _mm256_storeu_ps(out + i, _mm256_mul_ps(o0, inv));
        _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(o1, inv));
        _mm256_storeu_ps(out + i + 16, _mm256_mul_ps(o2, inv));
        _mm256_storeu_ps(out + i + 24, _mm256_mul_ps(o3, inv));
    }
}

static void avx2_attn(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                      float scale, float *out, float *sc) {
    if (hd % 32) ck_attn_generic(q, k, v, stride, npos, hd, scale, out, sc);
    else avx2_attn_any(q, k, v, stride, npos, hd, scale, out, sc, 0);
}

/* Queries of one KV head on a half cache, one at a time, the rows widened as they are read (no
 * float copy of the cache, which generation re-read every row of a token). */
static int avx2_attn_multi_f16(const float *const *q, float *const *out, const int *npos, int nq, const uint16_t *k,
                               const uint16_t *v, size_t stride, int hd, float scale, float *sc) {
    if (hd % 32) return 0;
    for (int i = 0; i < nq; i++) avx2_attn_any(q[i], k, v, stride, npos[i], hd, scale, out[i], sc, 1);
    return 1;
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
    .quant14 = avx2_quant14,
    .lut = avx2_lut,
    .gemm = avx2_gemm,
    .attn = avx2_attn,
    .attn_multi_f16 = avx2_attn_multi_f16,
    .swiglu = avx2_swiglu,
    .f16_to_f32 = avx2_f16_to_f32,
    .f32_to_f16 = avx2_f32_to_f16,
    .dq_q2_0 = avx2_dq_q2_0,
    .dq_tq2_0 = avx2_dq_tq2_0,
};
#else
const ck_isa ck_isa_avx2 = {.name = "avx2", .compiled = 0};
#endif
