/* qk_avx512.c — qk.h's kernels for x86-64 with AVX-512 VNNI (vpdpbusd, vpdpwssd on 256-bit
 * vectors), from the body in qk_x86.h. Built with the Makefile's flags for cpu_avx512.o; without
 * them this file only defines an empty table. */
#include "qk.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)
#define QK_VNNI 1
#define QK_PREFIX qk512_
#ifndef QK_TILE_NT
#define QK_TILE_NT 8 /* 32 vector registers */
#endif
#include "qk_x86.h"

static int qk512_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

const qk_isa qk_isa_avx512 = {.name = "avx512", .compiled = 1, .supported = qk512_supported, .kerns = qk512_kerns,
                            .quant = qk512_quant};
#else
const qk_isa qk_isa_avx512 = {.name = "avx512", .compiled = 0};
#endif
