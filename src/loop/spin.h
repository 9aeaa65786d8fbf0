/* spin.h: when a thread should spin for another (workers.c: the loop
 * waiting for a job's result, a worker waiting for the next job). Pure
 * bookkeeping, no clock: the caller times the spin.
 *
 * A spin pays for itself when the other side answers within it: a hand-off
 * then costs about 1 us on each of two CPUs, where sleeping and being woken
 * costs a futex or eventfd call on each side and a scheduler wake-up (on a
 * 2-core VM, 20-60 us of wall time and 15-30 us of CPU per operation:
 * bench-sqlite). It wastes the whole spin when the other side does not
 * answer in time: a long job, or a loaded machine that gave the other
 * thread's CPU to another process. A fixed 50 us spin at every chance then
 * cost 50 us of CPU per operation for nothing: 2-3x the CPU of not
 * spinning at all (issue 14). So a spin that times out doubles the number
 * of chances skipped before the next try (1, 3, 7, ... 255), and a spin
 * that succeeds clears it: a slow or absent peer costs one spin per 2^k
 * operations, a prompt one keeps both threads spinning.
 *
 * The limit itself stays AW__SPIN_MAX: shorter limits learned from recent
 * waits (tried: 4x the average + 2 us) do not survive one side falling
 * asleep once: the other side's next spin must cover a wake-up (~30 us
 * here), times out, backs off, and both end up sleeping for good. */
#ifndef AW_LOOP_SPIN_H
#define AW_LOOP_SPIN_H

#include <stdbool.h>
#include <stdint.h>

#define AW__SPIN_MAX 50000 /* ns */
#define AW__SPIN_BACKOFF 8 /* at most 2^8 - 1 chances skipped */

typedef struct aw__spin {
    unsigned fails;   /* spins timed out in a row (at most AW__SPIN_BACKOFF) */
    unsigned skip;    /* chances still to skip */
} aw__spin_t;

/* How long to spin at this chance, in ns (at most `max`); 0: do not spin. */
static inline int64_t aw__spin_plan(aw__spin_t *s, int64_t max) {
    if (s->skip) {
        s->skip--;
        return 0;
    }
    return AW__SPIN_MAX < max ? AW__SPIN_MAX : max;
}

/* The outcome of a spin aw__spin_plan allowed: the other side answered
 * (ok) or the spin timed out. */
static inline void aw__spin_done(aw__spin_t *s, bool ok) {
    if (ok) {
        s->fails = 0;
        return;
    }
    if (s->fails < AW__SPIN_BACKOFF)
        s->fails++;
    s->skip = (1u << s->fails) - 1;
}

#endif
