/* backend.h — the seam between the core and compute backends.
 *
 * A backend is a table of functions chosen at run time. The core (api.c) only sees this table;
 * it never includes a particular backend's header. CPU backends share the generic forward pass in
 * forward.c and differ in their kernel tables (scalar reference, SIMD); the WebGPU backend drives
 * its own pass. Every backend takes the same steps in the same order as the scalar reference.
 */
#ifndef OB_BACKEND_H
#define OB_BACKEND_H

#include "model.h"

typedef struct ob_backend {
    const char *name;
    /* 1 if it reads weights from the file itself (streams them to its own memory), so it can run
     * a model of which only the header is in memory (ob_model_load_partial). */
    int streams_weights;
    /* 1 if it can run on this machine. */
    int (*supported)(void);
    /* Per-model state (repacked weights, thread pool, GPU buffers). */
    ob_status (*model_init)(const struct ob_model *m, int n_threads, void **mstate);
    void (*model_free)(void *mstate);
    /* Per-context state: KV cache for n_ctx positions and scratch buffers. */
    ob_status (*ctx_init)(void *mstate, int n_ctx, void **cstate);
    void (*ctx_free)(void *cstate);
    /* Runs tokens[0..n) at positions pos..pos+n-1 (pos + n <= n_ctx, checked by the core).
     * Writes logits for all n positions ([n][n_vocab]) when all_logits, else only the last
     * position's ([n_vocab]). Entries of the KV cache at positions >= pos are overwritten. */
    ob_status (*forward)(void *cstate, const ob_token *tokens, int n, int pos, float *logits,
                         int all_logits);
} ob_backend;

/* All backends compiled in, best first; NULL-terminated. */
extern const ob_backend *const ob_backends[];

#endif
