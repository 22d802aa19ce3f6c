/* gguf.c — GGUF v2/v3 reader. The file is hostile input.
 *
 * Parsing walks a cursor over [base, base+avail) and checks every read against the remaining length;
 * counts are bounded by what the file could possibly hold before anything is allocated, and every
 * tensor's extent is checked (with overflow-safe arithmetic) against the full file size. This module
 * knows the container only: architectures and tensor roles are model.c's business.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* ---- type table ------------------------------------------------------------------------------ */

static const gguf_type_info type_table[GGML_TYPE_COUNT] = {
    [GGML_F32] = {"f32", 1, 4},       [GGML_F16] = {"f16", 1, 2},
    [GGML_Q4_0] = {"q4_0", 32, 18},   [GGML_Q4_1] = {"q4_1", 32, 20},
    [GGML_Q5_0] = {"q5_0", 32, 22},   [GGML_Q5_1] = {"q5_1", 32, 24},
    [GGML_Q8_0] = {"q8_0", 32, 34},   [GGML_Q8_1] = {"q8_1", 32, 36},
    [GGML_Q2_K] = {"q2_k", 256, 84},  [GGML_Q3_K] = {"q3_k", 256, 110},
    [GGML_Q4_K] = {"q4_k", 256, 144}, [GGML_Q5_K] = {"q5_k", 256, 176},
    [GGML_Q6_K] = {"q6_k", 256, 210}, [GGML_Q8_K] = {"q8_k", 256, 292},
    [GGML_I8] = {"i8", 1, 1},         [GGML_I16] = {"i16", 1, 2},
    [GGML_I32] = {"i32", 1, 4},       [GGML_I64] = {"i64", 1, 8},
    [GGML_F64] = {"f64", 1, 8},       [GGML_BF16] = {"bf16", 1, 2},
    [GGML_TQ1_0] = {"tq1_0", 256, 54}, [GGML_TQ2_0] = {"tq2_0", 256, 66},
    [GGML_Q1_0] = {"q1_0", 128, 18},  [GGML_Q2_0] = {"q2_0", 64, 18},
};

const gguf_type_info *gguf_type(uint32_t type) {
    if (type >= GGML_TYPE_COUNT || type_table[type].name == NULL) return NULL;
    return &type_table[type];
}

static const uint8_t vtype_size[GGUF_VTYPE_COUNT] = {
    [GGUF_UINT8] = 1, [GGUF_INT8] = 1,    [GGUF_UINT16] = 2, [GGUF_INT16] = 2,
    [GGUF_UINT32] = 4, [GGUF_INT32] = 4,  [GGUF_FLOAT32] = 4, [GGUF_BOOL] = 1,
    [GGUF_UINT64] = 8, [GGUF_INT64] = 8,  [GGUF_FLOAT64] = 8,
    /* STRING and ARRAY have variable size */
};

const char *gguf_vtype_name(uint32_t t) {
    static const char *names[GGUF_VTYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                   "bool", "str", "arr", "u64", "i64", "f64"};
    return t < GGUF_VTYPE_COUNT ? names[t] : "?";
}

/* ---- cursor ---------------------------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    uint64_t left;      /* readable bytes from p */
    char *err;
    size_t errlen;
    int failed;
} cursor;

static int cfail(cursor *c, const char *fmt, ...) {
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return -1;
}

static int take(cursor *c, void *dst, uint64_t n, const char *what) {
    if (c->failed) return -1;
    if (n > c->left) return cfail(c, "truncated file: %s runs past the end", what);
    memcpy(dst, c->p, (size_t)n);
    c->p += n;
    c->left -= n;
    return 0;
}

static int skip(cursor *c, uint64_t n, const char *what) {
    if (c->failed) return -1;
    if (n > c->left) return cfail(c, "truncated file: %s runs past the end", what);
    c->p += n;
    c->left -= n;
    return 0;
}

static uint32_t rd_u32(cursor *c, const char *what) {
    uint32_t v = 0;
    take(c, &v, 4, what);
    return v;
}
static uint64_t rd_u64(cursor *c, const char *what) {
    uint64_t v = 0;
    take(c, &v, 8, what);
    return v;
}

/* v2/v3 strings: u64 length then bytes. Validates only the extent, not the encoding. */
static gguf_str rd_str(cursor *c, const char *what) {
    gguf_str s = {"", 0};
    uint64_t n = rd_u64(c, what);
    if (c->failed) return s;
    if (n > c->left) {
        cfail(c, "truncated file: %s (length %llu) runs past the end", what, (unsigned long long)n);
        return s;
    }
    s.ptr = (const char *)c->p;
    s.len = n;
    c->p += n;
    c->left -= n;
    return s;
}

/* Skips over a value of type t (not an array). */
static int skip_scalar(cursor *c, uint32_t t, const char *what) {
    if (t == GGUF_STRING) {
        rd_str(c, what);
        return c->failed ? -1 : 0;
    }
    if (t >= GGUF_VTYPE_COUNT || t == GGUF_ARRAY) return cfail(c, "bad value type %u in %s", t, what);
    return skip(c, vtype_size[t], what);
}

/* Real models have tens of keys and hundreds of tensors; this bounds the work a file can demand. */
#define GGUF_MAX_COUNT 1000000u

static int cmp_str(const void *a, const void *b) {
    const gguf_str *x = *(const gguf_str *const *)a, *y = *(const gguf_str *const *)b;
    size_t n = x->len < y->len ? (size_t)x->len : (size_t)y->len;
    int r = n ? memcmp(x->ptr, y->ptr, n) : 0;
    return r ? r : (x->len < y->len ? -1 : x->len > y->len);
}

/* Finds a repeated name among n records of size rec whose gguf_str sits at byte offset off.
 * Sets *dup to one of them, or NULL. -1 on out of memory. O(n log n). */
static int has_duplicate(const void *recs, uint64_t n, size_t rec, size_t off, const gguf_str **dup) {
    *dup = NULL;
    if (n < 2) return 0;
    const gguf_str **v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    for (uint64_t i = 0; i < n; i++) v[i] = (const gguf_str *)((const char *)recs + i * rec + off);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    for (uint64_t i = 1; i < n && !*dup; i++)
        if (cmp_str(&v[i - 1], &v[i]) == 0) *dup = v[i];
    free(v);
    return 0;
}

static int cmp_offset(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- parse ----------------------------------------------------------------------------------- */

int gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

static int parse(gguf_file *g, char *err, size_t errlen) {
    cursor c = {g->base, g->avail, err, errlen, 0};
    char magic[4] = {0};
    if (take(&c, magic, 4, "magic") < 0) return -1;
    if (memcmp(magic, "GGUF", 4) != 0) return cfail(&c, "not a GGUF file (bad magic)");
    g->version = rd_u32(&c, "version");
    if (c.failed) return -1;
    /* Messages of legitimate files we do not read start with "unsupported" (see api.c). A
     * big-endian file shows its version byte-swapped. */
    if (g->version == 0) return cfail(&c, "not a GGUF file (version 0)");
    if (g->version >= 0x01000000u && (g->version & 0xffffu) == 0 && (g->version >> 24) <= 3)
        return cfail(&c, "unsupported big-endian GGUF file (onebit reads little-endian files)");
    /* Versions 1 and a few beyond 3 are real formats we do not read; anything larger is damage. */
    if (g->version > 255) return cfail(&c, "not a valid GGUF file (version field %u)", g->version);
    if (g->version != 2 && g->version != 3)
        return cfail(&c, "unsupported GGUF version %u (onebit reads 2 and 3)", g->version);
    g->n_tensors = rd_u64(&c, "tensor count");
    g->n_kv = rd_u64(&c, "metadata count");
    if (c.failed) return -1;
    /* Each kv needs at least 8+4+1 bytes and each tensor 8+4+8+4+8: bound counts by the file. */
    if (g->n_kv > c.left / 13) return cfail(&c, "metadata count %llu is impossible for the file size (truncated or corrupt file)",
                                            (unsigned long long)g->n_kv);
    if (g->n_tensors > c.left / 32) return cfail(&c, "tensor count %llu is impossible for the file size (truncated or corrupt file)",
                                                 (unsigned long long)g->n_tensors);
    if (g->n_kv > GGUF_MAX_COUNT || g->n_tensors > GGUF_MAX_COUNT)
        return cfail(&c, "too many metadata entries or tensors (limit %u)", GGUF_MAX_COUNT);
    const gguf_str *dup = NULL;
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return cfail(&c, "out of memory reading the header");

    g->alignment = 32;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        kv->key = rd_str(&c, "metadata key");
        kv->type = rd_u32(&c, "metadata type");
        if (c.failed) return -1;
        if (kv->type >= GGUF_VTYPE_COUNT)
            return cfail(&c, "metadata '%.*s' has unknown type %u", (int)(kv->key.len > 64 ? 64 : kv->key.len),
                         kv->key.ptr, kv->type);
        if (kv->type == GGUF_ARRAY) {
            kv->arr_type = rd_u32(&c, "array type");
            kv->arr_n = rd_u64(&c, "array length");
            if (c.failed) return -1;
            if (kv->arr_type >= GGUF_VTYPE_COUNT || kv->arr_type == GGUF_ARRAY)
                return cfail(&c, "metadata '%.*s': bad array element type %u",
                             (int)(kv->key.len > 64 ? 64 : kv->key.len), kv->key.ptr, kv->arr_type);
            kv->val = c.p;
            if (kv->arr_type == GGUF_STRING) {
                if (kv->arr_n > c.left / 8)
                    return cfail(&c, "truncated file: metadata '%.*s': array length %llu runs past the end",
                                 (int)(kv->key.len > 64 ? 64 : kv->key.len), kv->key.ptr,
                                 (unsigned long long)kv->arr_n);
                for (uint64_t j = 0; j < kv->arr_n && !c.failed; j++) rd_str(&c, "array string");
            } else {
                uint64_t bytes;
                if (ob_mul_u64(kv->arr_n, vtype_size[kv->arr_type], &bytes) < 0)
                    return cfail(&c, "metadata array length overflows");
                skip(&c, bytes, "metadata array");
            }
        } else {
            kv->val = c.p;
            skip_scalar(&c, kv->type, "metadata value");
        }
        if (c.failed) return -1;
    }
    if (has_duplicate(g->kv, g->n_kv, sizeof *g->kv, offsetof(gguf_kv, key), &dup) < 0)
        return cfail(&c, "out of memory");
    if (dup) return cfail(&c, "duplicate metadata key '%.*s'", (int)(dup->len > 64 ? 64 : dup->len), dup->ptr);
    const gguf_kv *al = gguf_find(g, "general.alignment");
    if (al) {
        uint32_t a;
        if (gguf_get_u32(g, "general.alignment", &a) < 0 || a == 0 || (a & (a - 1)) != 0 || a > 65536)
            return cfail(&c, "general.alignment must be a power of two up to 65536");
        g->alignment = a;
    }

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        t->name = rd_str(&c, "tensor name");
        t->n_dims = rd_u32(&c, "tensor dims");
        if (c.failed) return -1;
        int nl = (int)(t->name.len > 64 ? 64 : t->name.len);
        if (t->name.len == 0) return cfail(&c, "tensor %llu has an empty name", (unsigned long long)i);
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
            return cfail(&c, "tensor '%.*s' has %u dimensions (1..4 allowed)", nl, t->name.ptr, t->n_dims);
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            t->ne[d] = rd_u64(&c, "tensor shape");
            if (c.failed) return -1;
            if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40) || ob_mul_u64(nel, t->ne[d], &nel) < 0 ||
                nel > ((uint64_t)1 << 44))
                return cfail(&c, "tensor '%.*s' has an impossible shape", nl, t->name.ptr);
        }
        t->type = rd_u32(&c, "tensor type");
        uint64_t rel = rd_u64(&c, "tensor offset");
        if (c.failed) return -1;
        const gguf_type_info *ti = gguf_type(t->type);
        /* An id inside ggml's range is a real format we cannot size (IQ*, TQ*, MXFP4...). */
        if (!ti && t->type < GGML_TYPE_COUNT)
            return cfail(&c, "unsupported tensor type %u of '%.*s' (a ggml type onebit cannot read)", t->type, nl,
                         t->name.ptr);
        /* PrismML's llama.cpp fork numbers its own formats above ggml's: named, so that a user
         * of such a file learns why (upstream's Q2_0 is the ternary format onebit runs). */
        if (t->type == GGUF_PRISM_PQ2_0 || t->type == GGUF_PRISM_PTQ1_0)
            return cfail(&c, "unsupported tensor type %s (%u) of '%.*s': a type of PrismML's llama.cpp fork, not of "
                         "ggml (onebit reads upstream Q2_0 and TQ1_0)", t->type == GGUF_PRISM_PQ2_0 ? "PQ2_0" : "PTQ1_0",
                         t->type, nl, t->name.ptr);
        if (!ti) return cfail(&c, "tensor '%.*s' has unknown type %u", nl, t->name.ptr, t->type);
        if (t->ne[0] % ti->blck != 0)
            return cfail(&c, "tensor '%.*s': row length %llu is not a multiple of the %s block size %u", nl,
                         t->name.ptr, (unsigned long long)t->ne[0], ti->name, ti->blck);
        t->nbytes = nel / ti->blck * ti->size;
        if (rel % g->alignment != 0)
            return cfail(&c, "tensor '%.*s' offset is not aligned to %u", nl, t->name.ptr, g->alignment);
        t->offset = rel; /* made absolute below, once the data section is known */
    }
    if (has_duplicate(g->tensors, g->n_tensors, sizeof *g->tensors, offsetof(gguf_tensor, name), &dup) < 0)
        return cfail(&c, "out of memory");
    if (dup) return cfail(&c, "duplicate tensor name '%.*s'", (int)(dup->len > 64 ? 64 : dup->len), dup->ptr);
    uint64_t hdr = (uint64_t)(c.p - g->base);
    uint64_t data_off = (hdr + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0 && data_off > g->size) return cfail(&c, "truncated file: no tensor data section");
    g->data_offset = data_off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        uint64_t abs, end;
        int nl = (int)(t->name.len > 64 ? 64 : t->name.len);
        if (ob_add_u64(data_off, t->offset, &abs) < 0 || ob_add_u64(abs, t->nbytes, &end) < 0 || end > g->size)
            return cfail(&c, "truncated file: tensor '%.*s' data (%llu bytes at %llu) runs past the end of the file (%llu bytes)",
                         nl, t->name.ptr, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                         (unsigned long long)g->size);
        t->offset = abs;
        t->data = end <= g->avail ? g->base + abs : NULL;
    }
    /* Overlapping tensors would let one weight alias another: reject them (O(n log n) via sort). */
    if (g->n_tensors > 1) {
        uint64_t n = g->n_tensors;
        uint64_t *iv = malloc(n * 2 * sizeof *iv);
        if (!iv) return cfail(&c, "out of memory");
        for (uint64_t i = 0; i < n; i++) { iv[2 * i] = g->tensors[i].offset; iv[2 * i + 1] = g->tensors[i].nbytes; }
        qsort(iv, (size_t)n, 2 * sizeof *iv, cmp_offset);
        for (uint64_t i = 1; i < n; i++)
            if (iv[2 * i] < iv[2 * (i - 1)] + iv[2 * (i - 1) + 1]) {
                free(iv);
                return cfail(&c, "tensor data regions overlap");
            }
        free(iv);
    }
    return 0;
}

/* ---- open / close ---------------------------------------------------------------------------- */

static int open_common(gguf_file *g, char *err, size_t errlen) {
    if (parse(g, err, errlen) < 0) {
        gguf_close(g);
        return -1;
    }
    return 0;
}

int gguf_open_memory(gguf_file *g, const void *data, uint64_t avail, uint64_t file_size, char *err,
                     size_t errlen) {
    memset(g, 0, sizeof *g);
    if (!data || avail > file_size) {
        snprintf(err, errlen, "invalid buffer");
        return -1;
    }
    g->base = data;
    g->avail = avail;
    g->size = file_size;
    return open_common(g, err, errlen);
}

int gguf_open_file(gguf_file *g, const char *path, char *err, size_t errlen) {
    memset(g, 0, sizeof *g);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "'%s' is not a regular file", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) { /* 32-bit hosts: the mapping could not cover the file */
        snprintf(err, errlen, "cannot map '%s': too large for this machine's address space", path);
        close(fd);
        return -1;
    }
    if (st.st_size < 8) {
        snprintf(err, errlen, "'%s' is too small to be a GGUF file (%lld bytes)", path, (long long)st.st_size);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map '%s': %s", path, strerror(errno));
        return -1;
    }
    g->base = p;
    g->size = g->avail = (uint64_t)st.st_size;
    g->mapped = 1;
    return open_common(g, err, errlen);
}

void gguf_close(gguf_file *g) {
    if (!g) return;
    if (g->mapped && g->base) munmap((void *)g->base, (size_t)g->size);
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

/* ---- lookups --------------------------------------------------------------------------------- */

const gguf_kv *gguf_find(const gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (gguf_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (gguf_str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* Reads an integer value of any width as int64 (u64 above INT64_MAX fails). 0, or -2. */
static int int_value(uint32_t type, const uint8_t *p, int64_t *out) {
    switch (type) {
    case GGUF_UINT8: { uint8_t v; memcpy(&v, p, 1); *out = v; return 0; }
    case GGUF_INT8: { int8_t v; memcpy(&v, p, 1); *out = v; return 0; }
    case GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case GGUF_INT16: { int16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case GGUF_INT32: { int32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); if (v > INT64_MAX) return -2; *out = (int64_t)v; return 0; }
    case GGUF_INT64: { int64_t v; memcpy(&v, p, 8); *out = v; return 0; }
    default: return -2;
    }
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    int64_t v;
    if (int_value(kv->type, kv->val, &v) < 0 || v < 0 || v > UINT32_MAX) return -2;
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_f32(const gguf_file *g, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    if (kv->type == GGUF_FLOAT32) { memcpy(out, kv->val, 4); return 0; }
    if (kv->type == GGUF_FLOAT64) { double d; memcpy(&d, kv->val, 8); *out = (float)d; return 0; }
    return -2;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_BOOL) return -2;
    *out = kv->val[0] != 0;
    return 0;
}

int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_STRING) return -2;
    uint64_t n;
    memcpy(&n, kv->val, 8);   /* extent validated by parse() */
    out->ptr = (const char *)kv->val + 8;
    out->len = n;
    return 0;
}

int gguf_get_str_array(const gguf_kv *kv, gguf_str *out) {
    if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING) return -2;
    const uint8_t *p = kv->val;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        uint64_t n;
        memcpy(&n, p, 8);
        out[i].ptr = (const char *)p + 8;
        out[i].len = n;
        p += 8 + n;
    }
    return 0;
}

int gguf_get_i32_array(const gguf_kv *kv, int32_t *out) {
    if (kv->type != GGUF_ARRAY || kv->arr_type == GGUF_STRING || kv->arr_type == GGUF_FLOAT32 ||
        kv->arr_type == GGUF_FLOAT64 || kv->arr_type == GGUF_BOOL)
        return -2;
    size_t w = vtype_size[kv->arr_type];
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        int64_t v;
        if (int_value(kv->arr_type, kv->val + i * w, &v) < 0 || v < INT32_MIN || v > INT32_MAX) return -2;
        out[i] = (int32_t)v;
    }
    return 0;
}
