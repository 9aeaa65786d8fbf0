/* awith/server.h: a server: accept connections on a listener and run a
 * handler task per connection, all inside a task group.
 *
 *   static int echo(aw_stream_t *s, void *arg) { ... return 0; }
 *
 *   aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
 *   aw_with (aw_server_t *srv, aw_server(l, echo, NULL)) {
 *       ... the server runs while the block runs ...
 *   }   // stopped accepting, handlers cancelled and awaited
 *
 * Each handler runs in its own task with the connection's stream, which
 * is closed when the handler returns (whatever it returns), as a with
 * block's exit: shielded, within the exit grace (a TLS close_notify to a
 * client that stopped reading waits no longer; the overrun is then the
 * handler's failure). A handler's
 * failure does not stop the server: it is counted in `failed` and its
 * message kept in `last_error` (asyncio logs it). Accept running out of
 * fds (-EMFILE) pauses accepting for 10 ms and retries; any other accept
 * error fails the server's group, which cancels the block. */
#ifndef AWITH_SERVER_H
#define AWITH_SERVER_H

#include <awith/group.h>
#include <awith/listener.h>
#include <awith/with.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*aw_server_fn)(aw_stream_t *s, void *arg);

typedef struct aw_server {       /* private except the counters */
    aw_listener_t *listener;
    aw_server_fn fn;
    void *arg;
    size_t accepted;             /* connections accepted */
    size_t active;               /* connections accepted and not closed yet */
    size_t failed;               /* handlers that returned an error */
    size_t accept_errors;        /* transient accept failures (-EMFILE ...) */
    char last_error[160];        /* the last handler failure's message */
    aw_group_t group;
    aw_with_t gw;                /* the group's block */
} aw_server_t;

extern AW_API const aw_cm_type_t aw_server_type;
#define aw_server(l_, fn_, arg_) \
    aw_cm_temp(&aw_server_type, (aw_server_t){.listener = (l_), .fn = (fn_), .arg = (arg_)})

/* Serve in the calling task until cancelled: accept and spawn handlers
 * into a group of its own. Returns -ECANCELED (after every handler ended)
 * or the accept error that stopped it. No counters: a handler's failure
 * is dropped (use aw_server to see them). */
AW_API int aw_server_serve(aw_listener_t *l, aw_server_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
