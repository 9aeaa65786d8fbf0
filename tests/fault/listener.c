/* tests/fault/listener.c: accept errors (src/net/listener.c with the fault
 * hooks). accept(2) can fail with a network error of the one connection
 * it was about to return (EPROTO, ENETUNREACH, EPERM from a firewall
 * ...); the man page says to treat those like EAGAIN and retry, as Trio's
 * SocketListener does. Raised instead, one client's bad connection fails
 * aw_listener_accept, and the server's accept loop with it, which stops
 * the whole server. The hook fails the library's next accept4 as the
 * kernel would, leaving the connection queued: a retry accepts it. */
#include <awith.h>
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/coro/fault.h"

/* A client socket made by the test itself (its calls are not hooked). */
static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

static int t_accept_retries(void *arg) {
    int err = *(int *)arg;
    aw_listener_t l;
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 0, NULL), 0);
    int c = raw_connect(aw_listener_port(&l));
    aw_fault_set(AW_FAULT_FD, 1, err, false); /* the next accept4 fails once */
    aw_stream_t s;
    int rc = aw_listener_accept(&l, &s);
    long fired = aw_fault_fired(AW_FAULT_FD);
    aw_fault_set(AW_FAULT_FD, 0, 0, false);
    cr_assert_eq(fired, 1, "the hook failed an accept4");
    cr_assert_eq(rc, 0, "accept retried past %s: %d %s", strerror(err), rc,
                 aw_err_current() ? aw_err_current()->msg : "");
    cr_assert_eq(aw_stream_write(&s, "x", 1), 0);
    char b;
    cr_assert_eq(read(c, &b, 1), 1, "the stream is the client's connection");
    aw_stream_close(&s);
    close(c);
    aw_listener_close(&l);
    return 0;
}

Test(listener, listener_h_a_network_error_of_one_connection_is_retried) {
    static const int errs[] = {EPROTO, ENETUNREACH, EHOSTUNREACH, ENETDOWN, EPERM};
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++)
        cr_assert_eq(aw_main(t_accept_retries, (void *)&errs[i]), 0);
}

/* The same under a server: one such error does not stop it. */
static int echo(aw_stream_t *s, void *arg) {
    (void)arg;
    char b[8];
    ssize_t n = aw_stream_read(s, b, sizeof b);
    return n > 0 ? aw_stream_write(s, b, (size_t)n) : (int)n;
}
static int t_server_goes_on(void *arg) {
    (void)arg;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, echo, NULL)) {
        int c = raw_connect(aw_listener_port(l));
        aw_fault_set(AW_FAULT_FD, 1, EPROTO, false);
        while (srv->accepted == 0)
            if (aw_sleep(AW_MS(1)) < 0)
                break;
        aw_fault_set(AW_FAULT_FD, 0, 0, false);
        cr_assert_eq(aw_status(), 0, "the server stopped: %s",
                     aw_err_current() ? aw_err_current()->msg : "");
        aw_stream_t cs;
        aw_stream_init(&cs, c, "client"); /* reads that let the handler run */
        char b[2];
        cr_assert_eq(aw_stream_write(&cs, "hi", 2), 0);
        cr_assert_eq(aw_stream_read_exactly(&cs, b, 2), 0, "the server answers");
        aw_stream_close(&cs);
    }
    return aw_status();
}
Test(listener, server_h_an_accept_error_of_one_connection_does_not_stop_the_server) {
    cr_assert_eq(aw_main(t_server_goes_on, NULL), 0);
}
