/* awith/loop.h: the event loop. One loop per thread; it owns the run queue,
 * the timers (a 4-ary heap: O(log n) arm, O(1) amortised disarm), the epoll reactor,
 * the stack cache and a lazily started thread pool for blocking calls.
 *
 * Most programs only call aw_main(): it makes a loop, runs `fn` as the main
 * task, shuts the loop down and returns the main task's status. */
#ifndef AWITH_LOOP_H
#define AWITH_LOOP_H

#include <awith/base.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_loop aw_loop_t;
typedef int (*aw_task_fn)(void *arg);

/* Where the library's reports go (awith/log.h): `msg` is one whole report,
 * NUL-terminated, ending in a newline, possibly several lines. Called on
 * the reporting thread; it must not suspend. */
typedef void (*aw_log_fn)(const char *msg, void *arg);

typedef struct aw_loop_opts {
    size_t stack_size;       /* per task; default 128 KiB (pages untouched cost nothing) */
    size_t guarded_stacks;   /* stacks with a guard page before canaries take over; default 8192 */
    aw_ns_t exit_grace;      /* default grace of a shielded exit; default 10 s */
    aw_ns_t shutdown_grace;  /* how long shutdown waits for cancelled tasks; default 30 s */
    int threads;             /* thread-pool size; default 4 */
    size_t post_limit;       /* posts from other threads queued at once; default 16384 */
    bool no_segv_handler;    /* true: leave SIGSEGV alone (see aw_main) */
    aw_log_fn log;           /* this loop's reports go here; default: aw_log_set's, or stderr */
    void *log_arg;
    bool cancel_on_signals;  /* SIGINT/SIGTERM cancel the main task (awith/signal.h) */
} aw_loop_opts_t;

/* Run `fn(arg)` as the main task of a new loop on this thread. When it
 * returns, every remaining task is cancelled and awaited (within
 * shutdown_grace), the loop is closed, and the main task's status is
 * returned; if the main task failed, its error chain is reported (to the
 * log hook, awith/log.h; stderr by default).
 * Returns -EBUSY if tasks outlived the grace (they are listed in the report),
 * -AW_EGROUP if the main task succeeded but a task of the loop's root
 * group (spawned with g == NULL, not joined) failed (each failure is
 * reported), -EINVAL if a loop already runs on this thread, -ENOMEM.
 *
 * SIGSEGV: while any aw_main runs, a process-wide handler (on an
 * alternate stack of this thread) turns a fault on a task's guard page
 * into a report naming the task, then abort(). Any other fault goes to
 * the handler that was installed before (called as the kernel would,
 * with or without SA_SIGINFO) or, if there was none, kills the process
 * as usual. When the last aw_main returns, the previous handler is put
 * back (unless the program replaced ours meanwhile). Install your own
 * SIGSEGV handler after aw_main starts and ours is bypassed; set
 * opts.no_segv_handler to keep awith out of SIGSEGV altogether (an
 * overflow is then a plain SIGSEGV). */
AW_API int aw_main(aw_task_fn fn, void *arg);
AW_API int aw_main_opts(const aw_loop_opts_t *opts, aw_task_fn fn, void *arg);

/* The loop running on this thread, or NULL. */
AW_API aw_loop_t *aw_loop_current(void);

/* ---- embedding: a loop inside another program's event loop ----
 *
 * For a program that already has a loop (libuv, GLib, Qt, its own epoll),
 * in the style of libcurl's multi interface and libpq: awith's loop is
 * one file descriptor to watch and one timeout to honour, and the host
 * calls a step that never blocks.
 *
 *   aw_loop_t *l;
 *   aw_loop_new(NULL, &l);               // this thread's loop, owned by you
 *   aw_loop_start(l, main_fn, arg);      // its main task
 *   while (aw_loop_run_once(l) == 1) {   // 0: the main task is done
 *       // host: wait until aw_loop_backend_fd(l) is readable or
 *       // aw_loop_next_timeout(l) ns have passed, doing its own work
 *   }
 *   int status = aw_loop_close(l);       // what aw_main would return
 *
 * The loop belongs to the thread that made it, as aw_main's does: every
 * call below on another thread returns -EPERM, and aw_loop_current()
 * returns it on that thread until aw_loop_close (so code outside tasks
 * can aw_spawn(NULL, ...) into its root group or aw_loop_ref it). One
 * loop per thread: aw_loop_new refuses inside aw_main and vice versa.
 *
 * Close follows aw_main's rules (SEMANTICS L1): when the main task is done
 * (or at aw_loop_close, or aw_loop_cancel), every other task is
 * cancelled and awaited within shutdown_grace, and what is still alive,
 * the main task's failure and every root-group failure are reported
 * (awith/log.h) and returned. aw_loop_close drains by running the loop
 * itself, blocking the thread (for at most shutdown_grace); a host that
 * must stay responsive calls aw_loop_cancel first and keeps stepping
 * until aw_loop_run_once returns 0, then closes at no wait. */

/* Make a loop owned by the caller, on this thread. Returns 0 and *out,
 * -EINVAL (a loop already runs on this thread), -ENOMEM, or the error of
 * epoll_create1/eventfd (reported, naming the call). Never suspends. The
 * loop installs the SIGSEGV overflow guard as aw_main does (opts). */
AW_API int aw_loop_new(const aw_loop_opts_t *opts, aw_loop_t **out);

/* Spawn the loop's main task, fn(arg); it first runs at the next
 * aw_loop_run_once. Returns 0, -EBUSY (a main task was started already),
 * -EPERM (not this thread's loop, or called from one of its tasks),
 * -ENOMEM. Never suspends. */
AW_API int aw_loop_start(aw_loop_t *l, aw_task_fn fn, void *arg);

/* The fd to watch for readability: the loop's epoll fd. It becomes
 * readable when a task's fd is ready, a pool job finished or another
 * thread posted. Watch it level-triggered (poll, uv_poll, GLib's
 * g_unix_fd_add, an epoll of your own without EPOLLET); never read or
 * close it. Never suspends; valid until aw_loop_close; -EINVAL for NULL. */
AW_API int aw_loop_backend_fd(const aw_loop_t *l);

/* How long the host may wait before the next aw_loop_run_once, in ns:
 * 0 (call it now: tasks are ready), the time to the next timer, or -1
 * (no timer: wait for the backend fd only). A host whose timers count in
 * ms rounds up ((ns + 999999) / 1000000): rounding down wakes it before
 * the timer is due, to do nothing. Never suspends. Valid until the next
 * call into the loop (a step, a spawn, a post may change it). */
AW_API aw_ns_t aw_loop_next_timeout(aw_loop_t *l);

/* One step, never blocking: run the ready tasks, look at the backend
 * (zero timeout), fire due timers, run what they woke. Returns 1 (call
 * again when the fd is readable or the timeout passed), 0 (done: the main
 * task finished, or after aw_loop_cancel every task has; aw_loop_close
 * now), -EDEADLK (every task waits for something nothing can bring: the
 * close reports them), -EPERM (another thread's loop, or called from a
 * task of this loop: a task must not run its own loop), -ECHILD (the
 * process forked and this child did not call aw_loop_fork). */
AW_API int aw_loop_run_once(aw_loop_t *l);

/* Begin the shutdown without blocking: cancel the root group (the main
 * task and every task spawned with g == NULL). Then aw_loop_run_once
 * returns 0 once every task is done. Idempotent; never suspends; a no-op
 * on another thread's loop. */
AW_API void aw_loop_cancel(aw_loop_t *l);

/* Close the loop: cancel what is left, run it until every task is done or
 * shutdown_grace passed (blocking this thread), report, free. Returns
 * what aw_main returns: the main task's status (0 if none was started),
 * -EBUSY (tasks outlived the grace), -AW_EGROUP (a root-group task
 * failed), -ECHILD (a forked child's loop not reset); -EPERM (another
 * thread's loop or from a task: nothing is done). l is gone after. */
AW_API int aw_loop_close(aw_loop_t *l);

/* ---- fork ----
 *
 * After fork() only the forking thread exists in the child, and its loop
 * still shares the parent's epoll instance and eventfd (polling them
 * would steal the parent's events) and counts on pool threads that are
 * not there. Until the child calls aw_loop_fork(), its loop refuses
 * fast instead of hanging: aw_to_thread returns -ECHILD saying so, the
 * loop stops at its next poll (aw_main: the report says why, returns
 * -ECHILD; aw_loop_run_once: -ECHILD). A child that only exec()s or
 * _exit()s needs nothing. */

/* Make this thread's loop the child's own, as libuv's uv_loop_fork: a
 * new epoll instance and eventfd, every fd the loop watches registered
 * again (an fd closed meanwhile wakes its waiters with -EBADF), a fresh
 * thread pool started lazily. The parent's pool and post block are left
 * behind untouched (a parent thread may have held their mutexes at the
 * fork; a few hundred bytes): pool jobs queued and not started run on the
 * child's pool; finished ones are delivered; one running on a parent
 * worker at the fork completes here with -ECHILD (its caller's
 * aw_to_thread says so; the work may have run partly, in the parent
 * only). Posts queued by the parent's threads are not run here (the
 * parent runs them), and references they held are forgotten: a post to
 * such a reference in the child is not run. Tasks, timers and fds carry
 * on. Call it in the child before anything else of awith, from a task or
 * from the host of an embedded loop; harmless where no fork happened.
 * Returns 0, -EPERM (no loop on this thread), or the error of
 * epoll_create1/eventfd (the loop then stays unusable). Never suspends. */
AW_API int aw_loop_fork(void);

/* ---- handing work to the loop from other threads ----
 *
 * A thread that is not the loop's (a library's callback thread, a worker
 * of your own) runs code on the loop through a reference:
 *
 *   aw_loop_ref_t *r;
 *   aw_loop_ref(&r);                  // on the loop's thread (in a task)
 *   ... hand r to the other thread, which calls ...
 *   aw_loop_post(r, fn, arg);         // any thread: fn(arg) runs on the loop
 *   aw_loop_unref(r);                 // any thread, once, when done posting
 *
 * fn(arg) runs on the loop's thread at its next round, in FIFO order per
 * posting thread, outside any task: it must not suspend; it may wake tasks
 * (aw_event_set), spawn tasks into the root group, or post again. A loop
 * asleep in epoll is woken at once (eventfd; one write per batch).
 *
 * While a reference is held the loop expects posts: tasks that wait for
 * something only a post can bring are not reported as a deadlock (the loop
 * sleeps until a post or the last unref arrives). A reference does not
 * keep the loop open: aw_main() still closes it when its tasks are done.
 *
 * The queue is bounded (aw_loop_opts_t.post_limit, default 16384 posts
 * waiting to run): when the loop falls behind, the poster chooses between
 * aw_loop_post(), which refuses with -EAGAIN (nothing queued, arg is
 * still yours: retry, drop or coalesce), and aw_loop_post_wait(), which
 * blocks the posting thread until there is room. A flood thus costs the
 * loop at most post_limit queued calls, however many threads post.
 *
 * Every post that returned 0 runs exactly once: normally at the loop's
 * next round; if the loop closes first, while it closes, after its tasks
 * are gone (then aw_loop_current() is NULL in fn). At most post_limit
 * posts are queued then, so closing costs at most that many calls,
 * whatever the flood. After the close, aw_loop_post() and
 * aw_loop_post_wait() (also one asleep waiting for room) return
 * -ESHUTDOWN: nothing accepted is dropped, nothing refused is run. The
 * reference itself stays valid until unref'd, so a late post is safe. */
typedef struct aw_loop_ref aw_loop_ref_t;

/* A reference to the loop running on this thread, for other threads.
 * Returns 0, -EPERM (no loop on this thread), -ENOMEM. Never suspends. */
AW_API int aw_loop_ref(aw_loop_ref_t **out);

/* Queue fn(arg) to run on the loop's thread. Thread-safe; never blocks
 * beyond a short mutex hold. Returns 0, -EAGAIN (post_limit posts are
 * waiting: fn will not run, arg is still yours), -ESHUTDOWN (the loop
 * closed: likewise), -ENOMEM, -EINVAL (NULL r or fn). */
AW_API int aw_loop_post(aw_loop_ref_t *r, void (*fn)(void *arg), void *arg);

/* The same, but when the queue is full, block the calling thread until
 * the loop has taken the queue (or closed). For threads of your own: it
 * blocks a whole thread, so a task of another loop should call it through
 * aw_to_thread. Returns 0, -ESHUTDOWN (the loop closed, also while this
 * call waited: fn will not run, arg is still yours), -EDEADLK (the queue
 * is full and this is the loop's own thread, which alone could empty it),
 * -ENOMEM, -EINVAL. Not a cancellation point (it is not a task's call). */
AW_API int aw_loop_post_wait(aw_loop_ref_t *r, void (*fn)(void *arg), void *arg);

/* Drop a reference (any thread, once per aw_loop_ref()). */
AW_API void aw_loop_unref(aw_loop_ref_t *r);

/* Loop statistics, for tests and benchmarks. */
typedef struct aw_loop_stats {
    size_t tasks;            /* live tasks */
    size_t stacks_live, stacks_cached;
    size_t timers;           /* armed timers */
    uint64_t switches;       /* context switches so far */
} aw_loop_stats_t;
AW_API void aw_loop_stats(aw_loop_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
