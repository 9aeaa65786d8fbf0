/* tests for src/cm/timing.c: the timing manager (awith/timing.h). */
#include "testutil.h"
#include <awith/timing.h>

#include <string.h>
#include <unistd.h>

typedef struct { int calls; aw_ns_t last; int last_code; } reports_t;

static void report(const aw_timing_t *t, aw_ns_t elapsed, const aw_err_t *err, void *arg) {
    reports_t *r = arg;
    r->calls++;
    r->last = elapsed;
    r->last_code = err ? err->code : 0;
}

static int measure_body(void *arg) {
    reports_t r = {0};
    aw_timing_t t = AW_TIMING_INIT("nap", report, &r);
    aw_with (aw_timed_t *b, aw_timed(&t)) {
        cr_assert_eq(b->timing, &t);
        aw_sleep_ms(20);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(r.calls, 1);
    cr_assert_geq(r.last, AW_MS(20), "the block slept 20 ms; measured %lld ns", (long long)r.last);
    cr_assert_eq(t.count, 1);
    cr_assert_eq(t.failed, 0);
    cr_assert_eq(t.total, r.last);
    cr_assert_eq(t.min, r.last);
    cr_assert_eq(t.max, r.last);
    return 0;
}
Test(timing, measures_its_block_and_reports_through_the_hook) { aw_test_run(measure_body, NULL, 0); }

/* The error still leaves the block unchanged; the hook sees it; so does a
 * deadline (its time counts). */
static int error_body(void *arg) {
    reports_t r = {0};
    aw_timing_t t = AW_TIMING_INIT("failing", report, &r);
    aw_with (aw_timed(&t)) aw_fail(-EIO, "broken");
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_str_eq(aw_err_current()->msg, "broken");
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    cr_assert_eq(r.last_code, -EIO);
    aw_with (aw_timed(&t))
    aw_with (aw_fail_after(AW_MS(10))) aw_sleep_ms(10000);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(r.last_code, -ETIMEDOUT);
    cr_assert_geq(r.last, AW_MS(10));
    cr_assert_eq(t.count, 2);
    cr_assert_eq(t.failed, 2);
    cr_assert_eq(r.calls, 2);
    return 0;
}
Test(timing, errors_pass_through_and_are_counted) { aw_test_run(error_body, NULL, 0); }

/* One aw_timing_t shared by concurrent tasks: each block keeps its own start. */
static aw_timing_t shared = AW_TIMING_INIT("shared", NULL, NULL);
static int sleeper(void *arg) {
    aw_with (aw_timed(&shared)) aw_sleep_ms((intptr_t)arg);
    return aw_status();
}
static int shared_body(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, sleeper, (void *)(intptr_t)30, NULL);
        aw_spawn(g, sleeper, (void *)(intptr_t)10, NULL);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(shared.count, 2);
    cr_assert_geq(shared.min, AW_MS(10));
    cr_assert_geq(shared.max, AW_MS(30));
    cr_assert_eq(shared.total, shared.min + shared.max, "two blocks: the total is their sum");
    return 0;
}
Test(timing, one_timing_shared_by_concurrent_blocks) { aw_test_run(shared_body, NULL, 0); }

/* aw_timing_log prints one line naming the timing and the outcome. */
static int log_body(void *arg) {
    aw_timing_t t = AW_TIMING_INIT("logged", aw_timing_log, NULL);
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    aw_with (aw_timed(&t)) aw_fail(-ENOENT, "gone");
    aw_err_clear();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[256] = {0};
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    fclose(tmp);
    cr_assert_gt(n, 0);
    cr_assert(strstr(buf, "timing: logged ") && strstr(buf, " ms (ENOENT)\n"), "got: %s", buf);
    return 0;
}
Test(timing, log_names_the_timing_and_the_outcome) { aw_test_run(log_body, NULL, 0); }

/* A report hook that raises (a log that failed) changes nothing that
 * leaves the block: neither a clean block nor a failing one. */
static void failing_report(const aw_timing_t *t, aw_ns_t elapsed, const aw_err_t *err, void *arg) {
    (*(int *)arg)++;
    aw_raise(-EIO, "report failed");
}
static int report_raises_body(void *arg) {
    int calls = 0;
    aw_timing_t t = AW_TIMING_INIT("hooked", failing_report, &calls);
    aw_with (aw_timed(&t)) aw_sleep_ms(1);
    cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
    aw_with (aw_timed(&t)) aw_fail(-EINVAL, "body");
    cr_assert_eq(aw_status(), -EINVAL);
    cr_assert_str_eq(aw_err_current()->msg, "body");
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    cr_assert_eq(calls, 2);
    return 0;
}
Test(timing, a_report_hook_that_raises_changes_nothing_that_leaves) { aw_test_run(report_raises_body, NULL, 0); }

/* "on every way out: error, cancel, deadline -- the time still counts":
 * a block cut by its scope's cancel is measured, counted as failed, and
 * the hook sees the cancel; the scope still ends it quietly. */
static int cancel_body(void *arg) {
    reports_t r = {0};
    aw_timing_t t = AW_TIMING_INIT("cut", report, &r);
    aw_with (aw_scope_t *s, aw_cancel_scope())
        aw_with (aw_timed(&t)) {
            aw_sleep_ms(2);
            aw_scope_cancel(s);
            aw_sleep_ms(10000);
        }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.last_code, -ECANCELED);
    cr_assert_geq(r.last, AW_MS(2));
    cr_assert_eq(t.count, 1);
    cr_assert_eq(t.failed, 1);
    return 0;
}
Test(timing, a_cancelled_block_is_measured_and_counted_as_failed) { aw_test_run(cancel_body, NULL, 0); }

/* SEMANTICS M5 and "the start time lives in the block": timed blocks
 * entered in a loop into an exit stack are distinct (the stack copies
 * each aw_timed() state), each keeps its own start, and each is measured
 * once when the stack exits: the first entered was open longest. */
static int xs_body(void *arg) {
    reports_t r = {0};
    aw_timing_t t = AW_TIMING_INIT("stacked", report, &r);
    aw_timed_t *b[3];
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(aw_exitstack_enter(st, aw_timed(&t), (void **)&b[i]), 0);
            aw_sleep_ms(5);
        }
        cr_assert(b[0] != b[1] && b[1] != b[2], "one state per entry");
        cr_assert(b[0]->start < b[1]->start && b[1]->start < b[2]->start);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(t.count, 3);
    cr_assert_eq(r.calls, 3);
    cr_assert_geq(t.max, AW_MS(15), "the first entry was open for the three sleeps");
    cr_assert_geq(t.min, AW_MS(5));
    cr_assert_eq(r.last, t.max, "LIFO: the first entered exits last");
    return 0;
}
Test(timing, M5_blocks_entered_in_a_loop_into_an_exit_stack_keep_their_own_start) {
    aw_test_run(xs_body, NULL, 0);
}

/* "managers stacked after it on the following aw_with lines are inside
 * the measurement": a manager whose exit takes 15 ms, on the line after
 * aw_timed(), is measured with its exit; on the line before, it is not. */
static int slow_exit_enter(void *self, void **out) { return 0; }
static int slow_exit_exit(void *self, const aw_err_t *err) { return aw_sleep_ms(15); }
static const aw_cm_type_t slow_exit_type = {"slow-exit", slow_exit_enter, slow_exit_exit};
static int stacked_body(void *arg) {
    reports_t r = {0};
    aw_timing_t t = AW_TIMING_INIT("stacked", report, &r);
    aw_with (aw_timed(&t))
    aw_with (aw_cm(&slow_exit_type, NULL)) {
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_geq(r.last, AW_MS(15), "the inner exit is inside: %lld ns", (long long)r.last);
    aw_ns_t t0 = aw_now();
    aw_with (aw_cm(&slow_exit_type, NULL))
    aw_with (aw_timed(&t)) {
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_lt(r.last, aw_now() - t0, "the outer exit is outside the measurement");
    cr_assert_eq(t.count, 2);
    return 0;
}
Test(timing, managers_on_the_lines_after_it_are_inside_the_measurement) {
    aw_test_run(stacked_body, NULL, 0);
}
