/* tests/seeds/seeds.c: every seed example (the files in examples/), run and checked.
 *
 * The example files are #included here without their main() (see
 * examples/examples.h), so there is one copy of each example and the test
 * checks exactly what the programs print: each runs as the main task of a
 * fresh loop with stdout redirected to a temporary file, and the captured
 * text must equal the lines the seed's Python prints, in order. Timing
 * checks make sure the sleeps are real and concurrent where they should be. */
#define AW_EXAMPLE_NO_MAIN
#include "../../examples/db_connection.c"
#include "../../examples/connection.c"
#include "../../examples/exit_args.c"
#include "../../examples/nested.c"
#include "../../examples/workers_gather.c"
#include "../../examples/timeout.c"
#include "../../examples/gencm_connection.c"
#include "../../examples/gencm_errors.c"
#include "../../examples/workers_lock.c"
#include "../../examples/aclose.c"
#include "../../examples/class_manager.c"
#include "../../examples/decorator.c"
#include "../../examples/error_handling.c"
#include "../../examples/combined.c"
#include "../../examples/generators.c"

#include "capture.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct {
    int status;       /* aw_main's result */
    aw_ns_t elapsed;  /* wall time of the run */
    char out[8192];   /* what it printed */
} run_t;

/* Run fn as the main task with fd 1 pointing at a temporary file. */
static void run_captured(aw_task_fn fn, run_t *r) {
    aw_ns_t t0 = aw_now();
    r->status = aw_test_capture(fn, NULL, r->out, sizeof r->out);
    r->elapsed = aw_now() - t0;
}

static run_t run; /* large: keep it off the test's stack */

#define assert_output(expected)                                                        \
    do {                                                                               \
        cr_assert_eq(run.status, 0, "the example failed: %s", aw_err_name(run.status)); \
        cr_assert_str_eq(run.out, (expected));                                         \
    } while (0)

/* The sleeps really happened: a lower bound only (sleep guarantees it);
 * upper bounds would be timing assertions, flaky on a loaded machine.
 * Concurrency is shown by the order of the printed lines instead. */
#define assert_slept_ms(lo)                                                    \
    do {                                                                       \
        double ms = (double)run.elapsed / 1e6;                                 \
        cr_assert(ms >= (lo), "took %.1f ms, expected at least %d ms", ms, (lo)); \
    } while (0)

/* seed 000 */
Test(seeds, db_connection_single_and_multiple) {
    run_captured(example_db_connection, &run);
    assert_output("Connecting to the database...\n"
                  "Connection established.\n"
                  "Performing a database operation...\n"
                  "Closing the database connection...\n"
                  "Connection closed.\n"
                  /* two managers in one statement: enter in order, exit in reverse */
                  "Connecting to the database...\n"
                  "Connection established.\n"
                  "Connecting to the API...\n"
                  "API connection established.\n"
                  "Performing operations with both connections.\n"
                  "Closing the API connection...\n"
                  "API connection closed.\n"
                  "Closing the database connection...\n"
                  "Connection closed.\n");
    assert_slept_ms(600); /* six sleeps of 100 ms, one after another */
}

/* seed 001 */
Test(seeds, connection_host_port) {
    run_captured(example_connection, &run);
    assert_output("Подключение к example.com:8080\n"
                  "Соединение установлено. Используем...\n"
                  "Соединение больше не нужно.\n"
                  "Закрытие соединения с example.com:8080\n");
    assert_slept_ms(400); /* 0.1 + 0.2 + 0.1 s */
}

/* seed 002, sections 1 and 2 */
Test(seeds, exit_args_and_suppression) {
    run_captured(example_exit_args, &run);
    assert_output("Connecting to postgres://localhost...\n"
                  "Connected!\n"
                  "Executing: SELECT * FROM users\n"
                  "Result: [{'id': 1, 'name': 'Alice'}]\n"
                  "Closing connection...\n"
                  "Connection closed!\n"
                  "Error: Not connected\n"
                  /* exit sees the error and lets it propagate */
                  "Entering context\n"
                  "Exception occurred: EINVAL: Something went wrong!\n"
                  "Exception was raised\n"
                  /* a clean way out */
                  "Entering context\n"
                  "Exiting normally\n"
                  /* exit returns AW_SUPPRESS */
                  "Entering context\n"
                  "Exception occurred: EINVAL: Something went wrong!\n"
                  "Suppressed: execution continues after the block\n");
    assert_slept_ms(1000); /* 0.5 + 0.3 + 0.2 s */
}

/* seed 002, section 7 */
Test(seeds, nested_and_several) {
    run_captured(example_nested, &run);
    assert_output("Acquiring resource A\n"
                  "Acquiring resource B\n"
                  "Using A and B\n"
                  "Releasing resource B\n"
                  "Releasing resource A\n"
                  "Acquiring resource A\n"
                  "Acquiring resource B\n"
                  "Nested: A, B\n"
                  "Releasing resource B\n"
                  "Releasing resource A\n");
}

/* seed 002, section 5 (without the lock) */
Test(seeds, workers_gather_in_a_group) {
    run_captured(example_workers_gather, &run);
    assert_output("Worker 1: started\n"
                  "Worker 2: started\n"
                  "Worker 3: started\n"
                  "Worker 1: finished\n"
                  "Worker 2: finished\n"
                  "Worker 3: finished\n"
                  "All workers finished: Worker 1, Worker 2, Worker 3\n");
    assert_slept_ms(100); /* concurrent: one sleep of 100 ms, not three */
}

/* seed 002, section 9 */
Test(seeds, timeout_fail_after_and_move_on_after) {
    run_captured(example_timeout, &run);
    assert_output("Operation timed out after 0.2s\n"
                  "Caught timeout\n"
                  "Moved on after 0.2s, no error\n");
    assert_slept_ms(400); /* two 0.2 s deadlines, never the 0.5 s operation */
}

/* seed 002, section 3 */
Test(seeds, gencm_connection_setup_yield_cleanup) {
    run_captured(example_gencm_connection, &run);
    assert_output("Connecting to postgres://localhost...\n"
                  "Connected!\n"
                  "Inside context\n"
                  "Closing connection...\n"
                  "Connection closed!\n"
                  "Connecting to postgres://localhost...\n"
                  "Result: [{'result': 1}]\n"
                  "Cleaning up...\n");
    assert_slept_ms(70); /* 50 ms connecting, 20 ms closing */
}

/* seed 002, section 4 */
Test(seeds, gencm_errors_suppress_or_reraise) {
    run_captured(example_gencm_errors, &run);
    assert_output("Setting up resource\n"
                  "Using: resource_value\n"
                  "Caught ValueError: Test error\n"
                  "Cleaning up resource\n"
                  "Setting up resource\n"
                  "Using: resource_value\n"
                  "Caught other exception: EIO: Disk on fire\n"
                  "Cleaning up resource\n"
                  "Outside context: the EIO propagated\n");
}

/* seed 002, section 5 */
Test(seeds, workers_take_turns_on_a_lock) {
    run_captured(example_workers_lock, &run);
    assert_output("Worker 1: Acquired lock\n"
                  "Worker 1: Releasing lock\n"
                  "Worker 2: Acquired lock\n"
                  "Worker 2: Releasing lock\n"
                  "Worker 3: Acquired lock\n"
                  "Worker 3: Releasing lock\n");
    assert_slept_ms(90); /* three 30 ms turns, one after another */
    cr_assert_null(aw_lock_owner(&shared_resource));
}

/* seed 002, section 10 */
Test(seeds, aclose_is_the_exit_and_idempotent) {
    run_captured(example_aclose, &run);
    assert_output("Resource acquired\n"
                  "Using resource\n"
                  "Resource released\n"
                  "Resource acquired\n"
                  "Resource released\n"
                  "Closed early; the exit has nothing left to do\n"
                  "Resource acquired\n"
                  "Using resource without a block\n"
                  "Resource released\n");
}

/* seed 003, a class */
Test(seeds, class_manager_returns_its_value_and_closes_after_errors) {
    run_captured(example_class_manager, &run);
    assert_output("Initializing the resource...\n"
                  "Using the resource\n"
                  "Cleaning up the resource\n"
                  "Connection 1 open\n"
                  "Query on connection 1\n"
                  "Connection 1 closed after EIO\n"
                  "Error after the block: the query failed\n");
}

/* seed 003, the decorator */
Test(seeds, decorator_fresh_instance_per_call) {
    run_captured(example_decorator, &run);
    assert_output("Set up resource 1\n"
                  "Using resource 1\n"
                  "Cleaned up resource 1\n"
                  "Set up resource 2\n"
                  "Job a runs inside its own instance\n"
                  "Cleaned up resource 2\n"
                  "Set up resource 3\n"
                  "Job b runs inside its own instance\n"
                  "Cleaned up resource 3\n");
}

/* seed 003, error handling */
Test(seeds, error_handling_propagate_suppress_replace) {
    run_captured(example_error_handling, &run);
    assert_output("[clean] exit: clean\n"
                  "[clean] after the block: no error\n"
                  "[propagate] exit received EINVAL: bad input\n"
                  "[propagate] after the block: EINVAL: bad input\n"
                  "[suppress] exit received EINVAL: bad input\n"
                  "[suppress] after the block: no error\n"
                  "[replace] exit received EINVAL: bad input\n"
                  "[replace] after the block: EIO: cleanup of replace failed too (while handling EINVAL: bad input)\n");
}

/* seed 003, multiple managers */
Test(seeds, combined_one_statement_nested_combined_exit_stack) {
    run_captured(example_combined, &run);
    assert_output("-- one statement\n"
                  "enter manager1\n"
                  "enter manager2\n"
                  "using manager1 and manager2\n"
                  "exit manager2\n"
                  "exit manager1\n"
                  "-- nested\n"
                  "enter manager1\n"
                  "enter manager2\n"
                  "using manager1 and manager2\n"
                  "exit manager2\n"
                  "exit manager1\n"
                  "-- combined\n"
                  "enter manager1\n"
                  "enter manager2\n"
                  "using manager1 and manager2\n"
                  "exit manager2\n"
                  "exit manager1\n"
                  "-- combined with an exit stack\n"
                  "enter conn 0\n"
                  "enter conn 1\n"
                  "enter conn 2\n"
                  "using conn 0, conn 1 and conn 2\n"
                  "exit conn 2\n"
                  "exit conn 1\n"
                  "exit conn 0\n");
}

/* seed 004 */
Test(seeds, generators_manager_async_for_and_both) {
    run_captured(example_generators, &run);
    assert_output("Entering context\n"
                  "Inside context\n"
                  "Exiting context\n"
                  "0\n"
                  "1\n"
                  "2\n"
                  "3\n"
                  "4\n"
                  "<html>example.com</html>\n"
                  "released http://example.com\n"
                  "<html>example.org</html>\n"
                  "released http://example.org\n"
                  "<html>example.net</html>\n"
                  "released http://example.net\n"
                  "<html>example.com</html>\n"
                  "released http://example.com\n"
                  "after the loop\n");
}
