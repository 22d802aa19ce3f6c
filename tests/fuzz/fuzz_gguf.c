/* fuzz_gguf.c — libFuzzer target for the GGUF reader and the model loader.
 *
 * Each input is a model file. The reader parses it whole and as a half-length prefix (the way the
 * wasm build streams weights; the partial loader runs on that prefix too), and every string, array and tensor it hands out is touched at both
 * ends so that AddressSanitizer sees any extent the reader got wrong. Then the public loader runs
 * on it; when a model loads (the seeds are valid models), two tokens are evaluated on the scalar
 * backend and again on the SIMD CPU backend, one token is sampled from the logits (it must be a valid id, whatever the weights), and
 * the tokenizer, detokenizer, chat and metadata calls run once. Otherwise not a correctness check:
 * crashes, sanitizer reports, leaks and timeouts are the findings. Built and run by run.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"
#include "onebit.h"

static volatile uint8_t sink;

static void touch(const void *p, uint64_t n) {
    if (n == 0) return;
    const uint8_t *b = p;
    sink ^= b[0];
    sink ^= b[n - 1];
}

/* Reads back everything the reader returned. */
static void walk(const gguf_file *g, uint64_t size) {
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        touch(kv->key.ptr, kv->key.len);
        if (kv->type != GGUF_ARRAY || kv->arr_n > size) continue;
        if (kv->arr_type == GGUF_STRING) {
            gguf_str *s = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof *s);
            if (s && gguf_get_str_array(kv, s) == 0)
                for (uint64_t j = 0; j < kv->arr_n; j++) touch(s[j].ptr, s[j].len);
            free(s);
        } else {
            int32_t *v = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof *v);
            if (v) gguf_get_i32_array(kv, v);
            free(v);
        }
    }
    uint32_t u;
    float f;
    int b;
    gguf_str s;
    gguf_get_u32(g, "general.alignment", &u);
    gguf_get_f32(g, "qwen3.rope.freq_base", &f);
    gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b);
    if (gguf_get_str(g, "general.architecture", &s) == 0) touch(s.ptr, s.len);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        touch(t->name.ptr, t->name.len);
        if (t->data) touch(t->data, t->nbytes);
    }
}

static void run_model(ob_model *m) {
    ob_model_info info;
    ob_model_get_info(m, &info);
    ob_model_meta(m, "general.name");
    ob_model_meta(m, "tokenizer.ggml.tokens");
    ob_model_meta(m, "tokenizer.ggml.token_type");
    ob_model_meta(m, "qwen3.rope.freq_base");

    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = 8;
    ob_context *c = NULL;
    if (ob_context_new(m, &cp, &c) == OB_OK) {
        ob_token t[2] = {0, info.n_vocab - 1};
        if (ob_eval(c, t, 2, 1) == OB_OK) {
            /* Hostile weights may give NaN or inf logits: the sampler must still pick a real id. */
            const float *lg = ob_logits(c, 1);
            ob_sampling sp = ob_sampling_default();
            ob_sampler *smp = NULL;
            if (lg && ob_sampler_new(&sp, info.n_vocab, &smp) == OB_OK) {
                ob_token next = ob_sampler_sample(smp, lg, t, 2);
                if (next < 0 || next >= info.n_vocab) abort();
                ob_sampler_free(smp);
            }
        }
        ob_context_free(c);
    }

    static const char text[] = "Hello <|im_end|> world\xff\xc3 \xe4\xb8\xad!";
    ob_token ids[64];
    size_t n = 0;
    if (ob_tokenize(m, text, sizeof text - 1, 1, ids, 64, &n) == OB_OK) {
        ob_detok d;
        ob_detok_init(&d);
        char out[4096];
        for (size_t i = 0; i < n && i < 64; i++) {
            const char *p;
            size_t len;
            if (ob_token_bytes(m, ids[i], &p, &len) == OB_OK) touch(p, len);
            ob_detok_push(m, &d, ids[i], out, sizeof out);
        }
        ob_detok_flush(&d, out, sizeof out);
    }
    ob_chat_message msg = {"user", "hi"};
    char *prompt = NULL;
    if (ob_chat_render(m, &msg, 1, 1, 0, &prompt) == OB_OK) free(prompt);
}

/* The streaming path (model.h): the first half of the file in memory, the norm vectors beyond it
 * supplied afterwards from the file bytes the way a host would, then completed. Native backends
 * refuse partial models (only the WebGPU one streams weights), so here that refusal is what runs. */
static void load_partial(const uint8_t *data, size_t size, const ob_model_params *mp) {
    size_t avail = size / 2;
    void *image = malloc(avail ? avail : 1);
    if (!image) return;
    memcpy(image, data, avail);
    ob_model *m = NULL;
    if (ob_model_load_partial(image, avail, size, mp, &m) != OB_OK) return; /* it freed image */
    for (int i = 0; i < m->n_pending; i++) {
        const ob_pending_vec *pv = &m->pending[i];
        memcpy(pv->raw, data + pv->t->offset, (size_t)pv->t->nbytes);
    }
    model_complete(m);
    ob_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file g;
    char err[512];
    if (gguf_open_memory(&g, data, size, size, err, sizeof err) == 0) {
        walk(&g, size);
        gguf_close(&g);
    }
    if (gguf_open_memory(&g, data, size / 2, size, err, sizeof err) == 0) {
        walk(&g, size);
        gguf_close(&g);
    }
    ob_model_params mp = ob_model_default_params();
    mp.backend = "scalar";
    mp.n_threads = 1;
    ob_model *m = NULL;
    if (ob_model_load_memory(data, size, &mp, &m) == OB_OK) {
        run_model(m);
        ob_model_free(m);
        /* The SIMD backend too (repacking, tiles, threads), on shapes no real model has. Waking
         * pool threads dominates the time of small inputs: a quarter of them get two threads. */
        mp.backend = "cpu";
        mp.n_threads = size % 4 == 0 ? 2 : 1;
        if (ob_model_load_memory(data, size, &mp, &m) == OB_OK) {
            run_model(m);
            ob_model_free(m);
        }
        mp.backend = "scalar";
        mp.n_threads = 1;
    }
    load_partial(data, size, &mp);
    return 0;
}
