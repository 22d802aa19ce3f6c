/* test_tern.c — the ternary kernels (tern.h: Q2_0, TQ2_0, TQ1_0) against the scalar reference.
 *
 * The repacked sizes are the files' (Q2_0: 2.25 bits a weight, TQ2_0: 2.0625). For every kernel table
 * built in and runnable on this CPU (portable C, AVX-512 VNNI, AVX2):
 *  - activation quantisation (int8, and int16 as two planes) is bit-identical to the portable one,
 *    extreme and all-zero blocks included;
 *  - the repacked product equals the portable one on the same quantised input up to float rounding
 *    (1e-5 of the sum of absolute terms), for rows not a multiple of the 16-row tile, partial tile
 *    ranges, 1..17 tokens, 64 .. 1280 columns, all three types (every code 0..3 of Q2_0 / TQ2_0
 *    included), and writes nothing past the last row;
 *  - against the specification (scalar_matmul, the type table's dot) it is exact up to float
 *    rounding when the input lies on each 64-block's int8 grid, and for Gaussian input its relative
 *    RMS error is under 1% with int8 and under 1e-4 with two planes;
 *  - through the backend's hook (tk_init / tk_matmul on a thread pool) with 1 and 3 threads:
 *    bit-identical results whatever the thread count, 70 tokens included (more than one batch),
 *    relative RMS against scalar_matmul < 1% with int8 activations (the default) and < 1e-4 with
 *    two planes (ONEBIT_CPU_TERN_PLANES=2).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "model.h"
#include "quant.h"
#include "tern.h"
#include "threadpool.h"

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

static unsigned long long rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rng_unif(void) { return (double)(rng_u64() >> 11) / 9007199254740992.0; }
static float rng_gauss(void) {
    double u = rng_unif() + 1e-12, v = rng_unif();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void *xalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        printf("FAIL: out of memory\n");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static const uint32_t types[] = {GGML_Q2_0, GGML_TQ2_0, GGML_TQ1_0};

/* A random matrix of a ternary type: random code bytes, scales in [0.01, 0.1) (a few negative, a
 * few zero). Q2_0 / TQ2_0 codes of 3 (w = 2d, unused by ternary models) are included. */
static ob_weight make_w(uint32_t type, int rows, int cols) {
    const ob_type_row *tt = ob_type_find(type);
    ob_weight w = {type, rows, cols, (size_t)(cols / tt->block) * tt->bytes, NULL, 0, 0};
    const int d_off = type == GGML_Q2_0 ? 0 : type == GGML_TQ2_0 ? 64 : 52;
    uint8_t *d = xalloc((size_t)rows * w.row_bytes);
    for (size_t i = 0; i < (size_t)rows * w.row_bytes; i++) d[i] = (uint8_t)rng_u64();
    for (size_t i = 0; i < (size_t)rows * w.row_bytes; i += tt->bytes) {
        float s = (float)(0.01 + 0.09 * rng_unif());
        const uint64_t r = rng_u64();
        if (r % 17 == 0) s = -s;
        if (r % 31 == 0) s = 0.0f;
        const uint16_t h = ob_f32_to_fp16(s);
        memcpy(d + i + d_off, &h, 2);
    }
    w.data = d;
    return w;
}

/* x[n][cols]: exact = 1 puts every 64-block on its int8 grid (q * 2^-k, one |q| = 127);
 * exact = 0 gives Gaussian values (some blocks all zero). */
static void make_x(float *x, int n, int cols, int exact) {
    for (int t = 0; t < n; t++)
        for (int b = 0; b < cols / TK_BLK; b++) {
            float *xb = x + (size_t)t * cols + (size_t)b * TK_BLK;
            if (exact) {
                const float u = ldexpf(1.0f, -(int)(rng_u64() % 7));
                for (int j = 0; j < TK_BLK; j++) xb[j] = (float)((int)(rng_u64() % 255) - 127) * u;
                xb[rng_u64() % TK_BLK] = (rng_u64() & 1 ? 127.0f : -127.0f) * u;
            } else if (rng_u64() % 23 == 0) {
                memset(xb, 0, TK_BLK * sizeof *xb);
            } else {
                for (int j = 0; j < TK_BLK; j++) xb[j] = rng_gauss();
            }
        }
}

static const tk_isa *const isas[] = {&tk_isa_generic, &tk_isa_avx512, &tk_isa_avx2, &tk_isa_neon, &tk_isa_wasm};

static void test_quant(const tk_isa *isa) {
    static const int colss[] = {64, 256, 6912};
    for (size_t ci = 0; ci < 3; ci++) {
        const int cols = colss[ci], nb = cols / TK_BLK;
        float *x = xalloc((size_t)cols * 4);
        int8_t *q0 = xalloc((size_t)cols), *q1 = xalloc((size_t)cols), *l0 = xalloc((size_t)cols), *l1 = xalloc((size_t)cols);
        float *a0 = xalloc((size_t)nb * 4), *a1 = xalloc((size_t)nb * 4), *c0 = xalloc((size_t)nb * 4), *c1 = xalloc((size_t)nb * 4);
        for (int rep = 0; rep < 8; rep++) {
            const int two = rep >= 4;
            make_x(x, 1, cols, rep & 1);
            if (rep % 4 == 2) x[5] = 1e30f; /* one huge value: the rest of its block rounds to 0 */
            if (rep % 4 == 3) memset(x, 0, TK_BLK * sizeof *x);
            tk_quant_generic(x, cols, q0, two ? l0 : NULL, a0, c0);
            isa->quant(x, cols, q1, two ? l1 : NULL, a1, c1);
            CHECK(memcmp(q0, q1, (size_t)cols) == 0 && (!two || memcmp(l0, l1, (size_t)cols) == 0),
                  "%s quant cols=%d rep=%d: integer values differ", isa->name, cols, rep);
            CHECK(memcmp(a0, a1, (size_t)nb * 4) == 0 && memcmp(c0, c1, (size_t)nb * 4) == 0,
                  "%s quant cols=%d rep=%d: block scales differ", isa->name, cols, rep);
            /* the planes rebuild Q within range: |h| <= 127, -64 <= l <= 63 */
            int ok = 1;
            for (int j = 0; j < cols && two; j++) ok &= q1[j] >= -127 && l1[j] >= -64 && l1[j] <= 63;
            CHECK(ok, "%s quant cols=%d rep=%d: plane out of range", isa->name, cols, rep);
        }
        free(x); free(q0); free(q1); free(l0); free(l1); free(a0); free(a1); free(c0); free(c1);
    }
}

/* Repacked product vs the portable one and vs the specification. */
static void test_gemm(const tk_isa *isa) {
    static const struct { int rows, cols; } shapes[] = {{1, 256}, {15, 256}, {16, 512}, {17, 768}, {40, 1280}};
    static const int ns[] = {1, 2, 3, 5, 8, 9, 17};
    for (size_t ti = 0; ti < 3; ti++) {
        double se_m[3] = {0}, sy_m[3] = {0}; /* squared errors vs the specification, per mode, over all cases */
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            const int rows = shapes[si].rows, cols = shapes[si].cols;
            if (types[ti] == GGML_Q2_0 && si == 0) continue; /* (Q2_0 gets a 64-column case below) */
            ob_weight w = make_w(types[ti], rows, cols);
            const size_t bytes = tk_packed_size(types[ti], rows, cols);
            uint8_t *pk = xalloc(bytes);
            const int n_tiles = (rows + TK_TILE - 1) / TK_TILE;
            tk_repack(w.type, w.data, w.row_bytes, rows, cols, pk, 0, n_tiles);
            const tk_mat m = {pk, rows, cols, cols / TK_BLK, n_tiles, tk_group_blocks(w.type)};
            float *wf = xalloc((size_t)rows * cols * 4); /* the weights as the table decodes them */
            ob_type_find(w.type)->dequant(w.data, wf, (size_t)rows * cols);
            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
                for (int mode = 0; mode < 3; mode++) { /* 0: int8 exact grid, 1: int8 Gaussian, 2: int16 Gaussian */
                    const int n = ns[ni], two = mode == 2, nb = cols / TK_BLK;
                    float *x = xalloc((size_t)n * cols * 4), *a = xalloc((size_t)n * nb * 4), *c = xalloc((size_t)n * nb * 4);
                    int8_t *q = xalloc((size_t)n * cols), *l = xalloc((size_t)n * cols);
                    make_x(x, n, cols, mode == 0);
                    for (int t = 0; t < n; t++)
                        tk_quant_generic(x + (size_t)t * cols, cols, q + (size_t)t * cols, two ? l + (size_t)t * cols : NULL,
                                         a + (size_t)t * nb, c + (size_t)t * nb);
                    const tk_act act = {q, two ? l : NULL, a, c, cols, nb};
                    const size_t ys = (size_t)rows + 5; /* sentinels past the last row */
                    float *y0 = xalloc((size_t)n * ys * 4), *y1 = xalloc((size_t)n * ys * 4), *yr = xalloc((size_t)n * rows * 4);
                    for (size_t i = 0; i < (size_t)n * ys; i++) y0[i] = y1[i] = 12345.0f;
                    tk_gemm_generic(&m, 0, n_tiles, &act, n, y0, ys);
                    /* the ISA's kernel over two tile ranges, as threads would split it */
                    const int mid = n_tiles / 2;
                    isa->gemm(&m, 0, mid, &act, n, y1, ys);
                    isa->gemm(&m, mid, n_tiles, &act, n, y1, ys);
                    scalar_matmul(NULL, &w, x, yr, n);
                    double se = 0, sy = 0;
                    int bad = 0, sent = 0, exact_bad = 0;
                    for (int t = 0; t < n; t++) {
                        for (int r = 0; r < rows; r++) {
                            const float g = y1[(size_t)t * ys + r], want = y0[(size_t)t * ys + r];
                            double abs_sum = 0; /* scale of the sum: sum |d w x| */
                            const float *wrow = wf + (size_t)r * cols;
                            for (int j = 0; j < cols; j++) abs_sum += fabs((double)wrow[j] * x[(size_t)t * cols + j]);
                            bad += fabs((double)g - want) > 1e-5 * abs_sum + 1e-30;
                            const double e = (double)g - yr[(size_t)t * rows + r];
                            if (mode == 0) exact_bad += fabs(e) > 1e-5 * abs_sum + 1e-30;
                            se += e * e;
                            sy += (double)yr[(size_t)t * rows + r] * yr[(size_t)t * rows + r];
                        }
                        for (size_t r = (size_t)rows; r < ys; r++) sent += y1[(size_t)t * ys + r] != 12345.0f;
                    }
                    const char *tn = ob_type_find(w.type)->name;
                    CHECK(!bad, "%s %s %dx%d n=%d mode %d: %d outputs differ from the portable kernel", isa->name, tn, rows,
                          cols, n, mode, bad);
                    CHECK(!sent, "%s %s %dx%d n=%d: wrote past the last row", isa->name, tn, rows, cols, n);
                    CHECK(!exact_bad, "%s %s %dx%d n=%d: grid input not exact vs scalar (%d)", isa->name, tn, rows, cols, n,
                          exact_bad);
                    se_m[mode] += se;
                    sy_m[mode] += sy;
                    free(x); free(a); free(c); free(q); free(l); free(y0); free(y1); free(yr);
                }
            free(pk);
            free(wf);
            free((void *)w.data);
        }
        const char *tn = ob_type_find(types[ti])->name;
        printf("%s %s: relative RMS vs scalar int8 %.3g%%, int16 %.3g%%\n", isa->name, tn, 100 * sqrt(se_m[1] / sy_m[1]),
               100 * sqrt(se_m[2] / sy_m[2]));
        CHECK(se_m[1] <= 1e-4 * sy_m[1], "%s %s int8: rel RMS %.3g", isa->name, tn, sqrt(se_m[1] / sy_m[1]));
        CHECK(se_m[2] <= 1e-8 * sy_m[2], "%s %s int16: rel RMS %.3g", isa->name, tn, sqrt(se_m[2] / sy_m[2]));
    }
}

/* Q2_0 at its own block size: 64 columns (one tile-block). */
static void test_q2_64(const tk_isa *isa) {
    ob_weight w = make_w(GGML_Q2_0, 21, 64);
    uint8_t *pk = xalloc(tk_packed_size(GGML_Q2_0, 21, 64));
    tk_repack(w.type, w.data, w.row_bytes, 21, 64, pk, 0, 2);
    const tk_mat m = {pk, 21, 64, 1, 2, 1};
    float x[3 * 64], a[3], c[3], y[3 * 21], yr[3 * 21];
    int8_t q[3 * 64], l[3 * 64];
    make_x(x, 3, 64, 0);
    for (int t = 0; t < 3; t++) tk_quant_generic(x + 64 * t, 64, q + 64 * t, l + 64 * t, a + t, c + t);
    const tk_act act = {q, l, a, c, 64, 1};
    isa->gemm(&m, 0, 2, &act, 3, y, 21);
    scalar_matmul(NULL, &w, x, yr, 3);
    double se = 0, sy = 0;
    for (int i = 0; i < 3 * 21; i++) se += (double)(y[i] - yr[i]) * (y[i] - yr[i]), sy += (double)yr[i] * yr[i];
    CHECK(se <= 1e-8 * sy, "%s Q2_0 21x64: rel RMS %.3g", isa->name, sqrt(se / sy));
    free(pk);
    free((void *)w.data);
}

/* The backend's hook: tk_init on a small model of the three types, tk_matmul on 1 and 3 threads,
 * with int8 activations (planes = 1, the default) or int16 (ONEBIT_CPU_TERN_PLANES=2). */
static void test_hook(const tk_isa *isa, int planes) {
    if (isa == &tk_isa_generic) return; /* the hook takes SIMD tables only */
    if (planes == 2) setenv("ONEBIT_CPU_TERN_PLANES", "2", 1);
    else unsetenv("ONEBIT_CPU_TERN_PLANES");
    enum { NW = 4 };
    ob_weight ws[NW] = {make_w(GGML_Q2_0, 37, 192), make_w(GGML_TQ2_0, 50, 512), make_w(GGML_TQ1_0, 18, 256),
                        make_w(GGML_TQ2_0, 3, 6912)};
    for (int i = 0; i < NW; i++) ws[i].id = i;
    ob_model *m = calloc(1, sizeof *m);
    m->n_weights = NW;
    m->weights = ws;
    tp_pool *p1 = tp_new(1), *p3 = tp_new(3);
    tk_state *s1 = NULL, *s3 = NULL;
    CHECK(p1 && p3 && tk_init(&s1, isa->name, m, p1) == OB_OK && tk_init(&s3, isa->name, m, p3) == OB_OK,
          "%s: tk_init failed", isa->name);
    CHECK(s1 && s3 && strcmp(tk_isa_name(s3), isa->name) == 0, "%s: tk_init chose %s", isa->name, tk_isa_name(s3));
    static const int ns[] = {1, 3, 70};
    double se = 0, sy = 0;
    for (int i = 0; i < NW && s1 && s3; i++)
        for (int k = 0; k < 3; k++) {
            const ob_weight *w = &ws[i];
            const int n = ns[k];
            float *x = xalloc((size_t)n * w->cols * 4), *y1 = xalloc((size_t)n * w->rows * 4),
                  *y3 = xalloc((size_t)n * w->rows * 4), *yr = xalloc((size_t)n * w->rows * 4);
            make_x(x, n, w->cols, 0);
            CHECK(tk_matmul(s1, w, x, y1, n) && tk_matmul(s3, w, x, y3, n), "%s: weight %d not repacked", isa->name, i);
            scalar_matmul(NULL, w, x, yr, n);
            for (int j = 0; j < n * w->rows; j++) se += (double)(y3[j] - yr[j]) * (y3[j] - yr[j]), sy += (double)yr[j] * yr[j];
            CHECK(memcmp(y1, y3, (size_t)n * w->rows * 4) == 0, "%s hook weight %d n=%d: 1 and 3 threads differ", isa->name, i, n);
            free(x); free(y1); free(y3); free(yr);
        }
    printf("%s hook, %d plane(s): relative RMS vs scalar %.3g%%\n", isa->name, planes, 100 * sqrt(se / sy));
    CHECK(se <= (planes == 2 ? 1e-8 : 1e-4) * sy, "%s hook, %d plane(s): rel RMS %.3g", isa->name, planes, sqrt(se / sy));
    ob_weight other = make_w(GGML_TQ2_0, 2, 256); /* not a weight of the model */
    other.id = -1;
    float xo[256] = {0}, yo[2];
    CHECK(!s1 || tk_matmul(s1, &other, xo, yo, 1) == 0, "%s: tk_matmul took a weight it did not repack", isa->name);
    free((void *)other.data);
    tk_free(s1);
    tk_free(s3);
    tp_free(p1);
    tp_free(p3);
    for (int i = 0; i < NW; i++) free((void *)ws[i].data);
    free(m);
}

/* The repacked sizes: the file's bits a weight for Q2_0 and TQ2_0 (one scale per 64 / 256 columns). */
static void test_sizes(void) {
    CHECK(tk_packed_size(GGML_Q2_0, 32, 512) == (size_t)32 * 512 / 64 * 18, "Q2_0 packed size");
    CHECK(tk_packed_size(GGML_TQ2_0, 32, 512) == (size_t)32 * 512 / 256 * 66, "TQ2_0 packed size");
    CHECK(tk_packed_size(GGML_TQ1_0, 17, 256) == (size_t)32 * 66, "TQ1_0 packed size (rows padded to 16)");
    CHECK(tk_packed_size(GGML_TQ2_0, 16, 192) == 0 && tk_packed_size(GGML_Q2_0, 16, 100) == 0 &&
              tk_packed_size(GGML_F32, 16, 256) == 0,
          "bad shapes or types have no packed size");
}

/* With an argument, only the table of that name is checked (the emulated runs of tests/neon.sh and
 * tests/wasm-kernels.sh: the portable one is checked natively). */
int main(int argc, char **argv) {
    int ran = 0;
    test_sizes();
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        const tk_isa *isa = isas[i];
        if (argc > 1 && strcmp(argv[1], isa->name) != 0) continue;
        if (!isa->compiled || !isa->supported()) {
            printf("skip: %s ternary kernels %s\n", isa->name, isa->compiled ? "not supported by this CPU" : "not built in");
            continue;
        }
        ran++;
        test_quant(isa);
        test_gemm(isa);
        test_q2_64(isa);
        test_hook(isa, 1);
        test_hook(isa, 2);
        printf("%s ternary kernels checked\n", isa->name);
    }
    CHECK(ran >= 1, "no kernel table ran");
    if (failures) printf("%d checks failed\n", failures);
    return failures ? 1 : 0;
}
