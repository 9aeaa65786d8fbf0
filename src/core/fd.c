/* fd.c: aw_fd_wait, the cancellable face of the reactor. */
#include "core.h"

#include <sys/epoll.h>

static void aw__fd_wake(aw__waiter_t *w, int rc) {
    aw_task_t *t = (aw_task_t *)((char *)w - offsetof(aw_task_t, waiter));
    t->unwait = NULL; /* the reactor already dropped us */
    aw__task_wake(t, rc);
}

static void aw__fd_unwait(aw_task_t *t) {
    aw__fd_unwatch(t->loop, t->wait_fd, &t->waiter);
}

int aw_fd_wait(int fd, int events) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_fd_wait");
    t->waiter.wake = aw__fd_wake;
    int rc = aw__fd_watch(t->loop, fd, events & AW_READ ? EPOLLIN : EPOLLOUT, &t->waiter);
    if (rc == -EBUSY)
        return aw_raise(rc, "wait for fd %d: another task is already waiting to %s it (one waiter "
                        "a direction)", fd, events & AW_READ ? "read" : "write");
    if (rc < 0)
        return aw_raise(rc, "wait for fd %d: %s", fd, aw_strerror(rc));
    if (rc == 1) { /* already ready */
        rc = aw_checkpoint();
        if (rc < 0) /* the edge is not used: keep it for the next wait */
            aw__fd_unconsume(t->loop, fd, events & AW_READ ? EPOLLIN : EPOLLOUT);
        return rc;
    }
    t->wait_fd = fd;
    t->unwait = aw__fd_unwait;
    rc = aw__task_wait(t, AW_NEVER, 1);
    if (rc == -EBADF)
        return aw_raise(rc, "fd %d was closed while a task waited on it", fd);
    return rc;
}

void aw_fd_forget(int fd) {
    aw_loop_t *l = aw__loop_tls;
    if (l)
        aw__fd_forget(l, fd);
}
