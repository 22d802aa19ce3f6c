/* qk_rows.h — shared by the SIMD files of qk.h's kernels (qk_x86.h, qk_neon.c, qk_wasm.c): a
 * token's quantised activations, and the loop that runs a per-block "tile" function (one row, up to
 * QK_NT tokens, nt a compile-time constant in each call so that its accumulators stay in registers)
 * over rows [r0, r1), 16 rows at a time for each group of tokens, so that the group's activations
 * stay in L1 and the rows' blocks in L2. QK_FN(name) must be defined by the includer. */
#ifndef OB_CPU_QK_ROWS_H
#define OB_CPU_QK_ROWS_H

#include "qk.h"

/* Tokens per tile (at most 8): QK_NT unless the includer has registers for more. */
#ifndef QK_TILE_NT
#define QK_TILE_NT QK_NT
#endif

typedef struct qk_tok {
    const int8_t *q;
    const float *d;
    const int16_t *s;
} qk_tok;

#if QK_TILE_NT > 4
#define QK_CASES_8(CALL)                                                                            \
    case 8: CALL(wr, nb, tk, 8, o); break;                                                          \
    case 7: CALL(wr, nb, tk, 7, o); break;                                                          \
    case 6: CALL(wr, nb, tk, 6, o); break;                                                          \
    case 5: CALL(wr, nb, tk, 5, o); break;
#else
#define QK_CASES_8(CALL)
#endif

#define QK_ROWS(T, CALL)                                                                            \
    static void QK_FN(T)(const uint8_t *w, size_t rb, int r0, int r1, const qk_act *x, int n, float *y, size_t ys) { \
        const int nb = x->cols / x->blk, ns = x->cols / 16;                                         \
        for (int rc = r0; rc < r1; rc += 16) {                                                      \
            const int re = rc + 16 < r1 ? rc + 16 : r1;                                             \
            for (int t0 = 0; t0 < n; t0 += QK_TILE_NT) {                                            \
                const int nt = n - t0 < QK_TILE_NT ? n - t0 : QK_TILE_NT;                           \
                qk_tok tk[QK_TILE_NT];                                                              \
                for (int t = 0; t < nt; t++)                                                        \
                    tk[t] = (qk_tok){x->q + (size_t)(t0 + t) * x->cols, x->d + (size_t)(t0 + t) * nb, \
                                     x->s + (size_t)(t0 + t) * ns};                                 \
                for (int r = rc; r < re; r++) {                                                     \
                    const uint8_t *wr = w + (size_t)r * rb;                                         \
                    float o[QK_TILE_NT];                                                            \
                    switch (nt) {                                                                   \
                    QK_CASES_8(CALL)                                                                \
                    case 4: CALL(wr, nb, tk, 4, o); break;                                          \
                    case 3: CALL(wr, nb, tk, 3, o); break;                                          \
                    case 2: CALL(wr, nb, tk, 2, o); break;                                          \
                    default: CALL(wr, nb, tk, 1, o); break;                                         \
                    }                                                                               \
                    for (int t = 0; t < nt; t++) y[(size_t)(t0 + t) * ys + r] = o[t];               \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

#endif
