/* tests for src/sync/pool.c with real resources: each item is a pipe (two
 * fds), so a leaked item is a leaked fd. The callbacks suspend (yield) so
 * that every step of acquire and release has suspension points where a
 * cancel can land (SEMANTICS K1, K6, decision 7, part (c) 3-4). */
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include <awith/pool.h>

typedef struct { int fd[2]; bool broken; } item_t;
typedef struct {
    int open_yields, check_yields, reset_yields;
    int fail_open, fail_check, fail_reset; /* fail the next N calls */
    int opened, closed;
} res_t;

static int yields(int n) {
    for (int i = 0; i < n; i++) {
        int rc = aw_yield();
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int r_open(void *ctx, void **out) {
    res_t *r = ctx;
    int rc = yields(r->open_yields);
    if (rc < 0)
        return rc;
    if (r->fail_open > 0) {
        r->fail_open--;
        return aw_raise(-ECONNREFUSED, "test: open refused");
    }
    item_t *it = calloc(1, sizeof *it);
    if (pipe(it->fd) < 0) {
        free(it);
        return aw_raise(-errno, "pipe");
    }
    r->opened++;
    *out = it;
    return 0;
}
static void r_close(void *ctx, void *item) {
    res_t *r = ctx;
    item_t *it = item;
    close(it->fd[0]);
    close(it->fd[1]);
    free(it);
    r->closed++;
}
static int r_check(void *ctx, void *item) {
    res_t *r = ctx;
    int rc = yields(r->check_yields);
    if (rc < 0)
        return rc;
    if (r->fail_check > 0) {
        r->fail_check--;
        return aw_raise(-EPIPE, "test: check failed");
    }
    return 0;
}
static int r_reset(void *ctx, void *item) {
    res_t *r = ctx;
    int rc = yields(r->reset_yields);
    if (rc < 0) {
        ((item_t *)item)->broken = true;
        return rc;
    }
    if (r->fail_reset > 0) {
        r->fail_reset--;
        return aw_raise(-EIO, "test: reset failed");
    }
    return 0;
}
static bool r_usable(void *ctx, void *item) { return !((item_t *)item)->broken; }

static const aw_pool_ops_t ops = {"testpool", r_open, r_close, r_reset, r_check, r_usable};

static int fds0;

/* The invariants after any sequence of operations, with nothing out. */
static void quiet(aw_pool_t *p, res_t *r, int max) {
    aw_pool_stats_t s;
    aw_pool_stats(p, &s);
    cr_assert_eq(s.in_use, 0, "nothing in use");
    cr_assert_eq(s.opening, 0, "nothing being opened");
    cr_assert_eq(s.waiters, 0, "nobody waiting");
    cr_assert_eq(s.size, s.idle);
    cr_assert_leq(s.size, max, "the limit holds");
    cr_assert_eq(r->opened - r->closed, s.idle, "every item accounted for");
    cr_assert_eq(aw_test_fds(), fds0 + 2 * s.idle, "no fd leaked");
}

static int in_loop(void *fn) {
    fds0 = aw_test_fds();
    return ((aw_task_fn)fn)(NULL);
}
#define POOL_TEST(name, fn) \
    Test(pool, name) { aw_test_run(in_loop, (void *)fn, 0); }

static int basic(void *arg) {
    res_t r = {.open_yields = 1};
    aw_pool_t *p;
    cr_assert_eq(aw_pool_open(&p, &ops, &r, &(aw_pool_opts_t){.min = 2, .max = 3}), 0);
    cr_assert_eq(r.opened, 2, "min opened up front");
    item_t *a, *b;
    aw_with (item_t *x, aw_pool_item(p)) {
        a = x;
        aw_with (item_t *y, aw_pool_item(p)) {
            b = y;
            cr_assert_neq(a, b);
            aw_pool_stats_t s;
            aw_pool_stats(p, &s);
            cr_assert_eq(s.in_use, 2);
        }
    }
    cr_assert_eq(aw_status(), 0);
    aw_with (item_t *x, aw_pool_item(p)) {
        cr_assert_eq(x, a, "the most recently used idle item is reused");
    }
    cr_assert_eq(r.opened, 2, "reused, not reopened");
    quiet(p, &r, 3);
    cr_assert_eq(aw_pool_close(p, AW_SEC(1)), 0);
    cr_assert_eq(r.closed, 2);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST(acquire_reuses_and_close_releases_everything, basic)

/* Many tasks, a small pool, cancels landing everywhere. */
static aw_pool_t *mp;
static int inside, peak;
static int worker(void *arg) {
    for (int i = 0; i < 20; i++) {
        aw_with (item_t *it, aw_pool_item(mp)) {
            if (++inside > peak)
                peak = inside;
            aw_yield();
            inside--;
        }
        if (aw_status() == -ECANCELED)
            return -ECANCELED;
    }
    return 0;
}
static int many(void *arg) {
    res_t r = {.open_yields = 2, .check_yields = 1, .reset_yields = 1};
    cr_assert_eq(aw_pool_open(&mp, &ops, &r, &(aw_pool_opts_t){.max = 5}), 0);
    for (int round = 0; round < 30; round++) {
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < 40; i++)
                aw_spawn(g, worker, NULL, NULL);
            for (int k = 0; k < round * 7; k++)
                aw_yield();
            if (round % 3 != 2)
                aw_group_cancel(g);
        }
        aw_err_clear();
        cr_assert_leq(peak, 5, "K6: the limit is never exceeded");
        quiet(mp, &r, 5);
    }
    aw_pool_stats_t s;
    aw_pool_stats(mp, &s);
    cr_assert_gt(s.acquired, 40 * 20, "work got done");
    cr_assert_eq(aw_pool_close(mp, AW_SEC(1)), 0);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST(K6_many_tasks_cancelled_at_random_points_keep_the_limit, many)

/* The harness of part (c) 4: a scenario with N suspension points is
 * replayed N times, cancelled after k yields of the canceller. */
typedef struct {
    aw_pool_t *p;
    int hold;          /* holder: yields before releasing */
    bool discard;      /* holder discards (the waiter then gets a slot) */
    aw_event_t held;
} scen_t;

static int holder(void *arg) {
    scen_t *s = arg;
    void *it;
    int rc = aw_pool_acquire(s->p, &it, AW_NEVER);
    cr_assert_eq(rc, 0);
    aw_event_set(&s->held);
    aw_with (aw_shield(AW_SEC(5))) {
        yields(s->hold);
    }
    return s->discard ? aw_pool_discard(s->p, it) : aw_pool_release(s->p, it);
}
static int acquirer(void *arg) {
    scen_t *s = arg;
    aw_with (item_t *it, aw_pool_item(s->p)) {
        aw_yield();
    }
    return aw_status();
}

static void harness(int min, int max, bool contended, bool discard) {
    for (int k = 0;; k++) {
        res_t r = {.open_yields = 3, .check_yields = 2, .reset_yields = 2};
        scen_t s = {.hold = 3, .discard = discard, .held = AW_EVENT_INIT};
        cr_assert_eq(aw_pool_open(&s.p, &ops, &r, &(aw_pool_opts_t){.min = min, .max = max}), 0);
        int status = 0;
        aw_with (aw_group_t *g, aw_group()) {
            if (contended) {
                aw_spawn(g, holder, &s, NULL);
                aw_event_wait(&s.held);
            }
            aw_task_t *t;
            aw_spawn(g, acquirer, &s, &t);
            for (int i = 0; i < k; i++)
                aw_yield();
            aw_task_cancel(t);
            status = aw_task_join(t);
        }
        aw_err_clear();
        quiet(s.p, &r, max);
        cr_assert_eq(aw_pool_close(s.p, AW_SEC(1)), 0);
        cr_assert_eq(aw_test_fds(), fds0);
        if (status == 0)
            { if (getenv("AW_TEST_VERBOSE")) fprintf(stderr, "harness: %d cancel points\n", k); return; } /* the scenario ran to its end before the cancel: done */
        cr_assert_eq(status, -ECANCELED);
        cr_assert_lt(k, 200, "the scenario ends");
    }
}

static int h_open(void *arg) { harness(0, 2, false, false); return 0; }
static int h_check(void *arg) { harness(1, 2, false, false); return 0; }
static int h_wait(void *arg) { harness(1, 1, true, false); return 0; }
static int h_slot(void *arg) { harness(1, 1, true, true); return 0; }
POOL_TEST(decision7_cancel_at_every_point_of_an_acquire_that_opens, h_open)
POOL_TEST(decision7_cancel_at_every_point_of_an_acquire_that_checks, h_check)
POOL_TEST(K1_K6_cancel_at_every_point_of_an_acquire_that_waits_for_a_release, h_wait)
POOL_TEST(K6_cancel_at_every_point_of_an_acquire_that_waits_for_a_slot, h_slot)

static int exhausted(void *arg) {
    res_t r = {0};
    aw_pool_t *p;
    aw_pool_open(&p, &ops, &r, &(aw_pool_opts_t){.max = 1});
    aw_with (item_t *a, aw_pool_item(p)) {
        aw_with (item_t *b, aw_pool_item_timeout(p, AW_MS(20))) {
            cr_assert_fail("no second item");
        }
        cr_assert_eq(aw_status(), -ETIMEDOUT);
        cr_assert(strstr(aw_err_current()->msg, "exhausted"), "%s", aw_err_current()->msg);
        cr_assert(strstr(aw_err_current()->msg, "pool.c:"), "names where: %s", aw_err_current()->msg);
        aw_err_clear();
    }
    aw_pool_stats_t s;
    aw_pool_stats(p, &s);
    cr_assert_eq(s.timeouts, 1);
    quiet(p, &r, 1);
    aw_pool_close(p, AW_SEC(1));
    return 0;
}
POOL_TEST(exhaustion_with_a_deadline_is_ETIMEDOUT, exhausted)

static int failures(void *arg) {
    res_t r = {.fail_open = 1};
    aw_pool_t *p;
    cr_assert_eq(aw_pool_open(&p, &ops, &r, &(aw_pool_opts_t){.min = 1, .max = 2}), -ECONNREFUSED,
                 "open's error, nothing left open");
    aw_err_clear();
    cr_assert_eq(aw_test_fds(), fds0);
    cr_assert_eq(aw_pool_open(&p, &ops, &r, &(aw_pool_opts_t){.min = 1, .max = 2}), 0);
    /* a failing health check: the item is replaced, the caller sees nothing */
    r.fail_check = 1;
    aw_with (item_t *it, aw_pool_item(p)) {
        cr_assert_null(aw_err_current());
    }
    cr_assert_eq(aw_status(), 0);
    aw_pool_stats_t s;
    aw_pool_stats(p, &s);
    cr_assert_eq(s.check_failures, 1);
    cr_assert_eq(s.destroyed, 1);
    /* a failing reset closes the item */
    r.fail_reset = 1;
    aw_with (item_t *it, aw_pool_item(p)) {
    }
    aw_pool_stats(p, &s);
    cr_assert_eq(s.reset_failures, 1);
    cr_assert_eq(s.idle, 0);
    /* ... and leaves the block's own error alone */
    r.fail_reset = 1;
    aw_with (item_t *it, aw_pool_item(p)) {
        aw_fail(-EPIPE, "the body fails");
    }
    cr_assert_eq(aw_status(), -EPIPE);
    cr_assert_eq(aw_err_count(aw_err_current()), 1, "the reset failure is the pool's business");
    aw_err_clear();
    aw_pool_stats(p, &s);
    cr_assert_eq(s.reset_failures, 2);
    /* K2: an unusable (poisoned) item never goes back */
    aw_with (item_t *it, aw_pool_item(p)) {
        it->broken = true;
    }
    aw_pool_stats(p, &s);
    cr_assert_eq(s.idle, 0);
    cr_assert_eq(s.destroyed, 4);
    /* open failing: the caller gets the error */
    r.fail_open = 1;
    aw_with (item_t *it, aw_pool_item(p)) {
        cr_assert_fail("open failed");
    }
    cr_assert_eq(aw_status(), -ECONNREFUSED);
    aw_err_clear();
    quiet(p, &r, 2);
    aw_pool_close(p, AW_SEC(1));
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST(K2_broken_items_are_closed_failures_are_contained, failures)

static int ages(void *arg) {
    res_t r = {0};
    aw_pool_t *p;
    aw_pool_open(&p, &ops, &r,
                 &(aw_pool_opts_t){.min = 1, .max = 4, .max_idle = AW_MS(5), .max_lifetime = AW_MS(200)});
    aw_with (item_t *a, aw_pool_item(p)) {
        aw_with (item_t *b, aw_pool_item(p)) {
            aw_with (item_t *c, aw_pool_item(p)) {
            }
        }
    }
    aw_pool_stats_t s;
    aw_pool_stats(p, &s);
    cr_assert_eq(s.idle, 3);
    aw_sleep_ms(20);
    aw_with (item_t *a, aw_pool_item(p)) {
    }
    aw_pool_stats(p, &s);
    cr_assert_eq(s.idle, 1, "idle ones beyond min closed after max_idle");
    item_t *old = NULL;
    aw_with (item_t *a, aw_pool_item(p)) {
        old = a;
        aw_sleep_ms(250);
    }
    aw_with (item_t *a, aw_pool_item(p)) {
        cr_assert_neq(a, old, "past max_lifetime: replaced");
    }
    quiet(p, &r, 4);
    aw_pool_close(p, AW_SEC(1));
    return 0;
}
POOL_TEST(max_idle_and_max_lifetime_close_items, ages)

static aw_pool_t *cp;
static aw_event_t go = AW_EVENT_INIT, let_go = AW_EVENT_INIT;
/* Holds an item until let_go is set (an event, not a sleep: which of
 * close's grace and the release comes first is the test's choice). */
static int late(void *arg) {
    void *it;
    aw_pool_acquire(cp, &it, AW_NEVER);
    aw_event_set(&go);
    aw_with (aw_shield(AW_SEC(30))) {
        aw_event_wait(&let_go);
    }
    aw_pool_release(cp, it); /* the orphaned pool frees itself here */
    return 0;
}
static int releaser(void *arg) {
    aw_event_set(&let_go);
    return 0;
}
static int closing(void *arg) {
    res_t r = {0};
    aw_pool_open(&cp, &ops, &r, &(aw_pool_opts_t){.max = 2});
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, late, NULL, NULL);
        aw_event_wait(&go);
        cr_assert_eq(aw_pool_close(cp, AW_MS(10)), -EBUSY);
        cr_assert(strstr(aw_err_current()->msg, "late"), "names the task: %s", aw_err_current()->msg);
        cr_assert(strstr(aw_err_current()->msg, "pool.c:"), "names the site: %s", aw_err_current()->msg);
        aw_err_clear();
        aw_event_set(&let_go);
    }
    cr_assert_eq(r.opened, r.closed);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST(close_reports_items_still_out_with_their_site, closing)

static int waiting_close(void *arg) {
    res_t r = {0};
    aw_pool_open(&cp, &ops, &r, &(aw_pool_opts_t){.max = 1});
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, late, NULL, NULL);
        aw_event_wait(&go);
        aw_spawn(g, releaser, NULL, NULL); /* runs once close waits */
        cr_assert_eq(aw_pool_close(cp, AW_SEC(10)), 0, "waits for the item within the grace");
    }
    cr_assert_eq(r.opened, r.closed);
    return 0;
}
POOL_TEST(close_waits_for_items_in_use_within_the_grace, waiting_close)

/* aw_pool_discard inside the item's own block (docs/streams.md: "or give
 * it back with aw_pool_discard"): the block's exit gives nothing back a
 * second time. Items come from a LIFO free list, so the next item opened
 * has the discarded one's address, as malloc often gives it: the exit
 * must not release that item, which another task is using (K2, K6). */
static long lifo_slots[4], *lifo_free[4];
static int lifo_nfree, lifo_next;
static int lifo_open(void *ctx, void **out) {
    *out = lifo_nfree ? lifo_free[--lifo_nfree] : &lifo_slots[lifo_next++];
    return 0;
}
static void lifo_close(void *ctx, void *item) { lifo_free[lifo_nfree++] = item; }
static const aw_pool_ops_t lifo_ops = {"lifo", lifo_open, lifo_close};
static aw_pool_t *dp;
static void *holder_item;
static aw_event_t holder_got = AW_EVENT_INIT, holder_done = AW_EVENT_INIT;
static int holder_of_new(void *arg) {
    aw_with (void *it, aw_pool_item(dp)) {
        holder_item = it;
        aw_event_set(&holder_got);
        aw_event_wait(&holder_done);
        aw_pool_stats_t s;
        aw_pool_stats(dp, &s);
        cr_assert_eq(s.in_use, 1, "the item this task holds is still in use (idle %d)", s.idle);
    }
    return aw_status();
}
static int discard_in_block(void *arg) {
    cr_assert_eq(aw_pool_open(&dp, &lifo_ops, NULL, &(aw_pool_opts_t){.max = 2}), 0);
    aw_with (void *it, aw_pool_item(dp)) {
        cr_assert_eq(aw_pool_discard(dp, it), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
    aw_with (aw_group_t *g, aw_group()) {
        aw_with (void *it, aw_pool_item(dp)) {
            cr_assert_eq(aw_pool_discard(dp, it), 0);
            aw_spawn(g, holder_of_new, NULL, NULL);
            aw_event_wait(&holder_got);
            cr_assert_eq(holder_item, it, "the test's premise: the address is reused");
        }
        cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
        aw_event_set(&holder_done);
    }
    cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
    aw_pool_stats_t s;
    aw_pool_stats(dp, &s);
    cr_assert_eq(s.in_use, 0);
    cr_assert_eq(s.idle, 1);
    cr_assert_eq(s.destroyed, 2);
    cr_assert_eq(aw_pool_close(dp, 0), 0);
    return 0;
}
POOL_TEST(K2_an_item_discarded_in_its_block_is_not_given_back_again, discard_in_block)

/* A pool left open is reported at loop close, by name, and aw_main fails
 * with -EBUSY (issue 10 item 9). */
#include "capture.h"
static aw_pool_t *leaked_pool;
static res_t leaked_res;
static int leave_pool_open(void *arg) {
    cr_assert_eq(aw_pool_open(&leaked_pool, &ops, &leaked_res, &(aw_pool_opts_t){.max = 2}), 0);
    return 0;
}
Test(pool, M9_a_pool_left_open_is_reported_at_loop_close) {
    char err[2048];
    cr_assert_eq(aw_test_main_stderr(leave_pool_open, NULL, err, sizeof err), -EBUSY);
    cr_assert(strstr(err, "pool 'testpool' was never closed"), "stderr: %s", err);
}

/* A pool closed while an item is out, the item never given back: close
 * said -EBUSY, but the item (a connection) stays open for good; loop close
 * reports it too, and aw_main fails (M9: a pool with items out). The
 * pool stays reachable from here, as in the test above. */
static int never_returned(void *arg) {
    cr_assert_eq(aw_pool_open(&leaked_pool, &ops, &leaked_res, &(aw_pool_opts_t){.max = 2}), 0);
    void *it;
    cr_assert_eq(aw_pool_acquire(leaked_pool, &it, AW_NEVER), 0);
    cr_assert_eq(aw_pool_close(leaked_pool, 0), -EBUSY);
    aw_err_clear();
    return 0;
}
Test(pool, M9_an_item_never_given_back_to_a_closed_pool_is_reported_at_loop_close) {
    char err[2048];
    cr_assert_eq(aw_test_main_stderr(never_returned, NULL, err, sizeof err), -EBUSY, "stderr: %s", err);
    cr_assert(strstr(err, "pool 'testpool"), "stderr: %s", err);
    cr_assert(strstr(err, "not given back after close"), "stderr: %s", err);
    cr_assert(strstr(err, "pool.c:"), "names where it was acquired: %s", err);
}

/* A close that frees the pool while a task is still inside acquire: a
 * waiter told -ESHUTDOWN that has yet to run (close with no grace), or an
 * acquirer whose deadline cuts its check after close orphaned the pool.
 * The acquirer read the freed pool (its name for the message, its counts
 * for the timeout's). The allocator here poisons what it frees and never
 * hands it out again, so such a read crashes instead of passing. */
#include <awith/alloc.h>
enum { PHDR = 16 }; /* a block's header: its size, then the next kept block */
static unsigned char *z_kept;
static bool z_done;
static void *z_malloc(size_t n) {
    unsigned char *b = malloc(n + PHDR);
    if (!b)
        return NULL;
    *(size_t *)b = n;
    return b + PHDR;
}
static void *z_calloc(size_t n, size_t size) {
    void *q = z_malloc(n * size);
    return q ? memset(q, 0, n * size) : NULL;
}
static void z_free(void *q) { /* poisoned and kept: a later read finds garbage */
    if (!q)
        return;
    unsigned char *b = (unsigned char *)q - PHDR;
    if (z_done) {
        free(b);
        return;
    }
    memset(q, 0xa5, *(size_t *)b);
    memcpy(b + sizeof(size_t), &z_kept, sizeof z_kept);
    z_kept = b;
}
/* The run is over: give the kept blocks back (LeakSanitizer counts them
 * otherwise), and free what comes later at once. */
static void z_release(void) {
    z_done = true;
    while (z_kept) {
        unsigned char *next;
        memcpy(&next, z_kept + sizeof(size_t), sizeof next);
        free(z_kept);
        z_kept = next;
    }
}
static void *z_realloc(void *q, size_t n) {
    void *r = z_malloc(n);
    if (r && q) {
        size_t old = *(size_t *)((unsigned char *)q - PHDR);
        memcpy(r, q, old < n ? old : n);
        z_free(q);
    }
    return r;
}
#define POOL_TEST_POISONED(name, fn)                                                  \
    Test(pool, name) {                                                                \
        cr_assert_eq(aw_allocator_set(z_malloc, z_realloc, z_calloc, z_free), 0);     \
        aw_test_run(in_loop, (void *)fn, 0);                                          \
        z_release();                                                                  \
    }

static aw_pool_t *fp;
static int fp_rc;
static int fp_waiter(void *arg) {
    void *it;
    fp_rc = aw_pool_acquire(fp, &it, AW_NEVER);
    aw_err_clear();
    return 0;
}
static int close_no_grace(void *arg) {
    res_t r = {0};
    aw_pool_open(&fp, &ops, &r, &(aw_pool_opts_t){.max = 1});
    fp_rc = 1;
    aw_with (aw_group_t *g, aw_group()) {
        void *it;
        cr_assert_eq(aw_pool_acquire(fp, &it, AW_NEVER), 0);
        aw_spawn(g, fp_waiter, NULL, NULL);
        aw_yield();
        aw_yield(); /* the waiter waits */
        cr_assert_eq(aw_pool_close(fp, 0), -EBUSY, "the item is still out");
        aw_err_clear();
        aw_pool_release(fp, it); /* the last item back, before the waiter ran */
    }
    cr_assert_eq(fp_rc, -ESHUTDOWN);
    cr_assert_eq(r.opened, r.closed);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST_POISONED(a_waiter_told_of_a_close_with_no_grace_reads_a_live_pool, close_no_grace)

static int fp_timed(void *arg) {
    void *it;
    fp_rc = aw_pool_acquire(fp, &it, aw_now() + AW_MS(5));
    aw_err_clear();
    return 0;
}
static int close_during_check(void *arg) {
    res_t r = {.check_yields = 1000000};
    aw_pool_open(&fp, &ops, &r, &(aw_pool_opts_t){.min = 1, .max = 1});
    fp_rc = 1;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, fp_timed, NULL, NULL);
        aw_yield();
        aw_yield(); /* the acquirer is in its check */
        cr_assert_eq(aw_pool_close(fp, 0), -EBUSY, "the item being checked is out");
        aw_err_clear();
    }
    cr_assert_eq(fp_rc, -ETIMEDOUT, "the deadline cut the check");
    cr_assert_eq(r.opened, r.closed);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST_POISONED(an_acquire_timed_out_after_close_orphaned_the_pool_reads_a_live_pool,
                   close_during_check)

/* K2: an item released while a task waits goes to that task checked, as
 * one taken from idle: the check of a PostgreSQL connection waits for a
 * cut query's settle and finds a connection the settle closed. One that
 * fails its check is replaced by a new item in its slot, and the waiter
 * gets that one. Before, the hand-off skipped the check. */
static aw_pool_t *hp;
static item_t *handed;
static int handed_rc = 1;
static int hand_waiter(void *arg) {
    aw_with (item_t *it, aw_pool_item(hp))
        handed = it;
    handed_rc = aw_status();
    return handed_rc;
}
static int handoff_checked(void *arg) {
    res_t r = {0};
    cr_assert_eq(aw_pool_open(&hp, &ops, &r, &(aw_pool_opts_t){.max = 1}), 0);
    item_t *first = NULL;
    aw_with (aw_group_t *g, aw_group()) {
        aw_with (item_t *it, aw_pool_item(hp)) {
            first = it;
            aw_spawn(g, hand_waiter, NULL, NULL);
            aw_pool_stats_t s;
            for (int i = 0; i < 100 && (aw_pool_stats(hp, &s), s.waiters == 0); i++)
                aw_yield();
            cr_assert_eq(s.waiters, 1, "the other task waits");
            r.fail_check = 1; /* the item goes bad while in use */
        }
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(handed_rc, 0, "the waiter got an item");
    aw_pool_stats_t s;
    aw_pool_stats(hp, &s);
    cr_assert_eq(s.check_failures, 1, "the hand-off was checked");
    cr_assert_eq(s.destroyed, 1, "the bad item was closed");
    cr_assert_eq(r.opened, 2, "a new one was opened for the waiter");
    (void)first;
    quiet(hp, &r, 1);
    cr_assert_eq(aw_pool_close(hp, AW_SEC(1)), 0);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST(K2_an_item_handed_to_a_waiter_is_checked_and_replaced_if_bad, handoff_checked)

/* K6 and M7 in one tick: the first of two waiters is cancelled (woken to
 * leave, not yet run) and the holder releases before it runs: the item
 * goes past the leaving waiter to the next one, the leaving one ends
 * -ECANCELED holding nothing, and the pool is quiet afterwards. */
static aw_pool_t *lp;
static int leave_rc[2] = {1, 1};
static int leave_waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    void *it = NULL;
    leave_rc[i] = aw_pool_acquire(lp, &it, AW_NEVER);
    if (leave_rc[i] == 0)
        aw_pool_release(lp, it);
    aw_err_clear();
    return 0;
}
static int leave_then_release(void *arg) {
    res_t r = {0};
    cr_assert_eq(aw_pool_open(&lp, &ops, &r, &(aw_pool_opts_t){.max = 1}), 0);
    void *held;
    cr_assert_eq(aw_pool_acquire(lp, &held, AW_NEVER), 0);
    aw_task_t *a, *b;
    aw_spawn(NULL, leave_waiter, (void *)0, &a);
    aw_spawn(NULL, leave_waiter, (void *)1, &b);
    aw_pool_stats_t s;
    for (int i = 0; i < 100 && (aw_pool_stats(lp, &s), s.waiters < 2); i++)
        aw_yield();
    cr_assert_eq(s.waiters, 2, "both wait, a first");
    aw_task_cancel(a);               /* a is woken to leave ... */
    cr_assert_eq(aw_pool_release(lp, held), 0); /* ... and the item is given back first */
    aw_task_join(a);
    aw_with (aw_move_on_after(AW_SEC(10))) { /* a guard against a hang, not a bound */
        aw_task_join(b);
    }
    cr_assert_eq(leave_rc[0], -ECANCELED, "the leaving waiter: %d", leave_rc[0]);
    cr_assert_eq(leave_rc[1], 0, "the item reached the next waiter: %d", leave_rc[1]);
    aw_err_clear();
    quiet(lp, &r, 1);
    cr_assert_eq(aw_pool_close(lp, AW_SEC(1)), 0);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST(K6_an_item_released_as_its_first_waiter_leaves_goes_to_the_next, leave_then_release)

/* A pool item manager kept and entered again inside its own block: the
 * second enter must not take a second item into the same record (the
 * first would never go back: its block's exit finds the record cleared
 * by the inner one). It is refused with -EBUSY, the outer block's item
 * goes back at its exit, and the pool is quiet. Entered again after its
 * block, it takes an item anew (A17). */
static int reenter_use(void *arg) {
    res_t r = {0};
    aw_pool_t *p;
    cr_assert_eq(aw_pool_open(&p, &ops, &r, &(aw_pool_opts_t){.max = 2}), 0);
    aw_cm_t cm = aw_pool_item(p);
    int ran = 0, st = 0;
    aw_with (item_t *a, cm) {
        aw_with (item_t *b, cm) {
            ran = 1;
        }
        st = aw_status();
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(ran, 0, "the second enter of a pool item block must be refused");
    cr_assert_eq(st, -EBUSY, "got %s", aw_err_name(st));
    quiet(p, &r, 2);
    ran = 0;
    aw_with (item_t *a, cm) {
        ran = a != NULL;
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(ran, 1, "entered again after its block, it takes an item");
    quiet(p, &r, 2);
    cr_assert_eq(aw_pool_close(p, AW_SEC(1)), 0);
    cr_assert_eq(aw_test_fds(), fds0);
    return 0;
}
POOL_TEST(K1_a_pool_item_block_entered_again_inside_itself_is_refused, reenter_use)
