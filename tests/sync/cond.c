/* tests for src/sync/cond.c (SEMANTICS J6). */
#include "testutil.h"

static aw_lock_t lk = AW_LOCK_INIT("state");
static aw_cond_t cv = AW_COND_INIT(&lk);
static int ready, consumed;

static int consumer(void *arg) {
    aw_with (aw_locked(&lk)) {
        while (!ready)
            if (aw_cond_wait(&cv) < 0)
                aw_leave();
        consumed++;
    }
    return aw_status();
}

static int notify(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, consumer, NULL, NULL);
        aw_spawn(g, consumer, NULL, NULL);
        aw_sleep_ms(1);
        aw_with (aw_locked(&lk)) {
            ready = 1;
            aw_cond_notify_all(&cv);
        }
    }
    cr_assert_eq(consumed, 2);
    cr_assert_null(aw_lock_owner(&lk));
    return 0;
}
Test(cond, notify_all_wakes_the_waiters_under_the_lock) { aw_test_run(notify, NULL, 0); }

static int held_after_cancel;
static int cancelled_waiter(void *arg) {
    aw_with (aw_locked(&lk)) {
        int rc = aw_cond_wait(&cv);
        held_after_cancel = rc == -ECANCELED && aw_lock_owner(&lk) == aw_task_self();
    }
    return aw_status();
}
static int j6(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cancelled_waiter, NULL, &t);
    aw_sleep_ms(1);
    aw_lock_acquire(&lk); /* hold the lock while the cancel lands */
    aw_task_cancel(t);
    aw_sleep_ms(1);
    aw_lock_release(&lk);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    cr_assert(held_after_cancel, "the lock was re-taken before -ECANCELED returned");
    cr_assert_null(aw_lock_owner(&lk));
    aw_err_clear();
    return 0;
}
Test(cond, J6_cancelled_wait_retakes_the_lock_first) { aw_test_run(j6, NULL, 0); }

static int not_owner(void *arg) {
    cr_assert_eq(aw_cond_wait(&cv), -EPERM);
    aw_err_clear();
    return 0;
}
Test(cond, wait_without_the_lock_is_EPERM) { aw_test_run(not_owner, NULL, 0); }

/* M7 (CPython gh-112202): notify(1) wakes the first of two waiters; that
 * waiter is cancelled before it runs; the notification passes to the
 * second, which would otherwise wait forever. */
static int m7_rc[2] = {1, 1};
static int m7_waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    aw_with (aw_locked(&lk)) {
        m7_rc[i] = aw_cond_wait(&cv);
    }
    aw_err_clear();
    return 0;
}
static int m7(void *arg) {
    aw_task_t *a, *b;
    aw_spawn(NULL, m7_waiter, (void *)0, &a);
    aw_spawn(NULL, m7_waiter, (void *)1, &b);
    aw_sleep_ms(1); /* both wait, a first */
    aw_with (aw_locked(&lk)) {
        aw_cond_notify(&cv, 1); /* wakes a ... */
        aw_task_cancel(a);      /* ... which is cancelled before it runs */
    }
    aw_task_join(a);
    cr_assert_eq(m7_rc[0], -ECANCELED);
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        aw_task_join(b);
    }
    cr_assert_eq(m7_rc[1], 0, "the notification was lost with the cancelled waiter");
    aw_err_clear();
    if (m7_rc[1] == 1)
        aw_task_cancel(b);
    return 0;
}
Test(cond, M7_notify_passes_to_the_next_waiter_when_the_woken_one_is_cancelled) {
    aw_test_run(m7, NULL, 0);
}

/* M6 through a condition (awith/lock.h): the notifier ends holding the
 * lock; the notified waiter re-takes it, is told -EOWNERDEAD once, and
 * holds it, as every return of aw_cond_wait does (J6), so its block's
 * exit releases it and the lock is free afterwards. */
static aw_lock_t m6c_lk = AW_LOCK_INIT("m6c");
static aw_cond_t m6c_cv = AW_COND_INIT(&m6c_lk);
static int m6c_rc = 1, m6c_held;
static int m6c_waiter(void *arg) {
    aw_with (aw_locked(&m6c_lk)) {
        m6c_rc = aw_cond_wait(&m6c_cv);
        m6c_held = aw_lock_owner(&m6c_lk) == aw_task_self();
        aw_err_clear();
    }
    return aw_status();
}
static int m6c_notifier_dies(void *arg) {
    aw_lock_acquire(&m6c_lk);
    aw_cond_notify(&m6c_cv, 1);
    return 0; /* ends holding the lock */
}
static int m6c(void *arg) {
    aw_task_t *w, *n;
    aw_spawn(NULL, m6c_waiter, NULL, &w);
    aw_sleep_ms(1); /* it waits */
    aw_spawn(NULL, m6c_notifier_dies, NULL, &n);
    cr_assert_eq(aw_task_join(n), -EOWNERDEAD);
    aw_err_clear();
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        cr_assert_eq(aw_task_join(w), 0);
    }
    cr_assert_eq(m6c_rc, -EOWNERDEAD, "the waiter was not told (%s)", aw_err_name(m6c_rc));
    cr_assert(m6c_held, "aw_cond_wait returned without the lock");
    cr_assert_null(aw_lock_owner(&m6c_lk));
    cr_assert_eq(aw_lock_acquire(&m6c_lk), 0, "told once only");
    aw_lock_release(&m6c_lk);
    return 0;
}
Test(cond, M6_a_wait_retaking_a_lock_whose_owner_ended_holds_it_and_is_told) {
    aw_test_run(m6c, NULL, 0);
}

/* A notify from a task that does not hold the lock is refused, as
 * asyncio's and Trio's Condition.notify raise RuntimeError: the waiter
 * may not have checked its predicate yet, and the wake-up would race the
 * state it guards. Nobody is woken; under the lock the same call works. */
static int unlocked_woken;
static int unlocked_waiter(void *arg) {
    aw_with (aw_locked(&lk)) {
        if (aw_cond_wait(&cv) == 0)
            unlocked_woken = 1;
    }
    return aw_status();
}
static int notify_unlocked(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, unlocked_waiter, NULL, NULL);
        aw_sleep_ms(1); /* it waits */
        cr_assert_eq(aw_cond_notify(&cv, 1), -EPERM);
        cr_assert(strstr(aw_err_current()->msg, "does not hold lock 'state'"), "%s",
                  aw_err_current()->msg);
        aw_err_clear();
        cr_assert_eq(aw_cond_notify_all(&cv), -EPERM);
        aw_err_clear();
        aw_sleep_ms(1);
        cr_assert_eq(unlocked_woken, 0, "a refused notify woke nobody");
        aw_with (aw_locked(&lk))
            cr_assert_eq(aw_cond_notify(&cv, 1), 0);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(unlocked_woken, 1);
    return 0;
}
Test(cond, a_notify_without_the_lock_is_refused) { aw_test_run(notify_unlocked, NULL, 0); }

/* J6 with a deadline: a wait cut by its scope's deadline returns holding
 * the lock (the block's exit releases it), and the scope leaves with
 * -ETIMEDOUT; a waiter the deadline did not cut still gets the notify. */
static aw_lock_t dl_lk = AW_LOCK_INIT("dl");
static aw_cond_t dl_cv = AW_COND_INIT(&dl_lk);
static int dl_held = -1, dl_other_rc = 1;
static int dl_other(void *arg) {
    aw_with (aw_locked(&dl_lk))
        dl_other_rc = aw_cond_wait(&dl_cv);
    return aw_status();
}
static int dl_body(void *arg) {
    aw_task_t *o;
    aw_spawn(NULL, dl_other, NULL, &o);
    aw_sleep_ms(1);
    aw_with (aw_fail_after(AW_MS(5)))
        aw_with (aw_locked(&dl_lk)) {
            int rc = aw_cond_wait(&dl_cv);
            dl_held = rc == -ECANCELED && aw_lock_owner(&dl_lk) == aw_task_self();
        }
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(dl_held, 1, "the cut wait returned without the lock");
    cr_assert_null(aw_lock_owner(&dl_lk));
    aw_with (aw_locked(&dl_lk))
        cr_assert_eq(aw_cond_notify(&dl_cv, 1), 0);
    cr_assert_eq(aw_task_join(o), 0);
    cr_assert_eq(dl_other_rc, 0);
    return 0;
}
Test(cond, J6_a_wait_cut_by_a_deadline_returns_holding_the_lock) { aw_test_run(dl_body, NULL, 0); }

/* J6 with the cancel already pending: the wait returns -ECANCELED at
 * once, holding the lock again. As in Trio (release, then park), the
 * lock may change hands in between: a task queued for it runs its block
 * first, and the wait re-takes it after. */
static aw_lock_t pc_lk = AW_LOCK_INIT("pc");
static aw_cond_t pc_cv = AW_COND_INIT(&pc_lk);
static int pc_in;
static int pc_other(void *arg) {
    aw_with (aw_locked(&pc_lk))
        pc_in = 1;
    return aw_status();
}
static int pc_body(void *arg) {
    aw_task_t *o = NULL;
    aw_with (aw_scope_t *s, aw_cancel_scope())
        aw_with (aw_locked(&pc_lk)) {
            aw_spawn(NULL, pc_other, NULL, &o);
            aw_with (aw_shield(AW_NEVER)) aw_sleep_ms(1); /* o queues for the lock */
            aw_scope_cancel(s);
            cr_assert_eq(aw_cond_wait(&pc_cv), -ECANCELED);
            cr_assert_eq(aw_lock_owner(&pc_lk), aw_task_self());
        }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&pc_lk));
    cr_assert_eq(aw_task_join(o), 0);
    cr_assert_eq(pc_in, 1);
    return 0;
}
Test(cond, J6_a_wait_with_a_cancel_pending_returns_holding_the_lock) { aw_test_run(pc_body, NULL, 0); }

/* J6 and decision 1 when the cancel lands while the notified waiter
 * queues to re-take the lock (the notifier still holds it): the wait was
 * a suspension point in a cancelled scope, so it returns -ECANCELED,
 * holding the lock, as asyncio's and Trio's wait raise there (CPython
 * test_wait_cancel_after_notify, bpo-32841); and since the waiter will
 * not act on the notify, it passes to the next waiter (M7, as CPython
 * re-notifies on any error out of wait). */
static aw_lock_t rl_lk = AW_LOCK_INIT("rl");
static aw_cond_t rl_cv = AW_COND_INIT(&rl_lk);
static int rl_rc[2] = {1, 1}, rl_held = -1;
static int rl_waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    aw_with (aw_locked(&rl_lk)) {
        rl_rc[i] = aw_cond_wait(&rl_cv);
        if (i == 0)
            rl_held = aw_lock_owner(&rl_lk) == aw_task_self();
    }
    return aw_status();
}
static int rl_body(void *arg) {
    aw_task_t *a, *b;
    aw_spawn(NULL, rl_waiter, (void *)0, &a);
    aw_spawn(NULL, rl_waiter, (void *)1, &b);
    aw_yield(); /* both wait, a first */
    aw_with (aw_locked(&rl_lk)) {
        aw_cond_notify(&rl_cv, 1);
        aw_yield(); /* a runs and queues for the lock */
        aw_task_cancel(a);
        aw_yield();
    }
    cr_assert_eq(aw_task_join(a), -ECANCELED, "the cancelled waiter ended %s",
                 aw_err_name(rl_rc[0]));
    aw_err_clear();
    cr_assert_eq(rl_rc[0], -ECANCELED);
    cr_assert_eq(rl_held, 1, "returned without the lock");
    aw_with (aw_move_on_after(AW_SEC(10))) /* a guard against a hang, not a bound */
        aw_task_join(b);
    cr_assert_eq(rl_rc[1], 0, "the notify was lost with the cancelled waiter");
    if (rl_rc[1] == 1)
        aw_task_cancel(b);
    aw_err_clear();
    cr_assert_null(aw_lock_owner(&rl_lk));
    return 0;
}
Test(cond, J6_M7_a_wait_cancelled_while_retaking_the_lock_returns_ECANCELED) {
    aw_test_run(rl_body, NULL, 0);
}

/* M7 through a generator: the first waiter is an async generator's
 * coroutine, waiting on behalf of its consumer; notify(1) wakes it, and
 * its consumer is cancelled before it runs. The generator's wait returns
 * -ECANCELED (the consumer's cancel reaches it through the chain) and the
 * notification passes to the next waiter, a plain task. */
static aw_lock_t gm_lk = AW_LOCK_INIT("gm");
static aw_cond_t gm_cv = AW_COND_INIT(&gm_lk);
static int gm_rc[2] = {1, 1};
static int gm_gen(aw_gen_t *g, void *arg) {
    aw_with (aw_locked(&gm_lk))
        gm_rc[0] = aw_cond_wait(&gm_cv);
    aw_err_clear();
    int v = 1;
    aw_gen_yield(g, &v);
    return 0;
}
static int gm_consumer(void *arg) {
    aw_for (int *v, aw_gen(gm_gen, NULL))
        break;
    aw_err_clear();
    return 0;
}
static int gm_task(void *arg) {
    aw_with (aw_locked(&gm_lk))
        gm_rc[1] = aw_cond_wait(&gm_cv);
    aw_err_clear();
    return 0;
}
static int gm_body(void *arg) {
    aw_task_t *c, *b;
    aw_spawn(NULL, gm_consumer, NULL, &c);
    aw_sleep_ms(1); /* the generator waits first */
    aw_spawn(NULL, gm_task, NULL, &b);
    aw_sleep_ms(1);
    aw_with (aw_locked(&gm_lk)) {
        aw_cond_notify(&gm_cv, 1); /* wakes the generator ... */
        aw_task_cancel(c);         /* ... whose consumer is cancelled before it runs */
    }
    aw_task_join(c);
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        aw_task_join(b);
    }
    cr_assert_eq(gm_rc[0], -ECANCELED);
    cr_assert_eq(gm_rc[1], 0, "the notification was lost with the generator's cancel");
    aw_err_clear();
    if (gm_rc[1] == 1)
        aw_task_cancel(b);
    cr_assert_null(aw_lock_owner(&gm_lk));
    return 0;
}
Test(cond, M7_a_notify_to_a_generator_whose_consumer_is_cancelled_passes_on) {
    aw_test_run(gm_body, NULL, 0);
}

/* ---- Trio's test_sync.py, ported ---- */

/* test_Condition: wait and notify need the lock; notify(1) wakes the first
 * waiter only, notify_all the rest; notify(2) of 3 wakes two, which take
 * the lock in turn after the notifier's block; a cancelled wait returns
 * holding the lock. */
static aw_lock_t trio_l = AW_LOCK_INIT("trio");
static aw_cond_t trio_c = AW_COND_INIT(&trio_l);
static int trio_finished[8], trio_nfin;
static int trio_waiter(void *arg) {
    aw_with (aw_locked(&trio_l)) {
        if (aw_cond_wait(&trio_c) < 0)
            aw_leave();
    }
    if (aw_status() == 0)
        trio_finished[trio_nfin++] = (int)(intptr_t)arg;
    return aw_status();
}
static int trio_cond_body(void *arg) {
    cr_assert_eq(aw_cond_wait(&trio_c), -EPERM);
    aw_err_clear();
    cr_assert_eq(aw_cond_notify(&trio_c, 1), -EPERM);
    aw_err_clear();
    cr_assert_eq(aw_cond_notify_all(&trio_c), -EPERM);
    aw_err_clear();
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 3; i++) {
            aw_spawn(g, trio_waiter, (void *)(intptr_t)i, NULL);
            aw_sleep_ms(1);
        }
        aw_with (aw_locked(&trio_l)) {
            aw_cond_notify(&trio_c, 1);
        }
        aw_sleep_ms(2);
        cr_assert_eq(trio_nfin, 1);
        cr_assert_eq(trio_finished[0], 0);
        aw_with (aw_locked(&trio_l)) {
            aw_cond_notify_all(&trio_c);
        }
        aw_sleep_ms(2);
        cr_assert_eq(trio_nfin, 3);
    }
    cr_assert_eq(aw_status(), 0);
    trio_nfin = 0;
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 3; i++) {
            aw_spawn(g, trio_waiter, (void *)(intptr_t)i, NULL);
            aw_sleep_ms(1);
        }
        aw_with (aw_locked(&trio_l)) {
            aw_cond_notify(&trio_c, 2);
        }
        aw_sleep_ms(2);
        cr_assert_eq(trio_nfin, 2);
        cr_assert_eq(trio_finished[0], 0);
        cr_assert_eq(trio_finished[1], 1);
        aw_with (aw_locked(&trio_l)) {
            aw_cond_notify_all(&trio_c);
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(trio_nfin, 3);
    bool held = false;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_locked(&trio_l)) {
            aw_scope_cancel(s);
            cr_assert_eq(aw_cond_wait(&trio_c), -ECANCELED);
            held = aw_lock_owner(&trio_l) == aw_task_self();
        }
    }
    cr_assert(held);
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&trio_l));
    return 0;
}
Test(cond, trio_test_Condition) { aw_test_run(trio_cond_body, NULL, 0); }

/* ---- CPython's Lib/test/test_asyncio/test_locks.py, ConditionTests ----
 *
 * asyncio's notify only checks that the lock is locked, by anyone; awith's
 * requires the caller to hold it (cond.h), so where CPython notifies
 * while a woken waiter holds the lock, the waiters here release it after
 * their step. aw_yield() stands for asyncio.sleep(0). test_repr and the
 * loop-parameter tests have nothing to port. */
static aw_lock_t cp_lk = AW_LOCK_INIT("cpython");
static aw_cond_t cp_cv = AW_COND_INIT(&cp_lk);
static char cp_res[64];
static void cp_append(int i) {
    char c[2] = {(char)('0' + i), 0};
    strcat(cp_res, c);
}
/* c1, c2, c3 of test_notify: take the lock, wait, append, release. */
static int cp_waiter(void *arg) {
    aw_with (aw_locked(&cp_lk)) {
        if (aw_cond_wait(&cp_cv) < 0)
            aw_leave();
        cp_append((int)(intptr_t)arg);
    }
    return aw_status();
}

/* test_wait: a notified waiter does not run while the notifier holds the
 * lock; when it is released, the first waiter runs holding it. */
static int cp_wait_holds(void *arg) {
    aw_with (aw_locked(&cp_lk)) {
        if (aw_cond_wait(&cp_cv) < 0)
            aw_leave();
        cp_append((int)(intptr_t)arg);
        cr_assert_eq(aw_lock_owner(&cp_lk), aw_task_self());
    }
    return aw_status();
}
static int cp_wait_body(void *arg) {
    aw_task_t *t[4];
    for (int i = 1; i <= 3; i++)
        aw_spawn(NULL, cp_wait_holds, (void *)(intptr_t)i, &t[i]);
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    cr_assert_null(aw_lock_owner(&cp_lk), "the waiters released it");
    cr_assert_eq(aw_lock_acquire(&cp_lk), 0);
    cr_assert_eq(aw_cond_notify(&cp_cv, 1), 0);
    aw_yield();
    cr_assert_str_eq(cp_res, "", "the notified waiter waits for the lock");
    aw_lock_release(&cp_lk);
    aw_yield();
    cr_assert_str_eq(cp_res, "1");
    cr_assert_eq(aw_task_join(t[1]), 0);
    aw_with (aw_locked(&cp_lk)) aw_cond_notify(&cp_cv, 2);
    aw_yield();
    aw_yield();
    cr_assert_str_eq(cp_res, "123");
    for (int i = 2; i <= 3; i++)
        cr_assert_eq(aw_task_join(t[i]), 0);
    return 0;
}
Test(cond, cpython_test_wait) { aw_test_run(cp_wait_body, NULL, 0); }

/* test_wait_cancel: a waiter cancelled in wait ends with CancelledError,
 * holding the lock again, and leaves no waiter behind. */
static int cp_held_on_return = -1;
static int cp_wait_one(void *arg) {
    (void)arg;
    int rc = aw_cond_wait(&cp_cv);
    cp_held_on_return = aw_lock_owner(&cp_lk) == aw_task_self();
    aw_lock_release(&cp_lk);
    return rc;
}
static int cp_wait_cancel_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_wait_holds, (void *)1, &t);
    aw_yield();
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_null(aw_lock_owner(&cp_lk));
    aw_with (aw_locked(&cp_lk)) aw_cond_notify_all(&cp_cv); /* nobody left */
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    return 0;
}
Test(cond, cpython_test_wait_cancel) { aw_test_run(cp_wait_cancel_body, NULL, 0); }

/* test_wait_cancel_contested: the waiter is notified, then cancelled and
 * the lock released in one tick: whatever wait returns, it returns
 * holding the lock. */
static int cp_contested(void *arg) {
    (void)arg;
    cr_assert_eq(aw_lock_acquire(&cp_lk), 0);
    return cp_wait_one(NULL);
}
static int cp_contested_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_contested, NULL, &t);
    aw_yield();
    cr_assert_null(aw_lock_owner(&cp_lk), "the waiter released it");
    cr_assert_eq(aw_lock_acquire(&cp_lk), 0);
    aw_cond_notify(&cp_cv, 1);
    aw_task_cancel(t);
    aw_lock_release(&cp_lk);
    int rc = aw_task_join(t);
    cr_assert(rc == 0 || rc == -ECANCELED, "%s", aw_err_name(rc));
    aw_err_clear();
    cr_assert_eq(cp_held_on_return, 1);
    return 0;
}
Test(cond, cpython_test_wait_cancel_contested) { aw_test_run(cp_contested_body, NULL, 0); }

/* test_wait_cancel_after_notify (bpo-32841): the waiter is notified and
 * gets to re-take the lock, which the notifier still holds; it is
 * cancelled there; once the lock is released it ends cancelled, and its
 * block was reached. */
static int cp_waited;
static int cp_wait_on_cond(void *arg) {
    (void)arg;
    aw_with (aw_locked(&cp_lk)) {
        cp_waited = 1;
        aw_cond_wait(&cp_cv);
    }
    return aw_status();
}
static int cp_after_notify_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_wait_on_cond, NULL, &t);
    aw_yield();
    cr_assert_eq(aw_lock_acquire(&cp_lk), 0);
    aw_cond_notify(&cp_cv, 1);
    aw_yield(); /* it runs, and queues for the lock */
    aw_task_cancel(t);
    aw_yield();
    aw_lock_release(&cp_lk);
    aw_yield();
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert(cp_waited);
    cr_assert_null(aw_lock_owner(&cp_lk));
    return 0;
}
Test(cond, cpython_test_wait_cancel_after_notify) { aw_test_run(cp_after_notify_body, NULL, 0); }

/* test_wait_unacquired, test_wait_for_unacquired, test_notify_unacquired
 * and test_notify_all_unacquired: RuntimeError, here -EPERM. */
static int cp_unacquired_body(void *arg) {
    cr_assert_eq(aw_cond_wait(&cp_cv), -EPERM);
    aw_err_clear();
    cr_assert_eq(aw_cond_notify(&cp_cv, 1), -EPERM);
    aw_err_clear();
    cr_assert_eq(aw_cond_notify_all(&cp_cv), -EPERM);
    aw_err_clear();
    cr_assert_null(aw_lock_owner(&cp_lk));
    return 0;
}
Test(cond, cpython_test_wait_and_notify_unacquired) { aw_test_run(cp_unacquired_body, NULL, 0); }

/* test_wait_for: a waiter looping on a predicate is notified once while
 * it is false (goes on waiting) and once when true (done). */
static int cp_presult;
static int cp_wait_for(void *arg) {
    (void)arg;
    aw_with (aw_locked(&cp_lk)) {
        while (!cp_presult)
            if (aw_cond_wait(&cp_cv) < 0)
                aw_leave();
        cp_append(1);
    }
    return aw_status();
}
static int cp_wait_for_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_wait_for, NULL, &t);
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    aw_with (aw_locked(&cp_lk)) aw_cond_notify(&cp_cv, 1);
    aw_yield();
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    cp_presult = 1;
    aw_with (aw_locked(&cp_lk)) aw_cond_notify(&cp_cv, 1);
    cr_assert_eq(aw_task_join(t), 0);
    cr_assert_str_eq(cp_res, "1");
    return 0;
}
Test(cond, cpython_test_wait_for) { aw_test_run(cp_wait_for_body, NULL, 0); }

/* test_notify and test_notify_all: notify(1) wakes the first; notify(1)
 * then notify(2048) the other two, in order; notify_all wakes all. */
static int cp_notify_body(void *arg) {
    aw_task_t *t[4];
    for (int i = 1; i <= 3; i++)
        aw_spawn(NULL, cp_waiter, (void *)(intptr_t)i, &t[i]);
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    aw_with (aw_locked(&cp_lk)) aw_cond_notify(&cp_cv, 1);
    aw_yield();
    aw_yield();
    cr_assert_str_eq(cp_res, "1");
    aw_with (aw_locked(&cp_lk)) {
        aw_cond_notify(&cp_cv, 1);
        aw_cond_notify(&cp_cv, 2048);
    }
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(aw_task_join(t[i]), 0);
    cr_assert_str_eq(cp_res, "123");

    cp_res[0] = 0;
    for (int i = 1; i <= 2; i++)
        aw_spawn(NULL, cp_waiter, (void *)(intptr_t)i, &t[i]);
    aw_yield();
    aw_with (aw_locked(&cp_lk)) aw_cond_notify_all(&cp_cv);
    for (int i = 1; i <= 2; i++)
        cr_assert_eq(aw_task_join(t[i]), 0);
    cr_assert_str_eq(cp_res, "12");
    return 0;
}
Test(cond, cpython_test_notify_and_notify_all) { aw_test_run(cp_notify_body, NULL, 0); }

/* test_timeout_in_block: inside the condition's block, a wait cut by a
 * timeout raises TimeoutError, and the block still holds the lock. */
static int cp_timeout_body(void *arg) {
    aw_with (aw_locked(&cp_lk)) {
        aw_with (aw_fail_after(AW_MS(5))) aw_cond_wait(&cp_cv);
        cr_assert_eq(aw_status(), -ETIMEDOUT);
        cr_assert_eq(aw_lock_owner(&cp_lk), aw_task_self());
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&cp_lk));
    return 0;
}
Test(cond, cpython_test_timeout_in_block) { aw_test_run(cp_timeout_body, NULL, 0); }

/* test_cancelled_error_wakeup and test_cancelled_error_re_aquire: the
 * cancel a waiter gets in its wait (before or after it was notified) is
 * what leaves its block and the task: the same record, not a copy or a
 * second one. */
static const aw_err_t *cp_raised;
static int cp_raised_count;
static int cp_wake;
static int cp_func(void *arg) {
    (void)arg;
    aw_with (aw_locked(&cp_lk)) {
        int rc = 0;
        while (!cp_wake && (rc = aw_cond_wait(&cp_cv)) == 0)
            ;
        cr_assert_eq(rc, -ECANCELED);
        cp_raised = aw_err_current();
        cp_raised_count = aw_err_count(cp_raised);
        aw_leave();
    }
    cr_assert_eq(aw_err_current(), cp_raised, "the same record left the block");
    cr_assert_eq(aw_err_count(aw_err_current()), cp_raised_count);
    return aw_status();
}
static int cp_cancelled_error_body(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, cp_func, NULL, &t);
    aw_yield();
    aw_task_cancel(t); /* waiting for the wake-up */
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(cp_raised_count, 1);

    aw_spawn(NULL, cp_func, NULL, &t);
    aw_yield();
    cr_assert_eq(aw_lock_acquire(&cp_lk), 0);
    cp_wake = 1;
    aw_cond_notify(&cp_cv, 1);
    aw_yield();        /* it is now re-taking the lock */
    aw_task_cancel(t); /* cancel it there */
    aw_lock_release(&cp_lk);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(cp_raised_count, 1);
    return 0;
}
Test(cond, cpython_test_cancelled_error_wakeup_and_re_aquire) {
    aw_test_run(cp_cancelled_error_body, NULL, 0);
}

/* test_cancelled_wakeup and test_cancelled_wakeup_relock: two consumers
 * wait for an item; one item is produced and notify(1) made; the woken
 * consumer is cancelled before it runs (wakeup), or while re-taking the
 * lock (relock). The item is consumed all the same: no lost wake-up. */
static int cp_state;
static int cp_consumer(void *arg) {
    (void)arg;
    aw_with (aw_locked(&cp_lk)) {
        for (;;) {
            while (cp_state == 0)
                if (aw_cond_wait(&cp_cv) < 0)
                    goto out;
            if (cp_state < 0)
                break;
            cp_state--;
        }
    out:;
    }
    return aw_status();
}
static int cp_cancelled_wakeup_run(bool relock) {
    aw_task_t *c[2];
    cp_state = 0;
    aw_spawn(NULL, cp_consumer, NULL, &c[0]);
    aw_spawn(NULL, cp_consumer, NULL, &c[1]);
    aw_yield();
    aw_with (aw_locked(&cp_lk)) {
        cp_state++;
        aw_cond_notify(&cp_cv, 1);
        if (relock)
            aw_yield(); /* the woken one queues for the lock */
        aw_task_cancel(c[0]);
        aw_with (aw_move_on_after(AW_MS(10))) {
            while (cp_state != 0)
                if (aw_cond_wait(&cp_cv) < 0)
                    aw_leave();
        }
        cr_assert_eq(cp_state, 0, "the notify was lost to the cancel");
        cp_state = -1;
        aw_cond_notify_all(&cp_cv);
    }
    int rc0 = aw_task_join(c[0]);
    cr_assert(rc0 == -ECANCELED || rc0 == 0);
    aw_err_clear();
    cr_assert_eq(aw_task_join(c[1]), 0);
    return 0;
}
static int cp_wakeup_body(void *arg) { return cp_cancelled_wakeup_run(false); }
static int cp_relock_body(void *arg) { return cp_cancelled_wakeup_run(true); }
Test(cond, cpython_test_cancelled_wakeup) { aw_test_run(cp_wakeup_body, NULL, 0); }
Test(cond, cpython_test_cancelled_wakeup_relock) { aw_test_run(cp_relock_body, NULL, 0); }

/* test_context_manager and test_explicit_lock: the condition's lock is
 * the block's, and the lock's block is the condition's. */
static int cp_cm_body(void *arg) {
    aw_lock_t l = AW_LOCK_INIT("explicit");
    aw_cond_t c = AW_COND_INIT(&l);
    aw_with (aw_locked(&l)) {
        cr_assert_eq(aw_lock_owner(&l), aw_task_self());
        cr_assert_eq(aw_cond_notify(&c, 1), 0, "the block holds the condition's lock");
    }
    cr_assert_null(aw_lock_owner(&l));
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(cond, cpython_test_context_manager_and_explicit_lock) { aw_test_run(cp_cm_body, NULL, 0); }

/* J6, M7 and G-lines together: a notified waiter whose deadline passes
 * while it queues to re-take the lock (the notifier holds it, shielded,
 * past that deadline) returns -ECANCELED holding the lock, its scope
 * leaves with -ETIMEDOUT, and the notify passes to the other waiter. */
static aw_lock_t rd_lk = AW_LOCK_INIT("rd");
static aw_cond_t rd_cv = AW_COND_INIT(&rd_lk);
static int rd_rc[2] = {1, 1}, rd_held = -1, rd_status = 1;
static int rd_waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    if (i == 0) {
        aw_with (aw_fail_after(AW_MS(5)))
            aw_with (aw_locked(&rd_lk)) {
                rd_rc[0] = aw_cond_wait(&rd_cv);
                rd_held = aw_lock_owner(&rd_lk) == aw_task_self();
            }
        rd_status = aw_status();
        aw_err_clear();
        return 0;
    }
    aw_with (aw_locked(&rd_lk)) rd_rc[1] = aw_cond_wait(&rd_cv);
    return aw_status();
}
static int rd_body(void *arg) {
    aw_task_t *a, *b;
    aw_spawn(NULL, rd_waiter, (void *)0, &a);
    aw_spawn(NULL, rd_waiter, (void *)1, &b);
    aw_yield();
    aw_with (aw_locked(&rd_lk)) {
        aw_cond_notify(&rd_cv, 1);
        aw_yield(); /* a queues for the lock */
        aw_with (aw_shield(AW_NEVER)) aw_sleep_ms(20); /* past a's deadline */
    }
    cr_assert_eq(aw_task_join(a), 0);
    cr_assert_eq(rd_rc[0], -ECANCELED, "got %s", aw_err_name(rd_rc[0]));
    cr_assert_eq(rd_held, 1);
    cr_assert_eq(rd_status, -ETIMEDOUT, "got %s", aw_err_name(rd_status));
    aw_with (aw_move_on_after(AW_SEC(10))) /* a guard against a hang, not a bound */
        aw_task_join(b);
    cr_assert_eq(rd_rc[1], 0, "the notify was lost with the timed-out waiter");
    if (rd_rc[1] == 1)
        aw_task_cancel(b);
    aw_err_clear();
    cr_assert_null(aw_lock_owner(&rd_lk));
    return 0;
}
Test(cond, J6_M7_a_deadline_passing_while_retaking_the_lock_cuts_the_wait) {
    aw_test_run(rd_body, NULL, 0);
}
