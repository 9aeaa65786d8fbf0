/* tests for src/cm/introspect.c ((c) 12 and 15). */
#include "testutil.h"

#include <string.h>

static aw_lock_t la = AW_LOCK_INIT("A"), lb = AW_LOCK_INIT("B");

static int take_ab(void *arg) {
    aw_with (aw_locked(&la)) {
        aw_sleep_ms(2);
        aw_with (aw_locked(&lb)) {
        }
    }
    return aw_status();
}
static int take_ba(void *arg) {
    aw_with (aw_locked(&lb)) {
        aw_sleep_ms(2);
        aw_with (aw_locked(&la)) {
        }
    }
    return aw_status();
}

static char *dump(int *cycles) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *cycles = aw_loop_dump(f);
    fclose(f);
    return buf;
}

static int deadlock(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, take_ab, NULL, NULL);
        aw_spawn(g, take_ba, NULL, NULL);
        aw_sleep_ms(10);
        int cycles;
        char *out = dump(&cycles);
        cr_assert_eq(cycles, 1, "one wait-for cycle:\n%s", out);
        cr_assert(strstr(out, "DEADLOCK: task 'take_ab'"), "%s", out);
        cr_assert(strstr(out, "holds lock 'A'"), "%s", out);
        cr_assert(strstr(out, "waits for lock 'B' held by task 'take_ba'"), "%s", out);
        cr_assert(strstr(out, "in manager 'lock' (enter phase"), "%s", out);
        free(out);
        aw_group_cancel(g); /* break the deadlock */
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&la));
    cr_assert_null(aw_lock_owner(&lb));
    return 0;
}
Test(introspect, c12_a_lock_cycle_is_flagged_as_a_deadlock) { aw_test_run(deadlock, NULL, 0); }

static int entered(void *arg) {
    aw_with (aw_fail_after(AW_SEC(5)))
    aw_with (aw_locked(&la)) {
        aw_sleep(AW_SEC(10));
    }
    return aw_status();
}
static int managers(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, entered, NULL, &t);
    aw_sleep_ms(2);
    int cycles;
    char *out = dump(&cycles);
    cr_assert_eq(cycles, 0);
    cr_assert(strstr(out, "task 'entered'"), "%s", out);
    cr_assert(strstr(out, "deadline: in "), "%s", out);
    cr_assert(strstr(out, "in manager 'lock' (body phase"), "%s", out);
    cr_assert(strstr(out, "in manager 'scope' (body phase"), "%s", out);
    cr_assert(strstr(out, "holds lock 'A'"), "%s", out);
    free(out);
    aw_task_cancel(t);
    aw_task_join(t);
    aw_err_clear();
    return 0;
}
Test(introspect, c15_the_dump_shows_managers_phases_deadlines_and_locks) { aw_test_run(managers, NULL, 0); }

/* ---- the dump on a signal ---- */

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static FILE *captured;         /* stderr goes here */
static int wake_pipe[2];       /* the main task waits on it: the loop is blocked in epoll */
static volatile int dump_seen;

static int captured_has(const char *s) {
    fflush(captured);
    long n = ftell(captured);
    if (n <= 0)
        return 0;
    char *buf = calloc(1, (size_t)n + 1);
    int fd = fileno(captured);
    ssize_t r = pread(fd, buf, (size_t)n, 0);
    int found = r > 0 && strstr(buf, s) != NULL;
    free(buf);
    return found;
}

/* From outside the loop: send the signal to the process, wait (up to
 * 20 s) for the dump to appear, then wake the loop by the pipe. */
static void *signaller(void *arg) {
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 20000 && !dump_seen; i++) {
        if (captured_has("task 'blocked_worker'"))
            dump_seen = 1;
        else
            usleep(1000);
    }
    ssize_t w = write(wake_pipe[1], "x", 1);
    (void)w;
    return NULL;
}

static aw_lock_t held = AW_LOCK_INIT("held-while-blocked");

static int blocked_worker(void *arg) {
    aw_with (aw_locked(&held)) {
        aw_fd_wait(wake_pipe[0], AW_READ);
    }
    return aw_status();
}

static void capture_stderr(int *saved) {
    fflush(stderr);
    captured = tmpfile();
    cr_assert_not_null(captured);
    *saved = dup(2);
    dup2(fileno(captured), 2);
}

static void restore_stderr(int saved) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

/* The loop is blocked in epoll (one task waits on a pipe, no timer): the
 * signal wakes it and it dumps between tasks. */
static int on_signal_blocked(void *arg) {
    int saved;
    cr_assert_eq(pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    capture_stderr(&saved);
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR1), 0);
    pthread_t th;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, blocked_worker, NULL, NULL);
        aw_sleep_ms(1); /* the worker is waiting on the pipe now */
        cr_assert_eq(pthread_create(&th, NULL, signaller, NULL), 0);
    }
    pthread_join(th, NULL);
    restore_stderr(saved);
    cr_assert_eq(aw_status(), 0);
    cr_assert(dump_seen, "no dump on stderr after SIGUSR1");
    cr_assert(captured_has("awith loop: "));
    cr_assert(captured_has("in manager 'lock' (body phase"));
    cr_assert(captured_has("holds lock 'held-while-blocked'"));
    cr_assert_eq(aw_loop_dump_on_signal(0), 0);
    aw_fd_forget(wake_pipe[0]);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    fclose(captured);
    return 0;
}
Test(introspect, sigusr1_dumps_a_loop_blocked_in_epoll) { aw_test_run(on_signal_blocked, NULL, 0); }

/* Tasks that keep yielding never let the loop poll epoll: the flag is
 * still seen at the next round. raise() runs the handler right here. */
static int spinner(void *arg) {
    while (!captured_has("task 'spinner'"))
        if (aw_yield() < 0)
            return aw_status();
    return 0;
}
static int on_signal_busy(void *arg) {
    int saved;
    capture_stderr(&saved);
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR1), 0);
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR2), -EBUSY);
    aw_err_clear();
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, spinner, NULL, NULL);
        aw_yield();
        raise(SIGUSR1);
        cr_assert(!captured_has("awith loop: "), "never dumped inside the handler");
    }
    restore_stderr(saved);
    cr_assert_eq(aw_status(), 0);
    cr_assert(captured_has("task 'spinner' (id "));
    aw_loop_dump_on_signal(0);
    fclose(captured);
    return 0;
}
Test(introspect, sigusr1_dumps_a_busy_loop_at_its_next_round) { aw_test_run(on_signal_busy, NULL, 0); }

Test(introspect, dump_on_signal_outside_a_loop_is_eperm) {
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR1), -EPERM);
}
