/* chat.c — chat prompts from the model's own Jinja template.
 *
 * Builds the variables transformers' apply_chat_template gives a template — messages, tools (null
 * when there are none: transformers always passes the key), add_generation_prompt, bos_token,
 * eos_token, and enable_thinking only when the caller sets it (templates test `is defined`) — as
 * JSON, and renders the model's template with jinja.c. Messages given as role/content pairs are
 * checked and JSON-encoded here; richer messages (tool_calls, reasoning_content) come as JSON from
 * the caller. It never tokenizes: the caller tokenizes the result with special tokens parsed.
 */
#include "chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there are not one (bad lead
 * or continuation byte, overlong form, surrogate, beyond U+10FFFF). */
static int utf8_seq(const unsigned char *p) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (!n || c > 0xf4) return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && p[1] < 0xa0) return 0;  /* overlong */
    if (c == 0xed && p[1] >= 0xa0) return 0; /* surrogate */
    if (c == 0xf0 && p[1] < 0x90) return 0;  /* overlong */
    if (c == 0xf4 && p[1] >= 0x90) return 0; /* beyond U+10FFFF */
    return n;
}

/* A JSON string literal of s: control characters, quotes and backslashes escaped, valid UTF-8
 * passed through, and every byte that is not part of valid UTF-8 replaced by U+FFFD (a template's
 * variables are text, as Python's str is; the caller's text may be any bytes). */
static void chat_put_json_str(chat_buf *b, const char *s) {
    chat_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        char esc[8];
        int n = utf8_seq(p);
        if (n == 0) {
            chat_puts(b, "\xef\xbf\xbd");
            p++;
        } else if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            chat_put(b, esc, 2);
            p++;
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            chat_puts(b, esc);
            p++;
        } else {
            chat_put(b, (const char *)p, (size_t)n);
            p += n;
        }
    }
    chat_puts(b, "\"");
}

static int known_role(const char *r) {
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant") || !strcmp(r, "tool");
}

int chat_messages_json(const ob_chat_message *msgs, size_t n, char **out, char *err, size_t errlen) {
    chat_buf b = {0};
    chat_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role) return free(b.p), snprintf(err, errlen, "message %zu: role is NULL", i), -1;
        if (!known_role(msgs[i].role))
            return free(b.p), snprintf(err, errlen, "message %zu: unknown role '%.32s'", i, msgs[i].role), -1;
        if (!msgs[i].content) return free(b.p), snprintf(err, errlen, "message %zu: content is NULL", i), -1;
        chat_puts(&b, i ? ",{\"role\":" : "{\"role\":");
        chat_put_json_str(&b, msgs[i].role);
        chat_puts(&b, ",\"content\":");
        chat_put_json_str(&b, msgs[i].content);
        chat_puts(&b, "}");
    }
    chat_puts(&b, "]");
    if (b.oom) return free(b.p), snprintf(err, errlen, "out of memory"), -1;
    *out = b.p;
    return 0;
}

int chat_render(const jinja_tmpl *t, const char *bos, const char *eos, const char *messages_json,
                const char *tools_json, int add_generation_prompt, int enable_thinking, char **out, char *err,
                size_t errlen) {
    chat_buf ctx = {0};
    chat_puts(&ctx, "{\"messages\":");
    chat_puts(&ctx, messages_json);
    chat_puts(&ctx, ",\"tools\":");
    chat_puts(&ctx, tools_json ? tools_json : "null");
    chat_puts(&ctx, ",\"documents\":null,\"add_generation_prompt\":");
    chat_puts(&ctx, add_generation_prompt ? "true" : "false");
    chat_puts(&ctx, ",\"bos_token\":");
    chat_put_json_str(&ctx, bos ? bos : "");
    chat_puts(&ctx, ",\"eos_token\":");
    chat_put_json_str(&ctx, eos ? eos : "");
    if (enable_thinking >= 0) chat_puts(&ctx, enable_thinking ? ",\"enable_thinking\":true" : ",\"enable_thinking\":false");
    chat_puts(&ctx, "}");
    if (ctx.oom) return free(ctx.p), snprintf(err, errlen, "out of memory"), -1;
    size_t len = 0;
    int rc = jinja_render(t, ctx.p, out, &len, err, errlen);
    free(ctx.p);
    return rc;
}
