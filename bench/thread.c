/* thread.c: the round trip of a blocking call sent to the loop's thread
 * pool (aw_to_thread) and back, with a no-op call, so that only the
 * hand-offs are measured: this is the floor under SQLite queries, file
 * I/O and name resolution.
 *
 *   to_thread_ns      one task, one call after another: ns per call
 *   to_thread_par_ns  8 tasks calling at once: wall ns per call
 *
 * Peers: `await asyncio.to_thread(noop)`, the same two ways. */
#include "bench.h"

#define PAR 8

static long n;

static void noop(void *arg) { (void)arg; }

static int calls(void *arg) {
    long k = (long)(intptr_t)arg;
    for (long i = 0; i < k; i++) {
        int rc = aw_to_thread(noop, NULL, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

typedef struct {
    double seq[BENCH_REPS], par[BENCH_REPS];
} res_t;

static int bench(void *arg) {
    res_t *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        double t0 = bench_now();
        int rc = calls((void *)(intptr_t)n);
        if (rc < 0)
            return rc;
        r->seq[rep] = (bench_now() - t0) / (double)n;
        t0 = bench_now();
        aw_with (aw_group_t *g, aw_group())
            for (int i = 0; i < PAR; i++)
                aw_spawn(g, calls, (void *)(intptr_t)(n / PAR), NULL);
        if (aw_status() < 0)
            return aw_status();
        r->par[rep] = (bench_now() - t0) / (double)(n / PAR * PAR);
    }
    return 0;
}

int main(void) {
    n = bench_n(100000);
    res_t r;
    if (bench_main(NULL, bench, &r) < 0)
        return 1;
    char args[64];
    snprintf(args, sizeof args, "to_thread %ld asyncio", bench_n(5000));
    double asy = bench_python(args, "to_thread_ns");
    double asy_par = bench_python(args, "to_thread_par_ns");
    snprintf(args, sizeof args, "to_thread %ld uvloop", bench_n(5000));
    double uvl = bench_python(args, "to_thread_ns");
    double uvl_par = bench_python(args, "to_thread_par_ns");
    bench_config("wall time, median of 5; awith: aw_to_thread(noop) on the loop's pool (default "
                 "size), %ld calls; asyncio/uvloop: asyncio.to_thread(noop) on the default executor, "
                 "%ld calls; par: %d tasks at once; unpinned (a pool needs both CPUs)", n, bench_n(5000), PAR);
    const char *peers[] = {"asyncio", "uvloop", NULL};
    bench_print("to_thread_ns", bench_median(r.seq, BENCH_REPS), peers, (double[]){asy, uvl});
    bench_print("to_thread_par_ns", bench_median(r.par, BENCH_REPS), peers, (double[]){asy_par, uvl_par});
    return 0;
}
