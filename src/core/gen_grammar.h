/* gen_grammar.h — grammar-constrained sampling for the generation loop (gen.c): a compiled
 * grammar (GBNF, or a JSON Schema compiled to it), its matcher, and the vocabulary of the model
 * arranged for masking (built once per model, on first use). Not a sampler: the masked logits go
 * to ob_sampler like any others.
 */
#ifndef OB_GEN_GRAMMAR_H
#define OB_GEN_GRAMMAR_H

#include "onebit.h"

typedef struct gen_grammar gen_grammar;
struct gen_gvocab;
struct ob_model;

/* From GBNF text or a JSON Schema (exactly one non-NULL); OB_ERR_ARG with the position on a
 * malformed one, OB_ERR_UNSUPPORTED for a schema keyword that cannot be enforced. */
ob_status gg_new(const struct ob_model *m, const char *gbnf, const char *json_schema, gen_grammar **out);
void gg_free(gen_grammar *g);
/* Samples the next token among those the grammar allows (end-of-generation tokens only where it
 * can end); -1 when it allows none. */
ob_token gg_sample(gen_grammar *g, ob_sampler *s, const ob_sampling *sp, const float *logits, const ob_token *hist,
                   size_t n_hist);
/* Advances the grammar over the token chosen. */
ob_status gg_accept(gen_grammar *g, ob_token tok);

void gen_gvocab_free(struct gen_gvocab *v);

#endif
