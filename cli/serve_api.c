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

/* Adds key: the text (made valid UTF-8) to a message object. */
static int put_text(cJSON *o, const char *key, const char *text) {
    char *clean = api_utf8_clean(text, strlen(text), NULL);
    int ok = clean && cJSON_AddStringToObject(o, key, clean) != NULL;
    free(clean);
    return ok;
}

/* An assistant message's tool_calls, as the template sees them: each {id, type, function: {name,
 * arguments}} with the arguments parsed into an object when they are JSON text (templates write
 * them with tojson; OpenAI sends a string). */
static int copy_tool_calls(const cJSON *tc, int i, cJSON *out, api_error *err) {
    char param[48];
    snprintf(param, sizeof param, "messages[%d].tool_calls", i);
    if (!cJSON_IsArray(tc)) return BAD(param, "'%s' must be an array", param);
    cJSON *arr = cJSON_AddArrayToObject(out, "tool_calls");
    if (!arr) return BAD(NULL, "out of memory");
    const cJSON *c;
    cJSON_ArrayForEach(c, tc) {
        const cJSON *fn = cJSON_IsObject(c) ? field(c, "function") : NULL;
        const cJSON *name = fn && cJSON_IsObject(fn) ? field(fn, "name") : NULL;
        const cJSON *args = fn && cJSON_IsObject(fn) ? field(fn, "arguments") : NULL;
        const cJSON *id = cJSON_IsObject(c) ? field(c, "id") : NULL;
        if (!name || !cJSON_IsString(name)) return BAD(param, "each tool call needs function.name (a string)");
        if (args && !cJSON_IsString(args) && !cJSON_IsObject(args))
            return BAD(param, "function.arguments must be a string (JSON text) or an object");
        if (id && !cJSON_IsString(id)) return BAD(param, "a tool call's 'id' must be a string");
        cJSON *o = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(o, "function");
        int ok = o && f && cJSON_AddItemToArray(arr, o);
        if (!ok) { cJSON_Delete(o); return BAD(NULL, "out of memory"); }
        if (id) ok = put_text(o, "id", id->valuestring);
        ok = ok && cJSON_AddStringToObject(o, "type", "function");
        ok = ok && put_text(f, "name", name->valuestring);
        cJSON *a = NULL;
        if (args && cJSON_IsString(args)) {
            a = cJSON_Parse(args->valuestring);
            if (!a) a = cJSON_CreateString(args->valuestring); /* not JSON: the template gets the text */
        } else {
            a = args ? cJSON_Duplicate(args, 1) : cJSON_CreateObject();
        }
        ok = ok && a && cJSON_AddItemToObject(f, "arguments", a);
        if (!ok) return BAD(NULL, "out of memory");
    }
    return 0;
}

/* The request's tools, checked: [{type: "function", function: {name, description?, parameters?}}].
 * *out: a JSON array for the template (malloc'ed), NULL when there are none. */
static int parse_tools(const cJSON *root, api_req *r, char **out, api_error *err) {
    *out = NULL;
    const cJSON *tools = field(root, "tools");
    if (field(root, "functions")) return BAD("functions", "'functions' (the deprecated form) is not supported: use 'tools'");
    if (!tools) return 0;
    if (!cJSON_IsArray(tools)) return BAD("tools", "'tools' must be an array");
    int n = cJSON_GetArraySize(tools);
    if (n > 128) return BAD("tools", "at most 128 tools are supported");
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *type = cJSON_IsObject(t) ? field(t, "type") : NULL;
        const cJSON *fn = cJSON_IsObject(t) ? field(t, "function") : NULL;
        const cJSON *name = fn && cJSON_IsObject(fn) ? field(fn, "name") : NULL;
        const cJSON *params = fn && cJSON_IsObject(fn) ? field(fn, "parameters") : NULL;
        if (!type || !cJSON_IsString(type) || strcmp(type->valuestring, "function"))
            return BAD("tools", "tools[%d]: only tools of type 'function' are supported", i);
        if (!name || !cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) > 64)
            return BAD("tools", "tools[%d]: function.name must be a string of 1 to 64 characters", i);
        for (const char *c = name->valuestring; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                  *c == '-' || *c == '.'))
                return BAD("tools", "tools[%d]: function.name may hold only letters, digits, _, - and .", i);
        if (params && !cJSON_IsObject(params)) return BAD("tools", "tools[%d]: function.parameters must be an object", i);
        i++;
    }
    r->n_tools = n;
    if (n == 0) return 0;
    *out = cJSON_PrintUnformatted(tools);
    return *out ? 0 : BAD(NULL, "out of memory");
}

/* tool_choice: "none", "auto", "required", or {"type": "function", "function": {"name": N}}. */
static int parse_tool_choice(const cJSON *root, api_req *r, api_error *err) {
    const cJSON *tc = field(root, "tool_choice");
    r->tool_choice = r->n_tools ? TOOL_AUTO : TOOL_NONE;
    if (!tc) return 0;
    if (cJSON_IsString(tc)) {
        const char *v = tc->valuestring;
        if (!strcmp(v, "none")) r->tool_choice = TOOL_NONE;
        else if (!strcmp(v, "auto")) r->tool_choice = r->n_tools ? TOOL_AUTO : TOOL_NONE;
        else if (!strcmp(v, "required")) r->tool_choice = TOOL_REQUIRED;
        else return BAD("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or a named function");
    } else if (cJSON_IsObject(tc)) {
        const cJSON *fn = field(tc, "function");
        const cJSON *name = fn && cJSON_IsObject(fn) ? field(fn, "name") : NULL;
        if (!name || !cJSON_IsString(name))
            return BAD("tool_choice", "a named tool_choice is {\"type\": \"function\", \"function\": {\"name\": ...}}");
        snprintf(r->tool_name, sizeof r->tool_name, "%s", name->valuestring);
        r->tool_choice = TOOL_NAMED;
    } else {
        return BAD("tool_choice", "'tool_choice' must be a string or an object");
    }
    if (r->tool_choice != TOOL_NONE && r->n_tools == 0)
        return BAD("tool_choice", "'tool_choice' asks for a tool call but 'tools' is empty or missing");
    if (r->tool_choice == TOOL_NAMED) {
        const cJSON *t;
        int found = 0;
        cJSON_ArrayForEach(t, field(root, "tools")) {
            const cJSON *n = field(field(t, "function"), "name");
            found |= !strcmp(n->valuestring, r->tool_name);
        }
        if (!found) return BAD("tool_choice", "tool_choice names '%.64s', which is not among the tools", r->tool_name);
    }
    if (r->tool_choice == TOOL_REQUIRED && r->n_tools == 1) { /* one way to satisfy it: name it */
        const cJSON *n = field(field(cJSON_GetArrayItem(field(root, "tools"), 0), "function"), "name");
        snprintf(r->tool_name, sizeof r->tool_name, "%s", n->valuestring);
        r->tool_choice = TOOL_NAMED;
    }
    return 0;
}

/* The text a forced tool call starts with, written into the prompt after the generation prompt so
 * the model continues inside the call: the opener, and with a named function its name and the key
 * of the arguments. Without the grammar engine this is the whole constraint; with it, the grammar
 * for what follows (the arguments of that function's `parameters` schema, then the call's end)
 * starts right after this text. */
static void forced_prefix(const api_req *r, tool_format fmt, char *out, size_t cap) {
    const char *open = fmt == TOOLFMT_HERMES ? "<tool_call>\n" : "";
    const char *key = fmt == TOOLFMT_HERMES ? "arguments" : "parameters";
    if (r->tool_choice == TOOL_NAMED) snprintf(out, cap, "%s{\"name\": \"%s\", \"%s\": ", open, r->tool_name, key);
    else snprintf(out, cap, "%s{\"name\": \"", open);
}

/* Renders the chat and returns the prompt text (malloc'ed); *answer_prefix (malloc'ed) is the part
 * of the answer the prompt already holds (an opened thinking block, a forced call's opening), which
 * the reply parser reads before the generated text. */
static int chat_prompt(const api_server *srv, const cJSON *root, api_req *r, char **prompt, char **answer_prefix,
                       api_error *err) {
    *answer_prefix = NULL;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs || cJSON_IsNull(msgs))
        return BAD_CODE("missing_required_parameter", "messages", "Missing required parameter: 'messages'");
    if (!cJSON_IsArray(msgs)) return BAD("messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(msgs);
    if (n == 0) return BAD_CODE("empty_array", "messages", "'messages' must contain at least one message");
    if (n > 100000) return BAD("messages", "too many messages");
    char *tools_json = NULL;
    int rc = parse_tools(root, r, &tools_json, err);
    if (rc == 0) rc = parse_tool_choice(root, r, err);
    cJSON *arr = rc == 0 ? cJSON_CreateArray() : NULL;
    if (rc == 0 && !arr) rc = BAD(NULL, "out of memory");
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
        const cJSON *tc = field(it, "tool_calls");
        if (tc && strcmp(rs, "assistant")) { rc = BAD("messages", "messages[%d]: only assistant messages have tool_calls", i); break; }
        char *text = NULL;
        int may_be_null = !strcmp(rs, "assistant");
        if ((rc = content_text(field(it, "content"), (size_t)i, may_be_null, &text, err))) break;
        cJSON *m = cJSON_CreateObject();
        int ok = m && cJSON_AddItemToArray(arr, m);
        if (!ok) cJSON_Delete(m);
        ok = ok && cJSON_AddStringToObject(m, "role", rs);
        ok = ok && put_text(m, "content", text);
        free(text);
        if (!ok) { rc = BAD(NULL, "out of memory"); break; }
        if (tc && (rc = copy_tool_calls(tc, i, m, err))) break;
        static const char *const extras[] = {"tool_call_id", "name", "reasoning_content"};
        for (int k = 0; k < 3 && rc == 0; k++) {
            const cJSON *v = field(it, extras[k]);
            if (!v) continue;
            if (!cJSON_IsString(v)) rc = BAD("messages", "messages[%d].%s must be a string", i, extras[k]);
            else if (!put_text(m, extras[k], v->valuestring)) rc = BAD(NULL, "out of memory");
        }
        if (rc) break;
        i++;
    }
    int think = srv->default_think;
    if (rc == 0) {
        const cJSON *kw = field(root, "chat_template_kwargs");
        if (kw && !cJSON_IsObject(kw)) rc = BAD("chat_template_kwargs", "'chat_template_kwargs' must be an object");
        else if (kw && get_bool(kw, "enable_thinking", &think, err) < 0) rc = -1;
    }
    tool_format fmt = TOOLFMT_NONE;
    if (rc == 0 && r->tool_choice != TOOL_NONE) {
        fmt = tool_format_of(ob_model_chat_template(srv->model));
        if (fmt == TOOLFMT_NONE)
            rc = BAD("tools", "this model's chat template shows no tool-call syntax onebit can read "
                              "(Qwen's <tool_call> or Llama 3.1's JSON calls)");
    }
    char *mj = rc == 0 ? cJSON_PrintUnformatted(arr) : NULL;
    if (rc == 0 && !mj) rc = BAD(NULL, "out of memory");
    cJSON_Delete(arr);
    if (rc == 0) {
        /* tool_choice none: the model is not shown the tools, so it has no reason to call them */
        ob_status st = ob_chat_render_json(srv->model, mj, r->tool_choice == TOOL_NONE ? NULL : tools_json, 1, think,
                                           prompt);
        if (st) rc = BAD("messages", "cannot render the chat: %s", ob_last_error());
    }
    free(mj);
    free(tools_json);
    if (rc) return rc;
    r->tool_fmt = fmt;
    /* What the prompt holds of the answer: an open thinking block (templates that start it), and
     * the opening of a forced call (after an empty thinking block, so a thinking model skips it). */
    char prefix[256] = "";
    size_t pl = strlen(*prompt);
    const char *tail = pl >= 8 ? *prompt + pl - 8 : *prompt;
    int open_think = strstr(tail, "<think>") && !strstr(tail, "</think>");
    if (open_think) snprintf(prefix, sizeof prefix, "<think>\n");
    if (r->tool_choice == TOOL_REQUIRED || r->tool_choice == TOOL_NAMED) {
        char forced[160];
        forced_prefix(r, fmt, forced, sizeof forced);
        const char *tmpl = ob_model_chat_template(srv->model);
        int closed = pl >= 10 && strstr(*prompt + pl - 10, "</think>") != NULL;
        const char *skip = open_think ? "\n</think>\n\n" : (tmpl && strstr(tmpl, "<think>") && !closed) ? "<think>\n\n</think>\n\n" : "";
        char extra[224];
        snprintf(extra, sizeof extra, "%s%s", skip, forced);
        size_t el = strlen(extra);
        char *np = realloc(*prompt, pl + el + 1);
        if (!np) return BAD(NULL, "out of memory");
        memcpy(np + pl, extra, el + 1);
        *prompt = np;
        snprintf(prefix + strlen(prefix), sizeof prefix - strlen(prefix), "%s", extra);
    }
    *answer_prefix = strdup(prefix);
    return *answer_prefix ? 0 : BAD(NULL, "out of memory");
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

/* /v1/embeddings: input is a string, an array of strings, an array of token ids, or an array of
 * arrays of token ids; every input becomes one token list of the job. */
static int embedding_inputs(const api_server *srv, const cJSON *root, job *j, api_req *r, api_error *err) {
    ob_model_info info;
    ob_model_get_info(srv->model, &info);
    if (ob_model_pooling(srv->model) == OB_POOLING_NONE)
        return BAD("model", "'%s' is not an embedding model: its file has no pooling type (%s.pooling_type)",
                   srv->model_id, info.arch);
    const cJSON *model = field(root, "model");
    if (model && !cJSON_IsString(model)) return BAD("model", "'model' must be a string");
    if (model && model->valuestring[0] && !api_model_matches(srv, model->valuestring)) {
        api_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                      "The model '%.200s' does not exist: this server runs '%s'", model->valuestring, srv->model_id);
        return -1;
    }
    const cJSON *ef = field(root, "encoding_format");
    if (ef && (!cJSON_IsString(ef) || (strcmp(ef->valuestring, "float") && strcmp(ef->valuestring, "base64"))))
        return BAD("encoding_format", "'encoding_format' must be \"float\" or \"base64\"");
    r->encoding_base64 = ef && !strcmp(ef->valuestring, "base64");
    double d;
    int rc = get_num(root, "dimensions", 1, 1 << 20, 1, &d, err);
    if (rc < 0) return -1;
    if (rc && (int)d != info.n_embd)
        return BAD("dimensions", "this model's embeddings have %d dimensions (no shortening)", info.n_embd);
    const cJSON *in = field(root, "input");
    if (!in) return BAD_CODE("missing_required_parameter", "input", "Missing required parameter: 'input'");
    /* a list of inputs, or one: a string or an array of token ids is one input */
    const cJSON *first = cJSON_IsArray(in) ? cJSON_GetArrayItem(in, 0) : NULL;
    int list = cJSON_IsArray(in) && first && !cJSON_IsNumber(first);
    int n = list ? cJSON_GetArraySize(in) : 1;
    if (cJSON_IsArray(in) && !first) return BAD_CODE("empty_array", "input", "'input' must not be empty");
    if (n > 2048) return BAD("input", "at most 2048 inputs per request");
    j->embed_in = calloc((size_t)n, sizeof *j->embed_in);
    j->embed_len = calloc((size_t)n, sizeof *j->embed_len);
    j->embedding = calloc((size_t)n * (size_t)info.n_embd, sizeof *j->embedding);
    if (!j->embed_in || !j->embed_len || !j->embedding) return BAD(NULL, "out of memory");
    j->n_embed = n;
    j->n_embd = info.n_embd;
    for (int i = 0; i < n; i++) {
        const cJSON *x = list ? cJSON_GetArrayItem(in, i) : in;
        if (cJSON_IsString(x)) {
            size_t len = strlen(x->valuestring), cnt = 0;
            if (ob_tokenize_prompt(srv->model, x->valuestring, len, 1, NULL, 0, &cnt))
                return BAD("input", "cannot tokenize: %s", ob_last_error());
            if (!(j->embed_in[i] = malloc((cnt ? cnt : 1) * sizeof(ob_token)))) return BAD(NULL, "out of memory");
            if (ob_tokenize_prompt(srv->model, x->valuestring, len, 1, j->embed_in[i], cnt, &j->embed_len[i]))
                return BAD("input", "cannot tokenize");
        } else if (cJSON_IsArray(x) && cJSON_GetArraySize(x) > 0) {
            int m = cJSON_GetArraySize(x);
            if (!(j->embed_in[i] = malloc((size_t)m * sizeof(ob_token)))) return BAD(NULL, "out of memory");
            const cJSON *t;
            cJSON_ArrayForEach(t, x) {
                double v = cJSON_IsNumber(t) ? t->valuedouble : -1;
                if (v != floor(v) || v < 0 || v >= info.n_vocab)
                    return BAD("input", "token ids must be integers in 0..%d", info.n_vocab - 1);
                j->embed_in[i][j->embed_len[i]++] = (ob_token)v;
            }
        } else {
            return BAD("input", "'input' must be a string, an array of strings, an array of token ids or an array "
                                "of such arrays (none empty)");
        }
        if (j->embed_len[i] == 0) return BAD("input", "input %d is empty", i);
        if (j->embed_len[i] > (size_t)srv->n_ctx)
            return BAD_CODE("context_length_exceeded", "input",
                            "input %d has %zu tokens; this server's context holds %d", i, j->embed_len[i], srv->n_ctx);
        j->n_prompt += j->embed_len[i];
    }
    j->max_tokens = 1;
    return 0;
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
    if (rc == 0 && kind == API_EMBEDDING) rc = embedding_inputs(srv, root, j, r, err);
    else if (rc == 0) rc = parse_common(srv, root, j, r, err);
    if (rc == 0 && kind != API_EMBEDDING) rc = api_constraint(root, j, err);
    if (rc == 0 && kind == API_CHAT) {
        const cJSON *rf = field(root, "reasoning_format");
        int reasoning = 1;
        if (rf && (!cJSON_IsString(rf) || (strcmp(rf->valuestring, "none") && strcmp(rf->valuestring, "auto") &&
                                            strcmp(rf->valuestring, "deepseek"))))
            rc = BAD("reasoning_format", "'reasoning_format' must be \"auto\", \"deepseek\" or \"none\"");
        else if (rf) reasoning = strcmp(rf->valuestring, "none") != 0;
        char *prefix = NULL;
        if (rc == 0) rc = chat_prompt(srv, root, r, &text, &prefix, err);
        /* A forced call writes its opening into the prompt; a grammar of the caller's would have to
         * start inside that call, so the two are not combined. */
        if (rc == 0 && prefix[0] && (j->grammar || j->json_schema))
            rc = BAD("tool_choice", "a forced tool call cannot be combined with 'grammar' or a JSON 'response_format'");
        if (rc == 0) rc = tokenize(srv, text, strlen(text), j, err);
        /* Raw text (reasoning_format none) keeps the thinking block in content, less Qwen3's empty one. */
        j->strip_think = !reasoning;
        if (rc == 0 && !(r->rp = rp_new(reasoning, r->tool_fmt, random_u64(), r->stream)))
            rc = BAD(NULL, "out of memory");
        if (rc == 0 && prefix[0]) rp_feed(r->rp, prefix, strlen(prefix));
        /* A forced call to one function is one call, and so is any call without parallel calls:
         * the generation ends with it. */
        int parallel = 1;
        if (rc == 0 && get_bool(root, "parallel_tool_calls", &parallel, err) < 0) rc = -1;
        if (rc == 0 && (r->tool_choice == TOOL_NAMED || !parallel) && r->tool_fmt == TOOLFMT_HERMES) {
            int k = 0;
            while (j->stop[k]) k++;
            if (k < SERVE_MAX_STOP && !(j->stop[k] = strdup("</tool_call>"))) rc = BAD(NULL, "out of memory");
        }
        free(prefix);
    } else if (rc == 0 && kind == API_COMPLETION) {
        int echo = 0;
        const cJSON *suffix = field(root, "suffix");
        if (suffix && !(cJSON_IsString(suffix) && !suffix->valuestring[0]))
            rc = BAD("suffix", "'suffix' is not supported");
        if (rc == 0 && get_bool(root, "echo", &echo, err) < 0) rc = -1;
        if (rc == 0) rc = completion_prompt(srv, root, j, r, echo, err);
    }
    if (rc == 0 && j->n_prompt == 0 && kind != API_EMBEDDING)
        rc = BAD(kind == API_CHAT ? "messages" : "prompt", "the prompt is empty");
    if (rc == 0 && kind != API_EMBEDDING && j->n_prompt >= (size_t)srv->n_ctx)
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
        rp_free(r->rp);
        r->rp = NULL;
        return -1;
    }
    j->deadline_ms = sched_now_ms() + srv->timeout_ms;
    r->job = j;
    return 0;
}

void api_req_free(api_req *r) {
    job_release(r->job);
    free(r->echo);
    rp_free(r->rp);
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
        reply_parser *p = r->rp;
        rp_feed(p, j->text, j->text_len);
        rp_finish(p);
        ok = ok && !p->oom;
        /* OpenAI: content is null when the answer is only tool calls */
        if (ok && p->content.len == 0 && p->n_calls > 0) ok = cJSON_AddNullToObject(msg, "content") != NULL;
        else if (ok) ok = add_str(msg, "content", p->content.p, p->content.len) == 0;
        if (ok && p->reasoning.len) ok = add_str(msg, "reasoning_content", p->reasoning.p, p->reasoning.len) == 0;
        cJSON *calls = ok && p->n_calls ? cJSON_AddArrayToObject(msg, "tool_calls") : NULL;
        for (int i = 0; ok && calls && i < p->n_calls; i++) {
            cJSON *tc = cJSON_CreateObject(), *fn = NULL;
            ok = tc && cJSON_AddItemToArray(calls, tc);
            if (!ok) cJSON_Delete(tc);
            ok = ok && add_str(tc, "id", p->calls[i].id, strlen(p->calls[i].id)) == 0;
            ok = ok && cJSON_AddStringToObject(tc, "type", "function");
            ok = ok && (fn = cJSON_AddObjectToObject(tc, "function"));
            ok = ok && add_str(fn, "name", p->calls[i].name.p, p->calls[i].name.len) == 0;
            ok = ok && add_str(fn, "arguments", p->calls[i].args.p, p->calls[i].args.len) == 0;
        }
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
    ok = ok && cJSON_AddStringToObject(c, "finish_reason", chat ? api_chat_finish_reason(r) : api_finish_reason(j));
    ok = ok && add_usage(r, o);
    return finish_json(o, ok);
}

const char *api_chat_finish_reason(const api_req *r) {
    const char *f = api_finish_reason(r->job);
    return r->rp && r->rp->n_calls > 0 && !strcmp(f, "stop") ? "tool_calls" : f;
}

/* One chat.completion.chunk whose delta is filled by the caller. */
static cJSON *chunk_with_delta(const api_server *srv, const api_req *r, cJSON **delta) {
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_header(srv, r, o, "chat.completion.chunk");
    cJSON *choices = ok ? cJSON_AddArrayToObject(o, "choices") : NULL;
    cJSON *c = cJSON_CreateObject();
    ok = ok && choices && c && cJSON_AddItemToArray(choices, c);
    if (!ok) cJSON_Delete(c);
    ok = ok && cJSON_AddNumberToObject(c, "index", 0);
    ok = ok && (*delta = cJSON_AddObjectToObject(c, "delta"));
    ok = ok && cJSON_AddNullToObject(c, "logprobs");
    ok = ok && cJSON_AddNullToObject(c, "finish_reason");
    if (ok && r->include_usage) ok = cJSON_AddNullToObject(o, "usage") != NULL;
    if (!ok) { cJSON_Delete(o); return NULL; }
    return o;
}

int api_event_chunks(const api_server *srv, const api_req *r, int (*emit)(void *user, char *json), void *user) {
    reply_parser *p = r->rp;
    int rc = p->oom ? -1 : 0;
    for (size_t e = 0; e < p->n_ev && rc == 0; e++) {
        const rp_event *ev = &p->ev[e];
        const char *text = p->ev_text.p + ev->off;
        cJSON *delta = NULL, *o = chunk_with_delta(srv, r, &delta);
        int ok = o != NULL;
        if (ok && ev->kind == RP_CONTENT) ok = add_str(delta, "content", text, ev->len) == 0;
        else if (ok && ev->kind == RP_REASONING) ok = add_str(delta, "reasoning_content", text, ev->len) == 0;
        else if (ok) {
            /* tool_calls[i]: the first delta of a call has its id, type and name; the next ones carry
             * pieces of function.arguments */
            const rp_call *call = &p->calls[ev->call];
            cJSON *arr = cJSON_AddArrayToObject(delta, "tool_calls"), *tc = cJSON_CreateObject(), *fn = NULL;
            ok = arr && tc && cJSON_AddItemToArray(arr, tc);
            if (!ok) cJSON_Delete(tc);
            ok = ok && cJSON_AddNumberToObject(tc, "index", ev->call);
            if (ok && ev->kind == RP_CALL_BEGIN) {
                ok = add_str(tc, "id", call->id, strlen(call->id)) == 0;
                ok = ok && cJSON_AddStringToObject(tc, "type", "function");
            }
            ok = ok && (fn = cJSON_AddObjectToObject(tc, "function"));
            if (ok && ev->kind == RP_CALL_BEGIN) ok = add_str(fn, "name", call->name.p, call->name.len) == 0;
            ok = ok && add_str(fn, "arguments", ev->kind == RP_CALL_ARGS ? text : "", ev->kind == RP_CALL_ARGS ? ev->len : 0) == 0;
        }
        char *json = finish_json(o, ok);
        if (!json || emit(user, json)) rc = -1;
    }
    rp_events_clear(p);
    return rc;
}

/* Standard base64 of n bytes (malloc'ed, NUL-terminated). */
static char *base64(const unsigned char *b, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *w = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        *w++ = tab[v >> 18 & 63];
        *w++ = tab[v >> 12 & 63];
        *w++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *w++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *w = 0;
    return o;
}

char *api_embeddings_json(const api_server *srv, const api_req *r) {
    const job *j = r->job;
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = ok ? cJSON_AddArrayToObject(o, "data") : NULL;
    ok = ok && data;
    for (int i = 0; ok && i < j->n_embed; i++) {
        const float *e = j->embedding + (size_t)i * j->n_embd;
        cJSON *d = cJSON_CreateObject();
        ok = d && cJSON_AddItemToArray(data, d);
        if (!ok) cJSON_Delete(d);
        ok = ok && cJSON_AddStringToObject(d, "object", "embedding");
        ok = ok && cJSON_AddNumberToObject(d, "index", i);
        if (ok && r->encoding_base64) {
            unsigned char *bytes = malloc((size_t)j->n_embd * 4);
            ok = bytes != NULL;
            for (int k = 0; ok && k < j->n_embd; k++) { /* little-endian float32, as OpenAI sends */
                uint32_t u;
                memcpy(&u, &e[k], 4);
                for (int b = 0; b < 4; b++) bytes[(size_t)k * 4 + b] = (unsigned char)(u >> (8 * b));
            }
            char *s = ok ? base64(bytes, (size_t)j->n_embd * 4) : NULL;
            ok = s && cJSON_AddStringToObject(d, "embedding", s);
            free(s);
            free(bytes);
        } else if (ok) {
            cJSON *arr = cJSON_AddArrayToObject(d, "embedding");
            ok = arr != NULL;
            for (int k = 0; ok && k < j->n_embd; k++) {
                /* %.9g round-trips a float exactly */
                char num[32];
                snprintf(num, sizeof num, "%.9g", (double)e[k]);
                cJSON *v = cJSON_CreateRaw(num);
                ok = v && cJSON_AddItemToArray(arr, v);
                if (!ok) cJSON_Delete(v);
            }
        }
    }
    ok = ok && add_str(o, "model", srv->model_id, strlen(srv->model_id)) == 0;
    cJSON *u = ok ? cJSON_AddObjectToObject(o, "usage") : NULL;
    ok = ok && u && cJSON_AddNumberToObject(u, "prompt_tokens", (double)j->n_prompt);
    ok = ok && cJSON_AddNumberToObject(u, "total_tokens", (double)j->n_prompt);
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
