/* examples/gencm_connection.c -- seed 002, section 3: a manager written as
 * one function (@asynccontextmanager).
 *
 *   @asynccontextmanager
 *   async def gc_database_connection(connection_string):
 *       print(f"Connecting to {connection_string}...")
 *       await asyncio.sleep(0.5)
 *       print("Connected!")
 *       try:
 *           yield
 *       finally:
 *           print("Closing connection...")
 *           await asyncio.sleep(0.2)
 *           print("Connection closed!")
 *
 * aw_gencm_yield() is the yield: the block runs there and it returns the
 * error the block left with; what follows is the cleanup, shielded like a
 * class-style exit (the sleep in it cannot be cut by a cancel). Then the
 * variant that yields a value (`yield db`). The seed sleeps 0.5 s and
 * 0.2 s; here 50 and 20 ms. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

#define GC_CONNECT_MS 50 /* the seed: 0.5 s */
#define GC_CLOSE_MS 20   /* the seed: 0.2 s */

static int gc_database_connection(aw_gencm_t *g, void *arg) {
    const char *connection_string = arg;
    printf("Connecting to %s...\n", connection_string);
    if (aw_sleep_ms(GC_CONNECT_MS) < 0)
        return aw_status(); /* enter fails: the block is skipped */
    puts("Connected!");
    int rc = aw_gencm_yield(g, NULL); /* try: yield */
    puts("Closing connection...");    /* finally: */
    aw_sleep_ms(GC_CLOSE_MS);
    puts("Connection closed!");
    return rc; /* the block's error, if any, propagates */
}

/* With a value: the object the block uses. */
typedef struct gc_db {
    const char *dsn;
} gc_db;

static int gc_db_query(gc_db *db, const char *sql, const char **result) {
    *result = "[{'result': 1}]";
    return aw_yield(); /* `await db.query(sql)`: a suspension point */
}

static int gc_database(aw_gencm_t *g, void *arg) {
    gc_db db = {arg};
    printf("Connecting to %s...\n", db.dsn);
    int rc = aw_gencm_yield(g, &db); /* try: yield db */
    puts("Cleaning up...");          /* finally: */
    return rc;
}

int example_gencm_connection(void *arg) {
    aw_with (aw_gencm(gc_database_connection, "postgres://localhost")) {
        puts("Inside context");
    }
    if (aw_status() < 0)
        return aw_status();

    aw_with (gc_db *db, aw_gencm(gc_database, "postgres://localhost")) {
        const char *result;
        if (gc_db_query(db, "SELECT 1", &result) < 0)
            aw_leave();
        printf("Result: %s\n", result);
    }
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_gencm_connection, NULL) < 0; }
#endif
