/* capture.h: run a loop with stderr captured, to check what loop close
 * reports (tasks or generators left alive, root-group failures). Apart
 * from testutil.h because unistd.h clashes with some tests' names. */
#ifndef AW_TEST_CAPTURE_H
#define AW_TEST_CAPTURE_H

#include "testutil.h"

#include <unistd.h>

/* Run fn as the main task of a loop with stderr captured into out (NUL
 * terminated, cap bytes at most). Returns aw_main's result. */
static inline int aw_test_main_stderr(aw_task_fn fn, void *arg, char *out, size_t cap) {
    fflush(stderr);
    FILE *f = tmpfile();
    int saved = dup(2);
    dup2(fileno(f), 2);
    int rc = aw_main(fn, arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    fclose(f);
    return rc;
}

#endif
