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

#include <stdlib.h>
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

/* SEMANTICS M5: an exit stack's entry may be entered by another task
 * than the one that unwinds the stack (a child task, or a generator,
 * entering into a stack its parent or consumer holds, as Python's
 * AsyncExitStack allows). The entry's exit runs in the task that unwinds
 * the stack, so the record moves to that task's chain of withs. */
void aw__with_adopt(aw_with_t *w, aw_task_t *t) {
    if (w->task)
        aw__with_unlink(w);
    w->task = t;
    w->outer = t->withs;
    t->withs = w;
}

/* A task ends with withs still linked: only exit-stack entries it entered
 * into a stack another task holds (its blocks have all ended). They go to
 * the task it ran for (a generator's consumer, a child's group owner),
 * which usually holds the stack, or to none until the stack's unwind
 * adopts them: never left pointing at a task that is gone. */
static void aw__with_scope_orphaned(aw_task_t *t) __attribute__((noreturn, cold));

void aw__with_hand_over(aw_task_t *t) {
    if (t->scope != &t->root || t->groups)
        aw__with_scope_orphaned(t);
    aw_task_t *heir = t->delegator && t->delegator->delegate == t ? t->delegator
                      : t->group                                  ? t->group->owner
                                                                  : NULL;
    while (t->withs) {
        aw_with_t *w = t->withs;
        assert(w->state == AW__WITH_BODY);
        t->withs = w->outer;
        w->task = NULL;
        if (heir)
            aw__with_adopt(w, heir);
    }
}

/* t ends while a scope or group it entered into another task's exit
 * stack is open: that scope covers t (its deadline and cancel reach t's
 * waits), so it cannot outlive t, and the stack's unwind would end it on
 * a chain it is not on. exitstack.h: only the task that holds the stack
 * may enter such an entry. Nothing can be done right any more: say where
 * and stop, rather than corrupt the scope chain of a live task. */
static void aw__with_scope_orphaned(aw_task_t *t) {
    const aw_with_t *w = t->withs;
    aw__log(t->loop,
            "awith: task '%s' ends with a deadline, cancel scope or group it entered into\n"
            "  another task's exit stack still open (the newest entry it left there: %s:%d).\n"
            "  Such an entry covers the task that enters it; only the task that holds the\n"
            "  stack may enter one (awith/exitstack.h).\n",
            t->name, w ? w->file : "?", w ? w->line : 0);
    abort();
}

void aw__owner_take(aw__owner_t *o) {
    aw_task_t *me = aw__task_self();
    const char *name = me ? aw_task_name(me) : NULL;
    aw_task_t *t = aw__task_cur();
    const aw_with_t *w = t ? t->withs : NULL;
    o->id = aw_task_id(me);
    snprintf(o->name, sizeof o->name, "%s", name ? name : "?");
    if (w && w->state == AW__WITH_ENTER && w->file)
        snprintf(o->at, sizeof o->at, "%s:%d", w->file, w->line);
    else
        snprintf(o->at, sizeof o->at, "?");
}

bool aw__owner_other(const aw__owner_t *o) { return o->id != aw_task_id(aw__task_self()); }

int aw__owner_refuse(const aw__owner_t *o, const char *what) {
    return aw_raise(-EBUSY, "%s: the connection's transaction belongs to task '%s' (id %llu, begun at "
                            "%s): one task's blocks at a time; use a connection per task",
                    what, o->name, (unsigned long long)o->id, o->at);
}

/* Why a block cannot be entered (cold): outside a task, or a type with
 * no enter or exit. */
static __attribute__((noinline, cold)) bool aw__with_refuse(aw_with_t *w, aw_task_t *t) {
    const aw_cm_type_t *ty = w->cm.type;
    w->state = AW__WITH_FAILED;
    if (!t) {
        /* -EPERM pending (the thread's last error), as for any suspending
         * call made there: the code after the block can tell it never ran
         * (Python's timeout raises outside a task). Reported too: the
         * caller may not look. */
        aw_raise(-EPERM, "aw_with of manager '%s' at %s:%d used outside a task; block skipped "
                         "(use it from a task: the function given to aw_main or to aw_spawn)",
                 ty && ty->name ? ty->name : "?", w->file, w->line);
        aw__log(aw__loop_tls, "awith: %s\n", aw_err_current()->msg);
        return false;
    }
    aw_raise(-AW_EPROTOCOL, "manager '%s' at %s:%d has no %s", ty && ty->name ? ty->name : "?",
             w->file, w->line, !ty ? "type" : !ty->enter ? "enter" : "exit");
    return false;
}

static __attribute__((noinline, cold)) bool aw__with_enter_failed(aw_with_t *w, int rc) {
    aw_task_t *t = w->task;
    if (rc > 0) {
        /* enter broke its contract (0 or -errno): refused as an exit's
         * bad value is (A14), and, as a failed enter, no exit is owed (A2;
         * CPython's test_with_6 does not call __aexit__ either) */
        const char *name = aw_cm_name(w->cm);
        rc = aw_raise(-AW_EPROTOCOL, "enter of manager '%s' returned %d: an enter returns 0 "
                                     "(entered) or a negative error code",
                      name, rc);
    }
    if (!t->err || t->err->seq <= w->mark || t->err->code != rc)
        aw_raise(rc, "enter of manager '%s' failed: %s", aw_cm_name(w->cm), aw_strerror(rc));
    aw__with_unlink(w);
    w->state = AW__WITH_FAILED;
    return false;
}

/* state = BODY and once = 1 (the macro's loop runs the body), as one
 * 32-bit store over the two bytes and the padding after them: two byte
 * stores, or a 16-bit one (which the compiler loads from memory first),
 * cost an instruction more on every with. */
static inline void aw__with_set_body(aw_with_t *w) {
    _Static_assert(offsetof(aw_with_t, once) == offsetof(aw_with_t, state) + 1 &&
                   offsetof(aw_with_t, code) >= offsetof(aw_with_t, state) + 4,
                   "state, once and two bytes of padding are written as one word");
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v = AW__WITH_BODY | 1u << 8;
#else
    uint32_t v = (uint32_t)AW__WITH_BODY << 24 | 1u << 16;
#endif
    memcpy((char *)w + offsetof(aw_with_t, state), &v, sizeof v);
}

/* The enter itself, once w is linked. Inlined twice: with and without
 * the trace hook, so that the common path keeps no flag across the call.
 * Only w lives across the manager's call: what is needed after it (the
 * task, the saved floor, the mark) is read back from w, so the function
 * saves one callee-saved register instead of four. */
static inline __attribute__((always_inline)) bool aw__with_run_enter(aw_with_t *w, aw_task_t *t,
                                                                      const aw_cm_type_t *ty,
                                                                      uint64_t mark, bool traced) {
    if (traced)
        aw__trace_emit(t, AW_TRACE_ENTER, w, 0);
    w->floor = t->err_floor;
    t->err_floor = mark; /* M2: a clear in enter handles only what enter raised */
    int rc = ty->enter(w->cm.self, &w->value);
    t = w->task;
    t->err_floor = w->floor;
    if (traced)
        aw__trace_emit(t, AW_TRACE_ENTERED, w, rc > 0 ? -AW_EPROTOCOL : rc);
    if (__builtin_expect(rc != 0, 0)) /* failed, or broke the contract (A14) */
        return aw__with_enter_failed(w, rc);
    aw__err_restore(t, w->mark); /* enter succeeded: what it raised was handled */
    aw__with_set_body(w);
    return true;
}

static __attribute__((noinline, cold)) bool aw__with_enter_traced(aw_with_t *w, aw_task_t *t,
                                                                  const aw_cm_type_t *ty,
                                                                  uint64_t mark) {
    return aw__with_run_enter(w, t, ty, mark, true);
}

/* w was prepared (aw__with_prep or aw__with_init) and is entered once:
 * every way out of here sets w->state (BODY, or FAILED). */
bool aw__with_enter(aw_with_t *w) {
    /* aw__task_cur, spelled out to keep the loop: the task runs on it */
    aw_loop_t *l = aw__loop_tls;
    const aw_cm_type_t *ty = w->cm.type;
    w->value = NULL;
    if (__builtin_expect(!l || l->cur == &l->main, 0)) {
        w->task = NULL;
        return aw__with_refuse(w, NULL);
    }
    aw_task_t *t = (aw_task_t *)l->cur;
    assert(t->loop == l);
    w->task = t;
    if (__builtin_expect(!ty || !ty->enter || !ty->exit, 0))
        return aw__with_refuse(w, t);
    uint64_t mark = __builtin_expect(t->err != NULL, 0) ? t->err->seq : 0;
    w->mark = mark;
    w->outer = t->withs;
    t->withs = w;
    w->state = AW__WITH_ENTER;
    w->since = l->now;
    if (__builtin_expect(l->tracing, 0))
        return aw__with_enter_traced(w, t, ty, mark);
    return aw__with_run_enter(w, t, ty, mark, false);
}

/* Is there a record of code rc among those newer than seq? */
static bool aw__with_recorded(const aw_task_t *t, uint64_t seq, int rc) {
    for (const aw_err_t *e = t->err; e && e->seq > seq; e = e->context)
        if (e->code == rc)
            return true;
    return false;
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
    if (!raised && body_seq && rc == body_code)
        return; /* re-raised the same error: no self-chaining */
    /* a bare code: its record, also over what the exit raised and left
     * pending (a failed first step), as a task's or a generator's
     * return is read; none for a code the block has a record of */
    if (!raised || !aw__with_recorded(t, w->mark, rc))
        aw__raise_at(t, w->file, w->line, name, rc, "exit of manager '%s' failed: %s",
                     name, aw_strerror(rc));
    if (body_cancel && t->err && t->err->code != -ECANCELED) /* a cancel is never lost */
        aw__raise_at(t, w->file, w->line, name, -ECANCELED,
                     "cancelled (and the exit of manager '%s' failed)", name);
}

/* w's exit is over: off the task's chain of withs. Its state stays EXIT
 * (no store): every reader of a state (the dump, locks, tracking, the
 * exit stack's check) finds records through that chain, and a second
 * cleanup returns at once, as for any state but BODY. */
static inline void aw__with_done(aw_with_t *w, aw_task_t *t) {
    if (__builtin_expect(t->withs == w, 1))
        t->withs = w->outer;
    else
        aw__with_unlink(w);
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
    /* An exit cut by its grace that then failed with a bare code has
     * raised nothing with it (the cut's -ECANCELED is not it): record it
     * now, below the overrun, as its own raise would be (decision 5). */
    if (rc < 0 && !aw__with_recorded(t, w->before, rc))
        aw__raise_at(t, w->file, w->line, name, rc, "exit of manager '%s' failed: %s", name,
                     aw_strerror(rc));
    aw__raise_at(t, w->file, w->line, name, -ETIMEDOUT,
                 "exit of manager '%s' (entered at %s:%d) overran its grace period of %lld ms",
                 name, w->file, w->line, (long long)(grace / 1000000));
    /* Decision 2: a cancel unwinding the block stays on top of the
     * overrun. aw__with_resolve puts it back for the other types; a type
     * that may end a cancel (a generator manager) decided before its
     * overrun was known, so a cancel still visible goes back on here. */
    if ((w->cm.type->flags & AW_CM_SUPPRESS_CANCEL) && w->before > w->mark &&
        w->code == -ECANCELED && aw__cancelled_walk(t))
        aw__raise_at(t, w->file, w->line, name, -ECANCELED,
                     "cancelled (and the exit of manager '%s' overran its grace period)", name);
    return rc >= 0 ? -ETIMEDOUT : rc;
}

/* The task's shield after an exit whose grace started (it suspended, or
 * its chain was read): report an overrun, and make the shield lazy and
 * unknown again for the next exit. Chains below it may have kept values
 * computed from its deadline: move the epoch on so that none survives
 * into the next use of the same shield. (A generator's root resumed
 * below it no longer keeps them: every resume links it again, core.h.) */
static __attribute__((noinline, cold)) int aw__with_shield_used(aw_with_t *w, aw_task_t *t, int rc) {
    aw_scope_t *s = &t->xshield;
    if (s->expired)
        rc = aw__with_overran(w, t, rc, s->rel);
    aw__shield_reset(s, t, 0);
    aw__scope_epoch++;
    return rc;
}

enum { AW__UNSHIELD_LAZY, AW__UNSHIELD_USED, AW__UNSHIELD_EXPIRED };

/* Take w's shield, if it has one, off t's chain after its exit. Read
 * from the task rather than kept across the exit's call: the exit leaves
 * t->scope as it found it (its scopes are nested in it), and only w's own
 * exit hangs the task's shield for w, or w's own shield. Returns what is
 * left to do (aw__with_settle): nothing (LAZY: the grace never started),
 * the task's shield to reset (USED), an overrun to report (EXPIRED). */
static inline int aw__with_unshield(aw_with_t *w, aw_task_t *t) {
    if (__builtin_expect(t->xshield_with == w, 1)) {
        aw_scope_t *s = &t->xshield;
        assert(t->scope == s);
        t->scope = s->parent;
        t->xshield_with = NULL;
        return __builtin_expect(!s->lazy, 0) ? AW__UNSHIELD_USED : AW__UNSHIELD_LAZY;
    }
    if (t->scope == &w->shield) {
        aw_scope_t *s = &w->shield;
        t->scope = s->parent;
        return __builtin_expect(s->expired, 0) ? AW__UNSHIELD_EXPIRED : AW__UNSHIELD_LAZY;
    }
    return AW__UNSHIELD_LAZY;
}

/* The exit's end when there is something to decide (an error, a
 * non-zero return, a shield whose grace started) or to trace: out of
 * line, and given only w and what exit returned, so that the common way
 * out keeps nothing but w across the manager's call. */
static __attribute__((noinline)) void aw__with_settle(aw_with_t *w, int rc, int shield, bool traced) {
    aw_task_t *t = w->task;
    if (shield == AW__UNSHIELD_USED)
        rc = aw__with_shield_used(w, t, rc);
    else if (shield == AW__UNSHIELD_EXPIRED)
        rc = aw__with_overran(w, t, rc, w->shield.rel);
    uint64_t before = w->before;
    uint64_t body_seq = before > w->mark ? before : 0;
    if (rc != 0 || body_seq || (t->err && t->err->seq > before))
        aw__with_resolve(w, body_seq, body_seq ? w->code : 0, before, rc);
    /* SEMANTICS K5 (Go's `defer f.Close(); return nil`): left by return or
     * goto (the loop's condition never ran again, so once is still set),
     * the returned value is fixed before exit runs. If exit failed, mark
     * the record: a task function returning success with it still pending
     * fails with it instead of dropping it (task.c). */
    if (w->once && t->err && t->err->seq > before)
        t->late_err = t->err->seq;
    aw__with_done(w, t);
    if (traced)
        aw__trace_emit(t, AW_TRACE_EXITED, w, t->err && t->err->seq > w->mark ? t->err->code : 0);
}

/* The exit, from the state set to EXIT on. Inlined twice, as enter. As
 * there, only w lives across the manager's call: the task's floor and
 * exiting are saved in w (one 16-byte move each way), and what the
 * resolution needs (the seq pending at the start, the body's code) too. */
static inline __attribute__((always_inline)) void aw__with_run_exit(aw_with_t *w, aw_task_t *t,
                                                                     const aw_cm_type_t *ty,
                                                                     bool traced) {
    _Static_assert(offsetof(aw_task_t, exiting) == offsetof(aw_task_t, err_floor) + 8 &&
                   offsetof(aw_with_t, exiting) == offsetof(aw_with_t, floor) + 8,
                   "err_floor and exiting are saved as one 16-byte block");
    aw_err_t *e = t->err;
    uint64_t before = __builtin_expect(e != NULL, 0) ? e->seq : 0;
    aw_err_t *body = NULL;
    w->before = before;
    if (__builtin_expect(before > w->mark, 0)) {
        body = e;
        /* read now: the exit may free the record (a scope absorbing its cancel) */
        w->code = e->code;
    }
    if (__builtin_expect(!(ty->flags & AW_CM_UNSHIELDED), 1))
        aw__with_shield(w, t);
    if (traced)
        aw__trace_emit(t, AW_TRACE_EXIT, w, body ? w->code : 0);
    memcpy(&w->floor, &t->err_floor, 16);
    t->err_floor = before; /* M2: a clear in exit handles only what exit raised */
    t->exiting = w;
    int rc = ty->exit(w->cm.self, body);
    t = w->task;
    memcpy(&t->err_floor, &w->floor, 16);
    int shield = aw__with_unshield(w, t);
    /* the common way out: a clean exit and a shield whose grace never
     * started, with no error pending (nothing raised, so K5 has nothing to
     * mark; and a body error the exit dropped leaves nothing to restore),
     * or only errors older than the block's */
    if (__builtin_expect(!traced && shield == AW__UNSHIELD_LAZY && rc == 0 &&
                         (!t->err || (t->err->seq <= w->before && w->before <= w->mark)), 1)) {
        aw__with_done(w, t);
        return;
    }
    aw__with_settle(w, rc, shield, traced);
}

static __attribute__((noinline, cold)) void aw__with_exit_traced(aw_with_t *w, aw_task_t *t,
                                                                 const aw_cm_type_t *ty) {
    aw__with_run_exit(w, t, ty, true);
}

void aw__with_cleanup(aw_with_t *w) {
    if (w->state != AW__WITH_BODY)
        return;
    aw_task_t *t = w->task;
    aw_loop_t *l = t->loop;
    w->state = AW__WITH_EXIT;
    w->since = l->now;
    if (__builtin_expect(l->tracing, 0))
        aw__with_exit_traced(w, t, w->cm.type);
    else
        aw__with_run_exit(w, t, w->cm.type, false);
}
