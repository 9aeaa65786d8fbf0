/* event.c: a flag with a queue of waiters; set wakes them all. */
#include <awith/event.h>

#include "wq.h"

static void aw__event_noop(void *p) { (void)p; }

int aw_event_wait(aw_event_t *e) {
    if (!aw__task_cur())
        return aw__no_task("aw_event_wait");
    int rc = aw_checkpoint();
    if (rc < 0 || e->set)
        return rc;
    rc = aw__wq_wait(&e->waiters, aw__event_noop, e, AW__WAIT_EVENT);
    return rc;
}

void aw_event_set(aw_event_t *e) {
    e->set = 1;
    while (aw__wq_grant(&e->waiters))
        ;
}

void aw_event_clear(aw_event_t *e) { e->set = 0; }
bool aw_event_is_set(const aw_event_t *e) { return e->set; }
