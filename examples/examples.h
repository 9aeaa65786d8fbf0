/* examples/examples.h: the seeds' examples, each a task function.
 *
 * Every example file defines `int example_<name>(void *arg)`, a task to run
 * with aw_main(), and a main() that does just that. Define
 * AW_EXAMPLE_NO_MAIN to compile the file without its main(): awith-demo
 * (examples/demo.c) links them all that way, and tests/seeds/seeds.c
 * #includes them that way and checks what they print.
 *
 * Static names differ from file to file, so all of them can share one
 * translation unit. */
#ifndef AWITH_EXAMPLES_H
#define AWITH_EXAMPLES_H

int example_db_connection(void *arg);  /* seed 000: class-style manager, two in one statement */
int example_connection(void *arg);     /* seed 001: AsyncConnection(host, port) */
int example_exit_args(void *arg);      /* seed 002 §1-2: what exit receives, suppression */
int example_nested(void *arg);         /* seed 002 §7: several managers, nested managers */
int example_timeout(void *arg);        /* seed 002 §9: fail-after and move-on-after */
int example_workers_gather(void *arg); /* seed 002 §5: workers in a task group (gather) */
int example_gencm_connection(void *arg); /* seed 002 §3: @asynccontextmanager, with a value */
int example_gencm_errors(void *arg);   /* seed 002 §4: catch, suppress or re-raise in a generator manager */
int example_workers_lock(void *arg);   /* seed 002 §5: workers taking turns on a lock */
int example_aclose(void *arg);         /* seed 002 §10: explicit close, same path as exit */
int example_class_manager(void *arg);  /* seed 003: a class-style manager, a DB connection manager */
int example_decorator(void *arg);      /* seed 003: the decorator form (aw_gencm, aw_gencm_call) */
int example_error_handling(void *arg); /* seed 003: exit propagates, suppresses or replaces */
int example_combined(void *arg);       /* seed 003: one statement, nested, combined, exit stack */
int example_generators(void *arg);     /* seed 004: manager, async generator, both combined */

#endif
