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

#endif
