/* unix.c: Unix domain stream sockets; the streams and listeners are the
 * TCP ones. A connect to a full backlog (EAGAIN on Linux) is retried
 * after a short cancellable sleep. */
#include "net.h"

#include <stddef.h>

#include <awith/unix.h>
#include <string.h>
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
