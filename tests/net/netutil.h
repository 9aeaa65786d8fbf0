/* netutil.h: what the net tests share. */
#ifndef AW_NETUTIL_H
#define AW_NETUTIL_H

#include "testutil.h"

#include <awith/server.h>
#include <awith/stream.h>
#include <awith/tcp.h>
#include <awith/unix.h>
#include <string.h>
#include <sys/ioctl.h>

/* Does the pending error's message contain `s`? */
static inline bool msg_has(const char *s) {
    const aw_err_t *e = aw_err_current();
    return e && strstr(e->msg, s);
}

static inline const char *msg_now(void) {
    const aw_err_t *e = aw_err_current();
    return e ? e->msg : "(no error)";
}

/* Bytes waiting in fd's receive queue. */
static inline int net_inq(int fd) {
    int n = 0;
    ioctl(fd, FIONREAD, &n);
    return n;
}

/* Bytes in fd's send queue not yet acknowledged. */
static inline int net_outq(int fd) {
    int n = 0;
    ioctl(fd, TIOCOUTQ, &n);
    return n;
}

/* Yield until cond holds, sleeping a little between looks. */
#define wait_until(cond)                          \
    do {                                          \
        while (!(cond))                           \
            cr_assert_eq(aw_sleep(AW_MS(1)), 0); \
    } while (0)

#endif

/* A connected TCP pair over 127.0.0.1: *a is the client, *b the server
 * side. Returns 0 or the error. */
static inline int net_pair(aw_stream_t *a, aw_stream_t *b) {
    aw_listener_t l;
    int rc = aw_tcp_listen(&l, "127.0.0.1", 0, NULL);
    if (rc < 0)
        return rc;
    rc = aw_tcp_connect(a, "127.0.0.1", aw_listener_port(&l));
    if (rc == 0 && (rc = aw_listener_accept(&l, b)) < 0)
        aw_stream_close(a);
    aw_listener_close(&l);
    return rc;
}
