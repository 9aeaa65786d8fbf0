/* lock.c: a contended lock. 100 tasks each acquire and release it 1,000
 * times with a yield inside (aw_with (aw_locked(&l)) aw_yield()), vs
 * asyncio.Lock with `async with lock: await asyncio.sleep(0)`.
 *
 *   lock_ns   wall time per acquire/release: every release hands the lock
 *             to the next waiter (FIFO), so each one is a hand-off and a
 *             switch, not an uncontended fast path. */
#include "cm_peer.h"

enum { TASKS = 100 };

static long per;
static aw_lock_t lk = AW_LOCK_INIT("bench");

static int worker(void *arg) {
    (void)arg;
    for (long i = 0; i < per; i++) {
        aw_with (aw_locked(&lk))
            aw_yield();
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

static int bench(void *arg) {
    double *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_cpu();
        aw_with (aw_group_t *g, aw_group()) {
            for (int k = 0; k < TASKS; k++)
                aw_spawn(g, worker, NULL, NULL);
        }
        r[rep] = (bench_cpu() - t0) / (double)(TASKS * per);
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

int main(void) {
    per = bench_n(1000);
    double r[BENCH_REPS];
    if (bench_main(NULL, bench, r) < 0)
        return 1;
    bench_config("CPU time, median of 5; both: %d tasks x %ld acquires, a yield while held, FIFO "
                 "hand-off (aw_lock / asyncio.Lock)", TASKS, per);
    cm_figure("lock_ns", bench_median(r, BENCH_REPS), "lock", TASKS * per, "lock_ns");
    return 0;
}
