/* test_gen.c — unit tests for the generation loop (src/core/gen.c: ob_gen_* and ob_generate).
 *
 * Runs the bundled demo model (models/demo.gguf, English text) greedily on the cpu backend and
 * checks the rules against a reference run without stop strings: stop strings that straddle token
 * boundaries end the text just before them (and their token leaves the cache), partial matches are
 * held back and released when they fail, end-of-generation tokens end a chat answer and stay in the
 * cache, max_tokens (and <= 0: until the context is full), a full context, a prompt longer than
 * the context, prefix reuse, the callback's stop, and that text is streamed in whole UTF-8
 * characters (on a random model this test writes, whose vocabulary is the 256 byte tokens, so that
 * every character of more than one byte is split across tokens). Run from the repository root; the
 * demo model's path may be given as an argument.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_write.h"
#include "onebit.h"

static int failures;
#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            failures++;                                                                      \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                           \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
        }                                                                                    \
    } while (0)

#define MAXT 512

/* What a generation produced, event by event. */
typedef struct run {
    ob_status st;
    ob_generate_result r;
    ob_token toks[MAXT];
    int n_toks;
    char text[8192];
    size_t len;
    int events_bad_utf8; /* events whose text is not whole, valid UTF-8 */
    int cancel_after;    /* > 0: cancel after this many TOKEN events with text */
} run;

static int valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        size_t k = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        i += k;
    }
    return 1;
}

static ob_generate_params params(int max_tokens, const char *const *stop) {
    ob_generate_params p;
    memset(&p, 0, sizeof p);
    p.sampling = ob_sampling_default();
    p.sampling.temperature = 0; /* greedy */
    p.max_tokens = max_tokens;
    p.stop = stop;
    return p;
}

/* Drives the state machine as a front end would. */
static void gen(ob_context *c, const ob_token *prompt, size_t n, const ob_generate_params *p, run *out) {
    int cancel_after = out->cancel_after;
    memset(out, 0, sizeof *out);
    ob_gen *g = NULL;
    out->st = ob_gen_begin(c, prompt, n, p, &g);
    if (out->st) return;
    int with_text = 0;
    for (;;) {
        ob_gen_event ev;
        if ((out->st = ob_gen_next(g, &ev))) break;
        CHECK(ev == OB_GEN_TOKEN || ev == OB_GEN_DONE, "a synchronous backend asked for %d", (int)ev);
        size_t len;
        const char *t = ob_gen_text(g, &len);
        if (!valid_utf8((const unsigned char *)t, len)) out->events_bad_utf8++;
        if (out->len + len < sizeof out->text) {
            memcpy(out->text + out->len, t, len);
            out->len += len;
            out->text[out->len] = 0;
        }
        if (ev == OB_GEN_DONE) break;
        if (out->n_toks < MAXT) out->toks[out->n_toks++] = ob_gen_token(g);
        if (len && cancel_after > 0 && ++with_text == cancel_after) ob_gen_cancel(g);
    }
    ob_gen_result(g, &out->r);
    ob_gen_free(g);
}

static size_t tokenize(ob_model *m, const char *s, ob_token *out, size_t cap) {
    size_t n = 0;
    CHECK(ob_tokenize(m, s, strlen(s), 1, out, cap, &n) == OB_OK && n <= cap, "tokenize %s", s);
    return n;
}

static int cache_is(ob_context *c, const ob_token *a, int na, const ob_token *b, int nb) {
    if (ob_context_n_past(c) != na + nb) return 0;
    const ob_token *t = ob_context_tokens(c);
    return memcmp(t, a, (size_t)na * sizeof *a) == 0 && memcmp(t + na, b, (size_t)nb * sizeof *b) == 0;
}

static int on_text_stop_first(const char *text, size_t len, void *user) {
    (void)text, (void)len;
    return ++*(int *)user >= 1;
}

static void test_demo(const char *path) {
    ob_model_params mp = ob_model_default_params();
    mp.backend = "cpu";
    ob_model *m = NULL;
    if (ob_model_load_file(path, &mp, &m) != OB_OK) {
        printf("SKIP demo tests: %s\n", ob_last_error());
        return;
    }
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 64;
    ob_context *c = NULL;
    CHECK(ob_context_new(m, &cp, &c) == OB_OK, "%s", ob_last_error());
    ob_token prompt[64];
    int np = (int)tokenize(m, "And God said", prompt, 64);

    /* The reference: 20 greedy tokens, no stop strings. */
    static run ref, r;
    ob_generate_params p = params(20, NULL);
    gen(c, prompt, (size_t)np, &p, &ref);
    CHECK(ref.st == OB_OK && ref.r.finish == OB_FINISH_LENGTH && ref.r.n_generated == 20 && ref.n_toks == 20,
          "st %d finish %d n %d", ref.st, ref.r.finish, ref.r.n_generated);
    CHECK(strncmp(ref.text, " unto him, I will not go with thee, and I", 41) == 0, "golden text: '%s'", ref.text);
    CHECK(ref.r.n_prompt == np && ref.r.n_reused == 0, "prompt %d reused %d", ref.r.n_prompt, ref.r.n_reused);
    /* max_tokens: the last token stays in the cache. */
    CHECK(cache_is(c, prompt, np, ref.toks, 20), "n_past %d", ob_context_n_past(c));

    /* The same through ob_generate (the synchronous driver) from an empty cache. */
    ob_context_truncate(c, 0);
    ob_generate_result gr;
    CHECK(ob_generate(c, prompt, (size_t)np, &p, &gr) == OB_OK && gr.finish == OB_FINISH_LENGTH && gr.n_generated == 20,
          "ob_generate");

    /* Prefix reuse: the conversation so far plus more tokens reuses all of it. */
    ob_token longer[64];
    memcpy(longer, prompt, (size_t)np * sizeof *prompt);
    memcpy(longer + np, ref.toks, 20 * sizeof *prompt);
    longer[np + 20] = prompt[0];
    p = params(3, NULL);
    gen(c, longer, (size_t)np + 21, &p, &r);
    CHECK(r.st == OB_OK && r.r.n_reused == np + 20 && r.r.n_prompt == 1, "reused %d prompt %d", r.r.n_reused, r.r.n_prompt);
    /* ... and a prompt that diverges reuses the common part only. */
    ob_token other[8];
    memcpy(other, prompt, (size_t)np * sizeof *prompt);
    other[np - 1] = prompt[0];
    gen(c, other, (size_t)np, &p, &r);
    CHECK(r.st == OB_OK && r.r.n_reused == np - 1, "reused %d", r.r.n_reused);

    /* Stop strings across token boundaries: each cut through the middle of a token. */
    const char *cuts[][2] = {{"ll not g", " unto him, I wi"}, {"him, I", " unto "}, {"e, and", " unto him, I will not go with the"}};
    for (int i = 0; i < 3; i++) {
        const char *stop[] = {"never appears", cuts[i][0], NULL};
        p = params(20, stop);
        ob_context_truncate(c, 0);
        gen(c, prompt, (size_t)np, &p, &r);
        CHECK(r.st == OB_OK && r.r.finish == OB_FINISH_STOP, "stop '%s': finish %d", cuts[i][0], r.r.finish);
        CHECK(strcmp(r.text, cuts[i][1]) == 0, "stop '%s': text '%s'", cuts[i][0], r.text);
        /* The token that completed the stop string is not in the cache. */
        CHECK(cache_is(c, prompt, np, r.toks, r.n_toks - 1), "stop '%s': n_past %d, %d tokens", cuts[i][0],
              ob_context_n_past(c), r.n_toks);
    }
    /* A partial match that fails is released: the text is the reference's. */
    {
        const char *stop[] = {"him, You", "I will never", NULL};
        p = params(20, stop);
        gen(c, prompt, (size_t)np, &p, &r);
        CHECK(r.st == OB_OK && r.r.finish == OB_FINISH_LENGTH && strcmp(r.text, ref.text) == 0, "held text: '%s'", r.text);
    }
    /* A stop string at the very end of the generation is still caught (held back, then not emitted). */
    {
        const char *stop[] = {"and I", NULL};
        p = params(20, stop);
        gen(c, prompt, (size_t)np, &p, &r);
        CHECK(r.r.finish == OB_FINISH_STOP && strcmp(r.text, " unto him, I will not go with thee, ") == 0, "text '%s'", r.text);
    }

    /* The callback stops: finish 3, and the token it stopped at is not in the cache. */
    {
        p = params(20, NULL);
        int calls = 0;
        p.on_text = on_text_stop_first;
        p.user = &calls;
        ob_context_truncate(c, 0);
        CHECK(ob_generate(c, prompt, (size_t)np, &p, &gr) == OB_OK && gr.finish == OB_FINISH_CALLBACK && gr.n_generated == 1,
              "finish %d n %d", gr.finish, gr.n_generated);
        CHECK(ob_context_n_past(c) == np, "n_past %d", ob_context_n_past(c));
        r.cancel_after = 2;
        p = params(20, NULL);
        gen(c, prompt, (size_t)np, &p, &r);
        CHECK(r.r.finish == OB_FINISH_CALLBACK && r.n_toks == 2 && cache_is(c, prompt, np, r.toks, 1), "cancel: finish %d n %d past %d",
              r.r.finish, r.n_toks, ob_context_n_past(c));
    }

    /* max_tokens <= 0: until the context is full; the last token does not fit. */
    p = params(0, NULL);
    ob_context_truncate(c, 0);
    gen(c, prompt, (size_t)np, &p, &r);
    CHECK(r.st == OB_OK && r.r.finish == OB_FINISH_CONTEXT && r.r.n_generated == 64 - np + 1 && ob_context_n_past(c) == 64,
          "finish %d n %d past %d", r.r.finish, r.r.n_generated, ob_context_n_past(c));
    /* A prompt that fills the context exactly still gives one token; a longer one is refused. */
    ob_token full[65];
    for (int i = 0; i < 65; i++) full[i] = prompt[i % np];
    ob_context_truncate(c, 0);
    gen(c, full, 64, &p, &r);
    CHECK(r.st == OB_OK && r.r.finish == OB_FINISH_CONTEXT && r.r.n_generated == 1, "full prompt: st %d finish %d n %d", r.st,
          r.r.finish, r.r.n_generated);
    gen(c, full, 65, &p, &r);
    CHECK(r.st == OB_ERR_CONTEXT && strstr(ob_last_error(), "context holds 64"), "long prompt: %d %s", r.st, ob_last_error());
    gen(c, full, 0, &p, &r);
    CHECK(r.st == OB_ERR_ARG, "empty prompt: %d", r.st);

    /* An end-of-generation token ends a chat answer and enters the cache. */
    {
        ob_context_params cp2 = ob_context_default_params();
        cp2.n_ctx = 256;
        ob_context *c2 = NULL;
        CHECK(ob_context_new(m, &cp2, &c2) == OB_OK, "%s", ob_last_error());
        ob_chat_message msg = {"user", "Hi"};
        char *chat = NULL;
        CHECK(ob_chat_render(m, &msg, 1, 1, 0, &chat) == OB_OK, "chat");
        ob_token ct[128];
        int nc = (int)tokenize(m, chat, ct, 128);
        free(chat);
        /* Sampled answers: most run on, some end with <|im_end|> well within the limit. At the
         * default temperature (0.7) about 1 in 60 seeds ended within 200 tokens (int16 and int14
         * activations alike), too rare for a dozen seeds to be sure of one on every kernel's
         * arithmetic; at 1.3 about 17 in 60 do. */
        int ended = 0;
        for (int seed = 1; seed <= 32 && !ended; seed++) {
            p = params(200, NULL);
            p.sampling = ob_sampling_default();
            p.sampling.temperature = 1.3f;
            p.sampling.seed = (uint64_t)seed;
            gen(c2, ct, (size_t)nc, &p, &r);
            CHECK(r.st == OB_OK, "%s", ob_last_error());
            if (r.r.finish != OB_FINISH_STOP) continue;
            ended = 1;
            CHECK(r.n_toks > 0 && ob_token_is_eog(m, r.toks[r.n_toks - 1]) && r.n_toks < 200, "eog: n %d", r.n_toks);
            CHECK(cache_is(c2, ct, nc, r.toks, r.n_toks), "the end token is cached: n_past %d", ob_context_n_past(c2));
            CHECK(!strstr(r.text, "<|im_end|>"), "text '%s'", r.text);
        }
        CHECK(ended, "no sampled answer ended with an end-of-generation token");
        ob_context_free(c2);
    }
    ob_context_free(c);
    ob_model_free(m);
}

/* Text is streamed in whole UTF-8 characters, and all of it: the events' concatenation is the
 * detokenizer's text of every token. */
static void test_utf8(const char *path) {
    ob_model_params mp = ob_model_default_params();
    mp.backend = "cpu";
    ob_model *m = NULL;
    if (ob_model_load_file(path, &mp, &m) != OB_OK) {
        CHECK(0, "the byte-vocabulary model does not load: %s", ob_last_error());
        return;
    }
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 160;
    ob_context *c = NULL;
    CHECK(ob_context_new(m, &cp, &c) == OB_OK, "%s", ob_last_error());
    ob_token prompt[64];
    int np = (int)tokenize(m, "日本語のテキスト", prompt, 64);
    static run r;
    static char want[16384];
    int split = 0; /* tokens that were not whole characters on their own (the test needs some) */
    for (int seed = 1; seed <= 20 && split < 3; seed++) {
        ob_generate_params p = params(150, NULL);
        p.sampling.temperature = 1.0f; /* every token is one byte: non-ASCII characters always split */
        p.sampling.top_k = 0;
        p.sampling.top_p = 1.0f;
        p.sampling.seed = (uint64_t)seed;
        gen(c, prompt, (size_t)np, &p, &r);
        CHECK(r.st == OB_OK && r.events_bad_utf8 == 0, "st %d, %d events with broken UTF-8", r.st, r.events_bad_utf8);
        size_t wl = 0;
        ob_detok d;
        ob_detok_init(&d);
        for (int i = 0; i < r.n_toks; i++) {
            const char *b;
            size_t bl;
            if (ob_token_is_eog(m, r.toks[i])) continue;
            if (ob_token_bytes(m, r.toks[i], &b, &bl) == OB_OK && !valid_utf8((const unsigned char *)b, bl)) split++;
            wl += (size_t)ob_detok_push(m, &d, r.toks[i], want + wl, sizeof want - wl);
        }
        if (r.r.finish != OB_FINISH_STOP) wl += (size_t)ob_detok_flush(&d, want + wl, sizeof want - wl);
        CHECK(wl == r.len && memcmp(want, r.text, wl) == 0, "seed %d: streamed text differs (%zu vs %zu bytes)", seed, r.len, wl);
    }
    CHECK(split > 0, "no token split a character: the test did not exercise it");
    ob_context_free(c);
    ob_model_free(m);
}

/* A one-layer llama model whose vocabulary is the 256 byte tokens of byte-level BPE (plus an end
 * token), random F32 weights: every generated token is one byte, so characters of more than one
 * byte are always split across tokens. Written to path; 0 or -1. */
static int write_byte_model(const char *path) {
    enum { E = 64, F = 128, HD = 32, V = 258 };
    gguf_writer *w = gguf_writer_new(0);
    if (!w) return -1;
    int rc = 0;
    rc |= gguf_w_str(w, "general.architecture", "llama");
    rc |= gguf_w_u32(w, "llama.embedding_length", E);
    rc |= gguf_w_u32(w, "llama.block_count", 1);
    rc |= gguf_w_u32(w, "llama.feed_forward_length", F);
    rc |= gguf_w_u32(w, "llama.attention.head_count", E / HD);
    rc |= gguf_w_u32(w, "llama.context_length", 512);
    /* byte-level BPE's printable stand-ins for the 256 bytes, then a merge's result and the end */
    static char tok[V][16];
    const char *ptr[V];
    size_t len[V];
    int32_t type[V];
    for (int b = 0, extra = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)extra++;
        if (cp < 0x80) tok[b][0] = (char)cp;
        else { tok[b][0] = (char)(0xc0 | (cp >> 6)); tok[b][1] = (char)(0x80 | (cp & 0x3f)); }
        type[b] = 1;
    }
    strcpy(tok[256], "\xc4\xa0\xc4\xa0"); /* "ĠĠ": two spaces */
    type[256] = 1;
    strcpy(tok[257], "<|endoftext|>");
    type[257] = 3;
    for (int i = 0; i < V; i++) ptr[i] = tok[i], len[i] = strlen(tok[i]);
    const char *merge = "\xc4\xa0 \xc4\xa0";
    size_t mlen = strlen(merge);
    rc |= gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    rc |= gguf_w_str(w, "tokenizer.ggml.pre", "qwen2");
    rc |= gguf_w_arr_str(w, "tokenizer.ggml.tokens", ptr, len, V);
    rc |= gguf_w_arr_i32(w, "tokenizer.ggml.token_type", type, V);
    rc |= gguf_w_arr_str(w, "tokenizer.ggml.merges", &merge, &mlen, 1);
    rc |= gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 257);
    static float buf[V * E];
    uint64_t st = 12345;
    struct { const char *name; int ne0, ne1; float scale; } t[] = {
        {"token_embd.weight", E, V, 1.0f}, {"output.weight", E, V, 0.5f}, {"output_norm.weight", E, 1, 0},
        {"blk.0.attn_norm.weight", E, 1, 0}, {"blk.0.ffn_norm.weight", E, 1, 0},
        {"blk.0.attn_q.weight", E, E, 0.2f}, {"blk.0.attn_k.weight", E, E, 0.2f}, {"blk.0.attn_v.weight", E, E, 0.2f},
        {"blk.0.attn_output.weight", E, E, 0.2f}, {"blk.0.ffn_gate.weight", E, F, 0.2f},
        {"blk.0.ffn_up.weight", E, F, 0.2f}, {"blk.0.ffn_down.weight", F, E, 0.2f},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        size_t n = (size_t)t[i].ne0 * (size_t)t[i].ne1;
        for (size_t j = 0; j < n; j++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)((st >> 40) & 0xffffff) / 16777216.0f - 0.5f; /* uniform in [-0.5, 0.5) */
            buf[j] = t[i].scale ? u * 2.0f * t[i].scale : 1.0f;      /* norms: ones */
        }
        uint64_t ne[2] = {(uint64_t)t[i].ne0, (uint64_t)t[i].ne1};
        rc |= gguf_w_tensor(w, t[i].name, GGML_F32, t[i].ne1 == 1 ? 1 : 2, ne, buf, n * sizeof(float));
    }
    if (!rc) rc = gguf_writer_save(w, path);
    gguf_writer_free(w);
    return rc;
}

/* A model loaded without weights (vocab_only) tokenizes and renders but refuses to evaluate. */
static void test_vocab_only(const char *path) {
    ob_model_params mp = ob_model_default_params();
    mp.vocab_only = 1;
    ob_model *m = NULL;
    CHECK(ob_model_load_file(path, &mp, &m) == OB_OK, "%s", ob_last_error());
    if (!m) return;
    ob_token t[8];
    size_t n = 0;
    CHECK(ob_tokenize(m, "In the beginning", 16, 0, t, 8, &n) == OB_OK && n > 0, "tokenize: %s", ob_last_error());
    ob_context *c = NULL;
    CHECK(ob_context_new(m, NULL, &c) == OB_ERR_ARG && !c, "a vocab-only model opened a context");
    ob_model_free(m);
}

int main(int argc, char **argv) {
    test_demo(argc > 1 ? argv[1] : "models/demo.gguf");
    test_vocab_only(argc > 1 ? argv[1] : "models/demo.gguf");
    char path[] = "/tmp/onebit-test-gen-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write_byte_model(path) == 0, "cannot write the byte-vocabulary model to %s", path);
    if (fd >= 0) {
        close(fd);
        test_utf8(path);
        unlink(path);
    }
    if (failures) {
        printf("test_gen: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_gen: ok\n");
    return 0;
}
