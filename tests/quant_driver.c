/* quant_driver.c — checks the weight type table (quant.h) against llama.cpp's gguf-py, and the cpu
 * backend against the scalar one on a model of any type. Driven by tests/quant.test.mjs; not a
 * test by itself, and not library code (it prints and exits).
 *
 *   quant_driver check FILE    FILE from tests/oracle/quants.py: for every row, the row's dequant
 *                              (and ob_dequant_row) must equal gguf-py's floats bit for bit, and the
 *                              row's reference dot must be within the rigorous float32 bound
 *                              (n + 1) * 2^-24 * sum |w_j x_j| of the float64 dot; every table row
 *                              must have cases. Prints counts per type.
 *   quant_driver model PATH [TOL]
 *                              logits of 16 random tokens, in one call and one token at a time, on
 *                              the cpu backend (2 threads) vs the scalar backend: relative RMS under
 *                              TOL (default 1e-3: the cpu backend keeps a half KV cache), the same argmax everywhere but
 *                              at near ties (top two within 10x the RMS logit error).
 * Exit status 0 when every check passes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"
#include "quant.h"

static int failures;

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int check(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len || len < 8 || memcmp(buf, "OBQ1", 4) != 0) {
        printf("FAIL %s is not an oracle file\n", path);
        return 1;
    }
    fclose(f);
    enum { MAXT = 64 };
    int cases[MAXT] = {0}, exact[MAXT] = {0}, dot_ok[MAXT] = {0};
    double worst_dot[MAXT] = {0};
    const uint32_t count = rd32(buf + 4);
    size_t off = 8;
    for (uint32_t c = 0; c < count; c++) {
        if (off + 16 > (size_t)len) {
            printf("FAIL truncated oracle file\n");
            return 1;
        }
        const uint32_t type = rd32(buf + off), n = rd32(buf + off + 4), nbytes = rd32(buf + off + 8);
        off += 16;
        if (off + nbytes + 8ull * n + 8 > (size_t)len || type >= MAXT) {
            printf("FAIL truncated oracle file\n");
            return 1;
        }
        const uint8_t *raw = buf + off;
        float *want = malloc(4ull * n), *x = malloc(4ull * n), *got = malloc(4ull * n), *got2 = malloc(4ull * n);
        memcpy(want, raw + nbytes, 4ull * n);
        memcpy(x, raw + nbytes + 4ull * n, 4ull * n);
        double ref;
        memcpy(&ref, raw + nbytes + 8ull * n, 8);
        off += nbytes + 8ull * n + 8;
        const ob_type_row *r = ob_type_find(type);
        cases[type]++;
        if (!r || n % (uint32_t)r->block || (size_t)n / (size_t)r->block * (size_t)r->bytes != nbytes) {
            printf("FAIL type %u: no row, or %u bytes for %u elements do not fit its blocks\n", type, nbytes, n);
            failures++;
            free(want), free(x), free(got), free(got2);
            continue;
        }
        /* The source at an odd address: decoders must not assume alignment. */
        uint8_t *src = malloc(nbytes + 1);
        memcpy(src + 1, raw, nbytes);
        r->dequant(src + 1, got, n);
        const int rc = ob_dequant_row(type, src + 1, got2, n);
        int bad = 0, first = -1;
        for (uint32_t j = 0; j < n; j++)
            if (memcmp(&got[j], &want[j], 4) != 0) {
                if (first < 0) first = (int)j;
                bad++;
            }
        if (rc != 0 || memcmp(got, got2, 4ull * n) != 0) {
            printf("FAIL %s: ob_dequant_row differs from the row's dequant\n", r->name);
            failures++;
        }
        if (bad) {
            printf("FAIL %s case %u: %d of %u values differ from gguf-py (first at %d: %.9g vs %.9g)\n", r->name, c,
                   bad, n, first, got[first], want[first]);
            failures++;
        } else {
            exact[type]++;
        }
        double sabs = 0;
        for (uint32_t j = 0; j < n; j++) sabs += fabs((double)want[j] * x[j]);
        const double d = r->dot(src + 1, x, n), err = fabs(d - ref);
        const double bound = (n + 1) * ldexp(1.0, -24) * sabs;
        if (sabs > 0 && err / sabs > worst_dot[type]) worst_dot[type] = err / sabs;
        if (err <= bound) {
            dot_ok[type]++;
        } else {
            printf("FAIL %s case %u: dot %.9g vs float64 %.17g (error %.3g > bound %.3g)\n", r->name, c, d, ref, err,
                   bound);
            failures++;
        }
        free(src), free(want), free(x), free(got), free(got2);
    }
    free(buf);
    for (int i = 0; ob_type_at(i); i++) {
        const ob_type_row *r = ob_type_at(i);
        const uint32_t t = r->type;
        if (t >= MAXT || !cases[t]) {
            printf("FAIL %s: no oracle cases\n", r->name);
            failures++;
            continue;
        }
        printf("%-6s %2d rows: dequant bit-exact %2d/%d, dot within bound %2d/%d (worst error %.2g of sum |w x|)\n",
               r->name, cases[t], exact[t], cases[t], dot_ok[t], cases[t], worst_dot[t]);
    }
    return failures != 0;
}

/* Logits of toks[0..n) on a backend, one call (step n) or one token at a time (step 1). */
static float *run_logits(const char *path, const char *backend, const ob_token *toks, int n, int step, int *nv) {
    ob_model_params mp = ob_model_default_params();
    mp.backend = backend;
    mp.n_threads = 2;
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 64;
    ob_model *m = NULL;
    ob_context *c = NULL;
    float *out = NULL;
    if (ob_model_load_file(path, &mp, &m) || ob_context_new(m, &cp, &c)) {
        printf("FAIL %s backend on %s: %s\n", backend, path, ob_last_error());
        failures++;
    } else {
        ob_model_info mi;
        ob_model_get_info(m, &mi);
        *nv = mi.n_vocab;
        out = malloc((size_t)n * (size_t)*nv * sizeof(float));
        for (int i = 0; out && i < n; i += step) {
            if (ob_eval(c, toks + i, step, 1) != OB_OK) {
                printf("FAIL %s backend: eval: %s\n", backend, ob_last_error());
                failures++;
                free(out);
                out = NULL;
                break;
            }
            for (int j = 0; j < step; j++) memcpy(out + (size_t)(i + j) * *nv, ob_logits(c, j), (size_t)*nv * sizeof(float));
        }
    }
    ob_context_free(c);
    ob_model_free(m);
    return out;
}

static int model(const char *path, double tol) {
    enum { N = 16 };
    ob_token toks[N];
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < N; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        toks[i] = (ob_token)(s % 150000);
    }
    int nv = 0;
    float *ref = run_logits(path, "scalar", toks, N, N, &nv);
    for (int k = 0; k < 2 && ref; k++) {
        float *lg = run_logits(path, "cpu", toks, N, k == 0 ? N : 1, &nv);
        if (!lg) break;
        double se = 0, sy = 0;
        int agree = 0, ties = 0, ia[N], ib[N];
        for (int i = 0; i < N; i++) {
            const float *a = ref + (size_t)i * nv, *b = lg + (size_t)i * nv;
            ia[i] = ib[i] = 0;
            for (int j = 0; j < nv; j++) {
                se += (double)(a[j] - b[j]) * (a[j] - b[j]);
                sy += (double)a[j] * a[j];
                if (a[j] > a[ia[i]]) ia[i] = j;
                if (b[j] > b[ib[i]]) ib[i] = j;
            }
            agree += ia[i] == ib[i];
        }
        /* A different argmax is fine where the scalar logits of the two picks are within 10x the
         * RMS logit error of each other (a near tie that the half cache may flip). */
        const double err = sqrt(se / N / nv);
        for (int i = 0; i < N; i++)
            ties += ia[i] != ib[i] && ref[(size_t)i * nv + ia[i]] - ref[(size_t)i * nv + ib[i]] <= 10 * err;
        const double rel = sy > 0 ? sqrt(se / sy) : 0;
        printf("%s: cpu (%s) vs scalar: logits relative RMS %.3g, argmax agreement %d/%d (+%d near ties), logit RMS %.3g\n",
               path, k == 0 ? "one batch" : "one token at a time", rel, agree, N, ties, sqrt(sy / N / nv));
        if (!(rel < tol) || agree + ties != N || !(sy > 0)) {
            printf("FAIL %s: relative RMS %.3g (limit %.3g), argmax %d/%d\n", path, rel, tol, agree, N);
            failures++;
        }
        free(lg);
    }
    free(ref);
    return failures != 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "check") == 0) return check(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "model") == 0) return model(argv[2], argc > 3 ? atof(argv[3]) : 1e-3);
    fprintf(stderr, "usage: quant_driver check FILE | model PATH [TOL]\n");
    return 2;
}
