/* gguf_out.h — writes a GGUF v3 file as a stream (for `onebit quantize` and `onebit convert`).
 *
 * Unlike src/core/gguf_write.h (which builds a whole file in memory), tensors are written one at
 * a time, so a model of any size needs memory for one tensor. The header needs its counts first:
 * a writer opened "dry" (gout_open with path NULL) writes nothing and counts the key-value pairs
 * and bytes, so a caller can run its header code twice. The file is written beside its path under
 * a temporary name, read back by the GGUF reader and renamed only when complete (gout_commit);
 * gout_abort removes it. Errors (a full disk) are kept and reported by gout_commit.
 */
#ifndef OB_GGUF_OUT_H
#define OB_GGUF_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gguf.h"

typedef struct gguf_out {
    FILE *f;              /* NULL when dry */
    uint64_t pos;         /* bytes written (or counted) */
    uint64_t n_kv;        /* key-value pairs written (or counted) */
    int err;              /* first errno, 0 if none */
    char tmp[4096];       /* the temporary file's path */
    char path[4096];
} gguf_out;

/* path NULL: a dry run. Returns 0, or -1 with a message on stderr (prog names the command). */
int gout_open(gguf_out *o, const char *path, const char *prog);
void gout_put(gguf_out *o, const void *p, size_t n);
void gout_u32(gguf_out *o, uint32_t v);
void gout_u64(gguf_out *o, uint64_t v);
void gout_str(gguf_out *o, const char *p, uint64_t n);
void gout_pad(gguf_out *o, uint32_t align);
/* The file's first bytes: magic, version 3, counts. */
void gout_header(gguf_out *o, uint64_t n_tensors, uint64_t n_kv);

void gout_kv_u32(gguf_out *o, const char *key, uint32_t v);
void gout_kv_i32(gguf_out *o, const char *key, int32_t v);
void gout_kv_f32(gguf_out *o, const char *key, float v);
void gout_kv_bool(gguf_out *o, const char *key, int v);
void gout_kv_str(gguf_out *o, const char *key, const char *v);
void gout_kv_arr_str(gguf_out *o, const char *key, char *const *v, size_t n);
void gout_kv_arr_i32(gguf_out *o, const char *key, const int32_t *v, size_t n);
void gout_kv_arr_f32(gguf_out *o, const char *key, const float *v, size_t n);
/* A pair as another file has it (the reader checked its bounds). */
void gout_kv_copy(gguf_out *o, const gguf_kv *kv);
void gout_tensor_info(gguf_out *o, const char *name, size_t name_len, uint32_t n_dims, const uint64_t *ne,
                      uint32_t type, uint64_t offset);

/* Flushes, syncs, closes, checks that the GGUF reader opens the file, and renames it to its path.
 * 0, or -1 with a message on stderr (and the temporary file removed). */
int gout_commit(gguf_out *o, const char *prog);
/* Closes and removes the temporary file (after a failure). */
void gout_abort(gguf_out *o);

#endif
