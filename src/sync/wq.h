/* wq.h (private): the FIFO wait queue under every synchronisation
 * primitive. Nodes live on the waiting task's stack; a wake-up hands over
 * what was waited for (`granted`) so nobody can barge in between the wake
 * and the run (SEMANTICS J1); a granted waiter that is cancelled before it
 * runs gives its grant back, which passes it to the next (J2). */
#ifndef AW_SYNC_WQ_H
#define AW_SYNC_WQ_H

#include "../core/core.h"
#include <awith/lock.h>

typedef struct aw__wnode aw__wnode_t;
struct aw__wnode {
    aw_task_t *task;              /* the coroutine to wake */
    aw_task_t *who;               /* the task it acts for (aw_task_self) */
    aw__wnode_t *prev, *next;
    aw__wq_t *q;
    int granted;
};

static inline void aw__wq_push(aw__wq_t *q, aw__wnode_t *n) {
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    n->q = q;
}

static inline void aw__wq_remove(aw__wq_t *q, aw__wnode_t *n) {
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->q = NULL;
}

/* Wake the first waiter with the grant. Returns 0 if nobody waited. */
static inline int aw__wq_grant(aw__wq_t *q) {
    aw__wnode_t *n = q->head;
    if (!n)
        return 0;
    aw__wq_remove(q, n);
    n->granted = 1;
    aw__task_wake(n->task, 0);
    return 1;
}

/* Wait in q until granted. 0 when granted; -ECANCELED (not granted, or
 * the grant handed back through `giveback`). */
int aw__wq_wait(aw__wq_t *q, void (*giveback)(void *), void *obj, const char *what);
/* The same, not cancellable (a condition re-taking its lock). */
int aw__wq_wait_shielded(aw__wq_t *q, const void *obj);
/* Take the lock without a cancellation point (for conditions). 0, or
 * -EOWNERDEAD (raised) if its last owner ended holding it: held anyway. */
int aw__lock_take(aw_lock_t *l);

#endif
