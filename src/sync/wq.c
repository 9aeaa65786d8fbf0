/* wq.c: waiting in a FIFO queue, cancellably. */
#include "wq.h"

static void aw__wq_unwait(aw_task_t *t) {
    aw__wnode_t *n = t->wait_obj;
    if (n->q)
        aw__wq_remove(n->q, n);
}

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
static inline int aw__wq_waited(aw__wq_t *q, aw__wnode_t *n, aw_task_t *t, int rc,
                                void (*giveback)(void *), void *obj) {
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

int aw__wq_wait(aw__wq_t *q, void (*giveback)(void *), void *obj, aw__wait_kind_t kind) {
    aw_task_t *t = aw__task_cur();
    aw__wnode_t n = {.task = t, .who = aw__task_self()};
    aw__wq_enqueue(q, &n, t, obj, kind);
    int rc = aw__task_wait(t, AW_NEVER, 1);
    return aw__wq_waited(q, &n, t, rc, giveback, obj);
}

int aw__wq_wait_point(aw__wq_t *q, aw_task_t *t, aw_task_t *who, aw_ns_t d,
                      void (*giveback)(void *), void *obj, aw__wait_kind_t kind) {
    aw__wnode_t n = {.task = t, .who = who};
    aw__wq_enqueue(q, &n, t, obj, kind);
    int rc = aw__task_wait_point(t, AW_NEVER, d);
    return aw__wq_waited(q, &n, t, rc, giveback, obj);
}

int aw__wq_wait_shielded(aw__wq_t *q, const void *obj) {
    aw_task_t *t = aw__task_cur();
    aw__wnode_t n = {.task = t, .who = aw__task_self()};
    aw__wq_push(q, &n);
    t->wait_kind = AW__WAIT_LOCK;
    t->wait_on = obj;
    aw__task_wait(t, AW_NEVER, 0);
    t->wait_kind = AW__WAIT_NONE;
    return 0;
}
