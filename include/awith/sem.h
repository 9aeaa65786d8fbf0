/* awith/sem.h: counting semaphores, plain and bounded (asyncio.Semaphore
 * and BoundedSemaphore). FIFO hand-off and cancel safety as for locks
 * (SEMANTICS J1, J2, J7).
 *
 *   static aw_sem_t slots = AW_SEM_INIT("slots", 10, 10);  // bounded at 10
 *   aw_with (aw_sem_held(&slots)) { ... } */
#ifndef AWITH_SEM_H
#define AWITH_SEM_H

#include <awith/task.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_sem {           /* fields private */
    int64_t value;
    int64_t bound;                /* 0: unbounded */
    aw_waitq_t waiters;
    const char *name;
    uint32_t streak;
} aw_sem_t;

#define AW_SEM_INIT(name, value, bound) {(value), (bound), {NULL, NULL}, (name), 0}

/* Take a permit, suspending while there is none. 0, -ECANCELED. */
AW_API int aw_sem_acquire(aw_sem_t *s);
/* Give one back (to the first waiter, if any). Never suspends. -EINVAL if a
 * bounded semaphore would go past its bound (J7). */
AW_API int aw_sem_release(aw_sem_t *s);
AW_API int64_t aw_sem_value(const aw_sem_t *s);

extern AW_API const aw_cm_type_t aw_sem_type;
#define aw_sem_held(s) aw_cm(&aw_sem_type, (s))

#ifdef __cplusplus
}
#endif

#endif
