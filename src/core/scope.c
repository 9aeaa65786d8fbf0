/* scope.c: cancel scopes and deadlines.
 *
 * Each scope keeps what its chain shows up to the first shield (a cancel,
 * the earliest deadline), computed from its parent's as it is entered
 * (aw__scope_link: a compare and three stores), so a suspension point
 * reads one scope, whatever the depth: O(1), plus a clock read when a
 * deadline is set (Trio keeps each task's effective cancel state the same
 * way). What a chain shows changes only when a scope on it is cancelled,
 * expires or is rescheduled, or a chain is re-hung (a generator manager's
 * scopes moved above its exit's shield, a scope ending under an exit
 * stack's entry that outlives it); those move the thread's scope epoch
 * on, which makes every kept value stale, and each chain is walked again
 * once, at its next read: O(depth) per change, not per suspension. A
 * generator's root is linked again below its consumer's scope at every
 * resume (core.h), which recomputes its kept values in O(1). Cancelling a
 * scope wakes the tasks that are suspended inside it: the owner, and the
 * children of every group the owner opened inside the scope, recursively:
 * O(tasks inside). */
#include "core.h"

#include <stdlib.h>

/* 0 is "not known": a scope made by a compound literal starts stale. */
__thread uint64_t aw__scope_epoch __attribute__((tls_model("initial-exec"))) = 1;

/* M3 (cm/gencm.c: aw__gencm_unhook): while a generator manager's cleanup
 * runs, the scopes and groups it held open around its yield (marked held)
 * hang on the user's exit shield, so the generator's own code is shielded
 * as every exit is, and what it starts in its cleanup too. But a chain
 * that comes into them from another task (a child of a group held at the
 * yield) passes that shield on to the user's own scope: Trio's nursery in
 * an @asynccontextmanager is not shielded, its children see the user's
 * outer cancels while the cleanup drains them, within the exit's grace.
 * Generator managers composed (one entered around another's yield) hang
 * such scopes over the exit shield of each (their cleanups nest): `held`
 * counts those shields, all passed in a row. A walk steps from s (prev
 * before it) with this, via the shields still to pass; false: stop here. */
static inline bool aw__walk_on(const aw_scope_t *s, const aw_scope_t *prev, int *via) {
    if (s->held && prev && prev->task != s->task)
        *via = s->held;
    if (!s->shield)
        return true;
    if (*via && prev && !s->held &&
        (prev->held || (prev->shield && s->kind == AW__SCOPE_SHIELD))) { /* the exits' shields */
        (*via)--;
        return true;
    }
    return false;
}

aw__chain_t aw__scope_walk(const aw_scope_t *s) {
    aw__chain_t c = {AW_NEVER, false};
    int via = 0;
    for (const aw_scope_t *prev = NULL; s; prev = s, s = s->parent) {
        if (s->deadline < c.deadline)
            c.deadline = s->deadline;
        c.cancelled |= s->cancelled;
        if (!aw__walk_on(s, prev, &via))
            break;
    }
    return c;
}

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
static __attribute__((noinline)) void aw__chain_refresh(aw_scope_t *top) {
    int via = 0;
    for (aw_scope_t *s = top, *prev = NULL; s; prev = s, s = s->parent) {
        if (s->lazy) {
            /* the loop's time is refreshed only by timer rounds: read the clock */
            s->lazy = 0;
            if (!s->rel) /* the task's own exit shield: the grace of its with's type */
                s->rel = aw__with_grace(s->task->xshield_with);
            if (s->rel != AW_NEVER)
                s->deadline = aw_now() + s->rel;
        }
        if (!aw__walk_on(s, prev, &via))
            break;
    }
    aw__chain_t c = aw__scope_walk(top);
    top->chain_deadline = c.deadline;
    top->chain_cancelled = c.cancelled;
    top->epoch = aw__scope_epoch;
}

aw__chain_t aw__chain(aw_task_t *t) {
    aw_scope_t *s = t->scope;
    if (__builtin_expect(!aw__scope_known(s), 0))
        aw__chain_refresh(s);
    assert(aw__chain_true(s));
    return (aw__chain_t){s->chain_deadline, s->chain_cancelled};
}

/* SEMANTICS M5: an exit stack keeps its entries beyond the block they
 * were entered in, so a deadline, a group or a generator manager holding
 * one, entered into a stack inside a scope's block, is still on the chain
 * when that scope ends (as a timeout entered into Python's AsyncExitStack
 * outlives the `async with` it was entered in). Take s out from under
 * what was entered after it, which hangs on s's parent from then on:
 * s's deadline and cancel no longer apply, theirs still do. */
static __attribute__((noinline, cold)) void aw__scope_unlink_inner(aw_task_t *t, aw_scope_t *s) {
    for (aw_scope_t *p = t->scope; p; p = p->parent)
        if (p->parent == s) {
            p->parent = s->parent;
            aw__scope_epoch++; /* the chains above s kept what s showed */
            return;
        }
    assert(!"a scope that ends is on its task's chain");
}

void aw__scope_unlink(aw_task_t *t, aw_scope_t *s) {
    if (__builtin_expect(t->scope == s, 1))
        t->scope = s->parent;
    else
        aw__scope_unlink_inner(t, s);
}

bool aw__cancelled_walk(const aw_task_t *t) {
    return aw__scope_walk(t->scope).cancelled; /* not a suspension: no grace starts */
}

aw__chain_t aw__exit_chain(const aw_task_t *t) {
    const aw_scope_t *s = t->scope;
    if (s && s->shield && s->kind == AW__SCOPE_SHIELD)
        s = s->parent; /* the exit's own shield */
    return aw__scope_walk(s);
}

bool aw__outer_cancelled(const aw_scope_t *s) {
    if (s->shield || !s->parent)
        return false;
    if (__builtin_expect(s->held, 0)) {
        /* held at a generator's yield: judged by its own view above, the
         * one its children have (aw__walk_on), not the cleanup's shield */
        int via = s->held;
        bool c = false;
        for (const aw_scope_t *p = s->parent, *prev = s; p; prev = p, p = p->parent) {
            c |= p->cancelled;
            if (!aw__walk_on(p, prev, &via))
                break;
        }
        return c;
    }
    return aw__scope_known(s->parent) ? s->parent->chain_cancelled
                                      : aw__scope_walk(s->parent).cancelled;
}

const char aw__cancel_at_point[] = "aw__raise_cancel";

int aw__raise_cancel(aw_task_t *t) {
    /* name the outermost visible cause, for the message */
    const aw_scope_t *cause = NULL;
    int via = 0;
    for (const aw_scope_t *s = t->scope, *prev = NULL; s; prev = s, s = s->parent) {
        if (s->cancelled)
            cause = s;
        if (!aw__walk_on(s, prev, &via))
            break;
    }
    if (cause && cause->expired)
        return aw__raise_at(t, __FILE__, __LINE__, aw__cancel_at_point, -ECANCELED,
                            "cancelled: a deadline expired");
    if (cause && cause->kind == AW__SCOPE_ROOT && cause->task)
        return aw__raise_at(t, __FILE__, __LINE__, aw__cancel_at_point, -ECANCELED,
                            "cancelled: task '%s' was cancelled", cause->task->name);
    return aw__raise_at(t, __FILE__, __LINE__, aw__cancel_at_point, -ECANCELED, "cancelled");
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
    int via = 0;
    for (aw_scope_t *s = t->scope, *prev = NULL; s; prev = s, s = s->parent) {
        if (s->deadline <= now && !s->cancelled) {
            s->cancelled = 1;
            s->expired = 1;
            s->cancels++;
            n++;
            aw__scope_epoch++;
            aw__scope_wake_tree(s, 0);
        }
        if (!aw__walk_on(s, prev, &via))
            break;
    }
    return n;
}

/* The soonest deadline on t's chain of a scope not cancelled yet: where a
 * wait that is no cancellation point (a group's owner waiting for its
 * children) sets its timer, to act on that deadline then (aw__expire). */
aw_ns_t aw__deadline_pending(aw_task_t *t) {
    aw_ns_t d = AW_NEVER;
    int via = 0;
    for (aw_scope_t *s = t->scope, *prev = NULL; s; prev = s, s = s->parent) {
        if (!s->cancelled && s->deadline < d)
            d = s->deadline;
        if (!aw__walk_on(s, prev, &via))
            break;
    }
    return d;
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

static void aw__poke_subtree(aw_task_t *t, int rearm) {
    aw__task_poke(t, rearm);
    aw__poke_groups(t->groups, rearm);
    if (t->delegate)
        aw__poke_subtree(t->delegate, rearm);
}

/* Is group g (opened by s's task) inside scope s? */
static bool aw__group_inside(const aw_group_t *g, const aw_scope_t *s) {
    for (const aw_scope_t *p = &g->scope; p; p = p->parent) {
        if (p == s)
            return true;
        if (p->task != g->owner)
            break;
    }
    return false;
}

void aw__scope_wake_tree(aw_scope_t *s, int rearm) {
    aw_task_t *t = s->task;
    if (!t && s->kind != AW__SCOPE_ROOT)
        return; /* not entered (its block ended, or not begun): nobody inside */
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

static __attribute__((noinline, cold)) int aw__scope_enter_busy(const aw_scope_t *s) {
    return aw_raise(-EBUSY, "this scope is already entered (by task %s): "
                    "a scope can be entered once at a time", aw_task_name(s->task));
}

/* Entered again after its block ended: its cancel and expiry are still
 * set, so the new block would start cancelled for no visible reason.
 * Python's Timeout and Trio's CancelScope refuse it too (SEMANTICS G6). */
static __attribute__((noinline, cold)) int aw__scope_enter_done(void) {
    return aw_raise(-EALREADY, "this scope has already been entered and its block ended: "
                    "a scope is used once, make a new one for each block");
}

/* Ordered so that only s lives across the clock read: fewer registers
 * to save. */
static int aw__scope_enter(void *self, void **out) {
    aw_scope_t *s = self;
    if (__builtin_expect(s->task != NULL, 0)) /* again: the scope chain would be a cycle */
        return aw__scope_enter_busy(s);
    if (__builtin_expect(s->parent != NULL, 0)) /* entered before: every enter sets parent */
        return aw__scope_enter_done();
    assert(!s->lazy); /* only an exit's shield is (with.c), never entered as a manager */
    *out = s;
    if (s->rel != AW_NEVER) {
        /* relative to the clock now, as Trio's current_time(): the loop's
         * cached time may be a whole round old, and the deadline early */
        aw_ns_t d;
        if (__builtin_add_overflow(aw__clock_now(), s->rel, &d))
            d = AW_NEVER; /* far beyond any clock: never */
        s->deadline = d;
    }
    /* entered by a with block, which runs only in a task (with.c) */
    aw_task_t *t = (aw_task_t *)aw__loop_tls->cur;
    assert(t == aw__task_cur() && t);
    aw_scope_t *p = t->scope;
    s->task = t;
    s->parent = p;
    /* aw__scope_link for a scope that is not lazy, its common case first */
    uint64_t epoch = aw__scope_epoch;
    if (__builtin_expect(!s->shield && p->epoch == epoch && !p->held, 1)) {
        s->chain_deadline = s->deadline < p->chain_deadline ? s->deadline : p->chain_deadline;
        s->chain_cancelled = s->cancelled | p->chain_cancelled;
        s->epoch = epoch;
    } else {
        aw__scope_link(s, p);
    }
    t->scope = s;
    return 0;
}

static __attribute__((noinline)) int aw__scope_exit_cancelled(aw_scope_t *s, aw_task_t *t);

static int aw__scope_exit(void *self, const aw_err_t *err) {
    aw_scope_t *s = self;
    aw_task_t *t = s->task;
    (void)err;
    aw__scope_unlink(t, s); /* innermost, unless an exit stack's entry outlives it */
    s->task = NULL; /* not entered any more: reschedule fails */
    /* never cancelled (an expiry cancels too): nothing to absorb or report */
    if (__builtin_expect(!s->cancelled, 1)) {
        s->held = 0; /* (set by cm/gencm.c while the generator's cleanup runs) */
        return 0;
    }
    return aw__scope_exit_cancelled(s, t);
}

const char aw__fail_after_outranked[] = "aw_fail_after";

/* The exit of a scope that was cancelled or expired, already off t's chain. */
static int aw__scope_exit_cancelled(aw_scope_t *s, aw_task_t *t) {
    const char *file = t->withs ? t->withs->file : __FILE__; /* the user's block */
    int line = t->withs ? t->withs->line : __LINE__;
    uint64_t mark = aw__with_exit_mark(t);
    bool outer = aw__outer_cancelled(s);
    s->held = 0;
    bool fail = s->expired && s->kind == AW__SCOPE_FAIL;
    /* Our own cancel ends here (SEMANTICS M4): absorb the cancel records
     * on top of what the block raised, and only those. Whatever else was
     * raised while the cancel unwound the block (an exit failing, an exit
     * over its grace, a group's failure) leaves the scope with the cancel
     * in its context, as Trio's cancel scope catches only Cancelled. A
     * failure the block had pending when the cancel cut it is older than
     * the cancel: a fail-after keeps the cancel over it, and its timeout
     * goes on top (decision 5: in raise order; Python's TimeoutError <-
     * CancelledError <- OSError). */
    if (!outer)
        aw__err_absorb_cancels(t, mark, fail);
    if (!fail)
        return 0;
    bool other = t->err && t->err->seq > mark && t->err->code != -ECANCELED;
    if (outer || other) {
        /* the other error wins (decision 6); the timeout is recorded in
         * its chain, just above the cancel it caused (G10); under an
         * outer cancel, marked as outranked: it ends with that cancel */
        aw__raise_at(t, file, line, outer ? aw__fail_after_outranked : "aw_fail_after", -ETIMEDOUT,
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
