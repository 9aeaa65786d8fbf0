/* awith/loops.h: a loop per core. N threads, each running its own loop
 * (aw_main_opts) with fn(arg, index) as its main task, and messages
 * between them: a task on one loop runs a function on another loop and
 * awaits its answer.
 *
 *   static int serve(void *arg, int index) {        // on every loop
 *       aw_reuseport_t *rp = arg;                   // awith/reuseport.h
 *       aw_with (aw_server_t *srv, aw_reuseport_server(rp, handle, NULL))
 *           aw_sleep_until(AW_NEVER);                     // until aw_loops_stop
 *       return aw_status();
 *   }
 *   ...
 *   aw_loops_run(4, serve, &rp, NULL);
 *
 * Shared nothing: a loop, its tasks, streams, locks, events and managers
 * belong to the loop's thread. Nothing of one loop may be touched by
 * another, except through a message (aw_loops_call): the function runs on
 * the target loop, as a task of its own; what `arg` points to is handed
 * over for the time of the call. docs/loops.md has the rule and what is
 * shared (and contends) at 64 cores.
 *
 * The set behaves like a task group of loops: the first loop whose main
 * task fails (or whose aw_main_opts fails) stops the others, and
 * aw_loops_join returns that failure. A loop whose function returns 0
 * just closes; the others go on. A loop of a set never reports a
 * deadlock: another loop may always send it a message. */
#ifndef AWITH_LOOPS_H
#define AWITH_LOOPS_H

#include <awith/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_loops aw_loops_t;

/* A loop's main function: `index` is the loop's number, 0..n-1. */
typedef int (*aw_loops_fn)(void *arg, int index);

typedef struct aw_loops_opts {
    aw_loop_opts_t loop;         /* every loop's options (aw_main_opts); with
                                  * cancel_on_signals, SIGINT/SIGTERM cancel
                                  * loop 0's main task, which stops the set:
                                  * aw_loops_join returns -ECANCELED (loop 0
                                  * holds the signals until it closes) */
    bool pin;                    /* pin loop i's thread to CPU i % CPUs */
} aw_loops_opts_t;

/* Start n loops on n new threads, loop i running fn(arg, i) as its main
 * task, and return at once with the set in *out (join it). `arg` is
 * shared by every loop: it must outlive the set and, if it is written,
 * protect itself (the rule: pass each loop what it owns, or read-only
 * data). opts NULL: defaults. Never suspends; may be called from any
 * thread, a loop's included. Returns 0, -EINVAL (n < 1 or fn NULL),
 * -ENOMEM, -EMFILE (no fd for a loop's doorbell), -EAGAIN (a thread
 * could not start: the ones started are stopped and joined first). */
AW_API int aw_loops_start(aw_loops_t **out, int n, aw_loops_fn fn, void *arg,
                          const aw_loops_opts_t *opts);

/* Wait for every loop of the set to close, then free the set. Blocks the
 * calling thread (from a task: call it through aw_to_thread). Returns 0
 * if every loop's aw_main_opts returned 0, else the status of the first
 * loop that failed (its error chain was printed by aw_main). Call it once. */
AW_API int aw_loops_join(aw_loops_t *ls);

/* aw_loops_start, then aw_loops_join. */
AW_API int aw_loops_run(int n, aw_loops_fn fn, void *arg, const aw_loops_opts_t *opts);

/* Ask every loop to stop: each loop's main task is cancelled (a cancel
 * scope around fn: fn sees -ECANCELED at its suspension points; a stopped
 * loop whose fn ends with that cancel counts as a success). Any thread,
 * a signal-handling thread too (not a signal handler: it takes a mutex);
 * idempotent; never suspends; valid until aw_loops_join returns. */
AW_API void aw_loops_stop(aw_loops_t *ls);

/* The set the calling thread's loop belongs to, or NULL. */
AW_API aw_loops_t *aw_loops_current(void);
/* The calling thread's loop number in its set, or -1. */
AW_API int aw_loops_index(void);
/* The number of loops in the calling thread's set, or 0. */
AW_API int aw_loops_count(void);

/* Run fn(arg) on loop `to` of the calling loop's set (to may be the
 * calling loop itself) as a task of that loop's root group, and wait for
 * it. Returns what fn returned; if fn failed, its error is raised here
 * whole, as if fn had run in the caller: its context chain, group
 * members, origin and SQLSTATE (err.h), the top message prefixed
 * "loop 1: " (copies: the records stay on neither loop; out of memory,
 * the message alone). fn runs
 * on the other thread: it may use only what arg hands it, and must not
 * touch the caller's loop (shared nothing).
 *
 * A cancellation point. On a cancel (or deadline) the cancel is passed
 * on: fn's task is cancelled (if it has not started, it never runs), and
 *  - abandon NULL: the caller waits, not cancellably, for fn's task to
 *    end (arg stays borrowed, so it may live on the caller's stack; if
 *    the caller's loop closes first, past its shutdown_grace, the close
 *    blocks its thread until fn is done, as it does for aw_to_thread), then
 *    returns -ECANCELED, or fn's status if fn had already succeeded (the
 *    cancel is then seen at the caller's next cancellation point);
 *  - abandon given: the caller returns -ECANCELED at once, and `arg`
 *    passes to the message: when fn is done (or was skipped, or refused by
 *    a closing loop) abandon(arg) runs, on the caller's loop if it still
 *    runs, else on the thread of the loop that answered. So with abandon,
 *    -ECANCELED always means abandon(arg) will run (once).
 *
 * Errors: -ESHUTDOWN (loop `to` has closed or is closing: its main task
 * returned; fn did not run, or was cancelled by that loop's shutdown;
 * arg stays the caller's unless the caller was cancelled with abandon;
 * when aw_loops_stop closed it, a caller inside fn's stop scope gets
 * the stop's -ECANCELED instead, so a stop stays a clean stop),
 * -EPERM (the caller is not a task of a loop of a set), -EINVAL (to out
 * of range, fn NULL), -ENOMEM, -ECANCELED, or fn's own error.
 *
 * Cost: one malloc, two mutex holds, and at most two eventfd writes (one
 * per loop woken; none when the target is already awake with messages
 * queued); fn runs as a task of its own (no malloc: a cached stack). No
 * limit on messages in flight but the tasks that wait for them. */
AW_API int aw_loops_call(int to, aw_task_fn fn, void *arg, void (*abandon)(void *arg));

#ifdef __cplusplus
}
#endif

#endif
