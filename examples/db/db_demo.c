/* examples/db/db_demo.c -- the seeds' database examples, on a real
 * database: SQLite by default, PostgreSQL when given a postgresql:// DSN.
 *
 * 1. seed 002 §1 (and 000): AsyncDatabaseConnection with execute_query,
 *    which raises "Not connected" once the block has closed it;
 * 2. seed 001's aiosqlite / asyncpg: `async with connect(...) as db`, a
 *    transaction, rows;
 * 3. seed 002 §8: get_database_pool(dsn) and get_connection(pool), two
 *    generator-style managers around the generic pool, `SELECT 1`.
 *
 * The two engines sit behind a small tagged connection (dbd_conn) so that
 * every step reads the same for both. */
#include <awith.h>
#include <awith/pg.h>
#include <awith/pool.h>
#include <awith/sqlite.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_demo.h"

/* --- one face for both engines ------------------------------------------ */

typedef struct {
    bool pg;
    aw_pg_t *p;
    aw_sqlite_t *s;
} dbd_conn;

static const char *dbd_path(const char *dsn) { return dsn + strlen("sqlite:"); }

static int dbd_open(void *dsn_, void **out) {
    const char *dsn = dsn_;
    dbd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return aw_raise(-ENOMEM, "out of memory");
    c->pg = strncmp(dsn, "sqlite:", 7) != 0;
    int rc = c->pg ? aw_pg_open(&c->p, dsn) : aw_sqlite_open(&c->s, dbd_path(dsn));
    if (rc < 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void dbd_close(void *ctx, void *conn) {
    dbd_conn *c = conn;
    if (c->pg)
        aw_pg_close(c->p);
    else
        aw_sqlite_close(c->s);
    free(c);
}

static bool dbd_usable(void *ctx, void *conn) {
    dbd_conn *c = conn;
    return c->pg ? aw_pg_ok(c->p) : true;
}

/* Run `sql` with one text parameter (or none) and print the rows as the
 * seed prints its result: [{'id': 1, 'name': 'Alice'}]. */
static int dbd_print(dbd_conn *c, const char *sql, const char *param) {
    printf("Result: [");
    int rows, cols, rc;
    if (c->pg) {
        aw_pg_res_t *r;
        rc = param ? aw_pg_query(c->p, &r, sql, aw_pg_args(aw_pg_text(param)))
                   : aw_pg_query(c->p, &r, sql, aw_pg_noargs);
        if (rc < 0)
            return rc;
        rows = aw_pg_res_rows(r), cols = aw_pg_res_cols(r);
        for (int i = 0; i < rows; i++) {
            printf("%s{", i ? ", " : "");
            for (int j = 0; j < cols; j++) {
                long long v;
                const char *t = aw_pg_res_text(r, i, j);
                if (aw_pg_res_int(r, i, j, &v) == 0)
                    printf("%s'%s': %lld", j ? ", " : "", aw_pg_res_name(r, j), v);
                else
                    printf("%s'%s': '%s'", j ? ", " : "", aw_pg_res_name(r, j), t ? t : "None");
            }
            printf("}");
        }
        aw_pg_res_free(r);
    } else {
        aw_sqlite_res_t *r;
        rc = param ? aw_sqlite_query(c->s, &r, sql, aw_sqlite_args(aw_sqlite_text(param)))
                   : aw_sqlite_query(c->s, &r, sql, aw_sqlite_noargs);
        if (rc < 0)
            return rc;
        rows = aw_sqlite_res_rows(r), cols = aw_sqlite_res_cols(r);
        for (int i = 0; i < rows; i++) {
            printf("%s{", i ? ", " : "");
            for (int j = 0; j < cols; j++) {
                long long v;
                const char *t = aw_sqlite_res_text(r, i, j);
                if (aw_sqlite_res_int(r, i, j, &v) == 0)
                    printf("%s'%s': %lld", j ? ", " : "", aw_sqlite_res_name(r, j), v);
                else
                    printf("%s'%s': '%s'", j ? ", " : "", aw_sqlite_res_name(r, j), t ? t : "None");
            }
            printf("}");
        }
        aw_sqlite_res_free(r);
    }
    printf("]\n");
    return rows;
}

static long long dbd_exec(dbd_conn *c, const char *sql) {
    return c->pg ? aw_pg_exec(c->p, sql, aw_pg_noargs) : aw_sqlite_exec(c->s, sql, aw_sqlite_noargs);
}

/* --- 1. seed 002 §1: AsyncDatabaseConnection ------------------------------ */

typedef struct {
    const char *connection_string;
    dbd_conn *conn;                 /* NULL: not connected */
} dbd_database;

/* The DSN as printed: a password in a URI is shown as ***. */
static void dbd_show(const char *dsn) {
    const char *at = strchr(dsn, '@'), *scheme = strstr(dsn, "://");
    const char *colon = scheme && at ? memchr(scheme + 3, ':', at - scheme - 3) : NULL;
    if (colon)
        printf("%.*s:***%s", (int)(colon - dsn), dsn, at);
    else
        printf("%s", dsn);
}

static int dbd_enter(void *self, void **out) {
    dbd_database *db = self;
    printf("Connecting to ");
    dbd_show(db->connection_string);
    printf("...\n");
    void *c;
    int rc = dbd_open((void *)db->connection_string, &c);
    if (rc < 0)
        return rc;
    db->conn = c;
    puts("Connected!");
    *out = db;
    return 0;
}

static int dbd_exit(void *self, const aw_err_t *err) {
    dbd_database *db = self;
    puts("Closing connection...");
    dbd_close(NULL, db->conn);
    db->conn = NULL;
    puts("Connection closed!");
    return 0;
}

static const aw_cm_type_t dbd_database_type = {"AsyncDatabaseConnection", dbd_enter, dbd_exit, 0, 0};

/* async def execute_query(self, query) */
static int dbd_execute_query(dbd_database *db, const char *query) {
    if (!db->conn)
        return aw_raise(-ENOTCONN, "Not connected");
    printf("Executing: %s\n", query);
    return dbd_print(db->conn, query, NULL);
}

static int dbd_step1(const char *dsn) {
    dbd_database state = {dsn, NULL};
    dbd_database *kept = NULL;
    aw_with (dbd_database *db, aw_cm(&dbd_database_type, &state)) {
        kept = db;
        if (dbd_exec(db->conn, "CREATE TABLE IF NOT EXISTS users (id integer, name text)") < 0 ||
            dbd_exec(db->conn, "DELETE FROM users") < 0 ||
            dbd_exec(db->conn, "INSERT INTO users VALUES (1, 'Alice')") < 0)
            aw_leave();
        if (dbd_execute_query(db, "SELECT * FROM users") < 0)
            aw_leave();
    }
    if (aw_status() < 0)
        return aw_status();
    /* the connection is closed here: using it is an error, as in the seed */
    int rc = dbd_execute_query(kept, "SELECT * FROM users");
    if (rc != -ENOTCONN)
        return aw_raise(-EPROTO, "expected \"Not connected\" after the block");
    printf("After the block: %s\n", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}

/* --- 2. aiosqlite / asyncpg: connect, a transaction, rows ------------------- */

static int dbd_step2(const char *dsn) {
    dbd_database state = {dsn, NULL};
    aw_with (dbd_database *db, aw_cm(&dbd_database_type, &state)) {
        dbd_conn *c = db->conn;
        const char *name = "Bob'); DROP TABLE users; --"; /* a parameter, never SQL */
        if (c->pg) {
            aw_with (aw_pg_tx(c->p)) {
                aw_pg_exec(c->p, "INSERT INTO users VALUES (2, $1)", aw_pg_args(aw_pg_text(name)));
            }
        } else {
            aw_with (aw_sqlite_tx(c->s)) {
                aw_sqlite_exec(c->s, "INSERT INTO users VALUES (2, ?)", aw_sqlite_args(aw_sqlite_text(name)));
            }
        }
        if (aw_status() < 0)
            aw_leave();
        puts("Inserted one user in a transaction (committed on leaving the block).");
        if (dbd_print(c, c->pg ? "SELECT id, name FROM users WHERE name = $1"
                               : "SELECT id, name FROM users WHERE name = ?",
                      name) != 1) {
            aw_fail(-EPROTO, "the inserted row is missing");
        }
        if (dbd_exec(c, "DROP TABLE users") < 0)
            aw_leave();
    }
    return aw_status();
}

/* --- 3. seed 002 §8: get_database_pool, get_connection ---------------------- */

static const aw_pool_ops_t dbd_pool_ops = {"demo_pool", dbd_open, dbd_close, NULL, NULL, dbd_usable};

/* @asynccontextmanager async def get_database_pool(dsn) */
static int dbd_get_database_pool(aw_gencm_t *g, void *dsn) {
    aw_pool_t *pool;
    int rc = aw_pool_open(&pool, &dbd_pool_ops, dsn, &(aw_pool_opts_t){.min = 1, .max = 4});
    if (rc < 0)
        return rc;
    rc = aw_gencm_yield(g, pool); /* try: yield pool */
    int crc = aw_pool_close(pool, AW_SEC(5)); /* finally: await pool.close() */
    return rc < 0 ? rc : crc;
}

/* @asynccontextmanager async def get_connection(pool) */
static int dbd_get_connection(aw_gencm_t *g, void *pool) {
    int rc = 0;
    aw_with (dbd_conn *connection, aw_pool_item(pool)) { /* async with pool.acquire() */
        rc = aw_gencm_yield(g, connection);
    }
    return rc < 0 ? rc : aw_status(); /* the block's error, or acquire's */
}

static int dbd_step3(const char *dsn) {
    aw_with (aw_pool_t *pool, aw_gencm(dbd_get_database_pool, (void *)dsn)) {
        aw_with (dbd_conn *conn, aw_gencm(dbd_get_connection, pool)) {
            if (dbd_print(conn, "SELECT 1 AS \"?column?\"", NULL) != 1) /* conn.fetch('SELECT 1') */
                aw_leave();
        }
    }
    return aw_status();
}

/* --- the demo ------------------------------------------------------------ */

int example_db(void *arg) {
    const char *dsn = arg;
    char tmp[64] = "";
    if (!dsn || !*dsn) {
        snprintf(tmp, sizeof tmp, "sqlite:/tmp/awith-demo-%d.db", (int)getpid());
        dsn = tmp;
    }
    int rc = 0;
    puts("-- seed 002 §1: AsyncDatabaseConnection, execute_query, \"Not connected\" after close");
    if ((rc = dbd_step1(dsn)) == 0) {
        puts("-- seed 001: aiosqlite/asyncpg: connect, a transaction, bound parameters");
        rc = dbd_step2(dsn);
    }
    if (rc == 0) {
        puts("-- seed 002 §8: get_database_pool + get_connection, SELECT 1");
        rc = dbd_step3(dsn);
    }
    if (tmp[0])
        unlink(dbd_path(tmp));
    return rc;
}

int aw_example_db_demo(const char *dsn) { return aw_main(example_db, (void *)dsn); }

#ifndef AW_EXAMPLE_NO_MAIN
/* db_demo [DSN]   (a DSN of the form $VAR is read from the environment) */
int main(int argc, char **argv) {
    const char *dsn = argc > 1 ? argv[1] : NULL;
    if (dsn && dsn[0] == '$')
        dsn = getenv(dsn + 1);
    return aw_example_db_demo(dsn) < 0 ? 1 : 0;
}
#endif
