/* tests for src/net/server.c: the server manager owns a task group of
 * connection handlers; leaving it stops accepting, cancels the handlers
 * and waits for them; a failing handler does not stop the server. */
#include "netutil.h"

#include <awith/log.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int fds0;

static int upper(aw_stream_t *s, void *arg) {
    char line[128];
    ssize_t n;
    while ((n = aw_stream_read_line(s, line, sizeof line)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (line[i] >= 'a' && line[i] <= 'z')
                line[i] -= 32;
        if (aw_stream_write(s, line, (size_t)n) < 0)
            return -1;
    }
    return (int)n;
}

typedef struct {
    int port, id, ok;
} cl_t;

static int client(void *arg) {
    cl_t *c = arg;
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", c->port)) {
        char out[32], in[32];
        for (int i = 0; i < 20; i++) {
            int n = snprintf(out, sizeof out, "client %d line %d\n", c->id, i);
            if (aw_stream_write(s, out, (size_t)n) < 0 || aw_stream_read_line(s, in, sizeof in) != n)
                aw_leave();
            c->ok += !memcmp(in, "CLIENT ", 7) && !memcmp(in + n - 1, "\n", 1);
        }
    }
    return aw_status();
}

static int t_many(void *arg) {
    cl_t cl[10];
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, upper, NULL)) {
        aw_with (aw_group_t *g, aw_group())
            for (int i = 0; i < 10; i++) {
                cl[i] = (cl_t){.port = aw_listener_port(l), .id = i};
                aw_spawn(g, client, &cl[i], NULL);
            }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        wait_until(srv->active == 0);
        cr_assert_eq(srv->accepted, 10);
        cr_assert_eq(srv->failed, 0);
    }
    for (int i = 0; i < 10; i++)
        cr_assert_eq(cl[i].ok, 20);
    return aw_status();
}
Test(server, concurrent_clients) {
    fds0 = aw_test_fds();
    aw_test_run(t_many, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

static int handlers_exited;

static int forever(aw_stream_t *s, void *arg) {
    char c;
    ssize_t n = aw_stream_read(s, &c, 1); /* the client never writes */
    handlers_exited++;
    return (int)n;
}

static int t_leave(void *arg) {
    aw_stream_t c[3];
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL)) {
        aw_with (aw_server_t *srv, aw_server(l, forever, NULL)) {
            for (int i = 0; i < 3; i++)
                cr_assert_eq(aw_tcp_connect(&c[i], "127.0.0.1", aw_listener_port(l)), 0);
            wait_until(srv->accepted == 3);
        }
        cr_assert_eq(aw_status(), 0, "leaving the server is not an error: %s", msg_now());
        cr_assert_eq(handlers_exited, 3, "every handler was cancelled and awaited");
        /* the listener is still open but nobody accepts any more */
        char b;
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(aw_stream_read(&c[i], &b, 1), 0, "the handler closed its stream");
            aw_stream_close(&c[i]);
        }
    }
    return aw_status();
}
Test(server, leaving_cancels_and_awaits_handlers) {
    fds0 = aw_test_fds();
    aw_test_run(t_leave, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

static int failing(aw_stream_t *s, void *arg) {
    char buf[4];
    int rc = aw_stream_read_exactly(s, buf, 4);
    if (rc < 0)
        return rc;
    return aw_raise(-EPROTO, "bad greeting %.4s", buf);
}

static int t_fail(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, failing, NULL)) {
        for (int i = 0; i < 2; i++)
            aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l))) {
                char b;
                cr_assert_eq(aw_stream_write(s, "HELO", 4), 0);
                cr_assert_eq(aw_stream_read(s, &b, 1), 0, "the server hung up");
            }
        wait_until(srv->failed == 2);
        cr_assert_str_eq(srv->last_error, "bad greeting HELO");
    }
    return aw_status();
}
Test(server, failing_handler_does_not_stop_server) { aw_test_run(t_fail, NULL, 0); }

/* Cancelling the task that holds the server: handlers are cancelled, the
 * cancel propagates. */
static int holder(void *arg) {
    aw_listener_t *l = arg;
    aw_with (aw_server(l, forever, NULL))
        aw_sleep(AW_SEC(3600));
    return aw_status();
}

static int t_cancel_outer(void *arg) {
    handlers_exited = 0;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL)) {
        aw_stream_t c;
        aw_task_t *t;
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, holder, l, &t);
            cr_assert_eq(aw_tcp_connect(&c, "127.0.0.1", aw_listener_port(l)), 0);
            char b;
            aw_with (aw_move_on_after(AW_MS(20)))
                aw_stream_read(&c, &b, 1); /* let the handler start */
            aw_task_cancel(t);
            cr_assert_eq(aw_task_join(t), -ECANCELED);
            aw_err_clear();
        }
        aw_stream_close(&c);
    }
    cr_assert_eq(handlers_exited, 1);
    return aw_status();
}
Test(server, cancelled_from_outside) { aw_test_run(t_cancel_outer, NULL, 0); }

/* aw_server_serve: the same, in the calling task. */
static int serve_task(void *arg) { return aw_server_serve(arg, upper, NULL); }

static int t_serve(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        aw_task_t *t;
        aw_spawn(g, serve_task, l, &t);
        cl_t c = {.port = aw_listener_port(l)};
        cr_assert_eq(client(&c), 0);
        cr_assert_eq(c.ok, 20);
        aw_task_cancel(t);
        cr_assert_eq(aw_task_join(t), -ECANCELED);
        aw_err_clear();
    }
    return aw_status();
}
Test(server, serve_until_cancelled) {
    fds0 = aw_test_fds();
    aw_test_run(t_serve, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* Out of fds (-EMFILE from accept4, for real: the process's descriptors
 * used up under a lowered RLIMIT_NOFILE while a client waits in the
 * backlog): the server backs off and retries until it can accept, and
 * says so once per episode, naming EMFILE and the retry, not once per
 * retry; it says so again when it accepts again. */
static int log_emfile, log_again;
static void on_log(const char *msg, void *arg) {
    log_emfile += strstr(msg, "EMFILE") && strstr(msg, "retrying") ? 1 : 0;
    log_again += strstr(msg, "accepting again") ? 1 : 0;
}

static int t_emfile(void *arg) {
    struct rlimit old, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    static int spare[256];
    int nspare = 0;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, upper, NULL)) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(aw_listener_port(l)),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd, e;
        while ((fd = dup(0)) >= 0)
            spare[nspare++] = fd;
        e = errno;
        close(spare[--nspare]); /* the client's socket takes the last fd */
        /* blocking: the kernel completes it into the backlog, no accept needed */
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int crc = c >= 0 ? connect(c, (struct sockaddr *)&a, sizeof a) : -1;
        /* no Criterion call until the fds are back: it needs some */
        while (srv->accept_errors < 5 && aw_sleep(AW_MS(1)) == 0)
            ;
        size_t errs = srv->accept_errors, acc = srv->accepted;
        int emfile = log_emfile, again = log_again;
        while (nspare)
            close(spare[--nspare]);
        cr_assert_eq(e, EMFILE);
        cr_assert_geq(c, 0);
        cr_assert_eq(crc, 0);
        cr_assert_geq(errs, 5, "%s", msg_now());
        cr_assert_eq(acc, 0);
        cr_assert_eq(emfile, 1, "one report for %zu failures", errs);
        cr_assert_eq(again, 0);
        cr_assert_eq(write(c, "ping\n", 5), 5);
        wait_until(net_inq(c) >= 5); /* accepted, answered */
        char in[8];
        cr_assert_eq(read(c, in, sizeof in), 5);
        cr_assert_eq(memcmp(in, "PING\n", 5), 0);
        cr_assert_eq(srv->accepted, 1);
        cr_assert_eq(log_emfile, 1);
        cr_assert_eq(log_again, 1);
        close(c);
        wait_until(srv->active == 0);
    }
    setrlimit(RLIMIT_NOFILE, &old);
    return aw_status();
}
Test(server, accept_out_of_fds_retries_and_says_so_once) {
    aw_log_set(on_log, NULL);
    fds0 = aw_test_fds();
    aw_test_run(t_emfile, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* A handler that returns the -ECANCELED a read gave it inside its own
 * aw_move_on_after (nobody cancelled the handler: its scope moved on) is
 * a handler's result like any other: counted in `failed`, the server goes
 * on accepting (server.h: a handler's failure does not stop the server). */
static int moveon_exits;
static int moveon_handler(aw_stream_t *s, void *arg) {
    ssize_t n = 0;
    char c;
    aw_with (aw_move_on_after(AW_MS(10)))
        n = aw_stream_read(s, &c, 1); /* the client stays silent */
    moveon_exits++;
    return (int)n;
}

static int t_moveon(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, moveon_handler, NULL)) {
        for (size_t i = 1; i <= 2; i++)
            aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l)))
                wait_until(srv->accepted == i && srv->active == 0);
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(srv->failed, 2);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(moveon_exits, 2);
    return aw_status();
}
Test(server, server_h_a_handler_returning_its_own_moved_on_cancel_is_a_failure) {
    fds0 = aw_test_fds();
    aw_test_run(t_moveon, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* server.h: an accept error other than running out fails the server's
 * group, which cancels the block; the block's statement sees it. Here
 * the listening socket is shut down under the server (accept: EINVAL).
 * The group's own cancel of the block is absorbed (M4): what leaves is
 * the group's failure naming the accept error, not -ECANCELED. */
static int t_accept_fails(void *arg) {
    int seen = 1;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL)) {
        aw_with (aw_server_t *srv, aw_server(l, upper, NULL)) {
            aw_sleep(AW_MS(5));
            shutdown(l->fd, SHUT_RDWR);
            seen = aw_sleep(AW_SEC(30));
        }
        cr_assert_eq(seen, -ECANCELED, "the block was cancelled");
        cr_assert_eq(aw_status(), -AW_EGROUP, "the group's failure, not a bare cancel: %s", msg_now());
        cr_assert(msg_has("EINVAL"), "%s", msg_now());
        aw_err_clear();
    }
    return aw_status();
}
Test(server, M4_an_accept_error_leaves_the_servers_block_as_the_group_failure) {
    fds0 = aw_test_fds();
    aw_test_run(t_accept_fails, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* M4 the other way: a deadline outside the server's block still cuts it
 * (the server's exit suppresses only its group's own cancel): a move_on
 * scope around it absorbs its cancel and goes on, a fail_after one
 * leaves with -ETIMEDOUT, and the handlers' exits ran both times. */
static int t_outer_deadline(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL)) {
        aw_stream_t c;
        handlers_exited = 0;
        aw_with (aw_move_on_after(AW_MS(20)))
        aw_with (aw_server_t *srv, aw_server(l, forever, NULL)) {
            cr_assert_eq(aw_tcp_connect(&c, "127.0.0.1", aw_listener_port(l)), 0);
            wait_until(srv->active == 1);
            aw_sleep(AW_SEC(30));
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(handlers_exited, 1);
        aw_stream_close(&c);
        int seen = 0;
        aw_with (aw_fail_after(AW_MS(20)))
        aw_with (aw_server_t *srv, aw_server(l, forever, NULL)) {
            cr_assert_eq(aw_tcp_connect(&c, "127.0.0.1", aw_listener_port(l)), 0);
            while (srv->active != 1 && aw_sleep(AW_MS(1)) == 0)
                ;
            seen = aw_sleep(AW_SEC(30));
        }
        cr_assert_eq(seen, -ECANCELED);
        cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", msg_now());
        cr_assert_eq(handlers_exited, 2);
        aw_stream_close(&c);
        aw_err_clear();
    }
    return aw_status();
}
Test(server, M4_a_deadline_outside_the_servers_block_still_cuts_it) {
    fds0 = aw_test_fds();
    aw_test_run(t_outer_deadline, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* A11/K5: a handler that `return 0`s from inside a block whose exit then
 * fails (a commit that failed, say) ends with the exit's error. That is a
 * handler's failure like any other: counted, and the server goes on. */
static int commit_enter(void *self, void **out) { return 0; }
static int commit_exit(void *self, const aw_err_t *err) {
    return aw_raise(-EIO, "commit failed");
}
static const aw_cm_type_t commit_type = {.name = "commit", .enter = commit_enter, .exit = commit_exit};
static int k5_handler(aw_stream_t *s, void *arg) {
    aw_with (aw_cm(&commit_type, NULL))
        return 0;
    return 0;
}
static int t_k5(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, k5_handler, NULL)) {
        for (size_t i = 1; i <= 2; i++)
            aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l)))
                wait_until(srv->accepted == i && srv->active == 0);
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(srv->failed, 2);
        cr_assert(strstr(srv->last_error, "commit failed"), "%s", srv->last_error);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    return aw_status();
}
Test(server, K5_a_handler_whose_exit_failed_after_return_0_is_a_failure) {
    fds0 = aw_test_fds();
    aw_test_run(t_k5, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}
