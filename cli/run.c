/* run.c — `onebit run` (one answer) and `onebit chat` (an interactive conversation): chat prompts,
 * streaming to stdout, Ctrl-C to stop an answer. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ---- run and chat ------------------------------------------------------------------------------ */

static int write_text(const char *text, size_t len, void *user) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return cli_interrupted;
}

static void print_stats(const ob_generate_result *r) {
    fprintf(stderr, "\n[prompt: %d tokens (%d cached) in %.0f ms, %.1f tok/s | generated: %d tokens in %.0f ms, %.1f tok/s]\n",
            r->n_prompt, r->n_reused, r->t_prompt_ms, r->t_prompt_ms > 0 ? r->n_prompt * 1000.0 / r->t_prompt_ms : 0.0,
            r->n_generated, r->t_gen_ms, r->t_gen_ms > 0 ? r->n_generated * 1000.0 / r->t_gen_ms : 0.0);
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
    if ((st = cli_tokenize_prompt(m, text, tlen, !o.raw, &toks, &nt))) { r = cli_fail(st, "tokenize"); goto out; }
    if (nt == 0) { fprintf(stderr, "onebit: the prompt is empty\n"); r = 2; goto out; }
    cli_install_sigint();
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
    r = cli_interrupted ? 130 : 0;
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
    return cli_interrupted;
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
    /* the conversation's start gets the BOS the file asks for; a later turn continues the cache */
    st = skip ? cli_tokenize(m, full + skip, strlen(full + skip), 1, &delta, &nd)
              : cli_tokenize_prompt(m, full, strlen(full), 1, &delta, &nd);
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
    cli_install_sigint();
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
        cli_interrupted = 0;
        errno = 0;
        ssize_t got = getline(&line, &lcap, stdin);
        if (got < 0) {
            if (errno == EINTR && cli_interrupted) { clearerr(stdin); if (tty) fputs("\n(Ctrl-D or /exit to quit)", stdout); continue; }
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
        if (cli_interrupted) fputs(" [stopped]", stdout);
        fputc('\n', stdout);
        if (o.stats) print_stats(&res);
        if (chat_push(&s, "assistant", reply.s ? reply.s : strdup(""))) { r = cli_fail(OB_ERR_NOMEM, "chat"); break; }
        if (cli_interrupted) ob_context_truncate(ctx, 0); /* the cache no longer ends on a finished turn */
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
