/* bench/db/sqlite.c -> bench-sqlite: SQLite through awith (each call on
 * the thread pool) against synchronous SQLite C calls (the floor: the
 * same statement prepared once, bound, stepped and reset on the calling
 * thread) and aiosqlite (asyncio and uvloop), same run.
 *
 *   sqlite_select_ns      20,000 `SELECT ?` one after another on one
 *                         connection to a file database, wall ns per query
 *   sqlite_select_cpu_ns  the process's CPU time per query, every thread
 *                         counted: the loop and a pool worker each spin a
 *                         while for the other (src/loop/workers.c), which
 *                         buys latency with CPU
 * ratio_<peer> = peer / awith: above 1 means awith is faster. */
#include <awith/sqlite.h>
#include <sqlite3.h>
#include <unistd.h>

#include "../bench.h"

#ifndef BENCH_DB_PY
#define BENCH_DB_PY "bench/db/peers/asyncpg_bench.py"
#endif

static char path[64];

typedef struct {
    long n;
    double ns, cpu;
} run_t;

static int run(void *arg) {
    run_t *r = arg;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        double t0 = bench_now(), c0 = bench_cpu();
        for (long i = 0; i < r->n; i++) {
            long long v;
            if (aw_sqlite_fetch_int(db, &v, "SELECT ?", aw_sqlite_args(aw_sqlite_int(i))) < 0)
                aw_leave();
            if (v != i) {
                aw_fail(-EPROTO, "wrong value");
            }
        }
        r->ns = (bench_now() - t0) / (double)r->n;
        r->cpu = (bench_cpu() - c0) / (double)r->n;
    }
    return aw_status();
}

/* The floor: synchronous C calls on this thread, the statement prepared
 * once (as awith's per-connection cache does). */
static int sync_select(long n, double *ns, double *cpu) {
    sqlite3 *db;
    sqlite3_stmt *st;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_prepare_v3(db, "SELECT ?", -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return -1;
    double t0 = bench_now(), c0 = bench_cpu();
    long bad = 0;
    for (long i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, i);
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != i)
            bad++;
        sqlite3_reset(st);
    }
    *ns = (bench_now() - t0) / (double)n;
    *cpu = (bench_cpu() - c0) / (double)n;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return bad ? -1 : 0;
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/aw-bench-sqlite-%d.db", (int)getpid());
    long n = bench_n(20000);
    double v[BENCH_REPS], c[BENCH_REPS], sv[BENCH_REPS], sc[BENCH_REPS];
    for (int i = 0; i < BENCH_REPS; i++) { /* interleaved: a load change hits both */
        run_t r = {n, 0, 0};
        if (aw_main(run, &r) < 0)
            return 1;
        v[i] = r.ns;
        c[i] = r.cpu;
        if (sync_select(n, &sv[i], &sc[i]) < 0)
            sv[i] = sc[i] = BENCH_NA;
    }
    double a = bench_median(v, BENCH_REPS), ac = bench_median(c, BENCH_REPS);
    double s = bench_median(sv, BENCH_REPS), scpu = bench_median(sc, BENCH_REPS);
    const char *keys[] = {"ns", "cpu_ns", NULL};
    double py[2], uv[2];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' sqlite '%s' %ld 2>/dev/null", bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"),
             BENCH_DB_PY, path, n);
    bench_popen_values(cmd, keys, py);
    snprintf(cmd, sizeof cmd, "'%s' '%s' sqlite '%s' %ld uvloop 2>/dev/null",
             bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"), BENCH_DB_PY, path, n);
    bench_popen_values(cmd, keys, uv);
    unlink(path);
    bench_config("median of 5 (interleaved with sqlite_sync), unpinned (the pool needs the other "
                 "CPU); %ld `SELECT ?` on one connection to a file database; awith: "
                 "aw_sqlite_fetch_int on the loop's pool (default size), statement cached; "
                 "sqlite_sync: the same statement prepared once, bind/step/reset on the calling "
                 "thread; aiosqlite: one connection (its own thread), execute + fetchone; CPU: "
                 "the whole process, all threads", n);
    const char *peers[] = {"sqlite_sync", "aiosqlite", "aiosqlite_uvloop", NULL};
    bench_print("sqlite_select_ns", a, peers, (double[]){s, py[0], uv[0]});
    bench_print("sqlite_select_cpu_ns", ac, peers, (double[]){scpu, py[1], uv[1]});
    return 0;
}
