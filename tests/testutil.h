/* testutil.h: run a test body as the main task of a fresh loop. Each
 * Criterion test runs in its own process, so a crash or hang stays local. */
#ifndef AW_TESTUTIL_H
#define AW_TESTUTIL_H

#include <awith.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

/* Run fn as the main task; assert aw_main's result. */
#define aw_test_run(fn, arg, expect) \
    cr_assert_eq(aw_main((fn), (arg)), (expect), "aw_main(" #fn ") returned an unexpected status")

/* Open file descriptors of this process. */
static inline int aw_test_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ., .., and the DIR's own fd */
}

/* A fresh directory /tmp/awith-<tag>-XXXXXX in dir (cap bytes), and its
 * removal with everything in it. */
static inline void aw_test_mkdtemp(char *dir, size_t cap, const char *tag) {
    snprintf(dir, cap, "/tmp/awith-%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}
static inline void aw_test_rmtree(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
}

/* Cancel a task at exactly its k-th cancellation point, seen through the
 * trace hook: counting the test's own yields instead would race with real
 * I/O (the kernel, the pool's threads) on a loaded machine. Set `target`
 * and `k`, zero `points`, install with aw_trace_set(aw_test_cancel_hook,
 * NULL). `fds_at_cancel` is aw_test_fds() when the cancel landed. */
static struct {
    aw_task_t *target;
    int points, k, fds_at_cancel;
} aw_test_cancel_at __attribute__((unused));

static inline void aw_test_cancel_hook(const aw_trace_event_t *ev, void *arg) {
    (void)arg;
    if (ev->kind == AW_TRACE_POINT && ev->task == aw_test_cancel_at.target &&
        ++aw_test_cancel_at.points == aw_test_cancel_at.k) {
        aw_test_cancel_at.fds_at_cancel = aw_test_fds();
        aw_task_cancel(aw_test_cancel_at.target);
    }
}

#endif
