/* q1-kernels.c — single-thread throughput of the Q1_0 product of each kernel table (cpu_kern.h).
 *
 * A random rows x cols Q1_0 matrix is repacked once, n tokens of random activations are quantised
 * (int16, two planes, as the backend does for prompts; PLANES 1: int8, ONEBIT_CPU_Q1_PLANES=1; PLANES 3: int8
 * with a scale per 32 columns, ONEBIT_CPU_Q1_ACT=int8x32, only the tables with quant32; PLANES 4:
 * int14 in two planes, ONEBIT_CPU_Q1_ACT=int14 and one token by default where the vpermb tables
 * run: their two-table form, only the tables with quant14) and,
 * for the tables with lookup tables, tabled (AVX-512 VBMI: one token's and, for several tokens,
 * every token's vpermb tables, the backend's one-token and prompt paths, timed too); then
 * the best of 15 timings (each ~20 ms of repetitions) of the product over all tiles (1 thread) is printed as weights x tokens
 * per second, with the table-building cost per token. Sizes that fit L2 (the default 2048 x 2048:
 * 576 KiB) measure arithmetic, not memory: the ratio between tables is what to read, since a
 * shared machine moves the absolute figures. Not a test (tests/unit/test_kernels.c checks these
 * kernels). On AVX-512 VNNI machines the arithmetic peak of vpdpbusd is printed first, in the same
 * unit (32 weights x tokens per instruction with two activation planes). Build and run:
 *   cc -O2 -std=c11 -Isrc/cpu -Isrc/core -Iinclude bench/q1-kernels.c build/libonebit.a -lm -lpthread -o build/q1-kernels
 *   build/q1-kernels [ROWS COLS N [PLANES]]   # every table this CPU runs, N tokens (default 1 and 64)
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbench.h"

#include "cpu_kern.h"

typedef struct ck_gemm_call {
    const ck_isa *isa;
    const ck_q1 *w;
    const ck_act *act;
    int n;
    float *y;
    size_t ys;
} ck_gemm_call;

static void ck_gemm_once(void *arg) {
    const ck_gemm_call *c = arg;
    c->isa->gemm(c->w, 0, c->w->n_tiles, c->act, c->n, c->y, c->ys);
}

static void run(const ck_isa *isa, int rows, int cols, int n, int form) {
    const int nb = cols / 128, k14 = form == 4, planes = k14 ? 2 : form;
    if (planes == 3 && !isa->quant32) return; /* no int8-per-32 form in this table */
    if (k14 && !isa->quant14) return;
    const size_t rb = (size_t)nb * 18;
    uint8_t *src = kb_alloc("q1-kernels", (size_t)rows * rb);
    for (size_t i = 0; i < (size_t)rows * rb; i++) src[i] = (uint8_t)rand();
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) memcpy(src + (size_t)r * rb + (size_t)b * 18, &(uint16_t){0x2c00}, 2);
    ck_q1 w = {NULL, rows, cols, nb, (rows + 15) / 16};
    uint8_t *packed = kb_alloc("q1-kernels", ck_q1_packed_size(rows, cols));
    ck_q1_repack(src, rb, rows, cols, packed, 0, w.n_tiles);
    w.data = packed;
    float *x = kb_alloc("q1-kernels", (size_t)n * cols * sizeof(float)), *a = kb_alloc("q1-kernels", (size_t)n * nb * 4 * sizeof(float));
    float *c = kb_alloc("q1-kernels", (size_t)n * nb * sizeof(float)), *y = kb_alloc("q1-kernels", (size_t)n * rows * sizeof(float));
    int8_t *q = kb_alloc("q1-kernels", (size_t)n * cols), *ql = kb_alloc("q1-kernels", (size_t)n * cols);
    for (size_t i = 0; i < (size_t)n * cols; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int t = 0; t < n; t++)
        if (planes == 3) isa->quant32(x + (size_t)t * cols, cols, q + (size_t)t * cols, a + (size_t)t * nb * 4, c + (size_t)t * nb);
        else (k14 ? isa->quant14 : isa->quant)(x + (size_t)t * cols, cols, q + (size_t)t * cols, planes == 2 ? ql + (size_t)t * cols : NULL,
                        a + (size_t)t * nb, c + (size_t)t * nb);
    uint8_t *lut = isa->lut ? kb_alloc("q1-kernels", (size_t)n * cols * CK_LUT_PER_COL) : NULL;
    double best_lut = 1e9, best = 1e9;
    for (int k = 0; k < 15 && lut; k++) {
        const double t0 = kb_cpu_s();
        for (int t = 0; t < n; t++)
            isa->lut(q + (size_t)t * cols, planes == 2 ? ql + (size_t)t * cols : NULL, cols,
                     lut + (size_t)t * cols * CK_LUT_PER_COL);
        const double dt = kb_cpu_s() - t0;
        if (dt < best_lut) best_lut = dt;
    }
    ck_act act = {q, planes == 2 ? ql : NULL, a, c, cols, nb, lut, (size_t)cols * CK_LUT_PER_COL, planes == 3, NULL, 3, NULL, 0, 0};
    ck_gemm_call call = {isa, &w, &act, n, y, (size_t)rows};
    /* One token: also through the ISA's vpermb tables where it has them (the backend's choice):
     * three planes for int16, two for int14. */
    uint8_t *vt = planes == 2 && n == 1 && isa->vtab ? kb_alloc("q1-kernels", (size_t)cols * CK_VT_PER_COL) : NULL;
    if (vt && isa->vtab(q, ql, cols, k14 ? 2 : 3, vt)) {
        act.vt = vt;
        act.vt_planes = k14 ? 2 : 3;
        best = kb_best(ck_gemm_once, &call, 15);
        double best_vt = 1e9;
        for (int k = 0; k < 15; k++) {
            const double t0 = kb_cpu_s();
            isa->vtab(q, ql, cols, k14 ? 2 : 3, vt);
            const double dt = kb_cpu_s() - t0;
            if (dt < best_vt) best_vt = dt;
        }
        printf("%-8s %5d x %5d, %2d tokens (vpermb tables, %s): %8.3f ms, %6.2f Gweights*tokens/s (tables: %.2f us)\n", isa->name,
               rows, cols, n, k14 ? "int14, 2 planes" : "int16, 3 planes", best * 1e3, (double)rows * cols * n / best / 1e9,
               best_vt * 1e6);
        act.vt = NULL;
    }
    free(vt);
    /* Several int16 tokens: also through every token's vpermb tables (the backend's prompt path
     * where VBMI runs), with the cost of building them. */
    const int vp = k14 ? 2 : 3;
    const size_t vst = ck_vtm_stride(cols, vp);
    uint8_t *vtm = planes == 2 && n > 1 && isa->vtab ? kb_alloc("q1-kernels", (size_t)n * vst) : NULL;
    if (vtm && isa->vtab(q, ql, cols, vp, vtm)) {
        double best_tab = 1e9;
        for (int k = 0; k < 15; k++) {
            const double t0 = kb_cpu_s();
            for (int t = 0; t < n; t++)
                isa->vtab(q + (size_t)t * cols, ql + (size_t)t * cols, cols, vp, vtm + (size_t)t * vst);
            const double dt = kb_cpu_s() - t0;
            if (dt < best_tab) best_tab = dt;
        }
        act.vtm = vtm, act.vtm_stride = vst, act.vtm_planes = vp;
        best = kb_best(ck_gemm_once, &call, 15);
        printf("%-8s %5d x %5d, %2d tokens (vpermb tables): %8.3f ms, %6.2f Gweights*tokens/s (tables: %.2f us per token)\n",
               isa->name, rows, cols, n, best * 1e3, (double)rows * cols * n / best / 1e9, best_tab / n * 1e6);
        act.vtm = NULL;
    }
    free(vtm);
    best = kb_best(ck_gemm_once, &call, 15);
    printf("%-8s %5d x %5d, %2d tokens%s: %8.3f ms, %6.2f Gweights*tokens/s", isa->name, rows, cols, n,
           k14 ? " (int14)" : planes == 2 ? "" : planes == 3 ? " (int8 per 32)" : " (int8)", best * 1e3,
           (double)rows * cols * n / best / 1e9);
    if (lut) printf(" (tables: %.2f us per token)", best_lut / n * 1e6);
    printf("\n");
    free(src); free(packed); free(x); free(a); free(c); free(y); free(q); free(ql); free(lut);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The arithmetic peak the AVX-512 VNNI kernel works against: vpdpbusd on 512 bits, 12 independent
 * accumulators (more than latency x throughput), timed like the products. One vpdpbusd does 64
 * byte products: 32 weights x tokens of Q1_0 with two activation planes. */
__attribute__((target("avx512f,avx512vnni"))) static double vnni_per_s(void) {
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(3);
    /* distinct starting values: equal ones would be folded into one chain */
    __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2), a3 = _mm512_set1_epi32(3),
            a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5), a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7),
            a8 = _mm512_set1_epi32(8), a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11);
    const long iters = 2000000;
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = kb_cpu_s();
        for (long i = 0; i < iters; i++) {
            a0 = _mm512_dpbusd_epi32(a0, a, b); a1 = _mm512_dpbusd_epi32(a1, a, b);
            a2 = _mm512_dpbusd_epi32(a2, a, b); a3 = _mm512_dpbusd_epi32(a3, a, b);
            a4 = _mm512_dpbusd_epi32(a4, a, b); a5 = _mm512_dpbusd_epi32(a5, a, b);
            a6 = _mm512_dpbusd_epi32(a6, a, b); a7 = _mm512_dpbusd_epi32(a7, a, b);
            a8 = _mm512_dpbusd_epi32(a8, a, b); a9 = _mm512_dpbusd_epi32(a9, a, b);
            a10 = _mm512_dpbusd_epi32(a10, a, b); a11 = _mm512_dpbusd_epi32(a11, a, b);
        }
        const double dt = kb_cpu_s() - t0;
        if (dt < best) best = dt;
    }
    const __m512i s0 = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                        _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
    volatile int sink = _mm512_reduce_add_epi32(_mm512_add_epi32(s0, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11))));
    (void)sink;
    return 12.0 * (double)iters / best;
}
#endif

int main(int argc, char **argv) {
    const int rows = argc > 1 ? atoi(argv[1]) : 2048, cols = argc > 2 ? atoi(argv[2]) : 2048;
    const int n = argc > 3 ? atoi(argv[3]) : 0, planes = argc > 4 ? atoi(argv[4]) : 2;
    if (rows < 1 || cols < 128 || cols % 128 || n < 0 || n > 4096 || planes < 1 || planes > 4) {
        fprintf(stderr, "usage: q1-kernels [ROWS COLS(multiple of 128) N(1..4096) [PLANES(1|2|3)]]\n");
        return 2;
    }
    const ck_isa *isas[] = {&ck_isa_avx512, &ck_isa_avx2, &ck_isa_neon, &ck_isa_wasm, &ck_isa_generic};
#if defined(__x86_64__) && defined(__GNUC__)
    if (ck_isa_avx512.compiled && ck_isa_avx512.supported()) {
        const double v = vnni_per_s();
        printf("vnni peak: %.2f G vpdpbusd zmm/s per thread = %.2f Gweights*tokens/s of Q1_0 (two planes)\n", v / 1e9,
               v * 32 / 1e9);
    }
#endif
    for (int k = 0; k < 2; k++) {
        const int nt = n ? n : k == 0 ? 1 : 64;
        for (size_t i = 0; i < sizeof isas / sizeof *isas; i++)
            if (isas[i]->compiled && isas[i]->supported()) run(isas[i], rows, cols, nt, planes);
        if (n) break;
    }
    return 0;
}
