/* serve_sched.c — the server's scheduler: jobs, a FIFO queue and a fixed set of worker slots.
 *
 * A slot is one ob_context (KV cache) with its own worker thread; generation runs only there.
 * Jobs leave the queue strictly in arrival order (fairness); when several slots are idle, the
 * head job goes to the one whose cached tokens share the longest prefix with its prompt, so a
 * chat that continues lands where its history is already evaluated (see pick_slot).
 * Cancellation is cooperative: the text callback of ob_generate checks the job's cancel flag and
 * deadline. This file knows nothing of HTTP or JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

double sched_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- jobs ----------------------------------------------------------------------------------- */

job *job_new(void) {
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* timed waits immune to clock changes */
    if (pthread_mutex_init(&j->mu, NULL) != 0) { pthread_condattr_destroy(&ca); free(j); return NULL; }
    if (pthread_cond_init(&j->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&j->mu);
        free(j);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    atomic_init(&j->cancel, 0);
    j->refs = 1;
    j->state = JOB_QUEUED;
    return j;
}

void job_retain(job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void job_release(job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last) return;
    free(j->prompt);
    for (int i = 0; i < j->n_embed && j->embed_in; i++) free(j->embed_in[i]);
    free(j->embed_in);
    free(j->embed_len);
    free(j->embedding);
    for (int i = 0; j->stop[i]; i++) free(j->stop[i]);
    free(j->grammar);
    free(j->json_schema);
    free(j->text);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

int job_wait(job *j, size_t seen, int timeout_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    while (!(j->text_len > seen || j->state == JOB_DONE) && rc == 0)
        rc = pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    int changed = j->text_len > seen || j->state == JOB_DONE;
    pthread_mutex_unlock(&j->mu);
    return changed;
}

/* Marks a job finished and wakes its waiters. */
static void job_finish(job *j, ob_status st, const char *msg, const ob_generate_result *res) {
    pthread_mutex_lock(&j->mu);
    j->state = JOB_DONE;
    j->status = st;
    if (msg) snprintf(j->error, sizeof j->error, "%s", msg);
    if (res) j->result = *res;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* ---- the scheduler -------------------------------------------------------------------------- */

typedef struct slot {
    struct sched *s;
    ob_context *ctx;
    pthread_t thread;
    int started;
    pthread_cond_t cv;         /* a job was assigned, or shutdown */
    job *job;                  /* assigned job (scheduler lock) */
    double last_used;
} slot;

struct sched {
    ob_model *model;
    pthread_mutex_t mu;
    slot *slots;               /* [n_slots] */
    int n_slots;
    job *head, *tail;          /* the FIFO queue */
    int n_queued, max_queue;
    atomic_int stopping;
    sched_stats st;
};

static int slot_busy(const slot *sl) { return sl->job != NULL; }

/* Longest common prefix of the slot's cached tokens and a prompt. */
static size_t slot_lcp(const slot *sl, const job *j) {
    size_t n = (size_t)ob_context_n_past(sl->ctx);
    const ob_token *t = ob_context_tokens(sl->ctx);
    size_t k = 0;
    if (!j->prompt) return 0; /* embeddings: their inputs never reuse a cache */
    while (k < n && k < j->n_prompt && t[k] == j->prompt[k]) k++;
    return k;
}

/* Picks the idle slot for j, or NULL when all are busy. A slot "holds" the job's conversation when
 * their common prefix covers at least half of the shorter of prompt and cache: a continued chat
 * (the cache is a prefix of the prompt) or a regenerated answer (the prompt is a prefix of the
 * cache). Among such slots the longest prefix wins. Otherwise an empty slot, else the least
 * recently used one: a short shared prefix (say, the chat template's first tokens) is not worth
 * destroying another conversation's cache. Scheduler lock held. */
static slot *pick_slot(struct sched *s, const job *j) {
    slot *best = NULL, *spare = NULL;
    size_t best_lcp = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (slot_busy(sl)) continue;
        size_t l = slot_lcp(sl, j), n_past = (size_t)ob_context_n_past(sl->ctx);
        size_t shorter = n_past < j->n_prompt ? n_past : j->n_prompt;
        if (l > 0 && l * 2 >= shorter && l > best_lcp) {
            best = sl;
            best_lcp = l;
        }
        if (!spare || (n_past == 0 && ob_context_n_past(spare->ctx) > 0) ||
            ((n_past == 0) == (ob_context_n_past(spare->ctx) == 0) && sl->last_used < spare->last_used))
            spare = sl;
    }
    return best ? best : spare;
}

/* Hands queued jobs to idle slots, oldest job first. Scheduler lock held. */
static void dispatch(struct sched *s) {
    while (s->head) {
        job *j = s->head;
        slot *sl = pick_slot(s, j);
        if (!sl) return;
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        j->next = NULL;
        s->n_queued--;
        sl->job = j; /* the queue's reference moves to the slot */
        pthread_cond_signal(&sl->cv);
    }
}

/* Receives generated text on the worker thread: store it, wake the HTTP side, honour cancel and
 * the deadline. */
static int on_text(const char *text, size_t len, void *user) {
    job *j = user;
    if (atomic_load(&j->cancel)) return 1;
    if (sched_now_ms() > j->deadline_ms) {
        pthread_mutex_lock(&j->mu);
        j->timed_out = 1;
        pthread_mutex_unlock(&j->mu);
        return 1;
    }
    pthread_mutex_lock(&j->mu);
    int stop = 0;
    if (j->text_len + len + 1 > j->text_cap) {
        size_t nc = j->text_cap ? j->text_cap : 256;
        while (nc < j->text_len + len + 1) nc *= 2;
        char *nt = realloc(j->text, nc);
        if (!nt) {
            j->oom = 1;
            stop = 1;
        } else {
            j->text = nt;
            j->text_cap = nc;
        }
    }
    if (!stop) {
        memcpy(j->text + j->text_len, text, len);
        j->text_len += len;
        j->text[j->text_len] = 0;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return stop;
}

static void run_job(slot *sl, job *j) {
    pthread_mutex_lock(&j->mu);
    j->state = JOB_RUNNING;
    pthread_mutex_unlock(&j->mu);
    if (atomic_load(&j->cancel)) {
        job_finish(j, OB_ERR_CANCELLED, atomic_load(&sl->s->stopping) ? "the server is shutting down" : "cancelled", NULL);
        return;
    }
    if (j->n_embed > 0) { /* embeddings: one evaluation per input, nothing generated */
        ob_generate_result res;
        memset(&res, 0, sizeof res);
        ob_status st = OB_OK;
        double t0 = sched_now_ms();
        for (int i = 0; i < j->n_embed && st == OB_OK; i++) {
            if (atomic_load(&j->cancel)) st = OB_ERR_CANCELLED;
            else st = ob_embed(sl->ctx, j->embed_in[i], (int)j->embed_len[i], 1, j->embedding + (size_t)i * j->n_embd);
            if (st == OB_OK) res.n_prompt += (int)j->embed_len[i];
        }
        res.t_prompt_ms = sched_now_ms() - t0;
        const char *msg = st == OB_ERR_CANCELLED ? "cancelled" : st ? ob_last_error() : NULL;
        job_finish(j, st, msg, &res);
        return;
    }
    ob_generate_params gp;
    memset(&gp, 0, sizeof gp);
    gp.sampling = j->sampling;
    gp.max_tokens = j->max_tokens;
    gp.stop = j->stop[0] ? (const char *const *)j->stop : NULL;
    gp.grammar = j->grammar;
    gp.json_schema = j->json_schema;
    ob_think_strip strip;
    ob_think_strip_init(&strip, on_text, j);
    gp.on_text = j->strip_think ? ob_think_strip_push : on_text;
    gp.user = j->strip_think ? (void *)&strip : (void *)j;
    ob_generate_result res;
    memset(&res, 0, sizeof res);
    ob_status st = ob_generate(sl->ctx, j->prompt, j->n_prompt, &gp, &res);
    if (st == OB_OK && j->strip_think) ob_think_strip_flush(&strip);
    const char *msg = st ? ob_last_error() : NULL;
    if (st == OB_OK && j->oom) {
        st = OB_ERR_NOMEM;
        msg = "out of memory while storing the generated text";
    }
    if (st == OB_OK && atomic_load(&j->cancel)) st = OB_ERR_CANCELLED;
    if (st == OB_ERR_CANCELLED) msg = atomic_load(&sl->s->stopping) ? "the server is shutting down" : "cancelled";
    job_finish(j, st, msg, &res);
}

static void *worker(void *arg) {
    slot *sl = arg;
    struct sched *s = sl->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!sl->job && !s->stopping) pthread_cond_wait(&sl->cv, &s->mu);
        if (!sl->job) break;
        job *j = sl->job;
        pthread_mutex_unlock(&s->mu);

        run_job(sl, j);

        pthread_mutex_lock(&s->mu);
        s->st.prompt_tokens += (uint64_t)j->result.n_prompt + (uint64_t)j->result.n_reused;
        s->st.reused_tokens += (uint64_t)j->result.n_reused;
        s->st.generated_tokens += (uint64_t)j->result.n_generated;
        if (j->status == OB_OK) s->st.completed++;
        else if (j->status == OB_ERR_CANCELLED) s->st.cancelled++;
        else s->st.failed++;
        sl->job = NULL;
        sl->last_used = sched_now_ms();
        job_release(j);
        if (!s->stopping) dispatch(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

ob_status sched_new(ob_model *m, int n_slots, int n_ctx, int max_queue, sched **out) {
    *out = NULL;
    if (n_slots < 1 || max_queue < 0) return OB_ERR_ARG;
    struct sched *s = calloc(1, sizeof *s);
    if (!s) return OB_ERR_NOMEM;
    s->model = m;
    s->max_queue = max_queue;
    s->slots = calloc((size_t)n_slots, sizeof *s->slots);
    if (!s->slots || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->slots);
        free(s);
        return OB_ERR_NOMEM;
    }
    ob_status st = OB_OK;
    ob_context_params cp = ob_context_default_params();
    cp.n_ctx = n_ctx;
    for (int i = 0; i < n_slots && st == OB_OK; i++) {
        slot *sl = &s->slots[i];
        sl->s = s;
        if ((st = ob_context_new(m, &cp, &sl->ctx))) break;
        pthread_cond_init(&sl->cv, NULL);
        s->n_slots = i + 1;
        if (pthread_create(&sl->thread, NULL, worker, sl) != 0) st = OB_ERR_NOMEM;
        else sl->started = 1;
    }
    if (st) {
        sched_shutdown(s);
        sched_free(s);
        return st;
    }
    s->st.slots = n_slots;
    *out = s;
    return OB_OK;
}

int sched_n_ctx(const sched *s) { return ob_context_n_ctx(s->slots[0].ctx); }

int sched_submit(sched *s, job *j) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->n_queued >= s->max_queue) {
        s->st.rejected++;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    job_retain(j);
    j->t_submit_ms = sched_now_ms();
    j->next = NULL;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->n_queued++;
    s->st.requests++;
    dispatch(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sched_cancel(sched *s, job *j, int timed_out) {
    pthread_mutex_lock(&s->mu);
    pthread_mutex_lock(&j->mu);
    if (j->state == JOB_DONE) { /* finished already: nothing to stop, nothing to count */
        pthread_mutex_unlock(&j->mu);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (timed_out) j->timed_out = 1;
    atomic_store(&j->cancel, 1);
    pthread_mutex_unlock(&j->mu);
    job *prev = NULL, *q = s->head;
    while (q && q != j) { prev = q; q = q->next; }
    if (q) { /* still queued: take it out */
        if (prev) prev->next = q->next;
        else s->head = q->next;
        if (s->tail == q) s->tail = prev;
        q->next = NULL;
        s->n_queued--;
        s->st.cancelled++;
    }
    pthread_mutex_unlock(&s->mu);
    if (q) {
        job_finish(j, OB_ERR_CANCELLED, timed_out ? "timed out waiting for a free slot" : "cancelled", NULL);
        job_release(j); /* the queue's reference */
    }
}

void sched_get_stats(sched *s, sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->queued = s->n_queued;
    out->slots_busy = 0;
    for (int i = 0; i < s->n_slots; i++) out->slots_busy += slot_busy(&s->slots[i]);
    pthread_mutex_unlock(&s->mu);
}

void sched_shutdown(sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, 1);
    job *q = s->head;
    s->head = s->tail = NULL;
    s->n_queued = 0;
    for (int i = 0; i < s->n_slots; i++) {
        if (s->slots[i].job) atomic_store(&s->slots[i].job->cancel, 1);
        pthread_cond_signal(&s->slots[i].cv);
    }
    pthread_mutex_unlock(&s->mu);
    while (q) {
        job *next = q->next;
        q->next = NULL;
        atomic_store(&q->cancel, 1);
        job_finish(q, OB_ERR_CANCELLED, "the server is shutting down", NULL);
        job_release(q);
        q = next;
    }
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].started) {
            pthread_join(s->slots[i].thread, NULL);
            s->slots[i].started = 0;
        }
}

void sched_free(sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n_slots; i++) {
        ob_context_free(s->slots[i].ctx);
        pthread_cond_destroy(&s->slots[i].cv);
    }
    free(s->slots);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
