/* awith/log.h: where the library's reports go.
 *
 * awith reports what a program cannot see through a return value: tasks
 * still alive when a loop closes, failures of the root group, the main
 * task's failure, a stack overflow caught by a canary, a suspending call
 * or a with block used outside a task, an HTTP session never closed, the
 * timing manager's default line. By default each goes to stderr; like
 * libcurl's CURLOPT_DEBUGFUNCTION or sqlite3_config(SQLITE_CONFIG_LOG), a
 * program can take them instead:
 *
 *   - per loop: aw_loop_opts_t.log and .log_arg (aw_main_opts,
 *     aw_loop_new): that loop's reports, on its thread;
 *   - per process: aw_log_set(fn, arg): every report no loop hook takes,
 *     including those made where no loop runs.
 *
 * A hook gets one call per report: the whole text, NUL-terminated, ending
 * in a newline (a report of several lines comes in one call). It runs on
 * the thread that reports, never in a signal handler (the two reports
 * made in one are written to fd 2 directly: the SIGSEGV stack-overflow
 * report, and the line of a second Ctrl-C ending the process,
 * awith/signal.h). It must not suspend and should not call into the
 * loop; the text is valid during the call only.
 *
 * aw_log_set is process-wide configuration, the one exception to "no
 * state outside the per-thread loop": set it before loops start, as
 * sqlite3_config. Changing it while loops run is safe (one atomic pair
 * store) but a report made meanwhile may go to either hook. */
#ifndef AWITH_LOG_H
#define AWITH_LOG_H

#include <awith/base.h>
#include <awith/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Send the reports no loop hook takes to fn(msg, arg); fn NULL: back to
 * stderr. Any thread; never suspends; cannot fail. */
AW_API void aw_log_set(aw_log_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
