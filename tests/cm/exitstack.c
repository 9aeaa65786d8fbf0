/* tests for src/cm/exitstack.c (SEMANTICS D). */
#include "testutil.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ---- issue 10, item 2: the state a constructor builds in a compound
 * literal dies at the end of the enclosing C block; the stack keeps its
 * entries past it. Entered in a loop, each manager must be a distinct,
 * live instance. ---- */

#include <fcntl.h>
#include <unistd.h>

static int files_in_a_loop(void *arg) {
    char dir[64], path[3][128];
    aw_test_mkdtemp(dir, sizeof dir, "xs");
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "%s/f%d", dir, i);
        FILE *fp = fopen(path[i], "w");
        fprintf(fp, "file %d", i);
        fclose(fp);
    }
    int fds = aw_test_fds();
    aw_file_t *f[3];
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++)
            cr_assert_eq(aw_exitstack_enter(st, aw_file(path[i], O_RDONLY, 0), (void **)&f[i]), 0);
        cr_assert_eq(aw_test_fds(), fds + 3, "three files open");
        cr_assert(f[0] != f[1] && f[1] != f[2] && f[0] != f[2], "three distinct file objects");
        for (int i = 0; i < 3; i++) {
            char buf[32] = {0}, want[32];
            snprintf(want, sizeof want, "file %d", i);
            cr_assert_gt(aw_file_read(f[i], buf, sizeof buf - 1), 0);
            cr_assert_str_eq(buf, want, "entry %d reads its own file", i);
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(aw_test_fds(), fds, "every file closed: no fd leaked");
    aw_test_rmtree(dir);
    return 0;
}
Test(exitstack, M5_files_entered_in_a_loop_are_distinct_and_all_closed) {
    aw_test_run(files_in_a_loop, NULL, 0);
}

static char gen_log[256];
static int gen_res(aw_gencm_t *g, void *arg) {
    char b[16];
    snprintf(b, sizeof b, "+%d;", (int)(intptr_t)arg);
    strcat(gen_log, b);
    int rc = aw_gencm_yield(g, arg);
    snprintf(b, sizeof b, "-%d;", (int)(intptr_t)arg);
    strcat(gen_log, b);
    return rc;
}

static int gencm_in_a_loop(void *arg) {
    void *v[3];
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (intptr_t i = 0; i < 3; i++)
            cr_assert_eq(aw_exitstack_enter(st, aw_gencm(gen_res, (void *)i), &v[i]), 0);
        for (intptr_t i = 0; i < 3; i++)
            cr_assert_eq((intptr_t)v[i], i);
        cr_assert_eq(aw_sleep_ms(1), 0, "the generators' coroutines survive a suspension");
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(gen_log, "+0;+1;+2;-2;-1;-0;", "each exits once, in reverse order");
    return 0;
}
Test(exitstack, M5_generator_managers_entered_in_a_loop_each_exit_once_in_reverse) {
    aw_test_run(gencm_in_a_loop, NULL, 0);
}

/* Scopes entered in a loop stay on the task's scope chain until the stack
 * unwinds: the chain must hold three scopes, not one thrice (a cycle). */
static int fail_after_in_a_loop(void *arg) {
    aw_scope_t *s[3];
    aw_ns_t rel[3] = {AW_SEC(30), AW_MS(20), AW_SEC(30)};
    aw_ns_t t0 = aw_now();
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++)
            cr_assert_eq(aw_exitstack_enter(st, aw_fail_after(rel[i]), (void **)&s[i]), 0);
        cr_assert(s[0] != s[1] && s[1] != s[2], "three distinct scopes");
        cr_assert_eq(aw_sleep(AW_SEC(10)), -ECANCELED, "the 20 ms deadline cuts the sleep");
    }
    cr_assert_geq(aw_now() - t0, AW_MS(20));
    cr_assert_eq(aw_status(), -ETIMEDOUT, "the scope whose deadline fired reports it");
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0, "no scope is left on the task's chain");
    return 0;
}
Test(exitstack, M5_deadlines_entered_in_a_loop_are_distinct_scopes) {
    aw_test_run(fail_after_in_a_loop, NULL, 0);
}

static int item_seq;
static int it_open(void *ctx, void **item) {
    *item = (void *)(intptr_t)++item_seq;
    return 0;
}
static void it_close(void *ctx, void *item) {}
static const aw_pool_ops_t it_ops = {"items", it_open, it_close};

static int pool_items_in_a_loop(void *arg) {
    aw_pool_t *p;
    cr_assert_eq(aw_pool_open(&p, &it_ops, NULL, &(aw_pool_opts_t){.max = 3}), 0);
    void *item[3];
    aw_pool_stats_t ps;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++)
            cr_assert_eq(aw_exitstack_enter(st, aw_pool_item(p), &item[i]), 0);
        cr_assert(item[0] != item[1] && item[1] != item[2] && item[0] != item[2],
                  "three distinct items");
        aw_pool_stats(p, &ps);
        cr_assert_eq(ps.in_use, 3);
    }
    cr_assert_eq(aw_status(), 0);
    aw_pool_stats(p, &ps);
    cr_assert_eq(ps.in_use, 0, "every item given back");
    cr_assert_eq(ps.idle, 3);
    cr_assert_eq(aw_pool_close(p, AW_SEC(1)), 0);
    return 0;
}
Test(exitstack, M5_pool_items_entered_in_a_loop_are_distinct_and_all_released) {
    aw_test_run(pool_items_in_a_loop, NULL, 0);
}

/* Nested stacks and groups built by their constructors work too. */
static int inner_stacks(void *arg) {
    aw_exitstack_t *in[3];
    res_t r[3] = {{"a"}, {"b"}, {"c"}};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(aw_exitstack_enter(st, aw_exitstack(), (void **)&in[i]), 0);
            cr_assert_eq(aw_exitstack_enter(in[i], aw_cm(&res_type, &r[i]), NULL), 0);
        }
        cr_assert(in[0] != in[1] && in[1] != in[2]);
    }
    cr_assert_str_eq(log_, "+a;+b;+c;-c(ok);-b(ok);-a(ok);");
    return 0;
}
Test(exitstack, M5_exit_stacks_entered_in_a_loop_are_distinct) { aw_test_run(inner_stacks, NULL, 0); }

/* The lifetime rule's remaining case: a state given by pointer is
 * borrowed. A compound literal of one's own reused in a loop (the same
 * storage each time, still entered) fails loudly in debug builds instead
 * of exiting the wrong object. */
#ifndef NDEBUG
#include <criterion/redirect.h>
#include <signal.h>
#include <sys/wait.h>
static int misuse(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 2; i++)
            aw_exitstack_enter(st, aw_cm(&res_type, &(res_t){"r"}), NULL);
    }
    return 0;
}
Test(exitstack, a_borrowed_state_entered_again_while_entered_aborts_in_debug_builds,
     .signal = SIGABRT) {
    cr_redirect_stderr();
    aw_main(misuse, NULL);
}
#endif

/* ... the same literal built with aw_cm_temp is copied: no abort. */
#define res_temp(name) aw_cm_temp(&res_type, (res_t){(name)})
static int temp_ok(void *arg) {
    const char *names[] = {"x", "y", "z"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++)
            cr_assert_eq(aw_exitstack_enter(st, res_temp(names[i]), NULL), 0);
    }
    cr_assert_str_eq(log_, "+x;+y;+z;-z(ok);-y(ok);-x(ok);");
    return 0;
}
Test(exitstack, a_managers_own_temp_constructor_is_copied_into_the_stack) {
    aw_test_run(temp_ok, NULL, 0);
}

/* Entries of every kind across several slabs (the first holds 16 small
 * ones): borrowed states, copied ones, callbacks, a failed enter whose
 * bytes are given back, and the entry point of the macro before it
 * passed a borrowed state in registers (binaries built against it) all
 * exit once, LIFO. */
static int slabs_mixed(void *arg) {
    res_t r[40], bad = {"!", -EIO};
    char names[40][4], want[512] = "", tail[512] = "";
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 40; i++) {
            snprintf(names[i], sizeof names[i], "%d", i);
            r[i] = (res_t){names[i]};
            int rc;
            if (i % 4 == 1)
                rc = aw_exitstack_enter(st, res_temp(names[i]), NULL);
            else if (i % 4 == 2)
                rc = aw__exitstack_enter(st, aw_cm(&res_type, &r[i]), NULL, __FILE__, __LINE__);
            else if (i % 4 == 3)
                rc = aw_exitstack_callback(st, cb, names[i]);
            else
                rc = aw_exitstack_enter(st, aw_cm(&res_type, &r[i]), NULL);
            cr_assert_eq(rc, 0);
            if (i == 20) {
                cr_assert_eq(aw_exitstack_enter(st, aw_cm(&res_type, &bad), NULL), -EIO);
                aw_err_clear();
            }
            char b[16];
            snprintf(b, sizeof b, i % 4 == 3 ? "" : "+%.3s;", names[i]);
            strcat(want, b);
            snprintf(b, sizeof b, i % 4 == 3 ? "%.3s;" : "-%.3s(ok);", names[i]);
            memmove(tail + strlen(b), tail, strlen(tail) + 1);
            memcpy(tail, b, strlen(b));
        }
        cr_assert_eq(aw_exitstack_size(st), 40);
    }
    strcat(want, tail);
    cr_assert_str_eq(log_, want);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(exitstack, entries_of_every_kind_across_slabs_exit_once_in_reverse) {
    aw_test_run(slabs_mixed, NULL, 0);
}

/* After pop_all both stacks take entries while both are open: the new
 * owner goes on filling the moved slab, the old one starts afresh, and
 * no node of one lands on a node of the other. */
static int pop_all_then_more(void *arg) {
    res_t a = {"A"}, b = {"B"}, c = {"C"}, d = {"D"};
    aw_exitstack_t keep = {0};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_enter(st, res_temp("T"), NULL);
        aw_exitstack_pop_all(st, &keep);
        cr_assert_eq(aw_exitstack_enter(st, aw_cm(&res_type, &c), NULL), 0);
        cr_assert_eq(aw_exitstack_enter(&keep, aw_cm(&res_type, &b), NULL), 0);
        cr_assert_eq(aw_exitstack_callback(&keep, cb, "cb"), 0);
        cr_assert_eq(aw_exitstack_enter(st, aw_cm(&res_type, &d), NULL), 0);
        cr_assert_eq(aw_exitstack_size(st), 2);
        cr_assert_eq(aw_exitstack_size(&keep), 4);
    }
    cr_assert_eq(aw_exitstack_close(&keep), 0);
    cr_assert_str_eq(log_, "+A;+T;+C;+B;+D;-D(ok);-C(ok);cb;-B(ok);-T(ok);-A(ok);");
    return 0;
}
Test(exitstack, pop_all_then_more_entries_in_the_new_owner) { aw_test_run(pop_all_then_more, NULL, 0); }

/* A shared object (AW_CM_SHARED: a semaphore) may be entered several
 * times at once: that is not the misuse above. */
static int sem_twice(void *arg) {
    aw_sem_t s = AW_SEM_INIT("slots", 2, 2);
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_sem_held(&s), NULL), 0);
        cr_assert_eq(aw_exitstack_enter(st, aw_sem_held(&s), NULL), 0);
        cr_assert_eq(aw_sem_value(&s), 0);
    }
    cr_assert_eq(aw_sem_value(&s), 2);
    return 0;
}
Test(exitstack, a_semaphore_entered_twice_is_not_misuse) { aw_test_run(sem_twice, NULL, 0); }

/* ---- An entry enters and exits exactly as an aw_with block would: the
 * stack enters its own copy of a with record for each entry and leaves
 * them from its exit (exitstack.c), so every outcome of enter and exit, with a clean or a failing body, is
 * run both ways and the results compared: the calls, the status, and
 * the whole chain of records (codes and messages, sites left out). ---- */

enum { EN_OK, EN_FAIL, EN_BARE, EN_RAISE_CLEAR, EN_RAISE_OK, EN_KINDS };
enum { EX_OK, EX_SUPPRESS, EX_BADRC, EX_FAIL, EX_BARE, EX_RAISE_CLEAR, EX_RAISE_RET0,
       EX_RERAISE, EX_SLEEP, EX_OVERRUN, EX_KINDS };
typedef struct { char name; int en, ex; } dv_t;
static char dv_log[256];

static int dv_enter(void *self, void **out) {
    dv_t *d = self;
    size_t k = strlen(dv_log);
    snprintf(dv_log + k, sizeof dv_log - k, "+%c;", d->name);
    *out = d;
    switch (d->en) {
    case EN_FAIL: return aw_raise(-EACCES, "enter %c", d->name);
    case EN_BARE: return -ENOENT;
    case EN_RAISE_CLEAR: aw_raise(-EAGAIN, "enter %c", d->name); aw_err_clear(); return 0;
    case EN_RAISE_OK: aw_raise(-EAGAIN, "enter %c", d->name); return 0;
    }
    return 0;
}
static int dv_exit(void *self, const aw_err_t *err) {
    dv_t *d = self;
    size_t k = strlen(dv_log);
    snprintf(dv_log + k, sizeof dv_log - k, "-%c(%s);", d->name, err ? aw_err_name(err->code) : "ok");
    switch (d->ex) {
    case EX_SUPPRESS: return AW_SUPPRESS;
    case EX_BADRC: return 5;
    case EX_FAIL: return aw_raise(-EIO, "exit %c", d->name);
    case EX_BARE: return -EPIPE;
    case EX_RAISE_CLEAR: aw_raise(-EAGAIN, "exit %c", d->name); aw_err_clear(); return 0;
    case EX_RAISE_RET0: aw_raise(-EAGAIN, "exit %c", d->name); return 0;
    case EX_RERAISE: return err ? err->code : 0;
    case EX_SLEEP: return aw_sleep_ms(1);
    case EX_OVERRUN: return aw_sleep(AW_SEC(10)) < 0 ? 0 : -EINVAL; /* cut by its 5 ms */
    }
    return 0;
}
static const aw_cm_type_t dv_type = {.name = "dv", .enter = dv_enter, .exit = dv_exit,
                                     .grace = AW_MS(5)};

/* The chain pending now, as text: each record's code and message, digits
 * after a ':' dropped (the "entered at file:line" of an overrun). */
static void dv_chain(char *out, size_t cap) {
    size_t k = snprintf(out, cap, "[%s]", aw_err_name(aw_status()));
    for (const aw_err_t *e = aw_err_current(); e && k < cap; e = e->context) {
        k += snprintf(out + k, cap - k, " %s:", aw_err_name(e->code));
        for (const char *p = e->msg; *p && k + 1 < cap; p++) {
            out[k++] = *p;
            if (*p == ':')
                while (p[1] >= '0' && p[1] <= '9')
                    p++;
        }
        out[k] = 0;
    }
}

static void dv_body(int fail) {
    if (fail)
        aw_raise(-ECONNRESET, "body");
}

static int dv_compare(void *arg) {
    static char with_log[256], with_chain[1024], xs_log[256], xs_chain[1024];
    int cases = 0;
    for (int fail = 0; fail < 2; fail++)
        for (int inner = 0; inner < 2; inner++) /* which of A (outer), B varies */
            for (int en = 0; en < EN_KINDS; en++)
                for (int ex = 0; ex < EX_KINDS; ex++) {
                    if (ex == EX_OVERRUN && en) /* one overrun per enter kind is enough */
                        continue;
                    dv_t a = {'A', inner ? EN_OK : en, inner ? EX_OK : ex};
                    dv_t b = {'B', inner ? en : EN_OK, inner ? ex : EX_OK};
                    dv_log[0] = 0;
                    aw_with (aw_cm(&dv_type, &a))
                        aw_with (aw_cm(&dv_type, &b))
                            dv_body(fail);
                    snprintf(with_log, sizeof with_log, "%s", dv_log);
                    dv_chain(with_chain, sizeof with_chain);
                    aw_err_clear();
                    dv_log[0] = 0;
                    aw_with (aw_exitstack_t *st, aw_exitstack()) {
                        if (aw_exitstack_enter(st, aw_cm(&dv_type, &a), NULL) < 0 ||
                            aw_exitstack_enter(st, aw_cm(&dv_type, &b), NULL) < 0)
                            aw_leave();
                        dv_body(fail);
                    }
                    snprintf(xs_log, sizeof xs_log, "%s", dv_log);
                    dv_chain(xs_chain, sizeof xs_chain);
                    aw_err_clear();
                    cr_assert_str_eq(xs_log, with_log, "calls (fail %d, inner %d, en %d, ex %d)",
                                     fail, inner, en, ex);
                    cr_assert_str_eq(xs_chain, with_chain,
                                     "outcome (fail %d, inner %d, en %d, ex %d)", fail, inner, en, ex);
                    cases++;
                }
    cr_assert_eq(cases, 2 * 2 * (EN_KINDS * EX_KINDS - (EN_KINDS - 1)));
    return 0;
}
Test(exitstack, an_entry_enters_and_exits_as_a_with_block_would) { aw_test_run(dv_compare, NULL, 0); }

/* A clean body's entries exit shielded: a cancel of the task that lands
 * while an entry's exit is suspended does not cut it (nor the entries
 * after it), and is delivered once the stack is left. */
static int sh_in_exit, sh_rcs[2];
static int sh_exit(void *self, const aw_err_t *err) {
    int *rc = self;
    sh_in_exit = 1;
    *rc = aw_sleep_ms(20);
    return 0;
}
static int sh_enter(void *self, void **out) {
    *out = self;
    return 0;
}
static const aw_cm_type_t sh_type = {.name = "sh", .enter = sh_enter, .exit = sh_exit};
static int sh_child(void *arg) {
    res_t r = {"r"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&sh_type, &sh_rcs[0]), NULL);
        aw_exitstack_enter(st, aw_cm(&sh_type, &sh_rcs[1]), NULL);
        aw_exitstack_enter(st, aw_cm(&res_type, &r), NULL);
    }
    int after = aw_status();
    cr_assert_eq(after, 0, "no cancel inside the stack's exits: %s", aw_err_name(after));
    return aw_sleep_ms(1); /* the cancel, delivered now */
}
static int sh_main(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, sh_child, NULL, &t);
    while (!sh_in_exit)
        aw_sleep_ms(1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_eq(sh_rcs[1], 0, "the entry's exit was not cut");
    cr_assert_eq(sh_rcs[0], 0, "nor the next one's");
    aw_err_clear();
    return 0;
}
Test(exitstack, entries_exit_shielded_from_a_cancel_of_the_task) { aw_test_run(sh_main, NULL, 0); }

/* The dump shows every entry: in its body phase while the stack is open,
 * and the one exiting in its exit phase. */
static char *xs_dump_text(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    aw_loop_dump(f);
    fclose(f);
    return buf;
}
static char *dump_in_exit;
static int dump_exit(void *self, const aw_err_t *err) {
    dump_in_exit = xs_dump_text();
    return 0;
}
static const aw_cm_type_t dump_type = {.name = "dumper", .enter = r_enter, .exit = dump_exit};
static int count_of(const char *s, const char *what) {
    int n = 0;
    for (; (s = strstr(s, what)); s++)
        n++;
    return n;
}
static int dump_main(void *arg) {
    res_t a = {"a"}, b = {"b"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_enter(st, aw_cm(&dump_type, &b), NULL);
        aw_exitstack_enter(st, aw_cm(&res_type, &b), NULL);
        char *in_body = xs_dump_text();
        cr_assert_eq(count_of(in_body, "in manager 'res' (body phase"), 2, "%s", in_body);
        cr_assert_eq(count_of(in_body, "in manager 'dumper' (body phase"), 1, "%s", in_body);
        cr_assert_eq(count_of(in_body, "in manager 'exitstack' (body phase"), 1, "%s", in_body);
        free(in_body);
    }
    cr_assert_not_null(dump_in_exit);
    cr_assert_eq(count_of(dump_in_exit, "in manager 'dumper' (exit phase"), 1, "%s", dump_in_exit);
    cr_assert_eq(count_of(dump_in_exit, "in manager 'res' (body phase"), 1, "the inner one is gone:\n%s",
                 dump_in_exit);
    cr_assert_eq(count_of(dump_in_exit, "in manager 'exitstack' (exit phase"), 1, "%s", dump_in_exit);
    free(dump_in_exit);
    return 0;
}
Test(exitstack, the_dump_shows_each_entry_and_its_phase) { aw_test_run(dump_main, NULL, 0); }

/* M5: a generator may fill its consumer's exit stack (Python: an async
 * generator calling `await stack.enter_async_context(...)` on a stack its
 * consumer holds). The generator finishes first; the entries, a class
 * manager and a generator manager each time, stay entered until the
 * stack's block ends and exit there, in the consumer, in reverse. */
static res_t m5g_res[2] = {{"r0", 0, 0, 1}, {"r1", 0, 0, 1}};
static int m5g_gm(aw_gencm_t *g, void *arg) {
    char b[16];
    snprintf(b, sizeof b, "+g%d", (int)(intptr_t)arg);
    note(b);
    int rc = aw_gencm_yield(g, NULL);
    if (aw_sleep_ms(1) < 0) /* the cleanup may suspend */
        note("cut");
    b[0] = '-';
    note(b);
    return rc;
}
static int m5g_opener(aw_gen_t *g, void *arg) {
    aw_exitstack_t *st = arg;
    for (int i = 0; i < 2; i++) {
        void *r;
        if (aw_exitstack_enter(st, aw_cm(&res_type, &m5g_res[i]), &r) < 0 ||
            aw_exitstack_enter(st, aw_gencm(m5g_gm, (void *)(intptr_t)i), NULL) < 0)
            return aw_status();
        if (aw_gen_yield(g, r) < 0)
            break;
    }
    return 0;
}
static int m5g_body(void *arg) {
    log_[0] = 0;
    aw_task_t *me = aw_task_self();
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_for (res_t *r, aw_gen(m5g_opener, st)) {
            note(r->name);
        }
        cr_assert_eq(aw_exitstack_size(st), 4);
        note("end");
    }
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    cr_assert_eq(aw_task_self(), me);
    cr_assert_str_eq(log_, "+r0;+g0;r0;+r1;+g1;r1;end;-g1;-r1(ok);-g0;-r0(ok);");
    return 0;
}
Test(exitstack, M5_a_generator_may_fill_its_consumers_exit_stack) {
    aw_test_run(m5g_body, NULL, 0);
}

/* M5: children of a group may fill their parent's exit stack (Python:
 * tasks of a TaskGroup entering connections into a shared
 * AsyncExitStack). The children end first; the entries exit when the
 * stack's block ends, in the parent, and see its error. */
static res_t m5c_res[2] = {{"c0", 0, 0, 1}, {"c1", 0, 0, 1}};
static int m5c_child(void *arg) {
    aw_exitstack_t **st = arg;
    res_t *r = &m5c_res[st[1] != NULL];
    if (aw_sleep_ms(st[1] ? 4 : 1) < 0)
        return aw_status();
    return aw_exitstack_enter(st[0], aw_cm(&res_type, r), NULL);
}
static int m5c_body(void *arg) {
    log_[0] = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_t *a0[2] = {st, NULL}, *a1[2] = {st, st};
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, m5c_child, a0, NULL);
            aw_spawn(g, m5c_child, a1, NULL);
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(aw_exitstack_size(st), 2);
        aw_fail(-EIO, "the block fails");
    }
    cr_assert_eq(aw_status(), -EIO, "got %s", aw_err_name(aw_status()));
    aw_err_clear();
    cr_assert_str_eq(log_, "+c0;+c1;-c1(EIO);-c0(EIO);");
    return 0;
}
Test(exitstack, M5_children_of_a_group_may_fill_their_parents_exit_stack) {
    aw_test_run(m5c_body, NULL, 0);
}

/* D10 with M5 (Python: `await stack.aclose()` inside an `async with
 * timeout(...)` opened after the stack's entries): closing the stack
 * early ends its deadline and its group under the block's scope, which
 * still applies afterwards; the group's child ran to its end. */
static int d10m5_child(void *arg) {
    int rc = aw_sleep_ms(5);
    note(rc ? "child-cut" : "child-done");
    return rc;
}
static int d10m5_body(void *arg) {
    log_[0] = 0;
    int rc = 1;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_group_t *g = NULL;
        cr_assert_eq(aw_exitstack_enter(st, aw_fail_after(AW_SEC(60)), NULL), 0);
        cr_assert_eq(aw_exitstack_enter(st, aw_group(), (void **)&g), 0);
        cr_assert_eq(aw_spawn(g, d10m5_child, NULL, NULL), 0);
        aw_with (aw_move_on_after(AW_MS(20))) {
            cr_assert_eq(aw_exitstack_close(st), 0);
            note("closed");
            rc = aw_sleep(AW_SEC(2)); /* cut by the block's own scope */
        }
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0, "got %s", aw_err_name(aw_status()));
    cr_assert_str_eq(log_, "child-done;closed;");
    return 0;
}
Test(exitstack, D10_M5_a_stack_closed_inside_a_block_opened_after_its_entries) {
    aw_test_run(d10m5_body, NULL, 0);
}

/* M5's limit (exitstack.h): a deadline entered by a child into its
 * parent's stack covers the child, so it cannot outlive it. The child's
 * end says where, and stops: the scope chain of a live task is never
 * left pointing at it (before: an assertion in debug builds, a dangling
 * scope in release builds). */
static int m5s_child(void *arg) {
    return aw_exitstack_enter(arg, aw_fail_after(AW_SEC(60)), NULL);
}
static int m5s_body(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack())
    aw_with (aw_group_t *g, aw_group())
        aw_spawn(g, m5s_child, st, NULL);
    return 0;
}
Test(exitstack, M5_a_child_leaving_a_deadline_in_its_parents_stack_is_stopped_with_its_site) {
    char path[] = "/tmp/awith-m5s-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        aw_main(m5s_body, NULL);
        _exit(0); /* not reached: the child's end stops the program */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    char out[1024] = {0};
    cr_assert_geq(pread(fd, out, sizeof out - 1, 0), 0);
    close(fd);
    unlink(path);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x", st);
    cr_assert(strstr(out, "task 'm5s_child' ends with a deadline") && strstr(out, "exitstack.c:"),
              "what it said: %s", out);
}

/* ================= audit of D: the halves the tests above leave out ================= */

/* D3: an exit callback may fail, raising or with a bare code, and its
 * failure is chained to the error it received, like a manager's exit. */
static int xfail_raise(void *arg, const aw_err_t *err) {
    note("xfail");
    return aw_raise(-EPIPE, "exit callback failed");
}
static int xfail_bare(void *arg, const aw_err_t *err) {
    note("xbare");
    return -EBUSY;
}
static int d3_fail(void *arg) {
    const aw_err_t *body = NULL;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, xcb, "X");
        aw_exitstack_push_exit(st, xfail_bare, NULL);
        aw_exitstack_push_exit(st, xfail_raise, NULL);
        aw_raise(-EIO, "body");
        body = aw_err_current();
        aw_leave();
    }
    cr_assert_str_eq(log_, "xfail;xbare;xX(EBUSY);", "each saw the error the next one left");
    const aw_err_t *e = aw_err_current();
    int want[] = {-EBUSY, -EPIPE, -EIO};
    for (int i = 0; i < 3; i++, e = e->context) {
        cr_assert_not_null(e, "link %d missing", i);
        cr_assert_eq(e->code, want[i], "link %d is %s", i, aw_err_name(e->code));
    }
    cr_assert_null(e);
    cr_assert_eq(aw_err_find(aw_err_current(), -EIO), body, "the body's record was replaced");
    aw_err_clear();
    return 0;
}
Test(exitstack, D3_an_exit_callback_fails_raising_or_bare_and_is_chained) { aw_test_run(d3_fail, NULL, 0); }

/* D3 "like a manager's exit": a positive value other than AW_SUPPRESS is
 * a protocol error (A14), the error it received kept in the chain. */
static int xseven(void *arg, const aw_err_t *err) { return 7; }
static int d3_bad(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, xseven, NULL);
        aw_fail(-EIO, "body");
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "an exit callback returning 7: %s", aw_err_name(aw_status()));
    cr_assert_not_null(aw_err_find(aw_err_current(), -EIO));
    aw_err_clear();
    return 0;
}
Test(exitstack, D3_A14_an_exit_callback_returning_7_is_a_protocol_error) { aw_test_run(d3_bad, NULL, 0); }

/* D4: a plain callback's return >= 0 (1, 7) is ignored on both paths;
 * a bare negative return is a failure chained like an exit's. */
static int cb_seven(void *arg) { return 7; }
static int cb_bare(void *arg) { return -EBUSY; }
static int d4_more(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb_seven, NULL);
        aw_exitstack_callback(st, cb_suppress_try, NULL);
    }
    cr_assert_eq(aw_status(), 0, "a plain callback's positive return was not ignored: %s",
                 aw_err_name(aw_status()));
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb_seven, NULL);
        aw_fail(-EIO, "body");
    }
    cr_assert_eq(aw_status(), -EIO, "%s", aw_err_name(aw_status()));
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    aw_err_clear();
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb_bare, NULL);
        aw_fail(-EIO, "body");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -EBUSY);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EIO);
    aw_err_clear();
    return 0;
}
Test(exitstack, D4_a_plain_callbacks_positive_return_is_ignored_and_a_negative_one_chained) {
    aw_test_run(d4_more, NULL, 0);
}

/* D7 with a failing block: an entry re-raising what it received (a
 * callback's failure on top of the body's) adds no record; the chain is
 * the callback's failure then the body's, acyclic. A manager whose exit
 * returns err->code does the same. */
static int d7_exit(void *self, const aw_err_t *err) { return err ? err->code : 0; }
static int d7_enter(void *self, void **out) { return 0; }
static const aw_cm_type_t d7_type = {"reraiser", d7_enter, d7_exit};
static int d7_body(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&d7_type, NULL), NULL);
        aw_exitstack_push_exit(st, reraise, NULL);
        aw_exitstack_callback(st, cb_fail, "inner");
        aw_exitstack_push_exit(st, reraise, NULL);
        aw_fail(-EIO, "body");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EIO);
    cr_assert_null(e->context->context);
    cr_assert_eq(aw_err_count(e), 2, "a re-raise added a record");
    aw_err_clear();
    return 0;
}
Test(exitstack, D7_reraises_around_a_failing_block_add_no_record) { aw_test_run(d7_body, NULL, 0); }

/* D11: nothing is pushed, a manager without enter is rejected too, and
 * the message names the manager. */
static int d11_more(void *arg) {
    static const aw_cm_type_t no_exit = {"half", r_enter, NULL};
    static const aw_cm_type_t no_enter = {"other-half", NULL, r_exit};
    res_t a = {"A"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_cm(&no_exit, &a), NULL), -AW_EPROTOCOL);
        cr_assert_eq(aw_exitstack_size(st), 0, "a rejected manager was pushed");
        cr_assert(strstr(aw_err_current()->msg, "half"), "%s", aw_err_current()->msg);
        aw_err_clear();
        cr_assert_eq(aw_exitstack_enter(st, aw_cm(&no_enter, &a), NULL), -AW_EPROTOCOL);
        cr_assert_eq(aw_exitstack_size(st), 0);
        cr_assert(strstr(aw_err_current()->msg, "other-half"), "%s", aw_err_current()->msg);
        aw_err_clear();
    }
    cr_assert_str_eq(log_, "", "enter or exit ran");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(exitstack, D11_a_manager_without_enter_or_exit_is_not_pushed_and_is_named) { aw_test_run(d11_more, NULL, 0); }

/* D12 with a deadline: it fires while the inner entry's exit sleeps;
 * nothing is cut, every entry receives -ECANCELED, the block times out. */
static int d12_dl(void *arg) {
    res_t a = {"A", 0, 0, 10}, b = {"B", 0, 0, 10};
    aw_with (aw_fail_after(AW_MS(3))) {
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
            aw_exitstack_enter(st, aw_cm(&res_type, &b), NULL);
            if (aw_sleep_ms(1) < 0)
                aw_leave();
            if (aw_sleep(AW_SEC(10)) < 0)
                aw_leave();
        }
    }
    cr_assert_str_eq(log_, "+A;+B;-B(ECANCELED);-A(ECANCELED);", "an entry was cut");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(exitstack, D12_a_deadline_cuts_no_entry_and_each_receives_the_cancel) { aw_test_run(d12_dl, NULL, 0); }

/* D2 under a cancel: an enter cut while suspended releases what it took,
 * is not pushed, and the earlier entries exit with -ECANCELED. */
typedef struct { int held, entered, exited; } slow_t;
static int slow_enter(void *self, void **out) {
    slow_t *s = self;
    s->entered++;
    s->held = 1;
    int rc = aw_sleep(AW_SEC(10));
    if (rc < 0) {
        s->held = 0;
        return rc;
    }
    return 0;
}
static int slow_exit(void *self, const aw_err_t *err) {
    slow_t *s = self;
    s->exited++;
    s->held = 0;
    return 0;
}
static const aw_cm_type_t slow_type = {"slow", slow_enter, slow_exit};
static slow_t d2s;
static int d2_cancel_child(void *arg) {
    res_t a = {"A"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        if (aw_exitstack_enter(st, aw_cm(&slow_type, &d2s), NULL) < 0) {
            cr_assert_eq(aw_exitstack_size(st), 1, "the cut enter was pushed");
            aw_leave();
        }
        note("X");
    }
    return aw_status();
}
static int d2_cancel(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, d2_cancel_child, NULL, &t);
    aw_sleep_ms(2);
    cr_assert_eq(d2s.held, 1);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_str_eq(log_, "+A;-A(ECANCELED);");
    cr_assert_eq(d2s.held, 0);
    cr_assert_eq(d2s.exited, 0, "the exit of an enter that failed ran");
    aw_err_clear();
    return 0;
}
Test(exitstack, D2_an_enter_cut_by_a_cancel_is_not_pushed) { aw_test_run(d2_cancel, NULL, 0); }

/* D9 under a cancel: the entries moved by pop_all run once, shielded,
 * when the new stack is closed in a cancelled task. */
static aw_exitstack_t d9_keep;
static int d9_cancel_child(void *arg) {
    static res_t a = {"A", 0, 0, 5};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_pop_all(st, &d9_keep);
    }
    aw_sleep(AW_SEC(10)); /* cancelled here */
    int rc = aw_exitstack_close(&d9_keep);
    note(rc == -ECANCELED ? "close-cancelled" : "close-other");
    return aw_status();
}
static int d9_cancel(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, d9_cancel_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert(strstr(log_, "+A;-A(ok);"), "the moved entry did not run once, clean: %s", log_);
    cr_assert_null(strstr(log_, "cut"), "the moved entry's exit was cut: %s", log_);
    aw_err_clear();
    return 0;
}
Test(exitstack, D9_moved_entries_run_once_shielded_when_closed_in_a_cancelled_task) {
    aw_test_run(d9_cancel, NULL, 0);
}

/* D11 for callbacks: a NULL exit callback or plain callback is refused
 * when pushed (-AW_EPROTOCOL, nothing pushed), not called at unwind. */
static int d11_null(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_push_exit(st, NULL, NULL), -AW_EPROTOCOL);
        cr_assert_eq(aw_exitstack_size(st), 0);
        aw_err_clear();
        cr_assert_eq(aw_exitstack_callback(st, NULL, NULL), -AW_EPROTOCOL);
        cr_assert_eq(aw_exitstack_size(st), 0);
        aw_err_clear();
        aw_exitstack_callback(st, cb, "kept");
    }
    cr_assert_str_eq(log_, "kept;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(exitstack, D11_a_null_callback_is_refused_when_pushed) { aw_test_run(d11_null, NULL, 0); }

/* B6 / D6 across kinds: a manager, a generator manager and a callback,
 * entered in one stack, each failing on a clean block: the chain is the
 * outermost's failure, then the next, then the innermost's, nothing lost,
 * as nested blocks of the three give. */
static int gen_fails(aw_gencm_t *g, void *arg) {
    aw_gencm_yield(g, NULL);
    return aw_raise(-EBUSY, "generator cleanup failed"); /* whatever the block left */
}
static int b6_kinds(void *arg) {
    res_t a = {"A", 0, -EACCES};
    int codes[2][8], n[2] = {0, 0};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_enter(st, aw_gencm(gen_fails, NULL), NULL);
        aw_exitstack_callback(st, cb_fail, "C");
    }
    for (const aw_err_t *e = aw_err_current(); e && n[0] < 8; e = e->context)
        codes[0][n[0]++] = e->code;
    aw_err_clear();
    aw_with (aw_cm(&res_type, &a))
    aw_with (aw_gencm(gen_fails, NULL)) {
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            aw_exitstack_callback(st, cb_fail, "C");
        }
    }
    for (const aw_err_t *e = aw_err_current(); e && n[1] < 8; e = e->context)
        codes[1][n[1]++] = e->code;
    aw_err_clear();
    cr_assert_eq(n[0], 3, "chain of %d", n[0]);
    cr_assert_eq(codes[0][0], -EACCES);
    cr_assert_eq(codes[0][1], -EBUSY);
    cr_assert_eq(codes[0][2], -EPIPE);
    cr_assert_eq(n[1], n[0], "nested blocks give %d records", n[1]);
    for (int i = 0; i < n[0]; i++)
        cr_assert_eq(codes[1][i], codes[0][i]);
    return 0;
}
Test(exitstack, B6_D6_a_manager_a_generator_and_a_callback_failing_keep_every_error) {
    aw_test_run(b6_kinds, NULL, 0);
}

/* D9, Python's pattern: entries moved by pop_all into an enclosing live
 * stack do not run when the inner block fails; they run once, when the
 * enclosing block ends, and receive the error that reached it. */
static int d9_outer(void *arg) {
    res_t a = {"A"}, b = {"B"};
    aw_with (aw_exitstack_t *outer, aw_exitstack()) {
        aw_with (aw_exitstack_t *inner, aw_exitstack()) {
            aw_exitstack_enter(inner, aw_cm(&res_type, &a), NULL);
            aw_exitstack_enter(inner, aw_cm(&res_type, &b), NULL);
            aw_exitstack_pop_all(inner, outer);
            aw_fail(-EIO, "after the move");
        }
        note("inner-left");
        cr_assert_eq(aw_exitstack_size(outer), 2);
    }
    cr_assert_str_eq(log_, "+A;+B;inner-left;-B(EIO);-A(EIO);");
    cr_assert_eq(aw_status(), -EIO);
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    aw_err_clear();
    return 0;
}
Test(exitstack, D9_entries_moved_into_an_enclosing_stack_run_when_it_ends) { aw_test_run(d9_outer, NULL, 0); }

/* D10: the second close does nothing, so it returns 0, even while the
 * first close's failure is still pending (not handled yet); and a close
 * whose entries all succeed returns 0 although an older error is pending
 * (as if leaving a block with no error, A10). */
static int d10_ret(void *arg) {
    res_t a = {"A"};
    aw_exitstack_t keep = {0};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb_fail, "f");
        aw_exitstack_pop_all(st, &keep);
    }
    cr_assert_eq(aw_exitstack_close(&keep), -EPIPE);
    cr_assert_eq(aw_exitstack_close(&keep), 0, "the second close, which did nothing, returned %s",
                 aw_err_name(aw_status()));
    cr_assert_eq(aw_status(), -EPIPE, "the first close's failure stays pending until handled");
    aw_err_clear();
    aw_raise(-ENOENT, "an older error, pending");
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        aw_exitstack_pop_all(st, &keep);
    }
    cr_assert_eq(aw_exitstack_close(&keep), 0, "a close whose entries succeeded");
    cr_assert_str_eq(log_, "+A;-A(ok);");
    cr_assert_eq(aw_status(), -ENOENT);
    aw_err_clear();
    return 0;
}
Test(exitstack, D10_close_returns_what_its_own_exits_left) { aw_test_run(d10_ret, NULL, 0); }

/* C13 with D12: a generator manager in an exit stack, its cleanup
 * sleeping while a second cancel lands: not cut. */
static int es_slow_cleanup(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    note(aw_sleep_ms(10) == 0 ? "gen-cleanup-complete" : "gen-cleanup-cut");
    return rc;
}
static int d12g_child(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(es_slow_cleanup, NULL), NULL);
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}
static int d12g(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, d12g_child, NULL, &t);
    aw_sleep_ms(2);
    aw_task_cancel(t);
    aw_sleep_ms(3);
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert_str_eq(log_, "gen-cleanup-complete;");
    aw_err_clear();
    return 0;
}
Test(exitstack, D12_C13_a_generators_cleanup_in_a_stack_is_not_cut_by_a_second_cancel) { aw_test_run(d12g, NULL, 0); }

/* D1: an entry that pushes another onto its own stack while the stack
 * unwinds: the new one runs too, once (Python's exit loop pops until the
 * stack is empty). */
static aw_exitstack_t *d1p_st;
static int pushes_more(void *arg) {
    note("pusher");
    aw_exitstack_callback(d1p_st, cb, "pushed-late");
    return 0;
}
static int d1_push_late(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        d1p_st = st;
        aw_exitstack_callback(st, cb, "first");
        aw_exitstack_callback(st, pushes_more, NULL);
    }
    cr_assert_str_eq(log_, "pusher;pushed-late;first;");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(exitstack, D1_an_entry_pushed_while_the_stack_unwinds_runs_once) { aw_test_run(d1_push_late, NULL, 0); }

/* D9 / A1: pop_all into a stack that already holds entries loses none:
 * the moved ones go on top of its own (they exit first) and every entry
 * runs once when it is closed. */
static int d9_nonempty(void *arg) {
    aw_exitstack_t keep = {0};
    aw_with (aw_exitstack_t *a, aw_exitstack()) {
        aw_exitstack_callback(a, cb, "X");
        aw_exitstack_callback(a, cb, "Y");
        aw_exitstack_pop_all(a, &keep);
    }
    aw_with (aw_exitstack_t *b, aw_exitstack()) {
        aw_exitstack_callback(b, cb, "A");
        aw_exitstack_callback(b, cb, "B");
        aw_exitstack_pop_all(b, &keep);
    }
    cr_assert_eq(aw_exitstack_size(&keep), 4);
    cr_assert_eq(aw_exitstack_close(&keep), 0);
    cr_assert_str_eq(log_, "B;A;Y;X;", "an entry of the stack moved into was lost");
    return 0;
}
Test(exitstack, D9_pop_all_into_a_stack_with_entries_keeps_them_all) { aw_test_run(d9_nonempty, NULL, 0); }

/* pop_all of a stack into itself moves nothing and loses nothing. */
static int d9_self(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb, "X");
        aw_exitstack_callback(st, cb, "Y");
        aw_exitstack_pop_all(st, st);
        cr_assert_eq(aw_exitstack_size(st), 2);
    }
    cr_assert_str_eq(log_, "Y;X;");
    return 0;
}
Test(exitstack, D9_pop_all_into_itself_moves_nothing, .timeout = 10) { aw_test_run(d9_self, NULL, 0); }

/* M4 with M5 (Trio's test_cancel_scope_misnesting_3: exiting a scope from
 * an unrelated task raises and changes nothing): a deadline entered into
 * the stack covers the task that entered it; a child closing that stack
 * would end the scope in the wrong task, its timeout raised in the child
 * and the parent's cancel left with no scope to end it. The close is
 * refused, nothing exits, and the parent's deadline works as written. */
static aw_exitstack_t *mis_st;
static struct {
    int close_rc, size_after, sleep_rc, end;
} mis;
static int mis_closer(void *arg) {
    (void)arg;
    mis.close_rc = aw_exitstack_close(mis_st);
    mis.size_after = (int)aw_exitstack_size(mis_st);
    aw_err_clear();
    return 0;
}
static int mis_body(void *arg) {
    (void)arg;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        mis_st = st;
        cr_assert_eq(aw_exitstack_enter(st, aw_fail_after(AW_MS(20)), NULL), 0);
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, mis_closer, NULL, NULL);
            mis.sleep_rc = aw_sleep(AW_SEC(5));
        }
    }
    mis.end = aw_status();
    aw_err_clear();
    return 0;
}
Test(exitstack, M4_a_stack_holding_another_tasks_scope_is_not_closed_by_a_child) {
    memset(&mis, 0, sizeof mis);
    aw_test_run(mis_body, NULL, 0);
    cr_assert_eq(mis.close_rc, -EPERM, "the child's close: %d", mis.close_rc);
    cr_assert_eq(mis.size_after, 1, "the refused close exited entries");
    cr_assert_eq(mis.sleep_rc, -ECANCELED);
    cr_assert_eq(mis.end, -ETIMEDOUT, "the parent's deadline ended as %s", aw_err_name(mis.end));
}
/* Ports of CPython's Lib/test/test_contextlib_async.py (TestAsyncExitStack)
 * and of the TestBaseExitStack tests it inherits from test_contextlib.py.
 * Exceptions become codes: ZeroDivisionError EDOM, ValueError EINVAL,
 * AttributeError ENOENT, KeyError EACCES, IndexError ERANGE. */
static int raise_after_sleep(void *arg) {
    aw_sleep_ms(1); /* an async callback: it really suspends */
    return aw_raise((int)(intptr_t)arg, "raised %s", aw_err_name((int)(intptr_t)arg));
}
static int saved_code, saved_ctx_code;
static int suppress_saving(void *arg, const aw_err_t *err) {
    saved_code = err ? err->code : 0;
    saved_ctx_code = err && err->context ? err->context->code : 0;
    return AW_SUPPRESS;
}
static int cp_chaining(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, raise_after_sleep, (void *)(intptr_t)-ERANGE);
        aw_exitstack_callback(st, raise_after_sleep, (void *)(intptr_t)-EACCES);
        aw_exitstack_callback(st, raise_after_sleep, (void *)(intptr_t)-ENOENT);
        aw_exitstack_push_exit(st, suppress_saving, NULL);
        aw_exitstack_callback(st, raise_after_sleep, (void *)(intptr_t)-EINVAL);
        aw_fail(-EDOM, "1 / 0");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -ERANGE);
    cr_assert_eq(e->context->code, -EACCES);
    cr_assert_eq(e->context->context->code, -ENOENT);
    cr_assert_null(e->context->context->context, "inner errors were suppressed");
    cr_assert_eq(saved_code, -EINVAL);
    cr_assert_eq(saved_ctx_code, -EDOM);
    aw_err_clear();
    return 0;
}
Test(exitstack, cpython_test_async_exit_exception_chaining) { aw_test_run(cp_chaining, NULL, 0); }

/* test_async_push: exit callbacks see the error or "no error" as the ones
 * after them left it; the suppressing one clears it for the outer ones. */
static int expect_exc(void *arg, const aw_err_t *err) {
    cr_assert_not_null(err, "%s expected the error", (char *)arg);
    cr_assert_eq(err->code, -EDOM);
    note(arg);
    return 0;
}
static int expect_ok(void *arg, const aw_err_t *err) {
    cr_assert_null(err, "%s expected no error", (char *)arg);
    note(arg);
    return 0;
}
static int suppress_all(void *arg, const aw_err_t *err) {
    note(arg);
    return AW_SUPPRESS;
}
static int cp_push(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, expect_ok, "ok1");
        aw_exitstack_push_exit(st, expect_ok, "ok2");
        aw_exitstack_push_exit(st, suppress_all, "S");
        aw_exitstack_push_exit(st, expect_exc, "e1");
        aw_exitstack_push_exit(st, expect_exc, "e2");
        aw_exitstack_push_exit(st, expect_exc, "e3");
        aw_fail(-EDOM, "1/0");
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(log_, "e3;e2;e1;S;ok2;ok1;");
    return 0;
}
Test(exitstack, cpython_test_async_push) { aw_test_run(cp_push, NULL, 0); }

static int cp_enter_context(void *arg) {
    res_t a = {"cm"};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb, "4");
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        note("2");
    }
    cr_assert_str_eq(log_, "+cm;2;-cm(ok);4;");
    return 0;
}
Test(exitstack, cpython_test_async_enter_context) { aw_test_run(cp_enter_context, NULL, 0); }

/* test_exit_exception_with_correct_context: generator managers that raise
 * in their cleanup chain each error once: exc4 <- exc3 <- exc2 <- exc1. */
static int raise_in_finally(aw_gencm_t *g, void *arg) {
    aw_gencm_yield(g, NULL);
    return aw_raise((int)(intptr_t)arg, "cleanup raised");
}
static int cp_correct_context(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(raise_in_finally, (void *)(intptr_t)-EACCES), NULL);
        aw_exitstack_enter(st, aw_gencm(raise_in_finally, (void *)(intptr_t)-EBUSY), NULL);
        aw_exitstack_enter(st, aw_gencm(raise_in_finally, (void *)(intptr_t)-EPIPE), NULL);
        aw_fail(-EIO, "exc1");
    }
    const aw_err_t *e = aw_err_current();
    int want[] = {-EACCES, -EBUSY, -EPIPE, -EIO};
    for (int i = 0; i < 4; i++, e = e->context) {
        cr_assert_not_null(e, "link %d", i);
        cr_assert_eq(e->code, want[i], "link %d is %s", i, aw_err_name(e->code));
    }
    cr_assert_null(e);
    aw_err_clear();
    return 0;
}
Test(exitstack, cpython_test_exit_exception_with_correct_context) { aw_test_run(cp_correct_context, NULL, 0); }

/* test_exit_exception_with_existing_context: a callback that raises one
 * error and then another over it keeps both: 5 <- 4 <- 3 <- 2 <- 1. */
static int raise_nested(void *arg) {
    int *codes = arg;
    aw_raise(codes[0], "inner");
    return aw_raise(codes[1], "outer");
}
static int cp_existing_context(void *arg) {
    int c45[] = {-EACCES, -ENOENT}, c23[] = {-EPIPE, -EBUSY};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, raise_nested, c45);
        aw_exitstack_callback(st, raise_nested, c23);
        aw_fail(-EIO, "exc1");
    }
    const aw_err_t *e = aw_err_current();
    int want[] = {-ENOENT, -EACCES, -EBUSY, -EPIPE, -EIO};
    for (int i = 0; i < 5; i++, e = e->context) {
        cr_assert_not_null(e, "link %d", i);
        cr_assert_eq(e->code, want[i], "link %d is %s", i, aw_err_name(e->code));
    }
    cr_assert_null(e);
    aw_err_clear();
    return 0;
}
Test(exitstack, cpython_test_exit_exception_with_existing_context) { aw_test_run(cp_existing_context, NULL, 0); }

static int noop_cb(void *arg) { return 0; }
static int cp_non_suppressing(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, noop_cb, NULL);
        aw_exitstack_callback(st, raise_after_sleep, (void *)(intptr_t)-ERANGE);
    }
    cr_assert_eq(aw_status(), -ERANGE);
    aw_err_clear();
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, raise_after_sleep, (void *)(intptr_t)-EACCES);
        aw_exitstack_push_exit(st, suppress_all, "S");
        aw_exitstack_callback(st, raise_after_sleep, (void *)(intptr_t)-ERANGE);
    }
    cr_assert_eq(aw_status(), -EACCES);
    cr_assert_null(aw_err_current()->context, "the IndexError was suppressed");
    aw_err_clear();
    return 0;
}
Test(exitstack, cpython_test_exit_exception_non_suppressing) { aw_test_run(cp_non_suppressing, NULL, 0); }

static int cp_body_suppress(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, suppress_all, "S");
        aw_fail(-EDOM, "1/0");
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(exitstack, cpython_test_body_exception_suppress) { aw_test_run(cp_body_suppress, NULL, 0); }

static int fail_exit(void *arg, const aw_err_t *err) { return aw_raise((int)(intptr_t)arg, "exit raised"); }
static int cp_chaining_suppress(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, suppress_all, "S");
        aw_exitstack_push_exit(st, fail_exit, (void *)(intptr_t)-EDOM);
        aw_exitstack_push_exit(st, fail_exit, (void *)(intptr_t)-EACCES);
    }
    cr_assert_eq(aw_status(), 0, "both exit errors suppressed by the outermost");
    return 0;
}
Test(exitstack, cpython_test_exit_exception_chaining_suppress) { aw_test_run(cp_chaining_suppress, NULL, 0); }

static int cp_raise_suppress(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, xcb, "F"); /* returns false */
        aw_fail(-EDOM, "1/0");
    }
    cr_assert_eq(aw_status(), -EDOM, "test_exit_raise");
    aw_err_clear();
    return 0;
}
Test(exitstack, cpython_test_exit_raise) { aw_test_run(cp_raise_suppress, NULL, 0); }

static int count_cb(void *arg) {
    (*(int *)arg)++;
    return 0;
}
static int fail_cb(void *arg) {
    (*(int *)arg)++;
    return aw_raise(-EPIPE, "callback %d failed", *(int *)arg);
}
/* test_excessive_nesting: 10000 callbacks (the original implementation
 * died of recursion); the same with every one failing keeps all 10000. */
static int cp_excessive(void *arg) {
    int n = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 10000; i++)
            cr_assert_eq(aw_exitstack_callback(st, count_cb, &n), 0);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(n, 10000);
    n = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 10000; i++)
            aw_exitstack_callback(st, fail_cb, &n);
    }
    cr_assert_eq(n, 10000);
    cr_assert_eq(aw_status(), -EPIPE);
    cr_assert_eq(aw_err_count(aw_err_current()), 10000);
    aw_err_clear();
    return 0;
}
Test(exitstack, cpython_test_excessive_nesting) { aw_test_run(cp_excessive, NULL, 0); }

/* test_dont_reraise_RuntimeError: first() re-raises what it caught,
 * second() raises a new error from it: new <- body, nothing more. */
static int rr_second(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    if (rc < 0)
        return aw_raise(-EACCES, "new exception");
    return 0;
}
static int rr_first(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, NULL); }
static int cp_dont_reraise(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(rr_second, NULL), NULL);
        aw_exitstack_enter(st, aw_gencm(rr_first, NULL), NULL);
        aw_fail(-EIO, "please no infinite loop.");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EACCES);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EIO);
    cr_assert_null(e->context->context);
    cr_assert_eq(aw_err_count(e), 2);
    aw_err_clear();
    return 0;
}
Test(exitstack, cpython_test_dont_reraise_RuntimeError) { aw_test_run(cp_dont_reraise, NULL, 0); }

static int cp_close(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb, "1");
        aw_exitstack_close(st);
        note("2");
    }
    cr_assert_str_eq(log_, "1;2;");
    return 0;
}
Test(exitstack, cpython_test_close) { aw_test_run(cp_close, NULL, 0); }

static int cp_pop_all(void *arg) {
    aw_exitstack_t keep = {0};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_callback(st, cb, "3");
        aw_exitstack_pop_all(st, &keep);
        note("1");
    }
    note("2");
    aw_exitstack_close(&keep);
    cr_assert_str_eq(log_, "1;2;3;");
    return 0;
}
Test(exitstack, cpython_test_pop_all) { aw_test_run(cp_pop_all, NULL, 0); }

/* A14 and D2 through the exit stack: an enter that returns a positive
 * value (its contract is 0 or -errno) is refused with -AW_EPROTOCOL
 * naming the manager, is not pushed, and its exit never runs; what was
 * pushed before exits with that error (CPython's test_with_6). */
static int positive_enter(void *self, void **out) {
    note("+P");
    *out = self;
    return 2;
}
static int positive_exit(void *self, const aw_err_t *err) {
    note("-P");
    return 0;
}
static const aw_cm_type_t positive_type = {"positive-enter", positive_enter, positive_exit};
static int a14_xs(void *arg) {
    res_t a = {"A"};
    int rc = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&res_type, &a), NULL);
        rc = aw_exitstack_enter(st, aw_cm(&positive_type, NULL), NULL);
        cr_assert_eq(aw_exitstack_size(st), 1, "the refused manager is not pushed");
    }
    cr_assert_eq(rc, -AW_EPROTOCOL);
    cr_assert_str_eq(log_, "+A;+P;-A(AW_EPROTOCOL);");
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert_not_null(strstr(aw_err_current()->msg, "positive-enter"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}
Test(exitstack, A14_D2_an_enter_returning_a_positive_value_is_refused_and_not_pushed) {
    aw_test_run(a14_xs, NULL, 0);
}
