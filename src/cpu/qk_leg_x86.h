/* qk_leg_x86.h — part of the body of qk_x86.h (included by it, with its macros and helpers): the
 * activation quantisation and the legacy types' kernels of the repacked layout (Q4_0, Q8_0), for
 * AVX-512 VNNI (QK_VNNI 1) and AVX2 (QK_VNNI 0).
 *
 * Quantisation (QK_FN(quant)): qk_quant's arithmetic exactly (the same amax, d = amax / 127, codes
 * x * (127 / amax) rounded to nearest even by the default MXCSR mode, clamped to +-127, sums per
 * 16), 16 (8) floats a step: the same bytes, tested bit for bit in test_qk.c.
 */

/* ---- activations ----------------------------------------------------------------------------- */

#if QK_VNNI
static void QK_FN(quant)(const float *x, int cols, int blk, int8_t *q, float *d, int16_t *s) {
    const __m512i lim = _mm512_set1_epi32(127), nlim = _mm512_set1_epi32(-127);
    for (int b = 0; b < cols / blk; b++, x += blk, q += blk) {
        __m512 vmax = _mm512_setzero_ps();
        for (int i = 0; i < blk; i += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
        const float amax = _mm512_reduce_max_ps(vmax);
        d[b] = amax / 127.0f;
        const __m512 id = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        for (int i = 0; i < blk; i += 16) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), id));
            v = _mm512_max_epi32(_mm512_min_epi32(v, lim), nlim);
            _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(v));
            *s++ = (int16_t)_mm512_reduce_add_epi32(v);
        }
    }
}
#else
static void QK_FN(quant)(const float *x, int cols, int blk, int8_t *q, float *d, int16_t *s) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < cols / blk; b++, x += blk, q += blk) {
        __m256 vmax = _mm256_setzero_ps();
        for (int i = 0; i < blk; i += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        d[b] = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        for (int i = 0; i < blk; i += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), id));
                v[k] = _mm256_max_epi32(_mm256_min_epi32(v[k], lim), nlim);
            }
            /* packs work per 128-bit lane: bytes come out in the order 0 4 1 5 2 6 3 7 (dwords) */
            const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(w, order));
            for (int k = 0; k < 4; k += 2) {
                const __m256i t = _mm256_add_epi32(v[k], v[k + 1]);
                __m128i h = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
                h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
                h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
                *s++ = (int16_t)_mm_cvtsi128_si32(h);
            }
        }
    }
}
#endif

/* ---- Q4_0 / Q8_0 on the repacked layout (qk.h) ------------------------------------------------ */

/* One token of a tile: codes, scales, and -8 x the sums per block (qk_pack_offsets). */
typedef struct qk_ltok {
    const int8_t *q;
    const float *d;
    const int32_t *o;
} qk_ltok;

QK_XI int32_t qk_ld32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Two tokens (qk_leg_tile16 with nt = 2) stream the weights from memory: prefetched QK_LEG_PF blocks
 * ahead (measured when one token took this path too: 8192 x 8192 Q4_0, 1 thread of a shared Zen 4,
 * ~30 -> ~45 G weights/s). One token takes qk_leg_tok1 (AVX-512) without a software prefetch. */
#ifndef QK_LEG_PF
#define QK_LEG_PF 16
#endif
#ifndef QK_LEG_PF_NT
#define QK_LEG_PF_NT 2
#endif

/* Prefetch of the group-block QK_LEG_PF ahead of p (gbb bytes each: all of its cache lines). */
QK_XI void qk_leg_prefetch(const uint8_t *p, size_t gbb) {
    for (int c = 0; c < (int)gbb; c += 64) _mm_prefetch((const char *)(p + QK_LEG_PF * gbb + c), _MM_HINT_T0);
}

#define QK_LEG_CASES(CALL)                                                                          \
    switch (nt) {                                                                                   \
    QK_LEG_CASES_8(CALL)                                                                            \
    case 4: CALL(4); break;                                                                         \
    case 3: CALL(3); break;                                                                         \
    case 2: CALL(2); break;                                                                         \
    default: CALL(1); break;                                                                        \
    }

#if QK_VNNI
#define QK_LEG_CASES_8(CALL) case 8: CALL(8); break; case 7: CALL(7); break; case 6: CALL(6); break; case 5: CALL(5); break;
#define QK_LEG_NT 8                /* tokens a tile: 8 int32 sums and 8 float accumulators in registers */

/* Two row groups (16 rows: lanes 0..7 group p0, 8..15 group p1; p1 = p0 for a lone last group) times
 * the tile's tokens over nb blocks: acc[t] lane r = row r's dot with token t. Per block, each
 * 32-byte chunk of the two groups (4 columns of 16 rows) is decoded once and feeds one vpdpbusd per
 * token, token innermost, so the nt sums are nt independent chains (the instruction's latency is
 * hidden behind the other tokens'); each sum starts at the token's offset (kind 1, Q4_0: codes
 * w + 8, -8 sum(x); kind 0, Q8_0: codes w + 128 through the sign flip, -128 sum(x)). Then one
 * conversion and one FMA a token with the 16 weight scales times the token's. */
QK_XI void qk_leg_tile16(const int kind, const uint8_t *p0, const uint8_t *p1, int nb, const qk_ltok *tk, const int nt,
                         __m512 *acc) {
    const size_t gbb = kind ? 144 : 272;
    const __m512i m4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char)0x80);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++, p0 += gbb, p1 += gbb) {
        if (nt <= QK_LEG_PF_NT) {
            qk_leg_prefetch(p0, gbb);
            if (p1 != p0) qk_leg_prefetch(p1, gbb);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)p1), _mm_loadu_si128((const __m128i *)p0)));
        __m512i is[QK_LEG_NT];
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) is[t] = _mm512_set1_epi32(kind ? tk[t].o[b] : 16 * tk[t].o[b]);
        const int nj = kind ? 4 : 8;
#pragma GCC unroll 8
        for (int j = 0; j < nj; j++) {
            const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 16 + 32 * j))),
                                                   _mm256_loadu_si256((const __m256i *)(p1 + 16 + 32 * j)), 1);
            if (kind) {
                const __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
#pragma GCC unroll 8
                for (int t = 0; t < nt; t++) is[t] = _mm512_dpbusd_epi32(is[t], lo, _mm512_set1_epi32(qk_ld32(tk[t].q + 32 * b + 4 * j)));
#pragma GCC unroll 8
                for (int t = 0; t < nt; t++) is[t] = _mm512_dpbusd_epi32(is[t], hi, _mm512_set1_epi32(qk_ld32(tk[t].q + 32 * b + 16 + 4 * j)));
            } else {
                const __m512i u = _mm512_xor_si512(raw, flip);
#pragma GCC unroll 8
                for (int t = 0; t < nt; t++) is[t] = _mm512_dpbusd_epi32(is[t], u, _mm512_set1_epi32(qk_ld32(tk[t].q + 32 * b + 4 * j)));
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[t]), _mm512_mul_ps(dw, _mm512_set1_ps(tk[t].d[b])), acc[t]);
    }
}

/* One token, one row group (8 rows, lane r: row r) over nb blocks, on 256-bit vectors: the 16-lane
 * tile above would spend half its work on a repeated group. Per block the 4 (Q4_0: 8 nibble halves)
 * or 8 (Q8_0) chunk dots go into 4 independent chains of 2 vpdpbusd, each with the token's 4 codes
 * broadcast from memory, and the blocks alternate between two float accumulators, so that no
 * instruction's latency sets the pace: one token's kernel must keep up with the memory stream. */
QK_XI __m256i qk_leg_dot1(const int kind, const uint8_t *p, const int8_t *xq, int32_t o) {
    const __m256i m4 = _mm256_set1_epi8(15), flip = _mm256_set1_epi8((char)0x80);
    __m256i c[4];
    if (kind) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * j));
            const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            const __m256i xl = _mm256_set1_epi32(qk_ld32(xq + 4 * j)), xh = _mm256_set1_epi32(qk_ld32(xq + 16 + 4 * j));
            if (j < 2) {
                c[j] = _mm256_dpbusd_epi32(j ? _mm256_setzero_si256() : _mm256_set1_epi32(o), lo, xl);
                c[2 + j] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), hi, xh);
            } else {
                c[j - 2] = _mm256_dpbusd_epi32(c[j - 2], lo, xl);
                c[j] = _mm256_dpbusd_epi32(c[j], hi, xh);
            }
        }
    } else {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 16 + 32 * j)), flip);
            const __m256i xv = _mm256_set1_epi32(qk_ld32(xq + 4 * j));
            if (j < 4) c[j] = _mm256_dpbusd_epi32(j ? _mm256_setzero_si256() : _mm256_set1_epi32(16 * o), u, xv);
            else c[j - 4] = _mm256_dpbusd_epi32(c[j - 4], u, xv);
        }
    }
    return _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
}

QK_XI __m256 qk_leg_tok1(const int kind, const uint8_t *p, int nb, const qk_ltok *tk) {
    const size_t gbb = kind ? 144 : 272;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2, p += 2 * gbb) {
        const __m256i i0 = qk_leg_dot1(kind, p, tk->q + 32 * b, tk->o[b]);
        const __m256i i1 = qk_leg_dot1(kind, p + gbb, tk->q + 32 * b + 32, tk->o[b + 1]);
        const __m256 d0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)), _mm256_set1_ps(tk->d[b]));
        const __m256 d1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + gbb))), _mm256_set1_ps(tk->d[b + 1]));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), d0, a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), d1, a1);
    }
    if (b < nb) {
        const __m256i i0 = qk_leg_dot1(kind, p, tk->q + 32 * b, tk->o[b]);
        const __m256 d0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)), _mm256_set1_ps(tk->d[b]));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), d0, a0);
    }
    return _mm256_add_ps(a0, a1);
}

#else
#define QK_LEG_CASES_8(CALL)
#define QK_LEG_NT 4                /* 16 vector registers: 4 sums, 4 accumulators */

/* One row group (8 rows, lane r: row r) times the tile's tokens over nb blocks, as qk_leg_tile16
 * with vpmaddubsw: Q4_0's codes (0..15) times a token's 4 activations give pair sums of at most
 * 2 * 15 * 127, so a block's 8 chunks add up in int16 and one vpmaddwd a token widens them; Q8_0's
 * signed codes go through |w| and sign(x, w), widened a chunk (a pair sum reaches 2 * 128 * 127). */
QK_XI void qk_leg_tile8(const int kind, const uint8_t *p, int nb, const qk_ltok *tk, const int nt, __m256 *acc) {
    const size_t gbb = kind ? 144 : 272;
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, p += gbb) {
        if (nt <= QK_LEG_PF_NT) qk_leg_prefetch(p, gbb);
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        __m256i is[QK_LEG_NT];
        if (kind) {
            __m256i h[QK_LEG_NT];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * j));
                const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) {
                    const __m256i a = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(qk_ld32(tk[t].q + 32 * b + 4 * j)));
                    const __m256i c = _mm256_maddubs_epi16(hi, _mm256_set1_epi32(qk_ld32(tk[t].q + 32 * b + 16 + 4 * j)));
                    h[t] = j ? _mm256_add_epi16(h[t], _mm256_add_epi16(a, c)) : _mm256_add_epi16(a, c);
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) is[t] = _mm256_add_epi32(_mm256_madd_epi16(h[t], ones), _mm256_set1_epi32(tk[t].o[b]));
        } else {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * j)), aw = _mm256_abs_epi8(w);
#pragma GCC unroll 4
                for (int t = 0; t < nt; t++) {
                    const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(qk_ld32(tk[t].q + 32 * b + 4 * j)), w);
                    const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones);
                    is[t] = j ? _mm256_add_epi32(is[t], d) : d;
                }
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[t]), _mm256_mul_ps(dw, _mm256_set1_ps(tk[t].d[b])), acc[t]);
    }
}
#endif

/* Row groups g0 <= g < g1, QK_LEG_PG at a time for each tile of tokens (their weights stay in L1/L2
 * while the tiles pass); two groups a tile on AVX-512, one on AVX2. */
#define QK_LEG_PG 4
QK_XI void qk_leg_rows(const int kind, const uint8_t *p, int nb, int g0, int g1, int rows, const qk_act *x, const int32_t *o,
                       int n, float *y, size_t ys) {
    const size_t gs = (size_t)nb * (kind ? 144 : 272);
    for (int gc = g0; gc < g1; gc += QK_LEG_PG) {
        const int ge = gc + QK_LEG_PG < g1 ? gc + QK_LEG_PG : g1;
        for (int t0 = 0; t0 < n; t0 += QK_LEG_NT) {
            const int nt = n - t0 < QK_LEG_NT ? n - t0 : QK_LEG_NT;
            qk_ltok tk[QK_LEG_NT];
            for (int t = 0; t < nt; t++)
                tk[t] = (qk_ltok){x->q + (size_t)(t0 + t) * x->cols, x->d + (size_t)(t0 + t) * nb, o + (size_t)(t0 + t) * nb};
#if QK_VNNI
            if (n == 1) {
                for (int g = gc; g < ge; g++) {
                    float tmp[QK_PR];
                    _mm256_storeu_ps(tmp, qk_leg_tok1(kind, p + (size_t)g * gs, nb, tk));
                    const int nr = rows - QK_PR * g < QK_PR ? rows - QK_PR * g : QK_PR;
                    qk_store_rows(y + (size_t)QK_PR * g, tmp, nr);
                }
                continue;
            }
            const qk_passes ps = qk_passes_for(n, gs);
            for (int g = gc; g < ge; g += ps.step) {
                const uint8_t *pg = p + (size_t)g * gs, *pg1 = qk_pass_second(ps, pg, g, ge);
                __m512 acc[QK_LEG_NT];
#define QK_LT(NT) qk_leg_tile16(kind, pg, pg1, nb, tk, NT, acc)
                QK_LEG_CASES(QK_LT)
#undef QK_LT
                const int nr = qk_pass_rows(ps, g, ge, rows);
                for (int t = 0; t < nt; t++) qk_store_pair(y + (size_t)(t0 + t) * ys + (size_t)QK_PR * g, acc[t], nr);
            }
#else
            for (int g = gc; g < ge; g++) {
                __m256 acc[QK_LEG_NT];
#define QK_LT(NT) qk_leg_tile8(kind, p + (size_t)g * gs, nb, tk, NT, acc)
                QK_LEG_CASES(QK_LT)
#undef QK_LT
                const int nr = rows - QK_PR * g < QK_PR ? rows - QK_PR * g : QK_PR;
                for (int t = 0; t < nt; t++) {
                    float *out = y + (size_t)(t0 + t) * ys + (size_t)QK_PR * g;
                    if (nr == QK_PR) {
                        _mm256_storeu_ps(out, acc[t]);
                    } else {
                        float tmp[QK_PR];
                        _mm256_storeu_ps(tmp, acc[t]);
                        qk_store_rows(out, tmp, nr);
                    }
                }
            }
#endif
        }
    }
}

static void QK_FN(pk_q8_0)(const uint8_t *p, int nb, int g0, int g1, int rows, const qk_act *x, const int32_t *o, int n,
                           float *y, size_t ys) {
    qk_leg_rows(0, p, nb, g0, g1, rows, x, o, n, y, ys);
}

static void QK_FN(pk_q4_0)(const uint8_t *p, int nb, int g0, int g1, int rows, const qk_act *x, const int32_t *o, int n,
                           float *y, size_t ys) {
    qk_leg_rows(1, p, nb, g0, g1, rows, x, o, n, y, ys);
}
