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
    /* The type table's reference dot (quant.c): Q1_0 works on the sign bits, other types a block
     * at a time through their dequantisation. The loader only admits types that have a row. */
    return ob_type_find(w->type)->dot(w->data + (size_t)r * w->row_bytes, x, (size_t)w->cols);
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
    .hidden = cpu_hidden,
};
