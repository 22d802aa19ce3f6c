/* chat.c — chat prompt rendering: Qwen3's chat template, re-done by hand in C, plus plain ChatML.
 *
 * chat_render produces, byte for byte, what Qwen3's Jinja template (tokenizer_config.json of
 * Qwen/Qwen3-*) renders for conversations of system/user/assistant/tool messages whose content is
 * a string, without tools, tool_calls or a separate reasoning_content field. Each step below names
 * the template line it reproduces. It is not a Jinja interpreter: any other template is rendered
 * as plain ChatML, which is what most ChatML models expect from a text-only conversation.
 * Rendering never tokenizes; the caller tokenizes the result with parse_special on.
 */
#include "chat.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- detection ----------------------------------------------------------------------------- */

chat_template_kind chat_detect(const char *jinja_template) {
    if (!jinja_template) return CHAT_TMPL_CHATML;
    /* Fragments that together only occur in Qwen3's hybrid-thinking template: ChatML framing, the
     * reverse scan for the last real user query, and the think-block handling. Matching
     * fragments rather than the whole text survives reformatting and small edits (e.g. by GGUF
     * converters). */
    static const char *const frags[] = {"<|im_start|>", "last_query_index", "reasoning_content",
                                        "</think>", "enable_thinking"};
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++)
        if (!strstr(jinja_template, frags[i])) return CHAT_TMPL_CHATML;
    return CHAT_TMPL_QWEN3;
}

/* ---- a growable output buffer -------------------------------------------------------------- */

typedef struct {
    char *p;    /* (cap) bytes, NUL-terminated at len */
    size_t len, cap;
    int oom;    /* set once an allocation failed; later appends are ignored */
} chat_buf;

static void chat_put(chat_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - 1 - b->len) { b->oom = 1; return; }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) { cap = b->len + n + 1; break; }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void chat_puts(chat_buf *b, const char *s) { chat_put(b, s, strlen(s)); }

/* ---- Python string operations the template uses, on (pointer, length) views ---------------- */

typedef struct { const char *s; size_t n; } chat_str;

static chat_str chat_lstrip_nl(chat_str v) {  /* v.lstrip('\n') */
    while (v.n && v.s[0] == '\n') { v.s++; v.n--; }
    return v;
}
static chat_str chat_rstrip_nl(chat_str v) {  /* v.rstrip('\n') */
    while (v.n && v.s[v.n - 1] == '\n') v.n--;
    return v;
}

/* Offset of the first (or, with last, the last) occurrence of needle in v; -1 if none. */
static long long chat_find(chat_str v, const char *needle, int last) {
    size_t m = strlen(needle);
    long long found = -1;
    if (m > v.n) return -1;
    for (size_t i = 0; i + m <= v.n; i++) {
        if (memcmp(v.s + i, needle, m) == 0) {
            found = (long long)i;
            if (!last) break;
        }
    }
    return found;
}

static int chat_starts(chat_str v, const char *p) {
    size_t m = strlen(p);
    return v.n >= m && memcmp(v.s, p, m) == 0;
}
static int chat_ends(chat_str v, const char *p) {
    size_t m = strlen(p);
    return v.n >= m && memcmp(v.s + v.n - m, p, m) == 0;
}

static chat_str chat_view(const char *s) { chat_str v = {s, strlen(s)}; return v; }

/* ---- validation ---------------------------------------------------------------------------- */

static int chat_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int chat_role_ok(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") ||
           !strcmp(r, "tool");
}

/* ---- Qwen3 --------------------------------------------------------------------------------- */

static void chat_render_qwen3(chat_buf *b, const ob_chat_message *msgs, size_t n, int add_gen,
                              int enable_thinking) {
    /* {%- if messages[0].role == 'system' %} '<|im_start|>system\n' + content + '<|im_end|>\n' */
    if (n > 0 && !strcmp(msgs[0].role, "system")) {
        chat_puts(b, "<|im_start|>system\n");
        chat_puts(b, msgs[0].content);
        chat_puts(b, "<|im_end|>\n");
    }

    /* last_query_index: the last user message that is not a wrapped tool response
     * (content starts with <tool_response> and ends with </tool_response>); len-1 if none.
     * Assistant turns after it keep their reasoning, earlier ones lose it. */
    size_t last_query = n ? n - 1 : 0;
    for (size_t k = n; k-- > 0;) {
        if (strcmp(msgs[k].role, "user") != 0) continue;
        chat_str c = chat_view(msgs[k].content);
        if (chat_starts(c, "<tool_response>") && chat_ends(c, "</tool_response>")) continue;
        last_query = k;
        break;
    }

    for (size_t i = 0; i < n; i++) {
        const char *role = msgs[i].role;
        chat_str content = chat_view(msgs[i].content);

        if (!strcmp(role, "user") || (!strcmp(role, "system") && i > 0)) {
            chat_puts(b, "<|im_start|>");
            chat_puts(b, role);
            chat_puts(b, "\n");
            chat_put(b, content.s, content.n);
            chat_puts(b, "<|im_end|>\n");
        } else if (!strcmp(role, "assistant")) {
            /* If '</think>' in content:
             *   content   = content.split('</think>')[-1].lstrip('\n')
             *   reasoning = content.split('</think>')[0].rstrip('\n')
             *                      .split('<think>')[-1].lstrip('\n')
             * Python semantics: split()[-1] is after the last separator, [0] before the first;
             * lstrip('\n') strips newlines only, not other whitespace. */
            chat_str reasoning = {"", 0};
            long long first_end = chat_find(content, "</think>", 0);
            if (first_end >= 0) {
                long long last_end = chat_find(content, "</think>", 1);
                chat_str before = {content.s, (size_t)first_end};
                before = chat_rstrip_nl(before);
                long long open = chat_find(before, "<think>", 1);
                if (open >= 0) {
                    size_t skip = (size_t)open + strlen("<think>");
                    before.s += skip;
                    before.n -= skip;
                }
                reasoning = chat_lstrip_nl(before);
                size_t after = (size_t)last_end + strlen("</think>");
                chat_str rest = {content.s + after, content.n - after};
                content = chat_lstrip_nl(rest);
            }
            /* After the last query, the final message or one with non-empty reasoning becomes
             * '<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n');
             * everything else is the bare content. */
            chat_puts(b, "<|im_start|>assistant\n");
            if (i > last_query && (i == n - 1 || reasoning.n > 0)) {
                /* strip('\n'): a no-op for reasoning cut from content as above, kept so the
                 * code reads like the template. */
                reasoning = chat_rstrip_nl(chat_lstrip_nl(reasoning));
                chat_puts(b, "<think>\n");
                chat_put(b, reasoning.s, reasoning.n);
                chat_puts(b, "\n</think>\n\n");
                content = chat_lstrip_nl(content);
            }
            chat_put(b, content.s, content.n);
            chat_puts(b, "<|im_end|>\n");
        } else if (!strcmp(role, "tool")) {
            /* Consecutive tool messages share one user turn, each wrapped in <tool_response>. */
            if (i == 0 || strcmp(msgs[i - 1].role, "tool") != 0) chat_puts(b, "<|im_start|>user");
            chat_puts(b, "\n<tool_response>\n");
            chat_put(b, content.s, content.n);
            chat_puts(b, "\n</tool_response>");
            if (i == n - 1 || strcmp(msgs[i + 1].role, "tool") != 0) chat_puts(b, "<|im_end|>\n");
        }
        /* A system message at index 0 was rendered before the loop. */
    }

    if (add_gen) {
        chat_puts(b, "<|im_start|>assistant\n");
        /* {%- if enable_thinking is defined and enable_thinking is false %}: an empty think
         * block tells the model to answer directly. */
        if (!enable_thinking) chat_puts(b, "<think>\n\n</think>\n\n");
    }
}

/* ---- plain ChatML -------------------------------------------------------------------------- */

static void chat_render_chatml(chat_buf *b, const ob_chat_message *msgs, size_t n, int add_gen) {
    for (size_t i = 0; i < n; i++) {
        chat_puts(b, "<|im_start|>");
        chat_puts(b, msgs[i].role);
        chat_puts(b, "\n");
        chat_puts(b, msgs[i].content);
        chat_puts(b, "<|im_end|>\n");
    }
    if (add_gen) chat_puts(b, "<|im_start|>assistant\n");
}

/* ---- entry point --------------------------------------------------------------------------- */

int chat_render(chat_template_kind kind, const ob_chat_message *msgs, size_t n,
                int add_generation_prompt, int enable_thinking, char **out, char *err,
                size_t errlen) {
    if (!out) return chat_err(err, errlen, "chat_render: out is NULL");
    *out = NULL;
    if (n > 0 && !msgs) return chat_err(err, errlen, "chat_render: messages is NULL");
    if (kind != CHAT_TMPL_QWEN3 && kind != CHAT_TMPL_CHATML)
        return chat_err(err, errlen, "chat_render: unknown template kind %d", (int)kind);
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role) return chat_err(err, errlen, "message %zu: role is NULL", i);
        if (!chat_role_ok(msgs[i].role))
            return chat_err(err, errlen,
                            "message %zu: unknown role \"%.32s\" (expected system, user, "
                            "assistant or tool)",
                            i, msgs[i].role);
        if (!msgs[i].content) return chat_err(err, errlen, "message %zu: content is NULL", i);
    }

    chat_buf b = {0};
    chat_put(&b, "", 0);  /* an empty conversation still yields a valid "" string */
    if (kind == CHAT_TMPL_QWEN3)
        chat_render_qwen3(&b, msgs, n, add_generation_prompt, enable_thinking);
    else
        chat_render_chatml(&b, msgs, n, add_generation_prompt);
    if (b.oom) {
        free(b.p);
        return chat_err(err, errlen, "chat_render: out of memory");
    }
    *out = b.p;
    return 0;
}
