/* membw.c — this machine's memory read bandwidth, the bound of a memory-bound token.
 *
 * Streams a buffer much larger than the caches (default 1 GiB) with 1 and 2 threads (or the
 * counts given), each thread reading its own contiguous share front to back with 32-byte loads
 * (the way the Q1_0 kernels stream a matrix: one sequential range per thread), summing them so
 * that nothing is optimised away, in two ways: plain loads (the hardware prefetchers alone), and
 * loads with a software prefetch 2304 bytes ahead (as the one-token kernels do, cpu_kern.h's
 * CK_PREFETCH_BYTES). Every pass is timed from a barrier before to the last thread's end; prints,
 * per thread count and way, the best and the median of the passes in GB/s (10^9 bytes/s) and
 * GiB/s. The first pass after the buffer is touched is dropped. Not a test; build and run:
 *   cc -O2 -std=c11 -mavx2 bench/membw.c -lpthread -o build/membw
 *   build/membw [MiB] [passes] [threads...]     # default: 1024 MiB, 15 passes, 1 and 2 threads
 * A shared machine lowers the figures (another process's traffic): read the best, and say the load.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct job {
    const uint8_t *p;
    size_t n;              /* bytes, a multiple of 128 */
    pthread_barrier_t *start, *stop;
    int passes, pf;
    volatile uint64_t sink;
} job;

#define PF_BYTES 2304

/* Reads n bytes, 128 a step in 4 independent 32-byte loads; pf: with a software prefetch. */
static uint64_t read_range(const uint8_t *p, size_t n, int pf) {
#if defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        if (pf) {
            _mm_prefetch((const char *)p + i + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)p + i + PF_BYTES + 64, _MM_HINT_T0);
        }
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(const void *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(const void *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(const void *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(const void *)(p + i + 96)));
    }
    const __m256i s = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(s, 0) ^ (uint64_t)_mm256_extract_epi64(s, 3);
#else
    (void)pf;
    uint64_t a[16] = {0};
    for (size_t i = 0; i < n; i += 128)
        for (int k = 0; k < 16; k++) {
            uint64_t v;
            memcpy(&v, p + i + 8 * k, 8);
            a[k] ^= v;
        }
    uint64_t s = 0;
    for (int k = 0; k < 16; k++) s ^= a[k];
    return s;
#endif
}

static void *worker(void *v) {
    job *j = v;
    for (int k = 0; k < j->passes; k++) {
        pthread_barrier_wait(j->start);
        j->sink ^= read_range(j->p, j->n, j->pf);
        pthread_barrier_wait(j->stop);
    }
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void measure(const uint8_t *buf, size_t bytes, int nth, int passes, int pf) {
    pthread_barrier_t start, stop;
    pthread_barrier_init(&start, NULL, (unsigned)nth + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)nth + 1);
    job *jobs = calloc((size_t)nth, sizeof *jobs);
    pthread_t *th = calloc((size_t)nth, sizeof *th);
    double *gbs = calloc((size_t)passes, sizeof *gbs);
    if (!jobs || !th || !gbs) {
        fprintf(stderr, "membw: out of memory\n");
        exit(1);
    }
    const size_t share = bytes / (size_t)nth / 128 * 128;
    for (int i = 0; i < nth; i++) {
        jobs[i] = (job){buf + (size_t)i * share, share, &start, &stop, passes + 1, pf, 0};
        if (pthread_create(&th[i], NULL, worker, &jobs[i]) != 0) {
            fprintf(stderr, "membw: cannot start a thread\n");
            exit(1);
        }
    }
    for (int k = 0; k <= passes; k++) {
        pthread_barrier_wait(&start);
        const double t0 = now_s();
        pthread_barrier_wait(&stop);
        const double dt = now_s() - t0;
        if (k > 0) gbs[k - 1] = (double)share * nth / dt / 1e9; /* pass 0: warm-up */
    }
    for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    qsort(gbs, (size_t)passes, sizeof *gbs, cmp_d);
    const double best = gbs[passes - 1], med = passes % 2 ? gbs[passes / 2] : (gbs[passes / 2 - 1] + gbs[passes / 2]) / 2;
    printf("%-8s %d thread%s: best %6.2f GB/s (%6.2f GiB/s), median %6.2f GB/s (%6.2f GiB/s), worst %6.2f GB/s, %d passes of %zu MiB\n",
           pf ? "prefetch" : "plain", nth, nth > 1 ? "s" : " ", best, best * 1e9 / 1073741824.0, med, med * 1e9 / 1073741824.0, gbs[0], passes,
           share * nth >> 20);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    free(jobs);
    free(th);
    free(gbs);
}

int main(int argc, char **argv) {
    const long mib = argc > 1 ? atol(argv[1]) : 1024;
    const int passes = argc > 2 ? atoi(argv[2]) : 15;
    if (mib < 64 || mib > (1L << 20) || passes < 1 || passes > 10000) {
        fprintf(stderr, "usage: membw [MiB >= 64] [passes] [threads...]\n");
        return 2;
    }
    const size_t bytes = (size_t)mib << 20;
    uint8_t *buf = aligned_alloc(4096, bytes);
    if (!buf) {
        fprintf(stderr, "membw: cannot allocate %ld MiB\n", mib);
        return 6;
    }
    for (size_t i = 0; i < bytes; i++) buf[i] = (uint8_t)(i * 131 + (i >> 12)); /* resident, not zero pages */
    FILE *la = fopen("/proc/loadavg", "r");
    char load[64] = "?";
    if (la) {
        if (!fgets(load, sizeof load, la)) strcpy(load, "?");
        fclose(la);
        load[strcspn(load, "\n")] = 0;
    }
    printf("buffer %ld MiB, load average %s\n", mib, load);
    if (argc > 3)
        for (int i = 3; i < argc; i++) {
            const int n = atoi(argv[i]);
            if (n < 1 || n > 256) {
                fprintf(stderr, "membw: bad thread count %s\n", argv[i]);
                return 2;
            }
            for (int pf = 0; pf < 2; pf++) measure(buf, bytes, n, passes, pf);
        }
    else
        for (int n = 1; n <= 2; n++)
            for (int pf = 0; pf < 2; pf++) measure(buf, bytes, n, passes, pf);
    free(buf);
    return 0;
}
