/* deadlines.h: the random deadlines of bench/timers.c, shared with its
 * libuv peer (bench/peers/timers_uv.c) so both wait for exactly the same
 * 1,000,000 deadlines: offsets in whole milliseconds (libuv's timer unit)
 * from the start of a measurement, uniform in [0, TIMERS_SPAN_MS), from a
 * fixed-seed xorshift generator. */
#ifndef AW_BENCH_DEADLINES_H
#define AW_BENCH_DEADLINES_H

#include <stdint.h>
#include <stdlib.h>

#define TIMERS_N 1000000
#define TIMERS_SPAN_MS 500

/* Offsets (ms) of n timers; malloc'd, NULL on OOM. */
static inline uint32_t *timers_deadlines(long n) {
    uint32_t *d = malloc((size_t)n * sizeof *d);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (long i = 0; d && i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d[i] = (uint32_t)(x % TIMERS_SPAN_MS);
    }
    return d;
}

#endif
