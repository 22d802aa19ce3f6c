/* serve_http.c — the HTTP side of `onebit serve`, on libmicrohttpd (MHD).
 *
 * MHD runs one thread per connection (bounded by a connection limit). Those threads only do I/O:
 * read and size-check the body, check the API key, hand the parsed request to the scheduler, then
 * wait for text and write it (a Server-Sent Events stream, or one JSON answer). While waiting they
 * look at the socket every 200 ms; a client that has gone away cancels its job at once, whether it
 * is still queued or already generating. When MHD itself notices a failed write it frees the
 * stream's response, which cancels the job too.
 *
 * Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/ID], GET /health,
 * everything else under /v1/ is a JSON 404, and the rest is the static web app (serve_static.c).
 * This file holds no OpenAI field logic (serve_api.c) and no generation (serve_sched.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

#define WAIT_SLICE_MS 200

struct http_server {
    struct MHD_Daemon *d;
    http_config cfg;
    api_server *api;
    sched *sc;
    static_site *site;
    int port;
    int loopback;              /* bound to a loopback address: check Host (DNS rebinding) */
    MHD_socket quiesced_fd;
    atomic_int active;         /* requests holding a job: shutdown lets them finish writing */
    atomic_int started;        /* MHD is up: its messages now go to the log only with -v */
};

typedef enum {
    R_STATIC, R_CHAT, R_COMPLETIONS, R_EMBEDDINGS, R_MODELS, R_MODEL, R_HEALTH, R_V1_UNKNOWN
} route;

/* --cors: the allowed origins ("*" or a comma-separated list), NULL = no CORS headers. One server
 * per process; set once before the daemon starts. */
static const char *cors_origins;

/* Per-request state (MHD's con_cls). */
typedef struct request {
    route rt;
    char *body;                /* [len] */
    size_t len, cap;
    int too_big;
    int counted;               /* holds one unit of http_server.active until completed */
} request;

static route classify(const char *url) {
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) return R_CHAT;
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")) return R_COMPLETIONS;
    if (!strcmp(url, "/v1/embeddings") || !strcmp(url, "/embeddings")) return R_EMBEDDINGS;
    if (!strcmp(url, "/v1/models") || !strcmp(url, "/models")) return R_MODELS;
    if (!strncmp(url, "/v1/models/", 11)) return R_MODEL;
    if (!strcmp(url, "/health") || !strcmp(url, "/v1/health")) return R_HEALTH;
    if (!strncmp(url, "/v1/", 4) || !strcmp(url, "/v1")) return R_V1_UNKNOWN;
    return R_STATIC;
}

/* ---- answers -------------------------------------------------------------------------------- */

/* CORS: when the request's Origin is allowed, the headers that let that page read the answer. */
static void cors_headers(struct MHD_Connection *c, struct MHD_Response *r) {
    if (!cors_origins) return;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin) return;
    if (!strcmp(cors_origins, "*")) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    } else {
        size_t ol = strlen(origin);
        int ok = 0;
        for (const char *p = cors_origins; *p && !ok;) {
            size_t l = strcspn(p, ",");
            ok = l == ol && !strncmp(p, origin, l);
            p += l + (p[l] == ',');
        }
        MHD_add_response_header(r, "Vary", "Origin");
        if (!ok) return;
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    }
    /* the cross-origin page reads the answer through CORS, not as an embedded resource */
    MHD_del_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "cross-origin");
}

/* Queues a JSON answer; takes ownership of json (malloc'ed; NULL = out of memory). */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, char *json) {
    if (!json) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    static_isolation_headers(r);
    cors_headers(c, r);
    if (status == MHD_HTTP_UNAUTHORIZED) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) MHD_add_response_header(r, "Retry-After", "1");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        /* callers put the allowed methods into the message; Allow lists the superset we use */
        MHD_add_response_header(r, "Allow", "GET, HEAD, POST, OPTIONS");
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, const api_error *e) {
    return send_json(c, (unsigned)e->status, api_error_json(e));
}

static enum MHD_Result fail(struct MHD_Connection *c, int status, const char *type, const char *code,
                            const char *msg) {
    api_error e;
    api_error_set(&e, status, type, code, NULL, "%s", msg);
    return send_error(c, &e);
}

static enum MHD_Result send_allow(struct MHD_Connection *c, const char *allow) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Allow", allow);
    if (cors_origins) { /* a CORS preflight: what the page may send */
        cors_headers(c, r);
        MHD_add_response_header(r, "Access-Control-Allow-Methods", allow);
        const char *hdrs = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", hdrs && strlen(hdrs) < 1024 ? hdrs : "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- checks --------------------------------------------------------------------------------- */

/* Has the client closed its side? Looks without consuming: pipelined bytes are not a hang-up. */
static int peer_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return 1;
    if (p.revents & POLLIN) {
        char b;
        ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return 0;
}

/* Bearer token check in constant time (for equal lengths). */
static int authorized(const http_server *h, struct MHD_Connection *c) {
    if (!h->cfg.api_key) return 1;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0) return 0;
    a += 7;
    while (*a == ' ') a++;
    size_t la = strlen(a), lk = strlen(h->cfg.api_key);
    unsigned char diff = la != lk;
    for (size_t i = 0; i < lk; i++) diff |= (unsigned char)(a[i < la ? i : 0] ^ h->cfg.api_key[i]);
    return diff == 0;
}

/* With a loopback bind, only loopback Host names are served, so a web page from elsewhere cannot
 * reach the server through DNS rebinding. */
static int host_ok(const http_server *h, struct MHD_Connection *c) {
    if (!h->loopback) return 1;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!host) return 1; /* HTTP/1.0 */
    char name[256];
    size_t n = 0;
    if (host[0] == '[') { /* [::1]:port */
        const char *e = strchr(host, ']');
        if (!e) return 0;
        n = (size_t)(e - host + 1);
    } else {
        const char *e = strchr(host, ':');
        n = e ? (size_t)(e - host) : strlen(host);
    }
    if (n == 0 || n >= sizeof name) return 0;
    memcpy(name, host, n);
    name[n] = 0;
    if (!strcasecmp(name, "localhost") || !strcmp(name, "[::1]")) return 1;
    struct in_addr a4; /* a real dotted IPv4 literal in 127/8, not a name like 127.evil.example */
    if (inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) return 1;
    size_t l = strlen(name);
    return l > 10 && !strcasecmp(name + l - 10, ".localhost");
}

/* ---- waiting for a job ---------------------------------------------------------------------- */

/* Cancels a job whose client is gone, or that has waited in the queue past its deadline.
 * Returns 1 when the client is gone. */
static int watch(http_server *h, struct MHD_Connection *c, job *j) {
    if (peer_gone(c)) {
        sched_cancel(h->sc, j, 0);
        return 1;
    }
    pthread_mutex_lock(&j->mu);
    int queued = j->state == JOB_QUEUED;
    pthread_mutex_unlock(&j->mu);
    if (queued && sched_now_ms() > j->deadline_ms) sched_cancel(h->sc, j, 1);
    return 0;
}

/* 0 when the finished job produced an answer (possibly cut short), else -1 with e filled in. */
static int outcome(const job *j, api_error *e) {
    if (j->status == OB_OK) return 0;
    if (j->status == OB_ERR_CANCELLED && j->timed_out) {
        if (j->result.n_generated > 0 || j->text_len > 0) return 0; /* finish_reason "length" */
        api_error_set(e, 503, "server_error", "timeout", NULL, "timed out waiting for a free slot");
        return -1;
    }
    if (j->status == OB_ERR_CANCELLED) {
        api_error_set(e, 503, "server_error", "cancelled", NULL, "%s", j->error[0] ? j->error : "cancelled");
        return -1;
    }
    api_error_set(e, 500, "server_error", NULL, NULL, "generation failed: %s (%s)", j->error, ob_status_str(j->status));
    return -1;
}

/* One line per finished request with -v. */
static void log_request(const http_server *h, const api_req *r, const char *how) {
    if (!h->api->verbose) return;
    job *j = r->job;
    pthread_mutex_lock(&j->mu);
    int done = j->state == JOB_DONE;
    ob_generate_result res = j->result;
    ob_status st = j->status;
    pthread_mutex_unlock(&j->mu);
    fprintf(stderr, "onebit: %s %s%s: prompt %zu (%d cached), generated %d, %s, %.0f ms\n",
            r->kind == API_CHAT ? "chat" : r->kind == API_COMPLETION ? "completion" : "embeddings", r->stream ? "stream " : "", r->id, j->n_prompt,
            res.n_reused, res.n_generated,
            !done ? how : st == OB_OK ? api_finish_reason(j) : ob_status_str(st),
            sched_now_ms() - j->t_submit_ms);
}

/* ---- streaming (Server-Sent Events) ---------------------------------------------------------- */

typedef struct stream {
    http_server *h;
    struct MHD_Connection *c;
    api_req r;
    size_t sent;               /* bytes of the job's text already sent */
    int started, ended;
    char *out;                 /* [out_len] formatted events not yet handed to MHD */
    size_t out_len, out_off;
} stream;

/* Appends the event "data: JSON\n\n" and frees json (NULL = out of memory). 0, or -1. */
static int emit(stream *s, char *json) {
    if (!json) return -1;
    size_t jl = strlen(json), need = s->out_len + jl + 8;
    char *no = realloc(s->out, need);
    if (!no) {
        free(json);
        return -1;
    }
    s->out = no;
    memcpy(s->out + s->out_len, "data: ", 6);
    memcpy(s->out + s->out_len + 6, json, jl);
    memcpy(s->out + s->out_len + 6 + jl, "\n\n", 2);
    s->out_len += jl + 8;
    free(json);
    return 0;
}

static int emit_cb(void *user, char *json) { return emit(user, json); }

/* The closing "data: [DONE]" event (not JSON). */
static int emit_done(stream *s) {
    char *copy = strdup("[DONE]");
    return copy ? emit(s, copy) : -1;
}

/* Produces the next events: waits for text or the end. 0, or -1 to abort the connection. */
static int produce(stream *s) {
    api_server *api = s->h->api;
    job *j = s->r.job;
    if (!s->started) {
        s->started = 1;
        if (s->r.kind == API_CHAT) return emit(s, api_chunk_json(api, &s->r, "", 0, 1, NULL));
        if (s->r.echo_len) return emit(s, api_chunk_json(api, &s->r, s->r.echo, s->r.echo_len, 0, NULL));
    }
    while (!job_wait(j, s->sent, WAIT_SLICE_MS))
        if (watch(s->h, s->c, j)) return -1;
    pthread_mutex_lock(&j->mu);
    size_t n = j->text_len - s->sent;
    char *piece = n ? malloc(n) : NULL;
    if (piece) memcpy(piece, j->text + s->sent, n);
    int done = j->state == JOB_DONE;
    pthread_mutex_unlock(&j->mu);
    if (n && !piece) return -1;
    if (n) {
        s->sent += n;
        int rc;
        if (s->r.rp) { /* chat: content, reasoning and tool calls sorted out of the text */
            rp_feed(s->r.rp, piece, n);
            rc = api_event_chunks(api, &s->r, emit_cb, s);
        } else {
            rc = emit(s, api_chunk_json(api, &s->r, piece, n, 0, NULL));
        }
        free(piece);
        if (rc) return -1;
    }
    if (!done) return 0;
    /* Finished: a job is never written again once done, so reading it unlocked is safe. */
    if (s->sent < j->text_len) return 0; /* text that arrived with the end: next round */
    api_error e;
    if (s->r.rp) {
        rp_finish(s->r.rp);
        if (api_event_chunks(api, &s->r, emit_cb, s)) return -1;
    }
    if (outcome(j, &e) == 0) {
        const char *fin = s->r.rp ? api_chat_finish_reason(&s->r) : api_finish_reason(j);
        if (emit(s, api_chunk_json(api, &s->r, "", 0, 0, fin))) return -1;
        if (s->r.include_usage && emit(s, api_usage_chunk_json(api, &s->r))) return -1;
    } else if (emit(s, api_error_json(&e))) {
        return -1;
    }
    if (emit_done(s)) return -1;
    s->ended = 1;
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream *s = cls;
    while (s->out_off == s->out_len) {
        s->out_off = s->out_len = 0;
        if (s->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        if (produce(s)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = s->out_len - s->out_off;
    if (n > max) n = max;
    memcpy(buf, s->out + s->out_off, n);
    s->out_off += n;
    return (ssize_t)n;
}

/* MHD is done with the response: finished, or the connection failed. */
static void stream_free(void *cls) {
    stream *s = cls;
    sched_cancel(s->h->sc, s->r.job, 0); /* no-op when the job is done */
    log_request(s->h, &s->r, "client gone");
    api_req_free(&s->r);
    free(s->out);
    free(s);
}

/* ---- the completions endpoints -------------------------------------------------------------- */

static enum MHD_Result completions(http_server *h, struct MHD_Connection *c, request *rq, api_kind kind) {
    api_req r;
    api_error e;
    if (api_parse(h->api, kind, rq->body ? rq->body : "", rq->len, &r, &e)) return send_error(c, &e);
    if (sched_submit(h->sc, r.job)) {
        api_req_free(&r);
        return fail(c, 503, "server_error", "server_busy", "the server is busy: too many queued requests, retry later");
    }
    atomic_fetch_add(&h->active, 1);
    rq->counted = 1;
    if (r.stream) {
        stream *s = calloc(1, sizeof *s);
        if (!s) {
            sched_cancel(h->sc, r.job, 0);
            api_req_free(&r);
            return MHD_NO;
        }
        s->h = h;
        s->c = c;
        s->r = r;
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, stream_free);
        if (!resp) {
            stream_free(s);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        static_isolation_headers(resp);
        cors_headers(c, resp);
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp); /* stream_free runs when MHD drops its reference */
        return ret;
    }
    job *j = r.job;
    while (!job_wait(j, SIZE_MAX, WAIT_SLICE_MS))
        if (watch(h, c, j)) {
            log_request(h, &r, "client gone");
            api_req_free(&r);
            return MHD_NO; /* nobody to answer */
        }
    enum MHD_Result ret = outcome(j, &e) != 0      ? send_error(c, &e)
                          : kind == API_EMBEDDING ? send_json(c, MHD_HTTP_OK, api_embeddings_json(h->api, &r))
                                                  : send_json(c, MHD_HTTP_OK, api_response_json(h->api, &r));
    log_request(h, &r, "");
    api_req_free(&r);
    return ret;
}

static char *health_json(http_server *h) {
    sched_stats st;
    sched_get_stats(h->sc, &st);
    char *s = malloc(640);
    if (!s) return NULL;
    snprintf(s, 640,
             "{\"status\":\"ok\",\"slots\":%d,\"slots_idle\":%d,\"generating\":%d,\"queued\":%d,"
             "\"requests\":%llu,\"completed\":%llu,\"cancelled\":%llu,\"failed\":%llu,\"rejected\":%llu,"
             "\"prompt_tokens\":%llu,\"reused_tokens\":%llu,\"generated_tokens\":%llu}",
             st.slots, st.slots - st.slots_busy, st.slots_busy, st.queued, (unsigned long long)st.requests,
             (unsigned long long)st.completed, (unsigned long long)st.cancelled, (unsigned long long)st.failed,
             (unsigned long long)st.rejected, (unsigned long long)st.prompt_tokens,
             (unsigned long long)st.reused_tokens, (unsigned long long)st.generated_tokens);
    return s;
}

/* ---- MHD callbacks -------------------------------------------------------------------------- */

static int is_post_route(route rt) { return rt == R_CHAT || rt == R_COMPLETIONS || rt == R_EMBEDDINGS; }

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    http_server *h = cls;
    request *rq = *con_cls;
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int post = !strcmp(method, "POST");
    if (!rq) { /* first call: headers only; refuse early so no body is read in vain */
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *con_cls = rq;
        rq->rt = classify(url);
        if (!host_ok(h, c))
            return fail(c, 403, "invalid_request_error", "host_not_allowed", "this Host is not allowed");
        if (rq->rt != R_STATIC && rq->rt != R_HEALTH && !authorized(h, c) && strcmp(method, "OPTIONS"))
            return fail(c, 401, "invalid_request_error", "invalid_api_key",
                        "Incorrect or missing API key: send 'Authorization: Bearer KEY'");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || end == cl || v > h->cfg.max_body) rq->too_big = 1;
        }
        if (rq->too_big && is_post_route(rq->rt) && post) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", h->cfg.max_body);
            return fail(c, 413, "invalid_request_error", "request_too_large", msg);
        }
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        size_t n = *upload_size;
        *upload_size = 0;
        if (rq->too_big || n > h->cfg.max_body - rq->len) {
            rq->too_big = 1;
            free(rq->body);
            rq->body = NULL;
            rq->len = rq->cap = 0;
            return MHD_YES;
        }
        if (rq->len + n > rq->cap) {
            size_t nc = rq->cap ? rq->cap : 4096;
            while (nc < rq->len + n) nc = nc > h->cfg.max_body / 2 ? h->cfg.max_body : nc * 2;
            char *nb = realloc(rq->body, nc);
            if (!nb) return MHD_NO;
            rq->body = nb;
            rq->cap = nc;
        }
        memcpy(rq->body + rq->len, upload, n);
        rq->len += n;
        return MHD_YES;
    }

    /* The whole request is in. */
    switch (rq->rt) {
    case R_CHAT:
    case R_COMPLETIONS:
    case R_EMBEDDINGS:
        if (!strcmp(method, "OPTIONS")) return send_allow(c, "POST, OPTIONS");
        if (!post) return fail(c, 405, "invalid_request_error", "method_not_allowed", "use POST for this endpoint");
        if (rq->too_big) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", h->cfg.max_body);
            return fail(c, 413, "invalid_request_error", "request_too_large", msg);
        }
        return completions(h, c, rq, rq->rt == R_CHAT ? API_CHAT : rq->rt == R_COMPLETIONS ? API_COMPLETION : API_EMBEDDING);
    case R_MODELS:
    case R_MODEL:
    case R_HEALTH:
        if (!strcmp(method, "OPTIONS")) return send_allow(c, "GET, HEAD, OPTIONS");
        if (!get) return fail(c, 405, "invalid_request_error", "method_not_allowed", "use GET for this endpoint");
        if (rq->rt == R_HEALTH) return send_json(c, MHD_HTTP_OK, health_json(h));
        if (rq->rt == R_MODELS) return send_json(c, MHD_HTTP_OK, api_models_json(h->api));
        {
            char *m = api_model_json(h->api, url + 11);
            if (m) return send_json(c, MHD_HTTP_OK, m);
            api_error e;
            api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                          "The model '%.200s' does not exist", url + 11);
            return send_error(c, &e);
        }
    case R_V1_UNKNOWN: {
        api_error e;
        api_error_set(&e, 404, "invalid_request_error", "unknown_url", NULL, "Unknown request URL: %s %.200s",
                      method, url);
        return send_error(c, &e);
    }
    case R_STATIC:
        if (!strcmp(method, "OPTIONS")) return send_allow(c, "GET, HEAD, OPTIONS");
        if (!get) return fail(c, 405, "invalid_request_error", "method_not_allowed", "use GET for static files");
        return static_serve(h->site, c, url);
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    http_server *h = cls;
    request *rq = *con_cls;
    if (!rq) return;
    if (rq->counted) atomic_fetch_sub(&h->active, 1);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decoding of the URL path and query. Like MHD's own, except that %00 stays as the three
 * characters "%00": a decoded NUL would silently cut the path short. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi = r[0] == '%' && r[1] ? hexval(r[1]) : -1;
        int lo = hi >= 0 && r[2] ? hexval(r[2]) : -1;
        if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

/* ---- start and stop ------------------------------------------------------------------------- */

/* MHD's own messages: always while starting (bind errors), afterwards only with -v, since a client
 * that hangs up is routine for a server and not worth a line each time. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    const http_server *h = cls;
    if (atomic_load(&h->started) && !h->api->verbose) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = 0;
    fprintf(stderr, "onebit: http: %s\n", msg);
}

http_server *http_start(const http_config *cfg, api_server *api, sched *sc, static_site *site) {
    http_server *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->cfg = *cfg;
    h->api = api;
    h->sc = sc;
    h->site = site;
    h->quiesced_fd = MHD_INVALID_SOCKET;
    cors_origins = cfg->cors && cfg->cors[0] ? cfg->cors : NULL;

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        fprintf(stderr, "onebit: cannot resolve --host '%s': %s\n", cfg->host, gai_strerror(gai));
        free(h);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ai->ai_addr;
        h->loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    } else if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)ai->ai_addr;
        h->loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first, so that it sees everything */
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape, h,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        fprintf(stderr, "onebit: cannot listen on %s port %d: %s\n", cfg->host, cfg->port,
                errno ? strerror(errno) : "libmicrohttpd failed to start");
        free(h);
        return NULL;
    }
    atomic_store(&h->started, 1);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    return h;
}

int http_port(const http_server *h) { return h->port; }

void http_quiesce(http_server *h) {
    if (h && h->d && h->quiesced_fd == MHD_INVALID_SOCKET) h->quiesced_fd = MHD_quiesce_daemon(h->d);
}

void http_stop(http_server *h) {
    if (!h) return;
    /* The scheduler has finished every job; give the streams a moment to write their last events
     * before MHD closes the sockets under them. */
    for (int i = 0; i < 200 && atomic_load(&h->active) > 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (h->d) MHD_stop_daemon(h->d);
    if (h->quiesced_fd != MHD_INVALID_SOCKET) close(h->quiesced_fd);
    free(h);
}
