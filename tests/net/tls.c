/* tests for src/net/tls.c: TLS client and server streams over TCP on
 * 127.0.0.1, with a CA and certificates each test generates with
 * openssl(1) into its own temporary directory: a good chain (with ALPN and
 * host-name verification), a wrong host name, a self-signed and an expired
 * certificate (each a clear error), the explicit opt-out, half-close. */
#include "netutil.h"

#include <awith/tls.h>
#include <awith/trace.h>
#include <stdarg.h>
#include <stdlib.h>

static char dir[64];
static int fds0;

static char *p(const char *name) {
    static char buf[8][128];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void sh(const char *fmt, ...) {
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[1200];
    snprintf(full, sizeof full, "cd '%s' && (%s) >log 2>&1", dir, cmd);
    cr_assert_eq(system(full), 0, "failed: %s", cmd);
}

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

static void setup(void) {
    aw_test_mkdtemp(dir, sizeof dir, "tls");
    sh("openssl req -x509 " EC " -keyout ca.key -out ca.pem -days 2 -subj '/CN=awith test CA'");
    sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext");
    sh("openssl req " EC " -keyout srv.key -out srv.csr -subj /CN=localhost");
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext");
    sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out exp.pem -days -1 -extfile ext");
    sh("openssl req -x509 " EC " -keyout self.key -out self.pem -days 2 -subj /CN=localhost "
       "-addext subjectAltName=DNS:localhost");
    fds0 = aw_test_fds();
}

static void teardown(void) {
    cr_assert_eq(aw_test_fds(), fds0, "file descriptors leaked");
    aw_test_rmtree(dir);
}

TestSuite(tls, .init = setup, .fini = teardown);

typedef struct {
    const char *cert, *key;
    const char *client_ca, *server_name, *client_alpn;
    const char *host;      /* to connect to; NULL: "localhost" */
    bool insecure;
    int expect;            /* the client's connect result */
    const char *msg;       /* ... and a piece of its message */
    char server_alpn[32];
    char server_sni[64];   /* what the server saw: "(none)" if no SNI */
    char client_sni[64];   /* what the client sent, the same way */
} case_t;

static aw_tls_ctx_t sctx;

static int tls_echo(aw_stream_t *s, void *arg) {
    case_t *c = arg;
    int rc = aw_tls_accept(s, &sctx);
    if (rc < 0)
        return rc;
    snprintf(c->server_alpn, sizeof c->server_alpn, "%s", aw_tls_alpn(s));
    const char *sni = aw_tls_server_name(s);
    snprintf(c->server_sni, sizeof c->server_sni, "%s", sni ? sni : "(none)");
    char line[128];
    ssize_t n;
    while ((n = aw_stream_read_line(s, line, sizeof line)) > 0)
        if ((rc = aw_stream_write(s, line, (size_t)n)) < 0)
            return rc;
    if (n == 0) /* the client half-closed: answer once more */
        return aw_stream_write(s, "bye\n", 4);
    return (int)n;
}

static int run_case(void *arg) {
    case_t *c = arg;
    aw_tls_opts_t so = {.cert_file = p(c->cert), .key_file = p(c->key), .alpn = "h2,http/1.1"};
    cr_assert_eq(aw_tls_ctx_init(&sctx, &so, true), 0, "%s", msg_now());
    aw_tls_opts_t co = {.ca_file = c->client_ca ? p(c->client_ca) : NULL,
                        .server_name = c->server_name,
                        .alpn = c->client_alpn,
                        .insecure_no_verify = c->insecure};
    aw_tls_ctx_t cctx;
    cr_assert_eq(aw_tls_ctx_init(&cctx, &co, false), 0, "%s", msg_now());
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, tls_echo, c)) {
        aw_stream_t s;
        int rc = aw_tls_connect(&s, &cctx, c->host ? c->host : "localhost", aw_listener_port(l));
        cr_assert_eq(rc, c->expect, "rc %d: %s", rc, msg_now());
        if (rc < 0) {
            cr_assert(msg_has(c->msg), "'%s' not in '%s'", c->msg, msg_now());
            aw_err_clear();
            cr_assert_eq(s.fd, -1, "a failed connect leaves nothing open");
            wait_until(srv->failed == 1);
            cr_assert(strstr(srv->last_error, "TLS handshake with 127.0.0.1:"), "server: %s",
                      srv->last_error);
        } else {
            char buf[64];
            cr_assert_eq(aw_stream_write(&s, "secret\n", 7), 0);
            cr_assert_eq(aw_stream_read_line(&s, buf, sizeof buf), 7);
            cr_assert_eq(memcmp(buf, "secret\n", 7), 0);
            const char *sni = aw_tls_server_name(&s);
            snprintf(c->client_sni, sizeof c->client_sni, "%s", sni ? sni : "(none)");
            if (c->client_alpn) {
                cr_assert_str_eq(aw_tls_alpn(&s), "http/1.1");
                cr_assert_str_eq(c->server_alpn, "http/1.1");
            }
            /* half-close: close_notify + FIN; the server still answers */
            cr_assert_eq(aw_stream_shutdown(&s), 0);
            cr_assert_eq(aw_stream_read_line(&s, buf, sizeof buf), 4, "%s", msg_now());
            cr_assert_eq(memcmp(buf, "bye\n", 4), 0);
            cr_assert_eq(aw_stream_read(&s, buf, sizeof buf), 0);
            aw_stream_close(&s);
            wait_until(srv->active == 0);
            cr_assert_eq(srv->failed, 0, "server: %s", srv->last_error);
        }
    }
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return aw_status();
}

Test(tls, verified_exchange_alpn_half_close) {
    case_t c = {.cert = "srv.pem", .key = "srv.key", .client_ca = "ca.pem", .client_alpn = "http/1.1"};
    aw_test_run(run_case, &c, 0);
}

/* SNI (RFC 6066): a client connecting by name sends it and the server
 * sees it; by IP address (the certificate names 127.0.0.1 too, so the
 * connect verifies) it sends none; opts.server_name overrides the host. */
Test(tls, sni_reaches_the_server) {
    case_t c = {.cert = "srv.pem", .key = "srv.key", .client_ca = "ca.pem"};
    aw_test_run(run_case, &c, 0);
    cr_assert_str_eq(c.server_sni, "localhost");
    cr_assert_str_eq(c.client_sni, "localhost");
}

Test(tls, no_sni_for_an_ip_address) {
    case_t c = {.cert = "srv.pem", .key = "srv.key", .client_ca = "ca.pem", .host = "127.0.0.1"};
    aw_test_run(run_case, &c, 0);
    cr_assert_str_eq(c.server_sni, "(none)");
    cr_assert_str_eq(c.client_sni, "(none)");
}

Test(tls, sni_from_opts_server_name) {
    case_t c = {.cert = "srv.pem", .key = "srv.key", .client_ca = "ca.pem", .host = "127.0.0.1",
                .server_name = "localhost"};
    aw_test_run(run_case, &c, 0);
    cr_assert_str_eq(c.server_sni, "localhost");
}

/* A name whose identity cannot be checked (an IPv6 address with a zone)
 * fails the connect: verifying the chain alone would accept any
 * certificate the CA signed. */
Test(tls, unverifiable_name_is_refused) {
    case_t c = {.cert = "srv.pem", .key = "srv.key", .client_ca = "ca.pem",
                .server_name = "fe80::1%lo", .expect = -EINVAL,
                .msg = "cannot verify the name \"fe80::1%lo\""};
    aw_test_run(run_case, &c, 0);
}

Test(tls, wrong_host_name) {
    case_t c = {.cert = "srv.pem", .key = "srv.key", .client_ca = "ca.pem",
                .server_name = "not-localhost.test", .expect = -EKEYREJECTED,
                .msg = "certificate verify failed: hostname mismatch"};
    aw_test_run(run_case, &c, 0);
}

Test(tls, self_signed) {
    case_t c = {.cert = "self.pem", .key = "self.key", .client_ca = "ca.pem", .expect = -EKEYREJECTED,
                .msg = "certificate verify failed: self-signed certificate"};
    aw_test_run(run_case, &c, 0);
}

Test(tls, expired) {
    case_t c = {.cert = "exp.pem", .key = "srv.key", .client_ca = "ca.pem", .expect = -EKEYREJECTED,
                .msg = "certificate verify failed: certificate has expired"};
    aw_test_run(run_case, &c, 0);
}

Test(tls, system_store_rejects_test_ca) {
    case_t c = {.cert = "srv.pem", .key = "srv.key", .expect = -EKEYREJECTED,
                .msg = "certificate verify failed: unable to get local issuer certificate"};
    aw_test_run(run_case, &c, 0);
}

Test(tls, insecure_no_verify_is_explicit) {
    case_t c = {.cert = "self.pem", .key = "self.key", .insecure = true};
    aw_test_run(run_case, &c, 0);
}

static int t_bad_files(void *arg) {
    aw_tls_ctx_t c;
    aw_tls_opts_t o = {.cert_file = p("missing.pem"), .key_file = p("srv.key")};
    cr_assert_eq(aw_tls_ctx_init(&c, &o, true), -ENOENT);
    cr_assert(msg_has("TLS: cannot load ") && msg_has("missing.pem"), "%s", msg_now());
    aw_err_clear();
    o = (aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("self.key")};
    cr_assert_eq(aw_tls_ctx_init(&c, &o, true), -EPROTO);
    cr_assert(msg_has("self.key"), "%s", msg_now());
    aw_err_clear();
    return 0;
}
Test(tls, bad_certificate_files) { aw_test_run(t_bad_files, NULL, 0); }

/* ---- graceful close: close_notify within the exit's grace ----
 *
 * The peer is plain blocking OpenSSL in a forked process. The client fills
 * its socket while the peer does not read, then leaves the block; the
 * peer starts reading only then. (Whether close_notify's own send finds
 * the socket full is up to the kernel: TCP appends small writes to its
 * last unsent segment past SO_SNDBUF, so over TCP these tests check the
 * outcome: delivered, or released within grace. The Unix socket pair
 * tests further down force the wait.) */

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>

typedef struct {
    int lfd, port;     /* the peer's listening socket */
    int cmd[2];        /* pipe: the client tells the peer how much to read */
    pid_t pid;
} peer_t;

/* The forked peer: accept, handshake, wait for the byte count on the pipe
 * (a peer that never reads gets none), read that much, then expect the
 * client's close_notify: SSL_read returns 0 with SSL_ERROR_ZERO_RETURN.
 * Exit status 0 when it came; 2-6 say what went wrong. It issues no TLS
 * 1.3 session tickets: a ticket still in flight when the client closes
 * arrives after close(2) and draws a reset that would drop close_notify
 * (TCP's rule, not the close path's; the close path discards what has
 * already arrived). */
static void peer_read_all(SSL *ssl, int cmd) __attribute__((noreturn));

static void peer_main(peer_t *pe) {
    close(pe->cmd[1]);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, p("srv.pem")) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, p("srv.key"), SSL_FILETYPE_PEM) != 1)
        _exit(2);
    SSL_CTX_set_num_tickets(ctx, 0); /* nothing for the client to leave unread */
    int fd = accept(pe->lfd, NULL, NULL);
    SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1)
        _exit(3);
    peer_read_all(ssl, pe->cmd[0]);
}

/* The peer over a Unix socket pair: the TLS client this time. */
static void pair_peer_main(int fd, int cmd) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
        _exit(3);
    peer_read_all(ssl, cmd);
}

static void peer_read_all(SSL *ssl, int cmd) {
    unsigned long long want = 0;
    if (read(cmd, &want, sizeof want) != (ssize_t)sizeof want)
        _exit(4);
    usleep(50 * 1000); /* let the client try close_notify on the full socket first */
    char buf[16384];
    unsigned long long got = 0;
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
        got += (unsigned long long)n;
    if (got != want) {
        fprintf(stderr, "peer: read %llu of %llu bytes, then %d (SSL error %d)\n", got, want, n,
                SSL_get_error(ssl, n));
        _exit(5);
    }
    _exit(SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : 6);
}

static void peer_start(peer_t *pe) {
    pe->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert(pe->lfd >= 0 && bind(pe->lfd, (struct sockaddr *)&a, sizeof a) == 0 &&
              listen(pe->lfd, 4) == 0 && getsockname(pe->lfd, (struct sockaddr *)&a, &al) == 0);
    pe->port = ntohs(a.sin_port);
    cr_assert_eq(pipe2(pe->cmd, O_CLOEXEC), 0);
    pe->pid = fork();
    cr_assert(pe->pid >= 0);
    if (pe->pid == 0)
        peer_main(pe);
    close(pe->lfd);
    close(pe->cmd[0]);
}

/* Wait for the peer's exit (killing it first if asked); its status. */
static int peer_end(peer_t *pe, bool kill_it) {
    if (kill_it)
        kill(pe->pid, SIGKILL);
    close(pe->cmd[1]);
    int st = 0;
    pid_t r;
    while ((r = waitpid(pe->pid, &st, WNOHANG)) == 0)
        cr_assert_eq(aw_sleep(AW_MS(1)), 0);
    cr_assert_eq(r, pe->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Write 1 KiB records while the socket is writable (the peer is not
 * reading). Returns the bytes written. */
static unsigned long long fill(aw_stream_t *s) {
    static char kib[1024];
    unsigned long long total = 0;
    struct pollfd pf = {.fd = s->fd, .events = POLLOUT};
    do {
        while (poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT)) {
            cr_assert_eq(aw_stream_write(s, kib, sizeof kib), 0, "%s", msg_now());
            total += sizeof kib;
        }
        aw_sleep(AW_MS(5)); /* loopback moves data to the peer's queue: look again */
    } while (poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT));
    cr_assert_eq(net_outq(s->fd) > 8192, true, "queued %d", net_outq(s->fd));
    return total;
}

static aw_tls_ctx_t *client_ctx(aw_tls_ctx_t *c) {
    aw_tls_opts_t o = {.ca_file = p("ca.pem")};
    cr_assert_eq(aw_tls_ctx_init(c, &o, false), 0, "%s", msg_now());
    return c;
}

static int t_close_notify_after_exit(void *arg) {
    (void)arg;
    peer_t pe;
    peer_start(&pe);
    aw_tls_ctx_t cctx;
    aw_with (aw_stream_t *s, aw_tls_client(client_ctx(&cctx), "localhost", pe.port)) {
        unsigned long long total = fill(s);
        /* the peer starts reading only now: close_notify waits for it */
        cr_assert_eq(write(pe.cmd[1], &total, sizeof total), (ssize_t)sizeof total);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    int st = peer_end(&pe, false);
    cr_assert_eq(st, 0, "the peer did not read everything then close_notify (status %d)", st);
    aw_tls_ctx_free(&cctx);
    return 0;
}
Test(tls, close_notify_reaches_peer_after_with_exit) { aw_test_run(t_close_notify_after_exit, NULL, 0); }

static int t_close_peer_never_reads(void *arg) {
    (void)arg;
    peer_t pe;
    peer_start(&pe);
    aw_tls_ctx_t cctx;
    aw_cm_type_t short_grace = aw_tls_client_type;
    short_grace.grace = AW_MS(100);
    aw_tls_client_t st = {.ctx = client_ctx(&cctx), .host = "localhost", .port = pe.port};
    aw_with (aw_stream_t *s, aw_cm(&short_grace, &st))
        fill(s);
    cr_assert_eq(st.stream.fd, -1, "the exit released the socket");
    const aw_err_t *e = aw_err_current();
    cr_assert(!e || e->code == -ECANCELED, "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(peer_end(&pe, true), -1);
    aw_tls_ctx_free(&cctx);
    return 0;
}
Test(tls, close_releases_within_grace_when_peer_never_reads) {
    aw_test_run(t_close_peer_never_reads, NULL, 0);
}

/* The explicit close: bounded by the caller's deadline instead. */
static int t_explicit_close_deadline(void *arg) {
    (void)arg;
    peer_t pe;
    peer_start(&pe);
    aw_tls_ctx_t cctx;
    aw_stream_t s;
    cr_assert_eq(aw_tls_connect(&s, client_ctx(&cctx), "localhost", pe.port), 0, "%s", msg_now());
    fill(&s);
    int rc = 0;
    aw_with (aw_scope_t *sc, aw_fail_after(AW_MS(100)))
        rc = aw_stream_close(&s);
    cr_assert_eq(rc, 0);
    cr_assert_eq(s.fd, -1, "close released the socket");
    aw_err_clear();
    cr_assert_eq(peer_end(&pe, true), -1);
    aw_tls_ctx_free(&cctx);
    return 0;
}
Test(tls, explicit_close_bounded_by_fail_after) { aw_test_run(t_explicit_close_deadline, NULL, 0); }

/* Over a Unix socket pair (awith is the TLS server here) the kernel is
 * strict: a send that finds the queue above SO_SNDBUF fails with EAGAIN,
 * whatever its size. Shrinking SO_SNDBUF below what is queued makes the
 * socket refuse close_notify until the peer drains: the close MUST wait. */
typedef struct {
    aw_stream_t s;
    int cmd;           /* write end of the peer's pipe */
    pid_t pid;
} pair_t;

static void pair_start(pair_t *pr) {
    int sv[2], cmd[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(pipe2(cmd, O_CLOEXEC), 0);
    pr->pid = fork();
    cr_assert(pr->pid >= 0);
    if (pr->pid == 0) {
        close(sv[0]);
        close(cmd[1]);
        pair_peer_main(sv[1], cmd[0]);
    }
    close(sv[1]);
    close(cmd[0]);
    pr->cmd = cmd[1];
    aw_stream_init(&pr->s, sv[0], "pair");
    aw_tls_opts_t so = {.cert_file = p("srv.pem"), .key_file = p("srv.key")};
    cr_assert_eq(aw_tls_ctx_init(&sctx, &so, true), 0, "%s", msg_now());
    cr_assert_eq(aw_tls_accept(&pr->s, &sctx), 0, "%s", msg_now());
}

static unsigned long long pair_fill(aw_stream_t *s) {
    static char kib[1024];
    unsigned long long total = 0;
    struct pollfd pf = {.fd = s->fd, .events = POLLOUT};
    while (poll(&pf, 1, 0) == 1 && (pf.revents & POLLOUT)) {
        cr_assert_eq(aw_stream_write(s, kib, sizeof kib), 0, "%s", msg_now());
        total += sizeof kib;
    }
    int one = 1;
    cr_assert_eq(setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof one), 0);
    cr_assert_eq(send(s->fd, "", 1, MSG_DONTWAIT), -1, "the socket must refuse any send now");
    cr_assert_eq(errno, EAGAIN);
    return total;
}

static int pair_end(pair_t *pr, bool kill_it) {
    peer_t pe = {.cmd = {-1, pr->cmd}, .pid = pr->pid};
    return peer_end(&pe, kill_it);
}

static int t_pair_close_waits(void *arg) {
    (void)arg;
    pair_t pr;
    pair_start(&pr);
    aw_with (aw_stream_t *s, aw_cm(&aw_stream_closing_type, &pr.s)) {
        unsigned long long total = pair_fill(s);
        cr_assert_eq(write(pr.cmd, &total, sizeof total), (ssize_t)sizeof total);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(pr.s.fd, -1);
    int st = pair_end(&pr, false);
    cr_assert_eq(st, 0, "the peer did not read everything then close_notify (status %d)", st);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, close_waits_for_full_socket_then_sends_close_notify) {
    aw_test_run(t_pair_close_waits, NULL, 0);
}

static int t_pair_close_grace(void *arg) {
    (void)arg;
    pair_t pr;
    pair_start(&pr);
    aw_cm_type_t short_grace = aw_stream_closing_type;
    short_grace.grace = AW_MS(100);
    aw_with (aw_stream_t *s, aw_cm(&short_grace, &pr.s))
        pair_fill(s); /* the peer never reads */
    cr_assert_eq(pr.s.fd, -1, "the exit released the socket when its grace ran out");
    /* the runtime reports the overrun; the socket is released all the same */
    cr_assert(msg_has("overran its grace period of 100 ms"), "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(pair_end(&pr, true), -1);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, close_gives_up_when_grace_runs_out_on_full_socket) {
    aw_test_run(t_pair_close_grace, NULL, 0);
}

static int t_pair_close_deadline(void *arg) {
    (void)arg;
    pair_t pr;
    pair_start(&pr);
    pair_fill(&pr.s);
    int rc = -1;
    aw_with (aw_scope_t *sc, aw_move_on_after(AW_MS(100)))
        rc = aw_stream_close(&pr.s);
    cr_assert_eq(rc, 0);
    cr_assert_eq(pr.s.fd, -1, "close released the socket at the deadline");
    cr_assert_eq(pair_end(&pr, true), -1);
    aw_tls_ctx_free(&sctx);
    return aw_status();
}
Test(tls, explicit_close_on_full_socket_bounded_by_deadline) {
    aw_test_run(t_pair_close_deadline, NULL, 0);
}

/* K2, J8 over TLS: a write cut while OpenSSL holds a record of it half
 * sent (SSL_write said WANT_WRITE: the record is built from this call's
 * bytes and must be finished by the next SSL_write) has consumed bytes,
 * even though it reports none sent. The stream must then be broken;
 * left usable, the next write finishes the old record (the cut write's
 * bytes reach the peer) and counts it as the new one's: the peer reads
 * bytes of a write that failed and misses bytes of one that succeeded. */
static volatile int k2_reading, k2_done;
static size_t k2_a, k2_b;

static int k2_server(aw_stream_t *s, void *arg) {
    (void)arg;
    if (aw_tls_accept(s, &sctx) < 0)
        return aw_status();
    while (!k2_reading)
        aw_sleep(AW_MS(5));
    char buf[65536];
    ssize_t n;
    while ((n = aw_stream_read(s, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            k2_a += buf[i] == 'A', k2_b += buf[i] == 'B';
    aw_err_clear();
    k2_done = 1;
    return 0;
}

static int t_k2_tls_write_cut(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    aw_tls_ctx_t cctx;
    cr_assert_eq(aw_tls_ctx_init(&cctx, &(aw_tls_opts_t){.ca_file = p("ca.pem")}, false), 0, "%s", msg_now());
    static char a[16384], b[100000];
    memset(a, 'A', sizeof a);
    memset(b, 'B', sizeof b);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, k2_server, NULL)) {
        aw_stream_t s;
        cr_assert_eq(aw_tls_connect(&s, &cctx, "localhost", aw_listener_port(l)), 0, "%s", msg_now());
        int small = 4096;
        setsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        size_t sent_a = 0;
        int rc = 0;
        for (int i = 0; i < 1000 && rc == 0; i++) {
            aw_with (aw_move_on_after(AW_MS(30)))
                rc = aw_stream_write(&s, a, sizeof a);
            if (rc == 0)
                sent_a += sizeof a;
        }
        cr_assert_eq(rc, -ECANCELED, "a write was cut");
        aw_err_clear();
        k2_reading = 1;
        rc = aw_stream_write(&s, b, sizeof b);
        if (rc == 0) {
            /* not broken: then the peer must get exactly what succeeded */
            aw_stream_shutdown(&s);
            wait_until(k2_done);
            cr_assert_eq(k2_b, sizeof b, "every byte of the write that succeeded arrives");
            cr_assert_eq(k2_a, sent_a, "no byte of the write that failed arrives (%zu extra)", k2_a - sent_a);
        } else {
            cr_assert_eq(rc, -ENOTRECOVERABLE, "rc %d: %s", rc, msg_now());
            cr_assert(msg_has("TLS record"), "%s", msg_now());
            aw_err_clear();
        }
        aw_stream_close(&s);
        wait_until(srv->active == 0);
    }
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return aw_status();
}
Test(tls, K2_write_cut_with_a_record_half_sent_breaks_the_stream) {
    aw_test_run(t_k2_tls_write_cut, NULL, 0);
}

/* ---- full duplex: one task writes while another reads, on one TLS
 * stream. The server echoes in chunks; 8 MiB are more than both kernel
 * buffers hold, so the writer finishes only if the reader runs beside it
 * (one reader and one writer at a time is the stream's rule). ---- */
enum { DUPLEX_N = 8 << 20 };
static int duplex_echo(aw_stream_t *s, void *arg) {
    (void)arg;
    int rc = aw_tls_accept(s, &sctx);
    if (rc < 0)
        return rc;
    char buf[16384];
    ssize_t n;
    while ((n = aw_stream_read(s, buf, sizeof buf)) > 0)
        if ((rc = aw_stream_write(s, buf, (size_t)n)) < 0)
            return rc;
    return (int)n;
}
static aw_stream_t duplex_s;
static int duplex_writer(void *arg) {
    unsigned char *out = arg;
    for (size_t i = 0; i < DUPLEX_N; i++)
        out[i] = (unsigned char)(i * 7 + i / 251);
    int rc = aw_stream_write(&duplex_s, out, DUPLEX_N);
    if (rc == 0)
        rc = aw_stream_shutdown(&duplex_s);
    return rc;
}
static int t_duplex(void *arg) {
    (void)arg;
    aw_tls_opts_t so = {.cert_file = p("srv.pem"), .key_file = p("srv.key")};
    cr_assert_eq(aw_tls_ctx_init(&sctx, &so, true), 0, "%s", msg_now());
    aw_tls_opts_t co = {.ca_file = p("ca.pem")};
    aw_tls_ctx_t cctx;
    cr_assert_eq(aw_tls_ctx_init(&cctx, &co, false), 0, "%s", msg_now());
    unsigned char *out = malloc(DUPLEX_N), *in = malloc(DUPLEX_N);
    size_t got = 0;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server(l, duplex_echo, NULL)) {
        cr_assert_eq(aw_tls_connect(&duplex_s, &cctx, "localhost", aw_listener_port(l)), 0, "%s",
                     msg_now());
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, duplex_writer, out, NULL);
            ssize_t n;
            while (got < DUPLEX_N && (n = aw_stream_read(&duplex_s, in + got, DUPLEX_N - got)) > 0)
                got += (size_t)n;
        }
        aw_stream_close(&duplex_s);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(got, (size_t)DUPLEX_N);
    cr_assert_eq(memcmp(in, out, DUPLEX_N), 0, "the echo is the bytes written, in order");
    free(out);
    free(in);
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, a_reader_task_and_a_writer_task_share_one_stream) { aw_test_run(t_duplex, NULL, 0); }

/* G1 on a TLS service: a client that connects and never starts the
 * handshake, and one that sends garbage, fail their own requests (the
 * handshake's deadline, -EPROTO), counted; the next client is served. */
static int hs_exits;
static int tls_deadline_echo(aw_stream_t *s, void *arg) {
    aw_with (aw_fail_after(AW_MS(50))) {
        if (aw_tls_accept(s, &sctx) < 0)
            aw_leave();
        char line[64];
        ssize_t n = aw_stream_read_line(s, line, sizeof line);
        if (n > 0)
            aw_stream_write(s, line, (size_t)n);
    }
    hs_exits++;
    return aw_status();
}
static int t_tls_slow(void *arg) {
    aw_tls_opts_t so = {.cert_file = p("srv.pem"), .key_file = p("srv.key")};
    cr_assert_eq(aw_tls_ctx_init(&sctx, &so, true), 0, "%s", msg_now());
    aw_tls_ctx_t cctx;
    cr_assert_eq(aw_tls_ctx_init(&cctx, &(aw_tls_opts_t){.ca_file = p("ca.pem")}, false), 0);
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, tls_deadline_echo, NULL)) {
        aw_with (aw_stream_t *mute, aw_tcp_client("127.0.0.1", aw_listener_port(l)))
        aw_with (aw_stream_t *junk, aw_tcp_client("127.0.0.1", aw_listener_port(l))) {
            aw_stream_write(junk, "GET / HTTP/1.0\r\n\r\n", 18);
            wait_until(srv->accepted == 2 && srv->active == 0);
        }
        cr_assert_eq(srv->failed, 2, "%zu: %s", srv->failed, srv->last_error);
        aw_with (aw_stream_t *s, aw_tls_client(&cctx, "localhost", aw_listener_port(l))) {
            char buf[16];
            cr_assert_eq(aw_stream_write(s, "hi\n", 3), 0);
            cr_assert_eq(aw_stream_read_line(s, buf, sizeof buf), 3, "%s", msg_now());
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        wait_until(srv->active == 0);
        cr_assert_eq(srv->failed, 2, "%s", srv->last_error);
    }
    cr_assert_eq(hs_exits, 3);
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return aw_status();
}
Test(tls, G1_a_mute_and_a_garbage_client_fail_only_their_handshakes) {
    fds0 = aw_test_fds();
    aw_test_run(t_tls_slow, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* stream.h: "Closing is always allowed: the suspended operations then
 * fail with -EBADF", also for the TLS layer, whose state the close frees.
 * A reader woken by its data but not run yet when another task closes
 * the stream resumes after the close: it must fail with -EBADF, not go
 * on into the freed SSL state. The closer waits on a pipe written just
 * before the data, so that one poll wakes it first and the reader
 * second: the close runs between the reader's wake and its run. */
static aw_stream_t race_s, race_peer;
static int race_pipe[2];
static ssize_t race_read;
static int race_closer(void *arg) {
    (void)arg;
    cr_assert_eq(aw_fd_wait(race_pipe[0], AW_READ), 0);
    cr_assert_eq(aw_stream_close(&race_s), 0);
    return aw_status();
}
static int race_reader(void *arg) {
    (void)arg;
    char buf[16];
    race_read = aw_stream_read(&race_s, buf, sizeof buf);
    if (race_read == -EBADF)
        aw_err_clear();
    return 0;
}
static int race_accept(void *arg) {
    aw_listener_t *l = arg;
    if (aw_listener_accept(l, &race_peer) < 0)
        return aw_status();
    return aw_tls_accept(&race_peer, &sctx);
}
static int t_close_woken_reader(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    aw_tls_ctx_t cctx;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, race_accept, l, NULL);
        cr_assert_eq(aw_tls_connect(&race_s, client_ctx(&cctx), "localhost", aw_listener_port(l)), 0,
                     "%s", msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(pipe2(race_pipe, O_NONBLOCK | O_CLOEXEC), 0);
    race_read = 1;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, race_closer, NULL, NULL);
        aw_spawn(g, race_reader, NULL, NULL);
        aw_sleep(AW_MS(10)); /* both wait: the closer on the pipe, the reader on the socket */
        cr_assert_eq(write(race_pipe[1], "c", 1), 1);
        cr_assert_eq(aw_stream_write(&race_peer, "data", 4), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(race_read, -EBADF, "the reader fails as the stream was closed (%zd)", race_read);
    cr_assert_eq(race_s.fd, -1);
    aw_stream_close(&race_peer);
    close(race_pipe[0]);
    close(race_pipe[1]);
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, stream_h_a_close_between_a_readers_wake_and_its_run_fails_the_read) {
    aw_test_run(t_close_woken_reader, NULL, 0);
}

/* stream.h: close is "always allowed", "idempotent" and "always
 * releases", so a second close while the first waits for room for
 * close_notify releases the stream at once and returns 0 with nothing
 * pending; the first then returns 0 too, touching nothing freed. */
static pair_t twice;
static int twice_rc = 1, twice_status = 1;
static int twice_first_close(void *arg) {
    (void)arg;
    twice_rc = aw_stream_close(&twice.s);
    twice_status = aw_status();
    aw_err_clear();
    return 0;
}
static int t_close_twice(void *arg) {
    (void)arg;
    pair_start(&twice);
    pair_fill(&twice.s);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, twice_first_close, NULL, NULL);
        aw_sleep(AW_MS(20));
        cr_assert_geq(twice.s.fd, 0, "the first close waits for room for close_notify");
        cr_assert_eq(aw_stream_close(&twice.s), 0);
        cr_assert_eq(twice.s.fd, -1, "the second close released the stream");
        cr_assert_eq(aw_status(), 0, "nothing pending after a close: %s", msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(twice_rc, 0);
    cr_assert_eq(twice_status, 0, "the first close returns with nothing pending");
    cr_assert_eq(pair_end(&twice, true), -1);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, stream_h_a_second_close_while_the_first_waits_releases_at_once) {
    aw_test_run(t_close_twice, NULL, 0);
}

/* Decision 2 (and server.h: the handler's stream "is closed when the
 * handler returns"): that close is the connection's exit, bounded by the
 * exit grace as a with-exit's is. A TLS handler that answers and returns
 * while its client reads nothing leaves close_notify no room: the close
 * must release the connection when the grace runs out, not hold the
 * handler (and its fd) for as long as the client stalls. Over a Unix
 * socket, where a full socket refuses close_notify (see pair_fill). */
static int answer_and_return(aw_stream_t *s, void *arg) {
    (void)arg;
    if (aw_tls_accept(s, &sctx) < 0)
        return aw_status();
    pair_fill(s); /* the client does not read: no room left for close_notify */
    return 0;
}
static int t_server_close_bounded(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    int cmd[2];
    cr_assert_eq(pipe2(cmd, O_CLOEXEC), 0);
    pid_t pid = -1;
    aw_with (aw_listener_t *l, aw_unix_listener(p("srv.sock"), NULL))
    aw_with (aw_server_t *srv, aw_server(l, answer_and_return, NULL)) {
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) { /* the client: connects, handshakes, never reads */
            close(cmd[1]);
            int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un a = {.sun_family = AF_UNIX};
            snprintf(a.sun_path, sizeof a.sun_path, "%s", p("srv.sock"));
            if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
                _exit(3);
            pair_peer_main(fd, cmd[0]);
        }
        wait_until(srv->accepted == 1 && srv->active == 0);
        cr_assert_eq(srv->failed, 1, "the close that overran its grace is reported");
        cr_assert(strstr(srv->last_error, "grace"), "%s", srv->last_error);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    close(cmd[0]);
    peer_t pe = {.cmd = {-1, cmd[1]}, .pid = pid};
    cr_assert_eq(peer_end(&pe, true), -1);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, decision2_a_handlers_close_is_bounded_by_the_exit_grace) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(200)};
    cr_assert_eq(aw_main_opts(&o, t_server_close_bounded, NULL), 0);
}

/* The same close when the server is left (its handlers cancelled): it
 * still gets the grace, and its overrun is the handler's failure,
 * counted as such (server.h), not a failure of the server's block. */
static int answer_and_wait(aw_stream_t *s, void *arg) {
    if (aw_tls_accept(s, &sctx) < 0)
        return aw_status();
    pair_fill(s);
    *(int *)arg = 1;
    return aw_sleep(AW_SEC(100));
}
static int t_server_left_stalled(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    int cmd[2];
    cr_assert_eq(pipe2(cmd, O_CLOEXEC), 0);
    pid_t pid = -1;
    int filled = 0;
    aw_with (aw_listener_t *l, aw_unix_listener(p("srv.sock"), NULL)) {
        aw_server_t st = {.listener = l, .fn = answer_and_wait, .arg = &filled}, *sv = &st;
        aw_with (aw_cm(&aw_server_type, &st)) { /* its counters are read after the block */
            pid = fork();
            cr_assert(pid >= 0);
            if (pid == 0) { /* the client: connects, handshakes, never reads */
                close(cmd[1]);
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                struct sockaddr_un a = {.sun_family = AF_UNIX};
                snprintf(a.sun_path, sizeof a.sun_path, "%s", p("srv.sock"));
                if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
                    _exit(3);
                pair_peer_main(fd, cmd[0]);
            }
            wait_until(filled);
        }
        cr_assert_eq(aw_status(), 0, "the server's block ends clean: %s", msg_now());
        cr_assert_eq(sv->active, 0);
        cr_assert_eq(sv->failed, 1, "the close over its grace is the handler's failure");
        cr_assert(strstr(sv->last_error, "grace"), "%s", sv->last_error);
    }
    close(cmd[0]);
    peer_t pe = {.cmd = {-1, cmd[1]}, .pid = pid};
    cr_assert_eq(peer_end(&pe, true), -1);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, server_h_leaving_the_server_counts_a_handlers_close_over_its_grace) {
    aw_loop_opts_t o = {.exit_grace = AW_MS(200)};
    cr_assert_eq(aw_main_opts(&o, t_server_left_stalled, NULL), 0);
}

/* STARTTLS (RFC 3207): a server reads the "STARTTLS" line, then runs the
 * handshake on the same stream. The read may take more than the line
 * into the stream's buffer: here the client sends its ClientHello right
 * behind the line. Those bytes are the handshake's first: aw_tls_accept
 * must read them (before, it waited for a ClientHello already read). And
 * what arrived in the clear must never read back as if it came through
 * TLS (CVE-2011-0411): a man in the middle that appends a command to the
 * client's STARTTLS makes the handshake fail, it never returns the
 * command as data. */
static char starttls_got[64];
static int starttls_handler(aw_stream_t *s, void *arg) {
    (void)arg;
    char line[64];
    ssize_t n = aw_stream_read_line(s, line, sizeof line);
    if (n != 9 || memcmp(line, "STARTTLS\n", 9) != 0)
        return aw_raise(-EPROTO, "expected STARTTLS");
    if (aw_tls_accept(s, &sctx) < 0)
        return aw_status();
    n = aw_stream_read_line(s, line, sizeof line);
    if (n > 0)
        snprintf(starttls_got, sizeof starttls_got, "%.*s", (int)n, line);
    return n < 0 ? (int)n : 0;
}
/* The forked client: the STARTTLS line (and what `extra` adds to it in
 * the same segment), at once its handshake, then "hello\n". Exits 0
 * once the server closed the TLS session, 5 if the handshake failed. */
static void starttls_client(int port, const char *extra) {
    signal(SIGPIPE, SIG_IGN); /* a refused handshake may close under its writes */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        _exit(3);
    char cmd[64];
    int len = snprintf(cmd, sizeof cmd, "STARTTLS\n%s", extra);
    if (write(fd, cmd, (size_t)len) != len)
        _exit(4);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
        _exit(5);
    SSL_write(ssl, "hello\n", 6);
    char c;
    _exit(SSL_read(ssl, &c, 1) == 0 ? 0 : 6);
}
static int t_starttls(void *arg) {
    const char *extra = arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    pid_t pid = -1;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL)) {
        aw_server_t st = {.listener = l, .fn = starttls_handler}, *srv = &st;
        aw_with (aw_cm(&aw_server_type, &st)) { /* its counters are read after the block */
            pid = fork();
            cr_assert(pid >= 0);
            if (pid == 0)
                starttls_client(aw_listener_port(l), extra);
            wait_until(srv->accepted == 1 && srv->active == 0);
        }
        if (!extra[0]) {
            cr_assert_eq(st.failed, 0, "%s", st.last_error);
            cr_assert_str_eq(starttls_got, "hello\n");
        } else {
            cr_assert_neq(strcmp(starttls_got, "INJECTED\n"), 0,
                          "bytes sent in the clear were read as if they came through TLS");
            cr_assert_eq(st.failed, 1, "the handshake fails on them");
            cr_assert(strstr(st.last_error, "TLS handshake with 127.0.0.1:"), "%s", st.last_error);
        }
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == (extra[0] ? 5 : 0), "client status %d", status);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, tls_h_a_handshake_reads_first_the_bytes_the_stream_read_ahead) {
    aw_test_run(t_starttls, "", 0);
}
Test(tls, tls_h_bytes_sent_in_the_clear_never_read_as_tls_data) {
    aw_test_run(t_starttls, "INJECTED\n", 0);
}

/* tls.h: "-EPROTO (other TLS failures, with OpenSSL's reason)", after the
 * handshake too: a record that fails its integrity check (here one
 * forged on the raw socket, as a middlebox that rewrites bytes would)
 * fails the read with OpenSSL's reason in the message, not a bare
 * "Protocol error"; the stream is broken, and says why. */
static aw_stream_t forge_c, forge_s;
static int forge_accept(void *arg) {
    aw_listener_t *l = arg;
    if (aw_listener_accept(l, &forge_s) < 0)
        return aw_status();
    return aw_tls_accept(&forge_s, &sctx);
}
static int t_forged_record(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    aw_tls_ctx_t cctx;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, forge_accept, l, NULL);
        cr_assert_eq(aw_tls_connect(&forge_c, client_ctx(&cctx), "localhost", aw_listener_port(l)), 0,
                     "%s", msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    /* an application-data record header and 32 bytes no key produced */
    static const char forged[] = "\x17\x03\x03\x00\x20" "0123456789abcdef0123456789abcdef";
    cr_assert_eq(send(forge_s.fd, forged, sizeof forged - 1, 0), (ssize_t)sizeof forged - 1);
    char buf[64];
    cr_assert_eq(aw_stream_read(&forge_c, buf, sizeof buf), -EPROTO);
    cr_assert(msg_has("read from 127.0.0.1:") && msg_has("bad record mac"), "%s", msg_now());
    aw_err_clear();
    cr_assert(aw_stream_broken(&forge_c));
    cr_assert_eq(aw_stream_read(&forge_c, buf, sizeof buf), -ENOTRECOVERABLE);
    cr_assert(msg_has("bad record mac"), "the broken stream says why: %s", msg_now());
    aw_err_clear();
    aw_stream_close(&forge_c);
    aw_stream_close(&forge_s);
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, tls_h_a_tls_error_after_the_handshake_gives_openssls_reason) {
    aw_test_run(t_forged_record, NULL, 0);
}

/* A cancel at each cancellation point of a TLS client's connect,
 * handshake, exchange and close, in turn (testutil.h's hook): every run
 * ends in success or -ECANCELED, and no fd is left, on either side. */
static aw_tls_ctx_t sweep_cctx;
typedef struct {
    int port, rc;
    bool done;
} sweep_t;
static int sweep_echo(aw_stream_t *s, void *arg) {
    (void)arg;
    if (aw_tls_accept(s, &sctx) < 0)
        return aw_status();
    char line[64];
    ssize_t n;
    while ((n = aw_stream_read_line(s, line, sizeof line)) > 0)
        if (aw_stream_write(s, line, (size_t)n) < 0)
            return aw_status();
    return (int)n;
}
static int sweep_client(void *arg) {
    sweep_t *x = arg;
    aw_with (aw_stream_t *s, aw_tls_client(&sweep_cctx, "localhost", x->port)) {
        char buf[16];
        if (aw_stream_write(s, "hello\n", 6) < 0 || aw_stream_read_line(s, buf, sizeof buf) != 6)
            aw_leave();
        cr_assert_eq(memcmp(buf, "hello\n", 6), 0);
    }
    x->rc = aw_status();
    x->done = x->rc == 0;
    return 0;
}
static int t_tls_cancel_points(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    client_ctx(&sweep_cctx);
    int completed_at = -1;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server_t *srv, aw_server(l, sweep_echo, NULL)) {
        cr_assert_eq(aw_trace_set(aw_test_cancel_hook, NULL), 0);
        for (int k = 0; k < 1000 && completed_at < 0; k++) {
            int before = aw_test_fds();
            sweep_t x = {.port = aw_listener_port(l)};
            aw_test_cancel_at.points = 0;
            aw_test_cancel_at.k = k;
            cr_assert_eq(aw_spawn(NULL, sweep_client, &x, &aw_test_cancel_at.target), 0);
            if (k == 0)
                aw_task_cancel(aw_test_cancel_at.target); /* before it first runs */
            cr_assert_eq(aw_task_join(aw_test_cancel_at.target), 0);
            aw_test_cancel_at.target = NULL;
            cr_assert(x.rc == 0 || x.rc == -ECANCELED, "k=%d: rc %d", k, x.rc);
            /* the server accepts in order: once a whole exchange is through,
             * every earlier connection was accepted; then their handlers end */
            sweep_t probe = {.port = x.port};
            sweep_client(&probe);
            cr_assert_eq(probe.rc, 0, "k=%d: %s", k, msg_now());
            wait_until(srv->active == 0);
            cr_assert_eq(aw_test_fds(), before, "k=%d: fd leaked", k);
            if (x.done)
                completed_at = k;
        }
        aw_trace_set(NULL, NULL);
        cr_assert_geq(completed_at, 4, "the exchange completed only after the handshake's points");
    }
    aw_tls_ctx_free(&sweep_cctx);
    aw_tls_ctx_free(&sctx);
    return aw_status();
}
Test(tls, M1_a_cancel_at_each_point_of_a_tls_exchange_leaves_no_fd) {
    aw_test_run(t_tls_cancel_points, NULL, 0);
}

/* stream.h: closing is always allowed and returns 0, and the operations
 * suspended on the stream fail with -EBADF. A close while another task
 * is suspended in a write (its record half sent, the peer not reading)
 * cannot send close_notify, which would have to follow that record: it
 * releases at once, with nothing left pending in the closing task (it
 * used to try to wait in the writer's direction and leave that -EBUSY). */
static aw_stream_t cw_c, cw_s;
static int cw_rc = 1;
static int cw_accept(void *arg) {
    aw_listener_t *l = arg;
    if (aw_listener_accept(l, &cw_s) < 0)
        return aw_status();
    return aw_tls_accept(&cw_s, &sctx);
}
static int cw_writer(void *arg) {
    (void)arg;
    static char chunk[1 << 16];
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) /* far more than the socket buffers hold */
        rc = aw_stream_write(&cw_c, chunk, sizeof chunk);
    cw_rc = rc;
    aw_err_clear();
    return 0;
}
static int t_close_under_writer(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    aw_tls_ctx_t cctx;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, cw_accept, l, NULL);
        cr_assert_eq(aw_tls_connect(&cw_c, client_ctx(&cctx), "localhost", aw_listener_port(l)), 0,
                     "%s", msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, cw_writer, NULL, NULL);
        wait_until(net_outq(cw_c.fd) > 65536); /* the writer waits for room */
        aw_sleep(AW_MS(10));
        cr_assert_eq(aw_stream_close(&cw_c), 0);
        cr_assert_eq(cw_c.fd, -1);
        cr_assert_eq(aw_status(), 0, "nothing pending after a close: %s", msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(cw_rc, -EBADF, "the suspended write fails with -EBADF");
    aw_stream_close(&cw_s);
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, stream_h_a_close_while_another_task_writes_leaves_nothing_pending) {
    aw_test_run(t_close_under_writer, NULL, 0);
}

/* aw_tls_accept on a stream that already runs TLS (a handler that
 * answers a second STARTTLS with a second handshake) is refused with
 * -EALREADY before anything changes: it used to put a second TLS state
 * over the first, leaking it, and run a handshake over the session's
 * records. The session goes on. */
static int t_tls_twice(void *arg) {
    (void)arg;
    cr_assert_eq(aw_tls_ctx_init(&sctx, &(aw_tls_opts_t){.cert_file = p("srv.pem"), .key_file = p("srv.key")}, true),
                 0, "%s", msg_now());
    aw_tls_ctx_t cctx;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, forge_accept, l, NULL);
        cr_assert_eq(aw_tls_connect(&forge_c, client_ctx(&cctx), "localhost", aw_listener_port(l)), 0,
                     "%s", msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(aw_tls_accept(&forge_s, &sctx), -EALREADY);
    cr_assert(msg_has("already"), "%s", msg_now());
    aw_err_clear();
    cr_assert_geq(forge_s.fd, 0, "the refusal closed nothing");
    char buf[8];
    cr_assert_eq(aw_stream_write(&forge_s, "still\n", 6), 0);
    cr_assert_eq(aw_stream_read_line(&forge_c, buf, sizeof buf), 6, "%s", msg_now());
    cr_assert_eq(memcmp(buf, "still\n", 6), 0);
    aw_stream_close(&forge_c);
    aw_stream_close(&forge_s);
    aw_tls_ctx_free(&cctx);
    aw_tls_ctx_free(&sctx);
    return 0;
}
Test(tls, tls_h_a_second_handshake_on_a_tls_stream_is_refused) { aw_test_run(t_tls_twice, NULL, 0); }

/* ---- ports of Trio's test_ssl (closing, busy, empty sends, ragged EOF) ---- */

/* A verified TLS pair in the test's loop: *c the client, *s the server. */
static aw_stream_t tp_srv;
static aw_listener_t tp_l;
static int tp_accept(void *arg) {
    (void)arg;
    int rc = aw_listener_accept(&tp_l, &tp_srv);
    return rc < 0 ? rc : aw_tls_accept(&tp_srv, &sctx);
}
static void tls_pair(aw_tls_ctx_t *cctx, aw_stream_t *c, aw_stream_t *s) {
    aw_tls_opts_t so = {.cert_file = p("srv.pem"), .key_file = p("srv.key")};
    cr_assert_eq(aw_tls_ctx_init(&sctx, &so, true), 0, "%s", msg_now());
    aw_tls_opts_t co = {.ca_file = p("ca.pem")};
    cr_assert_eq(aw_tls_ctx_init(cctx, &co, false), 0, "%s", msg_now());
    cr_assert_eq(aw_tcp_listen(&tp_l, "127.0.0.1", 0, NULL), 0);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, tp_accept, NULL, NULL);
        cr_assert_eq(aw_tls_connect(c, cctx, "localhost", aw_listener_port(&tp_l)), 0, "%s",
                     msg_now());
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    aw_listener_close(&tp_l);
    *s = tp_srv;
}
static void tls_pair_free(aw_tls_ctx_t *cctx) {
    aw_tls_ctx_free(cctx);
    aw_tls_ctx_free(&sctx);
}

/* Trio test_closing_nice_case: the client closes (close_notify); the
 * server reads b"" (again and again); sending more then fails
 * (BrokenResourceError: -EPIPE or -ECONNRESET, eventually); the server's
 * close works; then every operation is ClosedResourceError (-EBADF) and
 * close is idempotent. */
static int t_trio_closing_nice(void *arg) {
    (void)arg;
    aw_tls_ctx_t cctx;
    aw_stream_t c, s;
    tls_pair(&cctx, &c, &s);
    cr_assert_eq(aw_stream_write(&c, "hi", 2), 0);
    char buf[16];
    cr_assert_eq(aw_stream_read(&s, buf, sizeof buf), 2);
    cr_assert_eq(aw_stream_close(&c), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(aw_stream_read(&s, buf, sizeof buf), 0, "%s", msg_now());
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        rc = aw_stream_write(&s, "123", 3);
        if (rc == 0)
            aw_sleep(AW_MS(1));
    }
    cr_assert(rc == -EPIPE || rc == -ECONNRESET, "rc %d: %s", rc, msg_now());
    aw_err_clear();
    cr_assert_eq(aw_stream_close(&s), 0);
    cr_assert_eq(aw_stream_close(&s), 0);
    cr_assert_eq(aw_stream_read(&s, buf, sizeof buf), -EBADF);
    aw_err_clear();
    cr_assert_eq(aw_stream_write(&s, "", 0), -EBADF);
    aw_err_clear();
    cr_assert_eq(aw_stream_shutdown(&s), -EBADF);
    aw_err_clear();
    tls_pair_free(&cctx);
    return 0;
}
Test(tls, trio_test_closing_nice_case) { aw_test_run(t_trio_closing_nice, NULL, 0); }

/* Trio test_send_all_empty_string: sending b"" works and sends nothing. */
static int t_trio_empty(void *arg) {
    (void)arg;
    aw_tls_ctx_t cctx;
    aw_stream_t c, s;
    tls_pair(&cctx, &c, &s);
    cr_assert_eq(aw_stream_write(&c, "", 0), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_write(&c, "x", 1), 0);
    char buf[4];
    cr_assert_eq(aw_stream_read(&s, buf, sizeof buf), 1);
    cr_assert_eq(buf[0], 'x');
    aw_stream_close(&c);
    aw_stream_close(&s);
    tls_pair_free(&cctx);
    return 0;
}
Test(tls, trio_test_send_all_empty_string) { aw_test_run(t_trio_empty, NULL, 0); }

/* Trio test_resource_busy_errors: a second receive while one waits is
 * BusyResourceError (-EBUSY), and the first goes on intact. */
static aw_stream_t busy_c;
static ssize_t busy_rc = 1;
static char busy_buf[8];
static int busy_reader(void *arg) {
    (void)arg;
    busy_rc = aw_stream_read(&busy_c, busy_buf, sizeof busy_buf);
    return 0;
}
static int t_trio_busy(void *arg) {
    (void)arg;
    aw_tls_ctx_t cctx;
    aw_stream_t s;
    tls_pair(&cctx, &busy_c, &s);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, busy_reader, NULL, NULL);
        aw_sleep(AW_MS(10));
        char x[4];
        cr_assert_eq(aw_stream_read(&busy_c, x, sizeof x), -EBUSY);
        aw_err_clear();
        cr_assert_eq(aw_stream_write(&s, "ok", 2), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(busy_rc, 2);
    cr_assert_eq(memcmp(busy_buf, "ok", 2), 0);
    aw_stream_close(&busy_c);
    aw_stream_close(&s);
    tls_pair_free(&cctx);
    return 0;
}
Test(tls, trio_test_resource_busy_errors) { aw_test_run(t_trio_busy, NULL, 0); }

/* Trio test_ssl_bad_shutdown_but_its_ok (https_compatible): a peer that
 * drops the connection without close_notify reads as end of stream
 * (tls.h: "a peer that closes without close_notify reads as end of
 * stream"), whether its FIN arrives while the reader waits or before it
 * reads; the bytes before it are all read first. */
static aw_stream_t rag_s;
static ssize_t rag_rc = 1;
static int rag_reader(void *arg) {
    (void)arg;
    char b[8];
    rag_rc = aw_stream_read(&rag_s, b, sizeof b);
    return 0;
}
static int t_trio_ragged(void *arg) {
    (void)arg;
    for (int waiting = 0; waiting < 2; waiting++) {
        aw_tls_ctx_t cctx;
        aw_stream_t c;
        tls_pair(&cctx, &c, &rag_s);
        cr_assert_eq(aw_stream_write(&c, "last", 4), 0);
        char b[8];
        cr_assert_eq(aw_stream_read_exactly(&rag_s, b, 4), 0);
        rag_rc = 1;
        aw_with (aw_group_t *g, aw_group()) {
            if (waiting)
                aw_spawn(g, rag_reader, NULL, NULL);
            aw_sleep(AW_MS(10));
            shutdown(c.fd, SHUT_WR); /* a FIN, no close_notify */
            aw_sleep(AW_MS(10));
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        if (!waiting)
            rag_rc = aw_stream_read(&rag_s, b, sizeof b);
        cr_assert_eq(rag_rc, 0, "waiting %d: %zd %s", waiting, rag_rc, msg_now());
        aw_err_clear();
        cr_assert_eq(aw_stream_read(&rag_s, b, sizeof b), 0, "and stays at 0");
        aw_stream_close(&c);
        aw_stream_close(&rag_s);
        tls_pair_free(&cctx);
    }
    return 0;
}
Test(tls, trio_test_ssl_bad_shutdown_but_its_ok) { aw_test_run(t_trio_ragged, NULL, 0); }

/* Trio's TLS streams refuse send_eof; awith's shutdown sends close_notify
 * (tls.h). A second shutdown is a no-op, writes after it fail, the peer
 * reads b"" (again), and still answers. */
static int t_tls_shutdown_twice(void *arg) {
    (void)arg;
    aw_tls_ctx_t cctx;
    aw_stream_t c, s;
    tls_pair(&cctx, &c, &s);
    cr_assert_eq(aw_stream_shutdown(&c), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_shutdown(&c), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_write(&c, "x", 1), -EPIPE);
    aw_err_clear();
    char b[8];
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_write(&s, "pong", 4), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_read_exactly(&c, b, 4), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_shutdown(&s), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_read(&c, b, sizeof b), 0, "%s", msg_now());
    aw_stream_close(&c);
    aw_stream_close(&s);
    tls_pair_free(&cctx);
    return 0;
}
Test(tls, trio_send_eof_then_the_other_way) { aw_test_run(t_tls_shutdown_twice, NULL, 0); }

/* Trio test_https_mode_eof_before_handshake: a client that connects and
 * closes before any TLS byte fails the server's handshake (Broken-
 * ResourceError: -ECONNRESET "connection closed by the peer"), which
 * closes the stream; and closing both ends of a pair at once
 * (test_closing_nice_case, both acloses) works and leaves nothing. */
static int t_trio_eof_before_handshake(void *arg) {
    (void)arg;
    aw_tls_opts_t so = {.cert_file = p("srv.pem"), .key_file = p("srv.key")};
    cr_assert_eq(aw_tls_ctx_init(&sctx, &so, true), 0, "%s", msg_now());
    aw_listener_t l;
    cr_assert_eq(aw_tcp_listen(&l, "127.0.0.1", 0, NULL), 0);
    aw_stream_t c, s;
    cr_assert_eq(aw_tcp_connect(&c, "127.0.0.1", aw_listener_port(&l)), 0);
    cr_assert_eq(aw_listener_accept(&l, &s), 0);
    aw_stream_close(&c);
    cr_assert_eq(aw_tls_accept(&s, &sctx), -ECONNRESET, "%s", msg_now());
    cr_assert(msg_has("connection closed by the peer"), "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(s.fd, -1);
    aw_listener_close(&l);
    aw_tls_ctx_free(&sctx);

    aw_tls_ctx_t cctx;
    tls_pair(&cctx, &c, &s);
    cr_assert_eq(aw_stream_close(&c), 0);
    cr_assert_eq(aw_stream_close(&s), 0);
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    tls_pair_free(&cctx);
    return 0;
}
Test(tls, trio_test_https_mode_eof_before_handshake) { aw_test_run(t_trio_eof_before_handshake, NULL, 0); }

/* Trio check_one_way_stream, "cancelled aclose still closes" and "we can
 * still gracefully close a stream after an operation has been
 * cancelled": a write and a read cancelled before they start leave the
 * TLS stream intact; its close then still sends close_notify (the peer
 * reads a clean end of stream), and a close inside a cancelled scope
 * still releases; then every operation is -EBADF. */
static int t_trio_cancelled_then_close(void *arg) {
    (void)arg;
    aw_tls_ctx_t cctx;
    aw_stream_t c, s;
    tls_pair(&cctx, &c, &s);
    aw_with (aw_scope_t *sc, aw_cancel_scope()) {
        aw_scope_cancel(sc);
        char b[4];
        cr_assert_eq(aw_stream_write(&c, "x", 1), -ECANCELED);
        cr_assert_eq(aw_stream_read(&c, b, sizeof b), -ECANCELED);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert(!aw_stream_broken(&c), "cancelled before any progress: intact");
    cr_assert_eq(aw_stream_write(&c, "ok", 2), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_close(&c), 0);
    char b[8];
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), 2, "%s", msg_now());
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), 0, "close_notify came: %s", msg_now());
    aw_with (aw_scope_t *sc, aw_cancel_scope()) {
        aw_scope_cancel(sc);
        cr_assert_eq(aw_stream_close(&s), 0);
    }
    aw_err_clear();
    cr_assert_eq(s.fd, -1, "a close in a cancelled scope still releases");
    cr_assert_eq(aw_stream_write(&s, "123", 3), -EBADF);
    aw_err_clear();
    cr_assert_eq(aw_stream_read(&s, b, sizeof b), -EBADF);
    aw_err_clear();
    tls_pair_free(&cctx);
    return 0;
}
Test(tls, trio_check_one_way_stream_cancelled_ops_then_graceful_close) {
    aw_test_run(t_trio_cancelled_then_close, NULL, 0);
}
