/* tests for src/core/trace.c: the trace hook (awith/trace.h). */
#include "testutil.h"
#include <awith/trace.h>

#include <string.h>

static char log_[2048];

static void hook(const aw_trace_event_t *ev, void *arg) {
    char buf[128];
    if (ev->kind <= AW_TRACE_EXITED)
        snprintf(buf, sizeof buf, "%s %s %d;", aw_trace_kind_name(ev->kind), ev->manager, ev->rc);
    else
        snprintf(buf, sizeof buf, "%s;", aw_trace_kind_name(ev->kind));
    strcat(log_, buf);
    ++*(int *)arg;
}

static int ok_enter(void *self, void **out) { *out = self; return 0; }
static int ok_exit(void *self, const aw_err_t *err) { return 0; }
static int bad_enter(void *self, void **out) { return aw_raise(-EIO, "cannot"); }
static const aw_cm_type_t a_type = {"A", ok_enter, ok_exit};
static const aw_cm_type_t b_type = {"B", ok_enter, ok_exit};
static const aw_cm_type_t bad_type = {"bad", bad_enter, ok_exit};

static int events_body(void *arg) {
    int n = 0;
    cr_assert_eq(aw_trace_set(hook, &n), 0);
    aw_with (aw_cm(&a_type, NULL))
    aw_with (aw_cm(&b_type, NULL)) {
        aw_raise(-EINVAL, "in the block");
    }
    cr_assert_eq(aw_status(), -EINVAL);
    aw_err_clear();
    cr_assert_str_eq(log_, "enter A 0;entered A 0;enter B 0;entered B 0;"
                           "exit B -22;exited B -22;exit A -22;exited A -22;");
    log_[0] = '\0';
    aw_with (aw_cm(&bad_type, NULL)) cr_assert_fail("not entered");
    aw_err_clear();
    cr_assert_str_eq(log_, "enter bad 0;entered bad -5;"); /* no exit for a failed enter */
    log_[0] = '\0';
    cr_assert_eq(aw_sleep_ms(1), 0);
    cr_assert_str_eq(log_, "point;suspend;resume;");
    log_[0] = '\0';
    cr_assert_eq(aw_yield(), 0);
    cr_assert_str_eq(log_, "point;suspend;resume;");
    log_[0] = '\0';
    cr_assert_eq(aw_checkpoint(), 0);
    cr_assert_str_eq(log_, "point;");
    int before = n;
    cr_assert_eq(aw_trace_set(NULL, NULL), 0);
    aw_with (aw_cm(&a_type, NULL)) aw_sleep_ms(1);
    cr_assert_eq(n, before, "no event once the hook is unset");
    return 0;
}
Test(trace, enter_exit_point_suspend_resume_in_order) { aw_test_run(events_body, NULL, 0); }

/* A cancelled block: its exit sees -ECANCELED, the cancelled wait is a
 * point that does not suspend. */
static int cancel_body(void *arg) {
    int n = 0;
    aw_trace_set(hook, &n);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_cm(&a_type, NULL)) {
            aw_scope_cancel(s);
            aw_sleep_ms(1000);
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "enter scope 0;entered scope 0;enter A 0;entered A 0;point;"
                           "exit A -125;exited A -125;exit scope -125;exited scope 0;");
    return 0;
}
Test(trace, a_cancelled_block_exits_with_the_cancel) { aw_test_run(cancel_body, NULL, 0); }

/* Events of other tasks and generators reach the same hook, each naming its task. */
static aw_task_t *seen[8];
static int nseen;
static void task_hook(const aw_trace_event_t *ev, void *arg) {
    if (ev->kind == AW_TRACE_POINT && nseen < 8)
        seen[nseen++] = ev->task;
}
static int child(void *arg) { return aw_sleep_ms(1); }
static int tasks_body(void *arg) {
    aw_trace_set(task_hook, NULL);
    aw_task_t *c = NULL;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, child, NULL, &c);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_geq(nseen, 1);
    int found = 0;
    for (int i = 0; i < nseen; i++)
        found += seen[i] == c;
    cr_assert_geq(found, 1, "the child's sleep is a point of the child");
    return 0;
}
Test(trace, events_of_every_task_of_the_loop) { aw_test_run(tasks_body, NULL, 0); }

Test(trace, set_outside_a_loop_is_eperm) {
    cr_assert_eq(aw_trace_set(hook, NULL), -EPERM);
}

/* trace.h: "A hook installed or removed inside a manager's enter (or
 * exit) sees that block's events from its next phase on". The block
 * decided it was traced before its enter ran; the event after an enter
 * (or exit) that removed the hook must find none to call, not a NULL one.
 * A hook installed inside an enter sees the exit's pair. */
static int rm_enter(void *self, void **out) { *out = self; aw_trace_set(NULL, NULL); return 0; }
static int rm_exit(void *self, const aw_err_t *err) { aw_trace_set(NULL, NULL); return 0; }
static int add_enter(void *self, void **out) { *out = self; aw_trace_set(hook, self); return 0; }
static const aw_cm_type_t rm_enter_type = {"RE", rm_enter, ok_exit};
static const aw_cm_type_t rm_exit_type = {"RX", ok_enter, rm_exit};
static const aw_cm_type_t add_enter_type = {"AE", add_enter, ok_exit};
static int phase_body(void *arg) {
    int n = 0;
    aw_trace_set(hook, &n);
    aw_with (aw_cm(&rm_enter_type, NULL)) aw_sleep_ms(1);
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "enter RE 0;", "removed in enter: nothing after the enter");
    log_[0] = '\0';
    aw_trace_set(hook, &n);
    aw_with (aw_cm(&rm_exit_type, NULL)) aw_checkpoint();
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "enter RX 0;entered RX 0;point;exit RX 0;",
                     "removed in exit: nothing after the exit");
    log_[0] = '\0';
    aw_with (aw_cm(&add_enter_type, &n)) aw_checkpoint();
    cr_assert_str_eq(log_, "point;exit AE 0;exited AE 0;", "installed in enter: from the body on");
    aw_trace_set(NULL, NULL);
    return 0;
}
Test(trace, a_hook_removed_inside_an_enter_or_exit_ends_its_events_there) {
    aw_test_run(phase_body, NULL, 0);
}

/* EXIT's rc is the block's error, EXITED's what leaves the block: 0 when
 * the exit suppressed, the exit's own code when it failed a clean block;
 * exit-stack entries are blocks too, each with its own pair, seeing the
 * error as the entries after it left it (B3). */
static int sup_exit(void *self, const aw_err_t *err) { return AW_SUPPRESS; }
static int fail_exit(void *self, const aw_err_t *err) { return aw_raise(-EPIPE, "exit failed"); }
static const aw_cm_type_t sup_type = {"S", ok_enter, sup_exit};
static const aw_cm_type_t fail_type = {"F", ok_enter, fail_exit};
static int exited_body(void *arg) {
    int n = 0;
    aw_trace_set(hook, &n);
    aw_with (aw_cm(&sup_type, NULL)) aw_fail(-EIO, "suppressed");
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "enter S 0;entered S 0;exit S -5;exited S 0;");
    log_[0] = '\0';
    aw_with (aw_cm(&fail_type, NULL)) {}
    cr_assert_eq(aw_status(), -EPIPE);
    aw_err_clear();
    cr_assert_str_eq(log_, "enter F 0;entered F 0;exit F 0;exited F -32;");
    log_[0] = '\0';
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&a_type, NULL), NULL);
        aw_exitstack_enter(st, aw_cm(&sup_type, NULL), NULL);
        aw_fail(-EIO, "y");
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "enter exitstack 0;entered exitstack 0;enter A 0;entered A 0;"
                           "enter S 0;entered S 0;exit exitstack -5;exit S -5;exited S 0;"
                           "exit A 0;exited A 0;exited exitstack 0;");
    aw_trace_set(NULL, NULL);
    return 0;
}
Test(trace, exited_says_what_leaves_a_block_suppressed_failed_or_stacked) {
    aw_test_run(exited_body, NULL, 0);
}
