/* stack.c: what a coroutine costs cold, against the floor: the one page
 * its stack needs (issue 14). A cold coroutine is the first spawn of each
 * in a fresh loop (its stack is made, its top page first touched); the
 * floor is what this machine charges for that page alone, measured in the
 * same run, interleaved with the coroutines (a VM's page cost drifts).
 * Both are CPU time of the process, not wall time: on a shared machine
 * the wall clock also counts the time other processes held the CPU.
 *
 *   cold_ns        spawn + run to a park (aw_sleep of an hour) of N tasks
 *                  in a fresh loop (stacks made: slabs, guard pages, top
 *                  pages), per task; median of 5, each in a fresh aw_main
 *   warm_ns        the same again in that loop (stacks cached)
 *   page           the floor: the cheaper of a first-touch fault and a
 *                  MADV_POPULATE_WRITE, per page, pages 132 KiB apart in
 *                  a fresh NORESERVE mapping, as stacks are laid out;
 *                  ratio_page = page / cold (goal: >= 0.67, cold within
 *                  1.5x the page)
 *   stack_floor    the two floors apart, the mappings the stacks made and
 *                  the page faults per cold task (populated pages count)
 *
 * N = 50,000: the first 8192 stacks are guarded (the loop's default
 * budget), the rest packed. No peer library: the peer is the kernel. */
#include "bench.h"

#include <sys/resource.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static long n;

static int parked(void *arg) {
    (void)arg;
    aw_sleep(AW_SEC(3600));
    return 0;
}

static double spawn_park(void) {
    double t0 = bench_cpu(), t = -1;
    aw_with (aw_group_t *g, aw_group()) {
        for (long i = 0; i < n; i++)
            if (aw_spawn(g, parked, NULL, NULL) < 0)
                aw_leave();
        if (aw_status() < 0)
            aw_leave();
        aw_yield(); /* every task runs to its sleep */
        t = (bench_cpu() - t0) / (double)n;
        aw_group_cancel(g);
    }
    return t;
}

typedef struct {
    double cold, warm, faults;
    long maps;
} res_t;

static long minflt(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static long count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    long k = 0;
    int c;
    while (f && (c = fgetc(f)) != EOF)
        k += c == '\n';
    if (f)
        fclose(f);
    return k;
}

static int measure(void *arg) {
    res_t *r = arg;
    long before = count_maps(), f0 = minflt();
    r->cold = spawn_park();
    r->faults = (double)(minflt() - f0) / (double)n;
    r->maps = count_maps() - before;
    r->warm = spawn_park();
    return aw_status();
}

/* Per page, pages 132 KiB apart in a fresh mapping: a first touch
 * (populate 0) or a MADV_POPULATE_WRITE a page (populate 1). */
static double page_ns(long k, int populate) {
    const size_t stride = 132 * 1024;
    char *m = mmap(NULL, (size_t)k * stride, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return BENCH_NA;
    double t0 = bench_cpu();
    for (long i = 0; i < k; i++) {
        char *p = m + (size_t)(i + 1) * stride - 4096;
        if (!populate)
            *(volatile char *)p = 1;
        else if (madvise(p, 4096, MADV_POPULATE_WRITE) < 0) {
            munmap(m, (size_t)k * stride);
            return BENCH_NA;
        }
    }
    double t = (bench_cpu() - t0) / (double)k;
    munmap(m, (size_t)k * stride);
    return t;
}

int main(void) {
    n = bench_n(50000);
    double cold[BENCH_REPS], warm[BENCH_REPS], page[BENCH_REPS], fault[BENCH_REPS],
        pop[BENCH_REPS], flt[BENCH_REPS];
    long maps = 0;
    int reps = 0;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        fault[rep] = page_ns(4096, 0);
        pop[rep] = page_ns(4096, 1);
        res_t r = {0};
        if (bench_main(NULL, measure, &r) < 0 || r.cold < 0)
            return 1;
        cold[rep] = r.cold;
        warm[rep] = r.warm;
        maps = r.maps;
        flt[rep] = r.faults;
        page[rep] = pop[rep] > 0 && pop[rep] < fault[rep] ? pop[rep] : fault[rep];
        reps++;
    }
    bench_config("tasks=%ld spawned and parked (aw_sleep) in a fresh loop, loop defaults (128 KiB "
                 "stacks, 8192 guarded); CPU time; page: the cheaper of a first-touch fault and a "
                 "MADV_POPULATE_WRITE per page, 132 KiB apart; medians of %d, interleaved",
                 n, reps);
    const char *peers[] = {"page", NULL};
    double pm = bench_median(page, reps), cm = bench_median(cold, reps);
    bench_print("stack_cold_ns", cm, peers, (double[]){pm});
    bench_print("stack_warm_ns", bench_median(warm, reps), NULL, NULL);
    bench_note("stack_floor", "fault_ns=%.4g populate_ns=%.4g cold_over_page=%.3g maps=%ld "
               "faults_per_task=%.3g (for %ld stacks)", bench_median(fault, reps),
               bench_median(pop, reps), cm / pm, maps, bench_median(flt, reps), n);
    return 0;
}
