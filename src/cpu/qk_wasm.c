/* qk_wasm.c — qk.h's kernels for WebAssembly SIMD128: the NEON file's scheme (qk_neon.c) with
 * wasm's only integer dot product, i32x4.dot_i16x8_s, on the bytes widened to int16 (a byte dot of
 * 16 costs two widenings per side and two dots). Per block the codes become signed bytes (offsets
 * subtracted), 16 at a time; K-quant sub-block sums are scaled in int32 and converted once per
 * super-block; the minimums come from the activations' sums per 16 in scalar code. Other targets
 * build this file as an empty table. */
#include "qk.h"

#if defined(__wasm_simd128__)
#include <string.h>
#include <wasm_simd128.h>

#include "gguf.h"
#include "quant.h"

#define QK_FN(name) qkw_##name
#include "qk_rows.h"

#define QN_XI static inline __attribute__((always_inline))
typedef v128_t V;

QN_XI V qn_dot(V acc, V a, V b) {
    acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b)));
    return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b)));
}

QN_XI float qn_h(const uint8_t *p) { return ob_fp16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

QN_XI float qn_hsum(V v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/* 16 in byte i where (v & m) is non-zero, for each byte. */
QN_XI V qn_tst16(V v, V m) { return wasm_v128_andnot(wasm_i8x16_splat(16), wasm_i8x16_eq(wasm_v128_and(v, m), wasm_i8x16_splat(0))); }

/* 0x10 in byte i where bit (i + base) of qh is set, for 16 bytes. */
QN_XI V qn_bit5(uint32_t qh, int base) {
    const uint64_t b0 = (uint8_t)(qh >> base), b1 = (uint8_t)(qh >> (base + 8));
    const V v = wasm_i64x2_make((int64_t)(b0 * 0x0101010101010101ull), (int64_t)(b1 * 0x0101010101010101ull));
    return qn_tst16(v, wasm_i64x2_splat((int64_t)0x8040201008040201ull));
}

/* kind: 0 Q8_0, 1 Q4_0, 2 Q4_1, 3 Q5_0, 4 Q5_1 */
QN_XI void qn_tile32(const int kind, const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    static const int bytes[5] = {34, 18, 20, 22, 24};
    V acc[QK_NT];
    float macc[QK_NT];
    for (int t = 0; t < nt; t++) acc[t] = wasm_f32x4_splat(0.0f), macc[t] = 0.0f;
    for (int b = 0; b < nb; b++, w += bytes[kind]) {
        const float dw = qn_h(w);
        V w0, w1;
        if (kind == 0) {
            w0 = wasm_v128_load(w + 2);
            w1 = wasm_v128_load(w + 18);
        } else {
            const int off = kind == 1 ? 2 : kind == 2 ? 4 : kind == 3 ? 6 : 8;
            const V raw = wasm_v128_load(w + off);
            V lo = wasm_v128_and(raw, wasm_u8x16_splat(15)), hi = wasm_u8x16_shr(raw, 4);
            if (kind >= 3) {
                uint32_t qh;
                memcpy(&qh, w + (kind == 3 ? 2 : 4), 4);
                lo = wasm_v128_or(lo, qn_bit5(qh, 0));
                hi = wasm_v128_or(hi, qn_bit5(qh, 16));
            }
            w0 = (lo);
            w1 = (hi);
            if (kind == 1 || kind == 3) {
                const V o = wasm_i8x16_splat(kind == 1 ? 8 : 16);
                w0 = wasm_i8x16_sub(w0, o);
                w1 = wasm_i8x16_sub(w1, o);
            }
        }
        const float mw = kind == 2 || kind == 4 ? qn_h(w + 2) : 0.0f;
        for (int t = 0; t < nt; t++) {
            const int8_t *xq = tk[t].q + 32 * b;
            const V p = qn_dot(qn_dot(wasm_i32x4_splat(0), w0, wasm_v128_load(xq)), w1, wasm_v128_load(xq + 16));
            const float dx = tk[t].d[b];
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(p), wasm_f32x4_splat(dw * dx)));
            if (kind == 2 || kind == 4) macc[t] += mw * dx * (float)(tk[t].s[2 * b] + tk[t].s[2 * b + 1]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = qn_hsum(acc[t]) + macc[t];
}

/* Q4_K / Q5_K (q5 set). */
QN_XI void qn_tile_k45(const int q5, const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    V acc[QK_NT];
    for (int t = 0; t < nt; t++) acc[t] = wasm_f32x4_splat(0.0f);
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
        V h0 = wasm_u8x16_splat(0), h1 = wasm_u8x16_splat(0);
        if (q5) h0 = wasm_v128_load(w + 16), h1 = wasm_v128_load(w + 32);
        V isum[QK_NT];
        for (int t = 0; t < nt; t++) isum[t] = wasm_i32x4_splat(0);
        for (int i = 0; i < 4; i++) {
            const V r0 = wasm_v128_load(qs + 32 * i), r1 = wasm_v128_load(qs + 32 * i + 16);
            V l0 = wasm_v128_and(r0, wasm_u8x16_splat(15)), l1 = wasm_v128_and(r1, wasm_u8x16_splat(15));
            V g0 = wasm_u8x16_shr(r0, 4), g1 = wasm_u8x16_shr(r1, 4);
            if (q5) {
                const V bl = wasm_u8x16_splat((uint8_t)(1u << (2 * i))), bh = wasm_u8x16_splat((uint8_t)(2u << (2 * i)));
                l0 = wasm_v128_or(l0, qn_tst16(h0, bl));
                l1 = wasm_v128_or(l1, qn_tst16(h1, bl));
                g0 = wasm_v128_or(g0, qn_tst16(h0, bh));
                g1 = wasm_v128_or(g1, qn_tst16(h1, bh));
            }
            const int sl = sm[2 * i], sh = sm[2 * i + 1];
            for (int t = 0; t < nt; t++) {
                const int8_t *xq = tk[t].q + 256 * b + 64 * i;
                const V pl = qn_dot(qn_dot(wasm_i32x4_splat(0), (l0), wasm_v128_load(xq)),
                                            (l1), wasm_v128_load(xq + 16));
                const V ph = qn_dot(qn_dot(wasm_i32x4_splat(0), (g0), wasm_v128_load(xq + 32)),
                                            (g1), wasm_v128_load(xq + 48));
                isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_add(wasm_i32x4_mul(pl, wasm_i32x4_splat(sl)), wasm_i32x4_mul(ph, wasm_i32x4_splat(sh))));
            }
        }
        for (int t = 0; t < nt; t++) {
            const int16_t *bs = tk[t].s + 16 * b;
            int msum = 0;
            for (int s = 0; s < 8; s++) msum += sm[8 + s] * (bs[2 * s] + bs[2 * s + 1]);
            const float dx = tk[t].d[b];
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum[t]), wasm_f32x4_splat(d * dx)));
            acc[t] = wasm_f32x4_replace_lane(acc[t], 0, wasm_f32x4_extract_lane(acc[t], 0) - dmin * dx * (float)msum);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = qn_hsum(acc[t]);
}

QN_XI void qn_tile_q6k(const uint8_t *w, int nb, const qk_tok *tk, const int nt, float *out) {
    V acc[QK_NT];
    for (int t = 0; t < nt; t++) acc[t] = wasm_f32x4_splat(0.0f);
    const V m4 = wasm_u8x16_splat(15), m3 = wasm_u8x16_splat(3);
    const V o32 = wasm_i8x16_splat(32);
    for (int b = 0; b < nb; b++, w += 210) {
        const float d = qn_h(w + 208);
        const int8_t *sc = (const int8_t *)(w + 192);
        V isum[QK_NT];
        for (int t = 0; t < nt; t++) isum[t] = wasm_i32x4_splat(0);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
            for (int j = 0; j < 2; j++) { /* weights l = 16 j .. 16 j + 15 of each group of 32 */
                const V a = wasm_v128_load(ql + 16 * j), c = wasm_v128_load(ql + 32 + 16 * j), hb = wasm_v128_load(qh + 16 * j);
                V uk[4];
                uk[0] = wasm_i8x16_sub((wasm_v128_or(wasm_v128_and(a, m4), wasm_i8x16_shl(wasm_v128_and(hb, m3), 4))), o32);
                uk[1] = wasm_i8x16_sub((wasm_v128_or(wasm_v128_and(c, m4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 2), m3), 4))), o32);
                uk[2] = wasm_i8x16_sub((wasm_v128_or(wasm_u8x16_shr(a, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hb, 4), m3), 4))), o32);
                uk[3] = wasm_i8x16_sub((wasm_v128_or(wasm_u8x16_shr(c, 4), wasm_i8x16_shl(wasm_u8x16_shr(hb, 6), 4))), o32);
                for (int k = 0; k < 4; k++) {
                    const int s = sc[8 * h + 2 * k + j];
                    for (int t = 0; t < nt; t++)
                        isum[t] = wasm_i32x4_add(isum[t], wasm_i32x4_mul(qn_dot(wasm_i32x4_splat(0), uk[k], wasm_v128_load(tk[t].q + 256 * b + 128 * h + 32 * k + 16 * j)),
                                                                     wasm_i32x4_splat(s)));
                }
            }
        }
        for (int t = 0; t < nt; t++) acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(isum[t]), wasm_f32x4_splat(d * tk[t].d[b])));
    }
    for (int t = 0; t < nt; t++) out[t] = qn_hsum(acc[t]);
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

static const qk_kern qkw_kerns[] = {
    {GGML_Q8_0, QK_ACT32, qkw_q8_0, NULL},   {GGML_Q4_0, QK_ACT32, qkw_q4_0, NULL},   {GGML_Q4_1, QK_ACT32, qkw_q4_1, NULL},
    {GGML_Q5_0, QK_ACT32, qkw_q5_0, NULL},   {GGML_Q5_1, QK_ACT32, qkw_q5_1, NULL},   {GGML_Q4_K, QK_ACT256, qkw_q4_k, NULL},
    {GGML_Q5_K, QK_ACT256, qkw_q5_k, NULL},  {GGML_Q6_K, QK_ACT256, qkw_q6_k, NULL},  {0, 0, NULL, NULL},
};

static int qkw_supported(void) { return 1; } /* compiled with SIMD128: the engine requires it */

const qk_isa qk_isa_wasm = {.name = "wasm", .compiled = 1, .supported = qkw_supported, .kerns = qkw_kerns};
#else
const qk_isa qk_isa_wasm = {.name = "wasm", .compiled = 0};
#endif
