/* wasm_api.c — small JS-facing wrappers over the public API for the WebAssembly build.
 *
 * JS cannot conveniently build C structs, so these take scalars and fill ob_model_params,
 * ob_context_params, ob_sampling and ob_generate_params themselves (web/engine.mjs calls them for
 * both of its paths, CPU and WebGPU). They add no behaviour of their own: defaults come from
 * ob_sampling_default, rules from the generation loop (src/core/gen.c). Compiled for WebAssembly only,
 * into both the single-threaded module and the threaded one (onebit-mt, built with -pthread),
 * where n_threads > 1 gives the CPU backend a pool of Web Workers.
 */
#ifdef __EMSCRIPTEN__

#include <emscripten.h>
#include <stdlib.h>
#include <string.h>

#include "onebit.h"
#include "threadpool.h"

static int js_threads = 1; /* threads of the model loaded last */

/* A model from a whole file in wasm memory (data must outlive the model). n_threads: threads of
 * the CPU backend, caller included (clamped to 1..64; more than 1 only helps in the threaded
 * module, and only as far as it has workers: see ob_js_thread_stats for what it got). */
EMSCRIPTEN_KEEPALIVE int ob_js_load_memory(const void *data, double size, const char *backend, int n_threads,
                                           ob_model **out) {
    ob_model_params p = ob_model_default_params();
    p.backend = backend;
    p.n_threads = n_threads < 1 ? 1 : n_threads > 64 ? 64 : n_threads;
    if (!(size >= 0 && size < 4294967296.0)) return OB_ERR_ARG;
    ob_status st = ob_model_load_memory(data, (size_t)size, &p, out);
    if (st == OB_OK) {
        /* The pool is the CPU backend's; the scalar one runs on the caller alone. */
        ob_model_info i;
        ob_model_get_info(*out, &i);
        int figures[2];
        tp_stats(figures, 1);
        js_threads = strcmp(i.backend, "cpu") == 0 ? figures[0] : 1;
    }
    return st;
}

EMSCRIPTEN_KEEPALIVE int ob_js_context_new(ob_model *m, int n_ctx, int kv_f16, int n_batch, ob_context **out) {
    ob_context_params p = ob_context_default_params();
    p.n_ctx = n_ctx;
    p.kv_f16 = kv_f16;
    p.n_batch = n_batch;
    return ob_context_new(m, &p, out);
}

/* Sampling settings from v[9] = {temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
 * presence_penalty, frequency_penalty, seed}: field i is taken when bit i of given is set, else
 * ob_sampling_default's. */
static ob_sampling sampling_from(const double *v, unsigned given) {
    ob_sampling p = ob_sampling_default();
    if (given & 1) p.temperature = (float)v[0];
    if (given & 2) p.top_k = (int)v[1];
    if (given & 4) p.top_p = (float)v[2];
    if (given & 8) p.min_p = (float)v[3];
    if (given & 16) p.repeat_penalty = (float)v[4];
    if (given & 32) p.repeat_last_n = (int)v[5];
    if (given & 64) p.presence_penalty = (float)v[6];
    if (given & 128) p.frequency_penalty = (float)v[7];
    if (given & 256) p.seed = v[8] >= 0 ? (uint64_t)v[8] : 0;
    return p;
}

/* A host sampler (tests/webgpu.test.mjs checks the GPU sampler against it). */
EMSCRIPTEN_KEEPALIVE int ob_js_sampler_new(float temp, int top_k, float top_p, float min_p, float rep, int last_n,
                                           float pres, float freq, double seed, int n_vocab, ob_sampler **out) {
    ob_sampling p = {temp, top_k, top_p, min_p, rep, last_n, pres, freq, (uint64_t)(seed >= 0 ? seed : 0)};
    return ob_sampler_new(&p, n_vocab, out);
}

/* Sampling settings of a context's device sampler (the benchmark's greedy steps). */
EMSCRIPTEN_KEEPALIVE int ob_js_set_sampling(ob_context *c, const double *v, unsigned given, int *on_device) {
    ob_sampling p = sampling_from(v, given);
    return ob_context_set_sampling(c, &p, on_device);
}

/* ob_gen_begin with the sampling settings as above, n_stop NUL-terminated stop strings and the
 * constraint (GBNF text, a JSON Schema, or both NULL). */
EMSCRIPTEN_KEEPALIVE int ob_js_gen_begin(ob_context *c, const ob_token *prompt, int n_prompt, int max_tokens,
                                         const char *const *stop, int n_stop, const double *v, unsigned given,
                                         const char *grammar, const char *json_schema, ob_gen **out) {
    const char *stops[65];
    if (n_stop < 0 || n_stop > 64) return OB_ERR_ARG;
    for (int i = 0; i < n_stop; i++) stops[i] = stop[i];
    stops[n_stop] = NULL;
    ob_generate_params p;
    memset(&p, 0, sizeof p);
    p.sampling = sampling_from(v, given);
    p.max_tokens = max_tokens;
    p.stop = stops;
    p.grammar = grammar;
    p.json_schema = json_schema;
    return ob_gen_begin(c, prompt, n_prompt < 0 ? 0 : (size_t)n_prompt, &p, out);
}

/* ob_gen_result as doubles: n_prompt, n_reused, n_generated, finish, t_prompt_ms, t_gen_ms. */
EMSCRIPTEN_KEEPALIVE void ob_js_gen_result(const ob_gen *g, double *out) {
    ob_generate_result r;
    ob_gen_result(g, &r);
    double v[6] = {r.n_prompt, r.n_reused, r.n_generated, r.finish, r.t_prompt_ms, r.t_gen_ms};
    for (int k = 0; k < 6; k++) out[k] = v[k];
}

/* Fields of ob_model_info as an int array: n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim,
 * n_ff, n_ctx_train, tied, bos, eos, eot. Strings through ob_js_model_str. */
EMSCRIPTEN_KEEPALIVE void ob_js_model_info(const ob_model *m, int *out) {
    ob_model_info i;
    ob_model_get_info(m, &i);
    int v[12] = {i.n_vocab, i.n_embd, i.n_layer, i.n_head, i.n_head_kv, i.head_dim, i.n_ff, i.n_ctx_train,
                 i.tied_embeddings, i.bos, i.eos, i.eot};
    for (int k = 0; k < 12; k++) out[k] = v[k];
}

/* 0: arch, 1: name, 2: backend. */
EMSCRIPTEN_KEEPALIVE const char *ob_js_model_str(const ob_model *m, int which) {
    ob_model_info i;
    ob_model_get_info(m, &i);
    return which == 0 ? i.arch : which == 1 ? i.name : i.backend;
}

/* out[0]: threads the model loaded last got (caller included); out[1]: the most threads that
 * ran parts of one job since the load or the last reset. Lets the page show what it runs on, and
 * tests see that threads were really used. */
EMSCRIPTEN_KEEPALIVE void ob_js_thread_stats(int reset, int *out) {
    int figures[2];
    tp_stats(figures, reset);
    out[0] = js_threads;
    out[1] = figures[1];
}

#else
typedef int ob_wasm_api_unused;
#endif
