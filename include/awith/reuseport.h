/* awith/reuseport.h: one TCP port served by every loop of a set
 * (awith/loops.h), each loop with a listening socket of its own
 * (SO_REUSEPORT): the kernel spreads the connections over the loops by a
 * hash of their addresses, each loop accepts from its own queue, and no
 * connection ever moves between threads.
 *
 *   aw_reuseport_t rp;
 *   aw_reuseport_open(&rp, "0.0.0.0", 8080, 0);     // before the loops
 *   aw_loops_run(n, serve, &rp, NULL);              // serve: below
 *   aw_reuseport_close(&rp);
 *
 *   static int serve(void *arg, int index) {        // on every loop
 *       aw_with (aw_server_t *srv, aw_reuseport_server(arg, handle, NULL))
 *           aw_sleep_until(AW_NEVER);               // until aw_loops_stop
 *       return aw_status();
 *   }
 *
 * aw_reuseport_open reserves the port: a socket bound with SO_REUSEPORT
 * but not listening, so port 0 picks one port for every loop and no
 * other program can take it between the loops' binds. A socket that does
 * not listen is not in the kernel's group of listeners: it takes no
 * connection. The spread is by hash, not by load: with few long
 * connections a loop may get more than its share (docs/loops.md). */
#ifndef AWITH_REUSEPORT_H
#define AWITH_REUSEPORT_H

#include <awith/server.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_reuseport {    /* private except `port` */
    int fd;                      /* the reservation; -1 once closed */
    int port;                    /* the port every loop listens on */
    int backlog;                 /* each loop's accept queue; 0: SOMAXCONN */
    char host[64];               /* the numeric address every loop binds */
} aw_reuseport_t;

/* Reserve host:port (host NULL: 0.0.0.0; port 0: any free port, then in
 * rp->port) for the loops' listeners, each with an accept queue of
 * `backlog` (0: SOMAXCONN). Blocking (a host name is resolved with
 * getaddrinfo on the calling thread): call it before the loops start, not
 * from a task. Never suspends. Returns 0, -EADDRINUSE (taken by a socket
 * without SO_REUSEPORT, or by another user), -EACCES, -ENXIO (host not
 * found), -EMFILE. Close it with aw_reuseport_close once the loops have
 * ended. */
AW_API int aw_reuseport_open(aw_reuseport_t *rp, const char *host, int port, int backlog);

/* Release the reservation. Idempotent; never suspends; returns 0. */
AW_API int aw_reuseport_close(aw_reuseport_t *rp);

/* A listener on rp's address for the calling loop (SO_REUSEPORT): enter
 * listens (never suspends: the address is numeric), exit closes it. It
 * takes its share of the connections from when it listens until it
 * closes; connections still queued when it closes are reset by the
 * kernel (the others' queues are not touched). rp is borrowed until the
 * block ends. Errors: as aw_tcp_listen, -EBADF (rp closed). */
typedef struct aw_reuseport_listener { /* private; public for stack storage */
    aw_listener_t listener;
    aw_reuseport_t *rp;
} aw_reuseport_listener_t;
extern AW_API const aw_cm_type_t aw_reuseport_listener_type;
#define aw_reuseport_listener(rp_) \
    aw_cm_temp(&aw_reuseport_listener_type, (aw_reuseport_listener_t){.rp = (rp_)})

/* aw_reuseport_listener and aw_server (awith/server.h) in one manager:
 * this loop's share of the server. Yields the aw_server_t (its counters
 * are this loop's). Exit stops accepting, cancels and awaits this loop's
 * handlers, then closes the listener. rp is borrowed until the block ends. */
typedef struct aw_reuseport_server { /* private; public for stack storage */
    aw_listener_t listener;
    aw_reuseport_t *rp;
    aw_server_fn fn;
    void *arg;
    aw_server_t server;
} aw_reuseport_server_t;
extern AW_API const aw_cm_type_t aw_reuseport_server_type;
#define aw_reuseport_server(rp_, fn_, arg_)                                            \
    aw_cm_temp(&aw_reuseport_server_type,                                              \
               (aw_reuseport_server_t){.rp = (rp_), .fn = (fn_), .arg = (arg_)})

#ifdef __cplusplus
}
#endif

#endif
