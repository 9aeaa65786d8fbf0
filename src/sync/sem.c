/* sem.c: counting semaphore on the FIFO wait queue. */
#include <awith/sem.h>

#include "wq.h"

enum { AW__STREAK_YIELD = 128 };

static void aw__sem_giveback(void *p) { aw_sem_release(p); }

int aw_sem_acquire(aw_sem_t *s) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_sem_acquire");
    AW__TRACE(t, AW_TRACE_POINT, NULL, 0); /* aw_checkpoint, inline */
    aw_ns_t d;
    int rc = aw__point(t, &d);
    if (rc < 0)
        return rc;
    if (s->value > 0 && !s->waiters.head) {
        s->value--;
        if (++s->streak % AW__STREAK_YIELD == 0)
            aw_yield();
        return 0;
    }
    s->streak = 0;
    /* the point above was the wait's: it is not made twice */
    return aw__wq_wait_point(&s->waiters, t, aw__task_self_of(t), d, aw__sem_giveback, s,
                             AW__WAIT_SEMAPHORE);
}

int aw_sem_release(aw_sem_t *s) {
    if (aw__wq_grant(&s->waiters))
        return 0; /* the permit goes straight to the first waiter */
    if (s->bound && s->value >= s->bound)
        return aw_raise(-EINVAL, "bounded semaphore '%s' released more times than acquired",
                        s->name ? s->name : "?");
    s->value++;
    return 0;
}

int64_t aw_sem_value(const aw_sem_t *s) { return s->value; }

static int aw__sem_enter(void *self, void **out) {
    *out = self;
    return aw_sem_acquire(self);
}

static int aw__sem_exit(void *self, const aw_err_t *err) {
    int rc = aw_sem_release(self);
    return rc < 0 ? rc : 0;
}

const aw_cm_type_t aw_sem_type = {"semaphore", aw__sem_enter, aw__sem_exit, AW_CM_SHARED};
