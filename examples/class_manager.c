/* examples/class_manager.c -- seed 003, "Method 1: Using a Class" and the
 * practical database connection manager.
 *
 *   class AsyncResourceManager:
 *       async def __aenter__(self):
 *           await self.initialize()
 *           return self
 *       async def __aexit__(self, exc_type, exc_val, exc_tb):
 *           await self.cleanup()
 *           return False                     # propagate
 *
 *   class AsyncDBConnectionManager:
 *       async def __aenter__(self):
 *           self.conn = await create_connection()
 *           return self.conn                 # the `as` target
 *       async def __aexit__(self, exc_type, exc_val, exc_tb):
 *           await self.conn.close()          # even after an error
 *
 * A manager type is {name, enter, exit}; the instance is its state. The
 * value enter stores in *out is what the block gets (`as`). The exit runs
 * on every way out, shielded: the connection is closed even when the block
 * fails, and the block's error propagates (exit returns 0 = False). */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

#define CM_IO_MS 10 /* simulated setup and cleanup */

typedef struct cm_resource {
    const char *name;
} cm_resource;

static int cm_resource_enter(void *self, void **out) {
    cm_resource *r = self;
    printf("Initializing %s...\n", r->name); /* await self.initialize() */
    if (aw_sleep_ms(CM_IO_MS) < 0)
        return aw_status();
    *out = r; /* return self */
    return 0;
}

static int cm_resource_exit(void *self, const aw_err_t *err) {
    cm_resource *r = self;
    printf("Cleaning up %s\n", r->name); /* await self.cleanup() */
    aw_sleep_ms(CM_IO_MS);
    return 0; /* return False: an error propagates */
}

static const aw_cm_type_t cm_resource_type = {
    .name = "AsyncResourceManager", .enter = cm_resource_enter, .exit = cm_resource_exit};

/* The database connection manager returns the connection, not itself. */
typedef struct cm_conn {
    int id;
} cm_conn;

typedef struct cm_db_manager {
    cm_conn conn;
} cm_db_manager;

static int cm_db_enter(void *self, void **out) {
    cm_db_manager *m = self;
    if (aw_sleep_ms(CM_IO_MS) < 0) /* self.conn = await create_connection() */
        return aw_status();
    m->conn.id = 1;
    printf("Connection %d open\n", m->conn.id);
    *out = &m->conn; /* return self.conn */
    return 0;
}

static int cm_db_exit(void *self, const aw_err_t *err) {
    cm_db_manager *m = self;
    printf("Connection %d closed%s%s\n", m->conn.id, err ? " after " : "",
           err ? aw_err_name(err->code) : "");
    return 0;
}

static const aw_cm_type_t cm_db_type = {
    .name = "AsyncDBConnectionManager", .enter = cm_db_enter, .exit = cm_db_exit};

int example_class_manager(void *arg) {
    aw_with (cm_resource *r, aw_cm_temp(&cm_resource_type, (cm_resource){"the resource"})) {
        printf("Using %s\n", r->name);
    }
    if (aw_status() < 0)
        return aw_status();

    aw_with (cm_conn *conn, aw_cm_temp(&cm_db_type, (cm_db_manager){{0}})) {
        printf("Query on connection %d\n", conn->id);
        aw_fail(-EIO, "the query failed"); /* the connection is closed all the same */
    }
    if (aw_status() == -EIO) {
        printf("Error after the block: %s\n", aw_err_current()->msg);
        aw_err_clear();
    }
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_class_manager, NULL) < 0; }
#endif
