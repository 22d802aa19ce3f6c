/* qk_x86.h — the body of the x86 integer-dot kernels of qk.h, included by qk_avx512.c (QK_VNNI 1:
 * AVX-512 VNNI's vpdpbusd / vpdpwssd on 256-bit vectors, with 32 vector registers) and qk_avx2.c
 * (QK_VNNI 0: vpmaddubsw + vpmaddwd). QK_PREFIX names the functions and QK_ISA_NAME the table.
 *
 * Per weight block, the codes become unsigned bytes in weight order (nibbles split, fifth and sixth
 * bits merged in) once, then serve up to QK_NT tokens: per token one unsigned x signed byte dot
 * per 32 weights (with the sub-block's scale applied as an int16 multiply for the K-quants, summed
 * in int32 over the super-block), and per block (super-block) one int -> float conversion and FMA
 * with the weight scale times the activation scale. Offsets (Q4_0's 8, Q6_K's 32) and minimums
 * (Q4_1, Q4_K, ...) come from the activations' sums per 16 (qk.h gives the algebra). The codes are
 * at most 63 and the activations at most 127 in magnitude, so vpmaddubsw never saturates
 * (2 * 63 * 127 < 32767); Q8_0's signed codes go through |w| and sign(x, w) (2 * 128 * 127 < 32767).
 * Rows are taken 16 at a time for each group of tokens, so the group's activations stay in L1 and
 * the rows' blocks in L2. The activation quantisation and the legacy types' kernels of the repacked
 * layout are in qk_leg_x86.h, included below.
 */
#include <immintrin.h>
#include <string.h>

#include "gguf.h"
#include "qk_rows.h"

#define QK_XI static inline __attribute__((always_inline))
#define QK_CAT2(a, b) a##b
#define QK_CAT(a, b) QK_CAT2(a, b)
#define QK_FN(name) QK_CAT(QK_PREFIX, name)

/* 8 lanes, each the sum of 4 products u8 * s8, added to acc. */
QK_XI __m256i qk_dot4(__m256i acc, __m256i u, __m256i s) {
#if QK_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* acc += pairs of (u8 * s8 pair sums) times the int16 scales sc. */
QK_XI __m256i qk_dots(__m256i acc, __m256i u, __m256i s, __m256i sc) {
#if QK_VNNI
    return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), sc);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc));
#endif
}

QK_XI float qk_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

QK_XI float qk_h(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Byte i = 0xFF where bit i of x is set. */
QK_XI __m256i qk_bits(uint32_t x) {
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfell));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi32(-1));
}

/* x in lane 0, zeros elsewhere. */
QK_XI __m256i qk_lane0(int x) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(x)); }

/* The 16 nibbles of p as 32 bytes: low nibbles, then high nibbles (Q4_0's weight order). */
QK_XI __m256i qk_nib32(const uint8_t *p) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(15));
}


/* ---- legacy types: blocks of 32 -------------------------------------------------------------- */

/* The 32 codes of a legacy block in weight order: Q8_0's signed bytes, else unsigned (0..31). */
QK_XI __m256i qk_codes32(const int kind, const uint8_t *w) {
    if (kind == 0) return _mm256_loadu_si256((const __m256i *)(w + 2));
    if (kind == 1) return qk_nib32(w + 2);
    if (kind == 2) return qk_nib32(w + 4);
    uint32_t qh;
    memcpy(&qh, w + (kind == 3 ? 2 : 4), 4);
    return _mm256_or_si256(qk_nib32(w + (kind == 3 ? 6 : 8)), _mm256_and_si256(qk_bits(qh), _mm256_set1_epi8(16)));
}

/* kind: 0 Q8_0, 1 Q4_0, 2 Q4_1, 3 Q5_0, 4 Q5_1 */
QK_XI void qk_tile32(const int kind, const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    static const int bytes[5] = {34, 18, 20, 22, 24};
    __m256 acc[QK_TILE_NT];
    float macc[QK_TILE_NT];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps(), macc[t] = 0.0f;
    int b = 0;
    /* 8 blocks at a time: their 8 integer dots reduced into one vector (lane j: block j), then one
     * conversion and one FMA with the 8 weight scales times the 8 activation scales. */
    for (; b + 8 <= nb; b += 8, w += 8 * bytes[kind]) {
        __m256i u[8];
        uint16_t dh[8], mh[8];
        for (int j = 0; j < 8; j++) {
            const uint8_t *wb = w + j * bytes[kind];
            u[j] = qk_codes32(kind, wb);
            memcpy(&dh[j], wb, 2);
            if (kind == 2 || kind == 4) memcpy(&mh[j], wb + 2, 2);
        }
        const __m256 dwv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dh));
        const __m256 mwv = kind == 2 || kind == 4 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)mh)) : dwv;
        for (int t = 0; t < nt; t++) {
            __m256i p[8];
            for (int j = 0; j < 8; j++) {
                __m256i xs = _mm256_loadu_si256((const __m256i *)(tk[t].q + 32 * (b + j)));
                if (kind == 0) xs = _mm256_sign_epi8(xs, u[j]);
                p[j] = qk_dot4(_mm256_setzero_si256(), kind == 0 ? _mm256_abs_epi8(u[j]) : u[j], xs);
            }
            const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
            const __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
            const __m256i h03 = _mm256_hadd_epi32(h01, h23), h47 = _mm256_hadd_epi32(h45, h67);
            __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(h03, h47, 0x20), _mm256_permute2x128_si256(h03, h47, 0x31));
            /* sums of the activations per block of 32 */
            const __m256i s32 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(tk[t].s + 2 * b)), _mm256_set1_epi16(1));
            if (kind == 1) sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(s32, 3));
            if (kind == 3) sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(s32, 4));
            const __m256 dxv = _mm256_loadu_ps(tk[t].d + b);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dwv, dxv), acc[t]);
            if (kind == 2 || kind == 4) acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), _mm256_mul_ps(mwv, dxv), acc[t]);
        }
    }
    for (; b < nb; b++, w += bytes[kind]) {
        const float dw = qk_h(w);
        const __m256i u = qk_codes32(kind, w);
        const __m256i au = kind == 0 ? _mm256_abs_epi8(u) : u;
        const float mw = kind == 2 || kind == 4 ? qk_h(w + 2) : 0.0f;
        for (int t = 0; t < nt; t++) {
            __m256i xs = _mm256_loadu_si256((const __m256i *)(tk[t].q + 32 * b));
            __m256i init = _mm256_setzero_si256();
            if (kind == 0) xs = _mm256_sign_epi8(xs, u);
            const int sum32 = tk[t].s[2 * b] + tk[t].s[2 * b + 1];
            if (kind == 1) init = qk_lane0(-8 * sum32);
            if (kind == 3) init = qk_lane0(-16 * sum32);
            const __m256i p = qk_dot4(init, au, xs);
            const float dx = tk[t].d[b];
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * dx), acc[t]);
            if (kind == 2 || kind == 4) macc[t] += mw * dx * (float)sum32;
        }
    }
    for (int t = 0; t < nt; t++) out[t] = qk_hsum(acc[t]) + macc[t];
}

/* ---- K-quants: super-blocks of 256 ----------------------------------------------------------- */

/* Q4_K / Q5_K (q5 set). */
QK_XI void qk_tile_k45(const int q5, const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    const __m256i m4 = _mm256_set1_epi8(15);
    /* pick int16 element k of a broadcast 8 x int16 vector */
    __m256 acc[QK_TILE_NT];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, w += q5 ? 176 : 144) {
        const float d = qk_h(w), dmin = qk_h(w + 2);
        uint32_t u[4];
        memcpy(u, w + 4, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
        const uint32_t mins_lo = u[1] & 0x3f3f3f3fu;
        u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
        u[2] = mins_lo;
        u[0] &= 0x3f3f3f3fu;
        /* scales (bytes of u[0], u[1]) as int16, in both 128-bit lanes; mins doubled to 16 int16 */
        const __m128i sc8 = _mm_set_epi32(0, 0, (int)u[1], (int)u[0]);
        const __m256i scv = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));
        const __m128i mn8 = _mm_set_epi32(0, 0, (int)u[3], (int)u[2]);
        const __m256i mnv = _mm256_cvtepu8_epi16(
            _mm_shuffle_epi8(mn8, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)));
        const uint8_t *qs = w + (q5 ? 48 : 16);
        __m256i hb = _mm256_setzero_si256();
        if (q5) hb = _mm256_loadu_si256((const __m256i *)(w + 16));
        __m256i isum[QK_TILE_NT];
        for (int t = 0; t < nt; t++) isum[t] = _mm256_setzero_si256();
        for (int i = 0; i < 4; i++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * i));
            __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            if (q5) {
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * i), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * i + 1), one), 4));
            }
            const __m256i sl = _mm256_shuffle_epi8(scv, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * i))));
            const __m256i sh = _mm256_shuffle_epi8(scv, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * i + 1))));
            for (int t = 0; t < nt; t++) {
                const int8_t *xq = tk[t].q + 256 * b + 64 * i;
                isum[t] = qk_dots(isum[t], lo, _mm256_loadu_si256((const __m256i *)xq), sl);
                isum[t] = qk_dots(isum[t], hi, _mm256_loadu_si256((const __m256i *)(xq + 32)), sh);
            }
        }
        for (int t = 0; t < nt; t++) {
            const float dx = tk[t].d[b];
            const __m256i mv = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(tk[t].s + 16 * b)), mnv);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mv), _mm256_set1_ps(dmin * dx), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = qk_hsum(acc[t]);
}

QK_XI void qk_tile_q6k(const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[QK_TILE_NT];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, w += 210) {
        const float d = qk_h(w + 208);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(w + 192));
        const __m256i scall = _mm256_cvtepi8_epi16(sc8); /* the 16 scales as int16 */
        __m256i isum[QK_TILE_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(tk[t].s + 16 * b)), scall), 5));
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
            const __m256i sch = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_unpackhi_epi64(sc8, sc8) : sc8));
            const __m256i qa = _mm256_loadu_si256((const __m256i *)ql), qb = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i hv = _mm256_loadu_si256((const __m256i *)qh);
            __m256i uk[4];
            uk[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m30));
            uk[1] = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m30));
            uk[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(hv, m30));
            uk[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(hv, 2), m30));
            for (int k = 0; k < 4; k++) {
                /* low 128-bit lane: scale 2k of this half, high lane: 2k + 1 */
                const short lo = (short)(0x0100 + 0x0202 * (2 * k)), hi = (short)(0x0100 + 0x0202 * (2 * k + 1));
                const __m256i sk = _mm256_shuffle_epi8(
                    sch, _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi));
                for (int t = 0; t < nt; t++)
                    isum[t] = qk_dots(isum[t], uk[k],
                                      _mm256_loadu_si256((const __m256i *)(tk[t].q + 256 * b + 128 * h + 32 * k)), sk);
            }
        }
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * tk[t].d[b]), acc[t]);
    }
    for (int t = 0; t < nt; t++) out[t] = qk_hsum(acc[t]);
}

/* ---- the repacked layout (qk.h): 8 rows x one block of 32 per group-block ----------------------- */

/* One token of a tile of the K-quants' repacked kernels (qk_leg_x86.h has the legacy types'). */
typedef struct qk_ptok {
    const int8_t *q;
    const float *d;
    const int32_t *o;
    const int16_t *s;              /* sums per 16 (K-quants) */
} qk_ptok;

#define QK_PG 4 /* row groups per pass over a tile of tokens (their activations stay in L1) */

#define QK_PACK_CASES(CALL)                                                                         \
    switch (nt) {                                                                                   \
    QK_PACK_CASES_8(CALL)                                                                           \
    case 4: CALL(4); break;                                                                         \
    case 3: CALL(3); break;                                                                         \
    case 2: CALL(2); break;                                                                         \
    default: CALL(1); break;                                                                        \
    }
#if QK_TILE_NT > 4
#define QK_PACK_CASES_8(CALL) case 8: CALL(8); break; case 7: CALL(7); break; case 6: CALL(6); break; case 5: CALL(5); break;
#else
#define QK_PACK_CASES_8(CALL)
#endif

/* Stores the first nr of 8 (or 16) outputs. */
QK_XI void qk_store_rows(float *o, const float *v, int nr) { memcpy(o, v, sizeof(float) * (size_t)nr); }
#if QK_VNNI
/* One 16-lane accumulator (two groups of QK_PR rows) to out: all 16 rows, or the first nr. */
QK_XI void qk_store_pair(float *out, __m512 acc, int nr) {
    if (nr == 2 * QK_PR) {
        _mm512_storeu_ps(out, acc);
        return;
    }
    float tmp[2 * QK_PR];
    _mm512_storeu_ps(tmp, acc);
    qk_store_rows(out, tmp, nr);
}

/* The passes of the repacked kernels over row groups g of [.., ge), group-blocks gs bytes apart,
 * each pass 16 lanes: two groups (lanes 8..15 the next one, or the same again for a lone last group)
 * for a prompt; one group for one token (lanes 8..15 repeat it, not stored; the Q4_0 / Q8_0 kernels now send
 * one token to qk_leg_tok1 instead, which reads the same single stream on 8 lanes), so that the
 * pass reads one ascending stream: two streams gs bytes apart are followed worse by the hardware prefetchers
 * (2 Zen 4 threads, interleaved runs: Llama-3.2-1B Q4_K_M tg128 ~44-48 tok/s instead of ~32-34,
 * Q4_0 tg64 32-34 instead of 28-30). */
typedef struct {
    int step;  /* groups a pass */
    size_t gs; /* bytes of a row group */
} qk_passes;
QK_XI qk_passes qk_passes_for(int n, size_t gs) { return (qk_passes){n == 1 ? 1 : 2, gs}; }
/* The group of lanes 8..15 of the pass at group g (its block bytes at pg). */
QK_XI const uint8_t *qk_pass_second(qk_passes ps, const uint8_t *pg, int g, int ge) {
    return ps.step == 2 && g + 1 < ge ? pg + ps.gs : pg;
}
/* The outputs the pass at group g stores (of rows in all). */
QK_XI int qk_pass_rows(qk_passes ps, int g, int ge, int rows) {
    const int nr = rows - QK_PR * g < 2 * QK_PR ? rows - QK_PR * g : 2 * QK_PR;
    return (ps.step == 1 || g + 1 >= ge) && nr > QK_PR ? QK_PR : nr;
}
#endif

#if QK_VNNI
/* Q4_K and Q6_K on the repacked layout: qk_kq_x86.h. */
#include "qk_kq_x86.h"
#define QK_PK_Q4_K QK_FN(pk_q4_k)
#define QK_PK_Q6_K QK_FN(pk_q6_k)
#else
#define QK_PK_Q4_K NULL
#define QK_PK_Q6_K NULL
#endif

#include "qk_leg_x86.h"

#define QK_C_Q8_0(w, nb, tk, nt, o) qk_tile32(0, w, nb, tk, nt, o)
#define QK_C_Q4_0(w, nb, tk, nt, o) qk_tile32(1, w, nb, tk, nt, o)
#define QK_C_Q4_1(w, nb, tk, nt, o) qk_tile32(2, w, nb, tk, nt, o)
#define QK_C_Q5_0(w, nb, tk, nt, o) qk_tile32(3, w, nb, tk, nt, o)
#define QK_C_Q5_1(w, nb, tk, nt, o) qk_tile32(4, w, nb, tk, nt, o)
#define QK_C_Q4_K(w, nb, tk, nt, o) qk_tile_k45(0, w, nb, tk, nt, o)
#define QK_C_Q5_K(w, nb, tk, nt, o) qk_tile_k45(1, w, nb, tk, nt, o)
#define QK_C_Q6_K(w, nb, tk, nt, o) qk_tile_q6k(w, nb, tk, nt, o)

QK_ROWS(q8_0, QK_C_Q8_0)
QK_ROWS(q4_0, QK_C_Q4_0)
QK_ROWS(q4_1, QK_C_Q4_1)
QK_ROWS(q5_0, QK_C_Q5_0)
QK_ROWS(q5_1, QK_C_Q5_1)
QK_ROWS(q4_k, QK_C_Q4_K)
QK_ROWS(q5_k, QK_C_Q5_K)
QK_ROWS(q6_k, QK_C_Q6_K)

static const qk_kern QK_FN(kerns)[] = {
    {GGML_Q8_0, QK_ACT32, QK_FN(q8_0), QK_FN(pk_q8_0)},  {GGML_Q4_0, QK_ACT32, QK_FN(q4_0), QK_FN(pk_q4_0)},
    {GGML_Q4_1, QK_ACT32, QK_FN(q4_1), NULL},  {GGML_Q5_0, QK_ACT32, QK_FN(q5_0), NULL},
    {GGML_Q5_1, QK_ACT32, QK_FN(q5_1), NULL},  {GGML_Q4_K, QK_ACT256, QK_FN(q4_k), QK_PK_Q4_K},
    {GGML_Q5_K, QK_ACT256, QK_FN(q5_k), NULL}, {GGML_Q6_K, QK_ACT256, QK_FN(q6_k), QK_PK_Q6_K},
    {0, 0, NULL, NULL},
};
