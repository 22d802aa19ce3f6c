/* cpu_kern.c — repacking of Q1_0 weights into row tiles, and the portable C kernels.
 *
 * The portable kernels run where no SIMD table applies, and they pin down the arithmetic of the
 * repacked layout (cpu_kern.h) that the SIMD files must reproduce: the same int8 quantisation bit
 * for bit, the same integer block sums, the same per-block float steps in the same order. They
 * are not the specification of the model's arithmetic: that is backend_scalar.c, which every
 * table (this one included) is tested against.
 */
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "cpu_kern.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

/* ---- repacking ------------------------------------------------------------------------------- */

size_t ck_q1_packed_size(int rows, int cols) {
    if (rows <= 0 || cols <= 0 || cols % CK_BLK) return 0;
    uint64_t tiles = ((uint64_t)rows + CK_TILE - 1) / CK_TILE, nb = (uint64_t)cols / CK_BLK;
    uint64_t n = tiles * nb; /* both < 2^31: no overflow */
    if (n > SIZE_MAX / CK_TB_BYTES) return 0;
    return (size_t)(n * CK_TB_BYTES);
}

void ck_q1_repack(const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst, int tile0, int tile1) {
    const int nb = cols / CK_BLK;
    for (int tile = tile0; tile < tile1; tile++) {
        for (int b = 0; b < nb; b++) {
            uint8_t *tb = dst + ((size_t)tile * nb + b) * CK_TB_BYTES;
            uint16_t d[CK_TILE];
            uint64_t m[CK_TB_MASKS];
            memset(d, 0, sizeof d);
            memset(m, 0, sizeof m);
            for (int r = 0; r < CK_TILE; r++) {
                int row = tile * CK_TILE + r;
                if (row >= rows) break; /* padding rows: d = 0, no bits */
                const uint8_t *blk = src + (size_t)row * row_bytes + (size_t)b * 18;
                memcpy(&d[r], blk, 2);
                const uint8_t *qs = blk + 2;
                /* Byte k holds columns 8k..8k+7: its low nibble is group 2k, its high one 2k+1. */
                for (int k = 0; k < 16; k++) {
                    m[2 * k] |= (uint64_t)(qs[k] & 15) << (4 * r);
                    m[2 * k + 1] |= (uint64_t)(qs[k] >> 4) << (4 * r);
                }
            }
            memcpy(tb, d, sizeof d);
            memcpy(tb + sizeof d, m, sizeof m);
        }
    }
}

/* ---- portable kernels ------------------------------------------------------------------------ */

static void ck_quant_blocks_k(const float *x, int cols, int blk, float a_mul, float K, int8_t *q, int8_t *ql, float *a,
                              float *c) {
    if (blk <= 0) return;
    const size_t bsz = (size_t)(unsigned)blk;
    for (int b = 0; b < cols / blk; b++) {
        const float *xb = x + (size_t)b * blk;
        int8_t *qb = q + (size_t)b * blk, *lb = ql ? ql + (size_t)b * blk : NULL;
        float amax = 0.0f;
        for (int j = 0; j < blk; j++) amax = fmaxf(amax, fabsf(xb[j]));
        if (amax == 0.0f) {
            memset(qb, 0, bsz);
            if (lb) memset(lb, 0, bsz);
            a[b] = c[b] = 0.0f;
            continue;
        }
        const float inv = K / amax, sx = amax / K;
        int sum = 0;
        for (int j = 0; j < blk; j++) {
            float v = nearbyintf(xb[j] * inv); /* ties to even, as the SIMD conversions do */
            v = v > K ? K : v < -K ? -K : v;
            const int Q = (int)v;
            sum += Q;
            if (lb) {
                const int h = (Q + 64 + 128 * 128) / 128 - 128; /* floor((Q + 64) / 128) */
                qb[j] = (int8_t)h;
                lb[j] = (int8_t)(Q - 128 * h);
            } else {
                qb[j] = (int8_t)Q;
            }
        }
        a[b] = a_mul * sx;
        c[b] = -sx * (float)sum;
    }
}

void ck_quant_blocks(const float *x, int cols, int blk, float a_mul, int8_t *q, int8_t *ql, float *a, float *c) {
    ck_quant_blocks_k(x, cols, blk, a_mul, ql ? CK_K16 : CK_K8, q, ql, a, c);
}

void ck_quant_generic(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    ck_quant_blocks(x, cols, CK_BLK, 2.0f, q, ql, a, c);
}

void ck_quant14_generic(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    ck_quant_blocks_k(x, cols, CK_BLK, 2.0f, CK_K14, q, ql, a, c);
}

void ck_vtab_generic(const int8_t *q, const int8_t *ql, int cols, int planes, uint8_t *tab) {
    const int P = planes == 2 ? 2 : 3;
    for (int i = 0; i < cols / 16; i++) {
        uint8_t *t = tab + (size_t)i * 64 * P;
        for (int j = 0; j < 4; j++) {
            const size_t o = 16 * (size_t)i + 4 * (size_t)j;
            int32_t Q[4];
            for (int c = 0; c < 4; c++) Q[c] = 128 * q[o + c] + ql[o + c];
            for (int k = 0; k < 16; k++) {
                const int32_t v = (k & 1 ? Q[0] : 0) + (k & 2 ? Q[1] : 0) + (k & 4 ? Q[2] : 0) + (k & 8 ? Q[3] : 0);
                const uint32_t u = (uint32_t)v; /* two's complement bytes: v = lo + 256 mid + 65536 hi */
                for (int p = 0; p < P; p++) t[64 * p + 16 * j + k] = (uint8_t)(u >> (8 * p));
            }
        }
    }
}

void ck_quant32_generic(const float *x, int cols, int8_t *q, float *a, float *c) {
    for (int b = 0; b < cols / CK_BLK; b++) {
        float ck[4];
        for (int k = 0; k < 4; k++) {
            const size_t o = (size_t)b * CK_BLK + 32 * (size_t)k;
            ck_quant_blocks(x + o, 32, 32, 2.0f, q + o, NULL, a + 4 * (size_t)b + k, &ck[k]);
        }
        c[b] = ((ck[0] + ck[1]) + ck[2]) + ck[3];
    }
}

const uint8_t *ck_drop_pages(const uint8_t *from, const uint8_t *to) {
#if defined(MADV_DONTNEED) && (defined(__unix__) || defined(__APPLE__))
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)from + pg - 1) & ~(pg - 1), b = (uintptr_t)to & ~(pg - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
    return b > (uintptr_t)from ? (const uint8_t *)b : from;
#else
    (void)to;
    return from;
#endif
}

#define CK_ARENA_ALIGN ((size_t)2 << 20)

uint8_t *ck_arena_alloc(size_t bytes) {
    const size_t size = (bytes + CK_ARENA_ALIGN - 1) & ~(CK_ARENA_ALIGN - 1);
    if (!bytes || size < bytes) return NULL;
    uint8_t *p = aligned_alloc(CK_ARENA_ALIGN, size);
#if defined(MADV_HUGEPAGE)
    if (p) madvise(p, size, MADV_HUGEPAGE); /* a hint only */
#endif
    return p;
}

size_t ck_arena_piece(size_t n) { return n > SIZE_MAX - 63 ? 0 : (n + 63) & ~(size_t)63; }

size_t ck_vtm_stride(int cols, int planes) {
    if (cols <= 0 || planes <= 0 || planes > 4 || (size_t)cols > (SIZE_MAX - 8192) / 256) return 0;
    const size_t bytes = (size_t)cols * 4 * (size_t)planes;
    return (bytes + 4095) / 4096 * 4096 + 512 * (size_t)planes;
}

void ck_lut_generic(const int8_t *q, const int8_t *ql, int cols, uint8_t *lut) {
    for (int g = 0; g < cols / 4; g++) {
        uint8_t *o = lut + (size_t)(g / 2) * 96 + 16 * (g % 2);
        int32_t Q[4], v[16];
        for (int c = 0; c < 4; c++) Q[c] = ql ? 128 * q[4 * g + c] + ql[4 * g + c] : q[4 * g + c];
        for (int k = 0; k < 16; k++)
            v[k] = CK_LUT_BIAS + (k & 1 ? Q[0] : 0) + (k & 2 ? Q[1] : 0) + (k & 4 ? Q[2] : 0) + (k & 8 ? Q[3] : 0);
        for (int k = 0; k < 16; k++) {
            o[k] = (uint8_t)(v[k] & 63);
            o[32 + k] = (uint8_t)((v[k] >> 6) & 63);
            o[64 + k] = (uint8_t)(v[k] >> 12);
        }
    }
}

void ck_gemm_generic(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ystride) {
    const int nb = w->nb;
    for (int tile = tile0; tile < tile1; tile++) {
        const int r_end = w->rows - tile * CK_TILE < CK_TILE ? w->rows - tile * CK_TILE : CK_TILE;
        for (int t = 0; t < n; t++) {
            const int8_t *xq = x->q + (size_t)t * x->cols, *xl = x->ql ? x->ql + (size_t)t * x->cols : NULL;
            float acc[CK_TILE] = {0};
            for (int b = 0; b < nb; b++) {
                const uint8_t *tb = w->data + ((size_t)tile * nb + b) * CK_TB_BYTES;
                uint16_t dh[CK_TILE];
                uint64_t m[CK_TB_MASKS];
                memcpy(dh, tb, sizeof dh);
                memcpy(m, tb + sizeof dh, sizeof m);
                int32_t s[CK_TILE] = {0}, s4[4][CK_TILE] = {{0}};
                for (int g = 0; g < CK_TB_MASKS; g++) {
                    /* All 16 subset sums of the group's 4 activations: one lookup per row. */
                    const size_t o = (size_t)b * CK_BLK + 4 * g;
                    int32_t Q[4], lut[16];
                    for (int k = 0; k < 4; k++) Q[k] = xl ? 128 * xq[o + k] + xl[o + k] : xq[o + k];
                    for (int k = 0; k < 16; k++)
                        lut[k] = (k & 1 ? Q[0] : 0) + (k & 2 ? Q[1] : 0) + (k & 4 ? Q[2] : 0) + (k & 8 ? Q[3] : 0);
                    for (int r = 0; r < CK_TILE; r++) s[r] += lut[(m[g] >> (4 * r)) & 15];
                    if (x->s32 && g % 8 == 7) /* the end of a sub-block of 32 columns */
                        for (int r = 0; r < CK_TILE; r++) s4[g / 8][r] = s[r], s[r] = 0;
                }
                const float cb = x->c[(size_t)t * x->nb + b];
                if (x->s32) {
                    const float *ak = x->a + ((size_t)t * x->nb + b) * 4;
                    for (int r = 0; r < CK_TILE; r++) {
                        float f = cb;
                        for (int k = 0; k < 4; k++) f += (float)s4[k][r] * ak[k];
                        acc[r] += ob_fp16_to_f32(dh[r]) * f;
                    }
                    continue;
                }
                const float ab = x->a[(size_t)t * x->nb + b];
                for (int r = 0; r < CK_TILE; r++) acc[r] += ob_fp16_to_f32(dh[r]) * ((float)s[r] * ab + cb);
            }
            for (int r = 0; r < r_end; r++) y[(size_t)t * ystride + (size_t)tile * CK_TILE + r] = acc[r];
        }
    }
}

void ck_attn_generic(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                     float scale, float *out, float *scratch) {
    float mx = -INFINITY;
    for (int j = 0; j < npos; j++) {
        const float *kj = k + (size_t)j * stride;
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += q[i] * kj[i];
        scratch[j] = s * scale;
        mx = fmaxf(mx, scratch[j]);
    }
    float denom = 0.0f;
    for (int j = 0; j < npos; j++) {
        scratch[j] = expf(scratch[j] - mx);
        denom += scratch[j];
    }
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int j = 0; j < npos; j++) {
        const float *vj = v + (size_t)j * stride;
        const float p = scratch[j] / denom;
        for (int i = 0; i < hd; i++) out[i] += p * vj[i];
    }
}

void ck_swiglu_generic(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void ck_f16_to_f32_generic(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ob_fp16_to_f32(src[i]);
}

void ck_f32_to_f16_generic(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = ob_f32_to_fp16(src[i]);
}

void ck_rmsnorm_row(float *y, const float *x, const float *w, int len, float eps) {
    float ss[8] = {0};
    int i = 0;
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++) ss[k] += x[i + k] * x[i + k];
    for (; i < len; i++) ss[0] += x[i] * x[i];
    const float sum = ((ss[0] + ss[1]) + (ss[2] + ss[3])) + ((ss[4] + ss[5]) + (ss[6] + ss[7]));
    const float r = 1.0f / sqrtf(sum / (float)len + eps);
    for (i = 0; i < len; i++) y[i] = x[i] * r * w[i];
}

static int ck_generic_supported(void) { return 1; }

const ck_isa ck_isa_generic = {
    .name = "generic",
    .compiled = 1,
    .supported = ck_generic_supported,
    .quant = ck_quant_generic,
    .quant14 = ck_quant14_generic,
    .quant32 = ck_quant32_generic,
    .gemm = ck_gemm_generic,
    .attn = ck_attn_generic,
};
