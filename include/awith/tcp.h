/* awith/tcp.h: TCP client and server sockets.
 *
 *   aw_with (aw_stream_t *s, aw_tcp_client("localhost", 8080)) { ... }
 *
 *   aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
 *   aw_with (aw_server_t *srv, aw_server(l, handle, NULL)) { ... }   // awith/server.h
 *
 * Host names are resolved with getaddrinfo(3) on the loop's thread pool
 * (numeric addresses are parsed on the spot, no thread involved); every
 * address (IPv6 and IPv4) is tried in turn until one connects. */
#ifndef AWITH_TCP_H
#define AWITH_TCP_H

#include <awith/listener.h>

/* Connect to host:port and adopt the socket into *s (TCP_NODELAY set).
 * Suspends (resolution, connect); a cancellation point; honours
 * deadlines. On failure nothing is left open and *s is closed. Errors:
 * -ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, ... (the last address's), -ENXIO
 * (host not found: "resolve x.invalid: Name or service not known"),
 * -EAGAIN (temporary DNS failure), -EMFILE (no fd left), -ECANCELED. */
AW_API int aw_tcp_connect(aw_stream_t *s, const char *host, int port);

/* Listen on host:port (host NULL: every address; port 0: any free port,
 * see aw_listener_port). SO_REUSEADDR always, SO_REUSEPORT if asked.
 * Suspends only to resolve a host name. -EADDRINUSE, -EACCES, -ENXIO, ... */
AW_API int aw_tcp_listen(aw_listener_t *l, const char *host, int port, const aw_listen_opts_t *opts);

/* Managers: enter connects/listens, exit closes. */
typedef struct aw_tcp_client {   /* private; public for stack storage */
    aw_stream_t stream;
    const char *host;
    int port;
} aw_tcp_client_t;
extern AW_API const aw_cm_type_t aw_tcp_client_type;
#define aw_tcp_client(host_, port_) \
    aw_cm(&aw_tcp_client_type, &(aw_tcp_client_t){.host = (host_), .port = (port_)})

typedef struct aw_tcp_listener { /* private; public for stack storage */
    aw_listener_t listener;
    const char *host;
    int port;
    const aw_listen_opts_t *opts;
} aw_tcp_listener_t;
extern AW_API const aw_cm_type_t aw_tcp_listener_type;
#define aw_tcp_listener(host_, port_, opts_) \
    aw_cm(&aw_tcp_listener_type, &(aw_tcp_listener_t){.host = (host_), .port = (port_), .opts = (opts_)})

#endif
