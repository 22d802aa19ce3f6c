/* quantize.h — quantisers: float weights to GGUF block types, for `onebit quantize`.
 *
 * F32, F16, BF16, Q8_0, Q4_0, Q1_0 and Q2_0 follow the reference quantisers of ggml (the ones
 * llama-quantize uses without an importance matrix) step for step in float arithmetic, so that
 * the same input gives the same bytes (tests/quantize.test.mjs checks this against llama-quantize).
 * Q4_K has its own search for each sub-block's scale and minimum (least squares over a few
 * candidate ranges), tested to lose no more than llama.cpp's Q4_K does on the same input.
 * Decoding is quant.h's type table; these only encode.
 */
#ifndef OB_QUANTIZE_H
#define OB_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ob_quantizer {
    uint32_t type;       /* enum ggml_type */
    const char *name;    /* "q4_K", as quant.h's table and llama.cpp name it */
    int block;           /* elements per block */
    int bytes;           /* bytes per block */
    uint32_t file_type;  /* general.file_type (llama.cpp's LLAMA_FTYPE) of a file mostly of this type */
    /* dst = n floats (a multiple of block) encoded; blocks are independent, so rows may be
     * quantised in any order and on any thread. */
    void (*quantize)(const float *x, void *dst, size_t n);
} ob_quantizer;

/* The quantiser of a type, or NULL. */
const ob_quantizer *ob_quantizer_find(uint32_t type);
/* By name, case-insensitively ("Q4_K", "q1_0", "f16"), or NULL. */
const ob_quantizer *ob_quantizer_by_name(const char *name);
/* Comma-separated names of the types there is a quantiser for, for messages. */
const char *ob_quantizer_names(void);

#endif
