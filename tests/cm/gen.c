/* tests for src/cm/gen.c: async generators and aw_for (SEMANTICS E, (c) 8-10). */
#include "testutil.h"

#include <string.h>

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

static int brk(void *arg) {
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
Test(gen, E1_c8_break_finalizes_in_the_iterating_task_before_the_next_statement) { aw_test_run(brk, NULL, 0); }

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
