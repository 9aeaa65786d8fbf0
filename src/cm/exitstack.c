/* exitstack.c: each entry is an aw_with_t in a node; leaving runs
 * aw__with_cleanup on each, LIFO, with every entry's mark set to the
 * stack's, so each exit sees exactly what a nested block's exit would.
 *
 * Entries outlive the statement that made them, so a manager built in a
 * compound literal (aw_file(...), aw_gencm(...): cm.size > 0) is copied
 * into the node before it is entered: the literal dies at the end of its
 * C block, the copy when the stack unwinds. Nodes (and those copies) are
 * carved from byte slabs owned by the stack (room for 16 nodes, then
 * twice the last slab...), all given back once the stack is unwound; the
 * loop keeps a few first slabs for the next stacks, so a stack of 10
 * costs no malloc once the loop is warm. Slabs never move, so a pointer
 * that enter hands out into a copied state stays valid until the stack
 * exits. An entry of a borrowed state costs, besides with.c's enter and
 * exit, a bump of the current slab, four stores to prepare the record
 * and three to link the node (about 30 instructions in, 8 out); the
 * stack's first slab, taken from and given back to the loop, about 65
 * per use. */
#include <awith/exitstack.h>

#include "../core/core.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct aw__xs_node {
    aw_with_t w;
    aw__xs_node_t *next;
    int (*exit_fn)(void *, const aw_err_t *);
    int (*cb_fn)(void *);
    void *arg;
    alignas(max_align_t) unsigned char state[]; /* the copied manager state, if any */
};

struct aw__xs_slab {
    aw__xs_slab_t *next;
    size_t cap;                   /* bytes in mem */
    alignas(max_align_t) unsigned char mem[];
};

#define AW__XS_ALIGN(n) (((n) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))
/* A node with no state of its own (a borrowed manager, a callback). */
#define AW__XS_NODE AW__XS_ALIGN(sizeof(aw__xs_node_t))
/* The first slab: room for 16 entries with a small state each, enough for
 * most stacks; the loop keeps a few freed ones (core.h: spare), so a
 * stack that fits costs no malloc. */
#define AW__XS_FIRST (16 * AW__XS_ALIGN(sizeof(aw__xs_node_t) + 64))
enum { AW__XS_SPARE = 4 };

/* The loop's core, for its spare slabs; NULL outside a loop. */
static struct aw__core *aw__xs_core(void) {
    aw_loop_t *l = aw__loop_tls;
    return l ? l->core : NULL;
}

/* A new slab for at least `need` bytes, made current (st->bump..end);
 * the free end of the one it replaces is left unused. Once per stack
 * when it fits in the first slab (a spare of the loop's: no malloc). */
static bool aw__xs_grow(aw_exitstack_t *st, size_t need) {
    aw__xs_slab_t *s = st->slabs;
    size_t cap = s ? 2 * s->cap : AW__XS_FIRST;
    if (cap < need)
        cap = need;
    aw__xs_slab_t *n = NULL;
    struct aw__core *c = aw__xs_core();
    if (cap == AW__XS_FIRST && c && c->spare) { /* a first slab kept by the loop */
        n = c->spare;
        c->spare = n->next;
        c->nspare--;
    } else if (sizeof *n + cap < cap || !(n = aw__malloc(sizeof *n + cap))) {
        return false;
    }
    n->next = s;
    n->cap = cap;
    st->slabs = n;
    st->bump = n->mem;
    st->end = n->mem + cap;
    return true;
}

/* A node with `extra` bytes of state after it: a bump of the current
 * slab. No zero-fill: the with record is prepared field by field at push
 * (enter sets the rest), the callback fields only for callbacks. */
static inline aw__xs_node_t *aw__xs_alloc(aw_exitstack_t *st, size_t extra) {
    size_t need = AW__XS_ALIGN(sizeof(aw__xs_node_t) + extra);
    if (need < extra) /* overflow */
        return NULL;
    if (__builtin_expect((size_t)(st->end - st->bump) < need, 0) && !aw__xs_grow(st, need))
        return NULL;
    aw__xs_node_t *node = (aw__xs_node_t *)st->bump;
    st->bump += need;
    return node;
}

/* A node whose enter failed: give its bytes back if nothing came after. */
static void aw__xs_unalloc(aw_exitstack_t *st, aw__xs_node_t *n, size_t extra) {
    unsigned char *p = (unsigned char *)n;
    if (p + AW__XS_ALIGN(sizeof *n + extra) == st->bump)
        st->bump = p;
}

static void aw__xs_release(aw_exitstack_t *st) {
    struct aw__core *c = st->slabs ? aw__xs_core() : NULL;
    for (aw__xs_slab_t *s = st->slabs, *next; s; s = next) {
        next = s->next;
        if (c && s->cap == AW__XS_FIRST && c->nspare < AW__XS_SPARE) {
            s->next = c->spare;
            c->spare = s;
            c->nspare++;
        } else {
            aw__free(s);
        }
    }
    st->slabs = NULL;
    st->bump = st->end = NULL;
}

static int aw__xs_noop_enter(void *self, void **out) {
    *out = self;
    return 0;
}

static int aw__xs_exit_cb(void *self, const aw_err_t *err) {
    aw__xs_node_t *n = self;
    return n->exit_fn(n->arg, err);
}

static int aw__xs_plain_cb(void *self, const aw_err_t *err) {
    aw__xs_node_t *n = self;
    int rc = n->cb_fn(n->arg);
    return rc < 0 ? rc : 0; /* cannot suppress */
}

static const aw_cm_type_t aw__xs_exit_type = {"exit callback", aw__xs_noop_enter, aw__xs_exit_cb};
static const aw_cm_type_t aw__xs_plain_type = {"callback", aw__xs_noop_enter, aw__xs_plain_cb};

/* Enter failed: nothing is pushed, the node's bytes go back. */
static __attribute__((noinline, cold)) int aw__xs_push_failed(aw_exitstack_t *st, aw__xs_node_t *n,
                                                              size_t extra) {
    aw__xs_unalloc(st, n, extra);
    return aw_status() ? aw_status() : -EPERM;
}

/* Enter n's manager (prepared) and push it. Only st, n and out live
 * across enter: the failure path recomputes what it needs. */
static inline int aw__xs_push(aw_exitstack_t *st, aw__xs_node_t *n, size_t extra, void **out) {
    if (__builtin_expect(!aw__with_enter(&n->w), 0))
        return aw__xs_push_failed(st, n, extra);
    n->w.once = 0; /* never left by return: K5 is the block's business */
    if (out)
        *out = n->w.value;
    n->next = st->top;
    st->top = n;
    st->n++;
    return 0;
}

#ifndef NDEBUG
/* A borrowed state (cm.size == 0) that the task has entered and not yet
 * exited is being entered again: almost always a compound literal or a
 * loop variable whose storage was reused while the stack still points to
 * it (the next exit would run on the wrong object). Abort with both
 * sites rather than corrupt memory; types over shared objects (locks,
 * semaphores) opt out with AW_CM_SHARED. O(entries open in the task):
 * debug builds only. */
static void aw__xs_check_borrowed(aw_cm_t cm, const char *file, int line) {
    aw_task_t *t = aw__task_cur();
    if (cm.size || !cm.self || !t || !cm.type || (cm.type->flags & AW_CM_SHARED))
        return;
    for (const aw_with_t *w = t->withs; w; w = w->outer)
        if (w->cm.self == cm.self && w->cm.type == cm.type && w->state >= AW__WITH_ENTER &&
            w->state <= AW__WITH_EXIT) {
            aw__log(t->loop,
                    "awith: exit stack at %s:%d enters the state %p of manager '%s', which is\n"
                    "  still entered (at %s:%d): its storage was reused while the stack keeps\n"
                    "  it (a compound literal or a variable of a loop body?). Build the manager\n"
                    "  with aw_cm_temp() so that the stack copies it, or give each entry storage\n"
                    "  that lives until the stack exits (see awith/cm.h).\n",
                    file, line, cm.self, cm.type->name ? cm.type->name : "?", w->file, w->line);
            abort();
        }
}
#endif

static __attribute__((noinline, cold)) int aw__xs_no_memory(aw_cm_t cm) {
    return aw_raise(-ENOMEM, "exit stack: no memory for manager '%s'",
                    cm.type && cm.type->name ? cm.type->name : "?");
}

/* A manager built in a temporary (cm.size > 0): the entry owns a copy of
 * its state from now on. */
static __attribute__((noinline)) int aw__xs_enter_copy(aw_exitstack_t *st, aw_cm_t cm, void **out,
                                                       const char *file, int line) {
    aw__xs_node_t *n = aw__xs_alloc(st, cm.size);
    if (!n)
        return aw__xs_no_memory(cm);
    memcpy(n->state, cm.self, cm.size);
    cm.self = n->state;
    aw__with_prep(&n->w, cm, file, line);
    return aw__xs_push(st, n, cm.size, out);
}

/* A borrowed state that does not fit the current slab (the first entry
 * of a stack, usually): a new slab, then the common path. */
static __attribute__((noinline)) int aw__xs_enter_grow(aw_exitstack_t *st, const aw_cm_type_t *type,
                                                       void *self, void **out, const char *file,
                                                       int line) {
    if (!aw__xs_grow(st, AW__XS_NODE))
        return aw__xs_no_memory(aw_cm(type, self));
    return aw__exitstack_enter_ref(st, type, self, out, file, line);
}

/* The common case, a borrowed state that fits the current slab, costs a
 * bump, the with's enter and three stores to link the node; the rest is
 * out of line, so that only st, the node and out live across enter. */
int aw__exitstack_enter_ref(aw_exitstack_t *st, const aw_cm_type_t *type, void *self, void **out,
                            const char *file, int line) {
#ifndef NDEBUG
    aw__xs_check_borrowed(aw_cm(type, self), file, line);
#endif
    if (__builtin_expect((size_t)(st->end - st->bump) < AW__XS_NODE, 0))
        return aw__xs_enter_grow(st, type, self, out, file, line);
    aw__xs_node_t *n = (aw__xs_node_t *)st->bump;
    st->bump += AW__XS_NODE;
    aw__with_prep(&n->w, aw_cm(type, self), file, line);
    return aw__xs_push(st, n, 0, out);
}

int aw__exitstack_enter(aw_exitstack_t *st, aw_cm_t cm, void **out, const char *file, int line) {
    if (!cm.size)
        return aw__exitstack_enter_ref(st, cm.type, cm.self, out, file, line);
    return aw__xs_enter_copy(st, cm, out, file, line);
}

/* SEMANTICS D11: a callback without its function is refused now, with
 * nothing pushed, rather than called through NULL when the stack unwinds. */
static __attribute__((noinline, cold)) int aw__xs_no_function(const char *what) {
    return aw_raise(-AW_EPROTOCOL, "exit stack: %s pushed with a NULL function", what);
}

int aw_exitstack_push_exit(aw_exitstack_t *st, int (*fn)(void *, const aw_err_t *), void *arg) {
    if (!fn)
        return aw__xs_no_function("aw_exitstack_push_exit: an exit callback");
    aw__xs_node_t *n = aw__xs_alloc(st, 0);
    if (!n)
        return aw_raise(-ENOMEM, "exit stack: no memory for a callback");
    n->exit_fn = fn;
    n->arg = arg;
    aw__with_prep(&n->w, aw_cm(&aw__xs_exit_type, n), __FILE__, __LINE__);
    return aw__xs_push(st, n, 0, NULL);
}

int aw_exitstack_callback(aw_exitstack_t *st, int (*fn)(void *), void *arg) {
    if (!fn)
        return aw__xs_no_function("aw_exitstack_callback: a callback");
    aw__xs_node_t *n = aw__xs_alloc(st, 0);
    if (!n)
        return aw_raise(-ENOMEM, "exit stack: no memory for a callback");
    n->cb_fn = fn;
    n->arg = arg;
    aw__with_prep(&n->w, aw_cm(&aw__xs_plain_type, n), __FILE__, __LINE__);
    return aw__xs_push(st, n, 0, NULL);
}

/* Exit every entry, LIFO, as nested blocks begun at `mark` would. */
static void aw__xs_unwind(aw_exitstack_t *st, uint64_t mark) {
    aw_task_t *t = aw__task_cur();
    while (st->top) {
        aw__xs_node_t *n = st->top;
        st->top = n->next;
        st->n--;
        n->w.mark = mark;
        /* entered by another task (a child, a generator): its exit runs
         * here, in the task that unwinds the stack (SEMANTICS M5) */
        if (__builtin_expect(n->w.task != t, 0))
            aw__with_adopt(&n->w, t);
        aw__with_cleanup(&n->w);
    }
    aw__xs_release(st);
}

void aw_exitstack_pop_all(aw_exitstack_t *st, aw_exitstack_t *dst) {
    if (st == dst)
        return; /* moved onto itself: nothing moves (linking would make a cycle) */
    if (st->slabs) { /* the nodes move with their slabs; st's current one goes on in dst */
        aw__xs_slab_t *last = st->slabs;
        while (last->next)
            last = last->next;
        last->next = dst->slabs;
        dst->slabs = st->slabs;
        dst->bump = st->bump;
        dst->end = st->end;
        st->slabs = NULL;
        st->bump = st->end = NULL;
    }
    /* A1: a dst that already holds entries keeps them, below the moved
     * ones (which exit first), instead of dropping them unrun; finding
     * the bottom of st's list is O(its entries), only in that case */
    if (dst->top && st->top) {
        aw__xs_node_t *bottom = st->top;
        while (bottom->next)
            bottom = bottom->next;
        bottom->next = dst->top;
    }
    if (st->top)
        dst->top = st->top;
    dst->n += st->n;
    st->top = NULL;
    st->n = 0;
}

/* A scope or group entry another task entered: it covers that task (its
 * deadline and cancel reach that task's waits, and its cancel is that
 * task's to end), so only that task may exit it. NULL if none. */
static const aw__xs_node_t *aw__xs_foreign_scope(const aw_exitstack_t *st, const aw_task_t *t) {
    for (const aw__xs_node_t *n = st->top; n; n = n->next)
        if (n->w.task && n->w.task != t &&
            (n->w.cm.type == &aw_scope_type || n->w.cm.type == &aw_group_type))
            return n;
    return NULL;
}

int aw_exitstack_close(aw_exitstack_t *st) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_exitstack_close");
    /* SEMANTICS M4 (Trio refuses the same misnesting: exiting a scope
     * from an unrelated task raises and changes nothing): ended here, the
     * scope's timeout would be raised in this task and the cancel it
     * caused left in the other with no scope to end it */
    const aw__xs_node_t *f = aw__xs_foreign_scope(st, t);
    if (__builtin_expect(f != NULL, 0))
        return aw_raise(-EPERM,
                        "aw_exitstack_close: the stack holds a %s that task '%s' entered at %s:%d; "
                        "it covers that task, so only that task may close the stack "
                        "(nothing was closed)",
                        f->w.cm.type == &aw_group_type ? "task group" : "scope",
                        aw_task_name(f->w.task), f->w.file, f->w.line);
    uint64_t mark = t->err ? t->err->seq : 0;
    aw__xs_unwind(st, mark);
    /* what this close's exits left (D10: a second close did nothing, so
     * 0), not an older error still pending (A10) */
    return aw__status_since(mark);
}

size_t aw_exitstack_size(const aw_exitstack_t *st) { return st->n; }

static int aw__xs_enter(void *self, void **out) {
    aw_exitstack_t *st = self;
    aw_task_t *t = aw__task_cur();
    st->mark = t->err ? t->err->seq : 0;
    *out = st;
    return 0;
}

static int aw__xs_exit(void *self, const aw_err_t *err) {
    aw_exitstack_t *st = self;
    aw_task_t *t = aw__task_cur();
    uint64_t before = t->err ? t->err->seq : 0;
    aw__xs_unwind(st, st->mark);
    if (!t->err || t->err->seq <= st->mark)
        return err ? AW_SUPPRESS : 0; /* the entries handled it */
    if (t->err->seq > before)
        return t->err->code; /* the entries failed: already chained */
    return 0;
}

/* Each entry applies the cancel and shield rules itself. */
const aw_cm_type_t aw_exitstack_type = {
    .name = "exitstack",
    .enter = aw__xs_enter,
    .exit = aw__xs_exit,
    .flags = AW_CM_UNSHIELDED | AW_CM_SUPPRESS_CANCEL,
};
