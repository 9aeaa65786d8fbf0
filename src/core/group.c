/* group.c: task groups. The group's scope encloses the body and, through
 * each child's root scope, every child; cancelling it reaches them all.
 * Leaving the block waits (not cancellably: cancels reach the children
 * through their scope chains) until the last child is done. */
#include "core.h"

#include <stdlib.h>

void aw__group_init_root(aw_group_t *g) {
    g->scope.kind = AW__SCOPE_ROOT;
    g->scope.held = 0;
    g->scope.deadline = AW_NEVER;
    g->scope.rel = AW_NEVER;
    aw__scope_link(&g->scope, NULL);
    g->state = AW__GROUP_OPEN;
}

/* Is a cancel visible from t's root scope (its own, its group's, or
 * above)? Then an -ECANCELED status is a consequence, not a failure. */
static bool aw__cancel_expected(const aw_task_t *t) { return aw__scope_walk(&t->root).cancelled; }

/* Does t's error chain hold anything besides the cancel itself (say, a
 * cleanup that failed while the task was being cancelled)? A timeout the
 * cancel outranked is part of it (decision 6): not a failure. */
static bool aw__err_beyond_cancel(const aw_err_t *e) {
    for (; e; e = e->context)
        if (e->code != -ECANCELED && !aw__err_outranked(e))
            return true;
    return false;
}

void aw__group_child_done(aw_task_t *t) {
    aw_group_t *g = t->group;
    assert(g->nchildren > 0);
    aw__list_remove(&g->children, &t->sibling);
    g->nchildren--;
    assert(aw__list_empty(&g->children) == (g->nchildren == 0));
    bool root = g->scope.kind == AW__SCOPE_ROOT;
    bool failed = t->status < 0 && !(t->status == -ECANCELED && aw__cancel_expected(t) &&
                                     !aw__err_beyond_cancel(t->err));
    if (failed && !(root && t->joinable)) {
        aw_err_t *e = t->joinable ? aw__err_copy(t->err) : aw__err_detach(t);
        if (aw__cancel_expected(t)) /* M4: its failure, not the cancel re-delivered over it */
            e = aw__err_strip_cancels(e);
        if (e) {
            if (g->failures_tail)
                g->failures_tail->next = e;
            else
                g->failures = e;
            g->failures_tail = e;
        }
        g->nfailures++;
        if (!root)
            aw_scope_cancel(&g->scope); /* the first failure stops the rest */
    }
    if (failed && root && t->joinable)
        t->unjoined_failure = 1; /* its joiner gets it; if none comes, loop close reports it */
    if (t->joinable)
        aw__list_push_front(&g->done, &t->sibling);
    if (!g->nchildren && g->waiting && g->owner)
        aw__task_wake(g->owner, 0);
}

/* A group is used once, as asyncio's TaskGroup ("has already been
 * entered"): entered again while open, its scope would link to itself
 * and the inner block's end would wait forever; after it was left, the
 * new block would start with the old cancel and state. */
static __attribute__((noinline, cold)) int aw__group_enter_again(const aw_group_t *g) {
    if (g->state == AW__GROUP_CLOSED)
        return aw_raise(-EALREADY, "this task group was entered and left already: "
                        "a group is used once, make a new one for each block");
    return aw_raise(-EBUSY, "this task group is already entered (by task %s): "
                    "a group is used once, make a new one for each block",
                    aw_task_name(g->owner));
}

static int aw__group_enter(void *self, void **out) {
    aw_group_t *g = self;
    if (__builtin_expect(g->state != AW__GROUP_NEW, 0))
        return aw__group_enter_again(g);
    aw_task_t *t = aw__task_cur();
    g->scope.kind = AW__SCOPE_GROUP;
    g->scope.held = 0;
    g->scope.deadline = AW_NEVER;
    g->scope.rel = AW_NEVER;
    g->scope.task = t;
    aw__scope_link(&g->scope, t->scope);
    t->scope = &g->scope;
    g->owner = t;
    g->outer = t->groups;
    t->groups = g;
    g->state = AW__GROUP_OPEN;
    *out = g;
    return 0;
}

static int aw__group_exit(void *self, const aw_err_t *err) {
    aw_group_t *g = self;
    aw_task_t *t = g->owner;
    g->state = AW__GROUP_DRAINING;
    /* cancelled before the body ended (aw_group_cancel, a child's failure):
     * only then can a cancel the body left be the group's own */
    bool was_cancelled = g->scope.cancelled;
    bool own_cancel = err && err->code == -ECANCELED && was_cancelled;
    if (err && !own_cancel)
        aw_scope_cancel(&g->scope); /* the body failed: stop the children */
    while (g->nchildren) {
        /* An enclosing deadline that passes while the owner waits here is
         * acted on, as at any suspension point: its scope expires, which
         * cancels the children, and the cancel shows when the group is
         * left. With every child shielded or already cancelled (after
         * aw_group_cancel) no other wait would see it, and a timeout
         * around the group was lost (CPython gh-155433). */
        aw_ns_t until = aw__deadline_pending(t);
        g->waiting = 1;
        t->wait_kind = AW__WAIT_GROUP; /* introspection (SEMANTICS L2) */
        aw__task_wait(t, until, 0);
        t->wait_kind = AW__WAIT_NONE;
        g->waiting = 0;
        aw__expire(t, aw_now()); /* also one set (rescheduled) meanwhile */
    }
    aw__list_each_safe(&g->done, n) /* unjoined: release */
        aw__task_release(aw__container(n, aw_task_t, sibling));
    g->done = (aw__list_t){NULL, NULL};
    /* innermost, unless an exit stack's entry (a group, a deadline)
     * entered inside the body outlives it (SEMANTICS M5) */
    aw__scope_unlink(t, &g->scope);
    aw_group_t **p = &t->groups;
    while (*p != g)
        p = &(*p)->outer;
    *p = g->outer;
    g->state = AW__GROUP_CLOSED;
    bool outer = aw__outer_cancelled(&g->scope);
    g->scope.held = 0; /* (set by cm/gencm.c while the generator's cleanup runs) */
    /* Our own cancel ends here (SEMANTICS M4): absorb the cancel records on
     * top of what the body raised, and only those; a nested group's or an
     * exit's failure raised while it unwound the body stays, the cancel in
     * its context (Trio's nursery, asyncio's TaskGroup). The cancel made
     * above because the body failed is not one the body could have seen:
     * a body that left a cancel the group had not asked for (an outer
     * cancel hidden since, as a generator's chain is re-hung below the
     * user's exit shield, or a cancel re-raised by hand) keeps it. */
    if (was_cancelled && !outer)
        aw__err_absorb_cancels(t, aw__with_exit_mark(t), false);
    if (g->nfailures) {
        aw_err_t *m = g->failures;
        g->failures = g->failures_tail = NULL;
        int rc = aw__raise_at(t, __FILE__, __LINE__, __func__, -AW_EGROUP,
                              "%zu task(s) of the group failed (first: %s)", g->nfailures,
                              m ? aw_err_name(m->code) : "?");
        if (t->err && t->err->code == -AW_EGROUP && !t->err->members)
            t->err->members = m;
        else
            while (m) {
                aw_err_t *n = m->next;
                aw__err_free(m);
                m = n;
            }
        if (outer)
            return aw__raise_at(t, __FILE__, __LINE__, __func__, -ECANCELED,
                                "cancelled from outside the group");
        return rc;
    }
    if (outer && !err) /* leaving is a suspension point: the cancel shows */
        return aw__raise_at(t, __FILE__, __LINE__, __func__, -ECANCELED,
                            "cancelled while leaving the group");
    return 0;
}

const aw_cm_type_t aw_group_type = {
    .name = "group",
    .enter = aw__group_enter,
    .exit = aw__group_exit,
    .flags = AW_CM_UNSHIELDED | AW_CM_SUPPRESS_CANCEL,
};

void aw_group_cancel(aw_group_t *g) {
    g->on_purpose = 1;
    aw_scope_cancel(&g->scope);
}

size_t aw_group_size(const aw_group_t *g) { return g->nchildren; }
