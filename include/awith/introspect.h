/* awith/introspect.h: what a running loop is doing, resources included
 * (SEMANTICS L3, part (c) 12 and 15).
 *
 * aw_loop_dump prints every live task: name, id, state, where it was
 * spawned, its effective deadline, each manager it is inside (name, phase
 * enter/body/exit, for how long, where entered), the locks it holds and
 * what it waits on; then every wait-for cycle among locks, flagged as a
 * deadlock.
 *
 * aw_loop_dump_on_signal(SIGUSR1) makes the calling task's loop print that
 * dump to stderr at its next round each time the process gets the signal
 * (`kill -USR1 <pid>` on a hung program): the handler only sets a flag and
 * wakes the loop, the dump runs on the loop's thread between tasks. */
#ifndef AWITH_INTROSPECT_H
#define AWITH_INTROSPECT_H

#include <awith/base.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Dump the current thread's loop to f. Never suspends. Returns the number
 * of deadlock cycles found (0 if none). */
AW_API int aw_loop_dump(FILE *f);

/* Opt-in: dump the calling task's loop to stderr whenever `sig` arrives.
 * One loop and one signal per process at a time (-EBUSY for a second
 * signal); calling it from another loop moves the dump there. sig == 0
 * restores the signal's previous action, and so does the close of the
 * loop that dumps (a later loop may then ask for any signal). Keeps one eventfd open for the
 * life of the process. 0, -EPERM outside a loop, or -errno. */
AW_API int aw_loop_dump_on_signal(int sig);

#ifdef __cplusplus
}
#endif

#endif
