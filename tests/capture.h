/* capture.h: run a task with its stdout captured (tests only; the
 * programs in examples/ are checked against what they print). */
#ifndef AW_CAPTURE_H
#define AW_CAPTURE_H

#include "testutil.h"

#include <stdio.h>
#include <unistd.h>

/* Run fn(arg) as the main task with fd 1 pointing at a temporary file;
 * the text it printed goes to out (cap bytes, NUL-terminated). Returns
 * aw_main's result. */
static inline int aw_test_capture(aw_task_fn fn, void *arg, char *out, size_t cap) {
    fflush(stdout);
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    int saved = dup(STDOUT_FILENO);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(fileno(tmp), STDOUT_FILENO), 0);
    int rc = aw_main(fn, arg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    out[fread(out, 1, cap - 1, tmp)] = '\0';
    fclose(tmp);
    return rc;
}

#endif
