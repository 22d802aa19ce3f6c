/* families.c — the model architectures onebit runs, one row each (see family.h).
 *
 * What a row says is checked against llama.cpp, which defines these architectures' GGUF files:
 * its tests (tests/arch-logits.test.mjs) run random-weight files written by llama.cpp's own tools
 * through every backend. RoPE layout follows llama.cpp's rope type per architecture: `llama`
 * files are converted with q/k rows permuted for adjacent pairs (ROPE_NORM), Qwen files rotate
 * halves (NeoX).
 */
#include <string.h>

#include "family.h"

static const ob_family FAMILIES[] = {
    /* Qwen3 (and PrismML's 1-bit Bonsai): per-head RMSNorm of q and k before RoPE. */
    {.arch = "qwen3", .title = "Qwen3", .norm = OB_NORM_RMS, .act = OB_ACT_SILU, .ffn_gated = 1,
     .qk_norm = 1, .rope = OB_ROPE_NEOX},
    /* Qwen2 / Qwen2.5: biases on q, k and v (optional entries of the tensor table). */
    {.arch = "qwen2", .title = "Qwen2 / Qwen2.5", .norm = OB_NORM_RMS, .act = OB_ACT_SILU, .ffn_gated = 1,
     .rope = OB_ROPE_NEOX},
    /* Llama 2 and 3.x (3.1's RoPE frequency factors come as the optional rope_freqs tensor). */
    {.arch = "llama", .title = "Llama (2, 3, 3.1, 3.2)", .norm = OB_NORM_RMS, .act = OB_ACT_SILU, .ffn_gated = 1,
     .rope = OB_ROPE_NORM},
};

const ob_family *ob_family_find(const char *arch, size_t len) {
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++)
        if (strlen(FAMILIES[i].arch) == len && memcmp(FAMILIES[i].arch, arch, len) == 0) return &FAMILIES[i];
    return NULL;
}

const char *ob_family_names(void) { return "qwen3, qwen2, llama"; }
