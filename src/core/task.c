/* task.c: tasks on the loop: spawn, the one suspension primitive
 * (aw__task_wait), wake-ups, sleep, join. aw_main is in main.c.
 *
 * A task lives at the top of its own stack (no malloc per spawn); the
 * stack comes from the loop's cache and goes back when the task is done
 * (or, for a joinable task, when it is joined or its group closes). */
#include "core.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const aw__task_lock_ops_t *aw__task_locks;

const char *const aw__wait_names[] = {
    [AW__WAIT_NONE] = "nothing",
    [AW__WAIT_TASK] = "task",
    [AW__WAIT_GROUP] = "the children of its group",
    [AW__WAIT_LOCK] = "lock",
    [AW__WAIT_EVENT] = "event",
    [AW__WAIT_CONDITION] = "condition",
    [AW__WAIT_SEMAPHORE] = "semaphore",
};

/* ---- waiting and waking ---- */

void aw__task_wake(aw_task_t *t, int rc) {
    if (t->state != AW__T_WAITING)
        return;
    if (t->unwait) {
        void (*u)(aw_task_t *) = t->unwait;
        t->unwait = NULL;
        u(t);
    }
    if (aw__timer_armed(&t->timer))
        aw__timer_disarm(&t->loop->timers, &t->timer);
    t->wake_rc = rc;
    t->state = AW__T_READY;
    aw__loop_ready(t->loop, &t->coro);
}

static void aw__task_timer_fire(aw__timer_t *tm) {
    aw_task_t *t = (aw_task_t *)((char *)tm - offsetof(aw_task_t, timer));
    aw_ns_t now = t->loop->now;
    /* the task runs after this round's other due timers fire and checks
     * its canary as it parks or ends: on another stack's page in a packed
     * slab, as cold as its own was */
    __builtin_prefetch(t->coro.canary);
    if (t->wait_until <= now) {
        aw__task_wake(t, -ETIMEDOUT);
        return;
    }
    if (t->cancellable && aw__expire(t, now) > 0 && t->state == AW__T_WAITING)
        aw__task_wake(t, -ECANCELED);
    if (t->state == AW__T_WAITING) { /* a deadline moved later: wait on */
        aw_ns_t when = aw__deadline(t);
        if (t->wait_until < when)
            when = t->wait_until;
        if (when != AW_NEVER)
            aw__timer_arm(&t->loop->timers, &t->timer, when);
    }
}

void aw__task_stack_fail(aw_task_t *t) {
    aw__log(t->loop,
            "awith: stack overflow in task '%s' (spawned at %s:%d): the canary at the "
            "bottom of its %zu-byte stack was overwritten. Give it a bigger stack "
            "(aw_task_opts_t.stack_size or aw_loop_opts_t.stack_size).\n",
            t->name, t->file, t->line, (size_t)(t->coro.stack->hi - t->coro.stack->lo));
    abort();
}

int aw__task_wait(aw_task_t *t, aw_ns_t until, int cancellable) {
    assert(t == aw__task_cur()); /* only a task suspends itself */
    t->wait_until = until;
    if (cancellable) {
        AW__TRACE(t, AW_TRACE_POINT, NULL, 0);
        aw_ns_t d;
        int rc = aw__point(t, &d);
        if (rc < 0) {
            aw__task_unwait(t);
            return rc;
        }
        if (d < until)
            until = d;
    }
    return aw__task_suspend(t, until, cancellable, false);
}

int aw_sleep_until(aw_ns_t deadline) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_sleep");
    int rc = aw__task_wait(t, deadline, 1);
    return rc == -ETIMEDOUT ? 0 : rc;
}

int aw_sleep(aw_ns_t ns) {
    if (ns <= 0)
        return aw_yield();
    aw_ns_t now = aw_now();
    /* AW_NEVER (or anything past it) sleeps for ever: now + ns would wrap
     * negative and return at once */
    return aw_sleep_until(ns >= AW_NEVER - now ? AW_NEVER : now + ns);
}

/* The yield through the scheduler (the round's budget is spent) or with
 * a trace hook set: queued, parked. */
static __attribute__((noinline)) int aw__task_yield(aw_task_t *t) {
    t->state = AW__T_READY;
    aw__loop_ready(t->loop, &t->coro);
    aw__task_park(t, true, false);
    return 0;
}

/* The yield's direct switch to next, the head of the run queue, while
 * the round's budget lasts: what aw__task_park does then, with the queue
 * turned once (next off its head, t on its tail) instead of a push and a
 * pop. In a frame of its own: the registers the switch clobbers are
 * saved only when it switches. */
static __attribute__((noinline)) int aw__task_yield_to(aw_task_t *t, aw__coro_t *next) {
    aw_loop_t *l = t->loop;
    t->state = AW__T_READY;
    aw__loop_rotate(l, &t->coro);
    l->cur = next;
    l->switches++;
    aw__coro_switch(&t->coro, next, 0);
    aw__loop_after_switch(l);
    AW__TRACE(t, AW_TRACE_RESUME, NULL, 0); /* a hook set while it was switched out */
    t->state = AW__T_RUNNING;
    return 0;
}

int aw_yield(void) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_yield");
    AW__TRACE(t, AW_TRACE_POINT, NULL, 0);
    int rc = aw__point(t, NULL);
    if (rc < 0)
        return rc;
    aw_loop_t *l = t->loop;
    if (__builtin_expect(l->budget > 0 && !AW__TRACING(t), 1)) {
        aw__coro_t *next = l->rq_head;
        l->budget--;
        aw__task_stack_check(t);
        /* nothing else is ready and the round goes on: the park would
         * take this task off the run queue again at once (a lock's holder
         * yielding while the others wait for the lock); the same without
         * the queue's round trip */
        if (!next)
            return 0;
        return aw__task_yield_to(t, next);
    }
    return aw__task_yield(t);
}

int aw_checkpoint(void) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return 0;
    AW__TRACE(t, AW_TRACE_POINT, NULL, 0);
    return aw__point(t, NULL);
}

/* ---- life cycle ---- */

void aw__task_raise_status(aw_task_t *t, int st) {
    if (!t->err || t->err->code != st) {
        t->auto_err = !t->err;
        aw__raise_at(t, t->file, t->line, t->name, st, "task '%s' returned %s (%s)", t->name,
                     aw_err_name(st), aw_strerror(st));
    }
}

static void aw__task_entry(void *p) {
    aw_task_t *t = p;
    aw_loop_t *l = t->loop;
    aw__loop_after_switch(l);
    t->state = AW__T_RUNNING;
    int st = t->fn(t->arg);
    aw__task_stack_check(t);
    st = aw__task_end_status(t, st);
    if (st < 0) {
        aw__task_raise_status(t, st);
    } else {
        aw__err_free(aw__err_detach(t)); /* returning success handles any error */
    }
    /* every block of the function has ended: its cleanups ran on the way
     * out; what it entered into another task's exit stack is handed over */
    if (__builtin_expect(t->withs != NULL, 0))
        aw__with_hand_over(t);
    assert(t->scope == &t->root && !t->withs && !t->groups && !t->exiting);
    t->status = st;
    t->state = AW__T_DONE;
    struct aw__core *c = l->core;
    aw__list_remove(&c->tasks, &t->live);
    c->ntasks--;
    if (t->group)
        aw__group_child_done(t);
    if (t->joiner) {
        aw__task_wake(t->joiner, 0);
        if (t->delegator && l->rq_head == &t->joiner->coro)
            l->budget++; /* a delegate's end hands straight back to its user */
    }
    aw__loop_die(l);
}

/* Give the stack back. The task must be done and off its stack. */
void aw__task_release(aw_task_t *t) {
    aw_loop_t *l = t->loop;
    aw__err_free(t->err);
    t->err = NULL;
    aw__coro_fini(&t->coro);
    if (t->custom_stack)
        aw__stack_unmap(t->coro.stack);
    else
        aw__stack_put(&l->stacks, t->coro.stack);
}

void aw__task_reap(aw_loop_t *l, aw__coro_t *c) {
    (void)l;
    aw_task_t *t = (aw_task_t *)c;
    if (!t->joinable)
        aw__task_release(t);
}

/* Where the record of the task numbered `id` goes on a stack whose top
 * is `hi`. Stacks are page-aligned, so every record would fall in the
 * same L1 sets (and evict each other when many tasks take turns): each
 * is offset by a colour of 0..7 cache-line pairs, within the top page. */
static inline uintptr_t aw__task_record_at(const void *hi, uint64_t id) {
    size_t colour = (size_t)(id & 7) * 128;
    return ((uintptr_t)hi - sizeof(aw_task_t) - colour) & ~(uintptr_t)63;
}

/* Ask for the lines the next spawn will write, now: the record of the
 * next cached stack (its address and colour are known without touching
 * it). With many live tasks each record lies on a page no cache holds,
 * and writing 480 bytes there stalls on one miss per line; a prefetch
 * for write, one spawn ahead, overlaps those misses with this spawn's
 * work. bench-timers at 1,000,000 (warm, pinned, alternating builds):
 * spawning alone 545-680 -> 340-500 ns a task, the arm phase's median
 * 1,380 -> 1,040 ns, timer_ns against libuv's median 0.83x -> 0.98x.
 * Two spawns ahead did worse (arm 1,030-1,170 ns): eighteen lines in
 * flight outrun the line fill buffers.
 * Always inline: GCC takes a function that only prefetches for one
 * without side effects and deletes the call. */
static inline __attribute__((always_inline)) void aw__task_preload_next(aw_loop_t *l) {
    const aw__stack_t *s = aw__stack_peek(&l->stacks);
    if (!s)
        return;
    /* s is its hi (the descriptor sits there): not read, not touched */
    const char *next = (const char *)aw__task_record_at(s, l->core->next_id + 1);
    for (size_t o = 0; o < sizeof(aw_task_t) + 64; o += 64)
        __builtin_prefetch(next + o, 1, 3);
}

aw_task_t *aw__task_new(aw_loop_t *l, aw_task_fn fn, void *arg, size_t stack_size,
                        const char *name, const char *file, int line) {
    int custom = stack_size && stack_size != l->stacks.size;
    aw__stack_t *s = custom ? aw__stack_map(stack_size) : aw__stack_get(&l->stacks);
    if (!s)
        return NULL;
    assert(s->hi == (char *)s); /* what aw__task_preload_next relies on */
    uintptr_t top = aw__task_record_at(s->hi, l->core->next_id);
    aw_task_t *t = (aw_task_t *)top;
    aw__task_preload_next(l);
    memset(t, 0, offsetof(aw_task_t, xshield));
    aw__coro_init(&t->coro, s->lo, (void *)top, aw__task_entry, t);
    aw__coro_set_stack(&t->coro, s);
    t->custom_stack = (uint8_t)custom;
    t->loop = l;
    t->fn = fn;
    t->arg = arg;
    t->name = name;
    t->file = file;
    t->line = line;
    t->id = ++l->core->next_id;
    t->timer.fire = aw__task_timer_fire;
    t->root.kind = AW__SCOPE_ROOT;
    t->root.deadline = AW_NEVER;
    t->root.rel = AW_NEVER;
    t->root.task = t;
    t->root.held = 0; /* (the task's memory is reused: set what scope.c reads) */
    t->scope = &t->root;
    /* the exit shield, free, lazy and unknown: what with.c does not set */
    aw__shield_reset(&t->xshield, t, 0);
    t->wait_until = AW_NEVER;
    struct aw__core *c = l->core;
    aw__list_push_front(&c->tasks, &t->live);
    c->ntasks++;
    t->state = AW__T_READY;
    aw__loop_ready(l, &t->coro);
    return t;
}

int aw__task_no_stack(const char *what, const char *name) {
    size_t maps, limit;
    if (aw__stack_why(&maps, &limit))
        return aw_raise(-ENOMEM, "no stack for %s '%s': the process reached its limit on memory "
                        "mappings, vm.max_map_count = %zu (stacks account for %zu, %d are kept "
                        "for the rest of the process; 64 stacks take one mapping): raise it "
                        "(sysctl -w vm.max_map_count=N) or run fewer tasks at once",
                        what, name, limit, maps, aw__stack_map_max ? 0 : AW__MAPS_RESERVE);
    return aw_raise(-ENOMEM, "no memory for the stack of %s '%s'", what, name);
}

/* ---- side coroutines (core.h) ---- */

/* A side is done when fn returns; it then parks at the top of this loop,
 * in the core's cache, and the next use resumes it there: no new frame to
 * lay out, a warm stack. */
static void aw__side_entry(void *p) {
    aw__side_t *s = p; /* co is first */
    for (;;) {
        s->fn(s);
        s->done = 1;
        aw__side_back(s);
    }
}

aw__side_t *aw__side_make(aw_task_t *t) {
    aw__stack_t *st = aw__stack_get(&t->loop->stacks);
    if (!st)
        return NULL;
    /* room for the largest record: a cached side may serve another user */
    uintptr_t top = ((uintptr_t)st->hi - AW__SIDE_MAX) & ~(uintptr_t)63;
    aw__side_t *s = (aw__side_t *)top;
    aw__coro_init(&s->co, st->lo, (void *)top, aw__side_entry, &s->co);
    aw__coro_set_stack(&s->co, st);
    return s;
}

void aw__side_drop(aw_loop_t *l, aw__side_t *s) {
    aw__coro_fini(&s->co);
    aw__stack_put(&l->stacks, s->co.stack);
}

void aw__side_cache_drop(aw_loop_t *l) {
    struct aw__core *c = l->core;
    while (c->sides) {
        aw__side_t *s = c->sides;
        c->sides = s->next;
        aw__side_drop(l, s);
    }
    c->nsides = 0;
}

int aw__spawn(aw_group_t *g, aw_task_fn fn, void *arg, const aw_task_opts_t *opts,
              aw_task_t **handle, const char *name, const char *file, int line) {
    aw_loop_t *l = aw__loop_tls;
    if (!fn)
        return aw_raise(-EINVAL, "aw_spawn of a NULL function (as '%s' at %s:%d)", name, file, line);
    if (!l)
        return aw_raise(-EINVAL, "aw_spawn of '%s' at %s:%d outside a loop: spawn from a task "
                        "(the function given to aw_main, or one it spawned)", name, file, line);
    if (!g)
        g = &l->core->root;
    /* Open or draining: the owner waits at the end of the block for the
     * last child, and until it is done a child may still spawn a sibling
     * (SEMANTICS M8; Trio's nursery, asyncio's TaskGroup): the owner's
     * wait re-checks the count. Only a group not yet entered or already
     * left refuses. */
    if (g->state != AW__GROUP_OPEN && g->state != AW__GROUP_DRAINING)
        return aw_raise(-EINVAL, "spawn of '%s' into a task group that is %s", name,
                        g->state == AW__GROUP_NEW ? "not entered" : "already left");
    aw_task_t *t = aw__task_new(l, fn, arg, opts ? opts->stack_size : 0,
                                opts && opts->name ? opts->name : name, file, line);
    if (!t)
        return aw__task_no_stack("task", name);
    aw__scope_link(&t->root, &g->scope);
    t->group = g;
    t->joinable = handle != NULL;
    aw__list_push_front(&g->children, &t->sibling);
    g->nchildren++;
    if (handle)
        *handle = t;
    return 0;
}

static void aw__join_unwait(aw_task_t *self) {
    aw_task_t *t = self->wait_obj;
    if (t->joiner == self)
        t->joiner = NULL;
}

int aw_task_join(aw_task_t *t) {
    aw_task_t *self = aw__task_cur();
    if (!self)
        return aw__no_task("aw_task_join");
    if (!t || !t->joinable)
        return aw_raise(-EINVAL, "aw_task_join: not a joinable task");
    if (t == self)
        return aw_raise(-EDEADLK, "task '%s' cannot join itself", t->name);
    if (t->joiner && t->joiner != self)
        return aw_raise(-EBUSY, "task '%s' is already being joined", t->name);
    if (t->state != AW__T_DONE) {
        t->joiner = self;
        self->wait_obj = t;
        self->unwait = aw__join_unwait;
        self->wait_kind = AW__WAIT_TASK; /* introspection: the await chain (SEMANTICS L2) */
        self->wait_on = t;
        int rc = aw__task_wait(self, AW_NEVER, 1);
        self->wait_kind = AW__WAIT_NONE;
        if (rc < 0)
            return rc;
    } else {
        int rc = aw_checkpoint();
        if (rc < 0)
            return rc;
    }
    int st = t->status;
    if (st < 0 && t->err) {
        aw_task_t tmp = {.err = aw__err_copy(t->err)};
        aw__err_move(self, &tmp);
    }
    /* unlink from the group's finished list and free */
    aw__list_remove(&t->group->done, &t->sibling);
    aw__task_release(t);
    return st;
}

void aw_task_cancel(aw_task_t *t) {
    if (t && t->state != AW__T_DONE)
        aw_scope_cancel(&t->root);
}

void aw__err_move(aw_task_t *to, aw_task_t *from) { aw__err_move_chain(to, aw__err_detach(from)); }

void aw__err_move_chain(aw_task_t *to, aw_err_t *e) {
    if (!e)
        return;
    /* Seqs fall down a chain (the top is the newest): code that drops
     * "what was raised since mark" stops at the first record not newer,
     * so the moved records are numbered from the top down. */
    uint64_t n = 0;
    for (aw_err_t *x = e; x; x = x->context) {
        n++;
        if (x->code == -ECANCELED) /* seen there, for it (a generator's wait) */
            to->cancel_seen = 1;
    }
    uint64_t seq = to->errseq + n;
    to->errseq = seq;
    for (aw_err_t *x = e; x; x = x->context)
        x->seq = seq--;
    aw__err_append(e, to->err);
    to->err = e;
}

/* A generator's code runs on behalf of its consumer: it is that task. */
aw_task_t *aw_task_self(void) { return aw__task_self(); }
const char *aw_task_name(const aw_task_t *t) { return t ? t->name : "(loop)"; }
uint64_t aw_task_id(const aw_task_t *t) { return t ? t->id : 0; }

void aw_loop_stats(aw_loop_stats_t *o) {
    aw_loop_t *l = aw__loop_tls;
    memset(o, 0, sizeof *o);
    if (!l)
        return;
    o->tasks = l->core->ntasks;
    o->stacks_live = l->stacks.live;
    o->stacks_cached = l->stacks.cached;
    o->timers = l->timers.live;
    o->switches = l->switches;
}
