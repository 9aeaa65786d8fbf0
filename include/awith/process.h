/* awith/process.h: child processes with pipes as streams (asyncio's
 * create_subprocess_exec).
 *
 *   const char *argv[] = {"/bin/cat", NULL};
 *   aw_process_opts_t o = {.in = AW_PROCESS_PIPE, .out = AW_PROCESS_PIPE};
 *   aw_with (aw_process_t *p, aw_process(argv, &o)) {
 *       aw_stream_write(&p->in, "hi\n", 3);
 *       aw_stream_shutdown(&p->in);             // cat reads end of file
 *       char line[64];
 *       ssize_t n = aw_stream_read_line(&p->out, line, sizeof line);
 *       aw_process_wait(p);                     // p->exit_code, p->term_signal
 *   }   // pipes closed and the process reaped, whatever the way out
 *
 * The process starts with posix_spawn (vfork-like: no copy of the
 * parent's memory); the pipes are made close-on-exec, so the child gets
 * only its three. Waiting is a pidfd (pidfd_open) the loop's reactor
 * watches: no SIGCHLD handler, no signal state changed in the program.
 * Without pidfds (Linux before 5.3) waits poll waitpid(WNOHANG), every
 * 1 ms at first, up to every 50 ms.
 *
 * Termination (aw_process_close, and the manager's exit on an error or a
 * cancel): SIGTERM, then up to `kill_grace` (default 5 s, Trio's) for the
 * process to end, then SIGKILL; the process is always reaped, never left
 * a zombie. A cancel cuts the grace short (straight to SIGKILL), except
 * in the manager's exit, which is shielded: there the grace is bounded
 * by the exit's own grace (the loop's exit_grace, default 10 s). After
 * SIGKILL the reap blocks the loop's thread until the kernel has
 * finished the process (microseconds, unless it is stuck in an
 * uninterruptible sleep): a reap that waits for the reactor could itself
 * be cut by the cancel and leave a zombie.
 *
 * Only the child's pid is waited for (waitid P_PID): a program that
 * ignores SIGCHLD (the kernel then reaps children itself) or calls
 * waitpid(-1) elsewhere takes the status away; the wait then fails with
 * -ECHILD. Pipes to the child ignore SIGPIPE (a write to a child that
 * closed its stdin is -EPIPE); the child starts with SIGPIPE at its
 * default and an empty signal mask. */
#ifndef AWITH_PROCESS_H
#define AWITH_PROCESS_H

#include <awith/stream.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a standard stream of the child is connected to. */
enum {
    AW_PROCESS_INHERIT = 0,      /* ours (the default) */
    AW_PROCESS_PIPE = 1,         /* a pipe: p->in, p->out or p->err */
    AW_PROCESS_DEVNULL = 2,      /* /dev/null */
    AW_PROCESS_STDOUT = 3,       /* stderr only: wherever stdout goes (2>&1) */
};

typedef struct aw_process_opts {
    int in, out, err;            /* AW_PROCESS_* for stdin, stdout, stderr */
    char *const *envp;           /* the environment; NULL: ours */
    const char *cwd;             /* the working directory; NULL: ours */
    bool path;                   /* search PATH for argv[0] (execvp's rule) */
    aw_ns_t kill_grace;          /* SIGTERM to SIGKILL; 0: 5 s */
} aw_process_opts_t;

typedef struct aw_process {      /* private except as marked */
    pid_t pid;                   /* public: the child's pid (0: none) */
    aw_stream_t in, out, err;    /* public: the pipes (fd -1 unless AW_PROCESS_PIPE) */
    int exit_code;               /* public, once reaped: its exit code, or -1 if a signal ended it */
    int term_signal;             /* public, once reaped: the signal that ended it, or 0 */
    bool reaped;                 /* public: waited for; pid is no longer ours */
    int pidfd;                   /* -1: none (reaped, or no pidfd: polling); -2: reaped
                                    elsewhere before it was opened (process.c) */
    aw_ns_t kill_grace;
    char name[48];               /* argv[0], for messages */
    const char *const *argv;     /* the manager's arguments, read by enter */
    const aw_process_opts_t *opts;
    aw_track_t track;            /* reported at loop close if never closed */
} aw_process_t;

/* Start argv[0] with arguments argv (NULL-terminated) into *p, its
 * standard streams as opts says (NULL: all inherited). Never suspends; a
 * cancellation point only in that it checks on entry. On failure nothing
 * is left open or running and p->pid is 0. Returns 0, or -ENOENT /
 * -EACCES / -ENOEXEC (the program could not be executed: "spawn
 * /bin/nope: No such file or directory"; -ENOTDIR too when opts->cwd is
 * the cause: "spawn /bin/true: working directory /x: ..."), -EINVAL (argv empty, an opts
 * value out of range), -EMFILE (no fd for a pipe or the pidfd), -EAGAIN
 * (process limit), -ENOMEM, -ECANCELED. argv and opts are read during the
 * call only. Once started, the process must be closed (aw_process_close)
 * or it stays a child of ours: one never closed is reported at loop
 * close with where it was spawned, and aw_main returns -EBUSY (SEMANTICS
 * M9; the process itself is left running). */
AW_API int aw_process_spawn(aw_process_t *p, const char *const argv[],
                            const aw_process_opts_t *opts);

/* Wait for the process to end and reap it: p->exit_code and
 * p->term_signal tell how it ended (an exit code of 3 is not an error of
 * this call). A cancellation point, even when it has already ended:
 * cancelled, the process goes on running (close or the manager's exit
 * ends it). Returns 0, -ECANCELED, -ETIMEDOUT (a deadline), -ECHILD
 * (reaped elsewhere, or never started). Several tasks may wait at once
 * (a watcher and the body, or aw_process_close): each gets 0 once it has
 * ended, whichever reaps it (a task waiting beside another holds a
 * duplicate of the pidfd meanwhile). Reading the pipes is up to the
 * caller: a child blocked writing to a full pipe nobody reads never ends. */
AW_API int aw_process_wait(aw_process_t *p);

/* Send signal `sig` to the process (through its pidfd when there is one,
 * so the pid cannot have been reused). Never suspends. Returns 0, or
 * -ESRCH (already reaped, or never started), -EINVAL (sig). A process
 * that ended but is not reaped yet accepts signals (they do nothing). */
AW_API int aw_process_signal(aw_process_t *p, int sig);

/* Close the pipes, end the process if it still runs (SIGTERM, the kill
 * grace, SIGKILL: see above) and reap it. Always releases; idempotent.
 * Suspends while it waits out the grace. Returns 0, or -ECANCELED when a
 * cancel cut the grace short (the process was killed with SIGKILL and
 * reaped all the same). A status taken elsewhere (SIGCHLD ignored) is no
 * error of close, nor of the manager's exit: the process is gone all the
 * same (p->exit_code -1, p->term_signal 0); only aw_process_wait says
 * -ECHILD. */
AW_API int aw_process_close(aw_process_t *p);

/* The manager: enter spawns (aw_process_spawn), exit releases on every
 * way out. Leaving the block cleanly closes the pipes (the child reads
 * end of file, and a write of its to a closed pipe fails) and waits for
 * the process to end on its own, as Python's Popen.__exit__ does; if the
 * exit's grace runs out first it is killed (SIGKILL) and the block fails
 * with -ETIMEDOUT naming "process". Leaving with an error or a cancel
 * terminates it (aw_process_close), also a cancel or a passed deadline
 * the block never reached a suspension point to see (as Trio's aclose:
 * the cancel then shows after the block). Either way it is reaped. The state is
 * a compound literal living as long as the block (argv and opts are read
 * by enter only); declare the state yourself with AW_PROCESS_INIT and
 * enter it with aw_cm(&aw_process_type, &st) to read p->exit_code after
 * the block. */
extern AW_API const aw_cm_type_t aw_process_type;
#define aw_process(argv_, opts_) \
    aw_cm_temp(&aw_process_type, (aw_process_t)AW_PROCESS_INIT(argv_, opts_))
#define AW_PROCESS_INIT(argv_, opts_) {.argv = (argv_), .opts = (opts_), .pidfd = -1}

#ifdef __cplusplus
}
#endif

#endif
