/* signal.c: signals for tasks (awith/signal.h).
 *
 * aw_signals: a manager that blocks its signals on the loop's thread and
 * reads them from a signalfd the task waits on like any fd. The thread's
 * mask is shared by every task of the loop, so blocking is counted per
 * signal (a thread-local table): the first block to take a signal blocks
 * it (unless the program had), the last to leave unblocks it; tasks'
 * blocks can then end in any order.
 *
 * cancel_on_signals: a sigaction handler for SIGINT and SIGTERM. It does
 * only async-signal-safe things: count, set the loop's flag, write its
 * eventfd (to wake a sleeping epoll). The loop's next round calls
 * aw__sigc_act, which cancels the main task. The second signal is
 * handled inside the handler itself, so that it works however stuck the
 * loop is: default disposition back, raise: the process ends. */
#include "core.h"

#include <awith/signal.h>
#include <pthread.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* ---- aw_signals ---- */

static __thread unsigned aw__sig_users[_NSIG]; /* blocks holding each signal */
static __thread sigset_t aw__sig_ours;         /* what the blocks blocked */

static void aw__sig_release(const sigset_t *set, int upto) {
    sigset_t un;
    sigemptyset(&un);
    for (int s = 1; s < upto; s++)
        if (sigismember(set, s) == 1 && --aw__sig_users[s] == 0 && sigismember(&aw__sig_ours, s) == 1) {
            sigaddset(&un, s);
            sigdelset(&aw__sig_ours, s);
        }
    pthread_sigmask(SIG_UNBLOCK, &un, NULL);
}

static int aw__signals_enter(void *self, void **out) {
    aw_signals_t *s = self;
    if (sigisemptyset(&s->set))
        return aw_raise(-EINVAL, "aw_signals: the set is empty");
    if (sigismember(&s->set, SIGKILL) == 1 || sigismember(&s->set, SIGSTOP) == 1)
        return aw_raise(-EINVAL, "aw_signals: SIGKILL and SIGSTOP cannot be caught");
    sigset_t cur, add;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    sigemptyset(&add);
    for (int sig = 1; sig < _NSIG; sig++)
        if (sigismember(&s->set, sig) == 1 && aw__sig_users[sig]++ == 0 &&
            sigismember(&cur, sig) != 1) {
            sigaddset(&add, sig);
            sigaddset(&aw__sig_ours, sig);
        }
    /* block before the fd exists: a signal arriving in between is kept
     * pending, and the signalfd reads pending signals */
    pthread_sigmask(SIG_BLOCK, &add, NULL);
    s->fd = signalfd(-1, &s->set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->fd < 0) {
        int rc = -errno;
        aw__sig_release(&s->set, _NSIG);
        return aw_raise(rc, "aw_signals: signalfd failed: %s", aw_strerror(rc));
    }
    *out = s;
    return 0;
}

static int aw__signals_exit(void *self, const aw_err_t *err) {
    aw_signals_t *s = self;
    aw_fd_forget(s->fd);
    close(s->fd);
    s->fd = -1;
    aw__sig_release(&s->set, _NSIG);
    return 0;
}

const aw_cm_type_t aw_signals_type = {"signals", aw__signals_enter, aw__signals_exit};

int aw_signals_wait(aw_signals_t *s, int *signo) {
    if (!aw__task_cur())
        return aw__no_task("aw_signals_wait");
    if (!s || s->fd < 0)
        return aw_raise(-EINVAL, "aw_signals_wait: the aw_signals block is not entered");
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(s->fd, &si, sizeof si);
        if (n == (ssize_t)sizeof si) {
            if (signo)
                *signo = (int)si.ssi_signo;
            return 0;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return aw_raise(-errno, "aw_signals_wait: read of the signalfd failed: %s",
                            aw_strerror(-errno));
        int rc = aw_fd_wait(s->fd, AW_READ);
        if (rc < 0)
            return rc;
    }
}

int aw_signal_wait(const sigset_t *set, int *signo) {
    if (!aw__task_cur())
        return aw__no_task("aw_signal_wait");
    /* What this call raised (a failed enter), not what was pending before
     * it (an earlier failure, an exit's handed error): those are not its. */
    uint64_t mark = aw_err_mark();
    int rc = 0;
    aw_with (aw_signals_t *s, aw_signals(set))
        rc = aw_signals_wait(s, signo);
    return rc < 0 ? rc : aw__status_since(mark);
}

/* ---- cancel_on_signals ---- */

static const int aw__sigc_sigs[2] = {SIGINT, SIGTERM};
static pthread_mutex_t aw__sigc_mu = PTHREAD_MUTEX_INITIALIZER;
static aw_loop_t *aw__sigc_loop;          /* the one loop that has it, or NULL */
static struct sigaction aw__sigc_old[2];  /* what it replaced */
static int aw__sigc_count;                /* signals caught (atomic) */
static volatile sig_atomic_t aw__sigc_signo, aw__sigc_evfd = -1;

static void aw__sigc_handler(int sig) {
    int e = errno;
    if (__atomic_add_fetch(&aw__sigc_count, 1, __ATOMIC_SEQ_CST) == 1) {
        /* atomics: this handler runs on whichever thread took the
         * signal, the loop's reads them on its own (lock-free, so
         * async-signal-safe) */
        __atomic_store_n(&aw__sigc_signo, sig, __ATOMIC_RELAXED);
        __atomic_store_n(&aw__loop_sigcancel, 1, __ATOMIC_RELEASE);
        uint64_t one = 1;
        ssize_t w = write(__atomic_load_n(&aw__sigc_evfd, __ATOMIC_RELAXED), &one, sizeof one);
        (void)w;
    } else {
        /* the user insists: end now, as the signal would have */
        static const char msg[] = "awith: second signal while the main task is cancelled: "
                                  "exiting at once\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        signal(sig, SIG_DFL);
        raise(sig); /* blocked in this handler: delivered as it returns */
    }
    errno = e;
}

/* On the loop's thread, at its next round after the first signal. */
static void aw__sigc_act(aw_loop_t *l) {
    __atomic_store_n(&aw__loop_sigcancel, 0, __ATOMIC_RELAXED);
    l->signal_awaited = 0; /* a second one ends the process: no progress to wait for */
    aw_task_t *m = l->core->main;
    int signo = __atomic_load_n(&aw__sigc_signo, __ATOMIC_RELAXED);
    const char *sig = sigabbrev_np(signo) ? sigabbrev_np(signo) : "signal";
    if (m && m->state == AW__T_DONE) { /* shutting down: what is left is cancelled already */
        aw__log(l, "awith: %s received while shutting down (another one ends the process)\n", sig);
        return;
    }
    aw__log(l, "awith: %s received: cancelling the main task (another one ends the process)\n", sig);
    if (m) {
        m->cancel_seen = 0; /* from now on: does the task see it? (aw__rt_close) */
        ((aw__rt_t *)l)->signo = aw__sigc_signo;
        aw_task_cancel(m);
    }
    else
        aw__rt_cancel((aw__rt_t *)l); /* an embedded loop with no main task */
}

int aw__sigc_install(aw_loop_t *l) {
    pthread_mutex_lock(&aw__sigc_mu);
    if (aw__sigc_loop) {
        pthread_mutex_unlock(&aw__sigc_mu);
        return -EBUSY;
    }
    aw__sigc_loop = l;
    __atomic_store_n(&aw__sigc_count, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&aw__loop_sigcancel, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&aw__sigc_evfd, l->evfd, __ATOMIC_RELAXED);
    l->on_signal = aw__sigc_act;
    l->signal_awaited = 1;
    struct sigaction sa = {0};
    sa.sa_handler = aw__sigc_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++) {
        sigaddset(&sa.sa_mask, aw__sigc_sigs[i]); /* one handler at a time */
    }
    for (int i = 0; i < 2; i++)
        sigaction(aw__sigc_sigs[i], &sa, &aw__sigc_old[i]);
    pthread_mutex_unlock(&aw__sigc_mu);
    return 0;
}

void aw__sigc_remove(aw_loop_t *l) {
    pthread_mutex_lock(&aw__sigc_mu);
    if (aw__sigc_loop == l) {
        for (int i = 0; i < 2; i++) {
            /* put the program's back, unless the second signal already
             * did or the program replaced ours */
            struct sigaction cur;
            if (sigaction(aw__sigc_sigs[i], NULL, &cur) == 0 && cur.sa_handler == aw__sigc_handler)
                sigaction(aw__sigc_sigs[i], &aw__sigc_old[i], NULL);
        }
        __atomic_store_n(&aw__sigc_evfd, -1, __ATOMIC_RELAXED);
        __atomic_store_n(&aw__loop_sigcancel, 0, __ATOMIC_RELAXED);
        l->on_signal = NULL;
        l->signal_awaited = 0;
        aw__sigc_loop = NULL;
    }
    pthread_mutex_unlock(&aw__sigc_mu);
}

/* After aw_loop_fork: the handler must wake the child's new eventfd. */
void aw__sigc_refork(aw_loop_t *l) {
    if (aw__sigc_loop == l)
        __atomic_store_n(&aw__sigc_evfd, l->evfd, __ATOMIC_RELAXED);
}
