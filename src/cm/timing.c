/* timing.c: the timing manager (awith/timing.h). Enter reads the clock,
 * exit reads it again, updates the totals and calls the report hook. */
#include "../core/core.h"
#include <awith/timing.h>

static int aw__timing_enter(void *self, void **out) {
    aw_timed_t *b = self;
    b->start = aw_now();
    *out = b;
    return 0;
}

static int aw__timing_exit(void *self, const aw_err_t *err) {
    aw_timed_t *b = self;
    aw_ns_t d = aw_now() - b->start;
    aw_timing_t *t = b->timing;
    if (!t)
        return 0;
    if (!t->count || d < t->min)
        t->min = d;
    if (d > t->max)
        t->max = d;
    t->count++;
    t->total += d;
    if (err)
        t->failed++;
    if (t->report)
        t->report(t, d, err, t->arg);
    return 0; /* measuring never changes what leaves the block */
}

const aw_cm_type_t aw_timing_type = {"timing", aw__timing_enter, aw__timing_exit};

void aw_timing_log(const aw_timing_t *t, aw_ns_t elapsed, const aw_err_t *err, void *arg) {
    (void)arg;
    aw__log(aw_loop_current(), "timing: %s %.3f ms (%s)\n", t->name ? t->name : "?", (double)elapsed / 1e6,
            err ? aw_err_name(err->code) : "ok");
}
