/* pg.c: PostgreSQL connections on libpq's non-blocking API.
 *
 * Every operation is: send (PQsendQueryParams & co.), flush (waiting for
 * the socket to be writable), then read results (PQconsumeInput until
 * PQisBusy is false, waiting for readability). The loop's reactor is
 * edge-triggered and libpq may leave bytes in the socket after one read, so
 * before waiting we peek (MSG_PEEK): waiting on data already there would
 * hang. libpq closes its socket by itself when the connection drops or
 * when connect moves to another address; we forget the fd in the reactor
 * whenever PQsocket changes, so a recycled fd number starts clean.
 *
 * A wait interrupted mid-protocol (cancel, deadline) marks the connection
 * poisoned and the caller leaves at once. A settler task (in the loop's
 * root group) then sends the cancel request (PQcancel, on the thread
 * pool: it blocks, and the postmaster forks to serve it), drains the
 * pending results and runs what was left to do once in sync (the
 * rollback of a transaction block left meanwhile, a pool's reset), all
 * within 5 s; if that fails it closes the connection. Until it is done
 * every operation on the connection waits for it: a connection is never
 * used out of sync, and a pool can keep it instead of opening another
 * (issue 11, 2.3-2.4). If the settler cannot be spawned, the next
 * operation does the same inline. */
#include "../coro/alloc.h" /* aw__malloc ...: the allocator table */
#include "../core/core.h"  /* aw__task_cur: where the block being entered is */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/track.h>
#include <awith/thread.h>
#include <awith/fd.h>
#include <awith/pg.h>
#include <awith/event.h>
#include <awith/group.h>


#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define AW__PG_STMTS 64        /* prepared statements cached per connection */
#define AW__PG_RESYNC AW_SEC(5)

typedef struct aw__pg_stmt {
    char *sql;
    char name[24];
    unsigned dirt;             /* session state its SQL may change (PG_DIRTY_*) */
} aw__pg_stmt_t;

/* Session state a connection's user may have changed, which the next user
 * of a pooled connection must not inherit: found from each command's tag
 * (SET, LISTEN, PREPARE, DECLARE CURSOR, CREATE ...), from the SQL of
 * function calls no tag shows (advisory locks, set_config, temporary
 * tables made by SELECT INTO / CREATE TABLE AS), and from the reported
 * parameters (application_name, TimeZone, ...: ParameterStatus) compared
 * with those at connect. A pool's release resets only what changed
 * (pg_reset_changed): nothing, and no round trip, for the usual
 * connection that only ran queries (issue 14). */
enum {
    PG_DIRTY_GUC = 1,          /* SET SESSION AUTHORIZATION DEFAULT, RESET ALL */
    PG_DIRTY_LISTEN = 2,       /* UNLISTEN * */
    PG_DIRTY_LOCK = 4,         /* SELECT pg_advisory_unlock_all() */
    PG_DIRTY_TEMP = 8,         /* DISCARD TEMP */
    PG_DIRTY_CURSOR = 16,      /* CLOSE ALL */
    PG_DIRTY_PREPARE = 32,     /* DISCARD ALL (and forget our own statements): a
                                * PREPARE of the user's, or a DO block */
};

struct aw_pg {
    aw_track_t track;          /* reported at loop close if never closed */
    PGconn *pg;
    int fd;                    /* the fd known to the reactor, or -1 */
    bool poisoned;
    bool busy;
    bool settling;             /* a settler task owns the socket */
    bool close_pending;        /* closed while still held: see pg_free_unheld */
    bool released;             /* back in a pool while settling: end outside a transaction */
    bool reset_pending;        /* a pool's reset, to run once in sync */
    bool reset_changed;        /* ...of what changed: decided once drained (pg_sync) */
    bool gone;                 /* the server said FATAL while it was idle: it is closing */
    bool answer_due;           /* a command just went out, no wait since: see pg_next */
    bool pipe_synced;          /* the running pipeline's sync went out: see pg_drain_pipeline */
    aw_ns_t idle_since;        /* back in a pool at (its reset ran): see pool_check */
    char gonemsg[200];         /* what it said */
    int undo;                  /* 1 + the transaction depth to roll back once in sync; 0 none */
    int gens;                  /* row or notification loops suspended at a yield on it */
    aw_event_t settled;
    int txdepth;
    aw__owner_t txowner;       /* the task that entered the outermost block */
    unsigned dirty;            /* PG_DIRTY_*: session state changed since the last reset */
    uint64_t params0;          /* hash of the reported parameters at connect */
    unsigned preported;        /* which of pg_param_names the server reports */
    int nstmts;
    unsigned stmtseq;
    aw_pg_error_t err;
    aw__pg_stmt_t stmts[AW__PG_STMTS];
};

#define RES(r) ((PGresult *)(r))

/* The reactor must forget a socket libpq replaced or closed. */
static void pg_sockcheck(aw_pg_t *c) {
    int s = c->pg ? PQsocket(c->pg) : -1;
    if (s != c->fd) {
        if (c->fd >= 0)
            aw_fd_forget(c->fd);
        c->fd = s;
    }
}

/* Bytes (or EOF) waiting in the socket that libpq has not read yet? */
static bool pg_pending(int fd) {
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

static void pg_copy(char *dst, size_t n, const char *src) {
    if (!src)
        src = "";
    size_t l = strlen(src);
    while (l && (src[l - 1] == '\n' || src[l - 1] == ' '))
        l--;
    if (l >= n)
        l = n - 1;
    memcpy(dst, src, l);
    dst[l] = 0;
}

static int pg_lost(aw_pg_t *c, const char *what) {
    pg_copy(c->err.message, sizeof c->err.message, c->pg ? PQerrorMessage(c->pg) : "closed");
    c->err.sqlstate[0] = 0;
    return aw_raise(-ECONNRESET, "postgres: connection lost during %s: %s", what,
                    c->err.message[0] ? c->err.message : "no connection");
}

/* The error a failed result carries, as a code and a record. */
static int pg_fail(aw_pg_t *c, PGresult *res, const char *what) {
    if (!res || PQstatus(c->pg) == CONNECTION_BAD) {
        if (res)
            PQclear(res);
        return pg_lost(c, what);
    }
    aw_pg_error_t *e = &c->err;
    pg_copy(e->sqlstate, sizeof e->sqlstate, PQresultErrorField(res, PG_DIAG_SQLSTATE));
    pg_copy(e->message, sizeof e->message, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    if (!e->message[0])
        pg_copy(e->message, sizeof e->message, PQresultErrorMessage(res));
    pg_copy(e->detail, sizeof e->detail, PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    pg_copy(e->hint, sizeof e->hint, PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
    /* a connection error class (08, 57P0x) means the session ends only
     * when the server says FATAL: a wrong parameter count is 08P01 too,
     * an ERROR after which the connection goes on */
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    bool fatal = !sev || !strcmp(sev, "FATAL") || !strcmp(sev, "PANIC");
    PQclear(res);
    int code = -EREMOTEIO;
    /* 57014 reaches here only from the server's side (statement_timeout,
     * lock_timeout, another session's pg_cancel_backend): a cancel of
     * ours returns -ECANCELED from its wait and the settler drains the
     * answer. Nothing cancelled the caller's scope, so the rest is a
     * server error, not -ECANCELED (decision 1) */
    if (!strcmp(e->sqlstate, "57014") && strstr(e->message, "timeout"))
        code = -ETIMEDOUT;
    else if ((!strncmp(e->sqlstate, "08", 2) || !strncmp(e->sqlstate, "57P0", 4)) && fatal)
        code = -ECONNRESET;
    aw_raise(code, "postgres %s failed: SQLSTATE %s: %s%s%s%s%s", what, e->sqlstate,
             e->message, e->detail[0] ? "; detail: " : "", e->detail,
             e->hint[0] ? "; hint: " : "", e->hint);
    aw_err_set_origin(AW_ORIGIN_POSTGRES, 0, e->sqlstate);
    return code;
}

/* Send a cancel request from the thread pool: PQcancel blocks. */
typedef struct aw__pg_cancel {
    PGcancel *cn;
} aw__pg_cancel_t;

static void pg_cancel_work(void *arg) {
    aw__pg_cancel_t *j = arg;
    char buf[256];
    PQcancel(j->cn, buf, sizeof buf);
}
static void pg_cancel_free(void *arg) {
    aw__pg_cancel_t *j = arg;
    PQfreeCancel(j->cn);
    aw__free(j);
}

/* Ask the server to stop what runs on c; returns once the postmaster has
 * taken the request (or the caller was cancelled: the job finishes on its
 * own). */
static void pg_cancel_send(aw_pg_t *c) {
    aw__pg_cancel_t *j = aw__malloc(sizeof *j);
    if (!j)
        return;
    j->cn = PQgetCancel(c->pg);
    if (!j->cn) {
        aw__free(j);
        return;
    }
    if (aw_to_thread(pg_cancel_work, j, pg_cancel_free) != -ECANCELED)
        pg_cancel_free(j); /* ran, or never started (-ENOMEM, -EAGAIN): ours */
}

static int pg_wait(aw_pg_t *c, int events) {
    pg_sockcheck(c);
    if (c->fd < 0)
        return pg_lost(c, "wait");
    return aw_fd_wait(c->fd, events);
}

static int pg_flush(aw_pg_t *c) {
    int r;
    while ((r = PQflush(c->pg)) == 1) {
        if (!PQconsumeInput(c->pg))
            return pg_lost(c, "send");
        int rc = pg_wait(c, AW_WRITE);
        if (rc < 0)
            return rc;
    }
    return r < 0 ? pg_lost(c, "send") : 0;
}

/* Wait for the next result; *out NULL means the command is complete.
 * Before waiting, a peek (MSG_PEEK) makes sure the socket holds nothing
 * libpq left unread: the reactor is edge-triggered, and an edge already
 * consumed by an earlier wait does not come again. The peek is skipped
 * for the first wait after a command went out (c->answer_due): its
 * answer has not been read by anyone, so it either made an edge the
 * reactor remembers (the wait returns at once) or will make one; a
 * stale edge only makes that wait return early, and the loop peeks from
 * then on. One system call less per query (issue 14): a send, a recv
 * and a share of the loop's epoll_wait (2.2 per query through a pool of
 * 10; 3.2 with the peek), against synchronous libpq's send, poll, recv. */
static int pg_next(aw_pg_t *c, PGresult **out) {
    while (PQisBusy(c->pg)) {
        pg_sockcheck(c);
        if (c->fd < 0)
            return pg_lost(c, "read");
        bool due = c->answer_due;
        c->answer_due = false;
        if (due || !pg_pending(c->fd)) {
            int rc = aw_fd_wait(c->fd, AW_READ);
            if (rc < 0)
                return rc;
        }
        if (!PQconsumeInput(c->pg))
            return pg_lost(c, "read");
    }
    c->answer_due = false;
    *out = PQgetResult(c->pg);
    return 0;
}

static void pg_close_hard(aw_pg_t *c) {
    if (c->fd >= 0)
        aw_fd_forget(c->fd);
    c->fd = -1;
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    for (int i = 0; i < c->nstmts; i++)
        aw__free(c->stmts[i].sql);
    c->nstmts = 0;
}

static void pg_note_tag(aw_pg_t *c, const PGresult *res);

/* A pipeline cut before its sync was read: a sync of our own goes out
 * (whether the pipeline's did or not, the server answers each; the
 * cancel request stops the query running and the server skips the rest
 * up to a sync), then everything is read until libpq lets the pipeline
 * end. A timed-out pipeline leaves a usable connection, as a query does.
 * Cut before its own sync went out, it is failed first by a statement
 * that always fails: the cancel request finds nothing to stop when the
 * server has run all that was sent and waits for more, and our sync
 * would then commit the queries sent so far (the pipeline is one
 * transaction: all or nothing). Inside a transaction block the failure
 * fails the block's transaction, as a cancel that lands does. */
static int pg_drain_pipeline(aw_pg_t *c) {
    if (!c->pipe_synced &&
        !PQsendQueryParams(c->pg, "SELECT 'awith: a cut pipeline is undone'::int", 0, NULL, NULL, NULL, NULL, 0))
        return pg_lost(c, "settle");
    if (!PQpipelineSync(c->pg))
        return pg_lost(c, "settle");
    int rc = pg_flush(c);
    while (rc == 0) {
        PGresult *res;
        if ((rc = pg_next(c, &res)) < 0)
            break;
        if (!res) {
            if (PQexitPipelineMode(c->pg))
                return 0;
            continue; /* one query's end: more are queued */
        }
        if (PQresultStatus(res) == PGRES_COMMAND_OK) /* a SET: for a pool's reset */
            pg_note_tag(c, res);
        PQclear(res);
    }
    return rc;
}

static int pg_drain(aw_pg_t *c) {
    if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF)
        return pg_drain_pipeline(c);
    for (;;) {
        PGresult *res;
        int rc = pg_next(c, &res);
        if (rc < 0)
            return rc;
        if (!res)
            return 0;
        /* a command cut while its answer was in flight (a SET) ran all
         * the same: what it changed is for a pool's reset to undo */
        if (PQresultStatus(res) == PGRES_COMMAND_OK)
            pg_note_tag(c, res);
        PQclear(res);
    }
}

static int pg_settle_task(void *arg);

/* Run one or more statements (simple protocol) on a connection known to
 * be in sync; no poisoning: the settler's own steps. */
static int pg_run(aw_pg_t *c, const char *sql) {
    if (!PQsendQuery(c->pg, sql))
        return pg_lost(c, "settle");
    int rc = pg_flush(c), bad = 0;
    PGresult *res;
    while (rc == 0 && (rc = pg_next(c, &res)) == 0 && res) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE)
            bad = -EREMOTEIO;
        PQclear(res);
    }
    return rc < 0 ? rc : bad;
}

/* Drop the notifications libpq has queued (read and parsed): what was
 * sent to a previous user of the connection is not the next one's. */
static void pg_drop_notifies(aw_pg_t *c) {
    PGnotify *n;
    while (c->pg && (n = PQnotifies(c->pg)))
        PQfreemem(n);
}

static void pg_forget_stmts(aw_pg_t *c) {
    for (int i = 0; i < c->nstmts; i++)
        aw__free(c->stmts[i].sql);
    c->nstmts = 0;
}

/* The reported parameters a user can change (SET, set_config): a hash of
 * their values, compared with the one at connect on every release to a
 * pool. Each PQparameterStatus walks libpq's list of the ~13 reported
 * parameters with strcmp, about 90 instructions a name: the names the
 * server did not report at connect are skipped (a server reports the same
 * set all along: search_path only from PostgreSQL 18 on), and
 * client_encoding is libpq's own copy (PQclientEncoding: no walk). 7
 * lookups cost 2,440 instructions per release, 1,470 now (issue 14). */
static const char *const pg_param_names[] = {"application_name", "TimeZone", "DateStyle", "IntervalStyle",
                                             "search_path", "default_transaction_read_only"};

static unsigned pg_params_reported(const aw_pg_t *c) {
    unsigned m = 0;
    for (unsigned i = 0; i < sizeof pg_param_names / sizeof *pg_param_names; i++)
        if (PQparameterStatus(c->pg, pg_param_names[i]))
            m |= 1u << i;
    return m;
}

static uint64_t pg_params_hash(const aw_pg_t *c) {
    if (!c->pg)
        return 0;
    uint64_t h = (1469598103934665603ULL ^ (unsigned)PQclientEncoding(c->pg)) * 1099511628211ULL;
    for (unsigned i = 0; i < sizeof pg_param_names / sizeof *pg_param_names; i++) {
        if (!(c->preported & 1u << i))
            continue;
        const char *v = PQparameterStatus(c->pg, pg_param_names[i]);
        for (const char *p = v ? v : "\1"; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

/* "temp" or "temporary" as a word of sql (CREATE TEMP TABLE ... AS,
 * SELECT ... INTO TEMP t: tagged SELECT, not CREATE). */
static bool pg_sql_temp(const char *sql) {
    for (const char *p = sql; (p = strcasestr(p, "temp")); p += 4) {
        bool before = p == sql || strchr(" \t\n\r(", p[-1]);
        const char *q = p + 4;
        if (!strncasecmp(q, "orary", 5))
            q += 5;
        if (before && (!*q || strchr(" \t\n\r", *q)))
            return true;
    }
    return false;
}

/* What sql may change that no command tag shows. */
static unsigned pg_sql_dirt(const char *sql) {
    unsigned d = 0;
    if (strcasestr(sql, "advisory"))
        d |= PG_DIRTY_LOCK;
    if (strcasestr(sql, "set_config"))
        d |= PG_DIRTY_GUC;
    if (pg_sql_temp(sql))
        d |= PG_DIRTY_TEMP;
    return d;
}

/* What a finished command's tag says it changed. */
static void pg_note_tag(aw_pg_t *c, const PGresult *res) {
    const char *t = PQcmdStatus((PGresult *)res);
    if (!t)
        return;
    switch (t[0]) {
    case 'S':
        if (!strcmp(t, "SET"))
            c->dirty |= PG_DIRTY_GUC;
        break;
    case 'L':
        if (!strcmp(t, "LISTEN"))
            c->dirty |= PG_DIRTY_LISTEN;
        break;
    case 'P':
        if (!strcmp(t, "PREPARE"))
            c->dirty |= PG_DIRTY_PREPARE;
        break;
    case 'D':
        if (!strcmp(t, "DECLARE CURSOR"))
            c->dirty |= PG_DIRTY_CURSOR;
        else if (!strcmp(t, "DO")) /* its SET, its EXECUTE 'LISTEN ...': no tag shows them */
            c->dirty |= PG_DIRTY_PREPARE;
        else if (!strcmp(t, "DISCARD ALL") || !strcmp(t, "DEALLOCATE ALL"))
            pg_forget_stmts(c); /* by hand: gone on the server (see pg_stmt_evict) */
        break;
    case 'C':
        if (!strncmp(t, "CREATE", 6)) /* a temporary object maybe: DISCARD TEMP is cheap */
            c->dirty |= PG_DIRTY_TEMP;
        break;
    }
}

/* Drain what the interrupted operation left, then what was left to do
 * once in sync: roll back a transaction level whose block was left
 * meanwhile (c->undo), end any transaction of a connection handed back to
 * a pool, a pool's reset. 0, or < 0: it cannot be trusted (close it). */
static int pg_sync(aw_pg_t *c) {
    int rc = pg_drain(c);
    if (rc < 0)
        return rc;
    if (PQtransactionStatus(c->pg) == PQTRANS_ACTIVE)
        return -EPROTO;
    /* c->undo is claimed before the rollback runs: a block left while it
     * runs (an outer transaction's exit, which finds the connection still
     * settling) sets it again, and the loop rolls that level back too */
    while (c->undo) {
        int depth = c->undo - 1;
        c->undo = 0;
        PGTransactionStatusType ts = PQtransactionStatus(c->pg);
        if (depth == 0 && ts != PQTRANS_IDLE) {
            rc = pg_run(c, "ROLLBACK");
        } else if (depth > 0 && ts != PQTRANS_IDLE) {
            /* the savepoint exists unless the cancel hit its SAVEPOINT;
             * if not, the outer transaction has failed and says so */
            char sql[96];
            snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT aw_sp_%d", depth);
            if (pg_run(c, sql) == 0) {
                snprintf(sql, sizeof sql, "RELEASE SAVEPOINT aw_sp_%d", depth);
                rc = pg_run(c, sql);
            }
        }
        if (rc < 0)
            return rc;
    }
    if (c->released && PQtransactionStatus(c->pg) != PQTRANS_IDLE && (rc = pg_run(c, "ROLLBACK")) < 0)
        return rc;
    /* what the cut command changed is known only now that it is drained */
    if (c->reset_changed && (c->dirty || pg_params_hash(c) != c->params0))
        c->reset_pending = true;
    if (c->reset_pending) {
        if ((rc = pg_run(c, "DISCARD ALL")) < 0)
            return rc;
        pg_forget_stmts(c);
        pg_drop_notifies(c);
        c->dirty = 0;
    }
    return 0;
}

/* A connection its owner closed is freed by the last of what still
 * refers to it: its settler, a row or notification loop suspended on it,
 * a transaction block still open on it (an exit stack may keep one past
 * the connection's own block, SEMANTICS M5). */
static void pg_free_unheld(aw_pg_t *c) {
    if (!c->settling && !c->gens && !c->txdepth)
        aw__free(c);
}

/* The settle is over: in sync, or closed for good (rc < 0). */
static void pg_settled(aw_pg_t *c, int rc) {
    if (rc < 0 || PQstatus(c->pg) != CONNECTION_OK)
        pg_close_hard(c);
    c->poisoned = c->settling = c->released = c->reset_pending = c->reset_changed = false;
    c->undo = 0;
    if (c->close_pending) {
        pg_close_hard(c);
        pg_free_unheld(c);
        return;
    }
    aw_event_set(&c->settled);
}

/* The settler: cancel request, then drain, within AW__PG_RESYNC. Its
 * errors are its own business (a connection it closes says so to its
 * next user); at loop shutdown its scope is cancelled and it closes. */
static int pg_settle_task(void *arg) {
    aw_pg_t *c = arg;
    int rc = -ECONNRESET;
    aw_with (aw_move_on_after(AW__PG_RESYNC)) {
        pg_cancel_send(c);
        if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
            rc = pg_sync(c);
    }
    aw_err_clear();
    pg_settled(c, rc);
    return 0;
}

/* An operation was interrupted mid-protocol: the connection is out of
 * sync. The caller leaves now; the settler brings it back. */
static void pg_poison(aw_pg_t *c) {
    c->poisoned = true;
    c->busy = false;
    if (c->settling || !c->pg || PQstatus(c->pg) != CONNECTION_OK)
        return;
    aw_event_clear(&c->settled);
    uint64_t mark = aw_err_mark();
    if (aw_spawn(NULL, pg_settle_task, c, NULL) == 0)
        c->settling = true;
    else
        aw_err_restore(mark); /* no settler: the next operation settles inline */
}

/* Wait for the settler, if one runs. A cancellation point then. */
static int pg_wait_settled(aw_pg_t *c) {
    while (c->settling) {
        int rc = aw_event_wait(&c->settled);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int aw_pg_resync(aw_pg_t *c) {
    int rc = pg_wait_settled(c);
    if (rc < 0)
        return rc;
    if (c->poisoned) { /* no settler could be spawned: settle inline */
        rc = -ECONNRESET;
        bool expired = false;
        if (c->pg && PQstatus(c->pg) == CONNECTION_OK) {
            uint64_t mark = aw_err_mark();
            aw_with (aw_scope_t *s, aw_move_on_after(AW__PG_RESYNC)) {
                pg_cancel_send(c);
                rc = pg_sync(c);
                expired = aw_scope_expired(s);
            }
            if (rc == -ECANCELED && !expired)
                return rc; /* the caller was cancelled: still poisoned */
            aw_err_restore(mark);
        }
        c->settling = true; /* pg_settled's bookkeeping */
        pg_settled(c, rc);
    }
    if (!c->pg)
        return aw_raise(-ECONNRESET, "postgres: a cancelled operation left the connection out of sync; "
                                     "it could not be brought back and is closed");
    return 0;
}

/* Preconditions of every operation. */
static int pg_start(aw_pg_t *c, const char *what) {
    if (!c)
        return aw_raise(-EBADF, "postgres %s: no connection", what);
    if (c->busy)
        return aw_raise(-EBUSY, "postgres %s: the connection is in use by another operation", what);
    /* cleared: empty strings (not a memset of its 774 bytes per query) */
    c->err.sqlstate[0] = c->err.message[0] = c->err.detail[0] = c->err.hint[0] = 0;
    if (c->settling || c->poisoned) {
        int rc = aw_pg_resync(c);
        if (rc < 0)
            return rc;
        if (c->busy) /* another task got there while this one waited */
            return aw_raise(-EBUSY, "postgres %s: the connection is in use by another operation", what);
    }
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK)
        return aw_raise(-ECONNRESET, "postgres %s: not connected (the connection was lost or closed)", what);
    if (c->gone)
        return aw_raise(-ECONNRESET, "postgres %s: the server ended the connection: %s", what, c->gonemsg);
    /* Every operation is a cancellation point, before anything is sent:
     * its wait is skipped when the answer is already there, and a cancel
     * must not depend on how fast the server was. */
    return aw_checkpoint();
}

/* --- connect ------------------------------------------------------------ */

static int pg_connect_error(PGconn *pg) {
    const char *m = PQerrorMessage(pg);
    char msg[512];
    pg_copy(msg, sizeof msg, m);
    int code = -ECONNREFUSED;
    if (strstr(m, "password") || strstr(m, "authentication") || strstr(m, "no pg_hba.conf"))
        code = -EACCES;
    else if (strstr(m, "database") && strstr(m, "does not exist"))
        code = -ENOENT;
    else if (strstr(m, "invalid") || strstr(m, "missing \"=\"") || strstr(m, "unrecognized"))
        code = -EINVAL;
    const char *host = PQhost(pg), *port = PQport(pg), *db = PQdb(pg);
    return aw_raise(code, "postgres: cannot connect to %s:%s database \"%s\": %s",
                    host && *host ? host : "?", port && *port ? port : "?", db ? db : "?", msg);
}

/* Notices are not printed (a library does not write to stderr), but one
 * matters: a backend that is terminated (pg_terminate_backend, shutdown,
 * idle timeouts) sends a FATAL error before it closes the socket, a few
 * milliseconds earlier; libpq, idle, hands it here as a notice once the
 * input is parsed. From then on the connection is not usable. */
static void pg_notice(void *arg, const PGresult *res) {
    aw_pg_t *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC"))) {
        c->gone = true;
        snprintf(c->gonemsg, sizeof c->gonemsg, "SQLSTATE %s: %s", PQresultErrorField(res, PG_DIAG_SQLSTATE) ?: "?",
                 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?: "?");
    }
}

/* Connect steps run on the thread pool: PQconnectStart may resolve a
 * host name (blocking), and the PQconnectPoll steps of SCRAM
 * authentication compute PBKDF2 (4096 HMACs, milliseconds of CPU per
 * connect): on the loop thread they stalled every task (11 ms for one
 * connect, 44 ms for ten; issue 11, 2.2). The loop only waits for the
 * socket between steps. While a step runs the job owns the PGconn; a
 * caller cancelled meanwhile leaves, and the abandon callback finishes
 * it. */
typedef struct aw__pg_connect_job {
    PGconn *pg;
    char *dsn;
    PostgresPollingStatusType st;
} aw__pg_connect_job_t;

static void pg_connect_work(void *arg) {
    aw__pg_connect_job_t *j = arg;
    if (!j->pg) {
        j->pg = PQconnectStart(j->dsn);
        j->st = PGRES_POLLING_WRITING;
    } else {
        j->st = PQconnectPoll(j->pg);
    }
}
static void pg_connect_free(void *arg) {
    aw__pg_connect_job_t *j = arg;
    if (j->pg)
        PQfinish(j->pg);
    aw__free(j->dsn);
    aw__free(j);
}

int aw_pg_open(aw_pg_t **out, const char *dsn) {
    *out = NULL;
    aw_pg_t *c = aw__calloc(1, sizeof *c);
    aw__pg_connect_job_t *j = aw__calloc(1, sizeof *j);
    if (!c || !j || !(j->dsn = aw__strdup(dsn ? dsn : ""))) {
        aw__free(c);
        aw__free(j);
        return aw_raise(-ENOMEM, "postgres: out of memory");
    }
    c->fd = -1;
    bool given = false; /* j belongs to the thread pool (its caller was cancelled) */
    int rc = aw_to_thread(pg_connect_work, j, pg_connect_free);
    if (rc < 0) {
        given = rc == -ECANCELED;
        goto fail;
    }
    if (!j->pg) {
        rc = aw_raise(-ENOMEM, "postgres: out of memory");
        goto fail;
    }
    if (PQstatus(j->pg) == CONNECTION_BAD) {
        rc = pg_connect_error(j->pg);
        goto fail;
    }
    while (j->st != PGRES_POLLING_OK) {
        if (j->st == PGRES_POLLING_FAILED) {
            rc = pg_connect_error(j->pg);
            goto fail;
        }
        int fd = PQsocket(j->pg);
        if (fd < 0) {
            rc = pg_connect_error(j->pg);
            goto fail;
        }
        rc = aw_fd_wait(fd, j->st == PGRES_POLLING_READING ? AW_READ : AW_WRITE);
        /* connect may close this socket and open another with the same
         * number: start every wait from a clean slate */
        aw_fd_forget(fd);
        if (rc < 0)
            goto fail;
        if ((rc = aw_to_thread(pg_connect_work, j, pg_connect_free)) < 0) {
            given = rc == -ECANCELED;
            goto fail;
        }
    }
    c->pg = j->pg;
    j->pg = NULL;
    pg_connect_free(j);
    PQsetNoticeReceiver(c->pg, pg_notice, c);
    c->preported = pg_params_reported(c);
    c->params0 = pg_params_hash(c);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        rc = pg_lost(c, "connect");
        PQfinish(c->pg);
        aw__free(c);
        return rc;
    }
    /* named without the password a DSN may hold */
    aw_track_open(&c->track, "postgres connection", "%s@%s:%s/%s", PQuser(c->pg),
                  PQhost(c->pg), PQport(c->pg), PQdb(c->pg));
    *out = c;
    return 0;
fail:
    if (!given)
        pg_connect_free(j);
    aw__free(c);
    return rc;
}

void aw_pg_close(aw_pg_t *c) {
    if (!c)
        return;
    aw_track_close(&c->track); /* closed as far as its user goes */
    if (c->settling) { /* the settler finishes (its cancel request, bounded) and frees it */
        c->close_pending = true;
        return;
    }
    pg_close_hard(c);
    /* a loop left open (a pool took the connection back under it), or a
     * transaction block kept beyond the connection's block */
    if (c->gens || c->txdepth) {
        c->close_pending = true;
        return;
    }
    aw__free(c);
}

/* Back from a row or notification loop's yield: false, or true when the
 * connection was closed meanwhile (its pool took it back, or its block
 * ended, while the loop stayed open, iterated by hand): the loop must
 * end without touching it; the last one out frees it, unless the settler
 * still runs (it frees it then). */
static bool pg_gen_back(aw_pg_t *c) {
    c->gens--;
    if (!c->close_pending)
        return false;
    pg_free_unheld(c);
    return true;
}

/* A loop asked for its next item after its connection was closed. */
static int pg_gen_closed(int y, const char *what) {
    if (y < 0)
        return 0; /* the consumer left: nothing to say */
    return aw_raise(-ECONNRESET, "postgres %s: the connection was closed (or given back to its pool) "
                                 "while the loop was still open", what);
}

static int pg_connect_enter(void *self, void **out) {
    aw_pg_connect_t *s = self;
    int rc = aw_pg_open(&s->conn, s->dsn);
    *out = s->conn;
    return rc;
}
static int pg_connect_exit(void *self, const aw_err_t *err) {
    aw_pg_connect_t *s = self;
    aw_pg_close(s->conn);
    s->conn = NULL;
    return 0;
}
const aw_cm_type_t aw_pg_connect_type = {"pg_connection", pg_connect_enter, pg_connect_exit, 0, 0};

/* --- queries ------------------------------------------------------------ */

typedef struct {
    const char *values[64];
    int lengths[64], formats[64];
    const char **v;
    int *l, *f;
} aw__pg_params_t;

/* The protocol carries 0 to 65535 parameters (a 16-bit count). libpq
 * refuses more without sending anything: the caller's mistake, not a
 * lost connection (-ECONNRESET said so, and the connection was good). */
static int pg_nargs_check(int n) {
    if (n < 0 || n > 65535)
        return aw_raise(-EINVAL, "postgres: %d query parameters: the protocol carries at most 65535 "
                                 "(split the statement, or pass an array as one parameter)", n);
    return 0;
}

static int pg_params(aw__pg_params_t *p, const aw_pg_arg_t *a, int n) {
    int rc = pg_nargs_check(n);
    if (rc < 0)
        return rc;
    p->v = p->values;
    p->l = p->lengths;
    p->f = p->formats;
    if (n > 64) {
        p->v = aw__malloc(n * sizeof *p->v);
        p->l = aw__malloc(n * sizeof *p->l);
        p->f = aw__malloc(n * sizeof *p->f);
        if (!p->v || !p->l || !p->f) {
            aw__free(p->v);
            aw__free(p->l);
            aw__free(p->f);
            return aw_raise(-ENOMEM, "postgres: out of memory for %d parameters", n);
        }
    }
    for (int i = 0; i < n; i++) {
        p->v[i] = a[i].len == -1 ? a[i].buf : a[i].value;
        p->l[i] = a[i].binary ? a[i].len : 0;
        p->f[i] = a[i].binary ? 1 : 0;
    }
    return 0;
}
static void pg_params_free(aw__pg_params_t *p) {
    if (p->v != p->values) {
        aw__free(p->v);
        aw__free(p->l);
        aw__free(p->f);
    }
}

/* Read every result of the command just sent; keep the last one (or the
 * first error). */
static int pg_collect(aw_pg_t *c, PGresult **out, const char *what) {
    PGresult *keep = NULL;
    for (;;) {
        PGresult *res;
        int rc = pg_next(c, &res);
        if (rc < 0) {
            if (keep)
                PQclear(keep);
            pg_poison(c); /* out of sync, whatever interrupted it */
            c->busy = false;
            return rc;
        }
        if (!res)
            break;
        ExecStatusType st = PQresultStatus(res);
        bool bad = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
        if (st == PGRES_COMMAND_OK)
            pg_note_tag(c, res);
        if (keep && !bad && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(res);
            continue;
        }
        if (keep)
            PQclear(keep);
        keep = res;
    }
    c->busy = false;
    ExecStatusType st = keep ? PQresultStatus(keep) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
        return pg_fail(c, keep, what);
    if (out)
        *out = keep;
    else
        PQclear(keep);
    return 0;
}

/* Flush what was sent, then collect. */
static int pg_finish(aw_pg_t *c, PGresult **out, const char *what) {
    int rc = pg_flush(c);
    if (rc < 0) {
        pg_poison(c); /* out of sync, whatever interrupted it */
        c->busy = false;
        return rc;
    }
    c->answer_due = true; /* one command (with its Sync) went out whole */
    return pg_collect(c, out, what);
}

static int pg_query(aw_pg_t *c, PGresult **out, const char *sql, const aw_pg_arg_t *args, int n) {
    if (out)
        *out = NULL;
    int rc = pg_start(c, "query");
    if (rc < 0)
        return rc;
    aw__pg_params_t p;
    if ((rc = pg_params(&p, args, n)) < 0)
        return rc;
    c->dirty |= pg_sql_dirt(sql);
    int ok = PQsendQueryParams(c->pg, sql, n, NULL, p.v, p.l, p.f, 0);
    pg_params_free(&p);
    if (!ok)
        return pg_lost(c, "query");
    c->busy = true;
    return pg_finish(c, out, "query");
}

int aw_pg_query(aw_pg_t *c, aw_pg_res_t **out, const char *sql, const aw_pg_arg_t *args, int nargs) {
    return pg_query(c, (PGresult **)out, sql, args, nargs);
}

long long aw_pg_exec(aw_pg_t *c, const char *sql, const aw_pg_arg_t *args, int nargs) {
    PGresult *res;
    int rc = pg_query(c, &res, sql, args, nargs);
    if (rc < 0)
        return rc;
    long long n = aw_pg_res_affected((aw_pg_res_t *)res);
    PQclear(res);
    return n;
}

int aw_pg_fetch_int(aw_pg_t *c, long long *out, const char *sql, const aw_pg_arg_t *args, int nargs) {
    PGresult *res;
    int rc = pg_query(c, &res, sql, args, nargs);
    if (rc < 0)
        return rc;
    rc = aw_pg_res_int((aw_pg_res_t *)res, 0, 0, out);
    PQclear(res);
    if (rc < 0)
        return aw_raise(rc, "postgres: the query gave no integer in row 0, column 0");
    return 0;
}

static aw__pg_stmt_t *pg_stmt(aw_pg_t *c, const char *sql) {
    for (int i = 0; i < c->nstmts; i++)
        if (!strcmp(c->stmts[i].sql, sql))
            return &c->stmts[i];
    return NULL;
}

static void pg_stmt_forget_oldest(aw_pg_t *c) {
    aw__free(c->stmts[0].sql);
    memmove(c->stmts, c->stmts + 1, (AW__PG_STMTS - 1) * sizeof *c->stmts);
    c->nstmts--;
}

/* The cache is full: forget its oldest statement, and deallocate it on
 * the server, where it would stay for the session's life (a pooled
 * connection running ever new SQL grew without bound; asyncpg and
 * psycopg close what their caches evict). DEALLOCATE is not
 * transactional, so it runs inside a transaction too; not in a failed
 * one, where the prepare that follows fails as well, so nothing is
 * forgotten there (it would stay prepared on the server: one more for
 * every failed transaction that met a full cache). One round trip per
 * eviction. DISCARD ALL and DEALLOCATE ALL by hand empty the cache at
 * once (pg_note_tag); a statement deallocated by its name by hand is no
 * error outside a transaction (inside one the server's error failed it,
 * and the prepare that follows says so); a cancel or a lost connection
 * is the caller's. */
static int pg_stmt_evict(aw_pg_t *c) {
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        return 0; /* nothing evicted: forgotten only if the prepare works */
    char dealloc[48];
    snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", c->stmts[0].name);
    pg_stmt_forget_oldest(c);
    uint64_t mark = aw_err_mark();
    int rc = pg_query(c, NULL, dealloc, NULL, 0);
    if (rc == -EREMOTEIO) {
        aw_err_restore(mark);
        rc = 0;
    }
    return rc;
}

/* The cached statement for sql, prepared now if it is not (the connection
 * started and idle, out of pipeline mode). */
static int pg_stmt_get(aw_pg_t *c, const char *sql, int nargs, aw__pg_stmt_t **out) {
    int rc;
    aw__pg_stmt_t *s = pg_stmt(c, sql);
    if (!s) {
        if ((rc = pg_nargs_check(nargs)) < 0)
            return rc;
        if (c->nstmts == AW__PG_STMTS && (rc = pg_stmt_evict(c)) < 0)
            return rc;
        aw__pg_stmt_t fresh;
        /* a fresh name each time: a prepare cut short may still exist */
        snprintf(fresh.name, sizeof fresh.name, "aw_s%u", ++c->stmtseq);
        if (!PQsendPrepare(c->pg, fresh.name, sql, nargs, NULL))
            return pg_lost(c, "prepare");
        c->busy = true;
        if ((rc = pg_finish(c, NULL, "prepare")) < 0)
            return rc;
        if (!(fresh.sql = aw__strdup(sql)))
            return aw_raise(-ENOMEM, "postgres: out of memory");
        fresh.dirt = pg_sql_dirt(sql);
        if (c->nstmts == AW__PG_STMTS) /* not evicted: forgotten, still prepared */
            pg_stmt_forget_oldest(c);
        c->stmts[c->nstmts] = fresh;
        s = &c->stmts[c->nstmts++];
    }
    c->dirty |= s->dirt;
    *out = s;
    return 0;
}

static int pg_query_prepared(aw_pg_t *c, aw_pg_res_t **out, const char *sql, const aw_pg_arg_t *args,
                             int nargs) {
    int rc = pg_start(c, "prepared query");
    if (rc < 0)
        return rc;
    aw__pg_stmt_t *s;
    if ((rc = pg_stmt_get(c, sql, nargs, &s)) < 0)
        return rc;
    aw__pg_params_t p;
    if ((rc = pg_params(&p, args, nargs)) < 0)
        return rc;
    int ok = PQsendQueryPrepared(c->pg, s->name, nargs, p.v, p.l, p.f, 0);
    pg_params_free(&p);
    if (!ok)
        return pg_lost(c, "prepared query");
    c->busy = true;
    return pg_finish(c, (PGresult **)out, "prepared query");
}

/* Did the last failure say that the cached statement no longer fits the
 * schema (a column changed type, SELECT * grew) or is gone (DEALLOCATE or
 * DISCARD by hand)? */
static bool pg_stmt_stale(const aw_pg_t *c) {
    return (!strcmp(c->err.sqlstate, "0A000") && strstr(c->err.message, "cached plan")) ||
           !strcmp(c->err.sqlstate, "26000");
}

/* Forget the cached statement for sql; deallocate it on the server when
 * the connection is outside a failed transaction (else it stays prepared,
 * unused, until a reset or the end of the session). */
static void pg_stmt_drop(aw_pg_t *c, const char *sql) {
    aw__pg_stmt_t *s = pg_stmt(c, sql);
    if (!s)
        return;
    char dealloc[48];
    snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", s->name);
    bool gone = !strcmp(c->err.sqlstate, "26000");
    aw__free(s->sql);
    c->nstmts--;
    memmove(s, s + 1, (size_t)(c->stmts + c->nstmts - s) * sizeof *s);
    if (!gone && PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
        aw_pg_error_t keep = c->err;
        uint64_t mark = aw_err_mark();
        pg_query(c, NULL, dealloc, NULL, 0);
        aw_err_restore(mark);
        c->err = keep;
    }
}

/* A statement invalidated by a schema change is dropped and prepared
 * again: retried once, silently, outside a transaction (where the failed
 * call changed nothing); inside one the transaction has failed, so the
 * call fails once with a record that says why, and the next call
 * prepares afresh (asyncpg's rule). */
int aw_pg_query_prepared(aw_pg_t *c, aw_pg_res_t **out, const char *sql, const aw_pg_arg_t *args,
                         int nargs) {
    if (out)
        *out = NULL;
    uint64_t mark = aw_err_mark();
    int rc = pg_query_prepared(c, out, sql, args, nargs);
    if (rc != -EREMOTEIO || !pg_stmt_stale(c))
        return rc;
    bool intx = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
    pg_stmt_drop(c, sql);
    if (intx)
        return aw_raise(rc, "postgres: the cached prepared statement no longer fits the schema (SQLSTATE %s) "
                            "inside a transaction, which has failed; it is dropped and the next call "
                            "prepares it again",
                        c->err.sqlstate);
    aw_err_restore(mark);
    return pg_query_prepared(c, out, sql, args, nargs);
}

/* --- pipeline ------------------------------------------------------------ */

/* The queries go out in chunks, each followed by a flush request (the
 * server sends what it has: results stream back while later chunks go
 * out), at most AW__PG_AHEAD chunks ahead of the results read (bounded
 * buffers on both sides), and one sync at the end: no stop to wait for a
 * batch's results before sending the next (issue 14: a sync and a wait
 * every 256 queries left the server idle between batches). The statement
 * is a named prepared one, from the connection's cache: parsed once, not
 * per query. Between its start and its sync, a pipeline is one implicit
 * transaction on the server (unless its statements make their own): the
 * first failure aborts the rest and undoes what ran before it. */
#define AW__PG_CHUNK 256
#define AW__PG_AHEAD 4

static int pg_pipeline_run(aw_pg_t *c, aw__pg_stmt_t *s, const aw_pg_arg_t *args, int nargs, int n,
                           int (*each)(void *ctx, int i, const aw_pg_res_t *r), void *ctx,
                           int *fail_at) {
    if (!PQenterPipelineMode(c->pg))
        return pg_lost(c, "pipeline");
    c->busy = true;
    c->pipe_synced = false;
    int rc = 0, first = 0, stop = 0, sent = 0, got = 0;
    bool synced = false, sync_seen = false;
    *fail_at = -1;
    while (rc == 0 && !sync_seen) {
        while (!synced && !stop && !first && sent < n && sent - got < AW__PG_CHUNK * AW__PG_AHEAD) {
            int m = n - sent < AW__PG_CHUNK ? n - sent : AW__PG_CHUNK;
            for (int i = 0; i < m && rc == 0; i++) {
                aw__pg_params_t p;
                if ((rc = pg_params(&p, args + (size_t)(sent + i) * nargs, nargs)) < 0)
                    break;
                if (!PQsendQueryPrepared(c->pg, s->name, nargs, p.v, p.l, p.f, 0))
                    rc = pg_lost(c, "pipeline");
                pg_params_free(&p);
            }
            if (rc < 0)
                break;
            sent += m;
            if (sent < n && !PQsendFlushRequest(c->pg))
                rc = pg_lost(c, "pipeline");
        }
        if (rc < 0)
            break;
        if (!synced && (sent == n || stop || first)) { /* nothing more goes out */
            if (!PQpipelineSync(c->pg)) {
                rc = pg_lost(c, "pipeline");
                break;
            }
            synced = c->pipe_synced = true;
        }
        if ((rc = pg_flush(c)) < 0)
            break;
        /* read one chunk's results (or, once all are read, the sync) */
        int upto = got + AW__PG_CHUNK < sent ? got + AW__PG_CHUNK : sent;
        while (rc == 0 && (got < upto || (got == sent && synced && !sync_seen))) {
            PGresult *res;
            if ((rc = pg_next(c, &res)) < 0)
                break;
            if (!res)
                continue; /* end of one query's results */
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_PIPELINE_SYNC) {
                PQclear(res);
                sync_seen = true;
                break;
            }
            if (st == PGRES_PIPELINE_ABORTED) {
                PQclear(res);
            } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                if (!first) {
                    c->busy = false;
                    first = pg_fail(c, res, "pipelined query");
                    c->busy = true;
                    *fail_at = got;
                } else {
                    PQclear(res);
                }
            } else {
                if (st == PGRES_COMMAND_OK) /* a SET, a LISTEN: for a pool's reset */
                    pg_note_tag(c, res);
                if (each && !stop && !first)
                    stop = each(ctx, got, (aw_pg_res_t *)res);
                PQclear(res);
            }
            got++;
        }
    }
    if (rc < 0) {
        pg_poison(c); /* out of sync, whatever interrupted it */
        c->busy = false;
        return rc;
    }
    PQexitPipelineMode(c->pg);
    c->busy = false;
    return first;
}

int aw_pg_pipeline(aw_pg_t *c, const char *sql, const aw_pg_arg_t *args, int nargs, int n,
                   int (*each)(void *ctx, int i, const aw_pg_res_t *r), void *ctx) {
    int rc = pg_start(c, "pipeline");
    if (rc < 0)
        return rc;
    if (n <= 0)
        return 0;
    if ((rc = pg_nargs_check(nargs)) < 0) /* not once in pipeline mode: a cut there closes it */
        return rc;
    uint64_t mark = aw_err_mark();
    bool intx = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
    for (int attempt = 0;; attempt++) {
        aw__pg_stmt_t *s;
        if ((rc = pg_stmt_get(c, sql, nargs, &s)) < 0)
            return rc;
        int at;
        rc = pg_pipeline_run(c, s, args, nargs, n, each, ctx, &at);
        /* the cached statement no longer fits the schema: it failed at
         * the first query, so nothing ran (one transaction); outside a
         * transaction, drop it and run again once, as aw_pg_query_prepared */
        if (rc != -EREMOTEIO || at != 0 || !pg_stmt_stale(c) || intx || attempt)
            return rc;
        pg_stmt_drop(c, sql);
        aw_err_restore(mark);
    }
}

/* --- results ------------------------------------------------------------ */

int aw_pg_res_rows(const aw_pg_res_t *r) { return r ? PQntuples(RES(r)) : 0; }
int aw_pg_res_cols(const aw_pg_res_t *r) { return r ? PQnfields(RES(r)) : 0; }
const char *aw_pg_res_name(const aw_pg_res_t *r, int col) { return PQfname(RES(r), col); }
long long aw_pg_res_affected(const aw_pg_res_t *r) {
    const char *t = PQcmdTuples(RES(r));
    return t && *t ? strtoll(t, NULL, 10) : 0;
}
void aw_pg_res_free(aw_pg_res_t *r) {
    if (r)
        PQclear(RES(r));
}

static int pg_cell(const aw_pg_res_t *r, int row, int col, const char **v) {
    if (!r || row < 0 || col < 0 || row >= PQntuples(RES(r)) || col >= PQnfields(RES(r)))
        return -ERANGE;
    if (PQgetisnull(RES(r), row, col))
        return -ENODATA;
    *v = PQgetvalue(RES(r), row, col);
    return 0;
}

bool aw_pg_res_isnull(const aw_pg_res_t *r, int row, int col) {
    const char *v;
    return pg_cell(r, row, col, &v) == -ENODATA;
}
const char *aw_pg_res_text(const aw_pg_res_t *r, int row, int col) {
    const char *v;
    return pg_cell(r, row, col, &v) == 0 ? v : NULL;
}
int aw_pg_res_int(const aw_pg_res_t *r, int row, int col, long long *out) {
    const char *v;
    int rc = pg_cell(r, row, col, &v);
    if (rc < 0)
        return rc;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno)
        return -EINVAL;
    *out = x;
    return 0;
}
int aw_pg_res_double(const aw_pg_res_t *r, int row, int col, double *out) {
    const char *v;
    int rc = pg_cell(r, row, col, &v);
    if (rc < 0)
        return rc;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end)
        return -EINVAL;
    *out = x;
    return 0;
}
int aw_pg_res_bool(const aw_pg_res_t *r, int row, int col, bool *out) {
    const char *v;
    int rc = pg_cell(r, row, col, &v);
    if (rc < 0)
        return rc;
    if (!strcmp(v, "t") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "f") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}
int aw_pg_res_bytea(const aw_pg_res_t *r, int row, int col, unsigned char **out, size_t *len) {
    const char *v;
    int rc = pg_cell(r, row, col, &v);
    if (rc < 0)
        return rc;
    size_t n;
    unsigned char *u = PQunescapeBytea((const unsigned char *)v, &n);
    if (!u)
        return -ENOMEM;
    /* hand back memory the caller can free() */
    unsigned char *m = aw__malloc(n ? n : 1);
    if (m)
        memcpy(m, u, n);
    PQfreemem(u);
    if (!m)
        return -ENOMEM;
    *out = m;
    *len = n;
    return 0;
}

const aw_pg_error_t *aw_pg_error(const aw_pg_t *c) { return &c->err; }
bool aw_pg_poisoned(const aw_pg_t *c) { return c->poisoned; }
bool aw_pg_ok(const aw_pg_t *c) {
    return c && c->pg && !c->poisoned && !c->busy && !c->gone && PQstatus(c->pg) == CONNECTION_OK &&
           PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}
int aw_pg_backend_pid(const aw_pg_t *c) { return c && c->pg ? PQbackendPID(c->pg) : 0; }

/* --- transactions -------------------------------------------------------- */

/* Enter is atomic with respect to cancellation (decision 7): if BEGIN
 * (or SAVEPOINT) is cut while in flight, the server may have run it, so
 * the level is marked for rolling back once the connection is in sync
 * again (the settler does it, and every later operation waits for the
 * settler), and enter fails. A connection inside a transaction begun by
 * hand is refused: the block's COMMIT or ROLLBACK would end the user's
 * transaction (asyncpg refuses it the same way). */
static int pg_tx_enter(void *self, void **out) {
    aw_pg_tx_t *t = self;
    aw_pg_t *c = t->conn;
    *out = c;
    /* Entered again inside its own block: the inner block's level would
     * overwrite the outer's, and the outer's rollback would find no level
     * to undo (what the inner one did would stay, SEMANTICS K3). */
    if (t->entered)
        return aw_raise(-EBUSY, "postgres: this transaction block is already entered: "
                        "each block needs its own aw_pg_tx()");
    /* an unknown level ran at the server's default, weaker maybe than
     * the one meant, without a word */
    if (t->isolation < AW_PG_DEFAULT || t->isolation > AW_PG_SERIALIZABLE)
        return aw_raise(-EINVAL, "postgres: aw_pg_tx isolation %d is not one of AW_PG_DEFAULT, "
                        "AW_PG_READ_COMMITTED, AW_PG_REPEATABLE_READ, AW_PG_SERIALIZABLE", t->isolation);
    int rc = pg_start(c, "transaction");
    if (rc < 0)
        return rc;
    /* Another task's block would become a savepoint of the owner's
     * transaction: its failure could not undo what the owner commits.
     * Checked after pg_start, which may wait (the owner's BEGIN may end
     * meanwhile). Only enter is checked: an exit stack may exit a block
     * in another task. */
    if (c->txdepth > 0 && aw__owner_other(&c->txowner))
        return aw__owner_refuse(&c->txowner, "postgres");
    if (c->txdepth == 0 && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return aw_raise(-EINVAL, "postgres: aw_pg_tx on a connection already inside a transaction begun "
                                 "by hand; commit or roll it back first");
    char sql[96];
    int depth = c->txdepth;
    if (depth > 0) {
        snprintf(sql, sizeof sql, "SAVEPOINT aw_sp_%d", depth);
    } else {
        static const char *const iso[] = {"", " ISOLATION LEVEL READ COMMITTED",
                                          " ISOLATION LEVEL REPEATABLE READ",
                                          " ISOLATION LEVEL SERIALIZABLE"};
        snprintf(sql, sizeof sql, "BEGIN%s%s%s", iso[t->isolation], t->readonly ? " READ ONLY" : "",
                 t->deferrable ? " DEFERRABLE" : "");
    }
    long long n = aw_pg_exec(c, sql, NULL, 0);
    if (n < 0) {
        if (c->poisoned && (!c->undo || depth + 1 < c->undo))
            c->undo = depth + 1; /* cut in flight: it may have begun */
        return (int)n;
    }
    t->depth = depth;
    t->entered = true;
    c->txdepth = depth + 1;
    if (depth == 0)
        aw__owner_take(&c->txowner);
    return 0;
}

/* The outermost block finds its connection, in sync, outside any
 * transaction: a COMMIT or ROLLBACK of the user's ended it inside the
 * block. What ran after that was committed statement by statement, and
 * the block's own COMMIT or ROLLBACK would only draw a warning from the
 * server: a failed block would report a rollback that undid nothing
 * (K3), a clean one a commit of what was rolled back. Savepoint levels
 * need no check: the server refuses their RELEASE or ROLLBACK TO. */
static bool pg_tx_ended_by_hand(const aw_pg_tx_t *t, const aw_pg_t *c) {
    return !t->depth && c->pg && !c->poisoned && PQstatus(c->pg) == CONNECTION_OK &&
           PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}
static int pg_tx_ended_error(void) {
    return aw_raise(-EINVAL, "postgres: the transaction of this aw_pg_tx block was ended inside it by hand "
                             "(COMMIT or ROLLBACK): what ran after that was committed statement by "
                             "statement; let the block commit or roll back");
}

static int pg_tx_exit(void *self, const aw_err_t *err) {
    aw_pg_tx_t *t = self;
    aw_pg_t *c = t->conn;
    t->entered = false;
    c->txdepth = t->depth;
    /* closed under the block (its own block, or its pool's release,
     * ended first: M5): the server rolled the transaction back */
    if (!c->pg || c->close_pending) {
        int rc = err ? 0 : aw_raise(-ECONNRESET, "postgres: transaction lost with its connection");
        if (c->close_pending)
            pg_free_unheld(c);
        return rc;
    }
    char sql[96];
    long long rc;
    if (!err) {
        /* in sync first: a settle may still run (a cut query the body
         * let go); the status is known only then */
        if (!t->depth && (c->settling || c->poisoned) && (rc = aw_pg_resync(c)) < 0)
            return (int)rc;
        if (pg_tx_ended_by_hand(t, c))
            return pg_tx_ended_error();
        if (t->depth)
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT aw_sp_%d", t->depth);
        else
            snprintf(sql, sizeof sql, "COMMIT");
        PGresult *res;
        int r = pg_query(c, &res, sql, NULL, 0);
        if (r < 0)
            return r;
        /* COMMIT of a failed transaction answers ROLLBACK: the body
         * swallowed a server error, so nothing was committed */
        bool rolled = !strcmp(PQcmdStatus(res), "ROLLBACK");
        PQclear(res);
        if (rolled)
            return aw_raise(-EREMOTEIO, "postgres: the transaction was rolled back, not committed: "
                                        "a statement inside it failed");
        return 0;
    }
    if (c->settling) { /* out of sync: the settler rolls back once in sync, and
                          * every later operation waits for it */
        if (!c->undo || t->depth + 1 < c->undo)
            c->undo = t->depth + 1;
        return 0;
    }
    if (pg_tx_ended_by_hand(t, c))
        return pg_tx_ended_error();
    if (t->depth) {
        snprintf(sql, sizeof sql, "ROLLBACK TO SAVEPOINT aw_sp_%d", t->depth);
        rc = aw_pg_exec(c, sql, NULL, 0);
        if (rc >= 0) {
            snprintf(sql, sizeof sql, "RELEASE SAVEPOINT aw_sp_%d", t->depth);
            rc = aw_pg_exec(c, sql, NULL, 0);
        }
    } else {
        rc = aw_pg_exec(c, "ROLLBACK", NULL, 0);
    }
    if (rc < 0 && !c->pg)
        return 0; /* the connection is gone: the server rolled back */
    return rc < 0 ? (int)rc : 0;
}
const aw_cm_type_t aw_pg_tx_type = {"pg_transaction", pg_tx_enter, pg_tx_exit, 0, 0};

/* --- rows as a generator -------------------------------------------------- */

/* How long a row loop left early inside a transaction may read the rest
 * of its result (aw__pg_rows): a short rest (a search that stops at its
 * first match) costs less than a cancel, which would abort the
 * transaction; a long one is not worth waiting for. */
#define AW__PG_DRAIN AW_SEC(1)

/* pg_next before `until`: -ETIMEDOUT (nothing raised) past it. */
static int pg_rows_next_until(aw_pg_t *c, PGresult **out, aw_ns_t until) {
    int rc = 0;
    bool expired = false;
    uint64_t mark = aw_err_mark();
    aw_with (aw_scope_t *s, aw_move_on_at(until)) {
        rc = pg_next(c, out);
        expired = aw_scope_expired(s);
    }
    if (expired && rc == -ECANCELED) {
        aw_err_restore(mark);
        return -ETIMEDOUT;
    }
    return rc;
}

/* The rest did not arrive within AW__PG_DRAIN: cancel it after all (the
 * transaction is lost with it) and fail the loop, saying so. */
static int pg_rows_drain_cut(aw_pg_t *c, PGresult *err) {
    if (err)
        PQclear(err);
    pg_poison(c);
    aw_pg_resync(c);
    return aw_raise(-ETIMEDOUT,
                    "postgres: a row loop left early inside a transaction: the rest of its result "
                    "did not arrive within %lld ms, so the query was cancelled, which aborts the "
                    "transaction (stop the query on the server instead: LIMIT, or a cursor)",
                    (long long)(AW__PG_DRAIN / 1000000));
}

int aw__pg_rows(aw_gen_t *g, void *arg) {
    aw_pg_cursor_t *cur = arg;
    aw_pg_t *c = cur->conn;
    int rc = pg_start(c, "row query");
    if (rc < 0)
        return rc;
    aw__pg_params_t p;
    if ((rc = pg_params(&p, cur->args, cur->nargs)) < 0)
        return rc;
    c->dirty |= pg_sql_dirt(cur->sql);
    /* Inside a transaction (a block's or one begun by hand), leaving the
     * loop early reads the rest of the rows instead of cancelling the
     * query: the server would abort the transaction on the cancel
     * (57014), and a block the user left by `break` (a clean way out,
     * SEMANTICS A5) would then fail at its next statement or COMMIT.
     * asyncpg's cursors, likewise, can be left early inside one. A rest
     * that takes over AW__PG_DRAIN to arrive is cut after all, and the
     * loop fails, saying the transaction went with it (pg_rows_drained).
     * Outside a transaction the cancel loses nothing. */
    bool in_tx = PQtransactionStatus(c->pg) == PQTRANS_INTRANS;
    bool draining = false;
    aw_ns_t drain_until = 0;
    int ok = PQsendQueryParams(c->pg, cur->sql, cur->nargs, NULL, p.v, p.l, p.f, 0);
    pg_params_free(&p);
    if (!ok)
        return pg_lost(c, "row query");
    PQsetSingleRowMode(c->pg);
    c->busy = true;
    PGresult *err = NULL; /* the first failure, reported once the results are drained */
    if ((rc = pg_flush(c)) < 0)
        goto cut;
    for (;;) {
        PGresult *res;
        rc = draining ? pg_rows_next_until(c, &res, drain_until) : pg_next(c, &res);
        if (rc == -ETIMEDOUT)
            return pg_rows_drain_cut(c, err);
        if (rc < 0)
            goto cut;
        if (!res)
            break;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && !err && !draining) {
            c->gens++;
            int y = aw_gen_yield(g, res);
            PQclear(res);
            if (pg_gen_back(c))
                return pg_gen_closed(y, "row query");
            if (y < 0 && in_tx) { /* the consumer left early: read the rest */
                draining = true;
                drain_until = aw_now() + AW__PG_DRAIN;
            } else if (y < 0) { /* the consumer left early: stop the query, drain */
                pg_poison(c);
                return aw_pg_resync(c) < 0 ? aw_status() : 0;
            }
        } else if ((st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) && !err) {
            err = res;
        } else {
            if (st == PGRES_COMMAND_OK) /* a SET, a LISTEN: for a pool's reset */
                pg_note_tag(c, res);
            PQclear(res);
        }
    }
    c->busy = false;
    return err ? pg_fail(c, err, "row query") : 0;
cut:
    if (err)
        PQclear(err);
    pg_poison(c); /* out of sync, whatever interrupted it */
    c->busy = false;
    return rc;
}

/* --- LISTEN/NOTIFY ------------------------------------------------------- */

/* Only the asked channel's notifications are yielded (others, e.g. from a
 * LISTEN by hand, are dropped); leaving by any way (the consumer's break,
 * a cancel, an error) runs UNLISTEN, shielded and bounded, and drops what
 * is still queued, so nothing of this listener is left for the
 * connection's next user. */
int aw__pg_listen(aw_gen_t *g, void *arg) {
    aw_pg_listen_t *l = arg;
    aw_pg_t *c = l->conn;
    int rc = pg_start(c, "listen");
    if (rc < 0)
        return rc;
    char *id = PQescapeIdentifier(c->pg, l->channel, strlen(l->channel));
    if (!id) { /* a name libpq cannot quote (invalid in the client encoding): not a lost connection */
        char why[200];
        pg_copy(why, sizeof why, PQerrorMessage(c->pg));
        return aw_raise(-EINVAL, "postgres listen: channel name refused: %s", why);
    }
    char sql[300], unsql[300];
    snprintf(sql, sizeof sql, "LISTEN %s", id);
    snprintf(unsql, sizeof unsql, "UNLISTEN %s", id);
    PQfreemem(id);
    if ((rc = pg_query(c, NULL, sql, NULL, 0)) < 0)
        return rc;
    for (;;) {
        PGnotify *n;
        while ((n = PQnotifies(c->pg))) {
            if (strcmp(n->relname, l->channel)) { /* not asked for */
                PQfreemem(n);
                continue;
            }
            aw_pg_notify_t v = {n->relname, n->extra, n->be_pid};
            c->gens++;
            int y = aw_gen_yield(g, &v);
            PQfreemem(n);
            if (pg_gen_back(c))
                return pg_gen_closed(y, "listen");
            if (y < 0)
                goto leave; /* the consumer left */
        }
        pg_sockcheck(c);
        if (c->fd < 0)
            return pg_lost(c, "listen");
        if (!pg_pending(c->fd)) {
            c->busy = true; /* a query from another task would race for the socket */
            rc = aw_fd_wait(c->fd, AW_READ);
            c->busy = false;
            if (rc < 0)
                goto leave;
        }
        if (!PQconsumeInput(c->pg))
            return pg_lost(c, "listen");
    }
leave:
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK && !c->poisoned) {
        uint64_t mark = aw_err_mark();
        int urc = 0;
        aw_with (aw_shield(AW__PG_RESYNC)) {
            urc = pg_query(c, NULL, unsql, NULL, 0);
        }
        if (urc < 0 && rc == 0 && c->pg && PQstatus(c->pg) == CONNECTION_OK)
            return urc; /* the server refused: say so */
        aw_err_restore(mark); /* lost or cut: the server forgets it anyway */
    }
    pg_drop_notifies(c);
    return rc;
}

/* --- pool callbacks ------------------------------------------------------- */

int aw_pg_reset(aw_pg_t *c) {
    long long rc = pg_start(c, "reset"); /* in sync: the status below is true */
    if (rc < 0)
        return (int)rc;
    /* A transaction begun by hand (no block of ours open) is rolled back
     * first, as asyncpg's reset() does: DISCARD ALL cannot run inside one
     * (25001), and a new session has none. A block's own transaction is
     * left to the block: its exit decides. */
    if (c->txdepth == 0 && PQtransactionStatus(c->pg) != PQTRANS_IDLE &&
        (rc = aw_pg_exec(c, "ROLLBACK", NULL, 0)) < 0)
        return (int)rc;
    rc = aw_pg_exec(c, "DISCARD ALL", NULL, 0);
    if (rc < 0)
        return (int)rc;
    pg_forget_stmts(c);
    pg_drop_notifies(c); /* queued before DISCARD's UNLISTEN * */
    c->dirty = 0;
    return 0;
}

/* Undo only the session state that changed (see PG_DIRTY_*): no round
 * trip for a connection that only ran queries; our cached prepared
 * statements survive unless the user prepared their own (then DISCARD
 * ALL). One round trip per kind of change otherwise (two for a SET). */
static int pg_reset_changed(aw_pg_t *c) {
    unsigned d = c->dirty;
    if (pg_params_hash(c) != c->params0)
        d |= PG_DIRTY_GUC;
    if (!d) {
        pg_drop_notifies(c);
        return 0;
    }
    if (d & PG_DIRTY_PREPARE)
        return aw_pg_reset(c);
    /* RESET ALL leaves role and session_authorization alone: a SET ROLE
     * would hand its privileges to the next user. SET SESSION
     * AUTHORIZATION DEFAULT (any user may: it names the one who logged in)
     * ends both, as DISCARD ALL does before its RESET ALL. */
    static const struct { unsigned bit; const char *sql; } undo[] = {
        {PG_DIRTY_GUC, "SET SESSION AUTHORIZATION DEFAULT"},
        {PG_DIRTY_GUC, "RESET ALL"},
        {PG_DIRTY_CURSOR, "CLOSE ALL"},
        {PG_DIRTY_LISTEN, "UNLISTEN *"},
        {PG_DIRTY_LOCK, "SELECT pg_advisory_unlock_all()"},
        {PG_DIRTY_TEMP, "DISCARD TEMP"},
    };
    for (size_t i = 0; i < sizeof undo / sizeof *undo; i++) {
        if (!(d & undo[i].bit))
            continue;
        long long rc = aw_pg_exec(c, undo[i].sql, NULL, 0);
        if (rc < 0)
            return (int)rc;
    }
    c->dirty = 0; /* what the undo commands themselves marked included */
    pg_drop_notifies(c);
    return 0;
}

static int pool_open(void *ctx, void **item) {
    aw_pg_t *c;
    int rc = aw_pg_open(&c, ctx);
    *item = c;
    return rc;
}
static void pool_close(void *ctx, void *item) { aw_pg_close(item); }
/* A connection cut mid-query comes back while its settler runs: the pool
 * keeps it (a new connection costs a fork and SCRAM on the server), and
 * nobody uses it before the settle is over (every operation, and the
 * pool's check, waits for it); once in sync it also leaves any
 * transaction. A settle that fails closes it; the check replaces it. */
static bool pool_usable(void *ctx, void *item) {
    aw_pg_t *c = item;
    /* a row or notification loop, or a transaction block (kept by an exit
     * stack), still open on it: never another user's */
    if (c->gens || c->txdepth)
        return false;
    if (c->settling && c->pg) {
        c->released = true;
        return true;
    }
    pg_drop_notifies(c);
    return aw_pg_ok(c);
}
/* A connection back in the pool less than this long ago is not read
 * again by the check: its last answer was read just now, and what the
 * server could have sent since (a FATAL, an EOF) is as likely to come
 * just after the check as before it, so the first query finds it either
 * way. The read is a system call (MSG_PEEK): a task that releases a
 * connection and takes it again paid it on every query, the fourth
 * system call of a round trip that needs three (issue 14). HikariCP
 * skips its alive check for a connection used in the last 500 ms,
 * pgxpool pings only one idle over 1 s; ours is a local read, so the
 * window is short. */
#define AW__PG_FRESH AW_MS(1)

/* Local liveness: whatever the server sent an idle connection (a FATAL
 * before it closed, or EOF) is read; no round trip. */
static int pool_check(void *ctx, void *item) {
    aw_pg_t *c = item;
    int rc = pg_wait_settled(c);
    if (rc < 0)
        return rc;
    /* read what the server sent while it was idle, and parse it: a
     * terminated backend's FATAL comes before its EOF (pg_notice) */
    bool fresh = aw_now() - c->idle_since < AW__PG_FRESH;
    for (int i = 0; !fresh && i < 4 && c->pg && PQsocket(c->pg) >= 0 && pg_pending(PQsocket(c->pg)); i++)
        if (!PQconsumeInput(c->pg))
            break;
    pg_drop_notifies(c); /* parses the input */
    pg_sockcheck(c);
    if (!aw_pg_ok(c))
        return aw_raise(-ECONNRESET, "postgres: idle pooled connection found dead");
    return 0;
}
static int pool_reset(void *ctx, void *item) {
    aw_pg_t *c = item;
    c->idle_since = aw_now();
    if (c->settling) { /* done by the settler once in sync */
        c->reset_pending = true;
        return 0;
    }
    return aw_pg_reset(c);
}
static int pool_reset_changed(void *ctx, void *item) {
    aw_pg_t *c = item;
    c->idle_since = aw_now();
    if (c->settling) { /* a cut connection: the settler's DISCARD ALL, once in sync, if the
                          * session changed (the cut command's tag is read by the drain) */
        c->reset_changed = true;
        return 0;
    }
    return pg_reset_changed(c);
}

const aw_pool_ops_t aw_pg_pool_ops = {"pg_pool", pool_open, pool_close, pool_reset_changed, pool_check,
                                      pool_usable};
const aw_pool_ops_t aw_pg_pool_ops_reset = {"pg_pool", pool_open, pool_close, pool_reset, pool_check,
                                            pool_usable};
