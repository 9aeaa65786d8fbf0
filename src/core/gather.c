/* gather.c: the children's results on task groups (awith/gather.h). A
 * child is an ordinary group child whose task function is a trampoline:
 * it calls fn(arg, &slot->value) and writes the task's status (K5 and
 * M6 included) into the caller's slot before the task ends, so the group's
 * rules (cancel the rest on the first failure, collect the failures)
 * apply unchanged and every slot is filled by the time the group is left.
 * No malloc: the slot holds the call. */
#include "core.h"

#include <awith/gather.h>

static int aw__result_run(void *p) {
    aw_result_t *r = p;
    /* the status the task will end with, locks left held included (M6):
     * the slot must say what the group error says */
    int st = aw__task_end_status(aw__task_cur(), r->fn(r->arg, &r->value));
    r->status = st;
    return st;
}

int aw__spawn_result(aw_group_t *g, aw_result_fn fn, void *arg, aw_result_t *slot,
                     const char *name, const char *file, int line) {
    if (!slot)
        return aw_raise(-EINVAL, "aw_spawn_result of '%s': no result slot", name);
    slot->value = NULL;
    slot->fn = fn;
    slot->arg = arg;
    slot->name = name;
    if (!fn) {
        slot->status = -EINVAL;
        return aw_raise(-EINVAL, "aw_spawn_result at %s:%d: no function", file, line);
    }
    slot->status = -EINPROGRESS;
    int rc = aw__spawn(g, aw__result_run, slot, NULL, NULL, name, file, line);
    if (rc < 0)
        slot->status = rc;
    return rc;
}

int aw__gather(aw_result_t *r, size_t n, const char *file, int line) {
    if (!aw__task_cur())
        return aw__no_task("aw_gather"); /* it suspends: said and recorded as aw_sleep's */
    if (n && !r)
        return aw_raise(-EINVAL, "aw_gather at %s:%d: no result slots", file, line);
    for (size_t i = 0; i < n; i++) {
        r[i].status = -ECANCELED; /* not started (yet) */
        r[i].value = NULL;
    }
    /* What this call raised, not what was pending before it (an exit's
     * handed error, an earlier failure not handled yet): those are not
     * its children's, and every child may have succeeded. */
    uint64_t mark = aw_err_mark();
    aw_with (aw_group_t *g, aw_group()) {
        for (size_t i = 0; i < n; i++)
            if (aw__spawn_result(g, r[i].fn, r[i].arg, &r[i], r[i].name ? r[i].name : "gather",
                                 file, line) < 0)
                aw_leave(); /* the body failed: the group cancels the others */
    }
    return aw__status_since(mark);
}
