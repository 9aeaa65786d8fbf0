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

/* M7: set wakes every waiter; one cancelled before it runs reports the
 * cancel, and costs the others nothing. */
static aw_event_t m7_ev = AW_EVENT_INIT;
static int m7_rc[2] = {1, 1};
static int m7_waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    m7_rc[i] = aw_event_wait(&m7_ev);
    aw_err_clear();
    return 0;
}
static int m7(void *arg) {
    aw_task_t *a, *b;
    aw_spawn(NULL, m7_waiter, (void *)0, &a);
    aw_spawn(NULL, m7_waiter, (void *)1, &b);
    aw_sleep_ms(1);
    aw_event_set(&m7_ev);
    aw_task_cancel(a); /* woken, cancelled before it runs */
    aw_event_clear(&m7_ev); /* cleared before either runs: the wake-up stands */
    aw_task_join(a);
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        aw_task_join(b);
    }
    cr_assert_eq(m7_rc[0], -ECANCELED);
    cr_assert_eq(m7_rc[1], 0, "a waiter woken by set must return 0 even if cleared since");
    aw_err_clear();
    return 0;
}
Test(event, M7_set_reaches_every_waiter_when_one_is_cancelled_before_it_runs) {
    aw_test_run(m7, NULL, 0);
}

/* Issue 10, item 10: outside a task a wait is -EPERM, not a crash. */
static aw_event_t unset_ev = AW_EVENT_INIT;
Test(event, wait_outside_a_task_is_EPERM) {
    cr_assert_eq(aw_event_wait(&unset_ev), -EPERM);
    cr_assert_not_null(aw_err_current());
    aw_err_clear();
}

/* event.h: "A cancellation point even when already set": with a cancel
 * pending the wait returns -ECANCELED though the event is set; under a
 * shield in that scope it returns 0. */
static aw_event_t cp_ev = AW_EVENT_INIT;
static int cp_body(void *arg) {
    aw_event_set(&cp_ev);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert_eq(aw_event_wait(&cp_ev), -ECANCELED);
        aw_with (aw_shield(AW_NEVER))
            cr_assert_eq(aw_event_wait(&cp_ev), 0);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert(aw_event_is_set(&cp_ev), "a cancelled wait changes nothing");
    return 0;
}
Test(event, a_wait_is_a_cancellation_point_even_when_already_set) { aw_test_run(cp_body, NULL, 0); }

/* A cleared event blocks again; set wakes a waiter that queued after a
 * clear, and a shielded waiter in a cancelled scope waits for the set. */
static aw_event_t sh_ev = AW_EVENT_INIT;
static int sh_rc = 1;
static int sh_waiter(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        aw_with (aw_shield(AW_NEVER))
            sh_rc = aw_event_wait(&sh_ev);
    }
    return aw_status();
}
static int sh_body(void *arg) {
    aw_event_set(&sh_ev);
    aw_event_clear(&sh_ev);
    aw_task_t *t;
    aw_spawn(NULL, sh_waiter, NULL, &t);
    aw_sleep_ms(2);
    cr_assert_eq(sh_rc, 1, "a cleared event let the waiter through");
    aw_event_set(&sh_ev);
    cr_assert_eq(aw_task_join(t), 0);
    cr_assert_eq(sh_rc, 0);
    return 0;
}
Test(event, a_shielded_waiter_in_a_cancelled_scope_waits_for_the_set) { aw_test_run(sh_body, NULL, 0); }

/* ---- Trio's test_sync.py, ported ---- */

/* test_Event: a wait on a set event is a checkpoint that returns 0; two
 * waiters both wake on one set. */
static aw_event_t trio_ev = AW_EVENT_INIT;
static char trio_rec[64];
static int trio_ev_child(void *arg) {
    (void)arg;
    strcat(trio_rec, "s");
    int rc = aw_event_wait(&trio_ev);
    strcat(trio_rec, "w");
    return rc;
}
static int trio_event_body(void *arg) {
    aw_event_t e = AW_EVENT_INIT;
    cr_assert(!aw_event_is_set(&e));
    aw_event_set(&e);
    cr_assert(aw_event_is_set(&e));
    cr_assert_eq(aw_event_wait(&e), 0);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, trio_ev_child, NULL, NULL);
        aw_spawn(g, trio_ev_child, NULL, NULL);
        aw_sleep_ms(2);
        cr_assert_str_eq(trio_rec, "ss");
        aw_event_set(&trio_ev);
        aw_sleep_ms(2);
        cr_assert_str_eq(trio_rec, "ssww");
    }
    return aw_status();
}
Test(event, trio_test_Event) { aw_test_run(trio_event_body, NULL, 0); }

/* ---- CPython's Lib/test/test_asyncio/test_locks.py, EventTests ----
 * aw_yield() stands for asyncio.sleep(0); test_repr has nothing to port. */
#include <string.h>
static aw_event_t cp_ev;
static char cp_res[16];
static int cp_waiter(void *arg) {
    int rc = aw_event_wait(&cp_ev);
    if (rc == 0) {
        char c[2] = {(char)('0' + (int)(intptr_t)arg), 0};
        strcat(cp_res, c);
    }
    return rc;
}

/* test_wait: set wakes the two that waited, in the order they waited,
 * and lets a third, created before the set but not yet run, through at
 * once (a wait on a set event does not suspend): 3 1 2, as in CPython. */
static int cp_wait_body(void *arg) {
    cr_assert(!aw_event_is_set(&cp_ev));
    aw_task_t *t[4];
    aw_spawn(NULL, cp_waiter, (void *)1, &t[1]);
    aw_spawn(NULL, cp_waiter, (void *)2, &t[2]);
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    aw_spawn(NULL, cp_waiter, (void *)3, &t[3]);
    aw_event_set(&cp_ev);
    aw_yield();
    cr_assert_str_eq(cp_res, "312");
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(aw_task_join(t[i]), 0);
    return 0;
}
Test(event, cpython_test_wait) { aw_test_run(cp_wait_body, NULL, 0); }

/* test_wait_on_set, test_clear. */
static int cp_on_set_body(void *arg) {
    aw_event_set(&cp_ev);
    cr_assert_eq(aw_event_wait(&cp_ev), 0);
    cr_assert(aw_event_is_set(&cp_ev));
    aw_event_clear(&cp_ev);
    cr_assert(!aw_event_is_set(&cp_ev));
    return 0;
}
Test(event, cpython_test_wait_on_set_and_clear) { aw_test_run(cp_on_set_body, NULL, 0); }

/* test_wait_cancel: a cancelled waiter ends cancelled and leaves no
 * waiter behind. */
static int cp_cancel_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_waiter, (void *)1, &t);
    aw_yield();
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    aw_event_set(&cp_ev);
    cr_assert_str_eq(cp_res, "");
    return 0;
}
Test(event, cpython_test_wait_cancel) { aw_test_run(cp_cancel_body, NULL, 0); }

/* test_clear_with_waiters: set, clear, set, set while one task waits: it
 * is woken once and its wait returns True; and a set cleared before the
 * waiter ran still wakes it (the set reached it). */
static int cp_clear_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_waiter, (void *)1, &t);
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    aw_event_set(&cp_ev);
    aw_event_clear(&cp_ev);
    cr_assert(!aw_event_is_set(&cp_ev));
    aw_event_set(&cp_ev);
    aw_event_set(&cp_ev);
    aw_yield();
    cr_assert_str_eq(cp_res, "1");
    cr_assert_eq(aw_task_join(t), 0);

    aw_event_clear(&cp_ev);
    aw_spawn(NULL, cp_waiter, (void *)2, &t);
    aw_yield();
    aw_event_set(&cp_ev);
    aw_event_clear(&cp_ev);
    aw_with (aw_move_on_after(AW_SEC(10))) /* a guard against a hang, not a bound */
        cr_assert_eq(aw_task_join(t), 0, "a set cleared before the waiter ran was lost");
    cr_assert_str_eq(cp_res, "12");
    return 0;
}
Test(event, cpython_test_clear_with_waiters) { aw_test_run(cp_clear_body, NULL, 0); }
