/* tests for src/loop/workers.c: the thread pool behind aw_to_thread (lazy
 * start, size, stop). Real pthreads; waits are for conditions, never for
 * a time. */
#include "testutil.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* Threads of this process once a sanitizer's helper thread (TSan starts
 * one at the first pthread_create) exists, and once the probe thread is
 * gone from /proc/self/task, not only joined. */
static void *note_tid(void *p) {
    *(pid_t *)p = gettid();
    return NULL;
}
static int nthreads_settled(void) {
    pthread_t th;
    pid_t tid = 0;
    char path[64];
    pthread_create(&th, NULL, note_tid, &tid);
    pthread_join(th, NULL);
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    for (int i = 0; i < 5000 && access(path, F_OK) == 0; i++)
        usleep(1000);
    return aw_test_threads();
}


typedef struct { sem_t go; atomic_int started, finished; } gate_t;

static gate_t gates[3];
static int threads_before;

static void gated(void *arg) {
    gate_t *g = arg;
    atomic_store(&g->started, 1);
    while (sem_wait(&g->go) != 0) {
    }
    atomic_store(&g->finished, 1);
}

static int call_gated(void *arg) { return aw_to_thread(gated, arg, NULL); }

static int pool_main(void *arg) {
    cr_assert_eq(aw_test_threads(), threads_before, "no worker before the first call");
    aw_task_t *t[3];
    for (int i = 0; i < 3; i++) {
        sem_init(&gates[i].go, 0, 0);
        aw_spawn(NULL, call_gated, &gates[i], &t[i]);
    }
    while (!(atomic_load(&gates[0].started) && atomic_load(&gates[1].started)))
        aw_sleep(AW_US(200));
    cr_assert_eq(aw_test_threads(), threads_before + 2, "threads = 2 workers, started lazily");
    for (int i = 0; i < 50; i++)
        aw_yield();
    cr_assert_eq(atomic_load(&gates[2].started), 0, "the third call waits for a worker");
    sem_post(&gates[0].go);
    cr_assert_eq(aw_task_join(t[0]), 0);
    while (!atomic_load(&gates[2].started))
        aw_sleep(AW_US(200));
    sem_post(&gates[1].go);
    sem_post(&gates[2].go);
    cr_assert_eq(aw_task_join(t[1]), 0);
    cr_assert_eq(aw_task_join(t[2]), 0);
    return 0;
}

Test(workers, starts_lazily_with_the_configured_size_and_stops_with_the_loop) {
    threads_before = nthreads_settled();
    aw_loop_opts_t o = {.threads = 2};
    cr_assert_eq(aw_main_opts(&o, pool_main, NULL), 0);
    cr_assert_eq(aw_test_threads_await(threads_before), threads_before, "the workers were joined");
}

static int no_pool_main(void *arg) {
    aw_yield();
    cr_assert_eq(aw_test_threads(), threads_before, "no thread while the loop runs");
    return 0;
}

Test(workers, a_loop_that_never_calls_out_starts_no_thread) {
    threads_before = nthreads_settled();
    aw_test_run(no_pool_main, NULL, 0);
    cr_assert_eq(aw_test_threads_await(threads_before), threads_before);
}

/* The spin policy (src/loop/spin.h, issue 14): a spin that times out
 * makes its spinner skip ever more chances (1, 3, 7, ... 255) so that an
 * absent or slow peer (a loaded machine, long jobs) costs a spin per 2^k
 * operations instead of 50 us of CPU per operation; a spin that succeeds
 * keeps the spinner spinning at every chance. */
#include "../../src/loop/spin.h"

static int skipped_before_next_spin(aw__spin_t *s) {
    int k = 0;
    while (aw__spin_plan(s, AW__SPIN_MAX) == 0)
        k++;
    return k;
}

Test(workers, spin_backs_off_after_timeouts_and_resumes_after_a_success) {
    aw__spin_t s = {0};
    cr_assert_eq(aw__spin_plan(&s, AW__SPIN_MAX), AW__SPIN_MAX, "a fresh spinner spins");
    cr_assert_eq(aw__spin_plan(&s, 1000), 1000, "never past the caller's bound (the next timer)");
    for (int i = 0; i < 100; i++) {
        cr_assert_gt(aw__spin_plan(&s, AW__SPIN_MAX), 0);
        aw__spin_done(&s, true);
    }
    aw__spin_done(&s, false);
    cr_assert_eq(skipped_before_next_spin(&s), 1);
    aw__spin_done(&s, false);
    cr_assert_eq(skipped_before_next_spin(&s), 3);
    aw__spin_done(&s, false);
    cr_assert_eq(skipped_before_next_spin(&s), 7);
    for (int i = 0; i < 20; i++) {
        aw__spin_done(&s, false);
        skipped_before_next_spin(&s);
    }
    aw__spin_done(&s, false);
    cr_assert_eq(skipped_before_next_spin(&s), (1 << AW__SPIN_BACKOFF) - 1, "bounded");
    aw__spin_done(&s, true);
    cr_assert_gt(aw__spin_plan(&s, AW__SPIN_MAX), 0, "a success: spinning at every chance again");
    aw__spin_done(&s, false);
    cr_assert_eq(skipped_before_next_spin(&s), 1, "the count starts over");
}
