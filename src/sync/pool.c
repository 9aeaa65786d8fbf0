/* pool.c: a generic resource pool.
 *
 * Items live in entries on two lists: idle (most recently used first, so
 * the oldest idle ones sit at the tail, where max_idle trims) and busy.
 * Items being opened are only counted (`opening`), which makes
 * size = idle + busy + opening the number the limit bounds.
 *
 * Waiters queue FIFO, each with its own event. A release hands the entry
 * to the first waiter directly (grant: entry); an item closed while tasks
 * wait gives the first of them the right to open a new one (grant: slot,
 * counted in `opening` at once). A waiter that was granted something but
 * was cancelled or timed out before running passes it on, so no grant is
 * ever lost and the limit never exceeded (K6). Every suspension point of
 * acquire (wait, open, check) undoes its own step on failure: enter is
 * atomic with respect to cancellation (decision 7). */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/track.h>
#include <awith/event.h>
#include <awith/pool.h>

#include "../core/core.h" /* the list facility, aw__task_self */
#include "../core/list.h"

#include <stdlib.h>
#include <string.h>

typedef struct aw__pent aw__pent_t;
struct aw__pent {
    aw__link_t link;           /* on idle or busy */
    void *item;
    aw_ns_t created, used;
    const char *file;          /* where it was acquired */
    int line;
    const char *task;
    aw_pool_use_t *use;        /* the aw_pool_item block holding it; NULL: by hand */
};

typedef struct { aw__list_t l; int n; } aw__plist_t;

enum { GOT_NONE, GOT_ENTRY, GOT_SLOT, GOT_CLOSED };

typedef struct aw__pwait aw__pwait_t;
struct aw__pwait {
    aw__link_t link;           /* on the pool's wq */
    aw_event_t ev;
    int got;
    aw__pent_t *e;
};

struct aw_pool {
    aw_track_t track;          /* reported at loop close if never closed */
    const aw_pool_ops_t *ops;
    void *ctx;
    aw_pool_opts_t o;
    aw__plist_t idle, busy;
    int opening;
    int acquiring;             /* tasks inside aw_pool_acquire: keep p alive */
    struct { aw__list_t l; int n; } wq; /* aw__pwait_t, FIFO */
    bool closed, orphaned;
    aw_event_t drained;        /* closed and nothing out any more */
    aw_pool_stats_t st;
};

static aw__pent_t *pent(aw__link_t *n) { return n ? aw__container(n, aw__pent_t, link) : NULL; }

static void pl_push(aw__plist_t *l, aw__pent_t *e) { /* at the head */
    aw__list_push_front(&l->l, &e->link);
    l->n++;
}
static void pl_del(aw__plist_t *l, aw__pent_t *e) {
    aw__list_remove(&l->l, &e->link);
    l->n--;
}

static void wq_del(aw_pool_t *p, aw__pwait_t *w) {
    aw__list_remove(&p->wq.l, &w->link);
    p->wq.n--;
}
static aw__pwait_t *wq_pop(aw_pool_t *p) {
    aw__link_t *n = aw__list_pop_front(&p->wq.l);
    if (!n)
        return NULL;
    p->wq.n--;
    return aw__container(n, aw__pwait_t, link);
}

static int size(const aw_pool_t *p) { return p->idle.n + p->busy.n + p->opening; }

static const char *pname(const aw_pool_t *p) { return p->ops->name ? p->ops->name : "pool"; }

static void pool_free(aw_pool_t *p) {
    aw_track_close(&p->track); /* an orphan's items are all back (M9) */
    aw__free(p);
}

/* Nothing out any more after close: wake the closer, or free an orphan
 * (once no acquire still runs: a waiter told of the close, or one undoing
 * its step, reads p after this). */
static void drained_check(aw_pool_t *p) {
    if (!p->closed || p->busy.n || p->opening)
        return;
    if (p->orphaned) {
        if (!p->acquiring)
            pool_free(p);
    } else
        aw_event_set(&p->drained);
}

/* A free slot (an item was closed, or an open failed): the first waiter
 * may open a new item. */
static void give_slot(aw_pool_t *p) {
    if (p->closed || size(p) >= p->o.max)
        return;
    aw__pwait_t *w = wq_pop(p);
    if (!w)
        return;
    w->got = GOT_SLOT;
    p->opening++;
    aw_event_set(&w->ev);
}

/* Close an entry's item; the entry must be on no list. */
static void destroy(aw_pool_t *p, aw__pent_t *e) {
    p->ops->close(p->ctx, e->item);
    aw__free(e);
    p->st.destroyed++;
}

/* An entry taken off the busy list comes free: to the first waiter, or
 * idle (or closed, when the pool is). */
/* `used`: when the item was last known good (now, after a release; its
 * old time when an acquire is undone, so its health check stays due). */
static void give_entry(aw_pool_t *p, aw__pent_t *e, aw_ns_t used) {
    if (p->closed) {
        destroy(p, e);
        drained_check(p);
        return;
    }
    aw__pwait_t *w = wq_pop(p);
    if (w) {
        w->got = GOT_ENTRY;
        w->e = e;
        pl_push(&p->busy, e);
        aw_event_set(&w->ev);
        return;
    }
    e->used = used;
    pl_push(&p->idle, e);
}

static bool too_old(const aw_pool_t *p, const aw__pent_t *e, aw_ns_t now) {
    return p->o.max_lifetime > 0 && now - e->created >= p->o.max_lifetime;
}

/* Close idle items past max_idle (beyond min) or max_lifetime. O(idle),
 * and nothing at all (no clock read) when neither limit is set. */
static void trim(aw_pool_t *p) {
    if (p->o.max_idle <= 0 && p->o.max_lifetime <= 0)
        return;
    aw_ns_t now = aw_now();
    aw__list_each_back_safe(&p->idle.l, n) {
        aw__pent_t *e = pent(n);
        bool stale = p->o.max_idle > 0 && now - e->used >= p->o.max_idle && size(p) > p->o.min;
        if (stale || too_old(p, e, now)) {
            pl_del(&p->idle, e);
            destroy(p, e);
            give_slot(p);
        }
    }
}

static aw__pent_t *mark(aw__pent_t *e, const char *file, int line) {
    e->file = file;
    e->line = line;
    e->use = NULL;
    aw_task_t *t = aw__task_self();
    e->task = t ? aw_task_name(t) : "?";
    return e;
}

/* Open a new item in a slot already counted in `opening`. */
static int open_item(aw_pool_t *p, aw__pent_t **out) {
    aw__pent_t *e = aw__calloc(1, sizeof *e);
    int rc = e ? p->ops->open(p->ctx, &e->item)
               : aw_raise(-ENOMEM, "%s: out of memory", pname(p));
    p->opening--;
    if (rc < 0) {
        aw__free(e);
        give_slot(p);
        drained_check(p);
        return rc;
    }
    p->st.created++;
    e->created = e->used = aw_now();
    if (p->closed) {
        const char *name = pname(p);
        destroy(p, e);
        drained_check(p); /* may free p */
        return aw_raise(-ESHUTDOWN, "%s: closed while an item was being opened", name);
    }
    pl_push(&p->busy, e);
    *out = e;
    return 0;
}

/* An item that will not be used again: closed, its slot given on, and a
 * closing pool told when nothing is left out. */
static void drop(aw_pool_t *p, aw__pent_t *e) {
    destroy(p, e);
    give_slot(p);
    drained_check(p);
}

/* The health check of an entry just taken (on the busy list), when it
 * is due. 0: use it. -ECANCELED: the acquire is undone, the entry given
 * on (or closed if no longer good). 1: it failed the check and is off
 * the busy list, for the caller to close. */
static int check_entry(aw_pool_t *p, aw__pent_t *e) {
    if (!p->ops->check || aw_now() - e->used < p->o.check_idle)
        return 0;
    /* a callback's failure is the pool's business: aw_err_restore
     * drops only what it raised (not the error a block leaves with) */
    uint64_t before = aw_err_mark();
    int rc = p->ops->check(p->ctx, e->item);
    if (rc == 0)
        return 0;
    pl_del(&p->busy, e);
    if (rc == -ECANCELED) { /* undo: back where it was, if still good */
        if (!p->ops->usable || p->ops->usable(p->ctx, e->item)) {
            give_entry(p, e, e->used); /* not checked: still due */
        } else {
            drop(p, e);
        }
        return rc;
    }
    p->st.check_failures++;
    aw_err_restore(before);
    return 1;
}

/* An entry that failed its check while the pool was closed: drop may
 * free p. */
static int closed_in_check(aw_pool_t *p, aw__pent_t *e) {
    int rc = aw_raise(-ESHUTDOWN, "%s: closed while an item was being checked", pname(p));
    drop(p, e);
    return rc;
}

static int acquire(aw_pool_t *p, aw__pent_t **out) {
    for (;;) {
        if (p->closed)
            return aw_raise(-ESHUTDOWN, "%s: acquire from a closed pool", pname(p));
        trim(p);
        if (p->idle.n && !p->wq.n) {
            aw__pent_t *e = pent(p->idle.l.head);
            pl_del(&p->idle, e);
            pl_push(&p->busy, e);
            int rc = check_entry(p, e);
            if (rc <= 0) {
                if (rc == 0)
                    *out = e;
                return rc;
            }
            if (p->closed)
                return closed_in_check(p, e);
            drop(p, e);
            continue;
        }
        if (size(p) < p->o.max && !p->wq.n) {
            p->opening++;
            return open_item(p, out);
        }
        /* wait for a grant */
        aw__pwait_t w = {{NULL, NULL}, AW_EVENT_INIT, GOT_NONE, NULL};
        aw__list_push_back(&p->wq.l, &w.link);
        p->wq.n++;
        int rc = aw_event_wait(&w.ev);
        if (w.got == GOT_NONE)
            wq_del(p, &w);
        switch (w.got) {
        case GOT_ENTRY:
            if (rc < 0) { /* woken, then cancelled: pass it on */
                pl_del(&p->busy, w.e);
                give_entry(p, w.e, aw_now());
                return rc;
            }
            /* checked as one taken from idle: a release hands over an
             * item that may still be settling (a connection cut
             * mid-query), or whose settle failed (K2) */
            if ((rc = check_entry(p, w.e)) <= 0) {
                if (rc == 0)
                    *out = w.e;
                return rc;
            }
            if (p->closed)
                return closed_in_check(p, w.e);
            destroy(p, w.e); /* a new item in its slot, which was given to us */
            p->opening++;
            return open_item(p, out);
        case GOT_SLOT:
            if (rc < 0) {
                p->opening--;
                give_slot(p);
                drained_check(p);
                return rc;
            }
            return open_item(p, out);
        case GOT_CLOSED:
            return aw_raise(-ESHUTDOWN, "%s: closed while waiting for an item", pname(p));
        default:
            if (rc < 0)
                return rc;
        }
    }
}

static int timed_out(aw_pool_t *p) {
    p->st.timeouts++;
    const aw__pent_t *e = pent(p->busy.l.head);
    if (p->busy.n < p->o.max)
        return aw_raise(-ETIMEDOUT, "%s: no item within the deadline (opening one took too long)", pname(p));
    return aw_raise(-ETIMEDOUT, "%s exhausted: all %d items in use (%d waiting)%s%s:%d by task %s",
                    pname(p), p->o.max, p->wq.n, e ? "; the latest acquired at " : "",
                    e ? e->file : "", e ? e->line : 0, e ? e->task : "");
}

static int acquire_entry(aw_pool_t *p, aw__pent_t **out, aw_ns_t deadline, const char *file, int line) {
    *out = NULL;
    int rc = aw_checkpoint(); /* a cancellation point even when an item is free */
    if (rc < 0)
        return rc;
    aw__pent_t *e = NULL;
    p->acquiring++; /* a close meanwhile frees p only once we are out */
    if (deadline == AW_NEVER) {
        rc = acquire(p, &e);
    } else {
        bool expired = false;
        rc = -ECANCELED;
        aw_with (aw_scope_t *s, aw_move_on_at(deadline)) {
            rc = acquire(p, &e);
            expired = aw_scope_expired(s);
        }
        if (rc == -ECANCELED && expired && !aw_cancel_pending())
            rc = timed_out(p);
    }
    p->acquiring--;
    if (rc < 0) {
        drained_check(p); /* closed meanwhile: the last one out frees it */
        return rc;
    }
    p->st.acquired++;
    *out = mark(e, file, line);
    return 0;
}

int aw__pool_acquire(aw_pool_t *p, void **item, aw_ns_t deadline, const char *file, int line) {
    aw__pent_t *e;
    int rc = acquire_entry(p, &e, deadline, file, line);
    *item = rc < 0 ? NULL : e->item;
    return rc;
}

/* The entry leaves the busy list: a block that held it has nothing left
 * to give back, so its exit cannot release the item a second time, nor a
 * new item that came to have the same address (K2, K6). */
static void unhold(aw__pent_t *e) {
    if (e->use) {
        e->use->item = NULL;
        e->use = NULL;
    }
}

/* Linear, but the busy list is at most `max` long and the latest acquired
 * sits at its head, which is where a block's release usually finds it. */
static aw__pent_t *find_busy(aw_pool_t *p, void *item) {
    aw__list_each(&p->busy.l, n)
        if (pent(n)->item == item)
            return pent(n);
    return NULL;
}

int aw_pool_release(aw_pool_t *p, void *item) {
    aw__pent_t *e = find_busy(p, item);
    if (!e)
        return aw_raise(-EINVAL, "%s: release of an item that is not in use from this pool", pname(p));
    unhold(e);
    if (!p->closed && p->ops->usable && !p->ops->usable(p->ctx, item)) {
        pl_del(&p->busy, e);
        drop(p, e);
        return 0;
    }
    aw_ns_t now = aw_now(); /* one clock read: age, and when it was last used */
    if (!p->closed && p->ops->reset && !too_old(p, e, now)) {
        uint64_t before = aw_err_mark();
        int rc = p->ops->reset(p->ctx, item); /* still counted busy meanwhile */
        if (rc < 0) {
            p->st.reset_failures++;
            aw_err_restore(before);
            pl_del(&p->busy, e);
            drop(p, e);
            return 0;
        }
    }
    pl_del(&p->busy, e);
    if (p->closed) {
        give_entry(p, e, now); /* closes it; may free an orphaned pool */
        return 0;
    }
    if (too_old(p, e, now)) {
        drop(p, e);
        return 0;
    }
    give_entry(p, e, now);
    trim(p);
    return 0;
}

int aw_pool_discard(aw_pool_t *p, void *item) {
    aw__pent_t *e = find_busy(p, item);
    if (!e)
        return aw_raise(-EINVAL, "%s: discard of an item that is not in use from this pool", pname(p));
    unhold(e);
    pl_del(&p->busy, e);
    drop(p, e);
    return 0;
}

int aw_pool_open(aw_pool_t **out, const aw_pool_ops_t *ops, void *ctx, const aw_pool_opts_t *opts) {
    *out = NULL;
    aw_pool_opts_t o = opts ? *opts : (aw_pool_opts_t){0};
    if (o.max <= 0)
        o.max = 10;
    if (!ops || !ops->open || !ops->close || o.min < 0 || o.min > o.max)
        return aw_raise(-EINVAL, "pool: open/close callbacks and 0 <= min <= max are required");
    aw_pool_t *p = aw__calloc(1, sizeof *p);
    if (!p)
        return aw_raise(-ENOMEM, "pool: out of memory");
    p->ops = ops;
    p->ctx = ctx;
    p->o = o;
    for (int i = 0; i < o.min; i++) {
        aw__pent_t *e;
        p->opening++;
        int rc = open_item(p, &e);
        if (rc < 0) {
            p->closed = true; /* the items opened so far wait in idle */
            while (p->idle.n) {
                e = pent(p->idle.l.head);
                pl_del(&p->idle, e);
                destroy(p, e);
            }
            aw__free(p);
            return rc;
        }
        pl_del(&p->busy, e);
        pl_push(&p->idle, e);
    }
    aw_track_open(&p->track, "pool", "%s", pname(p)); /* -ENOMEM: untracked */
    *out = p;
    return 0;
}

int aw_pool_close(aw_pool_t *p, aw_ns_t grace) {
    if (!p)
        return 0;
    if (p->closed)
        return aw_raise(-EINVAL, "%s: closed twice", pname(p));
    p->closed = true;
    aw_track_close(&p->track);
    for (aw__pwait_t *w; (w = wq_pop(p));) {
        w->got = GOT_CLOSED;
        aw_event_set(&w->ev);
    }
    while (p->idle.n) {
        aw__pent_t *e = pent(p->idle.l.head);
        pl_del(&p->idle, e);
        destroy(p, e);
    }
    if (p->busy.n || p->opening) {
        aw_with (aw_shield(grace)) {
            while ((p->busy.n || p->opening) && aw_event_wait(&p->drained) == 0)
                ;
        }
    }
    if (p->busy.n || p->opening) {
        char list[1024];
        size_t n = 0;
        list[0] = 0;
        aw__list_each(&p->busy.l, node) {
            const aw__pent_t *e = pent(node);
            if (n >= sizeof list - 100)
                break;
            n += snprintf(list + n, sizeof list - n, "; one acquired at %s:%d by task %s",
                          e->file ? e->file : "?", e->line, e->task ? e->task : "?");
        }
        int out = p->busy.n, opening = p->opening;
        p->orphaned = true; /* freed by the last release */
        /* until then its items are open resources like any other: one
         * never given back is reported at loop close (SEMANTICS M9) */
        const aw__pent_t *first = pent(p->busy.l.head);
        aw_track_open(&p->track, "pool", "%s: %d item(s) not given back after close, one "
                      "taken at %s:%d", pname(p), out, first && first->file ? first->file : "?",
                      first ? first->line : 0);
        return aw_raise(-EBUSY, "%s closed with %d item(s) still in use and %d being opened%s", pname(p),
                        out, opening, list);
    }
    if (p->acquiring) { /* waiters told -ESHUTDOWN have yet to run */
        p->orphaned = true;
        return 0;
    }
    pool_free(p);
    return 0;
}

void aw_pool_stats(const aw_pool_t *p, aw_pool_stats_t *out) {
    *out = p->st;
    out->idle = p->idle.n;
    out->in_use = p->busy.n;
    out->opening = p->opening;
    out->waiters = p->wq.n;
    out->size = size(p);
}

static int use_enter(void *self, void **out) {
    aw_pool_use_t *u = self;
    /* Entered again inside its own block: a second item in the same
     * record would orphan the first (the inner exit clears the record,
     * so the outer exit would give nothing back). After its block the
     * record is clear and it may be entered anew (SEMANTICS A17). */
    if (__builtin_expect(u->item != NULL, 0))
        return aw_raise(-EBUSY, "this pool item block (pool '%s', %s:%d) is already entered: "
                        "each block needs its own aw_pool_item()", pname(u->pool),
                        u->file ? u->file : "?", u->line);
    aw_ns_t dl = u->timeout == AW_NEVER ? AW_NEVER : aw_now() + u->timeout;
    aw__pent_t *e;
    int rc = acquire_entry(u->pool, &e, dl, u->file, u->line);
    u->item = rc < 0 ? NULL : e->item;
    if (rc == 0)
        e->use = u; /* lives in the block until exit */
    *out = u->item;
    return rc;
}
static int use_exit(void *self, const aw_err_t *err) {
    aw_pool_use_t *u = self;
    if (!u->item) /* given back inside the block (aw_pool_discard, aw_pool_release) */
        return 0;
    return aw_pool_release(u->pool, u->item);
}
const aw_cm_type_t aw_pool_use_type = {"pool_item", use_enter, use_exit, 0, 0};
