/* spawn.c: spawn + join of a task whose stack comes from the loop's cache,
 * amortised over 1,000,000 tasks.
 *
 *   spawn_join_ns   batches of 1000 no-op tasks spawned into a group; leaving
 *                   the group joins them; repeated to 1,000,000 tasks
 *   spawn_join1_ns  one task at a time: spawn with a handle, aw_task_join
 *   spawn_join_live_ns  100,000 tasks spawned into one group, all live at
 *                   once, then joined by leaving it: what a server with
 *                   many tasks pays (stacks beyond the cache, cache misses)
 *   spawn_join_live_cold_ns  the first of those runs (stacks made)
 *
 * The headline spawn_join_ns reuses a warm stack cache (batches of 1000
 * never need more than ~1000 stacks); read it with spawn_join_live_ns.
 *
 * Peers: boost::context::fiber create + run to completion + destroy on a
 * pooled stack (bench/peers/switch_boost.cpp spawn), asyncio and uvloop
 * create_task + gather in batches of 1000. */
#include "bench.h"

#define BATCH 1000

static long ntasks, nlive;
static volatile long sink;

static int noop(void *arg) {
    sink = (long)(intptr_t)arg;
    return 0;
}

typedef struct {
    double batch[BENCH_REPS], one[BENCH_REPS], live[BENCH_REPS], live_cold;
    size_t stacks_after;
} res_t;

static int bench(void *arg) {
    res_t *r = arg;
    /* warm the stack cache: one batch */
    aw_with (aw_group_t *g, aw_group())
        for (int i = 0; i < BATCH; i++)
            aw_spawn(g, noop, NULL, NULL);
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_now();
        for (long done = 0; done < ntasks; done += BATCH) {
            aw_with (aw_group_t *g, aw_group())
                for (int i = 0; i < BATCH; i++)
                    if (aw_spawn(g, noop, (void *)(intptr_t)i, NULL) < 0)
                        return aw_status();
            if (aw_status() < 0)
                return aw_status();
        }
        r->batch[rep] = (bench_now() - t0) / (double)((ntasks + BATCH - 1) / BATCH * BATCH);

        long n1 = ntasks / 5;
        t0 = bench_now();
        for (long i = 0; i < n1; i++) {
            aw_task_t *t;
            if (aw_spawn(NULL, noop, (void *)(intptr_t)i, &t) < 0 || aw_task_join(t) < 0)
                return aw_status();
        }
        r->one[rep] = (bench_now() - t0) / (double)n1;
    }
    aw_loop_stats_t s;
    aw_loop_stats(&s);
    r->stacks_after = s.stacks_live + s.stacks_cached;
    /* 100,000 live at once: the first run makes the stacks */
    for (int rep = 0; rep <= BENCH_REPS; rep++) {
        double t0 = bench_now();
        aw_with (aw_group_t *g, aw_group())
            for (long i = 0; i < nlive; i++)
                if (aw_spawn(g, noop, (void *)(intptr_t)i, NULL) < 0)
                    aw_leave();
        if (aw_status() < 0)
            return aw_status();
        double t = (bench_now() - t0) / (double)nlive;
        if (rep == 0)
            r->live_cold = t;
        else
            r->live[rep - 1] = t;
    }
    return 0;
}

/* The floor of a live task: the memory it must touch, and nothing else.
 * A task's record sits at the top of its own stack (coloured within the
 * top page, task.c) below the stack's descriptor, and its first run
 * writes a frame under it. With 1,000 tasks those lines stay in cache and
 * their pages in the TLB; with 100,000 they cannot (100,000 pages, 400
 * MiB), so every spawn and every first run misses. This peer does that
 * much on plain memory: n slots a stack's stride apart, already faulted
 * in (as the cached stacks are); a pass writing the record's lines at the
 * top of each slot (the spawn), then a pass in the same FIFO order
 * reading them and writing a frame below (the run). Whatever runs a task
 * on a stack page of its own pays what this pays as n grows; the rest of
 * awith's figure is its own work. */
enum { FLOOR_STRIDE = 128 * 1024, FLOOR_REC_LINES = 8, FLOOR_FRAME_LINES = 4 };

static double touch_floor(long n) {
    size_t len = (size_t)n * FLOOR_STRIDE;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return BENCH_NA;
    for (long i = 0; i < n; i++) /* resident, as cached stacks are */
        m[(size_t)(i + 1) * FLOOR_STRIDE - 1] = 1;
    double v[BENCH_REPS];
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_now();
        for (long i = 0; i < n; i++) {
            size_t colour = (size_t)(i & 7) * 128;
            volatile long *rec = (long *)(m + (size_t)(i + 1) * FLOOR_STRIDE - 64 * (FLOOR_REC_LINES + 1) - colour);
            for (int k = 0; k < FLOOR_REC_LINES; k++)
                rec[k * 8] = i;
        }
        long sum = 0;
        for (long i = 0; i < n; i++) {
            size_t colour = (size_t)(i & 7) * 128;
            volatile long *rec = (long *)(m + (size_t)(i + 1) * FLOOR_STRIDE - 64 * (FLOOR_REC_LINES + 1) - colour);
            for (int k = 0; k < FLOOR_REC_LINES; k++)
                sum += rec[k * 8];
            for (int k = 1; k <= FLOOR_FRAME_LINES; k++)
                rec[-k * 8] = sum;
        }
        sink = sum;
        v[rep] = (bench_now() - t0) / (double)n;
    }
    munmap(m, len);
    return bench_median(v, BENCH_REPS);
}

int main(void) {
    ntasks = bench_n(1000000);
    nlive = bench_n(100000);
    res_t r = {0};
    if (bench_main(NULL, bench, &r) < 0)
        return 1;
    char args[64];
    snprintf(args, sizeof args, "spawn %ld", ntasks);
    double boost = bench_peer("switch_boost", args, "spawn_ns");
    long pyn = bench_n(100000);
    snprintf(args, sizeof args, "spawn %ld asyncio", pyn);
    double asy = bench_python(args, "spawn_ns");
    snprintf(args, sizeof args, "spawn %ld uvloop", pyn);
    double uvl = bench_python(args, "spawn_ns");
    snprintf(args, sizeof args, "spawn_live %ld asyncio", nlive);
    double asy_live = bench_python(args, "spawn_live_ns");
    snprintf(args, sizeof args, "spawn_live %ld uvloop", nlive);
    double uvl_live = bench_python(args, "spawn_live_ns");
    bench_config("wall time, median of 5; spawn_join: batches of %d, %ld tasks, awith's stack "
                 "cache warm (one batch first), asyncio/uvloop %ld tasks in batches of %d, boost: "
                 "fiber create+run+destroy on a pooled stack; live: %ld tasks in one group/gather, "
                 "awith median of 5 after a first (cold) run, asyncio/uvloop median of 5",
                 BATCH, ntasks, pyn, BATCH, nlive);
    const char *peers[] = {"boost", "asyncio", "uvloop", NULL};
    double pv[] = {boost, asy, uvl};
    bench_print("spawn_join_ns", bench_median(r.batch, BENCH_REPS), peers, pv);
    const char *p1[] = {"boost", NULL};
    bench_print("spawn_join1_ns", bench_median(r.one, BENCH_REPS), p1, pv);
    const char *pl[] = {"asyncio", "uvloop", NULL};
    bench_print("spawn_join_live_ns", bench_median(r.live, BENCH_REPS), pl, (double[]){asy_live, uvl_live});
    bench_print("spawn_join_live_cold_ns", r.live_cold, pl, (double[]){asy_live, uvl_live});
    /* the term that grows with live tasks, against the memory floor's */
    double fb = touch_floor(BATCH), fl = touch_floor(nlive);
    double awb = bench_median(r.batch, BENCH_REPS), awl = bench_median(r.live, BENCH_REPS);
    bench_note("spawn_live_floor",
               "touch_floor_%d=%.1f touch_floor_%ld=%.1f ns/task; growth from %d to %ld live: "
               "awith %.1f ns (live/batch %.2f), floor %.1f ns (awith live/(batch+floor growth) %.2f)",
               BATCH, fb, nlive, fl, BATCH, nlive, awl - awb, awl / awb, fl - fb, awl / (awb + fl - fb));
    bench_note("spawn_stacks", "stacks_made=%zu (for %ld tasks, batches of %d)", r.stacks_after,
               ntasks, BATCH);
    return 0;
}
