/* test_gguf_write.c — the GGUF writer round-trips through the reader.
 *
 * Writes every value type the writer offers and tensors of several types and shapes, reads the
 * bytes back with gguf.c and checks each key, value, dimension, offset and data byte; checks the
 * exact layout rules (header bytes, data alignment, padding) on the raw bytes; checks that a
 * non-default alignment is recorded and honoured, and that file and memory output are identical.
 * Not a test of the reader's hostile-input checks (see test_gguf.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_write.h"

static int failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_u64(const uint8_t *p) {
    return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}

/* Tensors written by build(): names, shapes, types and deterministic contents. */
#define N_TENSORS 4
static const char *t_name[N_TENSORS] = {"a.f32", "b.q1_0", "c.odd_size", "d.4d"};
static const uint32_t t_type[N_TENSORS] = {GGML_F32, GGML_Q1_0, GGML_I8, GGML_F16};
static const uint32_t t_ndims[N_TENSORS] = {1, 2, 1, 4};
static const uint64_t t_ne[N_TENSORS][4] = {{5, 1, 1, 1}, {256, 3, 1, 1}, {7, 1, 1, 1},
                                            {2, 3, 2, 2}};
static size_t t_bytes(int i) {
    switch (i) {
    case 0: return 5 * 4;
    case 1: return 2 * 3 * 18;
    case 2: return 7;
    default: return 24 * 2;
    }
}
static uint8_t t_byte(int i, size_t j) { return (uint8_t)(j * 31 + (size_t)i * 7 + 1); }

static const char *strs[3] = {"alpha", "", "g\xc3\xa9n\xc3\xa9ral \"quoted\"\n"};
static const int32_t i32s[5] = {0, -1, 2147483647, -2147483647 - 1, 151645};
static const float f32s[3] = {1.5f, -0.0f, 1e-6f};

static gguf_writer *build(uint32_t alignment) {
    gguf_writer *w = gguf_writer_new(alignment);
    if (!w) return NULL;
    size_t lens[3];
    for (int i = 0; i < 3; i++) lens[i] = strlen(strs[i]);
    int rc = gguf_w_str(w, "general.architecture", "qwen3");
    rc |= gguf_w_u32(w, "k.u32", 4000000000u);
    rc |= gguf_w_i32(w, "k.i32", -123456);
    rc |= gguf_w_u64(w, "k.u64", 0x0123456789abcdefull);
    rc |= gguf_w_f32(w, "k.f32", 1e6f);
    rc |= gguf_w_bool(w, "k.true", 7);
    rc |= gguf_w_bool(w, "k.false", 0);
    rc |= gguf_w_str_n(w, "k.str_n", "abc\0def", 7);
    rc |= gguf_w_str(w, "k.empty", "");
    rc |= gguf_w_arr_str(w, "k.arr_str", strs, lens, 3);
    rc |= gguf_w_arr_i32(w, "k.arr_i32", i32s, 5);
    rc |= gguf_w_arr_f32(w, "k.arr_f32", f32s, 3);
    rc |= gguf_w_arr_i32(w, "k.arr_empty", NULL, 0);
    for (int i = 0; i < N_TENSORS; i++) {
        size_t n = t_bytes(i);
        uint8_t *d = malloc(n);
        for (size_t j = 0; j < n; j++) d[j] = t_byte(i, j);
        rc |= gguf_w_tensor(w, t_name[i], t_type[i], t_ndims[i], t_ne[i], d, n);
        free(d); /* the writer copies */
    }
    if (rc) {
        gguf_writer_free(w);
        return NULL;
    }
    return w;
}

static void check_file(const uint8_t *buf, size_t len, uint32_t alignment) {
    /* Raw header. */
    CHECK(len > 24 && memcmp(buf, "GGUF", 4) == 0);
    CHECK(rd_u32(buf + 4) == 3);
    CHECK(rd_u64(buf + 8) == N_TENSORS);
    uint64_t n_kv = 13 + (alignment != 32);
    CHECK(rd_u64(buf + 16) == n_kv);
    CHECK(len % alignment == 0);

    gguf_file g;
    char err[256] = "";
    int rc = gguf_open_memory(&g, buf, len, len, err, sizeof err);
    if (rc) printf("reader error: %s\n", err);
    CHECK(rc == 0);
    if (rc) return;
    CHECK(g.version == 3);
    CHECK(g.n_kv == n_kv);
    CHECK(g.n_tensors == N_TENSORS);
    CHECK(g.alignment == alignment);
    CHECK(g.data_offset % alignment == 0);

    uint32_t u;
    float f;
    int b;
    gguf_str s;
    CHECK(gguf_get_str(&g, "general.architecture", &s) == 0 && gguf_str_eq(s, "qwen3"));
    CHECK(gguf_get_u32(&g, "k.u32", &u) == 0 && u == 4000000000u);
    const gguf_kv *kv = gguf_find(&g, "k.i32");
    CHECK(kv && kv->type == GGUF_INT32 && (int32_t)rd_u32(kv->val) == -123456);
    kv = gguf_find(&g, "k.u64");
    CHECK(kv && kv->type == GGUF_UINT64 && rd_u64(kv->val) == 0x0123456789abcdefull);
    CHECK(gguf_get_f32(&g, "k.f32", &f) == 0 && f == 1e6f);
    kv = gguf_find(&g, "k.f32");
    CHECK(kv && kv->type == GGUF_FLOAT32);
    CHECK(gguf_get_bool(&g, "k.true", &b) == 0 && b == 1);
    kv = gguf_find(&g, "k.true");
    CHECK(kv && kv->type == GGUF_BOOL && kv->val[0] == 1); /* any non-zero is stored as 1 */
    CHECK(gguf_get_bool(&g, "k.false", &b) == 0 && b == 0);
    CHECK(gguf_get_str(&g, "k.str_n", &s) == 0 && s.len == 7 && memcmp(s.ptr, "abc\0def", 7) == 0);
    CHECK(gguf_get_str(&g, "k.empty", &s) == 0 && s.len == 0);
    if (alignment != 32) CHECK(gguf_get_u32(&g, "general.alignment", &u) == 0 && u == alignment);
    else CHECK(gguf_find(&g, "general.alignment") == NULL);

    kv = gguf_find(&g, "k.arr_str");
    CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING && kv->arr_n == 3);
    if (kv && kv->arr_n == 3) {
        gguf_str out[3];
        CHECK(gguf_get_str_array(kv, out) == 0);
        for (int i = 0; i < 3; i++) CHECK(gguf_str_eq(out[i], strs[i]));
    }
    kv = gguf_find(&g, "k.arr_i32");
    CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_INT32 && kv->arr_n == 5);
    if (kv && kv->arr_n == 5) {
        int32_t out[5];
        CHECK(gguf_get_i32_array(kv, out) == 0);
        for (int i = 0; i < 5; i++) CHECK(out[i] == i32s[i]);
    }
    kv = gguf_find(&g, "k.arr_f32");
    CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_FLOAT32 && kv->arr_n == 3);
    if (kv && kv->arr_n == 3)
        for (int i = 0; i < 3; i++) {
            float x;
            memcpy(&x, kv->val + 4 * i, 4);
            CHECK(memcmp(&x, &f32s[i], 4) == 0); /* bit-exact, including -0.0 */
        }
    kv = gguf_find(&g, "k.arr_empty");
    CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_INT32 && kv->arr_n == 0);

    uint64_t expect_off = g.data_offset;
    for (int i = 0; i < N_TENSORS; i++) {
        const gguf_tensor *t = gguf_find_tensor(&g, t_name[i]);
        CHECK(t != NULL);
        if (!t) continue;
        CHECK(t == &g.tensors[i]); /* order kept */
        CHECK(t->type == t_type[i]);
        CHECK(t->n_dims == t_ndims[i]);
        for (int d = 0; d < 4; d++) CHECK(t->ne[d] == t_ne[i][d]);
        CHECK(t->offset == expect_off);
        CHECK(t->offset % alignment == 0);
        CHECK(t->nbytes == t_bytes(i));
        CHECK(t->data == buf + t->offset);
        int same = 1;
        const uint8_t *data = t->data;
        for (size_t j = 0; j < t_bytes(i); j++) same &= data[j] == t_byte(i, j);
        CHECK(same);
        /* Padding after each tensor is zero. */
        uint64_t end = t->offset + t->nbytes, next = (end + alignment - 1) / alignment * alignment;
        int zero = 1;
        for (uint64_t k = end; k < next && k < len; k++) zero &= buf[k] == 0;
        CHECK(zero);
        expect_off = next;
    }
    CHECK(expect_off == len);
    gguf_close(&g);
}

static void test_alignment(uint32_t alignment) {
    gguf_writer *w = build(alignment == 32 ? 0 : alignment);
    CHECK(w != NULL);
    if (!w) return;
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(gguf_writer_bytes(w, &buf, &len) == 0);
    if (buf) check_file(buf, len, alignment);

    /* The file written by save() is byte-identical to the memory image. */
    char path[] = "/tmp/test_gguf_write_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        CHECK(gguf_writer_save(w, path) == 0);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (f) {
            uint8_t *fb = malloc(len + 1);
            size_t n = fread(fb, 1, len + 1, f);
            CHECK(n == len && memcmp(fb, buf, len) == 0);
            fclose(f);
            free(fb);
        }
        gguf_file g;
        char err[256];
        int rc = gguf_open_file(&g, path, err, sizeof err);
        CHECK(rc == 0);
        if (rc == 0) gguf_close(&g);
        remove(path);
    }
    free(buf);
    gguf_writer_free(w);
}

/* A writer with nothing in it still makes a valid file. */
static void test_empty(void) {
    gguf_writer *w = gguf_writer_new(0);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(w && gguf_writer_bytes(w, &buf, &len) == 0);
    CHECK(len == 32 && buf && memcmp(buf, "GGUF", 4) == 0 && rd_u64(buf + 8) == 0 &&
          rd_u64(buf + 16) == 0);
    gguf_file g;
    char err[256];
    if (buf) {
        int rc = gguf_open_memory(&g, buf, len, len, err, sizeof err);
        CHECK(rc == 0);
        if (rc == 0) gguf_close(&g);
    }
    free(buf);
    gguf_writer_free(w);
}

/* Saving to a path that cannot be created fails with -1 and leaves nothing behind. */
static void test_save_error(void) {
    gguf_writer *w = gguf_writer_new(0);
    CHECK(w && gguf_writer_save(w, "/nonexistent-dir/x.gguf") == -1);
    gguf_writer_free(w);
}

int main(void) {
    test_alignment(32);
    test_alignment(64);
    test_alignment(8);
    test_empty();
    test_save_error();
    if (failures) printf("test_gguf_write: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
