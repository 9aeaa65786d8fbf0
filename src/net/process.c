/* process.c: child processes (aw_process_*): posix_spawn, pipes as
 * streams, a pidfd to wait on, termination and reaping on every way out.
 *
 * The pipes are streams with a transport of their own (aw_stream_io_t,
 * as TLS has): read(2) and write(2) instead of recv/send, and a write
 * that turns SIGPIPE into -EPIPE for this thread only (the signal is
 * blocked around the write and a SIGPIPE it raised is taken back with
 * sigtimedwait, as libcurl does), so the program's SIGPIPE disposition
 * is never touched. Two extra system calls per write on a pipe: a child
 * process's pipe is not a hot path. The parent's ends are O_CLOEXEC from
 * birth (pipe2), so a process spawned by another thread at the same time
 * cannot inherit them.
 *
 * Waiting: the pidfd becomes readable when the child ends; the wait then
 * reaps it with waitid(P_PID, WNOHANG). Without pidfds, a backing-off
 * poll of waitid. A spawn costs the vfork-like clone of posix_spawn, the
 * pipes and the pidfd: about 6 fds with three pipes, 1 left per process
 * after the spawn (the pidfd) plus the pipes' parent ends. */
#include "net.h"
#include "../core/core.h" /* aw__exit_chain: what the exit's shield hides */

#include <awith/process.h>
#include <awith/scope.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

enum { AW__KILL_GRACE_DEFAULT = 5 };   /* seconds, Trio's */

/* aw_process_t.pidfd of a child reaped elsewhere before its pidfd could
 * be opened: its pid is no longer ours (another process may take it), so
 * nothing may be sent to it by pid; -1 is "no pidfds here: signal by pid,
 * which stays ours until we reap it". */
enum { AW__PIDFD_GONE = -2 };

/* ---- pipes as streams ---- */

static ssize_t aw__pipe_recv(aw_stream_t *s, void *buf, size_t n) {
    for (;;) {
        ssize_t r = read(s->fd, buf, n);
        if (r >= 0)
            return r;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        int rc = aw_fd_wait(s->fd, AW_READ);
        if (rc < 0)
            return rc;
    }
}

/* write(2) with SIGPIPE turned into EPIPE, for this thread only. */
static ssize_t aw__pipe_write(int fd, const void *buf, size_t n) {
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    bool was_blocked = sigismember(&old, SIGPIPE);
    ssize_t r = write(fd, buf, n);
    int e = errno;
    if (!was_blocked) {
        if (r < 0 && e == EPIPE) {
            /* the write raised SIGPIPE for this thread: take it back */
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    errno = e;
    return r;
}

static ssize_t aw__pipe_send(aw_stream_t *s, const void *buf, size_t n) {
    for (;;) {
        ssize_t r = aw__pipe_write(s->fd, buf, n);
        if (r >= 0)
            return r;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        int rc = aw_fd_wait(s->fd, AW_WRITE);
        if (rc < 0)
            return rc;
    }
}

static ssize_t aw__pipe_not_readable(aw_stream_t *s, void *buf, size_t n) {
    (void)buf;
    (void)n;
    (void)s;
    return -EBADF;
}

static ssize_t aw__pipe_not_writable(aw_stream_t *s, const void *buf, size_t n) {
    (void)buf;
    (void)n;
    (void)s;
    return -EBADF;
}

/* A pipe has no half-close: the child reads end of file only once our
 * write end is closed. The stream stays open all the same, as a socket
 * shut for writing does (stream.h: a write after shutdown is -EPIPE, a
 * second shutdown does nothing; stream.c refuses writes on its wshut
 * before they reach the fd): /dev/null takes the fd's place, dup3
 * closing the pipe's end atomically (no window where the fd number is
 * free for another thread). Without an fd for /dev/null the end is just
 * closed, and the stream reads as closed (-EBADF). */
static int aw__pipe_shutdown_in(aw_stream_t *s) {
    aw_fd_forget(s->fd);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0 && dup3(null, s->fd, O_CLOEXEC) >= 0) {
        close(null);
        return 0;
    }
    if (null >= 0)
        close(null);
    close(s->fd);
    s->fd = -1;
    return 0;
}

static int aw__pipe_shutdown_out(aw_stream_t *s) {
    (void)s;
    return 0; /* nothing of ours to shut on a pipe we only read */
}

static void aw__pipe_close(aw_stream_t *s) { (void)s; }

static const aw_stream_io_t aw__pipe_in_io = {aw__pipe_not_readable, aw__pipe_send,
                                              aw__pipe_shutdown_in, aw__pipe_close};
static const aw_stream_io_t aw__pipe_out_io = {aw__pipe_recv, aw__pipe_not_writable,
                                               aw__pipe_shutdown_out, aw__pipe_close};

/* ---- spawn ---- */

/* A pipe whose two ends are above 2: a child end equal to the standard
 * fd it goes to would make dup2 a no-op that leaves O_CLOEXEC set on
 * some C libraries (possible when the program closed its stdin). */
static int aw__pipe_open(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        if (fds[i] <= 2) {
            int up = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            int e = errno;
            close(fds[i]);
            fds[i] = up;
            if (up < 0) {
                if (i == 0)
                    close(fds[1]);
                else
                    close(fds[0]);
                fds[0] = fds[1] = -1;
                return -e;
            }
        }
    }
    return 0;
}

static void aw__fd_close(int *fd) {
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void aw__process_release_pidfd(aw_process_t *p) {
    if (p->pidfd >= 0) {
        aw_fd_forget(p->pidfd);
        close(p->pidfd);
    }
    p->pidfd = -1;
}

int aw_process_spawn(aw_process_t *p, const char *const argv[], const aw_process_opts_t *o) {
    const char *const *keep_argv = p->argv;
    const aw_process_opts_t *keep_opts = p->opts;
    memset(p, 0, sizeof *p);
    p->argv = keep_argv;
    p->opts = keep_opts;
    p->pidfd = -1;
    aw__stream_clear(&p->in);
    aw__stream_clear(&p->out);
    aw__stream_clear(&p->err);
    static const aw_process_opts_t none;
    if (!o)
        o = &none;
    if (!argv || !argv[0])
        return aw_raise(-EINVAL, "spawn: empty argv");
    const char *base = strrchr(argv[0], '/');
    snprintf(p->name, sizeof p->name, "%s", base ? base + 1 : argv[0]);
    if (o->in < 0 || o->in > AW_PROCESS_DEVNULL || o->out < 0 || o->out > AW_PROCESS_DEVNULL ||
        o->err < 0 || o->err > AW_PROCESS_STDOUT)
        return aw_raise(-EINVAL, "spawn %s: a standard stream's mode is out of range "
                                 "(in %d, out %d, err %d)", argv[0], o->in, o->out, o->err);
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    p->kill_grace = o->kill_grace > 0 ? o->kill_grace : AW_SEC(AW__KILL_GRACE_DEFAULT);
    if (p->kill_grace > AW_SEC(86400 * 365))
        p->kill_grace = AW_SEC(86400 * 365); /* "forever", without overflowing a deadline */

    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    const char *what = "pipe";
    char cwd_what[320];
    if ((o->in == AW_PROCESS_PIPE && (rc = aw__pipe_open(pin)) < 0) ||
        (o->out == AW_PROCESS_PIPE && (rc = aw__pipe_open(pout)) < 0) ||
        (o->err == AW_PROCESS_PIPE && (rc = aw__pipe_open(perr)) < 0))
        goto fail;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    what = "posix_spawn";
    if ((rc = -posix_spawn_file_actions_init(&fa)) < 0)
        goto fail;
    if ((rc = -posix_spawnattr_init(&at)) < 0) {
        posix_spawn_file_actions_destroy(&fa);
        goto fail;
    }
    int e = 0;
    if (o->in == AW_PROCESS_PIPE)
        e = e ? e : posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    else if (o->in == AW_PROCESS_DEVNULL)
        e = e ? e : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (o->out == AW_PROCESS_PIPE)
        e = e ? e : posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    else if (o->out == AW_PROCESS_DEVNULL)
        e = e ? e : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (o->err == AW_PROCESS_PIPE)
        e = e ? e : posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    else if (o->err == AW_PROCESS_DEVNULL)
        e = e ? e : posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    else if (o->err == AW_PROCESS_STDOUT)
        e = e ? e : posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (o->cwd)
        e = e ? e : posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    /* the child starts clean: no signal blocked (a loop's thread may block
     * some), SIGPIPE at its default (the program may ignore it) */
    sigset_t empty, def;
    sigemptyset(&empty);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    e = e ? e : posix_spawnattr_setsigmask(&at, &empty);
    e = e ? e : posix_spawnattr_setsigdefault(&at, &def);
    e = e ? e : posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    if (!e) {
        char *const *envp = o->envp ? o->envp : environ;
        e = o->path ? posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, envp)
                    : posix_spawn(&pid, argv[0], &fa, &at, (char *const *)argv, envp);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    aw__fd_close(&pin[0]); /* the child's ends */
    aw__fd_close(&pout[1]);
    aw__fd_close(&perr[1]);
    if (e) {
        rc = -e;
        /* A missing or closed working directory fails with the codes of
         * a missing program: name the directory when it is the cause
         * (Python's subprocess names it too), not only the program. */
        struct stat st;
        if (o->cwd && (e == ENOENT || e == ENOTDIR || e == EACCES) &&
            (access(o->cwd, X_OK) < 0 || (stat(o->cwd, &st) == 0 && !S_ISDIR(st.st_mode)))) {
            snprintf(cwd_what, sizeof cwd_what, "working directory %s", o->cwd);
            what = cwd_what;
        }
        goto fail;
    }
    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0 && errno == ESRCH) {
        /* It ran, ended and was reaped already, by the kernel (SIGCHLD
         * ignored) or a waitpid(-1) elsewhere: the spawn succeeded, and
         * the wait says its status is gone (-ECHILD), as it does when
         * that happens after this point. No kill: the pid is not ours,
         * and no signal either (aw_process_signal: -ESRCH). */
        p->pidfd = AW__PIDFD_GONE;
    } else if (p->pidfd < 0 && errno != ENOSYS) {
        /* no fd left for it: do not leave a child nobody can wait for */
        rc = -errno;
        what = "pidfd_open";
        kill(pid, SIGKILL);
        siginfo_t si;
        while (waitid(P_PID, (id_t)pid, &si, WEXITED) < 0 && errno == EINTR) {
        }
        p->pid = 0;
        goto fail;
    }
    aw_track_open(&p->track, "process", "%s (pid %d)", p->name, (int)pid); /* -ENOMEM: untracked */
    char peer[64];
    if (pin[1] >= 0) {
        snprintf(peer, sizeof peer, "%s stdin", p->name);
        aw_stream_init(&p->in, pin[1], peer);
        p->in.io = &aw__pipe_in_io;
    }
    if (pout[0] >= 0) {
        snprintf(peer, sizeof peer, "%s stdout", p->name);
        aw_stream_init(&p->out, pout[0], peer);
        p->out.io = &aw__pipe_out_io;
    }
    if (perr[0] >= 0) {
        snprintf(peer, sizeof peer, "%s stderr", p->name);
        aw_stream_init(&p->err, perr[0], peer);
        p->err.io = &aw__pipe_out_io;
    }
    return 0;

fail:
    aw__fd_close(&pin[0]);
    aw__fd_close(&pin[1]);
    aw__fd_close(&pout[0]);
    aw__fd_close(&pout[1]);
    aw__fd_close(&perr[0]);
    aw__fd_close(&perr[1]);
    return aw_raise(rc, "spawn %s: %s%s%s", argv[0], strcmp(what, "posix_spawn") ? what : "",
                    strcmp(what, "posix_spawn") ? ": " : "", aw_strerror(rc));
}

/* ---- wait, signal, close ---- */

/* Reap if it has ended (block: wait until it has). 1: reaped, 0: still
 * running, < 0: raised. */
static int aw__process_reap(aw_process_t *p, bool block) {
    siginfo_t si;
    int r;
    do {
        memset(&si, 0, sizeof si);
        r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | (block ? 0 : WNOHANG));
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        p->reaped = true; /* not ours any more: nothing left to reap */
        p->exit_code = -1;
        aw__process_release_pidfd(p);
        return aw_raise(-e, "wait for %s (pid %d): %s%s", p->name, (int)p->pid, aw_strerror(-e),
                        e == ECHILD ? " (reaped elsewhere: SIGCHLD ignored, or waitpid(-1)?)" : "");
    }
    if (si.si_pid == 0)
        return 0;
    if (si.si_code == CLD_EXITED) {
        p->exit_code = si.si_status;
        p->term_signal = 0;
    } else {
        p->exit_code = -1;
        p->term_signal = si.si_status;
    }
    p->reaped = true;
    aw__process_release_pidfd(p);
    return 1;
}

/* Wait until the pidfd is readable (the process ended). Several tasks
 * may wait for one process, as Trio's and asyncio's waits allow (a
 * watcher task and the body, or aw_process_close while a watcher waits),
 * but the reactor has one reader per fd: a task that finds the slot
 * taken waits on a duplicate of the pidfd, an fd of its own for the same
 * process, held while it waits. Without an fd for it, it naps (*nap).
 * 0, or < 0 (raised). */
static int aw__process_wait_pidfd(aw_process_t *p, aw_ns_t *nap) {
    uint64_t m = aw_err_mark();
    int rc = aw_fd_wait(p->pidfd, AW_READ);
    if (rc != -EBUSY)
        return rc;
    aw_err_restore(m); /* another task waits: not an error of this wait */
    int dup = fcntl(p->pidfd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) {
        rc = aw_sleep(*nap);
        if (*nap < AW_MS(50))
            *nap *= 2;
        return rc;
    }
    rc = aw_fd_wait(dup, AW_READ);
    aw_fd_forget(dup);
    close(dup);
    return rc;
}

int aw_process_wait(aw_process_t *p) {
    int rc = aw_checkpoint();
    if (rc < 0)
        return rc;
    if (p->pid <= 0 && !p->reaped)
        return aw_raise(-ECHILD, "wait for a process that was never started");
    aw_ns_t nap = AW_MS(1);
    for (;;) {
        if (p->reaped)
            return 0; /* by us, or by another task that waited too */
        rc = aw__process_reap(p, false);
        if (rc)
            return rc < 0 ? rc : 0;
        uint64_t m = aw_err_mark();
        if (p->pidfd >= 0) {
            rc = aw__process_wait_pidfd(p, &nap);
        } else {
            rc = aw_sleep(nap);
            if (nap < AW_MS(50))
                nap *= 2;
        }
        if (rc == -EBADF && p->reaped) {
            /* another task reaped it and closed the pidfd under our wait */
            aw_err_restore(m);
            return 0;
        }
        if (rc < 0)
            return rc;
    }
}

int aw_process_signal(aw_process_t *p, int sig) {
    if (p->pid <= 0 || p->reaped)
        return aw_raise(-ESRCH, "signal %d to %s: %s", sig, p->pid > 0 ? p->name : "a process",
                        p->pid > 0 ? "it has been reaped" : "never started");
    if (p->pidfd == AW__PIDFD_GONE)
        return aw_raise(-ESRCH, "signal %d to %s (pid %d): it was reaped elsewhere (SIGCHLD "
                        "ignored, or waitpid(-1)?)", sig, p->name, (int)p->pid);
    int r = p->pidfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0)
                          : kill(p->pid, sig);
    if (r < 0 && errno != ESRCH) { /* ESRCH: it ended, not reaped yet */
        int e = errno;
        return aw_raise(-e, "signal %d to %s (pid %d): %s", sig, p->name, (int)p->pid,
                        aw_strerror(-e));
    }
    return 0;
}

static void aw__process_close_pipes(aw_process_t *p) {
    aw_stream_close(&p->in);
    aw_stream_close(&p->out);
    aw_stream_close(&p->err);
}

/* What close makes of a reap that failed with rc (raised after mark m).
 * -ECHILD: the status was taken elsewhere (SIGCHLD ignored, a
 * waitpid(-1)); the process is gone all the same and nothing of it is
 * left to release, so close, which always releases, has no error to
 * report (Python's Popen takes the lost status as 0; an explicit
 * aw_process_wait still says -ECHILD). */
static int aw__process_closed(int rc, uint64_t m) {
    if (rc == -ECHILD) {
        aw_err_restore(m);
        return 0;
    }
    return rc;
}

int aw_process_close(aw_process_t *p) {
    aw_track_close(&p->track); /* closed from here on, whatever the way out */
    aw__process_close_pipes(p);
    if (p->pid <= 0 || p->reaped) {
        aw__process_release_pidfd(p);
        return 0;
    }
    uint64_t m = aw_err_mark();
    int rc = aw__process_reap(p, false);
    if (rc)
        return rc < 0 ? aw__process_closed(rc, m) : 0;
    /* still running: ask, then insist */
    if (p->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, p->pidfd, SIGTERM, NULL, 0);
    else
        kill(p->pid, SIGTERM);
    rc = 0;
    aw_with (aw_scope_t *grace, aw_move_on_after(p->kill_grace))
        rc = aw_process_wait(p);
    if (!p->reaped) {
        if (p->pidfd >= 0)
            syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
        else
            kill(p->pid, SIGKILL);
        int r = aw__process_reap(p, true); /* SIGKILL: the kernel ends it now */
        if (r < 0)
            return aw__process_closed(r, m);
    }
    if (rc == -ECHILD)
        return aw__process_closed(rc, m);
    if (rc == -ECANCELED)
        return aw_cancel_pending() ? rc : 0; /* the grace's own end is no error */
    return rc;
}

/* ---- the manager ---- */

static int aw__process_enter(void *self, void **out) {
    aw_process_t *p = self;
    int rc = aw_process_spawn(p, p->argv, p->opts);
    if (rc < 0)
        return rc;
    *out = p;
    return 0;
}

/* Left cleanly, but in a cancelled scope (or past a deadline) that the
 * block did not reach a suspension point to see: Trio's aclose, whose
 * wait is a checkpoint, kills the child there. The exit is shielded
 * (decision 2), so it asks the chain below its shield. */
static bool aw__process_block_cancelled(void) {
    aw__chain_t c = aw__exit_chain(aw__task_cur());
    return c.cancelled || c.deadline <= aw_now();
}

static int aw__process_exit(void *self, const aw_err_t *err) {
    aw_process_t *p = self;
    if (!err && p->pid > 0 && !p->reaped && !aw__process_block_cancelled()) {
        /* a clean way out: end of input, then let it finish (Popen.__exit__) */
        aw__process_close_pipes(p);
        uint64_t m = aw_err_mark();
        int rc = aw_process_wait(p);
        if (rc == -ECHILD)
            rc = aw__process_closed(rc, m); /* it ended; its status went elsewhere */
        if (rc == 0)
            return aw_process_close(p); /* reaped: releases what is left, 0 */
        if (rc != -ECANCELED) {
            aw_process_close(p);
            return rc;
        }
        /* the exit's grace ran out: close kills it */
    }
    int rc = aw_process_close(p);
    return rc < 0 ? rc : 0;
}

const aw_cm_type_t aw_process_type = {
    .name = "process",
    .enter = aw__process_enter,
    .exit = aw__process_exit,
};
