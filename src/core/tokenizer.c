/* tokenizer.c — byte-level BPE with Qwen2 pre-tokenization and added tokens.
 *
 * Encoding follows the Hugging Face tokenizer of Qwen3 step by step:
 *   1. added tokens are cut out of the raw text first (leftmost, then longest match; with
 *      parse_special = 0 only user-defined ones, like HF's split_special_tokens=True);
 *   2. each stretch between them is NFC-normalized (unicode.c);
 *   3. the Qwen2 pre-tokenizer regex splits it into words, done by hand in pretok_next();
 *   4. each word's UTF-8 bytes become byte-level symbols (GPT-2 bytes_to_unicode), merged by BPE
 *      in merge-rank order (lowest rank first, leftmost first on ties).
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
    int32_t byte_id[256];   /* the token of each single byte: BPE's starting symbols */
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
    free(t);
}

int tok_new(tok_tokenizer **out, const tok_bytes *vocab, const int32_t *types, uint32_t n_vocab,
            const tok_bytes *merges, uint32_t n_merges, char *err, size_t errlen) {
    if (!out) { set_err(err, errlen, "tokenizer: no output pointer"); return -1; }
    *out = NULL;
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
    uni_unit bl_fwd[256];
    int16_t bl_inv[BL_CHARS];
    bytelevel_tables(bl_fwd, bl_inv);
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

    /* every byte needs a starting symbol, or some input could not be encoded */
    for (unsigned b = 0; b < 256; b++) {
        char ch[4];
        size_t n = uni_encode(&bl_fwd[b], 1, ch);
        t->byte_id[b] = tab_find(t, ch, n, 1);
        if (t->byte_id[b] < 0) {
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
size_t tok_max_piece(const tok_tokenizer *t) { return t ? t->max_piece : 0; }

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
    size_t cap_u, cap_v, cap_cls, cap_b, cap_s, cap_h;
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
    if (n == 1) { emit(sc, t->byte_id[(unsigned char)w[0]]); return 0; }
    if (n > (size_t)INT32_MAX) return -1;
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

static int is_crlf(uni_unit c) { return c == '\r' || c == '\n'; }

/* End of the regex match that starts at i (one always does, and it is never empty). The
 * pattern, from tokenizer.json's pre_tokenizer, as transformers.js runs it (JS regex, flag u,
 * (?i:...) spelled out as [sS] etc.), alternatives tried in order, first success wins:
 *   '(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])
 *   | [^\r\n\p{L}\p{N}]?\p{L}+   | \p{N}   | ' '?[^\s\p{L}\p{N}]+[\r\n]*
 *   | \s*[\r\n]+   | \s+(?!\S)   | \s+                                                      */
static size_t pretok_next(const uni_unit *u, const uint8_t *cls, size_t i, size_t n) {
    uni_unit c = u[i];
    int k = cls[i];

    if (c == '\'' && i + 1 < n) {                     /* contractions, ASCII case only */
        /* | 0x20 lowercases ASCII letters and maps no other ASCII byte onto one */
        uni_unit a = u[i + 1] < 0x80 ? (u[i + 1] | 0x20) : 0;
        uni_unit b = i + 2 < n && u[i + 2] < 0x80 ? (u[i + 2] | 0x20) : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    size_t j = i;
    if (k != UNI_LETTER && !is_crlf(c) && k != UNI_NUMBER && i + 1 < n && cls[i + 1] == UNI_LETTER)
        j = i + 1;                                    /* one leading non-letter, then letters */
    if (cls[j] == UNI_LETTER) {
        while (j < n && cls[j] == UNI_LETTER) j++;
        return j;
    }
    if (k == UNI_NUMBER) return i + 1;                /* digits one at a time */
    j = (c == ' ' && i + 1 < n && cls[i + 1] == UNI_OTHER) ? i + 1 : i;
    if (cls[j] == UNI_OTHER) {                        /* punctuation run, optional space before */
        while (j < n && cls[j] == UNI_OTHER) j++;
        while (j < n && is_crlf(u[j])) j++;
        return j;
    }
    /* here u[i] is whitespace */
    size_t e = i;
    while (e < n && cls[e] == UNI_SPACE) e++;
    for (size_t m = e; m > i; m--)                    /* \s*[\r\n]+ : up to the last CR/LF */
        if (is_crlf(u[m - 1])) return m;
    if (e == n || e - i < 2) return e;                /* \s+(?!\S), else \s+ */
    return e - 1;                                     /* leave one space for the next word */
}

/* Normalizes, pre-tokenizes and BPE-encodes text that holds no added token. */
static int encode_section(const tok_tokenizer *t, scratch *sc, const char *s, size_t len) {
    if (len == 0) return 0;
    if (grow((void **)&sc->u, &sc->cap_u, len, sizeof *sc->u)) return -1;
    size_t n = uni_decode(s, len, sc->u);
    const uni_unit *u = sc->u;
    if (!uni_nfc_quick(sc->u, n)) {
        if (n > SIZE_MAX / UNI_NFC_GROWTH ||
            grow((void **)&sc->v, &sc->cap_v, n * UNI_NFC_GROWTH, sizeof *sc->v))
            return -1;
        n = uni_nfc(sc->u, n, sc->v);
        u = sc->v;
    }
    if (grow((void **)&sc->cls, &sc->cap_cls, n, 1)) return -1;
    for (size_t i = 0; i < n; i++) sc->cls[i] = (uint8_t)uni_class(u[i]);

    for (size_t i = 0; i < n;) {
        size_t e = pretok_next(u, sc->cls, i, n);
        if (e - i > SIZE_MAX / 4 || grow((void **)&sc->bytes, &sc->cap_b, (e - i) * 4, 1))
            return -1;
        size_t nb = uni_encode(u + i, e - i, sc->bytes);
        if (bpe_word(t, sc, sc->bytes, nb)) return -1;
        i = e;
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

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int parse_special,
               int32_t *out, size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || (!out && cap)) return -1;
    scratch sc = {0};
    sc.out = out;
    sc.cap = cap;
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t n = 0;
        int32_t id = match_added(t, text + i, len - i, parse_special, &n);
        if (id < 0) { i++; continue; }
        rc = encode_section(t, &sc, text + start, i - start);
        emit(&sc, id);
        i += n;
        start = i;
    }
    if (rc == 0) rc = encode_section(t, &sc, text + start, len - start);
    free(sc.u);
    free(sc.v);
    free(sc.cls);
    free(sc.bytes);
    free(sc.sym);
    free(sc.heap);
    *n_out = sc.n;
    return rc;
}
