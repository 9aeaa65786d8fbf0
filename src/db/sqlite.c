/* sqlite.c: SQLite on the loop's thread pool, short reads inline.
 *
 * Each call is a job: the arguments are copied into it (a cancelled caller
 * leaves before the job ends, so nothing may point into its frame), the
 * worker prepares (or finds in the per-connection cache), binds, steps
 * and copies the rows out, and the caller picks the result up. The
 * connection is opened SQLITE_OPEN_NOMUTEX: at most one job per connection
 * is in flight (`busy`), which the pool's queue hand-off orders, so no
 * lock is needed. A cancelled caller interrupts its job and leaves; the
 * job's abandon callback (loop thread) frees it, wakes whoever waits for
 * the connection, and closes the database if close was asked meanwhile.
 *
 * The optimistic inline step (issue 14): a hand-off to a worker and back
 * costs 10-50 us on this VM, a cached `SELECT ?` 0.1 us. So a query whose
 * statement is already cached and is a read (sqlite3_stmt_readonly, with
 * result columns: no BEGIN/COMMIT, whose COMMIT may fsync; no write, whose
 * interrupt inside an explicit transaction rolls the whole transaction
 * back, sqlite.org/c3ref/interrupt.html) is first stepped on the loop
 * thread, with no busy handler (a locked database gives SQLITE_BUSY at
 * once instead of sleeping) and a progress handler that interrupts it
 * once it has run AW__SQ_INLINE_NS (checked every AW__SQ_INLINE_OPS VM
 * steps, so a short query reads no clock). An interrupted read-only
 * statement rolls nothing back (sqlite3VdbeHalt: readOnly && INTERRUPT),
 * so an interrupted or busy attempt is reset, its partial rows dropped,
 * and the query runs on the worker as before, where the busy timeout and
 * a cancel's interrupt apply unchanged; that statement then skips
 * the inline attempt for its next AW__SQ_SKIP uses, so a long query pays
 * the wasted budget once in a while, not every time. The connection is
 * NOMUTEX (multi-thread mode): used by one thread at a time, which `busy`
 * already guarantees (an inline step runs only when no job is in
 * flight, and the pool's mutex orders the threads' accesses). What the
 * budget cannot bound is a single blocking read of an uncached page: a
 * slow disk stalls the loop for that read (bench-sqlite reports the worst
 * stall it saw). A task that runs inline queries back to back yields
 * every AW__SQ_YIELD_EVERY of them (and after one that ran long), as a
 * worker hand-off would have let others run. */
#include "../coro/alloc.h" /* aw__malloc ...: the allocator table */
#include "../core/core.h"  /* aw__task_cur: where the block being entered is */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/track.h>
#include <awith/thread.h>
#include <awith/event.h>
#include <awith/sqlite.h>

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define AW__SQ_STMTS 32
#define AW__SQ_BUSY_MS 5000           /* the worker's busy timeout */
#define AW__SQ_INLINE_OPS 1000        /* VM steps between two looks at the clock */
#define AW__SQ_INLINE_NS AW_US(100)   /* inline budget: a tenth of the 1 ms stall rule */
#define AW__SQ_SKIP 32                /* uses sent straight to the worker after a fallback */
#define AW__SQ_YIELD_EVERY 16         /* inline queries in a row before a yield */

typedef struct {
    char *sql;
    sqlite3_stmt *st;
    bool inl;                     /* a read with rows: may be stepped on the loop thread */
    int skip;                     /* uses left before the next inline attempt */
} aw__sq_stmt_t;

struct aw_sqlite {
    aw_track_t track;             /* reported at loop close if never closed */
    sqlite3 *db;
    aw_event_t idle;              /* set when a job ends */
    bool busy;                    /* a job is in flight: one at a time */
    _Atomic bool gave_up;         /* its caller left the job in flight: stop busy waits */
    bool busy_loop;               /* busy_wait answers at once: the loop waits (job_run) */
    bool busy_hit;                /* the job found a lock the busy timeout would wait for */
    bool close_pending;
    int cursors;                  /* row loops running on it: a close waits for them (M5) */
    int txdepth;                  /* aw_sqlite_tx blocks open on it */
    aw__owner_t txowner;          /* the task that entered the outermost block */
    int undo;                     /* 1 + depth of a BEGIN/SAVEPOINT nobody entered; 0: none */
    int errcode;
    int inlined;                  /* inline queries since this connection last yielded */
    aw_ns_t inline_t0;            /* first progress callback of the inline step; 0: none yet */
    bool inline_on;               /* an inline step runs (loop thread; no job in flight) */
    bool inline_long;             /* the inline step reached the progress handler */
    int nstmts;
    aw__sq_stmt_t stmts[AW__SQ_STMTS];
};

typedef struct {
    int type;
    long long i;
    double d;
    char *p;                      /* text (NUL-terminated) or blob */
    int len;
} aw__sq_val_t;

struct aw_sqlite_res {
    int ncols, nrows, cap;
    char **names;
    aw__sq_val_t *cells;          /* nrows * ncols */
    long long changes, last_id;
};

enum { JOB_QUERY, JOB_SCRIPT, JOB_OPEN, JOB_STEP, JOB_BEGIN };
#define AW__SQ_BATCH 256 /* rows per trip of the row generator */

typedef struct aw__sq_job {
    int kind;
    aw_sqlite_t *conn;
    char *sql;
    int nargs;
    aw__sq_val_t *args;
    char *path;
    /* out */
    int rc;
    char errmsg[256];
    aw_sqlite_res_t *res;
    bool want_rows;
    bool first_only;              /* inline fetch_int: keep row 0, column 0 only, in `first` */
    bool have_first;
    aw__sq_val_t first;           /* its text or blob is not copied (type only) */
    bool abandoned;               /* the pool owns it (caller cancelled) */
    bool submitting;              /* inside aw_to_thread: an abandon now means "never ran" */
    bool never_ran;
    sqlite3_stmt *st;             /* JOB_STEP: its own statement */
    bool done;                    /* JOB_STEP: no more rows */
    int depth;                    /* JOB_BEGIN: 0 BEGIN, > 0 SAVEPOINT aw_sp_<depth> */
    bool immediate;               /* JOB_BEGIN */
    bool begun;                   /* JOB_BEGIN: it ran and opened the transaction/savepoint */
    bool manual;                  /* JOB_BEGIN: refused, a transaction begun by hand is open */
    bool busy_hit;                /* it failed on a lock worth waiting for (busy_wait) */
    int busy_waits;               /* waits on the loop so far (busy_delay's count) */
    size_t done_upto;             /* JOB_SCRIPT: the statements before this offset ran */
} aw__sq_job_t;

/* --- values and results ---------------------------------------------------- */

static void val_free(aw__sq_val_t *v) {
    if (v->type == AW_SQLITE_TEXT || v->type == AW_SQLITE_BLOB)
        aw__free(v->p);
}

void aw_sqlite_res_free(aw_sqlite_res_t *r) {
    if (!r)
        return;
    for (int i = 0; i < r->nrows * r->ncols; i++)
        val_free(&r->cells[i]);
    for (int i = 0; r->names && i < r->ncols; i++) /* names may be half built (OOM) */
        aw__free(r->names[i]);
    aw__free(r->names);
    aw__free(r->cells);
    aw__free(r);
}

static void job_free(aw__sq_job_t *j) {
    for (int i = 0; i < j->nargs; i++)
        val_free(&j->args[i]);
    aw__free(j->args);
    aw__free(j->sql);
    aw__free(j->path);
    aw_sqlite_res_free(j->res);
    if (j->st)
        sqlite3_finalize(j->st);
    aw__free(j);
}

/* Test-only fault injection (debug builds): when set to N > 0, the N-th
 * allocation made while building a result from now on fails, once. The
 * tests sweep N over every allocation of a query (the worker thread reads
 * it; the test sets it between calls). */
#ifndef NDEBUG
_Atomic int aw__sqlite_fail_alloc;
static bool rb_fail(void) {
    int n = aw__sqlite_fail_alloc;
    while (n > 0 && !__atomic_compare_exchange_n(&aw__sqlite_fail_alloc, &n, n - 1, false,
                                                 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    return n == 1;
}
#else
static inline bool rb_fail(void) { return false; }
#endif
static void *rb_malloc(size_t n) { return rb_fail() ? NULL : aw__malloc(n); }
static void *rb_calloc(size_t n, size_t m) { return rb_fail() ? NULL : aw__calloc(n, m); }
static void *rb_realloc(void *p, size_t n) { return rb_fail() ? NULL : aw__realloc(p, n); }
static char *rb_strdup(const char *s) { return rb_fail() ? NULL : aw__strdup(s); }

/* Copy a column value out of the statement (worker thread). */
static int col_copy(sqlite3_stmt *st, int i, aw__sq_val_t *v) {
    memset(v, 0, sizeof *v);
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        v->type = AW_SQLITE_INT;
        v->i = sqlite3_column_int64(st, i);
        return 0;
    case SQLITE_FLOAT:
        v->type = AW_SQLITE_DOUBLE;
        v->d = sqlite3_column_double(st, i);
        return 0;
    case SQLITE_NULL:
        v->type = AW_SQLITE_NULL;
        return 0;
    case SQLITE_TEXT: {
        const unsigned char *t = sqlite3_column_text(st, i);
        int n = sqlite3_column_bytes(st, i);
        v->type = AW_SQLITE_TEXT;
        if (!(v->p = rb_malloc(n + 1)))
            return SQLITE_NOMEM;
        memcpy(v->p, t, n);
        v->p[n] = 0;
        v->len = n;
        return 0;
    }
    default: {
        const void *b = sqlite3_column_blob(st, i);
        int n = sqlite3_column_bytes(st, i);
        v->type = AW_SQLITE_BLOB;
        if (!(v->p = rb_malloc(n ? n : 1)))
            return SQLITE_NOMEM;
        if (n)
            memcpy(v->p, b, n);
        v->len = n;
        return 0;
    }
    }
}

/* --- the worker side --------------------------------------------------------- */

/* Prepare the one statement of `sql` (worker thread). SQL that holds a
 * second statement is refused, as Python's sqlite3 ("You can only execute
 * one statement at a time") and libpq's extended protocol refuse it:
 * sqlite3_prepare compiles only the first and would drop the rest
 * silently, a write that never happens with no error. What follows the
 * first is prepared too, to let SQLite itself say whether it is only
 * blanks, comments and semicolons. SQLITE_MISUSE (-EINVAL) then. */
static int prepare_one(aw__sq_job_t *j, unsigned flags, sqlite3_stmt **st) {
    sqlite3 *db = j->conn->db;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(db, j->sql, -1, flags, st, &tail);
    if (rc != SQLITE_OK || !tail || !*tail)
        return rc;
    sqlite3_stmt *next = NULL;
    int trc = sqlite3_prepare_v2(db, tail, -1, &next, NULL);
    sqlite3_finalize(next);
    if (trc == SQLITE_OK && !next)
        return SQLITE_OK;
    sqlite3_finalize(*st);
    *st = NULL;
    j->rc = SQLITE_MISUSE;
    snprintf(j->errmsg, sizeof j->errmsg,
             "the SQL holds more than one statement (\"%.60s\" follows the first); "
             "one call runs one statement, aw_sqlite_script runs several", tail);
    return SQLITE_MISUSE;
}

static sqlite3_stmt *stmt_get(aw__sq_job_t *j, int *rc) {
    aw_sqlite_t *c = j->conn;
    const char *sql = j->sql;
    for (int i = 0; i < c->nstmts; i++)
        if (!strcmp(c->stmts[i].sql, sql)) {
            if (i) { /* move to front: most recently used first */
                aw__sq_stmt_t s = c->stmts[i];
                memmove(c->stmts + 1, c->stmts, i * sizeof *c->stmts);
                c->stmts[0] = s;
            }
            *rc = SQLITE_OK;
            return c->stmts[0].st;
        }
    sqlite3_stmt *st = NULL;
    *rc = prepare_one(j, SQLITE_PREPARE_PERSISTENT, &st);
    if (*rc != SQLITE_OK)
        return NULL;
    char *copy = aw__strdup(sql);
    if (!copy) {
        sqlite3_finalize(st);
        *rc = SQLITE_NOMEM;
        return NULL;
    }
    if (c->nstmts == AW__SQ_STMTS) {
        c->nstmts--;
        sqlite3_finalize(c->stmts[c->nstmts].st);
        aw__free(c->stmts[c->nstmts].sql);
    }
    memmove(c->stmts + 1, c->stmts, c->nstmts * sizeof *c->stmts);
    c->stmts[0] = (aw__sq_stmt_t){copy, st, sqlite3_stmt_readonly(st) && sqlite3_column_count(st) > 0, 0};
    c->nstmts++;
    return st;
}

static void job_error(aw__sq_job_t *j, int rc) {
    if (j->rc == rc && j->errmsg[0])
        return; /* ours (prepare_one), not SQLite's: its errmsg knows nothing */
    j->rc = rc;
    const char *m = j->conn && j->conn->db ? sqlite3_errmsg(j->conn->db) : sqlite3_errstr(rc);
    snprintf(j->errmsg, sizeof j->errmsg, "%s", m);
}

/* Do n arguments fit the parameters of st? SQLite binds what it is given
 * and leaves the rest NULL: one argument short would write NULL where a
 * value was meant, silently. Refused instead, as Python's sqlite3 does
 * ("Incorrect number of bindings supplied"), with the code one too many
 * already gave: SQLITE_RANGE (-EREMOTEIO). */
static int nargs_check(aw__sq_job_t *j, sqlite3_stmt *st, int n) {
    int want = sqlite3_bind_parameter_count(st);
    if (n == want)
        return SQLITE_OK;
    j->rc = SQLITE_RANGE;
    snprintf(j->errmsg, sizeof j->errmsg, "the statement has %d parameter%s and %d argument%s %s given", want,
             want == 1 ? "" : "s", n, n == 1 ? "" : "s", n == 1 ? "was" : "were");
    return SQLITE_RANGE;
}

static int bind_all(aw__sq_job_t *j, sqlite3_stmt *st) {
    int rc = nargs_check(j, st, j->nargs);
    for (int i = 0; i < j->nargs && rc == SQLITE_OK; i++) {
        aw__sq_val_t *v = &j->args[i];
        switch (v->type) {
        case AW_SQLITE_INT: rc = sqlite3_bind_int64(st, i + 1, v->i); break;
        case AW_SQLITE_DOUBLE: rc = sqlite3_bind_double(st, i + 1, v->d); break;
        case AW_SQLITE_TEXT: rc = sqlite3_bind_text(st, i + 1, v->p, v->len, SQLITE_STATIC); break;
        case AW_SQLITE_BLOB: rc = sqlite3_bind_blob(st, i + 1, v->p, v->len, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(st, i + 1);
        }
    }
    return rc;
}

/* Step `st` for up to `limit` rows (0: all) into a fresh j->res. */
static int step_rows(aw__sq_job_t *j, sqlite3_stmt *st, int limit) {
    aw_sqlite_t *c = j->conn;
    int rc = SQLITE_OK;
    aw_sqlite_res_t *r = NULL;
    sqlite3_int64 total0 = sqlite3_total_changes64(c->db);
    if (rc == SQLITE_OK && !(r = rb_calloc(1, sizeof *r)))
        rc = SQLITE_NOMEM;
    if (rc == SQLITE_OK) {
        r->ncols = sqlite3_column_count(st);
        if (r->ncols && !(r->names = rb_calloc(r->ncols, sizeof *r->names)))
            rc = SQLITE_NOMEM;
        for (int i = 0; i < r->ncols && rc == SQLITE_OK; i++)
            if (!(r->names[i] = rb_strdup(sqlite3_column_name(st, i) ? sqlite3_column_name(st, i) : "")))
                rc = SQLITE_NOMEM;
    }
    while (rc == SQLITE_OK) {
        if (limit && r->nrows == limit)
            break;
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE) {
            j->done = true;
            break;
        }
        if (s != SQLITE_ROW) {
            rc = s;
            break;
        }
        if (!j->want_rows || !r->ncols)
            continue;
        if (r->nrows == r->cap) {
            int cap = r->cap ? r->cap * 2 : 4;
            aw__sq_val_t *cells = rb_realloc(r->cells, (size_t)cap * r->ncols * sizeof *cells);
            if (!cells) {
                rc = SQLITE_NOMEM;
                break;
            }
            r->cells = cells;
            r->cap = cap;
        }
        aw__sq_val_t *row = r->cells + (size_t)r->nrows * r->ncols;
        int i = 0;
        for (; i < r->ncols && rc == SQLITE_OK; i++)
            rc = col_copy(st, i, &row[i]);
        if (rc != SQLITE_OK) {
            while (i--)
                val_free(&row[i]);
            break;
        }
        r->nrows++;
    }
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM && !j->rc) { /* ours, not SQLite's: its errmsg knows nothing */
            j->rc = rc;
            snprintf(j->errmsg, sizeof j->errmsg, "out of memory while copying the result out");
        } else {
            job_error(j, rc);
        }
        aw_sqlite_res_free(r);
        return rc;
    }
    /* sqlite3_changes64 keeps the count of the last INSERT, UPDATE or
     * DELETE: after a SELECT, a CREATE or a BEGIN it would be that older
     * statement's. Python's rowcount is -1 there; ours, 0: this statement
     * changed no row unless the connection's total moved. */
    r->changes = sqlite3_total_changes64(c->db) != total0 ? sqlite3_changes64(c->db) : 0;
    r->last_id = sqlite3_last_insert_rowid(c->db);
    j->res = r;
    return SQLITE_OK;
}

static void run_query(aw__sq_job_t *j) {
    int rc;
    sqlite3_stmt *st = stmt_get(j, &rc);
    if (!st)
        return job_error(j, rc);
    if ((rc = bind_all(j, st)) != SQLITE_OK)
        job_error(j, rc);
    else
        step_rows(j, st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    /* A COMMIT its caller gave up on (busy_wait stopped it): nobody will
     * roll back before the connection's next call, and meanwhile its
     * locks would block every other connection. Rolled back now. */
    if (j->rc != SQLITE_OK && atomic_load(&j->conn->gave_up) && !strcmp(j->sql, "COMMIT") &&
        !sqlite3_get_autocommit(j->conn->db))
        sqlite3_exec(j->conn->db, "ROLLBACK", NULL, NULL, NULL);
}

static void run_step(aw__sq_job_t *j) {
    aw_sqlite_res_free(j->res);
    j->res = NULL;
    bool first = !j->st;
    if (first) {
        int rc = prepare_one(j, 0, &j->st);
        if (rc == SQLITE_OK)
            rc = bind_all(j, j->st);
        if (rc != SQLITE_OK)
            return job_error(j, rc);
    }
    step_rows(j, j->st, AW__SQ_BATCH);
    /* the first batch found the database locked (busy_wait): no row went
     * out, so it starts afresh when job_run runs it again */
    if (first && j->rc != SQLITE_OK && j->conn->busy_hit) {
        sqlite3_finalize(j->st);
        j->st = NULL;
    }
}

/* A BEGIN or SAVEPOINT whose caller was cancelled before it could enter
 * the block (decision 7): undone when its job ends (sq_undo_now), or
 * here, on the worker, before the connection's next job runs, so no
 * later call ever sees it. */
static void run_undo(aw_sqlite_t *c) {
    int depth = c->undo - 1;
    c->undo = 0;
    if (depth == 0) {
        if (!sqlite3_get_autocommit(c->db))
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        return;
    }
    char sql[96];
    snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT aw_sp_%d; RELEASE SAVEPOINT aw_sp_%d", depth, depth);
    sqlite3_exec(c->db, sql, NULL, NULL, NULL);
}

/* A script, one statement after the other, as sqlite3_exec runs it, but
 * stopping before the next statement once its caller left (gave_up; the
 * progress handler stops a long one): sqlite3_exec sees only
 * sqlite3_interrupt there, whose flag outlives the script while a row
 * loop's statement is open on the connection (inline_progress). */
static void run_script(aw__sq_job_t *j) {
    sqlite3 *db = j->conn->db;
    const char *sql = j->sql + j->done_upto; /* run again after a lock: from there */
    while (*sql) {
        if (atomic_load(&j->conn->gave_up))
            return job_error(j, SQLITE_INTERRUPT);
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
        while (rc == SQLITE_OK && st && (rc = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (rc != SQLITE_OK && rc != SQLITE_DONE)
            job_error(j, rc); /* before finalize: the message is the statement's */
        sqlite3_finalize(st);
        if (j->rc != SQLITE_OK || !tail || tail == sql) /* no statement was left to read */
            return;
        sql = tail; /* after a statement, or an empty one (";"), as sqlite3_exec goes on */
        j->done_upto = (size_t)(sql - j->sql);
    }
}

static void run_begin(aw__sq_job_t *j) {
    aw_sqlite_t *c = j->conn;
    if (j->depth == 0 && !sqlite3_get_autocommit(c->db)) {
        j->manual = true; /* refused on the loop side with its own message */
        return;
    }
    char sql[64];
    if (j->depth)
        snprintf(sql, sizeof sql, "SAVEPOINT aw_sp_%d", j->depth);
    else
        snprintf(sql, sizeof sql, "BEGIN%s", j->immediate ? " IMMEDIATE" : "");
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return job_error(j, rc);
    j->begun = true;
}

#ifndef NDEBUG
_Atomic long aw__sqlite_loop_busy_sleeps; /* test-only: busy waits on a loop's thread */
#endif

/* SQLite's own busy timeout (sqliteDefaultBusyCallback's schedule,
 * AW__SQ_BUSY_MS in all): how many ms the count-th wait (from 0) sleeps,
 * 0 once the timeout is spent. */
static int busy_delay(int count) {
    static const unsigned char delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    static const unsigned char totals[] = {0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228};
    enum { N = sizeof delays };
    int delay = count < N ? delays[count] : delays[N - 1];
    int prior = count < N ? totals[count] : totals[N - 1] + delay * (count - (N - 1));
    if (prior + delay > AW__SQ_BUSY_MS)
        delay = AW__SQ_BUSY_MS - prior;
    return delay > 0 ? delay : 0;
}

/* The busy handler. A single statement (a query, BEGIN, COMMIT) does not
 * wait here: it fails with SQLITE_BUSY, marked `busy_hit`, and job_run
 * sleeps on the loop and runs it again (busy_delay's schedule), as
 * SQLite would have retried. A wait here holds a pool thread: enough
 * writers waiting for one lock took every thread, and the holder's
 * COMMIT, queued behind them, could not run until their busy timeout
 * ran out and they all failed. Retrying is safe where SQLite says so: a
 * statement outside a transaction, or a COMMIT, or a write that could
 * not take the lock a transaction needs (it changed nothing yet); a
 * block's transaction rolled back meanwhile is caught by tx_check. A
 * script runs again from the statement that found the lock (the ones
 * before it ran); a row loop past its first batch (rows went out) waits
 * here as before. During an inline step, no wait at all
 * (SQLITE_BUSY at once: the query goes to the worker). */
static int busy_wait(void *arg, int count) {
    aw_sqlite_t *c = arg;
    if (c->inline_on)
        return 0;
    /* An interrupt does not stop a busy wait: a COMMIT cut by the exit's
     * grace would commit once the lock frees up, after its block
     * reported failure. SQLITE_BUSY instead: the transaction stays open,
     * and is rolled back when the job ends (job_abandon). */
    if (atomic_load(&c->gave_up))
        return 0;
    if (c->busy_loop) {
        c->busy_hit = true;
        return 0;
    }
    int delay = busy_delay(count);
    if (!delay)
        return 0;
#ifndef NDEBUG
    if (aw_task_self()) /* the loop's thread: must never happen (tests) */
        aw__sqlite_loop_busy_sleeps++;
#endif
    sqlite3_sleep(delay);
    return 1;
}

/* The progress handler, called every AW__SQ_INLINE_OPS VM steps. On the
 * worker it stops the statement whose caller left (gave_up): a cancel's
 * interrupt (a script also stops before its next statement). Not
 * sqlite3_interrupt, which stops every statement of the connection and
 * stays in force while any is active: a row loop's statement, open
 * between two batches, kept it, and every later call on the connection
 * failed "interrupted" (-ECANCELED) outside the cancelled scope
 * (decision 1). During an inline step: the first call starts the clock,
 * a later one past the budget interrupts. Either way SQLITE_INTERRUPT,
 * for this statement only. */
static int inline_progress(void *arg) {
    aw_sqlite_t *c = arg;
    if (!c->inline_on)
        return atomic_load(&c->gave_up);
    aw_ns_t now = aw_now();
    c->inline_long = true;
    if (!c->inline_t0) {
        c->inline_t0 = now;
        return 0;
    }
    return now - c->inline_t0 > AW__SQ_INLINE_NS;
}

static void job_work(void *arg) {
    aw__sq_job_t *j = arg;
    j->rc = SQLITE_OK;
    j->errmsg[0] = 0;
    if (j->kind != JOB_OPEN && j->conn->undo)
        run_undo(j->conn);
    /* busy waits on the loop: a statement, or a row loop's first batch */
    j->conn->busy_loop = j->kind == JOB_QUERY || j->kind == JOB_BEGIN || j->kind == JOB_SCRIPT ||
                         (j->kind == JOB_STEP && !j->st);
    j->conn->busy_hit = false;
    switch (j->kind) {
    case JOB_OPEN: {
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(j->path, &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                     SQLITE_OPEN_URI, NULL);
        if (rc != SQLITE_OK) {
            j->rc = rc;
            snprintf(j->errmsg, sizeof j->errmsg, "\"%s\": %s", j->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
            sqlite3_close(db);
            return;
        }
        sqlite3_extended_result_codes(db, 1);
        /* both installed once: each looks at `inline_on`, so an inline
         * step costs no calls to switch them */
        sqlite3_busy_handler(db, busy_wait, j->conn);
        sqlite3_progress_handler(db, AW__SQ_INLINE_OPS, inline_progress, j->conn);
        j->conn->db = db;
        return;
    }
    case JOB_SCRIPT:
        run_script(j);
        break;
    case JOB_STEP:
        run_step(j);
        break;
    case JOB_BEGIN:
        run_begin(j);
        break;
    default:
        run_query(j);
    }
    /* the handler is also asked while a big transaction tries to spill
     * its cache (it keeps the pages and goes on): only a statement that
     * failed on the lock runs again (a stale WAL snapshot never frees) */
    j->busy_hit = j->conn->busy_hit && (j->rc & 0xff) == SQLITE_BUSY && j->rc != SQLITE_BUSY_SNAPSHOT;
    j->conn->busy_loop = false;
}

/* --- the loop side --------------------------------------------------------- */

static void conn_free(aw_sqlite_t *c) {
    for (int i = 0; i < c->nstmts; i++) {
        sqlite3_finalize(c->stmts[i].st);
        aw__free(c->stmts[i].sql);
    }
    c->nstmts = 0;
    if (c->db)
        sqlite3_close_v2(c->db);
    aw__free(c);
}

/* A level nobody will end (c->undo: a BEGIN whose caller left, a
 * rollback the exit's grace cut) with no job in flight: undone here, on
 * the loop thread, at once. Left for the connection's next call, it
 * would hold its locks until then, maybe for ever: a BEGIN IMMEDIATE's
 * write lock, a failed COMMIT's PENDING lock that keeps every other
 * connection from even reading (M1: the enter's work released). A
 * ROLLBACK takes no lock it lacks, so it never waits for another
 * connection; should SQLite ask, busy_loop answers at once, without
 * sleeping on the loop thread. gave_up (the cut job's) is dropped first:
 * the progress handler must not stop the ROLLBACK as a cut statement. */
static void sq_undo_now(aw_sqlite_t *c) {
    atomic_store(&c->gave_up, false);
    c->busy_loop = true;
    run_undo(c);
    c->busy_loop = false;
}

/* A cancelled caller's job finished (loop thread). */
static void job_abandon(void *arg) {
    aw__sq_job_t *j = arg;
    if (j->submitting) { /* a cancel pending before the work started: still the caller's */
        j->never_ran = true;
        return;
    }
    aw_sqlite_t *c = j->conn;
    if (j->kind == JOB_OPEN) { /* nobody will use it */
        conn_free(c);
        job_free(j);
        return;
    }
    c->busy = false;
    if (j->kind == JOB_BEGIN && j->begun && (!c->undo || j->depth + 1 < c->undo))
        c->undo = j->depth + 1; /* began, but the caller left */
    /* a COMMIT that failed (a lock) after its caller left, too late for
     * run_query to see gave_up: the transaction is open, nobody's */
    if (j->kind == JOB_QUERY && j->rc != SQLITE_OK && !strcmp(j->sql, "COMMIT") &&
        !sqlite3_get_autocommit(c->db))
        c->undo = 1;
    job_free(j);
    if (c->close_pending) {
        if (!c->cursors) /* else the last row loop to end closes it */
            conn_free(c); /* closing rolls back */
        return;
    }
    if (c->undo)
        sq_undo_now(c);
    aw_event_set(&c->idle);
}

static int sq_code(int rc) {
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_CANTOPEN: return -ENOENT;
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_READONLY: return -EACCES;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_INTERRUPT: return -ECANCELED;
    case SQLITE_MISUSE: return -EINVAL; /* the call's own mistake (prepare_one) */
    case SQLITE_IOERR: return -EIO;
    default: return -EREMOTEIO;
    }
}

/* Raise SQLite's failure `rc` (an extended result code) as its errno
 * class, with the code itself as the record's origin (err.h), so that a
 * program tells SQLITE_CONSTRAINT_UNIQUE from other -EREMOTEIO failures.
 * A macro: the record names the caller's line. */
#define sq_raise(rc, ...)                                                                   \
    __extension__({                                                                        \
        int rc_ = (rc), code_ = aw_raise(sq_code(rc_), __VA_ARGS__);                       \
        if (code_ != -ECANCELED)                                                           \
            aw_err_set_origin(AW_ORIGIN_SQLITE, rc_, NULL);                                \
        code_;                                                                             \
    })

/* Wait until no abandoned job runs on the connection. */
static int conn_ready(aw_sqlite_t *c) {
    while (c->busy) {
        aw_event_clear(&c->idle);
        int rc = aw_event_wait(&c->idle);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Is the transaction of the aw_sqlite_tx blocks open on c still there?
 * An interrupted write inside it makes SQLite roll the whole transaction
 * back (sqlite.org/c3ref/interrupt.html), and so does a ROLLBACK or
 * COMMIT by hand: a statement run then would be committed on its own at
 * once (autocommit), inside a block whose COMMIT then fails. Refused
 * instead, as PostgreSQL refuses statements in an aborted transaction,
 * until the block is left (its exit sees there is nothing to roll back).
 * Called with no job in flight (after conn_ready). 0 or raised. */
static int tx_check(aw_sqlite_t *c, const char *what) {
    if (c->txdepth == 0 || !sqlite3_get_autocommit(c->db))
        return 0;
    c->errcode = SQLITE_ABORT_ROLLBACK;
    return sq_raise(SQLITE_ABORT_ROLLBACK,
                    "sqlite %s: the transaction of the enclosing aw_sqlite_tx block was rolled back "
                    "(an interrupted write rolls back the whole transaction); leave the block", what);
}

/* Run a job, and free it unless it was abandoned. On success the caller
 * takes j->res before job_free. Returns 0 or an error (record raised). */
static int job_run(aw__sq_job_t *j, const char *what) {
    aw_sqlite_t *c = j->conn;
    bool held = false; /* c->busy is this call's */
    if (j->kind != JOB_OPEN && c->close_pending) /* a row loop's, after a close in its body */
        return aw_raise(-EBADF, "sqlite %s: the connection was closed", what);
    int rc = c && j->kind != JOB_OPEN ? conn_ready(c) : 0;
again:
    if (rc == 0 && c && j->kind != JOB_OPEN)
        rc = tx_check(c, what);
    if (rc == 0)
        rc = aw_checkpoint();
    if (rc < 0)
        goto release;
    if (j->kind != JOB_OPEN) {
        c->busy = held = true;
        atomic_store(&c->gave_up, false); /* no job in flight: conn_ready waited */
    }
    /* aw_to_thread is a cancellation point of its own (a deadline may
     * pass, a trace hook may cancel): a cancel found there before the
     * work started calls job_abandon at once, inside the call, and the
     * job stays ours */
    j->submitting = true;
    rc = aw_to_thread(job_work, j, job_abandon);
    j->submitting = false;
    if (rc == -ECANCELED && !j->never_ran) { /* the pool owns j now: stop it */
        j->abandoned = true;
        if (j->kind != JOB_OPEN) {
            /* inline_progress stops the statement, run_script the script */
            atomic_store(&c->gave_up, true);
        }
        return rc;
    }
    int delay = rc == 0 && j->busy_hit && !c->close_pending ? busy_delay(j->busy_waits++) : 0;
    if (delay) {
        /* Locked: wait here, not on a pool thread (busy_wait), and run
         * it again. The call goes on: the connection stays this call's
         * (busy), one call at a time, as when the wait was the worker's;
         * another task's call between two tries could join or refuse a
         * transaction whose COMMIT is under way. */
        j->rc = SQLITE_OK;
        j->busy_hit = false;
        if ((rc = aw_sleep(AW_MS(delay))) == 0)
            goto again;
    }
release:
    if (held) {
        c->busy = false;
        if (c->close_pending) { /* closed by another task meanwhile */
            if (!c->cursors) { /* else the last row loop to end closes it */
                conn_free(c);
                c = NULL;
            }
        } else {
            aw_event_set(&c->idle);
        }
    }
    if (rc < 0)
        return rc;
    if (j->rc != SQLITE_OK) {
        if (c)
            c->errcode = j->rc;
        return sq_raise(j->rc, "sqlite %s failed: %s (%s)", what, j->errmsg, sqlite3_errstr(j->rc));
    }
    return 0;
}

static aw__sq_job_t *job_new(aw_sqlite_t *c, int kind, const char *sql, const aw_sqlite_arg_t *a, int n) {
    aw__sq_job_t *j = aw__calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->kind = kind;
    j->conn = c;
    if (sql && !(j->sql = aw__strdup(sql)))
        goto oom;
    if (n > 0 && !(j->args = aw__calloc(n, sizeof *j->args)))
        goto oom;
    for (int i = 0; i < n; i++, j->nargs++) {
        aw__sq_val_t *v = &j->args[i];
        v->type = a[i].type;
        v->i = a[i].i;
        v->d = a[i].d;
        if (v->type == AW_SQLITE_TEXT || v->type == AW_SQLITE_BLOB) {
            int len = a[i].len;
            if (v->type == AW_SQLITE_TEXT && len < 0)
                len = a[i].p ? (int)strlen(a[i].p) : 0;
            if (v->type == AW_SQLITE_TEXT && !a[i].p) {
                v->type = AW_SQLITE_NULL;
                continue;
            }
            if (!(v->p = aw__malloc(len ? len : 1)))
                goto oom;
            if (len)
                memcpy(v->p, a[i].p, len);
            v->len = len;
        }
    }
    return j;
oom:
    job_free(j);
    return NULL;
}

int aw_sqlite_open(aw_sqlite_t **out, const char *path) {
    *out = NULL;
    aw_sqlite_t *c = aw__calloc(1, sizeof *c);
    aw__sq_job_t *j = c ? job_new(c, JOB_OPEN, NULL, NULL, 0) : NULL;
    if (j)
        j->path = aw__strdup(path ? path : ":memory:");
    if (!c || !j || !j->path) {
        aw__free(c);
        if (j)
            job_free(j);
        return aw_raise(-ENOMEM, "sqlite: out of memory");
    }
    int rc = job_run(j, "open");
    if (rc < 0 && j->abandoned)
        return rc; /* the job owns c: both are freed when it finishes */
    job_free(j);
    if (rc < 0) {
        conn_free(c);
        return rc;
    }
    aw_track_open(&c->track, "sqlite connection", "%s", path ? path : ":memory:");
    *out = c;
    return 0;
}

int aw_sqlite_close(aw_sqlite_t *c) {
    if (!c)
        return 0;
    aw_track_close(&c->track); /* closed as far as its user goes */
    if (c->busy || c->cursors) {
        /* closed when the interrupted call ends, and when the row loops
         * open on it (a close in a loop's body) end: each holds one of
         * its statements and reads it at its next batch (M5) */
        c->close_pending = true;
        return 0;
    }
    conn_free(c);
    return 0;
}

static int sq_connect_enter(void *self, void **out) {
    aw_sqlite_connect_t *s = self;
    int rc = aw_sqlite_open(&s->conn, s->path);
    *out = s->conn;
    return rc;
}
static int sq_connect_exit(void *self, const aw_err_t *err) {
    aw_sqlite_connect_t *s = self;
    int rc = aw_sqlite_close(s->conn);
    s->conn = NULL;
    return rc;
}
const aw_cm_type_t aw_sqlite_connect_type = {"sqlite_connection", sq_connect_enter, sq_connect_exit, 0, 0};

/* --- the optimistic inline step (see the top of the file) --------------- */

/* Test-only counters (debug builds): queries that ran inline, and inline
 * attempts handed to the worker (interrupted by the budget, or busy). */
#ifndef NDEBUG
_Atomic long aw__sqlite_inline_runs, aw__sqlite_inline_fallbacks;
#define SQ_COUNT(x) ((x)++)
#else
#define SQ_COUNT(x) ((void)0)
#endif

static int bind_args(aw__sq_job_t *j, sqlite3_stmt *st, const aw_sqlite_arg_t *a, int n) {
    int rc = nargs_check(j, st, n);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        switch (a[i].type) {
        case AW_SQLITE_INT: rc = sqlite3_bind_int64(st, i + 1, a[i].i); break;
        case AW_SQLITE_DOUBLE: rc = sqlite3_bind_double(st, i + 1, a[i].d); break;
        case AW_SQLITE_TEXT:
            rc = a[i].p ? sqlite3_bind_text(st, i + 1, a[i].p, a[i].len, SQLITE_STATIC)
                        : sqlite3_bind_null(st, i + 1);
            break;
        case AW_SQLITE_BLOB: rc = sqlite3_bind_blob(st, i + 1, a[i].p ? a[i].p : "", a[i].len, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(st, i + 1);
        }
    }
    return rc;
}

/* Step every row of `st`, keeping only the first row's first value,
 * uncopied (aw_sqlite_fetch_int inline: no result to build and free). */
static void step_first(aw__sq_job_t *j, sqlite3_stmt *st) {
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (j->have_first)
            continue;
        j->have_first = true;
        aw__sq_val_t *v = &j->first;
        switch (sqlite3_column_type(st, 0)) {
        case SQLITE_INTEGER: v->type = AW_SQLITE_INT; v->i = sqlite3_column_int64(st, 0); break;
        case SQLITE_FLOAT: v->type = AW_SQLITE_DOUBLE; v->d = sqlite3_column_double(st, 0); break;
        case SQLITE_NULL: v->type = AW_SQLITE_NULL; break;
        case SQLITE_TEXT: v->type = AW_SQLITE_TEXT; break;
        default: v->type = AW_SQLITE_BLOB;
        }
    }
    if (s != SQLITE_DONE)
        job_error(j, s);
}

/* Try the query on the loop thread. true: it ran here, j->rc and j->res
 * are what the worker would have left; false: hand it to the worker
 * (nothing was changed: the statement is read-only and reset). The
 * caller's arguments are bound as they are (the call does not suspend,
 * so they outlive it). */
static bool try_inline(aw__sq_job_t *j, const aw_sqlite_arg_t *a, int n) {
    aw_sqlite_t *c = j->conn;
    if (c->undo || c->busy)
        return false; /* the worker undoes an abandoned BEGIN first; or it runs a job */
    aw__sq_stmt_t *s = NULL;
    for (int i = 0; i < c->nstmts; i++)
        if (!strcmp(c->stmts[i].sql, j->sql)) {
            s = &c->stmts[i];
            break;
        }
    if (!s || !s->inl) /* a first use is prepared on the worker: prepare reads the schema */
        return false;
    if (s->skip) {
        s->skip--;
        return false;
    }
    sqlite3_stmt *st = s->st;
    int rc = bind_args(j, st, a, n);
    if (rc != SQLITE_OK) {
        job_error(j, rc);
        sqlite3_clear_bindings(st);
        return true;
    }
    c->inline_t0 = 0;
    c->inline_long = false;
    c->inline_on = true;
    if (j->first_only)
        step_first(j, st);
    else
        step_rows(j, st, 0);
    c->inline_on = false;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    int e = j->rc & 0xff;
    if (e == SQLITE_INTERRUPT || e == SQLITE_BUSY || e == SQLITE_LOCKED) {
        j->rc = SQLITE_OK; /* step_rows freed the partial result */
        j->errmsg[0] = 0;
        s->skip = AW__SQ_SKIP;
        SQ_COUNT(aw__sqlite_inline_fallbacks);
        return false;
    }
    /* a long one ends the run of inline queries: the yield comes next */
    c->inlined = c->inline_long ? AW__SQ_YIELD_EVERY : c->inlined + 1;
    SQ_COUNT(aw__sqlite_inline_runs);
    return true;
}

/* The query's cancellation point. After AW__SQ_YIELD_EVERY inline queries
 * in a row it is a yield: a task querying in a loop lets others run, as
 * a hand-off to the worker would. */
static int sq_point(aw_sqlite_t *c) {
    if (c->inlined < AW__SQ_YIELD_EVERY)
        return aw_checkpoint();
    c->inlined = 0;
    return aw_yield();
}

static int val_int(const aw__sq_val_t *v, long long *out);

/* One statement: its rows into *out (NULL: dropped), or, with `iout`,
 * row 0 column 0 as an integer (aw_sqlite_fetch_int). */
static int sq_query(aw_sqlite_t *c, aw_sqlite_res_t **out, const char *sql, const aw_sqlite_arg_t *a, int n,
                    bool rows, long long *iout) {
    if (out)
        *out = NULL;
    if (!c || !c->db)
        return aw_raise(-EBADF, "sqlite: not connected");
    if (c->close_pending) /* closed in a row loop's body: the inline step would still run */
        return aw_raise(-EBADF, "sqlite query: the connection was closed");
    /* the point first: it may yield (every AW__SQ_YIELD_EVERY inline
     * queries), and another task may start a job on the connection then;
     * from conn_ready on nothing suspends before the inline step, which
     * must never run while a worker uses the connection (NOMUTEX) */
    int rc = sq_point(c);
    if (rc == 0)
        rc = conn_ready(c);
    if (rc == 0)
        rc = tx_check(c, "query");
    if (rc < 0)
        return rc;
    aw__sq_job_t ij = {.kind = JOB_QUERY, .conn = c, .sql = (char *)sql, .want_rows = rows, .first_only = iout};
    aw__sq_job_t *j = &ij;
    if (try_inline(j, a, n)) {
        if (j->rc != SQLITE_OK) {
            c->errcode = j->rc;
            return sq_raise(j->rc, "sqlite query failed: %s (%s)", j->errmsg, sqlite3_errstr(j->rc));
        }
        if (iout) {
            int e = j->have_first ? val_int(&j->first, iout) : -ERANGE;
            return e < 0 ? aw_raise(e, "sqlite: the query gave no integer in row 0, column 0") : 0;
        }
    } else {
        c->inlined = 0; /* the worker call suspends: others ran */
        if (!(j = job_new(c, JOB_QUERY, sql, a, n)))
            return aw_raise(-ENOMEM, "sqlite: out of memory");
        j->want_rows = rows;
        rc = job_run(j, "query");
        if (j->abandoned)
            return rc;
    }
    if (rc == 0 && iout && (rc = aw_sqlite_res_int(j->res, 0, 0, iout)) < 0)
        rc = aw_raise(rc, "sqlite: the query gave no integer in row 0, column 0");
    if (rc == 0 && out) {
        *out = j->res;
        j->res = NULL;
    }
    long long changes = rc == 0 && j->res ? j->res->changes : 0;
    if (j == &ij)
        aw_sqlite_res_free(j->res);
    else
        job_free(j);
    if (rc == 0 && !out)
        return (int)(changes > 0x7fffffff ? 0x7fffffff : changes);
    return rc;
}

int aw_sqlite_query(aw_sqlite_t *c, aw_sqlite_res_t **out, const char *sql, const aw_sqlite_arg_t *args,
                    int nargs) {
    return sq_query(c, out, sql, args, nargs, true, NULL);
}

long long aw_sqlite_exec(aw_sqlite_t *c, const char *sql, const aw_sqlite_arg_t *args, int nargs) {
    return sq_query(c, NULL, sql, args, nargs, false, NULL);
}

int aw_sqlite_fetch_int(aw_sqlite_t *c, long long *out, const char *sql, const aw_sqlite_arg_t *args,
                        int nargs) {
    int rc = sq_query(c, NULL, sql, args, nargs, true, out);
    return rc < 0 ? rc : 0;
}

int aw_sqlite_script(aw_sqlite_t *c, const char *sql) {
    if (!c || !c->db)
        return aw_raise(-EBADF, "sqlite: not connected");
    aw__sq_job_t *j = job_new(c, JOB_SCRIPT, sql, NULL, 0);
    if (!j)
        return aw_raise(-ENOMEM, "sqlite: out of memory");
    int rc = job_run(j, "script");
    if (j->abandoned)
        return rc;
    job_free(j);
    return rc;
}

int aw_sqlite_errcode(const aw_sqlite_t *c) { return c->errcode; }

/* --- results ------------------------------------------------------------- */

static const aw__sq_val_t *cell(const aw_sqlite_res_t *r, int row, int col) {
    if (!r || row < 0 || col < 0 || row >= r->nrows || col >= r->ncols)
        return NULL;
    return &r->cells[(size_t)row * r->ncols + col];
}
int aw_sqlite_res_rows(const aw_sqlite_res_t *r) { return r ? r->nrows : 0; }
int aw_sqlite_res_cols(const aw_sqlite_res_t *r) { return r ? r->ncols : 0; }
const char *aw_sqlite_res_name(const aw_sqlite_res_t *r, int col) {
    return r && col >= 0 && col < r->ncols ? r->names[col] : NULL;
}
long long aw_sqlite_res_changes(const aw_sqlite_res_t *r) { return r ? r->changes : 0; }
long long aw_sqlite_res_last_id(const aw_sqlite_res_t *r) { return r ? r->last_id : 0; }
int aw_sqlite_res_type(const aw_sqlite_res_t *r, int row, int col) {
    const aw__sq_val_t *v = cell(r, row, col);
    return v ? v->type : -ERANGE;
}
bool aw_sqlite_res_isnull(const aw_sqlite_res_t *r, int row, int col) {
    const aw__sq_val_t *v = cell(r, row, col);
    return v && v->type == AW_SQLITE_NULL;
}
const char *aw_sqlite_res_text(const aw_sqlite_res_t *r, int row, int col) {
    const aw__sq_val_t *v = cell(r, row, col);
    return v && v->type == AW_SQLITE_TEXT ? v->p : NULL;
}
int aw_sqlite_res_int(const aw_sqlite_res_t *r, int row, int col, long long *out) {
    const aw__sq_val_t *v = cell(r, row, col);
    return v ? val_int(v, out) : -ERANGE;
}
static int val_int(const aw__sq_val_t *v, long long *out) {
    if (v->type == AW_SQLITE_NULL)
        return -ENODATA;
    if (v->type == AW_SQLITE_INT)
        *out = v->i;
    else if (v->type == AW_SQLITE_DOUBLE && v->d == (double)(long long)v->d)
        *out = (long long)v->d;
    else
        return -EINVAL;
    return 0;
}
int aw_sqlite_res_double(const aw_sqlite_res_t *r, int row, int col, double *out) {
    const aw__sq_val_t *v = cell(r, row, col);
    if (!v)
        return -ERANGE;
    if (v->type == AW_SQLITE_NULL)
        return -ENODATA;
    if (v->type == AW_SQLITE_DOUBLE)
        *out = v->d;
    else if (v->type == AW_SQLITE_INT)
        *out = (double)v->i;
    else
        return -EINVAL;
    return 0;
}
int aw_sqlite_res_blob(const aw_sqlite_res_t *r, int row, int col, const void **out, size_t *len) {
    const aw__sq_val_t *v = cell(r, row, col);
    if (!v)
        return -ERANGE;
    if (v->type == AW_SQLITE_NULL)
        return -ENODATA;
    if (v->type != AW_SQLITE_BLOB && v->type != AW_SQLITE_TEXT)
        return -EINVAL;
    *out = v->p;
    *len = (size_t)v->len;
    return 0;
}

/* --- transactions ----------------------------------------------------------- */

/* Enter is atomic with respect to cancellation (decision 7): BEGIN runs
 * as a job of its own; a caller cancelled while it is in flight leaves at
 * once, and if the job did open the transaction (or savepoint) its abandon
 * callback undoes it at once (sq_undo_now), its locks with it. A
 * connection inside a transaction begun by hand (aw_sqlite_exec(db,
 * "BEGIN")) is refused with -EINVAL: its COMMIT or ROLLBACK would end the
 * user's transaction (asyncpg refuses the same). */
/* Is c's transaction another task's? */
static bool sq_tx_foreign(aw_sqlite_t *c) { return c->txdepth > 0 && aw__owner_other(&c->txowner); }

static int sq_tx_enter(void *self, void **out) {
    aw_sqlite_tx_t *t = self;
    aw_sqlite_t *c = t->conn;
    *out = c;
    if (!c || !c->db)
        return aw_raise(-EBADF, "sqlite transaction: not connected");
    /* Entered again inside its own block: the inner block's level would
     * overwrite the outer's, and the outer's rollback would find no level
     * to undo (what the inner one did would stay, SEMANTICS K3). */
    if (t->entered)
        return aw_raise(-EBUSY, "sqlite: this transaction block is already entered: "
                        "each block needs its own aw_sqlite_tx()");
    /* Another task's block would become a savepoint of the owner's
     * transaction: its failure could not undo what the owner commits.
     * Only enter is checked: an exit stack may exit a block elsewhere. */
    if (sq_tx_foreign(c))
        return aw__owner_refuse(&c->txowner, "sqlite");
    aw__sq_job_t *j = job_new(c, JOB_BEGIN, NULL, NULL, 0);
    if (!j)
        return aw_raise(-ENOMEM, "sqlite: out of memory");
    j->depth = c->txdepth;
    j->immediate = t->immediate;
    int rc = job_run(j, j->depth ? "SAVEPOINT" : "BEGIN");
    if (j->abandoned)
        return rc; /* undone by the worker if it began */
    bool manual = j->manual;
    job_free(j);
    if (rc < 0)
        return rc;
    if (manual && sq_tx_foreign(c)) /* the owner's BEGIN ended while this one waited */
        return aw__owner_refuse(&c->txowner, "sqlite");
    if (manual)
        return aw_raise(-EINVAL, "sqlite: aw_sqlite_tx on a connection already inside a transaction "
                                 "begun by hand; commit or roll it back first");
    t->depth = c->txdepth++;
    t->entered = true;
    if (t->depth == 0)
        aw__owner_take(&c->txowner);
    return 0;
}

/* The rollback of level `depth` could not run now (the exit's grace ran
 * out while a cut COMMIT winds down on its worker, or it failed): run
 * when that job ends (job_abandon), or before the connection's next call,
 * if the level is still there, as for an abandoned BEGIN (decision 7).
 * Returns rc. */
static int sq_tx_undo_later(aw_sqlite_t *c, int depth, int rc) {
    if (!c->undo || depth + 1 < c->undo)
        c->undo = depth + 1;
    return rc;
}

/* Roll back the level `depth` (0: the transaction), if it is still
 * there. 0 or an error (raised). */
static int sq_tx_rollback(aw_sqlite_t *c, int depth) {
    char sql[96];
    long long rc;
    /* an interrupted write may have rolled the transaction back already */
    if ((rc = conn_ready(c)) < 0)
        return sq_tx_undo_later(c, depth, (int)rc);
    if (sqlite3_get_autocommit(c->db))
        return 0;
    if (depth) {
        snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT aw_sp_%d", depth);
        rc = aw_sqlite_exec(c, sql, NULL, 0);
        if (rc >= 0) {
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT aw_sp_%d", depth);
            rc = aw_sqlite_exec(c, sql, NULL, 0);
        }
    } else {
        rc = aw_sqlite_exec(c, "ROLLBACK", NULL, 0);
    }
    if (rc >= 0)
        return 0;
    sq_tx_undo_later(c, depth, (int)rc);
    if (!c->busy)
        sq_undo_now(c);
    return (int)rc;
}

static int sq_tx_exit(void *self, const aw_err_t *err) {
    aw_sqlite_tx_t *t = self;
    aw_sqlite_t *c = t->conn;
    t->entered = false;
    c->txdepth = t->depth;
    if (!err) {
        char sql[96];
        if (t->depth)
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT aw_sp_%d", t->depth);
        else
            snprintf(sql, sizeof sql, "COMMIT");
        long long rc = aw_sqlite_exec(c, sql, NULL, 0);
        if (rc >= 0)
            return 0;
        /* A COMMIT that failed (SQLITE_BUSY: a reader's lock outlived the
         * busy timeout) leaves the transaction open, its writes pending
         * and its locks held, blocking every other connection: the block
         * failed, so it is rolled back, as Python's sqlite3 does for
         * `with conn:` (SEMANTICS K3). The COMMIT's error stays. */
        int undo = sq_tx_rollback(c, t->depth);
        return undo < 0 ? undo : (int)rc;
    }
    return sq_tx_rollback(c, t->depth);
}
const aw_cm_type_t aw_sqlite_tx_type = {"sqlite_transaction", sq_tx_enter, sq_tx_exit, 0, 0};

/* --- rows as a generator --------------------------------------------------- */

int aw__sqlite_rows(aw_gen_t *g, void *arg) {
    aw_sqlite_cursor_t *cur = arg;
    aw_sqlite_t *c = cur->conn;
    if (!c || !c->db)
        return aw_raise(-EBADF, "sqlite: not connected");
    aw__sq_job_t *j = job_new(c, JOB_STEP, cur->sql, cur->args, cur->nargs);
    if (!j)
        return aw_raise(-ENOMEM, "sqlite: out of memory");
    j->want_rows = true;
    c->cursors++;
    int rc = 0;
    while (rc == 0) {
        rc = job_run(j, "row query");
        if (rc < 0)
            break;
        aw_sqlite_res_t *b = j->res;
        for (int i = 0; i < b->nrows && rc == 0; i++) {
            aw_sqlite_res_t row = *b;
            row.nrows = 1;
            row.cells = b->cells + (size_t)i * b->ncols;
            if (c->close_pending) /* closed in the loop's body: no row after */
                rc = aw_raise(-EBADF, "sqlite row query: the connection was closed");
            else if (aw_gen_yield(g, &row) < 0)
                rc = 1; /* the consumer left */
        }
        if (j->done)
            break;
    }
    bool abandoned = rc < 0 && j->abandoned; /* the pool frees j (and finalizes) when the step ends */
    if (!abandoned)
        job_free(j); /* its statement goes before the database closes */
    if (--c->cursors == 0 && c->close_pending && !c->busy)
        conn_free(c); /* closed in the loop's body (aw_sqlite_close) */
    return rc < 0 ? rc : 0;
}
