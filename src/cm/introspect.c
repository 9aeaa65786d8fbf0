/* introspect.c: the loop dump. Reads the task list, each task's with
 * chain, scope chain and held locks; costs nothing until called. A
 * deadlock is a cycle in the wait-for graph (task -> lock -> owner task,
 * joins, generators, a group's owner -> its children): found by one
 * depth-first walk over the tasks (see aw__dump_cycles). */
#include <awith/introspect.h>
#include <awith/cond.h>
#include <awith/lock.h>
#include <awith/sem.h>

#include "../core/core.h"
#include "../coro/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static const char *aw__state_name(const aw_task_t *t) {
    switch (t->state) {
    case AW__T_READY: return "ready";
    case AW__T_RUNNING: return "running";
    case AW__T_WAITING: return "suspended";
    default: return "done";
    }
}

static const char *aw__phase_name(const aw_with_t *w) {
    return w->state == AW__WITH_ENTER ? "enter" : w->state == AW__WITH_EXIT ? "exit" : "body";
}

static bool aw__waits_lock(const aw_task_t *t) {
    return t->state == AW__T_WAITING && t->wait_kind == AW__WAIT_LOCK;
}

static bool aw__waits_join(const aw_task_t *t) {
    return t->state == AW__T_WAITING && t->wait_kind == AW__WAIT_TASK;
}

/* The task t waits for, through a lock or a join (the await chain,
 * SEMANTICS L2), or NULL. A task whose generator runs on its behalf
 * (aw_for, aw_gen_next) waits for that generator: a lock the generator
 * waits for, held by a task that waits for a lock this task holds, is a
 * deadlock too ((c) 12), and it goes through the task. */
static aw_task_t *aw__waits_for(const aw_task_t *t) {
    if (aw__waits_lock(t))
        return ((const aw_lock_t *)t->wait_on)->owner;
    if (aw__waits_join(t))
        return (aw_task_t *)t->wait_on;
    if (t->state == AW__T_WAITING && t->delegate)
        return t->delegate;
    return NULL;
}

/* The group t's owner waits for at the end of its block, or NULL. */
static aw_group_t *aw__waits_group(const aw_task_t *t) {
    if (t->state != AW__T_WAITING || t->wait_kind != AW__WAIT_GROUP)
        return NULL;
    for (aw_group_t *g = t->groups; g; g = g->outer)
        if (g->waiting)
            return g;
    return NULL;
}

/* ---- wait-for cycles ----
 * The graph: a lock's waiter -> the lock's owner, a joiner -> the task it
 * joins, a task whose generator runs for it -> that generator (one edge
 * each, aw__waits_for), and a group's owner waiting at the end of its
 * block -> every live child: it waits for all of them, so a cycle through
 * any one (the owner holds a lock a child waits for) is a deadlock too.
 * One depth-first walk with an explicit stack (a dump may run on a task's
 * small stack); a back edge closes a cycle, printed from its lowest id.
 * Cost: O(n log n) for the index, O(n + edges) for the walk, and four
 * arrays of n for the call (without them: no search, said so). */

typedef struct aw__dfs_frame {
    size_t i;                     /* the task (its index) */
    aw__link_t *child;            /* a group's owner: the next child to try */
    bool started;                 /* its edges are being tried */
} aw__dfs_frame_t;

static int aw__task_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(aw_task_t *const *)a, y = (uintptr_t)*(aw_task_t *const *)b;
    return x < y ? -1 : x > y;
}

/* t's index in the sorted tasks, or n (not a live task: no edge) */
static size_t aw__task_index(aw_task_t **v, size_t n, const aw_task_t *t) {
    aw_task_t **p = t ? bsearch(&t, v, n, sizeof *v, aw__task_cmp) : NULL;
    return p ? (size_t)(p - v) : n;
}

/* The next task frame f's task waits for, NULL when its edges are done. */
static aw_task_t *aw__dfs_next(aw__dfs_frame_t *f, aw_task_t *t) {
    aw_group_t *g = aw__waits_group(t);
    if (g) {
        f->child = f->started ? (f->child ? f->child->next : NULL) : g->children.head;
        f->started = true;
        return f->child ? aw__container(f->child, aw_task_t, sibling) : NULL;
    }
    if (f->started)
        return NULL;
    f->started = true;
    return aw__waits_for(t);
}

/* One cycle: the tasks on the walk's stack from `from` to its top. */
static void aw__dump_cycle(FILE *f, aw_task_t **v, const aw__dfs_frame_t *st, size_t from,
                           size_t top) {
    size_t len = top - from + 1, low = from;
    for (size_t k = from; k <= top; k++)
        if (v[st[k].i]->id < v[st[low].i]->id)
            low = k;
    fprintf(f, "DEADLOCK: ");
    for (size_t c = 0; c < len; c++) {
        aw_task_t *y = v[st[from + (low - from + c) % len].i];
        fprintf(f, "task '%s' (id %llu) ", y->name, (unsigned long long)y->id);
        if (aw__waits_lock(y)) {
            const aw_lock_t *l = y->wait_on;
            fprintf(f, "waits for lock '%s' held by ", l->name ? l->name : "?");
        } else if (aw__waits_join(y)) {
            fprintf(f, "joins ");
        } else if (aw__waits_group(y)) {
            fprintf(f, "waits for the children of its group, among them ");
        } else {
            fprintf(f, "runs its generator ");
        }
    }
    aw_task_t *t = v[st[low].i];
    fprintf(f, "task '%s' (id %llu)\n", t->name, (unsigned long long)t->id);
}

static int aw__dump_cycles(FILE *f, const aw__list_t *tasks, size_t n) {
    aw_task_t **v = aw__malloc(n * sizeof *v + 1);
    aw__dfs_frame_t *st = aw__malloc(n * sizeof *st + 1);
    unsigned char *color = aw__calloc(n + 1, 1); /* 0 not seen, 1 on the stack, 2 done */
    size_t *pos = aw__malloc(n * sizeof *pos + 1); /* where on the stack, while on it */
    int cycles = 0;
    if (!v || !st || !color || !pos) {
        fprintf(f, "(no memory to look for deadlocks)\n");
        goto out;
    }
    size_t m = 0;
    aw__list_each(tasks, node) {
        if (m < n)
            v[m++] = aw__container(node, aw_task_t, live);
    }
    n = m;
    qsort(v, n, sizeof *v, aw__task_cmp);
    aw__list_each(tasks, node) { /* in the list's order, as the dump */
        size_t r = aw__task_index(v, n, aw__container(node, aw_task_t, live));
        if (r == n || color[r])
            continue;
        size_t top = 0;
        st[0] = (aw__dfs_frame_t){.i = r};
        color[r] = 1;
        pos[r] = 0;
        for (;;) {
            aw_task_t *next = aw__dfs_next(&st[top], v[st[top].i]);
            if (!next) {
                color[st[top].i] = 2;
                if (top-- == 0)
                    break;
                continue;
            }
            size_t j = aw__task_index(v, n, next);
            if (j == n || color[j] == 2)
                continue;
            if (color[j] == 1) { /* back to a task on the stack: a cycle */
                cycles++;
                aw__dump_cycle(f, v, st, pos[j], top);
                continue;
            }
            st[++top] = (aw__dfs_frame_t){.i = j};
            color[j] = 1;
            pos[j] = top;
        }
    }
out:
    aw__free(v);
    aw__free(st);
    aw__free(color);
    aw__free(pos);
    return cycles;
}

/* Which one t waits for (L3: the objects it waits on, not only their
 * kind): a lock or a semaphore by its name, a condition by its lock's,
 * a task by its name and id. An event has no name. */
static void aw__dump_wait_on(FILE *f, const aw_task_t *t) {
    aw_task_t *o = aw__waits_for(t);
    switch (t->wait_kind) {
    case AW__WAIT_LOCK: {
        const aw_lock_t *l = t->wait_on;
        fprintf(f, " '%s'", l->name ? l->name : "?");
        if (o)
            fprintf(f, " held by task '%s' (id %llu)", o->name, (unsigned long long)o->id);
        break;
    }
    case AW__WAIT_SEMAPHORE: {
        const aw_sem_t *sem = t->wait_on;
        fprintf(f, " '%s'", sem->name ? sem->name : "?");
        break;
    }
    case AW__WAIT_CONDITION: {
        const aw_cond_t *c = t->wait_on;
        fprintf(f, " of lock '%s'", c->lock && c->lock->name ? c->lock->name : "?");
        break;
    }
    case AW__WAIT_TASK:
        if (o)
            fprintf(f, " '%s' (id %llu) to finish", o->name, (unsigned long long)o->id);
        break;
    default:
        break;
    }
}

int aw_loop_dump(FILE *f) {
    aw_loop_t *l = aw__loop_tls;
    if (!l)
        return 0;
    aw_ns_t now = aw_now();
    struct aw__core *c = l->core;
    fprintf(f, "awith loop: %zu task(s), %zu timer(s), %zu fd waiter(s), %zu job(s) in the pool\n",
            c->ntasks, l->timers.live, l->fd_waiters, l->jobs);
    aw__list_each(&c->tasks, node) {
        aw_task_t *t = aw__container(node, aw_task_t, live);
        fprintf(f, "task '%s' (id %llu) %s, spawned at %s:%d", t->name,
                (unsigned long long)t->id, aw__state_name(t), t->file, t->line);
        /* a generator names the task it runs for while its root hangs in
         * that task's chain (it runs, or an aw_for consumes it); driven by
         * hand and parked at its yield, it runs for nobody, and the last
         * task that resumed it may be gone (cm/gen.c) */
        if (t->delegator && t->root.parent)
            fprintf(f, ", generator of task '%s'", t->delegator->name);
        else if (t->delegator)
            fputs(", async generator parked at its yield", f);
        fputc('\n', f);
        aw__chain_t chain = aw__scope_walk(t->scope);
        if (chain.deadline != AW_NEVER)
            fprintf(f, "  deadline: in %.3f ms\n", (double)(chain.deadline - now) / 1e6);
        if (chain.cancelled)
            fprintf(f, "  cancelled\n");
        for (aw_with_t *w = t->withs; w; w = w->outer)
            fprintf(f, "  in manager '%s' (%s phase, %.3f ms), entered at %s:%d\n",
                    aw_cm_name(w->cm), aw__phase_name(w),
                    (double)(now - w->since) / 1e6, w->file, w->line);
        aw__list_each(&t->locks, n) {
            const aw_lock_t *lk = aw__container(n, aw_lock_t, held);
            fprintf(f, "  holds lock '%s'", lk->name ? lk->name : "?");
            if (lk->file)
                fprintf(f, ", acquired at %s:%d", lk->file, lk->line);
            fputc('\n', f);
        }
        if (t->state == AW__T_WAITING && t->wait_kind != AW__WAIT_NONE) {
            fprintf(f, "  waits for %s", aw__wait_names[t->wait_kind]);
            aw__dump_wait_on(f, t);
            fputc('\n', f);
        }
    }
    return aw__dump_cycles(f, &c->tasks, c->ntasks);
}

/* ---- the dump on a signal ----
 * The handler only sets a flag and writes an eventfd that sits in the
 * registered loop's epoll set (edge-triggered, so the loop's own wake-up
 * branch handles it: it reads the loop's eventfd and finds nothing). The
 * loop sees the flag at its next round (src/loop/loop.c) and calls
 * aw__sig_hook there, on its own thread, outside any task. */

static int aw__sig_efd = -1;       /* one per process, kept open */
static aw_loop_t *aw__sig_loop;    /* the loop that dumps */
static int aw__sig_num;
static struct sigaction aw__sig_old;

static void aw__sig_handler(int sig) {
    int e = errno;
    uint64_t one = 1;
    aw__loop_signalled = 1;
    ssize_t r = write(aw__sig_efd, &one, sizeof one);
    (void)r;
    errno = e;
}

static void aw__sig_hook(aw_loop_t *l) {
    if (l != aw__sig_loop)
        return; /* another thread's loop: the flag is for the registered one */
    aw__loop_signalled = 0;
    uint64_t v;
    ssize_t r = read(aw__sig_efd, &v, sizeof v);
    (void)r;
    aw_loop_dump(stderr);
    fflush(stderr);
}

/* Stop dumping on the signal: its previous action back. */
static void aw__sig_off(void) {
    if (aw__sig_num)
        sigaction(aw__sig_num, &aw__sig_old, NULL);
    aw__sig_num = 0;
    aw__sig_loop = NULL;
}

/* A loop closes: if it is the one that dumps, the dump ends with it, as
 * cancel_on_signals' handler does. Left in place, it would point to a
 * freed loop, keep the signal from its previous action, and refuse
 * another signal to every later loop (-EBUSY). */
static void aw__sig_loop_closed(aw_loop_t *l) {
    if (l == aw__sig_loop)
        aw__sig_off();
}

int aw_loop_dump_on_signal(int sig) {
    aw_loop_t *l = aw__loop_tls;
    if (!l)
        return -EPERM;
    if (sig == 0) {
        aw__sig_off();
        return 0;
    }
    if (aw__sig_num && aw__sig_num != sig)
        return aw_raise(-EBUSY, "the loop dump is already on signal %d", aw__sig_num);
    if (aw__sig_efd < 0) {
        aw__sig_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (aw__sig_efd < 0)
            return aw_raise(-errno, "cannot make an eventfd for the signal dump: %s",
                            strerror(errno));
    }
    /* not in the fd table: the loop only wakes (it checks the flag) */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = aw__sig_efd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, aw__sig_efd, &ev) < 0 && errno != EEXIST)
        return aw_raise(-errno, "cannot watch the signal dump's eventfd: %s", strerror(errno));
    aw__loop_signal_hook = aw__sig_hook;
    aw__loop_close_hook = aw__sig_loop_closed;
    aw__sig_loop = l;
    if (aw__sig_num == sig)
        return 0;
    struct sigaction sa = {0};
    sa.sa_handler = aw__sig_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &aw__sig_old) < 0)
        return aw_raise(-errno, "cannot install the handler of signal %d: %s", sig,
                        strerror(errno));
    aw__sig_num = sig;
    return 0;
}
