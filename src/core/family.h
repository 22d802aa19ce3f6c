/* family.h — what distinguishes one model architecture from another, as data.
 *
 * A family is a row of flags (norm, activation, gating, parallel block, QK-norm, RoPE layout,
 * sub-norms, embedding scale) that model.c copies into ob_hparams before reading the file's own
 * keys; the tensors a layer must have follow from those flags (model.c's tensor table), so adding
 * an architecture whose parts onebit already has is one row in src/models/families.c. The rows
 * live apart from the core (src/models/) so the tree shows where families are described; this
 * header is the only thing the core knows of them.
 */
#ifndef OB_FAMILY_H
#define OB_FAMILY_H

#include "gguf.h"
#include "model.h"

typedef struct ob_family {
    const char *arch;        /* general.architecture, also the prefix of its hyperparameter keys */
    const char *title;       /* for `onebit info`, e.g. "Llama (2, 3, 3.1, 3.2)" */
    int norm, act, ffn_gated, parallel, qk_norm, rope, sub_norm;
    int embd_scale_sqrt;     /* token embeddings times sqrt(n_embd) */
    /* Optional: adjusts the flags from the file's own keys once the common ones are read (for
     * keys only one family has). Returns OB_OK or a failure with ob_last_error set. */
    ob_status (*adjust)(const gguf_file *f, ob_hparams *hp);
} ob_family;

/* The family of an architecture name (NULL when onebit does not run it). */
const ob_family *ob_family_find(const char *arch, size_t len);
/* Comma-separated list of the architectures onebit runs, for messages. */
const char *ob_family_names(void);

#endif
