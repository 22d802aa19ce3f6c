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
#include "util.h"

/* BitNet b1.58: the FFN's activation is `bitnet.hidden_activation` when the file says (relu2 or
 * silu), ReLU² when it does not (the b1.58 2B4T files lack the key and use ReLU²). */
static ob_status bitnet_adjust(const gguf_file *f, ob_hparams *hp) {
    gguf_str s;
    int r = gguf_get_str(f, "bitnet.hidden_activation", &s);
    if (r == -1) return OB_OK;
    if (r != 0) return ob_fail(OB_ERR_FORMAT, "metadata 'bitnet.hidden_activation' must be a string");
    if (gguf_str_eq(s, "relu2")) hp->act = OB_ACT_RELU2;
    else if (gguf_str_eq(s, "silu")) hp->act = OB_ACT_SILU;
    else
        return ob_fail(OB_ERR_UNSUPPORTED, "bitnet.hidden_activation '%.*s' is not supported (relu2 or silu)",
                       (int)(s.len > 32 ? 32 : s.len), s.ptr);
    return OB_OK;
}

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
    /* Gemma 1: GeGLU, embeddings times sqrt(n_embd), tied output; the norm weights are used as
     * stored (the converter already added Gemma's +1). */
    {.arch = "gemma", .title = "Gemma", .norm = OB_NORM_RMS, .act = OB_ACT_GELU, .ffn_gated = 1,
     .rope = OB_ROPE_NEOX, .embd_scale_sqrt = 1},
    /* Phi-2: LayerNorm with bias, attention and an ungated GELU FFN in parallel from one input
     * norm, fused qkv, biases everywhere, partial rotary (rope.dimension_count). */
    {.arch = "phi2", .title = "Phi-2", .norm = OB_NORM_LAYER, .act = OB_ACT_GELU, .parallel = 1,
     .rope = OB_ROPE_NEOX},
    /* BitNet b1.58 (llama.cpp's `bitnet`): sub-norms before Wo and Wdown, optional per-tensor
     * scales, gated ReLU² FFN (or SiLU: bitnet_adjust). */
    {.arch = "bitnet", .title = "BitNet b1.58", .norm = OB_NORM_RMS, .act = OB_ACT_RELU2, .ffn_gated = 1,
     .rope = OB_ROPE_NEOX, .sub_norm = 1, .adjust = bitnet_adjust},
};

const ob_family *ob_family_find(const char *arch, size_t len) {
    for (size_t i = 0; i < sizeof FAMILIES / sizeof *FAMILIES; i++)
        if (strlen(FAMILIES[i].arch) == len && memcmp(FAMILIES[i].arch, arch, len) == 0) return &FAMILIES[i];
    return NULL;
}

const char *ob_family_names(void) { return "qwen3, qwen2, llama, gemma, phi2, bitnet"; }
