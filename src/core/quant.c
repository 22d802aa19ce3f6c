/* quant.c — reference element formats: half-precision conversions, row dequantisation, and the
 * Q1_0 quantiser used by the model writers. Plain scalar code; the specification for fast paths. */
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

int ob_dequant_row(uint32_t type, const void *src, float *dst, size_t n) {
    const uint8_t *p = src;
    switch (type) {
    case GGML_F32:
        memcpy(dst, src, n * sizeof(float));
        return 0;
    case GGML_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = ob_fp16_to_f32(h); }
        return 0;
    case GGML_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = ob_bf16_to_f32(h); }
        return 0;
    case GGML_Q8_0:
        for (size_t b = 0; b < n / QK8_0; b++) {
            block_q8_0 blk;
            memcpy(&blk, p + b * sizeof blk, sizeof blk);
            float d = ob_fp16_to_f32(blk.d);
            for (int j = 0; j < QK8_0; j++) dst[b * QK8_0 + j] = d * (float)blk.qs[j];
        }
        return 0;
    case GGML_Q1_0:
        for (size_t b = 0; b < n / QK1_0; b++) {
            block_q1_0 blk;
            memcpy(&blk, p + b * sizeof blk, sizeof blk);
            float d = ob_fp16_to_f32(blk.d);
            for (int j = 0; j < QK1_0; j++) dst[b * QK1_0 + j] = (blk.qs[j >> 3] >> (j & 7)) & 1 ? d : -d;
        }
        return 0;
    default:
        return -1;
    }
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

/* ---- the type table ------------------------------------------------------------------------- */

static void dq_f32(const void *src, float *dst, size_t n) { ob_dequant_row(GGML_F32, src, dst, n); }
static void dq_f16(const void *src, float *dst, size_t n) { ob_dequant_row(GGML_F16, src, dst, n); }
static void dq_bf16(const void *src, float *dst, size_t n) { ob_dequant_row(GGML_BF16, src, dst, n); }
static void dq_q8_0(const void *src, float *dst, size_t n) { ob_dequant_row(GGML_Q8_0, src, dst, n); }
static void dq_q1_0(const void *src, float *dst, size_t n) { ob_dequant_row(GGML_Q1_0, src, dst, n); }

/* Reference dot of any type: a block at a time through its dequantisation. */
#define DOT_VIA(fn, dq, blk, bytes)                                                                   \
    static float fn(const void *w, const float *x, size_t n) {                                     \
        float tmp[blk], sum = 0.0f;                                                                 \
        for (size_t b = 0; b < n / (blk); b++) {                                                    \
            dq((const uint8_t *)w + b * (bytes), tmp, blk);                                         \
            for (int j = 0; j < (blk); j++) sum += tmp[j] * x[b * (blk) + j];                       \
        }                                                                                           \
        return sum;                                                                                 \
    }
DOT_VIA(dot_f32, dq_f32, 1, 4)
DOT_VIA(dot_f16, dq_f16, 1, 2)
DOT_VIA(dot_bf16, dq_bf16, 1, 2)
DOT_VIA(dot_q8_0, dq_q8_0, QK8_0, 34)

/* Q1_0 on the sign bits: per block d * sum(+-x), branch-free (random signs mispredict). */
static float dot_q1_0(const void *w, const float *x, size_t n) {
    static const float sign[2] = {-1.0f, 1.0f};
    const uint8_t *row = w;
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK1_0; b++) {
        const uint8_t *blk = row + b * sizeof(block_q1_0);
        uint16_t dh;
        memcpy(&dh, blk, 2);
        const uint8_t *qs = blk + 2;
        const float *xb = x + b * QK1_0;
        float s = 0.0f;
        for (int j = 0; j < QK1_0; j++) s += sign[(qs[j >> 3] >> (j & 7)) & 1] * xb[j];
        sum += ob_fp16_to_f32(dh) * s;
    }
    return sum;
}

static const ob_type_row TYPES[] = {
    {GGML_F32, "f32", 1, 4, dq_f32, dot_f32},
    {GGML_F16, "f16", 1, 2, dq_f16, dot_f16},
    {GGML_BF16, "bf16", 1, 2, dq_bf16, dot_bf16},
    {GGML_Q8_0, "q8_0", QK8_0, 34, dq_q8_0, dot_q8_0},
    {GGML_Q1_0, "q1_0", QK1_0, 18, dq_q1_0, dot_q1_0},
};

const ob_type_row *ob_type_find(uint32_t type) {
    for (size_t i = 0; i < sizeof TYPES / sizeof *TYPES; i++)
        if (TYPES[i].type == type) return &TYPES[i];
    return NULL;
}

const char *ob_type_names(void) { return "f32, f16, bf16, q8_0, q1_0"; }
