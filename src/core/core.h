/* core.h (private): tasks, scopes, groups and error records, above the
 * loop. The central invariant: a task's scopes form a chain from its
 * innermost scope up through its root scope into the scope of the group
 * that owns it, and so on up to the loop's root group. What the chain
 * shows up to its first shield (a cancel, the earliest deadline) is kept
 * in each scope, computed from its parent's as it is entered, so that a
 * suspension point reads it in O(1) (scope.c); deadlines are not timers
 * of their own: a task arms one timer per suspension, at the minimum of
 * its own wait and the chain's deadline, so entering and leaving a
 * deadline scope that never fires costs no heap operation. */
#ifndef AW_CORE_H
#define AW_CORE_H

#include "../loop/loop.h"
#include "list.h"
#include <awith/base.h>
#include <awith/err.h>
#include <awith/loop.h>
#include <awith/cm.h>
#include <awith/scope.h>
#include <awith/task.h>
#include <awith/group.h>
#include <awith/with.h>
#include <awith/thread.h>
#include <awith/fd.h>
#include <awith/trace.h>
#include <stdio.h>

typedef aw_waitq_t aw__wq_t;      /* FIFO of waiting tasks (src/sync/wq.h) */

enum { AW__T_READY, AW__T_RUNNING, AW__T_WAITING, AW__T_DONE };

/* What a suspended task waits for, for the dump and its wait-for graph
 * (SEMANTICS L2): a join and a lock name the task waited on (wait_on is
 * the aw_task_t, or the aw_lock_t whose owner it is). */
typedef enum {
    AW__WAIT_NONE,
    AW__WAIT_TASK,                /* aw_task_join: wait_on is the task */
    AW__WAIT_GROUP,               /* leaving a group: its last child */
    AW__WAIT_LOCK,                /* wait_on is the aw_lock_t */
    AW__WAIT_EVENT,
    AW__WAIT_CONDITION,
    AW__WAIT_SEMAPHORE,
} aw__wait_kind_t;
/* Its words in the dump ("waits for <name>"), indexed by kind. */
extern const char *const aw__wait_names[];

struct aw_task {
    aw__coro_t coro;              /* first: the loop sees coroutines */
    aw__waiter_t waiter;          /* reactor and pool wake-ups */
    aw__timer_t timer;            /* the one timer of the current wait */
    aw_loop_t *loop;
    aw_task_fn fn;
    void *arg;
    const char *name, *file;
    int line;
    int status;
    uint64_t id;
    uint64_t errseq;              /* last error seq handed out */
    uint8_t state;
    uint8_t joinable;
    uint8_t cancellable;          /* the current wait may be cut by a cancel */
    uint8_t custom_stack;
    uint8_t unjoined_failure;     /* a joinable root-group task that failed: reported at loop
                                   * close unless joined (SEMANTICS I6, (c) 13) */
    uint8_t cancel_seen;          /* a -ECANCELED was raised in it (cancel_on_signals: a
                                   * Ctrl-C it never saw is not lost, (c) 5) */
    int wake_rc;
    aw_ns_t wait_until;           /* the wait's own deadline (sleep) */
    void (*unwait)(aw_task_t *);  /* leave the wait structure early */
    void *wait_obj;
    int wait_fd;
    /* The error context, four adjacent words: a generator manager's
     * coroutine swaps it whole with its own around each run (cm/gencm.c:
     * two 16-byte moves each way). */
    aw_err_t *err;                /* pending error, owned */
    uint64_t late_err;            /* seq of an exit error raised after a `return` (K5) */
    uint64_t err_floor;           /* aw_err_clear drops only records newer than this: inside
                                   * an enter or exit, only what it raised itself (M2) */
    aw_with_t *exiting;           /* the with whose exit runs now (innermost) */
    uint8_t auto_err;             /* err is the lone "task returned X" record made at its end */
    aw_scope_t root;
    aw_scope_t *scope;            /* innermost open scope */
    aw_group_t *group;            /* owning group */
    aw__link_t sibling;           /* in group->children, then (joinable) group->done */
    aw_group_t *groups;           /* innermost group this task has open */
    aw_with_t *withs;             /* innermost open with */
    aw_task_t *joiner;
    aw_task_t *delegate;          /* a generator running on this task's behalf */
    aw_task_t *delegator;         /* the task this generator runs for */
    uint8_t wait_kind;            /* introspection: aw__wait_kind_t */
    const void *wait_on;          /* the object waited on */
    aw__list_t locks;             /* locks held (sync/lock.c: aw_lock_t.held) */
    aw__link_t live;              /* in the loop's core->tasks */
    aw_with_t *xshield_with;      /* whose exit holds xshield; NULL: free */
    /* Last: the exit shield of the outermost exit running now (with.c),
     * kept here with its constant fields set at spawn (not zero-filled
     * with the rest), so that an exit costs two stores to hang it and one
     * to take it off; a nested exit (this one taken) builds its own in
     * its with record. xshield.rel is 0 until its grace starts, then the
     * grace of xshield_with's type. */
    aw_scope_t xshield;
};

/* Something a layer above leaves for its loop's close to finish (an HTTP
 * session nobody closed, with tasks still alive that might have:
 * src/http/session.c): embedded in it, no allocation. fn runs once the
 * loop's tasks are done or given up on, before the report of resources
 * left open; it is off the list when it runs. */
typedef struct aw__atclose {
    struct aw__atclose *prev, *next;
    void (*fn)(struct aw__atclose *a);
    bool linked;
} aw__atclose_t;
void aw__atclose_add(aw__atclose_t *a);    /* to the current loop's list */
void aw__atclose_remove(aw__atclose_t *a); /* a no-op when not on it */

struct aw__core {
    aw_group_t root;              /* the loop's root group (no owner) */
    aw__list_t tasks;             /* live tasks (aw_task_t.live) */
    size_t ntasks;
    /* of them, those of a layer above that only serve the others (an HTTP
     * session's driver, src/http/session.c): after the shutdown's cancel
     * they serve while other tasks live, which alone can still need them.
     * Per loop: one left alive at a loop's close counts in no other. */
    size_t nservants;
    aw__atclose_t *atclose;       /* see aw__atclose_t */
    uint64_t next_id;
    aw_task_t *main;              /* aw_main's task */
    /* trace hook (src/core/trace.c): NULL when unset */
    void (*trace)(const struct aw_trace_event *, void *);
    void *trace_arg;
    struct aw__track_rec *tracked; /* open resources (track.c) */
    uint64_t track_id;            /* this loop's id for their handles; 0 until one */
    struct aw__side *sides;       /* finished side coroutines, parked for reuse */
    size_t nsides;
    /* blocks malloc'd by a layer above, kept for reuse (an exit stack's
     * first slab, cm/exitstack.c): each begins with its next pointer;
     * freed at loop close */
    void *spare;
    size_t nspare;
};

/* Trace events (awith/trace.h): one predictable branch when no hook is set. */
void aw__trace_emit(aw_task_t *t, int kind, const aw_with_t *w, int rc);
#define AW__TRACING(t) __builtin_expect((t)->loop->tracing != 0, 0)
#define AW__TRACE(t, kind, w, rc)                                   \
    do {                                                           \
        if (AW__TRACING(t))                                        \
            aw__trace_emit((t), (kind), (w), (rc));                \
    } while (0)

static inline aw_task_t *aw__task_cur(void) {
    aw_loop_t *l = aw__loop_tls;
    return l && l->cur != &l->main ? (aw_task_t *)l->cur : NULL;
}

/* aw_task_self, inline: a generator's code runs on behalf of its
 * consumer, so it is that task (what owns a lock, what a dump names). */
static inline aw_task_t *aw__task_self_of(aw_task_t *t) {
    while (t && t->delegator && t->delegator->delegate == t)
        t = t->delegator;
    return t;
}
static inline aw_task_t *aw__task_self(void) { return aw__task_self_of(aw__task_cur()); }

/* with.c: who owns what a manager lets one task use at a time (a
 * connection's transaction blocks, src/db/): the task's id, its name and
 * where it entered the block, copied, so that nothing dangles once the
 * task ends. take: the running task, entering now; other: owned by
 * another task than the running one; refuse: -EBUSY raised, naming the
 * owner ("WHAT: ... belongs to task ..."). */
typedef struct aw__owner {
    uint64_t id;
    char name[32];
    char at[96];
} aw__owner_t;
void aw__owner_take(aw__owner_t *o);
bool aw__owner_other(const aw__owner_t *o);
int aw__owner_refuse(const aw__owner_t *o, const char *what);

/* with.c: an exit stack's entry moves to the task t that will run its
 * exit (aw__with_adopt), and the entries a task leaves in a stack it
 * does not hold go to the task it ran for as it ends (aw__with_hand_over:
 * SEMANTICS M5). O(depth of the withs) each. */
void aw__with_adopt(aw_with_t *w, aw_task_t *t);
void aw__with_hand_over(aw_task_t *t);

/* task.c */
/* Set by sync/lock.c once a lock has an owner (one store, of its table):
 * `end` is called as a task that still holds locks ends (SEMANTICS M6)
 * and returns the -EOWNERDEAD it raised; `print` writes a line per lock
 * t holds, with where it was acquired, for the report of tasks alive at
 * loop close (M9: a held lock is reported with its site). */
typedef struct aw__task_lock_ops {
    int (*end)(aw_task_t *t);
    void (*print)(const aw_task_t *t, FILE *f);
} aw__task_lock_ops_t;
extern const aw__task_lock_ops_t *aw__task_locks;
/* A task on a stack of its own, ready to run, in no group: the caller
 * links it (root.parent, group) before it first runs. NULL on OOM. */
/* aw__task_new returned NULL: raise -ENOMEM saying why (no memory, or
 * vm.max_map_count reached), for `what` ("task", "generator manager") `name`. */
int aw__task_no_stack(const char *what, const char *name);
aw_task_t *aw__task_new(aw_loop_t *l, aw_task_fn fn, void *arg, size_t stack_size,
                        const char *name, const char *file, int line);
int aw__task_wait(aw_task_t *t, aw_ns_t until, int cancellable);
void aw__task_wake(aw_task_t *t, int rc);
void aw__task_release(aw_task_t *t);
/* The loop's reaper (l->reap): release a finished task's stack. */
void aw__task_reap(aw_loop_t *l, aw__coro_t *c);
/* Delegates: a generator's coroutine running on behalf of task u, inside
 * u's innermost scope. run: let d go until it hands back or finishes (u
 * waits, not cancellably: d sees u's cancels through its chain).
 * handback: from d, wake u and park until run again. */
static inline void aw__delegate_run(aw_task_t *u, aw_task_t *d);
static inline void aw__delegate_handback(aw_task_t *d);
/* The stack canary of t was overwritten: report and abort. */
void aw__task_stack_fail(aw_task_t *t) __attribute__((noreturn, cold));
static inline void aw__task_stack_check(aw_task_t *t) {
    if (!aw__coro_stack_ok(&t->coro))
        aw__task_stack_fail(t);
}
/* The status of a task whose function returned st (SEMANTICS K5): a
 * `return 0` from inside a with block whose exit then failed is that
 * exit's error, not a success (the function could not see it). */
static inline int aw__task_status(const aw_task_t *t, int st) {
    if (st >= 0 && t->err && t->late_err && t->err->seq == t->late_err)
        return t->err->code;
    return st;
}
/* The status of task t whose function returned st, as the task ends
 * with it: K5 (a late exit error), then M6 (locks still held are released
 * and reported, -EOWNERDEAD). Call once the function's work is over (its
 * entry, or a trampoline that must publish the status it ends with). */
/* A task ends with status st < 0: unless the record on top says so
 * already, raise "task 'x' returned EIO", so that a bare `return -EIO`
 * leaves a record too. */
void aw__task_raise_status(aw_task_t *t, int st);
static inline int aw__task_end_status(aw_task_t *t, int st) {
    st = aw__task_status(t, st); /* SEMANTICS K5 */
    /* SEMANTICS M6: locks still held are released now, and reported */
    if (__builtin_expect(!aw__list_empty(&t->locks), 0) && aw__task_locks) {
        if (st < 0) /* its own failure first: the report goes over it (decision 5) */
            aw__task_raise_status(t, st);
        int rc = aw__task_locks->end(t);
        if (rc < 0)
            st = rc;
    }
    return st;
}
/* Move from's pending errors onto to's, renumbered as raised now in to. */
void aw__err_move(aw_task_t *to, aw_task_t *from);
/* The same for a detached chain e (owned: it becomes to's). */
void aw__err_move_chain(aw_task_t *to, aw_err_t *e);

/* scope.c */
/* The scope epoch: a scope's chain_* fields are valid while its epoch is
 * this thread's. Anything that changes what a chain shows (a cancel, an
 * expiry, a rescheduled deadline, a chain re-hung above scopes already
 * entered) moves it on: every cached chain is then read again, once, by
 * a walk. Thread-local: a loop and its scopes live on one thread. */
extern __thread uint64_t aw__scope_epoch __attribute__((tls_model("initial-exec")));
static inline bool aw__scope_known(const aw_scope_t *s) { return s->epoch == aw__scope_epoch; }
/* The grace of the exit of w: its type's, or the loop's default. */
static inline aw_ns_t aw__with_grace(const aw_with_t *w) {
    return w->cm.type->grace ? w->cm.type->grace : w->task->loop->opts.exit_grace;
}
/* What a chain shows from s up to its first shield (included). */
typedef struct aw__chain {
    aw_ns_t deadline;             /* the earliest; AW_NEVER */
    bool cancelled;
} aw__chain_t;
/* One walk, O(depth), no side effect: an exit's grace not started yet
 * counts as no deadline. Shared by everything that reads a chain without
 * suspending (the dump, a group judging a child's cancel). */
aw__chain_t aw__scope_walk(const aw_scope_t *s);
/* The chain an exit's block ran in: the walk from below the running
 * exit's own shield, what the shield hides from the exit. An exit that
 * would wait for something on a clean way out (a process to end by
 * itself) reads there a cancel or deadline the block never observed;
 * a generator manager, whether the block's cancel is still visible. */
aw__chain_t aw__exit_chain(const aw_task_t *t);

/* An exit shield, free, lazy and unknown (its grace starts at the first
 * suspension inside it): what every exit shield starts as, whether the
 * task's own (set at spawn, reset after an exit that used it) or one a
 * nested exit builds in its with record. `rel` is its grace. */
static inline void aw__shield_reset(aw_scope_t *s, aw_task_t *t, aw_ns_t rel) {
    s->task = t;
    s->deadline = AW_NEVER;
    s->rel = rel;
    s->epoch = 0;
    s->chain_cancelled = 0;
    s->cancels = 0;
    s->kind = AW__SCOPE_SHIELD;
    s->cancelled = 0;
    s->expired = 0;
    s->shield = 1;
    s->lazy = 1;
    s->held = 0;
}
/* Link s (its own fields set) below parent and compute its chain_* from
 * the parent's in O(1) when the parent's are known. An exit's shield
 * whose grace has not started is left unknown: the first suspension
 * inside it starts the grace. */
static inline void aw__scope_link(aw_scope_t *s, aw_scope_t *parent) {
    s->parent = parent;
    if (s->lazy) {
        s->epoch = 0;
    } else if (s->shield || !parent) {
        s->chain_deadline = s->deadline;
        s->chain_cancelled = s->cancelled;
        s->epoch = aw__scope_epoch;
    } else if (aw__scope_known(parent) && !parent->held) {
        /* (below a held scope a task's chain is not its parent's: scope.c) */
        s->chain_deadline = s->deadline < parent->chain_deadline ? s->deadline : parent->chain_deadline;
        s->chain_cancelled = s->cancelled | parent->chain_cancelled;
        s->epoch = aw__scope_epoch;
    } else {
        s->epoch = 0;
    }
}
/* What t's chain shows now, starting the grace of an exit it is in (a
 * suspension begins): O(1) when known, else one walk (then known). */
aw__chain_t aw__chain(aw_task_t *t);
/* A scope (or group) s of t ends: take it off t's chain, also when a
 * scope entered after it is still on the chain (an exit stack's entry
 * entered inside s's block outlives it): O(1) when s is innermost, else
 * O(scopes above it). */
void aw__scope_unlink(aw_task_t *t, aw_scope_t *s);
bool aw__cancelled_walk(const aw_task_t *t);
static inline bool aw__cancelled(const aw_task_t *t) { /* level check, O(1) when known */
    const aw_scope_t *s = t->scope;
    return aw__scope_known(s) ? s->chain_cancelled : aw__cancelled_walk(t);
}
int aw__raise_cancel(aw_task_t *t);               /* -ECANCELED with a record */
aw_ns_t aw__deadline(aw_task_t *t);                /* effective; starts an exit's grace */
/* A cancellation point's check: expires past deadlines, returns 0 or
 * raises -ECANCELED; *deadline (if given) gets the effective deadline.
 * O(1) (a clock read if a deadline is set), unless the chain changed.
 * Inline: the common case (known chain, no cancel, no deadline) is a
 * few loads at the call site. */
int aw__point_slow(aw_task_t *t, aw_ns_t *deadline);
/* The common case of a point, known without a call: t's chain is known
 * and shows no cancel and no deadline (the point returns 0, AW_NEVER). */
static inline bool aw__point_clear(const aw_task_t *t) {
    const aw_scope_t *s = t->scope;
    return aw__scope_known(s) && s->chain_deadline == AW_NEVER && !s->chain_cancelled;
}
static inline int aw__point(aw_task_t *t, aw_ns_t *deadline) {
    if (__builtin_expect(aw__point_clear(t), 1)) {
        if (deadline)
            *deadline = AW_NEVER;
        return 0;
    }
    return aw__point_slow(t, deadline);
}
int aw__expire(aw_task_t *t, aw_ns_t now);        /* cancel chain scopes past due; count */
aw_ns_t aw__deadline_pending(aw_task_t *t);       /* soonest deadline of a scope not cancelled */
void aw__scope_wake_tree(aw_scope_t *s, int rearm);
bool aw__outer_cancelled(const aw_scope_t *s);    /* is a scope above s cancelled? */
/* The func of the -ETIMEDOUT a fail-after scope records when a cancel
 * above it outranks its own deadline (decision 6): that record is part of
 * the outer cancel, not a failure, so whatever ends that cancel (a scope,
 * a group, err.c) ends it too, as Trio's fail_at raises nothing when the
 * Cancelled it saw was not its own. Told apart by address. */
extern const char aw__fail_after_outranked[];
static inline bool aw__err_outranked(const aw_err_t *e) {
    return e->code == -ETIMEDOUT && e->func == aw__fail_after_outranked;
}
/* The func of the -ECANCELED a suspension point raises (aw__raise_cancel):
 * the cancel cutting what the task did, over whatever it had pending
 * then; told apart, by address, from a cancel an exit or a group raises
 * again over a failure raised while the cancel unwound the block. */
extern const char aw__cancel_at_point[];
static inline bool aw__err_cut(const aw_err_t *e) {
    return e->code == -ECANCELED && e->func == aw__cancel_at_point;
}

/* err.c */
/* A suspending call made outside a task: -EPERM, recorded as the thread's
 * last error (aw_err_current outside a task) and printed to stderr the
 * first time on this thread. */
int aw__no_task(const char *func) __attribute__((cold));
int aw__raise_at(aw_task_t *t, const char *file, int line, const char *func, int code,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void aw__err_free(aw_err_t *e);
aw_err_t *aw__err_copy(const aw_err_t *e);
/* A deep copy of e for another thread (aw_loops_call's answer): heap
 * records only, which any thread may free; prefix before the top's
 * message. NULL on OOM (an older record that fails ends the chain). */
aw_err_t *aw__err_export(const aw_err_t *e, const char *prefix);
void aw__err_drop_newer(aw_task_t *t, uint64_t seq);
/* A copy of e alone (members too, no context). NULL on OOM. */
aw_err_t *aw__err_copy_top(const aw_err_t *e);
/* Take record e out of t's chain (its context closes the gap); e, or NULL
 * if it is not there. */
aw_err_t *aw__err_unlink(aw_task_t *t, const aw_err_t *e);
/* Drop records newer than seq (inline: usually there are none). */
static inline void aw__err_restore(aw_task_t *t, uint64_t seq) {
    if (t->err && t->err->seq > seq)
        aw__err_drop_newer(t, seq);
}
void aw__err_append(aw_err_t *e, aw_err_t *tail);  /* tail at the end of e's context chain */
/* SEMANTICS M4: a scope or group ends its own cancel by dropping the
 * -ECANCELED records on top of the part of t's chain newer than mark (the
 * cancel re-delivered over an exit's failure, say), with the timeouts
 * that cancel outranked among them (aw__err_outranked), and nothing else;
 * keep_one leaves the last -ECANCELED on top when nothing else is there,
 * or when a suspension point raised it over failures pending from before
 * (aw__err_cut; none raised while it unwound the block). */
void aw__err_absorb_cancels(aw_task_t *t, uint64_t mark, bool keep_one);
/* Strip the -ECANCELED records (and the timeouts they outranked) on top
 * of a detached chain; returns the new head (NULL if it held nothing else). */
aw_err_t *aw__err_strip_cancels(aw_err_t *e);
/* Move t's newest record (just raised) into the part of t's chain newer
 * than mark: just below the oldest failure there (a record other than
 * -ECANCELED), else just above the oldest -ECANCELED (the cancel that
 * caused it), never above the top record, else at the bottom of that
 * part. Used for a deadline's -ETIMEDOUT when another error wins:
 * "EIO <- ETIMEDOUT <- ECANCELED", as Python 3.13 chains it (G10), and
 * "ECANCELED <- AW_EGROUP <- ETIMEDOUT" when an outer cancel is re-raised
 * over a group's failure, so that the failure, not this timeout, is what
 * the outer scope finds when it absorbs its cancel (M4). */
void aw__err_sink(aw_task_t *t, uint64_t mark);
aw_err_t *aw__err_detach(aw_task_t *t);            /* take the pending chain */

/* ---- the suspension itself (task.c's waits; sync/wq.c's, inline) ---- */

/* Leave the wait structure early (the wait ends before it began). */
static inline void aw__task_unwait(aw_task_t *t) {
    if (t->unwait) {
        void (*u)(aw_task_t *) = t->unwait;
        t->unwait = NULL;
        u(t);
    }
}

/* Every suspension of a task goes through here: the stack canary is
 * checked each time the task switches out, whatever it waits for. The
 * loop's park is inlined: the switch sits in the frame of the wait, and
 * the registers it clobbers are saved once. queued: t yields (it is on
 * the run queue), else it waits. unhooked: the caller saw no trace hook
 * and nothing since could set one (no SUSPEND event to test for). */
static inline __attribute__((always_inline)) void aw__task_park(aw_task_t *t, bool queued,
                                                                bool unhooked) {
    aw__task_stack_check(t);
    if (!unhooked)
        AW__TRACE(t, AW_TRACE_SUSPEND, NULL, 0);
    aw__loop_park_inline(t->loop, queued);
    AW__TRACE(t, AW_TRACE_RESUME, NULL, 0);
    t->state = AW__T_RUNNING;
}

/* The wait, once its cancellation point passed: arm the timer at `until`
 * (the wait's own deadline, or the chain's if sooner), park. What
 * aw__task_wait returns. unhooked: as aw__task_park's. */
static inline __attribute__((always_inline)) int aw__task_suspend(aw_task_t *t, aw_ns_t until,
                                                                   int cancellable, bool unhooked) {
    if (until != AW_NEVER && aw__timer_arm(&t->loop->timers, &t->timer, until) < 0) {
        aw__task_unwait(t);
        return aw__raise_at(t, __FILE__, __LINE__, __func__, -ENOMEM, "cannot arm a timer");
    }
    t->cancellable = (uint8_t)cancellable;
    t->state = AW__T_WAITING;
    t->wake_rc = 0;
    aw__task_park(t, false, unhooked);
    t->unwait = NULL;
    int rc = t->wake_rc;
    if (rc == -ECANCELED) {
        aw__expire(t, aw_now()); /* a deadline that landed in the same tick */
        return aw__raise_cancel(t);
    }
    return rc;
}

/* aw__task_wait(t, until, 1), right after a cancellation point of t that
 * passed (aw__point returned 0 and the effective deadline d) with nothing
 * run since: the point is not made twice. Unless a trace hook is set: it
 * may act at every point (cancel, reschedule), and gets this one too. */
static inline __attribute__((always_inline)) int aw__task_wait_point(aw_task_t *t, aw_ns_t until,
                                                                      aw_ns_t d) {
    if (AW__TRACING(t))
        return aw__task_wait(t, until, 1);
    assert(t == aw__task_cur());
    t->wait_until = until;
    return aw__task_suspend(t, d < until ? d : until, 1, true);
}

/* track.c: report every resource still open, free the records; the
 * count. Called at loop close. */
size_t aw__track_report(aw_loop_t *l);

/* log.c: reports (awith/log.h). To l's hook, else the process-wide one,
 * else stderr; l may be NULL (no loop). One hook call per report. */
void aw__log(aw_loop_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3), cold));
void aw__log_msg(aw_loop_t *l, const char *msg) __attribute__((cold));
/* A report of several parts (aw_err_print's lines, say): print into the
 * FILE begin returns, then end sends it whole. */
typedef struct aw__logbuf {
    FILE *f;
    char *text;
    size_t len;
} aw__logbuf_t;
FILE *aw__log_begin(aw__logbuf_t *b) __attribute__((cold));
void aw__log_end(aw_loop_t *l, aw__logbuf_t *b) __attribute__((cold));

/* main.c: a loop's life, shared by aw_main and the embedded loop
 * (embed.c). The loop comes first: an aw_loop_t * is its aw__rt_t *. */
typedef struct aw__rt {
    aw_loop_t loop;
    struct aw__core core;
    void *altstack;               /* the SIGSEGV handler's, this thread's */
    int stopped;                  /* why running stopped early: -EDEADLK, -ECHILD, 0 */
    int signo;                    /* the signal that cancelled the main task, or 0 */
} aw__rt_t;
/* Make a loop on this thread (who: "aw_main", for the report of a failure
 * to start). -EINVAL (a loop runs here), -ENOMEM, the loop's init error. */
int aw__rt_open(const aw_loop_opts_t *opts, const char *who, aw__rt_t **out);
int aw__rt_start(aw__rt_t *rt, aw_task_fn fn, void *arg);  /* the main task */
void aw__rt_cancel(aw__rt_t *rt);   /* begin the shutdown: cancel the root group */
/* Cancel what is left, wait within shutdown_grace, report, free rt.
 * Returns the main task's status (rc when there is none), or as aw_main. */
int aw__rt_close(aw__rt_t *rt, int rc);

/* signal.c: aw_loop_opts_t.cancel_on_signals. install: -EBUSY when
 * another loop has it; remove: before the loop's eventfd closes. */
int aw__sigc_install(aw_loop_t *l);
void aw__sigc_remove(aw_loop_t *l);
void aw__sigc_refork(aw_loop_t *l);

/* group.c */
void aw__group_child_done(aw_task_t *t);
void aw__group_init_root(aw_group_t *g);

/* with.c */
/* The seq pending when the with whose exit runs now was entered (its
 * body's records are newer). */
static inline uint64_t aw__with_exit_mark(const aw_task_t *t) {
    return t->exiting ? t->exiting->mark : 0;
}

/* Delegates hand the thread to each other directly: `from` waits (not
 * cancellably) and `to`, parked in the same kind of wait, runs now. No run
 * queue, no round of the loop: one switch per hand-off. Inline, so that
 * the switch sits in the generator's own entry points (aw_gen_next,
 * aw_gen_yield, gencm enter/exit): every `ret` executed after a switch
 * pops a return address the other stack pushed and is mispredicted, and
 * each call layer around the switch costs one more (perf showed 2/3 of
 * an async generator's item spent on the return after the switch). */
static inline bool aw__delegate_parked(const aw_task_t *t) {
    return t->state == AW__T_WAITING && !t->cancellable && !aw__timer_armed(&t->timer);
}

static inline void aw__delegate_switch(aw_task_t *from, aw_task_t *to) {
    aw_loop_t *l = from->loop;
    aw__task_stack_check(from);
    /* from parks in the state aw__delegate_parked asks for, and resumes
     * here, where nothing reads what a wait sets (wait_until, wake_rc):
     * not cancellable, it has no timer armed and no poke reaches it */
    from->cancellable = 0;
    from->state = AW__T_WAITING;
    /* to resumes here or in aw__task_wait (a hand-back that could not
     * switch parked it there): that wait returns 0 */
    to->unwait = NULL;
    to->wake_rc = 0;
    to->state = AW__T_READY; /* marked running as it resumes */
    AW__TRACE(from, AW_TRACE_SUSPEND, NULL, 0);
    l->cur = &to->coro;
    l->switches++;
    aw__coro_switch(&from->coro, &to->coro, 0);
    aw__loop_after_switch(l);
    AW__TRACE(from, AW_TRACE_RESUME, NULL, 0);
    from->state = AW__T_RUNNING;
}

static inline void aw__delegate_run(aw_task_t *u, aw_task_t *d) {
    /* Hung below the consumer's scope, its kept values read again: the
     * same address is not the same scope (a deadline around each next,
     * as `async with timeout(t): await anext(g)` in a loop, is a new
     * scope in the same place each time), and the old one's deadline
     * must not stay in the root's kept values. O(1): nothing hangs below
     * the root of a generator that is new or parked at its yield (no
     * scope or group can be open there, cm/gen.c). */
    assert(d->scope == &d->root && !d->groups && !d->delegate);
    aw__scope_link(&d->root, u->scope);
    d->delegator = u;
    d->joiner = u;
    u->delegate = d;
    if (aw__delegate_parked(d)) {
        aw__delegate_switch(u, d);
    } else {
        aw__task_wake(d, 0); /* a new task is already queued */
        if (u->loop->rq_head == &d->coro)
            u->loop->budget++; /* next in line: the park switches straight to it */
        aw__task_wait(u, AW_NEVER, 0);
    }
    u->delegate = NULL;
    d->joiner = NULL;
}

static inline void aw__delegate_handback(aw_task_t *d) {
    aw_task_t *u = d->delegator;
    d->joiner = NULL;
    if (aw__delegate_parked(u) && u->delegate == d) {
        aw__delegate_switch(d, u);
    } else {
        aw__task_wake(u, 0);
        aw__task_wait(d, AW_NEVER, 0);
    }
}


/* Side coroutines: a bare stack that runs code on behalf of a task, as
 * that task (a generator manager's function, cm/gencm.c). No task record:
 * while it runs, aw__task_cur() is the task, its scopes, withs and groups
 * go on the task's chains, and a suspension parks the task; the task's
 * coro record describes whichever stack runs for it (its stack, and the
 * sanitizers' bounds), so the loop resumes the right one. Entering and
 * leaving are a direct switch each way: a few stores, no run queue. */
typedef struct aw__side aw__side_t;
struct aw__side {
    aw__coro_t co;                /* the side's context while switched out */
    aw__coro_t back;              /* the task's own context while the side runs */
    aw_task_t *task;
    void (*fn)(aw__side_t *);     /* runs once per use; the side is done when it returns */
    aw__side_t *next;             /* in the core's cache */
    uint8_t done;
};
/* The largest record (an aw__side_t first) a side carries at its top. */
enum { AW__SIDE_MAX = 384 };
/* The core's cache keeps a few: a program nests generator managers a
 * few deep. */
enum { AW__SIDES_CACHED = 8 };
aw__side_t *aw__side_make(aw_task_t *t);          /* on a fresh stack; NULL on OOM */
void aw__side_drop(aw_loop_t *l, aw__side_t *s);  /* its stack back to the loop */
/* At loop close: give the cached sides' stacks back. */
void aw__side_cache_drop(aw_loop_t *l);

/* A side for t: a finished one from the core's cache (parked at the top
 * of its loop), else a new one on a stack from the loop's cache; its
 * record (size bytes, at most AW__SIDE_MAX) at the top of the stack; fn
 * runs at the first aw__side_run. NULL on OOM. */
static inline aw__side_t *aw__side_new(aw_task_t *t, size_t size, void (*fn)(aw__side_t *)) {
    struct aw__core *c = t->loop->core;
    aw__side_t *s = c->sides;
    assert(size <= AW__SIDE_MAX);
    (void)size;
    if (__builtin_expect(s != NULL, 1)) {
        c->sides = s->next;
        c->nsides--;
    } else if (!(s = aw__side_make(t))) {
        return NULL;
    }
    s->task = t;
    s->fn = fn;
    s->done = 0;
    return s;
}

/* Done with it: back to the core's cache, or its stack to the loop's. */
static inline void aw__side_free(aw__side_t *s) {
    aw_loop_t *l = s->task->loop;
    struct aw__core *c = l->core;
    if (__builtin_expect(!s->done || c->nsides >= AW__SIDES_CACHED, 0)) {
        aw__side_drop(l, s);
        return;
    }
    s->next = c->sides;
    c->sides = s;
    c->nsides++;
}

/* Which fields say which stack runs (the switch saves sp itself). */
static inline void aw__side_describe(aw__coro_t *to, const aw__coro_t *from) {
    to->stack = from->stack;
    to->canary = from->canary;
#if defined(AW__ASAN) || defined(AW__TSAN)
    to->bottom = from->bottom;
    to->size = from->size;
    to->tsan_fiber = from->tsan_fiber;
#endif
}

/* From the task: run the side until it hands back or is done. */
static inline void aw__side_run(aw_task_t *t, aw__side_t *s) {
    aw__task_stack_check(t);
    aw__side_describe(&s->back, &t->coro);
    aw__side_describe(&t->coro, &s->co);
    t->loop->switches++;
    aw__coro_switch(&s->back, &s->co, 0);
}

/* From the side: back to the task's own stack. */
static inline void aw__side_back(aw__side_t *s) {
    aw_task_t *t = s->task;
    aw__task_stack_check(t); /* t->coro.stack is the side's */
    aw__side_describe(&t->coro, &s->back);
    t->loop->switches++;
    aw__coro_switch(&s->co, &s->back, 0); /* a done side is reused */
}


/* The status of a call that ran a block since aw_err_mark() gave `mark`:
 * the code of what it raised, not of what was pending before it (an
 * exit's handed error, an earlier failure not handled yet). A cancel
 * raised while one is pending adds no record: it is the call's too while
 * a cancel is visible. */
static inline int aw__status_since(uint64_t mark) {
    const aw_err_t *e = aw_err_current();
    if (!e)
        return 0;
    if (e->seq > mark)
        return e->code;
    return e->code == -ECANCELED && aw_cancel_pending() ? -ECANCELED : 0;
}

#endif
