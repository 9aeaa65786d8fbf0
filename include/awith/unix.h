/* awith/unix.h: Unix domain stream sockets, with the TCP API
 * (awith/tcp.h): the same streams, listeners and servers. */
#ifndef AWITH_UNIX_H
#define AWITH_UNIX_H

#include <awith/listener.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Connect to the socket at `path` and adopt it into *s. A cancellation
 * point. -ENOENT, -ECONNREFUSED, -ENAMETOOLONG, -EMFILE, -ECANCELED. */
AW_API int aw_unix_connect(aw_stream_t *s, const char *path);

/* Listen at `path` (which must not exist: -EADDRINUSE; closing the
 * listener unlinks it, unless the path names another socket by then: a
 * newer server that replaced it keeps its own, as asyncio's does).
 * Never suspends. */
AW_API int aw_unix_listen(aw_listener_t *l, const char *path, const aw_listen_opts_t *opts);

/* A manager connected to the Unix socket at path: enter connects (a
 * cancellation point; fails as aw_unix_connect), the block gets the
 * stream, exit closes it. */
typedef struct aw_unix_client {  /* private; public for stack storage */
    aw_stream_t stream;
    const char *path;
} aw_unix_client_t;
extern AW_API const aw_cm_type_t aw_unix_client_type;
#define aw_unix_client(path_) aw_cm_temp(&aw_unix_client_type, (aw_unix_client_t){.path = (path_)})

/* A manager listening on the Unix socket at path: enter binds and
 * listens (as aw_unix_listen), the block gets the listener, exit closes it
 * and unlinks the path. */
typedef struct aw_unix_listener { /* private; public for stack storage */
    aw_listener_t listener;
    const char *path;
    const aw_listen_opts_t *opts;
} aw_unix_listener_t;
extern AW_API const aw_cm_type_t aw_unix_listener_type;
#define aw_unix_listener(path_, opts_) \
    aw_cm_temp(&aw_unix_listener_type, (aw_unix_listener_t){.path = (path_), .opts = (opts_)})

#ifdef __cplusplus
}
#endif

#endif
