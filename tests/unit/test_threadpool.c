/* test_threadpool.c — unit tests for the CPU kernels' thread pool (src/threadpool.c).
 *
 * Every item of every loop is run exactly once, whatever the pool size, loop length and chunk
 * (including loops shorter than one chunk, which run on the caller); thread indices stay within
 * the pool; thousands of back-to-back jobs (the pattern of a token's products) and jobs after the
 * workers have gone to sleep all complete; a pool whose workers are kept busy elsewhere is not
 * needed to finish a job; a worker that stalls a job sends the pool into a period of working alone,
 * which tp_settle ends.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "threadpool.h"

static int failures;
#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            failures++;                                                                      \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                           \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
        }                                                                                    \
    } while (0)

typedef struct job {
    atomic_int *hits;      /* [n] */
    atomic_int bad_ith;
    int nth;
} job;

static void body(void *arg, int begin, int end, int ith) {
    job *j = arg;
    if (ith < 0 || ith >= j->nth || begin >= end) atomic_fetch_add(&j->bad_ith, 1);
    for (int i = begin; i < end; i++) atomic_fetch_add(&j->hits[i], 1);
}

static int run_and_check(tp_pool *p, int n, int chunk) {
    job j;
    j.hits = calloc((size_t)n + 1, sizeof *j.hits);
    atomic_init(&j.bad_ith, 0);
    j.nth = tp_threads(p);
    tp_for(p, n, chunk, body, &j);
    int ok = atomic_load(&j.bad_ith) == 0;
    for (int i = 0; i < n; i++) ok &= atomic_load(&j.hits[i]) == 1;
    free(j.hits);
    return ok;
}

/* A job whose items sleep 5 ms when a worker runs them (a stall of more than TP_STALL_NS). */
static void stall_body(void *arg, int begin, int end, int ith) {
    body(arg, begin, end, ith);
    if (ith != 0) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int main(void) {
    static const int sizes[] = {1, 2, 3, 4, 8};
    static const int ns[] = {1, 2, 7, 64, 1000, 9496};
    static const int chunks[] = {1, 3, 16, 100000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        tp_pool *p = tp_new(sizes[s]);
        CHECK(p != NULL, "tp_new(%d)", sizes[s]);
        if (!p) continue;
        CHECK(tp_threads(p) >= 1 && tp_threads(p) <= sizes[s], "tp_threads = %d for %d", tp_threads(p), sizes[s]);
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof chunks / sizeof *chunks; b++)
                CHECK(run_and_check(p, ns[a], chunks[b]), "pool %d: n=%d chunk=%d: items not run exactly once",
                      sizes[s], ns[a], chunks[b]);
        /* Many short jobs back to back, as a token's products are. */
        int ok = 1;
        for (int k = 0; k < 3000 && ok; k++) ok = run_and_check(p, 64, 1 + k % 5);
        CHECK(ok, "pool %d: back-to-back jobs", sizes[s]);
        /* Let the workers fall asleep (they spin about 1 ms), then run again. */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        CHECK(run_and_check(p, 1000, 7), "pool %d: job after the workers slept", sizes[s]);
        tp_free(p);
    }
    CHECK(run_and_check(NULL, 10, 3), "NULL pool"); /* runs inline */
    /* A big pool on a small machine: most workers are not running when a job starts; the caller
     * must still finish every job (it claims whatever they have not). */
    tp_pool *big = tp_new(16);
    int ok = 1;
    for (int k = 0; k < 2000 && ok; k++) ok = run_and_check(big, 33, 1);
    CHECK(ok, "oversubscribed pool");
    tp_free(big);
    tp_free(NULL);
    /* Stalls send the pool into working alone; tp_settle forgets them, and jobs still run. */
    tp_pool *st = tp_new(2);
    CHECK(st != NULL, "tp_new(2)");
    if (st && tp_threads(st) == 2) {
        int tries = 0;
        while (tp_solo_left_ns(st) == 0 && tries++ < 200) {
            job j;
            j.hits = calloc(65, sizeof *j.hits);
            atomic_init(&j.bad_ith, 0);
            j.nth = 2;
            tp_for(st, 64, 1, stall_body, &j);
            free(j.hits);
        }
        CHECK(tp_solo_left_ns(st) > 0, "no period of working alone after %d stalled jobs", tries);
        tp_settle(st);
        CHECK(tp_solo_left_ns(st) == 0, "tp_settle left %lld ns of working alone", tp_solo_left_ns(st));
        CHECK(run_and_check(st, 1000, 7), "job after tp_settle");
    }
    tp_free(st);
    if (failures) printf("%d checks failed\n", failures);
    return failures ? 1 : 0;
}
