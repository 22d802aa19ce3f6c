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
    uint32_t type;          /* enum ggml_type: Q1_0, F32, F16, BF16 or Q8_0 */
    int rows, cols;
    size_t row_bytes;       /* bytes of one row in the file */
    const uint8_t *data;    /* rows * row_bytes bytes; NULL when the file is only partly in memory */
    uint64_t offset;        /* in the file (for backends that upload weights themselves) */
    int id;                 /* index into model->weights, for backends that keep per-weight state */
} ob_weight;

typedef struct ob_hparams {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    int q_dim, kv_dim;      /* n_head * head_dim, n_head_kv * head_dim */
    float rope_theta, rms_eps;
} ob_hparams;

typedef struct ob_layer {
    float *attn_norm;       /* [n_embd] */
    float *q_norm, *k_norm; /* [head_dim] */
    float *ffn_norm;        /* [n_embd] */
    ob_weight *wq;          /* [q_dim][n_embd] */
    ob_weight *wk, *wv;     /* [kv_dim][n_embd] */
    ob_weight *wo;          /* [n_embd][q_dim] */
    ob_weight *w_gate, *w_up; /* [n_ff][n_embd] */
    ob_weight *w_down;      /* [n_embd][n_ff] */
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
    ob_layer *layers;       /* [n_layer] */
    int tied;
    uint64_t n_params, weight_bytes;

    tok_tokenizer *tok;
    ob_token bos, eos, eot, eot2;
    chat_template_kind chat_kind;
    char *arch, *name, *chat_template;

    char **meta_cache;      /* [n_kv] rendered metadata values, filled on demand */

    const struct ob_backend *backend;
    void *bstate;           /* the backend's per-model state */

    /* Partial loading (ob_model_load_partial): only a prefix of the file is in memory and the
     * backend uploads the weights itself (WebGPU). */
    int partial;
    void *image;            /* the malloc'ed prefix, owned by the model (NULL otherwise) */
    int n_pending;
    ob_pending_vec *pending; /* [n_pending] vectors the host still has to supply */
};

/* Loads and validates everything except the backend. On failure sets ob_last_error. */
ob_status model_load(struct ob_model *m, const ob_model_params *p);
void model_release(struct ob_model *m);
/* Partial loading: converts and checks the pending vectors once the host has filled their raw
 * bytes; afterwards the model is complete (n_pending = 0). */
ob_status model_complete(struct ob_model *m);

/* Opens a model of which only the first avail bytes of a file_size-byte file are in memory, at
 * image (malloc'ed; the model takes it over, also on failure). Weights may lie beyond the prefix
 * (data == NULL) and norm vectors beyond it are left pending: for backends that stream weights to
 * their own memory. Defined in api.c. */
ob_status ob_model_load_partial(void *image, size_t avail, uint64_t file_size, const ob_model_params *p,
                                ob_model **out);

#endif
