/* qk.c — activation quantisation, the portable integer-dot kernels of qk.h (the arithmetic the SIMD
 * versions must match) and the lookup by (instruction set, type). */
#include "qk.h"

#include <math.h>
#include <string.h>

#include "gguf.h"
#include "quant.h"

/* ---- activations ----------------------------------------------------------------------------- */

void qk_quant(const float *x, int cols, int blk, int8_t *q, float *d, int16_t *s) {
    for (int b = 0; b < cols / blk; b++) {
        const float *xb = x + (size_t)b * blk;
        float amax = 0.0f;
        for (int i = 0; i < blk; i++) {
            const float a = fabsf(xb[i]);
            amax = a > amax ? a : amax; /* not fmaxf: a call per value where it is not inlined */
        }
        const float db = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
        d[b] = db;
        int8_t *qb = q + (size_t)b * blk;
        for (int i = 0; i < blk; i++) {
            /* round to nearest, ties to even, as nearbyintf in the default rounding mode (|x id| <=
             * 127 < 2^22: adding 1.5 * 2^23 leaves no fraction bits), without its call */
            const float p = xb[i] * id; /* its own statement: never contracted into an FMA */
            const float v = (p + 12582912.0f) - 12582912.0f;
            qb[i] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
        }
    }
    for (int g = 0; g < cols / 16; g++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) sum += q[g * 16 + i];
        s[g] = (int16_t)sum;
    }
}

/* ---- block readers ---------------------------------------------------------------------------- */

static float qk_f16(const uint8_t *p) { return ob_fp16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K (quant.c documents the packing). */
static void qk_scale_min(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
        *mn = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* ---- portable kernels: one row, one token ----------------------------------------------------- */

static float gen_q8_0(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    (void)s;
    float sum = 0.0f;
    for (int b = 0; b < nb; b++, w += 34) {
        int acc = 0;
        for (int i = 0; i < 32; i++) acc += (int8_t)w[2 + i] * q[32 * b + i];
        sum += qk_f16(w) * d[b] * (float)acc;
    }
    return sum;
}

static float gen_q4_0(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    float sum = 0.0f;
    for (int b = 0; b < nb; b++, w += 18) {
        const int8_t *qb = q + 32 * b;
        int acc = -8 * (s[2 * b] + s[2 * b + 1]);
        for (int i = 0; i < 16; i++) acc += (w[2 + i] & 15) * qb[i] + (w[2 + i] >> 4) * qb[16 + i];
        sum += qk_f16(w) * d[b] * (float)acc;
    }
    return sum;
}

static float gen_q4_1(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    float sum = 0.0f;
    for (int b = 0; b < nb; b++, w += 20) {
        const int8_t *qb = q + 32 * b;
        int acc = 0;
        for (int i = 0; i < 16; i++) acc += (w[4 + i] & 15) * qb[i] + (w[4 + i] >> 4) * qb[16 + i];
        sum += d[b] * (qk_f16(w) * (float)acc + qk_f16(w + 2) * (float)(s[2 * b] + s[2 * b + 1]));
    }
    return sum;
}

static uint32_t qk_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static float gen_q5_0(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    float sum = 0.0f;
    for (int b = 0; b < nb; b++, w += 22) {
        const int8_t *qb = q + 32 * b;
        const uint32_t qh = qk_u32(w + 2);
        int acc = -16 * (s[2 * b] + s[2 * b + 1]);
        for (int i = 0; i < 16; i++)
            acc += ((w[6 + i] & 15) | (int)(qh >> i & 1) << 4) * qb[i] +
                   ((w[6 + i] >> 4) | (int)(qh >> (i + 16) & 1) << 4) * qb[16 + i];
        sum += qk_f16(w) * d[b] * (float)acc;
    }
    return sum;
}

static float gen_q5_1(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    float sum = 0.0f;
    for (int b = 0; b < nb; b++, w += 24) {
        const int8_t *qb = q + 32 * b;
        const uint32_t qh = qk_u32(w + 4);
        int acc = 0;
        for (int i = 0; i < 16; i++)
            acc += ((w[8 + i] & 15) | (int)(qh >> i & 1) << 4) * qb[i] +
                   ((w[8 + i] >> 4) | (int)(qh >> (i + 16) & 1) << 4) * qb[16 + i];
        sum += d[b] * (qk_f16(w) * (float)acc + qk_f16(w + 2) * (float)(s[2 * b] + s[2 * b + 1]));
    }
    return sum;
}

/* Q4_K and Q5_K (q5: the fifth bits qh[32] come before the nibbles). */
static float gen_qk45(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s, int q5) {
    const int bytes = q5 ? 176 : 144;
    float sum = 0.0f;
    for (int b = 0; b < nb; b++, w += bytes) {
        const uint8_t *scales = w + 4, *qh = w + 16, *qs = w + (q5 ? 48 : 16);
        const int8_t *qb = q + 256 * b;
        int isum = 0, msum = 0;
        for (int sb = 0; sb < 8; sb++) {
            int sc, mn;
            qk_scale_min(sb, scales, &sc, &mn);
            const uint8_t *qq = qs + 32 * (sb / 2);
            const int shift = 4 * (sb & 1);
            int acc = 0;
            for (int i = 0; i < 32; i++) {
                const int u = (qq[i] >> shift & 15) | (q5 ? (qh[i] >> sb & 1) << 4 : 0);
                acc += u * qb[32 * sb + i];
            }
            isum += sc * acc;
            msum += mn * (s[16 * b + 2 * sb] + s[16 * b + 2 * sb + 1]);
        }
        sum += d[b] * (qk_f16(w) * (float)isum - qk_f16(w + 2) * (float)msum);
    }
    return sum;
}

static float gen_q4_k(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    return gen_qk45(w, nb, q, d, s, 0);
}

static float gen_q5_k(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    return gen_qk45(w, nb, q, d, s, 1);
}

static float gen_q6_k(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s) {
    float sum = 0.0f;
    for (int b = 0; b < nb; b++, w += 210) {
        const int8_t *sc = (const int8_t *)(w + 192);
        const int8_t *qb = q + 256 * b;
        int isum = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = w + 64 * half, *qh = w + 128 + 32 * half;
            for (int k = 0; k < 4; k++)      /* weights 128 half + 32 k + l */
                for (int h16 = 0; h16 < 2; h16++) {
                    const int g = 8 * half + 2 * k + h16; /* group of 16 */
                    int acc = -32 * s[16 * b + g];
                    for (int l = 16 * h16; l < 16 * h16 + 16; l++) {
                        const int lo = k & 1 ? ql[l + 32] : ql[l];
                        const int u = (k < 2 ? lo & 15 : lo >> 4) | (qh[l] >> (2 * k) & 3) << 4;
                        acc += u * qb[128 * half + 32 * k + l];
                    }
                    isum += sc[g] * acc;
                }
        }
        sum += d[b] * qk_f16(w + 208) * (float)isum;
    }
    return sum;
}

typedef float (*gen_dot_fn)(const uint8_t *w, int nb, const int8_t *q, const float *d, const int16_t *s);

static void gen_rows(gen_dot_fn dot, const uint8_t *w, size_t row_bytes, int r0, int r1, const qk_act *x, int n,
                     float *y, size_t ystride) {
    const int nb = x->cols / x->blk;
    for (int r = r0; r < r1; r++)
        for (int t = 0; t < n; t++)
            y[(size_t)t * ystride + r] = dot(w + (size_t)r * row_bytes, nb, x->q + (size_t)t * x->cols,
                                             x->d + (size_t)t * nb, x->s + (size_t)t * (x->cols / 16));
}

#define GEN_ROWS(T)                                                                                \
    static void gen_rows_##T(const uint8_t *w, size_t rb, int r0, int r1, const qk_act *x, int n, float *y, \
                             size_t ys) {                                                          \
        gen_rows(gen_##T, w, rb, r0, r1, x, n, y, ys);                                             \
    }
GEN_ROWS(q8_0)
GEN_ROWS(q4_0)
GEN_ROWS(q4_1)
GEN_ROWS(q5_0)
GEN_ROWS(q5_1)
GEN_ROWS(q4_k)
GEN_ROWS(q5_k)
GEN_ROWS(q6_k)

static const qk_kern gen_kerns[] = {
    {GGML_Q8_0, QK_ACT32, gen_rows_q8_0, NULL}, {GGML_Q4_0, QK_ACT32, gen_rows_q4_0, NULL},
    {GGML_Q4_1, QK_ACT32, gen_rows_q4_1, NULL}, {GGML_Q5_0, QK_ACT32, gen_rows_q5_0, NULL},
    {GGML_Q5_1, QK_ACT32, gen_rows_q5_1, NULL}, {GGML_Q4_K, QK_ACT256, gen_rows_q4_k, NULL},
    {GGML_Q5_K, QK_ACT256, gen_rows_q5_k, NULL}, {GGML_Q6_K, QK_ACT256, gen_rows_q6_k, NULL},
    {0, 0, NULL, NULL},
};

static int gen_supported(void) { return 1; }

const qk_isa qk_isa_generic = {.name = "generic", .compiled = 1, .supported = gen_supported, .kerns = gen_kerns};

/* ---- lookup ---------------------------------------------------------------------------------- */

const qk_kern *qk_in(const qk_isa *isa, uint32_t type) {
    if (!isa->compiled || !isa->kerns) return NULL;
    for (const qk_kern *k = isa->kerns; k->rows; k++)
        if (k->type == type) return k;
    return NULL;
}

static const qk_isa *const qk_all[] = {&qk_isa_avx512, &qk_isa_avx2, &qk_isa_neon, &qk_isa_wasm, &qk_isa_generic};

const qk_kern *qk_find(const char *isa, uint32_t type) {
    for (size_t i = 0; i < sizeof qk_all / sizeof *qk_all; i++)
        if (strcmp(qk_all[i]->name, isa) == 0 && qk_all[i]->compiled && qk_all[i]->supported())
            return qk_in(qk_all[i], type);
    return NULL;
}

qk_quant_fn qk_quant_for(const char *isa) {
    for (size_t i = 0; i < sizeof qk_all / sizeof *qk_all; i++)
        if (strcmp(qk_all[i]->name, isa) == 0 && qk_all[i]->compiled && qk_all[i]->supported() && qk_all[i]->quant)
            return qk_all[i]->quant;
    return qk_quant;
}
