/* loop.h (private): the scheduler, timers, the reactor and the thread pool.
 * This layer knows coroutines, not tasks: it runs what is ready, fires
 * timers and wakes waiters through callbacks. Cancellation, errors and
 * groups live in core/, above it. */
#ifndef AW_LOOP_PRIV_H
#define AW_LOOP_PRIV_H

#include "../coro/coro.h"
#include <awith/loop.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <time.h>

/* aw_now, inline: CLOCK_MONOTONIC in ns (a deadline scope reads it as it
 * is entered). */
static inline aw_ns_t aw__clock_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (aw_ns_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
/* ---- timers (timer.c): a 4-ary min-heap of absolute deadlines ----
 * The heap never writes into a timer while it sifts: a slot names its
 * timer by an id, an entry in a dense table of the heap's own, and a
 * disarmed timer's slot is only marked dead there (lazy cancellation),
 * dropped when it reaches the top or when half the heap is dead. With a
 * million timers in a million task blocks (a page each), a pop then
 * touches the heap's arrays and the one timer it fires, not ten pages. */
typedef struct aw__timer aw__timer_t;
struct aw__timer {
    aw_ns_t when;
    uint32_t id;                      /* its entry in the heap's table + 1; 0: not armed */
    void (*fire)(aw__timer_t *);
};
/* A slot carries the deadline and the arm's sequence number: comparisons
 * never leave the array, equal deadlines fire in the order they were armed
 * (FIFO), and four children share a cache line. Read as one 128-bit
 * integer (little-endian: `when` the high, signed half; seq above id in
 * the low, unsigned half) a slot orders as (deadline, arm order): a
 * comparison is a cmp and an sbb (timer.c). */
typedef struct aw__heap_slot {
    uint32_t id;                       /* entry in `ent` */
    uint32_t seq;                      /* arm order, for ties (renumbered before it wraps) */
    aw_ns_t when;
} aw__heap_slot_t;
typedef struct aw__heap {
    aw__heap_slot_t *v;                /* v[1] starts a cache line (timer.c) */
    void *mem;                         /* the block v lies in */
    size_t n, cap;                     /* slots, live and dead */
    uintptr_t *ent;                    /* id -> the timer; 0: its slot is dead; odd: free */
    uint32_t nent, capent, free;       /* free: first free id + 1, 0 when none */
    uint32_t seq;
    size_t live, dead;                 /* armed timers; dead slots still in `v` */
} aw__heap_t;
enum { AW__HEAP_D = 4 };               /* children per node: one cache line */

int aw__timer_arm(aw__heap_t *h, aw__timer_t *t, aw_ns_t when); /* O(log n) */
void aw__timer_disarm(aw__heap_t *h, aw__timer_t *t);           /* O(1) amortised */
static inline int aw__timer_armed(const aw__timer_t *t) { return t->id != 0; }
/* The armed timer due first (dead slots on top are dropped), or NULL. */
aw__timer_t *aw__heap_top(aw__heap_t *h);
/* Take the armed timer due first if its deadline is <= now (it is then
 * disarmed), else NULL: what a loop round fires. */
aw__timer_t *aw__timer_pop_due(aw__heap_t *h, aw_ns_t now);
void aw__heap_fini(aw__heap_t *h);

/* ---- waiters: anything suspended on the reactor ---- */
typedef struct aw__waiter aw__waiter_t;
struct aw__waiter {
    void (*wake)(aw__waiter_t *, int rc);
};

/* Per-fd state: registered once, edge-triggered; `ready` remembers edges
 * that arrived while nobody waited. */
typedef struct aw__fd {
    aw__waiter_t *rd, *wr;
    uint32_t ready;                    /* EPOLLIN/EPOLLOUT/... seen */
    uint8_t registered;
} aw__fd_t;

/* ---- the thread pool (workers.c) ---- */
typedef struct aw__job aw__job_t;
struct aw__job {
    void (*work)(aw__job_t *);         /* runs on a worker thread */
    void (*done)(aw__job_t *);         /* runs on the loop thread after work */
    aw__job_t *next;
    int rc;                            /* 0; -ECHILD: its worker was lost in a fork */
};
typedef struct aw__workers aw__workers_t;

struct aw__core;                       /* the task layer's per-loop state */

struct aw_loop {
    aw__coro_t main;                   /* the thread's own stack: the scheduler */
    aw__coro_t *cur;                   /* what runs now */
    aw__coro_t *rq_head, *rq_tail;     /* ready to run, FIFO */
    size_t rq_len;
    size_t budget;                     /* direct switches left this round */
    aw__coro_t *dead;                  /* finished coroutine whose stack awaits reaping */
    void (*reap)(aw_loop_t *, aw__coro_t *);
    aw__heap_t timers;
    aw_ns_t now;                       /* time at the start of this round */
    int epfd, evfd;
    uint8_t tracing;                   /* core->trace is set (trace.c keeps it exact): one
                                          load next to `now`, not two more behind core */
    aw__fd_t *fds;
    size_t nfds;
    size_t fd_waiters;                 /* suspended on the reactor */
    aw__stack_cache_t stacks;
    aw__workers_t *workers;
    size_t jobs;                       /* jobs submitted, not yet done */
    uint64_t switches;
    int no_pwait2;                     /* epoll_pwait2 unavailable */
    aw_loop_opts_t opts;
    struct aw__core *core;
    struct aw_loop_ref *remote;        /* posts from other threads (post.c); lazy */
    void (*on_signal)(aw_loop_t *);    /* aw__loop_sigcancel is set (core/signal.c) */
    uint8_t signal_awaited;            /* a first SIGINT/SIGTERM would still cancel the main
                                          task (core/signal.c): waiting for it is no deadlock */
    int forked;                        /* a child of fork(), aw_loop_fork not called yet */
};

/* 0, or a negative code with *what naming the call that failed. */
int aw__loop_init(aw_loop_t *l, const aw_loop_opts_t *opts, const char **what);
void aw__loop_fini(aw_loop_t *l);
/* on: from now on, the next loop on this thread reuses the coroutine
 * stacks of the one that closed last (same stack options) instead of
 * mapping fresh ones, for a program that runs many short loops
 * (cm/testing.c); off: the kept stacks are unmapped. Returns the previous
 * setting. Kept stacks are freed at thread exit too. */
bool aw__loop_keep_stacks(bool on);
/* A forked child's loop made its own (aw_loop_fork): new epoll and
 * eventfd with every watched fd registered again, a new pool, no posts
 * from the parent's threads. 0 or a negative code, *what naming the call. */
int aw__loop_refork(aw_loop_t *l, const char **what);

/* Make `c` runnable (FIFO). O(1). */
static inline void aw__loop_ready(aw_loop_t *l, aw__coro_t *c) {
    c->next = NULL;
    if (l->rq_tail)
        l->rq_tail->next = c;
    else
        l->rq_head = c;
    l->rq_tail = c;
    l->rq_len++;
}

/* The queue is a list through the records of the coroutines on it, one
 * cold page each when many tasks run in turn (a spawned batch, a
 * millisecond of timers): each switch would wait on the next
 * coroutine's saved registers, and each pop on the next record. With
 * the next coroutine just taken off, load the new head's saved
 * registers (what the switch after this one reads first) and start its
 * successor's record. A load, not a prefetch: at a million tasks the
 * line is on a page the TLB does not hold, where a prefetch did
 * nothing measurable; the load's page walk and miss overlap the run of
 * the coroutine switched to (bench-timers at 1,000,000: arming about
 * 1,225 -> 1,034 ns a timer, medians of alternating runs). Not for the
 * running coroutine (l->cur at every pop): queued by a yield, its saved
 * sp is stale, and the sanitizers and Valgrind would see a read of a
 * dead frame. */
static inline void aw__loop_preload(const aw_loop_t *l) {
#if !defined(AW__ASAN) && !defined(AW__TSAN)
    const aw__coro_t *h = l->rq_head;
    if (h && h != l->cur) {
        __asm__ volatile("" ::"r"(*(const volatile char *)h->sp));
        __builtin_prefetch(h->next);
    }
#else
    (void)l;
#endif
}

static inline aw__coro_t *aw__loop_pop(aw_loop_t *l) {
    aw__coro_t *c = l->rq_head;
    if (c) {
        l->rq_head = c->next;
        if (!l->rq_head)
            l->rq_tail = NULL;
        l->rq_len--;
        aw__loop_preload(l);
    }
    return c;
}

/* A yield's turn of the queue: its head (the queue is not empty) comes
 * off and c goes on at the back, rq_len unchanged; no branch. Returns the
 * head, to run next. */
static inline aw__coro_t *aw__loop_rotate(aw_loop_t *l, aw__coro_t *c) {
    aw__coro_t *h = l->rq_head;
    c->next = NULL;
    l->rq_tail->next = c; /* h->next when h is the tail: then c is the new head */
    l->rq_head = h->next;
    l->rq_tail = c;
    return h;
}
static inline void aw__loop_after_switch(aw_loop_t *l) {
    if (l->dead) {
        aw__coro_t *d = l->dead;
        l->dead = NULL;
        l->reap(l, d);
    }
}

/* Suspend the running coroutine until someone makes it ready; switches
 * straight to the next ready coroutine while this round's budget lasts,
 * else to the scheduler. */
void aw__loop_park(aw_loop_t *l);
/* The same, inline: the task layer's one park (core/task.c) keeps the
 * switch in its own frame, so the callee-saved registers the switch
 * clobbers are saved once, not once per layer (and no call or return
 * is added around the switch). */
/* queued: the running coroutine may be on the run queue (it yields);
 * false for a wait, which the queue's head then cannot be. */
static inline __attribute__((always_inline)) void aw__loop_park_inline(aw_loop_t *l, bool queued) {
    aw__coro_t *cur = l->cur, *next = &l->main;
    if (l->budget > 0 && l->rq_head) {
        l->budget--;
        next = aw__loop_pop(l);
        if (queued && next == cur)
            return; /* it yielded and nothing else was ready */
    }
    l->cur = next;
    l->switches++;
    aw__coro_switch(cur, next, 0);
    aw__loop_after_switch(l);
}

/* The running coroutine is finished: switch away for good; the loop reaps
 * it (l->reap) once off its stack. */
__attribute__((noreturn)) void aw__loop_die(aw_loop_t *l);

/* Run rounds until `done(l)` is true or nothing can make progress.
 * Returns 0, or -EDEADLK when tasks wait on nothing that can wake them,
 * -ETIMEDOUT when `until` passed first, -ECHILD in a forked child that
 * did not call aw_loop_fork (its epoll and eventfd are the parent's). */
int aw__loop_run(aw_loop_t *l, int (*done)(aw_loop_t *), aw_ns_t until);
/* One round that never blocks (an embedded loop): 0 when done(l), 1 when
 * more is to come (wait for the epoll fd or aw__loop_timeout), -EDEADLK. */
int aw__loop_step(aw_loop_t *l, int (*done)(aw_loop_t *));
/* How long the host may sleep before the next step: 0 (step now), the
 * time to the next timer in ns, or -1 (until the epoll fd is readable). */
aw_ns_t aw__loop_timeout(aw_loop_t *l);

/* Reactor (fd.c). Wait for `events` (EPOLLIN or EPOLLOUT) on fd: returns
 * 1 if an edge was already seen (and consumes it), 0 if `w` was queued. */
int aw__fd_watch(aw_loop_t *l, int fd, uint32_t events, aw__waiter_t *w);
void aw__fd_unwatch(aw_loop_t *l, int fd, aw__waiter_t *w);
/* Give back an edge aw__fd_watch consumed (returned 1) but the waiter did
 * not use: a cancel or deadline seen right after. The next wait gets it. */
void aw__fd_unconsume(aw_loop_t *l, int fd, uint32_t events);
/* Forget fd (before close): waiters are woken with -EBADF. */
void aw__fd_forget(aw_loop_t *l, int fd);
/* An epoll event for fd (epoll's key is the fd itself). */
void aw__fd_dispatch(aw_loop_t *l, int fd, uint32_t ev);

/* Thread pool (workers.c). */
int aw__workers_submit(aw_loop_t *l, aw__job_t *j);
void aw__workers_drain(aw_loop_t *l);     /* run `done` of finished jobs */
/* Take j off the queue if no worker has taken it yet: true then (it
 * never runs, and its `done` is never called); false if a worker has it
 * or it is done. O(queued jobs). */
bool aw__workers_unqueue(aw_loop_t *l, aw__job_t *j);
/* The loop is about to block (sleeping) or has woken (!sleeping). Before
 * blocking: poll the done list a short while (never past max_ns, the
 * poll's timeout: a timer due sooner is not overshot), then announce the
 * sleep; true means jobs are done: look, don't block. */
bool aw__workers_wait_done(aw_loop_t *l, bool sleeping, aw_ns_t max_ns);
void aw__workers_stop(aw_loop_t *l);
/* Jobs queued or running on the pool once they are all done or `wait`
 * has passed, whichever comes first (polled every 1 ms): 0, or how many
 * a close would wait for. */
int aw__workers_busy_after(aw_loop_t *l, aw_ns_t wait);
/* In a forked child: drop the parent's pool without touching its mutex
 * (a parent thread may have held it); queued jobs go to a fresh pool,
 * started lazily, finished ones are delivered, running ones (their
 * thread does not exist here) are done with rc -ECHILD. */
void aw__workers_fork(aw_loop_t *l, bool deliver);
bool aw__workers_has_done(aw_loop_t *l);  /* finished jobs await the loop */

/* Posts from other threads (post.c): aw_loop_post() queues under the
 * block's mutex and writes the loop's eventfd when the queue was empty;
 * the loop runs the queue when the eventfd fires. At most `limit` posts
 * are queued (the loop's post_limit): a full queue refuses (-EAGAIN) or
 * makes aw_loop_post_wait() sleep on `room`, signalled when the loop
 * takes the queue or closes. `expect` counts held references plus queued
 * posts: while it is positive the loop waits for the eventfd instead of
 * declaring a deadlock. */
typedef struct aw__post aw__post_t;
struct aw_loop_ref {
    pthread_mutex_t mu;
    pthread_cond_t room;               /* the queue has room, or the loop closed */
    aw__post_t *head, *tail;           /* queued, FIFO */
    size_t queued, limit;
    int waiters;                       /* posters asleep on `room` */
    int evfd;
    int closed;                        /* the loop closed: posts fail */
    int refs;                          /* the loop's own + one per aw_loop_ref() */
    _Atomic long expect;               /* held references + queued posts */
};
void aw__post_drain(aw_loop_t *l);     /* run what was posted */
void aw__post_fork(aw_loop_t *l);      /* a forked child: abandon the parent's block */
void aw__post_close(aw_loop_t *l);     /* refuse posts, run the queued ones (<= limit) */
static inline bool aw__post_expected(const aw_loop_t *l) {
    return l->remote && atomic_load_explicit(&l->remote->expect, memory_order_acquire) > 0;
}
/* Opt-in signal notices (aw_loop_dump_on_signal, src/cm/introspect.c): a
 * signal handler sets the flag (and wakes epoll); every loop calls the
 * hook at its next round. One flag test per round when unused. */
extern volatile sig_atomic_t aw__loop_signalled;
extern void (*aw__loop_signal_hook)(aw_loop_t *);
/* Called by aw__loop_fini for each loop that closes, when set: the dump
 * on a signal ends with the loop that asked for it. */
extern void (*aw__loop_close_hook)(aw_loop_t *);
/* The same for SIGINT/SIGTERM cancelling the main task
 * (aw_loop_opts_t.cancel_on_signals, src/core/signal.c): the handler sets
 * the flag and wakes the loop; the loop that installed it calls its
 * on_signal at its next round (other loops pass). */
extern volatile sig_atomic_t aw__loop_sigcancel;
/* A round's signal check: one test of both flags when none is set. */
#define AW__LOOP_SIGNALLED()                                                            \
    __builtin_expect(aw__loop_signalled | __atomic_load_n(&aw__loop_sigcancel, __ATOMIC_RELAXED), 0)
void aw__loop_signals(aw_loop_t *l);

extern __thread aw_loop_t *aw__loop_tls __attribute__((tls_model("initial-exec")));

#endif
