/* tern.c — repacking of the ternary types (tern.h), the portable kernels that define the
 * arithmetic the SIMD ones (tern_avx512.c, tern_avx2.c) must match, and the "cpu" backend's hook:
 * repack at load into one huge-page allocation (dropping the mapped file's pages as it goes), then
 * products that quantise the activations and split the row tiles over the thread pool.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "cpu_kern.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "tern.h"
#include "threadpool.h"
#include "util.h"

#define TK_MAX_BATCH 64            /* tokens quantised at once */
#define TK_SLAB_BYTES (4u << 20)   /* source bytes repacked between page drops */

int tk_type_ok(uint32_t type) { return type == GGML_Q2_0 || type == GGML_TQ2_0 || type == GGML_TQ1_0; }

int tk_group_blocks(uint32_t type) { return type == GGML_Q2_0 ? 1 : 4; }

size_t tk_packed_size(uint32_t type, int rows, int cols) {
    const int gs = tk_group_blocks(type);
    if (!tk_type_ok(type) || rows <= 0 || cols <= 0 || cols % (TK_BLK * gs)) return 0;
    uint64_t tiles = ((uint64_t)rows + TK_TILE - 1) / TK_TILE, ng = (uint64_t)cols / (TK_BLK * gs);
    uint64_t n = tiles * ng; /* both < 2^31: no overflow */
    if (n > SIZE_MAX / TK_GB_BYTES(gs)) return 0;
    return (size_t)(n * TK_GB_BYTES(gs));
}

/* The TQ1_0 digit at position n of byte q (quant.c's decoder, as a code 0..2). */
static uint8_t tk_tq1_code(uint8_t q, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t r = (uint8_t)(q * pow3[n]);
    return (uint8_t)((uint16_t)r * 3 >> 8);
}

/* Codes q[64] and the fp16 scale (raw bits) of the 64-column block b of a row of the type. */
static void tk_codes64(uint32_t type, const uint8_t *row, int b, uint8_t q[TK_BLK], uint16_t *d) {
    if (type == GGML_Q2_0) {
        const uint8_t *p = row + (size_t)b * 18;
        memcpy(d, p, 2);
        for (int i = 0; i < 16; i++)
            for (int k = 0; k < 4; k++) q[4 * i + k] = p[2 + i] >> (2 * k) & 3;
        return;
    }
    const int m0 = (b % 4) * 64; /* first weight of the 256-weight block */
    if (type == GGML_TQ2_0) {
        const uint8_t *p = row + (size_t)(b / 4) * 66;
        memcpy(d, p + 64, 2);
        const uint8_t *qs = p + 32 * (m0 / 128); /* 32 bytes: 128 weights at shifts 0, 2, 4, 6 */
        for (int s = 0; s < 2; s++) {
            const int shift = 2 * (m0 % 128 / 32 + s);
            for (int i = 0; i < 32; i++) q[32 * s + i] = qs[i] >> shift & 3;
        }
        return;
    }
    const uint8_t *p = row + (size_t)(b / 4) * 54; /* TQ1_0 */
    memcpy(d, p + 52, 2);
    for (int j = 0; j < 64; j++) {
        const int m = m0 + j;
        if (m < 160) q[j] = tk_tq1_code(p[m % 32], m / 32);
        else if (m < 240) q[j] = tk_tq1_code(p[32 + (m - 160) % 16], (m - 160) / 16);
        else q[j] = tk_tq1_code(p[48 + (m - 240) % 4], (m - 240) / 4);
    }
}

/* TQ2_0's 64-column block b of a row straight into a tile's 4 chunks (row r's 4 bytes at out + 64 j,
 * tk_codes64 + the packing below, 4 columns a word): in the file, the code of weight m of a 256-weight
 * block sits in byte 32 (m / 128) + m % 32 at bits 2 (m % 128 / 32), so columns 16j + 4k + c of the
 * block (c = 0..3) are one 4-byte word shifted alike, and chunk j's 4 bytes OR the 4 words of k. */
static void tk_tq2_chunks(const uint8_t *row, int b, uint8_t *out, uint16_t *d) {
    const uint8_t *p = row + (size_t)(b / 4) * 66;
    memcpy(d, p + 64, 2);
    const uint8_t *qs = p + 32 * (b % 4 / 2);
    for (int j = 0; j < 4; j++) {
        const int shift = 4 * (b % 2) + 2 * (j / 2); /* columns 0..31 of the block, then 32..63 */
        uint32_t v = 0;
        for (int k = 0; k < 4; k++) {
            uint32_t w;
            memcpy(&w, qs + 16 * (j % 2) + 4 * k, 4);
            v |= (w >> shift & 0x03030303u) << (2 * k);
        }
        memcpy(out + 64 * j, &v, 4);
    }
}

void tk_repack(uint32_t type, const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst, int tile0,
               int tile1) {
    const int gs = tk_group_blocks(type), nb = cols / TK_BLK, ng = nb / gs;
    for (int tile = tile0; tile < tile1; tile++)
        for (int b = 0; b < nb; b++) {
            uint8_t *tg = dst + ((size_t)tile * ng + b / gs) * TK_GB_BYTES(gs), *tb = tg + 32 + 256 * (b % gs);
            for (int r = 0; r < TK_TILE; r++) {
                const int row = tile * TK_TILE + r;
                uint8_t q[TK_BLK] = {0}; /* rows past the end: d = 0, codes 0 */
                uint16_t d = 0;
                if (row < rows && type == GGML_TQ2_0) {
                    tk_tq2_chunks(src + (size_t)row * row_bytes, b, tb + 4 * r, &d);
                    memcpy(tg + 2 * r, &d, 2);
                    continue;
                }
                if (row < rows) tk_codes64(type, src + (size_t)row * row_bytes, b, q, &d);
                memcpy(tg + 2 * r, &d, 2); /* the same scale for the gs blocks of a group */
                for (int j = 0; j < 4; j++)
                    for (int c = 0; c < 4; c++) {
                        const uint8_t *qq = q + 16 * j + c; /* columns 16j + 4k + c, k = 0..3 */
                        tb[64 * j + 4 * r + c] = (uint8_t)(qq[0] | qq[4] << 2 | qq[8] << 4 | qq[12] << 6);
                    }
            }
        }
}

void tk_quant_generic(const float *x, int cols, int8_t *q, int8_t *ql, float *a, float *c) {
    ck_quant_blocks(x, cols, TK_BLK, 1.0f, q, ql, a, c); /* the Q1_0 path's quantiser on 64-column blocks, a = sx */
}

void tk_gemm_generic(const tk_mat *w, int tile0, int tile1, const tk_act *x, int n, float *y, size_t ys) {
    const int gs = w->gs, ng = w->nb / gs;
    for (int tile = tile0; tile < tile1; tile++)
        for (int r = 0; r < TK_TILE; r++) {
            const int row = tile * TK_TILE + r;
            if (row >= w->rows) break;
            for (int t = 0; t < n; t++) {
                const int8_t *xq = x->q + (size_t)t * x->cols, *xl = x->ql ? x->ql + (size_t)t * x->cols : NULL;
                float acc = 0.0f;
                for (int g = 0; g < ng; g++) {
                    const uint8_t *tg = w->data + ((size_t)tile * ng + g) * TK_GB_BYTES(gs);
                    float gsum = 0.0f;
                    for (int i = 0; i < gs; i++) {
                        const int b = g * gs + i;
                        int sh = 0, sl = 0;
                        for (int col = 0; col < TK_BLK; col++) {
                            const int j = col / 16, k = col % 16 / 4, c = col % 4;
                            const int code = tg[32 + 256 * i + 64 * j + 4 * r + c] >> (2 * k) & 3;
                            sh += code * xq[b * TK_BLK + col];
                            if (xl) sl += code * xl[b * TK_BLK + col];
                        }
                        const int S = xl ? 128 * sh + sl : sh;
                        const size_t ab = (size_t)t * x->nb + b;
                        const float f = fmaf((float)S, x->a[ab], x->c[ab]);
                        gsum += f;
                    }
                    uint16_t d;
                    memcpy(&d, tg + 2 * r, 2);
                    acc = fmaf(ob_fp16_to_f32(d), gsum, acc);
                }
                y[(size_t)t * ys + row] = acc;
            }
        }
}

static int tk_generic_supported(void) { return 1; }

const tk_isa tk_isa_generic = {
    .name = "generic",
    .compiled = 1,
    .supported = tk_generic_supported,
    .quant = tk_quant_generic,
    .gemm = tk_gemm_generic,
};

/* ---- the backend's hook ---------------------------------------------------------------------- */

struct tk_state {
    const tk_isa *isa;
    tp_pool *pool;
    int nth;
    int planes;                    /* activation planes: 1 (int8), or 2 (int16) with ONEBIT_CPU_TERN_PLANES=2 */
    uint8_t *arena;                /* every repacked matrix, 64-byte aligned within it */
    tk_mat *mats;                  /* [n_weights]; data NULL where not repacked, else in arena */
    int n_weights;
    int max_cols;
    int8_t *xq, *xl;               /* [TK_MAX_BATCH][max_cols] */
    float *xa, *xc;                /* [TK_MAX_BATCH][max_cols / 64] */
};

const char *tk_isa_name(const tk_state *s) { return s ? s->isa->name : ""; }

static int tk_chunk(const tk_state *s, int n, int per) {
    int c = n / (s->nth * per);
    return c < 1 ? 1 : c;
}

typedef struct tk_repack_job {
    const ob_weight *w;
    uint8_t *dst;
    int tile0;
} tk_repack_job;

static void tk_repack_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const tk_repack_job *j = arg;
    tk_repack(j->w->type, j->w->data, j->w->row_bytes, j->w->rows, j->w->cols, j->dst, j->tile0 + begin,
              j->tile0 + end);
}

/* Repacks w into dst (tk_packed_size bytes, 64-byte aligned) and describes it in out. */
static void tk_repack_weight(tk_state *s, const ob_model *m, const ob_weight *w, uint8_t *dst, tk_mat *out) {
    const int n_tiles = (w->rows + TK_TILE - 1) / TK_TILE;
    int step = (int)(TK_SLAB_BYTES / ((size_t)TK_TILE * w->row_bytes));
    if (step < 1) step = 1;
    const uint8_t *dropped = w->data;
    for (int t0 = 0; t0 < n_tiles; t0 += step) {
        const int t1 = t0 + step < n_tiles ? t0 + step : n_tiles;
        tk_repack_job j = {w, dst, t0};
        tp_for(s->pool, t1 - t0, tk_chunk(s, t1 - t0, 4), tk_repack_run, &j);
        if (m->file.mapped) {
            const int row_end = t1 * TK_TILE < w->rows ? t1 * TK_TILE : w->rows;
            dropped = ck_drop_pages(dropped, w->data + (size_t)row_end * w->row_bytes);
        }
    }
    out->data = dst;
    out->rows = w->rows;
    out->cols = w->cols;
    out->nb = w->cols / TK_BLK;
    out->n_tiles = n_tiles;
    out->gs = tk_group_blocks(w->type);
}

/* Bytes of w's repacked form, 0 when it stays as it is: not of these types, not a shape of these
 * kernels (the backend's row path), or an embedding that is only looked up (untied). */
static size_t tk_repacked_bytes(const ob_model *m, const ob_weight *w) {
    if (!w->data || !tk_type_ok(w->type) || (w == m->tok_embd && w != m->output)) return 0;
    return tk_packed_size(w->type, w->rows, w->cols);
}

static const tk_isa *tk_pick(const char *isa_name) {
    static const tk_isa *const simd[] = {&tk_isa_avx512, &tk_isa_avx2, &tk_isa_neon, &tk_isa_wasm};
    for (size_t i = 0; i < sizeof simd / sizeof *simd; i++)
        if (strcmp(simd[i]->name, isa_name) == 0 && simd[i]->compiled && simd[i]->supported()) return simd[i];
    return NULL;
}

ob_status tk_init(tk_state **out, const char *isa_name, const ob_model *m, tp_pool *pool) {
    *out = NULL;
    const tk_isa *isa = tk_pick(isa_name);
    int any = 0;
    for (int i = 0; i < m->n_weights; i++)
        any |= m->weights[i].data && tk_type_ok(m->weights[i].type);
    if (!isa || !any) return OB_OK;
    tk_state *s = calloc(1, sizeof *s);
    if (!s) return ob_fail(OB_ERR_NOMEM, "out of memory");
    s->isa = isa;
    s->pool = pool;
    s->nth = tp_threads(pool);
    const char *pl = getenv("ONEBIT_CPU_TERN_PLANES");
    s->planes = pl && strcmp(pl, "2") == 0 ? 2 : 1;
    s->n_weights = m->n_weights;
    s->mats = calloc((size_t)m->n_weights, sizeof *s->mats);
    s->max_cols = TK_BLK;
    if (!s->mats) {
        tk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    size_t total = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        const size_t bytes = tk_repacked_bytes(m, w);
        if (!bytes) continue;
        if (bytes > SIZE_MAX - 64 || total > SIZE_MAX - 64 - bytes) {
            tk_free(s);
            return ob_fail(OB_ERR_NOMEM, "out of memory repacking weights");
        }
        total += (bytes + 63) & ~(size_t)63;
    }
    if (total && !(s->arena = ck_arena_alloc(total))) {
        tk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory repacking weights");
    }
    size_t off = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        const size_t bytes = tk_repacked_bytes(m, w);
        if (!bytes) continue;
        tk_repack_weight(s, m, w, s->arena + off, &s->mats[i]);
        off += (bytes + 63) & ~(size_t)63;
        if (w->cols > s->max_cols) s->max_cols = w->cols;
    }
    const size_t nb = (size_t)s->max_cols / TK_BLK;
    s->xq = aligned_alloc(64, (size_t)TK_MAX_BATCH * (size_t)s->max_cols);
    s->xl = aligned_alloc(64, (size_t)TK_MAX_BATCH * (size_t)s->max_cols);
    s->xa = malloc((size_t)TK_MAX_BATCH * nb * sizeof(float));
    s->xc = malloc((size_t)TK_MAX_BATCH * nb * sizeof(float));
    if (!s->xq || !s->xl || !s->xa || !s->xc) {
        tk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return OB_OK;
}

void tk_free(tk_state *s) {
    if (!s) return;
    free(s->arena);
    free(s->mats);
    free(s->xq);
    free(s->xl);
    free(s->xa);
    free(s->xc);
    free(s);
}

typedef struct tk_quant_job {
    const tk_isa *isa;
    const float *x;
    int cols, nb;
    int8_t *q, *ql;
    float *a, *c;
} tk_quant_job;

static void tk_quant_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const tk_quant_job *j = arg;
    for (int t = begin; t < end; t++)
        j->isa->quant(j->x + (size_t)t * j->cols, j->cols, j->q + (size_t)t * j->cols,
                      j->ql ? j->ql + (size_t)t * j->cols : NULL, j->a + (size_t)t * j->nb, j->c + (size_t)t * j->nb);
}

typedef struct tk_gemm_job {
    const tk_isa *isa;
    const tk_mat *w;
    tk_act x;
    int n;
    float *y;
    size_t ys;
} tk_gemm_job;

static void tk_gemm_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const tk_gemm_job *j = arg;
    j->isa->gemm(j->w, begin, end, &j->x, j->n, j->y, j->ys);
}

int tk_matmul(tk_state *s, const ob_weight *w, const float *x, float *y, int n) {
    if (!s || w->id < 0 || w->id >= s->n_weights || !s->mats[w->id].data) return 0;
    const tk_mat *pw = &s->mats[w->id];
    const int nb = pw->nb;
    int8_t *xl = s->planes == 2 ? s->xl : NULL;
    for (int t0 = 0; t0 < n; t0 += TK_MAX_BATCH) {
        const int nt = n - t0 < TK_MAX_BATCH ? n - t0 : TK_MAX_BATCH;
        tk_quant_job qj = {s->isa, x + (size_t)t0 * pw->cols, pw->cols, nb, s->xq, xl, s->xa, s->xc};
        if (nt == 1) tk_quant_run(&qj, 0, 1, 0); /* one token: not worth waking the pool */
        else tp_for(s->pool, nt, 1, tk_quant_run, &qj);
        tk_gemm_job gj = {s->isa, pw, {s->xq, xl, s->xa, s->xc, pw->cols, nb}, nt, y + (size_t)t0 * pw->rows,
                          (size_t)pw->rows};
        tp_for(s->pool, pw->n_tiles, tk_chunk(s, pw->n_tiles, nt == 1 ? 16 : 8), tk_gemm_run, &gj);
    }
    return 1;
}
