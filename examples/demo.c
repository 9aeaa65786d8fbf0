/* examples/demo.c -> awith-demo: the seeds' examples, in the seeds' order.
 * Each step is one example file (linked with AW_EXAMPLE_NO_MAIN) run as
 * the main task of its own loop, like asyncio.run() in each seed snippet. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

static const struct {
    const char *title;
    const char *file;
    aw_task_fn fn;
} steps[] = {
    {"a class-style manager; two in one statement (seed 000)", "db_connection.c", example_db_connection},
    {"AsyncConnection(host, port) (seed 001)", "connection.c", example_connection},
    {"what exit receives; suppression (seed 002, sections 1-2)", "exit_args.c", example_exit_args},
    {"several managers, nested managers (seed 002, section 7)", "nested.c", example_nested},
    {"timeouts: fail-after, move-on-after (seed 002, section 9)", "timeout.c", example_timeout},
    {"workers in a task group: gather (seed 002, section 5)", "workers_gather.c", example_workers_gather},
};

int main(void) {
    int n = (int)(sizeof steps / sizeof steps[0]);
    for (int i = 0; i < n; i++) {
        printf("%s== %d/%d %s -- examples/%s\n", i ? "\n" : "", i + 1, n, steps[i].title,
               steps[i].file);
        fflush(stdout);
        aw_ns_t t0 = aw_now();
        int rc = aw_main(steps[i].fn, NULL);
        fflush(stdout);
        if (rc < 0) {
            fprintf(stderr, "awith-demo: step %d failed: %s (%s)\n", i + 1, aw_err_name(rc),
                    aw_strerror(rc));
            return 1;
        }
        printf("   (%.2f s)\n", (double)(aw_now() - t0) / 1e9);
    }
    return 0;
}
