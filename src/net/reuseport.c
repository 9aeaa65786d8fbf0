/* reuseport.c: a port shared by the loops of a set (SO_REUSEPORT).
 *
 * The reservation is a bound socket that never listens: it holds the
 * port (port 0 picks it once for every loop) without joining the
 * kernel's group of listeners, which is made of listening sockets only,
 * so it never takes a connection that nobody would accept. Each loop
 * then listens on that port with a socket of its own: one accept queue
 * and one epoll per loop, no lock or queue shared between threads. */
#include "net.h"

#include <awith/reuseport.h>
#include <awith/server.h>
#include <awith/tcp.h>

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int aw_reuseport_open(aw_reuseport_t *rp, const char *host, int port, int backlog) {
    memset(rp, 0, sizeof *rp);
    rp->fd = -1;
    rp->backlog = backlog;
    if (!host)
        host = "0.0.0.0";
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai;
    int g = getaddrinfo(host, service, &hints, &ai);
    if (g != 0)
        return aw_raise(g == EAI_SYSTEM ? -errno : -ENXIO, "reserve %s:%d: %s", host, port,
                        g == EAI_SYSTEM ? aw_strerror(-errno) : gai_strerror(g));
    int last = -EADDRNOTAVAIL;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
            bind(fd, a->ai_addr, a->ai_addrlen) < 0) {
            last = -errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char num[64];
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
            getnameinfo((struct sockaddr *)&ss, sl, num, sizeof num, NULL, 0, NI_NUMERICHOST)) {
            last = -EINVAL;
            close(fd);
            continue;
        }
        rp->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(rp->host, sizeof rp->host, "%s", num);
        rp->fd = fd;
        freeaddrinfo(ai);
        return 0;
    }
    freeaddrinfo(ai);
    return aw_raise(last, "reserve %s:%d: %s", host, port, aw_strerror(last));
}

int aw_reuseport_close(aw_reuseport_t *rp) {
    if (rp->fd >= 0) {
        close(rp->fd); /* never watched by a loop: no aw_fd_forget */
        rp->fd = -1;
    }
    return 0;
}

/* Listen on rp's address in this loop. */
static int aw__reuseport_listen(aw_listener_t *l, aw_reuseport_t *rp) {
    l->fd = -1;
    if (!rp || rp->fd < 0)
        return aw_raise(-EBADF, "listen on a closed port reservation%s%s",
                        rp ? " " : "", rp ? rp->host : "");
    aw_listen_opts_t o = {.backlog = rp->backlog, .reuseport = true};
    return aw_tcp_listen(l, rp->host, rp->port, &o); /* numeric: never suspends */
}

static int aw__reuseport_listener_enter(void *self, void **out) {
    aw_reuseport_listener_t *st = self;
    int rc = aw__reuseport_listen(&st->listener, st->rp);
    if (rc < 0)
        return rc;
    *out = &st->listener;
    return 0;
}

_Static_assert(offsetof(aw_reuseport_listener_t, listener) == 0,
               "the shared exit closes the first member");
const aw_cm_type_t aw_reuseport_listener_type = {"reuseport_listener",
                                                 aw__reuseport_listener_enter,
                                                 aw__listener_cm_exit, 0, 0, NULL};

static int aw__reuseport_server_enter(void *self, void **out) {
    aw_reuseport_server_t *st = self;
    int rc = aw__reuseport_listen(&st->listener, st->rp);
    if (rc < 0)
        return rc;
    memset(&st->server, 0, sizeof st->server);
    st->server.listener = &st->listener;
    st->server.fn = st->fn;
    st->server.arg = st->arg;
    void *srv;
    rc = aw_server_type.enter(&st->server, &srv);
    if (rc < 0) {
        aw_listener_close(&st->listener);
        return rc;
    }
    *out = srv;
    return 0;
}

static int aw__reuseport_server_exit(void *self, const aw_err_t *err) {
    aw_reuseport_server_t *st = self;
    int rc = aw_server_type.exit(&st->server, err);
    aw_listener_close(&st->listener);
    return rc;
}

/* Unshielded, as the server's own type: its group's exit manages the
 * scopes (closing the listener never suspends). */
const aw_cm_type_t aw_reuseport_server_type = {
    .name = "reuseport_server",
    .enter = aw__reuseport_server_enter,
    .exit = aw__reuseport_server_exit,
    .flags = AW_CM_UNSHIELDED,
};
