/* awith/listener.h: a listening socket (TCP or Unix) and accept.
 * Made by aw_tcp_listen / aw_unix_listen (awith/tcp.h, awith/unix.h). */
#ifndef AWITH_LISTENER_H
#define AWITH_LISTENER_H

#include <awith/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_listener aw_listener_t;
struct aw_listener {             /* private; public for stack storage */
    int fd;                      /* -1 once closed */
    int family;                  /* AF_INET, AF_INET6, AF_UNIX */
    int port;                    /* TCP: the bound port (useful with port 0) */
    char name[108];              /* "127.0.0.1:8080" or the Unix path */
    aw_track_t track;            /* reported at loop close if never closed */
};

typedef struct aw_listen_opts {
    int backlog;                 /* 0: SOMAXCONN */
    bool reuseport;              /* SO_REUSEPORT: one listener per loop/core */
} aw_listen_opts_t;

/* Accept one connection into *out (an adopted stream: close it). A
 * cancellation point; suspends until a peer connects. Returns 0, or
 * -ECANCELED, -EMFILE/-ENFILE (no fd left: the pending connection stays
 * queued), -EBADF (listener closed). */
AW_API int aw_listener_accept(aw_listener_t *l, aw_stream_t *out);

/* Close: stop listening (a Unix listener also unlinks its path). Always
 * releases; idempotent; never suspends. Returns 0. */
AW_API int aw_listener_close(aw_listener_t *l);

/* The listener's TCP port (after binding port 0), or 0 for Unix. */
static inline int aw_listener_port(const aw_listener_t *l) { return l->port; }

#ifdef __cplusplus
}
#endif

#endif
