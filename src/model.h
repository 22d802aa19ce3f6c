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
};

/* Loads and validates everything except the backend. On failure sets ob_last_error. */
ob_status model_load(struct ob_model *m, const ob_model_params *p);
void model_release(struct ob_model *m);

#endif
