/* backend.h — the seam between the core and compute backends.
 *
 * A backend is a table of functions chosen at run time. The core (api.c) only sees this table;
 * it never includes a particular backend's header. CPU backends share the generic forward pass in
 * forward.c and differ in their kernel tables (scalar reference, SIMD); the WebGPU backend drives
 * its own pass. Every backend takes the same steps in the same order as the scalar reference.
 *
 * Synchronous backends (CPU) fill in `forward`. An asynchronous backend (WebGPU: its device answers
 * later, through the host's event loop, and wasm cannot block on it) leaves `forward` NULL and fills
 * in `step_begin` and `set_sampling` instead: a step is planned here and carried out by the host,
 * which hands the step's result back to the core (ob_step_end in api.c) in the order the steps
 * began. Any call on such a backend's model or context (model_init, ctx_init/free, step_begin)
 * may leave work for the host; how that work reaches the host is the backend's own business (the
 * WebGPU backend's command list, replayed by web/gpu.mjs).
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
    /* Optional: what the model runs with inside the backend (the CPU kernels' instruction set). */
    const char *(*detail)(const void *mstate);
    /* Per-model state (repacked weights, thread pool, GPU buffers). */
    ob_status (*model_init)(const struct ob_model *m, int n_threads, void **mstate);
    void (*model_free)(void *mstate);
    /* Per-context state: KV cache for p->n_ctx positions (resolved by the core) and scratch
     * buffers; p's other fields are hints a backend may ignore. */
    ob_status (*ctx_init)(void *mstate, const ob_context_params *p, void **cstate);
    void (*ctx_free)(void *cstate);
    /* Runs tokens[0..n) at positions pos..pos+n-1 (pos + n <= n_ctx, checked by the core).
     * Writes logits for all n positions ([n][n_vocab]) when all_logits, else only the last
     * position's ([n_vocab]). Entries of the KV cache at positions >= pos are overwritten. */
    ob_status (*forward)(void *cstate, const ob_token *tokens, int n, int pos, float *logits,
                         int all_logits);
    /* Optional (NULL: no embeddings): runs tokens like forward, but writes the final hidden state
     * of every position, after the output norm and before the output head, [n][n_embd]. */
    ob_status (*hidden)(void *cstate, const ob_token *tokens, int n, int pos, float *hidden);

    /* ---- asynchronous backends only (forward == NULL) ---- */
    /* Plans the evaluation of tokens[0..*taken) at positions pos.. (*taken <= n: the backend may
     * take fewer, e.g. one prompt chunk; pos + n <= n_ctx and token ids are checked by the core)
     * and leaves the work for the host. flags are OB_STEP_* (onebit.h); with OB_STEP_FEED tokens is
     * NULL and n is 1: the input is the token the device sampled in the step before. The step's
     * result, which the host hands back, is: with OB_STEP_ALL the logits of all *taken positions;
     * else, only when the step takes all n tokens, the last position's logits (OB_STEP_LOGITS)
     * followed by the sampled token as an int32 (OB_STEP_SAMPLE). */
    ob_status (*step_begin)(void *cstate, const ob_token *tokens, int n, int pos, int flags, int *taken);
    /* Sampling settings of OB_STEP_SAMPLE (the seed restarts the random stream). *on_device = 0
     * when the device cannot sample with these settings: the core then asks for logits instead. */
    ob_status (*set_sampling)(void *cstate, const ob_sampling *p, int *on_device);
} ob_backend;

/* All backends compiled in, best first; NULL-terminated. */
extern const ob_backend *const ob_backends[];

#endif
