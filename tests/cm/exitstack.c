/* tests for src/cm/exitstack.c (SEMANTICS D). */
#include "testutil.h"

#include <string.h>

static char log_[512];
static void note(const char *s) {
    strcat(log_, s);
    strcat(log_, ";");
}

typedef struct { const char *name; int enter_rc; int exit_rc; int sleep_ms; } res_t;
static int r_enter(void *self, void **out) {
    res_t *r = self;
    if (r->enter_rc < 0)
        return aw_raise(r->enter_rc, "enter %s failed", r->name);
    char b[32];
    snprintf(b, sizeof b, "+%s", r->name);
    note(b);
    *out = r;
    return 0;
}
static int r_exit(void *self, const aw_err_t *err) {
    res_t *r = self;
    char b[48];
    snprintf(b, sizeof b, "-%s(%s)", r->name, err ? aw_err_name(err->code) : "ok");
    note(b);
    if (r->sleep_ms && aw_sleep_ms(r->sleep_ms) < 0)
        note("cut");
    if (r->exit_rc < 0)
        return aw_raise(r->exit_rc, "exit %s failed", r->name);
    return r->exit_rc;
}
static const aw_cm_type_t res_type = {"res", r_enter, r_exit};

static int cb(void *arg) {
    note(arg);
    return 0;
}
static int cb_fail(void *arg) { return aw_raise(-EPIPE, "callback %s failed", (char *)arg); }
static int cb_suppress_try(void *arg) {
    note("cb-returns-1");
    return 1;
}
static int xcb(void *arg, const aw_err_t *err) {
    char b[48];
    snprintf(b, sizeof b, "x%s(%s)", (char *)arg, err ? aw_err_name(err->code) : "ok");
    note(b);
    return strcmp(arg, "S") == 0 && err ? AW_SUPPRESS : 0;
}

static int d1(void *arg) {
    res_t a = {"A"}, b = {"B"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_callback(st, cb, "cb1");
        aw_exitstack_push_exit(st, xcb, "X");
        aw_exitstack_enter(st, aw_cm(&res_type, &b), NULL);
        cr_assert_eq(aw_exitstack_size(st), 4);
    }
    cr_assert_str_eq(log_, "+A;+B;-B(ok);xX(ok);cb1;-A(ok);");
    return 0;
}
Test(exitstack, D1_lifo_whatever_the_kind) { aw_test_run(d1, NULL, 0); }

static int d2(void *arg) {
    res_t a = {"A"}, b = {"B", -ENOENT}, c = {"C"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        if (aw_exitstack_enter(st, aw_cm(&res_type, &b), NULL) < 0) {
            cr_assert_eq(aw_exitstack_size(st), 1, "B is not pushed");
            aw_leave();
        }
        aw_exitstack_enter(st, aw_cm(&res_type, &c), NULL);
    }
    cr_assert_str_eq(log_, "+A;-A(ENOENT);");
    cr_assert_eq(aw_status(), -ENOENT);
    aw_err_clear();
    return 0;
}
Test(exitstack, D2_failed_enter_is_not_pushed_and_earlier_ones_exit_with_it) { aw_test_run(d2, NULL, 0); }

static int d3_d8(void *arg) {
    res_t a = {"A"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_push_exit(st, xcb, "S");
        aw_fail(-EIO, "body");
    }
    cr_assert_str_eq(log_, "+A;xS(EIO);-A(ok);");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(exitstack, D3_D8_push_exit_suppresses_for_every_outer_callback) { aw_test_run(d3_d8, NULL, 0); }

static int d4(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb_suppress_try, NULL);
        aw_fail(-EIO, "body");
    }
    cr_assert_eq(aw_status(), -EIO, "a plain callback cannot suppress");
    aw_err_clear();
    return 0;
}
Test(exitstack, D4_plain_callback_cannot_suppress) { aw_test_run(d4, NULL, 0); }

static int d5(void *arg) {
    res_t a = {"A", 0, -EACCES}, b = {"B", 0, -EBUSY}, c = {"C", 0, -EPIPE};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_enter(st, aw_cm(&res_type, &b), NULL);
        aw_exitstack_enter(st, aw_cm(&res_type, &c), NULL);
        aw_fail(-EIO, "body");
    }
    cr_assert_str_eq(log_, "+A;+B;+C;-C(EIO);-B(EPIPE);-A(EBUSY);");
    const aw_err_t *e = aw_err_current();
    int want[] = {-EACCES, -EBUSY, -EPIPE, -EIO};
    for (int i = 0; i < 4; i++, e = e->context) {
        cr_assert_not_null(e);
        cr_assert_eq(e->code, want[i], "link %d", i);
    }
    cr_assert_null(e, "nothing after the body error: acyclic");
    aw_err_clear();
    return 0;
}
Test(exitstack, D5_each_callback_sees_the_error_left_by_the_next_and_the_chain_is_complete) {
    aw_test_run(d5, NULL, 0);
}

/* D6 done right: body succeeded, three callbacks fail: all kept, as nested blocks. */
static int d6(void *arg) {
    int n1 = 0, n2 = 0;
    res_t a = {"A", 0, -EACCES}, b = {"B", 0, -EBUSY}, c = {"C", 0, -EPIPE};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_enter(st, aw_cm(&res_type, &b), NULL);
        aw_exitstack_enter(st, aw_cm(&res_type, &c), NULL);
    }
    n1 = aw_err_count(aw_err_current());
    cr_assert_eq(aw_status(), -EACCES);
    aw_err_clear();
    log_[0] = 0;
    aw_with (aw_cm(&res_type, &a))
    aw_with (aw_cm(&res_type, &b))
    aw_with (aw_cm(&res_type, &c)) {
    }
    n2 = aw_err_count(aw_err_current());
    cr_assert_eq(n1, 3);
    cr_assert_eq(n1, n2, "same as nested blocks");
    aw_err_clear();
    return 0;
}
Test(exitstack, D6_no_exit_error_is_dropped_when_the_body_succeeded) { aw_test_run(d6, NULL, 0); }

static int reraise(void *arg, const aw_err_t *err) { return err ? err->code : 0; }
static int d7(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, reraise, NULL);
        aw_exitstack_callback(st, cb_fail, "inner");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_null(e->context, "re-raising the received error adds no self-cycle");
    cr_assert_eq(aw_err_count(e), 1);
    aw_err_clear();
    return 0;
}
Test(exitstack, D7_reraise_makes_no_cycle) { aw_test_run(d7, NULL, 0); }

static int d9_d10(void *arg) {
    res_t a = {"A"};
    aw_exitstack_t keep = {0};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_callback(st, cb, "cb");
        aw_exitstack_pop_all(st, &keep);
        cr_assert_eq(aw_exitstack_size(st), 0);
    }
    cr_assert_str_eq(log_, "+A;", "the old stack exits with nothing to do");
    note("between");
    cr_assert_eq(aw_exitstack_close(&keep), 0);
    cr_assert_str_eq(log_, "+A;between;cb;-A(ok);");
    cr_assert_eq(aw_exitstack_close(&keep), 0, "D10: a second close does nothing");
    cr_assert_str_eq(log_, "+A;between;cb;-A(ok);");
    return 0;
}
Test(exitstack, D9_D10_pop_all_moves_ownership_and_close_is_idempotent) { aw_test_run(d9_d10, NULL, 0); }

static int d11(void *arg) {
    static const aw_cm_type_t no_exit = {"half", r_enter, NULL};
    res_t a = {"A"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_cm(&no_exit, &a), NULL), -AW_EPROTOCOL);
    }
    cr_assert_str_eq(log_, "", "enter never ran");
    aw_err_clear();
    return 0;
}
Test(exitstack, D11_a_manager_of_the_wrong_shape_is_rejected_before_enter) { aw_test_run(d11, NULL, 0); }

static int d12_child(void *arg) {
    res_t a = {"A", 0, 0, 10}, b = {"B", 0, 0, 10};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_enter(st, aw_cm(&res_type, &b), NULL);
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int d12(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, d12_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    aw_sleep_ms(3);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_str_eq(log_, "+A;+B;-B(ECANCELED);-A(ECANCELED);", "no callback is cut short");
    aw_err_clear();
    return 0;
}
Test(exitstack, D12_a_second_cancel_cuts_no_callback) { aw_test_run(d12, NULL, 0); }

static int many(void *arg) {
    res_t r[50];
    int fds = aw_test_fds();
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 50; i++) {
            r[i] = (res_t){"r"};
            cr_assert_eq(aw_exitstack_enter(st, aw_cm(&res_type, &r[i]), NULL), 0);
        }
    }
    cr_assert_eq(aw_test_fds(), fds);
    return 0;
}
Test(exitstack, fifty_managers_in_a_loop) { aw_test_run(many, NULL, 0); }

/* D8: a suppressing callback clears the error for every callback outside
 * it, whatever their kind (manager, exit callback, plain callback), and
 * not for the ones inside it, which ran first. */
static int d8(void *arg) {
    res_t a = {"A"}, c = {"C"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL); /* outermost */
        aw_exitstack_push_exit(st, xcb, "X");
        aw_exitstack_callback(st, cb, "cb");
        aw_exitstack_push_exit(st, xcb, "S");               /* suppresses */
        aw_exitstack_push_exit(st, xcb, "Y");
        aw_exitstack_enter(st, aw_cm(&res_type, &c), NULL); /* innermost */
        aw_fail(-EIO, "body");
    }
    cr_assert_str_eq(log_, "+A;+C;-C(EIO);xY(EIO);xS(EIO);cb;xX(ok);-A(ok);");
    cr_assert_eq(aw_status(), 0, "the block completes normally");
    return 0;
}
Test(exitstack, D8_a_suppressing_callback_clears_the_error_for_every_outer_one) { aw_test_run(d8, NULL, 0); }

/* D10: close twice: the second does nothing (no callback runs again, no
 * error is raised again), also after a first close that failed, and the
 * block's own exit afterwards has nothing left to do. */
static int d10(void *arg) {
    res_t a = {"A"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_callback(st, cb_fail, "f");
        cr_assert_eq(aw_exitstack_close(st), -EPIPE);
        cr_assert_str_eq(log_, "+A;-A(EPIPE);");
        cr_assert_eq(aw_err_count(aw_err_current()), 1);
        aw_err_clear();
        cr_assert_eq(aw_exitstack_close(st), 0, "the second close does nothing");
        cr_assert_null(aw_err_current());
        cr_assert_eq(aw_exitstack_size(st), 0);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "+A;-A(EPIPE);", "each exit ran once");
    return 0;
}
Test(exitstack, D10_close_twice_the_second_does_nothing) { aw_test_run(d10, NULL, 0); }
