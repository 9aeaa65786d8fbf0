/* listener.c: listening sockets and accept (TCP and Unix alike).
 * accept4 is tried first; the task waits for readability only after
 * EAGAIN, so a burst of connections is accepted without suspending. */
#include "net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int aw__listener_start(aw_listener_t *l, int fd, const aw_listen_opts_t *o) {
    int backlog = o && o->backlog > 0 ? o->backlog : SOMAXCONN;
    if (listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        if (ss.ss_family != AF_UNIX)
            aw__net_name((struct sockaddr *)&ss, sl, l->name, sizeof l->name);
    }
    l->fd = fd;
    aw_track_open(&l->track, "listener", "%s", l->name); /* -ENOMEM: untracked */
    return 0;
}

/* Errors accept(2) reports for the one pending connection it was about
 * to return, already gone: its man page says to treat them like EAGAIN
 * and retry, as Trio's SocketListener does (EPERM: a firewall rule on
 * Linux). Raised, one client's network trouble would stop a server. The
 * retry yields first: an error that does not go away (a seccomp rule)
 * must not keep the loop's other tasks, or a cancel, from running. */
static bool aw__accept_transient(int e) {
    switch (e) {
    case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
    case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case EPERM:
        return true;
    default:
        return false;
    }
}

int aw_listener_accept(aw_listener_t *l, aw_stream_t *out) {
    aw__stream_clear(out);
    if (l->fd < 0)
        return aw_raise(-EBADF, "accept on a closed listener (%s)", l->name);
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            char peer[64];
            if (l->family == AF_UNIX) {
                snprintf(peer, sizeof peer, "%.63s", l->name);
            } else {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                aw__net_name((struct sockaddr *)&ss, sl, peer, sizeof peer);
            }
            aw_stream_init(out, fd, peer);
            return 0;
        }
        int e = errno;
        if (e == EINTR)
            continue;
        if (aw__accept_transient(e)) {
            if ((rc = aw_yield()) < 0)
                return rc;
            continue;
        }
        if (e == EAGAIN || e == EWOULDBLOCK) {
            rc = aw_fd_wait(l->fd, AW_READ);
            if (rc < 0)
                return rc;
            continue;
        }
        return aw_raise(-e, "accept on %s: %s", l->name, aw_strerror(-e));
    }
}

int aw_listener_close(aw_listener_t *l) {
    if (l->fd >= 0) {
        /* asked before the close: the question is about this socket */
        bool unlink_it = l->family == AF_UNIX && l->name[0] && aw__unix_owns_path(l->fd, l->name);
        aw_fd_forget(l->fd);
        close(l->fd);
        l->fd = -1;
        if (unlink_it)
            unlink(l->name);
    }
    aw_track_close(&l->track);
    return 0;
}

int aw__listener_cm_exit(void *self, const aw_err_t *err) {
    (void)err;
    return aw_listener_close(self); /* self starts with the listener (net.h) */
}
