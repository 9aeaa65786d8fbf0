/* tests for src/sync/sem.c (SEMANTICS J1, J2, J7, K6). */
#include "testutil.h"

static aw_sem_t sem = AW_SEM_INIT("slots", 2, 2);
static int inside, peak;

static int user(void *arg) {
    aw_with (aw_sem_held(&sem)) {
        inside++;
        if (inside > peak)
            peak = inside;
        aw_sleep_ms(1);
        inside--;
    }
    return aw_status();
}

static int limit(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 10; i++)
            aw_spawn(g, user, NULL, NULL);
    }
    cr_assert_eq(peak, 2, "never more than the limit");
    cr_assert_eq(aw_sem_value(&sem), 2);
    return 0;
}
Test(sem, the_limit_is_never_exceeded) { aw_test_run(limit, NULL, 0); }

static int canceller(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 10; i++)
            aw_spawn(g, user, NULL, NULL);
        aw_sleep_ms(2);
        aw_group_cancel(g); /* waiters and holders cancelled mid-way */
    }
    cr_assert_eq(aw_sem_value(&sem), 2, "K6: no permit lost to cancellation");
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(sem, K6_cancelled_waiters_lose_no_permit) { aw_test_run(canceller, NULL, 0); }

static aw_sem_t bounded = AW_SEM_INIT("b", 1, 1);
static aw_sem_t plain = AW_SEM_INIT("p", 1, 0);
static int j7_body(void *arg) {
    cr_assert_eq(aw_sem_release(&bounded), -EINVAL);
    aw_err_clear();
    cr_assert_eq(aw_sem_value(&bounded), 1);
    cr_assert_eq(aw_sem_release(&plain), 0, "an unbounded one may grow");
    cr_assert_eq(aw_sem_value(&plain), 2);
    return 0;
}
Test(sem, J7_bounded_semaphore_refuses_over_release) { aw_test_run(j7_body, NULL, 0); }
