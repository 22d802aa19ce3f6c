/* safetensors.c — the hostile-file safetensors reader (see safetensors.h). */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant.h"

#define ST_MAX_HEADER (100u << 20) /* the format's own limit on the JSON header */

static const struct { const char *name; int dtype, size; } DTYPES[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8}, {"I64", ST_I64, 8},
    {"I32", ST_I32, 4}, {"I16", ST_I16, 2},  {"I8", ST_I8, 1},     {"U8", ST_U8, 1},   {"BOOL", ST_BOOL, 1},
};

int st_dtype_size(int dtype) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
        if (DTYPES[i].dtype == dtype) return DTYPES[i].size;
    return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A JSON number that is an exact integer in [0, 2^53]. */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    const double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

typedef struct range { uint64_t begin, end; } range;
static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int parse(st_file *f, char *err, size_t errlen) {
    if (f->size < 8) return fail(err, errlen, "file of %zu bytes: too short for a safetensors header", f->size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)f->map[i] << (8 * i);
    if (hlen > ST_MAX_HEADER || hlen > f->size - 8)
        return fail(err, errlen, "header size %llu does not fit the file (%zu bytes)", (unsigned long long)hlen, f->size);
    const char *hdr = (const char *)f->map + 8;
    const uint64_t data_size = f->size - 8 - hlen;
    const uint8_t *data = f->map + 8 + hlen;
    cJSON *j = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail(err, errlen, "the header is not a JSON object");
    }
    const int n = cJSON_GetArraySize(j);
    f->t = calloc(n > 0 ? (size_t)n : 1, sizeof *f->t);
    range *rg = calloc(n > 0 ? (size_t)n : 1, sizeof *rg);
    int rc = 0;
    if (!f->t || !rg) { rc = fail(err, errlen, "out of memory"); goto done; }
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (!e->string) { rc = fail(err, errlen, "a header entry without a name"); goto done; }
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) { rc = fail(err, errlen, "__metadata__ is not an object"); goto done; }
            continue;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
            cJSON_GetArraySize(off) != 2) {
            rc = fail(err, errlen, "tensor '%.200s': needs dtype, shape and two data_offsets", e->string);
            goto done;
        }
        st_tensor *t = &f->t[f->n];
        t->dtype = ST_OTHER;
        t->dtype_name = "?";
        int size = 0;
        for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
            if (strcmp(dt->valuestring, DTYPES[i].name) == 0)
                t->dtype = DTYPES[i].dtype, t->dtype_name = DTYPES[i].name, size = DTYPES[i].size;
        if (!size) { rc = fail(err, errlen, "tensor '%.200s': unknown dtype '%.40s'", e->string, dt->valuestring); goto done; }
        t->n_dims = cJSON_GetArraySize(sh);
        if (t->n_dims > ST_MAX_DIMS) {
            rc = fail(err, errlen, "tensor '%.200s': %d dimensions (at most %d)", e->string, t->n_dims, ST_MAX_DIMS);
            goto done;
        }
        uint64_t elems = 1;
        for (int d = 0; d < t->n_dims; d++) {
            if (json_u64(cJSON_GetArrayItem(sh, d), &t->shape[d]) != 0 ||
                (t->shape[d] && elems > UINT64_MAX / 16 / t->shape[d])) {
                rc = fail(err, errlen, "tensor '%.200s': bad shape", e->string);
                goto done;
            }
            elems *= t->shape[d];
        }
        uint64_t b, en;
        if (json_u64(cJSON_GetArrayItem(off, 0), &b) != 0 || json_u64(cJSON_GetArrayItem(off, 1), &en) != 0 || b > en ||
            en > data_size) {
            rc = fail(err, errlen, "tensor '%.200s': data_offsets outside the file's %llu bytes of data", e->string,
                      (unsigned long long)data_size);
            goto done;
        }
        if (en - b != elems * (uint64_t)size) {
            rc = fail(err, errlen, "tensor '%.200s': %llu bytes for %llu elements of %s", e->string,
                      (unsigned long long)(en - b), (unsigned long long)elems, dt->valuestring);
            goto done;
        }
        for (size_t k = 0; k < f->n; k++)
            if (strcmp(f->t[k].name, e->string) == 0) {
                rc = fail(err, errlen, "tensor '%.200s' named twice", e->string);
                goto done;
            }
        t->name = strdup(e->string);
        if (!t->name) { rc = fail(err, errlen, "out of memory"); goto done; }
        t->n_elems = elems;
        t->data = data + b;
        t->nbytes = en - b;
        rg[f->n] = (range){b, en};
        f->n++;
    }
    qsort(rg, f->n, sizeof *rg, cmp_range);
    for (size_t k = 1; k < f->n; k++)
        if (rg[k].begin < rg[k - 1].end) { rc = fail(err, errlen, "tensors overlap in the data"); goto done; }
done:
    free(rg);
    cJSON_Delete(j);
    return rc;
}

int st_open_memory(st_file *f, const uint8_t *data, size_t size, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    f->map = (uint8_t *)data;
    f->size = size;
    if (parse(f, err, errlen) != 0) {
        for (size_t k = 0; k < f->n; k++) free(f->t[k].name);
        free(f->t);
        memset(f, 0, sizeof *f);
        return -1;
    }
    return 0;
}

int st_open(st_file *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    const int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(err, errlen, "cannot open: %s", strerror(errno));
    struct stat s;
    if (fstat(fd, &s) != 0 || !S_ISREG(s.st_mode)) {
        close(fd);
        return fail(err, errlen, "not a regular file");
    }
    if (s.st_size < 8) {
        close(fd);
        return fail(err, errlen, "file of %lld bytes: too short for a safetensors header", (long long)s.st_size);
    }
    void *m = mmap(NULL, (size_t)s.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return fail(err, errlen, "cannot map: %s", strerror(errno));
    if (st_open_memory(f, m, (size_t)s.st_size, err, errlen) != 0) {
        munmap(m, (size_t)s.st_size);
        return -1;
    }
    f->mapped = 1;
    return 0;
}

void st_close(st_file *f) {
    for (size_t k = 0; k < f->n; k++) free(f->t[k].name);
    free(f->t);
    if (f->mapped) munmap(f->map, f->size);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (size_t k = 0; k < f->n; k++)
        if (strcmp(f->t[k].name, name) == 0) return &f->t[k];
    return NULL;
}

float st_get_f32(const st_tensor *t, uint64_t i) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32: {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    case ST_F16: return ob_fp16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    case ST_BF16: return ob_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    default: return NAN;
    }
}
