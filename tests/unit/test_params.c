/* test_params.c — the shared parameter check (params.c) and the empty-think-block filter
 * (think.c): every range edge in and out, the message naming the parameter and its range; the
 * filter fed the same text in every split, with and without the block, and cut short.
 * Not a test of sampling itself (see test_sample.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "onebit.h"

static int failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static int refused(ob_sampling s, const char *name, const char *range) {
    if (ob_sampling_check(&s) != OB_ERR_ARG) return 0;
    const char *m = ob_last_error();
    return strncmp(m, name, strlen(name)) == 0 && strstr(m, range) != NULL;
}

static void test_sampling(void) {
    ob_sampling d = ob_sampling_default(), s;
    CHECK(ob_sampling_check(&d) == OB_OK);
    s = d; s.temperature = 0; CHECK(ob_sampling_check(&s) == OB_OK);
    s = d; s.temperature = 2; CHECK(ob_sampling_check(&s) == OB_OK);
    s = d; s.temperature = -1; CHECK(refused(s, "temperature", "between 0 and 2"));
    s = d; s.temperature = 2.01f; CHECK(refused(s, "temperature", "between 0 and 2"));
    s = d; s.temperature = NAN; CHECK(refused(s, "temperature", "between 0 and 2"));
    s = d; s.top_p = 5; CHECK(refused(s, "top_p", "between 0 and 1"));
    s = d; s.top_k = -1; CHECK(ob_sampling_check(&s) == OB_OK);
    s = d; s.top_k = -2; CHECK(refused(s, "top_k", "between -1 and"));
    s = d; s.min_p = 1.5f; CHECK(refused(s, "min_p", "between 0 and 1"));
    s = d; s.repeat_penalty = 0; CHECK(refused(s, "repeat_penalty", "between 0.01 and 100"));
    s = d; s.repeat_last_n = -2; CHECK(refused(s, "repeat_last_n", "between -1 and"));
    s = d; s.presence_penalty = INFINITY; CHECK(refused(s, "presence_penalty", "between -2 and 2"));
    s = d; s.frequency_penalty = -2; CHECK(ob_sampling_check(&s) == OB_OK);
    s = d; s.frequency_penalty = -2.5f; CHECK(refused(s, "frequency_penalty", "between -2 and 2"));
    CHECK(ob_sampling_check(NULL) == OB_ERR_ARG);
}

static void test_limits(void) {
    CHECK(ob_limits_check(0, 0) == OB_OK);
    CHECK(ob_limits_check(4194304, 1 << 30) == OB_OK);
    CHECK(ob_limits_check(-1, 0) == OB_ERR_ARG && strstr(ob_last_error(), "n_ctx must be an integer between 0 and 4194304"));
    CHECK(ob_limits_check(4194305, 0) == OB_ERR_ARG);
    CHECK(ob_limits_check(0, -1) == OB_ERR_ARG && strstr(ob_last_error(), "max_tokens must be an integer between 0 and"));
}

typedef struct sink { char s[256]; size_t n; } sink;
static int collect(const char *t, size_t len, void *user) {
    sink *k = user;
    if (k->n + len < sizeof k->s) { memcpy(k->s + k->n, t, len); k->n += len; k->s[k->n] = 0; }
    return 0;
}

/* Feeds text in pieces of `step` bytes (0: all at once), flushes, returns what came out. */
static const char *filtered(const char *text, size_t step, int flush, sink *k) {
    memset(k, 0, sizeof *k);
    ob_think_strip f;
    ob_think_strip_init(&f, collect, k);
    size_t n = strlen(text);
    if (!step) step = n ? n : 1;
    for (size_t o = 0; o < n; o += step) ob_think_strip_push(text + o, o + step > n ? n - o : step, &f);
    if (flush) ob_think_strip_flush(&f);
    return k->s;
}

static void test_think(void) {
    sink k;
    for (size_t step = 0; step <= 20; step++) {
        CHECK(!strcmp(filtered("<think>\n\n</think>\n\nHello", step, 1, &k), "Hello"));
        CHECK(!strcmp(filtered("Hello <think>\n\n</think>\n\n", step, 1, &k), "Hello <think>\n\n</think>\n\n"));
        CHECK(!strcmp(filtered("<think>\nreasoning\n</think>\n\nHi", step, 1, &k), "<think>\nreasoning\n</think>\n\nHi"));
        CHECK(!strcmp(filtered("<thin", step, 1, &k), "<thin"));          /* cut short: passed on at flush */
        CHECK(!strcmp(filtered("<thin", step, 0, &k), ""));               /* held back until then */
        CHECK(!strcmp(filtered("<think>\n\n</think>\n\n", step, 1, &k), ""));
        CHECK(!strcmp(filtered("<", step, 1, &k), "<"));
    }
}

int main(void) {
    test_sampling();
    test_limits();
    test_think();
    if (failures) { printf("%d failures\n", failures); return 1; }
    printf("test_params: ok\n");
    return 0;
}
