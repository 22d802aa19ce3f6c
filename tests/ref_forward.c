/* ref_forward.c — an independent double-precision Qwen3 forward pass, the reference for logits.
 *
 *   build/ref_forward -m FILE --tokens 1,2,3 --out FILE
 *
 * Writes float32 little-endian logits [n_tokens][n_vocab] (position-major) for every position of
 * the token list, evaluated as one causal sequence starting at position 0. It shares only the GGUF
 * container reader (src/gguf.c) with the engine: the fp16 and Q1_0 decoding, the hyperparameter
 * handling and all of the math are written here again, straightforwardly, with every product and
 * sum in double. It is slow and meant to be: a specification to compare against, not an engine.
 *
 * Qwen3, per layer:  h = rmsnorm(x) * attn_norm;  q, k, v = Wq h, Wk h, Wv h;
 *   q, k = per-head rmsnorm with attn_q_norm / attn_k_norm;  rope (NeoX: pairs (i, i + hd/2));
 *   causal GQA attention, scale 1/sqrt(hd);  x += Wo att;
 *   h = rmsnorm(x) * ffn_norm;  x += Wdown (silu(Wgate h) * Wup h).
 * Finally logits = Wout (rmsnorm(x) * output_norm), Wout = output.weight or token_embd.weight.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ref_forward: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("out of memory");
    return p;
}

/* ---- element decoding (deliberately not shared with src/quant.c) ---------------------------- */

static double half_to_double(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    double v;
    if (exp == 0) v = ldexp((double)man, -24);                 /* zero and subnormals */
    else if (exp == 31) v = man ? NAN : INFINITY;
    else v = ldexp((double)(1024 + man), exp - 25);
    return sign ? -v : v;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A matrix or vector from the file: ne0 elements per row, ne1 rows. */
typedef struct mat {
    const gguf_tensor *t;
    int ne0, ne1;
    size_t row_bytes;
} mat;

/* Decodes row r of m into out[ne0]. */
static void decode_row(const mat *m, int r, double *out) {
    const uint8_t *p = (const uint8_t *)m->t->data + (size_t)r * m->row_bytes;
    switch (m->t->type) {
    case GGML_F32:
        for (int i = 0; i < m->ne0; i++) {
            uint32_t u = le32(p + 4 * i);
            float f;
            memcpy(&f, &u, 4);
            out[i] = f;
        }
        break;
    case GGML_F16:
        for (int i = 0; i < m->ne0; i++) out[i] = half_to_double(le16(p + 2 * i));
        break;
    case GGML_Q1_0:
        /* Blocks of 128: fp16 scale d, then 16 bytes of signs; bit j%8 of byte j/8 set = +d. */
        for (int b = 0; b < m->ne0 / 128; b++) {
            const uint8_t *blk = p + (size_t)b * 18;
            double d = half_to_double(le16(blk));
            for (int j = 0; j < 128; j++)
                out[b * 128 + j] = (blk[2 + j / 8] >> (j % 8)) & 1 ? d : -d;
        }
        break;
    default:
        die("tensor %.*s: type %u not supported by the reference", (int)m->t->name.len,
            m->t->name.ptr, m->t->type);
    }
}

static mat get_mat(const gguf_file *g, const char *name, int ne0, int ne1) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) die("tensor %s missing", name);
    if (t->ne[0] != (uint64_t)ne0 || t->ne[1] != (uint64_t)ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        die("tensor %s has shape [%llu, %llu], expected [%d, %d]", name,
            (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], ne0, ne1);
    if (!t->data) die("tensor %s has no data", name);
    mat m = {.t = t, .ne0 = ne0, .ne1 = ne1};
    switch (t->type) {
    case GGML_F32: m.row_bytes = (size_t)ne0 * 4; break;
    case GGML_F16: m.row_bytes = (size_t)ne0 * 2; break;
    case GGML_Q1_0:
        if (ne0 % 128) die("tensor %s: Q1_0 row of %d is not a multiple of 128", name, ne0);
        m.row_bytes = (size_t)ne0 / 128 * 18;
        break;
    default: die("tensor %s: type %u not supported by the reference", name, t->type);
    }
    if ((uint64_t)m.row_bytes * (uint64_t)ne1 != t->nbytes) die("tensor %s: size mismatch", name);
    return m;
}

/* A 1-D weight as doubles [n]. */
static double *get_vec(const gguf_file *g, const char *name, int n) {
    mat m = get_mat(g, name, n, 1);
    double *v = xcalloc((size_t)n, sizeof *v);
    decode_row(&m, 0, v);
    return v;
}

/* ---- math ----------------------------------------------------------------------------------- */

static double dot(const double *a, const double *b, int n) {
    /* Four partial sums: still plain double arithmetic, just not one long dependency chain. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* y[t][r] = sum_i W[r][i] x[t][i] for T positions: x [T][ne0], y [T][ne1]. Each weight row is
 * decoded once and applied to every position. */
static void matmul(const mat *w, const double *x, double *y, int T) {
    double *row = xcalloc((size_t)w->ne0, sizeof *row); /* [ne0] */
    for (int r = 0; r < w->ne1; r++) {
        decode_row(w, r, row);
        for (int t = 0; t < T; t++)
            y[(size_t)t * w->ne1 + r] = dot(row, x + (size_t)t * w->ne0, w->ne0);
    }
    free(row);
}

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i] */
static void rmsnorm(double *out, const double *x, const double *weight, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * s * weight[i];
}

/* NeoX rotation of one head vector v[hd] at position pos. */
static void rope(double *v, int hd, int pos, double theta) {
    for (int i = 0; i < hd / 2; i++) {
        double freq = pow(theta, -2.0 * i / hd), a = pos * freq;
        double c = cos(a), s = sin(a), x0 = v[i], x1 = v[i + hd / 2];
        v[i] = x0 * c - x1 * s;
        v[i + hd / 2] = x0 * s + x1 * c;
    }
}

/* ---- model ---------------------------------------------------------------------------------- */

static int get_int(const gguf_file *g, const char *key, int dflt) {
    uint32_t v;
    int rc = gguf_get_u32(g, key, &v);
    if (rc == -1 && dflt >= 0) return dflt;
    if (rc != 0 || v == 0 || v > (1u << 30)) die("metadata %s missing or invalid", key);
    return (int)v;
}

static double get_float(const gguf_file *g, const char *key) {
    float v;
    if (gguf_get_f32(g, key, &v) != 0) die("metadata %s missing or invalid", key);
    return v;
}

int main(int argc, char **argv) {
    const char *path = NULL, *out_path = NULL, *tok_arg = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-m") == 0) path = argv[i + 1];
        else if (strcmp(argv[i], "--tokens") == 0) tok_arg = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0) out_path = argv[i + 1];
        else die("unknown argument %s", argv[i]);
    }
    if (!path || !out_path || !tok_arg || argc % 2 == 0)
        die("usage: ref_forward -m FILE --tokens 1,2,3 --out FILE");

    gguf_file g;
    char err[256];
    if (gguf_open_file(&g, path, err, sizeof err) != 0) die("%s: %s", path, err);
    gguf_str arch;
    if (gguf_get_str(&g, "general.architecture", &arch) != 0 || !gguf_str_eq(arch, "qwen3"))
        die("%s: not a qwen3 model", path);

    int n_embd = get_int(&g, "qwen3.embedding_length", -1);
    int n_layer = get_int(&g, "qwen3.block_count", -1);
    int n_head = get_int(&g, "qwen3.attention.head_count", -1);
    int n_kv = get_int(&g, "qwen3.attention.head_count_kv", n_head);
    int n_ff = get_int(&g, "qwen3.feed_forward_length", -1);
    int hd = get_int(&g, "qwen3.attention.key_length", n_embd / n_head);
    if (get_int(&g, "qwen3.attention.value_length", hd) != hd) die("value_length != key_length");
    double eps = get_float(&g, "qwen3.attention.layer_norm_rms_epsilon");
    double theta = get_float(&g, "qwen3.rope.freq_base");
    if (n_head % n_kv || hd % 2) die("bad head configuration");
    const gguf_tensor *te = gguf_find_tensor(&g, "token_embd.weight");
    if (!te) die("token_embd.weight missing");
    int n_vocab = (int)te->ne[1];
    mat embd = get_mat(&g, "token_embd.weight", n_embd, n_vocab);
    mat wout = gguf_find_tensor(&g, "output.weight") ? get_mat(&g, "output.weight", n_embd, n_vocab)
                                                     : embd;
    int q_dim = n_head * hd, kv_dim = n_kv * hd;

    /* Tokens. */
    int T = 1;
    for (const char *p = tok_arg; *p; p++) T += *p == ',';
    int *tok = xcalloc((size_t)T, sizeof *tok); /* [T] */
    {
        const char *p = tok_arg;
        for (int t = 0; t < T; t++) {
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < 0 || v >= n_vocab) die("bad token list at '%s'", p);
            tok[t] = (int)v;
            p = *end == ',' ? end + 1 : end;
        }
        if (*p) die("bad token list");
    }

    /* Activations, all positions at once. */
    double *x = xcalloc((size_t)T * n_embd, sizeof *x);       /* [T][n_embd] residual stream */
    double *h = xcalloc((size_t)T * n_embd, sizeof *h);       /* [T][n_embd] normed input */
    double *q = xcalloc((size_t)T * q_dim, sizeof *q);        /* [T][n_head][hd] */
    double *k = xcalloc((size_t)T * kv_dim, sizeof *k);       /* [T][n_kv][hd] */
    double *v = xcalloc((size_t)T * kv_dim, sizeof *v);       /* [T][n_kv][hd] */
    double *att = xcalloc((size_t)T * q_dim, sizeof *att);    /* [T][n_head][hd] */
    double *o = xcalloc((size_t)T * n_embd, sizeof *o);       /* [T][n_embd] block output */
    double *gate = xcalloc((size_t)T * n_ff, sizeof *gate);   /* [T][n_ff] */
    double *up = xcalloc((size_t)T * n_ff, sizeof *up);       /* [T][n_ff] */
    double *p = xcalloc((size_t)T, sizeof *p);                /* [T] attention weights */

    for (int t = 0; t < T; t++) decode_row(&embd, tok[t], x + (size_t)t * n_embd);

    char nm[96];
#define W(fmt, a, b) (snprintf(nm, sizeof nm, fmt, l), get_mat(&g, nm, a, b))
#define V(fmt, n) (snprintf(nm, sizeof nm, fmt, l), get_vec(&g, nm, n))
    for (int l = 0; l < n_layer; l++) {
        double *attn_norm = V("blk.%d.attn_norm.weight", n_embd);
        double *q_norm = V("blk.%d.attn_q_norm.weight", hd);
        double *k_norm = V("blk.%d.attn_k_norm.weight", hd);
        double *ffn_norm = V("blk.%d.ffn_norm.weight", n_embd);
        mat wq = W("blk.%d.attn_q.weight", n_embd, q_dim);
        mat wk = W("blk.%d.attn_k.weight", n_embd, kv_dim);
        mat wv = W("blk.%d.attn_v.weight", n_embd, kv_dim);
        mat wo = W("blk.%d.attn_output.weight", q_dim, n_embd);
        mat wg = W("blk.%d.ffn_gate.weight", n_embd, n_ff);
        mat wu = W("blk.%d.ffn_up.weight", n_embd, n_ff);
        mat wd = W("blk.%d.ffn_down.weight", n_ff, n_embd);

        /* Attention. */
        for (int t = 0; t < T; t++)
            rmsnorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, attn_norm, n_embd, eps);
        matmul(&wq, h, q, T);
        matmul(&wk, h, k, T);
        matmul(&wv, h, v, T);
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < n_head; hh++) {
                double *qh = q + (size_t)t * q_dim + (size_t)hh * hd;
                rmsnorm(qh, qh, q_norm, hd, eps);
                rope(qh, hd, t, theta);
            }
            for (int hh = 0; hh < n_kv; hh++) {
                double *kh = k + (size_t)t * kv_dim + (size_t)hh * hd;
                rmsnorm(kh, kh, k_norm, hd, eps);
                rope(kh, hd, t, theta);
            }
        }
        double scale = 1.0 / sqrt((double)hd);
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < n_head; hh++) {
                int kvh = hh / (n_head / n_kv);
                const double *qh = q + (size_t)t * q_dim + (size_t)hh * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    p[j] = dot(qh, k + (size_t)j * kv_dim + (size_t)kvh * hd, hd) * scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
                double *ah = att + (size_t)t * q_dim + (size_t)hh * hd;
                for (int i = 0; i < hd; i++) ah[i] = 0;
                for (int j = 0; j <= t; j++) {
                    const double *vj = v + (size_t)j * kv_dim + (size_t)kvh * hd;
                    for (int i = 0; i < hd; i++) ah[i] += p[j] / sum * vj[i];
                }
            }
        }
        matmul(&wo, att, o, T);
        for (size_t i = 0; i < (size_t)T * n_embd; i++) x[i] += o[i];

        /* Feed-forward (SwiGLU). */
        for (int t = 0; t < T; t++)
            rmsnorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, ffn_norm, n_embd, eps);
        matmul(&wg, h, gate, T);
        matmul(&wu, h, up, T);
        for (size_t i = 0; i < (size_t)T * n_ff; i++)
            gate[i] = gate[i] / (1.0 + exp(-gate[i])) * up[i]; /* silu(gate) * up */
        matmul(&wd, gate, o, T);
        for (size_t i = 0; i < (size_t)T * n_embd; i++) x[i] += o[i];

        free(attn_norm);
        free(q_norm);
        free(k_norm);
        free(ffn_norm);
    }
#undef W
#undef V

    /* Output. */
    double *out_norm = get_vec(&g, "output_norm.weight", n_embd);
    for (int t = 0; t < T; t++)
        rmsnorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, out_norm, n_embd, eps);
    double *logits = xcalloc((size_t)T * n_vocab, sizeof *logits); /* [T][n_vocab] */
    matmul(&wout, h, logits, T);

    FILE *f = fopen(out_path, "wb");
    if (!f) die("cannot create %s: %s", out_path, strerror(errno));
    for (size_t i = 0; i < (size_t)T * n_vocab; i++) {
        float fl = (float)logits[i];
        uint32_t u;
        memcpy(&u, &fl, 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        if (fwrite(b, 1, 4, f) != 4) die("write error on %s", out_path);
    }
    if (fclose(f) != 0) die("write error on %s", out_path);

    free(logits);
    free(out_norm);
    free(x); free(h); free(q); free(k); free(v); free(att); free(o); free(gate); free(up); free(p);
    free(tok);
    gguf_close(&g);
    return 0;
}
