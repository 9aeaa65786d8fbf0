/* gencm.c: generator-style managers. The generator function runs on a
 * bare coroutine of its own (core.h: a side), as the task that uses the
 * manager: no task record, no group, no run queue. While it runs,
 * aw__task_cur() is the user, its scopes, withs and groups go on the
 * user's chains (so the scopes it holds open at its yield cover the
 * block, SEMANTICS M3, and a cancel of them wakes the user, the task they
 * belong to), and a suspension inside it parks the user. Only its error
 * context is its own, as a task's would be: the user's pending chain, its
 * clear floor, its K5 mark and the exit it is in are swapped with the
 * generator's around each run, so the generator sees only what it raised
 * and what is thrown in at its yield (M2, M3). The user waits for it, not
 * cancellably: the generator itself sees the cancel through the chain and
 * decides (so enter is atomic with respect to cancellation).
 * Cost: a warm side from the core's cache, four direct switches per use
 * and four swaps of the error context (two 16-byte moves each way). */
#include <awith/gencm.h>

#include "../core/core.h"

#include <stddef.h> /* offsetof */

/* The generator's error context while the user's is in the task: the
 * four words of aw_task_t from err to exiting, in its order, so that a
 * swap is two 16-byte moves each way (it runs four times per use). */
typedef struct gencm_ctx {
    aw_err_t *err;
    uint64_t late, floor;
    aw_with_t *exiting;
} gencm_ctx_t;
_Static_assert(offsetof(aw_task_t, late_err) == offsetof(aw_task_t, err) + 8 &&
               offsetof(aw_task_t, err_floor) == offsetof(aw_task_t, err) + 16 &&
               offsetof(aw_task_t, exiting) == offsetof(aw_task_t, err) + 24,
               "aw_task_t's error context must be four adjacent words (core.h)");

/* The state of one use, on the generator's stack: the instance itself
 * (usually a compound literal the block zero-fills) stays five words. */
/* How much of the block's chain is thrown in: the top record and the
 * newest of its context (a deeper chain is cut there in the copy; the
 * block's own chain, which leaves it, keeps every record). */
enum { AW__GENCM_CHAIN = 8 };

typedef struct gencm_side {
    aw__side_t side;              /* first; side.task is the user */
    aw_gencm_t *g;
    void *value;                  /* what the generator yielded */
    aw_scope_t *gbot;             /* its outermost scope at the yield, if it holds one open */
    aw_scope_t *gtop;             /* its innermost scope at the yield, if it holds one open */
    const aw_err_t *body_err;     /* the block's error, while the cleanup runs */
    aw_err_t *thrown;             /* the copy of body_err pending in the generator */
    aw_err_t *copies[AW__GENCM_CHAIN]; /* thrown and the copies of its context, in order */
    int ncopies;
    aw_err_t *below;              /* what the generator had pending under that copy */
    aw_err_t *over;               /* what its managers raised right over it (unthrow) */
    gencm_ctx_t ctx;              /* the generator's error context, while the user's is in */
    int body_code;
    uint8_t auto_err;             /* its chain is the lone "returned X" record */
    uint8_t twice;                /* it yielded a second time */
    int st;                       /* what the function returned, once done */
    uint64_t thrown_seq;
} gencm_side_t;
_Static_assert(sizeof(gencm_side_t) <= AW__SIDE_MAX, "the side's record must fit its slot");

/* Two 16-byte words, as the compiler's generic vectors (SSE2, NEON):
 * a swap is then four loads and four stores, with nothing spilled. */
typedef uint64_t aw__w2 __attribute__((vector_size(16), aligned(8), may_alias));

static inline void aw__gencm_swap(aw_task_t *u, gencm_side_t *c) {
    aw__w2 *a = (aw__w2 *)(void *)&u->err, *b = (aw__w2 *)(void *)&c->ctx;
    aw__w2 a0 = a[0], a1 = a[1], b0 = b[0], b1 = b[1];
    a[0] = b0;
    a[1] = b1;
    b[0] = a0;
    b[1] = a1;
}

/* The first run: the user's context into c, a fresh one (no error, no
 * floor, no exit) for the generator. */
static inline void aw__gencm_swap_first(aw_task_t *u, gencm_side_t *c) {
    aw__w2 *a = (aw__w2 *)(void *)&u->err, *b = (aw__w2 *)(void *)&c->ctx;
    aw__w2 a0 = a[0], a1 = a[1];
    b[0] = a0;
    b[1] = a1;
    a[0] = (aw__w2){0, 0};
    a[1] = (aw__w2){0, 0};
}

/* Let the generator go until it yields or is done. */
static inline void aw__gencm_run(aw_task_t *u, gencm_side_t *c, bool first) {
    if (first)
        aw__gencm_swap_first(u, c);
    else
        aw__gencm_swap(u, c);
    aw__side_run(u, &c->side);
    aw__gencm_swap(u, c);
}

/* The generator's coroutine, as a task's entry ends a task: its status
 * (K5), and a record for an error it returned without raising. */
static __attribute__((noinline)) int aw__gencm_end(gencm_side_t *c, aw_task_t *u, int st) {
    if (st < 0) {
        if (!u->err || u->err->code != st) {
            c->auto_err = !u->err;
            aw__raise_at(u, __FILE__, __LINE__, c->g->name, st,
                         "generator manager '%s' returned %s (%s)", c->g->name, aw_err_name(st),
                         aw_strerror(st));
        }
    } else if (u->err) {
        aw__err_free(aw__err_detach(u)); /* returning success handles any error */
    }
    return st;
}

/* Only c lives across the call: one register to save. */
static void aw__gencm_main(aw__side_t *s) {
    gencm_side_t *c = (gencm_side_t *)s;
    int st = c->g->fn(c->g, c->g->arg);
    aw_task_t *u = c->side.task;
    st = aw__task_status(u, st);
    if (__builtin_expect(st < 0 || u->err, 0))
        st = aw__gencm_end(c, u, st);
    c->st = st;
}

static void aw__gencm_done(aw_gencm_t *g, gencm_side_t *c) {
    if (c->ctx.err)
        aw__err_free(c->ctx.err);
    aw__side_free(&c->side);
    g->side = NULL;
    g->state = AW__GENCM_DONE;
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

/* The function returned a positive value other than AW_SUPPRESS: a
 * protocol error naming it (A14), raised here so that a cancel the block
 * left with is put back on top below. */
static int aw__gencm_bad_return(aw_gencm_t *g, int st) {
    return aw_raise(-AW_EPROTOCOL, "generator manager '%s' returned %d: it returns 0 (handled), "
                    "the code its yield gave or another negative code", g->name, st);
}

/* Is a cancel visible at the user's own chain (below its exit shield)? */
static bool aw__gencm_cancel_visible(const aw_task_t *u) { return aw__exit_chain(u).cancelled; }

static int aw__gencm_enter(void *self, void **out) {
    aw_gencm_t *g = self;
    aw_task_t *u = aw__task_cur();
    if (g->state != AW__GENCM_NEW)
        return aw_raise(-EALREADY, "generator manager '%s' was already used; make a new instance",
                        g->name ? g->name : "?");
    if (__builtin_expect(!g->fn, 0)) /* SEMANTICS A13: refused before anything runs */
        return aw_raise(-AW_EPROTOCOL, "generator manager '%s' has no function",
                        g->name ? g->name : "?");
    g->state = AW__GENCM_ENTER;
    gencm_side_t *c = (gencm_side_t *)aw__side_new(u, sizeof *c, aw__gencm_main);
    if (!c) {
        g->state = AW__GENCM_DONE;
        return aw__task_no_stack("generator manager", g->name);
    }
    c->g = g;
    c->body_err = NULL;
    c->thrown = NULL;
    c->ncopies = 0;
    c->body_code = 0;
    c->auto_err = c->twice = 0;
    g->side = c;
    aw_scope_t *uscope = u->scope;
    aw__gencm_run(u, c, true);
    if (g->state == AW__GENCM_YIELDED) {
        /* SEMANTICS M3: the scopes the generator holds open at its yield
         * stay on the user's chain (u->scope is its innermost): they
         * cover the block, and their cancels wake the user, their task */
        c->gtop = c->gbot = u->scope != uscope ? u->scope : NULL;
        while (c->gbot && c->gbot->parent != uscope)
            c->gbot = c->gbot->parent;
        *out = c->value;
        return 0;
    }
    /* returned without yielding */
    int st = c->st;
    aw__err_move_chain(u, c->ctx.err);
    c->ctx.err = NULL;
    aw__gencm_done(g, c);
    if (st == -AW_ECLOSED) /* C10: see aw__gencm_closed_signal */
        return aw__gencm_closed_signal(g);
    if (st < 0)
        return st;
    return aw_raise(-AW_EPROTOCOL, "generator manager '%s' didn't yield", g->name);
}

/* SEMANTICS M3 (Python throws the exception in at the yield): the block's
 * error becomes pending inside the generator, as a copy of its record and
 * its context chain (C4: the same object, __context__ included) on top of
 * the generator's chain, so every manager the generator holds open around
 * its yield (a with, an exit stack, a transaction) gets it in its exit; a
 * clear in the generator's cleanup does not drop it (M2: the generator
 * decides by what it returns). The copies all take the thrown top's seq:
 * they are one error, handed in at once, and a restore that drops it
 * drops them all. A cancel goes in alone: a scope of the generator may
 * end it (its own cancel), and the failures below it must not then
 * surface as the generator's own. */
static void aw__gencm_throw(aw_task_t *u, gencm_side_t *c, const aw_err_t *err) {
    aw_err_t *x = aw__err_copy_top(err);
    if (!x)
        return; /* out of memory: the code still reaches it through the yield */
    uint64_t seq = ++u->errseq;
    aw_err_t *last = x;
    int n = 0;
    c->copies[n++] = x;
    x->seq = seq;
    /* record by record, the newest few only: a chain of thousands of
     * failed exits is not copied whole to be cut */
    for (const aw_err_t *r = err->context; r && err->code != -ECANCELED && n < AW__GENCM_CHAIN;
         r = r->context) {
        aw_err_t *y = aw__err_copy_top(r);
        if (!y)
            break; /* out of memory: the chain is cut here in the copy */
        y->seq = seq;
        c->copies[n++] = last->context = y;
        last = y;
    }
    c->ncopies = n;
    last->context = c->below = c->ctx.err;
    c->ctx.err = x;
    c->ctx.floor = seq;
    c->thrown = x;
    c->thrown_seq = seq;
}

/* Take the copies of the thrown record's context out of the generator's
 * chain, wherever its managers left them (the originals are in the user's
 * chain), keeping what they put among them (a timeout placed under the
 * failure it explains: aw__gencm_keep_context moves that). */
static void aw__gencm_unthrow_context(gencm_side_t *c) {
    int left = c->ncopies - 1;
    for (aw_err_t **p = &c->ctx.err; left > 0 && *p && *p != c->below;) {
        aw_err_t *x = *p;
        bool copy = false;
        for (int i = 1; i < c->ncopies && !copy; i++)
            copy = c->copies[i] == x && x->seq == c->thrown_seq;
        if (!copy) {
            p = &x->context;
            continue;
        }
        *p = x->context;
        x->context = NULL;
        aw__err_free(x);
        left--;
    }
    c->ncopies = 0;
}

/* What became of the copy thrown in at the yield. */
enum { AW__THROWN_NONE, AW__THROWN_GONE, AW__THROWN_KEPT, AW__THROWN_TOP };

/* Take the thrown copy out of the generator's chain (if its managers left
 * it there): the original is still pending in the user, and must appear
 * once. Says whether it was on top (nothing raised over it), below what
 * the generator raised, or gone: a scope or group the generator held
 * around its yield ended it as its own cancel (SEMANTICS M4). */
static int aw__gencm_unthrow(gencm_side_t *c) {
    int what = c->thrown ? AW__THROWN_GONE : AW__THROWN_NONE;
    c->over = NULL;
    for (aw_err_t **p = &c->ctx.err; c->thrown && *p; c->over = *p, p = &(*p)->context) {
        aw_err_t *x = *p;
        if (x == c->thrown && x->seq == c->thrown_seq && x->code == c->body_code) {
            what = p == &c->ctx.err ? AW__THROWN_TOP : AW__THROWN_KEPT;
            *p = x->context;
            x->context = NULL;
            aw__err_free(x);
            break;
        }
    }
    aw__gencm_unthrow_context(c);
    c->thrown = NULL;
    return what;
}

/* A manager the generator held around its yield may have put records
 * under the thrown copy, as the block's error's context: a fail-after's
 * timeout under the error that ended its block (G10: "EIO <- ETIMEDOUT <-
 * ECANCELED"). The copy goes, the original stays: those records go under
 * the original, in the user's chain, as around a plain block; what the
 * generator had pending before (c->below) is not the block's. */
static void aw__gencm_keep_context(gencm_side_t *c, aw_task_t *u, const aw_err_t *err) {
    aw_err_t *head = c->ctx.err, *tail = NULL;
    for (aw_err_t *x = head; x && x != c->below; x = x->context)
        tail = x;
    if (!tail)
        return;
    for (aw_err_t *x = u->err; x; x = x->context)
        if (x == err) {
            c->ctx.err = tail->context;
            for (aw_err_t *y = head;; y = y->context) {
                y->seq = x->seq; /* raised in the block, as the error they are under */
                if (y == tail)
                    break;
            }
            tail->context = x->context;
            x->context = head;
            return;
        }
}

/* The cleanup runs below the exit's shield (sh, u->scope now), with the
 * generator's own scopes over it: they were on the user's chain while the
 * block ran (between sh and the user's scope they hang on, usually right
 * below sh); move them above sh, the shield then sits on the user's own
 * scope, and the with restores u->scope from it. That user's scope is
 * read now, not kept from enter: the one the generator was entered in
 * may have ended since, taken off the chain (an exit stack's entry
 * outlives the block it was entered in, SEMANTICS M5). O(their depth),
 * only for a generator that holds scopes open at its yield. */
static void aw__gencm_unhook(gencm_side_t *c, aw_task_t *u) {
    aw_scope_t *sh = u->scope, *top = c->gtop, *o = c->gbot, *below = o->parent;
    if (!below)
        return;
    for (aw_scope_t *p = sh; p && p != below; p = p->parent)
        if (p->parent == top) {
            p->parent = below;
            o->parent = sh;
            u->scope = top;
            /* what the generator holds at its yield still covers its
             * children's chains (core/scope.c: aw__walk_on); the scope
             * and group exits clear the mark. Held already, by the
             * cleanup of a generator manager this one was entered in
             * around its yield, they hang over one more exit shield. */
            for (aw_scope_t *h = top; h != sh; h = h->parent)
                if (h != &u->xshield)
                    h->held++;
            aw__scope_epoch++; /* chains re-hung: every kept value is read again */
            return;
        }
}

/* Did a scope or group the generator held around its yield end the
 * block's cancel? The copy thrown in was a cancel that its managers
 * absorbed (gone) or kept under what they raised (a fail-after's timeout),
 * and no cancel is visible to the user now: the only scopes that end
 * before this exit are the generator's. */
static bool aw__gencm_ended_cancel(const aw_task_t *u, const aw_err_t *err, int thrown) {
    return err && err->code == -ECANCELED &&
           (thrown == AW__THROWN_GONE || thrown == AW__THROWN_KEPT) && !aw__gencm_cancel_visible(u);
}

/* That cancel ends in the user's chain too, as the scope would have ended
 * it around a plain block (SEMANTICS M3, M4): its records on top of the
 * block's go (a fail-after keeps the last, unless failures were raised
 * while it unwound the block), and what the block raised besides (an exit
 * failing under the cancel) stays. The scope saw only the copy of the top
 * record, so a fail-after's timeout, raised right over that copy, goes
 * where the scope would have put it: under those failures, over the
 * cancel (G10). True if it moved that timeout. */
static bool aw__gencm_end_cancel(gencm_side_t *c, aw_task_t *u, int thrown) {
    uint64_t mark = aw__with_exit_mark(u);
    bool fail = thrown == AW__THROWN_KEPT;
    aw__err_absorb_cancels(u, mark, fail);
    bool other = u->err && u->err->seq > mark && u->err->code != -ECANCELED;
    aw_err_t *t = c->over;
    if (!fail || !other || !t || t->code != -ETIMEDOUT)
        return false;
    for (aw_err_t **p = &c->ctx.err; *p; p = &(*p)->context)
        if (*p == t) {
            *p = t->context;
            t->context = NULL;
            aw__err_move_chain(u, t);
            aw__err_sink(u, mark);
            return true;
        }
    return false;
}

/* What leaves the block, when the generator did more than finish cleanly
 * on a clean block: it raised, returned an error, yielded twice, or was
 * handed the block's error. */
static __attribute__((noinline)) int aw__gencm_decide(aw_gencm_t *g, gencm_side_t *c,
                                                      aw_task_t *u, const aw_err_t *err,
                                                      int st) {
    int thrown = aw__gencm_unthrow(c);
    bool unchanged = thrown == AW__THROWN_TOP;
    bool ended = aw__gencm_ended_cancel(u, err, thrown);
    int rc;
    /* A function answering as an exit would, AW_SUPPRESS, has finished:
     * it means what 0 means, so a cancel still visible is not lost
     * (decision 3, C14); other positive values are refused below. */
    if (st == AW_SUPPRESS)
        st = 0;
    if (c->twice) {
        aw__err_move_chain(u, c->ctx.err);
        c->ctx.err = NULL;
        rc = aw_raise(-AW_EPROTOCOL, "generator manager '%s' didn't stop (it yielded twice)",
                      g->name);
    } else if (st == 0 && ended) {
        /* the generator's scope ended the cancel: what the block raised
         * besides (an exit's failure under it) is not handled by that */
        aw__gencm_end_cancel(c, u, thrown);
        err = NULL; /* freed */
        rc = 0;
    } else if (st == 0) {
        /* A cancel is never lost (the type may suppress -ECANCELED only so
         * that a scope of the generator covering the block can end its own
         * cancel): one still visible in the user's chain propagates. */
        rc = !err ? 0 : err->code == -ECANCELED && aw__gencm_cancel_visible(u) ? 0 : AW_SUPPRESS;
    } else if (err && st == c->body_code && (unchanged || !c->ctx.err || c->auto_err)) {
        rc = 0; /* re-raised: the same error, unchanged */
        if (unchanged)
            aw__gencm_keep_context(c, u, err);
    } else {
        /* what the generator raised (a group's failures, a timeout)
         * leaves over what the block raised, without the cancel its
         * scope ended */
        bool sunk = false;
        if (ended) {
            sunk = aw__gencm_end_cancel(c, u, thrown);
            err = NULL; /* freed: no cancel is left to keep on top below */
        }
        bool raised = c->ctx.err != NULL;
        aw__err_move_chain(u, c->ctx.err);
        c->ctx.err = NULL;
        rc = st == -AW_ECLOSED ? aw__gencm_closed_signal(g) : st > 0 ? aw__gencm_bad_return(g, st) : st;
        /* all it raised was the timeout, now in place among the block's
         * records: they leave as they are (a code here would be recorded
         * again on top) */
        if (sunk && !raised)
            rc = 0;
    }
    /* a failure ("didn't stop" included) while a cancel still visible to
     * the user unwinds the block: the cancel stays on top ((c) 13) */
    if (rc < 0 && err && err->code == -ECANCELED && u->err && u->err->code != -ECANCELED &&
        aw__gencm_cancel_visible(u))
        aw_raise(-ECANCELED, "cancelled (and generator manager '%s' failed)", g->name);
    aw__gencm_done(g, c);
    return rc;
}

static int aw__gencm_exit(void *self, const aw_err_t *err) {
    aw_gencm_t *g = self;
    gencm_side_t *c = g->side;
    /* the task that runs the exit: the one that entered it, or, for an
     * exit stack's entry entered by a child or a generator, the one that
     * unwinds the stack (SEMANTICS M5; a generator's yield refuses an
     * entry that holds a scope, which could not move to another task) */
    aw_task_t *u = aw__task_cur();
    c->side.task = u;
    c->body_err = err;
    g->state = AW__GENCM_EXIT;
    if (c->gtop)
        aw__gencm_unhook(c, u);
    if (err) {
        c->body_code = err->code;
        aw__gencm_throw(u, c, err);
    }
    aw__gencm_run(u, c, false);
    int st = c->st;
    /* the common way out: a clean block, a clean finish, nothing raised */
    if (__builtin_expect(st != 0 || err || c->twice || c->ctx.err, 0))
        return aw__gencm_decide(g, c, u, err, st);
    aw__gencm_done(g, c);
    return 0;
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
    gencm_side_t *c = g ? g->side : NULL;
    /* on its coroutine: this frame lies on the side's stack, below its
     * record (the only code that runs there is the generator's) */
    const char *sp = __builtin_frame_address(0);
    if (!c || sp >= (const char *)c || sp < c->side.co.stack->lo)
        return aw_raise(-AW_EPROTOCOL, "aw_gencm_yield called outside its generator function");
    if (g->state != AW__GENCM_ENTER) {
        c->twice = 1;
        return aw_raise(-AW_EPROTOCOL, "generator manager '%s' yielded twice", g->name);
    }
    c->value = value;
    g->state = AW__GENCM_YIELDED;
    aw__side_back(&c->side); /* until the block is over */
    return c->body_code;
}

/* Called by the generator function (after its yield): its side is live. */
const aw_err_t *aw_gencm_error(const aw_gencm_t *g) {
    const gencm_side_t *c = g->side;
    return c ? c->body_err : NULL;
}

int aw_gencm_call(aw_gencm_fn gen, void *garg, aw_task_fn fn, void *arg) {
    /* outside a task the block is skipped and fn never runs: say so,
     * rather than return the 0 of a block that left nothing */
    if (!aw__task_cur())
        return aw__no_task("aw_gencm_call");
    aw_gencm_t g = {gen, garg, "aw_gencm_call"};
    uint64_t mark = aw_err_mark(); /* what leaves the block, not what was pending before */
    aw_with (aw_cm(&aw_gencm_type, &g)) {
        int rc = fn(arg);
        if (rc < 0) {
            /* a code returned without raising it is the block's error all
             * the same, as a task's return is its status (SEMANTICS K5):
             * the generator sees it at its yield, and it is returned */
            const aw_err_t *e = aw_err_current();
            if (!e || e->seq <= mark || e->code != rc)
                aw_raise(rc, "the function run by aw_gencm_call returned %s (%s)",
                         aw_err_name(rc), aw_strerror(rc));
            aw_leave();
        }
    }
    return aw__status_since(mark);
}
