/* gen.c: an async generator consumed by aw_for, per item, over 1,000,000
 * items, vs a Python async generator consumed by `async for`.
 *
 *   agen_ns   per item: a switch to the generator's coroutine and back. */
#include "cm_peer.h"

static long n;
static volatile long sink;

static int numbers(aw_gen_t *g, void *arg) {
    for (long i = 0; i < n; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    return 0;
}

static int bench(void *arg) {
    double *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        long s = 0;
        double t0 = bench_cpu();
        aw_for (long *v, aw_gen(numbers, NULL))
            s += *v;
        r[rep] = (bench_cpu() - t0) / (double)n;
        sink = s;
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

int main(void) {
    n = bench_n(1000000);
    double r[BENCH_REPS];
    if (bench_main(NULL, bench, r) < 0)
        return 1;
    bench_config("CPU time, median of 5; both: %ld items of a generator (aw_gen, stack from the "
                 "loop's cache / Python async generator) consumed by aw_for / async for", n);
    cm_figure("agen_ns", bench_median(r, BENCH_REPS), "agen", n, "agen_ns");
    return 0;
}
