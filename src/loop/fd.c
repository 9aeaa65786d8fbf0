/* fd.c: the reactor. Each fd is registered once, edge-triggered, for both
 * directions; an edge that arrives while nobody waits is remembered in
 * `ready` and consumed by the next wait, so a wait after EAGAIN never
 * misses data and no epoll_ctl is made per wait. The table is indexed by fd
 * and epoll hands back the fd itself (as Redis' ae.c does): O(1) lookup,
 * and the table can move when it grows by doubling without telling epoll. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static int aw__fd_slot(aw_loop_t *l, int fd) {
    if ((size_t)fd < l->nfds)
        return 0;
    size_t n = l->nfds ? l->nfds : 64;
    while (n <= (size_t)fd)
        n *= 2;
    aw__fd_t *v = aw__realloc(l->fds, n * sizeof *v);
    if (!v)
        return -ENOMEM;
    memset(v + l->nfds, 0, (n - l->nfds) * sizeof *v);
    l->fds = v;
    l->nfds = n;
    return 0;
}

int aw__fd_watch(aw_loop_t *l, int fd, uint32_t events, aw__waiter_t *w) {
    if (fd < 0)
        return -EBADF;
    int rc = aw__fd_slot(l, fd);
    if (rc < 0)
        return rc;
    aw__fd_t *f = &l->fds[fd];
    if (!f->registered) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.fd = fd};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -errno;
        f->registered = 1;
        f->ready = 0;
    }
    uint32_t want = events & EPOLLIN ? EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR
                                     : EPOLLOUT | EPOLLHUP | EPOLLERR;
    if (f->ready & want) {
        f->ready &= ~(events & (EPOLLIN | EPOLLOUT));
        return 1;
    }
    aw__waiter_t **slot = events & EPOLLIN ? &f->rd : &f->wr;
    if (*slot)
        return -EBUSY; /* one reader and one writer per fd */
    *slot = w;
    l->fd_waiters++;
    return 0;
}

void aw__fd_unconsume(aw_loop_t *l, int fd, uint32_t events) {
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].registered)
        return;
    l->fds[fd].ready |= events & (EPOLLIN | EPOLLOUT);
}

void aw__fd_unwatch(aw_loop_t *l, int fd, aw__waiter_t *w) {
    if (fd < 0 || (size_t)fd >= l->nfds)
        return;
    aw__fd_t *f = &l->fds[fd];
    if (f->rd == w) {
        f->rd = NULL;
        l->fd_waiters--;
    }
    if (f->wr == w) {
        f->wr = NULL;
        l->fd_waiters--;
    }
}

void aw__fd_dispatch(aw_loop_t *l, int fd, uint32_t ev) {
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].registered)
        return; /* forgotten earlier in the same batch of events */
    aw__fd_t *f = &l->fds[fd];
    f->ready |= ev;
    if (f->rd && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        aw__waiter_t *w = f->rd;
        f->rd = NULL;
        f->ready &= ~EPOLLIN;
        l->fd_waiters--;
        w->wake(w, 0);
    }
    if (f->wr && (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
        aw__waiter_t *w = f->wr;
        f->wr = NULL;
        f->ready &= ~EPOLLOUT;
        l->fd_waiters--;
        w->wake(w, 0);
    }
}

void aw__fd_forget(aw_loop_t *l, int fd) {
    if (fd < 0 || (size_t)fd >= l->nfds)
        return;
    aw__fd_t *f = &l->fds[fd];
    if (f->registered)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    aw__waiter_t *r = f->rd, *w = f->wr;
    if (r)
        l->fd_waiters--;
    if (w)
        l->fd_waiters--;
    memset(f, 0, sizeof *f);
    if (r)
        r->wake(r, -EBADF);
    if (w)
        w->wake(w, -EBADF);
}
