/* examples/connection.c -- seed 001: AsyncConnection(host, port).
 *
 * __aenter__ awaits connect(), __aexit__ awaits close(); both are plain
 * functions that may suspend (0.1 s each, as in the seed). The body uses
 * the connection for 0.2 s. Messages are the seed's, in Russian. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

typedef struct {
    const char *host;
    int port;
    const char *connection; /* "Connection object" while connected */
} async_connection;

/* async def connect(self) */
static int connection_connect(async_connection *c) {
    int rc = aw_sleep_ms(100); /* simulate establishing the connection */
    if (rc < 0)
        return rc;
    printf("Подключение к %s:%d\n", c->host, c->port);
    c->connection = "Connection object";
    return 0;
}

/* async def close(self) */
static int connection_close(async_connection *c) {
    int rc = aw_sleep_ms(100); /* simulate closing the connection */
    printf("Закрытие соединения с %s:%d\n", c->host, c->port);
    c->connection = NULL;
    return rc;
}

static int connection_enter(void *self, void **out) {
    int rc = connection_connect(self);
    if (rc < 0)
        return rc;
    *out = self; /* the object available inside the block */
    return 0;
}

static int connection_exit(void *self, const aw_err_t *err) {
    return connection_close(self); /* runs even if the block failed */
}

static const aw_cm_type_t connection_type = {
    .name = "AsyncConnection", .enter = connection_enter, .exit = connection_exit};
/* AsyncConnection(host, port) */
#define async_connection(h, p) aw_cm_temp(&connection_type, (async_connection){.host = (h), .port = (p)})

int example_connection(void *arg) {
    aw_with (async_connection *conn, async_connection("example.com", 8080)) {
        /* inside the block, conn is the established connection */
        if (conn->connection)
            puts("Соединение установлено. Используем...");
        if (aw_sleep_ms(200) < 0) /* replace with real work on the connection */
            aw_leave();
        puts("Соединение больше не нужно.");
    }
    /* after the block the connection is guaranteed closed */
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_connection, NULL) < 0; }
#endif
