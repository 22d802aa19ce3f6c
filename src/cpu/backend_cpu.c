/* backend_cpu.c — the fast CPU backend: SIMD 1-bit kernels and a thread pool under the generic
 * forward pass (forward.c).
 *
 * At model load the best kernel table for this CPU is chosen (cpu_kern.h: AVX-512 VNNI, AVX2,
 * NEON, wasm SIMD128, else portable C), a persistent thread pool is started, and every Q1_0
 * matrix the forward pass multiplies by is repacked into 16-row tiles. Repacking replaces the
 * file's pages rather than adding to them: as each slab is repacked its pages of the memory-mapped
 * file are dropped (madvise), so resident memory stays near the file size. A model loaded from a
 * caller's buffer keeps that buffer, so there the repacked copy does come on top.
 *
 * A product quantises the activations (int16 as two int8 planes: int8 alone loses ~3% of the
 * logits over 28 layers, see cpu_kern.h; AVX2 and NEON then build each token's lookup tables), then
 * the threads claim chunks of row tiles until none are left. One token is one job per input (q, k
 * and v together, gate and up together: matmul_multi), in which each thread quantises the token and
 * builds its tables itself (cpuk_tok) before its tiles. The KV cache holds IEEE halves (half the memory and the bytes read per token; the
 * logits move by ~0.04%); attention runs one task per KV head and group of tokens, which reads
 * each key and value row once for all the queries of the task: widened in place by the ISA's
 * attn_multi_f16 where it has one (AVX-512, AVX2), else widened to floats once per task first. RMSNorm and SwiGLU are spread over the threads too. Weights of a type with an integer-dot
 * kernel of the chosen instruction set (qk.h: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) are
 * multiplied in their file layout: the activations quantised to int8 once per batch, then groups of
 * 16 rows split over the threads. Weights of every other type of the table
 * (quant.h: F32, F16, BF16, Q2_K, Q3_K, TQ1_0, TQ2_0, Q2_0) are multiplied by rows split
 * over the threads: each thread decodes a row with the type's reference dequantisation into its own
 * float buffer, then takes the float dot with every token's activations (16 partial sums, which the
 * compiler vectorises), so a row is decoded once per product however many tokens there are. Q2_0
 * and TQ2_0 rows are decoded by the ISA's SIMD decoder where it has one (AVX2, AVX-512: equal to the
 * table's row bit for bit, so the results are the same); the other types by the table. Where a SIMD
 * table runs, Q2_0 / TQ2_0 / TQ1_0 matrices are instead repacked at load and multiplied on their
 * codes by tern.h's kernels (tk_init / tk_matmul, one hook in cpuk_matmul). Every job is a parallel loop whose items any thread may
 * take (threadpool.h), and each item is computed the same way whoever takes it: results do not
 * depend on the number of threads. This backend is not the specification: backend_scalar.c is,
 * and the tests compare against it.
 *
 * ONEBIT_CPU_ISA=generic|avx2|avx512|neon|wasm in the environment forces a kernel table (when it is
 * built in and this CPU runs it), for comparisons and tests. ONEBIT_CPU_Q1_ACT=int16|int14|int8|int8x32
 * picks the Q1_0 activation form (int8 = ONEBIT_CPU_Q1_PLANES=1; int8x32, one scale per 32
 * columns, only where the table has quant32; int14 for every product, where the table has
 * quant14). By default products take int14 where the table's vpermb tables run (vtab: AVX-512
 * VBMI; their two-byte form, two lookups per 256 weights instead of three), else int16 (int14
 * through the other kernels would cost accuracy for no speed); int16 forces int16 everywhere. One
 * token goes through the vpermb tables where they run, the same integer sums as the two planes;
 * so do several (a prompt: every token's tables built next to its quantisation, ck_act.vtm),
 * unless ONEBIT_CPU_Q1_VTM=0 keeps prompts on the two-plane kernel (and on int16).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "cpu_kern.h"
#include "forward.h"
#include "qk.h"
#include "quant.h"
#include "tern.h"
#include "threadpool.h"
#include "util.h"

#define CPUK_MAX_BATCH 64                  /* tokens per chunk of the forward pass */
#define CPUK_SLAB_BYTES (4u << 20)         /* source bytes repacked between page drops */
#define CPUK_VTM_TILES 8                   /* least tiles per claim of the prompt product with vpermb
                                              tables (a block's tables serve the claim's tiles at once):
                                              16 ran as fast in the model but spread more on a shared
                                              machine (pp512, 6 interleaved rounds: 114-168 against
                                              142-163 tok/s) */

/* One token's activations as one thread of a one-token product holds them (cpuk_gemv_run): every
 * thread quantises the input and builds the tables itself, into its own memory. Built once by the
 * caller and read by the others, they cost a one-token product a serial step and, worse, the
 * caller's rewrite of lines that the other cores read in the previous product: with the vpermb
 * tables (16 KiB a product) ~8 us a product in the model against ~1 us out of it, ~1.5-2 ms of a
 * Bonsai token. job: the one-token job they were built for. */
typedef struct cpuk_tok {
    _Alignas(64) int8_t *q, *ql;           /* [max_cols]; ql NULL with one plane */
    float *a, *c;                          /* [4 max_nb], [max_nb] */
    uint8_t *lut;                          /* [max_cols * CK_LUT_PER_COL] if isa->lut */
    uint8_t *vt;                           /* [max_cols * CK_VT_PER_COL] if the vpermb tables run */
    unsigned long long job;
} cpuk_tok;

/* Most matrices of one multi-matrix product (q, k, v). */
#define CPUK_MULTI 4

typedef struct cpuk_state {
    const ck_isa *isa;
    int planes;                            /* Q1_0 activations: 2 = int16 (two int8 planes, the default),
                                              1 = int8 with ONEBIT_CPU_Q1_PLANES=1 (faster, ~2-3 % logits) */
    int s32;                               /* 1: int8 with a scale per 32 columns (planes 1), where the
                                              table has quant32: ONEBIT_CPU_Q1_ACT=int8x32 */
    int k14_tok, k14_batch;                /* 1: two planes hold int14 (quant14) for one token / for
                                              batches: by default where the vpermb tables run (their
                                              two-table form), ONEBIT_CPU_Q1_ACT=int14: everywhere */
    tp_pool *pool;
    int nth;                               /* threads of the pool, caller included */
    pthread_mutex_t mu;                    /* one job at a time: contexts may share the model */
    ck_q1 *packed;                         /* [n_weights]; data NULL where not repacked, else in arena */
    uint8_t *arena;                        /* every repacked Q1_0 matrix (ck_arena_alloc) */
    int n_weights;
    int max_cols, max_nb;
    int8_t *xq, *xl;                       /* [CPUK_MAX_BATCH][max_cols] quantised activations */
    float *xa, *xc;                        /* [CPUK_MAX_BATCH][max_nb] */
    uint8_t *xlut;                         /* [CPUK_MAX_BATCH][max_cols * CK_LUT_PER_COL] if isa->lut */
    cpuk_tok *tok;                         /* [nth]: one token's activations per thread */
    int tok_vt;                            /* 1: one token goes through the vpermb tables (isa->vtab runs) */
    int fuse;                              /* 1: products of one input share a job (ONEBIT_CPU_FUSE=0: not) */
    unsigned long long jobs;               /* one-token jobs so far (cpuk_tok.job) */
    uint8_t *xvtm;                         /* [CPUK_MAX_BATCH][vtm_stride] if the prompt product reads
                                              vpermb tables (isa->vtab runs here), else NULL */
    size_t vtm_stride;                     /* ck_vtm_stride(max_cols, 3): bytes between tokens' tables */
    float **attn_scratch;                  /* [nth][attn_floats]: scores, then keys and values */
    float **row_buf;                       /* [nth][max_cols]: a decoded row of another type */
    int8_t *qk_q;                          /* [CPUK_MAX_BATCH][max_cols]: activations for qk.h's kernels */
    float *qk_d;                           /* [CPUK_MAX_BATCH][max_cols / 32] */
    int16_t *qk_s;                         /* [CPUK_MAX_BATCH][max_cols / 16] */
    size_t attn_floats;
    tk_state *tern;                        /* the ternary types' kernels (tern.h), NULL: row path */
    qk_pack_state *qkp;                    /* Q4_0 / Q8_0 repacked at load (qk.h), NULL: none */
} cpuk_state;

/* Chunk size giving each thread about `per` claims of a loop of n items. */
static int cpuk_chunk(const cpuk_state *s, int n, int per) {
    int c = n / (s->nth * per);
    return c < 1 ? 1 : c;
}

/* ---- kernel table choice --------------------------------------------------------------------- */

static int cpuk_usable(const ck_isa *isa) { return isa->compiled && isa->supported && isa->supported(); }

static const ck_isa *cpuk_pick_isa(void) {
    static const ck_isa *const order[] = {&ck_isa_avx512, &ck_isa_avx2, &ck_isa_neon, &ck_isa_wasm, &ck_isa_generic};
    const char *want = getenv("ONEBIT_CPU_ISA");
    if (want && *want)
        for (size_t i = 0; i < sizeof order / sizeof *order; i++)
            if (strcmp(order[i]->name, want) == 0 && cpuk_usable(order[i])) return order[i];
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (cpuk_usable(order[i])) return order[i];
    return &ck_isa_generic;
}

const char *cpuk_isa_name(const void *kstate) { return kstate ? ((const cpuk_state *)kstate)->isa->name : ""; }

/* ---- repacking at load ----------------------------------------------------------------------- */

typedef struct cpuk_repack_job {
    const ob_weight *w;
    uint8_t *dst;
    int tile0;
} cpuk_repack_job;

static void cpuk_repack_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const cpuk_repack_job *j = arg;
    ck_q1_repack(j->w->data, j->w->row_bytes, j->w->rows, j->w->cols, j->dst, j->tile0 + begin, j->tile0 + end);
}

/* Whether w is repacked: Q1_0, except the token embedding of an untied model (only looked up by
 * row, never multiplied). */
static int cpuk_repacked(const struct ob_model *m, const ob_weight *w) {
    return w->type == GGML_Q1_0 && !(w == m->tok_embd && w != m->output);
}

/* Repacks w into dst (ck_q1_packed_size bytes, in the arena) and describes it in out. */
static void cpuk_repack_weight(cpuk_state *s, const struct ob_model *m, const ob_weight *w, uint8_t *dst, ck_q1 *out) {
    const int n_tiles = (w->rows + CK_TILE - 1) / CK_TILE;
    const size_t tile_src = (size_t)CK_TILE * w->row_bytes;
    int step = (int)(CPUK_SLAB_BYTES / tile_src);
    if (step < 1) step = 1;
    const uint8_t *dropped = w->data;
    for (int t0 = 0; t0 < n_tiles; t0 += step) {
        const int t1 = t0 + step < n_tiles ? t0 + step : n_tiles;
        cpuk_repack_job j = {w, dst, t0};
        tp_for(s->pool, t1 - t0, cpuk_chunk(s, t1 - t0, 4), cpuk_repack_run, &j);
        if (m->file.mapped) {
            const int row_end = t1 * CK_TILE < w->rows ? t1 * CK_TILE : w->rows;
            dropped = ck_drop_pages(dropped, w->data + (size_t)row_end * w->row_bytes);
        }
    }
    out->data = dst;
    out->rows = w->rows;
    out->cols = w->cols;
    out->nb = w->cols / CK_BLK;
    out->n_tiles = n_tiles;
}

static void cpuk_free(void *kstate);

static ob_status cpuk_init(const struct ob_model *m, int n_threads, void **kstate) {
    cpuk_state *s = calloc(1, sizeof *s);
    if (!s) return ob_fail(OB_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->isa = cpuk_pick_isa();
    const char *pl = getenv("ONEBIT_CPU_Q1_PLANES");
    s->planes = pl && strcmp(pl, "1") == 0 ? 1 : 2;
    const char *act = getenv("ONEBIT_CPU_Q1_ACT");
    if (act && strcmp(act, "int8") == 0) s->planes = 1;
    if (act && strcmp(act, "int16") == 0) s->planes = 2;
    if (act && strcmp(act, "int8x32") == 0 && s->isa->quant32 && !s->isa->lut) s->planes = 1, s->s32 = 1;
    /* int14 where the vpermb tables run: two lookups per 256 weights instead of three (cpu_kern.h,
     * CK_VT2_PER_COL; prompts ~1.3x, 0.08 % logits error against int16's 0.07 %), for one token
     * and for prompts alike (prompts only while they take the tables, below); elsewhere it would
     * cost accuracy for no speed. */
    uint8_t probe[1];
    s->k14_tok = s->k14_batch = s->planes == 2 && s->isa->quant14 && s->isa->vtab && s->isa->vtab(NULL, NULL, 0, 2, probe);
    if (act && strcmp(act, "int16") == 0) s->k14_tok = s->k14_batch = 0;
    if (act && strcmp(act, "int14") == 0 && s->isa->quant14) s->planes = 2, s->k14_tok = s->k14_batch = 1;
    s->pool = tp_new(n_threads > 0 ? n_threads : 1);
    s->packed = calloc((size_t)(m->n_weights > 0 ? m->n_weights : 1), sizeof *s->packed);
    if (!s->pool || !s->packed) {
        cpuk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    s->nth = tp_threads(s->pool);
    s->n_weights = m->n_weights;
    s->max_cols = CK_BLK;
    size_t arena_bytes = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        if (!w->data) {
            cpuk_free(s);
            return ob_fail(OB_ERR_UNSUPPORTED, "the cpu backend needs the whole model file in memory");
        }
        if (w->cols > s->max_cols) s->max_cols = w->cols;
        if (!cpuk_repacked(m, w)) continue;
        const size_t bytes = ck_q1_packed_size(w->rows, w->cols), piece = ck_arena_piece(bytes);
        if (!bytes) {
            cpuk_free(s);
            return ob_fail(OB_ERR_FORMAT, "Q1_0 matrix of %d x %d cannot be repacked", w->rows, w->cols);
        }
        if (!piece || arena_bytes > SIZE_MAX - piece) {
            cpuk_free(s);
            return ob_fail(OB_ERR_NOMEM, "out of memory repacking weights");
        }
        arena_bytes += piece;
    }
    /* Every repacked Q1_0 matrix in one huge-page block (ck_arena_alloc says why). */
    if (arena_bytes && !(s->arena = ck_arena_alloc(arena_bytes))) {
        cpuk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory repacking weights");
    }
    size_t off = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        if (!cpuk_repacked(m, w)) continue;
        cpuk_repack_weight(s, m, w, s->arena + off, &s->packed[i]);
        off += ck_arena_piece(ck_q1_packed_size(w->rows, w->cols));
    }
    ob_status tst = tk_init(&s->tern, s->isa->name, m, s->pool);
    if (!tst) tst = qk_pack_init(&s->qkp, s->isa->name, m, s->pool);
    if (tst) {
        cpuk_free(s);
        return tst;
    }
    /* Workers stalled on page faults of the fresh repacked memory may have sent the pool into
     * periods of working alone (up to 1.6 s, threadpool.c) that would run the first prompt on
     * one thread: start generation with a clean history. */
    tp_settle(s->pool);
    s->max_cols = (s->max_cols + CK_BLK - 1) / CK_BLK * CK_BLK;
    s->max_nb = s->max_cols / CK_BLK;
    s->xq = aligned_alloc(64, (size_t)CPUK_MAX_BATCH * (size_t)s->max_cols);
    s->xl = aligned_alloc(64, (size_t)CPUK_MAX_BATCH * (size_t)s->max_cols);
    s->xa = malloc((size_t)CPUK_MAX_BATCH * (size_t)s->max_nb * 4 * sizeof(float)); /* 4: int8 per 32 */
    s->xc = malloc((size_t)CPUK_MAX_BATCH * (size_t)s->max_nb * sizeof(float));
    if (s->isa->lut && !(s->xlut = aligned_alloc(64, (size_t)CPUK_MAX_BATCH * (size_t)s->max_cols * CK_LUT_PER_COL))) {
        cpuk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    /* Prompts with int16 activations through every token's vpermb tables, where this CPU builds
     * them (a 16-column probe: vtab returns 0 without VBMI); one token through its own tables. */
    const char *vtm = getenv("ONEBIT_CPU_Q1_VTM"), *fuse = getenv("ONEBIT_CPU_FUSE");
    int8_t z16[16] = {0};
    uint8_t t16[16 * CK_VT_PER_COL];
    s->tok_vt = s->planes == 2 && s->isa->vtab && s->isa->vtab(z16, z16, 16, 3, t16);
    s->fuse = !(fuse && strcmp(fuse, "0") == 0);
    s->tok = aligned_alloc(64, (size_t)s->nth * sizeof *s->tok);
    if (!s->tok) {
        cpuk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    memset(s->tok, 0, (size_t)s->nth * sizeof *s->tok);
    for (int i = 0; i < s->nth; i++) {
        cpuk_tok *t = &s->tok[i];
        t->q = aligned_alloc(64, (size_t)s->max_cols);
        t->ql = s->planes == 2 ? aligned_alloc(64, (size_t)s->max_cols) : NULL;
        t->a = malloc((size_t)s->max_nb * 4 * sizeof(float));
        t->c = malloc((size_t)s->max_nb * sizeof(float));
        t->lut = s->isa->lut ? aligned_alloc(64, (size_t)s->max_cols * CK_LUT_PER_COL) : NULL;
        t->vt = s->tok_vt ? aligned_alloc(64, (size_t)s->max_cols * CK_VT_PER_COL) : NULL;
        if (!t->q || (s->planes == 2 && !t->ql) || !t->a || !t->c || (s->isa->lut && !t->lut) || (s->tok_vt && !t->vt)) {
            cpuk_free(s);
            return ob_fail(OB_ERR_NOMEM, "out of memory");
        }
    }
    s->vtm_stride = ck_vtm_stride(s->max_cols, 3);
    if (s->isa->vtab && s->planes == 2 && !s->s32 && !(vtm && strcmp(vtm, "0") == 0) && s->isa->vtab(z16, z16, 16, 3, t16) &&
        (!s->vtm_stride || !(s->xvtm = aligned_alloc(64, (size_t)CPUK_MAX_BATCH * s->vtm_stride)))) {
        cpuk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    if (!s->xvtm && !(act && strcmp(act, "int14") == 0)) s->k14_batch = 0;
    s->qk_q = aligned_alloc(64, (size_t)CPUK_MAX_BATCH * (size_t)s->max_cols);
    s->qk_d = malloc((size_t)CPUK_MAX_BATCH * (size_t)(s->max_cols / 32) * sizeof(float));
    s->qk_s = malloc((size_t)CPUK_MAX_BATCH * (size_t)(s->max_cols / 16) * sizeof(int16_t));
    s->attn_scratch = calloc((size_t)s->nth, sizeof *s->attn_scratch);
    s->row_buf = calloc((size_t)s->nth, sizeof *s->row_buf);
    for (int i = 0; s->row_buf && i < s->nth; i++)
        if (!(s->row_buf[i] = aligned_alloc(64, (size_t)s->max_cols * sizeof(float)))) {
            cpuk_free(s);
            return ob_fail(OB_ERR_NOMEM, "out of memory");
        }
    if (!s->xq || !s->xl || !s->xa || !s->xc || !s->qk_q || !s->qk_d || !s->qk_s || !s->attn_scratch || !s->row_buf) {
        cpuk_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    *kstate = s;
    return OB_OK;
}

static void cpuk_free(void *kstate) {
    cpuk_state *s = kstate;
    if (!s) return;
    tk_free(s->tern);
    qk_pack_free(s->qkp);
    tp_free(s->pool);
    free(s->arena);
    free(s->packed);
    free(s->xq);
    free(s->xl);
    free(s->xa);
    free(s->xc);
    free(s->xlut);
    for (int i = 0; s->tok && i < s->nth; i++) {
        free(s->tok[i].q);
        free(s->tok[i].ql);
        free(s->tok[i].a);
        free(s->tok[i].c);
        free(s->tok[i].lut);
        free(s->tok[i].vt);
    }
    free(s->tok);
    free(s->xvtm);
    free(s->qk_q);
    free(s->qk_d);
    free(s->qk_s);
    if (s->attn_scratch)
        for (int i = 0; i < s->nth; i++) free(s->attn_scratch[i]);
    free(s->attn_scratch);
    if (s->row_buf)
        for (int i = 0; i < s->nth; i++) free(s->row_buf[i]);
    free(s->row_buf);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- matrix products ------------------------------------------------------------------------- */

typedef struct cpuk_quant_job {
    const ck_isa *isa;
    const float *x;                        /* [n][cols] */
    int cols, nb;
    int8_t *q, *ql;                        /* ql NULL: int8 */
    float *a, *c;
    uint8_t *lut;                          /* isa->lut's tables, NULL without */
    int s32;                               /* int8 per 32 (isa->quant32; a is [n][4 nb]) */
    int k14;                               /* int14 in the two planes (isa->quant14) */
    uint8_t *vtm;                          /* [n][vtm_stride]: isa->vtab's tables, or NULL */
    size_t vtm_stride;
    int vtm_planes;                        /* byte planes of vtm's tables (3, or 2 with k14) */
} cpuk_quant_job;

static void cpuk_quant_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const cpuk_quant_job *j = arg;
    if (j->s32) {
        for (int t = begin; t < end; t++)
            j->isa->quant32(j->x + (size_t)t * j->cols, j->cols, j->q + (size_t)t * j->cols, j->a + (size_t)t * j->nb * 4,
                            j->c + (size_t)t * j->nb);
        return;
    }
    void (*quant)(const float *, int, int8_t *, int8_t *, float *, float *) = j->k14 ? j->isa->quant14 : j->isa->quant;
    for (int t = begin; t < end; t++)
        quant(j->x + (size_t)t * j->cols, j->cols, j->q + (size_t)t * j->cols, j->ql ? j->ql + (size_t)t * j->cols : NULL,
              j->a + (size_t)t * j->nb, j->c + (size_t)t * j->nb);
    if (j->lut)
        for (int t = begin; t < end; t++)
            j->isa->lut(j->q + (size_t)t * j->cols, j->ql ? j->ql + (size_t)t * j->cols : NULL, j->cols,
                        j->lut + (size_t)t * j->cols * CK_LUT_PER_COL);
    if (j->vtm)
        for (int t = begin; t < end; t++)
            j->isa->vtab(j->q + (size_t)t * j->cols, j->ql + (size_t)t * j->cols, j->cols, j->vtm_planes,
                         j->vtm + (size_t)t * j->vtm_stride);
}

typedef struct cpuk_gemm_job {
    const ck_isa *isa;
    const ck_q1 *w;
    ck_act x;
    int n;
    float *y;
    size_t ys;
} cpuk_gemm_job;

static void cpuk_gemm_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const cpuk_gemm_job *j = arg;
    j->isa->gemm(j->w, begin, end, &j->x, j->n, j->y, j->ys);
}

/* One token times one or more repacked matrices of the same columns (q, k and v; gate and up): one
 * job over their tiles in a row, so the threads meet once for all of them. Each thread quantises
 * the token and builds its tables when it first takes part (cpuk_tok), then multiplies its tiles. */
typedef struct cpuk_gemv_job {
    cpuk_state *s;
    const float *x;                        /* [cols] */
    int cols, nw;
    const ck_q1 *w[CPUK_MULTI];
    float *y[CPUK_MULTI];
    int end[CPUK_MULTI];                   /* tiles of w[0..k] together */
    unsigned long long id;
} cpuk_gemv_job;

static void cpuk_gemv_run(void *arg, int begin, int end, int ith) {
    const cpuk_gemv_job *j = arg;
    const cpuk_state *s = j->s;
    const ck_isa *isa = s->isa;
    cpuk_tok *t = &s->tok[ith];
    const int nb = j->cols / CK_BLK, vplanes = s->k14_tok ? 2 : 3;
    int8_t *ql = s->planes == 2 ? t->ql : NULL;
    if (t->job != j->id) {
        if (s->s32) isa->quant32(j->x, j->cols, t->q, t->a, t->c);
        else (ql && s->k14_tok ? isa->quant14 : isa->quant)(j->x, j->cols, t->q, ql, t->a, t->c);
        if (t->lut) isa->lut(t->q, ql, j->cols, t->lut);
        if (t->vt) isa->vtab(t->q, ql, j->cols, vplanes, t->vt);
        t->job = j->id;
    }
    const ck_act act = {t->q, ql, t->a, t->c, j->cols, nb, t->lut, (size_t)j->cols * CK_LUT_PER_COL, s->s32, t->vt, vplanes,
                        NULL, 0, 0};
    for (int m = 0, first = 0; m < j->nw && begin < end; first = j->end[m++]) {
        if (begin >= j->end[m]) continue;
        const int stop = end < j->end[m] ? end : j->end[m];
        isa->gemm(j->w[m], begin - first, stop - first, &act, 1, j->y[m], (size_t)j->w[m]->rows);
        begin = stop;
    }
}

/* One token times nw repacked matrices of x's columns (s->mu held). */
static void cpuk_gemv(cpuk_state *s, const ck_q1 *const *w, float *const *y, int nw, const float *x) {
    cpuk_gemv_job j = {s, x, w[0]->cols, nw, {NULL}, {NULL}, {0}, ++s->jobs};
    int tiles = 0;
    for (int m = 0; m < nw; m++) {
        j.w[m] = w[m];
        j.y[m] = y[m];
        j.end[m] = tiles += w[m]->n_tiles;
    }
    /* About 16 claims per thread: a tile is quick, and the last claim decides how long the
     * others wait. */
    tp_for(s->pool, tiles, cpuk_chunk(s, tiles, 16), cpuk_gemv_run, &j);
}

/* Other weight types: a row decoded into the thread's buffer, then a float dot per token. */
typedef struct cpuk_rowdot_job {
    const ob_weight *w;
    void (*dequant)(const void *src, float *dst, size_t n); /* the table's row, or the ISA's equal one */
    float *const *buf;                     /* [nth][cols] */
    const float *x;                        /* [n][cols] */
    float *y;                              /* [n][rows] */
    int n;
} cpuk_rowdot_job;

/* sum a[j] * b[j] in 16 interleaved partial sums, then a pairwise reduction. */
static float cpuk_dot_f32(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[j + k] * b[j + k];
    for (; j < n; j++) acc[j & 15] += a[j] * b[j];
    for (int w = 8; w; w >>= 1)
        for (int k = 0; k < w; k++) acc[k] += acc[k + w];
    return acc[0];
}

static void cpuk_rowdot_run(void *arg, int begin, int end, int ith) {
    const cpuk_rowdot_job *j = arg;
    const ob_weight *w = j->w;
    float *buf = j->buf[ith];
    for (int r = begin; r < end; r++) {
        j->dequant(w->data + (size_t)r * w->row_bytes, buf, (size_t)w->cols);
        for (int t = 0; t < j->n; t++)
            j->y[(size_t)t * w->rows + r] = cpuk_dot_f32(buf, j->x + (size_t)t * w->cols, w->cols);
    }
}

/* Types with an integer-dot kernel of this instruction set (qk.h): the activations quantised once
 * per batch of tokens, then groups of 16 rows split over the threads. */
typedef struct cpuk_qk_job {
    const qk_kern *k;
    const ob_weight *w;
    const float *x;                        /* [n][cols] */
    qk_act a;
    float *y;
    int n;
    qk_quant_fn quant;
} cpuk_qk_job;

static void cpuk_qk_quant_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const cpuk_qk_job *j = arg;
    const int cols = j->a.cols;
    for (int t = begin; t < end; t++)
        j->quant(j->x + (size_t)t * cols, cols, j->a.blk, (int8_t *)j->a.q + (size_t)t * cols,
                 (float *)j->a.d + (size_t)t * (cols / j->a.blk), (int16_t *)j->a.s + (size_t)t * (cols / 16));
}

static void cpuk_qk_rows_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const cpuk_qk_job *j = arg;
    const int r1 = end * 16 < j->w->rows ? end * 16 : j->w->rows;
    j->k->rows(j->w->data, j->w->row_bytes, begin * 16, r1, &j->a, j->n, j->y, (size_t)j->w->rows);
}

static void cpuk_qk_matmul(cpuk_state *s, const qk_kern *k, const ob_weight *w, const float *x, float *y, int n) {
    const int groups = (w->rows + 15) / 16;
    for (int t0 = 0; t0 < n; t0 += CPUK_MAX_BATCH) {
        const int nt = n - t0 < CPUK_MAX_BATCH ? n - t0 : CPUK_MAX_BATCH;
        cpuk_qk_job j = {k, w, x + (size_t)t0 * w->cols, {s->qk_q, s->qk_d, s->qk_s, w->cols, k->act_blk},
                         y + (size_t)t0 * w->rows, nt, qk_quant_for(s->isa->name)};
        tp_for(s->pool, nt, 1, cpuk_qk_quant_run, &j);
        tp_for(s->pool, groups, cpuk_chunk(s, groups, nt == 1 ? 16 : 8), cpuk_qk_rows_run, &j);
    }
}

static void cpuk_matmul(void *kstate, const ob_weight *w, const float *x, float *y, int n) {
    cpuk_state *s = kstate;
    const ck_q1 *pw = w->id >= 0 && w->id < s->n_weights ? &s->packed[w->id] : NULL;
    pthread_mutex_lock(&s->mu);
    if (tk_matmul(s->tern, w, x, y, n) || qk_pack_matmul(s->qkp, w, x, y, n)) { /* repacked at load */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (!pw || !pw->data) {
        /* A kernel of (type, instruction set) where there is one, else the type table's row. */
        const qk_kern *qk = w->cols <= s->max_cols ? qk_find(s->isa->name, w->type) : NULL;
        if (qk && w->cols % qk->act_blk == 0) {
            cpuk_qk_matmul(s, qk, w, x, y, n);
            pthread_mutex_unlock(&s->mu);
            return;
        }
        /* The loader admits only types with a row; max_cols covers every weight of the model. */
        void (*dq)(const void *, float *, size_t) = ob_type_find(w->type)->dequant;
        if (w->type == GGML_Q2_0 && s->isa->dq_q2_0) dq = s->isa->dq_q2_0;
        if (w->type == GGML_TQ2_0 && s->isa->dq_tq2_0) dq = s->isa->dq_tq2_0;
        cpuk_rowdot_job j = {w, dq, s->row_buf, x, y, n};
        if (w->cols <= s->max_cols) tp_for(s->pool, w->rows, cpuk_chunk(s, w->rows, 8), cpuk_rowdot_run, &j);
        else scalar_matmul(NULL, w, x, y, n); /* not a weight of this model: the reference */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    const int nb = pw->nb;
    int8_t *xl = s->planes == 2 ? s->xl : NULL;
    for (int t0 = 0; t0 < n; t0 += CPUK_MAX_BATCH) {
        const int nt = n - t0 < CPUK_MAX_BATCH ? n - t0 : CPUK_MAX_BATCH;
        if (nt == 1) { /* one token (a decode step, or the last of a long batch): the one-token kernels */
            float *yt = y + (size_t)t0 * pw->rows;
            cpuk_gemv(s, &pw, &yt, 1, x + (size_t)t0 * pw->cols);
            continue;
        }
        const int k14 = xl && s->k14_batch, vplanes = k14 ? 2 : 3;
        /* Several tokens with two planes: every token's vpermb tables where this CPU has them
         * (xvtm), built by the threads that quantise. */
        uint8_t *vtm = xl ? s->xvtm : NULL;
        cpuk_quant_job qj = {s->isa, x + (size_t)t0 * pw->cols, pw->cols, nb, s->xq, xl, s->xa, s->xc, s->xlut, s->s32, k14, vtm, s->vtm_stride, vplanes};
        tp_for(s->pool, nt, 1, cpuk_quant_run, &qj);
        cpuk_gemm_job gj = {s->isa, pw, {s->xq, xl, s->xa, s->xc, pw->cols, nb, s->xlut, (size_t)pw->cols * CK_LUT_PER_COL, s->s32, NULL, vplanes,
                                         vtm, s->vtm_stride, vplanes},
                            nt, y + (size_t)t0 * pw->rows, (size_t)pw->rows};
        /* About 8 claims per thread: enough to even out threads slowed by other work. */
        int chunk = cpuk_chunk(s, pw->n_tiles, 8);
        if (vtm && chunk < CPUK_VTM_TILES) chunk = CPUK_VTM_TILES;
        tp_for(s->pool, pw->n_tiles, chunk, cpuk_gemm_run, &gj);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Products of one input x by nw matrices (q, k and v; gate and up): one token times repacked Q1_0
 * matrices of the same columns share a job (cpuk_gemv); anything else goes one product at a time. */
static void cpuk_matmul_multi(void *kstate, const ob_weight *const *w, float *const *y, int nw, const float *x, int n) {
    cpuk_state *s = kstate;
    const ck_q1 *pw[CPUK_MULTI];
    int fused = s->fuse && n == 1 && nw <= CPUK_MULTI;
    for (int m = 0; fused && m < nw; m++) {
        pw[m] = w[m]->id >= 0 && w[m]->id < s->n_weights ? &s->packed[w[m]->id] : NULL;
        fused = pw[m] && pw[m]->data && pw[m]->cols == pw[0]->cols;
    }
    if (!fused) {
        for (int m = 0; m < nw; m++) cpuk_matmul(s, w[m], x, y[m], n);
        return;
    }
    pthread_mutex_lock(&s->mu);
    cpuk_gemv(s, pw, y, nw, x);
    pthread_mutex_unlock(&s->mu);
}

/* ---- attention ------------------------------------------------------------------------------- */

typedef struct cpuk_attn_job {
    const ck_isa *isa;
    const ob_attn_args *a;
    const uint16_t *k16, *v16;             /* a half cache, or NULL */
    float **scratch;                       /* [nth] */
    size_t cap;                            /* positions the scratch has room for */
    int tok_per_task;                      /* tokens of one task (all sharing its KV head) */
} cpuk_attn_job;

static void cpuk_attn_run(void *arg, int begin, int end, int ith) {
    const cpuk_attn_job *j = arg;
    const ob_attn_args *a = j->a;
    const int HD = a->head_dim, QD = a->n_head * HD, KD = a->n_head_kv * HD, group = a->n_head / a->n_head_kv;
    const int blocks = (a->n + j->tok_per_task - 1) / j->tok_per_task;
    float *scores = j->scratch[ith];
    for (int task = begin; task < end; task++) {
        const int kvh = task / blocks, t0 = task % blocks * j->tok_per_task;
        const int t1 = t0 + j->tok_per_task < a->n ? t0 + j->tok_per_task : a->n;
        if (j->k16 && j->isa->attn_multi_f16 && group <= CK_ATTN_MAXQ) {
            /* The ISA reads the half cache in place (0: not for this head_dim, widen below). */
            const float *qs[CK_ATTN_MAXQ];
            float *outs[CK_ATTN_MAXQ];
            int npos[CK_ATTN_MAXQ], nq = 0;
            for (int t = t0; t < t1; t++)
                for (int h = kvh * group; h < (kvh + 1) * group; h++, nq++) {
                    qs[nq] = a->q + (size_t)t * QD + (size_t)h * HD;
                    outs[nq] = a->out + (size_t)t * QD + (size_t)h * HD;
                    npos[nq] = a->pos + t + 1;
                }
            if (j->isa->attn_multi_f16(qs, outs, npos, nq, j->k16 + (size_t)kvh * HD, j->v16 + (size_t)kvh * HD,
                                       (size_t)KD, HD, a->scale, scores))
                continue;
        }
        const float *k, *v;
        size_t stride = (size_t)KD;
        if (j->k16) {
            /* Half cache: this head's rows the task needs, as floats, next to each other. */
            const size_t rows = (size_t)(a->pos + t1);
            float *kf = scores + (size_t)CK_ATTN_MAXQ * j->cap, *vf = kf + (size_t)j->cap * HD;
            void (*cvt)(float *, const uint16_t *, size_t) = j->isa->f16_to_f32 ? j->isa->f16_to_f32 : ck_f16_to_f32_generic;
            for (size_t r = 0; r < rows; r++) {
                cvt(kf + r * HD, j->k16 + r * KD + (size_t)kvh * HD, (size_t)HD);
                cvt(vf + r * HD, j->v16 + r * KD + (size_t)kvh * HD, (size_t)HD);
            }
            k = kf, v = vf, stride = (size_t)HD;
        } else {
            k = a->k_cache + (size_t)kvh * HD, v = a->v_cache + (size_t)kvh * HD;
        }
        const float *qs[CK_ATTN_MAXQ];
        float *outs[CK_ATTN_MAXQ];
        int npos[CK_ATTN_MAXQ], nq = 0;
        for (int t = t0; t < t1; t++)
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                const float *q = a->q + (size_t)t * QD + (size_t)h * HD;
                float *out = a->out + (size_t)t * QD + (size_t)h * HD;
                if (!j->isa->attn_multi || group > CK_ATTN_MAXQ) {
                    j->isa->attn(q, k, v, stride, a->pos + t + 1, HD, a->scale, out, scores);
                    continue;
                }
                qs[nq] = q;
                outs[nq] = out;
                npos[nq++] = a->pos + t + 1;
            }
        if (nq) j->isa->attn_multi(qs, outs, npos, nq, k, v, stride, HD, a->scale, scores);
    }
}

/* Attention without scratch memory (the fast path could not get its buffers): the reference's
 * online softmax, reading a half cache directly when there is one. */
static void cpuk_attention_plain(const ob_attn_args *a, const uint16_t *k16, const uint16_t *v16) {
    if (!k16) {
        scalar_attention(NULL, a);
        return;
    }
    const int HD = a->head_dim, QD = a->n_head * HD, KD = a->n_head_kv * HD, group = a->n_head / a->n_head_kv;
    for (int t = 0; t < a->n; t++)
        for (int h = 0; h < a->n_head; h++) {
            const float *q = a->q + (size_t)t * QD + (size_t)h * HD;
            float *out = a->out + (size_t)t * QD + (size_t)h * HD;
            const size_t off = (size_t)(h / group) * HD;
            float mx = -INFINITY, denom = 0.0f;
            memset(out, 0, (size_t)HD * sizeof(float));
            for (int p = 0; p <= a->pos + t; p++) {
                const uint16_t *k = k16 + (size_t)p * KD + off, *v = v16 + (size_t)p * KD + off;
                float sc = 0.0f;
                for (int i = 0; i < HD; i++) sc += q[i] * ob_fp16_to_f32(k[i]);
                sc *= a->scale;
                if (sc > mx) {
                    const float corr = expf(mx - sc);
                    denom *= corr;
                    for (int i = 0; i < HD; i++) out[i] *= corr;
                    mx = sc;
                }
                const float e = expf(sc - mx);
                denom += e;
                for (int i = 0; i < HD; i++) out[i] += e * ob_fp16_to_f32(v[i]);
            }
            for (int i = 0; i < HD; i++) out[i] /= denom;
        }
}

static void cpuk_attention_any(cpuk_state *s, const ob_attn_args *a, const uint16_t *k16, const uint16_t *v16) {
    pthread_mutex_lock(&s->mu);
    /* Per thread: scores of up to CK_ATTN_MAXQ queries, and for a half cache one head's keys
     * and values as floats. Grown with the context, with room to spare. */
    const size_t need = (size_t)(a->pos + a->n), cap = need + 1024;
    const size_t per = (size_t)CK_ATTN_MAXQ + (k16 ? 2 * (size_t)a->head_dim : 0);
    int ok = cap <= SIZE_MAX / sizeof(float) / per;
    if (ok && need * per > s->attn_floats) {
        for (int i = 0; i < s->nth && ok; i++) {
            float *p = realloc(s->attn_scratch[i], cap * per * sizeof(float));
            if (p) s->attn_scratch[i] = p;
            else ok = 0;
        }
        if (ok) s->attn_floats = cap * per;
    }
    if (!ok) {
        cpuk_attention_plain(a, k16, v16);
    } else {
        /* Tasks of one KV head are next to each other, so its cache rows stay in L2. */
        const int group = a->n_head / a->n_head_kv;
        cpuk_attn_job j = {s->isa, a, k16, v16, s->attn_scratch, s->attn_floats / per,
                           group < CK_ATTN_MAXQ ? CK_ATTN_MAXQ / group : 1};
        tp_for(s->pool, a->n_head_kv * ((a->n + j.tok_per_task - 1) / j.tok_per_task), 1, cpuk_attn_run, &j);
    }
    pthread_mutex_unlock(&s->mu);
}

static void cpuk_attention(void *kstate, const ob_attn_args *a) { cpuk_attention_any(kstate, a, NULL, NULL); }

static void cpuk_attention_f16(void *kstate, const ob_attn_args *a, const uint16_t *k16, const uint16_t *v16) {
    cpuk_attention_any(kstate, a, k16, v16);
}

/* ---- elementwise stages ---------------------------------------------------------------------- */

typedef struct cpuk_norm_job {
    float *y;
    const float *x, *w;
    int len;
    float eps;
} cpuk_norm_job;

static void cpuk_norm_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const cpuk_norm_job *j = arg;
    for (int t = begin; t < end; t++)
        ck_rmsnorm_row(j->y + (size_t)t * j->len, j->x + (size_t)t * j->len, j->w, j->len, j->eps);
}

static void cpuk_rmsnorm(void *kstate, float *y, const float *x, const float *w, int n, int len, float eps) {
    cpuk_state *s = kstate;
    cpuk_norm_job j = {y, x, w, len, eps};
    pthread_mutex_lock(&s->mu);
    tp_for(s->pool, n, cpuk_chunk(s, n, 2), cpuk_norm_run, &j);
    pthread_mutex_unlock(&s->mu);
}

typedef struct cpuk_swiglu_job {
    const ck_isa *isa;
    float *g;
    const float *u;
    size_t n;
} cpuk_swiglu_job;

#define CPUK_SWIGLU_PIECE 1024             /* elements per loop item */

static void cpuk_swiglu_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const cpuk_swiglu_job *j = arg;
    const size_t a = (size_t)begin * CPUK_SWIGLU_PIECE, b0 = (size_t)end * CPUK_SWIGLU_PIECE, b = b0 < j->n ? b0 : j->n;
    if (j->isa->swiglu) j->isa->swiglu(j->g + a, j->u + a, b - a);
    else ck_swiglu_generic(j->g + a, j->u + a, b - a);
}

static void cpuk_swiglu(void *kstate, float *g, const float *u, size_t n) {
    cpuk_state *s = kstate;
    cpuk_swiglu_job j = {s->isa, g, u, n};
    const size_t pieces = (n + CPUK_SWIGLU_PIECE - 1) / CPUK_SWIGLU_PIECE;
    if (pieces > INT32_MAX) { /* not from the forward pass; stay correct anyway */
        ck_swiglu_generic(g, u, n);
        return;
    }
    pthread_mutex_lock(&s->mu);
    /* One token (6 pieces for Qwen3-1.7B) is done by the caller: not worth a handover. */
    tp_for(s->pool, (int)pieces, pieces <= 16 ? 16 : cpuk_chunk(s, (int)pieces, 4), cpuk_swiglu_run, &j);
    pthread_mutex_unlock(&s->mu);
}

static void cpuk_to_f16(void *kstate, uint16_t *dst, const float *src, size_t n) {
    const cpuk_state *s = kstate;
    if (s->isa->f32_to_f16) s->isa->f32_to_f16(dst, src, n);
    else ck_f32_to_f16_generic(dst, src, n);
}

/* ---- the backend ----------------------------------------------------------------------------- */

const ob_kernels cpuk_kernels = {
    .name = "cpu",
    .max_batch = CPUK_MAX_BATCH,
    .init = cpuk_init,
    .free = cpuk_free,
    .matmul = cpuk_matmul,
    .matmul_multi = cpuk_matmul_multi,
    .attention = cpuk_attention,
    .rmsnorm = cpuk_rmsnorm,
    .swiglu = cpuk_swiglu,
    .kv_f16 = 1,
    .attention_f16 = cpuk_attention_f16,
    .to_f16 = cpuk_to_f16,
};

static int cpuk_supported(void) { return 1; } /* the portable table runs anywhere */

static ob_status cpuk_model_init(const struct ob_model *m, int n_threads, void **mstate) {
    return cpu_model_init(&cpuk_kernels, m, n_threads, mstate);
}

static const char *cpuk_detail(const void *mstate) { return cpuk_isa_name(cpu_model_kstate(mstate)); }

const ob_backend ob_backend_cpu = {
    .name = "cpu",
    .supported = cpuk_supported,
    .detail = cpuk_detail,
    .model_init = cpuk_model_init,
    .model_free = cpu_model_free,
    .ctx_init = cpu_ctx_init,
    .ctx_free = cpu_ctx_free,
    .forward = cpu_forward,
    .hidden = cpu_hidden,
};
