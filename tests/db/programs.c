/* tests/db/programs.c: whole programs around SQLite, written as a Python
 * user writes an ETL: an exit stack filled in a loop with one input file
 * each, an async generator reading each file line by line, a generator
 * manager holding the transaction, and a failure (a bad value, a
 * constraint, a deadline) at item N. Checked: nothing is committed, every
 * file is closed exactly once, the error chain says where it failed.
 * Lines covered: D1, D2, D5; C4, C6, C7; E9; G1; K5; M3, M5. */
#include <awith/file.h>
#include <awith/sqlite.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char dir[128], dbpath[160], inputs[3][160];
static int fds0;

/* Three input files of "key,value" lines; file `bad` (or -1) has a bad
 * value at its line `bad_line`; `dup` repeats a key of file 0. */
static void make_inputs(int bad, int bad_line, bool dup) {
    aw_test_mkdtemp(dir, sizeof dir, "etl");
    snprintf(dbpath, sizeof dbpath, "%s/etl.db", dir);
    for (int i = 0; i < 3; i++) {
        snprintf(inputs[i], sizeof inputs[i], "%s/in-%d.csv", dir, i);
        FILE *f = fopen(inputs[i], "w");
        cr_assert_not_null(f);
        for (int l = 1; l <= 5; l++) {
            if (i == bad && l == bad_line)
                fprintf(f, "k%d-%d,notanumber\n", i, l);
            else if (dup && i == 2 && l == 3)
                fprintf(f, "k0-1,%d\n", l);
            else
                fprintf(f, "k%d-%d,%d\n", i, l, 10 * i + l);
        }
        fclose(f);
    }
}

/* ---- the pieces of the program ---- */

typedef struct etl {
    aw_sqlite_t *db;
    int tx_enters, tx_exits, tx_saw; /* what the generator's yield returned */
    int closed[3];                   /* files closed, counted by a callback */
    int lines_opened, lines_closed;  /* line generators started and finished */
    int lines_close_rc;              /* what the last line generator saw at its yield */
    int loaded;
    aw_ns_t slow_at;                 /* the item after which the loader sleeps (deadline test) */
} etl_t;
static etl_t E;

/* @asynccontextmanager async def transaction(db): async with db.tx(): yield db */
static int transaction(aw_gencm_t *g, void *arg) {
    etl_t *e = arg;
    e->tx_enters++;
    aw_with (aw_sqlite_tx(e->db)) {
        e->tx_saw = aw_gencm_yield(g, e->db);
    }
    e->tx_exits++;
    return aw_status();
}

/* async def lines(f): the lines of an open file, one by one */
typedef struct line_src {
    aw_file_t *f;
    const char *path;
} line_src_t;
typedef struct line {
    const char *path;
    int lineno;
    char text[128];
} line_t;
static int lines(aw_gen_t *g, void *arg) {
    line_src_t *src = arg;
    E.lines_opened++;
    char buf[1024];
    size_t have = 0;
    line_t l = {.path = src->path};
    int rc = 0;
    for (;;) {
        ssize_t n = aw_file_read(src->f, buf + have, sizeof buf - have - 1);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        have += (size_t)n;
        char *nl;
        while (rc == 0 && (nl = memchr(buf, '\n', have))) {
            size_t len = (size_t)(nl - buf);
            snprintf(l.text, sizeof l.text, "%.*s", (int)len, buf);
            memmove(buf, nl + 1, have - len - 1);
            have -= len + 1;
            l.lineno++;
            rc = aw_gen_yield(g, &l);
        }
        if (rc < 0 || n == 0)
            break;
    }
    E.lines_close_rc = rc;
    E.lines_closed++;
    return rc == -AW_ECLOSED ? 0 : rc;
}

static int count_close(void *arg) {
    (*(int *)arg)++;
    return 0;
}

/* One line into the table: a value that is not a number is the user's
 * own error, saying where. */
static int load_line(etl_t *e, const line_t *l) {
    char key[64];
    char *comma = strchr(l->text, ',');
    if (!comma)
        return aw_raise(-EINVAL, "%s:%d: no comma", l->path, l->lineno);
    snprintf(key, sizeof key, "%.*s", (int)(comma - l->text), l->text);
    char *end;
    long v = strtol(comma + 1, &end, 10);
    if (*end || end == comma + 1)
        return aw_raise(-EINVAL, "%s:%d: '%s' is not a number", l->path, l->lineno, comma + 1);
    if (aw_sqlite_exec(e->db, "INSERT INTO kv VALUES (?, ?)",
                       aw_sqlite_args(aw_sqlite_text(key), aw_sqlite_int(v))) < 0)
        return aw_status();
    if (++e->loaded == e->slow_at)
        return aw_sleep(AW_SEC(5));
    return 0;
}

/* The ETL: every input opened in one exit stack (with a callback counting
 * its close), one transaction around the load, the lines of each file
 * from a generator. Python:
 *     async with AsyncExitStack() as st:
 *         files = []
 *         for i, p in enumerate(paths):
 *             files.append(await st.enter_async_context(aiofiles.open(p)))
 *             st.callback(count_close, i)
 *         async with transaction(db):
 *             for f in files:
 *                 async with aclosing(lines(f)) as it:
 *                     async for l in it: await load_line(l)
 */
static int etl(etl_t *e) {
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        aw_file_t *f[3];
        int i;
        for (i = 0; i < 3; i++) {
            if (aw_exitstack_enter(st, aw_file(inputs[i], O_RDONLY, 0), (void **)&f[i]) < 0)
                break;
            aw_exitstack_callback(st, count_close, &e->closed[i]);
        }
        if (i < 3)
            aw_leave();
        aw_with (aw_gencm(transaction, e)) {
            int rc = 0;
            for (i = 0; i < 3 && rc == 0; i++) {
                line_src_t src = {f[i], inputs[i]};
                aw_for (line_t *l, aw_gen(lines, &src)) {
                    if ((rc = load_line(e, l)) < 0)
                        break;
                }
                if (rc == 0)
                    rc = aw_status();
            }
        }
    }
    return aw_status();
}

static long long committed_rows(void) {
    long long n = -1;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        if (aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs) < 0)
            n = -1;
    }
    return n;
}

static int etl_main(void *arg) {
    int expect = (int)(intptr_t)arg;
    fds0 = aw_test_fds();
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"), 0);
        E.db = db;
        int rc = etl(&E);
        cr_assert_eq(rc, expect, "the ETL ended with %s", aw_err_name(rc));
    }
    cr_assert_eq(aw_test_fds(), fds0, "every file and the database closed");
    return 0;
}

static void check_closed_once(void) {
    for (int i = 0; i < 3; i++)
        cr_assert_eq(E.closed[i], 1, "input %d closed %d times", i, E.closed[i]);
    cr_assert_eq(E.tx_enters, 1);
    cr_assert_eq(E.tx_exits, 1);
    cr_assert_eq(E.lines_opened, E.lines_closed, "every line generator finished");
}

/* The clean run: everything committed. */
static int clean_main(void *arg) {
    etl_main((void *)(intptr_t)0);
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(committed_rows(), 15);
    return aw_status();
}
Test(programs, D1_an_etl_over_three_files_commits_every_line) {
    make_inputs(-1, 0, false);
    aw_test_run(clean_main, NULL, 0);
    check_closed_once();
    cr_assert_eq(E.tx_saw, 0);
    cr_assert_eq(E.lines_opened, 3);
    aw_test_rmtree(dir);
}

/* A bad value at file 1, line 3 (item 8): nothing committed, the error
 * says where, and it is the one object the program raised (C6: the
 * generator re-raised it unchanged). */
static int bad_main(void *arg) {
    etl_main((void *)(intptr_t)-EINVAL);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EINVAL);
    cr_assert(strstr(e->msg, "in-1.csv:3: 'notanumber' is not a number"), "%s", e->msg);
    cr_assert_eq(aw_err_count(e), 1, "one record, nothing added");
    aw_err_clear();
    cr_assert_eq(committed_rows(), 0, "nothing committed");
    return aw_status();
}
Test(programs, M3_an_etl_failing_at_item_n_commits_nothing_and_says_where) {
    make_inputs(1, 3, false);
    aw_test_run(bad_main, NULL, 0);
    check_closed_once();
    cr_assert_eq(E.loaded, 7);
    cr_assert_eq(E.tx_saw, -EINVAL);
    cr_assert_eq(E.lines_opened, 2);
    cr_assert_eq(E.lines_close_rc, -AW_ECLOSED, "the generator was closed at its yield");
    aw_test_rmtree(dir);
}

/* A duplicate key in file 2 (a constraint the database refuses): the
 * error carries SQLite's code through the generator manager and the
 * exit stack. */
static int dup_main(void *arg) {
    etl_main((void *)(intptr_t)-EREMOTEIO);
    const aw_err_t *e = aw_err_find(aw_err_current(), -EREMOTEIO);
    cr_assert_not_null(e);
    cr_assert_eq(e->origin, AW_ORIGIN_SQLITE);
    cr_assert_eq(e->origin_code, 1555 /* SQLITE_CONSTRAINT_PRIMARYKEY */, "%d", e->origin_code);
    cr_assert_eq(aw_err_count(aw_err_current()), 1, "one record");
    aw_err_clear();
    cr_assert_eq(committed_rows(), 0);
    return aw_status();
}
Test(programs, K5_an_etl_hitting_a_constraint_commits_nothing) {
    make_inputs(-1, 0, true);
    aw_test_run(dup_main, NULL, 0);
    check_closed_once();
    cr_assert_eq(E.loaded, 12);
    aw_test_rmtree(dir);
}

/* A deadline over the whole ETL that fires while item 9 is being loaded:
 * -ETIMEDOUT, nothing committed, everything closed. */
static int slow_main(void *arg) {
    E.slow_at = 9;
    fds0 = aw_test_fds();
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"), 0);
        E.db = db;
        aw_with (aw_fail_after(AW_MS(200))) {
            etl(&E);
        }
        const aw_err_t *e = aw_err_current();
        cr_assert_not_null(e);
        cr_assert_eq(e->code, -ETIMEDOUT, "left with %s", aw_err_name(e->code));
        cr_assert_eq(aw_err_count(e), 2, "ETIMEDOUT <- ECANCELED");
        aw_err_clear();
    }
    cr_assert_eq(aw_test_fds(), fds0);
    cr_assert_eq(committed_rows(), 0);
    return aw_status();
}
Test(programs, G1_an_etl_cut_by_its_deadline_commits_nothing) {
    make_inputs(-1, 0, false);
    aw_test_run(slow_main, NULL, 0);
    check_closed_once();
    cr_assert_eq(E.tx_saw, -ECANCELED);
    aw_test_rmtree(dir);
}

/* ======== a TCP service over a pool of SQLite connections ======== */

/* Requests are lines "put KEY" (1 ms of work holding a pooled connection,
 * then the key stored in a transaction under a lock) or "slow KEY" (the
 * work never ends); a client hangs up right after its request;
 * the reply is "ok\n". Shutdown: SIGTERM, then up to 100 ms for the
 * requests in flight, then the rest is cancelled (Trio's
 * move_on_after around the wait for the nursery to drain). */
#include <awith/pool.h>
#include <awith/server.h>
#include <awith/signal.h>
#include <awith/tcp.h>
#include <signal.h>

static int pool_opens, pool_closes;
static int sq_open(void *ctx, void **item) {
    aw_sqlite_t *c;
    if (aw_sqlite_open(&c, dbpath) < 0)
        return aw_status();
    pool_opens++;
    *item = c;
    return 0;
}
static void sq_close(void *ctx, void *item) {
    pool_closes++;
    aw_sqlite_close(item);
}
static const aw_pool_ops_t sq_pool_ops = {"sqlite", sq_open, sq_close, NULL, NULL, NULL};

static aw_pool_t *pool;
static aw_lock_t writer = AW_LOCK_INIT("writer");
static int h_started, h_ended, h_replied, h_write_failed;
static char reports[4096];
static void keep_report(const char *msg, void *arg) {
    (void)arg;
    strncat(reports, msg, sizeof reports - strlen(reports) - 1);
}

static int handler(aw_stream_t *s, void *arg) {
    char line[64];
    h_started++;
    ssize_t n = aw_stream_read_line(s, line, sizeof line);
    if (n <= 0) {
        h_ended++;
        return n < 0 ? aw_status() : 0;
    }
    line[n - 1] = 0;
    if (!strchr(line, ' '))
        return aw_raise(-EINVAL, "request '%s': no key", line);
    bool slow = !strncmp(line, "slow ", 5);
    aw_with (aw_sqlite_t *db, aw_pool_item(pool)) {
        if (aw_sleep(slow ? AW_SEC(5) : AW_MS(1)) < 0) /* the request's work */
            aw_leave();
        aw_with (aw_locked(&writer))
        aw_with (aw_sqlite_tx(db)) {
            if (aw_sqlite_exec(db, "INSERT INTO kv VALUES (?, 1)",
                               aw_sqlite_args(aw_sqlite_text(strchr(line, ' ') + 1))) < 0)
                aw_leave();
            aw_sleep_ms(5);
        }
    }
    if (aw_status() == 0) {
        if (aw_stream_write(s, "ok\n", 3) < 0)
            h_write_failed++;
        else
            h_replied++;
    }
    h_ended++;
    return aw_status();
}

typedef struct svc_client {
    int port;
    const char *req;
    bool hang_up;          /* disconnect right after sending */
    char reply[16];
} svc_client_t;
static int svc_client(void *arg) {
    svc_client_t *c = arg;
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", c->port)) {
        if (aw_stream_write(s, c->req, strlen(c->req)) < 0 || c->hang_up)
            aw_leave();
        ssize_t r = aw_stream_read_line(s, c->reply, sizeof c->reply);
        if (r > 0)
            c->reply[r] = 0;
    }
    aw_err_clear();
    return 0;
}

static svc_client_t cl[4];
static int terminator(void *arg) {
    while (h_replied < 2)
        if (aw_sleep_ms(1) < 0)
            return 0;
    kill(getpid(), SIGTERM);
    return 0;
}
static aw_server_t *served;
static size_t srv_failed, srv_accepted;
static int svc_main(void *arg) {
    fds0 = aw_test_fds();
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"), 0);
    }
    cr_assert_eq(aw_pool_open(&pool, &sq_pool_ops, NULL, &(aw_pool_opts_t){.max = 2}), 0);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    aw_with (aw_group_t *clients, aw_group())
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, handler, NULL)) {
        served = srv;
        int port = aw_listener_port(l);
        cl[0] = (svc_client_t){port, "put a\n"};
        cl[1] = (svc_client_t){port, "slow s\n"};
        cl[2] = (svc_client_t){port, "put b\n", .hang_up = true};
        cl[3] = (svc_client_t){port, "put c\n"};
        aw_with (aw_signals_t *sig, aw_signals(&term)) {
            for (int i = 0; i < 4; i++)
                aw_spawn(clients, svc_client, &cl[i], NULL);
            aw_spawn(clients, terminator, NULL, NULL);
            int signo = 0;
            cr_assert_eq(aw_signals_wait(sig, &signo), 0);
            cr_assert_eq(signo, SIGTERM);
        }
        /* graceful: the requests in flight get 100 ms */
        aw_with (aw_move_on_after(AW_MS(100))) {
            while (srv->active > 0 && aw_sleep_ms(1) == 0)
                ;
        }
        srv_failed = srv->failed;
        srv_accepted = srv->accepted;
    }   /* the server's exit cancels what is left: the slow request */
    cr_assert_eq(aw_status(), 0, "the service left with %s", aw_err_name(aw_status()));
    aw_pool_stats_t st;
    aw_pool_stats(pool, &st);
    cr_assert_eq(st.in_use, 0, "every connection back in the pool");
    cr_assert_eq(aw_pool_close(pool, AW_SEC(1)), 0);
    cr_assert_eq(pool_opens, pool_closes);
    cr_assert_null(aw_lock_owner(&writer));
    cr_assert_eq(aw_test_fds(), fds0, "every socket, database and signalfd closed");
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        long long n = -1, slow = -1;
        aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs);
        aw_sqlite_fetch_int(db, &slow, "SELECT count(*) FROM kv WHERE k = 's'", aw_sqlite_noargs);
        cr_assert_eq(slow, 0, "the cancelled request's transaction rolled back");
        cr_assert_geq(n, 2);
    }
    return aw_status();
}
Test(programs, M1_a_service_over_a_pool_shuts_down_on_sigterm) {
    make_inputs(-1, 0, false);
    aw_loop_opts_t o = {.log = keep_report};
    cr_assert_eq(aw_main_opts(&o, svc_main, NULL), 0);
    cr_assert_str_eq(cl[0].reply, "ok\n");
    cr_assert_str_eq(cl[3].reply, "ok\n");
    cr_assert_str_eq(cl[1].reply, "", "the slow one was cut: %s", cl[1].reply);
    cr_assert_eq(h_started, h_ended, "every handler ended (%d, %d)", h_started, h_ended);
    cr_assert_eq(srv_accepted, 4);
    cr_assert_str_eq(reports, "", "nothing reported: %s", reports);
    aw_test_rmtree(dir);
}

/* ======== probes ======== */

/* An async generator that holds a transaction around its yields: the
 * consumer breaks out (GeneratorExit at the yield), the transaction rolls
 * back; the consumer consumes to the end, it commits. */
static int txg_seen_close;
static int tx_gen(aw_gen_t *g, void *arg) {
    aw_sqlite_t *db = arg;
    int rc = 0;
    aw_with (aw_sqlite_tx(db)) {
        for (int i = 0; i < 5 && rc == 0; i++) {
            if (aw_sqlite_exec(db, "INSERT INTO kv VALUES (?, ?)",
                               aw_sqlite_args(aw_sqlite_int(i), aw_sqlite_int(i))) < 0)
                aw_leave();
            rc = aw_gen_yield(g, &i);
        }
    }
    txg_seen_close = rc;
    return aw_status() == -AW_ECLOSED ? 0 : aw_status();
}
static int txg_main(void *arg) {
    long long n = -1;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        aw_sqlite_script(db, "CREATE TABLE kv (k, v)");
        aw_for (int *i, aw_gen(tx_gen, db)) {
            if (*i == 2)
                break;
        }
        cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
        cr_assert_eq(txg_seen_close, -AW_ECLOSED);
        aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs);
        cr_assert_eq(n, 0, "the break rolled back");
        aw_for (int *i, aw_gen(tx_gen, db)) {
        }
        cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
        aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs);
        cr_assert_eq(n, 5, "the end committed");
        /* the consumer fails inside its loop */
        aw_for (int *i, aw_gen(tx_gen, db)) {
            if (*i == 3) {
                aw_raise(-EINVAL, "consumer: bad item %d", *i);
                break;
            }
        }
        cr_assert_eq(aw_status(), -EINVAL, "%s", aw_err_name(aw_status()));
        cr_assert_eq(aw_err_count(aw_err_current()), 1);
        aw_err_clear();
        aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs);
        cr_assert_eq(n, 5, "the failure rolled back");
    }
    return aw_status();
}
Test(programs, M3_a_generator_holding_a_transaction_rolls_back_on_break) {
    make_inputs(-1, 0, false);
    aw_test_run(txg_main, NULL, 0);
    aw_test_rmtree(dir);
}

/* Savepoints entered into an exit stack in a loop (one per batch): a
 * failure at batch 3 rolls every one back; under a move-on that fires in
 * batch 2, nothing is committed either (the move-on ends the block
 * quietly, but the transaction saw the cancel). */
static int sp_main(void *arg) {
    long long n = -1;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        aw_sqlite_script(db, "CREATE TABLE kv (k, v)");
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            int b;
            for (b = 0; b < 4; b++) {
                if (aw_exitstack_enter(st, aw_sqlite_tx(db), NULL) < 0)
                    break;
                if (aw_sqlite_exec(db, "INSERT INTO kv VALUES (?, 0)", aw_sqlite_args(aw_sqlite_int(b))) < 0)
                    break;
                if (b == 3) {
                    aw_raise(-EIO, "batch %d failed", b);
                    break;
                }
            }
        }
        cr_assert_eq(aw_status(), -EIO, "%s", aw_err_name(aw_status()));
        cr_assert_eq(aw_err_count(aw_err_current()), 1);
        aw_err_clear();
        aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs);
        cr_assert_eq(n, 0);
        aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(20))) {
            aw_with (aw_exitstack_t *st, aw_exitstack()) {
                for (int b2 = 0; b2 < 4; b2++) {
                    if (aw_exitstack_enter(st, aw_sqlite_tx(db), NULL) < 0)
                        break;
                    aw_sqlite_exec(db, "INSERT INTO kv VALUES (?, 1)", aw_sqlite_args(aw_sqlite_int(b2)));
                    if (b2 == 2 && aw_sleep(AW_SEC(5)) < 0)
                        break;
                }
            }
        }
        cr_assert_eq(aw_status(), 0, "%s", aw_err_name(aw_status()));
        aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs);
        cr_assert_eq(n, 0, "a cancelled block does not commit");
        cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO kv VALUES (9, 9)", aw_sqlite_noargs), 1);
        aw_with (aw_sqlite_tx(db)) {
        }
        cr_assert_eq(aw_status(), 0, "no transaction left open: %s", aw_status() ? aw_err_current()->msg : "");
    }
    return aw_status();
}
Test(programs, M5_savepoints_filled_in_a_loop_roll_back_together) {
    make_inputs(-1, 0, false);
    aw_test_run(sp_main, NULL, 0);
    aw_test_rmtree(dir);
}

/* Rows streamed with aw_sqlite_rows inside a transaction, left early by a
 * deadline: the statement is finalized and the next call works. */
static int rows_main(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        aw_sqlite_script(db, "CREATE TABLE kv (k, v); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000) INSERT INTO kv SELECT x, x FROM c");
        int seen = 0;
        aw_with (aw_fail_after(AW_MS(20))) {
            aw_with (aw_sqlite_tx(db)) {
                aw_for (aw_sqlite_res_t *row, aw_sqlite_rows(db, "SELECT k FROM kv", aw_sqlite_noargs)) {
                    seen++;
                    if (aw_sleep_ms(1) < 0)
                        break;
                }
            }
        }
        cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", aw_err_name(aw_status()));
        aw_err_clear();
        cr_assert_geq(seen, 1);
        long long n = -1;
        cr_assert_eq(aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM kv", aw_sqlite_noargs), 0);
        cr_assert_eq(n, 2000);
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "DELETE FROM kv", aw_sqlite_noargs);
        }
        cr_assert_eq(aw_status(), 0, "%s", aw_status() ? aw_err_current()->msg : "");
    }
    return aw_status();
}
Test(programs, G1_rows_streamed_in_a_transaction_cut_by_a_deadline) {
    make_inputs(-1, 0, false);
    aw_test_run(rows_main, NULL, 0);
    aw_test_rmtree(dir);
}

/* Ctrl-C (a real SIGINT, cancel_on_signals) while the ETL loads item 6:
 * aw_main returns -ECANCELED after one line naming the signal; nothing
 * committed, every file closed once. */
static int interrupter_at_6(void *arg) {
    while (E.loaded < 6)
        if (aw_sleep_ms(1) < 0)
            return 0;
    kill(getpid(), SIGINT);
    return 0;
}
static long long committed = -1;
static int committed_rows_task(void *arg) {
    committed = committed_rows();
    return 0;
}
static int sigint_main(void *arg) {
    E.slow_at = 6;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        aw_sqlite_script(db, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)");
    }
    fds0 = aw_test_fds();
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(dbpath)) {
        E.db = db;
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, (aw_task_fn)interrupter_at_6, NULL, NULL);
            etl(&E);
        }
    }
    cr_assert_eq(aw_test_fds(), fds0);
    return aw_status();
}
Test(programs, G1_ctrl_c_during_an_etl_commits_nothing) {
    make_inputs(-1, 0, false);
    aw_loop_opts_t o = {.log = keep_report, .cancel_on_signals = true};
    cr_assert_eq(aw_main_opts(&o, sigint_main, NULL), -ECANCELED);
    check_closed_once();
    cr_assert_eq(E.tx_saw, -ECANCELED);
    cr_assert(strstr(reports, "INT received"), "%s", reports);
    aw_main(committed_rows_task, NULL);
    cr_assert_eq(committed, 0, "nothing committed");
    aw_test_rmtree(dir);
}
