/* tests for src/core/signal.c: a signal as an awaitable (aw_signals,
 * aw_signals_wait, aw_signal_wait) and aw_loop_opts_t.cancel_on_signals,
 * with real signals (kill, pthread_kill, a child process's kill). */
#include "testutil.h"

#include <awith/signal.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool blocked(int sig) {
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig) == 1;
}

static sigset_t one(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

/* ---- aw_signals ---- */

static int wait_own(void *arg) {
    sigset_t set = one(SIGUSR1);
    int got = 0;
    aw_with (aw_signals_t *s, aw_signals(&set)) {
        cr_assert(blocked(SIGUSR1), "blocked inside the block");
        pthread_kill(pthread_self(), SIGUSR1); /* pending: read by the signalfd */
        cr_assert_eq(aw_signals_wait(s, &got), 0);
    }
    cr_assert_eq(got, SIGUSR1);
    cr_assert_not(blocked(SIGUSR1), "the mask is restored at exit");
    return aw_status();
}

Test(signal, a_signal_sent_before_the_wait_is_returned_by_it) { aw_test_run(wait_own, NULL, 0); }

typedef struct {
    pthread_t target;
    int sig;
} sender_t;
static void *sender(void *arg) {
    sender_t *s = arg;
    usleep(20000); /* the task is (probably) asleep in epoll by now */
    pthread_kill(s->target, s->sig);
    return NULL;
}

static int wait_from_thread(void *arg) {
    sigset_t set = one(SIGUSR2);
    sigaddset(&set, SIGHUP);
    int got = 0;
    pthread_t th;
    sender_t snd = {pthread_self(), SIGHUP};
    aw_with (aw_signals_t *s, aw_signals(&set)) {
        pthread_create(&th, NULL, sender, &snd);
        cr_assert_eq(aw_signals_wait(s, &got), 0, "a suspended task is woken by the signal");
    }
    pthread_join(th, NULL);
    cr_assert_eq(got, SIGHUP);
    return aw_status();
}

Test(signal, a_task_suspended_in_the_wait_is_woken_by_a_signal) {
    aw_test_run(wait_from_thread, NULL, 0);
}

static int wait_cancelled(void *arg) {
    sigset_t set = one(SIGUSR1);
    int rc = 0;
    aw_with (aw_move_on_after(AW_MS(20)))
        aw_with (aw_signals_t *s, aw_signals(&set))
            rc = aw_signals_wait(s, NULL);
    cr_assert_eq(rc, -ECANCELED, "the wait is a cancellation point");
    cr_assert_not(blocked(SIGUSR1));
    return aw_status();
}

Test(signal, the_wait_is_a_cancellation_point) { aw_test_run(wait_cancelled, NULL, 0); }

static int second_task_done;
static int second_task(void *arg) {
    sigset_t set = one(SIGUSR1);
    aw_with (aw_signals_t *s, aw_signals(&set))
        aw_sleep(AW_MS(40)); /* outlives the main task's block */
    second_task_done = 1;
    return aw_status();
}
static int counted(void *arg) {
    aw_task_t *t;
    sigset_t set = one(SIGUSR1);
    aw_with (aw_signals(&set)) {
        aw_spawn(NULL, second_task, NULL, &t);
        aw_yield(); /* it enters its own block */
    }
    cr_assert(blocked(SIGUSR1), "still blocked: the other task's block holds it");
    cr_assert_eq(aw_task_join(t), 0);
    cr_assert_not(blocked(SIGUSR1), "unblocked when the last block leaves");
    return 0;
}

Test(signal, blocks_of_several_tasks_count_and_end_in_any_order) {
    aw_test_run(counted, NULL, 0);
}

static int keeps_program_mask(void *arg) {
    sigset_t set = one(SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the program blocked it itself */
    aw_with (aw_signals(&set))
        ;
    cr_assert(blocked(SIGUSR1), "what the program blocked stays blocked");
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return aw_status();
}

Test(signal, a_signal_the_program_blocked_stays_blocked) { aw_test_run(keeps_program_mask, NULL, 0); }

static int one_shot(void *arg) {
    sigset_t set = one(SIGUSR2);
    int got = 0;
    pthread_t th;
    sender_t snd = {pthread_self(), SIGUSR2};
    pthread_create(&th, NULL, sender, &snd);
    /* the signal may come before the call blocks it: keep it pending */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int rc = aw_signal_wait(&set, &got);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    pthread_join(th, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_eq(got, SIGUSR2);
    return 0;
}

Test(signal, aw_signal_wait_takes_one_signal) { aw_test_run(one_shot, NULL, 0); }

/* One waiter per block at a time (Trio's BusyResourceError): a second
 * task that waits on the same block gets -EBUSY at once, and the first
 * one still gets the signal. */
static int first_got, first_rc = 1;
static aw_signals_t *shared;
static int first_waiter(void *arg) {
    first_rc = aw_signals_wait(shared, &first_got);
    return first_rc;
}
static int two_waiters(void *arg) {
    sigset_t set = one(SIGUSR2);
    aw_with (aw_signals_t *s, aw_signals(&set)) {
        shared = s;
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, first_waiter, NULL, NULL);
            aw_yield(); /* it waits now */
            int sig = 0;
            cr_assert_eq(aw_signals_wait(s, &sig), -EBUSY);
            aw_err_clear();
            kill(getpid(), SIGUSR2);
        }
    }
    cr_assert_eq(first_rc, 0);
    cr_assert_eq(first_got, SIGUSR2);
    return aw_status();
}

Test(signal, a_second_waiter_on_one_block_is_EBUSY) { aw_test_run(two_waiters, NULL, 0); }

static int bad_sets(void *arg) {
    sigset_t empty, kill9 = one(SIGKILL);
    sigemptyset(&empty);
    aw_with (aw_signals(&empty))
        cr_assert_fail("an empty set is refused");
    cr_assert_eq(aw_status(), -EINVAL);
    aw_err_clear();
    aw_with (aw_signals(&kill9))
        cr_assert_fail("SIGKILL is refused");
    cr_assert_eq(aw_status(), -EINVAL);
    aw_err_clear();
    return 0;
}

Test(signal, an_empty_set_or_sigkill_is_refused) { aw_test_run(bad_sets, NULL, 0); }

/* ---- cancel_on_signals ---- */

static int main_cancelled;
static int waits_for_ctrl_c(void *arg) {
    int sig = (int)(intptr_t)arg;
    if (sig == SIGINT) {
        kill(getpid(), SIGINT); /* a real signal, process-directed */
    } else {
        pid_t pid = fork(); /* from another process: a real kill */
        if (pid == 0) {
            usleep(20000);
            kill(getppid(), sig);
            _exit(0);
        }
        int rc = aw_sleep(AW_SEC(3600));
        waitpid(pid, NULL, 0);
        main_cancelled = rc == -ECANCELED;
        return rc;
    }
    int rc = aw_sleep(AW_SEC(3600));
    main_cancelled = rc == -ECANCELED;
    return rc;
}

static char logged[1024];
static void hook(const char *msg, void *arg) { strncat(logged, msg, sizeof logged - strlen(logged) - 1); }

Test(signal, sigint_cancels_the_main_task_and_aw_main_returns) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    cr_assert_eq(aw_main_opts(&o, waits_for_ctrl_c, (void *)(intptr_t)SIGINT), -ECANCELED);
    cr_assert(main_cancelled, "the main task saw -ECANCELED");
    cr_assert(strstr(logged, "INT received: cancelling the main task"), "%s", logged);
    struct sigaction cur;
    sigaction(SIGINT, NULL, &cur);
    cr_assert_eq(cur.sa_handler, SIG_DFL, "the previous disposition is back");
}

Test(signal, sigterm_from_another_process_cancels_the_main_task) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    cr_assert_eq(aw_main_opts(&o, waits_for_ctrl_c, (void *)(intptr_t)SIGTERM), -ECANCELED);
    cr_assert(main_cancelled);
    cr_assert(strstr(logged, "TERM received"), "%s", logged);
}

/* Waiting for Ctrl-C with nothing else to do (Trio's sleep_forever(),
 * asyncio's `await Event().wait()` until KeyboardInterrupt) is no
 * deadlock: the signal can come, and it cancels the main task. Neither
 * a sleep for ever nor an event nobody sets arms a timer or waits on an
 * fd. */
static aw_event_t never_set = AW_EVENT_INIT;
static int until_ctrl_c(void *arg) {
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        kill(getppid(), SIGINT);
        _exit(0);
    }
    int rc = arg ? aw_event_wait(&never_set) : aw_sleep(AW_NEVER);
    waitpid(pid, NULL, 0);
    main_cancelled = rc == -ECANCELED;
    return rc;
}
Test(signal, a_main_task_waiting_for_ctrl_c_is_no_deadlock) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    cr_assert_eq(aw_main_opts(&o, until_ctrl_c, NULL), -ECANCELED);
    cr_assert(main_cancelled);
    cr_assert_null(strstr(logged, "deadlock"), "%s", logged);
    cr_assert(strstr(logged, "INT received"), "the signal cancelled it: %s", logged);
    logged[0] = 0;
    main_cancelled = 0;
    cr_assert_eq(aw_main_opts(&o, until_ctrl_c, &never_set), -ECANCELED);
    cr_assert(main_cancelled);
    cr_assert_null(strstr(logged, "deadlock"), "%s", logged);
    cr_assert(strstr(logged, "INT received"), "the signal cancelled it: %s", logged);
}

static void prog_handler(int sig) {}

Test(signal, the_programs_handler_is_put_back_at_close) {
    signal(SIGINT, prog_handler);
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    aw_main_opts(&o, waits_for_ctrl_c, (void *)(intptr_t)SIGINT);
    struct sigaction cur;
    sigaction(SIGINT, NULL, &cur);
    cr_assert_eq(cur.sa_handler, prog_handler);
}

/* The main task ignores its cancel (a shielded wait): the second Ctrl-C
 * ends the process at once, by the signal. */
static int stubborn(void *arg) {
    kill(getpid(), SIGINT);
    aw_with (aw_shield(AW_NEVER)) {
        aw_sleep(AW_MS(20)); /* the loop sees the first one meanwhile */
        kill(getpid(), SIGINT);
        aw_sleep(AW_SEC(3600));
    }
    return 0;
}

Test(signal, a_second_signal_while_cancelled_ends_the_process, .signal = SIGINT) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    aw_main_opts(&o, stubborn, NULL);
}

static int quick(void *arg) { return 0; }
static void *other_loop(void *arg) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    return (void *)(intptr_t)aw_main_opts(&o, quick, NULL);
}
static int holds_signals(void *arg) {
    pthread_t th;
    void *rc;
    pthread_create(&th, NULL, other_loop, NULL);
    pthread_join(th, &rc);
    cr_assert_eq((intptr_t)rc, -EBUSY, "one loop per process may take SIGINT");
    return 0;
}

Test(signal, one_loop_at_a_time_may_cancel_on_signals) {
    aw_loop_opts_t o = {.cancel_on_signals = true};
    cr_assert_eq(aw_main_opts(&o, holds_signals, NULL), 0);
}

/* Embedded: the signal reaches a loop the host drives. */
Test(signal, an_embedded_loop_is_cancelled_by_sigint) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    aw_loop_t *l;
    cr_assert_eq(aw_loop_new(&o, &l), 0);
    cr_assert_eq(aw_loop_start(l, waits_for_ctrl_c, (void *)(intptr_t)SIGINT), 0);
    while (aw_loop_run_once(l) == 1)
        ; /* a busy host: the signal is seen at a step */
    cr_assert_eq(aw_loop_close(l), -ECANCELED);
    cr_assert(main_cancelled);
}

/* A process-directed signal is not taken by the loop's pool workers
 * (which would die of it: SIGUSR1's default action). */
static void noop(void *arg) {}
static int pool_then_kill(void *arg) {
    cr_assert_eq(aw_to_thread(noop, NULL, NULL), 0); /* the workers exist now */
    sigset_t set = one(SIGUSR1);
    int got = 0;
    aw_with (aw_signals_t *s, aw_signals(&set)) {
        kill(getpid(), SIGUSR1);
        cr_assert_eq(aw_signals_wait(s, &got), 0);
    }
    cr_assert_eq(got, SIGUSR1);
    return aw_status();
}

Test(signal, the_pool_workers_never_take_a_process_signal) { aw_test_run(pool_then_kill, NULL, 0); }

/* A signal while the loop shuts down (the main task has ended, a task
 * left over is finishing its cleanup) has no main task to cancel: it
 * says so, and the second one still ends the process. */
static int lingers_in_cleanup(void *arg) {
    int rc = aw_sleep(AW_SEC(10)); /* cancelled by the shutdown */
    aw_with (aw_shield(AW_SEC(5))) {
        kill(getpid(), SIGINT);
        aw_sleep_ms(30);
    }
    return rc;
}
static int returns_at_once(void *arg) {
    aw_spawn(NULL, lingers_in_cleanup, NULL, NULL);
    return 0;
}
Test(signal, a_signal_during_shutdown_says_so_and_cancels_no_ended_task) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    logged[0] = 0;
    cr_assert_eq(aw_main_opts(&o, returns_at_once, NULL), 0);
    cr_assert(strstr(logged, "INT received while shutting down"), "%s", logged);
    cr_assert_null(strstr(logged, "cancelling the main task"), "%s", logged);
}

/* (c) 5, decision 1: a Ctrl-C the main task never saw is not lost. The
 * signal lands while the task is inside a with block's exit (shielded,
 * so the exit finishes undisturbed); the task then returns 0 without
 * reaching another suspension point. asyncio.run raises
 * KeyboardInterrupt in that case (the task ends cancelled: _must_cancel)
 * and trio.run raises it too (ki_pending): aw_main must not report
 * success for an interrupted run. A task that saw -ECANCELED and chose
 * to return 0 has handled it (signal.h), and aw_main returns 0. */
static int sig_exit_sleep_rc = 1;
static int sig_in_exit_enter(void *self, void **out) { return 0; }
static int sig_in_exit_exit(void *self, const aw_err_t *err) {
    kill(getpid(), SIGINT); /* taken by the loop while the exit sleeps */
    sig_exit_sleep_rc = aw_sleep_ms(30);
    return 0;
}
static const aw_cm_type_t sig_in_exit_type = {"sig-in-exit", sig_in_exit_enter, sig_in_exit_exit};
static int ctrl_c_in_an_exit(void *arg) {
    static int state;
    aw_with (aw_cm(&sig_in_exit_type, &state)) {
    }
    if (arg) /* the task sees the cancel, and handles it */
        cr_assert_eq(aw_sleep_ms(1), -ECANCELED);
    return 0;
}
Test(signal, c5_a_ctrl_c_taken_during_an_exit_is_not_lost_when_main_returns_0) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    logged[0] = 0;
    cr_assert_eq(aw_main_opts(&o, ctrl_c_in_an_exit, NULL), -ECANCELED, "%s", logged);
    cr_assert_eq(sig_exit_sleep_rc, 0, "the exit ran undisturbed");
    cr_assert(strstr(logged, "INT received: cancelling the main task"), "%s", logged);
    cr_assert(strstr(logged, "never saw"), "the report says why: %s", logged);
    logged[0] = 0;
    cr_assert_eq(aw_main_opts(&o, ctrl_c_in_an_exit, (void *)1), 0, "handled: %s", logged);
}

/* E4 with a real Ctrl-C: the signal lands while an aw_for's generator
 * runs its cleanup (the consumer broke out); the cleanup's waits are not
 * cut (shielded, as every exit), and the run still ends cancelled. */
#include <awith/gen.h>
static int gen_cleanup_sleep_rc = 1;
static int counting(aw_gen_t *g, void *arg) {
    for (int i = 0;; i++)
        if (aw_gen_yield(g, &i) < 0)
            break;
    kill(getpid(), SIGINT);
    gen_cleanup_sleep_rc = aw_sleep_ms(20);
    return 0;
}
static int ctrl_c_in_a_generator_cleanup(void *arg) {
    aw_for (int *v, aw_gen(counting, NULL))
        if (*v == 2)
            break;
    return aw_status();
}
Test(signal, E4_a_ctrl_c_during_a_generators_cleanup_lets_it_finish_and_cancels) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    logged[0] = 0;
    cr_assert_eq(aw_main_opts(&o, ctrl_c_in_a_generator_cleanup, NULL), -ECANCELED, "%s", logged);
    cr_assert_eq(gen_cleanup_sleep_rc, 0, "the cleanup's sleep was not cut");
    cr_assert(strstr(logged, "INT received"), "%s", logged);
}

/* A main task that sees the Ctrl-C's -ECANCELED only through what a
 * generator it drives returned (the generator's own wait was the one
 * cut), and then handles it, has seen it: aw_main returns its 0. */
static int sleeps_in_next(aw_gen_t *g, void *arg) {
    kill(getpid(), SIGINT);
    int rc = aw_sleep(AW_SEC(3600)); /* cut by the consumer's cancel */
    return rc < 0 ? aw_status() : 0;
}
static int sees_it_through_a_generator(void *arg) {
    aw_gen_t g = AW_GEN_INIT(sleeps_in_next, NULL);
    void *v;
    cr_assert_eq(aw_gen_next(&g, &v), -ECANCELED);
    aw_err_clear(); /* handled */
    aw_gen_close(&g);
    return 0;
}
Test(signal, c5_a_ctrl_c_seen_through_a_generator_and_handled_gives_0) {
    aw_loop_opts_t o = {.cancel_on_signals = true, .log = hook};
    logged[0] = 0;
    cr_assert_eq(aw_main_opts(&o, sees_it_through_a_generator, NULL), 0, "%s", logged);
}

/* aw_signal_wait's result is its own: 0 once it took a signal, not an
 * error that was pending before the call (an earlier failure not handled
 * yet, or the error an exit is handed: a cleanup that waits for a signal
 * inside a failing block's exit), which stays pending. */
static int pw_rc = 1, pw_got;
static int pw_enter(void *self, void **out) { return 0; }
static int pw_exit(void *self, const aw_err_t *err) {
    sigset_t set = one(SIGUSR2);
    pthread_kill(pthread_self(), SIGUSR2); /* kept pending: the caller blocked it */
    pw_rc = aw_signal_wait(&set, &pw_got);
    return 0;
}
static const aw_cm_type_t pw_type = {"waits-for-a-signal-in-exit", pw_enter, pw_exit};
static int pending_before(void *arg) {
    sigset_t set = one(SIGUSR2);
    int got = 0;
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    aw_raise(-ENOENT, "an earlier failure, not handled yet");
    pthread_kill(pthread_self(), SIGUSR2);
    cr_assert_eq(aw_signal_wait(&set, &got), 0, "the earlier failure is not the wait's");
    cr_assert_eq(got, SIGUSR2);
    cr_assert_eq(aw_status(), -ENOENT, "and it stays pending");
    sigset_t empty;
    sigemptyset(&empty);
    cr_assert_eq(aw_signal_wait(&empty, &got), -EINVAL, "a failed enter is the wait's");
    aw_err_clear();
    aw_with (aw_cm(&pw_type, NULL))
        aw_fail(-EIO, "the block failed");
    cr_assert_eq(pw_rc, 0, "in an exit handed EIO, the wait returned %s", aw_err_name(pw_rc));
    cr_assert_eq(pw_got, SIGUSR2);
    cr_assert_eq(aw_status(), -EIO, "the block's error propagates");
    aw_err_clear();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return 0;
}
Test(signal, aw_signal_wait_returns_its_own_status_not_an_older_error) {
    aw_test_run(pending_before, NULL, 0);
}

/* signal.h: enter fails with signalfd's error "blocking nothing then":
 * out of fds, the block is skipped with -EMFILE, the signal is not left
 * blocked, and its count is given back (the next block blocks it and
 * unblocks it at exit). */
#include <sys/resource.h>
static int emfile(void *arg) {
    sigset_t set = one(SIGUSR1);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim = old;
    lim.rlim_cur = 64;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int fds[64], n = 0;
    for (int fd; n < 64 && (fd = dup(0)) >= 0;)
        fds[n++] = fd;
    int entered = 0;
    aw_with (aw_signals(&set))
        entered = 1;
    int st = aw_status();
    for (int i = 0; i < n; i++)
        close(fds[i]);
    setrlimit(RLIMIT_NOFILE, &old);
    cr_assert_eq(entered, 0);
    cr_assert_eq(st, -EMFILE, "%s", aw_err_name(st));
    cr_assert(strstr(aw_err_current()->msg, "signalfd failed"), "%s", aw_err_current()->msg);
    aw_err_clear();
    cr_assert_not(blocked(SIGUSR1), "a failed enter left the signal blocked");
    aw_with (aw_signals(&set))
        cr_assert(blocked(SIGUSR1));
    cr_assert_eq(aw_status(), 0);
    cr_assert_not(blocked(SIGUSR1), "the failed enter's count was not given back");
    return 0;
}
Test(signal, a_failed_enter_blocks_nothing_and_gives_its_count_back) { aw_test_run(emfile, NULL, 0); }

/* signal.h: "Signals that arrived since the block was entered are returned
 * first, one per call, lowest number first": SIGUSR2 then SIGUSR1 sent
 * before the first wait come back as SIGUSR1, then SIGUSR2. */
static int lowest_first(void *arg) {
    sigset_t set = one(SIGUSR1);
    sigaddset(&set, SIGUSR2);
    int a = 0, b = 0;
    aw_with (aw_signals_t *s, aw_signals(&set)) {
        pthread_kill(pthread_self(), SIGUSR2);
        pthread_kill(pthread_self(), SIGUSR1);
        cr_assert_eq(aw_signals_wait(s, &a), 0);
        cr_assert_eq(aw_signals_wait(s, &b), 0);
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(a, SIGUSR1, "got %d first", a);
    cr_assert_eq(b, SIGUSR2, "got %d second", b);
    cr_assert_not(blocked(SIGUSR1) || blocked(SIGUSR2), "both unblocked at exit");
    aw_signals_t never = {.set = set, .fd = -1};
    cr_assert_eq(aw_signals_wait(&never, &a), -EINVAL, "a block never entered");
    cr_assert(strstr(aw_err_current()->msg, "not entered"), "%s", aw_err_current()->msg);
    aw_err_clear();
    cr_assert_eq(aw_signals_wait(NULL, &a), -EINVAL);
    aw_err_clear();
    return 0;
}
Test(signal, pending_signals_come_one_per_wait_lowest_number_first) { aw_test_run(lowest_first, NULL, 0); }
