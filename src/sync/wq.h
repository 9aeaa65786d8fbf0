/* wq.h (private): the FIFO wait queue under every synchronisation
 * primitive. Nodes live on the waiting task's stack; a wake-up hands over
 * what was waited for (`granted`) so nobody can barge in between the wake
 * and the run (SEMANTICS J1); a granted waiter that is cancelled before it
 * runs gives its grant back, which passes it to the next (J2). */
#ifndef AW_SYNC_WQ_H
#define AW_SYNC_WQ_H

#include "../core/core.h"
#include "../core/list.h"
#include <awith/lock.h>

typedef struct aw__wnode aw__wnode_t;
struct aw__wnode {
    aw__link_t link;              /* in q (src/core/list.h) */
    aw_task_t *task;              /* the coroutine to wake */
    aw_task_t *who;               /* the task it acts for (aw_task_self) */
    aw__wq_t *q;                  /* NULL once off the queue */
    int granted;
};

static inline aw__wnode_t *aw__wq_first(const aw__wq_t *q) {
    return q->head ? aw__container(q->head, aw__wnode_t, link) : NULL;
}

static inline void aw__wq_push(aw__wq_t *q, aw__wnode_t *n) {
    aw__list_push_back(q, &n->link);
    n->q = q;
}

static inline void aw__wq_remove(aw__wq_t *q, aw__wnode_t *n) {
    assert(n->q == q);
    aw__list_remove(q, &n->link);
    n->q = NULL;
}

/* aw__task_wake(t, 0) for the task of a node just taken off its queue:
 * its unwait (aw__wq_unwait) has nothing left to do, so it is not called. */
static inline void aw__wq_wake(aw_task_t *t) {
    if (t->state != AW__T_WAITING)
        return;
    t->unwait = NULL;
    if (__builtin_expect(aw__timer_armed(&t->timer), 0)) /* a deadline on its chain */
        aw__timer_disarm(&t->loop->timers, &t->timer);
    t->wake_rc = 0;
    t->state = AW__T_READY;
    aw__loop_ready(t->loop, &t->coro);
}

/* Wake the first waiter with the grant. Returns 0 if nobody waited. */
static inline int aw__wq_grant(aw__wq_t *q) {
    aw__wnode_t *n = aw__wq_first(q);
    if (!n)
        return 0;
    /* aw__wq_remove of the head; the node's links are left as they are
     * (its waiter reads only n->q and n->granted) */
    aw__link_t *next = n->link.next;
    q->head = next;
    if (next)
        next->prev = NULL;
    else
        q->tail = NULL;
    n->q = NULL;
    n->granted = 1;
    aw__wq_wake(n->task);
    return 1;
}

/* A waiting task's unwait: its node off the queue, if still on it. */
void aw__wq_unwait(aw_task_t *t);

/* Queue n (t's, on its stack) in q and say what t waits for. */
static inline void aw__wq_enqueue(aw__wq_t *q, aw__wnode_t *n, aw_task_t *t, void *obj,
                                  aw__wait_kind_t kind) {
    aw__wq_push(q, n);
    t->wait_obj = n;
    t->unwait = aw__wq_unwait;
    t->wait_kind = (uint8_t)kind;
    t->wait_on = obj;
}

/* After the wait (rc): off the queue, and a grant that cannot be used
 * given back. */
static inline __attribute__((always_inline)) int aw__wq_waited(aw__wq_t *q, aw__wnode_t *n,
                                                                aw_task_t *t, int rc,
                                                                void (*giveback)(void *),
                                                                void *obj) {
    t->wait_kind = AW__WAIT_NONE;
    if (n->q)
        aw__wq_remove(q, n);
    if (n->granted && rc == 0 && aw__cancelled(t)) {
        giveback(obj); /* woken, then cancelled before it ran: pass it on */
        return aw__raise_cancel(t);
    }
    if (n->granted && rc < 0) {
        giveback(obj);
        return rc;
    }
    return rc;
}

/* aw__wq_wait_point, inline: for a primitive's own wait, whose giveback
 * and kind are then constants. */
static inline __attribute__((always_inline)) int
aw__wq_wait_point_inline(aw__wq_t *q, aw_task_t *t, aw_task_t *who, aw_ns_t d,
                         void (*giveback)(void *), void *obj, aw__wait_kind_t kind) {
    aw__wnode_t n = {.task = t, .who = who};
    aw__wq_enqueue(q, &n, t, obj, kind);
    int rc = aw__task_wait_point(t, AW_NEVER, d);
    return aw__wq_waited(q, &n, t, rc, giveback, obj);
}

/* Wait in q until granted. 0 when granted; -ECANCELED (not granted, or
 * the grant handed back through `giveback`). */
int aw__wq_wait(aw__wq_t *q, void (*giveback)(void *), void *obj, aw__wait_kind_t kind);
/* The same, right after a cancellation point of t (the running
 * coroutine, acting for task who) that passed and found the effective
 * deadline d, with nothing run since (aw__task_wait_point). */
int aw__wq_wait_point(aw__wq_t *q, aw_task_t *t, aw_task_t *who, aw_ns_t d,
                      void (*giveback)(void *), void *obj, aw__wait_kind_t kind);
/* The same, not cancellable (a condition re-taking its lock). */
int aw__wq_wait_shielded(aw__wq_t *q, const void *obj);
/* Take the lock without a cancellation point (for conditions). 0, or
 * -EOWNERDEAD (raised) if its last owner ended holding it: held anyway. */
int aw__lock_take(aw_lock_t *l);

#endif
