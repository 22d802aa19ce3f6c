/* tern.h — the fast CPU kernels of the 2-bit ternary types Q2_0, TQ2_0 and TQ1_0: their repacked
 * layout, the per-instruction-set kernel tables, and the hook the "cpu" backend calls.
 *
 * The three types store a code q per weight with w = (q - 1) * d (Q2_0: q in 0..3, 64 weights a
 * scale; TQ2_0: q in 0..3, 256 a scale; TQ1_0: base-3 digits t = q - 1, 256 a scale). At load they
 * are all repacked into one layout of tiles of 16 rows, one tile-group per scale group of the file
 * (G = 64 gs columns: gs = 1 for Q2_0, 4 for TQ2_0 and TQ1_0):
 *   [16] fp16 scales d of the 16 rows (32 bytes, copied from the file), then 4 gs chunks of 64
 *   bytes, chunk j holding columns 16j..16j+15 of the group:
 *   bits 2k, 2k+1 of byte 4r + c = code q of W[row r][column 16j + 4k + c].
 * So (chunk >> 2k) & 3 is 64 bytes of codes with row r's 4 columns in bytes 4r..4r+3: one int32
 * lane per row, the shape of a 4-way unsigned x signed byte dot product (vpdpbusd, or vpmaddubsw +
 * vpmaddwd), and the codes are used as they are (0..3, unsigned), never widened to floats.
 * A tile-group is 32 + 256 gs bytes per 16 x 64 gs weights: 288 bytes per 16 x 64 for Q2_0 (2.25
 * bits a weight, its file size), 1056 per 16 x 256 for TQ2_0 and TQ1_0 (2.0625 bits, TQ2_0's file
 * size; TQ1_0 grows from 1.69). The 64 columns of chunks 4i..4i+3 are the group's block i (the
 * activation block below). Tile-groups of a tile are contiguous, so a tile is one sequential stream.
 * Rows past the end of the matrix have d = 0.
 *
 * Activations are quantised per token in blocks of 64 (a tile-group's block) as in cpu_kern.h: integers
 * Q with |Q| <= K, sx = amax / K, Q = round-to-nearest-even(x / sx), int8 (K = 127, one plane) or
 * int16 as two int8 planes (K = 127 * 128, Q = 128 h + l). Per row r, token t, block b with
 * S = sum over the block's 64 columns of q * Q (one byte dot product a plane; S = 128 S_h + S_l):
 *   dot = d * sx * (S - sum(Q)) = d * (a * S + c), a = sx, c = -sx * sum(Q)
 * precomputed per token and block; per tile-group, the blocks' a * S + c (each rounded as
 * fmaf(S, a, c)) are added in block order to g = 0, then acc = fmaf(d, g, acc): one scale product
 * per scale of the file (the batched x86 kernels multiply each block's sum by d instead, to keep
 * their registers for the tokens: equal up to float rounding, which the tests allow). The backend uses one plane, int8, by default: BitNet b1.58 is
 * trained with 8-bit activations (absmax per token, coarser than these 64-column blocks) and
 * llama.cpp's TQ kernels round them to 8 bits per 256 columns (Q8_K); one plane is half the byte
 * dot products of two, which is what a prompt's products are bound by (about 0.6% relative RMS
 * per product; the logits of the arch test files are 2.5-3.1% off llama.cpp's, 2.1-2.6% with two
 * planes, llama.cpp's own rounding). ONEBIT_CPU_TERN_PLANES=2 selects int16 (two planes: the
 * logits of a 28-layer model stay within ~0.01% of the reference; tests/unit/test_tern.c).
 */
#ifndef OB_CPU_TERN_H
#define OB_CPU_TERN_H

#include <stddef.h>
#include <stdint.h>

#include "onebit.h"

#define TK_TILE 16                 /* rows per tile */
#define TK_BLK 64                  /* columns per activation block (and per 4 chunks of codes) */
#define TK_GB_BYTES(gs) (32 + 256 * (gs)) /* bytes per tile-group of gs blocks: 16 x fp16 + 4 gs x 64 bytes of codes */
#define TK_K8 127.0f               /* largest |Q| with one plane */
#define TK_K16 16256.0f            /* largest |Q| with two planes: 127 * 128 */

/* A repacked ternary matrix. */
typedef struct tk_mat {
    const uint8_t *data;           /* [n_tiles][nb / gs][TK_GB_BYTES(gs)], 64-byte aligned */
    int rows, cols;
    int nb;                        /* cols / 64 */
    int n_tiles;                   /* ceil(rows / 16) */
    int gs;                        /* 64-column blocks per scale: tk_group_blocks(type) */
} tk_mat;

/* Quantised activations of n tokens. */
typedef struct tk_act {
    const int8_t *q;               /* [n][cols] Q (int8) or its high plane h (int16) */
    const int8_t *ql;              /* [n][cols] low plane l (int16), NULL for int8 */
    const float *a, *c;            /* [n][nb]: sx, -sx * sum(Q) per block */
    int cols, nb;
} tk_act;

/* One instruction set's kernels. */
typedef struct tk_isa {
    const char *name;              /* as the cpu_kern.h table it goes with */
    int compiled;                  /* 0 when its file was built without the instruction set */
    int (*supported)(void);
    /* One token: x[cols] -> q[cols] (and ql[cols] when ql is not NULL: int16), a[nb], c[nb];
     * cols a multiple of 64. Bit-identical to tk_quant_generic. */
    void (*quant)(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c);
    /* y[t][r] = W[r] . x[t] for rows r of tiles [tile0, tile1) and tokens t < n; y rows have stride
     * ystride. Rows >= w->rows are not written. */
    void (*gemm)(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ystride);
} tk_isa;

extern const tk_isa tk_isa_generic, tk_isa_avx512, tk_isa_avx2, tk_isa_neon, tk_isa_wasm;

/* Is a GGML type one of these (Q2_0, TQ2_0, TQ1_0)? */
int tk_type_ok(uint32_t type);
/* 64-column blocks per scale of the type's repacked form: 1 (Q2_0) or 4 (TQ2_0, TQ1_0). */
int tk_group_blocks(uint32_t type);
/* Bytes of the repacked form of a rows x cols matrix of the type; 0 on overflow or bad shape. */
size_t tk_packed_size(uint32_t type, int rows, int cols);
/* Repacks tiles [tile0, tile1) from rows of the type (row_bytes apart) into dst (the whole matrix). */
void tk_repack(uint32_t type, const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst, int tile0,
               int tile1);

/* Portable versions (the reference for the SIMD ones in the tests). */
void tk_quant_generic(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c);
void tk_gemm_generic(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ystride);

/* ---- the backend's hook (tern.c) --------------------------------------------------------------
 * tk_init repacks every ternary matrix the forward pass multiplies by, when a SIMD table of the
 * name isa_name (the backend's cpu_kern.h choice) is built in and runs here; otherwise it sets
 * *out = NULL and those weights stay on the backend's row path (the only error: out of memory).
 * Pages of a mapped file are dropped as they are repacked, as for Q1_0. tk_matmul does y = W x for n
 * tokens on the pool (the caller holds the backend's lock) and returns 1, or returns 0 when W was
 * not repacked. */
struct ob_model;
struct ob_weight;
struct tp_pool;
typedef struct tk_state tk_state;
ob_status tk_init(tk_state **out, const char *isa_name, const struct ob_model *m, struct tp_pool *pool);
int tk_matmul(tk_state *s, const struct ob_weight *w, const float *x, float *y, int n);
void tk_free(tk_state *s);
/* The table tk_init chose ("" when none). */
const char *tk_isa_name(const tk_state *s);

#endif
