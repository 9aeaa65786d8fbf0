/* tests for src/core/gather.c: the children's results in spawn order
 * (issue 10, section 2), with the group's failure rules (SEMANTICS I). */
#include "testutil.h"

#include <string.h>

static char order[64]; /* the order in which children finished */

/* Sleeps (5 - i) * 3 ms, so the children finish in reverse order, and
 * stores i * i. */
static int square(void *arg, void **value) {
    intptr_t i = (intptr_t)arg;
    int rc = aw_sleep_ms((5 - i) * 3);
    if (rc < 0)
        return rc;
    char b[4] = {(char)('0' + i), 0};
    strcat(order, b);
    *value = (void *)(i * i);
    return 0;
}

static int in_order(void *arg) {
    aw_result_t r[5];
    aw_with (aw_group_t *g, aw_group()) {
        for (intptr_t i = 0; i < 5; i++)
            cr_assert_eq(aw_spawn_result(g, square, (void *)i, &r[i]), 0);
        cr_assert_eq(r[0].status, -EINPROGRESS, "not finished yet");
        cr_assert_null(r[0].value);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(order, "43210", "they finished in reverse order");
    for (intptr_t i = 0; i < 5; i++) {
        cr_assert_eq(r[i].status, 0);
        cr_assert_eq((intptr_t)r[i].value, i * i, "slot %d holds child %d's result", (int)i, (int)i);
    }
    return 0;
}
Test(gather, results_come_in_spawn_order_whatever_the_finish_order) {
    aw_test_run(in_order, NULL, 0);
}

/* The one-call form, with different functions. */
static int name_len(void *arg, void **value) {
    *value = (void *)(intptr_t)strlen(arg);
    return aw_sleep_ms(2);
}
static int nothing(void *arg, void **value) { return aw_yield(); }

static int one_call(void *arg) {
    aw_result_t r[] = {AW_RESULT(square, 2), AW_RESULT(name_len, "hello"), AW_RESULT(nothing, NULL)};
    cr_assert_eq(aw_gather(r, 3), 0);
    cr_assert_eq(aw_status(), 0);
    cr_assert(r[0].status == 0 && (intptr_t)r[0].value == 4);
    cr_assert(r[1].status == 0 && (intptr_t)r[1].value == 5);
    cr_assert(r[2].status == 0 && r[2].value == NULL, "a child that stores nothing gives NULL");
    cr_assert_eq(aw_gather(r, 0), 0, "nothing to gather");
    return 0;
}
Test(gather, aw_gather_runs_a_list_of_calls_and_fills_every_slot) { aw_test_run(one_call, NULL, 0); }

/* The group's rules: the first failure cancels the siblings; a child done
 * before it keeps its result; the failed slot has its code; the cancelled
 * ones say -ECANCELED; the group's error lists the failure. */
static int quick(void *arg, void **value) {
    *value = "quick";
    return 0;
}
static int fails(void *arg, void **value) {
    if (aw_sleep_ms(5) < 0)
        return -ECANCELED;
    *value = "partial"; /* stored before failing: still the caller's */
    return aw_raise(-EIO, "child failed");
}
static int slow(void *arg, void **value) {
    int rc = aw_sleep(AW_SEC(30));
    *value = "cut";
    return rc;
}

static int failure(void *arg) {
    aw_result_t r[] = {AW_RESULT(quick, NULL), AW_RESULT(fails, NULL), AW_RESULT(slow, NULL),
                       AW_RESULT(slow, NULL)};
    cr_assert_eq(aw_gather(r, 4), -AW_EGROUP);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert_not_null(e->members);
    cr_assert_eq(e->members->code, -EIO);
    cr_assert_null(e->members->next, "cancelled siblings are not failures");
    cr_assert(r[0].status == 0 && strcmp(r[0].value, "quick") == 0);
    cr_assert_eq(r[1].status, -EIO);
    cr_assert_str_eq(r[1].value, "partial");
    cr_assert_eq(r[2].status, -ECANCELED);
    cr_assert_eq(r[3].status, -ECANCELED);
    cr_assert_str_eq(r[3].value, "cut");
    aw_err_clear();
    return 0;
}
Test(gather, the_first_failure_cancels_the_rest_and_each_slot_says_what_happened) {
    aw_test_run(failure, NULL, 0);
}

/* Cancelled from outside: every child is cancelled and awaited, the slots
 * say so, and -ECANCELED (not a group error) comes back. */
static aw_result_t outer_r[3];
static int gatherer(void *arg) {
    for (int i = 0; i < 3; i++)
        outer_r[i] = (aw_result_t)AW_RESULT(slow, NULL);
    return aw_gather(outer_r, 3);
}
static int outside(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, gatherer, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(outer_r[i].status, -ECANCELED);
        cr_assert_str_eq(outer_r[i].value, "cut", "each child ran its cleanup");
    }
    return 0;
}
Test(gather, a_cancel_from_outside_reaches_every_child_and_is_returned) {
    aw_test_run(outside, NULL, 0);
}

/* The slot holds the task's status, SEMANTICS K5 included: `return 0`
 * from inside a with block whose exit then failed is that exit's error. */
static int failing_exit_enter(void *self, void **out) { return 0; }
static int failing_exit_exit(void *self, const aw_err_t *err) {
    return aw_raise(-EPIPE, "exit failed");
}
static const aw_cm_type_t failing_exit = {"failing_exit", failing_exit_enter, failing_exit_exit};
static int returns_inside(void *arg, void **value) {
    aw_with (aw_cm(&failing_exit, NULL)) {
        *value = "v";
        return 0;
    }
    return 0;
}
static int k5(void *arg) {
    aw_result_t r[] = {AW_RESULT(returns_inside, NULL)};
    cr_assert_eq(aw_gather(r, 1), -AW_EGROUP);
    cr_assert_eq(r[0].status, -EPIPE, "the exit's failure is the child's status");
    cr_assert_eq(aw_err_current()->members->code, -EPIPE);
    aw_err_clear();
    return 0;
}
Test(gather, a_slot_holds_the_tasks_status_including_a_failed_exit_after_return) {
    aw_test_run(k5, NULL, 0);
}

/* Spawning into a group that is not open, or without a function: the error
 * is returned, raised, and in the slot; the child never runs. */
static int ran;
static int counts(void *arg, void **value) {
    ran++;
    return 0;
}
static int bad_spawns(void *arg) {
    aw_result_t r;
    aw_group_t not_entered = {0};
    cr_assert_eq(aw_spawn_result(&not_entered, counts, NULL, &r), -EINVAL);
    cr_assert_eq(r.status, -EINVAL);
    aw_err_clear();
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_spawn_result(g, NULL, NULL, &r), -EINVAL);
        cr_assert_eq(r.status, -EINVAL);
        aw_err_clear();
    }
    aw_result_t list[] = {AW_RESULT(counts, NULL), {.fn = NULL}, AW_RESULT(counts, NULL)};
    cr_assert_eq(aw_gather(list, 3), -EINVAL, "the spawn error leaves the group");
    cr_assert_eq(list[1].status, -EINVAL);
    cr_assert_eq(list[2].status, -ECANCELED, "never started");
    cr_assert_eq(list[0].status, 0, "a child started before still runs (until its first suspension)");
    cr_assert_eq(ran, 1);
    aw_err_clear();
    return 0;
}
Test(gather, spawn_errors_are_returned_and_stored_in_the_slot) { aw_test_run(bad_spawns, NULL, 0); }

/* Outside a task aw_gather is -EPERM, reported as every suspending call
 * made there is (awith/log.h: "a suspending call ... used outside a
 * task"), and recorded as the thread's last error, as aw_sleep's is: a
 * caller that only logs aw_err_current() sees why. No child runs. */
static char gl_logged[512];
static void gl_hook(const char *msg, void *arg) {
    strncat(gl_logged, msg, sizeof gl_logged - strlen(gl_logged) - 1);
}
Test(gather, outside_a_task_is_eperm_reported_and_recorded) {
    aw_log_set(gl_hook, NULL);
    aw_result_t r[] = {AW_RESULT(counts, NULL)};
    cr_assert_eq(aw_gather(r, 1), -EPERM);
    aw_log_set(NULL, NULL);
    cr_assert_eq(ran, 0);
    cr_assert_not_null(aw_err_current(), "nothing recorded");
    cr_assert_eq(aw_err_current()->code, -EPERM);
    cr_assert(strstr(aw_err_current()->msg, "aw_gather called outside a task"), "%s",
              aw_err_current()->msg);
    cr_assert(strstr(gl_logged, "aw_gather called outside a task"), "logged: '%s'", gl_logged);
    aw_err_clear();
}

/* aw_gather's return value is its children's outcome, not an error that
 * was pending before the call: inside an exit handed the block's error,
 * or with an earlier failure not handled yet, children that all succeed
 * give 0 (gather.h: "Returns 0 if every child succeeded"). A cancel
 * still pending in the caller's scope is still returned. */
static int g_ok(void *arg, void **value) {
    *value = arg;
    return aw_sleep_ms(1);
}
static int gp_rc = 1;
static int gp_enter(void *self, void **out) { return 0; }
static int gp_exit(void *self, const aw_err_t *err) {
    aw_result_t r[] = {AW_RESULT(g_ok, 1), AW_RESULT(g_ok, 2)};
    gp_rc = aw_gather(r, 2);
    cr_assert(r[0].status == 0 && r[1].status == 0, "both children succeeded");
    return 0;
}
static const aw_cm_type_t gp_type = {.name = "gathers-in-exit", .enter = gp_enter, .exit = gp_exit};
static int pending_before(void *arg) {
    aw_with (aw_cm(&gp_type, NULL)) {
        aw_fail(-EIO, "the block failed");
    }
    cr_assert_eq(gp_rc, 0, "in an exit handed EIO, gather of succeeding children returned %s",
                 aw_err_name(gp_rc));
    cr_assert_eq(aw_status(), -EIO, "the block's error propagates");
    aw_err_clear();
    aw_raise(-ENOENT, "an earlier failure, not handled yet");
    aw_result_t r[] = {AW_RESULT(g_ok, 1), AW_RESULT(g_ok, 2)};
    cr_assert_eq(aw_gather(r, 2), 0, "the earlier failure is not the gather's");
    cr_assert_eq(aw_status(), -ENOENT, "and it stays pending");
    aw_err_clear();
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert_eq(aw_sleep_ms(1), -ECANCELED); /* a cancel record is pending now */
        cr_assert_eq(aw_gather(r, 2), -ECANCELED, "a visible cancel is still the gather's");
    }
    return 0;
}
Test(gather, a_pending_error_from_before_the_call_is_not_its_result) {
    aw_test_run(pending_before, NULL, 0);
}

/* Seed 002, section 5, with a failure (SEMANTICS I2, J2): three workers
 * share one lock; the first holds it, the second waits for it, the third
 * fails. The failure cancels both: the holder's exit releases the lock
 * (shielded), the waiter leaves the queue without ever running its
 * block, and the lock ends free, with every slot saying what happened. */
static aw_lock_t sl_lock = AW_LOCK_INIT("shared_resource");
static int sl_ran;
static int sl_worker(void *arg, void **value) {
    aw_with (aw_locked(&sl_lock)) {
        sl_ran++;
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int sl_failing(void *arg, void **value) {
    if (aw_sleep_ms(5) < 0)
        return aw_status();
    return aw_raise(-EIO, "worker 3 failed");
}
static int sl_main(void *arg) {
    aw_result_t r[] = {AW_RESULT(sl_worker, NULL), AW_RESULT(sl_worker, NULL),
                       AW_RESULT(sl_failing, NULL)};
    cr_assert_eq(aw_gather(r, 3), -AW_EGROUP);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->members->code, -EIO);
    cr_assert_null(e->members->next, "a cancelled worker counted as a failure");
    cr_assert_eq(r[0].status, -ECANCELED);
    cr_assert_eq(r[1].status, -ECANCELED);
    cr_assert_eq(r[2].status, -EIO);
    cr_assert_eq(sl_ran, 1, "the waiter ran its block");
    cr_assert_null(aw_lock_owner(&sl_lock));
    aw_err_clear();
    cr_assert_eq(aw_lock_acquire(&sl_lock), 0);
    cr_assert_eq(aw_lock_release(&sl_lock), 0);
    return 0;
}
Test(gather, I2_J2_a_failure_cancels_a_lock_holder_and_its_waiter_and_the_lock_ends_free) {
    aw_test_run(sl_main, NULL, 0);
}

/* A child that returns 0 still holding a lock ends with -EOWNERDEAD (M6):
 * its slot says so too, as the group error does (gather.h: the slot's
 * status is the child's task status). */
static aw_lock_t kept = AW_LOCK_INIT("kept");
static int keeps_lock(void *arg, void **value) {
    *value = (void *)7;
    return aw_lock_acquire(&kept);
}
static int kl_main(void *arg) {
    aw_result_t r[] = {AW_RESULT(keeps_lock, NULL)};
    cr_assert_eq(aw_gather(r, 1), -AW_EGROUP);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->members->code, -EOWNERDEAD, "%s", e->members->msg);
    cr_assert_eq(r[0].status, -EOWNERDEAD, "the slot says %d, the group error EOWNERDEAD",
                 r[0].status);
    cr_assert_eq(r[0].value, (void *)7, "what the child stored is kept");
    aw_err_clear();
    return 0;
}
Test(gather, M6_a_child_ending_with_a_lock_held_has_its_slot_say_so) { aw_test_run(kl_main, NULL, 0); }


/* Decision 2: an exit runs shielded, and so does a gather made in it: in
 * the exit of a block its scope cancelled (a class-style exit, and a
 * generator manager's cleanup), the children run to the end, each slot
 * says 0 and so does the gather; the scope then ends its cancel. */
static int ge_rc = 1;
static aw_result_t ge_r[2];
static int ge_gather(void) {
    ge_r[0] = (aw_result_t)AW_RESULT(g_ok, 1);
    ge_r[1] = (aw_result_t)AW_RESULT(g_ok, 2);
    return aw_gather(ge_r, 2);
}
static int ge_enter(void *self, void **out) { return 0; }
static int ge_exit(void *self, const aw_err_t *err) {
    ge_rc = ge_gather();
    return 0;
}
static const aw_cm_type_t ge_type = {.name = "gathers-in-exit", .enter = ge_enter, .exit = ge_exit};
static int ge_gen(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    ge_rc = ge_gather();
    return rc;
}
static int gather_in_exit(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope())
        aw_with (aw_cm(&ge_type, NULL)) {
            aw_scope_cancel(s);
            aw_sleep_ms(10000);
        }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(ge_rc, 0, "class exit: %s", aw_err_name(ge_rc));
    cr_assert(ge_r[0].status == 0 && ge_r[1].status == 0, "the children were cut");
    ge_rc = 1;
    ge_r[0].status = ge_r[1].status = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope())
        aw_with (aw_gencm(ge_gen, NULL)) {
            aw_scope_cancel(s);
            aw_sleep_ms(10000);
        }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(ge_rc, 0, "generator cleanup: %s", aw_err_name(ge_rc));
    cr_assert(ge_r[0].status == 0 && ge_r[1].status == 0, "the children were cut");
    return 0;
}
Test(gather, decision2_a_gather_in_a_cancelled_blocks_exit_runs_to_the_end) {
    aw_test_run(gather_in_exit, NULL, 0);
}
