/* tests for src/core/main.c's SIGSEGV handler (the stack-overflow
 * report): other faults reach the program's own handler, the previous
 * handler is back when the last aw_main returns, and it can be turned
 * off. Apart from tests/core/main.c because these tests fault on purpose
 * (tools/test.sh runs main.c's tests under valgrind, which reports every
 * fault). */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

static void exit_42(int sig) { _exit(42); }
static void info_handler(int sig, siginfo_t *si, void *uc) { _exit(43); }

/* A fault that is not a guard page: a store to a PROT_NONE page (not a
 * NULL store, which UBSan would report first). */
static int fault(void *arg) {
    volatile int *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    *p = 1;
    return 0;
}

/* A program's own crash handler, installed with signal() (no SA_SIGINFO),
 * gets a fault that is not a stack overflow: exit 42, not 139. */
Test(segv, a_fault_not_ours_reaches_a_handler_without_siginfo, .exit_code = 42) {
    signal(SIGSEGV, exit_42);
    aw_main(fault, NULL);
}

Test(segv, a_fault_not_ours_reaches_a_siginfo_handler, .exit_code = 43) {
    struct sigaction sa = {.sa_sigaction = info_handler, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    aw_main(fault, NULL);
}

static int segv_is_program_s(void *arg) {
    struct sigaction cur;
    sigaction(SIGSEGV, NULL, &cur);
    return cur.sa_handler == exit_42 ? 1 : 0;
}

/* While aw_main runs the handler is awith's; after it returns, the
 * program's is back, flags and all. */
Test(segv, the_previous_segv_handler_is_back_when_aw_main_returns) {
    struct sigaction sa = {.sa_handler = exit_42, .sa_flags = SA_RESTART}, cur;
    sigemptyset(&sa.sa_mask);
    stack_t before, after; /* ASan has one of its own, plain runs none */
    sigaltstack(NULL, &before);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaction(SIGSEGV, &sa, NULL);
    cr_assert_eq(aw_main(segv_is_program_s, NULL), 0, "awith's handler is in while aw_main runs");
    sigaction(SIGSEGV, NULL, &cur);
    cr_assert(cur.sa_handler == exit_42, "the program's handler is back");
    cr_assert(!(cur.sa_flags & SA_SIGINFO) && (cur.sa_flags & SA_RESTART));
    cr_assert(sigismember(&cur.sa_mask, SIGUSR1));
    sigaltstack(NULL, &after);
    if (before.ss_flags & SS_DISABLE)
        cr_assert(after.ss_flags & SS_DISABLE, "the thread has no alternate stack again");
    else
        cr_assert(after.ss_sp == before.ss_sp, "the thread's alternate stack is back");
}

/* Loops on two threads: the handler stays in until the last aw_main
 * returns, not the first. */
static int nothing(void *arg) { return 0; }
static void other_thread_main(void *arg) { *(int *)arg = aw_main(nothing, NULL); }
static int main_with_a_second_loop(void *arg) {
    int rc = -1;
    if (aw_to_thread(other_thread_main, &rc, NULL) != 0 || rc != 0)
        return -EIO;
    return segv_is_program_s(NULL) ? -EPERM : 0; /* still awith's */
}

Test(segv, the_segv_handler_stays_until_the_last_loop_returns) {
    signal(SIGSEGV, exit_42);
    cr_assert_eq(aw_main(main_with_a_second_loop, NULL), 0);
    struct sigaction cur;
    sigaction(SIGSEGV, NULL, &cur);
    cr_assert(cur.sa_handler == exit_42);
}

/* opts.no_segv_handler: awith leaves SIGSEGV to the program. */
Test(segv, no_segv_handler_leaves_sigsegv_alone) {
    signal(SIGSEGV, exit_42);
    aw_loop_opts_t o = {.no_segv_handler = true};
    cr_assert_eq(aw_main_opts(&o, segv_is_program_s, NULL), 1);
}

/* A fault with no handler before aw_main is still fatal, as SIGSEGV. */
Test(segv, a_fault_not_ours_without_a_handler_is_a_plain_sigsegv, .signal = SIGSEGV) {
    signal(SIGSEGV, SIG_DFL); /* not ASan's report-and-exit handler */
    aw_main(fault, NULL);
}
