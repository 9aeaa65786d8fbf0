/* testutil.h: run a test body as the main task of a fresh loop. Each
 * Criterion test runs in its own process, so a crash or hang stays local. */
#ifndef AW_TESTUTIL_H
#define AW_TESTUTIL_H

#include <awith.h>
#include <criterion/criterion.h>
#include <dirent.h>

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

#endif
