/* fuzz_jinja.c — libFuzzer target for the Jinja chat-template interpreter (src/core/jinja.c).
 *
 * Each input is split at its first NUL byte: the part before is a template, the part after a
 * context JSON (a fixed small conversation when there is no NUL). The template is parsed and, if it
 * parses, rendered at a fixed clock. Not a correctness check: crashes, sanitizer reports, leaks and
 * timeouts are the findings (the interpreter's own step, depth, memory and output limits must
 * keep every render short). Built and run by run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

static const char default_ctx[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"hi \\u00e9\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>\\nx\\n</think>\\n\\nok\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":[1.5,true,null]}}}]}],\"tools\":null,"
    "\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *ctx = NULL;
    if (nul) {
        size_t clen = size - tlen - 1;
        ctx = malloc(clen + 1);
        if (!ctx) return 0;
        memcpy(ctx, nul + 1, clen);
        ctx[clen] = 0;
    }
    char err[256];
    jinja_tmpl *t = NULL;
    if (jinja_parse((const char *)data, tlen, &t, err, sizeof err) == 0) {
        char *out = NULL;
        size_t on = 0;
        if (jinja_render_at(t, ctx ? ctx : default_ctx, 1721980800, &out, &on, err, sizeof err) == 0) free(out);
        jinja_free(t);
    }
    free(ctx);
    return 0;
}
