/* bench/db/sqlite.c -> bench-sqlite: SQLite through awith (each call on
 * the thread pool) against aiosqlite (asyncio and uvloop), same run.
 *
 *   sqlite_select_ns   20,000 `SELECT ?` one after another on one
 *                      connection to a file database, ns per query
 * ratio_<peer> = peer / awith: above 1 means awith is faster. */
#include <awith/sqlite.h>
#include <unistd.h>

#include "../bench.h"

#ifndef BENCH_DB_PY
#define BENCH_DB_PY "bench/db/peers/asyncpg_bench.py"
#endif

static char path[64];

typedef struct {
    long n;
    double ns;
} run_t;

static int run(void *arg) {
    run_t *r = arg;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        double t0 = bench_now();
        for (long i = 0; i < r->n; i++) {
            long long v;
            if (aw_sqlite_fetch_int(db, &v, "SELECT ?", aw_sqlite_args(aw_sqlite_int(i))) < 0)
                aw_leave();
            if (v != i) {
                aw_fail(-EPROTO, "wrong value");
            }
        }
        r->ns = (bench_now() - t0) / (double)r->n;
    }
    return aw_status();
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/aw-bench-sqlite-%d.db", (int)getpid());
    long n = bench_n(20000);
    double v[BENCH_REPS];
    for (int i = 0; i < BENCH_REPS; i++) {
        run_t r = {n, 0};
        if (aw_main(run, &r) < 0)
            return 1;
        v[i] = r.ns;
    }
    double a = bench_median(v, BENCH_REPS);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' sqlite '%s' %ld 2>/dev/null", bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"),
             BENCH_DB_PY, path, n);
    double py = bench_popen_value(cmd, "ns");
    snprintf(cmd, sizeof cmd, "'%s' '%s' sqlite '%s' %ld uvloop 2>/dev/null",
             bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"), BENCH_DB_PY, path, n);
    double uv = bench_popen_value(cmd, "ns");
    unlink(path);
    bench_print("sqlite_select_ns", a, (const char *const[]){"aiosqlite", "aiosqlite_uvloop", NULL},
                (double[]){py, uv});
    return 0;
}
