/* tests for src/net/reuseport.c: one port served by every loop of a set.
 * The spread (connections land on both loops, each accepted from the
 * loop's own SO_REUSEPORT socket, every one answered), the reservation
 * taking no connection, port 0 picking one port for all, a port taken
 * without SO_REUSEPORT, the plain listener manager. Clients are blocking
 * sockets on the test's own thread; the loops count what they accept. */
#include "netutil.h"

#include <arpa/inet.h>
#include <awith/loops.h>
#include <awith/reuseport.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
    atomic_int ready;
    atomic_int accepted_on[2];
    atomic_int served_on[2];
    atomic_int bad;
} seen;

static int echo(aw_stream_t *s, void *arg) {
    (void)arg;
    atomic_fetch_add(&seen.accepted_on[aw_loops_index()], 1);
    char buf[64];
    for (;;) {
        ssize_t n = aw_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        if (aw_stream_write(s, buf, (size_t)n) < 0)
            return aw_status();
    }
}

static int serve(void *arg, int index) {
    aw_with (aw_server_t *srv, aw_reuseport_server(arg, echo, NULL)) {
        atomic_fetch_add(&seen.ready, 1);
        aw_sleep_until(AW_NEVER); /* until aw_loops_stop */
        atomic_store(&seen.served_on[index], (int)srv->accepted);
    }
    return aw_status();
}

/* One blocking client round trip; 0 or -errno. */
static int client(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int rc = 0;
    char c = 'x', back = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        rc = -errno;
    else if (write(fd, &c, 1) != 1 || read(fd, &back, 1) != 1 || back != 'x')
        rc = -EPROTO;
    close(fd);
    return rc;
}

enum { CLIENTS = 64 };

Test(reuseport, connections_land_on_every_loop_each_from_its_own_socket) {
    memset(&seen, 0, sizeof seen);
    int fds = aw_test_fds();
    aw_reuseport_t rp;
    cr_assert_eq(aw_reuseport_open(&rp, "127.0.0.1", 0, 0), 0);
    cr_assert_gt(rp.port, 0);
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 2, serve, &rp, NULL), 0);
    while (atomic_load(&seen.ready) < 2)
        usleep(1000);
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(client(rp.port), 0, "client %d", i);
    aw_loops_stop(ls);
    cr_assert_eq(aw_loops_join(ls), 0);
    aw_reuseport_close(&rp);
    int a = atomic_load(&seen.accepted_on[0]), b = atomic_load(&seen.accepted_on[1]);
    /* by the kernel's hash of the 4-tuple: all 64 on one loop has odds 2^-63 */
    cr_assert_gt(a, 0, "loop 0 accepted none (loop 1: %d)", b);
    cr_assert_gt(b, 0, "loop 1 accepted none (loop 0: %d)", a);
    cr_assert_eq(a + b, CLIENTS);
    cr_assert_eq(atomic_load(&seen.served_on[0]), a, "the server's counter is this loop's");
    cr_assert_eq(atomic_load(&seen.served_on[1]), b);
    cr_assert_eq(aw_test_fds(), fds);
}

Test(reuseport, the_reservation_takes_no_connection) {
    aw_reuseport_t rp;
    cr_assert_eq(aw_reuseport_open(&rp, "127.0.0.1", 0, 0), 0);
    cr_assert_eq(client(rp.port), -ECONNREFUSED);
    aw_reuseport_close(&rp);
    aw_reuseport_close(&rp); /* idempotent */
    cr_assert_eq(rp.fd, -1);
}

Test(reuseport, a_port_taken_without_reuseport_is_eaddrinuse) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 4), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    aw_reuseport_t rp;
    cr_assert_eq(aw_reuseport_open(&rp, "127.0.0.1", ntohs(sa.sin_port), 0), -EADDRINUSE);
    cr_assert_eq(rp.fd, -1);
    aw_err_clear();
    close(fd);
}

/* The listener manager alone, in a plain loop: two listeners on one port. */
static int two_listeners(void *arg) {
    aw_reuseport_t *rp = arg;
    aw_with (aw_listener_t *a, aw_reuseport_listener(rp))
    aw_with (aw_listener_t *b, aw_reuseport_listener(rp)) {
        cr_assert_eq(aw_listener_port(a), rp->port);
        cr_assert_eq(aw_listener_port(b), rp->port);
        cr_assert_neq(a->fd, b->fd);
    }
    return aw_status();
}

static int closed_reservation(void *arg) {
    aw_reuseport_t *rp = arg;
    int entered = 0;
    aw_with (aw_listener_t *l, aw_reuseport_listener(rp))
        entered = 1;
    cr_assert_eq(entered, 0);
    cr_assert_eq(aw_status(), -EBADF);
    cr_assert(msg_has("closed port reservation"), "%s", msg_now());
    aw_err_clear();
    return 0;
}

Test(reuseport, the_listener_manager_listens_on_the_reserved_port) {
    int fds = aw_test_fds();
    aw_reuseport_t rp;
    cr_assert_eq(aw_reuseport_open(&rp, NULL, 0, 16), 0);
    aw_test_run(two_listeners, &rp, 0);
    aw_reuseport_close(&rp);
    aw_test_run(closed_reservation, &rp, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* ---- a stop while clients are mid-request (loopsx probes) ---- */

static struct {
    atomic_int entered, left, remote_ran, remote_left;
    atomic_int rc_cancel, rc_shutdown, rc_other;
} mid;

static int remote_wait(void *arg) {
    (void)arg;
    atomic_fetch_add(&mid.remote_ran, 1);
    int rc = aw_sleep_until(AW_NEVER);
    atomic_fetch_add(&mid.remote_left, 1);
    return rc;
}

/* Reads half a request, then waits on the other loop for the rest of
 * its work (a cross-loop call) when the stop lands. */
static int half_request(aw_stream_t *s, void *arg) {
    (void)arg;
    atomic_fetch_add(&mid.entered, 1);
    char c;
    ssize_t n = aw_stream_read(s, &c, 1);
    if (n == 1) {
        int rc = aw_loops_call((aw_loops_index() + 1) % aw_loops_count(), remote_wait, NULL, NULL);
        if (rc == -ECANCELED)
            atomic_fetch_add(&mid.rc_cancel, 1);
        else if (rc == -ESHUTDOWN)
            atomic_fetch_add(&mid.rc_shutdown, 1);
        else
            atomic_fetch_add(&mid.rc_other, 1);
    }
    atomic_fetch_add(&mid.left, 1);
    return aw_status();
}

static int serve_half(void *arg, int index) {
    (void)index;
    aw_with (aw_server_t *srv, aw_reuseport_server(arg, half_request, NULL)) {
        atomic_fetch_add(&seen.ready, 1);
        aw_sleep_until(AW_NEVER);
    }
    return aw_status();
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -errno;
    }
    return fd;
}

enum { MID = 24 };

Test(reuseport, L1_a_stop_mid_request_closes_every_connection_once_on_every_loop) {
    memset(&seen, 0, sizeof seen);
    memset(&mid, 0, sizeof mid);
    int fds = aw_test_fds();
    aw_reuseport_t rp;
    cr_assert_eq(aw_reuseport_open(&rp, "127.0.0.1", 0, 0), 0);
    aw_loops_t *ls;
    cr_assert_eq(aw_loops_start(&ls, 2, serve_half, &rp, NULL), 0);
    while (atomic_load(&seen.ready) < 2)
        usleep(1000);
    int cfd[MID];
    for (int i = 0; i < MID; i++) {
        cfd[i] = connect_to(rp.port);
        cr_assert_geq(cfd[i], 0, "client %d: %d", i, cfd[i]);
        cr_assert_eq(write(cfd[i], "x", 1), 1);
    }
    while (atomic_load(&mid.remote_ran) < MID)
        usleep(1000);
    aw_loops_stop(ls);
    cr_assert_eq(aw_loops_join(ls), 0);
    aw_reuseport_close(&rp);
    cr_assert_eq(atomic_load(&mid.entered), MID);
    cr_assert_eq(atomic_load(&mid.left), MID);
    cr_assert_eq(atomic_load(&mid.remote_left), MID, "every remote call's task ended");
    cr_assert_eq(atomic_load(&mid.rc_other), 0);
    cr_assert_eq(atomic_load(&mid.rc_cancel) + atomic_load(&mid.rc_shutdown), MID);
    for (int i = 0; i < MID; i++) {
        char c;
        ssize_t n = read(cfd[i], &c, 1);
        cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "client %d: read %zd", i, n);
        close(cfd[i]);
    }
    cr_assert_eq(aw_test_fds(), fds);
}

/* The same, ended by Ctrl-C: a set started with cancel_on_signals. */
Test(reuseport, L1_ctrl_c_mid_request_closes_every_connection_once) {
    memset(&seen, 0, sizeof seen);
    memset(&mid, 0, sizeof mid);
    int fds = aw_test_fds();
    aw_reuseport_t rp;
    cr_assert_eq(aw_reuseport_open(&rp, "127.0.0.1", 0, 0), 0);
    aw_loops_t *ls;
    aw_loops_opts_t o = {.loop = {.cancel_on_signals = true}};
    cr_assert_eq(aw_loops_start(&ls, 2, serve_half, &rp, &o), 0);
    while (atomic_load(&seen.ready) < 2)
        usleep(1000);
    int cfd[MID];
    for (int i = 0; i < MID; i++) {
        cfd[i] = connect_to(rp.port);
        cr_assert_geq(cfd[i], 0, "client %d: %d", i, cfd[i]);
        cr_assert_eq(write(cfd[i], "x", 1), 1);
    }
    while (atomic_load(&mid.remote_ran) < MID)
        usleep(1000);
    kill(getpid(), SIGINT);
    cr_assert_eq(aw_loops_join(ls), -ECANCELED);
    aw_reuseport_close(&rp);
    cr_assert_eq(atomic_load(&mid.left), MID);
    cr_assert_eq(atomic_load(&mid.remote_left), MID);
    cr_assert_eq(atomic_load(&mid.rc_other), 0);
    for (int i = 0; i < MID; i++) {
        char c;
        ssize_t n = read(cfd[i], &c, 1);
        cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "client %d: read %zd", i, n);
        close(cfd[i]);
    }
    cr_assert_eq(aw_test_fds(), fds);
}
