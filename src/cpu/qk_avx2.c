/* qk_avx2.c — qk.h's kernels for x86-64 with AVX2, FMA and F16C (vpmaddubsw + vpmaddwd), from the
 * body in qk_x86.h. Built with the Makefile's flags for cpu_avx2.o; without them this file only
 * defines an empty table. */
#include "qk.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define QK_VNNI 0
#define QK_PREFIX qk256_
#include "qk_x86.h"

static int qk256_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

const qk_isa qk_isa_avx2 = {.name = "avx2", .compiled = 1, .supported = qk256_supported, .kerns = qk256_kerns,
                            .quant = qk256_quant};
#else
const qk_isa qk_isa_avx2 = {.name = "avx2", .compiled = 0};
#endif
