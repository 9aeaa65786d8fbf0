/* cond.c: condition variable; re-taking the lock is not cancellable. */
#include <awith/cond.h>

#include "wq.h"

/* A notified waiter cancelled before it ran passes the notification to
 * the next waiter (SEMANTICS M7, CPython gh-112202): it would be lost
 * otherwise, and that waiter would wait for a notify already made. */
static void aw__cond_pass_on(void *p) {
    aw_cond_t *c = p;
    aw__wq_grant(&c->waiters);
}

int aw_cond_wait(aw_cond_t *c) {
    aw_task_t *self = aw__task_self();
    if (!self)
        return aw__no_task("aw_cond_wait");
    if (c->lock->owner != self)
        return aw_raise(-EPERM, "aw_cond_wait: the caller does not hold lock '%s'",
                        c->lock->name ? c->lock->name : "?");
    aw_lock_release(c->lock);
    int rc = aw__wq_wait(&c->waiters, aw__cond_pass_on, c, AW__WAIT_CONDITION);
    int taken = aw__lock_take(c->lock);
    return rc < 0 ? rc : taken;
}

void aw_cond_notify(aw_cond_t *c, int n) {
    while (n-- > 0 && aw__wq_grant(&c->waiters))
        ;
}

void aw_cond_notify_all(aw_cond_t *c) {
    while (aw__wq_grant(&c->waiters))
        ;
}
