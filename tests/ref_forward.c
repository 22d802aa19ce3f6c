/* ref_forward.c — an independent double-precision forward pass, the reference for logits.
 *
 *   build/ref_forward -m FILE --tokens 1,2,3 --out FILE
 *
 * Writes float32 little-endian logits [n_tokens][n_vocab] (position-major) for every position of
 * the token list, evaluated as one causal sequence starting at position 0. It shares only the GGUF
 * container reader (src/core/gguf.c) with the engine: the element decoding of every weight type,
 * the architectures' flags, the hyperparameter handling and all of the math are written here
 * again, straightforwardly, with every product and sum in double. It is slow and meant to be: a
 * specification to compare against, not an engine.
 *
 * Per layer, as the family's flags say (see the table below):
 *   h = norm(x) (RMSNorm, or LayerNorm with bias);  q, k, v = Wq h + bq, ... (or fused Wqkv);
 *   QK-norm (per-head RMSNorm);  RoPE on the first n_rot dims (NeoX halves or adjacent pairs,
 *   frequency factors from rope_freqs, linear scaling);  causal GQA attention, scale 1/sqrt(hd);
 *   sub-norm of the attention output;  o = Wo att + bo;
 *   sequential: x += o; h = norm(x); x += ffn(h)    parallel: x += o + ffn(h)
 *   ffn(h) = Wdown(subnorm(act(Wgate h + bg) * (Wup h + bu))) + bd  (or act(Wup h + bu) ungated)
 * Finally logits = Wout norm(x) + bout, Wout = output.weight or token_embd.weight.
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

/* ---- element decoding (deliberately not shared with src/core/quant.c) ----------------------- */

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

/* Block geometry of the types the reference decodes: elements and bytes per block. */
static int type_geom(uint32_t type, int *blk, int *bytes) {
    switch (type) {
    case GGML_F32: *blk = 1; *bytes = 4; return 0;
    case GGML_F16: case GGML_BF16: *blk = 1; *bytes = 2; return 0;
    case GGML_Q4_0: *blk = 32; *bytes = 18; return 0;
    case GGML_Q4_1: *blk = 32; *bytes = 20; return 0;
    case GGML_Q5_0: *blk = 32; *bytes = 22; return 0;
    case GGML_Q5_1: *blk = 32; *bytes = 24; return 0;
    case GGML_Q8_0: *blk = 32; *bytes = 34; return 0;
    case GGML_Q4_K: *blk = 256; *bytes = 144; return 0;
    case GGML_Q5_K: *blk = 256; *bytes = 176; return 0;
    case GGML_Q6_K: *blk = 256; *bytes = 210; return 0;
    case GGML_Q1_0: *blk = 128; *bytes = 18; return 0;
    case GGML_Q2_0: *blk = 64; *bytes = 18; return 0;
    case GGML_TQ1_0: *blk = 256; *bytes = 54; return 0;
    case GGML_TQ2_0: *blk = 256; *bytes = 66; return 0;
    case GGML_Q2_K: *blk = 256; *bytes = 84; return 0;
    case GGML_Q3_K: *blk = 256; *bytes = 110; return 0;
    default: return -1;
    }
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block's 12 scale bytes. */
static void kscale(const uint8_t *q, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Decodes one block of type at p into out[blk]. */
static void decode_block(uint32_t type, const uint8_t *p, double *out) {
    switch (type) {
    case GGML_F32: {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, 4);
        out[0] = f;
        break;
    }
    case GGML_F16: out[0] = half_to_double(le16(p)); break;
    case GGML_BF16: {
        uint32_t u = (uint32_t)le16(p) << 16;
        float f;
        memcpy(&f, &u, 4);
        out[0] = f;
        break;
    }
    case GGML_Q4_0: case GGML_Q4_1: {
        /* d (, m), then 16 bytes: element j low nibble, element j + 16 high nibble */
        const int has_m = type == GGML_Q4_1;
        double d = half_to_double(le16(p)), m = has_m ? half_to_double(le16(p + 2)) : 0;
        const uint8_t *qs = p + (has_m ? 4 : 2);
        for (int j = 0; j < 16; j++) {
            out[j] = has_m ? d * (qs[j] & 15) + m : d * ((qs[j] & 15) - 8);
            out[j + 16] = has_m ? d * (qs[j] >> 4) + m : d * ((qs[j] >> 4) - 8);
        }
        break;
    }
    case GGML_Q5_0: case GGML_Q5_1: {
        /* d (, m), 32 high bits, 16 bytes of low nibbles */
        const int has_m = type == GGML_Q5_1;
        double d = half_to_double(le16(p)), m = has_m ? half_to_double(le16(p + 2)) : 0;
        uint32_t qh = le32(p + (has_m ? 4 : 2));
        const uint8_t *qs = p + (has_m ? 8 : 6);
        for (int j = 0; j < 16; j++) {
            int lo = (qs[j] & 15) | (int)((qh >> j) & 1) << 4, hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            out[j] = has_m ? d * lo + m : d * (lo - 16);
            out[j + 16] = has_m ? d * hi + m : d * (hi - 16);
        }
        break;
    }
    case GGML_Q8_0: {
        double d = half_to_double(le16(p));
        for (int j = 0; j < 32; j++) out[j] = d * (int8_t)p[2 + j];
        break;
    }
    case GGML_Q4_K: case GGML_Q5_K: {
        /* d, dmin, 12 bytes of 6-bit scales/mins for 8 sub-blocks of 32, (Q5_K: 32 bytes of high
         * bits), 128 bytes of nibbles: 64 elements per 32 bytes, low nibbles first */
        const int five = type == GGML_Q5_K;
        double d = half_to_double(le16(p)), dmin = half_to_double(le16(p + 2));
        const uint8_t *sc = p + 4, *qh = p + 16, *qs = p + (five ? 48 : 16);
        for (int g = 0; g < 4; g++) {
            int s0, m0, s1, m1;
            kscale(sc, 2 * g, &s0, &m0);
            kscale(sc, 2 * g + 1, &s1, &m1);
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * g + l] & 15, hi = qs[32 * g + l] >> 4;
                if (five) {
                    lo += (qh[l] >> (2 * g) & 1) << 4;
                    hi += (qh[l] >> (2 * g + 1) & 1) << 4;
                }
                out[64 * g + l] = d * s0 * lo - dmin * m0;
                out[64 * g + 32 + l] = d * s1 * hi - dmin * m1;
            }
        }
        break;
    }
    case GGML_Q6_K: {
        /* 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, d */
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        double d = half_to_double(le16(p + 208));
        for (int half = 0; half < 2; half++) {
            const uint8_t *l4 = ql + 64 * half, *h2 = qh + 32 * half;
            const int8_t *s = sc + 8 * half;
            double *y = out + 128 * half;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((l4[l] & 15) | ((h2[l] >> 0) & 3) << 4) - 32;
                int q2 = ((l4[l + 32] & 15) | ((h2[l] >> 2) & 3) << 4) - 32;
                int q3 = ((l4[l] >> 4) | ((h2[l] >> 4) & 3) << 4) - 32;
                int q4 = ((l4[l + 32] >> 4) | ((h2[l] >> 6) & 3) << 4) - 32;
                y[l] = d * s[is] * q1;
                y[l + 32] = d * s[is + 2] * q2;
                y[l + 64] = d * s[is + 4] * q3;
                y[l + 96] = d * s[is + 6] * q4;
            }
        }
        break;
    }
    case GGML_Q1_0: {
        /* Blocks of 128: fp16 scale d, then 16 bytes of signs; bit j%8 of byte j/8 set = +d. */
        double d = half_to_double(le16(p));
        for (int j = 0; j < 128; j++) out[j] = (p[2 + j / 8] >> (j % 8)) & 1 ? d : -d;
        break;
    }
    case GGML_Q2_0: {
        /* Blocks of 64: fp16 scale d, then 16 bytes of 2-bit codes, four a byte from the low bits
         * up; code c means (c - 1) * d. */
        double d = half_to_double(le16(p));
        for (int j = 0; j < 64; j++) out[j] = d * (int)((p[2 + j / 4] >> (2 * (j % 4))) & 3) - d;
        break;
    }
    case GGML_TQ2_0: {
        /* 64 bytes of 2-bit codes, then fp16 d. Element e: byte 32 (e / 128) + e % 32, bit pair
         * (e % 128) / 32; code c means (c - 1) * d. */
        double d = half_to_double(le16(p + 64));
        for (int e = 0; e < 256; e++) {
            int c = (p[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            out[e] = d * (c - 1);
        }
        break;
    }
    case GGML_TQ1_0: {
        /* 48 bytes of 5 trits, 4 bytes of 4 trits, fp16 d. A byte b stores its trits t0 t1 .. as
         * the fraction ceil(256 * (t0 t1 t2 t3 t4)_3 / 243): trit k is floor(3 * frac(b * 3^k / 256)),
         * i.e. digits of the base-3 expansion of b / 256. Elements: bytes 0..31 give e = 32 k + i,
         * bytes 32..47 give e = 160 + 16 k + i, bytes 48..51 give e = 240 + 4 k + i. */
        double d = half_to_double(le16(p + 52));
        for (int e = 0; e < 256; e++) {
            int byte, k;
            if (e < 160) { byte = e % 32; k = e / 32; }
            else if (e < 240) { byte = 32 + (e - 160) % 16; k = (e - 160) / 16; }
            else { byte = 48 + (e - 240) % 4; k = (e - 240) / 4; }
            unsigned v = p[byte];
            for (int i = 0; i < k; i++) v = (v * 3) % 256; /* the fraction after k digits */
            out[e] = d * ((int)(v * 3 / 256) - 1);
        }
        break;
    }
    case GGML_Q2_K: {
        /* 16 bytes of (scale, min) nibble pairs, 64 bytes of 2-bit codes, fp16 d, fp16 dmin.
         * Element e: half h = e / 128, bit pair (e % 128) / 32, byte 32 h + e % 32; its 16-element
         * group g = e / 16 takes scale byte g. w = d * sc * c - dmin * m. */
        double d = half_to_double(le16(p + 80)), dmin = half_to_double(le16(p + 82));
        for (int e = 0; e < 256; e++) {
            int c = (p[16 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            int g = e / 16;
            out[e] = d * (p[g] & 15) * c - dmin * (p[g] >> 4);
        }
        break;
    }
    case GGML_Q3_K: {
        /* hmask[32], qs[64] (2-bit codes placed as Q2_K), 12 scale bytes, fp16 d. Element e: low
         * code as Q2_K, high bit = bit (e / 32) of hmask[e % 32] (clear means subtract 4); the 6-bit
         * scale of group g = e / 16 is nibble (g / 8) of byte g % 8 plus bits 2 (g / 4) of byte
         * 8 + g % 4 as bits 4..5, minus 32. */
        const uint8_t *hm = p, *qs = p + 32, *sc = p + 96;
        double d = half_to_double(le16(p + 108));
        for (int e = 0; e < 256; e++) {
            int c = (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            if (!((hm[e % 32] >> (e / 32)) & 1)) c -= 4;
            int g = e / 16;
            int s = ((sc[g % 8] >> (4 * (g / 8))) & 15) | ((sc[8 + g % 4] >> (2 * (g / 4))) & 3) << 4;
            out[e] = d * (s - 32) * c;
        }
        break;
    }
    }
}

/* Decodes row r of m into out[ne0]. */
static void decode_row(const mat *m, int r, double *out) {
    const uint8_t *p = (const uint8_t *)m->t->data + (size_t)r * m->row_bytes;
    int blk, bytes;
    type_geom(m->t->type, &blk, &bytes);
    for (int b = 0; b < m->ne0 / blk; b++) decode_block(m->t->type, p + (size_t)b * bytes, out + (size_t)b * blk);
}

static mat get_mat(const gguf_file *g, const char *name, int ne0, int ne1) {
    const gguf_tensor *t = gguf_find_tensor(g, name);
    if (!t) die("tensor %s missing", name);
    if (t->ne[0] != (uint64_t)ne0 || t->ne[1] != (uint64_t)ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        die("tensor %s has shape [%llu, %llu], expected [%d, %d]", name,
            (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], ne0, ne1);
    if (!t->data) die("tensor %s has no data", name);
    mat m = {.t = t, .ne0 = ne0, .ne1 = ne1};
    int blk, bytes;
    if (type_geom(t->type, &blk, &bytes)) die("tensor %s: type %u not supported by the reference", name, t->type);
    if (ne0 % blk) die("tensor %s: a row of %d is not a whole number of blocks of %d", name, ne0, blk);
    m.row_bytes = (size_t)ne0 / blk * bytes;
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

/* out[i] = (x[i] - mean) / sqrt(var + eps) * weight[i] + bias[i] */
static void layernorm(double *out, const double *x, const double *weight, const double *bias, int n, double eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    double s = 1.0 / sqrt(var / n + eps);
    for (int i = 0; i < n; i++) out[i] = (x[i] - mean) * s * weight[i] + (bias ? bias[i] : 0);
}

/* Rotation of the first n_rot dims of one head vector at position pos: NeoX pairs (i, i + n_rot/2),
 * the adjacent layout pairs (2i, 2i + 1). Frequency i: theta^(-2i/n_rot) / factor[i]. */
static void rope(double *v, int n_rot, double pos, double theta, const double *factors, int neox) {
    for (int i = 0; i < n_rot / 2; i++) {
        double freq = pow(theta, -2.0 * i / n_rot) / (factors ? factors[i] : 1.0), a = pos * freq;
        int i0 = neox ? i : 2 * i, i1 = neox ? i + n_rot / 2 : 2 * i + 1;
        double c = cos(a), s = sin(a), x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * c - x1 * s;
        v[i1] = x0 * s + x1 * c;
    }
}

/* ---- model ---------------------------------------------------------------------------------- */

/* The families, written again from their definitions (not shared with src/models/families.c). */
enum { ACT_SILU, ACT_GELU, ACT_RELU2 };
typedef struct family {
    const char *arch;
    int layernorm, act, gated, parallel, qk_norm, neox, sub_norm, embd_sqrt;
} family;
static const family FAMILIES[] = {
    {"qwen3", 0, ACT_SILU, 1, 0, 1, 1, 0, 0},
    {"qwen2", 0, ACT_SILU, 1, 0, 0, 1, 0, 0},
    {"llama", 0, ACT_SILU, 1, 0, 0, 0, 0, 0},
    /* Gemma 1: GeGLU (tanh GELU), x sqrt(n_embd) embeddings, norm weights as stored, NeoX. */
    {"gemma", 0, ACT_GELU, 1, 0, 0, 1, 0, 1},
    /* Phi-2: LayerNorm + bias, parallel block, ungated GELU, NeoX on rope.dimension_count dims. */
    {"phi2", 1, ACT_GELU, 0, 1, 0, 1, 0, 0},
    /* BitNet b1.58: sub-norms; ReLU^2 unless bitnet.hidden_activation says (see main). */
    {"bitnet", 0, ACT_RELU2, 1, 0, 0, 1, 1, 0},
};

static const gguf_file *G;
static char KEY[160];
static const char *key(const char *arch, const char *suffix) {
    snprintf(KEY, sizeof KEY, "%s.%s", arch, suffix);
    return KEY;
}

static int get_int(const gguf_file *g, const char *k, int dflt) {
    uint32_t v;
    int rc = gguf_get_u32(g, k, &v);
    if (rc == -1 && dflt >= 0) return dflt;
    if (rc != 0 || v == 0 || v > (1u << 30)) die("metadata %s missing or invalid", k);
    return (int)v;
}

static double get_float(const gguf_file *g, const char *k, double dflt) {
    float v;
    int rc = gguf_get_f32(g, k, &v);
    if (rc == -1 && dflt >= 0) return dflt;
    if (rc != 0) die("metadata %s missing or invalid", k);
    return v;
}

/* An optional vector (NULL when the file lacks it). */
static double *opt_vec(const char *name, int n) {
    return gguf_find_tensor(G, name) ? get_vec(G, name, n) : NULL;
}

/* y *= s[0] (BitNet's per-tensor scale of a product; s NULL: nothing). */
static void mul_scale(double *y, const double *s, int T, int n) {
    if (!s) return;
    for (size_t i = 0; i < (size_t)T * n; i++) y[i] *= s[0];
}

static void add_bias(double *y, const double *b, int T, int n) {
    if (!b) return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

static double act(int kind, double x) {
    if (kind == ACT_GELU) return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    if (kind == ACT_RELU2) return x > 0 ? x * x : 0;
    return x / (1.0 + exp(-x));
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
    G = &g;
    gguf_str arch_s;
    if (gguf_get_str(&g, "general.architecture", &arch_s) != 0) die("%s: no architecture", path);
    const family *F = NULL;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++)
        if (gguf_str_eq(arch_s, FAMILIES[i].arch)) F = &FAMILIES[i];
    if (!F) die("%s: architecture %.*s is not known to the reference", path, (int)arch_s.len, arch_s.ptr);
    const char *A = F->arch;
    int act_kind = F->act;
    gguf_str ha;
    if (strcmp(A, "bitnet") == 0 && gguf_get_str(&g, "bitnet.hidden_activation", &ha) == 0) {
        if (gguf_str_eq(ha, "silu")) act_kind = ACT_SILU;
        else if (gguf_str_eq(ha, "relu2")) act_kind = ACT_RELU2;
        else die("bitnet.hidden_activation %.*s", (int)ha.len, ha.ptr);
    }

    int n_embd = get_int(&g, key(A, "embedding_length"), -1);
    int n_layer = get_int(&g, key(A, "block_count"), -1);
    int n_head = get_int(&g, key(A, "attention.head_count"), -1);
    int n_kv = get_int(&g, key(A, "attention.head_count_kv"), n_head);
    int n_ff = get_int(&g, key(A, "feed_forward_length"), -1);
    int hd = get_int(&g, key(A, "attention.key_length"), n_embd / n_head);
    if (get_int(&g, key(A, "attention.value_length"), hd) != hd) die("value_length != key_length");
    int n_rot = get_int(&g, key(A, "rope.dimension_count"), hd);
    double eps = F->layernorm ? get_float(&g, key(A, "attention.layer_norm_epsilon"), 1e-5)
                              : get_float(&g, key(A, "attention.layer_norm_rms_epsilon"), 1e-6);
    double theta = get_float(&g, key(A, "rope.freq_base"), 10000.0);
    double pos_scale = 1.0;
    gguf_str sc;
    if (gguf_get_str(&g, key(A, "rope.scaling.type"), &sc) == 0 && gguf_str_eq(sc, "linear"))
        pos_scale = 1.0 / get_float(&g, key(A, "rope.scaling.factor"), 1.0);
    if (n_head % n_kv || n_rot % 2 || n_rot > hd) die("bad head configuration");
    const gguf_tensor *te = gguf_find_tensor(&g, "token_embd.weight");
    if (!te) die("token_embd.weight missing");
    int n_vocab = (int)te->ne[1];
    mat embd = get_mat(&g, "token_embd.weight", n_embd, n_vocab);
    mat wout = gguf_find_tensor(&g, "output.weight") ? get_mat(&g, "output.weight", n_embd, n_vocab)
                                                     : embd;
    double *factors = opt_vec("rope_freqs.weight", n_rot / 2);
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
    double *qkv = xcalloc((size_t)T * (q_dim + 2 * kv_dim), sizeof *qkv); /* [T][q_dim + 2 kv_dim] */
    double *q = xcalloc((size_t)T * q_dim, sizeof *q);        /* [T][n_head][hd] */
    double *k = xcalloc((size_t)T * kv_dim, sizeof *k);       /* [T][n_kv][hd] */
    double *v = xcalloc((size_t)T * kv_dim, sizeof *v);       /* [T][n_kv][hd] */
    double *att = xcalloc((size_t)T * q_dim, sizeof *att);    /* [T][n_head][hd] */
    double *o = xcalloc((size_t)T * n_embd, sizeof *o);       /* [T][n_embd] block output */
    double *gate = xcalloc((size_t)T * n_ff, sizeof *gate);   /* [T][n_ff] */
    double *up = xcalloc((size_t)T * n_ff, sizeof *up);       /* [T][n_ff] */
    double *p = xcalloc((size_t)T, sizeof *p);                /* [T] attention weights */

    double escale = F->embd_sqrt ? sqrt((double)n_embd) : 1.0;
    for (int t = 0; t < T; t++) {
        decode_row(&embd, tok[t], x + (size_t)t * n_embd);
        for (int i = 0; i < n_embd; i++) x[(size_t)t * n_embd + i] *= escale;
    }

    char nm[96];
#define NM(suffix) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), nm)
    for (int l = 0; l < n_layer; l++) {
        double *attn_norm = get_vec(&g, NM("attn_norm.weight"), n_embd);
        double *attn_norm_b = F->layernorm ? get_vec(&g, NM("attn_norm.bias"), n_embd) : NULL;
        double *q_norm = F->qk_norm ? get_vec(&g, NM("attn_q_norm.weight"), hd) : NULL;
        double *k_norm = F->qk_norm ? get_vec(&g, NM("attn_k_norm.weight"), hd) : NULL;
        double *attn_sub = F->sub_norm ? get_vec(&g, NM("attn_sub_norm.weight"), q_dim) : NULL;
        double *ffn_sub = F->sub_norm ? get_vec(&g, NM("ffn_sub_norm.weight"), n_ff) : NULL;
        double *ffn_norm = F->parallel ? NULL : get_vec(&g, NM("ffn_norm.weight"), n_embd);
        double *ffn_norm_b = F->parallel || !F->layernorm ? NULL : get_vec(&g, NM("ffn_norm.bias"), n_embd);
        double *bq = opt_vec(NM("attn_q.bias"), q_dim), *bk = opt_vec(NM("attn_k.bias"), kv_dim);
        double *bv = opt_vec(NM("attn_v.bias"), kv_dim), *bqkv = opt_vec(NM("attn_qkv.bias"), q_dim + 2 * kv_dim);
        double *bo = opt_vec(NM("attn_output.bias"), n_embd);
        double *bg = opt_vec(NM("ffn_gate.bias"), n_ff), *bu = opt_vec(NM("ffn_up.bias"), n_ff);
        double *bd = opt_vec(NM("ffn_down.bias"), n_embd);
        double *sq = opt_vec(NM("attn_q.scale"), 1), *sk = opt_vec(NM("attn_k.scale"), 1);
        double *sv = opt_vec(NM("attn_v.scale"), 1), *so = opt_vec(NM("attn_output.scale"), 1);
        double *sg = opt_vec(NM("ffn_gate.scale"), 1), *su = opt_vec(NM("ffn_up.scale"), 1);
        double *sd = opt_vec(NM("ffn_down.scale"), 1);
        const int fused = gguf_find_tensor(&g, NM("attn_qkv.weight")) != NULL;
        mat wqkv = {0}, wq = {0}, wk = {0}, wv = {0}, wg = {0};
        if (fused) wqkv = get_mat(&g, NM("attn_qkv.weight"), n_embd, q_dim + 2 * kv_dim);
        else {
            wq = get_mat(&g, NM("attn_q.weight"), n_embd, q_dim);
            wk = get_mat(&g, NM("attn_k.weight"), n_embd, kv_dim);
            wv = get_mat(&g, NM("attn_v.weight"), n_embd, kv_dim);
        }
        mat wo = get_mat(&g, NM("attn_output.weight"), q_dim, n_embd);
        if (F->gated) wg = get_mat(&g, NM("ffn_gate.weight"), n_embd, n_ff);
        mat wu = get_mat(&g, NM("ffn_up.weight"), n_embd, n_ff);
        mat wd = get_mat(&g, NM("ffn_down.weight"), n_ff, n_embd);

        /* Attention. */
        for (int t = 0; t < T; t++) {
            if (F->layernorm) layernorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, attn_norm, attn_norm_b, n_embd, eps);
            else rmsnorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, attn_norm, n_embd, eps);
        }
        if (fused) {
            int W = q_dim + 2 * kv_dim;
            matmul(&wqkv, h, qkv, T);
            add_bias(qkv, bqkv, T, W);
            for (int t = 0; t < T; t++)
                for (int i = 0; i < W; i++) {
                    double val = qkv[(size_t)t * W + i];
                    if (i < q_dim) q[(size_t)t * q_dim + i] = val;
                    else if (i < q_dim + kv_dim) k[(size_t)t * kv_dim + i - q_dim] = val;
                    else v[(size_t)t * kv_dim + i - q_dim - kv_dim] = val;
                }
        } else {
            matmul(&wq, h, q, T);
            matmul(&wk, h, k, T);
            matmul(&wv, h, v, T);
            mul_scale(q, sq, T, q_dim);
            mul_scale(k, sk, T, kv_dim);
            mul_scale(v, sv, T, kv_dim);
            add_bias(q, bq, T, q_dim);
            add_bias(k, bk, T, kv_dim);
            add_bias(v, bv, T, kv_dim);
        }
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < n_head; hh++) {
                double *qh = q + (size_t)t * q_dim + (size_t)hh * hd;
                if (q_norm) rmsnorm(qh, qh, q_norm, hd, eps);
                rope(qh, n_rot, t * pos_scale, theta, factors, F->neox);
            }
            for (int hh = 0; hh < n_kv; hh++) {
                double *kh = k + (size_t)t * kv_dim + (size_t)hh * hd;
                if (k_norm) rmsnorm(kh, kh, k_norm, hd, eps);
                rope(kh, n_rot, t * pos_scale, theta, factors, F->neox);
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
        if (attn_sub)
            for (int t = 0; t < T; t++) rmsnorm(att + (size_t)t * q_dim, att + (size_t)t * q_dim, attn_sub, q_dim, eps);
        matmul(&wo, att, o, T);
        mul_scale(o, so, T, n_embd);
        add_bias(o, bo, T, n_embd);
        for (size_t i = 0; i < (size_t)T * n_embd; i++) x[i] += o[i];

        /* Feed-forward: from the same normed input in a parallel block, else from norm(x). */
        if (!F->parallel)
            for (int t = 0; t < T; t++) {
                if (F->layernorm)
                    layernorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, ffn_norm, ffn_norm_b, n_embd, eps);
                else rmsnorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, ffn_norm, n_embd, eps);
            }
        matmul(&wu, h, up, T);
        mul_scale(up, su, T, n_ff);
        add_bias(up, bu, T, n_ff);
        if (F->gated) {
            matmul(&wg, h, gate, T);
            mul_scale(gate, sg, T, n_ff);
            add_bias(gate, bg, T, n_ff);
            for (size_t i = 0; i < (size_t)T * n_ff; i++) gate[i] = act(act_kind, gate[i]) * up[i];
        } else {
            for (size_t i = 0; i < (size_t)T * n_ff; i++) gate[i] = act(act_kind, up[i]);
        }
        if (ffn_sub)
            for (int t = 0; t < T; t++) rmsnorm(gate + (size_t)t * n_ff, gate + (size_t)t * n_ff, ffn_sub, n_ff, eps);
        matmul(&wd, gate, o, T);
        mul_scale(o, sd, T, n_embd);
        add_bias(o, bd, T, n_embd);
        for (size_t i = 0; i < (size_t)T * n_embd; i++) x[i] += o[i];

        free(attn_norm); free(attn_norm_b); free(q_norm); free(k_norm); free(attn_sub); free(ffn_sub);
        free(ffn_norm); free(ffn_norm_b); free(bq); free(bk); free(bv); free(bqkv); free(bo); free(bg);
        free(bu); free(bd); free(sq); free(sk); free(sv); free(so); free(sg); free(su); free(sd);
    }
#undef NM

    /* Output. */
    double *out_norm = get_vec(&g, "output_norm.weight", n_embd);
    double *out_norm_b = F->layernorm ? get_vec(&g, "output_norm.bias", n_embd) : NULL;
    double *out_b = opt_vec("output.bias", n_vocab);
    for (int t = 0; t < T; t++) {
        if (F->layernorm) layernorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, out_norm, out_norm_b, n_embd, eps);
        else rmsnorm(h + (size_t)t * n_embd, x + (size_t)t * n_embd, out_norm, n_embd, eps);
    }
    double *logits = xcalloc((size_t)T * n_vocab, sizeof *logits); /* [T][n_vocab] */
    matmul(&wout, h, logits, T);
    add_bias(logits, out_b, T, n_vocab);

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

    free(logits); free(out_norm); free(out_norm_b); free(out_b); free(factors);
    free(x); free(h); free(qkv); free(q); free(k); free(v); free(att); free(o); free(gate); free(up); free(p);
    free(tok);
    gguf_close(&g);
    return 0;
}
