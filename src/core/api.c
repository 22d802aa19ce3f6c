/* api.c — the public API (onebit.h): model and context lifetimes, tokenizer and chat wrappers,
 * evaluation with KV-cache bookkeeping, for synchronous backends (ob_eval) and asynchronous ones
 * (ob_step_begin / ob_step_end: the steps in flight, the tokens a device sampled into the cache).
 *
 * This file owns policy (which backend, context limits); arithmetic lives in the backends and the
 * tokenizer, chat and sampling modules; the generation loop lives in gen.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "chat.h"
#include "model.h"
#include "util.h"

struct ob_context {
    struct ob_model *m;
    void *bstate;            /* backend per-context state */
    int n_ctx, n_past;
    ob_token *tokens;        /* [n_ctx] tokens in the cache */
    float *logits;           /* [logits_rows][n_vocab] */
    size_t logits_cap;       /* floats allocated */
    int logits_rows;         /* rows held by the last eval (n when all_logits, else 1) */
    /* Asynchronous backends: steps begun and not yet ended, oldest first. */
    struct ob_step_rec { int pos, rows, sample, feed; } *steps; /* [steps_cap] ring */
    int steps_first, steps_n, steps_cap;
    ob_token last_sampled;   /* the device's token of the last step that ended with one, or -1 */
};

/* ---- models --------------------------------------------------------------------------------- */

ob_model_params ob_model_default_params(void) {
    ob_model_params p = {0};
    return p;
}

static const ob_backend *pick_backend(const char *name) {
    for (int i = 0; ob_backends[i]; i++) {
        const ob_backend *b = ob_backends[i];
        if (name && *name && strcmp(name, "auto") != 0 && strcmp(b->name, name) != 0) continue;
        if (b->supported()) return b;
    }
    return NULL;
}

/* Touches every weight page once so that loading shows real progress and the first token does
 * not pay for page faults. Returns non-zero if the caller cancelled. */
static int prefault(struct ob_model *m, const ob_model_params *p) {
    if (!p || !p->progress || m->partial) return 0;
    uint64_t total = 0, done = 0;
    for (int i = 0; i < m->n_weights; i++) total += (uint64_t)m->weights[i].rows * m->weights[i].row_bytes;
    volatile uint8_t sink = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        size_t bytes = (size_t)w->rows * w->row_bytes;
        for (size_t off = 0; off < bytes; off += 4096) sink ^= w->data[off];
        done += bytes;
        if (p->progress((float)((double)done / (double)(total ? total : 1)), p->progress_user)) return 1;
    }
    (void)sink;
    return 0;
}

/* The reader's messages say what kind of failure it was: unreadable, or well-formed but unsupported. */
static ob_status reader_status(const char *err) {
    if (strncmp(err, "cannot", 6) == 0 || strstr(err, "regular file")) return OB_ERR_IO;
    if (strncmp(err, "unsupported", 11) == 0) return OB_ERR_UNSUPPORTED;
    return OB_ERR_FORMAT;
}

static ob_status load_common(struct ob_model *m, const ob_model_params *p, ob_model **out) {
    ob_model_params def = ob_model_default_params();
    if (!p) p = &def;
    ob_status st = model_load(m, p);
    if (st == OB_OK && m->vocab_only) {
        *out = m; /* no weights, no backend: tokenizer and metadata calls only */
        return OB_OK;
    }
    if (st == OB_OK && prefault(m, p)) st = ob_fail(OB_ERR_CANCELLED, "loading cancelled");
    if (st == OB_OK) {
        m->backend = pick_backend(p->backend);
        if (!m->backend) st = ob_fail(OB_ERR_UNSUPPORTED, "backend '%s' is not available on this machine", p->backend);
    }
    if (st == OB_OK && m->partial && !m->backend->streams_weights)
        st = ob_fail(OB_ERR_ARG, "backend '%s' needs the whole file in memory; only a prefix was given",
                     m->backend->name);
    if (st == OB_OK && !m->partial) {
        for (int i = 0; i < m->n_weights; i++)
            if (!m->weights[i].data) {
                st = ob_fail(OB_ERR_ARG, "weights lie outside the loaded part of the file");
                break;
            }
    }
    if (st == OB_OK) {
        int threads = p->n_threads > 0 ? p->n_threads : ob_default_threads();
        m->n_threads = threads;
        st = m->backend->model_init(m, threads, &m->bstate);
    }
    if (st != OB_OK) {
        model_release(m);
        free(m);
        return st;
    }
    *out = m;
    return OB_OK;
}

ob_status ob_model_load_file(const char *path, const ob_model_params *p, ob_model **out) {
    if (!path || !out) return ob_fail(OB_ERR_ARG, "ob_model_load_file: NULL argument");
    *out = NULL;
    struct ob_model *m = calloc(1, sizeof *m);
    if (!m) return ob_fail(OB_ERR_NOMEM, "out of memory");
    char err[512];
    if (gguf_open_file(&m->file, path, err, sizeof err) != 0) {
        free(m);
        return ob_fail(reader_status(err), "%s", err);
    }
    return load_common(m, p, out);
}

ob_status ob_model_load_memory(const void *data, size_t size, const ob_model_params *p, ob_model **out) {
    if (!data || !out) return ob_fail(OB_ERR_ARG, "ob_model_load_memory: NULL argument");
    *out = NULL;
    struct ob_model *m = calloc(1, sizeof *m);
    if (!m) return ob_fail(OB_ERR_NOMEM, "out of memory");
    char err[512];
    if (gguf_open_memory(&m->file, data, size, size, err, sizeof err) != 0) {
        free(m);
        return ob_fail(reader_status(err), "%s", err);
    }
    return load_common(m, p, out);
}

ob_status ob_model_load_partial(void *image, size_t avail, uint64_t file_size, const ob_model_params *p,
                                ob_model **out) {
    if (!image || !out) {
        free(image);
        return ob_fail(OB_ERR_ARG, "ob_model_load_partial: NULL argument");
    }
    *out = NULL;
    struct ob_model *m = calloc(1, sizeof *m);
    if (!m) {
        free(image);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    m->partial = 1;
    m->image = image;
    char err[512];
    if (gguf_open_memory(&m->file, image, avail, file_size, err, sizeof err) != 0) {
        free(image);
        free(m);
        return ob_fail(reader_status(err), "%s", err);
    }
    return load_common(m, p, out);
}

void ob_model_free(ob_model *m) {
    if (!m) return;
    if (m->backend && m->bstate) m->backend->model_free(m->bstate);
    model_release(m);
    free(m);
}

void ob_model_get_info(const ob_model *m, ob_model_info *o) {
    memset(o, 0, sizeof *o);
    o->arch = m->arch;
    o->name = m->name;
    o->backend = m->backend ? m->backend->name : "";
    o->isa = m->backend && m->backend->detail && m->bstate ? m->backend->detail(m->bstate) : "";
    o->n_vocab = m->hp.n_vocab;
    o->n_embd = m->hp.n_embd;
    o->n_layer = m->hp.n_layer;
    o->n_head = m->hp.n_head;
    o->n_head_kv = m->hp.n_head_kv;
    o->head_dim = m->hp.head_dim;
    o->n_ff = m->hp.n_ff;
    o->n_ctx_train = m->hp.n_ctx_train;
    o->rope_theta = m->hp.rope_theta;
    o->norm_eps = m->hp.norm_eps;
    o->tied_embeddings = m->tied;
    o->n_params = m->n_params;
    o->file_size = m->file.size;
    o->weight_bytes = m->weight_bytes;
    o->bos = m->bos;
    o->eos = m->eos;
    o->eot = m->eot;
    o->n_threads = m->n_threads;
}

const char *ob_model_describe(const ob_model *m) {
    return m->desc ? m->desc : "vocabulary only";
}

const ob_token *ob_model_eog(const ob_model *m, int *n) {
    *n = m->n_eog;
    return m->eog;
}

const char *ob_model_chat_template(const ob_model *m) { return m->chat_template; }

/* Renders one scalar value at p of type t. */
static int render_scalar(char *buf, size_t cap, uint32_t t, const uint8_t *p) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32;
            uint64_t u64; int64_t i64; double f64; } v;
    memset(&v, 0, sizeof v);
    switch (t) {
    case GGUF_UINT8: memcpy(&v, p, 1); return snprintf(buf, cap, "%u", v.u8);
    case GGUF_INT8: memcpy(&v, p, 1); return snprintf(buf, cap, "%d", v.i8);
    case GGUF_UINT16: memcpy(&v, p, 2); return snprintf(buf, cap, "%u", v.u16);
    case GGUF_INT16: memcpy(&v, p, 2); return snprintf(buf, cap, "%d", v.i16);
    case GGUF_UINT32: memcpy(&v, p, 4); return snprintf(buf, cap, "%u", v.u32);
    case GGUF_INT32: memcpy(&v, p, 4); return snprintf(buf, cap, "%d", v.i32);
    case GGUF_FLOAT32: memcpy(&v, p, 4); return snprintf(buf, cap, "%g", v.f32);
    case GGUF_BOOL: return snprintf(buf, cap, "%s", p[0] ? "true" : "false");
    case GGUF_UINT64: memcpy(&v, p, 8); return snprintf(buf, cap, "%llu", (unsigned long long)v.u64);
    case GGUF_INT64: memcpy(&v, p, 8); return snprintf(buf, cap, "%lld", (long long)v.i64);
    case GGUF_FLOAT64: memcpy(&v, p, 8); return snprintf(buf, cap, "%g", v.f64);
    }
    return snprintf(buf, cap, "?");
}

const char *ob_model_meta(const ob_model *cm, const char *key) {
    struct ob_model *m = (struct ob_model *)cm; /* the cache is logically const */
    for (uint64_t i = 0; i < m->file.n_kv; i++) {
        const gguf_kv *kv = &m->file.kv[i];
        if (!gguf_str_eq(kv->key, key)) continue;
        if (m->meta_cache[i]) return m->meta_cache[i];
        char buf[256];
        size_t len;
        const char *src = buf;
        if (kv->type == GGUF_STRING) {
            uint64_t n;
            memcpy(&n, kv->val, 8);
            src = (const char *)kv->val + 8;
            len = (size_t)n;
        } else if (kv->type == GGUF_ARRAY) {
            if (kv->arr_type != GGUF_STRING && kv->arr_n <= 8) {
                static const uint8_t w[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
                size_t o = (size_t)snprintf(buf, sizeof buf, "[");
                for (uint64_t j = 0; j < kv->arr_n; j++) {
                    o += (size_t)snprintf(buf + o, sizeof buf - o, j ? ", " : "");
                    o += (size_t)render_scalar(buf + o, sizeof buf - o, kv->arr_type, kv->val + j * w[kv->arr_type]);
                }
                snprintf(buf + o, sizeof buf - o, "]");
            } else {
                snprintf(buf, sizeof buf, "[%llu x %s]", (unsigned long long)kv->arr_n, gguf_vtype_name(kv->arr_type));
            }
            len = strlen(buf);
        } else {
            render_scalar(buf, sizeof buf, kv->type, kv->val);
            len = strlen(buf);
        }
        char *s = malloc(len + 1);
        if (!s) return NULL;
        memcpy(s, src, len);
        s[len] = 0;
        m->meta_cache[i] = s;
        return s;
    }
    return NULL;
}

/* ---- tokenizer ------------------------------------------------------------------------------ */

ob_status ob_tokenize(const ob_model *m, const char *text, size_t len, int parse_special, ob_token *out, size_t cap,
                      size_t *n_out) {
    if (!m || (!text && len) || !n_out || (!out && cap)) return ob_fail(OB_ERR_ARG, "ob_tokenize: bad arguments");
    if (tok_encode(m->tok, text ? text : "", len, parse_special, out, cap, n_out) != 0)
        return ob_fail(OB_ERR_NOMEM, "out of memory while tokenizing");
    return OB_OK;
}

ob_status ob_tokenize_prompt(const ob_model *m, const char *text, size_t len, int parse_special, ob_token *out,
                             size_t cap, size_t *n_out) {
    if (!m || (!text && len) || !n_out || (!out && cap))
        return ob_fail(OB_ERR_ARG, "ob_tokenize_prompt: bad arguments");
    size_t n = 0;
    int bos = m->add_bos && m->bos >= 0;
    /* the text's own ids go after the BOS slot; a first id equal to BOS takes its place */
    if (tok_encode(m->tok, text ? text : "", len, parse_special, out ? out + (bos && cap) : NULL,
                   cap > 0 ? cap - (size_t)(bos && cap) : 0, &n) != 0)
        return ob_fail(OB_ERR_NOMEM, "out of memory while tokenizing");
    if (bos) {
        int has = 0;
        if (n > 0) {   /* does the text start with BOS? (its first id, without a buffer too) */
            ob_token first = -1;
            if (cap > 1) first = out[1];
            else {
                size_t n1 = 0;
                ob_token *tmp = malloc(n * sizeof *tmp);
                if (!tmp) return ob_fail(OB_ERR_NOMEM, "out of memory while tokenizing");
                if (tok_encode(m->tok, text, len, parse_special, tmp, n, &n1) == 0) first = tmp[0];
                free(tmp);
            }
            has = first == m->bos;
        }
        if (has) {
            if (cap > 1) memmove(out, out + 1, (n < cap - 1 ? n : cap - 1) * sizeof *out);
            else if (cap) out[0] = m->bos;
        } else {
            if (cap) out[0] = m->bos;
            n++;
        }
    }
    if (m->add_eos && m->eos >= 0) {
        if (n < cap) out[n] = m->eos;
        n++;
    }
    *n_out = n;
    return OB_OK;
}

ob_status ob_token_bytes(const ob_model *m, ob_token tok, const char **bytes, size_t *len) {
    if (tok_piece(m->tok, tok, bytes, len) != 0) return ob_fail(OB_ERR_ARG, "token id %d is out of range", (int)tok);
    return OB_OK;
}

int ob_token_is_eog(const ob_model *m, ob_token tok) {
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == tok) return 1;
    return 0;
}

void ob_detok_init(ob_detok *d) { memset(d, 0, sizeof *d); }

/* Length of the UTF-8 sequence a lead byte starts (0 if it cannot start one). */
static int utf8_len(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xc2 && b <= 0xdf) return 2;
    if (b >= 0xe0 && b <= 0xef) return 3;
    if (b >= 0xf0 && b <= 0xf4) return 4;
    return 0;
}

/* May byte b follow pend[0..n) inside one well-formed sequence? (RFC 3629 ranges) */
static int utf8_ok_next(const unsigned char *pend, int n, unsigned char b) {
    if ((b & 0xc0) != 0x80) return 0;
    if (n == 1) {
        switch (pend[0]) {
        case 0xe0: return b >= 0xa0;
        case 0xed: return b <= 0x9f;
        case 0xf0: return b >= 0x90;
        case 0xf4: return b <= 0x8f;
        }
    }
    return 1;
}

static const char REPLACEMENT[3] = {(char)0xef, (char)0xbf, (char)0xbd};

int ob_detok_push(const ob_model *m, ob_detok *d, ob_token tok, char *out, size_t cap) {
    const char *p;
    size_t len;
    if (tok_piece(m->tok, tok, &p, &len) != 0) return -1;
    if (cap < len * 3 + 8) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)p[i];
        if (d->n_pend > 0) {
            if (utf8_ok_next(d->pend, d->n_pend, b)) {
                d->pend[d->n_pend++] = b;
                if (d->n_pend == utf8_len(d->pend[0])) {
                    memcpy(out + o, d->pend, (size_t)d->n_pend);
                    o += (size_t)d->n_pend;
                    d->n_pend = 0;
                }
                continue;
            }
            memcpy(out + o, REPLACEMENT, 3); /* an interrupted sequence is one replacement */
            o += 3;
            d->n_pend = 0;
        }
        int n = utf8_len(b);
        if (n == 1) out[o++] = (char)b;
        else if (n == 0) { memcpy(out + o, REPLACEMENT, 3); o += 3; }
        else d->pend[d->n_pend++] = b;
    }
    return (int)o;
}

int ob_detok_flush(ob_detok *d, char *out, size_t cap) {
    if (d->n_pend == 0 || cap < 3) return 0;
    d->n_pend = 0;
    memcpy(out, REPLACEMENT, 3);
    return 3;
}

/* ---- chat ----------------------------------------------------------------------------------- */

ob_status ob_chat_render_json(const ob_model *m, const char *messages_json, const char *tools_json,
                              int add_generation_prompt, int enable_thinking, char **out) {
    if (!m || !messages_json || !out) return ob_fail(OB_ERR_ARG, "ob_chat_render_json: bad arguments");
    if (!m->chat_template)
        return ob_fail(OB_ERR_UNSUPPORTED, "the model has no chat template (tokenizer.chat_template): use plain "
                                           "completion (raw text) with it");
    if (!m->tmpl) return ob_fail(OB_ERR_FORMAT, "the model's chat template does not parse: %s", m->tmpl_err);
    char err[512];
    const char *bos = "", *eos = "";
    size_t lb = 0, le = 0;
    char bos_s[256] = "", eos_s[256] = "";
    if (m->bos >= 0 && tok_piece(m->tok, m->bos, &bos, &lb) == 0 && lb < sizeof bos_s) memcpy(bos_s, bos, lb);
    if (m->eos >= 0 && tok_piece(m->tok, m->eos, &eos, &le) == 0 && le < sizeof eos_s) memcpy(eos_s, eos, le);
    if (chat_render(m->tmpl, bos_s, eos_s, messages_json, tools_json, add_generation_prompt, enable_thinking, out, err,
                    sizeof err) != 0)
        return ob_fail(OB_ERR_ARG, "chat template: %s", err);
    return OB_OK;
}

ob_status ob_chat_render(const ob_model *m, const ob_chat_message *msgs, size_t n, int add_generation_prompt,
                         int enable_thinking, char **out) {
    if (!m || (!msgs && n) || !out) return ob_fail(OB_ERR_ARG, "ob_chat_render: bad arguments");
    char err[256], *json = NULL;
    if (chat_messages_json(msgs, n, &json, err, sizeof err) != 0) return ob_fail(OB_ERR_ARG, "%s", err);
    ob_status st = ob_chat_render_json(m, json, NULL, add_generation_prompt, enable_thinking, out);
    free(json);
    return st;
}

/* ---- contexts ------------------------------------------------------------------------------- */

ob_context_params ob_context_default_params(void) {
    ob_context_params p = {0};
    return p;
}

ob_status ob_context_new(ob_model *m, const ob_context_params *p, ob_context **out) {
    if (!m || !out) return ob_fail(OB_ERR_ARG, "ob_context_new: NULL argument");
    *out = NULL;
    if (m->vocab_only || !m->backend)
        return ob_fail(OB_ERR_ARG, "the model was loaded without weights (vocab_only): it cannot evaluate");
    int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    if (p && p->n_ctx < 0) return ob_fail(OB_ERR_ARG, "context size must be positive");
    if (n_ctx > (1 << 22)) return ob_fail(OB_ERR_ARG, "context size %d is too large", n_ctx);
    ob_context *c = calloc(1, sizeof *c);
    if (!c) return ob_fail(OB_ERR_NOMEM, "out of memory");
    c->m = m;
    c->n_ctx = n_ctx;
    c->tokens = malloc((size_t)n_ctx * sizeof *c->tokens);
    c->logits_cap = (size_t)m->hp.n_vocab;
    c->logits = malloc(c->logits_cap * sizeof *c->logits);
    if (!c->tokens || !c->logits) {
        ob_context_free(c);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    c->last_sampled = -1;
    ob_context_params bp = p ? *p : ob_context_default_params();
    bp.n_ctx = n_ctx;
    ob_status st = m->backend->ctx_init(m->bstate, &bp, &c->bstate);
    if (st) {
        ob_context_free(c);
        return st;
    }
    *out = c;
    return OB_OK;
}

void ob_context_free(ob_context *c) {
    if (!c) return;
    if (c->bstate) c->m->backend->ctx_free(c->bstate);
    free(c->tokens);
    free(c->logits);
    free(c->steps);
    free(c);
}

int ob_context_n_ctx(const ob_context *c) { return c->n_ctx; }
int ob_context_n_past(const ob_context *c) { return c->n_past; }
const ob_token *ob_context_tokens(const ob_context *c) { return c->tokens; }

ob_status ob_context_truncate(ob_context *c, int n) {
    if (n < 0 || n > c->n_past) return ob_fail(OB_ERR_ARG, "cannot truncate to %d tokens (%d cached)", n, c->n_past);
    c->n_past = n;
    c->logits_rows = 0;
    return OB_OK;
}

static ob_status check_tokens(const ob_context *c, const ob_token *tokens, int n) {
    const int V = c->m->hp.n_vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return ob_fail(OB_ERR_ARG, "token id %d at index %d is out of range (vocabulary %d)", (int)tokens[i], i, V);
    return OB_OK;
}

/* Makes room for rows of logits. */
static ob_status logits_room(ob_context *c, int rows) {
    size_t need = (size_t)rows * (size_t)c->m->hp.n_vocab;
    if (need > c->logits_cap) {
        float *nl = realloc(c->logits, need * sizeof *nl);
        if (!nl) return ob_fail(OB_ERR_NOMEM, "out of memory for %d rows of logits", rows);
        c->logits = nl;
        c->logits_cap = need;
    }
    return OB_OK;
}

ob_status ob_eval(ob_context *c, const ob_token *tokens, int n, int all_logits) {
    if (!c || !tokens || n <= 0) return ob_fail(OB_ERR_ARG, "ob_eval: nothing to evaluate");
    if (n > c->n_ctx - c->n_past)
        return ob_fail(OB_ERR_CONTEXT, "%d tokens do not fit: %d of %d context positions are free", n,
                       c->n_ctx - c->n_past, c->n_ctx);
    if (!c->m->backend->forward)
        return ob_fail(OB_ERR_UNSUPPORTED, "the %s backend runs asynchronously: use ob_step_begin or ob_gen_next",
                       c->m->backend->name);
    ob_status st = check_tokens(c, tokens, n);
    if (st) return st;
    if ((st = logits_room(c, all_logits ? n : 1))) return st;
    st = c->m->backend->forward(c->bstate, tokens, n, c->n_past, c->logits, all_logits);
    if (st) {
        c->logits_rows = 0;
        return st;
    }
    memcpy(c->tokens + c->n_past, tokens, (size_t)n * sizeof *tokens);
    c->n_past += n;
    c->logits_rows = all_logits ? n : 1;
    return OB_OK;
}

const float *ob_logits(const ob_context *c, int i) {
    if (c->logits_rows == 0) return NULL;
    if (i < 0) i = c->logits_rows - 1;
    if (i >= c->logits_rows) return NULL;
    return c->logits + (size_t)i * c->m->hp.n_vocab;
}

/* ---- embeddings ----------------------------------------------------------------------------- */

ob_pooling ob_model_pooling(const ob_model *m) {
    if (!m || !m->arch) return OB_POOLING_NONE;
    char key[128];
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.pooling_type", m->arch);
    if (gguf_get_u32(&m->file, key, &v) != 0) return OB_POOLING_NONE;
    return v == OB_POOLING_MEAN || v == OB_POOLING_CLS || v == OB_POOLING_LAST ? (ob_pooling)v : OB_POOLING_NONE;
}

ob_status ob_embed(ob_context *c, const ob_token *tokens, int n, int normalize, float *out) {
    if (!c || !tokens || n <= 0 || !out) return ob_fail(OB_ERR_ARG, "ob_embed: nothing to embed");
    ob_pooling pool = ob_model_pooling(c->m);
    if (pool == OB_POOLING_NONE)
        return ob_fail(OB_ERR_UNSUPPORTED, "the model has no pooling type (%s.pooling_type): it is not an embedding model",
                       c->m->arch);
    if (!c->m->backend->hidden)
        return ob_fail(OB_ERR_UNSUPPORTED, "the %s backend does not compute embeddings", c->m->backend->name);
    if (n > c->n_ctx) return ob_fail(OB_ERR_CONTEXT, "%d tokens do not fit a context of %d", n, c->n_ctx);
    ob_status st = check_tokens(c, tokens, n);
    if (st) return st;
    const int E = c->m->hp.n_embd;
    float *h = malloc((size_t)n * (size_t)E * sizeof *h);
    if (!h) return ob_fail(OB_ERR_NOMEM, "out of memory");
    c->n_past = 0; /* an embedding sees only its own tokens */
    c->logits_rows = 0;
    if ((st = c->m->backend->hidden(c->bstate, tokens, n, 0, h))) {
        free(h);
        return st;
    }
    memcpy(c->tokens, tokens, (size_t)n * sizeof *tokens);
    c->n_past = n;
    double *acc = calloc((size_t)E, sizeof *acc);
    if (!acc) {
        free(h);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    int first = pool == OB_POOLING_LAST ? n - 1 : 0, last = pool == OB_POOLING_CLS ? 1 : n;
    for (int t = first; t < last; t++)
        for (int i = 0; i < E; i++) acc[i] += h[(size_t)t * E + i];
    double norm = 0;
    for (int i = 0; i < E; i++) {
        acc[i] /= (double)(last - first);
        norm += acc[i] * acc[i];
    }
    norm = sqrt(norm);
    double scale = normalize && norm > 0 ? 1.0 / norm : 1.0;
    for (int i = 0; i < E; i++) out[i] = (float)(acc[i] * scale);
    free(acc);
    free(h);
    return OB_OK;
}

/* ---- asynchronous backends ------------------------------------------------------------------ */

const struct ob_model *ob_context_model(const ob_context *c) { return c->m; }

int ob_context_async(const ob_context *c) { return c->m->backend->forward == NULL; }

static struct ob_step_rec *step_at(ob_context *c, int i) {
    return &c->steps[(c->steps_first + i) % c->steps_cap];
}

ob_status ob_step_begin(ob_context *c, const ob_token *tokens, int n, int flags, int *taken) {
    if (!c || n <= 0 || !taken) return ob_fail(OB_ERR_ARG, "ob_step_begin: bad arguments");
    *taken = 0;
    const ob_backend *b = c->m->backend;
    if (b->forward) return ob_fail(OB_ERR_UNSUPPORTED, "the %s backend is synchronous: use ob_eval", b->name);
    const int feed = (flags & OB_STEP_FEED) != 0;
    if (feed && n != 1) return ob_fail(OB_ERR_ARG, "ob_step_begin: a fed step takes one token");
    if (!feed && !tokens) return ob_fail(OB_ERR_ARG, "ob_step_begin: no tokens");
    if (n > c->n_ctx - c->n_past)
        return ob_fail(OB_ERR_CONTEXT, "%d tokens do not fit: %d of %d context positions are free", n,
                       c->n_ctx - c->n_past, c->n_ctx);
    ob_status st = feed ? OB_OK : check_tokens(c, tokens, n);
    if (st) return st;
    if (feed) { /* the device's token comes from the latest step, ended or not */
        int from_step = c->steps_n > 0;
        if (from_step ? !step_at(c, c->steps_n - 1)->sample : c->last_sampled < 0)
            return ob_fail(OB_ERR_ARG, "ob_step_begin: no sampled token to feed");
    }
    if (c->steps_n == c->steps_cap) {
        int cap = c->steps_cap * 2 + 8;
        struct ob_step_rec *ns = malloc((size_t)cap * sizeof *ns);
        if (!ns) return ob_fail(OB_ERR_NOMEM, "out of memory");
        for (int i = 0; i < c->steps_n; i++) ns[i] = *step_at(c, i);
        free(c->steps);
        c->steps = ns;
        c->steps_cap = cap;
        c->steps_first = 0;
    }
    int k = 0;
    if ((st = b->step_begin(c->bstate, feed ? NULL : tokens, n, c->n_past, flags, &k))) return st;
    if (k <= 0 || k > n) return ob_fail(OB_ERR_BACKEND, "the %s backend took %d of %d tokens", b->name, k, n);
    /* What the result will hold (backend.h). */
    const int all = (flags & OB_STEP_ALL) != 0, last = k == n;
    struct ob_step_rec r = {c->n_past, all ? k : (last && (flags & OB_STEP_LOGITS)) ? 1 : 0,
                            !all && last && (flags & OB_STEP_SAMPLE), feed};
    if (feed && c->steps_n == 0) c->tokens[c->n_past] = c->last_sampled;
    else if (!feed) memcpy(c->tokens + c->n_past, tokens, (size_t)k * sizeof *tokens);
    *step_at(c, c->steps_n++) = r;
    c->last_sampled = -1;
    c->n_past += k;
    c->logits_rows = 0;
    *taken = k;
    return OB_OK;
}

ob_status ob_step_end(ob_context *c, const void *result, size_t len, ob_token *sampled) {
    if (sampled) *sampled = -1;
    if (!c || (!result && len)) return ob_fail(OB_ERR_ARG, "ob_step_end: bad arguments");
    if (c->steps_n == 0) return ob_fail(OB_ERR_ARG, "ob_step_end: no step is in flight");
    struct ob_step_rec r = *step_at(c, 0);
    c->steps_first = (c->steps_first + 1) % c->steps_cap;
    c->steps_n--;
    const size_t V = (size_t)c->m->hp.n_vocab, lbytes = (size_t)r.rows * V * sizeof(float);
    if (len != lbytes + (r.sample ? 4 : 0))
        return ob_fail(OB_ERR_BACKEND, "a step's result is %zu bytes, expected %zu", len, lbytes + (r.sample ? 4 : 0));
    ob_status st;
    if (r.rows) {
        if ((st = logits_room(c, r.rows))) return st;
        memcpy(c->logits, result, lbytes);
        c->logits_rows = r.rows;
    }
    if (r.sample) {
        int32_t t;
        memcpy(&t, (const uint8_t *)result + lbytes, 4);
        if (t < 0 || (size_t)t >= V) return ob_fail(OB_ERR_BACKEND, "the device sampled token %d (vocabulary %zu)", (int)t, V);
        /* A step begun after this one and fed with its token records it now. */
        if (c->steps_n > 0 && step_at(c, 0)->feed) c->tokens[step_at(c, 0)->pos] = t;
        else if (c->steps_n == 0) c->last_sampled = t;
        if (sampled) *sampled = t;
    }
    return OB_OK;
}

void ob_context_forget_steps(ob_context *c) {
    c->steps_n = 0;
    c->last_sampled = -1;
}

ob_status ob_context_set_sampling(ob_context *c, const ob_sampling *p, int *on_device) {
    if (!c || !p || !on_device) return ob_fail(OB_ERR_ARG, "ob_context_set_sampling: bad arguments");
    *on_device = 0;
    const ob_backend *b = c->m->backend;
    if (!b->set_sampling) return OB_OK;
    return b->set_sampling(c->bstate, p, on_device);
}
