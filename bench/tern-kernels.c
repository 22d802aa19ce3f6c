/* tern-kernels.c — single-thread throughput of the ternary product (tern.h) of each kernel table,
 * and this machine's memory read bandwidth with 1 and T threads (the ceiling of generation, which
 * streams every weight once a token).
 *
 * A random TQ2_0 rows x cols matrix is repacked once, n tokens of Gaussian activations quantised
 * (int8: one plane, or int16: two planes); then the best of 15 timings (each ~20 ms of
 * repetitions, thread CPU time: robust to other processes taking the core) of the product over
 * all tiles on one thread, as weights x tokens per second. Sizes that fit L2 (the default
 * 2560 x 2560: 1.8 MiB) measure arithmetic; a large matrix (e.g. 6912 x 2560 x 4 = 70 MB) measures
 * the streaming rate with one thread. Bandwidth: T threads each sum their share of a 1 GiB buffer
 * with 64-byte vector loads, best of 5 (the slowest thread's CPU time).
 * Not a test (tests/unit/test_tern.c checks these kernels); build and run:
 *   cc -O2 -std=gnu11 -Isrc/cpu -Isrc/core -Iinclude bench/tern-kernels.c build/libonebit.a -lm -lpthread -o build/tern-kernels
 *   build/tern-kernels [ROWS COLS N]    # every table this CPU runs, planes 1 and 2, N tokens (default 1 and 64)
 *   build/tern-kernels bw [THREADS]     # read bandwidth, 1 thread and THREADS (default 2)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "tern.h"

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *xalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "tern-kernels: out of memory\n");
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static float gauss(void) {
    float s = 0.0f;
    for (int i = 0; i < 12; i++) s += (float)rand() / (float)RAND_MAX;
    return s - 6.0f;
}

static void run(const tk_isa *isa, int rows, int cols, int n, int planes) {
    const int nb = cols / TK_BLK;
    const size_t rb = (size_t)cols / 256 * 66;
    uint8_t *src = xalloc((size_t)rows * rb);
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < cols / 256; b++) {
            uint8_t *p = src + (size_t)r * rb + (size_t)b * 66;
            for (int i = 0; i < 64; i++) { /* codes 0..2 */
                uint8_t v = 0;
                for (int k = 0; k < 4; k++) v |= (uint8_t)((rand() % 3) << (2 * k));
                p[i] = v;
            }
            memcpy(p + 64, &(uint16_t){0x2c00}, 2);
        }
    tk_mat w = {NULL, rows, cols, nb, (rows + TK_TILE - 1) / TK_TILE};
    uint8_t *packed = xalloc(tk_packed_size(rows, cols));
    tk_repack(GGML_TQ2_0, src, rb, rows, cols, packed, 0, w.n_tiles);
    w.data = packed;
    float *x = xalloc((size_t)n * cols * sizeof(float)), *a = xalloc((size_t)n * nb * sizeof(float));
    float *c = xalloc((size_t)n * nb * sizeof(float)), *y = xalloc((size_t)n * rows * sizeof(float));
    int8_t *q = xalloc((size_t)n * cols), *ql = planes == 2 ? xalloc((size_t)n * cols) : NULL;
    for (size_t i = 0; i < (size_t)n * cols; i++) x[i] = gauss();
    double best_q = 1e9, best = 1e9;
    for (int k = 0; k < 15; k++) {
        const double t0 = cpu_s();
        for (int t = 0; t < n; t++)
            isa->quant(x + (size_t)t * cols, cols, q + (size_t)t * cols, ql ? ql + (size_t)t * cols : NULL,
                       a + (size_t)t * nb, c + (size_t)t * nb);
        const double dt = cpu_s() - t0;
        if (dt < best_q) best_q = dt;
    }
    tk_act act = {q, ql, a, c, cols, nb};
    double t1 = cpu_s();
    isa->gemm(&w, 0, w.n_tiles, &act, n, y, (size_t)rows);
    t1 = cpu_s() - t1;
    const int reps = t1 > 0.02 ? 1 : t1 < 1e-5 ? 2000 : (int)(0.02 / t1) + 1;
    for (int k = 0; k < 15; k++) {
        const double t0 = cpu_s();
        for (int i = 0; i < reps; i++) isa->gemm(&w, 0, w.n_tiles, &act, n, y, (size_t)rows);
        const double dt = (cpu_s() - t0) / reps;
        if (dt < best) best = dt;
    }
    printf("%-8s %5d x %5d, %2d tokens, %d plane%s: %8.3f ms, %6.2f Gweights*tokens/s, %6.2f GB/s of weights; "
           "quant %.2f us/token\n",
           isa->name, rows, cols, n, planes, planes > 1 ? "s" : " ", best * 1e3, (double)rows * cols * n / best / 1e9,
           (double)tk_packed_size(rows, cols) / best / 1e9, best_q / n * 1e6);
    free(src); free(packed); free(x); free(a); free(c); free(y); free(q); free(ql);
}

typedef struct bw_job {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
    double cpu;                    /* the thread's CPU time */
} bw_job;

typedef uint64_t bw_vec __attribute__((vector_size(64))); /* GCC / Clang vectors: 64-byte loads */

static void *bw_run(void *arg) {
    bw_job *j = arg;
    const double t0 = cpu_s();
    const bw_vec *p = (const bw_vec *)(const void *)j->p;
    bw_vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    for (size_t i = 0; i + 4 <= j->n / 8; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    s0 += s1 + s2 + s3;
    for (int k = 0; k < 8; k++) j->sum += s0[k];
    j->cpu = cpu_s() - t0;
    return NULL;
}

static void bandwidth(int nth) {
    const size_t bytes = (size_t)1 << 30, n = bytes / 8;
    uint64_t *buf = xalloc(bytes);
    for (size_t i = 0; i < n; i += 512) buf[i] = i;
    for (int th = 1; th <= nth; th = th == nth ? nth + 1 : nth) {
        double best = 1e9;
        uint64_t sink = 0;
        for (int k = 0; k < 5; k++) {
            pthread_t tid[64];
            bw_job jobs[64];
            for (int i = 0; i < th; i++) {
                jobs[i] = (bw_job){buf + n / th * i, n / th, 0, 0.0};
                pthread_create(&tid[i], NULL, bw_run, &jobs[i]);
            }
            double dt = 0.0; /* the slowest thread's CPU time: robust to other processes taking a core */
            for (int i = 0; i < th; i++) {
                pthread_join(tid[i], NULL);
                sink += jobs[i].sum;
                if (jobs[i].cpu > dt) dt = jobs[i].cpu;
            }
            if (dt < best) best = dt;
        }
        printf("read bandwidth, %d thread%s: %.2f GB/s (best of 5 passes over 1 GiB; checksum %llu)\n", th,
               th > 1 ? "s" : "", (double)bytes / best / 1e9, (unsigned long long)(sink & 0xff));
    }
    free(buf);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "bw") == 0) {
        const int th = argc > 2 ? atoi(argv[2]) : 2;
        if (th < 1 || th > 64) {
            fprintf(stderr, "usage: tern-kernels bw [THREADS(1..64)]\n");
            return 2;
        }
        bandwidth(th);
        return 0;
    }
    const int rows = argc > 1 ? atoi(argv[1]) : 2560, cols = argc > 2 ? atoi(argv[2]) : 2560;
    const int n = argc > 3 ? atoi(argv[3]) : 0;
    if (rows < 1 || cols < 256 || cols % 256 || n < 0 || n > 4096) {
        fprintf(stderr, "usage: tern-kernels [ROWS COLS(multiple of 256) N(1..4096)] | bw [THREADS]\n");
        return 2;
    }
    const tk_isa *isas[] = {&tk_isa_avx512, &tk_isa_avx2, &tk_isa_neon, &tk_isa_wasm, &tk_isa_generic};
    for (int k = 0; k < 2; k++) {
        const int nt = n ? n : k == 0 ? 1 : 64;
        for (int planes = 1; planes <= 2; planes++)
            for (size_t i = 0; i < sizeof isas / sizeof *isas; i++)
                if (isas[i]->compiled && isas[i]->supported() && (isas[i] != &tk_isa_generic || nt == 1))
                    run(isas[i], rows, cols, nt, planes);
        if (n) break;
    }
    return 0;
}
