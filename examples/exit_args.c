/* examples/exit_args.c -- seed 002, sections 1 and 2.
 *
 * Section 1: AsyncDatabaseConnection(connection_string) with an
 * execute_query() that returns rows, and fails with "Not connected" once
 * the block has closed the connection. Sleeps as in the seed (0.5 s
 * connect, 0.3 s query, 0.2 s close).
 *
 * Section 2: what __aexit__(exc_type, exc_val, exc_tb) receives. In C the
 * exit gets the error record the block left with (NULL on a clean way
 * out): its code, message and origin. Its return value decides:
 *   0            `return False`: the error propagates;
 *   AW_SUPPRESS  `return True`: the error is swallowed, execution
 *                continues after the block. */
#include <awith.h>
#include <stdbool.h>
#include <stdio.h>

#include "examples.h"

/* ---- section 1 ---------------------------------------------------------- */

typedef struct {
    const char *connection_string;
    bool is_connected;
} pg_connection;

typedef struct { int id; const char *name; } user_row;

static int pg_enter(void *self, void **out) {
    pg_connection *db = self;
    printf("Connecting to %s...\n", db->connection_string);
    int rc = aw_sleep_ms(500); /* simulate connecting */
    if (rc < 0)
        return rc;
    db->is_connected = true;
    puts("Connected!");
    *out = db;
    return 0;
}

static int pg_exit(void *self, const aw_err_t *err) {
    pg_connection *db = self;
    puts("Closing connection...");
    aw_sleep_ms(200); /* simulate closing */
    db->is_connected = false;
    puts("Connection closed!");
    return 0; /* `return False`: let the error propagate, if there is one */
}

static const aw_cm_type_t pg_type = {
    .name = "AsyncDatabaseConnection", .enter = pg_enter, .exit = pg_exit};

/* async def execute_query(self, query): the rows, or an error raised. */
static int pg_execute_query(pg_connection *db, const char *query, const user_row **rows) {
    if (!db->is_connected)
        return aw_raise(-ENOTCONN, "Not connected"); /* raise RuntimeError(...) */
    printf("Executing: %s\n", query);
    int rc = aw_sleep_ms(300); /* simulate the query */
    if (rc < 0)
        return rc;
    static const user_row result[] = {{1, "Alice"}};
    *rows = result;
    return 1; /* row count */
}

/* print(f"Result: {result}") */
static void pg_print_rows(const user_row *rows, int n) {
    printf("Result: [");
    for (int i = 0; i < n; i++)
        printf("%s{'id': %d, 'name': '%s'}", i ? ", " : "", rows[i].id, rows[i].name);
    printf("]\n");
}

static int exit_args_database(void) {
    pg_connection conn = {.connection_string = "postgres://localhost"};
    aw_with (pg_connection *db, aw_cm(&pg_type, &conn)) {
        const user_row *rows;
        int n = pg_execute_query(db, "SELECT * FROM users", &rows);
        if (n < 0)
            aw_leave(); /* leave with the error: exit sees it */
        pg_print_rows(rows, n);
    }
    if (aw_status() < 0)
        return aw_status();
    /* the connection is closed here */
    const user_row *rows;
    if (pg_execute_query(&conn, "SELECT * FROM users", &rows) < 0) {
        printf("Error: %s\n", aw_err_current()->msg); /* except RuntimeError as e */
        aw_err_clear();                               /* handled */
    }
    return 0;
}

/* ---- section 2 ---------------------------------------------------------- */

typedef struct { bool suppress; } context_manager;

static int context_enter(void *self, void **out) {
    puts("Entering context");
    *out = self;
    return 0;
}

static int context_exit(void *self, const aw_err_t *err) {
    context_manager *cm = self;
    if (err) { /* exc_type is not None */
        printf("Exception occurred: %s: %s\n", aw_err_name(err->code), err->msg);
        return cm->suppress ? AW_SUPPRESS : 0;
    }
    puts("Exiting normally");
    return 0;
}

static const aw_cm_type_t context_type = {
    .name = "AsyncContextManager", .enter = context_enter, .exit = context_exit};
#define async_context_manager(sup) aw_cm_temp(&context_type, (context_manager){.suppress = (sup)})

static int exit_args_context(void) {
    /* the error propagates: exit returns 0 (`return False`) */
    aw_with (async_context_manager(false)) {
        aw_fail(-EINVAL, "Something went wrong!"); /* raise ValueError(...) */
    }
    if (aw_status() == -EINVAL) { /* except ValueError: */
        puts("Exception was raised");
        aw_err_clear();
    }

    /* a clean way out: exit gets NULL */
    aw_with (async_context_manager(false)) {
    }

    /* the error is suppressed: exit returns AW_SUPPRESS (`return True`) */
    aw_with (async_context_manager(true)) {
        aw_fail(-EINVAL, "Something went wrong!");
        puts("not reached: aw_fail leaves the block");
    }
    if (aw_status() == 0)
        puts("Suppressed: execution continues after the block");
    return aw_status();
}

int example_exit_args(void *arg) {
    int rc = exit_args_database();
    if (rc < 0)
        return rc;
    return exit_args_context();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_exit_args, NULL) < 0; }
#endif
