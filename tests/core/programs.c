/* tests/core/programs.c: whole small programs, written the way an asyncio
 * or Trio user writes them, each mixing several pieces (deadlines around
 * generator managers, exits that handle their own errors under cancel and
 * shields, exit stacks filled in loops, worker pools fed by a generator,
 * to_thread calls cancelled while queued). Each checks the status, the
 * error chain, that every manager entered exited exactly once, and that
 * nothing was reported that the program did not cause. The probes at the
 * end compare the chain a plain block leaves with the one left when the
 * same scope is held at a generator manager's yield (directly, in an exit
 * stack, composed), and nested blocks with exit stacks and wrappers.
 * Lines covered: decisions 2, 6; A12; C4, C6, C13; D1, D5, D9; E5, E6;
 * F3; G1, G9, G10; H2; I10; J2; M2, M3, M4, M5, M7; (c) 1, 2.
 *
 * Timing: what must be cut waits 5 s against a deadline of a few ms; what
 * must finish gets a wait of a few ms under a grace of seconds. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* ---- helpers ---- */

static char log_[1024]; /* each test runs in a process of its own */
static void note(const char *s) {
    strcat(log_, s);
    strcat(log_, ";");
}

/* Reports the library makes (awith/log.h), kept to check that a program
 * that handled everything is not told about anything. */
static char reports[4096];
static void keep_report(const char *msg, void *arg) {
    (void)arg;
    strncat(reports, msg, sizeof reports - strlen(reports) - 1);
}

/* Is there a record with this code in e's context chain? */
static bool chain_has(const aw_err_t *e, int code) { return aw_err_find(e, code) != NULL; }

/* How many records with this code are in e's context chain? */
static int chain_count(const aw_err_t *e, int code) {
    int n = 0;
    for (; e; e = e->context)
        n += e->code == code;
    return n;
}

/* What a manager counts: its enters and exits. */
typedef struct counted {
    const char *name;
    int enters, exits;
    int seen;      /* code of the error exit was handed, 0 for none */
} counted_t;

/* ======== program 4: a deadline around a generator manager's yield ======== */

/* The generator of a "connection": enter counts, the yield hands out the
 * connection, and cleanup awaits a 5 ms "goodbye" (grace) and records
 * what it saw at the yield and whether its own await ran to the end. */
typedef struct conn_gen {
    counted_t res;
    int at_yield;          /* what aw_gencm_yield returned */
    int err_code;          /* aw_gencm_error's code */
    int goodbye;           /* the cleanup's own sleep */
    int pending_in_cleanup;/* aw_status() in the cleanup, before its await */
} conn_gen_t;
static int conn_gen(aw_gencm_t *g, void *arg) {
    conn_gen_t *c = arg;
    c->res.enters++;
    int rc = aw_gencm_yield(g, &c->res);
    c->at_yield = rc;
    const aw_err_t *e = aw_gencm_error(g);
    c->err_code = e ? e->code : 0;
    c->pending_in_cleanup = aw_status();
    c->goodbye = aw_sleep_ms(5);
    c->res.exits++;
    return rc;
}

/* The body sleeps past the outer deadline. Python:
 *     async with asyncio.timeout(0.01):
 *         async with conn() as c:
 *             await asyncio.sleep(5)
 * gives TimeoutError (context CancelledError); the generator gets
 * CancelledError at its yield, and its cleanup's await (awith: shielded,
 * decision 2) runs to the end. */
static conn_gen_t p4;
static int p4_body;
static int p4_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(10))) {
        aw_with (counted_t *r, aw_gencm(conn_gen, &p4)) {
            p4_body = aw_sleep(AW_SEC(5));
            note(r == &p4.res ? "as-ok" : "as-wrong");
        }
        /* C has no unwinding: the statement after the inner block runs,
         * with the block's cancel pending (awith/with.h) */
        note(aw_status() == -ECANCELED ? "after-inner-cancelled" : "after-inner-clean");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "left with %s", aw_err_name(e->code));
    cr_assert(chain_has(e, -ECANCELED));
    cr_assert_eq(chain_count(e, -ECANCELED), 1, "the cancel appears once in the chain");
    aw_err_clear();
    return 0;
}
Test(programs, G1_a_deadline_over_a_generator_managers_block_times_it_out) {
    aw_test_run(p4_main, NULL, 0);
    cr_assert_eq(p4_body, -ECANCELED);
    cr_assert_eq(p4.res.enters, 1);
    cr_assert_eq(p4.res.exits, 1);
    cr_assert_eq(p4.at_yield, -ECANCELED, "the generator saw %d at its yield", p4.at_yield);
    cr_assert_eq(p4.err_code, -ECANCELED);
    cr_assert_eq(p4.pending_in_cleanup, -ECANCELED, "the cancel is pending at the yield (M3)");
    cr_assert_eq(p4.goodbye, 0, "the cleanup's await runs shielded (decision 2)");
    cr_assert_str_eq(log_, "as-ok;after-inner-cancelled;", "%s", log_);
}

/* The deadline is the generator's own, around its yield (M3: it covers
 * the block), and the cleanup awaits afterwards. Python:
 *     @asynccontextmanager
 *     async def conn():
 *         async with asyncio.timeout(0.01):
 *             yield c
 *         await goodbye()
 * The block is cut, the TimeoutError leaves the block. */
static conn_gen_t p4b;
static int p4b_gen(aw_gencm_t *g, void *arg) {
    conn_gen_t *c = arg;
    c->res.enters++;
    aw_with (aw_fail_after(AW_MS(10))) {
        c->at_yield = aw_gencm_yield(g, &c->res);
    }
    c->pending_in_cleanup = aw_status();
    c->goodbye = aw_sleep_ms(5);
    c->res.exits++;
    return aw_status();
}
static int p4b_body;
static int p4b_main(void *arg) {
    aw_with (counted_t *r, aw_gencm(p4b_gen, &p4b)) {
        p4b_body = aw_sleep(AW_SEC(5));
        note("body-end");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "left with %s", aw_err_name(e->code));
    cr_assert_eq(chain_count(e, -ECANCELED), 1);
    aw_err_clear();
    /* nothing of the generator's deadline is left behind */
    cr_assert_eq(aw_sleep_ms(1), 0);
    return 0;
}
Test(programs, M3_a_deadline_around_the_generators_yield_times_the_block_out) {
    aw_test_run(p4b_main, NULL, 0);
    cr_assert_eq(p4b_body, -ECANCELED);
    cr_assert_eq(p4b.at_yield, -ECANCELED);
    cr_assert_eq(p4b.pending_in_cleanup, -ETIMEDOUT);
    cr_assert_eq(p4b.goodbye, 0, "after its scope, the generator's cleanup runs shielded");
    cr_assert_eq(p4b.res.enters, 1);
    cr_assert_eq(p4b.res.exits, 1);
}

/* The generator's cleanup overruns the exit grace: it is cut, reported by
 * name, and the block's timeout is kept under the grace failure (M4). */
static int p4c_cut;
static int p4c_gen(aw_gencm_t *g, void *arg) {
    int rc = aw_gencm_yield(g, NULL);
    p4c_cut = aw_sleep(AW_SEC(5));
    return rc;
}
static int p4c_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_gencm(p4c_gen, NULL)) {
            aw_sleep(AW_SEC(5));
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    /* "exit of p4c_gen overran its grace" <- "the deadline expired too" <-
     * the cancel (M4: the scope ends its cancel, not the exit's failure) */
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert(strstr(e->msg, "p4c_gen") && strstr(e->msg, "grace"), "%s", e->msg);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -ETIMEDOUT, "the deadline is kept");
    cr_assert_eq(chain_count(e, -ECANCELED), 1);
    aw_err_clear();
    return 0;
}
Test(programs, c2_a_generator_cleanup_over_its_grace_is_cut_and_the_timeout_kept) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(20), .log = keep_report};
    cr_assert_eq(aw_main_opts(&o, p4c_main, NULL), 0);
    cr_assert_eq(p4c_cut, -ECANCELED);
    cr_assert_str_eq(reports, "", "the program handled it: nothing reported (%s)", reports);
}

/* ======== program 5: exits that handle their own errors, under cancel ======== */

/* A "flusher": its exit tries a flush that fails, handles that failure
 * itself (Python: try: await flush() except OSError: pass), then awaits
 * a 1 ms close. It records what it was handed, what was pending after its
 * own clear, and whether its await ran. */
typedef struct flusher {
    int enters, exits;
    int handed;            /* err->code, 0 for none */
    int after_clear;       /* aw_status() after its own clear */
    int close_rc;          /* its await */
    int ret;               /* what it returns: 0, or AW_SUPPRESS */
} flusher_t;
static int flusher_enter(void *self, void **out) {
    flusher_t *f = self;
    f->enters++;
    *out = f;
    return aw_checkpoint();
}
static int flusher_exit(void *self, const aw_err_t *err) {
    flusher_t *f = self;
    f->exits++;
    f->handed = err ? err->code : 0;
    if (aw_raise(-EIO, "flush: disk full") < 0)
        aw_err_clear();
    f->after_clear = aw_status();
    f->close_rc = aw_sleep_ms(1);
    return f->ret;
}
static const aw_cm_type_t flusher_type = {"flusher", flusher_enter, flusher_exit, 0, 0, NULL};

/* An exit stack callback that does the same: fails, handles it, awaits. */
static int cb_runs, cb_after_clear, cb_sleep;
static int handling_callback(void *arg) {
    cb_runs++;
    uint64_t m = aw_err_mark();
    if (aw_raise(-EPIPE, "notify: peer gone") < 0)
        aw_err_restore(m);
    cb_after_clear = aw_status();
    cb_sleep = aw_sleep_ms(1);
    return 0;
}

/* Inside an exit stack: a flusher entered in the stack, then a shield,
 * inside it a cancel scope that is cancelled, inside that another flusher
 * around a sleep. Trio:
 *     async with AsyncExitStack() as st:
 *         await st.enter_async_context(flusher(a))
 *         with CancelScope(shield=True):
 *             with CancelScope() as cs:
 *                 async with flusher(b):
 *                     cs.cancel(); await sleep(5)
 *         await sleep(0.001)      # runs: the scope absorbed its cancel
 * The inner flusher sees the cancel, its own EIO is handled, and the
 * scope ends its cancel: the stack exits clean. */
static flusher_t p5a_outer, p5a_inner;
static int p5a_after;
static int p5a_main(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_cm(&flusher_type, &p5a_outer), NULL), 0);
        cr_assert_eq(aw_exitstack_callback(st, handling_callback, NULL), 0);
        aw_with (aw_shield(AW_NEVER)) {
            aw_with (aw_scope_t *cs, aw_cancel_scope()) {
                aw_with (aw_cm(&flusher_type, &p5a_inner)) {
                    aw_scope_cancel(cs);
                    aw_sleep(AW_SEC(5));
                }
            }
        }
        cr_assert_eq(aw_status(), 0, "the scope ended its own cancel, nothing else was raised");
        p5a_after = aw_sleep_ms(1);
    }
    cr_assert_eq(aw_status(), 0, "left with %s", aw_err_name(aw_status()));
    return 0;
}
Test(programs, M2_exits_handling_their_own_errors_inside_a_cancelled_scope) {
    aw_test_run(p5a_main, NULL, 0);
    cr_assert_eq(p5a_inner.enters, 1);
    cr_assert_eq(p5a_inner.exits, 1);
    cr_assert_eq(p5a_inner.handed, -ECANCELED);
    cr_assert_eq(p5a_inner.after_clear, -ECANCELED, "the clear kept the cancel (M2)");
    cr_assert_eq(p5a_inner.close_rc, 0, "the exit runs shielded");
    cr_assert_eq(p5a_after, 0);
    cr_assert_eq(p5a_outer.exits, 1);
    cr_assert_eq(p5a_outer.handed, 0);
    cr_assert_eq(p5a_outer.after_clear, 0);
    cr_assert_eq(cb_runs, 1);
    cr_assert_eq(cb_after_clear, 0);
}

/* The task itself is cancelled while it sits in a shielded block, inside
 * an exit stack; the exits that handle their own errors must neither lose
 * the cancel nor add to it. Trio: the cancel arrives at the first
 * checkpoint after the shield closes (G13), the stack's exits see
 * Cancelled, and the task ends Cancelled. */
static flusher_t p5b_stacked, p5b_shielded;
static int p5b_in_shield, p5b_after_shield;
static aw_event_t p5b_ready = AW_EVENT_INIT;
static int p5b_victim(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_cm(&flusher_type, &p5b_stacked), NULL);
        aw_exitstack_callback(st, handling_callback, NULL);
        aw_with (aw_shield(AW_NEVER)) {
            aw_with (aw_cm(&flusher_type, &p5b_shielded)) {
                aw_event_set(&p5b_ready);
                p5b_in_shield = aw_sleep_ms(20); /* the cancel lands here */
            }
        }
        p5b_after_shield = aw_sleep(AW_SEC(5));
    }
    return aw_status();
}
static int p5b_main(void *arg) {
    aw_task_t *t;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, p5b_victim, NULL, &t);
        aw_event_wait(&p5b_ready);
        aw_task_cancel(t);
        int rc = aw_task_join(t);
        cr_assert_eq(rc, -ECANCELED, "the victim ended with %s", aw_err_name(rc));
        const aw_err_t *e = aw_err_current();
        cr_assert_not_null(e);
        cr_assert_eq(e->code, -ECANCELED);
        cr_assert(!chain_has(e, -EIO) && !chain_has(e, -EPIPE), "handled errors stay handled");
        aw_err_clear();
    }
    return aw_status();
}
Test(programs, M2_handled_exit_errors_under_a_shield_keep_the_tasks_cancel) {
    aw_test_run(p5b_main, NULL, 0);
    cr_assert_eq(p5b_in_shield, 0, "the shield hid the cancel");
    cr_assert_eq(p5b_shielded.handed, 0);
    cr_assert_eq(p5b_shielded.after_clear, 0);
    cr_assert_eq(p5b_shielded.close_rc, 0);
    cr_assert_eq(p5b_after_shield, -ECANCELED, "the cancel arrives after the shield");
    cr_assert_eq(p5b_stacked.exits, 1);
    cr_assert_eq(p5b_stacked.handed, -ECANCELED);
    cr_assert_eq(p5b_stacked.after_clear, -ECANCELED);
    cr_assert_eq(p5b_stacked.close_rc, 0);
    cr_assert_eq(cb_runs, 1);
    cr_assert_eq(cb_after_clear, -ECANCELED, "a callback's restore keeps the cancel");
    cr_assert_eq(cb_sleep, 0);
}

/* An exit that handles its own error and suppresses what it was handed,
 * inside a scope cancelled from a fail-after: it cannot swallow the
 * cancel (A12), so the fail-after still times out. */
static flusher_t p5c = {.ret = AW_SUPPRESS};
static int p5c_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (aw_cm(&flusher_type, &p5c)) {
            aw_sleep(AW_SEC(5));
        }
        note(aw_status() == -ECANCELED ? "cancel-kept" : "cancel-lost");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT);
    cr_assert(!chain_has(e, -EIO));
    aw_err_clear();
    return 0;
}
Test(programs, A12_a_suppressing_exit_that_handled_its_own_error_keeps_the_cancel) {
    aw_test_run(p5c_main, NULL, 0);
    cr_assert_str_eq(log_, "cancel-kept;");
    cr_assert_eq(p5c.handed, -ECANCELED);
    cr_assert_eq(p5c.close_rc, 0);
}

/* A shield with its own deadline (H2) bounds a cleanup inside a cancelled
 * task; exits inside it that handle their own errors keep their awaits
 * until that deadline. */
static flusher_t p5d;
static int p5d_cut;
static aw_scope_t *p5d_shield;
static bool p5d_expired;
static int p5d_main(void *arg) {
    aw_task_cancel(aw_task_self());
    cr_assert_eq(aw_sleep_ms(1), -ECANCELED);
    aw_with (aw_scope_t *sh, aw_shield(AW_MS(10))) {
        aw_with (aw_cm(&flusher_type, &p5d)) {
            p5d_cut = aw_sleep(AW_SEC(5)); /* the shield's own deadline cuts it */
        }
        p5d_expired = aw_scope_expired(sh);
        p5d_shield = sh;
    }
    cr_assert_eq(aw_status(), -ECANCELED, "the task's cancel is still pending");
    cr_assert_eq(aw_sleep_ms(1), -ECANCELED, "and still delivered");
    return aw_status();
}
Test(programs, H2_a_shield_with_a_deadline_bounds_cleanup_in_a_cancelled_task) {
    aw_test_run(p5d_main, NULL, -ECANCELED);
    cr_assert_eq(p5d_cut, -ECANCELED);
    cr_assert(p5d_expired);
    cr_assert_eq(p5d.exits, 1);
    cr_assert_eq(p5d.close_rc, 0, "the exit's own await runs, the shield's deadline notwithstanding");
    cr_assert_eq(p5d.after_clear, -ECANCELED);
}

/* ======== program 6: a worker pool fed by a generator ======== */

/* The producer yields job numbers, sleeping a little before each (a real
 * source: a socket, a file); its cleanup awaits a 1 ms "ack" and counts. */
static int prod_made, prod_cleanups, prod_ack, prod_closed_by;
static int producer(aw_gen_t *g, void *arg) {
    int rc = 0;
    for (int i = 0; i < 1000; i++) {
        prod_made++;
        if ((rc = aw_sleep_ms(1)) < 0)
            break;
        if ((rc = aw_gen_yield(g, &i)) < 0)
            break;
    }
    prod_closed_by = rc;
    prod_ack = aw_sleep_ms(1);
    prod_cleanups++;
    return rc == -AW_ECLOSED ? 0 : rc;
}

/* Workers take jobs under a lock (one task in next at a time, as Python
 * serialises anext with a lock) until the producer is done, and do each
 * job on the thread pool. */
static aw_lock_t feed_lock = AW_LOCK_INIT("feed");
static aw_gen_t feed;
static int jobs_done, workers_ended, next_errors;
static void job_work(void *arg) { (void)arg; }
static int worker(void *arg) {
    for (;;) {
        void *v = NULL;
        int rc = 0;
        aw_with (aw_locked(&feed_lock)) {
            rc = aw_gen_next(&feed, &v);
        }
        if (aw_status() < 0)
            return aw_status();
        if (rc < 0)
            next_errors++;
        if (rc <= 0)
            break;
        if (aw_to_thread(job_work, NULL, NULL) < 0)
            return aw_status();
        jobs_done++;
    }
    workers_ended++;
    return 0;
}
static int p6_main(void *arg) {
    feed = aw_gen(producer, NULL);
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 4; i++)
            aw_spawn(g, worker, NULL, NULL);
        while (jobs_done < 20)
            aw_sleep_ms(1);
        /* enough: close the feed under the lock (no worker is inside next) */
        aw_with (aw_locked(&feed_lock)) {
            cr_assert_eq(aw_gen_close(&feed), 0);
        }
        cr_assert_eq(aw_gen_close(&feed), 0, "a second close does nothing (E6)");
    }
    cr_assert_eq(aw_status(), 0, "left with %s", aw_err_name(aw_status()));
    void *v;
    cr_assert_eq(aw_gen_next(&feed, &v), 0, "next after close: finished (E6)");
    return 0;
}
Test(programs, E6_a_worker_pool_fed_by_a_generator_closed_midway) {
    aw_test_run(p6_main, NULL, 0);
    cr_assert_eq(workers_ended, 4);
    cr_assert_eq(next_errors, 0);
    cr_assert_geq(jobs_done, 20);
    cr_assert_eq(prod_cleanups, 1);
    cr_assert_eq(prod_closed_by, -AW_ECLOSED);
    cr_assert_eq(prod_ack, 0, "the producer's cleanup awaits, shielded");
}

/* Close the feed while a worker is suspended inside next (the producer
 * sleeping): -EBUSY (E5), and the generator stays usable. */
static aw_event_t p6b_in = AW_EVENT_INIT;
static int p6b_gen(aw_gen_t *g, void *arg) {
    aw_event_set(&p6b_in);
    int rc = aw_sleep_ms(20);
    if (rc == 0)
        rc = aw_gen_yield(g, NULL);
    prod_cleanups++;
    return rc == -AW_ECLOSED ? 0 : rc;
}
static int p6b_next_rc;
static int p6b_consumer(void *arg) {
    void *v;
    p6b_next_rc = aw_gen_next(&feed, &v);
    return 0;
}
static int p6b_main(void *arg) {
    feed = aw_gen(p6b_gen, NULL);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, p6b_consumer, NULL, NULL);
        aw_event_wait(&p6b_in);
        int rc = aw_gen_close(&feed);
        cr_assert_eq(rc, -EBUSY, "close while another task is in next: %d", rc);
        aw_err_clear();
    }
    cr_assert_eq(p6b_next_rc, 1);
    cr_assert_eq(aw_gen_close(&feed), 0);
    cr_assert_eq(prod_cleanups, 1);
    return aw_status();
}
Test(programs, E5_closing_a_feed_while_a_worker_is_inside_next_is_refused) {
    aw_test_run(p6b_main, NULL, 0);
}

/* to_thread calls queued behind a busy pool, cancelled before a worker
 * takes them: work never runs, the caller gets -ECANCELED (Trio's rule,
 * awith/thread.h); the busy ones finish. */
static int p6c_started, p6c_queued_ran;
static pthread_mutex_t p6c_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t p6c_cv = PTHREAD_COND_INITIALIZER;
static bool p6c_go;
static void busy_work(void *arg) {
    pthread_mutex_lock(&p6c_mu);
    p6c_started++;
    while (!p6c_go)
        pthread_cond_wait(&p6c_cv, &p6c_mu);
    pthread_mutex_unlock(&p6c_mu);
}
static void queued_work(void *arg) {
    __atomic_add_fetch(&p6c_queued_ran, 1, __ATOMIC_SEQ_CST);
}
static int busy_rc[2], queued_rc[3];
static int busy_task(void *arg) {
    busy_rc[(intptr_t)arg] = aw_to_thread(busy_work, NULL, NULL);
    return 0;
}
static int queued_task(void *arg) {
    queued_rc[(intptr_t)arg] = aw_to_thread(queued_work, NULL, NULL);
    return aw_status() == -ECANCELED ? 0 : aw_status();
}
static int p6c_main(void *arg) {
    aw_with (aw_group_t *busy, aw_group()) {
        for (intptr_t i = 0; i < 2; i++)
            aw_spawn(busy, busy_task, (void *)i, NULL);
        for (;;) { /* both threads of the pool are taken */
            pthread_mutex_lock(&p6c_mu);
            int n = p6c_started;
            pthread_mutex_unlock(&p6c_mu);
            if (n == 2)
                break;
            aw_sleep_ms(1);
        }
        aw_with (aw_scope_t *cs, aw_cancel_scope()) {
            aw_with (aw_group_t *q, aw_group()) {
                for (intptr_t i = 0; i < 3; i++)
                    aw_spawn(q, queued_task, (void *)i, NULL);
                aw_sleep_ms(5);
                aw_scope_cancel(cs);
            }
        }
        cr_assert_eq(aw_status(), 0, "left with %s", aw_err_name(aw_status()));
        pthread_mutex_lock(&p6c_mu);
        p6c_go = true;
        pthread_cond_broadcast(&p6c_cv);
        pthread_mutex_unlock(&p6c_mu);
    }
    return aw_status();
}
Test(programs, F3_to_thread_calls_cancelled_while_queued_never_run) {
    aw_loop_opts_t o = {.threads = 2};
    cr_assert_eq(aw_main_opts(&o, p6c_main, NULL), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(queued_rc[i], -ECANCELED, "queued %d: %d", i, queued_rc[i]);
    cr_assert_eq(p6c_queued_ran, 0);
    cr_assert_eq(busy_rc[0], 0);
    cr_assert_eq(busy_rc[1], 0);
}

/* ======== probes ======== */

/* A generator manager with a deadline around its yield, entered into an
 * exit stack (held by the same task): the deadline covers what the task
 * does while the entry is on the stack. */
static int pr1_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int pr1_sleep;
static int pr1_main(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        cr_assert_eq(aw_exitstack_enter(st, aw_gencm(pr1_gen, NULL), NULL), 0);
        pr1_sleep = aw_sleep(AW_SEC(5));
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "%s", aw_err_name(e->code));
    cr_assert_eq(chain_count(e, -ECANCELED), 1);
    aw_err_clear();
    return 0;
}
Test(programs, M5_a_generators_deadline_entered_in_an_exit_stack_covers_the_task) {
    aw_test_run(pr1_main, NULL, 0);
    cr_assert_eq(pr1_sleep, -ECANCELED);
}

/* A producer waiting on to_thread when the consumer's deadline fires. */
static int pr2_work_ran;
static void pr2_work(void *arg) { usleep(20000); __atomic_add_fetch(&pr2_work_ran, 1, __ATOMIC_SEQ_CST); }
static int pr2_gen_rc, pr2_cleanups;
static int pr2_gen(aw_gen_t *g, void *arg) {
    int rc = 0;
    for (int i = 0; rc == 0; i++) {
        if ((rc = aw_to_thread(pr2_work, NULL, NULL)) < 0)
            break;
        rc = aw_gen_yield(g, &i);
    }
    pr2_gen_rc = rc;
    pr2_cleanups++;
    return rc == -AW_ECLOSED ? 0 : rc;
}
static int pr2_items;
static int pr2_main(void *arg) {
    aw_with (aw_fail_after(AW_MS(50))) {
        aw_for (int *v, aw_gen(pr2_gen, NULL)) {
            pr2_items++;
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "%s", aw_err_name(e->code));
    aw_err_clear();
    return 0;
}
Test(programs, G1_a_deadline_reaches_a_producer_in_to_thread) {
    aw_test_run(pr2_main, NULL, 0);
    cr_assert_eq(pr2_cleanups, 1);
    cr_assert_eq(pr2_gen_rc, -ECANCELED);
    cr_assert_geq(pr2_items, 1);
}

/* A group's error through a generator manager that re-raises it: the
 * same record, no wrapper (C6); the generator's exit stack around its
 * yield sees it (M3). */
static int pr3_seen;
static int pr3_exit(void *arg, const aw_err_t *err) {
    pr3_seen = err ? err->code : 0;
    return 0;
}
static int pr3_gen(aw_gencm_t *g, void *arg) {
    int rc = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, pr3_exit, NULL);
        rc = aw_gencm_yield(g, NULL);
    }
    return rc;
}
static int pr3_fail(void *arg, void **v) {
    aw_sleep_ms(1);
    return aw_raise(-EIO, "member %d failed", (int)(intptr_t)arg);
}
static int pr3_main(void *arg) {
    aw_with (aw_gencm(pr3_gen, NULL)) {
        aw_result_t r[2] = {AW_RESULT(pr3_fail, 1), AW_RESULT(pr3_fail, 2)};
        aw_gather(r, 2);
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert_null(e->context, "no wrapper, nothing added");
    int n = 0;
    for (const aw_err_t *m = e->members; m; m = m->next)
        n++;
    cr_assert_eq(n, 2);
    aw_err_clear();
    return 0;
}
#include <awith/gather.h>
Test(programs, C6_a_group_error_through_a_generator_manager_is_unchanged) {
    aw_test_run(pr3_main, NULL, 0);
    cr_assert_eq(pr3_seen, -AW_EGROUP);
}

/* A child fails while the body is suspended in another manager's exit:
 * the exit's cleanup is not cut (I10 is a defect of asyncio: exits run
 * shielded), and the group error comes after. */
static int pr4_cleanup;
static int slow_exit(void *self, const aw_err_t *err) {
    pr4_cleanup = aw_sleep_ms(20);
    return 0;
}
static int noop_enter(void *self, void **out) { return 0; }
static const aw_cm_type_t slow_exit_type = {"slow-exit", noop_enter, slow_exit, 0, 0, NULL};
static int pr4_child(void *arg) {
    aw_sleep_ms(2);
    return aw_raise(-EIO, "child failed");
}
static int pr4_main(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, pr4_child, NULL, NULL);
        aw_with (aw_cm(&slow_exit_type, NULL)) {
        }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP);
    cr_assert_null(e->context, "the body did not fail: %s", e->context ? aw_err_name(e->context->code) : "");
    aw_err_clear();
    return 0;
}
Test(programs, I10_a_child_failing_during_an_exit_does_not_cut_it) {
    aw_test_run(pr4_main, NULL, 0);
    cr_assert_eq(pr4_cleanup, 0);
}

/* pop_all into a stack closed by another task (a "connection handed to a
 * worker"): each callback once, in the worker, with the worker's error. */
static int pr5_runs, pr5_seen;
static int pr5_exit(void *arg, const aw_err_t *err) {
    pr5_runs++;
    pr5_seen = err ? err->code : 0;
    return aw_sleep_ms(1);
}
static aw_exitstack_t pr5_dst;
static int pr5_worker(void *arg) {
    aw_raise(-EIO, "worker failed");
    int rc = aw_exitstack_close(&pr5_dst);
    cr_assert_eq(rc, 0, "close: %s", aw_err_name(rc));
    return aw_status();
}
static int pr5_main(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_push_exit(st, pr5_exit, NULL);
        aw_exitstack_push_exit(st, pr5_exit, NULL);
        aw_exitstack_pop_all(st, &pr5_dst);
    }
    cr_assert_eq(pr5_runs, 0);
    aw_task_t *t;
    aw_spawn(NULL, pr5_worker, NULL, &t); /* joinable: its failure is the joiner's */
    int jr = aw_task_join(t);
    cr_assert_eq(jr, -EIO, "join: %s", aw_err_name(jr));
    aw_err_clear();
    return aw_status();
}
Test(programs, D9_a_stack_popped_into_another_closed_by_a_worker) {
    aw_test_run(pr5_main, NULL, 0);
    cr_assert_eq(pr5_runs, 2);
    cr_assert_eq(pr5_seen, 0, "close runs as a clean way out: %d", pr5_seen);
}

/* A generator manager that runs a group around its yield (a "connection"
 * with a keep-alive task): the keep-alive failing cancels the block, and
 * what leaves is the group's error with that failure, no cancel. */
static int ka_cleanup;
static int keepalive(void *arg) {
    aw_sleep_ms(2);
    return aw_raise(-ECONNRESET, "keep-alive: peer reset");
}
static int ka_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_spawn(grp, keepalive, NULL, NULL);
        aw_gencm_yield(g, NULL);
    }
    ka_cleanup = aw_sleep_ms(1);
    return aw_status();
}
static int ka_body;
static int ka_check(void) {
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -AW_EGROUP, "%s", aw_err_name(e->code));
    cr_assert_not_null(e->members);
    cr_assert_eq(e->members->code, -ECONNRESET);
    cr_assert_null(e->members->next);
    cr_assert_eq(chain_count(e, -ECANCELED), 0, "the group's own cancel is not kept");
    aw_err_clear();
    return 0;
}
static int ka_main(void *arg) {
    aw_with (aw_group_t *grp, aw_group()) {
        aw_spawn(grp, keepalive, NULL, NULL);
        aw_sleep(AW_SEC(5));
    }
    ka_check();
    aw_with (aw_gencm(ka_gen, NULL)) {
        ka_body = aw_sleep(AW_SEC(5));
    }
    ka_check();
    cr_assert_eq(ka_cleanup, 0);
    ka_cleanup = -1;
    /* the same, entered into an exit stack by the task that holds it */
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_exitstack_enter(st, aw_gencm(ka_gen, NULL), NULL);
        ka_body = aw_sleep(AW_SEC(5));
    }
    ka_check();
    cr_assert_eq(ka_cleanup, 0);
    return 0;
}
Test(programs, M3_a_group_around_a_generators_yield_fails_the_block) {
    aw_test_run(ka_main, NULL, 0);
    cr_assert_eq(ka_body, -ECANCELED);
}

/* Generator managers composed: the outer enters the inner around its
 * yield, the inner holds a deadline around its own; both cleanups await. */
static int inner_clean, outer_clean, outer_saw;
static int inner_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_gencm_yield(g, NULL);
    }
    inner_clean = aw_sleep_ms(1);
    return aw_status();
}
static int outer_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_gencm(inner_gen, NULL)) {
        outer_saw = aw_gencm_yield(g, NULL);
    }
    outer_clean = aw_sleep_ms(1);
    return aw_status();
}
static int nest_main(void *arg) {
    aw_with (aw_gencm(outer_gen, NULL)) {
        aw_sleep(AW_SEC(5));
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "%s", aw_err_name(e->code));
    cr_assert_eq(chain_count(e, -ECANCELED), 1);
    cr_assert_eq(aw_err_count(e), 2, "ETIMEDOUT <- ECANCELED, %d records", aw_err_count(e));
    aw_err_clear();
    cr_assert_eq(aw_sleep_ms(1), 0, "no deadline left behind");
    return 0;
}
Test(programs, M3_composed_generator_managers_carry_the_inner_deadline) {
    aw_test_run(nest_main, NULL, 0);
    cr_assert_eq(outer_saw, -ECANCELED);
    cr_assert_eq(inner_clean, 0);
    cr_assert_eq(outer_clean, 0);
}

/* A move-on around the generator's yield; the body turns the cancel into
 * its own error: that error leaves, the cancel in its context (M4). */
static int mo_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_move_on_after(AW_MS(5))) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int mo_main(void *arg) {
    aw_with (aw_gencm(mo_gen, NULL)) {
        if (aw_sleep(AW_SEC(5)) < 0)
            { aw_fail(-EIO, "body: gave up"); }
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EIO, "%s", aw_err_name(e->code));
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -ECANCELED);
    cr_assert_eq(aw_err_count(e), 2);
    aw_err_clear();
    aw_with (aw_gencm(mo_gen, NULL)) {
        aw_sleep(AW_SEC(5));
    }
    cr_assert_eq(aw_status(), 0, "a move-on ends its own cancel: %s", aw_err_name(aw_status()));
    return 0;
}
Test(programs, M4_a_move_on_around_a_yield_keeps_the_bodys_own_error) {
    aw_test_run(mo_main, NULL, 0);
}

/* ======== the same shapes, plain and held by a generator manager ======== */

/* The chain as "EIO<-ETIMEDOUT<-ECANCELED" (members as [..]). */
static void chain_str(const aw_err_t *e, char *out, size_t cap) {
    out[0] = 0;
    for (; e; e = e->context) {
        if (out[0])
            strncat(out, "<-", cap - strlen(out) - 1);
        strncat(out, aw_err_name(e->code), cap - strlen(out) - 1);
        if (e->members) {
            strncat(out, "[", cap - strlen(out) - 1);
            for (const aw_err_t *m = e->members; m; m = m->next) {
                char sub[128];
                chain_str(m, sub, sizeof sub);
                strncat(out, sub, cap - strlen(out) - 1);
                if (m->next)
                    strncat(out, ",", cap - strlen(out) - 1);
            }
            strncat(out, "]", cap - strlen(out) - 1);
        }
    }
}

enum { SH_FAIL, SH_MOVE, SH_GROUP, SH_CANCEL, SH_NESTED, SH_ZERO, SH_NSHAPES };
static const char *shape_names[] = {"fail-after", "move-on", "group", "cancel-scope",
                                    "fail-after-in-move-on", "fail-after(0)"};
static int failing_kid(void *arg) {
    aw_sleep_ms(2);
    return aw_raise(-ECONNRESET, "kid failed");
}
/* The body: sleeps; `convert` 1 turns the cancel into its own EIO, 2
 * runs an exit that fails while the cancel unwinds it, 3 runs a fail-after
 * of its own (50 ms) that the held scope's cancel must not convert (G4),
 * 4 is cancelled from outside (its task) while the held scope is not. */
static int pipe_exit(void *self, const aw_err_t *err) { return aw_raise(-EPIPE, "exit failed"); }
static const aw_cm_type_t pipe_exit_type = {"pipe-exit", noop_enter, pipe_exit, 0, 0, NULL};
static aw_scope_t *shape_scope; /* a cancel scope the body cancels */
static void shape_body(int convert) {
    if (shape_scope)
        aw_scope_cancel(shape_scope);
    if (convert == 4) {
        aw_task_cancel(aw_task_self());
        aw_sleep(AW_SEC(5));
        return;
    }
    if (convert == 2) {
        aw_with (aw_cm(&pipe_exit_type, NULL)) aw_sleep(AW_SEC(5));
        return;
    }
    if (convert == 3) {
        aw_with (aw_fail_after(AW_MS(50))) aw_sleep(AW_SEC(5));
        return;
    }
    if (aw_sleep(AW_SEC(5)) < 0 && convert)
        aw_raise(-EIO, "body gave up");
}
typedef struct shape { int kind; int convert; } shape_t;
static void run_shape_plain(const shape_t *s) {
    switch (s->kind) {
    case SH_FAIL:
        aw_with (aw_fail_after(AW_MS(3))) shape_body(s->convert);
        break;
    case SH_MOVE:
        aw_with (aw_move_on_after(AW_MS(3))) shape_body(s->convert);
        break;
    case SH_GROUP:
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, failing_kid, NULL, NULL);
            shape_body(s->convert);
        }
        break;
    case SH_CANCEL:
        aw_with (aw_scope_t *cs, aw_cancel_scope()) {
            shape_scope = cs;
            shape_body(s->convert);
        }
        break;
    case SH_NESTED:
        aw_with (aw_move_on_after(AW_SEC(60)))
            aw_with (aw_fail_after(AW_MS(3))) shape_body(s->convert);
        break;
    case SH_ZERO:
        aw_with (aw_fail_after(0)) shape_body(s->convert);
        break;
    }
    shape_scope = NULL;
}
static int shape_gen(aw_gencm_t *g, void *arg) {
    const shape_t *s = arg;
    switch (s->kind) {
    case SH_FAIL:
        aw_with (aw_fail_after(AW_MS(3))) aw_gencm_yield(g, NULL);
        break;
    case SH_MOVE:
        aw_with (aw_move_on_after(AW_MS(3))) aw_gencm_yield(g, NULL);
        break;
    case SH_GROUP:
        aw_with (aw_group_t *grp, aw_group()) {
            aw_spawn(grp, failing_kid, NULL, NULL);
            aw_gencm_yield(g, NULL);
        }
        break;
    case SH_CANCEL:
        aw_with (aw_scope_t *cs, aw_cancel_scope()) {
            shape_scope = cs;
            aw_gencm_yield(g, NULL);
        }
        break;
    case SH_NESTED:
        aw_with (aw_move_on_after(AW_SEC(60)))
            aw_with (aw_fail_after(AW_MS(3))) aw_gencm_yield(g, NULL);
        break;
    case SH_ZERO:
        aw_with (aw_fail_after(0)) aw_gencm_yield(g, NULL);
        break;
    }
    shape_scope = NULL;
    return aw_status();
}
static char shape_fails[8192];
/* One form of one shape, in a task of its own (a shape cancels its task):
 * 0 plain, 1 held by a generator manager, 2 the same in an exit stack. */
typedef struct shape_run { shape_t s; int form; char out[256]; } shape_run_t;
/* A pass-through generator manager: rc = yield; return rc. */
static int pass_gen(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, NULL); }
/* One that holds the scope's generator manager around its own yield. */
static int compose_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_gencm(shape_gen, arg)) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
/* And one more level: a generator manager holding compose_gen's. */
static int compose2_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_gencm(compose_gen, arg)) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
static int shape_task(void *arg) {
    shape_run_t *r = arg;
    switch (r->form) {
    case 5:
        aw_with (aw_gencm(compose2_gen, &r->s)) shape_body(r->s.convert);
        break;
    case 6:
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            aw_exitstack_enter(st, aw_gencm(compose2_gen, &r->s), NULL);
            shape_body(r->s.convert);
        }
        break;
    case 3:
        aw_with (aw_gencm(shape_gen, &r->s))
        aw_with (aw_gencm(pass_gen, NULL)) shape_body(r->s.convert);
        break;
    case 4:
        aw_with (aw_gencm(compose_gen, &r->s)) shape_body(r->s.convert);
        break;
    case 0:
        run_shape_plain(&r->s);
        break;
    case 1:
        aw_with (aw_gencm(shape_gen, &r->s)) shape_body(r->s.convert);
        break;
    case 2:
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            aw_exitstack_enter(st, aw_gencm(shape_gen, &r->s), NULL);
            shape_body(r->s.convert);
        }
        break;
    }
    chain_str(aw_err_current(), r->out, sizeof r->out);
    aw_err_clear();
    return 0;
}
static int shapes_main(void *arg) {
    for (int k = 0; k < SH_NSHAPES; k++)
        for (int c = 0; c < 5; c++) {
            shape_run_t r[7];
            for (int f = 0; f < 7; f++) {
                r[f] = (shape_run_t){{k, c}, f, ""};
                aw_task_t *t;
                cr_assert_eq(aw_spawn(NULL, shape_task, &r[f], &t), 0);
                cr_assert_eq(aw_task_join(t), 0);
            }
            static const char *forms[] = {"plain", "held", "in a stack", "over a pass-through",
                                          "composed", "composed twice",
                                          "composed twice in a stack"};
            for (int f = 1; f < 7; f++)
                if (strcmp(r[0].out, r[f].out)) {
                    char line[700];
                    snprintf(line, sizeof line, "%s+%d: plain '%s', %s '%s'\n", shape_names[k], c,
                             r[0].out, forms[f], r[f].out);
                    strncat(shape_fails, line, sizeof shape_fails - strlen(shape_fails) - 1);
                }
        }
    return 0;
}
Test(programs, M3_a_scope_held_at_a_yield_leaves_the_chain_a_plain_one_leaves) {
    aw_test_run(shapes_main, NULL, 0);
    cr_assert_str_eq(shape_fails, "", "%s", shape_fails);
}

/* ======== three managers: nested blocks, an exit stack, generator wrappers ======== */

/* A manager whose exit does one of: 0 propagate, 1 suppress, 2 fail with
 * EIO, 3 raise and handle its own error then propagate, 4 await 1 ms then
 * fail with ENOSPC, 5 return the code it was handed. */
typedef struct kexit { int kind; } kexit_t;
static int kexit_enter(void *self, void **out) { return 0; }
static int kexit_exit(void *self, const aw_err_t *err) {
    switch (((kexit_t *)self)->kind) {
    case 1:
        return AW_SUPPRESS;
    case 2:
        return aw_raise(-EIO, "exit failed");
    case 3:
        if (aw_raise(-EPIPE, "own") < 0)
            aw_err_clear();
        return 0;
    case 4:
        aw_sleep_ms(1);
        return aw_raise(-ENOSPC, "exit failed after a wait");
    case 5:
        return err ? err->code : 0;
    }
    return 0;
}
static const aw_cm_type_t kexit_type = {"kexit", kexit_enter, kexit_exit, 0, 0, NULL};
/* @asynccontextmanager async def wrap(m): async with m: yield */
static int wrap_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_cm(&kexit_type, arg)) {
        aw_gencm_yield(g, NULL);
    }
    return aw_status();
}
/* Body kinds: 0 ends, 1 raises EBADF, 2 cancels the enclosing cancel
 * scope and sleeps, 3 sleeps past an enclosing fail-after. */
typedef struct trio_run { int k[3], body, form; char out[256]; } trio_run_t;
static aw_scope_t *trio_cs;
static void trio_body(int body) {
    if (body == 1)
        aw_raise(-EBADF, "body failed");
    else if (body == 2) {
        aw_scope_cancel(trio_cs);
        aw_sleep(AW_SEC(5));
    } else if (body == 3)
        aw_sleep(AW_SEC(5));
}
static void trio_forms(trio_run_t *r) {
    kexit_t m[3] = {{r->k[0]}, {r->k[1]}, {r->k[2]}};
    switch (r->form) {
    case 0:
        aw_with (aw_cm(&kexit_type, &m[0]))
        aw_with (aw_cm(&kexit_type, &m[1]))
        aw_with (aw_cm(&kexit_type, &m[2])) trio_body(r->body);
        break;
    case 1:
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            for (int i = 0; i < 3; i++)
                aw_exitstack_enter(st, aw_cm(&kexit_type, &m[i]), NULL);
            trio_body(r->body);
        }
        break;
    case 2:
        aw_with (aw_gencm(wrap_gen, &m[0]))
        aw_with (aw_gencm(wrap_gen, &m[1]))
        aw_with (aw_gencm(wrap_gen, &m[2])) trio_body(r->body);
        break;
    case 3:
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            for (int i = 0; i < 3; i++)
                aw_exitstack_enter(st, aw_gencm(wrap_gen, &m[i]), NULL);
            trio_body(r->body);
        }
        break;
    }
}
static int trio_task(void *arg) {
    trio_run_t *r = arg;
    if (r->body == 3) {
        aw_with (aw_fail_after(AW_MS(2))) trio_forms(r);
    } else {
        aw_with (aw_scope_t *cs, aw_cancel_scope()) {
            trio_cs = cs;
            trio_forms(r);
        }
    }
    chain_str(aw_err_current(), r->out, sizeof r->out);
    aw_err_clear();
    return 0;
}
static char trio_fails[16384];
static int trio_main(void *arg) {
    static const char *forms[] = {"nested", "stack", "wrapped", "wrapped-in-stack"};
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            for (int c = 0; c < 6; c++)
                for (int body = 0; body < 4; body++) {
                    trio_run_t r[4];
                    for (int f = 0; f < 4; f++) {
                        r[f] = (trio_run_t){{a, b, c}, body, f, ""};
                        aw_task_t *t;
                        cr_assert_eq(aw_spawn(NULL, trio_task, &r[f], &t), 0);
                        cr_assert_eq(aw_task_join(t), 0);
                    }
                    for (int f = 1; f < 4; f++)
                        if (strcmp(r[0].out, r[f].out) && strlen(trio_fails) < sizeof trio_fails - 300) {
                            char line[300];
                            snprintf(line, sizeof line, "exits %d,%d,%d body %d: nested '%s', %s '%s'\n", a,
                                     b, c, body, r[0].out, forms[f], r[f].out);
                            strcat(trio_fails, line);
                        }
                }
    return 0;
}
Test(programs, D5_three_managers_nested_stacked_or_wrapped_leave_the_same_chain, .timeout = 120) {
    aw_test_run(trio_main, NULL, 0);
    cr_assert_str_eq(trio_fails, "", "%s", trio_fails);
}

/* ======== a semaphore under per-request deadlines ======== */

/* Eight requests share one permit; each waits at most 5 ms for it and
 * holds it 2 ms. Those cut while waiting (or woken and then cut) pass
 * their turn on (J2, M7): the permit is back at the end, nobody waits,
 * and at least one request got it. */
static aw_sem_t one = AW_SEM_INIT("one", 1, 1);
static int sem_got, sem_in, sem_max;
static int sem_request(void *arg) {
    aw_with (aw_move_on_after(AW_MS(5))) {
        aw_with (aw_sem_held(&one)) {
            sem_got++;
            if (++sem_in > sem_max)
                sem_max = sem_in;
            aw_sleep_ms(2);
            sem_in--;
        }
    }
    return aw_status();
}
static int sem_main(void *arg) {
    for (int round = 0; round < 3; round++) {
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < 8; i++)
                aw_spawn(g, sem_request, NULL, NULL);
        }
        cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
        cr_assert_eq(aw_sem_value(&one), 1, "the permit is back");
    }
    cr_assert_geq(sem_got, 3);
    cr_assert_eq(sem_max, 1);
    return 0;
}
Test(programs, J2_a_permit_under_per_request_deadlines_is_never_lost) {
    aw_test_run(sem_main, NULL, 0);
}
