/* tests/fault/thread.c: aw_to_thread when its wait cannot begin (src/core/
 * thread.c with the fault hooks). Under a deadline the wait arms a timer;
 * if that fails for lack of memory the job is already queued, so the
 * caller must not free it and go: it waits for the job without the
 * deadline. Found by the fault sweep: db_sqlite, one realloc failing,
 * heap-use-after-free in the worker (aw__workers_take) of the job
 * aw_to_thread had freed. */
#include <awith.h>
#include <criterion/criterion.h>
#include <time.h>

#include "../../src/coro/fault.h"

static void slow(void *arg) {
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    *(int *)arg = 1;
}

static void drop(void *arg) { (void)arg; }

static int timer_fails(void *arg) {
    int warm = 0, done = 0;
    cr_assert_eq(aw_to_thread(slow, &warm, drop), 0); /* the pool runs; no timer yet */
    int rc = 1;
    aw_with (aw_move_on_after(AW_SEC(30))) {
        /* 1: the job's block, 2: the timer heap's first array */
        aw_fault_set(AW_FAULT_ALLOC, 2, ENOMEM, false);
        rc = aw_to_thread(slow, &done, drop);
    }
    cr_assert_str_eq(aw_fault_what(AW_FAULT_ALLOC), "malloc"); /* timer.c: heap_grow */
    cr_assert_eq(rc, 0, "rc %d: the work ran, the wait must report it", rc);
    cr_assert_eq(done, 1, "aw_to_thread returned while its job was still queued or running");
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(thread_nomem, wait_without_timer_waits_for_the_job) {
    cr_assert_eq(aw_main(timer_fails, NULL), 0);
}
