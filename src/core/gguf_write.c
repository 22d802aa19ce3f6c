/* gguf_write.c — builds GGUF v3 files: keys and tensors are appended in order, then serialised.
 *
 * Layout written (all integers little-endian, whatever the host):
 *   "GGUF" | u32 version=3 | u64 n_tensors | u64 n_kv
 *   n_kv x  (string key | u32 value type | value)           string = u64 length + bytes
 *   n_tensors x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset)
 *   zero padding to the alignment | tensor data, each tensor starting at a multiple of the
 *   alignment from the data start and followed by zero padding to the alignment.
 *
 * The key/value section is serialised as keys are added (so the writer holds it as bytes); tensor
 * data is copied. This is a writer, not a validator: it does not check that a tensor's byte count
 * matches its type and shape, nor that keys are unique, because the hostile-file corpus needs to
 * write files that are wrong on purpose. Not an editor, not a reader.
 */
#include "gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GGUF value type ids (the same numbers as enum gguf_vtype in gguf.h; repeated here so that the
 * writer does not depend on the reader). */
enum {
    GW_UINT32 = 4, GW_INT32 = 5, GW_FLOAT32 = 6, GW_BOOL = 7, GW_STRING = 8, GW_ARRAY = 9,
    GW_UINT64 = 10
};

#define GW_DEFAULT_ALIGNMENT 32u

/* ---- growable byte buffer ------------------------------------------------------------------- */

typedef struct gw_buf {
    uint8_t *p;     /* [cap] */
    size_t len, cap;
} gw_buf;

static int buf_reserve(gw_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) return -1;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(gw_buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static int buf_u32(gw_buf *b, uint32_t v) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return buf_put(b, le, 4);
}

static int buf_u64(gw_buf *b, uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    return buf_put(b, le, 8);
}

static int buf_f32(gw_buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return buf_u32(b, u);
}

static int buf_str(gw_buf *b, const char *s, size_t len) {
    if (buf_u64(b, (uint64_t)len)) return -1;
    return buf_put(b, s, len);
}

/* ---- the writer ----------------------------------------------------------------------------- */

typedef struct gw_tensor {
    char *name;         /* [name_len], copied */
    size_t name_len;
    uint32_t n_dims;
    uint64_t *ne;       /* [n_dims] */
    uint32_t type;
    uint8_t *data;      /* [nbytes], copied */
    size_t nbytes;
} gw_tensor;

struct gguf_writer {
    uint32_t alignment;
    gw_buf kv;          /* serialised key/value pairs */
    uint64_t n_kv;
    gw_tensor *t;       /* [n_t] */
    size_t n_t, cap_t;
};

gguf_writer *gguf_writer_new(uint32_t alignment) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->alignment = alignment ? alignment : GW_DEFAULT_ALIGNMENT;
    /* Readers only learn a non-default alignment from this key, so it is written first. */
    if (w->alignment != GW_DEFAULT_ALIGNMENT && gguf_w_u32(w, "general.alignment", w->alignment)) {
        gguf_writer_free(w);
        return NULL;
    }
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].ne);
        free(w->t[i].data);
    }
    free(w->t);
    free(w->kv.p);
    free(w);
}

/* Appends key and type; on failure the kv buffer is rolled back by the caller via kv_end. */
static size_t kv_begin(gguf_writer *w, const char *key, uint32_t type, int *err) {
    size_t mark = w->kv.len;
    *err = buf_str(&w->kv, key, strlen(key)) || buf_u32(&w->kv, type);
    return mark;
}

static int kv_end(gguf_writer *w, size_t mark, int err) {
    if (err) {
        w->kv.len = mark; /* a half-written pair must never reach the file */
        return -1;
    }
    w->n_kv++;
    return 0;
}

int gguf_w_u32(gguf_writer *w, const char *key, uint32_t v) {
    int err;
    size_t m = kv_begin(w, key, GW_UINT32, &err);
    return kv_end(w, m, err || buf_u32(&w->kv, v));
}

int gguf_w_i32(gguf_writer *w, const char *key, int32_t v) {
    int err;
    size_t m = kv_begin(w, key, GW_INT32, &err);
    return kv_end(w, m, err || buf_u32(&w->kv, (uint32_t)v));
}

int gguf_w_u64(gguf_writer *w, const char *key, uint64_t v) {
    int err;
    size_t m = kv_begin(w, key, GW_UINT64, &err);
    return kv_end(w, m, err || buf_u64(&w->kv, v));
}

int gguf_w_f32(gguf_writer *w, const char *key, float v) {
    int err;
    size_t m = kv_begin(w, key, GW_FLOAT32, &err);
    return kv_end(w, m, err || buf_f32(&w->kv, v));
}

int gguf_w_bool(gguf_writer *w, const char *key, int v) {
    int err;
    size_t m = kv_begin(w, key, GW_BOOL, &err);
    uint8_t b = v ? 1 : 0;
    return kv_end(w, m, err || buf_put(&w->kv, &b, 1));
}

int gguf_w_str(gguf_writer *w, const char *key, const char *v) {
    return gguf_w_str_n(w, key, v, strlen(v));
}

int gguf_w_str_n(gguf_writer *w, const char *key, const char *v, size_t len) {
    int err;
    size_t m = kv_begin(w, key, GW_STRING, &err);
    return kv_end(w, m, err || buf_str(&w->kv, v, len));
}

/* Array header: element type and count. */
static int arr_head(gw_buf *b, uint32_t elem_type, size_t n) {
    return buf_u32(b, elem_type) || buf_u64(b, (uint64_t)n);
}

int gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *v, const size_t *lens,
                   size_t n) {
    int err;
    size_t m = kv_begin(w, key, GW_ARRAY, &err);
    err = err || arr_head(&w->kv, GW_STRING, n);
    for (size_t i = 0; i < n && !err; i++) err = buf_str(&w->kv, v[i], lens[i]);
    return kv_end(w, m, err);
}

int gguf_w_arr_i32(gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    int err;
    size_t m = kv_begin(w, key, GW_ARRAY, &err);
    err = err || arr_head(&w->kv, GW_INT32, n);
    if (!err && n > SIZE_MAX / 4) err = 1;
    err = err || buf_reserve(&w->kv, n * 4);
    for (size_t i = 0; i < n && !err; i++) err = buf_u32(&w->kv, (uint32_t)v[i]);
    return kv_end(w, m, err);
}

int gguf_w_arr_f32(gguf_writer *w, const char *key, const float *v, size_t n) {
    int err;
    size_t m = kv_begin(w, key, GW_ARRAY, &err);
    err = err || arr_head(&w->kv, GW_FLOAT32, n);
    if (!err && n > SIZE_MAX / 4) err = 1;
    err = err || buf_reserve(&w->kv, n * 4);
    for (size_t i = 0; i < n && !err; i++) err = buf_f32(&w->kv, v[i]);
    return kv_end(w, m, err);
}

int gguf_w_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                  const uint64_t *ne, const void *data, size_t nbytes) {
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        if (cap > SIZE_MAX / sizeof(gw_tensor)) return -1;
        gw_tensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return -1;
        w->t = t;
        w->cap_t = cap;
    }
    gw_tensor t = {0};
    t.name_len = strlen(name);
    t.name = malloc(t.name_len + 1);
    t.ne = malloc((n_dims ? n_dims : 1) * sizeof(uint64_t));
    t.data = malloc(nbytes ? nbytes : 1);
    if (!t.name || !t.ne || !t.data) {
        free(t.name);
        free(t.ne);
        free(t.data);
        return -1;
    }
    memcpy(t.name, name, t.name_len + 1);
    if (n_dims) memcpy(t.ne, ne, n_dims * sizeof(uint64_t));
    if (nbytes) memcpy(t.data, data, nbytes);
    t.n_dims = n_dims;
    t.type = type;
    t.nbytes = nbytes;
    w->t[w->n_t++] = t;
    return 0;
}

/* ---- serialisation -------------------------------------------------------------------------- */

/* Bytes of zero padding that bring pos up to a multiple of a. */
static uint64_t pad_to(uint64_t pos, uint32_t a) { return (a - pos % a) % a; }

/* Header and tensor-info section (everything before the padding that precedes the data). The
 * offsets follow the rule in the file comment; *data_size gets the padded size of the data. */
static int build_meta(const gguf_writer *w, gw_buf *meta, uint64_t *data_size) {
    int err = buf_put(meta, "GGUF", 4) || buf_u32(meta, 3) || buf_u64(meta, (uint64_t)w->n_t) ||
              buf_u64(meta, w->n_kv) || buf_put(meta, w->kv.p, w->kv.len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t && !err; i++) {
        const gw_tensor *t = &w->t[i];
        err = buf_str(meta, t->name, t->name_len) || buf_u32(meta, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && !err; d++) err = buf_u64(meta, t->ne[d]);
        err = err || buf_u32(meta, t->type) || buf_u64(meta, off);
        off += t->nbytes;
        off += pad_to(off, w->alignment);
    }
    *data_size = off;
    return err ? -1 : 0;
}

/* Sink: either a memory buffer of known size or a FILE. */
typedef struct gw_sink {
    uint8_t *mem;
    size_t pos;
    FILE *f;
} gw_sink;

static int sink_put(gw_sink *s, const void *p, size_t n) {
    if (n == 0) return 0;
    if (s->f) return fwrite(p, 1, n, s->f) == n ? 0 : -1;
    memcpy(s->mem + s->pos, p, n);
    s->pos += n;
    return 0;
}

static int sink_zeros(gw_sink *s, uint64_t n) {
    static const uint8_t zero[64];
    while (n > 0) {
        size_t k = n < sizeof zero ? (size_t)n : sizeof zero;
        if (sink_put(s, zero, k)) return -1;
        n -= k;
    }
    return 0;
}

static int emit(const gguf_writer *w, const gw_buf *meta, gw_sink *s) {
    if (sink_put(s, meta->p, meta->len) || sink_zeros(s, pad_to(meta->len, w->alignment)))
        return -1;
    for (size_t i = 0; i < w->n_t; i++) {
        const gw_tensor *t = &w->t[i];
        if (sink_put(s, t->data, t->nbytes) || sink_zeros(s, pad_to(t->nbytes, w->alignment)))
            return -1;
    }
    return 0;
}

int gguf_writer_bytes(gguf_writer *w, uint8_t **out, size_t *len) {
    gw_buf meta = {0};
    uint64_t data_size, total;
    if (build_meta(w, &meta, &data_size)) goto fail;
    total = meta.len + pad_to(meta.len, w->alignment);
    if (data_size > SIZE_MAX - total) goto fail;
    total += data_size;
    gw_sink s = {.mem = malloc(total ? total : 1)};
    if (!s.mem) goto fail;
    emit(w, &meta, &s); /* cannot fail in memory */
    free(meta.p);
    *out = s.mem;
    *len = (size_t)total;
    return 0;
fail:
    free(meta.p);
    return -1;
}

int gguf_writer_save(gguf_writer *w, const char *path) {
    gw_buf meta = {0};
    uint64_t data_size;
    if (build_meta(w, &meta, &data_size)) {
        free(meta.p);
        errno = ENOMEM;
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(meta.p);
        return -1;
    }
    gw_sink s = {.f = f};
    int rc = emit(w, &meta, &s);
    int saved = errno;
    free(meta.p);
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc) {
        remove(path); /* never leave a truncated model behind */
        errno = saved ? saved : EIO;
    }
    return rc;
}
