/* model.c — turns a parsed GGUF file into a validated ob_model (Qwen3 architecture).
 *
 * Reads hyperparameters from the `<arch>.*` keys, finds every tensor the architecture needs, checks
 * its type and exact shape, and builds the tokenizer from the tokenizer.ggml.* keys. A file that
 * passes here can be run by any backend without further checks: shapes drive every loop bound.
 * It does no arithmetic on weights.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (t->type != GGML_Q1_0 && t->type != GGML_F32 && t->type != GGML_F16 && t->type != GGML_BF16 &&
        t->type != GGML_Q8_0) {
        const gguf_type_info *ti = gguf_type(t->type);
        return ob_fail(OB_ERR_UNSUPPORTED, "tensor '%s' has type %s; onebit runs q1_0, q8_0, f16, bf16, f32", name,
                       ti ? ti->name : "?");
    }
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

static ob_status load_hparams(struct ob_model *m) {
    ob_hparams *hp = &m->hp;
    ob_status st;
    if ((st = hp_u32(m, "embedding_length", 1, 0, MAX_DIM, &hp->n_embd)) ||
        (st = hp_u32(m, "block_count", 1, 0, MAX_LAYERS, &hp->n_layer)) ||
        (st = hp_u32(m, "feed_forward_length", 1, 0, MAX_DIM, &hp->n_ff)) ||
        (st = hp_u32(m, "attention.head_count", 1, 0, 4096, &hp->n_head)))
        return st;
    if ((st = hp_u32(m, "attention.head_count_kv", 0, (uint32_t)hp->n_head, 4096, &hp->n_head_kv)) ||
        (st = hp_u32(m, "attention.key_length", 0, (uint32_t)(hp->n_embd / hp->n_head), 4096, &hp->head_dim)) ||
        (st = hp_u32(m, "context_length", 0, 4096, 1u << 24, &hp->n_ctx_train)) ||
        (st = hp_f32(m, "rope.freq_base", 10000.0f, &hp->rope_theta)) ||
        (st = hp_f32(m, "attention.layer_norm_rms_epsilon", 1e-6f, &hp->rms_eps)))
        return st;
    int vlen = hp->head_dim;
    if ((st = hp_u32(m, "attention.value_length", 0, (uint32_t)hp->head_dim, 4096, &vlen))) return st;
    if (vlen != hp->head_dim) return ob_fail(OB_ERR_UNSUPPORTED, "value_length != key_length is not supported");
    if (hp->n_head % hp->n_head_kv != 0)
        return ob_fail(OB_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
    if (hp->head_dim % 2 != 0) return ob_fail(OB_ERR_FORMAT, "head dimension %d must be even for RoPE", hp->head_dim);
    if ((int64_t)hp->n_head * hp->head_dim > MAX_DIM) return ob_fail(OB_ERR_FORMAT, "attention width is too large");
    hp->q_dim = hp->n_head * hp->head_dim;
    hp->kv_dim = hp->n_head_kv * hp->head_dim;
    return OB_OK;
}

static ob_status load_tokenizer(struct ob_model *m) {
    gguf_str model_name;
    int r = gguf_get_str(&m->file, "tokenizer.ggml.model", &model_name);
    if (r == -1) return ob_fail(OB_ERR_FORMAT, "missing tokenizer (tokenizer.ggml.model)");
    if (r != 0) return ob_fail(OB_ERR_FORMAT, "metadata 'tokenizer.ggml.model' must be a string");
    if (!gguf_str_eq(model_name, "gpt2"))
        return ob_fail(OB_ERR_UNSUPPORTED, "tokenizer model '%.*s' is not supported (onebit runs byte-level BPE, 'gpt2')",
                       (int)(model_name.len > 32 ? 32 : model_name.len), model_name.ptr);
    gguf_str pre;
    if (gguf_get_str(&m->file, "tokenizer.ggml.pre", &pre) == 0 && !gguf_str_eq(pre, "qwen2"))
        return ob_fail(OB_ERR_UNSUPPORTED, "pre-tokenizer '%.*s' is not supported (onebit runs 'qwen2')",
                       (int)(pre.len > 32 ? 32 : pre.len), pre.ptr);
    const gguf_kv *tk = gguf_find(&m->file, "tokenizer.ggml.tokens");
    const gguf_kv *mk = gguf_find(&m->file, "tokenizer.ggml.merges");
    const gguf_kv *ty = gguf_find(&m->file, "tokenizer.ggml.token_type");
    if (!tk || tk->type != GGUF_ARRAY || tk->arr_type != GGUF_STRING)
        return ob_fail(OB_ERR_FORMAT, "missing or malformed tokenizer.ggml.tokens");
    if (!mk || mk->type != GGUF_ARRAY || mk->arr_type != GGUF_STRING)
        return ob_fail(OB_ERR_FORMAT, "missing or malformed tokenizer.ggml.merges");
    if (tk->arr_n == 0 || tk->arr_n > MAX_VOCAB) return ob_fail(OB_ERR_FORMAT, "vocabulary size %llu is out of range",
                                                                (unsigned long long)tk->arr_n);
    if (mk->arr_n > MAX_VOCAB * 4ull) return ob_fail(OB_ERR_FORMAT, "too many merges");
    if (ty && (ty->type != GGUF_ARRAY || ty->arr_n != tk->arr_n))
        return ob_fail(OB_ERR_FORMAT, "tokenizer.ggml.token_type does not match the vocabulary");
    uint32_t nv = (uint32_t)tk->arr_n, nm = (uint32_t)mk->arr_n;
    ob_status st = OB_OK;
    gguf_str *sv = malloc(((size_t)nv + nm) * sizeof *sv);
    tok_bytes *tb = malloc(((size_t)nv + nm) * sizeof *tb);
    int32_t *types = ty ? malloc((size_t)nv * sizeof *types) : NULL;
    if (!sv || !tb || (ty && !types)) {
        st = ob_fail(OB_ERR_NOMEM, "out of memory loading the tokenizer");
        goto done;
    }
    gguf_get_str_array(tk, sv);
    gguf_get_str_array(mk, sv + nv);
    for (size_t i = 0; i < (size_t)nv + nm; i++) {
        if (sv[i].len > 65536) {
            st = ob_fail(OB_ERR_FORMAT, "tokenizer string %zu is too long", i);
            goto done;
        }
        tb[i].s = sv[i].ptr;
        tb[i].len = (uint32_t)sv[i].len;
    }
    if (ty && gguf_get_i32_array(ty, types) != 0) {
        st = ob_fail(OB_ERR_FORMAT, "tokenizer.ggml.token_type must be an integer array");
        goto done;
    }
    char err[256];
    if (tok_new(&m->tok, tb, types, nv, tb + nv, nm, err, sizeof err) != 0) {
        st = ob_fail(OB_ERR_FORMAT, "bad tokenizer: %s", err);
        goto done;
    }
    uint32_t id;
    m->bos = m->eos = m->eot = m->eot2 = -1;
    if (gguf_get_u32(&m->file, "tokenizer.ggml.bos_token_id", &id) == 0 && id < nv) m->bos = (ob_token)id;
    if (gguf_get_u32(&m->file, "tokenizer.ggml.eos_token_id", &id) == 0 && id < nv) m->eos = (ob_token)id;
    m->eot = tok_find(m->tok, "<|im_end|>", 10);
    m->eot2 = tok_find(m->tok, "<|endoftext|>", 13);
done:
    free(sv);
    free(tb);
    free(types);
    return st;
}

ob_status model_load(struct ob_model *m, const ob_model_params *p) {
    (void)p;
    ob_status st;
    gguf_str s;
    int r = gguf_get_str(&m->file, "general.architecture", &s);
    if (r == -1) return ob_fail(OB_ERR_FORMAT, "missing metadata key 'general.architecture'");
    if (r != 0) return ob_fail(OB_ERR_FORMAT, "metadata 'general.architecture' must be a string");
    if (!(m->arch = dup_str(s))) return ob_fail(OB_ERR_NOMEM, "out of memory");
    if (strlen(m->arch) != s.len || strcmp(m->arch, "qwen3") != 0)
        return ob_fail(OB_ERR_UNSUPPORTED, "architecture '%.32s' is not supported (onebit runs qwen3)", m->arch);
    m->name = gguf_get_str(&m->file, "general.name", &s) == 0 ? dup_str(s) : dup_str((gguf_str){"", 0});
    m->chat_template = gguf_get_str(&m->file, "tokenizer.chat_template", &s) == 0 ? dup_str(s) : NULL;
    if (!m->name) return ob_fail(OB_ERR_NOMEM, "out of memory");
    m->chat_kind = chat_detect(m->chat_template);
    if ((st = load_hparams(m))) return st;
    ob_hparams *hp = &m->hp;

    /* token_embd fixes n_vocab; the tokenizer must agree. */
    const gguf_tensor *te = find_tensor(m, "token_embd.weight", &st);
    if (!te) return st;
    if (te->ne[0] != (uint64_t)hp->n_embd || te->ne[1] == 0 || te->ne[1] > MAX_VOCAB)
        return ob_fail(OB_ERR_FORMAT, "tensor 'token_embd.weight' has shape [%llu, %llu], expected [%d, n_vocab]",
                       (unsigned long long)te->ne[0], (unsigned long long)te->ne[1], hp->n_embd);
    hp->n_vocab = (int)te->ne[1];

    m->weights = calloc((size_t)hp->n_layer * 7 + 2, sizeof *m->weights);
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->weights || !m->layers) return ob_fail(OB_ERR_NOMEM, "out of memory");
    /* Partial load: room for every vector (4 per layer + output_norm) to be pending. */
    if (m->partial && !(m->pending = calloc((size_t)hp->n_layer * 4 + 1, sizeof *m->pending)))
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    if ((st = get_matrix(m, "token_embd.weight", hp->n_vocab, hp->n_embd, &m->tok_embd))) return st;
    if (!m->tok_embd->data && !m->partial)
        return ob_fail(OB_ERR_ARG, "token embeddings are outside the loaded part of the file");
    for (int l = 0; l < hp->n_layer; l++) {
        ob_layer *L = &m->layers[l];
        char n[96];
#define MAT(field, suffix, rows, cols)                                                            \
        snprintf(n, sizeof n, "blk.%d.%s.weight", l, suffix);                                     \
        if ((st = get_matrix(m, n, rows, cols, &L->field))) return st;
#define VEC(field, suffix, len)                                                                   \
        snprintf(n, sizeof n, "blk.%d.%s.weight", l, suffix);                                     \
        if ((st = get_vector(m, n, len, &L->field))) return st;
        VEC(attn_norm, "attn_norm", hp->n_embd)
        MAT(wq, "attn_q", hp->q_dim, hp->n_embd)
        MAT(wk, "attn_k", hp->kv_dim, hp->n_embd)
        MAT(wv, "attn_v", hp->kv_dim, hp->n_embd)
        MAT(wo, "attn_output", hp->n_embd, hp->q_dim)
        VEC(q_norm, "attn_q_norm", hp->head_dim)
        VEC(k_norm, "attn_k_norm", hp->head_dim)
        VEC(ffn_norm, "ffn_norm", hp->n_embd)
        MAT(w_gate, "ffn_gate", hp->n_ff, hp->n_embd)
        MAT(w_up, "ffn_up", hp->n_ff, hp->n_embd)
        MAT(w_down, "ffn_down", hp->n_embd, hp->n_ff)
#undef MAT
#undef VEC
    }
    if ((st = get_vector(m, "output_norm.weight", hp->n_embd, &m->output_norm))) return st;
    if (gguf_find_tensor(&m->file, "output.weight")) {
        if ((st = get_matrix(m, "output.weight", hp->n_vocab, hp->n_embd, &m->output))) return st;
    } else {
        m->output = m->tok_embd;
        m->tied = 1;
    }
    if ((st = load_tokenizer(m))) return st;
    if (tok_n_vocab(m->tok) > (uint32_t)hp->n_vocab)
        return ob_fail(OB_ERR_FORMAT, "the tokenizer has %u tokens but the embedding only %d rows",
                       tok_n_vocab(m->tok), hp->n_vocab);
    m->meta_cache = calloc(m->file.n_kv ? (size_t)m->file.n_kv : 1, sizeof *m->meta_cache);
    if (!m->meta_cache) return ob_fail(OB_ERR_NOMEM, "out of memory");
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
    for (int i = 0; i < m->n_pending; i++) free(m->pending[i].raw);
    free(m->pending);
    if (m->layers)
        for (int l = 0; l < m->hp.n_layer; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].q_norm);
            free(m->layers[l].k_norm);
            free(m->layers[l].ffn_norm);
        }
    free(m->layers);
    free(m->weights);
    free(m->output_norm);
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
