/* trace.c: the per-loop trace hook (awith/trace.h). The runtime tests
 * l->tracing, a copy of "the hook is set" kept beside the loop's clock,
 * at each event site (AW__TRACE in core.h) and calls aw__trace_emit only
 * when a hook is set. The hook is per loop (a loop's core is its own), so
 * the flag is exact for every task and side coroutine of the loop. */
#include "../core/core.h"

int aw_trace_set(aw_trace_fn fn, void *arg) {
    aw_loop_t *l = aw__loop_tls;
    if (!l)
        return -EPERM;
    l->core->trace = NULL; /* never a hook with another's argument */
    l->core->trace_arg = arg;
    l->core->trace = fn;
    l->tracing = fn != NULL;
    return 0;
}

void aw__trace_emit(aw_task_t *t, int kind, const aw_with_t *w, int rc) {
    struct aw__core *c = t->loop->core;
    /* A block decides once, before its enter (or exit), that it is traced;
     * a hook removed by that enter (or exit) leaves nothing to call for
     * the event after it: the block's next phase sees no hook (trace.h). */
    if (!c->trace)
        return;
    aw_trace_event_t ev = {
        .kind = (aw_trace_kind_t)kind,
        .task = t,
        .block = w,
        .manager = w && w->cm.type ? aw_cm_name(w->cm) : NULL,
        .file = w ? w->file : NULL,
        .line = w ? w->line : 0,
        .rc = rc,
        .now = aw_now(), /* the loop's cached time is only refreshed by timer rounds */
    };
    c->trace(&ev, c->trace_arg);
}

const char *aw_trace_kind_name(aw_trace_kind_t k) {
    static const char *const names[] = {"enter", "entered", "exit", "exited",
                                        "point", "suspend", "resume"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}
