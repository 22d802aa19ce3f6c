/* quantize.c — float weights to GGUF block types (see quantize.h).
 *
 * The reference-matching quantisers keep ggml's order of float operations (sequential sums in
 * float, a reciprocal scale then one multiply per weight) because llama-quantize's output is the
 * standard the tests hold them to byte for byte. Block layouts are those quant.c decodes.
 */
#include "quantize.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

#include "gguf.h"
#include "quant.h"

static void put_f16(uint8_t *p, float v) {
    const uint16_t h = ob_f32_to_fp16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* ---- float formats ----------------------------------------------------------------------------- */

static void q_f32(const float *x, void *dst, size_t n) { memcpy(dst, x, n * sizeof *x); }

static void q_f16(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t i = 0; i < n; i++) put_f16(p + 2 * i, x[i]);
}

/* bfloat16: the top half of the float rounded to nearest even; NaNs stay quiet NaNs. */
static void q_bf16(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint16_t h;
        if ((u & 0x7fffffffu) > 0x7f800000u) h = (uint16_t)(u >> 16 | 64);
        else h = (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
        p[2 * i] = (uint8_t)h;
        p[2 * i + 1] = (uint8_t)(h >> 8);
    }
}

/* ---- ggml's reference block quantisers ----------------------------------------------------------- */

/* Q8_0: d = max |x| / 127, q = round(x / d) (as x times the float reciprocal). */
static void q_q8_0(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t b = 0; b < n / 32; b++, x += 32, p += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(p, d);
        for (int j = 0; j < 32; j++) p[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

/* Q4_0: d = (the value of largest magnitude, sign kept) / -8, q = x / d + 8 truncated after
 * adding one half, at most 15; the first 16 weights in the low nibbles, the next 16 in the high. */
static void q_q4_0(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t b = 0; b < n / 32; b++, x += 32, p += 18) {
        float amax = 0.0f, vmax = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                vmax = x[j];
            }
        }
        const float d = vmax / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(p, d);
        for (int j = 0; j < 16; j++) {
            const float lo = x[j] * id, hi = x[j + 16] * id;
            int qlo = (int8_t)(lo + 8.5f), qhi = (int8_t)(hi + 8.5f);
            if (qlo > 15) qlo = 15;
            if (qhi > 15) qhi = 15;
            p[2 + j] = (uint8_t)((qlo & 15) | (qhi & 15) << 4);
        }
    }
}

/* Q1_0: d = mean |x| over the block of 128 (a float sum in order), bit set where x >= 0. */
static void q_q1_0(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t b = 0; b < n / 128; b++, x += 128, p += 18) {
        float sum = 0.0f;
        for (int j = 0; j < 128; j++) sum += fabsf(x[j]);
        put_f16(p, sum / 128.0f);
        memset(p + 2, 0, 16);
        for (int j = 0; j < 128; j++)
            if (x[j] >= 0.0f) p[2 + j / 8] |= (uint8_t)(1u << (j % 8));
    }
}

/* Q2_0: d = max |x| over the block of 64, code round(x / d) + 1 clamped to 0..3 (w = (code - 1) d),
 * four codes a byte from the low bits up. */
static void q_q2_0(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t b = 0; b < n / 64; b++, x += 64, p += 18) {
        float amax = 0.0f;
        for (int j = 0; j < 64; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
        const float id = amax > 0.0f ? 1.0f / amax : 0.0f;
        put_f16(p, amax);
        memset(p + 2, 0, 16);
        for (int j = 0; j < 64; j++) {
            int q = (int)roundf(x[j] * id) + 1;
            q = q < 0 ? 0 : q > 3 ? 3 : q;
            p[2 + j / 4] |= (uint8_t)(q << (j % 4 * 2));
        }
    }
}

/* ---- Q4_K ----------------------------------------------------------------------------------------
 * 256 weights: 8 sub-blocks of 32, each w = s q - m with q in 0..15, s >= 0, m >= 0, where
 * s = d * sc and m = dmin * mn with 6-bit sc, mn and fp16 d, dmin per 256. Per sub-block, (s, m)
 * is the least-squares fit of x by s q - m for the codes q that one of several candidate ranges
 * gives, refined once with the codes the best fit gives; then d and dmin are chosen for the
 * largest s and m, and the codes recomputed with the 6-bit scales. */

typedef struct fit { float s, m, err; } fit;

/* Least-squares s, m (m >= 0) for codes q of x, and the squared error. */
static fit ls_fit(const float *x, const uint8_t *q, int n) {
    double sq = 0, sx = 0, sqq = 0, sqx = 0;
    for (int i = 0; i < n; i++) {
        sq += q[i];
        sx += x[i];
        sqq += (double)q[i] * q[i];
        sqx += (double)q[i] * x[i];
    }
    const double den = n * sqq - sq * sq;
    double s = den > 0 ? (n * sqx - sq * sx) / den : 0, b = (sx - s * sq) / n;
    if (b > 0) { /* the offset must be <= 0 (m >= 0): fit the scale alone */
        b = 0;
        s = sqq > 0 ? sqx / sqq : 0;
    }
    if (s < 0) { s = 0; b = sx / n > 0 ? 0 : sx / n; }
    double err = 0;
    for (int i = 0; i < n; i++) {
        const double e = s * q[i] + b - x[i];
        err += e * e;
    }
    return (fit){(float)s, (float)-b, (float)err};
}

static void codes(const float *x, int n, float s, float m, uint8_t *q) {
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) {
        const int v = (int)lrintf((x[i] + m) * inv);
        q[i] = (uint8_t)(v < 0 ? 0 : v > 15 ? 15 : v);
    }
}

static fit fit_sub(const float *x) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < 32; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    if (lo > 0) lo = 0;
    if (hi <= lo) return (fit){0, -lo, 0};
    uint8_t q[32];
    fit best = {0, 0, INFINITY};
    for (int k = -6; k <= 6; k++) { /* candidate ranges: 15 + k/4 steps over [lo, hi] */
        const float step = (hi - lo) / (15.0f + 0.25f * (float)k);
        codes(x, 32, step, -lo, q);
        const fit f = ls_fit(x, q, 32);
        if (f.err < best.err) best = f;
    }
    codes(x, 32, best.s, best.m, q);
    const fit f = ls_fit(x, q, 32);
    return f.err < best.err ? f : best;
}

static void q_q4_k(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t b = 0; b < n / 256; b++, x += 256, p += 144) {
        fit f[8];
        float smax = 0, mmax = 0;
        for (int j = 0; j < 8; j++) {
            f[j] = fit_sub(x + 32 * j);
            smax = fmaxf(smax, f[j].s);
            mmax = fmaxf(mmax, f[j].m);
        }
        put_f16(p, smax / 63.0f);
        put_f16(p + 2, mmax / 63.0f);
        const float d = ob_fp16_to_f32((uint16_t)(p[0] | p[1] << 8));
        const float dmin = ob_fp16_to_f32((uint16_t)(p[2] | p[3] << 8));
        uint8_t *sc = p + 4, *qs = p + 16;
        memset(sc, 0, 12);
        uint8_t q[256];
        for (int j = 0; j < 8; j++) {
            int s6 = d > 0 ? (int)lrintf(f[j].s / d) : 0, m6 = dmin > 0 ? (int)lrintf(f[j].m / dmin) : 0;
            s6 = s6 > 63 ? 63 : s6;
            m6 = m6 > 63 ? 63 : m6;
            if (j < 4) {
                sc[j] |= (uint8_t)s6;
                sc[j + 4] |= (uint8_t)m6;
            } else {
                sc[j + 4] = (uint8_t)((s6 & 15) | (m6 & 15) << 4);
                sc[j - 4] |= (uint8_t)((s6 >> 4) << 6);
                sc[j] |= (uint8_t)((m6 >> 4) << 6);
            }
            /* the codes for the scales as stored, computed as the decoder forms them */
            const float ds = d * (float)s6, dm = dmin * (float)m6;
            codes(x + 32 * j, 32, ds, dm, q + 32 * j);
        }
        for (int i = 0; i < 4; i++)
            for (int l = 0; l < 32; l++) qs[32 * i + l] = (uint8_t)(q[64 * i + l] | q[64 * i + 32 + l] << 4);
    }
}

/* ---- the table --------------------------------------------------------------------------------- */

static const ob_quantizer QUANTIZERS[] = {
    {GGML_F32, "f32", 1, 4, 0, q_f32},
    {GGML_F16, "f16", 1, 2, 1, q_f16},
    {GGML_BF16, "bf16", 1, 2, 32, q_bf16},
    {GGML_Q8_0, "q8_0", 32, 34, 7, q_q8_0},
    {GGML_Q4_0, "q4_0", 32, 18, 2, q_q4_0},
    {GGML_Q4_K, "q4_K", 256, 144, 14, q_q4_k},
    {GGML_Q2_0, "q2_0", 64, 18, 41, q_q2_0},
    {GGML_Q1_0, "q1_0", 128, 18, 40, q_q1_0},
};
#define N_QUANTIZERS (sizeof QUANTIZERS / sizeof QUANTIZERS[0])

const ob_quantizer *ob_quantizer_find(uint32_t type) {
    for (size_t i = 0; i < N_QUANTIZERS; i++)
        if (QUANTIZERS[i].type == type) return &QUANTIZERS[i];
    return NULL;
}

const ob_quantizer *ob_quantizer_by_name(const char *name) {
    for (size_t i = 0; i < N_QUANTIZERS; i++) {
        const char *a = QUANTIZERS[i].name, *b = name;
        while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return &QUANTIZERS[i];
    }
    return NULL;
}

const char *ob_quantizer_names(void) { return "f32, f16, bf16, q8_0, q4_0, q4_K, q2_0, q1_0"; }
