/* awith/timing.h: a manager that measures its block (the seeds' timer).
 *
 *   static aw_timing_t q = AW_TIMING_INIT("query", NULL, NULL);
 *   aw_with (aw_timed(&q)) { ... }       // one measurement per block
 *   printf("%llu runs, max %lld ns\n", (unsigned long long)q.count, (long long)q.max);
 *
 * Each block is timed from its enter to its exit (managers stacked after
 * it on the following aw_with lines are inside the measurement), on every
 * way out: error, cancel, deadline -- the time still counts. At exit the
 * report hook, if set, gets the statistics, this block's duration and the
 * error the block left with (NULL on a clean way out); aw_timing_log is a
 * ready-made hook reporting one line (awith/log.h: stderr by default). Measuring never changes
 * what leaves the block. One aw_timing_t can be shared by any number of
 * blocks and tasks of its loop: the start time lives in the block (the
 * aw_timed() instance), the totals in the aw_timing_t.
 * Cost: two clock reads per block. */
#ifndef AWITH_TIMING_H
#define AWITH_TIMING_H

#include <awith/cm.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_timing aw_timing_t;
typedef void (*aw_timing_report_fn)(const aw_timing_t *t, aw_ns_t elapsed,
                                    const aw_err_t *err, void *arg);

struct aw_timing {
    const char *name;
    aw_timing_report_fn report;  /* NULL: none */
    void *arg;
    uint64_t count;              /* blocks measured */
    uint64_t failed;             /* of which left with an error */
    aw_ns_t total, min, max;     /* ns; min is 0 until the first block */
};

#define AW_TIMING_INIT(name, report, arg) {(name), (report), (arg), 0, 0, 0, 0, 0}

/* One timed block: its state (the start time) lives in the block. */
typedef struct aw_timed {
    aw_timing_t *timing;
    aw_ns_t start;
} aw_timed_t;

extern AW_API const aw_cm_type_t aw_timing_type;

/* The block's value is its aw_timed_t (start time). */
#define aw_timed(t) aw_cm_temp(&aw_timing_type, (aw_timed_t){(t), 0})

/* A ready-made report: one line, "timing: NAME 1.234 ms (ok)", to the
 * loop's log hook (awith/log.h; stderr by default). */
AW_API void aw_timing_log(const aw_timing_t *t, aw_ns_t elapsed, const aw_err_t *err, void *arg);

#ifdef __cplusplus
}
#endif

#endif
