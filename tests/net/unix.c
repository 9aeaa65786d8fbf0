/* tests for src/net/unix.c: Unix domain sockets with the TCP API. */
#include "netutil.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128];
static int fds0;

static void mkdir_tmp(void) {
    snprintf(dir, sizeof dir, "/tmp/awith-unix-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/sock", dir);
}

static int echo(aw_stream_t *s, void *arg) {
    char buf[64];
    ssize_t n;
    while ((n = aw_stream_read(s, buf, sizeof buf)) > 0)
        if (aw_stream_write(s, buf, (size_t)n) < 0)
            return -1;
    return (int)n;
}

static int t_echo(void *arg) {
    aw_with (aw_listener_t *l, aw_unix_listener(path, NULL))
    aw_with (aw_server(l, echo, NULL)) {
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert(S_ISSOCK(st.st_mode));
        for (int i = 0; i < 3; i++)
            aw_with (aw_stream_t *s, aw_unix_client(path)) {
                char buf[8];
                cr_assert_eq(aw_stream_write(s, "unix!", 5), 0);
                cr_assert_eq(aw_stream_read_exactly(s, buf, 5), 0);
                cr_assert_eq(memcmp(buf, "unix!", 5), 0);
                cr_assert_str_eq(s->peer, path);
            }
    }
    struct stat st;
    cr_assert_eq(stat(path, &st), -1, "closing the listener unlinks its path");
    return aw_status();
}
Test(unix_socket, echo_through_server) {
    mkdir_tmp();
    fds0 = aw_test_fds();
    aw_test_run(t_echo, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
    rmdir(dir);
}

static int t_errors(void *arg) {
    aw_stream_t s;
    cr_assert_eq(aw_unix_connect(&s, path), -ENOENT);
    cr_assert(msg_has("connect to ") && msg_has("No such file or directory"), "%s", msg_now());
    aw_err_clear();
    aw_listener_t a, b;
    cr_assert_eq(aw_unix_listen(&a, path, NULL), 0);
    cr_assert_eq(aw_unix_listen(&b, path, NULL), -EADDRINUSE);
    cr_assert(msg_has("Address already in use"), "%s", msg_now());
    aw_err_clear();
    aw_listener_close(&b); /* harmless: it holds nothing, and must not unlink a's path */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    aw_listener_close(&a);
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    cr_assert_eq(aw_unix_connect(&s, longp), -ENAMETOOLONG);
    aw_err_clear();
    return 0;
}
Test(unix_socket, errors_are_clear) {
    mkdir_tmp();
    fds0 = aw_test_fds();
    aw_test_run(t_errors, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
    rmdir(dir);
}

/* CPython test_unix_events test_create_unix_server_cleanup_replaced: a
 * listener closed after its path was replaced (by a newer server of the
 * same service) leaves the newer one's socket alone; and one whose path
 * is already gone closes quietly. */
static int t_cleanup_replaced(void *arg) {
    aw_listener_t old, fresh;
    cr_assert_eq(aw_unix_listen(&old, path, NULL), 0);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(aw_unix_listen(&fresh, path, NULL), 0, "%s", msg_now());
    aw_listener_close(&old);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "the newer listener's socket is still there");
    aw_stream_t s, in;
    cr_assert_eq(aw_unix_connect(&s, path), 0, "%s", msg_now());
    cr_assert_eq(aw_listener_accept(&fresh, &in), 0);
    aw_stream_close(&s);
    aw_stream_close(&in);
    aw_listener_close(&fresh);
    cr_assert_eq(stat(path, &st), -1, "its own close unlinks it");
    return 0;
}
Test(unix_socket, cpython_create_unix_server_cleanup_replaced) {
    mkdir_tmp();
    fds0 = aw_test_fds();
    aw_test_run(t_cleanup_replaced, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
    unlink(path);
    rmdir(dir);
}
