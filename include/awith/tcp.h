/* awith/tcp.h: TCP client and server sockets.
 *
 *   aw_with (aw_stream_t *s, aw_tcp_client("localhost", 8080)) { ... }
 *
 *   aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
 *   aw_with (aw_server_t *srv, aw_server(l, handle, NULL)) { ... }   // awith/server.h
 *
 * Host names are resolved with getaddrinfo(3) on the loop's thread pool
 * (numeric addresses are parsed on the spot, no thread involved). The
 * addresses race (Happy Eyeballs, RFC 8305): the families interleaved
 * (the first address's family first, usually IPv6, then the other,
 * alternating), a new attempt started every "connection attempt delay"
 * (250 ms) or as soon as the previous attempt fails; the first socket to
 * connect wins and every other one is closed. An address that never
 * answers thus delays the others by one attempt delay, not by the
 * kernel's connect timeout. */
#ifndef AWITH_TCP_H
#define AWITH_TCP_H

#include <awith/listener.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Connect to host:port and adopt the socket into *s (TCP_NODELAY set).
 * Suspends (resolution, connect); a cancellation point; honours
 * deadlines. On failure nothing is left open and *s is closed. Errors:
 * -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, ... (the last failure's; the
 * message names every address tried and its error), -ENXIO
 * (host not found: "resolve x.invalid: Name or service not known"),
 * -EAGAIN (temporary DNS failure), -EMFILE (no fd left), -ECANCELED. */
AW_API int aw_tcp_connect(aw_stream_t *s, const char *host, int port);

typedef struct aw_tcp_connect_opts {
    /* RFC 8305 §5 "Connection Attempt Delay": how long an attempt may go
     * unanswered before the next address is tried alongside it. 0: 250 ms;
     * at least 10 ms (the RFC's floor); AW_NEVER: one address at a time,
     * each until it fails. */
    aw_ns_t attempt_delay;
} aw_tcp_connect_opts_t;

/* aw_tcp_connect with options (opts NULL: the defaults). */
AW_API int aw_tcp_connect_opts(aw_stream_t *s, const char *host, int port,
                               const aw_tcp_connect_opts_t *opts);

/* Race the addresses of hosts[0..n) (each numeric or a name, all on
 * `port`), taken in that order as if one name had resolved to them all
 * (families interleaved: the first host's family first): for addresses
 * from elsewhere (a configuration, replicas, another resolver). The rest
 * as aw_tcp_connect_opts. -EINVAL if n is 0 or a host is NULL. */
AW_API int aw_tcp_connect_addrs(aw_stream_t *s, const char *const *hosts, size_t n, int port,
                                const aw_tcp_connect_opts_t *opts);

/* Listen on host:port (host NULL: every address, IPv4 and IPv6 on one
 * dual-stack socket where the host has IPv6; port 0: any free port,
 * see aw_listener_port). SO_REUSEADDR always, SO_REUSEPORT if asked.
 * Suspends only to resolve a host name. -EADDRINUSE, -EACCES, -ENXIO, ... */
AW_API int aw_tcp_listen(aw_listener_t *l, const char *host, int port, const aw_listen_opts_t *opts);

/* Managers: enter connects/listens, exit closes. */
typedef struct aw_tcp_client {   /* private; public for stack storage */
    aw_stream_t stream;
    const char *host;
    int port;
    const aw_tcp_connect_opts_t *opts;
} aw_tcp_client_t;
extern AW_API const aw_cm_type_t aw_tcp_client_type;
#define aw_tcp_client(host_, port_) aw_tcp_client_opts(host_, port_, NULL)
/* aw_tcp_client(h, p) with connect options, e.g.
 * aw_tcp_client_opts(h, p, &(aw_tcp_connect_opts_t){.attempt_delay = AW_MS(100)}) */
#define aw_tcp_client_opts(host_, port_, opts_) \
    aw_cm_temp(&aw_tcp_client_type, (aw_tcp_client_t){.host = (host_), .port = (port_), .opts = (opts_)})

typedef struct aw_tcp_listener { /* private; public for stack storage */
    aw_listener_t listener;
    const char *host;
    int port;
    const aw_listen_opts_t *opts;
} aw_tcp_listener_t;
extern AW_API const aw_cm_type_t aw_tcp_listener_type;
#define aw_tcp_listener(host_, port_, opts_) \
    aw_cm_temp(&aw_tcp_listener_type, (aw_tcp_listener_t){.host = (host_), .port = (port_), .opts = (opts_)})

#ifdef __cplusplus
}
#endif

#endif
