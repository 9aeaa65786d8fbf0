/* switch.c: the cost of a context switch, one direction.
 *
 * awith: two tasks ping-pong with aw_yield(); one round trip is two yields,
 * i.e. two switches from one task to the other, so
 *   switch_ns = wall time / (2 * round trips).
 * The loop's own count (aw_loop_stats().switches) is printed too: the
 * scheduler's rounds add switches through the loop's stack, and
 * switch_raw_ns divides by that count instead.
 * Peers: boost::context::fiber ping-pong (resume there and back = two
 * switches), asyncio (and uvloop) tasks doing `await asyncio.sleep(0)`.
 *
 * A second figure, switch_16tasks_ns, has 16 tasks yielding round robin:
 * the per-round cost of the scheduler is shared by 16 switches.
 * switch_coro_ns is the machine layer alone (aw__coro_switch), the same
 * shape as the boost peer: a thread and one coroutine, back and forth.
 * switch_env gives the cost of a system call and of aw_now() here, to
 * read the others by. */
#include "bench.h"

#include "../src/coro/coro.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The machine layer alone, the shape of the boost peer: the thread's
 * context and one coroutine switching back and forth. */
static aw__coro_t coro_main, coro_peer;
static void coro_pingpong(void *arg) {
    for (;;)
        aw__coro_switch(&coro_peer, &coro_main, 0);
}
static double coro_switch_ns(long n) {
    double v[BENCH_REPS];
    size_t size = 64 * 1024;
    char *stack = aligned_alloc(4096, size);
    aw__coro_init_thread(&coro_main);
    aw__coro_init(&coro_peer, stack, stack + size, coro_pingpong, NULL);
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_now();
        for (long i = 0; i < n; i++)
            aw__coro_switch(&coro_main, &coro_peer, 0);
        v[rep] = (bench_now() - t0) / (2.0 * n);
    }
    /* the coroutine stays parked in its loop: its stack is simply freed */
    free(stack);
    return bench_median(v, BENCH_REPS);
}

static long rounds;       /* round trips (yields per task) per measurement */

static int yielder(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++)
        if (aw_yield() < 0)
            return aw_status();
    return 0;
}

typedef struct {
    int ntasks;
    double per_yield[BENCH_REPS];   /* wall ns / yields */
    double per_switch[BENCH_REPS];  /* wall ns / loop switches */
    double sw_per_yield[BENCH_REPS];
} run_t;

static int bench(void *arg) {
    run_t *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        aw_loop_stats_t s0, s1;
        aw_loop_stats(&s0);
        double t0 = bench_now();
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < r->ntasks; i++)
                aw_spawn(g, yielder, NULL, NULL);
        }
        double t1 = bench_now();
        aw_loop_stats(&s1);
        if (aw_status() < 0)
            return aw_status();
        double yields = (double)rounds * r->ntasks;
        double sw = (double)(s1.switches - s0.switches);
        r->per_yield[rep] = (t1 - t0) / yields;
        r->per_switch[rep] = (t1 - t0) / sw;
        r->sw_per_yield[rep] = sw / yields;
    }
    return 0;
}

int main(void) {
    rounds = bench_n(1000000);
    run_t two = {.ntasks = 2};
    if (bench_main(NULL, bench, &two) < 0)
        return 1;

    char args[64];
    snprintf(args, sizeof args, "switch %ld", rounds * 4);
    double boost = bench_peer("switch_boost", args, "switch_ns");
    long pyn = bench_n(100000);
    snprintf(args, sizeof args, "switch %ld asyncio", pyn);
    double asy = bench_python(args, "switch_ns");
    snprintf(args, sizeof args, "switch %ld uvloop", pyn);
    double uvl = bench_python(args, "switch_ns");

    const char *peers[] = {"boost", "asyncio", "uvloop", NULL};
    double pv[] = {boost, asy, uvl};
    double sw_per_yield = bench_median(two.sw_per_yield, BENCH_REPS);
    bench_config("wall time, median of 5; switch_ns: the public aw_yield, 2 tasks ping-pong, "
                 "%ld yields each (what a program pays); switch_coro_ns: the private machine "
                 "switch (aw__coro_switch, inlined, no scheduler), the same shape as the boost "
                 "peer (fiber resume there and back, %ld); asyncio/uvloop: 2 tasks "
                 "`await asyncio.sleep(0)`, %ld each", rounds, rounds * 4, pyn);
    bench_print("switch_ns", bench_median(two.per_yield, BENCH_REPS), peers, pv);
    const char *p1[] = {"boost", NULL};
    bench_print("switch_coro_ns", coro_switch_ns(rounds * 4), p1, pv);
    bench_print("switch_raw_ns", bench_median(two.per_switch, BENCH_REPS), p1, pv);
    bench_note("switch_count", "loop_switches_per_yield=%.3g (2 tasks)", sw_per_yield);

    run_t many = {.ntasks = 16};
    rounds = bench_n(1000000) / 8;
    if (bench_main(NULL, bench, &many) < 0)
        return 1;
    bench_print("switch_16tasks_ns", bench_median(many.per_yield, BENCH_REPS), p1, pv);
    bench_note("switch_16tasks_count", "loop_switches_per_yield=%.3g",
               bench_median(many.sw_per_yield, BENCH_REPS));

    /* What a system call costs here: each scheduler round makes one
     * (epoll_pwait2), which the 2-task figure pays every second yield. */
    double t0 = bench_now();
    for (int i = 0; i < 100000; i++)
        syscall(SYS_getpid);
    double sys_ns = (bench_now() - t0) / 100000;
    t0 = bench_now();
    for (int i = 0; i < 100000; i++)
        (void)aw_now();
    bench_note("switch_env", "syscall_ns=%.4g aw_now_ns=%.3g", sys_ns, (bench_now() - t0) / 100000);
    return 0;
}
