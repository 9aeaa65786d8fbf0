/* awith/introspect.h: what a running loop is doing, resources included
 * (SEMANTICS L3, part (c) 12 and 15).
 *
 * aw_loop_dump prints every live task: name, id, state, where it was
 * spawned, its effective deadline, each manager it is inside (name, phase
 * enter/body/exit, for how long, where entered), the locks it holds and
 * what it waits on; then every wait-for cycle among locks, flagged as a
 * deadlock. (A SIGUSR1 trigger is not there yet: call it from a task.) */
#ifndef AWITH_INTROSPECT_H
#define AWITH_INTROSPECT_H

#include <awith/base.h>
#include <stdio.h>

/* Dump the current thread's loop to f. Never suspends. Returns the number
 * of deadlock cycles found (0 if none). */
AW_API int aw_loop_dump(FILE *f);

#endif
