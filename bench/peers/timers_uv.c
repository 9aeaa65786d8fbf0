/* timers_uv.c: the libuv peer of bench/timers.c. One uv_timer_t per
 * deadline, the same 1,000,000 random deadlines (bench/deadlines.h),
 * started before uv_run; prints the CPU time per timer from the first
 * uv_timer_start to the last callback (one measurement; the caller repeats
 * and takes the median), and the out-of-order callbacks.
 *
 *   timers_uv N   ->   timer_ns=<cpu ns per timer> inversions=<count> */
#include "../deadlines.h"

#include <stdio.h>
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

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : TIMERS_N;
    offs = timers_deadlines(n);
    uv_timer_t *t = malloc((size_t)n * sizeof *t);
    if (!offs || !t)
        return 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    double c0 = cpu_ns();
    uv_update_time(&loop);
    for (long i = 0; i < n; i++) {
        uv_timer_init(&loop, &t[i]);
        t[i].data = (void *)(uintptr_t)i;
        uv_timer_start(&t[i], on_timer, offs[i], 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    double c1 = cpu_ns();
    printf("timer_ns=%.4f inversions=%ld fired=%ld\n", (c1 - c0) / (double)n, inversions, fired);
    for (long i = 0; i < n; i++)
        uv_close((uv_handle_t *)&t[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(t);
    free(offs);
    return 0;
}
