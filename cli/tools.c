/* tools.c — the inspection and measurement subcommands: info, tokenize, logits, bench. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "gguf.h"

/* ---- info -------------------------------------------------------------------------------------- */

static const char INFO_USAGE[] =
    "usage: onebit info -m FILE [--verbose]\n"
    "Shows the model's metadata, tensor table, sizes and bits per weight, then checks that onebit can\n"
    "run it. --verbose lists every tensor (default: the first layer's and the global ones).\n";

static void print_kv(const gguf_kv *kv) {
    printf("  %-44.*s ", (int)(kv->key.len > 44 ? 44 : kv->key.len), kv->key.ptr);
    if (kv->type == GGUF_STRING) {
        uint64_t n;
        memcpy(&n, kv->val, 8);
        const char *s = (const char *)kv->val + 8;
        size_t show = n > 60 ? 60 : (size_t)n;
        putchar('"');
        for (size_t i = 0; i < show; i++) putchar(s[i] == '\n' ? ' ' : (s[i] >= 0 && s[i] < 32 ? '?' : s[i]));
        printf("%s\"\n", n > 60 ? "..." : "");
    } else if (kv->type == GGUF_ARRAY) {
        printf("[%llu x %s]\n", (unsigned long long)kv->arr_n, gguf_vtype_name(kv->arr_type));
    } else {
        uint64_t u = 0;
        int64_t i = 0;
        float f;
        double d;
        switch (kv->type) {
        case GGUF_UINT8: printf("%u\n", kv->val[0]); break;
        case GGUF_INT8: printf("%d\n", (int8_t)kv->val[0]); break;
        case GGUF_UINT16: memcpy(&u, kv->val, 2); printf("%llu\n", (unsigned long long)u); break;
        case GGUF_INT16: { int16_t v; memcpy(&v, kv->val, 2); printf("%d\n", v); break; }
        case GGUF_UINT32: memcpy(&u, kv->val, 4); printf("%llu\n", (unsigned long long)u); break;
        case GGUF_INT32: { int32_t v; memcpy(&v, kv->val, 4); printf("%d\n", v); break; }
        case GGUF_UINT64: memcpy(&u, kv->val, 8); printf("%llu\n", (unsigned long long)u); break;
        case GGUF_INT64: memcpy(&i, kv->val, 8); printf("%lld\n", (long long)i); break;
        case GGUF_FLOAT32: memcpy(&f, kv->val, 4); printf("%g\n", f); break;
        case GGUF_FLOAT64: memcpy(&d, kv->val, 8); printf("%g\n", d); break;
        case GGUF_BOOL: printf("%s\n", kv->val[0] ? "true" : "false"); break;
        default: printf("?\n");
        }
    }
}

static const char *human(double bytes, char *buf, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (bytes >= 1024 && i < 4) { bytes /= 1024; i++; }
    snprintf(buf, cap, i ? "%.2f %s" : "%.0f %s", bytes, u[i]);
    return buf;
}

int cmd_info(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    int r = cli_parse(argc, argv, &o, INFO_USAGE);
    if (r) return r == 1 ? 0 : r;
    if (!o.model) { fprintf(stderr, "onebit: no model given (use -m FILE)\n"); return 2; }
    gguf_file g;
    char err[512], b1[32], b2[32];
    if (gguf_open_file(&g, o.model, err, sizeof err) != 0) {
        fprintf(stderr, "onebit: cannot read '%s': %s\n", o.model, err);
        return strncmp(err, "cannot", 6) == 0 || strstr(err, "regular file") ? 3 : 4;
    }
    printf("file:       %s\nsize:       %s (%llu bytes), GGUF v%u, alignment %u\n", o.model,
           human((double)g.size, b1, sizeof b1), (unsigned long long)g.size, g.version, g.alignment);
    printf("metadata:   %llu keys\n", (unsigned long long)g.n_kv);
    for (uint64_t i = 0; i < g.n_kv; i++) print_kv(&g.kv[i]);
    printf("tensors:    %llu\n", (unsigned long long)g.n_tensors);
    printf("  %-36s %-6s %-24s %12s\n", "name", "type", "shape", "bytes");
    uint64_t n_el = 0, n_bytes = 0, by_type[GGML_TYPE_COUNT] = {0}, el_type[GGML_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        uint64_t el = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        n_el += el;
        n_bytes += t->nbytes;
        by_type[t->type] += t->nbytes;
        el_type[t->type] += el;
        int show = o.verbose || t->name.len < 5 || memcmp(t->name.ptr, "blk.", 4) != 0 ||
                   (t->name.len > 6 && memcmp(t->name.ptr, "blk.0.", 6) == 0);
        if (!show) continue;
        char shape[64];
        int k = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims; d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, d ? ", %llu" : "%llu", (unsigned long long)t->ne[d]);
        snprintf(shape + k, sizeof shape - (size_t)k, "]");
        printf("  %-36.*s %-6s %-24s %12llu\n", (int)(t->name.len > 36 ? 36 : t->name.len), t->name.ptr,
               gguf_type(t->type)->name, shape, (unsigned long long)t->nbytes);
    }
    if (!o.verbose) printf("  (blk.1 and later layers not shown; --verbose lists all)\n");
    printf("weights:    %llu parameters, %s of tensor data, %.3f bits per weight\n", (unsigned long long)n_el,
           human((double)n_bytes, b2, sizeof b2), n_el ? 8.0 * (double)n_bytes / (double)n_el : 0.0);
    for (int ty = 0; ty < GGML_TYPE_COUNT; ty++)
        if (el_type[ty])
            printf("  %-6s %14llu parameters %12s  (%.3f bits each)\n", gguf_type((uint32_t)ty)->name,
                   (unsigned long long)el_type[ty], human((double)by_type[ty], b1, sizeof b1),
                   8.0 * (double)by_type[ty] / (double)el_type[ty]);
    gguf_close(&g);

    ob_model *m;
    ob_model_params mp = ob_model_default_params();
    mp.backend = o.backend;
    ob_status st = ob_model_load_file(o.model, &mp, &m);
    if (st) {
        printf("runnable:   no — %s\n", ob_last_error());
        return cli_exit_code(st);
    }
    ob_model_info mi;
    ob_model_get_info(m, &mi);
    printf("model:      %s \"%s\": %d layers, embedding %d, feed-forward %d, heads %d (kv %d) x %d,\n"
           "            vocabulary %d, context %d, rope theta %g, norm eps %g, %s embeddings\n",
           mi.arch, mi.name, mi.n_layer, mi.n_embd, mi.n_ff, mi.n_head, mi.n_head_kv, mi.head_dim, mi.n_vocab,
           mi.n_ctx_train, mi.rope_theta, mi.norm_eps, mi.tied_embeddings ? "tied" : "separate output");
    printf("family:     %s\n", ob_model_describe(m));
    int n_eog = 0;
    const ob_token *eog = ob_model_eog(m, &n_eog);
    printf("tokens:     bos %d, eos %d, end of generation:", mi.bos, mi.eos);
    for (int i = 0; i < n_eog; i++) {
        const char *b;
        size_t len;
        ob_token_bytes(m, eog[i], &b, &len);
        printf(" %d (%.*s)", eog[i], (int)(len > 24 ? 24 : len), b);
    }
    const char *tmpl = ob_model_chat_template(m);
    printf("\ntemplate:   %s", tmpl ? "" : "none: plain completion only (chat commands render no prompt)\n");
    if (tmpl) printf("%zu bytes of Jinja (tokenizer.chat_template)\n", strlen(tmpl));
    printf("runnable:   yes, backend %s\n", mi.backend);
    ob_model_free(m);
    return 0;
}

/* ---- tokenize ---------------------------------------------------------------------------------- */

static const char TOKENIZE_USAGE[] =
    "usage: onebit tokenize -m FILE [-p TEXT | -f FILE] [--no-special] [--add-special] [--ids | --verbose]\n"
    "       onebit tokenize -m FILE --decode [-p IDS | -f FILE]\n"
    "Prints the token ids of the text (default: stdin), comma-separated; --ids prints each id after a\n"
    "space, as llama.cpp's vocabulary tests (.out files) do; --verbose prints one id per line with its\n"
    "bytes. --no-special treats <|im_start|> and the like as plain text. --add-special adds what the\n"
    "file adds around a prompt (BOS when tokenizer.ggml.add_bos_token, EOS when add_eos_token), as\n"
    "llama.cpp's add_special. --decode turns ids (separated by commas or spaces) back into text.\n"
    "Only the tokenizer is loaded, so FILE may be a vocabulary-only GGUF (no tensors).\n";

/* Parses "1,2, 3 4" into a malloc'ed array. Returns -1 on a bad number. */
static int parse_ids(const char *s, ob_token **out, size_t *n) {
    size_t cap = 64, k = 0;
    ob_token *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    const char *p = s;
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == '[' || *p == ']') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) { free(v); return -1; }
        if (k == cap) {
            ob_token *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) { free(v); return -1; }
            v = nv;
        }
        v[k++] = (ob_token)x;
        p = end;
    }
    *out = v;
    *n = k;
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    /* this command's own flags, taken out before the shared parser sees the rest */
    int ids_out = 0, add_special = 0, k = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--ids")) ids_out = 1;
        else if (i > 0 && !strcmp(argv[i], "--add-special")) add_special = 1;
        else argv[k++] = argv[i];
    }
    argc = k;
    int r = cli_parse(argc, argv, &o, TOKENIZE_USAGE);
    if (r) return r == 1 ? 0 : r;
    if (!o.model) { fprintf(stderr, "onebit: no model given (use -m FILE)\n"); return 2; }
    size_t len = 0;
    char *text = o.prompt || o.prompt_file ? cli_prompt_text(&o, &len) : cli_read_all(stdin, &len);
    if (!text) return o.prompt_file ? 3 : 6;
    ob_model *m;
    ob_model_params mp = ob_model_default_params();
    mp.vocab_only = 1;   /* the tokenizer is all this needs: vocabulary-only files work too */
    ob_status lst = ob_model_load_file(o.model, &mp, &m);
    if (lst) {
        char what[600];
        snprintf(what, sizeof what, "cannot load '%s'", o.model);
        free(text);
        return cli_fail(lst, what);
    }
    ob_token *ids = NULL;
    size_t n = 0;
    if (o.decode) {
        if (parse_ids(text, &ids, &n) != 0) {
            fprintf(stderr, "onebit: --decode expects token ids separated by commas or spaces\n");
            r = 2;
        }
        for (size_t i = 0; i < n && !r; i++) {
            const char *b;
            size_t bl;
            if (ob_token_bytes(m, ids[i], &b, &bl)) { r = cli_fail(OB_ERR_ARG, "decode"); break; }
            fwrite(b, 1, bl, stdout);
        }
    } else {
        ob_status st = add_special ? cli_tokenize_prompt(m, text, len, !o.no_special, &ids, &n)
                                   : cli_tokenize(m, text, len, !o.no_special, &ids, &n);
        if (st) r = cli_fail(st, "tokenize");
        for (size_t i = 0; i < n && !r; i++) {
            if (o.verbose) {
                const char *b;
                size_t bl;
                ob_token_bytes(m, ids[i], &b, &bl);
                printf("%7d  '", ids[i]);
                for (size_t j = 0; j < bl; j++) {
                    unsigned char c = (unsigned char)b[j];
                    if (c < 32 || c == 127 || c == '\'' || c == '\\') printf("\\x%02x", c);
                    else putchar(c);
                }
                printf("'\n");
            } else if (ids_out) {
                printf(" %d", ids[i]);
            } else {
                printf(i ? ",%d" : "%d", ids[i]);
            }
        }
        if (!o.verbose && !r) putchar('\n');
    }
    free(ids);
    free(text);
    ob_model_free(m);
    return r;
}

/* ---- logits ------------------------------------------------------------------------------------ */

static const char LOGITS_USAGE[] =
    "usage: onebit logits -m FILE (--tokens 1,2,3 | -p TEXT) --out FILE [-c N] [--backend NAME]\n"
    "Evaluates the tokens in one batch and writes the logits of every position as raw little-endian\n"
    "float32, position-major: n_tokens x n_vocab values. The hook for golden tests.\n";

int cmd_logits(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    int r = cli_parse(argc, argv, &o, LOGITS_USAGE);
    if (r) return r == 1 ? 0 : r;
    if (!o.out) { fprintf(stderr, "onebit: logits needs --out FILE\n"); return 2; }
    if (!o.tokens && !o.prompt) { fprintf(stderr, "onebit: logits needs --tokens or -p\n"); return 2; }
    ob_token *ids = NULL;
    size_t n = 0;
    if (o.tokens && (parse_ids(o.tokens, &ids, &n) != 0 || n == 0)) {
        free(ids);
        fprintf(stderr, "onebit: --tokens expects token ids separated by commas\n");
        return 2;
    }
    ob_model *m;
    if ((r = cli_load(&o, &m))) { free(ids); return r; }
    ob_status st = OB_OK;
    if (!ids && (st = cli_tokenize(m, o.prompt, strlen(o.prompt), 1, &ids, &n)) != OB_OK) r = cli_fail(st, "tokenize");
    ob_context *ctx = NULL;
    if (!r && n == 0) { fprintf(stderr, "onebit: no tokens\n"); r = 2; }
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = o.n_ctx > 0 ? o.n_ctx : (int)n;
    if (!r && (st = ob_context_new(m, &cp, &ctx))) r = cli_fail(st, "cannot create a context");
    if (!r && (st = ob_eval(ctx, ids, (int)n, 1))) r = cli_fail(st, "evaluation failed");
    if (!r) {
        FILE *f = fopen(o.out, "wb");
        ob_model_info mi;
        ob_model_get_info(m, &mi);
        int ok = f != NULL;
        for (size_t i = 0; ok && i < n; i++) ok = fwrite(ob_logits(ctx, (int)i), sizeof(float), (size_t)mi.n_vocab, f) == (size_t)mi.n_vocab;
        if (f && fclose(f) != 0) ok = 0;
        if (!ok) { fprintf(stderr, "onebit: cannot write '%s': %s\n", o.out, strerror(errno)); r = 3; }
        else if (o.verbose) fprintf(stderr, "wrote %zu x %d logits to %s\n", n, mi.n_vocab, o.out);
    }
    free(ids);
    ob_context_free(ctx);
    ob_model_free(m);
    return r;
}

/* ---- bench ------------------------------------------------------------------------------------- */

static const char BENCH_USAGE[] =
    "usage: onebit bench -m FILE [--pp N] [--tg N] [-r REPS] [-t THREADS] [--backend NAME] [--json]\n"
    "Measures prompt processing (a batch of N tokens, default 512) and generation (N tokens one at\n"
    "a time, default 128) like llama-bench: median tokens/s over REPS runs (default 3) with the\n"
    "spread, plus peak resident memory. Tokens are pseudo-random ids. N + N must fit the context: the\n"
    "model's training context, or -c N. Each run's speed is shown on stderr as it finishes.\n"
    "  -t, --threads N        threads (default or 0: physical cores)\n";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void summarise(const double *v, int n, double *median, double *sd) {
    double s[1000];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    *median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += v[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    *sd = n > 1 ? sqrt(var / (n - 1)) : 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cmd_bench(int argc, char **argv) {
    cli_opts o;
    cli_opts_init(&o);
    o.pp = 512;
    o.tg = 128;
    o.reps = 3;
    int r = cli_parse(argc, argv, &o, BENCH_USAGE);
    if (r) return r == 1 ? 0 : r;
    ob_model *m;
    if ((r = cli_load(&o, &m))) return r;
    ob_model_info mi;
    ob_model_get_info(m, &mi);
    /* The positions a run needs (one warm-up token, then pp or tg) must exist in the model. */
    int max_ctx = o.n_ctx > 0 ? o.n_ctx : mi.n_ctx_train;
    int need = (o.pp > o.tg ? o.pp : o.tg) + 1;
    if (need > max_ctx) {
        fprintf(stderr, "onebit: --pp %d / --tg %d need %d context positions but the %s holds %d\n", o.pp, o.tg,
                need, o.n_ctx > 0 ? "context (-c)" : "model's training context", max_ctx);
        ob_model_free(m);
        return 2;
    }
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = need;
    ob_context *ctx;
    ob_status st = ob_context_new(m, &cp, &ctx);
    if (st) { ob_model_free(m); return cli_fail(st, "cannot create a context"); }
    int n = o.pp > o.tg ? o.pp : o.tg;
    ob_token *toks = malloc(((size_t)n + 1) * sizeof *toks);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i <= n && toks; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        toks[i] = (ob_token)(x % (uint64_t)(mi.n_vocab < 100000 ? mi.n_vocab : 100000));
    }
    double pp[1000], tg[1000];
    int threads = mi.n_threads;
    /* one warm-up token so page faults and lazy allocations are not measured */
    if (toks && (st = ob_eval(ctx, toks, 1, 0)) == OB_OK) {
        for (int rep = 0; rep < o.reps && !st; rep++) {
            if (o.pp > 0) {
                ob_context_truncate(ctx, 0);
                double t0 = now_s();
                st = ob_eval(ctx, toks, o.pp, 0);
                pp[rep] = o.pp / (now_s() - t0);
                if (!st) fprintf(stderr, "pp%d run %d/%d: %.2f tok/s\n", o.pp, rep + 1, o.reps, pp[rep]);
            }
            if (o.tg > 0 && !st) {
                ob_context_truncate(ctx, 0);
                double t0 = now_s();
                for (int i = 0; i < o.tg && !st; i++) st = ob_eval(ctx, toks + i, 1, 0);
                tg[rep] = o.tg / (now_s() - t0);
                if (!st) fprintf(stderr, "tg%d run %d/%d: %.2f tok/s\n", o.tg, rep + 1, o.reps, tg[rep]);
            }
        }
    }
    if (!toks) st = OB_ERR_NOMEM;
    if (st) r = cli_fail(st, "bench");
    else {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double rss_mib = (double)ru.ru_maxrss / 1024.0;
        double pm = 0, ps = 0, tm = 0, ts = 0;
        if (o.pp > 0) summarise(pp, o.reps, &pm, &ps);
        if (o.tg > 0) summarise(tg, o.reps, &tm, &ts);
        if (o.json) {
            printf("{\"model\":\"%s\",\"backend\":\"%s\",\"isa\":\"%s\",\"threads\":%d,\"reps\":%d,\"pp\":%d,\"pp_tps\":%.3f,\"pp_sd\":%.3f,"
                   "\"tg\":%d,\"tg_tps\":%.3f,\"tg_sd\":%.3f,\"peak_rss_mib\":%.1f,\"file_mib\":%.1f}\n",
                   o.model, mi.backend, mi.isa, threads, o.reps, o.pp, pm, ps, o.tg, tm, ts, rss_mib,
                   (double)mi.file_size / 1048576.0);
        } else {
            printf("| model | size | backend | threads | test | t/s |\n|---|---|---|---|---|---|\n");
            char sz[32], be[64];
            snprintf(sz, sizeof sz, "%.1f MiB", (double)mi.file_size / 1048576.0);
            snprintf(be, sizeof be, *mi.isa ? "%s (%s)" : "%s", mi.backend, mi.isa);
            if (o.pp > 0) printf("| %s | %s | %s | %d | pp%d | %.2f ± %.2f |\n", mi.name, sz, be, threads, o.pp, pm, ps);
            if (o.tg > 0) printf("| %s | %s | %s | %d | tg%d | %.2f ± %.2f |\n", mi.name, sz, be, threads, o.tg, tm, ts);
            printf("peak resident memory: %.1f MiB (file %.1f MiB)\n", rss_mib, (double)mi.file_size / 1048576.0);
        }
    }
    free(toks);
    ob_context_free(ctx);
    ob_model_free(m);
    return r;
}
