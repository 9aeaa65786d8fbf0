/* tests for src/net/tcp.c: connect by name and by address (IPv4, IPv6),
 * listen options, and the faults of the net layer, each a clear error
 * with nothing leaked: connection refused, host not found, reset by peer
 * mid-read, peer closing mid-write (EPIPE, not SIGPIPE), slow peer hitting
 * a deadline, fd exhaustion. Then a cancel at each cancellation point of a
 * client/server exchange, and the Happy Eyeballs race (RFC 8305): a hung
 * address must not hold up a working one, a failure starts the next
 * attempt at once, all refused, a cancel or a deadline mid-race. */
#include "netutil.h"

#include <awith/trace.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static int fds0;

#define CHECK_FDS(fn, expect)                                                    \
    do {                                                                         \
        fds0 = aw_test_fds();                                                    \
        aw_test_run(fn, NULL, expect);                                           \
        cr_assert_eq(aw_test_fds(), fds0, "file descriptors leaked");           \
    } while (0)

/* A port nobody listens on (bound, then closed). */
static int free_port(void) {
    aw_listener_t l;
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 0, NULL), 0);
    int p = aw_listener_port(&l);
    aw_listener_close(&l);
    return p;
}

/* ---- a little server: echo lines back ---- */

static int echo_lines(aw_stream_t *s, void *arg) {
    char line[256];
    for (;;) {
        ssize_t n = aw_stream_read_line(s, line, sizeof line);
        if (n <= 0)
            return (int)n;
        int rc = aw_stream_write(s, line, (size_t)n);
        if (rc < 0)
            return rc;
    }
}

static int exchange(const char *host, int port) {
    aw_with (aw_stream_t *s, aw_tcp_client(host, port)) {
        char buf[16];
        if (aw_stream_write(s, "hello\n", 6) < 0 || aw_stream_read_line(s, buf, sizeof buf) != 6)
            aw_leave();
        cr_assert_eq(memcmp(buf, "hello\n", 6), 0);
    }
    return aw_status();
}

static int t_connect_name(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server(l, echo_lines, NULL)) {
        /* "localhost" resolves on the thread pool, possibly to ::1 first
         * (refused: nobody listens there): the next address is tried */
        cr_assert_eq(exchange("localhost", aw_listener_port(l)), 0, "%s", msg_now());
        cr_assert_eq(exchange("127.0.0.1", aw_listener_port(l)), 0, "%s", msg_now());
    }
    return aw_status();
}
Test(tcp, connect_by_name_and_address) { CHECK_FDS(t_connect_name, 0); }

static int t_ipv6(void *arg) {
    aw_listener_t l;
    if (aw_tcp_listen(&l, "::1", 0, NULL) < 0) {
        aw_err_clear();
        return 77;
    }
    aw_with (aw_server(&l, echo_lines, NULL))
        cr_assert_eq(exchange("::1", aw_listener_port(&l)), 0, "%s", msg_now());
    aw_listener_close(&l);
    return aw_status();
}
Test(tcp, ipv6_loopback) {
    fds0 = aw_test_fds();
    int rc = aw_main(t_ipv6, NULL);
    if (rc == 77)
        cr_skip_test("no IPv6 loopback here");
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

static int t_refused(void *arg) {
    aw_stream_t s;
    int port = free_port();
    cr_assert_eq(aw_tcp_connect(&s, "127.0.0.1", port), -ECONNREFUSED);
    cr_assert(msg_has("connect to 127.0.0.1:") && msg_has("Connection refused"), "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(s.fd, -1);
    aw_stream_close(&s); /* harmless on a failed connect */
    /* the manager: enter fails, the block does not run */
    bool ran = false;
    aw_with (aw_stream_t *c, aw_tcp_client("127.0.0.1", port))
        ran = true;
    cr_assert(!ran);
    cr_assert_eq(aw_status(), -ECONNREFUSED);
    aw_err_clear();
    return 0;
}
Test(tcp, connection_refused) { CHECK_FDS(t_refused, 0); }

static int t_not_found(void *arg) {
    aw_stream_t s;
    int rc = aw_tcp_connect(&s, "no-such-host.invalid", 80);
    /* -ENXIO: the name does not exist; -EAGAIN: no resolver reachable */
    cr_assert(rc == -ENXIO || rc == -EAGAIN, "rc %d", rc);
    cr_assert(msg_has("resolve no-such-host.invalid: "), "%s", msg_now());
    aw_err_clear();
    return 0;
}
Test(tcp, host_not_found) { CHECK_FDS(t_not_found, 0); }

/* A message names an IPv6 literal the way the stream names its peer,
 * "[::1]:80": "::1:80" reads as another address. */
static int t_refused_v6(void *arg) {
    aw_listener_t l;
    if (aw_tcp_listen(&l, "::1", 0, NULL) < 0) {
        aw_err_clear();
        return 77;
    }
    int port = aw_listener_port(&l);
    aw_listener_close(&l);
    aw_stream_t s;
    cr_assert_eq(aw_tcp_connect(&s, "::1", port), -ECONNREFUSED);
    char want[32];
    snprintf(want, sizeof want, "connect to [::1]:%d", port);
    cr_assert(msg_has(want), "%s", msg_now());
    aw_err_clear();
    return 0;
}
Test(tcp, a_refused_ipv6_literal_is_named_in_brackets) {
    fds0 = aw_test_fds();
    int rc = aw_main(t_refused_v6, NULL);
    if (rc == 77)
        cr_skip_test("no IPv6 loopback here");
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* ---- faults from the peer ---- */

static void reset(aw_stream_t *s) {
    struct linger lg = {1, 0}; /* close sends RST */
    setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    aw_stream_close(s);
}

static int t_reset(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    char buf[100];
    cr_assert_eq(aw_stream_write(&b, "partial", 7), 0);
    cr_assert_eq(aw_stream_read_exactly(&a, buf, 3), 0);
    reset(&b);
    int rc = aw_stream_read_exactly(&a, buf, 100);
    cr_assert_eq(rc, -ECONNRESET, "rc %d: %s", rc, msg_now());
    cr_assert(msg_has("Connection reset by peer") && msg_has("127.0.0.1:"), "%s", msg_now());
    aw_err_clear();
    cr_assert(aw_stream_broken(&a));
    cr_assert_eq(aw_stream_read(&a, buf, 1), -ENOTRECOVERABLE);
    cr_assert(msg_has("Connection reset by peer"), "the broken stream says why: %s", msg_now());
    aw_err_clear();
    aw_stream_close(&a);
    return 0;
}
Test(tcp, reset_by_peer_mid_read) { CHECK_FDS(t_reset, 0); }

static int t_epipe(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    aw_stream_close(&b);
    char *chunk = calloc(1, 1 << 16);
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++)
        rc = aw_stream_write(&a, chunk, 1 << 16);
    free(chunk);
    cr_assert(rc == -EPIPE || rc == -ECONNRESET, "rc %d", rc);
    cr_assert(msg_has("write to 127.0.0.1:"), "%s", msg_now());
    aw_err_clear();
    aw_stream_close(&a);
    return 0;
}
Test(tcp, peer_closed_mid_write_is_epipe_not_sigpipe) {
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    CHECK_FDS(t_epipe, 0);
}

static int silent(aw_stream_t *s, void *arg) {
    char c;
    return (int)aw_stream_read(s, &c, 1); /* waits for the client, which waits for us */
}

static int t_slow_peer(void *arg) {
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server(l, silent, NULL))
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l))) {
        char buf[4];
        aw_with (aw_fail_after(AW_MS(30)))
            aw_stream_read_exactly(s, buf, sizeof buf);
        cr_assert_eq(aw_status(), -ETIMEDOUT);
        cr_assert_not_null(aw_err_find(aw_err_current(), -ETIMEDOUT));
        aw_err_clear();
    }
    return aw_status();
}
Test(tcp, slow_peer_hits_deadline) { CHECK_FDS(t_slow_peer, 0); }

/* A listener that never accepts, with a full queue: SYNs are dropped and
 * a new connect hangs until its deadline. */
static int t_connect_deadline(void *arg) {
    aw_listener_t l;
    aw_listen_opts_t o = {.backlog = 1};
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 0, &o), 0);
    aw_stream_t fill[8];
    int nfill = 0;
    bool timed_out = false;
    while (nfill < 8 && !timed_out) {
        aw_with (aw_fail_after(AW_MS(50)))
            aw_tcp_connect(&fill[nfill], "127.0.0.1", aw_listener_port(&l));
        if (aw_status() == -ETIMEDOUT)
            timed_out = true;
        else
            cr_assert_eq(aw_status(), 0, "%s", msg_now());
        if (!timed_out)
            nfill++;
        aw_err_clear();
    }
    cr_assert(timed_out, "connect to a full listener did not time out");
    for (int i = 0; i < nfill; i++)
        aw_stream_close(&fill[i]);
    aw_listener_close(&l);
    return 0;
}
Test(tcp, connect_honours_deadline) { CHECK_FDS(t_connect_deadline, 0); }

static int t_emfile(void *arg) {
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    aw_listener_t l;
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 0, NULL), 0);
    /* a few fds left: the loop's epoll and pool already exist */
    aw_stream_t ss[64];
    int n = 0;
    low = old;
    low.rlim_cur = (rlim_t)aw_test_fds() + 6;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int rc = 0;
    while (n < 64 && (rc = aw_tcp_connect(&ss[n], "127.0.0.1", aw_listener_port(&l))) == 0)
        n++;
    cr_assert_eq(rc, -EMFILE, "rc %d: %s", rc, msg_now());
    cr_assert(msg_has("Too many open files"), "%s", msg_now());
    aw_err_clear();
    cr_assert_gt(n, 0);
    /* accept with no fd left: -EMFILE, and the connection stays queued */
    aw_stream_t in;
    rc = aw_listener_accept(&l, &in);
    cr_assert_eq(rc, -EMFILE, "rc %d", rc);
    cr_assert(msg_has("accept on 127.0.0.1:"), "%s", msg_now());
    aw_err_clear();
    aw_stream_close(&ss[--n]);
    cr_assert_eq(aw_listener_accept(&l, &in), 0, "a freed fd lets accept go on");
    aw_stream_close(&in);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    while (n > 0)
        aw_stream_close(&ss[--n]);
    aw_listener_close(&l);
    return 0;
}
Test(tcp, fd_exhaustion) { CHECK_FDS(t_emfile, 0); }

static int t_reuseport(void *arg) {
    aw_listen_opts_t o = {.reuseport = true};
    aw_listener_t a, b, c;
    cr_assert_eq(aw_tcp_listen(&a, "127.0.0.1", 0, &o), 0);
    cr_assert_eq(aw_tcp_listen(&b, "127.0.0.1", aw_listener_port(&a), &o), 0, "%s", msg_now());
    aw_listener_close(&b);
    aw_listener_close(&a);
    cr_assert_eq(aw_tcp_listen(&a, "127.0.0.1", 0, NULL), 0);
    cr_assert_eq(aw_tcp_listen(&c, "127.0.0.1", aw_listener_port(&a), NULL), -EADDRINUSE);
    cr_assert(msg_has("listen on 127.0.0.1:") && msg_has("Address already in use"), "%s", msg_now());
    aw_err_clear();
    aw_listener_close(&a);
    return 0;
}
Test(tcp, reuseport_option) { CHECK_FDS(t_reuseport, 0); }

/* ---- cancel at each suspension point ---- */

typedef struct {
    int port;
    int rc;
    bool done;
} xchg_t;

static int client_task(void *arg) {
    xchg_t *x = arg;
    aw_stream_t st;
    x->rc = aw_tcp_connect(&st, "127.0.0.1", x->port);
    if (x->rc < 0)
        return 0;
    aw_with (aw_stream_t *s, aw_stream_closing(&st)) {
        char buf[16];
        if (aw_stream_write(s, "hello\n", 6) < 0 || aw_stream_read_line(s, buf, sizeof buf) != 6)
            aw_leave();
        cr_assert_eq(memcmp(buf, "hello\n", 6), 0);
    }
    x->rc = aw_status();
    x->done = x->rc == 0;
    return 0;
}

/* Cancelled at exactly its k-th cancellation point (testutil.h). */
static int t_cancel_points(void *arg) {
    int completed_at = -1;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, echo_lines, NULL)) {
        cr_assert_eq(aw_trace_set(aw_test_cancel_hook, NULL), 0);
        for (int k = 0; k < 1000 && completed_at < 0; k++) {
            int before = aw_test_fds();
            xchg_t x = {.port = aw_listener_port(l)};
            aw_test_cancel_at.points = 0;
            aw_test_cancel_at.k = k;
            cr_assert_eq(aw_spawn(NULL, client_task, &x, &aw_test_cancel_at.target), 0);
            if (k == 0)
                aw_task_cancel(aw_test_cancel_at.target); /* before it first runs */
            cr_assert_eq(aw_task_join(aw_test_cancel_at.target), 0);
            aw_test_cancel_at.target = NULL;
            cr_assert(x.rc == 0 || x.rc == -ECANCELED, "k=%d: rc %d", k, x.rc);
            cr_assert(x.done == (x.rc == 0), "k=%d", k);
            /* the server accepts in order: once a probe exchange is
             * through, every earlier connection was accepted; then wait for
             * their handlers to close */
            cr_assert_eq(exchange("127.0.0.1", x.port), 0, "%s", msg_now());
            wait_until(srv->active == 0);
            cr_assert_eq(aw_test_fds(), before, "k=%d: fd leaked", k);
            if (x.done)
                completed_at = k;
        }
        aw_trace_set(NULL, NULL);
        /* at least connect's checkpoint and the wait for the echo */
        cr_assert_geq(completed_at, 2, "the exchange completed only after some cancel points");
        if (getenv("AW_TEST_VERBOSE"))
            fprintf(stderr, "exchange completed at k=%d\n", completed_at);
    }
    return aw_status();
}
Test(tcp, cancel_at_each_suspension_point) { CHECK_FDS(t_cancel_points, 0); }

/* ---- Happy Eyeballs (RFC 8305) ----
 * The address lists are explicit (aw_tcp_connect_addrs): what "localhost"
 * resolves to depends on /etc/hosts and on AI_ADDRCONFIG (a machine with
 * no IPv6 address but loopback gets no ::1), so a test by name could not
 * say which address comes first. */

/* Run a test that needs ::1 and 127.0.0.1 on one port: fn returns 77
 * when ::1 is not usable here (skip), 78 when the port was taken in the
 * other family (try again with another). */
static void run_dual_stack(aw_task_fn fn) {
    int fds = aw_test_fds(), rc;
    for (int i = 0; i < 5 && (rc = aw_main(fn, NULL)) == 78; i++)
        ;
    if (rc == 77)
        cr_skip_test("no IPv6 loopback here");
    cr_assert_eq(rc, 0);
    cr_assert_eq(aw_test_fds(), fds, "file descriptors leaked");
}

/* A listener on host:*port (0: any port) that never accepts, its accept
 * queue filled: the kernel drops new SYNs and a connect to it hangs. The
 * fillers go to fill[] (*nfill). Returns 0 or the listen error. */
static int hung_listener(aw_listener_t *l, const char *host, int *port, aw_stream_t *fill,
                         int *nfill) {
    aw_listen_opts_t o = {.backlog = 1};
    int rc = aw_tcp_listen(l, host, *port, &o);
    if (rc < 0)
        return rc;
    *port = aw_listener_port(l);
    *nfill = 0;
    for (;;) {
        /* On a listener, Linux reports the accept queue's length and
         * limit in tcpi_unacked and tcpi_sacked; full means more than the
         * limit (sk_acceptq_is_full). */
        struct tcp_info ti;
        socklen_t len = sizeof ti;
        cr_assert_eq(getsockopt(l->fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
        if (ti.tcpi_unacked > ti.tcpi_sacked)
            return 0;
        if (*nfill > 0 && ti.tcpi_unacked < (unsigned)*nfill) {
            cr_assert_eq(aw_sleep(AW_MS(1)), 0); /* the last handshake is not in yet */
            continue;
        }
        cr_assert_lt(*nfill, 8);
        cr_assert_eq(aw_tcp_connect(&fill[(*nfill)++], host, *port), 0, "%s", msg_now());
    }
}

static void hung_close(aw_listener_t *l, aw_stream_t *fill, int nfill) {
    while (nfill > 0)
        aw_stream_close(&fill[--nfill]);
    aw_listener_close(l);
}

/* The first address never answers; the second, on the same port in the
 * other family, works: it must win, after one attempt delay instead of
 * the kernel's connect timeout (about two minutes), and the hung
 * attempt's socket must be closed. */
static int t_eyeballs_hung(void *arg) {
    aw_listener_t hung, ok;
    aw_stream_t fill[8], s, in;
    int nfill, port = 0;
    if (hung_listener(&hung, "::1", &port, fill, &nfill) < 0) {
        aw_err_clear();
        return 77;
    }
    if (aw_tcp_listen(&ok, "127.0.0.1", port, NULL) < 0) {
        /* 127.0.0.1:port is taken by somebody else: a rare clash */
        aw_err_clear();
        hung_close(&hung, fill, nfill);
        return 78;
    }
    int before = aw_test_fds(), rc;
    const char *hosts[] = {"::1", "127.0.0.1"};
    aw_with (aw_fail_after(AW_SEC(30))) /* a bound, not a measure: a hang fails clearly */
        rc = aw_tcp_connect_addrs(&s, hosts, 2, port, NULL);
    cr_assert_eq(rc, 0, "%s", msg_now());
    cr_assert(strncmp(s.peer, "127.0.0.1:", 10) == 0, "won by %s", s.peer);
    cr_assert_eq(aw_test_fds(), before + 1, "only the winner's socket is left");
    cr_assert_eq(aw_listener_accept(&ok, &in), 0);
    cr_assert_eq(aw_stream_write(&s, "x", 1), 0);
    char c;
    cr_assert_eq(aw_stream_read_exactly(&in, &c, 1), 0, "the working listener got it");
    aw_stream_close(&in);
    aw_stream_close(&s);
    aw_listener_close(&ok);
    hung_close(&hung, fill, nfill);
    return 0;
}
Test(tcp, eyeballs_hung_address_does_not_hold_up_the_working_one) {
    run_dual_stack(t_eyeballs_hung);
}

/* A refused attempt starts the next one at once, even with no attempt
 * delay at all (AW_NEVER: one at a time): ::1 refuses, 127.0.0.1 works. */
static int t_eyeballs_refused_first(void *arg) {
    aw_listener_t v6;
    if (aw_tcp_listen(&v6, "::1", 0, NULL) < 0) {
        aw_err_clear();
        return 77;
    }
    int port = aw_listener_port(&v6);
    aw_listener_close(&v6); /* nobody listens on [::1]:port now */
    aw_listener_t ok;
    if (aw_tcp_listen(&ok, "127.0.0.1", port, NULL) < 0) {
        aw_err_clear();
        return 78;
    }
    aw_stream_t s;
    const char *hosts[] = {"::1", "127.0.0.1"};
    aw_tcp_connect_opts_t o = {.attempt_delay = AW_NEVER};
    cr_assert_eq(aw_tcp_connect_addrs(&s, hosts, 2, port, &o), 0, "%s", msg_now());
    cr_assert(strncmp(s.peer, "127.0.0.1:", 10) == 0, "won by %s", s.peer);
    aw_stream_close(&s);
    aw_listener_close(&ok);
    return 0;
}
Test(tcp, eyeballs_failure_starts_the_next_attempt_at_once) {
    run_dual_stack(t_eyeballs_refused_first);
}

/* The families alternate (RFC 8305 §4), the first host's first: every
 * address refuses, at once, so the message lists them in attempt order. */
static int t_eyeballs_interleaved(void *arg) {
    aw_listener_t v6, v4;
    if (aw_tcp_listen(&v6, "::1", 0, NULL) < 0) {
        aw_err_clear();
        return 77;
    }
    int port = aw_listener_port(&v6), rc = aw_tcp_listen(&v4, "127.0.0.1", port, NULL);
    aw_listener_close(&v6);
    if (rc < 0) {
        aw_err_clear();
        return 78;
    }
    aw_listener_close(&v4); /* port is free in both families now */
    aw_stream_t s;
    const char *hosts[] = {"::1", "::1", "127.0.0.1", "127.0.0.1"};
    cr_assert_eq(aw_tcp_connect_addrs(&s, hosts, 4, port, NULL), -ECONNREFUSED);
    char want[256];
    snprintf(want, sizeof want, "all 4 addresses failed: [::1]:%d: Connection refused; "
             "127.0.0.1:%d: Connection refused; [::1]:%d: Connection refused; "
             "127.0.0.1:%d: Connection refused", port, port, port, port);
    cr_assert(msg_has(want), "%s", msg_now());
    aw_err_clear();
    return 0;
}
Test(tcp, eyeballs_families_interleaved) { run_dual_stack(t_eyeballs_interleaved); }

static int t_eyeballs_all_refused(void *arg) {
    aw_stream_t s;
    int port = free_port();
    const char *hosts[] = {"127.0.0.1", "127.0.0.1"};
    cr_assert_eq(aw_tcp_connect_addrs(&s, hosts, 2, port, NULL), -ECONNREFUSED);
    char want[128];
    snprintf(want, sizeof want, "all 2 addresses failed: 127.0.0.1:%d: Connection refused; "
             "127.0.0.1:%d: Connection refused", port, port);
    cr_assert(msg_has("connect to 127.0.0.1:") && msg_has(want), "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(s.fd, -1);
    cr_assert_eq(aw_tcp_connect_addrs(&s, hosts, 0, port, NULL), -EINVAL);
    aw_err_clear();
    return 0;
}
Test(tcp, eyeballs_all_refused_names_each_address) { CHECK_FDS(t_eyeballs_all_refused, 0); }

/* Three addresses that never answer, attempts 10 ms apart: cancel the
 * connecting task at its 1st, 2nd, ... cancellation point (aw_test_cancel_hook), up
 * to the point where all three attempts are in flight (after which it has
 * no more points: it waits for ever). Nothing is left. */
typedef struct {
    int port, rc;
    aw_ns_t delay;
} race_t;

static int racer(void *arg) {
    race_t *r = arg;
    aw_stream_t s;
    const char *hosts[] = {"127.0.0.1", "127.0.0.1", "127.0.0.1"};
    aw_tcp_connect_opts_t o = {.attempt_delay = r->delay};
    r->rc = aw_tcp_connect_addrs(&s, hosts, 3, r->port, &o);
    if (r->rc == 0)
        aw_stream_close(&s);
    aw_err_clear();
    return 0;
}

static int t_eyeballs_cancel(void *arg) {
    aw_listener_t hung;
    aw_stream_t fill[8];
    int nfill;
    race_t r = {.delay = AW_MS(10)};
    cr_assert_eq(hung_listener(&hung, "127.0.0.1", &r.port, fill, &nfill), 0);
    cr_assert_eq(aw_trace_set(aw_test_cancel_hook, NULL), 0);
    int k, before;
    for (k = 1; k < 50; k++) {
        before = aw_test_fds();
        aw_test_cancel_at.points = 0;
        aw_test_cancel_at.k = k;
        r.rc = 1;
        cr_assert_eq(aw_spawn(NULL, racer, &r, &aw_test_cancel_at.target), 0);
        cr_assert_eq(aw_task_join(aw_test_cancel_at.target), 0);
        aw_test_cancel_at.target = NULL;
        cr_assert_eq(r.rc, -ECANCELED, "k=%d", k);
        cr_assert_eq(aw_test_fds(), before, "k=%d: fd leaked", k);
        if (aw_test_cancel_at.fds_at_cancel == before + 4)
            break; /* cancelled with three sockets and the epoll fd open */
    }
    aw_trace_set(NULL, NULL);
    cr_assert_lt(k, 50, "never saw the three attempts in flight");
    hung_close(&hung, fill, nfill);
    return 0;
}
Test(tcp, eyeballs_cancel_at_each_point_of_the_race) { CHECK_FDS(t_eyeballs_cancel, 0); }

/* A deadline that expires while two attempts are in flight: -ETIMEDOUT,
 * nothing left. The hook brings the deadline forward at the first point
 * reached with both sockets (and the epoll fd) open. */
static aw_scope_t *dl_scope;
static int dl_before;
static void dl_hook(const aw_trace_event_t *ev, void *arg) {
    if (ev->kind == AW_TRACE_POINT && dl_scope && aw_test_fds() == dl_before + 3) {
        aw_scope_reschedule(dl_scope, ev->now);
        dl_scope = NULL;
    }
}

static int t_eyeballs_deadline(void *arg) {
    aw_listener_t hung;
    aw_stream_t fill[8], s;
    int nfill, port = 0;
    cr_assert_eq(hung_listener(&hung, "127.0.0.1", &port, fill, &nfill), 0);
    const char *hosts[] = {"127.0.0.1", "127.0.0.1"};
    aw_tcp_connect_opts_t o = {.attempt_delay = AW_MS(10)};
    dl_before = aw_test_fds();
    cr_assert_eq(aw_trace_set(dl_hook, NULL), 0);
    aw_with (aw_scope_t *sc, aw_fail_after(AW_SEC(60))) {
        dl_scope = sc;
        aw_tcp_connect_addrs(&s, hosts, 2, port, &o);
    }
    aw_trace_set(NULL, NULL);
    cr_assert_null(dl_scope, "the race never had both attempts in flight");
    cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(aw_test_fds(), dl_before, "the attempts' sockets are closed");
    hung_close(&hung, fill, nfill);
    return 0;
}
Test(tcp, eyeballs_deadline_mid_race) { CHECK_FDS(t_eyeballs_deadline, 0); }

/* No fd left for the epoll fd when the second attempt starts: that
 * attempt is dropped, the first goes on alone (here until a deadline),
 * and nothing leaks. */
static int t_eyeballs_emfile(void *arg) {
    aw_listener_t hung;
    aw_stream_t fill[8], s;
    int nfill, port = 0;
    cr_assert_eq(hung_listener(&hung, "127.0.0.1", &port, fill, &nfill), 0);
    int before = aw_test_fds();
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = (rlim_t)before + 2; /* two sockets, no epoll fd */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    const char *hosts[] = {"127.0.0.1", "127.0.0.1", "127.0.0.1"};
    aw_tcp_connect_opts_t o = {.attempt_delay = AW_MS(10)};
    aw_with (aw_fail_after(AW_MS(300)))
        aw_tcp_connect_addrs(&s, hosts, 3, port, &o);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    cr_assert_eq(aw_status(), -ETIMEDOUT, "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(aw_test_fds(), before);
    hung_close(&hung, fill, nfill);
    return 0;
}
Test(tcp, eyeballs_fd_exhaustion_mid_race) { CHECK_FDS(t_eyeballs_emfile, 0); }

/* The manager form takes the same options; its exit closes the socket. */
static int t_client_opts(void *arg) {
    int before = aw_test_fds();
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL)) {
        aw_tcp_connect_opts_t o = {.attempt_delay = AW_MS(100)};
        aw_with (aw_stream_t *s, aw_tcp_client_opts("127.0.0.1", aw_listener_port(l), &o))
            cr_assert(strncmp(s->peer, "127.0.0.1:", 10) == 0, "peer %s", s->peer);
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
    }
    cr_assert_eq(aw_test_fds(), before);
    return 0;
}
Test(tcp, client_manager_with_connect_options) { aw_test_run(t_client_opts, NULL, 0); }

/* ---- ports of Trio's test_highlevel_open_tcp_stream / _listeners ---- */

/* Trio test_open_tcp_stream_input_validation: no host, or a port out of
 * range, is refused up front (ValueError: -EINVAL), nothing left open. */
static int t_trio_input_validation(void *arg) {
    aw_stream_t s;
    cr_assert_eq(aw_tcp_connect(&s, NULL, 80), -EINVAL);
    aw_err_clear();
    cr_assert_eq(aw_tcp_connect(&s, "127.0.0.1", -1), -EINVAL);
    aw_err_clear();
    cr_assert_eq(aw_tcp_connect(&s, "127.0.0.1", 65536), -EINVAL);
    cr_assert(msg_has("out of range"), "%s", msg_now());
    aw_err_clear();
    aw_listener_t l;
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 70000, NULL), -EINVAL);
    aw_err_clear();
    cr_assert_eq(l.fd, -1);
    return 0;
}
Test(tcp, trio_test_open_tcp_stream_input_validation) { CHECK_FDS(t_trio_input_validation, 0); }

/* Trio test_open_tcp_listeners_rebind: SO_REUSEADDR lets a server listen
 * again on its port while a connection it closed first sits in
 * TIME_WAIT; and a second listener on a port in use is -EADDRINUSE. */
static int t_trio_rebind(void *arg) {
    aw_listener_t l, l2;
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 0, NULL), 0);
    int port = aw_listener_port(&l);
    cr_assert_eq(aw_tcp_listen(&l2, "127.0.0.1", port, NULL), -EADDRINUSE);
    aw_err_clear();
    aw_stream_t c, s;
    cr_assert_eq(aw_tcp_connect(&c, "127.0.0.1", port), 0);
    cr_assert_eq(aw_listener_accept(&l, &s), 0);
    aw_stream_close(&s); /* the server closes first: TIME_WAIT on its side */
    char b;
    cr_assert_eq(aw_stream_read(&c, &b, 1), 0);
    aw_stream_close(&c);
    aw_listener_close(&l);
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", port, NULL), 0, "%s", msg_now());
    cr_assert_eq(aw_listener_port(&l), port);
    aw_listener_close(&l);
    return 0;
}
Test(tcp, trio_test_open_tcp_listeners_rebind) { CHECK_FDS(t_trio_rebind, 0); }

/* Trio test_SocketListener (closing): an accept blocked when another task
 * closes the listener fails with ClosedResourceError (-EBADF), and so
 * does every accept after; close stays a no-op. */
static aw_listener_t lc_l;
static int lc_rc = 1;
static int lc_acceptor(void *arg) {
    aw_stream_t s;
    lc_rc = aw_listener_accept(&lc_l, &s);
    aw_err_clear();
    return 0;
}
static int t_trio_listener_close(void *arg) {
    cr_assert_eq(aw_tcp_listen(&lc_l, "127.0.0.1", 0, NULL), 0);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, lc_acceptor, NULL, NULL);
        aw_sleep(AW_MS(10));
        cr_assert_eq(lc_rc, 1, "the accept waits");
        cr_assert_eq(aw_listener_close(&lc_l), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(lc_rc, -EBADF);
    aw_stream_t s;
    cr_assert_eq(aw_listener_accept(&lc_l, &s), -EBADF);
    aw_err_clear();
    cr_assert_eq(aw_listener_close(&lc_l), 0);
    return 0;
}
Test(tcp, trio_test_SocketListener_close_while_accepting) { CHECK_FDS(t_trio_listener_close, 0); }

/* Trio test_socket_stream_works_when_peer_has_already_closed: a peer
 * that connected, sent, and closed before the accept: the stream reads
 * its bytes, then end of stream. */
static int t_trio_peer_closed_first(void *arg) {
    aw_listener_t l;
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 0, NULL), 0);
    aw_stream_t c, s;
    cr_assert_eq(aw_tcp_connect(&c, "127.0.0.1", aw_listener_port(&l)), 0);
    cr_assert_eq(aw_stream_write(&c, "x", 1), 0);
    aw_stream_close(&c);
    cr_assert_eq(aw_listener_accept(&l, &s), 0);
    char b[4];
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), 1);
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), 0);
    aw_stream_close(&s);
    aw_listener_close(&l);
    return 0;
}
Test(tcp, trio_test_socket_stream_works_when_peer_has_already_closed) {
    CHECK_FDS(t_trio_peer_closed_first, 0);
}

/* tcp.h: "host NULL: every address", as Trio's open_tcp_listeners(port)
 * and asyncio's create_server(host=None) listen on every address of
 * every family: clients reach it over IPv4 and IPv6 alike, and an IPv4
 * peer is named as such. */
static int t_listen_any(void *arg) {
    aw_listener_t l;
    cr_assert_eq(aw_tcp_listen(&l, NULL, 0, NULL), 0, "%s", msg_now());
    const char *hosts[] = {"127.0.0.1", "::1"};
    for (int i = 0; i < 2; i++) {
        aw_stream_t c, s;
        cr_assert_eq(aw_tcp_connect(&c, hosts[i], aw_listener_port(&l)), 0, "%s: %s", hosts[i],
                     msg_now());
        cr_assert_eq(aw_listener_accept(&l, &s), 0);
        if (i == 0)
            cr_assert(strncmp(s.peer, "127.0.0.1:", 10) == 0, "peer %s", s.peer);
        aw_stream_close(&c);
        aw_stream_close(&s);
    }
    aw_listener_close(&l);
    return 0;
}
/* The wildcard is bound in a network namespace of the test's own, where
 * the only interface is a loopback: nothing listens outside it. */
static bool private_loopback(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0 && unshare(CLONE_NEWNET) < 0)
        return false;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    bool up = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 &&
              (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
    if (fd >= 0)
        close(fd);
    return up;
}
Test(tcp, trio_test_open_tcp_listeners_any_address_reaches_both_families) {
    if (!private_loopback())
        cr_skip_test("no private network namespace here: the wildcard is not bound");
    if (access("/proc/net/if_inet6", F_OK) != 0)
        cr_skip_test("no IPv6 here");
    CHECK_FDS(t_listen_any, 0);
}
