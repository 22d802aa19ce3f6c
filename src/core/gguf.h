/* gguf.h — a reader for GGUF v2/v3 model files that treats the file as hostile.
 *
 * Every count, length, offset and dimension is checked against the file size with overflow-safe
 * arithmetic before anything is dereferenced. Strings and tensor data point into the file image
 * (memory-mapped, or a caller's buffer); nothing is copied. This module knows GGUF, not models.
 *
 * A file may be opened from a prefix of its bytes (gguf_open_memory with avail < file_size): the
 * header is parsed and checked against file_size, and tensors whose data lies beyond the prefix get
 * data == NULL. The wasm build uses this to stream weights straight to the GPU.
 */
#ifndef OB_GGUF_H
#define OB_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4, GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10,
    GGUF_INT64 = 11, GGUF_FLOAT64 = 12, GGUF_VTYPE_COUNT
};

/* GGML tensor types we know the sizes of (others are rejected when a model needs them). */
enum ggml_type {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12, GGML_Q5_K = 13,
    GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_I8 = 24, GGML_I16 = 25, GGML_I32 = 26, GGML_I64 = 27,
    GGML_F64 = 28, GGML_BF16 = 30, GGML_TQ1_0 = 34, GGML_TQ2_0 = 35, GGML_Q1_0 = 41, GGML_Q2_0 = 42,
    GGML_TYPE_COUNT = 43
};
/* Tensor types of PrismML's llama.cpp fork only (refused by name). */
enum { GGUF_PRISM_PQ2_0 = 142, GGUF_PRISM_PTQ1_0 = 143 };

typedef struct gguf_type_info {
    const char *name;   /* NULL for unknown ids */
    uint32_t blck;      /* elements per block */
    uint32_t size;      /* bytes per block */
} gguf_type_info;

/* Info for a tensor type id, or NULL when the id is unknown. */
const gguf_type_info *gguf_type(uint32_t type);

typedef struct gguf_str {
    const char *ptr;    /* not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;      /* enum gguf_vtype */
    uint32_t arr_type;  /* element type when type == GGUF_ARRAY */
    uint64_t arr_n;     /* element count when type == GGUF_ARRAY */
    const uint8_t *val; /* raw little-endian value (for arrays: the first element) */
} gguf_kv;

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] = elements per row (innermost); unused dims are 1 */
    uint32_t type;              /* enum ggml_type */
    uint64_t offset;            /* from the start of the file */
    uint64_t nbytes;
    const void *data;           /* NULL when outside the available prefix */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *base;        /* file image (or its available prefix) */
    uint64_t size;              /* full file size */
    uint64_t avail;             /* bytes readable at base */
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;                /* [n_kv] */
    uint64_t n_tensors;
    gguf_tensor *tensors;       /* [n_tensors] */
    uint32_t alignment;
    uint64_t data_offset;       /* start of the tensor data section */
    int mapped;                 /* base is our mmap */
} gguf_file;

/* Each returns 0 on success, or -1 with a message in err (and nothing to close). */
int gguf_open_file(gguf_file *g, const char *path, char *err, size_t errlen);
int gguf_open_memory(gguf_file *g, const void *data, uint64_t avail, uint64_t file_size,
                     char *err, size_t errlen);
void gguf_close(gguf_file *g);

const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* Typed getters: 0 on success, -1 if absent, -2 if the value has the wrong type or range.
 * Integer getters accept any integer type whose value fits. */
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
int gguf_get_f32(const gguf_file *g, const char *key, float *out); /* also from f64 */
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);
/* Array of strings: fills out[0..arr_n) (caller allocates kv->arr_n entries). */
int gguf_get_str_array(const gguf_kv *kv, gguf_str *out);
/* Array of integers of any width converted to int32 (values must fit). */
int gguf_get_i32_array(const gguf_kv *kv, int32_t *out);

/* 1 if s equals the NUL-terminated c. */
int gguf_str_eq(gguf_str s, const char *c);
const char *gguf_vtype_name(uint32_t t);

#endif
