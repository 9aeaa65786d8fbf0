/* bench/db/sqlite.c -> bench-sqlite: SQLite through awith (a cached
 * read stepped inline on the loop thread, anything else on the pool) against synchronous SQLite C calls (the floor: the
 * same statement prepared once, bound, stepped and reset on the calling
 * thread) and aiosqlite (asyncio and uvloop), same run.
 *
 *   sqlite_select_ns      20,000 `SELECT ?` one after another on one
 *                         connection to a file database, wall ns per query
 *   sqlite_select_cpu_ns  the process's CPU time per query, every thread
 *                         counted: the loop and a pool worker each spin a
 *                         while for the other (src/loop/workers.c), which
 *                         buys latency with CPU
 *   sqlite_stall_us       the loop's worst stall while reads of 10 to
 *                         1,000,000 rows run (inline first, the long
 *                         ones sent on to the worker)
 * ratio_<peer> = peer / awith: above 1 means awith is faster. */
#include <awith/sqlite.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>
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

/* The loop's worst stall while reads of every size run: a ticker task
 * sleeps 100 us at a time and records how late it wakes, while the main
 * task counts to 10, 100, ... 1,000,000 (cached statements, so each is
 * tried inline first and the long ones go to the worker once the inline
 * budget runs out). `idle` is the same ticker with nothing else to do:
 * the machine's own lateness. */
#define COUNT_TO "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) " \
                 "SELECT count(*) FROM c"
#define TICKS 100000
typedef struct {
    double late[TICKS];           /* us */
    int n;
    bool stop;
} tick_t;
static int ticker(void *arg) {
    tick_t *t = arg;
    while (!t->stop) {
        aw_ns_t due = aw_now() + AW_US(100);
        if (aw_sleep_until(due) < 0)
            return 0;
        if (t->n < TICKS)
            t->late[t->n++] = (double)(aw_now() - due) / 1e3;
    }
    return 0;
}
static double pct(tick_t *t, double p) {
    if (!t->n)
        return BENCH_NA;
    bench_median(t->late, t->n); /* sorts */
    int i = (int)(p * (t->n - 1));
    return t->late[i];
}
typedef struct {
    tick_t *idle, *busy;
    double hold_max;              /* us of the loop thread's CPU inside one call, worst */
    long hold_n;
} stall_t;
static double thread_cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
/* Count to 10, 100, ... 1,000,000, 20 rounds; with `s`, the worst CPU
 * time the loop thread spent inside one call. */
static int count_all(aw_sqlite_t *db, stall_t *s) {
    for (int rep = 0; rep < 20; rep++)
        for (long n = 10; n <= 1000000; n *= 10) {
            long long v;
            double c0 = s ? thread_cpu_us() : 0;
            if (aw_sqlite_fetch_int(db, &v, COUNT_TO, aw_sqlite_args(aw_sqlite_int(n))) < 0)
                return aw_status();
            if (!s)
                continue;
            /* the inline step (or the attempt cut at its budget) and the
             * submission; scheduling noise excluded */
            double hold = thread_cpu_us() - c0;
            if (hold > s->hold_max)
                s->hold_max = hold;
            s->hold_n++;
        }
    return 0;
}

static int stall(void *arg) {
    stall_t *s = arg;
    tick_t *idle = s->idle, *busy = s->busy;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, ticker, idle, NULL);
        aw_sleep_ms(200);
        idle->stop = true;
    }
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        if (count_all(db, s) < 0) /* alone: the loop thread's CPU is the call's */
            aw_leave();
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, ticker, busy, NULL);
            count_all(db, NULL);
            busy->stop = true;
        }
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
                 "aw_sqlite_fetch_int, statement cached (so stepped inline on the loop thread), "
                 "sqlite_sync: the same statement prepared once, bind/step/reset on the calling "
                 "thread; aiosqlite: one connection (its own thread), execute + fetchone; CPU: "
                 "the whole process, all threads", n);
    const char *peers[] = {"sqlite_sync", "aiosqlite", "aiosqlite_uvloop", NULL};
    bench_print("sqlite_select_ns", a, peers, (double[]){s, py[0], uv[0]});
    bench_print("sqlite_select_cpu_ns", ac, peers, (double[]){scpu, py[1], uv[1]});
    stall_t st = {calloc(1, sizeof(tick_t)), calloc(1, sizeof(tick_t)), 0, 0};
    if (st.idle && st.busy && aw_main(stall, &st) == 0)
        bench_note("sqlite_stall_us",
                   "loop_cpu_per_call_max=%.0f ticker_p99=%.0f ticker_max=%.0f idle_p99=%.0f "
                   "idle_max=%.0f (%ld reads of 10..1,000,000 rows: the loop thread's CPU time inside "
                   "one call, worst; a 100 us ticker's lateness meanwhile, %d ticks; idle: the ticker "
                   "alone, %d ticks: the machine's own noise)",
                   st.hold_max, pct(st.busy, 0.99), pct(st.busy, 1), pct(st.idle, 0.99), pct(st.idle, 1),
                   st.hold_n, st.busy->n, st.idle->n);
    free(st.idle);
    free(st.busy);
    return 0;
}
