/* tcp.c: TCP connect and listen, and name resolution.
 *
 * Resolution: getaddrinfo(3) blocks, so names are resolved on the loop's
 * thread pool (aw_to_thread). The job is on the heap: a cancelled caller
 * leaves at once, and the pool frees the job and its result when
 * getaddrinfo returns (the abandon hook). Numeric addresses skip the pool.
 *
 * Connect tries each address in turn (as getaddrinfo orders them, RFC 6724)
 * with a non-blocking connect and a cancellable wait for writability. Every
 * failure path closes the socket it made: nothing leaks. */
#include "net.h"

#include <arpa/inet.h>
#include <awith/tcp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct aw__resolve {
    char host[256];
    char port[8];
    struct addrinfo hints;
    struct addrinfo *res;
    int gai, err;
} aw__resolve_t;

static void aw__resolve_work(void *arg) {
    aw__resolve_t *j = arg;
    j->gai = getaddrinfo(j->host, j->port, &j->hints, &j->res);
    j->err = errno;
}

static void aw__resolve_abandon(void *arg) {
    aw__resolve_t *j = arg;
    if (j->res)
        freeaddrinfo(j->res);
    free(j);
}

static int aw__gai_code(int gai, int err) {
    switch (gai) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENXIO;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return err ? -err : -EIO;
    default:
        return -EINVAL;
    }
}

int aw__net_resolve(const char *host, int port, bool passive, struct addrinfo **out) {
    *out = NULL;
    if (port < 0 || port > 65535)
        return aw_raise(-EINVAL, "resolve %s: port %d out of range", host ? host : "*", port);
    char ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : AI_ADDRCONFIG)};
    struct addrinfo numeric = hints;
    numeric.ai_flags |= AI_NUMERICHOST;
    int gai = getaddrinfo(host, ps, &numeric, out);
    if (gai == 0)
        return 0;
    if (!host)
        return aw_raise(aw__gai_code(gai, errno), "resolve *:%d: %s", port, gai_strerror(gai));
    if (strlen(host) >= sizeof ((aw__resolve_t *)0)->host)
        return aw_raise(-ENAMETOOLONG, "resolve %.40s...: host name too long", host);
    aw__resolve_t *j = calloc(1, sizeof *j);
    if (!j)
        return aw_raise(-ENOMEM, "resolve %s: out of memory", host);
    strcpy(j->host, host);
    memcpy(j->port, ps, sizeof ps);
    j->hints = hints;
    int rc = aw_to_thread(aw__resolve_work, j, aw__resolve_abandon);
    if (rc < 0)
        return rc; /* cancelled: the pool owns j now; or it could not start */
    if (j->gai) {
        rc = aw__gai_code(j->gai, j->err);
        const char *why = j->gai == EAI_SYSTEM ? aw_strerror(rc) : gai_strerror(j->gai);
        aw__resolve_abandon(j);
        return aw_raise(rc, "resolve %s: %s", host, why);
    }
    *out = j->res;
    free(j);
    return 0;
}

void aw__net_name(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap) {
    char a[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
        snprintf(buf, cap, "%s:%d", a, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
        snprintf(buf, cap, "[%s]:%d", a, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)sa;
        if (len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0])
            snprintf(buf, cap, "%s", un->sun_path);
        else
            snprintf(buf, cap, "unix socket");
    } else {
        snprintf(buf, cap, "address family %d", sa->sa_family);
    }
}

/* Try one address: 0 with *fd connected, or a negative code (not raised,
 * unless it is a cancel, which the wait raised). */
static int aw__tcp_try(const struct addrinfo *a, int *fd) {
    int s = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (s < 0)
        return -errno;
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = 0;
    if (connect(s, a->ai_addr, a->ai_addrlen) < 0) {
        rc = -errno;
        if (rc == -EINPROGRESS) {
            rc = aw_fd_wait(s, AW_WRITE);
            if (rc == 0) {
                int err = 0;
                socklen_t el = sizeof err;
                if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
                    err = errno;
                rc = -err;
            }
        }
    }
    if (rc < 0) {
        aw_fd_forget(s);
        close(s);
        return rc;
    }
    *fd = s;
    return 0;
}

int aw_tcp_connect(aw_stream_t *s, const char *host, int port) {
    aw__stream_clear(s);
    if (!host)
        return aw_raise(-EINVAL, "connect: no host");
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    struct addrinfo *ai;
    rc = aw__net_resolve(host, port, false, &ai);
    if (rc < 0)
        return rc;
    char name[64] = "";
    int last = -ENXIO;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        aw__net_name(a->ai_addr, a->ai_addrlen, name, sizeof name);
        int fd = -1;
        rc = aw__tcp_try(a, &fd);
        if (rc == 0) {
            freeaddrinfo(ai);
            aw_stream_init(s, fd, name);
            return 0;
        }
        last = rc;
        if (rc == -ECANCELED || rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM)
            break; /* no point in trying the other addresses */
    }
    freeaddrinfo(ai);
    if (last == -ECANCELED)
        return last; /* raised by the wait (a deadline becomes -ETIMEDOUT at its scope) */
    return aw_raise(last, "connect to %s:%d (%s): %s", host, port, name, aw_strerror(last));
}

int aw_tcp_listen(aw_listener_t *l, const char *host, int port, const aw_listen_opts_t *o) {
    l->fd = -1;
    l->port = 0;
    l->name[0] = 0;
    struct addrinfo *ai;
    int rc = aw__net_resolve(host, port, true, &ai);
    if (rc < 0)
        return rc;
    int last = -EADDRNOTAVAIL;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (o && o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
            last = -errno;
            close(fd);
            continue;
        }
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0) {
            last = -errno;
            close(fd);
            continue;
        }
        l->family = a->ai_family;
        rc = aw__listener_start(l, fd, o);
        if (rc < 0) {
            last = rc;
            continue;
        }
        freeaddrinfo(ai);
        return 0;
    }
    freeaddrinfo(ai);
    return aw_raise(last, "listen on %s:%d: %s", host ? host : "*", port, aw_strerror(last));
}

/* ---- managers ---- */

static int aw__tcp_client_enter(void *self, void **out) {
    aw_tcp_client_t *c = self;
    int rc = aw_tcp_connect(&c->stream, c->host, c->port);
    if (rc < 0)
        return rc;
    *out = &c->stream;
    return 0;
}

static int aw__tcp_client_exit(void *self, const aw_err_t *err) {
    (void)err;
    return aw_stream_close(&((aw_tcp_client_t *)self)->stream);
}

const aw_cm_type_t aw_tcp_client_type = {"tcp_client", aw__tcp_client_enter, aw__tcp_client_exit, 0, 0};

static int aw__tcp_listener_enter(void *self, void **out) {
    aw_tcp_listener_t *t = self;
    int rc = aw_tcp_listen(&t->listener, t->host, t->port, t->opts);
    if (rc < 0)
        return rc;
    *out = &t->listener;
    return 0;
}

static int aw__tcp_listener_exit(void *self, const aw_err_t *err) {
    (void)err;
    return aw_listener_close(&((aw_tcp_listener_t *)self)->listener);
}

const aw_cm_type_t aw_tcp_listener_type = {"tcp_listener", aw__tcp_listener_enter,
                                           aw__tcp_listener_exit, 0, 0};
