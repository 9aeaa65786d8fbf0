/* examples/timeout.c -- seed 002, section 9: a manager with a timeout.
 *
 *   @asynccontextmanager
 *   async def async_operation_with_timeout(timeout_seconds):
 *       try:
 *           async with asyncio.timeout(timeout_seconds):
 *               yield
 *       except asyncio.TimeoutError:
 *           print(f"Operation timed out after {timeout_seconds}s")
 *           raise
 *
 * In C the same is two stacked managers: a deadline scope
 * (aw_fail_after: the block fails with -ETIMEDOUT) inside a small manager
 * whose exit sees that error, reports it and lets it propagate. The seed
 * waits 2 s for a 5 s operation; here 0.2 s for 0.5 s.
 *
 * Then the quiet variant, aw_move_on_after: the block is abandoned at the
 * deadline and execution continues with no error (Trio's move_on_after). */
#include <awith.h>
#include <stdbool.h>
#include <stdio.h>

#include "examples.h"

#define TIMEOUT_MS 200 /* the seed: 2 s */
#define SLOW_MS 500    /* the seed: asyncio.sleep(5) */

static int slow_operation(void) {
    return aw_sleep_ms(SLOW_MS); /* -ECANCELED when the deadline fires */
}

/* The reporting half of async_operation_with_timeout. */
typedef struct { aw_ns_t timeout; } timeout_report;

static int report_enter(void *self, void **out) {
    *out = self;
    return 0;
}

static int report_exit(void *self, const aw_err_t *err) {
    timeout_report *r = self;
    if (err && err->code == -ETIMEDOUT) /* except asyncio.TimeoutError: */
        printf("Operation timed out after %gs\n", (double)r->timeout / 1e9);
    return 0; /* raise: the error propagates */
}

static const aw_cm_type_t report_type = {
    .name = "operation_with_timeout", .enter = report_enter, .exit = report_exit};
#define report_timeout(ns) aw_cm_temp(&report_type, (timeout_report){(ns)})

int example_timeout(void *arg) {
    /* async with async_operation_with_timeout(2): await slow_operation() */
    aw_with (report_timeout(AW_MS(TIMEOUT_MS)))
    aw_with (aw_fail_after(AW_MS(TIMEOUT_MS))) {
        if (slow_operation() < 0)
            aw_leave();
        puts("not reached: the operation is slower than the timeout");
    }
    if (aw_status() == -ETIMEDOUT) { /* except asyncio.TimeoutError: */
        puts("Caught timeout");
        aw_err_clear();
    }

    /* move on quietly instead of failing */
    bool expired = false;
    aw_with (aw_scope_t *scope, aw_move_on_after(AW_MS(TIMEOUT_MS))) {
        slow_operation();
        expired = aw_scope_expired(scope);
    }
    if (expired && aw_status() == 0)
        printf("Moved on after %gs, no error\n", TIMEOUT_MS / 1e3);
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_timeout, NULL) < 0; }
#endif
