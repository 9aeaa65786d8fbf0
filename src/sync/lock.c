/* lock.c: an owned lock on the FIFO wait queue. */
#include <awith/lock.h>

#include "wq.h"

enum { AW__STREAK_YIELD = 128 };

/* Every change of owner goes through here: keeps each task's list of held
 * locks for introspection. O(locks held) on release. */
static void aw__lock_set_owner(aw_lock_t *l, aw_task_t *t) {
    if (l->owner) {
        aw_lock_t **p = &l->owner->locks;
        while (*p && *p != l)
            p = &(*p)->next_held;
        if (*p)
            *p = l->next_held;
    }
    l->owner = t;
    l->next_held = NULL;
    if (t) {
        l->next_held = t->locks;
        t->locks = l;
    }
}

static void aw__lock_giveback(void *p) {
    aw_lock_t *l = p;
    aw_lock_release(l);
}

int aw_lock_acquire(aw_lock_t *l) {
    aw_task_t *self = aw_task_self();
    if (!self)
        return -EPERM;
    if (l->owner == self)
        return aw_raise(-EDEADLK, "lock '%s' is already held by this task ('%s')",
                        l->name ? l->name : "?", self->name);
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    if (!l->owner && !l->waiters.head) {
        aw__lock_set_owner(l, self);
        if (++l->streak % AW__STREAK_YIELD == 0)
            aw_yield(); /* fairness; a cancel here is seen at the next checkpoint */
        return 0;
    }
    l->streak = 0;
    rc = aw__wq_wait(&l->waiters, aw__lock_giveback, l, "lock");
    /* on a grant, release already made us the owner */
    return rc;
}

int aw_lock_release(aw_lock_t *l) {
    aw_task_t *self = aw_task_self();
    if (l->owner != self || !self)
        return aw_raise(-EPERM, "lock '%s' released by task '%s', which does not hold it%s%s",
                        l->name ? l->name : "?", self ? self->name : "(none)",
                        l->owner ? "; the holder is " : "", l->owner ? l->owner->name : "");
    aw__wnode_t *n = l->waiters.head;
    aw__lock_set_owner(l, n ? n->who : NULL);
    if (n)
        aw__wq_grant(&l->waiters);
    return 0;
}

void aw__lock_take(aw_lock_t *l) {
    if (!l->owner && !l->waiters.head)
        aw__lock_set_owner(l, aw_task_self());
    else
        aw__wq_wait_shielded(&l->waiters, l); /* release hands it to us */
}

aw_task_t *aw_lock_owner(const aw_lock_t *l) { return l->owner; }

static int aw__lock_enter(void *self, void **out) {
    *out = self;
    return aw_lock_acquire(self);
}

static int aw__lock_exit(void *self, const aw_err_t *err) {
    int rc = aw_lock_release(self);
    return rc < 0 ? rc : 0;
}

const aw_cm_type_t aw_lock_type = {"lock", aw__lock_enter, aw__lock_exit, AW_CM_SHARED};
