/* qk-kernels.c — single-thread throughput of qk.h's kernels (8-, 6-, 5- and 4-bit GGUF types): for
 * each type and each table this CPU runs, the row kernel on the file's layout and, where the table
 * has one, the kernel of the repacked layout (qk_repack), on a random rows x cols matrix and n
 * tokens of Gaussian activations quantised once. Time is the thread's CPU time (robust to other
 * processes on a shared machine), best of 9 timings of ~30 ms of repetitions; printed as G weight x
 * token products per second. Not a test (tests/unit/test_qk.c checks the kernels); build and run:
 *   cc -O2 -std=c11 -Isrc/cpu -Isrc/core -Iinclude bench/qk-kernels.c build/libonebit.a -lm -lpthread -o build/qk-kernels
 *   build/qk-kernels [ROWS COLS [TYPE]]   # default 2048 x 2048, every type; n = 1, 16 and 64 tokens
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kbench.h"

#include "gguf.h"
#include "qk.h"
#include "quant.h"

/* Best seconds per call of one product (row kernel when pk is NULL). */
static double time_one(const qk_kern *k, const uint8_t *w, size_t rb, const uint8_t *pk, int rows, const qk_act *a,
                       const int32_t *o, int n, float *y) {
    double best = 1e30;
    int reps = 1;
    for (int round = 0; round < 9; round++) {
        double t0 = kb_cpu_s(), dt;
        for (;;) {
            for (int r = 0; r < reps; r++) {
                if (pk) k->pack(pk, a->cols / a->blk, 0, (rows + QK_PR - 1) / QK_PR, rows, a, o, n, y, (size_t)rows);
                else k->rows(w, rb, 0, rows, a, n, y, (size_t)rows);
            }
            dt = kb_cpu_s() - t0;
            if (dt > 0.03) break;
            reps *= 2;
            t0 = kb_cpu_s();
        }
        if (dt / reps < best) best = dt / reps;
    }
    return best;
}

int main(int argc, char **argv) {
    const int rows = argc > 2 ? atoi(argv[1]) : 2048, cols = argc > 2 ? atoi(argv[2]) : 2048;
    if (rows <= 0 || cols <= 0 || cols % 256) {
        fprintf(stderr, "qk-kernels: ROWS > 0 and COLS a multiple of 256\n");
        return 1;
    }
    static const uint32_t types[] = {GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_Q6_K};
    const qk_isa *isas[] = {&qk_isa_avx512, &qk_isa_avx2, &qk_isa_neon, &qk_isa_wasm, &qk_isa_generic};
    static const int ns[] = {1, 16, 64};
    const int nmax = 64;
    float *x = kb_alloc("qk-kernels", sizeof(float) * (size_t)nmax * cols), *y = kb_alloc("qk-kernels", sizeof(float) * (size_t)nmax * rows);
    srand(1);
    for (size_t i = 0; i < (size_t)nmax * cols; i++) x[i] = (float)((rand() % 2001) - 1000) / 1000.0f;
    printf("qk-kernels: %d x %d, 1 thread, G weight-token products per second of thread CPU time\n", rows, cols);
    printf("%-8s %-6s %-6s %10s %10s %10s\n", "table", "type", "layout", "n=1", "n=16", "n=64");
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const ob_type_row *tr = ob_type_find(types[ti]);
        if (argc > 3 && strcmp(argv[3], tr->name) != 0) continue;
        const size_t rb = (size_t)cols / tr->block * tr->bytes;
        uint8_t *w = kb_alloc("qk-kernels", (size_t)rows * rb);
        for (size_t i = 0; i < (size_t)rows * rb; i++) w[i] = (uint8_t)rand();
        for (size_t b = 0; b < (size_t)rows * rb; b += tr->bytes) { /* sane fp16 scales */
            const uint16_t h = ob_f32_to_fp16(0.01f);
            const size_t off = types[ti] == GGML_Q6_K ? 208 : 0;
            memcpy(w + b + off, &h, 2);
            if (types[ti] == GGML_Q4_K) memcpy(w + b + 2, &h, 2);
        }
        uint8_t *pk = NULL;
        const size_t pbytes = qk_pack_size(types[ti], rows, cols);
        if (pbytes) {
            pk = kb_alloc("qk-kernels", pbytes);
            qk_repack(types[ti], w, rb, rows, cols, pk, 0, (rows + QK_PR - 1) / QK_PR);
        }
        for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
            const qk_isa *isa = isas[i];
            if (!isa->compiled || !isa->supported()) continue;
            const qk_kern *k = qk_in(isa, types[ti]);
            if (!k) continue;
            const int blk = k->act_blk;
            int8_t *q = kb_alloc("qk-kernels", (size_t)nmax * cols);
            float *d = kb_alloc("qk-kernels", sizeof(float) * (size_t)nmax * (cols / blk));
            int16_t *s = kb_alloc("qk-kernels", sizeof(int16_t) * (size_t)nmax * (cols / 16));
            for (int t = 0; t < nmax; t++)
                qk_quant(x + (size_t)t * cols, cols, blk, q + (size_t)t * cols, d + (size_t)t * (cols / blk),
                         s + (size_t)t * (cols / 16));
            const qk_act a = {q, d, s, cols, blk};
            int32_t *o = kb_alloc("qk-kernels", sizeof(int32_t) * (size_t)nmax * (cols / 32));
            for (int t = 0; t < nmax; t++) qk_pack_offsets(s + (size_t)t * (cols / 16), cols / 32, o + (size_t)t * (cols / 32));
            for (int layout = 0; layout < 2; layout++) {
                if (layout == 1 && !(k->pack && pk)) continue;
                printf("%-8s %-6s %-6s", isa->name, tr->name, layout ? "packed" : "rows");
                for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                    const double sec = time_one(k, w, rb, layout ? pk : NULL, rows, &a, o, ns[ni], y);
                    printf(" %10.1f", (double)rows * cols * ns[ni] / sec * 1e-9);
                }
                printf("\n");
                fflush(stdout);
            }
            free(q);
            free(o);
            free(d);
            free(s);
        }
        free(pk);
        free(w);
    }
    free(x);
    free(y);
    return 0;
}
