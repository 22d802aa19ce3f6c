/* threadpool.c — persistent workers for parallel loops (see threadpool.h).
 *
 * A job is published by bumping a generation counter, which idle workers watch. A token of a 1.7B
 * model runs a few hundred jobs of tens of microseconds each, so waking a sleeping thread per job
 * (several microseconds, more under load) would cost a large share of the time: workers spin on
 * the counter for about a millisecond after each job and only then sleep on a condition variable.
 *
 * Claiming. Each thread starts with a contiguous share of the items and runs it front to back, a
 * chunk at a time; a thread that has finished its share takes chunks from the back of the share
 * with most left (a worker that never turns up has its whole share taken that way). Contiguous
 * shares matter for generation, which streams the weights from memory: with interleaved pieces
 * the hardware prefetchers of the two cores fetch each other's data and a token took ~35% longer.
 *
 * Joining and closing. A worker that sees a new job first registers (joined++) and then checks
 * that the job is not closed; the caller, once no items are left, closes the job and waits only
 * for the workers registered in it (who are running, so the wait is short). Both sides use
 * sequentially consistent operations (worker: joined++ then read closed; caller: write closed
 * then read joined), so either the caller waits for the worker or the worker sees the job closed
 * and leaves without touching it. A new job is published only when no worker is registered, so
 * a registered worker always reads the fields of the job it checked.
 *
 * When there are more busy threads than cores (other processes), workers hurt: a registered
 * worker that the system deschedules holds the caller up for a time slice, and a worker that
 * spins without getting to join takes time from the caller. After such a wait, or after many jobs
 * in a row that no worker took part in, the caller runs jobs alone for a while (50 ms, doubling
 * up to 1.6 s while it keeps happening; the workers go to sleep), then tries the workers again.
 *
 * WebAssembly (the threaded build, build/wasm/onebit-mt): workers are Web Workers that Emscripten
 * starts with the module, and a pthread_create beyond them fails, so the pool has fewer threads.
 * Only workers ever sleep; the caller spins and never waits on the condition variable, which
 * matters where the caller is a browser's main thread, which may not block.
 */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void tp_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void tp_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void tp_relax(void) {}
#endif

#define TP_SPIN_NS 1000000L /* how long an idle worker spins before it sleeps */
#define TP_STALL_NS 2000000LL     /* a wait for registered workers this long: one was descheduled */
#define TP_SOLO_MIN_NS 50000000LL /* first period of working alone after a stall */
#define TP_SOLO_MAX_NS 1600000000LL

/* tp_stats: threads of the last pool started, most threads seen running items of one job. */
static atomic_int tp_stat_threads = 1;
static atomic_int tp_stat_peak = 0;

/* A thread's share of a job's items: [lo, hi) packed as lo << 32 | hi, claimed by compare and
 * swap: the owner from the front, others from the back. One cache line each. */
typedef struct tp_slot {
    _Atomic uint64_t range;
    char pad[64 - sizeof(uint64_t)];
} tp_slot;

struct tp_pool {
    int n;                   /* threads that may take part, caller included */
    pthread_t *th;           /* [n - 1] workers */
    /* the current job, written by the caller before it bumps gen */
    tp_fn fn;
    void *arg;
    int chunk;
    tp_slot *slot;           /* [n] each thread's remaining range of items */
    atomic_uint gen;         /* bumped once per job */
    atomic_uint closed;      /* generation of the last job that was closed */
    atomic_int joined;       /* workers registered in the current job */
    atomic_int helpers;      /* workers that ran items of the current job (tp_stats) */
    atomic_int sleepers;     /* workers blocked (or about to block) on cv */
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* caller only: oversubscription guard */
    long long solo_until;    /* CLOCK_MONOTONIC ns until which jobs run on the caller alone */
    long long solo_len;      /* length of the next such period (doubles while stalls recur) */
    int since_solo;          /* parallel jobs since the last period alone */
    int absent;              /* rises with jobs the workers took no part in, falls with others */
};

typedef struct tp_worker_arg {
    tp_pool *p;
    int ith;
} tp_worker_arg;

static long long tp_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long tp_elapsed_ns(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* Runs chunks of the current job until none are left: first from the front of its own range,
 * then from the back of whichever range has most left. Returns the number of items it ran. */
static int tp_work(tp_pool *p, int ith) {
    const uint32_t chunk = (uint32_t)p->chunk;
    int done = 0;
    _Atomic uint64_t *own = &p->slot[ith].range;
    uint64_t v = atomic_load_explicit(own, memory_order_relaxed);
    for (;;) {
        const uint32_t lo = (uint32_t)(v >> 32), hi = (uint32_t)v;
        if (lo >= hi) break;
        const uint32_t nl = hi - lo > chunk ? lo + chunk : hi;
        if (!atomic_compare_exchange_weak_explicit(own, &v, (uint64_t)nl << 32 | hi, memory_order_relaxed,
                                                   memory_order_relaxed))
            continue;
        p->fn(p->arg, (int)lo, (int)nl, ith);
        done += (int)(nl - lo);
        v = atomic_load_explicit(own, memory_order_relaxed);
    }
    for (;;) {
        int victim = -1;
        uint32_t most = 0;
        for (int k = 0; k < p->n; k++) {
            const uint64_t r = atomic_load_explicit(&p->slot[k].range, memory_order_relaxed);
            const uint32_t lo = (uint32_t)(r >> 32), hi = (uint32_t)r;
            if (hi > lo && hi - lo > most) most = hi - lo, victim = k;
        }
        if (victim < 0) break;
        _Atomic uint64_t *vs = &p->slot[victim].range;
        uint64_t r = atomic_load_explicit(vs, memory_order_relaxed);
        const uint32_t lo = (uint32_t)(r >> 32), hi = (uint32_t)r;
        if (lo >= hi) continue;
        const uint32_t nh = hi - lo > chunk ? hi - chunk : lo;
        if (!atomic_compare_exchange_strong_explicit(vs, &r, (uint64_t)lo << 32 | nh, memory_order_relaxed,
                                                     memory_order_relaxed))
            continue;
        p->fn(p->arg, (int)nh, (int)hi, ith);
        done += (int)(hi - nh);
    }
    return done;
}

/* Waits until the generation differs from seen. */
static void tp_wait_job(tp_pool *p, unsigned seen) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned spins = 1;; spins++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen) return;
        tp_relax();
        if ((spins & 255) == 0 && tp_elapsed_ns(&t0) > TP_SPIN_NS) break;
    }
    /* sleepers is raised before gen is re-checked under the lock, and tp_for bumps gen before it
     * reads sleepers (both sequentially consistent): either we see the new job here or tp_for
     * sees us and broadcasts after we are waiting. */
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
}

static void *tp_worker(void *v) {
    tp_worker_arg wa = *(tp_worker_arg *)v;
    free(v);
    tp_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        tp_wait_job(p, seen);
        if (atomic_load(&p->quit)) break;
        atomic_fetch_add(&p->joined, 1);
        const unsigned cur = atomic_load(&p->gen);
        /* cur may be tp_free's bump rather than a job: waiting for the next one would never end
         * (found by the GGUF fuzzer as a shutdown hang). */
        if (atomic_load(&p->quit)) {
            atomic_fetch_sub(&p->joined, 1);
            break;
        }
        /* Counted before joined falls, which the caller waits for: its count is complete. */
        if (atomic_load(&p->closed) != cur && tp_work(p, wa.ith) > 0)
            atomic_fetch_add_explicit(&p->helpers, 1, memory_order_relaxed);
        seen = cur;
        atomic_fetch_sub_explicit(&p->joined, 1, memory_order_release);
    }
    return NULL;
}

tp_pool *tp_new(int n_threads) {
    tp_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (n_threads < 1) n_threads = 1;
    p->th = calloc((size_t)n_threads, sizeof *p->th);
    if (!p->th) {
        free(p);
        return NULL;
    }
    p->slot = aligned_alloc(64, (size_t)n_threads * sizeof *p->slot);
    if (!p->slot) {
        free(p->th);
        free(p);
        return NULL;
    }
    for (int i = 0; i < n_threads; i++) atomic_init(&p->slot[i].range, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->closed, 0);
    atomic_init(&p->joined, 0);
    atomic_init(&p->helpers, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->n = 1;
    for (int i = 1; i < n_threads; i++) {
        tp_worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->th[i - 1], NULL, tp_worker, wa) != 0) {
            free(wa);
            break; /* run with the threads we have */
        }
        p->n++;
    }
    atomic_store_explicit(&tp_stat_threads, p->n, memory_order_relaxed);
    return p;
}

int tp_threads(const tp_pool *p) { return p ? p->n : 1; }

void tp_for(tp_pool *p, int n, int chunk, tp_fn fn, void *arg) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (!p || p->n == 1 || n <= chunk || (p->solo_until && tp_now_ns() < p->solo_until)) {
        for (int i = 0; i < n; i += chunk) fn(arg, i, n - i < chunk ? n : i + chunk, 0);
        return;
    }
    p->solo_until = 0;
    p->fn = fn;
    p->arg = arg;
    p->chunk = chunk;
    atomic_store_explicit(&p->helpers, 0, memory_order_relaxed); /* no worker is registered now */
    /* Contiguous shares: each thread streams through one part of the weights, which the
     * hardware prefetchers follow far better than interleaved pieces. */
    for (int i = 0; i < p->n; i++)
        atomic_store_explicit(&p->slot[i].range,
                              (uint64_t)((int64_t)n * i / p->n) << 32 | (uint64_t)((int64_t)n * (i + 1) / p->n),
                              memory_order_relaxed);
    const unsigned g = atomic_fetch_add(&p->gen, 1) + 1; /* publishes the fields above */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    const int mine = tp_work(p, 0);
    atomic_store(&p->closed, g);
    /* Workers that take no part in job after job are not getting a core (other processes, or a
     * higher-priority one): their spinning then only takes time from this thread. */
    if (mine == n) p->absent++;
    else p->absent = p->absent > 4 ? p->absent - 4 : 0;
    int solo = p->absent >= 32;
    /* Registered workers are running their last chunk; one that was descheduled meanwhile gets
     * our core back. */
    if (atomic_load_explicit(&p->joined, memory_order_acquire) > 0) {
        const long long t0 = tp_now_ns();
        for (unsigned spins = 1; atomic_load_explicit(&p->joined, memory_order_acquire) > 0; spins++) {
            tp_relax();
            if ((spins & 4095) == 0) sched_yield();
        }
        /* A wait of a whole time slice: more runnable threads than cores, and each such wait
         * costs more than the job. */
        solo |= tp_now_ns() - t0 >= TP_STALL_NS;
    }
    const int ran = (mine > 0) + atomic_load_explicit(&p->helpers, memory_order_relaxed);
    for (int peak = atomic_load_explicit(&tp_stat_peak, memory_order_relaxed); ran > peak;)
        if (atomic_compare_exchange_weak_explicit(&tp_stat_peak, &peak, ran, memory_order_relaxed, memory_order_relaxed))
            break;
    p->since_solo++;
    /* Work alone for a while, then give the workers another chance; if they fail again soon,
     * stay alone twice as long next time. */
    if (solo) {
        p->solo_len = p->since_solo < 1000 && p->solo_len ? p->solo_len * 2 : TP_SOLO_MIN_NS;
        if (p->solo_len > TP_SOLO_MAX_NS) p->solo_len = TP_SOLO_MAX_NS;
        p->solo_until = tp_now_ns() + p->solo_len;
        p->since_solo = 0;
        p->absent = 0;
    }
}

void tp_stats(int out[2], int reset) {
    out[0] = atomic_load_explicit(&tp_stat_threads, memory_order_relaxed);
    out[1] = atomic_load_explicit(&tp_stat_peak, memory_order_relaxed);
    if (reset) atomic_store_explicit(&tp_stat_peak, 0, memory_order_relaxed);
}

void tp_free(tp_pool *p) {
    if (!p) return;
    if (p->n > 1) {
        atomic_store(&p->quit, 1);
        atomic_fetch_add(&p->gen, 1);
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n - 1; i++) pthread_join(p->th[i], NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->th);
    free(p->slot);
    free(p);
}

void tp_settle(tp_pool *p) {
    if (!p) return;
    p->solo_until = 0;
    p->solo_len = 0;
    p->since_solo = 0;
    p->absent = 0;
}

long long tp_solo_left_ns(const tp_pool *p) {
    const long long left = p && p->solo_until ? p->solo_until - tp_now_ns() : 0;
    return left > 0 ? left : 0;
}

