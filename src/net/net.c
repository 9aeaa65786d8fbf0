/* net.c: what the net layer's files share: name resolution, socket
 * names, the non-blocking connect step and close (declared in net.h).
 *
 * Resolution: getaddrinfo(3) blocks, so names are resolved on the loop's
 * thread pool (aw_to_thread). The job is on the heap: a cancelled caller
 * leaves at once, and the pool frees the job and its result when
 * getaddrinfo returns (the abandon hook). Numeric addresses skip the pool. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
    aw__free(j);
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
    aw__resolve_t *j = aw__calloc(1, sizeof *j);
    if (!j)
        return aw_raise(-ENOMEM, "resolve %s: out of memory", host);
    strcpy(j->host, host);
    memcpy(j->port, ps, sizeof ps);
    j->hints = hints;
    int rc = aw_to_thread(aw__resolve_work, j, aw__resolve_abandon);
    if (rc == -ECANCELED)
        return rc; /* the pool owns j now: abandon frees it */
    if (rc < 0) { /* it could not start (-ENOMEM, -EAGAIN, -ECHILD): j is still ours */
        aw__free(j);
        return rc;
    }
    if (j->gai) {
        rc = aw__gai_code(j->gai, j->err);
        const char *why = j->gai == EAI_SYSTEM ? aw_strerror(rc) : gai_strerror(j->gai);
        aw__resolve_abandon(j);
        return aw_raise(rc, "resolve %s: %s", host, why);
    }
    *out = j->res;
    aw__free(j);
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
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* an IPv4 peer of a dual-stack listener: named as IPv4 */
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], a, sizeof a);
            snprintf(buf, cap, "%s:%d", a, ntohs(in6->sin6_port));
            return;
        }
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

int aw__net_connect_start(const struct sockaddr *sa, socklen_t len, int *fd) {
    *fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return -errno;
    int rc;
    while ((rc = connect(*fd, sa, len) < 0 ? -errno : 0) == -EINTR)
        ;
    if (rc < 0 && rc != -EINPROGRESS) {
        close(*fd); /* the loop never saw it */
        *fd = -1;
    }
    return rc;
}

int aw__net_connect_result(int fd) {
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    return -err;
}

void aw__net_close(int fd) {
    aw_fd_forget(fd);
    close(fd);
}
