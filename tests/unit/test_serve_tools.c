/* test_serve_tools.c — the server's answer parser (cli/serve_tools.c) on fixed texts.
 *
 * Each case is a generated text with the content, reasoning and tool calls it must give. Every
 * case is fed whole, split at every byte position, and byte by byte; each way must give the same
 * parts, and the streaming events (content, reasoning, call starts, argument pieces), put together,
 * must give them too. Also: the template detection of the tool-call syntax.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static int failures;
#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            failures++;                                                                      \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                           \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
        }                                                                                    \
    } while (0)

typedef struct tcase {
    const char *what;
    int reasoning;
    tool_format fmt;
    const char *prefix; /* what the prompt already holds of the answer ("" = nothing) */
    const char *text;
    const char *content, *reasoning_text;
    int n_calls;
    const char *names[3], *args[3];
} tcase;

static const tcase CASES[] = {
    {"thinking then answer", 1, TOOLFMT_NONE, "", "<think>\nLet me think.\n</think>\n\nHello!", "Hello!",
     "Let me think.", 0, {0}, {0}},
    {"empty thinking block", 1, TOOLFMT_HERMES, "", "<think>\n\n</think>\n\nHi there", "Hi there", "", 0, {0}, {0}},
    {"no thinking", 1, TOOLFMT_NONE, "", "Hello <b>world</b> \n", "Hello <b>world</b> \n", "", 0, {0}, {0}},
    {"raw mode keeps the block", 0, TOOLFMT_NONE, "", "<think>\nx\n</think>\n\nHi", "<think>\nx\n</think>\n\nHi", "",
     0, {0}, {0}},
    {"unterminated thinking", 1, TOOLFMT_NONE, "", "<think>\nstill going", "", "still going", 0, {0}, {0}},
    {"thinking opened by the prompt", 1, TOOLFMT_NONE, "<think>\n", "ponder\n</think>\n\nok", "ok", "ponder", 0,
     {0}, {0}},
    {"hermes call after content", 1, TOOLFMT_HERMES, "",
     "I'll check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
     "I'll check.", "", 1, {"get_weather"}, {"{\"city\": \"Paris\"}"}},
    {"two hermes calls", 1, TOOLFMT_HERMES, "",
     "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b.c\", "
     "\"arguments\": {\"x\": [1, 2]}}\n</tool_call>",
     "", "", 2, {"a", "b.c"}, {"{}", "{\"x\": [1, 2]}"}},
    {"reasoning then call", 1, TOOLFMT_HERMES, "",
     "<think>\nneed data\n</think>\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"a}b\\\"c{\", \"n\": {\"y\": "
     "[1, {\"z\": 2}]}}}\n</tool_call>",
     "", "need data", 1, {"f"}, {"{\"q\": \"a}b\\\"c{\", \"n\": {\"y\": [1, {\"z\": 2}]}}"}},
    {"keys in another order", 1, TOOLFMT_HERMES, "", "<tool_call>\n{\"arguments\": {\"a\": 1}, \"name\": \"f\"}\n</tool_call>",
     "", "", 1, {"f"}, {"{\"a\":1}"}},
    {"not a call after all", 1, TOOLFMT_HERMES, "", "<tool_call>\nnot json\n</tool_call> after",
     "<tool_call>\nnot json\n</tool_call> after", "", 0, {0}, {0}},
    {"call without its closing tag", 1, TOOLFMT_HERMES, "",
     "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"k\": true}}", "", "", 1, {"f"}, {"{\"k\": true}"}},
    {"arguments as a JSON string", 1, TOOLFMT_HERMES, "", "<tool_call>{\"name\": \"f\", \"arguments\": \"{}\"}</tool_call>",
     "", "", 1, {"f"}, {"\"{}\""}},
    {"forced call: the prompt opened it", 1, TOOLFMT_HERMES, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ",
     "{\"city\": \"Oslo\"}}\n", "", "", 1, {"get_weather"}, {"{\"city\": \"Oslo\"}"}},
    {"no tool syntax: markers are text", 1, TOOLFMT_NONE, "", "<tool_call>{\"name\": \"f\"}</tool_call>",
     "<tool_call>{\"name\": \"f\"}</tool_call>", "", 0, {0}, {0}},
    {"llama call", 0, TOOLFMT_LLAMA3, "", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", "", 1,
     {"get_weather"}, {"{\"city\": \"Paris\"}"}},
    {"llama python_tag call", 0, TOOLFMT_LLAMA3, "", "<|python_tag|>{\"name\": \"s\", \"parameters\": {\"q\": \"x\"}}", "",
     "", 1, {"s"}, {"{\"q\": \"x\"}"}},
    {"llama JSON that is not a call", 0, TOOLFMT_LLAMA3, "", "{\"answer\": 42}", "{\"answer\": 42}", "", 0, {0}, {0}},
    {"llama text", 0, TOOLFMT_LLAMA3, "", "The weather is {unknown}.", "The weather is {unknown}.", "", 0, {0}, {0}},
};

typedef struct got {
    sbuf content, reasoning, names[RP_MAX_CALLS], args[RP_MAX_CALLS];
    int n_calls;
} got;

static void put(sbuf *b, const char *s, size_t n) {
    char *p = realloc(b->p, b->len + n + 1);
    if (!p) abort();
    memcpy(p + b->len, s, n);
    b->p = p;
    b->len += n;
    b->p[b->len] = 0;
}

static void drain(reply_parser *p, got *g) {
    for (size_t i = 0; i < p->n_ev; i++) {
        const rp_event *e = &p->ev[i];
        const char *t = p->ev_text.p + e->off;
        if (e->kind == RP_CONTENT) put(&g->content, t, e->len);
        else if (e->kind == RP_REASONING) put(&g->reasoning, t, e->len);
        else if (e->kind == RP_CALL_BEGIN) {
            CHECK(e->call == g->n_calls, "calls begin in order");
            put(&g->names[e->call], p->calls[e->call].name.p, p->calls[e->call].name.len);
            put(&g->args[e->call], "", 0);
            g->n_calls++;
        } else {
            CHECK(e->call < g->n_calls, "arguments after the call's start");
            put(&g->args[e->call], t, e->len);
        }
    }
    rp_events_clear(p);
}

static const char *str(const sbuf *b) { return b->p ? b->p : ""; }

static void check_parts(const tcase *c, const char *how, const char *content, const char *reasoning, int n_calls,
                        const sbuf *names, const sbuf *args, const rp_call *calls) {
    CHECK(!strcmp(content, c->content), "%s (%s): content '%s', want '%s'", c->what, how, content, c->content);
    CHECK(!strcmp(reasoning, c->reasoning_text), "%s (%s): reasoning '%s', want '%s'", c->what, how, reasoning,
          c->reasoning_text);
    CHECK(n_calls == c->n_calls, "%s (%s): %d calls, want %d", c->what, how, n_calls, c->n_calls);
    for (int i = 0; i < n_calls && i < c->n_calls; i++) {
        const char *nm = names ? str(&names[i]) : str(&calls[i].name), *ar = args ? str(&args[i]) : str(&calls[i].args);
        CHECK(!strcmp(nm, c->names[i]), "%s (%s): call %d name '%s', want '%s'", c->what, how, i, nm, c->names[i]);
        CHECK(!strcmp(ar, c->args[i]), "%s (%s): call %d arguments '%s', want '%s'", c->what, how, i, ar, c->args[i]);
    }
}

/* Feeds the text in pieces that end at the given cut positions (ascending, < len). */
static void run_case(const tcase *c, const size_t *cuts, int n_cuts, const char *how) {
    reply_parser *p = rp_new(c->reasoning, c->fmt, 42, 1);
    got g;
    memset(&g, 0, sizeof g);
    if (c->prefix[0]) rp_feed(p, c->prefix, strlen(c->prefix));
    drain(p, &g);
    size_t at = 0, len = strlen(c->text);
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        rp_feed(p, c->text + at, end - at);
        drain(p, &g);
        at = end;
    }
    rp_finish(p);
    drain(p, &g);
    CHECK(!p->oom, "%s: out of memory", c->what);
    check_parts(c, how, str(&p->content), str(&p->reasoning), p->n_calls, NULL, NULL, p->calls);
    char how2[64];
    snprintf(how2, sizeof how2, "%s, events", how);
    check_parts(c, how2, str(&g.content), str(&g.reasoning), g.n_calls, g.names, g.args, NULL);
    for (int i = 0; i < p->n_calls; i++) {
        CHECK(!strncmp(p->calls[i].id, "call_", 5) && strlen(p->calls[i].id) == 29, "%s: id '%s'", c->what, p->calls[i].id);
        for (int k = 0; k < i; k++) CHECK(strcmp(p->calls[i].id, p->calls[k].id), "%s: ids differ", c->what);
    }
    free(g.content.p);
    free(g.reasoning.p);
    for (int i = 0; i < RP_MAX_CALLS; i++) {
        free(g.names[i].p);
        free(g.args[i].p);
    }
    rp_free(p);
}

int main(void) {
    int n_cases = (int)(sizeof CASES / sizeof CASES[0]);
    for (int k = 0; k < n_cases; k++) {
        const tcase *c = &CASES[k];
        size_t len = strlen(c->text);
        run_case(c, NULL, 0, "whole");
        for (size_t cut = 1; cut < len; cut++) {
            char how[32];
            snprintf(how, sizeof how, "split at %zu", cut);
            run_case(c, &cut, 1, how);
        }
        size_t *every = malloc(len * sizeof *every);
        for (size_t i = 1; i < len; i++) every[i - 1] = i;
        run_case(c, every, (int)len - 1, "byte by byte");
        free(every);
    }

    /* the syntax comes from the template's own text */
    CHECK(tool_format_of(NULL) == TOOLFMT_NONE, "no template");
    CHECK(tool_format_of("{{ '<tool_call>\\n' }}") == TOOLFMT_HERMES, "Qwen");
    CHECK(tool_format_of("{{- \"<|python_tag|>\" + x }}") == TOOLFMT_LLAMA3, "Llama 3.1");
    CHECK(tool_format_of("{{ messages }}") == TOOLFMT_NONE, "plain");

    printf("%s: %d cases, %d failures\n", failures ? "FAIL" : "ok", n_cases, failures);
    return failures ? 1 : 0;
}
