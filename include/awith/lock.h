/* awith/lock.h: a mutual-exclusion lock with an owner (asyncio.Lock done
 * right: SEMANTICS J and part (c) 12, 19).
 *
 *   static aw_lock_t lock = AW_LOCK_INIT("shared");
 *   aw_with (aw_locked(&lock)) { ... }      // the seeds' `async with lock`
 *
 * - FIFO hand-off: release gives the lock to the first waiter directly; a
 *   task that releases and re-acquires at once queues behind it (J1).
 * - A waiter woken and then cancelled before it runs passes the lock on (J2).
 * - Release by a task that does not hold it: -EPERM (J3, J4). Acquire by
 *   the owner: -EDEADLK, never a silent hang (J5).
 * - Acquire is always a cancellation point, even uncontended ((c) 19), and
 *   every 128th uncontended acquire in a row yields, so a loop of them
 *   cannot starve other tasks.
 * - A task that ends while holding a lock (SEMANTICS M6): the lock is
 *   released as it ends, so its waiters never hang; the task's status is
 *   -EOWNERDEAD with a record naming the lock and where it was acquired;
 *   the next acquirer gets -EOWNERDEAD once, with a record naming the task
 *   that died, and does NOT hold the lock (unlike a robust pthread mutex:
 *   a failed enter holds nothing, decision 7, so `aw_with (aw_locked(..))`
 *   skips its block and no exit is owed); it checks the state the lock
 *   protects and acquires again. A condition's wait that re-takes such a
 *   lock returns -EOWNERDEAD holding it, as every return of aw_cond_wait
 *   does. The dump (awith/introspect.h) shows each holder's acquisition
 *   site. */
#ifndef AWITH_LOCK_H
#define AWITH_LOCK_H

#include <awith/task.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_lock {          /* fields private */
    aw_task_t *owner;
    aw_waitq_t waiters;
    const char *name;
    uint32_t streak;              /* uncontended acquires in a row */
    struct aw__link held;         /* in the owner's list of locks held (introspection) */
    const char *file;             /* where the owner acquired it */
    int line;
    const char *dead_task;        /* an owner ended holding it: told to the next acquirer */
    const char *dead_file;
    int dead_line;
} aw_lock_t;

#define AW_LOCK_INIT(name) {NULL, {NULL, NULL}, (name), 0, {NULL, NULL}, NULL, 0, NULL, NULL, 0}

/* Suspends while another task holds it. A cancellation point. 0,
 * -ECANCELED, -EDEADLK, -EOWNERDEAD (its last owner ended holding it; not
 * taken, see above), -EPERM outside a task. The call site is recorded as
 * the acquisition site (reports, dump). */
#define aw_lock_acquire(l) aw__lock_acquire_at((l), __FILE__, __LINE__)
AW_API int aw__lock_acquire_at(aw_lock_t *l, const char *file, int line);
AW_API int (aw_lock_acquire)(aw_lock_t *l); /* the same, site unknown */
/* Never suspends. 0, or -EPERM if the caller is not the owner. */
AW_API int aw_lock_release(aw_lock_t *l);
/* The holder, or NULL. */
AW_API aw_task_t *aw_lock_owner(const aw_lock_t *l);

extern AW_API const aw_cm_type_t aw_lock_type;
#define aw_locked(l) aw_cm(&aw_lock_type, (l))

#ifdef __cplusplus
}
#endif

#endif
