/* loops.c: a loop per core (aw_loops_*). Each loop of a set runs on a
 * thread of its own (aw_main_opts, its main task being fn(arg, index)
 * inside a cancel scope that aw_loops_stop cancels), and has an inbox:
 * a mutex, an intrusive FIFO of message nodes, and an eventfd doorbell
 * the loop's reactor watches through a loop-level waiter (no task, so
 * replies are still taken in while the loop shuts down and its tasks
 * unwind).
 *
 * A call is one heap message that travels to the target's inbox, runs
 * there as a task of its own, and travels back to the caller's inbox in
 * the same node: the answer needs no allocation and no queue slot, so it
 * can never be refused or lost. That is why the inbox is not the loop's
 * post queue (aw_loop_post): that queue is bounded and may refuse a post
 * (-EAGAIN), which is right for requests from foreign threads but not
 * for an answer that a task waits for; and a poster blocked on a full
 * queue (aw_loop_post_wait) while its own loop's queue is full of posts
 * from the other deadlocks both threads.
 *
 * Each field of a message is touched by one thread at a time: the
 * caller's loop owns `waiter`, `owner`, `replied`; the target's loop owns
 * `task`, `cancelled`; `rc` and `msg` are written by the target before
 * the reply is queued (the inbox mutex orders them). A cancel notice
 * (the second node) holds a reference, so the message lives until both
 * the answer and the notice are done with it.
 *
 * Cost per call: one malloc, a mutex hold per inbox crossing, and an
 * eventfd write only when that inbox was empty (a loop busy with messages
 * takes the whole inbox at once, on one wake). */
#include "core.h"

#include <awith/loops.h>

#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { AW__LM_CALL, AW__LM_REPLY, AW__LM_CANCEL, AW__LM_STOP };

typedef struct aw__lnode {
    struct aw__lnode *next;
    int kind;
} aw__lnode_t;

typedef struct aw__lslot aw__lslot_t;

typedef struct aw__lcall {
    aw__lnode_t node;                /* first: the call, then its reply */
    aw__lnode_t cnode;               /* the cancel notice */
    _Atomic int refs;                /* the call's circuit + a notice in flight */
    aw_loops_t *set;
    int from, to;
    aw_task_fn fn;
    void *arg;
    void (*abandon)(void *);
    /* the caller's loop */
    aw_task_t *waiter;               /* the task to wake, or NULL */
    uint8_t owner;                   /* the caller still handles the answer */
    uint8_t replied;
    /* the target's loop */
    uint8_t cancelled;               /* the notice arrived */
    aw_task_t *task;                 /* fn's task while it runs */
    aw__link_t rlink;                /* on the target's `running` list */
    /* the answer */
    int rc;
    aw_err_t *err;                   /* fn's error, whole (heap records), or NULL */
    char msg[200];                   /* else what went wrong, in words */
} aw__lcall_t;

struct aw__lslot {
    pthread_mutex_t mu;
    aw__lnode_t *head, *tail;        /* the inbox */
    int closed;                      /* the loop is gone: pushes fail */
    int evfd;                        /* the doorbell */
    aw__waiter_t waiter;             /* the reactor's, on evfd */
    aw__lnode_t stop;                /* the stop notice (aw_loops_stop) */
    /* the loop's own thread */
    aw_loop_t *loop;
    aw_scope_t *stop_scope;          /* around fn while it runs */
    int closing;                     /* fn returned: calls are refused */
    int lent;                        /* calls out whose caller awaits the answer */
    aw__list_t running;              /* calls in, spawned and not answered (rlink) */
    aw__atclose_t atclose;           /* waits for them if the grace ran out */
    int index;
    int status;                      /* aw_main_opts' */
    int started;                     /* the thread was created */
    pthread_t th;
    aw_loops_t *set;
};

struct aw_loops {
    int n;
    aw_loops_fn fn;
    void *arg;
    aw_loops_opts_t opts;
    _Atomic int stopping;
    _Atomic int first_fail;          /* index of the first loop that failed, or -1 */
    aw__lslot_t slots[];
};

static __thread aw__lslot_t *aw__loops_tls;

aw_loops_t *aw_loops_current(void) { return aw__loops_tls ? aw__loops_tls->set : NULL; }
int aw_loops_index(void) { return aw__loops_tls ? aw__loops_tls->index : -1; }
int aw_loops_count(void) { return aw__loops_tls ? aw__loops_tls->set->n : 0; }

/* ---- inboxes ---- */

/* Queue n for s's loop; -ESHUTDOWN if that loop is gone. Any thread. */
static int aw__inbox_push(aw__lslot_t *s, aw__lnode_t *n) {
    n->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        return -ESHUTDOWN;
    }
    int wasempty = s->head == NULL;
    if (s->tail)
        s->tail->next = n;
    else
        s->head = n;
    s->tail = n;
    if (wasempty) {
        /* the loop takes the whole inbox per wake: one write per batch */
        uint64_t one = 1;
        ssize_t w = write(s->evfd, &one, sizeof one);
        (void)w; /* EAGAIN: the counter is saturated, the doorbell rings anyway */
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static aw__lnode_t *aw__inbox_take(aw__lslot_t *s, int close) {
    pthread_mutex_lock(&s->mu);
    aw__lnode_t *n = s->head;
    s->head = s->tail = NULL;
    if (close)
        s->closed = 1;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void aw__lcall_put(aw__lcall_t *m) {
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        aw__err_free(m->err); /* an answer nobody took */
        aw__free(m);
    }
}

/* The answer found no caller's loop (it has closed, so the caller is
 * gone): release what the call held. Any thread. */
static void aw__lcall_orphan(aw__lcall_t *m) {
    if (m->abandon)
        m->abandon(m->arg);
    aw__lcall_put(m);
}

/* Send the answer back (the target's thread, or the closing thread). */
static void aw__lcall_reply(aw__lcall_t *m) {
    m->node.kind = AW__LM_REPLY;
    if (aw__inbox_push(&m->set->slots[m->from], &m->node) < 0)
        aw__lcall_orphan(m);
}

static void aw__lcall_refuse(aw__lcall_t *m, int rc, const char *why) {
    m->rc = rc;
    snprintf(m->msg, sizeof m->msg, "%s", why);
    aw__lcall_reply(m);
}

/* fn's task on the target loop. Never fails the root group: the status
 * and the message travel to the caller. */
static int aw__lcall_task(void *arg) {
    aw__lcall_t *m = arg;
    aw_task_t *t = aw__task_cur();
    int rc;
    if (m->cancelled) {
        rc = -ECANCELED; /* the caller left before fn started: it never runs */
        snprintf(m->msg, sizeof m->msg, "the caller was cancelled before the call started");
    } else {
        m->task = t;
        rc = aw__task_status(t, m->fn(m->arg));
        m->task = NULL;
        if (rc == -ECANCELED && !m->cancelled) {
            rc = -ESHUTDOWN; /* nobody asked: this loop's shutdown did */
            snprintf(m->msg, sizeof m->msg, "loop %d closed while running the call",
                     m->to);
        } else if (rc < 0) {
            /* the whole error, as the caller's own call would leave it
             * (its context, members, origin and SQLSTATE); words alone
             * if there is no memory for it */
            const aw_err_t *e = aw_err_current();
            char prefix[24];
            snprintf(prefix, sizeof prefix, "loop %d: ", m->to);
            m->err = aw__err_strip_cancels(aw__err_export(e, prefix));
            snprintf(m->msg, sizeof m->msg, "%s", e ? e->msg : aw_strerror(rc));
        }
    }
    aw_err_clear(); /* moved to the caller, in m->err or m->msg */
    m->rc = rc;
    aw__list_remove(&m->set->slots[m->to].running, &m->rlink);
    aw__lcall_reply(m);
    return 0;
}

/* The answer is back on the caller's loop. */
static void aw__lcall_answered(aw__lcall_t *m) {
    m->replied = 1;
    if (m->owner)
        m->set->slots[m->from].lent--;
    if (m->waiter) {
        aw_task_t *t = m->waiter;
        m->waiter = NULL;
        aw__task_wake(t, 0);
        return;
    }
    if (m->owner)
        return; /* the caller was woken by a cancel and will look */
    aw__lcall_orphan(m); /* abandoned: the caller passed arg over */
}

static void aw__inbox_dispatch(aw__lslot_t *s, aw__lnode_t *n) {
    switch (n->kind) {
    case AW__LM_CALL: {
        aw__lcall_t *m = (aw__lcall_t *)n;
        char why[96];
        if (s->closing) {
            snprintf(why, sizeof why, "loop %d is closing (its main task returned)", s->index);
            aw__lcall_refuse(m, -ESHUTDOWN, why);
        } else if (aw_spawn(NULL, aw__lcall_task, m, NULL) < 0) {
            aw_err_clear(); /* reported to the caller instead */
            snprintf(why, sizeof why, "loop %d: no memory for the call's task", s->index);
            aw__lcall_refuse(m, -ENOMEM, why);
        } else {
            aw__list_push_front(&s->running, &m->rlink);
        }
        break;
    }
    case AW__LM_REPLY:
        aw__lcall_answered((aw__lcall_t *)n);
        break;
    case AW__LM_CANCEL: {
        aw__lcall_t *m = (aw__lcall_t *)((char *)n - offsetof(aw__lcall_t, cnode));
        m->cancelled = 1;
        if (m->task)
            aw_task_cancel(m->task);
        aw__lcall_put(m);
        break;
    }
    case AW__LM_STOP:
        if (s->stop_scope)
            aw_scope_cancel(s->stop_scope);
        break;
    }
}

/* The doorbell rang (the reactor calls this on the loop's own stack,
 * outside any task): take the inbox, run it, watch the doorbell again. */
static void aw__inbox_wake(aw__waiter_t *w, int rc) {
    aw__lslot_t *s = (aw__lslot_t *)((char *)w - offsetof(aw__lslot_t, waiter));
    if (rc < 0)
        return; /* forgotten: the loop is going away */
    do {
        uint64_t v;
        ssize_t r = read(s->evfd, &v, sizeof v);
        (void)r;
        for (aw__lnode_t *n = aw__inbox_take(s, 0), *next; n; n = next) {
            next = n->next;
            aw__inbox_dispatch(s, n);
        }
    } while (aw__fd_watch(s->loop, s->evfd, EPOLLIN, &s->waiter) == 1);
}

/* ---- calls ---- */

/* The call answered -ESHUTDOWN while the set is stopping: the target was
 * closed by the set's stop, which stops this loop too (its notice may
 * still be on the way). Act on it now, so that a caller inside the stop
 * scope sees the stop's cancel, as it would have had the notice come
 * first: a stop stays a clean stop, whichever loop it reaches first. */
static bool aw__stopped_by_set(aw__lslot_t *self, int res) {
    if (res != -ESHUTDOWN || !atomic_load(&self->set->stopping) || !self->stop_scope)
        return false;
    aw_scope_cancel(self->stop_scope);
    return true;
}

static void aw__lcall_unwait(aw_task_t *t) {
    aw__lcall_t *m = t->wait_obj;
    m->waiter = NULL; /* woken by a cancel: the caller decides what next */
}

/* fn's failure, raised in the caller: the record fn's task left (moved
 * whole, *err taken), or its words when there was no memory for it, or
 * when fn's status is not that record's code (a bare code over it). */
static int aw__lcall_raise(aw_task_t *t, int to, int res, const char *msg, aw_err_t **err) {
    if (*err) {
        aw__err_move_chain(t, *err);
        *err = NULL;
        if (t->err->code == res)
            return res;
    }
    return aw_raise(res, "loop %d: %s", to, msg);
}

int aw_loops_call(int to, aw_task_fn fn, void *arg, void (*abandon)(void *)) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_loops_call");
    aw__lslot_t *self = aw__loops_tls;
    if (!self)
        return aw_raise(-EPERM, "aw_loops_call from a loop that is not one of a set "
                                "(start it with aw_loops_run)");
    aw_loops_t *set = self->set;
    if (to < 0 || to >= set->n || !fn)
        return aw_raise(-EINVAL, "aw_loops_call to loop %d of %d%s", to, set->n,
                        fn ? "" : " with a NULL function");
    int rc = aw_checkpoint();
    if (rc < 0) {
        if (abandon)
            abandon(arg); /* -ECANCELED always hands arg over */
        return rc;
    }
    aw__lcall_t *m = aw__calloc(1, sizeof *m);
    if (!m)
        return aw_raise(-ENOMEM, "aw_loops_call: no memory for the message");
    atomic_init(&m->refs, 1);
    m->node.kind = AW__LM_CALL;
    m->cnode.kind = AW__LM_CANCEL;
    m->set = set;
    m->from = self->index;
    m->to = to;
    m->fn = fn;
    m->arg = arg;
    m->abandon = abandon;
    m->waiter = t;
    m->owner = 1;
    if (aw__inbox_push(&set->slots[to], &m->node) < 0) {
        aw__free(m);
        if (aw__stopped_by_set(self, -ESHUTDOWN) && (rc = aw_checkpoint()) < 0) {
            if (abandon)
                abandon(arg); /* -ECANCELED hands arg over */
            return rc;
        }
        return aw_raise(-ESHUTDOWN, "call to loop %d: it has closed", to);
    }
    self->lent++;
    t->wait_obj = m;
    t->unwait = aw__lcall_unwait;
    uint64_t mark = t->errseq;
    rc = aw__task_wait(t, AW_NEVER, 1);
    int cancelled = 0;
    if (rc < 0 && !m->replied) {
        /* Cancelled (or the wait's deadline timer could not be armed):
         * pass the cancel on, so fn stops or never starts. */
        cancelled = rc == -ECANCELED;
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        if (aw__inbox_push(&set->slots[to], &m->cnode) < 0)
            aw__lcall_put(m); /* closed: it answers -ESHUTDOWN, if not already */
        if (cancelled && abandon) {
            m->owner = 0; /* the answer releases arg through abandon */
            self->lent--;
            return rc;
        }
        /* arg is borrowed: wait for fn's end, not cancellably (no timer:
         * this wait cannot fail) */
        m->waiter = t;
        t->wait_obj = m;
        t->unwait = NULL;
        aw__task_wait(t, AW_NEVER, 0);
    } else if (rc < 0) {
        cancelled = rc == -ECANCELED; /* the answer came in the same round */
    }
    int res = m->rc;
    char msg[sizeof m->msg];
    memcpy(msg, m->msg, sizeof msg);
    aw_err_t *err = m->err;
    m->err = NULL;
    void *a = m->arg;
    aw__lcall_put(m);
    if (cancelled && abandon) {
        aw__err_free(err);
        abandon(a); /* -ECANCELED hands arg over, even when the answer won */
        return rc;
    }
    if (rc < 0) {
        if (res >= 0) {
            /* fn finished: its result stands; the cancel is seen at the
             * caller's next cancellation point (level-triggered) */
            aw__err_restore(t, mark);
            return res;
        }
        if (res != -ECANCELED && cancelled && !aw__stopped_by_set(self, res))
            aw__lcall_raise(t, to, res, msg, &err); /* its own failure, under the cancel */
        aw__err_free(err);
        return cancelled ? aw__raise_cancel(t) : rc;
    }
    if (res < 0) {
        if (aw__stopped_by_set(self, res) && (rc = aw_checkpoint()) < 0) {
            aw__err_free(err);
            if (abandon)
                abandon(a); /* -ECANCELED hands arg over */
            return rc;
        }
        return aw__lcall_raise(t, to, res, msg, &err);
    }
    aw__err_free(err);
    return res;
}

/* ---- the loops ---- */

void aw_loops_stop(aw_loops_t *ls) {
    if (!ls || atomic_exchange(&ls->stopping, 1))
        return;
    for (int i = 0; i < ls->n; i++) {
        ls->slots[i].stop.kind = AW__LM_STOP;
        aw__inbox_push(&ls->slots[i], &ls->slots[i].stop); /* closed: nothing to stop */
    }
}

/* The loop closes with callers still awaiting answers: its shutdown
 * grace ran out while they waited (not cancellably: their arg is lent,
 * maybe from their stack). Their stacks go with the loop, and fn may
 * still write into arg: wait for each answer first, blocking the thread
 * as the close waits for the pool's threads, and refuse new calls. */
static void aw__loops_atclose(aw__atclose_t *a) {
    aw__lslot_t *s = (aw__lslot_t *)((char *)a - offsetof(aw__lslot_t, atclose));
    /* Calls whose task outlived the grace here: it never resumes, so it
     * can no longer touch arg; answer now (a caller on this loop too),
     * or their callers would wait for ever, their abandon never run. */
    for (aw__link_t *n; (n = aw__list_pop_front(&s->running));) {
        aw__lcall_t *m = aw__container(n, aw__lcall_t, rlink);
        m->rc = -ESHUTDOWN;
        snprintf(m->msg, sizeof m->msg, "loop %d closed with the call's task alive", s->index);
        aw__lcall_reply(m);
    }
    if (s->lent > 0)
        aw__log(s->loop, "awith: loop %d's close waits for %d call%s to other loops still "
                         "running with its tasks' arg (aw_loops_call without abandon)\n",
                s->index, s->lent, s->lent > 1 ? "s" : "");
    while (s->lent > 0) {
        for (aw__lnode_t *n = aw__inbox_take(s, 0), *next; n; n = next) {
            next = n->next;
            if (n->kind == AW__LM_CALL) {
                char why[96];
                snprintf(why, sizeof why, "loop %d is closing (its main task returned)", s->index);
                aw__lcall_refuse((aw__lcall_t *)n, -ESHUTDOWN, why);
            } else if (n->kind == AW__LM_REPLY) {
                aw__lcall_t *m = (aw__lcall_t *)n;
                if (m->owner) {
                    s->lent--;
                    aw__lcall_put(m); /* its caller never resumes */
                } else {
                    aw__lcall_orphan(m);
                }
            } else if (n->kind == AW__LM_CANCEL) {
                aw__lcall_put((aw__lcall_t *)((char *)n - offsetof(aw__lcall_t, cnode)));
            }
        }
        if (s->lent > 0) {
            struct pollfd p = {.fd = s->evfd, .events = POLLIN};
            uint64_t v;
            if (poll(&p, 1, -1) > 0) {
                ssize_t r = read(s->evfd, &v, sizeof v);
                (void)r; /* only the doorbell: the inbox is taken above */
            }
        }
    }
}

/* Each loop's main task: the doorbell, then fn inside the stop scope. */
static int aw__loops_main(void *arg) {
    aw__lslot_t *s = arg;
    aw_loops_t *set = s->set;
    s->loop = aw_loop_current();
    s->atclose.fn = aw__loops_atclose;
    aw__atclose_add(&s->atclose);
    s->waiter.wake = aw__inbox_wake;
    int rc = aw__fd_watch(s->loop, s->evfd, EPOLLIN, &s->waiter);
    if (rc < 0)
        return aw_raise(rc, "loop %d: cannot watch its doorbell: %s", s->index, aw_strerror(rc));
    if (rc == 1)
        aw__inbox_wake(&s->waiter, 0);
    int st = 0;
    aw_with (aw_scope_t *sc, aw_cancel_scope()) {
        s->stop_scope = sc;
        if (atomic_load(&set->stopping))
            aw_scope_cancel(sc);
        st = set->fn(set->arg, s->index);
        s->stop_scope = NULL;
    }
    s->stop_scope = NULL;
    s->closing = 1;
    int pending = aw_status();
    if (pending < 0)
        st = pending;
    else if (st == -ECANCELED)
        st = 0; /* the stop's cancel, absorbed by its scope */
    if (st < 0)
        aw_loops_stop(set); /* like a group: a failure stops the others */
    return st;
}

/* Close s's inbox (its loop is gone, or never ran); what is left gets
 * its answer now: calls are refused, answers go to callers that are
 * gone, notices are dropped. */
static void aw__inbox_close(aw__lslot_t *s) {
    for (aw__lnode_t *n = aw__inbox_take(s, 1), *next; n; n = next) {
        next = n->next;
        if (n->kind == AW__LM_CALL) {
            char why[96];
            snprintf(why, sizeof why, "loop %d closed before running the call", s->index);
            aw__lcall_refuse((aw__lcall_t *)n, -ESHUTDOWN, why);
        } else if (n->kind == AW__LM_REPLY) {
            aw__lcall_orphan((aw__lcall_t *)n);
        } else if (n->kind == AW__LM_CANCEL) {
            aw__lcall_put((aw__lcall_t *)((char *)n - offsetof(aw__lcall_t, cnode)));
        }
    }
}

static void *aw__loops_thread(void *arg) {
    aw__lslot_t *s = arg;
    aw_loops_t *set = s->set;
    if (set->opts.pin) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus > 0) {
            cpu_set_t cs;
            CPU_ZERO(&cs);
            CPU_SET(s->index % cpus, &cs);
            pthread_setaffinity_np(pthread_self(), sizeof cs, &cs);
        }
    }
    /* cancel_on_signals is one loop's per process: loop 0 takes it (the
     * others would fail to start with -EBUSY); the signal cancels loop
     * 0's main task, whose failure stops the set like any other. */
    aw_loop_opts_t lo = set->opts.loop;
    if (s->index != 0)
        lo.cancel_on_signals = false;
    aw__loops_tls = s;
    s->status = aw_main_opts(&lo, aw__loops_main, s);
    aw__loops_tls = NULL;
    if (s->status < 0) {
        int none = -1;
        atomic_compare_exchange_strong(&set->first_fail, &none, s->index);
        aw_loops_stop(set);
    }
    aw__inbox_close(s);
    return NULL;
}

static void aw__loops_free(aw_loops_t *ls) {
    for (int i = 0; i < ls->n; i++) {
        if (ls->slots[i].evfd >= 0)
            close(ls->slots[i].evfd);
        pthread_mutex_destroy(&ls->slots[i].mu);
    }
    aw__free(ls);
}

int aw_loops_join(aw_loops_t *ls) {
    if (!ls)
        return -EINVAL;
    for (int i = 0; i < ls->n; i++)
        if (ls->slots[i].started)
            pthread_join(ls->slots[i].th, NULL);
    int first = atomic_load(&ls->first_fail);
    int rc = first >= 0 ? ls->slots[first].status : 0;
    aw__loops_free(ls);
    return rc;
}

int aw_loops_start(aw_loops_t **out, int n, aw_loops_fn fn, void *arg,
                   const aw_loops_opts_t *opts) {
    if (n < 1 || !fn || !out)
        return aw_raise(-EINVAL, "aw_loops_start: %s", n < 1 ? "n must be at least 1"
                                                     : "NULL function or result");
    aw_loops_t *ls = aw__calloc(1, sizeof *ls + (size_t)n * sizeof ls->slots[0]);
    if (!ls)
        return aw_raise(-ENOMEM, "aw_loops_start: no memory for %d loops", n);
    ls->n = n;
    ls->fn = fn;
    ls->arg = arg;
    if (opts)
        ls->opts = *opts;
    atomic_init(&ls->first_fail, -1);
    for (int i = 0; i < n; i++) {
        aw__lslot_t *s = &ls->slots[i];
        pthread_mutex_init(&s->mu, NULL);
        s->index = i;
        s->set = ls;
        s->evfd = -1;
    }
    for (int i = 0; i < n; i++) {
        ls->slots[i].evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ls->slots[i].evfd < 0) {
            int e = errno;
            aw__loops_free(ls);
            return aw_raise(-e, "aw_loops_start: eventfd for loop %d: %s", i, aw_strerror(-e));
        }
    }
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&ls->slots[i].th, NULL, aw__loops_thread, &ls->slots[i]);
        if (e) {
            aw_loops_stop(ls);
            for (int j = i; j < n; j++)
                aw__inbox_close(&ls->slots[j]); /* never ran: refuse what was sent */
            aw_loops_join(ls);
            return aw_raise(-EAGAIN, "aw_loops_start: thread for loop %d of %d: %s", i, n,
                            aw_strerror(-e));
        }
        ls->slots[i].started = 1;
    }
    *out = ls;
    return 0;
}

int aw_loops_run(int n, aw_loops_fn fn, void *arg, const aw_loops_opts_t *opts) {
    aw_loops_t *ls;
    int rc = aw_loops_start(&ls, n, fn, arg, opts);
    if (rc < 0)
        return rc;
    return aw_loops_join(ls);
}
