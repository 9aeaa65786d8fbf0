/* gen.c: async generators as delegates of their consumer (see
 * core/task.c: aw__delegate_run). Each next is two switches; close runs
 * the cleanup inside a shield pushed on the consumer's chain, which the
 * generator's chain passes through. */
#include <awith/gen.h>

#include "../core/core.h"

enum { AW__GEN_CLOSE_TRIES = 16 };

static int aw__gen_main(void *p) {
    aw_gen_t *g = p;
    return g->fn(g, g->arg);
}

/* After a run: yielded, or finished (then collect the status). */
static int aw__gen_settle(aw_gen_t *g, aw_task_t *u) {
    if (g->state == AW__GEN_SUSPENDED)
        return 1;
    aw_task_t *d = g->task;
    int st = d->status;
    bool closing = g->resume == -AW_ECLOSED;
    if (st == -AW_ECLOSED && closing)
        st = 0; /* the answer to close: a clean finish */
    if (st > 0)
        st = 0; /* a count or a flag returned: finished, not one more item (E6) */
    if (st < 0)
        aw__err_move(u, d);
    aw__task_release(d);
    g->task = NULL;
    g->state = AW__GEN_DONE;
    /* SEMANTICS C10 (PEP 479): -AW_ECLOSED that close did not ask for
     * (leaked from a nested generator, or returned by mistake) is not
     * taken for a clean end of the iteration, which would silently cut
     * the consumer's loop short: it becomes a protocol error, the
     * original record as its context. */
    if (st == -AW_ECLOSED)
        st = aw_raise(-AW_EPROTOCOL,
                      "async generator '%s' returned %s without being closed (only the answer "
                      "to close may end a generator with it)", g->name, aw_err_name(st));
    return st;
}

/* Inline into both entry points: one call layer less around the switch
 * for aw_for (see core.h, delegates). */
static inline __attribute__((always_inline)) int aw__gen_next(aw_gen_t *g, void **out) {
    aw_task_t *u = aw__task_cur();
    if (!u)
        return aw__no_task("aw_gen_next");
    switch (g->state) {
    case AW__GEN_DONE:
        return 0;
    case AW__GEN_RUNNING:
        return aw_raise(-EBUSY, "async generator '%s' is already running", g->name);
    case AW__GEN_NEW:
        if (__builtin_expect(!g->fn, 0)) { /* refused before anything runs, as a manager (A13) */
            g->state = AW__GEN_DONE;
            return aw_raise(-AW_EPROTOCOL, "async generator '%s' has no function",
                            g->name ? g->name : "?");
        }
        /* made where the generator was: a report of one left suspended at
         * shutdown (SEMANTICS E3, (c) 9) names the user's line, not ours */
        g->task = aw__task_new(u->loop, aw__gen_main, g, 0, g->name,
                               g->file ? g->file : __FILE__, g->file ? g->line : __LINE__);
        if (!g->task) {
            g->state = AW__GEN_DONE;
            return aw__task_no_stack("async generator", g->name);
        }
        g->task->joinable = 1;
        break;
    default:
        break;
    }
    g->state = AW__GEN_RUNNING;
    g->resume = 0;
    aw__delegate_run(u, g->task);
    int rc = aw__gen_settle(g, u);
    if (rc == 1 && out)
        *out = g->value;
    return rc;
}

/* Driven by hand, a generator parked at its yield runs for nobody until
 * a next resume links it again: the scopes it was resumed in, and the
 * task that resumed it, may end before that (workers taking turns on one
 * generator), and the dump reads a parked generator's chain and names the
 * task it runs for (SEMANTICS L2, M6). An aw_for's generator stays
 * linked: its consumer stays in the for, in the scope of each step,
 * until it closes the generator. */
static void aw__gen_unlink(aw_gen_t *g) {
    g->task->root.parent = NULL;
    g->task->root.epoch = 0;
}

int aw_gen_next(aw_gen_t *g, void **out) {
    int rc = aw__gen_next(g, out);
    if (rc == 1)
        aw__gen_unlink(g);
    return rc;
}

int aw_gen_close(aw_gen_t *g) {
    aw_task_t *u = aw__task_cur();
    if (!u)
        return aw__no_task("aw_gen_close");
    if (g->state == AW__GEN_NEW || g->state == AW__GEN_DONE) {
        g->state = AW__GEN_DONE;
        return 0;
    }
    if (g->state == AW__GEN_RUNNING)
        return aw_raise(-EBUSY, "async generator '%s' is running: it cannot be closed now", g->name);
    aw_scope_t shield = {.parent = u->scope, .task = u, .kind = AW__SCOPE_SHIELD, .shield = 1,
                         .lazy = 1, .deadline = AW_NEVER, .rel = u->loop->opts.exit_grace};
    u->scope = &shield;
    int rc = 1;
    for (int i = 0; i < AW__GEN_CLOSE_TRIES && rc == 1; i++) {
        g->state = AW__GEN_RUNNING;
        g->resume = -AW_ECLOSED;
        aw__delegate_run(u, g->task);
        rc = aw__gen_settle(g, u);
    }
    u->scope = shield.parent;
    if (shield.expired && rc != 1) /* like a with's exit: an overrun is reported by name */
        rc = aw_raise(-ETIMEDOUT, "closing async generator '%s' overran its grace period of %lld ms",
                      g->name, (long long)(shield.rel / 1000000));
    if (rc == 1) { /* still yielding: leave it parked; loop close reports it */
        aw__gen_unlink(g);
        return aw_raise(-AW_EPROTOCOL, "async generator '%s' ignored close %d times",
                        g->name, AW__GEN_CLOSE_TRIES);
    }
    if (g->ignored_close)
        return aw_raise(-AW_EPROTOCOL, "async generator '%s' yielded while being closed "
                        "(it must return once aw_gen_yield gives -AW_ECLOSED)", g->name);
    return rc;
}

int aw_gen_yield(aw_gen_t *g, void *value) {
    aw_task_t *d = g ? g->task : NULL;
    /* on the generator's coroutine: this frame lies on its stack, below
     * its task record (aw__task_new puts it at the top), which only the
     * generator's code runs on */
    const char *sp = __builtin_frame_address(0);
    if (!d || sp >= (const char *)d || sp < d->coro.stack->lo)
        return aw_raise(-AW_EPROTOCOL, "aw_gen_yield called outside its generator function");
    if (d->scope != &d->root || d->groups)
        return aw_raise(-AW_EPROTOCOL,
                        "async generator '%s' yielded inside a scope it opened (timeout, cancel "
                        "scope or task group): that scope would leak into its consumer",
                        g->name);
    if (g->resume == -AW_ECLOSED)
        g->ignored_close = 1; /* E7: close asked it to finish */
    g->value = value;
    g->state = AW__GEN_SUSPENDED;
    aw__delegate_handback(d);
    if (__builtin_expect(g->resume == -AW_ECLOSED, 0) &&
        !(d->err && d->err->code == -AW_ECLOSED)) {
        /* SEMANTICS M3 (Python throws GeneratorExit in at the yield): the
         * close is pending inside the generator, so every manager it
         * holds open around its yield (a transaction) sees an error in its
         * exit and does not commit. A clear in its cleanup leaves it (M2);
         * returning 0 or -AW_ECLOSED is the clean answer to close. */
        aw_raise(-AW_ECLOSED, "async generator '%s' closed by its consumer", g->name);
        if (d->err && d->err->code == -AW_ECLOSED)
            d->err_floor = d->err->seq;
    }
    return g->resume;
}

/* The generator finished (or failed) instead of yielding. */
static __attribute__((noinline)) bool aw__gen_step_slow_end(aw_gen_t *g, aw_task_t *u) {
    g->once = aw__gen_settle(g, u) == 1;
    return g->once;
}

static __attribute__((noinline)) bool aw__gen_step_slow(aw_gen_t *g) {
    int rc = aw__gen_next(g, &g->value);
    g->once = rc == 1;
    return g->once;
}

/* aw_for's next item. The common case (a suspended generator, resumed by
 * the task that iterates it, yielding again) apart: no state dispatch,
 * and the value is already where the body reads it (g->value). */
bool aw__gen_step(aw_gen_t *g) {
    if (g->once) {
        g->once = 0; /* the body left with break: the code after the loop runs */
        return false;
    }
    aw_task_t *u = aw__task_cur();
    if (__builtin_expect(!u || g->state != AW__GEN_SUSPENDED, 0))
        return aw__gen_step_slow(g);
    g->state = AW__GEN_RUNNING;
    g->resume = 0;
    aw__delegate_run(u, g->task);
    if (__builtin_expect(g->state != AW__GEN_SUSPENDED, 0))
        return aw__gen_step_slow_end(g, u);
    g->once = 1;
    return true;
}

void aw__gen_cleanup(aw_gen_t *g) {
    if (g->state != AW__GEN_SUSPENDED && g->state != AW__GEN_NEW)
        return;
    /* Closing is the for's exit: like a with's exit (with.c), a cleanup
     * that fails while a cancel is in flight cannot replace the cancel
     * (SEMANTICS decision 3, (c) 13, E4): -ECANCELED goes back on top,
     * the failure in its chain. */
    aw_task_t *u = aw__task_cur();
    bool cancel = u && u->err && u->err->code == -ECANCELED;
    uint64_t before = u && u->err ? u->err->seq : 0;
    int rc = aw_gen_close(g);
    if (cancel && rc < 0 && rc != -ECANCELED)
        aw_raise(-ECANCELED, "cancelled (and closing async generator '%s' failed)", g->name);
    /* SEMANTICS K5, as a with block's exit (with.c): left by return or
     * goto (the body was running: once is still set), the value returned
     * is fixed before the close ran; a failing close marks its record, so
     * that a task returning success with it pending fails with it */
    if (g->once && u && u->err && u->err->seq > before)
        u->late_err = u->err->seq;
}
