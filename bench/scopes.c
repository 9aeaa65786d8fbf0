/* scopes.c: what the depth of the scope chain costs a suspension point.
 *
 * Two tasks yield to each other, each inside `depth` nested scopes, as a
 * program that nests managers does (every deadline, shield, group and
 * generator manager adds a scope):
 *
 *   yield_1scope_ns      inside 1 cancel scope, per yield
 *   yield_64scopes_ns    inside 64, peer: the 1-scope figure of the same run
 *   yield_1deadline_ns   inside 1 scope with a (far) deadline
 *   yield_64deadlines_ns inside 64 such scopes, peer: the 1-deadline figure
 *
 * A suspension point reads what the chain shows from the innermost scope
 * in O(1) (src/core/scope.c), so ratio_1scope should be near 1 (issue 14:
 * at least 1/1.2). The depths are measured in turn within each
 * repetition, so that the machine's load drifts over all alike. */
#include "bench.h"

static long rounds;
static int depth, deadlines;

static int yield_loop(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++)
        if (aw_yield() < 0)
            return aw_status();
    return 0;
}

static int yielder(void *arg) { return bench_in_scopes(depth, deadlines, yield_loop, arg); }

static double run(int d, int dl) {
    depth = d;
    deadlines = dl;
    double t0 = bench_now();
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, yielder, NULL, NULL);
        aw_spawn(g, yielder, NULL, NULL);
    }
    return (bench_now() - t0) / (2.0 * (double)rounds);
}

typedef struct {
    double v[4][BENCH_REPS];
} res_t;

static int bench(void *arg) {
    res_t *r = arg;
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        r->v[0][rep] = run(1, 0);
        r->v[1][rep] = run(64, 0);
        r->v[2][rep] = run(1, 1);
        r->v[3][rep] = run(64, 1);
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

int main(void) {
    rounds = bench_n(500000);
    res_t r;
    if (bench_main(NULL, bench, &r) < 0)
        return 1;
    double one = bench_median(r.v[0], BENCH_REPS), onedl = bench_median(r.v[2], BENCH_REPS);
    bench_print("yield_1scope_ns", one, NULL, NULL);
    const char *p1[] = {"1scope", NULL};
    bench_print("yield_64scopes_ns", bench_median(r.v[1], BENCH_REPS), p1, &one);
    bench_print("yield_1deadline_ns", onedl, NULL, NULL);
    const char *p2[] = {"1deadline", NULL};
    bench_print("yield_64deadlines_ns", bench_median(r.v[3], BENCH_REPS), p2, &onedl);
    return 0;
}
