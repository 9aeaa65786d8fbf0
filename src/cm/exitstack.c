/* exitstack.c: each entry is an aw_with_t in a node; leaving runs
 * aw__with_cleanup on each, LIFO, with every entry's mark set to the
 * stack's, so each exit sees exactly what a nested block's exit would.
 * Nodes come from slabs owned by the stack (4 nodes, then 8, 16...), all
 * freed once the stack is unwound: a stack of 10 costs 3 mallocs, not 10. */
#include <awith/exitstack.h>

#include "../core/core.h"

#include <stdlib.h>
#include <string.h>

struct aw__xs_node {
    aw_with_t w;
    aw__xs_node_t *next;
    int (*exit_fn)(void *, const aw_err_t *);
    int (*cb_fn)(void *);
    void *arg;
};

struct aw__xs_slab {
    aw__xs_slab_t *next;
    unsigned used, cap;
    aw__xs_node_t nodes[];
};

static aw__xs_node_t *aw__xs_alloc(aw_exitstack_t *st) {
    aw__xs_slab_t *s = st->slabs;
    if (!s || s->used == s->cap) {
        unsigned cap = s ? 2 * s->cap : 4;
        aw__xs_slab_t *n = malloc(sizeof *n + cap * sizeof n->nodes[0]);
        if (!n)
            return NULL;
        n->next = s;
        n->used = 0;
        n->cap = cap;
        st->slabs = s = n;
    }
    aw__xs_node_t *node = &s->nodes[s->used++];
    memset(node, 0, sizeof *node);
    return node;
}

/* A node whose enter failed: reuse its slot if it is the last one. */
static void aw__xs_unalloc(aw_exitstack_t *st, aw__xs_node_t *n) {
    aw__xs_slab_t *s = st->slabs;
    if (s && s->used && &s->nodes[s->used - 1] == n)
        s->used--;
}

static void aw__xs_release(aw_exitstack_t *st) {
    for (aw__xs_slab_t *s = st->slabs, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    st->slabs = NULL;
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

static int aw__xs_push(aw_exitstack_t *st, aw__xs_node_t *n, aw_cm_t cm, void **out,
                       const char *file, int line) {
    n->w = aw__with_init(cm, file, line);
    if (!aw__with_enter(&n->w)) {
        aw__xs_unalloc(st, n);
        return aw_status() ? aw_status() : -EPERM;
    }
    if (out)
        *out = n->w.value;
    n->next = st->top;
    st->top = n;
    st->n++;
    return 0;
}

int aw__exitstack_enter(aw_exitstack_t *st, aw_cm_t cm, void **out, const char *file, int line) {
    aw__xs_node_t *n = aw__xs_alloc(st);
    if (!n)
        return aw_raise(-ENOMEM, "exit stack: no memory for manager '%s'",
                        cm.type && cm.type->name ? cm.type->name : "?");
    return aw__xs_push(st, n, cm, out, file, line);
}

int aw_exitstack_push_exit(aw_exitstack_t *st, int (*fn)(void *, const aw_err_t *), void *arg) {
    aw__xs_node_t *n = aw__xs_alloc(st);
    if (!n)
        return aw_raise(-ENOMEM, "exit stack: no memory for a callback");
    n->exit_fn = fn;
    n->arg = arg;
    return aw__xs_push(st, n, aw_cm(&aw__xs_exit_type, n), NULL, __FILE__, __LINE__);
}

int aw_exitstack_callback(aw_exitstack_t *st, int (*fn)(void *), void *arg) {
    aw__xs_node_t *n = aw__xs_alloc(st);
    if (!n)
        return aw_raise(-ENOMEM, "exit stack: no memory for a callback");
    n->cb_fn = fn;
    n->arg = arg;
    return aw__xs_push(st, n, aw_cm(&aw__xs_plain_type, n), NULL, __FILE__, __LINE__);
}

/* Exit every entry, LIFO, as nested blocks begun at `mark` would. */
static void aw__xs_unwind(aw_exitstack_t *st, uint64_t mark) {
    while (st->top) {
        aw__xs_node_t *n = st->top;
        st->top = n->next;
        st->n--;
        n->w.mark = mark;
        aw__with_cleanup(&n->w);
    }
    aw__xs_release(st);
}

void aw_exitstack_pop_all(aw_exitstack_t *st, aw_exitstack_t *dst) {
    if (st->slabs) { /* the nodes move with their slabs */
        aw__xs_slab_t *last = st->slabs;
        while (last->next)
            last = last->next;
        last->next = dst->slabs;
        dst->slabs = st->slabs;
        st->slabs = NULL;
    }
    dst->top = st->top;
    dst->n = st->n;
    st->top = NULL;
    st->n = 0;
}

int aw_exitstack_close(aw_exitstack_t *st) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_exitstack_close");
    aw__xs_unwind(st, t->err ? t->err->seq : 0);
    return aw_status();
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
