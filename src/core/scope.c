/* scope.c: cancel scopes and deadlines.
 *
 * Each scope keeps what its chain shows up to the first shield (a cancel,
 * the earliest deadline), computed from its parent's as it is entered
 * (aw__scope_link: a compare and three stores), so a suspension point
 * reads one scope, whatever the depth: O(1), plus a clock read when a
 * deadline is set (Trio keeps each task's effective cancel state the same
 * way). What a chain shows changes only when a scope on it is cancelled,
 * expires or is rescheduled, or a chain is re-hung (a generator resumed
 * from another scope); those move the thread's scope epoch on, which
 * makes every kept value stale, and each chain is walked again once, at
 * its next read: O(depth) per change, not per suspension. Cancelling a
 * scope wakes the tasks that are suspended inside it: the owner, and the
 * children of every group the owner opened inside the scope, recursively:
 * O(tasks inside). */
#include "core.h"

#include <stdlib.h>

/* 0 is "not known": a scope made by a compound literal starts stale. */
__thread uint64_t aw__scope_epoch __attribute__((tls_model("initial-exec"))) = 1;

/* A generator manager's cleanup (cm/gencm.c, M3) runs in its user's exit
 * shield, as every exit does, while the scopes and groups it holds open
 * around its yield keep covering what they hold: their children still see
 * the user's cancels, as in Python, where the cleanup is not shielded.
 * So for that time the generator's root (its task's own_shield set) hangs
 * below the user's own scope, and a chain reaching it goes on at the
 * user's exit shield instead when it is the generator's own (its points,
 * `via` from the start) or passes a scope the generator entered during
 * its cleanup (s->cleanup: a group of cleanup workers is shielded like
 * the exit). The generator's own scopes keep their children's view in
 * their kept values: the generator reads past them (see aw__chain). */
static inline const aw_scope_t *aw__up(const aw_scope_t *s, bool *via) {
    *via |= s->cleanup;
    if (*via && s->kind == AW__SCOPE_ROOT && s->task && s->task->own_shield)
        return s->task->own_shield;
    return s->parent;
}

/* Is t's code a generator's cleanup (its own, or run on its behalf by a
 * generator it drives: an aw_for or a generator manager it uses then)? */
static inline bool aw__own(const aw_task_t *t) {
    for (; t; t = t->delegator)
        if (t->own_shield)
            return true;
    return false;
}

static aw__chain_t aw__walk_from(const aw_scope_t *s, bool via) {
    aw__chain_t c = {AW_NEVER, false};
    for (; s; s = aw__up(s, &via)) {
        if (s->deadline < c.deadline)
            c.deadline = s->deadline;
        c.cancelled |= s->cancelled;
        if (s->shield)
            break;
    }
    return c;
}

aw__chain_t aw__scope_walk(const aw_scope_t *s) { return aw__walk_from(s, false); }

#ifndef NDEBUG
/* The invariant every kept value rests on: it is what a walk finds. */
static bool aw__chain_true(const aw_scope_t *s) {
    aw__chain_t c = aw__scope_walk(s);
    return c.deadline == s->chain_deadline && c.cancelled == s->chain_cancelled;
}
#endif

/* Walk t's chain, starting the grace of an exit's shield on it (lazy:
 * the exit suspends now), and keep the result in t's innermost scope. No
 * kept value can depend on a grace not started (aw__scope_link leaves a
 * lazy shield unknown, and what is linked below an unknown scope is
 * unknown), so starting one does not move the epoch on. */
static __attribute__((noinline)) aw__chain_t aw__chain_refresh(aw_scope_t *top, bool own) {
    bool via = own;
    for (aw_scope_t *s = top; s; s = (aw_scope_t *)aw__up(s, &via)) {
        if (s->lazy) {
            /* the loop's time is refreshed only by timer rounds: read the clock */
            s->lazy = 0;
            if (s->rel != AW_NEVER)
                s->deadline = aw_now() + s->rel;
        }
        if (s->shield)
            break;
    }
    aw__chain_t c = aw__walk_from(top, own);
    if (own) /* a generator in its cleanup: top keeps its children's view */
        return c;
    top->chain_deadline = c.deadline;
    top->chain_cancelled = c.cancelled;
    top->epoch = aw__scope_epoch;
    return c;
}

aw__chain_t aw__chain(aw_task_t *t) {
    if (__builtin_expect(t->own_shield || t->delegator, 0) && aw__own(t))
        return aw__chain_refresh(t->scope, true); /* read past the kept values */
    aw_scope_t *s = t->scope;
    if (__builtin_expect(!aw__scope_known(s), 0))
        aw__chain_refresh(s, false);
    assert(aw__chain_true(s));
    return (aw__chain_t){s->chain_deadline, s->chain_cancelled};
}

void aw__scope_rehang(aw_task_t *d, aw_scope_t *parent) {
    if (d->own_shield) { /* every kept value below may be the other view now */
        d->root.parent = parent;
        aw__scope_epoch++;
        return;
    }
    if (d->root.parent == parent)
        return;
    if (d->scope == &d->root && !d->groups && !d->delegate && !d->covered) {
        aw__scope_link(&d->root, parent); /* nothing below it */
        return;
    }
    d->root.parent = parent;
    aw__scope_epoch++;
}

bool aw__cancelled_walk(const aw_task_t *t) {
    /* not a suspension: no grace starts */
    return aw__walk_from(t->scope, aw__own(t)).cancelled;
}

bool aw__outer_cancelled(const aw_scope_t *s) {
    if (s->shield || !s->parent)
        return false;
    if (s->cleanup) /* entered in a generator's cleanup: above it is the exit's view */
        return aw__walk_from(s->parent, true).cancelled;
    return aw__scope_known(s->parent) ? s->parent->chain_cancelled
                                      : aw__scope_walk(s->parent).cancelled;
}

int aw__raise_cancel(aw_task_t *t) {
    /* name the outermost visible cause, for the message */
    const aw_scope_t *cause = NULL;
    bool via = aw__own(t);
    for (const aw_scope_t *s = t->scope; s; s = aw__up(s, &via)) {
        if (s->cancelled)
            cause = s;
        if (s->shield)
            break;
    }
    if (cause && cause->expired)
        return aw__raise_at(t, __FILE__, __LINE__, __func__, -ECANCELED,
                            "cancelled: a deadline expired");
    if (cause && cause->kind == AW__SCOPE_ROOT && cause->task)
        return aw__raise_at(t, __FILE__, __LINE__, __func__, -ECANCELED,
                            "cancelled: task '%s' was cancelled", cause->task->name);
    return aw__raise_at(t, __FILE__, __LINE__, __func__, -ECANCELED, "cancelled");
}

aw_ns_t aw__deadline(aw_task_t *t) { return aw__chain(t).deadline; }

/* A deadline on the chain is past due: deadlines past due count even
 * when a cancel is pending too (decision 6 records both); an expired
 * scope is a visible cancel. */
static __attribute__((noinline, cold)) int aw__point_expired(aw_task_t *t, aw_ns_t now,
                                                            aw_ns_t *deadline, aw_ns_t d) {
    aw__expire(t, now);
    if (deadline)
        *deadline = d;
    return aw__raise_cancel(t);
}

int aw__point_slow(aw_task_t *t, aw_ns_t *deadline) {
    aw__chain_t c = aw__chain(t);
    if (c.deadline != AW_NEVER) {
        aw_ns_t now = aw_now();
        if (__builtin_expect(c.deadline <= now, 0))
            return aw__point_expired(t, now, deadline, c.deadline);
    }
    if (deadline)
        *deadline = c.deadline;
    return c.cancelled ? aw__raise_cancel(t) : 0;
}

int aw__expire(aw_task_t *t, aw_ns_t now) {
    int n = 0;
    bool via = aw__own(t);
    for (aw_scope_t *s = t->scope; s; s = (aw_scope_t *)aw__up(s, &via)) {
        if (s->deadline <= now && !s->cancelled) {
            s->cancelled = 1;
            s->expired = 1;
            s->cancels++;
            n++;
            aw__scope_epoch++;
            aw__scope_wake_tree(s, 0);
        }
        if (s->shield)
            break;
    }
    return n;
}

/* A task suspended inside a scope that changed: cut its wait if a cancel
 * is now visible to it, or re-arm its timer if a deadline moved. */
static void aw__task_poke(aw_task_t *t, int rearm) {
    if (t->state != AW__T_WAITING || !t->cancellable)
        return;
    if (aw__cancelled(t)) {
        aw__task_wake(t, -ECANCELED);
    } else if (rearm) {
        aw_ns_t when = aw__deadline(t);
        if (t->wait_until < when)
            when = t->wait_until;
        if (when == AW_NEVER)
            aw__timer_disarm(&t->loop->timers, &t->timer);
        else
            aw__timer_arm(&t->loop->timers, &t->timer, when);
    }
}

static void aw__poke_subtree(aw_task_t *t, int rearm);

static void aw__poke_groups(aw_group_t *g, int rearm) {
    for (; g; g = g->outer)
        aw__list_each(&g->children, n)
            aw__poke_subtree(aw__container(n, aw_task_t, sibling), rearm);
}

/* Generators whose scopes cover t's block (cm/gencm.c, M3) hang below
 * t's scopes, and so do their groups' children: t's chain passes their
 * roots. A generator poked this way does not follow `covered` back. */
static void aw__poke_coverers(aw_task_t *t, int rearm) {
    for (aw_scope_t *p = t->scope; p; p = p->parent)
        if (p->kind == AW__SCOPE_ROOT && p->task && p->task != t && p->task->covered == t)
            aw__poke_subtree(p->task, rearm);
}

static void aw__poke_subtree(aw_task_t *t, int rearm) {
    aw__task_poke(t, rearm);
    aw__poke_groups(t->groups, rearm);
    if (t->delegate)
        aw__poke_subtree(t->delegate, rearm);
    if (t->ncovers)
        aw__poke_coverers(t, rearm);
}

/* Is group g (opened by s's task) inside scope s? Its chain may pass the
 * scopes of generators whose scopes cover its owner's block (gencm.c). */
static bool aw__group_inside(const aw_group_t *g, const aw_scope_t *s) {
    for (const aw_scope_t *p = &g->scope; p; p = p->parent) {
        if (p == s)
            return true;
        if (p->task != g->owner && !(p->task && p->task->covered == g->owner))
            break;
    }
    return false;
}

void aw__scope_wake_tree(aw_scope_t *s, int rearm) {
    aw_task_t *t = s->task;
    if (!t) { /* the root group's scope */
        aw_group_t *root = (aw_group_t *)s;
        aw__list_each(&root->children, n)
            aw__poke_subtree(aw__container(n, aw_task_t, sibling), rearm);
        return;
    }
    aw__task_poke(t, rearm);
    for (aw_group_t *g = t->groups; g && aw__group_inside(g, s); g = g->outer)
        aw__list_each(&g->children, n)
            aw__poke_subtree(aw__container(n, aw_task_t, sibling), rearm);
    if (t->delegate) /* a generator runs inside t's innermost scope */
        aw__poke_subtree(t->delegate, rearm);
    if (t->covered) /* t's scopes cover its user's block (cm/gencm.c, M3) */
        aw__poke_subtree(t->covered, rearm);
    else if (t->ncovers) /* generators covering t's block hang below s */
        aw__poke_coverers(t, rearm);
}

void aw_scope_cancel(aw_scope_t *s) {
    s->cancels++;
    if (s->cancelled)
        return;
    s->cancelled = 1;
    aw__scope_epoch++;
    aw__scope_wake_tree(s, 0);
}

int aw_scope_reschedule(aw_scope_t *s, aw_ns_t deadline) {
    if (!s || !s->task || s->kind == AW__SCOPE_ROOT)
        return aw_raise(-EINVAL, "aw_scope_reschedule: the scope is not entered");
    s->deadline = deadline;
    s->rel = AW_NEVER;
    aw__scope_epoch++;
    aw__scope_wake_tree(s, 1);
    return 0;
}

bool aw_scope_expired(const aw_scope_t *s) { return s->expired; }
bool aw_scope_cancelled(const aw_scope_t *s) { return s->cancelled; }

aw_ns_t aw_effective_deadline(void) {
    aw_task_t *t = aw__task_cur();
    return t ? aw__deadline(t) : AW_NEVER;
}

bool aw_cancel_pending(void) {
    aw_task_t *t = aw__task_cur();
    return t && aw__cancelled(t);
}

/* ---- the scope as a manager ---- */

static int aw__scope_enter(void *self, void **out) {
    aw_scope_t *s = self;
    aw_task_t *t = aw__task_cur();
    if (s->task) /* entering it again would make the scope chain a cycle */
        return aw_raise(-EBUSY, "this scope is already entered (by task %s): "
                        "a scope can be entered once at a time", aw_task_name(s->task));
    if (s->rel != AW_NEVER) {
        aw_ns_t now = aw_now();
        s->deadline = s->rel > AW_NEVER - now ? AW_NEVER : now + s->rel;
    }
    s->task = t;
    s->cleanup = t->own_shield != NULL; /* see aw__up */
    aw__scope_link(s, t->scope);
    t->scope = s;
    *out = s;
    return 0;
}

static int aw__scope_exit(void *self, const aw_err_t *err) {
    aw_scope_t *s = self;
    aw_task_t *t = s->task;
    const char *file = t->withs ? t->withs->file : __FILE__; /* the user's block */
    int line = t->withs ? t->withs->line : __LINE__;
    uint64_t mark = aw__with_exit_mark(t);
    assert(t->scope == s); /* scopes end innermost first */
    t->scope = s->parent;
    s->task = NULL; /* not entered any more: reschedule fails */
    bool outer = aw__outer_cancelled(s);
    bool fail = s->expired && s->kind == AW__SCOPE_FAIL;
    (void)err;
    /* Our own cancel ends here (SEMANTICS M4): absorb the cancel records
     * on top of what the block raised, and only those. Whatever else was
     * raised while the cancel unwound the block (an exit failing, an exit
     * over its grace, a group's failure) leaves the scope with the cancel
     * in its context, as Trio's cancel scope catches only Cancelled. */
    if (s->cancelled && !outer)
        aw__err_absorb_cancels(t, mark, fail);
    if (!fail)
        return 0;
    bool other = t->err && t->err->seq > mark && t->err->code != -ECANCELED;
    if (outer || other) {
        /* the other error wins (decision 6); the timeout is recorded in
         * its chain, just above the cancel it caused (G10) */
        aw__raise_at(t, file, line, "aw_fail_after", -ETIMEDOUT,
                     "the deadline of the scope at %s:%d expired too", file, line);
        aw__err_sink(t, mark);
        return 0;
    }
    return aw__raise_at(t, file, line, "aw_fail_after", -ETIMEDOUT,
                        "deadline of the scope at %s:%d exceeded", file, line);
}

const aw_cm_type_t aw_scope_type = {
    .name = "scope",
    .enter = aw__scope_enter,
    .exit = aw__scope_exit,
    .flags = AW_CM_UNSHIELDED | AW_CM_SUPPRESS_CANCEL,
};
