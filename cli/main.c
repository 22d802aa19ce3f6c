/* main.c — the `onebit` command line: run, chat, info, tokenize, logits, bench, serve.
 *
 * The only place (with the server) that prints and exits. Each subcommand parses its own flags,
 * calls the library, and maps failures to an exit code:
 *   0 ok, 1 failure, 2 usage error, 3 file cannot be read, 4 invalid or unsupported model,
 *   5 prompt does not fit the context, 6 out of memory, 130 interrupted.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

int cli_exit_code(ob_status st) {
    switch (st) {
    case OB_OK: return 0;
    case OB_ERR_ARG: return 2;
    case OB_ERR_IO: return 3;
    case OB_ERR_FORMAT:
    case OB_ERR_UNSUPPORTED: return 4;
    case OB_ERR_CONTEXT: return 5;
    case OB_ERR_NOMEM: return 6;
    case OB_ERR_CANCELLED: return 130;
    default: return 1;
    }
}

int cli_fail(ob_status st, const char *what) {
    fprintf(stderr, "onebit: %s: %s\n", what, ob_last_error());
    return cli_exit_code(st);
}

/* ---- option parsing --------------------------------------------------------------------------- */

void cli_opts_init(cli_opts *o) {
    memset(o, 0, sizeof *o);
    o->sampling = ob_sampling_default();
    o->max_tokens = -1;
    o->think = 1;
}

static int parse_int(const char *s, const char *flag, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "onebit: %s expects an integer in %ld..%ld, got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *s, const char *flag, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s || v != v) {
        fprintf(stderr, "onebit: %s expects a number, got '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses the flags shared by the subcommands. Returns 0, or 2 for a usage error, or 1 for --help. */
int cli_parse(int argc, char **argv, cli_opts *o, const char *usage) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
#define NEED()                                                               \
        if (!v) { fprintf(stderr, "onebit: %s needs a value\n", a); return 2; } \
        i++;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return 1; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED(); o->model = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEED(); o->prompt = v; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { NEED(); o->prompt_file = v; }
        else if (!strcmp(a, "-s") || !strcmp(a, "--system")) { NEED(); o->system = v; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) { NEED(); if (parse_int(v, a, -1, 1 << 24, &n)) return 2; o->max_tokens = (int)n; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) { NEED(); if (parse_int(v, a, 1, 1 << 22, &n)) return 2; o->n_ctx = (int)n; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { NEED(); if (parse_int(v, a, 1, 1024, &n)) return 2; o->n_threads = (int)n; }
        else if (!strcmp(a, "--backend")) { NEED(); o->backend = v; }
        else if (!strcmp(a, "--temp")) { NEED(); if (parse_float(v, a, &o->sampling.temperature)) return 2; }
        else if (!strcmp(a, "--top-k")) { NEED(); if (parse_int(v, a, 0, 1 << 24, &n)) return 2; o->sampling.top_k = (int)n; }
        else if (!strcmp(a, "--top-p")) { NEED(); if (parse_float(v, a, &o->sampling.top_p)) return 2; }
        else if (!strcmp(a, "--min-p")) { NEED(); if (parse_float(v, a, &o->sampling.min_p)) return 2; }
        else if (!strcmp(a, "--repeat-penalty")) { NEED(); if (parse_float(v, a, &o->sampling.repeat_penalty)) return 2; }
        else if (!strcmp(a, "--repeat-last-n")) { NEED(); if (parse_int(v, a, -1, 1 << 24, &n)) return 2; o->sampling.repeat_last_n = (int)n; }
        else if (!strcmp(a, "--presence-penalty")) { NEED(); if (parse_float(v, a, &o->sampling.presence_penalty)) return 2; }
        else if (!strcmp(a, "--frequency-penalty")) { NEED(); if (parse_float(v, a, &o->sampling.frequency_penalty)) return 2; }
        else if (!strcmp(a, "--seed")) { NEED(); char *e; errno = 0; unsigned long long s = strtoull(v, &e, 10);
            if (errno || *e || e == v) { fprintf(stderr, "onebit: --seed expects an integer\n"); return 2; } o->sampling.seed = s; }
        else if (!strcmp(a, "--greedy")) { o->sampling.temperature = 0; }
        else if (!strcmp(a, "--stop")) { NEED(); if (o->n_stop >= CLI_MAX_STOP) { fprintf(stderr, "onebit: too many --stop\n"); return 2; } o->stop[o->n_stop++] = v; }
        else if (!strcmp(a, "--no-think")) { o->think = 0; }
        else if (!strcmp(a, "--think")) { o->think = 1; }
        else if (!strcmp(a, "--raw")) { o->raw = 1; }
        else if (!strcmp(a, "--no-special")) { o->no_special = 1; }
        else if (!strcmp(a, "--decode")) { o->decode = 1; }
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) { o->verbose = 1; }
        else if (!strcmp(a, "--stats")) { o->stats = 1; }
        else if (!strcmp(a, "--tokens")) { NEED(); o->tokens = v; }
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) { NEED(); o->out = v; }
        else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) { NEED(); if (parse_int(v, a, 1, 1000, &n)) return 2; o->reps = (int)n; }
        else if (!strcmp(a, "--pp")) { NEED(); if (parse_int(v, a, 0, 1 << 20, &n)) return 2; o->pp = (int)n; }
        else if (!strcmp(a, "--tg")) { NEED(); if (parse_int(v, a, 0, 1 << 20, &n)) return 2; o->tg = (int)n; }
        else if (!strcmp(a, "--json")) { o->json = 1; }
        else { fprintf(stderr, "onebit: unknown option '%s' (see --help)\n", a); return 2; }
#undef NEED
    }
    o->stop[o->n_stop] = NULL;
    return 0;
}

/* ---- loading ----------------------------------------------------------------------------------- */

static int progress_bar(float f, void *user) {
    (void)user;
    int w = 40, k = (int)(f * w + 0.5f);
    fprintf(stderr, "\rloading [");
    for (int i = 0; i < w; i++) fputc(i < k ? '#' : ' ', stderr);
    fprintf(stderr, "] %3d%%", (int)(f * 100 + 0.5f));
    if (f >= 1.0f) fprintf(stderr, "\r\033[K");
    fflush(stderr);
    return interrupted;
}

int cli_load(const cli_opts *o, ob_model **m) {
    if (!o->model) {
        fprintf(stderr, "onebit: no model given (use -m FILE)\n");
        return 2;
    }
    ob_model_params mp = ob_model_default_params();
    mp.backend = o->backend;
    mp.n_threads = o->n_threads;
    if (isatty(2)) mp.progress = progress_bar;
    ob_status st = ob_model_load_file(o->model, &mp, m);
    if (st) {
        char what[600];
        snprintf(what, sizeof what, "cannot load '%s'", o->model);
        return cli_fail(st, what);
    }
    return 0;
}

/* Reads all of stdin or a file into a NUL-terminated malloc'ed buffer. */
char *cli_read_all(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
            cap *= 2;
        }
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* The prompt text from -p, -f FILE, or stdin ("-f -"). */
char *cli_prompt_text(const cli_opts *o, size_t *len) {
    if (o->prompt) {
        *len = strlen(o->prompt);
        return strdup(o->prompt);
    }
    if (o->prompt_file) {
        FILE *f = strcmp(o->prompt_file, "-") ? fopen(o->prompt_file, "rb") : stdin;
        if (!f) {
            fprintf(stderr, "onebit: cannot open '%s': %s\n", o->prompt_file, strerror(errno));
            return NULL;
        }
        char *s = cli_read_all(f, len);
        if (f != stdin) fclose(f);
        return s;
    }
    return NULL;
}

/* Tokenizes text into a malloc'ed array. */
ob_status cli_tokenize(const ob_model *m, const char *text, size_t len, int special, ob_token **out, size_t *n) {
    size_t cnt = 0;
    ob_status st = ob_tokenize(m, text, len, special, NULL, 0, &cnt);
    if (st) return st;
    *out = malloc((cnt ? cnt : 1) * sizeof **out);
    if (!*out) return OB_ERR_NOMEM;
    st = ob_tokenize(m, text, len, special, *out, cnt, n);
    return st;
}

/* ---- run and chat ------------------------------------------------------------------------------ */

static int write_text(const char *text, size_t len, void *user) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return interrupted;
}

static void print_stats(const ob_generate_result *r) {
    fprintf(stderr, "\n[prompt: %d tokens (%d cached) in %.0f ms, %.1f tok/s | generated: %d tokens in %.0f ms, %.1f tok/s]\n",
            r->n_prompt, r->n_reused, r->t_prompt_ms, r->t_prompt_ms > 0 ? r->n_prompt * 1000.0 / r->t_prompt_ms : 0.0,
            r->n_generated, r->t_gen_ms, r->t_gen_ms > 0 ? r->n_generated * 1000.0 / r->t_gen_ms : 0.0);
}

static void install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns so the prompt can be redrawn */
    sigaction(SIGINT, &sa, NULL);
}

static const char RUN_USAGE[] =
    "usage: onebit run -m FILE (-p TEXT | -f FILE) [options]\n"
    "Generates a reply to one prompt and streams it to stdout.\n"
    "  -m, --model FILE       GGUF model\n"
    "  -p, --prompt TEXT      the prompt;  -f, --file FILE  read it from a file ('-' = stdin)\n"
    "  -s, --system TEXT      system message (chat mode)\n"
    "      --raw              plain text continuation, no chat template\n"
    "      --no-think         Qwen3 non-thinking mode (enable_thinking=false)\n"
    "  -n, --max-tokens N     stop after N tokens (default: until the end token or a full context)\n"
    "  -c, --ctx N            context size (default: min(model, 4096))\n"
    "  -t, --threads N        threads (default: physical cores)\n"
    "      --backend NAME     scalar | cpu (default: best available)\n"
    "      --temp T --top-k K --top-p P --min-p P --seed S --greedy\n"
    "      --repeat-penalty R --repeat-last-n N --presence-penalty P --frequency-penalty F\n"
    "      --stop TEXT        stop string (repeatable)\n"
    "      --stats            print timing to stderr\n";

int cmd_run(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    int r = cli_parse(argc, argv, &o, RUN_USAGE);
    if (r) return r == 1 ? 0 : r;
    size_t plen;
    char *prompt = cli_prompt_text(&o, &plen);
    if (!prompt) {
        if (!o.prompt_file) fprintf(stderr, "onebit: no prompt given (use -p TEXT or -f FILE)\n");
        return 2;
    }
    ob_model *m;
    if ((r = cli_load(&o, &m))) { free(prompt); return r; }
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = o.n_ctx;
    ob_context *ctx = NULL;
    ob_token *toks = NULL;
    size_t nt = 0;
    char *rendered = NULL;
    ob_status st = ob_context_new(m, &cp, &ctx);
    if (st) { r = cli_fail(st, "cannot create a context"); goto out; }
    const char *text = prompt;
    size_t tlen = plen;
    if (!o.raw) {
        ob_chat_message msgs[2];
        size_t nm = 0;
        if (o.system) msgs[nm++] = (ob_chat_message){"system", o.system};
        msgs[nm++] = (ob_chat_message){"user", prompt};
        if ((st = ob_chat_render(m, msgs, nm, 1, o.think, &rendered))) { r = cli_fail(st, "chat template"); goto out; }
        text = rendered;
        tlen = strlen(rendered);
    }
    if ((st = cli_tokenize(m, text, tlen, !o.raw, &toks, &nt))) { r = cli_fail(st, "tokenize"); goto out; }
    if (nt == 0) { fprintf(stderr, "onebit: the prompt is empty\n"); r = 2; goto out; }
    install_sigint();
    ob_generate_params gp = {0};
    gp.sampling = o.sampling;
    gp.max_tokens = o.max_tokens;
    gp.stop = o.n_stop ? (const char *const *)o.stop : NULL;
    gp.on_text = write_text;
    ob_generate_result res;
    if (o.raw) fwrite(prompt, 1, plen, stdout);
    st = ob_generate(ctx, toks, nt, &gp, &res);
    if (st) { r = cli_fail(st, "generation failed"); goto out; }
    fputc('\n', stdout);
    if (o.stats) print_stats(&res);
    r = interrupted ? 130 : 0;
out:
    free(toks);
    free(rendered);
    free(prompt);
    ob_context_free(ctx);
    ob_model_free(m);
    return r;
}

static const char CHAT_USAGE[] =
    "usage: onebit chat -m FILE [options]\n"
    "Interactive chat. Type a message and press Enter. Ctrl-C stops the answer; Ctrl-D or /exit quits.\n"
    "Commands: /reset (new conversation), /exit.\n"
    "  -s, --system TEXT      system message\n"
    "      --no-think         Qwen3 non-thinking mode\n"
    "  plus the sampling, context and thread options of `onebit run --help`.\n";

typedef struct chat_state {
    ob_chat_message *msgs;
    char **owned;            /* contents we allocated, freed on reset */
    size_t n, cap;
} chat_state;

static int chat_push(chat_state *s, const char *role, char *content) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        ob_chat_message *nm = realloc(s->msgs, nc * sizeof *nm);
        char **no = nm ? realloc(s->owned, nc * sizeof *no) : NULL;
        if (!nm || !no) { free(content); if (nm) s->msgs = nm; return -1; }
        s->msgs = nm;
        s->owned = no;
        s->cap = nc;
    }
    s->msgs[s->n] = (ob_chat_message){role, content};
    s->owned[s->n++] = content;
    return 0;
}

static void chat_reset(chat_state *s, size_t keep) {
    while (s->n > keep) free(s->owned[--s->n]);
}

typedef struct reply_buf { char *s; size_t len, cap; } reply_buf;

static int chat_text(const char *text, size_t len, void *user) {
    reply_buf *b = user;
    if (b->len + len + 1 > b->cap) {
        size_t nc = (b->len + len + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (ns) { b->s = ns; b->cap = nc; }
    }
    if (b->len + len + 1 <= b->cap) {
        memcpy(b->s + b->len, text, len);
        b->len += len;
        b->s[b->len] = 0;
    }
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return interrupted;
}

/* Tokens for the conversation: the cached tokens plus only the text this turn adds, so earlier
 * turns are never evaluated twice (the cache keeps them exactly as they were generated). */
static ob_status turn_tokens(ob_model *m, ob_context *ctx, chat_state *s, int think, ob_token **out, size_t *n) {
    char *full = NULL, *prev = NULL;
    ob_status st = ob_chat_render(m, s->msgs, s->n, 1, think, &full);
    if (st) return st;
    size_t skip = 0;
    if (ob_context_n_past(ctx) > 0 && s->n > 1 && ob_chat_render(m, s->msgs, s->n - 1, 0, think, &prev) == OB_OK) {
        size_t pl = strlen(prev);
        /* The cache ends with the end-of-turn token; the newline after it belongs to this turn. */
        if (pl > 0 && prev[pl - 1] == '\n') pl--;
        if (strncmp(full, prev, pl) == 0) skip = pl;
    }
    ob_token *delta = NULL;
    size_t nd = 0;
    st = cli_tokenize(m, full + skip, strlen(full + skip), 1, &delta, &nd);
    if (st == OB_OK) {
        size_t base = skip ? (size_t)ob_context_n_past(ctx) : 0;
        *out = malloc((base + nd + 1) * sizeof **out);
        if (!*out) st = OB_ERR_NOMEM;
        else {
            memcpy(*out, ob_context_tokens(ctx), base * sizeof **out);
            memcpy(*out + base, delta, nd * sizeof **out);
            *n = base + nd;
        }
    }
    free(delta);
    free(full);
    free(prev);
    return st;
}

int cmd_chat(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    int r = cli_parse(argc, argv, &o, CHAT_USAGE);
    if (r) return r == 1 ? 0 : r;
    ob_model *m;
    if ((r = cli_load(&o, &m))) return r;
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = o.n_ctx;
    ob_context *ctx;
    ob_status st = ob_context_new(m, &cp, &ctx);
    if (st) { ob_model_free(m); return cli_fail(st, "cannot create a context"); }
    install_sigint();
    chat_state s = {0};
    size_t base = 0;
    if (o.system) {
        if (chat_push(&s, "system", strdup(o.system)) == 0) base = 1;
    }
    int tty = isatty(0);
    char *line = NULL;
    size_t lcap = 0;
    r = 0;
    for (;;) {
        if (tty) { fputs("\n> ", stdout); fflush(stdout); }
        interrupted = 0;
        errno = 0;
        ssize_t got = getline(&line, &lcap, stdin);
        if (got < 0) {
            if (errno == EINTR && interrupted) { clearerr(stdin); if (tty) fputs("\n(Ctrl-D or /exit to quit)", stdout); continue; }
            break;
        }
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            chat_reset(&s, base);
            ob_context_truncate(ctx, 0);
            fputs("(conversation cleared)\n", stdout);
            continue;
        }
        if (line[0] == '/' && strchr(line, ' ') == NULL) {
            fprintf(stdout, "unknown command %s (commands: /reset, /exit)\n", line);
            continue;
        }
        if (chat_push(&s, "user", strdup(line))) { r = cli_fail(OB_ERR_NOMEM, "chat"); break; }
        ob_token *toks = NULL;
        size_t nt = 0;
        if ((st = turn_tokens(m, ctx, &s, o.think, &toks, &nt))) { r = cli_fail(st, "chat"); break; }
        reply_buf reply = {0};
        ob_generate_params gp = {0};
        gp.sampling = o.sampling;
        gp.max_tokens = o.max_tokens;
        gp.stop = o.n_stop ? (const char *const *)o.stop : NULL;
        gp.on_text = chat_text;
        gp.user = &reply;
        ob_generate_result res;
        st = ob_generate(ctx, toks, nt, &gp, &res);
        free(toks);
        if (st == OB_ERR_CONTEXT) {
            fprintf(stdout, "\n(the conversation no longer fits the context of %d tokens: /reset to start over)\n",
                    ob_context_n_ctx(ctx));
            chat_reset(&s, s.n - 1);
            free(reply.s);
            continue;
        }
        if (st) { free(reply.s); r = cli_fail(st, "generation failed"); break; }
        if (interrupted) fputs(" [stopped]", stdout);
        fputc('\n', stdout);
        if (o.stats) print_stats(&res);
        if (chat_push(&s, "assistant", reply.s ? reply.s : strdup(""))) { r = cli_fail(OB_ERR_NOMEM, "chat"); break; }
        if (interrupted) ob_context_truncate(ctx, 0); /* the cache no longer ends on a finished turn */
    }
    free(line);
    chat_reset(&s, 0);
    free(s.msgs);
    free(s.owned);
    ob_context_free(ctx);
    ob_model_free(m);
    return r;
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

static const char MAIN_USAGE[] =
    "onebit " ONEBIT_VERSION " — run 1-bit language models (GGUF Q1_0, Qwen3) on your own machine\n"
    "\n"
    "usage: onebit COMMAND [options]       (onebit COMMAND --help for details)\n"
    "  run       generate a reply to one prompt\n"
    "  chat      interactive chat\n"
    "  info      show a model's metadata, tensors and sizes\n"
    "  tokenize  text to token ids (--decode: ids to text)\n"
    "  logits    raw logits of a token list, for tests\n"
    "  bench     prompt and generation speed (pp/tg, like llama-bench)\n"
    "  serve     OpenAI-compatible HTTP server and web app\n"
    "\n"
    "exit codes: 0 ok, 1 failure, 2 usage, 3 unreadable file, 4 invalid or unsupported model,\n"
    "            5 prompt too long for the context, 6 out of memory, 130 interrupted\n";

int main(int argc, char **argv) {
    if (argc < 2) { fputs(MAIN_USAGE, stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { fputs(MAIN_USAGE, stdout); return 0; }
    if (!strcmp(cmd, "--version")) { puts("onebit " ONEBIT_VERSION); return 0; }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "chat")) return cmd_chat(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "logits")) return cmd_logits(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
    fprintf(stderr, "onebit: unknown command '%s'\n\n%s", cmd, MAIN_USAGE);
    return 2;
}
