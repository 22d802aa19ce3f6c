/* vocab.c — the tokenizer of a model, built from its tokenizer.ggml.* metadata.
 *
 * Picks the tokenizer kind (tokenizer.ggml.model: "gpt2" byte-level BPE, "llama" SentencePiece) and
 * the BPE pre-tokenizer (tokenizer.ggml.pre) as llama.cpp does, reads the vocabulary, merges or
 * scores and token types, and the special tokens (BOS/EOS, add_bos/add_eos with llama.cpp's
 * defaults, end of generation). Other kinds and pre-tokenizers are refused by name
 * (OB_ERR_UNSUPPORTED). Knows nothing of weights: it also serves vocabulary-only GGUF files
 * (ob_model_params.vocab_only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

#define MAX_VOCAB (1 << 22)

ob_status model_load_vocab(struct ob_model *m) {
    gguf_str model_name;
    int r = gguf_get_str(&m->file, "tokenizer.ggml.model", &model_name);
    if (r == -1) return ob_fail(OB_ERR_FORMAT, "missing tokenizer (tokenizer.ggml.model)");
    if (r != 0) return ob_fail(OB_ERR_FORMAT, "metadata 'tokenizer.ggml.model' must be a string");
    tok_config cfg = {TOK_BPE, TOK_PRE_DEFAULT, NULL, 0};
    int flag;
    if (gguf_str_eq(model_name, "llama")) {
        cfg.kind = TOK_SPM;
        /* llama.cpp: SentencePiece puts a space before the text unless the file says otherwise */
        cfg.add_space_prefix = gguf_get_bool(&m->file, "tokenizer.ggml.add_space_prefix", &flag) == 0 ? flag : 1;
    } else if (!gguf_str_eq(model_name, "gpt2")) {
        return ob_fail(OB_ERR_UNSUPPORTED,
                       "tokenizer model '%.*s' is not supported (onebit runs 'gpt2', byte-level BPE, and "
                       "'llama', SentencePiece)",
                       (int)(model_name.len > 32 ? 32 : model_name.len), model_name.ptr);
    }
    gguf_str pre;
    if (cfg.kind == TOK_BPE && gguf_get_str(&m->file, "tokenizer.ggml.pre", &pre) == 0) {
        /* a file that names none gets llama.cpp's fallback, 'default' */
        cfg.pre = tok_pre_from_name(pre.ptr, pre.len);
        if (cfg.pre < 0)
            return ob_fail(OB_ERR_UNSUPPORTED,
                           "pre-tokenizer '%.*s' is not supported (onebit knows qwen2, qwen35, llama-bpe, gpt-2, "
                           "mpt, starcoder, refact, command-r, falcon, deepseek-llm, deepseek-coder, default and "
                           "their aliases)",
                           (int)(pre.len > 32 ? 32 : pre.len), pre.ptr);
    }
    const gguf_kv *tk = gguf_find(&m->file, "tokenizer.ggml.tokens");
    const gguf_kv *mk = gguf_find(&m->file, "tokenizer.ggml.merges");
    const gguf_kv *ty = gguf_find(&m->file, "tokenizer.ggml.token_type");
    const gguf_kv *sk = gguf_find(&m->file, "tokenizer.ggml.scores");
    if (!tk || tk->type != GGUF_ARRAY || tk->arr_type != GGUF_STRING)
        return ob_fail(OB_ERR_FORMAT, "missing or malformed tokenizer.ggml.tokens");
    if (cfg.kind == TOK_SPM) {
        mk = NULL;   /* SentencePiece merges by score */
        if (sk && (sk->type != GGUF_ARRAY || sk->arr_type != GGUF_FLOAT32 || sk->arr_n != tk->arr_n))
            return ob_fail(OB_ERR_FORMAT, "tokenizer.ggml.scores must be %llu floats, one per token",
                           (unsigned long long)tk->arr_n);
    } else if (!mk || mk->type != GGUF_ARRAY || mk->arr_type != GGUF_STRING) {
        return ob_fail(OB_ERR_FORMAT, "missing or malformed tokenizer.ggml.merges");
    }
    if (tk->arr_n == 0 || tk->arr_n > MAX_VOCAB) return ob_fail(OB_ERR_FORMAT, "vocabulary size %llu is out of range",
                                                                (unsigned long long)tk->arr_n);
    if (mk && mk->arr_n > MAX_VOCAB * 4ull) return ob_fail(OB_ERR_FORMAT, "too many merges");
    if (ty && (ty->type != GGUF_ARRAY || ty->arr_n != tk->arr_n))
        return ob_fail(OB_ERR_FORMAT, "tokenizer.ggml.token_type does not match the vocabulary");
    uint32_t nv = (uint32_t)tk->arr_n, nm = mk ? (uint32_t)mk->arr_n : 0;
    ob_status st = OB_OK;
    gguf_str *sv = malloc(((size_t)nv + nm) * sizeof *sv);
    tok_bytes *tb = malloc(((size_t)nv + nm) * sizeof *tb);
    int32_t *types = ty ? malloc((size_t)nv * sizeof *types) : NULL;
    float *scores = cfg.kind == TOK_SPM && sk ? malloc((size_t)nv * sizeof *scores) : NULL;
    if (!sv || !tb || (ty && !types) || (cfg.kind == TOK_SPM && sk && !scores)) {
        st = ob_fail(OB_ERR_NOMEM, "out of memory loading the tokenizer");
        goto done;
    }
    gguf_get_str_array(tk, sv);
    if (mk) gguf_get_str_array(mk, sv + nv);
    if (scores) {   /* the parser checked that the array lies inside the file */
        memcpy(scores, sk->val, (size_t)nv * sizeof *scores);
        for (uint32_t i = 0; i < nv; i++)
            if (scores[i] != scores[i]) scores[i] = 0;   /* a NaN would break the heap's order */
        cfg.scores = scores;
    }
    for (size_t i = 0; i < (size_t)nv + nm; i++) {
        if (sv[i].len > 65536) {
            st = ob_fail(OB_ERR_FORMAT, "tokenizer string %zu is too long", i);
            goto done;
        }
        tb[i].s = sv[i].ptr;
        tb[i].len = (uint32_t)sv[i].len;
    }
    if (ty && gguf_get_i32_array(ty, types) != 0) {
        st = ob_fail(OB_ERR_FORMAT, "tokenizer.ggml.token_type must be an integer array");
        goto done;
    }
    char err[256];
    if (tok_new_cfg(&m->tok, &cfg, tb, types, nv, tb + nv, nm, err, sizeof err) != 0) {
        st = ob_fail(OB_ERR_FORMAT, "bad tokenizer: %s", err);
        goto done;
    }
    uint32_t id;
    m->bos = m->eos = m->eot = m->eot2 = -1;
    if (gguf_get_u32(&m->file, "tokenizer.ggml.bos_token_id", &id) == 0 && id < nv) m->bos = (ob_token)id;
    if (gguf_get_u32(&m->file, "tokenizer.ggml.eos_token_id", &id) == 0 && id < nv) m->eos = (ob_token)id;
    /* llama.cpp's defaults when the file is silent: BOS for SentencePiece and Llama 3 */
    int def_bos = cfg.kind == TOK_SPM || (cfg.kind == TOK_BPE && cfg.pre == TOK_PRE_LLAMA3);
    m->add_bos = gguf_get_bool(&m->file, "tokenizer.ggml.add_bos_token", &flag) == 0 ? flag : def_bos;
    m->add_eos = gguf_get_bool(&m->file, "tokenizer.ggml.add_eos_token", &flag) == 0 ? flag : 0;
    if (m->bos < 0) m->add_bos = 0;   /* nothing to add */
    if (m->eos < 0) m->add_eos = 0;
    /* End of generation: the ids the file names, and the tokens whose text marks the end of a turn
     * in the chat formats in use (as llama.cpp also does, for files that name only eos). */
    static const char *const eog_keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                           "tokenizer.ggml.eom_token_id"};
    static const char *const eog_texts[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>",
                                            "<end_of_turn>", "<|end|>", "<|return|>", "<|end_of_text|>", "</s>"};
    m->eog = malloc((sizeof eog_keys / sizeof *eog_keys + sizeof eog_texts / sizeof *eog_texts) * sizeof *m->eog);
    if (!m->eog) {
        st = ob_fail(OB_ERR_NOMEM, "out of memory loading the tokenizer");
        goto done;
    }
    m->n_eog = 0;
    for (size_t i = 0; i < sizeof eog_keys / sizeof *eog_keys + sizeof eog_texts / sizeof *eog_texts; i++) {
        int64_t t = -1;
        if (i < sizeof eog_keys / sizeof *eog_keys) {
            if (gguf_get_u32(&m->file, eog_keys[i], &id) == 0 && id < nv) t = id;
        } else {
            const char *txt = eog_texts[i - sizeof eog_keys / sizeof *eog_keys];
            t = tok_find(m->tok, txt, strlen(txt));
            /* only as a special token: ordinary text that happens to read "</s>" is not an end */
            if (t >= 0 && types && (types[t] == 1 || types[t] == 2 || types[t] == 6)) t = -1;
        }
        int dup = 0;
        for (int j = 0; j < m->n_eog; j++) dup |= m->eog[j] == t;
        if (t >= 0 && !dup) m->eog[m->n_eog++] = (ob_token)t;
    }
    m->eot = tok_find(m->tok, "<|im_end|>", 10);
    if (m->eot < 0) m->eot = tok_find(m->tok, "<|eot_id|>", 10);
    if (m->eot < 0) m->eot = tok_find(m->tok, "<end_of_turn>", 13);
    m->eot2 = tok_find(m->tok, "<|endoftext|>", 13);
done:
    free(sv);
    free(tb);
    free(types);
    free(scores);
    return st;
}

