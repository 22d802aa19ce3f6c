/* quant.h — scalar element formats: fp16/bf16 conversion, the weight type table and row
 * dequantisation.
 *
 * Q1_0: blocks of 128 weights, 18 bytes each: an fp16 scale d, then 16 bytes of sign bits;
 * weight j of the block is +d when bit (j % 8) of byte (j / 8) is set, else -d.
 * The other types (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, TQ1_0, TQ2_0, Q2_0)
 * have GGML's block layouts; quant.c documents each beside its decoder. These are the reference
 * definitions; fast kernels are tested against them. Not here: quantisers for other than Q1_0.
 */
#ifndef OB_QUANT_H
#define OB_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define QK1_0 128
typedef struct { uint16_t d; uint8_t qs[QK1_0 / 8]; } block_q1_0;   /* 18 bytes */
#define QK8_0 32
typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;       /* 34 bytes */

float ob_fp16_to_f32(uint16_t h);
uint16_t ob_f32_to_fp16(float f);          /* round to nearest even */
float ob_bf16_to_f32(uint16_t h);

/* ---- the weight type table ------------------------------------------------------------------
 * One row per GGML type onebit runs: block size, bytes per block, row dequantisation and the
 * reference dot product. The scalar backend is built on these rows alone; fast paths are keyed by
 * (type, instruction set) and fall back to them. */
typedef struct ob_type_row {
    uint32_t type;           /* enum ggml_type */
    const char *name;        /* "q4_K" */
    int block;               /* elements per block */
    int bytes;               /* bytes per block */
    /* dst[0..n) = the values of n elements (n a multiple of block) starting at src */
    void (*dequant)(const void *src, float *dst, size_t n);
    /* sum over j < n of w[j] * x[j], w being n elements (a multiple of block) of this type */
    float (*dot)(const void *w, const float *x, size_t n);
} ob_type_row;

/* The row of a type, or NULL when onebit does not run it. */
const ob_type_row *ob_type_find(uint32_t type);
/* Comma-separated names of the types onebit runs, for messages. */
const char *ob_type_names(void);

/* The i-th row of the table (0, 1, ...), NULL past the end: for tests and tools that visit every type. */
const ob_type_row *ob_type_at(int i);

/* Dequantises n elements (a multiple of the type's block size) of type starting at src, through
 * the type's row. Returns 0, or -1 for a type without a row. */
int ob_dequant_row(uint32_t type, const void *src, float *dst, size_t n);

/* Quantises n floats (multiple of 128) to Q1_0: d = mean |x| of the block, sign bit = x >= 0. */
void ob_quant_q1_0(const float *src, block_q1_0 *dst, size_t n);

#endif
