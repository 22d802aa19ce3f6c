/* forward.c — the Qwen3 forward pass on the CPU, one layer loop for every CPU backend.
 *
 * Tokens are processed in chunks (kernels->max_batch at a time) so that each weight matrix is read
 * once per chunk, not once per token. Per layer:
 *   h = RMSNorm(x) * attn_norm
 *   q, k, v = Wq h, Wk h, Wv h;  per-head RMSNorm of q and k (QK-norm);  RoPE (NeoX halves)
 *   k, v -> cache;  a = causal GQA attention;  x += Wo a
 *   h = RMSNorm(x) * ffn_norm;  x += Wdown (silu(Wgate h) * Wup h)
 * then logits = output * (RMSNorm(x) * output_norm) for the positions asked for.
 */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "util.h"

typedef struct cpu_model {
    const ob_kernels *k;
    void *kstate;
    const struct ob_model *m;
    double *inv_freq;        /* [head_dim/2] RoPE frequencies theta^(-2i/head_dim) */
} cpu_model;

typedef struct cpu_ctx {
    cpu_model *cm;
    int n_ctx, B;            /* positions in the cache; tokens per chunk */
    void *k_cache, *v_cache; /* [n_layer][n_ctx][kv_dim] floats, or IEEE halves for kv_f16 tables */
    float *x;                /* [B][n_embd] residual stream */
    float *h;                /* [B][n_embd] normed input of a product */
    float *o;                /* [B][n_embd] product output */
    float *q;                /* [B][q_dim] */
    float *kb, *vb;          /* [B][kv_dim] */
    float *att;              /* [B][q_dim] attention output */
    float *g, *u;            /* [B][n_ff] */
    float *rope_cos, *rope_sin; /* [B][head_dim/2] for the chunk's positions */
} cpu_ctx;

ob_status cpu_model_init(const ob_kernels *k, const struct ob_model *m, int n_threads, void **mstate) {
    cpu_model *cm = calloc(1, sizeof *cm);
    if (!cm) return ob_fail(OB_ERR_NOMEM, "out of memory");
    cm->k = k;
    cm->m = m;
    int half = m->hp.head_dim / 2;
    cm->inv_freq = malloc((size_t)half * sizeof *cm->inv_freq);
    if (!cm->inv_freq) {
        free(cm);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < half; i++) cm->inv_freq[i] = pow((double)m->hp.rope_theta, -2.0 * i / m->hp.head_dim);
    if (k->init) {
        ob_status st = k->init(m, n_threads, &cm->kstate);
        if (st) {
            free(cm->inv_freq);
            free(cm);
            return st;
        }
    }
    *mstate = cm;
    return OB_OK;
}

void cpu_model_free(void *mstate) {
    cpu_model *cm = mstate;
    if (!cm) return;
    if (cm->k->free) cm->k->free(cm->kstate);
    free(cm->inv_freq);
    free(cm);
}

void cpu_ctx_free(void *cstate) {
    cpu_ctx *c = cstate;
    if (!c) return;
    free(c->k_cache); free(c->v_cache); free(c->x); free(c->h); free(c->o); free(c->q);
    free(c->kb); free(c->vb); free(c->att); free(c->g); free(c->u); free(c->rope_cos); free(c->rope_sin);
    free(c);
}

static void *alloc_n(size_t a, size_t b, size_t size, int *ok) {
    void *p = NULL;
    uint64_t n;
    if (ob_mul_u64(a, b, &n) == 0 && n <= SIZE_MAX / size) p = calloc((size_t)n ? (size_t)n : 1, size);
    if (!p) *ok = 0;
    return p;
}

static float *alloc_f(size_t a, size_t b, int *ok) { return alloc_n(a, b, sizeof(float), ok); }

ob_status cpu_ctx_init(void *mstate, int n_ctx, void **cstate) {
    cpu_model *cm = mstate;
    const ob_hparams *hp = &cm->m->hp;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return ob_fail(OB_ERR_NOMEM, "out of memory");
    c->cm = cm;
    c->n_ctx = n_ctx;
    c->B = cm->k->max_batch > 0 ? cm->k->max_batch : 1;
    size_t B = (size_t)c->B;
    int ok = 1;
    /* calloc'ed: pages of the cache become resident only as positions are used. */
    const size_t es = cm->k->kv_f16 ? sizeof(uint16_t) : sizeof(float);
    c->k_cache = alloc_n((size_t)hp->n_layer * (size_t)n_ctx, (size_t)hp->kv_dim, es, &ok);
    c->v_cache = alloc_n((size_t)hp->n_layer * (size_t)n_ctx, (size_t)hp->kv_dim, es, &ok);
    c->x = alloc_f(B, (size_t)hp->n_embd, &ok);
    c->h = alloc_f(B, (size_t)hp->n_embd, &ok);
    c->o = alloc_f(B, (size_t)hp->n_embd, &ok);
    c->q = alloc_f(B, (size_t)hp->q_dim, &ok);
    c->kb = alloc_f(B, (size_t)hp->kv_dim, &ok);
    c->vb = alloc_f(B, (size_t)hp->kv_dim, &ok);
    c->att = alloc_f(B, (size_t)hp->q_dim, &ok);
    c->g = alloc_f(B, (size_t)hp->n_ff, &ok);
    c->u = alloc_f(B, (size_t)hp->n_ff, &ok);
    c->rope_cos = alloc_f(B, (size_t)hp->head_dim / 2, &ok);
    c->rope_sin = alloc_f(B, (size_t)hp->head_dim / 2, &ok);
    if (!ok) {
        cpu_ctx_free(c);
        return ob_fail(OB_ERR_NOMEM, "out of memory allocating a context of %d positions", n_ctx);
    }
    *cstate = c;
    return OB_OK;
}

/* y = x / sqrt(mean(x^2) + eps) * w, over n elements. */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

/* rmsnorm over n rows of len floats, by the kernel table when it has one. */
static void rmsnorm_rows(const ob_kernels *K, void *ks, float *y, const float *x, const float *w, int n, int len, float eps) {
    if (K->rmsnorm) K->rmsnorm(ks, y, x, w, n, len, eps);
    else for (int t = 0; t < n; t++) rmsnorm(y + (size_t)t * len, x + (size_t)t * len, w, len, eps);
}

/* Stores n floats into the cache: as they are, or as IEEE halves for kv_f16 tables. */
static void kv_put(const ob_kernels *K, void *ks, void *cache, size_t at, const float *src, size_t n) {
    if (!K->kv_f16) {
        memcpy((float *)cache + at, src, n * sizeof(float));
        return;
    }
    uint16_t *dst = (uint16_t *)cache + at;
    if (K->to_f16) K->to_f16(ks, dst, src, n);
    else for (size_t i = 0; i < n; i++) dst[i] = ob_f32_to_fp16(src[i]);
}

/* NeoX-style rotation: element i pairs with element i + half. */
static void rope(float *v, const float *cs, const float *sn, int half) {
    for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = a * sn[i] + b * cs[i];
    }
}

static void forward_chunk(cpu_ctx *c, const ob_token *tokens, int n, int pos, float *logits, int all_logits) {
    const struct ob_model *m = c->cm->m;
    const ob_hparams *hp = &m->hp;
    const ob_kernels *K = c->cm->k;
    void *ks = c->cm->kstate;
    const int E = hp->n_embd, QD = hp->q_dim, KD = hp->kv_dim, F = hp->n_ff, HD = hp->head_dim, half = HD / 2;

    for (int t = 0; t < n; t++) {
        const ob_weight *te = m->tok_embd;
        ob_dequant_row(te->type, te->data + (size_t)tokens[t] * te->row_bytes, c->x + (size_t)t * E, (size_t)E);
        for (int i = 0; i < half; i++) {
            double ang = (double)(pos + t) * c->cm->inv_freq[i];
            c->rope_cos[t * half + i] = (float)cos(ang);
            c->rope_sin[t * half + i] = (float)sin(ang);
        }
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const ob_layer *L = &m->layers[l];
        const size_t layer0 = (size_t)l * c->n_ctx * KD; /* this layer's first cache entry */
        rmsnorm_rows(K, ks, c->h, c->x, L->attn_norm, n, E, hp->rms_eps);
        K->matmul(ks, L->wq, c->h, c->q, n);
        K->matmul(ks, L->wk, c->h, c->kb, n);
        K->matmul(ks, L->wv, c->h, c->vb, n);
        for (int t = 0; t < n; t++) {
            const float *cs = c->rope_cos + t * half, *sn = c->rope_sin + t * half;
            for (int h = 0; h < hp->n_head; h++) {
                float *qh = c->q + (size_t)t * QD + (size_t)h * HD;
                rmsnorm(qh, qh, L->q_norm, HD, hp->rms_eps);
                rope(qh, cs, sn, half);
            }
            for (int h = 0; h < hp->n_head_kv; h++) {
                float *kh = c->kb + (size_t)t * KD + (size_t)h * HD;
                rmsnorm(kh, kh, L->k_norm, HD, hp->rms_eps);
                rope(kh, cs, sn, half);
            }
            kv_put(K, ks, c->k_cache, layer0 + (size_t)(pos + t) * KD, c->kb + (size_t)t * KD, (size_t)KD);
            kv_put(K, ks, c->v_cache, layer0 + (size_t)(pos + t) * KD, c->vb + (size_t)t * KD, (size_t)KD);
        }
        ob_attn_args a = {c->q, NULL, NULL, c->att, n, pos, hp->n_head, hp->n_head_kv, HD, 1.0f / sqrtf((float)HD)};
        if (K->kv_f16) {
            K->attention_f16(ks, &a, (const uint16_t *)c->k_cache + layer0, (const uint16_t *)c->v_cache + layer0);
        } else {
            a.k_cache = (const float *)c->k_cache + layer0;
            a.v_cache = (const float *)c->v_cache + layer0;
            K->attention(ks, &a);
        }
        K->matmul(ks, L->wo, c->att, c->o, n);
        for (size_t i = 0; i < (size_t)n * E; i++) c->x[i] += c->o[i];

        rmsnorm_rows(K, ks, c->h, c->x, L->ffn_norm, n, E, hp->rms_eps);
        K->matmul(ks, L->w_gate, c->h, c->g, n);
        K->matmul(ks, L->w_up, c->h, c->u, n);
        if (K->swiglu) K->swiglu(ks, c->g, c->u, (size_t)n * F);
        else for (size_t i = 0; i < (size_t)n * F; i++) {
            float g = c->g[i];
            c->g[i] = g / (1.0f + expf(-g)) * c->u[i];
        }
        K->matmul(ks, L->w_down, c->g, c->o, n);
        for (size_t i = 0; i < (size_t)n * E; i++) c->x[i] += c->o[i];
    }
    /* Output head only where logits are wanted: it is the largest matrix of a small model. */
    int first = all_logits ? 0 : n - 1, n_out = n - first;
    rmsnorm_rows(K, ks, c->h, c->x + (size_t)first * E, m->output_norm, n_out, E, hp->rms_eps);
    if (logits) K->matmul(ks, m->output, c->h, logits, n_out);
}

ob_status cpu_forward(void *cstate, const ob_token *tokens, int n, int pos, float *logits, int all_logits) {
    cpu_ctx *c = cstate;
    const int V = c->cm->m->hp.n_vocab;
    for (int done = 0; done < n;) {
        int step = n - done < c->B ? n - done : c->B;
        int last = done + step == n;
        float *out = NULL;
        if (all_logits) out = logits + (size_t)done * V;
        else if (last) out = logits;
        /* Chunks before the last need no logits unless all were asked for. */
        forward_chunk(c, tokens + done, step, pos + done, out, all_logits);
        done += step;
    }
    return OB_OK;
}
