/* timers.c: 1,000,000 tasks each sleeping until its own random deadline
 * (aw_sleep_until), all woken in order. The figure is CPU time (user +
 * system, whole process) per timer from the first spawn to the last
 * wake-up: the time spent waiting for the deadlines is idle and not
 * counted. The deadlines (deadlines.h) span 500 ms, in whole ms.
 *
 * Peer: libuv, one uv_timer_t per deadline, the same deadlines
 * (bench/peers/timers_uv.c). awith's figure includes what a task costs
 * (spawn, a switch in, a switch out and back, the exit); libuv's is a bare
 * callback. Both sides repeat in one process (one loop, one timer array or
 * stack cache) as many times, so warm is compared with warm and cold with
 * cold:
 *
 *   timer_ns        median of the runs after the first (awith: the loop's
 *                   stack cache warm; libuv: its timer array touched);
 *                   up to 4 within a 20 s budget
 *   timer_cold_ns   the first run (awith: stacks made and first touched;
 *                   libuv: the array's pages first touched)
 *
 * On a machine whose page faults are slow (some VMs: 20 us instead of
 * 0.2 us) the count is lowered to fit a time budget (bench_fit), for the
 * peer too; the config line prints the count used. AW_BENCH_FULL=1 keeps
 * 1,000,000.
 *   timers_order    wake-ups earlier than the previous wake-up's deadline
 *                   (0 = in order), sleepers whose deadline passed before
 *                   they armed it (late: kept out of the order check), and
 *                   the loop's defaults used */
#include "bench.h"
#include "deadlines.h"

static long n;
static uint32_t *offs;
static aw_ns_t base;
static aw_ns_t last;
static long inversions, woken, late;

/* A sleeper whose deadline passed before it could arm it (base below
 * leaves room for that, but a loaded machine may still take longer) is
 * counted as late and kept out of the order check: its timer is due when
 * armed, so it fires with whatever else is due at the next check, and
 * the check is about the order of timers that were waited on. */
static int sleeper(void *arg) {
    aw_ns_t d = base + AW_MS(offs[(intptr_t)arg]);
    bool was_late = d <= aw_now();
    int rc = aw_sleep_until(d);
    if (rc < 0)
        return rc;
    woken++;
    if (was_late) {
        late++;
        return 0;
    }
    if (d < last)
        inversions++;
    last = d;
    return 0;
}

typedef struct {
    double cpu[BENCH_REPS];
    double wall[BENCH_REPS];
    size_t peak_timers;
    int reps;
} res_t;

static int bench(void *arg) {
    res_t *r = arg;
    double start = bench_now();
    for (int rep = 0; bench_more(rep, start, 20); rep++) {
        last = 0;
        woken = 0;
        late = 0;
        double c0 = bench_cpu(), t0 = bench_now();
        aw_with (aw_group_t *g, aw_group()) {
            aw_ns_t s0 = aw_now();
            for (long i = 0; i < n; i++)
                if (aw_spawn(g, sleeper, (void *)(intptr_t)i, NULL) < 0)
                    aw_leave();
            /* The deadlines start once every sleeper can have armed its
             * timer: running them to their sleep costs about what spawning
             * them did. Otherwise a slow spawn (a loaded machine, cold
             * stacks) leaves them all due before they are armed, and the
             * heap is only ever drained in one pass, never waited on. */
            aw_ns_t now = aw_now();
            base = now + 2 * (now - s0) + AW_MS(20);
            aw_yield(); /* every sleeper runs to its sleep */
            aw_loop_stats_t s;
            aw_loop_stats(&s);
            if (s.timers > r->peak_timers)
                r->peak_timers = s.timers;
        }
        if (aw_status() < 0)
            return aw_status();
        r->cpu[rep] = (bench_cpu() - c0) / (double)n;
        r->wall[rep] = (bench_now() - t0) / 1e6;
        if (woken != n)
            fprintf(stderr, "timers: only %ld of %ld sleepers woke\n", woken, n);
        r->reps = rep + 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    double fault_ns;
    long want = bench_n(TIMERS_N);
    n = bench_fit(want, 10, &fault_ns);
    offs = timers_deadlines(n);
    if (!offs)
        return 1;
    aw_loop_opts_t opts = {0};
    if (argc > 1) /* optional: stack size in KiB */
        opts.stack_size = (size_t)atol(argv[1]) * 1024;
    res_t r = {0};
    if (bench_main(&opts, bench, &r) < 0)
        return 1;
    double cold = r.cpu[0];
    double warm = r.reps > 1 ? bench_median(r.cpu + 1, r.reps - 1) : cold;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/timers_uv' %ld %d 2>/dev/null",
             bench_env("AW_BENCH_PEERS", BENCH_PEER_DIR), n, r.reps > 1 ? r.reps : 2);
    double uv[2];
    bench_popen_values(cmd, (const char *const[]){"timer_ns", "timer_cold_ns", NULL}, uv);
    bench_config("timers=%ld%s, deadlines over %d ms; awith: a task per timer (aw_sleep_until), "
                 "%zu KiB stacks; libuv: a bare uv_timer_t per deadline; both: %d runs in one "
                 "process, warm = median of runs 2..%d, cold = run 1; CPU time of the process",
                 n, n < want ? " (not 1,000,000: page faults cost too much here; AW_BENCH_FULL=1 for all)" : "",
                 TIMERS_SPAN_MS, opts.stack_size ? opts.stack_size / 1024 : (size_t)128, r.reps,
                 r.reps);
    const char *peers[] = {"libuv", NULL};
    bench_print("timer_ns", warm, peers, (double[]){uv[0]});
    bench_print("timer_cold_ns", cold, peers, (double[]){uv[1]});
    bench_note("timers_wall", "wall_ms_median=%.0f (deadlines span %d ms)",
               bench_median(r.wall, r.reps), TIMERS_SPAN_MS);
    bench_note("timers_order", "inversions=%ld timers=%ld late=%ld armed_at_once=%zu stack_kib=%zu "
               "runs=%d page_fault_us=%.2g", inversions, n, late, r.peak_timers,
               opts.stack_size ? opts.stack_size / 1024 : (size_t)128, r.reps, fault_ns / 1e3);
    free(offs);
    return 0;
}
