/* tcp.c: TCP connect (Happy Eyeballs) and listen. Resolution and the
 * connect step are shared with the other net files (net.c).
 *
 * Connect races the addresses (Happy Eyeballs, RFC 8305): families
 * interleaved, a new attempt every "connection attempt delay" (250 ms) or
 * as soon as the previous one fails, the first to connect wins and every
 * other socket is closed, on every path. */
#include "net.h"

#include <stddef.h>

#include <arpa/inet.h>
#include <awith/tcp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- Happy Eyeballs (RFC 8305) ----
 *
 * The attempts race inside the calling task. A task waits on one fd at a
 * time (aw_fd_wait), so "any attempt's socket writable" is one wait on a
 * private epoll fd holding every socket in flight (the HTTP layer waits on
 * curl's sockets the same way), and "or the attempt delay elapsed" is a
 * move-on scope around that wait. A task per attempt would cost a stack
 * each, a group, and a hand-over of the winner while the losers are
 * cancelled: more code for the same cleanup duties. Here one loop owns
 * every socket, so one cleanup at its end closes the losers on every way
 * out (a win, all failed, a cancel, a deadline). The epoll fd is made
 * only when a second attempt starts while the first is in flight: until
 * then the wait is on the one socket, so the usual connect (the first
 * address answers) costs no extra fd or syscall. Cost: O(addresses). */

typedef struct aw__race {
    const struct addrinfo **v;  /* addresses in attempt order */
    int *fd;                    /* v[i]'s socket while in flight, else -1 */
    size_t n, fly;              /* addresses; attempts in flight */
    size_t solo;                /* the attempt in flight while ep < 0 */
    int ep;                     /* epoll fd watching every attempt, or -1 */
    char why[384];              /* "addr: error; addr: error" of the failures */
    char last[64];              /* the address that failed last */
    size_t nfail;
    int err;                    /* its error */
    bool exhausted;             /* every address failed */
} aw__race_t;

/* Attempt i failed with rc: note it, close its socket. */
static void aw__race_fail(aw__race_t *r, size_t i, int rc) {
    aw__net_name(r->v[i]->ai_addr, r->v[i]->ai_addrlen, r->last, sizeof r->last);
    size_t used = strlen(r->why);
    snprintf(r->why + used, sizeof r->why - used, "%s%s: %s", r->nfail ? "; " : "", r->last,
             aw_strerror(rc));
    r->nfail++;
    r->err = rc;
    if (r->fd[i] >= 0) {
        aw__net_close(r->fd[i]);
        r->fd[i] = -1;
        r->fly--;
    }
}

static int aw__race_add(aw__race_t *r, size_t i) {
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = i};
    return epoll_ctl(r->ep, EPOLL_CTL_ADD, r->fd[i], &ev) < 0 ? -errno : 0;
}

/* Watch the new attempt i (r->fly counts it already): alone, directly;
 * else in the epoll fd, made now with every attempt in flight. 0 or a
 * negative code: with r->ep still -1 nothing changed; else some attempt
 * may be unwatched (the race must end). */
static int aw__race_watch(aw__race_t *r, size_t i) {
    if (r->ep >= 0)
        return aw__race_add(r, i);
    if (r->fly == 1) {
        r->solo = i;
        return 0;
    }
    if ((r->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -errno;
    int rc = 0;
    for (size_t j = 0; j <= i && rc == 0; j++)
        if (r->fd[j] >= 0)
            rc = aw__race_add(r, j);
    return rc;
}

/* Run the race over r->v: the index of the winner (its socket in
 * r->fd[i]); r->err when every address failed (not raised: r->exhausted);
 * or a raised error (-ECANCELED: a cancel or a deadline). */
static int aw__race_run(aw__race_t *r, aw_ns_t delay, const char *what) {
    size_t next = 0;
    aw_ns_t next_at = 0; /* when the next attempt may start (§5) */
    for (;;) {
        /* Start the next attempt: at once when nothing is in flight (the
         * previous one failed), else when the delay has elapsed. */
        if (next < r->n && (r->fly == 0 || aw_now() >= next_at)) {
            size_t i = next++;
            int rc = aw__net_connect_start(r->v[i]->ai_addr, r->v[i]->ai_addrlen, &r->fd[i]);
            if (rc == 0)
                return (int)i; /* connected on the spot */
            if (rc == -EINPROGRESS) {
                r->fly++;
                if ((rc = aw__race_watch(r, i)) < 0 && r->ep >= 0)
                    return aw_raise(rc, "connect to %s: %s", what, aw_strerror(rc));
                if (rc < 0) { /* no epoll fd (-EMFILE): the first attempt goes on alone */
                    aw__race_fail(r, i, rc);
                    next = r->n;
                    continue;
                }
                next_at = delay > AW_NEVER - aw_now() ? AW_NEVER : aw_now() + delay;
                continue;
            }
            aw__race_fail(r, i, rc);
            if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM)
                next = r->n; /* the other addresses would fail the same way */
            continue;
        }
        if (r->fly == 0)
            return r->exhausted = true, r->err; /* every address failed */
        /* Wait for a socket to be done, or for the next attempt's turn. */
        int rc = 0, wfd = r->ep >= 0 ? r->ep : r->fd[r->solo];
        int dir = r->ep >= 0 ? AW_READ : AW_WRITE;
        if (next < r->n) {
            aw_with (aw_move_on_at(next_at))
                rc = aw_fd_wait(wfd, dir);
        } else {
            rc = aw_fd_wait(wfd, dir);
        }
        if (aw_cancel_pending())
            return aw_checkpoint(); /* an outer cancel or deadline */
        if (rc < 0 && rc != -ECANCELED)
            return rc; /* the wait failed (raised) */
        if (r->ep < 0) {
            if (rc < 0)
                continue; /* the delay elapsed: start the next attempt */
            if ((rc = aw__net_connect_result(wfd)) == 0)
                return (int)r->solo;
            aw__race_fail(r, r->solo, rc);
            next_at = 0; /* a failure starts the next attempt now */
            continue;
        }
        /* the reactor's wait on r->ep is edge-triggered: take every ready
         * attempt before waiting again (one wins, the failed are closed) */
        struct epoll_event evs[32];
        for (int k = 32; k == 32;) {
            k = epoll_wait(r->ep, evs, 32, 0);
            for (int j = 0; j < k; j++) {
                size_t i = evs[j].data.u64;
                if ((rc = aw__net_connect_result(r->fd[i])) == 0)
                    return (int)i; /* the first to connect wins */
                aw__race_fail(r, i, rc);
                next_at = 0;
            }
        }
    }
}

/* Connect s to the first of v[0..n) to answer (what: "host:port" for
 * messages). Every socket but the winner's is closed on every path. */
static int aw__tcp_race(aw_stream_t *s, const struct addrinfo **v, size_t n,
                        const aw_tcp_connect_opts_t *o, const char *what) {
    aw_ns_t delay = o && o->attempt_delay ? o->attempt_delay : AW_MS(250);
    if (delay < AW_MS(10))
        delay = AW_MS(10); /* RFC 8305 §5: never less than 10 ms */
    aw__race_t r = {.v = v, .n = n, .fd = aw__malloc(n * sizeof(int)), .ep = -1, .err = -ENXIO};
    if (!r.fd)
        return aw_raise(-ENOMEM, "connect to %s: out of memory", what);
    for (size_t i = 0; i < n; i++)
        r.fd[i] = -1;
    int rc = aw__race_run(&r, delay, what);
    for (size_t i = 0; i < n; i++)
        if (r.fd[i] >= 0 && (int)i != rc)
            aw__net_close(r.fd[i]); /* the losers, still in flight */
    if (r.ep >= 0)
        aw__net_close(r.ep);
    if (rc >= 0) {
        int one = 1;
        setsockopt(r.fd[rc], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char name[64];
        aw__net_name(v[rc]->ai_addr, v[rc]->ai_addrlen, name, sizeof name);
        aw_stream_init(s, r.fd[rc], name);
        rc = 0;
    } else if (r.exhausted) {
        if (r.nfail == 1)
            rc = aw_raise(r.err, "connect to %s (%s): %s", what, r.last, aw_strerror(r.err));
        else
            rc = aw_raise(r.err, "connect to %s: all %zu addresses failed: %s%s", what, r.nfail,
                          r.why, strlen(r.why) + 1 >= sizeof r.why ? "..." : "");
    }
    aw__free(r.fd);
    return rc;
}

/* Interleave the families (RFC 8305 §4): the first address's family
 * (IPv6 when getaddrinfo, sorting by RFC 6724, prefers it), then the
 * other, alternating, each keeping its order. v[0..n) into out. */
static void aw__tcp_interleave(const struct addrinfo **v, size_t n, const struct addrinfo **out) {
    size_t a = 0, b = 0, k = 0;
    while (k < n) {
        while (a < n && v[a]->ai_family != v[0]->ai_family)
            a++;
        while (b < n && v[b]->ai_family == v[0]->ai_family)
            b++;
        if (a < n)
            out[k++] = v[a++];
        if (b < n)
            out[k++] = v[b++];
    }
}

/* Resolve hosts[0..nh) (each on port), race all their addresses in that
 * order, families interleaved. */
static int aw__tcp_connect_list(aw_stream_t *s, const char *const *hosts, size_t nh, int port,
                                const aw_tcp_connect_opts_t *o) {
    aw__stream_clear(s);
    if (nh == 0 || !hosts[0])
        return aw_raise(-EINVAL, "connect: no host");
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    char what[300];
    bool v6 = strchr(hosts[0], ':') != NULL; /* an IPv6 literal: "[::1]:80", as peers are named */
    snprintf(what, sizeof what, nh == 1 ? "%s%s%s:%d" : "%s%s%s:%d and %zu more", v6 ? "[" : "",
             hosts[0], v6 ? "]" : "", port, nh - 1);
    struct addrinfo **ai = aw__calloc(nh, sizeof *ai);
    if (!ai)
        return aw_raise(-ENOMEM, "connect to %s: out of memory", what);
    size_t n = 0;
    for (size_t h = 0; h < nh && rc == 0; h++) {
        rc = hosts[h] ? aw__net_resolve(hosts[h], port, false, &ai[h])
                      : aw_raise(-EINVAL, "connect to %s: host %zu is NULL", what, h);
        for (const struct addrinfo *a = ai[h]; a; a = a->ai_next)
            n++;
    }
    const struct addrinfo **v = rc == 0 ? aw__malloc(2 * n * sizeof *v) : NULL;
    if (rc == 0 && !v)
        rc = aw_raise(-ENOMEM, "connect to %s: out of memory", what);
    if (rc == 0) {
        size_t k = 0;
        for (size_t h = 0; h < nh; h++)
            for (const struct addrinfo *a = ai[h]; a; a = a->ai_next)
                v[n + k++] = a;
        aw__tcp_interleave(v + n, n, v);
        rc = aw__tcp_race(s, v, n, o, what);
    }
    aw__free(v);
    for (size_t h = 0; h < nh; h++)
        if (ai[h])
            freeaddrinfo(ai[h]);
    aw__free(ai);
    return rc;
}

int aw_tcp_connect_opts(aw_stream_t *s, const char *host, int port, const aw_tcp_connect_opts_t *o) {
    return aw__tcp_connect_list(s, &host, 1, port, o);
}

int aw_tcp_connect(aw_stream_t *s, const char *host, int port) {
    return aw__tcp_connect_list(s, &host, 1, port, NULL);
}

int aw_tcp_connect_addrs(aw_stream_t *s, const char *const *hosts, size_t n, int port,
                         const aw_tcp_connect_opts_t *o) {
    return aw__tcp_connect_list(s, hosts, n, port, o);
}

int aw_tcp_listen(aw_listener_t *l, const char *host, int port, const aw_listen_opts_t *o) {
    l->fd = -1;
    l->track = (aw_track_t){0};
    l->port = 0;
    l->name[0] = 0;
    struct addrinfo *ai;
    int rc = aw__net_resolve(host, port, true, &ai);
    if (rc < 0)
        return rc;
    int last = -EADDRNOTAVAIL;
    /* host NULL is every address, which getaddrinfo lists as 0.0.0.0
     * first, then ::. One socket holds them all only as a dual-stack ::
     * (IPV6_V6ONLY off, whatever net.ipv6.bindv6only says): it goes
     * first; 0.0.0.0 is for hosts without IPv6. */
    for (int pass = host ? 1 : 0; pass < 2; pass++) {
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
            if (!host && (pass == 0) != (a->ai_family == AF_INET6))
                continue;
            int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            a->ai_protocol);
            if (fd < 0) {
                last = -errno;
                continue;
            }
            int one = 1, zero = 0;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (!host && a->ai_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            if (o && o->reuseport &&
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
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
    }
    freeaddrinfo(ai);
    return aw_raise(last, "listen on %s:%d: %s", host ? host : "*", port, aw_strerror(last));
}

/* ---- managers ---- */

static int aw__tcp_client_enter(void *self, void **out) {
    aw_tcp_client_t *c = self;
    int rc = aw_tcp_connect_opts(&c->stream, c->host, c->port, c->opts);
    if (rc < 0)
        return rc;
    *out = &c->stream;
    return 0;
}

_Static_assert(offsetof(aw_tcp_client_t, stream) == 0, "the shared exit closes the first member");
const aw_cm_type_t aw_tcp_client_type = {"tcp_client", aw__tcp_client_enter, aw__stream_cm_exit, 0, 0};

static int aw__tcp_listener_enter(void *self, void **out) {
    aw_tcp_listener_t *t = self;
    int rc = aw_tcp_listen(&t->listener, t->host, t->port, t->opts);
    if (rc < 0)
        return rc;
    *out = &t->listener;
    return 0;
}

_Static_assert(offsetof(aw_tcp_listener_t, listener) == 0, "the shared exit closes the first member");
const aw_cm_type_t aw_tcp_listener_type = {"tcp_listener", aw__tcp_listener_enter,
                                           aw__listener_cm_exit, 0, 0};
