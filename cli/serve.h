/* serve.h — the pieces of `onebit serve`, an OpenAI-compatible HTTP server, and their seams.
 *
 *   serve.c         the subcommand: options, model, start-up, signals, orderly shutdown
 *   serve_sched.c   jobs, the FIFO queue and the worker slots (one ob_context and thread each)
 *   serve_api.c     the OpenAI layer: request JSON -> job, job -> response/chunk JSON, errors
 *   serve_http.c    libmicrohttpd glue: routing, bodies, auth, SSE streaming, /health
 *   serve_static.c  the web app's static files, confined to one folder
 *   serve_tools.c   a chat answer's parts: reasoning, content and tool calls, as it streams
 *
 * This header is private to those files; it is not part of the library API. Generation runs only
 * on the scheduler's worker threads; the HTTP threads parse, tokenize, wait and write.
 */
#ifndef OB_SERVE_H
#define OB_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "onebit.h"

#define SERVE_MAX_STOP 16        /* stop strings per request */
#define SERVE_MAX_STOP_LEN 256    /* bytes per stop string */

/* ---- jobs and the scheduler (serve_sched.c) ------------------------------------------------- */

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

/* One generation request. Shared by the HTTP thread that made it and the worker that runs it,
 * reference-counted; the fields marked "fixed" are written before sched_submit and then only
 * read, the rest are under mu. */
typedef struct job {
    /* fixed */
    ob_token *prompt;                      /* [n_prompt]; NULL for embeddings */
    size_t n_prompt;                       /* embeddings: the tokens of all inputs */
    ob_sampling sampling;
    int max_tokens;                        /* >= 1 */
    int strip_think;                       /* chat: Qwen3's empty think block is not content */
    int n_embed;                           /* > 0: embeddings of n_embed inputs, no generation */
    ob_token **embed_in;                   /* [n_embed] token lists (prompt is unused) */
    size_t *embed_len;                     /* [n_embed] */
    int n_embd;                            /* floats per embedding */
    float *embedding;                      /* [n_embed][n_embd], filled by the worker */
    char *stop[SERVE_MAX_STOP + 1];        /* owned, NULL-terminated */
    char *grammar, *json_schema;           /* owned: constrained output (serve_grammar.c), or NULL */
    double deadline_ms;                    /* ob-clock time after which generation stops */

    atomic_int cancel;                     /* set by the HTTP side: client gone or shutdown */

    pthread_mutex_t mu;
    pthread_cond_t cv;                     /* signalled on new text and on completion */
    job_state state;
    char *text;                            /* [text_len] all text generated so far */
    size_t text_len, text_cap;
    int oom;                               /* text could not be stored: the job failed */
    ob_status status;                      /* when done: OB_OK or the failure */
    char error[256];                       /* when status != OB_OK */
    ob_generate_result result;             /* when done */
    int timed_out;                         /* stopped by the deadline */
    int refs;

    struct job *next;                      /* queue link (scheduler lock) */
    double t_submit_ms;
} job;

/* Monotonic clock in milliseconds (deadlines, timings). */
double sched_now_ms(void);

job *job_new(void);
void job_retain(job *j);
void job_release(job *j);
/* Waits until the job has text beyond *seen bytes or is done, at most timeout_ms. Returns 1 when
 * something changed, 0 on timeout. Caller must not hold mu. */
int job_wait(job *j, size_t seen, int timeout_ms);

typedef struct sched sched;

typedef struct sched_stats {
    int slots, slots_busy, queued;
    uint64_t requests, completed, cancelled, failed, rejected;
    uint64_t prompt_tokens, reused_tokens, generated_tokens;
} sched_stats;

/* Creates n_slots contexts of n_ctx tokens (0 = model default) and their worker threads. */
ob_status sched_new(ob_model *m, int n_slots, int n_ctx, int max_queue, sched **out);
int sched_n_ctx(const sched *s);
/* Queues a job (takes a reference). Returns 0, or -1 when the queue is full or shutting down. */
int sched_submit(sched *s, job *j);
/* Stops a job: a queued one leaves the queue at once and is done (OB_ERR_CANCELLED), a running
 * one stops at its next piece of text. timed_out records that the deadline, not the client, ended
 * it. No-op for a finished job. */
void sched_cancel(sched *s, job *j, int timed_out);
void sched_get_stats(sched *s, sched_stats *out);
/* Cancels everything queued or running and joins the workers; submit fails afterwards. */
void sched_shutdown(sched *s);
void sched_free(sched *s);

/* ---- the parts of a chat answer (serve_tools.c) --------------------------------------------- */

/* How the chat template has the model write a tool call. */
typedef enum {
    TOOLFMT_NONE,    /* the template shows no tool-call syntax onebit knows */
    TOOLFMT_HERMES,  /* Qwen 2.5/3, Hermes: <tool_call>{"name": N, "arguments": {...}}</tool_call> */
    TOOLFMT_LLAMA3   /* Llama 3.1+: the answer is {"name": N, "parameters": {...}} (<|python_tag|> first) */
} tool_format;

/* The syntax a template's source text uses (its own tool-call examples). */
tool_format tool_format_of(const char *template_source);

#define RP_MAX_CALLS 64

typedef struct sbuf {
    char *p;                  /* NUL-terminated at len */
    size_t len, cap;
    int oom;
} sbuf;

typedef enum { RP_CONTENT, RP_REASONING, RP_CALL_BEGIN, RP_CALL_ARGS } rp_kind;

/* One event of the stream: a piece of content or reasoning, a call's start (its name and id are in
 * calls[call]), or a piece of a call's arguments; its text is ev_text[off..off+len). */
typedef struct rp_event {
    rp_kind kind;
    int call;
    size_t off, len;
} rp_event;

typedef struct rp_call {
    char id[32];              /* call_ + 24 letters and digits */
    sbuf name, args;          /* args: the arguments' JSON text as the model wrote it */
} rp_call;

/* Sorts generated text into content, reasoning and tool calls (see serve_tools.c). */
typedef struct reply_parser {
    int split_think;          /* take a leading <think>...</think> out as reasoning */
    tool_format fmt;          /* TOOLFMT_NONE: no tool calls are looked for */
    int events_on;            /* keep the event queue (streaming) */
    uint64_t seed;            /* for the calls' ids */
    int state, skip_ws, content_seen;
    int depth, in_str, esc, started; /* scanning a call's arguments */
    sbuf pend;                /* text not yet sorted */
    sbuf call_raw;            /* the current call's text so far, in case it is not one */
    /* the whole answer so far */
    sbuf content, reasoning;
    rp_call calls[RP_MAX_CALLS];
    int n_calls;
    /* events since the last rp_events_clear */
    rp_event *ev;
    size_t n_ev, cap_ev;
    sbuf ev_text;
    int oom;                  /* something could not be stored: the answer is incomplete */
} reply_parser;

reply_parser *rp_new(int reasoning, tool_format fmt, uint64_t seed, int events);
void rp_free(reply_parser *p);
/* Takes the next piece of generated text (any split, even inside a UTF-8 character or a marker). */
void rp_feed(reply_parser *p, const char *text, size_t len);
/* The text has ended: whatever was held back is sorted now. */
void rp_finish(reply_parser *p);
void rp_events_clear(reply_parser *p);

/* ---- the OpenAI layer (serve_api.c) --------------------------------------------------------- */

typedef struct api_server {
    ob_model *model;
    const char *model_id;      /* id shown in /v1/models and responses (valid UTF-8) */
    const char *model_alias[3];/* other names accepted in "model" (NULL-terminated) */
    ob_sampling defaults;      /* sampling for fields the request leaves out */
    int default_think;         /* enable_thinking when chat_template_kwargs does not say */
    int verbose;               /* log each request to stderr */
    int max_tokens_cap;        /* server cap on max_tokens (>= 1) */
    int n_ctx;                 /* context of one slot */
    double timeout_ms;         /* per-request time limit */
    long created;              /* start time, for /v1/models */
} api_server;

typedef enum { API_CHAT, API_COMPLETION, API_EMBEDDING } api_kind;

/* tool_choice: none (tools not shown, no calls read), auto, required (some call), named (that one). */
typedef enum { TOOL_NONE, TOOL_AUTO, TOOL_REQUIRED, TOOL_NAMED } tool_choice_kind;

/* An error answer: HTTP status plus OpenAI's {"error": {message, type, param, code}}. */
typedef struct api_error {
    int status;
    const char *type;          /* "invalid_request_error", "not_found_error", ... */
    const char *code;          /* NULL or e.g. "context_length_exceeded" */
    char param[64];            /* "" = null */
    char message[384];
} api_error;

/* A parsed request and what the answer needs besides the job. */
typedef struct api_req {
    api_kind kind;
    int stream, include_usage;
    char id[48];
    long created;
    char *echo;                /* completions with echo: the prompt text (valid UTF-8) */
    size_t echo_len;
    job *job;                  /* owned reference */
    /* chat */
    int n_tools;
    tool_choice_kind tool_choice;
    char tool_name[72];        /* TOOL_NAMED: the function */
    tool_format tool_fmt;      /* the syntax the answer's calls are read in (NONE: none are read) */
    reply_parser *rp;          /* sorts the answer into content, reasoning_content and tool_calls */
    /* embeddings */
    int encoding_base64;       /* encoding_format "base64": little-endian float32s */
} api_req;

/* Parses and validates a request body; on success *out holds a job ready to submit. Returns 0, or
 * -1 with err filled in. */
int api_parse(const api_server *srv, api_kind kind, const char *body, size_t len, api_req *out,
              api_error *err);
void api_req_free(api_req *r);
/* serve_grammar.c: response_format and grammar of a request into j->json_schema / j->grammar.
 * 0, or -1 with a 400 in err. */
struct cJSON;
int api_constraint(const struct cJSON *root, job *j, api_error *err);

void api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
/* The error as JSON (malloc'ed). */
char *api_error_json(const api_error *e);
/* The complete non-streaming answer of a finished job (malloc'ed). */
char *api_response_json(const api_server *srv, const api_req *r);
/* One streaming chunk: text (may be empty) and/or finish (-1 = none). First chunk of a chat
 * carries the role. usage != 0 adds the usage-only chunk of stream_options.include_usage. */
char *api_chunk_json(const api_server *srv, const api_req *r, const char *text, size_t len,
                     int first, const char *finish);
char *api_usage_chunk_json(const api_server *srv, const api_req *r);
/* finish_reason for a finished job: "stop" or "length". */
const char *api_finish_reason(const job *j);
/* finish_reason of a chat answer: "tool_calls" when it made calls and was not cut short. */
const char *api_chat_finish_reason(const api_req *r);
/* Streaming chat: the chunks for the parser's events since the last call, one per event (each
 * malloc'ed JSON handed to emit, which takes it; emit returns non-zero to stop). 0, or -1. */
int api_event_chunks(const api_server *srv, const api_req *r, int (*emit)(void *user, char *json), void *user);
/* /v1/embeddings: the answer once every input's job is done (malloc'ed). */
char *api_embeddings_json(const api_server *srv, const api_req *r);
char *api_models_json(const api_server *srv);
/* /v1/models/{id}: the model object, or NULL if id is not ours. */
char *api_model_json(const api_server *srv, const char *id);
/* Is name the served model (id or an alias)? */
int api_model_matches(const api_server *srv, const char *name);

/* Escapes len bytes as a JSON string literal with quotes (malloc'ed): invalid UTF-8 becomes
 * U+FFFD, control characters and NUL are \u-escaped. */
char *api_json_quote(const char *s, size_t len);
/* Copy of s with invalid UTF-8 replaced by U+FFFD (malloc'ed, NUL-terminated, *out_len set). */
char *api_utf8_clean(const char *s, size_t len, size_t *out_len);

/* ---- static files (serve_static.c) ---------------------------------------------------------- */

struct MHD_Connection;

/* Resolved web root (realpath) or NULL for the built-in page. */
typedef struct static_site {
    char *root;             /* the web app folder (realpath) or NULL */
    char *wasm_root;        /* realpath of build/wasm beside it, served at /build/wasm/, or NULL */
    char *model_path;       /* realpath of the served model, served at /models/<model_name> */
    const char *model_name; /* basename of model_path */
} static_site;

/* dir: --web DIR, or NULL for the default (../web or ../../web next to the executable); model: the
 * served GGUF file, which the page can download as /models/<its name>. Returns 0, or -1 when an
 * explicitly given dir is not a readable folder. */
int static_init(static_site *s, const char *dir, const char *model);
void static_free(static_site *s);
/* Answers a GET/HEAD for url (already percent-decoded by MHD). Returns an MHD_Result. */
int static_serve(const static_site *s, struct MHD_Connection *c, const char *url);
/* Adds the cross-origin isolation headers (COOP/COEP/CORP) to a response. */
struct MHD_Response;
void static_isolation_headers(struct MHD_Response *r);

/* ---- HTTP (serve_http.c) -------------------------------------------------------------------- */

typedef struct http_config {
    const char *host;          /* address to bind */
    int port;                  /* 0 = any free port */
    const char *api_key;       /* NULL = no auth */
    size_t max_body;
    int max_connections;
    const char *cors;          /* --cors: "*" or comma-separated origins; NULL = no CORS */
} http_config;

typedef struct http_server http_server;

/* Binds and starts serving. Returns NULL with a message on stderr on failure. */
http_server *http_start(const http_config *cfg, api_server *api, sched *sc, static_site *site);
int http_port(const http_server *h);
/* Stops accepting new connections (in-flight requests continue). */
void http_quiesce(http_server *h);
/* Closes every connection and frees the server (the scheduler must be shut down first). */
void http_stop(http_server *h);

#endif
