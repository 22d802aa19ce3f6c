/* util.h — small helpers shared by the core: the thread-local last-error message, overflow-safe
 * size arithmetic, a monotonic clock. */
#ifndef OB_UTIL_H
#define OB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "onebit.h"

/* Records the message for ob_last_error() and returns st, so: return ob_fail(OB_ERR_ARG, "..."). */
ob_status ob_fail(ob_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* a*b and a+b with overflow detection: return 0 on success, -1 on overflow. */
static inline int ob_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return -1;
    *out = a * b;
    return 0;
}
static inline int ob_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return -1;
    *out = a + b;
    return 0;
}

double ob_now_ms(void);

/* The sampling PRNG, shared by every sampler so CPU and GPU draws follow one stream:
 * xoshiro256** seeded through splitmix64; uniform doubles in [0, 1) from the top 53 bits. */
void ob_rng_seed(uint64_t s[4], uint64_t seed);
double ob_rng_uniform(uint64_t s[4]);

/* Number of physical cores (at least 1). */
int ob_default_threads(void);

#endif
