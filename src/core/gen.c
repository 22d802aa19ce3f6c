/* gen.c — the generation loop, once for every front end: a step-wise state machine (ob_gen_*) and
 * ob_generate, its synchronous driver (CLI, server).
 *
 * It owns the rules of a generation: prefix reuse, the prompt-fits check, max_tokens, end-of-
 * generation tokens, stop strings (held back while a partial match is pending, never emitted),
 * whole UTF-8 characters only, the finish reason, and which generated tokens stay in the cache
 * (an end token does, a token that completes a stop string or that the caller stopped at does
 * not). It works on the public context API only: on a synchronous backend ob_gen_next evaluates
 * and samples itself; on an asynchronous one (WebGPU) it begins steps and tells the host when to
 * run them and when to wait, keeping the step that consumes a token in flight while that token's
 * text is worked out. It is not a scheduler (one generation per context at a time) and does no
 * I/O: text goes back to the caller event by event.
 */
#include <stdlib.h>
#include <string.h>

#include "gen_grammar.h"
#include "model.h"
#include "util.h"

enum gen_phase {
    G_PROMPT, /* prompt tokens not all begun yet */
    G_WAIT,   /* waiting for the next token (async: its step is in flight) */
    G_GOT,    /* async: a token arrived, not yet worked out */
    G_RUN,    /* sync: the last token was worked out and generation goes on */
    G_FINISH, /* the finish reason is known: drain, fix the cache, flush */
    G_DONE
};

struct ob_gen {
    ob_context *c;
    const ob_model *m;
    ob_sampling sp;
    int limit;                 /* most tokens to generate */
    char **stop;               /* [n_stop] copies of the stop strings */
    int n_stop;
    int async;                 /* the backend is asynchronous */
    int dev_sample;            /* ... and samples on the device (only the id comes back) */
    ob_sampler *smp;           /* host sampling (NULL when the device samples) */
    gen_grammar *gram;         /* the grammar the output must match, or NULL */
    int flush;                 /* the grammar ended the generation: flush the held text */
    ob_token *prompt;          /* [n_prompt] the prompt after the reused prefix */
    int n_prompt, prompt_done;
    enum gen_phase phase;
    ob_token tok;              /* the last token */
    int fed;                   /* async: a step consuming tok has begun */
    int keep;                  /* tok stays in the cache at the end */
    int eog;                   /* the generation ended on an end-of-generation token */
    int cancelled;
    int n_out;                 /* async: steps begun and not yet completed */
    ob_detok dt;
    char *held;                /* [held_cap] text held back for stop strings */
    size_t held_len, held_cap;
    char *text;                /* [text_cap] text of the last event */
    size_t text_len, text_cap;
    char *piece;               /* [piece_cap] one token's text */
    size_t piece_cap;
    ob_generate_result r;
    double t0, t1;
};

/* ---- text ----------------------------------------------------------------------------------- */

static int grow(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t nc = need * 2 + 64;
    char *np = realloc(*p, nc);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static int held_append(ob_gen *g, const char *s, size_t n) {
    if (grow(&g->held, &g->held_cap, g->held_len + n + 1)) return -1;
    memcpy(g->held + g->held_len, s, n);
    g->held_len += n;
    return 0;
}

/* Moves the first n held bytes to the event's text. */
static int emit_held(ob_gen *g, size_t n) {
    if (!n) return 0; /* held may still be NULL */
    if (grow(&g->text, &g->text_cap, g->text_len + n + 1)) return -1;
    memcpy(g->text + g->text_len, g->held, n);
    g->text_len += n;
    memmove(g->held, g->held + n, g->held_len - n);
    g->held_len -= n;
    return 0;
}

/* The earliest stop string in the held text: its offset, or -1. */
static long find_stop(const ob_gen *g) {
    long best = -1;
    for (int i = 0; i < g->n_stop; i++) {
        size_t sl = strlen(g->stop[i]);
        if (sl > g->held_len) continue;
        for (size_t o = 0; o + sl <= g->held_len; o++)
            if (memcmp(g->held + o, g->stop[i], sl) == 0) {
                if (best < 0 || (long)o < best) best = (long)o;
                break;
            }
    }
    return best;
}

/* How many trailing held bytes could still grow into a stop string. */
static size_t stop_holdback(const ob_gen *g) {
    size_t hold = 0;
    for (int i = 0; i < g->n_stop; i++) {
        size_t sl = strlen(g->stop[i]);
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= g->held_len && memcmp(g->held + g->held_len - k, g->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* ---- the rules ------------------------------------------------------------------------------ */

/* Cache length without the last token (async: its step may already have begun). */
static int cached(const ob_gen *g) { return ob_context_n_past(g->c) - (g->fed ? 1 : 0); }

static void finish(ob_gen *g, int why, int keep) {
    g->r.finish = why;
    g->keep = keep;
    g->phase = G_FINISH;
}

/* Works out token tok: its text, and whether and why the generation ends with it. */
static ob_status work_out(ob_gen *g, ob_token tok) {
    g->tok = tok;
    g->r.n_generated++;
    if (ob_token_is_eog(g->m, tok)) {
        g->eog = 1;
        finish(g, OB_FINISH_STOP, 1); /* the end token enters the cache, so the next turn's prompt matches */
        return OB_OK;
    }
    int np = ob_detok_push(g->m, &g->dt, tok, g->piece, g->piece_cap);
    if (np < 0) return ob_fail(OB_ERR_BACKEND, "generated token %d is out of range", (int)tok);
    if (np > 0 && held_append(g, g->piece, (size_t)np)) return ob_fail(OB_ERR_NOMEM, "out of memory");
    long at = find_stop(g);
    if (emit_held(g, at >= 0 ? (size_t)at : g->held_len - stop_holdback(g)))
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    if (at >= 0) finish(g, OB_FINISH_STOP, 0);
    else if (cached(g) >= ob_context_n_ctx(g->c)) finish(g, OB_FINISH_CONTEXT, 0);
    else if (g->r.n_generated >= g->limit) finish(g, OB_FINISH_LENGTH, 1);
    else g->phase = g->async ? G_WAIT : G_RUN;
    return OB_OK;
}

/* The next token from the host's logits; with a grammar only one it allows, and -1 when it
 * allows none (a finished sentence and no end-of-generation token to say so). */
static ob_token host_sample(ob_gen *g) {
    int n_past = ob_context_n_past(g->c), last_n = g->sp.repeat_last_n;
    int win = last_n < 0 ? n_past : (last_n < n_past ? last_n : n_past);
    const ob_token *hist = ob_context_tokens(g->c) + n_past - win;
    if (!g->gram) return ob_sampler_sample(g->smp, ob_logits(g->c, -1), hist, (size_t)win);
    double t0 = ob_now_ms();
    ob_token t = gg_sample(g->gram, g->smp, &g->sp, ob_logits(g->c, -1), hist, (size_t)win);
    if (t >= 0 && gg_accept(g->gram, t) != OB_OK) t = -1;
    g->r.t_grammar_ms += ob_now_ms() - t0;
    return t;
}

/* The grammar allows no further token: the generation ends here, with what was generated. */
static void grammar_end(ob_gen *g) {
    g->flush = 1;
    finish(g, OB_FINISH_STOP, 0);
}

/* Ends the generation: the last token leaves the cache when it should not stay, the held text
 * and any incomplete character are flushed when generation ran out (length, context). */
static ob_status wrap_up(ob_gen *g, ob_gen_event *ev) {
    if (g->fed && !g->keep) {
        ob_status st = ob_context_truncate(g->c, ob_context_n_past(g->c) - 1);
        if (st) return st;
        g->fed = 0;
    }
    if (g->r.finish == OB_FINISH_LENGTH || g->r.finish == OB_FINISH_CONTEXT || g->flush) {
        int nf = ob_detok_flush(&g->dt, g->piece, g->piece_cap);
        if ((nf > 0 && held_append(g, g->piece, (size_t)nf)) || emit_held(g, g->held_len))
            return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    g->r.t_gen_ms = ob_now_ms() - g->t1;
    g->phase = G_DONE;
    *ev = OB_GEN_DONE;
    return OB_OK;
}

/* The caller stopped at the last token: it leaves the cache, unless it ended the generation. */
static void apply_cancel(ob_gen *g) {
    if (!g->cancelled || g->eog || g->r.finish == OB_FINISH_CALLBACK) return;
    g->r.finish = OB_FINISH_CALLBACK;
    g->keep = 0;
    g->phase = G_FINISH;
}

/* ---- the machine ---------------------------------------------------------------------------- */

/* The one place parameters enter the generation, for every front end (CLI, server, JS): the range
 * checks of params.c, then the stop strings. */
static ob_status check_params(const ob_generate_params *p) {
    if (!p) return ob_fail(OB_ERR_ARG, "ob_gen_begin: no parameters");
    ob_status st = ob_sampling_check(&p->sampling);
    if (st) return st;
    if ((st = ob_limits_check(0, p->max_tokens > 0 ? p->max_tokens : 0))) return st;
    for (int i = 0; p->stop && p->stop[i]; i++)
        if (i >= 64) return ob_fail(OB_ERR_ARG, "stop: at most 64 stop strings");
    if (p->grammar && p->json_schema) return ob_fail(OB_ERR_ARG, "give a grammar or a json_schema, not both");
    return OB_OK;
}

ob_status ob_gen_begin(ob_context *c, const ob_token *prompt, size_t n_prompt, const ob_generate_params *p,
                       ob_gen **out) {
    if (!out) return ob_fail(OB_ERR_ARG, "ob_gen_begin: out is NULL");
    *out = NULL;
    if (!c || (!prompt && n_prompt)) return ob_fail(OB_ERR_ARG, "ob_gen_begin: bad arguments");
    ob_status st = check_params(p);
    if (st) return st;
    if (n_prompt == 0) return ob_fail(OB_ERR_ARG, "the prompt is empty");
    const int n_ctx = ob_context_n_ctx(c);
    if (n_prompt > (size_t)n_ctx)
        return ob_fail(OB_ERR_CONTEXT, "the prompt is %zu tokens but the context holds %d", n_prompt, n_ctx);
    ob_gen *g = calloc(1, sizeof *g);
    if (!g) return ob_fail(OB_ERR_NOMEM, "out of memory");
    g->c = c;
    g->m = ob_context_model(c);
    g->sp = p->sampling;
    g->limit = p->max_tokens > 0 ? p->max_tokens : n_ctx;
    g->async = ob_context_async(c);
    ob_detok_init(&g->dt);
    g->piece_cap = tok_max_piece(g->m->tok) * 3 + 16;
    g->piece = malloc(g->piece_cap);
    g->prompt = malloc(n_prompt * sizeof *g->prompt);
    int ns = 0;
    while (p->stop && p->stop[ns]) ns++;
    g->stop = calloc((size_t)ns + 1, sizeof *g->stop);
    if (!g->piece || !g->prompt || !g->stop) goto nomem;
    for (int i = 0; i < ns; i++) {
        if (!p->stop[i][0]) continue; /* an empty stop string matches nothing */
        if (!(g->stop[g->n_stop] = strdup(p->stop[i]))) goto nomem;
        g->n_stop++;
    }
    if ((p->grammar || p->json_schema) && (st = gg_new(g->m, p->grammar, p->json_schema, &g->gram))) goto fail;
    /* With a grammar the host masks the logits, so an asynchronous backend hands them back instead
     * of sampling on the device. */
    if (g->async && !g->gram && (st = ob_context_set_sampling(c, &g->sp, &g->dev_sample))) goto fail;
    if (!g->dev_sample && (st = ob_sampler_new(&g->sp, g->m->hp.n_vocab, &g->smp))) goto fail;
    /* Reuse the longest cached prefix, but always evaluate at least the last prompt token so that
     * fresh logits (or a fresh sample) exist. */
    const ob_token *have = ob_context_tokens(c);
    size_t keep = 0;
    while (keep < (size_t)ob_context_n_past(c) && keep < n_prompt - 1 && have[keep] == prompt[keep]) keep++;
    if ((st = ob_context_truncate(c, (int)keep))) goto fail;
    g->n_prompt = (int)(n_prompt - keep);
    memcpy(g->prompt, prompt + keep, (size_t)g->n_prompt * sizeof *prompt);
    g->r.n_reused = (int)keep;
    g->r.n_prompt = g->n_prompt;
    g->r.finish = OB_FINISH_LENGTH;
    g->phase = G_PROMPT;
    g->t0 = ob_now_ms();
    *out = g;
    return OB_OK;
nomem:
    st = ob_fail(OB_ERR_NOMEM, "out of memory");
fail:
    ob_gen_free(g);
    return st;
}

/* A synchronous backend: each call evaluates what is due, samples and works out one token. */
static ob_status next_sync(ob_gen *g, ob_gen_event *ev) {
    ob_status st;
    if (g->phase == G_RUN && g->cancelled) finish(g, OB_FINISH_CALLBACK, 0);
    if (g->phase == G_FINISH) {
        apply_cancel(g);
        if (g->keep && cached(g) < ob_context_n_ctx(g->c)) {
            g->keep = 0; /* evaluated once */
            if ((st = ob_eval(g->c, &g->tok, 1, 0))) return st;
        }
        return wrap_up(g, ev);
    }
    if (g->phase == G_PROMPT) {
        if ((st = ob_eval(g->c, g->prompt, g->n_prompt, 0))) return st;
        g->t1 = ob_now_ms();
        g->r.t_prompt_ms = g->t1 - g->t0;
    } else if ((st = ob_eval(g->c, &g->tok, 1, 0))) {
        return st;
    }
    ob_token t = host_sample(g);
    if (t < 0) {
        grammar_end(g);
        return next_sync(g, ev);
    }
    if ((st = work_out(g, t))) return st;
    *ev = OB_GEN_TOKEN;
    return OB_OK;
}

/* Begins the step that consumes the last token, before its text is worked out. */
static ob_status feed(ob_gen *g) {
    int k;
    ob_status st = g->dev_sample ? ob_step_begin(g->c, NULL, 1, OB_STEP_FEED | OB_STEP_SAMPLE, &k)
                                 : ob_step_begin(g->c, &g->tok, 1, OB_STEP_LOGITS, &k);
    if (st) return st;
    g->fed = 1;
    g->n_out++;
    return OB_OK;
}

/* An asynchronous backend: begins steps and says when to run and wait for them. */
static ob_status next_async(ob_gen *g, ob_gen_event *ev) {
    ob_status st;
    if (g->phase == G_PROMPT) {
        int k, flags = g->dev_sample ? OB_STEP_SAMPLE : OB_STEP_LOGITS;
        if ((st = ob_step_begin(g->c, g->prompt + g->prompt_done, g->n_prompt - g->prompt_done, flags, &k)))
            return st;
        g->prompt_done += k;
        g->n_out++;
        if (g->prompt_done == g->n_prompt) g->phase = G_WAIT;
        *ev = OB_GEN_SUBMIT;
        return OB_OK;
    }
    if (g->phase == G_GOT) {
        /* One step in flight: the token goes back to the device before the host works it out. */
        if (!g->fed && !g->cancelled && cached(g) < ob_context_n_ctx(g->c)) {
            if ((st = feed(g))) return st;
            *ev = OB_GEN_SUBMIT;
            return OB_OK;
        }
        if ((st = work_out(g, g->tok))) return st;
        *ev = OB_GEN_TOKEN;
        return OB_OK;
    }
    if (g->phase == G_WAIT && g->cancelled) finish(g, OB_FINISH_CALLBACK, 0);
    if (g->phase == G_FINISH) apply_cancel(g);
    if (g->n_out > 0) {
        *ev = OB_GEN_AWAIT;
        return OB_OK;
    }
    if (g->phase == G_WAIT) return ob_fail(OB_ERR_BACKEND, "ob_gen_next: waiting with no step in flight");
    return wrap_up(g, ev);
}

ob_status ob_gen_next(ob_gen *g, ob_gen_event *ev) {
    if (!g || !ev) return ob_fail(OB_ERR_ARG, "ob_gen_next: bad arguments");
    g->text_len = 0;
    if (g->phase == G_DONE) {
        *ev = OB_GEN_DONE;
        return OB_OK;
    }
    return g->async ? next_async(g, ev) : next_sync(g, ev);
}

ob_status ob_gen_complete(ob_gen *g, const void *result, size_t len) {
    if (!g || !g->async || g->n_out == 0) return ob_fail(OB_ERR_ARG, "ob_gen_complete: no step is in flight");
    ob_token t;
    g->n_out--;
    ob_status st = ob_step_end(g->c, result, len, &t);
    if (st) return st;
    if (g->phase != G_WAIT || g->n_out > 0) return OB_OK; /* a prompt chunk, or a step drained at the end */
    if (!g->dev_sample) t = host_sample(g);
    if (g->r.n_generated == 0) {
        g->t1 = ob_now_ms();
        g->r.t_prompt_ms = g->t1 - g->t0;
    }
    if (t < 0) {
        g->fed = 0;
        grammar_end(g);
        return OB_OK;
    }
    g->tok = t;
    g->fed = 0;
    g->phase = G_GOT;
    return OB_OK;
}

const char *ob_gen_text(const ob_gen *g, size_t *len) {
    *len = g->text_len;
    return g->text ? g->text : "";
}

ob_token ob_gen_token(const ob_gen *g) { return g->tok; }

void ob_gen_cancel(ob_gen *g) {
    if (g) g->cancelled = 1;
}

void ob_gen_result(const ob_gen *g, ob_generate_result *out) { *out = g->r; }

void ob_gen_free(ob_gen *g) {
    if (!g) return;
    if (g->n_out > 0) ob_context_forget_steps(g->c);
    for (int i = 0; i < g->n_stop; i++) free(g->stop[i]);
    free(g->stop);
    ob_sampler_free(g->smp);
    gg_free(g->gram);
    free(g->prompt);
    free(g->piece);
    free(g->held);
    free(g->text);
    free(g);
}

/* ---- the synchronous driver ----------------------------------------------------------------- */

ob_status ob_generate(ob_context *c, const ob_token *prompt, size_t n_prompt, const ob_generate_params *gp,
                      ob_generate_result *res) {
    ob_gen *g = NULL;
    ob_status st = ob_gen_begin(c, prompt, n_prompt, gp, &g);
    if (st) return st;
    for (;;) {
        ob_gen_event ev;
        if ((st = ob_gen_next(g, &ev))) break;
        if (ev == OB_GEN_SUBMIT || ev == OB_GEN_AWAIT) {
            st = ob_fail(OB_ERR_UNSUPPORTED, "ob_generate runs synchronous backends only: drive ob_gen_next");
            break;
        }
        size_t len;
        const char *text = ob_gen_text(g, &len);
        /* What the callback says about the flushed rest no longer matters. */
        if (len > 0 && gp->on_text && gp->on_text(text, len, gp->user) && ev == OB_GEN_TOKEN) ob_gen_cancel(g);
        if (ev == OB_GEN_DONE) break;
    }
    if (res) ob_gen_result(g, res);
    ob_gen_free(g);
    return st;
}
