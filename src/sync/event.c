/* event.c: a flag with a queue of waiters; set wakes them all. */
#include <awith/event.h>

#include "wq.h"

static void aw__event_noop(void *p) { (void)p; }

int aw_event_wait(aw_event_t *e) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_event_wait");
    AW__TRACE(t, AW_TRACE_POINT, NULL, 0); /* aw_checkpoint, inline */
    aw_ns_t d;
    int rc = aw__point(t, &d);
    if (rc < 0 || e->set)
        return rc;
    /* the point above was the wait's: it is not made twice */
    return aw__wq_wait_point(&e->waiters, t, aw__task_self_of(t), d, aw__event_noop, e,
                             AW__WAIT_EVENT);
}

void aw_event_set(aw_event_t *e) {
    e->set = 1;
    while (aw__wq_grant(&e->waiters))
        ;
}

void aw_event_clear(aw_event_t *e) { e->set = 0; }
bool aw_event_is_set(const aw_event_t *e) { return e->set; }
