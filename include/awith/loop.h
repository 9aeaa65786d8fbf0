/* awith/loop.h: the event loop. One loop per thread; it owns the run queue,
 * the timers (a binary heap: O(log n) arm and disarm), the epoll reactor,
 * the stack cache and a lazily started thread pool for blocking calls.
 *
 * Most programs only call aw_main(): it makes a loop, runs `fn` as the main
 * task, shuts the loop down and returns the main task's status. */
#ifndef AWITH_LOOP_H
#define AWITH_LOOP_H

#include <awith/base.h>

typedef struct aw_loop aw_loop_t;
typedef int (*aw_task_fn)(void *arg);

typedef struct aw_loop_opts {
    size_t stack_size;       /* per task; default 128 KiB (pages untouched cost nothing) */
    size_t guarded_stacks;   /* stacks with a guard page before canaries take over; default 8192 */
    aw_ns_t exit_grace;      /* default grace of a shielded exit; default 10 s */
    aw_ns_t shutdown_grace;  /* how long shutdown waits for cancelled tasks; default 30 s */
    int threads;             /* thread-pool size; default 4 */
} aw_loop_opts_t;

/* Run `fn(arg)` as the main task of a new loop on this thread. When it
 * returns, every remaining task is cancelled and awaited (within
 * shutdown_grace), the loop is closed, and the main task's status is
 * returned; if the main task failed, its error chain is printed to stderr.
 * Returns -EBUSY if tasks outlived the grace (they are listed on stderr),
 * -EINVAL if a loop already runs on this thread, -ENOMEM. */
AW_API int aw_main(aw_task_fn fn, void *arg);
AW_API int aw_main_opts(const aw_loop_opts_t *opts, aw_task_fn fn, void *arg);

/* The loop running on this thread, or NULL. */
AW_API aw_loop_t *aw_loop_current(void);

/* Loop statistics, for tests and benchmarks. */
typedef struct aw_loop_stats {
    size_t tasks;            /* live tasks */
    size_t stacks_live, stacks_cached;
    size_t timers;           /* armed timers */
    uint64_t switches;       /* context switches so far */
} aw_loop_stats_t;
AW_API void aw_loop_stats(aw_loop_stats_t *out);

#endif
