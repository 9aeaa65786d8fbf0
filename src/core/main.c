/* main.c: aw_main, the life cycle of a loop and its tasks: start the
 * main task, run until it ends, cancel what is left and wait for it
 * within the shutdown grace, then report what is still alive and every
 * failure of the root group. Also the stack-overflow guard: a SIGSEGV
 * handler on an alternate stack that names the task whose guard page was
 * hit. */
#include "core.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- stack overflow: a guard-page fault names the task ----
 *
 * The handler is process-wide while any aw_main runs (on any thread): the
 * first aw_main to start installs it and keeps the handler it replaced,
 * the last to return puts that one back. A fault that is not a task's
 * guard page goes to the replaced handler as the kernel would have
 * delivered it (sa_sigaction or sa_handler, its mask, SA_RESETHAND), or
 * kills the process as the default action does. aw_loop_opts_t's
 * no_segv_handler leaves SIGSEGV alone. */

static __thread stack_t aw__old_altstack; /* this thread's, put back after */
static pthread_mutex_t aw__segv_mu = PTHREAD_MUTEX_INITIALIZER;
static int aw__segv_users;               /* aw_main calls with the handler in */
static struct sigaction aw__old_segv;    /* what it replaced */

static void aw__write(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

/* The fault is not ours: do what the replaced disposition would have done. */
static void aw__segv_chain(int sig, siginfo_t *si, void *uc) {
    struct sigaction old = aw__old_segv;
    if (!(old.sa_flags & SA_SIGINFO) && (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
        /* default (or ignored: the kernel does not ignore a fault either):
         * return with SIG_DFL in place, the fault repeats and is fatal */
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    if (old.sa_flags & SA_RESETHAND)
        signal(SIGSEGV, SIG_DFL);
    sigset_t prev;
    pthread_sigmask(SIG_BLOCK, &old.sa_mask, &prev);
    if (old.sa_flags & SA_SIGINFO)
        old.sa_sigaction(sig, si, uc);
    else
        old.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
}

static void aw__segv(int sig, siginfo_t *si, void *uc) {
    aw_loop_t *l = aw__loop_tls;
    if (l && l->cur != &l->main) {
        aw_task_t *t = (aw_task_t *)l->cur;
        if (t->coro.stack && aw__stack_in_guard(t->coro.stack, si->si_addr)) {
            aw__write("awith: stack overflow in task '");
            aw__write(t->name);
            aw__write("' (spawned at ");
            aw__write(t->file);
            aw__write("): it ran into the guard page below its stack. Give it a bigger "
                      "stack (aw_task_opts_t.stack_size or aw_loop_opts_t.stack_size).\n");
            abort();
        }
    }
    aw__segv_chain(sig, si, uc);
}

/* Returns the alternate stack to free, or NULL (none installed). */
static void *aw__segv_install(const aw_loop_opts_t *o) {
    if (o->no_segv_handler)
        return NULL;
    stack_t ss = {0};
    ss.ss_size = 64 * 1024;
    ss.ss_sp = aw__malloc(ss.ss_size);
    if (!ss.ss_sp || sigaltstack(&ss, &aw__old_altstack) < 0) {
        aw__free(ss.ss_sp);
        return NULL;
    }
    pthread_mutex_lock(&aw__segv_mu);
    if (aw__segv_users++ == 0) {
        struct sigaction sa = {0};
        sa.sa_sigaction = aw__segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &aw__old_segv) < 0)
            aw__segv_users--; /* cannot fail for SIGSEGV; then no handler */
    }
    pthread_mutex_unlock(&aw__segv_mu);
    return ss.ss_sp;
}

static void aw__segv_remove(void *altstack) {
    if (!altstack)
        return;
    pthread_mutex_lock(&aw__segv_mu);
    if (aw__segv_users > 0 && --aw__segv_users == 0) {
        /* put the program's handler back, unless it replaced ours meanwhile */
        struct sigaction cur;
        if (sigaction(SIGSEGV, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
            cur.sa_sigaction == aw__segv)
            sigaction(SIGSEGV, &aw__old_segv, NULL);
    }
    pthread_mutex_unlock(&aw__segv_mu);
    if (aw__old_altstack.ss_flags & SS_DISABLE) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
    } else {
        sigaltstack(&aw__old_altstack, NULL);
    }
    aw__free(altstack);
}

/* ---- the life of a loop: open, start, close (aw_main, aw_loop_new) ---- */

static int aw__main_done(aw_loop_t *l) {
    return !l->core->main || l->core->main->state == AW__T_DONE;
}

static int aw__all_done(aw_loop_t *l) { return l->core->ntasks == 0; }

static void aw__report_alive(aw_loop_t *l, const char *why) {
    aw__logbuf_t b;
    FILE *f = aw__log_begin(&b);
    fprintf(f, "awith: %s; %zu task(s) still alive:\n", why, l->core->ntasks);
    aw__list_each(&l->core->tasks, n) {
        aw_task_t *t = aw__container(n, aw_task_t, live);
        /* a generator left suspended by its consumer (which may be gone:
         * only the pointer is tested) is named as one (SEMANTICS E3) */
        fprintf(f, "  %s '%s' (id %llu, %s at %s:%d), %s\n",
                t->delegator ? "async generator" : "task", t->name, (unsigned long long)t->id,
                t->delegator ? "made" : "spawned", t->file, t->line,
                t->state == AW__T_WAITING ? "suspended" : "ready");
        for (aw_with_t *w = t->withs; w; w = w->outer)
            fprintf(f, "    inside manager '%s' (entered at %s:%d), in its %s\n",
                    w->cm.type->name, w->file, w->line,
                    w->state == AW__WITH_ENTER ? "enter" : w->state == AW__WITH_EXIT ? "exit" : "body");
        if (aw__task_locks) /* a held lock is reported with its site (SEMANTICS M9) */
            aw__task_locks->print(t, f);
    }
    aw__log_end(l, &b);
}

void aw__atclose_add(aw__atclose_t *a) {
    struct aw__core *c = aw__loop_tls->core;
    a->prev = NULL;
    a->next = c->atclose;
    if (c->atclose)
        c->atclose->prev = a;
    c->atclose = a;
    a->linked = true;
}

void aw__atclose_remove(aw__atclose_t *a) {
    if (!a->linked)
        return;
    if (a->prev)
        a->prev->next = a->next;
    else
        aw__loop_tls->core->atclose = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->linked = false;
}

/* What layers above left for the close (aw__atclose_t): no task runs
 * any more, so nothing of theirs can be in use. */
static void aw__atclose_run(struct aw__core *c) {
    while (c->atclose) {
        aw__atclose_t *a = c->atclose;
        aw__atclose_remove(a);
        a->fn(a);
    }
}

static void aw__report_err(aw_loop_t *l, const char *what, const aw_err_t *e) {
    aw__logbuf_t b;
    FILE *f = aw__log_begin(&b);
    fprintf(f, "awith: %s:\n", what);
    aw_err_print(e, f);
    aw__log_end(l, &b);
}

int aw__rt_open(const aw_loop_opts_t *opts, const char *who, aw__rt_t **out) {
    if (aw__loop_tls)
        return -EINVAL; /* one loop per thread */
    /* No task exists yet to hold an error record: a failure to start is
     * reported, naming the call that failed, and returned. The loop's own
     * hook is not there yet either: the options' is used directly. */
    aw_loop_t tmp = {0};
    if (opts)
        tmp.opts = *opts;
    aw__rt_t *rt = aw__calloc(1, sizeof *rt);
    if (!rt) {
        aw__log(&tmp, "awith: %s cannot start: out of memory for the loop\n", who);
        return -ENOMEM;
    }
    aw_loop_t *l = &rt->loop;
    const char *what = "?";
    int rc = aw__loop_init(l, opts, &what);
    if (rc < 0) {
        aw__log(&tmp, "awith: %s cannot start the loop: %s failed: %s\n", who, what,
                aw_strerror(rc));
        aw__free(rt);
        return rc;
    }
    l->core = &rt->core;
    l->reap = aw__task_reap;
    aw__group_init_root(&rt->core.root);
    if (l->opts.cancel_on_signals && aw__sigc_install(l) < 0) {
        aw__log(&tmp, "awith: %s cannot start: cancel_on_signals is taken by another loop "
                      "(one per process)\n", who);
        aw__loop_fini(l);
        aw__free(rt);
        return -EBUSY;
    }
    aw__loop_tls = l;
    rt->altstack = aw__segv_install(&l->opts);
    *out = rt;
    return 0;
}

int aw__rt_start(aw__rt_t *rt, aw_task_fn fn, void *arg) {
    aw_task_t *main_task = NULL;
    int rc = aw__spawn(NULL, fn, arg, NULL, &main_task, "main", __FILE__, __LINE__);
    if (rc < 0) {
        aw__log(&rt->loop, "awith: cannot start the main task: %s\n", aw_strerror(rc));
        return rc;
    }
    rt->core.main = main_task;
    return 0;
}

void aw__rt_cancel(aw__rt_t *rt) {
    if (rt->core.root.state == AW__GROUP_DRAINING)
        return;
    aw_scope_cancel(&rt->core.root.scope);
    rt->core.root.state = AW__GROUP_DRAINING;
}

int aw__rt_close(aw__rt_t *rt, int rc) {
    aw_loop_t *l = &rt->loop;
    if (rt->stopped == -EDEADLK)
        aw__report_alive(l, "deadlock: every task waits for something that cannot happen");
    /* shutdown: cancel what is left, wait for it within the grace; a
     * signal now cancels nothing more (the main task is done or
     * cancelled), so a task stuck for good is a deadlock again */
    l->signal_awaited = 0;
    aw__rt_cancel(rt);
    int lr = aw__loop_run(l, aw__all_done, aw_now() + l->opts.shutdown_grace);
    aw_task_t *main_task = rt->core.main;
    if (main_task) {
        rc = main_task->status; /* 0 while it runs: then -EBUSY below */
        if (rc < 0 && main_task->err)
            aw__report_err(l, "the main task failed", main_task->err);
        /* A Ctrl-C is never lost ((c) 5): a main task that returned 0
         * without reaching a point where the signal's cancel showed (it
         * came during an exit or a shield, and no suspension followed)
         * did not handle it, so the run was interrupted, as asyncio.run
         * and trio.run then raise KeyboardInterrupt. One that saw
         * -ECANCELED and returned 0 handled it (awith/signal.h). */
        if (rt->signo && rc == 0 && main_task->state == AW__T_DONE && !main_task->cancel_seen) {
            const char *sig = sigabbrev_np(rt->signo) ? sigabbrev_np(rt->signo) : "signal";
            aw__log(l, "awith: the main task returned 0 but never saw the cancel of the SIG%s "
                       "it got: aw_main returns -ECANCELED\n", sig);
            rc = -ECANCELED;
        }
    }
    if (lr == -ECHILD || rt->stopped == -ECHILD)
        aw__log(l, "awith: this process is a child of fork() and its loop is still the "
                   "parent's: its tasks cannot be awaited (call aw_loop_fork() in the child "
                   "before using the loop)\n");
    if (lr < 0 || l->core->ntasks) {
        aw__report_alive(l, "loop closed with tasks alive");
        if (rc == 0)
            rc = -EBUSY;
        /* they never run again: what they had raised goes with the loop
         * (their stacks go with its stack cache) */
        aw__list_each(&l->core->tasks, n) {
            aw_task_t *t = aw__container(n, aw_task_t, live);
            aw__err_free(t->err);
            t->err = NULL;
        }
    }
    aw__atclose_run(l->core);
    /* Resources left open (SEMANTICS (c) 16, issue 10 item 9): each is
     * named with who opened it, and the loop did not close cleanly. */
    if (aw__track_report(l) && rc == 0)
        rc = -EBUSY;
    if (lr == -ECHILD || rt->stopped == -ECHILD)
        rc = -ECHILD; /* the cause, rather than the cancel it led to */
    /* Failures of the root group's tasks are reported, and are not only
     * printed (SEMANTICS (c) 13): a main task that succeeded still
     * makes aw_main fail with the group error code. */
    if (rt->core.root.failures) {
        if (rc == 0)
            rc = -AW_EGROUP;
        for (aw_err_t *e = rt->core.root.failures; e; e = e->next)
            aw__report_err(l, "a task of the root group failed", e);
        aw_err_t *e = rt->core.root.failures;
        while (e) {
            aw_err_t *n = e->next;
            aw__err_free(e);
            e = n;
        }
    }
    /* A joinable task of the root group hands its failure to its joiner;
     * one never joined has no one else to report it to (SEMANTICS I6,
     * (c) 13): it fails aw_main as any other root-group failure. */
    aw__list_each_safe(&rt->core.root.done, n) {
        aw_task_t *t = aw__container(n, aw_task_t, sibling);
        if (t->unjoined_failure && t != main_task) { /* (the main task's is reported above) */
            if (rc == 0)
                rc = -AW_EGROUP;
            if (t->err)
                aw__report_err(l, "a task of the root group failed and was never joined", t->err);
            else
                aw__log(l, "awith: task '%s' of the root group failed (%s) and was never joined\n",
                        t->name, aw_err_name(t->status));
        }
        aw__task_release(t);
    }
    /* The close joins the pool's threads: a work that never returns (a
     * cancelled call's work runs to its end) would hold it without a
     * word. Said after 1 s; the close still waits (the work may use
     * memory the program frees after aw_main returns). */
    int busy = aw__workers_busy_after(l, AW_SEC(1));
    if (busy)
        aw__log(l, "awith: the loop's close waits for %d thread-pool call%s still running "
                   "(aw_to_thread work that has not returned)\n", busy, busy > 1 ? "s" : "");
    aw__side_cache_drop(l);
    while (rt->core.spare) {
        void *next = *(void **)rt->core.spare;
        aw__free(rt->core.spare);
        rt->core.spare = next;
    }
    aw__segv_remove(rt->altstack);
    aw__sigc_remove(l);
    aw__loop_tls = NULL;
    aw__loop_fini(l);
    aw__free(rt);
    return rc;
}

/* ---- fork ---- */

int aw_loop_fork(void) {
    aw_loop_t *l = aw__loop_tls;
    if (!l)
        return -EPERM;
    const char *what = "?";
    int rc = aw__loop_refork(l, &what);
    if (rc < 0) {
        if (aw__task_cur())
            return aw_raise(rc, "aw_loop_fork: %s failed: %s", what, aw_strerror(rc));
        aw__log(l, "awith: aw_loop_fork: %s failed: %s\n", what, aw_strerror(rc));
        return rc;
    }
    aw__sigc_refork(l); /* SIGINT/SIGTERM wake the child's eventfd now */
    if (((aw__rt_t *)l)->stopped == -ECHILD)
        ((aw__rt_t *)l)->stopped = 0; /* a step's -ECHILD is over */
    return 0;
}

/* ---- aw_main ---- */

int aw_main_opts(const aw_loop_opts_t *opts, aw_task_fn fn, void *arg) {
    aw__rt_t *rt;
    int rc = aw__rt_open(opts, "aw_main", &rt);
    if (rc < 0)
        return rc;
    rc = aw__rt_start(rt, fn, arg);
    if (rc == 0)
        rt->stopped = aw__loop_run(&rt->loop, aw__main_done, AW_NEVER);
    return aw__rt_close(rt, rc);
}

int aw_main(aw_task_fn fn, void *arg) { return aw_main_opts(NULL, fn, arg); }
