/* serve_api.c — the OpenAI layer of `onebit serve`: request JSON in, jobs out; finished jobs and
 * streamed text in, response JSON out; errors in OpenAI's shape.
 *
 * Requests are hostile input. Every field is type- and range-checked and answered with
 * {"error": {"message", "type", "param", "code"}} on the first problem. cJSON parses; strings we
 * emit go through api_json_quote, which takes explicit lengths (generated text may contain NUL)
 * and guarantees valid UTF-8 whatever the input held. This file does no I/O and no threading.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "serve.h"

/* ---- UTF-8 and JSON strings ----------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0) lo = 0xa0;        /* no overlong forms */
        if (b == 0xed) hi = 0x9f;        /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0) lo = 0x90;
        if (b == 0xf4) hi = 0x8f;        /* nothing above U+10FFFF */
    } else return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

static const char REPL[] = "\xef\xbf\xbd"; /* U+FFFD */

char *api_utf8_clean(const char *s, size_t len, size_t *out_len) {
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *o = malloc(len * 3 + 1);
    if (!o) return NULL;
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t q = utf8_seq(u + i, len - i);
        if (q == 0) { memcpy(o + k, REPL, 3); k += 3; i++; }
        else { memcpy(o + k, u + i, q); k += q; i += q; }
    }
    o[k] = 0;
    if (out_len) *out_len = k;
    return o;
}

char *api_json_quote(const char *s, size_t len) {
    if (len > (SIZE_MAX - 3) / 6) return NULL;
    char *o = malloc(len * 6 + 3); /* worst case: every byte a \u00XX escape */
    if (!o) return NULL;
    size_t k = 0;
    const unsigned char *u = (const unsigned char *)s;
    o[k++] = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c >= 0x80) {
            size_t q = utf8_seq(u + i, len - i);
            if (q == 0) { memcpy(o + k, REPL, 3); k += 3; i++; }
            else { memcpy(o + k, u + i, q); k += q; i += q; }
            continue;
        }
        i++;
        switch (c) {
        case '"': o[k++] = '\\'; o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; o[k++] = '\\'; break;
        case '\n': o[k++] = '\\'; o[k++] = 'n'; break;
        case '\r': o[k++] = '\\'; o[k++] = 'r'; break;
        case '\t': o[k++] = '\\'; o[k++] = 't'; break;
        default:
            if (c < 0x20) k += (size_t)snprintf(o + k, 7, "\\u%04x", c);
            else o[k++] = (char)c;
        }
    }
    o[k++] = '"';
    o[k] = 0;
    return o;
}

/* Adds key: "s[0..len)" to obj through our quoting. 0, or -1 on out of memory. */
static int add_str(cJSON *obj, const char *key, const char *s, size_t len) {
    char *q = api_json_quote(s ? s : "", s ? len : 0);
    if (!q) return -1;
    cJSON *r = cJSON_AddRawToObject(obj, key, q);
    free(q);
    return r ? 0 : -1;
}

/* Prints and frees obj; NULL on out of memory. */
static char *finish_json(cJSON *obj, int ok) {
    char *s = ok && obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return s;
}

/* ---- errors --------------------------------------------------------------------------------- */

void api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *api_error_json(const api_error *e) {
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    int ok = err != NULL;
    ok = ok && add_str(err, "message", e->message, strlen(e->message)) == 0;
    ok = ok && cJSON_AddStringToObject(err, "type", e->type ? e->type : "invalid_request_error");
    if (ok && e->param[0]) ok = add_str(err, "param", e->param, strlen(e->param)) == 0;
    else if (ok) ok = cJSON_AddNullToObject(err, "param") != NULL;
    if (ok && e->code) ok = cJSON_AddStringToObject(err, "code", e->code) != NULL;
    else if (ok) ok = cJSON_AddNullToObject(err, "code") != NULL;
    return finish_json(root, ok);
}

#define BAD(param, ...) \
    (api_error_set(err, 400, "invalid_request_error", NULL, param, __VA_ARGS__), -1)
#define BAD_CODE(code, param, ...) \
    (api_error_set(err, 400, "invalid_request_error", code, param, __VA_ARGS__), -1)

/* ---- field access --------------------------------------------------------------------------- */

/* The member key of root, or NULL when absent or JSON null (OpenAI treats null as "not given"). */
static const cJSON *field(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A number in [lo, hi] (integer when integral is set). 1 = present, 0 = absent, -1 = error. */
static int get_num(const cJSON *root, const char *key, double lo, double hi, int integral,
                   double *out, api_error *err) {
    const cJSON *v = field(root, key);
    if (!v) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!cJSON_IsNumber(v) || !isfinite(d))
        return BAD(key, integral ? "'%s' must be an integer" : "'%s' must be a number", key);
    if ((integral && d != floor(d)) || d < lo || d > hi) {
        if (integral) return BAD(key, "'%s' must be an integer between %.0f and %.0f", key, lo, hi);
        return BAD(key, "'%s' must be a number between %g and %g", key, lo, hi);
    }
    *out = d;
    return 1;
}

static int get_bool(const cJSON *root, const char *key, int *out, api_error *err) {
    const cJSON *v = field(root, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return BAD(key, "'%s' must be a boolean", key);
    *out = cJSON_IsTrue(v);
    return 1;
}

/* ---- sampling and limits, shared by both endpoints ------------------------------------------- */

static uint64_t random_u64(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
    }
    return x;
}

static int parse_common(const api_server *srv, const cJSON *root, job *j, api_req *r, api_error *err) {
    double d;
    int rc, b;
    ob_sampling *sp = &j->sampling;
    *sp = srv->defaults;
    sp->seed = random_u64(); /* OpenAI: no seed means a fresh draw every time */

    const cJSON *model = field(root, "model");
    if (model) {
        if (!cJSON_IsString(model)) return BAD("model", "'model' must be a string");
        if (model->valuestring[0] && !api_model_matches(srv, model->valuestring)) {
            api_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                          "The model '%.200s' does not exist: this server runs '%s'", model->valuestring,
                          srv->model_id);
            return -1;
        }
    }
    if ((rc = get_num(root, "n", 1, 128, 1, &d, err)) < 0) return -1;
    if (rc && d != 1) return BAD("n", "only n = 1 is supported");
    if ((rc = get_num(root, "best_of", 1, 128, 1, &d, err)) < 0) return -1;
    if (rc && d != 1) return BAD("best_of", "only best_of = 1 is supported");
    /* Sampling: the type here, the range in the library's one check (ob_sampling_check), whose
     * message starts with the field's name. Wide bounds only keep the casts defined. */
    if ((rc = get_num(root, "temperature", -DBL_MAX, DBL_MAX, 0, &d, err)) < 0) return -1;
    if (rc) sp->temperature = (float)d;
    if ((rc = get_num(root, "top_p", -DBL_MAX, DBL_MAX, 0, &d, err)) < 0) return -1;
    if (rc) sp->top_p = (float)d;
    if ((rc = get_num(root, "top_k", INT_MIN, INT_MAX, 1, &d, err)) < 0) return -1;
    if (rc) sp->top_k = (int)d;
    if ((rc = get_num(root, "min_p", -DBL_MAX, DBL_MAX, 0, &d, err)) < 0) return -1;
    if (rc) sp->min_p = (float)d;
    if ((rc = get_num(root, "repeat_penalty", -DBL_MAX, DBL_MAX, 0, &d, err)) < 0) return -1;
    if (rc) sp->repeat_penalty = (float)d;
    if ((rc = get_num(root, "presence_penalty", -DBL_MAX, DBL_MAX, 0, &d, err)) < 0) return -1;
    if (rc) sp->presence_penalty = (float)d;
    if ((rc = get_num(root, "frequency_penalty", -DBL_MAX, DBL_MAX, 0, &d, err)) < 0) return -1;
    if (rc) sp->frequency_penalty = (float)d;
    if (ob_sampling_check(sp) != OB_OK) {
        const char *msg = ob_last_error();
        char param[32];
        size_t n = strcspn(msg, " ");
        snprintf(param, sizeof param, "%.*s", (int)(n < sizeof param ? n : sizeof param - 1), msg);
        return BAD(param, "%s", msg);
    }
    /* OpenAI's penalties look at everything generated; a window of the recent context (the
     * server's --repeat-last-n) is the closest we have. */
    if ((sp->presence_penalty != 0 || sp->frequency_penalty != 0 || sp->repeat_penalty != 1) &&
        sp->repeat_last_n == 0)
        sp->repeat_last_n = 64;
    if ((rc = get_num(root, "seed", -9007199254740991.0, 9007199254740991.0, 1, &d, err)) < 0) return -1;
    if (rc) sp->seed = d < 0 ? (uint64_t)(int64_t)d : (uint64_t)d;

    /* max_completion_tokens is the newer name; it wins when both are given. */
    double mt = 0;
    int has_mt = 0;
    if ((rc = get_num(root, "max_tokens", 1, 1 << 30, 1, &d, err)) < 0) return -1;
    if (rc) { mt = d; has_mt = 1; }
    if ((rc = get_num(root, "max_completion_tokens", 1, 1 << 30, 1, &d, err)) < 0) return -1;
    if (rc) { mt = d; has_mt = 1; }
    j->max_tokens = has_mt && mt < srv->max_tokens_cap ? (int)mt : srv->max_tokens_cap;

    const cJSON *stop = field(root, "stop");
    int ns = 0;
    if (stop) {
        const cJSON *items[SERVE_MAX_STOP];
        if (cJSON_IsString(stop)) items[ns++] = stop;
        else if (cJSON_IsArray(stop)) {
            const cJSON *it;
            cJSON_ArrayForEach(it, stop) {
                if (!cJSON_IsString(it)) return BAD("stop", "'stop' must be a string or an array of strings");
                if (ns == SERVE_MAX_STOP) return BAD("stop", "at most %d stop sequences are supported", SERVE_MAX_STOP);
                items[ns++] = it;
            }
        } else return BAD("stop", "'stop' must be a string or an array of strings");
        int k = 0;
        for (int i = 0; i < ns; i++) {
            if (!items[i]->valuestring[0]) continue; /* an empty stop string can never match */
            /* The generation loop compares every stop string at every token: keep them short. */
            if (strlen(items[i]->valuestring) > SERVE_MAX_STOP_LEN)
                return BAD("stop", "stop strings longer than %d bytes are not supported", SERVE_MAX_STOP_LEN);
            /* Valid UTF-8 stop strings can only match on character boundaries, so the text
             * around them stays valid UTF-8. */
            j->stop[k] = api_utf8_clean(items[i]->valuestring, strlen(items[i]->valuestring), NULL);
            if (!j->stop[k]) return BAD(NULL, "out of memory");
            k++;
        }
        j->stop[k] = NULL;
    }

    if ((rc = get_bool(root, "stream", &b, err)) < 0) return -1;
    r->stream = rc ? b : 0;
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return BAD("stream_options", "'stream_options' must be an object");
        if ((rc = get_bool(so, "include_usage", &b, err)) < 0) return -1;
        r->include_usage = rc ? b : 0;
    }
    if ((rc = get_bool(root, "logprobs", &b, err)) < 0) {
        /* completions use an integer logprobs */
        if ((rc = get_num(root, "logprobs", 0, 20, 1, &d, err)) < 0) return -1;
        b = rc && d > 0;
        rc = 1;
    }
    if (rc && b) return BAD("logprobs", "logprobs are not supported");
    if (field(root, "top_logprobs")) return BAD("top_logprobs", "logprobs are not supported");
    return 0;
}

/* ---- chat messages -------------------------------------------------------------------------- */

/* The text of a message's content: a string, or an array of {"type": "text", "text": ...}
 * parts, concatenated. *out is malloc'ed. */
static int content_text(const cJSON *c, size_t idx, int may_be_null, char **out, api_error *err) {
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    if (!c) {
        if (may_be_null) { *out = strdup(""); return *out ? 0 : BAD(param, "out of memory"); }
        return BAD(param, "messages[%zu] has no 'content'", idx);
    }
    if (cJSON_IsString(c)) {
        *out = strdup(c->valuestring);
        return *out ? 0 : BAD(param, "out of memory");
    }
    if (!cJSON_IsArray(c)) return BAD(param, "'%s' must be a string or an array of content parts", param);
    size_t total = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *type = cJSON_IsObject(p) ? field(p, "type") : NULL;
        const cJSON *text = cJSON_IsObject(p) ? field(p, "text") : NULL;
        if (!type || !cJSON_IsString(type)) return BAD(param, "each content part needs a string 'type'");
        if (strcmp(type->valuestring, "text") != 0)
            return BAD(param, "content parts of type '%.40s' are not supported (text only)", type->valuestring);
        if (!text || !cJSON_IsString(text)) return BAD(param, "a text content part needs a string 'text'");
        total += strlen(text->valuestring);
    }
    char *s = malloc(total + 1);
    if (!s) return BAD(param, "out of memory");
    size_t k = 0;
    cJSON_ArrayForEach(p, c) {
        size_t l = strlen(field(p, "text")->valuestring);
        memcpy(s + k, field(p, "text")->valuestring, l);
        k += l;
    }
    s[k] = 0;
    *out = s;
    return 0;
}

/* Renders the chat and returns the prompt text (malloc'ed). */
static int chat_prompt(const api_server *srv, const cJSON *root, char **prompt, api_error *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs || cJSON_IsNull(msgs))
        return BAD_CODE("missing_required_parameter", "messages", "Missing required parameter: 'messages'");
    if (!cJSON_IsArray(msgs)) return BAD("messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(msgs);
    if (n == 0) return BAD_CODE("empty_array", "messages", "'messages' must contain at least one message");
    if (n > 100000) return BAD("messages", "too many messages");
    ob_chat_message *m = calloc((size_t)n, sizeof *m);
    char **owned = calloc((size_t)n, sizeof *owned);
    int rc = 0;
    if (!m || !owned) rc = BAD(NULL, "out of memory");
    int i = 0;
    const cJSON *it;
    if (rc == 0) cJSON_ArrayForEach(it, msgs) {
        char param[48];
        snprintf(param, sizeof param, "messages[%d].role", i);
        if (!cJSON_IsObject(it)) { rc = BAD("messages", "messages[%d] must be an object", i); break; }
        const cJSON *role = field(it, "role");
        if (!role || !cJSON_IsString(role)) { rc = BAD(param, "messages[%d] needs a string 'role'", i); break; }
        const char *rs = role->valuestring;
        if (!strcmp(rs, "developer")) rs = "system"; /* OpenAI's newer name for the system role */
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool")) {
            rc = BAD(param, "messages[%d]: unknown role '%.40s' (system, developer, user, assistant, tool)", i,
                     role->valuestring);
            break;
        }
        if (field(it, "tool_calls")) { rc = BAD("messages", "tool calls are not supported"); break; }
        /* role strings point into the JSON tree, which outlives the render */
        m[i].role = !strcmp(rs, "system") ? "system" : !strcmp(rs, "user") ? "user"
                    : !strcmp(rs, "assistant") ? "assistant" : "tool";
        if ((rc = content_text(field(it, "content"), (size_t)i, !strcmp(rs, "assistant"), &owned[i], err))) break;
        m[i].content = owned[i];
        i++;
    }
    int think = srv->default_think;
    if (rc == 0) {
        const cJSON *kw = field(root, "chat_template_kwargs");
        if (kw && !cJSON_IsObject(kw)) rc = BAD("chat_template_kwargs", "'chat_template_kwargs' must be an object");
        else if (kw && get_bool(kw, "enable_thinking", &think, err) < 0) rc = -1;
    }
    if (rc == 0) {
        ob_status st = ob_chat_render(srv->model, m, (size_t)n, 1, think, prompt);
        if (st) rc = BAD("messages", "cannot render the chat: %s", ob_last_error());
    }
    for (int k = 0; owned && k < n; k++) free(owned[k]);
    free(owned);
    free(m);
    return rc;
}

/* ---- the whole request ---------------------------------------------------------------------- */

static void make_id(char *out, size_t cap, const char *prefix) {
    uint64_t a = random_u64(), b = random_u64();
    snprintf(out, cap, "%s%016llx%08llx", prefix, (unsigned long long)a, (unsigned long long)(b & 0xffffffffu));
}

static int tokenize(const api_server *srv, const char *text, size_t len, job *j, api_error *err) {
    size_t n = 0;
    /* a prompt starts a context: BOS/EOS as the file asks (ob_tokenize_prompt) */
    if (ob_tokenize_prompt(srv->model, text, len, 1, NULL, 0, &n)) return BAD(NULL, "cannot tokenize: %s", ob_last_error());
    j->prompt = malloc((n ? n : 1) * sizeof *j->prompt);
    if (!j->prompt) return BAD(NULL, "out of memory");
    if (ob_tokenize_prompt(srv->model, text, len, 1, j->prompt, n, &j->n_prompt)) return BAD(NULL, "cannot tokenize");
    return 0;
}

/* Completions: prompt is a string, an array of one string, or an array of token ids. */
static int completion_prompt(const api_server *srv, const cJSON *root, job *j, api_req *r, int echo,
                             api_error *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p || cJSON_IsNull(p))
        return BAD_CODE("missing_required_parameter", "prompt", "Missing required parameter: 'prompt'");
    if (cJSON_IsArray(p)) {
        int n = cJSON_GetArraySize(p);
        const cJSON *first = cJSON_GetArrayItem(p, 0);
        if (n == 1 && cJSON_IsString(first)) p = first;
        else if (n > 0 && cJSON_IsNumber(first)) {
            ob_model_info info;
            ob_model_get_info(srv->model, &info);
            j->prompt = malloc((size_t)n * sizeof *j->prompt);
            if (!j->prompt) return BAD(NULL, "out of memory");
            const cJSON *it;
            cJSON_ArrayForEach(it, p) {
                double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
                if (d != floor(d) || d < 0 || d >= info.n_vocab)
                    return BAD("prompt", "token ids must be integers in 0..%d", info.n_vocab - 1);
                j->prompt[j->n_prompt++] = (ob_token)d;
            }
            if (echo) { /* the echo of a token prompt is its text */
                size_t total = 0;
                for (size_t k = 0; k < j->n_prompt; k++) {
                    const char *b;
                    size_t l;
                    if (ob_token_bytes(srv->model, j->prompt[k], &b, &l) == OB_OK) total += l;
                }
                char *raw = malloc(total + 1);
                if (!raw) return BAD(NULL, "out of memory");
                size_t o = 0;
                for (size_t k = 0; k < j->n_prompt; k++) {
                    const char *b;
                    size_t l;
                    if (ob_token_bytes(srv->model, j->prompt[k], &b, &l) == OB_OK) { memcpy(raw + o, b, l); o += l; }
                }
                r->echo = api_utf8_clean(raw, o, &r->echo_len);
                free(raw);
                if (!r->echo) return BAD(NULL, "out of memory");
            }
            return 0;
        } else if (n > 1 && cJSON_IsString(first)) {
            return BAD("prompt", "only one prompt per request is supported");
        } else {
            return BAD("prompt", "'prompt' must be a string, an array of one string or an array of token ids");
        }
    }
    if (!cJSON_IsString(p))
        return BAD("prompt", "'prompt' must be a string, an array of one string or an array of token ids");
    size_t len = strlen(p->valuestring);
    if (echo) {
        r->echo = api_utf8_clean(p->valuestring, len, &r->echo_len);
        if (!r->echo) return BAD(NULL, "out of memory");
    }
    return tokenize(srv, p->valuestring, len, j, err);
}

/* cJSON keeps C strings, so a \u0000 escape would silently cut a string short. Before parsing,
 * each one becomes \ufffd (same length), the replacement character. */
static void replace_nul_escapes(char *s, size_t len) {
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 5 < len && !memcmp(s + i + 2, "0000", 4)) memcpy(s + i + 2, "fffd", 4);
        i++; /* skip the escaped character, so "\\u0000" (an escaped backslash) stays as it is */
    }
}

int api_parse(const api_server *srv, api_kind kind, const char *body, size_t len, api_req *r, api_error *err) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->created = (long)time(NULL);
    make_id(r->id, sizeof r->id, kind == API_CHAT ? "chatcmpl-" : "cmpl-");
    if (len == 0) return BAD(NULL, "the request body is empty: expected a JSON object");
    if (memchr(body, 0, len)) return BAD(NULL, "the request body is not valid JSON (it contains a NUL byte)");
    char *copy = malloc(len + 1);
    if (!copy) return BAD(NULL, "out of memory");
    memcpy(copy, body, len);
    copy[len] = 0;
    replace_nul_escapes(copy, len);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (root && end) { /* only whitespace may follow the value */
        while (end < copy + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
        if (end != copy + len) { cJSON_Delete(root); root = NULL; }
    }
    if (!root) {
        long at = end && end >= copy && end <= copy + len ? (long)(end - copy) : -1;
        free(copy);
        return BAD(NULL, "the request body is not valid JSON (error near byte %ld)", at);
    }
    free(copy);
    int rc = 0;
    job *j = NULL;
    char *text = NULL;
    if (!cJSON_IsObject(root)) rc = BAD(NULL, "the request body must be a JSON object");
    if (rc == 0 && !(j = job_new())) rc = BAD(NULL, "out of memory");
    if (rc == 0) rc = parse_common(srv, root, j, r, err);
    if (rc == 0) rc = api_constraint(root, j, err);
    if (rc == 0 && kind == API_CHAT) {
        j->strip_think = 1;
        const cJSON *tools = field(root, "tools");
        if (tools && (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) > 0))
            rc = BAD("tools", "tools are not supported");
        else if (field(root, "functions"))
            rc = BAD("functions", "functions are not supported");
        if (rc == 0) rc = chat_prompt(srv, root, &text, err);
        if (rc == 0) rc = tokenize(srv, text, strlen(text), j, err);
    } else if (rc == 0) {
        int echo = 0;
        const cJSON *suffix = field(root, "suffix");
        if (suffix && !(cJSON_IsString(suffix) && !suffix->valuestring[0]))
            rc = BAD("suffix", "'suffix' is not supported");
        if (rc == 0 && get_bool(root, "echo", &echo, err) < 0) rc = -1;
        if (rc == 0) rc = completion_prompt(srv, root, j, r, echo, err);
    }
    if (rc == 0 && j->n_prompt == 0)
        rc = BAD(kind == API_CHAT ? "messages" : "prompt", "the prompt is empty");
    if (rc == 0 && j->n_prompt >= (size_t)srv->n_ctx)
        rc = BAD_CODE("context_length_exceeded", kind == API_CHAT ? "messages" : "prompt",
                      "This model's maximum context length is %d tokens. However, your %s resulted in %zu "
                      "tokens. Please reduce the length of the %s.",
                      srv->n_ctx, kind == API_CHAT ? "messages" : "prompt", j->n_prompt,
                      kind == API_CHAT ? "messages" : "prompt");
    free(text);
    cJSON_Delete(root);
    if (rc) {
        job_release(j);
        free(r->echo);
        r->echo = NULL;
        return -1;
    }
    j->deadline_ms = sched_now_ms() + srv->timeout_ms;
    r->job = j;
    return 0;
}

void api_req_free(api_req *r) {
    job_release(r->job);
    free(r->echo);
    memset(r, 0, sizeof *r);
}

/* ---- answers -------------------------------------------------------------------------------- */

int api_model_matches(const api_server *srv, const char *name) {
    if (!strcmp(name, srv->model_id)) return 1;
    for (int i = 0; i < 3 && srv->model_alias[i]; i++)
        if (srv->model_alias[i][0] && !strcmp(name, srv->model_alias[i])) return 1;
    return 0;
}

const char *api_finish_reason(const job *j) {
    if (j->timed_out) return "length";
    switch (j->result.finish) {
    case 1: case 2: return "length";
    default: return "stop";
    }
}

static int add_header(const api_server *srv, const api_req *r, cJSON *o, const char *object) {
    int ok = add_str(o, "id", r->id, strlen(r->id)) == 0;
    ok = ok && cJSON_AddStringToObject(o, "object", object);
    ok = ok && cJSON_AddNumberToObject(o, "created", (double)r->created);
    ok = ok && add_str(o, "model", srv->model_id, strlen(srv->model_id)) == 0;
    ok = ok && cJSON_AddStringToObject(o, "system_fingerprint", "onebit-" ONEBIT_VERSION);
    return ok;
}

static int add_usage(const api_req *r, cJSON *o) {
    const job *j = r->job;
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    int ok = u != NULL;
    ok = ok && cJSON_AddNumberToObject(u, "prompt_tokens", (double)j->n_prompt);
    ok = ok && cJSON_AddNumberToObject(u, "completion_tokens", j->result.n_generated);
    ok = ok && cJSON_AddNumberToObject(u, "total_tokens", (double)j->n_prompt + j->result.n_generated);
    cJSON *d = ok ? cJSON_AddObjectToObject(u, "prompt_tokens_details") : NULL;
    ok = ok && d && cJSON_AddNumberToObject(d, "cached_tokens", j->result.n_reused);
    /* llama.cpp-style timings: not OpenAI, handy for benchmarks */
    cJSON *t = ok ? cJSON_AddObjectToObject(o, "timings") : NULL;
    ok = ok && t;
    ok = ok && cJSON_AddNumberToObject(t, "cache_n", j->result.n_reused);
    ok = ok && cJSON_AddNumberToObject(t, "prompt_n", j->result.n_prompt);
    ok = ok && cJSON_AddNumberToObject(t, "prompt_ms", j->result.t_prompt_ms);
    ok = ok && cJSON_AddNumberToObject(t, "predicted_n", j->result.n_generated);
    ok = ok && cJSON_AddNumberToObject(t, "predicted_ms", j->result.t_gen_ms);
    return ok;
}

char *api_response_json(const api_server *srv, const api_req *r) {
    const job *j = r->job;
    int chat = r->kind == API_CHAT;
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_header(srv, r, o, chat ? "chat.completion" : "text_completion");
    cJSON *choices = ok ? cJSON_AddArrayToObject(o, "choices") : NULL;
    cJSON *c = cJSON_CreateObject();
    ok = ok && choices && c && cJSON_AddItemToArray(choices, c);
    if (!ok) cJSON_Delete(c);
    ok = ok && cJSON_AddNumberToObject(c, "index", 0);
    if (ok && chat) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        ok = msg && cJSON_AddStringToObject(msg, "role", "assistant");
        ok = ok && add_str(msg, "content", j->text, j->text_len) == 0;
    } else if (ok) {
        char *all = malloc(r->echo_len + j->text_len + 1);
        ok = all != NULL;
        if (ok) {
            if (r->echo_len) memcpy(all, r->echo, r->echo_len);
            if (j->text_len) memcpy(all + r->echo_len, j->text, j->text_len);
            ok = add_str(c, "text", all, r->echo_len + j->text_len) == 0;
        }
        free(all);
    }
    ok = ok && cJSON_AddNullToObject(c, "logprobs");
    ok = ok && cJSON_AddStringToObject(c, "finish_reason", api_finish_reason(j));
    ok = ok && add_usage(r, o);
    return finish_json(o, ok);
}

char *api_chunk_json(const api_server *srv, const api_req *r, const char *text, size_t len, int first,
                     const char *finish) {
    int chat = r->kind == API_CHAT;
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_header(srv, r, o, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = ok ? cJSON_AddArrayToObject(o, "choices") : NULL;
    cJSON *c = cJSON_CreateObject();
    ok = ok && choices && c && cJSON_AddItemToArray(choices, c);
    if (!ok) cJSON_Delete(c);
    ok = ok && cJSON_AddNumberToObject(c, "index", 0);
    if (ok && chat) {
        cJSON *delta = cJSON_AddObjectToObject(c, "delta");
        ok = delta != NULL;
        if (ok && first) ok = cJSON_AddStringToObject(delta, "role", "assistant") != NULL;
        if (ok && (first || len)) ok = add_str(delta, "content", text, len) == 0;
    } else if (ok) {
        ok = add_str(c, "text", text, len) == 0;
    }
    ok = ok && cJSON_AddNullToObject(c, "logprobs");
    if (ok && finish) ok = cJSON_AddStringToObject(c, "finish_reason", finish) != NULL;
    else if (ok) ok = cJSON_AddNullToObject(c, "finish_reason") != NULL;
    if (ok && r->include_usage) ok = cJSON_AddNullToObject(o, "usage") != NULL;
    return finish_json(o, ok);
}

char *api_usage_chunk_json(const api_server *srv, const api_req *r) {
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_header(srv, r, o, r->kind == API_CHAT ? "chat.completion.chunk" : "text_completion");
    ok = ok && cJSON_AddArrayToObject(o, "choices");
    ok = ok && add_usage(r, o);
    return finish_json(o, ok);
}

static cJSON *model_object(const api_server *srv) {
    ob_model_info info;
    ob_model_get_info(srv->model, &info);
    cJSON *m = cJSON_CreateObject();
    int ok = m && add_str(m, "id", srv->model_id, strlen(srv->model_id)) == 0;
    ok = ok && cJSON_AddStringToObject(m, "object", "model");
    ok = ok && cJSON_AddNumberToObject(m, "created", (double)srv->created);
    ok = ok && cJSON_AddStringToObject(m, "owned_by", "onebit");
    cJSON *meta = ok ? cJSON_AddObjectToObject(m, "meta") : NULL;
    ok = ok && meta;
    ok = ok && add_str(meta, "name", info.name ? info.name : "", info.name ? strlen(info.name) : 0) == 0;
    ok = ok && add_str(meta, "arch", info.arch ? info.arch : "", info.arch ? strlen(info.arch) : 0) == 0;
    /* the file name: the web app can fetch the model itself from /models/<file> */
    if (ok && srv->model_alias[0]) ok = add_str(meta, "file", srv->model_alias[0], strlen(srv->model_alias[0])) == 0;
    ok = ok && cJSON_AddNumberToObject(meta, "n_vocab", info.n_vocab);
    ok = ok && cJSON_AddNumberToObject(meta, "n_ctx_train", info.n_ctx_train);
    ok = ok && cJSON_AddNumberToObject(meta, "n_ctx", srv->n_ctx);
    ok = ok && cJSON_AddNumberToObject(meta, "n_params", (double)info.n_params);
    ok = ok && cJSON_AddNumberToObject(meta, "size", (double)info.file_size);
    ok = ok && add_str(meta, "backend", info.backend ? info.backend : "", info.backend ? strlen(info.backend) : 0) == 0;
    if (!ok) { cJSON_Delete(m); return NULL; }
    return m;
}

char *api_models_json(const api_server *srv) {
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = ok ? cJSON_AddArrayToObject(o, "data") : NULL;
    cJSON *m = data ? model_object(srv) : NULL;
    ok = ok && data && m && cJSON_AddItemToArray(data, m);
    if (!ok && m) cJSON_Delete(m);
    return finish_json(o, ok);
}

char *api_model_json(const api_server *srv, const char *id) {
    if (!api_model_matches(srv, id)) return NULL;
    return finish_json(model_object(srv), 1);
}
