/* spin.h: when the loop and the pool's workers should spin for each other
 * (workers.c: the loop waiting for a job's result, a worker waiting for
 * the next job). Pure bookkeeping, no clock: the caller times the spin.
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
 * The loop and the workers share one state: spinning pays only when both
 * sides do (a side that sleeps makes the other's spin cover its wake-up),
 * so both back off together and both try again together; with a state
 * each, their tries rarely met again once they had backed off, and the
 * pair stayed asleep on a quiet machine. The state is read and written
 * with relaxed atomics from both threads: a lost update only moves a try.
 * The limit itself stays AW__SPIN_MAX: shorter limits learned from recent
 * waits (tried: 4x the average + 2 us) do not cover a wake-up of the other
 * side after it slept once. */
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
    unsigned k = __atomic_load_n(&s->skip, __ATOMIC_RELAXED);
    if (k) {
        __atomic_store_n(&s->skip, k - 1, __ATOMIC_RELAXED);
        return 0;
    }
    return AW__SPIN_MAX < max ? AW__SPIN_MAX : max;
}

/* The outcome of a spin aw__spin_plan allowed: the other side answered
 * (ok) or the spin timed out. */
static inline void aw__spin_done(aw__spin_t *s, bool ok) {
    if (ok) {
        __atomic_store_n(&s->fails, 0, __ATOMIC_RELAXED);
        return;
    }
    unsigned f = __atomic_load_n(&s->fails, __ATOMIC_RELAXED);
    if (f < AW__SPIN_BACKOFF)
        f++;
    __atomic_store_n(&s->fails, f, __ATOMIC_RELAXED);
    __atomic_store_n(&s->skip, (1u << f) - 1, __ATOMIC_RELAXED);
}

#endif
