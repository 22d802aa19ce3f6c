/* backend_webgpu.c — the WebGPU backend: C plans every GPU buffer, pipeline and dispatch; JS runs them.
 *
 * Compiled for WebAssembly only. The C side owns the model and the decisions: which GPU buffers
 * hold which bytes of the file, which kernel (a .wgsl file of src/webgpu/kernels) runs with which parameters, in
 * which order. It never touches WebGPU itself: each call below writes a compact command list of
 * 32-bit words into wasm memory (the wg_op list), and web/gpu.mjs replays it — creating objects
 * once, and for a forward step recording every dispatch into one compute pass, submitting, and
 * reading back only what was asked for (the sampled token id, or logits). WebGPU readback is
 * asynchronous, so this is an asynchronous backend of the table (backend.h): no `forward`, but
 * `step_begin` (wg_step) and `set_sampling`; the core's contexts and its generation loop (gen.c)
 * drive it, and the host hands each step's reads back through ob_step_end (no ASYNCIFY). GPU
 * objects are named by numbers that C hands out.
 *
 * Loading: ob_model_load_partial parses the header from a prefix of the file; wg_model_init plans
 * one GPU buffer per layer (all seven matrices in their file layout, Q/K/V and gate/up back to
 * back so that each group is one matrix to the kernels), the token embedding (and an untied output
 * matrix) split by rows into parts that each fit one storage binding, and one buffer of f32 norm
 * vectors. ob_wgpu_uploads lists the file ranges the host streams into those buffers (and the
 * norm vectors it copies into wasm memory); the wasm heap never holds the weights.
 *
 * Per token, decode runs 5 dispatches a layer (fused RMSNorm+QKV+QK-norm+RoPE+cache write;
 * attention; Wo+residual; fused RMSNorm+gate/up+SwiGLU; down+residual), plus embedding, output
 * head and sampler: 5 * n_layer + 3 for a model whose embedding fits one binding. Prompts run
 * in chunks through tiled matrix-matrix kernels. That fused plan is Qwen3's layer on Q1_0 weights;
 * every other family and weight type runs the generic plan ("the generic plan" below): forward.c's
 * steps one dispatch each, with products over weights of any type (dq.wgsl), 10 * n_layer + 3
 * dispatches a token for Llama / Qwen2 with q, k, v of one type (12 * n_layer + 3 otherwise).
 */
#ifdef __EMSCRIPTEN__

#include <emscripten.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "forward.h"
#include "model.h"
#include "quant.h"
#include "util.h"

#define WG_API EMSCRIPTEN_KEEPALIVE

/* ---- the command list (read by web/gpu.mjs; keep the numbers in step) ----------------------- */

enum wg_op {
    WG_BUFFER = 1,    /* id, size_lo, size_hi, usage */
    WG_PIPELINE = 2,  /* id, kernel_ptr, kernel_len, n, n x {name_ptr, name_len, value} */
    WG_BINDGROUP = 3, /* id, pipeline, n, n x {binding, buffer, offset, size (0 = whole)} */
    WG_WRITE = 4,     /* buffer, offset, ptr, len: queue.writeBuffer from wasm memory */
    WG_DISPATCH = 5,  /* pipeline, bindgroup, x, y, z */
    WG_READ = 6,      /* buffer, offset, size: copied back to the host after the pass */
    WG_FREE = 7       /* first, count: destroy / forget objects first .. first + count - 1 */
};
enum wg_usage { WG_STORAGE = 1, WG_UNIFORM = 2, WG_COPY_SRC = 4 };

/* matmul.wgsl's tile: 256 invocations as (256 / tt) rows x tt tokens, each 4 rows x 8 tokens,
 * with tt chosen by the chunk's size. The kernel applies the same rule. */
static uint32_t mm_tok_threads(uint32_t n) { return n <= 8 ? 1 : n <= 32 ? 4 : 16; }

static void gpu_dispatch(uint32_t pipeline, uint32_t bg, uint32_t x, uint32_t y);

static void mm_dispatch(uint32_t pipeline, uint32_t bg, uint32_t rows, uint32_t n) {
    uint32_t tt = mm_tok_threads(n), bm = 256 / tt * 4, bn = tt * 8;
    gpu_dispatch(pipeline, bg, (rows + bm - 1) / bm, (n + bn - 1) / bn);
}

/* Flags of a step (onebit.h's OB_STEP_*). */
enum {
    WG_STEP_FEED = OB_STEP_FEED,     /* the input token is the one the previous step sampled on the GPU */
    WG_STEP_LOGITS = OB_STEP_LOGITS, /* read back the logits of the last position */
    WG_STEP_ALL = OB_STEP_ALL,       /* ... of every position (chunks are smaller then) */
    WG_STEP_SAMPLE = OB_STEP_SAMPLE  /* sample on the GPU and read back the token id */
};

static struct {
    uint32_t *w; /* [cap] */
    size_t n, cap;
    int oom;
} wg_cmd;

static uint32_t wg_next_id = 1;

/* Device limits and features, from the host (ob_wgpu_attach). */
static struct {
    int attached;
    uint64_t max_binding;   /* maxStorageBufferBindingSize */
    uint64_t max_buffer;    /* maxBufferSize */
    uint32_t max_groups;    /* maxComputeWorkgroupsPerDimension */
    uint32_t max_wg_mem;    /* maxComputeWorkgroupStorageSize */
    uint32_t sg_size;       /* subgroup size the kernels may rely on; 0: no subgroups */
    int sgmat;              /* int8 16x16x32 subgroup matrices on 32-wide subgroups (mm_sg.wgsl) */
    int cpu;                /* a CPU implementation (SwiftShader): each workgroup has a high fixed cost */
    int dp_cpu;             /* ... and mm_dp runs there all the same (tests; cpu == 2 in ob_wgpu_attach) */
    int sgmat_emu;          /* ... or the generic plan's dq_mms, on emulated subgroup matrices (tests; cpu == 3) */
    uint64_t weight_cap;    /* tests: a smaller cap on a layer's weight buffers (0: none), see ob_wgpu_cap_weights */
} wg_lim;

static void cmd_put(const uint32_t *w, size_t n) {
    if (wg_cmd.oom) return;
    if (wg_cmd.n + n > wg_cmd.cap) {
        size_t cap = (wg_cmd.n + n) * 2 + 256;
        uint32_t *nw = realloc(wg_cmd.w, cap * sizeof *nw);
        if (!nw) {
            wg_cmd.oom = 1;
            return;
        }
        wg_cmd.w = nw;
        wg_cmd.cap = cap;
    }
    memcpy(wg_cmd.w + wg_cmd.n, w, n * sizeof *w);
    wg_cmd.n += n;
}

static void cmd_reset(void) {
    wg_cmd.n = 0;
    wg_cmd.oom = 0;
}

static ob_status cmd_status(void) {
    return wg_cmd.oom ? ob_fail(OB_ERR_NOMEM, "out of memory for the GPU command list") : OB_OK;
}

static uint32_t ptr32(const void *p) { return (uint32_t)(uintptr_t)p; }

static uint64_t round4(uint64_t n) { return (n + 3) & ~(uint64_t)3; }
static uint64_t round256(uint64_t n) { return (n + 255) & ~(uint64_t)255; }

static uint32_t gpu_buffer(uint64_t size, uint32_t usage) {
    uint32_t id = wg_next_id++;
    size = round4(size ? size : 4);
    uint32_t w[5] = {WG_BUFFER, id, (uint32_t)size, (uint32_t)(size >> 32), usage};
    cmd_put(w, 5);
    return id;
}

static void gpu_free_range(uint32_t first, uint32_t end) {
    if (!first || end <= first) return;
    uint32_t w[3] = {WG_FREE, first, end - first};
    cmd_put(w, 3);
}

/* Override constants of a pipeline: names are string literals (static in wasm memory). */
typedef struct wg_const {
    const char *name;
    uint32_t value;
} wg_const;

/* Every pipeline also gets TPR: the invocations per matrix row. The subgroup variant of the
 * reductions (src/webgpu/kernels/red_sg.wgsl) needs it to be the subgroup size; the workgroup-memory
 * variant uses 8 (fewer barrier rounds per row than a wider split). */
static uint32_t gpu_pipeline(const char *kernel, int n, const wg_const *c) {
    static const char tpr_name[] = "TPR";
    uint32_t id = wg_next_id++;
    uint32_t w[5] = {WG_PIPELINE, id, ptr32(kernel), (uint32_t)strlen(kernel), (uint32_t)n + 1};
    cmd_put(w, 5);
    for (int i = 0; i < n; i++) {
        uint32_t e[3] = {ptr32(c[i].name), (uint32_t)strlen(c[i].name), c[i].value};
        cmd_put(e, 3);
    }
    uint32_t t[3] = {ptr32(tpr_name), 3, wg_lim.sg_size ? wg_lim.sg_size : 8};
    cmd_put(t, 3);
    return id;
}

typedef struct wg_bind {
    uint32_t binding, buffer, offset, size;
} wg_bind;

static uint32_t gpu_bindgroup(uint32_t pipeline, int n, const wg_bind *b) {
    uint32_t id = wg_next_id++;
    uint32_t w[4] = {WG_BINDGROUP, id, pipeline, (uint32_t)n};
    cmd_put(w, 4);
    for (int i = 0; i < n; i++) cmd_put(&b[i].binding, 4);
    return id;
}

static void gpu_write(uint32_t buffer, uint32_t offset, const void *p, uint32_t len) {
    uint32_t w[5] = {WG_WRITE, buffer, offset, ptr32(p), len};
    cmd_put(w, 5);
}

static void gpu_dispatch(uint32_t pipeline, uint32_t bg, uint32_t x, uint32_t y) {
    uint32_t w[6] = {WG_DISPATCH, pipeline, bg, x, y, 1};
    cmd_put(w, 6);
}

static void gpu_read(uint32_t buffer, uint32_t offset, uint32_t size) {
    uint32_t w[4] = {WG_READ, buffer, offset, size};
    cmd_put(w, 4);
}

/* ---- parameters (mirrors of the WGSL structs in src/webgpu/kernels/common.wgsl) -------------------- */

typedef struct wg_params {
    uint32_t rows, cols, row_bytes, w_off;   /* matrix W[rows][cols] of Q1_0 rows at byte w_off */
    uint32_t row0, in_off, in_stride, out_off; /* first row of a part; input offset/stride (floats) */
    uint32_t out_stride, norm_off, norm2_off, flags; /* output row stride; norm vectors (floats) */
    uint32_t n_head, n_head_kv, head_dim, kv_dim;
    uint32_t q_off, q_stride, n_ctx, v_off;  /* q in the qkv buffer; V's first word in a kv buffer */
    float eps, scale;
    uint32_t n_ff, pad;
} wg_params; /* 96 bytes */

typedef struct wg_step {
    uint32_t n, pos, last, kv_len; /* tokens of the step; first position; n - 1; pos + n */
    uint32_t splits, pad[3];       /* workgroups per head of the decode attention */
} wg_step;

typedef struct wg_samp {
    float temp;
    uint32_t mode;   /* 0 greedy, 1 top-k (then temperature, top-p, min-p, draw) */
    uint32_t top_k;
    float top_p, min_p, rep, pres, freq;
    int32_t last_n;  /* penalty window; 0 off, -1 whole history */
    uint32_t pen_on;
    float u;         /* the uniform draw of this token */
    uint32_t pad;
} wg_samp;           /* 48 bytes */

#define WG_SLOT 256  /* uniform binding offsets must be multiples of 256 */
#define ATT_TILE 64    /* keys per tile of attn_dec.wgsl */
#define ATT_SPLITS 32  /* most workgroups per head of attn_dec.wgsl */
#define HEAD_ROWS_MAX 512 /* the most rows a workgroup of the output head takes (ctx head_rows) */
/* L2 prefetch in decode (fused plan): the [q|k|v] product (WG_PF_QKV) gets that many workgroups
 * more, which only read the layer's later products' weights (Wo, gate/up and down), one word a
 * 32-byte sector, so that those products find their weights
 * in L2 (the decode kernels wait on memory latency, not bandwidth). 0: off. Only where the weights
 * read lie in the same buffer (segment) as the product's own. */
#ifndef WG_PF_QKV
#define WG_PF_QKV 128
#endif
/* ... and gate/up (WG_PF_GU) for the next layer's [q|k|v] weights (the last layer's: the first
 * layer's, for the next token). */
#ifndef WG_PF_GU
#define WG_PF_GU 64
#endif
/* ... and the decode attention (WG_PF_ATT: workgroups a split, beside the heads) for Wo, gate/up
 * and down: it runs few workgroups (n_head x splits) and reads no weights; off: on the H100 it
 * gained less than QKV + GU, 734.4 against 747.4 tok/s, BENCHMARKS.md). */
#ifndef WG_PF_ATT
#define WG_PF_ATT 0
#endif
#ifndef WG_PF_CPU
#define WG_PF_CPU 0 /* 1: prefetch on CPU adapters too (SwiftShader: for checking the plan, not for speed) */
#endif
#ifndef WG_HEAD_ROWS
#define WG_HEAD_ROWS 128 /* rows a workgroup of the output head takes on a GPU (a CPU adapter: HEAD_ROWS_MAX) */
#endif
#define MMS_TR 64       /* rows of an mm_sg.wgsl tile (its const TR) */
#define MMS_TT 32       /* tokens of an mm_sg.wgsl tile (its const TT) */
#define MMS_WG_MEM 19072 /* workgroup memory of mm_sg.wgsl: 4 (SMW + 2 TR + TT) bytes */
#define MMG_TR 64       /* rows of a dq_mms.wgsl tile (its const TR): the generic plan's prompt products */
#define MMG_TT 64       /* tokens of a dq_mms.wgsl tile (its const TT) */
#define MMG_WG_MEM 37632 /* workgroup memory of dq_mms.wgsl: 4 (SMW + 2 TR + TT) bytes */
#define MMD_TR 64       /* rows of an mm_dp.wgsl tile (its const TR) */
#define MMD_TT 64       /* tokens of an mm_dp.wgsl tile (its const TT) */
#define MMD_WG_MEM 13056 /* workgroup memory of mm_dp.wgsl: 16 * 768 + 4 (2 TR + TT) bytes */

/* ---- per-model state ------------------------------------------------------------------------ */

/* The generic plan's matrices and vectors of a layer (forward.c's order). */
enum { GM_Q, GM_K, GM_V, GM_QKV, GM_O, GM_GATE, GM_UP, GM_DOWN, GM_COUNT };
enum {
    GV_ATTN_NORM, GV_ATTN_NORM_B, GV_BQ, GV_BK, GV_BV, GV_BQKV, GV_QN, GV_KN, GV_ASUB, GV_BO,
    GV_FFN_NORM, GV_FFN_NORM_B, GV_BGATE, GV_BUP, GV_FSUB, GV_BDOWN,
    GV_SQ, GV_SK, GV_SV, GV_SO, GV_SGATE, GV_SUP, GV_SDOWN, /* BitNet's per-tensor scales [1] */
    GV_COUNT
};
#define GV_NONE 0xffffffffu

static const ob_weight *gen_mat(const ob_layer *L, int i) {
    const ob_weight *w[GM_COUNT] = {L->wq, L->wk, L->wv, L->wqkv, L->wo, L->w_gate, L->w_up, L->w_down};
    return w[i];
}

/* Vector i of a layer and its length (NULL: absent). */
static const float *gen_vec(const ob_layer *L, const ob_hparams *hp, int i, int *n) {
    const int E = hp->n_embd, QD = hp->q_dim, KD = hp->kv_dim, F = hp->n_ff, HD = hp->head_dim;
    const struct { const float *v; int n; } t[GV_COUNT] = {
        {L->attn_norm, E}, {L->attn_norm_b, E}, {L->bq, QD},        {L->bk, KD},        {L->bv, KD},
        {L->bqkv, QD + 2 * KD}, {L->q_norm, HD}, {L->k_norm, HD}, {L->attn_sub_norm, QD}, {L->bo, E},
        {L->ffn_norm, E},  {L->ffn_norm_b, E}, {L->b_gate, F},    {L->b_up, F},       {L->ffn_sub_norm, F},
        {L->b_down, E},
        {L->wq_s, 1},      {L->wk_s, 1},      {L->wv_s, 1},       {L->wo_s, 1},       {L->w_gate_s, 1},
        {L->w_up_s, 1},    {L->w_down_s, 1},
    };
    *n = t[i].n;
    return t[i].v;
}

/* Weight types the generic plan's kernels decode (dq.wgsl). */
static int gen_type_ok(uint32_t t) {
    switch (t) {
    case GGML_F32: case GGML_F16: case GGML_BF16: case GGML_Q8_0: case GGML_Q4_0: case GGML_Q4_1: case GGML_Q5_0:
    case GGML_Q5_1: case GGML_Q2_K: case GGML_Q3_K: case GGML_Q4_K: case GGML_Q5_K: case GGML_Q6_K: case GGML_Q1_0: case GGML_Q2_0:
    case GGML_TQ1_0: case GGML_TQ2_0:
        return 1;
    default:
        return 0;
    }
}

#define WG_SEGMAX GM_COUNT
/* The fused plan's groups of a layer: [q|k|v], o, [gate|up], down. */
enum { FG_QKV, FG_O, FG_GU, FG_DOWN, FG_COUNT };

typedef struct wg_part {
    uint32_t buf;
    int row0, rows;
} wg_part;

typedef struct wg_model {
    const struct ob_model *m;
    /* A layer's weights in one buffer, or in up to WG_SEGMAX ("segments") where one would
     * exceed a storage binding (maxStorageBufferBindingSize / maxBufferSize): each matrix (each
     * group of the fused plan) lies whole in one segment. */
    uint32_t *layer_buf;          /* [n_layer][WG_SEGMAX] the segments' buffers (0: none) */
    uint64_t *seg_bytes;          /* [n_layer][WG_SEGMAX] their sizes */
    uint8_t (*gms)[GM_COUNT];     /* [n_layer] segment of each matrix (fused plan: of each group, FG_*) */
    uint64_t layer_bytes;         /* a layer's weight bytes, all segments together */
    uint32_t off_qkv, off_o, off_gu, off_down; /* byte offsets of the groups in their segments */
    uint32_t rb_e, rb_q, rb_f;    /* row bytes of matrices with n_embd, q_dim, n_ff columns */
    wg_part *emb, *out;           /* [n_emb], [n_out]: row parts (out == emb when tied) */
    int n_emb, n_out;
    uint32_t norm_buf;
    uint32_t norm_stride;         /* floats per layer in the norm buffer */
    uint32_t norm_out;            /* offset of output_norm */
    float *norm_host;             /* [norm_floats] staging for the upload */
    uint32_t norm_floats;
    uint32_t *plan;               /* [n_plan][6] upload ranges */
    int n_plan, cap_plan;
    int ready;
    uint32_t id_first, id_end;    /* the GPU objects of the model: ids [id_first, id_end) */
    /* The generic plan (any family and weight type; see "the generic plan" below). */
    int generic;
    uint32_t (*gmo)[GM_COUNT];    /* [n_layer] byte offset of each matrix in its segment */
    uint32_t (*gvo)[GV_COUNT];    /* [n_layer] float offset of each vector in norm_buf (GV_NONE: absent) */
    uint32_t gv_out[3];           /* output_norm, output_norm_b, output_b (GV_NONE: absent) */
} wg_model;

/* Norm vectors in the norm buffer: per layer attn (E), q (HD), k (HD), ffn (E), each padded to a
 * multiple of 4 floats so that kernels can read them as vec4. */
static uint32_t pad4u(uint32_t n) { return (n + 3u) & ~3u; }
static uint32_t norm_attn(const wg_model *wm, int l) { return (uint32_t)l * wm->norm_stride; }
static uint32_t norm_q(const wg_model *wm, int l) { return norm_attn(wm, l) + pad4u((uint32_t)wm->m->hp.n_embd); }
static uint32_t norm_k(const wg_model *wm, int l) { return norm_q(wm, l) + pad4u((uint32_t)wm->m->hp.head_dim); }
static uint32_t norm_ffn(const wg_model *wm, int l) { return norm_k(wm, l) + pad4u((uint32_t)wm->m->hp.head_dim); }

static int plan_add(wg_model *wm, uint32_t kind, uint64_t file_off, uint64_t len, uint32_t dst, uint32_t dst_off) {
    if (wm->n_plan == wm->cap_plan) {
        int cap = wm->cap_plan * 2 + 64;
        uint32_t *np = realloc(wm->plan, (size_t)cap * 6 * sizeof *np);
        if (!np) return -1;
        wm->plan = np;
        wm->cap_plan = cap;
    }
    uint32_t *e = wm->plan + (size_t)wm->n_plan++ * 6;
    e[0] = kind; /* 0: GPU buffer dst at byte dst_off; 1: wasm memory at dst */
    e[1] = (uint32_t)file_off;
    e[2] = (uint32_t)(file_off >> 32);
    e[3] = (uint32_t)len;
    e[4] = dst;
    e[5] = dst_off;
    return 0;
}

/* The largest buffer one binding may cover. Kernels address bytes with 32-bit offsets: 2 GiB at
 * most keeps every offset and offset + row far from wrapping. */
static uint64_t binding_cap(void) {
    uint64_t cap = wg_lim.max_binding < wg_lim.max_buffer ? wg_lim.max_binding : wg_lim.max_buffer;
    return cap < (1ull << 31) ? cap : (1ull << 31);
}

static const char *const LIMIT_NAMES = "maxStorageBufferBindingSize / maxBufferSize";

/* A weight buffer's size for n bytes of weights: a whole number of 16-byte words and one more
 * (kernels that read weights as array<vec4<u32>> see only whole words, and dq_mvw.wgsl's shifted
 * loads read the word after their bytes), at most WG_TAIL bytes more than n. */
#define WG_TAIL 32u
static uint64_t wt_size(uint64_t n) { return ((n + 15) & ~(uint64_t)15) + 16; }

/* Packs a layer's n matrices of sz[i] bytes (0: absent), in order, each at a multiple of 256
 * bytes, into as few segments of at most binding_cap() bytes as the order allows: seg[i] and
 * off[i] say where matrix i lies, seg_bytes[s] how large segment s is. */
static ob_status pack_layer(const uint64_t *sz, int n, uint8_t *seg, uint32_t *off, uint64_t *seg_bytes, int *n_seg) {
    const uint64_t cap = wg_lim.weight_cap && wg_lim.weight_cap < binding_cap() ? wg_lim.weight_cap : binding_cap();
    int s = 0;
    uint64_t pos = 0;
    memset(seg_bytes, 0, WG_SEGMAX * sizeof *seg_bytes);
    for (int i = 0; i < n; i++) {
        seg[i] = 0;
        off[i] = 0;
        if (!sz[i]) continue;
        if (sz[i] + WG_TAIL > cap)
            return ob_fail(OB_ERR_UNSUPPORTED,
                           "a weight matrix of %llu bytes needs a GPU storage binding of %llu bytes; this device allows %llu "
                           "(%s)", (unsigned long long)sz[i], (unsigned long long)(sz[i] + WG_TAIL), (unsigned long long)cap,
                           LIMIT_NAMES);
        uint64_t at = round256(pos);
        if (pos > 0 && at + sz[i] + WG_TAIL > cap) {
            if (++s >= WG_SEGMAX) return ob_fail(OB_ERR_UNSUPPORTED, "a layer needs more than %d GPU buffers", WG_SEGMAX);
            at = 0;
        }
        seg[i] = (uint8_t)s;
        off[i] = (uint32_t)at;
        pos = at + sz[i];
        seg_bytes[s] = wt_size(pos);
    }
    *n_seg = s + 1;
    return OB_OK;
}

/* The buffer of segment s of layer l. */
static uint32_t seg_buf(const struct wg_model *wm, int l, int s) { return wm->layer_buf[(size_t)l * WG_SEGMAX + (size_t)s]; }

/* Splits a [rows][cols] Q1_0 matrix into parts of whole rows, each fitting one binding. */
static ob_status plan_parts(wg_model *wm, const ob_weight *w, wg_part **out, int *n_out) {
    uint64_t per = (binding_cap() - WG_TAIL) / w->row_bytes;
    if (per > (uint64_t)w->rows) per = (uint64_t)w->rows;
    if (per == 0)
        return ob_fail(OB_ERR_UNSUPPORTED, "a row of %zu bytes needs a GPU storage binding that large; this device allows %llu (%s)",
                       w->row_bytes, (unsigned long long)binding_cap(), LIMIT_NAMES);
    /* Parts start at multiples of HEAD_ROWS_MAX rows: the output head's per-workgroup results are
     * indexed by row0 / head_rows. */
    if (per < (uint64_t)w->rows) {
        if (per < HEAD_ROWS_MAX)
            return ob_fail(OB_ERR_UNSUPPORTED,
                           "the GPU's storage binding size (%llu bytes, %s) holds only %llu rows of %zu bytes (%d needed)",
                           (unsigned long long)binding_cap(), LIMIT_NAMES, (unsigned long long)per, w->row_bytes, HEAD_ROWS_MAX);
        per -= per % HEAD_ROWS_MAX;
    }
    int n = (int)(((uint64_t)w->rows + per - 1) / per);
    wg_part *p = calloc((size_t)n, sizeof *p);
    if (!p) return ob_fail(OB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        p[i].row0 = (int)((uint64_t)i * per);
        p[i].rows = (int)((uint64_t)(i + 1) * per > (uint64_t)w->rows ? (uint64_t)w->rows - (uint64_t)p[i].row0 : per);
        uint64_t bytes = (uint64_t)p[i].rows * w->row_bytes;
        p[i].buf = 0; /* created by ob_wgpu_model_setup */
        if (plan_add(wm, 0, w->offset + (uint64_t)p[i].row0 * w->row_bytes, bytes, 0, 0)) {
            free(p);
            return ob_fail(OB_ERR_NOMEM, "out of memory");
        }
        /* The buffer id is filled in at setup: remember which plan entry belongs to this part. */
        p[i].buf = (uint32_t)(wm->n_plan - 1) | 0x80000000u;
    }
    *out = p;
    *n_out = n;
    return OB_OK;
}

static void wg_model_free(void *mstate);
static ob_status plan_heads(wg_model *wm);

/* The per-layer segment tables of either plan. */
static ob_status alloc_layers(wg_model *wm) {
    size_t nl = (size_t)wm->m->hp.n_layer;
    if (!(wm->layer_buf = calloc(nl * WG_SEGMAX, sizeof *wm->layer_buf)) ||
        !(wm->seg_bytes = calloc(nl * WG_SEGMAX, sizeof *wm->seg_bytes)) || !(wm->gms = calloc(nl, sizeof *wm->gms)))
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    return OB_OK;
}
static ob_status gen_model_plan(wg_model *wm);

/* The fused plan (Qwen3's layer, Q1_0 weights, 5 dispatches a layer) applies: the family's flags
 * are exactly Qwen3's, there are no biases, every matrix is Q1_0 and the decode products'
 * staging fits the device's workgroup memory. Otherwise the generic plan runs. */
static int fused_plan_applies(const struct ob_model *m) {
    const ob_hparams *hp = &m->hp;
    if (hp->norm != OB_NORM_RMS || hp->act != OB_ACT_SILU || !hp->ffn_gated || hp->parallel || !hp->qk_norm ||
        hp->rope != OB_ROPE_NEOX || hp->n_rot != hp->head_dim || hp->sub_norm || hp->embd_scale != 1.0f ||
        hp->rope_scale != 1.0f || m->rope_freqs || m->output_b || m->output_norm_b)
        return 0;
    if (hp->attn_scale != 1.0f / sqrtf((float)hp->head_dim)) return 0;
    for (int l = 0; l < hp->n_layer; l++) {
        const ob_layer *L = &m->layers[l];
        if (L->wqkv || L->bq || L->bk || L->bv || L->bo || L->b_gate || L->b_up || L->b_down || L->attn_sub_norm ||
            L->ffn_sub_norm || L->wq_s || L->wk_s || L->wv_s || L->wo_s || L->w_gate_s || L->w_up_s || L->w_down_s)
            return 0;
    }
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        if (w->type != GGML_Q1_0 || w->cols % QK1_0 != 0) return 0;
    }
    /* The decode products stage their input quantised in workgroup memory (qx.wgsl: 2.25 bytes
     * an element) beside reduction buffers (at most about 8 KiB). */
    uint64_t widest = (uint64_t)hp->n_embd;
    if ((uint64_t)hp->n_ff > widest) widest = (uint64_t)hp->n_ff;
    if ((uint64_t)hp->q_dim > widest) widest = (uint64_t)hp->q_dim;
    return widest * 9 / 4 + 8192 + (uint64_t)hp->n_head * ATT_SPLITS * 4 <= wg_lim.max_wg_mem;
}

static ob_status wg_model_init(const struct ob_model *m, int n_threads, void **mstate) {
    (void)n_threads;
    if (!wg_lim.attached) return ob_fail(OB_ERR_UNSUPPORTED, "no WebGPU device is attached");
    if (!m->partial)
        return ob_fail(OB_ERR_UNSUPPORTED, "the webgpu backend loads models through the streaming loader (web/engine.mjs)");
    const ob_hparams *hp = &m->hp;
    /* The fused plan takes heads of 32, 64, 128 or 256; the generic plan's attention also takes
     * any multiple of 8 up to 256 (padded to the next of those: Phi-2's 80). */
    const int hd_pow2 = hp->head_dim >= 32 && 256 % hp->head_dim == 0;
    if (!hd_pow2 && (hp->head_dim < 8 || hp->head_dim > 256 || hp->head_dim % 8 || fused_plan_applies(m)))
        return ob_fail(OB_ERR_UNSUPPORTED, "head dimension %d is not supported on the GPU (a multiple of 8 up to 256)",
                       hp->head_dim);
    wg_model *wm = calloc(1, sizeof *wm);
    if (!wm) return ob_fail(OB_ERR_NOMEM, "out of memory");
    wm->m = m;
    ob_status st = OB_OK;
    if (!fused_plan_applies(m)) {
        wm->generic = 1;
        if ((st = gen_model_plan(wm))) goto fail;
        if ((st = plan_heads(wm))) goto fail;
        *mstate = wm;
        return OB_OK;
    }
    const uint64_t E = (uint64_t)hp->n_embd, QD = (uint64_t)hp->q_dim, KD = (uint64_t)hp->kv_dim, F = (uint64_t)hp->n_ff;
    wm->rb_e = (uint32_t)(E / QK1_0 * sizeof(block_q1_0));
    wm->rb_q = (uint32_t)(QD / QK1_0 * sizeof(block_q1_0));
    wm->rb_f = (uint32_t)(F / QK1_0 * sizeof(block_q1_0));
    /* Layer buffer: [q|k|v] [o] [gate|up] [down]; groups start at multiples of 256 bytes and the
     * matrices inside a group follow each other, so each group is one matrix to the kernels. The
     * host writes whole matrices at their offsets: those must be multiples of 4. */
    uint64_t qkv = (QD + 2 * KD) * wm->rb_e, o = E * wm->rb_q, gu = 2 * F * wm->rb_e, down = E * wm->rb_f;
    if ((QD * wm->rb_e) % 4 || (KD * wm->rb_e) % 4 || (F * wm->rb_e) % 4) {
        st = ob_fail(OB_ERR_UNSUPPORTED, "matrix sizes not a multiple of 4 bytes are not supported on the GPU");
        goto fail;
    }
    /* Every layer has the same layout (the groups' offsets are pipeline constants). */
    const uint64_t gsz[FG_COUNT] = {qkv, o, gu, down};
    uint8_t gseg[FG_COUNT];
    uint32_t goff[FG_COUNT];
    uint64_t sb[WG_SEGMAX];
    int nseg;
    if ((st = pack_layer(gsz, FG_COUNT, gseg, goff, sb, &nseg))) goto fail;
    wm->off_qkv = goff[FG_QKV];
    wm->off_o = goff[FG_O];
    wm->off_gu = goff[FG_GU];
    wm->off_down = goff[FG_DOWN];
    if ((st = alloc_layers(wm))) goto fail;
    wm->layer_bytes = 0;
    for (int s = 0; s < nseg; s++) wm->layer_bytes += sb[s];
    for (int l = 0; l < hp->n_layer; l++) {
        memcpy(wm->seg_bytes + (size_t)l * WG_SEGMAX, sb, sizeof sb);
        memcpy(wm->gms[l], gseg, sizeof gseg);
    }
    /* Plan entries of layer weights name the segment (dst = layer * WG_SEGMAX + segment |
     * 0x40000000) until setup has buffer ids. */
    for (int l = 0; l < hp->n_layer; l++) {
        const ob_layer *L = &m->layers[l];
        const struct { const ob_weight *w; uint64_t off; int g; } mats[7] = {
            {L->wq, wm->off_qkv, FG_QKV},
            {L->wk, wm->off_qkv + QD * wm->rb_e, FG_QKV},
            {L->wv, wm->off_qkv + (QD + KD) * wm->rb_e, FG_QKV},
            {L->wo, wm->off_o, FG_O},
            {L->w_gate, wm->off_gu, FG_GU},
            {L->w_up, wm->off_gu + F * wm->rb_e, FG_GU},
            {L->w_down, wm->off_down, FG_DOWN},
        };
        for (int i = 0; i < 7; i++)
            if (plan_add(wm, 0, mats[i].w->offset, (uint64_t)mats[i].w->rows * mats[i].w->row_bytes,
                         0x40000000u | (uint32_t)(l * WG_SEGMAX + gseg[mats[i].g]), (uint32_t)mats[i].off)) {
                st = ob_fail(OB_ERR_NOMEM, "out of memory");
                goto fail;
            }
    }
    if ((st = plan_heads(wm))) goto fail;
    wm->norm_stride = 2 * pad4u((uint32_t)E) + 2 * pad4u((uint32_t)hp->head_dim);
    wm->norm_out = (uint32_t)hp->n_layer * wm->norm_stride;
    wm->norm_floats = wm->norm_out + pad4u((uint32_t)E);
    *mstate = wm;
    return OB_OK;
fail:
    wg_model_free(wm);
    return st;
}

/* The token embedding and output matrix split into binding-sized parts, and the norm vectors
 * beyond the file's prefix (the host copies their bytes into wasm memory): both plans. */
static ob_status plan_heads(wg_model *wm) {
    const struct ob_model *m = wm->m;
    ob_status st;
    if ((st = plan_parts(wm, m->tok_embd, &wm->emb, &wm->n_emb))) return st;
    if (m->tied) {
        wm->out = wm->emb;
        wm->n_out = wm->n_emb;
    } else if ((st = plan_parts(wm, m->output, &wm->out, &wm->n_out))) {
        return st;
    }
    for (int i = 0; i < wm->n_out; i++)
        if ((uint64_t)wm->out[i].rows / 16 + 1 > wg_lim.max_groups)
            return ob_fail(OB_ERR_UNSUPPORTED, "the output matrix has too many rows for one dispatch");
    for (int i = 0; i < m->n_pending; i++)
        if (plan_add(wm, 1, m->pending[i].t->offset, m->pending[i].t->nbytes, ptr32(m->pending[i].raw), 0))
            return ob_fail(OB_ERR_NOMEM, "out of memory");
    return OB_OK;
}

/* The generic plan's model: one buffer per layer with every matrix at a multiple of 256 bytes
 * (any type, in its file layout; the types may differ between matrices and layers), and every
 * norm, bias and sub-norm vector in norm_buf as f32 at a multiple of 4 floats. */
static ob_status gen_model_plan(wg_model *wm) {
    const struct ob_model *m = wm->m;
    const ob_hparams *hp = &m->hp;
    const int nl = hp->n_layer;
    ob_status st;
    if ((st = alloc_layers(wm))) return st;
    if (!(wm->gmo = calloc((size_t)nl, sizeof *wm->gmo)) || !(wm->gvo = calloc((size_t)nl, sizeof *wm->gvo)))
        return ob_fail(OB_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_weights; i++) {
        const ob_weight *w = &m->weights[i];
        if (!gen_type_ok(w->type) || w->cols % 4 != 0)
            return ob_fail(OB_ERR_UNSUPPORTED, "the webgpu backend does not run weight type %s with %d columns (weight %d); "
                           "the CPU backends do", ob_type_find(w->type) ? ob_type_find(w->type)->name : "?", w->cols, i);
    }
    uint32_t vo = 0;
    for (int l = 0; l < nl; l++) {
        const ob_layer *L = &m->layers[l];
        uint64_t sz[GM_COUNT];
        int nseg;
        for (int i = 0; i < GM_COUNT; i++) {
            const ob_weight *w = gen_mat(L, i);
            sz[i] = w ? (uint64_t)w->rows * w->row_bytes : 0;
        }
        if ((st = pack_layer(sz, GM_COUNT, wm->gms[l], wm->gmo[l], wm->seg_bytes + (size_t)l * WG_SEGMAX, &nseg))) return st;
        for (int i = 0; i < GM_COUNT; i++) {
            const ob_weight *w = gen_mat(L, i);
            if (w && plan_add(wm, 0, w->offset, sz[i], 0x40000000u | (uint32_t)(l * WG_SEGMAX + wm->gms[l][i]), wm->gmo[l][i]))
                return ob_fail(OB_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < GV_COUNT; i++) {
            int n;
            const float *v = gen_vec(L, hp, i, &n);
            wm->gvo[l][i] = v ? vo : GV_NONE;
            if (v) vo += pad4u((uint32_t)n);
        }
    }
    const struct { const float *v; int n; } out[3] = {
        {m->output_norm, hp->n_embd}, {m->output_norm_b, hp->n_embd}, {m->output_b, hp->n_vocab}};
    for (int i = 0; i < 3; i++) {
        wm->gv_out[i] = out[i].v ? vo : GV_NONE;
        if (out[i].v) vo += pad4u((uint32_t)out[i].n);
    }
    if ((uint64_t)vo * 4 > binding_cap()) return ob_fail(OB_ERR_UNSUPPORTED, "the model's vectors exceed a GPU storage binding");
    wm->norm_floats = vo;
    return OB_OK;
}

/* Frees the model's GPU objects through the command list (the host runs it after the call). */
static void wg_model_free(void *mstate) {
    wg_model *wm = mstate;
    if (!wm) return;
    cmd_reset();
    gpu_free_range(wm->id_first, wm->id_end);
    if (wm->out != wm->emb) free(wm->out);
    free(wm->emb);
    free(wm->layer_buf);
    free(wm->seg_bytes);
    free(wm->gms);
    free(wm->gmo);
    free(wm->gvo);
    free(wm->norm_host);
    free(wm->plan);
    free(wm);
}

/* ---- per-context state ---------------------------------------------------------------------- */

enum wg_kernel {
    K_EMBED, K_EMBED_Q, K_RMSNORM, K_MV_DOWN, K_MV_HEAD, K_MV_HEAD_Q, K_MV_QKV, K_MV_WO, K_ADEC, K_GATEUP, K_ATTN, K_MM,
    K_MM_RES, K_QKROPE, K_SWIGLU, K_SAMPLE, K_QUANT, K_MMS, K_MMS_RES, K_RMSNORM_Q, K_SWIGLU_Q, K_ATTN_Q,
    /* the generic plan's (with K_ATTN and K_SAMPLE; its products and embedding: wg_ctx gp) */
    K_G_NORM, K_G_RMS_IN, K_G_QKNORM, K_G_ROPE, K_G_ACT, K_G_ARGMAX, K_G_ATTN1, K_G_ATTNM,
    K_COUNT
};

enum wg_layer_bg {
    BG_QKV, BG_ADEC, BG_WO, BG_GU, BG_DOWN,                       /* decode */
    BG_N1, BG_MQKV, BG_ROPE, BG_ATTN, BG_MO, BG_N2, BG_MGU, BG_MDOWN, /* prompt */
    BG_PER_LAYER
};

typedef struct wg_ctx {
    wg_model *wm;
    int n_ctx, B, Lrows, kv_f16;
    int n_past;
    int mv_rows;                  /* rows per workgroup of the matrix-vector kernels */
    int head_rows;                /* ... of the output head (larger: it re-reduces the norm) */
    uint32_t pf_qkv, pf_gu;       /* prefetching workgroups of the [q|k|v] and gate/up products (WG_PF_*) */
    uint32_t pf_att;              /* ... of the decode attention, a split */
    uint32_t pipe[K_COUNT];
    uint32_t x, h, qkv, att, gu, logits, tok, hist, rope, step, samp, params;
    uint32_t apart;               /* decode attention partials [n_head][ATT_SPLITS][head_dim + 4]
                                   * (generic plan: [n_head][ATT_SPLITS][staged head + 4], attn_one.wgsl) */
    uint32_t am;                  /* the output head's best logit per head_rows rows [slots][2] */
    uint32_t *kv;                 /* [n_layer] K then V of one layer */
    uint32_t *bg;                 /* [n_layer][BG_PER_LAYER] */
    uint32_t bg_swiglu, bg_nout, bg_sample;
    int sgmm;                     /* prompt products on subgroup matrices (quant + mm_sg) */
    int dpmm;                     /* ... else on packed integer dot products (quant + mm_dp) */
    uint32_t xq, xq_lo, xq_sc;    /* their quantised input; word offsets of the lo plane, scales */
    uint32_t bg_qatt;             /* quant of c->att (rmsnorm and swiglu write theirs: K_*_Q) */
    int attq;                     /* ... unless attention writes it itself (attention_q: head dim 128) */
    /* Decode vectors pre-quantised between kernels (qx.wgsl's block form, 80 bytes a block of 32):
     * qe the n_embd input of [q|k|v], gate/up and the head, qf the n_ff input of down; qdum takes
     * the writes of kernels that produce none. */
    uint32_t qe, qf, qdum;
    uint32_t *bg_embed, *bg_head, *bg_mhead; /* [2][n_emb] (prompt, decode), [2][n_out], [n_out] */
    wg_params *slots;             /* [n_slots] (each WG_SLOT bytes apart) */
    int n_slots, cap_slots;
    float *rope_host;             /* [n_ctx][head_dim/2][2] cos, sin */
    wg_step step_host;
    wg_samp samp_host;
    ob_sampling sp;
    int sp_set;
    uint64_t rng[4];              /* xoshiro256**, seeded as src/sample.c seeds it */
    uint32_t id_first, id_end;    /* the GPU objects of the context */
    /* The generic plan: pipelines of the products and the embedding by weight type (0: not
     * created), and the layers' dispatches in forward.c's order, each with a decode and a prompt
     * form (the products: dq_mvb or dq_mv / dq_mmt). */
    uint32_t gp[7][GGML_TYPE_COUNT];  /* [G_MV, G_MM, G_EMBED, G_MVN, G_MVGU, G_MVNGU, G_MVNH][type] */
    uint32_t gw[7][2][4];         /* [kind][Q4_K, Q6_K][KS 1, 2, 4, IQ]: dq_mvw.wgsl's decode forms (0: not created) */
    struct wg_gop *gops;          /* [n_gops] */
    int n_gops, cap_gops;
    int g_layers_end;             /* gops[0, g_layers_end): embedding and layers; then the tail */
    int g_nout, g_head_mv, g_head_mm, g_argmax; /* first tail op of each kind (heads: n_out each) */
    /* Prompt products on subgroup matrices (dq_mms.wgsl, pipelines by weight type in gms) on the
     * input quantised by quant.wgsl into c->xq; the input last quantised (buffer, row stride,
     * columns; buffer 0: none), so that q, k, v or gate and up quantise theirs once. */
    int gsg;
    uint32_t gms[GGML_TYPE_COUNT];
    uint32_t gq_x, gq_stride, gq_cols;
    int gq_keep;                  /* gen_op keeps gq_x (the quant and the product ops) */
} wg_ctx;

/* G_MVN..: dq_mvb's fused decode forms (NORM, GU, both; NORM with GEN_HEAD_RPG row passes: the output head) */
enum { G_MV, G_MM, G_EMBED, G_MVN, G_MVGU, G_MVNGU, G_MVNH };
/* a dispatch's y: 1, tokens, ceil(tokens / 8 or 64), attention's (prompt), the step's key ranges (decode
 * attention), 1 but skipped with one range (its merge) */
enum { GY_ONE, GY_TOK, GY_MM8, GY_MM64, GY_ATTN, GY_SPLIT, GY_MERGE };

/* One dispatch of the generic plan: [0] its decode form (one token), [1] its prompt form. */
typedef struct wg_gop {
    uint32_t pipe[2], bg[2], gx[2];
    uint8_t gy[2];
} wg_gop;

/* Parameter slots are laid out WG_SLOT bytes apart; wg_params is smaller. */
static wg_params *slot_at(wg_ctx *c, int i) { return (wg_params *)((uint8_t *)c->slots + (size_t)i * WG_SLOT); }

static int new_slot(wg_ctx *c) {
    if (c->n_slots == c->cap_slots) {
        int cap = c->cap_slots * 2 + 32;
        void *ns = realloc(c->slots, (size_t)cap * WG_SLOT);
        if (!ns) return -1;
        c->slots = ns;
        c->cap_slots = cap;
    }
    memset(slot_at(c, c->n_slots), 0, WG_SLOT);
    return c->n_slots++;
}

static void wg_ctx_free(void *cstate);

/* Base parameters every slot starts from. */
static wg_params base_params(const wg_ctx *c) {
    const ob_hparams *hp = &c->wm->m->hp;
    wg_params p;
    memset(&p, 0, sizeof p);
    p.n_head = (uint32_t)hp->n_head;
    p.n_head_kv = (uint32_t)hp->n_head_kv;
    p.head_dim = (uint32_t)hp->head_dim;
    p.kv_dim = (uint32_t)hp->kv_dim;
    p.q_off = 0;
    p.q_stride = (uint32_t)(hp->q_dim + 2 * hp->kv_dim);
    p.n_ctx = (uint32_t)c->n_ctx;
    p.v_off = (uint32_t)((uint64_t)c->n_ctx * (uint64_t)hp->kv_dim / (c->kv_f16 ? 2 : 1));
    p.eps = hp->norm_eps;
    p.scale = 1.0f / sqrtf((float)hp->head_dim);
    p.n_ff = (uint32_t)hp->n_ff;
    return p;
}

/* A bind group with its own parameter slot; the slot's binding is always the last two entries
 * (params, step) as the kernels declare them. Returns 0 on failure (reported by ctx_init). */
static uint32_t make_bg_on(wg_ctx *c, uint32_t pipe, int samp, const wg_params *p, int n, const wg_bind *b, int *ok) {
    int s = new_slot(c);
    if (s < 0 || n > 8) {
        *ok = 0;
        return 0;
    }
    *slot_at(c, s) = *p;
    wg_bind all[11];
    memcpy(all, b, (size_t)n * sizeof *b);
    all[n] = (wg_bind){(uint32_t)n, c->params, (uint32_t)s * WG_SLOT, (uint32_t)sizeof(wg_params)};
    all[n + 1] = (wg_bind){(uint32_t)n + 1, c->step, 0, (uint32_t)sizeof(wg_step)};
    int total = n + 2;
    if (samp) /* the sampler's settings follow */
        all[total++] = (wg_bind){(uint32_t)n + 2, c->samp, 0, (uint32_t)sizeof(wg_samp)};
    return gpu_bindgroup(pipe, total, all);
}

static uint32_t make_bg(wg_ctx *c, int kernel, const wg_params *p, int n, const wg_bind *b, int *ok) {
    return make_bg_on(c, c->pipe[kernel], kernel == K_SAMPLE, p, n, b, ok);
}

/* ---- the host-facing API (exported to JS) --------------------------------------------------- */

/* The command list of the last call. */
WG_API const uint32_t *ob_wgpu_cmds(void) { return wg_cmd.w; }
WG_API int ob_wgpu_cmds_len(void) { return wg_cmd.oom ? 0 : (int)wg_cmd.n; }

/* Tells C what the device allows. sg_size: a subgroup size that every pipeline of this device
 * uses with invocations laid out contiguously (the host probes it), 0 for none. sgmat: the device
 * has int8 16x16x32 subgroup matrices (web/gpu.mjs checks the adapter's configurations). cpu: the
 * adapter is a CPU implementation (SwiftShader), where a workgroup costs ~2 ms whatever it does:
 * the output head then takes HEAD_ROWS_MAX rows a workgroup (151,936 rows of 256: 2.8 -> 0.8 s),
 * and prompt products stay on the f32 matmul unless cpu is 2 (tests: mm_dp all the same) or 3 (tests:
 * the generic plan's dq_mms, its subgroup-matrix builtins emulated by the host's kernel source). */
WG_API void ob_wgpu_attach(double max_binding, double max_buffer, int max_groups, int sg_size, int max_wg_mem,
                           int sgmat, int cpu) {
    wg_lim.attached = 1;
    wg_lim.max_binding = max_binding > 0 ? (uint64_t)max_binding : 128u << 20;
    wg_lim.max_buffer = max_buffer > 0 ? (uint64_t)max_buffer : 256u << 20;
    wg_lim.max_groups = max_groups > 0 ? (uint32_t)max_groups : 65535;
    wg_lim.max_wg_mem = max_wg_mem >= 16384 ? (uint32_t)max_wg_mem : 16384;
    wg_lim.sg_size = sg_size >= 4 && sg_size <= 128 && (sg_size & (sg_size - 1)) == 0 ? (uint32_t)sg_size : 0;
    wg_lim.sgmat = sgmat != 0 && wg_lim.sg_size == 32;
    wg_lim.cpu = cpu != 0;
    wg_lim.dp_cpu = cpu == 2;
    wg_lim.sgmat_emu = cpu == 3;
}

WG_API void ob_wgpu_detach(void) { wg_lim.attached = 0; }

/* Tests: packs each layer's weights into buffers of at most bytes (0: the binding limit), so that
 * a tiny model's layers are split across several buffers as a large model's are on a small device. */
WG_API void ob_wgpu_cap_weights(double bytes) { wg_lim.weight_cap = bytes > 0 ? (uint64_t)bytes : 0; }

/* Opens a model from the first avail bytes (at image, malloc'ed; taken over) of a file of
 * file_size bytes. A message starting with "truncated" means: the header needs a longer prefix. */
WG_API int ob_wgpu_model_open(void *image, double avail, double file_size, ob_model **out) {
    ob_model_params p = ob_model_default_params();
    p.backend = "webgpu";
    p.n_threads = 1;
    if (!(avail >= 0 && file_size >= avail && file_size < 9.0e15)) {
        free(image);
        return ob_fail(OB_ERR_ARG, "bad prefix or file size");
    }
    return ob_model_load_partial(image, (size_t)avail, (uint64_t)file_size, &p, out);
}

/* Creates the model's GPU buffers (command list). */
WG_API int ob_wgpu_model_setup(ob_model *m) {
    wg_model *wm = m->bstate;
    if (wm->id_first) return ob_fail(OB_ERR_ARG, "ob_wgpu_model_setup: called twice");
    cmd_reset();
    wm->id_first = wg_next_id;
    for (size_t i = 0; i < (size_t)m->hp.n_layer * WG_SEGMAX; i++)
        if (wm->seg_bytes[i]) wm->layer_buf[i] = gpu_buffer(wm->seg_bytes[i], WG_STORAGE);
    wg_part *lists[2] = {wm->emb, wm->out};
    int counts[2] = {wm->n_emb, m->tied ? 0 : wm->n_out};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < counts[k]; i++) {
            wg_part *p = &lists[k][i];
            if (!(p->buf & 0x80000000u)) continue;
            uint32_t *e = wm->plan + (size_t)(p->buf & 0x7fffffffu) * 6;
            p->buf = gpu_buffer(wt_size((uint64_t)p->rows * (k ? m->output : m->tok_embd)->row_bytes), WG_STORAGE);
            e[4] = p->buf;
        }
    for (int i = 0; i < wm->n_plan; i++) {
        uint32_t *e = wm->plan + (size_t)i * 6;
        if (e[0] == 0 && (e[4] & 0xc0000000u) == 0x40000000u) e[4] = wm->layer_buf[e[4] & 0x3fffffffu];
    }
    wm->norm_buf = gpu_buffer((uint64_t)wm->norm_floats * 4, WG_STORAGE);
    wm->id_end = wg_next_id;
    return cmd_status();
}

/* Bytes of the GPU buffers that hold the model (weights in their segments and row parts, the
 * vectors): what the device must allocate before the upload (the host reports it when it cannot). */
WG_API double ob_wgpu_model_bytes(ob_model *m) {
    const wg_model *wm = m->bstate;
    double n = (double)wm->norm_floats * 4;
    for (size_t i = 0; i < (size_t)m->hp.n_layer * WG_SEGMAX; i++) n += (double)wm->seg_bytes[i];
    for (int i = 0; i < wm->n_emb; i++) n += (double)wm->emb[i].rows * (double)m->tok_embd->row_bytes;
    for (int i = 0; !m->tied && i < wm->n_out; i++) n += (double)wm->out[i].rows * (double)m->output->row_bytes;
    return n;
}

/* Bytes of the file before its tensor data: the host reopens the model with exactly this prefix,
 * so that no tensor bytes stay in wasm memory (every tensor then streams through the plan). */
WG_API double ob_wgpu_header_bytes(ob_model *m) { return (double)m->file.data_offset; }

/* Tests: how many buffers hold layer l's weights. */
WG_API int ob_wgpu_layer_buffers(ob_model *m, int l) {
    const wg_model *wm = m->bstate;
    int n = 0;
    for (int s = 0; l >= 0 && l < m->hp.n_layer && s < WG_SEGMAX; s++) n += wm->seg_bytes[(size_t)l * WG_SEGMAX + (size_t)s] > 0;
    return n;
}

/* The upload plan: n entries of 6 words {kind, file_off_lo, file_off_hi, len, dst, dst_off};
 * kind 0: bytes go to GPU buffer dst at dst_off; kind 1: into wasm memory at address dst. */
WG_API const uint32_t *ob_wgpu_uploads(ob_model *m, int *n) {
    wg_model *wm = m->bstate;
    *n = wm->n_plan;
    return wm->plan;
}

/* After the host streamed every range: converts the norm vectors and uploads them. */
WG_API int ob_wgpu_model_ready(ob_model *m) {
    wg_model *wm = m->bstate;
    ob_status st = model_complete(m);
    if (st) return st;
    cmd_reset();
    free(wm->norm_host);
    if (!(wm->norm_host = calloc(wm->norm_floats, sizeof(float)))) return ob_fail(OB_ERR_NOMEM, "out of memory");
    const ob_hparams *hp = &m->hp;
    for (int l = 0; wm->generic && l < hp->n_layer; l++)
        for (int i = 0; i < GV_COUNT; i++) {
            int n;
            const float *v = gen_vec(&m->layers[l], hp, i, &n);
            if (v) memcpy(wm->norm_host + wm->gvo[l][i], v, (size_t)n * 4);
        }
    if (wm->generic) {
        const float *out[3] = {m->output_norm, m->output_norm_b, m->output_b};
        const int len[3] = {hp->n_embd, hp->n_embd, hp->n_vocab};
        for (int i = 0; i < 3; i++)
            if (out[i]) memcpy(wm->norm_host + wm->gv_out[i], out[i], (size_t)len[i] * 4);
    }
    for (int l = 0; !wm->generic && l < hp->n_layer; l++) {
        const ob_layer *L = &m->layers[l];
        memcpy(wm->norm_host + norm_attn(wm, l), L->attn_norm, (size_t)hp->n_embd * 4);
        memcpy(wm->norm_host + norm_q(wm, l), L->q_norm, (size_t)hp->head_dim * 4);
        memcpy(wm->norm_host + norm_k(wm, l), L->k_norm, (size_t)hp->head_dim * 4);
        memcpy(wm->norm_host + norm_ffn(wm, l), L->ffn_norm, (size_t)hp->n_embd * 4);
    }
    if (!wm->generic) memcpy(wm->norm_host + wm->norm_out, m->output_norm, (size_t)hp->n_embd * 4);
    gpu_write(wm->norm_buf, 0, wm->norm_host, wm->norm_floats * 4);
    wm->ready = 1;
    return cmd_status();
}

/* attention.wgsl (prompt chunks) takes 32 rows a workgroup: qh q heads of one KV group x 32 / qh
 * tokens, qh the largest power of two <= 8 dividing n_head / n_head_kv. Its workgroup memory
 * (14,976 bytes) fits WebGPU's default 16 KiB for every head dimension. */
static uint32_t attn_heads(const ob_hparams *hp) {
    uint32_t g = (uint32_t)(hp->n_head / hp->n_head_kv), qh = 1;
    while (qh < 8 && g % (qh * 2) == 0) qh *= 2;
    return qh;
}

/* The words of a layer's weights from group `first` to the end of the down matrix, where they all
 * lie in the segment of group `host` (the product whose extra workgroups read them): *a0, *an.
 * Returns n_wg, or 0 (and an empty range) where they do not or n_wg is 0. */
static uint32_t pf_range(const wg_model *wm, int host, int first, uint32_t n_wg, uint32_t *a0, uint32_t *an) {
    const uint8_t *gs = wm->gms[0];
    const uint32_t off[FG_COUNT] = {wm->off_qkv, wm->off_o, wm->off_gu, wm->off_down};
    *a0 = *an = 0;
    for (int g = first; g < FG_COUNT; g++)
        if (gs[g] != gs[host]) return 0;
    if (!n_wg) return 0;
    *a0 = off[first] / 4;
    *an = (uint32_t)((wm->off_down + (uint64_t)wm->m->hp.n_embd * wm->rb_f - off[first]) / 4);
    return n_wg;
}

static int ctx_pipelines(wg_ctx *c) {
    const ob_hparams *hp = &c->wm->m->hp;
    uint32_t hd = (uint32_t)hp->head_dim;
    uint32_t f16 = (uint32_t)c->kv_f16, rows = (uint32_t)c->mv_rows;
    const uint32_t qe = (uint32_t)hp->n_embd / 4, qf = (uint32_t)hp->n_ff / 4, qq = (uint32_t)hp->q_dim / 4;
    const uint32_t ke = qe / 8, kf = qf / 8, kq = qq / 8; /* 32-weight words a row */
    /* QIN kernels stage nothing (QXW 8 keeps their unused staging arrays small) but the down
     * product (QST: its rows are 3x longer; copying its pre-quantised input into workgroup memory
     * first leaves each lane only its weights to hold; within the plan's staging budget). QOUT
     * needs 32 rows a workgroup (one output block): mv_rows is 32. The decode products and
     * attention also get their shapes as constants (F_*, A_*: their first loads then wait for no
     * uniform load). */
    const wg_model *wm = c->wm;
    const uint32_t E = (uint32_t)hp->n_embd, F = (uint32_t)hp->n_ff, QS = (uint32_t)(hp->q_dim + 2 * hp->kv_dim);
    const uint32_t orb = (uint32_t)wm->m->output->row_bytes;
    uint32_t pq0 = 0, pqn = 0;
    const int pf_off = wg_lim.cpu && !WG_PF_CPU;
    uint32_t pa0 = 0, pan = 0;
    c->pf_att = pf_off ? 0 : pf_range(wm, FG_O, FG_O, WG_PF_ATT, &pa0, &pan);
    c->pf_qkv = pf_off ? 0 : pf_range(wm, FG_QKV, FG_O, WG_PF_QKV, &pq0, &pqn);
    c->pf_gu = pf_off ? 0 : WG_PF_GU; /* the next layer's [q|k|v], bound as PFW */
    const uint32_t pg0 = wm->off_qkv / 4, pgn = (uint32_t)((uint64_t)(hp->q_dim + 2 * hp->kv_dim) * wm->rb_e / 4);
    const wg_const mv_down[] = {{"ROWS", rows},      {"RESID", 1},  {"QIN", 1},   {"QOUT", 1},   {"QST", 1},
                                {"QXW", qf},         {"KW", kf},    {"F_ROWS", E}, {"F_COLS", F},
                                {"F_RB", wm->rb_f}, {"F_WOFF", wm->off_down},       {"F_OUT", 0}};
    const wg_const mv_head[] = {{"ROWS", (uint32_t)c->head_rows}, {"NORM", 1}, {"LASTROW", 1}, {"ARGMAX", 1}, {"QXW", qe},
                                {"KW", ke}};
    const wg_const mv_headq[] = {{"ROWS", (uint32_t)c->head_rows}, {"NORM", 1}, {"QIN", 1},      {"ARGMAX", 1}, {"QXW", 8},
                                 {"KW", ke},                       {"F_COLS", E}, {"F_RB", orb}, {"F_WOFF", 0}};
    const wg_const mv_qkv[] = {{"ROWS", rows},       {"NORM", 1},   {"QIN", 1},     {"QXW", 8},
                               {"KW", ke},           {"F_ROWS", QS}, {"F_COLS", E}, {"F_RB", wm->rb_e},
                               {"F_WOFF", wm->off_qkv}, {"F_OUT", 0}, {"PF_WG", c->pf_qkv}, {"PF_A0", pq0}, {"PF_AN", pqn}};
    const wg_const mv_wo[] = {{"ROWS", rows},      {"RESID", 1},   {"COMBINE", 1},  {"QOUT", 1},
                              {"QXW", qq},         {"HD", hd},     {"KW", kq},
                              {"F_ROWS", E},       {"F_COLS", (uint32_t)hp->q_dim}, {"F_RB", wm->rb_q},
                              {"F_WOFF", wm->off_o}, {"F_OUT", 0}};
    const wg_const adec[] = {{"HD", hd},
                             {"KV16", f16},
                             {"A_NH", (uint32_t)hp->n_head},
                             {"A_NKV", (uint32_t)hp->n_head_kv},
                             {"A_KD", (uint32_t)hp->kv_dim},
                             {"A_NCTX", (uint32_t)c->n_ctx},
                             {"PF_WG", c->pf_att},
                             {"PF_A0", pa0},
                             {"PF_AN", pan}};
    const wg_const gateup[] = {{"ROWS", rows},      {"KW", ke},         {"F_ROWS", F},       {"F_COLS", E},
                               {"F_RB", wm->rb_e}, {"F_WOFF", wm->off_gu}, {"PF_WG", c->pf_gu}, {"PF_A0", pg0},
                               {"PF_AN", pgn}};
    const wg_const embq[] = {{"QOUT", 1}, {"QVB", QK1_0 / 32}};
    const wg_const attn[] = {{"HD", hd}, {"KV16", f16}, {"QH", attn_heads(hp)}};
    const wg_const mm_res[] = {{"RESID", 1}};
    const wg_const rope[] = {{"HD", hd}, {"KV16", f16}};
    c->pipe[K_EMBED] = gpu_pipeline("embed", 0, NULL);
    c->pipe[K_EMBED_Q] = gpu_pipeline("embed", 2, embq);
    c->pipe[K_RMSNORM] = gpu_pipeline("rmsnorm", 0, NULL);
    c->pipe[K_MV_DOWN] = gpu_pipeline("matvec", 12, mv_down);
    c->pipe[K_MV_HEAD] = gpu_pipeline("matvec", 6, mv_head);
    c->pipe[K_MV_HEAD_Q] = gpu_pipeline("matvec", 9, mv_headq);
    c->pipe[K_MV_QKV] = gpu_pipeline("matvec", 13, mv_qkv);
    c->pipe[K_MV_WO] = gpu_pipeline("matvec", 12, mv_wo);
    c->pipe[K_ADEC] = gpu_pipeline("attn_dec", 9, adec);
    c->pipe[K_GATEUP] = gpu_pipeline("gateup", 9, gateup);
    c->pipe[K_ATTN] = gpu_pipeline("attention", 3, attn);
    c->pipe[K_QKROPE] = gpu_pipeline("qk_rope", 2, rope);
    c->pipe[K_SWIGLU] = gpu_pipeline("swiglu", 0, NULL);
    c->pipe[K_SAMPLE] = gpu_pipeline("sample", 0, NULL);
    if (c->sgmm || c->dpmm) {
        /* the quantisers take a block's max over 32 invocations: the subgroup's only where it is 32 wide */
        const uint32_t xwg = wg_lim.sg_size != 32;
        const wg_const q[] = {{"LO", c->xq_lo}, {"SC", c->xq_sc}, {"XQ_WG", xwg}};
        const wg_const qr[] = {{"LO", c->xq_lo}, {"SC", c->xq_sc}, {"RESID", 1}};
        const wg_const qo[] = {{"LO", c->xq_lo}, {"SC", c->xq_sc}, {"QOUT", 1}, {"XQ_WG", xwg}};
        const char *mmk = c->sgmm ? "mm_sg" : "mm_dp";
        c->pipe[K_QUANT] = gpu_pipeline("quant", 3, q);
        c->pipe[K_RMSNORM_Q] = gpu_pipeline("rmsnorm", 4, qo);
        c->pipe[K_SWIGLU_Q] = gpu_pipeline("swiglu", 4, qo);
        if (c->attq) {
            const wg_const aq[] = {{"HD", hd}, {"KV16", f16}, {"QH", attn_heads(hp)}, {"LO", c->xq_lo}, {"SC", c->xq_sc}, {"XQ_WG", xwg}};
            c->pipe[K_ATTN_Q] = gpu_pipeline("attention_q", 6, aq);
        }
        c->pipe[K_MMS] = gpu_pipeline(mmk, 2, q);
        c->pipe[K_MMS_RES] = gpu_pipeline(mmk, 3, qr);
    } else {
        c->pipe[K_MM] = gpu_pipeline("matmul", 0, NULL);
        c->pipe[K_MM_RES] = gpu_pipeline("matmul", 1, mm_res);
    }
    return 1;
}

static wg_params mat_params(const wg_ctx *c, uint32_t rows, uint32_t cols, uint32_t row_bytes, uint32_t w_off) {
    wg_params p = base_params(c);
    p.rows = rows;
    p.cols = cols;
    p.row_bytes = row_bytes;
    p.w_off = w_off;
    return p;
}

/* A prompt chunk's product Y (+)= W X: the f32 matmul reads X itself; mm_sg and mm_dp read it
 * quantised (c->xq, written by quant.wgsl, rmsnorm or swiglu just before). */
static uint32_t mm_bg(wg_ctx *c, int resid, const wg_params *p, uint32_t w, uint32_t x, uint32_t y, int *ok) {
    const int q = c->sgmm || c->dpmm;
    int k = q ? (resid ? K_MMS_RES : K_MMS) : (resid ? K_MM_RES : K_MM);
    return make_bg(c, k, p, 3, (wg_bind[]){{0, w, 0, 0}, {1, q ? c->xq : x, 0, 0}, {2, y, 0, 0}}, ok);
}

static void ctx_bindgroups(wg_ctx *c, int *ok) {
    const wg_model *wm = c->wm;
    const struct ob_model *m = wm->m;
    const ob_hparams *hp = &m->hp;
    const uint32_t E = (uint32_t)hp->n_embd, QD = (uint32_t)hp->q_dim, KD = (uint32_t)hp->kv_dim, F = (uint32_t)hp->n_ff;
    const uint32_t V = (uint32_t)hp->n_vocab, QS = QD + 2 * KD;
    /* With quantised products rmsnorm and swiglu write the products' quantised input themselves. */
    const int qmm = c->sgmm || c->dpmm;
    const int k_norm = qmm ? K_RMSNORM_Q : K_RMSNORM, k_glu = qmm ? K_SWIGLU_Q : K_SWIGLU;
    const uint32_t XQ = qmm ? c->xq : c->qdum;
    for (int l = 0; l < hp->n_layer; l++) {
        uint32_t *bg = c->bg + (size_t)l * BG_PER_LAYER;
        /* the segments holding each group */
        const uint32_t Wqkv = seg_buf(wm, l, wm->gms[l][FG_QKV]), Wo = seg_buf(wm, l, wm->gms[l][FG_O]),
                       Wgu = seg_buf(wm, l, wm->gms[l][FG_GU]), Wdown = seg_buf(wm, l, wm->gms[l][FG_DOWN]);
        wg_params p;
        /* decode: norm + [q|k|v]; attention split over the keys (QK-norm, RoPE, cache write);
         * merge + Wo + residual; gate/up; down + residual. The products read their input
         * pre-quantised (qe, qf): embed, Wo and down each write the next one's input (x times the
         * next norm's weights), gate/up writes qf. */
        p = mat_params(c, QS, E, wm->rb_e, wm->off_qkv);
        bg[BG_QKV] = make_bg(c, K_MV_QKV, &p, 7,
                             (wg_bind[]){{0, Wqkv, 0, 0}, {1, c->x, 0, 0}, {2, c->qkv, 0, 0}, {3, wm->norm_buf, 0, 0},
                                         {4, c->am, 0, 0}, {5, c->qe, 0, 0}, {6, c->qdum, 0, 0}},
                             ok);
        p = base_params(c);
        p.norm_off = norm_q(wm, l);
        p.norm2_off = norm_k(wm, l);
        bg[BG_ADEC] = make_bg(c, K_ADEC, &p, 6,
                              (wg_bind[]){{0, c->qkv, 0, 0}, {1, c->kv[l], 0, 0}, {2, c->apart, 0, 0}, {3, wm->norm_buf, 0, 0},
                                          {4, c->rope, 0, 0}, {5, Wo, 0, 0}},
                              ok);
        p = base_params(c);
        bg[BG_ATTN] = make_bg(c, c->attq ? K_ATTN_Q : K_ATTN, &p, 3,
                              (wg_bind[]){{0, c->qkv, 0, 0}, {1, c->kv[l], 0, 0}, {2, c->attq ? c->xq : c->att, 0, 0}}, ok);
        p = mat_params(c, E, QD, wm->rb_q, wm->off_o);
        p.norm2_off = norm_ffn(wm, l);
        bg[BG_WO] = make_bg(c, K_MV_WO, &p, 7,
                            (wg_bind[]){{0, Wo, 0, 0}, {1, c->apart, 0, 0}, {2, c->x, 0, 0}, {3, wm->norm_buf, 0, 0},
                                        {4, c->am, 0, 0}, {5, c->qf, 0, 0}, {6, c->qe, 0, 0}},
                            ok);
        p = mat_params(c, F, E, wm->rb_e, wm->off_gu);
        /* PFW: the next layer's [q|k|v] segment (the first layer's after the last) */
        const uint32_t Wnext = seg_buf(wm, (l + 1) % hp->n_layer, wm->gms[(l + 1) % hp->n_layer][FG_QKV]);
        bg[BG_GU] = make_bg(c, K_GATEUP, &p, 4, (wg_bind[]){{0, Wgu, 0, 0}, {1, c->qe, 0, 0}, {2, c->qf, 0, 0}, {3, Wnext, 0, 0}},
                            ok);
        p = mat_params(c, E, F, wm->rb_f, wm->off_down);
        p.norm2_off = l + 1 < hp->n_layer ? norm_attn(wm, l + 1) : wm->norm_out;
        bg[BG_DOWN] = make_bg(c, K_MV_DOWN, &p, 7,
                              (wg_bind[]){{0, Wdown, 0, 0}, {1, c->gu, 0, 0}, {2, c->x, 0, 0}, {3, wm->norm_buf, 0, 0},
                                          {4, c->am, 0, 0}, {5, c->qf, 0, 0}, {6, c->qe, 0, 0}},
                              ok);
        /* prompt chunks */
        p = base_params(c);
        p.cols = E;
        p.norm_off = norm_attn(wm, l);
        bg[BG_N1] = make_bg(c, k_norm, &p, 4, (wg_bind[]){{0, c->x, 0, 0}, {1, c->h, 0, 0}, {2, wm->norm_buf, 0, 0}, {3, XQ, 0, 0}}, ok);
        p.norm_off = norm_ffn(wm, l);
        bg[BG_N2] = make_bg(c, k_norm, &p, 4, (wg_bind[]){{0, c->x, 0, 0}, {1, c->h, 0, 0}, {2, wm->norm_buf, 0, 0}, {3, XQ, 0, 0}}, ok);
        p = mat_params(c, QS, E, wm->rb_e, wm->off_qkv);
        p.in_stride = E;
        p.out_stride = QS;
        bg[BG_MQKV] = mm_bg(c, 0, &p, Wqkv, c->h, c->qkv, ok);
        p = base_params(c);
        p.norm_off = norm_q(wm, l);
        p.norm2_off = norm_k(wm, l);
        bg[BG_ROPE] = make_bg(c, K_QKROPE, &p, 4,
                              (wg_bind[]){{0, c->qkv, 0, 0}, {1, c->kv[l], 0, 0}, {2, wm->norm_buf, 0, 0}, {3, c->rope, 0, 0}}, ok);
        p = mat_params(c, E, QD, wm->rb_q, wm->off_o);
        p.in_stride = QD;
        p.out_stride = E;
        bg[BG_MO] = mm_bg(c, 1, &p, Wo, c->att, c->x, ok);
        p = mat_params(c, 2 * F, E, wm->rb_e, wm->off_gu);
        p.in_stride = E;
        p.out_stride = 2 * F;
        bg[BG_MGU] = mm_bg(c, 0, &p, Wgu, c->h, c->gu, ok);
        p = mat_params(c, E, F, wm->rb_f, wm->off_down);
        p.in_stride = 2 * F;
        p.out_stride = E;
        bg[BG_MDOWN] = mm_bg(c, 1, &p, Wdown, c->gu, c->x, ok);
    }
    if (qmm && !c->attq) {
        wg_params p = base_params(c);
        p.cols = QD;
        p.in_stride = QD;
        c->bg_qatt = make_bg(c, K_QUANT, &p, 2, (wg_bind[]){{0, c->att, 0, 0}, {1, c->xq, 0, 0}}, ok);
    }
    wg_params p = base_params(c);
    c->bg_swiglu = make_bg(c, k_glu, &p, 2, (wg_bind[]){{0, c->gu, 0, 0}, {1, XQ, 0, 0}}, ok);
    p.cols = E;
    p.norm_off = wm->norm_out;
    c->bg_nout = make_bg(c, k_norm, &p, 4, (wg_bind[]){{0, c->x, 0, 0}, {1, c->h, 0, 0}, {2, wm->norm_buf, 0, 0}, {3, XQ, 0, 0}}, ok);
    for (int i = 0; i < wm->n_emb; i++) {
        p = mat_params(c, (uint32_t)wm->emb[i].rows, E, (uint32_t)m->tok_embd->row_bytes, 0);
        p.row0 = (uint32_t)wm->emb[i].row0;
        p.flags = i == 0; /* the first part records the tokens in the history */
        p.norm_off = norm_attn(wm, 0);
        for (int q = 0; q < 2; q++)
            c->bg_embed[q * wm->n_emb + i] =
                make_bg(c, q ? K_EMBED_Q : K_EMBED, &p, 6,
                        (wg_bind[]){{0, wm->emb[i].buf, 0, 0}, {1, c->tok, 0, 0}, {2, c->x, 0, 0}, {3, c->hist, 0, 0},
                                    {4, wm->norm_buf, 0, 0}, {5, q ? c->qe : c->qdum, 0, 0}},
                        ok);
    }
    for (int i = 0; i < wm->n_out; i++) {
        p = mat_params(c, (uint32_t)wm->out[i].rows, E, (uint32_t)m->output->row_bytes, 0);
        p.row0 = (uint32_t)wm->out[i].row0;
        p.norm_off = wm->norm_out;
        p.in_stride = E;
        for (int q = 0; q < 2; q++)
            c->bg_head[q * wm->n_out + i] =
                make_bg(c, q ? K_MV_HEAD_Q : K_MV_HEAD, &p, 7,
                        (wg_bind[]){{0, wm->out[i].buf, 0, 0}, {1, c->x, 0, 0}, {2, c->logits, 0, 0}, {3, wm->norm_buf, 0, 0},
                                    {4, c->am, 0, 0}, {5, c->qe, 0, 0}, {6, c->qdum, 0, 0}},
                        ok);
        p.in_stride = E;
        p.out_stride = V;
        c->bg_mhead[i] = mm_bg(c, 0, &p, wm->out[i].buf, c->h, c->logits, ok);
    }
    p = base_params(c);
    p.rows = V;
    p.cols = (uint32_t)c->head_rows; /* rows per slot of c->am */
    c->bg_sample = make_bg(c, K_SAMPLE, &p, 4,
                           (wg_bind[]){{0, c->logits, 0, 0}, {1, c->hist, 0, 0}, {2, c->tok, 0, 0}, {3, c->am, 0, 0}}, ok);
}

/* ---- the generic plan ------------------------------------------------------------------------
 * Any family and weight type: the steps of src/cpu/forward.c in its order, one dispatch per op,
 * with plain kernels. Products decode their weights through dq.wgsl (for one token dq_mvb, whole
 * 32-weight units a lane, for the 8 block types, dq_mv for the others; dq_mmt, 64 x 64 tiles staged
 * in workgroup memory, for a prompt chunk, dq_mm on a CPU adapter, or where the device has int8
 * subgroup matrices quant + dq_mms (c->gsg: 32 x 64 tiles, 16-bit inputs and weights in int8
 * planes; rows of whole 128-blocks, not the head's all-logits form); the pipeline constant WT picks
 * the type: the variants mv_<type>, mvb_<type>, mmt_<type> and mm_<type>) and add their bias, per-tensor scale and the residual
 * themselves (P.flags). Per layer:
 *   norm (RMS or LayerNorm)            norm
 *   q, k, v + biases (or fused qkv)    3 (1) x mv | dq_mmt, into the qkv buffer's rows (1 when
 *                                      they lie back to back: gen_qkv_merged)
 *   QK-norm                            norm (QK, in place)            if qk_norm
 *   RoPE + K, V into the cache         rope (prompts; decode: inside attn_one_r, GEN_ROPE_FUSE)
 *   causal GQA attention               attention (the fused plan's prompt kernel) | attn_one_r
 *   attention sub-norm                 norm (in place)                if attn_sub_norm
 *   x += Wo a + bo                     mv | dq_mmt (residual)
 *   norm of the FFN input              norm                           unless parallel
 *   gate, up + biases                  2 (1 ungated) x mv | dq_mmt
 *   act(g) (* u)                       act
 *   FFN sub-norm                       norm (in place)                if ffn_sub_norm
 *   x += Wdown g + bdown               mv | dq_mmt (residual)
 * then the output norm, the head (+ bias; mv on the last token, or dq_mmt on every token) and
 * for GPU sampling argmax (the per-slot bests sample.wgsl reduces) + sample. Before the layers:
 * dq_embed (times embd_scale), one dispatch per part of the embedding. */

/* Types with a unit-wise decode product (dq_mvb.wgsl: whole 32-weight units a lane); the others
 * run dq_mv.wgsl (4 weights at a time through dq()). */
static int gen_mvb_type(uint32_t t) {
    return t == GGML_Q8_0 || t == GGML_Q4_0 || t == GGML_Q4_1 || t == GGML_Q5_0 || t == GGML_Q5_1 || t == GGML_Q4_K ||
           t == GGML_Q5_K || t == GGML_Q6_K;
}

/* The prompt product: dq_mmt (64 x 64 tiles staged in workgroup memory), or on a CPU adapter
 * dq_mm (a row x 8 tokens an invocation, no workgroup memory: SwiftShader gains nothing from the
 * staging and takes ~9 s to compile dq_mmt's 18 KiB of workgroup arrays). */
static int gen_mm_tiled(void) { return !wg_lim.cpu; }

/* The generic plan's decode attention (attn_one.wgsl) takes ranges of whole tiles of GEN_ATT_TILE
 * keys, one workgroup each per q head: as many ranges as tiles, at most GEN_ATT_WGS / n_head (so
 * that a step has about that many workgroups) and ATT_SPLITS; one range (one workgroup per head
 * walks all keys, and no merge dispatch) below GEN_ATT_MIN_TILES tiles, or always with
 * GEN_ATT_SPLIT 0 (bench/ab-gpumv.sh's variants). */
#ifndef GEN_ATT_SPLIT
#define GEN_ATT_SPLIT 1
#endif
#ifndef GEN_ATT_MIN_TILES
#define GEN_ATT_MIN_TILES 2
#endif
#define GEN_ATT_TILE 32 /* attn_one.wgsl's TK */
/* Decode: the RoPE and the KV-cache write inside the attention (attn_one_r: one dispatch a layer
 * less); 0: rope.wgsl before attn_one, as prompts run them. */
#ifndef GEN_ROPE_FUSE
#define GEN_ROPE_FUSE 1
#endif
#define GEN_ATT_WGS 256
static uint32_t gen_att_splits(const ob_hparams *hp, uint32_t pos) {
    const uint32_t nt = (pos + GEN_ATT_TILE) / GEN_ATT_TILE; /* tiles of the pos + 1 keys */
    uint32_t cap = GEN_ATT_WGS / (uint32_t)hp->n_head;
    if (cap > ATT_SPLITS) cap = ATT_SPLITS;
    if (cap < 1 || !GEN_ATT_SPLIT || nt < GEN_ATT_MIN_TILES) cap = 1;
    const uint32_t tps = (nt + cap - 1) / cap; /* tiles a range, as attn_one.wgsl takes them */
    return (nt + tps - 1) / tps;
}

/* Row passes a workgroup of the output head's decode form (dq_mvb RPG, with its RMSNorm inside):
 * GEN_HEAD_RPG x 256 / TPR rows, so that x and its sum of squares are read once for that many
 * rows (the head of a 128256-token vocabulary took 16032 workgroups of 8 rows, each reading the
 * whole input twice). */
#ifndef GEN_HEAD_RPG
#define GEN_HEAD_RPG 4
#endif

/* Q4_K and Q6_K decode products on dq_mvw.wgsl (whole 32-weight chunks a lane, 16-byte loads, no
 * int -> float conversion a weight; GEN_MVW 0: dq_mvb as before; GEN_MVW_Q6 0: Q6_K stays on
 * dq_mvb) with GEN_MVW_RW output rows a subgroup (inputs loaded once for them), where Q4_K rows
 * start at multiples of 16 bytes (Q6_K at any even byte); the head's form with GEN_HEAD_RPG row
 * passes, as on dq_mvb. (Q8_0 and Q4_0 blocks read the same way, a block a lane, were slower than
 * dq_mvb on the H100: Qwen2.5-1.5B Q8_0 430 -> 308 tok/s; BENCHMARKS.md.) */
#ifndef GEN_MVW
#define GEN_MVW 1
#endif
#ifndef GEN_MVW_Q6
#define GEN_MVW_Q6 1
#endif
#ifndef GEN_MVW_RW
#define GEN_MVW_RW 2
#endif
/* Rows split over KS = 2 or 4 subgroups each (each takes part of K) while the product would run
 * fewer than GEN_MVW_MINWG workgroups and each lane still gets a chunk: the down products' few
 * long rows (Llama-3.2-1B: 2048 rows of 8192, 128 workgroups with KS 1) would leave most SMs idle. */
#ifndef GEN_MVW_MINWG
#define GEN_MVW_MINWG 512
#endif
static uint32_t gen_mvw_ks(const ob_weight *w, int kind) {
    const uint32_t tpr = wg_lim.sg_size ? wg_lim.sg_size : 8u, chunks = (uint32_t)w->cols / 32;
    const uint32_t rpw = 256u / tpr * GEN_MVW_RW * (kind == G_MVNH ? GEN_HEAD_RPG : 1);
    const uint64_t nwg = ((uint64_t)w->rows + rpw - 1) / rpw;
    uint32_t ks = 1;
    while (ks < 4 && nwg * ks < GEN_MVW_MINWG && chunks >= 2 * ks * tpr && 256u / tpr >= 2 * ks) ks *= 2;
    return ks;
}
static int gen_mvw(const ob_weight *w, int kind, uint32_t woff, uint32_t up_off) {
    const uint32_t align = w->type == GGML_Q4_K ? 16 : 2; /* Q4_K: vec4 indices; Q6_K: shifted loads at even offsets */
    return GEN_MVW && (w->type == GGML_Q4_K || (GEN_MVW_Q6 && w->type == GGML_Q6_K)) && kind != G_MM && kind != G_EMBED &&
           w->cols % 256 == 0 && (woff | up_off | (uint32_t)w->row_bytes) % align == 0;
}
/* Q4_K decode products on packed integer dot products (dq_mvw.wgsl's IQ: the workgroup quantises
 * its input into workgroup memory, 2.375 bytes an element, KMAX = the model's n_embd or q_dim,
 * whichever is larger) for inputs up to GEN_MVQ_MAXK elements, where that fits the device's
 * workgroup memory; no K split with it. The longer inputs (the down products: 14,336 elements for
 * Llama-3.1-8B) stay on float products: quantising them in every workgroup cost more than the
 * integer products saved (H100: 8B down 28.3 -> 31.7 us; gate + up 54.7 -> 41.0 us, q 15.5 ->
 * 10.8 us with it; BENCHMARKS.md). GEN_MVQ 0: float products everywhere. */
#ifndef GEN_MVQ
#define GEN_MVQ 1
#endif
#ifndef GEN_MVQ_MAXK
#define GEN_MVQ_MAXK 4096
#endif
static uint32_t gen_mvq_kmax(const wg_ctx *c) {
    const ob_hparams *hp = &c->wm->m->hp;
    uint64_t k = (uint64_t)hp->n_embd;
    if ((uint64_t)hp->q_dim > k) k = (uint64_t)hp->q_dim;
    k = (k + 255) / 256 * 256;
    return GEN_MVQ && k <= GEN_MVQ_MAXK && k * 19 / 8 + 2048 <= wg_lim.max_wg_mem ? (uint32_t)k : 0;
}
static int gen_mvq(const wg_ctx *c, const ob_weight *w) {
    const uint32_t kq = w->type == GGML_Q4_K ? gen_mvq_kmax(c) : 0;
    return kq && (uint32_t)w->cols <= kq;
}
static uint32_t gen_mvw_pipe(wg_ctx *c, int kind, uint32_t type, uint32_t ks, int iq) {
    const int s = type == GGML_Q6_K, k = iq ? 3 : ks == 4 ? 2 : ks == 2 ? 1 : 0;
    if (!c->gw[kind][s][k]) {
        const uint32_t kq = iq ? gen_mvq_kmax(c) : 0;
        const wg_const f[] = {{"NORM", kind == G_MVN || kind == G_MVNGU || kind == G_MVNH},
                              {"GU", kind == G_MVGU || kind == G_MVNGU},
                              {"ACT", (uint32_t)c->wm->m->hp.act},
                              {"RW", GEN_MVW_RW},
                              {"RPG", kind == G_MVNH ? GEN_HEAD_RPG : 1},
                              {"KS", ks},
                              {"WT", type},
                              {"IQ", kq != 0},
                              {"KMAX", kq ? kq : 32}};
        c->gw[kind][s][k] = gpu_pipeline("dq_mvw", 9, f);
    }
    return c->gw[kind][s][k];
}

/* The product or embedding pipeline for a weight type, created on first use. */
static uint32_t gen_pipe(wg_ctx *c, int kind, uint32_t type) {
    static const char *const names[3] = {"dq_mv", "dq_mmt", "dq_embed"};
    if (kind >= G_MVN && !c->gp[kind][type]) { /* dq_mvb with the input's RMSNorm and / or gate+up+act */
        const wg_const f[] = {{"WT", type},
                              {"NORM", kind != G_MVGU},
                              {"GU", kind == G_MVGU || kind == G_MVNGU},
                              {"ACT", (uint32_t)c->wm->m->hp.act},
                              {"RPG", kind == G_MVNH ? GEN_HEAD_RPG : 1}};
        c->gp[kind][type] = gpu_pipeline("dq_mvb", 5, f);
    }
    if (!c->gp[kind][type]) {
        const wg_const wt[] = {{"WT", type}};
        const char *name = kind == G_MV && gen_mvb_type(type) ? "dq_mvb" : kind == G_MM && !gen_mm_tiled() ? "dq_mm" : names[kind];
        c->gp[kind][type] = gpu_pipeline(name, 1, wt);
    }
    return c->gp[kind][type];
}

static int gen_op(wg_ctx *c, const wg_gop *op) {
    if (!c->gq_keep) c->gq_x = 0; /* any other op may write the input quantised last */
    if (c->n_gops == c->cap_gops) {
        int cap = c->cap_gops * 2 + 64;
        wg_gop *n = realloc(c->gops, (size_t)cap * sizeof *n);
        if (!n) return -1;
        c->gops = n;
        c->cap_gops = cap;
    }
    c->gops[c->n_gops] = *op;
    return c->n_gops++;
}

/* A dispatch that is the same for decode and prompts. */
static void gen_op1(wg_ctx *c, int kernel, const wg_params *p, int n, const wg_bind *b, uint32_t gx, int gy, int *ok) {
    uint32_t bg = make_bg(c, kernel, p, n, b, ok);
    wg_gop op = {{c->pipe[kernel], c->pipe[kernel]}, {bg, bg}, {gx, gx}, {(uint8_t)gy, (uint8_t)gy}};
    if (gen_op(c, &op) < 0) *ok = 0;
}

static uint32_t gen_vo(uint32_t v) { return v == GV_NONE ? 0 : v; }

/* A gop's gy for quant.wgsl (the generic plan's subgroup-matrix prompt products): x ceil(tokens * gx / 4), y 1. */
enum { GY_XQ = 200 };

/* The prompt product on subgroup matrices for a weight type (dq_mms.wgsl), created on first use. */
static uint32_t gen_mms_pipe(wg_ctx *c, uint32_t type) {
    if (!c->gms[type]) {
        const wg_const k[] = {{"WT", type}, {"LO", c->xq_lo}, {"SC", c->xq_sc}};
        c->gms[type] = gpu_pipeline("dq_mms", 3, k);
    }
    return c->gms[type];
}

/* Prompt chunks only (the decode form is skipped): quant.wgsl quantises the rows of cols floats
 * in_stride apart in x into c->xq for dq_mms, unless that input is the one quantised last and
 * nothing ran since (q, k, v; gate, up). */
static void gen_xq(wg_ctx *c, uint32_t x, uint32_t in_stride, uint32_t cols, int *ok) {
    if (c->gq_x == x && c->gq_stride == in_stride && c->gq_cols == cols) return;
    wg_params p = base_params(c);
    p.cols = cols;
    p.in_stride = in_stride;
    uint32_t bg = make_bg(c, K_QUANT, &p, 2, (wg_bind[]){{0, x, 0, 0}, {1, c->xq, 0, 0}}, ok);
    wg_gop op = {{c->pipe[K_QUANT], c->pipe[K_QUANT]}, {bg, bg}, {0, cols / 128}, {GY_ONE, GY_XQ}};
    if (gen_op(c, &op) < 0) *ok = 0;
    c->gq_x = x;
    c->gq_stride = in_stride;
    c->gq_cols = cols;
}

/* Y (+)= W X + b over the step's tokens: W at byte woff of wbuf; X rows of W->cols floats
 * in_stride apart; Y rows out_stride apart from out_off (+ row0 of a part). head: the output
 * head's decode form reads the last token's row. Returns the op's index. */
/* nw != GV_NONE: the decode form reads the residual stream c->x and applies the RMSNorm with the
 * weights at nw itself (dq_mvb NORM; the norm's own decode dispatch is then skipped); up != NULL:
 * the decode form is act(W x) * (up x) with up at byte up_off of the same buffer (dq_mvb GU; the up
 * product's and the act's decode dispatches are skipped). Both only for dq_mvb types (gen_fusable). */
static int gen_linear_x(wg_ctx *c, const ob_weight *w, uint32_t wbuf, uint32_t woff, int rows, int row0, uint32_t bias,
                        uint32_t scale, uint32_t x, uint32_t in_stride, uint32_t y, uint32_t out_off, uint32_t out_stride,
                        int resid, int head, uint32_t nw, const ob_weight *up, uint32_t up_off, int *ok) {
    wg_params p = mat_params(c, (uint32_t)rows, (uint32_t)w->cols, (uint32_t)w->row_bytes, woff);
    p.row0 = (uint32_t)row0;
    p.in_stride = in_stride;
    p.out_off = out_off;
    p.out_stride = out_stride;
    p.norm_off = gen_vo(bias);
    p.norm2_off = gen_vo(scale);
    p.flags = (bias != GV_NONE ? 1u : 0u) | (resid ? 2u : 0u) | (scale != GV_NONE ? 8u : 0u);
    /* The prompt form on subgroup matrices (quant, then dq_mms: set below) where the input rows are
     * whole 128-blocks; not the output head's (it runs only for all-logits chunks). */
    const int sgk = c->gsg && !head && w->cols % 128 == 0;
    c->gq_keep = sgk;
    if (sgk) gen_xq(c, x, in_stride, (uint32_t)w->cols, ok);
    const wg_bind b[4] = {{0, wbuf, 0, 0}, {1, x, 0, 0}, {2, y, 0, 0}, {3, c->wm->norm_buf, 0, 0}};
    const wg_bind bx[4] = {{0, wbuf, 0, 0}, {1, c->x, 0, 0}, {2, y, 0, 0}, {3, c->wm->norm_buf, 0, 0}};
    const int kind = nw != GV_NONE ? (up ? G_MVNGU : head ? G_MVNH : G_MVN) : up ? G_MVGU : G_MV;
    const int wide = gen_mvw(w, kind, woff, up ? up_off : 0);
    const int iq = wide && gen_mvq(c, w);
    const uint32_t ks = wide && !iq ? gen_mvw_ks(w, kind) : 1;
    const uint32_t mv = wide ? gen_mvw_pipe(c, kind, w->type, ks, iq) : gen_pipe(c, kind, w->type), mm = gen_pipe(c, G_MM, w->type);
    wg_params pd = p;
    if (head) pd.flags |= 4u;
    if (nw != GV_NONE) {
        pd.in_off = 0;
        pd.in_stride = (uint32_t)c->wm->m->hp.n_embd;
        pd.q_off = nw;
    }
    if (up) pd.v_off = up_off;
    uint32_t rpw = 256u / (wg_lim.sg_size ? wg_lim.sg_size : 8u); /* dq_mv: rows a workgroup (TPR lanes each) */
    if (kind == G_MVNH) rpw *= GEN_HEAD_RPG;
    if (wide) rpw = rpw * GEN_MVW_RW / ks;
    wg_gop op = {{mv, mm},
                 {make_bg_on(c, mv, 0, &pd, 4, nw != GV_NONE ? bx : b, ok), make_bg_on(c, mm, 0, &p, 4, b, ok)},
                 {((uint32_t)rows + rpw - 1) / rpw, ((uint32_t)rows + 63) / 64}, /* dq_mmt, dq_mm: 64 rows */
                 {GY_ONE, gen_mm_tiled() ? GY_MM64 : GY_MM8}};
    if (sgk) { /* the prompt form: dq_mms (32 rows x 64 tokens a workgroup) on the input quant wrote */
        const wg_bind bq[4] = {{0, wbuf, 0, 0}, {1, c->xq, 0, 0}, {2, y, 0, 0}, {3, c->wm->norm_buf, 0, 0}};
        op.pipe[1] = gen_mms_pipe(c, w->type);
        op.bg[1] = make_bg_on(c, op.pipe[1], 0, &p, 4, bq, ok);
        op.gx[1] = ((uint32_t)rows + MMG_TR - 1) / MMG_TR;
        op.gy[1] = GY_MM64;
    }
    int i = gen_op(c, &op);
    c->gq_keep = 0;
    if (i < 0) *ok = 0;
    return i;
}

static int gen_linear_s(wg_ctx *c, const ob_weight *w, uint32_t wbuf, uint32_t woff, int rows, int row0, uint32_t bias,
                        uint32_t scale, uint32_t x, uint32_t in_stride, uint32_t y, uint32_t out_off, uint32_t out_stride,
                        int resid, int head, int *ok) {
    return gen_linear_x(c, w, wbuf, woff, rows, row0, bias, scale, x, in_stride, y, out_off, out_stride, resid, head, GV_NONE,
                        NULL, 0, ok);
}

/* A weight the fused decode forms take: a dq_mvb type. */
static int gen_fusable(const ob_weight *w) { return w && gen_mvb_type(w->type); }

/* y = norm(x) per token over cols floats (kernel K_G_NORM: the family's; K_G_RMS_IN: RMS in place). */
static int gen_norm(wg_ctx *c, int kernel, uint32_t x, uint32_t y, uint32_t cols, uint32_t w, uint32_t b, int *ok) {
    wg_params p = base_params(c);
    p.cols = cols;
    p.in_stride = cols;
    p.out_stride = cols;
    p.norm_off = gen_vo(w);
    p.norm2_off = gen_vo(b);
    gen_op1(c, kernel, &p, 3, (wg_bind[]){{0, x, 0, 0}, {1, y, 0, 0}, {2, c->wm->norm_buf, 0, 0}}, 1, GY_TOK, ok);
    return c->n_gops - 1;
}

static void gen_pipelines(wg_ctx *c) {
    const struct ob_model *m = c->wm->m;
    const ob_hparams *hp = &m->hp;
    const uint32_t hd = (uint32_t)hp->head_dim, f16 = (uint32_t)c->kv_f16;
    const wg_const norm[] = {{"LN", hp->norm == OB_NORM_LAYER}};
    const wg_const rms_in[] = {{"INPLACE", 1}};
    const wg_const qkn[] = {{"INPLACE", 1}, {"QK", 1}};
    const wg_const rope[] = {{"HD", hd}, {"NROT", (uint32_t)hp->n_rot}, {"NEOX", hp->rope == OB_ROPE_NEOX}, {"KV16", f16}};
    const wg_const act[] = {{"ACT", (uint32_t)hp->act}, {"GATED", (uint32_t)hp->ffn_gated}};
    uint32_t hdp = 32; /* attention.wgsl's staged head: the next of 32, 64, 128, 256 (Phi-2's 80: 128) */
    while (hdp < hd) hdp *= 2;
    const wg_const attn[] = {{"HD", hdp}, {"HDR", hd}, {"KV16", f16}, {"QH", attn_heads(hp)}};
    const wg_const attn1[] = {{"HD", hdp}, {"HDR", hd}, {"KV16", f16}, {"SPLITS_MAX", ATT_SPLITS}, {"MERGE", 0},
                              {"ROPE", GEN_ROPE_FUSE}, {"NROT", (uint32_t)hp->n_rot}, {"NEOX", hp->rope == OB_ROPE_NEOX}};
    const wg_const attnm[] = {{"HD", hdp}, {"HDR", hd}, {"KV16", f16}, {"SPLITS_MAX", ATT_SPLITS}, {"MERGE", 1}};
    c->pipe[K_G_NORM] = gpu_pipeline("norm", 1, norm);
    c->pipe[K_G_RMS_IN] = gpu_pipeline("norm", 1, rms_in);
    if (hp->qk_norm) c->pipe[K_G_QKNORM] = gpu_pipeline("norm", 2, qkn);
    c->pipe[K_G_ROPE] = gpu_pipeline("rope", 4, rope);
    c->pipe[K_G_ACT] = gpu_pipeline("act", 2, act);
    c->pipe[K_G_ARGMAX] = gpu_pipeline("argmax", 0, NULL);
    c->pipe[K_ATTN] = gpu_pipeline("attention", 4, attn);
    c->pipe[K_G_ATTN1] = gpu_pipeline(GEN_ROPE_FUSE ? "attn_one_r" : "attn_one", GEN_ROPE_FUSE ? 8 : 5, attn1);
    c->pipe[K_G_ATTNM] = gpu_pipeline("attn_one", 5, attnm);
    c->pipe[K_SAMPLE] = gpu_pipeline("sample", 0, NULL);
    if (c->gsg) {
        const wg_const q[] = {{"LO", c->xq_lo}, {"SC", c->xq_sc}, {"XQ_WG", wg_lim.sg_size != 32}};
        c->pipe[K_QUANT] = gpu_pipeline("quant", 3, q);
    }
}

/* Where q, k, v cannot run as one product but q and k can (a Q4_K_M file's layers with a Q6_K
 * attn_v): q and k as one product, v on its own (one decode dispatch less; GEN_QK_MERGE 0: three). */
#ifndef GEN_QK_MERGE
#define GEN_QK_MERGE 1
#endif
static int gen_qk_merged(const ob_layer *L, const uint8_t *ms, const uint32_t *mo, const uint32_t *vo,
                         const ob_hparams *hp) {
    const ob_weight *q = L->wq, *k = L->wk;
    if (!GEN_QK_MERGE || L->wqkv || !q || !k || !L->wv || L->wq_s || L->wk_s) return 0;
    if (ms[GM_Q] != ms[GM_K] || q->type != k->type || q->row_bytes != k->row_bytes || q->cols != k->cols) return 0;
    if ((uint64_t)mo[GM_K] != mo[GM_Q] + (uint64_t)q->rows * q->row_bytes) return 0;
    const int nb = (vo[GV_BQ] != GV_NONE) + (vo[GV_BK] != GV_NONE);
    return nb == 0 || (nb == 2 && vo[GV_BK] == vo[GV_BQ] + (uint32_t)hp->q_dim);
}

/* q, k and v run as one product when they are one matrix in the layer buffer (the same type and row
 * length, back to back without padding), with their biases adjacent in norm_buf or all absent and
 * no per-tensor scales: their rows then land at their places in the qkv row. 2 dispatches fewer a
 * layer. */
static int gen_qkv_merged(const ob_layer *L, const uint8_t *ms, const uint32_t *mo, const uint32_t *vo,
                          const ob_hparams *hp) {
    const ob_weight *q = L->wq, *k = L->wk, *v = L->wv;
    if (L->wqkv || !q || !k || !v || L->wq_s || L->wk_s || L->wv_s) return 0;
    if (ms[GM_Q] != ms[GM_K] || ms[GM_Q] != ms[GM_V]) return 0; /* in different buffers of a split layer */
    if (q->type != k->type || q->type != v->type || q->row_bytes != k->row_bytes || q->row_bytes != v->row_bytes ||
        q->cols != k->cols || q->cols != v->cols)
        return 0;
    if ((uint64_t)mo[GM_K] != mo[GM_Q] + (uint64_t)q->rows * q->row_bytes ||
        (uint64_t)mo[GM_V] != mo[GM_K] + (uint64_t)k->rows * k->row_bytes)
        return 0;
    const int nb = (vo[GV_BQ] != GV_NONE) + (vo[GV_BK] != GV_NONE) + (vo[GV_BV] != GV_NONE);
    if (nb == 0) return 1;
    return nb == 3 && vo[GV_BK] == vo[GV_BQ] + (uint32_t)hp->q_dim && vo[GV_BV] == vo[GV_BK] + (uint32_t)hp->kv_dim;
}

/* The generic plan's bind groups and dispatch list (see the table above). */
static void gen_program(wg_ctx *c, int *ok) {
    const wg_model *wm = c->wm;
    const struct ob_model *m = wm->m;
    const ob_hparams *hp = &m->hp;
    const uint32_t E = (uint32_t)hp->n_embd, QD = (uint32_t)hp->q_dim, KD = (uint32_t)hp->kv_dim, F = (uint32_t)hp->n_ff;
    const uint32_t V = (uint32_t)hp->n_vocab, QS = QD + 2 * KD, U = (uint32_t)c->B * F; /* u's offset in gu */
    const uint32_t NB = wm->norm_buf;
    wg_params p;
    for (int i = 0; i < wm->n_emb; i++) {
        const ob_weight *te = m->tok_embd;
        p = mat_params(c, (uint32_t)wm->emb[i].rows, E, (uint32_t)te->row_bytes, 0);
        p.row0 = (uint32_t)wm->emb[i].row0;
        p.flags = i == 0; /* the first part records the tokens in the history */
        p.scale = hp->embd_scale;
        uint32_t pipe = gen_pipe(c, G_EMBED, te->type);
        uint32_t bg = make_bg_on(c, pipe, 0, &p, 4,
                                 (wg_bind[]){{0, wm->emb[i].buf, 0, 0}, {1, c->tok, 0, 0}, {2, c->x, 0, 0}, {3, c->hist, 0, 0}}, ok);
        wg_gop op = {{pipe, pipe}, {bg, bg}, {(E + 1023) / 1024, (E + 1023) / 1024}, {GY_TOK, GY_TOK}};
        if (gen_op(c, &op) < 0) *ok = 0;
    }
    /* a matrix's segment buffer and its offset there */
#define WM(i) seg_buf(wm, l, wm->gms[l][i]), mo[i]
    for (int l = 0; l < hp->n_layer; l++) {
        const ob_layer *L = &m->layers[l];
        const uint32_t *mo = wm->gmo[l], *vo = wm->gvo[l];
        /* Decode: an RMSNorm without bias whose only readers are dq_mvb products runs inside them
         * (its own dispatch keeps only its prompt form). */
        const int rms = hp->norm == OB_NORM_RMS && !hp->parallel;
        int ni = gen_norm(c, K_G_NORM, c->x, c->h, E, vo[GV_ATTN_NORM], vo[GV_ATTN_NORM_B], ok);
        uint32_t an = GV_NONE;
        if (*ok && rms && vo[GV_ATTN_NORM] != GV_NONE && vo[GV_ATTN_NORM_B] == GV_NONE &&
            (L->wqkv ? gen_fusable(L->wqkv) : gen_fusable(L->wq) && gen_fusable(L->wk) && gen_fusable(L->wv))) {
            an = vo[GV_ATTN_NORM];
            c->gops[ni].gx[0] = 0;
        }
        if (L->wqkv) {
            gen_linear_x(c, L->wqkv, WM(GM_QKV), (int)QS, 0, vo[GV_BQKV], GV_NONE, c->h, E, c->qkv, 0, QS, 0, 0, an, NULL, 0, ok);
        } else if (gen_qkv_merged(L, wm->gms[l], mo, vo, hp)) {
            gen_linear_x(c, L->wq, WM(GM_Q), (int)QS, 0, vo[GV_BQ], GV_NONE, c->h, E, c->qkv, 0, QS, 0, 0, an, NULL, 0, ok);
        } else if (gen_qk_merged(L, wm->gms[l], mo, vo, hp)) {
            gen_linear_x(c, L->wq, WM(GM_Q), (int)(QD + KD), 0, vo[GV_BQ], GV_NONE, c->h, E, c->qkv, 0, QS, 0, 0, an, NULL, 0, ok);
            gen_linear_x(c, L->wv, WM(GM_V), (int)KD, 0, vo[GV_BV], vo[GV_SV], c->h, E, c->qkv, QD + KD, QS, 0, 0, an, NULL, 0,
                         ok);
        } else {
            gen_linear_x(c, L->wq, WM(GM_Q), (int)QD, 0, vo[GV_BQ], vo[GV_SQ], c->h, E, c->qkv, 0, QS, 0, 0, an, NULL, 0, ok);
            gen_linear_x(c, L->wk, WM(GM_K), (int)KD, 0, vo[GV_BK], vo[GV_SK], c->h, E, c->qkv, QD, QS, 0, 0, an, NULL, 0, ok);
            gen_linear_x(c, L->wv, WM(GM_V), (int)KD, 0, vo[GV_BV], vo[GV_SV], c->h, E, c->qkv, QD + KD, QS, 0, 0, an, NULL, 0,
                         ok);
        }
        if (L->q_norm) { /* q and k heads are contiguous in a qkv row */
            p = base_params(c);
            p.cols = (uint32_t)hp->head_dim;
            p.in_stride = QS;
            p.norm_off = vo[GV_QN];
            p.norm2_off = vo[GV_KN];
            gen_op1(c, K_G_QKNORM, &p, 3, (wg_bind[]){{0, c->qkv, 0, 0}, {1, c->qdum, 0, 0}, {2, NB, 0, 0}},
                    (uint32_t)(hp->n_head + hp->n_head_kv), GY_TOK, ok);
        }
        p = base_params(c);
        gen_op1(c, K_G_ROPE, &p, 3, (wg_bind[]){{0, c->qkv, 0, 0}, {1, c->kv[l], 0, 0}, {2, c->rope, 0, 0}},
                (uint32_t)(hp->n_head + 2 * hp->n_head_kv), GY_TOK, ok);
        if (*ok && GEN_ROPE_FUSE) c->gops[c->n_gops - 1].gx[0] = 0; /* decode: inside attn_one_r */
        p = base_params(c);
        p.scale = hp->attn_scale;
        { /* decode: attn_one.wgsl (attn_one_r: with the RoPE and the cache write), n_head x the step's
           * key ranges, then (with more than one range) its merge, a workgroup per q head; prompts:
           * attention.wgsl */
            const wg_bind ab[5] = {{0, c->qkv, 0, 0}, {1, c->kv[l], 0, 0}, {2, c->att, 0, 0}, {3, c->apart, 0, 0}, {4, c->rope, 0, 0}};
            wg_gop op = {{c->pipe[K_G_ATTN1], c->pipe[K_ATTN]},
                         {make_bg(c, K_G_ATTN1, &p, GEN_ROPE_FUSE ? 5 : 4, ab, ok), make_bg(c, K_ATTN, &p, 3, ab, ok)},
                         {(uint32_t)hp->n_head, (uint32_t)hp->n_head / attn_heads(hp)},
                         {GY_SPLIT, GY_ATTN}};
            if (gen_op(c, &op) < 0) *ok = 0;
            const uint32_t bm = make_bg(c, K_G_ATTNM, &p, 4, ab, ok);
            wg_gop mg = {{c->pipe[K_G_ATTNM], c->pipe[K_G_ATTNM]}, {bm, bm}, {(uint32_t)hp->n_head, 0}, {GY_MERGE, GY_ONE}};
            if (gen_op(c, &mg) < 0) *ok = 0;
        }
        if (L->attn_sub_norm) gen_norm(c, K_G_RMS_IN, c->att, c->qdum, QD, vo[GV_ASUB], GV_NONE, ok);
        gen_linear_s(c, L->wo, WM(GM_O), (int)E, 0, vo[GV_BO], vo[GV_SO], c->att, QD, c->x, 0, E, 1, 0, ok);
        /* parallel: the FFN reads the same h as attention */
        int fi = hp->parallel ? -1 : gen_norm(c, K_G_NORM, c->x, c->h, E, vo[GV_FFN_NORM], vo[GV_FFN_NORM_B], ok);
        uint32_t fnw = GV_NONE;
        if (*ok && fi >= 0 && rms && vo[GV_FFN_NORM] != GV_NONE && vo[GV_FFN_NORM_B] == GV_NONE &&
            gen_fusable(L->w_up) && (!hp->ffn_gated || gen_fusable(L->w_gate))) {
            fnw = vo[GV_FFN_NORM];
            c->gops[fi].gx[0] = 0;
        }
        /* Decode: gate, up and act as one dq_mvb GU dispatch where gate and up are alike and plain. */
        const ob_weight *G = L->w_gate, *Up = L->w_up;
        const int gu = hp->ffn_gated && gen_fusable(G) && gen_fusable(Up) && G->type == Up->type &&
                       G->row_bytes == Up->row_bytes && G->cols == Up->cols && G->rows == Up->rows &&
                       wm->gms[l][GM_GATE] == wm->gms[l][GM_UP] && vo[GV_BGATE] == GV_NONE && vo[GV_BUP] == GV_NONE &&
                       vo[GV_SGATE] == GV_NONE && vo[GV_SUP] == GV_NONE && hp->act >= 0 && hp->act <= 2;
        if (hp->ffn_gated) {
            gen_linear_x(c, G, WM(GM_GATE), (int)F, 0, vo[GV_BGATE], vo[GV_SGATE], c->h, E, c->gu, 0, F, 0, 0, fnw, gu ? Up : NULL,
                         mo[GM_UP], ok);
            int ui = gen_linear_x(c, Up, WM(GM_UP), (int)F, 0, vo[GV_BUP], vo[GV_SUP], c->h, E, c->gu, U, F, 0, 0, fnw, NULL, 0, ok);
            if (*ok && gu) c->gops[ui].gx[0] = 0;
        } else {
            gen_linear_x(c, Up, WM(GM_UP), (int)F, 0, vo[GV_BUP], vo[GV_SUP], c->h, E, c->gu, 0, F, 0, 0, fnw, NULL, 0, ok);
        }
        p = base_params(c);
        p.in_off = U;
        gen_op1(c, K_G_ACT, &p, 1, (wg_bind[]){{0, c->gu, 0, 0}}, (F + 255) / 256, GY_TOK, ok);
        if (*ok && gu) c->gops[c->n_gops - 1].gx[0] = 0;
        if (L->ffn_sub_norm) gen_norm(c, K_G_RMS_IN, c->gu, c->qdum, F, vo[GV_FSUB], GV_NONE, ok);
        gen_linear_s(c, L->w_down, WM(GM_DOWN), (int)E, 0, vo[GV_BDOWN], vo[GV_SDOWN], c->gu, F, c->x, 0, E, 1, 0, ok);
    }
#undef WM
    c->g_layers_end = c->n_gops;
    c->g_nout = gen_norm(c, K_G_NORM, c->x, c->h, E, wm->gv_out[0], wm->gv_out[1], ok);
    uint32_t onw = GV_NONE; /* the output norm inside the head's decode form, as in the layers */
    if (*ok && hp->norm == OB_NORM_RMS && wm->gv_out[0] != GV_NONE && wm->gv_out[1] == GV_NONE && gen_fusable(m->output)) {
        onw = wm->gv_out[0];
        c->gops[c->g_nout].gx[0] = 0;
    }
    c->g_head_mv = c->n_gops;
    for (int i = 0; i < wm->n_out; i++) /* decode form: the last token; prompt form: every token */
        gen_linear_x(c, m->output, wm->out[i].buf, 0, wm->out[i].rows, wm->out[i].row0, wm->gv_out[2], GV_NONE, c->h, E, c->logits,
                     0, V, 0, 1, onw, NULL, 0, ok);
    p = base_params(c);
    p.rows = V;
    p.cols = (uint32_t)c->head_rows; /* rows per slot of c->am, as sample.wgsl reads them */
    c->g_argmax = c->n_gops;
    gen_op1(c, K_G_ARGMAX, &p, 2, (wg_bind[]){{0, c->logits, 0, 0}, {1, c->am, 0, 0}}, (V + p.cols - 1) / p.cols, GY_ONE, ok);
    p = base_params(c);
    p.rows = V;
    p.cols = (uint32_t)c->head_rows;
    c->bg_sample = make_bg(c, K_SAMPLE, &p, 4,
                           (wg_bind[]){{0, c->logits, 0, 0}, {1, c->hist, 0, 0}, {2, c->tok, 0, 0}, {3, c->am, 0, 0}}, ok);
}

static void gen_run(const wg_ctx *c, int i, int prompt, uint32_t nk) {
    const wg_gop *op = &c->gops[i];
    if (!op->gx[prompt]) return; /* a decode form folded into the next product (dq_mvb NORM / GU) */
    if (op->gy[prompt] == GY_XQ) { /* quant.wgsl: 4 (token, 128-block)s a workgroup */
        gpu_dispatch(op->pipe[prompt], op->bg[prompt], (nk * op->gx[prompt] + 3) / 4, 1);
        return;
    }
    const uint32_t bt = 32 / attn_heads(&c->wm->m->hp); /* attention.wgsl: tokens a workgroup */
    uint32_t gy = 1;
    switch (op->gy[prompt]) {
    case GY_TOK: gy = nk; break;
    case GY_MM8: gy = (nk + 7) / 8; break;
    case GY_MM64: gy = (nk + 63) / 64; break;
    case GY_ATTN: gy = (nk + bt - 1) / bt; break;
    case GY_SPLIT: gy = c->step_host.splits; break;
    case GY_MERGE:
        if (c->step_host.splits <= 1) return; /* attn_one wrote its output itself */
        break;
    default: break;
    }
    gpu_dispatch(op->pipe[prompt], op->bg[prompt], op->gx[prompt], gy);
}

/* One step's dispatches of the generic plan: the layers, then the output norm and head (every
 * token's logits with all, else the last token's) and the argmax for the sampler. */
static void gen_step(const wg_ctx *c, uint32_t nk, int all, int head, int sample) {
    const int prompt = nk > 1;
    for (int i = 0; i < c->g_layers_end; i++) gen_run(c, i, prompt, nk);
    if (!all && !head && !sample) return;
    gen_run(c, c->g_nout, prompt, nk);
    for (int i = 0; i < c->wm->n_out; i++) gen_run(c, c->g_head_mv + i, all && prompt, nk);
    if (sample) gen_run(c, c->g_argmax, 0, nk);
}

/* ob_context_new: a context of p->n_ctx positions (p->kv_f16: the KV cache in f16; p->n_batch > 0
 * caps the tokens of a prompt chunk). Command list: buffers, pipelines, bind groups, parameters
 * and the RoPE table. */
static ob_status wg_ctx_init(void *mstate, const ob_context_params *prm, void **out) {
    *out = NULL;
    wg_model *wm = mstate;
    if (!wm->ready) return ob_fail(OB_ERR_ARG, "the model's weights are not uploaded yet");
    const ob_hparams *hp = &wm->m->hp;
    const int n_ctx = prm->n_ctx, kv_f16 = prm->kv_f16 != 0, max_batch = prm->n_batch;
    uint64_t cap = binding_cap();
    uint64_t kv_bytes = 2ull * (uint64_t)n_ctx * (uint64_t)hp->kv_dim * (kv_f16 ? 2 : 4);
    if (kv_bytes > cap)
        return ob_fail(OB_ERR_UNSUPPORTED, "a KV cache of %d positions does not fit one GPU storage binding%s", n_ctx,
                       kv_f16 ? "" : " (try the f16 cache)");
    const uint64_t E = (uint64_t)hp->n_embd, QD = (uint64_t)hp->q_dim, KD = (uint64_t)hp->kv_dim, F = (uint64_t)hp->n_ff;
    const uint64_t V = (uint64_t)hp->n_vocab;
    /* Tokens per prompt chunk: as many as fit every scratch binding, at most 512. */
    uint64_t widest = 2 * F > QD + 2 * KD ? 2 * F : QD + 2 * KD;
    if (widest < E) widest = E;
    uint64_t B = cap / (widest * 4);
    if (B > 512) B = 512;
    if (max_batch > 0 && B > (uint64_t)max_batch) B = (uint64_t)max_batch;
    if (B > (uint64_t)n_ctx) B = (uint64_t)n_ctx;
    if (B < 1) return ob_fail(OB_ERR_UNSUPPORTED, "the model is too wide for the GPU's storage bindings");
    uint64_t L = cap / (V * 4);
    if (L > B) L = B;
    if (L < 1) return ob_fail(OB_ERR_UNSUPPORTED, "the vocabulary is too large for the GPU's storage bindings");

    wg_ctx *c = calloc(1, sizeof *c);
    if (!c) return ob_fail(OB_ERR_NOMEM, "out of memory");
    c->wm = wm;
    c->n_ctx = n_ctx;
    c->B = (int)B;
    c->Lrows = (int)L;
    c->kv_f16 = kv_f16 != 0;
    c->mv_rows = 32;
    c->head_rows = wg_lim.cpu ? HEAD_ROWS_MAX : WG_HEAD_ROWS;
    /* Prompt products on a quantised input (subgroup matrices, else packed integer dot
     * products): it holds the widest input's two int8 planes and scales for the chunk's tokens
     * rounded up to the tile of mm_sg and of mm_dp. */
    {
        uint64_t toks = (B + MMD_TT - 1) / MMD_TT * MMD_TT, maxc = E > QD ? E : QD;
        if (F > maxc) maxc = F;
        uint64_t lo = toks * maxc / 4, words = 2 * lo + toks * maxc / 128;
        c->sgmm = !wm->generic && wg_lim.sgmat && wg_lim.max_wg_mem >= MMS_WG_MEM && words * 4 <= cap;
        /* Not on a CPU adapter unless asked (tests): there mm_dp's 64-token tiles cost a short
         * chunk (all-logits chunks of a few tokens) many times the f32 matmul's work. */
        c->dpmm = !wm->generic && !c->sgmm && wg_lim.max_wg_mem >= MMD_WG_MEM && words * 4 <= cap &&
                  (!wg_lim.cpu || wg_lim.dp_cpu);
        c->xq_lo = (uint32_t)lo;
        c->xq_sc = (uint32_t)(2 * lo);
        /* a head of 128 dims is one 128-block of the Wo input: attention quantises its output itself */
        c->attq = (c->sgmm || c->dpmm) && hp->head_dim == QK1_0;
        /* the generic plan: dq_mms on subgroup matrices (not on a CPU adapter: none has them) */
        c->gsg = wm->generic && ((wg_lim.sgmat && !wg_lim.cpu) || (wg_lim.sgmat_emu && wg_lim.sg_size)) && wg_lim.max_wg_mem >= MMG_WG_MEM &&
                 words * 4 <= cap;
    }
    c->kv = calloc((size_t)hp->n_layer, sizeof *c->kv);
    c->bg = calloc((size_t)hp->n_layer * BG_PER_LAYER, sizeof *c->bg);
    c->bg_embed = calloc(2 * (size_t)wm->n_emb, sizeof *c->bg_embed);
    c->bg_head = calloc(2 * (size_t)wm->n_out, sizeof *c->bg_head);
    c->bg_mhead = calloc((size_t)wm->n_out, sizeof *c->bg_mhead);
    int half = hp->n_rot / 2; /* = head_dim / 2 in the fused plan */
    c->rope_host = malloc((size_t)n_ctx * (size_t)half * 2 * sizeof(float));
    if (!c->kv || !c->bg || !c->bg_embed || !c->bg_head || !c->bg_mhead || !c->rope_host) {
        wg_ctx_free(c);
        return ob_fail(OB_ERR_NOMEM, "out of memory for a context of %d positions", n_ctx);
    }
    /* RoPE angles exactly as forward.c computes them: in double (with the frequency factors and
     * the position scale), then rounded to float. */
    for (int i = 0; i < half; i++) {
        double inv = pow((double)hp->rope_theta, -2.0 * i / hp->n_rot);
        if (wm->m->rope_freqs) inv /= (double)wm->m->rope_freqs[i];
        for (int p = 0; p < n_ctx; p++) {
            double ang = (double)p * (double)hp->rope_scale * inv;
            c->rope_host[((size_t)p * half + i) * 2] = (float)cos(ang);
            c->rope_host[((size_t)p * half + i) * 2 + 1] = (float)sin(ang);
        }
    }
    cmd_reset();
    c->id_first = wg_next_id;
    c->x = gpu_buffer(B * E * 4, WG_STORAGE);
    c->h = gpu_buffer(B * E * 4, WG_STORAGE);
    c->qkv = gpu_buffer(B * (QD + 2 * KD) * 4, WG_STORAGE);
    c->att = gpu_buffer(B * QD * 4, WG_STORAGE);
    {
        uint64_t hs = (uint64_t)hp->head_dim; /* the generic plan: attn_one's staged head (HD) */
        if (wm->generic)
            for (hs = 32; hs < (uint64_t)hp->head_dim; hs *= 2) {}
        c->apart = gpu_buffer((uint64_t)hp->n_head * ATT_SPLITS * (hs + 4) * 4, WG_STORAGE);
    }
    c->am = gpu_buffer(((V + (uint64_t)c->head_rows - 1) / (uint64_t)c->head_rows + 1) * 8, WG_STORAGE);
    c->gu = gpu_buffer(B * 2 * F * 4, WG_STORAGE);
    if (!wm->generic) {
        c->qe = gpu_buffer(E / 32 * 80, WG_STORAGE);
        c->qf = gpu_buffer(F / 32 * 80, WG_STORAGE);
    }
    c->qdum = gpu_buffer(80, WG_STORAGE);
    c->logits = gpu_buffer(L * V * 4, WG_STORAGE | WG_COPY_SRC);
    if (c->sgmm || c->dpmm || c->gsg) c->xq = gpu_buffer(((uint64_t)c->xq_sc + (uint64_t)c->xq_lo / 32) * 4, WG_STORAGE);
    c->tok = gpu_buffer(B * 4, WG_STORAGE | WG_COPY_SRC);
    c->hist = gpu_buffer((uint64_t)n_ctx * 4, WG_STORAGE);
    c->rope = gpu_buffer((uint64_t)n_ctx * half * 8, WG_STORAGE);
    c->step = gpu_buffer(sizeof(wg_step), WG_UNIFORM);
    c->samp = gpu_buffer(sizeof(wg_samp), WG_UNIFORM);
    for (int l = 0; l < hp->n_layer; l++) c->kv[l] = gpu_buffer(kv_bytes, WG_STORAGE);
    /* Parameter slots: count them first so that the uniform buffer can be created before the
     * bind groups that point into it. */
    int n_slots = hp->n_layer * BG_PER_LAYER + 3 + 2 * wm->n_emb + 3 * wm->n_out + ((c->sgmm || c->dpmm) && !c->attq ? 1 : 0);
    /* The generic plan: at most 24 slots a layer (the products take two: decode and prompt). */
    if (wm->generic) n_slots = hp->n_layer * 24 + 4 + wm->n_emb + 2 * wm->n_out;
    if (c->gsg) n_slots += hp->n_layer * 12; /* quant of the products' inputs (4, 5 with a sub-norm) and dq_mms's (7) a layer */
    c->params = gpu_buffer((uint64_t)n_slots * WG_SLOT, WG_UNIFORM);
    int ok = 1;
    if (wm->generic) {
        gen_pipelines(c);
        gen_program(c, &ok);
    } else {
        ctx_pipelines(c);
        ctx_bindgroups(c, &ok);
    }
    c->id_end = wg_next_id;
    if (ok && (wm->generic ? c->n_slots <= n_slots : c->n_slots == n_slots)) {
        gpu_write(c->params, 0, c->slots, (uint32_t)n_slots * WG_SLOT);
        gpu_write(c->rope, 0, c->rope_host, (uint32_t)((size_t)n_ctx * half * 8));
        wg_step s0 = {0, 0, 0, 0, 1, {0, 0, 0}};
        c->step_host = s0;
        gpu_write(c->step, 0, &c->step_host, sizeof c->step_host);
    } else {
        ok = 0;
    }
    if (!ok || wg_cmd.oom) {
        /* The host does not run this list, so nothing was created on the GPU. */
        c->id_first = c->id_end = 0;
        wg_ctx_free(c);
        return ob_fail(OB_ERR_NOMEM, "out of memory creating a GPU context");
    }
    c->sp = ob_sampling_default();
    c->sp.temperature = 0;
    *out = c;
    return OB_OK;
}

static void wg_ctx_free(void *cstate) {
    wg_ctx *c = cstate;
    if (!c) return;
    cmd_reset();
    gpu_free_range(c->id_first, c->id_end);
    free(c->kv);
    free(c->bg);
    free(c->bg_embed);
    free(c->bg_head);
    free(c->bg_mhead);
    free(c->slots);
    free(c->rope_host);
    free(c->gops);
    free(c);
}

/* 1 if the GPU sampler implements the current settings. */
static int gpu_samples(const wg_ctx *c) {
    const ob_sampling *p = &c->sp;
    return p->temperature <= 0 || (p->top_k >= 1 && p->top_k <= 256 && p->top_k < c->wm->m->hp.n_vocab);
}

/* Sampling settings for WG_STEP_SAMPLE (the seed restarts the random stream). The GPU samples
 * greedily, or with top-k in 1..256 (then temperature, top-p, min-p); for other settings the core
 * samples on the host from read-back logits. */
static ob_status wg_set_sampling(void *cstate, const ob_sampling *p, int *on_device) {
    wg_ctx *c = cstate;
    ob_sampler *probe = NULL;
    ob_status st = ob_sampler_new(p, 1, &probe); /* the same validation as the CPU sampler */
    ob_sampler_free(probe);
    if (st) return st;
    c->sp = *p;
    c->sp_set = 1;
    ob_rng_seed(c->rng, p->seed);
    *on_device = gpu_samples(c);
    return OB_OK;
}

/* A prompt chunk's product (bind group from mm_bg) of rows x cols over n tokens. On a quantised
 * input quant.wgsl first quantises it through bind group qbg (0: already done; 32 invocations
 * per (token, 128-block), four a workgroup), then mm_sg.wgsl takes tiles of MMS_TR rows x MMS_TT
 * tokens, mm_dp.wgsl of MMD_TR x MMD_TT. */
static void mm_step(const wg_ctx *c, int resid, uint32_t bg, uint32_t qbg, uint32_t rows, uint32_t cols, uint32_t n) {
    if (!c->sgmm && !c->dpmm) {
        mm_dispatch(c->pipe[resid ? K_MM_RES : K_MM], bg, rows, n);
        return;
    }
    if (qbg) gpu_dispatch(c->pipe[K_QUANT], qbg, (n * (cols / QK1_0) + 3) / 4, 1);
    const uint32_t tr = c->sgmm ? MMS_TR : MMD_TR, tt = c->sgmm ? MMS_TT : MMD_TT;
    gpu_dispatch(c->pipe[resid ? K_MMS_RES : K_MMS], bg, (rows + tr - 1) / tr, (n + tt - 1) / tt);
}

/* One forward step over up to a chunk of tokens at position pos (backend.h's step_begin; the core
 * checked the token ids and the room in the context). *taken: how many tokens it took (the core
 * calls again for the rest). The command list: parameter writes, the
 * dispatches of one compute pass, then the reads (in order: logits if asked, the sampled token if
 * asked; GPU sampling happens only on the step that takes the last of the n tokens). With
 * WG_STEP_FEED the input is the token the previous step sampled (tokens is ignored, n = 1). */
static ob_status wg_step_begin(void *cstate, const ob_token *tokens, int n, int pos_in, int flags, int *taken) {
    wg_ctx *c = cstate;
    c->n_past = pos_in;
    const wg_model *wm = c->wm;
    const struct ob_model *m = wm->m;
    const ob_hparams *hp = &m->hp;
    const int feed = flags & WG_STEP_FEED, all = flags & WG_STEP_ALL;
    *taken = 0;
    if (n <= 0 || (!feed && !tokens) || (feed && n != 1)) return ob_fail(OB_ERR_ARG, "wg_step: bad arguments");
    int k = n < c->B ? n : c->B;
    if (all && k > c->Lrows) k = c->Lrows;
    if (k > c->n_ctx - c->n_past)
        return ob_fail(OB_ERR_CONTEXT, "%d tokens do not fit: %d of %d context positions are free", k,
                       c->n_ctx - c->n_past, c->n_ctx);
    const int last_chunk = k == n;
    const int sample = (flags & WG_STEP_SAMPLE) && last_chunk && !all;
    if (sample && !gpu_samples(c))
        return ob_fail(OB_ERR_UNSUPPORTED, "these sampling settings run on the host (read the logits back)");
    const int want_logits = (flags & (WG_STEP_LOGITS | WG_STEP_ALL)) && (all || last_chunk);
    const uint32_t pos = (uint32_t)c->n_past, nk = (uint32_t)k;

    cmd_reset();
    /* Decode attention: ranges of at least ATT_TILE keys, at most ATT_SPLITS of them (the generic
     * plan: gen_att_splits). */
    uint32_t splits = (pos + 1 + ATT_TILE - 1) / ATT_TILE;
    if (splits > ATT_SPLITS) splits = ATT_SPLITS;
    if (wm->generic) splits = gen_att_splits(hp, pos);
    c->step_host = (wg_step){nk, pos, nk - 1, pos + nk, splits, {0, 0, 0}};
    gpu_write(c->step, 0, &c->step_host, sizeof c->step_host);
    if (!feed) gpu_write(c->tok, 0, tokens, nk * 4);
    if (sample) {
        const ob_sampling *p = &c->sp;
        wg_samp s;
        memset(&s, 0, sizeof s);
        s.temp = p->temperature;
        s.mode = p->temperature > 0;
        s.top_k = p->top_k > 0 ? (uint32_t)p->top_k : 0;
        s.top_p = p->top_p;
        s.min_p = p->min_p;
        s.rep = p->repeat_penalty;
        s.pres = p->presence_penalty;
        s.freq = p->frequency_penalty;
        s.last_n = p->repeat_last_n;
        s.pen_on = p->repeat_last_n != 0 &&
                   (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f);
        /* One draw per sampled token, as src/sample.c draws. */
        s.u = p->temperature > 0 ? (float)ob_rng_uniform(c->rng) : 0.0f;
        c->samp_host = s;
        gpu_write(c->samp, 0, &c->samp_host, sizeof c->samp_host);
    }
    const uint32_t E = (uint32_t)hp->n_embd, QD = (uint32_t)hp->q_dim, KD = (uint32_t)hp->kv_dim, F = (uint32_t)hp->n_ff;
    const uint32_t QS = QD + 2 * KD, R = (uint32_t)c->mv_rows;
    const uint32_t *P = c->pipe;
    const int dec = k == 1; /* decode kernels (pre-quantised inputs) */
    /* with quantised products rmsnorm writes their input */
    const uint32_t norm_pipe = P[c->sgmm || c->dpmm ? K_RMSNORM_Q : K_RMSNORM];
    if (wm->generic) gen_step(c, nk, all, want_logits, sample);
    for (int i = 0; !wm->generic && i < wm->n_emb; i++)
        gpu_dispatch(P[dec ? K_EMBED_Q : K_EMBED], c->bg_embed[dec * wm->n_emb + i], E / QK1_0, nk);
    for (int l = 0; !wm->generic && l < hp->n_layer; l++) {
        const uint32_t *bg = c->bg + (size_t)l * BG_PER_LAYER;
        if (dec) {
            gpu_dispatch(P[K_MV_QKV], bg[BG_QKV], (QS + R - 1) / R + c->pf_qkv, 1);
            gpu_dispatch(P[K_ADEC], bg[BG_ADEC], (uint32_t)hp->n_head + c->pf_att, c->step_host.splits);
            gpu_dispatch(P[K_MV_WO], bg[BG_WO], (E + R - 1) / R, 1);
            gpu_dispatch(P[K_GATEUP], bg[BG_GU], (F + R - 1) / R + c->pf_gu, 1);
            gpu_dispatch(P[K_MV_DOWN], bg[BG_DOWN], (E + R - 1) / R, 1);
        } else {
            gpu_dispatch(norm_pipe, bg[BG_N1], nk, 1);
            mm_step(c, 0, bg[BG_MQKV], 0, QS, E, nk);
            /* qk_rope: 256 / TPR heads of a token a workgroup (TPR as gpu_pipeline sets it) */
            const uint32_t hpw = 256u / (wg_lim.sg_size ? wg_lim.sg_size : 8u);
            gpu_dispatch(P[K_QKROPE], bg[BG_ROPE], ((uint32_t)(hp->n_head + 2 * hp->n_head_kv) + hpw - 1) / hpw, nk);
            const uint32_t qh = attn_heads(hp), bt = 32 / qh; /* q heads, tokens a workgroup */
            gpu_dispatch(P[c->attq ? K_ATTN_Q : K_ATTN], bg[BG_ATTN], (uint32_t)hp->n_head / qh, (nk + bt - 1) / bt);
            mm_step(c, 1, bg[BG_MO], c->attq ? 0 : c->bg_qatt, E, QD, nk);
            gpu_dispatch(norm_pipe, bg[BG_N2], nk, 1);
            mm_step(c, 0, bg[BG_MGU], 0, 2 * F, E, nk);
            if (c->sgmm || c->dpmm) /* 8 blocks of 128 a workgroup, written quantised */
                gpu_dispatch(P[K_SWIGLU_Q], c->bg_swiglu, (F / QK1_0 + 7) / 8, nk);
            else
                gpu_dispatch(P[K_SWIGLU], c->bg_swiglu, (F + 255) / 256, nk);
            mm_step(c, 1, bg[BG_MDOWN], 0, E, F, nk);
        }
    }
    if (wm->generic) {
        /* gen_step dispatched the head and the argmax */
    } else if (all) {
        gpu_dispatch(norm_pipe, c->bg_nout, nk, 1);
        for (int i = 0; i < wm->n_out; i++) /* the parts share one input */
            mm_step(c, 0, c->bg_mhead[i], 0, (uint32_t)wm->out[i].rows, E, nk);
    } else if (want_logits || sample) {
        for (int i = 0; i < wm->n_out; i++) {
            uint32_t HR = (uint32_t)c->head_rows;
            gpu_dispatch(P[dec ? K_MV_HEAD_Q : K_MV_HEAD], c->bg_head[dec * wm->n_out + i],
                         ((uint32_t)wm->out[i].rows + HR - 1) / HR, 1);
        }
    }
    if (want_logits) gpu_read(c->logits, 0, (all ? nk : 1) * (uint32_t)hp->n_vocab * 4);
    if (sample) {
        gpu_dispatch(P[K_SAMPLE], c->bg_sample, 1, 1);
        gpu_read(c->tok, 0, 4);
    }
    if (wg_cmd.oom) return cmd_status();
    c->n_past += k;
    *taken = k;
    return OB_OK;
}

static int wg_supported(void) { return wg_lim.attached; }

const ob_backend ob_backend_webgpu = {
    .name = "webgpu",
    .streams_weights = 1,
    .supported = wg_supported,
    .model_init = wg_model_init,
    .model_free = wg_model_free,
    .ctx_init = wg_ctx_init,
    .ctx_free = wg_ctx_free,
    .forward = NULL, /* asynchronous: */
    .step_begin = wg_step_begin,
    .set_sampling = wg_set_sampling,
};

/* ---- test hooks: the scalar reference, for the kernel tests (tests/webgpu.test.mjs) ----------- */

/* y[t] = W x[t] for a Q1_0 matrix of rows x cols at w (cols a multiple of 128), t < n. */
WG_API void ob_wgpu_ref_matmul(const uint8_t *w, int rows, int cols, const float *x, float *y, int n) {
    ob_weight wt;
    memset(&wt, 0, sizeof wt);
    wt.type = GGML_Q1_0;
    wt.rows = rows;
    wt.cols = cols;
    wt.row_bytes = (size_t)(cols / QK1_0) * sizeof(block_q1_0);
    wt.data = w;
    scalar_matmul(NULL, &wt, x, y, n);
}

/* Causal attention of n tokens at positions pos.. over caches k, v ([pos + n][kv_dim]). */
WG_API void ob_wgpu_ref_attention(const float *q, const float *k, const float *v, float *out, int n, int pos, int n_head,
                                  int n_head_kv, int head_dim) {
    ob_attn_args a = {q, k, v, out, n, pos, n_head, n_head_kv, head_dim, 1.0f / sqrtf((float)head_dim)};
    scalar_attention(NULL, &a);
}

#else
/* Native builds have no WebGPU backend. */
typedef int ob_backend_webgpu_unused;
#endif
