/* tests for fork() (src/core/main.c's aw_loop_fork, src/loop/loop.c's
 * refork, src/loop/workers.c's aw__workers_fork): with real fork().
 * A child that did not call aw_loop_fork fails fast (-ECHILD, with a
 * message naming it) instead of hanging; one that did has a working loop
 * (thread pool, timers, fds registered before the fork) while the
 * parent's loop goes on unharmed. The child reports through its exit
 * status: no Criterion assertion runs in it.
 *
 * Every loop here that uses the pool before a fork has one worker, which
 * has run a job (so it has started) by the fork. A pool of four starts
 * its threads at once, and a thread still starting when the process
 * forks may hold AddressSanitizer's allocator lock (GCC 12's ASan has no
 * fork handler): the child's malloc then waits forever. glibc's malloc
 * is fork-safe; ASan's is not, and that is not what these tests test. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool in_child;

static const aw_loop_opts_t one_worker = {.threads = 1};
#define fork_run(fn) \
    cr_assert_eq(aw_main_opts(&one_worker, (fn), NULL), 0, "aw_main(" #fn ") returned an error")

/* The child's exit status, polled while the loop goes on. A child that
 * does not exit within 60 s is killed and the test fails saying so,
 * instead of the whole binary running into meson's timeout. */
static int child_status(pid_t pid) {
    int st = -1;
    for (int ms = 0; waitpid(pid, &st, WNOHANG) == 0; ms++) {
        if (ms == 60000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            cr_assert_fail("the child (pid %d) hung: killed after 60 s", (int)pid);
        }
        cr_assert_eq(aw_sleep(AW_MS(1)), 0);
    }
    cr_assert(WIFEXITED(st), "the child exited (status 0x%x)", st);
    return WEXITSTATUS(st);
}

static void set_42(void *arg) { *(int *)arg = 42; }

/* ---- without aw_loop_fork: fail fast ---- */

static int to_thread_unforked(void *arg) {
    cr_assert_eq(aw_to_thread(set_42, &(int){0}, NULL), 0); /* the parent's pool runs */
    pid_t pid = fork();
    if (pid == 0) {
        int v = 0;
        int rc = aw_to_thread(set_42, &v, NULL); /* used to hang forever */
        const aw_err_t *e = aw_err_current();
        _exit(rc == -ECHILD && v == 0 && e && strstr(e->msg, "aw_loop_fork") ? 0 : 1);
    }
    cr_assert_eq(child_status(pid), 0, "aw_to_thread in the child returned -ECHILD");
    return 0;
}

Test(fork, without_aw_loop_fork_aw_to_thread_fails_fast) { fork_run(to_thread_unforked); }

static int sleep_unforked(void *arg) {
    pid_t pid = fork();
    if (pid == 0) {
        in_child = true;
        /* the loop's next poll stops it; the shutdown cancels this task
         * and aw_main returns in the child (see the test) */
        return aw_sleep(AW_MS(5));
    }
    cr_assert_eq(child_status(pid), 0, "the child's aw_main returned -ECHILD");
    return 0;
}

static char logged[4096];
static void hook(const char *msg, void *arg) { strncat(logged, msg, sizeof logged - strlen(logged) - 1); }

Test(fork, without_aw_loop_fork_the_childs_loop_stops_and_says_why) {
    aw_loop_opts_t o = {.log = hook};
    int rc = aw_main_opts(&o, sleep_unforked, NULL);
    if (in_child)
        _exit(rc == -ECHILD && strstr(logged, "call aw_loop_fork()") ? 0 : 1);
    cr_assert_eq(rc, 0);
}

/* ---- with aw_loop_fork: the child's loop works ---- */

static int a_pipe[2], b_pipe[2];

static int reader(void *arg) {
    char c;
    for (;;) {
        if (read(a_pipe[0], &c, 1) == 1)
            return c;
        int rc = aw_fd_wait(a_pipe[0], AW_READ);
        if (rc < 0)
            return rc;
    }
}

static int forked_main(void *arg) {
    cr_assert_eq(pipe2(a_pipe, O_NONBLOCK), 0);
    cr_assert_eq(pipe2(b_pipe, O_NONBLOCK), 0);
    cr_assert_eq(aw_to_thread(set_42, &(int){0}, NULL), 0); /* the pool exists */
    aw_task_t *r;
    aw_spawn(NULL, reader, NULL, &r);
    aw_yield(); /* r waits on a_pipe: its fd is registered in the loop */
    pid_t pid = fork();
    if (pid == 0) {
        int ok = aw_loop_fork() == 0;
        int v = 0;
        ok = ok && aw_to_thread(set_42, &v, NULL) == 0 && v == 42; /* a fresh pool */
        aw_ns_t t0 = aw_now();
        ok = ok && aw_sleep(AW_MS(5)) == 0 && aw_now() - t0 >= AW_MS(5); /* timers */
        ok = ok && aw_task_join(r) == 'p'; /* the fd registered before the fork */
        ok = ok && write(b_pipe[1], "k", 1) == 1;
        _exit(ok ? 0 : 1);
    }
    /* the parent: its own reader leaves the pipe to the child's */
    aw_task_cancel(r);
    cr_assert_eq(aw_task_join(r), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(write(a_pipe[1], "p", 1), 1);
    char c;
    while (read(b_pipe[0], &c, 1) != 1)
        cr_assert_eq(aw_fd_wait(b_pipe[0], AW_READ), 0, "the parent's loop still works");
    cr_assert_eq(c, 'k');
    cr_assert_eq(child_status(pid), 0, "the child's pool, timers and fds worked");
    int v = 0;
    cr_assert_eq(aw_to_thread(set_42, &v, NULL), 0);
    cr_assert_eq(v, 42, "the parent's pool still works");
    for (int i = 0; i < 2; i++) {
        close(a_pipe[i]);
        close(b_pipe[i]);
    }
    return 0;
}

Test(fork, after_aw_loop_fork_the_childs_loop_works_and_the_parents_too) { fork_run(forked_main); }

/* ---- pool jobs at the moment of the fork ---- */

static atomic_int started, release;
static void blocked_work(void *arg) {
    atomic_store(&started, 1);
    while (!atomic_load(&release))
        usleep(1000);
}
static int in_flight(void *arg) { return aw_to_thread(blocked_work, NULL, NULL); }
static int queued(void *arg) {
    int v = 0;
    int rc = aw_to_thread(set_42, &v, NULL);
    return rc < 0 ? rc : v;
}

static int jobs_at_fork(void *arg) {
    aw_task_t *a, *b;
    aw_spawn(NULL, in_flight, NULL, &a);
    while (!atomic_load(&started))
        aw_sleep(AW_MS(1)); /* a's job runs on the only worker */
    aw_spawn(NULL, queued, NULL, &b);
    aw_yield(); /* b's job is queued behind it */
    pid_t pid = fork();
    if (pid == 0) {
        int ok = aw_loop_fork() == 0;
        ok = ok && aw_task_join(a) == -ECHILD; /* its worker was the parent's */
        ok = ok && aw_task_join(b) == 42;      /* re-run on the child's pool */
        _exit(ok ? 0 : 1);
    }
    atomic_store(&release, 1);
    cr_assert_eq(aw_task_join(a), 0);
    cr_assert_eq(aw_task_join(b), 42);
    cr_assert_eq(child_status(pid), 0, "running job -ECHILD, queued job re-run in the child");
    return 0;
}

Test(fork, a_running_job_fails_and_a_queued_one_reruns_in_the_child) { fork_run(jobs_at_fork); }

/* ---- an embedded loop ---- */

static int sleeper(void *arg) { return aw_sleep(AW_MS(5)); }

Test(fork, an_embedded_loop_in_a_child_says_echild_until_aw_loop_fork) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_start(l, sleeper, NULL), 0);
    cr_assert_eq(aw_loop_run_once(l), 1);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = aw_loop_run_once(l) == -ECHILD;
        ok = ok && aw_loop_fork() == 0;
        int rc;
        while ((rc = aw_loop_run_once(l)) == 1)
            ;
        ok = ok && rc == 0 && aw_loop_close(l) == 0;
        _exit(ok ? 0 : 1);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
    int rc;
    while ((rc = aw_loop_run_once(l)) == 1)
        ;
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_loop_close(l), 0);
}

Test(fork, aw_loop_fork_without_a_loop_is_eperm) { cr_assert_eq(aw_loop_fork(), -EPERM); }
