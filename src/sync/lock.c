/* lock.c: an owned lock on the FIFO wait queue. */
#include <awith/lock.h>

#include "wq.h"

enum { AW__STREAK_YIELD = 128 };

static const aw__task_lock_ops_t aw__lock_task_ops;

/* Every change of owner goes through these two: they keep each task's
 * list of held locks for introspection. O(1). */
static inline void aw__lock_disown(aw_lock_t *l) {
    if (l->owner)
        aw__list_remove(&l->owner->locks, &l->held);
    l->owner = NULL;
}

/* hook: set the core's call-back, needed only for a lock that had no
 * owner (a hand-off goes to a waiter of a lock that had one). */
static inline void aw__lock_own(aw_lock_t *l, aw_task_t *t, bool hook) {
    l->owner = t;
    if (hook)
        aw__task_locks = &aw__lock_task_ops; /* one store: the core calls it back */
    aw__list_push_front(&t->locks, &l->held);
}

static void aw__lock_giveback(void *p) {
    aw_lock_t *l = p;
    aw_lock_release(l);
}

/* Hand l to its first waiter, or free it. */
static inline __attribute__((always_inline)) void aw__lock_pass_inline(aw_lock_t *l) {
    aw__lock_disown(l);
    aw__wnode_t *n = aw__wq_first(&l->waiters);
    if (n) {
        aw__lock_own(l, n->who, false);
        aw__wq_grant(&l->waiters);
    }
}

static void aw__lock_pass(aw_lock_t *l) { aw__lock_pass_inline(l); }

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

/* The report of a task alive at loop close (SEMANTICS M9): each lock it
 * still holds, with where it took it. */
static void aw__lock_print_held(const aw_task_t *t, FILE *f) {
    aw__list_each(&t->locks, n) {
        const aw_lock_t *l = aw__container(n, aw_lock_t, held);
        fprintf(f, "    holding lock '%s' (acquired at %s:%d)\n", l->name ? l->name : "?",
                l->file ? l->file : "?", l->line);
    }
}

static const aw__task_lock_ops_t aw__lock_task_ops = {aw__lock_owner_ended, aw__lock_print_held};

/* After taking l: if its last owner ended holding it, tell (once). */
static int aw__lock_owner_died(aw_lock_t *l) {
    const char *dead = l->dead_task, *file = l->dead_file ? l->dead_file : "?";
    l->dead_task = NULL;
    return aw_raise(-EOWNERDEAD, "lock '%s': its owner, task '%s', ended holding it (acquired "
                    "at %s:%d), so the state it protects may be inconsistent; check it, then "
                    "acquire again", l->name ? l->name : "?", dead, file, l->dead_line);
}

/* A contended acquire, from its wait on, right after its cancellation
 * point (d: the effective deadline). Out of line, and the acquire's last
 * call: an uncontended acquire saves none of the registers the switch
 * clobbers, and a contended one saves them once. */
static __attribute__((noinline)) int aw__lock_wait(aw_lock_t *l, aw_task_t *cur, aw_task_t *self,
                                                   aw_ns_t d, const char *file, int line) {
    l->streak = 0;
    int rc = aw__wq_wait_point_inline(&l->waiters, cur, self, d, aw__lock_giveback, l,
                                      AW__WAIT_LOCK);
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

/* The acquire, by the running coroutine cur (NULL outside a task): the
 * general one. */
static __attribute__((noinline)) int aw__lock_acquire_slow(aw_lock_t *l, aw_task_t *cur,
                                                           const char *file, int line) {
    if (!cur)
        return aw__no_task("aw_lock_acquire");
    aw_task_t *self = aw__task_self_of(cur);
    /* a cancellation point first, whatever else is wrong (Trio's order) */
    AW__TRACE(cur, AW_TRACE_POINT, NULL, 0); /* aw_checkpoint, inline */
    aw_ns_t d;
    int rc = aw__point(cur, &d);
    if (rc < 0)
        return rc;
    if (l->owner == self)
        return aw_raise(-EDEADLK, "lock '%s' is already held by this task ('%s')",
                        l->name ? l->name : "?", self->name);
    if (!l->owner && !l->waiters.head) {
        aw__lock_own(l, self, true);
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
    /* the point above was the wait's: it is not made twice */
    return aw__lock_wait(l, cur, self, d, file, line);
}

/* The same when its point is clear (no trace hook, no cancel, no
 * deadline: aw__point_clear) and nothing unusual happens, inline; every
 * other case goes to the general acquire, which makes the point itself.
 * Each call here is the last thing done (no register kept across it). */
static inline __attribute__((always_inline)) int aw__lock_acquire_in(aw_lock_t *l, aw_task_t *cur,
                                                                     const char *file, int line) {
    if (__builtin_expect(!cur || AW__TRACING(cur) || !aw__point_clear(cur), 0))
        return aw__lock_acquire_slow(l, cur, file, line);
    aw_task_t *self = aw__task_self_of(cur);
    if (__builtin_expect(!l->owner, 1) && !l->waiters.head) {
        if (__builtin_expect(l->dead_task != NULL || (l->streak + 1) % AW__STREAK_YIELD == 0, 0))
            return aw__lock_acquire_slow(l, cur, file, line);
        l->streak++;
        aw__lock_own(l, self, true);
        l->file = file;
        l->line = line;
        return 0;
    }
    if (__builtin_expect(l->owner == self, 0))
        return aw__lock_acquire_slow(l, cur, file, line); /* -EDEADLK */
    /* the point (clear) was the wait's: it is not made twice */
    return aw__lock_wait(l, cur, self, AW_NEVER, file, line);
}

int aw__lock_acquire_at(aw_lock_t *l, const char *file, int line) {
    return aw__lock_acquire_in(l, aw__task_cur(), file, line);
}

int (aw_lock_acquire)(aw_lock_t *l) { return aw__lock_acquire_at(l, NULL, 0); }

static __attribute__((noinline, cold)) int aw__lock_not_held(aw_lock_t *l, aw_task_t *self) {
    return aw_raise(-EPERM, "lock '%s' released by task '%s', which does not hold it%s%s",
                    l->name ? l->name : "?", self ? self->name : "(none)",
                    l->owner ? "; the holder is " : "", l->owner ? l->owner->name : "");
}

/* aw_lock_release, inline: the lock's exit calls it without the
 * exported symbol's call. */
static inline __attribute__((always_inline)) int aw__lock_release_inline(aw_lock_t *l) {
    aw_task_t *self = aw__task_self();
    if (__builtin_expect(l->owner != self || !self, 0))
        return aw__lock_not_held(l, self);
    aw__lock_pass_inline(l);
    return 0;
}

int aw_lock_release(aw_lock_t *l) { return aw__lock_release_inline(l); }

int aw__lock_take(aw_lock_t *l) {
    if (!l->owner && !l->waiters.head)
        aw__lock_own(l, aw__task_self(), true);
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
        return aw__lock_acquire_in(self, t, w->file, w->line);
    return aw__lock_acquire_in(self, t, NULL, 0);
}

static int aw__lock_exit(void *self, const aw_err_t *err) {
    int rc = aw__lock_release_inline(self);
    return rc < 0 ? rc : 0;
}

const aw_cm_type_t aw_lock_type = {"lock", aw__lock_enter, aw__lock_exit, AW_CM_SHARED};
