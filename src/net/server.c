/* server.c: accept loop + one handler task per connection in a group.
 *
 * The manager enters a task group from its own enter (like an exit stack
 * entry: an aw_with_t kept in the server) and spawns the accept loop into
 * it; exit cancels the group and leaves it, which waits for every handler.
 * The type is unshielded and may suppress a cancel, as the group's is:
 * the group's own exit manages the scopes (a shield pushed around it
 * would be popped out of order) and decides what its cancel leaves.
 *
 * A connection costs one small malloc (the stream the handler task owns,
 * since the task starts after the accept loop has moved on). */
#include "net.h"
#include "../core/core.h"

#include <awith/server.h>
#include <stdlib.h>
#include <string.h>

typedef struct aw__conn {
    aw_stream_t stream;
    aw_server_t *srv;
} aw__conn_t;

/* The first record of e's chain that is neither a cancel nor a timeout
 * a cancel outranked (decision 6): what a cancelled handler met besides
 * its cancel. NULL if nothing. */
static const aw_err_t *aw__server_beyond_cancel(const aw_err_t *e) {
    for (; e; e = e->context)
        if (e->code != -ECANCELED && !aw__err_outranked(e))
            return e;
    return NULL;
}

static int aw__server_conn(void *arg) {
    aw__conn_t *c = arg;
    aw_server_t *srv = c->srv;
    int rc = 0;
    /* The stream is closed as a with-exit (decision 2): shielded and
     * bounded by the exit grace, as the client managers' are. A bare
     * close would wait for room for a TLS close_notify for as long as
     * the client stalls (no deadline of the caller's applies here), or
     * give up at once in a handler the server cancelled. */
    aw_with (aw_stream_t *s, aw_stream_closing(&c->stream))
        rc = srv->fn(s, srv->arg);
    if (rc >= 0 && aw_status() < 0)
        rc = aw_status(); /* a return 0 whose with block's exit then failed (SEMANTICS K5) */
    aw__free(c);
    srv->active--;
    /* -ECANCELED is the server's own cancel only when one is marked on
     * this task: a handler that returns the -ECANCELED a read gave it in
     * a scope of its own that moved on was not cancelled by anyone, and
     * passing it up would fail the group and stop the server. Under the
     * server's cancel the handler may still have failed (its close over
     * the grace: that error leaves, the cancel in its context, M4). */
    bool own_cancel = rc == -ECANCELED && aw_cancel_pending();
    const aw_err_t *e = own_cancel ? aw__server_beyond_cancel(aw_err_current()) : aw_err_current();
    if (rc < 0 && (!own_cancel || e)) {
        srv->failed++;
        snprintf(srv->last_error, sizeof srv->last_error, "%s",
                 e ? e->msg : aw_strerror(rc));
        aw_err_clear(); /* counted, not propagated: one bad client does not stop the server */
        return 0;
    }
    return rc < 0 ? rc : 0;
}

/* A transient accept failure (no fd, no memory): the loop backs off 10 ms
 * and retries for as long as it lasts, as asyncio and Trio do, since
 * what is short now (fds, memory) usually comes back when connections
 * close. Not silently: the first failure of an episode is logged, with
 * what failed and that the server retries, and so is the end of the
 * episode; the failures between are only counted (accept_errors), so
 * that a long shortage does not flood the log. */
static int aw__server_backoff(aw_server_t *srv, size_t *failing, int code, const char *what) {
    srv->accept_errors++;
    if ((*failing)++ == 0)
        aw__log(aw_loop_current(),
                "server on %s: %s (%s): retrying every 10 ms until it succeeds; the "
                "connections waiting are not answered meanwhile\n",
                srv->listener->name, what, aw_err_name(code));
    aw_err_clear();
    return aw_sleep(AW_MS(10));
}

static int aw__server_loop(aw_server_t *srv, aw_group_t *g) {
    size_t failing = 0; /* transient failures in a row (see aw__server_backoff) */
    for (;;) {
        aw__conn_t *c = aw__malloc(sizeof *c);
        if (!c) {
            int rc = aw__server_backoff(srv, &failing, -ENOMEM,
                                        "no memory for a connection");
            if (rc < 0)
                return rc;
            continue;
        }
        int rc = aw_listener_accept(srv->listener, &c->stream);
        if (rc < 0) {
            aw__free(c);
            if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
                const aw_err_t *e = aw_err_current();
                char what[160];
                snprintf(what, sizeof what, "%s", e && e->msg[0] ? e->msg : aw_strerror(rc));
                if ((rc = aw__server_backoff(srv, &failing, rc, what)) < 0)
                    return rc;
                continue;
            }
            return rc;
        }
        if (failing) {
            aw__log(aw_loop_current(), "server on %s: accepting again, after %zu failed "
                    "attempts\n", srv->listener->name, failing);
            failing = 0;
        }
        srv->accepted++;
        srv->active++;
        c->srv = srv;
        if ((rc = aw_spawn(g, aw__server_conn, c, NULL)) < 0) {
            srv->active--;
            aw_stream_close(&c->stream);
            aw__free(c);
            srv->accept_errors++;
            aw_err_clear();
        }
    }
}

static int aw__server_accept_task(void *arg) {
    aw_server_t *srv = arg;
    return aw__server_loop(srv, &srv->group);
}

int aw_server_serve(aw_listener_t *l, aw_server_fn fn, void *arg) {
    aw_server_t srv = {.listener = l, .fn = fn, .arg = arg};
    aw_with (aw_group_t *g, aw_group())
        aw__server_loop(&srv, g);
    return aw_status();
}

static int aw__server_enter(void *self, void **out) {
    aw_server_t *srv = self;
    if (!srv->listener || srv->listener->fd < 0 || !srv->fn)
        return aw_raise(-EINVAL, "server: no listener or no handler");
    memset(&srv->group, 0, sizeof srv->group);
    srv->gw = aw__with_init(aw_group(), __FILE__, __LINE__);
    srv->gw.cm.self = &srv->group; /* the compound literal above is gone: use ours */
    if (!aw__with_enter(&srv->gw))
        return aw_status() ? aw_status() : -EPERM;
    srv->gw.once = 0; /* not a block left by return: no K5 mark */
    int rc = aw_spawn(&srv->group, aw__server_accept_task, srv, NULL);
    if (rc < 0) {
        aw__with_cleanup(&srv->gw);
        return rc;
    }
    *out = srv;
    return 0;
}

static int aw__server_exit(void *self, const aw_err_t *err) {
    (void)err;
    aw_server_t *srv = self;
    const aw_err_t *before = aw_err_current();
    aw_group_cancel(&srv->group);
    aw__with_cleanup(&srv->gw);
    const aw_err_t *after = aw_err_current();
    return after && after != before ? after->code : 0;
}

const aw_cm_type_t aw_server_type = {
    .name = "server",
    .enter = aw__server_enter,
    .exit = aw__server_exit,
    /* The exit is the group's (SEMANTICS M4): the body's -ECANCELED may be
     * the group's own cancel, after an accept error; the group absorbs
     * it and raises that error, which must leave the block in its place.
     * An outer cancel still leaves as -ECANCELED: the group re-raises it. */
    .flags = AW_CM_UNSHIELDED | AW_CM_SUPPRESS_CANCEL,
};
