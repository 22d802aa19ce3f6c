/* model.c — turns a parsed GGUF file into a validated ob_model, for every family of family.h.
 *
 * Reads hyperparameters from the `<arch>.*` keys over the family's flags, finds every tensor of the
 * tensor table that the flags require (and the optional ones the file has), checks its type and
 * exact shape, and builds the tokenizer (vocab.c). A file that
 * passes here can be run by any backend without further checks: shapes drive every loop bound.
 * It does no arithmetic on weights.
 */
#include "model.h"

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family.h"
#include "gen_grammar.h"
#include "quant.h"
#include "util.h"

/* Upper bounds that keep every derived size far from overflow and reject absurd files early. */
#define MAX_LAYERS 1024
#define MAX_DIM (1 << 20)
#define MAX_VOCAB (1 << 22)

static char *dup_str(gguf_str s) {
    char *r = malloc((size_t)s.len + 1);
    if (r) {
        memcpy(r, s.ptr, (size_t)s.len);
        r[s.len] = 0;
    }
    return r;
}

/* Reads a required or optional u32 hyperparameter `<arch>.<suffix>`. */
static ob_status hp_u32(const struct ob_model *m, const char *suffix, int required, uint32_t def,
                        uint32_t max, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch, suffix);
    uint32_t v = def;
    int r = gguf_get_u32(&m->file, key, &v);
    if (r == -1 && required) return ob_fail(OB_ERR_FORMAT, "missing metadata key '%s'", key);
    if (r == -2) return ob_fail(OB_ERR_FORMAT, "metadata '%s' has the wrong type or range", key);
    if (v == 0 || v > max) return ob_fail(OB_ERR_FORMAT, "metadata '%s' = %u is out of range (1..%u)", key, v, max);
    *out = (int)v;
    return OB_OK;
}

static ob_status hp_f32(const struct ob_model *m, const char *suffix, float def, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch, suffix);
    float v = def;
    if (gguf_get_f32(&m->file, key, &v) == -2)
        return ob_fail(OB_ERR_FORMAT, "metadata '%s' has the wrong type", key);
    if (!isfinite(v) || v <= 0) return ob_fail(OB_ERR_FORMAT, "metadata '%s' = %g is out of range", key, v);
    *out = v;
    return OB_OK;
}

static const gguf_tensor *find_tensor(const struct ob_model *m, const char *name, ob_status *st) {
    const gguf_tensor *t = gguf_find_tensor(&m->file, name);
    if (!t) *st = ob_fail(OB_ERR_FORMAT, "missing tensor '%s'", name);
    return t;
}

static int shape_is(const gguf_tensor *t, uint64_t ne0, uint64_t ne1) {
    return t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1;
}

/* A matrix of rows x cols. Allowed types: those the reference matmul decodes. */
static ob_status get_matrix(struct ob_model *m, const char *name, int rows, int cols, ob_weight **out) {
    ob_status st = OB_OK;
    const gguf_tensor *t = find_tensor(m, name, &st);
    if (!t) return st;
    if (!shape_is(t, (uint64_t)cols, (uint64_t)rows))
        return ob_fail(OB_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%d, %d]", name,
                       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                       (unsigned long long)t->ne[3], cols, rows);
    const ob_type_row *tr = ob_type_find(t->type);
    if (!tr) {
        const gguf_type_info *ti = gguf_type(t->type);
        return ob_fail(OB_ERR_UNSUPPORTED, "tensor '%s' has type %s, which onebit does not run (it runs %s)", name,
                       ti ? ti->name : "?", ob_type_names());
    }
    if (cols % tr->block != 0)
        return ob_fail(OB_ERR_FORMAT, "tensor '%s': %d columns are not a whole number of %s blocks", name, cols, tr->name);
    ob_weight *w = &m->weights[m->n_weights];
    w->id = m->n_weights++;
    w->type = t->type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = (size_t)(t->nbytes / (uint64_t)rows);
    w->data = t->data;
    w->offset = t->offset;
    m->n_params += (uint64_t)rows * (uint64_t)cols;
    m->weight_bytes += t->nbytes;
    *out = w;
    return OB_OK;
}

/* A vector of n elements, converted to an owned float array. */
static ob_status get_vector(struct ob_model *m, const char *name, int n, float **out) {
    ob_status st = OB_OK;
    const gguf_tensor *t = find_tensor(m, name, &st);
    if (!t) return st;
    if (!shape_is(t, (uint64_t)n, 1))
        return ob_fail(OB_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu], expected [%d]", name,
                       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], n);
    if (t->type != GGML_F32 && t->type != GGML_F16 && t->type != GGML_BF16)
        return ob_fail(OB_ERR_UNSUPPORTED, "tensor '%s' must be f32, f16 or bf16", name);
    if (!t->data && !m->partial) return ob_fail(OB_ERR_ARG, "tensor '%s' is outside the loaded part of the file", name);
    float *v = calloc((size_t)n, sizeof *v);
    if (!v) return ob_fail(OB_ERR_NOMEM, "out of memory");
    if (!t->data) {
        /* Partial load: the host supplies the bytes later (model_complete converts them). The
         * pending array was sized in model_load for every vector the model has. */
        ob_pending_vec *pv = &m->pending[m->n_pending];
        pv->raw = malloc((size_t)t->nbytes);
        if (!pv->raw) {
            free(v);
            return ob_fail(OB_ERR_NOMEM, "out of memory");
        }
        pv->t = t;
        pv->dst = v;
        pv->n = n;
        m->n_pending++;
        m->n_params += (uint64_t)n;
        m->weight_bytes += t->nbytes;
        *out = v;
        return OB_OK;
    }
    ob_dequant_row(t->type, t->data, v, (size_t)n);
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            free(v);
            return ob_fail(OB_ERR_FORMAT, "tensor '%s' contains a non-finite value", name);
        }
    m->n_params += (uint64_t)n;
    m->weight_bytes += t->nbytes;
    *out = v;
    return OB_OK;
}

static ob_status load_hparams(struct ob_model *m, const ob_family *fam) {
    ob_hparams *hp = &m->hp;
    ob_status st;
    hp->norm = fam->norm;
    hp->act = fam->act;
    hp->ffn_gated = fam->ffn_gated;
    hp->parallel = fam->parallel;
    hp->qk_norm = fam->qk_norm;
    hp->rope = fam->rope;
    hp->sub_norm = fam->sub_norm;
    if ((st = hp_u32(m, "embedding_length", 1, 0, MAX_DIM, &hp->n_embd)) ||
        (st = hp_u32(m, "block_count", 1, 0, MAX_LAYERS, &hp->n_layer)) ||
        (st = hp_u32(m, "feed_forward_length", 1, 0, MAX_DIM, &hp->n_ff)) ||
        (st = hp_u32(m, "attention.head_count", 1, 0, 4096, &hp->n_head)))
        return st;
    if ((st = hp_u32(m, "attention.head_count_kv", 0, (uint32_t)hp->n_head, 4096, &hp->n_head_kv)) ||
        (st = hp_u32(m, "attention.key_length", 0, (uint32_t)(hp->n_embd / hp->n_head), 4096, &hp->head_dim)) ||
        (st = hp_u32(m, "context_length", 0, 4096, 1u << 24, &hp->n_ctx_train)) ||
        (st = hp_f32(m, "rope.freq_base", 10000.0f, &hp->rope_theta)))
        return st;
    if (hp->norm == OB_NORM_LAYER) st = hp_f32(m, "attention.layer_norm_epsilon", 1e-5f, &hp->norm_eps);
    else st = hp_f32(m, "attention.layer_norm_rms_epsilon", 1e-6f, &hp->norm_eps);
    if (st) return st;
    int vlen = hp->head_dim;
    if ((st = hp_u32(m, "attention.value_length", 0, (uint32_t)hp->head_dim, 4096, &vlen))) return st;
    if (vlen != hp->head_dim) return ob_fail(OB_ERR_UNSUPPORTED, "value_length != key_length is not supported");
    if (hp->n_head % hp->n_head_kv != 0)
        return ob_fail(OB_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
    if ((int64_t)hp->n_head * hp->head_dim > MAX_DIM) return ob_fail(OB_ERR_FORMAT, "attention width is too large");
    if ((st = hp_u32(m, "rope.dimension_count", 0, (uint32_t)hp->head_dim, 4096, &hp->n_rot))) return st;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return ob_fail(OB_ERR_FORMAT, "rope.dimension_count %d must be even and at most the head dimension %d", hp->n_rot,
                       hp->head_dim);
    /* Context-extension schemes change RoPE; onebit runs plain and linear scaling only. */
    gguf_str sc;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch);
    hp->rope_scale = 1.0f;
    if (gguf_get_str(&m->file, key, &sc) == 0 && !gguf_str_eq(sc, "none")) {
        if (!gguf_str_eq(sc, "linear"))
            return ob_fail(OB_ERR_UNSUPPORTED, "RoPE scaling '%.*s' is not supported (onebit runs none and linear)",
                           (int)(sc.len > 32 ? 32 : sc.len), sc.ptr);
        float factor = 1.0f;
        if ((st = hp_f32(m, "rope.scaling.factor", 1.0f, &factor))) return st;
        hp->rope_scale = 1.0f / factor;
    }
    hp->q_dim = hp->n_head * hp->head_dim;
    hp->kv_dim = hp->n_head_kv * hp->head_dim;
    hp->embd_scale = fam->embd_scale_sqrt ? sqrtf((float)hp->n_embd) : 1.0f;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    if (fam->adjust && (st = fam->adjust(&m->file, hp))) return st;
    return OB_OK;
}

/* ---- the tensor table -----------------------------------------------------------------------
 * Every tensor a layer may have, its shape in terms of the hyperparameters, and when it is
 * required (a function of the family's flags). Entries not required are optional: loaded when the
 * file has them, NULL otherwise. */
enum { T_MAT, T_VEC };
enum { D_1, D_E, D_QD, D_KD, D_QKV, D_F, D_HD };
enum { N_OPT, N_ALWAYS, N_SPLIT, N_QKNORM, N_LN, N_SEQ, N_SEQ_LN, N_GATED, N_SUBNORM };

typedef struct layer_tensor {
    const char *name;        /* blk.N.<name> */
    int kind, rows, cols;    /* D_* (a vector's length is rows) */
    size_t off;              /* offsetof(ob_layer, field) */
    int need;                /* N_* */
} layer_tensor;

#define LT(name, kind, rows, cols, field, need) {name, kind, rows, cols, offsetof(ob_layer, field), need}
static const layer_tensor LAYER_TENSORS[] = {
    LT("attn_norm.weight", T_VEC, D_E, D_1, attn_norm, N_ALWAYS),
    LT("attn_norm.bias", T_VEC, D_E, D_1, attn_norm_b, N_LN),
    LT("attn_qkv.weight", T_MAT, D_QKV, D_E, wqkv, N_OPT),
    LT("attn_qkv.bias", T_VEC, D_QKV, D_1, bqkv, N_OPT),
    LT("attn_q.weight", T_MAT, D_QD, D_E, wq, N_SPLIT),
    LT("attn_k.weight", T_MAT, D_KD, D_E, wk, N_SPLIT),
    LT("attn_v.weight", T_MAT, D_KD, D_E, wv, N_SPLIT),
    LT("attn_q.bias", T_VEC, D_QD, D_1, bq, N_OPT),
    LT("attn_q.scale", T_VEC, D_1, D_1, wq_s, N_OPT),
    LT("attn_k.scale", T_VEC, D_1, D_1, wk_s, N_OPT),
    LT("attn_v.scale", T_VEC, D_1, D_1, wv_s, N_OPT),
    LT("attn_k.bias", T_VEC, D_KD, D_1, bk, N_OPT),
    LT("attn_v.bias", T_VEC, D_KD, D_1, bv, N_OPT),
    LT("attn_q_norm.weight", T_VEC, D_HD, D_1, q_norm, N_QKNORM),
    LT("attn_k_norm.weight", T_VEC, D_HD, D_1, k_norm, N_QKNORM),
    LT("attn_sub_norm.weight", T_VEC, D_QD, D_1, attn_sub_norm, N_SUBNORM),
    LT("attn_output.weight", T_MAT, D_E, D_QD, wo, N_ALWAYS),
    LT("attn_output.bias", T_VEC, D_E, D_1, bo, N_OPT),
    LT("attn_output.scale", T_VEC, D_1, D_1, wo_s, N_OPT),
    LT("ffn_norm.weight", T_VEC, D_E, D_1, ffn_norm, N_SEQ),
    LT("ffn_norm.bias", T_VEC, D_E, D_1, ffn_norm_b, N_SEQ_LN),
    LT("ffn_gate.weight", T_MAT, D_F, D_E, w_gate, N_GATED),
    LT("ffn_gate.bias", T_VEC, D_F, D_1, b_gate, N_OPT),
    LT("ffn_gate.scale", T_VEC, D_1, D_1, w_gate_s, N_OPT),
    LT("ffn_up.weight", T_MAT, D_F, D_E, w_up, N_ALWAYS),
    LT("ffn_up.bias", T_VEC, D_F, D_1, b_up, N_OPT),
    LT("ffn_up.scale", T_VEC, D_1, D_1, w_up_s, N_OPT),
    LT("ffn_sub_norm.weight", T_VEC, D_F, D_1, ffn_sub_norm, N_SUBNORM),
    LT("ffn_down.weight", T_MAT, D_E, D_F, w_down, N_ALWAYS),
    LT("ffn_down.bias", T_VEC, D_E, D_1, b_down, N_OPT),
    LT("ffn_down.scale", T_VEC, D_1, D_1, w_down_s, N_OPT),
};
#undef LT
#define N_LAYER_TENSORS (sizeof LAYER_TENSORS / sizeof *LAYER_TENSORS)

static int dim_of(const ob_hparams *hp, int d) {
    switch (d) {
    case D_E: return hp->n_embd;
    case D_QD: return hp->q_dim;
    case D_KD: return hp->kv_dim;
    case D_QKV: return hp->q_dim + 2 * hp->kv_dim;
    case D_F: return hp->n_ff;
    case D_HD: return hp->head_dim;
    default: return 1;
    }
}

static int is_needed(const ob_hparams *hp, int need, int fused) {
    switch (need) {
    case N_ALWAYS: return 1;
    case N_SPLIT: return !fused;
    case N_QKNORM: return hp->qk_norm;
    case N_LN: return hp->norm == OB_NORM_LAYER;
    case N_SEQ: return !hp->parallel;
    case N_SEQ_LN: return !hp->parallel && hp->norm == OB_NORM_LAYER;
    case N_GATED: return hp->ffn_gated;
    case N_SUBNORM: return hp->sub_norm;
    default: return 0;
    }
}

/* A tensor is used by the family when required, or optional (biases, fused qkv). A tensor that the
 * family's flags exclude (a gate in an ungated FFN) is an error: running without it would compute
 * something else than the file's author meant. */
static int is_excluded(const ob_hparams *hp, int need, int fused) {
    switch (need) {
    case N_SPLIT: return fused;
    case N_QKNORM: case N_LN: case N_SEQ: case N_SEQ_LN: case N_GATED: case N_SUBNORM:
        return !is_needed(hp, need, fused);
    default: return 0;
    }
}

/* One line saying how the model is run: the family and the flags that shape its layer. */
static ob_status describe(struct ob_model *m) {
    const ob_hparams *hp = &m->hp;
    const ob_layer *L0 = &m->layers[0];
    static const char *const acts[] = {"SiLU", "GELU", "ReLU\xc2\xb2"};
    char buf[512];
    int k = snprintf(buf, sizeof buf, "%s: %s, %s%s, %s block%s, RoPE %s %d/%d dims%s%s", m->family->title,
                     hp->norm == OB_NORM_LAYER ? "LayerNorm" : "RMSNorm", hp->ffn_gated ? "gated " : "",
                     acts[hp->act], hp->parallel ? "parallel" : "sequential", hp->qk_norm ? ", QK-norm" : "",
                     hp->rope == OB_ROPE_NEOX ? "NeoX" : "adjacent-pair", hp->n_rot, hp->head_dim,
                     m->rope_freqs ? " with frequency factors" : "", hp->rope_scale != 1.0f ? ", linear scaling" : "");
    if (L0->wqkv) k += snprintf(buf + k, sizeof buf - (size_t)k, ", fused qkv");
    if (L0->bq || L0->bqkv) k += snprintf(buf + k, sizeof buf - (size_t)k, ", q/k/v biases");
    if (L0->bo || L0->b_up || L0->b_down) k += snprintf(buf + k, sizeof buf - (size_t)k, ", output/FFN biases");
    if (hp->sub_norm) k += snprintf(buf + k, sizeof buf - (size_t)k, ", sub-norms");
    if (L0->wq_s || L0->wo_s || L0->w_up_s || L0->w_down_s)
        k += snprintf(buf + k, sizeof buf - (size_t)k, ", per-tensor scales");
    if (hp->embd_scale != 1.0f) k += snprintf(buf + k, sizeof buf - (size_t)k, ", embeddings x %.4g", hp->embd_scale);
    snprintf(buf + k, sizeof buf - (size_t)k, "%s", m->tied ? ", tied output" : "");
    if (!(m->desc = dup_str((gguf_str){buf, strlen(buf)}))) return ob_fail(OB_ERR_NOMEM, "out of memory");
    return OB_OK;
}

ob_status model_load(struct ob_model *m, const ob_model_params *p) {
    ob_status st;
    gguf_str s;
    m->vocab_only = p && p->vocab_only;
    int r = gguf_get_str(&m->file, "general.architecture", &s);
    if (r == -1 && !m->vocab_only) return ob_fail(OB_ERR_FORMAT, "missing metadata key 'general.architecture'");
    if (r == -2 || (r != 0 && r != -1)) return ob_fail(OB_ERR_FORMAT, "metadata 'general.architecture' must be a string");
    if (!(m->arch = r == 0 ? dup_str(s) : dup_str((gguf_str){"", 0}))) return ob_fail(OB_ERR_NOMEM, "out of memory");
    const int arch_clean = r != 0 || strlen(m->arch) == s.len; /* no NUL inside the name */
    m->name = gguf_get_str(&m->file, "general.name", &s) == 0 ? dup_str(s) : dup_str((gguf_str){"", 0});
    m->chat_template = gguf_get_str(&m->file, "tokenizer.chat_template", &s) == 0 ? dup_str(s) : NULL;
    if (!m->name) return ob_fail(OB_ERR_NOMEM, "out of memory");
    if (m->chat_template) {
        /* A template that does not parse leaves the model usable for raw completion; chat calls
         * then report why (ob_chat_render). */
        char err[512];
        if (jinja_parse(m->chat_template, strlen(m->chat_template), &m->tmpl, err, sizeof err) != 0) {
            m->tmpl = NULL;
            if (!(m->tmpl_err = dup_str((gguf_str){err, strlen(err)}))) return ob_fail(OB_ERR_NOMEM, "out of memory");
        }
    }
    m->meta_cache = calloc(m->file.n_kv ? (size_t)m->file.n_kv : 1, sizeof *m->meta_cache);
    if (!m->meta_cache) return ob_fail(OB_ERR_NOMEM, "out of memory");
    if (m->vocab_only) {
        /* Tokenizer and metadata only (llama.cpp's ggml-vocab-*.gguf files have no weights). */
        if ((st = model_load_vocab(m))) return st;
        m->hp.n_vocab = (int)tok_n_vocab(m->tok);
        return OB_OK;
    }
    /* prism.hadamard.* marks weights stored Hadamard-rotated by PrismML's llama.cpp fork: the
     * rotation is not in the tensors, so running them as plain matrices would be silently wrong. */
    for (uint64_t i = 0; i < m->file.n_kv; i++) {
        const gguf_str k = m->file.kv[i].key;
        if (k.len >= 15 && memcmp(k.ptr, "prism.hadamard.", 15) == 0)
            return ob_fail(OB_ERR_UNSUPPORTED, "unsupported metadata key '%.*s': PrismML's Hadamard-rotated weights "
                           "(a llama.cpp fork's format) are not supported", (int)(k.len > 64 ? 64 : k.len), k.ptr);
    }
    const ob_family *fam = ob_family_find(m->arch, strlen(m->arch));
    if (!arch_clean || !fam)
        return ob_fail(OB_ERR_UNSUPPORTED, "architecture '%.32s' is not supported (onebit runs %s)", m->arch,
                       ob_family_names());
    m->family = fam;
    if ((st = load_hparams(m, fam))) return st;
    ob_hparams *hp = &m->hp;

    /* token_embd fixes n_vocab; the tokenizer must agree. */
    const gguf_tensor *te = find_tensor(m, "token_embd.weight", &st);
    if (!te) return st;
    if (te->ne[0] != (uint64_t)hp->n_embd || te->ne[1] == 0 || te->ne[1] > MAX_VOCAB)
        return ob_fail(OB_ERR_FORMAT, "tensor 'token_embd.weight' has shape [%llu, %llu], expected [%d, n_vocab]",
                       (unsigned long long)te->ne[0], (unsigned long long)te->ne[1], hp->n_embd);
    hp->n_vocab = (int)te->ne[1];

    m->weights = calloc((size_t)hp->n_layer * N_LAYER_TENSORS + 2, sizeof *m->weights);
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->weights || !m->layers) return ob_fail(OB_ERR_NOMEM, "out of memory");
    /* Partial load: room for every vector to be pending. */
    m->cap_pending = hp->n_layer * (int)N_LAYER_TENSORS + 4;
    if (m->partial && !(m->pending = calloc((size_t)m->cap_pending, sizeof *m->pending)))
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    if ((st = get_matrix(m, "token_embd.weight", hp->n_vocab, hp->n_embd, &m->tok_embd))) return st;
    if (!m->tok_embd->data && !m->partial)
        return ob_fail(OB_ERR_ARG, "token embeddings are outside the loaded part of the file");
    for (int l = 0; l < hp->n_layer; l++) {
        ob_layer *L = &m->layers[l];
        char n[96];
        snprintf(n, sizeof n, "blk.%d.attn_qkv.weight", l);
        const int fused = gguf_find_tensor(&m->file, n) != NULL;
        for (size_t i = 0; i < N_LAYER_TENSORS; i++) {
            const layer_tensor *lt = &LAYER_TENSORS[i];
            snprintf(n, sizeof n, "blk.%d.%s", l, lt->name);
            const int present = gguf_find_tensor(&m->file, n) != NULL;
            if (!present && !is_needed(hp, lt->need, fused)) continue;
            if (present && is_excluded(hp, lt->need, fused))
                return ob_fail(OB_ERR_FORMAT, "tensor '%s' does not belong in a %s model", n, m->arch);
            void *field = (char *)L + lt->off;
            const int rows = dim_of(hp, lt->rows), cols = dim_of(hp, lt->cols);
            st = lt->kind == T_MAT ? get_matrix(m, n, rows, cols, (ob_weight **)field)
                                   : get_vector(m, n, rows, (float **)field);
            if (st) return st;
        }
    }
    if ((st = get_vector(m, "output_norm.weight", hp->n_embd, &m->output_norm))) return st;
    if (hp->norm == OB_NORM_LAYER && (st = get_vector(m, "output_norm.bias", hp->n_embd, &m->output_norm_b))) return st;
    if (gguf_find_tensor(&m->file, "output.weight")) {
        if ((st = get_matrix(m, "output.weight", hp->n_vocab, hp->n_embd, &m->output))) return st;
    } else {
        m->output = m->tok_embd;
        m->tied = 1;
    }
    if (gguf_find_tensor(&m->file, "output.bias") && (st = get_vector(m, "output.bias", hp->n_vocab, &m->output_b)))
        return st;
    if (gguf_find_tensor(&m->file, "rope_freqs.weight")) {
        if ((st = get_vector(m, "rope_freqs.weight", hp->n_rot / 2, &m->rope_freqs))) return st;
    }
    if ((st = model_load_vocab(m))) return st;
    if ((st = describe(m))) return st;
    if (tok_n_vocab(m->tok) > (uint32_t)hp->n_vocab)
        return ob_fail(OB_ERR_FORMAT, "the tokenizer has %u tokens but the embedding only %d rows",
                       tok_n_vocab(m->tok), hp->n_vocab);
    return OB_OK;
}

ob_status model_complete(struct ob_model *m) {
    for (int i = 0; i < m->n_pending; i++) {
        ob_pending_vec *pv = &m->pending[i];
        ob_dequant_row(pv->t->type, pv->raw, pv->dst, (size_t)pv->n);
        for (int j = 0; j < pv->n; j++)
            if (!isfinite(pv->dst[j]))
                return ob_fail(OB_ERR_FORMAT, "tensor '%.*s' contains a non-finite value", (int)pv->t->name.len,
                               pv->t->name.ptr);
    }
    for (int i = 0; i < m->n_pending; i++) free(m->pending[i].raw);
    free(m->pending);
    m->pending = NULL;
    m->n_pending = 0;
    return OB_OK;
}

void model_release(struct ob_model *m) {
    gen_gvocab_free(atomic_load(&m->gvocab));
    for (int i = 0; i < m->n_pending; i++) free(m->pending[i].raw);
    free(m->pending);
    if (m->layers)
        for (int l = 0; l < m->hp.n_layer; l++)
            for (size_t i = 0; i < N_LAYER_TENSORS; i++)
                if (LAYER_TENSORS[i].kind == T_VEC) free(*(float **)((char *)&m->layers[l] + LAYER_TENSORS[i].off));
    free(m->layers);
    free(m->weights);
    free(m->output_norm);
    free(m->output_norm_b);
    free(m->output_b);
    free(m->rope_freqs);
    free(m->eog);
    free(m->desc);
    if (m->tmpl) jinja_free(m->tmpl);
    free(m->tmpl_err);
    if (m->tok) tok_free(m->tok);
    if (m->meta_cache)
        for (uint64_t i = 0; i < m->file.n_kv; i++) free(m->meta_cache[i]);
    free(m->meta_cache);
    free(m->arch);
    free(m->name);
    free(m->chat_template);
    gguf_close(&m->file);
    free(m->image); /* after gguf_close: the parsed file points into it */
}
