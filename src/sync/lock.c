/* lock.c: an owned lock on the FIFO wait queue. */
#include <awith/lock.h>

#include "wq.h"

enum { AW__STREAK_YIELD = 128 };

static int aw__lock_owner_ended(aw_task_t *t);

/* Every change of owner goes through here: keeps each task's list of held
 * locks for introspection. O(1). */
static void aw__lock_set_owner(aw_lock_t *l, aw_task_t *t) {
    if (l->owner)
        aw__list_remove(&l->owner->locks, &l->held);
    l->owner = t;
    if (t) {
        aw__task_end_locks = aw__lock_owner_ended; /* one store: the core calls it back */
        aw__list_push_front(&t->locks, &l->held);
    }
}

static void aw__lock_giveback(void *p) {
    aw_lock_t *l = p;
    aw_lock_release(l);
}

/* Hand l to its first waiter, or free it. */
static void aw__lock_pass(aw_lock_t *l) {
    aw__wnode_t *n = aw__wq_first(&l->waiters);
    aw__lock_set_owner(l, n ? n->who : NULL);
    if (n)
        aw__wq_grant(&l->waiters);
}

/* SEMANTICS M6, from the core as task t ends (t->locks not empty): each
 * lock it still holds is released (its waiters must not hang on an owner
 * that is gone, and the dump must not follow a pointer to a freed task)
 * and marked for its next acquirer; t fails with -EOWNERDEAD naming it. */
static int aw__lock_owner_ended(aw_task_t *t) {
    int rc = 0;
    while (!aw__list_empty(&t->locks)) {
        aw_lock_t *l = aw__container(t->locks.head, aw_lock_t, held);
        const char *name = l->name ? l->name : "?";
        const char *file = l->file ? l->file : "?";
        l->dead_task = t->name;
        l->dead_file = l->file;
        l->dead_line = l->line;
        aw__lock_pass(l); /* unlinks l from t->locks */
        rc = aw__raise_at(t, file, l->line, t->name, -EOWNERDEAD,
                          "task '%s' ended holding lock '%s' (acquired at %s:%d): the lock was "
                          "released, and its next acquirer gets -EOWNERDEAD",
                          t->name, name, file, l->line);
    }
    return rc;
}

/* After taking l: if its last owner ended holding it, tell (once). */
static int aw__lock_owner_died(aw_lock_t *l) {
    const char *dead = l->dead_task, *file = l->dead_file ? l->dead_file : "?";
    l->dead_task = NULL;
    return aw_raise(-EOWNERDEAD, "lock '%s': its owner, task '%s', ended holding it (acquired "
                    "at %s:%d), so the state it protects may be inconsistent; check it, then "
                    "acquire again", l->name ? l->name : "?", dead, file, l->dead_line);
}

int aw__lock_acquire_at(aw_lock_t *l, const char *file, int line) {
    aw_task_t *cur = aw__task_cur(), *self = aw__task_self();
    if (!self)
        return aw__no_task("aw_lock_acquire");
    /* a cancellation point first, whatever else is wrong (Trio's order) */
    AW__TRACE(cur, AW_TRACE_POINT, NULL, 0); /* aw_checkpoint, inline */
    int rc = aw__point(cur, NULL);
    if (rc < 0)
        return rc;
    if (l->owner == self)
        return aw_raise(-EDEADLK, "lock '%s' is already held by this task ('%s')",
                        l->name ? l->name : "?", self->name);
    if (!l->owner && !l->waiters.head) {
        aw__lock_set_owner(l, self);
        l->file = file;
        l->line = line;
        if (__builtin_expect(l->dead_task != NULL, 0)) {
            aw__lock_pass(l); /* not taken: a failed acquire holds nothing */
            return aw__lock_owner_died(l);
        }
        if (++l->streak % AW__STREAK_YIELD == 0)
            aw_yield(); /* fairness; a cancel here is seen at the next checkpoint */
        return 0;
    }
    l->streak = 0;
    rc = aw__wq_wait(&l->waiters, aw__lock_giveback, l, AW__WAIT_LOCK);
    if (rc < 0)
        return rc;
    /* granted: release (or an ending owner) already made us the owner */
    l->file = file;
    l->line = line;
    if (__builtin_expect(l->dead_task != NULL, 0)) {
        aw__lock_pass(l);
        return aw__lock_owner_died(l);
    }
    return 0;
}

int (aw_lock_acquire)(aw_lock_t *l) { return aw__lock_acquire_at(l, NULL, 0); }

int aw_lock_release(aw_lock_t *l) {
    aw_task_t *self = aw__task_self();
    if (l->owner != self || !self)
        return aw_raise(-EPERM, "lock '%s' released by task '%s', which does not hold it%s%s",
                        l->name ? l->name : "?", self ? self->name : "(none)",
                        l->owner ? "; the holder is " : "", l->owner ? l->owner->name : "");
    aw__lock_pass(l);
    return 0;
}

int aw__lock_take(aw_lock_t *l) {
    if (!l->owner && !l->waiters.head)
        aw__lock_set_owner(l, aw__task_self());
    else
        aw__wq_wait_shielded(&l->waiters, l); /* release hands it to us */
    if (__builtin_expect(l->dead_task != NULL, 0))
        return aw__lock_owner_died(l); /* told, but held: a condition's wait returns holding it */
    return 0;
}

aw_task_t *aw_lock_owner(const aw_lock_t *l) { return l->owner; }

static int aw__lock_enter(void *self, void **out) {
    *out = self;
    /* the block entering it is the acquisition site */
    aw_task_t *t = aw__task_cur();
    const aw_with_t *w = t ? t->withs : NULL;
    if (w && w->state == AW__WITH_ENTER && w->cm.self == self)
        return aw__lock_acquire_at(self, w->file, w->line);
    return aw__lock_acquire_at(self, NULL, 0);
}

static int aw__lock_exit(void *self, const aw_err_t *err) {
    int rc = aw_lock_release(self);
    return rc < 0 ? rc : 0;
}

const aw_cm_type_t aw_lock_type = {"lock", aw__lock_enter, aw__lock_exit, AW_CM_SHARED};
