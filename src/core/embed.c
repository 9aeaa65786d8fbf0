/* embed.c: a loop inside another program's event loop (awith/loop.h,
 * "embedding"). The loop is aw_main's (main.c's aw__rt_*: the same start,
 * shutdown and reports); only who drives the rounds differs: the host
 * calls aw_loop_run_once, a round that never blocks (loop.c's
 * aw__loop_step), and sleeps in its own poll on the epoll fd for at most
 * aw_loop_next_timeout. */
#include "core.h"

static aw__rt_t *aw__embed_rt(const aw_loop_t *l) { return (aw__rt_t *)l; }

/* May the caller drive l? Its own thread, outside its tasks. */
static bool aw__embed_ok(const aw_loop_t *l) {
    return l && aw__loop_tls == l && l->cur == &l->main;
}

/* Running: until the main task is done (as aw_main); shutting down
 * (aw_loop_cancel): until every task is. */
static int aw__embed_done(aw_loop_t *l) {
    struct aw__core *c = l->core;
    if (c->root.state == AW__GROUP_DRAINING || !c->main)
        return c->ntasks == 0;
    return c->main->state == AW__T_DONE;
}

int aw_loop_new(const aw_loop_opts_t *opts, aw_loop_t **out) {
    aw__rt_t *rt;
    int rc = aw__rt_open(opts, "aw_loop_new", &rt);
    if (rc < 0)
        return rc;
    *out = &rt->loop;
    return 0;
}

int aw_loop_start(aw_loop_t *l, aw_task_fn fn, void *arg) {
    if (!aw__embed_ok(l))
        return -EPERM;
    if (l->core->main)
        return -EBUSY;
    return aw__rt_start(aw__embed_rt(l), fn, arg);
}

int aw_loop_backend_fd(const aw_loop_t *l) { return l ? l->epfd : -EINVAL; }

aw_ns_t aw_loop_next_timeout(aw_loop_t *l) {
    if (!aw__embed_ok(l))
        return 0; /* a step will say what is wrong */
    return aw__embed_done(l) ? 0 : aw__loop_timeout(l);
}

int aw_loop_run_once(aw_loop_t *l) {
    if (!aw__embed_ok(l))
        return -EPERM;
    int rc = aw__loop_step(l, aw__embed_done);
    if (rc < 0)
        aw__embed_rt(l)->stopped = rc; /* the close reports a deadlock */
    return rc;
}

void aw_loop_cancel(aw_loop_t *l) {
    if (aw__embed_ok(l))
        aw__rt_cancel(aw__embed_rt(l));
}

int aw_loop_close(aw_loop_t *l) {
    if (!aw__embed_ok(l))
        return -EPERM;
    return aw__rt_close(aw__embed_rt(l), 0);
}
