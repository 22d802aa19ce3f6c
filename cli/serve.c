/* serve.c — `onebit serve`: an OpenAI-compatible HTTP server for one model.
 *
 * Parses the serve options (the model, context, thread and sampling options are the shared ones of
 * cli_parse), loads the model, starts the scheduler (serve_sched.c) and the HTTP server
 * (serve_http.c), then waits for SIGINT or SIGTERM and shuts down in order: stop accepting, cancel
 * every generation, close the connections, free everything. Like the rest of the CLI, this is a
 * place that prints and chooses an exit code; the request handling lives in the serve_* files.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "serve.h"

static const char SERVE_USAGE[] =
    "usage: onebit serve -m FILE [options]\n"
    "OpenAI-compatible HTTP server: POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings,\n"
    "GET /v1/models, "
    "GET /health, and the web app at / (see docs/SERVER.md).\n"
    "  -m, --model FILE       GGUF model\n"
    "      --host ADDR        address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)\n"
    "      --port N           port (default 8080; 0 = any free port, printed at start)\n"
    "      --api-key KEY      require 'Authorization: Bearer KEY' on /v1/* (or set ONEBIT_API_KEY)\n"
    "      --web DIR          static web app folder (default: web/ of the repository, if present)\n"
    "      --cors ORIGINS     let these web origins call the API ('*' or comma-separated; default none)\n"
    "      --alias NAME       the model's id in the API (default: the file name without .gguf)\n"
    "  -c, --ctx N            context size of each slot (default: min(model, 4096))\n"
    "      --slots N          parallel generations, one context each (default 1)\n"
    "      --queue N          requests allowed to wait for a slot; more get 503 (default 64)\n"
    "  -n, --max-tokens N     cap on max_tokens of any request (default: the context size)\n"
    "      --timeout SEC      time limit of one request, queueing included (default 600)\n"
    "      --max-body BYTES   largest request body; larger gets 413 (default 1048576)\n"
    "  -t, --threads N        threads (default: physical cores)\n"
    "      --backend NAME     scalar | cpu (default: best available)\n"
    "      --no-think         default enable_thinking=false (requests can still ask for it)\n"
    "      --temp T --top-k K --top-p P --min-p P --repeat-penalty R --presence-penalty P\n"
    "      --frequency-penalty F   defaults for requests that do not set them\n"
    "  -v, --verbose          log every request to stderr\n"
    "Stop with Ctrl-C (SIGINT) or SIGTERM.\n";

typedef struct serve_opts {
    const char *host, *api_key, *web, *cors, *alias;
    long port, slots, queue, timeout, max_body;
} serve_opts;

static int serve_num(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < lo || n > hi) {
        fprintf(stderr, "onebit: %s expects an integer in %ld..%ld\n", flag, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

/* Takes the serve-only flags out of argv (compacting it) and leaves the rest for cli_parse. */
static int serve_parse(int *argc, char **argv, serve_opts *so) {
    static const char *const flags[] = {"--host", "--api-key", "--web", "--port", "--slots", "--queue",
                                        "--timeout", "--max-body", "--cors", "--alias"};
    int w = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i], *v = i + 1 < *argc ? argv[i + 1] : NULL;
        int ours = 0;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) ours |= !strcmp(a, flags[k]);
        if (!ours) {
            argv[w++] = argv[i];
            continue;
        }
        if (!v) {
            fprintf(stderr, "onebit: %s needs a value\n", a);
            return 2;
        }
        i++;
        int rc = 0;
        if (!strcmp(a, "--host")) so->host = v;
        else if (!strcmp(a, "--api-key")) so->api_key = v;
        else if (!strcmp(a, "--web")) so->web = v;
        else if (!strcmp(a, "--cors")) so->cors = v;
        else if (!strcmp(a, "--alias")) so->alias = v;
        else if (!strcmp(a, "--port")) rc = serve_num(a, v, 0, 65535, &so->port);
        else if (!strcmp(a, "--slots")) rc = serve_num(a, v, 1, 64, &so->slots);
        else if (!strcmp(a, "--queue")) rc = serve_num(a, v, 0, 100000, &so->queue);
        else if (!strcmp(a, "--timeout")) rc = serve_num(a, v, 1, 86400 * 7, &so->timeout);
        else rc = serve_num(a, v, 64, 1L << 30, &so->max_body);
        if (rc) return 2;
    }
    *argc = w;
    return 0;
}

/* The model's id: its file name without directories and without ".gguf". */
static char *model_id(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
    return api_utf8_clean(base, n, NULL);
}

int cmd_serve(int argc, char **argv) {
    serve_opts so = {.host = "127.0.0.1", .port = 8080, .slots = 1, .queue = 64, .timeout = 600,
                     .max_body = 1 << 20};
    int r = serve_parse(&argc, argv, &so);
    if (r) return r;
    cli_opts o;
    cli_opts_init(&o);
    r = cli_parse(argc, argv, &o, SERVE_USAGE);
    if (r) return r == 1 ? 0 : r;
    if (!so.api_key) so.api_key = getenv("ONEBIT_API_KEY");
    if (so.api_key && !so.api_key[0]) so.api_key = NULL;

    /* Worker and connection threads inherit this mask: only the sigwait below sees the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGINT, SIG_DFL); /* a shell starting us in the background may have set SIG_IGN, */
    signal(SIGTERM, SIG_DFL); /* and sigwait never sees an ignored signal */
    signal(SIGPIPE, SIG_IGN);

    static_site site = {0};
    if (static_init(&site, so.web, o.model)) return 2;
    ob_model *m = NULL;
    if ((r = cli_load(&o, &m))) {
        static_free(&site);
        return r;
    }
    sched *sc = NULL;
    ob_status st = sched_new(m, (int)so.slots, o.n_ctx, (int)so.queue, &sc);
    if (st) {
        r = cli_fail(st, "cannot create the slots");
        ob_model_free(m);
        static_free(&site);
        return r;
    }

    ob_model_info info;
    ob_model_get_info(m, &info);
    char *id = so.alias && so.alias[0] ? api_utf8_clean(so.alias, strlen(so.alias), NULL) : model_id(o.model);
    char *file_id = so.alias && so.alias[0] ? model_id(o.model) : NULL; /* still accepted in "model" */
    char *base = NULL;
    if (id) {
        const char *b = strrchr(o.model, '/');
        base = api_utf8_clean(b ? b + 1 : o.model, strlen(b ? b + 1 : o.model), NULL);
    }
    api_server api;
    memset(&api, 0, sizeof api);
    api.model = m;
    api.model_id = id ? id : "model";
    api.model_alias[0] = base;
    api.model_alias[1] = info.name && info.name[0] ? info.name : file_id;
    api.model_alias[2] = info.name && info.name[0] ? file_id : NULL;
    api.defaults = o.sampling;
    api.default_think = o.think;
    api.n_ctx = sched_n_ctx(sc);
    api.max_tokens_cap = o.max_tokens > 0 && o.max_tokens < api.n_ctx ? o.max_tokens : api.n_ctx;
    api.timeout_ms = (double)so.timeout * 1000.0;
    api.created = (long)time(NULL);
    api.verbose = o.verbose;

    http_config hc = {.host = so.host, .port = (int)so.port, .api_key = so.api_key, .max_body = (size_t)so.max_body,
                      .max_connections = (int)(so.queue + so.slots + 64), .cors = so.cors};
    http_server *h = http_start(&hc, &api, sc, &site);
    if (!h) {
        sched_shutdown(sc);
        sched_free(sc);
        ob_model_free(m);
        static_free(&site);
        free(id);
        free(base);
        free(file_id);
        return 1;
    }
    int v6 = strchr(so.host, ':') != NULL;
    fprintf(stderr, "onebit: serving '%s' (%s, %d layers, backend %s): %ld slot%s x %d tokens of context\n",
            api.model_id, info.arch, info.n_layer, info.backend, so.slots, so.slots == 1 ? "" : "s", api.n_ctx);
    fprintf(stderr, "onebit: web app: %s\n", site.root ? site.root : "(built-in page; no web/ folder found)");
    if (so.api_key) fprintf(stderr, "onebit: API key required on /v1/*\n");
    printf("listening on http://%s%s%s:%d/\n", v6 ? "[" : "", so.host, v6 ? "]" : "", http_port(h));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {}
    fprintf(stderr, "\nonebit: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_quiesce(h);      /* no new connections */
    sched_shutdown(sc);   /* cancel queued and running generations, join the workers */
    http_stop(h);         /* finish or close every connection, join their threads */
    sched_free(sc);
    ob_model_free(m);
    static_free(&site);
    free(id);
    free(base);
    free(file_id);
    return 0;
}
