/* examples/net/tcp_connection.c -- seed 001's AsyncConnection(host, port),
 * for real: "in a real situation this would be asyncio.open_connection".
 *
 * connect() opens a TCP connection (awith/tcp.h), close() closes it; the
 * block sends a line and reads the answer. The server is local: an echo
 * server on 127.0.0.1, a free port, run by the same program in a task
 * group (awith/server.h); the client gives it 5 s (aw_fail_after) to
 * answer. Messages are the seed's, in Russian. */
#include <awith.h>
#include <awith/server.h>
#include <awith/tcp.h>
#include <stdio.h>
#include <string.h>

#include "net_demo.h"

typedef struct {
    const char *host;
    int port;
    aw_stream_t stream; /* the connection object */
    bool connected;
} async_connection;

/* async def connect(self) */
static int connection_connect(async_connection *c) {
    int rc = aw_tcp_connect(&c->stream, c->host, c->port); /* asyncio.open_connection */
    if (rc < 0)
        return rc;
    printf("Подключение к %s:%d\n", c->host, c->port);
    c->connected = true;
    return 0;
}

/* async def close(self) */
static int connection_close(async_connection *c) {
    printf("Закрытие соединения с %s:%d\n", c->host, c->port);
    c->connected = false;
    return aw_stream_close(&c->stream);
}

static int connection_enter(void *self, void **out) {
    int rc = connection_connect(self);
    if (rc < 0)
        return rc;
    *out = self;
    return 0;
}

static int connection_exit(void *self, const aw_err_t *err) {
    (void)err;
    return connection_close(self); /* runs even if the block failed */
}

static const aw_cm_type_t connection_type = {
    .name = "AsyncConnection", .enter = connection_enter, .exit = connection_exit};
#define async_connection(h, p) aw_cm_temp(&connection_type, (async_connection){.host = (h), .port = (p)})

/* The server side: echo each line back. */
static int echo(aw_stream_t *s, void *arg) {
    char line[256];
    ssize_t n;
    while ((n = aw_stream_read_line(s, line, sizeof line)) > 0)
        if (aw_stream_write(s, line, (size_t)n) < 0)
            return -1;
    return (int)n;
}

int example_tcp_connection(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server(l, echo, NULL)) {
        /* a client bounds its wait for the answer (asyncio.wait_for): a
         * server that cannot accept (out of fds, it retries until it can)
         * leaves the connection in its backlog, unanswered */
        aw_with (aw_fail_after(AW_SEC(5)))
        aw_with (async_connection *conn, async_connection("127.0.0.1", aw_listener_port(l))) {
            if (conn->connected)
                puts("Соединение установлено. Используем...");
            char answer[64];
            const char *msg = "ping\n";
            if (aw_stream_write(&conn->stream, msg, strlen(msg)) < 0)
                aw_leave();
            ssize_t n = aw_stream_read_line(&conn->stream, answer, sizeof answer);
            if (n < 0)
                aw_leave();
            printf("Ответ сервера: %.*s", (int)n, answer);
            puts("Соединение больше не нужно.");
        }
    }
    /* after the block the connection is guaranteed closed */
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_tcp_connection, NULL) < 0; }
#endif
