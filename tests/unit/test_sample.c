/* test_sample.c — unit tests for the sampler (src/sample.c).
 *
 * Greedy is argmax, top_k=1 is greedy, seeds are reproducible, empirical frequencies match the
 * distribution computed here independently (softmax with temperature, top-k, top-p, min-p), the
 * penalties have exactly their documented effect (checked on both sides of the threshold where
 * the argmax flips), invalid parameters are rejected, NaN/inf logits are survived. All draws come
 * from fixed seeds, so every result is deterministic.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A small deterministic generator for test data (independent of the sampler's PRNG). */
static unsigned long long lcg_state = 12345;
static double lcg_uniform(void) {
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) / 9007199254740992.0;
}

static ob_sampler *make(ob_sampling p, int n_vocab) {
    ob_sampler *s = NULL;
    ob_status st = ob_sampler_new(&p, n_vocab, &s);
    CHECK(st == OB_OK && s, "ob_sampler_new: %s", ob_last_error());
    return s;
}

static ob_sampling plain(float temperature, int top_k, float top_p, float min_p, uint64_t seed) {
    ob_sampling p = ob_sampling_default();
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    return p;
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

/* ---- expected distribution, computed the slow, obvious way ---------------------------------- */

static const float *cmp_logits;
static int cmp_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (cmp_logits[i] != cmp_logits[j]) return cmp_logits[i] > cmp_logits[j] ? -1 : 1;
    return i - j;
}

/* prob[i] after top-k, softmax(T), top-p, min-p, renormalisation (no penalties). */
static void expected(const float *l, int n, ob_sampling p, double *prob) {
    int *order = malloc((size_t)n * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = i;
    cmp_logits = l;
    qsort(order, (size_t)n, sizeof *order, cmp_desc);
    int k = (p.top_k > 0 && p.top_k < n) ? p.top_k : n;
    double z = 0;
    for (int j = 0; j < k; j++) z += exp(((double)l[order[j]] - l[order[0]]) / p.temperature);
    int keep = k;
    if (p.top_p < 1) {
        double cum = 0;
        for (int j = 0; j < k; j++) {
            cum += exp(((double)l[order[j]] - l[order[0]]) / p.temperature) / z;
            if (cum >= p.top_p) { keep = j + 1; break; }
        }
    }
    for (int i = 0; i < n; i++) prob[i] = 0;
    double tot = 0;
    for (int j = 0; j < keep; j++) {
        double w = exp(((double)l[order[j]] - l[order[0]]) / p.temperature);
        if (p.min_p > 0 && w < p.min_p) continue;
        prob[order[j]] = w;
        tot += w;
    }
    for (int i = 0; i < n; i++) prob[i] /= tot;
    free(order);
}

static const double *cmp_prob;
static int cmp_prob_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (cmp_prob[i] != cmp_prob[j]) return cmp_prob[i] > cmp_prob[j] ? -1 : 1;
    return i - j;
}

/* Pearson chi-square of counts against prob over n_draws. Tokens are taken most probable first
 * and grouped until a group expects at least 10 draws, so long tails of rare tokens still count.
 * Returns -1 if a token with probability 0 was drawn. */
static double chi_square(const long *counts, const double *prob, int n, long n_draws, int *df) {
    int *order = malloc((size_t)n * sizeof *order);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (prob[i] > 0) order[m++] = i;
        else if (counts[i]) { free(order); *df = 0; return -1; }
    }
    cmp_prob = prob;
    qsort(order, (size_t)m, sizeof *order, cmp_prob_desc);
    double chi = 0, ge = 0, go = 0;
    int groups = 0;
    for (int j = 0; j < m; j++) {
        ge += prob[order[j]] * (double)n_draws;
        go += (double)counts[order[j]];
        if (ge >= 10 || j == m - 1) {
            chi += (go - ge) * (go - ge) / ge;
            groups++;
            ge = go = 0;
        }
    }
    free(order);
    *df = groups - 1;
    return chi;
}

/* Draws n_draws tokens, compares with the expected distribution of p and, to show that the test
 * can tell, with that of a wrong variant (which must be rejected by a wide margin). */
static void check_distribution(const char *name, const float *l, int n, ob_sampling p,
                               ob_sampling wrong, long n_draws) {
    ob_sampler *s = make(p, n);
    if (!s) return;
    long *counts = calloc((size_t)n, sizeof *counts);
    double *prob = malloc((size_t)n * sizeof *prob);
    double *prob_wrong = malloc((size_t)n * sizeof *prob_wrong);
    for (long d = 0; d < n_draws; d++) {
        ob_token t = ob_sampler_sample(s, l, NULL, 0);
        CHECK(t >= 0 && t < n, "%s: token %d out of range", name, t);
        if (t >= 0 && t < n) counts[t]++;
    }
    expected(l, n, p, prob);
    expected(l, n, wrong, prob_wrong);
    int df = 0, df_wrong = 0;
    double chi = chi_square(counts, prob, n, n_draws, &df);
    double chi_wrong = chi_square(counts, prob_wrong, n, n_draws, &df_wrong);
    /* A chi-square above 3*df + 40 has probability far below 1e-6 for any df; the wrong
     * variant (other temperature or cut) must fail that bound three times over, or draw a token
     * it excludes (-1), to show that the test can tell them apart. */
    CHECK(chi >= 0, "%s: drew a token outside the expected support", name);
    CHECK(chi < 3.0 * df + 40, "%s: chi-square %.1f with %d degrees of freedom", name, chi, df);
    if (getenv("TEST_SAMPLE_VERBOSE"))
        printf("# %s: chi2 %.1f df %d, wrong %.1f df %d\n", name, chi, df, chi_wrong, df_wrong);
    CHECK(chi_wrong < 0 || chi_wrong > 3.0 * (3.0 * df_wrong + 40),
          "%s: the wrong distribution is not rejected (chi-square %.1f, df %d)", name, chi_wrong,
          df_wrong);
    free(counts);
    free(prob);
    free(prob_wrong);
    ob_sampler_free(s);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_defaults(void) {
    ob_sampling p = ob_sampling_default();
    CHECK(p.temperature == 0.7f && p.top_k == 20 && p.top_p == 0.8f && p.min_p == 0.0f,
          "sampling defaults");
    CHECK(p.repeat_penalty == 1.0f && p.repeat_last_n == 64 && p.presence_penalty == 0.0f &&
              p.frequency_penalty == 0.0f && p.seed == 0,
          "penalty defaults");
    ob_sampler *s = NULL;
    CHECK(ob_sampler_new(NULL, 10, &s) == OB_OK && s, "NULL params means defaults");
    ob_sampler_free(s);
    ob_sampler_free(NULL);
}

static void test_invalid(void) {
    struct {
        const char *what;
        ob_sampling p;
        int n_vocab;
    } cases[16];
    int nc = 0;
    ob_sampling d = ob_sampling_default();
#define BAD(field, value, nv)                                       \
    do {                                                            \
        cases[nc].what = #field " = " #value ", n_vocab " #nv;      \
        cases[nc].p = d;                                            \
        cases[nc].p.field = value;                                  \
        cases[nc].n_vocab = nv;                                     \
        nc++;                                                       \
    } while (0)
    BAD(seed, 0, 0);
    BAD(seed, 0, -3);
    BAD(temperature, NAN, 10);
    BAD(temperature, INFINITY, 10);
    BAD(top_p, -0.1f, 10);
    BAD(top_p, NAN, 10);
    BAD(min_p, NAN, 10);
    BAD(min_p, 1.5f, 10);
    BAD(repeat_penalty, 0.0f, 10);
    BAD(repeat_penalty, -1.0f, 10);
    BAD(repeat_penalty, NAN, 10);
    BAD(repeat_last_n, -2, 10);
    BAD(presence_penalty, NAN, 10);
    BAD(frequency_penalty, -INFINITY, 10);
#undef BAD
    for (int i = 0; i < nc; i++) {
        ob_sampler *s = (ob_sampler *)&cases[i]; /* must be overwritten with NULL */
        ob_status st = ob_sampler_new(&cases[i].p, cases[i].n_vocab, &s);
        CHECK(st == OB_ERR_ARG, "%s: status %d", cases[i].what, (int)st);
        CHECK(s == NULL, "%s: *out not cleared", cases[i].what);
        CHECK(ob_last_error()[0] != '\0', "%s: no error message", cases[i].what);
        if (st == OB_OK) ob_sampler_free(s);
    }
    CHECK(ob_sampler_new(&d, 10, NULL) == OB_ERR_ARG, "NULL out");
    /* Valid edge values are accepted. */
    ob_sampling ok = d;
    ok.temperature = -1;
    ok.top_k = -5;
    ok.top_p = 0;
    ok.min_p = -1;
    ok.repeat_last_n = -1;
    ob_sampler *s = NULL;
    CHECK(ob_sampler_new(&ok, 1, &s) == OB_OK, "edge values rejected: %s", ob_last_error());
    if (s) {
        float l = 0.5f;
        CHECK(ob_sampler_sample(s, &l, NULL, 0) == 0, "a one-token vocabulary gives token 0");
        CHECK(ob_sampler_sample(s, NULL, NULL, 0) == -1, "NULL logits");
    }
    ob_sampler_free(s);
    CHECK(ob_sampler_sample(NULL, &ok.top_p, NULL, 0) == -1, "NULL sampler");
}

static void test_greedy(void) {
    enum { N = 1000 };
    static float l[N];
    ob_sampler *g0 = make(plain(0, 20, 0.8f, 0, 1), N);
    ob_sampler *gneg = make(plain(-1, 0, 1, 0, 1), N);
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < N; i++) l[i] = (float)(lcg_uniform() * 20 - 10);
        int want = argmax(l, N);
        CHECK(ob_sampler_sample(g0, l, NULL, 0) == want, "greedy T=0 is argmax (rep %d)", rep);
        CHECK(ob_sampler_sample(gneg, l, NULL, 0) == want, "greedy T<0 is argmax (rep %d)", rep);
        /* top_k = 1 is greedy whatever the temperature and seed. */
        ob_sampler *k1 = make(plain(1.5f, 1, 0.5f, 0, (uint64_t)rep), N);
        for (int d = 0; d < 5; d++)
            CHECK(ob_sampler_sample(k1, l, NULL, 0) == want, "top_k=1 is greedy (rep %d)", rep);
        ob_sampler_free(k1);
    }
    /* Ties go to the lowest id, in greedy and in top_k = 1. */
    for (int i = 0; i < N; i++) l[i] = 0;
    l[700] = 3;
    l[300] = 3;
    l[900] = 3;
    CHECK(ob_sampler_sample(g0, l, NULL, 0) == 300, "greedy tie -> lowest id");
    ob_sampler *k1 = make(plain(0.7f, 1, 1, 0, 9), N);
    CHECK(ob_sampler_sample(k1, l, NULL, 0) == 300, "top_k=1 tie -> lowest id");
    ob_sampler_free(k1);
    ob_sampler_free(g0);
    ob_sampler_free(gneg);
}

/* First draws of seed 42 over 50 equal logits: xoshiro256** seeded by splitmix64(42). */
#define PINNED_SEED42 {4, 18, 34, 46, 49, 38, 35, 42}

static void test_seeds(void) {
    enum { N = 50, D = 200 };
    float l[N];
    for (int i = 0; i < N; i++) l[i] = (float)(lcg_uniform() * 2);
    ob_token a[D], b[D], c[D];
    ob_sampler *sa = make(plain(1, 0, 1, 0, 42), N);
    ob_sampler *sb = make(plain(1, 0, 1, 0, 42), N);
    ob_sampler *sc = make(plain(1, 0, 1, 0, 43), N);
    if (!sa || !sb || !sc) return;
    for (int d = 0; d < D; d++) {
        a[d] = ob_sampler_sample(sa, l, NULL, 0);
        b[d] = ob_sampler_sample(sb, l, NULL, 0);
        c[d] = ob_sampler_sample(sc, l, NULL, 0);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same sequence");
    int same = 0, distinct = 0, seen[N] = {0};
    for (int d = 0; d < D; d++) {
        same += a[d] == c[d];
        if (!seen[a[d]]++) distinct++;
    }
    CHECK(same < D / 4, "different seeds give different sequences (%d of %d equal)", same, D);
    CHECK(distinct > N / 2, "a flat distribution visits many tokens (%d)", distinct);
    /* The stream is pinned: with equal logits every weight is exactly 1 and the draw is
     * floor(u * N) of the 53-bit uniform u, with no libm in the way, so these first draws of
     * seed 42 are the same on every platform and must never change by accident (PRNG, seeding
     * or draw). */
    float flat[N];
    for (int i = 0; i < N; i++) flat[i] = 0.25f;
    ob_sampler *sp = make(plain(0.7f, 0, 1, 0, 42), N);
    if (sp) {
        static const ob_token pinned[8] = PINNED_SEED42;
        ob_token got[8];
        for (int d = 0; d < 8; d++) got[d] = ob_sampler_sample(sp, flat, NULL, 0);
        CHECK(memcmp(got, pinned, sizeof got) == 0, "seed 42 stream: %d %d %d %d %d %d %d %d",
              got[0], got[1], got[2], got[3], got[4], got[5], got[6], got[7]);
        ob_sampler_free(sp);
    }
    ob_sampler_free(sa);
    ob_sampler_free(sb);
    ob_sampler_free(sc);
}

static void test_distributions(void) {
    /* 12 tokens, a spread of logits. */
    float l12[12] = {1.0f, 2.5f, 0.3f, 2.0f, -1.0f, 1.7f, 0.0f, 2.2f, -3.0f, 1.2f, 0.8f, -0.5f};
    const long D = 60000;

    /* top-k off, top-p 0.8: full-vocabulary path with the histogram cut. */
    check_distribution("T0.7 p0.8", l12, 12, plain(0.7f, 0, 0.8f, 0, 1),
                       plain(1.0f, 0, 0.8f, 0, 1), D);
    check_distribution("T0.7 p0.8 vs no cut", l12, 12, plain(0.7f, 0, 0.8f, 0, 2),
                       plain(0.7f, 0, 1.0f, 0, 1), D);
    check_distribution("T0.7 p0.8 vs p0.95", l12, 12, plain(0.7f, 0, 0.8f, 0, 2),
                       plain(0.7f, 0, 0.95f, 0, 1), D);
    /* everything off but temperature: whole-vocabulary draw, no sort. */
    check_distribution("T1.3", l12, 12, plain(1.3f, 0, 1, 0, 3), plain(1.0f, 0, 1, 0, 1), D);
    /* top-k then softmax over the k only. */
    check_distribution("k5 T1", l12, 12, plain(1.0f, 5, 1, 0, 4), plain(1.0f, 6, 1, 0, 4), D);
    check_distribution("k6 T0.5 p0.9", l12, 12, plain(0.5f, 6, 0.9f, 0, 5),
                       plain(0.7f, 6, 0.9f, 0, 5), D);
    /* min-p. */
    check_distribution("T1 minp0.2", l12, 12, plain(1.0f, 0, 1, 0.2f, 6),
                       plain(1.0f, 0, 1, 0.1f, 6), D);
    check_distribution("k8 T0.9 p0.95 minp0.2", l12, 12, plain(0.9f, 8, 0.95f, 0.2f, 7),
                       plain(0.9f, 8, 0.95f, 0, 7), D);

    /* A Qwen3-sized vocabulary: a head of 40 plausible tokens, a long tail. Exercises the
     * histogram cut on many tokens (top-k off) and the heap (top-k on). Few draws: each one
     * works through 151,936 logits. */
    enum { V = 151936 };
    float *lv = malloc(V * sizeof *lv);
    for (int i = 0; i < V; i++) lv[i] = (float)(lcg_uniform() * 4 - 8);
    for (int j = 0; j < 40; j++) lv[(j * 3779 + 11) % V] = (float)(2.0 + 0.1 * j - 0.004 * j * j);
    check_distribution("V T0.7 p0.8", lv, V, plain(0.7f, 0, 0.8f, 0, 8),
                       plain(1.0f, 0, 0.8f, 0, 8), 1000);
    check_distribution("V k20 T0.7 p0.8 (defaults)", lv, V, ob_sampling_default(),
                       plain(0.7f, 20, 1.0f, 0, 8), 2000);
    /* Heavy tail: with T = 2 the tail carries most of the mass, so top-p reaches deep. */
    check_distribution("V T2 p0.5", lv, V, plain(2.0f, 0, 0.5f, 0, 9),
                       plain(2.0f, 0, 0.3f, 0, 9), 400);
    free(lv);
}

/* Penalties, each checked on both sides of the point where the argmax flips between token 0
 * (penalised) and token 1 (not), so only the documented formula passes both. */
static int pick(float rp, int last_n, float presence, float freq, float l0, float l1,
                const ob_token *hist, size_t nh) {
    ob_sampling p = plain(0, 0, 1, 0, 0);
    p.repeat_penalty = rp;
    p.repeat_last_n = last_n;
    p.presence_penalty = presence;
    p.frequency_penalty = freq;
    float l[6] = {l0, l1, -5, -5, -5, -5};
    ob_sampler *s = make(p, 6);
    if (!s) return -1;
    int t = ob_sampler_sample(s, l, hist, nh);
    ob_sampler_free(s);
    return t;
}

static void test_penalties(void) {
    const ob_token h1[] = {2, 0, 3};
    const ob_token h3[] = {0, 2, 0, 4, 0};
    /* repeat, positive logit divided: 2.0 / 1.25 = 1.6 > 1.5; 2.0 / 1.4 = 1.43 < 1.5. */
    CHECK(pick(1.25f, 64, 0, 0, 2.0f, 1.5f, h1, 3) == 0, "repeat: 2.0/1.25 stays above 1.5");
    CHECK(pick(1.40f, 64, 0, 0, 2.0f, 1.5f, h1, 3) == 1, "repeat: 2.0/1.4 drops below 1.5");
    /* repeat, negative logit multiplied: -1.0 * 1.1 = -1.1 > -1.2; -1.0 * 1.3 = -1.3 < -1.2. */
    CHECK(pick(1.1f, 64, 0, 0, -1.0f, -1.2f, h1, 3) == 0, "repeat: -1.0*1.1 stays above -1.2");
    CHECK(pick(1.3f, 64, 0, 0, -1.0f, -1.2f, h1, 3) == 1, "repeat: -1.0*1.3 drops below -1.2");
    /* repeat applies once per distinct token, not per occurrence (0 occurs 3 times):
     * 2.0 / 1.25 = 1.6 > 1.5 (per occurrence it would be 1.02). */
    CHECK(pick(1.25f, 64, 0, 0, 2.0f, 1.5f, h3, 5) == 0, "repeat: once per distinct token");
    /* presence: once per distinct token: 1.0 - 0.4 = 0.6 > 0.5; 1.0 - 0.6 = 0.4 < 0.5. */
    CHECK(pick(1, 64, 0.4f, 0, 1.0f, 0.5f, h3, 5) == 0, "presence: subtracted once");
    CHECK(pick(1, 64, 0.6f, 0, 1.0f, 0.5f, h3, 5) == 1, "presence: 1.0-0.6 < 0.5");
    /* frequency: count times: 1.0 - 3*0.15 = 0.55 > 0.5; 1.0 - 3*0.2 = 0.4 < 0.5. */
    CHECK(pick(1, 64, 0, 0.15f, 1.0f, 0.5f, h3, 5) == 0, "frequency: 1.0-3*0.15 > 0.5");
    CHECK(pick(1, 64, 0, 0.20f, 1.0f, 0.5f, h3, 5) == 1, "frequency: 1.0-3*0.2 < 0.5");
    /* order: repeat first, then presence and frequency: (2.0/2) - 0.2 - 3*0.1 = 0.5,
     * against token 1 at 0.45 and 0.55 (subtracting first would give (2.0-0.5)/2 = 0.75). */
    CHECK(pick(2, 64, 0.2f, 0.1f, 2.0f, 0.45f, h3, 5) == 0, "combined: 0.5 > 0.45");
    CHECK(pick(2, 64, 0.2f, 0.1f, 2.0f, 0.55f, h3, 5) == 1, "combined: 0.5 < 0.55");
    /* window: only the last repeat_last_n tokens count. In h1 token 0 is 2nd from the end. */
    CHECK(pick(1.4f, 1, 0, 0, 2.0f, 1.5f, h1, 3) == 0, "window 1 excludes token 0");
    CHECK(pick(1.4f, 2, 0, 0, 2.0f, 1.5f, h1, 3) == 1, "window 2 includes token 0");
    CHECK(pick(1.4f, 0, 0, 0, 2.0f, 1.5f, h1, 3) == 0, "repeat_last_n 0 is off");
    CHECK(pick(1.4f, -1, 0, 0, 2.0f, 1.5f, h1, 3) == 1, "repeat_last_n -1 is the whole history");
    /* frequency counts only occurrences inside the window: last 3 of h3 hold one 0:
     * 1.0 - 1*0.2 = 0.8 > 0.5 (all three would give 0.4). */
    CHECK(pick(1, 3, 0, 0.2f, 1.0f, 0.5f, h3, 5) == 0, "frequency counts within the window");
    /* out-of-range ids in the history are ignored, and the counts do not leak between calls. */
    const ob_token odd[] = {-7, 999999, 0};
    CHECK(pick(1.4f, 64, 0, 0, 2.0f, 1.5f, odd, 3) == 1, "bad ids ignored, 0 still penalised");
    ob_sampling p = plain(0, 0, 1, 0, 0);
    p.frequency_penalty = 0.2f;
    float l[6] = {1.0f, 0.5f, -5, -5, -5, -5};
    ob_sampler *s = make(p, 6);
    if (s) {
        CHECK(ob_sampler_sample(s, l, h3, 5) == 1, "frequency applied");
        CHECK(ob_sampler_sample(s, l, h3, 5) == 1, "same result on a second call");
        CHECK(ob_sampler_sample(s, l, NULL, 0) == 0, "no history, no penalty");
        CHECK(l[0] == 1.0f, "logits are not modified");
        ob_sampler_free(s);
    }
    /* Penalties also apply when sampling (not only greedy): top_k = 1 after penalties. */
    ob_sampling q = plain(0.7f, 1, 1, 0, 0);
    q.repeat_penalty = 1.4f;
    float m[6] = {2.0f, 1.5f, -5, -5, -5, -5};
    s = make(q, 6);
    if (s) {
        CHECK(ob_sampler_sample(s, m, h1, 3) == 1, "penalties before top-k");
        ob_sampler_free(s);
    }
}

static void test_nonfinite(void) {
    enum { N = 1000 };
    static float l[N];
    ob_sampling ps[5] = {plain(0, 0, 1, 0, 1), plain(0.7f, 0, 1, 0, 2), plain(0.7f, 20, 0.8f, 0, 3),
                         plain(0.7f, 0, 0.8f, 0, 4), plain(5.0f, 0, 1, 0.5f, 5)};
    for (int k = 0; k < 5; k++) {
        ob_sampler *s = make(ps[k], N);
        if (!s) continue;
        /* all -inf but one */
        for (int i = 0; i < N; i++) l[i] = -INFINITY;
        l[613] = -50.0f;
        for (int d = 0; d < 50; d++)
            CHECK(ob_sampler_sample(s, l, NULL, 0) == 613, "all -inf but one (params %d)", k);
        /* NaN is -inf */
        for (int i = 0; i < N; i++) l[i] = (i % 2) ? NAN : -INFINITY;
        l[614] = 1e30f;
        for (int d = 0; d < 50; d++)
            CHECK(ob_sampler_sample(s, l, NULL, 0) == 614, "NaN treated as -inf (params %d)", k);
        /* +inf beats every finite logit; several +inf share the draw. */
        for (int i = 0; i < N; i++) l[i] = (float)(lcg_uniform() * 10);
        l[5] = INFINITY;
        for (int d = 0; d < 20; d++)
            CHECK(ob_sampler_sample(s, l, NULL, 0) == 5, "+inf wins (params %d)", k);
        l[9] = INFINITY;
        for (int d = 0; d < 20; d++) {
            ob_token t = ob_sampler_sample(s, l, NULL, 0);
            CHECK(t == 5 || t == 9, "two +inf: got %d (params %d)", t, k);
        }
        /* nothing finite at all: no crash, a valid id */
        for (int i = 0; i < N; i++) l[i] = (i % 3) ? NAN : -INFINITY;
        ob_token t = ob_sampler_sample(s, l, NULL, 0);
        CHECK(t >= 0 && t < N, "all -inf/NaN gives a valid id, got %d", t);
        ob_sampler_free(s);
    }
    /* Both +inf tokens are actually drawn when sampling. */
    ob_sampler *s = make(plain(1.0f, 0, 1, 0, 11), N);
    if (s) {
        int c5 = 0, c9 = 0;
        for (int d = 0; d < 400; d++) {
            ob_token t = ob_sampler_sample(s, l, NULL, 0);
            c5 += t == 5;
            c9 += t == 9;
        }
        for (int i = 0; i < N; i++) l[i] = 0;
        l[5] = l[9] = INFINITY;
        c5 = c9 = 0;
        for (int d = 0; d < 400; d++) {
            ob_token t = ob_sampler_sample(s, l, NULL, 0);
            c5 += t == 5;
            c9 += t == 9;
        }
        CHECK(c5 + c9 == 400 && c5 > 100 && c9 > 100, "two +inf split the draws: %d / %d", c5, c9);
        ob_sampler_free(s);
    }
}

int main(void) {
    test_defaults();
    test_invalid();
    test_greedy();
    test_seeds();
    test_distributions();
    test_penalties();
    test_nonfinite();
    if (failures) printf("%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
