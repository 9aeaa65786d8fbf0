/* tests for src/cm/gen.c: async generators and aw_for (SEMANTICS E, (c) 8-10). */
#include "testutil.h"

#include <string.h>
#include <stdlib.h>

static char log_[512];
static void note(const char *s) {
    strcat(log_, s);
    strcat(log_, ";");
}

static uint64_t cleanup_task_id;
static int count(aw_gen_t *g, void *arg) {
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        int rc = aw_gen_yield(g, &i);
        if (rc < 0) {
            note(rc == -AW_ECLOSED ? "closed" : "yield-error");
            break;
        }
    }
    aw_sleep_ms(1); /* cleanup that suspends */
    cleanup_task_id = aw_task_id(aw_task_self());
    note("cleanup");
    return 0;
}

static int full(void *arg) {
    int sum = 0;
    aw_for (int *v, aw_gen(count, (void *)4)) sum += *v;
    cr_assert_eq(sum, 0 + 1 + 2 + 3);
    cr_assert_str_eq(log_, "cleanup;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, for_runs_to_exhaustion) { aw_test_run(full, NULL, 0); }

static int brk_at(void *arg) {
    int seen = 0;
    aw_for (int *v, aw_gen(count, (void *)100)) {
        seen++;
        if (*v == 2)
            break;
    }
    note("after");
    cr_assert_eq(seen, 3);
    cr_assert_str_eq(log_, "closed;cleanup;after;", "E1/(c)8: finalized before the next statement");
    cr_assert_eq(cleanup_task_id, aw_task_id(aw_task_self()), "in the iterating task");
    return 0;
}
Test(gen, E1_c8_break_finalizes_in_the_iterating_task_before_the_next_statement) { aw_test_run(brk_at, NULL, 0); }

static int cont(void *arg) {
    int odd = 0;
    aw_for (int *v, aw_gen(count, (void *)6)) {
        if (*v % 2 == 0)
            continue;
        odd++;
    }
    cr_assert_eq(odd, 3);
    return 0;
}
Test(gen, continue_goes_to_the_next_item) { aw_test_run(cont, NULL, 0); }

static int ret_inner(void) {
    aw_for (int *v, aw_gen(count, (void *)100)) {
        if (*v == 1)
            return 7;
    }
    return -1;
}
static int ret(void *arg) {
    cr_assert_eq(ret_inner(), 7);
    cr_assert_str_eq(log_, "closed;cleanup;");
    return 0;
}
Test(gen, return_from_the_loop_closes_the_generator) { aw_test_run(ret, NULL, 0); }

static int gto(void *arg) {
    aw_for (int *v, aw_gen(count, (void *)100)) {
        if (*v == 1)
            goto out;
    }
out:
    cr_assert_str_eq(log_, "closed;cleanup;");
    return 0;
}
Test(gen, goto_out_of_the_loop_closes_the_generator) { aw_test_run(gto, NULL, 0); }

static int err_body(void *arg) {
    aw_for (int *v, aw_gen(count, (void *)100)) {
        if (*v == 1) {
            aw_fail(-EIO, "consumer failed");
        }
    }
    cr_assert_str_eq(log_, "closed;cleanup;");
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    return 0;
}
Test(gen, E9_an_error_in_the_body_closes_the_generator) { aw_test_run(err_body, NULL, 0); }

/* Decision 5 where Python loses one: `async with aclosing(g): async for
 * x in g: raise KeyError` with a cleanup that raises OSError gives
 * OSError <- GeneratorExit, the KeyError gone. Here the cleanup's failure
 * leaves on top, the close that caused it below, and the body's error at
 * the bottom: all three, in raise order. */
static int failing_cleanup(aw_gen_t *g, void *arg) {
    int i = 0;
    while (aw_gen_yield(g, &i) == 0)
        i++;
    aw_sleep_ms(1);
    return aw_raise(-EPIPE, "cleanup failed");
}
static int err_body_cleanup_fails(void *arg) {
    aw_for (int *v, aw_gen(failing_cleanup, NULL)) {
        aw_fail(-EIO, "consumer failed");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EPIPE, "got %s", aw_err_name(e->code));
    cr_assert_str_eq(e->msg, "cleanup failed");
    cr_assert(e->context && e->context->code == -AW_ECLOSED);
    cr_assert(e->context->context && e->context->context->code == -EIO);
    cr_assert_str_eq(e->context->context->msg, "consumer failed");
    cr_assert_null(e->context->context->context);
    aw_err_clear();
    return 0;
}
Test(gen, E9_a_cleanup_failing_after_a_body_error_keeps_both) {
    aw_test_run(err_body_cleanup_fails, NULL, 0);
}

static int consumer(void *arg) {
    aw_for (int *v, aw_gen(count, (void *)1000000)) {
        if (aw_sleep_ms(1) < 0)
            break;
    }
    return aw_status();
}
static int cancel_consumer(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, consumer, NULL, &t);
    aw_sleep_ms(5);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert(strstr(log_, "cleanup;"), "cleanup ran despite the cancel: %s", log_);
    aw_err_clear();
    return 0;
}
Test(gen, cancel_of_the_consumer_runs_cleanup_to_completion) { aw_test_run(cancel_consumer, NULL, 0); }

static aw_gen_t shared = AW_GEN_INIT(count, (void *)100);
static int second_nexter(void *arg) {
    void *v;
    int rc = aw_gen_next(&shared, &v);
    note(rc == -EBUSY ? "busy" : "not-busy");
    aw_err_clear();
    return 0;
}
static int slow_gen(aw_gen_t *g, void *arg) {
    aw_sleep_ms(5); /* the consumer waits inside next */
    int x = 1;
    aw_gen_yield(g, &x);
    return 0;
}
static int e5(void *arg) {
    shared = (aw_gen_t)AW_GEN_INIT(slow_gen, NULL);
    aw_with (aw_group_t *gr, aw_group()) {
        aw_spawn(gr, second_nexter, NULL, NULL);
        void *v;
        cr_assert_eq(aw_gen_next(&shared, &v), 1);
    }
    cr_assert_str_eq(log_, "busy;");
    cr_assert_eq(aw_gen_close(&shared), 0);
    return 0;
}
Test(gen, E5_next_while_another_next_runs_is_EBUSY) { aw_test_run(e5, NULL, 0); }

static int e6(void *arg) {
    aw_gen_t g = AW_GEN_INIT(count, (void *)10);
    void *v;
    cr_assert_eq(aw_gen_next(&g, &v), 1);
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(aw_gen_next(&g, &v), 0, "next after close: exhausted");
    cr_assert_eq(aw_gen_close(&g), 0, "second close does nothing");
    cr_assert_str_eq(log_, "closed;cleanup;");
    return 0;
}
Test(gen, E6_next_after_close_is_exhausted_and_close_is_idempotent) { aw_test_run(e6, NULL, 0); }

/* A generator's function that ends returning a positive value (a byte
 * count, a flag) has finished: neither a phantom last item for aw_for (the
 * previous value again, or NULL before any yield) nor a result of
 * aw_gen_next outside its 1 / 0 / error contract. */
static int ends_positive(aw_gen_t *g, void *arg) {
    static int x = 42;
    if ((intptr_t)arg != 3 && aw_gen_yield(g, &x) < 0)
        return 0;
    return (int)(intptr_t)arg;
}
static int e6_positive(void *arg) {
    int n = 0;
    aw_for (int *v, aw_gen(ends_positive, (void *)1)) n++;
    cr_assert_eq(n, 1, "one item yielded, %d seen", n);
    cr_assert_eq(aw_status(), 0);
    n = 0;
    aw_for (int *v, aw_gen(ends_positive, (void *)3)) n++; /* never yields */
    cr_assert_eq(n, 0, "no item yielded, %d seen", n);
    aw_gen_t g = AW_GEN_INIT(ends_positive, (void *)5);
    void *v;
    cr_assert_eq(aw_gen_next(&g, &v), 1);
    cr_assert_eq(aw_gen_next(&g, &v), 0, "finished: exhausted");
    cr_assert_eq(aw_gen_next(&g, &v), 0);
    return 0;
}
Test(gen, E6_a_generator_ending_with_a_positive_value_is_exhausted) { aw_test_run(e6_positive, NULL, 0); }

static int stubborn(aw_gen_t *g, void *arg) {
    int x = 0;
    for (int i = 0; i < 3; i++)
        aw_gen_yield(g, &x); /* ignores -AW_ECLOSED */
    return 0;
}
static int e7(void *arg) {
    aw_gen_t g = AW_GEN_INIT(stubborn, NULL);
    void *v;
    aw_gen_next(&g, &v);
    cr_assert_eq(aw_gen_close(&g), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "yielded while being closed"));
    aw_err_clear();
    return 0;
}
Test(gen, E7_yield_during_close_is_an_error) { aw_test_run(e7, NULL, 0); }

static int scoped(aw_gen_t *g, void *arg) {
    int rc = 0, x = 1;
    aw_with (aw_move_on_after(AW_MS(5))) {
        rc = aw_gen_yield(g, &x);
        if (rc < 0)
            aw_leave();
    }
    return rc;
}
static int c10(void *arg) {
    int items = 0;
    aw_for (int *v, aw_gen(scoped, NULL)) {
        items++;
        aw_sleep_ms(20);
    }
    cr_assert_eq(items, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "inside a scope"));
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0, "the consumer is not cancelled later");
    return 0;
}
Test(gen, E8_c10_yield_inside_a_scope_fails_at_the_yield) { aw_test_run(c10, NULL, 0); }

static int failing_gen(aw_gen_t *g, void *arg) {
    int x = 0;
    aw_gen_yield(g, &x);
    return aw_raise(-ENOENT, "source vanished");
}
static int gen_error(void *arg) {
    int n = 0;
    aw_for (int *v, aw_gen(failing_gen, NULL)) n++;
    cr_assert_eq(n, 1);
    cr_assert_eq(aw_status(), -ENOENT);
    cr_assert_str_eq(aw_err_current()->msg, "source vanished");
    aw_err_clear();
    return 0;
}
Test(gen, a_generator_error_ends_the_loop_and_is_pending) { aw_test_run(gen_error, NULL, 0); }

static int deadline_consumer(void *arg) {
    int n = 0;
    aw_with (aw_move_on_after(AW_MS(10)))
        aw_for (int *v, aw_gen(count, (void *)1000000)) {
            n++;
            if (aw_sleep_ms(1) < 0)
                break;
        }
    cr_assert_gt(n, 0);
    cr_assert(strstr(log_, "cleanup;"), "the generator was finalized under the deadline: %s", log_);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, a_deadline_around_the_loop_finalizes_the_generator) { aw_test_run(deadline_consumer, NULL, 0); }

/* ---- C9, C10: the closed signal ---- */

/* C9: the consumer's body fails with -AW_ECLOSED: the for ends, the
 * generator is closed once, and the body's record leaves unchanged (not
 * taken for the generator finishing). */
static int c9_consumer(void *arg) {
    const aw_err_t *raised = NULL;
    int items = 0;
    aw_for (int *v, aw_gen(count, (void *)100)) {
        items++;
        if (*v == 1) {
            aw_raise(-AW_ECLOSED, "the consumer's own channel closed");
            raised = aw_err_current();
            break;
        }
    }
    cr_assert_eq(items, 2);
    cr_assert_str_eq(log_, "closed;cleanup;");
    cr_assert_eq(aw_status(), -AW_ECLOSED);
    cr_assert_eq(aw_err_current(), raised, "unchanged");
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}
Test(gen, C9_body_error_with_the_closed_code_passes_through_unchanged) {
    aw_test_run(c9_consumer, NULL, 0);
}

/* C10: a generator that ends with -AW_ECLOSED while nobody closed it
 * (say it leaked from an inner generator) does not end the for as if it
 * had finished: a protocol error, the original as context. */
static int leaks_closed(aw_gen_t *g, void *arg) {
    int x = 0;
    aw_gen_yield(g, &x);
    note("leaking");
    return aw_raise(-AW_ECLOSED, "leaked from an inner generator");
}
static int c10_consumer(void *arg) {
    int items = 0;
    aw_for (int *v, aw_gen(leaks_closed, NULL)) items++;
    cr_assert_eq(items, 1);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "not a silent end of the loop");
    cr_assert(strstr(e->msg, "'leaks_closed'") && strstr(e->msg, "AW_ECLOSED"), "%s", e->msg);
    cr_assert_not_null(aw_err_find(e, -AW_ECLOSED), "the original is its context");
    cr_assert_str_eq(aw_err_find(e, -AW_ECLOSED)->msg, "leaked from an inner generator");
    aw_err_clear();
    /* the same through aw_gen_next: an error, not 0 ("finished") */
    aw_gen_t g = AW_GEN_INIT(leaks_closed, NULL);
    void *out;
    cr_assert_eq(aw_gen_next(&g, &out), 1);
    cr_assert_eq(aw_gen_next(&g, &out), -AW_EPROTOCOL);
    cr_assert_eq(aw_gen_next(&g, &out), 0, "then exhausted");
    aw_err_clear();
    /* while a close that gets -AW_ECLOSED back is a clean finish */
    aw_gen_t h = AW_GEN_INIT(count, (void *)5);
    cr_assert_eq(aw_gen_next(&h, &out), 1);
    cr_assert_eq(aw_gen_close(&h), 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, C10_generator_ending_with_the_closed_signal_is_a_protocol_error) {
    aw_test_run(c10_consumer, NULL, 0);
}

/* ---- E2, E3, E4: generators still suspended when the loop shuts down ---- */

/* The generator's cleanup records who runs it, whether it could suspend,
 * and reads the consumer's "context" (a variable in the consumer's frame,
 * alive only while the consumer is). */
static uint64_t consumer_id, finalizer_id;
static int finalizer_sleep_rc = 1;
static const char *finalizer_ctx;
static int ctx_gen(aw_gen_t *g, void *arg) {
    const char **ctx = arg;
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    finalizer_sleep_rc = aw_sleep_ms(2); /* cleanup that suspends */
    finalizer_id = aw_task_id(aw_task_self());
    finalizer_ctx = *ctx;
    note("finalized");
    return 0;
}
static int ctx_consumer(void *arg) {
    const char *ctx = "request-42"; /* the consumer's context */
    consumer_id = aw_task_id(aw_task_self());
    aw_for (int *v, aw_gen(ctx_gen, &ctx)) {
        if (aw_sleep(AW_SEC(30)) < 0) /* the loop shuts down meanwhile */
            break;
    }
    note("consumer-done");
    return 0;
}
static int leave_a_consumer_suspended(void *arg) {
    aw_spawn(NULL, ctx_consumer, NULL, NULL);
    while (!consumer_id)
        aw_sleep_ms(1);
    return 0; /* main returns: the loop shuts down */
}
Test(gen, E2_suspended_at_shutdown_finalized_in_its_consumer_with_its_context) {
    aw_test_run(leave_a_consumer_suspended, NULL, 0);
    cr_assert_str_eq(log_, "finalized;consumer-done;", "finalized before its consumer ended");
    cr_assert_eq(finalizer_id, consumer_id, "in the consumer's task, not a new one");
    cr_assert_not_null(finalizer_ctx);
    cr_assert_str_eq(finalizer_ctx, "request-42", "with the consumer's context");
}

Test(gen, E4_finalizer_at_shutdown_is_not_in_a_cancelled_context) {
    aw_test_run(leave_a_consumer_suspended, NULL, 0);
    cr_assert_eq(finalizer_sleep_rc, 0, "its suspension worked (shielded), not -ECANCELED");
    cr_assert_str_eq(log_, "finalized;consumer-done;");
}

/* E4, the error path: a finalizer that fails while its consumer is being
 * cancelled reaches the consumer's error (not a log), and one that would
 * wait forever is cut by the exit grace (bounded). */
static int failing_finalizer(aw_gen_t *g, void *arg) {
    int x = 0;
    aw_gen_yield(g, &x);
    finalizer_sleep_rc = aw_sleep_ms(1);
    if (arg) {
        int rc = aw_sleep(AW_SEC(30));
        note(rc < 0 ? "cut-by-grace" : "slept-30s");
        return rc;
    }
    return aw_raise(-EIO, "finalizer failed");
}
static int fin_consumer(void *arg) {
    aw_for (int *v, aw_gen(failing_finalizer, arg)) {
        if (aw_sleep(AW_SEC(30)) < 0)
            break;
    }
    return aw_status();
}
static int e4_errors(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, fin_consumer, NULL, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED, "the cancel is not lost");
    cr_assert_eq(finalizer_sleep_rc, 0);
    const aw_err_t *io = aw_err_find(aw_err_current(), -EIO);
    cr_assert_not_null(io, "the finalizer's failure is in the consumer's error");
    cr_assert_str_eq(io->msg, "finalizer failed");
    aw_err_clear();
    aw_spawn(NULL, fin_consumer, (void *)1, &t);
    aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_str_eq(log_, "cut-by-grace;");
    const aw_err_t *late = aw_err_find(aw_err_current(), -ETIMEDOUT);
    cr_assert(late && strstr(late->msg, "'failing_finalizer' overran its grace"), "%s",
              late ? late->msg : "(no -ETIMEDOUT in the chain)");
    aw_err_clear();
    return 0;
}
Test(gen, E4_finalizer_errors_reach_the_consumer_and_its_waits_are_bounded_by_the_grace) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(200)};
    cr_assert_eq(aw_main_opts(&o, e4_errors, NULL), 0);
}

#include "capture.h" /* after brk_at() above: unistd.h declares one too */

/* E3 / (c) 9: a generator left suspended by a consumer that never closed
 * it (aw_gen_next by hand, then return) is not dropped silently: loop
 * close fails with -EBUSY and names it and the line where it was made. */
static int left_open(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            return 0;
}
static aw_gen_t *abandoned; /* outlives the task; freed by the test after the loop */
static int abandon_it(void *arg) {
    aw_gen_t *g = abandoned = malloc(sizeof *g);
    *g = (aw_gen_t)AW_GEN_INIT(left_open, NULL);
    void *out;
    cr_assert_eq(aw_gen_next(g, &out), 1);
    return 0; /* never closed */
}
Test(gen, E3_a_generator_left_suspended_at_loop_close_is_reported_not_dropped) {
    char out[2048];
    int rc = aw_test_main_stderr(abandon_it, NULL, out, sizeof out);
    cr_assert_eq(rc, -EBUSY, "loop close reports it: %s", out);
    cr_assert(strstr(out, "async generator 'left_open'"), "names the generator: %s", out);
    cr_assert(strstr(out, "tests/cm/gen.c:"), "and where it was made: %s", out);
    free(abandoned);
}

/* ================= M3: closing is pending inside the generator ================= */

/* A manager the generator holds around its yields (a transaction): the
 * consumer leaving early must make it roll back, not commit. */
typedef struct {
    int exited, seen, commits;
} tx_t;
static int tx_enter(void *self, void **out) {
    *out = self;
    return 0;
}
static int tx_exit(void *self, const aw_err_t *err) {
    tx_t *t = self;
    t->exited++;
    t->seen = err ? err->code : 0;
    t->commits += !err;
    return 0;
}
static const aw_cm_type_t tx_type = {.name = "tx", .enter = tx_enter, .exit = tx_exit};

static int rows_in_tx(aw_gen_t *g, void *arg) {
    aw_with (aw_cm(&tx_type, arg)) {
        for (int i = 0; i < 5; i++)
            if (aw_gen_yield(g, &i) < 0)
                break; /* the documented way to leave */
    }
    return 0;
}
static int m3_break(void *arg) {
    tx_t tx = {0};
    aw_for (int *v, aw_gen(rows_in_tx, &tx)) {
        if (*v == 1)
            break;
    }
    cr_assert_eq(aw_status(), 0, "closing on break is not an error");
    cr_assert_eq(tx.exited, 1);
    cr_assert_eq(tx.seen, -AW_ECLOSED, "the manager saw %s: it committed", aw_err_name(tx.seen));
    cr_assert_eq(tx.commits, 0);
    /* run to the end: it commits */
    tx_t tx2 = {0};
    aw_for (int *v, aw_gen(rows_in_tx, &tx2)) {
        (void)v;
    }
    cr_assert_eq(tx2.commits, 1);
    return 0;
}
Test(gen, M3_a_manager_held_around_the_yield_sees_an_early_close) { aw_test_run(m3_break, NULL, 0); }

/* asyncpg's test_pool_handles_transaction_exit_in_asyncgen shape: the
 * consumer is cancelled while it holds the generator open. */
static tx_t m3_cancel_tx;
static int m3_consumer(void *arg) {
    aw_for (int *v, aw_gen(rows_in_tx, &m3_cancel_tx)) {
        (void)v;
        if (aw_sleep(AW_SEC(10)) < 0)
            break;
    }
    return aw_status();
}
static int m3_cancel(void *arg) {
    aw_task_t *h;
    aw_spawn(NULL, m3_consumer, NULL, &h);
    aw_sleep_ms(1);
    aw_task_cancel(h);
    cr_assert_eq(aw_task_join(h), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(m3_cancel_tx.exited, 1);
    cr_assert_eq(m3_cancel_tx.commits, 0, "a cancelled consumer's transaction committed");
    return 0;
}
Test(gen, M3_a_manager_held_around_the_yield_sees_a_cancelled_consumers_close) {
    aw_test_run(m3_cancel, NULL, 0);
}

/* A group cancelled on purpose unwinds a consumer whose generator holds a
 * manager around its yield; that manager's exit fails while the close
 * unwinds the generator. The failure is not the group's own cancel: it
 * leaves the group (found by the composition fuzzer, seed 5295). */
static int failing_exit(void *self, const aw_err_t *err) {
    return aw_raise(-EINVAL, "the generator's manager failed to close");
}
static const aw_cm_type_t failing_type = {.name = "failing", .enter = tx_enter,
                                          .exit = failing_exit};
static int gen_holding_failing(aw_gen_t *g, void *arg) {
    aw_with (aw_cm(&failing_type, NULL)) {
        int i = 0;
        if (aw_checkpoint() < 0) /* the group's cancel reaches the generator */
            aw_leave();
        aw_gen_yield(g, &i);
    }
    return aw_status();
}
static int m5_group_cancel_body(void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_group_cancel(grp);
        aw_for (int *v, aw_gen(gen_holding_failing, NULL)) {
            (void)v;
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e, "the generator's failure vanished with the group's cancel");
    cr_assert_not_null(aw_err_find(e, -EINVAL), "EINVAL is not in what left: %s",
                       aw_err_name(e->code));
    aw_err_clear();
    return 0;
}
Test(gen, M4_a_generators_close_failure_leaves_a_group_cancelled_on_purpose) {
    aw_test_run(m5_group_cancel_body, NULL, 0);
}

/* aw_gen_yield is the generator function's alone: from the consumer's
 * body, from another task, or for a generator not started, it fails with
 * -AW_EPROTOCOL and the iteration goes on unchanged. */
static aw_gen_t *outsider_g;
static int yield_outsider(void *arg) {
    (void)arg;
    cr_assert_eq(aw_gen_yield(outsider_g, NULL), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "outside its generator"));
    aw_err_clear();
    return 0;
}
static int yield_outside_body(void *arg) {
    aw_gen_t fresh = aw_gen(count, (void *)3);
    cr_assert_eq(aw_gen_yield(&fresh, NULL), -AW_EPROTOCOL);
    aw_err_clear();
    log_[0] = 0;
    int sum = 0;
    aw_gen_t g = aw_gen(count, (void *)3);
    outsider_g = &g;
    void *v;
    while (aw_gen_next(&g, &v) == 1) {
        sum += *(int *)v;
        cr_assert_eq(aw_gen_yield(&g, NULL), -AW_EPROTOCOL);
        cr_assert(strstr(aw_err_current()->msg, "outside its generator"));
        aw_err_clear();
        aw_with (aw_group_t *grp, aw_group())
            aw_spawn(grp, yield_outsider, NULL, NULL);
    }
    cr_assert_eq(sum, 0 + 1 + 2);
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "cleanup;");
    return 0;
}
Test(gen, yield_outside_its_generator_is_refused) { aw_test_run(yield_outside_body, NULL, 0); }

/* G14 (the generator runs inside its consumer's scopes, E1): a deadline
 * around each next, as `async with timeout(t): await anext(g)` in a loop,
 * is a new scope each time, usually at the same address. The generator
 * sees the deadline of the scope it is resumed in, not the one before it
 * (long past here): its own waits are not cut, and its effective deadline
 * is its consumer's. */
static aw_ns_t g14_seen;
static int g14_producer(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++) {
        g14_seen = aw_effective_deadline();
        if (aw_sleep_ms(2) < 0)
            return aw_status();
        if (aw_gen_yield(g, &i) < 0)
            return 0;
    }
}
static int g14_main(void *arg) {
    aw_gen_t g = aw_gen(g14_producer, NULL);
    void *v;
    for (int i = 0; i < 3; i++) {
        int rc = 0;
        aw_ns_t mine = 0;
        aw_with (aw_fail_after(AW_MS(30))) {
            mine = aw_effective_deadline();
            rc = aw_gen_next(&g, &v);
        }
        cr_assert_eq(rc, 1, "item %d: next returned %s", i, aw_err_name(rc));
        cr_assert_eq(aw_status(), 0, "item %d: %s", i, aw_err_name(aw_status()));
        cr_assert_eq(g14_seen, mine, "item %d: the generator saw a deadline %lld ns off", i,
                     (long long)(g14_seen - mine));
        cr_assert_eq(aw_sleep_ms(40), 0); /* the last deadline passes */
    }
    cr_assert_eq(aw_gen_close(&g), 0);
    return 0;
}
Test(gen, G14_a_deadline_around_each_next_is_the_one_the_generator_sees) {
    aw_test_run(g14_main, NULL, 0);
}

/* M3 with C10 (Python: `async with res(): yield x` in an async generator,
 * left by break): the close is thrown in at the yield, the generator
 * manager held there re-raises it, and that is the clean answer to the
 * close, not a generator ending with the closed signal by mistake. */
static int m3c_res(aw_gencm_t *g, void *arg) {
    note("acquire");
    int rc = aw_gencm_yield(g, NULL);
    note(rc == -AW_ECLOSED ? "release(closed)" : "release");
    return rc;
}
static int m3c_items(aw_gen_t *g, void *arg) {
    aw_with (aw_gencm(m3c_res, NULL)) {
        for (int i = 0; i < 3; i++)
            if (aw_gen_yield(g, &i) < 0)
                aw_leave();
    }
    return aw_status();
}
static int m3c_main(void *arg) {
    log_[0] = 0;
    aw_for (int *v, aw_gen(m3c_items, NULL)) {
        if (*v == 1)
            break;
    }
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    cr_assert_str_eq(log_, "acquire;release(closed);");
    return 0;
}
Test(gen, M3_C10_a_generator_manager_held_at_the_yield_answers_a_close_cleanly) {
    aw_test_run(m3c_main, NULL, 0);
}

/* A generator consuming another (`async for` inside an async generator):
 * a break in the outer consumer closes the outer one, whose own for
 * closes the inner one, innermost cleanup first, all before the next
 * statement, and nothing is left pending (E1, E9). */
static int inner_gen(aw_gen_t *g, void *arg) {
    for (int i = 0; i < 10; i++)
        if (aw_gen_yield(g, &i) < 0) {
            note("inner-closed");
            break;
        }
    aw_sleep_ms(1);
    note("inner-cleanup");
    return 0;
}
static int outer_gen(aw_gen_t *g, void *arg) {
    aw_for (int *v, aw_gen(inner_gen, NULL)) {
        int x = *v * 10;
        if (aw_gen_yield(g, &x) < 0) {
            note("outer-closed");
            break;
        }
    }
    note("outer-cleanup");
    return 0;
}
static int nested_break(void *arg) {
    int n = 0, last = -1;
    aw_for (int *v, aw_gen(outer_gen, NULL)) {
        last = *v;
        if (++n == 3)
            break;
    }
    note("after");
    cr_assert_eq(last, 20);
    cr_assert_str_eq(log_, "outer-closed;inner-closed;inner-cleanup;outer-cleanup;after;");
    cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
    return 0;
}
Test(gen, E1_a_break_closes_nested_generators_innermost_cleanup_first) { aw_test_run(nested_break, NULL, 0); }

/* ================= audit of E: the halves the tests above leave out ================= */

/* E5: aw_gen_close while another task is inside aw_gen_next of the same
 * generator fails with -EBUSY too, and leaves the generator usable. */
static int second_closer(void *arg) {
    int rc = aw_gen_close(&shared);
    note(rc == -EBUSY ? "close-busy" : "close-not-busy");
    aw_err_clear();
    return 0;
}
static int e5_close(void *arg) {
    shared = (aw_gen_t)AW_GEN_INIT(slow_gen, NULL);
    aw_with (aw_group_t *gr, aw_group()) {
        aw_spawn(gr, second_closer, NULL, NULL);
        void *v;
        cr_assert_eq(aw_gen_next(&shared, &v), 1, "the close cut the next in flight");
        cr_assert_eq(*(int *)v, 1);
    }
    cr_assert_str_eq(log_, "close-busy;");
    cr_assert_eq(aw_gen_close(&shared), 0);
    return 0;
}
Test(gen, E5_close_while_another_next_runs_is_EBUSY) { aw_test_run(e5_close, NULL, 0); }

/* E7: the generator that yields while being closed is resumed with
 * -AW_ECLOSED each time, until it finishes. */
static int e7_yields_rc[4], e7_n, e7_finished;
static int stubborn_noting(aw_gen_t *g, void *arg) {
    int x = 0;
    aw_gen_yield(g, &x);
    for (int i = 0; i < 3; i++)
        e7_yields_rc[e7_n++] = aw_gen_yield(g, &x);
    e7_finished = 1;
    return 0;
}
static int e7_resumed(void *arg) {
    aw_gen_t g = AW_GEN_INIT(stubborn_noting, NULL);
    void *v;
    cr_assert_eq(aw_gen_next(&g, &v), 1);
    cr_assert_eq(aw_gen_close(&g), -AW_EPROTOCOL);
    aw_err_clear();
    cr_assert_eq(e7_finished, 1, "the generator was not run to its end");
    cr_assert_eq(e7_n, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(e7_yields_rc[i], -AW_ECLOSED, "yield %d during close returned %d", i, e7_yields_rc[i]);
    cr_assert_eq(aw_gen_next(&g, &v), 0, "E6: exhausted after the close");
    cr_assert_eq(aw_gen_close(&g), 0);
    return 0;
}
Test(gen, E7_a_generator_yielding_during_close_is_resumed_with_closed_until_it_ends) {
    aw_test_run(e7_resumed, NULL, 0);
}

/* E8 for each kind of scope a generator can open: a cancel scope, a
 * fail-after and a group; the consumer is never cancelled later. */
static int scoped_kind(aw_gen_t *g, void *arg) {
    int rc = 0, x = 1, kind = (int)(intptr_t)arg;
    if (kind == 0) {
        aw_with (aw_cancel_scope()) {
            if ((rc = aw_gen_yield(g, &x)) < 0)
                aw_leave();
        }
    } else if (kind == 1) {
        aw_with (aw_fail_after(AW_MS(5))) {
            if ((rc = aw_gen_yield(g, &x)) < 0)
                aw_leave();
        }
    } else {
        aw_with (aw_group()) {
            if ((rc = aw_gen_yield(g, &x)) < 0)
                aw_leave();
        }
    }
    return aw_status() ? aw_status() : rc;
}
static int e8_kinds(void *arg) {
    for (int kind = 0; kind < 3; kind++) {
        int items = 0;
        aw_for (int *v, aw_gen(scoped_kind, (void *)(intptr_t)kind)) {
            items++;
            aw_sleep_ms(10);
        }
        cr_assert_eq(items, 0, "kind %d: an item crossed the scope", kind);
        cr_assert_eq(aw_status(), -AW_EPROTOCOL, "kind %d: %s", kind, aw_err_name(aw_status()));
        cr_assert(strstr(aw_err_current()->msg, "inside a scope"), "%s", aw_err_current()->msg);
        aw_err_clear();
        cr_assert_eq(aw_sleep_ms(10), 0, "kind %d: the consumer was cancelled later", kind);
    }
    return 0;
}
Test(gen, E8_a_yield_inside_a_cancel_scope_a_fail_after_or_a_group_fails) { aw_test_run(e8_kinds, NULL, 0); }

/* E9: the body's error propagates and, if the generator's cleanup fails
 * too, both are kept. */
static int cleanup_fails(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    return aw_raise(-EPIPE, "cleanup failed");
}
static int e9_both(void *arg) {
    aw_for (int *v, aw_gen(cleanup_fails, NULL)) {
        if (*v == 1) {
            aw_fail(-EIO, "consumer failed");
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_not_null(aw_err_find(e, -EIO), "the body's error was lost");
    cr_assert_not_null(aw_err_find(e, -EPIPE), "the cleanup's failure was lost");
    cr_assert_eq(e->code, -EPIPE, "the cleanup's failure is on top, like an exit's: %s", aw_err_name(e->code));
    aw_err_clear();
    return 0;
}
Test(gen, E9_a_failing_cleanup_after_a_failing_body_keeps_both) { aw_test_run(e9_both, NULL, 0); }

/* E1 under a deadline around the loop: the generator's cleanup runs in
 * the consumer, before the next statement, not cut by the deadline. */
static int e1_dl(void *arg) {
    aw_with (aw_fail_after(AW_MS(3))) {
        aw_for (int *v, aw_gen(count, (void *)1000000)) {
            if (aw_sleep_ms(1) < 0)
                break;
        }
        note("after");
    }
    cr_assert_str_eq(log_, "closed;cleanup;after;");
    cr_assert_eq(cleanup_task_id, aw_task_id(aw_task_self()));
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(gen, E1_a_deadline_closes_the_generator_in_the_consumer_before_the_next_statement) {
    aw_test_run(e1_dl, NULL, 0);
}

/* E6: closing a generator that never started runs none of its code and
 * leaves it exhausted (Python: aclose() before the first anext). */
static int e6_unstarted_ran;
static int noting_gen(aw_gen_t *g, void *arg) {
    e6_unstarted_ran = 1;
    int x = 0;
    aw_gen_yield(g, &x);
    return 0;
}
static int e6_unstarted(void *arg) {
    aw_gen_t g = AW_GEN_INIT(noting_gen, NULL);
    cr_assert_eq(aw_gen_close(&g), 0);
    void *v;
    cr_assert_eq(aw_gen_next(&g, &v), 0, "next after close of an unstarted generator");
    cr_assert_eq(e6_unstarted_ran, 0, "the function of a generator closed before it started ran");
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, E6_a_generator_closed_before_it_started_never_runs) { aw_test_run(e6_unstarted, NULL, 0); }

/* E5: a generator calling aw_gen_next on itself (it is running) fails
 * with -EBUSY, it does not hang or crash. */
static aw_gen_t *e5_self;
static int e5_self_rc = 1;
static int self_nexter(aw_gen_t *g, void *arg) {
    void *v;
    e5_self_rc = aw_gen_next(g, &v);
    aw_err_clear();
    int x = 0;
    aw_gen_yield(g, &x);
    return 0;
}
static int e5_self_body(void *arg) {
    aw_gen_t g = AW_GEN_INIT(self_nexter, NULL);
    e5_self = &g;
    void *v;
    cr_assert_eq(aw_gen_next(&g, &v), 1);
    cr_assert_eq(e5_self_rc, -EBUSY, "next of a running generator from inside itself: %d", e5_self_rc);
    cr_assert_eq(aw_gen_close(&g), 0);
    return 0;
}
Test(gen, E5_next_of_a_generator_from_inside_itself_is_EBUSY) { aw_test_run(e5_self_body, NULL, 0); }

/* E1 by aw_leave() and by continue on the last item: closed the same way. */
static int e1_leave(void *arg) {
    aw_for (int *v, aw_gen(count, (void *)100)) {
        if (*v == 1)
            aw_leave();
    }
    cr_assert_str_eq(log_, "closed;cleanup;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, E1_aw_leave_closes_the_generator) { aw_test_run(e1_leave, NULL, 0); }

/* A generator without its function is refused at its first next
 * (-AW_EPROTOCOL), and the aw_for over it runs no iteration. */
static int null_gen_body(void *arg) {
    int n = 0;
    aw_for (int *v, aw_gen(NULL, NULL)) n++;
    cr_assert_eq(n, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "%s", aw_err_name(aw_status()));
    aw_err_clear();
    return 0;
}
Test(gen, a_generator_without_a_function_is_refused) { aw_test_run(null_gen_body, NULL, 0); }

/* E7 with E4: a generator yielding during the close of a cancelled
 * consumer: the protocol error joins the chain, -ECANCELED stays on top. */
static int stubborn_consumer(void *arg) {
    aw_for (int *v, aw_gen(stubborn, NULL)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            break;
    }
    return aw_status();
}
static int e7_cancel(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, stubborn_consumer, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_eq(rc, -ECANCELED, "the protocol error went on top of the cancel: %s", aw_err_name(rc));
    const aw_err_t *p = aw_err_find(aw_err_current(), -AW_EPROTOCOL);
    cr_assert(p && strstr(p->msg, "yielded while being closed"), "%s", p ? p->msg : "(none)");
    aw_err_clear();
    return 0;
}
Test(gen, E7_E4_yielding_during_the_close_of_a_cancelled_consumer_keeps_the_cancel_on_top) {
    aw_test_run(e7_cancel, NULL, 0);
}

/* E8 for a shield the generator opened around its yield: refused at the
 * yield too; the consumer's body never runs inside the generator's
 * shield, so a cancel of the consumer still reaches it. */
static int shielded_yield(aw_gen_t *g, void *arg) {
    int rc = 0, x = 1;
    aw_with (aw_shield(AW_NEVER)) {
        if ((rc = aw_gen_yield(g, &x)) < 0)
            aw_leave();
    }
    return aw_status() ? aw_status() : rc;
}
static int e8_shield_rc = 1;
static int e8_shield_consumer(void *arg) {
    aw_for (int *v, aw_gen(shielded_yield, NULL)) {
        e8_shield_rc = aw_sleep(AW_SEC(10));
        if (e8_shield_rc < 0)
            break;
    }
    return aw_status();
}
static int e8_shield(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, e8_shield_consumer, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    int rc = aw_task_join(t);
    cr_assert_neq(e8_shield_rc, 0, "the consumer slept 10 s inside the generator's shield");
    cr_assert(rc == -AW_EPROTOCOL || rc == -ECANCELED, "%s", aw_err_name(rc));
    aw_err_clear();
    return 0;
}
Test(gen, E8_a_yield_inside_a_shield_the_generator_opened_does_not_shield_the_consumer) {
    aw_test_run(e8_shield, NULL, 0);
}

/* K5 (Go's `defer f.Close(); return nil`; Python's
 * `async with aclosing(g): async for v in g: return 0`, where aclose's
 * OSError replaces the return): a task that returns 0 from inside an
 * aw_for whose generator's cleanup then fails ends with that failure, as
 * from inside a with block; left by break, the code after the loop saw
 * the error, and returning 0 there handles it. */
static int k5_flushing_gen(aw_gen_t *g, void *arg) {
    int i = 0;
    while (aw_gen_yield(g, &i) == 0)
        i++;
    return aw_raise(-EIO, "flush on close failed");
}
static int k5_return_task(void *arg) {
    aw_for (int *v, aw_gen(k5_flushing_gen, NULL)) {
        if (*v == 2)
            return 0; /* the loop's work is done; the close fails after this */
    }
    return -EINVAL;
}
static int k5_break_task(void *arg) {
    aw_for (int *v, aw_gen(k5_flushing_gen, NULL)) {
        if (*v == 2)
            break;
    }
    return aw_status() == -EIO ? 0 : -EINVAL;
}
static int k5_gen_body(void *arg) {
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, k5_return_task, NULL, &h), 0);
    cr_assert_eq(aw_task_join(h), -EIO, "a task returning 0 from inside the loop");
    cr_assert_not_null(aw_err_current());
    cr_assert_str_eq(aw_err_current()->msg, "flush on close failed");
    aw_err_clear();
    cr_assert_eq(aw_spawn(NULL, k5_break_task, NULL, &h), 0);
    cr_assert_eq(aw_task_join(h), 0, "left by break: the code after the loop saw it");
    return 0;
}
Test(gen, K5_a_cleanup_error_after_a_return_from_the_loop_is_the_tasks_status) {
    aw_test_run(k5_gen_body, NULL, 0);
}
/* ---- Ports of CPython's Lib/test/test_asyncgen.py (the parts about
 * aclose and finalisation in `async for`) and of the aclosing tests of
 * Lib/test/test_contextlib_async.py. aclose() is aw_gen_close, anext
 * aw_gen_next, GeneratorExit the -AW_ECLOSED at the yield, RuntimeError
 * -AW_EPROTOCOL, ZeroDivisionError EDOM. ---- */
static int cp_done;

/* test_async_gen_asyncio_02: an error after a yield leaves the for. */
static int cp_one_then_crash(aw_gen_t *g, void *arg) {
    int v = 1;
    if (aw_gen_yield(g, &v) < 0)
        return 0;
    aw_sleep_ms(1);
    v = 2;
    if (aw_gen_yield(g, &v) < 0)
        return 0;
    return aw_raise(-EDOM, "1 / 0");
}
static int cp_asyncio_02(void *arg) {
    int n = 0;
    aw_for (int *v, aw_gen(cp_one_then_crash, NULL)) cr_assert_eq(*v, ++n);
    cr_assert_eq(n, 2);
    cr_assert_eq(aw_status(), -EDOM);
    aw_err_clear();
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_02) { aw_test_run(cp_asyncio_02, NULL, 0); }

/* test_async_gen_exception_05: raising StopAsyncIteration in the
 * generator is a RuntimeError. */
static int cp_raise_stop(aw_gen_t *g, void *arg) {
    int v = 123;
    if (aw_gen_yield(g, &v) < 0)
        return 0;
    return aw_raise(-AW_ECLOSED, "StopAsyncIteration");
}
static int cp_exception_05(void *arg) {
    aw_for (int *v, aw_gen(cp_raise_stop, NULL)) cr_assert_eq(*v, 123);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert_not_null(aw_err_find(aw_err_current(), -AW_ECLOSED));
    aw_err_clear();
    return 0;
}
Test(gen, cpython_test_async_gen_exception_05) { aw_test_run(cp_exception_05, NULL, 0); }

/* aclose_06: yielding in the finally during aclose is "ignored
 * GeneratorExit". */
static int cp_yield_in_finally(aw_gen_t *g, void *arg) {
    int v = 1;
    if (aw_gen_yield(g, &v) == 0)
        return aw_raise(-EDOM, "1 / 0");
    aw_sleep_ms(1);
    v = 12;
    aw_gen_yield(g, &v);
    return 0;
}
static int cp_aclose_06(void *arg) {
    aw_gen_t g = aw_gen(cp_yield_in_finally, NULL);
    void *out;
    cr_assert_eq(aw_gen_next(&g, &out), 1);
    cr_assert_eq(aw_gen_close(&g), -AW_EPROTOCOL);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_aclose_06) { aw_test_run(cp_aclose_06, NULL, 0); }

/* aclose_07 and 08: the finally's awaits run to their end; the code
 * after it does not run (the close propagates). */
static int cp_finally_sleeps(aw_gen_t *g, void *arg) {
    int v = 1;
    if (aw_gen_yield(g, &v) == 0) {
        cp_done += 1000;
        v = 2;
        if (aw_gen_yield(g, &v) == 0)
            return 0;
    }
    cr_assert_eq(aw_sleep_ms(1), 0);
    cr_assert_eq(aw_sleep_ms(1), 0);
    cp_done += 1;
    return 0;
}
static int cp_aclose_07(void *arg) {
    cp_done = 0;
    aw_gen_t g = aw_gen(cp_finally_sleeps, NULL);
    int *out;
    cr_assert_eq(aw_gen_next(&g, (void **)&out), 1);
    cr_assert_eq(*out, 1);
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(cp_done, 1);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_aclose_07_and_08) { aw_test_run(cp_aclose_07, NULL, 0); }

/* aclose_10: a generator that catches the close and finishes closes
 * cleanly. */
static int cp_catch_all(aw_gen_t *g, void *arg) {
    aw_gen_yield(g, NULL); /* try: yield / except: pass */
    cp_done = 1;
    return 0;
}
static int cp_aclose_10(void *arg) {
    cp_done = 0;
    aw_gen_t g = aw_gen(cp_catch_all, NULL);
    void *out;
    cr_assert_eq(aw_gen_next(&g, &out), 1);
    cr_assert_eq(aw_gen_close(&g), 0);
    cp_done += 10;
    cr_assert_eq(cp_done, 11);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_aclose_10) { aw_test_run(cp_aclose_10, NULL, 0); }

/* aclose_11: one that catches the close and yields again: "ignored
 * GeneratorExit". (awith then resumes it with the close until it ends,
 * gen.h; CPython leaves it suspended.) */
static int cp_catch_then_yield(aw_gen_t *g, void *arg) {
    aw_gen_yield(g, NULL);
    if (aw_gen_yield(g, NULL) < 0)
        return 0;
    cp_done += 1;
    return 0;
}
static int cp_aclose_11(void *arg) {
    cp_done = 0;
    aw_gen_t g = aw_gen(cp_catch_then_yield, NULL);
    void *out;
    cr_assert_eq(aw_gen_next(&g, &out), 1);
    cr_assert_eq(aw_gen_close(&g), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "while being closed"), "%s", aw_err_current()->msg);
    aw_err_clear();
    cp_done += 10;
    cr_assert_eq(cp_done, 10);
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_aclose_11) { aw_test_run(cp_aclose_11, NULL, 0); }

/* aclose_12: the finally awaits a task the generator started, which
 * failed; the finally handles that failure. */
static int cp_target(void *arg) {
    aw_sleep_ms(1);
    return aw_raise(-EDOM, "1 / 0");
}
static int cp_awaits_task(aw_gen_t *g, void *arg) {
    aw_task_t *t;
    cr_assert_eq(aw_spawn(NULL, cp_target, NULL, &t), 0);
    int v = 1;
    aw_gen_yield(g, &v);
    if (aw_task_join(t) == -EDOM) {
        aw_err_clear();
        cp_done = 1;
    }
    return 0;
}
static int cp_aclose_12(void *arg) {
    cp_done = 0;
    aw_gen_t g = aw_gen(cp_awaits_task, NULL);
    void *out;
    cr_assert_eq(aw_gen_next(&g, &out), 1);
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(cp_done, 1);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_aclose_12) { aw_test_run(cp_aclose_12, NULL, 0); }

/* asend_02: the generator fails between two items: its finally (which
 * awaits) runs before the error reaches the consumer's next. */
static int cp_crash_in_next(aw_gen_t *g, void *arg) {
    int v = 1;
    aw_sleep_ms(1);
    if (aw_gen_yield(g, &v) == 0) {
        aw_sleep_ms(1);
        aw_raise(-EDOM, "1 / 0");
    }
    aw_sleep_ms(1); /* finally */
    aw_sleep_ms(1);
    cp_done = 1;
    return aw_status();
}
static int cp_asend_02(void *arg) {
    cp_done = 0;
    aw_gen_t g = aw_gen(cp_crash_in_next, NULL);
    int *out;
    cr_assert_eq(aw_gen_next(&g, (void **)&out), 1);
    cr_assert_eq(*out, 1);
    cr_assert_eq(aw_gen_next(&g, (void **)&out), -EDOM);
    cr_assert_eq(cp_done, 1);
    aw_err_clear();
    cr_assert_eq(aw_gen_close(&g), 0);
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_asend_02) { aw_test_run(cp_asend_02, NULL, 0); }

/* shutdown_01: two tasks wait in a generator's sleep; cancelling them
 * finalizes both generators (here at once, in each task). */
static int cp_finalized;
static int cp_waiter(aw_gen_t *g, void *arg) {
    int v = 1;
    if (aw_sleep(AW_SEC(1)) == 0)
        aw_gen_yield(g, &v);
    aw_yield(); /* await asyncio.sleep(0) in the finally */
    cp_finalized++;
    return aw_status();
}
static int cp_wait(void *arg) {
    aw_for (int *v, aw_gen(cp_waiter, NULL)) {
    }
    return aw_status();
}
static int cp_shutdown_01(void *arg) {
    cp_finalized = 0;
    aw_task_t *t1, *t2;
    aw_spawn(NULL, cp_wait, NULL, &t1);
    aw_spawn(NULL, cp_wait, NULL, &t2);
    aw_sleep_ms(10);
    aw_task_cancel(t1);
    aw_task_cancel(t2);
    cr_assert_eq(aw_task_join(t1), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(aw_task_join(t2), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(cp_finalized, 2);
    return 0;
}
Test(gen, cpython_test_async_gen_asyncio_shutdown_01) { aw_test_run(cp_shutdown_01, NULL, 0); }

static int cp_two(aw_gen_t *g, void *arg) {
    for (int i = 1; i <= 2; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    return 0;
}
static int cp_nonstarted(void *arg) {
    aw_for (int *v, aw_gen(cp_two, NULL)) break;
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, cpython_test_asyncgen_nonstarted_hooks_are_cancellable) { aw_test_run(cp_nonstarted, NULL, 0); }

static int cp_aclose_twice(void *arg) {
    aw_gen_t g = aw_gen(cp_two, NULL);
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(aw_gen_close(&g), 0);
    void *out;
    cr_assert_eq(aw_gen_next(&g, &out), 0, "closed: exhausted");
    return 0;
}
Test(gen, cpython_test_async_gen_aclose_twice_with_different_coros) { aw_test_run(cp_aclose_twice, NULL, 0); }

static int cp_aclose_exhausted(void *arg) {
    aw_gen_t g = aw_gen(cp_two, NULL);
    void *out;
    int n = 0;
    while (aw_gen_next(&g, &out) == 1)
        n++;
    cr_assert_eq(n, 2);
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, cpython_test_async_gen_aclose_after_exhaustion) { aw_test_run(cp_aclose_exhausted, NULL, 0); }

/* expression_01: a generator that iterates another one and yields i * 2. */
static int cp_arange(aw_gen_t *g, void *arg) {
    for (int i = 0; i < (int)(intptr_t)arg; i++) {
        aw_sleep_ms(1);
        if (aw_gen_yield(g, &i) < 0)
            break;
    }
    return 0;
}
static int cp_doubled(aw_gen_t *g, void *arg) {
    aw_for (int *i, aw_gen(cp_arange, arg)) {
        int v = *i * 2;
        if (aw_gen_yield(g, &v) < 0)
            break;
    }
    return aw_status();
}
static int cp_expression_01(void *arg) {
    int n = 0;
    aw_for (int *v, aw_gen(cp_doubled, (void *)10)) {
        cr_assert_eq(*v, n * 2);
        n++;
    }
    cr_assert_eq(n, 10);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, cpython_test_async_gen_expression_01) { aw_test_run(cp_expression_01, NULL, 0); }

/* test_contextlib_async: test_async_gen_propagates_generator_exit (bpo
 * 33786): a generator that holds a generator manager around its yield,
 * broken out of and then closed again. */
static int cp_ctx(aw_gencm_t *m, void *arg) { return aw_gencm_yield(m, NULL); }
static int cp_gen_in_ctx(aw_gen_t *g, void *arg) {
    int v = 11;
    aw_with (aw_gencm(cp_ctx, NULL)) aw_gen_yield(g, &v);
    return aw_status();
}
static int cp_propagates_exit(void *arg) {
    aw_gen_t g = aw_gen(cp_gen_in_ctx, NULL);
    int *out;
    cr_assert_eq(aw_gen_next(&g, (void **)&out), 1);
    cr_assert_eq(*out, 11);
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(aw_gen_close(&g), 0);
    cr_assert_eq(aw_status(), 0);
    cp_done = 0;
    aw_for (int *v, aw_gen(cp_gen_in_ctx, NULL)) {
        cr_assert_eq(*v, 11);
        break;
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(gen, cpython_test_async_gen_propagates_generator_exit) { aw_test_run(cp_propagates_exit, NULL, 0); }

/* test_aclosing, test_aclosing_error, test_aclosing_bpo41229: close
 * runs on the normal way out and on an error, and a resource the
 * generator holds around its yields is released by it. */
typedef struct { int released; } cp_res_t;
static int cp_res_enter(void *self, void **out) { return 0; }
static int cp_res_exit(void *self, const aw_err_t *err) {
    ((cp_res_t *)self)->released++;
    return 0;
}
static const aw_cm_type_t cp_res_type = {"sync_resource", cp_res_enter, cp_res_exit};
static int cp_agenfunc(aw_gen_t *g, void *arg) {
    aw_with (aw_cm(&cp_res_type, arg)) {
        int v = -1;
        if (aw_gen_yield(g, &v) < 0)
            aw_leave();
        v = -2;
        aw_gen_yield(g, &v);
    }
    return aw_status();
}
static int cp_aclosing(void *arg) {
    for (int fail = 0; fail <= 1; fail++) {
        cp_res_t r = {0};
        aw_gen_t x = aw_gen(cp_agenfunc, &r);
        int *out;
        cr_assert_eq(aw_gen_next(&x, (void **)&out), 1);
        cr_assert_eq(*out, -1);
        if (fail)
            aw_raise(-EDOM, "1 / 0");
        int rc = aw_gen_close(&x); /* the end of `async with aclosing(x)` */
        cr_assert_eq(rc, 0, "fail=%d: %s", fail, aw_err_name(rc));
        cr_assert_eq(r.released, 1);
        cr_assert_eq(aw_status(), fail ? -EDOM : 0, "the block's error is still the one");
        if (fail)
            cr_assert_null(aw_err_current()->context);
        aw_err_clear();
    }
    return 0;
}
Test(gen, cpython_test_aclosing_and_aclosing_error_and_aclosing_bpo41229) { aw_test_run(cp_aclosing, NULL, 0); }
