/* tests for src/core/embed.c: a loop embedded in another program's loop,
 * here a plain poll() loop that watches aw_loop_backend_fd and honours
 * aw_loop_next_timeout, as a libuv or GLib program does. Covers: timers,
 * fds, the thread pool and posts from other threads wake the host; the
 * step never blocks; close follows aw_main's rules (status, cancel,
 * drain, report: SEMANTICS L1); misuse is refused. */
#include "testutil.h"

#include <awith/log.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static int host_waits; /* how many times the host slept in poll */

/* The host's loop: step, then sleep in poll on the backend fd for at most
 * the timeout (rounded up to ms, as the header says). */
static int drive(aw_loop_t *l) {
    int rc;
    while ((rc = aw_loop_run_once(l)) == 1) {
        aw_ns_t ns = aw_loop_next_timeout(l);
        int ms = ns < 0 ? -1 : (int)((ns + 999999) / 1000000);
        struct pollfd p = {.fd = aw_loop_backend_fd(l), .events = POLLIN};
        cr_assert_geq(poll(&p, 1, ms), 0);
        host_waits++;
    }
    return rc;
}

static int sleeper(void *arg) {
    aw_ns_t t0 = aw_now();
    int rc = aw_sleep(AW_MS(30));
    cr_assert_geq(aw_now() - t0, AW_MS(30), "the sleep lasted its time");
    return rc < 0 ? rc : 7;
}

Test(embed, a_timer_wakes_the_host_and_close_returns_the_main_status) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_current(), l, "the loop is this thread's");
    cr_assert_eq(aw_loop_start(l, sleeper, NULL), 0);
    cr_assert_eq(aw_loop_next_timeout(l), 0, "the main task is ready: step now");
    cr_assert_eq(drive(l), 0);
    cr_assert_gt(host_waits, 0, "the host slept while the task did");
    cr_assert_eq(aw_loop_close(l), 7);
    cr_assert_null(aw_loop_current());
}

static int sleep_long(void *arg) { return aw_sleep(AW_SEC(3600)); }

Test(embed, a_step_never_blocks_and_the_timeout_is_the_next_timer) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_start(l, sleep_long, NULL), 0);
    cr_assert_eq(aw_loop_run_once(l), 1, "returns while the task sleeps for an hour");
    aw_ns_t ns = aw_loop_next_timeout(l);
    cr_assert_gt(ns, AW_SEC(3500), "the timeout is the sleep's: %lld", (long long)ns);
    /* close cancels the sleeping main task and waits for it (L1) */
    cr_assert_eq(aw_loop_close(l), -ECANCELED);
}

Test(embed, no_timer_no_ready_task_means_wait_for_the_fd_only) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_next_timeout(l), 0, "no main task: done, close now");
    cr_assert_eq(aw_loop_run_once(l), 0);
    cr_assert_eq(aw_loop_close(l), 0, "a loop never started closes with 0");
}

/* ---- fds ---- */

static int pipe_rd[2];
static int reader(void *arg) {
    char c;
    for (;;) {
        ssize_t n = read(pipe_rd[0], &c, 1);
        if (n == 1)
            return c;
        int rc = aw_fd_wait(pipe_rd[0], AW_READ);
        if (rc < 0)
            return rc;
    }
}

Test(embed, an_fd_a_task_waits_for_wakes_the_host) {
    cr_assert_eq(pipe2(pipe_rd, O_NONBLOCK), 0);
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_start(l, reader, NULL), 0);
    cr_assert_eq(aw_loop_run_once(l), 1);
    cr_assert_eq(aw_loop_next_timeout(l), -1, "no timer: the fd only");
    struct pollfd p = {.fd = aw_loop_backend_fd(l), .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 0), 0, "nothing to do yet");
    cr_assert_eq(write(pipe_rd[1], "x", 1), 1);
    cr_assert_eq(poll(&p, 1, -1), 1, "the backend fd says the task's fd is ready");
    cr_assert_eq(drive(l), 0);
    cr_assert_eq(aw_loop_close(l), 'x');
    close(pipe_rd[0]);
    close(pipe_rd[1]);
}

/* ---- the thread pool: a job finishing while the host sleeps ---- */

static void slow_work(void *arg) { usleep(20000); *(int *)arg = 42; }
static int pool_user(void *arg) {
    int v = 0;
    int rc = aw_to_thread(slow_work, &v, NULL);
    return rc < 0 ? rc : v;
}

Test(embed, a_pool_job_finishing_wakes_a_host_asleep_on_the_fd) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_start(l, pool_user, NULL), 0);
    /* no timer at all: only the backend fd can wake the host (a hang
     * here is the test's failure, caught by Criterion's timeout) */
    cr_assert_eq(drive(l), 0);
    cr_assert_eq(aw_loop_close(l), 42);
}

/* ---- posts from other threads ---- */

static aw_event_t posted_ev = AW_EVENT_INIT;
static void set_ev(void *arg) { aw_event_set(&posted_ev); }
static void *poster(void *arg) {
    usleep(20000);
    aw_loop_ref_t *r = arg;
    cr_assert_eq(aw_loop_post(r, set_ev, NULL), 0);
    aw_loop_unref(r);
    return NULL;
}
static int waits_for_post(void *arg) { return aw_event_wait(&posted_ev) == 0 ? 5 : -1; }

Test(embed, a_post_from_another_thread_wakes_the_host) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0, "outside a task, on the loop's thread");
    cr_assert_eq(aw_loop_start(l, waits_for_post, NULL), 0);
    pthread_t th;
    pthread_create(&th, NULL, poster, r);
    cr_assert_eq(drive(l), 0);
    pthread_join(th, NULL);
    cr_assert_eq(aw_loop_close(l), 5);
}

/* ---- shutdown ---- */

static int spawned_done;
static int child(void *arg) {
    int rc = aw_sleep(AW_SEC(3600));
    spawned_done = rc == -ECANCELED;
    return 0;
}
static int main_with_child(void *arg) {
    aw_spawn(NULL, child, NULL, NULL);
    return aw_sleep(AW_SEC(3600));
}

Test(embed, cancel_then_step_until_done_drains_without_blocking) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_start(l, main_with_child, NULL), 0);
    cr_assert_eq(aw_loop_run_once(l), 1);
    aw_loop_cancel(l);
    cr_assert_eq(aw_loop_next_timeout(l), 0, "cancelled tasks are ready");
    cr_assert_eq(drive(l), 0);
    cr_assert(spawned_done, "the root group's task saw the cancel and ended");
    aw_loop_stats_t st;
    aw_loop_stats(&st);
    cr_assert_eq(st.tasks, 0, "every task is done before close");
    cr_assert_eq(aw_loop_close(l), -ECANCELED);
}

static char logged[4096];
static void hook(const char *msg, void *arg) { strncat(logged, msg, sizeof logged - strlen(logged) - 1); }
static int fails(void *arg) { return aw_raise(-EIO, "embedded failure"); }

Test(embed, close_reports_the_main_task_failure_as_aw_main_does) {
    aw_loop_opts_t o = {.log = hook};
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(&o, &l), 0);
    cr_assert_eq(aw_loop_start(l, fails, NULL), 0);
    cr_assert_eq(drive(l), 0);
    cr_assert_eq(aw_loop_close(l), -EIO);
    cr_assert(strstr(logged, "the main task failed") && strstr(logged, "embedded failure"), "%s",
              logged);
}

static int waits_forever(void *arg) {
    aw_event_t ev = AW_EVENT_INIT;
    return aw_event_wait(&ev);
}

Test(embed, a_deadlock_is_returned_by_the_step_and_reported_at_close) {
    aw_loop_opts_t o = {.log = hook};
    aw_loop_t *l;
    logged[0] = '\0';
    cr_assert_eq(aw_loop_new(&o, &l), 0);
    cr_assert_eq(aw_loop_start(l, waits_forever, NULL), 0);
    cr_assert_eq(drive(l), -EDEADLK);
    cr_assert_eq(aw_loop_close(l), -ECANCELED);
    cr_assert(strstr(logged, "deadlock"), "%s", logged);
}

/* ---- misuse ---- */

static void *other_thread(void *arg) {
    aw_loop_t *l = arg;
    cr_assert_eq(aw_loop_run_once(l), -EPERM);
    cr_assert_eq(aw_loop_start(l, sleeper, NULL), -EPERM);
    cr_assert_eq(aw_loop_close(l), -EPERM);
    return NULL;
}

Test(embed, another_thread_cannot_drive_the_loop) {
    aw_loop_t *l, *l2;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_new(NULL, &l2), -EINVAL, "one loop per thread");
    pthread_t th;
    pthread_create(&th, NULL, other_thread, l);
    pthread_join(th, NULL);
    cr_assert_eq(aw_loop_start(l, sleep_long, NULL), 0);
    cr_assert_eq(aw_loop_start(l, sleep_long, NULL), -EBUSY, "one main task");
    cr_assert_eq(aw_loop_close(l), -ECANCELED);
}

static int steps_itself(void *arg) {
    aw_loop_t *l = aw_loop_current();
    cr_assert_eq(aw_loop_run_once(l), -EPERM, "a task does not run its own loop");
    cr_assert_eq(aw_loop_close(l), -EPERM);
    aw_loop_t *l2;
    cr_assert_eq(aw_loop_new(NULL, &l2), -EINVAL);
    return 0;
}

Test(embed, a_task_cannot_step_or_close_its_loop) {
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(NULL, &l), 0);
    cr_assert_eq(aw_loop_start(l, steps_itself, NULL), 0);
    cr_assert_eq(drive(l), 0);
    cr_assert_eq(aw_loop_close(l), 0);
    cr_assert_eq(aw_main(steps_itself, NULL), 0, "nor inside aw_main");
}

/* ---- a host's cancel while another thread keeps posting (loopsx) ---- */

static atomic_int flood_accepted, flood_ran, flood_spawned, flood_ended;

static int flood_child(void *arg) {
    (void)arg;
    aw_sleep(AW_SEC(3600)); /* until the cancel */
    atomic_fetch_add(&flood_ended, 1);
    return 0;
}

static void flood_post(void *arg) {
    (void)arg;
    atomic_fetch_add(&flood_ran, 1);
    if (aw_spawn(NULL, flood_child, NULL, NULL) == 0)
        atomic_fetch_add(&flood_spawned, 1);
    else
        aw_err_clear();
}

static void *flooder(void *arg) {
    aw_loop_ref_t *r = arg;
    for (;;) {
        int rc = aw_loop_post(r, flood_post, NULL);
        if (rc == 0)
            atomic_fetch_add(&flood_accepted, 1);
        else if (rc == -EAGAIN)
            sched_yield();
        else
            break; /* -ESHUTDOWN */
    }
    aw_loop_unref(r);
    return NULL;
}

static int idle_main(void *arg) { return aw_sleep(AW_SEC(3600)); }

Test(embed, L1_a_cancel_while_a_thread_floods_posts_drains_and_closes) {
    aw_loop_t *l;
    aw_loop_opts_t o = {.post_limit = 32};
    cr_assert_eq(aw_loop_new(&o, &l), 0);
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0);
    cr_assert_eq(aw_loop_start(l, idle_main, NULL), 0);
    pthread_t th;
    pthread_create(&th, NULL, flooder, r);
    while (atomic_load(&flood_ran) < 500) {
        cr_assert_eq(aw_loop_run_once(l), 1);
        struct pollfd p = {.fd = aw_loop_backend_fd(l), .events = POLLIN};
        poll(&p, 1, 10);
    }
    aw_loop_cancel(l);
    cr_assert_eq(drive(l), 0, "the drain ends though posts keep coming");
    cr_assert_eq(aw_loop_close(l), -ECANCELED);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&flood_ran), atomic_load(&flood_accepted));
    cr_assert_eq(atomic_load(&flood_ended), atomic_load(&flood_spawned),
                 "every spawned task ended (%d spawned)", atomic_load(&flood_spawned));
}
