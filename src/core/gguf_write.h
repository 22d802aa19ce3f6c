/* gguf_write.h — builds GGUF v3 files in memory and writes them out.
 *
 * Used by the test-model generator, the hostile-file corpus and the demo-model exporter. It is a
 * writer, not an editor: keys and tensors are appended in order. Data passed in is copied.
 */
#ifndef OB_GGUF_WRITE_H
#define OB_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(uint32_t alignment);      /* 0 = 32 */
void gguf_writer_free(gguf_writer *w);

/* Each returns 0, or -1 when out of memory. */
int gguf_w_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_w_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_w_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_w_f32(gguf_writer *w, const char *key, float v);
int gguf_w_bool(gguf_writer *w, const char *key, int v);
int gguf_w_str(gguf_writer *w, const char *key, const char *v);
int gguf_w_str_n(gguf_writer *w, const char *key, const char *v, size_t len);
/* Array of n strings given as pointers and lengths. */
int gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *v, const size_t *lens,
                   size_t n);
int gguf_w_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n);
int gguf_w_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n);
/* Tensor with dims ne[0..n_dims) (ne[0] innermost) of ggml type; data is nbytes long. */
int gguf_w_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                  const uint64_t *ne, const void *data, size_t nbytes);

/* Serialises to a malloc'ed buffer (*out, *len); 0 or -1. */
int gguf_writer_bytes(gguf_writer *w, uint8_t **out, size_t *len);
/* Writes to path; 0, or -1 with errno set. */
int gguf_writer_save(gguf_writer *w, const char *path);

#endif
