/* tests for src/db/sqlite.c: a real SQLite database in a temporary file,
 * run on the thread pool: typed values, errors, transactions, several
 * tasks sharing one connection, cancellation (interrupt) and no leaks. */
#include <awith/sqlite.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include <dlfcn.h>
#include <sqlite3.h>
#include <stdatomic.h>

/* sqlite3_step, interposed (the binary exports it: export_dynamic) to
 * see when the loop's thread and a worker step at once: connections are
 * opened SQLITE_OPEN_NOMUTEX, so a connection must never be used by two
 * threads at a time (one_connection_never_steps_on_two_threads_at_once). */
static _Atomic int steps_on_loop, steps_on_worker;
static _Atomic long steps_crossed;
static __thread int step_depth;
static const char *_Atomic counted_sql; /* its steps are counted in counted_steps */
static _Atomic int counted_steps;
int sqlite3_step(sqlite3_stmt *st) {
    static int (*real)(sqlite3_stmt *);
    if (!real)
        real = (int (*)(sqlite3_stmt *))dlsym(RTLD_NEXT, "sqlite3_step");
    const char *want = counted_sql;
    if (want && sqlite3_sql(st) && !strcmp(sqlite3_sql(st), want))
        counted_steps++;
    bool loop = aw_task_self() != NULL;
    if (step_depth++ == 0) {
        atomic_fetch_add(loop ? &steps_on_loop : &steps_on_worker, 1);
        if (loop ? steps_on_worker > 0 : steps_on_loop > 0)
            atomic_fetch_add(&steps_crossed, 1);
    }
    int r = real(st);
    if (--step_depth == 0)
        atomic_fetch_sub(loop ? &steps_on_loop : &steps_on_worker, 1);
    return r;
}

static int fds0;
static char path[64];

static int in_loop(void *fn) {
    snprintf(path, sizeof path, "/tmp/aw-sqlite-%d.db", (int)getpid());
    unlink(path);
    fds0 = aw_test_fds();
    int rc = ((aw_task_fn)fn)(NULL);
    cr_assert_eq(aw_test_fds(), fds0, "no fd leaked");
    unlink(path);
    return rc;
}
#define SQ_TEST(name, fn) \
    Test(sqlite, name) { aw_test_run(in_loop, (void *)fn, 0); }

static int typed(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n INTEGER)"), 0);
        const char *evil = "x'); DROP TABLE t; --";
        cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                                    aw_sqlite_args(aw_sqlite_int(1LL << 40), aw_sqlite_double(2.5),
                                                   aw_sqlite_text(evil), aw_sqlite_blob("\0\1\2", 3),
                                                   aw_sqlite_null())),
                     1);
        aw_sqlite_res_t *r;
        cr_assert_eq(aw_sqlite_query(db, &r, "SELECT i, d, s, b, n FROM t", aw_sqlite_noargs), 0);
        cr_assert_eq(aw_sqlite_res_rows(r), 1);
        cr_assert_eq(aw_sqlite_res_cols(r), 5);
        cr_assert_str_eq(aw_sqlite_res_name(r, 2), "s");
        long long i;
        double d;
        cr_assert_eq(aw_sqlite_res_int(r, 0, 0, &i), 0);
        cr_assert_eq(i, 1LL << 40);
        cr_assert_eq(aw_sqlite_res_double(r, 0, 1, &d), 0);
        cr_assert(fabs(d - 2.5) < 1e-12);
        cr_assert_str_eq(aw_sqlite_res_text(r, 0, 2), evil, "parameters are never spliced");
        const void *b;
        size_t n;
        cr_assert_eq(aw_sqlite_res_blob(r, 0, 3, &b, &n), 0);
        cr_assert(n == 3 && memcmp(b, "\0\1\2", 3) == 0);
        cr_assert(aw_sqlite_res_isnull(r, 0, 4));
        cr_assert_eq(aw_sqlite_res_int(r, 0, 4, &i), -ENODATA);
        cr_assert_eq(aw_sqlite_res_int(r, 0, 2, &i), -EINVAL);
        cr_assert_eq(aw_sqlite_res_int(r, 1, 0, &i), -ERANGE);
        aw_sqlite_res_free(r);
        cr_assert_eq(aw_sqlite_exec(db, "UPDATE t SET i = i + 1", aw_sqlite_noargs), 1);
        long long v;
        cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT ? + ?", aw_sqlite_args(aw_sqlite_int(40), aw_sqlite_int(2))), 0);
        cr_assert_eq(v, 42);
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(typed_values_and_bound_parameters, typed)

static int errors(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_exec(db, "SELEC 1", aw_sqlite_noargs), -EREMOTEIO);
        cr_assert(strstr(aw_err_current()->msg, "syntax error"), "%s", aw_err_current()->msg);
        aw_err_clear();
        aw_sqlite_script(db, "CREATE TABLE u (k INTEGER PRIMARY KEY)");
        aw_sqlite_exec(db, "INSERT INTO u VALUES (1)", aw_sqlite_noargs);
        cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO u VALUES (1)", aw_sqlite_noargs), -EREMOTEIO);
        cr_assert_eq(aw_sqlite_errcode(db), 1555 /* SQLITE_CONSTRAINT_PRIMARYKEY */);
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    aw_sqlite_t *c;
    cr_assert_eq(aw_sqlite_open(&c, "/nonexistent-dir/x.db"), -ENOENT);
    cr_assert(strstr(aw_err_current()->msg, "/nonexistent-dir/x.db"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}
SQ_TEST(errors_have_codes_and_messages, errors)

/* Issue 12: the record itself carries SQLite's extended result code, so
 * a program tells a unique violation from other -EREMOTEIO failures,
 * also once the error has left a transaction block under it. */
static int origin(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_exec(db, "SELEC 1", aw_sqlite_noargs), -EREMOTEIO);
        cr_assert_eq(aw_err_current()->origin, AW_ORIGIN_SQLITE);
        cr_assert_eq(aw_err_current()->origin_code, 1 /* SQLITE_ERROR */);
        aw_err_clear();
        aw_sqlite_script(db, "CREATE TABLE o (k TEXT UNIQUE)");
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "INSERT INTO o VALUES ('a')", aw_sqlite_noargs);
            aw_sqlite_exec(db, "INSERT INTO o VALUES ('a')", aw_sqlite_noargs);
        }
        const aw_err_t *e = aw_err_find(aw_err_current(), -EREMOTEIO);
        cr_assert_not_null(e);
        cr_assert_eq(e->origin, AW_ORIGIN_SQLITE);
        cr_assert_eq(e->origin_code, 2067 /* SQLITE_CONSTRAINT_UNIQUE */, "got %d", e->origin_code);
        cr_assert_str_eq(e->sqlstate, "");
        aw_err_clear();
    }
    aw_sqlite_t *c;
    cr_assert_eq(aw_sqlite_open(&c, "/nonexistent-dir/x.db"), -ENOENT);
    aw_err_clear();
    return aw_status();
}
SQ_TEST(issue12_the_record_carries_sqlites_extended_code, origin)

static long long count(aw_sqlite_t *db) {
    long long n = -1;
    aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM tx", aw_sqlite_noargs);
    return n;
}

static int transactions(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)");
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
        }
        cr_assert_eq(count(db), 1);
        aw_with (aw_sqlite_tx(db, .immediate = true)) {
            aw_sqlite_exec(db, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            aw_fail(-EIO, "body fails");
        }
        cr_assert_eq(aw_status(), -EIO);
        aw_err_clear();
        cr_assert_eq(count(db), 1, "rolled back");
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "INSERT INTO tx VALUES (3)", aw_sqlite_noargs);
            aw_with (aw_sqlite_tx(db)) {
                aw_sqlite_exec(db, "INSERT INTO tx VALUES (4)", aw_sqlite_noargs);
                aw_fail(-EIO, "inner fails");
            }
            aw_err_clear();
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(count(db), 2, "savepoint rolled back, outer committed");
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(transactions_commit_roll_back_and_nest, transactions)

#define SLOW "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) " \
             "SELECT count(*) FROM c"

static int cancel(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)");
        aw_with (aw_move_on_after(AW_MS(30))) {
            aw_with (aw_sqlite_tx(db)) {
                aw_sqlite_exec(db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
                long long v;
                cr_assert_eq(aw_sqlite_fetch_int(db, &v, SLOW, aw_sqlite_noargs), -ECANCELED);
            }
        }
        cr_assert_eq(aw_status(), 0);
        long long v;
        cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT 7", aw_sqlite_noargs), 0,
                     "usable once the interrupted statement wound down");
        cr_assert_eq(v, 7);
        cr_assert_eq(count(db), 0, "the transaction was rolled back");
        /* close right after a cancel: the database closes when the call ends */
        aw_with (aw_move_on_after(AW_MS(10))) {
            aw_sqlite_fetch_int(db, &v, SLOW, aw_sqlite_noargs);
        }
    }
    cr_assert_eq(aw_status(), 0);
    /* wait for the interrupted job to finish and close the file */
    for (int i = 0; i < 1000 && aw_test_fds() != fds0; i++)
        aw_sleep_ms(5);
    return 0;
}
SQ_TEST(cancel_interrupts_the_statement_and_rolls_back, cancel)

static aw_sqlite_t *shared;
static int adder(void *arg) {
    for (int i = 0; i < 50; i++)
        if (aw_sqlite_exec(shared, "UPDATE n SET v = v + 1", aw_sqlite_noargs) < 0)
            return aw_status();
    return 0;
}
static int sharing(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        shared = db;
        aw_sqlite_script(db, "CREATE TABLE n (v INTEGER); INSERT INTO n VALUES (0)");
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < 8; i++)
                aw_spawn(g, adder, NULL, NULL);
        }
        cr_assert_eq(aw_status(), 0);
        long long v;
        aw_sqlite_fetch_int(db, &v, "SELECT v FROM n", aw_sqlite_noargs);
        cr_assert_eq(v, 400, "one call at a time per connection");
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(tasks_sharing_a_connection_take_turns, sharing)

static int rows(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        long long sum = 0;
        int n = 0;
        aw_for (aw_sqlite_res_t *row,
                aw_sqlite_rows(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                                   "SELECT x, 'r' || x FROM c",
                               aw_sqlite_args(aw_sqlite_int(1000)))) {
            long long v;
            cr_assert_eq(aw_sqlite_res_rows(row), 1);
            cr_assert_eq(aw_sqlite_res_int(row, 0, 0, &v), 0);
            char want[16];
            snprintf(want, sizeof want, "r%lld", v);
            cr_assert_str_eq(aw_sqlite_res_text(row, 0, 1), want);
            sum += v;
            n++;
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(n, 1000, "across several batches");
        cr_assert_eq(sum, 500500);
        n = 0;
        aw_for (aw_sqlite_res_t *row,
                aw_sqlite_rows(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
                               aw_sqlite_noargs)) {
            if (++n == 600)
                break; /* an endless query, left early: finalized */
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(n, 600);
        aw_for (aw_sqlite_res_t *row, aw_sqlite_rows(db, "SELEC", aw_sqlite_noargs)) {
            cr_assert_fail("no rows");
        }
        cr_assert_eq(aw_status(), -EREMOTEIO);
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(row_generator_fetches_in_batches_and_finalizes_early, rows)

#ifndef NDEBUG
/* Issue 11, 2.1: an allocation that fails while a result is built (the
 * column names among them) gives -ENOMEM and frees what was built; no
 * crash, no leak (ASan), and the connection stays usable. The library's
 * test-only counter fails the N-th allocation of result building; the
 * sweep covers every one of them (result, names array, each name, the
 * cells, each text), through aw_sqlite_query and the row generator. */
extern _Atomic int aw__sqlite_fail_alloc;

static int oom(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (a TEXT, b TEXT, c BLOB);"
                                          "INSERT INTO t VALUES ('a1', 'b1', x'01'), ('a2', 'b2', x'02'),"
                                          "('a3', 'b3', x'03'), ('a4', 'b4', x'04'), ('a5', 'b5', x'05')"),
                     0);
        int failed = 0, n;
        for (n = 1; n < 200; n++) {
            aw__sqlite_fail_alloc = n;
            aw_sqlite_res_t *r = (aw_sqlite_res_t *)1;
            int rc = aw_sqlite_query(db, &r, "SELECT a, b, c FROM t", aw_sqlite_noargs);
            bool fired = aw__sqlite_fail_alloc == 0;
            aw__sqlite_fail_alloc = 0;
            if (!fired) { /* past the last allocation: a whole result */
                cr_assert_eq(rc, 0);
                cr_assert_eq(aw_sqlite_res_rows(r), 5);
                cr_assert_str_eq(aw_sqlite_res_name(r, 2), "c");
                aw_sqlite_res_free(r);
                break;
            }
            cr_assert_eq(rc, -ENOMEM, "allocation %d failed: -ENOMEM, got %d", n, rc);
            cr_assert_null(r, "allocation %d: no half-built result handed out", n);
            cr_assert(strstr(aw_err_current()->msg, "out of memory"), "%s", aw_err_current()->msg);
            aw_err_clear();
            failed++;
            long long v;
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT count(*) FROM t", aw_sqlite_noargs), 0,
                         "usable after allocation %d failed", n);
            cr_assert_eq(v, 5);
        }
        /* result, names array, 3 names, cells, 5 * 3 values */
        cr_assert_geq(failed, 21, "every allocation was swept (%d)", failed);
        /* the row generator builds its batches the same way */
        for (int k = 1; k <= 3; k++) {
            int rows = 0;
            aw__sqlite_fail_alloc = k; /* 2: the names array */
            aw_for (aw_sqlite_res_t *row, aw_sqlite_rows(db, "SELECT a, b FROM t", aw_sqlite_noargs))
                rows++;
            aw__sqlite_fail_alloc = 0;
            cr_assert_eq(aw_status(), -ENOMEM, "generator, allocation %d", k);
            cr_assert_eq(rows, 0);
            aw_err_clear();
        }
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(allocation_failure_while_building_a_result_is_ENOMEM, oom)
#endif

/* Issue 10, 1 (decision 7): a cancel landing at any cancellation point of
 * a transaction block's enter (BEGIN, or a nested SAVEPOINT, in flight on
 * the thread pool) leaves the connection outside any transaction, or the
 * block was entered and its exit ran. Checked after each cut: an
 * autocommit INSERT is committed (a second connection sees it) and the
 * next transaction works. */
static aw_sqlite_t *txdb;
static bool tx_nest;

static int tx_child(void *arg) {
    aw_with (aw_sqlite_tx(txdb)) {
        if (aw_sqlite_exec(txdb, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs) < 0)
            aw_leave();
        if (tx_nest) {
            aw_with (aw_sqlite_tx(txdb)) {
                aw_sqlite_exec(txdb, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
            }
        }
    }
    return aw_status();
}

/* Run tx_child, cancelled at its k-th cancellation point; its status. */
static int run_cut(int k) {
    aw_task_t *h;
    int rc;
    aw_trace_set(aw_test_cancel_hook, NULL);
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_spawn(g, tx_child, NULL, &h), 0);
        aw_test_cancel_at.target = h;
        aw_test_cancel_at.points = 0;
        aw_test_cancel_at.k = k;
        rc = aw_task_join(h);
        aw_err_clear();
    }
    aw_trace_set(NULL, NULL);
    aw_err_clear();
    return rc;
}

static int tx_cut(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        aw_with (aw_sqlite_t *other, aw_sqlite_connect(path)) {
            txdb = db;
            cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)"), 0);
            for (int nest = 0; nest < 2; nest++) {
                tx_nest = nest;
                int k;
                for (k = 1; k < 100; k++) {
                    int rc = run_cut(k);
                    long long v;
                    cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs), 1);
                    cr_assert_eq(aw_sqlite_fetch_int(other, &v, "SELECT count(*) FROM tx WHERE v = 2",
                                                     aw_sqlite_noargs), 0);
                    cr_assert_eq(v, k, "nest %d, cut at %d: the autocommit INSERT is committed", nest, k);
                    aw_with (aw_sqlite_tx(db)) {
                        aw_sqlite_exec(db, "INSERT INTO tx VALUES (3)", aw_sqlite_noargs);
                    }
                    cr_assert_eq(aw_status(), 0, "nest %d, cut at %d: the next transaction works: %s", nest,
                                 k, aw_err_current() ? aw_err_current()->msg : "");
                    if (rc == 0)
                        break; /* past the last point: ran whole */
                    cr_assert_eq(rc, -ECANCELED);
                }
                cr_assert_gt(k, 2, "cuts landed inside enter");
                cr_assert_lt(k, 100);
                aw_sqlite_exec(db, "DELETE FROM tx", aw_sqlite_noargs);
            }
        }
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(M1_cancel_at_every_point_of_tx_enter_leaves_no_transaction, tx_cut)

/* Issue 11, 2.7: a transaction begun by hand is not adopted. */
static int tx_manual(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)");
        cr_assert_eq(aw_sqlite_exec(db, "BEGIN", aw_sqlite_noargs), 0);
        aw_sqlite_exec(db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
        aw_with (aw_sqlite_tx(db)) {
            cr_assert_fail("refused: the block does not run");
        }
        cr_assert_eq(aw_status(), -EINVAL);
        cr_assert(strstr(aw_err_current()->msg, "begun by hand"), "%s", aw_err_current()->msg);
        aw_err_clear();
        cr_assert_eq(count(db), 1, "the user's transaction is untouched");
        cr_assert_geq(aw_sqlite_exec(db, "COMMIT", aw_sqlite_noargs), 0, "and still the user's to end");
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(count(db), 2);
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(i11_2_7_tx_refuses_a_transaction_begun_by_hand, tx_manual)

/* Issue 10 item 2: transactions (and connections) entered in a loop into
 * an exit stack: each aw_sqlite_tx(...) is its own manager (BEGIN, then
 * two savepoints), each exits once in reverse, and the connection ends
 * outside any transaction. */
static int tx_in_a_stack(void *arg) {
    char p2[80];
    snprintf(p2, sizeof p2, "%s-2", path);
    unlink(p2);
    const char *paths[2] = {path, p2};
    aw_sqlite_t *db[2];
    aw_with (aw_exitstack_t *cs, aw_exitstack()) {
        for (int i = 0; i < 2; i++)
            cr_assert_eq(aw_exitstack_enter(cs, aw_sqlite_connect(paths[i]), (void **)&db[i]), 0);
        cr_assert(db[0] != db[1], "two connections");
        aw_sqlite_script(db[0], "CREATE TABLE tx (v INTEGER)");
        aw_sqlite_script(db[1], "CREATE TABLE tx (v INTEGER)");
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            for (int i = 0; i < 3; i++) {
                cr_assert_eq(aw_exitstack_enter(st, aw_sqlite_tx(db[0]), NULL), 0, "tx %d", i);
                cr_assert_eq(aw_sqlite_exec(db[0], "INSERT INTO tx VALUES (1)", aw_sqlite_noargs), 1);
            }
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(count(db[0]), 3, "every level committed");
        cr_assert_eq(count(db[1]), 0, "the other database is another one");
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            for (int i = 0; i < 3; i++)
                aw_exitstack_enter(st, aw_sqlite_tx(db[0]), NULL);
            aw_sqlite_exec(db[0], "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            aw_fail(-EIO, "body fails");
        }
        cr_assert_eq(aw_status(), -EIO);
        aw_err_clear();
        cr_assert_eq(count(db[0]), 3, "rolled back at every level");
        aw_with (aw_sqlite_tx(db[0])) { /* no transaction left open */
            aw_sqlite_exec(db[0], "INSERT INTO tx VALUES (3)", aw_sqlite_noargs);
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(count(db[0]), 4);
    }
    cr_assert_eq(aw_status(), 0);
    unlink(p2);
    return 0;
}
SQ_TEST(M5_transactions_and_connections_entered_in_a_loop_are_distinct, tx_in_a_stack)

/* A connection left open is reported at loop close, and aw_main fails
 * with -EBUSY (issue 10 item 9). */
#include "../capture.h"
static aw_sqlite_t *leaked_db;
static int leave_sqlite_open(void *arg) {
    cr_assert_eq(aw_sqlite_open(&leaked_db, ":memory:"), 0);
    return 0; /* never closed: the loop's report says so */
}
Test(sqlite, M9_a_connection_left_open_is_reported_at_loop_close) {
    char err[2048];
    cr_assert_eq(aw_test_main_stderr(leave_sqlite_open, NULL, err, sizeof err), -EBUSY);
    cr_assert(strstr(err, "sqlite connection ':memory:' was never closed"), "stderr: %s", err);
    aw_sqlite_close(leaked_db); /* after the loop: frees it, the record is gone already */
}

/* Issue 14, 3: the optimistic inline step. A cached read-only statement
 * is stepped on the loop thread within a budget; one that runs past it,
 * or finds the database locked, is reset and run on the worker as before.
 * The library's test-only counters (debug builds) tell which way a query
 * went. */
#ifndef NDEBUG
extern _Atomic long aw__sqlite_inline_runs, aw__sqlite_inline_fallbacks, aw__sqlite_loop_busy_sleeps;

#define COUNT_TO "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) " \
                 "SELECT count(*) FROM c"

static int inline_reads(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (i INTEGER, s TEXT)"), 0);
        long long v;
        long runs = aw__sqlite_inline_runs;
        cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT ?", aw_sqlite_args(aw_sqlite_int(1))), 0);
        cr_assert_eq(aw__sqlite_inline_runs, runs, "a first use is prepared on the worker");
        cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT ?", aw_sqlite_args(aw_sqlite_int(42))), 0);
        cr_assert_eq(v, 42);
        cr_assert_eq(aw__sqlite_inline_runs, runs + 1, "the cached read ran inline");
        /* fetch_int's own errors, inline as on the worker */
        cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT ?", aw_sqlite_args(aw_sqlite_null())), -ENODATA);
        aw_err_clear();
        cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT ?", aw_sqlite_args(aw_sqlite_text("x"))), -EINVAL);
        aw_err_clear();
        /* writes never run inline */
        runs = aw__sqlite_inline_runs;
        for (int i = 0; i < 3; i++)
            cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO t VALUES (?, ?)",
                                        aw_sqlite_args(aw_sqlite_int(i), aw_sqlite_text("row"))), 1);
        cr_assert_eq(aw__sqlite_inline_runs, runs);
        /* a whole result, inline: rows, names, text copied out */
        aw_sqlite_res_t *r;
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(aw_sqlite_query(db, &r, "SELECT i, s FROM t WHERE i >= ? ORDER BY i",
                                         aw_sqlite_args(aw_sqlite_int(1))), 0);
            cr_assert_eq(aw_sqlite_res_rows(r), 2);
            cr_assert_str_eq(aw_sqlite_res_name(r, 1), "s");
            cr_assert_str_eq(aw_sqlite_res_text(r, 1, 1), "row");
            aw_sqlite_res_free(r);
        }
        cr_assert_eq(aw__sqlite_inline_runs, runs + 1);
        /* an error found inline is reported as the worker reports it */
        cr_assert_eq(aw_sqlite_query(db, &r, "SELECT ?", aw_sqlite_args(aw_sqlite_int(1), aw_sqlite_int(2))),
                     -EREMOTEIO);
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(inline_a_cached_read_runs_on_the_loop_thread, inline_reads)

static long ticks;
static int ticker(void *arg) {
    for (;;) {
        if (aw_sleep_ms(1) < 0)
            return 0;
        ticks++;
    }
}

static int inline_long(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, ticker, NULL, NULL);
            long long v;
            for (int k = 0; k < 2; k++) /* prepared, then cached: inline */
                cr_assert_eq(aw_sqlite_fetch_int(db, &v, COUNT_TO, aw_sqlite_args(aw_sqlite_int(10))), 0);
            long runs = aw__sqlite_inline_runs, falls = aw__sqlite_inline_fallbacks;
            cr_assert_eq(runs > 0, true);
            long t0 = ticks;
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, COUNT_TO, aw_sqlite_args(aw_sqlite_int(3000000))), 0);
            cr_assert_eq(v, 3000000);
            cr_assert_eq(aw__sqlite_inline_fallbacks, falls + 1, "interrupted inline, run on the worker");
            cr_assert_gt(ticks, t0, "the loop ran the ticker while the long query ran");
            /* the statement goes straight to the worker for a while */
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, COUNT_TO, aw_sqlite_args(aw_sqlite_int(10))), 0);
            cr_assert_eq(v, 10);
            cr_assert_eq(aw__sqlite_inline_runs, runs);
            aw_group_cancel(g);
        }
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(inline_a_long_read_runs_on_the_worker_and_the_loop_stays_responsive, inline_long)

/* A read interrupted by the inline budget inside an explicit transaction
 * rolls nothing back (only an interrupted write would end the
 * transaction, which is why writes never run inline). */
static int inline_in_tx(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)");
        long long v;
        for (int k = 0; k < 2; k++)
            aw_sqlite_fetch_int(db, &v, COUNT_TO, aw_sqlite_args(aw_sqlite_int(10)));
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
            long falls = aw__sqlite_inline_fallbacks;
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, COUNT_TO, aw_sqlite_args(aw_sqlite_int(3000000))), 0);
            cr_assert_eq(aw__sqlite_inline_fallbacks, falls + 1);
            cr_assert_eq(count(db), 1, "the transaction's insert is still there");
        }
        cr_assert_eq(aw_status(), 0, "and it commits");
        cr_assert_eq(count(db), 1);
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(inline_an_interrupted_read_inside_a_transaction_keeps_it, inline_in_tx)

/* A locked database: the inline attempt gets SQLITE_BUSY at once (no busy
 * wait on the loop thread) and the worker waits with the busy timeout
 * until the lock goes. */
static aw_sqlite_t *locker;
static bool committing;
static int unlock_later(void *arg) {
    aw_sleep_ms(50);
    committing = true;
    aw_sqlite_exec(locker, "COMMIT", aw_sqlite_noargs);
    return aw_status();
}

static int inline_busy(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        aw_sqlite_script(db, "CREATE TABLE t (i INTEGER); INSERT INTO t VALUES (1)");
        long long v;
        for (int k = 0; k < 2; k++)
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT count(*) FROM t", aw_sqlite_noargs), 0);
        aw_with (aw_sqlite_t *db2, aw_sqlite_connect(path)) {
            locker = db2;
            cr_assert_eq(aw_sqlite_exec(db2, "BEGIN EXCLUSIVE", aw_sqlite_noargs), 0);
            aw_with (aw_group_t *g, aw_group()) {
                aw_spawn(g, unlock_later, NULL, NULL);
                aw_spawn(g, ticker, NULL, NULL);
                long falls = aw__sqlite_inline_fallbacks, t0 = ticks;
                cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT count(*) FROM t", aw_sqlite_noargs), 0,
                             "waited for the lock on the worker");
                cr_assert_eq(v, 1);
                cr_assert(committing, "it returned only once the lock went");
                cr_assert_eq(aw__sqlite_inline_fallbacks, falls + 1);
                cr_assert_gt(ticks, t0, "the loop ran meanwhile");
                cr_assert_eq(aw__sqlite_loop_busy_sleeps, 0, "no busy wait on the loop's thread");
                aw_group_cancel(g);
            }
        }
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(inline_a_busy_database_waits_on_the_worker, inline_busy)

/* Inline queries do not suspend: a task querying in a loop still lets
 * the others run (a yield every few queries). */
static bool other_ran;
static int other(void *arg) {
    other_ran = true;
    return 0;
}
static int inline_fair(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        long long v;
        aw_sqlite_fetch_int(db, &v, "SELECT 1", aw_sqlite_noargs);
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, other, NULL, NULL);
            long runs = aw__sqlite_inline_runs;
            for (int i = 0; i < 100; i++)
                aw_sqlite_fetch_int(db, &v, "SELECT 1", aw_sqlite_noargs);
            cr_assert_eq(aw__sqlite_inline_runs, runs + 100);
            cr_assert(other_ran, "the other task ran while this one queried inline");
        }
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}
SQ_TEST(inline_queries_in_a_row_let_other_tasks_run, inline_fair)
#endif

/* A write interrupted inside a transaction block makes SQLite roll the
 * whole transaction back (sqlite.org/c3ref/interrupt.html). A block that
 * handles the cut (a move_on_after inside it) and goes on must not have
 * its later statements run in autocommit mode, each committed at once:
 * the block then fails at COMMIT ("no transaction is active") with its
 * work half committed. They fail instead, as PostgreSQL's do in an
 * aborted transaction (25P02), and nothing of the block is committed. */
#define SLOW_WRITE "INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) " \
                   "SELECT x FROM c LIMIT 1000000000"

static int cut_write(void *arg) {
    for (int nest = 0; nest < 2; nest++) {
        unlink(path);
        aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
            aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER); CREATE TABLE big (v INTEGER)");
            long long after = 0;
            aw_with (aw_sqlite_tx(db)) {
                aw_sqlite_exec(db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
                aw_with (aw_move_on_after(AW_MS(50))) {
                    if (nest) {
                        aw_with (aw_sqlite_tx(db))
                            aw_sqlite_exec(db, SLOW_WRITE, aw_sqlite_noargs);
                    } else {
                        aw_sqlite_exec(db, SLOW_WRITE, aw_sqlite_noargs);
                    }
                }
                cr_assert_eq(aw_status(), 0);
                after = aw_sqlite_exec(db, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
                if (after < 0)
                    aw_leave();
            }
            cr_assert_lt(aw_status(), 0, "nest %d: the block failed (its transaction is gone)", nest);
            if (after < 0)
                cr_assert_eq(after, -EREMOTEIO, "nest %d: %lld", nest, after);
            aw_err_clear();
            cr_assert_eq(count(db), 0, "nest %d: nothing of the failed block is committed", nest);
            aw_with (aw_sqlite_tx(db))
                aw_sqlite_exec(db, "INSERT INTO tx VALUES (3)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), 0, "nest %d: the next transaction works: %s", nest,
                         aw_err_current() ? aw_err_current()->msg : "");
            cr_assert_eq(count(db), 1);
        }
        cr_assert_eq(aw_status(), 0);
    }
    return 0;
}
SQ_TEST(K3_a_write_cut_inside_a_transaction_leaves_nothing_committed, cut_write)

/* One connection shared by two tasks: a reader of short cached queries
 * (stepped inline on the loop's thread) and a writer of long statements
 * (on a worker) that pauses between them. The reader's query must not be
 * stepped on the loop's thread while the writer's runs on the worker:
 * the connection is NOMUTEX. (The reader's yield every
 * AW__SQ_YIELD_EVERY inline queries let the writer start its job after
 * the reader had found the connection idle.) */
static aw_sqlite_t *two_db;
static int two_done;
static int two_writer(void *arg) {
    for (int i = 0; i < 10; i++) {
        aw_sleep(AW_US(300));
        cr_assert_geq(aw_sqlite_exec(two_db, "INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                                             "SELECT x + 1 FROM c) SELECT x FROM c LIMIT 100000",
                                     aw_sqlite_noargs), 0);
    }
    two_done = 1;
    return 0;
}
static int two_reader(void *arg) {
    while (!two_done) {
        long long v;
        cr_assert_eq(aw_sqlite_fetch_int(two_db, &v, "SELECT 42", aw_sqlite_noargs), 0);
        cr_assert_eq(v, 42);
    }
    return 0;
}
static int two_threads(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        two_db = db;
        aw_sqlite_script(db, "CREATE TABLE big (v INTEGER)");
        steps_crossed = 0;
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, two_reader, NULL, NULL);
            aw_spawn(g, two_writer, NULL, NULL);
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(steps_crossed, 0, "%ld statements were stepped on the loop's thread and a worker at once",
                     (long)steps_crossed);
    }
    return aw_status();
}
SQ_TEST(one_connection_never_steps_on_two_threads_at_once, two_threads)

/* A COMMIT that fails (SQLITE_BUSY: a reader's shared lock outlived the
 * busy timeout) leaves SQLite's transaction open: the block failed, so
 * its exit rolls back, as Python's sqlite3 does for `with conn:` ("commit
 * failed; try to rollback in order to unlock the database"). Otherwise
 * the block's writes stay pending on the connection, its write lock
 * stays held, and the next aw_sqlite_tx is refused as "begun by hand". */
static int commit_busy(void *arg) {
    aw_with (aw_sqlite_t *w, aw_sqlite_connect(path)) {
        aw_sqlite_script(w, "CREATE TABLE tx (v INTEGER)");
        aw_with (aw_sqlite_t *r, aw_sqlite_connect(path)) {
            long long n;
            cr_assert_eq(aw_sqlite_exec(r, "BEGIN", aw_sqlite_noargs), 0);
            cr_assert_eq(aw_sqlite_fetch_int(r, &n, "SELECT count(*) FROM tx", aw_sqlite_noargs), 0);
            aw_with (aw_sqlite_tx(w))
                aw_sqlite_exec(w, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), -EBUSY, "COMMIT failed: the reader holds its lock");
            aw_err_clear();
            cr_assert_eq(aw_sqlite_exec(r, "COMMIT", aw_sqlite_noargs), 0);
            long long c0 = count(r);
            cr_assert_eq(c0, 0, "nothing of the failed block is committed (count %lld: %s)", c0,
                         aw_err_current() ? aw_err_current()->msg : "");
            aw_with (aw_sqlite_tx(w))
                aw_sqlite_exec(w, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), 0, "the next transaction works: %s",
                         aw_err_current() ? aw_err_current()->msg : "");
            cr_assert_eq(count(r), 1);
        }
    }
    return aw_status();
}
SQ_TEST(K3_a_commit_that_fails_rolls_back_and_leaves_no_transaction, commit_busy)

/* A COMMIT cut by the exit's grace (a reader's lock keeps it waiting)
 * leaves the transaction open, with nobody left to end it. The exit
 * could not roll back through the pool (its grace was over), so it is
 * undone at once, or before the connection's next call when a job is
 * still in flight, as for an abandoned BEGIN (decision 7). Before, the
 * next aw_sqlite_tx was refused ("begun by hand") and the block's write
 * stayed pending on the connection. */
static int commit_grace(void *arg) {
    aw_with (aw_sqlite_t *w, aw_sqlite_connect(path)) {
        aw_sqlite_script(w, "CREATE TABLE tx (v INTEGER)");
        aw_with (aw_sqlite_t *r, aw_sqlite_connect(path)) {
            long long n;
            cr_assert_eq(aw_sqlite_exec(r, "BEGIN", aw_sqlite_noargs), 0);
            cr_assert_eq(aw_sqlite_fetch_int(r, &n, "SELECT count(*) FROM tx", aw_sqlite_noargs), 0);
            aw_with (aw_sqlite_tx(w))
                aw_sqlite_exec(w, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), -ETIMEDOUT, "the exit overran its grace");
            aw_err_clear();
            aw_sleep(AW_MS(5500)); /* past the busy timeout (5 s) */
            cr_assert_eq(aw_sqlite_exec(r, "COMMIT", aw_sqlite_noargs), 0);
            aw_with (aw_sqlite_tx(w))
                aw_sqlite_exec(w, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), 0, "the next transaction works: %s",
                         aw_err_current() ? aw_err_current()->msg : "");
            cr_assert_eq(count(r), 1, "nothing of the failed block is committed");
        }
    }
    return aw_status();
}
Test(sqlite, K3_a_commit_cut_by_the_grace_is_rolled_back_before_the_next_call) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(200)};
    cr_assert_eq(aw_main_opts(&o, in_loop, (void *)commit_grace), 0);
}

/* A COMMIT cut by the exit's grace whose lock frees up within the busy
 * timeout: sqlite3_interrupt does not stop a busy wait, so before, the
 * COMMIT went on waiting on its worker and committed the block's write
 * once the reader ended, although the block had reported -ETIMEDOUT. A
 * block that failed commits nothing: the busy wait stops when its caller
 * gives up, the COMMIT fails, and the transaction is rolled back. */
static int commit_grace_late(void *arg) {
    aw_with (aw_sqlite_t *w, aw_sqlite_connect(path)) {
        aw_sqlite_script(w, "CREATE TABLE tx (v INTEGER)");
        aw_with (aw_sqlite_t *r, aw_sqlite_connect(path)) {
            long long n;
            cr_assert_eq(aw_sqlite_exec(r, "BEGIN", aw_sqlite_noargs), 0);
            cr_assert_eq(aw_sqlite_fetch_int(r, &n, "SELECT count(*) FROM tx", aw_sqlite_noargs), 0);
            aw_with (aw_sqlite_tx(w))
                aw_sqlite_exec(w, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), -ETIMEDOUT, "the exit overran its grace");
            aw_err_clear();
            aw_sleep(AW_MS(300)); /* the grace is over; the busy timeout (5 s) is not */
            cr_assert_eq(aw_sqlite_exec(r, "COMMIT", aw_sqlite_noargs), 0, "the reader's lock frees up");
            aw_sleep(AW_MS(300)); /* a COMMIT still waiting would get the lock now */
            long long c0 = count(r);
            cr_assert_eq(c0, 0, "the failed block committed nothing (count %lld)", c0);
            aw_with (aw_sqlite_tx(w))
                aw_sqlite_exec(w, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), 0, "the next transaction works: %s",
                         aw_err_current() ? aw_err_current()->msg : "");
            cr_assert_eq(count(r), 1);
        }
    }
    return aw_status();
}
Test(sqlite, K3_a_commit_cut_by_the_grace_never_commits_later) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(200)};
    cr_assert_eq(aw_main_opts(&o, in_loop, (void *)commit_grace_late), 0);
}

/* M1 under contention: BEGIN IMMEDIATE waiting for another writer's lock
 * is cut by a deadline (or a move-on). The caller leaves at once; the
 * BEGIN goes on on its worker and, once the lock comes free, begins, and
 * is undone before the connection's next call: the next transaction
 * works, and nothing of the cut block is committed. */
static int begin_busy(void *arg) {
    aw_with (aw_sqlite_t *a, aw_sqlite_connect(path)) {
        aw_sqlite_script(a, "CREATE TABLE tx (v INTEGER)");
        aw_with (aw_sqlite_t *b, aw_sqlite_connect(path)) {
            cr_assert_eq(aw_sqlite_exec(a, "BEGIN IMMEDIATE", aw_sqlite_noargs), 0);
            aw_with (aw_fail_after(AW_MS(50))) {
                aw_with (aw_sqlite_tx(b, .immediate = true))
                    aw_sqlite_exec(b, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
            }
            cr_assert_eq(aw_status(), -ETIMEDOUT);
            aw_err_clear();
            cr_assert_eq(aw_sqlite_exec(a, "COMMIT", aw_sqlite_noargs), 0);
            aw_with (aw_sqlite_tx(b, .immediate = true))
                aw_sqlite_exec(b, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
            cr_assert_eq(count(a), 1, "only the second block");
            cr_assert_eq(aw_sqlite_exec(a, "BEGIN IMMEDIATE", aw_sqlite_noargs), 0);
            aw_with (aw_move_on_after(AW_MS(50))) {
                aw_with (aw_sqlite_tx(b))
                    aw_sqlite_exec(b, "INSERT INTO tx VALUES (3)", aw_sqlite_noargs);
            }
            cr_assert_eq(aw_status(), 0);
            cr_assert_eq(aw_sqlite_exec(a, "COMMIT", aw_sqlite_noargs), 0);
            cr_assert_eq(count(b), 1, "nothing of the cut block");
            aw_with (aw_sqlite_tx(b))
                aw_sqlite_exec(b, "INSERT INTO tx VALUES (4)", aw_sqlite_noargs);
            cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
            cr_assert_eq(count(a), 2);
        }
    }
    return aw_status();
}
SQ_TEST(M1_a_begin_cut_while_another_writer_holds_the_lock_is_undone, begin_busy)

/* Two tasks entering transaction blocks on one shared connection: the
 * second task's block would be a savepoint of the first's transaction,
 * whose COMMIT would commit what the failed block wrote. The second task
 * is refused at enter (-EBUSY, naming the owner); the owner's transaction
 * commits only its own work, and the connection is usable after. */
static aw_sqlite_t *own_db;
static int own_b_rc;
static char own_b_msg[256];
/* A's block is open / B has tried: events, not sleeps (on a busy machine
 * B could try after A's block had ended) */
static aw_event_t own_a_in = AW_EVENT_INIT, own_b_tried = AW_EVENT_INIT;

static int owner_a(void *arg) {
    aw_with (aw_sqlite_tx(own_db)) {
        aw_sqlite_exec(own_db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
        aw_event_set(&own_a_in);
        aw_event_wait(&own_b_tried); /* B tries while A's block is open */
        aw_sqlite_exec(own_db, "INSERT INTO tx VALUES (3)", aw_sqlite_noargs);
    }
    return aw_status();
}

static bool own_b_at_once; /* B enters while A's BEGIN is in flight */

static int intruder_b(void *arg) {
    if (!own_b_at_once)
        aw_event_wait(&own_a_in);
    aw_with (aw_sqlite_tx(own_db)) {
        aw_sqlite_exec(own_db, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
        aw_fail(-EIO, "B's block fails");
    }
    own_b_rc = aw_status();
    snprintf(own_b_msg, sizeof own_b_msg, "%s", aw_err_current() ? aw_err_current()->msg : "");
    aw_err_clear();
    aw_event_set(&own_b_tried);
    return 0;
}

static int tx_owner(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        own_db = db;
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)"), 0);
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, owner_a, NULL, NULL);
            aw_spawn(g, intruder_b, NULL, NULL);
        }
        cr_assert_eq(aw_status(), 0, "A committed");
        cr_assert_eq(own_b_rc, -EBUSY, "B refused at enter: %d", own_b_rc);
        cr_assert(strstr(own_b_msg, "belongs to task 'owner_a'"), "%s", own_b_msg);
        cr_assert(strstr(own_b_msg, "tests/db/sqlite.c:"), "%s", own_b_msg);
        long long n = -1, sum = -1;
        aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM tx WHERE v = 2", aw_sqlite_noargs);
        cr_assert_eq(n, 0, "B's failed block committed nothing");
        aw_sqlite_fetch_int(db, &sum, "SELECT sum(v) FROM tx", aw_sqlite_noargs);
        cr_assert_eq(sum, 4, "A's work committed");
        aw_with (aw_sqlite_tx(db)) { /* depth back to 0: a new BEGIN */
            aw_sqlite_exec(db, "INSERT INTO tx VALUES (10)", aw_sqlite_noargs);
        }
        cr_assert_eq(aw_status(), 0);
        aw_sqlite_fetch_int(db, &sum, "SELECT sum(v) FROM tx", aw_sqlite_noargs);
        cr_assert_eq(sum, 14);
    }
    return aw_status();
}
SQ_TEST(K3_another_tasks_block_on_a_shared_connection_is_refused, tx_owner)

/* The same, B entering while A's BEGIN is still in flight: B's BEGIN
 * waits for A's, then finds A's transaction; refused as A's, not as a
 * transaction "begun by hand". */
static int tx_owner_at_once(void *arg) {
    own_b_at_once = true;
    return tx_owner(arg);
}
SQ_TEST(K3_another_tasks_block_entered_during_the_owners_begin_is_refused, tx_owner_at_once)

/* A task that ended with its transaction entered into its parent's exit
 * stack: the parent unwinds it (exits run whoever runs them), and the
 * transaction commits; a block the parent enters meanwhile is refused
 * (the owner is gone; ownership does not move). */
static aw_exitstack_t *own_st;

static int enter_into_stack(void *arg) {
    cr_assert_eq(aw_exitstack_enter(own_st, aw_sqlite_tx(own_db), NULL), 0);
    return aw_sqlite_exec(own_db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs) < 0 ? -EIO : 0;
}

static int tx_owner_gone(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        own_db = db;
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)"), 0);
        aw_with (aw_exitstack_t *st, aw_exitstack()) {
            own_st = st;
            aw_with (aw_group_t *g, aw_group()) {
                aw_spawn(g, enter_into_stack, NULL, NULL);
            }
            cr_assert_eq(aw_status(), 0);
            aw_with (aw_sqlite_tx(db)) {
                aw_sqlite_exec(db, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            }
            cr_assert_eq(aw_status(), -EBUSY, "the parent is not the owner");
            cr_assert(strstr(aw_err_current()->msg, "enter_into_stack"), "%s", aw_err_current()->msg);
            aw_err_clear();
        }
        cr_assert_eq(aw_status(), 0, "the parent exits the gone task's block: COMMIT");
        long long sum = -1;
        aw_sqlite_fetch_int(db, &sum, "SELECT sum(v) FROM tx", aw_sqlite_noargs);
        cr_assert_eq(sum, 1);
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "INSERT INTO tx VALUES (10)", aw_sqlite_noargs);
        }
        cr_assert_eq(aw_status(), 0, "depth back to 0: the parent may begin anew");
    }
    return aw_status();
}
SQ_TEST(K3_a_gone_tasks_transaction_is_exited_by_its_stack_not_reentered, tx_owner_gone)

/* A generator manager holding a transaction around its yield: the block
 * runs in the task that uses it, so a nested block there is the same
 * task's (a savepoint), not another task's refused one. */
static int tx_gen(aw_gencm_t *g, void *arg) {
    aw_with (aw_sqlite_tx(own_db)) {
        aw_sqlite_exec(own_db, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
        aw_gencm_yield(g, own_db);
    }
    return aw_status();
}

static int tx_owner_gencm(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        own_db = db;
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE tx (v INTEGER)"), 0);
        aw_with (aw_sqlite_t *d, aw_gencm(tx_gen, NULL)) {
            aw_with (aw_sqlite_tx(d)) {
                aw_sqlite_exec(d, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
            }
            cr_assert_eq(aw_status(), 0, "the user's own nested block: %s",
                         aw_err_current() ? aw_err_current()->msg : "");
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(count(db), 2);
    }
    return aw_status();
}
SQ_TEST(K3_a_generator_managers_transaction_nests_in_its_user, tx_owner_gencm)

/* ---- a service: handlers in transactions when SIGTERM comes ---- */

#include <signal.h>
#include <sys/wait.h>

static int svc_in_tx, svc_exits;
static char svc_log[1024];
static void svc_hook(const char *msg, void *a) { strncat(svc_log, msg, sizeof svc_log - strlen(svc_log) - 1); }

/* Each request: its own connection, a transaction, a write (the second
 * waits for the first's lock), then a wait that only SIGTERM ends. */
static int svc_handler(aw_stream_t *s, void *arg) {
    char line[16];
    if (aw_stream_read_line(s, line, sizeof line) <= 0)
        return aw_status();
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path))
    aw_with (aw_sqlite_tx(db)) {
        svc_in_tx++;
        if (aw_sqlite_exec(db, "INSERT INTO t VALUES (1)", aw_sqlite_noargs) < 0)
            aw_leave();
        aw_sleep(AW_NEVER);
    }
    svc_exits++;
    return aw_status();
}

static int svc_client(void *arg) {
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", (int)(intptr_t)arg)) {
        aw_stream_write(s, "go\n", 3);
        char c;
        aw_stream_read(s, &c, 1);
    }
    aw_err_clear();
    return 0;
}

static int svc_main(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path))
        aw_sqlite_exec(db, "CREATE TABLE t (x INTEGER)", aw_sqlite_noargs);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, svc_handler, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        for (int i = 0; i < 3; i++)
            aw_spawn(g, svc_client, (void *)(intptr_t)aw_listener_port(l), NULL);
        while (svc_in_tx < 3 && aw_sleep(AW_MS(1)) == 0)
            ;
        aw_sleep(AW_MS(20)); /* the first write done, the others waiting on its lock */
        pid_t pid = fork();
        if (pid == 0) {
            kill(getppid(), SIGTERM);
            _exit(0);
        }
        aw_sleep(AW_NEVER);
        waitpid(pid, NULL, 0);
    }
    return aw_status();
}

static int svc_check(void *arg) {
    long long n = -1;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM t", aw_sqlite_noargs), 0);
        aw_with (aw_sqlite_tx(db, .immediate = true))
            aw_sqlite_exec(db, "INSERT INTO t VALUES (2)", aw_sqlite_noargs);
        cr_assert_eq(aw_status(), 0, "no lock left behind: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
    }
    cr_assert_eq(n, 0, "every transaction cut by SIGTERM rolled back");
    return aw_status();
}

Test(sqlite, A1_sigterm_rolls_back_every_handlers_transaction) {
    snprintf(path, sizeof path, "/tmp/aw-sqlite-%d.db", (int)getpid());
    unlink(path);
    int fds = aw_test_fds();
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = svc_hook};
    cr_assert_eq(aw_main_opts(&o, svc_main, NULL), -ECANCELED);
    cr_assert(strstr(svc_log, "TERM received"), "%s", svc_log);
    cr_assert_eq(svc_exits, 3, "every handler's exits ran");
    cr_assert_eq(aw_main(svc_check, NULL), 0);
    cr_assert_eq(aw_test_fds(), fds);
    unlink(path);
}
/* K3: a transaction manager kept and entered again inside its own block
 * is refused (-EBUSY); when the outer block then fails, everything in it
 * is rolled back. Before, the inner block took the outer's level: the
 * outer's rollback found nothing to undo (-EREMOTEIO on top) and the rows
 * written inside it stayed committed. Entered again after its block, it
 * begins anew (A17). */
static long long sq_count(aw_sqlite_t *db) {
    long long n = -1;
    aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM t", NULL, 0);
    return n;
}
static int tx_again(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(":memory:")) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (v int)"), 0);
        aw_cm_t tx = aw_sqlite_tx(db);
        int ran = 0, st = 0;
        aw_with (tx) {
            aw_sqlite_exec(db, "INSERT INTO t VALUES (1)", NULL, 0);
            aw_with (tx) {
                ran = 1;
                aw_sqlite_exec(db, "INSERT INTO t VALUES (2)", NULL, 0);
            }
            st = aw_status();
            aw_err_clear();
            aw_fail(-EIO, "the outer block fails");
        }
        const aw_err_t *e = aw_err_current();
        cr_assert_eq(ran, 0, "the inner block must not run");
        cr_assert_eq(st, -EBUSY, "got %s", aw_err_name(st));
        cr_assert_not_null(e);
        cr_assert_eq(e->code, -EIO, "the block's own error, got %s", aw_err_name(e->code));
        aw_err_clear();
        cr_assert_eq(sq_count(db), 0, "the failed block's rows were rolled back");
        aw_with (tx) {
            aw_sqlite_exec(db, "INSERT INTO t VALUES (3)", NULL, 0);
        }
        cr_assert_eq(aw_status(), 0, "entered again after its block");
        cr_assert_eq(sq_count(db), 1);
    }
    return aw_status();
}
SQ_TEST(K3_a_transaction_block_entered_again_inside_itself_is_refused, tx_again)

/* Decision 5: a call runs one statement. SQL that holds two is refused
 * with -EINVAL, and neither runs, as Python's sqlite3 refuses it ("You
 * can only execute one statement at a time"). Before, SQLite compiled the
 * first and the rest was dropped without a word: the second INSERT never
 * happened and the call returned 1. Trailing blanks, comments and
 * semicolons are not a statement. */
static int two_statements(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (v INTEGER)"), 0);
        long long r = aw_sqlite_exec(db, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", aw_sqlite_noargs);
        cr_assert_eq(r, -EINVAL, "got %lld", r);
        cr_assert(strstr(aw_err_current()->msg, "more than one statement"), "%s", aw_err_current()->msg);
        aw_err_clear();
        cr_assert_eq(sq_count(db), 0, "neither statement ran");
        aw_sqlite_res_t *res = NULL;
        cr_assert_eq(aw_sqlite_query(db, &res, "SELECT 1; DELETE FROM t", aw_sqlite_noargs), -EINVAL);
        cr_assert_null(res);
        aw_err_clear();
        int n = 0, st = 0;
        aw_for (aw_sqlite_res_t *row, aw_sqlite_rows(db, "SELECT 1; SELECT 2", aw_sqlite_noargs))
            n += row != NULL;
        st = aw_status();
        cr_assert_eq(st, -EINVAL, "the row generator refuses it too, got %s", aw_err_name(st));
        cr_assert_eq(n, 0);
        aw_err_clear();
        cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO t VALUES (3);  -- done\n ; /* end */ ", aw_sqlite_noargs), 1);
        cr_assert_eq(sq_count(db), 1);
    }
    return aw_status();
}
SQ_TEST(decision5_sql_holding_two_statements_is_refused_not_cut_short, two_statements)

/* Decision 5: arguments must match the statement's parameters in
 * number. One short was bound as NULL without a word (SQLite leaves an
 * unbound parameter NULL): the row was written with a NULL where a value
 * was meant. Now it fails with -EREMOTEIO (SQLITE_RANGE, as one too many
 * already did) and writes nothing, as Python's sqlite3 refuses it
 * ("Incorrect number of bindings supplied"); the same when the statement
 * is cached and runs inline. */
static int too_few_args(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (k INTEGER, v TEXT)"), 0);
        long long r = aw_sqlite_exec(db, "INSERT INTO t VALUES (?, ?)", aw_sqlite_args(aw_sqlite_int(1)));
        cr_assert_eq(r, -EREMOTEIO, "got %lld", r);
        cr_assert(strstr(aw_err_current()->msg, "2 parameters and 1 argument"), "%s", aw_err_current()->msg);
        cr_assert_eq(aw_sqlite_errcode(db), SQLITE_RANGE);
        aw_err_clear();
        cr_assert_eq(sq_count(db), 0, "nothing written");
        long long v;
        for (int k = 0; k < 3; k++) { /* the first on the worker, then cached and inline */
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT count(*) FROM t WHERE k = ? OR k = ?",
                                             aw_sqlite_args(aw_sqlite_int(1))), -EREMOTEIO);
            aw_err_clear();
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT count(*) FROM t WHERE k = ? OR k = ?",
                                             aw_sqlite_args(aw_sqlite_int(1), aw_sqlite_int(2))), 0);
        }
        int n = 0;
        aw_for (aw_sqlite_res_t *row, aw_sqlite_rows(db, "SELECT ?, ?", aw_sqlite_args(aw_sqlite_int(1))))
            n += row != NULL;
        cr_assert_eq(aw_status(), -EREMOTEIO, "the row generator refuses it too");
        cr_assert_eq(n, 0);
        aw_err_clear();
    }
    return aw_status();
}
SQ_TEST(decision5_an_argument_short_is_refused_not_bound_as_null, too_few_args)

/* aw_sqlite_exec returns the rows its own statement changed.
 * sqlite3_changes keeps the last INSERT/UPDATE/DELETE's count, so a
 * SELECT, a CREATE or a BEGIN after an INSERT of 3 rows returned 3 (and a
 * SELECT's result said 3 changes), where nothing changed. */
static int own_changes(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (v INTEGER)"), 0);
        cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO t SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3",
                                    aw_sqlite_noargs), 3);
        cr_assert_eq(aw_sqlite_exec(db, "SELECT v FROM t", aw_sqlite_noargs), 0);
        cr_assert_eq(aw_sqlite_exec(db, "CREATE TABLE u (x)", aw_sqlite_noargs), 0);
        for (int k = 0; k < 2; k++) { /* on the worker, then inline */
            aw_sqlite_res_t *r;
            cr_assert_eq(aw_sqlite_query(db, &r, "SELECT v FROM t", aw_sqlite_noargs), 0);
            cr_assert_eq(aw_sqlite_res_changes(r), 0);
            aw_sqlite_res_free(r);
        }
        cr_assert_eq(aw_sqlite_exec(db, "UPDATE t SET v = v + 1 WHERE v > 1", aw_sqlite_noargs), 2);
        cr_assert_eq(aw_sqlite_exec(db, "DELETE FROM t WHERE v > 100", aw_sqlite_noargs), 0);
    }
    return aw_status();
}
SQ_TEST(exec_returns_the_rows_its_own_statement_changed, own_changes)

/* sqlite.h: -EBUSY means "locked past the busy timeout (5 s)", however
 * many writers wait. Each call runs on the loop's pool (4 threads), and a
 * writer waiting for another connection's lock slept on its thread (the
 * busy timeout): 4 of them took every thread, the lock holder's COMMIT
 * queued behind them until their 5 s ran out, and they failed with
 * "database is locked" although the holder was done after 50 ms
 * (aiosqlite's thread per connection lets them all succeed). The wait now
 * happens on the loop, between tries; the pool's threads stay free. */
static int busy_writer(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        if (aw_sqlite_exec(db, "INSERT INTO t VALUES (2)", aw_sqlite_noargs) < 0)
            aw_leave();
    }
    return aw_status();
}
static int busy_holder(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (v INTEGER)"), 0);
        aw_with (aw_group_t *g, aw_group()) {
            aw_with (aw_sqlite_tx(db, .immediate = true)) {
                aw_sqlite_exec(db, "INSERT INTO t VALUES (1)", aw_sqlite_noargs);
                for (int i = 0; i < 8; i++)
                    aw_spawn(g, busy_writer, NULL, NULL);
                aw_sleep(AW_MS(50)); /* every writer waits for the lock now */
            }
            cr_assert_eq(aw_status(), 0, "the holder commits: %s", aw_err_current() ? aw_err_current()->msg : "");
        }
        cr_assert_eq(aw_status(), 0, "every writer got the lock: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        cr_assert_eq(sq_count(db), 9);
    }
    return aw_status();
}
SQ_TEST(EBUSY_only_past_the_busy_timeout_however_many_writers_wait, busy_holder)

/* K3: a COMMIT that SQLite refuses (a deferred foreign key still
 * violated) is the block's error, and the block commits nothing: SQLite
 * leaves the transaction open after such a COMMIT, and the exit rolls it
 * back, as Python's `with conn:` does. Nested, the inner block's RELEASE
 * does not check the key; the outer COMMIT does, and undoes both. */
static int fk_commit(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "PRAGMA foreign_keys=ON; CREATE TABLE p (id INTEGER PRIMARY KEY);"
                                          "CREATE TABLE t (pid INTEGER REFERENCES p(id) "
                                          "DEFERRABLE INITIALLY DEFERRED)"), 0);
        aw_with (aw_sqlite_tx(db)) {
            cr_assert_eq(aw_sqlite_exec(db, "INSERT INTO t VALUES (42)", aw_sqlite_noargs), 1,
                         "deferred: the insert itself passes");
        }
        const aw_err_t *e = aw_err_find(aw_err_current(), -EREMOTEIO);
        cr_assert_not_null(e, "the COMMIT's failure is the block's error");
        cr_assert_eq(e->origin_code, SQLITE_CONSTRAINT_FOREIGNKEY, "got %d", e->origin_code);
        aw_err_clear();
        cr_assert_eq(sq_count(db), 0, "nothing committed");
        int inner = -1;
        aw_with (aw_sqlite_tx(db)) {
            aw_with (aw_sqlite_tx(db))
                aw_sqlite_exec(db, "INSERT INTO t VALUES (43)", aw_sqlite_noargs);
            inner = aw_status();
            aw_sqlite_exec(db, "INSERT INTO p VALUES (1)", aw_sqlite_noargs);
        }
        cr_assert_eq(inner, 0);
        cr_assert_not_null(aw_err_find(aw_err_current(), -EREMOTEIO));
        aw_err_clear();
        cr_assert_eq(sq_count(db), 0, "nothing committed");
        long long n = -1;
        cr_assert_eq(aw_sqlite_fetch_int(db, &n, "SELECT count(*) FROM p", aw_sqlite_noargs), 0);
        cr_assert_eq(n, 0, "the outer block's own row neither");
        aw_with (aw_sqlite_tx(db)) {
            aw_sqlite_exec(db, "INSERT INTO t VALUES (2)", aw_sqlite_noargs);
            aw_sqlite_exec(db, "INSERT INTO p VALUES (2)", aw_sqlite_noargs);
        }
        cr_assert_eq(aw_status(), 0, "no transaction left behind: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        cr_assert_eq(sq_count(db), 1);
    }
    return aw_status();
}
SQ_TEST(K3_a_commit_refused_by_a_deferred_foreign_key_commits_nothing, fk_commit)

/* M1: an enter cut while its BEGIN IMMEDIATE is in flight releases what
 * the BEGIN took, its write lock included, at once. Before, a BEGIN that
 * began on its worker after its caller left was undone only before the
 * connection's next call: until then it kept the database's write lock,
 * and a writer on another connection waited out its busy timeout and
 * failed with -EBUSY (the connection of a handler whose deadline cut its
 * enter may stay idle for ever). */
static aw_sqlite_t *cut_b;
static int cut_begin_child(void *arg) {
    aw_with (aw_sqlite_tx(cut_b, .immediate = true))
        aw_sqlite_exec(cut_b, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
    return aw_status();
}
static int cut_begin(void *arg) {
    aw_with (aw_sqlite_t *a, aw_sqlite_connect(path))
    aw_with (aw_sqlite_t *b, aw_sqlite_connect(path)) {
        cut_b = b;
        cr_assert_eq(aw_sqlite_script(a, "CREATE TABLE tx (v INTEGER)"), 0);
        int k, rc = -1;
        for (k = 1; k < 50 && rc != 0; k++) {
            aw_task_t *h;
            aw_trace_set(aw_test_cancel_hook, NULL);
            aw_with (aw_group_t *g, aw_group()) {
                cr_assert_eq(aw_spawn(g, cut_begin_child, NULL, &h), 0);
                aw_test_cancel_at.target = h;
                aw_test_cancel_at.points = 0;
                aw_test_cancel_at.k = k;
                rc = aw_task_join(h);
                aw_err_clear();
            }
            aw_trace_set(NULL, NULL);
            aw_err_clear();
            /* b makes no call: its lock must be gone without one */
            cr_assert_eq(aw_sqlite_exec(a, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs), 1,
                         "cut at %d: another connection writes: %s", k,
                         aw_err_current() ? aw_err_current()->msg : "");
        }
        cr_assert_gt(k, 3, "cuts landed inside enter");
        long long n = -1;
        cr_assert_eq(aw_sqlite_fetch_int(a, &n, "SELECT count(*) FROM tx WHERE v = 1", aw_sqlite_noargs), 0);
        cr_assert_eq(n, 1, "only the block that ran whole committed");
    }
    return aw_status();
}
SQ_TEST(M1_a_begin_cut_in_flight_releases_its_lock_without_a_next_call, cut_begin)

/* Decision 1: a cancel ends at its scope. A query cut inside a
 * move-on block, in the body of a row loop on the same connection, was
 * stopped with sqlite3_interrupt, which stops every statement of the
 * connection and stays in force while any of them is active (SQLite
 * clears it only once none is): the row loop's statement, open between
 * two batches, kept it. So the next query, outside the cancelled scope,
 * failed with -ECANCELED ("interrupted"), and the row loop ended after
 * its first batch of 256 rows with -ECANCELED, though nothing cancelled
 * it. Now only the cut statement is stopped. */
static int scoped_interrupt(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        int n = 0, cut = 0, after = -1;
        long long v = 0;
        aw_for (aw_sqlite_res_t *row,
                aw_sqlite_rows(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                   "WHERE x < 1000) SELECT x FROM c", aw_sqlite_noargs)) {
            if (n++ == 0) {
                aw_with (aw_move_on_after(AW_MS(20)))
                    cut = aw_sqlite_fetch_int(db, &v, SLOW, aw_sqlite_noargs);
                after = aw_sqlite_fetch_int(db, &v, "SELECT 5", aw_sqlite_noargs);
                if (after < 0)
                    aw_leave();
            }
        }
        cr_assert_eq(cut, -ECANCELED);
        cr_assert_eq(after, 0, "the next query is not cancelled: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        cr_assert_eq(v, 5);
        cr_assert_eq(aw_status(), 0, "the row loop is not cancelled: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        cr_assert_eq(n, 1000);
    }
    return aw_status();
}
SQ_TEST(decision1_a_cut_query_stops_no_other_statement_of_its_connection, scoped_interrupt)

/* Decision 1, the same for a script cut in a row loop's body: it was
 * stopped with sqlite3_interrupt too (its statements may each be too
 * short for the progress handler), and the flag outlived it the same
 * way. Now the script's statements run one by one, and it stops before
 * the next when its caller left. */
static int scoped_interrupt_script(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        /* as sqlite3_exec: empty statements and comments are skipped */
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE s (v INTEGER);; ; INSERT INTO s VALUES (1); -- c\n"
                                          " /* x */ INSERT INTO s VALUES (2); "), 0);
        long long m = 0;
        cr_assert_eq(aw_sqlite_fetch_int(db, &m, "SELECT count(*) FROM s", aw_sqlite_noargs), 0);
        cr_assert_eq(m, 2);
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (v INTEGER)"), 0);
        int n = 0, cut = 0, after = -1;
        long long v = 0;
        aw_for (aw_sqlite_res_t *row,
                aw_sqlite_rows(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                   "WHERE x < 1000) SELECT x FROM c", aw_sqlite_noargs)) {
            if (n++ == 0) {
                aw_with (aw_move_on_after(AW_MS(20)))
                    cut = aw_sqlite_script(db, "INSERT INTO t VALUES (1); " SLOW "; INSERT INTO t VALUES (2)");
                after = aw_sqlite_fetch_int(db, &v, "SELECT count(*) FROM t", aw_sqlite_noargs);
                if (after < 0)
                    aw_leave();
            }
        }
        cr_assert_eq(cut, -ECANCELED);
        cr_assert_eq(after, 0, "the next query is not cancelled: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        cr_assert_eq(v, 1, "the script stopped at its cut statement");
        cr_assert_eq(aw_status(), 0, "the row loop is not cancelled: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        cr_assert_eq(n, 1000);
    }
    return aw_status();
}
SQ_TEST(decision1_a_cut_script_stops_no_other_statement_of_its_connection, scoped_interrupt_script)

/* Only a statement that failed on a lock waits and runs again. SQLite
 * also asks the busy handler while a big transaction tries to spill its
 * cache (a reader's lock stops it; it keeps the pages in memory and goes
 * on), so a statement that asked it and then failed for another reason
 * (here a UNIQUE violation) was run again and again for the whole busy
 * timeout (5 s), then reported. */
#define SPILL_SQL "INSERT INTO u SELECT x % 150, randomblob(3000) FROM " \
                  "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x FROM c)"
static int busy_only(void *arg) {
    aw_with (aw_sqlite_t *w, aw_sqlite_connect(path))
    aw_with (aw_sqlite_t *r, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(w, "CREATE TABLE u (k INTEGER UNIQUE, v BLOB); PRAGMA cache_size=10"), 0);
        long long n;
        cr_assert_eq(aw_sqlite_exec(r, "BEGIN", aw_sqlite_noargs), 0);
        cr_assert_eq(aw_sqlite_fetch_int(r, &n, "SELECT count(*) FROM u", aw_sqlite_noargs), 0);
        long long rc = 0;
        aw_with (aw_sqlite_tx(w)) {
            counted_sql = SPILL_SQL;
            counted_steps = 0;
            rc = aw_sqlite_exec(w, SPILL_SQL, aw_sqlite_noargs);
            counted_sql = NULL;
        }
        cr_assert_eq(rc, -EREMOTEIO);
        cr_assert_eq(aw_sqlite_errcode(w), SQLITE_CONSTRAINT_UNIQUE, "got %d", aw_sqlite_errcode(w));
        aw_err_clear();
        cr_assert_eq(counted_steps, 1, "the failed INSERT ran once, got %d", (int)counted_steps);
        cr_assert_eq(aw_sqlite_exec(r, "COMMIT", aw_sqlite_noargs), 0);
    }
    return aw_status();
}
SQ_TEST(EBUSY_only_a_statement_failed_on_a_lock_runs_again, busy_only)

/* sqlite.h: one call at a time per connection, also while a call waits
 * for a lock on the loop. A COMMIT waiting for a reader's lock between
 * two tries let another task's call on the same connection run: its
 * transaction block was refused ("begun by hand": the first block's
 * transaction was still open), and a plain statement would have joined
 * the transaction being committed. Now the next call waits for the
 * COMMIT to end, as it did when the COMMIT waited on its worker. */
static aw_sqlite_t *turn_w;
static int turn_status[2] = {-1, -1};
static int turn_block(void *arg) {
    int i = (int)(intptr_t)arg;
    aw_with (aw_sqlite_tx(turn_w))
        aw_sqlite_exec(turn_w, "INSERT INTO tx VALUES (?)", aw_sqlite_args(aw_sqlite_int(i)));
    turn_status[i] = aw_status();
    aw_err_clear();
    return 0;
}
static int one_call_while_waiting(void *arg) {
    aw_with (aw_sqlite_t *w, aw_sqlite_connect(path))
    aw_with (aw_sqlite_t *r, aw_sqlite_connect(path)) {
        turn_w = w;
        cr_assert_eq(aw_sqlite_script(w, "CREATE TABLE tx (v INTEGER)"), 0);
        long long n;
        cr_assert_eq(aw_sqlite_exec(r, "BEGIN", aw_sqlite_noargs), 0);
        cr_assert_eq(aw_sqlite_fetch_int(r, &n, "SELECT count(*) FROM tx", aw_sqlite_noargs), 0);
        aw_with (aw_group_t *g, aw_group()) {
            counted_steps = 0;
            counted_sql = "COMMIT";
            aw_spawn(g, turn_block, (void *)0, NULL);
            while (counted_steps < 2) /* its COMMIT waits for r's lock */
                aw_sleep(AW_MS(1));
            aw_spawn(g, turn_block, (void *)1, NULL);
            aw_sleep(AW_MS(20));
            cr_assert_eq(aw_sqlite_exec(r, "COMMIT", aw_sqlite_noargs), 0);
        }
        counted_sql = NULL;
        cr_assert_eq(turn_status[0], 0);
        cr_assert_eq(turn_status[1], 0, "the second block waits for the first's COMMIT, got %s",
                     aw_err_name(turn_status[1]));
        cr_assert_eq(count(w), 2);
    }
    return aw_status();
}
SQ_TEST(EBUSY_one_call_at_a_time_while_a_commit_waits_for_a_lock, one_call_while_waiting)

/* The same for readers: row loops waiting for a lock (BEGIN EXCLUSIVE
 * on another connection keeps every reader out) waited on their pool
 * threads, the lock holder's COMMIT queued behind them, and they failed
 * with -EBUSY after 5 s. A row loop's first batch (no row has gone out
 * yet) now waits on the loop too. */
static int busy_reader(void *arg) {
    int n = 0;
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path))
        aw_for (aw_sqlite_res_t *row, aw_sqlite_rows(db, "SELECT v FROM t", aw_sqlite_noargs))
            n += row != NULL;
    cr_assert(aw_status() < 0 || n == 2, "got %d rows", n);
    return aw_status();
}
static int busy_readers(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (0)"), 0);
        aw_with (aw_group_t *g, aw_group()) {
            cr_assert_eq(aw_sqlite_exec(db, "BEGIN EXCLUSIVE", aw_sqlite_noargs), 0);
            aw_sqlite_exec(db, "INSERT INTO t VALUES (1)", aw_sqlite_noargs);
            for (int i = 0; i < 8; i++)
                aw_spawn(g, busy_reader, NULL, NULL);
            aw_sleep(AW_MS(50)); /* every reader waits for the lock now */
            cr_assert_eq(aw_sqlite_exec(db, "COMMIT", aw_sqlite_noargs), 0, "%s",
                         aw_err_current() ? aw_err_current()->msg : "");
        }
        cr_assert_eq(aw_status(), 0, "every reader got the lock: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
    }
    return aw_status();
}
SQ_TEST(EBUSY_only_past_the_busy_timeout_however_many_row_loops_wait, busy_readers)

/* The same for scripts: 8 scripts waiting for a writer's lock took the
 * pool, and failed with -EBUSY after 5 s. A script's statement that finds
 * the lock now waits on the loop and runs again, from that statement on
 * (the ones before it ran once). */
static int busy_script(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path))
        aw_sqlite_script(db, "INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)");
    return aw_status();
}
static int busy_scripts(void *arg) {
    aw_with (aw_sqlite_t *db, aw_sqlite_connect(path)) {
        cr_assert_eq(aw_sqlite_script(db, "CREATE TABLE t (v INTEGER)"), 0);
        aw_with (aw_group_t *g, aw_group()) {
            aw_with (aw_sqlite_tx(db, .immediate = true)) {
                aw_sqlite_exec(db, "INSERT INTO t VALUES (1)", aw_sqlite_noargs);
                for (int i = 0; i < 8; i++)
                    aw_spawn(g, busy_script, NULL, NULL);
                aw_sleep(AW_MS(50)); /* every script waits for the lock now */
            }
            cr_assert_eq(aw_status(), 0, "the holder commits: %s", aw_err_current() ? aw_err_current()->msg : "");
        }
        cr_assert_eq(aw_status(), 0, "every script got the lock: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        cr_assert_eq(sq_count(db), 17, "each statement ran once");
    }
    return aw_status();
}
SQ_TEST(EBUSY_only_past_the_busy_timeout_however_many_scripts_wait, busy_scripts)

/* M1 with the wait for a lock on the loop: a BEGIN IMMEDIATE waiting for
 * another connection's write lock, cancelled at each of its points (the
 * tries and the sleeps between them), leaves no transaction and no lock:
 * the other connection begins again at once, and the next block on the
 * cut connection works. */
static aw_sqlite_t *lw_b;
static int lw_child(void *arg) {
    aw_with (aw_sqlite_tx(lw_b, .immediate = true))
        aw_sqlite_exec(lw_b, "INSERT INTO tx VALUES (1)", aw_sqlite_noargs);
    return aw_status();
}
static int lw_release(void *arg) {
    aw_sleep(AW_MS(30));
    return aw_sqlite_exec(arg, "COMMIT", aw_sqlite_noargs) < 0 ? aw_status() : 0;
}
static int cut_lock_wait(void *arg) {
    aw_with (aw_sqlite_t *a, aw_sqlite_connect(path))
    aw_with (aw_sqlite_t *b, aw_sqlite_connect(path)) {
        lw_b = b;
        cr_assert_eq(aw_sqlite_script(a, "CREATE TABLE tx (v INTEGER)"), 0);
        int k, rc = -1;
        for (k = 1; k < 200 && rc != 0; k++) {
            cr_assert_eq(aw_sqlite_exec(a, "BEGIN IMMEDIATE", aw_sqlite_noargs), 0, "cut at %d: %s", k - 1,
                         aw_err_current() ? aw_err_current()->msg : "");
            aw_task_t *h;
            aw_with (aw_group_t *g, aw_group()) {
                aw_spawn(g, lw_release, a, NULL);
                aw_trace_set(aw_test_cancel_hook, NULL);
                cr_assert_eq(aw_spawn(g, lw_child, NULL, &h), 0);
                aw_test_cancel_at.target = h;
                aw_test_cancel_at.points = 0;
                aw_test_cancel_at.k = k;
                rc = aw_task_join(h);
                aw_err_clear();
            }
            aw_trace_set(NULL, NULL);
            cr_assert_eq(aw_status(), 0, "cut at %d: %s", k, aw_err_current() ? aw_err_current()->msg : "");
            long long n = -1;
            cr_assert_eq(aw_sqlite_fetch_int(a, &n, "SELECT count(*) FROM tx", aw_sqlite_noargs), 0);
            cr_assert_eq(n, rc == 0 ? 1 : 0, "cut at %d: the cut block committed nothing", k);
        }
        cr_assert_gt(k, 6, "cuts landed in the waits");
        cr_assert_lt(k, 200);
        aw_with (aw_sqlite_tx(b))
            aw_sqlite_exec(b, "INSERT INTO tx VALUES (2)", aw_sqlite_noargs);
        cr_assert_eq(aw_status(), 0, "%s", aw_err_current() ? aw_err_current()->msg : "");
    }
    return aw_status();
}
SQ_TEST(M1_cancel_at_every_point_of_a_begin_waiting_for_a_lock_leaves_nothing, cut_lock_wait)

/* M5: a row loop keeps what it needs, its connection included, until it
 * ends. A connection closed inside the loop's body was freed at once,
 * and the loop's next batch read the freed connection (ASan:
 * heap-use-after-free in conn_ready). Now the close takes effect when
 * the loop ends, and the loop ends at once with -EBADF, as Python's
 * sqlite3 raises "Cannot operate on a closed database" on the next
 * fetch; no fd stays open. */
static int close_in_loop(void *arg) {
    aw_sqlite_t *db;
    cr_assert_eq(aw_sqlite_open(&db, path), 0);
    int n = 0;
    aw_for (aw_sqlite_res_t *row,
            aw_sqlite_rows(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
                               "SELECT x FROM c", aw_sqlite_noargs)) {
        long long v;
        cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT 1", aw_sqlite_noargs), 0); /* cached: inline */
        if (n++ == 10) {
            cr_assert_eq(aw_sqlite_close(db), 0);
            cr_assert_eq(aw_sqlite_fetch_int(db, &v, "SELECT 1", aw_sqlite_noargs), -EBADF,
                         "a call after the close, inline or not, does not run");
            aw_err_clear();
        }
    }
    cr_assert_eq(aw_status(), -EBADF, "got %s", aw_err_name(aw_status()));
    cr_assert(strstr(aw_err_current()->msg, "closed"), "%s", aw_err_current()->msg);
    cr_assert_eq(n, 11, "no row after the close");
    aw_err_clear();
    return 0;
}
SQ_TEST(M5_a_row_loop_keeps_its_connection_until_it_ends, close_in_loop)

