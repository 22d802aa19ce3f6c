/* grammar.h — GBNF grammars (llama.cpp's format) and a pushdown matcher that constrains
 * generation to them.
 *
 * gram_parse compiles GBNF text into an immutable grammar (rules of alternatives of symbols: a
 * character class or a rule reference; repetition and groups become generated rules). A matcher
 * (gram_matcher) holds a set of stacks over that grammar plus a pending partial UTF-8 character:
 * it advances by a token's bytes, tests whether a token could continue, masks a whole vocabulary
 * in one walk over the tokens sorted by their bytes (shared prefixes are matched once) and says
 * whether the text so far is a complete sentence (end-of-generation allowed). It is not a JSON
 * Schema compiler (json_schema.c writes GBNF) and knows nothing of models: the caller passes the
 * vocabulary as byte strings.
 */
#ifndef OB_GRAMMAR_H
#define OB_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

typedef struct gram_grammar gram_grammar;
typedef struct gram_matcher gram_matcher;
typedef struct gram_vocab gram_vocab;

/* Compiles GBNF text (len bytes) whose start rule is "root". 0, or -1 with a message naming the
 * line and column in err (undefined rule, left recursion, bad escape, unbalanced parenthesis ...). */
int gram_parse(const char *text, size_t len, gram_grammar **out, char *err, size_t errlen);
void gram_free(gram_grammar *g);

/* The vocabulary as the matcher sees it: token i's bytes; kind[i] 0 = ordinary text, 1 = an
 * end-of-generation token (allowed only where the grammar can end), 2 = never allowed (control
 * tokens, empty pieces). Copies the pointers, not the bytes (they must outlive the vocab). NULL
 * when out of memory. */
gram_vocab *gram_vocab_new(const char *const *bytes, const uint32_t *lens, const uint8_t *kind, int n);
void gram_vocab_free(gram_vocab *v);

/* A matcher at the start of the grammar. NULL when out of memory or when the grammar's start
 * cannot be expanded (err says why). */
gram_matcher *gram_matcher_new(const gram_grammar *g, char *err, size_t errlen);
void gram_matcher_free(gram_matcher *m);

/* 1 if the bytes (a token's text) can continue the current state. */
int gram_can_accept(gram_matcher *m, const char *bytes, size_t len);
/* Advances over the bytes; -1 (state unchanged) when they cannot continue it. */
int gram_accept(gram_matcher *m, const char *bytes, size_t len);
/* 1 if the text so far is a complete sentence of the grammar. */
int gram_can_end(const gram_matcher *m);
/* 1 if nothing can follow (the state is complete and no character continues it). */
int gram_is_done(const gram_matcher *m);
/* 1 if token id is allowed now (kind 1: only where the grammar can end). */
int gram_token_ok(gram_matcher *m, const gram_vocab *v, int id);
/* allowed[i] = 1 for every token that can continue the state (all n tokens of v); returns how
 * many are allowed. */
int gram_mask(gram_matcher *m, const gram_vocab *v, uint8_t *allowed);

#endif
