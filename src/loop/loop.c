/* loop.c: the scheduler. One round = run what is ready, then poll the
 * reactor (without blocking if something is still ready), then fire due
 * timers. Within a round a parking coroutine switches directly to the next
 * ready one (one switch instead of two through the scheduler) while the
 * round's budget lasts, so a task that keeps yielding cannot starve I/O or
 * timers: the budget is the queue length at the start of the round, and
 * at least AW__ROUND_MIN. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

__thread aw_loop_t *aw__loop_tls __attribute__((tls_model("initial-exec")));

volatile sig_atomic_t aw__loop_signalled;
void (*aw__loop_signal_hook)(aw_loop_t *);
void (*aw__loop_close_hook)(aw_loop_t *);
volatile sig_atomic_t aw__loop_sigcancel;

void aw__loop_signals(aw_loop_t *l) {
    if (aw__loop_signalled && aw__loop_signal_hook)
        aw__loop_signal_hook(l);
    /* atomic: the handler may run on another thread (a set of loops,
     * a thread of the program's), not only on this loop's */
    if (__atomic_load_n(&aw__loop_sigcancel, __ATOMIC_ACQUIRE) && l->on_signal)
        l->on_signal(l);
}

aw_ns_t aw_now(void) { return aw__clock_now(); }

aw_loop_t *aw_loop_current(void) { return aw__loop_tls; }

/* fork(): only the forking thread lives on in the child, so only its
 * loop can be used there, and only after aw_loop_fork: its epoll
 * instance, eventfd and pool threads are the parent's. Marking it here
 * makes every use fail fast (-ECHILD) instead of stealing the parent's
 * events or waiting for a worker that does not exist. */
static void aw__loop_atfork_child(void) {
    if (aw__loop_tls)
        aw__loop_tls->forked = 1;
}
static pthread_once_t aw__loop_atfork_once = PTHREAD_ONCE_INIT;
static void aw__loop_atfork_init(void) { pthread_atfork(NULL, NULL, aw__loop_atfork_child); }

/* One stack cache kept on this thread from a loop to the next, while
 * aw__loop_keep_stacks(true) holds here (the checker's: it runs one
 * short loop per checked run, thousands in a row, and mapping a fresh
 * slab and faulting in its 64 stack descriptors, then unmapping it, was
 * most of a run's cost). Only a cache every stack came back to is kept,
 * and only one; the next loop with the same stack options takes it. The
 * stacks are as a loop leaves them for its next task (coro.c unpoisons a
 * stack as it starts a coroutine on it). Freed by keep_stacks(false) or
 * at thread exit. */
static __thread struct {
    aw__stack_cache_t sc;
    size_t guarded; /* the opts.guarded_stacks it was made with */
    bool on;
} aw__spare;
static pthread_key_t aw__spare_key;
static pthread_once_t aw__spare_once = PTHREAD_ONCE_INIT;

static void aw__spare_free(void *p) {
    (void)p;
    aw__stack_cache_fini(&aw__spare.sc);
    aw__spare.on = false;
}
static void aw__spare_key_init(void) { (void)pthread_key_create(&aw__spare_key, aw__spare_free); }

bool aw__loop_keep_stacks(bool on) {
    bool was = aw__spare.on;
    if (on && !was) {
        pthread_once(&aw__spare_once, aw__spare_key_init);
        (void)pthread_setspecific(aw__spare_key, &aw__spare); /* non-NULL: the destructor runs */
        aw__spare.on = true;
    } else if (!on && was) {
        aw__spare_free(NULL);
    }
    return was;
}

int aw__loop_init(aw_loop_t *l, const aw_loop_opts_t *o, const char **what) {
    pthread_once(&aw__loop_atfork_once, aw__loop_atfork_init);
    aw__alloc_freeze(); /* the allocator table is fixed once a loop exists */
    memset(l, 0, sizeof *l);
    if (o)
        l->opts = *o;
    if (!l->opts.stack_size)
        l->opts.stack_size = 128 * 1024;
    if (!l->opts.guarded_stacks)
        l->opts.guarded_stacks = 8192;
    if (!l->opts.exit_grace)
        l->opts.exit_grace = AW_SEC(10);
    if (!l->opts.shutdown_grace)
        l->opts.shutdown_grace = AW_SEC(30);
    if (l->opts.threads <= 0)
        l->opts.threads = 4;
    if (!l->opts.post_limit)
        l->opts.post_limit = 16384;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        *what = "epoll_create1";
        return -errno;
    }
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->evfd};
    if (l->evfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) < 0) {
        int rc = -errno;
        *what = l->evfd < 0 ? "eventfd" : "epoll_ctl(eventfd)";
        if (l->evfd >= 0)
            close(l->evfd);
        close(l->epfd);
        return rc;
    }
    aw__coro_init_thread(&l->main);
    l->cur = &l->main;
    aw__stack_cache_init(&l->stacks, l->opts.stack_size, l->opts.guarded_stacks);
    if (aw__spare.sc.nslabs && aw__spare.sc.size == l->stacks.size &&
        aw__spare.guarded == l->opts.guarded_stacks) {
        l->stacks = aw__spare.sc; /* init only set fields: nothing to undo */
        aw__spare.sc = (aw__stack_cache_t){0};
    }
    l->now = aw_now();
    return 0;
}

void aw__loop_fini(aw_loop_t *l) {
    if (aw__loop_close_hook)
        aw__loop_close_hook(l);
    if (l->forked) { /* the parent's: never touch their mutexes or threads */
        aw__post_fork(l);
        aw__workers_fork(l, false); /* tasks are gone: deliver nothing */
    }
    aw__post_close(l); /* before the eventfd closes */
    aw__workers_stop(l);
    if (aw__spare.on && !l->forked && !l->stacks.live && !aw__spare.sc.nslabs) {
        aw__spare.sc = l->stacks;
        aw__spare.guarded = l->opts.guarded_stacks;
        l->stacks = (aw__stack_cache_t){0};
    } else {
        aw__stack_cache_fini(&l->stacks);
    }
    aw__heap_fini(&l->timers);
    aw__free(l->fds);
    close(l->evfd);
    close(l->epfd);
    aw__coro_fini(&l->main);
}

void aw__loop_park(aw_loop_t *l) { aw__loop_park_inline(l, true); }

void aw__loop_die(aw_loop_t *l) {
    aw__coro_t *cur = l->cur, *next = &l->main;
    if (l->budget > 0 && l->rq_head) {
        l->budget--;
        next = aw__loop_pop(l);
    }
    l->dead = cur;
    l->cur = next;
    l->switches++;
    aw__coro_switch(cur, next, 1);
    abort(); /* never resumed */
}

/* At least this many direct switches a round. asyncio and libuv run what
 * was ready when the round began and nothing more; here a round may also
 * run what became ready during it, up to this bound: a lock's hand-off or
 * a ping-pong of two tasks (a queue of 0 or 1 at the round's start) would
 * otherwise go back through the scheduler on every park, two switches
 * instead of one (lock: 834 -> 668 instructions per acquire). The bound
 * keeps the delay it adds to timers, I/O and signals to 32 task runs. */
enum { AW__ROUND_MIN = 32 };

/* Run every coroutine that is ready now, and what becomes ready meanwhile
 * while the round's budget lasts. */
static void aw__loop_run_ready(aw_loop_t *l) {
    if (l->rq_head) {
        l->budget = l->rq_len - 1 > AW__ROUND_MIN ? l->rq_len - 1 : AW__ROUND_MIN;
        aw__coro_t *c = aw__loop_pop(l);
        l->cur = c;
        l->switches++;
        aw__coro_switch(&l->main, c, 0);
        l->cur = &l->main;
        aw__loop_after_switch(l);
        l->budget = 0; /* what is ready now waits for the poll and the timers */
    }
}

static void aw__loop_fire_timers(aw_loop_t *l) {
    aw__timer_t *t;
    l->now = aw_now();
    while ((t = aw__timer_pop_due(&l->timers, l->now)))
        t->fire(t);
}

int aw__loop_refork(aw_loop_t *l, const char **what) {
    if (!l->forked)
        return 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int ev = ep < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = ev};
    if (ep < 0 || ev < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0) {
        int rc = -errno;
        *what = ep < 0 ? "epoll_create1" : ev < 0 ? "eventfd" : "epoll_ctl(eventfd)";
        if (ev >= 0)
            close(ev);
        if (ep >= 0)
            close(ep);
        return rc; /* still forked: try again, or leave it */
    }
    /* the child's copies only: the parent's epoll and eventfd live on */
    close(l->epfd);
    close(l->evfd);
    l->epfd = ep;
    l->evfd = ev;
    aw__post_fork(l);
    aw__workers_fork(l, true); /* after the swap: the new pool wakes the new eventfd */
    /* Every watched fd again, as fd.c registers it; an edge the parent
     * consumed is reported again by the ADD when the fd is ready. */
    for (size_t fd = 0; fd < l->nfds; fd++) {
        aw__fd_t *f = &l->fds[fd];
        if (!f->registered)
            continue;
        struct epoll_event fe = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.fd = (int)fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, (int)fd, &fe) < 0) {
            f->registered = 0; /* closed meanwhile: its waiters learn it */
            aw__fd_forget(l, (int)fd);
        }
    }
    l->forked = 0;
    return 0;
}

static int aw__loop_poll(aw_loop_t *l, aw_ns_t until) {
    if (__builtin_expect(l->forked, 0))
        return -ECHILD; /* the epoll instance is the parent's */
    struct epoll_event evs[256];
    aw__timer_t *t = aw__heap_top(&l->timers);
    aw_ns_t wake = t ? t->when : AW_NEVER;
    if (until < wake)
        wake = until;
    struct timespec ts = {0, 0}, *tp = &ts;
    if (l->rq_head) {
        /* something is ready: just look */
    } else if (wake == AW_NEVER) {
        tp = NULL;
    } else {
        aw_ns_t d = wake - aw_now();
        if (d > 0) {
            ts.tv_sec = d / 1000000000;
            ts.tv_nsec = d % 1000000000;
        }
    }
    /* About to block with pool jobs out: they may finish sooner than a
     * sleeping loop could be woken (workers.c). */
    bool sleeping = l->jobs && (tp == NULL || ts.tv_sec || ts.tv_nsec);
    aw_ns_t spin_max = tp ? (aw_ns_t)ts.tv_sec * 1000000000 + ts.tv_nsec : AW_NEVER;
    if (sleeping && aw__workers_wait_done(l, true, spin_max)) {
        ts = (struct timespec){0, 0};
        tp = &ts;
        sleeping = false;
    }
    int n = -1;
    if (!l->no_pwait2) {
        n = epoll_pwait2(l->epfd, evs, 256, tp, NULL);
        if (n < 0 && errno == ENOSYS)
            l->no_pwait2 = 1; /* old kernel, or Valgrind: ms precision */
    }
    if (l->no_pwait2) {
        int ms = tp ? (int)((ts.tv_sec * 1000) + (ts.tv_nsec + 999999) / 1000000) : -1;
        n = epoll_wait(l->epfd, evs, 256, ms);
    }
    if (sleeping)
        aw__workers_wait_done(l, false, 0);
    aw__workers_drain(l); /* a worker writes the eventfd only for a sleeping loop */
    for (int i = 0; i < n; i++) {
        if (evs[i].data.fd == l->evfd) {
            uint64_t v;
            ssize_t r = read(l->evfd, &v, sizeof v);
            (void)r; /* the pool was drained above */
            aw__post_drain(l); /* the eventfd also carries posts from other threads */
            continue;
        }
        aw__fd_dispatch(l, evs[i].data.fd, evs[i].events);
    }
    return 0;
}

/* One step that never blocks, for a loop embedded in another program's
 * (aw_loop_run_once): what is ready runs, the reactor is looked at, due
 * timers fire, and what they woke runs. Before the host sleeps in its own
 * poll the pool is told the loop sleeps, so that a finished job writes
 * the eventfd (and wakes the host through the epoll fd) instead of
 * waiting for a loop that spins. Returns 0 when done(l), 1 when there is
 * more to do later, -EDEADLK when nothing can make progress. */
int aw__loop_step(aw_loop_t *l, int (*done)(aw_loop_t *)) {
    aw__workers_wait_done(l, false, 0); /* awake: workers need not write */
    if (AW__LOOP_SIGNALLED())
        aw__loop_signals(l);
    aw__loop_run_ready(l);
    if (done(l))
        return 0;
    if (aw__loop_poll(l, 0) < 0) /* a deadline in the past: only look */
        return -ECHILD;
    if (l->timers.live)
        aw__loop_fire_timers(l);
    aw__loop_run_ready(l);
    if (done(l))
        return 0;
    if (!l->rq_head && !l->timers.live && !l->fd_waiters && !l->jobs && !aw__post_expected(l) &&
        !l->signal_awaited)
        return -EDEADLK;
    if (l->jobs)
        aw__workers_wait_done(l, true, 0); /* done already: aw__loop_timeout says 0 */
    return 1;
}

aw_ns_t aw__loop_timeout(aw_loop_t *l) {
    if (l->rq_head || AW__LOOP_SIGNALLED() || aw__workers_has_done(l))
        return 0;
    aw__timer_t *t = aw__heap_top(&l->timers);
    if (!t)
        return -1;
    aw_ns_t d = t->when - aw_now();
    return d > 0 ? d : 0;
}

/* While tasks stay ready, the reactor is polled every AW__POLL_EVERY
 * rounds only: a system call costs ~1 us on a VM, the switches it would
 * separate a few ns. Timers are still checked every round (a clock read). */
enum { AW__POLL_EVERY = 64 };

int aw__loop_run(aw_loop_t *l, int (*done)(aw_loop_t *), aw_ns_t until) {
    unsigned skipped = 0;
    for (;;) {
        if (AW__LOOP_SIGNALLED())
            aw__loop_signals(l);
        aw__loop_run_ready(l);
        if (done(l))
            return 0;
        bool posts = aw__post_expected(l); /* another thread may post */
        /* a task that waits for Ctrl-C (sleeps for ever under
         * cancel_on_signals) waits for something that can happen */
        if (!l->rq_head && !l->timers.live && !l->fd_waiters && !l->jobs && !posts &&
            !l->signal_awaited)
            return -EDEADLK;
        if (until != AW_NEVER && aw_now() >= until)
            return -ETIMEDOUT;
        bool reactor = l->fd_waiters || l->jobs || posts; /* could anything come from epoll? */
        if (!l->rq_head || (reactor && ++skipped >= AW__POLL_EVERY)) {
            if (aw__loop_poll(l, until) < 0)
                return -ECHILD;
            skipped = 0;
        }
        if (l->timers.live)
            aw__loop_fire_timers(l);
    }
}
