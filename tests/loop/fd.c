/* tests for src/loop/fd.c: the reactor's fd table. epoll's key is the fd
 * itself, so the table may move when it grows while fds are registered
 * and waited on. */
#include "testutil.h"

#include <unistd.h>

static int pipe_a[2], pipe_far[2];

/* Wait on a pipe registered while the table was small. */
static int low_reader(void *arg) {
    (void)arg;
    int rc = aw_fd_wait(pipe_a[0], AW_READ);
    cr_assert_eq(rc, 0, "the low fd's wait survived the table's growth: %d", rc);
    char c;
    cr_assert_eq(read(pipe_a[0], &c, 1), 1);
    cr_assert_eq(c, 'x');
    return 0;
}

static int grow_main(void *arg) {
    (void)arg;
    cr_assert_eq(pipe(pipe_a), 0);
    aw_task_t *t;
    cr_assert_eq(aw_spawn(NULL, low_reader, NULL, &t), 0);
    cr_assert_eq(aw_yield(), 0); /* the reader waits: pipe_a is registered */
    /* a far fd makes the table grow (and move) under the waiting reader */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pipe_far[0] = dup2(p[0], 900);
    pipe_far[1] = dup2(p[1], 901);
    close(p[0]);
    close(p[1]);
    cr_assert_eq(pipe_far[0], 900);
    cr_assert_eq(write(pipe_far[1], "y", 1), 1);
    cr_assert_eq(aw_fd_wait(pipe_far[0], AW_READ), 0);
    cr_assert_eq(write(pipe_a[1], "x", 1), 1);
    cr_assert_eq(aw_task_join(t), 0);
    aw_fd_forget(pipe_far[0]);
    aw_fd_forget(pipe_a[0]);
    close(pipe_far[0]);
    close(pipe_far[1]);
    close(pipe_a[0]);
    close(pipe_a[1]);
    return 0;
}

Test(fd, a_wait_survives_the_table_growing_under_it) { aw_test_run(grow_main, NULL, 0); }
