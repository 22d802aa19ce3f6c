/* forward.h — the generic CPU forward pass of a Qwen3 model, parameterised by a kernel table.
 *
 * The layer loop, norms, RoPE and residuals live in forward.c once; CPU backends supply the heavy
 * kernels (matrix products, attention). The scalar kernels (backend_scalar.c) are the
 * specification that every faster kernel table is tested against.
 */
#ifndef OB_FORWARD_H
#define OB_FORWARD_H

#include "backend.h"

/* The attention inputs for one chunk of tokens of one layer. */
typedef struct ob_attn_args {
    const float *q;          /* [n][q_dim], normed and rotated */
    const float *k_cache;    /* [n_ctx][kv_dim] of this layer; positions < pos + n are valid */
    const float *v_cache;    /* [n_ctx][kv_dim] */
    float *out;              /* [n][q_dim] */
    int n, pos;              /* token t sits at position pos + t and sees positions 0..pos+t */
    int n_head, n_head_kv, head_dim;
    float scale;             /* 1 / sqrt(head_dim) */
} ob_attn_args;

typedef struct ob_kernels {
    const char *name;
    int max_batch;           /* tokens per chunk the forward pass hands to the kernels */
    /* Optional: per-model kernel state (thread pool, repacked weights). */
    ob_status (*init)(const struct ob_model *m, int n_threads, void **kstate);
    void (*free)(void *kstate);
    /* y[t][0..rows) = W x[t][0..cols) for t < n. x rows have stride cols, y rows stride rows. */
    void (*matmul)(void *kstate, const ob_weight *w, const float *x, float *y, int n);
    /* Optional (NULL: matmul for each): y[i] = W[i] x for nw (<= 4) matrices of x's columns, the
     * products of one input (q, k and v; gate and up), which a backend may run as one job. */
    void (*matmul_multi)(void *kstate, const ob_weight *const *w, float *const *y, int nw, const float *x, int n);
    /* Causal grouped-query attention over the cache, see ob_attn_args. */
    void (*attention)(void *kstate, const ob_attn_args *a);
    /* Optional elementwise stages, so that a table can spread them over its threads (NULL: the
     * forward pass's own loops). y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w for rows t < n of len
     * floats; g[i] = silu(g[i]) * u[i] for i < n. */
    void (*rmsnorm)(void *kstate, float *y, const float *x, const float *w, int n, int len, float eps);
    void (*swiglu)(void *kstate, float *g, const float *u, size_t n);
    /* kv_f16 = 1: the KV cache holds IEEE halves (rounded to nearest even as keys and values are
     * stored), which halves its memory and the bytes attention reads. Attention then goes to
     * attention_f16 with the caches as k16, v16 ([n_ctx][kv_dim] of the layer; a->k_cache and
     * a->v_cache are NULL). to_f16 converts n floats (optional; NULL: ob_f32_to_fp16 each). */
    int kv_f16;
    void (*attention_f16)(void *kstate, const ob_attn_args *a, const uint16_t *k16, const uint16_t *v16);
    void (*to_f16)(void *kstate, uint16_t *dst, const float *src, size_t n);
} ob_kernels;

ob_status cpu_model_init(const ob_kernels *k, const struct ob_model *m, int n_threads, void **mstate);
void cpu_model_free(void *mstate);
/* The kernel state of a model (kstate of ob_kernels.init; NULL without). */
const void *cpu_model_kstate(const void *mstate);
ob_status cpu_ctx_init(void *mstate, const ob_context_params *p, void **cstate);
void cpu_ctx_free(void *cstate);
ob_status cpu_forward(void *cstate, const ob_token *tokens, int n, int pos, float *logits, int all_logits);
/* The backend's `hidden`: final hidden states (after the output norm) of every position, [n][n_embd]. */
ob_status cpu_hidden(void *cstate, const ob_token *tokens, int n, int pos, float *hidden);

/* The scalar reference kernels, reused by faster tables for the cases they do not cover. */
void scalar_matmul(void *kstate, const ob_weight *w, const float *x, float *y, int n);
void scalar_attention(void *kstate, const ob_attn_args *a);
/* One output row of the reference matmul: dot(W[r], x), exactly as scalar_matmul computes it. */
float scalar_dot_row(const ob_weight *w, int r, const float *x);

#endif
