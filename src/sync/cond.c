/* cond.c: condition variable; re-taking the lock is not cancellable (a
 * cancel that lands during it is returned once the lock is held). */
#include <awith/cond.h>

#include "wq.h"

/* A notified waiter cancelled before it ran passes the notification to
 * the next waiter (SEMANTICS M7, CPython gh-112202): it would be lost
 * otherwise, and that waiter would wait for a notify already made. */
static void aw__cond_pass_on(void *p) {
    aw_cond_t *c = p;
    aw__wq_grant(&c->waiters);
}

/* The caller holds c's lock: 0, or -EPERM raised (op names the call). */
static int aw__cond_held(aw_cond_t *c, const char *op) {
    aw_task_t *self = aw__task_self();
    if (!self || c->lock->owner != self)
        return aw_raise(-EPERM, "%s: the caller does not hold lock '%s'", op,
                        c->lock->name ? c->lock->name : "?");
    return 0;
}

/* A notified wait whose re-take of the lock was cancelled (or cut by a
 * deadline) while it queued for the lock: the wait is one suspension
 * point in a cancelled scope, so it returns -ECANCELED, now holding the
 * lock (decision 1, J6), as asyncio's and Trio's wait raise there. Its
 * caller will not act on the notify, so it passes to the next waiter
 * (M7; a spurious wake-up at worst, as CPython re-notifies). */
static int aw__cond_cut_in_take(aw_cond_t *c) {
    int rc = aw__point(aw__task_cur(), NULL); /* the running coroutine's chain, as a point reads it */
    if (rc < 0)
        aw__cond_pass_on(c);
    return rc;
}

int aw_cond_wait(aw_cond_t *c) {
    aw_task_t *self = aw__task_self();
    if (!self)
        return aw__no_task("aw_cond_wait");
    int rc = aw__cond_held(c, "aw_cond_wait");
    if (rc < 0)
        return rc;
    aw_lock_release(c->lock);
    rc = aw__wq_wait(&c->waiters, aw__cond_pass_on, c, AW__WAIT_CONDITION);
    int taken = aw__lock_take(c->lock);
    if (rc == 0 && taken == 0)
        rc = aw__cond_cut_in_take(c);
    return rc < 0 ? rc : taken;
}

int aw_cond_notify(aw_cond_t *c, int n) {
    int rc = aw__cond_held(c, "aw_cond_notify");
    if (rc < 0)
        return rc;
    while (n-- > 0 && aw__wq_grant(&c->waiters))
        ;
    return 0;
}

int aw_cond_notify_all(aw_cond_t *c) {
    int rc = aw__cond_held(c, "aw_cond_notify_all");
    if (rc < 0)
        return rc;
    while (aw__wq_grant(&c->waiters))
        ;
    return 0;
}
