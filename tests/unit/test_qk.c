/* test_qk.c — the integer-dot kernels of qk.h against the portable version and the specification.
 *
 * For each weight type with a kernel (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), random valid
 * blocks (random code bytes, fp16 scales and minimums of either sign) and every kernel table built
 * in and runnable on this CPU (portable C, AVX-512 VNNI, AVX2, NEON, wasm SIMD128):
 *  - qk_quant: scales amax / 127, codes within 127 and the sums per 16 equal to the codes'; a
 *    table's own quantisation (qk_isa.quant) gives the same bytes;
 *  - the portable kernel equals the type table's reference dot (quant.h) up to float rounding
 *    (1e-5 of the sum of absolute terms) when the activations lie on the int8 grid of each block,
 *    and stays within 1% (blocks of 32) or 2% (blocks of 256) relative RMS of it for Gaussian
 *    activations (int8 rounding: measured 0.3-0.7%, 1.2% for Q4_K whose minimums cancel);
 *  - each SIMD kernel equals the portable one on the same quantised activations up to float
 *    rounding (1e-5 of the sum of absolute terms), for 1..9 tokens (groups of QK_NT and remainders),
 *    several widths (one block up to 4096 columns) and a partial row range, writing nothing outside
 *    it;
 *  - each SIMD kernel of the repacked layout (qk_repack: Q4_0, Q8_0 on x86) equals the portable row
 *    kernel on the file's rows in the same way, for 1..17 tokens, 37 rows (a partly padded group)
 *    and partial ranges of row groups.
 * Thread-count independence and the whole backend are tested in test_kernels.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "qk.h"
#include "quant.h"

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

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rng_unif(void) { return (double)(rng_u64() >> 11) / 9007199254740992.0; }
static float rng_gauss(void) {
    const double u = rng_unif() + 1e-12, v = rng_unif();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void *xalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        printf("out of memory\n");
        exit(1);
    }
    return p;
}

/* Byte offsets of each type's fp16 fields (scale, min; -1 none). */
static const struct { uint32_t type; int off[2]; } types[] = {
    {GGML_Q8_0, {0, -1}}, {GGML_Q4_0, {0, -1}}, {GGML_Q4_1, {0, 2}},  {GGML_Q5_0, {0, -1}},
    {GGML_Q5_1, {0, 2}},  {GGML_Q4_K, {0, 2}},  {GGML_Q5_K, {0, 2}},  {GGML_Q6_K, {208, -1}},
};
#define NTYPES (int)(sizeof types / sizeof *types)

static uint8_t *make_rows(int ti, int rows, int cols, size_t *rb) {
    const ob_type_row *tr = ob_type_find(types[ti].type);
    *rb = (size_t)cols / (size_t)tr->block * (size_t)tr->bytes;
    const size_t total = (size_t)rows * *rb;
    uint8_t *d = xalloc(total);
    for (size_t j = 0; j < total; j++) d[j] = (uint8_t)rng_u64();
    for (size_t b = 0; b < total; b += (size_t)tr->bytes)
        for (int k = 0; k < 2; k++)
            if (types[ti].off[k] >= 0) {
                const float v = (float)(0.001 + 0.01 * rng_unif()) * (rng_u64() % 5 ? 1.0f : -1.0f);
                const uint16_t h = ob_f32_to_fp16(v);
                memcpy(d + b + types[ti].off[k], &h, 2);
            }
    return d;
}

typedef struct acts {
    int8_t *q;
    float *d, *x;
    int16_t *s;
    qk_act a;
} acts;

/* n tokens of cols values: on_grid puts each block's values on its int8 grid (a power-of-two scale,
 * a code of 127 in each block), else Gaussian with an all-zero block. */
static acts make_acts(int n, int cols, int blk, int on_grid) {
    acts A;
    A.x = xalloc((size_t)n * cols * sizeof(float));
    A.q = xalloc((size_t)n * cols);
    A.d = xalloc((size_t)n * (cols / blk) * sizeof(float));
    A.s = xalloc((size_t)n * (cols / 16) * sizeof(int16_t));
    for (int t = 0; t < n; t++)
        for (int b = 0; b < cols / blk; b++) {
            float *xb = A.x + (size_t)t * cols + (size_t)b * blk;
            const float sc = ldexpf(1.0f, (int)(rng_u64() % 8) - 10);
            for (int i = 0; i < blk; i++) {
                if (on_grid) xb[i] = i == 0 ? 127.0f * sc * (rng_u64() & 1 ? 1 : -1) : (float)((int)(rng_u64() % 255) - 127) * sc;
                else xb[i] = (t + b) % 7 == 3 ? 0.0f : rng_gauss();
            }
        }
    for (int t = 0; t < n; t++)
        qk_quant(A.x + (size_t)t * cols, cols, blk, A.q + (size_t)t * cols, A.d + (size_t)t * (cols / blk),
                 A.s + (size_t)t * (cols / 16));
    A.a = (qk_act){A.q, A.d, A.s, cols, blk};
    return A;
}

static void free_acts(acts *A) {
    free(A->x);
    free(A->q);
    free(A->d);
    free(A->s);
}

static void test_quant(void) {
    for (int blk = 32; blk <= 256; blk *= 8) {
        acts A = make_acts(3, 512, blk, 0);
        int bad = 0;
        for (int t = 0; t < 3; t++) {
            for (int b = 0; b < 512 / blk; b++) {
                float amax = 0;
                for (int i = 0; i < blk; i++) amax = fmaxf(amax, fabsf(A.x[t * 512 + b * blk + i]));
                bad += A.d[t * (512 / blk) + b] != amax / 127.0f;
                for (int i = 0; i < blk; i++) {
                    const int q = A.q[t * 512 + b * blk + i];
                    const float d = A.d[t * (512 / blk) + b];
                    bad += q < -127 || q > 127 || (d > 0 && fabsf(q * d - A.x[t * 512 + b * blk + i]) > 0.5001f * d);
                }
            }
            for (int g = 0; g < 32; g++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += A.q[t * 512 + g * 16 + i];
                bad += sum != A.s[t * 32 + g];
            }
        }
        CHECK(bad == 0, "qk_quant blocks of %d: %d values wrong", blk, bad);
        free_acts(&A);
    }
}

/* A table's own quantisation (qk_isa.quant) gives qk_quant's bytes exactly: Gaussian values, an
 * all-zero block, and values half-way between codes (ties to even). */
static void test_isa_quant(const qk_isa *isa) {
    if (!isa->quant) return;
    enum { C = 1024 };
    for (int blk = 32; blk <= 256; blk *= 8) {
        float *x = xalloc(sizeof(float) * C);
        int8_t q[2][C];
        float d[2][C / 32];
        int16_t sm[2][C / 16];
        for (int i = 0; i < C; i++) {
            const int b = i / blk;
            x[i] = b == 1 ? 0.0f : b == 2 ? (i % blk == 0 ? 127.0f : (float)((int)(rng_u64() % 253) - 126) + 0.5f) : rng_gauss() * (float)(b + 1);
        }
        memset(q, 0x55, sizeof q);
        qk_quant(x, C, blk, q[0], d[0], sm[0]);
        isa->quant(x, C, blk, q[1], d[1], sm[1]);
        CHECK(memcmp(q[0], q[1], C) == 0 && memcmp(d[0], d[1], sizeof(float) * (C / blk)) == 0 &&
                  memcmp(sm[0], sm[1], sizeof sm[0]) == 0,
              "%s quant (blocks of %d) differs from qk_quant", isa->name, blk);
        free(x);
    }
}

/* Sum over the row of |w_i| |x_i| with x the quantised activations: the scale of float rounding. */
static double abs_terms(const ob_type_row *tr, const uint8_t *row, const acts *A, int t, int cols, float *wbuf) {
    tr->dequant(row, wbuf, (size_t)cols);
    double s = 0;
    for (int i = 0; i < cols; i++)
        s += fabs((double)wbuf[i]) * fabs((double)A->q[(size_t)t * cols + i] * A->d[(size_t)t * (cols / A->a.blk) + i / A->a.blk]);
    return s;
}

/* The portable kernel against the type table's dot. */
static void test_reference(int ti) {
    const qk_kern *k = qk_in(&qk_isa_generic, types[ti].type);
    const ob_type_row *tr = ob_type_find(types[ti].type);
    CHECK(k != NULL, "no portable kernel for %s", tr->name);
    if (!k) return;
    enum { R = 11, N = 3 };
    const int cols = 1024;
    size_t rb;
    uint8_t *w = make_rows(ti, R, cols, &rb);
    float *y = xalloc(sizeof(float) * R * N), *wbuf = xalloc(sizeof(float) * cols);
    for (int grid = 1; grid >= 0; grid--) {
        acts A = make_acts(N, cols, k->act_blk, grid);
        k->rows(w, rb, 0, R, &A.a, N, y, R);
        double se = 0, sr = 0;
        int bad = 0;
        for (int t = 0; t < N; t++)
            for (int r = 0; r < R; r++) {
                const double ref = tr->dot(w + (size_t)r * rb, A.x + (size_t)t * cols, (size_t)cols);
                const double e = y[t * R + r] - ref;
                se += e * e, sr += ref * ref;
                if (grid) bad += fabs(e) > 1e-5 * abs_terms(tr, w + (size_t)r * rb, &A, t, cols, wbuf) + 1e-30;
            }
        if (grid) CHECK(bad == 0, "%s portable kernel, activations on the grid: %d of %d off the reference", tr->name, bad, R * N);
        else {
            printf("test_qk: %s, Gaussian activations: relative RMS error %.4f\n", tr->name, sqrt(se / sr));
            CHECK(se <= (k->act_blk == QK_ACT32 ? 1e-4 : 4e-4) * sr, "%s portable kernel, Gaussian activations: relative RMS error %.3g", tr->name, sqrt(se / sr));
        }
        free_acts(&A);
    }
    free(w);
    free(y);
    free(wbuf);
}

/* A SIMD kernel's outputs yk against the portable kernel's yg ([n][R]) on rows [r0, r1), within
 * 1e-5 of the sum of the absolute terms, and yk left NaN outside those rows. */
static void expect_rows(const char *isa, const ob_type_row *tr, const char *layout, const uint8_t *w, size_t rb,
                        const acts *A, int cols, int n, int R, int r0, int r1, const float *yk, const float *yg,
                        float *wbuf) {
    int bad = 0, outside = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < R; r++) {
            const float v = yk[t * R + r];
            if (r < r0 || r >= r1) {
                outside += !isnan(v);
                continue;
            }
            const double tol = 1e-5 * abs_terms(tr, w + (size_t)r * rb, A, t, cols, wbuf) + 1e-30;
            if (!(fabs((double)v - yg[t * R + r]) <= tol)) {
                if (bad < 3) printf("  %s %s %s cols %d n %d row %d token %d: %.9g vs %.9g\n", isa, tr->name, layout, cols, n, r, t, v, yg[t * R + r]);
                bad++;
            }
        }
    CHECK(bad == 0, "%s %s %s cols=%d n=%d: %d outputs off the portable kernel", isa, tr->name, layout, cols, n, bad);
    CHECK(outside == 0, "%s %s %s cols=%d n=%d: %d outputs written outside rows %d..%d", isa, tr->name, layout, cols, n, outside, r0, r1);
}

/* A SIMD table's kernel against the portable one. */
static void test_isa(const qk_isa *isa, int ti) {
    const qk_kern *k = qk_in(isa, types[ti].type), *g = qk_in(&qk_isa_generic, types[ti].type);
    const ob_type_row *tr = ob_type_find(types[ti].type);
    if (!k || !g) return;
    static const int widths[] = {256, 768, 4096};
    enum { R = 37 };
    for (int wi = 0; wi < 3; wi++) {
        const int cols = widths[wi];
        size_t rb;
        uint8_t *w = make_rows(ti, R, cols, &rb);
        float *wbuf = xalloc(sizeof(float) * cols);
        for (int n = 1; n <= 9; n += (cols > 1024 ? 4 : 1)) {
            acts A = make_acts(n, cols, k->act_blk, 0);
            float *yk = xalloc(sizeof(float) * R * n), *yg = xalloc(sizeof(float) * R * n);
            for (int i = 0; i < R * n; i++) yk[i] = NAN;
            const int r0 = n % 2 ? 0 : 3, r1 = n % 2 ? R : R - 2; /* partial ranges too */
            k->rows(w, rb, r0, r1, &A.a, n, yk, R);
            g->rows(w, rb, r0, r1, &A.a, n, yg, R);
            expect_rows(isa->name, tr, "rows", w, rb, &A, cols, n, R, r0, r1, yk, yg, wbuf);
            free(yk);
            free(yg);
            free_acts(&A);
        }
        free(w);
        free(wbuf);
    }
}

/* A SIMD table's kernel of the repacked layout (qk.h), on qk_repack's output, against the portable
 * row kernel on the file's rows: every group or a partial range of groups, 1..17 tokens (tiles and
 * remainders), a row count that is not a multiple of 8 (the last group partly padding). */
static void test_pack(const qk_isa *isa, int ti) {
    const qk_kern *k = qk_in(isa, types[ti].type), *g = qk_in(&qk_isa_generic, types[ti].type);
    const ob_type_row *tr = ob_type_find(types[ti].type);
    if (!k || !g || !k->pack) return;
    static const int widths[] = {32, 256, 4096};
    enum { R = 37 };
    const int groups = (R + QK_PR - 1) / QK_PR;
    for (int wi = 0; wi < 3; wi++) {
        const int cols = widths[wi];
        if (cols % k->act_blk) continue;
        size_t rb;
        uint8_t *w = make_rows(ti, R, cols, &rb);
        const size_t pbytes = qk_pack_size(types[ti].type, R, cols);
        CHECK(pbytes >= (size_t)groups * QK_PR * rb && pbytes <= (size_t)groups * QK_PR * rb * 21 / 20, "%s pack size %zu", tr->name, pbytes);
        uint8_t *pk = xalloc(pbytes);
        memset(pk, 0xA5, pbytes);
        qk_repack(types[ti].type, w, rb, R, cols, pk, 0, 2);
        qk_repack(types[ti].type, w, rb, R, cols, pk, 2, groups); /* in two calls, as the backend's slabs */
        float *wbuf = xalloc(sizeof(float) * cols);
        for (int n = 1; n <= 17; n += (cols > 1024 ? 5 : 1)) {
            acts A = make_acts(n, cols, k->act_blk, 0);
            float *yk = xalloc(sizeof(float) * R * n), *yg = xalloc(sizeof(float) * R * n);
            for (int i = 0; i < R * n; i++) yk[i] = NAN;
            const int g0 = n % 2 ? 0 : 1, g1 = n % 3 ? groups : groups - 1;
            const int r0 = QK_PR * g0, r1 = QK_PR * g1 < R ? QK_PR * g1 : R;
            int32_t *o = xalloc(sizeof(int32_t) * (size_t)n * (cols / 32));
            for (int t = 0; t < n; t++) qk_pack_offsets(A.s + (size_t)t * (cols / 16), cols / 32, o + (size_t)t * (cols / 32));
            k->pack(pk, cols / k->act_blk, g0, g1, R, &A.a, o, n, yk, R);
            free(o);
            g->rows(w, rb, r0, r1, &A.a, n, yg, R);
            expect_rows(isa->name, tr, "packed", w, rb, &A, cols, n, R, r0, r1, yk, yg, wbuf);
            free(yk);
            free(yg);
            free_acts(&A);
        }
        free(pk);
        free(w);
        free(wbuf);
    }
}

int main(void) {
    test_quant();
    for (int ti = 0; ti < NTYPES; ti++) test_reference(ti);
    const qk_isa *isas[] = {&qk_isa_avx512, &qk_isa_avx2, &qk_isa_neon, &qk_isa_wasm};
    for (int i = 0; i < 4; i++) {
        const qk_isa *isa = isas[i];
        if (!isa->compiled || !isa->supported()) {
            printf("test_qk: %s not built in or not run by this CPU: skipped\n", isa->name);
            continue;
        }
        test_isa_quant(isa);
        for (int ti = 0; ti < NTYPES; ti++) test_isa(isa, ti);
        for (int ti = 0; ti < NTYPES; ti++) test_pack(isa, ti);
        printf("test_qk: %s checked\n", isa->name);
    }
    if (failures) {
        printf("test_qk: %d failures\n", failures);
        return 1;
    }
    printf("test_qk: ok\n");
    return 0;
}
