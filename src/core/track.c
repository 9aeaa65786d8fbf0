/* track.c: the registry of open resources (awith/track.h). One list per
 * loop; a record is malloc'd by the registry, not embedded in the
 * resource, so that reporting a resource whose memory is gone (a stream
 * on the stack of a task that returned without closing it) reads only
 * the registry's own memory. Loops get ids that are never reused, so a
 * handle closed after its loop is gone (the record freed with the report)
 * is recognised and ignored without touching the record. Cost: a malloc
 * and O(1) list operations per open and close; nothing per I/O. */
#include <awith/track.h>

#include "core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>

struct aw__track_rec {
    const char *kind;
    char name[96];
    char task[32];
    const char *file;             /* the manager's aw_with, or the task's spawn site */
    int line;
    int in_with;                  /* 1: entering that aw_with, 2: inside its block,
                                     3: in the generator made there */
    struct aw__track_rec *prev, *next;
};

/* The one process-wide value: loop ids, handed out once each. */
static _Atomic uint64_t aw__track_ids;

static uint64_t aw__track_loop(struct aw__core *c) {
    if (!c->track_id)
        c->track_id = atomic_fetch_add(&aw__track_ids, 1) + 1;
    return c->track_id;
}

int aw_track_open(aw_track_t *t, const char *kind, const char *fmt, ...) {
    t->rec = NULL;
    t->loop = 0;
    aw_loop_t *l = aw__loop_tls;
    if (!l || !l->core)
        return -EPERM;
    struct aw__track_rec *r = aw__calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->name, sizeof r->name, fmt, ap);
    va_end(ap);
    aw_task_t *cur = aw__task_cur(), *self = aw_task_self();
    snprintf(r->task, sizeof r->task, "%s", self ? self->name : "(loop)");
    aw_with_t *w = cur ? cur->withs : NULL;
    if (w) { /* opened by a manager's enter, or in a block: the nearest site */
        r->file = w->file, r->line = w->line, r->in_with = w->state == AW__WITH_ENTER ? 1 : 2;
    } else if (cur && cur != self) {
        /* an async generator's code, in no block of its own: where it
         * was made (its aw_gen), not its consumer's spawn site */
        r->file = cur->file, r->line = cur->line, r->in_with = 3;
    } else if (self && self != l->core->main) {
        r->file = self->file, r->line = self->line;
    } /* the main task's spawn site is aw_main's, in the library: none is
       * better than a wrong one (SEMANTICS M9) */
    struct aw__core *c = l->core;
    r->next = c->tracked;
    if (c->tracked)
        c->tracked->prev = r;
    c->tracked = r;
    t->rec = r;
    t->loop = aw__track_loop(c);
    return 0;
}

void aw_track_close(aw_track_t *t) {
    struct aw__track_rec *r = t->rec;
    t->rec = NULL;
    aw_loop_t *l = aw__loop_tls;
    if (!r || !l || !l->core || l->core->track_id != t->loop)
        return; /* untracked, or its loop closed and freed the record */
    struct aw__core *c = l->core;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->tracked = r->next;
    if (r->next)
        r->next->prev = r->prev;
    aw__free(r);
}

size_t aw__track_report(aw_loop_t *l) {
    struct aw__core *c = l->core;
    size_t n = 0;
    static const char *const where[] = {"spawned at", "entering the aw_with at",
                                        "inside the aw_with at", "in the generator made at"};
    for (struct aw__track_rec *r = c->tracked, *next; r; r = next, n++) {
        next = r->next;
        if (r->file)
            aw__log(l, "awith: %s '%s' was never closed (opened by task '%s', %s %s:%d)\n",
                    r->kind, r->name, r->task, where[r->in_with], r->file, r->line);
        else
            aw__log(l, "awith: %s '%s' was never closed (opened by task '%s', outside any "
                       "aw_with)\n", r->kind, r->name, r->task);
        aw__free(r);
    }
    c->tracked = NULL;
    c->track_id = 0; /* handles still out are now stale: never this id again */
    return n;
}
