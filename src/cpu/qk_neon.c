/* qk_neon.c — qk.h's kernels for AArch64 NEON: the ARMv8.2 dot product (sdot) where the compiler
 * targets it, else vmull + vpadal (the same int32 sums). Per block the codes become signed bytes
 * (offsets subtracted: Q4_0's 8, Q5_0's 16, Q6_K's 32), 16 at a time, so that one group of 16 is
 * one int8x16 vector: a Q6_K scale group, half a sub-block elsewhere. K-quant sub-block sums are
 * scaled by their integer scale in int32, converted once per super-block. The minimums (Q4_1,
 * Q5_1, Q4_K, Q5_K) come from the activations' sums per 16 in scalar code. Other architectures
 * build this file as an empty table. */
#include "qk.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>

#include "gguf.h"
#include "quant.h"

#define QK_FN(name) qkn_##name
#include "qk_rows.h"

#define QN_XI static inline __attribute__((always_inline))

QN_XI int32x4_t qn_dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    /* |a b| <= 128 * 127: a pair of products fits int16 */
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b));
#endif
}

QN_XI float qn_h(const uint8_t *p) { return ob_fp16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* 0x10 in byte i where bit (i + base) of qh is set, for 16 bytes. */
QN_XI uint8x16_t qn_bit5(uint32_t qh, int base) {
    static const uint8_t m[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)(qh >> base)), vdup_n_u8((uint8_t)(qh >> (base + 8))));
    return vandq_u8(vtstq_u8(v, vld1q_u8(m)), vdupq_n_u8(16));
}

/* kind: 0 Q8_0, 1 Q4_0, 2 Q4_1, 3 Q5_0, 4 Q5_1 */
QN_XI void qn_tile32(const int kind, const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    static const int bytes[5] = {34, 18, 20, 22, 24};
    float32x4_t acc[QK_TILE_NT];
    float macc[QK_TILE_NT];
    for (int t = 0; t < nt; t++) acc[t] = vdupq_n_f32(0.0f), macc[t] = 0.0f;
    for (int b = 0; b < nb; b++, w += bytes[kind]) {
        const float dw = qn_h(w);
        int8x16_t w0, w1;
        if (kind == 0) {
            w0 = vld1q_s8((const int8_t *)w + 2);
            w1 = vld1q_s8((const int8_t *)w + 18);
        } else {
            const int off = kind == 1 ? 2 : kind == 2 ? 4 : kind == 3 ? 6 : 8;
            const uint8x16_t raw = vld1q_u8(w + off);
            uint8x16_t lo = vandq_u8(raw, vdupq_n_u8(15)), hi = vshrq_n_u8(raw, 4);
            if (kind >= 3) {
                uint32_t qh;
                memcpy(&qh, w + (kind == 3 ? 2 : 4), 4);
                lo = vorrq_u8(lo, qn_bit5(qh, 0));
                hi = vorrq_u8(hi, qn_bit5(qh, 16));
            }
            w0 = vreinterpretq_s8_u8(lo);
            w1 = vreinterpretq_s8_u8(hi);
            if (kind == 1 || kind == 3) {
                const int8x16_t o = vdupq_n_s8(kind == 1 ? 8 : 16);
                w0 = vsubq_s8(w0, o);
                w1 = vsubq_s8(w1, o);
            }
        }
        const float mw = kind == 2 || kind == 4 ? qn_h(w + 2) : 0.0f;
        for (int t = 0; t < nt; t++) {
            const int8_t *xq = tk[t].q + 32 * b;
            const int32x4_t p = qn_dot(qn_dot(vdupq_n_s32(0), w0, vld1q_s8(xq)), w1, vld1q_s8(xq + 16));
            const float dx = tk[t].d[b];
            acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(p), dw * dx);
            if (kind == 2 || kind == 4) macc[t] += mw * dx * (float)(tk[t].s[2 * b] + tk[t].s[2 * b + 1]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = vaddvq_f32(acc[t]) + macc[t];
}

/* Q4_K / Q5_K (q5 set). */
QN_XI void qn_tile_k45(const int q5, const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    float32x4_t acc[QK_TILE_NT];
    for (int t = 0; t < nt; t++) acc[t] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++, w += q5 ? 176 : 144) {
        const float d = qn_h(w), dmin = qn_h(w + 2);
        uint32_t u[4];
        memcpy(u, w + 4, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
        const uint32_t mins_lo = u[1] & 0x3f3f3f3fu;
        u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
        u[2] = mins_lo;
        u[0] &= 0x3f3f3f3fu;
        uint8_t sm[16]; /* scales 0..7, mins 8..15 */
        memcpy(sm, u, 16);
        const uint8_t *qs = w + (q5 ? 48 : 16);
        uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
        if (q5) h0 = vld1q_u8(w + 16), h1 = vld1q_u8(w + 32);
        int32x4_t isum[QK_TILE_NT];
        for (int t = 0; t < nt; t++) isum[t] = vdupq_n_s32(0);
        for (int i = 0; i < 4; i++) {
            const uint8x16_t r0 = vld1q_u8(qs + 32 * i), r1 = vld1q_u8(qs + 32 * i + 16);
            uint8x16_t l0 = vandq_u8(r0, vdupq_n_u8(15)), l1 = vandq_u8(r1, vdupq_n_u8(15));
            uint8x16_t g0 = vshrq_n_u8(r0, 4), g1 = vshrq_n_u8(r1, 4);
            if (q5) {
                const uint8x16_t bl = vdupq_n_u8((uint8_t)(1u << (2 * i))), bh = vdupq_n_u8((uint8_t)(2u << (2 * i)));
                const uint8x16_t s16 = vdupq_n_u8(16);
                l0 = vorrq_u8(l0, vandq_u8(vtstq_u8(h0, bl), s16));
                l1 = vorrq_u8(l1, vandq_u8(vtstq_u8(h1, bl), s16));
                g0 = vorrq_u8(g0, vandq_u8(vtstq_u8(h0, bh), s16));
                g1 = vorrq_u8(g1, vandq_u8(vtstq_u8(h1, bh), s16));
            }
            const int sl = sm[2 * i], sh = sm[2 * i + 1];
            for (int t = 0; t < nt; t++) {
                const int8_t *xq = tk[t].q + 256 * b + 64 * i;
                const int32x4_t pl = qn_dot(qn_dot(vdupq_n_s32(0), vreinterpretq_s8_u8(l0), vld1q_s8(xq)),
                                            vreinterpretq_s8_u8(l1), vld1q_s8(xq + 16));
                const int32x4_t ph = qn_dot(qn_dot(vdupq_n_s32(0), vreinterpretq_s8_u8(g0), vld1q_s8(xq + 32)),
                                            vreinterpretq_s8_u8(g1), vld1q_s8(xq + 48));
                isum[t] = vmlaq_n_s32(vmlaq_n_s32(isum[t], pl, sl), ph, sh);
            }
        }
        for (int t = 0; t < nt; t++) {
            const int16_t *bs = tk[t].s + 16 * b;
            int msum = 0;
            for (int s = 0; s < 8; s++) msum += sm[8 + s] * (bs[2 * s] + bs[2 * s + 1]);
            const float dx = tk[t].d[b];
            acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(isum[t]), d * dx);
            acc[t] = vsetq_lane_f32(vgetq_lane_f32(acc[t], 0) - dmin * dx * (float)msum, acc[t], 0);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = vaddvq_f32(acc[t]);
}

QN_XI void qn_tile_q6k(const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    float32x4_t acc[QK_TILE_NT];
    for (int t = 0; t < nt; t++) acc[t] = vdupq_n_f32(0.0f);
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    const int8x16_t o32 = vdupq_n_s8(32);
    for (int b = 0; b < nb; b++, w += 210) {
        const float d = qn_h(w + 208);
        const int8_t *sc = (const int8_t *)(w + 192);
        int32x4_t isum[QK_TILE_NT];
        for (int t = 0; t < nt; t++) isum[t] = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
            for (int j = 0; j < 2; j++) { /* weights l = 16 j .. 16 j + 15 of each group of 32 */
                const uint8x16_t a = vld1q_u8(ql + 16 * j), c = vld1q_u8(ql + 32 + 16 * j), hb = vld1q_u8(qh + 16 * j);
                int8x16_t uk[4];
                uk[0] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(a, m4), vshlq_n_u8(vandq_u8(hb, m3), 4))), o32);
                uk[1] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(c, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4))), o32);
                uk[2] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(a, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4))), o32);
                uk[3] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(c, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4))), o32);
                for (int k = 0; k < 4; k++) {
                    const int s = sc[8 * h + 2 * k + j];
                    for (int t = 0; t < nt; t++)
                        isum[t] = vmlaq_n_s32(isum[t],
                                              qn_dot(vdupq_n_s32(0), uk[k], vld1q_s8(tk[t].q + 256 * b + 128 * h + 32 * k + 16 * j)), s);
                }
            }
        }
        for (int t = 0; t < nt; t++) acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(isum[t]), d * tk[t].d[b]);
    }
    for (int t = 0; t < nt; t++) out[t] = vaddvq_f32(acc[t]);
}

#define QK_C_Q8_0(w, nb, tk, nt, o) qn_tile32(0, w, nb, tk, nt, o)
#define QK_C_Q4_0(w, nb, tk, nt, o) qn_tile32(1, w, nb, tk, nt, o)
#define QK_C_Q4_1(w, nb, tk, nt, o) qn_tile32(2, w, nb, tk, nt, o)
#define QK_C_Q5_0(w, nb, tk, nt, o) qn_tile32(3, w, nb, tk, nt, o)
#define QK_C_Q5_1(w, nb, tk, nt, o) qn_tile32(4, w, nb, tk, nt, o)
#define QK_C_Q4_K(w, nb, tk, nt, o) qn_tile_k45(0, w, nb, tk, nt, o)
#define QK_C_Q5_K(w, nb, tk, nt, o) qn_tile_k45(1, w, nb, tk, nt, o)
#define QK_C_Q6_K(w, nb, tk, nt, o) qn_tile_q6k(w, nb, tk, nt, o)

QK_ROWS(q8_0, QK_C_Q8_0)
QK_ROWS(q4_0, QK_C_Q4_0)
QK_ROWS(q4_1, QK_C_Q4_1)
QK_ROWS(q5_0, QK_C_Q5_0)
QK_ROWS(q5_1, QK_C_Q5_1)
QK_ROWS(q4_k, QK_C_Q4_K)
QK_ROWS(q5_k, QK_C_Q5_K)
QK_ROWS(q6_k, QK_C_Q6_K)

static const qk_kern qkn_kerns[] = {
    {GGML_Q8_0, QK_ACT32, qkn_q8_0, NULL},   {GGML_Q4_0, QK_ACT32, qkn_q4_0, NULL},   {GGML_Q4_1, QK_ACT32, qkn_q4_1, NULL},
    {GGML_Q5_0, QK_ACT32, qkn_q5_0, NULL},   {GGML_Q5_1, QK_ACT32, qkn_q5_1, NULL},   {GGML_Q4_K, QK_ACT256, qkn_q4_k, NULL},
    {GGML_Q5_K, QK_ACT256, qkn_q5_k, NULL},  {GGML_Q6_K, QK_ACT256, qkn_q6_k, NULL},  {0, 0, NULL, NULL},
};

static int qkn_supported(void) { return 1; } /* NEON is part of AArch64; sdot only where compiled for */

const qk_isa qk_isa_neon = {.name = "neon", .compiled = 1, .supported = qkn_supported, .kerns = qkn_kerns};
#else
const qk_isa qk_isa_neon = {.name = "neon", .compiled = 0};
#endif
