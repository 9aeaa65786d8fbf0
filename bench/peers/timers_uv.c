/* timers_uv.c: the libuv peer of bench/timers.c. One uv_timer_t per
 * deadline, the same 1,000,000 random deadlines (bench/deadlines.h),
 * started before uv_run; measures the CPU time per timer from the first
 * uv_timer_start to the last callback, REPS times in one process on the
 * same loop and timer array, as awith's side runs its repetitions in one
 * loop: the first run is cold (the array's pages first touched), the
 * others warm. Prints the first (cold), the median of the others (warm)
 * and the out-of-order callbacks over all runs.
 *
 *   timers_uv N [REPS]  ->  timer_ns=<warm> timer_cold_ns=<first>
 *                           timer_arm_ns=<warm, of timer_ns: the starts> inversions=<count> */
#include "../deadlines.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

static uint32_t *offs;
static uint64_t last;
static long inversions, fired;

static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void on_timer(uv_timer_t *t) {
    uint64_t d = offs[(uintptr_t)t->data];
    if (d < last)
        inversions++;
    last = d;
    fired++;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of the warm runs v[1..reps-1] (sorts them), or v[0]. */
static double median_warm(double *v, int reps) {
    if (reps < 2)
        return v[0];
    qsort(v + 1, (size_t)reps - 1, sizeof *v, cmp);
    int m = reps - 1;
    return m % 2 ? v[1 + m / 2] : (v[m / 2] + v[1 + m / 2]) / 2;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : TIMERS_N;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 64)
        reps = 5;
    offs = timers_deadlines(n);
    uv_timer_t *t = malloc((size_t)n * sizeof *t);
    if (!offs || !t)
        return 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    double v[64], a[64];
    for (int r = 0; r < reps; r++) {
        last = 0;
        double c0 = cpu_ns();
        uv_update_time(&loop);
        for (long i = 0; i < n; i++) {
            uv_timer_init(&loop, &t[i]);
            t[i].data = (void *)(uintptr_t)i;
            uv_timer_start(&t[i], on_timer, offs[i], 0);
        }
        a[r] = (cpu_ns() - c0) / (double)n;
        uv_run(&loop, UV_RUN_DEFAULT);
        v[r] = (cpu_ns() - c0) / (double)n;
        for (long i = 0; i < n; i++)
            uv_close((uv_handle_t *)&t[i], NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    double cold = v[0];
    double warm = median_warm(v, reps), warm_arm = median_warm(a, reps);
    printf("timer_ns=%.4f timer_cold_ns=%.4f timer_arm_ns=%.4f inversions=%ld fired=%ld\n", warm, cold,
           warm_arm, inversions, fired);
    uv_loop_close(&loop);
    free(t);
    free(offs);
    return 0;
}
