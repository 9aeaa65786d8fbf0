/* awith/thread.h: run a blocking call on the loop's thread pool
 * (asyncio's to_thread). The calling task suspends; other tasks run. */
#ifndef AWITH_THREAD_H
#define AWITH_THREAD_H

#include <awith/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Run work(arg) on a worker thread and wait for it. A cancellation point.
 * Returns 0 when work ran to completion. If the caller is cancelled first
 * it gets -ECANCELED at once and ownership of `arg` passes to the pool:
 * when work finishes, abandon(arg) runs on the loop thread to release what
 * work produced (and arg itself). So `arg` must outlive the caller's frame
 * (heap) unless abandon is NULL, in which case the wait is cancellable
 * only until a worker takes the job: while it waits for a free thread a
 * cancel takes it off the queue (work never runs, -ECANCELED, arg stays
 * the caller's, as Trio's to_thread); once work has started it finishes
 * and the call returns 0 (the cancel is delivered at the next
 * cancellation point). With abandon given,
 * -ECANCELED always means the pool owns `arg`: if the cancel was pending
 * before work started, work never runs and abandon(arg) runs at once, so
 * abandon must cope with a work that did not run (e.g. a result still
 * NULL). -ENOMEM, -EAGAIN (no thread could start): work did not run and
 * `arg` stays the caller's.
 *
 * work's own failure does not cross: unlike Python's to_thread, which
 * re-raises the function's exception in the caller, work returns nothing,
 * and an aw_raise on the worker thread (no task runs there) only sets that
 * thread's last error (awith/err.h), which the caller never sees. A work
 * that can fail stores its result in `arg`; the caller raises from it:
 *     if (aw_to_thread(hash_file, &job, NULL) < 0) return aw_status();
 *     if (job.err) return aw_raise(-job.err, "hashing %s: %s", job.path, strerror(job.err)); */
AW_API int aw_to_thread(void (*work)(void *arg), void *arg, void (*abandon)(void *arg));

#ifdef __cplusplus
}
#endif

#endif
