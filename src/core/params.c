/* params.c — the one validation of the numbers a caller hands to generation: sampling parameters,
 * the context size and the token limit. The CLI (cli/opts.c), the server (cli/serve_api.c) and the
 * JavaScript engine (web/engine.mjs, through the wasm export) all call these, so a value is refused
 * everywhere with the same message, which names the parameter and its valid range. It checks; it
 * never clamps or changes a value. */
#include <math.h>

#include "util.h"

/* The ranges, in one place. The OpenAI-compatible ones (temperature, top_p, the two penalties)
 * are OpenAI's; the others follow llama.cpp's server. */
#define TEMP_MAX 2.0f
#define TOP_K_MAX (1 << 30)
#define REPEAT_PENALTY_MIN 0.01f
#define REPEAT_PENALTY_MAX 100.0f
#define PENALTY_MAX 2.0f
#define LAST_N_MAX (1 << 24)
#define N_CTX_MAX (1 << 22)
#define MAX_TOKENS_MAX (1 << 30)

static ob_status range_f(const char *name, float v, float lo, float hi) {
    if (isfinite(v) && v >= lo && v <= hi) return OB_OK;
    return ob_fail(OB_ERR_ARG, "%s must be a number between %g and %g, got %g", name, lo, hi, v);
}

static ob_status range_i(const char *name, long v, long lo, long hi, const char *note) {
    if (v >= lo && v <= hi) return OB_OK;
    return ob_fail(OB_ERR_ARG, "%s must be an integer between %ld and %ld%s, got %ld", name, lo, hi, note, v);
}

ob_status ob_sampling_check(const ob_sampling *s) {
    if (!s) return ob_fail(OB_ERR_ARG, "ob_sampling_check: NULL argument");
    ob_status st;
    if ((st = range_f("temperature", s->temperature, 0, TEMP_MAX))) return st;
    if ((st = range_i("top_k", s->top_k, -1, TOP_K_MAX, " (0 or -1: off)"))) return st;
    if ((st = range_f("top_p", s->top_p, 0, 1))) return st;
    if ((st = range_f("min_p", s->min_p, 0, 1))) return st;
    if ((st = range_f("repeat_penalty", s->repeat_penalty, REPEAT_PENALTY_MIN, REPEAT_PENALTY_MAX))) return st;
    if ((st = range_i("repeat_last_n", s->repeat_last_n, -1, LAST_N_MAX, " (-1: whole context)"))) return st;
    if ((st = range_f("presence_penalty", s->presence_penalty, -PENALTY_MAX, PENALTY_MAX))) return st;
    if ((st = range_f("frequency_penalty", s->frequency_penalty, -PENALTY_MAX, PENALTY_MAX))) return st;
    return OB_OK;
}

ob_status ob_limits_check(int n_ctx, int max_tokens) {
    ob_status st;
    if ((st = range_i("n_ctx", n_ctx, 0, N_CTX_MAX, " (0: the model's, at most 4096)"))) return st;
    return range_i("max_tokens", max_tokens, 0, MAX_TOKENS_MAX, " (0: until the context is full)");
}
