/* ops.c: one hot path, run n times, for instruction counts.
 *
 *   bench-ops <path> <n>
 *
 * Prints nothing but the path and n: the figure is the difference of
 * callgrind's instruction counts (`Collected`) between two values of n,
 * divided by the difference of n, so that start-up and shut-down cancel
 * out (tools/icount.sh does that). Unlike the timed benchmarks this
 * figure does not depend on the machine's load, which is what a change
 * to a hot path is judged by (issue 14: callgrind, release build).
 *
 * Paths (one operation each):
 *   yield1, yield64      a yield of two tasks taking turns, each inside 1 or
 *                        64 nested cancel scopes
 *   yield1d, yield64d    the same with a (far) deadline on every scope
 *   with                 a no-op manager's aw_with, enter + exit
 *   deadline             aw_with (aw_fail_after(10 s)) entered and left
 *   gencm                aw_with (aw_gencm(f)) of a function that only yields
 *   exitstack10          an exit stack of 10 no-op managers, entered and left
 *   agen                 one item of an async generator consumed by aw_for
 *   lock                 one acquire of a lock 100 tasks contend for (a hand-off)
 *   spawn                spawn + join in batches of 1,000 (group)
 *   spawnlive            spawn + join with 100,000 tasks live (parked on an
 *                        event) in a second group
 *   sleep                spawn + a sleep until a deadline already passed +
 *                        join, in batches of 1,000 (bench/timers' task per
 *                        timer, without the wait: subtract spawn for the
 *                        sleep's arm, fire and wake-up) */
#include "bench.h"

static long n;
static int depth;
static int with_deadline;
static volatile long sink;

static int yielder(void *arg) { /* two of them: n yields in all */
    (void)arg;
    for (long i = 0; i < n / 2; i++)
        if (aw_yield() < 0)
            return aw_status();
    return 0;
}

static int nested_yielder(void *arg) { return bench_in_scopes(depth, with_deadline, yielder, arg); }

static int run_yield(void) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, nested_yielder, NULL, NULL);
        aw_spawn(g, nested_yielder, NULL, NULL);
    }
    return aw_status();
}

static int run_with(void) {
    for (long i = 0; i < n; i++)
        aw_with (aw_cm(&bench_noop_type, NULL))
            sink = i;
    return aw_status();
}

static int run_deadline(void) {
    for (long i = 0; i < n; i++)
        aw_with (aw_fail_after(AW_SEC(10)))
            sink = i;
    return aw_status();
}

static int only_yield(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, arg); }

static int run_gencm(void) {
    for (long i = 0; i < n; i++)
        aw_with (aw_gencm(only_yield, NULL))
            sink = i;
    return aw_status();
}

static int run_exitstack10(void) {
    for (long i = 0; i < n; i++)
        aw_with (aw_exitstack_t *st, aw_exitstack())
            for (int k = 0; k < 10; k++)
                aw_exitstack_enter(st, aw_cm(&bench_noop_type, NULL), NULL);
    return aw_status();
}

static int numbers(aw_gen_t *g, void *arg) {
    (void)arg;
    for (long i = 0; i < n; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    return 0;
}

static int run_agen(void) {
    long s = 0;
    aw_for (long *v, aw_gen(numbers, NULL))
        s += *v;
    sink = s;
    return aw_status();
}

enum { LOCKERS = 100 };
static aw_lock_t lk = AW_LOCK_INIT("ops");

static int locker(void *arg) {
    (void)arg;
    for (long i = 0; i < n / LOCKERS; i++) {
        aw_with (aw_locked(&lk))
            aw_yield();
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

static int run_lock(void) {
    aw_with (aw_group_t *g, aw_group())
        for (int k = 0; k < LOCKERS; k++)
            aw_spawn(g, locker, NULL, NULL);
    return aw_status();
}

static int noop(void *arg) {
    sink = (long)(intptr_t)arg;
    return 0;
}

/* n tasks running fn, spawned and joined in batches of 1,000 */
static int run_batches(aw_task_fn fn) {
    for (long done = 0; done < n; done += 1000)
        aw_with (aw_group_t *g, aw_group())
            for (int i = 0; i < 1000; i++)
                aw_spawn(g, fn, NULL, NULL);
    return aw_status();
}

static int sleeper(void *arg) {
    (void)arg;
    return aw_sleep_until(1) < 0 ? aw_status() : 0; /* long passed: fires at the next check */
}

static aw_event_t stop = AW_EVENT_INIT;
static int parked(void *arg) {
    (void)arg;
    return aw_event_wait(&stop) < 0 ? aw_status() : 0;
}

static int run_spawnlive(void) {
    long live = 100000;
    const char *s = getenv("AW_OPS_LIVE");
    if (s && *s)
        live = atol(s);
    aw_with (aw_group_t *keep, aw_group()) {
        for (long i = 0; i < live; i++)
            aw_spawn(keep, parked, NULL, NULL);
        aw_yield(); /* let them all park */
        run_batches(noop);
        aw_event_set(&stop);
    }
    return aw_status();
}

static const char *path;

static int body(void *arg) {
    (void)arg;
    if (!strncmp(path, "yield", 5)) {
        depth = atoi(path + 5);
        with_deadline = path[strlen(path) - 1] == 'd';
        return run_yield();
    }
    if (!strcmp(path, "with"))
        return run_with();
    if (!strcmp(path, "deadline"))
        return run_deadline();
    if (!strcmp(path, "gencm"))
        return run_gencm();
    if (!strcmp(path, "exitstack10"))
        return run_exitstack10();
    if (!strcmp(path, "agen"))
        return run_agen();
    if (!strcmp(path, "lock"))
        return run_lock();
    if (!strcmp(path, "spawn"))
        return run_batches(noop);
    if (!strcmp(path, "spawnlive"))
        return run_spawnlive();
    if (!strcmp(path, "sleep"))
        return run_batches(sleeper);
    fprintf(stderr, "bench-ops: unknown path '%s'\n", path);
    return -EINVAL;
}

int main(int argc, char **argv) {
    if (argc != 3) { /* from tools/bench.sh: nothing to time here */
        printf("# bench-ops: instruction counts per path, see tools/icount.sh\n");
        return argc == 1 ? 0 : 2;
    }
    path = argv[1];
    n = atol(argv[2]);
    if (bench_main(NULL, body, NULL) < 0)
        return 1;
    printf("%s %ld\n", path, n);
    return 0;
}
