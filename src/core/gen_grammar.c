/* gen_grammar.c — grammar-constrained sampling (see gen_grammar.h).
 *
 * The mask decides before sampling, for greedy and sampled decoding alike; it is exact (the same
 * token comes out as if every disallowed token's logit were -inf) but avoids walking the whole
 * vocabulary when it can: with greedy decoding or top-k, the best candidates by raw logit (and the
 * tokens the penalties may lift) are checked one by one first; when at least k of them are
 * allowed, no token further down can enter the top k, and the other logits are simply set to
 * -inf. With top-k, top-p and min-p all off, a token is drawn first and kept when allowed (exact
 * too). Otherwise the whole vocabulary is masked in one walk over the tokens sorted by their bytes
 * (grammar.c).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gen_grammar.h"
#include "grammar.h"
#include "json_schema.h"
#include "model.h"
#include "util.h"

#define GG_CANDIDATES 64 /* raw-logit candidates checked one by one before a full mask */
#define GG_MAX_K 256     /* larger top-k: mask the whole vocabulary */

struct gen_gvocab {
    const char **bytes; /* (n) token bytes */
    uint32_t *lens;     /* (n) */
    uint8_t *kind;      /* (n) 0 text, 1 end of generation, 2 never */
    gram_vocab *v;
};

struct gen_grammar {
    gram_grammar *g;
    gram_matcher *m;
    const struct gen_gvocab *voc;
    int n_vocab;
    float *masked;      /* (n_vocab) logits with the disallowed ones at -inf */
    uint8_t *allowed;   /* (n_vocab) the full mask */
    uint8_t *seen;      /* (n_vocab) candidate marks, zero between calls */
    int32_t *cand;      /* (cand_max) candidates of the current call: cand[0 .. cand_cap) */
    size_t cand_max;
    int cand_cap;
};

void gen_gvocab_free(struct gen_gvocab *v) {
    if (!v) return;
    gram_vocab_free(v->v);
    free(v->bytes);
    free(v->lens);
    free(v->kind);
    free(v);
}

/* The model's vocabulary for masks, built once; threads that race both build and one wins. */
static const struct gen_gvocab *model_vocab(const ob_model *cm) {
    ob_model *m = (ob_model *)cm; /* only the lazily built cache changes */
    struct gen_gvocab *have = atomic_load(&m->gvocab);
    if (have) return have;
    int n = m->hp.n_vocab;
    struct gen_gvocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->bytes = calloc((size_t)n + 1, sizeof *v->bytes);
    v->lens = calloc((size_t)n + 1, sizeof *v->lens);
    v->kind = calloc((size_t)n + 1, 1);
    if (!v->bytes || !v->lens || !v->kind) goto fail;
    for (int i = 0; i < n; i++) {
        const char *b = "";
        size_t len = 0;
        if (tok_piece(m->tok, i, &b, &len) != 0) {
            b = "";
            len = 0;
        }
        v->bytes[i] = b;
        v->lens[i] = (uint32_t)len;
        if (ob_token_is_eog(m, i)) v->kind[i] = 1;
        else if (len == 0 || tok_added_type(m->tok, i) == TOK_CONTROL) v->kind[i] = 2;
    }
    if (!(v->v = gram_vocab_new(v->bytes, v->lens, v->kind, n))) goto fail;
    struct gen_gvocab *expect = NULL;
    if (atomic_compare_exchange_strong(&m->gvocab, &expect, v)) return v;
    gen_gvocab_free(v);
    return expect;
fail:
    gen_gvocab_free(v);
    return NULL;
}

ob_status gg_new(const ob_model *m, const char *gbnf, const char *json_schema, gen_grammar **out) {
    *out = NULL;
    char err[512];
    char *text = NULL;
    if (json_schema) {
        if (json_schema_to_gbnf(json_schema, strlen(json_schema), &text, err, sizeof err))
            return ob_fail(strstr(err, "not supported") ? OB_ERR_UNSUPPORTED : OB_ERR_ARG, "%s", err);
        gbnf = text;
    }
    gen_grammar *g = calloc(1, sizeof *g);
    if (!g) {
        free(text);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    int rc = gram_parse(gbnf, strlen(gbnf), &g->g, err, sizeof err);
    free(text);
    if (rc) {
        gg_free(g);
        return ob_fail(OB_ERR_ARG, "%s", err);
    }
    if (!(g->m = gram_matcher_new(g->g, err, sizeof err))) {
        gg_free(g);
        return ob_fail(OB_ERR_ARG, "%s", err);
    }
    g->n_vocab = m->hp.n_vocab;
    g->voc = model_vocab(m);
    g->masked = malloc((size_t)g->n_vocab * sizeof *g->masked);
    g->allowed = malloc((size_t)g->n_vocab);
    g->seen = calloc((size_t)g->n_vocab, 1);
    if (!g->voc || !g->masked || !g->allowed || !g->seen) {
        gg_free(g);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    *out = g;
    return OB_OK;
}

void gg_free(gen_grammar *g) {
    if (!g) return;
    gram_matcher_free(g->m);
    gram_free(g->g);
    free(g->masked);
    free(g->allowed);
    free(g->seen);
    free(g->cand);
    free(g);
}

static int cand_push(gen_grammar *g, int32_t id) {
    if (g->seen[id]) return 0;
    g->seen[id] = 1;
    g->cand[g->cand_cap++] = id;
    return 1;
}

/* The n best token ids by logit into top[0..n) (a min-heap; order not kept). */
static int top_ids(const float *l, int n_vocab, int32_t *top, int n) {
    int k = 0;
    for (int i = 0; i < n_vocab; i++) {
        float x = l[i];
        if (x != x) continue;
        if (k < n) {
            int j = k++;
            top[j] = i;
            while (j > 0 && l[top[(j - 1) / 2]] > l[top[j]]) {
                int32_t t = top[j];
                top[j] = top[(j - 1) / 2];
                top[(j - 1) / 2] = t;
                j = (j - 1) / 2;
            }
        } else if (x > l[top[0]]) {
            top[0] = i;
            for (int j = 0;;) {
                int a = 2 * j + 1, b = a + 1, s = j;
                if (a < k && l[top[a]] < l[top[s]]) s = a;
                if (b < k && l[top[b]] < l[top[s]]) s = b;
                if (s == j) break;
                int32_t t = top[j];
                top[j] = top[s];
                top[s] = t;
                j = s;
            }
        }
    }
    return k;
}

/* Tries the candidates: 1 if the masked logits are ready (at least k allowed ones that no other
 * token can outrank). */
static int try_candidates(gen_grammar *g, const ob_sampling *sp, int k, const float *logits, const ob_token *hist,
                          size_t n_hist) {
    int penal = sp->repeat_last_n != 0 && (sp->repeat_penalty != 1.0f || sp->presence_penalty != 0.0f ||
                                           sp->frequency_penalty != 0.0f);
    size_t win = 0;
    if (penal && hist) {
        win = sp->repeat_last_n < 0 ? n_hist : (size_t)sp->repeat_last_n;
        if (win > n_hist) win = n_hist;
    }
    int ntop = GG_CANDIDATES > 4 * k ? GG_CANDIDATES : 4 * k;
    size_t need = (size_t)ntop + win + 1;
    if (need > g->cand_max) {
        free(g->cand);
        g->cand_max = 0;
        if (!(g->cand = malloc(need * sizeof *g->cand))) return 0;
        g->cand_max = need;
    }
    g->cand_cap = 0;
    int32_t *top = malloc((size_t)ntop * sizeof *top);
    if (!top) return 0;
    int nt = top_ids(logits, g->n_vocab, top, ntop);
    /* penalty-window tokens may move up: they are candidates whatever their raw logit */
    for (size_t i = n_hist - win; i < n_hist; i++)
        if (hist[i] >= 0 && hist[i] < g->n_vocab) cand_push(g, hist[i]);
    int good = 0;
    for (int i = 0; i < nt; i++)
        if (cand_push(g, top[i]) && gram_token_ok(g->m, g->voc->v, top[i])) good++;
    free(top);
    int ok = good >= k && nt == ntop;
    if (ok) {
        for (int i = 0; i < g->n_vocab; i++) g->masked[i] = -INFINITY;
        for (int i = 0; i < g->cand_cap; i++) {
            int id = g->cand[i];
            if (gram_token_ok(g->m, g->voc->v, id)) g->masked[id] = logits[id];
        }
    }
    for (int i = 0; i < g->cand_cap; i++) g->seen[g->cand[i]] = 0;
    return ok;
}

ob_token gg_sample(gen_grammar *g, ob_sampler *s, const ob_sampling *sp, const float *logits, const ob_token *hist,
                   size_t n_hist) {
    int k = sp->temperature <= 0 ? 1 : sp->top_k;
    if (gram_is_done(g->m) && !gram_can_end(g->m)) return -1;
    if (k <= 0 && sp->top_p >= 1.0f && sp->min_p <= 0.0f) {
        /* Plain temperature sampling over the whole vocabulary: draw first and keep the token when
         * the grammar allows it. Exact: a token drawn this way, or after a refusal from the masked
         * distribution, comes out with probability p / (mass of the allowed tokens). */
        ob_token t = ob_sampler_sample(s, logits, hist, n_hist);
        if (gram_token_ok(g->m, g->voc->v, t)) return t;
    }
    if (!(k > 0 && k <= GG_MAX_K && try_candidates(g, sp, k, logits, hist, n_hist))) {
        if (gram_mask(g->m, g->voc->v, g->allowed) == 0) return -1;
        for (int i = 0; i < g->n_vocab; i++) g->masked[i] = g->allowed[i] ? logits[i] : -INFINITY;
    }
    ob_token t = ob_sampler_sample(s, g->masked, hist, n_hist);
    if (t < 0 || t >= g->n_vocab || !(g->masked[t] > -INFINITY)) return -1;
    return t;
}

ob_status gg_accept(gen_grammar *g, ob_token tok) {
    if (tok < 0 || tok >= g->n_vocab) return ob_fail(OB_ERR_ARG, "grammar: token %d is out of range", (int)tok);
    if (g->voc->kind[tok] == 1) return OB_OK; /* the end: nothing follows */
    if (gram_accept(g->m, g->voc->bytes[tok], g->voc->lens[tok]))
        return ob_fail(OB_ERR_BACKEND, "grammar: token %d does not continue the grammar", (int)tok);
    return OB_OK;
}

/* ---- public helpers ------------------------------------------------------------------------- */

ob_status ob_grammar_check(const char *gbnf) {
    if (!gbnf) return ob_fail(OB_ERR_ARG, "ob_grammar_check: no grammar");
    char err[512];
    gram_grammar *g;
    if (gram_parse(gbnf, strlen(gbnf), &g, err, sizeof err)) return ob_fail(OB_ERR_ARG, "%s", err);
    gram_matcher *m = gram_matcher_new(g, err, sizeof err);
    gram_matcher_free(m);
    gram_free(g);
    return m ? OB_OK : ob_fail(OB_ERR_ARG, "%s", err);
}

ob_status ob_json_schema_to_grammar(const char *schema_json, char **gbnf) {
    if (!gbnf) return ob_fail(OB_ERR_ARG, "ob_json_schema_to_grammar: gbnf is NULL");
    *gbnf = NULL;
    if (!schema_json) return ob_fail(OB_ERR_ARG, "ob_json_schema_to_grammar: no schema");
    char err[512];
    if (json_schema_to_gbnf(schema_json, strlen(schema_json), gbnf, err, sizeof err))
        return ob_fail(strstr(err, "not supported") ? OB_ERR_UNSUPPORTED : OB_ERR_ARG, "%s", err);
    return OB_OK;
}
