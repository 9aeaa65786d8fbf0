/* awith/trace.h: trace hooks (the seeds' "timer and instrumentation code").
 *
 * One hook per loop sees every manager entered and exited (aw_with blocks,
 * exit-stack entries, scopes, groups, locks...), every cancellation point
 * reached, and every suspension and resumption of a task:
 *
 *   static void hook(const aw_trace_event_t *ev, void *arg) { ... }
 *   aw_trace_set(hook, &my_state);      // from a task of the loop
 *   ...
 *   aw_trace_set(NULL, NULL);           // off again
 *
 * Unset, a hook costs one predictable branch on a per-loop pointer at each
 * of those places: no call, no clock read. A hook runs on the stack of the
 * task the event is about, inside the runtime: it must not suspend (no
 * aw_sleep, no lock acquire); it may read the clock, count, print, and
 * cancel scopes (aw_scope_cancel, aw_scope_reschedule never suspend: that
 * is how the tests' cancel-every-point harness injects its cancels).
 * A hook installed or removed inside a manager's enter (or exit) sees that
 * block's events from its next phase on; install it outside any block to
 * see matching pairs. */
#ifndef AWITH_TRACE_H
#define AWITH_TRACE_H

#include <awith/task.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aw_trace_kind {
    AW_TRACE_ENTER,    /* a manager's enter is about to run */
    AW_TRACE_ENTERED,  /* enter returned: rc is 0 or its error (then no exit follows) */
    AW_TRACE_EXIT,     /* its exit is about to run: rc is the block's error code or 0 */
    AW_TRACE_EXITED,   /* exit done, released: rc is what leaves the block (0 or code) */
    AW_TRACE_POINT,    /* a cancellation point, before it looks for a cancel */
    AW_TRACE_SUSPEND,  /* the task is about to suspend */
    AW_TRACE_RESUME,   /* the task runs again */
} aw_trace_kind_t;

typedef struct aw_trace_event {
    aw_trace_kind_t kind;
    aw_task_t *task;          /* the task (a generator's coroutine is its own) */
    const void *block;        /* ENTER..EXITED: identifies the with block (its aw_with_t) */
    const char *manager;      /* ENTER..EXITED: the manager's name (aw_cm_name) */
    const char *file;         /* ENTER..EXITED: where the block is */
    int line;
    int rc;                   /* see the kinds */
    aw_ns_t now;              /* aw_now() at the event (read only while a hook is set) */
} aw_trace_event_t;

typedef void (*aw_trace_fn)(const aw_trace_event_t *ev, void *arg);

/* Install fn (NULL: none) as the current loop's hook. -EPERM outside a loop. */
AW_API int aw_trace_set(aw_trace_fn fn, void *arg);

/* The name of a kind ("enter", "entered", "exit", ...), for logs. */
AW_API const char *aw_trace_kind_name(aw_trace_kind_t k);

#ifdef __cplusplus
}
#endif

#endif
