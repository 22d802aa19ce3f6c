/* chat_driver.c — test driver for src/core/chat.c: reads one JSON request on stdin and prints the
 * rendered prompt on stdout, byte for byte (no trailing newline added).
 *
 * Request: {"messages": [{"role": ..., "content": ...}, ...], "add_generation_prompt": bool,
 *           "enable_thinking": bool (absent or null: left undefined), "template": "<jinja text>",
 *           "bos_token": "...", "eos_token": "..."}.
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

    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(req, "template");
    if (!cJSON_IsString(tmpl)) { fprintf(stderr, "chat_driver: no template\n"); return 2; }
    jinja_tmpl *t = NULL;
    char perr[512];
    if (jinja_parse(tmpl->valuestring, strlen(tmpl->valuestring), &t, perr, sizeof perr) != 0) {
        fprintf(stderr, "template: %s\n", perr);
        return 1;
    }
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(req, "bos_token");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(req, "eos_token");
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(req, "enable_thinking");
    int think = !et || cJSON_IsNull(et) ? -1 : cJSON_IsTrue(et);

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

    char *out = NULL, *json = NULL, err[512] = "";
    int rc = chat_messages_json(msgs, (size_t)n, &json, err, sizeof err);
    if (rc == 0)
        rc = chat_render(t, cJSON_IsString(bos) ? bos->valuestring : "", cJSON_IsString(eos) ? eos->valuestring : "",
                         json, NULL, flag(req, "add_generation_prompt", 0), think, &out, err, sizeof err);
    free(json);
    jinja_free(t);
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
