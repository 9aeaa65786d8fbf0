/* awith/signal.h: signals for tasks.
 *
 * 1. A signal as an awaitable. Entering aw_signals(&set) blocks the set's
 *    signals on the loop's thread and opens a signalfd for them; inside
 *    the block aw_signals_wait() suspends the task until one arrives.
 *    Exit closes the fd and unblocks what the block blocked (per thread,
 *    counted: nested or concurrent blocks of several tasks on one set
 *    unblock it when the last one leaves, and a signal the program had
 *    blocked before stays blocked).
 *
 *      sigset_t set;
 *      sigemptyset(&set);
 *      sigaddset(&set, SIGHUP);
 *      aw_with (aw_signals_t *s, aw_signals(&set))
 *          for (int sig; aw_signals_wait(s, &sig) == 0;)
 *              reload_config();
 *
 *    The signalfd rule: a process-directed signal (kill(pid, ...), a
 *    terminal's Ctrl-C) goes to any thread that does not block it, so
 *    every other thread of the program must block the set as well (the
 *    loop's own thread pool blocks every asynchronous signal). A signal
 *    that arrives while no block holds it follows its disposition, and a
 *    signal left pending when the block exits is delivered then, by its
 *    disposition (for SIGINT, by default: the process ends).
 *
 * 2. asyncio.run's Ctrl-C: aw_loop_opts_t.cancel_on_signals. While that
 *    loop lives (aw_main_opts, aw_loop_new), SIGINT and SIGTERM are
 *    caught (a sigaction handler, process-wide; the previous one is put
 *    back when the loop closes). The first one cancels the main task: it
 *    sees -ECANCELED at its suspension points (until it comes, tasks that
 *    only wait for it, as aw_sleep(AW_NEVER), are not taken for a
 *    deadlock), its with blocks exit, and
 *    aw_main shuts down as usual and returns the main task's status
 *    (-ECANCELED, unless the task handled it: saw -ECANCELED and returned
 *    0; one that returns 0 without ever seeing it, the signal having come
 *    during an exit or a shield, did not, and aw_main returns -ECANCELED,
 *    as asyncio.run raises KeyboardInterrupt then), after a one-line
 *    report naming the signal. A second SIGINT or SIGTERM while that is under
 *    way (a task ignoring its cancel, an exit stuck in its grace) is the
 *    user insisting: awith restores the default disposition and lets the
 *    signal end the process at once, as asyncio's second Ctrl-C raises
 *    KeyboardInterrupt at once (exits do not run: that is what the user
 *    asked for; exit status 128 + signo). One loop in the process at a
 *    time may use it (-EBUSY for another).
 */
#ifndef AWITH_SIGNAL_H
#define AWITH_SIGNAL_H

#include <awith/base.h>
#include <awith/cm.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The state of an aw_signals block (fields private). */
typedef struct aw_signals {
    sigset_t set;
    int fd;                      /* the signalfd, -1 outside the block */
} aw_signals_t;

extern AW_API const aw_cm_type_t aw_signals_type;

/* A manager over the signals of *set (copied: the set need not outlive
 * the call). Enter blocks them on this thread and opens a signalfd; it
 * fails with -EPERM outside a task, -EINVAL for an empty set or one with
 * SIGKILL/SIGSTOP, or signalfd's error (-EMFILE, -ENOMEM), blocking
 * nothing then. Never suspends. The state lives in a compound literal:
 * for aw_with (see awith/cm.h for the exit stack). */
#define aw_signals(setp) \
    aw_cm_temp(&aw_signals_type, (aw_signals_t){.set = *(setp), .fd = -1})

/* Suspend until one of the block's signals arrives; its number goes to
 * *signo (may be NULL). Signals that arrived since the block was entered
 * are returned first, one per call, lowest number first. A cancellation
 * point when it waits. Returns 0, -ECANCELED, -EINVAL (s is not entered),
 * -EBUSY (another task already waits on this block: one waiter at a
 * time, as Trio's receiver), -EPERM (outside a task), or read's error. */
AW_API int aw_signals_wait(aw_signals_t *s, int *signo);

/* One signal of *set, in one call: enter aw_signals(set), wait, exit.
 * Between two calls the set is not blocked: a signal arriving then
 * follows its disposition; keep a block open to catch every one. */
AW_API int aw_signal_wait(const sigset_t *set, int *signo);

#ifdef __cplusplus
}
#endif

#endif
