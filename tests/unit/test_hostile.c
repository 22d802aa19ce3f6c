/* test_hostile.c — hostile model files: every malformed GGUF must be refused cleanly.
 *
 * Builds a small valid Qwen3 model in memory (2 layers, n_embd 128, n_ff 256, 2 heads of 64, one kv
 * head, a byte-level vocabulary of 264 tokens with a few merges and the ChatML specials, Q1_0
 * matrices, F32 norms), checks that it loads and evaluates to finite logits, and then checks a
 * corpus of broken variants: truncations at every header offset, corrupted counts, lengths, types,
 * dimensions and offsets, broken alignment, and for the loader every hyperparameter, tensor role
 * and tokenizer array missing, of the wrong type, shape or range. Each must come back as a non-OK
 * status with a relevant message from ob_last_error(), and (under `make asan`) without a memory
 * error or leak. Also checks gguf_open_memory on a prefix of a file and ob_eval's argument checks.
 *
 * With `--write-seeds DIR` it instead writes a few small valid models to DIR (the fuzzer's seed
 * corpus, see tests/fuzz/run.sh) and exits. Not a test of tokenization or of numerical accuracy.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_write.h"
#include "model.h"
#include "onebit.h"
#include "quant.h"

static int failures;
static int verbose;  /* HOSTILE_VERBOSE=1: print every case's status and message */

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            failures++;                                                             \
        }                                                                           \
    } while (0)

/* ---- little-endian byte helpers ---------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* A growable byte string for hand-written files (the writer cannot write broken containers). */
typedef struct raw {
    uint8_t *p;     /* [len] */
    size_t len, cap;
} raw;

static void raw_put(raw *r, const void *src, size_t n) {
    if (r->len + n > r->cap) {
        size_t cap = (r->len + n) * 2 + 64;
        uint8_t *p = realloc(r->p, cap);
        if (!p) {
            printf("FAIL out of memory\n");
            exit(1);
        }
        r->p = p;
        r->cap = cap;
    }
    memcpy(r->p + r->len, src, n);
    r->len += n;
}
static void raw_u32(raw *r, uint32_t v) {
    uint8_t b[4];
    put_u32(b, v);
    raw_put(r, b, 4);
}
static void raw_u64(raw *r, uint64_t v) {
    uint8_t b[8];
    put_u64(b, v);
    raw_put(r, b, 8);
}
static void raw_str(raw *r, const char *s) {
    raw_u64(r, strlen(s));
    raw_put(r, s, strlen(s));
}
static void raw_head(raw *r, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    raw_put(r, "GGUF", 4);
    raw_u32(r, version);
    raw_u64(r, n_tensors);
    raw_u64(r, n_kv);
}

/* ---- the vocabulary ------------------------------------------------------------------------------ */

/* ids 0..255: byte b in GPT-2 byte-to-unicode form; then merges' results; then the specials. */
#define N_BYTES 256
static const char *const merge_list[] = {"Ġ t", "h e", "l l", "he ll", "hell o"};
static const char *const merge_result[] = {"Ġt", "he", "ll", "hell", "hello"};
#define N_MERGES 5
static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
#define N_SPECIAL 3
#define N_TOK (N_BYTES + N_MERGES + N_SPECIAL)   /* 264 */
#define TOK_IM_END (N_BYTES + N_MERGES + 2)

static char byte_tok[N_BYTES][4]; /* UTF-8 of each byte's character, NUL-terminated */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves; the others (controls,
 * space, 0x7f-0xa0, 0xad) map in order to U+0100 onwards. */
static void init_bytes(void) {
    int next = 256;
    for (int b = 0; b < N_BYTES; b++) {
        int keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        int cp = keep ? b : next++;
        char *o = byte_tok[b];
        if (cp < 0x80) {
            o[0] = (char)cp;
            o[1] = 0;
        } else {
            o[0] = (char)(0xc0 | (cp >> 6));
            o[1] = (char)(0x80 | (cp & 0x3f));
            o[2] = 0;
        }
    }
}

/* ---- model specification and its mutations ----------------------------------------------------- */

enum key_act {
    K_OMIT = 1, K_ZERO, K_HUGE, K_HUGE64, K_STRING, K_FLOAT, K_NEG, K_VALUE, K_DUP, /* integers */
    K_NAN, K_INF, K_NEGF,                                                            /* floats */
    K_INT, K_SVALUE                                                                  /* strings */
};
enum tensor_act { T_OMIT = 1, T_SHAPE, T_3D, T_TYPE, T_NAN, T_INF, T_DUP };
enum tok_act {
    TK_NO_MODEL = 1, TK_MODEL_OTHER, TK_MODEL_INT, TK_PRE_OTHER, TK_NO_PRE, TK_NO_TOKENS, TK_TOKENS_I32,
    TK_TOKENS_EMPTY, TK_TOKENS_SCALAR, TK_NO_MERGES, TK_MERGES_I32, TK_NO_TYPES, TK_TYPES_SHORT,
    TK_TYPES_LONG, TK_TYPES_STR, TK_TYPES_F32, TK_TYPES_SCALAR, TK_MERGE_UNKNOWN, TK_MERGE_NO_SPACE,
    TK_MERGE_NO_RESULT, TK_NO_BYTE, TK_LONG_TOKEN
};

typedef struct key_mut {
    const char *key;
    int act;                /* enum key_act */
    uint32_t val;           /* K_VALUE */
    const char *sval;       /* K_SVALUE ("qwen3" is written with its NUL: a near miss) */
} key_mut;

typedef struct spec {
    int n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim;
    int n_rows;             /* rows of token_embd; 0 = N_TOK */
    int tied;
    uint32_t alignment;     /* passed to the writer; 0 = its default (32) */
    uint32_t norm_type, mat_type;
    key_mut key[3];         /* up to three metadata mutations */
    const char *tensor;     /* one tensor mutation */
    int t_act;              /* enum tensor_act */
    uint32_t t_type;        /* T_TYPE */
    int tok;                /* enum tok_act */
    int extra;              /* 1: add an unknown key and an extra tensor (both legal) */
    const char *extra_key;  /* a u32 key added as is (e.g. a fork's marker) */
} spec;

static spec base_spec(void) {
    spec s;
    memset(&s, 0, sizeof s);
    s.n_layer = 2;
    s.n_embd = 128;
    s.n_ff = 256;
    s.n_head = 2;
    s.n_head_kv = 1;
    s.head_dim = 64;
    s.tied = 1;
    s.norm_type = GGML_F32;
    s.mat_type = GGML_Q1_0;
    return s;
}

static const key_mut *find_mut(const spec *s, const char *key) {
    for (int i = 0; i < 3; i++)
        if (s->key[i].key && strcmp(s->key[i].key, key) == 0) return &s->key[i];
    return NULL;
}

static int w_u32(gguf_writer *w, const spec *s, const char *key, uint32_t v) {
    const key_mut *m = find_mut(s, key);
    if (!m) return gguf_w_u32(w, key, v);
    switch (m->act) {
    case K_OMIT: return 0;
    case K_ZERO: return gguf_w_u32(w, key, 0);
    case K_HUGE: return gguf_w_u32(w, key, UINT32_MAX);
    case K_HUGE64: return gguf_w_u64(w, key, (uint64_t)1 << 40);
    case K_STRING: return gguf_w_str(w, key, "128");
    case K_FLOAT: return gguf_w_f32(w, key, (float)v);
    case K_NEG: return gguf_w_i32(w, key, -1);
    case K_VALUE: return gguf_w_u32(w, key, m->val);
    case K_DUP: return gguf_w_u32(w, key, v) | gguf_w_u32(w, key, v);
    }
    return -1;
}

static int w_f32(gguf_writer *w, const spec *s, const char *key, float v) {
    const key_mut *m = find_mut(s, key);
    if (!m) return gguf_w_f32(w, key, v);
    switch (m->act) {
    case K_OMIT: return 0;
    case K_ZERO: return gguf_w_f32(w, key, 0.0f);
    case K_NAN: return gguf_w_f32(w, key, NAN);
    case K_INF: return gguf_w_f32(w, key, INFINITY);
    case K_NEGF: return gguf_w_f32(w, key, -v);
    case K_STRING: return gguf_w_str(w, key, "1e6");
    case K_INT: return gguf_w_u32(w, key, 10000);
    }
    return -1;
}

static int w_str(gguf_writer *w, const spec *s, const char *key, const char *v) {
    const key_mut *m = find_mut(s, key);
    if (!m) return gguf_w_str(w, key, v);
    switch (m->act) {
    case K_OMIT: return 0;
    case K_INT: return gguf_w_u32(w, key, 3);
    case K_SVALUE: return gguf_w_str_n(w, key, m->sval, strlen(m->sval) + (strcmp(m->sval, "qwen3") == 0 ? 1 : 0));
    case K_DUP: return gguf_w_str(w, key, v) | gguf_w_str(w, key, v);
    }
    return -1;
}

/* Deterministic bytes: xorshift64*. */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}
static uint64_t name_seed(const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h | 1;
}

/* Tensor data of a type and shape. F32/F16/BF16 vectors are norm weights near 1 (a matrix in those
 * types gets small values); Q1_0 gets random signs with scale 1/sqrt(cols); Q8_0 random int8 with
 * a small scale; any other type random bytes (such tensors are refused before use). With poison,
 * element 3 is NaN (1) or +Inf (2). Returns a malloc'ed buffer of *nbytes, or NULL. */
static uint8_t *tensor_data(const char *name, uint32_t type, const uint64_t *ne, int is_vec, int poison,
                            size_t *nbytes) {
    const gguf_type_info *ti = gguf_type(type);
    uint64_t nel = ne[0] * ne[1] * ne[2] * ne[3];
    if (!ti || ne[0] % ti->blck) return NULL;
    size_t n = (size_t)(nel / ti->blck * ti->size);
    uint8_t *d = malloc(n ? n : 1);
    if (!d) return NULL;
    uint64_t st = name_seed(name);
    float amp = is_vec ? 0.1f : 1.0f / sqrtf((float)ne[0]);
    int is_float = type == GGML_F32 || type == GGML_F16 || type == GGML_BF16;
    for (uint64_t i = 0; is_float && i < nel; i++) {
        float v = (is_vec ? 1.0f : 0.0f) + amp * ((float)(rng_next(&st) >> 40) / (float)(1 << 24) - 0.5f);
        if (i == 3 && poison) v = poison == 1 ? NAN : INFINITY;
        if (type == GGML_F32) {
            memcpy(d + 4 * i, &v, 4);
        } else {
            uint32_t u;
            memcpy(&u, &v, 4);
            uint16_t h = type == GGML_F16 ? ob_f32_to_fp16(v) : (uint16_t)(u >> 16);
            memcpy(d + 2 * i, &h, 2);
        }
    }
    if (type == GGML_Q1_0 || type == GGML_Q8_0) {
        float scale = type == GGML_Q1_0 ? (strstr(name, "token_embd") ? 1.0f : 1.0f / sqrtf((float)ne[0])) : 0.002f;
        for (size_t b = 0; b < n; b += ti->size) {
            uint16_t h = ob_f32_to_fp16(scale);
            memcpy(d + b, &h, 2);
            for (size_t j = 2; j < ti->size; j++) d[b + j] = (uint8_t)(rng_next(&st) >> 56);
        }
    } else if (!is_float) {
        for (size_t j = 0; j < n; j++) d[j] = (uint8_t)(rng_next(&st) >> 56);
    }
    *nbytes = n;
    return d;
}

/* Adds tensor `name` (ne1 == 0: a vector of ne0) unless the spec mutates it otherwise. */
static int add_tensor(gguf_writer *w, const spec *s, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1) {
    uint64_t ne[4] = {ne0, ne1 ? ne1 : 1, 1, 1};
    uint32_t nd = ne1 ? 2 : 1;
    int is_vec = ne1 == 0, poison = 0, copies = 1;
    if (s->tensor && strcmp(s->tensor, name) == 0) {
        switch (s->t_act) {
        case T_OMIT: return 0;
        case T_SHAPE:
            if (is_vec) ne[0] *= 2;
            else ne[0] += 128;
            break;
        case T_3D:
            ne[2] = 2;
            nd = 3;
            break;
        case T_TYPE: type = s->t_type; break;
        case T_NAN: poison = 1; break;
        case T_INF: poison = 2; break;
        case T_DUP: copies = 2; break;
        }
    }
    size_t n = 0;
    uint8_t *d = tensor_data(name, type, ne, is_vec, poison, &n);
    if (!d) {
        /* A type whose block does not divide the row: write a plausible byte count anyway. */
        const gguf_type_info *ti = gguf_type(type);
        n = ti ? (size_t)(ne[1] * ne[2] * ne[3] * ti->size) : 64;
        d = calloc(n, 1);
        if (!d) return -1;
    }
    int rc = 0;
    for (int c = 0; c < copies; c++) rc |= gguf_w_tensor(w, name, type, nd, ne, d, n);
    free(d);
    return rc;
}

static int add_tokenizer(gguf_writer *w, const spec *s) {
    const char *tok[N_TOK + 1];
    size_t len[N_TOK + 1];
    int32_t type[N_TOK + 1];
    const char *mrg[N_MERGES + 1];
    size_t mlen[N_MERGES + 1];
    char *long_tok = NULL;
    for (int i = 0; i < N_BYTES; i++) tok[i] = byte_tok[i];
    for (int i = 0; i < N_MERGES; i++) tok[N_BYTES + i] = merge_result[i];
    for (int i = 0; i < N_SPECIAL; i++) tok[N_BYTES + N_MERGES + i] = specials[i];
    for (int i = 0; i < N_TOK; i++) {
        len[i] = strlen(tok[i]);
        type[i] = i < N_BYTES + N_MERGES ? 1 : 3; /* normal, control */
    }
    for (int i = 0; i < N_MERGES; i++) {
        mrg[i] = merge_list[i];
        mlen[i] = strlen(mrg[i]);
    }
    size_t n_tok = N_TOK, n_merge = N_MERGES, n_type = N_TOK;
    switch (s->tok) {
    case TK_MERGE_UNKNOWN: mrg[n_merge] = "zz qq"; mlen[n_merge++] = 5; break;
    case TK_MERGE_NO_SPACE: mrg[1] = "he"; mlen[1] = 2; break;
    case TK_MERGE_NO_RESULT: mrg[n_merge] = "Ġ h"; mlen[n_merge++] = strlen("Ġ h"); break;
    case TK_NO_BYTE: tok['a'] = "[unused]"; len['a'] = 8; break;
    case TK_LONG_TOKEN:
        long_tok = malloc(70000);
        if (!long_tok) return -1;
        memset(long_tok, 'x', 70000);
        tok[N_TOK] = long_tok;
        len[N_TOK] = 70000;
        type[N_TOK] = 1;
        n_tok = n_type = N_TOK + 1;
        break;
    case TK_TYPES_SHORT: n_type = N_TOK - 1; break;
    case TK_TYPES_LONG: type[N_TOK] = 1; n_type = N_TOK + 1; break;
    }
    int rc = 0;
    switch (s->tok) {
    case TK_NO_MODEL: break;
    case TK_MODEL_OTHER: rc |= gguf_w_str(w, "tokenizer.ggml.model", "bert"); break;
    case TK_MODEL_INT: rc |= gguf_w_u32(w, "tokenizer.ggml.model", 2); break;
    default: rc |= gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    }
    if (s->tok == TK_PRE_OTHER) rc |= gguf_w_str(w, "tokenizer.ggml.pre", "chameleon");
    else if (s->tok != TK_NO_PRE) rc |= gguf_w_str(w, "tokenizer.ggml.pre", "qwen2");
    switch (s->tok) {
    case TK_NO_TOKENS: break;
    case TK_TOKENS_I32: rc |= gguf_w_arr_i32(w, "tokenizer.ggml.tokens", type, n_tok); break;
    case TK_TOKENS_EMPTY: rc |= gguf_w_arr_str(w, "tokenizer.ggml.tokens", tok, len, 0); break;
    case TK_TOKENS_SCALAR: rc |= gguf_w_str(w, "tokenizer.ggml.tokens", "a"); break;
    default: rc |= gguf_w_arr_str(w, "tokenizer.ggml.tokens", tok, len, n_tok);
    }
    switch (s->tok) {
    case TK_NO_TYPES: break;
    case TK_TYPES_STR: rc |= gguf_w_arr_str(w, "tokenizer.ggml.token_type", tok, len, n_tok); break;
    case TK_TYPES_F32: {
        float f[N_TOK];
        for (int i = 0; i < N_TOK; i++) f[i] = (float)type[i];
        rc |= gguf_w_arr_f32(w, "tokenizer.ggml.token_type", f, N_TOK);
        break;
    }
    case TK_TYPES_SCALAR: rc |= gguf_w_u32(w, "tokenizer.ggml.token_type", 1); break;
    default: rc |= gguf_w_arr_i32(w, "tokenizer.ggml.token_type", type, n_type);
    }
    switch (s->tok) {
    case TK_NO_MERGES: break;
    case TK_MERGES_I32: rc |= gguf_w_arr_i32(w, "tokenizer.ggml.merges", type, 3); break;
    default: rc |= gguf_w_arr_str(w, "tokenizer.ggml.merges", mrg, mlen, n_merge);
    }
    rc |= gguf_w_u32(w, "tokenizer.ggml.bos_token_id", N_BYTES + N_MERGES);
    rc |= gguf_w_u32(w, "tokenizer.ggml.eos_token_id", TOK_IM_END);
    rc |= gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 0);
    free(long_tok);
    return rc;
}

/* Serialises the model a spec describes into a malloc'ed buffer. Returns 0 or -1. */
static int build(const spec *s, uint8_t **out, size_t *len) {
    gguf_writer *w = gguf_writer_new(s->alignment);
    if (!w) return -1;
    int rc = 0;
    const int E = s->n_embd, Q = s->n_head * s->head_dim, KV = s->n_head_kv * s->head_dim, F = s->n_ff;
    const int rows = s->n_rows ? s->n_rows : N_TOK;
    rc |= w_str(w, s, "general.architecture", "qwen3");
    rc |= w_str(w, s, "general.name", "hostile-test");
    rc |= w_u32(w, s, "general.alignment.test", 0); /* an unknown key: ignored */
    rc |= w_u32(w, s, "qwen3.block_count", (uint32_t)s->n_layer);
    rc |= w_u32(w, s, "qwen3.context_length", 256);
    rc |= w_u32(w, s, "qwen3.embedding_length", (uint32_t)E);
    rc |= w_u32(w, s, "qwen3.feed_forward_length", (uint32_t)F);
    rc |= w_u32(w, s, "qwen3.attention.head_count", (uint32_t)s->n_head);
    rc |= w_u32(w, s, "qwen3.attention.head_count_kv", (uint32_t)s->n_head_kv);
    rc |= w_u32(w, s, "qwen3.attention.key_length", (uint32_t)s->head_dim);
    rc |= w_u32(w, s, "qwen3.attention.value_length", (uint32_t)s->head_dim);
    rc |= w_f32(w, s, "qwen3.rope.freq_base", 1e6f);
    rc |= w_f32(w, s, "qwen3.attention.layer_norm_rms_epsilon", 1e-6f);
    if (find_mut(s, "general.alignment")) rc |= w_u32(w, s, "general.alignment", 32);
    rc |= add_tokenizer(w, s);
    if (s->extra_key) rc |= gguf_w_u32(w, s->extra_key, 64);
    if (s->extra) {
        rc |= gguf_w_str(w, "tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
        rc |= gguf_w_u64(w, "general.file_type", 40);
    }

    rc |= add_tensor(w, s, "token_embd.weight", s->mat_type, (uint64_t)E, (uint64_t)rows);
    for (int l = 0; l < s->n_layer; l++) {
        char n[64];
#define MAT(suffix, r, c)                                                                         \
        snprintf(n, sizeof n, "blk.%d.%s.weight", l, suffix);                                     \
        rc |= add_tensor(w, s, n, s->mat_type, (uint64_t)(c), (uint64_t)(r));
#define VEC(suffix, len)                                                                          \
        snprintf(n, sizeof n, "blk.%d.%s.weight", l, suffix);                                     \
        rc |= add_tensor(w, s, n, s->norm_type, (uint64_t)(len), 0);
        VEC("attn_norm", E)
        MAT("attn_q", Q, E)
        MAT("attn_k", KV, E)
        MAT("attn_v", KV, E)
        MAT("attn_output", E, Q)
        VEC("attn_q_norm", s->head_dim)
        VEC("attn_k_norm", s->head_dim)
        VEC("ffn_norm", E)
        MAT("ffn_gate", F, E)
        MAT("ffn_up", F, E)
        MAT("ffn_down", E, F)
#undef MAT
#undef VEC
    }
    rc |= add_tensor(w, s, "output_norm.weight", s->norm_type, (uint64_t)E, 0);
    if (!s->tied) rc |= add_tensor(w, s, "output.weight", s->mat_type, (uint64_t)E, (uint64_t)rows);
    if (s->extra) rc |= add_tensor(w, s, "rope_freqs.weight", GGML_F32, 32, 0);
    if (rc == 0) rc = gguf_writer_bytes(w, out, len);
    gguf_writer_free(w);
    return rc;
}

/* ---- a walk over a valid file's header, to find the fields to corrupt ------------------------- */

#define MAX_KV 64
#define MAX_T 64
typedef struct layout {
    size_t n_kv, n_t;
    size_t kv_key[MAX_KV], kv_type[MAX_KV], kv_val[MAX_KV]; /* offsets of each field */
    size_t t_name[MAX_T], t_ndims[MAX_T], t_ne[MAX_T], t_type[MAX_T], t_off[MAX_T];
    size_t header_end;      /* end of the tensor infos */
    size_t data_start;
} layout;

static size_t skip_value(const uint8_t *p, size_t o, uint32_t t) {
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (t == GGUF_STRING) return o + 8 + (size_t)get_u64(p + o);
    if (t == GGUF_ARRAY) {
        uint32_t at = get_u32(p + o);
        uint64_t n = get_u64(p + o + 4);
        o += 12;
        for (uint64_t i = 0; i < n; i++) o = skip_value(p, o, at);
        return o;
    }
    return o + sz[t];
}

static void walk(const uint8_t *p, size_t len, layout *L) {
    memset(L, 0, sizeof *L);
    L->n_t = (size_t)get_u64(p + 8);
    L->n_kv = (size_t)get_u64(p + 16);
    if (L->n_t > MAX_T || L->n_kv > MAX_KV) {
        printf("FAIL walk: too many keys or tensors\n");
        exit(1);
    }
    size_t o = 24;
    for (size_t i = 0; i < L->n_kv; i++) {
        L->kv_key[i] = o;
        o += 8 + (size_t)get_u64(p + o);
        L->kv_type[i] = o;
        uint32_t t = get_u32(p + o);
        o += 4;
        L->kv_val[i] = o;
        o = skip_value(p, o, t);
    }
    for (size_t i = 0; i < L->n_t; i++) {
        L->t_name[i] = o;
        o += 8 + (size_t)get_u64(p + o);
        L->t_ndims[i] = o;
        uint32_t nd = get_u32(p + o);
        o += 4;
        L->t_ne[i] = o;
        o += 8 * nd;
        L->t_type[i] = o;
        o += 4;
        L->t_off[i] = o;
        o += 8;
    }
    L->header_end = o;
    L->data_start = (o + 31) / 32 * 32;
    if (L->data_start > len) {
        printf("FAIL walk: header runs past the file\n");
        exit(1);
    }
}

static size_t find_kv(const uint8_t *p, const layout *L, const char *key) {
    for (size_t i = 0; i < L->n_kv; i++)
        if (get_u64(p + L->kv_key[i]) == strlen(key) && memcmp(p + L->kv_key[i] + 8, key, strlen(key)) == 0) return i;
    printf("FAIL walk: no key %s\n", key);
    exit(1);
}

static size_t find_t(const uint8_t *p, const layout *L, const char *name) {
    for (size_t i = 0; i < L->n_t; i++)
        if (get_u64(p + L->t_name[i]) == strlen(name) && memcmp(p + L->t_name[i] + 8, name, strlen(name)) == 0) return i;
    printf("FAIL walk: no tensor %s\n", name);
    exit(1);
}

/* ---- expectations --------------------------------------------------------------------------------- */

/* Well-formed files the reader cannot run (big-endian, other versions, unsized ggml types) are
 * reported as OB_ERR_UNSUPPORTED (api.c maps the reader's "unsupported" messages). */
#define READER_UNSUPPORTED_OK(st) ((st) == OB_ERR_UNSUPPORTED)

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] && (h[i] | 0x20) == (needle[i] | 0x20)) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

/* Loads a private copy of buf[0..len) (so ASan sees reads past the end) and expects status want
 * (-1: FORMAT or UNSUPPORTED from the reader, see above) with `needle` in the message. */
static void expect_load(const char *what, const uint8_t *buf, size_t len, int want, const char *needle) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        printf("FAIL out of memory\n");
        exit(1);
    }
    if (len) memcpy(copy, buf, len);
    ob_model *m = (ob_model *)0x1;
    ob_status st = ob_model_load_memory(copy, len, NULL, &m);
    const char *e = ob_last_error();
    int ok_status = want == -1 ? READER_UNSUPPORTED_OK(st) : st == (ob_status)want;
    if (!ok_status || !e || !*e || (needle && !contains_ci(e, needle)) || (st != OB_OK && m != NULL)) {
        printf("FAIL %s: status %d (%s), want %d, message \"%s\"%s%s%s\n", what, (int)st, ob_status_str(st), want,
               e ? e : "(null)", needle ? ", expected to mention \"" : "", needle ? needle : "", needle ? "\"" : "");
        failures++;
    }
    else if (verbose) printf("ok   %-48s %-12s %s\n", what, ob_status_str(st), st ? e : "");
    if (st == OB_OK) ob_model_free(m);
    free(copy);
}

/* Builds a spec and expects the load result. */
static void expect_spec(const char *what, const spec *s, int want, const char *needle) {
    uint8_t *buf;
    size_t len;
    if (build(s, &buf, &len) != 0) {
        printf("FAIL %s: could not build the model\n", what);
        failures++;
        return;
    }
    expect_load(what, buf, len, want, needle);
    free(buf);
}

/* Expects gguf_open_memory to refuse buf with needle in its message. */
static void expect_parse_fail(const char *what, const uint8_t *buf, size_t len, const char *needle) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) exit(1);
    if (len) memcpy(copy, buf, len);
    gguf_file g;
    char err[512] = "";
    int r = gguf_open_memory(&g, copy, len, len, err, sizeof err);
    if (r == 0) {
        printf("FAIL %s: the reader accepted it\n", what);
        failures++;
        gguf_close(&g);
    } else if (!err[0] || (needle && !contains_ci(err, needle))) {
        printf("FAIL %s: reader message \"%s\" should mention \"%s\"\n", what, err, needle ? needle : "");
        failures++;
    }
    free(copy);
}

/* ---- the valid model: loads and runs -------------------------------------------------------------- */

static void test_valid(const uint8_t *buf, size_t len) {
    ob_model *m = NULL;
    ob_status st = ob_model_load_memory(buf, len, NULL, &m);
    if (st != OB_OK) {
        printf("FAIL valid model does not load: %s: %s\n", ob_status_str(st), ob_last_error());
        failures++;
        return;
    }
    ob_model_info info;
    ob_model_get_info(m, &info);
    CHECK(strcmp(info.arch, "qwen3") == 0);
    CHECK(info.n_vocab == N_TOK && info.n_embd == 128 && info.n_layer == 2 && info.n_ff == 256);
    CHECK(info.n_head == 2 && info.n_head_kv == 1 && info.head_dim == 64);
    CHECK(info.tied_embeddings == 1);
    CHECK(info.eot == TOK_IM_END && info.eos == TOK_IM_END);
    CHECK(info.file_size == len);

    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 8;
    ob_context *c = NULL;
    CHECK(ob_context_new(m, &cp, &c) == OB_OK);
    if (!c) {
        ob_model_free(m);
        return;
    }
    CHECK(ob_context_n_ctx(c) == 8);
    const ob_token toks[3] = {'h', N_BYTES + 4, TOK_IM_END};
    CHECK(ob_eval(c, toks, 3, 1) == OB_OK);
    CHECK(ob_context_n_past(c) == 3);
    int finite = 1;
    for (int r = 0; r < 3; r++) {
        const float *lg = ob_logits(c, r);
        CHECK(lg != NULL);
        for (int i = 0; lg && i < N_TOK; i++) finite &= isfinite(lg[i]) != 0;
    }
    CHECK(finite);
    CHECK(ob_logits(c, 3) == NULL);

    /* bad arguments change nothing */
    const ob_token bad1[2] = {1, -1}, bad2[1] = {N_TOK}, bad3[1] = {INT32_MAX}, ok1[1] = {5};
    CHECK(ob_eval(c, bad1, 2, 0) == OB_ERR_ARG && contains_ci(ob_last_error(), "out of range"));
    CHECK(ob_eval(c, bad2, 1, 0) == OB_ERR_ARG && contains_ci(ob_last_error(), "out of range"));
    CHECK(ob_eval(c, bad3, 1, 0) == OB_ERR_ARG);
    CHECK(ob_eval(c, ok1, 0, 0) == OB_ERR_ARG && ob_last_error()[0]);
    CHECK(ob_eval(c, ok1, -1, 0) == OB_ERR_ARG);
    CHECK(ob_eval(c, NULL, 1, 0) == OB_ERR_ARG);
    ob_token many[9];
    for (int i = 0; i < 9; i++) many[i] = i;
    CHECK(ob_eval(c, many, 6, 0) == OB_ERR_CONTEXT && contains_ci(ob_last_error(), "fit"));
    CHECK(ob_eval(c, many, 9, 0) == OB_ERR_CONTEXT);
    CHECK(ob_context_n_past(c) == 3);
    CHECK(ob_logits(c, -1) != NULL);
    /* exactly full, then one more */
    CHECK(ob_eval(c, many, 5, 0) == OB_OK);
    CHECK(ob_context_n_past(c) == 8);
    CHECK(ob_eval(c, ok1, 1, 0) == OB_ERR_CONTEXT);
    CHECK(ob_context_n_past(c) == 8);
    ob_context_free(c);

    /* a context larger than the model was trained for is the caller's choice, a negative one not */
    cp.n_ctx = -5;
    c = (ob_context *)0x1;
    CHECK(ob_context_new(m, &cp, &c) == OB_ERR_ARG && c == NULL);
    ob_model_free(m);
}

/* Loads buf with a backend and evaluates 3 tokens, keeping all logits ([3][N_TOK] into out).
 * Returns 0, or -1 with a FAIL line. */
static int eval_with(const char *what, const uint8_t *buf, size_t len, const char *backend, float *out) {
    ob_model_params mp = ob_model_default_params();
    mp.backend = backend;
    mp.n_threads = 2;
    ob_model *m = NULL;
    ob_status st = ob_model_load_memory(buf, len, &mp, &m);
    if (st != OB_OK) {
        printf("FAIL legal variant '%s' does not load on %s: %s: %s\n", what, backend, ob_status_str(st), ob_last_error());
        failures++;
        return -1;
    }
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 4;
    ob_context *c = NULL;
    const ob_token t[3] = {'h', N_BYTES + 1, TOK_IM_END};
    int ok = ob_context_new(m, &cp, &c) == OB_OK && ob_eval(c, t, 3, 1) == OB_OK;
    for (int r = 0; ok && r < 3; r++) {
        const float *lg = ob_logits(c, r);
        ok = lg != NULL;
        for (int j = 0; ok && j < N_TOK; j++) ok = isfinite(out[r * N_TOK + j] = lg[j]) != 0;
    }
    if (!ok) {
        printf("FAIL legal variant '%s' does not evaluate to finite logits on %s: %s\n", what, backend, ob_last_error());
        failures++;
    }
    ob_context_free(c);
    ob_model_free(m);
    return ok ? 0 : -1;
}

/* Variants that are unusual but legal: each must load and evaluate on the reference backend and
 * on the SIMD CPU backend, with logits that agree. The odd shapes (2-row matrices, rows that do
 * not fill a 16-row tile, 3 blocks per row, 8-wide f32 models) are ones no released model has,
 * which is where kernel and repacking bugs hide; the fuzzer cannot reach them by flipping bytes
 * because every shape must agree with every other. The CPU backend rounds activations: to 16 bits
 * for Q1_0 (agreement within 1% relative RMS; it is near 1e-4 on these models), to 8 bits for the
 * 8/4-bit types as llama.cpp does (src/cpu/qk.h: about 1-2% on these tiny random models; 3%). */
static void test_legal_variants(void) {
    struct { const char *what; spec s; } v[24];
    int n = 0;
    spec s;
#define LEGAL(name, ...)                \
    s = base_spec();                    \
    __VA_ARGS__;                        \
    v[n].what = name;                   \
    v[n++].s = s;
    LEGAL("the base model", (void)0)
    LEGAL("untied output", s.tied = 0)
    LEGAL("alignment 64", s.alignment = 64)
    LEGAL("alignment 1", s.alignment = 1)
    LEGAL("f16 norms", s.norm_type = GGML_F16)
    LEGAL("bf16 norms", s.norm_type = GGML_BF16)
    LEGAL("q8_0 matrices", s.mat_type = GGML_Q8_0)
    LEGAL("f32 matrices", s.mat_type = GGML_F32)
    LEGAL("no pre-tokenizer key", s.tok = TK_NO_PRE)
    LEGAL("no token types", s.tok = TK_NO_TYPES)
    LEGAL("embedding larger than the vocabulary", s.n_rows = N_TOK + 8)
    LEGAL("extra keys and tensors", s.extra = 1)
    LEGAL("optional keys absent", s.key[0] = (key_mut){"qwen3.attention.key_length", K_OMIT, 0, NULL};
          s.key[1] = (key_mut){"qwen3.rope.freq_base", K_OMIT, 0, NULL};
          s.key[2] = (key_mut){"qwen3.context_length", K_OMIT, 0, NULL})
    LEGAL("eps and value_length absent",
          s.key[0] = (key_mut){"qwen3.attention.layer_norm_rms_epsilon", K_OMIT, 0, NULL};
          s.key[1] = (key_mut){"qwen3.attention.value_length", K_OMIT, 0, NULL})
    LEGAL("four heads of 32 over two kv heads", s.n_head = 4; s.n_head_kv = 2; s.head_dim = 32)
    LEGAL("one layer", s.n_layer = 1)
    LEGAL("64 heads of dimension 2 over one kv head (2-row k and v)", s.n_head = 64; s.head_dim = 2)
    LEGAL("3 blocks per row: n_embd 384, 3 heads of 128", s.n_embd = 384; s.n_head = 3; s.head_dim = 128;
          s.n_ff = 384)
    LEGAL("q8_0, 96 wide, 3 heads of 32, n_ff 160", s.mat_type = GGML_Q8_0; s.n_embd = 96; s.n_head = 3;
          s.n_head_kv = 3; s.head_dim = 32; s.n_ff = 160)
    LEGAL("f32, n_embd 8, 2 heads of 4, n_ff 3", s.mat_type = GGML_F32; s.n_embd = 8; s.head_dim = 4; s.n_ff = 3)
#undef LEGAL
    static float ref[3 * N_TOK], got[3 * N_TOK];
    for (int i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;
        if (build(&v[i].s, &buf, &len) != 0) {
            printf("FAIL %s: could not build\n", v[i].what);
            failures++;
            continue;
        }
        if (eval_with(v[i].what, buf, len, "scalar", ref) != 0) {
            free(buf);
            continue;
        }
        /* each kernel table this machine runs (an unusable one falls back to the best) */
        static const char *const isa[] = {"generic", "avx2", "avx512", "neon"};
        for (size_t k = 0; k < sizeof isa / sizeof isa[0]; k++) {
            setenv("ONEBIT_CPU_ISA", isa[k], 1);
            if (eval_with(v[i].what, buf, len, "cpu", got) != 0) continue;
            double num = 0, den = 0;
            for (int j = 0; j < 3 * N_TOK; j++) {
                num += ((double)got[j] - ref[j]) * ((double)got[j] - ref[j]);
                den += (double)ref[j] * ref[j];
            }
            double rel = sqrt(num / (den > 0 ? den : 1));
            const double lim = strstr(v[i].what, "q8_0") ? 0.03 : 0.01;
            if (!(rel < lim)) {
                printf("FAIL legal variant '%s': cpu (%s) and scalar logits differ (relative RMS %.4f)\n", v[i].what,
                       isa[k], rel);
                failures++;
            } else if (verbose) {
                printf("ok   legal variant %-58s cpu (%s) vs scalar: relative RMS %.5f\n", v[i].what, isa[k], rel);
            }
        }
        unsetenv("ONEBIT_CPU_ISA");
        free(buf);
    }
}

/* ---- container-level corruption -------------------------------------------------------------- */

static void test_truncation(const uint8_t *buf, size_t len, const layout *L) {
    /* every offset of the header, then a sample of the data region, then the last bytes */
    char what[64];
    for (size_t n = 0; n <= L->data_start; n++) {
        snprintf(what, sizeof what, "truncated to %zu bytes", n);
        expect_load(what, buf, n, OB_ERR_FORMAT, NULL);
    }
    size_t step = (len - L->data_start) / 97 + 1;
    for (size_t n = L->data_start + 1; n < len; n += step) {
        snprintf(what, sizeof what, "truncated to %zu bytes", n);
        expect_load(what, buf, n, OB_ERR_FORMAT, "past the end");
    }
    for (size_t n = len - 3; n < len; n++) {
        snprintf(what, sizeof what, "truncated to %zu bytes", n);
        expect_load(what, buf, n, OB_ERR_FORMAT, "past the end");
    }
    /* a few header truncations checked for the message too */
    expect_load("empty file", buf, 0, OB_ERR_FORMAT, "truncated");
    expect_load("magic only", buf, 4, OB_ERR_FORMAT, "truncated");
    expect_load("no metadata count", buf, 16, OB_ERR_FORMAT, "truncated");
    expect_load("cut in the tensor infos", buf, L->t_off[0] + 4, OB_ERR_FORMAT, "truncated");
}

/* A private copy of buf[0..len) to corrupt. */
static uint8_t *patched(const uint8_t *buf, size_t len) {
    uint8_t *p = malloc(len);
    if (!p) exit(1);
    memcpy(p, buf, len);
    return p;
}

static void test_patches(const uint8_t *buf, size_t len, const layout *L) {
    /* bytes after the last tensor's data are legal */
    uint8_t *p = malloc(len + 100);
    if (!p) exit(1);
    memcpy(p, buf, len);
    memset(p + len, 0xee, 100);
    expect_load("trailing bytes after the data", p, len + 100, OB_OK, NULL);
    free(p);
#define PATCH(what, want, needle, ...)             \
    p = patched(buf, len);                         \
    __VA_ARGS__;                                   \
    expect_load(what, p, len, want, needle);       \
    free(p);

    PATCH("bad magic", OB_ERR_FORMAT, "magic", memcpy(p, "GGML", 4))
    PATCH("lower-case magic", OB_ERR_FORMAT, "magic", memcpy(p, "gguf", 4))
    PATCH("version 0", OB_ERR_FORMAT, "version", put_u32(p + 4, 0))
    PATCH("version 1", -1, "version", put_u32(p + 4, 1))
    PATCH("version 4", -1, "version", put_u32(p + 4, 4))
    PATCH("version 0xffffffff", OB_ERR_FORMAT, "version", put_u32(p + 4, 0xffffffffu))
    PATCH("big-endian version 3", -1, "endian", put_u32(p + 4, 0x03000000u))

    PATCH("tensor count 2^62", OB_ERR_FORMAT, "tensor count", put_u64(p + 8, (uint64_t)1 << 62))
    PATCH("tensor count max", OB_ERR_FORMAT, "tensor count", put_u64(p + 8, UINT64_MAX))
    PATCH("tensor count + 1", OB_ERR_FORMAT, NULL, put_u64(p + 8, L->n_t + 1))
    PATCH("tensor count 0", OB_ERR_FORMAT, NULL, put_u64(p + 8, 0))
    PATCH("metadata count 2^62", OB_ERR_FORMAT, "metadata count", put_u64(p + 16, (uint64_t)1 << 62))
    PATCH("metadata count max", OB_ERR_FORMAT, "metadata count", put_u64(p + 16, UINT64_MAX))
    PATCH("metadata count + 1", OB_ERR_FORMAT, NULL, put_u64(p + 16, L->n_kv + 1))
    PATCH("metadata count - 1", OB_ERR_FORMAT, NULL, put_u64(p + 16, L->n_kv - 1))
    PATCH("metadata count 0", OB_ERR_FORMAT, NULL, put_u64(p + 16, 0))

    PATCH("key length max", OB_ERR_FORMAT, "past the end", put_u64(p + L->kv_key[0], UINT64_MAX))
    PATCH("key length 2^63", OB_ERR_FORMAT, "past the end", put_u64(p + L->kv_key[0], (uint64_t)1 << 63))
    PATCH("key length = file size", OB_ERR_FORMAT, "past the end", put_u64(p + L->kv_key[0], len))
    size_t arch = find_kv(buf, L, "general.architecture");
    PATCH("string value length max", OB_ERR_FORMAT, "past the end", put_u64(p + L->kv_val[arch], UINT64_MAX))
    PATCH("string value length past the end", OB_ERR_FORMAT, "past the end",
          put_u64(p + L->kv_val[arch], len - L->kv_val[arch] - 8 + 1))
    PATCH("unknown value type 13", OB_ERR_FORMAT, "type", put_u32(p + L->kv_type[arch], 13))
    PATCH("unknown value type max", OB_ERR_FORMAT, "type", put_u32(p + L->kv_type[arch], 0xffffffffu))

    size_t tk = find_kv(buf, L, "tokenizer.ggml.tokens");
    size_t tv = L->kv_val[tk]; /* u32 element type, u64 count, strings */
    PATCH("token array length 2^61", OB_ERR_FORMAT, "array length", put_u64(p + tv + 4, (uint64_t)1 << 61))
    PATCH("token array length max", OB_ERR_FORMAT, "array length", put_u64(p + tv + 4, UINT64_MAX))
    PATCH("token array length + 1", OB_ERR_FORMAT, NULL, put_u64(p + tv + 4, N_TOK + 1))
    PATCH("token array of arrays", OB_ERR_FORMAT, "array element type", put_u32(p + tv, GGUF_ARRAY))
    PATCH("token array of type 99", OB_ERR_FORMAT, "array element type", put_u32(p + tv, 99))
    {
        /* the last token string's length runs past the end of the file */
        size_t o = tv + 12;
        for (int i = 0; i < N_TOK - 1; i++) o += 8 + (size_t)get_u64(buf + o);
        PATCH("last token string runs past the end", OB_ERR_FORMAT, "past the end",
              put_u64(p + o, len - o - 8 + 1))
        PATCH("a token string of length max", OB_ERR_FORMAT, "past the end", put_u64(p + o, UINT64_MAX))
    }
    size_t ty = find_kv(buf, L, "tokenizer.ggml.token_type");
    PATCH("i32 array length max", OB_ERR_FORMAT, NULL, put_u64(p + L->kv_val[ty] + 4, UINT64_MAX))
    PATCH("i32 array length 2^62", OB_ERR_FORMAT, NULL, put_u64(p + L->kv_val[ty] + 4, (uint64_t)1 << 62))
    PATCH("i32 array runs past the end", OB_ERR_FORMAT, "past the end",
          put_u64(p + L->kv_val[ty] + 4, (len - L->kv_val[ty]) / 4))
    PATCH("array element type bool for token types", OB_ERR_FORMAT, "token_type",
          put_u32(p + L->kv_val[ty], GGUF_BOOL); put_u64(p + L->kv_val[ty] + 4, N_TOK * 4))

    size_t te = find_t(buf, L, "token_embd.weight"), q = find_t(buf, L, "blk.0.attn_q.weight");
    size_t on = find_t(buf, L, "output_norm.weight");
    PATCH("n_dims 0", OB_ERR_FORMAT, "dimensions", put_u32(p + L->t_ndims[q], 0))
    PATCH("n_dims 5", OB_ERR_FORMAT, "dimensions", put_u32(p + L->t_ndims[q], 5))
    PATCH("n_dims max", OB_ERR_FORMAT, "dimensions", put_u32(p + L->t_ndims[q], 0xffffffffu))
    PATCH("dimension 0", OB_ERR_FORMAT, "shape", put_u64(p + L->t_ne[q], 0))
    PATCH("second dimension 0", OB_ERR_FORMAT, "shape", put_u64(p + L->t_ne[q] + 8, 0))
    PATCH("dimension 2^41", OB_ERR_FORMAT, "shape", put_u64(p + L->t_ne[q] + 8, (uint64_t)1 << 41))
    PATCH("dimension max", OB_ERR_FORMAT, "shape", put_u64(p + L->t_ne[q], UINT64_MAX))
    PATCH("dimension product overflows", OB_ERR_FORMAT, "shape",
          put_u64(p + L->t_ne[q], (uint64_t)1 << 40); put_u64(p + L->t_ne[q] + 8, (uint64_t)1 << 40))
    PATCH("dimension product 2^64 exactly", OB_ERR_FORMAT, "shape",
          put_u64(p + L->t_ne[q], (uint64_t)1 << 32); put_u64(p + L->t_ne[q] + 8, (uint64_t)1 << 32))
    PATCH("2^44 elements, far past the end", OB_ERR_FORMAT, "past the end",
          put_u64(p + L->t_ne[q], (uint64_t)1 << 37); put_u64(p + L->t_ne[q] + 8, 128))
    PATCH("row not a multiple of the block", OB_ERR_FORMAT, "block", put_u64(p + L->t_ne[q], 100))
    PATCH("row of one element in q1_0", OB_ERR_FORMAT, "block", put_u64(p + L->t_ne[q], 1))
    PATCH("tensor type 99", OB_ERR_FORMAT, "type", put_u32(p + L->t_type[q], 99))
    PATCH("tensor type max", OB_ERR_FORMAT, "type", put_u32(p + L->t_type[q], 0xffffffffu))
    PATCH("tensor type iq2_xxs (unknown to onebit)", -1, "type", put_u32(p + L->t_type[q], 16))
    PATCH("tensor type changed to q8_0 (data overlaps)", OB_ERR_FORMAT, NULL, put_u32(p + L->t_type[q], GGML_Q8_0))
    PATCH("tensor type changed to f32 (data overlaps)", OB_ERR_FORMAT, NULL, put_u32(p + L->t_type[q], GGML_F32))
    PATCH("last tensor changed to f64 (past the end)", OB_ERR_FORMAT, "past the end",
          put_u32(p + L->t_type[L->n_t - 1], GGML_F64))
    PATCH("tensor offset past the end", OB_ERR_FORMAT, "past the end",
          put_u64(p + L->t_off[on], (len - L->data_start + 31) / 32 * 32))
    PATCH("tensor offset near 2^64", OB_ERR_FORMAT, "past the end", put_u64(p + L->t_off[on], UINT64_MAX - 31))
    PATCH("tensor offset 2^63", OB_ERR_FORMAT, "past the end", put_u64(p + L->t_off[on], (uint64_t)1 << 63))
    PATCH("misaligned tensor offset", OB_ERR_FORMAT, "align", put_u64(p + L->t_off[q], get_u64(buf + L->t_off[q]) + 1))
    PATCH("misaligned by 16", OB_ERR_FORMAT, "align", put_u64(p + L->t_off[q], get_u64(buf + L->t_off[q]) + 16))
    PATCH("tensors at the same offset", OB_ERR_FORMAT, "overlap", put_u64(p + L->t_off[q], get_u64(buf + L->t_off[te])))
    PATCH("tensors overlapping partly", OB_ERR_FORMAT, "overlap",
          put_u64(p + L->t_off[q], get_u64(buf + L->t_off[te]) + 32))
    PATCH("empty tensor name", OB_ERR_FORMAT, NULL, put_u64(p + L->t_name[te], 0))
    PATCH("tensor name length max", OB_ERR_FORMAT, "past the end", put_u64(p + L->t_name[te], UINT64_MAX))
    PATCH("duplicate tensor name", OB_ERR_FORMAT, "duplicate",
          memcpy(p + L->t_name[q] + 8 + strlen("blk.0.attn_"), "k", 1))
#undef PATCH
}

/* Hand-written containers for what the writer cannot produce. */
static void test_raw(void) {
    raw r = {0};
#define RAW(what, needle, ...)                                     \
    r.len = 0;                                                      \
    __VA_ARGS__;                                                    \
    expect_parse_fail(what, r.p, r.len, needle);                    \
    expect_load(what, r.p, r.len, OB_ERR_FORMAT, NULL);

    RAW("nested array", "array element type", raw_head(&r, 3, 0, 1); raw_str(&r, "k"); raw_u32(&r, GGUF_ARRAY);
        raw_u32(&r, GGUF_ARRAY); raw_u64(&r, 1); raw_u32(&r, GGUF_UINT8); raw_u64(&r, 1); raw_put(&r, "x", 1))
    RAW("unknown value type", "type", raw_head(&r, 3, 0, 1); raw_str(&r, "k"); raw_u32(&r, 13); raw_u64(&r, 0))
    RAW("array of unknown type", "array element type", raw_head(&r, 3, 0, 1); raw_str(&r, "k");
        raw_u32(&r, GGUF_ARRAY); raw_u32(&r, 200); raw_u64(&r, 0))
    RAW("string array length huge", "array length", raw_head(&r, 3, 0, 1); raw_str(&r, "k"); raw_u32(&r, GGUF_ARRAY);
        raw_u32(&r, GGUF_STRING); raw_u64(&r, (uint64_t)1 << 60); raw_str(&r, "a"))
    RAW("u32 array length overflows", "array", raw_head(&r, 3, 0, 1); raw_str(&r, "k"); raw_u32(&r, GGUF_ARRAY);
        raw_u32(&r, GGUF_UINT32); raw_u64(&r, (uint64_t)1 << 62); raw_u64(&r, 0))
    RAW("u64 array length huge", "past the end", raw_head(&r, 3, 0, 1); raw_str(&r, "k"); raw_u32(&r, GGUF_ARRAY);
        raw_u32(&r, GGUF_UINT64); raw_u64(&r, (uint64_t)1 << 58); raw_u64(&r, 0))
    RAW("string array runs past the end", "past the end", raw_head(&r, 3, 0, 1); raw_str(&r, "k");
        raw_u32(&r, GGUF_ARRAY); raw_u32(&r, GGUF_STRING); raw_u64(&r, 3); raw_str(&r, "ab"); raw_u64(&r, 100);
        raw_put(&r, "cd", 2))
    RAW("string array cut inside a length", "past the end", raw_head(&r, 3, 0, 1); raw_str(&r, "k");
        raw_u32(&r, GGUF_ARRAY); raw_u32(&r, GGUF_STRING); raw_u64(&r, 3); raw_str(&r, "a"); raw_str(&r, "b");
        raw_put(&r, "\0\0\0\0\0\0", 6))
    RAW("key length huge", "past the end", raw_head(&r, 3, 0, 1); raw_u64(&r, UINT64_MAX - 3);
        raw_put(&r, "k...............", 16))
    RAW("duplicate keys", "duplicate", raw_head(&r, 3, 0, 2); raw_str(&r, "a.b"); raw_u32(&r, GGUF_UINT8);
        raw_put(&r, "\x01", 1); raw_str(&r, "a.b"); raw_u32(&r, GGUF_UINT8); raw_put(&r, "\x02", 1))
    RAW("alignment 0", "alignment", raw_head(&r, 3, 0, 1); raw_str(&r, "general.alignment"); raw_u32(&r, GGUF_UINT32);
        raw_u32(&r, 0))
    RAW("alignment 48", "alignment", raw_head(&r, 3, 0, 1); raw_str(&r, "general.alignment"); raw_u32(&r, GGUF_UINT32);
        raw_u32(&r, 48))
    RAW("alignment 2^31", "alignment", raw_head(&r, 3, 0, 1); raw_str(&r, "general.alignment");
        raw_u32(&r, GGUF_UINT32); raw_u32(&r, 0x80000000u))
    RAW("alignment as a string", "alignment", raw_head(&r, 3, 0, 1); raw_str(&r, "general.alignment");
        raw_u32(&r, GGUF_STRING); raw_str(&r, "32"))
    RAW("alignment negative", "alignment", raw_head(&r, 3, 0, 1); raw_str(&r, "general.alignment");
        raw_u32(&r, GGUF_INT32); raw_u32(&r, (uint32_t)-32))
    RAW("tensor with an empty name", "name", raw_head(&r, 3, 1, 0); raw_str(&r, ""); raw_u32(&r, 1); raw_u64(&r, 4);
        raw_u32(&r, GGML_F32); raw_u64(&r, 0); raw_put(&r, "................................", 32))
    RAW("tensor without a data section", "truncated", raw_head(&r, 3, 1, 0); raw_str(&r, "t"); raw_u32(&r, 1);
        raw_u64(&r, 4); raw_u32(&r, GGML_F32); raw_u64(&r, 0))
    RAW("tensor of 4 dims overflowing", "shape", raw_head(&r, 3, 1, 0); raw_str(&r, "t"); raw_u32(&r, 4);
        raw_u64(&r, (uint64_t)1 << 20); raw_u64(&r, (uint64_t)1 << 20); raw_u64(&r, (uint64_t)1 << 20);
        raw_u64(&r, (uint64_t)1 << 20); raw_u32(&r, GGML_F32); raw_u64(&r, 0); raw_put(&r, "................", 16))
    RAW("tensor count impossible", "tensor count", raw_head(&r, 3, 1000, 0); raw_u64(&r, 0))
    RAW("tensor infos cut short", "truncated", raw_head(&r, 3, 1, 1); raw_str(&r, "k"); raw_u32(&r, GGUF_STRING);
        raw_str(&r, "a string long enough for the count bounds to pass"); raw_str(&r, "t"); raw_u32(&r, 2);
        raw_u64(&r, 4))
    RAW("zero-length file", "truncated", (void)0)
#undef RAW

    /* valid containers that are not models */
    r.len = 0;
    raw_head(&r, 3, 0, 0);
    expect_load("empty container", r.p, r.len, OB_ERR_FORMAT, "general.architecture");
    r.len = 0;
    raw_head(&r, 2, 0, 1);
    raw_str(&r, "general.architecture");
    raw_u32(&r, GGUF_STRING);
    raw_str(&r, "mamba");
    expect_load("mamba container (v2)", r.p, r.len, OB_ERR_UNSUPPORTED, "mamba");
    free(r.p);
}

/* A header-only prefix: the reader parses it and leaves tensor data NULL; the loader refuses. */
static void test_prefix(const uint8_t *buf, size_t len, const layout *L) {
    gguf_file g;
    char err[512];
    uint8_t *pre = patched(buf, L->data_start);
    int r = gguf_open_memory(&g, pre, L->data_start, len, err, sizeof err);
    CHECK(r == 0);
    if (r == 0) {
        CHECK(g.n_tensors == L->n_t && g.size == len && g.avail == L->data_start);
        int all_null = 1;
        for (uint64_t i = 0; i < g.n_tensors; i++) all_null &= g.tensors[i].data == NULL;
        CHECK(all_null);
        const gguf_tensor *t = gguf_find_tensor(&g, "token_embd.weight");
        CHECK(t && t->nbytes == (uint64_t)N_TOK * 18 && t->offset >= L->data_start);
        gguf_close(&g);
    }
    free(pre);
    /* a prefix that holds the first tensor */
    uint8_t *more = patched(buf, L->data_start + (size_t)N_TOK * 18);
    r = gguf_open_memory(&g, more, L->data_start + (size_t)N_TOK * 18, len, err, sizeof err);
    CHECK(r == 0);
    if (r == 0) {
        const gguf_tensor *t = gguf_find_tensor(&g, "token_embd.weight"), *u = gguf_find_tensor(&g, "output_norm.weight");
        CHECK(t && t->data == more + t->offset);
        CHECK(u && u->data == NULL);
        gguf_close(&g);
    }
    expect_load("header-only prefix", more, L->data_start + (size_t)N_TOK * 18, OB_ERR_FORMAT, "past the end");
    free(more);
    /* a prefix shorter than the header fails; avail > size is refused */
    uint8_t *cut = patched(buf, L->header_end - 1);
    CHECK(gguf_open_memory(&g, cut, L->header_end - 1, len, err, sizeof err) != 0 && contains_ci(err, "truncated"));
    CHECK(gguf_open_memory(&g, cut, L->header_end - 1, L->header_end - 2, err, sizeof err) != 0 && err[0]);
    CHECK(gguf_open_memory(&g, NULL, 0, 0, err, sizeof err) != 0 && err[0]);
    free(cut);
    /* a header-only partial load is for backends that stream weights themselves: the CPU
     * backends must refuse it instead of later reading weights that are not in memory */
    for (int b = 0; b < 2; b++) {
        ob_model_params pp = ob_model_default_params();
        pp.backend = b ? "scalar" : "cpu";
        uint8_t *img = patched(buf, L->header_end + 64 < len ? L->header_end + 64 : len);
        ob_model *pm = (ob_model *)0x1;
        CHECK(ob_model_load_partial(img, L->header_end + 64 < len ? L->header_end + 64 : len, len, &pp, &pm) ==
                  OB_ERR_ARG && contains_ci(ob_last_error(), "whole file") && pm == NULL);
    }
    ob_model *m = (ob_model *)0x1;
    CHECK(ob_model_load_memory(NULL, 10, NULL, &m) == OB_ERR_ARG && ob_last_error()[0]);
    CHECK(ob_model_load_memory(buf, len, NULL, NULL) == OB_ERR_ARG);
    CHECK(ob_model_load_file("/nonexistent/onebit/model.gguf", NULL, &m) == OB_ERR_IO &&
          contains_ci(ob_last_error(), "model.gguf") && m == NULL);
    CHECK(ob_model_load_file("/", NULL, &m) == OB_ERR_IO && ob_last_error()[0]);
}

/* ---- the loader's checks ----------------------------------------------------------------------- */

static void test_metadata(void) {
    spec s;
    char what[160];
#define ONE(name, want, needle, ...)                \
    s = base_spec();                                \
    __VA_ARGS__;                                    \
    expect_spec(name, &s, want, needle);
#define KEY(k, act) s.key[0] = (key_mut){k, act, 0, NULL}

    ONE("no general.architecture", OB_ERR_FORMAT, "general.architecture", KEY("general.architecture", K_OMIT))
    ONE("general.architecture is an integer", OB_ERR_FORMAT, "must be a string",
        KEY("general.architecture", K_INT))
    ONE("architecture mamba", OB_ERR_UNSUPPORTED, "mamba",
        s.key[0] = (key_mut){"general.architecture", K_SVALUE, 0, "mamba"})
    /* a runnable family, but the file's keys are under qwen3.*: llama.* keys are missing */
    ONE("architecture llama with qwen3 keys", OB_ERR_FORMAT, "llama.embedding_length",
        s.key[0] = (key_mut){"general.architecture", K_SVALUE, 0, "llama"})
    ONE("architecture qwen3 with a NUL", OB_ERR_UNSUPPORTED, "architecture",
        s.key[0] = (key_mut){"general.architecture", K_SVALUE, 0, "qwen3"})
    ONE("architecture gpt-j", OB_ERR_UNSUPPORTED, "gptj",
        s.key[0] = (key_mut){"general.architecture", K_SVALUE, 0, "gptj"})
    ONE("duplicate general.architecture", OB_ERR_FORMAT, "duplicate", KEY("general.architecture", K_DUP))
    ONE("duplicate block_count", OB_ERR_FORMAT, "duplicate", KEY("qwen3.block_count", K_DUP))
    ONE("general.alignment 0", OB_ERR_FORMAT, "alignment", s.key[0] = (key_mut){"general.alignment", K_VALUE, 0, NULL})
    ONE("general.alignment 3", OB_ERR_FORMAT, "alignment", s.key[0] = (key_mut){"general.alignment", K_VALUE, 3, NULL})
    ONE("general.alignment 96", OB_ERR_FORMAT, "alignment", s.key[0] = (key_mut){"general.alignment", K_VALUE, 96, NULL})
    ONE("general.alignment 2^20", OB_ERR_FORMAT, "alignment",
        s.key[0] = (key_mut){"general.alignment", K_VALUE, 1u << 20, NULL})
    ONE("general.alignment as a string", OB_ERR_FORMAT, "alignment", KEY("general.alignment", K_STRING))
    ONE("general.alignment 64 but data at 32", OB_ERR_FORMAT, NULL,
        s.key[0] = (key_mut){"general.alignment", K_VALUE, 64, NULL})

    /* integer hyperparameters: required ones missing, and every one zero, huge or mistyped */
    static const struct { const char *key; int required; } ints[] = {
        {"qwen3.embedding_length", 1}, {"qwen3.block_count", 1}, {"qwen3.feed_forward_length", 1},
        {"qwen3.attention.head_count", 1}, {"qwen3.attention.head_count_kv", 0},
        {"qwen3.attention.key_length", 0}, {"qwen3.attention.value_length", 0}, {"qwen3.context_length", 0},
    };
    static const struct { int act; const char *name; } bad_int[] = {
        {K_ZERO, "zero"}, {K_HUGE, "2^32-1"}, {K_HUGE64, "2^40 as u64"}, {K_STRING, "a string"},
        {K_FLOAT, "a float"}, {K_NEG, "-1"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (ints[i].required) {
            snprintf(what, sizeof what, "%s missing", ints[i].key);
            ONE(what, OB_ERR_FORMAT, ints[i].key, KEY(ints[i].key, K_OMIT))
        }
        for (size_t j = 0; j < sizeof bad_int / sizeof bad_int[0]; j++) {
            snprintf(what, sizeof what, "%s %s", ints[i].key, bad_int[j].name);
            ONE(what, OB_ERR_FORMAT, ints[i].key, KEY(ints[i].key, bad_int[j].act))
        }
    }
    ONE("head_count_kv missing (defaults to head_count)", OB_ERR_FORMAT, "attn_k",
        KEY("qwen3.attention.head_count_kv", K_OMIT))
    ONE("block_count larger than the tensors", OB_ERR_FORMAT, "blk.2.",
        s.key[0] = (key_mut){"qwen3.block_count", K_VALUE, 1000, NULL})
    ONE("block_count above the limit", OB_ERR_FORMAT, "block_count",
        s.key[0] = (key_mut){"qwen3.block_count", K_VALUE, 100000, NULL})
    ONE("embedding_length not matching the tensors", OB_ERR_FORMAT, "token_embd",
        s.key[0] = (key_mut){"qwen3.embedding_length", K_VALUE, 256, NULL})
    ONE("feed_forward_length not matching", OB_ERR_FORMAT, "ffn_gate",
        s.key[0] = (key_mut){"qwen3.feed_forward_length", K_VALUE, 384, NULL})
    ONE("head_count not a multiple of head_count_kv", OB_ERR_FORMAT, "multiple",
        s.key[0] = (key_mut){"qwen3.attention.head_count_kv", K_VALUE, 3, NULL})
    ONE("head_count_kv above head_count", OB_ERR_FORMAT, "head_count",
        s.key[0] = (key_mut){"qwen3.attention.head_count_kv", K_VALUE, 4, NULL})
    ONE("odd head dimension", OB_ERR_FORMAT, "even",
        s.key[0] = (key_mut){"qwen3.attention.key_length", K_VALUE, 63, NULL};
        s.key[1] = (key_mut){"qwen3.attention.value_length", K_VALUE, 63, NULL})
    ONE("value_length differs from key_length", OB_ERR_UNSUPPORTED, "value_length",
        s.key[0] = (key_mut){"qwen3.attention.value_length", K_VALUE, 128, NULL})
    ONE("head_count x key_length too wide", OB_ERR_FORMAT, NULL,
        s.key[0] = (key_mut){"qwen3.attention.head_count", K_VALUE, 4096, NULL};
        s.key[1] = (key_mut){"qwen3.attention.key_length", K_VALUE, 4096, NULL};
        s.key[2] = (key_mut){"qwen3.attention.value_length", K_VALUE, 4096, NULL})
    ONE("key_length default of 0 (more heads than embedding)", OB_ERR_FORMAT, "key_length",
        s.key[0] = (key_mut){"qwen3.attention.head_count", K_VALUE, 256, NULL};
        s.key[1] = (key_mut){"qwen3.attention.key_length", K_OMIT, 0, NULL};
        s.key[2] = (key_mut){"qwen3.attention.head_count_kv", K_VALUE, 256, NULL})

    static const char *floats[] = {"qwen3.rope.freq_base", "qwen3.attention.layer_norm_rms_epsilon"};
    static const struct { int act; const char *name; } bad_f[] = {
        {K_ZERO, "zero"}, {K_NAN, "NaN"}, {K_INF, "inf"}, {K_NEGF, "negative"}, {K_STRING, "a string"},
        {K_INT, "an integer"},
    };
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < sizeof bad_f / sizeof bad_f[0]; j++) {
            snprintf(what, sizeof what, "%s %s", floats[i], bad_f[j].name);
            ONE(what, OB_ERR_FORMAT, floats[i], KEY(floats[i], bad_f[j].act))
        }
#undef KEY
}

static void test_tensors(void) {
    static const char *const roles[] = {
        "token_embd.weight",          "output.weight",          "output_norm.weight",
        "blk.1.attn_norm.weight",     "blk.1.attn_q.weight",    "blk.1.attn_k.weight",
        "blk.1.attn_v.weight",        "blk.1.attn_output.weight", "blk.1.attn_q_norm.weight",
        "blk.1.attn_k_norm.weight",   "blk.1.ffn_norm.weight",  "blk.1.ffn_gate.weight",
        "blk.1.ffn_up.weight",        "blk.1.ffn_down.weight",  "blk.0.attn_norm.weight",
        "blk.0.ffn_down.weight",
    };
    char what[160];
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        const char *r = roles[i];
        int is_vec = strstr(r, "norm") != NULL;
        int is_down = strstr(r, "ffn_down") != NULL; /* the only rows of 256: Q4_K fits */
        spec s = base_spec();
        s.tied = strcmp(r, "output.weight") != 0;
        s.tensor = r;
#define CASE(label, act, type, want, needle)                     \
        s.t_act = act;                                           \
        s.t_type = type;                                         \
        snprintf(what, sizeof what, "%s %s", r, label);          \
        expect_spec(what, &s, want, needle);
        if (strcmp(r, "output.weight") != 0) { CASE("missing", T_OMIT, 0, OB_ERR_FORMAT, r) }
        CASE("of the wrong shape", T_SHAPE, 0, OB_ERR_FORMAT, r)
        CASE("duplicated", T_DUP, 0, OB_ERR_FORMAT, "duplicate")
        if (is_vec) {
            CASE("in q8_0", T_TYPE, GGML_Q8_0, OB_ERR_UNSUPPORTED, r)
            CASE("in i32", T_TYPE, GGML_I32, OB_ERR_UNSUPPORTED, r)
            CASE("in q4_k (row too short)", T_TYPE, GGML_Q4_K, OB_ERR_FORMAT, "block")
            CASE("containing NaN", T_NAN, 0, OB_ERR_FORMAT, "non-finite")
            CASE("containing inf", T_INF, 0, OB_ERR_FORMAT, "non-finite")
        } else {
            CASE("three-dimensional", T_3D, 0, OB_ERR_FORMAT, r)
            /* Every type of the table runs (random bytes decode to some values: loading must not care). */
            CASE("in q4_0", T_TYPE, GGML_Q4_0, OB_OK, NULL)
            CASE("in i8", T_TYPE, GGML_I8, OB_ERR_UNSUPPORTED, r)
            CASE("in iq2_xxs (a type the reader cannot size)", T_TYPE, 16, -1, NULL)
            if (is_down) { CASE("in q4_k", T_TYPE, GGML_Q4_K, OB_OK, NULL) }
            else { CASE("in q4_k (row too short)", T_TYPE, GGML_Q4_K, OB_ERR_FORMAT, "block") }
        }
#undef CASE
    }
    spec s = base_spec();
    s.n_rows = N_TOK - 1;
    expect_spec("vocabulary larger than the embedding", &s, OB_ERR_FORMAT, "embedding");
}

static void test_tokenizer(void) {
    static const struct { int act; int want; const char *needle; const char *name; } cases[] = {
        {TK_NO_MODEL, OB_ERR_FORMAT, "tokenizer", "no tokenizer model"},
        {TK_MODEL_OTHER, OB_ERR_UNSUPPORTED, "bert", "tokenizer model bert (WordPiece)"},
        {TK_MODEL_INT, OB_ERR_FORMAT, "must be a string", "tokenizer model is an integer"},
        {TK_PRE_OTHER, OB_ERR_UNSUPPORTED, "chameleon", "pre-tokenizer chameleon"},
        {TK_NO_TOKENS, OB_ERR_FORMAT, "tokenizer.ggml.tokens", "no tokens"},
        {TK_TOKENS_I32, OB_ERR_FORMAT, "tokenizer.ggml.tokens", "tokens as integers"},
        {TK_TOKENS_EMPTY, OB_ERR_FORMAT, "vocabulary", "no tokens in the array"},
        {TK_TOKENS_SCALAR, OB_ERR_FORMAT, "tokenizer.ggml.tokens", "tokens as a string"},
        {TK_NO_MERGES, OB_ERR_FORMAT, "merges", "no merges"},
        {TK_MERGES_I32, OB_ERR_FORMAT, "merges", "merges as integers"},
        {TK_TYPES_SHORT, OB_ERR_FORMAT, "token_type", "token types shorter"},
        {TK_TYPES_LONG, OB_ERR_FORMAT, "token_type", "token types longer"},
        {TK_TYPES_STR, OB_ERR_FORMAT, "token_type", "token types as strings"},
        {TK_TYPES_F32, OB_ERR_FORMAT, "token_type", "token types as floats"},
        {TK_TYPES_SCALAR, OB_ERR_FORMAT, "token_type", "token types as a scalar"},
        {TK_MERGE_UNKNOWN, OB_ERR_FORMAT, "merge", "merge of unknown tokens"},
        {TK_MERGE_NO_SPACE, OB_ERR_FORMAT, "merge", "merge without a space"},
        {TK_MERGE_NO_RESULT, OB_ERR_FORMAT, "merge", "merge whose result is not a token"},
        {TK_NO_BYTE, OB_ERR_FORMAT, "byte", "a byte without a token"},
        {TK_LONG_TOKEN, OB_ERR_FORMAT, "too long", "a token of 70000 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec s = base_spec();
        s.tok = cases[i].act;
        if (s.tok == TK_LONG_TOKEN) s.n_rows = N_TOK + 1;
        expect_spec(cases[i].name, &s, cases[i].want, cases[i].needle);
    }
}

/* ---- seeds for the fuzzer ------------------------------------------------------------------------ */

static int write_seeds(const char *dir) {
    struct { const char *name; spec s; } v[4];
    v[0].name = "base.gguf";
    v[0].s = base_spec();
    v[1].name = "one-layer-untied.gguf";
    v[1].s = base_spec();
    v[1].s.n_layer = 1;
    v[1].s.n_ff = 128;
    v[1].s.tied = 0;
    v[2].name = "one-layer-q8_0-f16.gguf";
    v[2].s = base_spec();
    v[2].s.n_layer = 1;
    v[2].s.n_ff = 128;
    v[2].s.mat_type = GGML_Q8_0;
    v[2].s.norm_type = GGML_F16;
    v[3].name = "one-layer-align64-extra.gguf";
    v[3].s = base_spec();
    v[3].s.n_layer = 1;
    v[3].s.n_ff = 128;
    v[3].s.alignment = 64;
    v[3].s.extra = 1;
    for (int i = 0; i < 4; i++) {
        uint8_t *buf;
        size_t len;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, v[i].name);
        FILE *f = build(&v[i].s, &buf, &len) == 0 ? fopen(path, "wb") : NULL;
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "test_hostile: cannot write %s\n", path);
            return 1;
        }
        free(buf);
    }
    return 0;
}

/* PrismML's llama.cpp fork: its own tensor types (PQ2_0 = 142, PTQ1_0 = 143) and Hadamard-rotation
 * keys are refused as unsupported, by name; upstream's Q2_0/TQ1_0/TQ2_0 load. */
static void test_prism(void) {
    static const struct { uint32_t type; const char *name; } fork[] = {{GGUF_PRISM_PQ2_0, "PQ2_0"},
                                                                      {GGUF_PRISM_PTQ1_0, "PTQ1_0"}};
    static const char NAME[] = "blk.1.ffn_up.weight";
    char what[96];
    for (size_t i = 0; i < 2; i++) {
        /* a valid file whose tensor info of NAME has its type id replaced */
        spec s = base_spec();
        uint8_t *buf;
        size_t len;
        if (build(&s, &buf, &len) != 0) {
            printf("FAIL prism: cannot build the model\n");
            failures++;
            return;
        }
        uint8_t *p = NULL;
        for (size_t o = 0; o + sizeof NAME < len && !p; o++)
            if (memcmp(buf + o, NAME, sizeof NAME - 1) == 0) p = buf + o;
        if (!p) {
            printf("FAIL prism: tensor info of %s not found\n", NAME);
            failures++;
            free(buf);
            return;
        }
        p += sizeof NAME - 1;
        p += 4 + 8 * (size_t)p[0]; /* n_dims (u32, small), then n_dims u64 dims */
        for (int b = 0; b < 4; b++) p[b] = (uint8_t)(fork[i].type >> (8 * b));
        snprintf(what, sizeof what, "tensor of the fork-only type %s", fork[i].name);
        expect_load(what, buf, len, OB_ERR_UNSUPPORTED, fork[i].name);
        free(buf);
    }
    spec s = base_spec();
    s.extra_key = "prism.hadamard.block_size";
    expect_spec("prism.hadamard.* metadata", &s, OB_ERR_UNSUPPORTED, "prism.hadamard.block_size");
    static const uint32_t upstream[] = {GGML_Q2_0, GGML_TQ1_0, GGML_TQ2_0};
    for (size_t i = 0; i < 3; i++) {
        s = base_spec();
        s.mat_type = upstream[i];
        s.n_embd = 256; /* TQ rows are blocks of 256 */
        s.head_dim = 128;
        snprintf(what, sizeof what, "upstream type %u matrices", upstream[i]);
        expect_spec(what, &s, OB_OK, NULL);
    }
}

int main(int argc, char **argv) {
    init_bytes();
    verbose = getenv("HOSTILE_VERBOSE") != NULL;
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);

    spec s = base_spec();
    uint8_t *buf;
    size_t len;
    if (build(&s, &buf, &len) != 0) {
        printf("FAIL cannot build the valid model\n");
        return 1;
    }
    layout L;
    walk(buf, len, &L);
    test_valid(buf, len);
    test_legal_variants();
    test_truncation(buf, len, &L);
    test_patches(buf, len, &L);
    test_raw();
    test_prefix(buf, len, &L);
    test_metadata();
    test_tensors();
    test_tokenizer();
    test_prism();
    free(buf);
    if (failures) printf("test_hostile: %d failures\n", failures);
    return failures != 0;
}
