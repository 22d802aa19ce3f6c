/* quant.c — reference element formats: half-precision conversions, the weight type table (one
 * row dequantisation and one reference dot product per GGML type onebit runs), and the Q1_0
 * quantiser used by the model writers. Plain scalar code; the specification for fast paths, not a
 * fast path itself, and not a quantiser for the other types.
 *
 * The block layouts are GGML's (ggml-common.h); each decoder below is our own code that computes
 * every value with the same float operations in the same order as ggml's dequantize_row_* (and
 * gguf-py's numpy versions), so the values are bit-identical to theirs. Products of a float scale
 * and a small integer are written one operation a statement, so no compiler fuses them into an
 * FMA (GCC does not contract in ISO C mode; clang only contracts within one expression). */
#include "quant.h"

#include <math.h>
#include <string.h>

#include "gguf.h"

float ob_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ob_f32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0)); /* inf/nan */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);                          /* overflow */
    if (ax < 0x38800000u) {                                                            /* subnormal */
        if (ax < 0x33000000u) return (uint16_t)sign;                                   /* underflow */
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;          /* 14 + (113 - e) */
        uint32_t half = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((ax >> 13) - (112u << 10)); /* rebias exponent */
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float ob_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void ob_quant_q1_0(const float *src, block_q1_0 *dst, size_t n) {
    for (size_t b = 0; b < n / QK1_0; b++) {
        const float *x = src + b * QK1_0;
        double sum = 0;
        memset(dst[b].qs, 0, sizeof dst[b].qs);
        for (int j = 0; j < QK1_0; j++) {
            sum += fabs((double)x[j]);
            if (x[j] >= 0) dst[b].qs[j >> 3] |= (uint8_t)(1u << (j & 7));
        }
        dst[b].d = ob_f32_to_fp16((float)(sum / QK1_0));
    }
}


/* ---- block decoders ---------------------------------------------------------------------------
 * Each decodes one block at p into y[0..block). Fields are read byte by byte (little-endian), so
 * blocks need no alignment. */

#define QK_K 256

static float f16_at(const uint8_t *p) { return ob_fp16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* a * b - c and a * b + c with the product rounded first: two statements, never one FMA. */
static float mul_sub(float a, float b, float c) {
    const float prod = a * b;
    return prod - c;
}
static float mul_add(float a, float b, float c) {
    const float prod = a * b;
    return prod + c;
}

/* F32: 4 bytes, IEEE single. */
static void blk_f32(const uint8_t *p, float *y) { memcpy(y, p, 4); }
/* F16: 2 bytes, IEEE half. */
static void blk_f16(const uint8_t *p, float *y) { y[0] = f16_at(p); }
/* BF16: 2 bytes, the top half of an IEEE single. */
static void blk_bf16(const uint8_t *p, float *y) { y[0] = ob_bf16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Q8_0: 32 weights in 34 bytes: fp16 d, 32 int8 q; w = q * d. */
static void blk_q8_0(const uint8_t *p, float *y) {
    const float d = f16_at(p);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)p[2 + j] * d;
}

/* Q1_0: 128 weights in 18 bytes: fp16 d, 16 bytes of sign bits; w = bit ? d : -d. */
static void blk_q1_0(const uint8_t *p, float *y) {
    const float d = f16_at(p);
    for (int j = 0; j < QK1_0; j++) y[j] = (p[2 + (j >> 3)] >> (j & 7)) & 1 ? d : -d;
}

/* Q2_0: 64 weights in 18 bytes: fp16 d, 16 bytes of 2-bit codes q (weight j in bits 2(j%4) of byte
 * j/4); w = (q - 1) * d, so -d, 0, d, 2d. */
static void blk_q2_0(const uint8_t *p, float *y) {
    const float d = f16_at(p);
    for (int j = 0; j < 64; j++) y[j] = (float)((p[2 + j / 4] >> (2 * (j % 4)) & 3) - 1) * d;
}

/* Q4_0: 32 weights in 18 bytes: fp16 d, 16 bytes of nibbles; weight j < 16 is the low nibble of
 * byte j, weight j + 16 its high nibble; w = (q - 8) * d. */
static void blk_q4_0(const uint8_t *p, float *y) {
    const float d = f16_at(p);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((p[2 + j] & 15) - 8) * d;
        y[j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
    }
}

/* Q4_1: 32 weights in 20 bytes: fp16 d, fp16 m, nibbles as Q4_0; w = q * d + m. */
static void blk_q4_1(const uint8_t *p, float *y) {
    const float d = f16_at(p), m = f16_at(p + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = mul_add((float)(p[4 + j] & 15), d, m);
        y[j + 16] = mul_add((float)(p[4 + j] >> 4), d, m);
    }
}

/* Q5_0: 32 weights in 22 bytes: fp16 d, a 32-bit little-endian word qh of fifth bits (bit j for
 * weight j), nibbles as Q4_0; w = (q - 16) * d. */
static void blk_q5_0(const uint8_t *p, float *y) {
    const float d = f16_at(p);
    const uint32_t qh = (uint32_t)p[2] | (uint32_t)p[3] << 8 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 24;
    for (int j = 0; j < 16; j++) {
        const int q0 = (p[6 + j] & 15) | (int)((qh >> j) & 1) << 4;
        const int q1 = (p[6 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = (float)(q0 - 16) * d;
        y[j + 16] = (float)(q1 - 16) * d;
    }
}

/* Q5_1: 32 weights in 24 bytes: fp16 d, fp16 m, qh and nibbles as Q5_0; w = q * d + m. */
static void blk_q5_1(const uint8_t *p, float *y) {
    const float d = f16_at(p), m = f16_at(p + 2);
    const uint32_t qh = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    for (int j = 0; j < 16; j++) {
        const int q0 = (p[8 + j] & 15) | (int)((qh >> j) & 1) << 4;
        const int q1 = (p[8 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = mul_add((float)q0, d, m);
        y[j + 16] = mul_add((float)q1, d, m);
    }
}

/* Q2_K: 256 weights in 84 bytes: 16 scale bytes (low nibble: scale, high: min, one pair per 16
 * weights), 64 bytes of 2-bit codes, fp16 d, fp16 dmin. In each half of 128 weights, the 32 bytes
 * qs[0..32) hold 4 groups of 32 weights at shifts 0, 2, 4, 6; each group of 32 uses two scale
 * bytes (16 weights each). w = (d * sc) * q - (dmin * m). */
static void blk_q2_k(const uint8_t *p, float *y) {
    const uint8_t *sc = p, *q = p + 16;
    const float d = f16_at(p + 80), dmin = f16_at(p + 82);
    int is = 0;
    for (int half = 0; half < 2; half++, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int k = 0; k < 2; k++, is++) {
                const float dl = d * (float)(sc[is] & 15), ml = dmin * (float)(sc[is] >> 4);
                for (int l = 0; l < 16; l++) *y++ = mul_sub(dl, (float)(q[16 * k + l] >> shift & 3), ml);
            }
}

/* Q3_K: 256 weights in 110 bytes: hmask[32] (the third bit, inverted: set means no -4), qs[64] of
 * 2-bit codes laid out as Q2_K, 12 bytes of 16 packed 6-bit scales (offset 32), fp16 d.
 * w = (d * (s - 32)) * (q - (hbit ? 0 : 4)). */
static void blk_q3_k(const uint8_t *p, float *y) {
    const uint8_t *hm = p, *q = p + 32, *ps = p + 96;
    const float d = f16_at(p + 108);
    int8_t s[16];
    for (int i = 0; i < 16; i++) {
        /* low nibbles: bytes 0..7 (low then high nibble halves); high 2 bits: bytes 8..11 */
        const int lo = i < 8 ? ps[i] & 15 : ps[i - 8] >> 4;
        const int hi = ps[8 + i % 4] >> (2 * (i / 4)) & 3;
        s[i] = (int8_t)((lo | hi << 4) - 32);
    }
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; half++, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1))
            for (int k = 0; k < 2; k++, is++) {
                const float dl = d * (float)s[is];
                for (int l = 0; l < 16; l++) {
                    const int v = (q[16 * k + l] >> shift & 3) - (hm[16 * k + l] & m ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K: 12 bytes pack 8 pairs; pairs 0..3
 * are the low 6 bits of bytes j and j + 4, pairs 4..7 take a nibble of byte j + 4 and the top two
 * bits of bytes j - 4 and j. */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | (q[j - 4] >> 6) << 4;
        *mn = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* Q4_K: 256 weights in 144 bytes: fp16 d, fp16 dmin, 12 bytes of scales and mins, qs[128]. Each
 * 64 weights use 32 bytes: the low nibbles are the first 32 weights (sub-block 2i), the high
 * nibbles the next 32 (2i+1). w = (d * sc) * q - (dmin * m). */
static void blk_q4_k(const uint8_t *p, float *y) {
    const float d = f16_at(p), dmin = f16_at(p + 2);
    const uint8_t *scales = p + 4, *q = p + 16;
    for (int i = 0; i < 4; i++, q += 32) {
        int sc, mn;
        scale_min_k4(2 * i, scales, &sc, &mn);
        const float d1 = d * (float)sc, m1 = dmin * (float)mn;
        scale_min_k4(2 * i + 1, scales, &sc, &mn);
        const float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++) *y++ = mul_sub(d1, (float)(q[l] & 15), m1);
        for (int l = 0; l < 32; l++) *y++ = mul_sub(d2, (float)(q[l] >> 4), m2);
    }
}

/* Q5_K: 256 weights in 176 bytes: fp16 d, fp16 dmin, 12 bytes of scales and mins, qh[32], qs[128]
 * as Q4_K; the fifth bit of weight l of sub-block s is bit s of qh[l]. w = (d * sc) * q - (dmin * m). */
static void blk_q5_k(const uint8_t *p, float *y) {
    const float d = f16_at(p), dmin = f16_at(p + 2);
    const uint8_t *scales = p + 4, *qh = p + 16, *q = p + 48;
    for (int i = 0; i < 4; i++, q += 32) {
        int sc, mn;
        scale_min_k4(2 * i, scales, &sc, &mn);
        const float d1 = d * (float)sc, m1 = dmin * (float)mn;
        scale_min_k4(2 * i + 1, scales, &sc, &mn);
        const float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++) *y++ = mul_sub(d1, (float)((q[l] & 15) | (qh[l] >> (2 * i) & 1) << 4), m1);
        for (int l = 0; l < 32; l++) *y++ = mul_sub(d2, (float)((q[l] >> 4) | (qh[l] >> (2 * i + 1) & 1) << 4), m2);
    }
}

/* Q6_K: 256 weights in 210 bytes: ql[128] (low nibbles), qh[64] (high 2 bits), 16 int8 scales
 * (one per 16 weights), fp16 d. Each half of 128 weights uses 64 bytes of ql and 32 of qh: weight
 * l + 32k (k = 0..3) takes the low (k < 2) or high nibble of ql[l + 32 (k % 2)] and bits 2k of
 * qh[l]. w = (d * sc) * (q - 32). */
static void blk_q6_k(const uint8_t *p, float *y) {
    const uint8_t *ql = p, *qh = p + 128;
    const int8_t *sc = (const int8_t *)(p + 192);
    const float d = f16_at(p + 208);
    for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8)
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 15) | (qh[l] >> 0 & 3) << 4) - 32;
            const int q2 = ((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32;
            const int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
}

/* The ternary digit of a TQ1_0 byte at position n: bytes hold 5 (or 4) base-3 digits as a fixed-
 * point fraction q / 256 ~ value / 243, and digit n is the top digit of (q * 3^n mod 256). */
static int tq1_digit(uint8_t q, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t r = (uint8_t)(q * pow3[n]);
    return ((uint16_t)r * 3 >> 8) - 1;
}

/* TQ1_0: 256 weights in 54 bytes: qs[48] (5 ternary digits a byte), qh[4] (4 digits a byte),
 * fp16 d. Order: qs[0..32) digit n gives weights 32n + m; qs[32..48) digit n gives 160 + 16n + m;
 * qh digit n gives 240 + 4n + j. w = t * d, t in {-1, 0, 1}. */
static void blk_tq1_0(const uint8_t *p, float *y) {
    const float d = f16_at(p + 52);
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 32; m++) *y++ = (float)tq1_digit(p[m], n) * d;
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 16; m++) *y++ = (float)tq1_digit(p[32 + m], n) * d;
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) *y++ = (float)tq1_digit(p[48 + j], n) * d;
}

/* TQ2_0: 256 weights in 66 bytes: qs[64] of 2-bit codes, fp16 d. Each 32 bytes hold 128 weights,
 * 4 groups of 32 at shifts 0, 2, 4, 6. w = (q - 1) * d. */
static void blk_tq2_0(const uint8_t *p, float *y) {
    const float d = f16_at(p + 64);
    for (int j = 0; j < 64; j += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int m = 0; m < 32; m++) *y++ = (float)((p[j + m] >> shift & 3) - 1) * d;
}

/* ---- the type table ------------------------------------------------------------------------- */

#define DQ_BLOCKS(fn, blk, B, BYTES)                                                               \
    static void fn(const void *src, float *dst, size_t n) {                                        \
        const uint8_t *p = src;                                                                    \
        for (size_t b = 0; b < n / (B); b++) blk(p + b * (BYTES), dst + b * (B));                  \
    }

/* Reference dot of a block type: a block at a time through its decoder, one float accumulator,
 * elements in order. This is the specification; fast paths may sum in another order. */
#define DOT_BLOCKS(fn, blk, B, BYTES)                                                              \
    static float fn(const void *w, const float *x, size_t n) {                                     \
        float tmp[B], sum = 0.0f;                                                                  \
        const uint8_t *p = w;                                                                      \
        for (size_t b = 0; b < n / (B); b++) {                                                     \
            blk(p + b * (BYTES), tmp);                                                             \
            for (int j = 0; j < (B); j++) sum += tmp[j] * x[b * (B) + j];                          \
        }                                                                                          \
        return sum;                                                                                \
    }

#define TYPE_FNS(t, B, BYTES)                                                                      \
    DQ_BLOCKS(dq_##t, blk_##t, B, BYTES)                                                           \
    DOT_BLOCKS(dot_##t, blk_##t, B, BYTES)

static void dq_f32(const void *src, float *dst, size_t n) { memcpy(dst, src, n * sizeof(float)); }
DOT_BLOCKS(dot_f32, blk_f32, 1, 4)
TYPE_FNS(f16, 1, 2)
TYPE_FNS(bf16, 1, 2)
TYPE_FNS(q8_0, 32, 34)
DQ_BLOCKS(dq_q1_0, blk_q1_0, QK1_0, 18)
TYPE_FNS(q2_0, 64, 18)
TYPE_FNS(q4_0, 32, 18)
TYPE_FNS(q4_1, 32, 20)
TYPE_FNS(q5_0, 32, 22)
TYPE_FNS(q5_1, 32, 24)
TYPE_FNS(q2_k, QK_K, 84)
TYPE_FNS(q3_k, QK_K, 110)
TYPE_FNS(q4_k, QK_K, 144)
TYPE_FNS(q5_k, QK_K, 176)
TYPE_FNS(q6_k, QK_K, 210)
TYPE_FNS(tq1_0, QK_K, 54)
TYPE_FNS(tq2_0, QK_K, 66)

/* Q1_0 on the sign bits: per block d * sum(+-x), branch-free (random signs mispredict). */
static float dot_q1_0(const void *w, const float *x, size_t n) {
    static const float sign[2] = {-1.0f, 1.0f};
    const uint8_t *row = w;
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK1_0; b++) {
        const uint8_t *blk = row + b * sizeof(block_q1_0);
        const uint8_t *qs = blk + 2;
        const float *xb = x + b * QK1_0;
        float s = 0.0f;
        for (int j = 0; j < QK1_0; j++) s += sign[(qs[j >> 3] >> (j & 7)) & 1] * xb[j];
        sum += f16_at(blk) * s;
    }
    return sum;
}

static const ob_type_row TYPES[] = {
    {GGML_F32, "f32", 1, 4, dq_f32, dot_f32},
    {GGML_F16, "f16", 1, 2, dq_f16, dot_f16},
    {GGML_BF16, "bf16", 1, 2, dq_bf16, dot_bf16},
    {GGML_Q8_0, "q8_0", 32, 34, dq_q8_0, dot_q8_0},
    {GGML_Q4_0, "q4_0", 32, 18, dq_q4_0, dot_q4_0},
    {GGML_Q4_1, "q4_1", 32, 20, dq_q4_1, dot_q4_1},
    {GGML_Q5_0, "q5_0", 32, 22, dq_q5_0, dot_q5_0},
    {GGML_Q5_1, "q5_1", 32, 24, dq_q5_1, dot_q5_1},
    {GGML_Q2_K, "q2_K", QK_K, 84, dq_q2_k, dot_q2_k},
    {GGML_Q3_K, "q3_K", QK_K, 110, dq_q3_k, dot_q3_k},
    {GGML_Q4_K, "q4_K", QK_K, 144, dq_q4_k, dot_q4_k},
    {GGML_Q5_K, "q5_K", QK_K, 176, dq_q5_k, dot_q5_k},
    {GGML_Q6_K, "q6_K", QK_K, 210, dq_q6_k, dot_q6_k},
    {GGML_TQ1_0, "tq1_0", QK_K, 54, dq_tq1_0, dot_tq1_0},
    {GGML_TQ2_0, "tq2_0", QK_K, 66, dq_tq2_0, dot_tq2_0},
    {GGML_Q1_0, "q1_0", QK1_0, 18, dq_q1_0, dot_q1_0},
    {GGML_Q2_0, "q2_0", 64, 18, dq_q2_0, dot_q2_0},
};

const ob_type_row *ob_type_find(uint32_t type) {
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++)
        if (TYPES[i].type == type) return &TYPES[i];
    return NULL;
}

const ob_type_row *ob_type_at(int i) {
    return i >= 0 && (size_t)i < sizeof TYPES / sizeof *TYPES ? &TYPES[i] : NULL;
}

const char *ob_type_names(void) {
    return "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, tq1_0, tq2_0, q1_0, q2_0";
}

int ob_dequant_row(uint32_t type, const void *src, float *dst, size_t n) {
    const ob_type_row *r = ob_type_find(type);
    if (!r) return -1;
    r->dequant(src, dst, n);
    return 0;
}
