/* qk.h — integer-dot CPU kernels for GGML's 8-, 6-, 5- and 4-bit weight types (Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), per instruction set.
 *
 * Used by backend_cpu.c (which looks a kernel up by weight type and the instruction set it chose,
 * falling back to its float row path where there is none) and by tests/unit/test_qk.c. qk.c holds
 * the activation quantisation and the portable C kernels, which define the arithmetic; the SIMD
 * versions (qk_avx512.c, qk_avx2.c, both from the body in qk_x86.h) must equal it up to float
 * rounding. Not part of the core.
 *
 * The `rows` kernels read the weights in the file's own blocks; where an instruction set also has a
 * `pack` kernel for the type (x86: Q4_0, Q8_0; Q4_K and Q6_K on AVX-512: qk_kq_x86.h), the backend repacks the matrix
 * at load into row-interleaved groups instead (the layout is below) and uses only that. Activations
 * are quantised once per product, per token, into int8 blocks:
 *   QK_ACT32  (legacy types): blocks of 32, scale d = amax / 127, q = round-to-nearest-even(x / d);
 *   QK_ACT256 (K-quants):     the same with blocks of 256;
 * and in both the sum of q over every 16 values (int16), for the types' offsets and minimums. So a
 * block's dot is a few integer sums times float scales, e.g. Q4_K, with sub-block scales sc, mins m:
 *   dot = dx * (d * sum_s sc_s * sum_i q4_i qx_i  -  dmin * sum_s m_s * sum_i qx_i)
 * and Q4_0 (codes 0..15, offset 8): dot = d * dx * (sum_i q4_i qx_i - 8 sum_i qx_i). These are the
 * schemes llama.cpp's CPU kernels use (its Q8_0 / Q8_K activations), so the logits stay as close to
 * it as its own; against the float specification (backend_scalar.c) an int8 activation costs a
 * relative error of 0.3-0.7% RMS per product on Gaussian input (1.2% for Q4_K, whose minimums cancel;
 * tests/unit/test_qk.c bounds it).
 *
 * A product of a matrix by n tokens is split by rows over the threads; each kernel call does rows
 * [r0, r1) for all n tokens, decoding each weight block into registers once per group of up to
 * QK_NT tokens (8 on AVX-512, which has the registers for it: qk_rows.h). Every output is computed the same way whatever the split, so results do not depend
 * on the thread count.
 */
#ifndef OB_CPU_QK_H
#define OB_CPU_QK_H

#include <stddef.h>
#include <stdint.h>

#include "onebit.h"

#define QK_ACT32 32
#define QK_ACT256 256
#define QK_NT 4                   /* tokens sharing one decode of a weight block */

/* Quantised activations of n tokens (cols a multiple of the block). */
typedef struct qk_act {
    const int8_t *q;               /* [n][cols] */
    const float *d;                /* [n][cols / blk] */
    const int16_t *s;              /* [n][cols / 16]: sums of q */
    int cols, blk;
} qk_act;

/* y[t * ystride + r] = W[r] . x[t] for rows r0 <= r < r1 and tokens t < n; W rows are row_bytes
 * apart from w. */
typedef void (*qk_rows_fn)(const uint8_t *w, size_t row_bytes, int r0, int r1, const qk_act *x, int n, float *y,
                           size_t ystride);

/* The same product on a repacked matrix (qk_repack's layout): y[t * ystride + r] for the rows of
 * row groups g0 <= g < g1 (rows 8g..8g+7, those below `rows`) and tokens t < n; nb blocks a row;
 * o[t * nb + b] = -8 * (the sum of token t's codes over block b), qk_pack_offsets. */
typedef void (*qk_pack_fn)(const uint8_t *p, int nb, int g0, int g1, int rows, const qk_act *x, const int32_t *o,
                           int n, float *y, size_t ystride);

typedef struct qk_kern {
    uint32_t type;                 /* enum ggml_type */
    int act_blk;                   /* QK_ACT32 or QK_ACT256 */
    qk_rows_fn rows;
    qk_pack_fn pack;               /* kernel of the repacked layout, NULL: the type stays as in the file */
} qk_kern;

/* qk_quant's signature (below). */
typedef void (*qk_quant_fn)(const float *x, int cols, int blk, int8_t *q, float *d, int16_t *s);

/* One instruction set's kernels: a list ending with type 0 (F32, which never has one). */
typedef struct qk_isa {
    const char *name;              /* as cpu_kern.h's tables: "generic", "avx512", "avx2", "neon", "wasm" */
    int compiled;                  /* 0 when its file was built without the instruction set */
    int (*supported)(void);
    const qk_kern *kerns;
    qk_quant_fn quant;             /* qk_quant's exact result, faster; NULL: qk_quant */
} qk_isa;

extern const qk_isa qk_isa_generic, qk_isa_avx512, qk_isa_avx2, qk_isa_neon, qk_isa_wasm;

/* The kernel of weight type `type` in the table named isa (if built in and run by this CPU), NULL
 * when there is none: the caller falls back to its own path. */
const qk_kern *qk_find(const char *isa, uint32_t type);
/* The kernel of type in one table, NULL when it has none (for the tests). */
const qk_kern *qk_in(const qk_isa *isa, uint32_t type);
/* The activation quantisation of the table named isa (if built in and run by this CPU), else
 * qk_quant: the same bytes either way. */
qk_quant_fn qk_quant_for(const char *isa);

/* ---- the repacked layout (qk_pack.c) ---------------------------------------------------------
 * Where a table has a `pack` kernel, the backend repacks the matrix at load (qk_pack_init), in place
 * of the file's rows, into groups of QK_PR = 8 rows; a group's blocks follow each other, and one
 * group-block holds one block (32 columns) of its 8 rows:
 *   Q4_0 (144 bytes, as 8 file blocks): the 8 rows' fp16 scales d (16 bytes), then 4 chunks of 32
 *     bytes, chunk j byte 4r + c = code of row r, column 4j + c (low nibble) and 16 + 4j + c (high);
 *   Q8_0 (272 bytes, as 8 file blocks): the 8 fp16 scales, then 8 chunks of 32 bytes, chunk j byte
 *     4r + c = code (int8) of row r, column 4j + c;
 *   Q4_K (1184 bytes a super-block of 256 columns, 8 x 148 against 8 x 144 in the file): fp16 d[8],
 *     fp16 dmin[8], the 6-bit scales sc[sub-block s][row r] and minimums mn[s][r] as bytes (64 + 64),
 *     then 32 chunks of 32 bytes, chunk 8k + j byte 4r + c = code of row r, column 64k + 4j + c
 *     (low nibble: sub-block 2k) and 64k + 32 + 4j + c (high: sub-block 2k + 1);
 *   Q6_K (1680 bytes a super-block, as 8 file blocks): fp16 d[8], the int8 scales sc[group of 16
 *     g][row r] (128), then for each half h (128 columns) 768 bytes: the top 2 bits of its codes in
 *     8 chunks, chunk j byte 4r + c bits 2m, 2m + 1 = those of column 128h + 32m + 4j + c, then
 *     the low 4 bits as Q4_K's chunks 8k + j, k = 2h, 2h + 1 (so the bytes are read in order).
 * So a chunk (its nibbles for Q4_0) is one 4-way byte dot product per row in one 32-bit lane: with
 * a token's 4 activations of those columns broadcast to the 8 lanes, one vpdpbusd (or vpmaddubsw +
 * vpmaddwd) adds 4 products to each of 8 rows, and a block's integer dot of 8 rows is 8 such
 * instructions into one vector, no horizontal sums: then one conversion and one FMA with the 8
 * rows' scales times the token's. Rows past the end of the matrix have scale 0 and codes 0. */
#define QK_PR 8

/* Bytes of the repacked matrix of type (rows x cols), 0 when the type has no repacked layout or
 * cols is not a multiple of its block. */
size_t qk_pack_size(uint32_t type, int rows, int cols);
/* Repacks row groups g0 <= g < g1 of a matrix (rows of row_bytes from src) into dst (the whole
 * matrix's buffer). */
void qk_repack(uint32_t type, const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst, int g0, int g1);

/* o[b] = -8 * (s[2b] + s[2b + 1]) for the nb blocks of 32 of one token (its sums per 16 from qk_quant). */
void qk_pack_offsets(const int16_t *s, int nb, int32_t *o);

/* The cpu backend's hook: qk_pack_init repacks every matrix of a type whose kernel in the table
 * named isa has a `pack` kernel (dropping the pages of a mapped file as it goes, as for Q1_0), and
 * qk_pack_matmul does y = W x for n tokens on it, returning 0 for a weight it did not repack. */
struct ob_model;
struct ob_weight;
struct tp_pool;
typedef struct qk_pack_state qk_pack_state;
ob_status qk_pack_init(qk_pack_state **out, const char *isa, const struct ob_model *m, struct tp_pool *pool);
int qk_pack_matmul(qk_pack_state *s, const struct ob_weight *w, const float *x, float *y, int n);
void qk_pack_free(qk_pack_state *s);

/* Quantises one token: x[cols] -> q[cols], d[cols / blk], s[cols / 16]; cols a multiple of blk. */
void qk_quant(const float *x, int cols, int blk, int8_t *q, float *d, int16_t *s);

#endif
