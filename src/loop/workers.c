/* workers.c: the thread pool for blocking calls (getaddrinfo, SQLite, file
 * I/O). Workers start lazily on the first job. A finished job goes on a
 * mutex-protected list and the loop runs the job's `done` on its own
 * thread. Jobs are caller-owned (no malloc here).
 *
 * Hand-offs without sleeping: waking a sleeping thread costs a futex call
 * plus a scheduler wake-up, tens of microseconds on a VM, far more than a
 * SQLite step or a cached read. So, for a short while (at most
 * AW__SPIN_MAX, as long as spinning has been paying off: spin.h):
 *  - one worker at most keeps polling the queue after its job instead of
 *    sleeping, and submit signals the condition variable only when no
 *    spinner will take the job;
 *  - the loop, with jobs out and nothing else to do, polls the done list
 *    before it blocks in epoll (once per batch of submissions), and a
 *    worker writes the eventfd only when the loop said it sleeps
 *    (`asleep`, set before its last look at the done list: one of the
 *    two always sees the other, seq_cst).
 * Past that while, both sleep as before, so a long call (fsync, a slow
 * DNS answer) costs the spin once and no CPU after; and a spinner whose
 * spins keep timing out (long jobs, or a loaded machine where the other
 * thread is not running) spins at ever fewer chances (spin.h), so that
 * spinning costs less CPU per operation than sleeping, not only less
 * latency (issue 14). */
#include "loop.h"
#include "spin.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>


struct aw__workers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    aw__job_t *head, *tail;            /* waiting for a worker (head: atomic reads) */
    aw__job_t *done;                   /* finished, for the loop (atomic reads) */
    int stop;
    int spinning;                      /* a worker polls `head` (0 or 1; under mu) */
    aw__spin_t spin;                   /* when to spin: the loop's and the workers' (spin.h) */
    int asleep;                        /* the loop blocks in epoll (atomic) */
    bool fresh;                        /* a job came since the loop last spun (loop only) */
    int nthreads;
    int started;                       /* workers that took a slot in running[] */
    int evfd;
    aw__job_t **running;               /* per worker, its job (under mu): for fork */
    pthread_t threads[];
};

static inline void aw__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Poll *p until it is non-NULL or `ns` passed. */
static bool aw__spin_for(aw__job_t *const *p, aw_ns_t ns) {
    aw_ns_t end = aw_now() + ns;
    for (unsigned i = 1;; i++) {
        if (__atomic_load_n(p, __ATOMIC_ACQUIRE))
            return true;
        aw__cpu_relax();
        if (i % 64 == 0 && aw_now() >= end)
            return false;
    }
}

/* The next job for a worker, or NULL when the pool stops. Called and
 * returns with mu held. */
static aw__job_t *aw__workers_take(aw__workers_t *pool) {
    bool spun = false;
    for (;;) {
        aw__job_t *j = pool->head;
        if (j) {
            __atomic_store_n(&pool->head, j->next, __ATOMIC_RELAXED);
            if (!j->next)
                pool->tail = NULL;
            return j;
        }
        if (pool->stop)
            return NULL;
        aw_ns_t lim;
        if (!spun && !pool->spinning && (lim = aw__spin_plan(&pool->spin, AW__SPIN_MAX)) > 0) {
            pool->spinning = 1;
            pthread_mutex_unlock(&pool->mu);
            bool ok = aw__spin_for(&pool->head, lim);
            pthread_mutex_lock(&pool->mu);
            aw__spin_done(&pool->spin, ok);
            pool->spinning = 0;
            spun = true;
            continue;
        }
        pthread_cond_wait(&pool->cv, &pool->mu);
        spun = false;
    }
}

static void *aw__workers_worker(void *p) {
    aw__workers_t *pool = p;
    pthread_mutex_lock(&pool->mu);
    int me = pool->started++;
    for (aw__job_t *j; (j = aw__workers_take(pool));) {
        pool->running[me] = j;
        pthread_mutex_unlock(&pool->mu);
        j->work(j);
        pthread_mutex_lock(&pool->mu);
        pool->running[me] = NULL;
        bool first = pool->done == NULL;
        j->next = pool->done;
        __atomic_store_n(&pool->done, j, __ATOMIC_SEQ_CST);
        if (first && __atomic_load_n(&pool->asleep, __ATOMIC_SEQ_CST)) {
            uint64_t one = 1;
            ssize_t r = write(pool->evfd, &one, sizeof one);
            (void)r;
        }
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

static int aw__workers_start(aw_loop_t *l) {
    int n = l->opts.threads;
    aw__workers_t *p = aw__calloc(1, sizeof *p + (size_t)n * sizeof(pthread_t));
    aw__job_t **running = aw__calloc((size_t)n, sizeof *running);
    if (!p || !running) {
        aw__free(p);
        aw__free(running);
        return -ENOMEM;
    }
    p->running = running;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->evfd = l->evfd;
    /* Workers block every asynchronous signal (they inherit the mask), as
     * libuv's threadpool does: a process-directed SIGINT or a signal a
     * task waits for through signalfd (awith/signal.h) is then never
     * taken by a worker. Faults stay deliverable to the thread that
     * faults. */
    sigset_t all, old;
    sigfillset(&all);
    for (int s = 0; s < 7; s++)
        sigdelset(&all, (int[]){SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}[s]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, aw__workers_worker, p) != 0)
            break;
        p->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!p->nthreads) {
        aw__free(p->running);
        aw__free(p);
        return -EAGAIN;
    }
    l->workers = p;
    return 0;
}

static int aw__workers_queue(aw_loop_t *l, aw__job_t *j) {
    if (!l->workers) {
        int rc = aw__workers_start(l);
        if (rc < 0)
            return rc;
    }
    aw__workers_t *p = l->workers;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    bool first = p->head == NULL;
    if (p->tail)
        p->tail->next = j;
    else
        __atomic_store_n(&p->head, j, __ATOMIC_RELEASE);
    p->tail = j;
    if (!(first && p->spinning)) /* else the spinner takes it */
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    p->fresh = true;
    l->jobs++;
    return 0;
}

int aw__workers_submit(aw_loop_t *l, aw__job_t *j) {
    if (__builtin_expect(l->forked, 0))
        return -ECHILD; /* the pool's threads are the parent's */
    j->rc = 0;
    return aw__workers_queue(l, j);
}

bool aw__workers_unqueue(aw_loop_t *l, aw__job_t *j) {
    aw__workers_t *p = l->workers;
    if (!p)
        return false;
    bool found = false;
    pthread_mutex_lock(&p->mu);
    for (aw__job_t *prev = NULL, *q = p->head; q; prev = q, q = q->next) {
        if (q != j)
            continue;
        if (prev)
            prev->next = j->next;
        else /* a spinner reads head without the mutex */
            __atomic_store_n(&p->head, j->next, __ATOMIC_RELAXED);
        if (p->tail == j)
            p->tail = prev;
        found = true;
        break;
    }
    pthread_mutex_unlock(&p->mu);
    if (found)
        l->jobs--;
    return found;
}

bool aw__workers_wait_done(aw_loop_t *l, bool sleeping, aw_ns_t max_ns) {
    aw__workers_t *p = l->workers;
    if (!p)
        return false;
    if (!sleeping) {
        __atomic_store_n(&p->asleep, 0, __ATOMIC_RELAXED);
        return false;
    }
    /* Spin once per batch of submissions: a long job (an fsync, a slow
     * name server) must not turn every later round into a busy wait. */
    bool spin = p->fresh;
    p->fresh = false;
    aw_ns_t lim = spin ? aw__spin_plan(&p->spin, max_ns) : 0;
    if (lim > 0) {
        bool ok = aw__spin_for(&p->done, lim);
        /* a spin cut short by the next timer says nothing about the worker */
        if (ok || lim == AW__SPIN_MAX)
            aw__spin_done(&p->spin, ok);
        if (ok)
            return true;
    }
    __atomic_store_n(&p->asleep, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&p->done, __ATOMIC_SEQ_CST))
        return false;
    __atomic_store_n(&p->asleep, 0, __ATOMIC_RELAXED);
    return true;
}

bool aw__workers_has_done(aw_loop_t *l) {
    aw__workers_t *p = l->workers;
    return p && __atomic_load_n(&p->done, __ATOMIC_ACQUIRE);
}

void aw__workers_drain(aw_loop_t *l) {
    aw__workers_t *p = l->workers;
    if (!p || !__atomic_load_n(&p->done, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&p->mu);
    aw__job_t *d = p->done;
    __atomic_store_n(&p->done, NULL, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&p->mu);
    /* the list is newest first: reverse for completion order */
    aw__job_t *r = NULL;
    while (d) {
        aw__job_t *n = d->next;
        d->next = r;
        r = d;
        d = n;
    }
    while (r) {
        aw__job_t *n = r->next;
        l->jobs--;
        r->done(r);
        r = n;
    }
}

static int aw__workers_busy(aw__workers_t *p) {
    int n = 0;
    pthread_mutex_lock(&p->mu);
    for (aw__job_t *q = p->head; q; q = q->next)
        n++;
    for (int i = 0; i < p->started; i++)
        n += p->running[i] != NULL;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int aw__workers_busy_after(aw_loop_t *l, aw_ns_t wait) {
    aw__workers_t *p = l->workers;
    if (!p)
        return 0;
    aw_ns_t end = aw_now() + wait;
    int n;
    while ((n = aw__workers_busy(p)) > 0 && aw_now() < end)
        usleep(1000);
    return n;
}

void aw__workers_stop(aw_loop_t *l) {
    aw__workers_t *p = l->workers;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    aw__workers_drain(l);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    aw__free(p->running);
    aw__free(p);
    l->workers = NULL;
}

void aw__workers_fork(aw_loop_t *l, bool deliver) {
    aw__workers_t *p = l->workers;
    if (!p)
        return;
    /* Only this thread exists now: the lists are read without the mutex
     * (which a parent thread may have held at the fork: it stays locked
     * here forever). The block itself is left behind (a few hundred bytes
     * per fork): freeing a locked mutex's memory is no better. */
    l->workers = NULL;
    l->jobs = 0;
    if (!deliver)
        return;
    aw__job_t *queued = p->head, *lost = NULL;
    for (int i = 0; i < p->started; i++)
        if (p->running[i]) {
            p->running[i]->rc = -ECHILD;
            p->running[i]->next = lost;
            lost = p->running[i];
        }
    /* Queued jobs never started: the child's own pool (started now) runs
     * them. If it cannot start, they are lost too. */
    for (aw__job_t *j = queued, *n; j; j = n) {
        n = j->next;
        if (aw__workers_queue(l, j) < 0) {
            j->rc = -ECHILD;
            j->next = lost;
            lost = j;
        }
    }
    /* Finished and lost jobs complete now, on this thread (oldest first
     * does not matter: each wakes its own caller). */
    aw__job_t *lists[2] = {p->done, lost};
    for (int k = 0; k < 2; k++)
        for (aw__job_t *j = lists[k], *n; j; j = n) {
            n = j->next;
            j->done(j);
        }
}
