/* test_kernels.c — the fast CPU kernels (cpu_kern.h, backend_cpu.c) against the scalar reference.
 *
 * For every kernel table built in and runnable on this CPU (portable C, AVX-512, AVX2, NEON, wasm),
 * in both activation precisions (int8, and int16 as two int8 planes, which the backend uses):
 *  - activation quantisation is bit-identical to the portable version, and so are the lookup
 *    tables of the ISAs that have them (AVX2, NEON: ck_lut_generic);
 *  - the Q1_0 product equals the portable version on the same quantised input up to float
 *    rounding (relative 1e-5 of the sum of absolute terms), for awkward shapes (rows not a
 *    multiple of the 16-row tile, 1..33 tokens, 128 / 256 / 6144 columns, partial tile ranges),
 *    and writes nothing past the last row;
 *  - against the specification (scalar_matmul) it is exact up to float rounding (1e-5) when the
 *    input is representable on the integer grid of each block of 128; for Gaussian input each
 *    output is within the rigorous rounding bound sum_b |d_b| * 64 * sx_b (half a step per
 *    element), and the relative RMS error over all cases stays under 1% for int8 (measured
 *    ~0.65%: step/sqrt(12) relative to the input's RMS) and under 0.01% for int16 (~0.005%);
 *  - attention matches scalar_attention to 1e-4 absolute (unit Gaussian values), one query at a
 *    time and several queries of one KV head with different causal lengths at once (on a float
 *    cache, and with attn_multi_f16 on the same rows as IEEE halves);
 *  - SwiGLU matches the forward pass's formula to 1e-5 relative (extreme inputs included);
 *  - half <-> float conversions are bit-identical to quant.h's (zeros, overflow, subnormals);
 *  - through the backend's kernel table with 1 and 3 threads: Q1_0 (relative RMS < 5e-4) and every
 *    other type of the table (quant.h; random valid blocks: random codes, small fp16 scales), whose
 *    rows the backend decodes and dots in another summation order (relative RMS < 1e-5: sums with cancellation), or
 *    multiplies through qk.h's int8-activation kernels (relative RMS < 2%; test_qk.c checks them closely), against
 *    scalar_matmul,
 *    70 tokens included (more than one batch); GQA attention (float and half cache) against
 *    scalar_attention; the RMSNorm, SwiGLU and to_f16 hooks against the plain formulas; products
 *    bit-identical whatever the thread count;
 *  - if build/models/tiny.gguf exists: whole-model logits of the "cpu" backend, 70 tokens in one
 *    call and one token at a time, vs the "scalar" backend: relative RMS < 1%, argmax agreement
 *    >= 95% (a model path as argument replaces the file; "-" skips this part).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kern.h"
#include "forward.h"
#include "model.h"
#include "qk.h"
#include "quant.h"
#include "tern.h"

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

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
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

/* A random Q1_0 matrix: random bits, scales in [0.01, 0.1) (a few negative, a few zero). */
static ob_weight make_q1(int rows, int cols) {
    ob_weight w = {GGML_Q1_0, rows, cols, (size_t)(cols / 128) * 18, NULL, 0, 0};
    uint8_t *d = xalloc((size_t)rows * w.row_bytes);
    for (size_t i = 0; i < (size_t)rows * w.row_bytes; i += 18) {
        float s = (float)(0.01 + 0.09 * rng_unif());
        uint64_t r = rng_u64();
        if (r % 17 == 0) s = -s;
        if (r % 31 == 0) s = 0.0f;
        uint16_t h = ob_f32_to_fp16(s);
        memcpy(d + i, &h, 2);
        for (int k = 0; k < 16; k++) d[i + 2 + k] = (uint8_t)rng_u64();
    }
    w.data = d;
    return w;
}

/* x[n][cols]: exact = 1 gives values q * 2^-k with |q| <= 127 and one |q| = 127 per block, which
 * int8 quantisation represents exactly; exact = 2 the same with one |q| = 127 in each 32 columns
 * (exact for int8 per 32 too); exact = 0 gives Gaussian values (some blocks all zero). */
static void make_x(float *x, int n, int cols, int exact) {
    for (int t = 0; t < n; t++)
        for (int b = 0; b < cols / 128; b++) {
            float *xb = x + (size_t)t * cols + (size_t)b * 128;
            if (exact) {
                float u = ldexpf(1.0f, -(int)(rng_u64() % 7));
                for (int j = 0; j < 128; j++) xb[j] = (float)((int)(rng_u64() % 255) - 127) * u;
                for (int k = 0; k < (exact == 2 ? 4 : 1); k++)
                    xb[(exact == 2 ? 32 * k : 0) + rng_u64() % (exact == 2 ? 32 : 128)] = (rng_u64() & 1 ? 127.0f : -127.0f) * u;
            } else if (rng_u64() % 23 == 0) {
                memset(xb, 0, 128 * sizeof *xb);
            } else {
                for (int j = 0; j < 128; j++) xb[j] = rng_gauss();
            }
        }
}

static const ck_isa *const isas[] = {&ck_isa_generic, &ck_isa_avx512, &ck_isa_avx2, &ck_isa_neon, &ck_isa_wasm};

/* ---- quantisation ---------------------------------------------------------------------------- */

static void test_quant(const ck_isa *isa) {
    static const int colss[] = {128, 256, 6144};
    for (size_t ci = 0; ci < 3; ci++) {
        const int cols = colss[ci], nb = cols / 128;
        float *x = xalloc((size_t)cols * 4);
        int8_t *q0 = xalloc((size_t)cols), *q1 = xalloc((size_t)cols), *l0 = xalloc((size_t)cols), *l1 = xalloc((size_t)cols);
        float *a0 = xalloc((size_t)nb * 4), *a1 = xalloc((size_t)nb * 4), *c0 = xalloc((size_t)nb * 4), *c1 = xalloc((size_t)nb * 4);
        for (int rep = 0; rep < 8; rep++) {
            const int two = rep >= 4; /* int16 as two planes */
            make_x(x, 1, cols, rep & 1);
            if (rep % 4 == 2) x[5] = 1e30f; /* one huge value: the rest of its block rounds to 0 */
            ck_quant_generic(x, cols, q0, two ? l0 : NULL, a0, c0);
            isa->quant(x, cols, q1, two ? l1 : NULL, a1, c1);
            CHECK(memcmp(q0, q1, (size_t)cols) == 0 && (!two || memcmp(l0, l1, (size_t)cols) == 0),
                  "%s quant cols=%d rep=%d: integer values differ", isa->name, cols, rep);
            CHECK(memcmp(a0, a1, (size_t)nb * 4) == 0 && memcmp(c0, c1, (size_t)nb * 4) == 0,
                  "%s quant cols=%d rep=%d: block scales differ", isa->name, cols, rep);
            int range_ok = 1;
            for (int j = 0; j < cols && two; j++) range_ok &= q1[j] >= -127 && l1[j] >= -64 && l1[j] <= 63;
            CHECK(range_ok, "%s quant cols=%d: planes out of range", isa->name, cols);
            if (isa->quant14 && two) { /* int14: the same integers and scales as the portable one, |Q| <= 8191 */
                ck_quant14_generic(x, cols, q0, l0, a0, c0);
                isa->quant14(x, cols, q1, l1, a1, c1);
                CHECK(memcmp(q0, q1, (size_t)cols) == 0 && memcmp(l0, l1, (size_t)cols) == 0,
                      "%s quant14 cols=%d rep=%d: integer values differ", isa->name, cols, rep);
                CHECK(memcmp(a0, a1, (size_t)nb * 4) == 0 && memcmp(c0, c1, (size_t)nb * 4) == 0,
                      "%s quant14 cols=%d rep=%d: block scales differ", isa->name, cols, rep);
                int ok14 = 1, top = 0;
                for (int j = 0; j < cols; j++) {
                    const int Q = 128 * q1[j] + l1[j];
                    ok14 &= Q >= -8191 && Q <= 8191 && l1[j] >= -64 && l1[j] <= 63;
                    top |= Q == 8191 || Q == -8191;
                }
                CHECK(ok14 && top, "%s quant14 cols=%d rep=%d: values out of range or the block maximum not at 8191", isa->name,
                      cols, rep);
            }
            if (isa->quant32 && !two) { /* int8 per 32: the same integers and scales as the portable one */
                float *a4 = xalloc((size_t)nb * 16), *a5 = xalloc((size_t)nb * 16);
                if (rep % 4 == 3) memset(x + 32, 0, 32 * sizeof *x); /* an all-zero sub-block */
                ck_quant32_generic(x, cols, q0, a4, c0);
                isa->quant32(x, cols, q1, a5, c1);
                CHECK(memcmp(q0, q1, (size_t)cols) == 0, "%s quant32 cols=%d rep=%d: integer values differ", isa->name, cols, rep);
                CHECK(memcmp(a4, a5, (size_t)nb * 16) == 0 && memcmp(c0, c1, (size_t)nb * 4) == 0,
                      "%s quant32 cols=%d rep=%d: scales differ", isa->name, cols, rep);
                free(a4); free(a5);
            }
        }
        free(x); free(q0); free(q1); free(l0); free(l1); free(a0); free(a1); free(c0); free(c1);
    }
}

/* ---- Q1_0 product ---------------------------------------------------------------------------- */

typedef struct err_stats { double se, sy; } err_stats;

/* planes: 1 int8, 2 int16 (two planes), 3 int8 with a scale per 32 columns (ck_act.s32), 4 int14
 * (two planes, quant14). */
static void test_gemm_case(const ck_isa *isa, int rows, int cols, int n, int exact, int form, err_stats *es) {
    const int k14 = form == 4, planes = k14 ? 2 : form;
    const int nb = cols / 128, s32 = planes == 3, na = s32 ? 4 * nb : nb; /* a per token */
    if (s32 && !isa->quant32) return;
    if (k14 && !isa->quant14) return;
    ob_weight w = make_q1(rows, cols);
    size_t pbytes = ck_q1_packed_size(rows, cols);
    uint8_t *packed = xalloc(pbytes);
    ck_q1 pw = {packed, rows, cols, nb, (rows + 15) / 16};
    ck_q1_repack(w.data, w.row_bytes, rows, cols, packed, 0, pw.n_tiles);

    float *x = xalloc((size_t)n * cols * 4);
    make_x(x, n, cols, exact && s32 ? 2 : exact);
    int8_t *q = xalloc((size_t)n * cols), *ql = planes == 2 ? xalloc((size_t)n * cols) : NULL;
    float *a = xalloc((size_t)n * na * 4), *c = xalloc((size_t)n * nb * 4);
    for (int t = 0; t < n; t++)
        if (s32) isa->quant32(x + (size_t)t * cols, cols, q + (size_t)t * cols, a + (size_t)t * na, c + (size_t)t * nb);
        else (k14 ? isa->quant14 : isa->quant)(x + (size_t)t * cols, cols, q + (size_t)t * cols, ql ? ql + (size_t)t * cols : NULL, a + (size_t)t * nb,
                   c + (size_t)t * nb);
    uint8_t *lut = isa->lut ? xalloc((size_t)n * cols * CK_LUT_PER_COL) : NULL;
    for (int t = 0; lut && t < n; t++)
        isa->lut(q + (size_t)t * cols, ql ? ql + (size_t)t * cols : NULL, cols, lut + (size_t)t * cols * CK_LUT_PER_COL);
    if (lut) { /* the ISA's tables are the portable ones, bit for bit */
        uint8_t *lg = xalloc((size_t)cols * CK_LUT_PER_COL);
        int bad = 0;
        for (int t = 0; t < n; t++) {
            ck_lut_generic(q + (size_t)t * cols, ql ? ql + (size_t)t * cols : NULL, cols, lg);
            bad += memcmp(lg, lut + (size_t)t * cols * CK_LUT_PER_COL, (size_t)cols * CK_LUT_PER_COL) != 0;
        }
        CHECK(bad == 0, "%s lut cols=%d planes=%d: %d of %d tokens' tables differ from ck_lut_generic", isa->name, cols,
              planes, bad, n);
        free(lg);
    }
    ck_act act = {q, ql, a, c, cols, nb, lut, (size_t)cols * CK_LUT_PER_COL, s32, NULL, 3, NULL, 0, 0};

    /* Output rows padded by 3 floats that must stay untouched (tail tiles are masked). */
    const size_t ys = (size_t)rows + 3;
    float *y = xalloc((size_t)n * ys * 4), *yg = xalloc((size_t)n * ys * 4), *yr = xalloc((size_t)n * rows * 4);
    for (size_t i = 0; i < (size_t)n * ys; i++) y[i] = yg[i] = 12345.0f;
    int split = pw.n_tiles / 2; /* two calls, as two threads would make */
    isa->gemm(&pw, 0, split, &act, n, y, ys);
    isa->gemm(&pw, split, pw.n_tiles, &act, n, y, ys);
    ck_gemm_generic(&pw, 0, pw.n_tiles, &act, n, yg, ys);
    scalar_matmul(NULL, &w, x, yr, n);

    int bad_gen = 0, bad_ref = 0, bad_pad = 0;
    double worst_gen = 0, worst_ref = 0;
    for (int t = 0; t < n; t++) {
        for (int r = 0; r < rows; r++) {
            /* Sums of absolute terms: the scale of float rounding; and the int8 rounding bound. */
            double abs_q = 0, abs_x = 0, bound = 0;
            const uint8_t *row = w.data + (size_t)r * w.row_bytes;
            for (int b = 0; b < nb; b++) {
                uint16_t dh;
                memcpy(&dh, row + (size_t)b * 18, 2);
                const double d = fabs(ob_fp16_to_f32(dh));
                for (int k = 0; k < (s32 ? 4 : 1); k++) { /* per scale: 128 columns, or 32 */
                    const int len = s32 ? 32 : 128, j0 = k * len;
                    double sx = a[(size_t)t * na + (s32 ? 4 * b + k : b)] / 2, sq = 0, sxa = 0;
                    for (int j = j0; j < j0 + len; j++) {
                        const size_t o = (size_t)t * cols + b * 128 + j;
                        sq += abs(ql ? 128 * q[o] + ql[o] : q[o]);
                        sxa += fabs(x[(size_t)t * cols + b * 128 + j]);
                    }
                    abs_q += d * sx * sq;
                    abs_x += d * sxa;
                    bound += d * 0.5 * len * sx;
                }
            }
            const double v = y[(size_t)t * ys + r], vg = yg[(size_t)t * ys + r], vr = yr[(size_t)t * rows + r];
            double eg = fabs(v - vg) / (abs_q + 1e-30), er;
            if (eg > worst_gen) worst_gen = eg;
            if (eg > 1e-5) bad_gen++;
            if (exact && !k14) er = fabs(v - vr) / (abs_x + 1e-30), bad_ref += er > 1e-5; /* int14: 8191 is off the grid */
            else er = fabs(v - vr) / (bound * 1.0001 + 1e-5 * abs_x + 1e-30), bad_ref += er > 1.0;
            if (er > worst_ref) worst_ref = er;
            es->se += (v - vr) * (v - vr);
            es->sy += vr * vr;
        }
        for (int r = rows; r < (int)ys; r++) bad_pad += y[(size_t)t * ys + r] != 12345.0f;
    }
    CHECK(bad_gen == 0, "%s gemm rows=%d cols=%d n=%d planes=%d: %d outputs differ from the portable kernel (worst %.3g)",
          isa->name, rows, cols, n, planes, bad_gen, worst_gen);
    CHECK(bad_ref == 0, "%s gemm rows=%d cols=%d n=%d planes=%d exact=%d: %d outputs off the reference (worst %.3g of tolerance)",
          isa->name, rows, cols, n, planes, exact, bad_ref, worst_ref);
    CHECK(bad_pad == 0, "%s gemm rows=%d: wrote %d values past the last row", isa->name, rows, bad_pad);
    /* One token through the ISA's vpermb tables: three (int16) and, for int14 input, two planes.
     * The tables equal ck_vtab_generic's bit for bit; the product has the same integer sums and
     * float steps as the ISA's plain kernel, so the same outputs bit for bit, and nothing past the
     * last row. */
    uint8_t *vt = planes == 2 && n == 1 && isa->vtab ? xalloc((size_t)cols * CK_VT_PER_COL) : NULL;
    uint8_t *vg = vt ? xalloc((size_t)cols * CK_VT_PER_COL) : NULL;
    for (int vp = 3; vt && vp >= (k14 ? 2 : 3); vp--) {
        if (!isa->vtab(q, ql, cols, vp, vt)) break;
        const size_t tbytes = (size_t)cols * (vp == 2 ? CK_VT2_PER_COL : CK_VT_PER_COL);
        ck_vtab_generic(q, ql, cols, vp, vg);
        CHECK(memcmp(vt, vg, tbytes) == 0, "%s vtab planes=%d cols=%d: tables differ from ck_vtab_generic", isa->name, vp, cols);
        float *yv = xalloc(ys * 4);
        for (size_t i = 0; i < ys; i++) yv[i] = 12345.0f;
        act.vt = vt;
        act.vt_planes = vp;
        isa->gemm(&pw, 0, split, &act, 1, yv, ys);
        isa->gemm(&pw, split, pw.n_tiles, &act, 1, yv, ys);
        CHECK(memcmp(yv, y, ys * 4) == 0, "%s gemm with vpermb tables (%d planes, int%d) rows=%d cols=%d exact=%d: differs from the plain kernel",
              isa->name, vp, k14 ? 14 : 16, rows, cols, exact);
        free(yv);
    }
    free(vt);
    free(vg);
    free((void *)w.data); free(packed); free(x); free(q); free(ql); free(lut); free(a); free(c); free(y); free(yg); free(yr);
}

static void test_gemm(const ck_isa *isa) {
    static const int shapes[][2] = {{16, 128}, {1, 128}, {15, 256}, {17, 256}, {40, 6144}, {100, 256}, {33, 128}};
    static const int ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 17, 33};
    /* int8 per 32 (its own kernel): every token count from 1 to 17 (the 8-token blocks and every
     * remainder), then 33 */
    static const int ns32[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33};
    err_stats es[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    /* int8 per 32 on its own random draws: the later tests keep the inputs they were tuned on. */
    unsigned long long saved = 0;
    int restore = 0;
    for (int planes = 1; planes <= 4; planes++) {
        const int *nsp = planes == 3 ? ns32 : ns;
        const size_t nn = planes == 3 ? sizeof ns32 / sizeof *ns32 : sizeof ns / sizeof *ns;
        if (planes == 3 && !isa->quant32) continue;
        if (planes == 4 && !isa->quant14) continue;
        if (planes >= 3 && !restore) saved = rng_state, restore = 1;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (size_t k = 0; k < nn; k++) {
                if (shapes[s][1] == 6144 && nsp[k] > 9) continue; /* keep the run short */
                test_gemm_case(isa, shapes[s][0], shapes[s][1], nsp[k], 1, planes, &(err_stats){0, 0});
                test_gemm_case(isa, shapes[s][0], shapes[s][1], nsp[k], 0, planes, &es[planes]);
            }
    }
    if (restore) rng_state = saved;
    double r8 = sqrt(es[1].se / es[1].sy), r16 = sqrt(es[2].se / es[2].sy);
    printf("%s: Q1_0 product vs reference, Gaussian input: relative RMS error %.4f%% (int8), %.6f%% (int16)\n",
           isa->name, 100 * r8, 100 * r16);
    CHECK(r8 < 0.01, "%s gemm int8: relative RMS error %.4f over 1%%", isa->name, r8);
    CHECK(r16 < 1e-4, "%s gemm int16: relative RMS error %.6f over 0.01%%", isa->name, r16);
    if (isa->quant32) { /* ~step/sqrt(12) of the 32-column scales: below the per-128 int8 figure */
        const double r32 = sqrt(es[3].se / es[3].sy);
        printf("%s: Q1_0 product vs reference, Gaussian input: relative RMS error %.4f%% (int8 per 32)\n", isa->name, 100 * r32);
        CHECK(r32 < r8 && r32 > 1e-4, "%s gemm int8 per 32: relative RMS error %.4f (int8 per 128: %.4f)", isa->name, r32, r8);
    }
    if (isa->quant14) { /* half the steps of int16 (8191 against 16256): about twice its error */
        const double r14 = sqrt(es[4].se / es[4].sy);
        printf("%s: Q1_0 product vs reference, Gaussian input: relative RMS error %.6f%% (int14)\n", isa->name, 100 * r14);
        CHECK(r14 > 1.5 * r16 && r14 < 2e-4, "%s gemm int14: relative RMS error %.6f (int16: %.6f)", isa->name, r14, r16);
    }
}

/* The prompt product through every token's vpermb tables (ck_act.vtm, isa->vtab's layout) against
 * the ISA's own two-plane kernel on the same integers: the same integer sums and float steps, so
 * the same outputs bit for bit, nothing written past the last row, for tile counts around the
 * kernel's groups of tiles, odd block counts, every token count from 1 to 17 and ranges of tiles
 * split as two threads would. Three planes: the int16 activations of isa->quant and isa->vtab's
 * tables. Two planes: integers |Q| <= 8191 (any 4 of them sum within an int16) given to the
 * two-plane kernel as Q = 128 h + l and to the table kernel as tables of lo (unsigned) and hi
 * (signed) bytes built here. */
static void test_gemm_vtm(const ck_isa *isa) {
    if (!isa->vtab) return;
    {
        int8_t z[16] = {0};
        uint8_t t[16 * CK_VT_PER_COL];
        if (!isa->vtab(z, z, 16, 3, t)) {
            printf("skip: %s prompt kernel with vpermb tables (no VBMI on this CPU)\n", isa->name);
            return;
        }
    }
    static const int shapes[][2] = {{16, 128}, {1, 384}, {17, 256}, {33, 128}, {130, 384}, {200, 256}};
    int bad_bits = 0, bad_pad = 0, cases = 0;
    for (int planes = 3; planes >= 2; planes--)
        for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; sh++)
            for (int n = 1; n <= 17; n++) {
                const int rows = shapes[sh][0], cols = shapes[sh][1], nb = cols / 128;
                ob_weight w = make_q1(rows, cols);
                uint8_t *packed = xalloc(ck_q1_packed_size(rows, cols));
                ck_q1 pw = {packed, rows, cols, nb, (rows + 15) / 16};
                ck_q1_repack(w.data, w.row_bytes, rows, cols, packed, 0, pw.n_tiles);
                int8_t *q = xalloc((size_t)n * cols), *ql = xalloc((size_t)n * cols);
                float *a = xalloc((size_t)n * nb * 4), *c = xalloc((size_t)n * nb * 4);
                const size_t stride = (size_t)cols * 4 * planes + 64; /* not the least: the kernel takes it */
                uint8_t *tab = xalloc((size_t)n * stride);
                if (planes == 3) {
                    float *x = xalloc((size_t)n * cols * 4);
                    make_x(x, n, cols, 0);
                    for (int t = 0; t < n; t++) {
                        isa->quant(x + (size_t)t * cols, cols, q + (size_t)t * cols, ql + (size_t)t * cols, a + (size_t)t * nb,
                                   c + (size_t)t * nb);
                        isa->vtab(q + (size_t)t * cols, ql + (size_t)t * cols, cols, 3, tab + (size_t)t * stride);
                    }
                    free(x);
                } else {
                    for (size_t i = 0; i < (size_t)n * cols; i++) {
                        const int Q = (int)(rng_u64() % 16383) - 8191, h = (Q + 64 + 128 * 128) / 128 - 128;
                        q[i] = (int8_t)h;
                        ql[i] = (int8_t)(Q - 128 * h);
                    }
                    for (int t = 0; t < n; t++)
                        for (int b = 0; b < nb; b++) {
                            a[(size_t)t * nb + b] = (float)(1e-4 * rng_unif());
                            c[(size_t)t * nb + b] = (float)(rng_unif() - 0.5);
                        }
                    for (int t = 0; t < n; t++)
                        for (int g = 0; g < cols / 4; g++) {
                            uint8_t *o = tab + (size_t)t * stride + (size_t)(g / 4) * 128 + 16 * (g % 4);
                            int Q[4];
                            for (int k = 0; k < 4; k++) Q[k] = 128 * q[(size_t)t * cols + 4 * g + k] + ql[(size_t)t * cols + 4 * g + k];
                            for (int k = 0; k < 16; k++) {
                                const int v = (k & 1 ? Q[0] : 0) + (k & 2 ? Q[1] : 0) + (k & 4 ? Q[2] : 0) + (k & 8 ? Q[3] : 0);
                                o[k] = (uint8_t)(v & 255);
                                o[64 + k] = (uint8_t)(int8_t)((v - (v & 255)) / 256);
                            }
                        }
                }
                ck_act act = {q, ql, a, c, cols, nb, NULL, 0, 0, NULL, 3, NULL, 0, 0};
                const size_t ys = (size_t)rows + 3;
                float *y = xalloc((size_t)n * ys * 4), *yv = xalloc((size_t)n * ys * 4);
                for (size_t i = 0; i < (size_t)n * ys; i++) y[i] = yv[i] = 12345.0f;
                isa->gemm(&pw, 0, pw.n_tiles, &act, n, y, ys);
                act.vtm = tab, act.vtm_stride = stride, act.vtm_planes = planes;
                const int split = pw.n_tiles > 9 ? 9 : pw.n_tiles / 2;
                isa->gemm(&pw, 0, split, &act, n, yv, ys);
                isa->gemm(&pw, split, pw.n_tiles, &act, n, yv, ys);
                cases++;
                for (int t = 0; t < n; t++) {
                    bad_bits += memcmp(y + (size_t)t * ys, yv + (size_t)t * ys, (size_t)rows * 4) != 0;
                    for (int r = rows; r < (int)ys; r++) bad_pad += yv[(size_t)t * ys + r] != 12345.0f;
                }
                if (bad_bits || bad_pad) {
                    CHECK(0, "%s gemm with vpermb tables, %d planes, rows=%d cols=%d n=%d: %d tokens differ from the "
                          "two-plane kernel, %d values written past the last row", isa->name, planes, rows, cols, n, bad_bits, bad_pad);
                    bad_bits = bad_pad = 0;
                }
                free((void *)w.data); free(packed); free(q); free(ql); free(a); free(c); free(tab); free(y); free(yv);
            }
    printf("%s: prompt product with vpermb tables (3 and 2 planes) equal to the two-plane kernel in %d cases\n", isa->name, cases);
}

/* ---- attention ------------------------------------------------------------------------------- */

static void test_attn(const ck_isa *isa) {
    static const int hds[] = {128, 64};
    static const int nposs[] = {1, 5, 16, 17, 100, 300};
    for (int hi = 0; hi < 2; hi++)
        for (int pi = 0; pi < 6; pi++) {
            const int hd = hds[hi], npos = nposs[pi], H = 3; /* 3 heads: the cache stride is 3 hd */
            float *q = xalloc((size_t)H * hd * 4), *k = xalloc((size_t)npos * H * hd * 4), *v = xalloc((size_t)npos * H * hd * 4);
            float *o = xalloc((size_t)H * hd * 4), *oref = xalloc((size_t)H * hd * 4), *scr = xalloc((size_t)npos * 4);
            for (int i = 0; i < H * hd; i++) q[i] = rng_gauss();
            for (int i = 0; i < npos * H * hd; i++) k[i] = rng_gauss(), v[i] = rng_gauss();
            const float scale = 1.0f / sqrtf((float)hd);
            ob_attn_args args = {q, k, v, oref, 1, npos - 1, H, H, hd, scale};
            scalar_attention(NULL, &args);
            for (int h = 0; h < H; h++)
                isa->attn(q + h * hd, k + h * hd, v + h * hd, (size_t)H * hd, npos, hd, scale, o + h * hd, scr);
            double worst = 0;
            for (int i = 0; i < H * hd; i++) worst = fmax(worst, fabs(o[i] - oref[i]));
            CHECK(worst < 2e-5 * 4.0, "%s attention hd=%d npos=%d: max difference %.3g", isa->name, hd, npos, worst);
            free(q); free(k); free(v); free(o); free(oref); free(scr);
        }
}

/* Several queries of one KV head at once (attn_multi, and attn_multi_f16 on the same keys and
 * values as IEEE halves), each against the reference on its own. */
static void test_attn_multi(const ck_isa *isa, int f16) {
    if (f16 ? !isa->attn_multi_f16 : !isa->attn_multi) return;
    static const int nqs[] = {1, 2, 5, 16};
    static const int maxns[] = {1, 15, 16, 40, 300};
    for (int hi = 0; hi < 2; hi++)
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 5; b++) {
                const int hd = hi ? 64 : 128, nq = nqs[a], maxn = maxns[b], H = 2; /* stride 2 hd */
                float *q = xalloc((size_t)nq * hd * 4), *k = xalloc((size_t)maxn * H * hd * 4), *v = xalloc((size_t)maxn * H * hd * 4);
                float *o = xalloc((size_t)nq * hd * 4), *scr = xalloc((size_t)nq * maxn * 4);
                float *qh = xalloc((size_t)H * hd * 4), *oref = xalloc((size_t)H * hd * 4);
                const float *qp[CK_ATTN_MAXQ];
                float *op[CK_ATTN_MAXQ];
                int npos[CK_ATTN_MAXQ];
                for (int i = 0; i < nq * hd; i++) q[i] = rng_gauss();
                for (int i = 0; i < maxn * H * hd; i++) k[i] = rng_gauss(), v[i] = rng_gauss();
                uint16_t *k16 = xalloc((size_t)maxn * H * hd * 2), *v16 = xalloc((size_t)maxn * H * hd * 2);
                for (int i = 0; f16 && i < maxn * H * hd; i++) { /* the reference sees the halves' values */
                    k16[i] = ob_f32_to_fp16(k[i]), v16[i] = ob_f32_to_fp16(v[i]);
                    k[i] = ob_fp16_to_f32(k16[i]), v[i] = ob_fp16_to_f32(v16[i]);
                }
                for (int i = 0; i < nq; i++) {
                    qp[i] = q + (size_t)i * hd;
                    op[i] = o + (size_t)i * hd;
                    npos[i] = i % 3 == 2 ? 1 + (int)(rng_u64() % (uint64_t)maxn) : maxn - (nq - 1 - i) > 0 ? maxn - (nq - 1 - i) : 1;
                }
                const float scale = 1.0f / sqrtf((float)hd);
                if (!f16) isa->attn_multi(qp, op, npos, nq, k, v, (size_t)H * hd, hd, scale, scr);
                else if (!isa->attn_multi_f16(qp, op, npos, nq, k16, v16, (size_t)H * hd, hd, scale, scr)) {
                    /* a head_dim it declines: the backend widens the rows instead (cpuk_attn_run) */
                    CHECK(hd != 128, "%s attn_multi_f16 declined head_dim 128", isa->name);
                    free(q); free(k); free(v); free(o); free(scr); free(qh); free(oref); free(k16); free(v16);
                    continue;
                }
                double worst = 0;
                for (int i = 0; i < nq; i++) {
                    memset(qh, 0, (size_t)H * hd * 4);
                    memcpy(qh, qp[i], (size_t)hd * 4);
                    ob_attn_args args = {qh, k, v, oref, 1, npos[i] - 1, H, H, hd, scale};
                    scalar_attention(NULL, &args);
                    for (int d = 0; d < hd; d++) {
                        const double e = fabs((double)op[i][d] - oref[d]);
                        if (e > worst) worst = e;
                    }
                }
                CHECK(worst < 1e-4, "%s attention%s of %d queries, hd=%d, up to %d keys: max difference %.3g", isa->name,
                      f16 ? " (half cache)" : "", nq, hd, maxn, worst);
                free(q); free(k); free(v); free(o); free(scr); free(qh); free(oref); free(k16); free(v16);
            }
}

/* SwiGLU of the table (if it has one) against the forward pass's formula, extremes included. */
static void test_swiglu(const ck_isa *isa) {
    const size_t n = 1000;
    float *g = xalloc(n * 4), *u = xalloc(n * 4), *ref = xalloc(n * 4);
    for (size_t i = 0; i < n; i++) g[i] = rng_gauss() * 4, u[i] = rng_gauss();
    g[0] = -100.0f, g[1] = 100.0f, g[2] = 0.0f, g[3] = -88.5f, g[4] = 30.0f;
    for (size_t i = 0; i < n; i++) ref[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    if (isa->swiglu) isa->swiglu(g, u, n);
    else ck_swiglu_generic(g, u, n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += !(fabsf(g[i] - ref[i]) <= 1e-5f * (fabsf(ref[i]) + 1e-3f));
    CHECK(bad == 0, "%s swiglu: %d values off", isa->name, bad);
    free(g); free(u); free(ref);
}

/* Half <-> float conversions of the table against quant.h's, bit for bit. */
static void test_f16(const ck_isa *isa) {
    const size_t n = 4099; /* not a multiple of any vector width */
    float *f = xalloc(n * 4), *back = xalloc(n * 4), *ref = xalloc(n * 4);
    uint16_t *h = xalloc(n * 2), *href = xalloc(n * 2);
    for (size_t i = 0; i < n; i++) f[i] = rng_gauss() * ldexpf(1.0f, (int)(rng_u64() % 40) - 26);
    f[0] = 0.0f, f[1] = -0.0f, f[2] = 65504.0f, f[3] = 65520.0f, f[4] = 1e9f, f[5] = -INFINITY;
    f[6] = 5.9604645e-8f, f[7] = 2.9802322e-8f, f[8] = 8.940697e-8f, f[9] = 6.1035156e-5f;
    for (size_t i = 0; i < n; i++) href[i] = ob_f32_to_fp16(f[i]);
    if (isa->f32_to_f16) isa->f32_to_f16(h, f, n);
    else ck_f32_to_f16_generic(h, f, n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += h[i] != href[i];
    CHECK(bad == 0, "%s float -> half: %zu of %zu differ from ob_f32_to_fp16", isa->name, bad, n);
    for (size_t i = 0; i < n; i++) ref[i] = ob_fp16_to_f32(href[i]);
    if (isa->f16_to_f32) isa->f16_to_f32(back, href, n);
    else ck_f16_to_f32_generic(back, href, n);
    CHECK(memcmp(back, ref, n * 4) == 0, "%s half -> float differs from ob_fp16_to_f32", isa->name);
    free(f); free(back); free(ref); free(h); free(href);
}

/* ---- through the backend's kernel table ------------------------------------------------------ */

/* Byte offsets of the fp16 scale fields of each block type (ggml-common.h; -1: none). */
static const struct { uint32_t type; int off[2]; } scale_fields[] = {
    {GGML_Q4_0, {0, -1}},   {GGML_Q4_1, {0, 2}},    {GGML_Q5_0, {0, -1}},  {GGML_Q5_1, {0, 2}},
    {GGML_Q2_K, {80, 82}},  {GGML_Q3_K, {108, -1}}, {GGML_Q4_K, {0, 2}},   {GGML_Q5_K, {0, 2}},
    {GGML_Q6_K, {208, -1}}, {GGML_TQ1_0, {52, -1}}, {GGML_TQ2_0, {64, -1}}, {GGML_Q2_0, {0, -1}},
};

static ob_weight make_other(uint32_t type, int rows, int cols) {
    const ob_type_row *tr = ob_type_find(type);
    size_t rb = (size_t)cols / (size_t)tr->block * (size_t)tr->bytes;
    ob_weight w = {type, rows, cols, rb, NULL, 0, 0};
    uint8_t *d = xalloc((size_t)rows * rb);
    for (size_t i = 0; i < sizeof scale_fields / sizeof *scale_fields; i++) {
        if (scale_fields[i].type != type) continue;
        for (size_t j = 0; j < (size_t)rows * rb; j++) d[j] = (uint8_t)rng_u64();
        for (size_t b = 0; b < (size_t)rows * rb; b += (size_t)tr->bytes)
            for (int k = 0; k < 2; k++)
                if (scale_fields[i].off[k] >= 0) {
                    uint16_t h = ob_f32_to_fp16((float)(0.001 + 0.01 * rng_unif()) * (rng_u64() % 5 ? 1 : -1));
                    memcpy(d + b + scale_fields[i].off[k], &h, 2);
                }
        w.data = d;
        return w;
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float f = rng_gauss() * 0.1f;
            uint8_t *row = d + (size_t)r * rb;
            if (type == GGML_F32) memcpy(row + (size_t)j * 4, &f, 4);
            else if (type == GGML_F16) {
                uint16_t h = ob_f32_to_fp16(f);
                memcpy(row + (size_t)j * 2, &h, 2);
            } else if (type == GGML_BF16) {
                uint32_t u;
                memcpy(&u, &f, 4);
                uint16_t h = (uint16_t)(u >> 16);
                memcpy(row + (size_t)j * 2, &h, 2);
            } else { /* Q8_0 */
                uint8_t *blk = row + (size_t)(j / 32) * 34;
                if (j % 32 == 0) {
                    uint16_t h = ob_f32_to_fp16(0.01f);
                    memcpy(blk, &h, 2);
                }
                blk[2 + j % 32] = (uint8_t)(int8_t)((int)(rng_u64() % 255) - 127);
            }
        }
    w.data = d;
    return w;
}

/* The ISA's Q2_0 / TQ2_0 row decoders equal the type table's rows bit for bit: random code bytes,
 * f16 scales of either sign over a wide range (subnormals and 2^15 included). */
static void test_dq(const ck_isa *isa) {
    static const struct { uint32_t type; int blk, bytes, d_off; } T[] = {{GGML_Q2_0, 64, 18, 0},
                                                                          {GGML_TQ2_0, 256, 66, 64}};
    for (int t = 0; t < 2; t++) {
        void (*dq)(const void *, float *, size_t) = t == 0 ? isa->dq_q2_0 : isa->dq_tq2_0;
        if (!dq) continue;
        enum { NB = 37 };
        uint8_t *raw = xalloc((size_t)NB * T[t].bytes);
        float *want = xalloc((size_t)NB * T[t].blk * 4), *got = xalloc((size_t)NB * T[t].blk * 4);
        for (int i = 0; i < NB * T[t].bytes; i++) raw[i] = (uint8_t)rng_u64();
        for (int b = 0; b < NB; b++) {
            const float d = (float)(ldexp(0.5 + rng_unif(), (int)(rng_u64() % 40) - 25) * (rng_u64() & 1 ? 1 : -1));
            const uint16_t h = ob_f32_to_fp16(b == 0 ? 0.0f : d);
            raw[(size_t)b * T[t].bytes + T[t].d_off] = (uint8_t)h;
            raw[(size_t)b * T[t].bytes + T[t].d_off + 1] = (uint8_t)(h >> 8);
        }
        for (int nb = 1; nb <= NB; nb += 12) {
            memset(got, 0xff, (size_t)NB * T[t].blk * 4);
            ob_type_find(T[t].type)->dequant(raw, want, (size_t)nb * T[t].blk);
            dq(raw, got, (size_t)nb * T[t].blk);
            CHECK(memcmp(got, want, (size_t)nb * T[t].blk * 4) == 0, "%s dq %s: %d blocks differ from the table's row",
                  isa->name, ob_type_find(T[t].type)->name, nb);
        }
        free(raw); free(want); free(got);
    }
}

static void test_table(const ck_isa *isa) {
    enum { NW = 19 };
    ob_weight ws[NW] = {make_q1(40, 256), make_q1(16, 6144), make_q1(3, 128), make_other(GGML_F32, 7, 64),
                        make_other(GGML_F16, 9, 64), make_other(GGML_BF16, 5, 64), make_other(GGML_Q8_0, 6, 64),
                        make_other(GGML_Q4_0, 7, 96), make_other(GGML_Q4_1, 5, 64), make_other(GGML_Q5_0, 9, 32),
                        make_other(GGML_Q5_1, 4, 64), make_other(GGML_Q2_K, 5, 256), make_other(GGML_Q3_K, 3, 512),
                        make_other(GGML_Q4_K, 17, 256), make_other(GGML_Q5_K, 6, 768), make_other(GGML_Q6_K, 5, 256),
                        make_other(GGML_TQ1_0, 4, 256), make_other(GGML_TQ2_0, 6, 512), make_other(GGML_Q2_0, 7, 192)};
    for (int i = 0; i < NW; i++) ws[i].id = i;
    struct ob_model *m = calloc(1, sizeof *m);
    m->n_weights = NW;
    m->weights = ws;
    setenv("ONEBIT_CPU_ISA", isa->name, 1);
    void *ks1 = NULL, *ks3 = NULL;
    ob_status st1 = cpuk_kernels.init(m, 1, &ks1), st3 = cpuk_kernels.init(m, 3, &ks3);
    unsetenv("ONEBIT_CPU_ISA");
    CHECK(st1 == OB_OK && st3 == OB_OK, "%s: kernel init failed", isa->name);
    if (st1 || st3) goto done;
    CHECK(strcmp(cpuk_isa_name(ks3), isa->name) == 0, "asked for %s, got %s", isa->name, cpuk_isa_name(ks3));
    static const int ns[] = {1, 3, 70}; /* 70: more than one batch of 64 */
    for (int i = 0; i < NW; i++)
        for (int k = 0; k < 3; k++) {
            const ob_weight *w = &ws[i];
            const int n = ns[k];
            float *x = xalloc((size_t)n * w->cols * 4), *y1 = xalloc((size_t)n * w->rows * 4),
                  *y3 = xalloc((size_t)n * w->rows * 4), *yr = xalloc((size_t)n * w->rows * 4);
            make_x(x, n, w->cols % 128 ? 0 : w->cols, 0);
            if (w->cols % 128)
                for (int j = 0; j < n * w->cols; j++) x[j] = rng_gauss();
            cpuk_kernels.matmul(ks1, w, x, y1, n);
            cpuk_kernels.matmul(ks3, w, x, y3, n);
            scalar_matmul(NULL, w, x, yr, n);
            double se = 0, sy = 0;
            for (int j = 0; j < n * w->rows; j++) {
                const double e = (double)y3[j] - yr[j];
                se += e * e;
                sy += (double)yr[j] * yr[j];
            }
            CHECK(memcmp(y1, y3, (size_t)n * w->rows * 4) == 0, "%s matmul type %u: 1 and 3 threads differ", isa->name, w->type);
            /* Q1_0 uses int16 activations: relative RMS under 5e-4 (all-zero input gives exact zeros). */
            if (w->type == GGML_Q1_0)
                CHECK(se <= 2.5e-7 * sy, "%s matmul %s n=%d: squared error %.3g of %.3g", isa->name, ob_type_find(w->type)->name, n, se, sy);
            else if (qk_find(isa->name, w->type) || (tk_type_ok(w->type) && strcmp(isa->name, "generic") != 0))
                /* int8 activations (qk.h, test_qk.c; with a SIMD table the ternary types, tern.h, whose
                 * int16 mode test_tern.c checks): relative RMS < 2% */
                CHECK(se <= 4e-4 * sy, "%s matmul %s n=%d: squared error %.3g of %.3g", isa->name,
                      ob_type_find(w->type)->name, n, se, sy);
            else CHECK(se <= 1e-10 * sy, "%s matmul %s n=%d: squared error %.3g of %.3g", isa->name,
                       ob_type_find(w->type)->name, n, se, sy);
            free(x); free(y1); free(y3); free(yr);
        }
    /* The elementwise hooks against the forward pass's loops. */
    {
        const int rows = 5, len = 2048;
        float *x = xalloc((size_t)rows * len * 4), *w = xalloc((size_t)len * 4), *y = xalloc((size_t)rows * len * 4);
        for (int i = 0; i < rows * len; i++) x[i] = rng_gauss() * 3;
        for (int i = 0; i < len; i++) w[i] = 0.5f + (float)rng_unif();
        cpuk_kernels.rmsnorm(ks3, y, x, w, rows, len, 1e-6f);
        int bad = 0;
        for (int t = 0; t < rows; t++) {
            double ss = 0;
            for (int i = 0; i < len; i++) ss += (double)x[t * len + i] * x[t * len + i];
            const double r = 1.0 / sqrt(ss / len + 1e-6);
            for (int i = 0; i < len; i++) bad += fabs(y[t * len + i] - x[t * len + i] * r * w[i]) > 1e-5 * (fabs(x[t * len + i] * r * w[i]) + 1e-6);
        }
        CHECK(bad == 0, "%s rmsnorm hook: %d values off", isa->name, bad);
        const size_t n = 3 * 6144 + 5;
        float *g = xalloc(n * 4), *u = xalloc(n * 4), *ref = xalloc(n * 4);
        for (size_t i = 0; i < n; i++) g[i] = rng_gauss() * 3, u[i] = rng_gauss(), ref[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        cpuk_kernels.swiglu(ks3, g, u, n);
        bad = 0;
        for (size_t i = 0; i < n; i++) bad += !(fabsf(g[i] - ref[i]) <= 1e-5f * (fabsf(ref[i]) + 1e-3f));
        CHECK(bad == 0, "%s swiglu hook: %d values off", isa->name, bad);
        free(x); free(w); free(y); free(g); free(u); free(ref);
    }
    /* GQA attention: 4 heads over 2 KV heads, 3 tokens at positions 20..22. */
    const int HD = 128, NH = 4, NKV = 2, n = 3, pos = 20, ctx = 32;
    float *q = xalloc((size_t)n * NH * HD * 4), *kc = xalloc((size_t)ctx * NKV * HD * 4), *vc = xalloc((size_t)ctx * NKV * HD * 4);
    float *o = xalloc((size_t)n * NH * HD * 4), *oref = xalloc((size_t)n * NH * HD * 4);
    for (int i = 0; i < n * NH * HD; i++) q[i] = rng_gauss();
    for (int i = 0; i < ctx * NKV * HD; i++) kc[i] = rng_gauss(), vc[i] = rng_gauss();
    ob_attn_args args = {q, kc, vc, oref, n, pos, NH, NKV, HD, 1.0f / sqrtf((float)HD)};
    scalar_attention(NULL, &args);
    args.out = o;
    cpuk_kernels.attention(ks3, &args);
    double worst = 0;
    for (int i = 0; i < n * NH * HD; i++) {
        const double e = fabs((double)o[i] - oref[i]);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-4, "%s GQA attention: max difference %.3g", isa->name, worst);
    /* The same with a half cache (the table's kv_f16), against the reference on the same values. */
    uint16_t *kh = xalloc((size_t)ctx * NKV * HD * 2), *vh = xalloc((size_t)ctx * NKV * HD * 2);
    for (int i = 0; i < ctx * NKV * HD; i++) {
        kh[i] = ob_f32_to_fp16(kc[i]), vh[i] = ob_f32_to_fp16(vc[i]);
        kc[i] = ob_fp16_to_f32(kh[i]), vc[i] = ob_fp16_to_f32(vh[i]);
    }
    args.out = oref;
    scalar_attention(NULL, &args);
    ob_attn_args a16 = args;
    a16.k_cache = a16.v_cache = NULL;
    a16.out = o;
    CHECK(cpuk_kernels.kv_f16 && cpuk_kernels.attention_f16, "the cpu table has no half cache");
    if (cpuk_kernels.attention_f16) cpuk_kernels.attention_f16(ks3, &a16, kh, vh);
    worst = 0;
    for (int i = 0; i < n * NH * HD; i++) {
        const double e = fabs((double)o[i] - oref[i]);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-4, "%s GQA attention on a half cache: max difference %.3g", isa->name, worst);
    uint16_t hx[37];
    float fx[37];
    for (int i = 0; i < 37; i++) fx[i] = rng_gauss();
    cpuk_kernels.to_f16(ks3, hx, fx, 37);
    int bad16 = 0;
    for (int i = 0; i < 37; i++) bad16 += hx[i] != ob_f32_to_fp16(fx[i]);
    CHECK(bad16 == 0, "%s to_f16 hook: %d values differ", isa->name, bad16);
    free(kh); free(vh);
    free(q); free(kc); free(vc); free(o); free(oref);
done:
    cpuk_kernels.free(ks1);
    cpuk_kernels.free(ks3);
    for (int i = 0; i < NW; i++) free((void *)ws[i].data);
    free(m);
}

/* ---- whole model ----------------------------------------------------------------------------- */

static void test_model(const char *path) {
    if (strcmp(path, "-") == 0) return;
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("skip: %s not found (whole-model comparison not run)\n", path);
        return;
    }
    fclose(f);
    enum { N = 70 }; /* two chunks of the forward pass */
    ob_token toks[N];
    for (int i = 0; i < N; i++) toks[i] = (ob_token)(rng_u64() % 150000);
    float *lg[4] = {NULL, NULL, NULL, NULL};
    int nv = 0;
    /* The second cpu run: one token at a time (q, k, v and gate, up as one job each, every thread
     * quantising for itself); the third the same on 3 threads with ONEBIT_CPU_FUSE=0 (one job a
     * matrix), which must give the same floats. */
    const char *names[4] = {"scalar", "cpu", "cpu", "cpu"};
    for (int b = 0; b < 4; b++) {
        ob_model_params mp = ob_model_default_params();
        mp.backend = names[b];
        mp.n_threads = b == 3 ? 3 : 2;
        if (b == 3) setenv("ONEBIT_CPU_FUSE", "0", 1);
        ob_model *m = NULL;
        ob_context *c = NULL;
        ob_context_params cp = ob_context_default_params();
        cp.n_ctx = 128;
        if (ob_model_load_file(path, &mp, &m) || ob_context_new(m, &cp, &c)) {
            CHECK(0, "%s backend on %s: %s", names[b], path, ob_last_error());
        } else {
            ob_model_info mi;
            ob_model_get_info(m, &mi);
            nv = mi.n_vocab;
            lg[b] = malloc((size_t)N * nv * sizeof(float));
            for (int i = 0; i < N; i += b >= 2 ? 1 : N) {
                const int n = b >= 2 ? 1 : N;
                ob_status st = ob_eval(c, toks + i, n, 1);
                CHECK(st == OB_OK, "%s backend: eval: %s", names[b], ob_last_error());
                for (int j = 0; j < n && st == OB_OK; j++)
                    memcpy(lg[b] + (size_t)(i + j) * nv, ob_logits(c, j), (size_t)nv * sizeof(float));
            }
        }
        ob_context_free(c);
        ob_model_free(m);
        unsetenv("ONEBIT_CPU_FUSE");
    }
    if (lg[2] && lg[3]) {
        size_t diff = 0;
        for (size_t i = 0; i < (size_t)N * nv; i++) diff += memcmp(&lg[2][i], &lg[3][i], sizeof(float)) != 0;
        printf("tiny model, cpu one token at a time: 2 threads fused vs 3 threads one job a matrix: %zu of %zu logits differ\n",
               diff, (size_t)N * nv);
        CHECK(diff == 0, "one token at a time: %zu logits differ between 2 threads fused and 3 threads unfused", diff);
    }
    for (int k = 1; k <= 2 && lg[0]; k++) {
        if (!lg[k]) continue;
        double se = 0, sy = 0;
        int agree = 0;
        for (int i = 0; i < N; i++) {
            const float *a = lg[0] + (size_t)i * nv, *b = lg[k] + (size_t)i * nv;
            int ia = 0, ib = 0;
            for (int j = 0; j < nv; j++) {
                se += (double)(a[j] - b[j]) * (a[j] - b[j]);
                sy += (double)a[j] * a[j];
                if (a[j] > a[ia]) ia = j;
                if (b[j] > b[ib]) ib = j;
            }
            agree += ia == ib;
        }
        const char *how = k == 1 ? "one batch" : "one token at a time";
        printf("tiny model, cpu (%s) vs scalar backend: logits relative RMS %.4f%%, argmax agreement %d/%d\n", how,
               100 * sqrt(se / sy), agree, N);
        CHECK(sqrt(se / sy) < 0.01, "whole model (%s): relative RMS %.4f", how, sqrt(se / sy));
        CHECK(agree >= N * 95 / 100, "whole model (%s): argmax agrees on %d of %d positions", how, agree, N);
    }
    for (int k = 0; k < 4; k++) free(lg[k]);
}

int main(int argc, char **argv) {
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
        const ck_isa *isa = isas[i];
        if (!isa->compiled || !isa->supported()) {
            printf("skip: %s kernels %s\n", isa->name, isa->compiled ? "not supported by this CPU" : "not built in");
            continue;
        }
        ran++;
        test_quant(isa);
        test_gemm(isa);
        {   /* its own random draws, as above */
            const unsigned long long saved = rng_state;
            test_gemm_vtm(isa);
            rng_state = saved;
        }
        test_attn(isa);
        test_attn_multi(isa, 0);
        {   /* its own random draws: the later tests keep the inputs they were tuned on */
            const unsigned long long saved = rng_state;
            test_attn_multi(isa, 1);
            rng_state = saved;
        }
        test_swiglu(isa);
        test_f16(isa);
        test_dq(isa);
        test_table(isa);
    }
    CHECK(ran >= 1, "no kernel table ran");
    test_model(argc > 1 ? argv[1] : "build/models/tiny.gguf");
    if (failures) printf("%d checks failed\n", failures);
    return failures ? 1 : 0;
}
