/* tests for src/core/scope.c: cancel scopes, deadlines, shields, the
 * shielded exit and its grace period. One test per line of SEMANTICS.md
 * sections F, G and H (lines marked with a warning sign assert the
 * opposite of the anchor's defect), the decisions 1-4 and 6, and part (c)
 * items 1, 2, 5 and 6. */
#include "testutil.h"

#include <string.h>

/* ---- helpers ---- */

static int ev[256], nev; /* event log, in order */
static void logev(int e) {
    if (nev < 256)
        ev[nev++] = e;
}

static int count_code(const aw_err_t *e, int code) {
    int n = 0;
    for (int guard = 0; e && guard < 1000; e = e->context, guard++)
        if (e->code == code)
            n++;
    return n;
}

static void spin_until(aw_ns_t t) {
    while (aw_now() < t)
        ;
}

/* A recording manager: enter logs, exit logs what it received, optionally
 * sleeps (and records what the sleep returned), then returns exit_rc
 * (raised when negative). */
typedef struct rec {
    int id;
    int exit_sleep_ms;
    int exit_rc;
    int entered, exited, in_exit, done;
    int seen;                    /* code exit received, 0 for none */
    int sleep_rc;                /* what exit's sleep returned */
    bool pending_in_exit;        /* aw_cancel_pending() inside exit */
    aw_ns_t deadline_in_exit;    /* aw_effective_deadline() inside exit */
    aw_task_t *exit_task;
    aw_ns_t exit_start, exit_end;
} rec_t;

static int rec_enter(void *self, void **out) {
    rec_t *r = self;
    r->entered++;
    logev(r->id * 10 + 1);
    *out = r;
    return 0;
}

static int rec_exit(void *self, const aw_err_t *err) {
    rec_t *r = self;
    r->exited++;
    r->in_exit = 1;
    r->seen = err ? err->code : 0;
    r->exit_task = aw_task_self();
    r->pending_in_exit = aw_cancel_pending();
    r->deadline_in_exit = aw_effective_deadline();
    r->exit_start = aw_now();
    if (r->exit_sleep_ms)
        r->sleep_rc = aw_sleep_ms(r->exit_sleep_ms);
    r->exit_end = aw_now();
    r->done = 1;
    logev(r->id * 10 + 2);
    if (r->exit_rc < 0)
        return aw_raise(r->exit_rc, "exit of rec %d failed", r->id);
    return r->exit_rc;
}

static const aw_cm_type_t rec_type = {.name = "rec", .enter = rec_enter, .exit = rec_exit};
static const aw_cm_type_t rec_unshielded_type = {
    .name = "rec-unshielded", .enter = rec_enter, .exit = rec_exit, .flags = AW_CM_UNSHIELDED};
static const aw_cm_type_t rec_suppress_cancel_type = {
    .name = "rec-suppress-cancel", .enter = rec_enter, .exit = rec_exit,
    .flags = AW_CM_SUPPRESS_CANCEL};
static const aw_cm_type_t rec_grace5_type = {
    .name = "rec-grace5", .enter = rec_enter, .exit = rec_exit, .grace = AW_MS(5)};
static const aw_cm_type_t rec_grace100_type = {
    .name = "rec-grace100", .enter = rec_enter, .exit = rec_exit, .grace = AW_MS(100)};

/* ======================= F. Cancellation model ======================= */

/* F1: level-triggered: every suspension point inside a cancelled scope
 * returns -ECANCELED until the scope is left, even after the error was
 * handled; after the scope, awaits are normal again. */
static int f1_main(void *arg) {
    int rc[4];
    bool cancelled = false;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        rc[0] = aw_sleep_ms(1);
        aw_err_clear(); /* "catch" it */
        rc[1] = aw_sleep_ms(1);
        aw_err_clear();
        rc[2] = aw_yield();
        aw_err_clear();
        rc[3] = aw_checkpoint();
        aw_err_clear();
        cancelled = aw_scope_cancelled(s);
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(rc[i], -ECANCELED, "suspension %d inside the cancelled scope returned %d", i,
                     rc[i]);
    cr_assert(cancelled);
    cr_assert_eq(aw_status(), 0);
    cr_assert(!aw_cancel_pending());
    cr_assert_eq(aw_sleep_ms(1), 0, "after leaving the scope, sleeps work again");
    return 0;
}
Test(scope, F1_level_triggered) { aw_test_run(f1_main, NULL, 0); }

/* F2: swallowing a cancel leaves no residue (no per-task counter to fix up
 * with uncancel()): after the cancelled scope is left, a later timeout
 * works normally and plain sleeps are not cancelled. */
static int f2_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_scope_cancel(s);
        (void)aw_sleep_ms(1);
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert(!aw_cancel_pending());
    int rc = 1;
    aw_with (aw_fail_after(AW_MS(5))) {
        rc = aw_sleep(AW_SEC(1));
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT, "a later timeout still fires as -ETIMEDOUT");
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(scope, F2_swallowed_cancel_leaves_no_residue) { aw_test_run(f2_main, NULL, 0); }

/* F3: awith picks Trio's rule: a task cancelled before its first step runs
 * up to its first suspension point, which returns -ECANCELED; its managers
 * enter and exit and its cleanup runs. */
static int f3_ran, f3_rc = 1, f3_cleanup;
static rec_t f3_rec = {.id = 3};
static int f3_child(void *arg) {
    f3_ran = 1;
    aw_with (aw_cm(&rec_type, &f3_rec)) {
        f3_rc = aw_sleep(AW_SEC(1));
    }
    f3_cleanup = 1;
    return aw_status();
}
static int f3_main(void *arg) {
    aw_task_t *t;
    cr_assert_eq(aw_spawn(NULL, f3_child, NULL, &t), 0);
    aw_task_cancel(t); /* before it ever ran */
    cr_assert_eq(f3_ran, 0);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(f3_ran, 1, "the task ran up to its first suspension point");
    cr_assert_eq(f3_rc, -ECANCELED);
    cr_assert_eq(f3_rec.entered, 1);
    cr_assert_eq(f3_rec.exited, 1);
    cr_assert_eq(f3_rec.seen, -ECANCELED);
    cr_assert_eq(f3_cleanup, 1);
    return 0;
}
Test(scope, F3_cancelled_before_start_runs_to_first_suspension) {
    aw_test_run(f3_main, NULL, 0);
}

/* F4: the reason travels with the error: the record names its source (the
 * cancelled task, or an expired deadline). */
static char f4_msg_task[256], f4_msg_deadline[256];
static int f4_child(void *arg) {
    int rc = aw_sleep(AW_SEC(1));
    const aw_err_t *e = aw_err_current();
    if (e)
        snprintf(f4_msg_task, sizeof f4_msg_task, "%s", e->msg);
    return rc;
}
static int f4_main(void *arg) {
    aw_task_t *t;
    aw_task_opts_t o = {.name = "f4-victim"};
    cr_assert_eq(aw_spawn_opts(NULL, f4_child, NULL, &o, &t), 0);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ECANCELED);
    cr_assert_str_eq(e->task, "f4-victim");
    aw_err_clear();
    cr_assert_not_null(strstr(f4_msg_task, "f4-victim"),
                       "the cancel record names the cancelled task: '%s'", f4_msg_task);
    aw_with (aw_move_on_after(AW_MS(1))) {
        int rc = aw_sleep(AW_SEC(1));
        cr_assert_eq(rc, -ECANCELED);
        e = aw_err_current();
        cr_assert_not_null(e);
        snprintf(f4_msg_deadline, sizeof f4_msg_deadline, "%s", e->msg);
    }
    cr_assert_not_null(strstr(f4_msg_deadline, "deadline"),
                       "the cancel record names the deadline: '%s'", f4_msg_deadline);
    cr_assert_str_neq(f4_msg_task, f4_msg_deadline);
    return 0;
}
Test(scope, F4_cancel_reason_travels_with_the_error) { aw_test_run(f4_main, NULL, 0); }

/* F5: exit receives -ECANCELED and its awaits run to completion; unlike
 * asyncio, a second cancel does not interrupt them; the cancel is
 * delivered again once exit is done. */
static rec_t f5_rec = {.id = 5, .exit_sleep_ms = 10};
static int f5_after = 1;
static int f5_child(void *arg) {
    aw_with (aw_cm(&rec_type, &f5_rec)) {
        aw_sleep(AW_SEC(1));
    }
    f5_after = aw_sleep(AW_SEC(1));
    return f5_after;
}
static int f5_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, f5_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    while (!f5_rec.in_exit) /* poll promptly: exit sleeps only 10 ms */
        aw_yield();
    aw_task_cancel(t); /* a second cancel, while exit sleeps */
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(f5_rec.seen, -ECANCELED, "exit received the cancel");
    cr_assert_eq(f5_rec.sleep_rc, 0, "exit's await was not interrupted");
    cr_assert_geq(f5_rec.exit_end - f5_rec.exit_start, AW_MS(10));
    cr_assert_eq(f5_after, -ECANCELED, "the cancel is delivered again after exit");
    return 0;
}
Test(scope, F5_exit_awaits_run_to_completion) { aw_test_run(f5_main, NULL, 0); }

/* F6: Trio's behaviour (an await in exit raises at once) is what an
 * AW_CM_UNSHIELDED manager gets; the default exit is shielded. */
static rec_t f6_unshielded = {.id = 1, .exit_sleep_ms = 1000};
static rec_t f6_shielded = {.id = 2, .exit_sleep_ms = 5};
static int f6_child(void *arg) {
    aw_with (aw_cm(&rec_unshielded_type, &f6_unshielded)) {
        aw_sleep(AW_SEC(1));
    }
    aw_with (aw_cm(&rec_type, &f6_shielded)) {
    }
    return aw_status();
}
static int f6_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, f6_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(f6_unshielded.seen, -ECANCELED);
    cr_assert_eq(f6_unshielded.sleep_rc, -ECANCELED, "an unshielded exit sees the cancel");
    cr_assert_eq(f6_shielded.exited, 1);
    cr_assert_eq(f6_shielded.sleep_rc, 0, "a default exit is shielded");
    return 0;
}
Test(scope, F6_unshielded_exit_sees_cancel_default_does_not) { aw_test_run(f6_main, NULL, 0); }

/* F7: aw_checkpoint is a cancellation point even where nothing would
 * suspend (like Trio's Lock.acquire), and costs nothing otherwise; aw_yield
 * lets other ready tasks run. */
static int f7_other;
static int f7_other_fn(void *arg) {
    f7_other = 1;
    return 0;
}
static int f7_main(void *arg) {
    aw_spawn(NULL, f7_other_fn, NULL, NULL);
    cr_assert_eq(aw_checkpoint(), 0);
    cr_assert_eq(f7_other, 0, "a checkpoint that is not cancelled does not suspend");
    cr_assert_eq(aw_yield(), 0);
    cr_assert_eq(f7_other, 1, "aw_yield let the other task run");
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert(aw_cancel_pending());
        cr_assert_eq(aw_checkpoint(), -ECANCELED);
        cr_assert_eq(aw_status(), -ECANCELED);
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, F7_checkpoint_is_a_cancellation_point) { aw_test_run(f7_main, NULL, 0); }

/* F8: unlike libdill, a cancelled task can still block inside a shield. */
static int f8_main(void *arg) {
    int rc_in = 1, rc_after = 1;
    bool pending_in = true;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_with (aw_shield(AW_NEVER)) {
            rc_in = aw_sleep_ms(2);
            pending_in = aw_cancel_pending();
        }
        rc_after = aw_checkpoint();
    }
    cr_assert_eq(rc_in, 0, "a sleep inside a shield runs despite the cancel");
    cr_assert(!pending_in);
    cr_assert_eq(rc_after, -ECANCELED, "the cancel arrives after the shield");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, F8_shield_allows_blocking_while_cancelled) { aw_test_run(f8_main, NULL, 0); }

/* ======================= G. Timeouts and deadlines ======================= */

/* G1: a fired fail_after turns the cancel into -ETIMEDOUT whose context is
 * the -ECANCELED; expired is true; nothing lingers afterwards. */
static int g1_main(void *arg) {
    int rc = 1;
    bool expired = false, cancelled = false;
    aw_ns_t t0 = aw_now();
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(5))) {
        rc = aw_sleep(AW_SEC(1));
        expired = aw_scope_expired(s);
        cancelled = aw_scope_cancelled(s);
    }
    cr_assert_geq(aw_now() - t0, AW_MS(5));
    cr_assert_eq(rc, -ECANCELED);
    cr_assert(expired);
    cr_assert(cancelled);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -ECANCELED);
    aw_err_clear();
    cr_assert(!aw_cancel_pending());
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(scope, G1_fail_after_gives_etimedout_with_cancel_context) { aw_test_run(g1_main, NULL, 0); }

/* G2: a deadline is acted on only at a suspension point: a body that never
 * suspends finishes without error even though its deadline passed. */
static int g2_main(void *arg) {
    int reached = 0;
    aw_with (aw_fail_after(AW_MS(1))) {
        spin_until(aw_now() + AW_MS(5));
        reached = 1;
    }
    cr_assert_eq(reached, 1);
    cr_assert_eq(aw_status(), 0);
    bool expired = true;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(1))) {
        spin_until(aw_now() + AW_MS(5));
        expired = aw_scope_expired(s);
    }
    cr_assert(!expired);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G2_deadline_acted_on_only_at_suspension) { aw_test_run(g2_main, NULL, 0); }

/* G3: zero, negative and past deadlines: the body starts, its first
 * suspension returns -ECANCELED. */
static int g3_main(void *arg) {
    int started, rc;
    aw_cm_t cms[3] = {aw_fail_after(0), aw_fail_after(-AW_MS(5)),
                      aw_fail_at(aw_now() - AW_MS(100))};
    for (int i = 0; i < 3; i++) {
        started = 0;
        rc = 1;
        aw_with (cms[i]) {
            started = 1;
            rc = aw_sleep_ms(1);
        }
        cr_assert_eq(started, 1, "case %d: the body started", i);
        cr_assert_eq(rc, -ECANCELED, "case %d: first suspension returned %d", i, rc);
        cr_assert_eq(aw_status(), -ETIMEDOUT, "case %d", i);
        aw_err_clear();
    }
    started = 0;
    rc = 1;
    bool expired = false;
    aw_with (aw_scope_t *s, aw_move_on_after(0)) {
        started = 1;
        rc = aw_checkpoint();
        expired = aw_scope_expired(s);
    }
    cr_assert_eq(started, 1);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert(expired);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G3_zero_negative_past_deadline) { aw_test_run(g3_main, NULL, 0); }

/* G4: nested timeouts, the inner fires first: only the inner raises
 * -ETIMEDOUT, the outer block goes on. */
static int g4a_main(void *arg) {
    int inner = 1, later = 1;
    aw_with (aw_fail_after(AW_MS(500))) {
        aw_with (aw_fail_after(AW_MS(5))) {
            aw_sleep(AW_SEC(1));
        }
        inner = aw_status();
        aw_err_clear();
        later = aw_sleep_ms(1);
    }
    cr_assert_eq(inner, -ETIMEDOUT);
    cr_assert_eq(later, 0, "the outer scope is not cancelled");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G4_nested_inner_fires_first) { aw_test_run(g4a_main, NULL, 0); }

/* G4: the outer fires first: the inner scope passes the cancel through
 * unconverted; only the outer raises -ETIMEDOUT. */
static int g4b_main(void *arg) {
    int inner = 1;
    bool inner_expired = true;
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(1))) {
            aw_sleep(AW_SEC(10));
            inner_expired = aw_scope_expired(s);
        }
        inner = aw_status();
    }
    cr_assert(!inner_expired);
    cr_assert_eq(inner, -ECANCELED, "the inner scope must not convert the outer's cancel");
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert_eq(count_code(e, -ETIMEDOUT), 1, "only the outer raised -ETIMEDOUT");
    aw_err_clear();
    return 0;
}
Test(scope, G4_nested_outer_fires_first) { aw_test_run(g4b_main, NULL, 0); }

/* G5 (opposite of asyncio): a body that swallows the timeout's cancel and
 * carries on still fails with -ETIMEDOUT, and cannot await meanwhile. */
static int g5_main(void *arg) {
    int rc1 = 1, rc2 = 1, rc3 = 1;
    bool expired = false;
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(5))) {
        rc1 = aw_sleep(AW_SEC(1));
        aw_err_clear(); /* swallow */
        rc2 = aw_sleep(AW_SEC(1));
        aw_err_clear(); /* and again */
        rc3 = aw_yield();
        aw_err_clear();
        expired = aw_scope_expired(s);
    }
    cr_assert_eq(rc1, -ECANCELED);
    cr_assert_eq(rc2, -ECANCELED, "level-triggered: the next await is cancelled too");
    cr_assert_eq(rc3, -ECANCELED);
    cr_assert(expired);
    cr_assert_eq(aw_status(), -ETIMEDOUT, "the timeout is not lost by swallowing the cancel");
    aw_err_clear();
    return 0;
}
Test(scope, G5_swallowed_cancel_still_times_out) { aw_test_run(g5_main, NULL, 0); }

/* G6: reschedule(AW_NEVER) disables the timeout. */
static int g6a_main(void *arg) {
    int rc = 1;
    aw_ns_t eff = 0;
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(5))) {
        cr_assert_eq(aw_scope_reschedule(s, AW_NEVER), 0);
        eff = aw_effective_deadline();
        rc = aw_sleep_ms(20);
    }
    cr_assert_eq(eff, AW_NEVER);
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G6_reschedule_never_disables) { aw_test_run(g6a_main, NULL, 0); }

/* G6: reschedule(past) fires at the next suspension point. */
static int g6b_main(void *arg) {
    int rc = 1, before = 1;
    aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(1))) {
        before = aw_checkpoint();
        cr_assert_eq(aw_scope_reschedule(s, aw_now() - 1), 0);
        rc = aw_yield();
    }
    cr_assert_eq(before, 0);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, G6_reschedule_past_fires_at_next_suspension) { aw_test_run(g6b_main, NULL, 0); }

/* G6: rescheduling a scope that is not entered (before enter, after exit)
 * is -EINVAL. */
static int g6c_main(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_MS(50));
    aw_scope_t *sp = cm.self;
    cr_assert_eq(aw_scope_reschedule(sp, aw_now() + AW_SEC(1)), -EINVAL, "before enter");
    cr_assert_eq(aw_status(), -EINVAL);
    aw_err_clear();
    aw_with (aw_scope_t *s, cm) {
        cr_assert_eq((void *)s, (void *)sp);
        cr_assert_eq(aw_scope_reschedule(s, aw_now() + AW_SEC(1)), 0, "while entered");
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(aw_scope_reschedule(sp, aw_now() + AW_SEC(1)), -EINVAL, "after exit");
    aw_err_clear();
    return 0;
}
Test(scope, G6_reschedule_not_entered_is_einval) { aw_test_run(g6c_main, NULL, 0); }

/* G6: entering a scope that is already entered is an error (not a cycle
 * in the scope chain); the body does not run. */
static int g6d_main(void *arg) {
    aw_cm_t cm = aw_cancel_scope();
    int inner_ran = 0, st = 0;
    aw_with (cm) {
        aw_with (cm) {
            inner_ran = 1;
        }
        st = aw_status();
        aw_err_clear();
    }
    cr_assert_eq(inner_ran, 0, "the second enter of an entered scope must fail");
    cr_assert_lt(st, 0);
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(scope, G6_reentering_an_entered_scope_fails) { aw_test_run(g6d_main, NULL, 0); }

/* G6: entering a scope again after its block ended is an error too
 * (Python: "Timeout has already been entered", Trio: "Each CancelScope
 * may only be used once"): the second body does not run, rather than
 * start cancelled by the first block's expired deadline. */
static int g6e_main(void *arg) {
    aw_cm_t cm = aw_move_on_after(AW_MS(2));
    int rc = 1, ran = 0;
    aw_with (cm) {
        rc = aw_sleep(AW_SEC(1));
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    aw_with (cm) {
        ran = 1;
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(ran, 0, "the second enter of a finished scope must fail");
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EALREADY, "got %s", aw_err_name(e->code));
    cr_assert_not_null(strstr(e->msg, "already been entered"), "%s", e->msg);
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0, "nothing of the first block lingers");
    return 0;
}
Test(scope, G6_reentering_a_finished_scope_fails) { aw_test_run(g6e_main, NULL, 0); }

/* reschedule earlier, from inside the scope */
static int resched_earlier_main(void *arg) {
    int rc = 1;
    aw_ns_t t0 = aw_now();
    aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(10))) {
        cr_assert_eq(aw_scope_reschedule(s, aw_now() + AW_MS(5)), 0);
        rc = aw_sleep(AW_SEC(10));
    }
    aw_ns_t el = aw_now() - t0;
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert_geq(el, AW_MS(5));
    aw_err_clear();
    return 0;
}
Test(scope, reschedule_earlier) { aw_test_run(resched_earlier_main, NULL, 0); }

/* reschedule earlier, from another task, while the owner sleeps: its wait
 * is re-armed. */
static aw_scope_t *resched_scope;
/* Runs when the owner has parked in its sleep (a spawned task starts at
 * the spawner's next suspension) and acts at once: no timer of its own
 * that a stalled loop could fire after the owner's deadline. */
static int resched_helper(void *arg) {
    aw_ns_t when = (aw_ns_t)(intptr_t)arg;
    aw_scope_reschedule(resched_scope, when == 0 ? aw_now() + AW_MS(1) : aw_now() + when);
    return 0;
}
static int resched_other_earlier_main(void *arg) {
    int rc = 1;
    aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(10))) {
        resched_scope = s;
        aw_spawn(NULL, resched_helper, NULL, NULL);
        rc = aw_sleep(AW_SEC(10));
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, reschedule_earlier_from_another_task) {
    aw_test_run(resched_other_earlier_main, NULL, 0);
}

/* reschedule later, from inside the scope */
static int resched_later_main(void *arg) {
    int rc1 = 1, rc2 = 1;
    aw_ns_t t0 = aw_now();
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(5))) {
        cr_assert_eq(aw_scope_reschedule(s, t0 + AW_MS(200)), 0);
        rc1 = aw_sleep_ms(15);
        rc2 = aw_sleep(AW_SEC(1));
    }
    cr_assert_eq(rc1, 0, "the old deadline no longer applies");
    cr_assert_eq(rc2, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert_geq(aw_now() - t0, AW_MS(200));
    aw_err_clear();
    return 0;
}
Test(scope, reschedule_later) { aw_test_run(resched_later_main, NULL, 0); }

/* reschedule later from another task while the owner sleeps with a timer
 * armed at the old deadline. */
static int resched_other_later_main(void *arg) {
    int rc = 1;
    /* margins wide enough for a slow (sanitizer, loaded) build: the helper
     * acts as soon as the owner sleeps, long before the old 250 ms deadline */
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(250))) {
        resched_scope = s;
        aw_spawn(NULL, resched_helper, (void *)(intptr_t)AW_MS(5000), NULL);
        rc = aw_sleep_ms(300);
    }
    cr_assert_eq(rc, 0, "the deadline moved later while the owner slept");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, reschedule_later_from_another_task) { aw_test_run(resched_other_later_main, NULL, 0); }

/* G7: an external cancel and the deadline in the same loop tick (cancel
 * processed first): the result is -ECANCELED, not -ETIMEDOUT. */
/* The child's deadline is moved into the past only once it sleeps, so a
 * slow machine (valgrind, TSan) cannot let it pass before the sleep. */
static aw_scope_t *d6_scope;
static int d6_in_sleep, d6_sleep_rc = 1, d6_status, d6_has_timeout, d6_ncancel;
static int d6_child(void *arg) {
    aw_with (aw_scope_t *s, aw_fail_at(AW_NEVER)) {
        d6_scope = s;
        d6_in_sleep = 1;
        d6_sleep_rc = aw_sleep(AW_SEC(10));
    }
    d6_status = aw_status();
    d6_has_timeout = aw_err_find(aw_err_current(), -ETIMEDOUT) != NULL;
    d6_ncancel = count_code(aw_err_current(), -ECANCELED);
    return aw_status();
}
/* cancel first: the deadline has passed but its timer was not processed
 * yet when the cancel wakes the task */
static int d6_cancel_first_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, d6_child, NULL, &t);
    aw_yield();
    cr_assert_eq(d6_in_sleep, 1);
    cr_assert_eq(aw_scope_reschedule(d6_scope, aw_now()), 0); /* past due, not yet processed */
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(d6_sleep_rc, -ECANCELED);
    aw_err_clear();
    return 0;
}
/* deadline first: its timer fires (and wakes the task) in one round, the
 * cancel arrives before the task runs */
static int d6_deadline_first_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, d6_child, NULL, &t);
    aw_yield();
    cr_assert_eq(d6_in_sleep, 1);
    cr_assert_eq(aw_scope_reschedule(d6_scope, aw_now()), 0); /* past due, not yet processed */
    aw_yield(); /* the loop fires the child's deadline; we run first */
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(d6_sleep_rc, -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(scope, G7_cancel_and_deadline_same_tick_is_ecanceled) {
    aw_test_run(d6_cancel_first_main, NULL, 0);
    cr_assert_eq(d6_status, -ECANCELED);
}

/* Decision 6, both ways: the result is -ECANCELED and the -ETIMEDOUT is
 * recorded in its chain. */
Test(scope, D6_deadline_then_cancel_same_tick) {
    aw_test_run(d6_deadline_first_main, NULL, 0);
    cr_assert_eq(d6_status, -ECANCELED);
    cr_assert(d6_has_timeout, "the -ETIMEDOUT must be recorded in the -ECANCELED's chain");
}
Test(scope, D6_cancel_then_deadline_same_tick) {
    aw_test_run(d6_cancel_first_main, NULL, 0);
    cr_assert_eq(d6_status, -ECANCELED);
    cr_assert(d6_has_timeout, "the -ETIMEDOUT must be recorded in the -ECANCELED's chain");
}

/* Decision 6, not in the same tick: the deadline fires, the task is
 * cancelled while still inside the scope (in a shielded cleanup). */
static int d6l_in_shield, d6l_status, d6l_has_timeout;
static int d6l_deadline_first_child(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_sleep(AW_SEC(1)); /* the deadline */
        aw_with (aw_shield(AW_SEC(5))) {
            d6l_in_shield = 1;
            aw_sleep_ms(50);
        }
    }
    d6l_status = aw_status();
    d6l_has_timeout = aw_err_find(aw_err_current(), -ETIMEDOUT) != NULL;
    return aw_status();
}
static int d6l_cancel_first_child(void *arg) {
    aw_with (aw_fail_after(AW_MS(20))) {
        aw_sleep(AW_SEC(1)); /* the cancel */
        aw_with (aw_shield(AW_SEC(5))) {
            d6l_in_shield = 1;
            aw_sleep_ms(50); /* the deadline passes meanwhile */
        }
        aw_checkpoint(); /* a suspension point past the deadline */
    }
    d6l_status = aw_status();
    d6l_has_timeout = aw_err_find(aw_err_current(), -ETIMEDOUT) != NULL;
    return aw_status();
}
static int d6l_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, (aw_task_fn)arg, NULL, &t);
    if ((aw_task_fn)arg == d6l_cancel_first_child) {
        aw_yield();
    } else {
        while (!d6l_in_shield)
            aw_sleep_ms(1);
    }
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(scope, D6_deadline_then_cancel_later) {
    aw_test_run(d6l_main, (void *)d6l_deadline_first_child, 0);
    cr_assert_eq(d6l_status, -ECANCELED);
    cr_assert(d6l_has_timeout, "the -ETIMEDOUT must be recorded in the -ECANCELED's chain");
}
Test(scope, D6_cancel_then_deadline_later) {
    aw_test_run(d6l_main, (void *)d6l_cancel_first_child, 0);
    cr_assert_eq(d6l_status, -ECANCELED);
    cr_assert(d6l_has_timeout, "the -ETIMEDOUT must be recorded in the -ECANCELED's chain");
}

/* G8 (opposite of asyncio): a zero deadline on a task that already has a
 * pending cancel does not lose the cancel. */
static int g8_task_main(void *arg) {
    aw_task_cancel(aw_task_self());
    int rc = 1;
    aw_with (aw_fail_after(0)) {
        rc = aw_sleep_ms(1);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ECANCELED, "the pending cancel wins, got %s",
                 aw_err_name(aw_status()));
    aw_err_clear();
    cr_assert_eq(aw_checkpoint(), -ECANCELED, "the task is still cancelled");
    return 0;
}
static int g8_scope_main(void *arg) {
    int st_fail = 1, st_move = 1, after = 1;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_scope_cancel(c);
        aw_with (aw_fail_after(0)) {
            aw_sleep_ms(1);
        }
        st_fail = aw_status();
        aw_err_clear();
        aw_with (aw_move_on_after(0)) {
            aw_sleep_ms(1);
        }
        st_move = aw_status();
        aw_err_clear();
        after = aw_checkpoint();
    }
    cr_assert_eq(st_fail, -ECANCELED, "fail_after(0) must not turn the cancel into a timeout");
    cr_assert_eq(st_move, -ECANCELED, "move_on_after(0) must not swallow the outer cancel");
    cr_assert_eq(after, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G8_zero_deadline_keeps_pending_task_cancel) { aw_test_run(g8_task_main, NULL, 0); }
Test(scope, G8_zero_deadline_keeps_pending_scope_cancel) { aw_test_run(g8_scope_main, NULL, 0); }

/* G9 (opposite of asyncio): a deadline that fires while an inner
 * manager's exit sleeps does not cut that exit. */
static rec_t g9_rec = {.id = 9, .exit_sleep_ms = 20};
static int g9_main(void *arg) {
    int after = 1;
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_cm(&rec_type, &g9_rec)) {
        }
        after = aw_checkpoint();
    }
    cr_assert_eq(g9_rec.sleep_rc, 0, "the exit's cleanup was not cut");
    cr_assert_geq(g9_rec.exit_end - g9_rec.exit_start, AW_MS(20));
    cr_assert_eq(after, -ECANCELED, "the deadline applies again after the exit");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, G9_deadline_does_not_cut_inner_exit) { aw_test_run(g9_main, NULL, 0); }

/* G10: an exit that fails with another error after the timeout: the
 * timeout stays visible and nothing is lost. */
static rec_t g10_rec = {.id = 1, .exit_rc = -EIO};
static int g10a_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_cm(&rec_type, &g10_rec)) {
            aw_sleep(AW_SEC(1));
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(g10_rec.seen, -ECANCELED);
    /* as 3.13 chains it: OSError -> TimeoutError -> CancelledError (M4) */
    cr_assert_eq(e->code, -EIO, "got %s", aw_err_name(e->code));
    cr_assert_not_null(aw_err_find(e, -ETIMEDOUT), "the timeout is kept");
    cr_assert_not_null(aw_err_find(e, -ECANCELED));
    aw_err_clear();
    return 0;
}
Test(scope, G10_exit_error_after_timeout_keeps_both) { aw_test_run(g10a_main, NULL, 0); }

/* G10: the body fails with another error after the deadline: that error
 * wins, the -ETIMEDOUT is recorded in its chain. */
static int g10b_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_sleep(AW_SEC(1));
        aw_fail(-EIO, "cleanup failed after the timeout");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EIO, "got %s", aw_err_name(e->code));
    cr_assert_not_null(aw_err_find(e, -ETIMEDOUT), "the timeout is visible");
    cr_assert_not_null(aw_err_find(e, -ECANCELED));
    aw_err_clear();
    return 0;
}
Test(scope, G10_body_error_after_timeout_records_timeout) { aw_test_run(g10b_main, NULL, 0); }

/* Decision 5 ("in order") and the fail-after rule: a failure the block
 * had pending when its deadline cut it (an error being handled by an
 * await: Python's `except OSError: await sleep()`) was raised before the
 * timeout, so the block's error becomes -ETIMEDOUT with the cancel and
 * then that failure below it, as Python gives TimeoutError <-
 * CancelledError <- OSError. Not G10: nothing failed after the deadline. */
static int g1_pending_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_raise(-EIO, "the query failed");
        cr_assert_eq(aw_sleep(AW_SEC(1)), -ECANCELED); /* backing off: cut */
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "got %s: %s", aw_err_name(e->code), e->msg);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -ECANCELED, "got %s", aw_err_name(e->context->code));
    cr_assert_not_null(e->context->context);
    cr_assert_eq(e->context->context->code, -EIO);
    cr_assert_str_eq(e->context->context->msg, "the query failed");
    cr_assert_null(e->context->context->context);
    aw_err_clear();
    return 0;
}
Test(scope, G1_a_failure_pending_when_the_deadline_cut_the_block_stays_below_the_timeout) {
    aw_test_run(g1_pending_main, NULL, 0);
}

/* G10 with a failure pending from before the deadline: the block failed
 * (EIO), then, while it went on, the deadline cut it, and an exit failed
 * (EPIPE) as the cancel unwound it. Raise order, as Python 3.13 chains
 * it: the exit's failure, the timeout, the cancel it caused, and the
 * earlier failure below them all (decision 5). */
static rec_t g10_pending_rec = {.id = 1, .exit_rc = -EPIPE};
static int g10_pending_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_raise(-EIO, "the query failed");
        aw_with (aw_cm(&rec_type, &g10_pending_rec)) {
            aw_sleep(AW_SEC(1));
        }
    }
    const aw_err_t *e = aw_err_current();
    int want[] = {-EPIPE, -ETIMEDOUT, -ECANCELED, -EIO};
    const aw_err_t *x = e;
    for (int i = 0; i < 4; i++, x = x->context) {
        cr_assert_not_null(x, "record %d missing", i);
        cr_assert_eq(x->code, want[i], "record %d: %s, not %s", i, aw_err_name(x->code),
                     aw_err_name(want[i]));
    }
    cr_assert_null(x, "nothing else: %s", x ? aw_err_name(x->code) : "");
    aw_err_clear();
    return 0;
}
Test(scope, G10_an_exit_failing_after_the_timeout_over_an_earlier_failure_in_raise_order) {
    aw_test_run(g10_pending_main, NULL, 0);
}

/* G11: cleanup bounded by its own timeout inside a cancelled task: the
 * timeout is the cleanup's only; the original cancel still propagates.
 * (Level-triggered: the cleanup needs a shield; without one its own
 * timeout cannot even start.) */
static int g11_main(void *arg) {
    int rc0 = 1, rc1 = 1, cleanup = 1, after = 1, unshielded = 1, unshielded_rc = 1;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_scope_cancel(c);
        rc0 = aw_sleep(AW_SEC(1));
        aw_with (aw_shield(AW_NEVER)) {
            aw_with (aw_fail_after(AW_MS(5))) {
                rc1 = aw_sleep(AW_SEC(1));
            }
            cleanup = aw_status();
            aw_err_clear();
        }
        aw_with (aw_fail_after(AW_MS(5))) {
            unshielded_rc = aw_sleep(AW_SEC(1));
        }
        unshielded = aw_status();
        aw_err_clear();
        after = aw_checkpoint();
    }
    cr_assert_eq(rc0, -ECANCELED);
    cr_assert_eq(rc1, -ECANCELED);
    cr_assert_eq(cleanup, -ETIMEDOUT, "the cleanup's own timeout");
    cr_assert_eq(unshielded_rc, -ECANCELED);
    cr_assert_eq(unshielded, -ECANCELED, "unshielded, the outer cancel wins");
    cr_assert_eq(after, -ECANCELED, "the original cancel still propagates");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G11_cleanup_timeout_inside_cancelled_task) { aw_test_run(g11_main, NULL, 0); }

/* G12: the result of a timed-out block waits for the inner cleanup: the
 * exit completes before the -ETIMEDOUT is seen. */
static rec_t g12_rec = {.id = 1, .exit_sleep_ms = 20};
static int g12_main(void *arg) {
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(10))) {
        aw_with (aw_cm(&rec_type, &g12_rec)) {
            aw_sleep(AW_SEC(1));
        }
    }
    logev(99);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(g12_rec.done, 1);
    cr_assert_eq(g12_rec.sleep_rc, 0);
    cr_assert_eq(nev, 3);
    cr_assert_eq(ev[1], 12, "exit finished ...");
    cr_assert_eq(ev[2], 99, "... before the statement after the block");
    cr_assert_geq(aw_now() - t0, AW_MS(30));
    return 0;
}
Test(scope, G12_timeout_waits_for_inner_cleanup) { aw_test_run(g12_main, NULL, 0); }

/* G13: move_on_after leaves the block quietly; aw_scope_expired says so. */
static int g13a_main(void *arg) {
    int rc = 1, rc2 = 1, reached = 0;
    bool expired = false;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(5))) {
        rc = aw_sleep(AW_SEC(1));
        rc2 = aw_sleep_ms(1);
        expired = aw_scope_expired(s);
        reached = 1;
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(rc2, -ECANCELED);
    cr_assert(expired);
    cr_assert_eq(reached, 1);
    cr_assert_eq(aw_status(), 0, "move_on_after leaves quietly");
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(scope, G13_move_on_after_leaves_quietly) { aw_test_run(g13a_main, NULL, 0); }

/* G13: an AW_NEVER deadline disables the scope's deadline. */
static int g13b_main(void *arg) {
    int rc = 1;
    aw_ns_t eff = 0;
    aw_with (aw_fail_at(AW_NEVER)) {
        eff = aw_effective_deadline();
        rc = aw_sleep_ms(5);
    }
    cr_assert_eq(eff, AW_NEVER);
    cr_assert_eq(rc, 0);
    aw_with (aw_fail_after(AW_NEVER)) {
        eff = aw_effective_deadline();
        rc = aw_sleep_ms(1);
    }
    cr_assert_eq(eff, AW_NEVER);
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G13_never_disables_the_deadline) { aw_test_run(g13b_main, NULL, 0); }

/* G13: a shield ignores outer deadlines; the outer cancel arrives at the
 * first checkpoint after the shield closes. */
static int g13c_main(void *arg) {
    int in = 1, after = 1;
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_shield(AW_NEVER)) {
            in = aw_sleep_ms(20);
        }
        after = aw_checkpoint();
    }
    cr_assert_eq(in, 0, "the outer deadline does not reach inside the shield");
    cr_assert_eq(after, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, G13_shield_ignores_outer_deadline) { aw_test_run(g13c_main, NULL, 0); }

/* G14: the effective deadline is the minimum over enclosing scopes (up to
 * a shield), also across tasks of groups opened inside. */
static aw_ns_t g14_child_eff;
static int g14_child(void *arg) {
    g14_child_eff = aw_effective_deadline();
    return 0;
}
static int g14_main(void *arg) {
    cr_assert_eq(aw_effective_deadline(), AW_NEVER);
    aw_ns_t now = aw_now();
    aw_ns_t d1 = now + AW_SEC(10), d2 = now + AW_SEC(1), d3 = now + AW_SEC(5);
    aw_with (aw_fail_at(d1)) {
        cr_assert_eq(aw_effective_deadline(), d1);
        aw_with (aw_move_on_at(d2)) {
            cr_assert_eq(aw_effective_deadline(), d2);
            aw_with (aw_fail_at(d3)) {
                cr_assert_eq(aw_effective_deadline(), d2, "min over nested scopes");
                aw_with (aw_group_t *g, aw_group()) {
                    aw_spawn(g, g14_child, NULL, NULL);
                }
                cr_assert_eq(g14_child_eff, d2, "a child task inherits the deadline");
                aw_with (aw_shield(AW_NEVER)) {
                    cr_assert_eq(aw_effective_deadline(), AW_NEVER, "a shield hides outer deadlines");
                    aw_with (aw_fail_at(d3)) {
                        cr_assert_eq(aw_effective_deadline(), d3);
                    }
                }
            }
            cr_assert_eq(aw_effective_deadline(), d2);
        }
        cr_assert_eq(aw_effective_deadline(), d1);
    }
    cr_assert_eq(aw_effective_deadline(), AW_NEVER);
    /* relative deadlines resolve at enter */
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(50))) {
        aw_ns_t eff = aw_effective_deadline();
        aw_ns_t t1 = aw_now();
        cr_assert_geq(eff, t0 + AW_MS(50));
        cr_assert_leq(eff, t1 + AW_MS(50));
        aw_with (aw_shield(AW_MS(20))) {
            eff = aw_effective_deadline();
            cr_assert_leq(eff, aw_now() + AW_MS(20), "a shield's own deadline applies");
        }
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G14_effective_deadline_is_min_over_scopes) { aw_test_run(g14_main, NULL, 0); }

/* G15: cancelled vs deadline-exceeded can be told apart. */
static int g15_main(void *arg) {
    bool c = false, x = true;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        c = aw_scope_cancelled(s);
        x = aw_scope_expired(s);
    }
    cr_assert(c);
    cr_assert(!x, "cancelled by hand, not expired");
    c = false, x = false;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(1))) {
        aw_sleep(AW_SEC(1));
        c = aw_scope_cancelled(s);
        x = aw_scope_expired(s);
    }
    cr_assert(c);
    cr_assert(x, "the deadline expired");
    c = true, x = true;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_SEC(1))) {
        aw_sleep_ms(1);
        c = aw_scope_cancelled(s);
        x = aw_scope_expired(s);
    }
    cr_assert(!c);
    cr_assert(!x);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G15_cancelled_vs_expired) { aw_test_run(g15_main, NULL, 0); }

/* ======================= H. Shielding ======================= */

/* H1 (opposite of asyncio.shield): a second cancel during exit does not
 * make exit return early; the cleanup finishes inside the same task
 * before the task counts as finished, and its failure is not orphaned. */
static rec_t h1_rec = {.id = 1, .exit_sleep_ms = 10, .exit_rc = -EIO};
static int h1_child(void *arg) {
    aw_with (aw_cm(&rec_type, &h1_rec)) {
        aw_sleep(AW_SEC(1));
    }
    return aw_status();
}
static int h1_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, h1_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    while (!h1_rec.in_exit) /* poll promptly: exit sleeps only 10 ms */
        aw_yield();
    aw_task_cancel(t);
    aw_yield();
    aw_task_cancel(t);
    cr_assert_eq(h1_rec.done, 0, "exit still running");
    int rc = aw_task_join(t);
    cr_assert_eq(h1_rec.done, 1, "the task finished only after its cleanup");
    cr_assert_eq((void *)h1_rec.exit_task, (void *)t, "the cleanup ran in the task itself");
    cr_assert_eq(h1_rec.sleep_rc, 0);
    cr_assert_eq(rc, -ECANCELED, "the cancel is never lost");
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(aw_err_find(e, -EIO), "the cleanup's failure reaches the joiner");
    aw_err_clear();
    return 0;
}
Test(scope, H1_exit_cleanup_finishes_in_same_task) { aw_test_run(h1_main, NULL, 0); }

/* H2: a shield with its own deadline bounds the cleanup; when it runs out
 * the shield is left quietly (expired), and the outer cancel is still
 * pending. */
static int h2_main(void *arg) {
    int rc = 1, st = 1, after = 1;
    bool expired = false;
    aw_ns_t el = 0;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_scope_cancel(c);
        aw_ns_t t0 = aw_now();
        aw_with (aw_scope_t *sh, aw_shield(AW_MS(5))) {
            rc = aw_sleep(AW_SEC(1));
            expired = aw_scope_expired(sh);
        }
        el = aw_now() - t0;
        st = aw_status();
        after = aw_checkpoint();
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert(expired);
    cr_assert_geq(el, AW_MS(5));
    cr_assert_eq(st, 0, "the shield's own deadline leaves it quietly");
    cr_assert_eq(after, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, H2_shield_deadline_bounds_cleanup) { aw_test_run(h2_main, NULL, 0); }

/* H3: in a cancelled scope, an unshielded await in cleanup code fails at
 * once; a shielded one runs; a manager's exit needs no shield. */
static rec_t h3_rec = {.id = 1, .exit_sleep_ms = 2};
static int h3_main(void *arg) {
    int bare = 1, shielded = 1;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_with (aw_cm(&rec_type, &h3_rec)) {
            aw_scope_cancel(c);
            bare = aw_sleep_ms(2);
            aw_with (aw_shield(AW_SEC(5))) {
                shielded = aw_sleep_ms(2);
            }
        }
    }
    cr_assert_eq(bare, -ECANCELED);
    cr_assert_eq(shielded, 0);
    cr_assert_eq(h3_rec.sleep_rc, 0, "exits are shielded automatically");
    cr_assert_eq(h3_rec.seen, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, H3_awaits_in_cleanup_need_a_shield) { aw_test_run(h3_main, NULL, 0); }

/* H4: like Go's WithoutCancel: inside a shield no cancel or outer deadline
 * is visible; outside it they are. */
static int h4_main(void *arg) {
    bool in_pending = true, out_pending = false;
    aw_ns_t in_eff = 0, out_eff = AW_NEVER;
    aw_with (aw_fail_after(AW_SEC(1))) {
        aw_with (aw_scope_t *c, aw_cancel_scope()) {
            aw_scope_cancel(c);
            aw_with (aw_shield(AW_NEVER)) {
                in_pending = aw_cancel_pending();
                in_eff = aw_effective_deadline();
            }
            out_pending = aw_cancel_pending();
            out_eff = aw_effective_deadline();
        }
    }
    cr_assert(!in_pending);
    cr_assert_eq(in_eff, AW_NEVER);
    cr_assert(out_pending);
    cr_assert_neq(out_eff, AW_NEVER);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, H4_shield_drops_cancel_and_deadline) { aw_test_run(h4_main, NULL, 0); }

/* H5: no need for async drop: leaving a block by return or goto awaits
 * the exit before the caller continues. */
static int h5_return(rec_t *r) {
    aw_with (aw_cm(&rec_type, r)) {
        return 42;
    }
    return 0;
}
static int h5_goto(rec_t *r) {
    aw_with (aw_cm(&rec_type, r)) {
        goto out;
    }
    return 1;
out:
    return 2;
}
static rec_t h5_a = {.id = 1, .exit_sleep_ms = 5}, h5_b = {.id = 2, .exit_sleep_ms = 5};
static int h5_main(void *arg) {
    cr_assert_eq(h5_return(&h5_a), 42);
    logev(50);
    cr_assert_eq(h5_goto(&h5_b), 2);
    logev(60);
    cr_assert_eq(nev, 6);
    int want[] = {11, 12, 50, 21, 22, 60};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(ev[i], want[i], "event %d: %d", i, ev[i]);
    cr_assert_eq(h5_a.sleep_rc, 0);
    cr_assert_eq(h5_b.sleep_rc, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, H5_exit_awaited_on_return_and_goto) { aw_test_run(h5_main, NULL, 0); }

/* ======================= Decisions ======================= */

/* Decision 1: cancels are scoped: an inner scope does not swallow an outer
 * cancel, an inner cancel does not reach the outer scope. */
static int d1_main(void *arg) {
    int inner_st = 1, rc = 1, after = 1, reached = 0;
    aw_with (aw_scope_t *o, aw_cancel_scope()) {
        aw_with (aw_cancel_scope()) {
            aw_scope_cancel(o);
            rc = aw_sleep(AW_SEC(1));
        }
        inner_st = aw_status();
        after = aw_checkpoint();
        reached = 1;
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(inner_st, -ECANCELED, "the inner scope passes the outer's cancel on");
    cr_assert_eq(after, -ECANCELED);
    cr_assert_eq(reached, 1);
    cr_assert_eq(aw_status(), 0, "the outer scope ends its own cancel");
    /* both cancelled: the inner one does not end the outer's */
    inner_st = 1, after = 1;
    aw_with (aw_scope_t *o, aw_cancel_scope()) {
        aw_with (aw_scope_t *i, aw_cancel_scope()) {
            aw_scope_cancel(i);
            aw_scope_cancel(o);
            aw_sleep(AW_SEC(1));
        }
        inner_st = aw_status();
        after = aw_checkpoint();
    }
    cr_assert_eq(inner_st, -ECANCELED);
    cr_assert_eq(after, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    /* inner only: the outer goes on */
    inner_st = 1, after = 1;
    aw_with (aw_cancel_scope()) {
        aw_with (aw_scope_t *i, aw_cancel_scope()) {
            aw_scope_cancel(i);
            aw_sleep(AW_SEC(1));
        }
        inner_st = aw_status();
        after = aw_sleep_ms(1);
    }
    cr_assert_eq(inner_st, 0);
    cr_assert_eq(after, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, D1_cancels_are_scoped) { aw_test_run(d1_main, NULL, 0); }

/* Decision 2: exit runs shielded (no cancel visible, no outer deadline)
 * under its own grace; the cancel is delivered again after it. */
static rec_t d2_rec = {.id = 1, .exit_sleep_ms = 5};
static int d2_main(void *arg) {
    int after = 1;
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_SEC(100))) {
        aw_with (aw_scope_t *c, aw_cancel_scope()) {
            aw_with (aw_cm(&rec_type, &d2_rec)) {
                aw_scope_cancel(c);
            }
            after = aw_checkpoint();
        }
    }
    cr_assert(!d2_rec.pending_in_exit, "no cancel visible inside exit");
    cr_assert_eq(d2_rec.sleep_rc, 0);
    cr_assert_lt(d2_rec.deadline_in_exit, t0 + AW_SEC(100),
                 "exit has its own grace deadline, not the outer one");
    cr_assert_eq(after, -ECANCELED, "the cancel is delivered again after exit");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, D2_exit_shielded_cancel_redelivered) { aw_test_run(d2_main, NULL, 0); }

/* Decision 3: exit cannot swallow -ECANCELED unless the type opts in; other
 * errors it can. */
static rec_t d3_plain = {.id = 1, .exit_rc = AW_SUPPRESS};
static rec_t d3_optin = {.id = 2, .exit_rc = AW_SUPPRESS};
static rec_t d3_eio = {.id = 3, .exit_rc = AW_SUPPRESS};
static int d3_main(void *arg) {
    int plain = 1, optin = 1, optin_after = 1, eio = 1;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_scope_cancel(c);
        aw_with (aw_cm(&rec_type, &d3_plain)) {
            aw_sleep(AW_SEC(1));
        }
        plain = aw_status();
        aw_err_clear();
        aw_with (aw_cm(&rec_suppress_cancel_type, &d3_optin)) {
            aw_sleep(AW_SEC(1));
        }
        optin = aw_status();
        optin_after = aw_checkpoint();
        aw_err_clear();
    }
    aw_with (aw_cm(&rec_type, &d3_eio)) {
        aw_fail(-EIO, "boom");
    }
    eio = aw_status();
    cr_assert_eq(d3_plain.seen, -ECANCELED);
    cr_assert_eq(plain, -ECANCELED, "exit must not swallow a cancel without opting in");
    cr_assert_eq(d3_optin.seen, -ECANCELED);
    cr_assert_eq(optin, 0, "AW_CM_SUPPRESS_CANCEL lets exit swallow it");
    cr_assert_eq(optin_after, -ECANCELED, "but the scope stays cancelled");
    cr_assert_eq(d3_eio.seen, -EIO);
    cr_assert_eq(eio, 0, "other errors can be suppressed");
    return 0;
}
Test(scope, D3_exit_cannot_swallow_cancel_without_opt_in) { aw_test_run(d3_main, NULL, 0); }

/* Decision 4: a task spawned into an already-cancelled scope runs until
 * its first suspension point, which returns -ECANCELED. */
static int d4_ran, d4_rc = 1, d4_cleanup;
static int d4_child(void *arg) {
    d4_ran = 1;
    d4_rc = aw_sleep(AW_SEC(1));
    d4_cleanup = 1;
    return d4_rc;
}
static int d4_main(void *arg) {
    int gst = 1;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_scope_cancel(c);
        aw_with (aw_group_t *g, aw_group()) {
            cr_assert_eq(aw_spawn(g, d4_child, NULL, NULL), 0);
        }
        gst = aw_status();
    }
    cr_assert_eq(d4_ran, 1, "the task ran");
    cr_assert_eq(d4_rc, -ECANCELED, "its first suspension returned -ECANCELED");
    cr_assert_eq(d4_cleanup, 1);
    /* leaving the group is a suspension point of a cancelled scope: it
     * shows the cancel (as I4), and the child is not a failure */
    cr_assert_eq(gst, -ECANCELED, "a child cancelled by the scope is not a failure: got %s",
                 aw_err_name(gst));
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, D4_spawn_into_cancelled_scope_runs_to_first_suspension) {
    aw_test_run(d4_main, NULL, 0);
}

/* ======================= (c) Beyond ======================= */

/* (c)1: cancel a task 3 times while its exit sleeps 10 ms: the cleanup
 * completes, the task ends with -ECANCELED, and its chain has exactly one
 * -ECANCELED record. */
static rec_t c1_rec = {.id = 1, .exit_sleep_ms = 10};
static int c1_after = 1, c1_count = -1;
static int c1_child(void *arg) {
    aw_with (aw_cm(&rec_type, &c1_rec)) {
        aw_sleep_ms(1);
    }
    c1_after = aw_sleep(AW_SEC(1));
    aw_sleep(AW_SEC(1)); /* ignoring it does not grow the chain */
    aw_yield();
    aw_checkpoint();
    c1_count = count_code(aw_err_current(), -ECANCELED);
    return c1_after;
}
static int c1_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c1_child, NULL, &t);
    while (!c1_rec.in_exit) /* poll promptly: exit sleeps only 10 ms */
        aw_yield();
    aw_task_cancel(t);
    aw_yield();
    aw_task_cancel(t);
    aw_yield();
    aw_task_cancel(t);
    cr_assert_eq(c1_rec.done, 0, "all three cancels arrived while exit slept");
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(c1_rec.done, 1);
    cr_assert_eq(c1_rec.sleep_rc, 0, "the cleanup was not interrupted");
    cr_assert_geq(c1_rec.exit_end - c1_rec.exit_start, AW_MS(10));
    cr_assert_eq(c1_after, -ECANCELED);
    cr_assert_eq(c1_count, 1, "exactly one -ECANCELED record, got %d", c1_count);
    cr_assert_eq(count_code(aw_err_current(), -ECANCELED), 1);
    aw_err_clear();
    return 0;
}
Test(scope, c1_cleanup_survives_three_cancels) { aw_test_run(c1_main, NULL, 0); }

/* (c)2: a 10 ms body timeout around a manager whose exit takes 20 ms: the
 * exit completes, the result is -ETIMEDOUT, the time taken is at most
 * 10 ms plus the exit's grace (100 ms) plus a margin. */
static rec_t c2_rec = {.id = 1, .exit_sleep_ms = 20};
static int c2_main(void *arg) {
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(10))) {
        aw_with (aw_cm(&rec_grace100_type, &c2_rec)) {
            aw_sleep(AW_SEC(1));
        }
    }
    aw_ns_t el = aw_now() - t0;
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(c2_rec.done, 1);
    cr_assert_eq(c2_rec.sleep_rc, 0, "the exit completed");
    cr_assert_geq(el, AW_MS(20));
    cr_assert_leq(el, AW_MS(10) + AW_MS(100) + AW_MS(400));
    return 0;
}
Test(scope, c2_cleanup_grace_separate_from_body_deadline) { aw_test_run(c2_main, NULL, 0); }

/* (c)5: cancel, catch -ECANCELED, await again: -ECANCELED again, as long
 * as the task (its root scope) is cancelled. */
static int c5_rcs[3];
static int c5_child(void *arg) {
    for (int i = 0; i < 3; i++) {
        c5_rcs[i] = aw_sleep(AW_SEC(1));
        aw_err_clear();
    }
    return 0;
}
static int c5_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c5_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(c5_rcs[i], -ECANCELED, "await %d returned %d", i, c5_rcs[i]);
    return 0;
}
Test(scope, c5_cancel_cannot_be_lost) { aw_test_run(c5_main, NULL, 0); }

/* (c)6 is D6_* above. */

/* ======================= exit grace ======================= */

/* An exit that overruns its grace (5 ms) under cancellation is cut, and
 * reported as -ETIMEDOUT "overran its grace period"; the cancel is kept. */
static rec_t grace_rec = {.id = 1, .exit_sleep_ms = 1000};
static int grace_cancel_main(void *arg) {
    aw_ns_t t0 = 0, el = 0;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        t0 = aw_now();
        aw_with (aw_cm(&rec_grace5_type, &grace_rec)) {
            aw_scope_cancel(c);
            aw_sleep(AW_SEC(1));
        }
        el = aw_now() - t0;
        const aw_err_t *e = aw_err_current();
        cr_assert_not_null(e);
        cr_assert_eq(e->code, -ECANCELED, "the cancel is never lost, got %s",
                     aw_err_name(e->code));
        const aw_err_t *to = aw_err_find(e, -ETIMEDOUT);
        cr_assert_not_null(to, "the overrun is reported");
        cr_assert_not_null(strstr(to->msg, "overran its grace period"), "msg: %s", to->msg);
    }
    cr_assert_eq(grace_rec.sleep_rc, -ECANCELED, "the exit's sleep was cut by its grace");
    cr_assert_geq(el, AW_MS(5));
    /* the scope absorbs its own cancel, not the overrun (M4) */
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, exit_grace_overrun_under_cancel) { aw_test_run(grace_cancel_main, NULL, 0); }

/* Without a cancel, the overrun is the block's error. */
static int grace_plain_main(void *arg) {
    aw_with (aw_cm(&rec_grace5_type, &grace_rec)) {
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert_not_null(strstr(e->msg, "overran its grace period"), "msg: %s", e->msg);
    cr_assert_not_null(strstr(e->msg, "rec-grace5"), "names the manager: %s", e->msg);
    cr_assert_eq(grace_rec.sleep_rc, -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(scope, exit_grace_overrun_plain) { aw_test_run(grace_plain_main, NULL, 0); }

/* Every exit but a nested one runs in the task's own shield (with.c): an
 * exit that overran its grace leaves nothing on it for the next one,
 * which gets a fresh grace of its own type's length. */
static rec_t reuse_over = {.id = 1, .exit_sleep_ms = 1000};
static rec_t reuse_ok = {.id = 2, .exit_sleep_ms = 1};
static int grace_reuse_main(void *arg) {
    aw_with (aw_cm(&rec_grace5_type, &reuse_over)) {
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    aw_with (aw_cm(&rec_grace100_type, &reuse_ok)) {
    }
    cr_assert_eq(aw_status(), 0, "the second exit inherited the first one's overrun");
    cr_assert_eq(reuse_ok.sleep_rc, 0);
    cr_assert_geq(reuse_ok.deadline_in_exit, reuse_ok.exit_start + AW_MS(50),
                  "the second exit's grace is its own (100 ms), started in it");
    return 0;
}
Test(scope, exit_grace_is_fresh_for_each_exit_of_a_task) { aw_test_run(grace_reuse_main, NULL, 0); }

/* An exit inside an exit (the task's shield taken) has a shield and a
 * grace of its own; the outer exit's grace goes on after it. */
static rec_t nest_inner = {.id = 3, .exit_sleep_ms = 1000};
static int nest_inner_rc;
static aw_ns_t nest_outer_deadline, nest_outer_after;
static int nest_outer_exit(void *self, const aw_err_t *err) {
    (void)self;
    (void)err;
    nest_outer_deadline = aw_effective_deadline(); /* starts the outer grace */
    aw_with (aw_cm(&rec_grace5_type, &nest_inner)) {
    }
    nest_inner_rc = aw_status();
    aw_err_clear();
    nest_outer_after = aw_effective_deadline();
    return aw_sleep_ms(1);
}
static const aw_cm_type_t nest_outer_type = {
    .name = "nest-outer", .enter = rec_enter, .exit = nest_outer_exit, .grace = AW_SEC(100)};
static rec_t nest_outer = {.id = 4};
static int grace_nested_main(void *arg) {
    aw_ns_t t0 = aw_now();
    aw_with (aw_cm(&nest_outer_type, &nest_outer)) {
    }
    cr_assert_eq(aw_status(), 0, "the outer exit kept its own grace");
    cr_assert_eq(nest_inner_rc, -ETIMEDOUT, "the inner exit overran its own 5 ms");
    cr_assert_eq(nest_inner.sleep_rc, -ECANCELED);
    cr_assert_geq(nest_outer_deadline, t0 + AW_SEC(50));
    cr_assert_eq(nest_outer_after, nest_outer_deadline, "the outer grace is unchanged after the inner");
    return 0;
}
Test(scope, exit_grace_of_an_exit_nested_in_an_exit) { aw_test_run(grace_nested_main, NULL, 0); }

/* The loop's exit_grace applies when the type sets none. */
static rec_t grace_loop_rec = {.id = 1, .exit_sleep_ms = 1000};
static int grace_loop_main(void *arg) {
    aw_with (aw_cm(&rec_type, &grace_loop_rec)) {
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert_eq(grace_loop_rec.sleep_rc, -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(scope, exit_grace_from_loop_opts) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(5)};
    cr_assert_eq(aw_main_opts(&o, grace_loop_main, NULL), 0);
}

/* aw_scope_cancel from another task wakes the scope's owner. */
static aw_scope_t *xc_scope;
static int xc_helper(void *arg) {
    aw_sleep_ms(2);
    aw_scope_cancel(xc_scope);
    return 0;
}
static int xc_main(void *arg) {
    int rc = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        xc_scope = s;
        aw_spawn(NULL, xc_helper, NULL, NULL);
        rc = aw_sleep(AW_SEC(10));
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, cancel_from_another_task_wakes_owner) { aw_test_run(xc_main, NULL, 0); }

/* An exit's grace starts at its first suspension, by the clock: not by
 * the loop's cached time, which nothing refreshes while no timer is armed
 * (here: 200 ms of work with no timer, then an exit that sleeps 2 ms
 * under a 100 ms grace). */
static int stale_sleep_rc = 1;
static int stale_enter(void *self, void **out) { return 0; }
static int stale_exit(void *self, const aw_err_t *err) {
    stale_sleep_rc = aw_sleep_ms(2); /* the first suspension of the exit */
    return 0;
}
static const aw_cm_type_t stale_type = {
    .name = "sleepy-exit", .enter = stale_enter, .exit = stale_exit, .grace = AW_MS(100)};
static int stale_now_main(void *arg) {
    aw_yield(); /* a round of the loop with no timer armed */
    aw_with (aw_cm(&stale_type, NULL)) {
        aw_ns_t t0 = aw_now();
        while (aw_now() - t0 < AW_MS(200))
            ; /* busy: the loop's time stands still */
    }
    cr_assert_eq(stale_sleep_rc, 0, "the exit's sleep was cut: the grace began in the past");
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    return 0;
}
Test(scope, exit_grace_starts_by_the_clock_after_a_timerless_stretch) {
    aw_test_run(stale_now_main, NULL, 0);
}

/* ======================= M4: a scope absorbs only its own cancel ======================= */

/* The codes of a chain, newest first, into a string like "EIO<ETIMEDOUT<ECANCELED". */
static const char *chain_str(const aw_err_t *e) {
    static char buf[256];
    size_t n = 0;
    buf[0] = 0;
    for (int guard = 0; e && guard < 20; e = e->context, guard++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? "<" : "",
                              aw_err_name(e->code) + (strncmp(aw_err_name(e->code), "AW_", 3) ? 0 : 3));
    return buf;
}

/* Inside a move-on scope whose deadline unwinds the block, an exit fails
 * with -EIO: the failure leaves the scope, the cancel in its context
 * (Trio's cancel scope catches only Cancelled). */
static rec_t m4_eio_rec = {.id = 1, .exit_rc = -EIO};
static int m4_move_on_main(void *arg) {
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(2))) {
        aw_with (aw_cm(&rec_type, &m4_eio_rec)) {
            aw_sleep(AW_SEC(5));
        }
        (void)s;
    }
    cr_assert_eq(m4_eio_rec.seen, -ECANCELED);
    cr_assert_str_eq(chain_str(aw_err_current()), "EIO<ECANCELED",
                     "the exit's failure was absorbed with the scope's cancel");
    aw_err_clear();
    return 0;
}
Test(scope, M4_move_on_keeps_an_exit_failure_raised_while_its_cancel_unwinds) {
    aw_test_run(m4_move_on_main, NULL, 0);
}

static rec_t m4_cs_rec = {.id = 1, .exit_rc = -EIO};
static int m4_cancel_scope_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_cm(&rec_type, &m4_cs_rec)) {
            aw_scope_cancel(s);
            aw_sleep(AW_SEC(5));
        }
    }
    cr_assert_str_eq(chain_str(aw_err_current()), "EIO<ECANCELED",
                     "the exit's failure was absorbed with the scope's cancel");
    aw_err_clear();
    return 0;
}
Test(scope, M4_cancel_scope_keeps_an_exit_failure_raised_while_its_cancel_unwinds) {
    aw_test_run(m4_cancel_scope_main, NULL, 0);
}

/* An exit overrunning its grace while the scope's cancel unwinds the block:
 * the overrun is reported after the scope, not absorbed. */
static rec_t m4_grace_rec = {.id = 1, .exit_sleep_ms = 1000};
static int m4_grace_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_cm(&rec_grace5_type, &m4_grace_rec)) {
            aw_scope_cancel(s);
            aw_sleep(AW_SEC(1));
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_str_eq(chain_str(e), "ETIMEDOUT<ECANCELED", "the grace overrun was absorbed");
    cr_assert_not_null(strstr(e->msg, "overran its grace period"), "msg: %s", e->msg);
    aw_err_clear();
    return 0;
}
Test(scope, M4_cancel_scope_keeps_a_grace_overrun_raised_while_its_cancel_unwinds) {
    aw_test_run(m4_grace_main, NULL, 0);
}

/* Trio's test_cancel_scope_exceptiongroup_filtering: a child fails after
 * the scope around its group was cancelled; the failure is kept. */
static int m4_late_child(void *arg) {
    aw_with (aw_shield(AW_SEC(5))) {
        aw_sleep_ms(3);
    }
    return aw_raise(-EINVAL, "child failing after the cancel");
}
static int m4_group_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, m4_late_child, NULL, NULL);
            aw_sleep_ms(1);
            aw_scope_cancel(s);
            aw_sleep(AW_SEC(5));
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e, "the child's failure was absorbed with the scope's cancel");
    cr_assert_eq(e->code, -AW_EGROUP, "got %s", chain_str(e));
    cr_assert_not_null(e->members);
    cr_assert_eq(e->members->code, -EINVAL);
    cr_assert_not_null(aw_err_find(e, -ECANCELED), "the cancel is in its context");
    aw_err_clear();
    return 0;
}
Test(scope, M4_cancel_scope_keeps_a_child_failure_raised_after_its_cancel) {
    aw_test_run(m4_group_main, NULL, 0);
}

/* Issue 10, item 10 (and G10 as Python 3.13 has it): a deadline fires and
 * a cleanup then fails: the failure, then the timeout, then the cancel it
 * caused; no re-delivered cancel buried in between. */
static rec_t m4_fa_rec = {.id = 1, .exit_rc = -EDOM};
static int m4_fail_after_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_cm(&rec_type, &m4_fa_rec)) {
            aw_sleep(AW_SEC(5));
        }
    }
    cr_assert_str_eq(chain_str(aw_err_current()), "EDOM<ETIMEDOUT<ECANCELED");
    aw_err_clear();
    return 0;
}
Test(scope, M4_fail_after_chain_reads_failure_then_timeout_then_cancel) {
    aw_test_run(m4_fail_after_main, NULL, 0);
}

/* The body fails after the deadline: the same order. */
static int m4_fail_after_body_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_sleep(AW_SEC(5));
        aw_fail(-EIO, "cleanup failed after the timeout");
    }
    cr_assert_str_eq(chain_str(aw_err_current()), "EIO<ETIMEDOUT<ECANCELED");
    aw_err_clear();
    return 0;
}
Test(scope, M4_fail_after_body_failure_chain_reads_failure_then_timeout_then_cancel) {
    aw_test_run(m4_fail_after_body_main, NULL, 0);
}

/* Only records raised inside the scope are touched: an error pending from
 * before the block stays where it was, below everything. */
static int m4_older_main(void *arg) {
    aw_raise(-EBADF, "older, unhandled");
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_sleep(AW_SEC(5));
    }
    cr_assert_str_eq(chain_str(aw_err_current()), "ETIMEDOUT<ECANCELED<EBADF");
    aw_err_clear();
    aw_raise(-EBADF, "older, unhandled");
    aw_with (aw_move_on_after(AW_MS(2))) {
        aw_sleep(AW_SEC(5));
    }
    cr_assert_str_eq(chain_str(aw_err_current()), "EBADF");
    aw_err_clear();
    return 0;
}
Test(scope, M4_records_from_before_the_scope_are_untouched) { aw_test_run(m4_older_main, NULL, 0); }

/* ---- what a chain shows, kept per scope (issue 14) ----
 * A suspension point reads the cancel and the earliest deadline kept in
 * the innermost scope, computed from its parent's as it was entered. A
 * change above scopes already entered (a cancel, a reschedule, an outer
 * deadline expiring, a generator resumed from another scope) must still
 * reach the innermost point: these check it 64 scopes deep (debug builds
 * also assert, at every read, that the kept value is what a walk finds). */

enum { DEEP = 64 };
static aw_scope_t *deep_outer;
static int deep_rc;

static int deep_nest(int k, aw_ns_t sleep) {
    if (k == 0)
        return sleep ? aw_sleep(sleep) : aw_yield();
    int rc = 0;
    aw_with (aw_cancel_scope())
        rc = deep_nest(k - 1, sleep);
    return rc;
}

/* yields in a loop DEEP scopes below `deep_outer` until one fails */
static int deep_yielder(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        deep_outer = s;
        for (int i = 0; i < 1000000 && (deep_rc = deep_nest(DEEP, 0)) == 0; i++)
            ;
    }
    return 0;
}

static int deep_cancel_main(void *arg) {
    aw_task_t *t;
    cr_assert_eq(aw_spawn(NULL, deep_yielder, NULL, &t), 0);
    for (int i = 0; i < 10; i++)
        aw_yield(); /* it yields, its chain known all the way down */
    aw_scope_cancel(deep_outer);
    cr_assert_eq(aw_task_join(t), 0);
    cr_assert_eq(deep_rc, -ECANCELED);
    return 0;
}
Test(scope, F1_an_outer_cancel_reaches_a_point_64_scopes_deep) {
    aw_test_run(deep_cancel_main, NULL, 0);
}

/* An outer deadline moved earlier from another task while the owner
 * sleeps DEEP scopes below it: its timer is re-armed, the sleep cut. */
static int deep_resched_helper(void *arg) {
    aw_scope_reschedule(resched_scope, aw_now() + AW_MS(1));
    return 0;
}
static int deep_resched_main(void *arg) {
    int rc = 1;
    bool expired = false;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_SEC(100))) {
        resched_scope = s;
        aw_spawn(NULL, deep_resched_helper, NULL, NULL);
        rc = deep_nest(DEEP, AW_SEC(10));
        expired = aw_scope_expired(s);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert(expired);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G6_an_outer_reschedule_reaches_a_sleep_64_scopes_deep) {
    aw_test_run(deep_resched_main, NULL, 0);
}

/* A deadline DEEP scopes up expires at the innermost point (the kept
 * earliest deadline is the outer one), and only once: the next point
 * still sees the cancel (level-triggered). */
static int deep_deadline_main(void *arg) {
    int rc1 = 1, rc2 = 1;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(2))) {
        rc1 = deep_nest(DEEP, AW_SEC(10));
        rc2 = deep_nest(DEEP, 0);
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(rc1, -ECANCELED);
    cr_assert_eq(rc2, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G4_an_outer_deadline_cuts_a_sleep_64_scopes_deep) {
    aw_test_run(deep_deadline_main, NULL, 0);
}

/* A generator resumed from two different scopes: its root scope is
 * re-hung below the consumer's scope of the moment, so its checkpoint
 * sees the second scope's cancel and not the first's absence of one. */
static int deep_gen(aw_gen_t *g, void *arg) {
    for (;;) {
        int rc = aw_checkpoint();
        if (rc < 0)
            return rc;
        if (aw_gen_yield(g, NULL) < 0)
            return 0;
    }
}
static int deep_gen_main(void *arg) {
    aw_gen_t g = AW_GEN_INIT(deep_gen, NULL);
    int rc1 = 1, rc2 = 1;
    aw_with (aw_cancel_scope())
        rc1 = aw_gen_next(&g, NULL);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        rc2 = aw_gen_next(&g, NULL);
    }
    cr_assert_eq(rc1, 1);
    cr_assert_eq(rc2, -ECANCELED);
    aw_gen_close(&g);
    aw_err_clear();
    return 0;
}
Test(scope, F1_a_generator_resumed_in_a_cancelled_scope_sees_it) {
    aw_test_run(deep_gen_main, NULL, 0);
}

/* M4 with two deadlines (composition fuzzer, seed 310012): the inner
 * fail-after expires, then the outer one, while a child's exit fails in
 * a group under both. The group's error is the failure: it leaves each
 * scope on top, with both timeouts below it (G10's order), as Trio's and
 * asyncio's scopes let an ExceptionGroup through. The outer cancel that
 * the inner scope re-raised over the group's error does not put the
 * inner timeout above that error. */
static aw_scope_t *m4t_outer, *m4t_inner;
static int m4t_enter(void *self, void **out) {
    *out = self;
    aw_scope_reschedule(m4t_inner, aw_now());
    aw_sleep(AW_US(10));
    aw_scope_reschedule(m4t_outer, aw_now());
    aw_sleep(AW_MS(1));
    aw_err_clear(); /* the enter's own cancels, handled (M2) */
    return 0;
}
static int m4t_exit(void *self, const aw_err_t *err) {
    return aw_raise(-EIO, "the exit failed");
}
static const aw_cm_type_t m4t_type = {.name = "m4t", .enter = m4t_enter, .exit = m4t_exit};
static int m4t_child(void *arg) {
    aw_with (aw_cm(&m4t_type, NULL)) {
        aw_yield();
    }
    return aw_status();
}
static int m4t_main(void *arg) {
    const aw_err_t *inner_left = NULL;
    int inner_top = 0;
    aw_with (aw_scope_t *o, aw_fail_after(AW_NEVER)) {
        m4t_outer = o;
        aw_with (aw_scope_t *i, aw_fail_after(AW_SEC(10))) {
            m4t_inner = i;
            aw_with (aw_group_t *g, aw_group()) {
                aw_spawn(g, m4t_child, NULL, NULL);
                aw_yield();
            }
        }
        inner_left = aw_err_current();
        inner_top = inner_left ? inner_left->code : 0;
        cr_assert_eq(inner_top, -ECANCELED, "the outer cancel is still visible");
        cr_assert_eq(inner_left->context->code, -AW_EGROUP, "got %s below the cancel",
                     aw_err_name(inner_left->context->code));
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP, "the failure leaves on top, got %s", aw_err_name(e->code));
    cr_assert_eq(e->members->code, -EIO);
    int timeouts = 0;
    for (const aw_err_t *x = e->context; x; x = x->context)
        timeouts += x->code == -ETIMEDOUT;
    cr_assert_eq(timeouts, 2, "both deadlines recorded below the failure");
    aw_err_clear();
    return 0;
}
Test(scope, M4_a_failure_stays_on_top_of_two_expired_deadlines) { aw_test_run(m4t_main, NULL, 0); }

/* Decision 6 meets G13 and M4: when an outer scope's cancel outranks an
 * inner fail-after's deadline, the -ETIMEDOUT the inner scope records is
 * part of that cancel, and the scope that ends the cancel ends it too, as
 * Trio's fail_at raises nothing when the Cancelled was not its own. A
 * helper given the caller's deadline (fail_at(d) inside move_on_at(d)) is
 * the common case: the caller's block is left quietly. */
static int g13eq_inner_rc = 1, g13eq_inner_top = 1;
static int g13eq_main(void *arg) {
    aw_ns_t d = aw_now() + AW_MS(2);
    aw_with (aw_scope_t *s, aw_move_on_at(d)) {
        aw_with (aw_fail_at(d)) {
            g13eq_inner_rc = aw_sleep(AW_SEC(10));
        }
        g13eq_inner_top = aw_status();
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(g13eq_inner_rc, -ECANCELED);
    cr_assert_eq(g13eq_inner_top, -ECANCELED, "the outer cancel outranks the inner deadline");
    cr_assert_eq(aw_status(), 0, "the move-on block must be left quietly, got %s",
                 aw_err_name(aw_status()));
    return 0;
}
Test(scope, G13_move_on_around_a_fail_after_of_the_same_deadline_is_left_quietly) {
    aw_test_run(g13eq_main, NULL, 0);
}

/* The same with a cancel scope cancelled by hand once the inner deadline
 * has passed: the inner scope sees both at its next point. */
static int m4oc_main(void *arg) {
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_with (aw_fail_after(AW_MS(1))) {
            spin_until(aw_now() + AW_MS(3));
            aw_scope_cancel(c);
            aw_sleep(AW_SEC(10));
        }
        cr_assert_eq(aw_status(), -ECANCELED);
        cr_assert_not_null(aw_err_find(aw_err_current(), -ETIMEDOUT), "decision 6 records it");
    }
    cr_assert_eq(aw_status(), 0, "the cancel scope must be left quietly, got %s",
                 aw_err_name(aw_status()));
    return 0;
}
Test(scope, M4_a_cancel_scope_ends_the_timeout_its_cancel_outranked) {
    aw_test_run(m4oc_main, NULL, 0);
}

/* Two fail-afters of the same deadline: one -ETIMEDOUT, the outer's, its
 * context the cancel (G1), not the inner's recorded timeout. */
static int g4eq_main(void *arg) {
    aw_ns_t d = aw_now() + AW_MS(2);
    aw_with (aw_fail_at(d)) {
        aw_with (aw_fail_at(d)) {
            aw_sleep(AW_SEC(10));
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert_eq(count_code(e, -ETIMEDOUT), 1, "one timeout, got %d",
                 count_code(e, -ETIMEDOUT));
    cr_assert(e->context && e->context->code == -ECANCELED, "its context is the cancel");
    aw_err_clear();
    return 0;
}
Test(scope, G4_two_fail_afters_of_the_same_deadline_give_one_timeout) {
    aw_test_run(g4eq_main, NULL, 0);
}

/* G6 after the deadline fired: the scope stays cancelled (Trio's
 * cancel_called cannot be undone); moving the deadline away does not
 * stop its cancellation points from returning -ECANCELED, and a
 * fail-after still leaves with -ETIMEDOUT. */
static int g6x_main(void *arg) {
    int first = 1, again = 1;
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(1))) {
        first = aw_sleep(AW_SEC(10));
        aw_err_clear();
        cr_assert_eq(aw_scope_reschedule(s, AW_NEVER), 0);
        again = aw_sleep_ms(1);
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(first, -ECANCELED);
    cr_assert_eq(again, -ECANCELED, "a reschedule after expiry undid the cancel");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, G6_rescheduling_after_expiry_does_not_undo_the_cancel) {
    aw_test_run(g6x_main, NULL, 0);
}

/* G6 with G2: a deadline is read at cancellation points only, so a past
 * deadline moved into the future before the block's first point never
 * fires (Trio's cancel_called stays false). */
static int g6f_main(void *arg) {
    int rc = 1;
    aw_with (aw_scope_t *s, aw_fail_after(0)) {
        cr_assert_eq(aw_scope_reschedule(s, aw_now() + AW_SEC(10)), 0);
        rc = aw_sleep_ms(1);
        cr_assert(!aw_scope_cancelled(s));
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, G6_a_past_deadline_moved_away_before_any_point_never_fires) {
    aw_test_run(g6f_main, NULL, 0);
}

/* M5: an exit stack keeps a deadline beyond the block it was entered in
 * (async with timeout(1): await stack.enter_async_context(timeout(0.03))):
 * the block's scope ends first, the stack's deadline still covers the
 * task and times out the stack's block, and nothing lingers after it. */
static int m5_outlive_main(void *arg) {
    int rc = 1, inner = 1;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_with (aw_move_on_after(AW_SEC(60))) {
            aw_exitstack_enter(st, aw_fail_after(AW_MS(20)), NULL);
        }
        inner = aw_status();
        rc = aw_sleep(AW_SEC(2));
    }
    cr_assert_eq(inner, 0, "the block the deadline was entered in ended clean");
    cr_assert_eq(rc, -ECANCELED, "the stack's deadline no longer cut the wait");
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(30), 0, "a deadline lingers after the stack");
    return 0;
}
Test(scope, M5_a_deadline_entered_into_an_exit_stack_outlives_the_block_it_was_entered_in) {
    aw_test_run(m5_outlive_main, NULL, 0);
}

/* M5, the other way round: the block's own deadline ends with its block,
 * under an entry of the stack that outlives it, and no longer applies. */
static int m5_ended_main(void *arg) {
    int rc = 1;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_with (aw_fail_after(AW_MS(20))) {
            aw_exitstack_enter(st, aw_move_on_after(AW_SEC(60)), NULL);
        }
        cr_assert_eq(aw_status(), 0);
        rc = aw_sleep_ms(60);
    }
    cr_assert_eq(rc, 0, "a deadline whose block had ended cut the wait: %s", aw_err_name(rc));
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    return 0;
}
Test(scope, M5_a_deadline_that_ended_under_an_exit_stack_entry_no_longer_applies) {
    aw_test_run(m5_ended_main, NULL, 0);
}

/* A scope cancelled after its block ended (a task kept a pointer to its
 * state, declared in an outer block): nothing is inside it any more, so
 * nothing is woken, as Trio's cancel() after the block does nothing. It
 * was taken for the loop's root group and read as one (beyond the
 * scope's own bytes). */
static int ended_sibling_rc = 1;
static int ended_sibling(void *arg) {
    ended_sibling_rc = aw_sleep_ms(20);
    return 0;
}
static int ended_main(void *arg) {
    aw_scope_t sc = {.kind = AW__SCOPE_MOVE, .rel = AW_NEVER, .deadline = AW_NEVER};
    aw_task_t *sib;
    aw_spawn(NULL, ended_sibling, NULL, &sib);
    aw_with (aw_cm(&aw_scope_type, &sc))
        cr_assert_eq(aw_yield(), 0);
    aw_scope_cancel(&sc);
    cr_assert(aw_scope_cancelled(&sc));
    cr_assert_eq(aw_sleep_ms(1), 0, "the task itself is not cancelled");
    cr_assert_eq(aw_task_join(sib), 0);
    cr_assert_eq(ended_sibling_rc, 0, "a task outside the ended scope was cancelled");
    return 0;
}
Test(scope, F2_a_scope_cancelled_after_its_block_ended_cancels_nothing) {
    aw_test_run(ended_main, NULL, 0);
}

/* ================= audit of F and the decisions: the halves left out ================= */

/* F7: every blocking call is a cancellation point even when it would not
 * suspend: an uncontended lock, a semaphore with permits, a set event.
 * Each returns -ECANCELED and takes nothing. */
static int f7_all_main(void *arg) {
    aw_lock_t lk = AW_LOCK_INIT("f7");
    aw_sem_t sem = AW_SEM_INIT("f7", 1, 1);
    aw_event_t e = AW_EVENT_INIT;
    aw_event_set(&e);
    int lrc = 1, src = 1, erc = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        lrc = aw_lock_acquire(&lk);
        aw_err_clear();
        src = aw_sem_acquire(&sem);
        aw_err_clear();
        erc = aw_event_wait(&e);
        aw_err_clear();
    }
    cr_assert_eq(lrc, -ECANCELED, "an uncontended lock acquire: %d", lrc);
    cr_assert_null(aw_lock_owner(&lk), "the cancelled acquire took the lock");
    cr_assert_eq(src, -ECANCELED, "a semaphore acquire with permits: %d", src);
    cr_assert_eq(aw_sem_value(&sem), 1, "the cancelled acquire took a permit");
    cr_assert_eq(erc, -ECANCELED, "a wait on a set event: %d", erc);
    /* outside the cancelled scope they work and do not suspend needlessly */
    cr_assert_eq(aw_lock_acquire(&lk), 0);
    cr_assert_eq(aw_lock_release(&lk), 0);
    cr_assert_eq(aw_sem_acquire(&sem), 0);
    cr_assert_eq(aw_sem_release(&sem), 0);
    cr_assert_eq(aw_event_wait(&e), 0);
    return 0;
}
Test(scope, F7_a_lock_a_semaphore_and_a_set_event_are_cancellation_points) { aw_test_run(f7_all_main, NULL, 0); }

/* F7 for file operations, on entry: a read and a write on an open file in
 * a cancelled scope return -ECANCELED and write nothing. */
#include <fcntl.h>
#include <unistd.h>
static int f7_file_main(void *arg) {
    char dir[256], path[300];
    aw_test_mkdtemp(dir, sizeof dir, "f7file");
    snprintf(path, sizeof path, "%s/f", dir);
    int wrc = 1;
    ssize_t rrc = 1;
    aw_with (aw_file_t *f, aw_file(path, O_RDWR | O_CREAT, 0600)) {
        aw_with (aw_scope_t *s, aw_cancel_scope()) {
            aw_scope_cancel(s);
            wrc = aw_file_write(f, "abc", 3);
            aw_err_clear();
            char b[8];
            rrc = aw_file_read(f, b, sizeof b);
            aw_err_clear();
        }
    }
    cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
    cr_assert_eq(wrc, -ECANCELED, "a write in a cancelled scope: %d", wrc);
    cr_assert_eq(rrc, -ECANCELED, "a read in a cancelled scope: %zd", rrc);
    char *data = NULL;
    size_t len = 99;
    cr_assert_eq(aw_file_read_all(path, &data, &len, 100), 0);
    cr_assert_eq(len, 0, "the cancelled write wrote %zu bytes", len);
    free(data);
    aw_test_rmtree(dir);
    return 0;
}
Test(scope, F7_file_operations_are_cancellation_points_on_entry) { aw_test_run(f7_file_main, NULL, 0); }

/* F1 / decision 1: a cancelled scope reaches the tasks of a group opened
 * inside it, level-triggered there too: each of their cancellation points
 * returns -ECANCELED, again after the error was handled. */
static int f1g_rc[3];
static int f1g_child(void *arg) {
    for (int i = 0; i < 3; i++) {
        f1g_rc[i] = aw_sleep(AW_SEC(10));
        aw_err_clear();
    }
    return 0;
}
static int f1g_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_group_t *g, aw_group()) {
            cr_assert_eq(aw_spawn(g, f1g_child, NULL, NULL), 0);
            aw_scope_cancel(s);
        }
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(f1g_rc[i], -ECANCELED, "the child's wait %d returned %d", i, f1g_rc[i]);
    cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
    return 0;
}
Test(scope, F1_a_cancelled_scope_reaches_a_groups_children_level_triggered) { aw_test_run(f1g_main, NULL, 0); }

/* F4: the record of a fail-after's cancel names the deadline, and the
 * -ETIMEDOUT that leaves says so too. */
static int f4_dl_main(void *arg) {
    char msg[256] = "";
    aw_with (aw_fail_after(AW_MS(1))) {
        if (aw_sleep(AW_SEC(1)) < 0)
            snprintf(msg, sizeof msg, "%s", aw_err_current()->msg);
    }
    cr_assert(strstr(msg, "deadline"), "the cancel record does not name the deadline: '%s'", msg);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert(strstr(aw_err_current()->msg, "deadline"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}
Test(scope, F4_a_fail_afters_cancel_names_the_deadline) { aw_test_run(f4_dl_main, NULL, 0); }

/* F3 under a deadline: a task spawned into a group inside an expired
 * fail-after runs to its first cancellation point; its manager enters and
 * exits; the block leaves with -ETIMEDOUT. */
static rec_t f3d_rec = {.id = 7};
static int f3d_ran, f3d_rc = 1;
static int f3d_child(void *arg) {
    f3d_ran = 1;
    aw_with (aw_cm(&rec_type, &f3d_rec)) {
        f3d_rc = aw_sleep(AW_SEC(1));
    }
    return aw_status();
}
static int f3d_main(void *arg) {
    aw_with (aw_fail_after(0)) {
        aw_with (aw_group_t *g, aw_group()) {
            cr_assert_eq(aw_spawn(g, f3d_child, NULL, NULL), 0);
        }
    }
    cr_assert_eq(f3d_ran, 1);
    cr_assert_eq(f3d_rc, -ECANCELED);
    cr_assert_eq(f3d_rec.entered, 1);
    cr_assert_eq(f3d_rec.exited, 1);
    cr_assert_eq(f3d_rec.seen, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(scope, F3_a_task_spawned_under_an_expired_deadline_runs_to_its_first_point) { aw_test_run(f3d_main, NULL, 0); }

/* F5 with a failing exit: exit's waits complete, its failure joins the
 * chain, and -ECANCELED stays on top ((c) 13). */
static rec_t f5f_rec = {.id = 8, .exit_sleep_ms = 5, .exit_rc = -EPIPE};
static int f5f_child(void *arg) {
    aw_with (aw_cm(&rec_type, &f5f_rec)) {
        aw_sleep(AW_SEC(1));
    }
    return aw_status();
}
static int f5f_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, f5f_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(f5f_rec.sleep_rc, 0);
    cr_assert_eq(rc, -ECANCELED, "%s", aw_err_name(rc));
    cr_assert_not_null(aw_err_find(aw_err_current(), -EPIPE));
    aw_err_clear();
    return 0;
}
Test(scope, F5_a_failing_exit_of_a_cancelled_block_keeps_the_cancel_on_top) { aw_test_run(f5f_main, NULL, 0); }

/* F6 under a deadline: an unshielded exit sees the enclosing deadline
 * that cut its block; a default one does not. */
static rec_t f6d_un = {.id = 1, .exit_sleep_ms = 1000};
static rec_t f6d_sh = {.id = 2, .exit_sleep_ms = 5};
static int f6d_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_cm(&rec_type, &f6d_sh))
        aw_with (aw_cm(&rec_unshielded_type, &f6d_un)) {
            aw_sleep(AW_SEC(1));
        }
    }
    cr_assert_eq(f6d_un.sleep_rc, -ECANCELED, "an unshielded exit did not see the deadline");
    cr_assert_eq(f6d_sh.sleep_rc, 0, "a default exit saw the deadline");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, F6_an_unshielded_exit_sees_an_enclosing_deadline) { aw_test_run(f6d_main, NULL, 0); }

/* Decision 3 for a non-scope manager opting in, under a deadline: the
 * exit may swallow the -ECANCELED, but the deadline's scope stays
 * cancelled and still leaves with -ETIMEDOUT at its next point. */
static rec_t d3d_rec = {.id = 4, .exit_rc = AW_SUPPRESS};
static int d3d_main(void *arg) {
    int inner = 1, again = 1;
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_cm(&rec_suppress_cancel_type, &d3d_rec)) {
            aw_sleep(AW_SEC(1));
        }
        inner = aw_status();
        again = aw_sleep(AW_SEC(1));
    }
    cr_assert_eq(d3d_rec.seen, -ECANCELED);
    cr_assert_eq(inner, 0);
    cr_assert_eq(again, -ECANCELED, "the expired scope stopped being cancelled");
    cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(scope, D3_an_opted_in_exit_swallowing_a_deadline_leaves_the_scope_expired) { aw_test_run(d3d_main, NULL, 0); }

/* Decision 6 with a failing exit: an outer cancel, then the block's
 * deadline, then its exit fails: -ECANCELED on top, the -ETIMEDOUT and
 * the exit's failure both in the chain. */
static rec_t d6f_rec = {.id = 6, .exit_sleep_ms = 20, .exit_rc = -EPIPE};
static int d6f_status;
static int d6f_child(void *arg) {
    aw_with (aw_fail_after(AW_MS(10))) {
        aw_with (aw_cm(&rec_type, &d6f_rec)) {
            aw_sleep(AW_SEC(1)); /* the cancel lands here; the deadline passes in exit */
        }
        aw_checkpoint();
    }
    d6f_status = aw_status();
    return aw_status();
}
static int d6f_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, d6f_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED, "%s", aw_err_name(rc));
    cr_assert_not_null(aw_err_find(aw_err_current(), -EPIPE), "the exit's failure was lost");
    cr_assert_not_null(aw_err_find(aw_err_current(), -ETIMEDOUT), "the deadline was not recorded");
    cr_assert_eq(d6f_rec.sleep_rc, 0);
    aw_err_clear();
    return 0;
}
Test(scope, D6_cancel_then_deadline_with_a_failing_exit_keeps_all_three) { aw_test_run(d6f_main, NULL, 0); }

/* A17 for a scope, as G6 binds it: one block at a time (-EBUSY, the
 * inner block does not run), and a scope whose block ended, cancelled
 * or not, is not entered again (-EALREADY, the block does not run):
 * asyncio's Timeout and Trio's CancelScope are single-use. */
static int a17_scope_main(void *arg) {
    aw_cm_t cm = aw_move_on_after(AW_MS(50));
    int inner = 0;
    aw_with (cm) {
        aw_with (cm) inner = 1;
        cr_assert_eq(aw_status(), -EBUSY, "%s", aw_err_name(aw_status()));
        aw_err_clear();
    }
    cr_assert_eq(inner, 0);
    int again = 0;
    aw_with (cm) again = 1;
    cr_assert_eq(aw_status(), -EALREADY, "%s", aw_err_name(aw_status()));
    cr_assert_eq(again, 0, "the block of a refused enter ran");
    aw_err_clear();
    return 0;
}
Test(scope, A17_a_scope_is_entered_by_one_block_at_a_time_and_never_again_after) { aw_test_run(a17_scope_main, NULL, 0); }

/* F7 for streams, on entry: with bytes ready to read and room to write,
 * a read and a write in a cancelled scope return -ECANCELED; nothing is
 * consumed and nothing is sent. */
#include <sys/socket.h>
static int f7_stream_main(void *arg) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(write(sv[1], "hello", 5), 5);
    aw_stream_t s;
    aw_stream_init(&s, sv[0], "pair");
    ssize_t rrc = 1;
    int wrc = 1;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_scope_cancel(c);
        char b[8];
        rrc = aw_stream_read(&s, b, sizeof b);
        aw_err_clear();
        wrc = aw_stream_write(&s, "x", 1);
        aw_err_clear();
    }
    cr_assert_eq(rrc, -ECANCELED, "a read with bytes ready, in a cancelled scope: %zd", rrc);
    cr_assert_eq(wrc, -ECANCELED, "a write with room, in a cancelled scope: %d", wrc);
    char b[8];
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), 5, "the cancelled read consumed bytes");
    char peer[4];
    ssize_t n = recv(sv[1], peer, sizeof peer, MSG_DONTWAIT);
    cr_assert_lt(n, 0, "the cancelled write sent %zd bytes", n);
    aw_stream_close(&s);
    close(sv[1]);
    return 0;
}
Test(scope, F7_stream_operations_are_cancellation_points_on_entry) { aw_test_run(f7_stream_main, NULL, 0); }

/* G6's single use, the way loops are written: a deadline written inside
 * the loop is a new scope each time round (its compound literal is made
 * anew), in a with block and in an exit stack filled in the loop; only
 * one scope kept across rounds is refused. */
static int g6_loop_main(void *arg) {
    for (int i = 0; i < 3; i++) {
        int rc = 1;
        aw_with (aw_move_on_after(AW_MS(1)))
            rc = aw_sleep_ms(50);
        cr_assert_eq(rc, -ECANCELED, "round %d: a fresh deadline each time", i);
        cr_assert_eq(aw_status(), 0, "round %d: %s", i, aw_err_name(aw_status()));
    }
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++)
            cr_assert_eq(aw_exitstack_enter(st, aw_fail_after(AW_SEC(60)), NULL), 0, "entry %d", i);
        cr_assert_eq(aw_exitstack_size(st), 3);
        cr_assert_eq(aw_sleep_ms(1), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
    aw_cm_t kept = aw_move_on_after(AW_MS(1));
    int refused = 0;
    for (int i = 0; i < 2; i++) {
        aw_with (kept)
            aw_sleep_ms(5);
        refused += aw_status() == -EALREADY;
        aw_err_clear();
    }
    cr_assert_eq(refused, 1, "the kept scope: used once, refused the second time");
    return 0;
}
Test(scope, G6_a_deadline_written_inside_a_loop_is_a_new_scope_each_round) { aw_test_run(g6_loop_main, NULL, 0); }

/* ============ Trio's own tests (src/trio/_core/_tests/test_run.py,
 * src/trio/_tests/test_timeouts.py), ported. Cancelled -> -ECANCELED,
 * TooSlowError -> -ETIMEDOUT, cancel_called -> aw_scope_cancelled. ============ */

/* test_cancel_points: a checkpoint and a sleep "forever" inside a cancelled
 * scope return -ECANCELED; a shielded checkpoint does not, the next plain
 * one does again. */
static int trio_cancel_points_main(void *arg) {
    int rc[5] = {1, 1, 1, 1, 1};
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        rc[0] = aw_checkpoint();
        aw_scope_cancel(s);
        rc[1] = aw_checkpoint();
        aw_err_clear();
        rc[2] = aw_sleep(AW_NEVER);
        aw_err_clear();
        aw_with (aw_shield(AW_NEVER)) {
            rc[3] = aw_checkpoint();
        }
        rc[4] = aw_checkpoint();
    }
    cr_assert_eq(rc[0], 0);
    cr_assert_eq(rc[1], -ECANCELED);
    cr_assert_eq(rc[2], -ECANCELED);
    cr_assert_eq(rc[3], 0, "a shielded checkpoint in a cancelled scope returned %d", rc[3]);
    cr_assert_eq(rc[4], -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, trio_test_cancel_points) { aw_test_run(trio_cancel_points_main, NULL, 0); }

/* test_cancel_edge_cases: two cancels in a row are one; level-triggered. */
static int trio_cancel_edge_main(void *arg) {
    bool called = false;
    int rc1 = 1, rc2 = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_scope_cancel(s);
        (void)aw_checkpoint();
        called = aw_scope_cancelled(s);
    }
    cr_assert(called);
    cr_assert_eq(aw_status(), 0, "the scope catches its own cancel");
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        rc1 = aw_sleep(AW_NEVER);
        aw_err_clear();
        rc2 = aw_sleep(AW_NEVER);
    }
    cr_assert_eq(rc1, -ECANCELED);
    cr_assert_eq(rc2, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, trio_test_cancel_edge_cases) { aw_test_run(trio_cancel_edge_main, NULL, 0); }

/* test_cancel_scope_nesting, part 1: scope3 and scope2 both cancelled, the
 * outer one (scope2) is the one that catches: what runs after scope3's
 * block inside scope2 sees the cancel still propagating. Part 3: a scope
 * cancelled and left through a shielded checkpoint only delivers nothing
 * once it is popped. */
static int trio_nesting_main(void *arg) {
    bool s3_called = false, s2_called = false, s1_called = true;
    int after3 = 1;
    aw_with (aw_scope_t *s1, aw_cancel_scope()) {
        aw_with (aw_scope_t *s2, aw_cancel_scope()) {
            aw_with (aw_scope_t *s3, aw_cancel_scope()) {
                aw_scope_cancel(s3);
                aw_scope_cancel(s2);
                (void)aw_sleep(AW_NEVER);
                s3_called = aw_scope_cancelled(s3);
            }
            after3 = aw_status();
            s2_called = aw_scope_cancelled(s2);
        }
        s1_called = aw_scope_cancelled(s1);
        cr_assert_eq(aw_status(), 0, "scope2 catches the cancel");
    }
    cr_assert(s3_called);
    cr_assert(s2_called);
    cr_assert(!s1_called);
    cr_assert_eq(after3, -ECANCELED,
                 "scope3 let the cancel through to scope2 (it is cancelled too): got %d", after3);
    /* part 2 without toggling the shield: an outer cancel is level-triggered
     * in an inner scope; a shielded inner scope cancelled itself raises. */
    int rc[4] = {1, 1, 1, 1};
    aw_with (aw_scope_t *s1, aw_cancel_scope()) {
        aw_with (aw_cancel_scope()) {
            aw_scope_cancel(s1);
            rc[0] = aw_checkpoint();
            aw_err_clear();
            rc[1] = aw_checkpoint();
            aw_err_clear();
            aw_with (aw_scope_t *sh, aw_shield(AW_NEVER)) {
                rc[2] = aw_checkpoint();
                aw_scope_cancel(sh);
                rc[3] = aw_checkpoint();
            }
        }
    }
    cr_assert_eq(rc[0], -ECANCELED);
    cr_assert_eq(rc[1], -ECANCELED);
    cr_assert_eq(rc[2], 0);
    cr_assert_eq(rc[3], -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    /* part 3 */
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_with (aw_shield(AW_NEVER)) {
            (void)aw_checkpoint();
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(aw_checkpoint(), 0, "a popped cancelled scope delivers nothing");
    return 0;
}
Test(scope, trio_test_cancel_scope_nesting) { aw_test_run(trio_nesting_main, NULL, 0); }

/* test_cancel_shielding (the parts that need no shield toggle): a shield
 * protects from an outer cancel, not from a scope inside it, and not from
 * its own cancel, which it absorbs; the outer cancel is back after it. */
static int trio_shielding_main(void *arg) {
    int rc[6] = {1, 1, 1, 1, 1, 1};
    bool caught = false;
    aw_with (aw_scope_t *outer, aw_cancel_scope()) {
        rc[0] = aw_checkpoint();
        aw_scope_cancel(outer);
        rc[1] = aw_checkpoint();
        aw_err_clear();
        aw_with (aw_scope_t *inner, aw_shield(AW_NEVER)) {
            rc[2] = aw_checkpoint();
            aw_with (aw_scope_t *innerest, aw_cancel_scope()) {
                aw_scope_cancel(innerest);
                rc[3] = aw_checkpoint();
            }
            rc[4] = aw_checkpoint();
            aw_scope_cancel(inner);
            (void)aw_checkpoint();
            caught = aw_scope_cancelled(inner);
        }
        cr_assert_eq(aw_status(), 0, "the shield absorbs its own cancel");
        rc[5] = aw_checkpoint();
    }
    cr_assert_eq(rc[0], 0);
    cr_assert_eq(rc[1], -ECANCELED);
    cr_assert_eq(rc[2], 0);
    cr_assert_eq(rc[3], -ECANCELED);
    cr_assert_eq(rc[4], 0);
    cr_assert(caught);
    cr_assert_eq(rc[5], -ECANCELED, "the outer cancel is back after the shield");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, trio_test_cancel_shielding) { aw_test_run(trio_shielding_main, NULL, 0); }

/* test_basic_timeout: a deadline set inside a scope and left unexpired
 * does nothing after; an expired one is caught by its scope; moving the
 * deadline into the past makes the next checkpoints return -ECANCELED. */
static int trio_basic_timeout_main(void *arg) {
    aw_ns_t start = aw_now();
    bool called = true;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        cr_assert_eq(aw_scope_reschedule(s, start + AW_MS(20)), 0);
        called = aw_scope_cancelled(s);
    }
    cr_assert(!called);
    aw_sleep_ms(40);
    cr_assert_eq(aw_checkpoint(), 0);
    cr_assert_eq(aw_checkpoint(), 0);
    bool expired = false;
    start = aw_now();
    aw_with (aw_scope_t *s, aw_move_on_at(start + AW_MS(5))) {
        (void)aw_sleep(AW_NEVER);
        expired = aw_scope_expired(s);
        called = aw_scope_cancelled(s);
    }
    cr_assert(expired && called);
    cr_assert_eq(aw_status(), 0);
    int rc[5] = {1, 1, 1, 1, 1};
    start = aw_now();
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        rc[0] = aw_checkpoint();
        aw_scope_reschedule(s, start + AW_SEC(10));
        rc[1] = aw_checkpoint();
        rc[2] = aw_checkpoint();
        aw_scope_reschedule(s, start - AW_MS(1));
        rc[3] = aw_checkpoint();
        aw_err_clear();
        rc[4] = aw_checkpoint();
    }
    cr_assert_eq(rc[0], 0);
    cr_assert_eq(rc[1], 0);
    cr_assert_eq(rc[2], 0);
    cr_assert_eq(rc[3], -ECANCELED);
    cr_assert_eq(rc[4], -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, trio_test_basic_timeout) { aw_test_run(trio_basic_timeout_main, NULL, 0); }

/* test_yield_briefly_checks_for_timeout: a deadline that passes while the
 * task runs is found by the next checkpoint. */
static int trio_yield_briefly_main(void *arg) {
    int rc0 = 1, rc1 = 1;
    aw_with (aw_move_on_after(AW_MS(5))) {
        rc0 = aw_checkpoint();
        spin_until(aw_now() + AW_MS(10));
        rc1 = aw_checkpoint();
    }
    cr_assert_eq(rc0, 0);
    cr_assert_eq(rc1, -ECANCELED);
    return 0;
}
Test(scope, trio_test_yield_briefly_checks_for_timeout) { aw_test_run(trio_yield_briefly_main, NULL, 0); }

/* test_current_effective_deadline (no shield toggle): min over scopes,
 * a shield hides the outer deadline, rescheduling moves it. */
static int trio_effective_deadline_main(void *arg) {
    cr_assert_eq(aw_effective_deadline(), AW_NEVER);
    aw_ns_t t0 = aw_now();
    aw_with (aw_move_on_at(t0 + AW_SEC(5))) {
        aw_with (aw_scope_t *s2, aw_move_on_at(t0 + AW_SEC(10))) {
            cr_assert_eq(aw_effective_deadline(), t0 + AW_SEC(5));
            aw_scope_reschedule(s2, t0 + AW_SEC(3));
            cr_assert_eq(aw_effective_deadline(), t0 + AW_SEC(3));
            aw_scope_reschedule(s2, t0 + AW_SEC(10));
            cr_assert_eq(aw_effective_deadline(), t0 + AW_SEC(5));
        }
        aw_with (aw_scope_t *sh, aw_shield(AW_NEVER)) {
            aw_scope_reschedule(sh, t0 + AW_SEC(10));
            cr_assert_eq(aw_effective_deadline(), t0 + AW_SEC(10), "a shield hides the outer deadline");
        }
        cr_assert_eq(aw_effective_deadline(), t0 + AW_SEC(5));
    }
    cr_assert_eq(aw_effective_deadline(), AW_NEVER);
    return 0;
}
Test(scope, trio_test_current_effective_deadline) { aw_test_run(trio_effective_deadline_main, NULL, 0); }

/* test_very_deep_cancel_scope_nesting: 5000 scopes in an exit stack, the
 * outermost cancelled: the innermost checkpoint sees it. */
static int trio_deep_main(void *arg) {
    int rc = 1;
    aw_with (aw_scope_t *outer, aw_cancel_scope()) {
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            for (int i = 0; i < 5000; i++)
                if (aw_exitstack_enter(st, aw_cancel_scope(), NULL) < 0)
                    aw_leave();
            aw_scope_cancel(outer);
            rc = aw_checkpoint();
        }
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0, "got %d", aw_status());
    return 0;
}
Test(scope, trio_test_very_deep_cancel_scope_nesting) { aw_test_run(trio_deep_main, NULL, 0); }

/* test_cancel_scope_deadline_duplicates: many reschedules, then a sleep. */
static int trio_dup_main(void *arg) {
    aw_ns_t now = aw_now();
    int rc = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        for (int i = 0; i < 2000; i++) {
            aw_scope_reschedule(s, now + AW_SEC(9998));
            aw_scope_reschedule(s, now + AW_SEC(9999));
        }
        rc = aw_sleep_ms(10);
    }
    cr_assert_eq(rc, 0);
    return 0;
}
Test(scope, trio_test_cancel_scope_deadline_duplicates) { aw_test_run(trio_dup_main, NULL, 0); }

/* test_cancel_scope_no_cancellederror: a cancelled scope left by another
 * error does not catch it. */
static int trio_no_cancellederror_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_fail(-EIO, "test");
    }
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    return 0;
}
Test(scope, trio_test_cancel_scope_no_cancellederror) { aw_test_run(trio_no_cancellederror_main, NULL, 0); }

/* test_timeouts.py: test_sleep (the trivial move_on_at), test_fail,
 * test_move_on_after. */
static int trio_timeouts_main(void *arg) {
    int rc = 1;
    aw_with (aw_move_on_at(aw_now())) {
        rc = aw_sleep(0);
    }
    cr_assert_eq(rc, -ECANCELED, "sleep(0) under move_on_at(now) is cancelled");
    cr_assert_eq(aw_status(), 0);
    aw_with (aw_fail_at(aw_now() + AW_MS(10))) {
        (void)aw_sleep(AW_SEC(100));
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    aw_with (aw_fail_at(aw_now() + AW_SEC(100))) {
        rc = aw_sleep(0);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_status(), 0);
    aw_with (aw_fail_after(AW_MS(10))) {
        (void)aw_sleep(AW_SEC(100));
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    aw_ns_t t = aw_now();
    aw_with (aw_move_on_after(AW_MS(10))) {
        (void)aw_sleep(AW_SEC(100));
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_geq(aw_now() - t, AW_MS(10));
    return 0;
}
Test(scope, trio_test_fail_and_move_on) { aw_test_run(trio_timeouts_main, NULL, 0); }

/* test_context_shields_from_outer (move_on_after and fail_after with
 * shield=True, minus the toggle): awith has aw_shield(ns), a move-on. The
 * outer cancel does not reach inside; after it, it does. */
/* test_move_on_after_moves_on_even_if_shielded: the shield's own deadline
 * still fires although the outer scope is cancelled. */
static int trio_shield_deadline_main(void *arg) {
    int rc = 1, rc_in = 1, rc_after = 1;
    bool expired = false;
    aw_ns_t t = aw_now();
    aw_with (aw_scope_t *outer, aw_cancel_scope()) {
        aw_with (aw_scope_t *sh, aw_shield(AW_MS(10))) {
            aw_scope_cancel(outer);
            rc_in = aw_checkpoint();
            rc = aw_sleep(AW_NEVER);
            expired = aw_scope_expired(sh);
        }
        rc_after = aw_checkpoint();
    }
    cr_assert_eq(rc_in, 0);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert(expired);
    cr_assert_geq(aw_now() - t, AW_MS(10));
    cr_assert_eq(rc_after, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, trio_test_move_on_after_moves_on_even_if_shielded) { aw_test_run(trio_shield_deadline_main, NULL, 0); }

/* test_timeout_deadline_on_entry: a relative deadline counts from the
 * block's enter, not from when the manager was made. */
static int trio_on_entry_main(void *arg) {
    aw_cm_t cm = aw_move_on_after(AW_MS(500));
    aw_sleep_ms(30);
    aw_ns_t start = aw_now();
    aw_with (aw_scope_t *s, cm) {
        aw_ns_t d = aw_effective_deadline();
        cr_assert_geq(d, start + AW_MS(500), "the deadline counts from the enter");
        aw_scope_reschedule(s, start + AW_MS(300));
        cr_assert_eq(aw_effective_deadline(), start + AW_MS(300));
    }
    return 0;
}
Test(scope, trio_test_timeout_deadline_on_entry) { aw_test_run(trio_on_entry_main, NULL, 0); }

/* test_cancel_unbound, "cancel before entry": a scope cancelled before its
 * block starts is cancelled in it, and catches that cancel. */
static int trio_cancel_before_entry_main(void *arg) {
    aw_cm_t cm = aw_cancel_scope();
    aw_scope_cancel((aw_scope_t *)cm.self);
    int rc = 1;
    aw_with (aw_fail_after(AW_SEC(1))) {
        aw_with (cm) {
            rc = aw_sleep(AW_NEVER);
        }
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    return 0;
}
Test(scope, trio_test_cancel_unbound_cancel_before_entry) { aw_test_run(trio_cancel_before_entry_main, NULL, 0); }

/* test_cancel_unbound, "can't enter from multiple tasks simultaneously". */
static aw_scope_t *trio_shared_scope;
static int trio_enter_scope(void *arg) {
    (void)arg;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        trio_shared_scope = s;
        aw_sleep(AW_NEVER);
    }
    return aw_status();
}
static int trio_multi_enter_main(void *arg) {
    int rc = 1;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, trio_enter_scope, NULL, NULL);
        aw_sleep_ms(2);
        aw_with (aw_cm(&aw_scope_type, trio_shared_scope)) {
            cr_assert_fail("entered a scope another task is inside");
        }
        rc = aw_status();
        aw_err_clear();
        aw_group_cancel(g);
    }
    cr_assert_eq(rc, -EBUSY);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, trio_test_cancel_unbound_enter_from_two_tasks) { aw_test_run(trio_multi_enter_main, NULL, 0); }

/* test_cancel_scope_misnesting_1: an exit stack holding a scope is closed
 * from inside a block entered after it. Trio refuses ("still within its
 * child"); awith lets an exit stack's entry end out of order (exitstack.h,
 * SEMANTICS M5): the closed scope no longer applies inside, and the inner
 * block goes on. */
static int trio_misnest_main(void *arg) {
    int close_rc = 1, rc_after = 1, rc_inner = 1;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_scope_t *outer = NULL;
        aw_exitstack_enter(st, aw_cancel_scope(), (void **)&outer);
        aw_with (aw_scope_t *inner, aw_cancel_scope()) {
            aw_scope_cancel(outer);
            close_rc = aw_exitstack_close(st);
            rc_after = aw_checkpoint();
            aw_scope_cancel(inner);
            rc_inner = aw_checkpoint();
        }
        cr_assert_eq(aw_status(), 0);
    }
    cr_assert_eq(close_rc, 0, "the closed scope absorbed its own cancel: %d", close_rc);
    cr_assert_eq(rc_after, 0, "a closed scope cancels nothing: %d", rc_after);
    cr_assert_eq(rc_inner, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, trio_test_cancel_scope_misnesting_1) { aw_test_run(trio_misnest_main, NULL, 0); }

/* test_timeouts_raise_value_error has no C counterpart for NaN; a
 * negative sleep is a checkpoint that returns at once (Trio refuses it). */
static int trio_neg_sleep_main(void *arg) {
    aw_ns_t t = aw_now();
    cr_assert_eq(aw_sleep(-1), 0);
    cr_assert_eq(aw_sleep(-AW_SEC(5)), 0);
    cr_assert_eq(aw_sleep_until(t - AW_SEC(5)), 0);
    cr_assert_lt(aw_now() - t, AW_SEC(4), "a negative sleep waited: it is not 5 s from now");
    int rc = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        rc = aw_sleep(-1);
    }
    cr_assert_eq(rc, -ECANCELED, "a negative sleep is still a cancellation point");
    return 0;
}
Test(scope, trio_test_sleep_negative_is_a_checkpoint) { aw_test_run(trio_neg_sleep_main, NULL, 0); }

/* test_cancel_scope_nesting with deadlines: two scopes whose deadlines
 * fire together; the outer one wins. Inside the outer, after the inner
 * block, the cancel is still propagating; a fail_at outside a move_on_at
 * of the same deadline gives -ETIMEDOUT (Trio: TooSlowError). */
static int trio_nesting_deadline_main(void *arg) {
    aw_ns_t d = aw_now() + AW_MS(5);
    int after_inner = 1;
    bool inner_expired = false;
    aw_with (aw_fail_at(d)) {
        aw_with (aw_scope_t *in, aw_move_on_at(d)) {
            (void)aw_sleep(AW_NEVER);
            inner_expired = aw_scope_expired(in);
        }
        after_inner = aw_status();
    }
    cr_assert(inner_expired);
    cr_assert_eq(after_inner, -ECANCELED, "the outer scope's cancel passes the inner: got %s",
                 aw_err_name(after_inner));
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(scope, trio_test_cancel_scope_nesting_with_deadlines) { aw_test_run(trio_nesting_deadline_main, NULL, 0); }
/* ---- Ports of CPython's Lib/test/test_asyncio/test_timeouts.py ----
 * asyncio.timeout is aw_fail_after, timeout_at aw_fail_at, reschedule
 * aw_scope_reschedule; TimeoutError is -ETIMEDOUT, CancelledError
 * -ECANCELED. when() has no getter: aw_effective_deadline() inside the
 * block stands for it. */
static int cp_basic_main(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_MS(10));
    aw_with (cm) aw_sleep(AW_SEC(10));
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert(aw_scope_expired(cm.self));
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_timeout_basic) { aw_test_run(cp_basic_main, NULL, 0); }

static int cp_at_basic_main(void *arg) {
    aw_ns_t deadline = aw_now() + AW_MS(10), when = 0;
    aw_cm_t cm = aw_fail_at(deadline);
    aw_with (cm) {
        when = aw_effective_deadline();
        aw_sleep(AW_SEC(10));
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert(aw_scope_expired(cm.self));
    cr_assert_eq(when, deadline);
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_timeout_at_basic) { aw_test_run(cp_at_basic_main, NULL, 0); }

/* Two timeouts of the same deadline: only the topmost raises -ETIMEDOUT,
 * the inner lets the cancel through; both expired. */
static int cp_nested_main(void *arg) {
    aw_ns_t deadline = aw_now() + AW_MS(10);
    aw_cm_t cm1 = aw_fail_at(deadline), cm2 = aw_fail_at(deadline);
    int inner = 0;
    aw_with (cm1) {
        aw_with (cm2) aw_sleep(AW_SEC(10));
        inner = aw_status();
    }
    cr_assert_eq(inner, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert_eq(count_code(aw_err_current(), -ETIMEDOUT), 1);
    cr_assert(aw_scope_expired(cm1.self));
    cr_assert(aw_scope_expired(cm2.self));
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_nested_timeouts) { aw_test_run(cp_nested_main, NULL, 0); }

static int cp_waiter_main(void *arg) {
    int rc = 0;
    aw_with (aw_fail_after(AW_MS(10))) rc = aw_sleep(AW_SEC(10));
    cr_assert_eq(rc, -ECANCELED, "the waiter was cancelled");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_waiter_cancelled) { aw_test_run(cp_waiter_main, NULL, 0); }

static int cp_not_called_main(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_SEC(10));
    aw_ns_t when = 0;
    aw_with (cm) {
        when = aw_effective_deadline();
        aw_sleep_ms(10);
    }
    aw_ns_t t1 = aw_now();
    cr_assert_eq(aw_status(), 0);
    cr_assert_not(aw_scope_expired(cm.self));
    cr_assert_gt(when, t1);
    return 0;
}
Test(scope, cpython_test_timeout_not_called) { aw_test_run(cp_not_called_main, NULL, 0); }

static int cp_disabled_main(void *arg) {
    aw_cm_t cms[2] = {aw_fail_after(AW_NEVER), aw_fail_at(AW_NEVER)};
    for (int i = 0; i < 2; i++) {
        aw_ns_t when = 0;
        aw_with (cms[i]) {
            when = aw_effective_deadline();
            cr_assert_eq(aw_sleep_ms(10), 0);
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_not(aw_scope_expired(cms[i].self));
        cr_assert_eq(when, AW_NEVER);
    }
    return 0;
}
Test(scope, cpython_test_timeout_disabled_and_test_timeout_at_disabled) { aw_test_run(cp_disabled_main, NULL, 0); }

/* timeout(0) / timeout(-11) around sleep(10) or sleep(0): the first
 * suspension is cut, -ETIMEDOUT, expired, when() between t0 and t1. */
static int cp_zero_main(void *arg) {
    struct { aw_ns_t rel, sleep; } cases[] = {{0, AW_SEC(10)}, {0, 0}, {-AW_SEC(11), 0}};
    for (int i = 0; i < 3; i++) {
        aw_ns_t t0 = aw_now(), when = 0;
        aw_cm_t cm = aw_fail_after(cases[i].rel);
        aw_with (cm) {
            when = aw_effective_deadline();
            aw_sleep(cases[i].sleep);
        }
        aw_ns_t t1 = aw_now();
        cr_assert_eq(aw_status(), -ETIMEDOUT, "case %d: %s", i, aw_err_name(aw_status()));
        cr_assert(aw_scope_expired(cm.self), "case %d", i);
        cr_assert_leq(when, t1, "case %d", i);
        if (cases[i].rel == 0)
            cr_assert_geq(when, t0, "case %d", i);
        aw_err_clear();
    }
    return 0;
}
Test(scope, cpython_test_timeout_zero_and_zero_sleep_zero_and_in_the_past_sleep_zero) {
    aw_test_run(cp_zero_main, NULL, 0);
}

static int cp_foreign_passed_main(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_MS(10));
    aw_with (cm) aw_fail(-EACCES, "KeyError");
    cr_assert_eq(aw_status(), -EACCES);
    cr_assert_null(aw_err_current()->context);
    cr_assert_not(aw_scope_expired(cm.self));
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_foreign_exception_passed) { aw_test_run(cp_foreign_passed_main, NULL, 0); }

static int crash(void) {
    aw_sleep(AW_SEC(1));
    return aw_raise(-EDOM, "1/0 in finally");
}
static int cp_foreign_on_timeout_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(10))) crash();
    cr_assert_eq(aw_status(), -EDOM, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_foreign_exception_on_timeout) { aw_test_run(cp_foreign_on_timeout_main, NULL, 0); }

static int cp_foreign_cancel_child(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_SEC(10));
    aw_with (cm) {
        aw_task_cancel(aw_task_self());
        aw_sleep(AW_SEC(10));
    }
    cr_assert_eq(aw_status(), -ECANCELED);
    cr_assert_null(aw_err_find(aw_err_current(), -ETIMEDOUT));
    cr_assert_not(aw_scope_expired(cm.self));
    return aw_status();
}
static int cp_foreign_cancel_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_foreign_cancel_child, NULL, &t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_foreign_cancel_doesnt_timeout_if_not_expired) { aw_test_run(cp_foreign_cancel_main, NULL, 0); }

static int cp_outer_child(void *arg) {
    aw_with (aw_fail_after(AW_MS(1))) aw_sleep(AW_SEC(10));
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return aw_sleep_ms(1); /* the task itself is not cancelled */
}
static int cp_outer_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_outer_child, NULL, &t);
    cr_assert_eq(aw_task_join(t), 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, cpython_test_outer_task_is_not_cancelled) { aw_test_run(cp_outer_main, NULL, 0); }

/* The outer (2 ms) passes while the body crunches numbers without
 * suspending; the inner (100 ms) has not: only the outer times out. */
static int cp_concurrent_main(void *arg) {
    int inner = 0;
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_fail_after(AW_MS(100))) {
            spin_until(aw_now() + AW_MS(10));
            aw_sleep(AW_SEC(1));
        }
        inner = aw_status();
    }
    cr_assert_eq(inner, -ECANCELED, "the inner scope does not convert the outer's cancel");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_nested_timeouts_concurrent) { aw_test_run(cp_concurrent_main, NULL, 0); }

/* Both deadlines pass while the loop is busy: whatever the inner block
 * leaves, the next sleep in the outer block is cut by the outer, which
 * times out. */
static int cp_loop_busy_main(void *arg) {
    int inner = 0, after = 0;
    aw_with (aw_fail_after(AW_MS(100))) {
        aw_with (aw_fail_after(AW_MS(10))) {
            spin_until(aw_now() + AW_MS(100));
            aw_sleep(AW_SEC(1));
        }
        inner = aw_status();
        aw_err_clear();
        after = aw_sleep(AW_SEC(10));
    }
    cr_assert(inner == -ETIMEDOUT || inner == -ECANCELED, "got %s", aw_err_name(inner));
    cr_assert_eq(after, -ECANCELED, "the outer deadline cuts the sleep after the inner block");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_nested_timeouts_loop_busy) { aw_test_run(cp_loop_busy_main, NULL, 0); }

static aw_scope_t *cp_resched_scope;
static int cp_resched_child(void *arg) {
    aw_with (aw_scope_t *s, aw_fail_at(*(aw_ns_t *)arg)) {
        cp_resched_scope = s;
        aw_sleep(AW_SEC(50));
    }
    return aw_status();
}
static int cp_resched_main(void *arg) {
    aw_ns_t deadline1 = aw_now() + AW_SEC(10), deadline2 = deadline1 + AW_SEC(20);
    aw_task_t *t;
    aw_spawn(NULL, cp_resched_child, &deadline1, &t);
    aw_sleep_ms(1); /* the child is in its sleep */
    aw_scope_t *s = cp_resched_scope;
    cr_assert_not_null(s);
    cr_assert_eq(aw_scope_reschedule(s, deadline2), 0);
    cr_assert_eq(aw_scope_reschedule(s, AW_NEVER), 0);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_null(aw_err_find(aw_err_current(), -ETIMEDOUT), "not expired");
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_reschedule) { aw_test_run(cp_resched_main, NULL, 0); }

static int cp_cancel_in_timeout_child(void *arg) {
    aw_task_cancel(aw_task_self());
    aw_sleep(AW_SEC(1)); /* work which will be cancelled */
    aw_err_clear();
    aw_with (aw_fail_after(AW_SEC(1))) {
        aw_task_cancel(aw_task_self());
        aw_sleep(AW_SEC(2));
    }
    cr_assert_eq(aw_status(), -ECANCELED);
    return aw_status();
}
static int cp_cancel_in_timeout_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_cancel_in_timeout_child, NULL, &t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_cancel_in_timeout_after_cancellation) { aw_test_run(cp_cancel_in_timeout_main, NULL, 0); }

static int cp_cause_main(void *arg) {
    aw_with (aw_fail_after(0)) aw_sleep(AW_SEC(1));
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert_not_null(aw_err_current()->context);
    cr_assert_eq(aw_err_current()->context->code, -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_timeout_exception_cause) { aw_test_run(cp_cause_main, NULL, 0); }

static int cp_already_entered_main(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_MS(10));
    int ran = 0, st = 0;
    aw_with (cm) {
        aw_with (cm) ran = 1;
        st = aw_status();
        aw_err_clear();
    }
    cr_assert_eq(ran, 0);
    cr_assert_eq(st, -EBUSY, "got %s", aw_err_name(st));
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(scope, cpython_test_timeout_already_entered) { aw_test_run(cp_already_entered_main, NULL, 0); }

static int cp_double_enter_main(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_MS(10));
    int ran = 0;
    aw_with (cm) {
    }
    cr_assert_eq(aw_status(), 0);
    aw_with (cm) ran = 1;
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -EALREADY);
    cr_assert(strstr(aw_err_current()->msg, "already been entered"));
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_timeout_double_enter) { aw_test_run(cp_double_enter_main, NULL, 0); }

static int cp_finished_not_entered_main(void *arg) {
    aw_cm_t cm = aw_fail_after(AW_MS(10));
    cr_assert_eq(aw_scope_reschedule(cm.self, aw_now() + AW_MS(20)), -EINVAL, "not entered");
    aw_err_clear();
    aw_with (cm) {
    }
    cr_assert_eq(aw_scope_reschedule(cm.self, aw_now() + AW_MS(20)), -EINVAL, "finished");
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_timeout_finished_and_test_timeout_not_entered) { aw_test_run(cp_finished_not_entered_main, NULL, 0); }

/* test_timeout_without_task: a timeout entered outside a task fails
 * (-EPERM pending, the block skipped), and rescheduling it afterwards is
 * "not entered". */
Test(scope, cpython_test_timeout_without_task) {
    aw_cm_t cm = aw_fail_after(AW_MS(10));
    int ran = 0;
    aw_with (cm) ran = 1;
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -EPERM, "got %s", aw_err_name(aw_status()));
    cr_assert(strstr(aw_err_current()->msg, "task"), "%s", aw_err_current()->msg);
    aw_err_clear();
    cr_assert_eq(aw_scope_reschedule(cm.self, aw_now() + AW_MS(20)), -EINVAL);
    aw_err_clear();
}

/* test_timeout_taskgroup: a 10 ms timeout around a group whose child
 * crashes in its cleanup and whose body fails and then sleeps: the group
 * error holds the crash, and its chain reads timeout, cancel, body error
 * (Python: eg.__context__ is TimeoutError, caused by a CancelledError
 * raised while handling the ValueError). */
static int cp_tg_task(void *arg) {
    aw_sleep(AW_SEC(2));
    return aw_raise(-EDOM, "1/0 in cleanup");
}
static int cp_timeout_taskgroup_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(10)))
    aw_with (aw_group_t *tg, aw_group()) {
        aw_spawn(tg, cp_tg_task, NULL, NULL);
        aw_raise(-EINVAL, "ValueError");
        aw_sleep(AW_SEC(1)); /* finally: await asyncio.sleep(1) */
    }
    const aw_err_t *eg = aw_err_current();
    cr_assert_eq(eg->code, -AW_EGROUP);
    cr_assert_eq(eg->members->code, -EDOM);
    cr_assert_null(eg->members->next, "one failure");
    const aw_err_t *e1 = eg->context;
    cr_assert_not_null(e1);
    cr_assert_eq(e1->code, -ETIMEDOUT, "got %s", aw_err_name(e1->code));
    const aw_err_t *e2 = e1->context;
    cr_assert_not_null(e2);
    cr_assert_eq(e2->code, -ECANCELED);
    cr_assert_not_null(aw_err_find(e2, -EINVAL), "the ValueError below the cancel");
    aw_err_clear();
    return 0;
}
Test(scope, cpython_test_timeout_taskgroup) { aw_test_run(cp_timeout_taskgroup_main, NULL, 0); }
