/* gguf_out.c — a streaming GGUF v3 writer (see gguf_out.h). */
#include "gguf_out.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int gout_open(gguf_out *o, const char *path, const char *prog) {
    memset(o, 0, sizeof *o);
    if (!path) return 0;
    if (strlen(path) + 32 >= sizeof o->tmp) {
        fprintf(stderr, "%s: output path too long\n", prog);
        return -1;
    }
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp-%ld", path, (long)getpid());
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        fprintf(stderr, "%s: cannot create '%s': %s\n", prog, o->tmp, strerror(errno));
        o->tmp[0] = 0;
        return -1;
    }
    return 0;
}

void gout_put(gguf_out *o, const void *p, size_t n) {
    o->pos += n;
    if (!o->f || o->err || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->err = errno ? errno : EIO;
}

void gout_u32(gguf_out *o, uint32_t v) {
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    gout_put(o, b, 4);
}

void gout_u64(gguf_out *o, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    gout_put(o, b, 8);
}

void gout_str(gguf_out *o, const char *p, uint64_t n) {
    gout_u64(o, n);
    gout_put(o, p, (size_t)n);
}

void gout_pad(gguf_out *o, uint32_t align) {
    static const uint8_t zeros[256] = {0};
    while (o->pos % align) {
        const uint64_t n = align - o->pos % align;
        gout_put(o, zeros, n > sizeof zeros ? sizeof zeros : (size_t)n);
    }
}

void gout_header(gguf_out *o, uint64_t n_tensors, uint64_t n_kv) {
    gout_put(o, "GGUF", 4);
    gout_u32(o, 3);
    gout_u64(o, n_tensors);
    gout_u64(o, n_kv);
}

static void key(gguf_out *o, const char *k, uint32_t type) {
    gout_str(o, k, strlen(k));
    gout_u32(o, type);
    o->n_kv++;
}

void gout_kv_u32(gguf_out *o, const char *k, uint32_t v) { key(o, k, GGUF_UINT32); gout_u32(o, v); }
void gout_kv_i32(gguf_out *o, const char *k, int32_t v) { key(o, k, GGUF_INT32); gout_u32(o, (uint32_t)v); }
void gout_kv_f32(gguf_out *o, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    key(o, k, GGUF_FLOAT32);
    gout_u32(o, u);
}
void gout_kv_bool(gguf_out *o, const char *k, int v) {
    const uint8_t b = v ? 1 : 0;
    key(o, k, GGUF_BOOL);
    gout_put(o, &b, 1);
}
void gout_kv_str(gguf_out *o, const char *k, const char *v) { key(o, k, GGUF_STRING); gout_str(o, v, strlen(v)); }

void gout_kv_arr_str(gguf_out *o, const char *k, char *const *v, size_t n) {
    key(o, k, GGUF_ARRAY);
    gout_u32(o, GGUF_STRING);
    gout_u64(o, n);
    for (size_t i = 0; i < n; i++) gout_str(o, v[i], strlen(v[i]));
}

void gout_kv_arr_i32(gguf_out *o, const char *k, const int32_t *v, size_t n) {
    key(o, k, GGUF_ARRAY);
    gout_u32(o, GGUF_INT32);
    gout_u64(o, n);
    for (size_t i = 0; i < n; i++) gout_u32(o, (uint32_t)v[i]);
}

void gout_kv_arr_f32(gguf_out *o, const char *k, const float *v, size_t n) {
    key(o, k, GGUF_ARRAY);
    gout_u32(o, GGUF_FLOAT32);
    gout_u64(o, n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        gout_u32(o, u);
    }
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

void gout_kv_copy(gguf_out *o, const gguf_kv *kv) {
    gout_str(o, kv->key.ptr, kv->key.len);
    gout_u32(o, kv->type);
    o->n_kv++;
    if (kv->type == GGUF_STRING) {
        uint64_t n;
        memcpy(&n, kv->val, 8);
        gout_put(o, kv->val, (size_t)(8 + n));
    } else if (kv->type == GGUF_ARRAY) {
        gout_u32(o, kv->arr_type);
        gout_u64(o, kv->arr_n);
        if (kv->arr_type == GGUF_STRING) {
            const uint8_t *p = kv->val;
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                uint64_t n;
                memcpy(&n, p, 8);
                gout_put(o, p, (size_t)(8 + n));
                p += 8 + n;
            }
        } else {
            gout_put(o, kv->val, (size_t)(scalar_size(kv->arr_type) * kv->arr_n));
        }
    } else {
        gout_put(o, kv->val, scalar_size(kv->type));
    }
}

void gout_tensor_info(gguf_out *o, const char *name, size_t name_len, uint32_t n_dims, const uint64_t *ne,
                      uint32_t type, uint64_t offset) {
    gout_str(o, name, name_len);
    gout_u32(o, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gout_u64(o, ne[d]);
    gout_u32(o, type);
    gout_u64(o, offset);
}

void gout_abort(gguf_out *o) {
    if (o->f) fclose(o->f);
    o->f = NULL;
    if (o->tmp[0]) unlink(o->tmp);
    o->tmp[0] = 0;
}

int gout_commit(gguf_out *o, const char *prog) {
    if (!o->f) return 0;
    if (!o->err && fflush(o->f) != 0) o->err = errno;
    if (!o->err && fsync(fileno(o->f)) != 0 && errno != EINVAL) o->err = errno;
    if (fclose(o->f) != 0 && !o->err) o->err = errno;
    o->f = NULL;
    if (o->err) {
        fprintf(stderr, "%s: writing '%s' failed: %s\n", prog, o->tmp, strerror(o->err));
        gout_abort(o);
        return -1;
    }
    gguf_file chk;
    char err[256];
    if (gguf_open_file(&chk, o->tmp, err, sizeof err) != 0) {
        fprintf(stderr, "%s: the written file does not read back: %s\n", prog, err);
        gout_abort(o);
        return -1;
    }
    gguf_close(&chk);
    if (rename(o->tmp, o->path) != 0) {
        fprintf(stderr, "%s: cannot rename '%s' to '%s': %s\n", prog, o->tmp, o->path, strerror(errno));
        gout_abort(o);
        return -1;
    }
    o->tmp[0] = 0;
    return 0;
}
