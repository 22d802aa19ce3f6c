/* x86-ports.c — which AVX2 instructions compete with vpshufb for execution pipes (x86-64 only).
 *
 * The AVX2 Q1_0 lookup-table kernels (src/cpu/cpu_avx2.c) spend 48 vpshufb per 16 x 128 weights
 * with two activation planes; what else they may do in the same cycles depends on which pipes the
 * other instructions share with it. Each line times 6 vpshufb plus 6 of one other instruction on
 * independent registers (no dependency between iterations beyond one instruction's latency),
 * best of 7 timings on thread CPU time, in cycles at the clock given (default 3.66 GHz: Zen 4 here,
 * from q1-kernels' vpdpbusd peak). 6 vpshufb alone take 3 cycles where two pipes run them; an
 * instruction that adds nothing runs on other pipes, one that adds 3 cycles shares both.
 *   cc -O2 bench/x86-ports.c -o build/x86-ports && build/x86-ports [GHZ]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "kbench.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define N 2000000L
#define SHUF6                                                                                                  \
    "vpshufb %%ymm15,%%ymm0,%%ymm0\n vpshufb %%ymm15,%%ymm1,%%ymm1\n vpshufb %%ymm15,%%ymm2,%%ymm2\n"          \
    "vpshufb %%ymm15,%%ymm3,%%ymm3\n vpshufb %%ymm15,%%ymm4,%%ymm4\n vpshufb %%ymm15,%%ymm5,%%ymm5\n"
#define X6(op) op("6") op("7") op("8") op("9") op("10") op("11")
#define CLOB "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11"
#define ONE(name, op)                                                                                          \
    do {                                                                                                       \
        double best = 1e9;                                                                                     \
        for (int r = 0; r < 7; r++) {                                                                          \
            const double t0 = kb_cpu_s();                                                                      \
            for (long i = 0; i < N; i++) __asm__ volatile(SHUF6 X6(op)::: CLOB);                               \
            const double dt = kb_cpu_s() - t0;                                                                 \
            if (dt < best) best = dt;                                                                          \
        }                                                                                                      \
        printf("6 vpshufb + 6 %-11s %5.2f cycles\n", name, best / N * ghz * 1e9);                              \
    } while (0)
#define NONE(r) ""
#define ADDB(r) "vpaddb %%ymm14,%%ymm" r ",%%ymm" r "\n"
#define BLENDD(r) "vpblendd $0xf0,%%ymm14,%%ymm" r ",%%ymm" r "\n"
#define SHUFB(r) "vpshufb %%ymm14,%%ymm" r ",%%ymm" r "\n"
#define PERMQ(r) "vpermq $0xd8,%%ymm" r ",%%ymm" r "\n"
#define PERM2(r) "vperm2i128 $0x31,%%ymm14,%%ymm" r ",%%ymm" r "\n"
#define UNPCK(r) "vpunpcklbw %%ymm14,%%ymm" r ",%%ymm" r "\n"
#define SRLW(r) "vpsrlw $4,%%ymm" r ",%%ymm" r "\n"
#define MADDUBS(r) "vpmaddubsw %%ymm14,%%ymm" r ",%%ymm" r "\n"
#define MADDWD(r) "vpmaddwd %%ymm14,%%ymm" r ",%%ymm" r "\n"
#define CVTDQ(r) "vcvtdq2ps %%ymm" r ",%%ymm" r "\n"
#define CVTPH(r) "vcvtph2ps %%xmm" r ",%%ymm" r "\n"

int main(int argc, char **argv) {
    const double ghz = argc > 1 ? atof(argv[1]) : 3.66;
    if (!(ghz > 0.1 && ghz < 10)) {
        fprintf(stderr, "usage: x86-ports [GHZ]\n");
        return 2;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("f16c")) {
        fprintf(stderr, "x86-ports: this CPU has no AVX2/F16C\n");
        return 1;
    }
    ONE("(nothing)", NONE);
    ONE("vpaddb", ADDB);
    ONE("vpblendd", BLENDD);
    ONE("vpshufb", SHUFB);
    ONE("vpermq", PERMQ);
    ONE("vperm2i128", PERM2);
    ONE("vpunpcklbw", UNPCK);
    ONE("vpsrlw", SRLW);
    ONE("vpmaddubsw", MADDUBS);
    ONE("vpmaddwd", MADDWD);
    ONE("vcvtdq2ps", CVTDQ);
    ONE("vcvtph2ps", CVTPH);
    return 0;
}
#else
int main(void) {
    fprintf(stderr, "x86-ports: x86-64 with a GNU-compatible compiler only\n");
    return 1;
}
#endif
