/* tests for src/core/thread.c: aw_to_thread, a blocking call on the pool:
 * results, suspension of the caller only, cancellation with ownership
 * passing to the pool (abandon), non-cancellable calls, deadlines, many
 * concurrent calls. Blocking work waits on a semaphore the test posts, so
 * nothing depends on timing. */
#include "testutil.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct job {
    sem_t go;                 /* work blocks on it when `block` */
    int block;
    int in, out;
    atomic_int started, finished;
    pthread_t worker;
} job_t;

static pthread_t loop_thread;
static atomic_int abandoned;  /* abandon calls that saw a finished job */
static atomic_int abandon_bad;
static atomic_int abandon_closing; /* abandon calls made during the loop's close */

static job_t *job_new(int in, int block) {
    job_t *j = calloc(1, sizeof *j);
    sem_init(&j->go, 0, 0);
    j->in = in;
    j->block = block;
    return j;
}

static void job_free(job_t *j) {
    sem_destroy(&j->go);
    free(j);
}

static void work(void *arg) {
    job_t *j = arg;
    j->worker = pthread_self();
    atomic_store(&j->started, 1);
    if (j->block)
        while (sem_wait(&j->go) != 0) {
        }
    j->out = j->in * 2;
    atomic_store(&j->finished, 1);
}

static void abandon(void *arg) {
    job_t *j = arg;
    if (!atomic_load(&j->finished) || !pthread_equal(pthread_self(), loop_thread))
        atomic_fetch_add(&abandon_bad, 1);
    if (!aw_loop_current()) /* while the loop closes: the thread is right, the loop is gone */
        atomic_fetch_add(&abandon_closing, 1);
    atomic_fetch_add(&abandoned, 1);
    job_free(j);
}

/* Yield until *flag (set by another thread) reaches want; sleeps a little
 * between looks so a loaded machine still gets there. */
static void wait_for(atomic_int *flag, int want) {
    while (atomic_load(flag) < want)
        cr_assert_eq(aw_sleep(AW_US(200)), 0);
}

static int result_main(void *arg) {
    job_t *j = job_new(21, 0);
    cr_assert_eq(aw_to_thread(work, j, abandon), 0);
    cr_assert_eq(j->out, 42);
    cr_assert_eq(atomic_load(&j->finished), 1);
    cr_assert(!pthread_equal(j->worker, pthread_self()), "work ran on a worker thread");
    cr_assert_eq(atomic_load(&abandoned), 0, "a completed call owns its arg: no abandon");
    cr_assert_null(aw_err_current());
    job_free(j);
    return 0;
}

Test(thread, result_is_delivered_and_work_runs_on_a_worker) {
    loop_thread = pthread_self();
    int fds = aw_test_fds();
    aw_test_run(result_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds, "the pool and the loop released their fds");
}

/* The work blocks until another task on the loop releases it: if the
 * caller blocked the loop thread, this would hang. */
static atomic_int ticks;

static int releaser(void *arg) {
    job_t *j = arg;
    wait_for(&j->started, 1);
    for (int i = 0; i < 5; i++) {
        atomic_fetch_add(&ticks, 1);
        aw_yield();
    }
    sem_post(&j->go);
    return 0;
}

static int suspends_main(void *arg) {
    job_t *j = job_new(5, 1);
    aw_task_t *r;
    aw_spawn(NULL, releaser, j, &r);
    cr_assert_eq(aw_to_thread(work, j, abandon), 0);
    cr_assert_eq(atomic_load(&ticks), 5, "other tasks ran while the call was in progress");
    cr_assert_eq(j->out, 10);
    cr_assert_eq(aw_task_join(r), 0);
    job_free(j);
    return 0;
}

Test(thread, caller_suspends_while_other_tasks_run) { aw_test_run(suspends_main, NULL, 0); }

/* thread.h: work's failure does not cross. A raise on the worker thread
 * (no task there) sets that thread's last error only: the caller's
 * pending errors are neither replaced nor added to, and the result comes
 * back through arg. */
typedef struct { int err; const char *seen; } raising_job_t;
static void raising_work(void *arg) {
    raising_job_t *j = arg;
    j->err = -aw_raise(-EIO, "raised on a worker");
    j->seen = aw_err_current() ? aw_err_current()->msg : NULL;
}
static int raising_main(void *arg) {
    (void)arg;
    raising_job_t j = {0};
    cr_assert_eq(aw_to_thread(raising_work, &j, NULL), 0);
    cr_assert_eq(j.err, EIO);
    cr_assert_str_eq(j.seen, "raised on a worker", "the worker's own last error");
    cr_assert_null(aw_err_current(), "nothing crossed into the caller");
    aw_raise(-ENOENT, "the caller's");
    cr_assert_eq(aw_to_thread(raising_work, &j, NULL), 0);
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    cr_assert_str_eq(aw_err_current()->msg, "the caller's");
    aw_err_clear();
    return 0;
}
Test(thread, a_raise_in_work_stays_on_the_worker_thread) { aw_test_run(raising_main, NULL, 0); }

/* Cancelled while work runs: -ECANCELED at once, work still blocked; when
 * it finishes, abandon runs on the loop thread and frees the job. */

static int cancelled_caller(void *arg) {
    job_t *j = arg;
    int rc = aw_to_thread(work, j, abandon);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(atomic_load(&j->finished), 0, "the caller did not wait for the work");
    cr_assert_eq(aw_status(), -ECANCELED);
    return rc;
}

static int cancel_main(void *arg) {
    loop_thread = pthread_self();
    job_t *j = job_new(1, 1);
    aw_task_t *c;
    aw_spawn(NULL, cancelled_caller, j, &c);
    wait_for(&j->started, 1);
    aw_task_cancel(c);
    cr_assert_eq(aw_task_join(c), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(atomic_load(&abandoned), 0, "abandon waits for the work");
    sem_post(&j->go); /* j belongs to the pool now; only the sem is touched */
    wait_for(&abandoned, 1);
    cr_assert_eq(atomic_load(&abandon_bad), 0, "abandon ran after work, on the loop thread");
    cr_assert_eq(atomic_load(&abandon_closing), 0, "with the loop current");
    return 0;
}

Test(thread, cancel_during_call_returns_at_once_and_abandon_runs_after_work) {
    int fds = aw_test_fds();
    aw_test_run(cancel_main, NULL, 0);
    cr_assert_eq(atomic_load(&abandoned), 1);
    cr_assert_eq(aw_test_fds(), fds);
}

/* The main task returns while an abandoned call still runs: closing the
 * loop waits for the worker and still runs abandon (on the loop thread). */
static void *late_release(void *arg) {
    job_t *j = arg;
    usleep(20000); /* let the loop reach its close first (not required) */
    sem_post(&j->go);
    return NULL;
}

static pthread_t releaser_thread;

static int close_main(void *arg) {
    loop_thread = pthread_self();
    job_t *j = job_new(1, 1);
    aw_task_t *c;
    aw_spawn(NULL, cancelled_caller, j, &c);
    wait_for(&j->started, 1);
    aw_task_cancel(c);
    cr_assert_eq(aw_task_join(c), -ECANCELED);
    aw_err_clear();
    pthread_create(&releaser_thread, NULL, late_release, j);
    return 0;
}

Test(thread, abandon_runs_even_when_the_loop_closes_first) {
    aw_test_run(close_main, NULL, 0);
    pthread_join(releaser_thread, NULL);
    cr_assert_eq(atomic_load(&abandoned), 1);
    cr_assert_eq(atomic_load(&abandon_bad), 0);
}

/* abandon == NULL: not cancellable; the cancel is delivered after. */
static int uncancellable_caller(void *arg) {
    job_t *j = arg;
    int rc = aw_to_thread(work, j, NULL);
    cr_assert_eq(rc, 0, "the call completed");
    cr_assert_eq(atomic_load(&j->finished), 1);
    cr_assert_eq(j->out, 14);
    cr_assert_eq(aw_checkpoint(), -ECANCELED, "the cancel was kept for the next checkpoint");
    return -ECANCELED;
}

static int uncancellable_main(void *arg) {
    job_t *j = job_new(7, 1);
    aw_task_t *c;
    aw_spawn(NULL, uncancellable_caller, j, &c);
    wait_for(&j->started, 1);
    aw_task_cancel(c);
    for (int i = 0; i < 20; i++)
        aw_yield(); /* give a wrongly cancellable wait a chance to return */
    cr_assert_eq(atomic_load(&j->finished), 0);
    sem_post(&j->go);
    cr_assert_eq(aw_task_join(c), -ECANCELED);
    aw_err_clear();
    job_free(j);
    return 0;
}

Test(thread, null_abandon_makes_the_call_uncancellable) {
    aw_test_run(uncancellable_main, NULL, 0);
    cr_assert_eq(atomic_load(&abandoned), 0);
}

/* A pending cancel starts no work. With an abandon, -ECANCELED still
 * hands arg over (abandon runs at once); without one, arg stays ours. */
static void abandon_unstarted(void *arg) {
    job_t *j = arg;
    if (atomic_load(&j->started))
        atomic_fetch_add(&abandon_bad, 1);
    atomic_fetch_add(&abandoned, 1);
    job_free(j);
}

static int pending_cancel_main(void *arg) {
    job_t *j = job_new(1, 0), *k = job_new(1, 0);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert_eq(aw_to_thread(work, j, abandon_unstarted), -ECANCELED);
        cr_assert_eq(atomic_load(&abandoned), 1, "-ECANCELED hands arg to abandon");
        cr_assert_eq(aw_to_thread(work, k, NULL), -ECANCELED);
    }
    cr_assert_eq(atomic_load(&k->started), 0, "a cancelled caller starts no work");
    cr_assert_eq(atomic_load(&abandon_bad), 0);
    job_free(k);
    return 0;
}

Test(thread, F1_pending_cancel_starts_no_work) { aw_test_run(pending_cancel_main, NULL, 0); }

Test(thread, outside_a_task_is_eperm) {
    job_t *j = job_new(1, 0);
    cr_assert_eq(aw_to_thread(work, j, NULL), -EPERM);
    cr_assert_eq(atomic_load(&j->started), 0);
    job_free(j);
}

/* Deadlines: a fail-after scope around a cancellable call that blocks. */
/* The scope's deadline is moved into the past once the work runs, so
 * the deadline cuts a call in progress however slow the machine is. */
static aw_scope_t *cut_scope;

static int expirer(void *arg) {
    job_t *j = arg;
    wait_for(&j->started, 1);
    cr_assert_eq(aw_scope_reschedule(cut_scope, aw_now()), 0);
    return 0;
}

static int deadline_main(void *arg) {
    loop_thread = pthread_self();
    job_t *j = job_new(3, 1);
    int rc = 0;
    aw_spawn(NULL, expirer, j, NULL);
    aw_with (aw_scope_t *s, aw_fail_at(AW_NEVER)) {
        cut_scope = s;
        rc = aw_to_thread(work, j, abandon);
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT, "the scope's deadline made it a timeout");
    cr_assert_eq(atomic_load(&j->finished), 0);
    aw_err_clear();
    sem_post(&j->go);
    wait_for(&abandoned, 1);
    cr_assert_eq(atomic_load(&abandon_bad), 0);

    /* move-on: the block is left quietly */
    j = job_new(3, 1);
    aw_spawn(NULL, expirer, j, NULL);
    aw_with (aw_scope_t *s, aw_move_on_at(AW_NEVER)) {
        cut_scope = s;
        rc = aw_to_thread(work, j, abandon);
        cr_assert_eq(rc, -ECANCELED);
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(aw_status(), 0);
    sem_post(&j->go);
    wait_for(&abandoned, 2);

    /* a past deadline: the call never starts; abandon takes arg at once */
    j = job_new(3, 0);
    aw_with (aw_move_on_at(aw_now() - 1))
        cr_assert_eq(aw_to_thread(work, j, abandon_unstarted), -ECANCELED);
    cr_assert_eq(atomic_load(&abandoned), 3);

    /* a deadline that does not fire leaves the call alone */
    j = job_new(3, 0);
    aw_with (aw_fail_after(AW_SEC(3600)))
        cr_assert_eq(aw_to_thread(work, j, abandon), 0);
    cr_assert_eq(j->out, 6);
    cr_assert_eq(aw_status(), 0);
    job_free(j);
    return 0;
}

Test(thread, G13_deadlines_cut_a_cancellable_call_and_abandon_cleans_up) {
    aw_test_run(deadline_main, NULL, 0);
    cr_assert_eq(atomic_load(&abandoned), 3);
}

/* An uncancellable call inside a deadline finishes; the deadline then
 * acts at the next suspension point (G2: only suspension points act). */
static aw_scope_t *g2_scope;

/* Moves the caller's deadline into the past while the call runs, lets
 * the loop act on it, then releases the work. */
static int late_releaser(void *arg) {
    job_t *j = arg;
    wait_for(&j->started, 1);
    cr_assert_eq(aw_scope_reschedule(g2_scope, aw_now()), 0);
    for (int i = 0; i < 5; i++)
        aw_yield();
    sem_post(&j->go);
    return 0;
}

static int deadline_uncancellable_main(void *arg) {
    job_t *j = job_new(4, 1);
    aw_task_t *r;
    aw_spawn(NULL, late_releaser, j, &r);
    int rc = 1;
    aw_with (aw_scope_t *s, aw_move_on_at(AW_NEVER)) {
        g2_scope = s;
        /* the deadline passes during the call, which is not cancellable */
        rc = aw_to_thread(work, j, NULL);
        cr_assert_eq(rc, 0);
        cr_assert_eq(aw_yield(), -ECANCELED);
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(j->out, 8);
    cr_assert_eq(aw_status(), 0);
    aw_task_join(r);
    job_free(j);
    return 0;
}

Test(thread, G2_uncancellable_call_finishes_and_the_deadline_acts_at_the_next_checkpoint) {
    aw_test_run(deadline_uncancellable_main, NULL, 0);
}

/* abandon == NULL, but no worker free: while the call waits in the
 * queue nothing has run, so a cancel takes it back (Trio's to_thread is
 * cancellable while it waits for a thread): -ECANCELED, work never runs,
 * arg stays the caller's. One worker, held by a blocking job. */
static atomic_int queued_returned;
static int queued_rc;

static int queued_caller(void *arg) {
    queued_rc = aw_to_thread(work, arg, NULL);
    atomic_store(&queued_returned, 1);
    return 0;
}

static int queued_main(void *arg) {
    (void)arg;
    job_t *busy = job_new(1, 1), *k = job_new(2, 0);
    aw_task_t *holder, *c;
    cr_assert_eq(aw_spawn(NULL, queued_caller, busy, &holder), 0);
    wait_for(&busy->started, 1); /* the only worker is taken */
    cr_assert_eq(aw_spawn(NULL, queued_caller, k, &c), 0);
    for (int i = 0; i < 5; i++)
        aw_yield(); /* c's call is queued */
    atomic_store(&queued_returned, 0);
    aw_task_cancel(c);
    for (int i = 0; i < 20 && !atomic_load(&queued_returned); i++)
        aw_yield();
    cr_assert(atomic_load(&queued_returned), "the queued call was not cut by the cancel");
    cr_assert_eq(queued_rc, -ECANCELED);
    sem_post(&busy->go);
    cr_assert_eq(aw_task_join(c), 0);
    cr_assert_eq(aw_task_join(holder), 0);
    cr_assert_eq(atomic_load(&busy->finished), 1);
    cr_assert_eq(atomic_load(&k->started), 0, "the cancelled call's work ran");
    job_free(busy);
    job_free(k);
    return 0;
}

Test(thread, F1_a_cancel_takes_back_a_call_still_queued_for_a_thread) {
    aw_loop_opts_t o = {.threads = 1};
    cr_assert_eq(aw_main_opts(&o, queued_main, NULL), 0);
    cr_assert_eq(atomic_load(&abandoned), 0);
}

/* A cancelled caller (with abandon) can stay in the run queue behind
 * other ready tasks while the loop polls and drains the pool: the job's
 * done hook then abandons arg and frees the call's record before the
 * caller runs. The caller must not read that record any more (ASan saw
 * a heap-use-after-free; a reused block could send the caller into a
 * wait that never ends). Each run: the job finishes, the caller is
 * cancelled behind n yielding tasks. */
static atomic_int late_finished;
static sem_t late_go;
static int late_cancelled;

static void late_work(void *arg) {
    (void)arg;
    while (sem_wait(&late_go) != 0) {
    }
    atomic_store(&late_finished, 1);
}

static void late_abandon(void *arg) {
    (void)arg;
    atomic_fetch_add(&abandoned, 1);
}

static int late_caller(void *arg) {
    *(int *)arg = aw_to_thread(late_work, NULL, late_abandon);
    return 0;
}

static int yielder(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++)
        aw_yield();
    return 0;
}

static int late_main(void *arg) {
    (void)arg;
    sem_init(&late_go, 0, 0);
    for (int n = 0; n < 80; n++) {
        int rc = 1;
        aw_task_t *c;
        atomic_store(&late_finished, 0);
        cr_assert_eq(aw_spawn(NULL, late_caller, &rc, &c), 0);
        aw_yield();
        aw_yield(); /* its call is out */
        for (int i = 0; i < n; i++)
            cr_assert_eq(aw_spawn(NULL, yielder, NULL, NULL), 0);
        aw_yield();
        sem_post(&late_go);
        while (!atomic_load(&late_finished)) {
        }
        usleep(200); /* the worker puts it on the done list */
        aw_task_cancel(c);
        aw_yield();
        cr_assert_eq(aw_task_join(c), 0);
        cr_assert(rc == -ECANCELED || rc == 0, "run %d: %d", n, rc);
        late_cancelled += rc == -ECANCELED;
        aw_err_clear();
    }
    while (atomic_load(&abandoned) < late_cancelled)
        aw_sleep(AW_US(200));
    cr_assert_eq(atomic_load(&abandoned), late_cancelled, "each abandoned call once");
    sem_destroy(&late_go);
    return 0;
}

Test(thread, a_cancelled_caller_left_in_the_run_queue_reads_no_freed_record) {
    aw_test_run(late_main, NULL, 0);
}

/* Many concurrent calls from many tasks; a quarter cancelled. */
enum { NCALLS = 400 };
static job_t *jobs[NCALLS];
static atomic_int completed;

static int many_caller(void *arg) {
    int i = (int)(intptr_t)arg;
    job_t *j = jobs[i];
    int rc = aw_to_thread(work, j, abandon);
    if (rc == 0) {
        cr_assert_eq(j->out, 2 * i);
        job_free(j);
        atomic_fetch_add(&completed, 1);
    } else {
        cr_assert_eq(rc, -ECANCELED);
    }
    return 0;
}

static int many_main(void *arg) {
    loop_thread = pthread_self();
    aw_task_t *t[NCALLS];
    for (int i = 0; i < NCALLS; i++) {
        jobs[i] = job_new(i, i % 4 == 0);
        cr_assert_eq(aw_spawn(NULL, many_caller, (void *)(intptr_t)i, &t[i]), 0);
    }
    aw_yield(); /* every caller submitted its call */
    /* the blocked quarter holds the workers: cancel those callers (they
     * return at once), then release the work, then join the rest */
    for (int i = 0; i < NCALLS; i += 4)
        aw_task_cancel(t[i]);
    for (int i = 0; i < NCALLS; i += 4)
        cr_assert_eq(aw_task_join(t[i]), 0);
    for (int i = 0; i < NCALLS; i += 4)
        sem_post(&jobs[i]->go);
    for (int i = 0; i < NCALLS; i++)
        if (i % 4)
            cr_assert_eq(aw_task_join(t[i]), 0);
    wait_for(&abandoned, NCALLS / 4);
    cr_assert_eq(atomic_load(&completed), NCALLS - NCALLS / 4);
    cr_assert_eq(atomic_load(&abandon_bad), 0);
    return 0;
}

Test(thread, many_concurrent_calls_with_some_cancelled) {
    int fds = aw_test_fds();
    aw_test_run(many_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* L1: the close joins the pool's threads, so a work still running holds
 * it; after a second the close says why it waits instead of hanging
 * without a word, and still waits (the work may use what the program
 * frees after aw_main). */
#include "capture.h"
static atomic_int slow_done;
static void slow_work(void *arg) {
    usleep(1500 * 1000);
    atomic_store(&slow_done, 1);
}
static void slow_abandon(void *arg) {}
static int abandon_slow_main(void *arg) {
    aw_with (aw_move_on_after(AW_MS(10)))
        cr_assert_eq(aw_to_thread(slow_work, NULL, slow_abandon), -ECANCELED);
    return 0;
}
Test(thread, L1_a_close_held_by_a_running_thread_call_says_why) {
    char err[1024];
    cr_assert_eq(aw_test_main_stderr(abandon_slow_main, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(atomic_load(&slow_done), 1, "the close waited for the work");
    cr_assert(strstr(err, "the loop's close waits for 1 thread-pool call still running"),
              "stderr: %s", err);
}

static void quick_work(void *arg) { usleep(50 * 1000); }
static int abandon_quick_main(void *arg) {
    aw_with (aw_move_on_after(AW_MS(5)))
        cr_assert_eq(aw_to_thread(quick_work, NULL, slow_abandon), -ECANCELED);
    return 0;
}
Test(thread, L1_a_close_that_waits_briefly_for_a_thread_call_says_nothing) {
    char err[1024];
    cr_assert_eq(aw_test_main_stderr(abandon_quick_main, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(err[0], 0, "stderr: %s", err);
}
