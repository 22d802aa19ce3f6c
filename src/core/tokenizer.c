/* tokenizer.c — byte-level BPE with llama.cpp's pre-tokenizers, SentencePiece, added tokens.
 *
 * Byte-level BPE follows llama.cpp (and for Qwen3 the Hugging Face tokenizer) step by step:
 *   1. added tokens are cut out of the raw text first (leftmost, then longest match; with
 *      parse_special = 0 only user-defined ones, like HF's split_special_tokens=True);
 *   2. for the Qwen pre-tokenizers each stretch between them is NFC-normalized (unicode.c);
 *   3. the pre-tokenizer splits it into words: one or more passes, each llama.cpp's regex written
 *      by hand (pass_*), applied in turn inside the pieces the previous pass left, where both the
 *      matches and the text between them become pieces (llama.cpp's unicode_regex_split);
 *   4. each word's UTF-8 bytes become byte-level symbols (GPT-2 bytes_to_unicode), merged by BPE
 *      in merge-rank order (lowest rank first, leftmost first on ties).
 * SentencePiece (llama.cpp's SPM session): a space before the stretch (add_space_prefix), spaces as
 * U+2581, one symbol per UTF-8 character, then repeatedly the adjacent pair whose concatenation is
 * the token of highest score (leftmost on ties); symbols left without a token become byte tokens.
 * Invalid UTF-8 bytes stay single "other" characters all the way, so nothing is lost: the pieces
 * of the ids always concatenate to the input with its stretches NFC-normalized (the input
 * itself when it is NFC, as all text that is not Unicode-exotic is).
 *
 * Hostile vocabularies: tok_new rejects, with a message, what would break that promise — no
 * vocabulary, a byte with no byte-level token, a merge that is not "left right" or whose halves
 * or result are not in the vocabulary. It accepts empty and duplicated strings (the lowest id wins
 * every lookup; empty added tokens are never matched) and normal tokens whose strings are not
 * byte-level text (characters outside the mapping, even invalid UTF-8, are kept as they are in
 * the piece; BPE can never produce such tokens). Duplicated merges: the later rank wins, as in
 * Hugging Face. This file knows nothing of GGUF.
 */
#include "tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

/* ---- the tokenizer ----------------------------------------------------------------------------- */

typedef struct merge_slot {
    uint64_t key;    /* (left id + 1) << 32 | (right id + 1); 0 = empty slot */
    uint32_t rank;   /* position in the merge list: lower merges first */
    int32_t id;      /* the merged token */
} merge_slot;

/* Added tokens live in a byte trie, so the longest match at a position costs one step per byte
 * however many added tokens there are. Children are a linked list (at most 256 siblings). */
typedef struct trie_node {
    uint32_t child;     /* first child, 0 = none (node 0 is the root, never anyone's child) */
    uint32_t sibling;   /* next sibling, 0 = none */
    int32_t id_any;     /* lowest added token spelled by the path to here, -1 = none */
    int32_t id_user;    /* the same among user-defined tokens only (parse_special = 0) */
    uint8_t byte;
} trie_node;

struct tok_tokenizer {
    int kind, pre;          /* TOK_BPE / TOK_SPM; TOK_PRE_* */
    int nfc;                /* normalize stretches to NFC first (the Qwen pre-tokenizers) */
    int ignore_merges;      /* a word that is a token whole becomes that token (Llama 3) */
    int add_space_prefix;   /* SPM: a space before each stretch that follows an added token or starts */
    float *scores;          /* SPM: (n_vocab) */
    uni_unit bl_fwd[256];   /* the byte-level character of each byte */
    uint32_t n_vocab;
    uint8_t *added_type;    /* (n_vocab) TOK_CONTROL / TOK_USER_DEFINED, 0 for all others */
    char *strs;             /* vocabulary strings (byte-level form), back to back */
    size_t *str_off;        /* (n_vocab + 1) */
    char *pieces;           /* raw bytes of each token, each followed by a NUL */
    size_t *piece_off;      /* (n_vocab + 1) */
    size_t max_piece;
    uint32_t *find_tab;     /* (find_mask + 1) open addressing on strs: id + 1, 0 = empty */
    size_t find_mask;
    merge_slot *merges;     /* (merge_mask + 1) open addressing on (left, right) */
    size_t merge_mask;
    int32_t byte_id[256];   /* the token of each single byte: BPE's starting symbols, SPM's
                             * fallback (-1: SPM drops the byte) */
    trie_node *trie;        /* (n_trie) added tokens by their raw text; [0] is the root */
    uint32_t n_trie;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* FNV-1a, then a final mix so the low bits (the table index) depend on every byte. */
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint64_t hash_u64(uint64_t x) {   /* splitmix64 finalizer */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Smallest power of two >= 4/3 n (load factor <= 3/4; Bonsai's ~152k fit in 2^18 at 0.58, small
 * enough to stay in cache while tok_new resolves the merges); 0 if that overflows. */
static size_t table_size(size_t n) {
    size_t s = 16;
    while (s - s / 4 < n) {
        if (s > SIZE_MAX / 4) return 0;
        s *= 2;
    }
    return s;
}

/* The lowest id whose string is s (bpe_only: among tokens that are not added tokens), or -1.
 * Entries for one string sit along one probe path in the order they were inserted, which is
 * increasing id, so the first match is the lowest. */
static int32_t tab_find(const tok_tokenizer *t, const char *s, size_t len, int bpe_only) {
    for (size_t i = (size_t)hash_bytes(s, len) & t->find_mask;; i = (i + 1) & t->find_mask) {
        uint32_t v = t->find_tab[i];
        if (v == 0) return -1;
        uint32_t id = v - 1;
        size_t l = t->str_off[id + 1] - t->str_off[id];
        if (l == len && memcmp(t->strs + t->str_off[id], s, len) == 0 &&
            !(bpe_only && t->added_type[id]))
            return (int32_t)id;
    }
}

/* Inserts id unless its string is already there with the same kind (added or not): a string
 * keeps at most its lowest added id and its lowest other id. */
static void tab_insert(tok_tokenizer *t, uint32_t id) {
    const char *s = t->strs + t->str_off[id];
    size_t len = t->str_off[id + 1] - t->str_off[id];
    for (size_t i = (size_t)hash_bytes(s, len) & t->find_mask;; i = (i + 1) & t->find_mask) {
        uint32_t v = t->find_tab[i];
        if (v == 0) { t->find_tab[i] = id + 1; return; }
        size_t l = t->str_off[v] - t->str_off[v - 1];
        if (l == len && memcmp(t->strs + t->str_off[v - 1], s, len) == 0 &&
            !t->added_type[v - 1] == !t->added_type[id])
            return;
    }
}

static uint64_t merge_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
}

static const merge_slot *merge_find(const tok_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = merge_key(a, b);
    for (size_t i = (size_t)hash_u64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const merge_slot *m = &t->merges[i];
        if (m->key == key) return m;
        if (m->key == 0) return NULL;
    }
}

/* A later duplicate overwrites the rank: Hugging Face builds its merge map the same way. */
static void merge_put(tok_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t key = merge_key(a, b);
    for (size_t i = (size_t)hash_u64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        merge_slot *m = &t->merges[i];
        if (m->key == 0 || m->key == key) {
            m->key = key;
            m->rank = rank;
            m->id = id;
            return;
        }
    }
}

/* ---- byte-level mapping (GPT-2 bytes_to_unicode) ----------------------------------------------- */

/* Printable bytes stand for themselves; the other 68 (controls, space, DEL, 0x80-0xA0, soft
 * hyphen) are shifted to U+0100.. in byte order so that no token contains a space or control. */
static int byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

#define BL_CHARS (256 + 68)   /* byte-level characters are U+0000..U+0143 */

/* fwd[b]: the character byte b becomes; inv[c]: the byte character c stands for, or -1. */
static void bytelevel_tables(uni_unit fwd[256], int16_t inv[BL_CHARS]) {
    unsigned shifted = 0;
    for (unsigned c = 0; c < BL_CHARS; c++) inv[c] = -1;
    for (unsigned b = 0; b < 256; b++) {
        fwd[b] = byte_is_printable(b) ? b : 256 + shifted++;
        inv[fwd[b]] = (int16_t)b;
    }
}

/* Raw bytes of a byte-level string; characters outside the mapping (and invalid UTF-8) are
 * copied as they are. Writes at most len bytes; returns the count. tmp: (len) units. */
static size_t bytelevel_decode(const char *s, size_t len, const int16_t *inv, char *out,
                               uni_unit *tmp) {
    size_t n = uni_decode(s, len, tmp), k = 0;
    for (size_t i = 0; i < n; i++) {
        if (tmp[i] < BL_CHARS && inv[tmp[i]] >= 0) out[k++] = (char)inv[tmp[i]];
        else k += uni_encode(&tmp[i], 1, out + k);
    }
    return k;
}

/* ---- construction ------------------------------------------------------------------------------ */

static uint32_t trie_child(const trie_node *trie, uint32_t node, uint8_t b) {
    for (uint32_t c = trie[node].child; c; c = trie[c].sibling)
        if (trie[c].byte == b) return c;
    return 0;
}

/* Adds token id; ids arrive in increasing order, so the first to claim a string keeps it. */
static void trie_add(tok_tokenizer *t, const char *s, size_t len, int32_t id, int type) {
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)s[i];
        uint32_t c = trie_child(t->trie, node, b);
        if (!c) {
            c = t->n_trie++;
            t->trie[c] = (trie_node){0, t->trie[node].child, -1, -1, b};
            t->trie[node].child = c;
        }
        node = c;
    }
    if (t->trie[node].id_any < 0) t->trie[node].id_any = id;
    if (type == TOK_USER_DEFINED && t->trie[node].id_user < 0) t->trie[node].id_user = id;
}

void tok_free(tok_tokenizer *t) {
    if (!t) return;
    free(t->added_type);
    free(t->strs);
    free(t->str_off);
    free(t->pieces);
    free(t->piece_off);
    free(t->find_tab);
    free(t->merges);
    free(t->trie);
    free(t->scores);
    free(t);
}

int tok_pre_from_name(const char *name, size_t len) {
    static const struct { const char *name; int pre; } names[] = {
        {"qwen2", TOK_PRE_QWEN2}, {"deepseek-r1-qwen", TOK_PRE_QWEN2},
        {"llama-bpe", TOK_PRE_LLAMA3}, {"llama3", TOK_PRE_LLAMA3}, {"llama-v3", TOK_PRE_LLAMA3},
        {"falcon3", TOK_PRE_LLAMA3}, {"dbrx", TOK_PRE_LLAMA3}, {"smaug-bpe", TOK_PRE_LLAMA3},
        {"qwen35", TOK_PRE_QWEN35},
        {"gpt-2", TOK_PRE_GPT2}, {"phi-2", TOK_PRE_GPT2}, {"mpt", TOK_PRE_GPT2}, {"olmo", TOK_PRE_GPT2},
        {"jais", TOK_PRE_GPT2},
        {"starcoder", TOK_PRE_STARCODER}, {"refact", TOK_PRE_STARCODER},
        {"command-r", TOK_PRE_STARCODER}, {"smollm", TOK_PRE_STARCODER},
        {"codeshell", TOK_PRE_STARCODER}, {"exaone", TOK_PRE_STARCODER},
        {"falcon", TOK_PRE_FALCON},
        {"deepseek-llm", TOK_PRE_DEEPSEEK_LLM}, {"deepseek-coder", TOK_PRE_DEEPSEEK_CODER},
        {"default", TOK_PRE_DEFAULT},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0) return names[i].pre;
    return -1;
}

int tok_new(tok_tokenizer **out, const tok_bytes *vocab, const int32_t *types, uint32_t n_vocab,
            const tok_bytes *merges, uint32_t n_merges, char *err, size_t errlen) {
    return tok_new_cfg(out, NULL, vocab, types, n_vocab, merges, n_merges, err, errlen);
}

/* "<0xXX>" (upper- or lower-case hex): the byte, or -1. */
static int byte_token_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A SentencePiece piece: U+2581 becomes a space; writes at most len bytes, returns the count. */
static size_t spm_unescape(const char *s, size_t len, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        if (i + 2 < len && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
            (unsigned char)s[i + 2] == 0x81) {
            out[k++] = ' ';
            i += 3;
        } else {
            out[k++] = s[i++];
        }
    }
    return k;
}

int tok_new_cfg(tok_tokenizer **out, const tok_config *cfg, const tok_bytes *vocab,
                const int32_t *types, uint32_t n_vocab, const tok_bytes *merges, uint32_t n_merges,
                char *err, size_t errlen) {
    if (!out) { set_err(err, errlen, "tokenizer: no output pointer"); return -1; }
    *out = NULL;
    tok_config def = {TOK_BPE, TOK_PRE_QWEN2, NULL, 0};
    if (!cfg) cfg = &def;
    if ((cfg->kind != TOK_BPE && cfg->kind != TOK_SPM) ||
        (cfg->kind == TOK_BPE && (cfg->pre < 0 || cfg->pre >= TOK_PRE_COUNT))) {
        set_err(err, errlen, "tokenizer: unknown kind %d or pre-tokenizer %d", cfg->kind, cfg->pre);
        return -1;
    }
    if (cfg->kind == TOK_SPM) n_merges = 0;   /* SentencePiece merges by score */
    if (!vocab || n_vocab == 0) { set_err(err, errlen, "tokenizer: empty vocabulary"); return -1; }
    if (n_vocab > (uint32_t)INT32_MAX - 1) {
        set_err(err, errlen, "tokenizer: vocabulary of %u tokens is too large", n_vocab);
        return -1;
    }
    if (n_merges && !merges) { set_err(err, errlen, "tokenizer: merges missing"); return -1; }

    size_t total = 0, longest = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (!vocab[i].s && vocab[i].len) {
            set_err(err, errlen, "tokenizer: token %u has a NULL string", i);
            return -1;
        }
        if (total > SIZE_MAX - 1 - vocab[i].len) {
            set_err(err, errlen, "tokenizer: vocabulary too large");
            return -1;
        }
        total += vocab[i].len;
        if (vocab[i].len > longest) longest = vocab[i].len;
    }

    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->n_vocab = n_vocab;
    t->kind = cfg->kind;
    t->pre = cfg->kind == TOK_BPE ? cfg->pre : -1;
    t->nfc = t->pre == TOK_PRE_QWEN2;   /* Qwen2/3's tokenizer.json normalizes; llama.cpp never does */
    t->ignore_merges = t->pre == TOK_PRE_LLAMA3;
    t->add_space_prefix = cfg->kind == TOK_SPM && cfg->add_space_prefix;
    if (cfg->kind == TOK_SPM) {
        t->scores = malloc((size_t)n_vocab * sizeof *t->scores);
        if (!t->scores) goto oom;
        for (uint32_t i = 0; i < n_vocab; i++) t->scores[i] = cfg->scores ? cfg->scores[i] : 0.0f;
    }
    size_t tabn = table_size(n_vocab), mergen = table_size(n_merges);
    if (!tabn || !mergen || total > SIZE_MAX - n_vocab || longest > SIZE_MAX / sizeof(uni_unit) - 1)
        goto oom;
    t->added_type = calloc(n_vocab, 1);
    t->strs = malloc(total + 1);
    t->str_off = malloc(((size_t)n_vocab + 1) * sizeof *t->str_off);
    t->pieces = malloc(total + n_vocab);   /* each piece <= its string, plus a NUL */
    t->piece_off = malloc(((size_t)n_vocab + 1) * sizeof *t->piece_off);
    t->find_tab = calloc(tabn, sizeof *t->find_tab);
    t->merges = calloc(mergen, sizeof *t->merges);
    uni_unit *tmp = malloc((longest + 1) * sizeof *tmp);
    char *mbuf = NULL;
    if (!t->added_type || !t->strs || !t->str_off || !t->pieces || !t->piece_off || !t->find_tab ||
        !t->merges || !tmp) {
        free(tmp);
        goto oom;
    }
    t->find_mask = tabn - 1;
    t->merge_mask = mergen - 1;

    /* strings, pieces, lookup tables */
    uni_unit *bl_fwd = t->bl_fwd;
    int16_t bl_inv[BL_CHARS];
    bytelevel_tables(bl_fwd, bl_inv);
    int32_t unk = -1;
    size_t off = 0, poff = 0;
    size_t added_bytes = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        int32_t ty = types ? types[i] : TOK_NORMAL;
        t->str_off[i] = off;
        if (vocab[i].len) memcpy(t->strs + off, vocab[i].s, vocab[i].len);
        off += vocab[i].len;
        t->piece_off[i] = poff;
        if (ty == TOK_CONTROL || ty == TOK_USER_DEFINED) {
            /* added tokens are stored as their raw text, not in byte-level form */
            t->added_type[i] = (uint8_t)ty;
            if (vocab[i].len) memcpy(t->pieces + poff, vocab[i].s, vocab[i].len);
            poff += vocab[i].len;
            added_bytes += vocab[i].len;
        } else if (cfg->kind == TOK_SPM) {
            int b = ty == TOK_BYTE ? byte_token_value(vocab[i].s, vocab[i].len) : -1;
            if (b >= 0) t->pieces[poff++] = (char)b;
            else if (ty != TOK_UNUSED) poff += spm_unescape(vocab[i].s, vocab[i].len, t->pieces + poff);
            if (ty == TOK_UNKNOWN && unk < 0) unk = (int32_t)i;
        } else {
            poff += bytelevel_decode(vocab[i].s, vocab[i].len, bl_inv, t->pieces + poff, tmp);
        }
        if (poff - t->piece_off[i] > t->max_piece) t->max_piece = poff - t->piece_off[i];
        t->pieces[poff++] = '\0';
    }
    t->str_off[n_vocab] = off;
    t->piece_off[n_vocab] = poff;
    for (uint32_t i = 0; i < n_vocab; i++) tab_insert(t, i);
    free(tmp);
    tmp = NULL;

    /* SentencePiece: each byte's fallback token, as llama.cpp's byte_to_token looks it up */
    for (unsigned b = 0; cfg->kind == TOK_SPM && b < 256; b++) {
        static const char digits[] = "0123456789ABCDEF";
        char hex[6] = {'<', '0', 'x', digits[b >> 4], digits[b & 15], '>'}, one = (char)b;
        int32_t id = tab_find(t, hex, 6, 1);
        if (id < 0) id = tab_find(t, &one, 1, 1);
        t->byte_id[b] = id >= 0 ? id : unk;
    }
    /* BPE: each byte's starting symbol. Some vocabularies lack bytes that UTF-8 text never holds
     * (0xC0, 0xF5..) or control characters; such a byte is dropped from the ids, as llama.cpp
     * does, but every printable ASCII byte must be there. */
    for (unsigned b = 0; cfg->kind == TOK_BPE && b < 256; b++) {
        char ch[4];
        size_t n = uni_encode(&bl_fwd[b], 1, ch);
        t->byte_id[b] = tab_find(t, ch, n, 1);
        if (t->byte_id[b] < 0 && b >= 0x20 && b < 0x7F) {
            set_err(err, errlen, "tokenizer: no token for byte 0x%02X (\"%.*s\")", b, (int)n, ch);
            tok_free(t);
            return -1;
        }
    }

    /* merges: "left right", split at the first space after the first byte (tokens in byte-level
     * form never contain a space) */
    size_t mcap = 0;
    if ((uint64_t)n_merges * sizeof(int32_t[3]) > SIZE_MAX) goto oom;   /* 32-bit targets */
    int32_t (*mid)[3] = malloc((n_merges ? n_merges : 1) * sizeof *mid);   /* (n_merges) a, b, a+b */
    if (!mid) goto oom;
    for (uint32_t r = 0; r < n_merges; r++) {
        const char *s = merges[r].s;
        size_t len = merges[r].len;
        const char *sp = (s && len > 1) ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp || sp + 1 == s + len) {
            set_err(err, errlen, "tokenizer: merge %u (\"%.*s\") is not \"left right\"", r,
                    (int)(len > 64 ? 64 : len), s ? s : "");
            goto bad_merge;
        }
        size_t ll = (size_t)(sp - s), rl = len - ll - 1;
        int32_t a = tab_find(t, s, ll, 1);
        int32_t b = tab_find(t, sp + 1, rl, 1);
        if (len > mcap) {
            char *nb = realloc(mbuf, len);
            if (!nb) { free(mbuf); free(mid); goto oom; }
            mbuf = nb;
            mcap = len;
        }
        memcpy(mbuf, s, ll);
        memcpy(mbuf + ll, sp + 1, rl);
        int32_t m = tab_find(t, mbuf, ll + rl, 1);
        if (a < 0 || b < 0 || m < 0) {
            set_err(err, errlen, "tokenizer: merge %u (\"%.*s\") uses a token not in the vocabulary",
                    r, (int)(len > 64 ? 64 : len), s);
            goto bad_merge;
        }
        mid[r][0] = a;
        mid[r][1] = b;
        mid[r][2] = m;
    }
    free(mbuf);
    mbuf = NULL;
    /* The table is too big for cache and its slots are random: fetch a few merges ahead. */
    for (uint32_t r = 0; r < n_merges; r++) {
#if defined(__GNUC__)
        if (r + 16 < n_merges) {
            uint64_t k = merge_key(mid[r + 16][0], mid[r + 16][1]);
            __builtin_prefetch(&t->merges[(size_t)hash_u64(k) & t->merge_mask], 1);
        }
#endif
        merge_put(t, mid[r][0], mid[r][1], r, mid[r][2]);
    }
    free(mid);

    /* added tokens: one trie node per byte at most, plus the root */
    if (added_bytes >= UINT32_MAX) goto oom;
    t->trie = malloc((added_bytes + 1) * sizeof *t->trie);
    if (!t->trie) goto oom;
    t->trie[0] = (trie_node){0, 0, -1, -1, 0};
    t->n_trie = 1;
    for (uint32_t i = 0; i < n_vocab; i++)
        if (t->added_type[i])
            trie_add(t, t->strs + t->str_off[i], t->str_off[i + 1] - t->str_off[i], (int32_t)i,
                     t->added_type[i]);
    *out = t;
    return 0;

bad_merge:
    free(mbuf);
    free(mid);
    tok_free(t);
    return -1;
oom:
    set_err(err, errlen, "tokenizer: out of memory");
    tok_free(t);
    return -1;
}

/* ---- queries ----------------------------------------------------------------------------------- */

int tok_piece(const tok_tokenizer *t, int32_t id, const char **bytes, size_t *len) {
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab) return -1;
    *bytes = t->pieces + t->piece_off[id];
    *len = t->piece_off[id + 1] - 1 - t->piece_off[id];
    return 0;
}

int32_t tok_find(const tok_tokenizer *t, const char *s, size_t len) {
    if (!t || (!s && len)) return -1;
    return tab_find(t, s ? s : "", len, 0);
}

uint32_t tok_n_vocab(const tok_tokenizer *t) { return t ? t->n_vocab : 0; }
int tok_kind(const tok_tokenizer *t) { return t ? t->kind : -1; }
size_t tok_max_piece(const tok_tokenizer *t) { return t ? t->max_piece : 0; }
int tok_added_type(const tok_tokenizer *t, int32_t id) {
    return t && id >= 0 && (uint32_t)id < t->n_vocab ? t->added_type[id] : 0;
}

/* ---- encoding ---------------------------------------------------------------------------------- */

/* Buffers reused across the sections and words of one tok_encode call. */
typedef struct scratch {
    uni_unit *u;        /* (cap_u) decoded section */
    uni_unit *v;        /* (cap_v) its NFC */
    uint8_t *cls;       /* (cap_cls) class of each unit of the normalized section */
    char *bytes;        /* (cap_b) UTF-8 of one word */
    struct bpe_sym {    /* (cap_s) BPE symbols of one word, a linked list over the bytes */
        int32_t id;     /* token, -1 once merged into the symbol on its left */
        int32_t prev;   /* index of the previous live symbol, -1 at the start */
        int32_t next;   /* index of the next live symbol, -1 at the end */
    } *sym;
    struct heap_ent { uint32_t rank, pos; int32_t id; } *heap;  /* (cap_h) candidate merges */
    size_t *frag, *frag2;   /* (cap_f) ends of the pre-tokenizer's pieces, this pass and the next */
    char *blw;              /* (cap_w) a word in byte-level form (ignore_merges) */
    struct spm_sym {        /* (cap_ss) SentencePiece symbols: a linked list over the bytes */
        uint32_t off, n;    /* bytes of the symbol; n = 0 once merged into its left neighbour */
        int32_t prev, next;
    } *ssym;
    struct spm_ent { float score; int32_t left, right; uint32_t size; } *sheap; /* (cap_sh) */
    size_t cap_u, cap_v, cap_cls, cap_b, cap_s, cap_h, cap_f, cap_f2, cap_w, cap_ss, cap_sh;
    int32_t *out;       /* caller's ids */
    size_t cap, n;      /* caller's capacity, ids produced so far */
} scratch;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2) return -1;
        n *= 2;
    }
    if (n > SIZE_MAX / elem) return -1;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static void emit(scratch *sc, int32_t id) {
    if (sc->n < sc->cap) sc->out[sc->n] = id;
    sc->n++;
}

static int heap_less(const struct heap_ent *a, const struct heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(scratch *sc, size_t *n, uint32_t rank, uint32_t pos, int32_t id) {
    struct heap_ent *h = sc->heap;
    size_t i = (*n)++;
    struct heap_ent e = {rank, pos, id};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static struct heap_ent heap_pop(scratch *sc, size_t *n) {
    struct heap_ent *h = sc->heap, top = h[0], e = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &e)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = e;
    return top;
}

static void try_pair(const tok_tokenizer *t, scratch *sc, size_t *hn, int32_t left) {
    int32_t right = sc->sym[left].next;
    if (right < 0) return;
    const merge_slot *m = merge_find(t, sc->sym[left].id, sc->sym[right].id);
    if (m) heap_push(sc, hn, m->rank, (uint32_t)left, m->id);
}

/* BPE on one word's bytes: start from one symbol per byte and apply the lowest-ranked merge
 * available anywhere in the word (leftmost on ties) until none applies — the order both Hugging
 * Face and transformers.js use. A heap entry is stale when its left symbol has been merged away
 * or the pair there now merges into something else; such entries are skipped. */
static int bpe_word(const tok_tokenizer *t, scratch *sc, const char *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (t->byte_id[(unsigned char)w[i]] < 0) {   /* a byte without a token: dropped, and no */
            if (bpe_word(t, sc, w, i)) return -1;      /* merge can span it */
            return bpe_word(t, sc, w + i + 1, n - i - 1);
        }
    if (n == 0) return 0;
    if (n == 1) { emit(sc, t->byte_id[(unsigned char)w[0]]); return 0; }
    if (n > (size_t)INT32_MAX) return -1;
    if (t->ignore_merges) {   /* llama.cpp: a word that is a token whole is that token */
        if (n > SIZE_MAX / 2 || grow((void **)&sc->blw, &sc->cap_w, 2 * n, 1)) return -1;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += uni_encode(&t->bl_fwd[(unsigned char)w[i]], 1, sc->blw + k);
        int32_t id = tab_find(t, sc->blw, k, 1);
        if (id >= 0) { emit(sc, id); return 0; }
    }
    if (grow((void **)&sc->sym, &sc->cap_s, n, sizeof *sc->sym)) return -1;
    if (n > SIZE_MAX / 3 || grow((void **)&sc->heap, &sc->cap_h, 3 * n, sizeof *sc->heap))
        return -1;

    struct bpe_sym *sy = sc->sym;
    for (size_t i = 0; i < n; i++) {
        sy[i].id = t->byte_id[(unsigned char)w[i]];
        sy[i].prev = (int32_t)i - 1;
        sy[i].next = i + 1 < n ? (int32_t)(i + 1) : -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(t, sc, &hn, (int32_t)i);
    while (hn) {
        struct heap_ent e = heap_pop(sc, &hn);
        int32_t l = (int32_t)e.pos, r;
        if (sy[l].id < 0 || (r = sy[l].next) < 0) continue;
        const merge_slot *m = merge_find(t, sy[l].id, sy[r].id);
        if (!m || m->id != e.id) continue;
        sy[l].id = m->id;
        sy[r].id = -1;
        sy[l].next = sy[r].next;
        if (sy[r].next >= 0) sy[sy[r].next].prev = l;
        if (sy[l].prev >= 0) try_pair(t, sc, &hn, sy[l].prev);
        try_pair(t, sc, &hn, l);
    }
    for (int32_t i = 0; i >= 0; i = sy[i].next) emit(sc, sy[i].id);
    return 0;
}

/* ---- pre-tokenizers ---------------------------------------------------------------------------- */

/* A pass is one of llama.cpp's regexes: the end of its match starting at i (the alternatives tried
 * in order, first success wins), or i when none starts there; end bounds the piece it runs in
 * (lookaheads do not see past it). cls holds uni_class_ex of each unit, with llama.cpp's \s for
 * the pre-tokenizers other than qwen2 (U+0085 is a space, U+FEFF is not). */
typedef size_t (*pass_fn)(const uni_unit *u, const uint8_t *cls, size_t i, size_t end);

#define CLS(j) (cls[j] & 3)
static int is_crlf(uni_unit c) { return c == '\r' || c == '\n'; }
static int is_mark(uint8_t c) { return (c & UNI_SUB_MASK) == UNI_M && (c & 3) == UNI_OTHER; }
static int is_punct(uint8_t c) { return (c & UNI_SUB_MASK) == UNI_P && (c & 3) == UNI_OTHER; }

/* The Qwen2 / Llama 3 / Qwen3.5 regex (one always matches, never empty). As llama.cpp adapts it
 * (and transformers.js runs it), alternatives in order:
 *   '(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])
 *   | [^\r\n\p{L}\p{N}]?\p{L}+   | \p{N}{1,max_digits}   | ' '?[^\s\p{L}\p{N}]+[\r\n]*
 *   | \s*[\r\n]+   | \s+(?!\S)   | \s+
 * marks: Qwen3.5's [\p{L}\p{M}]+ for the letters and [^\s\p{L}\p{M}\p{N}] for the punctuation. */
static size_t pass_llama_family(const uni_unit *u, const uint8_t *cls, size_t i, size_t n,
                                size_t max_digits, int marks) {
    uni_unit c = u[i];
    int k = CLS(i);
#define WORDCH(j) (CLS(j) == UNI_LETTER || (marks && is_mark(cls[j])))
#define PUNCTCH(j) (CLS(j) == UNI_OTHER && !(marks && is_mark(cls[j])))
    if (c == '\'' && i + 1 < n) {                     /* contractions, ASCII case only */
        /* | 0x20 lowercases ASCII letters and maps no other ASCII byte onto one */
        uni_unit a = u[i + 1] < 0x80 ? (u[i + 1] | 0x20) : 0;
        uni_unit b = i + 2 < n && u[i + 2] < 0x80 ? (u[i + 2] | 0x20) : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    size_t j = i;
    if (k != UNI_LETTER && !is_crlf(c) && k != UNI_NUMBER && !WORDCH(i) && i + 1 < n && WORDCH(i + 1))
        j = i + 1;                                    /* one leading non-letter, then letters */
    if (WORDCH(j)) {
        while (j < n && WORDCH(j)) j++;
        return j;
    }
    if (k == UNI_NUMBER) {                            /* digits, up to max_digits at a time */
        j = i;
        while (j < n && j - i < max_digits && CLS(j) == UNI_NUMBER) j++;
        return j;
    }
    j = (c == ' ' && i + 1 < n && PUNCTCH(i + 1)) ? i + 1 : i;
    if (PUNCTCH(j)) {                                 /* punctuation run, optional space before */
        while (j < n && PUNCTCH(j)) j++;
        while (j < n && is_crlf(u[j])) j++;
        return j;
    }
#undef WORDCH
#undef PUNCTCH
    /* here u[i] is whitespace */
    size_t e = i;
    while (e < n && CLS(e) == UNI_SPACE) e++;
    for (size_t m = e; m > i; m--)                    /* \s*[\r\n]+ : up to the last CR/LF */
        if (is_crlf(u[m - 1])) return m;
    if (e == n || e - i < 2) return e;                /* \s+(?!\S), else \s+ */
    return e - 1;                                     /* leave one space for the next word */
}

static size_t pass_qwen2(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return pass_llama_family(u, cls, i, n, 1, 0);
}
static size_t pass_llama3(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return pass_llama_family(u, cls, i, n, 3, 0);
}
static size_t pass_qwen35(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return pass_llama_family(u, cls, i, n, 1, 1);
}

/* GPT-2's regex (llama.cpp's unicode_regex_split_custom_gpt2), always a match:
 *   's|'t|'re|'ve|'m|'ll|'d | ' '?\p{L}+ | ' '?\p{N}+ | ' '?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+ */
static size_t pass_gpt2(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    uni_unit c = u[i];
    if (c == '\'' && i + 1 < n) {                     /* contractions, lower case only */
        uni_unit a = u[i + 1], b = i + 2 < n ? u[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    size_t j = (c == ' ' && i + 1 < n) ? i + 1 : i;   /* the class the optional space leads to */
    int k = CLS(j);
    if (c == ' ' && i + 1 >= n) k = UNI_SPACE;
    if (k != UNI_SPACE) {                             /* one run of letters, digits or the rest */
        while (j < n && CLS(j) == k) j++;
        return j;
    }
    size_t e = i;
    while (e < n && CLS(e) == UNI_SPACE) e++;
    if (e - i > 1 && e < n) return e - 1;             /* \s+(?!\S): leave one for the next word */
    return e;
}

static size_t pass_digit(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {   /* \p{N} */
    (void)u, (void)n;
    return CLS(i) == UNI_NUMBER ? i + 1 : i;
}

static size_t pass_digits(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {  /* \p{N}+ */
    (void)u;
    while (i < n && CLS(i) == UNI_NUMBER) i++;
    return i;
}

static size_t pass_three_digits(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    (void)cls;                                        /* [0-9][0-9][0-9] */
    for (size_t j = i; j < i + 3; j++)
        if (j >= n || u[j] < '0' || u[j] > '9') return i;
    return i + 3;
}

/* [\p{P}\$\+<=>\^~\|`]+ (falcon) and [\p{P}\$\+<=>\^~\|]+ (default) */
static size_t punct_run(const uni_unit *u, const uint8_t *cls, size_t i, size_t n, int backtick) {
    size_t j = i;
    while (j < n && (is_punct(cls[j]) || (u[j] < 0x80 && strchr("$+<=>^~|", (int)u[j]) && u[j]) ||
                     (backtick && u[j] == '`')))
        j++;
    return j;
}
static size_t pass_punct_falcon(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return punct_run(u, cls, i, n, 1);
}
static size_t pass_punct_default(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return punct_run(u, cls, i, n, 0);
}

static size_t pass_crlf(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {   /* [\r\n] */
    (void)cls, (void)n;
    return is_crlf(u[i]) ? i + 1 : i;
}

/* \s?X+ for a class X */
static size_t space_then_run(const uint8_t *cls, size_t i, size_t n, int (*in)(const uni_unit *, const uint8_t *, size_t),
                             const uni_unit *u) {
    size_t j = (CLS(i) == UNI_SPACE && i + 1 < n && in(u, cls, i + 1)) ? i + 1 : i;
    while (j < n && in(u, cls, j)) j++;
    return j;
}

static int in_letter(const uni_unit *u, const uint8_t *cls, size_t j) { (void)u; return CLS(j) == UNI_LETTER; }
static int in_punct(const uni_unit *u, const uint8_t *cls, size_t j) { (void)u; return is_punct(cls[j]); }

static int in_ranges(uni_unit c, const uint32_t (*r)[2], size_t nr) {
    for (size_t k = 0; k < nr; k++)
        if (c >= r[k][0] && c <= r[k][1]) return 1;
    return 0;
}

/* DeepSeek LLM's letters: the class written out in its tokenizer.json (Latin, Greek, Cyrillic,
 * Armenian, Georgian, Cherokee ... cased letters), copied from llama.cpp's llama-vocab.cpp. */
static const uint32_t DSL_LETTERS[][2] = {
    {0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6}, {0x00D8, 0x00F6},
    {0x00F8, 0x01BA}, {0x01BC, 0x01BF}, {0x01C4, 0x0293}, {0x0295, 0x02AF}, {0x0370, 0x0373},
    {0x0376, 0x0377}, {0x037B, 0x037D}, {0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A},
    {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03F5}, {0x03F7, 0x0481}, {0x048A, 0x052F},
    {0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
    {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F},
    {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
/* [!-/:-~！-／：-～‘-‟　-。] */
static const uint32_t DSL_PUNCT[][2] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002},
};
/* [一-龥ࠀ-一가-퟿]: CJK ideographs, U+0800..U+4E00, Hangul */
static const uint32_t CJK[][2] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
#define NR(a) (sizeof a / sizeof *a)

static int in_dsl_letter(const uni_unit *u, const uint8_t *cls, size_t j) {
    (void)cls;
    return in_ranges(u[j], DSL_LETTERS, NR(DSL_LETTERS));
}
static int in_dsl_punct(const uni_unit *u, const uint8_t *cls, size_t j) {
    (void)cls;
    return in_ranges(u[j], DSL_PUNCT, NR(DSL_PUNCT));
}

static size_t pass_sp_letters(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return space_then_run(cls, i, n, in_letter, u);              /* \s?\p{L}+ */
}
static size_t pass_sp_punct(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return space_then_run(cls, i, n, in_punct, u);               /* \s?\p{P}+ */
}
static size_t pass_dsl_letters(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return space_then_run(cls, i, n, in_dsl_letter, u);
}
static size_t pass_dsl_punct(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    return space_then_run(cls, i, n, in_dsl_punct, u);
}
static size_t pass_cjk(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    (void)cls;
    while (i < n && in_ranges(u[i], CJK, NR(CJK))) i++;
    return i;
}
static size_t pass_space_end(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {  /* \s+$ */
    (void)u;
    for (size_t j = i; j < n; j++)
        if (CLS(j) != UNI_SPACE) return i;
    return n;
}

/* Each pre-tokenizer's passes, in llama.cpp's order (llm_tokenizer_bpe's regex_exprs). */
static const struct { pass_fn pass[6]; } PRETOK[TOK_PRE_COUNT] = {
    [TOK_PRE_QWEN2] = {{pass_qwen2}},
    [TOK_PRE_LLAMA3] = {{pass_llama3}},
    [TOK_PRE_QWEN35] = {{pass_qwen35}},
    [TOK_PRE_GPT2] = {{pass_gpt2}},
    [TOK_PRE_STARCODER] = {{pass_digit, pass_gpt2}},
    [TOK_PRE_FALCON] = {{pass_punct_falcon, pass_gpt2, pass_three_digits}},
    [TOK_PRE_DEEPSEEK_LLM] = {{pass_crlf, pass_dsl_letters, pass_dsl_punct, pass_space_end, pass_cjk,
                               pass_digits}},
    [TOK_PRE_DEEPSEEK_CODER] = {{pass_crlf, pass_sp_letters, pass_sp_punct, pass_cjk, pass_digit}},
    [TOK_PRE_DEFAULT] = {{pass_punct_default, pass_gpt2, pass_digits, pass_three_digits}},
};

/* Runs one pass inside each piece of sc->frag (nf ends), leaving the new pieces there; returns
 * their count. Matches and the text between matches both become pieces. */
static size_t run_pass(scratch *sc, pass_fn pass, const uni_unit *u, const uint8_t *cls, size_t nf) {
    size_t k = 0, a = 0;
    for (size_t f = 0; f < nf; f++) {
        size_t b = sc->frag[f], gap = a;
        for (size_t i = a; i < b;) {
            size_t e = pass(u, cls, i, b);
            if (e == i) { i++; continue; }
            if (gap < i) sc->frag2[k++] = i;
            sc->frag2[k++] = e;
            i = gap = e;
        }
        if (gap < b) sc->frag2[k++] = b;
        a = b;
    }
    size_t *tmp = sc->frag;
    sc->frag = sc->frag2;
    sc->frag2 = tmp;
    return k;
}

/* Normalizes (Qwen), pre-tokenizes and BPE-encodes text that holds no added token. */
static int encode_section(const tok_tokenizer *t, scratch *sc, const char *s, size_t len) {
    if (len == 0) return 0;
    if (grow((void **)&sc->u, &sc->cap_u, len, sizeof *sc->u)) return -1;
    size_t n = uni_decode(s, len, sc->u);
    const uni_unit *u = sc->u;
    if (t->nfc && !uni_nfc_quick(sc->u, n)) {
        if (n > SIZE_MAX / UNI_NFC_GROWTH ||
            grow((void **)&sc->v, &sc->cap_v, n * UNI_NFC_GROWTH, sizeof *sc->v))
            return -1;
        n = uni_nfc(sc->u, n, sc->v);
        u = sc->v;
    }
    if (grow((void **)&sc->cls, &sc->cap_cls, n, 1)) return -1;
    int llama_space = t->pre != TOK_PRE_QWEN2;   /* qwen2 keeps JS's \s: Hugging Face parity */
    for (size_t i = 0; i < n; i++) {
        int c = uni_class_ex(u[i]);
        if (llama_space && u[i] == 0x85) c = UNI_SPACE;
        if (llama_space && u[i] == 0xFEFF) c = UNI_OTHER;
        sc->cls[i] = (uint8_t)c;
    }
    if (grow((void **)&sc->frag, &sc->cap_f, n + 1, sizeof *sc->frag) ||
        grow((void **)&sc->frag2, &sc->cap_f2, n + 1, sizeof *sc->frag2))
        return -1;
    sc->frag[0] = n;
    size_t nf = 1;
    for (int p = 0; p < 6 && PRETOK[t->pre].pass[p]; p++) nf = run_pass(sc, PRETOK[t->pre].pass[p], u, sc->cls, nf);

    for (size_t f = 0, i = 0; f < nf; f++) {
        size_t e = sc->frag[f];
        if (e - i > SIZE_MAX / 4 || grow((void **)&sc->bytes, &sc->cap_b, (e - i) * 4, 1))
            return -1;
        size_t nb = uni_encode(u + i, e - i, sc->bytes);
        if (bpe_word(t, sc, sc->bytes, nb)) return -1;
        i = e;
    }
    return 0;
}

/* ---- SentencePiece ----------------------------------------------------------------------------- */

/* Bytes in the UTF-8 character a byte starts, as llama.cpp's unicode_len_utf8 reads it. */
static uint32_t spm_char_len(unsigned char b) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[b >> 4];
}

/* Higher score first, then the leftmost. */
static int spm_less(const struct spm_ent *a, const struct spm_ent *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void spm_try_pair(const tok_tokenizer *t, scratch *sc, size_t *hn, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const struct spm_sym *a = &sc->ssym[l], *b = &sc->ssym[r];
    int32_t id = tab_find(t, sc->bytes + a->off, a->n + b->n, 1);
    if (id < 0) return;
    struct spm_ent e = {t->scores[id], l, r, a->n + b->n}, *h = sc->sheap;
    size_t i = (*hn)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static struct spm_ent spm_pop(scratch *sc, size_t *n) {
    struct spm_ent *h = sc->sheap, top = h[0], e = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && spm_less(&h[c + 1], &h[c])) c++;
        if (!spm_less(&h[c], &e)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = e;
    return top;
}

/* One stretch of text between added tokens; prefix: put a space before it. */
static int spm_section(const tok_tokenizer *t, scratch *sc, const char *s, size_t len, int prefix) {
    if (len == 0) return 0;
    if (len > (SIZE_MAX - 3) / 3 || len >= UINT32_MAX / 4 ||
        grow((void **)&sc->bytes, &sc->cap_b, 3 * len + 3, 1))
        return -1;
    char *w = sc->bytes;   /* the text with spaces escaped as U+2581 */
    size_t n = 0;
    for (size_t i = 0; i < len + (prefix != 0); i++) {
        char c = prefix ? (i ? s[i - 1] : ' ') : s[i];
        if (c == ' ') { memcpy(w + n, "\xE2\x96\x81", 3); n += 3; }
        else w[n++] = c;
    }
    if (grow((void **)&sc->ssym, &sc->cap_ss, n, sizeof *sc->ssym) ||
        grow((void **)&sc->sheap, &sc->cap_sh, 2 * n, sizeof *sc->sheap))
        return -1;
    struct spm_sym *sy = sc->ssym;
    int32_t ns = 0;
    for (uint32_t off = 0; off < n; ns++) {
        uint32_t l = spm_char_len((unsigned char)w[off]);
        if (l > n - off) l = (uint32_t)(n - off);
        sy[ns] = (struct spm_sym){off, l, ns - 1, off + l < n ? ns + 1 : -1};
        off += l;
    }
    /* At most one live entry per adjacent pair plus the stale ones each merge leaves: a merge
     * pops one and pushes two, so the heap never holds more than 2 n. */
    size_t hn = 0;
    for (int32_t i = 1; i < ns; i++) spm_try_pair(t, sc, &hn, i - 1, i);
    while (hn) {
        struct spm_ent e = spm_pop(sc, &hn);
        struct spm_sym *l = &sy[e.left], *r = &sy[e.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != e.size) continue;   /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sy[r->next].prev = e.left;
        spm_try_pair(t, sc, &hn, l->prev, e.left);
        spm_try_pair(t, sc, &hn, e.left, l->next);
    }
    for (int32_t i = 0; i >= 0 && ns > 0; i = sy[i].next) {
        int32_t id = tab_find(t, w + sy[i].off, sy[i].n, 1);
        if (id >= 0) { emit(sc, id); continue; }
        for (uint32_t b = 0; b < sy[i].n; b++) {   /* byte fallback */
            int32_t bid = t->byte_id[(unsigned char)w[sy[i].off + b]];
            if (bid >= 0) emit(sc, bid);
        }
    }
    return 0;
}

/* The longest added token at s (len >= 1 bytes left): its id, its length in *n; or -1. */
static int32_t match_added(const tok_tokenizer *t, const char *s, size_t len, int parse_special,
                           size_t *n) {
    int32_t best = -1;
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        node = trie_child(t->trie, node, (uint8_t)s[i]);
        if (!node) break;
        int32_t id = parse_special ? t->trie[node].id_any : t->trie[node].id_user;
        if (id >= 0) {
            best = id;
            *n = i + 1;
        }
    }
    return best;
}

/* A stretch of plain text; after_added: it starts the text or follows an added token. */
static int section(const tok_tokenizer *t, scratch *sc, const char *s, size_t len, int after_added) {
    if (t->kind == TOK_SPM) return spm_section(t, sc, s, len, t->add_space_prefix && after_added);
    return encode_section(t, sc, s, len);
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int parse_special,
               int32_t *out, size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || (!out && cap)) return -1;
    scratch sc = {0};
    sc.out = out;
    sc.cap = cap;
    int rc = 0, after_added = 1;
    size_t start = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t n = 0;
        int32_t id = match_added(t, text + i, len - i, parse_special, &n);
        if (id < 0) { i++; continue; }
        rc = section(t, &sc, text + start, i - start, after_added);
        emit(&sc, id);
        after_added = 1;
        i += n;
        start = i;
    }
    if (rc == 0) rc = section(t, &sc, text + start, len - start, after_added || start == 0);
    free(sc.u);
    free(sc.v);
    free(sc.cls);
    free(sc.bytes);
    free(sc.sym);
    free(sc.heap);
    free(sc.frag);
    free(sc.frag2);
    free(sc.blw);
    free(sc.ssym);
    free(sc.sheap);
    *n_out = sc.n;
    return rc;
}
