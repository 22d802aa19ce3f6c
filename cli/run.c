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

/* Counts what reaches stdout, so that an answer with no text at all can be told apart. */
typedef struct out_count { size_t bytes; } out_count;

static int write_text(const char *text, size_t len, void *user) {
    out_count *c = user;
    if (c) c->bytes += len;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return cli_interrupted;
}

/* Says on stderr why an answer ended early: the context was full. Returns 1 when it was. */
static int note_context_full(const ob_generate_result *r, int n_ctx) {
    if (r->finish != 2) return 0;
    fprintf(stderr, "\nonebit: stopped: the context of %d tokens is full (a larger -c gives more room)\n", n_ctx);
    return 1;
}

static void print_stats(const ob_generate_result *r) {
    fprintf(stderr, "\n[prompt: %d tokens (%d cached) in %.0f ms, %.1f tok/s | generated: %d tokens in %.0f ms, %.1f tok/s]\n",
            r->n_prompt, r->n_reused, r->t_prompt_ms, r->t_prompt_ms > 0 ? r->n_prompt * 1000.0 / r->t_prompt_ms : 0.0,
            r->n_generated, r->t_gen_ms, r->t_gen_ms > 0 ? r->n_generated * 1000.0 / r->t_gen_ms : 0.0);
    if (r->t_grammar_ms > 0)
        fprintf(stderr, "[grammar: %.1f ms of the generation's %.0f ms (%.1f%%), %.2f ms a token]\n", r->t_grammar_ms,
                r->t_gen_ms, r->t_gen_ms > 0 ? 100.0 * r->t_grammar_ms / r->t_gen_ms : 0.0,
                r->n_generated > 0 ? r->t_grammar_ms / r->n_generated : 0.0);
}


static const char RUN_USAGE[] =
    "usage: onebit run -m FILE (-p TEXT | -f FILE) [options]\n"
    "Generates a reply to one prompt and streams it to stdout.\n"
    "  -m, --model FILE       GGUF model\n"
    "  -p, --prompt TEXT      the prompt;  -f, --file FILE  read it from a file ('-' = stdin)\n"
    "  -s, --system TEXT      system message (chat mode)\n"
    "      --raw              plain text continuation, no chat template\n"
    "      --no-think         Qwen3 non-thinking mode (enable_thinking=false)\n"
    "  -n, --max-tokens N     stop after N tokens; 0 (the default) = no limit: until the end token or a\n"
    "                         full context\n"
    "  -c, --ctx N            context size, 1..4194304 (default or 0: min(model, 4096))\n"
    "  -t, --threads N        threads (default or 0: physical cores)\n"
    "      --backend NAME     scalar | cpu (default: best available)\n"
    "      --temp T (0..2, 0 = greedy) --top-k K (-1..2^30, 0 = off) --top-p P (0..1) --min-p P (0..1)\n"
    "      --seed S --greedy (= --temp 0)\n"
    "      --repeat-penalty R (0.01..100) --repeat-last-n N (-1..2^24, -1 = whole context)\n"
    "      --presence-penalty P --frequency-penalty F (-2..2)\n"
    "      --stop TEXT        stop string (repeatable)\n"
    "      --grammar-file F   the output matches the GBNF grammar in F (llama.cpp's format)\n"
    "      --json-schema F    the output is JSON valid against the JSON Schema in F\n"
    "      --json             the output is a JSON object\n"
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
    if (plen == 0) { /* in chat mode the template alone would still make tokens: refuse it here */
        fprintf(stderr, "onebit: the prompt is empty\n");
        free(prompt);
        return 2;
    }
    char *grammar = NULL, *json_schema = NULL; /* checked before the model loads */
    if ((r = cli_constraint(&o, &grammar, &json_schema))) { free(prompt); return r; }
    ob_model *m;
    if ((r = cli_load(&o, &m))) { free(prompt); free(grammar); free(json_schema); return r; }
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
        st = ob_chat_render(m, msgs, nm, 1, o.think, &rendered);
        if (st == OB_ERR_UNSUPPORTED && !ob_model_chat_template(m)) {
            /* No template in the file: plain completion, and say so. */
            fprintf(stderr, "onebit: the model has no chat template: continuing the prompt as plain text (--raw)\n");
            o.raw = 1;
        } else if (st) {
            r = cli_fail(st, "chat template");
            goto out;
        } else {
            text = rendered;
            tlen = strlen(rendered);
        }
    }
    if ((st = cli_tokenize_prompt(m, text, tlen, !o.raw, &toks, &nt))) { r = cli_fail(st, "tokenize"); goto out; }
    if (nt == 0) { fprintf(stderr, "onebit: the prompt is empty\n"); r = 2; goto out; }
    /* Refused before anything is printed (--raw echoes the prompt), like the server's 400. */
    int n_ctx = ob_context_n_ctx(ctx);
    if (nt >= (size_t)n_ctx) {
        fprintf(stderr, "onebit: the prompt is %zu tokens but the context holds %d: use a larger -c or a shorter prompt\n",
                nt, n_ctx);
        r = 5;
        goto out;
    }
    cli_install_sigint();
    out_count shown = {0};
    ob_think_strip strip;
    ob_think_strip_init(&strip, write_text, &shown);
    ob_generate_params gp = {0};
    gp.sampling = o.sampling;
    gp.max_tokens = o.max_tokens;
    gp.stop = o.n_stop ? (const char *const *)o.stop : NULL;
    /* In chat mode Qwen3's empty think block is not part of the answer. */
    gp.on_text = o.raw ? write_text : ob_think_strip_push;
    gp.user = o.raw ? (void *)&shown : (void *)&strip;
    gp.grammar = grammar;
    gp.json_schema = json_schema;
    ob_generate_result res;
    if (o.raw) fwrite(prompt, 1, plen, stdout);
    st = ob_generate(ctx, toks, nt, &gp, &res);
    if (st) { r = cli_fail(st, "generation failed"); goto out; }
    /* What the filter still holds is the start of an empty think block; cut off by a full
     * context before any answer, it is not shown. */
    if (!o.raw && !(res.finish == 2 && shown.bytes == 0)) ob_think_strip_flush(&strip);
    fputc('\n', stdout);
    if (o.stats) print_stats(&res);
    r = cli_interrupted ? 130 : 0;
    /* A full context is said on stderr; with no answer at all, it is an error. */
    if (note_context_full(&res, n_ctx) && shown.bytes == 0 && !r) {
        fprintf(stderr, "onebit: the prompt (%zu tokens) left no room for an answer\n", nt);
        r = 5;
    }
out:
    free(toks);
    free(rendered);
    free(prompt);
    free(grammar);
    free(json_schema);
    ob_context_free(ctx);
    ob_model_free(m);
    return r;
}

static const char CHAT_USAGE[] =
    "usage: onebit chat -m FILE [options]\n"
    "Interactive chat. Type a message and press Enter. Ctrl-C stops the answer; Ctrl-D or /exit quits.\n"
    "Commands: /reset (new conversation), /exit.\n"
    "  -m, --model FILE       GGUF model\n"
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

typedef struct chat_out { reply_buf reply; ob_think_strip strip; } chat_out;

static int chat_text(const char *text, size_t len, void *user) {
    chat_out *co = user;
    reply_buf *b = &co->reply;
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
    return ob_think_strip_push(text, len, &co->strip);
}

/* What chat shows: the reply without Qwen3's empty think block (the history keeps it all). */
static int chat_show(const char *text, size_t len, void *user) {
    (void)user;
    return write_text(text, len, NULL);
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
    if (o.grammar_file || o.json_schema_file || o.json) {
        fprintf(stderr, "onebit chat: --grammar-file, --json-schema and --json are options of `onebit run`\n");
        return 2;
    }
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
    ob_model_info mi;
    ob_model_get_info(m, &mi);
    fprintf(stderr, "onebit chat: %s (%s, context %d tokens). Type a message and press Enter; "
                    "/reset starts over, /exit or Ctrl-D quits, Ctrl-C stops an answer.\n",
            mi.name && mi.name[0] ? mi.name : o.model, mi.backend, ob_context_n_ctx(ctx));
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
            if (tty) fputc('\n', stdout); /* Ctrl-D: the shell's prompt starts on a line of its own */
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
        chat_out co = {0};
        ob_think_strip_init(&co.strip, chat_show, NULL);
        ob_generate_params gp = {0};
        gp.sampling = o.sampling;
        gp.max_tokens = o.max_tokens;
        gp.stop = o.n_stop ? (const char *const *)o.stop : NULL;
        gp.on_text = chat_text;
        gp.user = &co;
        ob_generate_result res;
        st = ob_generate(ctx, toks, nt, &gp, &res);
        free(toks);
        if (st == OB_ERR_CONTEXT) {
            fprintf(stdout, "\n(the conversation no longer fits the context of %d tokens: /reset to start over)\n",
                    ob_context_n_ctx(ctx));
            chat_reset(&s, s.n - 1);
            free(co.reply.s);
            continue;
        }
        if (st) { free(co.reply.s); r = cli_fail(st, "generation failed"); break; }
        ob_think_strip_flush(&co.strip);
        if (cli_interrupted) fputs(" [stopped]", stdout);
        fputc('\n', stdout);
        fflush(stdout);
        if (note_context_full(&res, ob_context_n_ctx(ctx)))
            fputs("onebit: /reset starts a new conversation\n", stderr);
        if (o.stats) print_stats(&res);
        if (chat_push(&s, "assistant", co.reply.s ? co.reply.s : strdup(""))) { r = cli_fail(OB_ERR_NOMEM, "chat"); break; }
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
