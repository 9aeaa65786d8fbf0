/* tests for src/sync/event.c. */
#include "testutil.h"

static aw_event_t ev = AW_EVENT_INIT;
static int woke;

static int waiter(void *arg) {
    int rc = aw_event_wait(&ev);
    if (rc == 0)
        woke++;
    return rc;
}

static int all_wake(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 5; i++)
            aw_spawn(g, waiter, NULL, NULL);
        aw_sleep_ms(1);
        cr_assert_eq(woke, 0);
        aw_event_set(&ev);
    }
    cr_assert_eq(woke, 5);
    cr_assert_eq(aw_event_wait(&ev), 0, "already set: returns at once");
    aw_event_clear(&ev);
    cr_assert(!aw_event_is_set(&ev));
    return 0;
}
Test(event, set_wakes_every_waiter) { aw_test_run(all_wake, NULL, 0); }

static int timeout(void *arg) {
    aw_with (aw_fail_after(AW_MS(5)))
        if (aw_event_wait(&ev) < 0)
            aw_leave();
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}
Test(event, a_deadline_cuts_the_wait) { aw_test_run(timeout, NULL, 0); }
