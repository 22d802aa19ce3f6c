/* q1-token.c — the Q1_0 products of one Bonsai-1.7B-shaped token, as generation runs them, per thread.
 *
 * 28 layers of q, k, v, o (2048 x 2048, 1024 x 2048 twice, 2048 x 2048), gate, up (6144 x 2048) and
 * down (2048 x 6144), then the 151936 x 2048 output head: 1.72 G random Q1_0 weights (242 MB
 * repacked, more than L3; on huge pages as the backend's, ck_arena_alloc), one token. As in backend_cpu.c, thread 0 quantises the activations and
 * builds the tables of each product (int16, two planes; FORM int14: quant14; the vpermb tables where
 * the ISA has them, three planes for int16 and two for int14, as the backend), then every thread multiplies its
 * contiguous share of the tiles; a barrier separates the products. Prints, per thread, the best of
 * TOKENS tokens of thread CPU time spent in the products (waits at the barriers not counted) and
 * the rate that makes: what the product alone would cost a token with the threads in parallel,
 * to set against `onebit bench --tg` (the rest of its token is everything else). Not a test.
 *   cc -O2 -std=c11 -Isrc/cpu -Isrc/core -Iinclude bench/q1-token.c build/libonebit.a -lm -lpthread -o build/q1-token
 *   build/q1-token [ISA [THREADS [TOKENS [FORM]]]]  # ISA avx2 (default), avx512, generic; 2 threads; 12 tokens; int16
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbench.h"

#include "cpu_kern.h"

#define NL 28
#define NM (NL * 7 + 1)
#define MAXTH 16

static const ck_isa *isa;
static ck_q1 W[NM];                        /* the token's matrices in order */
static int8_t *q, *ql;                     /* [6144] activation planes */
static float *x, *xa, *xc, *y;             /* [6144] input, [48] a and c, [151936] output */
static uint8_t *lut;                       /* [6144 * CK_LUT_PER_COL] */
static uint8_t *vt;                        /* [6144 * CK_VT_PER_COL]: vpermb tables, if the ISA has them */
static int k14, has_vt;                    /* int14 activations; vpermb tables in use */
static pthread_barrier_t bar;
static int nth, ntok;
static double best[MAXTH];                 /* seconds of products a token, per thread */

static void *worker(void *arg) {
    const int id = (int)(long)arg;
    best[id] = 1e9;
    for (int tok = 0; tok < ntok; tok++) {
        double sum = 0;
        for (int m = 0; m < NM; m++) {
            if (id == 0) {
                (k14 ? isa->quant14 : isa->quant)(x, W[m].cols, q, ql, xa, xc);
                if (isa->lut) isa->lut(q, ql, W[m].cols, lut);
                if (has_vt) isa->vtab(q, ql, W[m].cols, k14 ? 2 : 3, vt);
            }
            pthread_barrier_wait(&bar);
            const ck_act act = {q, ql, xa, xc, W[m].cols, W[m].nb, isa->lut ? lut : NULL, (size_t)W[m].cols * CK_LUT_PER_COL, 0,
                                has_vt ? vt : NULL, k14 ? 2 : 3, NULL, 0, 0};
            const int t0 = (int)((long)W[m].n_tiles * id / nth), t1 = (int)((long)W[m].n_tiles * (id + 1) / nth);
            const double s = kb_cpu_s();
            isa->gemm(&W[m], t0, t1, &act, 1, y, (size_t)W[m].rows);
            sum += kb_cpu_s() - s;
            pthread_barrier_wait(&bar);
        }
        if (sum < best[id]) best[id] = sum;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "avx2";
    nth = argc > 2 ? atoi(argv[2]) : 2;
    ntok = argc > 3 ? atoi(argv[3]) : 12;
    k14 = argc > 4 && !strcmp(argv[4], "int14");
    const ck_isa *isas[] = {&ck_isa_avx512, &ck_isa_avx2, &ck_isa_generic};
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++)
        if (!strcmp(isas[i]->name, name)) isa = isas[i];
    if (!isa || nth < 1 || nth > MAXTH || ntok < 1 || ntok > 1000 || (argc > 4 && !k14 && strcmp(argv[4], "int16"))) {
        fprintf(stderr, "usage: q1-token [avx2|avx512|generic [THREADS(1..%d) [TOKENS(1..1000) [int16|int14]]]]\n", MAXTH);
        return 2;
    }
    if (!isa->compiled || !isa->supported()) {
        fprintf(stderr, "q1-token: %s kernels are not built in or this CPU does not run them\n", name);
        return 1;
    }
    static const int shape[7][2] = {{2048, 2048}, {1024, 2048}, {1024, 2048}, {2048, 2048},
                                    {6144, 2048}, {6144, 2048}, {2048, 6144}};
    double weights = 0;
    srand(1);
    /* All matrices in one huge-page block, as the backend keeps them (ck_arena_alloc). */
    size_t total = 0;
    for (int m = 0; m < NM; m++)
        total += ck_arena_piece(ck_q1_packed_size(m < NM - 1 ? shape[m % 7][0] : 151936, m < NM - 1 ? shape[m % 7][1] : 2048));
    uint8_t *arena = ck_arena_alloc(total);
    if (!arena) {
        fprintf(stderr, "q1-token: out of memory\n");
        return 1;
    }
    size_t off = 0;
    for (int m = 0; m < NM; m++) {
        const int rows = m < NM - 1 ? shape[m % 7][0] : 151936, cols = m < NM - 1 ? shape[m % 7][1] : 2048;
        W[m] = (ck_q1){NULL, rows, cols, cols / CK_BLK, (rows + CK_TILE - 1) / CK_TILE};
        const size_t sz = ck_q1_packed_size(rows, cols);
        uint8_t *p = arena + off;
        off += ck_arena_piece(sz);
        for (size_t i = 0; i < sz; i++) p[i] = (uint8_t)rand();
        /* finite scales (1/16) in every tile-block: the first 32 bytes */
        for (size_t tb = 0; tb < (size_t)W[m].n_tiles * W[m].nb; tb++)
            for (int r = 0; r < CK_TILE; r++) memcpy(p + tb * CK_TB_BYTES + 2 * r, &(uint16_t){0x2c00}, 2);
        W[m].data = p;
        weights += (double)rows * cols;
    }
    x = kb_alloc("q1-token", 6144 * sizeof *x);
    xa = kb_alloc("q1-token", 48 * sizeof *xa);
    xc = kb_alloc("q1-token", 48 * sizeof *xc);
    y = kb_alloc("q1-token", 151936 * sizeof *y);
    q = kb_alloc("q1-token", 6144);
    ql = kb_alloc("q1-token", 6144);
    lut = kb_alloc("q1-token", (size_t)6144 * CK_LUT_PER_COL);
    vt = kb_alloc("q1-token", (size_t)6144 * CK_VT_PER_COL);
    if (k14 && !isa->quant14) {
        fprintf(stderr, "q1-token: %s has no int14 form\n", name);
        return 1;
    }
    has_vt = isa->vtab && isa->vtab(q, ql, 0, 3, vt); /* 0 columns: only asks whether this CPU runs them */
    for (int i = 0; i < 6144; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    pthread_barrier_init(&bar, NULL, (unsigned)nth);
    pthread_t th[MAXTH];
    for (long i = 0; i < nth; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)i)) {
            fprintf(stderr, "q1-token: cannot start a thread\n");
            return 1;
        }
    for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < nth; i++)
        printf("%s%s%s, %d threads, thread %d: %.2f ms of products a token (best of %d) = %.1f G weights/s\n", name,
               k14 ? " int14" : " int16", has_vt ? " (vpermb tables)" : "", nth, i, best[i] * 1e3, ntok, weights / nth / best[i] / 1e9);
    return 0;
}
