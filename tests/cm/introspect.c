/* tests for src/cm/introspect.c ((c) 12 and 15). */
#include "testutil.h"

#include <string.h>

static aw_lock_t la = AW_LOCK_INIT("A"), lb = AW_LOCK_INIT("B");

static int take_ab(void *arg) {
    aw_with (aw_locked(&la)) {
        aw_sleep_ms(2);
        aw_with (aw_locked(&lb)) {
        }
    }
    return aw_status();
}
static int take_ba(void *arg) {
    aw_with (aw_locked(&lb)) {
        aw_sleep_ms(2);
        aw_with (aw_locked(&la)) {
        }
    }
    return aw_status();
}

/* noinline: inlined, GCC 12 -O3 takes open_memstream's &buf for a pointer
 * to the local itself and warns (-Wdangling-pointer) wherever the text is
 * used */
static __attribute__((noinline)) char *dump(int *cycles) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *cycles = aw_loop_dump(f);
    fclose(f);
    return buf;
}

static int deadlock(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, take_ab, NULL, NULL);
        aw_spawn(g, take_ba, NULL, NULL);
        aw_sleep_ms(10);
        int cycles;
        char *out = dump(&cycles);
        cr_assert_eq(cycles, 1, "one wait-for cycle:\n%s", out);
        cr_assert(strstr(out, "DEADLOCK: task 'take_ab'"), "%s", out);
        cr_assert(strstr(out, "holds lock 'A'"), "%s", out);
        cr_assert(strstr(out, "waits for lock 'B' held by task 'take_ba'"), "%s", out);
        cr_assert(strstr(out, "in manager 'lock' (enter phase"), "%s", out);
        free(out);
        aw_group_cancel(g); /* break the deadlock */
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&la));
    cr_assert_null(aw_lock_owner(&lb));
    return 0;
}
Test(introspect, c12_a_lock_cycle_is_flagged_as_a_deadlock) { aw_test_run(deadlock, NULL, 0); }

static int entered(void *arg) {
    aw_with (aw_fail_after(AW_SEC(5)))
    aw_with (aw_locked(&la)) {
        aw_sleep(AW_SEC(10));
    }
    return aw_status();
}
static int managers(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, entered, NULL, &t);
    aw_sleep_ms(2);
    int cycles;
    char *out = dump(&cycles);
    cr_assert_eq(cycles, 0);
    cr_assert(strstr(out, "task 'entered'"), "%s", out);
    cr_assert(strstr(out, "deadline: in "), "%s", out);
    cr_assert(strstr(out, "in manager 'lock' (body phase"), "%s", out);
    cr_assert(strstr(out, "in manager 'scope' (body phase"), "%s", out);
    cr_assert(strstr(out, "holds lock 'A'"), "%s", out);
    free(out);
    aw_task_cancel(t);
    aw_task_join(t);
    aw_err_clear();
    return 0;
}
Test(introspect, c15_the_dump_shows_managers_phases_deadlines_and_locks) { aw_test_run(managers, NULL, 0); }

/* The part of a dump about one task: from its line to the next task's. */
static char *section(const char *out, const char *task) {
    char key[64];
    snprintf(key, sizeof key, "\ntask '%s' (id", task); /* at a line's start */
    const char *p = strstr(out, key);
    if (!p)
        return strdup("");
    const char *end = strstr(p + 1, "\ntask '");
    const char *dl = strstr(p + 1, "\nDEADLOCK");
    if (!end || (dl && dl < end))
        end = dl;
    return end ? strndup(p + 1, (size_t)(end - p - 1)) : strdup(p + 1);
}

/* ---- L2: the await graph, like asyncio ps / pstree, in process ---- */

static aw_task_t *ja, *jb;
static int joins_other(void *arg) { return aw_task_join(*(aw_task_t **)arg); }
static int nap(void *arg) { return aw_sleep(AW_SEC(3600)); }
static int joiner(void *arg) { return aw_task_join((aw_task_t *)arg); }
static int endless(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            return 0;
}
static int iterates(void *arg) {
    aw_for (int *v, aw_gen(endless, NULL))
        if (aw_sleep(AW_SEC(3600)) < 0)
            break;
    return aw_status();
}
static aw_event_t released = AW_EVENT_INIT;
static char *watched;
static int shielded_child(void *arg) {
    aw_with (aw_shield(AW_SEC(30)))
        aw_event_wait(&released);
    return aw_status();
}
static int watcher(void *arg) {
    aw_sleep_ms(1);
    int cycles;
    watched = dump(&cycles);
    aw_event_set(&released);
    return 0;
}
static int l2(void *arg) {
    aw_task_t *napper;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, nap, NULL, &napper);
        aw_spawn(g, joiner, napper, NULL);
        aw_spawn(g, iterates, NULL, NULL);
        aw_spawn(g, joins_other, &jb, &ja); /* ja joins jb ... */
        aw_spawn(g, joins_other, &ja, &jb); /* ... and jb joins ja: a cycle */
        aw_sleep_ms(2);
        aw_loop_stats_t before, after;
        aw_loop_stats(&before);
        int cycles;
        char *out = dump(&cycles);
        aw_loop_stats(&after);
        cr_assert_eq(after.switches, before.switches, "the dump runs no task code");
        /* a flat table: every task with its id, state and spawn site */
        for (const char *n = (const char *)"main\0nap\0joiner\0iterates\0joins_other\0"; *n; n += strlen(n) + 1) {
            char key[64];
            snprintf(key, sizeof key, "task '%s' (id ", n);
            cr_assert(strstr(out, key), "no line for %s:\n%s", n, out);
        }
        char *np = section(out, "nap");
        cr_assert(strstr(np, "suspended, spawned at ") && strstr(np, "tests/cm/introspect.c:"), "%s", out);
        free(np);
        /* the awaiter chain */
        char *j = section(out, "joiner");
        char key[96];
        snprintf(key, sizeof key, "waits for task 'nap' (id %llu) to finish",
                 (unsigned long long)aw_task_id(napper));
        cr_assert(strstr(j, key), "%s", out);
        char *gen = section(out, "endless");
        cr_assert(strstr(gen, "generator of task 'iterates'"), "%s", out);
        char *m = section(out, "main");
        cr_assert(strstr(m, "in manager 'group' (body phase"), "%s", out);
        /* the cycle, like pstree's "await-graph contains cycles" */
        cr_assert_eq(cycles, 1, "%s", out);
        cr_assert(strstr(out, "DEADLOCK: task 'joins_other'") && strstr(out, "joins task 'joins_other'"),
                  "%s", out);
        free(j);
        free(gen);
        free(m);
        free(out);
        aw_group_cancel(g);
        /* leaving, the owner waits for a child that finishes shielded:
         * a task outside the group sees that wait in the dump */
        aw_spawn(g, shielded_child, NULL, NULL);
        aw_spawn(NULL, watcher, NULL, NULL);
    }
    cr_assert_eq(aw_status(), 0);
    char *m = section(watched, "main");
    cr_assert(strstr(m, "waits for the children of its group"), "%s", watched);
    cr_assert(strstr(m, "in manager 'group' (exit phase"), "%s", watched);
    free(m);
    free(watched);
    return 0;
}
Test(introspect, L2_the_dump_lists_every_task_and_its_await_chain_and_flags_cycles) {
    aw_test_run(l2, NULL, 0);
}

/* ---- L3: managers with their phase, locks held and waited, deadlines ---- */

static aw_event_t l3_go = AW_EVENT_INIT;
static int slow_enter(void *self, void **out) { return aw_event_wait(&l3_go); }
static int plain_exit(void *self, const aw_err_t *err) { return 0; }
static int slow_exit(void *self, const aw_err_t *err) { return aw_event_wait(&l3_go); }
static int quick_enter(void *self, void **out) { return 0; }
static const aw_cm_type_t entering_type = {"entering", slow_enter, plain_exit};
static const aw_cm_type_t exiting_type = {"exiting", quick_enter, slow_exit};

static int in_enter(void *arg) {
    aw_with (aw_cm(&entering_type, NULL)) {
    }
    return aw_status();
}
static int in_body(void *arg) {
    aw_with (aw_fail_after(AW_SEC(60)))
    aw_with (aw_locked(&la)) {
        aw_sleep(AW_SEC(3600));
    }
    return aw_status();
}
static int in_exit(void *arg) {
    aw_with (aw_cm(&exiting_type, NULL)) {
    }
    return aw_status();
}
static int lock_waiter(void *arg) {
    aw_with (aw_locked(&la)) {
    }
    return aw_status();
}
static int l3(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, in_enter, NULL, NULL);
        aw_spawn(g, in_body, NULL, NULL);
        aw_spawn(g, in_exit, NULL, NULL);
        aw_sleep_ms(1);
        aw_spawn(g, lock_waiter, NULL, NULL);
        aw_sleep_ms(1);
        int cycles;
        char *out = dump(&cycles);
        char *e = section(out, "in_enter"), *b = section(out, "in_body"), *x = section(out, "in_exit"),
             *w = section(out, "lock_waiter");
        cr_assert(strstr(e, "in manager 'entering' (enter phase"), "%s", out);
        cr_assert(strstr(b, "in manager 'lock' (body phase"), "%s", out);
        cr_assert(strstr(b, "in manager 'scope' (body phase"), "%s", out);
        cr_assert(strstr(b, "holds lock 'A'"), "%s", out);
        cr_assert(strstr(b, "deadline: in "), "%s", out);
        cr_assert(strstr(x, "in manager 'exiting' (exit phase"), "%s", out);
        cr_assert(strstr(x, "deadline: in "), "an exit's grace is its deadline: %s", out);
        cr_assert(strstr(w, "in manager 'lock' (enter phase"), "%s", out);
        cr_assert(strstr(w, "waits for lock 'A' held by task 'in_body'"), "%s", out);
        cr_assert_null(strstr(e, "deadline:"), "no deadline where there is none: %s", out);
        cr_assert(strstr(out, ", entered at ") && strstr(out, "introspect.c:"), "%s", out);
        free(e);
        free(b);
        free(x);
        free(w);
        free(out);
        aw_event_set(&l3_go);
        aw_group_cancel(g);
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(introspect, L3_the_dump_shows_managers_with_phase_locks_held_and_waited_and_deadlines) {
    aw_test_run(l3, NULL, 0);
}

/* ---- the dump on a signal ---- */

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static FILE *captured;         /* stderr goes here */
static int wake_pipe[2];       /* the main task waits on it: the loop is blocked in epoll */
static volatile int dump_seen;

static int captured_has(const char *s) {
    fflush(captured);
    long n = ftell(captured);
    if (n <= 0)
        return 0;
    char *buf = calloc(1, (size_t)n + 1);
    int fd = fileno(captured);
    ssize_t r = pread(fd, buf, (size_t)n, 0);
    int found = r > 0 && strstr(buf, s) != NULL;
    free(buf);
    return found;
}

/* From outside the loop: send the signal to the process, wait (up to
 * 20 s) for the dump to appear, then wake the loop by the pipe. */
static void *signaller(void *arg) {
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 20000 && !dump_seen; i++) {
        if (captured_has("task 'blocked_worker'"))
            dump_seen = 1;
        else
            usleep(1000);
    }
    ssize_t w = write(wake_pipe[1], "x", 1);
    (void)w;
    return NULL;
}

static aw_lock_t held = AW_LOCK_INIT("held-while-blocked");

static int blocked_worker(void *arg) {
    aw_with (aw_locked(&held)) {
        aw_fd_wait(wake_pipe[0], AW_READ);
    }
    return aw_status();
}

static void capture_stderr(int *saved) {
    fflush(stderr);
    captured = tmpfile();
    cr_assert_not_null(captured);
    *saved = dup(2);
    dup2(fileno(captured), 2);
}

static void restore_stderr(int saved) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

/* The loop is blocked in epoll (one task waits on a pipe, no timer): the
 * signal wakes it and it dumps between tasks. */
static int on_signal_blocked(void *arg) {
    int saved;
    cr_assert_eq(pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    capture_stderr(&saved);
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR1), 0);
    pthread_t th;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, blocked_worker, NULL, NULL);
        aw_sleep_ms(1); /* the worker is waiting on the pipe now */
        cr_assert_eq(pthread_create(&th, NULL, signaller, NULL), 0);
    }
    pthread_join(th, NULL);
    restore_stderr(saved);
    cr_assert_eq(aw_status(), 0);
    cr_assert(dump_seen, "no dump on stderr after SIGUSR1");
    cr_assert(captured_has("awith loop: "));
    cr_assert(captured_has("in manager 'lock' (body phase"));
    cr_assert(captured_has("holds lock 'held-while-blocked'"));
    cr_assert_eq(aw_loop_dump_on_signal(0), 0);
    aw_fd_forget(wake_pipe[0]);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    fclose(captured);
    return 0;
}
Test(introspect, sigusr1_dumps_a_loop_blocked_in_epoll) { aw_test_run(on_signal_blocked, NULL, 0); }

/* Tasks that keep yielding never let the loop poll epoll: the flag is
 * still seen at the next round. raise() runs the handler right here. */
static int spinner(void *arg) {
    while (!captured_has("task 'spinner'"))
        if (aw_yield() < 0)
            return aw_status();
    return 0;
}
static int on_signal_busy(void *arg) {
    int saved;
    capture_stderr(&saved);
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR1), 0);
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR2), -EBUSY);
    aw_err_clear();
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, spinner, NULL, NULL);
        aw_yield();
        raise(SIGUSR1);
        cr_assert(!captured_has("awith loop: "), "never dumped inside the handler");
    }
    restore_stderr(saved);
    cr_assert_eq(aw_status(), 0);
    cr_assert(captured_has("task 'spinner' (id "));
    aw_loop_dump_on_signal(0);
    fclose(captured);
    return 0;
}
Test(introspect, sigusr1_dumps_a_busy_loop_at_its_next_round) { aw_test_run(on_signal_busy, NULL, 0); }

Test(introspect, dump_on_signal_outside_a_loop_is_eperm) {
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR1), -EPERM);
}

/* L2, M6 (the dump never crashes, whatever the state): a generator driven
 * by hand from several tasks in turn (workers pulling from one shared
 * async generator) stays parked at its yield after the worker that
 * resumed it last has ended, with its scopes. The dump does not read that
 * worker or its scopes through the generator: it shows the generator as
 * parked, with no deadline, not as the generator of a task that is gone. */
static aw_gen_t l2_gen;
static int l2_items(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            return 0;
}
static int l2_worker(void *arg) {
    void *v;
    int rc = 0;
    aw_with (aw_fail_after(AW_SEC(30))) { /* the worker's own deadline */
        rc = aw_gen_next(&l2_gen, &v);
    }
    return rc < 0 ? rc : aw_status();
}
static int l2_parked(void *arg) {
    l2_gen = (aw_gen_t)AW_GEN_INIT(l2_items, NULL);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, l2_worker, NULL, NULL);
    }
    cr_assert_eq(aw_status(), 0);
    int cycles;
    char *out = dump(&cycles);
    const char *line = strstr(out, "task 'l2_items'");
    cr_assert_not_null(line, "%s", out);
    const char *next = strstr(line, "\ntask ");
    size_t len = next ? (size_t)(next - line) : strlen(line);
    char mine[512];
    snprintf(mine, sizeof mine, "%.*s", (int)(len < 511 ? len : 511), line);
    cr_assert(strstr(mine, "parked at its yield"), "%s", out);
    cr_assert_null(strstr(mine, "l2_worker"), "names a task that has ended:\n%s", out);
    cr_assert_null(strstr(mine, "deadline"), "shows a deadline of a scope that has ended:\n%s", out);
    free(out);
    cr_assert_eq(aw_gen_close(&l2_gen), 0);
    return 0;
}
Test(introspect, L2_a_generator_parked_after_its_last_consumer_ended_is_dumped_as_parked) {
    aw_test_run(l2_parked, NULL, 0);
}

static FILE *df_devnull;
static int df_ndumps;
static void df_dump_hook(const aw_trace_event_t *ev, void *arg) {
    (void)ev; (void)arg;
    if (df_ndumps++ < 20000)
        aw_loop_dump(df_devnull);
}
static aw_lock_t df_lk = AW_LOCK_INIT("L");
static aw_cond_t df_cv = AW_COND_INIT(&df_lk);
static aw_sem_t df_sem = AW_SEM_INIT("S", 1, 1);
static int df_ready;

static int df_gen_cm(aw_gencm_t *g, void *arg) {
    int rc = 1;
    aw_with (aw_locked(&df_lk)) {
        rc = aw_gencm_yield(g, NULL);
    }
    aw_sleep_ms(1);
    return rc;
}
static int df_waiter(void *arg) {
    aw_with (aw_locked(&df_lk)) {
        while (!df_ready)
            if (aw_cond_wait(&df_cv) < 0)
                aw_leave();
    }
    return aw_status();
}
static int df_semuser(void *arg) {
    aw_with (aw_fail_after(AW_MS(3))) {
        aw_with (aw_sem_held(&df_sem)) {
            aw_sleep_ms(2);
        }
    }
    aw_err_clear();
    return 0;
}
static int df_failer(void *arg) {
    aw_sleep_ms(4);
    return aw_raise(-EIO, "fail");
}
static int df_holder_dies(void *arg) {
    aw_lock_acquire(&df_lk);
    return 0; /* ends holding the lock (M6) */
}
static int df_gen(aw_gen_t *g, void *arg) {
    for (int i = 0; i < 5; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    aw_sleep_ms(1);
    return 0;
}
static int df_stacker(void *arg) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < 3; i++) {
            void *o;
            aw_exitstack_enter(st, aw_move_on_after(AW_MS(2 + i)), &o);
        }
        aw_for (int *v, aw_gen(df_gen, NULL)) {
            if (aw_sleep_ms(1) < 0)
                break;
        }
    }
    aw_err_clear();
    return 0;
}
static int df_scenario(void *arg) {
    df_devnull = fopen("/dev/null", "w");
    aw_trace_set(df_dump_hook, NULL);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, df_waiter, NULL, NULL);
        aw_spawn(g, df_waiter, NULL, NULL);
        for (int i = 0; i < 4; i++)
            aw_spawn(g, df_semuser, NULL, NULL);
        aw_spawn(g, df_stacker, NULL, NULL);
        aw_with (aw_gencm(df_gen_cm, NULL)) {
            aw_sleep_ms(1);
        }
        aw_spawn(g, df_failer, NULL, NULL);
        aw_with (aw_shield(AW_MS(20))) {
            aw_sleep_ms(6);
        }
        aw_with (aw_locked(&df_lk)) {
            df_ready = 1;
            aw_cond_notify_all(&df_cv);
        }
    }
    aw_err_clear();
    aw_task_t *t;
    aw_spawn(NULL, df_holder_dies, NULL, &t);
    aw_task_join(t);
    aw_err_clear();
    aw_loop_dump(df_devnull);
    aw_with (aw_move_on_after(AW_MS(5))) {
        aw_lock_acquire(&df_lk);
    }
    aw_err_clear();
    aw_trace_set(NULL, NULL);
    cr_assert_gt(df_ndumps, 50, "the hook dumped at every event: %d", df_ndumps);
    fclose(df_devnull);
    return 0;
}
Test(introspect, M6_L2_a_dump_at_every_event_of_a_busy_loop_never_crashes) { aw_test_run(df_scenario, NULL, 0); }

/* (c) 12 through a generator: the consumer holds lock GB and iterates a
 * generator that waits for lock GA; the other task holds GA and waits for
 * GB. The generator acts for its consumer, so this is a deadlock on A/B
 * like the one above, and the dump flags it, through the generator. */
static aw_lock_t ga = AW_LOCK_INIT("GA"), gb = AW_LOCK_INIT("GB");
static int gd_gen(aw_gen_t *g, void *arg) {
    aw_with (aw_locked(&ga)) {
        int v = 1;
        aw_gen_yield(g, &v);
    }
    return aw_status();
}
static int gd_consumer(void *arg) {
    aw_with (aw_locked(&gb)) {
        aw_sleep_ms(2);
        aw_for (int *v, aw_gen(gd_gen, NULL)) {
        }
    }
    return aw_status();
}
static int gd_other(void *arg) {
    aw_with (aw_locked(&ga)) {
        aw_sleep_ms(2);
        aw_with (aw_locked(&gb)) {
        }
    }
    return aw_status();
}
static int gen_deadlock(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, gd_consumer, NULL, NULL);
        aw_spawn(g, gd_other, NULL, NULL);
        aw_sleep_ms(10);
        int cycles;
        char *out = dump(&cycles);
        cr_assert_eq(cycles, 1, "one wait-for cycle:\n%s", out);
        cr_assert(strstr(out, "DEADLOCK: task 'gd_consumer' (id 2) runs its generator task "
                              "'gd_gen' (id 4) waits for lock 'GA' held by task 'gd_other' (id 3) "
                              "waits for lock 'GB' held by task 'gd_consumer' (id 2)"), "%s", out);
        free(out);
        aw_group_cancel(g); /* break the deadlock */
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&ga));
    cr_assert_null(aw_lock_owner(&gb));
    return 0;
}
Test(introspect, c12_a_lock_cycle_through_a_generator_is_flagged_as_a_deadlock) {
    aw_test_run(gen_deadlock, NULL, 0);
}

/* (c) 12 through a group: the owner holds lock GL and waits at the end of
 * its group's block for a child that waits for GL (asyncio's "await the
 * tasks while holding the lock they need"). The owner waits for every
 * child, so this is a wait-for cycle, and the dump flags it; a sibling
 * that only sleeps is in no cycle. A watcher outside dumps, then cancels
 * the owner to break it. */
static aw_lock_t gl = AW_LOCK_INIT("GL");
static char *gl_out;
static int gl_cycles = -1;
static int gl_child(void *arg) {
    aw_with (aw_locked(&gl)) {
    }
    return aw_status();
}
static int gl_sleeper(void *arg) { return aw_sleep(AW_SEC(3600)); }
static int gl_watcher(void *arg) {
    aw_sleep_ms(5);
    gl_out = dump(&gl_cycles);
    aw_task_cancel(arg);
    return 0;
}
static int gl_owner(void *arg) {
    aw_with (aw_locked(&gl))
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, gl_sleeper, NULL, NULL);
            aw_spawn(g, gl_child, NULL, NULL);
        }
    return aw_status();
}
static int group_deadlock(void *arg) {
    aw_task_t *o, *w;
    aw_spawn(NULL, gl_owner, NULL, &o);
    aw_spawn(NULL, gl_watcher, o, &w);
    cr_assert_eq(aw_task_join(o), -ECANCELED);
    aw_err_clear();
    cr_assert_eq(aw_task_join(w), 0);
    cr_assert_eq(gl_cycles, 1, "one wait-for cycle:\n%s", gl_out);
    cr_assert(strstr(gl_out, "DEADLOCK: task 'gl_owner' (id 2) waits for the children of its "
                             "group, among them task 'gl_child' (id 5) waits for lock 'GL' held "
                             "by task 'gl_owner' (id 2)\n"), "%s", gl_out);
    free(gl_out);
    cr_assert_null(aw_lock_owner(&gl));
    return 0;
}
Test(introspect, c12_a_group_owner_holding_a_lock_its_child_waits_for_is_a_deadlock) {
    aw_test_run(group_deadlock, NULL, 0);
}

/* introspect.h: "sig == 0 restores the signal's previous action", and so
 * does the close of the loop that dumps: a program's own SIGUSR2 handler
 * is back once aw_main returns, and a later loop may ask for another
 * signal (not -EBUSY for a signal no loop has any more). */
static void own_usr2(int sig) { (void)sig; }
static int dumps_on_usr2(void *arg) {
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR2), 0);
    return 0; /* never turned off: the loop closes with it */
}
static int dumps_on_usr1_then_off(void *arg) {
    cr_assert_eq(aw_loop_dump_on_signal(SIGUSR1), 0, "refused: %s",
                 aw_err_current() ? aw_err_current()->msg : "");
    cr_assert_eq(aw_loop_dump_on_signal(0), 0);
    return 0;
}
static bool usr2_is_own(void) {
    struct sigaction cur;
    sigaction(SIGUSR2, NULL, &cur);
    return cur.sa_handler == own_usr2;
}
Test(introspect, the_dump_on_a_signal_ends_with_its_loop_and_the_old_action_is_back) {
    struct sigaction sa = {0}, usr1;
    sa.sa_handler = own_usr2;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    cr_assert_eq(aw_main(dumps_on_usr2, NULL), 0);
    cr_assert(usr2_is_own(), "the loop closed, but the dump still holds SIGUSR2");
    cr_assert_eq(aw_main(dumps_on_usr1_then_off, NULL), 0);
    sigaction(SIGUSR1, NULL, &usr1);
    cr_assert_eq(usr1.sa_handler, SIG_DFL, "sig 0 put SIGUSR1's default back");
    cr_assert(usr2_is_own());
}

/* L3: the dump says which object a task waits on, not only its kind: a
 * semaphore by its name, a condition by its lock's, a lock without a
 * name as '?'. */
static aw_sem_t w_sem = AW_SEM_INIT("slots", 0, 0);
static aw_lock_t w_lk = AW_LOCK_INIT("state"), w_anon = AW_LOCK_INIT(NULL);
static aw_cond_t w_cv = AW_COND_INIT(&w_lk);
static int w_sem_waiter(void *arg) { return aw_sem_acquire(&w_sem); }
static int w_cond_waiter(void *arg) {
    aw_with (aw_locked(&w_lk))
        if (aw_cond_wait(&w_cv) < 0)
            aw_leave();
    return aw_status();
}
static int w_anon_waiter(void *arg) {
    aw_with (aw_locked(&w_anon)) {
    }
    return aw_status();
}
static int waits_on(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_with (aw_locked(&w_anon)) {
            aw_spawn(g, w_sem_waiter, NULL, NULL);
            aw_spawn(g, w_cond_waiter, NULL, NULL);
            aw_spawn(g, w_anon_waiter, NULL, NULL);
            aw_sleep_ms(2);
            int cycles;
            char *out = dump(&cycles);
            cr_assert(strstr(out, "  waits for semaphore 'slots'\n"), "%s", out);
            cr_assert(strstr(out, "  waits for condition of lock 'state'\n"), "%s", out);
            cr_assert(strstr(out, "  waits for lock '?' held by task 'main'"), "%s", out);
            free(out);
            aw_group_cancel(g);
        }
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(introspect, L3_a_waiter_names_the_semaphore_condition_or_lock_it_waits_on) {
    aw_test_run(waits_on, NULL, 0);
}
