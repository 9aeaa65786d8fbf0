/* capture.h: run a task with its stdout or stderr captured (tests only):
 * the programs in examples/ are checked against what they print, and loop
 * close against what it reports (tasks or generators left alive,
 * root-group failures). Apart from testutil.h because unistd.h clashes
 * with some tests' names. */
#ifndef AW_TEST_CAPTURE_H
#define AW_TEST_CAPTURE_H

#include "testutil.h"

#include <stdio.h>
#include <unistd.h>

/* Run fn(arg) as the main task with `fd` (1 or 2) pointing at a temporary
 * file; what was written there goes to out (cap bytes, NUL-terminated).
 * Returns aw_main's result. */
static inline int aw_test_capture_fd(int fd, aw_task_fn fn, void *arg, char *out, size_t cap) {
    FILE *stream = fd == STDOUT_FILENO ? stdout : stderr;
    fflush(stream);
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    int saved = dup(fd);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(fileno(tmp), fd), 0);
    int rc = aw_main(fn, arg);
    fflush(stream);
    dup2(saved, fd);
    close(saved);
    rewind(tmp);
    out[fread(out, 1, cap - 1, tmp)] = '\0';
    fclose(tmp);
    return rc;
}

static inline int aw_test_capture(aw_task_fn fn, void *arg, char *out, size_t cap) {
    return aw_test_capture_fd(STDOUT_FILENO, fn, arg, out, cap);
}

static inline int aw_test_main_stderr(aw_task_fn fn, void *arg, char *out, size_t cap) {
    return aw_test_capture_fd(STDERR_FILENO, fn, arg, out, cap);
}

#endif
