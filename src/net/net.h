/* net.h: what the net layer's files share (private). */
#ifndef AW_NET_NET_H
#define AW_NET_NET_H

#include "../coro/alloc.h" /* aw__malloc ...: the allocator table */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/thread.h>
#include <awith/fd.h>
#include <awith/listener.h>
#include <awith/stream.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>

/* Resolve host:port (passive: for bind) into a list to freeaddrinfo().
 * Numeric hosts are parsed on the spot; names go to the thread pool.
 * Returns 0 or a raised error (-ENXIO: not found). */
int aw__net_resolve(const char *host, int port, bool passive, struct addrinfo **out);

/* "1.2.3.4:80", "[::1]:80", or the Unix path, into buf. */
void aw__net_name(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

/* The non-blocking connect step TCP and Unix sockets share. Start: a new
 * non-blocking socket (CLOEXEC) for sa's family, connect(2) issued (EINTR
 * retried). Returns 0 (*fd connected), -EINPROGRESS (*fd open, connecting:
 * wait for AW_WRITE, then ask aw__net_connect_result), or a negative code
 * with nothing left open. Never suspends, raises nothing. */
int aw__net_connect_start(const struct sockaddr *sa, socklen_t len, int *fd);
/* How a connect in progress on fd ended (fd writable or hung up): 0 or
 * the negative code (SO_ERROR). */
int aw__net_connect_result(int fd);
/* Close a socket the loop may watch (waiters get -EBADF). */
void aw__net_close(int fd);

/* A stream that holds nothing (fd -1): safe to close. */
static inline void aw__stream_clear(aw_stream_t *s) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* The exit of every manager whose state starts with an aw_stream_t
 * (closing, tcp/unix/tls clients) or an aw_listener_t (listeners): close
 * it. One each, so the types differ only in how they enter. */
int aw__stream_cm_exit(void *self, const aw_err_t *err);
int aw__listener_cm_exit(void *self, const aw_err_t *err);

/* Mark s broken by `code` (first call only), with what broke it; every
 * later operation fails with -ENOTRECOVERABLE (SEMANTICS K2). */
__attribute__((format(printf, 3, 4)))
void aw__stream_break(aw_stream_t *s, int code, const char *fmt, ...);

/* Is the socket file at path still the one the listening Unix socket fd
 * is bound to (or can that not be told)? A listener unlinks its path on
 * close only then: a newer server may have replaced it. Never suspends. */
bool aw__unix_owns_path(int fd, const char *path);

/* Adopt a freshly created socket fd as a listener. */
int aw__listener_start(aw_listener_t *l, int fd, const aw_listen_opts_t *o);

#endif
