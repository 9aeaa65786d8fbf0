/* tests for src/core/main.c: aw_main's status, shutdown, and the order
 * of loop close. */
#include "testutil.h"

static int ret_value(void *arg) { return (int)(intptr_t)arg; }

Test(main, main_returns_status) {
    aw_test_run(ret_value, (void *)0, 0);
    cr_assert_eq(aw_main(ret_value, (void *)(intptr_t)-EIO), -EIO);
}

static int leftover(void *arg) { return aw_sleep(AW_SEC(3600)) == -ECANCELED ? 0 : -1; }
static int spawn_and_leave(void *arg) {
    aw_spawn(NULL, leftover, NULL, NULL);
    aw_spawn(NULL, leftover, NULL, NULL);
    return 0;
}

Test(main, shutdown_cancels_remaining_tasks) { aw_test_run(spawn_and_leave, NULL, 0); }

/* ---- L1: the order of loop close ----
 * asyncio.run: cancel the remaining tasks and wait for them, then
 * finalize async generators, then shut the default executor down, then
 * close. awith: when main returns, every remaining task is cancelled and
 * awaited; a task's generators are finalized inside it, while it unwinds
 * (so never "already running", and the thread pool still works for
 * them); then the thread pool stops (a job abandoned by a cancelled
 * caller is released there); then the loop closes (fds, threads gone). */
#include <awith/gen.h>
#include <dirent.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static char l1_log[512];
static atomic_int l1_tasks_done, l1_worked;
static void l1_note(const char *s) {
    strcat(l1_log, s);
    strcat(l1_log, ";");
}
static int l1_pos(const char *s) {
    const char *p = strstr(l1_log, s);
    return p ? (int)(p - l1_log) : -1;
}
static void l1_quick_work(void *arg) { atomic_store(&l1_worked, 1); }
static void l1_slow_work(void *arg) {
    for (int i = 0; i < 60000 && !atomic_load(&l1_tasks_done); i++)
        usleep(500); /* until every task is gone */
}
static void l1_abandon(void *arg) { l1_note("pool-stop:abandoned-job-released"); }

static int l1_gen(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    int rc = aw_to_thread(l1_quick_work, NULL, NULL);
    l1_note(rc == 0 && atomic_load(&l1_worked) ? "G:finalized-using-the-pool" : "G:pool-gone");
    return 0;
}
static int l1_consumer(void *arg) {
    aw_for (int *v, aw_gen(l1_gen, NULL)) {
        if (aw_sleep(AW_SEC(3600)) < 0) {
            l1_note("C:cancelled");
            break;
        }
    }
    l1_note("C:done");
    aw_err_clear();
    atomic_store(&l1_tasks_done, 1);
    return 0;
}
static int l1_job_caller(void *arg) {
    int rc = aw_to_thread(l1_slow_work, NULL, l1_abandon);
    l1_note(rc == -ECANCELED ? "J:cancelled" : "J:not-cancelled");
    aw_err_clear();
    return 0;
}
static int l1_main(void *arg) {
    aw_spawn(NULL, l1_job_caller, NULL, NULL);
    aw_spawn(NULL, l1_consumer, NULL, NULL);
    aw_sleep_ms(2); /* both are suspended: one in the pool, one in its for */
    l1_note("main:returns");
    return 0;
}
Test(main, L1_close_cancels_and_awaits_tasks_then_stops_the_pool_then_closes) {
    int fds = aw_test_fds(), threads = aw_test_threads();
    aw_test_run(l1_main, NULL, 0);
    l1_note("closed");
    const char *order[] = {"main:returns", "C:cancelled", "G:finalized-using-the-pool", "C:done",
                           "pool-stop:abandoned-job-released", "closed"};
    for (size_t i = 0; i + 1 < sizeof order / sizeof order[0]; i++) {
        cr_assert_geq(l1_pos(order[i]), 0, "%s missing: %s", order[i], l1_log);
        cr_assert_lt(l1_pos(order[i]), l1_pos(order[i + 1]), "%s before %s: %s", order[i],
                     order[i + 1], l1_log);
    }
    cr_assert_lt(l1_pos("J:cancelled"), l1_pos("pool-stop"), "%s", l1_log);
    cr_assert_eq(aw_test_fds(), fds, "the loop's fds are closed");
    cr_assert_eq(aw_test_threads_await(threads), threads, "the pool's threads are gone");
}

/* A loop that cannot start has no task to hold an error record: aw_main
 * prints which call failed and returns its code. No fd can be made once
 * the limit sits at the lowest free descriptor, so epoll_create1 fails. */
#include "capture.h"
#include <sys/resource.h>

static int never_runs(void *arg) { return (int)(intptr_t)arg; }

Test(main, a_loop_that_cannot_start_says_which_call_failed) {
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    cr_assert_geq(dup2(fileno(tmp), 2), 0);
    int lowest = dup(0);
    close(lowest);
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)lowest;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int rc = aw_main(never_runs, (void *)(intptr_t)-EIO);
    setrlimit(RLIMIT_NOFILE, &old);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char out[512];
    rewind(tmp);
    out[fread(out, 1, sizeof out - 1, tmp)] = '\0';
    fclose(tmp);
    cr_assert_eq(rc, -EMFILE, "got %d", rc);
    cr_assert(strstr(out, "cannot start the loop: epoll_create1 failed"), "stderr: %s", out);
}

/* M9, L1: a task still alive after the shutdown grace is listed, and so
 * is every lock it holds, with where it took it: the lock stays held for
 * good (nothing will release it), and the report is the only place that
 * says so. */
#include "capture.h"

static aw_lock_t m9_lock = AW_LOCK_INIT("config-lock");
static int m9_holder(void *arg) {
    cr_assert_eq(aw_lock_acquire(&m9_lock), 0);
    aw_sleep(AW_SEC(3600)); /* cancelled by the shutdown */
    aw_with (aw_shield(AW_NEVER)) /* then stuck past the grace */
        aw_sleep(AW_SEC(3600));
    aw_lock_release(&m9_lock);
    return 0;
}
static int m9_leaves_a_holder(void *arg) {
    aw_spawn(NULL, m9_holder, NULL, NULL);
    aw_sleep_ms(5);
    return 0;
}
static char m9_log[2048];
static void m9_hook(const char *msg, void *arg) {
    strncat(m9_log, msg, sizeof m9_log - strlen(m9_log) - 1);
}
Test(main, M9_a_lock_held_by_a_task_alive_at_close_is_reported_with_its_site) {
    aw_loop_opts_t o = {.shutdown_grace = AW_MS(50), .log = m9_hook};
    cr_assert_eq(aw_main_opts(&o, m9_leaves_a_holder, NULL), -EBUSY, "%s", m9_log);
    cr_assert(strstr(m9_log, "task 'm9_holder'"), "%s", m9_log);
    cr_assert(strstr(m9_log, "holding lock 'config-lock' (acquired at") &&
                  strstr(m9_log, "tests/core/main.c:"), "the lock and its site: %s", m9_log);
}
