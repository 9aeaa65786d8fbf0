/* tests for src/core/log.c: every report of the library goes to the log
 * hook (awith/log.h) when one is set, whole, one call per report, and
 * nothing of it to stderr; without a hook it goes to stderr. Covers the
 * reports of src/core/main.c (tasks still alive at close, a root-group
 * failure, the main task's failure, a deadlock, a loop that cannot
 * start), src/core/with.c and err.c (used outside a task: no loop, so the
 * process-wide hook) and src/cm/timing.c's default line. */
#include "testutil.h"

#include <awith/log.h>
#include <string.h>
#include <unistd.h>

static char logged[8192];
static int calls;

static void hook(const char *msg, void *arg) {
    cr_assert_eq(arg, (void *)&logged, "the hook gets its own argument");
    cr_assert(strlen(msg) > 0 && msg[strlen(msg) - 1] == '\n', "a report ends in a newline");
    strncat(logged, msg, sizeof logged - strlen(logged) - 1);
    calls++;
}

/* Run fn under aw_main_opts with the loop hook (or none) and stderr
 * captured into err; returns aw_main's status. */
static int run_captured(aw_loop_opts_t *o, aw_task_fn fn, void *arg, char *err, size_t cap) {
    logged[0] = '\0';
    calls = 0;
    fflush(stderr);
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int rc = aw_main_opts(o, fn, arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    err[fread(err, 1, cap - 1, tmp)] = '\0';
    fclose(tmp);
    return rc;
}

static int stuck(void *arg) {
    aw_with (aw_shield(AW_NEVER))
        aw_sleep(AW_SEC(3600)); /* survives the cancel: still alive at close */
    return 0;
}
static int leave_stuck_task(void *arg) {
    aw_spawn(NULL, stuck, NULL, NULL);
    return aw_yield(); /* let it enter its shield */
}

Test(log, the_tasks_still_alive_report_goes_to_the_loop_hook) {
    aw_loop_opts_t o = {.shutdown_grace = AW_MS(20), .log = hook, .log_arg = logged};
    char err[4096];
    cr_assert_eq(run_captured(&o, leave_stuck_task, NULL, err, sizeof err), -EBUSY);
    cr_assert(strstr(logged, "loop closed with tasks alive; 1 task(s) still alive"), "%s", logged);
    cr_assert(strstr(logged, "inside manager 'scope'"), "the report comes whole: %s", logged);
    cr_assert_eq(calls, 1, "one call per report, got %d", calls);
    cr_assert_str_empty(err, "nothing on stderr: %s", err);
}

static int fails(void *arg) { return aw_raise(-EIO, "disk on fire"); }
static int spawn_failing(void *arg) {
    aw_spawn(NULL, fails, NULL, NULL);
    return aw_yield();
}

Test(log, a_root_group_failure_goes_to_the_loop_hook) {
    aw_loop_opts_t o = {.log = hook, .log_arg = logged};
    char err[4096];
    cr_assert_eq(run_captured(&o, spawn_failing, NULL, err, sizeof err), -AW_EGROUP);
    cr_assert(strstr(logged, "a task of the root group failed"), "%s", logged);
    cr_assert(strstr(logged, "disk on fire"), "%s", logged);
    cr_assert_str_empty(err, "nothing on stderr: %s", err);
}

Test(log, the_main_task_failure_goes_to_the_loop_hook) {
    aw_loop_opts_t o = {.log = hook, .log_arg = logged};
    char err[4096];
    cr_assert_eq(run_captured(&o, fails, NULL, err, sizeof err), -EIO);
    cr_assert(strstr(logged, "the main task failed"), "%s", logged);
    cr_assert(strstr(logged, "disk on fire"), "the error chain comes with it: %s", logged);
    cr_assert_eq(calls, 1, "one call per report, got %d", calls);
    cr_assert_str_empty(err, "nothing on stderr: %s", err);
}

static int waits_forever(void *arg) {
    aw_event_t ev = AW_EVENT_INIT;
    aw_event_wait(&ev);
    return 0;
}

Test(log, the_deadlock_report_goes_to_the_loop_hook) {
    aw_loop_opts_t o = {.log = hook, .log_arg = logged};
    char err[4096];
    run_captured(&o, waits_forever, NULL, err, sizeof err);
    cr_assert(strstr(logged, "deadlock"), "%s", logged);
    cr_assert_str_empty(err, "nothing on stderr: %s", err);
}

static int timed(void *arg) {
    aw_timing_t t = AW_TIMING_INIT("step", aw_timing_log, NULL);
    aw_with (aw_timed(&t))
        aw_yield();
    return 0;
}

Test(log, the_timing_default_line_goes_to_the_loop_hook) {
    aw_loop_opts_t o = {.log = hook, .log_arg = logged};
    char err[4096];
    cr_assert_eq(run_captured(&o, timed, NULL, err, sizeof err), 0);
    cr_assert(strstr(logged, "timing: step"), "%s", logged);
    cr_assert_str_empty(err, "nothing on stderr: %s", err);
}

Test(log, without_a_hook_reports_go_to_stderr) {
    char err[4096];
    cr_assert_eq(run_captured(NULL, fails, NULL, err, sizeof err), -EIO);
    cr_assert(strstr(err, "the main task failed"), "%s", err);
    cr_assert_str_empty(logged);
}

Test(log, the_process_hook_takes_reports_no_loop_hook_takes) {
    aw_log_set(hook, logged);
    char err[4096];
    cr_assert_eq(run_captured(NULL, fails, NULL, err, sizeof err), -EIO);
    cr_assert(strstr(logged, "the main task failed"), "%s", logged);
    cr_assert_str_empty(err, "nothing on stderr: %s", err);
    aw_log_set(NULL, NULL);
}

Test(log, a_loop_hook_wins_over_the_process_hook) {
    static char other[64];
    aw_log_set(hook, other); /* would fail the hook's argument check */
    aw_loop_opts_t o = {.log = hook, .log_arg = logged};
    char err[4096];
    cr_assert_eq(run_captured(&o, fails, NULL, err, sizeof err), -EIO);
    cr_assert(strstr(logged, "the main task failed"), "%s", logged);
    aw_log_set(NULL, NULL);
}

/* Outside any loop: only the process-wide hook can take these. */
Test(log, misuse_outside_a_task_goes_to_the_process_hook) {
    aw_log_set(hook, logged);
    logged[0] = '\0';
    cr_assert_eq(aw_sleep(1), -EPERM);
    cr_assert(strstr(logged, "aw_sleep called outside a task"), "%s", logged);
    aw_with (aw_cancel_scope())
        cr_assert_fail("the block is skipped outside a task");
    cr_assert(strstr(logged, "used outside a task; block skipped"), "%s", logged);
    aw_log_set(NULL, NULL);
}
