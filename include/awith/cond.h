/* awith/cond.h: a condition variable bound to an aw_lock_t
 * (asyncio.Condition).
 *
 *   aw_with (aw_locked(&lock)) {
 *       while (!ready)
 *           if (aw_cond_wait(&cond) < 0) aw_leave();
 *   }
 *
 * aw_cond_wait releases the lock, waits for a notify, and re-takes the lock
 * before returning -- also when it was cancelled (SEMANTICS J6), so the
 * block's exit always finds the lock held. A notified waiter that is
 * cancelled before it runs, or while it queues to re-take the lock,
 * returns -ECANCELED and passes the notification to the next waiter, so
 * none is lost (SEMANTICS M7, CPython gh-112202). */
#ifndef AWITH_COND_H
#define AWITH_COND_H

#include <awith/lock.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_cond {          /* fields private */
    aw_lock_t *lock;
    aw_waitq_t waiters;
} aw_cond_t;

#define AW_COND_INIT(lockp) {(lockp), {NULL, NULL}}

/* The caller must hold the lock (-EPERM otherwise). 0, -ECANCELED; the
 * lock is held again on return either way. */
AW_API int aw_cond_wait(aw_cond_t *c);
/* Wake up to n waiters (FIFO), or all of them. Never suspends. The
 * caller must hold the lock, as asyncio's and Trio's notify require: a
 * notify without it races the state the waiters test. Returns 0, or
 * -EPERM ("the caller does not hold lock 'NAME'"), waking nobody. */
AW_API int aw_cond_notify(aw_cond_t *c, int n);
AW_API int aw_cond_notify_all(aw_cond_t *c);

#ifdef __cplusplus
}
#endif

#endif
