/* tests for src/net/tls.c: TLS client and server streams over TCP on
 * 127.0.0.1, with a CA and certificates each test generates with
 * openssl(1) into its own temporary directory: a good chain (with ALPN and
 * host-name verification), a wrong host name, a self-signed and an expired
 * certificate (each a clear error), the explicit opt-out, half-close. */
#include "netutil.h"

#include <awith/tls.h>
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
    snprintf(dir, sizeof dir, "/tmp/awith-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
}

TestSuite(tls, .init = setup, .fini = teardown);

typedef struct {
    const char *cert, *key;
    const char *client_ca, *server_name, *client_alpn;
    bool insecure;
    int expect;            /* the client's connect result */
    const char *msg;       /* ... and a piece of its message */
    char server_alpn[32];
} case_t;

static aw_tls_ctx_t sctx;

static int tls_echo(aw_stream_t *s, void *arg) {
    case_t *c = arg;
    int rc = aw_tls_accept(s, &sctx);
    if (rc < 0)
        return rc;
    snprintf(c->server_alpn, sizeof c->server_alpn, "%s", aw_tls_alpn(s));
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
        int rc = aw_tls_connect(&s, &cctx, "localhost", aw_listener_port(l));
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
