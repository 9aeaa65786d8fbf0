/* fuzz.c: the composition fuzzer's engine: generator, printer, parser,
 * interpreter with its invariants, shrinker. See tests/fuzz/README.md for
 * the design; the invariants are listed with fz_violation's callers.
 *
 * The interpreter keeps its own model of what encloses each statement (a
 * chain of frames: scopes, groups, exit shields, links from a generator to
 * its user) so that it can say, before and after each cancellation point,
 * whether a cancel must be seen and whose it is. The model follows the
 * semantics the docs and issue 10 describe (a generator manager's scopes
 * cover the block, as in Python), not the implementation. */
#include "fuzz.h"

#include <awith.h>
#include <awith/testing.h>

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile uint64_t fz_current_seed;
uint64_t fz_runs;

/* ---- features and violation names ---- */

static const char *const fz_fnames[] = {
#define FZ__FNAME(name, str, doc) str,
    FZ_FEATURES(FZ__FNAME)
#undef FZ__FNAME
};
static const char *const fz_fdocs[] = {
#define FZ__FDOC(name, str, doc) doc,
    FZ_FEATURES(FZ__FDOC)
#undef FZ__FDOC
};
static const char *const fz_vnames[] = {
#define FZ__VNAME(name, str, doc) str,
    FZ_VIOLATIONS(FZ__VNAME)
#undef FZ__VNAME
};

const char *fz_violation_name(int v) { return v >= 0 && v < FZ_NV ? fz_vnames[v] : "?"; }

const char *fz_feature_doc(int bit, const char **name) {
    if (name)
        *name = fz_fnames[bit];
    return fz_fdocs[bit];
}

int fz_features_parse(const char *s, unsigned base, unsigned *out) {
    unsigned f = base;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int sign = 0;
        if (*tok == '+' || *tok == '-')
            sign = *tok++ == '+' ? 1 : -1;
        unsigned bits;
        if (!strcmp(tok, "all"))
            bits = FZ_ALL;
        else if (!strcmp(tok, "default"))
            bits = FZ_DEFAULT;
        else if (!strcmp(tok, "pending"))
            bits = FZ_PENDING;
        else if (!strcmp(tok, "none"))
            bits = 0, sign = sign ? sign : 0;
        else {
            int i = 0;
            while (i < FZ_NFEATURES && strcmp(fz_fnames[i], tok))
                i++;
            if (i == FZ_NFEATURES) {
                fprintf(stderr, "fuzz: unknown feature '%s'\n", tok);
                return -1;
            }
            bits = 1u << i;
        }
        if (sign > 0)
            f |= bits;
        else if (sign < 0)
            f &= ~bits;
        else
            f = bits;
    }
    *out = f;
    return 0;
}

void fz_features_print(unsigned f, FILE *out) {
    if (f == FZ_DEFAULT) {
        fputs("default", out);
        return;
    }
    fputs("default", out);
    for (int i = 0; i < FZ_NFEATURES; i++)
        if ((f ^ FZ_DEFAULT) & (1u << i))
            fprintf(out, ",%c%s", f & (1u << i) ? '+' : '-', fz_fnames[i]);
}

/* ---- the program tree ---- */

enum {
    K_YIELD, K_SLEEP, K_CHECKPOINT, K_RAISE, K_CATCH, K_CLASS, K_GENCM, K_GYIELD, K_XSTACK,
    K_SCOPE, K_SCOPE_CANCEL, K_GROUP, K_SPAWN, K_SPAWN_OUTER, K_SETTER, K_GROUP_CANCEL, K_LOCK,
    K_EVWAIT, K_CONDWAIT, K_AGEN, K_AYIELD, K_DUMP, K_LEAKLOCK, K_N
};

enum { ENTER_OK, ENTER_FAIL, ENTER_OWN };
enum { EXIT_PROPAGATE, EXIT_SUPPRESS, EXIT_FAIL, EXIT_OWN, EXIT_OWN_CODE };
enum { RULE_PROPAGATE, RULE_SUPPRESS, RULE_FAIL };
enum { SC_CANCEL, SC_MOVEON, SC_FAILAFTER, SC_SHIELD };

static const char *const v_codes[] = {"EINVAL", "EIO", "EDOM", "ENOENT", "AW_EGROUP", "ETIMEDOUT", NULL};
static const int codes[] = {-EINVAL, -EIO, -EDOM, -ENOENT, -AW_EGROUP, -ETIMEDOUT};
enum { NRAISE = 4, NCATCH = 6 };
static const char *const v_enter[] = {"ok", "fail", "own", NULL};
static const char *const v_exit[] = {"propagate", "suppress", "fail", "own", "own-code", NULL};
static const char *const v_rule[] = {"propagate", "suppress", "fail", NULL};
static const char *const v_scope[] = {"cancel", "move-on", "fail-after", "shield", NULL};
static const char *const v_res[] = {"L0", "L1", "L2", "S0", "S1", NULL};

static const struct kdesc {
    const char *name;
    const char *pa, *pb, *pc;
    const char *const *va, *const *vb, *const *vc;
    int has_id;
} kd[K_N] = {
    [K_YIELD] = {"yield"},
    [K_SLEEP] = {"sleep", "us"},
    [K_CHECKPOINT] = {"checkpoint"},
    [K_RAISE] = {"raise", "code", NULL, NULL, v_codes},
    [K_CATCH] = {"catch", "code", NULL, NULL, v_codes},
    [K_CLASS] = {"class", "enter", "exit", "code", v_enter, v_exit, v_codes},
    [K_GENCM] = {"gencm", NULL, "rule", "code", NULL, v_rule, v_codes},
    [K_GYIELD] = {"gencm-yield"},
    [K_XSTACK] = {"exitstack"},
    [K_SCOPE] = {"scope", "kind", "us", NULL, v_scope, NULL, NULL, 1},
    [K_SCOPE_CANCEL] = {"scope-cancel"},
    [K_GROUP] = {"group", NULL, NULL, NULL, NULL, NULL, NULL, 1},
    [K_SPAWN] = {"spawn"},
    [K_SPAWN_OUTER] = {"spawn-outer"},
    [K_SETTER] = {"setter"},
    [K_GROUP_CANCEL] = {"group-cancel"},
    [K_LOCK] = {"lock", "r", NULL, NULL, v_res},
    [K_EVWAIT] = {"event-wait"},
    [K_CONDWAIT] = {"cond-wait"},
    [K_AGEN] = {"agen", NULL, "break", NULL},
    [K_AYIELD] = {"agen-yield", "n"},
    [K_DUMP] = {"dump"},
    [K_LEAKLOCK] = {"leak-lock", "r", NULL, NULL, v_res},
};

static void *xmalloc(size_t n) {
    void *p = calloc(1, n);
    if (!p)
        abort();
    return p;
}

static fz_node_t *node_new(fz_prog_t *p, int kind) {
    fz_node_t *n = xmalloc(sizeof *n);
    n->kind = kind;
    n->id = ++p->nids;
    return n;
}

static void list_push(fz_list_t *l, fz_node_t *n) {
    l->v = realloc(l->v, (size_t)(l->n + 1) * sizeof *l->v);
    if (!l->v)
        abort();
    l->v[l->n++] = n;
}

static void node_free(fz_node_t *n);
static void list_free(fz_list_t *l) {
    for (int i = 0; i < l->n; i++)
        node_free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
static void node_free(fz_node_t *n) {
    if (!n)
        return;
    list_free(&n->body);
    list_free(&n->l1);
    list_free(&n->l2);
    free(n);
}

void fz_prog_free(fz_prog_t *p) { list_free(&p->main); }

static fz_node_t *node_clone(const fz_node_t *n);
static void list_clone(fz_list_t *d, const fz_list_t *s) {
    d->n = s->n;
    d->v = s->n ? xmalloc((size_t)s->n * sizeof *d->v) : NULL;
    for (int i = 0; i < s->n; i++)
        d->v[i] = node_clone(s->v[i]);
}
static fz_node_t *node_clone(const fz_node_t *n) {
    fz_node_t *c = xmalloc(sizeof *c);
    *c = *n;
    list_clone(&c->body, &n->body);
    list_clone(&c->l1, &n->l1);
    list_clone(&c->l2, &n->l2);
    return c;
}

fz_prog_t *fz_prog_clone(const fz_prog_t *p) {
    fz_prog_t *c = xmalloc(sizeof *c);
    *c = *p;
    list_clone(&c->main, &p->main);
    return c;
}

static int list_count(const fz_list_t *l) {
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += 1 + list_count(&l->v[i]->body) + list_count(&l->v[i]->l1) + list_count(&l->v[i]->l2);
    return n;
}
int fz_count_nodes(const fz_prog_t *p) { return list_count(&p->main); }

/* ---- the generator ---- */

typedef struct gen {
    fz_prog_t *p;
    uint64_t s;
    unsigned f;
    int budget;       /* nodes left */
    int targets[64];  /* ids of scopes and groups, for injections */
    int ntargets;
} gen_t;

typedef struct gctx {
    int depth;
    int held;         /* highest resource index held (lock order), -1 none */
    int simple;       /* only simple statements (enter/exit bodies) */
    int nowait;       /* no waits that need another task (setters) */
    int in_exit;      /* an exit body: catch there is item 3's shape */
    int group;        /* a group of this task is open around */
    int child;        /* in a spawned child whose group is the parent's */
    int own_scope;    /* a scope of this task is open around */
    int in_gen;       /* a generator body: no spawn-outer */
} gctx_t;

static uint64_t rnd(gen_t *g) {
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rn(gen_t *g, int n) { return n > 0 ? (int)(rnd(g) % (uint64_t)n) : 0; }
static bool on(gen_t *g, unsigned feat) { return (g->f & feat) == feat; }

static void gen_list(gen_t *g, fz_list_t *l, gctx_t c, int max);

static fz_node_t *gen_simple(gen_t *g, gctx_t c) {
    for (;;) {
        switch (rn(g, 10)) {
        case 0:
        case 1:
        case 8:
        case 9:
            return node_new(g->p, K_YIELD);
        case 2:
            return node_new(g->p, K_CHECKPOINT);
        case 3:
            if (on(g, FZ_F_SLEEP)) {
                fz_node_t *n = node_new(g->p, K_SLEEP);
                n->a = 50 * rn(g, 21);
                return n;
            }
            break;
        case 4:
        case 5:
            /* raises end the statement list: not too many */
            if (on(g, FZ_F_RAISE) && rn(g, 3) == 0) {
                fz_node_t *n = node_new(g->p, K_RAISE);
                n->a = rn(g, NRAISE);
                return n;
            }
            break;
        case 6:
            if (on(g, FZ_F_CATCH) && (!c.in_exit || on(g, FZ_F_PENDING_EXIT_OWN)) &&
                c.depth < 6) {
                fz_node_t *n = node_new(g->p, K_CATCH);
                n->a = rn(g, NRAISE);
                c.depth++;
                gen_list(g, &n->body, c, 2);
                return n;
            }
            break;
        case 7:
            if (on(g, FZ_F_DUMP))
                return node_new(g->p, K_DUMP);
            break;
        }
    }
}

static fz_node_t *gen_class(gen_t *g, gctx_t c, bool body) {
    fz_node_t *n = node_new(g->p, K_CLASS);
    int er = rn(g, 20), xr = rn(g, 20);
    n->a = ENTER_OK;
    if (er == 0 && on(g, FZ_F_RAISE))
        n->a = ENTER_FAIL;
    else if (er < 3 && on(g, FZ_F_PENDING_EXIT_OWN))
        n->a = ENTER_OWN;
    n->b = EXIT_PROPAGATE;
    if (xr < 3 && on(g, FZ_F_SUPPRESS))
        n->b = EXIT_SUPPRESS;
    else if (xr < 5 && on(g, FZ_F_RAISE))
        n->b = EXIT_FAIL;
    else if (xr < 7 && on(g, FZ_F_PENDING_EXIT_OWN))
        n->b = EXIT_OWN;
    else if (xr < 8 && on(g, FZ_F_PENDING_EXIT_OWN))
        n->b = EXIT_OWN_CODE;
    n->c = rn(g, NRAISE);
    gctx_t s = c;
    s.simple = 1;
    s.depth++;
    if (rn(g, 3) == 0)
        gen_list(g, &n->l1, s, 2);
    if (rn(g, 3) == 0) {
        s.in_exit = 1;
        gen_list(g, &n->l2, s, 2);
    }
    if (body) {
        c.depth++;
        gen_list(g, &n->body, c, 3);
    }
    return n;
}

/* A generator manager's function: statements, the yield (possibly held
 * inside managers: item 4), statements. */
static fz_node_t *gen_gencm(gen_t *g, gctx_t c, bool body, bool around_ok) {
    fz_node_t *n = node_new(g->p, K_GENCM);
    n->b = RULE_PROPAGATE;
    int r = rn(g, 8);
    if (r < 2 && on(g, FZ_F_SUPPRESS))
        n->b = RULE_SUPPRESS;
    else if (r < 3 && on(g, FZ_F_RAISE))
        n->b = RULE_FAIL;
    n->c = rn(g, NRAISE);
    gctx_t s = c;
    s.simple = 1;
    s.depth++;
    s.in_gen = 1;
    if (rn(g, 2))
        gen_list(g, &n->l1, s, 2);
    fz_node_t *y = node_new(g->p, K_GYIELD);
    if (around_ok && on(g, FZ_F_PENDING_GENCM_AROUND) && rn(g, 2)) {
        /* hold a manager, a scope or a group open around the yield */
        fz_node_t *w;
        int k = rn(g, 3);
        if (k == 0) {
            w = gen_class(g, s, false);
        } else if (k == 1) {
            w = node_new(g->p, K_SCOPE);
            w->a = rn(g, 4);
            w->b = on(g, FZ_F_REALTIME) && rn(g, 2) ? 100 * rn(g, 20) : -1;
            if (w->a == SC_CANCEL)
                w->b = -1; /* aw_cancel_scope() has no deadline (same draws: same seeds) */
            if (g->ntargets < 64)
                g->targets[g->ntargets++] = w->id;
        } else {
            w = node_new(g->p, K_GROUP);
            if (g->ntargets < 64)
                g->targets[g->ntargets++] = w->id;
        }
        list_push(&w->body, y);
        list_push(&n->l1, w);
    } else {
        list_push(&n->l1, y);
    }
    if (rn(g, 2)) {
        s.in_exit = 1;
        gen_list(g, &n->l1, s, 2);
    }
    if (body) {
        c.depth++;
        gen_list(g, &n->body, c, 3);
    }
    return n;
}

static fz_node_t *add(gen_t *g, fz_list_t *l, int kind) {
    fz_node_t *n = node_new(g->p, kind);
    list_push(l, n);
    return n;
}

static void yields(gen_t *g, fz_list_t *l, int max) {
    for (int i = rn(g, max + 1); i > 0; i--)
        add(g, l, K_YIELD);
}

/* Hand-offs under cancellation: the interleavings the line-by-line tests
 * aim at one by one (a waiter woken, then cancelled before it runs), set
 * up on purpose, the cancels landing from the owner, a scope or an
 * injection. Random programs reach them too rarely. */
static fz_node_t *gen_pattern(gen_t *g, gctx_t c) {
    fz_node_t *grp = node_new(g->p, K_GROUP);
    if (g->ntargets < 64)
        g->targets[g->ntargets++] = grp->id;
    int kind = rn(g, 3), waiters = 1 + rn(g, 3);
    int r = c.held + 1 + rn(g, 4 - c.held);
    if (kind == 0 && (!on(g, FZ_F_LOCK) || c.held >= 4))
        kind = 1;
    if (kind == 1 && !on(g, FZ_F_COND))
        kind = 2;
    if (kind == 2 && !on(g, FZ_F_EVENT))
        return grp;
    if (kind) { /* the setter comes last, when the waiters wait */
        fz_node_t *st = add(g, &grp->body, K_SETTER);
        add(g, &st->body, K_YIELD);
        add(g, &st->body, K_YIELD);
        yields(g, &st->body, 3);
    }
    if (rn(g, 2)) /* a busy sibling: points between a wake-up and the run */
        yields(g, &add(g, &grp->body, K_SPAWN)->body, 6);
    for (int i = 0; i < waiters; i++) {
        fz_node_t *ch = add(g, &grp->body, K_SPAWN);
        yields(g, &ch->body, 1);
        fz_list_t *l = &ch->body;
        if (rn(g, 2)) { /* inside a scope that may be cancelled */
            fz_node_t *sc = add(g, l, K_SCOPE);
            sc->a = rn(g, 2) ? SC_CANCEL : SC_MOVEON;
            sc->b = -1;
            if (g->ntargets < 64)
                g->targets[g->ntargets++] = sc->id;
            l = &sc->body;
        }
        fz_node_t *w = add(g, l, kind == 0 ? K_LOCK : kind == 1 ? K_CONDWAIT : K_EVWAIT);
        w->a = r;
        if (kind == 0)
            yields(g, &w->body, 2);
    }
    if (kind == 0) {
        fz_node_t *w = add(g, &grp->body, K_LOCK);
        w->a = r;
        yields(g, &w->body, 3);
    } else { /* the owner outlasts the setter: its points fall after the wake-up */
        for (int i = 0; i < 3; i++)
            add(g, &grp->body, K_YIELD);
        yields(g, &grp->body, 5);
    }
    if (rn(g, 2))
        add(g, &grp->body, K_GROUP_CANCEL);
    return grp;
}

static fz_node_t *gen_stmt(gen_t *g, gctx_t c) {
    if (c.simple || c.depth >= 6 || g->budget <= 0)
        return gen_simple(g, c);
    if (!c.nowait && on(g, FZ_F_GROUP) && rn(g, 12) == 0) {
        g->budget -= 8;
        return gen_pattern(g, c);
    }
    for (int tries = 0;; tries++) {
        if (tries > 40)
            return gen_simple(g, c);
        int k = rn(g, 20);
        fz_node_t *n = NULL;
        gctx_t in = c;
        in.depth++;
        switch (k) {
        case 0:
        case 1:
        case 2:
            return gen_simple(g, c);
        case 3:
        case 4:
            if (!on(g, FZ_F_CLASS))
                break;
            return gen_class(g, c, true);
        case 5:
            if (!on(g, FZ_F_GENCM))
                break;
            return gen_gencm(g, c, true, true);
        case 6:
            if (!on(g, FZ_F_XSTACK))
                break;
            n = node_new(g->p, K_XSTACK);
            for (int i = rn(g, 3) + 1; i > 0; i--)
                list_push(&n->l1, on(g, FZ_F_GENCM) && rn(g, 3) == 0 ? gen_gencm(g, c, false, false)
                                                                     : gen_class(g, c, false));
            gen_list(g, &n->body, in, 3);
            return n;
        case 7:
        case 8: {
            int kinds[4], nk = 0;
            if (on(g, FZ_F_CSCOPE))
                kinds[nk++] = SC_CANCEL;
            if (on(g, FZ_F_MOVEON))
                kinds[nk++] = SC_MOVEON;
            if (on(g, FZ_F_FAILAFTER))
                kinds[nk++] = SC_FAILAFTER;
            if (on(g, FZ_F_SHIELD))
                kinds[nk++] = SC_SHIELD;
            if (!nk)
                break;
            n = node_new(g->p, K_SCOPE);
            n->a = kinds[rn(g, nk)];
            n->b = -1;
            if (on(g, FZ_F_REALTIME) && n->a != SC_CANCEL && rn(g, 2))
                n->b = 100 * rn(g, 20);
            if (g->ntargets < 64)
                g->targets[g->ntargets++] = n->id;
            in.own_scope = 1;
            gen_list(g, &n->body, in, 3);
            return n;
        }
        case 9:
            if (!c.own_scope || !on(g, FZ_F_CSCOPE) || rn(g, 2))
                break;
            return node_new(g->p, K_SCOPE_CANCEL);
        case 10:
        case 11:
            if (!on(g, FZ_F_GROUP) || c.nowait)
                break;
            n = node_new(g->p, K_GROUP);
            if (g->ntargets < 64)
                g->targets[g->ntargets++] = n->id;
            in.group = 1;
            gen_list(g, &n->body, in, 4);
            return n;
        case 12:
        case 13: {
            if (!c.group)
                break;
            int setter = (on(g, FZ_F_EVENT) || on(g, FZ_F_COND)) && rn(g, 3) == 0;
            n = node_new(g->p, setter ? K_SETTER : K_SPAWN);
            gctx_t ch = in;
            ch.group = 0;
            ch.own_scope = 0;
            ch.child = !c.in_gen;
            ch.in_gen = 0;
            if (setter)
                ch.nowait = 1;
            gen_list(g, &n->body, ch, 3);
            /* A task that ends holding a lock (item 6): its last statement,
             * so that it waits for nothing while it holds it (a wait for a
             * child that takes the lock would be the program's own
             * deadlock), above the locks its parent holds. */
            if (!setter && ch.child && on(g, FZ_F_PENDING_LOCK_LEAK) && in.held < 2 &&
                rn(g, 4) == 0) {
                fz_node_t *k = node_new(g->p, K_LEAKLOCK);
                k->a = in.held + 1 + rn(g, 2 - in.held);
                list_push(&n->body, k);
            }
            return n;
        }
        case 14:
            if (c.group && rn(g, 2) == 0)
                return node_new(g->p, K_GROUP_CANCEL);
            if (c.child && on(g, FZ_F_PENDING_SPAWN_OUTER) && !c.nowait) {
                n = node_new(g->p, K_SPAWN_OUTER);
                gctx_t ch = in;
                ch.group = ch.own_scope = 0;
                gen_list(g, &n->body, ch, 2);
                return n;
            }
            break;
        case 15:
        case 19:
            if (!on(g, FZ_F_LOCK) || c.nowait || c.held >= 4)
                break;
            n = node_new(g->p, K_LOCK);
            /* contention wants few resources: the lowest free one half the time */
            n->a = c.held + 1 + (rn(g, 2) ? 0 : rn(g, 4 - c.held));
            in.held = n->a;
            gen_list(g, &n->body, in, 2);
            return n;
        case 16:
            if (c.nowait)
                break;
            if (on(g, FZ_F_EVENT) && rn(g, 2))
                return node_new(g->p, K_EVWAIT);
            if (on(g, FZ_F_COND))
                return node_new(g->p, K_CONDWAIT);
            break;
        case 17: {
            if (!on(g, FZ_F_AGEN))
                break;
            n = node_new(g->p, K_AGEN);
            n->b = rn(g, 2) ? rn(g, 4) : -1;
            gctx_t s = c;
            s.simple = 1;
            s.depth++;
            s.in_gen = 1;
            if (rn(g, 2))
                gen_list(g, &n->l1, s, 2);
            fz_node_t *y = node_new(g->p, K_AYIELD);
            y->a = rn(g, 4);
            if (rn(g, 2))
                gen_list(g, &y->body, s, 2);
            if (on(g, FZ_F_PENDING_AGEN_AROUND) && rn(g, 2)) {
                fz_node_t *w = gen_class(g, s, false);
                list_push(&w->body, y);
                list_push(&n->l1, w);
            } else if (rn(g, 8) == 0 && on(g, FZ_F_CSCOPE | FZ_F_MOVEON)) {
                /* a scope open at the yield: refused (SEMANTICS (c) 10) */
                fz_node_t *w = node_new(g->p, K_SCOPE);
                w->a = SC_MOVEON;
                w->b = -1;
                list_push(&w->body, y);
                list_push(&n->l1, w);
            } else {
                list_push(&n->l1, y);
            }
            if (rn(g, 2)) {
                s.in_exit = 1;
                gen_list(g, &n->l1, s, 2);
            }
            gen_list(g, &n->body, in, 2);
            return n;
        }
        case 18:
            break; /* leak-lock: only as a child's last statement (see spawn) */
        }
    }
}

static void gen_list(gen_t *g, fz_list_t *l, gctx_t c, int max) {
    int n = 1 + rn(g, max);
    for (int i = 0; i < n && g->budget > 0; i++) {
        g->budget--;
        list_push(l, gen_stmt(g, c));
    }
}

void fz_gen(fz_prog_t *p, uint64_t seed, unsigned features) {
    memset(p, 0, sizeof *p);
    p->seed = seed;
    p->features = features;
    gen_t g = {.p = p, .s = seed, .f = features, .budget = 8 + (int)(seed % 40)};
    rnd(&g);
    gctx_t c = {.held = -1};
    gen_list(&g, &p->main, c, 5);
    if (on(&g, FZ_F_INJECT)) {
        /* points are placeholders in 1..1000: fz_place scales them to the
         * number of points a first run counted */
        int n = rn(&g, 4);
        for (int i = 0; i < n && g.ntargets; i++)
            p->inj[p->ninj++] = (fz_inject_t){.point = 1 + rn(&g, 1000),
                                              .target = g.targets[rn(&g, g.ntargets)],
                                              .how = rn(&g, 2)};
        if (rn(&g, 3) == 0) {
            p->harness_how = 1 + rn(&g, 2);
            p->harness_k = 1 + rn(&g, 1000);
        }
    }
}

void fz_place(fz_prog_t *p, int points) {
    if (points < 1)
        points = 1;
    for (int i = 0; i < p->ninj; i++)
        p->inj[i].point = 1 + (p->inj[i].point - 1) * points / 1000;
    if (p->harness_how)
        p->harness_k = 1 + (p->harness_k - 1) * points / 1000;
}

/* ---- printing and parsing (s-expressions) ---- */

static void print_list(const fz_list_t *l, FILE *f, int ind);

static void print_val(FILE *f, const char *const *names, int v) {
    if (names && v >= 0)
        fputs(names[v], f);
    else
        fprintf(f, "%d", v);
}

static void print_node(const fz_node_t *n, FILE *f, int ind) {
    const struct kdesc *d = &kd[n->kind];
    fprintf(f, "%*s(%s", ind, "", d->name);
    if (d->has_id)
        fprintf(f, "#%d", n->id);
    if (d->pa)
        fprintf(f, " %s=", d->pa), print_val(f, d->va, n->a);
    if (d->pb)
        fprintf(f, " %s=", d->pb), print_val(f, d->vb, n->b);
    if (d->pc)
        fprintf(f, " %s=", d->pc), print_val(f, d->vc, n->c);
    if (n->l1.n) {
        fprintf(f, "\n%*s:%s (\n", ind + 2, "", n->kind == K_XSTACK ? "entries" : n->kind == K_CLASS ? "enter" : "gen");
        print_list(&n->l1, f, ind + 4);
        fprintf(f, "%*s)", ind + 2, "");
    }
    if (n->l2.n) {
        fprintf(f, "\n%*s:exit (\n", ind + 2, "");
        print_list(&n->l2, f, ind + 4);
        fprintf(f, "%*s)", ind + 2, "");
    }
    if (n->body.n) {
        fputc('\n', f);
        for (int i = 0; i < n->body.n; i++) {
            print_node(n->body.v[i], f, ind + 2);
            if (i + 1 < n->body.n)
                fputc('\n', f);
        }
    }
    fputc(')', f);
}

static void print_list(const fz_list_t *l, FILE *f, int ind) {
    for (int i = 0; i < l->n; i++) {
        print_node(l->v[i], f, ind);
        fputc('\n', f);
    }
}

void fz_print(const fz_prog_t *p, FILE *f) {
    fprintf(f, "; seed=%llu features=", (unsigned long long)p->seed);
    fz_features_print(p->features, f);
    fprintf(f, " nodes=%d\n(program\n", fz_count_nodes(p));
    static const char *const hows[] = {"cancel", "expire"};
    for (int i = 0; i < p->ninj; i++)
        fprintf(f, "  (inject %s #%d at-point=%d)\n", hows[p->inj[i].how], p->inj[i].target,
                p->inj[i].point);
    if (p->harness_how)
        fprintf(f, "  (inject-all %s at-point=%d)\n", p->harness_how == 1 ? "cancel" : "expire",
                p->harness_k);
    print_list(&p->main, f, 2);
    fputs(")\n", f);
}

typedef struct parser {
    const char *s;
    int err;
    fz_prog_t *p;
} parser_t;

static void skip_ws(parser_t *ps) {
    for (;;) {
        while (*ps->s == ' ' || *ps->s == '\n' || *ps->s == '\t' || *ps->s == '\r')
            ps->s++;
        if (*ps->s != ';')
            return;
        while (*ps->s && *ps->s != '\n')
            ps->s++;
    }
}

static int atom(parser_t *ps, char *buf, size_t cap) {
    skip_ws(ps);
    size_t n = 0;
    while (*ps->s && !strchr(" \n\t\r()", *ps->s)) {
        if (n + 1 < cap)
            buf[n++] = *ps->s;
        ps->s++;
    }
    buf[n] = 0;
    return (int)n;
}

static bool expect(parser_t *ps, char c) {
    skip_ws(ps);
    if (*ps->s != c) {
        if (!ps->err)
            fprintf(stderr, "fuzz: parse error: expected '%c' at \"%.30s\"\n", c, ps->s);
        ps->err = 1;
        return false;
    }
    ps->s++;
    return true;
}

static int parse_val(parser_t *ps, const char *const *names, const char *v) {
    if (names)
        for (int i = 0; names[i]; i++)
            if (!strcmp(names[i], v))
                return i;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end) {
        fprintf(stderr, "fuzz: parse error: bad value '%s'\n", v);
        ps->err = 1;
    }
    return (int)x;
}

static fz_node_t *parse_node(parser_t *ps);

static void parse_list(parser_t *ps, fz_list_t *l) {
    if (!expect(ps, '('))
        return;
    for (;;) {
        skip_ws(ps);
        if (*ps->s == ')' || !*ps->s || ps->err)
            break;
        fz_node_t *n = parse_node(ps);
        if (n)
            list_push(l, n);
    }
    expect(ps, ')');
}

static fz_node_t *parse_node(parser_t *ps) {
    char name[64];
    if (!expect(ps, '('))
        return NULL;
    atom(ps, name, sizeof name);
    int id = 0;
    char *hash = strchr(name, '#');
    if (hash) {
        *hash = 0;
        id = atoi(hash + 1);
    }
    int k = 0;
    while (k < K_N && strcmp(kd[k].name, name))
        k++;
    if (k == K_N) {
        fprintf(stderr, "fuzz: parse error: unknown statement '%s'\n", name);
        ps->err = 1;
        return NULL;
    }
    fz_node_t *n = node_new(ps->p, k);
    if (id) {
        n->id = id;
        if (id > ps->p->nids)
            ps->p->nids = id;
    }
    n->b = k == K_SCOPE || k == K_AGEN ? -1 : 0;
    for (;;) {
        skip_ws(ps);
        if (*ps->s == ')' || !*ps->s || ps->err)
            break;
        if (*ps->s == '(') {
            fz_node_t *c = parse_node(ps);
            if (c)
                list_push(&n->body, c);
            continue;
        }
        char a[64];
        atom(ps, a, sizeof a);
        if (a[0] == ':') {
            parse_list(ps, !strcmp(a, ":exit") ? &n->l2 : &n->l1);
            continue;
        }
        char *eq = strchr(a, '=');
        if (!eq) {
            fprintf(stderr, "fuzz: parse error: '%s'\n", a);
            ps->err = 1;
            break;
        }
        *eq = 0;
        const struct kdesc *d = &kd[k];
        if (d->pa && !strcmp(a, d->pa))
            n->a = parse_val(ps, d->va, eq + 1);
        else if (d->pb && !strcmp(a, d->pb))
            n->b = parse_val(ps, d->vb, eq + 1);
        else if (d->pc && !strcmp(a, d->pc))
            n->c = parse_val(ps, d->vc, eq + 1);
        else {
            fprintf(stderr, "fuzz: parse error: no parameter '%s' for %s\n", a, name);
            ps->err = 1;
        }
    }
    expect(ps, ')');
    return n;
}

int fz_parse(const char *text, fz_prog_t *p) {
    memset(p, 0, sizeof *p);
    p->features = FZ_ALL;
    parser_t ps = {.s = text, .p = p};
    const char *seed = strstr(text, "seed=");
    if (seed)
        p->seed = strtoull(seed + 5, NULL, 10);
    const char *feat = strstr(text, "features=");
    if (feat) {
        char buf[512];
        sscanf(feat + 9, "%511s", buf);
        fz_features_parse(buf, FZ_DEFAULT, &p->features);
    }
    if (!expect(&ps, '('))
        return -1;
    char a[64];
    atom(&ps, a, sizeof a);
    if (strcmp(a, "program")) {
        fprintf(stderr, "fuzz: parse error: expected (program ...)\n");
        return -1;
    }
    /* first pass: a node's id may be referenced before it is read */
    for (;;) {
        skip_ws(&ps);
        if (*ps.s == ')' || !*ps.s || ps.err)
            break;
        const char *save = ps.s;
        expect(&ps, '(');
        atom(&ps, a, sizeof a);
        if (!strcmp(a, "inject") || !strcmp(a, "inject-all")) {
            char how[16], pt[32], tg[32];
            atom(&ps, how, sizeof how);
            if (!strcmp(a, "inject")) {
                atom(&ps, tg, sizeof tg);
                atom(&ps, pt, sizeof pt);
                if (p->ninj < FZ_MAX_INJ)
                    p->inj[p->ninj++] = (fz_inject_t){.point = atoi(pt + 9),
                                                      .target = atoi(tg + 1),
                                                      .how = !strcmp(how, "expire")};
            } else {
                atom(&ps, pt, sizeof pt);
                p->harness_how = !strcmp(how, "expire") ? 2 : 1;
                p->harness_k = atoi(pt + 9);
            }
            expect(&ps, ')');
            continue;
        }
        ps.s = save;
        fz_node_t *n = parse_node(&ps);
        if (n)
            list_push(&p->main, n);
    }
    expect(&ps, ')');
    if (ps.err) {
        fz_prog_free(p);
        return -1;
    }
    return 0;
}

/* ---- the interpreter ---- */

enum { FR_SCOPE, FR_GROUP, FR_SHIELD, FR_LINK };

typedef struct fz_task {
    int saw_outside_cancel;
    int node;
} fz_task_t;

typedef struct fz_ids {
    int n;
    int v[64];
} fz_ids_t;

typedef struct fz_ctx fz_ctx_t;
typedef struct fz_frame fz_frame_t;
struct fz_frame {
    int kind, skind, node;
    fz_frame_t *parent;
    fz_task_t *task;
    fz_ctx_t *ctx;         /* FR_LINK: whose base to follow */
    aw_scope_t *s;
    aw_group_t *g;
    aw_ns_t t0, t1, rel;   /* real deadline: rel >= 0 */
    int cleanup;           /* entered in a generator manager's cleanup (see up()) */
    int checked, resched;
    /* groups: what their children share */
    aw_event_t ev;
    int ev_armed;
    aw_lock_t cl;
    aw_cond_t cv;
    int cv_flag, cv_armed;
    fz_ids_t child_ids;
};

struct fz_ctx {
    fz_task_t *task;
    fz_frame_t *top;
    fz_frame_t link;       /* generators: the bottom of their own frames */
    fz_frame_t *base;      /* what the link leads to (the user's frames) */
    int withs;             /* with blocks open in this ctx (generators) */
    struct fz_gcm *gcm;
    struct fz_agen *agen;
};

typedef struct fz_snap {
    int top;
    fz_ids_t ids;
    int dup;
    int rtfail; /* a failure the runtime raised (a group's, a lock's owner ended) */
} fz_snap_t;

typedef struct fz_inst {
    const fz_node_t *n;
    fz_ctx_t *ctx;
    int enters, exits, enter_ok;
    int saw_top;
    fz_snap_t saw;
    int exit_failed; /* its exit body failed, or its rule failed: the code */
    int suppressed;
} fz_inst_t;

typedef struct fz_gcm {
    aw_gencm_t g;
    const fz_node_t *n;
    fz_ctx_t *user;
    fz_ctx_t gctx;
    fz_task_t *task;
    int started, finished, yielded, yield_rc, failed_rc, suppressed, exiting;
    fz_frame_t *yield_top;
    fz_frame_t exit_shield;
} fz_gcm_t;

typedef struct fz_agen {
    const fz_node_t *n;
    fz_ctx_t *user;
    fz_ctx_t gctx;
    aw_gen_t *g;
    int started, finished, closed;
    fz_frame_t close_shield;
} fz_agen_t;

typedef struct fz_child {
    const fz_node_t *n;
    fz_frame_t *gf;
    fz_task_t task;
    fz_ctx_t ctx;
    int setter;
} fz_child_t;

typedef struct fz_raised {
    int node, code, handled;
} fz_raised_t;

static struct fz_run {
    const fz_prog_t *p;
    fz_result_t *res;
    FILE *log;
    char *logbuf;
    size_t loglen;
    fz_raised_t *raised;
    int nraised, capraised;
    void **allocs;
    int nallocs, capallocs;
    fz_frame_t **live;      /* node id -> its live frame */
    long points, events;
    int harness_hit;        /* the whole-program injection happened */
    FILE *devnull;
    uint64_t dumps;
} R;

static aw_lock_t res_locks[3];
static aw_sem_t res_sems[2];

static void res_reset(void *arg) {
    (void)arg;
    res_locks[0] = (aw_lock_t)AW_LOCK_INIT("L0");
    res_locks[1] = (aw_lock_t)AW_LOCK_INIT("L1");
    res_locks[2] = (aw_lock_t)AW_LOCK_INIT("L2");
    res_sems[0] = (aw_sem_t)AW_SEM_INIT("S0", 1, 1);
    res_sems[1] = (aw_sem_t)AW_SEM_INIT("S1", 2, 2);
}

static void *ralloc(size_t n) {
    void *p = xmalloc(n);
    if (R.nallocs == R.capallocs) {
        R.capallocs = R.capallocs ? 2 * R.capallocs : 64;
        R.allocs = realloc(R.allocs, (size_t)R.capallocs * sizeof *R.allocs);
        if (!R.allocs)
            abort();
    }
    R.allocs[R.nallocs++] = p;
    return p;
}

__attribute__((format(printf, 3, 4))) static void viol(int cls, const fz_node_t *n, const char *fmt,
                                                       ...) {
    fz_result_t *r = R.res;
    if (r->nv == 0)
        r->first = cls;
    r->nv++;
    r->classes |= 1u << cls;
    if (r->nv > 20)
        return; /* enough to read */
    va_list ap;
    va_start(ap, fmt);
    fprintf(R.log, "  [%s] ", fz_vnames[cls]);
    if (n)
        fprintf(R.log, "at %s#%d: ", kd[n->kind].name, n->id);
    vfprintf(R.log, fmt, ap);
    fputc('\n', R.log);
    va_end(ap);
}

/* -- error snapshots: the fuzzer's errors carry "fz#<serial>" -- */

static int err_serial(const aw_err_t *e) {
    int s;
    return sscanf(e->msg, "fz#%d", &s) == 1 ? s : 0;
}

static void ids_add(fz_snap_t *s, int id) {
    for (int i = 0; i < s->ids.n; i++)
        if (s->ids.v[i] == id) {
            s->dup = id;
            return;
        }
    if (s->ids.n < 64)
        s->ids.v[s->ids.n++] = id;
}

static void snap_rec(fz_snap_t *s, const aw_err_t *e, uint64_t mark, bool all) {
    for (; e && (all || e->seq > mark); e = e->context) {
        int id = err_serial(e);
        if (id)
            ids_add(s, id);
        for (const aw_err_t *m = e->members; m; m = m->next)
            snap_rec(s, m, 0, true);
    }
}

static uint64_t mark_now(void) {
    const aw_err_t *e = aw_err_current();
    return e ? e->seq : 0;
}

static fz_snap_t snap(uint64_t mark) {
    fz_snap_t s = {0};
    const aw_err_t *e = aw_err_current();
    s.top = e && e->seq > mark ? e->code : 0;
    snap_rec(&s, e, mark, false);
    /* Not every failure carries a serial: a group's AW_EGROUP over a child
     * that ended holding a lock (-EOWNERDEAD, raised by the runtime), say.
     * A cancel is no failure; a timeout is ambiguous (a nested deadline,
     * an exit over its grace) and left out. */
    for (; e && e->seq > mark && !s.rtfail; e = e->context)
        if (e->code != -ECANCELED && e->code != -ETIMEDOUT && !err_serial(e))
            s.rtfail = e->code;
    return s;
}

static fz_snap_t snap_err(const aw_err_t *e) {
    fz_snap_t s = {0};
    s.top = e ? e->code : 0;
    snap_rec(&s, e, 0, true);
    return s;
}

static bool has_id(const fz_snap_t *s, int id) {
    for (int i = 0; i < s->ids.n; i++)
        if (s->ids.v[i] == id)
            return true;
    return false;
}

static int missing(const fz_ids_t *want, const fz_snap_t *a) {
    for (int i = 0; i < want->n; i++)
        if (!has_id(a, want->v[i]) && !R.raised[want->v[i]].handled)
            return want->v[i];
    return 0;
}

static void handle_ids(const fz_snap_t *s) {
    for (int i = 0; i < s->ids.n; i++)
        R.raised[s->ids.v[i]].handled = 1;
}

static int raise_new(const fz_node_t *n, int code) {
    if (R.nraised + 1 >= R.capraised) {
        R.capraised = R.capraised ? 2 * R.capraised : 64;
        R.raised = realloc(R.raised, (size_t)R.capraised * sizeof *R.raised);
        if (!R.raised)
            abort();
    }
    int id = ++R.nraised;
    R.raised[id] = (fz_raised_t){.node = n->id, .code = code};
    return aw_raise(code, "fz#%d (node %d)", id, n->id);
}

/* -- the frame model -- */

static void push(fz_ctx_t *c, fz_frame_t *f) {
    f->parent = c->top;
    c->top = f;
}
static void pop(fz_ctx_t *c, fz_frame_t *f) { c->top = f->parent; }

/* A generator manager's cleanup runs in the user's exit shield, but the
 * scopes and groups it holds around its yield stay below the user's own
 * (core/scope.c, M3): a walk up from the generator's own code, or from a
 * frame entered during its cleanup, meets the exit shield at the
 * generator's link; one from a frame it held at its yield (a child of its
 * group) goes on to the user's frames. Walks do not nest: one flag. */
static bool walk_via;

static fz_frame_t *past_links(fz_frame_t *f) {
    while (f && f->kind == FR_LINK) {
        struct fz_gcm *gi = f->ctx->gcm;
        if (gi && gi->exiting && walk_via)
            return &gi->exit_shield;
        f = f->ctx->base;
    }
    return f;
}
static fz_frame_t *up(fz_frame_t *f) {
    walk_via |= f->cleanup;
    return past_links(f->parent);
}
static fz_frame_t *first(fz_ctx_t *c) {
    walk_via = c->gcm && c->gcm->exiting && c == &c->gcm->gctx;
    return past_links(c->top);
}
/* Is a frame above f cancelled, as f's own exit sees it (its children's
 * view), or, with no shield in between, the whole program? 1 yes, 0 no,
 * -1 not known: the program's deadline was moved to now, and whether a
 * point has marked it expired yet is the runtime's to know. */
static int above_cancelled(fz_frame_t *f) {
    walk_via = false;
    for (fz_frame_t *x = up(f); x; x = up(x)) {
        if (x->kind == FR_SCOPE || x->kind == FR_GROUP ? aw_scope_cancelled(x->s) : false)
            return 1;
        if (x->kind == FR_SHIELD || (x->kind == FR_SCOPE && x->skind == SC_SHIELD))
            return 0;
    }
    return !R.harness_hit ? 0 : R.p->harness_how == 1 ? 1 : -1;
}
/* The scope or group of frame f was left in c: is an outer cancel visible
 * to it (1, 0, -1 not known)? The task's view (aw_cancel_pending), except
 * for one a generator held around its yield, left in its cleanup: that
 * one's view is the user's (the whole program's injection included). */
static int left_outer(fz_ctx_t *c, fz_frame_t *f) {
    if (c->gcm && c->gcm->exiting && c == &c->gcm->gctx && !f->cleanup)
        return above_cancelled(f);
    return aw_cancel_pending();
}

static bool fr_cancelled(const fz_frame_t *f) {
    return f->kind == FR_SCOPE || f->kind == FR_GROUP ? aw_scope_cancelled(f->s) : false;
}
static bool fr_shield(const fz_frame_t *f) {
    return f->kind == FR_SHIELD || (f->kind == FR_SCOPE && f->skind == SC_SHIELD);
}

/* Is a scope or group of the user's chain (from c's top up to a shield)
 * cancelled? */
static bool user_cancelled(fz_ctx_t *c) {
    for (fz_frame_t *f = first(c); f; f = up(f)) {
        if (fr_cancelled(f))
            return true;
        if (fr_shield(f))
            break;
    }
    return false;
}

typedef struct pt {
    bool pend, exp, due;
    int exp_node;
} pt_t;

static void pre_point(fz_ctx_t *c, pt_t *p) {
    p->pend = aw_cancel_pending();
    p->exp = p->due = false;
    aw_ns_t now = aw_now();
    for (fz_frame_t *f = first(c); f; f = up(f)) {
        if (fr_cancelled(f) && !p->exp) {
            p->exp = true;
            p->exp_node = f->node;
        }
        if (f->kind == FR_SCOPE && f->rel >= 0 && !f->resched && f->t1 + f->rel <= now) {
            p->due = true;
            if (!p->exp_node)
                p->exp_node = f->node;
        }
        if (fr_shield(f))
            break;
    }
}

/* After a cancellation point: was a visible cancel delivered, whose was
 * it, and did a deadline fire early? */
static int post_point(fz_ctx_t *c, const fz_node_t *n, pt_t *p, int rc, const char *op) {
    if ((p->exp || p->due) && !p->pend && rc != -ECANCELED) {
        viol(FZ_V_COVER, n, "%s returned %s: scope/group #%d around it is %s, but the task "
             "does not see it", op, aw_err_name(rc), p->exp_node,
             p->exp ? "cancelled" : "past its deadline");
    } else if (p->pend && rc != -ECANCELED) {
        viol(FZ_V_NOT_DELIVERED, n, "%s returned %s while a cancel was pending", op,
             aw_err_name(rc));
    }
    if (rc < 0 && !aw_status())
        viol(FZ_V_NORECORD, n, "%s returned %s with no error recorded", op, aw_err_name(rc));
    if (rc != -ECANCELED)
        return rc;
    bool own = false, outside = false;
    aw_ns_t now = aw_now();
    for (fz_frame_t *f = first(c); f; f = up(f)) {
        if (fr_cancelled(f)) {
            if (f->task == c->task)
                own = true;
            else
                outside = true;
        }
        if (f->kind == FR_SCOPE && f->rel >= 0 && aw_scope_expired(f->s) && !f->checked &&
            !f->resched) {
            f->checked = 1;
            if (now < f->t0 + f->rel)
                viol(FZ_V_DEADLINE, n, "scope #%d expired %lld us before its deadline", f->node,
                     (long long)((f->t0 + f->rel - now) / 1000));
        }
        if (fr_shield(f))
            break;
    }
    if (outside || !own)
        c->task->saw_outside_cancel = 1;
    return rc;
}

static int exec_list(fz_ctx_t *c, const fz_list_t *l);

/* -- class managers -- */

static int cls_enter(void *self, void **out) {
    fz_inst_t *in = self;
    in->enters++;
    *out = in;
    int rc = exec_list(in->ctx, &in->n->l1);
    if (rc < 0)
        return rc;
    switch (in->n->a) {
    case ENTER_FAIL:
        return raise_new(in->n, codes[in->n->c]);
    case ENTER_OWN: {
        /* try/except inside __aenter__: what it raised it handles */
        uint64_t m = mark_now();
        raise_new(in->n, codes[in->n->c]);
        fz_snap_t s = snap(m);
        handle_ids(&s);
        aw_err_clear();
        break;
    }
    }
    in->enter_ok = 1;
    return 0;
}

static int cls_exit(void *self, const aw_err_t *err) {
    fz_inst_t *in = self;
    in->exits++;
    in->saw = snap_err(err);
    in->saw_top = err ? err->code : 0;
    fz_frame_t sh = {.kind = FR_SHIELD, .task = in->ctx->task};
    push(in->ctx, &sh);
    int rc = exec_list(in->ctx, &in->n->l2);
    pop(in->ctx, &sh);
    if (rc < 0) {
        in->exit_failed = rc;
        return rc;
    }
    switch (in->n->b) {
    case EXIT_SUPPRESS:
        /* a cancel cannot be suppressed: an exit handed one (with what
         * it unwound underneath) suppresses nothing */
        if (in->saw_top != -ECANCELED)
            handle_ids(&in->saw);
        in->suppressed = 1;
        return AW_SUPPRESS;
    case EXIT_FAIL:
        return in->exit_failed = raise_new(in->n, codes[in->n->c]);
    case EXIT_OWN:
    case EXIT_OWN_CODE: {
        uint64_t m = mark_now();
        if (raise_new(in->n, codes[in->n->c]) < 0) {
            fz_snap_t s = snap(m);
            handle_ids(&s);
            aw_err_clear(); /* the C spelling of try/except in __aexit__ (item 3) */
        }
        return in->n->b == EXIT_OWN ? 0 : in->saw_top;
    }
    }
    return 0;
}

static const aw_cm_type_t fz_class_type = {"fz_class", cls_enter, cls_exit};

static fz_inst_t *inst_new(const fz_node_t *n, fz_ctx_t *c) {
    fz_inst_t *in = ralloc(sizeof *in);
    in->n = n;
    in->ctx = c;
    return in;
}

/* What leaves a block whose manager propagates, suppresses or fails,
 * given what the body left (B) and what left (A). sticky: a cancel the
 * body left cannot be suppressed or replaced (else it is an error as
 * any other). */
static void check_rule(const fz_node_t *n, const char *what, int rule, int fail_code,
                       const fz_snap_t *B, const fz_snap_t *A, bool sticky) {
    int lost = missing(&B->ids, A);
    if (B->top == -ECANCELED && sticky) {
        if (A->top != -ECANCELED)
            viol(FZ_V_OUTCOME, n, "%s: the body left ECANCELED, %s left (a cancel cannot be "
                 "suppressed or replaced)", what, aw_err_name(A->top));
        if (lost)
            viol(FZ_V_LOST_ERROR, n, "%s: fz#%d (raised by node %d) vanished", what, lost,
                 R.raised[lost].node);
        return;
    }
    switch (rule) {
    case RULE_PROPAGATE:
        if (A->top != B->top)
            viol(B->top && !A->top ? FZ_V_LOST_ERROR : FZ_V_OUTCOME, n,
                 "%s propagates: the body left %s, %s left", what, aw_err_name(B->top),
                 aw_err_name(A->top));
        else if (lost)
            viol(FZ_V_LOST_ERROR, n, "%s: fz#%d (raised by node %d) vanished", what, lost,
                 R.raised[lost].node);
        break;
    case RULE_SUPPRESS:
        if (A->top != 0)
            viol(FZ_V_OUTCOME, n, "%s suppresses: the body left %s, %s left", what,
                 aw_err_name(B->top), aw_err_name(A->top));
        break;
    case RULE_FAIL:
        if (A->top != fail_code)
            viol(FZ_V_OUTCOME, n, "%s fails with %s: %s left (the body left %s)", what,
                 aw_err_name(fail_code), aw_err_name(A->top), aw_err_name(B->top));
        if (lost)
            viol(FZ_V_LOST_ERROR, n, "%s: fz#%d (raised by node %d) vanished under the exit's "
                 "failure", what, lost, R.raised[lost].node);
        break;
    }
    if (A->dup)
        viol(FZ_V_DUP, n, "%s: fz#%d appears twice in what left", what, A->dup);
}

static int exec_class(fz_ctx_t *c, const fz_node_t *n) {
    fz_inst_t *in = inst_new(n, c);
    uint64_t mark = mark_now();
    fz_snap_t B = {0};
    int ran = 0;
    c->withs++;
    aw_with (aw_cm(&fz_class_type, in)) {
        ran = 1;
        exec_list(c, &n->body);
        B = snap(mark);
    }
    c->withs--;
    fz_snap_t A = snap(mark);
    if (!ran) {
        if (in->exits)
            viol(FZ_V_EXIT_COUNT, n, "enter failed, yet exit ran %d time(s)", in->exits);
        if (!A.top)
            viol(FZ_V_NORECORD, n, "enter failed and nothing is pending");
        return A.top;
    }
    if (in->exits != 1) {
        viol(FZ_V_EXIT_COUNT, n, "exit ran %d times", in->exits);
        return A.top;
    }
    if (in->saw_top != B.top || missing(&B.ids, &in->saw))
        viol(FZ_V_EXIT_SAW, n, "exit was handed %s, the body left %s", aw_err_name(in->saw_top),
             aw_err_name(B.top));
    int rule = in->exit_failed ? RULE_FAIL
               : n->b == EXIT_SUPPRESS ? RULE_SUPPRESS
                                       : RULE_PROPAGATE;
    check_rule(n, "class manager", rule, in->exit_failed, &B, &A, true);
    return A.top;
}

/* -- generator managers -- */

static int gcm_fn(aw_gencm_t *g, void *arg) {
    fz_gcm_t *gi = arg;
    gi->started++;
    fz_ctx_t *c = &gi->gctx;
    int rc = exec_list(c, &gi->n->l1);
    gi->finished++;
    if (rc < 0)
        return gi->failed_rc = rc;
    if (!gi->yielded)
        return 0; /* "didn't yield" */
    switch (gi->n->b) {
    case RULE_SUPPRESS: {
        fz_snap_t s = snap_err(aw_gencm_error(g));
        /* the user's cancel cannot be suppressed; the generator's own
         * scope or group around its yield ends its own, and the generator
         * then suppresses what is left */
        if (s.top != -ECANCELED || !user_cancelled(gi->user))
            handle_ids(&s);
        gi->suppressed = 1;
        return 0;
    }
    case RULE_FAIL:
        return gi->failed_rc = raise_new(gi->n, codes[gi->n->c]);
    }
    return gi->yield_rc;
}

static int exec_gyield(fz_ctx_t *c, const fz_node_t *n) {
    fz_gcm_t *gi = c->gcm;
    if (!gi) /* not inside a generator manager (shrunk that way) */
        return 0;
    if (gi->yielded) {
        int rc = aw_gencm_yield(&gi->g, NULL); /* didn't stop */
        return rc < 0 && aw_status() ? rc : 0;
    }
    gi->yield_top = c->top;
    uint64_t m = mark_now();
    gi->yielded = 1;
    int rc = aw_gencm_yield(&gi->g, gi);
    gi->yield_rc = rc;
    fz_snap_t s = snap(m);
    if (rc < 0 && s.top != rc && c->withs > 0)
        viol(FZ_V_YIELD_ERR, n, "aw_gencm_yield returned %s, but it is not pending inside the "
             "generator: the %d manager(s) it holds open around its yield exit as if the block "
             "succeeded", aw_err_name(rc), c->withs);
    return s.top;
}

static fz_gcm_t *gcm_new(const fz_node_t *n, fz_ctx_t *c) {
    fz_gcm_t *gi = ralloc(sizeof *gi);
    gi->g = (aw_gencm_t)AW_GENCM_INIT(gcm_fn, gi);
    gi->g.name = "fz_gencm";
    gi->n = n;
    gi->user = c;
    gi->gctx.task = c->task;
    gi->gctx.gcm = gi;
    gi->gctx.link = (fz_frame_t){.kind = FR_LINK, .ctx = &gi->gctx};
    gi->gctx.top = &gi->gctx.link;
    gi->gctx.base = c->top;
    gi->exit_shield = (fz_frame_t){.kind = FR_SHIELD, .task = c->task};
    return gi;
}

static void gcm_exiting(fz_gcm_t *gi) {
    /* the cleanup runs in the user's exit shield (see up()) */
    gi->exit_shield.parent = gi->user->top;
    gi->exiting = 1;
}

/* The block's cancel is the generator's own: a scope the generator holds
 * around its yield (the frames from `gen` up to its link) is cancelled,
 * and none of the user's (from `user` up to a shield) is. The generator's
 * scope then ends its own cancel as scopes do (a fail-after's becomes
 * ETIMEDOUT, a move-on's nothing): Python's `async with timeout(): yield`. */
static bool gen_scope_cancel(fz_ctx_t *c, fz_frame_t *gen, fz_frame_t *user) {
    bool mine = false;
    for (fz_frame_t *f = gen; f && f->kind != FR_LINK; f = f->parent)
        mine |= fr_cancelled(f);
    if (!mine)
        return false;
    fz_frame_t *saved = c->top;
    c->top = user;
    bool theirs = false;
    for (fz_frame_t *f = first(c); f && !theirs; f = up(f)) {
        theirs = fr_cancelled(f);
        if (fr_shield(f))
            break;
    }
    c->top = saved;
    return !theirs;
}

static int exec_gencm(fz_ctx_t *c, const fz_node_t *n) {
    fz_gcm_t *gi = gcm_new(n, c);
    uint64_t mark = mark_now();
    fz_snap_t B = {0};
    bool gen_own = false;
    int ran = 0;
    c->withs++;
    aw_with (aw_cm(&aw_gencm_type, &gi->g)) {
        ran = 1;
        fz_frame_t *saved = c->top;
        c->top = gi->yield_top; /* the generator's scopes cover the block (item 4) */
        exec_list(c, &n->body);
        B = snap(mark);
        if (B.top == -ECANCELED)
            gen_own = gen_scope_cancel(c, gi->yield_top, saved);
        c->top = saved;
        gcm_exiting(gi);
    }
    c->withs--;
    /* is the block's cancel still visible to the user (gencm.c decides by
     * the same test, at its exit, with the generator's scopes unhooked)? */
    bool visible = aw_cancel_pending();
    fz_snap_t A = snap(mark);
    if (!ran) {
        if (!A.top)
            viol(FZ_V_NORECORD, n, "enter failed and nothing is pending");
        return A.top;
    }
    if (gi->finished != 1) {
        viol(FZ_V_EXIT_COUNT, n, "the generator's function finished %d times", gi->finished);
        return A.top;
    }
    if (gi->yield_rc != B.top)
        viol(FZ_V_EXIT_SAW, n, "aw_gencm_yield returned %s, the body left %s",
             aw_err_name(gi->yield_rc), aw_err_name(B.top));
    int rule = gi->failed_rc ? RULE_FAIL : gi->suppressed ? RULE_SUPPRESS : RULE_PROPAGATE;
    if (gen_own) /* the generator's scope decided, as scopes do */
        return A.top;
    if (B.top == -ECANCELED && !visible) {
        /* A cancel whose scope is gone: a nested generator's own scope
         * ended it, and that generator then returned its yield's code,
         * which re-raises it (gencm.h: such a generator should return
         * aw_status()). No scope is cancelled any more, so nothing is
         * lost if it is handled: gencm.c lets the generator's return
         * value decide, as for any error (Python: a generator manager may
         * suppress a Cancelled no scope accounts for). */
        check_rule(n, "generator manager (a cancel no scope accounts for)", rule, gi->failed_rc,
                   &B, &A, false);
        return A.top;
    }
    check_rule(n, "generator manager", rule, gi->failed_rc, &B, &A, true);
    return A.top;
}

/* -- exit stacks -- */

static int exec_xstack(fz_ctx_t *c, const fz_node_t *n) {
    uint64_t mark = mark_now();
    fz_snap_t B = {0};
    fz_inst_t *insts[16] = {0};
    fz_gcm_t *gcms[16] = {0};
    int ne = 0;
    bool suppressor = false;
    c->withs++;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < n->l1.n && ne < 16; i++, ne++) {
            const fz_node_t *e = n->l1.v[i];
            int rc;
            if (e->kind == K_GENCM) {
                gcms[ne] = gcm_new(e, c);
                rc = aw_exitstack_enter(st, aw_cm(&aw_gencm_type, &gcms[ne]->g), NULL);
                suppressor |= e->b == RULE_SUPPRESS;
            } else if (e->kind == K_CLASS) {
                insts[ne] = inst_new(e, c);
                rc = aw_exitstack_enter(st, aw_cm(&fz_class_type, insts[ne]), NULL);
                suppressor |= e->b == EXIT_SUPPRESS;
            } else {
                continue;
            }
            if (rc < 0) {
                ne++;
                goto out;
            }
        }
        exec_list(c, &n->body);
    out:
        B = snap(mark);
        for (int i = 0; i < ne; i++)
            if (gcms[i])
                gcm_exiting(gcms[i]);
    }
    c->withs--;
    fz_snap_t A = snap(mark);
    for (int i = 0; i < ne; i++) {
        if (insts[i] && insts[i]->exits != (insts[i]->enter_ok ? 1 : 0))
            viol(FZ_V_EXIT_COUNT, n, "entry %d (class): entered %s, exit ran %d time(s)", i,
                 insts[i]->enter_ok ? "ok" : "no", insts[i]->exits);
        if (gcms[i] && gcms[i]->started && gcms[i]->finished != 1)
            viol(FZ_V_EXIT_COUNT, n, "entry %d (gencm): its function finished %d times", i,
                 gcms[i]->finished);
    }
    if (!suppressor) {
        if (B.top == -ECANCELED && A.top != -ECANCELED)
            viol(FZ_V_OUTCOME, n, "exit stack: the body left ECANCELED, %s left",
                 aw_err_name(A.top));
        int lost = missing(&B.ids, &A);
        if (lost)
            viol(FZ_V_LOST_ERROR, n, "exit stack: fz#%d (raised by node %d) vanished", lost,
                 R.raised[lost].node);
    }
    return A.top;
}

/* -- scopes and groups -- */

static void live_set(int id, fz_frame_t *f) {
    if (id > 0 && id <= R.p->nids)
        R.live[id] = f;
}
static void live_clear(int id, fz_frame_t *f) {
    if (id > 0 && id <= R.p->nids && R.live[id] == f)
        R.live[id] = NULL;
}

/* Issue 10 item 5 (open): a scope or group that absorbs its own cancel
 * drops every error under it. Until it is fixed, with the `absorb`
 * feature off, what vanished that way counts as absorbed (handled): the
 * rest of the run is still checked. */
static void pending_absorb(const fz_ids_t *b, const fz_ids_t *ch, const fz_snap_t *A) {
    if (R.p->features & FZ_F_PENDING_ABSORB)
        return;
    for (int k = 0; k < 2; k++) {
        const fz_ids_t *ids = k ? ch : b;
        for (int i = 0; ids && i < ids->n; i++)
            if (!has_id(A, ids->v[i]))
                R.raised[ids->v[i]].handled = 1;
    }
}

static int exec_scope(fz_ctx_t *c, const fz_node_t *n) {
    /* a cancel scope has no deadline (a file may still say `us=`) */
    int us = n->a == SC_CANCEL ? -1 : n->b;
    fz_frame_t f = {.kind = FR_SCOPE, .skind = n->a, .node = n->id, .task = c->task,
                    .rel = us >= 0 ? AW_US(us) : -1,
                    .cleanup = c->gcm && c->gcm->exiting && c == &c->gcm->gctx};
    aw_ns_t rel = us >= 0 ? AW_US(us) : AW_NEVER;
    uint64_t mark = mark_now();
    fz_snap_t B = {0};
    bool cancelled = false, expired = false, ran = false;
    aw_cm_t cm = n->a == SC_CANCEL     ? aw_cancel_scope()
                 : n->a == SC_MOVEON   ? aw_move_on_after(rel)
                 : n->a == SC_FAILAFTER ? aw_fail_after(rel)
                                        : aw_shield(rel);
    f.t0 = aw_now();
    c->withs++;
    aw_with (aw_scope_t *s, cm) {
        ran = true;
        f.t1 = aw_now();
        f.s = s;
        push(c, &f);
        live_set(n->id, &f);
        exec_list(c, &n->body);
        live_clear(n->id, &f);
        pop(c, &f);
        B = snap(mark);
        cancelled = aw_scope_cancelled(s);
        expired = aw_scope_expired(s);
    }
    c->withs--;
    int outer3 = left_outer(c, &f);
    bool outer = outer3 > 0, maybe_outer = outer3 != 0;
    fz_snap_t A = snap(mark);
    if (!ran)
        return A.top;
    /* (a shield's exit does not look above it: it absorbs its own cancel
     * whatever is cancelled outside) */
    if (B.top == -ECANCELED && cancelled && (!outer || n->a == SC_SHIELD) &&
        (n->a != SC_FAILAFTER || !expired))
        pending_absorb(&B.ids, NULL, &A);
    int lost = missing(&B.ids, &A);
    if (lost)
        viol(FZ_V_LOST_ERROR, n, "scope (%s, %s): fz#%d (raised by node %d) vanished: a scope "
             "absorbs its own cancel only", v_scope[n->a], cancelled ? "cancelled" : "not cancelled",
             lost, R.raised[lost].node);
    if (B.top && outer && !A.top && n->a != SC_SHIELD)
        viol(FZ_V_LOST_CANCEL, n, "scope left clean with %s from the body while an outer scope "
             "is cancelled", aw_err_name(B.top));
    if (n->a == SC_FAILAFTER && expired && !maybe_outer && (!B.top || B.top == -ECANCELED)) {
        /* a failure raised while the scope's cancel unwound the block
         * leaves on top, the timeout in its chain (issue 10 item 5) */
        bool failure = B.rtfail != 0;
        for (int i = 0; i < B.ids.n; i++)
            failure |= !R.raised[B.ids.v[i]].handled;
        if (!failure && A.top != -ETIMEDOUT)
            viol(FZ_V_OUTCOME, n, "fail-after expired: %s left, not ETIMEDOUT", aw_err_name(A.top));
        else if (failure && (!A.top || A.top == -ETIMEDOUT || A.top == -ECANCELED))
            viol(FZ_V_OUTCOME, n, "fail-after expired while a failure unwound the block: %s "
                 "left on top, not the failure", aw_err_name(A.top));
        else if (failure && !aw_err_find(aw_err_current(), -ETIMEDOUT))
            viol(FZ_V_OUTCOME, n, "fail-after expired while a failure unwound the block: "
                 "ETIMEDOUT is not in the chain of %s", aw_err_name(A.top));
    }
    if (!B.top && !(n->a == SC_FAILAFTER && expired) && A.top)
        viol(FZ_V_OUTCOME, n, "the body left clean, %s left the scope", aw_err_name(A.top));
    if (A.dup)
        viol(FZ_V_DUP, n, "scope: fz#%d appears twice in what left", A.dup);
    return A.top;
}

static void frame_sync_init(fz_frame_t *f) {
    f->ev = (aw_event_t)AW_EVENT_INIT;
    f->cl = (aw_lock_t)AW_LOCK_INIT("fz_cond");
    f->cv = (aw_cond_t)AW_COND_INIT(&f->cl);
}

static int exec_group(fz_ctx_t *c, const fz_node_t *n) {
    fz_frame_t f = {.kind = FR_GROUP, .node = n->id, .task = c->task, .rel = -1,
                    .cleanup = c->gcm && c->gcm->exiting && c == &c->gcm->gctx};
    bool gcancelled = false;
    frame_sync_init(&f);
    uint64_t mark = mark_now();
    fz_snap_t B = {0};
    c->withs++;
    aw_with (aw_group_t *g, aw_group()) {
        f.g = g;
        f.s = &g->scope;
        push(c, &f);
        live_set(n->id, &f);
        exec_list(c, &n->body);
        pop(c, &f);
        B = snap(mark);
        /* what its exit decides "own cancel" by (the group is gone after) */
        gcancelled = aw_scope_cancelled(&g->scope);
    }
    live_clear(n->id, &f);
    c->withs--;
    bool outer = left_outer(c, &f) > 0;
    fz_snap_t A = snap(mark);
    if (B.top == -ECANCELED && gcancelled && !outer)
        pending_absorb(&B.ids, &f.child_ids, &A);
    int lost = missing(&B.ids, &A);
    if (lost)
        viol(FZ_V_LOST_ERROR, n, "group: fz#%d (raised by node %d in the body) vanished", lost,
             R.raised[lost].node);
    lost = missing(&f.child_ids, &A);
    if (lost)
        viol(FZ_V_LOST_ERROR, n, "group: fz#%d (a child's failure, raised by node %d) vanished",
             lost, R.raised[lost].node);
    if (outer && !A.top)
        viol(FZ_V_LOST_CANCEL, n, "group left clean while an outer scope is cancelled");
    if (A.dup)
        viol(FZ_V_DUP, n, "group: fz#%d appears twice in what left", A.dup);
    if (aw_lock_owner(&f.cl) || f.cl.waiters.head || f.cv.waiters.head)
        viol(FZ_V_LOCKS, n, "the group's condition lock is %s after the group",
             aw_lock_owner(&f.cl) ? "held" : "awaited");
    return A.top;
}

static fz_frame_t *near_group(fz_ctx_t *c, bool own) {
    for (fz_frame_t *f = first(c); f; f = up(f))
        if (f->kind == FR_GROUP && (f->task == c->task) == own)
            return f;
    return NULL;
}

static int child_fn(void *arg) {
    fz_child_t *ch = arg;
    fz_ctx_t *c = &ch->ctx;
    c->task = &ch->task;
    c->top = ch->gf;
    int rc = exec_list(c, &ch->n->body);
    int status = rc < 0 ? aw_status() : 0;
    if (ch->setter) {
        fz_frame_t *f = ch->gf;
        aw_event_set(&f->ev);
        aw_with (aw_shield(AW_NEVER))
        aw_with (aw_locked(&f->cl)) {
            f->cv_flag = 1;
            aw_cond_notify(&f->cv, 1);
        }
    }
    status = aw_status();
    fz_snap_t s = snap(0);
    if (status < 0)
        for (int i = 0; i < s.ids.n; i++)
            if (ch->gf->child_ids.n < 64)
                ch->gf->child_ids.v[ch->gf->child_ids.n++] = s.ids.v[i];
    if (ch->task.saw_outside_cancel && status == 0)
        viol(FZ_V_LOST_CANCEL, ch->n, "a child saw a cancel from outside and ended with status 0");
    return status;
}

static int exec_spawn(fz_ctx_t *c, const fz_node_t *n) {
    fz_frame_t *gf = near_group(c, n->kind != K_SPAWN_OUTER);
    if (!gf)
        return 0;
    fz_child_t *ch = ralloc(sizeof *ch);
    ch->n = n;
    ch->gf = gf;
    ch->task.node = n->id;
    ch->setter = n->kind == K_SETTER;
    int rc = aw_spawn(gf->g, child_fn, ch, NULL);
    if (rc < 0) {
        viol(FZ_V_SPAWN, n, "aw_spawn into the open group #%d: %s", gf->node, aw_err_name(rc));
        return rc;
    }
    if (ch->setter)
        gf->ev_armed = gf->cv_armed = 1;
    return 0;
}

/* -- sync -- */

static int exec_lock(fz_ctx_t *c, const fz_node_t *n) {
    uint64_t mark = mark_now();
    pt_t pt;
    pre_point(c, &pt);
    aw_cm_t cm = n->a < 3 ? aw_locked(&res_locks[n->a]) : aw_sem_held(&res_sems[n->a - 3]);
    fz_snap_t B = {0};
    int ran = 0;
    c->withs++;
    aw_with (cm) {
        ran = 1;
        exec_list(c, &n->body);
        B = snap(mark);
    }
    c->withs--;
    fz_snap_t A = snap(mark);
    if (!ran) {
        post_point(c, n, &pt, A.top, "lock/semaphore acquire");
        return A.top;
    }
    post_point(c, n, &pt, 0, "lock/semaphore acquire");
    check_rule(n, "lock", RULE_PROPAGATE, 0, &B, &A, true);
    return A.top;
}

static int exec_condwait(fz_ctx_t *c, const fz_node_t *n) {
    fz_frame_t *f = NULL;
    for (fz_frame_t *x = first(c); x; x = up(x))
        if (x->kind == FR_GROUP && x->cv_armed) {
            f = x;
            break;
        }
    if (!f)
        return 0;
    uint64_t mark = mark_now();
    bool baton = !(R.p->features & FZ_F_PENDING_COND_NOBATON);
    aw_with (aw_locked(&f->cl)) {
        bool cancelled = false;
        while (!f->cv_flag) {
            pt_t pt;
            pre_point(c, &pt);
            int rc = post_point(c, n, &pt, aw_cond_wait(&f->cv), "aw_cond_wait");
            if (rc < 0) {
                cancelled = true;
                break;
            }
        }
        /* pass the notification on to the next waiter: a waiter that
         * leaves on a cancel does not, as the natural code does not
         * (`if (wait() < 0) leave;`) -- item 7: the notification it was
         * given must not be lost with it */
        if (!cancelled || baton)
            aw_cond_notify(&f->cv, 1);
    }
    return snap(mark).top;
}

/* -- async generators -- */

static int agen_fn(aw_gen_t *g, void *arg) {
    fz_agen_t *ai = arg;
    ai->started++;
    ai->g = g;
    int rc = exec_list(&ai->gctx, &ai->n->l1);
    ai->finished++;
    return rc < 0 ? rc : 0;
}

static int exec_ayield(fz_ctx_t *c, const fz_node_t *n) {
    fz_agen_t *ai = c->agen;
    if (!ai)
        return 0;
    for (int i = 0; i < n->a; i++) {
        int rc = exec_list(c, &n->body);
        if (rc < 0)
            return rc;
        uint64_t m = mark_now();
        rc = aw_gen_yield(ai->g, &ai->n);
        if (rc == 0)
            continue;
        fz_snap_t s = snap(m);
        if (rc == -AW_ECLOSED) {
            ai->closed = 1;
            if (s.top != rc && c->withs > 0)
                viol(FZ_V_YIELD_ERR, n, "aw_gen_yield returned AW_ECLOSED with nothing pending: "
                     "the %d manager(s) the generator holds open around its yield exit as if "
                     "nothing happened", c->withs);
        }
        return s.top; /* the documented `if (aw_gen_yield(..) < 0) break;` */
    }
    return 0;
}

static int exec_agen(fz_ctx_t *c, const fz_node_t *n) {
    fz_agen_t *ai = ralloc(sizeof *ai);
    ai->n = n;
    ai->user = c;
    ai->gctx.task = c->task;
    ai->gctx.agen = ai;
    ai->gctx.link = (fz_frame_t){.kind = FR_LINK, .ctx = &ai->gctx};
    ai->gctx.top = &ai->gctx.link;
    ai->gctx.base = c->top;
    ai->close_shield = (fz_frame_t){.kind = FR_SHIELD, .task = c->task, .parent = c->top};
    uint64_t mark = mark_now();
    int item = 0;
    aw_for (void *v, aw_gen(agen_fn, ai)) {
        int rc = exec_list(c, &n->body);
        if (rc < 0 || item++ == n->b) {
            ai->gctx.base = &ai->close_shield; /* closed: its cleanup is shielded */
            break;
        }
    }
    fz_snap_t A = snap(mark);
    if (ai->started && ai->finished != 1)
        viol(FZ_V_EXIT_COUNT, n, "the async generator finished %d times after its for",
             ai->finished);
    return A.top;
}

/* -- statements -- */

static int exec_stmt(fz_ctx_t *c, const fz_node_t *n) {
    pt_t pt;
    int rc;
    switch (n->kind) {
    case K_YIELD:
        pre_point(c, &pt);
        return post_point(c, n, &pt, aw_yield(), "aw_yield");
    case K_SLEEP:
        pre_point(c, &pt);
        return post_point(c, n, &pt, aw_sleep(AW_US(n->a)), "aw_sleep");
    case K_CHECKPOINT:
        pre_point(c, &pt);
        return post_point(c, n, &pt, aw_checkpoint(), "aw_checkpoint");
    case K_RAISE:
        return raise_new(n, codes[n->a]);
    case K_CATCH: {
        uint64_t m = mark_now();
        rc = exec_list(c, &n->body);
        const aw_err_t *e = aw_err_current();
        if (rc < 0 && e && e->code == codes[n->a] && !aw_err_find(e, -ECANCELED)) {
            fz_snap_t s = snap(m);
            handle_ids(&s);
            aw_err_clear(); /* except CODE: handled */
            return 0;
        }
        return rc;
    }
    case K_CLASS:
        return exec_class(c, n);
    case K_GENCM:
        return exec_gencm(c, n);
    case K_GYIELD:
        return exec_gyield(c, n);
    case K_XSTACK:
        return exec_xstack(c, n);
    case K_SCOPE:
        return exec_scope(c, n);
    case K_SCOPE_CANCEL:
        for (fz_frame_t *f = first(c); f; f = up(f))
            if (f->kind == FR_SCOPE && f->task == c->task && f->skind != SC_SHIELD) {
                aw_scope_cancel(f->s);
                break;
            }
        return 0;
    case K_GROUP:
        return exec_group(c, n);
    case K_SPAWN:
    case K_SPAWN_OUTER:
    case K_SETTER:
        return exec_spawn(c, n);
    case K_GROUP_CANCEL: {
        fz_frame_t *f = near_group(c, true);
        if (f)
            aw_group_cancel(f->g);
        return 0;
    }
    case K_LOCK:
        return exec_lock(c, n);
    case K_EVWAIT:
        for (fz_frame_t *f = first(c); f; f = up(f))
            if (f->kind == FR_GROUP && f->ev_armed) {
                pre_point(c, &pt);
                return post_point(c, n, &pt, aw_event_wait(&f->ev), "aw_event_wait");
            }
        return 0;
    case K_CONDWAIT:
        return exec_condwait(c, n);
    case K_AGEN:
        return exec_agen(c, n);
    case K_AYIELD:
        return exec_ayield(c, n);
    case K_DUMP:
        aw_loop_dump(R.devnull);
        return 0;
    case K_LEAKLOCK:
        pre_point(c, &pt);
        rc = post_point(c, n, &pt, aw_lock_acquire(&res_locks[n->a < 3 ? n->a : 0]),
                        "aw_lock_acquire");
        return rc == -EDEADLK ? aw_status() : rc;
    }
    return 0;
}

static int exec_list(fz_ctx_t *c, const fz_list_t *l) {
    for (int i = 0; i < l->n; i++) {
        int rc = exec_stmt(c, l->v[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* -- a run -- */

static void fz_hook(const aw_trace_event_t *ev, void *arg) {
    (void)arg;
    R.events++;
    if (ev->kind != AW_TRACE_POINT)
        return;
    R.points++;
    const fz_prog_t *p = R.p;
    if (p->harness_how && R.points >= p->harness_k)
        R.harness_hit = 1; /* the checker's hook ran first: it injected */
    for (int i = 0; i < p->ninj; i++) {
        if (p->inj[i].point != R.points || p->inj[i].target <= 0 || p->inj[i].target > p->nids)
            continue;
        fz_frame_t *f = R.live[p->inj[i].target];
        if (!f)
            continue;
        R.res->landed++;
        if (f->kind == FR_GROUP) {
            aw_group_cancel(f->g);
        } else if (p->inj[i].how == 0) {
            aw_scope_cancel(f->s);
        } else {
            f->resched = 1;
            aw_scope_reschedule(f->s, aw_now());
        }
    }
    /* a dump at about one point in 16 (a task about to check for a cancel
     * is a state users can dump from) */
    if (p->features & FZ_F_DUMP) {
        uint64_t h = (p->seed ^ (uint64_t)R.points) * 0x9e3779b97f4a7c15ull;
        if ((h >> 60) == 0) {
            R.dumps++;
            aw_loop_dump(R.devnull);
        }
    }
}

static int fz_main(void *arg) {
    const fz_prog_t *p = arg;
    fz_task_t task = {0};
    fz_ctx_t c = {.task = &task};
    int rc = exec_list(&c, &p->main);
    (void)rc;
    int status = aw_status();
    fz_snap_t fin = snap(0);
    for (int id = 1; id <= R.nraised; id++)
        if (!R.raised[id].handled && !has_id(&fin, id)) {
            char what[64];
            snprintf(what, sizeof what, "node %d", R.raised[id].node);
            viol(FZ_V_LOST_ERROR, NULL, "fz#%d (%s, raised by %s) is neither handled nor in what "
                 "the program left with (%s)", id, aw_err_name(R.raised[id].code), what,
                 aw_err_name(status));
        }
    if (task.saw_outside_cancel && status == 0)
        viol(FZ_V_LOST_CANCEL, NULL, "the main task saw a cancel from outside and ended with "
             "status 0");
    return status;
}

void fz_run(const fz_prog_t *p, fz_result_t *res) {
    memset(res, 0, sizeof *res);
    res->first = -1;
    fz_runs++;
    memset(&R, 0, sizeof R);
    R.p = p;
    R.res = res;
    R.log = open_memstream(&R.logbuf, &R.loglen);
    R.devnull = fopen("/dev/null", "w");
    R.live = xmalloc((size_t)(p->nids + 2) * sizeof *R.live);
    fz_current_seed = p->seed;
    char *tlog = NULL, *errs = NULL;
    size_t tlen = 0, elen = 0;
    FILE *tf = open_memstream(&tlog, &tlen);
    /* one guarded slab, then canaries: a loop per program makes carving 64
     * guarded stacks (64 mprotects) the main cost of a run */
    aw_loop_opts_t opts = {.shutdown_grace = AW_SEC(2), .guarded_stacks = 1};
    aw_testing_t t = {.name = "fuzz", .fn = fz_main, .arg = (void *)p, .reset = res_reset,
                      .locks = {&res_locks[0], &res_locks[1], &res_locks[2]},
                      .sems = {&res_sems[0], &res_sems[1]}, .trace = fz_hook, .opts = &opts,
                      .log = tf, .keep_stacks = true};
    /* the runtime's reports (deadlock, loop close) go to stderr: catch them */
    FILE *saved = stderr, *ef = open_memstream(&errs, &elen);
    stderr = ef;
    aw_testing_result_t tr;
    /* A livelock (the loop spinning, nothing to report as a deadlock) must
     * not spin the campaign for ever: no program runs near a minute, so
     * SIGALRM ends it (main.c names the seed; a Criterion test fails). */
    alarm(60);
    int tv = aw_testing_run_once(&t, (aw_testing_inject_t)p->harness_how, p->harness_k, &tr);
    alarm(0);
    stderr = saved;
    fclose(ef);
    fclose(tf);
    res->points = tr.points;
    res->status = tr.status;
    res->enters = tr.enters;
    if (tv > 0)
        viol(FZ_V_TESTING, NULL, "%d violation(s) of the checker:\n%s", tv, tlog);
    if (elen) {
        bool dead = strstr(errs, "deadlock") != NULL;
        viol(dead ? FZ_V_HANG : FZ_V_REPORT, NULL, "the runtime reported:\n%s", errs);
    }
    free(tlog);
    free(errs);
    fclose(R.devnull);
    fclose(R.log);
    res->log = R.logbuf;
    for (int i = 0; i < R.nallocs; i++)
        free(R.allocs[i]);
    free(R.allocs);
    free(R.raised);
    free(R.live);
    memset(&R, 0, sizeof R);
}

void fz_result_free(fz_result_t *res) {
    free(res->log);
    res->log = NULL;
}

/* ---- the shrinker ---- */

/* The k-th list of the program in preorder (main first). */
typedef struct lref {
    fz_list_t *l;
    int k;
} lref_t;

static fz_list_t *nth_list_in(fz_list_t *l, int *k) {
    if ((*k)-- == 0)
        return l;
    for (int i = 0; i < l->n; i++) {
        fz_node_t *n = l->v[i];
        fz_list_t *r;
        if ((r = nth_list_in(&n->l1, k)) || (r = nth_list_in(&n->l2, k)) ||
            (r = nth_list_in(&n->body, k)))
            return r;
    }
    return NULL;
}
static fz_list_t *nth_list(fz_prog_t *p, int k) { return nth_list_in(&p->main, &k); }

static bool reproduces(const fz_prog_t *p, int v, int tries) {
    for (int i = 0; i < tries; i++) {
        fz_result_t r;
        fz_run(p, &r);
        bool hit = r.classes & (1u << v);
        fz_result_free(&r);
        if (hit)
            return true;
    }
    return false;
}

/* Candidate k: 0..ninj: drop an injection; then per list, per statement:
 * delete it, splice its body in its place, simplify its parameters. */
static bool try_candidate(fz_prog_t **pp, int v, int tries, int *progress) {
    fz_prog_t *p = *pp;
    for (int i = 0; i < p->ninj + (p->harness_how != 0); i++) {
        fz_prog_t *c = fz_prog_clone(p);
        if (i < c->ninj) {
            c->inj[i] = c->inj[--c->ninj];
        } else {
            c->harness_how = c->harness_k = 0;
        }
        if (reproduces(c, v, tries)) {
            fz_prog_free(p);
            free(p);
            *pp = c;
            ++*progress;
            return true;
        }
        fz_prog_free(c);
        free(c);
    }
    for (int li = 0;; li++) {
        fz_list_t *l = nth_list(p, li);
        if (!l)
            break;
        for (int si = 0; si < l->n; si++) {
            for (int op = 0; op < 4; op++) {
                fz_prog_t *c = fz_prog_clone(p);
                fz_list_t *cl = nth_list(c, li);
                fz_node_t *n = cl->v[si];
                bool ok = false;
                if (op == 0) { /* delete */
                    memmove(&cl->v[si], &cl->v[si + 1], (size_t)(cl->n - si - 1) * sizeof *cl->v);
                    cl->n--;
                    node_free(n);
                    ok = true;
                } else if (op == 1 && n->body.n && n->kind != K_GYIELD && n->kind != K_AYIELD) {
                    /* splice the body in place of the node */
                    fz_list_t b = n->body;
                    n->body = (fz_list_t){0};
                    fz_node_t **v = xmalloc((size_t)(cl->n - 1 + b.n) * sizeof *v);
                    memcpy(v, cl->v, (size_t)si * sizeof *v);
                    memcpy(v + si, b.v, (size_t)b.n * sizeof *v);
                    memcpy(v + si + b.n, cl->v + si + 1, (size_t)(cl->n - si - 1) * sizeof *v);
                    free(cl->v);
                    free(b.v);
                    cl->v = v;
                    cl->n = cl->n - 1 + b.n;
                    node_free(n);
                    ok = true;
                } else if (op == 2) { /* simplify parameters */
                    if (n->kind == K_CLASS && (n->a || n->b))
                        n->a = n->b = 0, ok = true;
                    else if (n->kind == K_GENCM && n->b)
                        n->b = 0, ok = true;
                    else if (n->kind == K_SCOPE && n->b > 0)
                        n->b = -1, ok = true;
                    else if (n->kind == K_SLEEP && n->a)
                        n->a = 0, ok = true;
                    else if (n->kind == K_AYIELD && n->a > 1)
                        n->a--, ok = true;
                    else if (n->kind == K_AGEN && n->b >= 0)
                        n->b = -1, ok = true;
                } else if (op == 3 && (n->l1.n || n->l2.n) && n->kind != K_GENCM &&
                           n->kind != K_AGEN && n->kind != K_XSTACK) {
                    list_free(&n->l1);
                    list_free(&n->l2);
                    ok = true;
                }
                if (ok && reproduces(c, v, tries)) {
                    fz_prog_free(p);
                    free(p);
                    *pp = c;
                    ++*progress;
                    return true;
                }
                fz_prog_free(c);
                free(c);
            }
        }
    }
    return false;
}

int fz_shrink(fz_prog_t *p, int v, int tries, FILE *progress) {
    fz_prog_t *cur = fz_prog_clone(p);
    int steps = 0;
    while (try_candidate(&cur, v, tries, &steps))
        ;
    if (progress)
        fprintf(progress, "fuzz: shrunk in %d steps to %d nodes\n", steps, fz_count_nodes(cur));
    fz_prog_free(p);
    *p = *cur;
    free(cur);
    return steps;
}

/* ---- classifying a finding by the open item it hits ---- */

static bool list_has(const fz_list_t *l, int kind) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i]->kind == kind || list_has(&l->v[i]->body, kind) ||
            list_has(&l->v[i]->l1, kind) || list_has(&l->v[i]->l2, kind))
            return true;
    return false;
}

static void pending_used(const fz_list_t *l, unsigned *items, bool in_exit) {
    for (int i = 0; i < l->n; i++) {
        const fz_node_t *n = l->v[i];
        if (n->kind == K_CLASS && (n->a == ENTER_OWN || n->b == EXIT_OWN || n->b == EXIT_OWN_CODE))
            *items |= 1u << 3;
        if (n->kind == K_CATCH && in_exit)
            *items |= 1u << 3;
        if (n->kind == K_GENCM || n->kind == K_AGEN) {
            bool after = false;
            for (int j = 0; j < n->l1.n; j++) {
                const fz_node_t *w = n->l1.v[j];
                if (w->kind == K_GYIELD || w->kind == K_AYIELD)
                    after = true;
                else if (list_has(&w->body, n->kind == K_GENCM ? K_GYIELD : K_AYIELD) &&
                         w->kind != K_SCOPE)
                    *items |= 1u << 4, after = true;
                else if (list_has(&w->body, K_GYIELD))
                    *items |= 1u << 4, after = true;
                if (after && w->kind == K_CATCH)
                    *items |= 1u << 3;
            }
        }
        if (n->kind == K_LEAKLOCK)
            *items |= 1u << 6;
        if (n->kind == K_SPAWN_OUTER)
            *items |= 1u << 8;
        pending_used(&n->body, items, in_exit);
        pending_used(&n->l1, items, false);
        pending_used(&n->l2, items, n->kind == K_CLASS);
    }
}

unsigned fz_classify(const fz_prog_t *p, int v, int tries) {
    unsigned items = 0;
    pending_used(&p->main, &items, false);
    /* the behaviour switches: needed if the violation goes away without */
    const struct {
        unsigned f;
        int item;
    } sw[] = {{FZ_F_PENDING_ABSORB, 5}, {FZ_F_PENDING_COND_NOBATON, 7}};
    for (int i = 0; i < 2; i++) {
        if (!(p->features & sw[i].f))
            continue;
        fz_prog_t *c = fz_prog_clone(p);
        c->features &= ~sw[i].f;
        if (!reproduces(c, v, tries))
            items |= 1u << sw[i].item;
        fz_prog_free(c);
        free(c);
    }
    return items;
}

static void targets_in(const fz_list_t *l, int *ids, int max, int *n) {
    for (int i = 0; i < l->n; i++) {
        const fz_node_t *x = l->v[i];
        if ((x->kind == K_SCOPE || x->kind == K_GROUP) && *n < max)
            ids[(*n)++] = x->id;
        targets_in(&x->body, ids, max, n);
        targets_in(&x->l1, ids, max, n);
        targets_in(&x->l2, ids, max, n);
    }
}

int fz_targets(const fz_prog_t *p, int *ids, int max) {
    int n = 0;
    targets_in(&p->main, ids, max, &n);
    return n;
}
