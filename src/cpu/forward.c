/* forward.c — the forward pass on the CPU: one layer loop for every family and CPU backend.
 *
 * The family's flags (ob_hparams, model.h) choose each step; absent optional tensors (biases) are
 * NULL and skipped. Tokens are processed in chunks (kernels->max_batch at a time) so that each
 * weight matrix is read once per chunk, not once per token. Per layer:
 *   h = norm(x) (RMSNorm, or LayerNorm with bias)
 *   q, k, v = Wq h + bq, Wk h + bk, Wv h + bv   (or one fused Wqkv)
 *   QK-norm: per-head RMSNorm of q and k;  RoPE on the first n_rot dims of each head (NeoX halves
 *   or adjacent pairs; Llama 3.1 frequency factors; linear position scaling)
 *   k, v -> cache;  a = causal GQA attention;  sub-norm: a = RMSNorm(a)
 *   o = Wo a + bo   (BitNet: each product times its optional per-tensor scale before the bias)
 *   sequential block: x += o;  h = norm(x);  x += ffn(h)
 *   parallel block:   x += o + ffn(h)   (the same h as attention)
 *   ffn(h) = Wdown g + bdown,  g = act(Wgate h + bgate) * (Wup h + bup)  (gated)  or  act(Wup h + bup);
 *   sub-norm: g = RMSNorm(g) first
 * then logits = output * norm(x) (+ output bias) for the positions asked for.
 */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "quant.h"
#include "util.h"

typedef struct cpu_model {
    const ob_kernels *k;
    void *kstate;
    const struct ob_model *m;
    double *inv_freq;        /* [n_rot/2] RoPE frequencies theta^(-2i/n_rot) / freq_factor[i] */
} cpu_model;

typedef struct cpu_ctx {
    cpu_model *cm;
    int n_ctx, B;            /* positions in the cache; tokens per chunk */
    void *k_cache, *v_cache; /* [n_layer][n_ctx][kv_dim] floats, or IEEE halves for kv_f16 tables */
    size_t kv_huge;          /* bytes of each cache to put on huge pages once a layer uses 2 MiB (kv_alloc); 0: none */
    float *x;                /* [B][n_embd] residual stream */
    float *h;                /* [B][n_embd] normed input of a product */
    float *o;                /* [B][n_embd] product output */
    float *q;                /* [B][q_dim] */
    float *qkv;              /* [B][q_dim + 2 kv_dim] fused product output (families with Wqkv) */
    float *kb, *vb;          /* [B][kv_dim] */
    float *att;              /* [B][q_dim] attention output */
    float *g, *u;            /* [B][n_ff] */
    float *rope_cos, *rope_sin; /* [B][n_rot/2] for the chunk's positions */
} cpu_ctx;

ob_status cpu_model_init(const ob_kernels *k, const struct ob_model *m, int n_threads, void **mstate) {
    cpu_model *cm = calloc(1, sizeof *cm);
    if (!cm) return ob_fail(OB_ERR_NOMEM, "out of memory");
    cm->k = k;
    cm->m = m;
    int half = m->hp.n_rot / 2;
    cm->inv_freq = malloc((size_t)(half ? half : 1) * sizeof *cm->inv_freq);
    if (!cm->inv_freq) {
        free(cm);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < half; i++) {
        cm->inv_freq[i] = pow((double)m->hp.rope_theta, -2.0 * i / m->hp.n_rot);
        if (m->rope_freqs) cm->inv_freq[i] /= (double)m->rope_freqs[i];
    }
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

const void *cpu_model_kstate(const void *mstate) { return mstate ? ((const cpu_model *)mstate)->kstate : NULL; }

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
    free(c->k_cache); free(c->v_cache); free(c->x); free(c->h); free(c->o); free(c->q); free(c->qkv);
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

#define KV_HUGE ((size_t)2 << 20)

/* The KV cache: a x b elements of size bytes, never read before written, so not cleared; its pages
 * become resident only as positions are used. On Linux it is aligned to 2 MiB (*huge: its size
 * rounded up, else 0) so that kv_grow can later put it on huge pages. */
static void *kv_alloc(size_t a, size_t b, size_t size, size_t *huge, int *ok) {
    *huge = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uint64_t n;
    if (ob_mul_u64(a, b, &n) == 0 && n <= (SIZE_MAX - KV_HUGE) / size && (size_t)n * size >= KV_HUGE) {
        const size_t bytes = ((size_t)n * size + KV_HUGE - 1) & ~(KV_HUGE - 1);
        void *p = aligned_alloc(KV_HUGE, bytes);
        if (p) {
            *huge = bytes;
            return p;
        }
    }
#endif
    return alloc_n(a, b, size, ok);
}

/* Before positions [0, end) are written: once a layer's keys take 2 MiB, the caches go on huge pages
 * where the system has them (madvise, a hint). Generation reads the whole cache every token, one
 * KV head's rows kv_dim elements apart: on 4 KiB pages a TLB miss every other row (Bonsai-shaped
 * tg1024 on Zen 4, interleaved onebit bench, huge pages from the first position: 67-72 tok/s on
 * 4 KiB pages, 76-83 on huge pages). Not from the start: a layer's keys and values would then become
 * resident 2 MiB at a time from the first token (+110 MiB for a short reply of the Bonsai-shaped
 * model with 4096 positions); from here on at most 4 MiB a layer more than the positions used. */
static void kv_grow(cpu_ctx *c, int end) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const ob_hparams *hp = &c->cm->m->hp;
    const size_t es = c->cm->k->kv_f16 ? sizeof(uint16_t) : sizeof(float);
    if (!c->kv_huge || (size_t)end * (size_t)hp->kv_dim * es < KV_HUGE) return;
    madvise(c->k_cache, c->kv_huge, MADV_HUGEPAGE);
    madvise(c->v_cache, c->kv_huge, MADV_HUGEPAGE);
    c->kv_huge = 0;
#else
    (void)c, (void)end;
#endif
}

ob_status cpu_ctx_init(void *mstate, const ob_context_params *p, void **cstate) {
    cpu_model *cm = mstate;
    const ob_hparams *hp = &cm->m->hp;
    const int n_ctx = p->n_ctx; /* the CPU chooses its own cache type and batch */
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return ob_fail(OB_ERR_NOMEM, "out of memory");
    c->cm = cm;
    c->n_ctx = n_ctx;
    c->B = cm->k->max_batch > 0 ? cm->k->max_batch : 1;
    size_t B = (size_t)c->B;
    int ok = 1;
    const size_t es = cm->k->kv_f16 ? sizeof(uint16_t) : sizeof(float);
    size_t kh, vh;
    c->k_cache = kv_alloc((size_t)hp->n_layer * (size_t)n_ctx, (size_t)hp->kv_dim, es, &kh, &ok);
    c->v_cache = kv_alloc((size_t)hp->n_layer * (size_t)n_ctx, (size_t)hp->kv_dim, es, &vh, &ok);
    c->kv_huge = kh == vh ? kh : 0;
    c->x = alloc_f(B, (size_t)hp->n_embd, &ok);
    c->h = alloc_f(B, (size_t)hp->n_embd, &ok);
    c->o = alloc_f(B, (size_t)hp->n_embd, &ok);
    c->q = alloc_f(B, (size_t)hp->q_dim, &ok);
    c->kb = alloc_f(B, (size_t)hp->kv_dim, &ok);
    c->vb = alloc_f(B, (size_t)hp->kv_dim, &ok);
    c->att = alloc_f(B, (size_t)hp->q_dim, &ok);
    c->g = alloc_f(B, (size_t)hp->n_ff, &ok);
    c->u = alloc_f(B, (size_t)hp->n_ff, &ok);
    c->qkv = alloc_f(B, (size_t)hp->q_dim + 2 * (size_t)hp->kv_dim, &ok);
    c->rope_cos = alloc_f(B, (size_t)hp->n_rot / 2 + 1, &ok);
    c->rope_sin = alloc_f(B, (size_t)hp->n_rot / 2 + 1, &ok);
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

/* y = (x - mean) / sqrt(var + eps) * w + b, over n elements. */
static void layernorm(float *y, const float *x, const float *w, const float *b, int n, float eps) {
    float mean = 0.0f, var = 0.0f;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= (float)n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    float r = 1.0f / sqrtf(var / (float)n + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * r * w[i] + (b ? b[i] : 0.0f);
}

/* The family's norm over n rows of E floats. */
static void norm_rows(const cpu_ctx *c, float *y, const float *x, const float *w, const float *b, int n) {
    const ob_hparams *hp = &c->cm->m->hp;
    const int E = hp->n_embd;
    if (hp->norm == OB_NORM_LAYER)
        for (int t = 0; t < n; t++) layernorm(y + (size_t)t * E, x + (size_t)t * E, w, b, E, hp->norm_eps);
    else rmsnorm_rows(c->cm->k, c->cm->kstate, y, x, w, n, E, hp->norm_eps);
}

/* y[t] += b for n rows of len floats (b NULL: nothing). */
static void add_bias(float *y, const float *b, int n, int len) {
    if (!b) return;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < len; i++) y[(size_t)t * len + i] += b[i];
}

/* y = (W x) * s + b for n rows (s: a per-tensor scale [1], or NULL; b NULL: no bias). */
static void linear(const cpu_ctx *c, const ob_weight *w, const float *s, const float *b, const float *x, float *y, int n) {
    c->cm->k->matmul(c->cm->kstate, w, x, y, n);
    if (s)
        for (size_t i = 0; i < (size_t)n * (size_t)w->rows; i++) y[i] *= s[0];
    add_bias(y, b, n, w->rows);
}

/* linear() for nw matrices of one input x (q, k and v; gate and up): one matmul_multi where the
 * kernels have it, so that they may run the products as one job. */
static void linear_multi(const cpu_ctx *c, int nw, const ob_weight *const *w, const float *const *s, const float *const *b,
                         const float *x, float *const *y, int n) {
    const ob_kernels *K = c->cm->k;
    if (!K->matmul_multi) {
        for (int i = 0; i < nw; i++) linear(c, w[i], s[i], b[i], x, y[i], n);
        return;
    }
    K->matmul_multi(c->cm->kstate, w, y, nw, x, n);
    for (int i = 0; i < nw; i++) {
        if (s[i])
            for (size_t e = 0; e < (size_t)n * (size_t)w[i]->rows; e++) y[i][e] *= s[i][0];
        add_bias(y[i], b[i], n, w[i]->rows);
    }
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

/* Rotates the first 2*half dims of a head: NeoX pairs element i with i + half, the adjacent
 * layout (llama.cpp's ROPE_NORM) pairs 2i with 2i + 1. */
static void rope(float *v, const float *cs, const float *sn, int half, int neox) {
    for (int i = 0; i < half; i++) {
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float a = v[i0], b = v[i1];
        v[i0] = a * cs[i] - b * sn[i];
        v[i1] = a * sn[i] + b * cs[i];
    }
}

/* tanh-approximated GELU, as llama.cpp computes it. */
static float gelu(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

/* g = act(g) * u (gated) or act(g) over n floats. */
static void activate(const cpu_ctx *c, float *g, const float *u, size_t n) {
    const ob_hparams *hp = &c->cm->m->hp;
    const ob_kernels *K = c->cm->k;
    if (hp->act == OB_ACT_SILU && u && K->swiglu) {
        K->swiglu(c->cm->kstate, g, u, n);
        return;
    }
    if (hp->act == OB_ACT_RELU2) {
        /* BitNet: x > 0 ? x * x : 0 without a branch (its sign is a coin toss on every element, and
         * the mispredictions cost more than the arithmetic): the same floats, the bits of x anded
         * with an all-ones or all-zeros mask. */
        for (size_t i = 0; i < n; i++) {
            float x = g[i];
            uint32_t bits;
            memcpy(&bits, &x, sizeof bits);
            bits &= 0u - (uint32_t)(x > 0.0f);
            memcpy(&x, &bits, sizeof x);
            g[i] = u ? x * x * u[i] : x * x;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float x = g[i], a;
        if (hp->act == OB_ACT_GELU) a = gelu(x);
        else if (hp->act == OB_ACT_RELU2) a = x > 0.0f ? x * x : 0.0f;
        else a = x / (1.0f + expf(-x));
        g[i] = u ? a * u[i] : a;
    }
}

/* The FFN of layer L on n rows of h into c->o. */
static void ffn(cpu_ctx *c, const ob_layer *L, const float *h, int n) {
    const ob_hparams *hp = &c->cm->m->hp;
    const int F = hp->n_ff;
    if (hp->ffn_gated) {
        const ob_weight *w[2] = {L->w_gate, L->w_up};
        const float *sc[2] = {L->w_gate_s, L->w_up_s}, *b[2] = {L->b_gate, L->b_up};
        float *y[2] = {c->g, c->u};
        linear_multi(c, 2, w, sc, b, h, y, n);
        activate(c, c->g, c->u, (size_t)n * F);
    } else {
        linear(c, L->w_up, L->w_up_s, L->b_up, h, c->g, n);
        activate(c, c->g, NULL, (size_t)n * F);
    }
    if (L->ffn_sub_norm) rmsnorm_rows(c->cm->k, c->cm->kstate, c->g, c->g, L->ffn_sub_norm, n, F, hp->norm_eps);
    linear(c, L->w_down, L->w_down_s, L->b_down, c->g, c->o, n);
}

static void forward_chunk(cpu_ctx *c, const ob_token *tokens, int n, int pos, float *logits, int all_logits,
                          float *hidden) {
    const struct ob_model *m = c->cm->m;
    const ob_hparams *hp = &m->hp;
    const ob_kernels *K = c->cm->k;
    void *ks = c->cm->kstate;
    const int E = hp->n_embd, QD = hp->q_dim, KD = hp->kv_dim, HD = hp->head_dim, half = hp->n_rot / 2;
    const int neox = hp->rope == OB_ROPE_NEOX;

    kv_grow(c, pos + n);
    for (int t = 0; t < n; t++) {
        const ob_weight *te = m->tok_embd;
        float *x = c->x + (size_t)t * E;
        ob_dequant_row(te->type, te->data + (size_t)tokens[t] * te->row_bytes, x, (size_t)E);
        if (hp->embd_scale != 1.0f)
            for (int i = 0; i < E; i++) x[i] *= hp->embd_scale;
        for (int i = 0; i < half; i++) {
            double ang = (double)(pos + t) * (double)hp->rope_scale * c->cm->inv_freq[i];
            c->rope_cos[t * half + i] = (float)cos(ang);
            c->rope_sin[t * half + i] = (float)sin(ang);
        }
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const ob_layer *L = &m->layers[l];
        const size_t layer0 = (size_t)l * c->n_ctx * KD; /* this layer's first cache entry */
        norm_rows(c, c->h, c->x, L->attn_norm, L->attn_norm_b, n);
        if (L->wqkv) {
            /* One fused product, then the rows split into q, k, v. */
            const int W = QD + 2 * KD;
            linear(c, L->wqkv, NULL, L->bqkv, c->h, c->qkv, n);
            for (int t = 0; t < n; t++) {
                const float *r = c->qkv + (size_t)t * W;
                memcpy(c->q + (size_t)t * QD, r, (size_t)QD * sizeof(float));
                memcpy(c->kb + (size_t)t * KD, r + QD, (size_t)KD * sizeof(float));
                memcpy(c->vb + (size_t)t * KD, r + QD + KD, (size_t)KD * sizeof(float));
            }
        } else {
            const ob_weight *w[3] = {L->wq, L->wk, L->wv};
            const float *sc[3] = {L->wq_s, L->wk_s, L->wv_s}, *b[3] = {L->bq, L->bk, L->bv};
            float *y[3] = {c->q, c->kb, c->vb};
            linear_multi(c, 3, w, sc, b, c->h, y, n);
        }
        for (int t = 0; t < n; t++) {
            const float *cs = c->rope_cos + t * half, *sn = c->rope_sin + t * half;
            for (int h = 0; h < hp->n_head; h++) {
                float *qh = c->q + (size_t)t * QD + (size_t)h * HD;
                if (L->q_norm) rmsnorm(qh, qh, L->q_norm, HD, hp->norm_eps);
                rope(qh, cs, sn, half, neox);
            }
            for (int h = 0; h < hp->n_head_kv; h++) {
                float *kh = c->kb + (size_t)t * KD + (size_t)h * HD;
                if (L->k_norm) rmsnorm(kh, kh, L->k_norm, HD, hp->norm_eps);
                rope(kh, cs, sn, half, neox);
            }
            kv_put(K, ks, c->k_cache, layer0 + (size_t)(pos + t) * KD, c->kb + (size_t)t * KD, (size_t)KD);
            kv_put(K, ks, c->v_cache, layer0 + (size_t)(pos + t) * KD, c->vb + (size_t)t * KD, (size_t)KD);
        }
        ob_attn_args a = {c->q, NULL, NULL, c->att, n, pos, hp->n_head, hp->n_head_kv, HD, hp->attn_scale};
        if (K->kv_f16) {
            K->attention_f16(ks, &a, (const uint16_t *)c->k_cache + layer0, (const uint16_t *)c->v_cache + layer0);
        } else {
            a.k_cache = (const float *)c->k_cache + layer0;
            a.v_cache = (const float *)c->v_cache + layer0;
            K->attention(ks, &a);
        }
        if (L->attn_sub_norm) rmsnorm_rows(K, ks, c->att, c->att, L->attn_sub_norm, n, QD, hp->norm_eps);
        if (hp->parallel) {
            /* Attention and FFN both read h: the FFN's output goes to o after Wo's is added. */
            linear(c, L->wo, L->wo_s, L->bo, c->att, c->o, n);
            for (size_t i = 0; i < (size_t)n * E; i++) c->x[i] += c->o[i];
            ffn(c, L, c->h, n);
            for (size_t i = 0; i < (size_t)n * E; i++) c->x[i] += c->o[i];
            continue;
        }
        linear(c, L->wo, L->wo_s, L->bo, c->att, c->o, n);
        for (size_t i = 0; i < (size_t)n * E; i++) c->x[i] += c->o[i];

        norm_rows(c, c->h, c->x, L->ffn_norm, L->ffn_norm_b, n);
        ffn(c, L, c->h, n);
        for (size_t i = 0; i < (size_t)n * E; i++) c->x[i] += c->o[i];
    }
    /* Output head only where logits are wanted: it is the largest matrix of a small model. The
     * final hidden states (embeddings) are the normed rows of every position, without the head. */
    int first = all_logits || hidden ? 0 : n - 1, n_out = n - first;
    norm_rows(c, c->h, c->x + (size_t)first * E, m->output_norm, m->output_norm_b, n_out);
    if (hidden) memcpy(hidden, c->h, (size_t)n * E * sizeof(float));
    else if (logits) linear(c, m->output, NULL, m->output_b, c->h, logits, n_out);
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
        forward_chunk(c, tokens + done, step, pos + done, out, all_logits, NULL);
        done += step;
    }
    return OB_OK;
}

ob_status cpu_hidden(void *cstate, const ob_token *tokens, int n, int pos, float *hidden) {
    cpu_ctx *c = cstate;
    const int E = c->cm->m->hp.n_embd;
    for (int done = 0; done < n;) {
        int step = n - done < c->B ? n - done : c->B;
        forward_chunk(c, tokens + done, step, pos + done, NULL, 0, hidden + (size_t)done * E);
        done += step;
    }
    return OB_OK;
}
