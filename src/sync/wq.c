/* wq.c: waiting in a FIFO queue, cancellably. */
#include "wq.h"

void aw__wq_unwait(aw_task_t *t) {
    aw__wnode_t *n = t->wait_obj;
    if (n->q)
        aw__wq_remove(n->q, n);
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
    return aw__wq_wait_point_inline(q, t, who, d, giveback, obj, kind);
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
