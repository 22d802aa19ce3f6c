/* qk_kq_x86.h — AVX-512 VNNI kernels of the repacked Q4_K and Q6_K layouts (qk.h), included by
 * qk_x86.h where QK_VNNI is set (after qk_ptok, qk_store_pair, QK_PACK_CASES and QK_PG).
 *
 * A tile is two row groups (16 rows: lanes 0..7 the group at p0, 8..15 the one at p1; p1 = p0 for a
 * lone last group) by nt tokens (a compile-time constant, up to 8). Per sub-block of 32 columns the
 * 8 chunks are decoded once into 8 zmm of unsigned codes (lane r: 4 codes of row r), then serve
 * every token: 8 vpdpbusd with the token's 4 codes of each chunk broadcast from memory (an
 * embedded {1to16} operand), one vpmulld by the 16 rows' sub-block scales, one add into the token's
 * int32 super-block sum. Every loop is unrolled so that the codes and the sums stay in registers
 * (8 codes + 8 sums + 8 float accumulators + scales: 27 of the 32 zmm). Minimums (Q4_K) and the
 * offset 32 (Q6_K) come once a super-block from the token's sums per 16 (vpdpwssd). With fewer than
 * 4 tokens the sub-block dot is split in two chains (latency). Software prefetching was tried for
 * one token and lost to the hardware prefetcher, which needs the group-block read in ascending
 * order (hence Q6_K's layout: each 256 bytes of top bits before the two sub-block pairs using them).
 */
#ifndef OB_CPU_QK_KQ_X86_H
#define OB_CPU_QK_KQ_X86_H


/* The 32 bytes at a (lanes 0..7) and at b (lanes 8..15). */
QK_XI __m512i kq_ld2(const uint8_t *a, const uint8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* 8 bytes at a and 8 at b (one byte per row of the two groups) as 16 int32, zero- or sign-extended. */
QK_XI __m128i kq_ld8x2(const uint8_t *a, const uint8_t *b) {
    return _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)a), _mm_loadl_epi64((const __m128i *)b));
}

/* The 4 bytes at p in every 32-bit lane. */
QK_XI __m512i kq_bc(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* Integer dot of 8 chunks (u) with one token's 32 codes at xq, lane r: row r. */
QK_XI __m512i kq_dot8(const __m512i *u, const int8_t *xq, const int split) {
    if (!split) {
        __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[0], kq_bc(xq));
#pragma GCC unroll 8
        for (int j = 1; j < 8; j++) d = _mm512_dpbusd_epi32(d, u[j], kq_bc(xq + 4 * j));
        return d;
    }
    __m512i a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[0], kq_bc(xq));
    __m512i b = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[4], kq_bc(xq + 16));
#pragma GCC unroll 4
    for (int j = 1; j < 4; j++) {
        a = _mm512_dpbusd_epi32(a, u[j], kq_bc(xq + 4 * j));
        b = _mm512_dpbusd_epi32(b, u[4 + j], kq_bc(xq + 16 + 4 * j));
    }
    return _mm512_add_epi32(a, b);
}

/* Q4_K: 1184 bytes a group-block (qk.h). */
QK_XI void kq_tile_q4k(const uint8_t *p0, const uint8_t *p1, int nb, const qk_ptok *tk, const int nt, __m512 *acc) {
    const __m512i m4 = _mm512_set1_epi8(15);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++, p0 += 1184, p1 += 1184) {
        __m512i isum[QK_TILE_NT];
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int sb = 0; sb < 8; sb++) {
            const __m512i sc = _mm512_cvtepu8_epi32(kq_ld8x2(p0 + 32 + 8 * sb, p1 + 32 + 8 * sb));
            const uint8_t *c0 = p0 + 160 + 256 * (sb / 2), *c1 = p1 + 160 + 256 * (sb / 2);
            __m512i u[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m512i raw = kq_ld2(c0 + 32 * j, c1 + 32 * j);
                u[j] = _mm512_and_si512(sb & 1 ? _mm512_srli_epi16(raw, 4) : raw, m4);
            }
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++)
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(kq_dot8(u, tk[t].q + 256 * b + 32 * sb, nt < 4), sc));
        }
        /* minimums: lane r (mn, mn) as int16 pairs, times the token's two sums per 16 */
        __m512i ms[QK_TILE_NT];
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) ms[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int sb = 0; sb < 8; sb++) {
            const __m512i m = _mm512_cvtepu8_epi32(kq_ld8x2(p0 + 96 + 8 * sb, p1 + 96 + 8 * sb));
            const __m512i mp = _mm512_or_si512(m, _mm512_slli_epi32(m, 16));
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) ms[t] = _mm512_dpwssd_epi32(ms[t], mp, kq_bc(tk[t].s + 16 * b + 2 * sb));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)p1), _mm_loadu_si128((const __m128i *)p0)));
        const __m512 mw = _mm512_cvtph_ps(
            _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(p1 + 16)), _mm_loadu_si128((const __m128i *)(p0 + 16))));
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            const __m512 dx = _mm512_set1_ps(tk[t].d[b]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, dx), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms[t]), _mm512_mul_ps(mw, dx), acc[t]);
        }
    }
}

/* Q6_K: 1680 bytes a group-block (qk.h); per sub-block two scales (one per 16 columns: chunks 0..3
 * and 4..7), so two dots of 4 vpdpbusd, two vpmulld. */
QK_XI void kq_tile_q6k(const uint8_t *p0, const uint8_t *p1, int nb, const qk_ptok *tk, const int nt, __m512 *acc) {
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++, p0 += 1680, p1 += 1680) {
        __m512i isum[QK_TILE_NT];
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int sb = 0; sb < 8; sb++) {
            const __m512i sa = _mm512_cvtepi8_epi32(kq_ld8x2(p0 + 16 + 16 * sb, p1 + 16 + 16 * sb));
            const __m512i sc = _mm512_cvtepi8_epi32(kq_ld8x2(p0 + 24 + 16 * sb, p1 + 24 + 16 * sb));
            const int lo_off = 144 + 768 * (sb / 4) + 256 + 256 * (sb / 2 % 2), hi_off = 144 + 768 * (sb / 4);
            const uint8_t *c0 = p0 + lo_off, *c1 = p1 + lo_off, *h0 = p0 + hi_off, *h1 = p1 + hi_off;
            const int m = sb & 3; /* the two bits 2m, 2m + 1 of each high byte, moved to bits 4, 5 */
            __m512i u[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m512i raw = kq_ld2(c0 + 32 * j, c1 + 32 * j), hr = kq_ld2(h0 + 32 * j, h1 + 32 * j);
                const __m512i lo = _mm512_and_si512(sb & 1 ? _mm512_srli_epi16(raw, 4) : raw, m4);
                const __m512i hs = m == 0 ? _mm512_slli_epi16(hr, 4) : m == 1 ? _mm512_slli_epi16(hr, 2)
                                 : m == 2 ? hr : _mm512_srli_epi16(hr, 2);
                u[j] = _mm512_ternarylogic_epi32(lo, hs, m30, 0xF8); /* lo | (hs & 0x30) */
            }
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) {
                const int8_t *xq = tk[t].q + 256 * b + 32 * sb;
                __m512i da = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[0], kq_bc(xq));
                __m512i db = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[4], kq_bc(xq + 16));
#pragma GCC unroll 4
                for (int j = 1; j < 4; j++) {
                    da = _mm512_dpbusd_epi32(da, u[j], kq_bc(xq + 4 * j));
                    db = _mm512_dpbusd_epi32(db, u[4 + j], kq_bc(xq + 16 + 4 * j));
                }
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(da, sa), _mm512_mullo_epi32(db, sc)));
            }
        }
        /* offset 32: lane r (scale 2s, scale 2s + 1) as int16 pairs, times the token's sums per 16 */
        __m512i ms[QK_TILE_NT];
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) ms[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int sb = 0; sb < 8; sb++) {
            const __m512i sa = _mm512_cvtepi8_epi32(kq_ld8x2(p0 + 16 + 16 * sb, p1 + 16 + 16 * sb));
            const __m512i sc = _mm512_cvtepi8_epi32(kq_ld8x2(p0 + 24 + 16 * sb, p1 + 24 + 16 * sb));
            const __m512i sp = _mm512_or_si512(_mm512_and_si512(sa, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(sc, 16));
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) ms[t] = _mm512_dpwssd_epi32(ms[t], sp, kq_bc(tk[t].s + 16 * b + 2 * sb));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)p1), _mm_loadu_si128((const __m128i *)p0)));
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            const __m512i tot = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(ms[t], 5));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot), _mm512_mul_ps(dw, _mm512_set1_ps(tk[t].d[b])), acc[t]);
        }
    }
}

/* Row groups g0 <= g < g1, all n tokens: QK_PG groups at a time (their blocks stay in L2) for each
 * tile of up to QK_TILE_NT tokens (its activations in L1). */
QK_XI void kq_pack_rows(const int q6, const uint8_t *p, int nb, int g0, int g1, int rows, const qk_act *x, int n, float *y,
                        size_t ys) {
    const size_t gs = (size_t)nb * (q6 ? 1680 : 1184);
    for (int gc = g0; gc < g1; gc += QK_PG) {
        const int ge = gc + QK_PG < g1 ? gc + QK_PG : g1;
        for (int t0 = 0; t0 < n; t0 += QK_TILE_NT) {
            const int nt = n - t0 < QK_TILE_NT ? n - t0 : QK_TILE_NT;
            qk_ptok tk[QK_TILE_NT];
            for (int t = 0; t < nt; t++)
                tk[t] = (qk_ptok){x->q + (size_t)(t0 + t) * x->cols, x->d + (size_t)(t0 + t) * nb, NULL,
                                  x->s + (size_t)(t0 + t) * (x->cols / 16)};
            const qk_passes ps = qk_passes_for(n, gs);
            for (int g = gc; g < ge; g += ps.step) {
                const uint8_t *pg = p + (size_t)g * gs, *pg1 = qk_pass_second(ps, pg, g, ge);
                __m512 acc[QK_TILE_NT];
#define KQ_TK(NT) if (q6) kq_tile_q6k(pg, pg1, nb, tk, NT, acc); else kq_tile_q4k(pg, pg1, nb, tk, NT, acc)
                QK_PACK_CASES(KQ_TK)
#undef KQ_TK
                const int nr = qk_pass_rows(ps, g, ge, rows);
                for (int t = 0; t < nt; t++) qk_store_pair(y + (size_t)(t0 + t) * ys + (size_t)QK_PR * g, acc[t], nr);
            }
        }
    }
}

static void QK_FN(pk_q4_k)(const uint8_t *p, int nb, int g0, int g1, int rows, const qk_act *x, const int32_t *o, int n,
                           float *y, size_t ys) {
    (void)o;
    kq_pack_rows(0, p, nb, g0, g1, rows, x, n, y, ys);
}

static void QK_FN(pk_q6_k)(const uint8_t *p, int nb, int g0, int g1, int rows, const qk_act *x, const int32_t *o, int n,
                           float *y, size_t ys) {
    (void)o;
    kq_pack_rows(1, p, nb, g0, g1, rows, x, n, y, ys);
}

#endif
