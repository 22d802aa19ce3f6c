/* safetensors.h — a reader for Hugging Face safetensors files that treats the file as hostile.
 *
 * Layout (the format's published description): an 8-byte little-endian header size N, N bytes of
 * UTF-8 JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (plus an
 * optional "__metadata__" object of strings), then the data; offsets are relative to the end of
 * the header. Every size, shape and offset is checked (overflow-safe) against the file before use:
 * the header must fit the file, each tensor's byte range must lie in the data and match its shape
 * and dtype, ranges must not overlap, names must be unique. The file is memory-mapped; tensors
 * point into it.
 */
#ifndef OB_SAFETENSORS_H
#define OB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL, ST_OTHER };

#define ST_MAX_DIMS 4

typedef struct st_tensor {
    char *name;
    int dtype;                  /* enum st_dtype */
    const char *dtype_name;     /* as in the file ("BF16") */
    int n_dims;
    uint64_t shape[ST_MAX_DIMS]; /* outermost first, as in the file */
    uint64_t n_elems;
    const uint8_t *data;
    uint64_t nbytes;
} st_tensor;

typedef struct st_file {
    uint8_t *map;
    size_t size;
    st_tensor *t;
    size_t n;
    int mapped;                 /* map is our mmap (st_open), not the caller's bytes */
} st_file;

/* 0, or -1 with a message in err (and nothing to close). */
int st_open(st_file *f, const char *path, char *err, size_t errlen);
int st_open_memory(st_file *f, const uint8_t *data, size_t size, char *err, size_t errlen);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
/* Bytes per element of a dtype (0 for ST_OTHER). */
int st_dtype_size(int dtype);
/* Element i of a float tensor (F32, F16, BF16) as a float. */
float st_get_f32(const st_tensor *t, uint64_t i);

#endif
