/* with.c: the `with` block: enter, body, and an exit that runs on every
 * way out (via __attribute__((cleanup)), so return and goto are covered).
 *
 * The error a block leaves with is the error raised inside it and still
 * pending: records newer than `mark`, the seq pending at entry. Exit runs
 * inside a shield scope (outer cancels and deadlines hidden) whose grace
 * period starts at its first suspension, so a non-suspending exit costs no
 * clock read and no timer. Cost of a non-suspending with: two indirect
 * calls and a few stores; no malloc. */
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

bool aw__with_enter(aw_with_t *w) {
    if (w->state != AW__WITH_INIT)
        return false; /* entered already */
    aw_task_t *t = aw__task_cur();
    const aw_cm_type_t *ty = w->cm.type;
    w->task = t;
    w->state = AW__WITH_FAILED;
    if (!t) {
        aw__log(aw__loop_tls, "awith: aw_with at %s:%d used outside a task; block skipped\n",
                w->file, w->line);
        return false;
    }
    if (!ty || !ty->enter || !ty->exit) {
        aw_raise(-AW_EPROTOCOL, "manager '%s' at %s:%d has no %s", ty && ty->name ? ty->name : "?",
                 w->file, w->line, !ty ? "type" : !ty->enter ? "enter" : "exit");
        return false;
    }
    w->mark = t->err ? t->err->seq : 0;
    w->outer = t->withs;
    t->withs = w;
    w->state = AW__WITH_ENTER;
    w->since = t->loop->now;
    bool traced = AW__TRACING(t); /* one test for both events */
    if (traced)
        aw__trace_emit(t, AW_TRACE_ENTER, w, 0);
    uint64_t floor = t->err_floor;
    t->err_floor = w->mark; /* M2: a clear in enter handles only what enter raised */
    int rc = ty->enter(w->cm.self, &w->value);
    t->err_floor = floor;
    if (traced)
        aw__trace_emit(t, AW_TRACE_ENTERED, w, rc < 0 ? rc : 0);
    if (rc < 0) {
        if (!t->err || t->err->seq <= w->mark || t->err->code != rc)
            aw_raise(rc, "enter of manager '%s' failed: %s", aw_cm_name(w->cm), aw_strerror(rc));
        aw__with_unlink(w);
        w->state = AW__WITH_FAILED;
        return false;
    }
    aw__err_restore(t, w->mark); /* enter succeeded: what it raised was handled */
    w->state = AW__WITH_BODY;
    return true;
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

void aw__with_cleanup(aw_with_t *w) {
    if (w->state != AW__WITH_BODY)
        return;
    aw_task_t *t = w->task;
    const aw_cm_type_t *ty = w->cm.type;
    aw_err_t *body = t->err && t->err->seq > w->mark ? t->err : NULL;
    uint64_t body_seq = body ? body->seq : 0;
    int body_code = body ? body->code : 0;
    bool shielded = !(ty->flags & AW_CM_UNSHIELDED);
    w->state = AW__WITH_EXIT;
    w->since = t->loop->now;
    if (shielded) {
        w->shield = (aw_scope_t){.parent = t->scope, .task = t, .kind = AW__SCOPE_SHIELD,
                                 .shield = 1, .lazy = 1, .deadline = AW_NEVER,
                                 .rel = ty->grace ? ty->grace : t->loop->opts.exit_grace};
        t->scope = &w->shield;
    }
    uint64_t before = t->err ? t->err->seq : 0;
    bool traced = AW__TRACING(t);
    if (traced)
        aw__trace_emit(t, AW_TRACE_EXIT, w, body_code);
    uint64_t floor = t->err_floor;
    aw_with_t *exiting = t->exiting;
    t->err_floor = before; /* M2: a clear in exit handles only what exit raised */
    t->exiting = w;
    int rc = ty->exit(w->cm.self, body);
    t->err_floor = floor;
    t->exiting = exiting;
    if (shielded) {
        t->scope = w->shield.parent;
        if (w->shield.expired) {
            const char *name = aw_cm_name(w->cm);
            aw__raise_at(t, w->file, w->line, name, -ETIMEDOUT,
                         "exit of manager '%s' (entered at %s:%d) overran its grace period of %lld ms",
                         name, w->file, w->line, (long long)(w->shield.rel / 1000000));
            if (rc >= 0)
                rc = -ETIMEDOUT;
        }
    }
    aw__with_resolve(w, body_seq, body_code, before, rc);
    /* SEMANTICS K5 (Go's `defer f.Close(); return nil`): left by return or
     * goto (the loop's condition never ran again, so once is still set),
     * the returned value is fixed before exit runs. If exit failed, mark
     * the record: a task function returning success with it still pending
     * fails with it instead of dropping it (task.c). */
    if (w->once && t->err && t->err->seq > before)
        t->late_err = t->err->seq;
    aw__with_unlink(w);
    w->state = AW__WITH_DONE;
    if (traced)
        aw__trace_emit(t, AW_TRACE_EXITED, w, t->err && t->err->seq > w->mark ? t->err->code : 0);
}
