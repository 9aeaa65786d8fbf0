/* bench/db/pg.c -> bench-pg: PostgreSQL through awith's pool, against
 * asyncpg (asyncio and uvloop) and a plain libpq C client, on one private
 * server (started by tests/db/with-postgres.sh unless AW_TEST_PG_DSN is
 * set), in the same run.
 *
 *   pg_select_ns     100 tasks over a pool of 10 run 50,000 prepared
 *                    `SELECT $1::int` (one acquire per query), ns per
 *                    query; peers: asyncpg, asyncpg_uvloop (the same
 *                    shape), libpq_sync (10 threads, one connection each,
 *                    PQexecPrepared, pgbench -S style); awith and
 *                    libpq_sync take turns, run by run (a load change
 *                    hits both)
 *   pg_roundtrip_ns  one task, a pool of one, 20,000 `SELECT $1::int` one
 *                    after another (an acquire and a release each): a
 *                    round trip and what the loop adds to it; peer:
 *                    libpq_sync on one thread and one connection; the two
 *                    take turns, run by run
 *   pg_select_cpu_ns the same runs' CPU time per query, the client
 *                    process's (every thread, user + system), awith
 *                    against libpq_sync: on a machine whose other load
 *                    takes CPU from the client, one loop thread loses
 *                    more wall time than ten threads do, whatever the
 *                    cost of a query
 *   pg_pipeline_ns   the same 50,000 queries as 10 tasks, one connection
 *                    each, in pipeline mode (aw_pg_pipeline); peers:
 *                    pgbench's own pipeline mode, 10 clients on one
 *                    thread, two ways: pgbench_pipe_prepared (-M
 *                    prepared, 50 queries per \startpipeline: pgbench 15
 *                    prepares each line of a script with a round trip,
 *                    so longer pipelines cost it more) and
 *                    pgbench_pipe_extended (-M extended: unnamed
 *                    statements, 1,000 per pipeline); libpq_sync as
 *                    above (not pipelined: the round trip that
 *                    pipelining saves)
 *   pg_select_always_reset_ns  pg_select with aw_pg_pool_ops_reset
 *                    (DISCARD ALL on every release, so every query
 *                    prepares again), against asyncpg, which also resets
 *                    on every release: what a reset that runs always costs
 *   pg_tx_ns         100 tasks over a pool of 10 run 10,000 transactions
 *                    of one INSERT each; peers: asyncpg, asyncpg_uvloop
 * ratio_<peer> = peer / awith: above 1 means awith is faster. */
#include <awith/pg.h>
#include <unistd.h>

#include "../bench.h"

#ifndef BENCH_DB_FIXTURE
#define BENCH_DB_FIXTURE "tests/db/with-postgres.sh"
#endif
#ifndef BENCH_DB_PY
#define BENCH_DB_PY "bench/db/peers/asyncpg_bench.py"
#endif

enum { TASKS = 100, POOL = 10 };
static const char *dsn;
static aw_pool_t *pool;
static const aw_pool_ops_t *ops = &aw_pg_pool_ops;
static long per, total_bad;

static int sel_worker(void *arg) {
    for (long i = 0; i < per; i++) {
        aw_with (aw_pg_t *db, aw_pool_item(pool)) {
            aw_pg_res_t *r;
            if (aw_pg_query_prepared(db, &r, "SELECT $1::int", aw_pg_args(aw_pg_int(i))) < 0)
                aw_leave();
            long long v;
            if (aw_pg_res_int(r, 0, 0, &v) < 0 || v != i)
                total_bad++;
            aw_pg_res_free(r);
        }
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

static int tx_worker(void *arg) {
    long k = (long)(intptr_t)arg;
    for (long i = 0; i < per; i++) {
        aw_with (aw_pg_t *db, aw_pool_item(pool)) {
            aw_with (aw_pg_tx(db)) {
                aw_pg_exec(db, "INSERT INTO bench_tx VALUES ($1, $2)",
                           aw_pg_args(aw_pg_int(k * per + i), aw_pg_text("x")));
            }
        }
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

static aw_pg_arg_t *pipe_args;
static int pipe_worker(void *arg) {
    aw_pg_t *db;
    int rc = aw_pool_acquire(pool, (void **)&db, AW_NEVER);
    if (rc < 0)
        return rc;
    rc = aw_pg_pipeline(db, "SELECT $1::int", pipe_args, 1, (int)per, NULL, NULL);
    aw_pool_release(pool, db);
    return rc;
}

typedef struct {
    int mode;               /* 0 select, 1 pipeline, 2 tx, 3 round trip (one task, one connection) */
    long n;
    double ns, cpu;
} run_t;

static int run(void *arg) {
    run_t *r = arg;
    int conns = r->mode == 3 ? 1 : POOL;
    int rc = aw_pool_open(&pool, ops, (void *)dsn, &(aw_pool_opts_t){.min = conns, .max = conns});
    if (rc < 0)
        return rc;
    int tasks = r->mode == 3 ? 1 : r->mode == 1 ? POOL : TASKS;
    per = r->n / tasks;
    if (r->mode == 2) {
        aw_with (aw_pg_t *db, aw_pool_item(pool)) {
            aw_pg_exec(db, "CREATE TABLE IF NOT EXISTS bench_tx (id int, v text)", aw_pg_noargs);
            aw_pg_exec(db, "TRUNCATE bench_tx", aw_pg_noargs);
        }
    }
    double t0 = bench_now(), c0 = bench_cpu();
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < tasks; i++)
            aw_spawn(g, r->mode == 1 ? pipe_worker : r->mode == 2 ? tx_worker : sel_worker,
                     (void *)(intptr_t)i, NULL);
    }
    r->ns = (bench_now() - t0) / (double)(per * tasks);
    r->cpu = (bench_cpu() - c0) / (double)(per * tasks);
    rc = aw_status();
    aw_pool_close(pool, AW_SEC(5));
    return rc;
}

/* pg_select (mode 0) or pg_roundtrip (mode 3) against libpq_sync on
 * `threads` threads, run by run in turn: wall and CPU time per query,
 * medians. */
static void measure_select(int mode, int threads, long n, double *a, double *acpu, double *s,
                           double *scpu) {
    double v[4][BENCH_REPS];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/pg_sync' '%s' %ld %d 2>/dev/null", bench_env("AW_BENCH_PEERS", BENCH_PEER_DIR),
             dsn, n, threads);
    *a = *acpu = *s = *scpu = BENCH_NA;
    for (int i = 0; i < BENCH_REPS; i++) {
        run_t r = {mode, n, 0, 0};
        if (aw_main(run, &r) < 0 || total_bad)
            return;
        double out[2];
        bench_popen_values(cmd, (const char *const[]){"ns", "cpu", NULL}, out);
        if (out[0] < 0 || out[1] < 0)
            return;
        v[0][i] = r.ns;
        v[1][i] = r.cpu;
        v[2][i] = out[0];
        v[3][i] = out[1];
    }
    *a = bench_median(v[0], BENCH_REPS);
    *acpu = bench_median(v[1], BENCH_REPS);
    *s = bench_median(v[2], BENCH_REPS);
    *scpu = bench_median(v[3], BENCH_REPS);
}

static double measure(int mode, long n) {
    double v[BENCH_REPS];
    for (int i = 0; i < BENCH_REPS; i++) {
        run_t r = {mode, n, 0, 0};
        if (aw_main(run, &r) < 0 || total_bad)
            return BENCH_NA;
        v[i] = r.ns;
    }
    return bench_median(v, BENCH_REPS);
}

/* pgbench in pipeline mode: `clients` connections on one thread (as
 * awith's one loop), each running per/K transactions of a script that is
 * one pipeline of K `SELECT $1::int`, in `mode` (-M prepared: named
 * statements; -M extended: unnamed). ns per query from its tps (without
 * the connection time). */
static double pgbench_pipeline(long n, int clients, const char *mode, long k) {
    long per = n / clients;
    if (k > per)
        k = per;
    char script[64];
    snprintf(script, sizeof script, "/tmp/aw-bench-pgbench-%d.sql", (int)getpid());
    FILE *f = fopen(script, "w");
    if (!f)
        return BENCH_NA;
    fprintf(f, "\\startpipeline\n");
    for (long i = 0; i < k; i++)
        fprintf(f, "SELECT :client_id::int;\n");
    fprintf(f, "\\endpipeline\n");
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "PATH=\"$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)\"; "
             "pgbench -n -M %s -c %d -j 1 -t %ld -f '%s' '%s' 2>/dev/null | "
             "sed -n 's/^tps = \\([0-9.]*\\).*/tps=\\1/p'",
             mode, clients, per / k, script, dsn);
    double v[BENCH_REPS];
    int got = 0;
    for (int i = 0; i < BENCH_REPS; i++) {
        double tps = bench_popen_value(cmd, "tps");
        if (tps > 0)
            v[got++] = 1e9 / (tps * (double)k);
    }
    unlink(script);
    return got ? bench_median(v, got) : BENCH_NA;
}

static double python(const char *args) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' %s 2>/dev/null", bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"),
             BENCH_DB_PY, args);
    return bench_popen_value(cmd, "ns");
}

int main(int argc, char **argv) {
    dsn = getenv("AW_TEST_PG_DSN");
    if (!dsn) { /* start a private server and run again under it */
        execl(BENCH_DB_FIXTURE, BENCH_DB_FIXTURE, argv[0], (char *)NULL);
        perror("bench-pg: " BENCH_DB_FIXTURE);
        return 1;
    }
    long n = bench_n(50000), ntx = bench_n(10000);
    char args[600];

    bench_config("wall time, median of 5 on every side, one private server (fsync off), all "
                 "unpinned; roundtrip: 1 task over a pool of 1 against libpq_sync on 1 thread; "
                 "select/tx: %d tasks over a pool of %d; awith: aw_pg_pool_ops (on release it "
                 "resets only the session state that changed: none here, so no round trip), "
                 "statements prepared once per connection; always_reset: aw_pg_pool_ops_reset "
                 "(DISCARD ALL on every release); asyncpg: create_pool(%d), its "
                 "reset on release (one round trip: advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL), "
                 "statement cache; libpq_sync: %d threads, one connection each, PQexecPrepared, no "
                 "pool (it and awith take turns, run by run); cpu: the client process's CPU time per query; pipeline: %d connections on one loop / pgbench -c %d -j 1, -M prepared 50 "
                 "queries per pipeline, -M extended 1,000",
                 TASKS, POOL, POOL, POOL, POOL, POOL);
    double a, acpu, sync, scpu;
    measure_select(3, 1, bench_n(20000), &a, &acpu, &sync, &scpu);
    bench_print("pg_roundtrip_ns", a, (const char *const[]){"libpq_sync", NULL}, (double[]){sync});
    bench_print("pg_roundtrip_cpu_ns", acpu, (const char *const[]){"libpq_sync", NULL}, (double[]){scpu});
    measure_select(0, POOL, n, &a, &acpu, &sync, &scpu);
    snprintf(args, sizeof args, "select '%s' %ld %d %d", dsn, n, TASKS, POOL);
    double py = python(args);
    snprintf(args, sizeof args, "select '%s' %ld %d %d uvloop", dsn, n, TASKS, POOL);
    double uv = python(args);
    bench_print("pg_select_ns", a, (const char *const[]){"asyncpg", "asyncpg_uvloop", "libpq_sync", NULL},
                (double[]){py, uv, sync});
    bench_print("pg_select_cpu_ns", acpu, (const char *const[]){"libpq_sync", NULL}, (double[]){scpu});
    ops = &aw_pg_pool_ops_reset;
    a = measure(0, n);
    ops = &aw_pg_pool_ops;
    bench_print("pg_select_always_reset_ns", a, (const char *const[]){"asyncpg", "asyncpg_uvloop", NULL},
                (double[]){py, uv});

    pipe_args = malloc(sizeof *pipe_args * (size_t)(n / POOL));
    for (long i = 0; i < n / POOL; i++)
        pipe_args[i] = aw_pg_int(i);
    a = measure(1, n);
    double pgp = pgbench_pipeline(n, POOL, "prepared", 50);
    double pge = pgbench_pipeline(n, POOL, "extended", 1000);
    bench_print("pg_pipeline_ns", a,
                (const char *const[]){"pgbench_pipe_prepared", "pgbench_pipe_extended", "libpq_sync", NULL},
                (double[]){pgp, pge, sync});
    free(pipe_args);

    a = measure(2, ntx);
    snprintf(args, sizeof args, "tx '%s' %ld %d %d", dsn, ntx, TASKS, POOL);
    py = python(args);
    snprintf(args, sizeof args, "tx '%s' %ld %d %d uvloop", dsn, ntx, TASKS, POOL);
    uv = python(args);
    bench_print("pg_tx_ns", a, (const char *const[]){"asyncpg", "asyncpg_uvloop", NULL}, (double[]){py, uv});
    return 0;
}
