/* tern-kernels.c — single-thread throughput of the ternary product (tern.h) of each kernel table
 * (the memory read bandwidth that bounds generation is bench/membw.c's).
 *
 * A random TQ2_0 (or Q2_0) rows x cols matrix is repacked once, n tokens of Gaussian activations quantised
 * (int8: one plane, or int16: two planes); then the best of 15 timings (each ~20 ms of
 * repetitions, thread CPU time: robust to other processes taking the core) of the product over
 * all tiles on one thread, as weights x tokens per second. Sizes that fit L2 (the default
 * 2560 x 2560: 1.8 MiB) measure arithmetic; a large matrix (e.g. 6912 x 2560 x 4 = 70 MB) measures
 * the streaming rate with one thread (the matrix on huge pages, as the backend's).
 * Not a test (tests/unit/test_tern.c checks these kernels); build and run:
 *   cc -O2 -std=gnu11 -Isrc/cpu -Isrc/core -Iinclude bench/tern-kernels.c build/libonebit.a -lm -lpthread -o build/tern-kernels
 *   build/tern-kernels [ROWS COLS N [TYPE]]  # every table this CPU runs, planes 1 and 2, N tokens (default 1
 *                                            # and 64; 0: both), TYPE tq2_0 (default) or q2_0
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kbench.h"

#include "gguf.h"
#include "tern.h"

static float gauss(void) {
    float s = 0.0f;
    for (int i = 0; i < 12; i++) s += (float)rand() / (float)RAND_MAX;
    return s - 6.0f;
}

typedef struct tk_gemm_call {
    const tk_isa *isa;
    const tk_mat *w;
    const tk_act *act;
    int n;
    float *y;
    size_t ys;
} tk_gemm_call;

/* The repacked matrix on huge pages where the kernel gives them, as the backend's (tern.c). */
static uint8_t *huge_alloc(size_t n) {
    const size_t a = (size_t)2 << 20, size = (n + a - 1) & ~(a - 1);
    uint8_t *p = aligned_alloc(a, size);
    if (!p) {
        fprintf(stderr, "tern-kernels: out of memory\n");
        exit(1);
    }
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE);
#endif
    memset(p, 0, n);
    return p;
}

static void tk_gemm_once(void *arg) {
    const tk_gemm_call *c = arg;
    c->isa->gemm(c->w, 0, c->w->n_tiles, c->act, c->n, c->y, c->ys);
}

static void run(uint32_t type, const tk_isa *isa, int rows, int cols, int n, int planes) {
    const int nb = cols / TK_BLK, q2 = type == GGML_Q2_0;
    const int blk = q2 ? 64 : 256, bbytes = q2 ? 18 : 66, d_off = q2 ? 0 : 64, c_off = q2 ? 2 : 0;
    const size_t rb = (size_t)cols / blk * bbytes;
    uint8_t *src = kb_alloc("tern-kernels", (size_t)rows * rb);
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < cols / blk; b++) {
            uint8_t *p = src + (size_t)r * rb + (size_t)b * bbytes;
            for (int i = 0; i < blk / 4; i++) { /* codes 0..2 */
                uint8_t v = 0;
                for (int k = 0; k < 4; k++) v |= (uint8_t)((rand() % 3) << (2 * k));
                p[c_off + i] = v;
            }
            memcpy(p + d_off, &(uint16_t){0x2c00}, 2);
        }
    tk_mat w = {NULL, rows, cols, nb, (rows + TK_TILE - 1) / TK_TILE, tk_group_blocks(type)};
    uint8_t *packed = huge_alloc(tk_packed_size(type, rows, cols));
    tk_repack(type, src, rb, rows, cols, packed, 0, w.n_tiles);
    w.data = packed;
    float *x = kb_alloc("tern-kernels", (size_t)n * cols * sizeof(float)), *a = kb_alloc("tern-kernels", (size_t)n * nb * sizeof(float));
    float *c = kb_alloc("tern-kernels", (size_t)n * nb * sizeof(float)), *y = kb_alloc("tern-kernels", (size_t)n * rows * sizeof(float));
    int8_t *q = kb_alloc("tern-kernels", (size_t)n * cols), *ql = planes == 2 ? kb_alloc("tern-kernels", (size_t)n * cols) : NULL;
    for (size_t i = 0; i < (size_t)n * cols; i++) x[i] = gauss();
    double best_q = 1e9, best = 1e9;
    for (int k = 0; k < 15; k++) {
        const double t0 = kb_cpu_s();
        for (int t = 0; t < n; t++)
            isa->quant(x + (size_t)t * cols, cols, q + (size_t)t * cols, ql ? ql + (size_t)t * cols : NULL,
                       a + (size_t)t * nb, c + (size_t)t * nb);
        const double dt = kb_cpu_s() - t0;
        if (dt < best_q) best_q = dt;
    }
    tk_act act = {q, ql, a, c, cols, nb};
    tk_gemm_call call = {isa, &w, &act, n, y, (size_t)rows};
    best = kb_best(tk_gemm_once, &call, 15);
    printf("%-5s %-8s %5d x %5d, %2d tokens, %d plane%s: %8.3f ms, %6.2f Gweights*tokens/s, %6.2f GB/s of weights; "
           "quant %.2f us/token\n",
           q2 ? "q2_0" : "tq2_0", isa->name, rows, cols, n, planes, planes > 1 ? "s" : " ", best * 1e3,
           (double)rows * cols * n / best / 1e9, (double)tk_packed_size(type, rows, cols) / best / 1e9, best_q / n * 1e6);
    free(src); free(packed); free(x); free(a); free(c); free(y); free(q); free(ql);
}

int main(int argc, char **argv) {
    const int rows = argc > 1 ? atoi(argv[1]) : 2560, cols = argc > 2 ? atoi(argv[2]) : 2560;
    const int n = argc > 3 ? atoi(argv[3]) : 0;
    const char *tn = argc > 4 ? argv[4] : "tq2_0";
    const uint32_t type = strcmp(tn, "q2_0") == 0 ? GGML_Q2_0 : GGML_TQ2_0;
    if (rows < 1 || cols < 256 || cols % 256 || n < 0 || n > 4096 || (strcmp(tn, "q2_0") && strcmp(tn, "tq2_0"))) {
        fprintf(stderr, "usage: tern-kernels [ROWS COLS(multiple of 256) N(1..4096) [tq2_0|q2_0]]\n");
        return 2;
    }
    const tk_isa *isas[] = {&tk_isa_avx512, &tk_isa_avx2, &tk_isa_neon, &tk_isa_wasm, &tk_isa_generic};
    for (int k = 0; k < 2; k++) {
        const int nt = n ? n : k == 0 ? 1 : 64;
        for (int planes = 1; planes <= 2; planes++)
            for (size_t i = 0; i < sizeof isas / sizeof *isas; i++)
                if (isas[i]->compiled && isas[i]->supported() && (isas[i] != &tk_isa_generic || nt == 1))
                    run(type, isas[i], rows, cols, nt, planes);
        if (n) break;
    }
    return 0;
}
