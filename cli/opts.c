/* opts.c — what every `onebit` subcommand shares: option parsing and its validation, model
 * loading with a progress bar, prompt input, tokenizing, the Ctrl-C flag and status -> exit code.
 * It prints only error messages; the subcommands (run.c, tools.c, serve.c) do the rest. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

volatile sig_atomic_t cli_interrupted;
static void on_sigint(int sig) { (void)sig; cli_interrupted = 1; }

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
    o->max_tokens = 0;
    o->think = -1; /* the template's default (Qwen3: thinking on) */
}

static int parse_int(const char *s, const char *flag, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s) {
        fprintf(stderr, "onebit: %s expects an integer, got '%s'\n", flag, s);
        return -1;
    }
    if (v < lo || v > hi) {
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

/* A sampling flag's value through the library's one check (ob_sampling_check), so that the CLI, the
 * server and the JS engine refuse the same values with the same message. */
static int check_sampling(const cli_opts *o, const char *flag) {
    if (ob_sampling_check(&o->sampling) == OB_OK) return 0;
    fprintf(stderr, "onebit: %s: %s\n", flag, ob_last_error());
    return -1;
}

static int check_limits(const cli_opts *o, const char *flag) {
    if (ob_limits_check(o->n_ctx, o->max_tokens) == OB_OK) return 0;
    fprintf(stderr, "onebit: %s: %s\n", flag, ob_last_error());
    return -1;
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
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) { NEED(); if (parse_int(v, a, -(1L << 30), 1L << 30, &n)) return 2; o->max_tokens = (int)n; if (check_limits(o, a)) return 2; }
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) { NEED(); if (parse_int(v, a, -(1L << 30), 1L << 30, &n)) return 2; o->n_ctx = (int)n; if (check_limits(o, a)) return 2; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { NEED(); if (parse_int(v, a, 0, 1024, &n)) return 2; o->n_threads = (int)n; }
        else if (!strcmp(a, "--backend")) { NEED(); o->backend = v; }
        else if (!strcmp(a, "--temp")) { NEED(); if (parse_float(v, a, &o->sampling.temperature) || check_sampling(o, a)) return 2; }
        else if (!strcmp(a, "--top-k")) { NEED(); if (parse_int(v, a, -(1L << 30), 1L << 30, &n)) return 2; o->sampling.top_k = (int)n; if (check_sampling(o, a)) return 2; }
        else if (!strcmp(a, "--top-p")) { NEED(); if (parse_float(v, a, &o->sampling.top_p) || check_sampling(o, a)) return 2; }
        else if (!strcmp(a, "--min-p")) { NEED(); if (parse_float(v, a, &o->sampling.min_p) || check_sampling(o, a)) return 2; }
        else if (!strcmp(a, "--repeat-penalty")) { NEED(); if (parse_float(v, a, &o->sampling.repeat_penalty) || check_sampling(o, a)) return 2; }
        else if (!strcmp(a, "--repeat-last-n")) { NEED(); if (parse_int(v, a, -(1L << 30), 1L << 30, &n)) return 2; o->sampling.repeat_last_n = (int)n; if (check_sampling(o, a)) return 2; }
        else if (!strcmp(a, "--presence-penalty")) { NEED(); if (parse_float(v, a, &o->sampling.presence_penalty) || check_sampling(o, a)) return 2; }
        else if (!strcmp(a, "--frequency-penalty")) { NEED(); if (parse_float(v, a, &o->sampling.frequency_penalty) || check_sampling(o, a)) return 2; }
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
        else if (!strcmp(a, "--grammar-file")) { NEED(); o->grammar_file = v; }
        else if (!strcmp(a, "--json-schema")) { NEED(); o->json_schema_file = v; }
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
    return cli_interrupted;
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

/* The same for a prompt that starts a context: with the BOS/EOS the file asks for. */
ob_status cli_tokenize_prompt(const ob_model *m, const char *text, size_t len, int special, ob_token **out,
                              size_t *n) {
    size_t cnt = 0;
    ob_status st = ob_tokenize_prompt(m, text, len, special, NULL, 0, &cnt);
    if (st) return st;
    *out = malloc((cnt ? cnt : 1) * sizeof **out);
    if (!*out) return OB_ERR_NOMEM;
    return ob_tokenize_prompt(m, text, len, special, *out, cnt, n);
}

void cli_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns so the prompt can be redrawn */
    sigaction(SIGINT, &sa, NULL);
}

/* ---- constrained output --------------------------------------------------------------------- */

static char *read_named(const char *path, const char *flag) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "onebit: %s: cannot open '%s': %s\n", flag, path, strerror(errno));
        return NULL;
    }
    size_t len;
    char *s = cli_read_all(f, &len);
    fclose(f);
    if (!s) fprintf(stderr, "onebit: %s: cannot read '%s'\n", flag, path);
    else if (strlen(s) != len) {
        fprintf(stderr, "onebit: %s: '%s' holds a NUL byte\n", flag, path);
        free(s);
        s = NULL;
    }
    return s;
}

int cli_constraint(const cli_opts *o, char **grammar, char **json_schema) {
    *grammar = *json_schema = NULL;
    if (!!o->grammar_file + !!o->json_schema_file + !!o->json > 1) {
        fprintf(stderr, "onebit: give one of --grammar-file, --json-schema and --json\n");
        return 2;
    }
    ob_status st = OB_OK;
    char *gbnf = NULL;
    if (o->grammar_file) {
        if (!(*grammar = read_named(o->grammar_file, "--grammar-file"))) return 2;
        if ((st = ob_grammar_check(*grammar))) {
            fprintf(stderr, "onebit: --grammar-file %s: %s\n", o->grammar_file, ob_last_error());
            free(*grammar);
            *grammar = NULL;
            return cli_exit_code(st);
        }
    } else if (o->json_schema_file || o->json) {
        *json_schema = o->json ? strdup("{\"type\":\"object\"}") : read_named(o->json_schema_file, "--json-schema");
        if (!*json_schema) return 2;
        if ((st = ob_json_schema_to_grammar(*json_schema, &gbnf))) {
            fprintf(stderr, "onebit: --json-schema %s: %s\n", o->json_schema_file, ob_last_error());
            free(*json_schema);
            *json_schema = NULL;
            return cli_exit_code(st);
        }
        free(gbnf);
    }
    return 0;
}
