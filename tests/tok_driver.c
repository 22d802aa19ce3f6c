/* tok_driver.c — runs our tokenizer on a stream of strings, for tests/tokenizer.test.mjs.
 *
 * Builds the tokenizer from a Hugging Face tokenizer.json (model.vocab, model.merges in either
 * the "a b" or the ["a", "b"] form, added_tokens: special -> TOK_CONTROL, others ->
 * TOK_USER_DEFINED), the way the GGUF converter lays them out. Not part of the library.
 *
 *   tok_driver TOKENIZER_JSON            reads records from stdin until EOF:
 *        1 byte mode (0: encode, parse_special=0; 1: encode, parse_special=1; 2: NFC only),
 *        4 bytes little-endian length, then that many bytes of text;
 *      and writes one line per record: the ids separated by spaces, a tab, then the hex of the
 *      bytes the ids decode to (mode 2: nothing, a tab, the hex of the NFC of the text).
 *   tok_driver TOKENIZER_JSON --bench FILE   times tok_new and the encoding of FILE.
 *   tok_driver --gguf FILE       the same records through the public API on the tokenizer of a
 *        GGUF file loaded with vocab_only (tests/vocab.test.mjs): mode 0/1 ob_tokenize with
 *        parse_special 0/1, mode 3 ob_tokenize_prompt with parse_special 0.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onebit.h"
#include "tokenizer.h"
#include "unicode.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) break;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static void die(const char *msg) {
    fprintf(stderr, "tok_driver: %s\n", msg);
    exit(1);
}

typedef struct loaded {
    tok_bytes *v;     /* (n) vocabulary */
    int32_t *types;   /* (n) */
    uint32_t n;
    tok_bytes *m;     /* (nm) merges */
    uint32_t nm;
} loaded;

static tok_tokenizer *build(const loaded *l, double *ms) {
    char err[256];
    tok_tokenizer *t;
    double t0 = now_ms();
    if (tok_new(&t, l->v, l->types, l->n, l->m, l->nm, err, sizeof err)) die(err);
    if (ms) *ms = now_ms() - t0;
    return t;
}

/* Reads tokenizer.json's vocabulary, types and merges (cJSON's strings stay alive in *root). */
static loaded load(const char *path, cJSON **root_out) {
    size_t len;
    char *txt = read_file(path, &len);
    if (!txt) die("cannot read tokenizer.json");
    cJSON *root = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!root) die("bad JSON");
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) die("no model.vocab / model.merges");

    int max_id = -1;
    cJSON *it;
    cJSON_ArrayForEach(it, vocab) if (it->valueint > max_id) max_id = it->valueint;
    cJSON_ArrayForEach(it, added) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsNumber(id) && id->valueint > max_id) max_id = id->valueint;
    }
    uint32_t n = (uint32_t)max_id + 1;
    tok_bytes *v = calloc(n, sizeof *v);
    int32_t *types = malloc(n * sizeof *types);
    if (!v || !types) die("out of memory");
    for (uint32_t i = 0; i < n; i++) types[i] = TOK_UNUSED;   /* holes stay empty, unused */
    cJSON_ArrayForEach(it, vocab) {
        if (it->valueint < 0) die("negative id");
        v[it->valueint] = (tok_bytes){it->string, (uint32_t)strlen(it->string)};
        types[it->valueint] = TOK_NORMAL;
    }
    cJSON_ArrayForEach(it, added) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        cJSON *special = cJSON_GetObjectItemCaseSensitive(it, "special");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content) || id->valueint < 0) die("bad added token");
        v[id->valueint] = (tok_bytes){content->valuestring, (uint32_t)strlen(content->valuestring)};
        types[id->valueint] = cJSON_IsTrue(special) ? TOK_CONTROL : TOK_USER_DEFINED;
    }
    uint32_t nm = (uint32_t)cJSON_GetArraySize(merges), k = 0;
    tok_bytes *m = calloc(nm ? nm : 1, sizeof *m);
    if (!m) die("out of memory");
    cJSON_ArrayForEach(it, merges) {
        char *s;
        if (cJSON_IsString(it)) {
            s = strdup(it->valuestring);
        } else {
            cJSON *a = cJSON_GetArrayItem(it, 0), *b = cJSON_GetArrayItem(it, 1);
            if (!cJSON_IsString(a) || !cJSON_IsString(b)) die("bad merge");
            size_t la = strlen(a->valuestring), lb = strlen(b->valuestring);
            s = malloc(la + lb + 2);
            if (s) {
                memcpy(s, a->valuestring, la);
                s[la] = ' ';
                memcpy(s + la + 1, b->valuestring, lb + 1);
            }
        }
        if (!s) die("out of memory");
        m[k++] = (tok_bytes){s, (uint32_t)strlen(s)};
    }

    *root_out = root;
    return (loaded){v, types, n, m, nm};
}

static void unload(loaded *l, cJSON *root) {
    for (uint32_t i = 0; i < l->nm; i++) free((void *)l->m[i].s);
    free(l->m);
    free(l->v);
    free(l->types);
    cJSON_Delete(root);
}

static int32_t *encode_all(tok_tokenizer *t, const char *s, size_t len, int special, size_t *n) {
    size_t cap = len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids || tok_encode(t, s, len, special, ids, cap, n)) die("encode failed");
    if (*n > cap) {
        free(ids);
        cap = *n;
        ids = malloc(cap * sizeof *ids);
        if (!ids || tok_encode(t, s, len, special, ids, cap, n) || *n != cap) die("encode failed");
    }
    return ids;
}

static void put_hex(const char *s, size_t n) {
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        putchar(hx[(unsigned char)s[i] >> 4]);
        putchar(hx[(unsigned char)s[i] & 15]);
    }
}

static int bench(tok_tokenizer *t, const loaded *l, const char *path) {
    double best = 1e30;
    for (int i = 0; i < 5; i++) {   /* the machine may be busy: the best of five */
        double ms;
        tok_free(build(l, &ms));
        if (ms < best) best = ms;
    }
    printf("tok_new: %u tokens, %u merges, %.1f ms (best of 5)\n", l->n, l->nm, best);
    size_t len;
    char *txt = read_file(path, &len);
    if (!txt) die("cannot read bench file");
    size_t n;
    int32_t *ids = NULL;
    double ms = 1e30;
    for (int i = 0; i < 5; i++) {
        free(ids);
        double t0 = now_ms();
        ids = encode_all(t, txt, len, 1, &n);
        if (now_ms() - t0 < ms) ms = now_ms() - t0;
    }
    printf("encoded %zu bytes into %zu tokens in %.1f ms (best of 5; %.1f MB/s)\n", len, n, ms,
           len / 1e3 / (ms > 0 ? ms : 1e-3));
    free(ids);
    free(txt);
    return 0;
}

/* --gguf FILE: records through ob_tokenize / ob_tokenize_prompt and ob_token_bytes. */
static int gguf_mode(const char *path) {
    ob_model_params mp = ob_model_default_params();
    mp.vocab_only = 1;
    ob_model *m;
    if (ob_model_load_file(path, &mp, &m) != OB_OK) {
        fprintf(stderr, "tok_driver: cannot load %s: %s\n", path, ob_last_error());
        return 1;
    }
    unsigned char hdr[5];
    while (fread(hdr, 1, 5, stdin) == 5) {
        uint32_t len = hdr[1] | (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3] << 16 | (uint32_t)hdr[4] << 24;
        char *s = malloc(len ? len : 1);
        if (!s || fread(s, 1, len, stdin) != len) die("short record");
        size_t n = 0, n2 = 0;
        int prompt = hdr[0] == 3, special = hdr[0] == 1;
        ob_status st = prompt ? ob_tokenize_prompt(m, s, len, 0, NULL, 0, &n) : ob_tokenize(m, s, len, special, NULL, 0, &n);
        ob_token *ids = malloc((n ? n : 1) * sizeof *ids);
        if (st || !ids) die("tokenize failed");
        st = prompt ? ob_tokenize_prompt(m, s, len, 0, ids, n, &n2) : ob_tokenize(m, s, len, special, ids, n, &n2);
        if (st || n2 != n) die("tokenize: the count differs between calls");
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\t');
        for (size_t i = 0; i < n; i++) {
            const char *p;
            size_t pl;
            if (ob_token_bytes(m, ids[i], &p, &pl)) die("tokenize produced a bad id");
            put_hex(p, pl);
        }
        putchar('\n');
        free(ids);
        free(s);
    }
    ob_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage: tok_driver TOKENIZER_JSON [--bench FILE] | tok_driver --gguf FILE");
    if (argc == 3 && strcmp(argv[1], "--gguf") == 0) return gguf_mode(argv[2]);
    cJSON *root;
    loaded l = load(argv[1], &root);
    tok_tokenizer *t = build(&l, NULL);
    if (argc >= 4 && strcmp(argv[2], "--bench") == 0) {
        int rc = bench(t, &l, argv[3]);
        tok_free(t);
        unload(&l, root);
        return rc;
    }
    unload(&l, root);
    unsigned char hdr[5];
    while (fread(hdr, 1, 5, stdin) == 5) {
        uint32_t len = hdr[1] | (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3] << 16 | (uint32_t)hdr[4] << 24;
        char *s = malloc(len ? len : 1);
        if (!s || fread(s, 1, len, stdin) != len) die("short record");
        if (hdr[0] == 2) {
            char *o;
            size_t ol;
            if (uni_nfc_utf8(s, len, &o, &ol)) die("out of memory");
            putchar('\t');
            put_hex(o, ol);
            free(o);
        } else {
            size_t n;
            int32_t *ids = encode_all(t, s, len, hdr[0] == 1, &n);
            for (size_t i = 0; i < n; i++) {
                const char *p;
                size_t pl;
                if (tok_piece(t, ids[i], &p, &pl)) die("encode produced a bad id");
                printf(i ? " %d" : "%d", ids[i]);
            }
            putchar('\t');
            for (size_t i = 0; i < n; i++) {
                const char *p;
                size_t pl;
                tok_piece(t, ids[i], &p, &pl);
                put_hex(p, pl);
            }
            free(ids);
        }
        putchar('\n');
        free(s);
    }
    tok_free(t);
    return 0;
}
