/* chat_driver.c — test driver for src/chat.c: reads one JSON request on stdin and prints the
 * rendered prompt on stdout, byte for byte (no trailing newline added).
 *
 * Request: {"messages": [{"role": ..., "content": ...}, ...], "add_generation_prompt": bool,
 *           "enable_thinking": bool (default true), "template": "<jinja text>" (optional: the kind
 *           is then chat_detect(template), else Qwen3), "detect_only": bool (print "qwen3" or
 *           "chatml" and stop)}.
 * A null or missing role/content is passed on as NULL. On a rendering error the message goes to
 * stderr and the exit status is 1; malformed requests exit with 2. Not part of the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "chat.h"

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *q = realloc(p, cap * 2);
            if (!q) { free(p); return NULL; }
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + n, 1, cap - n - 1, f);
        if (got == 0) break;
        n += got;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

static int flag(const cJSON *req, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    if (!v || cJSON_IsNull(v)) return dflt;
    return cJSON_IsTrue(v);
}

int main(void) {
    size_t len;
    char *text = read_all(stdin, &len);
    if (!text) { fprintf(stderr, "chat_driver: cannot read stdin\n"); return 2; }
    cJSON *req = cJSON_ParseWithLength(text, len);
    if (!req) { fprintf(stderr, "chat_driver: bad JSON\n"); return 2; }

    chat_template_kind kind = CHAT_TMPL_QWEN3;
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(req, "template");
    if (tmpl) kind = chat_detect(cJSON_IsString(tmpl) ? tmpl->valuestring : NULL);
    if (flag(req, "detect_only", 0)) {
        fputs(kind == CHAT_TMPL_QWEN3 ? "qwen3" : "chatml", stdout);
        cJSON_Delete(req);
        free(text);
        return 0;
    }

    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(req, "messages");
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    ob_chat_message *msgs = calloc(n > 0 ? (size_t)n : 1, sizeof *msgs);
    if (!msgs) return 2;
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(arr, i);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        msgs[i].role = cJSON_IsString(r) ? r->valuestring : NULL;
        msgs[i].content = cJSON_IsString(c) ? c->valuestring : NULL;
    }

    char *out = NULL, err[256] = "";
    int rc = chat_render(kind, msgs, (size_t)n, flag(req, "add_generation_prompt", 0),
                         flag(req, "enable_thinking", 1), &out, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
    } else {
        fwrite(out, 1, strlen(out), stdout);
        free(out);
    }
    free(msgs);
    cJSON_Delete(req);
    free(text);
    return rc != 0 ? 1 : 0;
}
