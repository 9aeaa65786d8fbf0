/* tests for src/core/fd.c (and the reactor in src/loop/fd.c): aw_fd_wait
 * on pipes and socketpairs: readable, writable, hang-up, -EBADF after
 * aw_fd_forget, -EBUSY for a second waiter, cancellation and deadlines,
 * both directions waited by two tasks, fd table growth. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void mkpipe(int p[2]) {
    cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

static void mkpair(int s[2]) {
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
}

static void close_both(int p[2]) {
    aw_fd_forget(p[0]);
    aw_fd_forget(p[1]);
    close(p[0]);
    close(p[1]);
}

/* Fill a socket's send buffer until EAGAIN. */
static size_t fill(int fd) {
    static char junk[65536];
    size_t n = 0;
    for (;;) {
        ssize_t w = write(fd, junk, sizeof junk);
        if (w < 0) {
            cr_assert_eq(errno, EAGAIN);
            return n;
        }
        n += (size_t)w;
    }
}

static size_t drain(int fd) {
    char buf[65536];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        n += (size_t)r;
    return n;
}

/* ---- readable ---- */

static int writer_after_yield(void *arg) {
    int fd = (int)(intptr_t)arg;
    aw_yield();
    aw_yield();
    cr_assert_eq(write(fd, "hi", 2), 2);
    return 0;
}

static int readable_main(void *arg) {
    int p[2];
    mkpipe(p);
    char buf[8];
    cr_assert_eq(read(p[0], buf, sizeof buf), -1);
    cr_assert_eq(errno, EAGAIN);
    aw_task_t *w;
    aw_spawn(NULL, writer_after_yield, (void *)(intptr_t)p[1], &w);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), 0);
    cr_assert_eq(read(p[0], buf, sizeof buf), 2);
    cr_assert_eq(memcmp(buf, "hi", 2), 0);
    aw_task_join(w);
    /* data already there: the wait returns without anyone writing later */
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), 0);
    cr_assert_eq(read(p[0], buf, sizeof buf), 1);
    close_both(p);
    return 0;
}

Test(fd, wait_readable_on_a_pipe) {
    int fds = aw_test_fds();
    aw_test_run(readable_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* ---- writable ---- */

static int drainer(void *arg) {
    int fd = (int)(intptr_t)arg;
    for (int i = 0; i < 3; i++)
        aw_yield();
    size_t n = 0;
    while (!(n = drain(fd)))
        aw_fd_wait(fd, AW_READ);
    return 0;
}

static int writable_main(void *arg) {
    int s[2];
    mkpair(s);
    cr_assert_eq(aw_fd_wait(s[0], AW_WRITE), 0, "an empty socket is writable");
    cr_assert_gt(fill(s[0]), 0);
    aw_task_t *d;
    aw_spawn(NULL, drainer, (void *)(intptr_t)s[1], &d);
    cr_assert_eq(aw_fd_wait(s[0], AW_WRITE), 0);
    cr_assert_gt(write(s[0], "more", 4), 0, "writable after the peer drained");
    aw_task_join(d);
    close_both(s);
    return 0;
}

Test(fd, wait_writable_on_a_full_socket) {
    int fds = aw_test_fds();
    aw_test_run(writable_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* ---- hang-up ---- */

static int closer(void *arg) {
    int fd = (int)(intptr_t)arg;
    aw_yield();
    aw_fd_forget(fd);
    close(fd);
    return 0;
}

static int hangup_main(void *arg) {
    int p[2];
    mkpipe(p);
    aw_task_t *c;
    aw_spawn(NULL, closer, (void *)(intptr_t)p[1], &c);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), 0, "a hang-up wakes a reader");
    char b;
    cr_assert_eq(read(p[0], &b, 1), 0, "EOF");
    aw_task_join(c);
    aw_fd_forget(p[0]);
    close(p[0]);

    /* a socket whose peer closed: both directions wake */
    int s[2];
    mkpair(s);
    fill(s[0]);
    aw_spawn(NULL, closer, (void *)(intptr_t)s[1], &c);
    cr_assert_eq(aw_fd_wait(s[0], AW_WRITE), 0, "a hang-up wakes a writer");
    cr_assert_eq(write(s[0], "x", 1), -1);
    cr_assert_eq(errno, EPIPE);
    cr_assert_eq(aw_fd_wait(s[0], AW_READ), 0);
    ssize_t r = read(s[0], &b, 1);
    cr_assert(r == 0 || (r < 0 && errno == ECONNRESET), "EOF or reset (data left unread)");
    aw_task_join(c);
    aw_fd_forget(s[0]);
    close(s[0]);
    return 0;
}

Test(fd, hang_up_wakes_readers_and_writers) {
    signal(SIGPIPE, SIG_IGN);
    int fds = aw_test_fds();
    aw_test_run(hangup_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* ---- forget while waiting ---- */

static int forgetter(void *arg) {
    int fd = (int)(intptr_t)arg;
    aw_yield();
    aw_fd_forget(fd);
    return 0;
}

static int ebadf_main(void *arg) {
    int p[2];
    mkpipe(p);
    aw_task_t *f;
    aw_spawn(NULL, forgetter, (void *)(intptr_t)p[0], &f);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), -EBADF);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EBADF);
    char want[64];
    snprintf(want, sizeof want, "fd %d was closed", p[0]);
    cr_assert_not_null(strstr(e->msg, want), "message names the fd: %s", e->msg);
    aw_err_clear();
    aw_task_join(f);

    /* a writer too, and both at once */
    int s[2];
    mkpair(s);
    fill(s[0]);
    aw_spawn(NULL, forgetter, (void *)(intptr_t)s[0], &f);
    cr_assert_eq(aw_fd_wait(s[0], AW_WRITE), -EBADF);
    aw_err_clear();
    aw_task_join(f);

    /* after a forget the fd can be waited on again (it re-registers) */
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), 0);
    close_both(p);
    close_both(s);
    return 0;
}

Test(fd, forget_while_waiting_gives_ebadf) {
    int fds = aw_test_fds();
    aw_test_run(ebadf_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* Closing and reusing an fd number: no stale state from the old file. */
static int reuse_main(void *arg) {
    int p[2];
    mkpipe(p);
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), 0);
    int old = p[0];
    close_both(p);
    int q[2];
    mkpipe(q);
    cr_assert_eq(q[0], old, "the number is reused");
    aw_task_t *w;
    aw_spawn(NULL, writer_after_yield, (void *)(intptr_t)q[1], &w);
    cr_assert_eq(aw_fd_wait(q[0], AW_READ), 0);
    char b[4];
    cr_assert_eq(read(q[0], b, sizeof b), 2);
    aw_task_join(w);
    close_both(q);
    return 0;
}

Test(fd, a_reused_fd_number_starts_clean) { aw_test_run(reuse_main, NULL, 0); }

/* ---- one waiter per direction ---- */

static int second_reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    int rc = aw_fd_wait(fd, AW_READ);
    cr_assert_eq(rc, -EBUSY);
    cr_assert_eq(aw_status(), -EBUSY);
    cr_assert(strstr(aw_err_current()->msg, "another task is already waiting to read"), "%s",
              aw_err_current()->msg);
    aw_err_clear();
    cr_assert_eq(aw_fd_wait(fd, AW_WRITE), 0, "the other direction is free");
    return 0;
}

static int ebusy_main(void *arg) {
    int s[2];
    mkpair(s);
    aw_task_t *r;
    aw_spawn(NULL, second_reader, (void *)(intptr_t)s[0], &r);
    aw_task_t *w;
    aw_spawn(NULL, writer_after_yield, (void *)(intptr_t)s[1], &w);
    cr_assert_eq(aw_fd_wait(s[0], AW_READ), 0);
    cr_assert_eq(aw_task_join(r), 0);
    aw_task_join(w);
    close_both(s);
    return 0;
}

Test(fd, second_waiter_in_the_same_direction_gets_ebusy) { aw_test_run(ebusy_main, NULL, 0); }

/* ---- two tasks, two directions on one fd ---- */

typedef struct { int fd, ev, rc; } waitarg_t;

static int waiter(void *arg) {
    waitarg_t *a = arg;
    a->rc = aw_fd_wait(a->fd, a->ev);
    return 0;
}

static int both_main(void *arg) {
    int s[2];
    mkpair(s);
    fill(s[0]);
    waitarg_t rd = {s[0], AW_READ, 1}, wr = {s[0], AW_WRITE, 1};
    aw_task_t *a, *b;
    aw_spawn(NULL, waiter, &rd, &a);
    aw_spawn(NULL, waiter, &wr, &b);
    for (int i = 0; i < 5; i++)
        aw_yield();
    cr_assert_eq(rd.rc, 1, "nothing to read yet");
    cr_assert_eq(wr.rc, 1, "no room to write yet");
    cr_assert_eq(write(s[1], "ping", 4), 4);
    aw_task_join(a);
    cr_assert_eq(rd.rc, 0);
    cr_assert_eq(wr.rc, 1, "the writer still waits");
    while (wr.rc == 1) { /* make room, as much as it takes */
        drain(s[1]);
        aw_sleep(AW_US(200));
    }
    aw_task_join(b);
    cr_assert_eq(wr.rc, 0);
    close_both(s);
    return 0;
}

Test(fd, two_tasks_wait_both_directions_of_one_fd) { aw_test_run(both_main, NULL, 0); }

/* ---- cancellation and deadlines ---- */

static int cancel_main(void *arg) {
    int p[2];
    mkpipe(p);
    waitarg_t rd = {p[0], AW_READ, 1};
    aw_task_t *a;
    aw_spawn(NULL, waiter, &rd, &a);
    aw_yield();
    aw_task_cancel(a);
    aw_task_join(a);
    cr_assert_eq(rd.rc, -ECANCELED);
    /* the cancelled waiter left its slot: a new reader can wait */
    aw_task_t *w;
    aw_spawn(NULL, writer_after_yield, (void *)(intptr_t)p[1], &w);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), 0);
    aw_task_join(w);
    close_both(p);
    return 0;
}

Test(fd, F1_cancel_while_waiting_returns_ecanceled_and_frees_the_slot) {
    int fds = aw_test_fds();
    aw_test_run(cancel_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

static int pending_cancel_main(void *arg) {
    int p[2];
    mkpipe(p);
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert_eq(aw_fd_wait(p[0], AW_READ), -ECANCELED, "not ready: cancelled");
        cr_assert_eq(aw_fd_wait(p[1], AW_WRITE), -ECANCELED, "ready: still a cancellation point");
        cr_assert_eq(aw_fd_wait(p[0], AW_READ), -ECANCELED, "level-triggered");
    }
    cr_assert_eq(aw_status(), 0);
    /* the slots are free again */
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), 0);
    close_both(p);
    return 0;
}

Test(fd, F1_pending_cancel_makes_every_wait_return_ecanceled) {
    aw_test_run(pending_cancel_main, NULL, 0);
}

/* An edge the reactor already saw, taken by a wait that then returns
 * -ECANCELED (the "already ready" path is still a cancellation point),
 * must stay for the next wait: nothing new will arrive, the data waits in
 * the kernel. (A stream whose last recv drained the socket waits first, so
 * a read_line reused after a deadline cut it there would hang.) */
static int unused_edge_main(void *arg) {
    (void)arg;
    int p[2];
    mkpipe(p);
    int rc = 1;
    aw_with (aw_move_on_after(AW_MS(1)))
        rc = aw_fd_wait(p[0], AW_READ); /* registered, nothing there */
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(aw_sleep(AW_MS(2)), 0); /* the loop polls: the edge is remembered */
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_scope_cancel(s);
        cr_assert_eq(aw_fd_wait(p[0], AW_READ), -ECANCELED);
    }
    cr_assert_eq(aw_status(), 0);
    aw_with (aw_move_on_after(AW_SEC(2)))
        rc = aw_fd_wait(p[0], AW_READ);
    cr_assert_eq(rc, 0, "the edge seen before the cancel was lost: the wait hung");
    char c;
    cr_assert_eq(read(p[0], &c, 1), 1);
    close_both(p);
    return 0;
}

Test(fd, F1_a_cancelled_wait_on_a_ready_fd_keeps_the_edge) {
    aw_test_run(unused_edge_main, NULL, 0);
}

static int deadline_main(void *arg) {
    int p[2];
    mkpipe(p);
    int rc = 1;
    aw_with (aw_fail_after(AW_MS(2)))
        rc = aw_fd_wait(p[0], AW_READ);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(2))) {
        rc = aw_fd_wait(p[0], AW_READ);
        cr_assert(aw_scope_expired(s));
    }
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), 0);
    aw_with (aw_move_on_at(aw_now() - AW_SEC(1)))
        rc = aw_fd_wait(p[1], AW_WRITE);
    cr_assert_eq(rc, -ECANCELED, "G3: a past deadline: the first wait is cut");
    /* a deadline that does not fire leaves the wait alone */
    aw_task_t *w;
    aw_spawn(NULL, writer_after_yield, (void *)(intptr_t)p[1], &w);
    aw_with (aw_fail_after(AW_SEC(3600)))
        rc = aw_fd_wait(p[0], AW_READ);
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_status(), 0);
    aw_task_join(w);
    aw_loop_stats_t st;
    aw_loop_stats(&st);
    cr_assert_eq(st.timers, 0, "no timer left armed");
    close_both(p);
    return 0;
}

Test(fd, G13_deadline_while_waiting) { aw_test_run(deadline_main, NULL, 0); }

/* ---- odd fds ---- */

static int odd_main(void *arg) {
    cr_assert_eq(aw_fd_wait(-1, AW_READ), -EBADF);
    aw_err_clear();
    char path[] = "/tmp/awith-fd-XXXXXX";
    int f = mkstemp(path);
    unlink(path);
    nonblock(f);
    cr_assert_eq(aw_fd_wait(f, AW_READ), -EPERM, "regular files cannot be polled");
    cr_assert_not_null(strstr(aw_err_current()->msg, "wait for fd"));
    aw_err_clear();
    close(f);
    int p[2];
    mkpipe(p);
    int cl = p[1];
    close(cl);
    cr_assert_eq(aw_fd_wait(cl, AW_WRITE), -EBADF, "a closed fd");
    aw_err_clear();
    aw_fd_forget(p[0]);
    close(p[0]);
    aw_fd_forget(12345); /* never seen: harmless */
    return 0;
}

Test(fd, bad_and_unpollable_fds_are_reported) { aw_test_run(odd_main, NULL, 0); }

Test(fd, outside_a_task_is_eperm) {
    int p[2];
    mkpipe(p);
    cr_assert_eq(aw_fd_wait(p[0], AW_READ), -EPERM);
    aw_fd_forget(p[0]); /* no loop: harmless */
    close(p[0]);
    close(p[1]);
}

/* The reactor's table grows while a waiter sits in it. */
static int growth_main(void *arg) {
    int p[2];
    mkpipe(p);
    waitarg_t low = {p[0], AW_READ, 1};
    aw_task_t *a;
    aw_spawn(NULL, waiter, &low, &a);
    aw_yield();
    int q[2];
    mkpipe(q);
    int high = fcntl(q[0], F_DUPFD_CLOEXEC, 900);
    cr_assert_geq(high, 900);
    waitarg_t hi = {high, AW_READ, 1};
    aw_task_t *b;
    aw_spawn(NULL, waiter, &hi, &b);
    aw_yield();
    aw_yield();
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(write(q[1], "y", 1), 1);
    aw_task_join(a);
    aw_task_join(b);
    cr_assert_eq(low.rc, 0);
    cr_assert_eq(hi.rc, 0);
    aw_fd_forget(high);
    close(high);
    close_both(p);
    close_both(q);
    return 0;
}

Test(fd, table_growth_keeps_existing_waiters) {
    int fds = aw_test_fds();
    aw_test_run(growth_main, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}
