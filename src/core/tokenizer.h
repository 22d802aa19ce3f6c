/* tokenizer.h — the two tokenizer kinds of GGUF files, with added/special tokens:
 *   - byte-level BPE (GPT-2 style) with one of llama.cpp's pre-tokenizers (Qwen2, Llama 3, GPT-2,
 *     StarCoder, Falcon, DeepSeek ...), merges by rank;
 *   - SentencePiece (Llama 2, Phi-3): merges by score, spaces as U+2581, byte fallback.
 * Built from the vocabulary, token types, merges or scores stored in the GGUF file; gives exactly
 * llama.cpp's ids (and for Qwen3 those of its Hugging Face tokenizer). Knows nothing of GGUF or
 * models: the caller maps tokenizer.ggml.* onto a tok_config.
 */
#ifndef OB_TOKENIZER_H
#define OB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_bytes { const char *s; uint32_t len; } tok_bytes;

/* GGUF token types */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER_DEFINED = 4, TOK_UNUSED = 5,
       TOK_BYTE = 6 };

typedef struct tok_tokenizer tok_tokenizer;

enum { TOK_BPE = 0, TOK_SPM = 1 };   /* tok_config.kind */

/* Pre-tokenizers of byte-level BPE (tok_config.pre), each llama.cpp's split rules for its
 * tokenizer.ggml.pre values (tok_pre_from_name). */
enum {
    TOK_PRE_QWEN2 = 0,      /* qwen2: Qwen2 regex, one digit a word, NFC first (as Hugging Face) */
    TOK_PRE_LLAMA3,         /* llama-bpe: Llama 3 regex, digits by three, whole-word tokens first */
    TOK_PRE_QWEN35,         /* qwen35: qwen2 with marks (\p{M}) kept with letters, NFC first */
    TOK_PRE_GPT2,           /* gpt-2, mpt: GPT-2's regex */
    TOK_PRE_STARCODER,      /* starcoder, refact, command-r: digits alone, then GPT-2's regex */
    TOK_PRE_FALCON,         /* falcon: punctuation runs, GPT-2's regex, three-digit groups */
    TOK_PRE_DEEPSEEK_LLM,   /* deepseek-llm */
    TOK_PRE_DEEPSEEK_CODER, /* deepseek-coder */
    TOK_PRE_DEFAULT,        /* default (also llama.cpp's choice when the file names none) */
    TOK_PRE_COUNT
};

typedef struct tok_config {
    int kind;               /* TOK_BPE or TOK_SPM */
    int pre;                /* TOK_BPE: TOK_PRE_* */
    const float *scores;    /* TOK_SPM: (n_vocab) merge priority, higher first; NULL = all equal */
    int add_space_prefix;   /* TOK_SPM: a space before the text and after each added token */
} tok_config;

/* TOK_PRE_* for a tokenizer.ggml.pre value, or -1 when onebit does not know it. */
int tok_pre_from_name(const char *name, size_t len);

/* vocab[i] is token i's string in byte-level form ("Ġthe"; control and user-defined tokens as
 * their raw text); types may be NULL (all normal); merges are "left right" strings in rank order.
 * Copies what it needs. 0, or -1 with err: no vocabulary, a byte with no byte-level token, a
 * merge that is not "left right" or whose halves or result are not (non-added) tokens. Empty and
 * duplicated strings are accepted (the lowest id wins lookups). */
int tok_new(tok_tokenizer **out, const tok_bytes *vocab, const int32_t *types, uint32_t n_vocab,
            const tok_bytes *merges, uint32_t n_merges, char *err, size_t errlen);

/* tok_new for any kind: cfg NULL is byte-level BPE with the Qwen2 pre-tokenizer (tok_new).
 * TOK_SPM: vocab strings are raw UTF-8 with U+2581 for spaces, byte tokens "<0xXX>" (type
 * TOK_BYTE); merges are ignored. A byte with neither a byte token nor a one-byte token encodes as
 * the first TOK_UNKNOWN token, or is dropped when there is none (llama.cpp throws). */
int tok_new_cfg(tok_tokenizer **out, const tok_config *cfg, const tok_bytes *vocab,
                const int32_t *types, uint32_t n_vocab, const tok_bytes *merges, uint32_t n_merges,
                char *err, size_t errlen);
void tok_free(tok_tokenizer *t);

/* Encodes text (any bytes; invalid UTF-8 is encoded byte by byte). The strings of added tokens
 * are matched first (leftmost, longest) and become their ids: with parse_special control and
 * user-defined tokens, without it user-defined ones only (<think>, <tool_call>: Hugging Face's
 * split_special_tokens=True, llama.cpp's parse_special=false). Never adds BOS/EOS (the caller
 * does). For BPE the pieces of the ids concatenate to text, with each stretch between added
 * tokens in NFC for the NFC pre-tokenizers (text itself when it is NFC); for SentencePiece to
 * text with a space before each stretch when add_space_prefix (bytes without a token dropped).
 * Writes up to cap ids, the total count to *n_out. 0, or -1 on out of memory or bad arguments. */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int parse_special,
               int32_t *out, size_t cap, size_t *n_out);

/* Raw bytes of token id (byte-level mapping undone; SentencePiece: U+2581 as a space, a byte token
 * as its byte); -1 for a bad id. */
int tok_piece(const tok_tokenizer *t, int32_t id, const char **bytes, size_t *len);

/* Id of the token whose vocabulary string is exactly s, or -1. */
int32_t tok_find(const tok_tokenizer *t, const char *s, size_t len);

uint32_t tok_n_vocab(const tok_tokenizer *t);
int tok_kind(const tok_tokenizer *t);           /* TOK_BPE or TOK_SPM */
size_t tok_max_piece(const tok_tokenizer *t);   /* longest raw piece in bytes */
/* TOK_CONTROL or TOK_USER_DEFINED for an added token, else 0 (also for a bad id). */
int tok_added_type(const tok_tokenizer *t, int32_t id);

#endif
