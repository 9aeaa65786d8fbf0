/* tests for src/loop/post.c: posts from other threads (aw_loop_ref,
 * aw_loop_post, aw_loop_unref): wake-ups of a sleeping loop, many
 * concurrent posters, nothing lost, order, close. Real pthreads; waits
 * are for conditions, never for a time. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_t loop_thread;
static aw_event_t done_ev;
static atomic_int ran;
static atomic_int bad; /* posts that ran in the wrong place */

static void count_post(void *arg) {
    if (!pthread_equal(pthread_self(), loop_thread) || aw_task_self() != NULL)
        atomic_fetch_add(&bad, 1);
    if (atomic_fetch_add(&ran, 1) + 1 == (int)(intptr_t)arg)
        aw_event_set(&done_ev);
}

typedef struct {
    aw_loop_ref_t *r;
    int n;
    int delay_us;
} poster_t;

static void *poster(void *p) {
    poster_t *a = p;
    if (a->delay_us)
        usleep(a->delay_us); /* let the loop fall asleep first (not required) */
    for (int i = 0; i < a->n; i++)
        if (aw_loop_post(a->r, count_post, (void *)(intptr_t)a->n) != 0)
            abort(); /* not cr_assert: this is not the test's thread */
    aw_loop_unref(a->r);
    return NULL;
}

/* The loop has nothing but a waiting task: it sleeps in epoll with no
 * timer; a post from another thread must wake it. */
static int sleeping_main(void *arg) {
    loop_thread = pthread_self();
    poster_t a = {.n = 1, .delay_us = 20000};
    cr_assert_eq(aw_loop_ref(&a.r), 0);
    pthread_t th;
    pthread_create(&th, NULL, poster, &a);
    aw_loop_stats_t st;
    aw_loop_stats(&st);
    cr_assert_eq(st.timers, 0, "no timer could wake the loop");
    cr_assert_eq(aw_event_wait(&done_ev), 0);
    cr_assert_eq(atomic_load(&ran), 1);
    pthread_join(th, NULL);
    return 0;
}

Test(post, a_post_wakes_a_loop_sleeping_in_epoll) {
    int fds = aw_test_fds();
    aw_test_run(sleeping_main, NULL, 0);
    cr_assert_eq(atomic_load(&bad), 0, "fn ran on the loop thread, outside any task");
    cr_assert_eq(aw_test_fds(), fds);
}

/* Many threads post concurrently (160,000 posts, more than post_limit:
 * they wait for room); every post runs once, each thread's posts in the
 * order it made them. */
enum { NPOSTERS = 8, NPOSTS = 20000 };
static int next_seq[NPOSTERS];
static atomic_int order_bad;

typedef struct { aw_loop_ref_t *r; int id; } seqposter_t;

static void seq_post(void *arg) {
    intptr_t v = (intptr_t)arg;
    int id = (int)(v / NPOSTS), seq = (int)(v % NPOSTS);
    if (next_seq[id] != seq) /* loop thread only: no race */
        atomic_fetch_add(&order_bad, 1);
    next_seq[id] = seq + 1;
    if (atomic_fetch_add(&ran, 1) + 1 == NPOSTERS * NPOSTS)
        aw_event_set(&done_ev);
}

static void *seq_poster(void *p) {
    seqposter_t *a = p;
    for (int i = 0; i < NPOSTS; i++) {
        int rc; /* more posts than post_limit: wait for room when full */
        while ((rc = aw_loop_post_wait(a->r, seq_post, (void *)(intptr_t)(a->id * NPOSTS + i))) ==
               -ENOMEM)
            sched_yield();
        if (rc != 0)
            abort();
    }
    aw_loop_unref(a->r);
    return NULL;
}

static int many_main(void *arg) {
    pthread_t th[NPOSTERS];
    seqposter_t a[NPOSTERS];
    for (int i = 0; i < NPOSTERS; i++) {
        a[i].id = i;
        cr_assert_eq(aw_loop_ref(&a[i].r), 0);
        pthread_create(&th[i], NULL, seq_poster, &a[i]);
    }
    cr_assert_eq(aw_event_wait(&done_ev), 0);
    for (int i = 0; i < NPOSTERS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&ran), NPOSTERS * NPOSTS, "none lost, none twice");
    for (int i = 0; i < NPOSTERS; i++)
        cr_assert_eq(next_seq[i], NPOSTS);
    cr_assert_eq(atomic_load(&order_bad), 0, "each thread's posts run in its order");
    return 0;
}

Test(post, many_threads_post_concurrently_and_nothing_is_lost) {
    aw_test_run(many_main, NULL, 0);
}

/* A loop kept busy by a task that never sleeps still runs posts. */
static atomic_int spin_stop;

static int spinner(void *arg) {
    while (!atomic_load(&spin_stop))
        aw_yield();
    return 0;
}

static int busy_main(void *arg) {
    loop_thread = pthread_self();
    aw_task_t *s;
    aw_spawn(NULL, spinner, NULL, &s);
    poster_t a = {.n = 1000};
    cr_assert_eq(aw_loop_ref(&a.r), 0);
    pthread_t th;
    pthread_create(&th, NULL, poster, &a);
    cr_assert_eq(aw_event_wait(&done_ev), 0);
    atomic_store(&spin_stop, 1);
    aw_task_join(s);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&ran), 1000);
    return 0;
}

Test(post, posts_run_while_other_tasks_keep_the_loop_busy) {
    aw_test_run(busy_main, NULL, 0);
    cr_assert_eq(atomic_load(&bad), 0);
}

/* A held reference means "posts may come": waiting is not a deadlock.
 * Dropping the last one without posting wakes the loop, which then finds
 * the deadlock and cancels the waiter. */
static void *unref_later(void *p) {
    usleep(20000);
    aw_loop_unref(p);
    return NULL;
}

static pthread_t unref_thread;

static int deadlock_main(void *arg) {
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0);
    pthread_create(&unref_thread, NULL, unref_later, r);
    aw_event_t never = AW_EVENT_INIT;
    int rc = aw_event_wait(&never);
    cr_assert_eq(rc, -ECANCELED, "cancelled as a deadlock once nobody could post");
    return rc;
}

Test(post, unref_of_the_last_reference_lets_the_loop_see_a_deadlock) {
    cr_assert_eq(aw_main(deadlock_main, NULL), -ECANCELED);
    pthread_join(unref_thread, NULL);
}

/* Posts queued when the loop closes run during the close; later posts
 * fail with -ESHUTDOWN; the reference stays valid until unref'd. */
static aw_loop_ref_t *kept;
static atomic_int closing_ran;

static void at_close(void *arg) {
    if (!pthread_equal(pthread_self(), loop_thread))
        atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&closing_ran, 1);
    free(arg);
}

static int close_main(void *arg) {
    loop_thread = pthread_self();
    cr_assert_eq(aw_loop_ref(&kept), 0);
    /* posted from the loop's own thread: runs at the next round, which
     * never comes because the main task returns first */
    cr_assert_eq(aw_loop_post(kept, at_close, malloc(16)), 0);
    cr_assert_eq(aw_loop_post(kept, at_close, malloc(16)), 0);
    return 0;
}

Test(post, queued_posts_run_at_close_and_later_posts_get_eshutdown) {
    int fds = aw_test_fds();
    aw_test_run(close_main, NULL, 0);
    cr_assert_eq(atomic_load(&closing_ran), 2, "accepted posts ran exactly once");
    cr_assert_eq(atomic_load(&bad), 0);
    cr_assert_eq(aw_loop_post(kept, at_close, NULL), -ESHUTDOWN);
    aw_loop_unref(kept);
    cr_assert_eq(aw_test_fds(), fds);
}

/* A posted fn may post again and spawn tasks. */
static atomic_int chain_left;
static aw_loop_ref_t *chain_ref;

static int spawned_by_post(void *arg) {
    aw_event_set(&done_ev);
    return 0;
}

static void chain_post(void *arg) {
    if (atomic_fetch_sub(&chain_left, 1) > 1)
        cr_assert_eq(aw_loop_post(chain_ref, chain_post, NULL), 0);
    else
        cr_assert_eq(aw_spawn(NULL, spawned_by_post, NULL, NULL), 0);
}

static int chain_main(void *arg) {
    atomic_store(&chain_left, 1000);
    cr_assert_eq(aw_loop_ref(&chain_ref), 0);
    cr_assert_eq(aw_loop_post(chain_ref, chain_post, NULL), 0);
    cr_assert_eq(aw_event_wait(&done_ev), 0);
    cr_assert_eq(atomic_load(&chain_left), 0);
    aw_loop_unref(chain_ref);
    return 0;
}

Test(post, a_posted_fn_may_post_again_and_spawn) { aw_test_run(chain_main, NULL, 0); }

/* Several references to one loop are counted; each unref drops one. */
static int refs_main(void *arg) {
    aw_loop_ref_t *a, *b;
    cr_assert_eq(aw_loop_ref(&a), 0);
    cr_assert_eq(aw_loop_ref(&b), 0);
    aw_loop_unref(a);
    cr_assert_eq(aw_loop_post(b, count_post, (void *)(intptr_t)1), 0);
    cr_assert_eq(aw_event_wait(&done_ev), 0);
    aw_loop_unref(b);
    return 0;
}

Test(post, references_are_counted) {
    loop_thread = pthread_self();
    aw_test_run(refs_main, NULL, 0);
    cr_assert_eq(atomic_load(&ran), 1);
}

Test(post, ref_outside_a_loop_and_bad_arguments) {
    aw_loop_ref_t *r = NULL;
    cr_assert_eq(aw_loop_ref(&r), -EPERM);
    cr_assert_null(r);
    cr_assert_eq(aw_loop_post(NULL, count_post, NULL), -EINVAL);
    aw_loop_unref(NULL); /* harmless */
}

static int null_fn_main(void *arg) {
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0);
    cr_assert_eq(aw_loop_post(r, NULL, NULL), -EINVAL);
    aw_loop_unref(r);
    return 0;
}

Test(post, post_of_a_null_fn_is_einval) { aw_test_run(null_fn_main, NULL, 0); }

/* ---- the bounded queue (issue 11, section 3) ---- */

enum { LIMIT = 8 };
static const aw_loop_opts_t small_queue = {.post_limit = LIMIT};

static atomic_int accepted, target, last_rc;
static atomic_int run_in_order_bad, next_run;

static void ordered_post(void *arg) {
    if ((int)(intptr_t)arg != atomic_load(&next_run))
        atomic_fetch_add(&run_in_order_bad, 1);
    atomic_fetch_add(&next_run, 1);
    if (atomic_fetch_add(&ran, 1) + 1 == atomic_load(&target))
        aw_event_set(&done_ev);
}

/* Posts until the first -EAGAIN, then stops. */
static void *until_full(void *p) {
    aw_loop_ref_t *r = p;
    int rc;
    for (intptr_t i = 0; (rc = aw_loop_post(r, ordered_post, (void *)i)) == 0; i++)
        atomic_fetch_add(&accepted, 1);
    atomic_store(&last_rc, rc);
    aw_loop_unref(r);
    return NULL;
}

/* The loop's thread is busy (the main task does not yield while the
 * poster runs), so nothing is taken: the queue fills and the next post is
 * refused with -EAGAIN; what was accepted runs once the loop goes on. */
static int full_main(void *arg) {
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0);
    pthread_t th;
    pthread_create(&th, NULL, until_full, r);
    pthread_join(th, NULL); /* blocks the loop: it cannot drain meanwhile */
    cr_assert_eq(atomic_load(&accepted), LIMIT, "post_limit posts queued");
    cr_assert_eq(atomic_load(&last_rc), -EAGAIN, "then refused, not queued");
    atomic_store(&target, LIMIT);
    cr_assert_eq(aw_event_wait(&done_ev), 0);
    cr_assert_eq(atomic_load(&ran), LIMIT, "each accepted post ran, none refused did");
    cr_assert_eq(atomic_load(&run_in_order_bad), 0);
    return 0;
}

Test(post, a_full_queue_refuses_with_eagain_and_loses_nothing_accepted) {
    cr_assert_eq(aw_main_opts(&small_queue, full_main, NULL), 0);
}

/* aw_loop_post_wait blocks the poster while the queue is full, and goes
 * on when the loop takes the queue. */
enum { NWAIT = 200 };
static void *waiting_poster(void *p) {
    aw_loop_ref_t *r = p;
    for (intptr_t i = 0; i < NWAIT; i++) {
        int rc = aw_loop_post_wait(r, ordered_post, (void *)i);
        if (rc != 0) {
            atomic_store(&last_rc, rc);
            break;
        }
        atomic_fetch_add(&accepted, 1);
    }
    aw_loop_unref(r);
    return NULL;
}

static int wait_main(void *arg) {
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0);
    pthread_t th;
    pthread_create(&th, NULL, waiting_poster, r);
    while (atomic_load(&accepted) < LIMIT) /* the loop is not draining */
        sched_yield();
    usleep(20000);
    cr_assert_eq(atomic_load(&accepted), LIMIT, "the poster waits for room, it does not queue more");
    atomic_store(&target, NWAIT); /* ordered_post signals at the last one */
    cr_assert_eq(aw_event_wait(&done_ev), 0, "the loop drains; the poster goes on");
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&last_rc), 0);
    cr_assert_eq(atomic_load(&ran), NWAIT, "every post ran once");
    cr_assert_eq(atomic_load(&run_in_order_bad), 0, "in the order posted");
    return 0;
}

Test(post, post_wait_blocks_the_poster_until_the_loop_makes_room) {
    cr_assert_eq(aw_main_opts(&small_queue, wait_main, NULL), 0);
}

/* On the loop's own thread, waiting for room would never end. */
static void nop(void *arg) {}
static void last(void *arg) { aw_event_set(&done_ev); }
static int own_thread_main(void *arg) {
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0);
    for (int i = 0; i < LIMIT; i++)
        cr_assert_eq(aw_loop_post_wait(r, i == LIMIT - 1 ? last : nop, NULL), 0);
    cr_assert_eq(aw_loop_post(r, nop, NULL), -EAGAIN);
    cr_assert_eq(aw_loop_post_wait(r, nop, NULL), -EDEADLK);
    cr_assert_eq(aw_event_wait(&done_ev), 0); /* the loop takes the queue */
    cr_assert_eq(aw_loop_post(r, nop, NULL), 0, "room again");
    aw_loop_unref(r);
    return 0;
}

Test(post, post_wait_on_the_loops_own_thread_is_edeadlk_when_full) {
    cr_assert_eq(aw_main_opts(&small_queue, own_thread_main, NULL), 0);
}

/* A poster asleep waiting for room when the loop closes gets -ESHUTDOWN;
 * the posts accepted before run during the close. */
static atomic_int at_close_ran;
static void counted(void *arg) { atomic_fetch_add(&at_close_ran, 1); }
static void *endless_waiting_poster(void *p) {
    aw_loop_ref_t *r = p;
    int rc;
    while ((rc = aw_loop_post_wait(r, counted, NULL)) == 0)
        atomic_fetch_add(&accepted, 1);
    atomic_store(&last_rc, rc);
    aw_loop_unref(r);
    return NULL;
}

static pthread_t closer_thread;
static int close_wait_main(void *arg) {
    aw_loop_ref_t *r;
    cr_assert_eq(aw_loop_ref(&r), 0);
    pthread_create(&closer_thread, NULL, endless_waiting_poster, r);
    while (atomic_load(&accepted) < LIMIT) /* full; the poster now waits */
        sched_yield();
    return 0; /* the loop closes with a full queue and a poster waiting */
}

Test(post, a_poster_waiting_for_room_gets_eshutdown_when_the_loop_closes) {
    cr_assert_eq(aw_main_opts(&small_queue, close_wait_main, NULL), 0);
    pthread_join(closer_thread, NULL);
    cr_assert_eq(atomic_load(&last_rc), -ESHUTDOWN);
    cr_assert_eq(atomic_load(&accepted), LIMIT, "the poster was held at the limit");
    cr_assert_eq(atomic_load(&at_close_ran), atomic_load(&accepted),
                 "every accepted post ran exactly once, none refused did");
}

/* The flood: 8 threads post as fast as they can (retrying on
 * -EAGAIN) while a short program runs, then the loop closes. The queue
 * never holds more than post_limit, so the close runs at most that many
 * posts, whatever the flood; nothing accepted is lost. */
enum { NFLOOD = 8 };
static atomic_long flood_accepted, flood_ran, flood_ran_at_close, flood_eagain;
static atomic_int flood_rc[NFLOOD];

static void flood_post(void *arg) {
    atomic_fetch_add(&flood_ran, 1);
    if (!aw_loop_current())
        atomic_fetch_add(&flood_ran_at_close, 1); /* run by the close */
}

static void *flooder(void *p) {
    aw_loop_ref_t *r = ((void **)p)[0];
    int id = (int)(intptr_t)((void **)p)[1];
    int rc;
    for (;;) {
        rc = aw_loop_post(r, flood_post, NULL);
        if (rc == 0)
            atomic_fetch_add(&flood_accepted, 1);
        else if (rc == -EAGAIN)
            atomic_fetch_add(&flood_eagain, 1);
        else
            break;
    }
    atomic_store(&flood_rc[id], rc);
    aw_loop_unref(r);
    return NULL;
}

static pthread_t flood_th[NFLOOD];
static void *flood_args[NFLOOD][2];
enum { FLOOD_LIMIT = 1024 };

static int flood_main(void *arg) {
    for (int i = 0; i < NFLOOD; i++) {
        cr_assert_eq(aw_loop_ref((aw_loop_ref_t **)&flood_args[i][0]), 0);
        flood_args[i][1] = (void *)(intptr_t)i;
        pthread_create(&flood_th[i], NULL, flooder, flood_args[i]);
    }
    /* until the flood outruns the loop (an unbounded queue never refuses:
     * then stop waiting after 100 queues' worth and let the checks fail) */
    while (atomic_load(&flood_eagain) == 0 && atomic_load(&flood_accepted) < 100 * FLOOD_LIMIT)
        cr_assert_eq(aw_sleep_ms(1), 0);
    return aw_sleep_ms(20); /* the 20 ms program */
}

Test(post, a_flood_of_posts_is_bounded_and_the_close_runs_at_most_post_limit) {
    aw_loop_opts_t o = {.post_limit = FLOOD_LIMIT};
    cr_assert_eq(aw_main_opts(&o, flood_main, NULL), 0);
    for (int i = 0; i < NFLOOD; i++) {
        pthread_join(flood_th[i], NULL);
        cr_assert_eq(atomic_load(&flood_rc[i]), -ESHUTDOWN);
    }
    cr_assert_gt(atomic_load(&flood_eagain), 0, "the queue was full at times");
    cr_assert_leq(atomic_load(&flood_ran_at_close), FLOOD_LIMIT,
                  "the close ran at most post_limit posts");
    cr_assert_eq(atomic_load(&flood_ran), atomic_load(&flood_accepted),
                 "every accepted post ran exactly once");
}

/* ---- posts racing the close (loopsx probes) ---- */

static atomic_int race_accepted, race_ran, race_refused, race_spawn_failed, race_spawned;

static int race_task(void *arg) {
    free(arg);
    atomic_fetch_add(&race_spawned, 1);
    return 0;
}

/* Runs on the loop, during its life or during its close: hands its
 * memory to a task when it can, else frees it. */
static void race_post(void *arg) {
    atomic_fetch_add(&race_ran, 1);
    if (aw_spawn(NULL, race_task, arg, NULL) < 0) {
        aw_err_clear();
        atomic_fetch_add(&race_spawn_failed, 1);
        free(arg);
    }
}

typedef struct {
    aw_loop_ref_t *r;
    int wait;
} racer_t;

static void *racer(void *p) {
    racer_t *a = p;
    for (;;) {
        void *mem = malloc(32);
        int rc = a->wait ? aw_loop_post_wait(a->r, race_post, mem)
                         : aw_loop_post(a->r, race_post, mem);
        if (rc == 0) {
            atomic_fetch_add(&race_accepted, 1);
            continue;
        }
        free(mem);
        if (rc == -EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc != -ESHUTDOWN)
            abort();
        atomic_fetch_add(&race_refused, 1);
        break;
    }
    aw_loop_unref(a->r); /* after the close: the reference is still valid */
    return NULL;
}

enum { RACERS = 4 };
static pthread_t racers[RACERS];
static racer_t racer_args[RACERS];

static int race_main(void *arg) {
    (void)arg;
    for (int i = 0; i < RACERS; i++) {
        racer_args[i].wait = i % 2;
        cr_assert_eq(aw_loop_ref(&racer_args[i].r), 0);
        pthread_create(&racers[i], NULL, racer, &racer_args[i]);
    }
    while (atomic_load(&race_ran) < 2000)
        if (aw_sleep(AW_MS(1)) < 0)
            return aw_status();
    return 0; /* close while every thread still posts */
}

/* Four threads post (two with aw_loop_post, two with aw_loop_post_wait)
 * while the loop closes: every accepted post runs once (those run at the
 * close cannot spawn and free their memory), every poster then gets
 * -ESHUTDOWN, and its unref after the close is safe. */
Test(post, posts_racing_the_close_run_once_each_and_then_are_refused) {
    aw_loop_opts_t o = {.post_limit = 64};
    cr_assert_eq(aw_main_opts(&o, race_main, NULL), 0);
    for (int i = 0; i < RACERS; i++)
        pthread_join(racers[i], NULL);
    cr_assert_eq(atomic_load(&race_refused), RACERS, "every poster saw -ESHUTDOWN");
    cr_assert_eq(atomic_load(&race_ran), atomic_load(&race_accepted),
                 "accepted %d, ran %d", atomic_load(&race_accepted), atomic_load(&race_ran));
    cr_assert_eq(atomic_load(&race_spawned) + atomic_load(&race_spawn_failed),
                 atomic_load(&race_ran));
}
