/* introspect.c: the loop dump. Reads the task list, each task's with
 * chain, scope chain and held locks; costs nothing until called. A
 * deadlock is a cycle in the wait-for graph task -> lock -> owner task:
 * found by following at most ntasks edges from each waiting task. */
#include <awith/introspect.h>
#include <awith/lock.h>

#include "../core/core.h"

#include <errno.h>
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

static int aw__dump_cycles(FILE *f, const aw__list_t *tasks, size_t n) {
    int cycles = 0;
    aw__list_each(tasks, node) {
        aw_task_t *t = aw__container(node, aw_task_t, live);
        /* walk from t; a cycle through t is reported from its lowest id */
        aw_task_t *x = aw__waits_for(t);
        size_t steps = 0;
        uint64_t min = t->id;
        while (x && x != t && steps++ < n) {
            if (x->id < min)
                min = x->id;
            x = aw__waits_for(x);
        }
        if (x != t || min != t->id)
            continue;
        cycles++;
        fprintf(f, "DEADLOCK: ");
        aw_task_t *y = t;
        do {
            fprintf(f, "task '%s' (id %llu) ", y->name, (unsigned long long)y->id);
            if (aw__waits_lock(y)) {
                const aw_lock_t *l = y->wait_on;
                fprintf(f, "waits for lock '%s' held by ", l->name ? l->name : "?");
            } else if (aw__waits_join(y)) {
                fprintf(f, "joins ");
            } else {
                fprintf(f, "runs its generator ");
            }
            y = aw__waits_for(y);
        } while (y != t);
        fprintf(f, "task '%s' (id %llu)\n", t->name, (unsigned long long)t->id);
    }
    return cycles;
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
            aw_task_t *o = aw__waits_for(t);
            if (o && aw__waits_lock(t))
                fprintf(f, " '%s' held by task '%s' (id %llu)",
                        ((const aw_lock_t *)t->wait_on)->name, o->name, (unsigned long long)o->id);
            else if (o)
                fprintf(f, " '%s' (id %llu) to finish", o->name, (unsigned long long)o->id);
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

int aw_loop_dump_on_signal(int sig) {
    aw_loop_t *l = aw__loop_tls;
    if (!l)
        return -EPERM;
    if (sig == 0) {
        if (aw__sig_num)
            sigaction(aw__sig_num, &aw__sig_old, NULL);
        aw__sig_num = 0;
        aw__sig_loop = NULL;
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
