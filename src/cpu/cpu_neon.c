/* cpu_neon.c — the CPU kernels for AArch64 (NEON; sdot when built for ARMv8.2 with dotprod).
 *
 * Same tiles and arithmetic as the x86 files, in 128-bit registers: a tile is handled a quarter
 * (4 rows, 16 bytes per group) at a time. The quarter's 16 bits of a group's mask become 16
 * bytes of 0xFF/0x00 with a table lookup (each byte picks its mask byte) and a bit test. Without
 * dotprod, the bytes select the activations (AND) and sadalp adds neighbouring pairs into 16-bit
 * sums (at most 32 * 2 * 127 = 8128 per block: no overflow), widened to one int32 per row per
 * block; with dotprod, sdot of the 0/-1 bytes with the activations gives minus the sum directly.
 * Two activation planes (int16) take two of each. Also attention (one query at a time) and half
 * <-> float conversion. AArch64 always has NEON, so this table is used on every AArch64 build;
 * elsewhere the file only defines an empty table. Tested under qemu (tests/neon.sh).
 */
#include "cpu_kern.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#define NEON_ON 1
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define NEON_INLINE static inline __attribute__((always_inline))

static int neon_supported(void) { return 1; }

/* ---- activation quantisation ----------------------------------------------------------------- */

static void neon_quant(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    const float K = ql ? CK_K16 : CK_K8;
    for (int b = 0; b < cols / CK_BLK; b++) {
        const float *xb = x + (size_t)b * CK_BLK;
        float32x4_t mx = vdupq_n_f32(0.0f);
        for (int i = 0; i < 32; i++) mx = vmaxq_f32(mx, vabsq_f32(vld1q_f32(xb + 4 * i)));
        const float amax = vmaxvq_f32(mx);
        if (amax == 0.0f) {
            memset(q + (size_t)b * CK_BLK, 0, CK_BLK);
            if (ql) memset(ql + (size_t)b * CK_BLK, 0, CK_BLK);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float sx = amax / K;
        const float32x4_t inv = vdupq_n_f32(K / amax);
        const int32x4_t kmax = vdupq_n_s32((int)K), kmin = vdupq_n_s32(-(int)K);
        int32x4_t sum = vdupq_n_s32(0);
        for (int i = 0; i < 16; i++) { /* 8 values at a time */
            int32x4_t v0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xb + 8 * i), inv)); /* ties to even */
            int32x4_t v1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xb + 8 * i + 4), inv));
            v0 = vmaxq_s32(vminq_s32(v0, kmax), kmin);
            v1 = vmaxq_s32(vminq_s32(v1, kmax), kmin);
            sum = vaddq_s32(sum, vaddq_s32(v0, v1));
            if (ql) {
                const int32x4_t h0 = vshrq_n_s32(vaddq_s32(v0, vdupq_n_s32(64)), 7);
                const int32x4_t h1 = vshrq_n_s32(vaddq_s32(v1, vdupq_n_s32(64)), 7);
                const int32x4_t l0 = vsubq_s32(v0, vshlq_n_s32(h0, 7)), l1 = vsubq_s32(v1, vshlq_n_s32(h1, 7));
                vst1_s8(q + (size_t)b * CK_BLK + 8 * i, vmovn_s16(vcombine_s16(vmovn_s32(h0), vmovn_s32(h1))));
                vst1_s8(ql + (size_t)b * CK_BLK + 8 * i, vmovn_s16(vcombine_s16(vmovn_s32(l0), vmovn_s32(l1))));
            } else {
                vst1_s8(q + (size_t)b * CK_BLK + 8 * i, vmovn_s16(vcombine_s16(vmovn_s32(v0), vmovn_s32(v1))));
            }
        }
        a[b] = 2.0f * sx;
        c[b] = -sx * (float)vaddvq_s32(sum);
    }
}

/* ---- Q1_0 product ---------------------------------------------------------------------------- */

NEON_INLINE int8x16_t neon_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

/* Quarter k (rows 4k..4k+3) of one tile times T <= 4 tokens, P planes. */
NEON_INLINE void neon_quarter(const uint8_t *tile, int nb, int k, const ck_act *x, size_t t0, float *y, size_t ys,
                              int left, const int T, const int P) {
    const size_t xs = (size_t)x->cols, ns = (size_t)x->nb;
    const int8_t *xq = x->q + t0 * xs, *xl = P == 2 ? x->ql + t0 * xs : NULL;
    const float *xa = x->a + t0 * ns, *xc = x->c + t0 * ns;
    /* byte i of the quarter is bit 16k + i of the mask: mask byte 2k + i / 8, bit i % 8 */
    const uint8_t idx_b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    const uint8_t bit_b[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t idx = vaddq_u8(vld1q_u8(idx_b), vdupq_n_u8((uint8_t)(2 * k))), bits = vld1q_u8(bit_b);
    float32x4_t acc[4];
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        const uint8_t *tb = tile + (size_t)b * CK_TB_BYTES;
        const int8_t *xb = xq + (size_t)b * CK_BLK, *lb = P == 2 ? xl + (size_t)b * CK_BLK : NULL;
#if defined(__ARM_FEATURE_DOTPROD)
        int32x4_t s[4], sl[4];
        for (int t = 0; t < T; t++) s[t] = sl[t] = vdupq_n_s32(0);
#else
        int16x8_t s[4], sl[4];
        for (int t = 0; t < T; t++) s[t] = sl[t] = vdupq_n_s16(0);
#endif
        for (int g = 0; g < CK_TB_MASKS; g++) {
            uint64_t mg;
            memcpy(&mg, tb + 32 + 8 * g, 8);
            const int8x16_t w = vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(vreinterpretq_u8_u64(vdupq_n_u64(mg)), idx), bits));
            for (int t = 0; t < T; t++) {
#if defined(__ARM_FEATURE_DOTPROD)
                s[t] = vdotq_s32(s[t], w, neon_bcast4(xb + t * xs + 4 * g)); /* w = -1: minus the sum */
                if (P == 2) sl[t] = vdotq_s32(sl[t], w, neon_bcast4(lb + t * xs + 4 * g));
#else
                s[t] = vpadalq_s8(s[t], vandq_s8(w, neon_bcast4(xb + t * xs + 4 * g)));
                if (P == 2) sl[t] = vpadalq_s8(sl[t], vandq_s8(w, neon_bcast4(lb + t * xs + 4 * g)));
#endif
            }
        }
        uint16_t dh[4];
        memcpy(dh, tb + 8 * k, 8);
        const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(dh)));
        for (int t = 0; t < T; t++) {
#if defined(__ARM_FEATURE_DOTPROD)
            int32x4_t st = vnegq_s32(s[t]);
            if (P == 2) st = vsubq_s32(vshlq_n_s32(st, 7), sl[t]);
#else
            int32x4_t st = vpaddlq_s16(s[t]);
            if (P == 2) st = vaddq_s32(vshlq_n_s32(st, 7), vpaddlq_s16(sl[t]));
#endif
            const float32x4_t f = vfmaq_n_f32(vdupq_n_f32(xc[t * ns + b]), vcvtq_f32_s32(st), xa[t * ns + b]);
            acc[t] = vfmaq_f32(acc[t], d, f);
        }
    }
    for (int t = 0; t < T; t++) {
        if (left >= 4) {
            vst1q_f32(y + t * ys, acc[t]);
        } else {
            float tmp[4];
            vst1q_f32(tmp, acc[t]);
            memcpy(y + t * ys, tmp, (size_t)left * sizeof(float));
        }
    }
}

#define NEON_CASES(P)                                                                                   \
    switch (n - t0 < 4 ? n - t0 : 4) {                                                                  \
    case 1: neon_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 1, P); break;                          \
    case 2: neon_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 2, P); break;                          \
    case 3: neon_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 3, P); break;                          \
    default: neon_quarter(td, nb, k, x, (size_t)t0, yy, ys, left, 4, P); break;                         \
    }

static void neon_gemm(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ys) {
    const int nb = w->nb;
    for (int tile = tile0; tile < tile1; tile++) {
        const uint8_t *td = w->data + (size_t)tile * nb * CK_TB_BYTES;
        for (int k = 0; k < 4; k++) {
            const int left = w->rows - tile * CK_TILE - 4 * k;
            if (left <= 0) break;
            for (int t0 = 0; t0 < n; t0 += 4) {
                float *yy = y + (size_t)tile * CK_TILE + 4 * k + (size_t)t0 * ys;
                if (x->ql) NEON_CASES(2) else NEON_CASES(1)
            }
        }
    }
}

/* ---- attention ------------------------------------------------------------------------------- */

static void neon_attn(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                      float scale, float *out, float *sc) {
    if (hd % 16) {
        ck_attn_generic(q, k, v, stride, npos, hd, scale, out, sc);
        return;
    }
    float mx = -INFINITY;
    for (int j = 0; j < npos; j++) {
        const float *kj = k + (size_t)j * stride;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < hd; i += 16) {
            a0 = vfmaq_f32(a0, vld1q_f32(q + i), vld1q_f32(kj + i));
            a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), vld1q_f32(kj + i + 4));
            a2 = vfmaq_f32(a2, vld1q_f32(q + i + 8), vld1q_f32(kj + i + 8));
            a3 = vfmaq_f32(a3, vld1q_f32(q + i + 12), vld1q_f32(kj + i + 12));
        }
        sc[j] = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3))) * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    float den = 0.0f;
    for (int j = 0; j < npos; j++) {
        sc[j] = expf(sc[j] - mx);
        den += sc[j];
    }
    const float inv = 1.0f / den;
    for (int i = 0; i < hd; i += 16) {
        float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0, o2 = o0, o3 = o0;
        for (int j = 0; j < npos; j++) {
            const float *vj = v + (size_t)j * stride + i;
            o0 = vfmaq_n_f32(o0, vld1q_f32(vj), sc[j]);
            o1 = vfmaq_n_f32(o1, vld1q_f32(vj + 4), sc[j]);
            o2 = vfmaq_n_f32(o2, vld1q_f32(vj + 8), sc[j]);
            o3 = vfmaq_n_f32(o3, vld1q_f32(vj + 12), sc[j]);
        }
        vst1q_f32(out + i, vmulq_n_f32(o0, inv));
        vst1q_f32(out + i + 4, vmulq_n_f32(o1, inv));
        vst1q_f32(out + i + 8, vmulq_n_f32(o2, inv));
        vst1q_f32(out + i + 12, vmulq_n_f32(o3, inv));
    }
}

static void neon_f16_to_f32(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    ck_f16_to_f32_generic(dst + i, src + i, n - i);
}

static void neon_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0; /* rounds as FPCR says: to nearest even unless someone changed it */
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    ck_f32_to_f16_generic(dst + i, src + i, n - i);
}

#endif

#ifdef NEON_ON
const ck_isa ck_isa_neon = {
    .name = "neon",
    .compiled = 1,
    .supported = neon_supported,
    .quant = neon_quant,
    .gemm = neon_gemm,
    .attn = neon_attn,
    .f16_to_f32 = neon_f16_to_f32,
    .f32_to_f16 = neon_f32_to_f16,
};
#else
const ck_isa ck_isa_neon = {.name = "neon", .compiled = 0};
#endif
