/* cpu_wasm.c — the CPU kernels for WebAssembly SIMD128 (built with -msimd128).
 *
 * Same tiles and arithmetic as the other files, a quarter tile (4 rows, 16 bytes per group) at a
 * time: the quarter's 16 mask bits become 16 bytes of 0xFF/0x00 (swizzle picks each byte's mask
 * byte, AND isolates its bit, compare makes it a full byte), AND selects the activations, and
 * pairwise widening adds sum them into 16-bit lanes (at most 32 * 2 * 127 = 8128 per block), then
 * one int32 per row per block; two activation planes (int16) take two of each. SIMD128 has no
 * fused multiply-add, so the float steps round twice (well inside the tests' tolerance). Single-
 * threaded in the browser (no wasm threads), so the kernels are the whole speed-up there. Without
 * SIMD128 this file only defines an empty table. Tested under Node (tests/wasm-kernels.sh).
 */
#include "cpu_kern.h"

#if defined(__wasm_simd128__)
#define WASM_ON 1
#include <math.h>
#include <string.h>
#include <wasm_simd128.h>

#include "quant.h"

#define WASM_INLINE static inline __attribute__((always_inline))

static int wasm_supported(void) { return 1; } /* the module would not have loaded without SIMD */

/* ---- activation quantisation ----------------------------------------------------------------- */

WASM_INLINE v128_t wasm_narrow8(v128_t a, v128_t b, v128_t c, v128_t d) {
    return wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, d));
}

static void wasm_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    const float K = ql ? CK_K16 : CK_K8;
    for (int b = 0; b < cols / CK_BLK; b++) {
        const float *xb = x + (size_t)b * CK_BLK;
        v128_t mx = wasm_f32x4_splat(0.0f);
        for (int i = 0; i < 32; i++) mx = wasm_f32x4_max(mx, wasm_f32x4_abs(wasm_v128_load(xb + 4 * i)));
        const float amax = fmaxf(fmaxf(wasm_f32x4_extract_lane(mx, 0), wasm_f32x4_extract_lane(mx, 1)),
                                 fmaxf(wasm_f32x4_extract_lane(mx, 2), wasm_f32x4_extract_lane(mx, 3)));
        if (amax == 0.0f) {
            memset(q + (size_t)b * CK_BLK, 0, CK_BLK);
            if (ql) memset(ql + (size_t)b * CK_BLK, 0, CK_BLK);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float sx = amax / K;
        const v128_t inv = wasm_f32x4_splat(K / amax);
        const v128_t kmax = wasm_i32x4_splat((int)K), kmin = wasm_i32x4_splat(-(int)K), c64 = wasm_i32x4_splat(64);
        v128_t sum = wasm_i32x4_splat(0);
        for (int i = 0; i < 8; i++) { /* 16 values at a time */
            v128_t v[4], h[4];
            for (int k = 0; k < 4; k++) {
                /* nearest rounds ties to even, as the other kernels do */
                v[k] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(xb + 16 * i + 4 * k), inv)));
                v[k] = wasm_i32x4_max(wasm_i32x4_min(v[k], kmax), kmin);
                sum = wasm_i32x4_add(sum, v[k]);
            }
            if (ql) {
                for (int k = 0; k < 4; k++) {
                    h[k] = wasm_i32x4_shr(wasm_i32x4_add(v[k], c64), 7);
                    v[k] = wasm_i32x4_sub(v[k], wasm_i32x4_shl(h[k], 7));
                }
                wasm_v128_store(q + (size_t)b * CK_BLK + 16 * i, wasm_narrow8(h[0], h[1], h[2], h[3]));
                wasm_v128_store(ql + (size_t)b * CK_BLK + 16 * i, wasm_narrow8(v[0], v[1], v[2], v[3]));
            } else {
                wasm_v128_store(q + (size_t)b * CK_BLK + 16 * i, wasm_narrow8(v[0], v[1], v[2], v[3]));
            }
        }
        const int s = wasm_i32x4_extract_lane(sum, 0) + wasm_i32x4_extract_lane(sum, 1) +
                      wasm_i32x4_extract_lane(sum, 2) + wasm_i32x4_extract_lane(sum, 3);
        a[b] = 2.0f * sx;
        c[b] = -sx * (float)s;
    }
}

/* ---- Q1_0 product ---------------------------------------------------------------------------- */

WASM_INLINE v128_t wasm_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return wasm_i32x4_splat(v);
}

/* Quarter k (rows 4k..4k+3) of one tile times T <= 4 tokens, P planes. */
WASM_INLINE void wasm_quarter(const uint8_t *tile, int nb, int k, const ck_act *x, size_t t0, float *y, size_t ys,
                              int left, const int T, const int P) {
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    /* byte i of the quarter is bit 16k + i of the mask: mask byte 2k + i / 8, bit i % 8 */
    const v128_t idx = wasm_i8x16_add(wasm_i8x16_make(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                      wasm_i8x16_splat((int8_t)(2 * k)));
    const v128_t bits = wasm_u8x16_make(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    v128_t acc[4];
    for (int t = 0; t < T; t++) acc[t] = wasm_f32x4_splat(0.0f);
    for (int b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * CK_TB_BYTES;
        const int8_t *xb = xq + (size_t)b * CK_BLK, *lb = P == 2 ? xl + (size_t)b * CK_BLK : NULL;
        v128_t s[4], sl[4];
        for (int t = 0; t < T; t++) s[t] = sl[t] = wasm_i16x8_splat(0);
        for (int g = 0; g < CK_TB_MASKS; g++) {
            uint64_t mg;
            memcpy(&mg, tb + 32 + 8 * g, 8);
            v128_t w = wasm_v128_and(wasm_i8x16_swizzle(wasm_i64x2_splat((int64_t)mg), idx), bits);
            w = wasm_i8x16_eq(w, bits);
            for (int t = 0; t < T; t++) {
                s[t] = wasm_i16x8_add(s[t], wasm_i16x8_extadd_pairwise_i8x16(wasm_v128_and(w, wasm_bcast4(xb + t * xs + 4 * g))));
                if (P == 2)
                    sl[t] = wasm_i16x8_add(sl[t], wasm_i16x8_extadd_pairwise_i8x16(wasm_v128_and(w, wasm_bcast4(lb + t * xs + 4 * g))));
            }
        }
        uint16_t dh[4];
        memcpy(dh, tb + 8 * k, 8);
        const v128_t d = wasm_f32x4_make(ob_fp16_to_f32(dh[0]), ob_fp16_to_f32(dh[1]), ob_fp16_to_f32(dh[2]),
                                         ob_fp16_to_f32(dh[3]));
        for (int t = 0; t < T; t++) {
            v128_t st = wasm_i32x4_extadd_pairwise_i16x8(s[t]);
            if (P == 2) st = wasm_i32x4_add(wasm_i32x4_shl(st, 7), wasm_i32x4_extadd_pairwise_i16x8(sl[t]));
            const v128_t f = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(st), wasm_f32x4_splat(xa[t * ns + b])),
                                            wasm_f32x4_splat(xc[t * ns + b]));
            acc[t] = wasm_f32x4_add(acc[t], wasm_f32x4_mul(d, f));
        }
    }
    for (int t = 0; t < T; t++) {
        float tmp[4];
        wasm_v128_store(tmp, acc[t]);
        memcpy(y + t * ys, tmp, (size_t)(left < 4 ? left : 4) * sizeof(float));
    }
}

#define WASM_CASES(P)                                                                                   \
    switch (n - t0 < 4 ? n - t0 : 4) {                                                                  \
    case 1: wasm_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 1, P); break;                          \
    case 2: wasm_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 2, P); break;                          \
    case 3: wasm_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 3, P); break;                          \
    default: wasm_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 4, P); break;                         \
    }

static void wasm_gemm(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys) {
    const int nb = w->nb;
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * nb * CK_TB_BYTES;
        for (int k = 0; k < 4; k++) {
            const int left = w->rows - tile * CK_TILE - 4 * k;
            if (left <= 0) break;
            for (int t0 = 0; t0 < n; t0 += 4) {
                float *yy = y + (size_t)tile * CK_TILE + 4 * k + (size_t)t0 * ys;
                if (x->ql) WASM_CASES(2) else WASM_CASES(1)
            }
        }
    }
}

/* ---- attention ------------------------------------------------------------------------------- */

WASM_INLINE float wasm_hsum(v128_t v) {
    return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
           wasm_f32x4_extract_lane(v, 3);
}

static void wasm_attn(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                      float scale, float *out, float *sc) {
    if (hd % 16) {
        ck_attn_generic(q, k, v, stride, npos, hd, scale, out, sc);
        return;
    }
    float mx = -INFINITY;
    for (int j = 0; j < npos; j++) {
        const float *kj = k + (size_t)j * stride;
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i += 16) {
            a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(q + i), wasm_v128_load(kj + i)));
            a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(q + i + 4), wasm_v128_load(kj + i + 4)));
            a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(q + i + 8), wasm_v128_load(kj + i + 8)));
            a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(q + i + 12), wasm_v128_load(kj + i + 12)));
        }
        sc[j] = wasm_hsum(wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3))) * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    float den = 0.0f;
    for (int j = 0; j < npos; j++) {
        sc[j] = expf(sc[j] - mx);
        den += sc[j];
    }
    const v128_t inv = wasm_f32x4_splat(1.0f / den);
    for (int i = 0; i < hd; i += 16) {
        v128_t o0 = wasm_f32x4_splat(0.0f), o1 = o0, o2 = o0, o3 = o0;
        for (int j = 0; j < npos; j++) {
            const float *vj = v + (size_t)j * stride + i;
            const v128_t p = wasm_f32x4_splat(sc[j]);
            o0 = wasm_f32x4_add(o0, wasm_f32x4_mul(p, wasm_v128_load(vj)));
            o1 = wasm_f32x4_add(o1, wasm_f32x4_mul(p, wasm_v128_load(vj + 4)));
            o2 = wasm_f32x4_add(o2, wasm_f32x4_mul(p, wasm_v128_load(vj + 8)));
            o3 = wasm_f32x4_add(o3, wasm_f32x4_mul(p, wasm_v128_load(vj + 12)));
        }
        wasm_v128_store(out + i, wasm_f32x4_mul(o0, inv));
        wasm_v128_store(out + i + 4, wasm_f32x4_mul(o1, inv));
        wasm_v128_store(out + i + 8, wasm_f32x4_mul(o2, inv));
        wasm_v128_store(out + i + 12, wasm_f32x4_mul(o3, inv));
    }
}

#endif

#ifdef WASM_ON
const ck_isa ck_isa_wasm = {
    .name = "wasm",
    .compiled = 1,
    .supported = wasm_supported,
    .quant = wasm_quant,
    .gemm = wasm_gemm,
    .attn = wasm_attn,
};
#else
const ck_isa ck_isa_wasm = {.name = "wasm", .compiled = 0};
#endif
