/* tests/fault/scenarios.c: what the fault sweep runs. The seed scenarios
 * are the programs in examples/ (compiled into the driver with
 * AW_EXAMPLE_NO_MAIN, as awith-demo links them); the mixed scenario uses
 * one of nearly everything the library offers, each step failing the
 * scenario with the pending error as a caller would:
 * with, a generator manager, an async generator, an exit stack, a group
 * whose workers share a lock, a semaphore and an event, deadlines
 * (move-on and fail-after), the thread pool, a TCP echo server and client
 * on 127.0.0.1, files (atomic write, lines, read_all), SQLite, HTTP
 * against nginx and PostgreSQL (when the driver could start them).
 *
 * A client bounds its waits for a server of its own scenario: a server
 * retries a failed accept4 (-EMFILE ...) until it succeeds, so with that
 * fault persistent only the client's deadline ends the run (a clean
 * -ETIMEDOUT; tcp_connection's is in its example, the mixed one's in
 * step_tcp; tools/faults.sh says why the deadline is the client's and
 * not the driver's). */
#include <awith.h>
#include <awith/file.h>
#include <awith/http.h>
#include <awith/pg.h>
#include <awith/server.h>
#include <awith/sqlite.h>
#include <awith/tcp.h>
#include <awith/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/db/db_demo.h"
#include "../../examples/examples.h"
#include "../../examples/fs/fs_demo.h"
#include "../../examples/http/http_demo.h"
#include "../../examples/net/net_demo.h"
#include "fault.h"

fault_env_t fault_env;

/* ---- the mixed scenario, step by step ---- */

#define STEP(call)                                                                             \
    do {                                                                                       \
        if ((call) < 0 || aw_status() < 0)                                                     \
            return aw_status() < 0 ? aw_status() : -EPROTO;                                    \
    } while (0)

/* a generator manager: a counter it owns and checks on the way out */
static int counted(aw_gencm_t *g, void *arg) {
    int *live = arg;
    ++*live;
    int rc = aw_gencm_yield(g, live);
    --*live;
    return rc;
}

/* an async generator: yields 0, 1, 2 with a sleep before each */
static int ticks(aw_gen_t *g, void *arg) {
    for (int i = 0; i < 3; i++) {
        if (aw_sleep_ms(1) < 0)
            return aw_status();
        if (aw_gen_yield(g, &i) < 0)
            break;
    }
    return 0;
}

static int step_managers(void) {
    int live = 0, sum = 0;
    aw_with (int *n, aw_gencm(counted, &live)) {
        aw_for (int *v, aw_gen(ticks, NULL)) {
            sum += *v + *n;
        }
    }
    if (aw_status() < 0)
        return aw_status();
    return live == 0 && sum == 6 ? 0 : aw_raise(-EPROTO, "managers: live %d, sum %d", live, sum);
}

static int cb_ran;
static int on_close(void *arg) { return ++cb_ran, 0; }

static aw_lock_t mx_lock = AW_LOCK_INIT("mixed");
static aw_sem_t mx_sem = AW_SEM_INIT("mixed", 2, 2);

static int step_exitstack(void) {
    int live = 0;
    aw_gencm_t gm = AW_GENCM_INIT(counted, &live); /* outlives the stack's block */
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        void *v;
        if (aw_exitstack_enter(st, aw_locked(&mx_lock), &v) < 0 ||
            aw_exitstack_enter(st, aw_cm(&aw_gencm_type, &gm), &v) < 0 ||
            aw_exitstack_callback(st, on_close, NULL) < 0)
            break;
        aw_sleep_ms(1);
    }
    return aw_status();
}

typedef struct {
    aw_event_t *go;
    int *done;
} worker_arg;

static int worker(void *arg) {
    worker_arg *w = arg;
    if (aw_event_wait(w->go) < 0)
        return aw_status();
    aw_with (aw_sem_held(&mx_sem))
    aw_with (aw_locked(&mx_lock)) {
        if (aw_sleep_ms(1) == 0)
            ++*w->done;
    }
    return aw_status();
}

static int step_group(void) {
    aw_event_t go = AW_EVENT_INIT;
    int done = 0;
    worker_arg w = {&go, &done};
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 4; i++)
            if (aw_spawn(g, worker, &w, NULL) < 0) {
                aw_fail(aw_status(), "spawning worker %d", i);
            }
        aw_yield();
        aw_event_set(&go);
    }
    if (aw_status() < 0)
        return aw_status();
    return done == 4 ? 0 : aw_raise(-EPROTO, "group: %d of 4 workers done", done);
}

static int step_deadlines(void) {
    aw_with (aw_move_on_after(AW_MS(2))) {
        aw_sleep_ms(10000); /* moved on after 2 ms */
    }
    if (aw_status() < 0)
        return aw_status();
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_sleep_ms(10000);
    }
    if (aw_status() != -ETIMEDOUT)
        return aw_status() < 0 ? aw_status() : aw_raise(-EPROTO, "fail_after did not fail");
    aw_err_clear(); /* expected */
    return 0;
}

static void square(void *arg) { *(long *)arg *= *(long *)arg; }

static int step_thread(void) {
    long v = 12;
    STEP(aw_to_thread(square, &v, NULL));
    return v == 144 ? 0 : aw_raise(-EPROTO, "thread pool: %ld", v);
}

static int echo(aw_stream_t *s, void *arg) {
    char line[128];
    ssize_t n;
    while ((n = aw_stream_read_line(s, line, sizeof line)) > 0)
        if (aw_stream_write(s, line, (size_t)n) < 0)
            return aw_status();
    return (int)n;
}

static int step_tcp(void) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server(l, echo, NULL))
    aw_with (aw_fail_after(AW_SEC(5))) /* the client's: see the top of the file */
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l))) {
        char buf[64];
        if (aw_stream_write(s, "ping\n", 5) < 0 || aw_stream_flush(s) < 0)
            break;
        ssize_t n = aw_stream_read_line(s, buf, sizeof buf);
        if (n < 0)
            break;
        if (n != 5 || memcmp(buf, "ping\n", 5) != 0) {
            aw_fail(-EPROTO, "tcp: echo came back as %zd bytes", n);
        }
    }
    return aw_status();
}

static int step_files(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/lines.txt", dir);
    aw_with (aw_file_t *f, aw_file_atomic(path, 0644)) {
        for (int i = 0; i < 3; i++)
            if (aw_file_write(f, "line\n", 5) < 0)
                break;
    }
    if (aw_status() < 0)
        return aw_status();
    size_t lines = 0;
    aw_for (aw_line_t *ln, aw_file_lines(path)) {
        lines += ln->len == 5;
    }
    if (aw_status() < 0)
        return aw_status();
    char *all;
    size_t len;
    STEP(aw_file_read_all(path, &all, &len, 0));
    free(all);
    return lines == 3 && len == 15 ? 0 : aw_raise(-EPROTO, "files: %zu lines, %zu bytes", lines, len);
}

static int step_sqlite(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/db.sqlite", dir);
    long long n = -1;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        if (aw_sqlite_script(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);") < 0)
            break;
        aw_with (aw_sqlite_tx(db)) {
            for (int i = 0; i < 3; i++)
                if (aw_sqlite_exec(db, "INSERT INTO t(v) VALUES (?)",
                                   aw_sqlite_args(aw_sqlite_text("x"))) < 0)
                    break;
        }
        if (aw_status() < 0)
            break;
        aw_sqlite_res_t *r;
        if (aw_sqlite_query(db, &r, "SELECT k, v FROM t", aw_sqlite_noargs) < 0)
            break;
        int rows = aw_sqlite_res_rows(r);
        aw_sqlite_res_free(r);
        if (aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM t", aw_sqlite_noargs) < 0)
            break;
        if (rows != 3) {
            aw_fail(-EPROTO, "sqlite: %d rows", rows);
        }
    }
    if (aw_status() < 0)
        return aw_status();
    return n == 3 ? 0 : aw_raise(-EPROTO, "sqlite: count %lld", n);
}

static int step_http(const char *base) {
    aw_with (aw_http_session_t *s, aw_http_session(.base_url = base)) {
        aw_with (aw_http_response_t *r, aw_http_get(s, "/index.html")) {
            const char *text;
            if (aw_http_response_text(r, 0, &text, NULL) < 0)
                break;
            if (aw_http_response_status(r) != 200) {
                aw_fail(-EPROTO, "http: status %ld", aw_http_response_status(r));
            }
        }
        if (aw_status() < 0)
            break;
        aw_with (aw_http_response_t *r, aw_http_get(s, "/1k.bin")) {
            const void *data;
            long n, total = 0;
            while ((n = aw_http_response_read(r, &data)) > 0)
                total += n;
            if (n < 0)
                break;
            if (total != 1024) {
                aw_fail(-EPROTO, "http: %ld bytes of 1k.bin", total);
            }
        }
    }
    return aw_status();
}

static int step_pg(const char *dsn) {
    aw_with (aw_pg_t *db, aw_pg_connect(dsn)) {
        long long one = 0;
        if (aw_pg_fetch_int(db, &one, "SELECT 1", aw_pg_noargs) < 0)
            break;
        if (aw_pg_exec(db, "CREATE TEMP TABLE t(v int)", aw_pg_noargs) < 0)
            break;
        aw_with (aw_pg_tx(db)) {
            aw_pg_exec(db, "INSERT INTO t VALUES (1), (2)", aw_pg_noargs);
        }
        if (aw_status() < 0)
            break;
        aw_pg_res_t *r;
        if (aw_pg_query_prepared(db, &r, "SELECT v FROM t WHERE v > $1", aw_pg_args(aw_pg_int(0))) < 0)
            break;
        int rows = aw_pg_res_rows(r);
        aw_pg_res_free(r);
        if (rows != 2 || one != 1) {
            aw_fail(-EPROTO, "pg: %d rows, one = %lld", rows, one);
        }
    }
    return aw_status();
}

static int mixed(void *arg) {
    STEP(step_managers());
    STEP(step_exitstack());
    if (cb_ran != 1)
        return aw_raise(-EPROTO, "exit stack: callback ran %d times", cb_ran);
    STEP(step_group());
    STEP(step_deadlines());
    STEP(step_thread());
    STEP(step_tcp());
    STEP(step_files(fault_env.dir));
    STEP(step_sqlite(fault_env.dir));
    if (fault_env.http_url)
        STEP(step_http(fault_env.http_url));
    if (fault_env.pg_dsn)
        STEP(step_pg(fault_env.pg_dsn));
    return 0;
}

static int db_sqlite(void *arg) { return example_db(NULL); }
static int db_pg(void *arg) { return example_db((void *)fault_env.pg_dsn); }

const fault_scenario_t fault_scenarios[] = {
    {"db_connection", example_db_connection, 0},
    {"connection", example_connection, 0},
    {"exit_args", example_exit_args, 0},
    {"nested", example_nested, 0},
    {"workers_gather", example_workers_gather, 0},
    {"timeout", example_timeout, 0},
    {"gencm_connection", example_gencm_connection, 0},
    {"gencm_errors", example_gencm_errors, 0},
    {"workers_lock", example_workers_lock, 0},
    {"aclose", example_aclose, 0},
    {"class_manager", example_class_manager, 0},
    {"decorator", example_decorator, 0},
    {"error_handling", example_error_handling, 0},
    {"combined", example_combined, 0},
    {"generators", example_generators, 0},
    {"tcp_connection", example_tcp_connection, 0},
    {"file_reader", example_file_reader, 0},
    {"file_handling", example_file_handling, 0},
    {"db_sqlite", db_sqlite, 0},
    {"db_pg", db_pg, FAULT_NEEDS_PG},
    {"http_get", example_http_get, 0},
    {"http_fetch", example_http_fetch, 0},
    {"mixed", mixed, 0},
    {NULL, NULL, 0},
};
