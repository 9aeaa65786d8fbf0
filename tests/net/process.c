/* tests for src/net/process.c: child processes with real programs
 * (/bin/cat, /bin/sh -c, sleep). Echo through cat, exit codes, death by
 * a signal, spawn failures leaving nothing behind, PATH search, stderr
 * into stdout, environment and directory, a write to a child that closed
 * its stdin (-EPIPE, no SIGPIPE), a clean exit waiting for the child, a
 * cancel while waiting (SIGTERM, reaped), SIGKILL after the kill grace, a
 * deadline around a slow process, an exit grace running out, several
 * tasks waiting for one process, a program ignoring SIGCHLD, a missing
 * working directory, an exit stack of processes failing midway (M5), the
 * processes of tasks alive at shutdown (L1), a SIGTERM while waiting, and
 * the cancel-every-point harness over a cat round trip. After each: no fd
 * left (aw_test_fds) and no child left (waitpid(-1, WNOHANG) says ECHILD:
 * not even a zombie). */
#include "netutil.h"
#include <awith/testing.h>

#include <awith/process.h>
#include <awith/gencm.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void assert_no_child(void) {
    int st;
    errno = 0;
    pid_t r = waitpid(-1, &st, WNOHANG);
    cr_assert_eq(r, -1, "a child was left behind (pid %d)", (int)r);
    cr_assert_eq(errno, ECHILD);
}

/* Is pid still a child of ours (running or a zombie)? */
static bool is_child(pid_t pid) {
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static const char *CAT[] = {"/bin/cat", NULL};
static const aw_process_opts_t PIPES = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE};

/* ---- round trips and statuses ---- */

static int echo_cat(void *arg) {
    (void)arg;
    aw_process_t st = AW_PROCESS_INIT(CAT, &PIPES);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        cr_assert_gt(p->pid, 0);
        cr_assert_eq(aw_stream_write(&p->in, "hello\nworld\n", 12), 0);
        cr_assert_eq(aw_stream_shutdown(&p->in), 0); /* cat reads end of file */
        char line[32];
        cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 6);
        cr_assert_eq(memcmp(line, "hello\n", 6), 0);
        cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 6);
        cr_assert_eq(memcmp(line, "world\n", 6), 0);
        cr_assert_eq(aw_stream_read(&p->out, line, sizeof line), 0);
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert(p->reaped);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(st.exit_code, 0);
    cr_assert_eq(st.term_signal, 0);
    return 0;
}

Test(process, echo_through_cat) {
    int fds = aw_test_fds();
    aw_test_run(echo_cat, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

static int run_sh(const char *script, aw_process_t *st, const aw_process_opts_t *o) {
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    *st = (aw_process_t)AW_PROCESS_INIT(argv, o);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, st))
        aw_process_wait(p);
    return aw_status();
}

static int exit_codes(void *arg) {
    (void)arg;
    aw_process_t st;
    cr_assert_eq(run_sh("exit 3", &st, NULL), 0, "an exit code is no error of the wait");
    cr_assert_eq(st.exit_code, 3);
    cr_assert_eq(st.term_signal, 0);
    cr_assert_eq(run_sh("exit 0", &st, NULL), 0);
    cr_assert_eq(st.exit_code, 0);
    cr_assert_eq(run_sh("kill -USR1 $$", &st, NULL), 0);
    cr_assert_eq(st.exit_code, -1);
    cr_assert_eq(st.term_signal, SIGUSR1);
    return 0;
}

Test(process, exit_codes_and_death_by_a_signal_are_reported) {
    aw_test_run(exit_codes, NULL, 0);
    assert_no_child();
}

static int signal_it(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sleep", "100", NULL};
    aw_process_t st = AW_PROCESS_INIT(argv, NULL);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        cr_assert_eq(aw_process_signal(p, SIGINT), 0);
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert_eq(aw_process_signal(p, SIGINT), -ESRCH);
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(st.term_signal, SIGINT);
    return 0;
}

Test(process, a_signal_sent_ends_it_and_none_goes_to_a_reaped_pid) {
    aw_test_run(signal_it, NULL, 0);
    assert_no_child();
}

/* A lot of output: the pipe fills, the reader waits, nothing is lost. */
static int big_output(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "head -c 1000000 /dev/zero", NULL};
    aw_process_opts_t o = {.out = AW_PROCESS_PIPE};
    size_t total = 0;
    aw_with (aw_process_t *p, aw_process(argv, &o)) {
        char buf[8192];
        ssize_t n;
        while ((n = aw_stream_read(&p->out, buf, sizeof buf)) > 0)
            total += (size_t)n;
        cr_assert_eq(n, 0);
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert_eq(p->exit_code, 0);
    }
    cr_assert_eq(total, 1000000);
    return aw_status();
}

Test(process, a_megabyte_of_output_arrives_whole) {
    aw_test_run(big_output, NULL, 0);
    assert_no_child();
}

static int streams(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; echo $FOO; pwd", NULL};
    char *env[] = {"FOO=bar", NULL};
    aw_process_opts_t o = {.out = AW_PROCESS_PIPE, .err = AW_PROCESS_STDOUT, .envp = env,
                           .cwd = "/tmp", .in = AW_PROCESS_DEVNULL};
    char all[128] = {0};
    size_t got = 0;
    aw_with (aw_process_t *p, aw_process(argv, &o)) {
        cr_assert_eq(p->in.fd, -1, "not a pipe");
        cr_assert_eq(p->err.fd, -1);
        ssize_t n;
        while ((n = aw_stream_read(&p->out, all + got, sizeof all - 1 - got)) > 0)
            got += (size_t)n;
    }
    cr_assert_str_eq(all, "out\nerr\nbar\n/tmp\n");
    /* stderr as a pipe of its own, stdout to /dev/null */
    const char *argv2[] = {"/bin/sh", "-c", "echo gone; echo kept >&2", NULL};
    aw_process_opts_t o2 = {.out = AW_PROCESS_DEVNULL, .err = AW_PROCESS_PIPE};
    aw_with (aw_process_t *p, aw_process(argv2, &o2)) {
        char line[16];
        cr_assert_eq(aw_stream_read_line(&p->err, line, sizeof line), 5);
        cr_assert_eq(memcmp(line, "kept\n", 5), 0);
        cr_assert_eq(aw_stream_read(&p->err, line, sizeof line), 0);
    }
    return aw_status();
}

Test(process, stderr_into_stdout_devnull_environment_and_directory) {
    int fds = aw_test_fds();
    aw_test_run(streams, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* ---- failures ---- */

static int spawn_failures(void *arg) {
    (void)arg;
    int fds = aw_test_fds();
    aw_process_t p;
    const char *nope[] = {"/bin/nope", NULL};
    cr_assert_eq(aw_process_spawn(&p, nope, &PIPES), -ENOENT);
    cr_assert(msg_has("spawn /bin/nope: No such file"), "%s", msg_now());
    cr_assert_eq(p.pid, 0);
    aw_err_clear();
    const char *bare[] = {"true", NULL};
    cr_assert_eq(aw_process_spawn(&p, bare, NULL), -ENOENT, "no PATH search unless asked");
    aw_err_clear();
    cr_assert_eq(aw_process_spawn(&p, bare, &(aw_process_opts_t){.path = true}), 0);
    cr_assert_eq(aw_process_wait(&p), 0);
    cr_assert_eq(p.exit_code, 0);
    cr_assert_eq(aw_process_close(&p), 0);
    cr_assert_eq(aw_process_close(&p), 0, "idempotent");
    const char *empty[] = {NULL};
    cr_assert_eq(aw_process_spawn(&p, empty, NULL), -EINVAL);
    cr_assert_eq(aw_process_spawn(&p, CAT, &(aw_process_opts_t){.out = 9}), -EINVAL);
    aw_err_clear();
    int entered = 0;
    aw_with (aw_process_t *q, aw_process(nope, NULL))
        entered = 1;
    cr_assert_eq(entered, 0);
    cr_assert_eq(aw_status(), -ENOENT);
    aw_err_clear();
    cr_assert_eq(aw_test_fds(), fds);
    return 0;
}

Test(process, a_failed_spawn_leaves_nothing_behind) {
    aw_test_run(spawn_failures, NULL, 0);
    assert_no_child();
}

/* A working directory that does not exist fails the spawn with the
 * program's codes (-ENOENT); the message names the directory, not only
 * the program, which does exist (errors name the path). */
static int missing_cwd(void *arg) {
    (void)arg;
    int fds = aw_test_fds();
    aw_process_t p;
    const char *argv[] = {"/bin/true", NULL};
    aw_process_opts_t o = {.cwd = "/nonexistent-awith-dir"};
    cr_assert_eq(aw_process_spawn(&p, argv, &o), -ENOENT);
    cr_assert(msg_has("working directory /nonexistent-awith-dir"), "%s", msg_now());
    cr_assert_eq(p.pid, 0);
    aw_err_clear();
    o.cwd = "/etc/passwd"; /* not a directory */
    cr_assert_eq(aw_process_spawn(&p, argv, &o), -ENOTDIR);
    cr_assert(msg_has("working directory /etc/passwd"), "%s", msg_now());
    aw_err_clear();
    o.cwd = "/tmp"; /* and the program's own ENOENT is still the program's */
    const char *nope[] = {"/bin/nope", NULL};
    cr_assert_eq(aw_process_spawn(&p, nope, &o), -ENOENT);
    cr_assert(!msg_has("working directory"), "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(aw_test_fds(), fds);
    return 0;
}

Test(process, a_missing_working_directory_is_named_in_the_spawn_error) {
    aw_test_run(missing_cwd, NULL, 0);
    assert_no_child();
}

/* A program that ignores SIGCHLD hands every child's status to the
 * kernel (header: the wait then fails with -ECHILD). A child that ends
 * and is reaped before its pidfd is opened was spawned all the same: the
 * block runs and its wait says -ECHILD, as for one that ends later; the
 * spawn does not fail as if the program had not run. */
static int sigchld_ignored(void *arg) {
    (void)arg;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGCHLD, &ign, &old);
    const char *argv[] = {"/bin/true", NULL};
    for (int i = 0; i < 200; i++) { /* the race: /bin/true ends first some of the time */
        bool ran = false;
        aw_with (aw_process_t *p, aw_process(argv, NULL)) {
            ran = true;
            cr_assert_eq(aw_process_wait(p), -ECHILD, "%s", msg_now());
            cr_assert(msg_has("reaped elsewhere"), "%s", msg_now());
            aw_err_clear();
        }
        cr_assert(ran, "run %d: the spawn failed: %s", i, msg_now());
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
    }
    sigaction(SIGCHLD, &old, NULL);
    return 0;
}

Test(process, a_child_reaped_by_the_kernel_before_its_pidfd_was_spawned_all_the_same) {
    int fds = aw_test_fds();
    aw_test_run(sigchld_ignored, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

static int write_to_gone(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/true", NULL};
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE};
    aw_with (aw_process_t *p, aw_process(argv, &o)) {
        cr_assert_eq(aw_process_wait(p), 0);
        int rc = aw_stream_write(&p->in, "x", 1);
        cr_assert_eq(rc, -EPIPE, "the write fails, the program lives: %d", rc);
        aw_err_clear();
    }
    return aw_status();
}

Test(process, writing_to_a_child_that_is_gone_is_epipe_not_sigpipe) {
    aw_test_run(write_to_gone, NULL, 0);
    assert_no_child();
}

/* ---- the ways out ---- */

/* A clean way out closes the pipes and waits for the child's own end. */
static int clean_exit(void *arg) {
    (void)arg;
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_DEVNULL};
    aw_process_t st = AW_PROCESS_INIT(CAT, &o);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st))
        cr_assert_eq(aw_stream_write(&p->in, "x", 1), 0);
    cr_assert_eq(aw_status(), 0);
    cr_assert(st.reaped);
    cr_assert_eq(st.exit_code, 0, "cat read end of file and exited (signal %d)", st.term_signal);
    const char *argv[] = {"/bin/sh", "-c", "sleep 0.05; exit 4", NULL};
    aw_process_t st2 = AW_PROCESS_INIT(argv, NULL);
    aw_ns_t t0 = aw_now();
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st2)) {
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(st2.exit_code, 4, "it ran to its end");
    cr_assert_geq(aw_now() - t0, AW_MS(50));
    return 0;
}

Test(process, a_clean_exit_closes_the_pipes_and_waits_for_the_child) {
    int fds = aw_test_fds();
    aw_test_run(clean_exit, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

static aw_process_t cancel_st;
static const char *SLEEP[] = {"/bin/sleep", "100", NULL};

static int cancel_waiting(void *arg) {
    (void)arg;
    cancel_st = (aw_process_t)AW_PROCESS_INIT(SLEEP, NULL);
    pid_t pid = 0;
    int rc = 1;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(20)))
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &cancel_st)) {
        pid = p->pid;
        rc = aw_process_wait(p);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    cr_assert(cancel_st.reaped);
    cr_assert_eq(cancel_st.term_signal, SIGTERM, "terminated, not killed");
    cr_assert(!is_child(pid), "pid %d is still a child (a zombie?)", (int)pid);
    return 0;
}

Test(process, cancel_while_waiting_terminates_and_reaps) {
    int fds = aw_test_fds();
    aw_test_run(cancel_waiting, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* Several tasks may wait for one process (Trio's Process.wait, asyncio's
 * proc.wait): a watcher task and the body both get 0 and the status,
 * whichever reaps it; the reactor's one reader per fd is no error of
 * theirs. */
static int watcher_rc;
static int watch_process(void *arg) {
    watcher_rc = aw_process_wait(arg);
    return 0;
}

static int two_waiters(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "sleep 0.05; exit 3", NULL};
    aw_process_t st = AW_PROCESS_INIT(argv, NULL);
    watcher_rc = 1;
    int rc = 1;
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st))
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_spawn(g, watch_process, p, NULL), 0);
        aw_yield(); /* the watcher waits first */
        rc = aw_process_wait(p);
        cr_assert_eq(rc, 0, "the body's wait: %s", msg_now());
        cr_assert_eq(p->exit_code, 3);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(watcher_rc, 0);
    cr_assert_eq(st.exit_code, 3);
    return 0;
}

Test(process, a_process_waited_for_by_two_tasks_ends_both_waits) {
    int fds = aw_test_fds();
    aw_test_run(two_waiters, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* aw_process_close while another task waits: the close gives SIGTERM its
 * grace and returns 0, and the waiter gets 0 (not the closed pidfd's
 * -EBADF). */
static int close_while_watched(void *arg) {
    (void)arg;
    aw_process_t p;
    watcher_rc = 1;
    int rc = 1;
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_process_spawn(&p, SLEEP, NULL), 0);
        cr_assert_eq(aw_spawn(g, watch_process, &p, NULL), 0);
        aw_yield();
        rc = aw_process_close(&p);
        cr_assert_eq(rc, 0, "close: %s", msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(watcher_rc, 0);
    cr_assert(p.reaped);
    cr_assert_eq(p.term_signal, SIGTERM, "terminated, not killed at once");
    return 0;
}

Test(process, close_while_another_task_waits_terminates_and_ends_the_wait) {
    int fds = aw_test_fds();
    aw_test_run(close_while_watched, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* A child that ignores SIGTERM is killed once the kill grace is over. */
static int stubborn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 100", NULL};
    aw_process_opts_t o = {.out = AW_PROCESS_PIPE, .kill_grace = AW_MS(50)};
    aw_process_t st = AW_PROCESS_INIT(argv, &o);
    aw_ns_t t0 = 0;
    aw_with (aw_scope_t *s, aw_cancel_scope())
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        char line[16];
        cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 6); /* TERM ignored now */
        t0 = aw_now();
        aw_scope_cancel(s);
        aw_process_wait(p);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(st.term_signal, SIGKILL);
    cr_assert_geq(aw_now() - t0, AW_MS(50), "SIGTERM had its grace first");
    return 0;
}

Test(process, a_child_ignoring_sigterm_is_killed_after_the_grace) {
    aw_test_run(stubborn, NULL, 0);
    assert_no_child();
}

static int deadline(void *arg) {
    (void)arg;
    aw_process_t st = AW_PROCESS_INIT(SLEEP, NULL);
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(30)))
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st))
        aw_process_wait(p);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert(st.reaped);
    cr_assert_eq(st.term_signal, SIGTERM);
    return 0;
}

Test(process, a_deadline_around_a_slow_process_ends_it) {
    aw_test_run(deadline, NULL, 0);
    assert_no_child();
}

/* A clean way out whose child never ends: the exit's grace runs out, the
 * child is killed and reaped, the block fails naming the manager. */
static int grace_overrun(void *arg) {
    (void)arg;
    aw_process_t st = AW_PROCESS_INIT(SLEEP, NULL);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
    }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    cr_assert(msg_has("process"), "%s", msg_now());
    aw_err_clear();
    cr_assert(st.reaped);
    cr_assert(st.term_signal == SIGKILL || st.term_signal == SIGTERM, "signal %d",
              st.term_signal);
    return 0;
}

Test(process, a_clean_exit_past_its_grace_kills_and_reaps) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(30)};
    cr_assert_eq(aw_main_opts(&o, grace_overrun, NULL), 0);
    assert_no_child();
}

/* aw_process_close called by a cancelled task: no grace, SIGKILL. */
static int close_cancelled(void *arg) {
    (void)arg;
    aw_process_t p;
    cr_assert_eq(aw_process_spawn(&p, SLEEP, &PIPES), 0);
    int rc = 0;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        rc = aw_process_close(&p);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert(p.reaped);
    cr_assert_eq(p.in.fd, -1);
    cr_assert_eq(p.out.fd, -1);
    return aw_status();
}

Test(process, close_in_a_cancelled_task_kills_at_once_and_reaps) {
    int fds = aw_test_fds();
    aw_test_run(close_cancelled, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* ---- with the rest: exit stacks, shutdown, signals ---- */

/* M5, B2: processes entered into an exit stack in a loop, the fourth
 * spawn failing: the three before it are terminated and reaped once,
 * their pipes closed, and the spawn's error is the stack's. */
static pid_t xs_pids[5];
static int xs_spawns(void *arg) {
    (void)arg;
    int fds = aw_test_fds();
    const char *nope[] = {"/nonexistent/prog", NULL};
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 5; i++) {
            aw_process_t *p;
            if (aw_exitstack_enter(st, aw_process(i == 3 ? nope : CAT, &PIPES), (void **)&p) < 0)
                aw_leave();
            xs_pids[i] = p->pid;
            cr_assert_eq(aw_stream_write(&p->in, "x\n", 2), 0);
        }
    }
    cr_assert_eq(aw_status(), -ENOENT, "%s", msg_now());
    cr_assert(msg_has("/nonexistent/prog"), "%s", msg_now());
    aw_err_clear();
    for (int i = 0; i < 3; i++)
        cr_assert(!is_child(xs_pids[i]), "process %d is still a child", i);
    cr_assert_eq(aw_test_fds(), fds);
    return 0;
}

Test(process, M5_an_exit_stack_of_processes_failing_midway_ends_the_ones_started) {
    aw_test_run(xs_spawns, NULL, 0);
    assert_no_child();
}

/* L1: aw_main returning while root-group tasks hold processes (which
 * ignore SIGTERM): the tasks' blocks exit, the processes are killed
 * after their kill grace and reaped, within the shutdown grace. */
static int holds_a_process(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; exec sleep 100", NULL};
    aw_process_opts_t o = {.kill_grace = AW_MS(20)};
    aw_with (aw_process_t *p, aw_process(argv, &o))
        aw_process_wait(p);
    return aw_status();
}

static int leaves_processes(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(aw_spawn(NULL, holds_a_process, NULL, NULL), 0);
    aw_sleep(AW_MS(10));
    return 0;
}

Test(process, L1_processes_of_tasks_alive_at_shutdown_are_ended_and_reaped) {
    int fds = aw_test_fds();
    cr_assert_eq(aw_main(leaves_processes, NULL), 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* SIGTERM to the program while its main task waits for a child
 * (cancel_on_signals, asyncio.run's Ctrl-C): the main task is
 * cancelled, the process block terminates and reaps the child, and
 * aw_main returns -ECANCELED. */
static pid_t sig_kid;
static int waits_for_child(void *arg) {
    (void)arg;
    aw_with (aw_process_t *p, aw_process(SLEEP, &PIPES)) {
        sig_kid = p->pid;
        kill(getpid(), SIGTERM);
        cr_assert_eq(aw_process_wait(p), -ECANCELED);
    }
    return aw_status();
}

Test(process, a_sigterm_while_waiting_for_a_child_cancels_and_reaps_it) {
    int fds = aw_test_fds();
    aw_loop_opts_t o = {.cancel_on_signals = true};
    cr_assert_eq(aw_main_opts(&o, waits_for_child, NULL), -ECANCELED);
    cr_assert_gt(sig_kid, 0);
    cr_assert(!is_child(sig_kid), "the child was left");
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* Header: the child starts with an empty signal mask and SIGPIPE at its
 * default, whatever the loop's thread blocks (an aw_signals block) or
 * the program ignores: a signal the parent takes through its signalfd
 * still ends the child, and the child's mask and SIGPIPE say so. */
#include <awith/signal.h>
static int clean_signal_state(void *arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    const char *argv[] = {"/bin/sh", "-c",
                          "grep -E '^Sig(Blk|Ign)' /proc/self/status; echo ready; exec sleep 100",
                          NULL};
    aw_process_opts_t o = {.out = AW_PROCESS_PIPE};
    aw_process_t st = AW_PROCESS_INIT(argv, &o);
    aw_with (aw_signals_t *s, aw_signals(&set))
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        char line[128];
        unsigned long long blk = 1, ign_mask = 0;
        for (int i = 0; i < 3; i++) {
            ssize_t n = aw_stream_read_line(&p->out, line, sizeof line);
            cr_assert_gt(n, 0, "%s", msg_now());
            sscanf(line, "SigBlk: %llx", &blk);
            sscanf(line, "SigIgn: %llx", &ign_mask);
        }
        cr_assert_eq(blk, 0, "the child's mask is not empty: %llx", blk);
        cr_assert_eq(ign_mask & (1ULL << (SIGPIPE - 1)), 0, "SIGPIPE still ignored in the child");
        cr_assert_eq(aw_process_signal(p, SIGUSR1), 0);
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert_eq(p->term_signal, SIGUSR1, "blocked in the child?");
    }
    sigaction(SIGPIPE, &old, NULL);
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    return 0;
}

Test(process, a_child_starts_with_no_blocked_signal_and_sigpipe_at_its_default) {
    aw_test_run(clean_signal_state, NULL, 0);
    assert_no_child();
}

/* ---- the cancel-every-point harness ---- */

static int cat_round_trip(void *arg) {
    (void)arg;
    aw_with (aw_process_t *p, aw_process(CAT, &PIPES)) {
        if (aw_stream_write(&p->in, "ping\n", 5) < 0)
            aw_leave();
        char line[16];
        if (aw_stream_read_line(&p->out, line, sizeof line) < 0)
            aw_leave();
        if (aw_stream_shutdown(&p->in) < 0 || aw_stream_read(&p->out, line, sizeof line) < 0)
            aw_leave();
        aw_process_wait(p);
    }
    return aw_status();
}

Test(process, harness_cancel_at_every_point_leaves_no_fd_and_no_zombie) {
    aw_testing_t h = {.name = "process", .fn = cat_round_trip};
    aw_testing_report_t r;
    cr_assert_eq(aw_testing_run(&h, &r), 0);
    cr_assert_gt(r.points, 2);
    cr_assert_gt(r.cancels, 0);
    assert_no_child();
}

/* M9: a process spawned and never closed is reported at loop close with
 * where it was spawned, and aw_main fails with -EBUSY; it is left
 * running (a report is not a kill). A closed one is not reported. */
#include "../capture.h"
static aw_process_t m9_leaked;
static int m9_leave_running(void *arg) {
    const char *argv[] = {"/bin/sleep", "30", NULL};
    cr_assert_eq(aw_process_spawn(&m9_leaked, argv, NULL), 0);
    aw_process_t done;
    const char *t[] = {"/bin/true", NULL};
    cr_assert_eq(aw_process_spawn(&done, t, NULL), 0);
    cr_assert_eq(aw_process_close(&done), 0);
    aw_with (aw_process(t, NULL)) { }  /* the manager closes its own */
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(process, M9_a_process_never_closed_is_reported_at_loop_close) {
    char err[2048];
    cr_assert_eq(aw_test_main_stderr(m9_leave_running, NULL, err, sizeof err), -EBUSY);
    char want[64];
    snprintf(want, sizeof want, "process 'sleep (pid %d)'", (int)m9_leaked.pid);
    cr_assert(strstr(err, want), "stderr: %s", err);
    cr_assert_null(strstr(err, "'true"), "a closed one is reported: %s", err);
    cr_assert(is_child(m9_leaked.pid), "the report killed it");
    kill(m9_leaked.pid, SIGKILL);
    waitpid(m9_leaked.pid, NULL, 0);
    if (m9_leaked.pidfd >= 0)
        close(m9_leaked.pidfd);
    assert_no_child();
}

/* ---- ports of Trio's test_subprocess.py and CPython's
 * test_asyncio/test_subprocess.py: what the peer asserts, in error
 * codes. Where awith decides otherwise by its header, the port asserts
 * awith's documented rule and says which line decides. ---- */

/* trio test_basic: exit 0 and exit 1 are read back after the block. */
static int trio_basic_fn(void *arg) {
    (void)arg;
    const char *t[] = {"/bin/true", NULL}, *f[] = {"/bin/false", NULL};
    aw_process_t st = AW_PROCESS_INIT(t, NULL);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st))
        cr_assert_eq(aw_process_wait(p), 0);
    cr_assert_eq(aw_status(), 0);
    cr_assert(st.reaped);
    cr_assert_eq(st.pidfd, -1, "the pidfd is released once reaped (trio: _pidfd is None)");
    cr_assert_eq(st.exit_code, 0);
    st = (aw_process_t)AW_PROCESS_INIT(f, NULL);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st))
        cr_assert_eq(aw_process_wait(p), 0);
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(st.exit_code, 1);
    return 0;
}

Test(process, trio_basic) {
    int fds = aw_test_fds();
    aw_test_run(trio_basic_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_multi_wait: three waits cancelled together leave the process
 * running and waitable; three waits again, a kill, and all three end. */
static int mw_rc[3];
static int mw_wait(void *arg) {
    aw_process_t *p = arg;
    int i = 0;
    while (mw_rc[i] != 1)
        i++;
    mw_rc[i] = 2;
    mw_rc[i] = aw_process_wait(p);
    if (mw_rc[i] == -ECANCELED)
        aw_err_clear();
    return 0;
}

static int trio_multi_wait_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    aw_with (aw_process_t *p, aw_process(argv, NULL)) {
        for (int i = 0; i < 3; i++)
            mw_rc[i] = 1;
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < 3; i++)
                cr_assert_eq(aw_spawn(g, mw_wait, p, NULL), 0);
            aw_sleep(AW_MS(5));
            aw_group_cancel(g);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        for (int i = 0; i < 3; i++)
            cr_assert_eq(mw_rc[i], -ECANCELED, "waiter %d: %d", i, mw_rc[i]);
        cr_assert(!p->reaped, "a cancelled wait leaves it running");
        for (int i = 0; i < 3; i++)
            mw_rc[i] = 1;
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < 3; i++)
                cr_assert_eq(aw_spawn(g, mw_wait, p, NULL), 0);
            aw_sleep(AW_MS(5));
            cr_assert_eq(aw_process_signal(p, SIGKILL), 0);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        for (int i = 0; i < 3; i++)
            cr_assert_eq(mw_rc[i], 0, "waiter %d: %d", i, mw_rc[i]);
        cr_assert_eq(p->term_signal, SIGKILL);
    }
    return aw_status();
}

Test(process, trio_multi_wait) {
    int fds = aw_test_fds();
    aw_test_run(trio_multi_wait_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_async_with_basics: after the block the process has ended
 * and its three pipes are closed: a write or read on them fails (Trio's
 * ClosedResourceError: -EBADF). */
static int trio_async_with_basics_fn(void *arg) {
    (void)arg;
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_PIPE};
    aw_process_t st = AW_PROCESS_INIT(CAT, &o);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert(st.reaped);
    cr_assert_eq(st.exit_code, 0);
    char b[4];
    cr_assert_eq(aw_stream_write(&st.in, "x", 1), -EBADF);
    aw_err_clear();
    cr_assert_eq(aw_stream_read(&st.out, b, sizeof b), -EBADF);
    aw_err_clear();
    cr_assert_eq(aw_stream_read(&st.err, b, sizeof b), -EBADF);
    aw_err_clear();
    return 0;
}

Test(process, trio_async_with_basics) {
    int fds = aw_test_fds();
    aw_test_run(trio_async_with_basics_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_kill_when_context_cancelled: a cancel in the block ends the
 * process and the scope catches its cancel. Trio's deprecated
 * `async with process` killed with SIGKILL; awith's header says SIGTERM
 * first, then the kill grace (as Trio's run_process does), so the signal
 * asserted is SIGTERM. */
static int trio_kill_when_cancelled_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sleep", "10", NULL};
    aw_process_t st = AW_PROCESS_INIT(argv, NULL);
    int rc = 1;
    aw_with (aw_scope_t *s, aw_move_on_after(AW_SEC(100)))
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        cr_assert(!p->reaped);
        aw_scope_cancel(s);
        rc = aw_sleep(AW_SEC(1000));
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert(st.reaped);
    cr_assert_eq(st.term_signal, SIGTERM);
    return 0;
}

Test(process, trio_kill_when_context_cancelled) {
    aw_test_run(trio_kill_when_cancelled_fn, NULL, 0);
    assert_no_child();
}

/* trio test_pipes: stdin fed, stdout and stderr drained by three tasks
 * at once; stdout gets the input, stderr the same bytes reversed. */
static const char PIPES_MSG[] = "the quick brown fox jumps over the lazy dog";
static int feed_input(void *arg) {
    aw_process_t *p = arg;
    if (aw_stream_write(&p->in, PIPES_MSG, strlen(PIPES_MSG)) < 0)
        return aw_status();
    return aw_stream_shutdown(&p->in);
}

typedef struct {
    aw_stream_t *s;
    char seen[128];
    size_t n;
} drain_t;

static int check_output(void *arg) {
    drain_t *d = arg;
    ssize_t r;
    while ((r = aw_stream_read(d->s, d->seen + d->n, sizeof d->seen - 1 - d->n)) > 0)
        d->n += (size_t)r;
    return r < 0 ? (int)r : 0;
}

static const char *REVERSER[] = {"/bin/sh", "-c",
                                 "d=$(cat); printf %s \"$d\"; printf %s \"$d\" | rev >&2", NULL};

static int trio_pipes_fn(void *arg) {
    (void)arg;
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_PIPE};
    drain_t out = {0}, err = {0};
    aw_with (aw_process_t *p, aw_process(REVERSER, &o)) {
        out.s = &p->out;
        err.s = &p->err;
        aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(30)))
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, feed_input, p, NULL);
            aw_spawn(g, check_output, &out, NULL);
            aw_spawn(g, check_output, &err, NULL);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert_eq(p->exit_code, 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_str_eq(out.seen, PIPES_MSG);
    cr_assert_str_eq(err.seen, "god yzal eht revo spmuj xof nworb kciuq eht");
    return 0;
}

Test(process, trio_pipes) {
    int fds = aw_test_fds();
    aw_test_run(trio_pipes_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_interactive: request/response through a child, a request
 * sent in two writes, two requests in one write, a zero-length answer,
 * and a read cut by move_on_after before any byte arrived: the stream
 * stays whole (nothing consumed) and the next read gets the answer. */
static int expect_digits(aw_stream_t *s, size_t count, char digit) {
    char buf[4096];
    while (count > 0) {
        ssize_t r = aw_stream_read(s, buf, count < sizeof buf ? count : sizeof buf);
        if (r <= 0)
            return r < 0 ? (int)r : -EPIPE;
        for (ssize_t i = 0; i < r; i++)
            cr_assert_eq(buf[i], digit, "got %c, want %c", buf[i], digit);
        count -= (size_t)r;
    }
    ssize_t r = aw_stream_read_exactly(s, buf, 1);
    if (r < 0)
        return (int)r;
    cr_assert_eq(buf[0], '\n');
    return 0;
}

typedef struct {
    aw_stream_t *s;
    size_t count;
    char digit;
} expect_t;

static int expect_task(void *arg) {
    expect_t *e = arg;
    return expect_digits(e->s, e->count, e->digit);
}

static int expect(aw_process_t *p, int idx, size_t request) {
    expect_t o = {&p->out, request, (char)('0' + idx * 2)};
    expect_t e = {&p->err, request * 2, (char)('0' + idx * 2 + 1)};
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, expect_task, &o, NULL);
        aw_spawn(g, expect_task, &e, NULL);
    }
    return aw_status();
}

static int trio_interactive_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c",
                          "i=0; while read n; do "
                          "head -c $n /dev/zero | tr '\\0' $((i*2)); echo; "
                          "head -c $((n*2)) /dev/zero | tr '\\0' $((i*2+1)) >&2; echo >&2; "
                          "i=$((i+1)); done",
                          NULL};
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_PIPE};
    aw_process_t st = AW_PROCESS_INIT(argv, &o);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st))
    aw_with (aw_scope_t *five, aw_fail_after(AW_SEC(5))) {
        cr_assert_eq(aw_stream_write(&p->in, "12", 2), 0);
        aw_sleep(AW_MS(100));
        cr_assert_eq(aw_stream_write(&p->in, "345\n", 4), 0);
        cr_assert_eq(expect(p, 0, 12345), 0, "%s", msg_now());
        cr_assert_eq(aw_stream_write(&p->in, "100\n200\n", 8), 0);
        cr_assert_eq(expect(p, 1, 100), 0, "%s", msg_now());
        cr_assert_eq(expect(p, 2, 200), 0, "%s", msg_now());
        cr_assert_eq(aw_stream_write(&p->in, "0\n", 2), 0);
        cr_assert_eq(expect(p, 3, 0), 0, "%s", msg_now());
        cr_assert_eq(aw_stream_write(&p->in, "999", 3), 0);
        bool caught = false;
        aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(100))) {
            expect(p, 4, 0);
            caught = aw_scope_expired(s);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert(caught, "the read was cut by the scope");
        cr_assert(!aw_stream_broken(&p->out), "a read cut before any byte broke stdout");
        cr_assert(!aw_stream_broken(&p->err));
        cr_assert_eq(aw_stream_write(&p->in, "\n", 1), 0);
        cr_assert_eq(expect(p, 4, 999), 0, "%s", msg_now());
        cr_assert_eq(aw_stream_shutdown(&p->in), 0);
        char b[1];
        cr_assert_eq(aw_stream_read(&p->out, b, 1), 0);
        cr_assert_eq(aw_stream_read(&p->err, b, 1), 0);
        cr_assert_eq(aw_process_wait(p), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(st.exit_code, 0);
    return 0;
}

Test(process, trio_interactive) {
    int fds = aw_test_fds();
    aw_test_run(trio_interactive_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_run: 256 KiB of random bytes through cat, written by one
 * task while another reads (a pipe holds 64 KiB: one task alone would
 * deadlock); everything comes back; nothing on stderr. */
typedef struct {
    aw_process_t *p;
    unsigned char *data;
    size_t n;
} feed_t;

static int feed_all(void *arg) {
    feed_t *f = arg;
    if (aw_stream_write(&f->p->in, f->data, f->n) < 0)
        return aw_status();
    return aw_stream_shutdown(&f->p->in);
}

static int trio_run_fn(void *arg) {
    (void)arg;
    enum { N = 1 << 18 };
    unsigned char *data = malloc(N), *got = malloc(N + 1);
    for (size_t i = 0; i < N; i++)
        data[i] = (unsigned char)random();
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_PIPE};
    aw_process_t st = AW_PROCESS_INIT(CAT, &o);
    size_t n = 0, nerr = 0;
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st))
    aw_with (aw_group_t *g, aw_group()) {
        feed_t f = {p, data, N};
        aw_spawn(g, feed_all, &f, NULL);
        ssize_t r;
        while ((r = aw_stream_read(&p->out, got + n, N + 1 - n)) > 0)
            n += (size_t)r;
        cr_assert_eq(r, 0, "%s", msg_now());
        char e[16];
        while ((r = aw_stream_read(&p->err, e, sizeof e)) > 0)
            nerr += (size_t)r;
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(st.exit_code, 0);
    cr_assert_eq(n, N);
    cr_assert_eq(memcmp(got, data, N), 0);
    cr_assert_eq(nerr, 0);
    free(data);
    free(got);
    return 0;
}

Test(process, trio_run) {
    int fds = aw_test_fds();
    aw_test_run(trio_run_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_run_with_broken_pipe: a child that closes its stdin at
 * once, fed 128 KiB: the write fails with -EPIPE (never SIGPIPE), the
 * child's status is 0; run_process ignores the broken pipe, so here the
 * caller clears it and the block ends cleanly. */
static int trio_broken_pipe_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "exec 0<&-; exit 0", NULL};
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE};
    aw_process_t st = AW_PROCESS_INIT(argv, &o);
    static char big[131072];
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        int rc = aw_stream_write(&p->in, big, sizeof big);
        cr_assert_eq(rc, -EPIPE, "%d: %s", rc, msg_now());
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert(st.reaped);
    cr_assert_eq(st.exit_code, 0);
    cr_assert_eq(st.out.fd, -1);
    cr_assert_eq(st.err.fd, -1);
    return 0;
}

Test(process, trio_run_with_broken_pipe) {
    int fds = aw_test_fds();
    aw_test_run(trio_broken_pipe_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_stderr_stdout: stderr=STDOUT with stdout a pipe: one stream
 * carries both, stderr has no pipe of its own; and stderr=STDOUT with
 * stdout inherited: neither is a pipe. (Trio's third case, stdout to a
 * caller's fd, has no awith form: opts take AW_PROCESS_* only.) */
static int trio_stderr_stdout_fn(void *arg) {
    (void)arg;
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_STDOUT};
    aw_process_t st = AW_PROCESS_INIT(REVERSER, &o);
    char all[64] = {0};
    size_t n = 0;
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        cr_assert_geq(p->out.fd, 0);
        cr_assert_eq(p->err.fd, -1);
        cr_assert_eq(aw_stream_write(&p->in, "1234", 4), 0);
        cr_assert_eq(aw_stream_shutdown(&p->in), 0);
        ssize_t r;
        while ((r = aw_stream_read(&p->out, all + n, 16 < sizeof all - 1 - n ? 16 : sizeof all - 1 - n)) > 0)
            n += (size_t)r;
        cr_assert_eq(r, 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_str_eq(all, "12344321");
    cr_assert_eq(st.exit_code, 0);
    aw_process_opts_t o2 = {.in = AW_PROCESS_PIPE, .err = AW_PROCESS_STDOUT};
    st = (aw_process_t)AW_PROCESS_INIT(CAT, &o2);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        cr_assert_eq(p->out.fd, -1);
        cr_assert_eq(p->err.fd, -1);
        cr_assert_eq(aw_stream_shutdown(&p->in), 0);
        cr_assert_eq(aw_process_wait(p), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(st.exit_code, 0);
    return 0;
}

Test(process, trio_stderr_stdout) {
    int fds = aw_test_fds();
    aw_test_run(trio_stderr_stdout_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_signals: kill, terminate and an arbitrary signal each end a
 * sleeping child, well within a second; the status names the signal. */
static int trio_signals_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sleep", "3600", NULL};
    int sigs[] = {SIGKILL, SIGTERM, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        aw_process_t st = AW_PROCESS_INIT(argv, NULL);
        bool expired = true;
        aw_with (aw_scope_t *s, aw_move_on_after(AW_SEC(1))) {
            aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
                cr_assert_eq(aw_process_signal(p, sigs[i]), 0);
                cr_assert_eq(aw_process_wait(p), 0);
            }
            expired = aw_scope_cancelled(s);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert(!expired);
        cr_assert_eq(st.exit_code, -1);
        cr_assert_eq(st.term_signal, sigs[i]);
    }
    return 0;
}

Test(process, trio_signals) {
    aw_test_run(trio_signals_fn, NULL, 0);
    assert_no_child();
}

/* trio test_wait_reapable_fails: SIGCHLD ignored, a waiter task blocked
 * on a sleeping child, the child killed: the wait ends (within a
 * second), not hangs. Trio then reports returncode 0 ("unknowable");
 * awith's header says the wait fails with -ECHILD instead, naming why. */
static int wr_rc;
static int wr_wait(void *arg) {
    wr_rc = aw_process_wait(arg);
    if (wr_rc == -ECHILD && msg_has("reaped elsewhere"))
        wr_rc = -ECHILD * 10; /* the message says why */
    aw_err_clear();
    return 0;
}

static int trio_wait_reapable_fails_fn(void *arg) {
    (void)arg;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGCHLD, &ign, &old);
    const char *argv[] = {"/bin/sleep", "3600", NULL};
    wr_rc = 1;
    aw_with (aw_process_t *p, aw_process(argv, NULL)) {
        aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(1)))
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, wr_wait, p, NULL);
            aw_sleep(AW_MS(5));
            cr_assert_eq(aw_process_signal(p, SIGKILL), 0);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(wr_rc, -ECHILD * 10, "%d", wr_rc);
        cr_assert(p->reaped);
    }
    sigaction(SIGCHLD, &old, NULL);
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    return 0;
}

Test(process, trio_wait_reapable_fails) {
    int fds = aw_test_fds();
    aw_test_run(trio_wait_reapable_fails_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_for_leaking_fds: a run that succeeds, one that exits 1 and
 * one whose program cannot be executed (/dev/fd/0: -EACCES) leave the
 * fd table as it was. */
static int trio_for_leaking_fds_fn(void *arg) {
    (void)arg;
    int fds = aw_test_fds();
    const char *t[] = {"/bin/true", NULL}, *f[] = {"/bin/false", NULL}, *x[] = {"/dev/fd/0", NULL};
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_PIPE};
    aw_with (aw_process_t *p, aw_process(t, &o))
        aw_process_wait(p);
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(aw_test_fds(), fds);
    aw_with (aw_process_t *p, aw_process(f, &o))
        aw_process_wait(p);
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(aw_test_fds(), fds);
    aw_with (aw_process_t *p, aw_process(x, &o))
        cr_assert_fail("entered");
    cr_assert_eq(aw_status(), -EACCES, "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(aw_test_fds(), fds);
    return 0;
}

Test(process, trio_for_leaking_fds) {
    aw_test_run(trio_for_leaking_fds_fn, NULL, 0);
    assert_no_child();
}

/* trio test_subprocess_pidfd_unnotified (#2209): a task waits; the body
 * terminates the child, waits for its end outside the loop, and reaps
 * it without giving the waiter a turn (closing the pidfd the waiter
 * watches): the waiter must still be woken, not left for ever. */
static int pu_rc;
static int pu_wait(void *arg) {
    pu_rc = aw_process_wait(arg);
    return 0;
}

static int trio_pidfd_unnotified_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sleep", "9999", NULL};
    aw_process_t p;
    cr_assert_eq(aw_process_spawn(&p, argv, NULL), 0);
    pu_rc = 1;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, pu_wait, &p, NULL);
        aw_sleep(AW_MS(5));
        cr_assert_eq(aw_process_signal(&p, SIGTERM), 0);
        siginfo_t si;
        waitid(P_PID, (id_t)p.pid, &si, WEXITED | WNOWAIT); /* ended, not reaped */
        cr_assert_eq(aw_process_close(&p), 0, "%s", msg_now()); /* reaps, no suspension */
        cr_assert(p.reaped);
        aw_with (aw_scope_t *s, aw_move_on_after(AW_SEC(5)))
            while (pu_rc == 1)
                aw_sleep(AW_MS(1));
        cr_assert_eq(pu_rc, 0, "the waiter was not woken after the reap (%d)", pu_rc);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(p.term_signal, SIGTERM);
    return 0;
}

Test(process, trio_subprocess_pidfd_unnotified) {
    int fds = aw_test_fds();
    aw_test_run(trio_pidfd_unnotified_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* trio test_wait_reapable_fails, the other ways out: with SIGCHLD
 * ignored the kernel takes every status, yet a process that is closed,
 * or left by its block, is released as any other: close returns 0 (its
 * header: "Returns 0, or -ECANCELED"), a clean block and a cancelled one
 * end without an error of the manager's (Trio and Python's Popen treat
 * the lost status as 0); only an explicit wait says -ECHILD. */
static int trio_wait_reapable_close_fn(void *arg) {
    (void)arg;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGCHLD, &ign, &old);
    const char *argv[] = {"/bin/sleep", "3600", NULL};
    aw_process_t p;
    cr_assert_eq(aw_process_spawn(&p, argv, NULL), 0);
    int rc = aw_process_close(&p);
    cr_assert_eq(rc, 0, "close: %d %s", rc, msg_now());
    cr_assert_eq(aw_status(), 0, "close left an error pending: %s", msg_now());
    cr_assert(p.reaped);
    const char *quick[] = {"/bin/sh", "-c", "sleep 0.02", NULL};
    aw_with (aw_process_t *q, aw_process(quick, NULL)) {
    }
    cr_assert_eq(aw_status(), 0, "a clean block: %s", msg_now());
    aw_err_clear();
    aw_with (aw_scope_t *s, aw_cancel_scope())
    aw_with (aw_process_t *q, aw_process(argv, NULL)) {
        aw_scope_cancel(s);
        aw_sleep(AW_SEC(10));
    }
    cr_assert_eq(aw_status(), 0, "a cancelled block: %s", msg_now());
    aw_err_clear();
    sigaction(SIGCHLD, &old, NULL);
    return 0;
}

Test(process, trio_wait_reapable_fails_close_and_exit_release_all_the_same) {
    int fds = aw_test_fds();
    aw_test_run(trio_wait_reapable_close_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* cpython test_stdin_stdout / test_communicate: data through cat,
 * written, stdin closed, stdout read to its end, exit code 0. */
static int cpython_stdin_stdout_fn(void *arg) {
    (void)arg;
    aw_process_t st = AW_PROCESS_INIT(CAT, &PIPES);
    char out[32] = {0};
    size_t n = 0;
    aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(60)))
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        cr_assert_eq(aw_stream_write(&p->in, "some data", 9), 0);
        cr_assert_eq(aw_stream_flush(&p->in), 0);
        cr_assert_eq(aw_stream_shutdown(&p->in), 0);
        ssize_t r;
        while ((r = aw_stream_read(&p->out, out + n, sizeof out - 1 - n)) > 0)
            n += (size_t)r;
        cr_assert_eq(aw_process_wait(p), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(st.exit_code, 0);
    cr_assert_str_eq(out, "some data");
    return 0;
}

Test(process, cpython_stdin_stdout) {
    int fds = aw_test_fds();
    aw_test_run(cpython_stdin_stdout_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* cpython test_shell: sh -c 'exit 7' ends with 7. */
static int cpython_shell_fn(void *arg) {
    (void)arg;
    aw_process_t st;
    cr_assert_eq(run_sh("exit 7", &st, NULL), 0);
    cr_assert_eq(st.exit_code, 7);
    return 0;
}

Test(process, cpython_shell) {
    aw_test_run(cpython_shell_fn, NULL, 0);
    assert_no_child();
}

/* cpython test_kill, test_terminate: the status is the signal. */
static int cpython_kill_terminate_fn(void *arg) {
    (void)arg;
    int sigs[] = {SIGKILL, SIGTERM};
    for (int i = 0; i < 2; i++) {
        aw_process_t p;
        cr_assert_eq(aw_process_spawn(&p, SLEEP, NULL), 0);
        cr_assert_eq(aw_process_signal(&p, sigs[i]), 0);
        cr_assert_eq(aw_process_wait(&p), 0);
        cr_assert_eq(p.term_signal, sigs[i]);
        cr_assert_eq(p.exit_code, -1);
        cr_assert_eq(aw_process_close(&p), 0);
    }
    return 0;
}

Test(process, cpython_kill_and_terminate) {
    int fds = aw_test_fds();
    aw_test_run(cpython_kill_terminate_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* cpython test_send_signal (bpo-31034): a child that said it is
 * sleeping gets SIGHUP and dies of it. */
static int cpython_send_signal_fn(void *arg) {
    (void)arg;
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    sigaction(SIGHUP, &dfl, &old);
    const char *argv[] = {"/bin/sh", "-c", "echo sleeping; exec sleep 3600", NULL};
    aw_process_opts_t o = {.out = AW_PROCESS_PIPE};
    aw_process_t st = AW_PROCESS_INIT(argv, &o);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        char line[16];
        cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 9);
        cr_assert_eq(memcmp(line, "sleeping\n", 9), 0);
        cr_assert_eq(aw_process_signal(p, SIGHUP), 0);
        cr_assert_eq(aw_process_wait(p), 0);
    }
    sigaction(SIGHUP, &old, NULL);
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(st.term_signal, SIGHUP);
    return 0;
}

Test(process, cpython_send_signal) {
    aw_test_run(cpython_send_signal_fn, NULL, 0);
    assert_no_child();
}

/* cpython test_stdin_broken_pipe: the child ends before its stdin is
 * fed; a write larger than the pipe fails with -EPIPE (BrokenPipeError),
 * and the process is still waited for. */
static int cpython_stdin_broken_pipe_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/true", NULL};
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE};
    size_t big = 4 << 20; /* more than any pipe's buffer */
    char *data = calloc(1, big);
    aw_with (aw_process_t *p, aw_process(argv, &o)) {
        aw_sleep(AW_MS(50));
        cr_assert_eq(aw_stream_write(&p->in, data, big), -EPIPE, "%s", msg_now());
        aw_err_clear();
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert_eq(p->exit_code, 0);
    }
    free(data);
    return aw_status();
}

Test(process, cpython_stdin_broken_pipe) {
    int fds = aw_test_fds();
    aw_test_run(cpython_stdin_broken_pipe_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* cpython test_empty_input / test_devnull_input / test_devnull_output /
 * test_devnull_error: a stdin closed at once and /dev/null as stdin both
 * read as empty; stdout or stderr to /dev/null has no pipe. */
static int cpython_devnull_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "wc -c | tr -d ' '", NULL};
    int ins[] = {AW_PROCESS_PIPE, AW_PROCESS_DEVNULL};
    for (int i = 0; i < 2; i++) {
        aw_process_opts_t o = {.in = ins[i], .out = AW_PROCESS_PIPE, .err = AW_PROCESS_PIPE};
        char line[16] = {0};
        aw_with (aw_process_t *p, aw_process(argv, &o)) {
            if (i == 0)
                cr_assert_eq(aw_stream_shutdown(&p->in), 0);
            else
                cr_assert_eq(p->in.fd, -1);
            cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 2);
            cr_assert_eq(aw_process_wait(p), 0);
            cr_assert_eq(p->exit_code, 0);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_str_eq(line, "0\n");
    }
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_DEVNULL, .err = AW_PROCESS_PIPE};
    aw_with (aw_process_t *p, aw_process(argv, &o)) {
        cr_assert_eq(p->out.fd, -1);
        cr_assert_eq(aw_stream_write(&p->in, "abc", 3), 0);
        cr_assert_eq(aw_stream_shutdown(&p->in), 0);
        char b[4];
        cr_assert_eq(aw_stream_read(&p->err, b, sizeof b), 0);
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert_eq(p->exit_code, 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    aw_process_opts_t o2 = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_DEVNULL};
    aw_with (aw_process_t *p, aw_process(argv, &o2)) {
        cr_assert_eq(p->err.fd, -1);
        cr_assert_eq(aw_stream_write(&p->in, "abc", 3), 0);
        cr_assert_eq(aw_stream_shutdown(&p->in), 0);
        char line[8] = {0};
        cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 2);
        cr_assert_str_eq(line, "3\n");
    }
    return aw_status();
}

Test(process, cpython_empty_and_devnull_input_output_error) {
    int fds = aw_test_fds();
    aw_test_run(cpython_devnull_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* cpython test_cancel_process_wait (issue #23140): a wait in a task,
 * cancelled at once; then a kill and a wait that returns. */
static int cw_rc;
static int cw_wait(void *arg) {
    cw_rc = aw_process_wait(arg);
    aw_err_clear();
    return 0;
}

static int cpython_cancel_process_wait_fn(void *arg) {
    (void)arg;
    aw_process_t p;
    cr_assert_eq(aw_process_spawn(&p, SLEEP, NULL), 0);
    cw_rc = 1;
    aw_with (aw_group_t *g, aw_group()) {
        aw_task_t *t;
        cr_assert_eq(aw_spawn(g, cw_wait, &p, &t), 0);
        aw_yield();
        aw_task_cancel(t);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(cw_rc, -ECANCELED);
    cr_assert(!p.reaped);
    cr_assert_eq(aw_process_signal(&p, SIGKILL), 0);
    cr_assert_eq(aw_process_wait(&p), 0);
    cr_assert_eq(p.term_signal, SIGKILL);
    cr_assert_eq(aw_process_close(&p), 0);
    return 0;
}

Test(process, cpython_cancel_process_wait) {
    int fds = aw_test_fds();
    aw_test_run(cpython_cancel_process_wait_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* cpython test_cancel_make_subprocess_transport_exec: a spawn in a task
 * already cancelled starts nothing and leaves nothing (decision 7). */
static int cpython_cancel_spawn_fn(void *arg) {
    (void)arg;
    int fds = aw_test_fds();
    bool ran = false;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_with (aw_process_t *p, aw_process(SLEEP, &PIPES))
            ran = true;
    }
    cr_assert(!ran);
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(aw_test_fds(), fds);
    return 0;
}

Test(process, cpython_cancel_make_subprocess_transport_exec) {
    aw_test_run(cpython_cancel_spawn_fn, NULL, 0);
    assert_no_child();
}

/* cpython test_close_kill_running / test_close_dont_kill_finished: close
 * ends a running child; a child that has ended but is not reaped yet is
 * not signalled by close (its status stays its own: SIGKILL from the
 * test, not close's SIGTERM; exit code 5 stays 5). */
static int cpython_close_fn(void *arg) {
    (void)arg;
    aw_process_t p;
    cr_assert_eq(aw_process_spawn(&p, SLEEP, NULL), 0);
    cr_assert_eq(aw_process_close(&p), 0);
    cr_assert(p.reaped);
    cr_assert_eq(p.term_signal, SIGTERM);
    cr_assert_eq(aw_process_spawn(&p, SLEEP, NULL), 0);
    kill(p.pid, SIGKILL);
    siginfo_t si;
    waitid(P_PID, (id_t)p.pid, &si, WEXITED | WNOWAIT);
    cr_assert_eq(aw_process_close(&p), 0);
    cr_assert_eq(p.term_signal, SIGKILL);
    const char *argv[] = {"/bin/sh", "-c", "exit 5", NULL};
    cr_assert_eq(aw_process_spawn(&p, argv, NULL), 0);
    waitid(P_PID, (id_t)p.pid, &si, WEXITED | WNOWAIT);
    cr_assert_eq(aw_process_close(&p), 0);
    cr_assert_eq(p.exit_code, 5);
    cr_assert_eq(p.term_signal, 0);
    return 0;
}

Test(process, cpython_close_kill_running_and_dont_kill_finished) {
    int fds = aw_test_fds();
    aw_test_run(cpython_close_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* cpython test_read_stdout_after_process_exit: 256 KiB written by a
 * child that exits 1 at once, read slowly in 64 KiB reads: every byte
 * arrives after its writer is gone, then the end, then exit code 1. */
static int cpython_read_after_exit_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "head -c 262144 /dev/zero; exit 1", NULL};
    aw_process_opts_t o = {.out = AW_PROCESS_PIPE};
    aw_process_t st = AW_PROCESS_INIT(argv, &o);
    size_t total = 0;
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
        static char buf[65536];
        ssize_t r;
        while ((r = aw_stream_read(&p->out, buf, sizeof buf)) > 0) {
            total += (size_t)r;
            aw_sleep(AW_MS(10));
        }
        cr_assert_eq(r, 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(total, 262144);
    cr_assert_eq(st.exit_code, 1);
    return 0;
}

Test(process, cpython_read_stdout_after_process_exit) {
    int fds = aw_test_fds();
    aw_test_run(cpython_read_after_exit_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* ---- combinations: readers and writers of the pipes in other tasks
 * when the block is left, a wait under a deadline ---- */

/* trio's run_process in a nursery, cancelled: a task reading stdout and
 * one writing to a stdin nobody reads are suspended when the body fails;
 * the process block's exit closes the pipes under them: both get
 * -EBADF (stream.h: "Closing is always allowed: the suspended operations
 * then fail with -EBADF"), the child is ended and reaped, and the body's
 * error is the one that leaves. */
static int rd_rc, wr_rc2;
static int pipe_reader(void *arg) {
    char b[64];
    rd_rc = (int)aw_stream_read(arg, b, sizeof b);
    aw_err_clear();
    return 0;
}
static int pipe_writer(void *arg) {
    static char big[1 << 20];
    wr_rc2 = aw_stream_write(arg, big, sizeof big);
    aw_err_clear();
    return 0;
}

static int pipes_closed_under_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sleep", "100", NULL};
    aw_process_t st = AW_PROCESS_INIT(argv, &PIPES);
    rd_rc = wr_rc2 = 1;
    aw_with (aw_group_t *g, aw_group()) {
        aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
            aw_spawn(g, pipe_reader, &p->out, NULL);
            aw_spawn(g, pipe_writer, &p->in, NULL);
            aw_sleep(AW_MS(10));
            aw_raise(-EIO, "the body failed");
        }
    }
    cr_assert_eq(aw_status(), -EIO, "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(rd_rc, -EBADF);
    cr_assert_eq(wr_rc2, -EBADF);
    cr_assert(st.reaped);
    cr_assert_eq(st.term_signal, SIGTERM);
    return 0;
}

Test(process, trio_pipes_closed_under_a_reader_and_a_writer_fail_them_with_ebadf) {
    int fds = aw_test_fds();
    aw_test_run(pipes_closed_under_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* A wait under a deadline: -ETIMEDOUT (header), the process still runs
 * and a later wait ends it. */
static int wait_deadline_fn(void *arg) {
    (void)arg;
    aw_process_t p;
    cr_assert_eq(aw_process_spawn(&p, SLEEP, NULL), 0);
    int rc = 1;
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(10)))
        rc = aw_process_wait(&p);
    cr_assert(rc == -ETIMEDOUT || rc == -ECANCELED, "%d", rc);
    cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", msg_now());
    aw_err_clear();
    cr_assert(!p.reaped);
    cr_assert_eq(aw_process_signal(&p, SIGTERM), 0);
    cr_assert_eq(aw_process_wait(&p), 0);
    cr_assert_eq(p.term_signal, SIGTERM);
    cr_assert_eq(aw_process_close(&p), 0);
    return 0;
}

Test(process, G1_a_wait_past_its_deadline_leaves_the_process_waitable) {
    int fds = aw_test_fds();
    aw_test_run(wait_deadline_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* stream.h: a write after shutdown is -EPIPE ("write after shutdown"),
 * and a second shutdown does nothing, as on a socket: a process's stdin
 * is a stream like the others (Trio's send_eof, then a helper that ends
 * the input once more). */
static int stdin_after_shutdown_fn(void *arg) {
    (void)arg;
    aw_with (aw_process_t *p, aw_process(CAT, &PIPES)) {
        cr_assert_eq(aw_stream_write(&p->in, "x\n", 2), 0);
        cr_assert_eq(aw_stream_shutdown(&p->in), 0);
        int rc = aw_stream_shutdown(&p->in);
        cr_assert_eq(rc, 0, "a second shutdown: %d %s", rc, msg_now());
        rc = aw_stream_write(&p->in, "y", 1);
        cr_assert_eq(rc, -EPIPE, "write after shutdown: %d %s", rc, msg_now());
        cr_assert(msg_has("after shutdown"), "%s", msg_now());
        aw_err_clear();
        char line[8];
        cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 2);
        cr_assert_eq(aw_stream_read(&p->out, line, sizeof line), 0, "cat read end of file");
        cr_assert_eq(aw_process_wait(p), 0);
        cr_assert_eq(p->exit_code, 0);
    }
    return aw_status();
}

Test(process, stream_h_stdin_after_shutdown_refuses_writes_with_epipe_as_any_stream) {
    int fds = aw_test_fds();
    aw_test_run(stdin_after_shutdown_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* asyncio's StreamReader.readline cut by a timeout keeps what it read
 * (stream.h: read_until keeps its bytes buffered, never breaks the
 * stream on a cancel): half a line from a child, a read_line cut by
 * move_on_after, the rest of the line, and the whole line comes back. */
static int readline_cut_fn(void *arg) {
    (void)arg;
    aw_with (aw_process_t *p, aw_process(CAT, &PIPES)) {
        cr_assert_eq(aw_stream_write(&p->in, "abc", 3), 0);
        char line[16] = {0};
        ssize_t n = 1;
        aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(30)))
            n = aw_stream_read_line(&p->out, line, sizeof line);
        cr_assert_eq(n, -ECANCELED);
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert(!aw_stream_broken(&p->out));
        cr_assert_eq(aw_stream_write(&p->in, "def\n", 4), 0);
        cr_assert_eq(aw_stream_read_line(&p->out, line, sizeof line), 7, "%s", msg_now());
        cr_assert_eq(memcmp(line, "abcdef\n", 7), 0, "%.7s", line);
    }
    return aw_status();
}

Test(process, cpython_readline_cut_by_a_timeout_keeps_the_half_line) {
    int fds = aw_test_fds();
    aw_test_run(readline_cut_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* M3 with trio's open_process_then_kill: a generator manager that holds
 * a process around its yield. The block's error is pending inside it at
 * the yield, so the process block there takes its error way out (SIGTERM,
 * not the clean wait for the child's own end), and the error leaves the
 * consumer's block once; a clean block lets the child end on its own. */
static const char *gen_argv[] = {"/bin/sleep", "100", NULL};
static aw_process_t gen_st;
static int open_process_gen(aw_gencm_t *g, void *arg) {
    gen_st = (aw_process_t)AW_PROCESS_INIT((const char *const *)arg, NULL);
    aw_with (aw_process_t *p, aw_cm(&aw_process_type, &gen_st))
        aw_gencm_yield(g, p);
    return aw_status();
}

static int gencm_process_fn(void *arg) {
    (void)arg;
    aw_with (aw_process_t *p, aw_gencm(open_process_gen, gen_argv)) {
        cr_assert_gt(p->pid, 0);
        aw_raise(-EIO, "the block failed");
    }
    cr_assert_eq(aw_status(), -EIO, "%s", msg_now());
    aw_err_clear();
    cr_assert(gen_st.reaped);
    cr_assert_eq(gen_st.term_signal, SIGTERM);
    const char *quick[] = {"/bin/sh", "-c", "exit 6", NULL};
    aw_with (aw_process_t *p, aw_gencm(open_process_gen, quick))
        cr_assert_gt(p->pid, 0);
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(gen_st.exit_code, 6);
    return 0;
}

Test(process, M3_a_process_held_at_a_generator_yield_gets_the_block_error) {
    int fds = aw_test_fds();
    aw_test_run(gencm_process_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* process.h: a signal goes through the pidfd "so the pid cannot have
 * been reused", and a process already reaped gives -ESRCH. A child that
 * ended and was reaped by the kernel (SIGCHLD ignored) before its pidfd
 * could be opened has no pidfd and no pid of ours any more: a signal to
 * it must be -ESRCH, not a kill(2) by a pid another process may have
 * taken. (/bin/true loses that race some of the time: the runs that
 * have no pidfd are the ones checked.) */
static int signal_gone_fn(void *arg) {
    (void)arg;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGCHLD, &ign, &old);
    const char *argv[] = {"/bin/true", NULL};
    int hits = 0;
    for (int i = 0; i < 1000 && hits < 5; i++) {
        aw_process_t p;
        cr_assert_eq(aw_process_spawn(&p, argv, NULL), 0, "%s", msg_now());
        if (p.pidfd < 0) {
            hits++;
            int rc = aw_process_signal(&p, SIGTERM);
            cr_assert_eq(rc, -ESRCH, "run %d: signal to a pid reaped by the kernel: %d", i, rc);
            aw_err_clear();
            cr_assert_eq(aw_process_wait(&p), -ECHILD, "the wait still says where it went");
            aw_err_clear();
        }
        cr_assert_eq(aw_process_close(&p), 0, "%s", msg_now());
    }
    sigaction(SIGCHLD, &old, NULL);
    return 0;
}

Test(process, process_h_a_signal_to_a_child_reaped_before_its_pidfd_is_esrch) {
    int fds = aw_test_fds();
    aw_test_run(signal_gone_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* The harness over trio's test_pipes: three tasks feeding stdin and
 * draining stdout and stderr of one child, cancelled or timed out at
 * each suspension point of any of them: no fd, no zombie, every manager
 * exited once. */
static int pipes_scenario(void *arg) {
    (void)arg;
    aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE, .err = AW_PROCESS_PIPE};
    drain_t out = {0}, err = {0};
    aw_with (aw_process_t *p, aw_process(REVERSER, &o)) {
        out.s = &p->out;
        err.s = &p->err;
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, feed_input, p, NULL);
            aw_spawn(g, check_output, &out, NULL);
            aw_spawn(g, check_output, &err, NULL);
        }
        if (aw_status() == 0)
            aw_process_wait(p);
    }
    return aw_status();
}

Test(process, trio_pipes_harness_cancel_at_every_point_leaves_no_fd_and_no_zombie) {
    aw_testing_t h = {.name = "process pipes", .fn = pipes_scenario};
    aw_testing_report_t r;
    cr_assert_eq(aw_testing_run(&h, &r), 0);
    cr_assert_gt(r.points, 3);
    assert_no_child();
}

/* cpython test_stdin_not_inheritable (asyncio issue #209): a second
 * child spawned while the first's stdin pipe is open must not inherit
 * our end of it, or the first never reads end of file: here the first
 * (wc -c) answers once its stdin is shut, while the second still runs. */
static int cpython_stdin_not_inheritable_fn(void *arg) {
    (void)arg;
    const char *argv[] = {"/bin/sh", "-c", "wc -c | tr -d ' '", NULL};
    char line[16] = {0};
    aw_with (aw_scope_t *s, aw_fail_after(AW_SEC(5)))
    aw_with (aw_process_t *a, aw_process(argv, &PIPES))
    aw_with (aw_process_t *b, aw_process(SLEEP, &(aw_process_opts_t){.in = AW_PROCESS_PIPE})) {
        cr_assert_eq(aw_stream_write(&a->in, "abc", 3), 0);
        cr_assert_eq(aw_stream_shutdown(&a->in), 0);
        cr_assert_eq(aw_stream_read_line(&a->out, line, sizeof line), 2, "%s", msg_now());
        cr_assert_eq(aw_process_wait(a), 0);
        cr_assert_eq(a->exit_code, 0);
        cr_assert_eq(aw_process_signal(b, SIGTERM), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_str_eq(line, "3\n");
    return 0;
}

Test(process, cpython_stdin_not_inheritable) {
    int fds = aw_test_fds();
    aw_test_run(cpython_stdin_not_inheritable_fn, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
    assert_no_child();
}

/* A block left with no error while its scope is cancelled (the cancel
 * came after the body's last suspension point: a CPU loop past its
 * deadline, or aw_scope_cancel as the last statement) is left with a
 * cancel, as Trio's Process.aclose sees it: the child is terminated at
 * once (SIGTERM), not waited for until the exit's grace runs out and the
 * block fails -ETIMEDOUT. The cancel then shows after the block. */
static struct {
    int term_signal, rc_after, status;
    bool reaped;
} unobs;
static int unobserved_cancel(void *arg) {
    (void)arg;
    aw_process_t st = AW_PROCESS_INIT(SLEEP, NULL);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_process_t *p, aw_cm(&aw_process_type, &st)) {
            cr_assert_gt(p->pid, 0);
            aw_scope_cancel(s); /* no suspension point after it in the block */
        }
        unobs.status = aw_status();
        unobs.rc_after = aw_checkpoint(); /* the cancel, still there */
    }
    unobs.reaped = st.reaped;
    unobs.term_signal = st.term_signal;
    return aw_status();
}
Test(process, a_block_left_in_a_cancelled_scope_terminates_its_child_at_once) {
    memset(&unobs, 0, sizeof unobs);
    aw_loop_opts_t o = {.exit_grace = AW_SEC(3)};
    cr_assert_eq(aw_main_opts(&o, unobserved_cancel, NULL), 0);
    cr_assert(unobs.reaped);
    cr_assert_eq(unobs.term_signal, SIGTERM, "the child ended by %d", unobs.term_signal);
    cr_assert_eq(unobs.status, 0, "the block failed: %s", aw_err_name(unobs.status));
    cr_assert_eq(unobs.rc_after, -ECANCELED);
    assert_no_child();
}
