/* convert.c — `onebit convert DIR OUT.gguf`: a Hugging Face checkpoint folder to GGUF.
 *
 * Reads config.json (architectures[0] picks the family), the weights (model.safetensors, or the
 * shards model.safetensors.index.json names, or every *.safetensors file), tokenizer.json and
 * tokenizer_config.json (special tokens, add_bos_token, the chat template; chat_template.jinja
 * when present), and writes what llama.cpp's convert_hf_to_gguf.py writes for these families:
 * llama.cpp's tensor names and metadata keys, matrices as [in, out] rows, Llama's q/k rows
 * permuted from Hugging Face's rotate-half order to GGUF's adjacent pairs, Gemma's norms + 1,
 * Llama 3.1's RoPE frequency factors as rope_freqs.weight. Matrices are written in --type (default:
 * the checkpoint's own float type; any type of `onebit quantize` works, so one step gives a Q1_0
 * file), one-dimensional tensors in F32. Tokenizers: byte-level BPE (tokenizer.json "BPE" with a
 * ByteLevel pre-tokenizer: Qwen2/3, Llama 3, GPT-2/Phi-2); SentencePiece models are refused with a
 * message. Safetensors files are read as hostile (safetensors.h), as the JSON files are.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gguf.h"
#include "gguf_out.h"
#include "quant.h"
#include "quantize.h"
#include "safetensors.h"

static const char CONVERT_USAGE[] =
    "usage: onebit convert DIR OUT.gguf [--type TYPE] [--name NAME] [-f]\n"
    "Converts a Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json,\n"
    "tokenizer_config.json) of a Qwen3, Qwen2, Llama (3.x) or Phi-2 model to GGUF, with its tokenizer\n"
    "and chat template.\n"
    "  --type TYPE     type of the weight matrices: f32, f16, bf16 (default: the checkpoint's), or\n"
    "                  q8_0, q4_0, q4_K, q2_0, q1_0 (quantised directly, as `onebit quantize`)\n"
    "  --name NAME     general.name (default: the folder's name)\n"
    "  -f, --force     replace OUT if it exists\n"
    "Exit codes: 0 ok, 1 failure (e.g. writing OUT), 2 usage, 3 unreadable folder or file,\n"
    "4 invalid or unsupported checkpoint.\n";

#define PROG "onebit convert"
enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

typedef struct family {
    const char *hf, *arch;
    int permute_qk;    /* Llama: rotate-half rows to adjacent pairs */
    int norm_plus_one; /* Gemma */
    int layernorm;     /* Phi-2: LayerNorm (eps key), partial rotary, biases */
} family;

static const family FAMILIES[] = {
    {"Qwen3ForCausalLM", "qwen3", 0, 0, 0},
    {"Qwen2ForCausalLM", "qwen2", 0, 0, 0},
    {"LlamaForCausalLM", "llama", 1, 0, 0},
    {"PhiForCausalLM", "phi2", 0, 0, 1},
};

/* Hugging Face names (after "model.layers.N.") -> llama.cpp's (after "blk.N."). */
static const struct { const char *hf, *gg; } LAYER_NAMES[] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},     {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},     {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},     {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"}, {"self_attn.dense.weight", "attn_output.weight"},
    {"self_attn.dense.bias", "attn_output.bias"},     {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"}, {"input_layernorm.weight", "attn_norm.weight"},
    {"input_layernorm.bias", "attn_norm.bias"},       {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},      {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},      {"mlp.fc1.weight", "ffn_up.weight"},
    {"mlp.fc1.bias", "ffn_up.bias"},                  {"mlp.fc2.weight", "ffn_down.weight"},
    {"mlp.fc2.bias", "ffn_down.bias"},
};
static const struct { const char *hf, *gg; } GLOBAL_NAMES[] = {
    {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
    {"model.final_layernorm.weight", "output_norm.weight"}, {"model.final_layernorm.bias", "output_norm.bias"},
    {"lm_head.weight", "output.weight"}, {"lm_head.bias", "output.bias"},
};

/* ---- small helpers ----------------------------------------------------------------------------- */

static char *read_text(const char *dir, const char *name, size_t *len_out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t len;
    char *s = cli_read_all(f, &len);
    fclose(f);
    if (s && len_out) *len_out = len;
    return s;
}

static cJSON *read_json(const char *dir, const char *name, int required, int *rc) {
    size_t len;
    char *s = read_text(dir, name, &len);
    if (!s) {
        if (required) {
            fprintf(stderr, PROG ": cannot read %s/%s: %s\n", dir, name, strerror(errno));
            *rc = 3;
        }
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(s, len);
    free(s);
    if (!j) {
        fprintf(stderr, PROG ": %s/%s is not valid JSON\n", dir, name);
        *rc = 4;
    }
    return j;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* A positive integer of config.json (or 0 when absent and not required). */
static int cfg_int(const cJSON *cfg, const char *k, int required, long *out, int *rc) {
    const cJSON *v = get(cfg, k);
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            fprintf(stderr, PROG ": config.json lacks %s\n", k);
            *rc = 4;
            return -1;
        }
        *out = 0;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > (1 << 30) || floor(v->valuedouble) != v->valuedouble) {
        fprintf(stderr, PROG ": config.json's %s is not a positive integer\n", k);
        *rc = 4;
        return -1;
    }
    *out = (long)v->valuedouble;
    return 0;
}

static double cfg_num(const cJSON *cfg, const char *k, double dflt) {
    const cJSON *v = get(cfg, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

/* A special token of tokenizer_config.json: a string, or {"content": ...}. */
static const char *tok_content(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = get(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* ---- the weights -------------------------------------------------------------------------------- */

typedef struct shards {
    st_file *f;
    size_t n;
} shards;

static int name_ok(const char *s) { /* a file in DIR, nothing else */
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\') && strlen(s) < 1024;
}

static int add_shard(shards *sh, const char *dir, const char *name) {
    st_file *nf = realloc(sh->f, (sh->n + 1) * sizeof *nf);
    if (!nf) return cli_fail(OB_ERR_NOMEM, "reading the weights");
    sh->f = nf;
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (st_open(&sh->f[sh->n], path, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, err);
        return strstr(err, "cannot open") ? 3 : 4;
    }
    sh->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int open_shards(const char *dir, shards *sh) {
    int rc = 0;
    cJSON *idx = read_json(dir, "model.safetensors.index.json", 0, &rc);
    if (rc) return rc;
    char **names = NULL;
    size_t n = 0;
    if (idx) {
        const cJSON *wm = get(idx, "weight_map"), *e;
        if (!cJSON_IsObject(wm)) {
            fprintf(stderr, PROG ": model.safetensors.index.json has no weight_map object\n");
            cJSON_Delete(idx);
            return 4;
        }
        cJSON_ArrayForEach(e, wm) {
            if (!cJSON_IsString(e) || !name_ok(e->valuestring)) {
                fprintf(stderr, PROG ": model.safetensors.index.json names a bad file for '%.200s'\n", e->string ? e->string : "");
                rc = 4;
                break;
            }
            int seen = 0;
            for (size_t i = 0; i < n && !seen; i++) seen = strcmp(names[i], e->valuestring) == 0;
            if (seen) continue;
            char **nn = realloc(names, (n + 1) * sizeof *nn);
            if (!nn || !(nn[n] = strdup(e->valuestring))) { names = nn ? nn : names; rc = cli_fail(OB_ERR_NOMEM, "reading the index"); break; }
            names = nn;
            n++;
        }
        cJSON_Delete(idx);
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, PROG ": cannot open the folder '%s': %s\n", dir, strerror(errno));
            return 3;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            const size_t l = strlen(de->d_name);
            if (l < 12 || strcmp(de->d_name + l - 12, ".safetensors") != 0 || !name_ok(de->d_name)) continue;
            char **nn = realloc(names, (n + 1) * sizeof *nn);
            if (!nn || !(nn[n] = strdup(de->d_name))) { names = nn ? nn : names; rc = cli_fail(OB_ERR_NOMEM, "listing the folder"); break; }
            names = nn;
            n++;
        }
        closedir(d);
        if (!rc && n == 0) {
            fprintf(stderr, PROG ": no *.safetensors file in '%s'\n", dir);
            rc = 3;
        }
    }
    if (!rc) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !rc; i++) rc = add_shard(sh, dir, names[i]);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static void close_shards(shards *sh) {
    for (size_t i = 0; i < sh->n; i++) st_close(&sh->f[i]);
    free(sh->f);
}

/* ---- the tensor plan ----------------------------------------------------------------------------- */

typedef struct out_tensor {
    char name[96];
    const st_tensor *src;       /* NULL: computed (rope_freqs) */
    uint32_t n_dims;
    uint64_t ne[2];             /* GGUF order: ne[0] = elements per row */
    uint32_t type;
    uint64_t nbytes, offset;
    int permute_heads;          /* > 0: Llama q/k rows, that many heads */
    int plus_one;               /* Gemma norms */
} out_tensor;

static int map_name(const char *hf, char *gg, size_t cap) {
    for (size_t i = 0; i < sizeof GLOBAL_NAMES / sizeof *GLOBAL_NAMES; i++)
        if (strcmp(hf, GLOBAL_NAMES[i].hf) == 0) {
            snprintf(gg, cap, "%s", GLOBAL_NAMES[i].gg);
            return 0;
        }
    int layer, off = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &off) == 1 && off > 0 && layer >= 0)
        for (size_t i = 0; i < sizeof LAYER_NAMES / sizeof *LAYER_NAMES; i++)
            if (strcmp(hf + off, LAYER_NAMES[i].hf) == 0) {
                snprintf(gg, cap, "blk.%d.%s", layer, LAYER_NAMES[i].gg);
                return 0;
            }
    return -1;
}

static int ends(const char *s, const char *suffix) {
    const size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Buffers some checkpoints carry that GGUF recomputes. */
static int ignorable(const char *hf) { return ends(hf, "rotary_emb.inv_freq"); }

/* ---- the vocabulary ---------------------------------------------------------------------------------- */

typedef struct vocab {
    char **tok;
    int32_t *type;
    long n;
    char **merge;
    size_t n_merges;
    const char *pre;
} vocab;

static void free_vocab(vocab *v) {
    for (long i = 0; i < v->n; i++) free(v->tok[i]);
    for (size_t i = 0; i < v->n_merges; i++) free(v->merge[i]);
    free(v->tok);
    free(v->type);
    free(v->merge);
}

static int set_tok(vocab *v, double id, const char *s, int type) {
    if (!(id >= 0) || id >= (double)v->n || floor(id) != id) {
        fprintf(stderr, PROG ": tokenizer.json: token id %g outside the model's vocabulary of %ld\n", id, v->n);
        return 4;
    }
    const long i = (long)id;
    if (v->tok[i] && strcmp(v->tok[i], s) != 0) {
        fprintf(stderr, PROG ": tokenizer.json: token id %ld given twice\n", i);
        return 4;
    }
    free(v->tok[i]);
    if (!(v->tok[i] = strdup(s))) return cli_fail(OB_ERR_NOMEM, "reading the vocabulary");
    v->type[i] = type;
    return 0;
}

/* The pre-tokenizer llama.cpp would name, from tokenizer.json's own pre_tokenizer. */
static const char *pre_name(const cJSON *pre) {
    const cJSON *type = get(pre, "type");
    if (!cJSON_IsString(type)) return NULL;
    if (strcmp(type->valuestring, "ByteLevel") == 0) return "gpt-2";
    if (strcmp(type->valuestring, "Sequence") != 0) return NULL;
    const cJSON *e;
    const char *found = NULL;
    cJSON_ArrayForEach(e, get(pre, "pretokenizers")) {
        const cJSON *t = get(e, "type"), *pat = get(get(e, "pattern"), "Regex");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "Split") == 0 && cJSON_IsString(pat)) {
            const char *r = pat->valuestring;
            if (strstr(r, "\\p{N}{1,3}")) found = "llama-bpe";
            else if (strstr(r, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|")) found = "qwen2";
            else return NULL;
        }
    }
    return found;
}

static int load_vocab(const char *dir, long n_vocab, vocab *v) {
    int rc = 0;
    cJSON *j = read_json(dir, "tokenizer.json", 1, &rc);
    if (!j) return rc;
    const cJSON *model = get(j, "model"), *tv = get(model, "vocab"), *merges = get(model, "merges"), *mt = get(model, "type");
    if (!cJSON_IsString(mt) || strcmp(mt->valuestring, "BPE") != 0 || !cJSON_IsObject(tv) || !cJSON_IsArray(merges)) {
        fprintf(stderr, PROG ": tokenizer.json: only byte-level BPE tokenizers are converted (this one is %s)\n",
                cJSON_IsString(mt) ? mt->valuestring : "of no known type");
        cJSON_Delete(j);
        return 4;
    }
    if (cJSON_IsTrue(get(model, "byte_fallback")) || !(v->pre = pre_name(get(j, "pre_tokenizer")))) {
        fprintf(stderr, PROG ": tokenizer.json: a SentencePiece-style or unknown pre-tokenizer; only byte-level BPE "
                        "(Qwen2/3, Llama 3, GPT-2) is converted\n");
        cJSON_Delete(j);
        return 4;
    }
    v->n = n_vocab;
    v->tok = calloc((size_t)n_vocab, sizeof *v->tok);
    v->type = calloc((size_t)n_vocab, sizeof *v->type);
    if (!v->tok || !v->type) { cJSON_Delete(j); return cli_fail(OB_ERR_NOMEM, "reading the vocabulary"); }
    const cJSON *e;
    cJSON_ArrayForEach(e, tv) {
        if (!cJSON_IsNumber(e)) { fprintf(stderr, PROG ": tokenizer.json: vocab entry without an id\n"); rc = 4; break; }
        if ((rc = set_tok(v, e->valuedouble, e->string, TT_NORMAL))) break;
    }
    cJSON_ArrayForEach(e, get(j, "added_tokens")) {
        if (rc) break;
        const cJSON *id = get(e, "id"), *content = get(e, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content)) { fprintf(stderr, PROG ": tokenizer.json: malformed added token\n"); rc = 4; break; }
        const char *c = content->valuestring;
        const size_t l = strlen(c);
        /* as llama.cpp: <|...|> tokens are control tokens even when not marked special */
        const int ctl = cJSON_IsTrue(get(e, "special")) || (l >= 4 && !strncmp(c, "<|", 2) && !strcmp(c + l - 2, "|>"));
        rc = set_tok(v, id->valuedouble, c, ctl ? TT_CONTROL : TT_USER_DEFINED);
    }
    for (long i = 0; i < n_vocab && !rc; i++) {
        if (v->tok[i]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%ld]", i);
        rc = set_tok(v, (double)i, buf, TT_UNUSED);
    }
    const int nm = cJSON_GetArraySize(merges);
    if (!rc && nm > 0 && !(v->merge = calloc((size_t)nm, sizeof *v->merge))) rc = cli_fail(OB_ERR_NOMEM, "reading merges");
    cJSON_ArrayForEach(e, merges) {
        if (rc) break;
        char *m = NULL;
        if (cJSON_IsString(e)) m = strdup(e->valuestring);
        else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                 cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            const char *a = cJSON_GetArrayItem(e, 0)->valuestring, *b = cJSON_GetArrayItem(e, 1)->valuestring;
            if ((m = malloc(strlen(a) + strlen(b) + 2))) sprintf(m, "%s %s", a, b);
        } else {
            fprintf(stderr, PROG ": tokenizer.json: malformed merge #%zu\n", v->n_merges);
            rc = 4;
            break;
        }
        if (!m) { rc = cli_fail(OB_ERR_NOMEM, "reading merges"); break; }
        v->merge[v->n_merges++] = m;
    }
    cJSON_Delete(j);
    return rc;
}

static long find_tok(const vocab *v, const char *s) {
    if (!s) return -1;
    for (long i = v->n - 1; i >= 0; i--)
        if (strcmp(v->tok[i], s) == 0) return i;
    return -1;
}

/* ---- writing --------------------------------------------------------------------------------------- */

typedef struct job {
    const family *fam;
    const cJSON *cfg;
    const char *name, *arch;
    long n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, n_ctx, n_rot;
    double eps, theta;
    const char *rope_type;   /* NULL, "linear", "llama3" */
    double rope_factor, low_ff, high_ff, orig_ctx;
    vocab v;
    const char *bos, *eos, *pad;
    int add_bos, add_eos;    /* -1: not said */
    char *tmpl;
    const ob_quantizer *mat; /* type of the matrices */
    out_tensor *t;
    size_t nt;
    float *rope_freqs;
} job;

static void write_header(gguf_out *o, const job *J, uint64_t n_kv) {
    char k[128];
    gout_header(o, J->nt, n_kv);
#define KEY(s) (snprintf(k, sizeof k, "%s." s, J->arch), k)
    gout_kv_str(o, "general.architecture", J->arch);
    gout_kv_str(o, "general.type", "model");
    gout_kv_str(o, "general.name", J->name);
    gout_kv_u32(o, KEY("block_count"), (uint32_t)J->n_layer);
    gout_kv_u32(o, KEY("context_length"), (uint32_t)J->n_ctx);
    gout_kv_u32(o, KEY("embedding_length"), (uint32_t)J->n_embd);
    gout_kv_u32(o, KEY("feed_forward_length"), (uint32_t)J->n_ff);
    gout_kv_u32(o, KEY("attention.head_count"), (uint32_t)J->n_head);
    gout_kv_u32(o, KEY("attention.head_count_kv"), (uint32_t)J->n_head_kv);
    gout_kv_f32(o, KEY("rope.freq_base"), (float)J->theta);
    if (J->fam->layernorm) gout_kv_f32(o, KEY("attention.layer_norm_epsilon"), (float)J->eps);
    else gout_kv_f32(o, KEY("attention.layer_norm_rms_epsilon"), (float)J->eps);
    if (J->head_dim != J->n_embd / J->n_head || !strcmp(J->arch, "qwen3")) {
        gout_kv_u32(o, KEY("attention.key_length"), (uint32_t)J->head_dim);
        gout_kv_u32(o, KEY("attention.value_length"), (uint32_t)J->head_dim);
    }
    if (J->n_rot != J->head_dim || !strcmp(J->arch, "llama") || J->fam->layernorm)
        gout_kv_u32(o, KEY("rope.dimension_count"), (uint32_t)J->n_rot);
    if (J->rope_type && !strcmp(J->rope_type, "linear")) {
        gout_kv_str(o, KEY("rope.scaling.type"), "linear");
        gout_kv_f32(o, KEY("rope.scaling.factor"), (float)J->rope_factor);
    }
    gout_kv_u32(o, KEY("vocab_size"), (uint32_t)J->v.n);
#undef KEY
    gout_kv_u32(o, "general.file_type", J->mat->file_type);
    gout_kv_u32(o, "general.quantization_version", 2);
    gout_kv_str(o, "tokenizer.ggml.model", "gpt2");
    gout_kv_str(o, "tokenizer.ggml.pre", J->v.pre);
    gout_kv_arr_str(o, "tokenizer.ggml.tokens", J->v.tok, (size_t)J->v.n);
    gout_kv_arr_i32(o, "tokenizer.ggml.token_type", J->v.type, (size_t)J->v.n);
    gout_kv_arr_str(o, "tokenizer.ggml.merges", J->v.merge, J->v.n_merges);
    const long eos = find_tok(&J->v, J->eos), bos = find_tok(&J->v, J->bos), pad = find_tok(&J->v, J->pad);
    if (eos >= 0) gout_kv_u32(o, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (bos >= 0) gout_kv_u32(o, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (pad >= 0) gout_kv_u32(o, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
    if (J->add_bos >= 0) gout_kv_bool(o, "tokenizer.ggml.add_bos_token", J->add_bos);
    if (J->add_eos >= 0) gout_kv_bool(o, "tokenizer.ggml.add_eos_token", J->add_eos);
    if (J->tmpl) gout_kv_str(o, "tokenizer.chat_template", J->tmpl);
    for (size_t i = 0; i < J->nt; i++)
        gout_tensor_info(o, J->t[i].name, strlen(J->t[i].name), J->t[i].n_dims, J->t[i].ne, J->t[i].type, J->t[i].offset);
    gout_pad(o, 32);
}

/* Writes one tensor: rows converted to float, permuted / shifted as the family needs, encoded. */
static int write_tensor(gguf_out *o, const out_tensor *t, const float *computed, uint8_t *out, float *row) {
    const uint64_t cols = t->ne[0], rows = t->n_dims > 1 ? t->ne[1] : 1;
    const ob_quantizer *q = ob_quantizer_find(t->type);
    const size_t out_row = (size_t)(cols / (uint64_t)q->block * (uint64_t)q->bytes);
    /* Llama's q/k: GGUF row h*hd + 2i + j is Hugging Face row h*hd + j*hd/2 + i (for a bias, the
     * element) */
    const uint64_t n_perm = t->n_dims > 1 ? rows : cols;
    const uint64_t hd = t->permute_heads > 0 ? n_perm / (uint64_t)t->permute_heads : 1;
#define PERM(r) (t->permute_heads > 0 ? (r) / hd * hd + (r) % hd % 2 * (hd / 2) + (r) % hd / 2 : (r))
    for (uint64_t r = 0; r < rows; r++) {
        const uint64_t src = t->n_dims > 1 ? PERM(r) : r;
        for (uint64_t c = 0; c < cols; c++) {
            const uint64_t at = t->n_dims > 1 ? src * cols + c : PERM(c);
            float x = computed ? computed[at] : st_get_f32(t->src, at);
            if (t->plus_one) x += 1.0f;
            row[c] = x;
        }
        q->quantize(row, out + (size_t)r * out_row, (size_t)cols);
    }
#undef PERM
    gout_put(o, out, (size_t)t->nbytes);
    gout_pad(o, 32);
    return 0;
}

/* Llama 3.1's RoPE frequency factors (Meta's published rule): high frequencies kept, low ones
 * divided by the factor, a smooth blend between. */
static float *llama3_rope_freqs(const job *J) {
    const long n = J->n_rot / 2;
    float *f = malloc((size_t)n * sizeof *f);
    if (!f) return NULL;
    const double lo_wl = J->orig_ctx / J->low_ff, hi_wl = J->orig_ctx / J->high_ff;
    for (long i = 0; i < n; i++) {
        const double freq = 1.0 / pow(J->theta, (double)(2 * i) / (double)J->n_rot);
        const double wl = 2 * M_PI / freq;
        double k;
        if (wl < hi_wl) k = 1;
        else if (wl > lo_wl) k = J->rope_factor;
        else {
            const double s = (J->orig_ctx / wl - J->low_ff) / (J->high_ff - J->low_ff);
            k = 1 / ((1 - s) / J->rope_factor + s);
        }
        f[i] = (float)k;
    }
    return f;
}

int cmd_convert(int argc, char **argv) {
    const char *pos[2] = {0}, *type_name = NULL, *name = NULL;
    int npos = 0, force = 0, rc = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(CONVERT_USAGE, stdout); return 0; }
        if (!strcmp(a, "--type") && i + 1 < argc) type_name = argv[++i];
        else if (!strcmp(a, "--name") && i + 1 < argc) name = argv[++i];
        else if (!strcmp(a, "-f") || !strcmp(a, "--force")) force = 1;
        else if (a[0] == '-' && a[1]) { fprintf(stderr, PROG ": unknown option or missing value: %s\n\n%s", a, CONVERT_USAGE); return 2; }
        else if (npos < 2) pos[npos++] = a;
        else { fprintf(stderr, PROG ": too many arguments\n\n%s", CONVERT_USAGE); return 2; }
    }
    if (npos != 2) { fputs(CONVERT_USAGE, stderr); return 2; }
    const char *dir = pos[0], *out_path = pos[1];
    const ob_quantizer *mat = NULL;
    if (type_name && !(mat = ob_quantizer_by_name(type_name))) {
        fprintf(stderr, PROG ": unknown type '%s' (%s)\n", type_name, ob_quantizer_names());
        return 2;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, PROG ": '%s' is not a folder\n", dir);
        return 3;
    }
    if (stat(out_path, &st) == 0 && !force) {
        fprintf(stderr, PROG ": '%s' exists (--force replaces it)\n", out_path);
        return 2;
    }

    job J;
    memset(&J, 0, sizeof J);
    J.add_bos = J.add_eos = -1;
    shards sh = {0};
    cJSON *cfg = NULL, *tc = NULL;
    uint8_t *obuf = NULL;
    float *row = NULL;
    gguf_out o;
    memset(&o, 0, sizeof o);
    char name_buf[256];

    cfg = read_json(dir, "config.json", 1, &rc);
    if (!cfg) goto done;
    J.cfg = cfg;
    const cJSON *archs = get(cfg, "architectures");
    const char *hf_arch = cJSON_IsString(cJSON_GetArrayItem(archs, 0)) ? cJSON_GetArrayItem(archs, 0)->valuestring : NULL;
    for (size_t i = 0; hf_arch && i < sizeof FAMILIES / sizeof *FAMILIES; i++)
        if (!strcmp(hf_arch, FAMILIES[i].hf)) J.fam = &FAMILIES[i];
    if (!J.fam) {
        fprintf(stderr, PROG ": architecture %s is not converted (Qwen3ForCausalLM, Qwen2ForCausalLM, LlamaForCausalLM, "
                        "PhiForCausalLM)\n", hf_arch ? hf_arch : "(none in config.json)");
        rc = 4;
        goto done;
    }
    J.arch = J.fam->arch;
    long n_vocab;
    if (cfg_int(cfg, "num_hidden_layers", 1, &J.n_layer, &rc) || cfg_int(cfg, "hidden_size", 1, &J.n_embd, &rc) ||
        cfg_int(cfg, "intermediate_size", 1, &J.n_ff, &rc) || cfg_int(cfg, "num_attention_heads", 1, &J.n_head, &rc) ||
        cfg_int(cfg, "num_key_value_heads", 0, &J.n_head_kv, &rc) || cfg_int(cfg, "head_dim", 0, &J.head_dim, &rc) ||
        cfg_int(cfg, "max_position_embeddings", 1, &J.n_ctx, &rc) || cfg_int(cfg, "vocab_size", 1, &n_vocab, &rc))
        goto done;
    if (!J.n_head_kv) J.n_head_kv = J.n_head;
    if (!J.head_dim) J.head_dim = J.n_embd / J.n_head;
    if (J.n_head % J.n_head_kv || J.head_dim % 2) {
        fprintf(stderr, PROG ": config.json: %ld heads do not share %ld KV heads evenly, or odd head size\n", J.n_head, J.n_head_kv);
        rc = 4;
        goto done;
    }
    J.n_rot = J.head_dim;
    if (J.fam->layernorm) {
        J.n_rot = (long)(cfg_num(cfg, "partial_rotary_factor", 1.0) * (double)J.head_dim);
        J.eps = cfg_num(cfg, "layer_norm_eps", 1e-5);
    } else {
        J.eps = cfg_num(cfg, "rms_norm_eps", 1e-6);
    }
    J.theta = cfg_num(cfg, "rope_theta", 10000.0);
    const cJSON *rs = get(cfg, "rope_scaling");
    if (cJSON_IsObject(rs)) {
        const cJSON *t = get(rs, "rope_type");
        if (!cJSON_IsString(t)) t = get(rs, "type");
        const char *rt = cJSON_IsString(t) ? t->valuestring : "";
        J.rope_factor = cfg_num(rs, "factor", 1.0);
        if (!strcmp(rt, "linear")) J.rope_type = "linear";
        else if (!strcmp(rt, "llama3") && !strcmp(J.arch, "llama")) {
            J.rope_type = "llama3";
            J.low_ff = cfg_num(rs, "low_freq_factor", 1.0);
            J.high_ff = cfg_num(rs, "high_freq_factor", 4.0);
            J.orig_ctx = cfg_num(rs, "original_max_position_embeddings", 8192);
            if (!(J.high_ff > J.low_ff) || !(J.rope_factor > 0)) {
                fprintf(stderr, PROG ": config.json: bad llama3 rope_scaling\n");
                rc = 4;
                goto done;
            }
        } else if (strcmp(rt, "default") != 0) {
            fprintf(stderr, PROG ": config.json: rope_scaling type '%s' is not supported\n", rt);
            rc = 4;
            goto done;
        }
    }
    if (name) J.name = name;
    else {
        const char *b = strrchr(dir, '/');
        snprintf(name_buf, sizeof name_buf, "%s", b && b[1] ? b + 1 : dir);
        J.name = name_buf;
    }

    /* tokenizer */
    if ((rc = load_vocab(dir, n_vocab, &J.v))) goto done;
    tc = read_json(dir, "tokenizer_config.json", 0, &rc);
    if (rc) goto done;
    if (tc) {
        J.bos = tok_content(get(tc, "bos_token"));
        J.eos = tok_content(get(tc, "eos_token"));
        J.pad = tok_content(get(tc, "pad_token"));
        if (cJSON_IsBool(get(tc, "add_bos_token"))) J.add_bos = cJSON_IsTrue(get(tc, "add_bos_token"));
        if (cJSON_IsBool(get(tc, "add_eos_token"))) J.add_eos = cJSON_IsTrue(get(tc, "add_eos_token"));
        const cJSON *ct = get(tc, "chat_template"), *e;
        if (cJSON_IsString(ct)) J.tmpl = strdup(ct->valuestring);
        else cJSON_ArrayForEach(e, ct) { /* a list of named templates: the default one */
            const cJSON *n = get(e, "name"), *t = get(e, "template");
            if (cJSON_IsString(n) && !strcmp(n->valuestring, "default") && cJSON_IsString(t)) J.tmpl = strdup(t->valuestring);
        }
    }
    size_t tl;
    char *jinja = read_text(dir, "chat_template.jinja", &tl);
    if (jinja) {
        free(J.tmpl);
        J.tmpl = jinja;
    }
    if (!J.tmpl) fprintf(stderr, PROG ": no chat template in the folder: the model will run as plain completion\n");

    /* weights */
    if ((rc = open_shards(dir, &sh))) goto done;
    size_t total = 0;
    for (size_t s = 0; s < sh.n; s++) total += sh.f[s].n;
    J.t = calloc(total + 1, sizeof *J.t);
    if (!J.t) { rc = cli_fail(OB_ERR_NOMEM, "planning"); goto done; }
    uint64_t max_bytes = 0, max_cols = 0, data = 0;
    for (size_t s = 0; s < sh.n; s++)
        for (size_t k = 0; k < sh.f[s].n; k++) {
            const st_tensor *src = &sh.f[s].t[k];
            out_tensor *t = &J.t[J.nt];
            if (ignorable(src->name)) continue;
            if (map_name(src->name, t->name, sizeof t->name) != 0) {
                fprintf(stderr, PROG ": tensor '%.200s' is not one of a %s model\n", src->name, J.arch);
                rc = 4;
                goto done;
            }
            for (size_t i = 0; i < J.nt; i++)
                if (!strcmp(J.t[i].name, t->name)) {
                    fprintf(stderr, PROG ": tensor '%.200s' appears twice\n", src->name);
                    rc = 4;
                    goto done;
                }
            if (src->dtype != ST_F32 && src->dtype != ST_F16 && src->dtype != ST_BF16) {
                fprintf(stderr, PROG ": tensor '%.200s' is %s: only F32, F16 and BF16 weights are converted\n", src->name, src->dtype_name);
                rc = 4;
                goto done;
            }
            if (src->n_dims < 1 || src->n_dims > 2 || src->n_elems == 0) {
                fprintf(stderr, PROG ": tensor '%.200s' has %d dimensions\n", src->name, src->n_dims);
                rc = 4;
                goto done;
            }
            t->src = src;
            t->n_dims = (uint32_t)src->n_dims;
            t->ne[0] = src->shape[src->n_dims - 1];
            t->ne[1] = src->n_dims == 2 ? src->shape[0] : 1;
            const ob_quantizer *q = ob_quantizer_find(GGML_F32);
            if (t->n_dims == 2) {
                if (!mat) mat = ob_quantizer_find(src->dtype == ST_BF16 ? GGML_BF16 : src->dtype == ST_F16 ? GGML_F16 : GGML_F32);
                q = mat;
                if (t->ne[0] % (uint64_t)q->block)
                    q = ob_quantizer_find(t->ne[0] % 32 == 0 ? GGML_Q8_0 : GGML_F16);
            }
            t->type = q->type;
            t->nbytes = t->ne[0] / (uint64_t)q->block * (uint64_t)q->bytes * t->ne[1];
            if (J.fam->permute_qk && (ends(t->name, ".attn_q.weight") || ends(t->name, ".attn_q.bias")))
                t->permute_heads = (int)J.n_head;
            if (J.fam->permute_qk && (ends(t->name, ".attn_k.weight") || ends(t->name, ".attn_k.bias")))
                t->permute_heads = (int)J.n_head_kv;
            t->plus_one = J.fam->norm_plus_one && strstr(t->name, "norm.weight") != NULL;
            J.nt++;
        }
    if (!mat) mat = ob_quantizer_find(GGML_F16);
    J.mat = mat;
    if (J.rope_type && !strcmp(J.rope_type, "llama3")) {
        if (!(J.rope_freqs = llama3_rope_freqs(&J))) { rc = cli_fail(OB_ERR_NOMEM, "rope factors"); goto done; }
        out_tensor *t = &J.t[J.nt++];
        snprintf(t->name, sizeof t->name, "rope_freqs.weight");
        t->n_dims = 1;
        t->ne[0] = (uint64_t)(J.n_rot / 2);
        t->ne[1] = 1;
        t->type = GGML_F32;
        t->nbytes = t->ne[0] * 4;
    }
    for (size_t i = 0; i < J.nt; i++) {
        J.t[i].offset = data;
        data += (J.t[i].nbytes + 31) / 32 * 32;
        if (J.t[i].nbytes > max_bytes) max_bytes = J.t[i].nbytes;
        if (J.t[i].ne[0] > max_cols) max_cols = J.t[i].ne[0];
    }
    /* every tensor the family needs must be there: the loader says which is missing when not */
    char need[96];
    snprintf(need, sizeof need, "token_embd.weight");
    int have_embd = 0;
    for (size_t i = 0; i < J.nt; i++) {
        const out_tensor *t = &J.t[i];
        const int embd = !strcmp(t->name, need), head = !strcmp(t->name, "output.weight");
        have_embd |= embd;
        /* the embedding and the output head are [vocab_size, hidden_size]: a checkpoint whose rows do
           not match config.json's vocab_size would give a file whose tokens index past the table */
        if ((embd || head) && (t->n_dims != 2 || t->ne[0] != (uint64_t)J.n_embd || t->ne[1] != (uint64_t)n_vocab)) {
            fprintf(stderr, PROG ": %s is %llu x %llu, config.json says vocab_size %ld x hidden_size %ld\n",
                    embd ? "model.embed_tokens.weight" : "lm_head.weight", (unsigned long long)t->ne[1],
                    (unsigned long long)t->ne[0], n_vocab, J.n_embd);
            rc = 4;
            goto done;
        }
    }
    if (!have_embd) {
        fprintf(stderr, PROG ": the checkpoint has no model.embed_tokens.weight\n");
        rc = 4;
        goto done;
    }

    /* two passes over the header: count, then write */
    gguf_out dry;
    gout_open(&dry, NULL, PROG);
    write_header(&dry, &J, 0);
    if (gout_open(&o, out_path, PROG) != 0) { rc = 1; goto done; }
    write_header(&o, &J, dry.n_kv);
    obuf = malloc(max_bytes ? (size_t)max_bytes : 1);
    row = malloc((size_t)(max_cols ? max_cols : 1) * sizeof *row);
    if (!obuf || !row) { rc = cli_fail(OB_ERR_NOMEM, "converting"); goto done; }
    for (size_t i = 0; i < J.nt && !o.err; i++) {
        const int is_rope = J.t[i].src == NULL;
        write_tensor(&o, &J.t[i], is_rope ? J.rope_freqs : NULL, obuf, row);
        fprintf(stderr, "[%4zu/%4zu] %-36s %s\n", i + 1, J.nt, J.t[i].name, gguf_type(J.t[i].type)->name);
    }
    if (gout_commit(&o, PROG) != 0) { rc = 1; goto done; }
    fprintf(stderr, PROG ": %s (%s, %ld layers, vocabulary of %ld) -> %s, matrices in %s\n", dir, J.arch, J.n_layer,
            J.v.n, out_path, J.mat->name);
done:
    gout_abort(&o);
    free(obuf);
    free(row);
    free(J.t);
    free(J.tmpl);
    free(J.rope_freqs);
    free_vocab(&J.v);
    close_shards(&sh);
    cJSON_Delete(cfg);
    cJSON_Delete(tc);
    return rc;
}
