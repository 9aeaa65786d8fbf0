/* tests of the pieces used together: gather, groups, exit stacks,
 * generators, generator managers, scopes, shields, locks and conditions.
 * Each piece has its own file; this one checks that the rules of
 * SEMANTICS.md still hold where two or three of them meet. Lines covered
 * (each test names the main one first): decisions 2, 3, 4, 5 and 7; A1,
 * A7, A11, A12; C6, C7, C8, C12, C13; D1, D2, D3, D9, D10, D12; E1, E4,
 * E6, E8; F5, F7; G1, G3, G4, G5, G6, G8, G9, G10, G11, G12, G13, G14;
 * H2, H3, H4, H5; I2, I3, I4, I5, I10, I12, I13; J2, J5, J6; K5; M3, M4,
 * M5, M8; (c) 10, (c) 13.
 *
 * Timing: a wait that must be cut is 5 s against a deadline of a few ms,
 * and what must finish before a deadline gets 200 ms; where the order of
 * two tasks matters, an event or a deadline moved to now sets it, not the
 * clock. A loaded machine (CI, Valgrind, ASan) cannot swap them. */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

/* ---- helpers ---- */

static char log_[512]; /* each test runs in a process of its own */
static void note(const char *s) {
    strcat(log_, s);
    strcat(log_, ";");
}

/* Enter of a manager that holds nothing. */
static int noop_enter(void *self, void **out) { return 0; }

/* Is there a member with this code in the group error e? */
static bool has_member(const aw_err_t *e, int code) {
    for (const aw_err_t *m = e ? e->members : NULL; m; m = m->next)
        if (m->code == code)
            return true;
    return false;
}

/* A generator manager whose cleanup waits 10 ms, then re-raises what the
 * block left with. */
static int slow_cleanup_gen(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    note(aw_sleep_ms(10) == 0 ? "cleanup-ok" : "cleanup-cut");
    return rc;
}

/* Open a group with one child that waits 2 ms; note whether the child's
 * wait ran to its end and whether the group raised anything. */
static int waiting_child(void *arg) {
    int rc = aw_sleep_ms(2);
    note(rc == 0 ? "child-ok" : "child-cut");
    return rc;
}
static void run_group_of_one(void) {
    const aw_err_t *before = aw_err_current();
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, waiting_child, NULL, NULL);
    }
    note(aw_err_current() == before ? "group-ok" : "group-failed");
}

/* ======================= gather ======================= */

/* I3, I12 through aw_gather (awith/gather.h): a member that fails makes
 * the call return -AW_EGROUP with that failure as a member, while the
 * member that cancelled itself (first, before the failure) only says
 * -ECANCELED in its slot and the member that finished keeps its value. */
static int gsc_fail(void *arg, void **value) {
    aw_sleep_ms(2);
    return aw_raise(-EIO, "member failed");
}
static int gsc_self_cancel(void *arg, void **value) {
    aw_task_cancel(aw_task_self());
    return aw_sleep(AW_SEC(5));
}
static int gsc_ok(void *arg, void **value) {
    *value = (void *)7;
    return 0;
}
static int gsc_main(void *arg) {
    aw_result_t r[] = {AW_RESULT(gsc_fail, NULL), AW_RESULT(gsc_self_cancel, NULL),
                       AW_RESULT(gsc_ok, NULL)};
    cr_assert_eq(aw_gather(r, 3), -AW_EGROUP);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert(has_member(e, -EIO), "the failure is a member of the group error");
    cr_assert_eq(r[0].status, -EIO);
    cr_assert_eq(r[1].status, -ECANCELED);
    cr_assert_eq(r[2].status, 0);
    cr_assert_eq(r[2].value, (void *)7);
    aw_err_clear();
    return 0;
}
Test(compose, I3_gather_fails_with_a_members_failure_when_another_member_cancelled_itself) {
    aw_test_run(gsc_main, NULL, 0);
}

/* G1 through aw_gather (awith/gather.h): a deadline that fires while
 * gather waits cancels the member still running and awaits it; gather
 * returns -ECANCELED, the member that had finished keeps status 0, the one
 * cut says -ECANCELED, and the deadline's block leaves with -ETIMEDOUT. */
static int gdl_member(void *arg, void **value) { return aw_sleep_ms((intptr_t)arg); }
static int gdl_main(void *arg) {
    aw_result_t r[] = {AW_RESULT(gdl_member, 1), AW_RESULT(gdl_member, 5000)};
    int rc = 1;
    aw_with (aw_fail_after(AW_MS(200))) {
        rc = aw_gather(r, 2);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert_eq(r[0].status, 0);
    cr_assert_eq(r[1].status, -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(compose, G1_a_deadline_around_gather_cancels_only_the_members_still_running) {
    aw_test_run(gdl_main, NULL, 0);
}

/* ======================= groups ======================= */

/* I2, I12, I5 with the group held by an exit stack instead of its own
 * aw_with (D1: an entry exits as the block would): the child's failure
 * cancels the stack's body, the group error leaves the stack, and the task
 * is not left cancelled after it. */
static int xsg_child(void *arg) {
    aw_sleep_ms(2);
    return aw_raise(-EIO, "child failed");
}
static int xsg_main(void *arg) {
    int slept = 1;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_group_t *g;
        cr_assert_eq(aw_exitstack_enter(st, aw_group(), (void **)&g), 0);
        cr_assert_eq(aw_spawn(g, xsg_child, NULL, NULL), 0);
        slept = aw_sleep(AW_SEC(5));
    }
    cr_assert_eq(slept, -ECANCELED, "the child's failure cut the body");
    cr_assert_eq(aw_status(), -AW_EGROUP);
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0, "the task is not left cancelled");
    return 0;
}
Test(compose, I2_a_group_entered_into_an_exit_stack_cancels_the_body_when_a_child_fails) {
    aw_test_run(xsg_main, NULL, 0);
}

/* D1, decision 2, I13: a group cancelled while a child unwinds an exit
 * stack: each callback's wait runs to its end (every entry exits
 * shielded), the child's first cancellation point after the stack sees
 * the cancel, and the group is left quietly. The first callback tells the
 * body that the unwind has begun, so the cancel lands inside it. */
static aw_event_t gxu_unwinding = AW_EVENT_INIT;
static int gxu_cb(void *arg) {
    aw_event_set(&gxu_unwinding);
    note(aw_sleep_ms(5) == 0 ? "cb-ok" : "cb-cut");
    return 0;
}
static int gxu_child(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, gxu_cb, NULL);
        aw_exitstack_callback(st, gxu_cb, NULL);
    }
    note("child-after");
    int rc = aw_sleep(AW_SEC(5));
    note(rc == -ECANCELED ? "child-cut" : "child-slept");
    return rc;
}
static int gxu_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_spawn(g, gxu_child, NULL, NULL), 0);
        cr_assert_eq(aw_event_wait(&gxu_unwinding), 0);
        aw_group_cancel(g);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "cb-ok;cb-ok;child-after;child-cut;");
    return 0;
}
Test(compose, D1_cancelling_a_group_does_not_cut_a_childs_exit_stack_unwind) {
    aw_test_run(gxu_main, NULL, 0);
}

/* A11, K5, decision 5, I12 across a task: a child returns an error from
 * inside two blocks whose exits then fail. Its status is what it returned,
 * so the group's one member has that code, and both exits' failures are
 * in that member's chain. */
static int cxf_exit(void *self, const aw_err_t *err) {
    int code = (int)(intptr_t)self;
    return aw_raise(code, "exit failed with %s", aw_err_name(code));
}
static const aw_cm_type_t cxf_type = {.name = "failing-exit", .enter = noop_enter, .exit = cxf_exit};
static int cxf_child(void *arg) {
    aw_with (aw_cm(&cxf_type, (void *)(intptr_t)-EPIPE)) {
        aw_with (aw_cm(&cxf_type, (void *)(intptr_t)-EBADF)) {
            aw_sleep_ms(1);
            return aw_raise(-EIO, "block failed");
        }
    }
    return 0;
}
static int cxf_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_spawn(g, cxf_child, NULL, NULL), 0);
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    const aw_err_t *m = e->members;
    cr_assert_not_null(m);
    cr_assert_eq(m->code, -EIO, "the child's returned code tops its member");
    cr_assert_not_null(aw_err_find(m, -EPIPE));
    cr_assert_not_null(aw_err_find(m, -EBADF));
    aw_err_clear();
    return 0;
}
Test(compose, A11_a_childs_returned_code_tops_its_exits_failures_in_the_group_error) {
    aw_test_run(cxf_main, NULL, 0);
}

/* awith/task.h's join, I2, I5: the body cancels a child by its handle and
 * joins it. The join returns the child's -ECANCELED; the group does not
 * count the child as a failure (a cancelled scope above it explains its
 * status), and the parent is not left cancelled. */
static int jcs_child(void *arg) { return aw_sleep(AW_SEC(5)); }
static int jcs_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_task_t *h;
        cr_assert_eq(aw_spawn(g, jcs_child, NULL, &h), 0);
        aw_yield(); /* the child starts and waits */
        aw_task_cancel(h);
        cr_assert_eq(aw_task_join(h), -ECANCELED);
        aw_err_clear(); /* handled: the join's copy of the child's record */
    }
    cr_assert_eq(aw_status(), 0, "the group raised nothing");
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(compose, I2_a_child_the_body_cancelled_and_joined_is_not_a_group_failure) {
    aw_test_run(jcs_main, NULL, 0);
}

/* M8, decision 4, I12: an exit inside a group's body spawns a child while
 * the body's error unwinds: the group takes it, the error leaving the body
 * cancels it at its first wait (it runs up to there), and the body's error
 * leaves the group as it is (a child the group cancelled is no failure). */
static aw_group_t *xsp_group;
static int xsp_child(void *arg) {
    note("child-ran");
    int rc = aw_sleep(AW_SEC(5));
    note(rc == -ECANCELED ? "child-cancelled" : "child-slept");
    return rc;
}
static int xsp_exit(void *self, const aw_err_t *err) {
    cr_assert_eq(aw_spawn(xsp_group, xsp_child, NULL, NULL), 0);
    return 0;
}
static const aw_cm_type_t xsp_type = {.name = "spawner", .enter = noop_enter, .exit = xsp_exit};
static int xsp_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        xsp_group = g;
        aw_with (aw_cm(&xsp_type, NULL)) {
            aw_fail(-EIO, "block failed");
        }
    }
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_str_eq(log_, "child-ran;child-cancelled;");
    aw_err_clear();
    return 0;
}
Test(compose, M8_an_exit_may_spawn_into_the_group_its_blocks_error_then_cancels) {
    aw_test_run(xsp_main, NULL, 0);
}

/* G6, G14: a child moves the deadline of a scope around its group to now
 * while the parent waits to join it: the parent's join is cut at once
 * (rescheduling from another task re-arms the owner's wait), the child's
 * own next wait is cut too (the scope covers the group's tasks), and the
 * move-on scope is left quietly. The scope starts with no deadline and the
 * child holds out, shielded, until the parent lets it go: only the re-armed
 * deadline can end the join (without it the test hangs until Criterion's
 * timeout fails it). */
static aw_scope_t *rsj_scope;
static aw_event_t rsj_release = AW_EVENT_INIT;
static int rsj_child_rc = 1, rsj_child_done;
static int rsj_child(void *arg) {
    aw_sleep_ms(1);
    cr_assert_eq(aw_scope_reschedule(rsj_scope, aw_now()), 0);
    aw_with (aw_shield(AW_SEC(5))) {
        aw_event_wait(&rsj_release);
    }
    rsj_child_rc = aw_sleep(AW_SEC(5));
    rsj_child_done = 1;
    return rsj_child_rc;
}
static int rsj_main(void *arg) {
    int joined = 1, done_at_join = -1;
    aw_with (aw_scope_t *s, aw_move_on_at(AW_NEVER)) {
        rsj_scope = s;
        aw_with (aw_group_t *g, aw_group()) {
            aw_task_t *h;
            cr_assert_eq(aw_spawn(g, rsj_child, NULL, &h), 0);
            joined = aw_task_join(h);
            done_at_join = rsj_child_done;
            aw_event_set(&rsj_release);
        }
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(joined, -ECANCELED);
    cr_assert_eq(done_at_join, 0, "the join was cut, not ended by the child");
    cr_assert_eq(rsj_child_rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(compose, G6_a_child_moving_its_parents_deadline_to_now_cuts_the_parents_join) {
    aw_test_run(rsj_main, NULL, 0);
}

/* decision 2, G14 (a shield ends the scope chain): an exit of a block a
 * cancel unwinds opens a group; the group's children are inside the
 * exit's shield, so their waits run to their end and the group raises
 * nothing. */
static int gie_exit(void *self, const aw_err_t *err) {
    run_group_of_one();
    return 0;
}
static const aw_cm_type_t gie_type = {.name = "group-in-exit", .enter = noop_enter, .exit = gie_exit};
static int gie_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_cm(&gie_type, NULL)) {
            aw_scope_cancel(s);
            aw_sleep(AW_SEC(5));
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "child-ok;group-ok;");
    return 0;
}
Test(compose, decision2_a_group_opened_in_an_exit_of_a_cancelled_block_runs_shielded) {
    aw_test_run(gie_main, NULL, 0);
}

/* The same after the exit has suspended once: an exit's shield takes its
 * grace from its first suspension, so a group opened before it and one
 * opened after it are two different paths (decision 2). */
static int gia_exit(void *self, const aw_err_t *err) {
    aw_sleep_ms(1);
    run_group_of_one();
    return 0;
}
static const aw_cm_type_t gia_type = {.name = "group-after-wait", .enter = noop_enter, .exit = gia_exit};
static int gia_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_cm(&gia_type, NULL)) {
            aw_scope_cancel(s);
            aw_sleep(AW_SEC(5));
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "child-ok;group-ok;");
    return 0;
}
Test(compose, decision2_a_group_opened_in_an_exit_after_it_waited_runs_shielded) {
    aw_test_run(gia_main, NULL, 0);
}

/* H4, G14: a group opened in an aw_shield inside a cancelled scope: the
 * shield hides the cancel from the group's children too, so their waits
 * run to their end and the group raises nothing. */
static int gis_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_with (aw_shield(AW_NEVER)) {
            run_group_of_one();
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "child-ok;group-ok;");
    return 0;
}
Test(compose, H4_a_group_opened_in_a_shield_inside_a_cancelled_scope_runs_its_children) {
    aw_test_run(gis_main, NULL, 0);
}

/* ======================= exit stacks ======================= */

/* decision 2, D1, D10: closing an exit stack by hand in a scope that was
 * just cancelled runs its callback in its exit shield (its wait is not
 * cut), and the stack's own exit then has nothing left to do. */
static int xsc_cb(void *arg) {
    note(aw_sleep_ms(2) == 0 ? "cb-ok" : "cb-cut");
    return 0;
}
static int xsc_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            cr_assert_eq(aw_exitstack_callback(st, xsc_cb, NULL), 0);
            aw_scope_cancel(s);
            cr_assert_eq(aw_exitstack_close(st), 0);
            note("after-close");
        }
    }
    cr_assert_str_eq(log_, "cb-ok;after-close;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, D1_an_exit_stack_closed_in_a_cancelled_scope_runs_its_callbacks_shielded) {
    aw_test_run(xsc_main, NULL, 0);
}

/* A12, D3, decision 3: an exit callback that answers AW_SUPPRESS to the
 * -ECANCELED unwinding its stack does not swallow it: -ECANCELED leaves
 * the stack, the scope stays cancelled (its next wait is cut again), and
 * only leaving the cancel scope ends it. */
static int xss_cb(void *arg, const aw_err_t *err) {
    note(err ? aw_err_name(err->code) : "clean");
    return err ? AW_SUPPRESS : 0;
}
static int xss_main(void *arg) {
    int after_stack = 0, next_wait = 0;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            cr_assert_eq(aw_exitstack_push_exit(st, xss_cb, NULL), 0);
            aw_scope_cancel(s);
            aw_sleep_ms(1);
        }
        after_stack = aw_status();
        next_wait = aw_sleep(AW_SEC(5));
    }
    cr_assert_eq(after_stack, -ECANCELED, "the callback did not swallow the cancel");
    cr_assert_eq(next_wait, -ECANCELED, "the scope is still cancelled");
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "ECANCELED;");
    return 0;
}
Test(compose, A12_an_exit_stack_callback_suppressing_a_cancel_lets_it_through) {
    aw_test_run(xss_main, NULL, 0);
}

/* D9, M5, G1: a deadline scope entered into an exit stack and moved by
 * pop_all outlives the stack's block: after the block it still covers the
 * task (its deadline cuts a wait there); closing the new stack runs its
 * exit, which leaves -ETIMEDOUT; and no cancel lingers after that. */
static int dpa_main(void *arg) {
    aw_exitstack_t dst = {0};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_fail_after(AW_MS(5)), NULL), 0);
        aw_exitstack_pop_all(st, &dst);
    }
    cr_assert_eq(aw_status(), 0, "the old stack had nothing to do");
    cr_assert_eq(aw_sleep(AW_SEC(5)), -ECANCELED, "the moved deadline still covers the task");
    cr_assert_eq(aw_exitstack_close(&dst), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0, "no cancel lingers after the close");
    return 0;
}
Test(compose, D9_a_deadline_moved_by_pop_all_covers_the_task_until_its_new_stack_closes) {
    aw_test_run(dpa_main, NULL, 0);
}

/* decision 2, D12: the task is cancelled while its exit stack holds a
 * manager whose exit waits longer than its 5 ms grace: that wait is cut
 * at the grace, the entry below still runs and receives -ECANCELED, and
 * the cancel leaves on top with the manager's -ETIMEDOUT in its chain. */
static int xog_exit(void *self, const aw_err_t *err) {
    note(aw_sleep(AW_SEC(5)) == 0 ? "exit-slept" : "exit-cut");
    return 0;
}
static const aw_cm_type_t xog_type = {
    .name = "slow-exit", .enter = noop_enter, .exit = xog_exit, .grace = AW_MS(5)};
static int xog_cb(void *arg, const aw_err_t *err) {
    note(err ? aw_err_name(err->code) : "clean");
    return 0;
}
static int xog_main(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_push_exit(st, xog_cb, NULL), 0);
        cr_assert_eq(aw_exitstack_enter(st, aw_cm(&xog_type, NULL), NULL), 0);
        aw_task_cancel(aw_task_self());
        aw_sleep(AW_SEC(5));
    }
    cr_assert_eq(aw_status(), -ECANCELED);
    cr_assert_not_null(aw_err_find(aw_err_current(), -ETIMEDOUT));
    cr_assert_str_eq(log_, "exit-cut;ECANCELED;");
    aw_err_clear();
    return 0;
}
Test(compose, decision2_an_exit_stack_entry_over_its_grace_keeps_the_cancel_on_top) {
    aw_test_run(xog_main, NULL, 0);
}

/* J5, D2: an exit stack asked to enter a lock it already holds gets
 * -EDEADLK at once, pushes nothing, and releases the lock once. */
static aw_lock_t xl2_lock = AW_LOCK_INIT("xl2");
static int xl2_main(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_locked(&xl2_lock), NULL), 0);
        cr_assert_eq(aw_exitstack_enter(st, aw_locked(&xl2_lock), NULL), -EDEADLK);
        cr_assert_eq(aw_exitstack_size(st), 1);
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&xl2_lock));
    return 0;
}
Test(compose, J5_an_exit_stack_entering_a_lock_it_holds_is_refused_and_pushes_nothing) {
    aw_test_run(xl2_main, NULL, 0);
}

/* decision 7, C8, D2: a generator manager entered into an exit stack
 * whose setup a deadline cuts fails enter with -ECANCELED: nothing is
 * pushed (its cleanup never runs), the entry pushed before still runs,
 * and the move-on scope absorbs the cancel. */
static int gcs_gen(aw_gencm_t *g, void *arg) {
    note("setup");
    if (aw_sleep(AW_SEC(5)) < 0)
        return aw_status();
    int rc = aw_gencm_yield(g, NULL);
    note("cleanup");
    return rc;
}
static int gcs_cb(void *arg) {
    note("cb");
    return 0;
}
static int gcs_main(void *arg) {
    aw_with (aw_move_on_after(AW_MS(2))) {
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            cr_assert_eq(aw_exitstack_callback(st, gcs_cb, NULL), 0);
            cr_assert_eq(aw_exitstack_enter(st, aw_gencm(gcs_gen, NULL), NULL), -ECANCELED);
            cr_assert_eq(aw_exitstack_size(st), 1);
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "setup;cb;");
    return 0;
}
Test(compose, decision7_a_generator_manager_cut_in_its_setup_is_not_pushed) {
    aw_test_run(gcs_main, NULL, 0);
}

/* ======================= generator managers ======================= */

/* C13, G12, G1: a deadline around a generator manager whose cleanup waits:
 * the deadline cuts the block, not the cleanup; the block is left only
 * after the cleanup (so at least the deadline plus the cleanup's wait
 * after it began) and with -ETIMEDOUT. */
static int gcw_main(void *arg) {
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_gencm(slow_cleanup_gen, NULL)) {
            aw_sleep(AW_SEC(5));
        }
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_str_eq(log_, "cleanup-ok;");
    cr_assert_geq(aw_now() - t0, AW_MS(15));
    return 0;
}
Test(compose, C13_a_deadline_around_a_generator_manager_waits_for_its_cleanup) {
    aw_test_run(gcw_main, NULL, 0);
}

/* C12, C13, G1: the decorator form under a deadline: the deadline cuts
 * the function, aw_gencm_call returns the -ECANCELED that left its block,
 * the generator's cleanup is not cut, and the deadline's block leaves with
 * -ETIMEDOUT. */
static int gcd_fn(void *arg) { return aw_sleep(AW_SEC(5)); }
static int gcd_main(void *arg) {
    int rc = 1;
    aw_with (aw_fail_after(AW_MS(3))) {
        rc = aw_gencm_call(slow_cleanup_gen, NULL, gcd_fn, NULL);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert_str_eq(log_, "cleanup-ok;");
    aw_err_clear();
    return 0;
}
Test(compose, C12_the_decorator_form_under_a_deadline_waits_for_the_cleanup) {
    aw_test_run(gcd_main, NULL, 0);
}

/* M3, D3, C6: an exit stack that a generator manager holds open around its
 * yield receives the block's error in its exit callback, and returning
 * aw_status() re-raises that record unchanged: one record leaves, no
 * wrapper, no copy. */
static int gxs_cb(void *arg, const aw_err_t *err) {
    note(err ? aw_err_name(err->code) : "clean");
    return 0;
}
static int gxs_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, gxs_cb, NULL);
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int gxs_main(void *arg) {
    aw_with (aw_gencm(gxs_gen, NULL)) {
        aw_fail(-EIO, "block failed");
    }
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    cr_assert_str_eq(log_, "EIO;");
    aw_err_clear();
    return 0;
}
Test(compose, M3_an_exit_stack_around_a_generator_managers_yield_sees_the_blocks_error) {
    aw_test_run(gxs_main, NULL, 0);
}

/* G11, C13, C7: a generator manager's cleanup opens a deadline of its own:
 * inside the exit shield that deadline still cuts the cleanup's wait (the
 * shield hides only what is outside it), and its -ETIMEDOUT is kept:
 * returning the block's code after raising it fails the block with a new
 * -EIO record, the timeout and, below it, the block's own error in its
 * chain. */
static int cod_gen(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    aw_with (aw_fail_after(AW_MS(2))) {
        note(aw_sleep(AW_SEC(5)) == 0 ? "slept" : "cut");
    }
    return rc;
}
static int cod_main(void *arg) {
    aw_with (aw_gencm(cod_gen, NULL)) {
        aw_fail(-EIO, "block failed");
    }
    cr_assert_eq(aw_status(), -EIO);
    const aw_err_t *timeout = aw_err_find(aw_err_current(), -ETIMEDOUT);
    cr_assert_not_null(timeout, "the cleanup's own timeout is kept");
    cr_assert_not_null(aw_err_find(timeout, -EIO), "the block's error is below it");
    cr_assert_str_eq(log_, "cut;");
    aw_err_clear();
    return 0;
}
Test(compose, G11_a_generator_managers_cleanup_is_bounded_by_its_own_deadline) {
    aw_test_run(cod_main, NULL, 0);
}

/* G5, M3: a deadline the generator manager opens around its yield covers
 * the block; a block that handles each -ECANCELED and waits again is cut
 * at every wait (level-triggered) and still leaves with -ETIMEDOUT; after
 * the block nothing is cut. */
static int lvl_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int lvl_main(void *arg) {
    int cuts = 0;
    aw_with (aw_gencm(lvl_gen, NULL)) {
        for (int i = 0; i < 5; i++)
            if (aw_sleep(AW_SEC(5)) == -ECANCELED)
                cuts++;
    }
    cr_assert_eq(cuts, 5);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(compose, G5_a_deadline_around_a_generator_managers_yield_cuts_every_wait_of_the_block) {
    aw_test_run(lvl_main, NULL, 0);
}

/* G8, C8: with a cancel pending, a zero move-on deadline in a generator
 * manager's setup leaves with -ECANCELED (not quietly), so the setup fails
 * with it: the block never runs and the task is still cancelled. */
static int zmo_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_move_on_after(0)) {
        aw_sleep_ms(1);
    }
    if (aw_status() < 0)
        return aw_status();
    return aw_gencm_yield(g, NULL);
}
static int zmo_main(void *arg) {
    int ran = 0;
    aw_task_cancel(aw_task_self());
    aw_with (aw_gencm(zmo_gen, NULL)) {
        ran = 1;
    }
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -ECANCELED);
    cr_assert(aw_cancel_pending(), "the task is still cancelled");
    return aw_status();
}
Test(compose, G8_a_zero_move_on_in_a_generator_managers_setup_keeps_a_pending_cancel) {
    aw_test_run(zmo_main, NULL, -ECANCELED);
}

/* ======================= async generators ======================= */

/* E1, E4, (c) 13: `break` closes the generator before the next
 * statement, and a failure of its cleanup (after a wait) is not lost: it
 * is the consumer's pending error after the loop. */
static int gbrk_gen(aw_gen_t *g, void *arg) {
    for (int i = 0; i < 5; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    aw_sleep_ms(1);
    return aw_raise(-EIO, "cleanup failed");
}
static int gbrk_main(void *arg) {
    aw_for (int *v, aw_gen(gbrk_gen, NULL)) {
        if (*v == 1)
            break;
    }
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    return 0;
}
Test(compose, E1_a_generators_cleanup_failing_after_break_reaches_the_consumer) {
    aw_test_run(gbrk_main, NULL, 0);
}

/* E1, G1: a generator holding a lock across its yields, consumed under a
 * deadline: when the deadline cuts the consumer, leaving the for closes
 * the generator, whose cleanup runs shielded (its wait is not cut by the
 * expired deadline) and releases the lock; the block leaves with
 * -ETIMEDOUT. The deadline leaves the generator ample time to take the
 * lock (a cancellation point) and hand out its first item. */
static aw_lock_t glk_lock = AW_LOCK_INIT("glk");
static int glk_gen(aw_gen_t *g, void *arg) {
    aw_with (aw_locked(&glk_lock)) {
        for (int i = 0;; i++)
            if (aw_gen_yield(g, &i) < 0)
                break;
        note(aw_sleep_ms(2) == 0 ? "cleanup-ok" : "cleanup-cut");
    }
    return aw_status();
}
static int glk_main(void *arg) {
    int items = 0;
    aw_with (aw_fail_after(AW_MS(200))) {
        aw_for (int *v, aw_gen(glk_gen, NULL)) {
            items++;
            cr_assert_not_null(aw_lock_owner(&glk_lock), "held across the yield");
            if (aw_sleep(AW_SEC(5)) < 0)
                break;
        }
    }
    cr_assert_eq(items, 1);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_null(aw_lock_owner(&glk_lock));
    cr_assert_str_eq(log_, "cleanup-ok;");
    return 0;
}
Test(compose, E1_a_generator_holding_a_lock_releases_it_when_a_deadline_cuts_its_consumer) {
    aw_test_run(glk_main, NULL, 0);
}

/* E1, decision 3: a consumer cancelled while it iterates a generator that
 * iterates another: closing the outer closes the inner (from the outer's
 * cleanup), both cleanups run shielded, and the cancel scope absorbs its
 * own cancel. Returning the close's code from the outer generator answers
 * the close cleanly (awith/gen.h). */
static int ngen_inner(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    note(aw_sleep_ms(1) == 0 ? "inner-clean" : "inner-cut");
    return 0;
}
static int ngen_outer(aw_gen_t *g, void *arg) {
    aw_for (int *v, aw_gen(ngen_inner, NULL)) {
        if (aw_gen_yield(g, v) < 0)
            break;
    }
    note(aw_sleep_ms(1) == 0 ? "outer-clean" : "outer-cut");
    return aw_status();
}
static int ngen_main(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_for (int *v, aw_gen(ngen_outer, NULL)) {
            if (*v == 2) {
                aw_scope_cancel(s);
                if (aw_sleep_ms(1) < 0)
                    break;
            }
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "inner-clean;outer-clean;");
    return 0;
}
Test(compose, E1_nested_generators_cut_by_a_cancel_both_clean_up_shielded) {
    aw_test_run(ngen_main, NULL, 0);
}

/* E8's boundary: what it refuses is a generator's own yield inside a
 * scope it opened. A generator that opens a deadline and consumes another
 * generator inside it is fine (the inner one yields to it, not through
 * the scope), and it yields its result once the scope is left. */
static int gin_inner(aw_gen_t *g, void *arg) {
    for (int i = 0; i < 3; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    return 0;
}
static int gin_outer(aw_gen_t *g, void *arg) {
    int sum = 0;
    aw_with (aw_fail_after(AW_SEC(5))) {
        aw_for (int *v, aw_gen(gin_inner, NULL)) {
            sum += *v;
        }
    }
    if (aw_status() < 0)
        return aw_status();
    aw_gen_yield(g, &sum);
    return 0;
}
static int gin_main(void *arg) {
    int got = -1;
    aw_for (int *v, aw_gen(gin_outer, NULL)) {
        got = *v;
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(got, 3);
    return 0;
}
Test(compose, E8_a_generator_may_consume_another_inside_a_scope_it_opened) {
    aw_test_run(gin_main, NULL, 0);
}

/* E8, M3, (c) 10: a deadline opened by a generator manager that a
 * generator holds around its own yield is a scope of the generator: the
 * yield is refused with -AW_EPROTOCOL, the consumer's body never runs,
 * and the deadline never reaches the consumer later. */
static int gys_rc = 1;
static int gys_cm(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int gys_gen(aw_gen_t *g, void *arg) {
    aw_with (aw_gencm(gys_cm, NULL)) {
        int i = 1;
        gys_rc = aw_gen_yield(g, &i);
    }
    return aw_status();
}
static int gys_main(void *arg) {
    int items = 0;
    aw_for (int *v, aw_gen(gys_gen, NULL)) {
        items++;
    }
    cr_assert_eq(gys_rc, -AW_EPROTOCOL, "refused at the yield");
    cr_assert_eq(items, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(20), 0, "the generator's deadline never reaches the consumer");
    return 0;
}
Test(compose, E8_a_yield_inside_a_scope_of_a_generator_manager_it_holds_is_refused) {
    aw_test_run(gys_main, NULL, 0);
}

/* E1, E6: a generator driven by hand and closed by hand inside a cancelled
 * scope: aw_gen_close runs the cleanup shielded (its wait is not cut),
 * returns 0, and the cancel scope is left with nothing pending. */
static int gcl_gen(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    note(aw_sleep_ms(2) == 0 ? "cleanup-ok" : "cleanup-cut");
    return 0;
}
static int gcl_main(void *arg) {
    aw_gen_t g = aw_gen(gcl_gen, NULL);
    void *v;
    cr_assert_eq(aw_gen_next(&g, &v), 1);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert_eq(aw_gen_close(&g), 0);
    }
    cr_assert_str_eq(log_, "cleanup-ok;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, E1_a_generator_closed_by_hand_in_a_cancelled_scope_cleans_up_shielded) {
    aw_test_run(gcl_main, NULL, 0);
}

/* E1, E6, awith/gen.h's aw_gen_next: a generator runs inside the scopes of
 * the task driving it, so a move-on deadline around aw_gen_next cuts the
 * generator's own wait; the generator decides (here it ends with the
 * cancel), next returns that error, the move-on scope absorbs it, and the
 * finished generator then answers next and close with 0. */
static int gnx_gen(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++) {
        if (aw_sleep(AW_SEC(5)) < 0) {
            note("gen-saw-cancel");
            return aw_status();
        }
        if (aw_gen_yield(g, &i) < 0)
            break;
    }
    return 0;
}
static int gnx_main(void *arg) {
    aw_gen_t g = aw_gen(gnx_gen, NULL);
    void *v;
    int rc = 1;
    aw_with (aw_move_on_after(AW_MS(2))) {
        rc = aw_gen_next(&g, &v);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "gen-saw-cancel;");
    cr_assert_eq(aw_gen_next(&g, &v), 0, "finished");
    cr_assert_eq(aw_gen_close(&g), 0);
    return 0;
}
Test(compose, E1_a_move_on_around_a_generators_next_cuts_the_generators_wait) {
    aw_test_run(gnx_main, NULL, 0);
}

/* E1, H5, A1: `return` from inside an aw_for inside an aw_with closes the
 * generator (its cleanup waits) before the with's exit runs, and the
 * function still returns its value. */
static int rfw_gen(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    aw_sleep_ms(1);
    note("gen-closed");
    return 0;
}
static int rfw_exit(void *self, const aw_err_t *err) {
    note("with-exit");
    return 0;
}
static const aw_cm_type_t rfw_type = {.name = "recorder", .enter = noop_enter, .exit = rfw_exit};
static int rfw_fn(void) {
    aw_with (aw_cm(&rfw_type, NULL)) {
        aw_for (int *v, aw_gen(rfw_gen, NULL)) {
            if (*v == 2)
                return 42;
        }
    }
    return 0;
}
static int rfw_main(void *arg) {
    cr_assert_eq(rfw_fn(), 42);
    cr_assert_str_eq(log_, "gen-closed;with-exit;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, E1_return_from_a_for_inside_a_with_closes_the_generator_before_the_exit) {
    aw_test_run(rfw_main, NULL, 0);
}

/* ======================= scopes, shields, conditions ======================= */

/* G13, H4, A7: in a move-on scope whose deadline passes while a shield
 * covers the task, the shielded wait runs to its end, an exit there may
 * wait and suppress the block's error, and the deadline reaches the first
 * cancellation point after the shield; the move-on scope is then left
 * quietly. */
static int sis_exit(void *self, const aw_err_t *err) {
    note(aw_sleep_ms(1) == 0 ? "sup-slept" : "sup-cut");
    return err ? AW_SUPPRESS : 0;
}
static const aw_cm_type_t sis_type = {.name = "suppressor", .enter = noop_enter, .exit = sis_exit};
static int sis_main(void *arg) {
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(3))) {
        aw_with (aw_shield(AW_NEVER)) {
            aw_with (aw_cm(&sis_type, NULL)) {
                note(aw_sleep_ms(6) == 0 ? "shielded-slept" : "shielded-cut");
                aw_fail(-EIO, "block failed");
            }
            note("after-sup");
        }
        note(aw_sleep(AW_SEC(5)) == -ECANCELED ? "outer-cut" : "outer-slept");
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "shielded-slept;sup-slept;after-sup;outer-cut;");
    return 0;
}
Test(compose, G13_an_exit_suppressing_inside_a_shield_inside_an_expired_move_on) {
    aw_test_run(sis_main, NULL, 0);
}

/* M4: an exit failing while a fired move-on deadline unwinds the block:
 * the move-on scope absorbs only its own cancel, so the exit's failure
 * leaves it, with the -ECANCELED in its chain. */
static int mof_exit(void *self, const aw_err_t *err) { return aw_raise(-EIO, "exit failed"); }
static const aw_cm_type_t mof_type = {.name = "failing-close", .enter = noop_enter, .exit = mof_exit};
static int mof_main(void *arg) {
    aw_with (aw_move_on_after(AW_MS(2))) {
        aw_with (aw_cm(&mof_type, NULL)) {
            aw_sleep(AW_SEC(5));
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EIO);
    cr_assert_not_null(aw_err_find(e, -ECANCELED));
    aw_err_clear();
    return 0;
}
Test(compose, M4_an_exit_failing_after_a_move_on_fired_leaves_with_the_cancel_in_its_chain) {
    aw_test_run(mof_main, NULL, 0);
}

/* F5, F7, decision 2: an exit of a block a cancel unwinds waits on an
 * event, a lock and a join, each a cancellation point elsewhere; in the
 * exit's shield none of them is cut. */
static aw_event_t xw_event = AW_EVENT_INIT;
static aw_lock_t xw_lock = AW_LOCK_INIT("xw");
static aw_task_t *xw_setter_task;
static int xw_setter(void *arg) {
    aw_with (aw_shield(AW_NEVER)) {
        aw_with (aw_locked(&xw_lock)) {
            aw_sleep_ms(3);
            aw_event_set(&xw_event);
        }
    }
    return 0;
}
static int xw_exit(void *self, const aw_err_t *err) {
    note(aw_event_wait(&xw_event) == 0 ? "event-ok" : "event-cut");
    int rc = aw_lock_acquire(&xw_lock);
    note(rc == 0 ? "lock-ok" : "lock-cut");
    if (rc == 0)
        aw_lock_release(&xw_lock);
    note(aw_task_join(xw_setter_task) == 0 ? "join-ok" : "join-cut");
    return 0;
}
static const aw_cm_type_t xw_type = {.name = "waiting-exit", .enter = noop_enter, .exit = xw_exit};
static int xw_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_spawn(g, xw_setter, NULL, &xw_setter_task), 0);
        aw_with (aw_scope_t *s, aw_cancel_scope()) {
            aw_with (aw_cm(&xw_type, NULL)) {
                aw_yield(); /* the setter takes the lock */
                aw_scope_cancel(s);
                aw_sleep(AW_SEC(5));
            }
        }
    }
    cr_assert_str_eq(log_, "event-ok;lock-ok;join-ok;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, F5_an_exit_of_a_cancelled_block_waits_on_an_event_a_lock_and_a_join) {
    aw_test_run(xw_main, NULL, 0);
}

/* J6, G13 with the lock contended: a condition wait cut by a move-on
 * deadline while another task holds the lock returns -ECANCELED only once
 * it holds the lock again, so the block's exit releases a lock it holds;
 * the move-on scope is left quietly. The holder, once it has the lock the
 * wait gave up, moves the deadline to now and keeps the lock (shielded)
 * until the deadline has fired: the re-take always has to wait for it. */
static aw_lock_t cwm_lock = AW_LOCK_INIT("cwm");
static aw_cond_t cwm_cond = AW_COND_INIT(&cwm_lock);
static aw_scope_t *cwm_scope;
static int cwm_holder(void *arg) {
    aw_with (aw_locked(&cwm_lock)) {
        cr_assert_eq(aw_scope_reschedule(cwm_scope, aw_now()), 0);
        aw_with (aw_shield(AW_SEC(5))) {
            while (!aw_scope_expired(cwm_scope))
                aw_sleep_ms(1);
        }
    }
    return 0;
}
static int cwm_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_with (aw_scope_t *s, aw_move_on_at(AW_NEVER)) {
            cwm_scope = s;
            aw_with (aw_locked(&cwm_lock)) {
                cr_assert_eq(aw_spawn(g, cwm_holder, NULL, NULL), 0);
                cr_assert_eq(aw_cond_wait(&cwm_cond), -ECANCELED);
                cr_assert_eq(aw_lock_owner(&cwm_lock), aw_task_self());
            }
            cr_assert(aw_scope_expired(s));
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&cwm_lock));
    return 0;
}
Test(compose, J6_a_cond_wait_cut_by_a_move_on_retakes_the_lock_from_its_holder) {
    aw_test_run(cwm_main, NULL, 0);
}
/* ======= G-M lines combined: deadlines, shields, groups, exits, locks ======= */

/* A manager whose exit records what it received, optionally sleeps, and
 * fails with exit_rc when negative. */
typedef struct pgrec { int exit_rc, exit_sleep_ms, seen, sleep_rc, exited; } pgrec_t;
static int pgrec_enter(void *self, void **out) { *out = self; return 0; }
static int pgrec_exit(void *self, const aw_err_t *err) {
    pgrec_t *r = self;
    r->exited++;
    r->seen = err ? err->code : 0;
    if (r->exit_sleep_ms)
        r->sleep_rc = aw_sleep_ms(r->exit_sleep_ms);
    if (r->exit_rc < 0)
        return aw_raise(r->exit_rc, "pgrec exit failed");
    return 0;
}
static const aw_cm_type_t pgrec_type = {.name = "pgrec", .enter = pgrec_enter, .exit = pgrec_exit};

/* G11 with H2, I2, I3: in a group member cancelled by a sibling's failure,
 * a deadline inside a shield still fires on its own (-ETIMEDOUT, the
 * cleanup's only), the group's cancel arrives after the shield, and the
 * member's exit failing while that cancel unwinds it is a member of the
 * group error after the sibling's failure, not dropped as a cancel. */
static pgrec_t p3_rec = {.exit_rc = -EIO};
static int p3_rc = 1, p3_st = 1, p3_after = 1;
static int p3_a(void *arg) {
    aw_with (aw_cm(&pgrec_type, &p3_rec)) {
        aw_with (aw_shield(AW_NEVER)) {
            aw_with (aw_fail_after(AW_MS(20))) {
                p3_rc = aw_sleep(AW_SEC(5));
            }
            p3_st = aw_status();
            aw_err_clear();
        }
        p3_after = aw_checkpoint();
    }
    return aw_status();
}
static int p3_b(void *arg) {
    aw_sleep_ms(2);
    return aw_raise(-EPIPE, "b failed");
}
static int p3_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, p3_a, NULL, NULL);
        aw_spawn(g, p3_b, NULL, NULL);
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(p3_rc, -ECANCELED);
    cr_assert_eq(p3_st, -ETIMEDOUT, "own deadline in the shield: got %s", aw_err_name(p3_st));
    cr_assert_eq(p3_after, -ECANCELED);
    cr_assert_eq(p3_rec.seen, -ECANCELED);
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    const aw_err_t *m = e->members;
    cr_assert_not_null(m);
    cr_assert_eq(m->code, -EPIPE);
    cr_assert_not_null(m->next, "the exit's failure is a member too");
    cr_assert_eq(m->next->code, -EIO);
    cr_assert_null(m->next->next);
    aw_err_clear();
    return 0;
}
Test(compose, G11_a_deadline_in_a_shield_in_a_cancelled_member_fires_and_its_failing_exit_is_kept) { aw_test_run(p3_main, NULL, 0); }

/* G10 with M4, I4: a deadline around a group fires; a child's exit fails
 * (after a shielded 5 ms) while the cancel unwinds it: the group error
 * leaves the fail-after with the -ETIMEDOUT kept in its chain, and
 * nothing lingers after the block. */
static pgrec_t p4_rec = {.exit_rc = -EIO, .exit_sleep_ms = 5};
static int p4_kid(void *arg) {
    aw_with (aw_cm(&pgrec_type, &p4_rec)) {
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int p4_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, p4_kid, NULL, NULL);
            aw_sleep(AW_SEC(5));
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP, "got %s", aw_err_name(e->code));
    cr_assert_eq(e->members->code, -EIO);
    cr_assert_eq(p4_rec.sleep_rc, 0);
    cr_assert_not_null(aw_err_find(e, -ETIMEDOUT), "the timeout stays visible");
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(compose, G10_a_childs_exit_failing_under_a_deadline_around_its_group_keeps_the_timeout) { aw_test_run(p4_main, NULL, 0); }

/* H3 with J6: an exit is shielded, so a cancelled task's exit can wait
 * for a lock another task holds, get it, and give it back. */
static aw_lock_t p6_lk = AW_LOCK_INIT("p6");
static int p6_acq = 1, p6_owned;
static int p6_exit(void *self, const aw_err_t *err) {
    p6_acq = aw_lock_acquire(&p6_lk);
    if (p6_acq == 0) {
        p6_owned = aw_lock_owner(&p6_lk) == aw_task_self();
        aw_lock_release(&p6_lk);
    }
    return 0;
}
static const aw_cm_type_t p6_type = {.name = "p6", .enter = pgrec_enter, .exit = p6_exit};
static int p6_child(void *arg) {
    aw_with (aw_cm(&p6_type, NULL)) {
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int p6_main(void *arg) {
    aw_task_t *t;
    aw_lock_acquire(&p6_lk);
    aw_spawn(NULL, p6_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    aw_sleep_ms(5); /* the child waits for the lock in its exit */
    aw_lock_release(&p6_lk);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(p6_acq, 0, "a shielded exit may wait for a lock");
    cr_assert(p6_owned);
    cr_assert_null(aw_lock_owner(&p6_lk));
    return 0;
}
Test(compose, H3_a_cancelled_tasks_exit_waits_for_a_contended_lock) { aw_test_run(p6_main, NULL, 0); }

/* I4 with H2: a parent cancelled from outside while a child is in a
 * shield: the shield's sleep runs to its end, the cancel reaches the
 * child at its next checkpoint, the parent ends with a plain -ECANCELED. */
static int p10_in = 1, p10_after = 1;
static int p10_kid(void *arg) {
    aw_with (aw_shield(AW_NEVER)) {
        p10_in = aw_sleep_ms(10);
    }
    p10_after = aw_checkpoint();
    return aw_status();
}
static int p10_parent(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, p10_kid, NULL, NULL);
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int p10_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, p10_parent, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_null(aw_err_find(aw_err_current(), -AW_EGROUP), "no group error");
    aw_err_clear();
    cr_assert_eq(p10_in, 0);
    cr_assert_eq(p10_after, -ECANCELED);
    return 0;
}
Test(compose, I4_an_outer_cancel_lets_a_shielded_child_finish_its_shield_first) { aw_test_run(p10_main, NULL, 0); }

/* G4 with I2: a child's own fail-after is a failure of the group (it
 * cancels the sibling); the enclosing fail-after did not fire and the
 * block goes on with its deadline untouched. */
static int p12_sib = 1;
static int p12_t(void *arg) {
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int p12_s(void *arg) {
    p12_sib = aw_sleep(AW_SEC(5));
    return aw_status();
}
static int p12_main(void *arg) {
    int outer = 1;
    aw_with (aw_fail_after(AW_SEC(5))) {
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, p12_t, NULL, NULL);
            aw_spawn(g, p12_s, NULL, NULL);
        }
        outer = aw_status();
        aw_err_clear();
        cr_assert_eq(aw_sleep_ms(1), 0, "the outer deadline is untouched");
    }
    cr_assert_eq(outer, -AW_EGROUP);
    cr_assert_eq(p12_sib, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, G4_a_childs_own_timeout_fails_its_group_and_not_the_outer_deadline) { aw_test_run(p12_main, NULL, 0); }

/* G3 with (c) 19: a zero deadline around an uncontended lock acquire
 * cuts it (the acquire is a cancellation point): no owner is left, and a
 * locked block inside does not run. */
static aw_lock_t p14_lk = AW_LOCK_INIT("p14");
static int p14_main(void *arg) {
    int rc = 1;
    aw_with (aw_move_on_after(0)) {
        rc = aw_lock_acquire(&p14_lk);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_null(aw_lock_owner(&p14_lk));
    cr_assert_eq(aw_status(), 0);
    int ran = 0;
    aw_with (aw_move_on_after(0)) {
        aw_with (aw_locked(&p14_lk)) {
            ran = 1;
        }
    }
    cr_assert_eq(ran, 0);
    cr_assert_null(aw_lock_owner(&p14_lk));
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, G3_a_zero_deadline_cuts_an_uncontended_lock_acquire) { aw_test_run(p14_main, NULL, 0); }

/* H2 with G13: a shield with its own deadline inside a fail-after that
 * expires first: the shield ends at its own deadline (expired), quietly;
 * the outer deadline acts at the first checkpoint after it and gives
 * -ETIMEDOUT. */
static int p15_main(void *arg) {
    int rc = 1, after = 1;
    bool sx = false;
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_scope_t *sh, aw_shield(AW_MS(15))) {
            rc = aw_sleep(AW_SEC(5));
            sx = aw_scope_expired(sh);
        }
        after = aw_checkpoint();
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert(sx);
    cr_assert_eq(after, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(compose, H2_a_shields_own_deadline_inside_an_expired_fail_after) { aw_test_run(p15_main, NULL, 0); }

/* G9 with I4: a deadline around a group cancels a child, whose exit's
 * 20 ms cleanup is not cut; the block ends with -ETIMEDOUT. */
static pgrec_t p16_rec = {.exit_sleep_ms = 20};
static int p16_kid(void *arg) {
    aw_with (aw_cm(&pgrec_type, &p16_rec)) {
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int p16_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, p16_kid, NULL, NULL);
        }
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    cr_assert_eq(p16_rec.seen, -ECANCELED);
    cr_assert_eq(p16_rec.sleep_rc, 0);
    return 0;
}
Test(compose, G9_a_deadline_around_a_group_does_not_cut_a_childs_exit) { aw_test_run(p16_main, NULL, 0); }

/* I10 with I3: a child fails while the body waits in an exit, and that
 * exit fails too: the exit ran in full, the child's failure is the one
 * member, and the exit's failure is kept in the chain. */
static pgrec_t p18_rec = {.exit_sleep_ms = 10, .exit_rc = -ENOSPC};
static int p18_kid(void *arg) {
    while (!p18_rec.exited)
        aw_yield();
    return aw_raise(-EIO, "kid");
}
static int p18_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, p18_kid, NULL, NULL);
        aw_with (aw_cm(&pgrec_type, &p18_rec)) {
            aw_sleep_ms(1);
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert_eq(e->members->code, -EIO);
    cr_assert_null(e->members->next);
    cr_assert_not_null(aw_err_find(e, -ENOSPC), "the body's exit failure is kept");
    cr_assert_eq(p18_rec.sleep_rc, 0);
    aw_err_clear();
    return 0;
}
Test(compose, I10_an_exit_failing_while_a_child_fails_keeps_both) { aw_test_run(p18_main, NULL, 0); }

/* J2 the other way round: a queued waiter is cancelled (woken, not yet
 * run) and the holder releases in the same tick: the lock goes past the
 * leaving waiter to the next one, the leaving one gets -ECANCELED and
 * does not own the lock, and the lock ends free. Also with a semaphore
 * permit and a condition notification. */
static aw_lock_t p19_lk = AW_LOCK_INIT("p19");
static aw_sem_t p19_sem = AW_SEM_INIT("p19", 0, 0);
static aw_lock_t p19_clk = AW_LOCK_INIT("p19c");
static aw_cond_t p19_cv = AW_COND_INIT(&p19_clk);
static int p19_rc[2] = {1, 1}, p19_owned[2];
static int p19_waiter(void *arg) {
    int i = (int)(intptr_t)arg & 1, kind = (int)(intptr_t)arg >> 1;
    if (kind == 0) {
        p19_rc[i] = aw_lock_acquire(&p19_lk);
        p19_owned[i] = aw_lock_owner(&p19_lk) == aw_task_self();
        if (p19_rc[i] == 0)
            aw_lock_release(&p19_lk);
    } else if (kind == 1) {
        p19_rc[i] = aw_sem_acquire(&p19_sem);
    } else {
        aw_with (aw_locked(&p19_clk)) {
            p19_rc[i] = aw_cond_wait(&p19_cv);
        }
    }
    aw_err_clear();
    return 0;
}
static int p19_main(void *arg) {
    int kind = (int)(intptr_t)arg;
    aw_task_t *a, *b;
    if (kind == 0)
        aw_lock_acquire(&p19_lk);
    aw_spawn(NULL, p19_waiter, (void *)(intptr_t)(kind << 1 | 0), &a);
    aw_spawn(NULL, p19_waiter, (void *)(intptr_t)(kind << 1 | 1), &b);
    aw_sleep_ms(1); /* both wait, a first */
    aw_task_cancel(a); /* a is woken to leave ... */
    if (kind == 0) {   /* ... and before it runs the hand-off is made */
        aw_lock_release(&p19_lk);
    } else if (kind == 1) {
        aw_sem_release(&p19_sem);
    } else {
        aw_with (aw_locked(&p19_clk)) {
            aw_cond_notify(&p19_cv, 1);
        }
    }
    aw_task_join(a);
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        aw_task_join(b);
    }
    cr_assert_eq(p19_rc[0], -ECANCELED, "the leaving waiter: %d", p19_rc[0]);
    cr_assert_eq(p19_owned[0], 0, "the leaving waiter does not own the lock");
    cr_assert_eq(p19_rc[1], 0, "the hand-off reached the next waiter");
    cr_assert_null(aw_lock_owner(&p19_lk));
    cr_assert_null(aw_lock_owner(&p19_clk));
    cr_assert_eq(aw_sem_value(&p19_sem), 0);
    aw_err_clear();
    return 0;
}
Test(compose, J2_a_lock_released_as_its_first_waiter_leaves_goes_to_the_next) {
    aw_test_run(p19_main, (void *)0, 0);
}
Test(compose, M7_a_permit_released_as_its_first_waiter_leaves_goes_to_the_next) {
    aw_test_run(p19_main, (void *)1, 0);
}
Test(compose, M7_a_notify_made_as_its_first_waiter_leaves_goes_to_the_next) {
    aw_test_run(p19_main, (void *)2, 0);
}

/* G11 in an exit: a cancelled task's exit bounds its cleanup with its own
 * fail-after: the cleanup is cut at that deadline (not at once), its
 * -ETIMEDOUT is the exit's own, and the task still ends -ECANCELED. */
static int p21_rc = 1, p21_st = 1;
static aw_ns_t p21_el;
static int p21_exit(void *self, const aw_err_t *err) {
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(5))) {
        p21_rc = aw_sleep(AW_SEC(5));
    }
    p21_el = aw_now() - t0;
    p21_st = aw_status();
    aw_err_clear();
    return 0;
}
static const aw_cm_type_t p21_type = {.name = "p21", .enter = pgrec_enter, .exit = p21_exit};
static int p21_child(void *arg) {
    aw_with (aw_cm(&p21_type, NULL)) {
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int p21_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, p21_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED, "the cancel still propagates");
    aw_err_clear();
    cr_assert_eq(p21_rc, -ECANCELED);
    cr_assert_eq(p21_st, -ETIMEDOUT);
    cr_assert_geq(p21_el, AW_MS(5));
    return 0;
}
Test(compose, G11_an_exit_bounded_by_its_own_deadline_in_a_cancelled_task) { aw_test_run(p21_main, NULL, 0); }


/* Decision 1 (Trio's CancelScope cancelled before its with): a scope
 * cancelled before it is entered starts its block, whose first suspension
 * returns -ECANCELED; the block is left quietly. */
static int r1_main(void *arg) {
    aw_cm_t cm = aw_cancel_scope();
    aw_scope_cancel(cm.self);
    int rc = 1, started = 0;
    aw_with (aw_scope_t *s, cm) {
        started = 1;
        rc = aw_sleep(AW_SEC(5));
        cr_assert(aw_scope_cancelled(s));
    }
    cr_assert_eq(started, 1);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(compose, D1_a_scope_cancelled_before_its_block_cuts_its_first_wait) { aw_test_run(r1_main, NULL, 0); }

/* G4 three deep: the outer fail-after fires first; the inner fail-after
 * and the move-on between pass its cancel through (a move-on absorbs only
 * its own), and only the outer raises -ETIMEDOUT, once. */
static int r3_main(void *arg) {
    int mid = 1, inner = 1;
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_move_on_after(AW_SEC(1))) {
            aw_with (aw_fail_after(AW_SEC(10))) {
                aw_sleep(AW_SEC(5));
            }
            inner = aw_status();
        }
        mid = aw_status();
    }
    cr_assert_eq(inner, -ECANCELED);
    cr_assert_eq(mid, -ECANCELED, "the move-on must not absorb the outer's cancel: %s", aw_err_name(mid));
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    int n = 0;
    for (const aw_err_t *x = e; x; x = x->context) n += x->code == -ETIMEDOUT;
    cr_assert_eq(n, 1);
    aw_err_clear();
    return 0;
}
Test(compose, G4_an_outer_deadline_passes_through_a_move_on_between_unabsorbed) { aw_test_run(r3_main, NULL, 0); }

/* G10 with A-lines: after the timeout the body fails, then the exit
 * fails too: the exit's error is on top, and the body's error, the
 * timeout and the cancel are all in its chain. */
static pgrec_t r5_rec = {.exit_rc = -EIO};
static int r5_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_cm(&pgrec_type, &r5_rec)) {
            aw_sleep(AW_SEC(5));
            aw_fail(-ENOSPC, "body after timeout");
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EIO, "got %s", aw_err_name(e->code));
    cr_assert_eq(r5_rec.seen, -ENOSPC);
    cr_assert_not_null(aw_err_find(e, -ENOSPC));
    cr_assert_not_null(aw_err_find(e, -ETIMEDOUT));
    cr_assert_not_null(aw_err_find(e, -ECANCELED));
    aw_err_clear();
    return 0;
}
Test(compose, G10_a_body_and_an_exit_failing_after_the_timeout_keep_all_four) { aw_test_run(r5_main, NULL, 0); }


/* J5 through blocks: a locked block nested in one on the same lock is
 * refused at enter (-EDEADLK, its body does not run); the outer block
 * still holds the lock and its exit releases it. */
static aw_lock_t r6_lk = AW_LOCK_INIT("r6");
static int r6_main(void *arg) {
    int inner_ran = 0, inner_st = 0, held_after = 0;
    aw_with (aw_locked(&r6_lk)) {
        aw_with (aw_locked(&r6_lk)) {
            inner_ran = 1;
        }
        inner_st = aw_status();
        aw_err_clear();
        held_after = aw_lock_owner(&r6_lk) == aw_task_self();
    }
    cr_assert_eq(inner_ran, 0);
    cr_assert_eq(inner_st, -EDEADLK);
    cr_assert(held_after);
    cr_assert_null(aw_lock_owner(&r6_lk));
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, J5_a_locked_block_nested_in_one_on_the_same_lock_is_refused) { aw_test_run(r6_main, NULL, 0); }

/* J4 through a block: another task's release of a lock held by a block
 * fails with -EPERM and leaves the owner holding it; the block's exit
 * then releases it without error. */
static aw_lock_t r7_lk = AW_LOCK_INIT("r7");
static int r7_stranger_rc = 1;
static int r7_stranger(void *arg) {
    r7_stranger_rc = aw_lock_release(&r7_lk);
    aw_err_clear();
    return 0;
}
static int r7_main(void *arg) {
    aw_with (aw_locked(&r7_lk)) {
        aw_task_t *t;
        aw_spawn(NULL, r7_stranger, NULL, &t);
        aw_task_join(t);
        cr_assert_eq(aw_lock_owner(&r7_lk), aw_task_self());
    }
    cr_assert_eq(r7_stranger_rc, -EPERM);
    cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
    cr_assert_null(aw_lock_owner(&r7_lk));
    return 0;
}
Test(compose, J4_a_strangers_release_leaves_the_blocks_lock_to_its_exit) { aw_test_run(r7_main, NULL, 0); }



/* H3 with I1: an exit is shielded, so a group it opens in a cancelled
 * task runs its children to their end and adds no error. */
static int t4_kid_rc = 1, t4_grp_st = 1;
static int t4_kid(void *arg) { t4_kid_rc = aw_sleep_ms(5); return t4_kid_rc; }
static int t4_exit(void *self, const aw_err_t *err) {
    const aw_err_t *before = aw_err_current(); /* the block's cancel, being handled */
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, t4_kid, NULL, NULL);
    }
    t4_grp_st = aw_err_current() == before ? 0 : aw_status();
    return 0;
}
static const aw_cm_type_t t4_type = {.name = "t4", .enter = pgrec_enter, .exit = t4_exit};
static int t4_child(void *arg) {
    aw_with (aw_cm(&t4_type, NULL)) {
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int t4_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, t4_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(t4_kid_rc, 0, "the exit's group child ran (exit shielded): %d", t4_kid_rc);
    cr_assert_eq(t4_grp_st, 0);
    return 0;
}
Test(compose, H3_a_group_opened_in_a_cancelled_tasks_exit_runs_its_children) { aw_test_run(t4_main, NULL, 0); }

/* M4 with I2: a move-on around a group cancels a child whose exit then
 * overruns its grace: that overrun is the child's failure, and the group
 * error leaves the move-on (it absorbs only its own cancel). */
static const aw_cm_type_t t5_type = {.name = "t5-grace5", .enter = pgrec_enter, .exit = pgrec_exit, .grace = AW_MS(5)};
static pgrec_t t5_rec = {.exit_sleep_ms = 5000};
static int t5_kid(void *arg) {
    aw_with (aw_cm(&t5_type, &t5_rec)) {
        aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int t5_main(void *arg) {
    aw_with (aw_move_on_after(AW_MS(2))) {
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, t5_kid, NULL, NULL);
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e, "an exit over its grace must not vanish in a move-on");
    cr_assert_eq(e->code, -AW_EGROUP, "got %s", aw_err_name(e->code));
    cr_assert_eq(e->members->code, -ETIMEDOUT);
    cr_assert_not_null(strstr(e->members->msg, "overran its grace period"), "%s", e->members->msg);
    cr_assert_eq(t5_rec.sleep_rc, -ECANCELED, "the exit was cut at its grace");
    aw_err_clear();
    return 0;
}
Test(compose, M4_an_exit_over_its_grace_in_a_child_leaves_a_move_on_around_the_group) { aw_test_run(t5_main, NULL, 0); }

/* G6 with G9: another task moves a scope's deadline to the past while
 * its owner waits in an inner manager's exit: the exit is not cut, the
 * deadline acts at the first checkpoint after it, -ETIMEDOUT. */
static aw_scope_t *t12_s;
static pgrec_t t12_rec = {.exit_sleep_ms = 10};
static int t12_after = 1, t12_st = 1;
static int t12_child(void *arg) {
    aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(10))) {
        t12_s = s;
        aw_with (aw_cm(&pgrec_type, &t12_rec)) {
        }
        t12_after = aw_checkpoint();
    }
    t12_st = aw_status();
    return aw_status();
}
static int t12_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, t12_child, NULL, &t);
    aw_yield();
    aw_yield();
    cr_assert_eq(aw_scope_reschedule(t12_s, aw_now() - 1), 0);
    aw_task_join(t);
    aw_err_clear();
    cr_assert_eq(t12_rec.sleep_rc, 0, "the exit was not cut");
    cr_assert_eq(t12_after, -ECANCELED);
    cr_assert_eq(t12_st, -ETIMEDOUT);
    return 0;
}
Test(compose, G6_a_deadline_moved_to_the_past_during_an_exit_acts_after_it) { aw_test_run(t12_main, NULL, 0); }

/* I4 with decision 1: a child cancels a scope around its parent's group:
 * the body and the child are cancelled, the child's -ECANCELED is not a
 * failure, and the scope ends it quietly. */
static aw_scope_t *t13_s;
static int t13_rc = 1;
static int t13_kid(void *arg) {
    aw_sleep_ms(1);
    aw_scope_cancel(t13_s);
    t13_rc = aw_sleep(AW_SEC(5));
    return aw_status();
}
static int t13_main(void *arg) {
    int body = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        t13_s = s;
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, t13_kid, NULL, NULL);
            body = aw_sleep(AW_SEC(5));
        }
    }
    cr_assert_eq(t13_rc, -ECANCELED);
    cr_assert_eq(body, -ECANCELED);
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    return 0;
}
Test(compose, I4_a_child_cancelling_a_scope_around_its_group_ends_it_quietly) { aw_test_run(t13_main, NULL, 0); }

/* I4 with G1: a deadline around a group cancels its children, which are
 * not failures: the result is a plain -ETIMEDOUT, no group error. */
static int t14_kid(void *arg) { return aw_sleep(AW_SEC(5)); }
static int t14_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(3))) {
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, t14_kid, NULL, NULL);
            aw_spawn(g, t14_kid, NULL, NULL);
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert_null(aw_err_find(e, -AW_EGROUP), "no group error: the children were cancelled");
    aw_err_clear();
    return 0;
}
Test(compose, I4_a_deadline_around_a_group_gives_a_plain_timeout) { aw_test_run(t14_main, NULL, 0); }

/* I2 with H2: a sibling fails while a child is in a shield: the shield's
 * sleep runs to its end, the child is then cancelled, and the group error
 * holds the one failure. */
static int t15_in = 1;
static int t15_kid(void *arg) {
    aw_with (aw_shield(AW_SEC(5))) { t15_in = aw_sleep_ms(10); }
    return aw_sleep(AW_SEC(5));
}
static int t15_fail(void *arg) { aw_sleep_ms(1); return aw_raise(-EIO, "f"); }
static int t15_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, t15_kid, NULL, NULL);
        aw_spawn(g, t15_fail, NULL, NULL);
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(t15_in, 0);
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert_eq(e->members->code, -EIO);
    cr_assert_null(e->members->next);
    aw_err_clear();
    return 0;
}
Test(compose, I2_a_child_in_a_shield_finishes_it_and_is_no_failure) { aw_test_run(t15_main, NULL, 0); }

/* G10 in order, as Python 3.13 chains it: a failure after a timeout is
 * on top, the -ETIMEDOUT right under it, the -ECANCELED it caused under
 * that, whether the body or an inner exit failed; after a move-on the
 * failure sits right on the cancel; a plain timeout is -ETIMEDOUT over
 * -ECANCELED (G1). */
static pgrec_t o1_rec = {.exit_rc = -EIO};
static void o1_expect(const char *what, const int *codes, int n) {
    const aw_err_t *x = aw_err_current();
    for (int i = 0; i < n; i++, x = x->context) {
        cr_assert_not_null(x, "%s: record %d missing", what, i);
        cr_assert_eq(x->code, codes[i], "%s: record %d is %s", what, i, aw_err_name(x->code));
    }
    cr_assert_null(x, "%s: more than %d records", what, n);
    aw_err_clear();
}
static int o1_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_cm(&pgrec_type, &o1_rec)) {
            aw_sleep(AW_SEC(5));
        }
    }
    o1_expect("an exit fails", (int[]){-EIO, -ETIMEDOUT, -ECANCELED}, 3);
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_sleep(AW_SEC(5));
        aw_fail(-EIO, "the body failed after its timeout");
    }
    o1_expect("the body fails", (int[]){-EIO, -ETIMEDOUT, -ECANCELED}, 3);
    aw_with (aw_move_on_after(AW_MS(2))) {
        aw_with (aw_cm(&pgrec_type, &o1_rec)) {
            aw_sleep(AW_SEC(5));
        }
    }
    o1_expect("an exit fails in a move-on", (int[]){-EIO, -ECANCELED}, 2);
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_sleep(AW_SEC(5));
    }
    o1_expect("a plain timeout", (int[]){-ETIMEDOUT, -ECANCELED}, 2);
    return 0;
}
Test(compose, G10_a_failure_after_a_timeout_chains_failure_timeout_cancel_in_order) {
    aw_test_run(o1_main, NULL, 0);
}
/* M5 with I4, G1: a deadline and then a group entered into one exit
 * stack: the deadline cancels the body and the group's child, the group
 * closes first (its cancelled child is no failure), then the deadline:
 * a plain -ETIMEDOUT, and nothing lingers after the stack. */
static int v1_kid_rc = 1;
static int v1_kid(void *arg) { v1_kid_rc = aw_sleep(AW_SEC(5)); return aw_status(); }
static int v1_main(void *arg) {
    int body = 1;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_scope_t *s;
        aw_group_t *g;
        cr_assert_eq(aw_exitstack_enter(st, aw_fail_after(AW_MS(3)), (void **)&s), 0);
        cr_assert_eq(aw_exitstack_enter(st, aw_group(), (void **)&g), 0);
        aw_spawn(g, v1_kid, NULL, NULL);
        body = aw_sleep(AW_SEC(5));
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(body, -ECANCELED);
    cr_assert_eq(v1_kid_rc, -ECANCELED);
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "got %s", aw_err_name(e->code));
    cr_assert_null(aw_err_find(e, -AW_EGROUP));
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(compose, M5_a_deadline_and_a_group_in_one_exit_stack_end_in_a_plain_timeout) { aw_test_run(v1_main, NULL, 0); }

/* H4 with M5, G11: a shield entered into an exit stack inside a cancelled
 * scope hides the cancel for the rest of the stack's block (a fail-after
 * in it works on its own), and the cancel arrives once the stack closes. */
static int v2_main(void *arg) {
    int in = 1, after = 1, in2 = 1;
    aw_with (aw_scope_t *c, aw_cancel_scope()) {
        aw_scope_cancel(c);
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            cr_assert_eq(aw_exitstack_enter(st, aw_shield(AW_NEVER), NULL), 0);
            in = aw_sleep_ms(2);
            aw_with (aw_fail_after(AW_MS(2))) {
                in2 = aw_sleep(AW_SEC(5));
            }
            cr_assert_eq(aw_status(), -ETIMEDOUT);
            aw_err_clear();
        }
        after = aw_checkpoint();
    }
    cr_assert_eq(in, 0, "the stack's shield hides the cancel");
    cr_assert_eq(in2, -ECANCELED);
    cr_assert_eq(after, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(compose, H4_a_shield_in_an_exit_stack_hides_a_cancel_until_the_stack_closes) { aw_test_run(v2_main, NULL, 0); }
