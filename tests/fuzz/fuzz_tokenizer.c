/* fuzz_tokenizer.c — libFuzzer target for tokenizer.c (and the NFC in unicode.c).
 *
 * Two kinds of input, chosen by the first byte:
 *   < 0xF0: the rest is text, encoded with a fixed tokenizer — a small hand-made byte-level
 *           vocabulary with merges and added tokens, or the real one from the model file
 *           named by $ONEBIT_TOKENIZER_GGUF (e.g. build/models/tiny.gguf) — as byte-level BPE
 *           with the pre-tokenizer first byte % (TOK_PRE_COUNT + 1), or as SentencePiece for the
 *           last value;
 *   >= 0xF0: the rest is "\n"-separated lines that extend the 256 byte tokens (a first byte of
 *           'm' makes a merge, '3' a control token, '4' a user-defined token, anything else a
 *           normal token), then an empty line, then text. tok_new must reject such a
 *           vocabulary with a message or build one that keeps every promise below.
 * For both parse_special values it checks: every id is valid, every piece non-empty, the pieces
 * concatenate to the text with added tokens cut out (found here by brute force) and the
 * stretches between them in NFC (for qwen2; as they are for the other pre-tokenizers), a
 * count-only call and a short buffer agree with the full call. SentencePiece (whose pieces on a
 * byte-level vocabulary mean nothing) gets all but the decoding check; the hostile vocabularies
 * are built both as BPE and as SentencePiece.
 * A broken promise abort()s: that is how a fuzz target reports.
 *
 * Built and run by tests/fuzz/run.sh (make fuzz), or by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -D_DEFAULT_SOURCE
 *         tests/fuzz/fuzz_tokenizer.c src/tokenizer.c src/unicode.c src/unicode_tables.c \
 *         src/gguf.c src/util.c -lm -lpthread -o build/fuzz_tokenizer
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"
#include "unicode.h"

#define MAX_VOCAB 200000

typedef struct fz_vocab {
    tok_bytes v[MAX_VOCAB];
    int32_t types[MAX_VOCAB];
    uint32_t n;
    tok_bytes *m;
    uint32_t nm, cap_m;
} fz_vocab;

static void fail(const char *what) {
    fprintf(stderr, "fuzz_tokenizer: %s\n", what);
    abort();
}

static size_t bl_char(unsigned b, char *out) {
    unsigned shifted = 0;
    for (unsigned x = 0; x < b; x++)
        shifted += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE);
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    uni_unit c = printable ? b : 256 + shifted;
    return uni_encode(&c, 1, out);
}

static char *dup_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) fail("out of memory");
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void add_tok(fz_vocab *fv, const char *s, size_t n, int32_t type) {
    if (fv->n >= MAX_VOCAB) return;
    fv->v[fv->n] = (tok_bytes){dup_bytes(s, n), (uint32_t)n};
    fv->types[fv->n++] = type;
}

static void add_merge(fz_vocab *fv, const char *s, size_t n) {
    if (fv->nm == fv->cap_m) {
        fv->cap_m = fv->cap_m ? fv->cap_m * 2 : 64;
        fv->m = realloc(fv->m, fv->cap_m * sizeof *fv->m);
        if (!fv->m) fail("out of memory");
    }
    fv->m[fv->nm++] = (tok_bytes){dup_bytes(s, n), (uint32_t)n};
}

/* Merge "l r" in byte-level form, adding the merged token. */
static void merge_bl(fz_vocab *fv, const char *l, const char *r) {
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s %s", l, r);
    add_merge(fv, buf, (size_t)n);
    n = snprintf(buf, sizeof buf, "%s%s", l, r);
    add_tok(fv, buf, (size_t)n, TOK_NORMAL);
}

static void base_vocab(fz_vocab *fv) {
    fv->n = 0;
    fv->nm = 0;
    for (unsigned b = 0; b < 256; b++) {
        char c[4];
        size_t n = bl_char(b, c);
        add_tok(fv, c, n, TOK_NORMAL);
    }
}

static void free_vocab(fz_vocab *fv) {
    for (uint32_t i = 0; i < fv->n; i++) free((void *)fv->v[i].s);
    for (uint32_t i = 0; i < fv->nm; i++) free((void *)fv->m[i].s);
    free(fv->m);
    fv->m = NULL;
    fv->n = fv->nm = fv->cap_m = 0;
}

/* Small but busy: merges over ASCII, spaces, newlines, digits, UTF-8 of é and 中, and added
 * tokens that overlap ("<think>" / "<think>>", "<|a|>" / "<|a|><|a|>"). */
static void small_vocab(fz_vocab *fv) {
    base_vocab(fv);
    static const char *pairs[][2] = {
        {"\xC4\xA0", "t"}, {"h", "e"}, {"\xC4\xA0t", "he"}, {"i", "n"}, {"e", "r"}, {"a", "n"},
        {"\xC4\xA0", "a"}, {"o", "n"}, {"r", "e"}, {"\xC4\xA0", "\xC4\xA0"},
        {"\xC4\xA0\xC4\xA0", "\xC4\xA0\xC4\xA0"}, {"\xC4\x8A", "\xC4\x8A"}, {"1", "2"},
        {"a", "a"}, {"aa", "aa"}, {"aa", "a"}, {"\xC3\x83", "\xC2\xA9"}, {"\xC3\xA4", "\xC2\xB8"},
        {"\xC3\xA4\xC2\xB8", "\xC5\x83"}, {"'", "s"}, {"!", "!"}, {"\xC4\x8D", "\xC4\x8A"},
        {"in", "g"}, {"\xC4\xA0", "in"}, {"<", "|"}, {"|", ">"}, {"\xC4\xA0", "<"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) merge_bl(fv, pairs[i][0], pairs[i][1]);
    static const struct { const char *s; int32_t type; } added[] = {
        {"<|im_start|>", TOK_CONTROL}, {"<|im_end|>", TOK_CONTROL}, {"<think>", TOK_USER_DEFINED},
        {"</think>", TOK_USER_DEFINED}, {"<think>>", TOK_CONTROL}, {"<|a|>", TOK_USER_DEFINED},
        {"<|a|><|a|>", TOK_CONTROL}, {"\xCC\x81", TOK_USER_DEFINED}, {"", TOK_CONTROL},
        {"<think>", TOK_CONTROL},
    };
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++)
        add_tok(fv, added[i].s, strlen(added[i].s), added[i].type);
}

/* The real vocabulary as a model file carries it (llama.cpp's layout: <|...|> tokens are control
 * tokens, <think> and <tool_call> user-defined, padding ids unused). 0, or -1 if unreadable. */
static int gguf_vocab(fz_vocab *fv, const char *path) {
    gguf_file g;
    char err[256];
    if (gguf_open_file(&g, path, err, sizeof err)) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s; using the small vocabulary\n", path, err);
        return -1;
    }
    const gguf_kv *tk = gguf_find(&g, "tokenizer.ggml.tokens");
    const gguf_kv *mk = gguf_find(&g, "tokenizer.ggml.merges");
    const gguf_kv *ty = gguf_find(&g, "tokenizer.ggml.token_type");
    if (!tk || !mk || !ty || tk->arr_n > MAX_VOCAB || ty->arr_n != tk->arr_n) fail("no tokenizer in the GGUF");
    gguf_str *sv = malloc((tk->arr_n + mk->arr_n) * sizeof *sv);
    if (!sv || gguf_get_str_array(tk, sv) || gguf_get_str_array(mk, sv + tk->arr_n) ||
        gguf_get_i32_array(ty, fv->types))
        fail("bad tokenizer arrays in the GGUF");
    fv->n = fv->nm = 0;
    for (uint64_t i = 0; i < tk->arr_n; i++) {
        int32_t type = fv->types[i];
        add_tok(fv, sv[i].ptr, sv[i].len, type);
    }
    for (uint64_t i = 0; i < mk->arr_n; i++) add_merge(fv, sv[tk->arr_n + i].ptr, sv[tk->arr_n + i].len);
    free(sv);
    gguf_close(&g);
    return 0;
}

/* ---- the promises ---- */

/* Expected decode: added tokens (leftmost, longest; control ones only with parse_special) cut
 * out by brute force, the stretches between them in NFC. Returns a malloc'ed buffer. */
static int g_nfc = 1;   /* the tokenizer under test normalizes stretches to NFC */

static char *expected(const fz_vocab *fv, const char *s, size_t len, int special, size_t *out_len) {
    uint32_t *cand = malloc((fv->n + 1) * sizeof *cand), nc = 0;
    char *out = malloc(len * 16 + 1);
    if (!cand || !out) fail("out of memory");
    for (uint32_t j = 0; j < fv->n; j++)
        if (fv->types[j] == TOK_USER_DEFINED || (special && fv->types[j] == TOK_CONTROL)) cand[nc++] = j;
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len;) {
        size_t best = 0;
        for (uint32_t c = 0; c < nc && i < len; c++) {
            size_t l = fv->v[cand[c]].len;
            if (l > best && l <= len - i && memcmp(fv->v[cand[c]].s, s + i, l) == 0) best = l;
        }
        if (!best && i < len) { i++; continue; }
        char *nfc;
        size_t nl;
        if (g_nfc) {
            if (uni_nfc_utf8(s + start, i - start, &nfc, &nl)) fail("out of memory");
        } else {
            nl = i - start;
            if (!(nfc = malloc(nl + 1))) fail("out of memory");
            memcpy(nfc, s + start, nl);
        }
        memcpy(out + k, nfc, nl);
        k += nl;
        free(nfc);
        if (i == len) break;
        memcpy(out + k, s + i, best);
        k += best;
        i += best;
        start = i;
    }
    free(cand);
    *out_len = k;
    return out;
}

static void check(const tok_tokenizer *t, const fz_vocab *fv, const char *s, size_t len) {
    for (int special = 0; special <= 1; special++) {
        size_t n = 0, cap = len * 4 + 8;
        int32_t *ids = malloc(cap * sizeof *ids);
        if (!ids) fail("out of memory");
        if (tok_encode(t, s, len, special, ids, cap, &n)) fail("tok_encode failed");
        if (n > cap) fail("more ids than 4 per byte");
        size_t n2 = 1;
        if (tok_encode(t, s, len, special, NULL, 0, &n2) || n2 != n) fail("count-only call differs");
        if (n >= 2) {
            int32_t few[2];
            if (tok_encode(t, s, len, special, few, 1, &n2) || n2 != n || few[0] != ids[0])
                fail("short buffer differs");
        }
        if (tok_kind(t) == TOK_SPM) {   /* ids valid; decoding means nothing on this vocabulary */
            for (size_t i = 0; i < n; i++) {
                const char *p;
                size_t pl;
                if (tok_piece(t, ids[i], &p, &pl)) fail("bad id from tok_encode");
            }
            free(ids);
            continue;
        }
        size_t want_len;
        char *want = expected(fv, s, len, special, &want_len);
        char *got = malloc(want_len + 1);
        if (!got) fail("out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const char *p;
            size_t pl;
            if (tok_piece(t, ids[i], &p, &pl)) fail("bad id from tok_encode");
            if (pl == 0) fail("empty piece from tok_encode");
            if (k + pl > want_len) fail("decode longer than expected");
            memcpy(got + k, p, pl);
            k += pl;
        }
        if (k != want_len || memcmp(got, want, k) != 0) fail("decode(encode(x)) != NFC(x)");
        free(got);
        free(want);
        free(ids);
    }
}

static fz_vocab fixed_vocab, fuzz_vocab;
static tok_tokenizer *fixed[TOK_PRE_COUNT + 1];   /* one per pre-tokenizer, then SentencePiece */

/* Config k: BPE with pre-tokenizer k, or SentencePiece (no scores: all equal) for TOK_PRE_COUNT. */
static tok_config config(int k) {
    tok_config c = {k < TOK_PRE_COUNT ? TOK_BPE : TOK_SPM, k < TOK_PRE_COUNT ? k : 0, NULL, 1};
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fixed[0]) {
        const char *path = getenv("ONEBIT_TOKENIZER_GGUF");
        if (!path || gguf_vocab(&fixed_vocab, path)) small_vocab(&fixed_vocab);
        char err[256];
        for (int k = 0; k <= TOK_PRE_COUNT; k++) {
            tok_config c = config(k);
            if (tok_new_cfg(&fixed[k], &c, fixed_vocab.v, fixed_vocab.types, fixed_vocab.n, fixed_vocab.m,
                            fixed_vocab.nm, err, sizeof err))
                fail(err);
        }
    }
    if (size == 0) return 0;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] < 0xF0) {
        int k = data[0] % (TOK_PRE_COUNT + 1);
        g_nfc = k == TOK_PRE_QWEN2;
        check(fixed[k], &fixed_vocab, s, len);
        return 0;
    }
    g_nfc = 1;

    /* hostile vocabulary: lines up to an empty one, then text */
    base_vocab(&fuzz_vocab);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - s) : len;
        if (e == i) { i++; break; }   /* empty line: text follows */
        char kind = s[i];
        if (kind == 'm') add_merge(&fuzz_vocab, s + i + 1, e - i - 1);
        else add_tok(&fuzz_vocab, s + i + 1, e - i - 1,
                     kind == '3' ? TOK_CONTROL : kind == '4' ? TOK_USER_DEFINED : (int32_t)(uint8_t)kind);
        i = e + 1;
    }
    tok_tokenizer *t = NULL;
    char err[256] = "";
    if (tok_new(&t, fuzz_vocab.v, fuzz_vocab.types, fuzz_vocab.n, fuzz_vocab.m, fuzz_vocab.nm, err,
                sizeof err) == 0) {
        if (!t) fail("tok_new succeeded without a tokenizer");
        check(t, &fuzz_vocab, s + (i < len ? i : len), i < len ? len - i : 0);
        tok_free(t);
        tok_config c = config(TOK_PRE_COUNT);   /* the same vocabulary as SentencePiece */
        t = NULL;
        if (tok_new_cfg(&t, &c, fuzz_vocab.v, fuzz_vocab.types, fuzz_vocab.n, fuzz_vocab.m, fuzz_vocab.nm, err,
                        sizeof err) == 0) {
            check(t, &fuzz_vocab, s + (i < len ? i : len), i < len ? len - i : 0);
            tok_free(t);
        } else if (t || err[0] == '\0') {
            fail("tok_new_cfg (SentencePiece) failed without a message or left a tokenizer");
        }
    } else if (t || err[0] == '\0') {
        fail("tok_new failed without a message or left a tokenizer");
    }
    free_vocab(&fuzz_vocab);
    return 0;
}
