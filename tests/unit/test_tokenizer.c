/* test_tokenizer.c — unit tests of tokenizer.c on tiny hand-made vocabularies: byte-level BPE
 * (merge order, the splits of each pre-tokenizer, added tokens, caps, bad ids, invalid UTF-8, the
 * vocabularies tok_new must reject) and SentencePiece (merge by score, space prefix, byte
 * fallback, pieces). Parity on real vocabularies is tests/tokenizer.test.mjs's (Hugging Face,
 * Qwen3) and tests/vocab.test.mjs's (llama.cpp, every vocabulary we claim). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "unicode.h"

static int failures;
#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            failures++;                                                                     \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
            printf(__VA_ARGS__);                                                            \
            printf("\n");                                                                   \
        }                                                                                   \
    } while (0)

/* ---- building vocabularies ---- */

/* The byte-level character of byte b, as UTF-8 (GPT-2 bytes_to_unicode). */
static size_t bl_char(unsigned b, char *out) {
    unsigned shifted = 0, c;
    for (unsigned x = 0; x < b; x++)
        shifted += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE);
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    c = printable ? b : 256 + shifted;
    uni_unit u = c;
    return uni_encode(&u, 1, out);
}

typedef struct vb {
    tok_bytes v[512];
    int32_t types[512];
    char store[512][32];
    uint32_t n;
    tok_bytes m[64];
    uint32_t nm;
} vb;

/* ids 0..255: the 256 byte tokens in byte order */
static void vb_init(vb *b) {
    memset(b, 0, sizeof *b);
    for (unsigned i = 0; i < 256; i++) {
        size_t n = bl_char(i, b->store[i]);
        b->v[i] = (tok_bytes){b->store[i], (uint32_t)n};
        b->types[i] = TOK_NORMAL;
    }
    b->n = 256;
}

static int32_t vb_add(vb *b, const char *s, int32_t type) {
    size_t n = strlen(s);
    memcpy(b->store[b->n], s, n);
    b->v[b->n] = (tok_bytes){b->store[b->n], (uint32_t)n};
    b->types[b->n] = type;
    return (int32_t)b->n++;
}

/* a merge "l r" (byte-level form); also adds the merged token unless add_result is 0 */
static void vb_merge(vb *b, const char *l, const char *r, int add_result) {
    static char ms[64][64];
    snprintf(ms[b->nm], sizeof ms[0], "%s %s", l, r);
    b->m[b->nm] = (tok_bytes){ms[b->nm], (uint32_t)strlen(ms[b->nm])};
    b->nm++;
    if (add_result) {
        char cat[64];
        snprintf(cat, sizeof cat, "%s%s", l, r);
        if (b->n < 512) vb_add(b, cat, TOK_NORMAL);
    }
}

static tok_tokenizer *vb_build(vb *b, char *err) {
    tok_tokenizer *t = NULL;
    int rc = tok_new(&t, b->v, b->types, b->n, b->m, b->nm, err, 256);
    return rc == 0 ? t : NULL;
}

/* Encodes s and renders the pieces joined with '|' (into a static buffer). */
static const char *pieces(const tok_tokenizer *t, const char *s, size_t len, int special) {
    static char out[4096];
    int32_t ids[512];
    size_t n = 0, k = 0;
    if (tok_encode(t, s, len, special, ids, 512, &n) || n > 512) return "<encode failed>";
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t pl;
        if (tok_piece(t, ids[i], &p, &pl)) return "<bad id>";
        if (i) out[k++] = '|';
        memcpy(out + k, p, pl);
        k += pl;
    }
    out[k] = '\0';
    return out;
}
#define PIECES(t, s, sp) pieces(t, s, strlen(s), sp)

/* ---- tests ---- */

static void test_merge_order(void) {
    vb b;
    char err[256];
    /* "b c" outranks "a b": "abc" -> a|bc */
    vb_init(&b);
    vb_merge(&b, "b", "c", 1);
    vb_merge(&b, "a", "b", 1);
    tok_tokenizer *t = vb_build(&b, err);
    CHECK(t, "%s", err);
    if (!t) return;
    CHECK(!strcmp(PIECES(t, "abc", 1), "a|bc"), "%s", PIECES(t, "abc", 1));
    tok_free(t);

    /* reversed ranks: ab|c */
    vb_init(&b);
    vb_merge(&b, "a", "b", 1);
    vb_merge(&b, "b", "c", 1);
    t = vb_build(&b, err);
    CHECK(t && !strcmp(PIECES(t, "abc", 1), "ab|c"), "%s", t ? PIECES(t, "abc", 1) : err);
    tok_free(t);

    /* equal ranks: leftmost first ("aaa" -> aa|a), then chains of merges */
    vb_init(&b);
    vb_merge(&b, "a", "a", 1);
    vb_merge(&b, "h", "e", 1);
    vb_merge(&b, "l", "l", 1);
    vb_merge(&b, "he", "ll", 1);
    vb_merge(&b, "hell", "o", 1);
    t = vb_build(&b, err);
    CHECK(t, "%s", err);
    if (!t) return;
    CHECK(!strcmp(PIECES(t, "aaa", 1), "aa|a"), "%s", PIECES(t, "aaa", 1));
    CHECK(!strcmp(PIECES(t, "aaaa", 1), "aa|aa"), "%s", PIECES(t, "aaaa", 1));
    CHECK(!strcmp(PIECES(t, "hello", 1), "hello"), "%s", PIECES(t, "hello", 1));
    CHECK(!strcmp(PIECES(t, "hellohe", 1), "hello|he"), "%s", PIECES(t, "hellohe", 1));
    int32_t hello = tok_find(t, "hello", 5);
    CHECK(hello == (int32_t)b.n - 1, "tok_find(hello) = %d", hello);
    CHECK(tok_find(t, "zz", 2) == -1, "unknown string found");
    CHECK(tok_max_piece(t) == 5, "max piece %zu", tok_max_piece(t));
    CHECK(tok_n_vocab(t) == b.n, "n_vocab");
    tok_free(t);

    /* a duplicated merge takes its later rank: "a b" now after "b c" */
    vb_init(&b);
    vb_merge(&b, "a", "b", 1);
    vb_merge(&b, "b", "c", 1);
    vb_merge(&b, "a", "b", 0);
    t = vb_build(&b, err);
    CHECK(t && !strcmp(PIECES(t, "abc", 1), "a|bc"), "%s", t ? PIECES(t, "abc", 1) : err);
    tok_free(t);
}

static void test_pretokenizer(void) {
    vb b;
    char err[256];
    vb_init(&b);
    /* merges that would cross word boundaries if the pre-tokenizer let them */
    vb_merge(&b, "\xC4\xA0", "\xC4\xA0", 1);       /* "Ġ Ġ": two spaces */
    vb_merge(&b, "\xC4\xA0", "b", 1);              /* " b" */
    vb_merge(&b, "a", "\xC4\xA0", 1);              /* "a " never applies: words split first */
    vb_merge(&b, "'", "s", 1);
    vb_merge(&b, "1", "2", 1);                     /* never applies: digits are single words */
    vb_merge(&b, "\xC4\x8A", "\xC4\x8A", 1);       /* "\n\n" */
    tok_tokenizer *t = vb_build(&b, err);
    CHECK(t, "%s", err);
    if (!t) return;
    struct { const char *in, *want; } cases[] = {
        {"a   b", "a|  | b"},            /* \s+(?!\S) leaves the last space to the word */
        {"a b", "a| b"},
        {"it's", "i|t|'s"},
        {"IT'S", "I|T|'|S"},            /* 'S is a word of its own, but "' S" has no merge */
        {"12", "1|2"},
        {"a\n\nb", "a|\n\n|b"},
        {"a  \n\n  ", "a|  |\n\n|  "},     /* \s*[\r\n]+ then trailing \s+(?!\S) */
        {"!!a", "!|!|a"},                 /* punctuation run !!, then a; no merges for "!!" */
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = PIECES(t, cases[i].in, 1);
        CHECK(!strcmp(got, cases[i].want), "\"%s\" -> \"%s\", want \"%s\"", cases[i].in, got,
              cases[i].want);
    }
    tok_free(t);
}

static void test_added_tokens(void) {
    vb b;
    char err[256];
    vb_init(&b);
    int32_t ctl = vb_add(&b, "<|c|>", TOK_CONTROL);
    int32_t usr = vb_add(&b, "<u>", TOK_USER_DEFINED);
    int32_t longer = vb_add(&b, "<u>>", TOK_USER_DEFINED);
    int32_t dup = vb_add(&b, "<u>", TOK_USER_DEFINED);    /* duplicate: lower id wins */
    vb_add(&b, "", TOK_CONTROL);                          /* empty: never matched */
    tok_tokenizer *t = vb_build(&b, err);
    CHECK(t, "%s", err);
    if (!t) return;
    int32_t ids[64];
    size_t n;
    const char *s = "x<|c|><u><u>>y";
    CHECK(tok_encode(t, s, strlen(s), 1, ids, 64, &n) == 0, "encode");
    CHECK(n == 5 && ids[1] == ctl && ids[2] == usr && ids[3] == longer, "n=%zu ids %d %d %d", n,
          ids[1], ids[2], ids[3]);
    (void)dup;
    /* parse_special = 0: the control token is plain text, user-defined ones still match */
    CHECK(tok_encode(t, s, strlen(s), 0, ids, 64, &n) == 0, "encode");
    CHECK(n == 9 && ids[6] == usr && ids[7] == longer, "n=%zu", n);
    CHECK(!strcmp(PIECES(t, s, 0), "x|<|||c|||>|<u>|<u>>|y"), "%s", PIECES(t, s, 0));
    const char *p;
    size_t pl;
    CHECK(tok_piece(t, ctl, &p, &pl) == 0 && pl == 5 && !memcmp(p, "<|c|>", 5), "piece");
    CHECK(tok_find(t, "<u>", 3) == usr, "find added");
    tok_free(t);
}

static void test_caps_and_ids(void) {
    vb b;
    char err[256];
    vb_init(&b);
    tok_tokenizer *t = vb_build(&b, err);
    CHECK(t, "%s", err);
    if (!t) return;
    int32_t ids[4] = {-7, -7, -7, -7};
    size_t n = 99;
    CHECK(tok_encode(t, "", 0, 1, ids, 4, &n) == 0 && n == 0, "empty input: n=%zu", n);
    CHECK(tok_encode(t, NULL, 0, 1, NULL, 0, &n) == 0 && n == 0, "NULL empty input");
    CHECK(tok_encode(t, "abcdef", 6, 1, NULL, 0, &n) == 0 && n == 6, "count only: n=%zu", n);
    CHECK(tok_encode(t, "abcdef", 6, 1, ids, 2, &n) == 0 && n == 6, "cap 2: n=%zu", n);
    CHECK(ids[0] == 'a' && ids[1] == 'b' && ids[2] == -7, "cap 2 wrote past the cap");
    CHECK(tok_encode(t, "a", 1, 1, ids, 1, NULL) == -1, "NULL n_out accepted");
    CHECK(tok_encode(NULL, "a", 1, 1, ids, 1, &n) == -1, "NULL tokenizer accepted");

    const char *p;
    size_t pl;
    CHECK(tok_piece(t, -1, &p, &pl) == -1, "id -1");
    CHECK(tok_piece(t, 256, &p, &pl) == -1, "id n_vocab");
    CHECK(tok_piece(t, INT32_MAX, &p, &pl) == -1, "id INT32_MAX");
    CHECK(tok_piece(t, ' ', &p, &pl) == 0 && pl == 1 && p[0] == ' ', "piece of the space byte");
    CHECK(tok_piece(t, 0, &p, &pl) == 0 && pl == 1 && p[0] == 0, "piece of byte 0");
    tok_free(t);
}

static void test_invalid_utf8_and_nfc(void) {
    vb b;
    char err[256];
    vb_init(&b);
    vb_merge(&b, "\xC3\x83", "\xC2\xA9", 1);   /* "Ã ©" -> the bytes of U+00E9 */
    tok_tokenizer *t = vb_build(&b, err);
    CHECK(t, "%s", err);
    if (!t) return;
    const char *bad[] = {"\xFF\xFE", "a\x80" "b", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                         "\xE4\xB8", "x\xF0\x9F\x98", "\xC3\xA9\xC3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[64];
        size_t n, len = strlen(bad[i]), k = 0;
        char back[64];
        CHECK(tok_encode(t, bad[i], len, 1, ids, 64, &n) == 0 && n <= 64, "encode %zu", i);
        for (size_t j = 0; j < n && j < 64; j++) {
            const char *p;
            size_t pl;
            if (tok_piece(t, ids[j], &p, &pl) == 0 && k + pl <= sizeof back) {
                memcpy(back + k, p, pl);
                k += pl;
            }
        }
        CHECK(k == len && !memcmp(back, bad[i], len), "case %zu does not round-trip", i);
    }
    /* NFC: e + combining acute becomes U+00E9, one merged token */
    CHECK(!strcmp(PIECES(t, "e\xCC\x81", 1), "\xC3\xA9"), "%s", PIECES(t, "e\xCC\x81", 1));
    tok_free(t);
}

static void test_hostile_vocab(void) {
    vb b;
    char err[256];
    tok_tokenizer *t = (tok_tokenizer *)1;

    CHECK(tok_new(&t, NULL, NULL, 0, NULL, 0, err, sizeof err) == -1 && t == NULL, "empty vocab");

    vb_init(&b);
    b.v[65] = (tok_bytes){NULL, 3};
    CHECK(!vb_build(&b, err) && strstr(err, "NULL"), "NULL string: %s", err);

    vb_init(&b);
    b.v[0x7E].len = 0;   /* printable "~" loses its token */
    CHECK(!vb_build(&b, err) && strstr(err, "0x7E"), "missing byte: %s", err);

    vb_init(&b);
    b.v[200].len = 0;   /* byte 0xC8 loses its token: accepted, the byte is dropped as llama.cpp does */
    t = vb_build(&b, err);
    CHECK(t != NULL, "missing 0xC8 refused: %s", err);
    if (t) {
        CHECK(!strcmp(PIECES(t, "a\xC8" "b", 0), "a|b"), "byte without a token: %s", PIECES(t, "a\xC8" "b", 0));
        tok_free(t);
    }

    vb_init(&b);
    b.types[65] = TOK_CONTROL;   /* "A" as a control token cannot start BPE words */
    CHECK(!vb_build(&b, err) && strstr(err, "0x41"), "byte token only as control: %s", err);

    vb_init(&b);
    b.m[0] = (tok_bytes){"ab", 2};
    b.nm = 1;
    CHECK(!vb_build(&b, err) && strstr(err, "merge 0"), "merge without space: %s", err);

    vb_init(&b);
    b.m[0] = (tok_bytes){"a ", 2};
    b.nm = 1;
    CHECK(!vb_build(&b, err) && strstr(err, "merge 0"), "merge with empty right: %s", err);

    vb_init(&b);
    b.m[0] = (tok_bytes){"", 0};
    b.m[1] = (tok_bytes){NULL, 5};
    b.nm = 2;
    CHECK(!vb_build(&b, err) && strstr(err, "merge 0"), "empty merge: %s", err);

    vb_init(&b);
    vb_merge(&b, "a", "b", 0);   /* result "ab" not in the vocabulary */
    CHECK(!vb_build(&b, err) && strstr(err, "not in the vocabulary"), "unknown result: %s", err);

    vb_init(&b);
    vb_merge(&b, "a", "zz", 0);
    CHECK(!vb_build(&b, err) && strstr(err, "not in the vocabulary"), "unknown half: %s", err);

    /* accepted: empty strings, duplicates, strings that are not byte-level text, odd types */
    vb_init(&b);
    int32_t e1 = vb_add(&b, "", TOK_NORMAL);
    vb_add(&b, "", TOK_NORMAL);
    int32_t d1 = vb_add(&b, "dup", TOK_NORMAL);
    vb_add(&b, "dup", TOK_NORMAL);
    int32_t sp = vb_add(&b, "a b\xFF", TOK_NORMAL);
    vb_add(&b, "weird", 99);
    t = vb_build(&b, err);
    CHECK(t, "odd but valid vocabulary rejected: %s", err);
    if (t) {
        const char *p;
        size_t pl;
        CHECK(tok_find(t, "", 0) == e1, "empty string lookup");
        CHECK(tok_find(t, "dup", 3) == d1, "duplicate lookup gives the lowest id");
        CHECK(tok_piece(t, sp, &p, &pl) == 0 && pl == 4 && !memcmp(p, "a b\xFF", 4), "raw piece");
        CHECK(tok_piece(t, e1, &p, &pl) == 0 && pl == 0, "empty piece");
        CHECK(!strcmp(PIECES(t, "a b", 1), "a| |b"), "%s", PIECES(t, "a b", 1));
        tok_free(t);
    }
}

/* Splits of each pre-tokenizer, on a vocabulary of bytes only (so the pieces are the words). */
static void test_pretokenizers(void) {
    vb b;
    char err[256];
    /* merges that join every word of the inputs whole, so the pieces show the splits */
    vb_init(&b);
    static const char *merges[][2] = {{"H", "e"}, {"He", "l"}, {"Hel", "l"}, {"Hell", "o"}, {"Ġ", "w"}, {"Ġw", "o"},
                                      {"Ġwo", "r"}, {"Ġwor", "l"}, {"Ġworl", "d"}, {"'", "s"}, {"Ġ", "1"},
                                      {"Ġ1", "2"}, {"Ġ12", "3"}, {"Ġ123", "4"}, {"Ġ1234", "5"}, {"1", "2"},
                                      {"12", "3"}, {"4", "5"}, {"Ġ", "!"}, {"Ġ!", "!"}, {"!", "!"}, {"Ġ", "Ġ"}};
    for (size_t i = 0; i < sizeof merges / sizeof *merges; i++) vb_merge(&b, merges[i][0], merges[i][1], 1);
    static const struct { int pre; const char *in, *want; } split[] = {
        /* GPT-2: ' ?\p{N}+' keeps a space and all digits; \s+(?!\S) leaves one space */
        {TOK_PRE_GPT2, "Hello world's  12345 !!", "Hello| world|'s| | 12345| !!"},
        /* StarCoder: digits one at a time first */
        {TOK_PRE_STARCODER, "Hello 12345", "Hello| |1|2|3|4|5"},
        /* Llama 3: digits by three, no space before them */
        {TOK_PRE_LLAMA3, "Hello 12345", "Hello| |123|45"},
        /* Qwen2: one digit a word */
        {TOK_PRE_QWEN2, "Hello 12", "Hello| |1|2"},
        /* Falcon: punctuation runs first, then three-digit groups */
        {TOK_PRE_FALCON, "Hello!! 12345", "Hello|!!| |123|45"},
        /* DeepSeek coder: [\r\n], \s?\p{L}+, \s?\p{P}+, CJK, \p{N} */
        {TOK_PRE_DEEPSEEK_CODER, "Hello world 12!!", "Hello| world| |1|2|!!"},
    };
    for (size_t i = 0; i < sizeof split / sizeof *split; i++) {
        tok_config cfg = {TOK_BPE, split[i].pre, NULL, 0};
        tok_tokenizer *t = NULL;
        CHECK(tok_new_cfg(&t, &cfg, b.v, b.types, b.n, b.m, b.nm, err, sizeof err) == 0, "pre %d: %s", split[i].pre, err);
        if (!t) continue;
        const char *got = PIECES(t, split[i].in, 0);
        CHECK(!strcmp(got, split[i].want), "pre %d on \"%s\": %s (want %s)", split[i].pre, split[i].in, got, split[i].want);
        tok_free(t);
    }
    CHECK(tok_pre_from_name("llama-bpe", 9) == TOK_PRE_LLAMA3 && tok_pre_from_name("gpt-2", 5) == TOK_PRE_GPT2 &&
              tok_pre_from_name("nonesuch", 8) == -1 && tok_pre_from_name("qwen", 4) == -1,
          "tok_pre_from_name");
}

/* SentencePiece: merge by score, the space prefix, byte fallback, pieces. */
static void test_spm(void) {
    static const char *const strs[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "c", "ab", "bc",
                                       "\xE2\x96\x81" "a", "\xE2\x96\x81" "ab", "<0x41>", "<0xC3>", "<0xA9>"};
    static const int32_t types[] = {TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL, TOK_NORMAL, TOK_NORMAL, TOK_NORMAL,
                                    TOK_NORMAL, TOK_NORMAL, TOK_NORMAL, TOK_NORMAL, TOK_NORMAL, TOK_BYTE,
                                    TOK_BYTE, TOK_BYTE};
    static const float scores[] = {0, 0, 0, -1, -2, -2, -2, -5, -3, -4, -6, 0, 0, 0};
    enum { N = sizeof strs / sizeof *strs };
    tok_bytes v[N];
    for (int i = 0; i < N; i++) v[i] = (tok_bytes){strs[i], (uint32_t)strlen(strs[i])};
    char err[256];
    tok_config cfg = {TOK_SPM, 0, scores, 1};
    tok_tokenizer *t = NULL;
    CHECK(tok_new_cfg(&t, &cfg, v, types, N, NULL, 0, err, sizeof err) == 0, "spm: %s", err);
    if (!t) return;
    int32_t ids[16];
    size_t n = 0;
    /* "▁abc": bc (-3) beats ▁a (-4) and ab (-5); then ▁a: ▁a|bc */
    CHECK(tok_encode(t, "abc", 3, 0, ids, 16, &n) == 0 && n == 2 && ids[0] == 9 && ids[1] == 8,
          "spm abc: n=%zu %d %d", n, ids[0], ids[1]);
    /* "é" has no token: its bytes; "A" through <0x41>; after <s> (parse_special) a new space prefix */
    CHECK(tok_encode(t, "\xC3\xA9", 2, 0, ids, 16, &n) == 0 && n == 3 && ids[0] == 3 && ids[1] == 12 && ids[2] == 13,
          "spm byte fallback: n=%zu", n);
    CHECK(tok_encode(t, "a<s>a", 5, 1, ids, 16, &n) == 0 && n == 3 && ids[0] == 9 && ids[1] == 1 && ids[2] == 9,
          "spm prefix after special: n=%zu", n);
    CHECK(tok_encode(t, "", 0, 0, ids, 16, &n) == 0 && n == 0, "spm empty");
    /* a byte without a byte token becomes <unk> */
    CHECK(tok_encode(t, "\x01", 1, 0, ids, 16, &n) == 0 && n == 2 && ids[1] == 0, "spm unk: n=%zu", n);
    const char *p;
    size_t pl;
    CHECK(tok_piece(t, 10, &p, &pl) == 0 && pl == 3 && !memcmp(p, " ab", 3), "spm piece ▁ab");
    CHECK(tok_piece(t, 12, &p, &pl) == 0 && pl == 1 && (unsigned char)p[0] == 0xC3, "spm byte piece");
    CHECK(tok_kind(t) == TOK_SPM, "kind");
    tok_free(t);
}

int main(void) {
    test_pretokenizers();
    test_spm();
    test_merge_order();
    test_pretokenizer();
    test_added_tokens();
    test_caps_and_ids();
    test_invalid_utf8_and_nfc();
    test_hostile_vocab();
    if (failures) printf("test_tokenizer: %d checks failed\n", failures);
    return failures != 0;
}
