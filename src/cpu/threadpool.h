/* threadpool.h — a small persistent pool of worker threads for the CPU kernels.
 *
 * The pool is created once per model (in the kernels' init) and reused for every product of every
 * token: no thread is created per token. A job is a parallel loop over items [0, n): each thread
 * starts on a contiguous share and then takes what is left of the others', so the caller and
 * whichever workers join in finish it together; tp_for returns when every item is done. Because
 * items are claimed, not assigned, a worker that the system has descheduled (other processes on
 * few cores) does not hold the caller up: the caller takes over its share and closes the job.
 * Between jobs the workers spin briefly, then sleep.
 * This is not a general task system: one job at a time, from one caller at a time.
 */
#ifndef OB_THREADPOOL_H
#define OB_THREADPOOL_H

typedef struct tp_pool tp_pool;

/* The loop body: items [begin, end) on thread ith (0 = the caller; stable per thread, so it can
 * index per-thread scratch). Which thread gets which items is not fixed: results must not
 * depend on it. */
typedef void (*tp_fn)(void *arg, int begin, int end, int ith);

/* Starts n_threads - 1 workers (n_threads >= 1). Returns NULL when out of memory; if the system
 * refuses threads (e.g. a wasm build without pthreads) the pool simply has fewer of them. */
tp_pool *tp_new(int n_threads);
void tp_free(tp_pool *p);

/* Number of threads that may take part in a job (1 for a NULL pool). */
int tp_threads(const tp_pool *p);

/* Runs fn over [0, n) in chunks of chunk items (>= 1) and waits until all are done. One chunk
 * or a NULL pool: runs on the caller only. */
void tp_for(tp_pool *p, int n, int chunk, tp_fn fn, void *arg);

/* Process-wide figures for tests and diagnostics (the wasm engine reports them: a threaded build
 * that silently ran on one thread must be visible). out[0]: threads the most recently started
 * pool got, caller included (1 before any); out[1]: the most threads that ran items of one job
 * (0 before any parallel job). reset: after reading, set the latter back to 0. */
void tp_stats(int out[2], int reset);

/* Forgets the oversubscription history (periods of working alone, their length, the jobs the
 * workers missed): for after a phase whose waits say nothing about the machine's load, such as
 * repacking at load, where workers stall on page faults of freshly allocated memory. */
void tp_settle(tp_pool *p);
/* Nanoseconds left of the current period of working alone, 0 when none (for tests). */
long long tp_solo_left_ns(const tp_pool *p);

#endif
