/* with.c: the cost of an aw_with block that does not suspend.
 *
 *   with_ns      enter + exit of a no-op manager (both return 0) vs
 *                Python's `async with` on a no-op class manager
 *   timeout_ns   a deadline scope entered and left without firing,
 *                aw_with(aw_fail_after(AW_SEC(10))), vs
 *                `async with asyncio.timeout(10)`
 *
 * Every 1000 blocks both sides let the loop run once (aw_yield /
 * asyncio.sleep(0)), so that asyncio can purge the timers it cancelled;
 * that is amortised into the figure. The empty loop (with the same
 * yields) is measured and subtracted on both sides. */
#include "bench.h"

static long n;
static volatile long sink;

typedef struct {
    double with[BENCH_REPS], timeout[BENCH_REPS];
} res_t;

static double empty_loop(void) {
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        sink = i;
        if (i % 1000 == 999)
            aw_yield();
    }
    return bench_now() - t0;
}

static int bench(void *arg) {
    res_t *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_now();
        for (long i = 0; i < n; i++) {
            aw_with (aw_cm(&bench_noop_type, NULL))
                sink = i;
            if (i % 1000 == 999)
                aw_yield();
        }
        double t1 = bench_now();
        double base = empty_loop();
        r->with[rep] = (t1 - t0 - base) / (double)n;

        t0 = bench_now();
        for (long i = 0; i < n; i++) {
            aw_with (aw_fail_after(AW_SEC(10)))
                sink = i;
            if (i % 1000 == 999)
                aw_yield();
        }
        t1 = bench_now();
        if (aw_status() < 0)
            return aw_status();
        base = empty_loop();
        r->timeout[rep] = (t1 - t0 - base) / (double)n;
    }
    return 0;
}

int main(void) {
    n = bench_n(10000000);
    res_t r;
    if (bench_main(NULL, bench, &r) < 0)
        return 1;
    long pyn = bench_n(300000);
    char args[64];
    const char *peers[] = {"asyncio", "uvloop", NULL};
    double pv[2];
    snprintf(args, sizeof args, "with %ld asyncio", pyn);
    pv[0] = bench_python(args, "with_ns");
    snprintf(args, sizeof args, "with %ld uvloop", pyn);
    pv[1] = bench_python(args, "with_ns");
    bench_config("wall time, median of 5; awith: %ld blocks; asyncio/uvloop: %ld (timeout: %ld); "
                 "both yield to the loop every 1000 blocks and subtract the same loop without the "
                 "blocks (its counter, test and yields)", n, pyn, pyn / 3);
    bench_print("with_ns", bench_median(r.with, BENCH_REPS), peers, pv);
    snprintf(args, sizeof args, "timeout %ld asyncio", pyn / 3);
    pv[0] = bench_python(args, "timeout_ns");
    snprintf(args, sizeof args, "timeout %ld uvloop", pyn / 3);
    pv[1] = bench_python(args, "timeout_ns");
    bench_print("timeout_ns", bench_median(r.timeout, BENCH_REPS), peers, pv);
    return 0;
}
