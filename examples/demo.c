/* examples/demo.c -> awith-demo: the seeds' examples, in the seeds' order,
 * then the same ideas on real resources: a TCP server, files, a database
 * (SQLite by default; PostgreSQL when given a DSN: `awith-demo
 * postgresql://user:pw@127.0.0.1/db` or AW_DEMO_DSN), HTTP.
 * Each step is one example file (linked with AW_EXAMPLE_NO_MAIN) run as
 * the main task of its own loop, like asyncio.run() in each seed snippet.
 * A step whose layer this awith was built without (meson -Dpg, -Dsqlite,
 * -Dhttp; examples/meson.build defines AW_DEMO_DB, AW_DEMO_HTTP) is
 * listed and skipped. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"
#include "net/net_demo.h"
#include "fs/fs_demo.h"
#if AW_DEMO_DB
#include "db/db_demo.h"
#define DEMO_DB(fn) fn
#else
#define DEMO_DB(fn) NULL
#endif
#if AW_DEMO_HTTP
#include "http/http_demo.h"
#define DEMO_HTTP(fn) fn
#else
#define DEMO_HTTP(fn) NULL
#endif

#include <stdlib.h>

static const struct {
    const char *title;
    const char *file;
    aw_task_fn fn;   /* NULL: the layer is not built */
    const char *needs; /* what it needs, said when skipped */
} steps[] = {
    {"a class-style manager; two in one statement (seed 000)", "db_connection.c", example_db_connection},
    {"AsyncConnection(host, port) (seed 001)", "connection.c", example_connection},
    {"what exit receives; suppression (seed 002, sections 1-2)", "exit_args.c", example_exit_args},
    {"@asynccontextmanager with a value (seed 002, section 3)", "gencm_connection.c", example_gencm_connection},
    {"errors inside a generator manager (seed 002, section 4)", "gencm_errors.c", example_gencm_errors},
    {"workers in a task group: gather (seed 002, section 5)", "workers_gather.c", example_workers_gather},
    {"workers taking turns on a lock (seed 002, section 5)", "workers_lock.c", example_workers_lock},
    {"several managers, nested managers (seed 002, section 7)", "nested.c", example_nested},
    {"timeouts: fail-after, move-on-after (seed 002, section 9)", "timeout.c", example_timeout},
    {"explicit close, the same path as exit (seed 002, section 10)", "aclose.c", example_aclose},
    {"a class-style manager for a DB connection (seed 003)", "class_manager.c", example_class_manager},
    {"the decorator form (seed 003)", "decorator.c", example_decorator},
    {"error handling in exit (seed 003)", "error_handling.c", example_error_handling},
    {"multiple, nested and combined managers; exit stack (seed 003)", "combined.c", example_combined},
    {"generator managers and async generators (seed 004)", "generators.c", example_generators},
    {"AsyncConnection over a real TCP server (seed 001)", "net/tcp_connection.c", example_tcp_connection},
    {"the timing manager around real requests, with deadlines (seed 003; seed 002, section 9)",
     "net/timing.c", example_timing},
    {"file reader: async_file_reader, aiofiles.open (seed 002, section 6)", "fs/file_reader.c", example_file_reader},
    {"seed 003 on real files: aw_file, log managers, errors, copies, atomic write", "fs/file_handling.c",
     example_file_handling},
    {"a real database: SQLite by default, PostgreSQL with a DSN (seeds 000/001, 002 sections 1 and 8)",
     "db/db_demo.c", DEMO_DB(example_db), "PostgreSQL and SQLite (meson -Dpg, -Dsqlite)"},
    {"HTTP session: session.get -> resp.text() (seed 001)", "http/http_demo.c",
     DEMO_HTTP(example_http_get), "libcurl (meson -Dhttp)"},
    {"AsyncHTTPClient + async_fetch; fetch-many with progress (seed 004)", "http/http_demo.c",
     DEMO_HTTP(example_http_fetch), "libcurl (meson -Dhttp)"},
};

int main(int argc, char **argv) {
    const char *dsn = argc > 1 ? argv[1] : getenv("AW_DEMO_DSN"); /* NULL: SQLite */
    int n = (int)(sizeof steps / sizeof steps[0]);
    for (int i = 0; i < n; i++) {
        printf("%s== %d/%d %s -- examples/%s\n", i ? "\n" : "", i + 1, n, steps[i].title,
               steps[i].file);
        if (!steps[i].fn) {
            printf("   skipped: this awith was built without %s\n", steps[i].needs);
            continue;
        }
        fflush(stdout);
        aw_ns_t t0 = aw_now();
        int rc = aw_main(steps[i].fn, steps[i].fn == DEMO_DB(example_db) ? (void *)dsn : NULL);
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
