/* fuzz_grammar.c — libFuzzer target for the GBNF compiler and matcher (src/core/grammar.c).
 *
 * Each input is split at its first NUL byte: the part before is GBNF text, the part after a text
 * to match (a fixed one when there is no NUL). A grammar that compiles gets a matcher that is fed
 * the text in pieces of 1..7 bytes (the way tokens come), asked whether each piece can continue
 * first, and finally whether the sentence can end; a small made-up vocabulary is masked at every
 * step and the mask compared with token-by-token checks. Findings: crashes, sanitizer reports,
 * leaks, timeouts, and a mask that disagrees with the token-by-token answer (abort). Built and run
 * by run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"

static const char *const vocab_text[] = {"a", "b", "ab", "{", "}", "\"", ":", ",", " ", "\n", "1", "12", "-", "x",
                                         "\xc3", "\xa9", "\xc3\xa9", "\xe2\x86\x92", "(", ")", "[", "]", "true", "null",
                                         "=", "+", "*", "ba", "\"a\"", "", "<eog>"};
#define NV ((int)(sizeof vocab_text / sizeof vocab_text[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "{\"a\": 12, \"b\": [true, null]}=1+2*(3)ab\xc3\xa9";
    size_t tlen = nul ? size - glen - 1 : strlen(text);
    char err[256];
    gram_grammar *g = NULL;
    if (gram_parse((const char *)data, glen, &g, err, sizeof err)) return 0;
    gram_matcher *m = gram_matcher_new(g, err, sizeof err);
    if (!m) {
        gram_free(g);
        return 0;
    }
    const char *bytes[NV];
    uint32_t lens[NV];
    uint8_t kind[NV], allowed[NV];
    for (int i = 0; i < NV; i++) {
        bytes[i] = vocab_text[i];
        lens[i] = (uint32_t)strlen(vocab_text[i]);
        kind[i] = i == NV - 1 ? 1 : lens[i] ? 0 : 2;
    }
    gram_vocab *v = gram_vocab_new(bytes, lens, kind, NV);
    size_t pos = 0, step = 0;
    while (v && pos < tlen && step < 64) {
        int nm = gram_mask(m, v, allowed);
        int count = 0;
        for (int i = 0; i < NV; i++) {
            if (allowed[i] != gram_token_ok(m, v, i)) abort();
            count += allowed[i];
        }
        if (count != nm) abort();
        size_t n = 1 + (step * 5 + (size_t)data[step % (glen ? glen : 1)]) % 7;
        if (n > tlen - pos) n = tlen - pos;
        int can = gram_can_accept(m, text + pos, n);
        int did = gram_accept(m, text + pos, n);
        if (can != (did == 0)) abort();
        if (did) break;
        pos += n;
        step++;
    }
    (void)gram_can_end(m);
    (void)gram_is_done(m);
    gram_vocab_free(v);
    gram_matcher_free(m);
    gram_free(g);
    return 0;
}
