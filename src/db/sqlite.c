/* sqlite.c: SQLite on the loop's thread pool.
 *
 * Each call is a job: the arguments are copied into it (a cancelled caller
 * leaves before the job ends, so nothing may point into its frame), the
 * worker prepares (or finds in the per-connection cache), binds, steps
 * and copies the rows out, and the caller picks the result up. The
 * connection is opened SQLITE_OPEN_NOMUTEX: at most one job per connection
 * is in flight (`busy`), which the pool's queue hand-off orders, so no
 * lock is needed. A cancelled caller interrupts its job and leaves; the
 * job's abandon callback (loop thread) frees it, wakes whoever waits for
 * the connection, and closes the database if close was asked meanwhile. */
#include "../coro/alloc.h" /* aw__malloc ...: the allocator table */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/track.h>
#include <awith/thread.h>
#include <awith/event.h>
#include <awith/sqlite.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define AW__SQ_STMTS 32

typedef struct {
    char *sql;
    sqlite3_stmt *st;
} aw__sq_stmt_t;

struct aw_sqlite {
    aw_track_t track;             /* reported at loop close if never closed */
    sqlite3 *db;
    aw_event_t idle;              /* set when a job ends */
    bool busy;                    /* a job is in flight: one at a time */
    bool close_pending;
    int txdepth;                  /* aw_sqlite_tx blocks open on it */
    int undo;                     /* 1 + depth of a BEGIN/SAVEPOINT nobody entered; 0: none */
    int errcode;
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
    bool abandoned;               /* the pool owns it (caller cancelled) */
    bool submitting;              /* inside aw_to_thread: an abandon now means "never ran" */
    bool never_ran;
    sqlite3_stmt *st;             /* JOB_STEP: its own statement */
    bool done;                    /* JOB_STEP: no more rows */
    int depth;                    /* JOB_BEGIN: 0 BEGIN, > 0 SAVEPOINT aw_sp_<depth> */
    bool immediate;               /* JOB_BEGIN */
    bool begun;                   /* JOB_BEGIN: it ran and opened the transaction/savepoint */
    bool manual;                  /* JOB_BEGIN: refused, a transaction begun by hand is open */
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

static sqlite3_stmt *stmt_get(aw_sqlite_t *c, const char *sql, int *rc) {
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
    *rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
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
    c->stmts[0] = (aw__sq_stmt_t){copy, st};
    c->nstmts++;
    return st;
}

static void job_error(aw__sq_job_t *j, int rc) {
    j->rc = rc;
    const char *m = j->conn && j->conn->db ? sqlite3_errmsg(j->conn->db) : sqlite3_errstr(rc);
    snprintf(j->errmsg, sizeof j->errmsg, "%s", m);
}

static int bind_all(aw__sq_job_t *j, sqlite3_stmt *st) {
    int rc = SQLITE_OK;
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
    r->changes = sqlite3_changes64(c->db);
    r->last_id = sqlite3_last_insert_rowid(c->db);
    j->res = r;
    return SQLITE_OK;
}

static void run_query(aw__sq_job_t *j) {
    int rc;
    sqlite3_stmt *st = stmt_get(j->conn, j->sql, &rc);
    if (!st)
        return job_error(j, rc);
    if ((rc = bind_all(j, st)) != SQLITE_OK)
        job_error(j, rc);
    else
        step_rows(j, st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void run_step(aw__sq_job_t *j) {
    aw_sqlite_res_free(j->res);
    j->res = NULL;
    if (!j->st) {
        int rc = sqlite3_prepare_v2(j->conn->db, j->sql, -1, &j->st, NULL);
        if (rc == SQLITE_OK)
            rc = bind_all(j, j->st);
        if (rc != SQLITE_OK)
            return job_error(j, rc);
    }
    step_rows(j, j->st, AW__SQ_BATCH);
}

/* A BEGIN or SAVEPOINT whose caller was cancelled before it could enter
 * the block (decision 7): undone here, on the worker, before the
 * connection's next job runs, so no later call ever sees it. */
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

static void job_work(void *arg) {
    aw__sq_job_t *j = arg;
    j->rc = SQLITE_OK;
    if (j->kind != JOB_OPEN && j->conn->undo)
        run_undo(j->conn);
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
        sqlite3_busy_timeout(db, 5000);
        j->conn->db = db;
        return;
    }
    case JOB_SCRIPT: {
        char *err = NULL;
        int rc = sqlite3_exec(j->conn->db, j->sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
            j->rc = rc;
            snprintf(j->errmsg, sizeof j->errmsg, "%s", err ? err : sqlite3_errstr(rc));
        }
        sqlite3_free(err);
        return;
    }
    case JOB_STEP:
        run_step(j);
        return;
    case JOB_BEGIN:
        run_begin(j);
        return;
    default:
        run_query(j);
    }
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
        c->undo = j->depth + 1; /* began, but the caller left: the next job undoes it */
    job_free(j);
    if (c->close_pending)
        conn_free(c);
    else
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
    case SQLITE_IOERR: return -EIO;
    default: return -EREMOTEIO;
    }
}

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

/* Run a job, and free it unless it was abandoned. On success the caller
 * takes j->res before job_free. Returns 0 or an error (record raised). */
static int job_run(aw__sq_job_t *j, const char *what) {
    aw_sqlite_t *c = j->conn;
    int rc = c && j->kind != JOB_OPEN ? conn_ready(c) : 0;
    if (rc == 0)
        rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    if (j->kind != JOB_OPEN)
        c->busy = true;
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
            sqlite3_interrupt(c->db);
        }
        return rc;
    }
    if (j->kind != JOB_OPEN) {
        c->busy = false;
        if (c->close_pending) { /* closed by another task meanwhile */
            conn_free(c);
            c = NULL;
        } else {
            aw_event_set(&c->idle);
        }
    }
    if (rc < 0)
        return rc;
    if (j->rc != SQLITE_OK) {
        if (c)
            c->errcode = j->rc;
        return aw_raise(sq_code(j->rc), "sqlite %s failed: %s (%s)", what, j->errmsg, sqlite3_errstr(j->rc));
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
    if (c->busy) {
        c->close_pending = true; /* closed when the interrupted call ends */
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

static int sq_query(aw_sqlite_t *c, aw_sqlite_res_t **out, const char *sql, const aw_sqlite_arg_t *a, int n,
                    bool rows) {
    if (out)
        *out = NULL;
    if (!c || !c->db)
        return aw_raise(-EBADF, "sqlite: not connected");
    aw__sq_job_t *j = job_new(c, JOB_QUERY, sql, a, n);
    if (!j)
        return aw_raise(-ENOMEM, "sqlite: out of memory");
    j->want_rows = rows;
    int rc = job_run(j, "query");
    if (j->abandoned)
        return rc;
    if (rc == 0 && out) {
        *out = j->res;
        j->res = NULL;
    }
    long long changes = rc == 0 && j->res ? j->res->changes : 0;
    job_free(j);
    if (rc == 0 && !out)
        return (int)(changes > 0x7fffffff ? 0x7fffffff : changes);
    return rc;
}

int aw_sqlite_query(aw_sqlite_t *c, aw_sqlite_res_t **out, const char *sql, const aw_sqlite_arg_t *args,
                    int nargs) {
    return sq_query(c, out, sql, args, nargs, true);
}

long long aw_sqlite_exec(aw_sqlite_t *c, const char *sql, const aw_sqlite_arg_t *args, int nargs) {
    return sq_query(c, NULL, sql, args, nargs, false);
}

int aw_sqlite_fetch_int(aw_sqlite_t *c, long long *out, const char *sql, const aw_sqlite_arg_t *args,
                        int nargs) {
    aw_sqlite_res_t *r;
    int rc = aw_sqlite_query(c, &r, sql, args, nargs);
    if (rc < 0)
        return rc;
    rc = aw_sqlite_res_int(r, 0, 0, out);
    aw_sqlite_res_free(r);
    if (rc < 0)
        return aw_raise(rc, "sqlite: the query gave no integer in row 0, column 0");
    return 0;
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
    if (!v)
        return -ERANGE;
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
 * callback marks it for undoing, which the worker does before the
 * connection's next job. A connection inside a transaction begun by hand
 * (aw_sqlite_exec(db, "BEGIN")) is refused with -EINVAL: its COMMIT or
 * ROLLBACK would end the user's transaction (asyncpg refuses the same). */
static int sq_tx_enter(void *self, void **out) {
    aw_sqlite_tx_t *t = self;
    aw_sqlite_t *c = t->conn;
    *out = c;
    if (!c || !c->db)
        return aw_raise(-EBADF, "sqlite transaction: not connected");
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
    if (manual)
        return aw_raise(-EINVAL, "sqlite: aw_sqlite_tx on a connection already inside a transaction "
                                 "begun by hand; commit or roll it back first");
    t->depth = c->txdepth++;
    return 0;
}

static int sq_tx_exit(void *self, const aw_err_t *err) {
    aw_sqlite_tx_t *t = self;
    aw_sqlite_t *c = t->conn;
    c->txdepth = t->depth;
    char sql[96];
    long long rc;
    if (!err) {
        if (t->depth)
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT aw_sp_%d", t->depth);
        else
            snprintf(sql, sizeof sql, "COMMIT");
        rc = aw_sqlite_exec(c, sql, NULL, 0);
        return rc < 0 ? (int)rc : 0;
    }
    /* an interrupted write may have rolled the transaction back already */
    if ((rc = conn_ready(c)) < 0)
        return (int)rc;
    if (sqlite3_get_autocommit(c->db))
        return 0;
    if (t->depth) {
        snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT aw_sp_%d", t->depth);
        rc = aw_sqlite_exec(c, sql, NULL, 0);
        if (rc >= 0) {
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT aw_sp_%d", t->depth);
            rc = aw_sqlite_exec(c, sql, NULL, 0);
        }
    } else {
        rc = aw_sqlite_exec(c, "ROLLBACK", NULL, 0);
    }
    return rc < 0 ? (int)rc : 0;
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
            if (aw_gen_yield(g, &row) < 0)
                rc = 1; /* the consumer left */
        }
        if (j->done)
            break;
    }
    if (rc < 0 && j->abandoned)
        return rc; /* the pool frees j (and finalizes) when the step ends */
    job_free(j);
    return rc < 0 ? rc : 0;
}
