/* tests for src/core/loops.c: a loop per core. Calls between loops
 * (results, errors, calls to self, many at once both ways), a cancel
 * while a caller awaits the answer (with and without abandon: the remote
 * task is cancelled, the caller's arg is safe, abandon runs once), a
 * loop closing with calls in flight (every caller answered -ESHUTDOWN,
 * none hangs), an answer to a caller whose loop closed (released on the
 * answering loop), stop from another thread, a failing loop stopping the
 * others. Loops run on real threads; the test body runs outside them, so
 * the loops record what they see and the body asserts after the join.
 * Waits are for conditions (events, counters), never for time. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    atomic_int started;
    atomic_int ran_on[4];       /* calls run, per loop */
    atomic_int abandoned;
    atomic_int abandoned_on;    /* the loop index abandon ran on */
    atomic_int remote_cancelled;
    atomic_int shutdowns;
    atomic_int other;
    int rc[8];
    char msg[256];
} seen;

static void reset(void) { memset(&seen, 0, sizeof seen); }

static int wait_for(atomic_int *v, int want) {
    while (atomic_load(v) < want) {
        int rc = aw_sleep(AW_MS(1));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- calls ---- */

typedef struct {
    int in, out, index;
} call_arg_t;

static int twice(void *arg) {
    call_arg_t *a = arg;
    a->index = aw_loops_index();
    atomic_fetch_add(&seen.ran_on[a->index], 1);
    if (aw_sleep(AW_MS(1)) < 0) /* it is a task: it may suspend */
        return aw_status();
    a->out = a->in * 2;
    return 7;
}

static int fails(void *arg) {
    (void)arg;
    return aw_raise(-EIO, "disk on fire");
}

static int idle_fn(void *arg, int index) {
    (void)arg;
    (void)index;
    atomic_fetch_add(&seen.started, 1);
    return aw_sleep_until(AW_NEVER); /* until aw_loops_stop */
}

static int calls_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    call_arg_t a = {.in = 21};
    seen.rc[0] = aw_loops_call(1, twice, &a, NULL);
    seen.rc[1] = a.out;
    seen.rc[2] = a.index;
    call_arg_t b = {.in = 5};
    seen.rc[3] = aw_loops_call(0, twice, &b, NULL); /* to itself */
    seen.rc[4] = b.index;
    seen.rc[5] = aw_loops_call(1, fails, NULL, NULL);
    const aw_err_t *e = aw_err_current();
    if (e)
        snprintf(seen.msg, sizeof seen.msg, "%s", e->msg);
    aw_err_clear();
    seen.rc[6] = aw_loops_call(2, twice, &a, NULL);
    aw_err_clear();
    seen.rc[7] = aw_loops_count() * 10 + aw_loops_index();
    aw_loops_stop(aw_loops_current());
    return 0;
}

Test(loops, a_call_runs_on_the_target_loop_and_returns_its_result) {
    reset();
    cr_assert_eq(aw_loops_run(2, calls_main, NULL, NULL), 0);
    cr_assert_eq(seen.rc[0], 7);
    cr_assert_eq(seen.rc[1], 42);
    cr_assert_eq(seen.rc[2], 1, "ran on loop %d", seen.rc[2]);
    cr_assert_eq(seen.rc[3], 7);
    cr_assert_eq(seen.rc[4], 0, "a call to itself runs on the caller's loop");
    cr_assert_eq(seen.rc[5], -EIO);
    cr_assert(strstr(seen.msg, "loop 1: disk on fire"), "message: %s", seen.msg);
    cr_assert_eq(seen.rc[6], -EINVAL);
    cr_assert_eq(seen.rc[7], 20);
}

/* Many calls at once, both ways. */
enum { MANY = 200 };
static int one_call(void *arg) {
    call_arg_t *a = arg;
    int to = 1 - aw_loops_index();
    int rc = aw_loops_call(to, twice, a, NULL);
    if (rc != 7 || a->out != a->in * 2 || a->index != to)
        atomic_fetch_add(&seen.other, 1);
    return 0;
}

static int many_main(void *arg, int index) {
    (void)arg;
    call_arg_t *as = calloc(MANY, sizeof *as);
    aw_with (aw_group_t *g, aw_group())
        for (int i = 0; i < MANY; i++) {
            as[i].in = i;
            aw_spawn(g, one_call, &as[i], NULL);
        }
    free(as);
    /* close only once the other loop is done calling this one */
    atomic_fetch_add(&seen.started, 1);
    return wait_for(&seen.started, 2);
}

Test(loops, many_calls_both_ways_at_once) {
    reset();
    cr_assert_eq(aw_loops_run(2, many_main, NULL, NULL), 0);
    cr_assert_eq(atomic_load(&seen.other), 0);
    cr_assert_eq(atomic_load(&seen.ran_on[0]), MANY);
    cr_assert_eq(atomic_load(&seen.ran_on[1]), MANY);
}

static int one_call_outside(void *arg) {
    (void)arg;
    cr_assert_eq(aw_loops_call(0, twice, NULL, NULL), -EPERM);
    aw_err_clear();
    cr_assert_eq(aw_loops_index(), -1);
    cr_assert_eq(aw_loops_count(), 0);
    cr_assert_null(aw_loops_current());
    return 0;
}

Test(loops, a_call_outside_a_set_is_eperm) {
    aw_test_run(one_call_outside, NULL, 0);
}

/* ---- cancel while awaiting the answer ---- */

static int sleeper(void *arg) {
    atomic_fetch_add(&seen.ran_on[aw_loops_index()], 1);
    int rc = aw_sleep_until(AW_NEVER);
    if (rc == -ECANCELED)
        atomic_fetch_add(&seen.remote_cancelled, 1);
    return rc;
}

/* Cancel scope s once the remote function runs (not after a time: on a
 * loaded machine it might not have started, and then it never runs). */
static int cancel_when_started(void *arg) {
    if (wait_for(&seen.ran_on[1], 1) == 0)
        aw_scope_cancel(arg);
    return 0;
}

static int cancel_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    call_arg_t a = {0};
    int rc = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope())
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, cancel_when_started, s, NULL);
        rc = aw_loops_call(1, sleeper, &a, NULL);
    }
    seen.rc[0] = rc;
    /* without abandon the caller waited for the remote task's end */
    seen.rc[1] = atomic_load(&seen.remote_cancelled);
    seen.rc[2] = aw_status();
    aw_loops_stop(aw_loops_current());
    return 0;
}

Test(loops, cancel_while_awaiting_cancels_the_remote_task_and_waits_for_it) {
    reset();
    cr_assert_eq(aw_loops_run(2, cancel_main, NULL, NULL), 0);
    cr_assert_eq(seen.rc[0], -ECANCELED);
    cr_assert_eq(seen.rc[1], 1, "the remote task was cancelled before the caller left");
    cr_assert_eq(seen.rc[2], 0, "the move-on scope absorbed its cancel");
}

static void free_abandon(void *arg) {
    atomic_store(&seen.abandoned_on, aw_loops_index());
    atomic_fetch_add(&seen.abandoned, 1);
    free(arg);
}

static int abandon_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    call_arg_t *a = calloc(1, sizeof *a);
    int rc = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope())
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, cancel_when_started, s, NULL);
        rc = aw_loops_call(1, sleeper, a, free_abandon);
    }
    seen.rc[0] = rc;
    /* the caller left at once; abandon runs here once fn has ended */
    if (wait_for(&seen.abandoned, 1) < 0)
        return aw_status();
    seen.rc[1] = atomic_load(&seen.remote_cancelled);
    aw_loops_stop(aw_loops_current());
    return 0;
}

Test(loops, cancel_with_abandon_leaves_at_once_and_abandon_runs_once_on_the_caller) {
    reset();
    cr_assert_eq(aw_loops_run(2, abandon_main, NULL, NULL), 0);
    cr_assert_eq(seen.rc[0], -ECANCELED);
    cr_assert_eq(seen.rc[1], 1);
    cr_assert_eq(atomic_load(&seen.abandoned), 1);
    cr_assert_eq(atomic_load(&seen.abandoned_on), 0);
}

/* A pending cancel: nothing is sent, abandon runs at once. */
static int pending_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        seen.rc[0] = aw_loops_call(1, twice, calloc(1, sizeof(call_arg_t)), free_abandon);
    }
    seen.rc[1] = atomic_load(&seen.ran_on[1]);
    aw_loops_stop(aw_loops_current());
    return 0;
}

Test(loops, a_pending_cancel_sends_nothing_and_abandon_runs_at_once) {
    reset();
    cr_assert_eq(aw_loops_run(2, pending_main, NULL, NULL), 0);
    cr_assert_eq(seen.rc[0], -ECANCELED);
    cr_assert_eq(seen.rc[1], 0);
    cr_assert_eq(atomic_load(&seen.abandoned), 1);
}

/* ---- loops closing ---- */

static aw_event_t first_arrived = AW_EVENT_INIT; /* loop 1's only */

static int slow(void *arg) {
    (void)arg;
    aw_event_set(&first_arrived);
    return aw_sleep_until(AW_NEVER);
}

static int inflight_caller(void *arg) {
    (void)arg;
    int rc = aw_loops_call(1, slow, NULL, NULL);
    if (rc == -ESHUTDOWN)
        atomic_fetch_add(&seen.shutdowns, 1);
    else
        atomic_fetch_add(&seen.other, 1);
    aw_err_clear();
    return 0;
}

static int inflight_main(void *arg, int index) {
    if (index == 1) {
        /* close as soon as a call runs here: the others are in flight */
        first_arrived = (aw_event_t)AW_EVENT_INIT;
        return aw_event_wait(&first_arrived);
    }
    aw_with (aw_group_t *g, aw_group())
        for (int i = 0; i < 50; i++)
            aw_spawn(g, inflight_caller, NULL, NULL);
    /* and once it has closed, a call fails at once */
    seen.rc[0] = aw_loops_call(1, slow, NULL, NULL);
    aw_err_clear();
    return 0;
}

Test(loops, a_loop_closing_with_calls_in_flight_answers_each_eshutdown) {
    reset();
    cr_assert_eq(aw_loops_run(2, inflight_main, NULL, NULL), 0);
    cr_assert_eq(atomic_load(&seen.shutdowns), 50);
    cr_assert_eq(atomic_load(&seen.other), 0);
    cr_assert_eq(seen.rc[0], -ESHUTDOWN);
}

/* The caller is cancelled with abandon and its loop closes; the remote
 * function finishes later (it shields itself): the answer finds the
 * caller's loop closed and is released on the answering loop. */
static int noop(void *arg) {
    (void)arg;
    return 0;
}

static int stubborn(void *arg) {
    (void)arg;
    atomic_fetch_add(&seen.ran_on[1], 1);
    aw_with (aw_scope_t *s, aw_shield(AW_SEC(30))) {
        /* answer only once loop 0's inbox has closed */
        for (;;) {
            int rc = aw_loops_call(0, noop, NULL, NULL);
            const aw_err_t *e = aw_err_current();
            int gone = rc == -ESHUTDOWN && e && strstr(e->msg, "has closed");
            aw_err_clear();
            if (gone || aw_sleep(AW_MS(1)) < 0)
                break;
        }
    }
    return 0;
}

static int orphan_main(void *arg, int index) {
    if (index == 1)
        return wait_for(&seen.abandoned, 1); /* then close */
    /* cancelled once stubborn runs: a cancel that came before it started
     * would skip it, and its answer could reach loop 0 while loop 0
     * still runs (abandon would then rightly run there; a 1 ms deadline
     * did that on a loaded machine) */
    aw_with (aw_scope_t *s, aw_cancel_scope())
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, cancel_when_started, s, NULL);
        seen.rc[0] = aw_loops_call(1, stubborn, calloc(1, 8), free_abandon);
    }
    return 0; /* loop 0 closes before the answer */
}

Test(loops, an_answer_to_a_closed_loop_is_released_on_the_answering_loop) {
    reset();
    atomic_store(&seen.abandoned_on, -7);
    cr_assert_eq(aw_loops_run(2, orphan_main, NULL, NULL), 0);
    cr_assert_eq(seen.rc[0], -ECANCELED);
    cr_assert_eq(atomic_load(&seen.abandoned), 1);
    cr_assert_eq(atomic_load(&seen.abandoned_on), 1);
}

/* ---- stop and failures ---- */

Test(loops, stop_from_another_thread_ends_every_loop_cleanly) {
    reset();
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 3, idle_fn, NULL, &(aw_loops_opts_t){.pin = true}), 0);
    while (atomic_load(&seen.started) < 3)
        usleep(1000);
    aw_loops_stop(ls);
    aw_loops_stop(ls); /* idempotent */
    cr_assert_eq(aw_loops_join(ls), 0);
}

Test(loops, stop_before_the_loops_start_still_stops_them) {
    reset();
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 2, idle_fn, NULL, NULL), 0);
    aw_loops_stop(ls);
    cr_assert_eq(aw_loops_join(ls), 0);
}

static int fail_main(void *arg, int index) {
    if (index == 1)
        return aw_raise(-EIO, "loop 1 gives up");
    return idle_fn(arg, index);
}

Test(loops, a_failing_loop_stops_the_others_and_its_status_is_returned) {
    reset();
    cr_assert_eq(aw_loops_run(2, fail_main, NULL, NULL), -EIO);
}

Test(loops, bad_arguments_are_einval) {
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 0, idle_fn, NULL, NULL), -EINVAL);
    cr_assert_eq(aw_loops_start(&ls, 1, NULL, NULL, NULL), -EINVAL);
    aw_err_clear();
}

/* ---- probes (loopsx) ---- */

#include <signal.h>

static void *send_sigint_when_started(void *arg) {
    int n = (int)(intptr_t)arg;
    for (int i = 0; atomic_load(&seen.started) < n; i++) {
        if (i == 5000)
            return NULL; /* the loops did not all start: no signal */
        usleep(1000);
    }
    usleep(20000);
    kill(getpid(), SIGINT);
    return NULL;
}

static char sig_logged[2048];
static void sig_hook(const char *msg, void *arg) {
    (void)arg;
    strncat(sig_logged, msg, sizeof sig_logged - strlen(sig_logged) - 1);
}

/* Ctrl-C stops a set started with cancel_on_signals, as it stops
 * aw_main: the option is one loop's per process, and every loop of the
 * set used to ask for it, so all but one failed to start (-EBUSY). */
Test(loops, L1_ctrl_c_with_cancel_on_signals_stops_every_loop_of_a_set) {
    reset();
    sig_logged[0] = 0;
    pthread_t th;
    pthread_create(&th, NULL, send_sigint_when_started, (void *)(intptr_t)3);
    aw_loops_opts_t o = {.loop = {.cancel_on_signals = true, .log = sig_hook}};
    int rc = aw_loops_run(3, idle_fn, NULL, &o);
    pthread_join(th, NULL);
    cr_assert_eq(rc, -ECANCELED, "rc %d, log: %s", rc, sig_logged);
    cr_assert(strstr(sig_logged, "INT received"), "%s", sig_logged);
    struct sigaction cur;
    sigaction(SIGINT, NULL, &cur);
    cr_assert_eq(cur.sa_handler, SIG_DFL, "the previous disposition is back");
}

/* A function whose cleanup fails once it is cancelled (G10). */
static int cleanup_fails(void *arg) {
    (void)arg;
    atomic_fetch_add(&seen.ran_on[aw_loops_index()], 1);
    aw_sleep_until(AW_NEVER);
    aw_err_clear();
    return aw_raise(-EIO, "cleanup failed");
}

static int g10_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    /* the same function called in this task, for reference */
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(20)))
        seen.rc[0] = cleanup_fails(NULL);
    seen.rc[1] = aw_status();
    const aw_err_t *e = aw_err_current();
    if (e)
        snprintf(seen.msg, 100, "%s", e->msg);
    aw_err_clear();
    atomic_store(&seen.ran_on[0], 0);
    /* and on loop 1, through a call */
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(20)))
        seen.rc[2] = aw_loops_call(1, cleanup_fails, NULL, NULL);
    seen.rc[3] = aw_status();
    e = aw_err_current();
    if (e)
        snprintf(seen.msg + 100, 100, "%s", e->msg);
    aw_err_clear();
    aw_loops_stop(aw_loops_current());
    return 0;
}

/* The call returns -ECANCELED (its contract), and the remote cleanup's
 * failure is still what the block ends with, as the same function
 * called in the task ends it: -EIO, not swallowed by the deadline. */
Test(loops, G10_a_remote_cleanup_failing_under_a_deadline_reaches_the_caller) {
    reset();
    cr_assert_eq(aw_loops_run(2, g10_main, NULL, NULL), 0);
    cr_assert_eq(seen.rc[0], -EIO);
    cr_assert_eq(seen.rc[1], -EIO, "%s", seen.msg);
    cr_assert_eq(seen.rc[2], -ECANCELED);
    cr_assert_eq(seen.rc[3], -EIO, "%s", seen.msg + 100);
    cr_assert(strstr(seen.msg + 100, "loop 1: cleanup failed"), "%s", seen.msg + 100);
}

/* A caller whose loop closes past its grace while its call, with arg on
 * its stack (abandon NULL), still runs elsewhere: the close waits for the
 * answer before the stacks go (the other loop used to write into an
 * unmapped stack: SIGSEGV). The caller itself stays alive past the grace
 * and never resumes (reported; its cancel record is not freed). */
static int writes_late(void *arg) {
    call_arg_t *a = arg;
    atomic_fetch_add(&seen.ran_on[1], 1);
    usleep(300000); /* blocks loop 1's thread: no cancel reaches it */
    a->out = 42;    /* into the caller's stack */
    atomic_fetch_add(&seen.other, 1);
    return 0;
}

static int borrowing_caller(void *arg) {
    (void)arg;
    call_arg_t a = {0};
    seen.rc[0] = aw_loops_call(1, writes_late, &a, NULL);
    seen.rc[1] = a.out;
    return 0;
}

static int late_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    aw_spawn(NULL, borrowing_caller, NULL, NULL);
    wait_for(&seen.ran_on[1], 1);
    return 0; /* close: the caller is cancelled and waits, past the grace */
}

Test(loops, L1_a_caller_whose_loop_closes_keeps_its_borrowed_arg_until_the_answer) {
    reset();
    aw_loops_opts_t o = {.loop = {.shutdown_grace = AW_MS(30), .log = sig_hook}};
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 2, late_main, NULL, &o), 0);
    while (atomic_load(&seen.other) < 1)
        usleep(1000);
    aw_loops_stop(ls);
    aw_loops_join(ls); /* -EBUSY: loop 0 closed with its caller alive */
    cr_assert_eq(atomic_load(&seen.other), 1, "fn wrote into arg");
    cr_assert(strstr(sig_logged, "loop 0's close waits for 1 call"), "%s", sig_logged);
}

/* Each loop's main task awaits a call into the other when the stop
 * comes: whichever loop sees the stop first, the stop is a success. The
 * loop that closes first cancels the other's call with its shutdown;
 * that -ESHUTDOWN used to reach the other loop's fn before its own stop
 * notice, failing the set's join on a plain stop. */
static int cross_main(void *arg, int index) {
    (void)arg;
    atomic_fetch_add(&seen.started, 1);
    int rc = aw_loops_call(1 - index, sleeper, NULL, NULL);
    return rc;
}

Test(loops, L1_a_stop_while_each_loop_awaits_the_other_is_a_success) {
    /* the race (the other loop closed by the same stop answers before
     * this loop's stop notice arrives) came about once in 200 rounds */
    for (int i = 0; i < 400; i++) {
        reset();
        aw_loops_t *ls;
        cr_assert_eq(aw_loops_start(&ls, 2, cross_main, NULL, NULL), 0);
        while (atomic_load(&seen.ran_on[0]) + atomic_load(&seen.ran_on[1]) < 2)
            usleep(100);
        aw_loops_stop(ls);
        cr_assert_eq(aw_loops_join(ls), 0, "round %d", i);
    }
}

/* SIGTERM while every loop awaits a call into the next one. */
static int ring_main(void *arg, int index) {
    (void)arg;
    atomic_fetch_add(&seen.started, 1);
    int rc = aw_loops_call((index + 1) % aw_loops_count(), sleeper, NULL, NULL);
    if (rc == -ECANCELED)
        atomic_fetch_add(&seen.other, 1);
    return rc;
}

static void *send_sigterm_when_running(void *arg) {
    (void)arg;
    for (int i = 0; atomic_load(&seen.ran_on[0]) + atomic_load(&seen.ran_on[1]) +
                        atomic_load(&seen.ran_on[2]) < 3; i++) {
        if (i == 5000)
            return NULL;
        usleep(1000);
    }
    kill(getpid(), SIGTERM);
    return NULL;
}

Test(loops, L1_sigterm_while_calls_are_in_flight_stops_the_set) {
    reset();
    sig_logged[0] = 0;
    pthread_t th;
    pthread_create(&th, NULL, send_sigterm_when_running, NULL);
    aw_loops_opts_t o = {.loop = {.cancel_on_signals = true, .log = sig_hook}};
    int rc = aw_loops_run(3, ring_main, NULL, &o);
    pthread_join(th, NULL);
    cr_assert_eq(rc, -ECANCELED, "%s", sig_logged);
    cr_assert(strstr(sig_logged, "TERM received"), "%s", sig_logged);
    cr_assert_eq(atomic_load(&seen.remote_cancelled), 3, "every remote task was cancelled");
    cr_assert_eq(atomic_load(&seen.other), 3, "every caller saw -ECANCELED");
}

/* The same with a call to the caller's own loop whose fn outlives the
 * grace: fn's task dies with the loop, so the close has nothing to wait
 * for (it must not wait for an answer that can never come). */
static int shielded_long(void *arg) {
    (void)arg;
    atomic_fetch_add(&seen.ran_on[aw_loops_index()], 1);
    aw_with (aw_shield(AW_NEVER))
        aw_sleep(AW_SEC(3600));
    return 0;
}

static int self_caller(void *arg) {
    (void)arg;
    call_arg_t a = {0};
    seen.rc[0] = aw_loops_call(aw_loops_index(), shielded_long, &a, NULL);
    return 0;
}

static int self_late_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    aw_spawn(NULL, self_caller, NULL, NULL);
    wait_for(&seen.ran_on[0], 1);
    return 0;
}

Test(loops, L1_a_call_to_its_own_loop_outliving_the_grace_does_not_hold_the_close) {
    reset();
    aw_loops_opts_t o = {.loop = {.shutdown_grace = AW_MS(30), .log = sig_hook}};
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 2, self_late_main, NULL, &o), 0);
    while (atomic_load(&seen.ran_on[0]) < 1)
        usleep(1000);
    aw_loops_stop(ls);
    cr_assert_eq(aw_loops_join(ls), -EBUSY, "loop 0 closed with tasks alive: %s", sig_logged);
}

/* A caller that left with abandon; fn's task on the other loop outlives
 * that loop's grace: the close answers it, so abandon still runs once. */
static int abandon_late_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    aw_with (aw_scope_t *s, aw_cancel_scope())
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, cancel_when_started, s, NULL);
        seen.rc[0] = aw_loops_call(1, shielded_long, calloc(1, 8), free_abandon);
    }
    atomic_store(&seen.other, 1);
    return idle_fn(arg, index);
}

Test(loops, L1_abandon_runs_once_when_the_target_closes_with_fn_alive) {
    reset();
    aw_loops_opts_t o = {.loop = {.shutdown_grace = AW_MS(30), .log = sig_hook}};
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 2, abandon_late_main, NULL, &o), 0);
    while (atomic_load(&seen.other) < 1)
        usleep(1000);
    aw_loops_stop(ls);
    cr_assert_eq(aw_loops_join(ls), -EBUSY, "loop 1 closed with fn's task alive");
    cr_assert_eq(seen.rc[0], -ECANCELED);
    cr_assert_eq(atomic_load(&seen.abandoned), 1, "abandon ran once");
}

/* A deadline passes while the target loop is too busy to start fn (its
 * thread is blocked): fn never runs, the caller gets -ECANCELED and its
 * move-on scope absorbs it (F3: a call cancelled before it started runs
 * none of its code). */
static int release_later(void *arg) {
    (void)arg;
    int rc = aw_sleep(AW_MS(40));
    atomic_store(&seen.other, 1);
    return rc;
}

static int busy_main(void *arg, int index) {
    if (index == 1) {
        atomic_fetch_add(&seen.started, 1);
        while (atomic_load(&seen.other) == 0)
            usleep(1000); /* loop 1's thread is busy: nothing runs there */
        return idle_fn(arg, index);
    }
    while (atomic_load(&seen.started) < 1)
        aw_sleep(AW_MS(1));
    call_arg_t a = {.in = 1};
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, release_later, NULL, NULL); /* after the deadline, in timer order */
        aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(20)))
            seen.rc[0] = aw_loops_call(1, twice, &a, NULL);
    }
    seen.rc[1] = aw_status();
    seen.rc[2] = atomic_load(&seen.ran_on[1]);
    aw_loops_stop(aw_loops_current());
    return 0;
}


Test(loops, F3_a_call_whose_deadline_passes_before_it_starts_never_runs) {
    reset();
    cr_assert_eq(aw_loops_run(2, busy_main, NULL, NULL), 0);
    cr_assert_eq(seen.rc[0], -ECANCELED);
    cr_assert_eq(seen.rc[1], 0, "the move-on scope absorbed its cancel");
    cr_assert_eq(seen.rc[2], 0, "fn never ran");
}

/* ---- a remote failure arrives whole ---- */

static int insert_fails(void *arg) {
    (void)arg;
    aw_raise(-ECONNRESET, "the first try's connection was reset");
    aw_raise(-EREMOTEIO, "insert into users: duplicate key");
    aw_err_set_origin(AW_ORIGIN_POSTGRES, 0, "23505");
    return aw_status();
}

static struct {
    int rc, count, origin, has_reset, handled;
    char sqlstate[6];
    char top[128], below[128];
} whole;

static int whole_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    aw_raise(-EPIPE, "pending before the call");
    whole.rc = aw_loops_call(1, insert_fails, NULL, NULL);
    const aw_err_t *e = aw_err_current();
    whole.count = aw_err_count(e);
    whole.origin = e ? e->origin : -1;
    snprintf(whole.sqlstate, sizeof whole.sqlstate, "%s", e ? e->sqlstate : "");
    snprintf(whole.top, sizeof whole.top, "%s", e ? e->msg : "");
    const aw_err_t *r = aw_err_find(e, -ECONNRESET);
    whole.has_reset = r != NULL;
    snprintf(whole.below, sizeof whole.below, "%s", r ? r->msg : "");
    /* handled as the same call made in this task would be (err.h) */
    if (e && e->origin == AW_ORIGIN_POSTGRES && !strcmp(e->sqlstate, "23505")) {
        aw_err_clear();
        whole.handled = 1;
    }
    aw_loops_stop(aw_loops_current());
    return 0;
}

/* asyncio's run_coroutine_threadsafe and Trio's from_thread re-raise the
 * exception object itself: its context and its attributes arrive. So does
 * a remote error here: the whole chain, each record's origin and SQLSTATE,
 * above what the caller had pending. */
Test(loops, a_remote_failure_arrives_with_its_chain_and_origin) {
    memset(&whole, 0, sizeof whole);
    cr_assert_eq(aw_loops_run(2, whole_main, NULL, NULL), 0);
    cr_assert_eq(whole.rc, -EREMOTEIO);
    cr_assert(strstr(whole.top, "loop 1: insert into users: duplicate key"), "%s", whole.top);
    cr_assert_eq(whole.origin, AW_ORIGIN_POSTGRES);
    cr_assert_str_eq(whole.sqlstate, "23505");
    cr_assert(whole.has_reset, "the remote error's context was dropped");
    cr_assert(strstr(whole.below, "the first try's connection was reset"), "%s", whole.below);
    cr_assert_eq(whole.count, 3, "remote 2 above the caller's own EPIPE: %d", whole.count);
    cr_assert(whole.handled);
}

/* The same for a task group's failure run on another loop: its members
 * (every child's failure) arrive with it, as an ExceptionGroup's
 * exceptions do through run_coroutine_threadsafe. */
static int child_eio(void *arg) {
    (void)arg;
    return aw_raise(-EIO, "child one failed");
}
static int child_eperm(void *arg) {
    (void)arg;
    return aw_raise(-EPERM, "child two failed");
}
static int two_children_fail(void *arg) {
    (void)arg;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, child_eio, NULL, NULL);
        aw_spawn(g, child_eperm, NULL, NULL);
    }
    return aw_status();
}

static struct {
    int rc, members, count;
    int codes[2];
} grp;

static int group_main(void *arg, int index) {
    if (index != 0)
        return idle_fn(arg, index);
    grp.rc = aw_loops_call(1, two_children_fail, NULL, NULL);
    const aw_err_t *e = aw_err_current();
    grp.count = aw_err_count(e);
    for (const aw_err_t *m = e ? e->members : NULL; m; m = m->next)
        if (grp.members < 2)
            grp.codes[grp.members++] = m->code;
    aw_err_clear();
    aw_loops_stop(aw_loops_current());
    return 0;
}

Test(loops, a_remote_group_failure_arrives_with_every_member) {
    memset(&grp, 0, sizeof grp);
    cr_assert_eq(aw_loops_run(2, group_main, NULL, NULL), 0);
    cr_assert_eq(grp.rc, -AW_EGROUP);
    cr_assert_eq(grp.members, 2, "members: %d", grp.members);
    cr_assert((grp.codes[0] == -EIO && grp.codes[1] == -EPERM) ||
              (grp.codes[0] == -EPERM && grp.codes[1] == -EIO));
    cr_assert_eq(grp.count, 3, "the group's record and its two members: %d", grp.count);
}
