/* tests for src/sync/lock.c (SEMANTICS J, (c) 12, 19; seed 002 section 5). */
#include "testutil.h"
#include <awith/introspect.h>

#include <string.h>

static char log_[1024];
static void note(const char *s) {
    strcat(log_, s);
    strcat(log_, ";");
}

static aw_lock_t lk = AW_LOCK_INIT("shared");

static int worker(void *arg) {
    aw_with (aw_locked(&lk)) {
        char b[32];
        snprintf(b, sizeof b, "%s+", (char *)arg);
        note(b);
        aw_sleep_ms(2);
        snprintf(b, sizeof b, "%s-", (char *)arg);
        note(b);
    }
    return aw_status();
}

static int seed_workers(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, worker, "W1", NULL);
        aw_spawn(g, worker, "W2", NULL);
        aw_spawn(g, worker, "W3", NULL);
    }
    cr_assert_str_eq(log_, "W1+;W1-;W2+;W2-;W3+;W3-;", "one at a time, in order");
    cr_assert_null(aw_lock_owner(&lk));
    return aw_status();
}
Test(lock, seed_workers_take_turns) { aw_test_run(seed_workers, NULL, 0); }

static int cycler(void *arg) {
    for (int i = 0; i < 3; i++) {
        aw_lock_acquire(&lk);
        note(arg);
        aw_yield();
        aw_lock_release(&lk);
    }
    return 0;
}
static int j1_body(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, cycler, "0", NULL);
        aw_spawn(g, cycler, "1", NULL);
        aw_spawn(g, cycler, "2", NULL);
    }
    cr_assert_str_eq(log_, "0;1;2;0;1;2;0;1;2;", "no barging");
    return 0;
}
Test(lock, J1_fifo_and_no_queue_jumping) { aw_test_run(j1_body, NULL, 0); }

static int waiter(void *arg) {
    int rc = aw_lock_acquire(&lk);
    note(rc == 0 ? "got" : "cancelled");
    if (rc == 0)
        aw_lock_release(&lk);
    aw_err_clear();
    return 0;
}
static int j2_body(void *arg) {
    aw_task_t *a, *b;
    aw_lock_acquire(&lk);
    aw_spawn(NULL, waiter, NULL, &a);
    aw_spawn(NULL, waiter, NULL, &b);
    aw_sleep_ms(1);
    aw_lock_release(&lk); /* granted to a ... */
    aw_task_cancel(a);    /* ... which is cancelled before it runs */
    aw_task_join(a);
    aw_task_join(b);
    cr_assert_str_eq(log_, "cancelled;got;", "the grant passed on to b");
    cr_assert_null(aw_lock_owner(&lk));
    return 0;
}
Test(lock, J2_woken_then_cancelled_passes_the_lock_on) { aw_test_run(j2_body, NULL, 0); }

static int j3_body(void *arg) {
    cr_assert_eq(aw_lock_release(&lk), -EPERM);
    aw_err_clear();
    return 0;
}
Test(lock, J3_release_of_a_free_lock_is_an_error) { aw_test_run(j3_body, NULL, 0); }

static int stranger(void *arg) {
    int rc = aw_lock_release(&lk);
    cr_assert_eq(rc, -EPERM);
    cr_assert(strstr(aw_err_current()->msg, "does not hold it"));
    aw_err_clear();
    return 0;
}
static int j4_body(void *arg) {
    aw_task_t *t;
    aw_lock_acquire(&lk);
    aw_spawn(NULL, stranger, NULL, &t);
    aw_task_join(t);
    cr_assert_eq(aw_lock_owner(&lk), aw_task_self());
    aw_lock_release(&lk);
    return 0;
}
Test(lock, J4_c12_release_by_a_non_owner_is_EPERM) { aw_test_run(j4_body, NULL, 0); }

static int j5_body(void *arg) {
    aw_lock_acquire(&lk);
    cr_assert_eq(aw_lock_acquire(&lk), -EDEADLK);
    aw_err_clear();
    aw_lock_release(&lk);
    return 0;
}
Test(lock, J5_c12_reacquire_by_the_owner_is_EDEADLK) { aw_test_run(j5_body, NULL, 0); }

static int c19_cancelled(void *arg) {
    aw_task_cancel(aw_task_self());
    cr_assert_eq(aw_lock_acquire(&lk), -ECANCELED, "uncontended, yet a cancellation point");
    cr_assert_null(aw_lock_owner(&lk));
    aw_err_clear();
    return 0;
}
Test(lock, c19_uncontended_acquire_is_a_cancellation_point) {
    cr_assert_eq(aw_main(c19_cancelled, NULL), 0);
}

static int ran;
static int other(void *arg) {
    ran++;
    return 0;
}
static int c19_fair(void *arg) {
    aw_spawn(NULL, other, NULL, NULL);
    for (int i = 0; i < 100000; i++) {
        aw_lock_acquire(&lk);
        aw_lock_release(&lk);
    }
    cr_assert_geq(ran, 1, "another ready task ran during 100k uncontended acquires");
    return 0;
}
Test(lock, c19_uncontended_acquires_let_others_run) { aw_test_run(c19_fair, NULL, 0); }

/* J8 (tokio loses a cancelled waiter's place; awith must not lose anyone
 * else's): W1, W2, W3 queue behind the holder; W2 is cancelled while it
 * waits; W4 queues after that. The lock goes W1, W3, W4: the cancel took
 * only W2 out, and W3 kept its place ahead of the newcomer. */
static int j8_waiter(void *arg) {
    int rc = aw_lock_acquire(&lk);
    char b[32];
    snprintf(b, sizeof b, "%s%s", (char *)arg, rc == 0 ? "" : "-cancelled");
    note(b);
    if (rc == 0) {
        aw_sleep_ms(1);
        aw_lock_release(&lk);
    }
    aw_err_clear();
    return 0;
}
static int j8_body(void *arg) {
    aw_task_t *w[4];
    static char *names[] = {"W1", "W2", "W3", "W4"};
    cr_assert_eq(aw_lock_acquire(&lk), 0);
    for (int i = 0; i < 3; i++)
        aw_spawn(NULL, j8_waiter, names[i], &w[i]);
    aw_sleep_ms(1); /* all three are queued */
    aw_task_cancel(w[1]);
    aw_sleep_ms(1);
    cr_assert_str_eq(log_, "W2-cancelled;");
    aw_spawn(NULL, j8_waiter, names[3], &w[3]);
    aw_sleep_ms(1);
    cr_assert_eq(aw_lock_release(&lk), 0);
    for (int i = 0; i < 4; i++)
        aw_task_join(w[i]);
    cr_assert_str_eq(log_, "W2-cancelled;W1;W3;W4;", "no other waiter lost its place");
    cr_assert_null(aw_lock_owner(&lk));
    return 0;
}
Test(lock, J8_a_cancelled_waiter_costs_no_other_waiter_its_place) { aw_test_run(j8_body, NULL, 0); }

/* ======================= M6: a task that ends holding a lock ======================= */

/* Rule: the lock is released when its owner ends; the owner's status is
 * -EOWNERDEAD naming the lock and where it was acquired; the next acquirer
 * gets -EOWNERDEAD once (naming the dead owner), not holding the lock, and
 * the one after gets the lock. Waiters never hang; the dump never crashes. */
static aw_lock_t m6_lk = AW_LOCK_INIT("ledger");
static int m6_line;
static aw_event_t m6_go = AW_EVENT_INIT;
static int m6_rc[3] = {1, 1, 1};
static char m6_msg[256];
static int m6_dies_holding(void *arg) {
    m6_line = __LINE__ + 1;
    aw_lock_acquire(&m6_lk);
    aw_event_wait(&m6_go);
    return 0; /* forgets the lock */
}
static int m6_waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    m6_rc[i] = aw_lock_acquire(&m6_lk);
    if (m6_rc[i] == -EOWNERDEAD)
        snprintf(m6_msg, sizeof m6_msg, "%s", aw_err_current()->msg);
    if (m6_rc[i] == 0) {
        aw_sleep_ms(1);
        aw_lock_release(&m6_lk);
    }
    aw_err_clear();
    return 0;
}
static char m6_out[8192];
static void m6_dump(void) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    aw_loop_dump(f); /* must not crash, whatever the state */
    rewind(f);
    m6_out[fread(m6_out, 1, sizeof m6_out - 1, f)] = 0;
    fclose(f);
}
static int m6(void *arg) {
    aw_task_t *a, *b, *c;
    aw_spawn(NULL, m6_dies_holding, NULL, &a);
    aw_sleep_ms(1); /* a holds it */
    aw_spawn(NULL, m6_waiter, (void *)1, &b);
    aw_spawn(NULL, m6_waiter, (void *)2, &c);
    aw_sleep_ms(1);
    m6_dump();
    aw_event_set(&m6_go);
    char held[96];
    snprintf(held, sizeof held, "holds lock 'ledger', acquired at %s:%d", __FILE__, m6_line);
    cr_assert_not_null(strstr(m6_out, held), "the dump shows no acquisition site:\n%s", m6_out);
    int st = aw_task_join(a);
    m6_dump();
    cr_assert_eq(st, -EOWNERDEAD, "the task's status does not report the lock (%s)",
                 aw_err_name(st));
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    char site[64];
    snprintf(site, sizeof site, "lock.c:%d", m6_line);
    cr_assert_not_null(strstr(e->msg, "ledger"), "msg: %s", e->msg);
    cr_assert_not_null(strstr(e->msg, site), "no acquisition site in: %s", e->msg);
    aw_err_clear();
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        aw_task_join(b);
        aw_task_join(c);
    }
    aw_err_clear();
    m6_dump();
    cr_assert_eq(m6_rc[1], -EOWNERDEAD, "the next acquirer was not told (%d)", m6_rc[1]);
    cr_assert_not_null(strstr(m6_msg, "m6_dies_holding"), "msg: %s", m6_msg);
    cr_assert_eq(m6_rc[2], 0, "the one after it gets the lock");
    cr_assert_null(aw_lock_owner(&m6_lk));
    cr_assert_eq(aw_lock_acquire(&m6_lk), 0, "told once only");
    aw_lock_release(&m6_lk);
    return 0;
}
Test(lock, M6_a_task_ending_with_a_lock_releases_it_and_the_next_acquirer_is_told) {
    aw_test_run(m6, NULL, 0);
}

/* M6 with decision 5: a task that fails by returning a bare code (no
 * record raised) while it still holds a lock ends with -EOWNERDEAD, and
 * its own failure stays in the chain below it: the lock's report goes
 * over the failure, not instead of it. The same through aw_gather's
 * slot, which reports the lock too. */
static aw_lock_t m6b_lk = AW_LOCK_INIT("journal");
static int m6b_fails_holding(void *arg) {
    (void)arg;
    aw_lock_acquire(&m6b_lk);
    return -EIO; /* the write failed; the lock is left held */
}
static int m6b_result(void *arg, void **v) {
    (void)v;
    return m6b_fails_holding(arg);
}
static int m6b_main(void *arg) {
    (void)arg;
    aw_task_t *t;
    aw_spawn(NULL, m6b_fails_holding, NULL, &t);
    cr_assert_eq(aw_task_join(t), -EOWNERDEAD);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EOWNERDEAD);
    const aw_err_t *io = aw_err_find(e, -EIO);
    cr_assert_not_null(io, "the task's own failure was lost under -EOWNERDEAD");
    cr_assert_not_null(strstr(io->msg, "m6b_fails_holding"), "msg: %s", io->msg);
    aw_err_clear();
    cr_assert_eq(aw_lock_acquire(&m6b_lk), -EOWNERDEAD, "the next acquirer is told");
    aw_err_clear();
    aw_lock_release(&m6b_lk);
    aw_result_t r[] = {AW_RESULT(m6b_result, NULL)};
    cr_assert_eq(aw_gather(r, 1), -AW_EGROUP);
    cr_assert_eq(r[0].status, -EOWNERDEAD);
    const aw_err_t *m = aw_err_current()->members;
    cr_assert(m && m->code == -EOWNERDEAD);
    cr_assert_not_null(aw_err_find(m, -EIO), "the child's own failure was lost");
    aw_err_clear();
    if (aw_lock_acquire(&m6b_lk) < 0)
        aw_err_clear();
    aw_lock_release(&m6b_lk);
    return 0;
}
Test(lock, M6_a_bare_failure_of_a_task_ending_with_a_lock_is_kept_below_the_report) {
    aw_test_run(m6b_main, NULL, 0);
}

/* The dump in the state of the bug: the owner has ended, a waiter waits. */
static int m6_dump_main(void *arg) {
    aw_task_t *b;
    /* a stack of its own, unmapped when the task is released: a dangling
     * owner pointer is then a fault, not stale data in the stack cache */
    aw_task_opts_t o = {.stack_size = 3 * 65536};
    aw_spawn_opts(NULL, m6_dies_holding, NULL, &o, NULL);
    aw_sleep_ms(1);
    aw_spawn(NULL, m6_waiter, (void *)1, &b);
    aw_sleep_ms(1);
    aw_event_set(&m6_go);
    for (int i = 0; i < 20 && m6_rc[1] == 1; i++) {
        m6_dump();
        aw_sleep_ms(1);
    }
    m6_dump();
    aw_with (aw_move_on_after(AW_SEC(10))) {
        aw_task_join(b);
    }
    aw_err_clear();
    return 0;
}
Test(lock, M6_the_dump_does_not_crash_after_an_owner_ended_holding_a_lock) {
    /* the ended owner is a root-group task that failed (-EOWNERDEAD): the
     * loop reports it at close */
    aw_test_run(m6_dump_main, NULL, -AW_EGROUP);
}

/* Acquiring a lock the task already holds, with a cancel pending: the
 * cancellation point answers first (-ECANCELED, not -EDEADLK; found by
 * the composition fuzzer, seed 11264). */
static int reacquire_cancelled(void *arg) {
    aw_lock_t l = AW_LOCK_INIT("relock");
    cr_assert_eq(aw_lock_acquire(&l), 0);
    aw_task_cancel(aw_task_self());
    cr_assert_eq(aw_lock_acquire(&l), -ECANCELED);
    aw_err_clear();
    aw_lock_release(&l);
    return 0;
}
Test(lock, a_cancel_pending_wins_over_reacquiring_a_held_lock) {
    aw_test_run(reacquire_cancelled, NULL, 0);
}

/* A waiter under a deadline: one that expires leaves the queue with
 * -ECANCELED and costs nobody a place; one that does not (its timer is
 * armed for the wait) is granted the lock, and its timer goes with the
 * wake-up. The acquire's path for a chain with a deadline (the inline
 * path takes only a clear point). */
static int timed_waiter(void *arg) {
    aw_ns_t after = *(aw_ns_t *)arg;
    int rc = -1;
    aw_with (aw_scope_t *s, aw_move_on_after(after)) {
        rc = aw_lock_acquire(&lk);
        note(rc == 0 ? "got" : aw_scope_expired(s) ? "expired" : "cancelled");
        if (rc == 0) {
            cr_assert_eq(aw_lock_owner(&lk), aw_task_self());
            aw_lock_release(&lk);
        }
    }
    aw_err_clear();
    return 0;
}
static int deadline_body(void *arg) {
    static aw_ns_t soon = AW_MS(1), late = AW_SEC(100);
    aw_task_t *a, *b;
    aw_lock_acquire(&lk);
    aw_spawn(NULL, timed_waiter, &soon, &a);
    aw_spawn(NULL, timed_waiter, &late, &b);
    aw_task_join(a); /* its deadline expires while the lock is held */
    cr_assert_str_eq(log_, "expired;");
    aw_lock_release(&lk); /* to b, queued behind a */
    aw_task_join(b);
    cr_assert_str_eq(log_, "expired;got;");
    cr_assert_null(aw_lock_owner(&lk));
    aw_loop_stats_t st;
    aw_loop_stats(&st);
    cr_assert_eq(st.timers, 0, "no timer left armed by the granted wait");
    return 0;
}
Test(lock, a_waiter_under_a_deadline_expires_or_is_granted) { aw_test_run(deadline_body, NULL, 0); }

/* ---- Trio's test_sync.py, ported ---- */

/* test_Lock_and_StrictFIFOLock: ownership errors; a holder and a waiter
 * cancelled by their group leave the lock free with nobody waiting. */
static aw_lock_t trio_l = AW_LOCK_INIT("trio");
static aw_task_t *trio_holder_task;
static int trio_holder(void *arg) {
    (void)arg;
    if (!trio_holder_task)
        trio_holder_task = aw_task_self();
    aw_with (aw_locked(&trio_l)) {
        aw_sleep(AW_NEVER);
    }
    return aw_status();
}
static int trio_lock_body(void *arg) {
    cr_assert_null(aw_lock_owner(&trio_l));
    aw_with (aw_locked(&trio_l)) {
        cr_assert_eq(aw_lock_owner(&trio_l), aw_task_self());
    }
    cr_assert_null(aw_lock_owner(&trio_l));
    cr_assert_eq(aw_lock_acquire(&trio_l), 0);
    cr_assert_eq(aw_lock_acquire(&trio_l), -EDEADLK);
    aw_err_clear();
    cr_assert_eq(aw_lock_release(&trio_l), 0);
    cr_assert_eq(aw_lock_release(&trio_l), -EPERM);
    aw_err_clear();
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, trio_holder, NULL, NULL);
        aw_sleep_ms(2);
        cr_assert_eq(aw_lock_owner(&trio_l), trio_holder_task);
        cr_assert_eq(aw_lock_release(&trio_l), -EPERM);
        aw_err_clear();
        aw_spawn(g, trio_holder, NULL, NULL);
        aw_sleep_ms(2);
        aw_group_cancel(g);
    }
    cr_assert_eq(aw_status(), 0, "got %d", aw_status());
    cr_assert_null(aw_lock_owner(&trio_l));
    cr_assert_eq(aw_lock_acquire(&trio_l), 0, "nobody is left waiting or holding");
    aw_lock_release(&trio_l);
    return 0;
}
Test(lock, trio_test_Lock_and_StrictFIFOLock) { aw_test_run(trio_lock_body, NULL, 0); }

/* test_generic_lock_fifo_fairness and _acquire_nowait_blocks_acquire
 * with Lock. Trio's acquire is a schedule point even uncontended; awith's
 * yields only every 128th time in a row (lock.h), so the body yields, as
 * Trio's acquire would, for the three to queue: then no releaser jumps
 * the queue (J1). */
static aw_lock_t trio_gl = AW_LOCK_INIT("generic");
static int trio_order[64], trio_norder, trio_init[3], trio_ninit;
static char trio_rec[64];
static int trio_loopy(void *arg) {
    trio_init[trio_ninit++] = (int)(intptr_t)arg;
    for (int i = 0; i < 5; i++)
        aw_with (aw_locked(&trio_gl)) {
            trio_order[trio_norder++] = (int)(intptr_t)arg;
            aw_yield();
        }
    return aw_status();
}
static int trio_taker(void *arg) {
    (void)arg;
    strcat(trio_rec, "started;");
    aw_with (aw_locked(&trio_gl)) {
    }
    strcat(trio_rec, "finished;");
    return aw_status();
}
static int trio_fifo_body(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 1; i <= 3; i++)
            aw_spawn(g, trio_loopy, (void *)(intptr_t)i, NULL);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(trio_norder, 15);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(trio_order[i], trio_init[i % 3], "round %d", i / 3);
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_lock_acquire(&trio_gl), 0);
        aw_spawn(g, trio_taker, NULL, NULL);
        aw_sleep_ms(2);
        cr_assert_str_eq(trio_rec, "started;");
        aw_lock_release(&trio_gl);
    }
    cr_assert_str_eq(trio_rec, "started;finished;");
    return aw_status();
}
Test(lock, trio_test_generic_lock_fifo_fairness) { aw_test_run(trio_fifo_body, NULL, 0); }

/* test_lock_acquire_unowned_lock / test_lock_multiple_acquire: a task
 * that ends holding the lock never leaves its waiters hanging. Trio
 * breaks the lock for good; awith tells each acquirer once (-EOWNERDEAD)
 * and the lock is usable again (lock.h, SEMANTICS M6). */
static aw_lock_t trio_ul = AW_LOCK_INIT("unowned");
static int trio_just_acquire(void *arg) {
    (void)arg;
    return aw_lock_acquire(&trio_ul);
}
static int trio_unowned_body(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, trio_just_acquire, NULL, NULL);
        aw_spawn(g, trio_just_acquire, NULL, NULL);
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert_not_null(aw_err_find(e->members, -EOWNERDEAD));
    aw_err_clear();
    cr_assert_null(aw_lock_owner(&trio_ul));
    return 0;
}
Test(lock, trio_test_lock_multiple_acquire) { aw_test_run(trio_unowned_body, NULL, 0); }

/* test_lock_handover: release hands the lock to the waiter at once (it
 * owns it before it runs); the waiter then ends holding it (M6). */
static aw_lock_t trio_hl = AW_LOCK_INIT("handover");
static aw_task_t *trio_hl_child;
static int trio_hl_acquire(void *arg) {
    (void)arg;
    trio_hl_child = aw_task_self();
    return aw_lock_acquire(&trio_hl);
}
static int trio_handover_body(void *arg) {
    cr_assert_eq(aw_lock_acquire(&trio_hl), 0);
    aw_task_t *owner_after_release = NULL;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, trio_hl_acquire, NULL, NULL);
        aw_sleep_ms(2);
        cr_assert_eq(aw_lock_release(&trio_hl), 0);
        owner_after_release = aw_lock_owner(&trio_hl);
    }
    cr_assert_not_null(trio_hl_child);
    cr_assert_eq(owner_after_release, trio_hl_child, "the waiter owns the lock as release returns");
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert_eq(e->members->code, -EOWNERDEAD);
    aw_err_clear();
    cr_assert_null(aw_lock_owner(&trio_hl));
    return 0;
}
Test(lock, trio_test_lock_handover) { aw_test_run(trio_handover_body, NULL, 0); }

/* ---- CPython's Lib/test/test_asyncio/test_locks.py, LockTests ----
 *
 * asyncio's Lock has no owner: its tests release, from the test, a lock a
 * task took. awith's lock has one (J4 ⚠, lock.h: release by a non-owner
 * is -EPERM), so here each task that takes the lock holds it until the
 * test says "go" (an event), then releases it itself: the order in which
 * the tasks get the lock is what CPython asserts. test_lock,
 * test_lock_by_with_statement and the loop-parameter tests are about
 * Python's `await lock` and constructor syntax: nothing to port. */
static aw_lock_t cp_l = AW_LOCK_INIT("cpython");
static char cp_res[64];
static aw_event_t cp_go[4];
static int cp_lockit(void *arg) {
    int i = (int)(intptr_t)arg;
    int rc = aw_lock_acquire(&cp_l);
    if (rc < 0)
        return rc;
    char c[2] = {(char)('0' + i), 0};
    strcat(cp_res, c);
    rc = aw_event_wait(&cp_go[i]); /* "the test releases it" */
    aw_lock_release(&cp_l);
    return rc;
}
/* test_acquire: three waiters get the lock in the order they asked,
 * also the one that queued after two releases. */
static int cp_acquire_body(void *arg) {
    aw_task_t *t1, *t2, *t3;
    cr_assert_eq(aw_lock_acquire(&cp_l), 0);
    aw_spawn(NULL, cp_lockit, (void *)1, &t1);
    aw_spawn(NULL, cp_lockit, (void *)2, &t2);
    aw_yield();
    cr_assert_str_eq(cp_res, "");
    aw_lock_release(&cp_l);
    aw_yield();
    cr_assert_str_eq(cp_res, "1");
    aw_yield();
    cr_assert_str_eq(cp_res, "1");
    aw_spawn(NULL, cp_lockit, (void *)3, &t3);
    aw_event_set(&cp_go[1]);
    aw_yield();
    aw_yield();
    cr_assert_str_eq(cp_res, "12");
    aw_event_set(&cp_go[2]);
    aw_yield();
    aw_yield();
    cr_assert_str_eq(cp_res, "123");
    aw_event_set(&cp_go[3]);
    cr_assert_eq(aw_task_join(t1), 0);
    cr_assert_eq(aw_task_join(t2), 0);
    cr_assert_eq(aw_task_join(t3), 0);
    cr_assert_null(aw_lock_owner(&cp_l));
    return 0;
}
Test(lock, cpython_test_acquire) { aw_test_run(cp_acquire_body, NULL, 0); }

/* test_acquire_cancel: a waiter cancelled while queued ends with
 * CancelledError and leaves no waiter behind: the next release frees the
 * lock and the next acquire takes it at once. */
static int cp_acquirer(void *arg) {
    (void)arg;
    int rc = aw_lock_acquire(&cp_l);
    if (rc == 0)
        aw_lock_release(&cp_l);
    return rc;
}
static int cp_acquire_cancel_body(void *arg) {
    aw_task_t *t;
    cr_assert_eq(aw_lock_acquire(&cp_l), 0);
    aw_spawn(NULL, cp_acquirer, NULL, &t);
    aw_yield();
    aw_task_cancel(t);
    cr_assert_eq(aw_task_join(t), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(aw_lock_release(&cp_l), 0);
    cr_assert_null(aw_lock_owner(&cp_l), "no waiter left to hand the lock to");
    cr_assert_eq(aw_lock_acquire(&cp_l), 0);
    aw_lock_release(&cp_l);
    return 0;
}
Test(lock, cpython_test_acquire_cancel) { aw_test_run(cp_acquire_cancel_body, NULL, 0); }

/* test_cancel_race: A holds the lock, B and C wait; in one tick B is
 * cancelled and A releases. The lock goes past B to C, and ends free. */
static aw_event_t cp_fa;
static int cp_a(void *arg) {
    (void)arg;
    aw_with (aw_locked(&cp_l)) aw_event_wait(&cp_fa);
    return aw_status();
}
static int cp_race_body(void *arg) {
    aw_task_t *ta, *tb, *tc;
    aw_spawn(NULL, cp_a, NULL, &ta);
    aw_yield();
    cr_assert_eq(aw_lock_owner(&cp_l), ta);
    aw_spawn(NULL, cp_acquirer, NULL, &tb);
    aw_yield();
    aw_spawn(NULL, cp_acquirer, NULL, &tc);
    aw_yield();
    aw_event_set(&cp_fa);
    aw_task_cancel(tb);
    aw_yield();
    cr_assert_eq(aw_task_join(ta), 0);
    cr_assert_eq(aw_task_join(tb), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(aw_task_join(tc), 0);
    cr_assert_null(aw_lock_owner(&cp_l));
    return 0;
}
Test(lock, cpython_test_cancel_race) { aw_test_run(cp_race_body, NULL, 0); }

/* test_cancel_release_race (bpo-32734): the test holds the lock, three
 * tasks wait; in one tick the first is cancelled and the lock released:
 * exactly one of them takes it (the second), never two. */
static int cp_lock_count, cp_call_count;
static aw_event_t cp_done;
static int cp_counter(void *arg) {
    (void)arg;
    cp_call_count++;
    int rc = aw_lock_acquire(&cp_l);
    if (rc < 0)
        return rc;
    cp_lock_count++;
    rc = aw_event_wait(&cp_done);
    aw_lock_release(&cp_l);
    return rc;
}
static int cp_release_race_body(void *arg) {
    aw_task_t *t1, *t2, *t3;
    cr_assert_eq(aw_lock_acquire(&cp_l), 0);
    aw_spawn(NULL, cp_counter, NULL, &t1);
    aw_spawn(NULL, cp_counter, NULL, &t2);
    aw_spawn(NULL, cp_counter, NULL, &t3);
    aw_yield();
    aw_task_cancel(t1);
    aw_lock_release(&cp_l);
    cr_assert_eq(aw_task_join(t1), -ECANCELED);
    aw_err_clear();
    for (int i = 0; i < 4; i++)
        aw_yield();
    cr_assert_eq(cp_lock_count, 1, "only one lock was taken");
    cr_assert_eq(cp_call_count, 3);
    cr_assert_eq(aw_lock_owner(&cp_l), t2);
    aw_task_cancel(t3);
    cr_assert_eq(aw_task_join(t3), -ECANCELED);
    aw_err_clear();
    aw_event_set(&cp_done);
    cr_assert_eq(aw_task_join(t2), 0);
    cr_assert_null(aw_lock_owner(&cp_l));
    return 0;
}
Test(lock, cpython_test_cancel_release_race) { aw_test_run(cp_release_race_body, NULL, 0); }

/* test_finished_waiter_cancelled: B waits; C is created; B is cancelled
 * and the lock released in one tick: B ends cancelled and C, though it
 * had not queued yet, takes the lock (no lost wake-up). */
static int cp_finished_body(void *arg) {
    aw_task_t *tb, *tc;
    cr_assert_eq(aw_lock_acquire(&cp_l), 0);
    aw_spawn(NULL, cp_acquirer, NULL, &tb);
    aw_yield();
    aw_spawn(NULL, cp_lockit, (void *)1, &tc);
    aw_task_cancel(tb);
    aw_lock_release(&cp_l);
    aw_yield();
    aw_yield();
    cr_assert_eq(aw_lock_owner(&cp_l), tc, "locked, by C");
    cr_assert_eq(aw_task_join(tb), -ECANCELED);
    aw_err_clear();
    aw_event_set(&cp_go[1]);
    cr_assert_eq(aw_task_join(tc), 0);
    cr_assert_str_eq(cp_res, "1");
    return 0;
}
Test(lock, cpython_test_finished_waiter_cancelled) { aw_test_run(cp_finished_body, NULL, 0); }

/* test_release_not_acquired (RuntimeError), test_release_no_waiters and
 * test_context_manager. */
static int cp_release_body(void *arg) {
    cr_assert_eq(aw_lock_release(&cp_l), -EPERM);
    aw_err_clear();
    cr_assert_eq(aw_lock_acquire(&cp_l), 0);
    cr_assert_eq(aw_lock_owner(&cp_l), aw_task_self());
    cr_assert_eq(aw_lock_release(&cp_l), 0);
    cr_assert_null(aw_lock_owner(&cp_l));
    aw_with (aw_locked(&cp_l)) cr_assert_eq(aw_lock_owner(&cp_l), aw_task_self());
    cr_assert_null(aw_lock_owner(&cp_l));
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(lock, cpython_test_release_not_acquired_no_waiters_and_context_manager) {
    aw_test_run(cp_release_body, NULL, 0);
}
