/* gencm.c: generator-style managers. The generator function runs as a
 * task of its own that belongs to no group: its root scope hangs below the
 * user task's innermost scope (re-pointed at enter and at exit, so the
 * cleanup sits inside the user's exit shield), and the user task lists it
 * as its delegate so that cancels reach it. The user waits for it, not
 * cancellably: the generator itself sees the cancel through its chain and
 * decides (so enter is atomic with respect to cancellation).
 * Cost: one spawn from the stack cache and four switches per use. */
#include <awith/gencm.h>

#include "../core/core.h"

static int aw__gencm_main(void *p) {
    aw_gencm_t *g = p;
    return g->fn(g, g->arg);
}

/* SEMANTICS C10 (PEP 479's rule for StopAsyncIteration): the generator
 * itself (not the block) ended with -AW_ECLOSED, the runtime's "generator
 * finished" signal. Passed on as is, it would end an enclosing aw_for's
 * generator as if it had finished cleanly; it becomes a protocol error
 * with the original record (already moved to the user) as its context. */
static int aw__gencm_closed_signal(aw_gencm_t *g) {
    return aw_raise(-AW_EPROTOCOL, "generator manager '%s' raised %s, the generator-closed "
                    "signal, without being closed", g->name, aw_err_name(-AW_ECLOSED));
}

/* SEMANTICS M3: the block runs "inside" the generator's yield, so the
 * scopes and groups the generator holds open there cover it, as in Trio
 * and asyncio: while the block runs, the user's scope chain goes through
 * the generator's (innermost scope .. its root scope, whose parent is the
 * user's scope at enter). Deadlines there cut the block's waits (the user's
 * timer is armed from its chain); a cancel of one of them (a group whose
 * child failed) wakes the user through gen->covered. At exit the chain is
 * unhooked before the generator runs its cleanup (see the exit). */
static void aw__gencm_cover(aw_gencm_t *g, aw_task_t *u, aw_task_t *gen) {
    g->uscope = NULL;
    if (gen->scope == &gen->root)
        return; /* nothing to cover with: the common case costs nothing */
    g->uscope = u->scope;
    u->scope = gen->scope;
    gen->covered = u;
    u->ncovers++; /* a cancel of u's scopes reaches gen's groups' children */
}

/* Is a cancel visible at the user's own chain (below its exit shield)? */
static bool aw__gencm_cancel_visible(const aw_task_t *u) {
    const aw_scope_t *s = u->scope;
    if (s && s->shield && s->kind == AW__SCOPE_SHIELD)
        s = s->parent; /* the exit's own shield */
    return aw__scope_walk(s).cancelled;
}

static int aw__gencm_enter(void *self, void **out) {
    aw_gencm_t *g = self;
    aw_task_t *u = aw__task_cur();
    if (g->state != AW__GENCM_NEW)
        return aw_raise(-EALREADY, "generator manager '%s' was already used; make a new instance",
                        g->name ? g->name : "?");
    g->user = u;
    g->state = AW__GENCM_ENTER;
    g->gen = aw__task_new(u->loop, aw__gencm_main, g, 0, g->name, __FILE__, __LINE__);
    if (!g->gen) {
        g->state = AW__GENCM_DONE;
        return aw_raise(-ENOMEM, "no memory for generator manager '%s'", g->name);
    }
    g->gen->joinable = 1;
    aw__delegate_run(u, g->gen);
    if (g->state == AW__GENCM_YIELDED) {
        *out = g->value;
        aw__gencm_cover(g, u, g->gen);
        return 0;
    }
    /* returned without yielding */
    int st = g->gen->status;
    aw__err_move(u, g->gen);
    aw__task_release(g->gen);
    g->gen = NULL;
    g->state = AW__GENCM_DONE;
    if (st == -AW_ECLOSED) /* C10: see aw__gencm_closed_signal */
        return aw__gencm_closed_signal(g);
    if (st < 0)
        return st;
    return aw_raise(-AW_EPROTOCOL, "generator manager '%s' didn't yield", g->name);
}

/* SEMANTICS M3 (Python throws the exception in at the yield): the block's
 * error becomes pending inside the generator, as a copy of its record on
 * top of the generator's chain, so every manager the generator holds open
 * around its yield (a with, an exit stack, a transaction) gets it in its
 * exit; a clear in the generator's cleanup does not drop it (M2: the
 * generator decides by what it returns). */
static void aw__gencm_throw(aw_gencm_t *g, aw_task_t *gen, const aw_err_t *err) {
    g->thrown = NULL;
    if (!err)
        return;
    aw_err_t *c = aw__err_copy_top(err);
    if (!c)
        return; /* out of memory: the code still reaches it through the yield */
    c->seq = ++gen->errseq;
    c->context = gen->err;
    gen->err = c;
    gen->err_floor = c->seq;
    g->thrown = c;
    g->thrown_seq = c->seq;
}

/* Take the thrown copy out of the generator's chain (if its managers left
 * it there): the original is still pending in the user, and must appear
 * once. True if it was on top, nothing raised over it. */
static bool aw__gencm_unthrow(aw_gencm_t *g, aw_task_t *gen) {
    bool top = false;
    for (aw_err_t *x = gen->err; g->thrown && x; x = x->context)
        if (x == g->thrown && x->seq == g->thrown_seq && x->code == g->body_code) {
            top = x == gen->err;
            aw__err_free(aw__err_unlink(gen, x));
            break;
        }
    g->thrown = NULL;
    return top;
}

static int aw__gencm_exit(void *self, const aw_err_t *err) {
    aw_gencm_t *g = self;
    aw_task_t *u = g->user, *gen = g->gen;
    aw_scope_t *below = u->scope, grace;
    g->body_err = err;
    g->body_code = err ? err->code : 0;
    g->state = AW__GENCM_EXIT;
    if (g->uscope) {
        /* unhook the generator's scopes from the user's chain: the exit's
         * shield (u->scope) sits on the user's own scope again (no cycle);
         * the with restores u->scope from the shield */
        gen->covered = NULL;
        u->ncovers--;
        if (u->scope->kind == AW__SCOPE_SHIELD) {
            u->scope->parent = g->uscope;
            /* M3: the generator's own code runs in the exit's shield
             * (own_shield), but the scopes and groups it holds around its
             * yield stay below the user's own scope, so that their
             * children see the user's cancels while they drain (Python:
             * `async with nursery: yield` is not shielded), within the
             * exit's grace (a scope of that deadline in between). */
            aw_ns_t rel = u->scope->rel;
            grace = (aw_scope_t){.task = gen, .kind = AW__SCOPE_PLAIN, .rel = AW_NEVER,
                                 .deadline = rel == AW_NEVER ? AW_NEVER : aw_now() + rel};
            aw__scope_link(&grace, g->uscope);
            gen->own_shield = u->scope;
            below = &grace;
            /* the children's chain changed: a cancel they now see (one
             * that landed while the block ran) or the grace reaches them */
            aw__scope_rehang(gen, below);
            aw__scope_wake_tree(&grace, 1);
        }
    }
    aw__gencm_throw(g, gen, err);
    aw__delegate_run_below(u, gen, below);
    if (gen->own_shield) {
        gen->own_shield = NULL;
        if (grace.expired) /* a child outlived the grace: the exit overran it */
            u->scope->expired = 1;
    }
    int st = gen->status;
    g->state = AW__GENCM_DONE;
    bool unchanged = aw__gencm_unthrow(g, gen);
    int rc;
    if (g->twice) {
        aw__err_move(u, gen);
        rc = aw_raise(-AW_EPROTOCOL, "generator manager '%s' didn't stop (it yielded twice)",
                      g->name);
    } else if (st == 0) {
        /* A cancel is never lost (the type may suppress -ECANCELED only so
         * that a scope of the generator covering the block can end its own
         * cancel): one still visible in the user's chain propagates. */
        rc = !err ? 0 : err->code == -ECANCELED && aw__gencm_cancel_visible(u) ? 0 : AW_SUPPRESS;
    } else if (err && st == g->body_code && (unchanged || !gen->err || gen->auto_err)) {
        rc = 0; /* re-raised: the same error, unchanged */
    } else {
        aw__err_move(u, gen);
        rc = st == -AW_ECLOSED ? aw__gencm_closed_signal(g) : st;
        if (err && err->code == -ECANCELED && u->err && u->err->code != -ECANCELED &&
            aw__gencm_cancel_visible(u))
            aw_raise(-ECANCELED, "cancelled (and generator manager '%s' failed)", g->name);
    }
    aw__task_release(gen);
    g->gen = NULL;
    return rc;
}

/* Reports name the generator function (AW_GENCM_INIT's #fn_), not the type. */
static const char *aw__gencm_describe(const void *self) {
    const aw_gencm_t *g = self;
    return g->name ? g->name : "gencm";
}

const aw_cm_type_t aw_gencm_type = {
    .name = "gencm",
    .enter = aw__gencm_enter,
    .exit = aw__gencm_exit,
    .flags = AW_CM_SUPPRESS_CANCEL, /* decided in exit: see there */
    .describe = aw__gencm_describe,
};

int aw_gencm_yield(aw_gencm_t *g, void *value) {
    aw_task_t *gen = aw__task_cur();
    if (!g || !gen || gen != g->gen)
        return aw_raise(-AW_EPROTOCOL, "aw_gencm_yield called outside its generator function");
    if (g->state != AW__GENCM_ENTER) {
        g->twice = 1;
        return aw_raise(-AW_EPROTOCOL, "generator manager '%s' yielded twice", g->name);
    }
    g->value = value;
    g->state = AW__GENCM_YIELDED;
    aw__delegate_handback(gen); /* until the block is over */
    return g->body_code;
}

const aw_err_t *aw_gencm_error(const aw_gencm_t *g) { return g->body_err; }

int aw_gencm_call(aw_gencm_fn gen, void *garg, aw_task_fn fn, void *arg) {
    aw_gencm_t g = {gen, garg, "aw_gencm_call"};
    aw_with (aw_cm(&aw_gencm_type, &g)) {
        if (fn(arg) < 0)
            aw_leave();
    }
    return aw_status();
}
