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

/* Wake the first waiter with the grant. Returns 0 if nobody waited. */
static inline int aw__wq_grant(aw__wq_t *q) {
    aw__wnode_t *n = aw__wq_first(q);
    if (!n)
        return 0;
    aw__wq_remove(q, n);
    n->granted = 1;
    n->task->unwait = NULL; /* off the queue already: nothing to leave */
    aw__task_wake(n->task, 0);
    return 1;
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
