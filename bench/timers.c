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
 *                   2 runs at least, whatever the budget, up to 4
 *                   within a 20 s budget
 *   timer_cold_ns   the first run (awith: stacks made and first touched;
 *                   libuv: the array's pages first touched)
 *
 * On a machine whose page faults are slow (some VMs: 20 us instead of
 * 0.2 us) the count is lowered to fit a time budget (bench_fit), for the
 * peer too; the config line prints the count used. AW_BENCH_FULL=1 keeps
 * 1,000,000.
 *   timers_floor    the memory floor of a task per timer (timers_floor()
 *                   below): CPU time per timer on plain memory, printed
 *                   next to libuv: a lower bound, not an explanation. Its
 *                   accesses are independent, so their misses overlap;
 *                   awith's go through pointers (run queue, record, saved
 *                   registers) and wait on each other. At 1,000,000 it
 *                   is ~200-280 ns of awith's ~2,400, while the same
 *                   path in cache (bench-ops sleep) is ~120 ns: the rest
 *                   is those misses, not instructions
 *   timers_phases   each side's figure split at the moment every timer is
 *                   armed: what arming costs, and what firing does
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
static aw_ns_t armed; /* every sleeper armed by then (AW_NEVER until it is known) */
static long inversions, woken, late;

/* A sleeper whose deadline passed before it could arm it (base below
 * leaves room for that, but a loaded machine may still take longer) is
 * counted as late and kept out of the order check: its timer is due when
 * armed, so it fires with whatever else is due at the next check, and
 * the check is about the order of timers that were waited on. Late means
 * due by the time the last sleeper armed: a clock read when each one
 * arms (about 28 ns on this VM) would be a cost the libuv peer does not
 * pay, and it counts at most a few more as late. */
static int sleeper(void *arg) {
    aw_ns_t d = base + AW_MS(offs[(intptr_t)arg]);
    int rc = aw_sleep_until(d);
    if (rc < 0)
        return rc;
    woken++;
    if (d <= armed) {
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
    double arm[BENCH_REPS];            /* of cpu: spawn until every sleeper is armed */
    double wall[BENCH_REPS];
    size_t peak_timers;
    int reps;
} res_t;

static int bench(void *arg) {
    res_t *r = arg;
    double start = bench_now();
    /* at least two runs: the warm figure is the headline, and on a VM
     * whose first-touch faults are slow the cold run alone can take the
     * whole budget (37 s here once, leaving timer_ns the cold figure) */
    for (int rep = 0; rep < 2 || bench_more(rep, start, 20); rep++) {
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
            armed = AW_NEVER;
            aw_yield(); /* every sleeper runs to its sleep */
            armed = aw_now();
            r->arm[rep] = (bench_cpu() - c0) / (double)n;
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

/* The floor of a task per timer: the memory it must touch, and nothing
 * else (bench/spawn.c's touch_floor, with a wait in the middle). A task's
 * record lies at the top of its own stack (coloured within the top page)
 * and its frames below it: with 1,000,000 tasks those are 1,000,000
 * pages, so the caches and the TLB hold none of them between visits. On
 * plain memory, n slots a stack's stride apart, resident as cached stacks
 * are, in the order awith visits them: spawn (write the record's lines),
 * run to the sleep (read them, write a frame), then per millisecond of
 * deadlines, in deadline order and arm order within one (as the heap
 * fires them): fire (write the timer's and the run queue's lines), then
 * run and die (read the record and the frame, write the lines a death
 * writes). No heap, no scheduler: libuv's bare timer is the peer for
 * those. CPU time per timer, median of `reps` runs. */
enum { FLOOR_STRIDE = 128 * 1024, FLOOR_REC_LINES = 8, FLOOR_FRAME_LINES = 4 };

static volatile long floor_sink;

static volatile long *floor_rec(char *m, long i) {
    size_t colour = (size_t)(i & 7) * 128;
    return (long *)(m + (size_t)(i + 1) * FLOOR_STRIDE - 64 * (FLOOR_REC_LINES + 1) - colour);
}

static double timers_floor(long n, const uint32_t *d, int reps) {
    size_t len = (size_t)n * FLOOR_STRIDE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint32_t *order = malloc((size_t)n * sizeof *order);
    long start[TIMERS_SPAN_MS + 1] = {0};
    double v[BENCH_REPS];
    if (m == MAP_FAILED || !order) {
        free(order);
        if (m != MAP_FAILED)
            munmap(m, len);
        return BENCH_NA;
    }
    for (long i = 0; i < n; i++) /* resident, as cached stacks are */
        m[(size_t)(i + 1) * FLOOR_STRIDE - 1] = 1;
    /* the heap's order: by deadline, then by arm (spawn) order */
    for (long i = 0; i < n; i++)
        start[d[i] + 1]++;
    for (int k = 0; k < TIMERS_SPAN_MS; k++)
        start[k + 1] += start[k];
    long fill[TIMERS_SPAN_MS];
    memcpy(fill, start, sizeof fill);
    for (long i = 0; i < n; i++)
        order[fill[d[i]]++] = (uint32_t)i;
    if (reps > BENCH_REPS)
        reps = BENCH_REPS;
    for (int rep = 0; rep < reps; rep++) {
        double c0 = bench_cpu();
        long sum = 0;
        for (long i = 0; i < n; i++) { /* spawn */
            volatile long *rec = floor_rec(m, i);
            for (int k = 0; k < FLOOR_REC_LINES; k++)
                rec[k * 8] = i;
        }
        for (long i = 0; i < n; i++) { /* run to the sleep */
            volatile long *rec = floor_rec(m, i);
            for (int k = 0; k < FLOOR_REC_LINES; k++)
                sum += rec[k * 8];
            for (int k = 1; k <= FLOOR_FRAME_LINES; k++)
                rec[-k * 8] = sum;
        }
        for (int ms = 0; ms < TIMERS_SPAN_MS; ms++) {
            for (long j = start[ms]; j < start[ms + 1]; j++) { /* fire: wake, queue */
                volatile long *rec = floor_rec(m, order[j]);
                rec[8] = j;
                rec[0] = j;
            }
            for (long j = start[ms]; j < start[ms + 1]; j++) { /* run, die */
                volatile long *rec = floor_rec(m, order[j]);
                for (int k = 0; k < FLOOR_REC_LINES; k++)
                    sum += rec[k * 8];
                for (int k = 1; k <= FLOOR_FRAME_LINES; k++)
                    sum += rec[-k * 8];
                rec[6 * 8] = sum;
            }
        }
        floor_sink = sum;
        v[rep] = (bench_cpu() - c0) / (double)n;
    }
    munmap(m, len);
    free(order);
    return bench_median(v, reps);
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
    double warm = bench_median(r.cpu + 1, r.reps - 1); /* reps >= 2: bench() */
    double arm = bench_median(r.arm + 1, r.reps - 1);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/timers_uv' %ld %d 2>/dev/null",
             bench_env("AW_BENCH_PEERS", BENCH_PEER_DIR), n, r.reps);
    double uv[3];
    bench_popen_values(cmd, (const char *const[]){"timer_ns", "timer_cold_ns", "timer_arm_ns", NULL}, uv);
    bench_config("timers=%ld%s, deadlines over %d ms; awith: a task per timer (aw_sleep_until), "
                 "%zu KiB stacks; libuv: a bare uv_timer_t per deadline; both: %d runs in one "
                 "process, warm = median of runs 2..%d, cold = run 1; CPU time of the process",
                 n, n < want ? " (not 1,000,000: page faults cost too much here; AW_BENCH_FULL=1 for all)" : "",
                 TIMERS_SPAN_MS, opts.stack_size ? opts.stack_size / 1024 : (size_t)128, r.reps,
                 r.reps);
    double fl = timers_floor(n, offs, r.reps);
    const char *peers[] = {"libuv", "floor", NULL};
    bench_print("timer_ns", warm, peers, (double[]){uv[0], fl});
    bench_print("timer_cold_ns", cold, peers, (double[]){uv[1], BENCH_NA});
    bench_note("timers_floor", "floor=%.0f ns/timer (a task's lines on plain memory, no heap); "
               "awith beyond the floor %.0f ns, libuv (heap and callback) %.0f ns",
               fl, warm - fl, uv[0]);
    bench_note("timers_phases", "awith arm=%.0f fire=%.0f ns/timer, libuv arm=%.0f fire=%.0f "
               "(arm: spawn or uv_timer_start until every timer is armed; fire: the rest, "
               "each wake-up and what follows it; warm medians)",
               arm, warm - arm, uv[2], uv[0] - uv[2]);
    bench_note("timers_wall", "wall_ms_median=%.0f (deadlines span %d ms)",
               bench_median(r.wall, r.reps), TIMERS_SPAN_MS);
    bench_note("timers_order", "inversions=%ld timers=%ld late=%ld armed_at_once=%zu stack_kib=%zu "
               "runs=%d page_fault_us=%.2g", inversions, n, late, r.peak_timers,
               opts.stack_size ? opts.stack_size / 1024 : (size_t)128, r.reps, fault_ns / 1e3);
    free(offs);
    return 0;
}
