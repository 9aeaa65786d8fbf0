/* awith/pg.h: PostgreSQL on libpq's non-blocking API.
 *
 *   aw_with (aw_pg_t *db, aw_pg_connect("postgresql://u:p@127.0.0.1/db")) {
 *       aw_pg_res_t *r;
 *       if (aw_pg_query(db, &r, "SELECT $1::int + 1", aw_pg_args(aw_pg_int(41))) < 0)
 *           aw_leave();
 *       long long v; aw_pg_res_int(r, 0, 0, &v);    // 42
 *       aw_pg_res_free(r);
 *   }
 *
 * Every query goes through PQsendQueryParams (or a prepared statement):
 * values travel as parameters, never spliced into SQL text.
 *
 * Errors (negative, with a pending record whose message holds the
 * SQLSTATE): -ECONNRESET the connection was lost (or is poisoned and could
 * not be brought back in sync); -ECONNREFUSED the server cannot be reached;
 * -EACCES authentication failed; -ENOENT the database does not exist;
 * -EINVAL a malformed DSN, or over 65535 parameters (refused before
 * anything is sent); -ETIMEDOUT statement_timeout fired (SQLSTATE
 * 57014); -EREMOTEIO any other error the server reported (aw_pg_error()
 * gives SQLSTATE, message, detail, hint), a query another session
 * cancelled (57014 too) included; -ECANCELED (the caller's scope was
 * cancelled). Every record of a
 * server error carries its SQLSTATE (origin AW_ORIGIN_POSTGRES, field
 * sqlstate: awith/err.h), so it can be tested after the error has left
 * the connection's block.
 *
 * Cancellation: a query cancelled while the server runs it returns
 * -ECANCELED at once and leaves the connection *poisoned* (SEMANTICS K2):
 * out of sync. A background task (in the loop's root group) settles it:
 * it sends the cancel request (PQcancel, on the thread pool), drains what
 * the query left, and rolls back a transaction block left meanwhile, all
 * within 5 s, or closes the connection if that fails. Until it is done
 * every operation on the connection (and a pool's check) waits for it, so
 * a connection is never used out of sync; aw_pg_close meanwhile lets the
 * settle finish first (bounded) and then closes.
 *
 * A connection is used by one task at a time (-EBUSY otherwise). */
#ifndef AWITH_PG_H
#define AWITH_PG_H

#include <awith/cm.h>
#include <awith/gen.h>
#include <awith/pool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_pg aw_pg_t;          /* a connection */
typedef struct aw_pg_res aw_pg_res_t;  /* a result (libpq's PGresult) */

/* A query parameter: text (value NULL = SQL NULL) or binary bytes
 * (bytea). Built by the helpers below, by value, no malloc. */
typedef struct aw_pg_arg {
    const char *value;                 /* NULL and len 0: SQL NULL */
    int len;                           /* binary: byte count; -1: the text is in buf */
    int binary;
    char buf[32];                      /* aw_pg_int/aw_pg_double: the text */
} aw_pg_arg_t;

/* Query arguments, passed by value (no allocation, never fail): text
 * (borrowed until the call returns), SQL NULL, bytes (binary, borrowed),
 * an integer or a double (formatted into the argument itself), a boolean
 * ('t'/'f'). Values travel as parameters, never spliced into SQL. */
static inline aw_pg_arg_t aw_pg_text(const char *s) { aw_pg_arg_t a = {s, 0, 0, {0}}; return a; }
static inline aw_pg_arg_t aw_pg_null(void) { aw_pg_arg_t a = {NULL, 0, 0, {0}}; return a; }
static inline aw_pg_arg_t aw_pg_bytes(const void *p, size_t n) {
    aw_pg_arg_t a = {(const char *)p, (int)n, 1, {0}};
    return a;
}
static inline aw_pg_arg_t aw_pg_int(long long v) {
    aw_pg_arg_t a = {NULL, 0, 0, {0}};
    snprintf(a.buf, sizeof a.buf, "%lld", v);
    a.len = -1; /* in buf: the struct travels by value */
    return a;
}
static inline aw_pg_arg_t aw_pg_double(double v) {
    aw_pg_arg_t a = {NULL, 0, 0, {0}};
    snprintf(a.buf, sizeof a.buf, "%.17g", v);
    a.len = -1;
    return a;
}
static inline aw_pg_arg_t aw_pg_bool(bool v) { return aw_pg_text(v ? "t" : "f"); }
/* aw_pg_args(a, b, ...) expands to "array, count" for the calls below. */
#define aw_pg_args(...) \
    (const aw_pg_arg_t[]){__VA_ARGS__}, (int)(sizeof((aw_pg_arg_t[]){__VA_ARGS__}) / sizeof(aw_pg_arg_t))
#define aw_pg_noargs NULL, 0

/* What the server said about the last failure on this connection. */
typedef struct aw_pg_error {
    char sqlstate[6];                  /* "42601"; "" for client-side failures */
    char message[256], detail[256], hint[256];
} aw_pg_error_t;

/* Connect. PQconnectStart (which may resolve a host name) and each
 * PQconnectPoll step (SCRAM authentication computes PBKDF2: milliseconds
 * of CPU) run on the loop's thread pool; the loop only waits for the
 * socket between steps, so other tasks do not stall. Suspends; a
 * cancellation point; honours the caller's deadline (a step cut while it
 * runs is finished and closed by the pool). On failure nothing is left
 * open. */
AW_API int aw_pg_open(aw_pg_t **out, const char *dsn);
/* Close (PQfinish). Never suspends; idempotent on NULL. The caller owns
 * the connection: no operation of another task may be in progress on it. */
AW_API void aw_pg_close(aw_pg_t *c);

/* The connection as a manager: enter opens, exit closes. */
typedef struct aw_pg_connect_state { const char *dsn; aw_pg_t *conn; } aw_pg_connect_t;
extern AW_API const aw_cm_type_t aw_pg_connect_type;
#define aw_pg_connect(dsn) aw_cm_temp(&aw_pg_connect_type, (aw_pg_connect_t){(dsn), NULL})

/* Run one statement; on success *out owns the result (free it with
 * aw_pg_res_free). Suspends; a cancellation point. */
AW_API int aw_pg_query(aw_pg_t *c, aw_pg_res_t **out, const char *sql,
                       const aw_pg_arg_t *args, int nargs);
/* Same through a named prepared statement, prepared on first use and
 * cached per connection (keyed by the SQL text; the 64 last prepared: the
 * one it forgets is deallocated on the server, a round trip). A cached statement the
 * server no longer accepts (SQLSTATE 0A000 "cached plan must not change
 * result type" after ALTER TABLE, or 26000 after a DEALLOCATE of it by
 * hand) is dropped and prepared again: outside a transaction the call is
 * retried once, silently; inside one the transaction has failed, so the
 * call fails (-EREMOTEIO, the record says why) and the next one prepares
 * afresh. DISCARD ALL or DEALLOCATE ALL run by hand empties the cache at
 * once. */
AW_API int aw_pg_query_prepared(aw_pg_t *c, aw_pg_res_t **out, const char *sql,
                                const aw_pg_arg_t *args, int nargs);
/* Run a statement, drop its rows: returns the affected row count (>= 0). */
AW_API long long aw_pg_exec(aw_pg_t *c, const char *sql, const aw_pg_arg_t *args, int nargs);
/* Run a query whose first column of the first row is an integer. */
AW_API int aw_pg_fetch_int(aw_pg_t *c, long long *out, const char *sql,
                           const aw_pg_arg_t *args, int nargs);

/* Run `sql` once per argument set, all in flight together (pipeline
 * mode): args holds n * nargs parameters. `sql` is a named prepared
 * statement from the connection's cache (prepared on first use, as
 * aw_pg_query_prepared; prepared again once, outside a transaction, when
 * a schema change made it stale). The whole pipeline is one implicit
 * transaction on the server (unless its statements make their own): the
 * first failure makes the rest fail and undoes the queries before it.
 * `each` (may be NULL) sees every result before a failure, in order; a
 * non-zero return stops sending (what was sent is drained). Returns 0 or
 * the first error. Suspends; a cancellation point (a cancel poisons the
 * connection until it is back in sync: the settle fails what the cut
 * pipeline sent before its sync, so none of it commits, drains it and
 * keeps the connection). */
AW_API int aw_pg_pipeline(aw_pg_t *c, const char *sql, const aw_pg_arg_t *args, int nargs, int n,
                          int (*each)(void *ctx, int i, const aw_pg_res_t *r), void *ctx);

/* Results. Row and column numbers start at 0. Never suspend. Accessors
 * return 0, -ERANGE (out of range), -ENODATA (NULL value) or -EINVAL (not
 * parseable as the type asked for). */
AW_API int aw_pg_res_rows(const aw_pg_res_t *r);
AW_API int aw_pg_res_cols(const aw_pg_res_t *r);
AW_API const char *aw_pg_res_name(const aw_pg_res_t *r, int col);
AW_API long long aw_pg_res_affected(const aw_pg_res_t *r);
AW_API bool aw_pg_res_isnull(const aw_pg_res_t *r, int row, int col);
/* Text form (also timestamps), borrowed from the result; NULL for NULL. */
AW_API const char *aw_pg_res_text(const aw_pg_res_t *r, int row, int col);
AW_API int aw_pg_res_int(const aw_pg_res_t *r, int row, int col, long long *out);
AW_API int aw_pg_res_double(const aw_pg_res_t *r, int row, int col, double *out);
AW_API int aw_pg_res_bool(const aw_pg_res_t *r, int row, int col, bool *out);
/* bytea, decoded into a buffer the caller frees with aw_free() (free()
 * with the default allocator, awith/alloc.h). */
AW_API int aw_pg_res_bytea(const aw_pg_res_t *r, int row, int col, unsigned char **out, size_t *len);
AW_API void aw_pg_res_free(aw_pg_res_t *r);

/* The last server error on this connection (cleared by each new call). */
AW_API const aw_pg_error_t *aw_pg_error(const aw_pg_t *c);
/* Poisoned: a cancelled operation left it out of sync (K2). */
AW_API bool aw_pg_poisoned(const aw_pg_t *c);
/* Usable: connected and not poisoned. */
AW_API bool aw_pg_ok(const aw_pg_t *c);
/* The server process id serving this connection (pg_stat_activity.pid). */
AW_API int aw_pg_backend_pid(const aw_pg_t *c);
/* Wait until a poisoned connection is back in sync (drained within 5 s).
 * Suspends; a cancellation point. 0, or -ECONNRESET (it is closed for
 * good). */
AW_API int aw_pg_resync(aw_pg_t *c);

/* DISCARD ALL (session state back to new, UNLISTEN * included), forget
 * the cached prepared statements and drop the notifications libpq has
 * queued. A transaction begun by hand (aw_pg_exec(db, "BEGIN"), no
 * aw_pg_tx block open) is rolled back first; inside a block, reset fails
 * (25001) and leaves the block's transaction to its exit. Suspends; a cancellation point. */
AW_API int aw_pg_reset(aw_pg_t *c);

/* Pool callbacks for PostgreSQL connections (awith/pool.h); the pool's
 * context is the DSN (const char *, borrowed). On acquire a local liveness
 * check (no round trip: what the server sent an idle connection is read
 * and parsed, so a terminated backend's FATAL message is noticed before
 * its EOF arrives) replaces dead idle connections, and waits for a settle
 * in progress; a connection released less than 1 ms before is not read
 * again (what could have come since is as likely to come just after the
 * check: the first query finds it), so that releasing and taking a
 * connection again costs no system call. On release a broken or mid-transaction connection is closed,
 * and so is one with a row or notification loop still open on it (iterated by hand: the loop,
 * resumed, ends quietly when closed, with -ECONNRESET when asked for more),
 * or a transaction block an exit stack keeps (its exit finds it closed);
 * one cut mid-query is kept while it settles (the settle also ends its
 * transaction), and never handed out before it is back in sync (K2): a
 * cancel storm does not make the pool reconnect. On release, the session
 * state its user changed is reset (a command cut while its answer was in
 * flight included: the settle reads its tag), and only that: SET SESSION
 * AUTHORIZATION DEFAULT and RESET ALL after SET or set_config (or a
 * reported parameter that changed; a role taken is dropped), UNLISTEN * after
 * LISTEN, pg_advisory_unlock_all() after an advisory lock, DISCARD TEMP
 * after CREATE or a temporary table, CLOSE ALL after DECLARE, DISCARD
 * ALL after a PREPARE of the user's own or a DO block (found from the command tags,
 * the reported parameters and, for function calls, the SQL text); a
 * connection that only ran queries costs no round trip and keeps its
 * cached prepared statements. The _reset variant runs DISCARD ALL on
 * every release instead (one round trip; the cached statements are
 * prepared again; after the settle for a cut connection). */
extern AW_API const aw_pool_ops_t aw_pg_pool_ops;
extern AW_API const aw_pool_ops_t aw_pg_pool_ops_reset;

/* Transactions (asyncpg's `async with conn.transaction()`): BEGIN on
 * enter; on exit COMMIT when the block left clean, ROLLBACK on an error or
 * a cancel. Nested blocks on one connection are savepoints. Enter
 * suspends and is a cancellation point, atomic with respect to
 * cancellation (decision 7): if BEGIN (or SAVEPOINT) is cut in flight,
 * enter fails and the level is rolled back by the connection's settle
 * before any later operation runs. On a connection already inside a
 * transaction begun by hand (aw_pg_exec(db, "BEGIN")) enter fails with
 * -EINVAL and leaves that transaction alone; a block whose transaction
 * was ended inside it by hand (COMMIT or ROLLBACK run as SQL) fails on
 * exit with -EINVAL (what ran after that was committed statement by
 * statement). An exit on a connection cut
 * mid-query (settling) leaves the rollback to the settle and returns at
 * once. The blocks open on a connection belong to the task that entered
 * the outermost one: another task's enter fails with -EBUSY, naming that
 * task, and leaves its transaction alone (its block would be a savepoint
 * the owner's COMMIT commits though it failed). Only enter is checked: an
 * exit stack may exit the blocks in another task. Ownership does not move:
 * once the owner ended with its block in a parent's exit stack, no task
 * can enter a block on the connection until that stack exits it. A block
 * kept beyond its connection (by an exit stack, while the connection's
 * own block or its pool's release closes it) finds it closed: its exit
 * says the transaction was lost (-ECONNRESET on a clean way out; the
 * server rolled it back), and never touches the freed connection. */
enum { AW_PG_DEFAULT = 0, AW_PG_READ_COMMITTED, AW_PG_REPEATABLE_READ, AW_PG_SERIALIZABLE };
typedef struct aw_pg_tx {
    aw_pg_t *conn;
    int isolation;                     /* AW_PG_* (outermost only; else enter: -EINVAL) */
    bool readonly;
    bool deferrable;
    bool entered;                      /* private: its block runs */
    int depth;                         /* private: 0 outermost */
} aw_pg_tx_t;
extern AW_API const aw_cm_type_t aw_pg_tx_type;
/* aw_with (aw_pg_tx(db)) {...}   aw_with (aw_pg_tx(db, .readonly = true)) {...} */
#define aw_pg_tx(c, ...) aw_cm_temp(&aw_pg_tx_type, (aw_pg_tx_t){.conn = (c), __VA_ARGS__})

/* Row by row (single-row mode), as an async generator:
 *   aw_for (aw_pg_res_t *row, aw_pg_rows(db, "SELECT ...", aw_pg_noargs)) {...}
 * Each row is a one-row result, valid until the next. Leaving the loop
 * early cancels the rest of the query on the server and drains it; inside
 * a transaction (aw_pg_tx, or one begun by hand) it reads and drops the
 * rest instead, since a cancel would abort the transaction: a block left
 * by `break` still commits. A rest that takes over a second to arrive is
 * cancelled after all and the loop fails with -ETIMEDOUT, saying the
 * transaction is lost (stop such a query on the server: LIMIT, a
 * cursor); an error the server raises in the rest fails the loop too. */
typedef struct aw_pg_cursor {
    aw_pg_t *conn;
    const char *sql;
    const aw_pg_arg_t *args;
    int nargs;
} aw_pg_cursor_t;
AW_API int aw__pg_rows(aw_gen_t *g, void *cursor);
#define aw_pg_rows(c, sql, ...) aw_gen(aw__pg_rows, (&(aw_pg_cursor_t){(c), (sql), __VA_ARGS__}))

/* LISTEN/NOTIFY, as an async generator of notifications (runs LISTEN on
 * the channel first; the channel is an identifier, quoted by libpq).
 * Only that channel's notifications are yielded (others queued on the
 * connection are dropped). Leaving the loop by any way (break, cancel,
 * error) runs UNLISTEN (shielded, bounded) and drops what is still
 * queued. aw_pg_reset and a pool's release drop queued notifications
 * too: one user's notifications never reach the connection's next user. */
typedef struct aw_pg_notify {
    const char *channel, *payload;
    int pid;
} aw_pg_notify_t;
typedef struct aw_pg_listen {
    aw_pg_t *conn;
    const char *channel;
} aw_pg_listen_t;
AW_API int aw__pg_listen(aw_gen_t *g, void *listen);
#define aw_pg_notifications(c, channel) aw_gen(aw__pg_listen, (&(aw_pg_listen_t){(c), (channel)}))

#ifdef __cplusplus
}
#endif

#endif
