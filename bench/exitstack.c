/* exitstack.c: an exit stack entering 10 no-op managers, then left (all
 * 10 exits, LIFO) vs Python's AsyncExitStack with 10 no-op class managers.
 *
 *   exitstack10_ns   per stack (one malloc and free per entry). */
#include "cm_peer.h"

static long n;

static int bench(void *arg) {
    double *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_cpu();
        for (long i = 0; i < n; i++) {
            aw_with (aw_exitstack_t *st, aw_exitstack()) {
                for (int k = 0; k < 10; k++)
                    if (aw_exitstack_enter(st, aw_cm(&bench_noop_type, NULL), NULL) < 0)
                        aw_leave();
            }
            if (i % 1000 == 999)
                aw_yield();
        }
        r[rep] = (bench_cpu() - t0) / (double)n;
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

int main(void) {
    n = bench_n(500000);
    double r[BENCH_REPS];
    if (bench_main(NULL, bench, r) < 0)
        return 1;
    bench_config("CPU time, median of 5; both: an exit stack entering 10 no-op class managers "
                 "then left (aw_exitstack / contextlib.AsyncExitStack), %ld / %ld times", n, bench_n(30000));
    cm_figure("exitstack10_ns", bench_median(r, BENCH_REPS), "exitstack", bench_n(30000),
              "exitstack10_ns");
    return 0;
}
