/* test_grammar.c — unit tests for constrained output: the GBNF compiler and matcher (grammar.c),
 * JSON Schema -> GBNF (json_schema.c) and the masking in the generation loop (gen_grammar.c).
 *
 * Checks: sentences accepted and refused (repetition bounds, classes, negation, escapes, Unicode
 * split across tokens, overlong UTF-8), error messages with their line and column, schema errors
 * with their path; on the random-weight tiny model (build/models/tiny.gguf, the Qwen3 vocabulary):
 * the one-walk vocabulary mask equals checking every token on its own, and every generated token
 * (greedy and sampled, penalties on) is one the grammar allows, greedy picking the best allowed
 * logit, with end-of-generation only where the grammar can end. Run from the repository root.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "json_schema.h"
#include "onebit.h"

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

/* Does the grammar accept text as a whole sentence (fed in pieces of step bytes)? -1: no parse. */
static int accepts(const char *gbnf, const char *text, size_t step) {
    char err[256];
    gram_grammar *g;
    if (gram_parse(gbnf, strlen(gbnf), &g, err, sizeof err)) {
        printf("  (grammar error: %s)\n", err);
        return -1;
    }
    gram_matcher *m = gram_matcher_new(g, err, sizeof err);
    int ok = m != NULL;
    size_t n = strlen(text);
    for (size_t i = 0; ok && i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        ok = gram_can_accept(m, text + i, k) && gram_accept(m, text + i, k) == 0;
    }
    ok = ok && gram_can_end(m);
    gram_matcher_free(m);
    gram_free(g);
    return ok;
}

static void test_sentences(void) {
    static const struct { const char *g, *text; int want; } cases[] = {
        {"root ::= \"ab\"{2,3}", "abab", 1},
        {"root ::= \"ab\"{2,3}", "ab", 0},
        {"root ::= \"ab\"{2,3}", "abababab", 0},
        {"root ::= [a-c]* \"d\"", "d", 1},
        {"root ::= [a-c]* \"d\"", "abcabcd", 1},
        {"root ::= [a-c]+ \"d\"", "d", 0},
        {"root ::= [^a-c\\n]?", "", 1},
        {"root ::= [^a-c\\n]?", "b", 0},
        {"root ::= [^a-c\\n]?", "\xe2\x86\x92", 1},
        {"root ::= . .", "\xc3\xa9x", 1},
        {"root ::= \"\\x41\\u00e9\\U0001F600\\t\"", "A\xc3\xa9\xf0\x9f\x98\x80\t", 1},
        {"root ::= [\\x00-\\x7f]", "\xc1\x81", 0},               /* overlong 'A' */
        {"root ::= .", "\xf0\x80\x80\xa0", 0},                   /* overlong space */
        {"root ::= .", "\xed\xa0\x80", 0},                       /* a surrogate */
        {"root ::= x{0,2} y\nx ::= \"a\" | \"b\"\ny ::= \"!\"", "ba!", 1},
        {"root ::= x{0,2} y\nx ::= \"a\" | \"b\"\ny ::= \"!\"", "aba!", 0},
        {"root ::= (\"(\" root \")\")?", "((()))", 1},
        {"root ::= (\"(\" root \")\")?", "(()", 0},
        {"root ::= a\n  | b # alternatives on the next line\na ::= \"1\"\nb ::= \"2\"", "2", 1},
        {"root ::= ( \"x\"\n  \"y\" )+", "xyxy", 1},
        {"root ::= \"\"", "", 1},
        {"root ::= e\ne ::= t ((\"+\" | \"-\") t)*\nt ::= [0-9]+ | \"(\" e \")\"", "1+(2-3)+45", 1},
        {"root ::= e\ne ::= t ((\"+\" | \"-\") t)*\nt ::= [0-9]+ | \"(\" e \")\"", "1+(2-3", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t step = 1; step <= 3; step += 2) {
            int got = accepts(cases[i].g, cases[i].text, step);
            CHECK(got == cases[i].want, "case %zu (step %zu) '%s' on %s: got %d", i, step, cases[i].text, cases[i].g,
                  got);
        }
}

static void test_errors(void) {
    static const struct { const char *g, *msg; } cases[] = {
        {"root ::= \"a\" | b", "line 1, column 16: rule 'b' is used but never defined"},
        {"root ::= x\nx ::= x \"a\"", "line 2, column 1: rule 'x' is left-recursive"},
        {"root ::= y x\ny ::= \"\"?\nx ::= root", "left-recursive"},
        {"root ::= \"abc", "line 1, column 10: unterminated string literal"},
        {"root ::= [b-a]", "backwards"},
        {"root ::= (\"a\"", "expected ')'"},
        {"start ::= \"a\"", "no 'root' rule"},
        {"root ::= \"\\q\"", "unknown escape"},
        {"root ::= \"\\x4\"", "needs 2 hexadecimal digits"},
        {"root ::= \"a\"{3,1}", "n < m"},
        {"root ::= *", "nothing before it to repeat"},
        {"root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' is defined twice"},
        {"root \"a\"", "expected '::='"},
        {"root ::= \"a\"{1000000}", "repetition count"},
        {"root ::= <tok>", "token references"},
        {"", "no 'root' rule"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        gram_grammar *g = NULL;
        int rc = gram_parse(cases[i].g, strlen(cases[i].g), &g, err, sizeof err);
        CHECK(rc == -1 && strstr(err, cases[i].msg), "case %zu: %s -> '%s'", i, cases[i].g, err);
        gram_free(g);
    }
    CHECK(ob_grammar_check("root ::= [") == OB_ERR_ARG && strstr(ob_last_error(), "line 1"), "%s", ob_last_error());
    CHECK(ob_grammar_check("root ::= [a-z]+") == OB_OK, "%s", ob_last_error());
}

static void test_schema(void) {
    static const struct { const char *schema; int ok; const char *msg; const char *yes, *no; } cases[] = {
        {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\",\"maxLength\":2}},"
         "\"required\":[\"a\"],\"additionalProperties\":false}", 1, NULL, "{\"a\": -12, \"b\":\"xy\"}", "{\"b\":\"x\"}"},
        {"{\"type\":\"array\",\"items\":{\"enum\":[1,\"x\",null]},\"minItems\":2,\"maxItems\":3}", 1, NULL,
         "[1, \"x\", null]", "[1]"},
        {"{\"type\":\"string\",\"format\":\"date-time\"}", 1, NULL, "\"2026-12-07T05:14:21Z\"", "\"2026-02-30T05:14:21Z\""},
        {"{\"type\":\"string\",\"format\":\"uuid\"}", 1, NULL, "\"0123abcd-0000-4000-8000-0123456789ab\"", "\"0123\""},
        {"{\"anyOf\":[{\"type\":\"null\"},{\"const\":{\"k\":[1,\"\\u00e9\"]}}]}", 1, NULL, "{\"k\":[1,\"\xc3\xa9\"]}", "{}"},
        {"{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/n\"},"
         "{\"type\":\"null\"}]}},\"required\":[\"next\"]}},\"$ref\":\"#/$defs/n\"}", 1, NULL,
         "{\"next\":{\"next\":null}}", "{\"next\":{}}"},
        {"{\"type\":\"integer\",\"minimum\":1}", 1, NULL, "7", "0"},
        {"{\"type\":\"string\",\"pattern\":\"^a\"}", 0, "at /: the keyword 'pattern' is not supported", NULL, NULL},
        {"{\"properties\":{\"a\":{\"maximum\":3}}}", 0, "at /properties/a: the keyword 'maximum'", NULL, NULL},
        {"{\"$ref\":\"#/$defs/x\"}", 0, "points at nothing", NULL, NULL},
        {"{\"type\":\"object\",}", 0, "invalid JSON at byte 17", NULL, NULL},
        {"{\"type\":\"text\"}", 0, "'type' must be one of", NULL, NULL},
        {"false", 0, "matches nothing", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        char *gbnf = NULL;
        int rc = json_schema_to_gbnf(cases[i].schema, strlen(cases[i].schema), &gbnf, err, sizeof err);
        if (!cases[i].ok) {
            CHECK(rc == -1 && strstr(err, cases[i].msg), "schema %zu: '%s'", i, err);
            continue;
        }
        CHECK(rc == 0, "schema %zu: %s", i, err);
        if (rc) continue;
        CHECK(accepts(gbnf, cases[i].yes, 2) == 1, "schema %zu should accept %s:\n%s", i, cases[i].yes, gbnf);
        CHECK(accepts(gbnf, cases[i].no, 2) == 0, "schema %zu should refuse %s:\n%s", i, cases[i].no, gbnf);
        free(gbnf);
    }
    char *g = NULL;
    CHECK(ob_json_schema_to_grammar("{\"type\":\"string\",\"pattern\":\"x\"}", &g) == OB_ERR_UNSUPPORTED, "pattern");
    CHECK(ob_json_schema_to_grammar("{\"type\":\"object\"}", &g) == OB_OK && g && strstr(g, "root ::="), "object");
    free(g);
}

/* ---- on a real vocabulary ------------------------------------------------------------------- */

typedef struct { const char **bytes; uint32_t *lens; uint8_t *kind; int n; } vocab;

static void vocab_load(const ob_model *m, vocab *v) {
    ob_model_info info;
    ob_model_get_info(m, &info);
    v->n = info.n_vocab;
    v->bytes = calloc((size_t)v->n, sizeof *v->bytes);
    v->lens = calloc((size_t)v->n, sizeof *v->lens);
    v->kind = calloc((size_t)v->n, 1);
    for (int i = 0; i < v->n; i++) {
        size_t len = 0;
        if (ob_token_bytes(m, i, &v->bytes[i], &len)) v->bytes[i] = "";
        v->lens[i] = (uint32_t)len;
        v->kind[i] = ob_token_is_eog(m, i) ? 1 : len ? 0 : 2;
    }
}

static void vocab_free(vocab *v) {
    free(v->bytes);
    free(v->lens);
    free(v->kind);
}

/* The vocabulary mask in one walk equals every token checked on its own, along a JSON text. */
static void test_mask(const vocab *v) {
    char err[512];
    char *gbnf = NULL;
    const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"},"
                         "\"when\":{\"type\":\"string\",\"format\":\"date\"}},\"required\":[\"name\",\"n\",\"when\"]}";
    CHECK(json_schema_to_gbnf(schema, strlen(schema), &gbnf, err, sizeof err) == 0, "%s", err);
    gram_grammar *g = NULL;
    CHECK(gram_parse(gbnf, strlen(gbnf), &g, err, sizeof err) == 0, "%s", err);
    gram_matcher *m = gram_matcher_new(g, err, sizeof err);
    gram_vocab *gv = gram_vocab_new(v->bytes, v->lens, v->kind, v->n);
    uint8_t *allowed = malloc((size_t)v->n);
    const char *text = "{\"name\": \"caf\xc3\xa9 \\u00e9\", \"n\": -42, \"when\": \"2026-12-07\"}";
    size_t pos = 0, tlen = strlen(text);
    int steps = 0;
    while (m && gv && allowed) {
        int count = gram_mask(m, gv, allowed), agree = 1, c2 = 0;
        for (int i = 0; i < v->n; i++) {
            int ok = gram_token_ok(m, gv, i);
            c2 += ok;
            if (ok != allowed[i] && agree) {
                agree = 0;
                CHECK(0, "token %d ('%.*s') at byte %zu: mask %d, alone %d", i, (int)v->lens[i], v->bytes[i], pos,
                      allowed[i], ok);
            }
        }
        CHECK(count == c2, "count %d vs %d", count, c2);
        CHECK(count > 0, "nothing allowed at byte %zu", pos);
        if (pos >= tlen) {
            CHECK(gram_can_end(m), "the text is a complete sentence");
            break;
        }
        size_t k = 1 + (size_t)(steps * 7 % 3); /* 1..3 bytes at a time, splitting é sometimes */
        if (k > tlen - pos) k = tlen - pos;
        CHECK(gram_accept(m, text + pos, k) == 0, "cannot advance at %zu", pos);
        pos += k;
        steps++;
    }
    free(allowed);
    gram_vocab_free(gv);
    gram_matcher_free(m);
    gram_free(g);
    free(gbnf);
}

/* Every generated token is allowed; greedy takes the best allowed logit. */
static void test_generate(ob_model *m, const vocab *v) {
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 512;
    ob_context *c = NULL;
    CHECK(ob_context_new(m, &cp, &c) == OB_OK, "%s", ob_last_error());
    if (!c) return;
    const char *schema = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"tag\":{\"enum\":[\"a\",\"bc\"]},"
                         "\"s\":{\"type\":\"string\",\"maxLength\":4},\"xs\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},"
                         "\"maxItems\":2}},\"required\":[\"id\",\"tag\",\"s\",\"xs\"],\"additionalProperties\":false}";
    char err[512];
    char *gbnf = NULL;
    CHECK(json_schema_to_gbnf(schema, strlen(schema), &gbnf, err, sizeof err) == 0, "%s", err);
    gram_grammar *g = NULL;
    CHECK(gram_parse(gbnf, strlen(gbnf), &g, err, sizeof err) == 0, "%s", err);
    gram_vocab *gv = gram_vocab_new(v->bytes, v->lens, v->kind, v->n);
    for (int mode = 0; mode < 5 && g && gv; mode++) {
        ob_generate_params gp;
        memset(&gp, 0, sizeof gp);
        gp.sampling = ob_sampling_default();
        gp.sampling.seed = (uint64_t)mode;
        if (mode == 0) gp.sampling.temperature = 0;
        if (mode == 2) gp.sampling.top_k = 0; /* the full mask every step */
        if (mode == 4) { /* plain temperature: draw first, mask only on a refusal */
            gp.sampling.top_k = 0;
            gp.sampling.top_p = 1.0f;
        }
        if (mode == 3) {
            gp.sampling.repeat_penalty = 1.5f;
            gp.sampling.presence_penalty = -1.0f;
        }
        gp.max_tokens = 300;
        gp.json_schema = schema;
        ob_token prompt[1] = {0};
        ob_gen *gen = NULL;
        CHECK(ob_context_truncate(c, 0) == OB_OK, "truncate");
        CHECK(ob_gen_begin(c, prompt, 1, &gp, &gen) == OB_OK, "%s", ob_last_error());
        gram_matcher *shadow = gram_matcher_new(g, err, sizeof err);
        int n = 0, ended = 0;
        for (; gen && shadow;) {
            ob_gen_event ev;
            if (ob_gen_next(gen, &ev) != OB_OK) {
                CHECK(0, "mode %d: %s", mode, ob_last_error());
                break;
            }
            if (ev == OB_GEN_DONE) break;
            ob_token t = ob_gen_token(gen);
            const float *l = ob_logits(c, -1);
            CHECK(gram_token_ok(shadow, gv, t), "mode %d step %d: token %d is not allowed", mode, n, t);
            if (mode == 0) {
                int best = -1;
                for (int i = 0; i < v->n; i++)
                    if ((best < 0 || l[i] > l[best]) && gram_token_ok(shadow, gv, i)) best = i;
                CHECK(best == t, "greedy step %d: took %d (%g), best allowed %d (%g)", n, t, l[t], best, l[best]);
            }
            if (v->kind[t] == 1) {
                CHECK(gram_can_end(shadow), "an end token where the grammar cannot end");
                ended = 1;
            } else {
                gram_accept(shadow, v->bytes[t], v->lens[t]);
            }
            n++;
        }
        ob_generate_result r;
        if (gen) ob_gen_result(gen, &r);
        CHECK(gen && r.finish == OB_FINISH_STOP && (ended || gram_is_done(shadow)),
              "mode %d: the bounded grammar ends the generation (finish %d after %d tokens)", mode, gen ? r.finish : -1, n);
        gram_matcher_free(shadow);
        ob_gen_free(gen);
    }
    /* a grammar that can only end: the generation stops there, with its text */
    ob_generate_params gp;
    memset(&gp, 0, sizeof gp);
    gp.sampling = ob_sampling_default();
    gp.max_tokens = 50;
    gp.grammar = "root ::= \"yes\" | \"no\"";
    ob_token prompt[1] = {0};
    ob_generate_result r;
    CHECK(ob_context_truncate(c, 0) == OB_OK, "truncate");
    CHECK(ob_generate(c, prompt, 1, &gp, &r) == OB_OK && r.finish == OB_FINISH_STOP && r.n_generated <= 4,
          "finish %d, %d tokens", r.finish, r.n_generated);
    gp.json_schema = "{}";
    CHECK(ob_generate(c, prompt, 1, &gp, &r) == OB_ERR_ARG && strstr(ob_last_error(), "not both"), "both");
    gp.json_schema = NULL;
    gp.grammar = "root ::= (";
    CHECK(ob_generate(c, prompt, 1, &gp, &r) == OB_ERR_ARG && strstr(ob_last_error(), "line 1, column"), "%s",
          ob_last_error());
    gram_vocab_free(gv);
    gram_free(g);
    free(gbnf);
    ob_context_free(c);
}

int main(int argc, char **argv) {
    test_sentences();
    test_errors();
    test_schema();
    const char *path = argc > 1 ? argv[1] : "build/models/tiny.gguf";
    ob_model_params mp = ob_model_default_params();
    mp.backend = "cpu";
    ob_model *m = NULL;
    if (ob_model_load_file(path, &mp, &m) != OB_OK) {
        printf("SKIP vocabulary tests: %s: %s\n", path, ob_last_error());
    } else {
        vocab v;
        vocab_load(m, &v);
        test_mask(&v);
        test_generate(m, &v);
        vocab_free(&v);
        ob_model_free(m);
    }
    if (failures) {
        printf("test_grammar: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_grammar: ok\n");
    return 0;
}
