/* tokenizer.h — byte-level BPE (GPT-2 style, Qwen2 pre-tokenizer) with added/special tokens.
 *
 * Built from the vocabulary, token types and merges stored in the GGUF file; gives exactly the ids
 * of the Hugging Face tokenizer for Qwen3 (NFC normalizer, Qwen2 pre-tokenizer regex, byte-level
 * mapping, BPE merges by rank). Knows nothing of GGUF or models.
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

/* vocab[i] is token i's string in byte-level form ("Ġthe"; control and user-defined tokens as
 * their raw text); types may be NULL (all normal); merges are "left right" strings in rank order.
 * Copies what it needs. 0, or -1 with err: no vocabulary, a byte with no byte-level token, a
 * merge that is not "left right" or whose halves or result are not (non-added) tokens. Empty and
 * duplicated strings are accepted (the lowest id wins lookups). */
int tok_new(tok_tokenizer **out, const tok_bytes *vocab, const int32_t *types, uint32_t n_vocab,
            const tok_bytes *merges, uint32_t n_merges, char *err, size_t errlen);
void tok_free(tok_tokenizer *t);

/* Encodes text (any bytes; invalid UTF-8 is encoded byte by byte). The strings of added tokens
 * are matched first (leftmost, longest) and become their ids: with parse_special control and
 * user-defined tokens, without it user-defined ones only (<think>, <tool_call>: Hugging Face's
 * split_special_tokens=True). The pieces of the ids concatenate to text with each stretch
 * between added tokens in NFC (text itself when it is NFC). Writes up to cap ids, the total
 * count to *n_out. 0, or -1 on out of memory or bad arguments. */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int parse_special,
               int32_t *out, size_t cap, size_t *n_out);

/* Raw bytes of token id (byte-level mapping undone); -1 for a bad id. */
int tok_piece(const tok_tokenizer *t, int32_t id, const char **bytes, size_t *len);

/* Id of the token whose vocabulary string is exactly s, or -1. */
int32_t tok_find(const tok_tokenizer *t, const char *s, size_t len);

uint32_t tok_n_vocab(const tok_tokenizer *t);
size_t tok_max_piece(const tok_tokenizer *t);   /* longest raw piece in bytes */

#endif
