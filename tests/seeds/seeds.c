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

#include "testutil.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct {
    int status;       /* aw_main's result */
    aw_ns_t elapsed;  /* wall time of the run */
    char out[8192];   /* what it printed */
} run_t;

/* Run fn as the main task with fd 1 pointing at a temporary file. */
static void run_captured(aw_task_fn fn, run_t *r) {
    fflush(stdout);
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    int saved = dup(STDOUT_FILENO);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(fileno(tmp), STDOUT_FILENO), 0);
    aw_ns_t t0 = aw_now();
    r->status = aw_main(fn, NULL);
    r->elapsed = aw_now() - t0;
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(r->out, 1, sizeof r->out - 1, tmp);
    r->out[n] = '\0';
    fclose(tmp);
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
                  "All workers finished\n");
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
