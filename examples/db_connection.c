/* examples/db_connection.c -- seed 000: a class-style async context manager.
 *
 *   class AsyncDatabaseConnection:
 *       async def __aenter__(self): ...   -> database_enter
 *       async def __aexit__(self, ...): ... -> database_exit
 *
 *   async with AsyncDatabaseConnection() as db_connection:
 *       print("Performing a database operation...")
 *
 * and the seed's "several managers in one statement":
 *
 *   async with AsyncDatabaseConnection() as db_connection, \
 *              AsyncAPIConnection() as api_connection: ...
 *
 * which in C is two stacked aw_with lines. The seed sleeps 1 s in enter
 * and in exit; here every sleep is scaled to 1/10 (100 ms). */
#include <awith.h>
#include <stdbool.h>
#include <stdio.h>

#include "examples.h"

#define DB_DELAY_MS 100 /* the seed: asyncio.sleep(1) */

/* AsyncDatabaseConnection */
typedef struct { bool connected; } database_conn;

static int database_enter(void *self, void **out) {
    database_conn *db = self;
    puts("Connecting to the database...");
    int rc = aw_sleep_ms(DB_DELAY_MS); /* simulate opening the connection */
    if (rc < 0)
        return rc;                     /* enter failed: exit will not run */
    puts("Connection established.");
    db->connected = true;
    *out = db;                         /* `return self`: the `as` target */
    return 0;
}

static int database_exit(void *self, const aw_err_t *err) {
    database_conn *db = self;
    puts("Closing the database connection...");
    aw_sleep_ms(DB_DELAY_MS);          /* exits may suspend: they are shielded */
    db->connected = false;
    puts("Connection closed.");
    return 0;                          /* let the error (if any) propagate */
}

static const aw_cm_type_t database_type = {
    .name = "AsyncDatabaseConnection", .enter = database_enter, .exit = database_exit};
/* AsyncDatabaseConnection(): the state lives in the block, no malloc */
#define async_database_connection() aw_cm_temp(&database_type, (database_conn){0})

/* AsyncAPIConnection: the seed names it without showing it; same shape. */
typedef struct { bool connected; } api_conn;

static int api_enter(void *self, void **out) {
    api_conn *api = self;
    puts("Connecting to the API...");
    int rc = aw_sleep_ms(DB_DELAY_MS);
    if (rc < 0)
        return rc;
    puts("API connection established.");
    api->connected = true;
    *out = api;
    return 0;
}

static int api_exit(void *self, const aw_err_t *err) {
    api_conn *api = self;
    puts("Closing the API connection...");
    aw_sleep_ms(DB_DELAY_MS);
    api->connected = false;
    puts("API connection closed.");
    return 0;
}

static const aw_cm_type_t api_type = {
    .name = "AsyncAPIConnection", .enter = api_enter, .exit = api_exit};
#define async_api_connection() aw_cm_temp(&api_type, (api_conn){0})

/* async def main() */
static int db_main(void) {
    aw_with (database_conn *db_connection, async_database_connection()) {
        if (db_connection->connected)
            puts("Performing a database operation...");
    }
    return aw_status(); /* 0, or the error that left the block */
}

/* async def main_multiple_connections(): enters in order, exits in reverse */
static int db_main_multiple_connections(void) {
    aw_with (database_conn *db_connection, async_database_connection())
    aw_with (api_conn *api_connection, async_api_connection()) {
        if (db_connection->connected && api_connection->connected)
            puts("Performing operations with both connections.");
    }
    return aw_status();
}

int example_db_connection(void *arg) {
    int rc = db_main();
    if (rc < 0)
        return rc;
    return db_main_multiple_connections();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_db_connection, NULL) < 0; }
#endif
