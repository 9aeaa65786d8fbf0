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

/* J8: a waiter cancelled while queued leaves the others' order intact:
 * W1, W3, then W4 (which queued after the cancel), and the permit count
 * is back to its start. */
#include <string.h>
static aw_sem_t one = AW_SEM_INIT("one", 1, 1);
static char order[64];
static int j8_waiter(void *arg) {
    int rc = aw_sem_acquire(&one);
    strcat(order, (char *)arg);
    strcat(order, rc == 0 ? ";" : "-cancelled;");
    if (rc == 0) {
        aw_sleep_ms(1);
        aw_sem_release(&one);
    }
    aw_err_clear();
    return 0;
}
static int j8_body(void *arg) {
    aw_task_t *w[4];
    static char *names[] = {"W1", "W2", "W3", "W4"};
    cr_assert_eq(aw_sem_acquire(&one), 0);
    for (int i = 0; i < 3; i++)
        aw_spawn(NULL, j8_waiter, names[i], &w[i]);
    aw_sleep_ms(1);
    aw_task_cancel(w[1]);
    aw_sleep_ms(1);
    aw_spawn(NULL, j8_waiter, names[3], &w[3]);
    aw_sleep_ms(1);
    cr_assert_eq(aw_sem_release(&one), 0);
    for (int i = 0; i < 4; i++)
        aw_task_join(w[i]);
    cr_assert_str_eq(order, "W2-cancelled;W1;W3;W4;", "no other waiter lost its place");
    cr_assert_eq(aw_sem_value(&one), 1);
    return 0;
}
Test(sem, J8_a_cancelled_waiter_costs_no_other_waiter_its_place) { aw_test_run(j8_body, NULL, 0); }

/* M7: a permit handed to a waiter that is cancelled before it runs goes
 * to the next waiter. */
static aw_sem_t m7_sem = AW_SEM_INIT("m7", 0, 0);
static int m7_rc[2] = {1, 1};
static int m7_waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    m7_rc[i] = aw_sem_acquire(&m7_sem);
    aw_err_clear();
    return 0;
}
static int m7(void *arg) {
    aw_task_t *a, *b;
    aw_spawn(NULL, m7_waiter, (void *)0, &a);
    aw_spawn(NULL, m7_waiter, (void *)1, &b);
    aw_sleep_ms(1);
    aw_sem_release(&m7_sem); /* to a ... */
    aw_task_cancel(a);       /* ... cancelled before it runs */
    aw_task_join(a);
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        aw_task_join(b);
    }
    cr_assert_eq(m7_rc[0], -ECANCELED);
    cr_assert_eq(m7_rc[1], 0, "the permit was lost with the cancelled waiter");
    cr_assert_eq(aw_sem_value(&m7_sem), 0);
    aw_err_clear();
    return 0;
}
Test(sem, M7_permit_passes_to_the_next_waiter_when_the_woken_one_is_cancelled) {
    aw_test_run(m7, NULL, 0);
}

/* Issue 10, item 10: outside a task a wait is -EPERM, not a crash. */
static aw_sem_t empty_sem = AW_SEM_INIT("empty", 0, 0);
Test(sem, acquire_outside_a_task_is_EPERM) {
    cr_assert_eq(aw_sem_acquire(&empty_sem), -EPERM);
    cr_assert_not_null(aw_err_current());
    aw_err_clear();
}

/* The seeds' rate limit: a gather of calls each inside the semaphore, one
 * failing. The waiters still queued are cancelled and the holders cut:
 * every permit comes back, and only the real failure is a member of the
 * group error (K6, I3). */
static aw_sem_t rate = AW_SEM_INIT("rate", 2, 2);
static int limited_call(void *arg, void **value) {
    aw_with (aw_sem_held(&rate)) {
        if (aw_sleep_ms(5) == 0 && (intptr_t)arg == 3) {
            aw_fail(-EIO, "call 3 failed");
        }
    }
    return aw_status();
}
static int limited_gather(void *arg) {
    aw_result_t r[6];
    for (intptr_t i = 0; i < 6; i++)
        r[i] = (aw_result_t)AW_RESULT(limited_call, i);
    cr_assert_eq(aw_gather(r, 6), -AW_EGROUP);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->members->code, -EIO);
    cr_assert_null(e->members->next, "a cancelled waiter counted as a failure");
    for (int i = 0; i < 2; i++)
        cr_assert_eq(r[i].status, 0, "call %d ran before the failure", i);
    cr_assert(r[2].status == 0 || r[2].status == -ECANCELED, "call 2 ran beside it: %d", r[2].status);
    cr_assert_eq(r[3].status, -EIO);
    cr_assert_eq(r[4].status, -ECANCELED);
    cr_assert_eq(r[5].status, -ECANCELED);
    cr_assert_eq(aw_sem_value(&rate), 2, "every permit back");
    aw_err_clear();
    return 0;
}
Test(sem, K6_I3_a_limited_gather_with_one_failure_gives_every_permit_back) {
    aw_test_run(limited_gather, NULL, 0);
}

/* J1 for Semaphore(1): waiters take the permit in FIFO order, and a task
 * that releases and at once acquires again queues behind the others: the
 * order is 0,1,2,0,1,2,0,1,2. */
static aw_sem_t j1_sem = AW_SEM_INIT("j1", 1, 1);
static char j1_log[64];
static int j1_cycler(void *arg) {
    for (int i = 0; i < 3; i++) {
        aw_sem_acquire(&j1_sem);
        strcat(j1_log, arg);
        strcat(j1_log, ";");
        aw_yield();
        aw_sem_release(&j1_sem);
    }
    return 0;
}
static int j1_body(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, j1_cycler, "0", NULL);
        aw_spawn(g, j1_cycler, "1", NULL);
        aw_spawn(g, j1_cycler, "2", NULL);
    }
    cr_assert_str_eq(j1_log, "0;1;2;0;1;2;0;1;2;", "no barging");
    cr_assert_eq(aw_sem_value(&j1_sem), 1);
    return 0;
}
Test(sem, J1_semaphore_one_is_fifo_and_a_releaser_does_not_jump_the_queue) {
    aw_test_run(j1_body, NULL, 0);
}

/* (c) 19 for semaphores (Trio's acquire is a checkpoint): with a cancel
 * pending, acquire returns -ECANCELED even with a permit free, and takes
 * none; under a shield inside that scope it takes one. */
static aw_sem_t c19_sem = AW_SEM_INIT("c19", 1, 1);
static int c19_body(void *arg) {
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert_eq(aw_sem_acquire(&c19_sem), -ECANCELED);
        cr_assert_eq(aw_sem_value(&c19_sem), 1, "a cancelled acquire took a permit");
        aw_with (aw_shield(AW_NEVER)) {
            cr_assert_eq(aw_sem_acquire(&c19_sem), 0);
            cr_assert_eq(aw_sem_value(&c19_sem), 0);
            cr_assert_eq(aw_sem_release(&c19_sem), 0);
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(aw_sem_value(&c19_sem), 1);
    return 0;
}
Test(sem, c19_acquire_is_a_cancellation_point_even_with_a_permit_free) {
    aw_test_run(c19_body, NULL, 0);
}

/* A deadline cuts a wait for a permit: the scope's -ETIMEDOUT, no permit
 * taken, and a permit released later goes to the next waiter, not to the
 * one that timed out. */
static aw_sem_t dl_sem = AW_SEM_INIT("dl", 0, 1);
static int dl_late_rc = 1;
static int dl_late(void *arg) {
    dl_late_rc = aw_sem_acquire(&dl_sem);
    return dl_late_rc;
}
static int dl_body(void *arg) {
    aw_with (aw_fail_after(AW_MS(5)))
        aw_with (aw_sem_held(&dl_sem))
            cr_assert_fail("entered with no permit");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert_eq(aw_sem_value(&dl_sem), 0);
    aw_task_t *t;
    aw_spawn(NULL, dl_late, NULL, &t);
    aw_sleep_ms(1);
    cr_assert_eq(aw_sem_release(&dl_sem), 0);
    cr_assert_eq(aw_task_join(t), 0);
    cr_assert_eq(dl_late_rc, 0);
    cr_assert_eq(aw_sem_value(&dl_sem), 0, "the permit went to the waiter");
    cr_assert_eq(aw_sem_release(&dl_sem), 0);
    return 0;
}
Test(sem, a_deadline_cuts_the_wait_and_takes_no_permit) { aw_test_run(dl_body, NULL, 0); }

/* J7 through the manager: a block of a bounded semaphore that released
 * its permit itself leaves with the exit's -EINVAL, naming the semaphore;
 * the value stays at the bound. */
static aw_sem_t j7m_sem = AW_SEM_INIT("pool-slots", 1, 1);
static int j7m_body(void *arg) {
    aw_with (aw_sem_held(&j7m_sem))
        cr_assert_eq(aw_sem_release(&j7m_sem), 0);
    cr_assert_eq(aw_status(), -EINVAL);
    cr_assert(strstr(aw_err_current()->msg, "'pool-slots'"), "%s", aw_err_current()->msg);
    aw_err_clear();
    cr_assert_eq(aw_sem_value(&j7m_sem), 1);
    return 0;
}
Test(sem, J7_a_block_that_released_its_permit_fails_at_exit_naming_it) {
    aw_test_run(j7m_body, NULL, 0);
}

/* ---- Trio's test_sync.py, ported ---- */

/* test_Semaphore: an unbounded semaphore grows past its start; acquire
 * takes a permit; a release to a waiter hands the permit over (the value
 * stays 0: fairness), and the waiter finishes. */
static aw_sem_t trio_s = AW_SEM_INIT("trio", 1, 0);
static char trio_rec[64];
static int trio_do_acquire(void *arg) {
    (void)arg;
    strcat(trio_rec, "started;");
    int rc = aw_sem_acquire(&trio_s);
    strcat(trio_rec, "finished;");
    return rc;
}
static int trio_sem_body(void *arg) {
    cr_assert_eq(aw_sem_value(&trio_s), 1);
    cr_assert_eq(aw_sem_release(&trio_s), 0);
    cr_assert_eq(aw_sem_value(&trio_s), 2);
    cr_assert_eq(aw_sem_acquire(&trio_s), 0);
    cr_assert_eq(aw_sem_value(&trio_s), 1);
    cr_assert_eq(aw_sem_acquire(&trio_s), 0);
    cr_assert_eq(aw_sem_value(&trio_s), 0);
    aw_sem_release(&trio_s);
    aw_with (aw_sem_held(&trio_s)) {
        cr_assert_eq(aw_sem_value(&trio_s), 0);
    }
    cr_assert_eq(aw_sem_value(&trio_s), 1);
    cr_assert_eq(aw_sem_acquire(&trio_s), 0);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, trio_do_acquire, NULL, NULL);
        aw_sleep_ms(2);
        cr_assert_str_eq(trio_rec, "started;");
        cr_assert_eq(aw_sem_value(&trio_s), 0);
        aw_sem_release(&trio_s);
        cr_assert_eq(aw_sem_value(&trio_s), 0, "the permit went to the waiter");
    }
    cr_assert_str_eq(trio_rec, "started;finished;");
    return aw_status();
}
Test(sem, trio_test_Semaphore) { aw_test_run(trio_sem_body, NULL, 0); }

/* test_Semaphore_bounded: releasing past the bound fails and changes
 * nothing. */
static int trio_bounded_body(void *arg) {
    aw_sem_t bs = AW_SEM_INIT("bs", 1, 1);
    cr_assert_eq(aw_sem_release(&bs), -EINVAL);
    aw_err_clear();
    cr_assert_eq(aw_sem_value(&bs), 1);
    cr_assert_eq(aw_sem_acquire(&bs), 0);
    cr_assert_eq(aw_sem_value(&bs), 0);
    cr_assert_eq(aw_sem_release(&bs), 0);
    cr_assert_eq(aw_sem_value(&bs), 1);
    return 0;
}
Test(sem, trio_test_Semaphore_bounded) { aw_test_run(trio_bounded_body, NULL, 0); }

/* test_generic_lock_exclusion / _fifo_fairness with Semaphore(1). */
static aw_sem_t trio_gs = AW_SEM_INIT("generic", 1, 1);
static int trio_in_cs, trio_acquires, trio_order[64], trio_norder, trio_init[3], trio_ninit;
static int trio_excl_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++)
        aw_with (aw_sem_held(&trio_gs)) {
            trio_acquires++;
            cr_assert(!trio_in_cs);
            trio_in_cs = 1;
            aw_yield(); /* Trio's checkpoint is a schedule point: aw_yield */
            aw_yield();
            cr_assert(trio_in_cs);
            trio_in_cs = 0;
        }
    return aw_status();
}
static int trio_loopy(void *arg) {
    trio_init[trio_ninit++] = (int)(intptr_t)arg;
    for (int i = 0; i < 5; i++)
        aw_with (aw_sem_held(&trio_gs)) {
            trio_order[trio_norder++] = (int)(intptr_t)arg;
            aw_yield(); /* what Trio's acquire does uncontended, awith's not (lock.h) */
        }
    return aw_status();
}
static int trio_generic_body(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 5; i++)
            aw_spawn(g, trio_excl_worker, NULL, NULL);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(trio_acquires, 50);
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 1; i <= 3; i++)
            aw_spawn(g, trio_loopy, (void *)(intptr_t)i, NULL);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(trio_norder, 15);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(trio_order[i], trio_init[i % 3], "round %d", i / 3);
    return 0;
}
Test(sem, trio_test_generic_lock_exclusion_and_fifo_fairness) { aw_test_run(trio_generic_body, NULL, 0); }

/* ---- CPython's Lib/test/test_asyncio/test_locks.py, SemaphoreTests ----
 *
 * aw_yield() stands for asyncio.sleep(0). test_repr, test_semaphore
 * (`await sem`) and test_semaphore_value (the constructor's ValueError;
 * AW_SEM_INIT is an initialiser) have nothing to port. */
static char cp_res[64];
static int cp_append(int i) {
    char c[2] = {(char)('0' + i), 0};
    strcat(cp_res, c);
    return 0;
}
static aw_sem_t cp_s;
static int cp_take(void *arg) {
    int rc = aw_sem_acquire(&cp_s);
    if (rc < 0)
        return rc;
    return cp_append((int)(intptr_t)arg);
}

/* test_initial_value_zero and test_acquire: Semaphore(3) taken twice;
 * of three waiters the first gets the last permit; two releases go to
 * the next two in line (the value stays 0), and a fourth waits. */
static int cp_sem_acquire_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 3, 0);
    cr_assert_eq(aw_sem_acquire(&cp_s), 0);
    cr_assert_eq(aw_sem_acquire(&cp_s), 0);
    cr_assert_eq(aw_sem_value(&cp_s), 1);
    aw_task_t *t[5];
    for (int i = 1; i <= 3; i++)
        aw_spawn(NULL, cp_take, (void *)(intptr_t)i, &t[i]);
    aw_yield();
    cr_assert_str_eq(cp_res, "1");
    cr_assert_eq(aw_sem_value(&cp_s), 0);
    aw_spawn(NULL, cp_take, (void *)4, &t[4]);
    aw_sem_release(&cp_s);
    aw_sem_release(&cp_s);
    cr_assert_eq(aw_sem_value(&cp_s), 0, "handed to waiters, not counted");
    aw_yield();
    cr_assert_eq(aw_sem_value(&cp_s), 0);
    cr_assert_eq(strlen(cp_res), 3);
    cr_assert_str_eq(cp_res, "123", "FIFO: the two first in line");
    cr_assert_eq(aw_task_join(t[1]), 0);
    aw_sem_release(&cp_s);
    for (int i = 2; i <= 4; i++)
        cr_assert_eq(aw_task_join(t[i]), 0);
    cr_assert_str_eq(cp_res, "1234");
    return 0;
}
Test(sem, cpython_test_acquire) { aw_test_run(cp_sem_acquire_body, NULL, 0); }

/* test_acquire_cancel: a waiter cancelled while queued ends cancelled and
 * leaves no waiter behind. */
static int cp_sem_cancel_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 1, 0);
    cr_assert_eq(aw_sem_acquire(&cp_s), 0);
    aw_task_t *t;
    aw_spawn(NULL, cp_take, (void *)1, &t);
    aw_yield();
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    aw_sem_release(&cp_s);
    cr_assert_eq(aw_sem_value(&cp_s), 1, "nobody left in the queue");
    return 0;
}
Test(sem, cpython_test_acquire_cancel) { aw_test_run(cp_sem_cancel_body, NULL, 0); }

/* test_acquire_cancel_before_awoken: four waiters on Semaphore(0); the
 * first two are cancelled and one permit released in the same tick: the
 * third gets it, the fourth still waits. */
static int cp_before_awoken_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 0, 0);
    aw_task_t *t[5];
    for (int i = 1; i <= 4; i++)
        aw_spawn(NULL, cp_take, (void *)(intptr_t)i, &t[i]);
    aw_yield();
    aw_task_cancel(t[1]);
    aw_task_cancel(t[2]);
    aw_sem_release(&cp_s);
    aw_yield();
    aw_yield();
    cr_assert_str_eq(cp_res, "3");
    cr_assert_eq(aw_task_join(t[3]), 0);
    cr_assert_eq(aw_sem_value(&cp_s), 0);
    aw_task_cancel(t[4]);
    for (int i = 1; i <= 4; i++)
        if (i != 3)
            cr_assert_eq(aw_task_join(t[i]), -ECANCELED, "task %d", i);
    aw_err_clear();
    cr_assert_eq(aw_sem_value(&cp_s), 0, "no permit made up or lost");
    return 0;
}
Test(sem, cpython_test_acquire_cancel_before_awoken) { aw_test_run(cp_before_awoken_body, NULL, 0); }

/* test_acquire_hang: two waiters on Semaphore(0); the first is cancelled
 * and a permit released in the same tick: the second takes it, and the
 * semaphore is at 0 (locked). */
static int cp_hang_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 0, 0);
    aw_task_t *t1, *t2;
    aw_spawn(NULL, cp_take, (void *)1, &t1);
    aw_spawn(NULL, cp_take, (void *)2, &t2);
    aw_yield();
    aw_task_cancel(t1);
    aw_sem_release(&cp_s);
    aw_yield();
    aw_yield();
    cr_assert_eq(aw_sem_value(&cp_s), 0);
    cr_assert_str_eq(cp_res, "2", "t2 is done");
    cr_assert_eq(aw_task_join(t1), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(aw_task_join(t2), 0);
    return 0;
}
Test(sem, cpython_test_acquire_hang) { aw_test_run(cp_hang_body, NULL, 0); }

/* test_acquire_no_hang: c1 holds Semaphore(1) across a yield, and right
 * after its block cancels c2, to whom the permit was just handed: c2's
 * block never runs, it ends cancelled, and the permit is back (a further
 * acquire does not hang). */
static aw_task_t *cp_t2;
static int cp_c1(void *arg) {
    (void)arg;
    aw_with (aw_sem_held(&cp_s)) aw_yield();
    aw_task_cancel(cp_t2);
    return aw_status();
}
static int cp_c2_ran;
static int cp_c2(void *arg) {
    (void)arg;
    aw_with (aw_sem_held(&cp_s)) cp_c2_ran = 1;
    return aw_status();
}
static int cp_no_hang_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 1, 0);
    aw_task_t *t1;
    aw_spawn(NULL, cp_c1, NULL, &t1);
    aw_spawn(NULL, cp_c2, NULL, &cp_t2);
    cr_assert_eq(aw_task_join(t1), 0);
    cr_assert_eq(aw_task_join(cp_t2), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(cp_c2_ran, 0);
    cr_assert_eq(aw_sem_value(&cp_s), 1);
    aw_with (aw_fail_after(AW_MS(1000))) cr_assert_eq(aw_sem_acquire(&cp_s), 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(sem, cpython_test_acquire_no_hang) { aw_test_run(cp_no_hang_body, NULL, 0); }

/* test_release_not_acquired (BoundedSemaphore: ValueError) and
 * test_release_no_waiters. */
static int cp_release_body(void *arg) {
    aw_sem_t b = AW_SEM_INIT("bounded", 1, 1);
    cr_assert_eq(aw_sem_release(&b), -EINVAL);
    aw_err_clear();
    aw_sem_t s = AW_SEM_INIT("plain", 1, 0);
    cr_assert_eq(aw_sem_acquire(&s), 0);
    cr_assert_eq(aw_sem_value(&s), 0);
    cr_assert_eq(aw_sem_release(&s), 0);
    cr_assert_eq(aw_sem_value(&s), 1);
    return 0;
}
Test(sem, cpython_test_release_not_acquired_and_no_waiters) { aw_test_run(cp_release_body, NULL, 0); }

/* test_acquire_fifo_order: three tasks each take Semaphore(1) twice,
 * holding it across a sleep: c1_1 c2_1 c3_1 c1_2 c2_2 c3_2. */
static int cp_twice(void *arg) {
    int i = (int)(intptr_t)arg;
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(aw_sem_acquire(&cp_s), 0);
        cp_append(i);
        aw_sleep_ms(10);
        aw_sem_release(&cp_s);
    }
    return 0;
}
static int cp_fifo_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 1, 0);
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 1; i <= 3; i++)
            aw_spawn(g, cp_twice, (void *)(intptr_t)i, NULL);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_str_eq(cp_res, "123123");
    return 0;
}
Test(sem, cpython_test_acquire_fifo_order) { aw_test_run(cp_fifo_body, NULL, 0); }

/* test_acquire_fifo_order_3: three waiters on Semaphore(0), the first
 * cancelled; two releases go to the other two. */
static int cp_fifo3_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 0, 0);
    aw_task_t *t[4];
    for (int i = 1; i <= 3; i++)
        aw_spawn(NULL, cp_take, (void *)(intptr_t)i, &t[i]);
    aw_yield();
    aw_task_cancel(t[1]);
    aw_yield();
    aw_sem_release(&cp_s);
    aw_sem_release(&cp_s);
    cr_assert_eq(aw_task_join(t[1]), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(aw_task_join(t[2]), 0);
    cr_assert_eq(aw_task_join(t[3]), 0);
    cr_assert_str_eq(cp_res, "23");
    return 0;
}
Test(sem, cpython_test_acquire_fifo_order_3) { aw_test_run(cp_fifo3_body, NULL, 0); }

/* test_acquire_fifo_order_2: c1 takes Semaphore(1); c2 and c3 wait; two
 * releases hand a permit to c2 and then to c3. c2 gives its permit back
 * and takes one again: CPython's result is 1 2 3 4, since c3, first in
 * line, is served before c2's second acquire. With awith's direct
 * hand-off, c3 holds its permit from the second release on: c2's second
 * acquire finds a permit free and nobody waiting, so it may append 4
 * before c3 runs; no waiter is overtaken (J1). What holds in both: c3's
 * permit was granted before c2's second acquire. */
static int cp_c3_granted_before;
static aw_task_t *cp_t3;
static int cp_fifo2_c2(void *arg) {
    (void)arg;
    cr_assert_eq(aw_sem_acquire(&cp_s), 0);
    cp_append(2);
    aw_sem_release(&cp_s);
    cp_c3_granted_before = aw_sem_value(&cp_s) == 1; /* c3's permit is not the free one */
    cr_assert_eq(aw_sem_acquire(&cp_s), 0);
    cp_append(4);
    return 0;
}
static int cp_fifo2_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 1, 0);
    aw_task_t *t1, *t2;
    aw_spawn(NULL, cp_take, (void *)1, &t1);
    aw_spawn(NULL, cp_fifo2_c2, NULL, &t2);
    aw_spawn(NULL, cp_take, (void *)3, &cp_t3);
    aw_yield();
    aw_sem_release(&cp_s);
    aw_sem_release(&cp_s);
    cr_assert_eq(aw_task_join(t1), 0);
    cr_assert_eq(aw_task_join(t2), 0);
    cr_assert_eq(aw_task_join(cp_t3), 0);
    cr_assert_eq(strlen(cp_res), 4);
    cr_assert_eq(cp_res[0], '1');
    cr_assert_eq(cp_res[1], '2');
    cr_assert(cp_c3_granted_before, "c3 was served before c2 took a permit again");
    cr_assert_eq(aw_sem_value(&cp_s), 0);
    return 0;
}
Test(sem, cpython_test_acquire_fifo_order_2) { aw_test_run(cp_fifo2_body, NULL, 0); }

/* test_acquire_fifo_order_4: c1 waits on Semaphore(0); c2 releases three
 * times (one permit goes to c1, two are left: CPython asserts value 2)
 * and takes one; c3 takes the last. Every task ends holding its permit
 * and the value is 0. (CPython's append order 1 2 3 4 is its scheduling
 * of woken tasks; see fifo_order_2.) */
static int cp_f4_c2(void *arg) {
    (void)arg;
    aw_sem_release(&cp_s);
    aw_sem_release(&cp_s);
    aw_sem_release(&cp_s);
    cr_assert_eq(aw_sem_value(&cp_s), 2, "one permit handed to c1");
    cr_assert_eq(aw_sem_acquire(&cp_s), 0);
    return cp_append(2);
}
static int cp_fifo4_body(void *arg) {
    cp_s = (aw_sem_t)AW_SEM_INIT("cpython", 0, 0);
    aw_task_t *t1, *t2, *t3;
    aw_spawn(NULL, cp_take, (void *)1, &t1);
    aw_spawn(NULL, cp_f4_c2, NULL, &t2);
    aw_spawn(NULL, cp_take, (void *)3, &t3);
    cr_assert_eq(aw_task_join(t1), 0);
    cr_assert_eq(aw_task_join(t2), 0);
    cr_assert_eq(aw_task_join(t3), 0);
    cr_assert_eq(strlen(cp_res), 3);
    cr_assert_eq(aw_sem_value(&cp_s), 0);
    return 0;
}
Test(sem, cpython_test_acquire_fifo_order_4) { aw_test_run(cp_fifo4_body, NULL, 0); }
