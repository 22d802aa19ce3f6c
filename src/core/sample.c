/* sample.c — the token sampler: penalties, top-k, temperature, top-p, min-p, seeded draw.
 *
 * One call turns a row of logits into a token id. The steps run in a fixed order:
 *   1. copy the logits, NaN -> -inf, +inf -> FLT_MAX (so no step ever sees NaN);
 *   2. penalties over the last repeat_last_n tokens of the history: repeat (divide a positive
 *      logit, multiply a negative one), presence (subtract once per distinct token), frequency
 *      (subtract once per occurrence);
 *   3. greedy (temperature <= 0): argmax, ties to the lowest id;
 *   4. top-k, then softmax with temperature over what is left, top-p (the smallest best-first set
 *      whose probability reaches top_p), min-p (drop p < min_p * p_max), renormalise, draw.
 * The draw uses our own xoshiro256** seeded through splitmix64 and a 53-bit uniform double, so a
 * seed gives the same random stream on every platform (the chosen tokens can still differ where
 * libm's expf differs by an ulp at a boundary). Every buffer is allocated by ob_sampler_new; a
 * call allocates nothing. This is not a grammar/constraint engine and keeps no token history of
 * its own: the caller passes it in.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onebit.h"
#include "util.h"

/* Log-probability histogram used to find the top-p cut without sorting the whole vocabulary:
 * bin b holds tokens with (logit - max) / T in (-(b+1)/SAMPLE_BINS_PER_UNIT, -b/...]; the last
 * bin takes everything further down (including -inf). */
#define SAMPLE_BINS_PER_UNIT 16
#define SAMPLE_NBINS 1024

typedef struct {
    float logit;
    int32_t id;
} sample_cand;

struct ob_sampler {
    ob_sampling p;
    int n_vocab;
    uint64_t rng[4];          /* xoshiro256** state */
    float *logit;             /* (n_vocab) sanitised, penalised logits of the current call */
    float *weight;            /* (n_vocab) exp((logit - max) / T), by token id (top-k off) */
    uint16_t *bin;            /* (n_vocab) histogram bin of each token (top-k off, top-p on) */
    int32_t *count;           /* (n_vocab) occurrences in the penalty window; zero between calls */
    sample_cand *cand;        /* (n_vocab) candidates of the current call */
    float *cw;                /* (n_vocab) weight of cand[j] */
    double mass[SAMPLE_NBINS]; /* (SAMPLE_NBINS) sum of weights per histogram bin */
};

ob_sampling ob_sampling_default(void) {
    /* Qwen3's recommended non-thinking settings. */
    ob_sampling p;
    p.temperature = 0.7f;
    p.top_k = 20;
    p.top_p = 0.8f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.seed = 0;
    return p;
}

/* ---- construction -------------------------------------------------------------------------- */

static void *sample_alloc(int n, size_t elem) {
    uint64_t bytes;
    if (ob_mul_u64((uint64_t)n, elem, &bytes) || bytes > SIZE_MAX) return NULL;
    return malloc((size_t)bytes);
}

ob_status ob_sampler_new(const ob_sampling *params, int n_vocab, ob_sampler **out) {
    if (!out) return ob_fail(OB_ERR_ARG, "ob_sampler_new: out is NULL");
    *out = NULL;
    ob_sampling p = params ? *params : ob_sampling_default();
    if (n_vocab <= 0) return ob_fail(OB_ERR_ARG, "ob_sampler_new: n_vocab %d <= 0", n_vocab);
    if (!isfinite(p.temperature))
        return ob_fail(OB_ERR_ARG, "sampling: temperature must be a finite number");
    if (isnan(p.top_p) || p.top_p < 0)
        return ob_fail(OB_ERR_ARG, "sampling: top_p must be >= 0 (>= 1: off)");
    if (isnan(p.min_p) || p.min_p > 1)
        return ob_fail(OB_ERR_ARG, "sampling: min_p must be <= 1 (<= 0: off)");
    if (!isfinite(p.repeat_penalty) || p.repeat_penalty <= 0)
        return ob_fail(OB_ERR_ARG, "sampling: repeat_penalty must be finite and > 0 (1: off)");
    if (p.repeat_last_n < -1)
        return ob_fail(OB_ERR_ARG, "sampling: repeat_last_n must be >= -1 (-1: whole history)");
    if (!isfinite(p.presence_penalty) || !isfinite(p.frequency_penalty))
        return ob_fail(OB_ERR_ARG, "sampling: presence/frequency penalties must be finite");

    ob_sampler *s = calloc(1, sizeof *s);
    if (!s) return ob_fail(OB_ERR_NOMEM, "ob_sampler_new: out of memory");
    s->p = p;
    s->n_vocab = n_vocab;
    s->logit = sample_alloc(n_vocab, sizeof *s->logit);
    s->weight = sample_alloc(n_vocab, sizeof *s->weight);
    s->bin = sample_alloc(n_vocab, sizeof *s->bin);
    s->count = sample_alloc(n_vocab, sizeof *s->count);
    s->cand = sample_alloc(n_vocab, sizeof *s->cand);
    s->cw = sample_alloc(n_vocab, sizeof *s->cw);
    if (!s->logit || !s->weight || !s->bin || !s->count || !s->cand || !s->cw) {
        ob_sampler_free(s);
        return ob_fail(OB_ERR_NOMEM, "ob_sampler_new: out of memory (n_vocab %d)", n_vocab);
    }
    memset(s->count, 0, (size_t)n_vocab * sizeof *s->count);
    ob_rng_seed(s->rng, p.seed);
    *out = s;
    return OB_OK;
}

void ob_sampler_free(ob_sampler *s) {
    if (!s) return;
    free(s->logit);
    free(s->weight);
    free(s->bin);
    free(s->count);
    free(s->cand);
    free(s->cw);
    free(s);
}

/* ---- steps --------------------------------------------------------------------------------- */

/* NaN -> -inf and +inf -> FLT_MAX: then max/argmax and (l - max) are always defined. */
static float sample_sane(float v) {
    if (v != v) return -INFINITY;
    if (v > FLT_MAX) return FLT_MAX;
    return v;
}

static void sample_penalties(ob_sampler *s, const ob_token *hist, size_t n_hist) {
    const ob_sampling *p = &s->p;
    if (!hist || n_hist == 0 || p->repeat_last_n == 0) return;
    if (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f)
        return;
    size_t win = p->repeat_last_n < 0 ? n_hist : (size_t)p->repeat_last_n;
    if (win > n_hist) win = n_hist;
    const ob_token *w = hist + (n_hist - win);

    /* Count occurrences, then apply once per distinct token and clear its count on the way, so
     * the counts are zero again for the next call without touching all n_vocab entries. */
    for (size_t i = 0; i < win; i++)
        if (w[i] >= 0 && w[i] < s->n_vocab) s->count[w[i]]++;
    for (size_t i = 0; i < win; i++) {
        ob_token t = w[i];
        if (t < 0 || t >= s->n_vocab || s->count[t] == 0) continue;
        float l = s->logit[t];
        if (l > 0) l /= p->repeat_penalty;
        else l *= p->repeat_penalty;
        l -= p->presence_penalty + (float)s->count[t] * p->frequency_penalty;
        s->logit[t] = sample_sane(l);
        s->count[t] = 0;
    }
}

/* Largest value of l[0..n): eight independent lanes, so the loop is not one long chain of
 * compare-and-select and the compiler can vectorise it (l holds no NaN). */
static float sample_max(const float *l, int n) {
    float m[8];
    for (int j = 0; j < 8; j++) m[j] = -INFINITY;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m[j] = l[i + j] > m[j] ? l[i + j] : m[j];
    for (; i < n; i++) m[0] = l[i] > m[0] ? l[i] : m[0];
    float best = m[0];
    for (int j = 1; j < 8; j++) best = m[j] > best ? m[j] : best;
    return best;
}

/* Argmax with ties to the lowest id: the first position holding the maximum. */
static ob_token sample_argmax(const float *l, int n, float max) {
    for (int i = 0; i < n; i++)
        if (l[i] == max) return i;
    return 0;
}

/* a ranks below b: lower logit, or equal logit and higher id. A total order, so results do not
 * depend on the sort or heap implementation. */
static int sample_worse(sample_cand a, sample_cand b) {
    return a.logit < b.logit || (a.logit == b.logit && a.id > b.id);
}

static int sample_cmp_desc(const void *pa, const void *pb) {
    sample_cand a = *(const sample_cand *)pa, b = *(const sample_cand *)pb;
    if (sample_worse(a, b)) return 1;
    if (sample_worse(b, a)) return -1;
    return 0;
}

static void sample_sift_down(sample_cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && sample_worse(h[l], h[m])) m = l;
        if (r < n && sample_worse(h[r], h[m])) m = r;
        if (m == i) return;
        sample_cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* The k best tokens into s->cand[0..k), best first: a min-heap of the k best seen so far, so one
 * pass over the vocabulary and O(n log k) work instead of a full sort. */
static int sample_top_k(ob_sampler *s, int k) {
    sample_cand *h = s->cand;
    const float *l = s->logit;
    int n = 0;
    for (int i = 0; i < s->n_vocab; i++) {
        sample_cand c = {l[i], i};
        if (n < k) {
            /* sift up */
            int j = n++;
            h[j] = c;
            while (j > 0) {
                int parent = (j - 1) / 2;
                if (!sample_worse(h[j], h[parent])) break;
                sample_cand t = h[j];
                h[j] = h[parent];
                h[parent] = t;
                j = parent;
            }
        } else if (sample_worse(h[0], c)) {
            h[0] = c;
            sample_sift_down(h, n, 0);
        }
    }
    qsort(h, (size_t)n, sizeof *h, sample_cmp_desc);
    return n;
}

/* Top-k off: softmax weights over the whole vocabulary, then the top-p cut, into s->cand/s->cw
 * (in no particular order). Returns the candidate count.
 * The cut without a full sort: a histogram of log-probabilities gives the bin where the
 * cumulative mass first reaches top_p. Tokens in better bins are all in the nucleus, tokens in
 * worse bins all out; only the tokens of that one bin are sorted to place the exact cut. */
static int sample_full(ob_sampler *s, float max, float temp) {
    const int n = s->n_vocab;
    const int use_top_p = s->p.top_p < 1.0f;
    double total = 0;
    if (use_top_p) memset(s->mass, 0, sizeof s->mass);
    for (int i = 0; i < n; i++) {
        float x = (s->logit[i] - max) / temp; /* <= 0, or -inf */
        float w = x > -104.0f ? expf(x) : 0.0f; /* expf underflows to 0 below -103.9 */
        s->weight[i] = w;
        total += w;
        if (use_top_p) {
            int b = SAMPLE_NBINS - 1;
            if (x > -(float)(SAMPLE_NBINS - 1) / SAMPLE_BINS_PER_UNIT) {
                b = (int)(-x * SAMPLE_BINS_PER_UNIT);
                if (b > SAMPLE_NBINS - 1) b = SAMPLE_NBINS - 1;
            }
            s->bin[i] = (uint16_t)b;
            s->mass[b] += w;
        }
    }

    int nc = 0;
    if (!use_top_p) {
        /* No cut that depends on order: keep every token that can be drawn, in id order. */
        for (int i = 0; i < n; i++)
            if (s->weight[i] > 0) {
                s->cand[nc].logit = s->logit[i];
                s->cand[nc].id = i;
                s->cw[nc++] = s->weight[i];
            }
        return nc;
    }
    double target = (double)s->p.top_p * total, cum = 0;
    int cut = SAMPLE_NBINS - 1;
    for (int b = 0; b < SAMPLE_NBINS; b++) {
        if (cum + s->mass[b] >= target) { cut = b; break; }
        cum += s->mass[b];
    }
    /* Better bins fill s->cand from the front, the cut bin from the back. */
    int nb = 0;
    cum = 0;
    for (int i = 0; i < n; i++) {
        if (s->bin[i] < cut) {
            s->cand[nc].logit = s->logit[i];
            s->cand[nc].id = i;
            s->cw[nc++] = s->weight[i];
            cum += s->weight[i];
        } else if (s->bin[i] == cut) {
            nb++;
            s->cand[n - nb].logit = s->logit[i];
            s->cand[n - nb].id = i;
        }
    }
    sample_cand *edge = s->cand + (n - nb);
    qsort(edge, (size_t)nb, sizeof *edge, sample_cmp_desc);
    for (int j = 0; j < nb; j++) {
        if (cum >= target && nc > 0) break;
        float w = s->weight[edge[j].id];
        s->cand[nc] = edge[j];
        s->cw[nc++] = w;
        cum += w;
    }
    return nc;
}

/* ---- entry point --------------------------------------------------------------------------- */

ob_token ob_sampler_sample(ob_sampler *s, const float *logits, const ob_token *history,
                           size_t n_history) {
    if (!s || !logits) return -1;
    const ob_sampling *p = &s->p;
    const int n = s->n_vocab;

    for (int i = 0; i < n; i++) s->logit[i] = sample_sane(logits[i]);
    sample_penalties(s, history, n_history);

    float max = sample_max(s->logit, n);
    ob_token best = sample_argmax(s->logit, n, max);
    if (p->temperature <= 0) return best;

    double u = ob_rng_uniform(s->rng); /* one draw per sampled token, whatever the cuts keep */
    if (max == -INFINITY) return best; /* nothing is possible; ties go to the lowest id */

    int nc;
    if (p->top_k > 0 && p->top_k < n) {
        nc = sample_top_k(s, p->top_k);
        double z = 0;
        for (int j = 0; j < nc; j++) {
            s->cw[j] = expf((s->cand[j].logit - max) / p->temperature);
            z += s->cw[j];
        }
        /* top-p: the smallest best-first prefix whose mass reaches top_p of the total. */
        if (p->top_p < 1.0f) {
            double target = (double)p->top_p * z, cum = 0;
            for (int j = 0; j < nc; j++) {
                cum += s->cw[j];
                if (cum >= target) { nc = j + 1; break; }
            }
        }
    } else {
        nc = sample_full(s, max, p->temperature);
    }

    /* min-p: the best token has weight exactly 1 (its logit is the max), so p < min_p * p_max is
     * w < min_p. Compacts in place, order kept. */
    if (p->min_p > 0) {
        int m = 0;
        for (int j = 0; j < nc; j++)
            if (s->cw[j] >= p->min_p) {
                s->cand[m] = s->cand[j];
                s->cw[m++] = s->cw[j];
            }
        nc = m;
    }

    /* Renormalise over what is left and draw. */
    double total = 0;
    for (int j = 0; j < nc; j++) total += s->cw[j];
    if (nc == 0 || !(total > 0)) return best;
    double target = u * total, cum = 0;
    int last = -1;
    for (int j = 0; j < nc; j++) {
        if (s->cw[j] <= 0) continue;
        cum += s->cw[j];
        last = j;
        if (cum > target) return s->cand[j].id;
    }
    return last >= 0 ? s->cand[last].id : best; /* rounding left target just above the sum */
}
