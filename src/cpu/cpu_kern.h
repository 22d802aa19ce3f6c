/* cpu_kern.h — the fast CPU kernels' data layouts and the per-instruction-set kernel tables.
 *
 * Used by backend_cpu.c (which picks a table at run time) and by the per-ISA files cpu_avx512.c,
 * cpu_avx2.c, cpu_neon.c, cpu_wasm.c (each compiled with its own flags). cpu_kern.c holds the
 * repacking and the portable C versions, which define the arithmetic the SIMD versions must match.
 * Not part of the core: only the CPU backend and its tests include this header.
 *
 * Q1_0 weights are repacked at load time into tiles of 16 rows, one tile-block per 128 columns:
 *   [16] fp16 scales d of the 16 rows (32 bytes), then [32] uint64 sign masks (256 bytes);
 *   mask g holds bit 4*r + c = sign bit of W[row r][column 4*g + c] (set = +d).
 * So a 64-bit mask expanded to 64 bytes puts row r's 4 columns in bytes 4r..4r+3: one int32 lane
 * per row, exactly the shape of a 4-way byte dot product (vpdpbusd, sdot). Tile-blocks of a tile
 * are contiguous (columns inner), so one tile is a sequential stream. 288 bytes per 16 x 128
 * weights: the same size as Q1_0. Rows past the end of the matrix are padded with d = 0.
 *
 * Activations are quantised per token in blocks of 128 (the weight block) to integers Q with
 * |Q| <= K, sx = amax / K, Q = round-to-nearest-even(x / sx), in one of two precisions:
 *   int8:  K = 127, one plane q = Q;
 *   int16: K = 127 * 128, two int8 planes Q = 128 h + l, h in [-127, 127], l in [-64, 63];
 *   int14: K = 8191, the same two planes (h in [-64, 64]): the largest K whose sums of 4 fit 16
 *          bits, which halves the steps' precision (~2x int16's error, still ~0.1 % of the logits)
 *          and lets the vpermb tables below hold each sum in two bytes instead of three.
 * Per row r, token t, block b with S = sum of Q over the set bits of the row's block:
 * dot = d * (2 S - sum(Q)) * sx = d * (a * S + c), with a = 2 sx and c = -sx * sum(Q) precomputed
 * per token and block. Only integer sums are computed in the inner loop (S = 128 S_h + S_l for
 * two planes: one byte dot product per plane); the weights are never dequantised. int8 costs a
 * relative error of about 0.65% per product on Gaussian-like input, which compounds to a few
 * percent over a model's layers; int16 (twice the integer work) brings it to ~0.005%, so the
 * backend uses two planes (see backend_cpu.c and tests/unit/test_kernels.c).
 *
 * A third form, int8 per 32 (llama.cpp's own granularity, its q8_0 activations): one int8 plane
 * (K = 127) with a scale sx_k per 32 columns, k = 0..3 in a block of 128. Per block the four
 * partial sums S_k (8 groups of 4 columns each) are scaled separately:
 * dot = d * (sum_k a_k S_k + c), a_k = 2 sx_k, c = -sum_k sx_k sum(Q over sub-block k), so a is
 * [n][4 nb] and c stays [n][nb] (ck_act.s32 = 1; ck_isa.quant32 fills them).
 */
#ifndef OB_CPU_KERN_H
#define OB_CPU_KERN_H

#include <stddef.h>
#include <stdint.h>

#define CK_TILE 16                 /* rows per tile */
#define CK_BLK 128                 /* columns per block (= QK1_0) */
#define CK_TB_BYTES 288            /* bytes per tile-block: 16 x fp16 + 32 x uint64 */
#define CK_TB_MASKS 32             /* uint64 masks per tile-block */

/* A repacked Q1_0 matrix. */
typedef struct ck_q1 {
    const uint8_t *data;           /* [n_tiles][nb][CK_TB_BYTES], 64-byte aligned */
    int rows, cols;
    int nb;                        /* cols / 128 */
    int n_tiles;                   /* ceil(rows / 16) */
} ck_q1;

#define CK_K8 127.0f               /* largest |Q| with one plane */
#define CK_K16 16256.0f            /* largest |Q| with two planes: 127 * 128 */
#define CK_K14 8191.0f             /* int14: largest |Q| whose sums of 4 fit int16 (4 * 8191 < 2^15) */

/* Quantised activations of n tokens. */
typedef struct ck_act {
    const int8_t *q;               /* [n][cols] Q (int8) or its high plane h (int16) */
    const int8_t *ql;              /* [n][cols] low plane l (int16), NULL for int8 */
    const float *a, *c;            /* [n][nb]: 2 sx, -sx * sum(Q) per block */
    int cols, nb;
    /* Tables of the ISA's lut hook, when it has one (else NULL): [n][lut_stride] bytes. */
    const uint8_t *lut;
    size_t lut_stride;
    /* 1: int8 per 32 (ql NULL, a is [n][4 nb]: one a_k per 32 columns; c is [n][nb]); only for the
     * tables with quant32. 0: a per 128 columns as above. */
    int s32;
    /* One token's vpermb tables (ck_isa.vtab), or NULL: the one-token product then uses them. */
    const uint8_t *vt;
    /* Byte planes of vt: 3 (int16 sums, CK_VT_PER_COL), 2 (int14 sums, CK_VT2_PER_COL); 0 = 3. */
    int vt_planes;
    /* Every token's vpermb tables for the prompt product (AVX-512 VBMI), or NULL: [n][vtm_stride]
     * bytes, vtm_planes byte planes (3: int16, the layout of CK_VT_PER_COL; 2: sums that fit an
     * int16, lo unsigned and hi signed), 64 vtm_planes bytes per 16 columns; gemm with n >= 1 then
     * reads them (and a, c) instead of q, ql. */
    const uint8_t *vtm;
    size_t vtm_stride;
    int vtm_planes;
} ck_act;

/* vpermb tables (ck_isa.vtab; AVX-512 VBMI): per token and 16 columns (groups g .. g+3), three
 * 64-byte tables lo, mid, hi; entry 16 j + k holds the bytes of v = the sum of Q (int16: 128 h + l)
 * over the bits c of k in group g + j, v = lo + 256 mid + 65536 hi (lo, mid unsigned, hi signed:
 * |v| <= 4 * 16256 < 2^16), so that a byte permute indexed by (row's nibble, j) looks up 64 (row,
 * group) sums at once and byte dot products with 1 add them up exactly: the same integer sums as
 * the two planes. CK_VT_PER_COL bytes per column. */
#define CK_VT_PER_COL 12
/* The same tables for int14 activations (|Q| <= CK_K14, ck_quant14_generic): |v| <= 4 * 8191 <
 * 2^15, so two planes suffice, lo (unsigned) and hi (signed), v = lo + 256 hi: per 16 columns 128
 * bytes, lo then hi, and per 256 weights two lookups and two byte dot products instead of three. */
#define CK_VT2_PER_COL 8

/* Lookup tables (ck_isa.lut; AVX2 and NEON): per token and group g of 4 columns, the 16 sums
 * T[k] = sum of Q[4g + c] over the bits c of k (what a row's 4 sign bits of the group select),
 * biased by CK_LUT_BIAS so that 0 <= v = T[k] + CK_LUT_BIAS < 2^17, each split into three bytes of
 * 6, 6 and 5 bits, v = c0 + 64 c1 + 4096 c2: one 16-byte table per group and chunk, which a byte
 * shuffle (vpshufb, tbl) indexes with the row's 4 bits (the nibble of the repacked mask). Layout
 * per pair of groups (2p, 2p + 1), 96 bytes: c0 of 2p, c0 of 2p + 1, c1 of 2p, c1 of 2p + 1, c2 of
 * 2p, c2 of 2p + 1 (16 bytes each). Sums of byte lookups stay exact: at most 4 lookups are added
 * in a byte (4 * 63 < 256), then widened; per row and block, S = sum of c0 + 64 sum of c1 + 4096
 * sum of c2 - 32 CK_LUT_BIAS. */
#define CK_LUT_PER_COL 12          /* bytes per activation column */
#define CK_LUT_BIAS 65024          /* 4 * 16256: minus the least subset sum */

/* One instruction set's kernels. */
typedef struct ck_isa {
    const char *name;
    int compiled;                  /* 0 when its file was built without the instruction set */
    int (*supported)(void);        /* does this CPU run it? */
    /* Quantises one token: x[cols] -> q[cols] (and ql[cols] when ql is not NULL: int16), a[nb],
     * c[nb]; cols a multiple of 128. */
    void (*quant)(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c);
    /* Optional (NULL: no int14 form): quant with two planes and K = CK_K14 (int14: h in [-64, 64],
     * l in [-64, 63]), bit for bit ck_quant14_generic. The two-plane kernels and the tables take
     * these planes as they take int16's; only the vpermb tables have a smaller form for them. */
    void (*quant14)(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c);
    /* Optional (NULL: gemm reads q / ql): builds one token's lookup tables from its quantised
     * planes (ql NULL: int8), cols * CK_LUT_PER_COL bytes at lut; gemm then reads only x->lut
     * (and a, c), which the caller must fill for every token. */
    void (*lut)(const int8_t *q, const int8_t *ql, int cols, uint8_t *lut);
    /* Optional (NULL: gemm has no int8-per-32 form): quantises one token as int8 with one scale per
     * 32 columns: x[cols] -> q[cols], a[4 nb] (2 sx_k), c[nb] (cpu_kern.h's top comment). */
    void (*quant32)(const float *x, int cols, int8_t *q, float *a, float *c);
    /* Optional (NULL: none): builds one token's vpermb tables from its two planes (cols *
     * CK_VT_PER_COL bytes at tab with planes = 3, for int16; cols * CK_VT2_PER_COL with planes = 2,
     * for int14 input only) and returns 1, or returns 0 without writing when this CPU cannot run
     * the kernel that reads them; gemm with n = 1 and x->vt set reads x->vt (x->vt_planes of them)
     * instead of q, ql. Bit for bit ck_vtab_generic. */
    int (*vtab)(const int8_t *q, const int8_t *ql, int cols, int planes, uint8_t *tab);
    /* y[t][r] = W[r] . x[t] for rows r of tiles [tile0, tile1) and tokens t < n; y rows have stride
     * ystride. Rows >= w->rows are not written. */
    void (*gemm)(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ystride);
    /* One head of attention: out[hd] = sum_j softmax_j(scale * q . k_j) v_j over j < npos, with
     * k_j = k + j * stride (v likewise). scratch holds npos floats. */
    void (*attn)(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                 float scale, float *out, float *scratch);
    /* Optional (NULL: attn per query): nq <= CK_ATTN_MAXQ queries sharing one KV head, query i
     * seeing keys j < npos[i], so that each key and value row is read once for all of them.
     * scratch holds nq * max(npos) floats. */
    void (*attn_multi)(const float *const *q, float *const *out, const int *npos, int nq, const float *k,
                       const float *v, size_t stride, int hd, float scale, float *scratch);
    /* Optional (NULL: the caller widens the rows to floats first): attn_multi on a cache of IEEE
     * halves, k and v rows read and widened in place. Returns 0, having done nothing, for a
     * head_dim it has no code for. */
    int (*attn_multi_f16)(const float *const *q, float *const *out, const int *npos, int nq, const uint16_t *k,
                          const uint16_t *v, size_t stride, int hd, float scale, float *scratch);
    /* Optional (NULL: the portable loop): g[i] = silu(g[i]) * u[i] for i < n. */
    void (*swiglu)(float *g, const float *u, size_t n);
    /* Optional (NULL: quant.h's scalar conversions, which these must equal bit for bit): IEEE
     * half <-> float for n values, rounding to nearest even. */
    void (*f16_to_f32)(float *dst, const uint16_t *src, size_t n);
    void (*f32_to_f16)(uint16_t *dst, const float *src, size_t n);
    /* Optional (NULL: the type table's row, quant.h): the row decoders of Q2_0 and TQ2_0, which
     * these must equal bit for bit (finite scales): n elements of src (a multiple of the block). */
    void (*dq_q2_0)(const void *src, float *dst, size_t n);
    void (*dq_tq2_0)(const void *src, float *dst, size_t n);
} ck_isa;

#define CK_ATTN_MAXQ 16

/* Generation (one token) streams each repacked matrix from memory once, a tile front to back.
 * The hardware prefetchers alone keep too few lines in flight for one core to reach the memory
 * bound: the one-token kernels also prefetch the tile-block this many bytes ahead (8 tile-blocks;
 * past a tile's end that is the next tile, which is next in memory too). Measured on Zen 4 with
 * bench/q1-kernels.c on matrices larger than L3: 1.2-1.5x the weights per second for one thread.
 * CK_PREFETCH_HINT (x86: _MM_HINT_T1, defined where immintrin.h is included) brings the lines
 * into L2, not L1: with T0 the Bonsai-shaped token's products streamed ~20 GB/s with 2 threads
 * (bench/q1-token.c 10-11 ms a token; onebit bench tg128 71-78 tok/s on Zen 4 AVX-512 VBMI), with
 * T1 ~37 GB/s (6.0-6.9 ms; 107-125 tok/s); AVX2's table kernel 70-72 -> 76-79 tok/s: an L1
 * prefetch holds one of the few L1 miss buffers for the whole trip from memory, an L2 one does
 * not. */
#define CK_PREFETCH_BYTES (8 * CK_TB_BYTES)
#define CK_PREFETCH_HINT _MM_HINT_T1

extern const ck_isa ck_isa_generic, ck_isa_avx512, ck_isa_avx2, ck_isa_neon, ck_isa_wasm;

/* Bytes of the repacked form of a rows x cols Q1_0 matrix; 0 on overflow or bad shape. */
size_t ck_q1_packed_size(int rows, int cols);
/* Repacks tiles [tile0, tile1) from Q1_0 rows (row_bytes apart) into dst (the whole matrix). */
void ck_q1_repack(const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst, int tile0, int tile1);

/* Portable versions (also the reference for the SIMD ones in the tests). */
void ck_quant_generic(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c);
void ck_quant32_generic(const float *x, int cols, int8_t *q, float *a, float *c);
/* int14: ck_quant_generic with two planes and K = CK_K14 (ql must not be NULL). */
void ck_quant14_generic(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c);
/* The vpermb tables (CK_VT_PER_COL, planes 3; CK_VT2_PER_COL, planes 2: int14 input), portable. */
void ck_vtab_generic(const int8_t *q, const int8_t *ql, int cols, int planes, uint8_t *tab);
/* The same quantisation with blocks of blk columns (cols a multiple) and a = a_mul * sx: Q1_0 uses
 * 128 and 2 (its dot is d (2 S - sum Q) sx), the ternary kernels 64 and 1 (tern.h). */
void ck_quant_blocks(const float *x, int cols, int blk, float a_mul, int8_t *q, int8_t *ql, float *a, float *c);
/* Returns the pages of a memory-mapped file between from and to (whole pages only) to the kernel
 * once their bytes are repacked; returns where the next call should start. No-op where there is no
 * madvise. */
const uint8_t *ck_drop_pages(const uint8_t *from, const uint8_t *to);
/* Memory for repacked matrices, carved by the caller into 64-byte-aligned pieces: one block
 * aligned to 2 MiB (size rounded up to it) with MADV_HUGEPAGE, so that the weights stream through
 * huge pages. madvise needs a page-aligned start, which per-matrix 64-byte-aligned blocks lack (the
 * hint failed and the weights stayed on 4 KiB pages: one core streamed them ~25 % slower). NULL
 * when out of memory or when bytes overflows; free with free(). */
uint8_t *ck_arena_alloc(size_t bytes);
/* Bytes a piece of n bytes takes in such a block (n rounded up to 64), 0 on overflow. */
size_t ck_arena_piece(size_t n);
/* Bytes between two tokens' vpermb tables for the prompt product (ck_act.vtm_stride) of cols
 * columns and planes byte planes (64 planes bytes per 16 columns): the tables rounded up to 4 KiB
 * plus one block's (512 planes bytes), so that the same block of successive tokens falls on
 * different L1 sets (unpadded, 8 tokens' blocks of 2048 columns shared 24 of the 64 sets, and 16
 * tokens ran 25 % slower). 0 on overflow. */
size_t ck_vtm_stride(int cols, int planes);
void ck_lut_generic(const int8_t *q, const int8_t *ql, int cols, uint8_t *lut);
void ck_gemm_generic(const ck_q1 *w, int tile0, int tile1, const ck_act *x, int n, float *y, size_t ystride);
void ck_attn_generic(const float *q, const float *k, const float *v, size_t stride, int npos, int hd,
                     float scale, float *out, float *scratch);
void ck_swiglu_generic(float *g, const float *u, size_t n);
void ck_f16_to_f32_generic(float *dst, const uint16_t *src, size_t n);
void ck_f32_to_f16_generic(uint16_t *dst, const float *src, size_t n);
/* y = x / sqrt(mean(x^2) + eps) * w over len floats (8 partial sums: no long dependency chain). */
void ck_rmsnorm_row(float *y, const float *x, const float *w, int len, float eps);

/* backend_cpu.c: the "cpu" backend's kernel table (exported for the tests), and the name of the
 * table a kernel state chose. */
struct ob_kernels;
extern const struct ob_kernels cpuk_kernels;
const char *cpuk_isa_name(const void *kstate);

#endif
