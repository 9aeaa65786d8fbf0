/* unix.c: Unix domain stream sockets; the streams and listeners are the
 * TCP ones. A connect to a full backlog (EAGAIN on Linux) is retried
 * after a short cancellable sleep. */
#include "net.h"

#include <stddef.h>

#include <awith/unix.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

static int aw__unix_addr(struct sockaddr_un *sa, const char *path) {
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (!path || strlen(path) >= sizeof sa->sun_path)
        return -ENAMETOOLONG;
    strcpy(sa->sun_path, path);
    return 0;
}

int aw_unix_connect(aw_stream_t *s, const char *path) {
    aw__stream_clear(s);
    struct sockaddr_un sa;
    if (aw__unix_addr(&sa, path) < 0)
        return aw_raise(-ENAMETOOLONG, "connect to %s: path too long for a Unix socket",
                        path ? path : "(null)");
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    int fd = -1;
    /* Linux answers a full backlog with EAGAIN (not EINPROGRESS): try
     * again after a short cancellable sleep, on a fresh socket. */
    while ((rc = aw__net_connect_start((struct sockaddr *)&sa, sizeof sa, &fd)) == -EAGAIN &&
           (rc = aw_sleep(AW_MS(1))) == 0)
        ;
    if (rc == -EINPROGRESS && (rc = aw_fd_wait(fd, AW_WRITE)) == 0)
        rc = aw__net_connect_result(fd);
    if (rc < 0 && fd >= 0)
        aw__net_close(fd);
    if (rc == -ECANCELED)
        return rc;
    if (rc < 0)
        return aw_raise(rc, "connect to %s: %s", path, aw_strerror(rc));
    aw_stream_init(s, fd, path);
    return 0;
}

/* The file a bound Unix socket's path names (UNIX_DIAG_VFS: device and
 * inode), asked of the kernel by the socket's own inode. 0, or -1 if it
 * cannot be told (no sock_diag here, no answer). */
static int aw__unix_bound_file(int fd, uint32_t *dev, uint32_t *ino) {
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -1;
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } req = {
        .h = {.nlmsg_len = sizeof req, .nlmsg_type = SOCK_DIAG_BY_FAMILY,
              .nlmsg_flags = NLM_F_REQUEST},
        .r = {.sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_ino = (uint32_t)st.st_ino,
              .udiag_show = UDIAG_SHOW_VFS, .udiag_cookie = {~0u, ~0u}},
    };
    long buf[256];
    ssize_t n = -1;
    if (send(nl, &req, sizeof req, 0) == (ssize_t)sizeof req)
        n = recv(nl, buf, sizeof buf, 0);
    close(nl);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (n < 0 || !NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
        return -1;
    struct unix_diag_msg *m = NLMSG_DATA(h);
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == UNIX_DIAG_VFS && RTA_PAYLOAD(a) >= sizeof(struct unix_diag_vfs)) {
            struct unix_diag_vfs *v = RTA_DATA(a);
            *dev = v->udiag_vfs_dev;
            *ino = v->udiag_vfs_ino;
            return 0;
        }
    }
    return -1;
}

bool aw__unix_owns_path(int fd, const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false; /* gone, or no socket: nothing of ours to unlink */
    uint32_t dev, ino;
    if (aw__unix_bound_file(fd, &dev, &ino) < 0)
        return true; /* cannot tell: unlink, as a close always did */
    /* the kernel's dev_t (major << 20 | minor), not stat's encoding */
    uint32_t kdev = (uint32_t)(major(st.st_dev) << 20 | minor(st.st_dev));
    return ino == (uint32_t)st.st_ino && dev == kdev;
}

int aw_unix_listen(aw_listener_t *l, const char *path, const aw_listen_opts_t *o) {
    l->fd = -1;
    l->track = (aw_track_t){0};
    l->port = 0;
    l->name[0] = 0;
    l->family = AF_UNIX;
    struct sockaddr_un sa;
    if (aw__unix_addr(&sa, path) < 0 || strlen(path) >= sizeof l->name)
        return aw_raise(-ENAMETOOLONG, "listen on %s: path too long for a Unix socket",
                        path ? path : "(null)");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -errno : 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        close(fd);
    }
    if (rc == 0) {
        strcpy(l->name, path);
        rc = aw__listener_start(l, fd, o);
        if (rc < 0)
            unlink(path);
    }
    if (rc < 0) {
        l->name[0] = 0;
        return aw_raise(rc, "listen on %s: %s", path, aw_strerror(rc));
    }
    return 0;
}

static int aw__unix_client_enter(void *self, void **out) {
    aw_unix_client_t *c = self;
    int rc = aw_unix_connect(&c->stream, c->path);
    if (rc < 0)
        return rc;
    *out = &c->stream;
    return 0;
}

_Static_assert(offsetof(aw_unix_client_t, stream) == 0, "the shared exit closes the first member");
const aw_cm_type_t aw_unix_client_type = {"unix_client", aw__unix_client_enter,
                                          aw__stream_cm_exit, 0, 0};

static int aw__unix_listener_enter(void *self, void **out) {
    aw_unix_listener_t *u = self;
    int rc = aw_unix_listen(&u->listener, u->path, u->opts);
    if (rc < 0)
        return rc;
    *out = &u->listener;
    return 0;
}

_Static_assert(offsetof(aw_unix_listener_t, listener) == 0, "the shared exit closes the first member");
const aw_cm_type_t aw_unix_listener_type = {"unix_listener", aw__unix_listener_enter,
                                            aw__listener_cm_exit, 0, 0};
