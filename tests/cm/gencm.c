/* tests for src/cm/gencm.c: generator-style managers (SEMANTICS C). */
#include "testutil.h"

#include <string.h>

static char log_[512];
static void note(const char *s) {
    strcat(log_, s);
    strcat(log_, ";");
}

/* setup; yield; cleanup; propagate */
static int plain(aw_gencm_t *g, void *arg) {
    note("setup");
    int rc = aw_gencm_yield(g, arg);
    note(rc ? "cleanup-err" : "cleanup");
    return rc;
}

static int c1_body(void *arg) {
    aw_with (char *v, aw_gencm(plain, "value")) {
        cr_assert_str_eq(v, "value");
        note("body");
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "setup;body;cleanup;");
    return 0;
}
Test(gencm, C1_before_yield_is_enter_after_is_exit) { aw_test_run(c1_body, NULL, 0); }

static int noyield_ok(aw_gencm_t *g, void *arg) { return 0; }
static int noyield_err(aw_gencm_t *g, void *arg) { return aw_raise(-ENOENT, "no such resource"); }
static int c2_body(void *arg) {
    int ran = 0;
    aw_with (aw_gencm(noyield_ok, NULL)) ran = 1;
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "didn't yield"));
    aw_err_clear();
    return 0;
}
Test(gencm, C2_returning_without_yield_fails_enter) { aw_test_run(c2_body, NULL, 0); }

static int c8_body(void *arg) {
    int ran = 0;
    aw_with (aw_gencm(noyield_err, NULL)) ran = 1;
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -ENOENT);
    cr_assert_str_eq(aw_err_current()->msg, "no such resource");
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}
Test(gencm, C8_error_before_yield_propagates_from_enter) { aw_test_run(c8_body, NULL, 0); }

static int twice(aw_gencm_t *g, void *arg) {
    aw_gencm_yield(g, NULL);
    aw_gencm_yield(g, NULL);
    return 0;
}
static int c3_body(void *arg) {
    aw_with (aw_gencm(twice, NULL)) {
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "didn't stop"));
    aw_err_clear();
    return 0;
}
Test(gencm, C3_yielding_twice_fails) { aw_test_run(c3_body, NULL, 0); }

static const aw_err_t *seen;
static int inspect(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    seen = aw_gencm_error(g);
    if (rc == -EIO && arg == (void *)1)
        return 0; /* handled: suppress */
    if (rc == -EIO && arg == (void *)2)
        return aw_raise(-EPIPE, "replaced");
    return rc;
}
static int c4_body(void *arg) {
    const aw_err_t *raised = NULL;
    aw_with (aw_gencm(inspect, NULL)) {
        aw_raise(-EIO, "body failed");
        raised = aw_err_current();
        aw_leave();
    }
    cr_assert_eq(seen, raised, "the generator sees the very record the body raised");
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_eq(aw_err_current(), raised, "C6: re-raised unchanged, no wrapper");
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}
Test(gencm, C4_C6_body_error_reaches_generator_and_reraise_is_unchanged) { aw_test_run(c4_body, NULL, 0); }

static int c5_body(void *arg) {
    int after = 0;
    aw_with (aw_gencm(inspect, (void *)1)) {
        aw_fail(-EIO, "body failed");
    }
    after = 1;
    cr_assert_eq(after, 1);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gencm, C5_generator_finishing_suppresses) { aw_test_run(c5_body, NULL, 0); }

static int c7_body(void *arg) {
    aw_with (aw_gencm(inspect, (void *)2)) {
        aw_fail(-EIO, "body failed");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EIO);
    cr_assert_str_eq(e->context->msg, "body failed");
    aw_err_clear();
    return 0;
}
Test(gencm, C7_different_error_chains_the_body_error) { aw_test_run(c7_body, NULL, 0); }

static int c11_body(void *arg) {
    aw_gencm_t m = AW_GENCM_INIT(plain, NULL);
    aw_with (aw_cm(&aw_gencm_type, &m)) {
    }
    cr_assert_eq(aw_status(), 0);
    int ran = 0;
    aw_with (aw_cm(&aw_gencm_type, &m)) ran = 1;
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -EALREADY);
    cr_assert(strstr(aw_err_current()->msg, "'plain'"), "names the manager: %s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}
Test(gencm, C11_reuse_is_a_clear_EALREADY) { aw_test_run(c11_body, NULL, 0); }

static int calls;
static int decorated(void *arg) {
    calls++;
    note("fn");
    return 0;
}
static int c12_body(void *arg) {
    cr_assert_eq(aw_gencm_call(plain, NULL, decorated, NULL), 0);
    cr_assert_eq(aw_gencm_call(plain, NULL, decorated, NULL), 0);
    cr_assert_eq(calls, 2);
    cr_assert_str_eq(log_, "setup;fn;cleanup;setup;fn;cleanup;");
    return 0;
}
Test(gencm, C12_decorator_makes_a_fresh_instance_per_call) { aw_test_run(c12_body, NULL, 0); }

/* Cleanup that sleeps 10 ms while the task is cancelled again and again. */
static int slow_cleanup(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    int s = aw_sleep_ms(10);
    note(s == 0 ? "cleanup-complete" : "cleanup-cut");
    return rc;
}
static int c13_child(void *arg) {
    aw_with (aw_gencm(slow_cleanup, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int c13_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c13_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    aw_sleep_ms(2);
    aw_task_cancel(t); /* a second cancel while cleanup runs */
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_str_eq(log_, "cleanup-complete;");
    aw_err_clear();
    return 0;
}
Test(gencm, C13_second_cancel_does_not_cut_cleanup) { aw_test_run(c13_body, NULL, 0); }

static int swallow(aw_gencm_t *g, void *arg) {
    aw_gencm_yield(g, NULL);
    return 0; /* tries to swallow whatever came */
}
static int c14_child(void *arg) {
    aw_with (aw_gencm(swallow, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    note(aw_status() == -ECANCELED ? "still-cancelled" : "lost");
    return aw_status();
}
static int c14_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c14_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_str_eq(log_, "still-cancelled;");
    aw_err_clear();
    return 0;
}
Test(gencm, C14_generator_cannot_swallow_a_cancel) { aw_test_run(c14_body, NULL, 0); }

/* enter is atomic: a cancel while the generator's setup sleeps */
static int setup_sleeps(aw_gencm_t *g, void *arg) {
    int *held = arg;
    *held = 1; /* acquired */
    if (aw_sleep(AW_SEC(10)) < 0) {
        *held = 0; /* release before failing */
        return aw_status();
    }
    int rc = aw_gencm_yield(g, NULL);
    *held = 0;
    return rc;
}
static int held;
static int atomic_child(void *arg) {
    int ran = 0;
    aw_with (aw_gencm(setup_sleeps, &held)) ran = 1;
    cr_assert_eq(ran, 0);
    return aw_status();
}
static int atomic_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, atomic_child, NULL, &t);
    for (int i = 0; !held && i < 5000; i++) /* slow under Valgrind */
        aw_sleep_ms(1);
    cr_assert_eq(held, 1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_eq(held, 0);
    aw_err_clear();
    return 0;
}
Test(gencm, cancel_during_setup_reaches_the_generator) { aw_test_run(atomic_body, NULL, 0); }

static int nested_a(aw_gencm_t *g, void *arg) {
    note("acquire A");
    int rc = aw_gencm_yield(g, "A");
    note("release A");
    return rc;
}
static int nested_b(aw_gencm_t *g, void *arg) {
    note("acquire B");
    int rc = aw_gencm_yield(g, "B");
    note("release B");
    return rc;
}
static int nested_body(void *arg) {
    aw_with (char *a, aw_gencm(nested_a, NULL))
    aw_with (char *b, aw_gencm(nested_b, NULL)) {
        note(a);
        note(b);
    }
    cr_assert_str_eq(log_, "acquire A;acquire B;A;B;release B;release A;");
    return 0;
}
Test(gencm, several_in_one_statement_exit_in_reverse) { aw_test_run(nested_body, NULL, 0); }

/* ---- C6, C9, C10, K3 ---- */

/* C6: re-raising (returning the code yield gave) is the same record,
 * through two generator managers: no wrapper, no self-chaining, and a
 * context the body built is kept as it was. */
static int c6_body(void *arg) {
    const aw_err_t *raised = NULL;
    aw_with (aw_gencm(plain, NULL))
    aw_with (aw_gencm(plain, NULL)) {
        aw_raise(-ENOENT, "first");
        aw_raise(-EIO, "body failed");
        raised = aw_err_current();
        aw_leave();
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e, raised, "the very record the body raised leaves the block");
    cr_assert_eq(e->code, -EIO);
    cr_assert_str_eq(e->msg, "body failed");
    cr_assert_not_null(e->context);
    cr_assert_neq(e->context, e, "no self-chaining");
    cr_assert_eq(e->context->code, -ENOENT);
    cr_assert_null(e->context->context);
    cr_assert_eq(aw_err_count(e), 2, "no wrapper added by either generator");
    cr_assert_str_eq(log_, "setup;setup;cleanup-err;cleanup-err;");
    aw_err_clear();
    return 0;
}
Test(gencm, C6_reraise_propagates_the_same_record_without_wrapper_or_self_chaining) {
    aw_test_run(c6_body, NULL, 0);
}

/* C9: the body fails with -AW_ECLOSED, the code the runtime uses for "the
 * generator was closed": it passes through unchanged, and is not taken
 * for the generator's own closed signal (C10). */
static int c9_body(void *arg) {
    const aw_err_t *raised = NULL;
    aw_with (aw_gencm(plain, NULL)) {
        aw_raise(-AW_ECLOSED, "the body's own channel was closed");
        raised = aw_err_current();
        aw_leave();
    }
    cr_assert_eq(aw_status(), -AW_ECLOSED);
    cr_assert_eq(aw_err_current(), raised, "unchanged");
    cr_assert_null(aw_err_current()->context);
    cr_assert_str_eq(log_, "setup;cleanup-err;", "the generator saw it and cleaned up");
    aw_err_clear();
    return 0;
}
Test(gencm, C9_body_error_with_the_closed_code_passes_through_unchanged) {
    aw_test_run(c9_body, NULL, 0);
}

/* C10: the generator itself ends with -AW_ECLOSED (after its yield, and
 * before it): a clear protocol error whose context is the original. */
static int leak_closed(aw_gencm_t *g, void *arg) {
    if (arg) /* before yielding */
        return aw_raise(-AW_ECLOSED, "leaked from an inner generator");
    aw_gencm_yield(g, NULL);
    return aw_raise(-AW_ECLOSED, "leaked from an inner generator");
}
static int c10_body(void *arg) {
    int ran = 0;
    aw_with (aw_gencm(leak_closed, NULL)) ran = 1;
    cr_assert_eq(ran, 1);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "not a silent end: %s", e ? e->msg : "(none)");
    cr_assert(strstr(e->msg, "'leak_closed'") && strstr(e->msg, "AW_ECLOSED"), "%s", e->msg);
    cr_assert_not_null(aw_err_find(e, -AW_ECLOSED), "the original is its context");
    cr_assert_str_eq(aw_err_find(e, -AW_ECLOSED)->msg, "leaked from an inner generator");
    aw_err_clear();
    ran = 0;
    aw_with (aw_gencm(leak_closed, (void *)1)) ran = 1;
    cr_assert_eq(ran, 0, "enter failed");
    e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "%s", e ? e->msg : "(none)");
    cr_assert_not_null(aw_err_find(e, -AW_ECLOSED));
    aw_err_clear();
    return 0;
}
Test(gencm, C10_generator_raising_the_closed_signal_is_a_protocol_error) {
    aw_test_run(c10_body, NULL, 0);
}

/* K3: the code after the yield runs for a cancel and for a deadline, not
 * only for ordinary errors, and it sees what happened. */
static int k3_child(void *arg) {
    aw_with (aw_gencm(plain, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int k3_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, k3_child, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_str_eq(log_, "setup;cleanup-err;", "cleanup ran for the cancel");
    log_[0] = 0;
    aw_with (aw_fail_after(AW_MS(1)))
        k3_child(NULL);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_str_eq(log_, "setup;cleanup-err;", "and for a deadline");
    return 0;
}
Test(gencm, K3_cleanup_after_yield_runs_for_cancel_and_deadline) { aw_test_run(k3_body, NULL, 0); }

/* C6's limit, decision 5: returning the body's code re-raises unchanged;
 * but a generator that raised a record of its own (same code, or a
 * cleanup failure it left pending) has that record kept, on top of the
 * body's error, as a different error would be (C7): nothing is dropped. */
static int own_record(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    if (arg)
        aw_raise(-EPIPE, "cleanup failed");
    else
        aw_raise(rc, "the generator's own report");
    return rc;
}
static int c7_own_body(void *arg) {
    aw_with (aw_gencm(own_record, NULL)) {
        aw_fail(-EIO, "body failed");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_str_eq(e->msg, "the generator's own report");
    cr_assert_not_null(e->context);
    cr_assert_str_eq(e->context->msg, "body failed", "the body's error is its context");
    aw_err_clear();
    aw_with (aw_gencm(own_record, (void *)1)) {
        aw_fail(-EIO, "body failed");
    }
    e = aw_err_current();
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_not_null(aw_err_find(e, -EPIPE), "the cleanup failure is kept");
    cr_assert_str_eq(aw_err_find(e, -EPIPE)->msg, "cleanup failed");
    aw_err_clear();
    return 0;
}
Test(gencm, C7_a_record_the_generator_raised_with_the_same_code_is_kept) {
    aw_test_run(c7_own_body, NULL, 0);
}

/* Issue 10, item 10: a generator manager whose cleanup overruns its grace
 * is named by its function in the report, not by the type ('gencm'). */
static int overrunning_cleanup(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    aw_sleep(AW_SEC(5));
    return rc;
}
static int overrun_body(void *arg) {
    aw_with (aw_gencm(overrunning_cleanup, NULL)) {
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert_not_null(strstr(e->msg, "'overrunning_cleanup'"), "not named by its function: %s", e->msg);
    aw_err_clear();
    return 0;
}
Test(gencm, a_cleanup_overrunning_its_grace_is_named_by_its_function) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(5)};
    cr_assert_eq(aw_main_opts(&o, overrun_body, NULL), 0);
}

/* ================= M3: the block runs inside the generator's yield ================= */

/* A manager the generator holds open around its yield (a transaction, in
 * real code): its exit records what it saw; "commit" only when clean. */
typedef struct {
    int exited, seen, commits, rollbacks;
} tx_t;
static int tx_enter(void *self, void **out) {
    *out = self;
    return 0;
}
static int tx_exit(void *self, const aw_err_t *err) {
    tx_t *t = self;
    t->exited++;
    t->seen = err ? err->code : 0;
    if (err)
        t->rollbacks++;
    else
        t->commits++;
    return 0;
}
static const aw_cm_type_t tx_type = {.name = "tx", .enter = tx_enter, .exit = tx_exit};

static int count_code(const aw_err_t *e, int code) {
    int n = 0;
    for (; e; e = e->context)
        n += e->code == code;
    return n;
}

/* The documented shape: `return rc < 0 ? rc : aw_status();` */
static int m3_tx_gen(aw_gencm_t *g, void *arg) {
    int rc = 0;
    aw_with (aw_cm(&tx_type, arg)) {
        rc = aw_gencm_yield(g, arg);
    }
    return rc < 0 ? rc : aw_status();
}
static int m3_tx_body(void *arg) {
    tx_t tx = {0};
    aw_with (aw_gencm(m3_tx_gen, &tx)) {
        aw_fail(-EINVAL, "the block failed");
    }
    cr_assert_eq(tx.exited, 1);
    cr_assert_eq(tx.seen, -EINVAL, "the manager around the yield saw %s: it committed",
                 aw_err_name(tx.seen));
    cr_assert_eq(tx.commits, 0);
    cr_assert_eq(aw_status(), -EINVAL);
    cr_assert_eq(count_code(aw_err_current(), -EINVAL), 1, "the block's error is not there once");
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    aw_err_clear();
    /* and a clean block commits */
    aw_with (aw_gencm(m3_tx_gen, &tx)) {
    }
    cr_assert_eq(tx.commits, 1);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gencm, M3_a_manager_held_around_the_yield_sees_the_blocks_error) { aw_test_run(m3_tx_body, NULL, 0); }

/* `return aw_status();` after the yield: the block's error, once. */
static int m3_status_gen(aw_gencm_t *g, void *arg) {
    aw_gencm_yield(g, NULL);
    return aw_status();
}
static int m3_status_body(void *arg) {
    aw_with (aw_gencm(m3_status_gen, NULL)) {
        aw_fail(-EINVAL, "the block failed");
    }
    cr_assert_eq(aw_status(), -EINVAL, "returning aw_status() after the yield lost the error");
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    aw_err_clear();
    return 0;
}
Test(gencm, M3_returning_aw_status_after_the_yield_propagates_the_blocks_error) {
    aw_test_run(m3_status_body, NULL, 0);
}

/* CPython's test_async_exit_exception_explicit_none_context: an exit stack
 * inside the generator turns the block's error into its own. */
static int m3_turn(void *arg, const aw_err_t *err) {
    return aw_raise(-EDOM, "the exit stack's callback replaces %s", err ? aw_err_name(err->code) : "nothing");
}
static int m3_xs_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, m3_turn, NULL);
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int m3_xs_body(void *arg) {
    aw_with (aw_gencm(m3_xs_gen, NULL)) {
        aw_fail(-EINVAL, "the block failed");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EDOM, "got %s", aw_err_name(e->code));
    cr_assert_not_null(strstr(e->msg, "replaces EINVAL"), "the callback saw: %s", e->msg);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EINVAL);
    cr_assert_eq(count_code(e, -EINVAL), 1);
    aw_err_clear();
    return 0;
}
Test(gencm, M3_an_exit_stack_in_the_generator_replaces_the_blocks_error) {
    aw_test_run(m3_xs_body, NULL, 0);
}

/* M2 in a generator: its cleanup raises and handles an error of its own;
 * the block's error is kept. */
static int m3_selfh_gen(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    if (aw_raise(-EIO, "cleanup hiccup, handled") < 0)
        aw_err_clear();
    return rc < 0 ? rc : aw_status();
}
static int m3_selfh_body(void *arg) {
    aw_with (aw_gencm(m3_selfh_gen, NULL)) {
        aw_fail(-EINVAL, "the block failed");
    }
    cr_assert_eq(aw_status(), -EINVAL);
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    aw_err_clear();
    return 0;
}
Test(gencm, M2_a_clear_in_the_generators_cleanup_keeps_the_blocks_error) {
    aw_test_run(m3_selfh_body, NULL, 0);
}

/* The block is cancelled: the manager around the yield sees the cancel. */
static tx_t m3_cancel_tx;
static int m3_cancel_child(void *arg) {
    aw_with (aw_gencm(m3_tx_gen, &m3_cancel_tx)) {
        aw_sleep(AW_SEC(10));
    }
    return aw_status();
}
static int m3_cancel_body(void *arg) {
    aw_task_t *h;
    aw_spawn(NULL, m3_cancel_child, NULL, &h);
    aw_sleep_ms(1);
    aw_task_cancel(h);
    cr_assert_eq(aw_task_join(h), -ECANCELED);
    cr_assert_eq(m3_cancel_tx.seen, -ECANCELED, "it saw %s", aw_err_name(m3_cancel_tx.seen));
    cr_assert_eq(m3_cancel_tx.commits, 0);
    cr_assert_eq(count_code(aw_err_current(), -ECANCELED), 1);
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_manager_held_around_the_yield_sees_the_blocks_cancel) {
    aw_test_run(m3_cancel_body, NULL, 0);
}

/* ================= M3: scopes and groups the generator opens around its yield ================= */

/* seed 002 section 9 written the seed's way: `async with timeout(...): yield` */
static int m3_fail_after_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int m3_fail_after_body(void *arg) {
    int rc = 1;
    aw_with (aw_gencm(m3_fail_after_gen, NULL)) {
        rc = aw_sleep(AW_SEC(2));
    }
    cr_assert_eq(rc, -ECANCELED, "the generator's deadline did not cut the block");
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    cr_assert_eq(count_code(aw_err_current(), -ECANCELED), 1);
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0, "the deadline outlived the block");
    return 0;
}
Test(gencm, M3_a_deadline_around_the_yield_times_out_the_block) {
    aw_test_run(m3_fail_after_body, NULL, 0);
}

static int m3_move_on_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_move_on_after(AW_MS(5))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int m3_move_on_body(void *arg) {
    int rc = 1;
    aw_with (aw_gencm(m3_move_on_gen, NULL)) {
        rc = aw_sleep(AW_SEC(2));
    }
    cr_assert_eq(rc, -ECANCELED, "the generator's move-on scope did not cut the block");
    cr_assert_eq(aw_status(), 0, "the move-on's own cancel leaked out: %s", aw_err_name(aw_status()));
    return 0;
}
Test(gencm, M3_a_move_on_scope_around_the_yield_cuts_the_block_quietly) {
    aw_test_run(m3_move_on_body, NULL, 0);
}

static int m3_failing_child(void *arg) {
    aw_sleep_ms(3);
    return aw_raise(-EIO, "background child failed");
}
static int m3_group_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_spawn(grp, m3_failing_child, NULL, NULL);
        aw_gencm_yield(g, grp);
    }
    return aw_status();
}
static int m3_group_body(void *arg) {
    int rc = 1;
    aw_with (aw_gencm(m3_group_gen, NULL)) {
        rc = aw_sleep(AW_SEC(2));
    }
    cr_assert_eq(rc, -ECANCELED, "a child's failure did not cancel the block");
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP, "got %s", aw_err_name(e->code));
    cr_assert_not_null(e->members);
    cr_assert_eq(e->members->code, -EIO);
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_group_around_the_yield_cancels_the_block_when_a_child_fails) {
    aw_test_run(m3_group_body, NULL, 0);
}

/* The cancel that group made ends with it (SEMANTICS M4), as a plain
 * group's does: what leaves the block is the group's error alone, no
 * -ECANCELED in its chain that nobody outside asked for (Trio's nursery
 * in an @asynccontextmanager raises the group with no Cancelled). */
static int m4_group_error_alone(const char *how) {
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e, "%s", how);
    cr_assert_eq(e->code, -AW_EGROUP, "%s: got %s", how, aw_err_name(e->code));
    cr_assert_null(aw_err_find(e, -ECANCELED), "%s: the group's own cancel is still in the chain", how);
    cr_assert_eq(aw_err_count(e), 2, "%s: the group and its member", how);
    aw_err_clear();
    return 0;
}
static int m4_group_body(void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_spawn(grp, m3_failing_child, NULL, NULL);
        aw_sleep(AW_SEC(2));
    }
    m4_group_error_alone("a plain group");
    aw_with (aw_gencm(m3_group_gen, NULL)) {
        aw_sleep(AW_SEC(2));
    }
    m4_group_error_alone("a group around the yield");
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(m3_group_gen, NULL), NULL);
        aw_sleep(AW_SEC(2));
    }
    m4_group_error_alone("the same in an exit stack");
    return 0;
}
Test(gencm, M4_a_group_around_the_yield_ends_its_own_cancel_as_a_plain_group_does) {
    aw_test_run(m4_group_body, NULL, 0);
}

/* A deadline around the yield that the block answers with an error of its
 * own: the timeout is recorded under that error, as around a plain block
 * (SEMANTICS G10, Python 3.13: OSError <- TimeoutError <- CancelledError;
 * awith/scope.h: "EIO <- ETIMEDOUT <- ECANCELED" after a fail-after). */
static int g10_deadline_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(AW_MS(3))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static void g10_check(const char *how) {
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e, "%s", how);
    cr_assert_eq(e->code, -EIO, "%s: got %s", how, aw_err_name(e->code));
    cr_assert(e->context && e->context->code == -ETIMEDOUT, "%s: the timeout is not under the error", how);
    cr_assert(e->context->context && e->context->context->code == -ECANCELED, "%s", how);
    cr_assert_eq(aw_err_count(e), 3, "%s", how);
    aw_err_clear();
}
static int g10_body(void *arg) {
    aw_with (aw_fail_after(AW_MS(3))) {
        if (aw_sleep(AW_SEC(2)) < 0)
            aw_raise(-EIO, "the block gave up");
    }
    g10_check("a plain block");
    aw_with (aw_gencm(g10_deadline_gen, NULL)) {
        if (aw_sleep(AW_SEC(2)) < 0)
            aw_raise(-EIO, "the block gave up");
    }
    g10_check("a deadline around the yield");
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(g10_deadline_gen, NULL), NULL);
        if (aw_sleep(AW_SEC(2)) < 0)
            aw_raise(-EIO, "the block gave up");
    }
    g10_check("the same in an exit stack");
    return 0;
}
Test(gencm, G10_a_deadline_around_the_yield_keeps_its_timeout_under_the_blocks_error) {
    aw_test_run(g10_body, NULL, 0);
}

/* An exit in the block that fails while the cancel of a scope held at the
 * yield unwinds it (a close failing): the scope ends its cancel and
 * nothing else (SEMANTICS M4, K5), as around a plain block: "EPIPE <-
 * ECANCELED" after a move-on, "EPIPE <- ETIMEDOUT <- ECANCELED" after a
 * fail-after (awith/scope.h). */
static int m4_enter(void *self, void **out) { return 0; }
static int m4_failing_close(void *self, const aw_err_t *err) { return aw_raise(-EPIPE, "close failed"); }
static const aw_cm_type_t m4_closing_type = {"closing", m4_enter, m4_failing_close, 0, 0, NULL};
static int m4_move_on_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_move_on_after(AW_MS(3))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static void m4_block(void) {
    aw_with (aw_cm(&m4_closing_type, NULL)) {
        aw_sleep(AW_SEC(2));
    }
}
static void m4_check(const char *how, bool timeout) {
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e, "%s: the close's failure was lost", how);
    cr_assert_eq(e->code, -EPIPE, "%s: got %s", how, aw_err_name(e->code));
    if (timeout) {
        cr_assert(e->context && e->context->code == -ETIMEDOUT, "%s: no timeout under the failure", how);
        e = e->context;
    }
    cr_assert(e->context && e->context->code == -ECANCELED && !e->context->context,
              "%s: the cancel that unwound the block, once, below", how);
    aw_err_clear();
}
static int m4_close_body(void *arg) {
    aw_with (aw_move_on_after(AW_MS(3))) m4_block();
    m4_check("a plain move-on", false);
    aw_with (aw_gencm(m4_move_on_gen, NULL)) m4_block();
    m4_check("a move-on around the yield", false);
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(m4_move_on_gen, NULL), NULL);
        m4_block();
    }
    m4_check("the same in an exit stack", false);
    aw_with (aw_fail_after(AW_MS(3))) m4_block();
    m4_check("a plain fail-after", true);
    aw_with (aw_gencm(g10_deadline_gen, NULL)) m4_block();
    m4_check("a fail-after around the yield", true);
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(g10_deadline_gen, NULL), NULL);
        m4_block();
    }
    m4_check("the same in an exit stack", true);
    return 0;
}
Test(gencm, M4_an_exit_failing_under_a_held_scopes_cancel_leaves_the_block) {
    aw_test_run(m4_close_body, NULL, 0);
}

/* Decision 6 through composed generator managers: the deadline held two
 * generator managers deep (one entered around the other's yield) expires
 * in the tick an enclosing cancel scope is cancelled. The timeout belongs
 * to that cancel, and the cancel scope that ends it drops it too: the
 * scope is left quietly, as with the deadline around a plain block or
 * held one generator deep (awith/scope.h; Trio's move_on_after around a
 * fail_after). */
static int d6_zero_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(0)) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int d6_compose_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_gencm(d6_zero_gen, NULL)) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int d6_compose_body(void *arg) {
    for (int form = 0; form < 3; form++) {
        aw_with (aw_scope_t *cs, aw_cancel_scope()) {
            if (form == 0) {
                aw_with (aw_fail_after(0)) {
                    aw_scope_cancel(cs);
                    aw_sleep(AW_SEC(2));
                }
            } else {
                aw_with (aw_gencm(form == 1 ? d6_zero_gen : d6_compose_gen, NULL)) {
                    aw_scope_cancel(cs);
                    aw_sleep(AW_SEC(2));
                }
            }
        }
        cr_assert_eq(aw_status(), 0, "form %d: the cancel scope left with %s", form,
                     aw_err_name(aw_status()));
    }
    return 0;
}
Test(gencm, decision6_a_deadline_held_two_managers_deep_ends_with_the_outer_cancel) {
    aw_test_run(d6_compose_body, NULL, 0);
}

/* A cancel of the user itself still leaves the block (never lost), even
 * through a generator that opened a scope that ends its own cancels. */
static int m3_long_move_on_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_move_on_after(AW_SEC(60))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int m3_user_cancel_child(void *arg) {
    aw_with (aw_gencm(m3_long_move_on_gen, NULL)) {
        aw_event_set(arg);
        aw_sleep(AW_SEC(10));
    }
    return aw_status();
}
static int m3_user_cancel_body(void *arg) {
    aw_task_t *h;
    aw_event_t in_block = AW_EVENT_INIT;
    aw_spawn(NULL, m3_user_cancel_child, &in_block, &h);
    /* a condition, not a time: the child is in the block, below the scope */
    cr_assert_eq(aw_event_wait(&in_block), 0);
    aw_task_cancel(h);
    cr_assert_eq(aw_task_join(h), -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_cancel_of_the_user_passes_through_a_generators_scope) {
    aw_test_run(m3_user_cancel_body, NULL, 0);
}

/* The generator's deadline passes while the block runs without
 * suspending: the block's next checkpoint (and yield) sees it, as it
 * would see a deadline of its own (found by the composition fuzzer). */
static int m3_spin_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_move_on_after(AW_MS(1))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int m3_spin_body(void *arg) {
    int *which = arg;
    int rc = 1;
    aw_with (aw_gencm(m3_spin_gen, NULL)) {
        aw_ns_t until = aw_now() + AW_MS(3);
        while (aw_now() < until)
            ; /* past the generator's deadline without a suspension point */
        rc = *which ? aw_yield() : aw_checkpoint();
    }
    cr_assert_eq(rc, -ECANCELED, "the block's %s did not see the generator's past deadline",
                 *which ? "yield" : "checkpoint");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gencm, M3_a_checkpoint_in_the_block_sees_the_generators_past_deadline) {
    int which = 0;
    aw_test_run(m3_spin_body, &which, 0);
}
Test(gencm, M3_a_yield_in_the_block_sees_the_generators_past_deadline) {
    int which = 1;
    aw_test_run(m3_spin_body, &which, 0);
}

/* ================= the generator is not a task (issue 14) ================= */

/* It runs on a bare coroutine as its user: no task is made per use, and
 * inside it the running task is the user. */
static aw_task_t *seen_self;
static size_t seen_tasks;
static int self_gen(aw_gencm_t *g, void *arg) {
    aw_loop_stats_t s;
    aw_loop_stats(&s);
    seen_tasks = s.tasks;
    seen_self = aw_task_self();
    return aw_gencm_yield(g, arg);
}
static int no_task_body(void *arg) {
    aw_loop_stats_t before;
    aw_loop_stats(&before);
    aw_with (aw_gencm(self_gen, NULL)) {
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(seen_tasks, before.tasks, "a task was made for the generator");
    cr_assert_eq(seen_self, aw_task_self());
    return 0;
}
Test(gencm, issue14_a_generator_manager_makes_no_task) { aw_test_run(no_task_body, NULL, 0); }

/* M3 inside an exit stack: the stack's own shield sits between the block
 * and the generator's scope when the entry exits; the generator's cleanup
 * still runs inside its scope and the chain is whole afterwards. */
static int es_scope_gen(aw_gencm_t *g, void *arg) {
    int *cleaned = arg;
    aw_with (aw_fail_after(AW_SEC(60))) {
        aw_gencm_yield(g, NULL);
        cr_assert_lt(aw_effective_deadline(), AW_NEVER, "the cleanup left its scope");
        *cleaned += aw_sleep_ms(1) == 0;
    }
    return aw_status();
}
static int es_scope_body(void *arg) {
    int cleaned = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_gencm(es_scope_gen, &cleaned), NULL), 0);
        cr_assert_lt(aw_effective_deadline(), AW_NEVER, "the generator's scope does not cover");
    }
    cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
    cr_assert_eq(cleaned, 1);
    cr_assert_eq(aw_effective_deadline(), AW_NEVER, "the generator's scope outlived it");
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(gencm, M3_a_scope_around_the_yield_inside_an_exit_stack) { aw_test_run(es_scope_body, NULL, 0); }

/* M3: the groups a generator holds around its yield keep covering their
 * children while its cleanup runs. The user's outer group is cancelled
 * while a child the block spawned into the generator's group sleeps; the
 * block ends without another point, and the generator's cleanup runs in
 * the user's exit shield. The child is cancelled at once (Trio: the
 * nursery in an @asynccontextmanager is not shielded), not left to sleep
 * through it with status 0 (composition fuzzer, seed 2033752). */
static int m3_child_status = 1;
static int m3_sleeping_child(void *arg) {
    aw_with (aw_group_t *h, aw_group()) { /* the fuzzer's shape: a group of its own */
        aw_sleep(AW_SEC(2));
    }
    return m3_child_status = aw_status();
}
static int m3_hold_group_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_gencm_yield(g, grp);
    }
    return aw_status();
}
static int m3_outer_cancel_body(void *arg) {
    aw_with (aw_group_t *outer, aw_group()) {
        aw_with (aw_group_t *grp, aw_gencm(m3_hold_group_gen, NULL)) {
            cr_assert_eq(aw_spawn(grp, m3_sleeping_child, NULL, NULL), 0);
            aw_yield(); /* the child starts and sleeps */
            aw_group_cancel(outer);
        }
    }
    cr_assert_eq(m3_child_status, -ECANCELED, "the child ended with %s",
                 aw_err_name(m3_child_status));
    cr_assert_eq(aw_status(), 0, "the outer group ends its own cancel (%s)",
                 aw_err_name(aw_status()));
    return 0;
}
Test(gencm, M3_an_outer_cancel_reaches_the_generators_group_in_its_cleanup) {
    aw_test_run(m3_outer_cancel_body, NULL, 0);
}

/* ... while what the generator starts in its cleanup is shielded as any
 * exit is: a group of cleanup workers opened after the yield finishes its
 * work although the user's scope was cancelled. */
static int m3_worker_status = 1;
static int m3_cleanup_worker(void *arg) {
    aw_sleep_ms(3);
    return m3_worker_status = aw_status();
}
static int m3_cleanup_group_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_gencm_yield(g, grp);
        aw_with (aw_group_t *workers, aw_group()) {
            aw_spawn(workers, m3_cleanup_worker, NULL, NULL);
        }
    }
    return aw_status();
}
static int m3_cleanup_group_body(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_gencm(m3_cleanup_group_gen, NULL)) {
            aw_scope_cancel(s);
        }
    }
    cr_assert_eq(m3_worker_status, 0, "the cleanup worker ended with %s",
                 aw_err_name(m3_worker_status));
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_group_opened_in_the_generators_cleanup_is_shielded) {
    aw_test_run(m3_cleanup_group_body, NULL, 0);
}

/* ... and a deadline of the user's that expires while the cleanup drains
 * the generator's group reaches the group's children too: the child
 * asleep is cancelled (not left to sleep its 2 s with status 0), the
 * group, judged by its children's view, leaves with the cancel, and the
 * user's fail-after reports its timeout. */
static int m3_drained_rc = 1;
static int m3_drained_sleeper(void *arg) {
    m3_drained_rc = aw_sleep(AW_SEC(2));
    return aw_status();
}
static int m3_deadline_in_cleanup_body(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_group_t *grp, aw_gencm(m3_hold_group_gen, NULL)) {
            cr_assert_eq(aw_spawn(grp, m3_drained_sleeper, NULL, NULL), 0);
        } /* the block ends at once: the deadline expires in the cleanup */
    }
    cr_assert_eq(m3_drained_rc, -ECANCELED, "the child's sleep ended with %s",
                 aw_err_name(m3_drained_rc));
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_users_deadline_reaches_the_generators_group_in_its_cleanup) {
    aw_test_run(m3_deadline_in_cleanup_body, NULL, 0);
}

/* ... and so is what runs on the cleanup's behalf: a generator manager the
 * cleanup uses (its function runs as a task of its own) waits unbothered
 * by the user's cancel, as the cleanup itself does. */
static int m3_inner_status = 1;
static int m3_inner_gen(aw_gencm_t *g, void *arg) {
    m3_inner_status = aw_sleep_ms(3);
    aw_gencm_yield(g, NULL);
    return aw_status();
}
static int m3_cleanup_uses_gencm_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_gencm_yield(g, grp);
    }
    aw_with (aw_gencm(m3_inner_gen, NULL)) {
    }
    return aw_status();
}
static int m3_cleanup_uses_gencm_body(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_gencm(m3_cleanup_uses_gencm_gen, NULL)) {
            aw_scope_cancel(s);
        }
    }
    cr_assert_eq(m3_inner_status, 0, "the cleanup's generator manager's sleep ended with %s",
                 aw_err_name(m3_inner_status));
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_generator_manager_used_in_the_cleanup_is_shielded) {
    aw_test_run(m3_cleanup_uses_gencm_body, NULL, 0);
}

/* A deadline of the user's expires while a child of a group in the block
 * sleeps; the block runs inside a generator's scope (covered). The first
 * timer to fire expires the user's scope; the child's own timer, due at
 * the same deadline, must then wake it cancelled, not find nothing new
 * to expire and re-arm at the past deadline forever (the loop spun at
 * 100% CPU: composition fuzzer, seed 79379 with realtime on). And the
 * expiry reaches the group's children at once: the group's scope hangs
 * below the generator's, which cover the owner. */
static int m3_sleeper_rc = 1;
static int m3_sleeper(void *arg) {
    m3_sleeper_rc = aw_sleep(AW_SEC(2));
    return aw_status();
}
static int m3_expiry_body(void *arg) {
    int *child_first = arg;
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_gencm(m3_long_move_on_gen, NULL)) {
            aw_with (aw_group_t *g, aw_group()) {
                aw_spawn(g, m3_sleeper, NULL, NULL);
                if (*child_first)
                    aw_yield(); /* the child arms its timer first */
                aw_sleep(AW_SEC(2));
            }
        }
    }
    cr_assert_eq(m3_sleeper_rc, -ECANCELED, "the child's sleep ended with %s",
                 aw_err_name(m3_sleeper_rc));
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_users_deadline_wakes_a_child_in_a_covered_block, .timeout = 20) {
    int order[2] = {0, 1};
    for (int i = 0; i < 2; i++) {
        m3_sleeper_rc = 1;
        aw_test_run(m3_expiry_body, &order[i], 0);
    }
}

/* ... and a cancel of the user's scope reaches such a child at once, not
 * when the owner leaves the group: here the owner waits shielded, and the
 * child has ended cancelled before that wait is over. */
static int m3_cancelled_child_rc = 1;
static int m3_cancel_sleeper(void *arg) {
    m3_cancelled_child_rc = aw_sleep(AW_SEC(2));
    return aw_status();
}
static int m3_cancel_reach_body(void *arg) {
    aw_with (aw_scope_t *outer, aw_cancel_scope()) {
        aw_with (aw_gencm(m3_long_move_on_gen, NULL)) {
            aw_with (aw_group_t *g, aw_group()) {
                aw_spawn(g, m3_cancel_sleeper, NULL, NULL);
                aw_yield(); /* the child sleeps */
                aw_scope_cancel(outer);
                aw_with (aw_shield(AW_NEVER)) {
                    aw_sleep_ms(5);
                }
                cr_assert_eq(m3_cancelled_child_rc, -ECANCELED,
                             "the child was not woken by the cancel (%s)",
                             aw_err_name(m3_cancelled_child_rc));
            }
        }
    }
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_cancel_of_the_user_reaches_a_child_in_a_covered_block_at_once) {
    aw_test_run(m3_cancel_reach_body, NULL, 0);
}

/* aw_gencm_yield is the generator function's alone: from the block (on
 * the user's stack), from another task, or for an instance not entered,
 * it fails with -AW_EPROTOCOL and changes nothing: the generator still
 * runs its cleanup once, after the block. */
static aw_gencm_t *outsider_g;
static int outsider(void *arg) {
    (void)arg;
    int rc = aw_gencm_yield(outsider_g, NULL);
    cr_assert_eq(rc, -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "outside its generator"));
    aw_err_clear();
    return 0;
}
static int yield_outside_body(void *arg) {
    log_[0] = 0;
    aw_gencm_t fresh = AW_GENCM_INIT(plain, NULL);
    cr_assert_eq(aw_gencm_yield(&fresh, NULL), -AW_EPROTOCOL);
    aw_err_clear();
    aw_gencm_t m = AW_GENCM_INIT(plain, "v");
    outsider_g = &m;
    aw_with (aw_cm(&aw_gencm_type, &m)) {
        cr_assert_eq(aw_gencm_yield(&m, NULL), -AW_EPROTOCOL);
        cr_assert(strstr(aw_err_current()->msg, "outside its generator"));
        aw_err_clear();
        aw_with (aw_group_t *grp, aw_group())
            aw_spawn(grp, outsider, NULL, NULL);
        note("body");
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "setup;body;cleanup;");
    return 0;
}
Test(gencm, yield_outside_its_generator_is_refused) { aw_test_run(yield_outside_body, NULL, 0); }

/* C12: aw_gencm_call returns what leaves its block, not an error pending
 * before the call (an exit's handed error, a failure not yet handled). */
static int c12p_gen(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, NULL); }
static int c12p_fn(void *arg) { return aw_sleep_ms(1); }
static int c12p_rc = 1;
static int c12p_enter(void *self, void **out) { return 0; }
static int c12p_exit(void *self, const aw_err_t *err) {
    c12p_rc = aw_gencm_call(c12p_gen, NULL, c12p_fn, NULL);
    return 0;
}
static const aw_cm_type_t c12p_type = {.name = "calls-in-exit", .enter = c12p_enter, .exit = c12p_exit};
static int c12p_body(void *arg) {
    aw_with (aw_cm(&c12p_type, NULL)) {
        aw_fail(-EIO, "block failed");
    }
    cr_assert_eq(c12p_rc, 0, "in an exit handed EIO, a clean call returned %s", aw_err_name(c12p_rc));
    aw_err_clear();
    aw_raise(-ENOENT, "earlier failure");
    cr_assert_eq(aw_gencm_call(c12p_gen, NULL, c12p_fn, NULL), 0);
    cr_assert_eq(aw_status(), -ENOENT, "still pending");
    aw_err_clear();
    return 0;
}
Test(gencm, C12_the_decorator_form_returns_its_own_outcome_not_an_older_error) {
    aw_test_run(c12p_body, NULL, 0);
}

/* M3 with G6: a generator that yields the deadline scope it holds around
 * its yield (Trio's `with fail_after(t) as cs: yield cs`) lets the block
 * move it: later (the block outlives the old deadline) or earlier (the
 * block is cut at once, and times out). */
static int m3r_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_scope_t *s, aw_fail_after(*(aw_ns_t *)arg)) {
        aw_gencm_yield(g, s);
    }
    return aw_status();
}
static int m3r_body(void *arg) {
    aw_ns_t short_ = AW_MS(2), long_ = AW_SEC(10);
    int rc = 1;
    aw_with (aw_scope_t *s, aw_gencm(m3r_gen, &short_)) {
        cr_assert_eq(aw_scope_reschedule(s, aw_now() + AW_SEC(10)), 0);
        rc = aw_sleep_ms(10);
    }
    cr_assert_eq(rc, 0, "the old deadline still cut the block");
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    aw_with (aw_scope_t *s, aw_gencm(m3r_gen, &long_)) {
        cr_assert_eq(aw_scope_reschedule(s, aw_now()), 0);
        rc = aw_sleep(AW_SEC(10));
    }
    cr_assert_eq(rc, -ECANCELED, "the earlier deadline did not cut the block");
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(gencm, M3_a_deadline_held_at_the_yield_can_be_moved_by_the_block) {
    aw_test_run(m3r_body, NULL, 0);
}

/* M3 with M5: a generator manager holding a deadline around its yield,
 * entered into an exit stack inside a block that has ended since (the
 * seed's async_operation_with_timeout, entered into a stack under a
 * per-item timeout). Its cleanup still runs inside its own deadline,
 * which cuts the cleanup's wait, as it does when entered at the stack's
 * level. */
static int m3m5_cleanup_rc;
static int m3m5_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(AW_MS(20))) {
        aw_gencm_yield(g, NULL);
        m3m5_cleanup_rc = aw_sleep(AW_SEC(2)); /* still inside the deadline */
    }
    return aw_status();
}
static int m3m5_body(void *arg) {
    m3m5_cleanup_rc = 1;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_with (aw_move_on_after(AW_SEC(60))) {
            aw_exitstack_enter(st, aw_gencm(m3m5_gen, NULL), NULL);
        }
    }
    cr_assert_eq(m3m5_cleanup_rc, -ECANCELED, "the generator's deadline did not cover its cleanup");
    cr_assert_eq(aw_status(), -ETIMEDOUT, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(gencm, M3_M5_a_deadline_around_the_yield_covers_the_cleanup_after_its_block_ended) {
    aw_test_run(m3m5_body, NULL, 0);
}

/* C12 (Python: the decorated function's exception goes through the
 * generator): a code the decorated function returns without raising is
 * what leaves the block, as a task's return is its status (K5). The
 * generator sees it at its yield, and the call returns it, pending. */
static int c12b_seen = 1;
static int c12b_gen(aw_gencm_t *g, void *arg) {
    c12b_seen = aw_gencm_yield(g, NULL);
    return c12b_seen;
}
static int c12b_fn(void *arg) { return -EIO; } /* no aw_raise */
static int c12b_body(void *arg) {
    int rc = aw_gencm_call(c12b_gen, NULL, c12b_fn, NULL);
    cr_assert_eq(c12b_seen, -EIO, "the generator saw %s at its yield", aw_err_name(c12b_seen));
    cr_assert_eq(rc, -EIO, "the call returned %s", aw_err_name(rc));
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}
Test(gencm, C12_a_code_the_decorated_function_returns_without_raising_leaves_the_block) {
    aw_test_run(c12b_body, NULL, 0);
}

/* C6 through nesting (seed 003, "combined" managers): a generator
 * manager holding two others around its yield, all three re-raising.
 * The block's error leaves unchanged, once, with nothing added to its
 * chain, and every cleanup ran in reverse order. */
static char c6n_log[64];
static int c6n_res(aw_gencm_t *g, void *arg) {
    const char *name = arg;
    strcat(c6n_log, "+");
    strcat(c6n_log, name);
    int rc = aw_gencm_yield(g, (void *)name);
    strcat(c6n_log, "-");
    strcat(c6n_log, name);
    return rc;
}
static int c6n_combined(aw_gencm_t *g, void *arg) {
    aw_with (char *a, aw_gencm(c6n_res, "A"))
    aw_with (char *b, aw_gencm(c6n_res, "B")) {
        char *pair[2] = {a, b};
        aw_gencm_yield(g, pair);
    }
    return aw_status();
}
static int c6n_body(void *arg) {
    const aw_err_t *raised = NULL;
    aw_with (char **pair, aw_gencm(c6n_combined, NULL)) {
        cr_assert_str_eq(pair[0], "A");
        cr_assert_str_eq(pair[1], "B");
        aw_raise(-EINVAL, "the block failed");
        raised = aw_err_current();
        aw_leave();
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e, raised, "not the record the block raised");
    cr_assert_eq(e->code, -EINVAL);
    cr_assert_null(e->context, "something was chained to it: %s",
                   e->context ? aw_err_name(e->context->code) : "");
    cr_assert_str_eq(c6n_log, "+A+B-B-A");
    aw_err_clear();
    return 0;
}
Test(gencm, C6_generator_managers_nested_in_one_reraise_the_blocks_error_once) {
    aw_test_run(c6n_body, NULL, 0);
}

/* M3 with D8 (a Python user's AsyncExitStack holding an
 * @asynccontextmanager whose `async with Suppressing():` surrounds the
 * yield): the class exit held at the yield suppresses the block's error,
 * the generator returns what is pending (nothing), so the error is gone
 * for the stack's outer entries too and the code after the block runs. */
static char m3s_log[128];
static int m3s_enter(void *self, void **out) { return 0; }
static int m3s_exit(void *self, const aw_err_t *err) {
    strcat(m3s_log, err ? "suppress(EINVAL);" : "clean;");
    return err ? AW_SUPPRESS : 0;
}
static const aw_cm_type_t m3s_type = {.name = "suppressing", .enter = m3s_enter, .exit = m3s_exit};
static int m3s_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_cm(&m3s_type, NULL)) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int m3s_outer(void *arg, const aw_err_t *err) {
    strcat(m3s_log, err ? "outer-saw-error;" : "outer-clean;");
    return 0;
}
static int m3s_body(void *arg) {
    int after = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_push_exit(st, m3s_outer, NULL), 0);
        cr_assert_eq(aw_exitstack_enter(st, aw_gencm(m3s_gen, NULL), NULL), 0);
        aw_fail(-EINVAL, "the block failed");
    }
    after = 1;
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    cr_assert_str_eq(m3s_log, "suppress(EINVAL);outer-clean;");
    cr_assert_eq(after, 1);
    return 0;
}
Test(gencm, M3_D8_an_exit_held_at_the_yield_suppresses_for_the_stacks_outer_entries) {
    aw_test_run(m3s_body, NULL, 0);
}

/* ================= audit of C: the halves the tests above leave out ================= */

/* C3: the second aw_gencm_yield returns -AW_EPROTOCOL at once, the block
 * fails with "didn't stop" naming the manager, and a block error is kept
 * in its chain. */
static int second_yield_rc = 1;
static int twice_noting(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    note(rc ? "first-err" : "first-ok");
    second_yield_rc = aw_gencm_yield(g, NULL);
    note("after-second");
    return second_yield_rc < 0 ? second_yield_rc : 0;
}
static int c3_full_body(void *arg) {
    aw_with (aw_gencm(twice_noting, NULL)) {
        note("body");
    }
    cr_assert_eq(second_yield_rc, -AW_EPROTOCOL, "the second yield returned %d", second_yield_rc);
    cr_assert_str_eq(log_, "body;first-ok;after-second;", "the block ran again or the function stopped");
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    const aw_err_t *e = aw_err_current();
    cr_assert(strstr(e->msg, "didn't stop") && strstr(e->msg, "twice_noting"),
              "the message does not say didn't stop naming the manager: %s", e->msg);
    aw_err_clear();
    /* after a failed block: the block's error in its chain */
    log_[0] = 0;
    second_yield_rc = 1;
    aw_with (aw_gencm(twice_noting, NULL)) {
        aw_fail(-EIO, "body failed");
    }
    cr_assert_eq(second_yield_rc, -AW_EPROTOCOL);
    cr_assert_str_eq(log_, "first-err;after-second;");
    e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "%s", aw_err_name(aw_status()));
    cr_assert(strstr(e->msg, "didn't stop"), "%s", e->msg);
    cr_assert_not_null(aw_err_find(e, -EIO), "the block's error left the chain");
    aw_err_clear();
    return 0;
}
Test(gencm, C3_a_second_yield_returns_EPROTOCOL_at_once_and_keeps_the_blocks_error) {
    aw_test_run(c3_full_body, NULL, 0);
}

/* C2: the "didn't yield" message names the manager (its function). */
static int c2_named_body(void *arg) {
    aw_with (aw_gencm(noyield_ok, NULL)) {
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "noyield_ok"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}
Test(gencm, C2_didnt_yield_names_the_manager) { aw_test_run(c2_named_body, NULL, 0); }

/* C4: on a clean block the yield returns 0 and there is no error record. */
static int c4_clean_rc = 1;
static const aw_err_t *c4_clean_err = (void *)1;
static int c4_clean_gen(aw_gencm_t *g, void *arg) {
    c4_clean_rc = aw_gencm_yield(g, NULL);
    c4_clean_err = aw_gencm_error(g);
    return c4_clean_rc;
}
static int c4_clean_body(void *arg) {
    aw_raise(-ENOENT, "pending before the block");
    aw_with (aw_gencm(c4_clean_gen, NULL)) {
        uint64_t m = aw_err_mark();
        aw_raise(-EIO, "handled inside the block");
        aw_err_restore(m);
    }
    cr_assert_eq(c4_clean_rc, 0);
    cr_assert_null(c4_clean_err, "a clean block handed the generator an error");
    cr_assert_eq(aw_status(), -ENOENT);
    aw_err_clear();
    return 0;
}
Test(gencm, C4_a_clean_block_gives_0_and_no_record) { aw_test_run(c4_clean_body, NULL, 0); }

/* C11: a reused instance does not run its function again. */
static int c11_runs;
static int counted(aw_gencm_t *g, void *arg) {
    c11_runs++;
    return aw_gencm_yield(g, NULL);
}
static int c11_norun_body(void *arg) {
    aw_gencm_t m = AW_GENCM_INIT(counted, NULL);
    aw_with (aw_cm(&aw_gencm_type, &m)) {
    }
    aw_with (aw_cm(&aw_gencm_type, &m)) {
    }
    cr_assert_eq(aw_status(), -EALREADY);
    aw_err_clear();
    cr_assert_eq(c11_runs, 1, "the function ran again on reuse");
    /* a fresh instance per evaluation of aw_gencm() */
    for (int i = 0; i < 2; i++)
        aw_with (aw_gencm(counted, NULL)) {
        }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(c11_runs, 3);
    return 0;
}
Test(gencm, C11_a_reused_instance_does_not_run_again) { aw_test_run(c11_norun_body, NULL, 0); }

/* C13: after the shielded cleanup, the cancel is visible again in the
 * task: the next cancellation point returns -ECANCELED. */
static int c13_after_rc = 1;
static int c13_again_child(void *arg) {
    aw_with (aw_gencm(slow_cleanup, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    c13_after_rc = aw_checkpoint();
    return aw_status();
}
static int c13_again_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c13_again_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_str_eq(log_, "cleanup-complete;");
    cr_assert_eq(c13_after_rc, -ECANCELED, "the cancel was not visible again after the cleanup");
    aw_err_clear();
    return 0;
}
Test(gencm, C13_the_cancel_is_visible_again_after_the_cleanup) { aw_test_run(c13_again_body, NULL, 0); }

/* C13 with an enclosing deadline that fires while the cleanup sleeps: the
 * cleanup is not cut, and the block leaves with -ETIMEDOUT. */
static int c13_dl_body(void *arg) {
    int after = 1;
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(3))) {
        aw_with (aw_gencm(slow_cleanup, NULL)) {
            /* clean block: the deadline fires during the 10 ms cleanup */
        }
        after = aw_checkpoint(); /* G2: a deadline acts at a cancellation point */
    }
    cr_assert_eq(after, -ECANCELED, "the deadline does not apply again after the cleanup");
    cr_assert_str_eq(log_, "cleanup-complete;", "the deadline cut the cleanup");
    cr_assert_geq(aw_now() - t0, AW_MS(10));
    cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(gencm, C13_an_enclosing_deadline_firing_in_the_cleanup_does_not_cut_it) { aw_test_run(c13_dl_body, NULL, 0); }

/* C14 with a deadline: a generator returning 0 on the deadline's cancel
 * does not swallow it; the fail-after still leaves with -ETIMEDOUT. */
static int c14_dl_body(void *arg) {
    int after = 1;
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_gencm(swallow, NULL)) {
            if (aw_sleep(AW_SEC(10)) < 0)
                aw_leave();
        }
        after = aw_status();
    }
    cr_assert_eq(after, -ECANCELED, "the generator swallowed the deadline's cancel");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(gencm, C14_a_generator_cannot_swallow_a_deadline) { aw_test_run(c14_dl_body, NULL, 0); }

/* C14: returning 0 for another error raised while cancelled suppresses
 * that error but the task stays cancelled. */
static int c14_other_after = 1;
static int c14_other_child(void *arg) {
    aw_with (aw_gencm(swallow, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0) {
            aw_fail(-EIO, "failed while cancelled");
        }
    }
    c14_other_after = aw_checkpoint();
    return aw_status();
}
static int c14_other_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c14_other_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_eq(c14_other_after, -ECANCELED);
    aw_err_clear();
    return 0;
}
Test(gencm, C14_suppressing_another_error_leaves_the_task_cancelled) { aw_test_run(c14_other_body, NULL, 0); }

/* C7 under a cancel: the generator failing differently on a cancelled
 * block keeps the cancel on top (c13) with its failure in the chain. */
static int fail_on_cancel(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    if (rc == -ECANCELED)
        return aw_raise(-EPIPE, "cleanup failed");
    return rc;
}
static int c7_cancel_child(void *arg) {
    aw_with (aw_gencm(fail_on_cancel, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int c7_cancel_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c7_cancel_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED, "%s", aw_err_name(rc));
    cr_assert_not_null(aw_err_find(aw_err_current(), -EPIPE), "the cleanup's failure was dropped");
    aw_err_clear();
    return 0;
}
Test(gencm, C7_a_cleanup_failure_on_a_cancelled_block_keeps_the_cancel_on_top) {
    aw_test_run(c7_cancel_body, NULL, 0);
}

/* C8 under a deadline: setup cut by the deadline fails enter with the
 * deadline's error; the block and cleanup never run. */
static int setup_then_yield(aw_gencm_t *g, void *arg) {
    note("setup");
    if (aw_sleep(AW_SEC(10)) < 0)
        return aw_status();
    int rc = aw_gencm_yield(g, NULL);
    note("cleanup");
    return rc;
}
static int c8_dl_body(void *arg) {
    int ran = 0;
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_gencm(setup_then_yield, NULL)) ran = 1;
    }
    cr_assert_eq(ran, 0);
    cr_assert_str_eq(log_, "setup;");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(gencm, C8_a_setup_cut_by_a_deadline_fails_enter_and_runs_no_cleanup) { aw_test_run(c8_dl_body, NULL, 0); }

/* C12: the decorated function's error leaves the call, and the cleanup
 * saw it. */
static int failing_fn(void *arg) { return aw_raise(-EIO, "decorated failed"); }
static int c12_err_body(void *arg) {
    cr_assert_eq(aw_gencm_call(plain, NULL, failing_fn, NULL), -EIO);
    cr_assert_str_eq(log_, "setup;cleanup-err;");
    cr_assert_str_eq(aw_err_current()->msg, "decorated failed");
    aw_err_clear();
    return 0;
}
Test(gencm, C12_the_decorated_functions_error_reaches_the_cleanup_and_leaves) { aw_test_run(c12_err_body, NULL, 0); }

/* C11: entering an instance again while its block is still open (nested)
 * is -EALREADY too, and the open block's cleanup still runs once. */
static int c11_nested_body(void *arg) {
    aw_gencm_t m = AW_GENCM_INIT(counted, NULL);
    c11_runs = 0;
    int inner = 0;
    aw_with (aw_cm(&aw_gencm_type, &m)) {
        aw_with (aw_cm(&aw_gencm_type, &m)) inner = 1;
        cr_assert_eq(inner, 0);
        cr_assert_eq(aw_status(), -EALREADY, "%s", aw_err_name(aw_status()));
        aw_err_clear();
    }
    cr_assert_eq(c11_runs, 1);
    cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
    return 0;
}
Test(gencm, C11_an_instance_entered_again_inside_its_own_block_is_EALREADY) { aw_test_run(c11_nested_body, NULL, 0); }

/* C11: an instance whose enter failed (it did not yield) is used up too. */
static int c11_failed_body(void *arg) {
    aw_gencm_t m = AW_GENCM_INIT(noyield_ok, NULL);
    aw_with (aw_cm(&aw_gencm_type, &m)) {
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();
    aw_with (aw_cm(&aw_gencm_type, &m)) {
    }
    cr_assert_eq(aw_status(), -EALREADY, "%s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(gencm, C11_an_instance_whose_enter_failed_is_used_up) { aw_test_run(c11_failed_body, NULL, 0); }

/* C6 and C14 inside an exit stack: a generator manager entered into a
 * stack re-raises the block's record unchanged, and cannot swallow a
 * cancel there either. */
static int c6_es_body(void *arg) {
    const aw_err_t *raised = NULL;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(plain, NULL), NULL);
        aw_raise(-EIO, "body failed");
        raised = aw_err_current();
        aw_leave();
    }
    cr_assert_eq(aw_err_current(), raised);
    cr_assert_eq(aw_err_count(raised), 1);
    aw_err_clear();
    int after = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            aw_exitstack_enter(st, aw_gencm(swallow, NULL), NULL);
            aw_scope_cancel(s);
            if (aw_sleep(AW_SEC(10)) < 0)
                aw_leave();
        }
        after = aw_status();
    }
    cr_assert_eq(after, -ECANCELED, "a generator in an exit stack swallowed the cancel");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gencm, C6_C14_inside_an_exit_stack) { aw_test_run(c6_es_body, NULL, 0); }

/* C14 / decision 3 for a function that answers the way an exit would,
 * with AW_SUPPRESS: it does not swallow a cancel either. */
static int returns_suppress(aw_gencm_t *g, void *arg) {
    aw_gencm_yield(g, NULL);
    return AW_SUPPRESS;
}
static int c14_sup_child(void *arg) {
    aw_with (aw_gencm(returns_suppress, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    note(aw_status() == -ECANCELED ? "still-cancelled" : "lost");
    return aw_status();
}
static int c14_sup_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c14_sup_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_str_eq(log_, "still-cancelled;", "a generator returning AW_SUPPRESS swallowed the cancel");
    cr_assert_eq(rc, -ECANCELED, "%s", aw_err_name(rc));
    aw_err_clear();
    return 0;
}
Test(gencm, C14_a_generator_returning_AW_SUPPRESS_cannot_swallow_a_cancel) { aw_test_run(c14_sup_body, NULL, 0); }

static int returns_seven(aw_gencm_t *g, void *arg) {
    aw_gencm_yield(g, NULL);
    return 7;
}
static int c5_pos_body(void *arg) {
    aw_with (aw_gencm(returns_suppress, NULL)) {
        aw_fail(-EIO, "body failed");
    }
    cr_assert_eq(aw_status(), 0, "AW_SUPPRESS after a failed block: %s", aw_err_name(aw_status()));
    aw_with (aw_gencm(returns_seven, NULL)) {
        aw_fail(-EIO, "body failed");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(e->msg, "'returns_seven'") && strstr(e->msg, "7"), "%s", e->msg);
    cr_assert_not_null(aw_err_find(e, -EIO), "the block's error left the chain");
    aw_err_clear();
    aw_with (aw_gencm(returns_seven, NULL)) {
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();
    return 0;
}
Test(gencm, C5_A14_a_generator_returning_AW_SUPPRESS_suppresses_and_7_is_a_protocol_error) {
    aw_test_run(c5_pos_body, NULL, 0);
}

static int c14_seven_child(void *arg) {
    aw_with (aw_gencm(returns_seven, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int c14_seven_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c14_seven_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED, "a protocol error hid the cancel: %s", aw_err_name(rc));
    cr_assert_not_null(aw_err_find(aw_err_current(), -AW_EPROTOCOL));
    aw_err_clear();
    return 0;
}
Test(gencm, C14_a_generator_returning_7_on_a_cancelled_block_keeps_the_cancel_on_top) {
    aw_test_run(c14_seven_body, NULL, 0);
}

/* C13 / decision 2: a cleanup cut by its grace under an outer cancel:
 * -ECANCELED stays on top, the overrun naming the function is in its
 * chain; under a deadline the fail-after leaves with the overrun on top
 * of its -ETIMEDOUT (M4). */
static int c13g_child(void *arg) {
    aw_with (aw_gencm(overrunning_cleanup, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int c13g_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c13g_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED, "the overrun went on top of the cancel: %s", aw_err_name(rc));
    const aw_err_t *late = aw_err_find(aw_err_current(), -ETIMEDOUT);
    cr_assert(late && strstr(late->msg, "overrunning_cleanup") && strstr(late->msg, "grace"), "%s",
              late ? late->msg : "(no overrun in the chain)");
    aw_err_clear();
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_gencm(overrunning_cleanup, NULL)) {
            if (aw_sleep(AW_SEC(10)) < 0)
                aw_leave();
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "%s", aw_err_name(e->code));
    cr_assert(strstr(e->msg, "overran"), "the overrun is not on top: %s", e->msg);
    cr_assert_not_null(aw_err_find(e, -ECANCELED));
    aw_err_clear();
    return 0;
}
Test(gencm, C13_a_cleanup_cut_by_its_grace_keeps_the_cancel_and_the_deadline) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(30)};
    cr_assert_eq(aw_main_opts(&o, c13g_body, NULL), 0);
}

/* A13 for a generator manager without its function: refused before
 * anything runs, -AW_EPROTOCOL naming it; the block does not run. */
static int a13_null_body(void *arg) {
    int ran = 0;
    aw_with (aw_gencm(NULL, NULL)) ran = 1;
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "%s", aw_err_name(aw_status()));
    aw_err_clear();
    cr_assert_eq(aw_gencm_call(NULL, NULL, decorated, NULL), -AW_EPROTOCOL);
    aw_err_clear();
    return 0;
}
Test(gencm, A13_a_generator_manager_without_a_function_is_refused) { aw_test_run(a13_null_body, NULL, 0); }

/* C3 on a cancelled block: "didn't stop" joins the chain and the cancel
 * stays on top ((c) 13), as for any other failure of the cleanup. */
static int c3_cancel_child(void *arg) {
    aw_with (aw_gencm(twice_noting, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int c3_cancel_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, c3_cancel_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED, "\"didn't stop\" went on top of the cancel: %s", aw_err_name(rc));
    const aw_err_t *p = aw_err_find(aw_err_current(), -AW_EPROTOCOL);
    cr_assert(p && strstr(p->msg, "didn't stop"), "%s", p ? p->msg : "(no protocol error)");
    aw_err_clear();
    return 0;
}
Test(gencm, C3_didnt_stop_on_a_cancelled_block_keeps_the_cancel_on_top) { aw_test_run(c3_cancel_body, NULL, 0); }

/* A4 for a generator manager: a record the setup raised and left pending
 * before a successful yield (a retried step) is not the block's error;
 * the block starts clean, and a clean block ends clean. */
static int a4_rc = 1;
static int setup_retries(aw_gencm_t *g, void *arg) {
    aw_raise(-EAGAIN, "first try failed, retried");
    a4_rc = aw_gencm_yield(g, NULL);
    return a4_rc;
}
static int a4_body(void *arg) {
    int in_block = 1;
    aw_with (aw_gencm(setup_retries, NULL)) {
        in_block = aw_status();
    }
    cr_assert_eq(in_block, 0, "the setup's record leaked into the block: %s", aw_err_name(in_block));
    cr_assert_eq(a4_rc, 0);
    cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
    return 0;
}
Test(gencm, A4_a_record_the_setup_left_pending_is_not_the_blocks_error) { aw_test_run(a4_body, NULL, 0); }

/* A10 for a generator manager: its cleanup failing on a clean block gets
 * as context only what was pending before the block. */
static int fails_clean(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    if (rc < 0)
        return rc;
    return aw_raise(-EPIPE, "cleanup failed");
}
static int a10_body(void *arg) {
    aw_raise(-ENOENT, "pending before the block");
    const aw_err_t *before = aw_err_current();
    aw_with (aw_gencm(fails_clean, NULL)) {
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_eq(e->context, before, "context is not the older error");
    cr_assert_eq(aw_err_count(e), 2, "%d records", aw_err_count(e));
    aw_err_clear();
    return 0;
}
Test(gencm, A10_a_cleanup_failing_on_a_clean_block_chains_only_the_older_error) { aw_test_run(a10_body, NULL, 0); }

/* C1/C13: the code after the yield runs in the user's exit shield: no
 * cancel is visible there and the effective deadline is the grace's, not
 * an enclosing deadline that already passed. */
static int c1s_pending = -1;
static aw_ns_t c1s_deadline;
static int peeks(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    c1s_pending = aw_cancel_pending();
    c1s_deadline = aw_effective_deadline();
    return rc;
}
static int c1s_body(void *arg) {
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (aw_gencm(peeks, NULL)) {
            if (aw_sleep(AW_SEC(10)) < 0)
                aw_leave();
        }
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(c1s_pending, 0, "a cancel was visible in the cleanup");
    cr_assert_gt(c1s_deadline, t0 + AW_MS(2), "the cleanup saw the expired enclosing deadline");
    return 0;
}
Test(gencm, C1_C13_the_cleanup_sees_no_cancel_and_its_own_grace) { aw_test_run(c1s_body, NULL, 0); }

/* C12: a setup that fails makes the call return its error without
 * running the function; a cancel while the function waits leaves the
 * call with -ECANCELED after the cleanup ran. */
static int c12_fn_ran;
static int c12_sleeper(void *arg) {
    c12_fn_ran++;
    return aw_sleep(AW_SEC(10));
}
static int c12_cancel_child(void *arg) {
    int rc = aw_gencm_call(plain, NULL, c12_sleeper, NULL);
    note(rc == -ECANCELED ? "call-cancelled" : "call-other");
    return rc;
}
static int c12_more_body(void *arg) {
    cr_assert_eq(aw_gencm_call(noyield_err, NULL, c12_sleeper, NULL), -ENOENT);
    cr_assert_eq(c12_fn_ran, 0, "the function ran although the setup failed");
    aw_err_clear();
    aw_task_t *t;
    aw_spawn(NULL, c12_cancel_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_str_eq(log_, "setup;cleanup-err;call-cancelled;");
    aw_err_clear();
    return 0;
}
Test(gencm, C12_a_failed_setup_skips_the_function_and_a_cancel_runs_the_cleanup) { aw_test_run(c12_more_body, NULL, 0); }

/* Decision 2 and 5 together: a group child cancelled because a sibling
 * failed, whose generator manager's cleanup overran its grace: the group
 * error keeps the sibling's failure and the overrun (nothing reported
 * only by the child's cancel). */
static int d25_failer(void *arg) {
    aw_sleep_ms(2);
    return aw_raise(-EPIPE, "sibling failed");
}
static int d25_body(void *arg) {
    aw_with (aw_group_t *gr, aw_group()) {
        aw_spawn(gr, c13g_child, NULL, NULL);
        aw_spawn(gr, d25_failer, NULL, NULL);
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP, "%s", aw_err_name(e->code));
    bool pipe = false, over = false;
    for (const aw_err_t *mm = e->members; mm; mm = mm->next)
        for (const aw_err_t *m = mm; m; m = m->context) {
            pipe |= m->code == -EPIPE;
            over |= m->code == -ETIMEDOUT && strstr(m->msg, "overran") != NULL;
        }
    cr_assert(pipe, "the sibling's failure was dropped");
    cr_assert(over, "the cancelled child's overrun was dropped");
    aw_err_clear();
    return 0;
}
Test(gencm, decision2_a_cancelled_childs_cleanup_overrun_reaches_the_group_error) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(30)};
    cr_assert_eq(aw_main_opts(&o, d25_body, NULL), 0);
}

/* Ports of CPython's Lib/test/test_contextlib_async.py
 * (AsyncContextManagerTestCase). ZeroDivisionError is EDOM,
 * RuntimeError is -AW_EPROTOCOL, StopAsyncIteration is -AW_ECLOSED. */
static int cp_state[8], cp_n;
static void st(int v) { cp_state[cp_n++] = v; }
static int woohoo(aw_gencm_t *g, void *arg) {
    st(1);
    int rc = aw_gencm_yield(g, (void *)(intptr_t)42);
    st(999);
    return rc;
}
static int cp_plain_body(void *arg) {
    cp_n = 0;
    aw_with (void *x, aw_gencm(woohoo, NULL)) {
        cr_assert_eq(cp_n, 1);
        cr_assert_eq((intptr_t)x, 42);
        st((int)(intptr_t)x);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(cp_n, 3);
    cr_assert(cp_state[0] == 1 && cp_state[1] == 42 && cp_state[2] == 999);
    return 0;
}
Test(gencm, cpython_test_contextmanager_plain) { aw_test_run(cp_plain_body, NULL, 0); }

static int cp_finally_body(void *arg) {
    cp_n = 0;
    aw_with (void *x, aw_gencm(woohoo, NULL)) {
        st((int)(intptr_t)x);
        aw_fail(-EDOM, "ZeroDivisionError");
    }
    cr_assert_eq(aw_status(), -EDOM);
    cr_assert_eq(cp_n, 3);
    cr_assert_eq(cp_state[2], 999);
    aw_err_clear();
    return 0;
}
Test(gencm, cpython_test_contextmanager_finally) { aw_test_run(cp_finally_body, NULL, 0); }

/* try: yield / except: yield -> RuntimeError, the body's error as context. */
static int yield_after_throw(aw_gencm_t *g, void *arg) {
    if (aw_gencm_yield(g, NULL) < 0)
        aw_gencm_yield(g, NULL);
    return 0;
}
static int cp_trap_after_throw_body(void *arg) {
    aw_with (aw_gencm(yield_after_throw, NULL)) aw_fail(-EINVAL, "TypeError('foo')");
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(e->msg, "didn't stop"), "%s", e->msg);
    cr_assert_not_null(aw_err_find(e, -EINVAL), "the body's error is in the chain");
    aw_err_clear();
    return 0;
}
Test(gencm, cpython_test_contextmanager_trap_yield_after_throw) { aw_test_run(cp_trap_after_throw_body, NULL, 0); }

static int cp_trap_no_yield_body(void *arg) {
    int ran = 0;
    aw_with (aw_gencm(noyield_ok, NULL)) ran = 1;
    cr_assert_eq(ran, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();
    return 0;
}
Test(gencm, cpython_test_contextmanager_trap_no_yield) { aw_test_run(cp_trap_no_yield_body, NULL, 0); }

static int cp_trap_second_yield_body(void *arg) {
    aw_with (aw_gencm(twice, NULL)) {
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();
    return 0;
}
Test(gencm, cpython_test_contextmanager_trap_second_yield) { aw_test_run(cp_trap_second_yield_body, NULL, 0); }

static int catches_edom(aw_gencm_t *g, void *arg) {
    st(1);
    int rc = aw_gencm_yield(g, (void *)(intptr_t)42);
    if (rc == -EDOM) {
        st(atoi(aw_gencm_error(g)->msg)); /* e.args[0] */
        cr_assert_eq(cp_n, 3);
        return 0;
    }
    return rc;
}
static int cp_except_body(void *arg) {
    cp_n = 0;
    aw_with (void *x, aw_gencm(catches_edom, NULL)) {
        st((int)(intptr_t)x);
        aw_fail(-EDOM, "999");
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert(cp_n == 3 && cp_state[2] == 999);
    return 0;
}
Test(gencm, cpython_test_contextmanager_except) { aw_test_run(cp_except_body, NULL, 0); }

static int just_yield(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, NULL); }
static int cp_except_stopiter_body(void *arg) {
    const aw_err_t *raised = NULL;
    aw_with (aw_gencm(just_yield, NULL)) {
        aw_raise(-AW_ECLOSED, "ham");
        raised = aw_err_current();
        aw_leave();
    }
    cr_assert_eq(aw_status(), -AW_ECLOSED, "not suppressed");
    cr_assert_eq(aw_err_current(), raised, "the same record");
    aw_err_clear();
    return 0;
}
Test(gencm, cpython_test_contextmanager_except_stopiter) { aw_test_run(cp_except_stopiter_body, NULL, 0); }

static int wraps(aw_gencm_t *g, void *arg) {
    if (aw_gencm_yield(g, NULL) < 0)
        return aw_raise(-AW_EPROTOCOL, "caught %s", aw_gencm_error(g)->msg);
    return 0;
}
static int cp_wrap_body(void *arg) {
    aw_with (aw_gencm(wraps, NULL)) aw_fail(-EDOM, "division by zero");
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert_eq(aw_err_current()->context->code, -EDOM);
    aw_err_clear();
    return 0;
}
Test(gencm, cpython_test_contextmanager_wrap_runtimeerror) { aw_test_run(cp_wrap_body, NULL, 0); }

/* test_recursive: a decorated function that recurses through its own
 * decorator: ten fresh instances, each cleaned up in turn. */
static int depth, ncols;
static int counting(aw_gencm_t *g, void *arg) {
    ncols++;
    int before = depth;
    depth++;
    int rc = aw_gencm_yield(g, NULL);
    depth--;
    cr_assert_eq(depth, before);
    return rc;
}
static int recursive(void *arg) {
    if (depth < 10)
        return aw_gencm_call(counting, NULL, recursive, NULL);
    return 0;
}
static int cp_recursive_body(void *arg) {
    depth = ncols = 0;
    cr_assert_eq(aw_gencm_call(counting, NULL, recursive, NULL), 0);
    cr_assert_eq(ncols, 10);
    cr_assert_eq(depth, 0);
    return 0;
}
Test(gencm, cpython_test_recursive) { aw_test_run(cp_recursive_body, NULL, 0); }

static bool entered;
static int entering(aw_gencm_t *g, void *arg) {
    entered = true;
    int rc = aw_gencm_yield(g, NULL);
    entered = false;
    return rc;
}
static int check_entered(void *arg) {
    cr_assert(entered);
    if (arg)
        return aw_raise(-ENOENT, "foo");
    return 0;
}
static int cp_decorator_body(void *arg) {
    cr_assert_not(entered);
    cr_assert_eq(aw_gencm_call(entering, NULL, check_entered, NULL), 0);
    cr_assert_not(entered);
    cr_assert_eq(aw_gencm_call(entering, NULL, check_entered, (void *)1), -ENOENT);
    cr_assert_str_eq(aw_err_current()->msg, "foo");
    cr_assert_not(entered);
    aw_err_clear();
    return 0;
}
Test(gencm, cpython_test_decorator_and_test_decorator_with_exception) { aw_test_run(cp_decorator_body, NULL, 0); }

/* C12 outside a task: the decorated function cannot run there; the call
 * returns -EPERM (pending, saying why) rather than 0, which would claim
 * that it ran and succeeded. */
static int c12_never(void *arg) {
    cr_assert_fail("the decorated function ran outside a task");
    return 0;
}
Test(gencm, C12_the_decorator_form_outside_a_task_is_EPERM_not_success) {
    FILE *tmp = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int rc = aw_gencm_call(plain, NULL, c12_never, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(tmp);
    cr_assert_eq(rc, -EPERM, "got %s", aw_err_name(rc));
    cr_assert_eq(aw_status(), -EPERM);
    cr_assert(strstr(aw_err_current()->msg, "aw_gencm_call"), "%s", aw_err_current()->msg);
    cr_assert_str_eq(log_, "", "the generator never ran");
    aw_err_clear();
}

/* M3 with C4's "the same object": a manager held around the yield gets
 * the block's error as an exit in the block's own place would, its
 * context chain included (Python throws the exception object itself in,
 * __context__ and all). A held exit that fails chains over the whole of
 * it, and every record still appears once in what leaves the block. */
static struct {
    int code, has_reset, count;
} m3_chain;
static int m3_chain_exit(void *self, const aw_err_t *err) {
    m3_chain.code = err ? err->code : 0;
    m3_chain.has_reset = aw_err_find(err, -ECONNRESET) != NULL;
    m3_chain.count = aw_err_count(err);
    return self ? aw_raise(-EPIPE, "the held exit failed too") : 0;
}
static int m3_chain_enter(void *self, void **out) { return 0; }
static const aw_cm_type_t m3_chain_type = {.name = "held", .enter = m3_chain_enter,
                                           .exit = m3_chain_exit};
static int m3_chain_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_cm(&m3_chain_type, arg))
        aw_gencm_yield(g, NULL);
    return aw_status(); /* what left the held block: Python's propagation */
}
static int m3_chain_body(void *arg) {
    for (int fail = 0; fail < 2; fail++) {
        memset(&m3_chain, 0, sizeof m3_chain);
        aw_with (aw_gencm(m3_chain_gen, fail ? (void *)1 : NULL)) {
            aw_raise(-ECONNRESET, "the first try's connection was reset");
            aw_fail(-EIO, "the retry failed");
        }
        cr_assert_eq(m3_chain.code, -EIO);
        cr_assert(m3_chain.has_reset, "the held exit got the block's error without its context");
        cr_assert_eq(m3_chain.count, 2);
        const aw_err_t *e = aw_err_current();
        cr_assert_eq(aw_status(), fail ? -EPIPE : -EIO);
        cr_assert_eq(aw_err_count(e), fail ? 3 : 2, "%d records", aw_err_count(e));
        cr_assert_eq(count_code(e, -ECONNRESET), 1);
        cr_assert_eq(count_code(e, -EIO), 1);
        aw_err_clear();
    }
    return 0;
}
Test(gencm, M3_a_manager_held_around_the_yield_sees_the_blocks_whole_chain) {
    aw_test_run(m3_chain_body, NULL, 0);
}
