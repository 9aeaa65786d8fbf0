/* with.c: the `with` block: enter, body, and an exit that runs on every
 * way out (via __attribute__((cleanup)), so return and goto are covered).
 *
 * The error a block leaves with is the error raised inside it and still
 * pending: records newer than `mark`, the seq pending at entry. Exit runs
 * inside a shield scope (outer cancels and deadlines hidden) whose grace
 * period starts at its first suspension, so a non-suspending exit costs no
 * clock read and no timer; the shield is the task's own, hung by two
 * stores, unless the exit is nested in another. Cost of a non-suspending
 * with: two indirect calls and a few stores; no malloc. */
#include "../core/core.h"

#include <string.h>

aw_with_t aw__with_init(aw_cm_t cm, const char *file, int line) {
    aw_with_t w;
    w.cm = cm;
    w.value = NULL;
    w.file = file;
    w.line = line;
    w.state = AW__WITH_INIT;
    w.once = 0;
    return w;
}

/* Usually the innermost; exit-stack entries may sit deeper. O(depth). */
static void aw__with_unlink(aw_with_t *w) {
    aw_with_t **p = &w->task->withs;
    while (*p && *p != w)
        p = &(*p)->outer;
    if (*p)
        *p = w->outer;
}

/* Why a block cannot be entered (cold): outside a task, or a type with
 * no enter or exit. */
static __attribute__((noinline, cold)) bool aw__with_refuse(aw_with_t *w, aw_task_t *t) {
    const aw_cm_type_t *ty = w->cm.type;
    w->state = AW__WITH_FAILED;
    if (!t) {
        aw__log(aw__loop_tls, "awith: aw_with at %s:%d used outside a task; block skipped\n",
                w->file, w->line);
        return false;
    }
    aw_raise(-AW_EPROTOCOL, "manager '%s' at %s:%d has no %s", ty && ty->name ? ty->name : "?",
             w->file, w->line, !ty ? "type" : !ty->enter ? "enter" : "exit");
    return false;
}

static __attribute__((noinline, cold)) bool aw__with_enter_failed(aw_with_t *w, int rc) {
    aw_task_t *t = w->task;
    if (!t->err || t->err->seq <= w->mark || t->err->code != rc)
        aw_raise(rc, "enter of manager '%s' failed: %s", aw_cm_name(w->cm), aw_strerror(rc));
    aw__with_unlink(w);
    w->state = AW__WITH_FAILED;
    return false;
}

/* The enter itself, once w is linked. Inlined twice: with and without
 * the trace hook, so that the common path keeps no flag across the call. */
static inline __attribute__((always_inline)) bool aw__with_run_enter(aw_with_t *w, aw_task_t *t,
                                                                      const aw_cm_type_t *ty,
                                                                      uint64_t mark, bool traced) {
    if (traced)
        aw__trace_emit(t, AW_TRACE_ENTER, w, 0);
    uint64_t floor = t->err_floor;
    t->err_floor = mark; /* M2: a clear in enter handles only what enter raised */
    int rc = ty->enter(w->cm.self, &w->value);
    t->err_floor = floor;
    if (traced)
        aw__trace_emit(t, AW_TRACE_ENTERED, w, rc < 0 ? rc : 0);
    if (__builtin_expect(rc < 0, 0))
        return aw__with_enter_failed(w, rc);
    aw__err_restore(t, mark); /* enter succeeded: what it raised was handled */
    w->state = AW__WITH_BODY;
    return true;
}

static __attribute__((noinline, cold)) bool aw__with_enter_traced(aw_with_t *w, aw_task_t *t,
                                                                  const aw_cm_type_t *ty,
                                                                  uint64_t mark) {
    return aw__with_run_enter(w, t, ty, mark, true);
}

bool aw__with_enter(aw_with_t *w) {
    if (w->state != AW__WITH_INIT)
        return false; /* entered already */
    aw_task_t *t = aw__task_cur();
    const aw_cm_type_t *ty = w->cm.type;
    w->task = t;
    w->value = NULL;
    if (__builtin_expect(!t || !ty || !ty->enter || !ty->exit, 0))
        return aw__with_refuse(w, t);
    uint64_t mark = t->err ? t->err->seq : 0;
    w->mark = mark;
    w->outer = t->withs;
    t->withs = w;
    w->state = AW__WITH_ENTER;
    w->since = t->loop->now;
    if (AW__TRACING(t))
        return aw__with_enter_traced(w, t, ty, mark);
    return aw__with_run_enter(w, t, ty, mark, false);
}

/* Decide what leaves the block, given what exit returned. */
static void aw__with_resolve(aw_with_t *w, uint64_t body_seq, int body_code, uint64_t before, int rc) {
    aw_task_t *t = w->task;
    const aw_cm_type_t *ty = w->cm.type;
    const char *name = aw_cm_name(w->cm);
    int body_cancel = body_code == -ECANCELED && !(ty->flags & AW_CM_SUPPRESS_CANCEL);
    bool raised = t->err && t->err->seq > before;
    if (rc > 0 && rc != AW_SUPPRESS) {
        rc = aw__raise_at(t, w->file, w->line, name, -AW_EPROTOCOL,
                          "exit of manager '%s' returned %d: an exit returns 0 (propagate), "
                          "AW_SUPPRESS or a negative error code", name, rc);
        raised = true;
    }
    if (rc > 0) { /* suppress */
        aw__err_restore(t, body_cancel ? body_seq : w->mark);
        return;
    }
    if (rc == 0) { /* propagate the body's error unchanged */
        aw__err_restore(t, body_seq ? body_seq : w->mark);
        return;
    }
    if (!raised) {
        if (body_seq && rc == body_code)
            return; /* re-raised the same error: no self-chaining */
        aw__raise_at(t, w->file, w->line, name, rc, "exit of manager '%s' failed: %s",
                     name, aw_strerror(rc));
    }
    if (body_cancel && t->err && t->err->code != -ECANCELED) /* a cancel is never lost */
        aw__raise_at(t, w->file, w->line, name, -ECANCELED,
                     "cancelled (and the exit of manager '%s' failed)", name);
}

/* The exit's shield, on the task's chain for the time of the exit. Its
 * grace starts at the exit's first suspension (lazy), and its chain is
 * unknown until then (epoch 0), so an exit that never suspends reads no
 * clock and walks nothing. The outermost exit running uses the task's own
 * shield, whose constant fields were set at spawn: hanging it is two
 * stores. An exit nested in another's (the task's is taken) builds one in
 * its with record: the fields a scope needs, no zero-fill. */
static __attribute__((noinline)) aw_scope_t *aw__with_own_shield(aw_with_t *w, aw_task_t *t) {
    aw_scope_t *s = &w->shield;
    aw__shield_reset(s, t, aw__with_grace(w));
    s->parent = t->scope;
    t->scope = s;
    return s;
}

static inline aw_scope_t *aw__with_shield(aw_with_t *w, aw_task_t *t) {
    if (__builtin_expect(t->xshield_with != NULL, 0))
        return aw__with_own_shield(w, t);
    aw_scope_t *s = &t->xshield;
    t->xshield_with = w;
    s->parent = t->scope;
    t->scope = s;
    return s;
}

static __attribute__((noinline, cold)) int aw__with_overran(aw_with_t *w, aw_task_t *t, int rc,
                                                            aw_ns_t grace) {
    const char *name = aw_cm_name(w->cm);
    aw__raise_at(t, w->file, w->line, name, -ETIMEDOUT,
                 "exit of manager '%s' (entered at %s:%d) overran its grace period of %lld ms",
                 name, w->file, w->line, (long long)(grace / 1000000));
    return rc >= 0 ? -ETIMEDOUT : rc;
}

/* The task's shield after an exit whose grace started (it suspended, or
 * its chain was read): report an overrun, and make the shield lazy and
 * unknown again for the next exit. Chains below it may have kept values
 * computed from its deadline (a generator's root hung below it keeps its
 * parent pointer across uses): move the epoch on so that none survives. */
static __attribute__((noinline, cold)) int aw__with_shield_used(aw_with_t *w, aw_task_t *t, int rc) {
    aw_scope_t *s = &t->xshield;
    if (s->expired)
        rc = aw__with_overran(w, t, rc, s->rel);
    aw__shield_reset(s, t, 0);
    aw__scope_epoch++;
    return rc;
}

/* Take the shield s off t's chain after w's exit; returns what exit
 * returned, or the overrun's -ETIMEDOUT. */
static inline int aw__with_unshield(aw_with_t *w, aw_task_t *t, aw_scope_t *s, int rc) {
    t->scope = s->parent;
    if (__builtin_expect(s == &t->xshield, 1)) {
        t->xshield_with = NULL;
        if (__builtin_expect(!s->lazy, 0))
            rc = aw__with_shield_used(w, t, rc);
    } else if (__builtin_expect(s->expired, 0)) {
        rc = aw__with_overran(w, t, rc, s->rel);
    }
    return rc;
}

/* The exit, from the state set to EXIT on. Inlined twice, as enter. */
static inline __attribute__((always_inline)) void aw__with_run_exit(aw_with_t *w, aw_task_t *t,
                                                                     const aw_cm_type_t *ty,
                                                                     bool traced) {
    uint64_t before = t->err ? t->err->seq : 0;
    aw_err_t *body = before > w->mark ? t->err : NULL;
    /* read now: the exit may free the record (a scope absorbing its cancel) */
    uint64_t body_seq = body ? body->seq : 0;
    int body_code = body ? body->code : 0;
    aw_scope_t *shield = ty->flags & AW_CM_UNSHIELDED ? NULL : aw__with_shield(w, t);
    if (traced)
        aw__trace_emit(t, AW_TRACE_EXIT, w, body_code);
    uint64_t floor = t->err_floor;
    aw_with_t *exiting = t->exiting;
    t->err_floor = before; /* M2: a clear in exit handles only what exit raised */
    t->exiting = w;
    int rc = ty->exit(w->cm.self, body);
    t->err_floor = floor;
    t->exiting = exiting;
    if (shield)
        rc = aw__with_unshield(w, t, shield, rc);
    bool raised = t->err && t->err->seq > before;
    /* the common way out: a clean body, a clean exit, nothing to decide */
    if (__builtin_expect(rc != 0 || body_seq || raised, 0))
        aw__with_resolve(w, body_seq, body_code, before, rc);
    /* SEMANTICS K5 (Go's `defer f.Close(); return nil`): left by return or
     * goto (the loop's condition never ran again, so once is still set),
     * the returned value is fixed before exit runs. If exit failed, mark
     * the record: a task function returning success with it still pending
     * fails with it instead of dropping it (task.c). */
    if (w->once && t->err && t->err->seq > before)
        t->late_err = t->err->seq;
    if (__builtin_expect(t->withs == w, 1))
        t->withs = w->outer;
    else
        aw__with_unlink(w);
    w->state = AW__WITH_DONE;
    if (traced)
        aw__trace_emit(t, AW_TRACE_EXITED, w, t->err && t->err->seq > w->mark ? t->err->code : 0);
}

static __attribute__((noinline, cold)) void aw__with_exit_traced(aw_with_t *w, aw_task_t *t,
                                                                 const aw_cm_type_t *ty) {
    aw__with_run_exit(w, t, ty, true);
}

void aw__with_cleanup(aw_with_t *w) {
    if (w->state != AW__WITH_BODY)
        return;
    aw_task_t *t = w->task;
    w->state = AW__WITH_EXIT;
    w->since = t->loop->now;
    if (AW__TRACING(t))
        aw__with_exit_traced(w, t, w->cm.type);
    else
        aw__with_run_exit(w, t, w->cm.type, false);
}
