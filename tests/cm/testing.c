/* tests/cm/testing.c: the cancel-every-point checker (awith/testing.h)
 * over every seed scenario (the programs in examples/) and a few
 * scenarios of the managers toolkit: for each, a cancel and a deadline
 * expiry are injected at every cancellation point in turn, and after
 * each run every manager entered must have exited exactly once, no fd
 * may leak, no task outlive the loop, locks and semaphores must be back
 * where they were. The summary line of each scenario (stderr) says how
 * many points were exercised. */
#define AW_EXAMPLE_NO_MAIN
#include "../../examples/db_connection.c"
#include "../../examples/connection.c"
#include "../../examples/exit_args.c"
#include "../../examples/nested.c"
#include "../../examples/workers_gather.c"
#include "../../examples/timeout.c"
#include "../../examples/gencm_connection.c"
#include "../../examples/gencm_errors.c"
#include "../../examples/workers_lock.c"
#include "../../examples/aclose.c"
#include "../../examples/class_manager.c"
#include "../../examples/decorator.c"
#include "../../examples/error_handling.c"
#include "../../examples/combined.c"
#include "../../examples/generators.c"

#include "testutil.h"
#include <awith/testing.h>

#include <unistd.h>

/* Every cancel and deadline was injected: the scenario is deterministic
 * enough that run k reaches point k (a timing-dependent scenario would
 * count its shortfall in `missed`, which the test allows for below). */
static void check(aw_task_fn fn, const char *name, aw_lock_t *lock, aw_sem_t *sem,
                  int min_points) {
    aw_testing_t h = {.name = name, .fn = fn, .locks = {lock}, .sems = {sem}, .mute_stdout = true};
    aw_testing_report_t r;
    int v = aw_testing_run(&h, &r);
    cr_assert_eq(v, 0, "%s: %d invariant violation(s), listed on stderr", name, v);
    cr_assert_geq(r.points, min_points, "%s: %d cancellation points counted", name, r.points);
    cr_assert_eq(r.cancels + r.deadlines + r.missed, 2 * r.points);
    cr_assert_geq(r.cancels + r.deadlines, r.points, "%s: most runs must inject", name);
    cr_assert_gt(r.enters, 0);
}

Test(testing, seed_000_db_connection) { check(example_db_connection, "db_connection", NULL, NULL, 1); }
Test(testing, seed_001_connection) { check(example_connection, "connection", NULL, NULL, 1); }
Test(testing, seed_002_exit_args) { check(example_exit_args, "exit_args", NULL, NULL, 1); }
/* no suspension at all: nothing to inject, still every manager exits */
Test(testing, seed_002_nested) { check(example_nested, "nested", NULL, NULL, 0); }
Test(testing, seed_002_workers_gather) { check(example_workers_gather, "workers_gather", NULL, NULL, 1); }
Test(testing, seed_002_timeout) { check(example_timeout, "timeout", NULL, NULL, 1); }

/* the examples of the managers toolkit */
Test(testing, seed_002_gencm_connection) { check(example_gencm_connection, "gencm_connection", NULL, NULL, 1); }
/* no suspension point either (as in the seed): the enters and exits are still checked */
Test(testing, seed_002_gencm_errors) { check(example_gencm_errors, "gencm_errors", NULL, NULL, 0); }
Test(testing, seed_002_workers_lock) { check(example_workers_lock, "workers_lock", &shared_resource, NULL, 1); }
Test(testing, seed_002_aclose) { check(example_aclose, "aclose", NULL, NULL, 1); }
Test(testing, seed_003_class_manager) { check(example_class_manager, "class_manager", NULL, NULL, 1); }
Test(testing, seed_003_decorator) { check(example_decorator, "decorator", NULL, NULL, 1); }
Test(testing, seed_003_error_handling) { check(example_error_handling, "error_handling", NULL, NULL, 1); }
Test(testing, seed_003_combined) { check(example_combined, "combined", NULL, NULL, 1); }
Test(testing, seed_004_generators) { check(example_generators, "generators", NULL, NULL, 1); }

/* Semaphores: a pool of 2 permits shared by 4 workers, each also
 * waiting on an event set by the body and taking a turn on a lock. */
static aw_sem_t pool = AW_SEM_INIT("pool", 2, 2);
static aw_lock_t turn = AW_LOCK_INIT("turn");

static int pooled(void *arg) {
    aw_event_t *ready = arg;
    if (aw_event_wait(ready) < 0)
        return aw_status();
    aw_with (aw_sem_held(&pool))
    aw_with (aw_locked(&turn)) {
        aw_sleep_ms(1);
    }
    return aw_status();
}

static int sync_scenario(void *arg) {
    aw_event_t ready = AW_EVENT_INIT;
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 4; i++)
            aw_spawn(g, pooled, &ready, NULL);
        aw_yield();
        aw_event_set(&ready);
    }
    return aw_status();
}

Test(testing, semaphore_lock_and_event_workers) {
    aw_testing_t h = {.name = "sync", .fn = sync_scenario, .locks = {&turn}, .sems = {&pool}};
    aw_testing_report_t r;
    cr_assert_eq(aw_testing_run(&h, &r), 0);
    cr_assert_geq(r.points, 8);
    cr_assert_eq(r.missed, 0);
}

/* The harness itself can fail: a scenario that releases its resources
 * only when its sleep succeeds is caught leaking on the injected runs. */
static aw_lock_t leaky_lock = AW_LOCK_INIT("leaky");
static aw_sem_t leaky_sem = AW_SEM_INIT("leaky", 1, 1);

static void leaky_reset(void *arg) {
    leaky_lock = (aw_lock_t)AW_LOCK_INIT("leaky"); /* a previous run leaked them */
    leaky_sem = (aw_sem_t)AW_SEM_INIT("leaky", 1, 1);
}

static int leaky(void *arg) {
    if (aw_lock_acquire(&leaky_lock) < 0)
        return aw_status();
    if (aw_sem_acquire(&leaky_sem) < 0)
        return aw_status(); /* forgets the lock */
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    if (aw_sleep_ms(1) < 0)
        return aw_status(); /* forgets the pipe, the permit and the lock */
    aw_sem_release(&leaky_sem);
    aw_lock_release(&leaky_lock);
    close(p[0]);
    close(p[1]);
    return 0;
}

Test(testing, reports_leaked_fds_permits_and_held_locks) {
    aw_testing_t h = {.name = "leaky (violations expected)", .fn = leaky, .reset = leaky_reset,
                      .locks = {&leaky_lock}, .sems = {&leaky_sem}};
    aw_testing_report_t r;
    int v = aw_testing_run(&h, &r);
    cr_assert_eq(r.points, 3); /* the lock's checkpoint, the semaphore's, the sleep */
    /* point 1: nothing taken yet, clean; point 2: the lock leaks;
     * point 3: the lock, the permit and two fds leak. In both modes. */
    cr_assert_eq(v, 2 * (0 + 1 + 3), "violations: %d", v);
    cr_assert_eq(r.cancels + r.deadlines, 6);
}

/* One run at one point, with a hook of the user's own chained after the
 * checker's: the result says what the scenario returned. */
static int two_sleeps(void *arg) {
    aw_with (aw_locked(&turn)) {
        if (aw_sleep_ms(1) < 0 || aw_yield() < 0)
            aw_leave();
    }
    return aw_status();
}

static void count_points(const aw_trace_event_t *ev, void *arg) {
    if (ev->kind == AW_TRACE_POINT)
        ++*(int *)arg;
}

Test(testing, run_once_injects_at_one_point_and_chains_the_users_hook) {
    int seen = 0;
    aw_testing_t h = {.name = "two_sleeps", .fn = two_sleeps, .locks = {&turn},
                      .trace = count_points, .trace_arg = &seen};
    aw_testing_result_t res;
    cr_assert_eq(aw_testing_run_once(&h, AW_TESTING_NONE, 0, &res), 0);
    cr_assert_eq(res.points, 3); /* the lock, the sleep, the yield */
    cr_assert_eq(seen, 3);
    cr_assert_eq(res.status, 0);
    cr_assert_eq(res.enters, 2); /* the checker's own scope and the lock */
    cr_assert_eq(aw_testing_run_once(&h, AW_TESTING_CANCEL, 2, &res), 0);
    cr_assert(res.injected);
    cr_assert_eq(res.status, -ECANCELED);
    cr_assert_eq(res.err, -ECANCELED);
    cr_assert_eq(aw_testing_run_once(&h, AW_TESTING_DEADLINE, 3, &res), 0);
    cr_assert(res.injected);
    cr_assert_eq(res.err, -ECANCELED); /* the scope turns it into -ETIMEDOUT on the way out */
    cr_assert_eq(aw_testing_run_once(&h, AW_TESTING_CANCEL, 4, &res), 0);
    cr_assert(!res.injected);
}

static int nested_run(void *arg) {
    aw_testing_t h = {.name = "inner", .fn = two_sleeps};
    return aw_testing_run_once(&h, AW_TESTING_NONE, 0, NULL);
}

Test(testing, refuses_to_run_inside_a_loop) {
    cr_assert_eq(aw_main(nested_run, NULL), -EINVAL);
}

/* keep_stacks: a run leaves its loop's coroutine stacks for the next run
 * on this thread (each Criterion test runs in a process of its own, so
 * every test starts with none kept). 70 tasks take two slabs of 64: a run
 * after them starts with 128 stacks, a fresh loop with one slab. */
static int yield_once(void *arg) {
    (void)arg;
    return aw_yield();
}

static int seventy_tasks(void *arg) {
    (void)arg;
    aw_with (aw_group_t *g, aw_group())
        for (int i = 0; i < 70; i++)
            if (aw_spawn(g, yield_once, NULL, NULL) < 0)
                aw_leave();
    return aw_status();
}

static int count_stacks(void *arg) {
    aw_loop_stats_t s;
    aw_loop_stats(&s);
    *(size_t *)arg = s.stacks_live + s.stacks_cached;
    return 0;
}

Test(testing, keep_stacks_hands_a_runs_stacks_to_the_next) {
    size_t n = 0;
    aw_testing_t many = {.name = "many", .fn = seventy_tasks, .keep_stacks = true};
    aw_testing_t count = {.name = "count", .fn = count_stacks, .arg = &n, .keep_stacks = true};
    cr_assert_eq(aw_testing_run_once(&count, AW_TESTING_NONE, 0, NULL), 0);
    cr_assert_eq(n, 64, "a fresh loop maps one slab");
    cr_assert_eq(aw_testing_run_once(&many, AW_TESTING_NONE, 0, NULL), 0);
    cr_assert_eq(aw_testing_run_once(&count, AW_TESTING_NONE, 0, NULL), 0);
    cr_assert_eq(n, 128, "the run after 70 tasks starts with their stacks");
    cr_assert_eq(aw_testing_run_once(&count, AW_TESTING_NONE, 0, NULL), 0);
    cr_assert_eq(n, 128, "and hands them on");
}

Test(testing, run_keeps_stacks_for_its_own_runs_only) {
    size_t n = 0;
    aw_testing_t many = {.name = "many", .fn = seventy_tasks, .mute_stdout = true};
    aw_testing_t count = {.name = "count", .fn = count_stacks, .arg = &n};
    aw_testing_report_t r;
    cr_assert_eq(aw_testing_run(&many, &r), 0);
    cr_assert_gt(r.points, 0);
    cr_assert_eq(aw_testing_run_once(&count, AW_TESTING_NONE, 0, NULL), 0);
    cr_assert_eq(n, 64, "nothing outlives aw_testing_run without keep_stacks");
}

/* A semaphore made without a name is reported as '?', never through
 * "%s" with NULL ("(null)" with glibc, undefined elsewhere). */
static aw_sem_t anon_sem = AW_SEM_INIT(NULL, 1, 1);
static void anon_reset(void *arg) { anon_sem = (aw_sem_t)AW_SEM_INIT(NULL, 1, 1); }
static int anon_leaks(void *arg) {
    return aw_sem_acquire(&anon_sem); /* never given back */
}
Test(testing, a_nameless_semaphore_is_reported_as_a_question_mark) {
    char *buf = NULL;
    size_t len = 0;
    FILE *log = open_memstream(&buf, &len);
    aw_testing_t h = {.name = "anon", .fn = anon_leaks, .reset = anon_reset,
                      .sems = {&anon_sem}, .log = log};
    cr_assert_eq(aw_testing_run_once(&h, AW_TESTING_NONE, 0, NULL), 1);
    fclose(log);
    cr_assert(strstr(buf, "semaphore '?' has 0 permits (had 1)"), "%s", buf);
    free(buf);
}
