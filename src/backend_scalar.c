/* backend_scalar.c — the scalar reference backend: plain C kernels for the generic forward pass.
 *
 * This is the specification of the arithmetic. Q1_0 products work on the sign bits directly:
 * per block of 128, sum of +x or -x by bit, times the block scale d. Every faster kernel is tested
 * against these functions. Not fast, and not meant to be.
 */
#include <math.h>
#include <string.h>

#include "forward.h"
#include "quant.h"

float scalar_dot_row(const ob_weight *w, int r, const float *x) {
    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
    float sum = 0.0f;
    if (w->type == GGML_Q1_0) {
        for (int b = 0; b < w->cols / QK1_0; b++) {
            const uint8_t *blk = row + (size_t)b * sizeof(block_q1_0);
            uint16_t dh;
            memcpy(&dh, blk, 2);
            const uint8_t *qs = blk + 2;
            const float *xb = x + b * QK1_0;
            /* Branch-free sign select: random sign bits would mispredict every other branch. */
            static const float sign[2] = {-1.0f, 1.0f};
            float s = 0.0f;
            for (int j = 0; j < QK1_0; j++) s += sign[(qs[j >> 3] >> (j & 7)) & 1] * xb[j];
            sum += ob_fp16_to_f32(dh) * s;
        }
        return sum;
    }
    /* Other types: dequantise a block at a time (32 elements covers Q8_0; f32/f16/bf16 are 1). */
    float tmp[32];
    for (int c0 = 0; c0 < w->cols; c0 += 32) {
        int len = w->cols - c0 < 32 ? w->cols - c0 : 32;
        size_t off;
        if (w->type == GGML_Q8_0) off = (size_t)(c0 / 32) * sizeof(block_q8_0);
        else if (w->type == GGML_F32) off = (size_t)c0 * 4;
        else off = (size_t)c0 * 2;
        ob_dequant_row(w->type, row + off, tmp, (size_t)len);
        for (int j = 0; j < len; j++) sum += tmp[j] * x[c0 + j];
    }
    return sum;
}

void scalar_matmul(void *kstate, const ob_weight *w, const float *x, float *y, int n) {
    (void)kstate;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < w->rows; r++) y[(size_t)t * w->rows + r] = scalar_dot_row(w, r, x + (size_t)t * w->cols);
}

void scalar_attention(void *kstate, const ob_attn_args *a) {
    (void)kstate;
    const int HD = a->head_dim, QD = a->n_head * HD, KD = a->n_head_kv * HD, group = a->n_head / a->n_head_kv;
    for (int t = 0; t < a->n; t++) {
        const int p = a->pos + t; /* sees positions 0..p */
        for (int h = 0; h < a->n_head; h++) {
            const float *q = a->q + (size_t)t * QD + (size_t)h * HD;
            float *out = a->out + (size_t)t * QD + (size_t)h * HD;
            const int kvh = h / group;
            /* Online softmax: one pass over the keys, no score buffer. */
            float mx = -INFINITY, denom = 0.0f;
            memset(out, 0, (size_t)HD * sizeof(float));
            for (int j = 0; j <= p; j++) {
                const float *k = a->k_cache + (size_t)j * KD + (size_t)kvh * HD;
                const float *v = a->v_cache + (size_t)j * KD + (size_t)kvh * HD;
                float s = 0.0f;
                for (int i = 0; i < HD; i++) s += q[i] * k[i];
                s *= a->scale;
                if (s > mx) {
                    float corr = expf(mx - s);
                    denom *= corr;
                    for (int i = 0; i < HD; i++) out[i] *= corr;
                    mx = s;
                }
                float e = expf(s - mx);
                denom += e;
                for (int i = 0; i < HD; i++) out[i] += e * v[i];
            }
            for (int i = 0; i < HD; i++) out[i] /= denom;
        }
    }
}

static const ob_kernels scalar_kernels = {
    .name = "scalar",
    .max_batch = 16,
    .matmul = scalar_matmul,
    .attention = scalar_attention,
};

static int scalar_supported(void) { return 1; }

static ob_status scalar_model_init(const struct ob_model *m, int n_threads, void **mstate) {
    return cpu_model_init(&scalar_kernels, m, n_threads, mstate);
}

const ob_backend ob_backend_scalar = {
    .name = "scalar",
    .supported = scalar_supported,
    .model_init = scalar_model_init,
    .model_free = cpu_model_free,
    .ctx_init = cpu_ctx_init,
    .ctx_free = cpu_ctx_free,
    .forward = cpu_forward,
};
