/* awith/testing.h: test your own managers the way awith tests its own.
 *
 * A scenario is a task function that uses your managers. The checker runs
 * it as the main task of a fresh loop, inside a fail-at scope of its own
 * (with no deadline), and after the loop is closed checks that
 *   - every manager entered (aw_with blocks, exit-stack entries, scopes,
 *     groups, locks, generator managers...) exited exactly once, and none
 *     exited without being entered (seen through the trace hook,
 *     awith/trace.h);
 *   - no file descriptor leaked (/proc/self/fd counted before and after);
 *   - nothing was reported at loop close: aw_main returned 0 (no task
 *     outlived the scenario, no generator left open, no failure of a task
 *     of the root group);
 *   - every lock in `locks` is free with no waiter, every semaphore in
 *     `sems` is back at its value before the run, with no waiter.
 * Memory leaks are ASan/LSan's job: build your tests with
 * -fsanitize=address and they are checked too.
 *
 * aw_testing_run is "cancel it at each of its suspension points in turn":
 *   1. one run counting the cancellation points reached by every task of
 *      the loop (N; aw_checkpoint and every cancellable wait, those of
 *      children and generators included);
 *   2. N runs, the k-th cancelling the scenario's scope at point k (the
 *      point itself sees the cancel);
 *   3. N runs, the k-th moving the scope's deadline to "now" at point k
 *      (the point sees a deadline expire: -ECANCELED, and the scope makes
 *      it -ETIMEDOUT).
 * A scenario whose path depends on timing may reach fewer points in a run
 * than in the counting run; such a run injects nothing and is counted in
 * `missed`.
 *
 *   static int scenario(void *arg) {
 *       aw_with (conn_t *c, my_conn(arg)) { ... }
 *       return aw_status();
 *   }
 *   aw_testing_t t = {.name = "conn", .fn = scenario, .locks = {&my_lock}};
 *   aw_testing_report_t r;
 *   assert(aw_testing_run(&t, &r) == 0);       // 0 violations
 *
 * Each violation is one line on `log` ("testing: NAME: cancel at point K:
 * manager 'conn' entered at x.c:12 never exited"), and a summary line per
 * aw_testing_run. Whatever the scenario leaves with (its status, an error
 * the injected cancel caused) is not a violation: the run is judged by
 * what it left behind, and the result says what it returned.
 *
 * Both functions run a loop on the calling thread: call them outside any
 * loop (-EINVAL inside one). They never suspend. Nothing is allocated
 * that outlives the call, unless `keep_stacks` is set: then the loop's
 * coroutine stacks are kept for the next run on this thread (unmapped
 * when the thread exits), which makes a short run several times cheaper
 * (a fuzzer's thousands of aw_testing_run_once calls). The scenario may install no trace hook of its
 * own (the checker's would be replaced): give yours in `trace` instead,
 * it sees every event after the checker. */
#ifndef AWITH_TESTING_H
#define AWITH_TESTING_H

#include <awith/loop.h>
#include <awith/lock.h>
#include <awith/sem.h>
#include <awith/trace.h>
#include <stdio.h>

enum { AW_TESTING_MAX_OBJS = 8 };

typedef enum aw_testing_inject {
    AW_TESTING_NONE,     /* run as is (counts the points) */
    AW_TESTING_CANCEL,   /* cancel the scenario's scope at point k */
    AW_TESTING_DEADLINE, /* move the scope's deadline to now at point k */
} aw_testing_inject_t;

typedef struct aw_testing {
    const char *name;                      /* for the log lines */
    aw_task_fn fn;                         /* the scenario */
    void *arg;
    void (*reset)(void *arg);              /* optional: before each run, outside the loop */
    aw_lock_t *locks[AW_TESTING_MAX_OBJS]; /* checked free after each run (NULL-ended) */
    aw_sem_t *sems[AW_TESTING_MAX_OBJS];   /* checked restored after each run (NULL-ended) */
    aw_trace_fn trace;                     /* optional: sees every event, after the checker */
    void *trace_arg;
    const aw_loop_opts_t *opts;            /* optional: the loop's options */
    FILE *log;                             /* violations and summary; NULL: stderr */
    bool mute_stdout;                      /* the scenario's stdout goes to /dev/null */
    bool keep_stacks;                      /* reuse coroutine stacks across calls (see above) */
} aw_testing_t;

/* What one run did. */
typedef struct aw_testing_result {
    int points;       /* cancellation points reached (every task of the loop) */
    bool injected;    /* the injection happened (point k was reached) */
    int status;       /* what the scenario returned */
    int err;          /* the code of the error pending when it returned, or 0 */
    long enters;      /* managers entered */
    int violations;   /* invariants broken by this run */
} aw_testing_result_t;

/* Totals of aw_testing_run. */
typedef struct aw_testing_report {
    int points;       /* N: points of the counting run */
    int cancels;      /* runs where a cancel was injected */
    int deadlines;    /* runs where a deadline expiry was injected */
    int missed;       /* runs that ended before their point k */
    long enters;      /* managers entered, over all runs */
    int violations;   /* invariants broken, over all runs */
} aw_testing_report_t;

/* Run the scenario 1 + 2N times (see above); `r` (may be NULL) gets the
 * totals. Returns the number of violations (0: every run kept every
 * invariant), or -EINVAL (inside a loop, no fn) or -errno (stdout could
 * not be muted). */
AW_API int aw_testing_run(const aw_testing_t *t, aw_testing_report_t *r);

/* One run: `how` at point k (k >= 1; ignored for AW_TESTING_NONE). `res`
 * (may be NULL) gets what it did. Returns its number of violations, or
 * -EINVAL / -errno as above. The building block of aw_testing_run, for a
 * fuzzer or a test that wants one particular point. */
AW_API int aw_testing_run_once(const aw_testing_t *t, aw_testing_inject_t how, int k,
                               aw_testing_result_t *res);

#endif
