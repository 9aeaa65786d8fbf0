/* awith/sqlite.h: SQLite, the embedded default (aiosqlite's shape).
 *
 *   aw_with (aw_sqlite_t *db, aw_sqlite_connect("app.db")) {
 *       aw_sqlite_exec(db, "INSERT INTO t VALUES (?, ?)",
 *                      aw_sqlite_args(aw_sqlite_int(1), aw_sqlite_text("x")));
 *   }
 *
 * Every call runs on the loop's thread pool (SQLite blocks); the calling
 * task suspends, other tasks run. Except a short read: a query whose
 * statement is cached (its second use on) and only reads (SELECT, a
 * read-only PRAGMA) is first stepped on the loop's thread, without busy
 * waiting and for at most about 100 us; if it does not finish by then or
 * the database is locked, it is reset (a read changes nothing) and run on
 * the pool as any other call. Such a query does not suspend (a task that
 * runs them back to back yields every few), and costs about what a
 * synchronous sqlite3_step does, where the hand-off costs 10-50 us. One
 * call at a time per connection (the next one waits for the previous).
 * A call that finds the database locked waits out the busy timeout on
 * the loop (it sleeps between tries), not on a pool thread, so however
 * many wait, the pool stays free for the lock's holder (a row loop past
 * its first batch still waits on its thread). Values travel as bound
 * parameters, never spliced into SQL; statements are prepared once and
 * cached per connection (keyed by SQL text).
 *
 * Cancellation: the caller gets -ECANCELED at once and the statement is
 * stopped on its thread (SQLITE_INTERRUPT through a progress handler, that
 * statement only: a row loop open on the connection goes on); the
 * connection's next call waits for it to wind down (SQLite rolls back an
 * interrupted write). Closing while a call winds down closes the database
 * when it has.
 *
 * Errors (pending record: "sqlite: <message> (<code name>)"): -EREMOTEIO
 * an SQL error (syntax, constraint, ...; SQLITE_RANGE: more or fewer
 * arguments than the statement has parameters, never bound as NULL);
 * -EBUSY the database is locked past the busy timeout (5 s); -ENOENT
 * cannot open the file; -EACCES; -ENOMEM; -ECANCELED; -EINVAL
 * (SQLITE_MISUSE) SQL that holds more than one statement (a call runs
 * one; aw_sqlite_script runs several). aw_sqlite_errcode() gives SQLite's
 * extended code, and so does every record of an SQLite failure (origin
 * AW_ORIGIN_SQLITE, field origin_code: awith/err.h). */
#ifndef AWITH_SQLITE_H
#define AWITH_SQLITE_H

#include <awith/cm.h>
#include <awith/gen.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_sqlite aw_sqlite_t;
typedef struct aw_sqlite_res aw_sqlite_res_t;

enum { AW_SQLITE_NULL, AW_SQLITE_INT, AW_SQLITE_DOUBLE, AW_SQLITE_TEXT, AW_SQLITE_BLOB };

/* A bound parameter, by value; text and blobs are borrowed for the call. */
typedef struct aw_sqlite_arg {
    int type;                          /* AW_SQLITE_* */
    long long i;
    double d;
    const void *p;
    int len;                           /* text: -1 = up to NUL */
} aw_sqlite_arg_t;

/* Bound parameters, by value (no allocation, never fail): SQL NULL, an
 * integer, a double, text (up to its NUL) and a blob of n bytes; text and
 * blobs are borrowed until the call returns. */
#define aw_sqlite_null() ((aw_sqlite_arg_t){AW_SQLITE_NULL, 0, 0, NULL, 0})
#define aw_sqlite_int(v) ((aw_sqlite_arg_t){AW_SQLITE_INT, (v), 0, NULL, 0})
#define aw_sqlite_double(v) ((aw_sqlite_arg_t){AW_SQLITE_DOUBLE, 0, (v), NULL, 0})
#define aw_sqlite_text(s) ((aw_sqlite_arg_t){AW_SQLITE_TEXT, 0, 0, (s), -1})
#define aw_sqlite_blob(b, n) ((aw_sqlite_arg_t){AW_SQLITE_BLOB, 0, 0, (b), (int)(n)})
#define aw_sqlite_args(...)                         \
    (const aw_sqlite_arg_t[]){__VA_ARGS__},         \
        (int)(sizeof((aw_sqlite_arg_t[]){__VA_ARGS__}) / sizeof(aw_sqlite_arg_t))
#define aw_sqlite_noargs NULL, 0

/* Open (or create) a database file; ":memory:" for a private in-memory
 * one. Suspends (thread pool); a cancellation point. */
AW_API int aw_sqlite_open(aw_sqlite_t **out, const char *path);
/* Close (finalizes the cached statements). Never suspends; returns 0. A
 * call of this task still winding down after a cancel closes it when it
 * ends; closed in the body of a row loop on it (aw_sqlite_rows), it
 * closes when the loop ends, which it does at once, with -EBADF. The
 * caller owns the connection: no call of another task may be in progress
 * on it. */
AW_API int aw_sqlite_close(aw_sqlite_t *c);

typedef struct aw_sqlite_connect_state { const char *path; aw_sqlite_t *conn; } aw_sqlite_connect_t;
extern AW_API const aw_cm_type_t aw_sqlite_connect_type;
#define aw_sqlite_connect(path) aw_cm_temp(&aw_sqlite_connect_type, (aw_sqlite_connect_t){(path), NULL})

/* Run one statement; *out owns its rows (aw_sqlite_res_free). A
 * cancellation point; suspends, unless it is a short cached read run
 * inline (above). */
AW_API int aw_sqlite_query(aw_sqlite_t *c, aw_sqlite_res_t **out, const char *sql,
                           const aw_sqlite_arg_t *args, int nargs);
/* Run one statement, drop rows; returns the rows it inserted, updated or
 * deleted (>= 0; 0 for any other statement, whatever ran before). */
AW_API long long aw_sqlite_exec(aw_sqlite_t *c, const char *sql, const aw_sqlite_arg_t *args, int nargs);
AW_API int aw_sqlite_fetch_int(aw_sqlite_t *c, long long *out, const char *sql,
                               const aw_sqlite_arg_t *args, int nargs);
/* Several statements separated by ';', no parameters (schema scripts). */
AW_API int aw_sqlite_script(aw_sqlite_t *c, const char *sql);

/* Results, materialised: never suspend. Accessors return 0, -ERANGE,
 * -ENODATA (NULL) or -EINVAL (not that type). */
AW_API int aw_sqlite_res_rows(const aw_sqlite_res_t *r);
AW_API int aw_sqlite_res_cols(const aw_sqlite_res_t *r);
AW_API const char *aw_sqlite_res_name(const aw_sqlite_res_t *r, int col);
AW_API int aw_sqlite_res_type(const aw_sqlite_res_t *r, int row, int col);
AW_API bool aw_sqlite_res_isnull(const aw_sqlite_res_t *r, int row, int col);
AW_API const char *aw_sqlite_res_text(const aw_sqlite_res_t *r, int row, int col);
AW_API int aw_sqlite_res_int(const aw_sqlite_res_t *r, int row, int col, long long *out);
AW_API int aw_sqlite_res_double(const aw_sqlite_res_t *r, int row, int col, double *out);
AW_API int aw_sqlite_res_blob(const aw_sqlite_res_t *r, int row, int col, const void **out, size_t *len);
AW_API long long aw_sqlite_res_changes(const aw_sqlite_res_t *r);
AW_API long long aw_sqlite_res_last_id(const aw_sqlite_res_t *r);
AW_API void aw_sqlite_res_free(aw_sqlite_res_t *r);

AW_API int aw_sqlite_errcode(const aw_sqlite_t *c);

/* Row by row, as an async generator (rows are fetched 256 per trip to
 * the thread pool):
 *   aw_for (aw_sqlite_res_t *row, aw_sqlite_rows(db, "SELECT ...", aw_sqlite_noargs)) {...}
 * Each row is a one-row result valid until the next (do not free it).
 * Leaving early finalizes the statement. */
typedef struct aw_sqlite_cursor {
    aw_sqlite_t *conn;
    const char *sql;
    const aw_sqlite_arg_t *args;
    int nargs;
} aw_sqlite_cursor_t;
AW_API int aw__sqlite_rows(aw_gen_t *g, void *cursor);
#define aw_sqlite_rows(c, sql, ...) aw_gen(aw__sqlite_rows, (&(aw_sqlite_cursor_t){(c), (sql), __VA_ARGS__}))

/* Transactions: BEGIN (IMMEDIATE if asked) on enter, COMMIT on a clean
 * exit, ROLLBACK on error or cancel; nested blocks are savepoints. A
 * COMMIT that fails (-EBUSY: another connection's lock outlived the busy
 * timeout) is followed by a ROLLBACK: the block fails with the COMMIT's
 * error and leaves no transaction (nor its locks) on the connection. A
 * COMMIT the exit's grace cut short while it waited for a lock is rolled
 * back at once; a COMMIT or ROLLBACK cut while it runs goes on on its
 * worker, and if the transaction is still open when it ends, it is
 * rolled back then.
 * Enter suspends (thread pool) and is a cancellation point, atomic with
 * respect to cancellation (decision 7): a caller cancelled while BEGIN (or
 * SAVEPOINT) is in flight gets -ECANCELED at once, and if the statement
 * did begin, it is undone as soon as it ends, locks and all: no later
 * call sees a transaction nobody entered, and no other connection waits
 * for its lock (M1). Enter on a connection inside a transaction begun by
 * hand (aw_sqlite_exec(db, "BEGIN")) fails with -EINVAL and leaves that
 * transaction alone: the block's COMMIT or ROLLBACK would end it. A write interrupted inside a block (a cancel, a
 * deadline handled inside it) makes SQLite roll the whole transaction
 * back; every later call in the block then fails with -EREMOTEIO
 * (SQLITE_ABORT_ROLLBACK) until the block is left, rather than run in
 * autocommit mode and commit on its own (PostgreSQL's 25P02, likewise).
 * The blocks open on a connection belong to the task that entered the
 * outermost one: another task's enter fails with -EBUSY, naming that
 * task, and leaves its transaction alone (its block would be a savepoint
 * the owner's COMMIT commits though it failed). Only enter is checked: an
 * exit stack may exit the blocks in another task. Ownership does not move:
 * once the owner ended with its block in a parent's exit stack, no task
 * can enter a block on the connection until that stack exits it. */
typedef struct aw_sqlite_tx {
    aw_sqlite_t *conn;
    bool immediate;
    bool entered;                      /* private: its block runs */
    int depth;                         /* private */
} aw_sqlite_tx_t;
extern AW_API const aw_cm_type_t aw_sqlite_tx_type;
#define aw_sqlite_tx(c, ...) aw_cm_temp(&aw_sqlite_tx_type, (aw_sqlite_tx_t){.conn = (c), __VA_ARGS__})

#ifdef __cplusplus
}
#endif

#endif
