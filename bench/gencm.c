/* gencm.c: a generator-style manager entered and left (aw_gencm, whose
 * function only yields) vs Python's @asynccontextmanager.
 *
 *   gencm_ns   enter + exit, per block: two direct switches to the
 *              manager's coroutine and back (a bare coroutine run as the
 *              user task, warm from the loop's cache; no task is made).
 *
 * As in bench/with.c, every 1000 blocks both sides let the loop run once;
 * the empty loop is measured and subtracted on both sides. */
#include "cm_peer.h"

static int empty(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, arg); }

static long n;
static volatile long sink;

static double empty_loop(void) {
    double t0 = bench_cpu();
    for (long i = 0; i < n; i++) {
        sink = i;
        if (i % 1000 == 999)
            aw_yield();
    }
    return bench_cpu() - t0;
}

static int bench(void *arg) {
    double *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_cpu();
        for (long i = 0; i < n; i++) {
            aw_with (aw_gencm(empty, NULL))
                sink = i;
            if (i % 1000 == 999)
                aw_yield();
        }
        double t1 = bench_cpu();
        if (aw_status() < 0)
            return aw_status();
        r[rep] = (t1 - t0 - empty_loop()) / (double)n;
    }
    return 0;
}

int main(void) {
    n = bench_n(2000000);
    double r[BENCH_REPS];
    if (bench_main(NULL, bench, r) < 0)
        return 1;
    bench_config("CPU time, median of 5 on each side; awith: %ld blocks, the manager's stack from "
                 "the loop's cache (warm); asyncio/uvloop: %ld `async with` of an "
                 "@asynccontextmanager; both yield to the loop every 1000 and subtract that empty loop",
                 n, bench_n(100000));
    cm_figure("gencm_ns", bench_median(r, BENCH_REPS), "gencm", bench_n(100000), "gencm_ns");
    return 0;
}
