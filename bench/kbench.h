/* kbench.h — what the single-thread kernel benchmarks (bench/q1-kernels.c, tern-kernels.c,
 * qk-kernels.c) share: the clock and a checked aligned allocation. Header-only, bench tools only. */
#ifndef OB_KBENCH_H
#define OB_KBENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Thread CPU time: on a shared machine the time this thread was descheduled does not count (what
 * other processes do to the caches and memory bus still does). */
static inline double kb_cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* n zeroed bytes, 64-byte aligned; exits with a message naming the tool when memory runs out. */
static inline void *kb_alloc(const char *tool, size_t n) {
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", tool);
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

/* Best seconds per call of fn(arg) over `timings` timings of ~20 ms of repetitions each (thread
 * CPU time). */
static inline double kb_best(void (*fn)(void *), void *arg, int timings) {
    double t1 = kb_cpu_s();
    fn(arg);
    t1 = kb_cpu_s() - t1;
    const int reps = t1 > 0.02 ? 1 : t1 < 1e-5 ? 2000 : (int)(0.02 / t1) + 1;
    double best = 1e30;
    for (int k = 0; k < timings; k++) {
        const double t0 = kb_cpu_s();
        for (int i = 0; i < reps; i++) fn(arg);
        const double dt = (kb_cpu_s() - t0) / reps;
        if (dt < best) best = dt;
    }
    return best;
}

#endif
