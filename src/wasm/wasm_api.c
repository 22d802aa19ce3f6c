/* wasm_api.c — small JS-facing wrappers over the public API for the WebAssembly build.
 *
 * JS cannot conveniently build C structs, so these take scalars and fill ob_model_params,
 * ob_context_params and ob_sampling themselves (web/engine.mjs calls them for its CPU path and
 * for host-side sampling). They add no behaviour of their own. Compiled for WebAssembly only,
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

EMSCRIPTEN_KEEPALIVE int ob_js_context_new(ob_model *m, int n_ctx, ob_context **out) {
    ob_context_params p = ob_context_default_params();
    p.n_ctx = n_ctx;
    return ob_context_new(m, &p, out);
}

EMSCRIPTEN_KEEPALIVE int ob_js_sampler_new(float temp, int top_k, float top_p, float min_p, float rep, int last_n,
                                           float pres, float freq, double seed, int n_vocab, ob_sampler **out) {
    ob_sampling p = {temp, top_k, top_p, min_p, rep, last_n, pres, freq, (uint64_t)(seed >= 0 ? seed : 0)};
    return ob_sampler_new(&p, n_vocab, out);
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
