/* serve_tools.c — the structure of a chat answer: Qwen3's <think>…</think> reasoning, and tool
 * calls in the model's own syntax, taken out of the generated text as it streams.
 *
 * The model writes one stream of text; OpenAI's answer has three parts: `content`,
 * `reasoning_content` and `tool_calls`. A reply_parser takes the text in pieces (as the generation
 * produces it, or all at once) and sorts it into those parts. It keeps the whole answer (for the
 * non-streaming response) and a queue of events (for the streaming one: a piece of content, a piece
 * of reasoning, a tool call beginning with its name, a piece of its arguments), so that both
 * answers come from the same code. It holds text back only while it cannot yet tell what it is: a
 * possible start of a marker ("<tool_call>", "</think>") and trailing whitespace, which is dropped
 * before a marker and kept otherwise.
 *
 * Tool-call syntaxes, chosen from the chat template's text (tool_format_of):
 *   TOOLFMT_HERMES  Qwen 2.5/3 and Hermes: <tool_call>\n{"name": N, "arguments": {…}}\n</tool_call>,
 *                   any number of them, content before, between and after.
 *   TOOLFMT_LLAMA3  Llama 3.1-3.3: the whole answer is one JSON object {"name": N, "parameters": {…}}
 *                   (or "arguments"), optionally after <|python_tag|>.
 * The arguments stream out as the model writes them when the object starts with its name, as both
 * templates tell the model to write it; an object in another key order is taken whole once it is
 * complete. A call whose text turns out not to be one (no name, not JSON) is given back as content.
 * The arguments are the model's text: valid JSON when the model wrote valid JSON (constrained
 * decoding is what makes that certain).
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static const char HERMES_OPEN[] = "<tool_call>", HERMES_CLOSE[] = "</tool_call>";
static const char THINK_OPEN[] = "<think>", THINK_CLOSE[] = "</think>";
static const char PYTHON_TAG[] = "<|python_tag|>";

tool_format tool_format_of(const char *tmpl) {
    if (!tmpl) return TOOLFMT_NONE;
    if (strstr(tmpl, "<tool_call>")) return TOOLFMT_HERMES;
    if (strstr(tmpl, "<|python_tag|>") || strstr(tmpl, "Environment: ipython")) return TOOLFMT_LLAMA3;
    return TOOLFMT_NONE;
}

/* ---- buffers -------------------------------------------------------------------------------- */

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom || n == 0) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Drops the first n bytes. */
static void sb_consume(sbuf *b, size_t n) {
    if (n >= b->len) { b->len = 0; if (b->p) b->p[0] = 0; return; }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = 0;
}

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* Position of marker in s[0..n), or -1. */
static long find(const char *s, size_t n, const char *marker) {
    size_t m = strlen(marker);
    for (size_t i = 0; i + m <= n; i++)
        if (s[i] == marker[0] && !memcmp(s + i, marker, m)) return (long)i;
    return -1;
}

/* Length of the longest end of s[0..n) that is a proper beginning of marker (text to hold back). */
static size_t partial_marker(const char *s, size_t n, const char *marker) {
    size_t m = strlen(marker);
    for (size_t k = m - 1 < n ? m - 1 : n; k > 0; k--)
        if (!memcmp(s + n - k, marker, k)) return k;
    return 0;
}

/* ---- events --------------------------------------------------------------------------------- */

static void event(reply_parser *p, rp_kind kind, int call, const char *s, size_t n) {
    if (n == 0 && kind != RP_CALL_BEGIN) return;
    if (kind == RP_CONTENT) sb_put(&p->content, s, n);
    else if (kind == RP_REASONING) sb_put(&p->reasoning, s, n);
    else if (kind == RP_CALL_ARGS) sb_put(&p->calls[call].args, s, n);
    if (!p->events_on) return;
    /* consecutive pieces of the same part merge into one event */
    if (kind != RP_CALL_BEGIN && p->n_ev && p->ev[p->n_ev - 1].kind == kind && p->ev[p->n_ev - 1].call == call &&
        p->ev[p->n_ev - 1].off + p->ev[p->n_ev - 1].len == p->ev_text.len) {
        sb_put(&p->ev_text, s, n);
        p->ev[p->n_ev - 1].len += n;
        return;
    }
    if (p->n_ev == p->cap_ev) {
        size_t cap = p->cap_ev ? p->cap_ev * 2 : 16;
        rp_event *e = realloc(p->ev, cap * sizeof *e);
        if (!e) { p->oom = 1; return; }
        p->ev = e;
        p->cap_ev = cap;
    }
    p->ev[p->n_ev++] = (rp_event){kind, call, p->ev_text.len, n};
    sb_put(&p->ev_text, s, n);
}

static void begin_call(reply_parser *p, const char *name, size_t name_len) {
    if (p->n_calls == RP_MAX_CALLS) { p->oom = 1; return; }
    rp_call *c = &p->calls[p->n_calls];
    memset(c, 0, sizeof *c);
    /* ids as OpenAI writes them: call_ and 24 letters or digits, different for every call */
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t x = p->seed + 0x9e3779b97f4a7c15ull * (uint64_t)(p->n_calls + 1);
    memcpy(c->id, "call_", 5);
    for (int i = 0; i < 24; i++) {
        x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 27; x *= 0x94d049bb133111ebull; x ^= x >> 31;
        c->id[5 + i] = alnum[x % 62];
    }
    c->id[29] = 0;
    sb_put(&c->name, name, name_len);
    p->n_calls++;
    event(p, RP_CALL_BEGIN, p->n_calls - 1, "", 0);
}

/* ---- the opening of a call: {"name": "N", "arguments": ----------------------------------------- */

/* Matches s[0..n) against ws { ws "name" ws : ws "N" ws , ws ("arguments"|"parameters") ws : ws and the
 * first byte of the value. 1: matched (*used = bytes before the value, name = N's bytes), 0: s is a
 * beginning of that shape (wait for more), -1: it is not that shape. */
static int call_head(const char *s, size_t n, size_t *used, size_t *name_off, size_t *name_len) {
    size_t i = 0;
#define WS() do { while (i < n && is_ws(s[i])) i++; } while (0)
#define NEED() do { if (i >= n) return 0; } while (0)
#define LIT(str)                                                                                     \
    do {                                                                                             \
        const char *l_ = (str);                                                                      \
        size_t m_ = strlen(l_), k_ = n - i < m_ ? n - i : m_;                                        \
        if (memcmp(s + i, l_, k_)) return -1;                                                        \
        if (k_ < m_) return 0;                                                                       \
        i += m_;                                                                                     \
    } while (0)
    WS(); NEED(); LIT("{");
    WS(); NEED(); LIT("\"name\"");
    WS(); NEED(); LIT(":");
    WS(); NEED(); LIT("\"");
    *name_off = i;
    while (i < n && s[i] != '"') {
        if (s[i] == '\\' || (unsigned char)s[i] < 0x20 || i - *name_off > 256) return -1;
        i++;
    }
    NEED();
    *name_len = i - *name_off;
    if (*name_len == 0) return -1;
    i++;
    WS(); NEED(); LIT(",");
    WS(); NEED();
    if (s[i] != '"') return -1;
    {
        size_t k = n - i;
        int a = !memcmp(s + i, "\"arguments\"", k < 11 ? k : 11), b = !memcmp(s + i, "\"parameters\"", k < 12 ? k : 12);
        if (!a && !b) return -1;
        if ((a && k < 11) || (b && k < 12)) return 0;
        i += a ? 11 : 12;
    }
    WS(); NEED(); LIT(":");
    WS(); NEED();
#undef WS
#undef NEED
#undef LIT
    *used = i;
    return 1;
}

/* A whole call object {"name": N, "arguments"|"parameters": V} in any key order. 0 and the call
 * begun and filled, or -1 when text is not one. */
static int whole_call(reply_parser *p, const char *text, size_t len) {
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *name = o ? cJSON_GetObjectItemCaseSensitive(o, "name") : NULL;
    const cJSON *args = o ? cJSON_GetObjectItemCaseSensitive(o, "arguments") : NULL;
    if (!args && o) args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    if (!cJSON_IsObject(o) || !cJSON_IsString(name) || !name->valuestring[0] || !args) {
        cJSON_Delete(o);
        return -1;
    }
    char *a = cJSON_IsString(args) ? NULL : cJSON_PrintUnformatted(args);
    begin_call(p, name->valuestring, strlen(name->valuestring));
    const char *as = cJSON_IsString(args) ? args->valuestring : a ? a : "{}";
    event(p, RP_CALL_ARGS, p->n_calls - 1, as, strlen(as));
    free(a);
    cJSON_Delete(o);
    return 0;
}

/* ---- the parser ----------------------------------------------------------------------------- */

enum {
    S_START,       /* nothing seen yet: a thinking block may open */
    S_THINK,       /* inside <think>: reasoning */
    S_CONTENT,     /* content; a call may open */
    S_CALL_HEAD,   /* after a call's opener, before its arguments */
    S_CALL_ARGS,   /* inside the arguments value */
    S_CALL_TAIL,   /* after the arguments, up to the call's end */
    S_CALL_WHOLE,  /* a call not in name-first order: taken whole at its end */
    S_REST         /* Llama: text after the call object, content */
};

reply_parser *rp_new(int reasoning, tool_format fmt, uint64_t seed, int events) {
    reply_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->split_think = reasoning;
    p->fmt = fmt;
    p->seed = seed;
    p->events_on = events;
    p->state = reasoning ? S_START : S_CONTENT;
    return p;
}

void rp_free(reply_parser *p) {
    if (!p) return;
    sb_free(&p->pend);
    sb_free(&p->content);
    sb_free(&p->reasoning);
    sb_free(&p->call_raw);
    sb_free(&p->ev_text);
    for (int i = 0; i < p->n_calls; i++) {
        sb_free(&p->calls[i].name);
        sb_free(&p->calls[i].args);
    }
    free(p->ev);
    free(p);
}

/* Emits s[0..n) as `kind`, holding back trailing whitespace; returns the bytes consumed. */
static size_t emit_hold_ws(reply_parser *p, rp_kind kind, const char *s, size_t n) {
    size_t k = n;
    while (k > 0 && is_ws(s[k - 1])) k--;
    if (kind == RP_CONTENT && k > 0) p->content_seen = 1;
    event(p, kind, 0, s, k);
    return k;
}

/* Content that was not a call after all: the opener and the text go out as they were written. */
static void call_as_content(reply_parser *p) {
    if (p->call_raw.len) {
        p->content_seen = 1;
        event(p, RP_CONTENT, 0, p->call_raw.p, p->call_raw.len);
    }
    sb_free(&p->call_raw);
}

/* Runs the state machine over what is pending. final: no more text will come. */
static void run(reply_parser *p, int final) {
    for (;;) {
        char *s = p->pend.p;
        size_t n = p->pend.len;
        switch (p->state) {
        case S_START: {
            size_t i = 0;
            while (i < n && is_ws(s[i])) i++;
            size_t k = n - i < 7 ? n - i : 7;
            if (k == 7 && !memcmp(s + i, THINK_OPEN, 7)) {
                sb_consume(&p->pend, i + 7);
                p->state = S_THINK;
                p->skip_ws = 1;
                continue;
            }
            if (!final && (i == n || !memcmp(s + i, THINK_OPEN, k))) return; /* may still open */
            p->state = S_CONTENT;
            continue;
        }
        case S_THINK: {
            if (p->skip_ws) {
                size_t i = 0;
                while (i < n && is_ws(s[i])) i++;
                sb_consume(&p->pend, i);
                if (i == n && !final) return;
                p->skip_ws = 0;
                continue;
            }
            long at = find(s, n, THINK_CLOSE);
            if (at >= 0) {
                emit_hold_ws(p, RP_REASONING, s, (size_t)at); /* whitespace before </think> is dropped */
                sb_consume(&p->pend, (size_t)at + 8);
                p->state = S_CONTENT;
                p->skip_ws = 1;
                continue;
            }
            if (final) {
                event(p, RP_REASONING, 0, s, n);
                sb_consume(&p->pend, n);
                return;
            }
            size_t cut = n - partial_marker(s, n, THINK_CLOSE);
            sb_consume(&p->pend, emit_hold_ws(p, RP_REASONING, s, cut));
            return;
        }
        case S_CONTENT:
        case S_REST: {
            if (p->skip_ws) {
                size_t i = 0;
                while (i < n && is_ws(s[i])) i++;
                sb_consume(&p->pend, i);
                if (i == n && !final) return;
                p->skip_ws = 0;
                continue;
            }
            if (p->state == S_CONTENT && p->fmt == TOOLFMT_LLAMA3 && !p->content_seen && p->n_calls == 0) {
                /* Llama: a call is the whole answer, so it can only start here */
                size_t k = n < sizeof PYTHON_TAG - 1 ? n : sizeof PYTHON_TAG - 1;
                if (n && !memcmp(s, PYTHON_TAG, k)) {
                    if (k < sizeof PYTHON_TAG - 1) {
                        if (!final) return;
                    } else {
                        sb_consume(&p->pend, k);
                        p->state = S_CALL_HEAD;
                        p->skip_ws = 1;
                        continue;
                    }
                } else if (n && s[0] == '{') {
                    p->state = S_CALL_HEAD;
                    continue;
                }
            }
            if (p->state == S_CONTENT && p->fmt == TOOLFMT_HERMES) {
                long at = find(s, n, HERMES_OPEN);
                if (at >= 0) {
                    emit_hold_ws(p, RP_CONTENT, s, (size_t)at);
                    sb_consume(&p->pend, (size_t)at + sizeof HERMES_OPEN - 1);
                    sb_put(&p->call_raw, HERMES_OPEN, sizeof HERMES_OPEN - 1);
                    p->state = S_CALL_HEAD;
                    continue;
                }
            }
            if (final) {
                if (n) p->content_seen = 1;
                event(p, RP_CONTENT, 0, s, n);
                sb_consume(&p->pend, n);
                return;
            }
            size_t cut = n;
            if (p->state == S_CONTENT && p->fmt == TOOLFMT_HERMES) cut -= partial_marker(s, n, HERMES_OPEN);
            sb_consume(&p->pend, emit_hold_ws(p, RP_CONTENT, s, cut));
            return;
        }
        case S_CALL_HEAD: {
            size_t used = 0, off = 0, nl = 0;
            int r = call_head(s, n, &used, &off, &nl);
            if (r == 0 && !final) return;
            if (r == 1) {
                begin_call(p, s + off, nl);
                sb_put(&p->call_raw, s, used);
                sb_consume(&p->pend, used);
                p->depth = p->in_str = p->esc = p->started = 0;
                p->state = S_CALL_ARGS;
                continue;
            }
            p->state = S_CALL_WHOLE; /* another shape, or the text ended inside the opening */
            continue;
        }
        case S_CALL_ARGS: {
            size_t i = 0;
            int done = 0;
            for (; i < n && !done; i++) {
                char c = s[i];
                if (p->in_str) {
                    if (p->esc) p->esc = 0;
                    else if (c == '\\') p->esc = 1;
                    else if (c == '"') {
                        p->in_str = 0;
                        if (p->depth == 0) done = 1; /* a string value ends */
                    }
                } else if (c == '"') {
                    p->in_str = 1;
                    p->started = 1;
                } else if (c == '{' || c == '[') {
                    p->depth++;
                    p->started = 1;
                } else if (c == '}' || c == ']') {
                    if (p->depth == 0) { i--; done = 1; } /* a bare value ended by the call's own } */
                    else if (--p->depth == 0) done = 1;
                } else if (p->depth == 0 && p->started && (c == ',' || is_ws(c))) {
                    i--;
                    done = 1;
                } else if (!is_ws(c)) {
                    p->started = 1;
                }
            }
            event(p, RP_CALL_ARGS, p->n_calls - 1, s, i);
            sb_consume(&p->pend, i);
            sb_free(&p->call_raw);
            if (!done) return;
            p->state = S_CALL_TAIL;
            continue;
        }
        case S_CALL_TAIL: {
            if (p->fmt == TOOLFMT_LLAMA3) { /* the object's closing brace, then content */
                size_t i = 0;
                while (i < n && is_ws(s[i])) i++;
                if (i == n && !final) return;
                if (i < n && s[i] == '}') i++;
                sb_consume(&p->pend, i);
                p->state = S_REST;
                p->skip_ws = 1;
                continue;
            }
            long at = find(s, n, HERMES_CLOSE);
            if (at >= 0) {
                sb_consume(&p->pend, (size_t)at + sizeof HERMES_CLOSE - 1);
                p->state = S_CONTENT;
                p->skip_ws = 1;
                continue;
            }
            size_t keep = final ? 0 : partial_marker(s, n, HERMES_CLOSE);
            sb_consume(&p->pend, n - keep); /* the call's closing brace and whitespace */
            return;
        }
        case S_CALL_WHOLE: {
            if (p->fmt == TOOLFMT_HERMES) {
                long at = find(s, n, HERMES_CLOSE);
                if (at < 0 && !final) return;
                size_t body = at >= 0 ? (size_t)at : n;
                if (whole_call(p, s, body) == 0) {
                    sb_free(&p->call_raw);
                    sb_consume(&p->pend, at >= 0 ? body + sizeof HERMES_CLOSE - 1 : n);
                    p->state = S_CONTENT;
                    p->skip_ws = 1;
                    continue;
                }
                /* not a call: everything up to and with the closing tag is content */
                size_t upto = at >= 0 ? body + sizeof HERMES_CLOSE - 1 : n;
                sb_put(&p->call_raw, s, upto);
                sb_consume(&p->pend, upto);
                call_as_content(p);
                p->state = S_CONTENT;
                continue;
            }
            if (!final) return; /* Llama: the object is the whole answer */
            if (whole_call(p, s, n) != 0) {
                sb_put(&p->call_raw, s, n);
                call_as_content(p);
            } else {
                sb_free(&p->call_raw);
            }
            sb_consume(&p->pend, n);
            p->state = S_REST;
            return;
        }
        }
        return;
    }
}

void rp_feed(reply_parser *p, const char *text, size_t len) {
    sb_put(&p->pend, text, len);
    if (p->pend.oom) p->oom = 1;
    run(p, 0);
}

void rp_finish(reply_parser *p) {
    run(p, 1);
    if (p->content.oom || p->reasoning.oom || p->ev_text.oom || p->pend.oom || p->call_raw.oom) p->oom = 1;
    for (int i = 0; i < p->n_calls; i++)
        if (p->calls[i].name.oom || p->calls[i].args.oom) p->oom = 1;
}

void rp_events_clear(reply_parser *p) {
    p->n_ev = 0;
    p->ev_text.len = 0;
}
