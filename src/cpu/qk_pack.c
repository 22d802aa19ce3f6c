/* qk_pack.c — the repacked row-interleaved layout of qk.h (Q4_0, Q8_0, Q4_K, Q6_K: groups of 8
 * rows, one group-block per block of 32 or super-block of 256 columns), its repacking, and the cpu backend's hook (qk_pack_init /
 * qk_pack_matmul): matrices repacked at load in place of the file's rows, products by the
 * instruction set's `pack` kernels. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

#include "cpu_kern.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "qk.h"
#include "threadpool.h"
#include "util.h"

#define QP_MAX_BATCH 64               /* tokens quantised at once */
#define QP_SLAB_BYTES (4u << 20)      /* source bytes repacked between page drops */

/* Bytes of one group-block (8 rows x one block), of one file block; 0: no repacked layout. */
static size_t qp_gb_bytes(uint32_t type) {
    switch (type) {
    case GGML_Q4_0: return 16 + 128;
    case GGML_Q8_0: return 16 + 256;
    case GGML_Q4_K: return 32 + 128 + 1024;
    case GGML_Q6_K: return 16 + 128 + 1024 + 512;
    default: return 0;
    }
}

static int qp_blk(uint32_t type) { return type == GGML_Q4_K || type == GGML_Q6_K ? 256 : 32; }

static int qp_src_bytes(uint32_t type) {
    return type == GGML_Q4_0 ? 18 : type == GGML_Q8_0 ? 34 : type == GGML_Q4_K ? 144 : 210;
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K (quant.c documents the packing). */
static void qp_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 15) | (q[j - 4] >> 6) << 4);
        *mn = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
    }
}

void qk_pack_offsets(const int16_t *s, int nb, int32_t *o) {
    for (int b = 0; b < nb; b++) o[b] = -8 * (s[2 * b] + s[2 * b + 1]);
}

size_t qk_pack_size(uint32_t type, int rows, int cols) {
    const size_t gb = qp_gb_bytes(type);
    if (!gb || rows <= 0 || cols <= 0 || cols % qp_blk(type)) return 0;
    return (size_t)((rows + QK_PR - 1) / QK_PR) * (size_t)(cols / qp_blk(type)) * gb;
}

void qk_repack(uint32_t type, const uint8_t *src, size_t row_bytes, int rows, int cols, uint8_t *dst, int g0, int g1) {
    const int nb = cols / qp_blk(type);
    const size_t gb = qp_gb_bytes(type);
    for (int g = g0; g < g1; g++)
        for (int b = 0; b < nb; b++) {
            uint8_t *o = dst + ((size_t)g * nb + b) * gb;
            memset(o, 0, gb);
            for (int r = 0; r < QK_PR; r++) {
                const int row = QK_PR * g + r;
                if (row >= rows) break;
                const uint8_t *blk = src + (size_t)row * row_bytes + (size_t)b * qp_src_bytes(type);
                if (type == GGML_Q6_K) {
                    memcpy(o + 2 * r, blk + 208, 2); /* fp16 d */
                    for (int gi = 0; gi < 16; gi++) o[16 + 8 * gi + r] = blk[192 + gi];
                    uint8_t u[256]; /* the 6-bit codes in weight order */
                    for (int h = 0; h < 2; h++)
                        for (int l = 0; l < 32; l++) {
                            const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
                            u[128 * h + l] = (uint8_t)((ql[l] & 15) | (qh[l] & 3) << 4);
                            u[128 * h + 32 + l] = (uint8_t)((ql[32 + l] & 15) | (qh[l] >> 2 & 3) << 4);
                            u[128 * h + 64 + l] = (uint8_t)((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4);
                            u[128 * h + 96 + l] = (uint8_t)((ql[32 + l] >> 4) | (qh[l] >> 6 & 3) << 4);
                        }
                    for (int k = 0; k < 4; k++)
                        for (int j = 0; j < 8; j++)
                            for (int c = 0; c < 4; c++)
                                o[144 + 768 * (k / 2) + 256 + 256 * (k % 2) + 32 * j + 4 * r + c] =
                                    (uint8_t)((u[64 * k + 4 * j + c] & 15) | (u[64 * k + 32 + 4 * j + c] & 15) << 4);
                    for (int k = 0; k < 2; k++)
                        for (int j = 0; j < 8; j++)
                            for (int c = 0; c < 4; c++) {
                                uint8_t v = 0;
                                for (int m = 0; m < 4; m++) v |= (uint8_t)((u[128 * k + 32 * m + 4 * j + c] >> 4) << (2 * m));
                                o[144 + 768 * k + 32 * j + 4 * r + c] = v;
                            }
                    continue;
                }
                memcpy(o + 2 * r, blk, 2); /* fp16 scale */
                if (type == GGML_Q4_K) {
                    memcpy(o + 16 + 2 * r, blk + 2, 2); /* fp16 dmin */
                    for (int sb = 0; sb < 8; sb++) qp_scale_min(sb, blk + 4, &o[32 + 8 * sb + r], &o[96 + 8 * sb + r]);
                    /* file: qs[32k + i] = weight 64k + i (low nibble), 64k + 32 + i (high) */
                    for (int k = 0; k < 4; k++)
                        for (int j = 0; j < 8; j++)
                            for (int c = 0; c < 4; c++) o[160 + 256 * k + 32 * j + 4 * r + c] = blk[16 + 32 * k + 4 * j + c];
                } else if (type == GGML_Q4_0) {
                    /* file: byte i = column i (low nibble), column 16 + i (high) */
                    for (int j = 0; j < 4; j++)
                        for (int c = 0; c < 4; c++) o[16 + 32 * j + 4 * r + c] = blk[2 + 4 * j + c];
                } else {
                    for (int j = 0; j < 8; j++)
                        for (int c = 0; c < 4; c++) o[16 + 32 * j + 4 * r + c] = blk[2 + 4 * j + c];
                }
            }
        }
}

/* ---- the backend's hook ---------------------------------------------------------------------- */

typedef struct qp_mat {
    const uint8_t *data;               /* NULL: not repacked */
    const qk_kern *k;
    int rows, cols, nb, groups;
} qp_mat;

struct qk_pack_state {
    tp_pool *pool;
    int nth;
    uint8_t *arena;                    /* every repacked matrix (ck_arena_alloc) */
    qp_mat *mats;                      /* [n_weights]; data NULL where not repacked, else in arena */
    int n_weights, max_cols;
    int8_t *q;                         /* [QP_MAX_BATCH][max_cols] */
    float *d;                          /* [QP_MAX_BATCH][max_cols / 32] */
    int16_t *s;                        /* [QP_MAX_BATCH][max_cols / 16] */
    int32_t *o;                        /* [QP_MAX_BATCH][max_cols / 32] */
    qk_quant_fn quant;
};

static int qp_chunk(const qk_pack_state *s, int n, int per) {
    const int c = n / (s->nth * per);
    return c < 1 ? 1 : c;
}

typedef struct qp_repack_job {
    const ob_weight *w;
    uint8_t *dst;
    int g0;
} qp_repack_job;

static void qp_repack_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const qp_repack_job *j = arg;
    qk_repack(j->w->type, j->w->data, j->w->row_bytes, j->w->rows, j->w->cols, j->dst, j->g0 + begin, j->g0 + end);
}

/* Repacks w into dst (qk_pack_size bytes, in the arena) and describes it in out. */
static void qp_repack_weight(qk_pack_state *s, const ob_model *m, const ob_weight *w, const qk_kern *k, uint8_t *dst,
                             qp_mat *out) {
    const int groups = (w->rows + QK_PR - 1) / QK_PR;
    int step = (int)(QP_SLAB_BYTES / ((size_t)QK_PR * w->row_bytes));
    if (step < 1) step = 1;
    const uint8_t *dropped = w->data;
    for (int g0 = 0; g0 < groups; g0 += step) {
        const int g1 = g0 + step < groups ? g0 + step : groups;
        qp_repack_job j = {w, dst, g0};
        tp_for(s->pool, g1 - g0, qp_chunk(s, g1 - g0, 4), qp_repack_run, &j);
        if (m->file.mapped) {
            const int row_end = g1 * QK_PR < w->rows ? g1 * QK_PR : w->rows;
            dropped = ck_drop_pages(dropped, w->data + (size_t)row_end * w->row_bytes);
        }
    }
    *out = (qp_mat){dst, k, w->rows, w->cols, w->cols / k->act_blk, groups};
}

/* Whether the comma-separated list names the type (case-insensitive), as ONEBIT_CPU_NO_REPACK. */
static int qp_excluded(const char *list, uint32_t type) {
    const ob_type_row *tr = ob_type_find(type);
    if (!list || !tr) return 0;
    const size_t n = strlen(tr->name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncasecmp(p, tr->name, n) == 0) return 1;
        p += len + (e ? 1 : 0);
    }
    return 0;
}

/* Bytes of w's repacked form (its kernel in *kp where kp is not NULL), 0 where it stays in the
 * file's layout: no pack kernel for its type, a type the list `no` names, an embedding that is only
 * looked up (untied), a Q6_K output matrix while keep_q6_out, or not a shape of the layout. */
static size_t qp_repacked_bytes(const ob_model *m, const ob_weight *w, const char *isa, const char *no, int keep_q6_out,
                                const qk_kern **kp) {
    const qk_kern *k = w->data ? qk_find(isa, w->type) : NULL;
    if (kp) *kp = k;
    if (!k || !k->pack || qp_excluded(no, w->type) || (w == m->tok_embd && w != m->output)) return 0;
    if (keep_q6_out && w == m->output && w->type == GGML_Q6_K) return 0;
    return qk_pack_size(w->type, w->rows, w->cols);
}

ob_status qk_pack_init(qk_pack_state **out, const char *isa, const ob_model *m, tp_pool *pool) {
    *out = NULL;
#if defined(__wasm__)
    /* No wasm table has a pack kernel (qk_wasm.c): leave the repacking out of the core a page
     * downloads (its 200 KB budget) rather than carry code that cannot run there. */
    return OB_OK;
#endif
    /* ONEBIT_CPU_NO_REPACK: "1" keeps every matrix in the file's layout (the row kernels, to compare),
     * "0" repacks every matrix of a type that has a kernel, else a list of type names (e.g.
     * "q6_K,q4_K") keeps those. Unset: every such matrix but a Q6_K output matrix, which prompts
     * use for their last token only and whose repacked one-token kernel is slower than the row
     * kernel (the layout's interleaved 16 rows stream less well from memory; BENCHMARKS.md). */
    const char *no = getenv("ONEBIT_CPU_NO_REPACK");
    const int keep_q6_out = !no;
    if (!no || strcmp(no, "0") == 0) no = "";
    if (strcmp(no, "1") == 0) return OB_OK;
    int any = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const qk_kern *k = m->weights[i].data ? qk_find(isa, m->weights[i].type) : NULL;
        any |= k && k->pack && !qp_excluded(no, m->weights[i].type);
    }
    if (!any) return OB_OK;
    qk_pack_state *s = calloc(1, sizeof *s);
    if (!s) return ob_fail(OB_ERR_NOMEM, "out of memory");
    s->pool = pool;
    s->nth = tp_threads(pool);
    s->quant = qk_quant_for(isa);
    s->n_weights = m->n_weights;
    s->max_cols = 32;
    s->mats = calloc((size_t)m->n_weights, sizeof *s->mats);
    if (!s->mats) {
        qk_pack_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    /* Every repacked matrix in one huge-page block (ck_arena_alloc says why). */
    size_t total = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const size_t bytes = qp_repacked_bytes(m, &m->weights[i], isa, no, keep_q6_out, NULL);
        const size_t piece = ck_arena_piece(bytes);
        if ((bytes && !piece) || total > SIZE_MAX - piece) {
            qk_pack_free(s);
            return ob_fail(OB_ERR_NOMEM, "out of memory repacking weights");
        }
        total += piece;
    }
    if (total && !(s->arena = ck_arena_alloc(total))) {
        qk_pack_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory repacking weights");
    }
    size_t off = 0;
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        const qk_kern *k;
        const size_t bytes = qp_repacked_bytes(m, w, isa, no, keep_q6_out, &k);
        if (!bytes) continue;
        qp_repack_weight(s, m, w, k, s->arena + off, &s->mats[i]);
        off += ck_arena_piece(bytes);
        if (w->cols > s->max_cols) s->max_cols = w->cols;
    }
    s->q = aligned_alloc(64, (size_t)QP_MAX_BATCH * (size_t)s->max_cols);
    s->d = malloc((size_t)QP_MAX_BATCH * (size_t)(s->max_cols / 32) * sizeof(float));
    s->s = malloc((size_t)QP_MAX_BATCH * (size_t)(s->max_cols / 16) * sizeof(int16_t));
    s->o = malloc((size_t)QP_MAX_BATCH * (size_t)(s->max_cols / 32) * sizeof(int32_t));
    if (!s->q || !s->d || !s->s || !s->o) {
        qk_pack_free(s);
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return OB_OK;
}

void qk_pack_free(qk_pack_state *s) {
    if (!s) return;
    free(s->arena);
    free(s->mats);
    free(s->q);
    free(s->d);
    free(s->s);
    free(s->o);
    free(s);
}

typedef struct qp_job {
    qk_quant_fn quant;
    const qp_mat *m;
    const float *x;
    qk_act a;
    int32_t *o;
    float *y;
    int n;
} qp_job;

static void qp_quant_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const qp_job *j = arg;
    const int cols = j->a.cols;
    for (int t = begin; t < end; t++)
        j->quant(j->x + (size_t)t * cols, cols, j->a.blk, (int8_t *)j->a.q + (size_t)t * cols,
                 (float *)j->a.d + (size_t)t * (cols / j->a.blk), (int16_t *)j->a.s + (size_t)t * (cols / 16));
    for (int t = begin; t < end; t++)
        qk_pack_offsets(j->a.s + (size_t)t * (cols / 16), cols / 32, j->o + (size_t)t * (cols / 32));
}

static void qp_gemm_run(void *arg, int begin, int end, int ith) {
    (void)ith;
    const qp_job *j = arg;
    j->m->k->pack(j->m->data, j->m->nb, begin, end, j->m->rows, &j->a, j->o, j->n, j->y, (size_t)j->m->rows);
}

int qk_pack_matmul(qk_pack_state *s, const ob_weight *w, const float *x, float *y, int n) {
#if defined(__wasm__)
    return 0; /* qk_pack_init repacked nothing */
#endif
    if (!s || w->id < 0 || w->id >= s->n_weights || !s->mats[w->id].data) return 0;
    const qp_mat *pm = &s->mats[w->id];
    for (int t0 = 0; t0 < n; t0 += QP_MAX_BATCH) {
        const int nt = n - t0 < QP_MAX_BATCH ? n - t0 : QP_MAX_BATCH;
        qp_job j = {s->quant, pm, x + (size_t)t0 * pm->cols, {s->q, s->d, s->s, pm->cols, pm->k->act_blk}, s->o, y + (size_t)t0 * pm->rows, nt};
        tp_for(s->pool, nt, 1, qp_quant_run, &j);
        /* About 8 claims per thread (16 for one token) to even out threads slowed by other work. */
        tp_for(s->pool, pm->groups, qp_chunk(s, pm->groups, nt == 1 ? 16 : 8), qp_gemm_run, &j);
    }
    return 1;
}
