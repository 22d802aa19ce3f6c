/* onebit.h — the public API of the onebit engine.
 *
 * onebit runs low-bit large language models (GGUF: Q1_0 and the other common weight types; the
 * Qwen3, Qwen2, Llama, Gemma, Phi-2 and BitNet architectures) on the user's own device. This
 * header is all an embedder needs: load a model, open a context (KV cache + run state), tokenize,
 * evaluate, sample, render chat prompts.
 *
 * Conventions:
 *  - Every fallible call returns an ob_status (0 = OB_OK). On failure a human-readable message is
 *    available from ob_last_error() on the same thread until the next failing call.
 *  - The library never exits or aborts on bad input: hostile model files, invalid UTF-8 and prompts
 *    longer than the context all come back as error codes.
 *  - Objects are not internally synchronised: use one ob_context per thread. An ob_model is
 *    immutable after loading and may be shared by several contexts.
 */
#ifndef ONEBIT_H
#define ONEBIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ONEBIT_VERSION "0.1.0"

typedef enum ob_status {
    OB_OK = 0,
    OB_ERR_ARG = 1,          /* invalid argument from the caller */
    OB_ERR_IO = 2,           /* file could not be opened, read or mapped */
    OB_ERR_FORMAT = 3,       /* malformed or inconsistent model file */
    OB_ERR_UNSUPPORTED = 4,  /* well-formed, but an architecture/type/feature we do not run */
    OB_ERR_NOMEM = 5,        /* out of memory */
    OB_ERR_CONTEXT = 6,      /* tokens do not fit in the context window */
    OB_ERR_BACKEND = 7,      /* compute backend failure (e.g. GPU device lost) */
    OB_ERR_CANCELLED = 8     /* stopped by the caller's callback */
} ob_status;

typedef int32_t ob_token;

typedef struct ob_model ob_model;     /* weights, hyperparameters, tokenizer: immutable */
typedef struct ob_context ob_context; /* KV cache, activations, logits: one per conversation */

/* Message of the most recent failure on this thread ("" if none). */
const char *ob_last_error(void);
/* Short name of a status code, e.g. "format error". */
const char *ob_status_str(ob_status s);

/* ---- models --------------------------------------------------------------------------------- */

/* Called while a model loads; fraction in [0,1]. Return non-zero to cancel (OB_ERR_CANCELLED). */
typedef int (*ob_progress_fn)(float fraction, void *user);

typedef struct ob_model_params {
    const char *backend;      /* "scalar", "cpu" (SIMD + threads), ... ; NULL = best available */
    int n_threads;            /* 0 = number of physical cores */
    ob_progress_fn progress;  /* optional */
    void *progress_user;
    int vocab_only;           /* 1: tokenizer and metadata only, no weights and no backend (works on
                               * vocabulary-only GGUF files); only the tokenizer, metadata, info
                               * and chat calls may be used with such a model */
} ob_model_params;

ob_model_params ob_model_default_params(void);

/* Memory-maps a GGUF file. */
ob_status ob_model_load_file(const char *path, const ob_model_params *params, ob_model **out);
/* Uses a caller-owned buffer holding the whole file; it must outlive the model. */
ob_status ob_model_load_memory(const void *data, size_t size, const ob_model_params *params,
                               ob_model **out);
void ob_model_free(ob_model *model);

typedef struct ob_model_info {
    const char *arch;        /* general.architecture: "qwen3", "llama", "qwen2", ... */
    const char *name;        /* general.name or "" */
    const char *backend;     /* name of the backend that runs it */
    const char *isa;         /* "cpu" backend: its kernels' instruction set ("avx512", "avx2",
                              * "neon", "wasm", "generic"); "" for the others */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    float rope_theta, norm_eps;
    int tied_embeddings;
    uint64_t n_params;       /* number of weights in all tensors */
    uint64_t file_size;      /* bytes */
    uint64_t weight_bytes;   /* bytes of tensor data */
    ob_token bos, eos, eot;  /* -1 when absent; eot = end of turn (<|im_end|>) */
    int n_threads;           /* threads the backend was given (ob_model_params.n_threads, or the
                              * number of physical cores for 0) */
} ob_model_info;

void ob_model_get_info(const ob_model *model, ob_model_info *out);

/* One line on how the model is run: its family and the flags that shape its layers, e.g.
 * "Qwen3: RMSNorm, gated SiLU, sequential block, QK-norm, RoPE NeoX 128/128 dims, tied output". */
const char *ob_model_describe(const ob_model *model);
/* The end-of-generation tokens (the file's eos/eot/eom ids and its end-of-turn special tokens). */
const ob_token *ob_model_eog(const ob_model *model, int *n);
/* The model's Jinja chat template (tokenizer.chat_template), or NULL when it has none. */
const char *ob_model_chat_template(const ob_model *model);

/* GGUF metadata lookup, rendered as text ("" for arrays of more than a few values). Returns NULL
 * when the key is absent. The string lives as long as the model. */
const char *ob_model_meta(const ob_model *model, const char *key);

/* ---- tokenizer ------------------------------------------------------------------------------ */

/* Encodes UTF-8 text (invalid bytes are kept as byte tokens) with the tokenizer the file names
 * (tokenizer.ggml.model "gpt2": byte-level BPE with the pre-tokenizer of tokenizer.ggml.pre;
 * "llama": SentencePiece), giving llama.cpp's ids for llama_tokenize(add_special = false). With
 * parse_special, the text of added/special tokens such as "<|im_start|>" becomes their id; without
 * it only control tokens' text (<|im_start|> ...) is ordinary, while user-defined tokens (<think>,
 * <tool_call>) still match, like Hugging Face's split_special_tokens=True. Text is NFC-normalised
 * for the Qwen pre-tokenizers as their Hugging Face tokenizers do. Never adds BOS/EOS: see
 * ob_tokenize_prompt. Writes at most cap ids into out (may be NULL when cap is 0) and the full
 * count to *n_out: call again with a larger buffer when *n_out > cap. */
ob_status ob_tokenize(const ob_model *model, const char *text, size_t len, int parse_special,
                      ob_token *out, size_t cap, size_t *n_out);

/* ob_tokenize for a prompt that starts a context (llama.cpp's add_special = true): the model's BOS
 * first when the file asks for it (tokenizer.ggml.add_bos_token; when absent, yes for
 * SentencePiece and Llama 3 vocabularies, as llama.cpp), unless the text already begins with that
 * token (a chat template that writes it), and its EOS last when add_eos_token. Same arguments. */
ob_status ob_tokenize_prompt(const ob_model *model, const char *text, size_t len, int parse_special,
                             ob_token *out, size_t cap, size_t *n_out);

/* The raw bytes a token stands for (not NUL-terminated). Returns OB_ERR_ARG for a bad id. */
ob_status ob_token_bytes(const ob_model *model, ob_token tok, const char **bytes, size_t *len);

/* Is tok an end-of-generation token? The set comes from the file: its eos/eot/eom ids and its
 * special tokens that end a turn (<|im_end|>, <|eot_id|>, <end_of_turn>, <|endoftext|> ...). */
int ob_token_is_eog(const ob_model *model, ob_token tok);

/* Streaming detokenizer: turns a stream of tokens into complete UTF-8 text, never emitting half a
 * character; bytes that can never form a valid character are emitted as U+FFFD. */
typedef struct ob_detok { unsigned char pend[4]; int n_pend; } ob_detok;
void ob_detok_init(ob_detok *d);
/* Appends the text produced by tok to out (capacity cap, at least 16 + longest token); returns the
 * number of bytes written, or -1 for a bad token id. */
int ob_detok_push(const ob_model *model, ob_detok *d, ob_token tok, char *out, size_t cap);
/* Flushes what is pending at end of stream (as U+FFFD). Returns bytes written. */
int ob_detok_flush(ob_detok *d, char *out, size_t cap);

/* ---- chat ----------------------------------------------------------------------------------- */

typedef struct ob_chat_message {
    const char *role;     /* "system", "user", "assistant" */
    const char *content;
} ob_chat_message;

/* Renders messages with the model's own chat template (tokenizer.chat_template, a Jinja template
 * run by onebit's interpreter with the variables Hugging Face's apply_chat_template passes).
 * Roles: system, user, assistant, tool. enable_thinking: 1 or 0 sets the template variable
 * (Qwen3's enable_thinking), -1 leaves it undefined (the template's default). *out is malloc'ed;
 * free() it. OB_ERR_UNSUPPORTED when the model has no template (use plain completion), OB_ERR_FORMAT
 * when its template does not parse, OB_ERR_ARG when rendering fails (the template's own
 * raise_exception message, e.g. an unsupported role order). */
ob_status ob_chat_render(const ob_model *model, const ob_chat_message *msgs, size_t n_msgs,
                         int add_generation_prompt, int enable_thinking, char **out);
/* The same with messages (and optionally tools) as JSON arrays in the OpenAI shape, passed to the
 * template as they are: assistant tool_calls, tool results, reasoning_content. tools_json may be
 * NULL. */
ob_status ob_chat_render_json(const ob_model *model, const char *messages_json, const char *tools_json,
                              int add_generation_prompt, int enable_thinking, char **out);

/* ---- contexts and evaluation ---------------------------------------------------------------- */

typedef struct ob_context_params {
    int n_ctx;          /* 0 = min(model's training context, 4096) */
    int kv_f16;         /* GPU backends: keep the KV cache in f16 (CPU backends choose their own) */
    int n_batch;        /* GPU backends: at most this many prompt tokens a step (0 = as many as fit) */
} ob_context_params;

ob_context_params ob_context_default_params(void);
ob_status ob_context_new(ob_model *model, const ob_context_params *params, ob_context **out);
void ob_context_free(ob_context *ctx);

int ob_context_n_ctx(const ob_context *ctx);
/* Number of tokens already in the KV cache. */
int ob_context_n_past(const ob_context *ctx);
/* Keeps the first n tokens of the cache and forgets the rest (n <= n_past). */
ob_status ob_context_truncate(ob_context *ctx, int n);
/* Tokens currently in the cache (n_past of them), for prefix reuse. */
const ob_token *ob_context_tokens(const ob_context *ctx);

/* Appends n tokens to the cache and computes logits. With all_logits, logits for every one of the
 * n positions are kept (n * n_vocab floats), else only the last position's. Returns OB_ERR_CONTEXT
 * (and changes nothing) when n_past + n would exceed n_ctx. */
ob_status ob_eval(ob_context *ctx, const ob_token *tokens, int n, int all_logits);
/* Logits of position i of the last ob_eval (i = -1: last position). NULL if not kept. */
const float *ob_logits(const ob_context *ctx, int i);

/* ---- embeddings ----------------------------------------------------------------------------- */

/* How an embedding model pools its per-token hidden states (the GGUF key <arch>.pooling_type, in
 * llama.cpp's numbering). */
typedef enum {
    OB_POOLING_NONE = 0, /* no pooling type: a generative model (no embeddings) */
    OB_POOLING_MEAN = 1, /* mean of every position */
    OB_POOLING_CLS = 2,  /* the first position */
    OB_POOLING_LAST = 3  /* the last position (Qwen3-Embedding) */
} ob_pooling;

/* The model's pooling type; OB_POOLING_NONE when the file has none or one onebit does not run
 * (llama.cpp's rank pooling, which needs a classifier head). */
ob_pooling ob_model_pooling(const ob_model *model);
/* The embedding of tokens[0..n) into out[n_embd]: the context's cache is reset, the tokens are
 * evaluated from position 0, the final hidden states (after the output norm, before the output
 * head) are pooled as the model says and, with normalize, scaled to unit Euclidean length (as
 * llama.cpp's server does). OB_ERR_UNSUPPORTED for a model without pooling or a backend without
 * hidden states (the asynchronous WebGPU one); OB_ERR_CONTEXT when n > n_ctx. */
ob_status ob_embed(ob_context *ctx, const ob_token *tokens, int n, int normalize, float *out);

/* ---- sampling ------------------------------------------------------------------------------- */

typedef struct ob_sampling {
    float temperature;       /* <= 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off; divides positive logits, multiplies negative ones */
    int repeat_last_n;       /* window for the penalties; 0: off, -1: whole context */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    uint64_t seed;
} ob_sampling;

ob_sampling ob_sampling_default(void);  /* temperature 0.7, top_k 20, top_p 0.8, min_p 0, seed 0 */

/* The one validation of sampling parameters, shared by the CLI, the server and the JS engine:
 * OB_ERR_ARG, with a message naming the parameter and its valid range, for a value out of range.
 * Ranges: temperature 0..2, top_k -1..2^30, top_p 0..1, min_p 0..1, repeat_penalty 0.01..100,
 * repeat_last_n -1..2^24, presence_penalty and frequency_penalty -2..2. */
ob_status ob_sampling_check(const ob_sampling *s);
/* The same for a context size (ob_context_params.n_ctx: 0..2^22, 0 = default) and a token limit
 * (ob_generate_params.max_tokens: 0..2^30, 0 = until the context is full). */
ob_status ob_limits_check(int n_ctx, int max_tokens);

typedef struct ob_sampler ob_sampler;
ob_status ob_sampler_new(const ob_sampling *params, int n_vocab, ob_sampler **out);
void ob_sampler_free(ob_sampler *s);
/* Picks the next token from logits (not modified) given the recent history of tokens. */
ob_token ob_sampler_sample(ob_sampler *s, const float *logits, const ob_token *history,
                           size_t n_history);

/* ---- asynchronous backends (WebGPU) ----------------------------------------------------------
 * A GPU driven from JavaScript answers later, through the host's event loop. On such a context
 * ob_eval returns OB_ERR_UNSUPPORTED; the host instead begins steps (each leaves work for it to run:
 * web/gpu.mjs replays the WebGPU backend's command list) and hands every step's result back, in the
 * order the steps began. The generation calls below do all of this for it (ob_gen_next says when
 * to run work and when to wait). */

/* 1 if the context's backend is asynchronous. */
int ob_context_async(const ob_context *ctx);

enum {
    OB_STEP_FEED = 1,   /* the input is the token the device sampled in the step before (n = 1) */
    OB_STEP_LOGITS = 2, /* the result holds the last position's logits */
    OB_STEP_ALL = 4,    /* ... every position's (steps are shorter then) */
    OB_STEP_SAMPLE = 8  /* the device samples (ob_context_set_sampling); the result ends with its id */
};

/* Begins a step over up to n tokens at position n_past; *taken says how many it took (call again
 * for the rest), and n_past grows by that much at once. LOGITS and SAMPLE apply to the step that
 * takes the last of the n tokens. With OB_STEP_FEED, tokens may be NULL: the cache records the
 * device's token when the step before it ends. Returns OB_ERR_CONTEXT (and changes nothing) when
 * n_past + n would exceed n_ctx. */
ob_status ob_step_begin(ob_context *ctx, const ob_token *tokens, int n, int flags, int *taken);
/* Hands back the result of the oldest step not yet ended: [rows][n_vocab] float logits (rows = the
 * step's tokens with OB_STEP_ALL, 1 with OB_STEP_LOGITS, else 0), then the sampled token as an
 * int32 with OB_STEP_SAMPLE; len must match. The logits become ob_logits'. *sampled (may be NULL):
 * the device's token, or -1. */
ob_status ob_step_end(ob_context *ctx, const void *result, size_t len, ob_token *sampled);
/* Sampling settings of OB_STEP_SAMPLE. *on_device = 0 when the device cannot sample with them
 * (and always on synchronous backends): ask for logits and use an ob_sampler then. */
ob_status ob_context_set_sampling(ob_context *ctx, const ob_sampling *params, int *on_device);

/* ---- generation (convenience over the calls above) ------------------------------------------ */

/* Receives each piece of generated text; return non-zero to stop (not an error). */
typedef int (*ob_text_fn)(const char *text, size_t len, void *user);

typedef struct ob_generate_params {
    ob_sampling sampling;
    int max_tokens;           /* <= 0: until the context is full */
    const char *const *stop;  /* stop strings (not emitted), NULL-terminated list or NULL */
    ob_text_fn on_text;
    void *user;
    const char *grammar;      /* GBNF text (llama.cpp's format, start rule "root") the output must
                               * match, or NULL; see ob_grammar_check */
    const char *json_schema;  /* a JSON Schema the output must be an instance of, or NULL (not with
                               * grammar); see ob_json_schema_to_grammar. "{\"type\":\"object\"}"
                               * is any JSON object (response_format json_object) */
} ob_generate_params;

/* Grammar-constrained output. Tokens that cannot continue the grammar are masked before
 * sampling (greedy and sampled alike, on every backend: an asynchronous one then hands the logits
 * back instead of sampling on the device); end-of-generation tokens are allowed only where the
 * grammar can end, and when it can only end and the model has no end token, the generation stops
 * there (OB_FINISH_STOP). Stop strings and max_tokens still apply, so the text can be cut short.
 *
 * ob_grammar_check: OB_OK, or OB_ERR_ARG with "grammar: line L, column C: what" in ob_last_error.
 * ob_json_schema_to_grammar: the GBNF text for a JSON Schema (*gbnf malloc'ed; free() it);
 * OB_ERR_ARG for malformed JSON (with its byte offset) or a malformed schema, OB_ERR_UNSUPPORTED
 * for a keyword that would constrain values and cannot be enforced (pattern, maximum ...), the
 * message naming it and its place in the schema. Supported: type, properties, required,
 * additionalProperties, enum, const, items, prefixItems, minItems, maxItems, anyOf, oneOf, allOf
 * of one schema, $ref to #/$defs (recursive too), minLength, maxLength, formats date, time,
 * date-time, uuid, email; minimum 0 (and 1 for integers). */
ob_status ob_grammar_check(const char *gbnf);
ob_status ob_json_schema_to_grammar(const char *schema_json, char **gbnf);

/* Why a generation ended (ob_generate_result.finish). */
enum { OB_FINISH_STOP = 0, OB_FINISH_LENGTH = 1, OB_FINISH_CONTEXT = 2, OB_FINISH_CALLBACK = 3 };

typedef struct ob_generate_result {
    int n_prompt;             /* prompt tokens evaluated (after reusing the cached prefix) */
    int n_reused;             /* prompt tokens found already in the KV cache */
    int n_generated;
    int finish;               /* OB_FINISH_*: 0 = end-of-generation token or stop string,
                               * 1 = max_tokens, 2 = context full, 3 = callback / ob_gen_cancel */
    double t_prompt_ms, t_gen_ms;
    double t_grammar_ms;      /* of t_gen_ms: masking and advancing the grammar (0 without one) */
} ob_generate_result;

/* Qwen3 in non-thinking mode starts its answer with an empty thinking block, "<think>\n\n</think>\n\n".
 * ob_think_strip passes generated text on to fn without that block when the text starts with it,
 * and unchanged otherwise. Use ob_think_strip_push as the on_text callback with user = the filter,
 * and call ob_think_strip_flush after generation (it passes on a partial match held back). Both
 * return what fn returned. */
typedef struct ob_think_strip {
    size_t matched;           /* bytes of the block seen so far */
    int done;                 /* decided: the block was dropped, or the text does not start with it */
    ob_text_fn fn;
    void *user;
} ob_think_strip;
void ob_think_strip_init(ob_think_strip *f, ob_text_fn fn, void *user);
int ob_think_strip_push(const char *text, size_t len, void *filter);
int ob_think_strip_flush(ob_think_strip *f);

/* Evaluates prompt tokens (reusing the longest common prefix already in the cache) and samples
 * until an end-of-generation token, a stop string, max_tokens, the end of the context, or the
 * callback says stop. Generated tokens stay in the cache so a chat can continue: an end token
 * enters it, a token that completes a stop string or that the callback stopped at does not.
 * Synchronous backends only; a thin driver of the ob_gen calls below. */
ob_status ob_generate(ob_context *ctx, const ob_token *prompt, size_t n_prompt,
                      const ob_generate_params *params, ob_generate_result *result);

/* ---- generation, step by step (every front end's one loop) ----------------------------------
 *
 *   ob_gen_begin(ctx, prompt, n, &params, &g);
 *   for (;;) {
 *       ob_gen_next(g, &ev);                   // error: stop, ob_gen_free
 *       if (ev == OB_GEN_SUBMIT) run the backend's work, don't wait;
 *       if (ev == OB_GEN_AWAIT)  wait for the oldest work's result, ob_gen_complete(g, bytes, len);
 *       if (ev == OB_GEN_TOKEN || ev == OB_GEN_DONE) emit ob_gen_text(g, &len) (may be empty);
 *       if (ev == OB_GEN_DONE) break;          // ob_gen_result(g, &r)
 *   }
 *   ob_gen_free(g);
 *
 * The rules live here, once: prefix reuse, the prompt-fits check, max_tokens (<= 0: until the
 * context is full), end-of-generation tokens (ob_token_is_eog), stop strings (held back while a
 * partial match is pending, never emitted), whole UTF-8 characters only, the finish reason, and
 * which generated tokens stay in the cache. On a synchronous backend ob_gen_next evaluates and
 * samples itself (only TOKEN and DONE happen); on an asynchronous one it keeps one decode step in
 * flight: the step that consumes a token is begun before that token's text is worked out. */
typedef struct ob_gen ob_gen;
typedef enum ob_gen_event {
    OB_GEN_TOKEN = 1,  /* a token was generated (ob_gen_token); ob_gen_text is its text to emit */
    OB_GEN_DONE = 2,   /* finished; ob_gen_text is the rest held back, ob_gen_result the figures */
    OB_GEN_SUBMIT = 3, /* asynchronous backends: run the work just begun, then call ob_gen_next */
    OB_GEN_AWAIT = 4   /* asynchronous backends: hand the oldest work's result to ob_gen_complete */
} ob_gen_event;

/* Checks the parameters (the one place they enter), reuses the cached prefix and prepares the
 * sampler. params->on_text / user are not used (ob_generate's); stop strings are copied. */
ob_status ob_gen_begin(ob_context *ctx, const ob_token *prompt, size_t n_prompt,
                       const ob_generate_params *params, ob_gen **out);
ob_status ob_gen_next(ob_gen *g, ob_gen_event *ev);
/* The result of the oldest work not yet completed (see ob_step_end for its layout). */
ob_status ob_gen_complete(ob_gen *g, const void *result, size_t len);
/* Text of the last TOKEN or DONE event (not NUL-terminated; valid until the next call). */
const char *ob_gen_text(const ob_gen *g, size_t *len);
ob_token ob_gen_token(const ob_gen *g);
/* Stops at the last token (as ob_generate's callback does): that token leaves the cache unless it
 * ended the generation itself; the next ob_gen_next calls finish with OB_FINISH_CALLBACK. */
void ob_gen_cancel(ob_gen *g);
void ob_gen_result(const ob_gen *g, ob_generate_result *out);
/* Frees g. A generation freed before DONE forgets its outstanding work: the host must not hand
 * back those results. */
void ob_gen_free(ob_gen *g);

#ifdef __cplusplus
}
#endif
#endif
