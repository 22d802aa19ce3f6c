/* q1-lut512.c — a measured candidate, not an engine kernel: the Q1_0 one-token product on AVX-512
 * VBMI with byte lookup tables (vpermb) instead of one vpdpbusd per activation plane and group.
 *
 * Weights: the engine's repacked tiles as they are (cpu_kern.h: per 16 rows x 128 columns, 16 fp16
 * scales then 32 uint64 masks, mask g bit 4r + c = row r, column 4g + c). Activations: 14-bit
 * integers (|Q| <= K = 8191 per block of 128, scale amax / K), so that any sum of 4 of them fits
 * an int16: v = lo + 256 hi with lo unsigned and hi signed bytes. Per token and 16 columns (groups
 * g .. g+3) two 64-byte tables, lo and hi, entry 16 j + k = the sum of Q over the bits of k in
 * group g + j. Per tile and 4 groups: the 32 mask bytes are routed (vpermb) so that each qword
 * holds byte q of the 4 masks, vpmultishiftqb puts row r's nibble of group g + j into byte 4 r + j,
 * a ternary-logic op keeps the nibble and sets bits 4-5 to j (which 16-entry part of the table),
 * then one vpermb per table looks up all 64 (row, group) sums and one vpdpbusd per table adds the
 * 4 groups of each row into its int32 lane: 7 vector ops per 256 weights, against 4 mask
 * expansions and 8 vpdpbusd (two planes) for the engine's int16 kernel.
 *
 * Prints, for one token over a rows x cols matrix, the engine's AVX-512 int16 kernel (ck_isa_avx512,
 * two tiles a pass) and this one (one tile a pass), best of 15 thread-CPU timings, in G weights/s,
 * after checking this kernel's integer sums against a plain loop (exit 1 if any differs), and
 * the table-building cost per token. Build and run (on a CPU with AVX-512 VBMI and VNNI):
 *   cc -O2 -std=c11 -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx512vbmi -mfma -mf16c \
 *      -Isrc/cpu -Isrc/core -Iinclude -Ibench bench/q1-lut512.c build/libonebit.a -lm -lpthread -o build/q1-lut512
 *   build/q1-lut512 [ROWS COLS]     # default 32768 x 8192 (37.7 MB repacked: more than the L3)
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kern.h"
#include "kbench.h"

#define K14 8191

/* Tables of one token from its 14-bit integers: [cols / 16][2][64] bytes (lo, hi). */
static void build_tables(const int16_t *Q, int cols, uint8_t *tab) {
    for (int i = 0; i < cols / 16; i++) {
        uint8_t *lo = tab + (size_t)i * 128, *hi = lo + 64;
        for (int j = 0; j < 4; j++) {
            const int16_t *q = Q + 16 * i + 4 * j;
            for (int k = 0; k < 16; k++) {
                const int v = (k & 1 ? q[0] : 0) + (k & 2 ? q[1] : 0) + (k & 4 ? q[2] : 0) + (k & 8 ? q[3] : 0);
                lo[16 * j + k] = (uint8_t)(v & 255);
                hi[16 * j + k] = (uint8_t)(int8_t)((v - (v & 255)) / 256);
            }
        }
    }
}

typedef struct lut_call {
    const ck_q1 *w;
    const uint8_t *tab;
    const float *a, *c; /* [nb] */
    float *y;
    int32_t *sums;      /* if not NULL: [n_tiles][nb][16] integer sums (the check) */
    int pf;             /* software prefetch as the engine's one-token kernel does */
} lut_call;

static void lut_gemv(void *arg) {
    const lut_call *L = arg;
    const ck_q1 *w = L->w;
    const int nb = w->nb;
    __m512i route, ctrl, jbits;
    {
        uint8_t r[64], c[64], j[64];
        for (int l = 0; l < 64; l++) {
            const int q = l / 8, p = l % 8;
            r[l] = (uint8_t)(8 * (p & 3) + q);
            c[l] = (uint8_t)(8 * (p & 3) + 4 * (p >> 2));
            j[l] = (uint8_t)(16 * (l & 3));
        }
        route = _mm512_loadu_si512(r);
        ctrl = _mm512_loadu_si512(c);
        jbits = _mm512_loadu_si512(j);
    }
    const __m512i nib = _mm512_set1_epi8(15), ones = _mm512_set1_epi8(1);
    for (int tile = 0; tile < w->n_tiles; tile++) {
        const uint8_t *td = w->data + (size_t)tile * nb * CK_TB_BYTES;
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const uint8_t *tb = td + (size_t)b * CK_TB_BYTES;
            const uint8_t *tab = L->tab + (size_t)b * 8 * 128;
            if (L->pf) /* the engine's distance: the tile-block 8 on, into the next tile past the end */
                for (int o = 0; o < CK_TB_BYTES; o += 64) _mm_prefetch((const char *)tb + CK_PREFETCH_BYTES + o, _MM_HINT_T0);
            __m512i slo[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}, shi[2] = {slo[0], slo[0]};
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const __m512i src = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(tb + 32 + 32 * i)));
                __m512i idx = _mm512_multishift_epi64_epi8(ctrl, _mm512_permutexvar_epi8(route, src));
                idx = _mm512_ternarylogic_epi32(idx, nib, jbits, 0xEA); /* (idx & 15) | 16 j */
                const __m512i lo = _mm512_permutexvar_epi8(idx, _mm512_load_si512(tab + 128 * i));
                const __m512i hi = _mm512_permutexvar_epi8(idx, _mm512_load_si512(tab + 128 * i + 64));
                slo[i & 1] = _mm512_dpbusd_epi32(slo[i & 1], lo, ones);
                shi[i & 1] = _mm512_dpbusd_epi32(shi[i & 1], ones, hi);
            }
            const __m512i s = _mm512_add_epi32(_mm512_add_epi32(slo[0], slo[1]),
                                               _mm512_slli_epi32(_mm512_add_epi32(shi[0], shi[1]), 8));
            if (L->sums) _mm512_storeu_si512(L->sums + ((size_t)tile * nb + b) * 16, s);
            const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)tb));
            acc = _mm512_fmadd_ps(d, _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(L->a[b]), _mm512_set1_ps(L->c[b])), acc);
        }
        _mm512_storeu_ps(L->y + (size_t)tile * 16, acc);
    }
}

typedef struct eng_call {
    const ck_q1 *w;
    const ck_act *x;
    float *y;
} eng_call;

static void eng_gemv(void *arg) {
    const eng_call *e = arg;
    ck_isa_avx512.gemm(e->w, 0, e->w->n_tiles, e->x, 1, e->y, (size_t)e->w->rows);
}

typedef struct tab_call {
    const int16_t *Q;
    int cols;
    uint8_t *tab;
} tab_call;

static void tab_once(void *arg) {
    const tab_call *t = arg;
    build_tables(t->Q, t->cols, t->tab);
}

int main(int argc, char **argv) {
    const int rows = argc > 1 ? atoi(argv[1]) : 32768, cols = argc > 2 ? atoi(argv[2]) : 8192;
    if (rows < 16 || rows % 16 || cols < 128 || cols % 128) {
        fprintf(stderr, "usage: q1-lut512 [ROWS(multiple of 16) COLS(multiple of 128)]\n");
        return 2;
    }
    __builtin_cpu_init();
    if (!ck_isa_avx512.compiled || !ck_isa_avx512.supported() || !__builtin_cpu_supports("avx512vbmi")) {
        printf("skip: this CPU has no AVX-512 VBMI + VNNI\n");
        return 0;
    }
    const int nb = cols / 128, nt = rows / 16;
    const size_t rb = (size_t)nb * 18;
    uint8_t *src = kb_alloc("q1-lut512", (size_t)rows * rb);
    for (size_t i = 0; i < (size_t)rows * rb; i++) src[i] = (uint8_t)rand();
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) memcpy(src + (size_t)r * rb + (size_t)b * 18, &(uint16_t){0x2c00}, 2);
    ck_q1 w = {NULL, rows, cols, nb, nt};
    uint8_t *packed = kb_alloc("q1-lut512", ck_q1_packed_size(rows, cols));
    ck_q1_repack(src, rb, rows, cols, packed, 0, nt);
    w.data = packed;
    float *x = kb_alloc("q1-lut512", (size_t)cols * 4), *a = kb_alloc("q1-lut512", (size_t)nb * 4);
    float *c = kb_alloc("q1-lut512", (size_t)nb * 4), *y = kb_alloc("q1-lut512", (size_t)rows * 4);
    float *a2 = kb_alloc("q1-lut512", (size_t)nb * 4), *c2 = kb_alloc("q1-lut512", (size_t)nb * 4);
    for (int i = 0; i < cols; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    /* 14-bit integers per block of 128 (the candidate), and the engine's int16 planes. */
    int16_t *Q = kb_alloc("q1-lut512", (size_t)cols * 2);
    for (int b = 0; b < nb; b++) {
        float amax = 0;
        for (int j = 0; j < 128; j++) amax = fmaxf(amax, fabsf(x[b * 128 + j]));
        const float sx = amax / K14;
        int sum = 0;
        for (int j = 0; j < 128; j++) sum += Q[b * 128 + j] = (int16_t)nearbyintf(x[b * 128 + j] / sx);
        a[b] = 2 * sx;
        c[b] = -sx * (float)sum;
    }
    uint8_t *tab = kb_alloc("q1-lut512", (size_t)cols / 16 * 128);
    build_tables(Q, cols, tab);
    int8_t *q8 = kb_alloc("q1-lut512", (size_t)cols), *ql = kb_alloc("q1-lut512", (size_t)cols);
    ck_isa_avx512.quant(x, cols, q8, ql, a2, c2);
    ck_act act = {q8, ql, a2, c2, cols, nb, NULL, 0, 0, NULL, 3, NULL, 0, 0};

    /* The check: every row's integer sum per block against a plain loop over the file's bits. */
    int32_t *sums = kb_alloc("q1-lut512", (size_t)nt * nb * 16 * 4);
    lut_call lc = {&w, tab, a, c, y, sums, 0};
    lut_gemv(&lc);
    long bad = 0;
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *qs = src + (size_t)r * rb + (size_t)b * 18 + 2;
            int32_t s = 0;
            for (int j = 0; j < 128; j++) s += (qs[j / 8] >> (j % 8) & 1) ? Q[b * 128 + j] : 0;
            bad += s != sums[((size_t)(r / 16) * nb + b) * 16 + r % 16];
        }
    if (bad) {
        printf("FAIL: %ld integer sums differ from the plain loop\n", bad);
        return 1;
    }
    lc.sums = NULL;
    eng_call ec = {&w, &act, y};
    tab_call tc = {Q, cols, tab};
    const double t_tab = kb_best(tab_once, &tc, 15);
    for (int round = 0; round < 3; round++) { /* interleaved */
        lc.pf = 0;
        const double te = kb_best(eng_gemv, &ec, 15), tl = kb_best(lut_gemv, &lc, 15);
        lc.pf = 1;
        const double tp = kb_best(lut_gemv, &lc, 15);
        printf("%5d x %5d, 1 token: engine avx512 int16 %6.2f, vpermb tables %6.2f (%.2fx), with prefetch %6.2f "
               "Gweights/s (%.2fx)\n", rows, cols, (double)rows * cols / te / 1e9, (double)rows * cols / tl / 1e9, te / tl,
               (double)rows * cols / tp / 1e9, te / tp);
    }
    printf("tables: %.2f us per token (%d columns; scalar C)\n", t_tab * 1e6, cols);
    free(src); free(packed); free(x); free(a); free(c); free(y); free(a2); free(c2); free(Q); free(tab); free(q8);
    free(ql); free(sums);
    return 0;
}
