/* model.h — a loaded model as plain data: hyperparameters, weight views into the file, tokenizer.
 *
 * Weights are not copied: an ob_weight points into the mapped file (or the caller's buffer). Small
 * vectors (norm weights) are converted to owned float arrays at load time. Every shape has been
 * validated against the hyperparameters before a backend sees the model.
 */
#ifndef OB_MODEL_H
#define OB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "gguf.h"
#include "onebit.h"
#include "tokenizer.h"

/* A 2-D weight matrix W[rows][cols]; y = W x maps cols inputs to rows outputs. */
typedef struct ob_weight {
    uint32_t type;          /* enum ggml_type: any row of the type table (quant.h) */
    int rows, cols;
    size_t row_bytes;       /* bytes of one row in the file */
    const uint8_t *data;    /* rows * row_bytes bytes; NULL when the file is only partly in memory */
    uint64_t offset;        /* in the file (for backends that upload weights themselves) */
    int id;                 /* index into model->weights, for backends that keep per-weight state */
} ob_weight;

/* ---- the family as data ----------------------------------------------------------------------
 * An architecture is a set of flags over one layer loop (forward.c, tests/ref_forward.c, the
 * WebGPU plan). src/core/arch.c fills them per architecture from the GGUF keys; which tensors a
 * layer must have follows from the flags (arch.c's tensor table), and optional ones (biases,
 * rope_freqs) are NULL when absent. */
typedef enum { OB_NORM_RMS = 0, OB_NORM_LAYER = 1 } ob_norm_kind;   /* LayerNorm: mean removed, + bias */
typedef enum { OB_ACT_SILU = 0, OB_ACT_GELU = 1, OB_ACT_RELU2 = 2 } ob_act_kind; /* GELU: tanh form */
typedef enum { OB_ROPE_NORM = 0, OB_ROPE_NEOX = 1 } ob_rope_kind;   /* adjacent pairs / halves */

typedef struct ob_hparams {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    int q_dim, kv_dim;      /* n_head * head_dim, n_head_kv * head_dim */
    float rope_theta;
    float rope_scale;       /* positions are multiplied by it (linear RoPE scaling: 1 / factor) */
    float norm_eps;         /* RMSNorm or LayerNorm epsilon */
    /* flags */
    int norm;               /* ob_norm_kind of every norm but QK-norm and sub-norms (always RMS) */
    int act;                /* ob_act_kind of the FFN */
    int ffn_gated;          /* 1: down(act(gate h) * up h); 0: down(act(up h)) */
    int parallel;           /* 1: x += attn(h) + ffn(h) from one input norm (no ffn_norm) */
    int qk_norm;            /* per-head RMSNorm of q and k before RoPE (attn_q_norm, attn_k_norm) */
    int rope;               /* ob_rope_kind */
    int n_rot;              /* rotary dimensions of a head (<= head_dim, even): partial rotary */
    int sub_norm;           /* BitNet: RMSNorm of the attention output before Wo, of the FFN
                             * hidden vector before Wdown (attn_sub_norm, ffn_sub_norm) */
    float embd_scale;       /* token embeddings are multiplied by it (Gemma: sqrt(n_embd)); 1 = none */
    float attn_scale;       /* scores are q.k * attn_scale (1/sqrt(head_dim)) */
} ob_hparams;

/* One layer. Vectors are owned float arrays; NULL = absent (optional entries, or not used by the
 * family's flags). Shapes: E = n_embd, QD = q_dim, KD = kv_dim, F = n_ff, HD = head_dim. */
typedef struct ob_layer {
    float *attn_norm, *attn_norm_b;   /* [E]; _b only with LayerNorm */
    ob_weight *wq;                    /* [QD][E] */
    ob_weight *wk, *wv;               /* [KD][E] */
    ob_weight *wqkv;                  /* [QD + 2 KD][E]: fused q,k,v rows (then wq/wk/wv are NULL) */
    float *bq, *bk, *bv;              /* [QD], [KD], [KD] optional biases */
    float *bqkv;                      /* [QD + 2 KD] optional, with wqkv */
    float *q_norm, *k_norm;           /* [HD] with qk_norm */
    float *attn_sub_norm;             /* [QD] with sub_norm */
    ob_weight *wo;                    /* [E][QD] */
    float *bo;                        /* [E] optional */
    float *ffn_norm, *ffn_norm_b;     /* [E] unless parallel; _b only with LayerNorm */
    ob_weight *w_gate, *w_up;         /* [F][E]; w_gate only when ffn_gated */
    float *b_gate, *b_up;             /* [F] optional */
    float *ffn_sub_norm;              /* [F] with sub_norm */
    ob_weight *w_down;                /* [E][F] */
    float *b_down;                    /* [E] optional */
    /* BitNet (llama.cpp's `bitnet`): optional per-tensor scales [1], multiplying a product's
     * output (before its bias): y = (W x) * s + b. */
    float *wq_s, *wk_s, *wv_s, *wo_s, *w_gate_s, *w_up_s, *w_down_s;
} ob_layer;

struct ob_backend;

/* A vector whose bytes lie beyond the in-memory prefix of a partially loaded model: the host copies
 * the file bytes [t->offset, t->offset + t->nbytes) into raw, then model_complete converts them. */
typedef struct ob_pending_vec {
    const gguf_tensor *t;
    uint8_t *raw;           /* [t->nbytes] filled by the host */
    float *dst;             /* [n] the model's vector */
    int n;
} ob_pending_vec;

struct ob_model {
    gguf_file file;
    ob_hparams hp;
    int n_weights;
    ob_weight *weights;     /* [n_weights]: every matrix, so backends can walk them */
    ob_weight *tok_embd;    /* [n_vocab][n_embd] */
    ob_weight *output;      /* [n_vocab][n_embd]; == tok_embd when tied */
    float *output_norm;     /* [n_embd] */
    float *output_norm_b;   /* [n_embd] with LayerNorm */
    float *output_b;        /* [n_vocab] optional output bias */
    float *rope_freqs;      /* [n_rot / 2] optional frequency divisors (Llama 3.1), else NULL */
    ob_layer *layers;       /* [n_layer] */
    int tied;
    int vocab_only;         /* loaded with ob_model_params.vocab_only: tokenizer and metadata only */
    uint64_t n_params, weight_bytes;

    tok_tokenizer *tok;
    ob_token bos, eos, eot, eot2;
    int add_bos, add_eos;   /* tokenizer.ggml.add_bos_token / add_eos_token */
    int n_eog;
    ob_token *eog;          /* [n_eog] end-of-generation tokens, from the file's metadata */
    struct jinja_tmpl *tmpl; /* the parsed chat template; NULL when absent or when it does not parse */
    char *tmpl_err;         /* why it does not parse (NULL otherwise) */
    char *arch, *name, *chat_template;
    const struct ob_family *family; /* family.h; NULL for vocabulary-only models */
    char *desc;             /* one line: the family and its flags as run (ob_model_describe) */

    char **meta_cache;      /* [n_kv] rendered metadata values, filled on demand */
    _Atomic(struct gen_gvocab *) gvocab; /* the vocabulary sorted for grammar masks (gen_grammar.c),
                                          * built on first use by whichever thread needs it */

    const struct ob_backend *backend;
    void *bstate;           /* the backend's per-model state */
    int n_threads;          /* threads the backend was given */

    /* Partial loading (ob_model_load_partial): only a prefix of the file is in memory and the
     * backend uploads the weights itself (WebGPU). */
    int partial;
    void *image;            /* the malloc'ed prefix, owned by the model (NULL otherwise) */
    int n_pending;
    ob_pending_vec *pending; /* [n_pending] vectors the host still has to supply */
    int cap_pending;
};

/* Loads and validates everything except the backend. On failure sets ob_last_error. */
ob_status model_load(struct ob_model *m, const ob_model_params *p);
void model_release(struct ob_model *m);
/* The tokenizer from the tokenizer.ggml.* keys (vocab.c). */
ob_status model_load_vocab(struct ob_model *m);
/* Partial loading: converts and checks the pending vectors once the host has filled their raw
 * bytes; afterwards the model is complete (n_pending = 0). */
ob_status model_complete(struct ob_model *m);

/* Opens a model of which only the first avail bytes of a file_size-byte file are in memory, at
 * image (malloc'ed; the model takes it over, also on failure). Weights may lie beyond the prefix
 * (data == NULL) and norm vectors beyond it are left pending: for backends that stream weights to
 * their own memory. Defined in api.c. */
ob_status ob_model_load_partial(void *image, size_t avail, uint64_t file_size, const ob_model_params *p,
                                ob_model **out);

/* Forgets a context's asynchronous steps in flight (their results will not be handed back): for
 * a generation abandoned before its end (gen.c). Defined in api.c. */
void ob_context_forget_steps(ob_context *c);
/* The model a context runs. Defined in api.c. */
const struct ob_model *ob_context_model(const ob_context *c);

#endif
