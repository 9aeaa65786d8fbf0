/* tls.c: TLS streams on OpenSSL.
 *
 * The SSL object talks to the socket through a small BIO of ours that
 * uses send(MSG_NOSIGNAL)/recv (OpenSSL's socket BIO uses write(2), which
 * raises SIGPIPE) and remembers errno. SSL_ERROR_WANT_READ/WRITE become
 * aw_fd_wait: a handshake, read or write suspends like a plain one and is
 * a cancellation point. One malloc per connection (the SSL state). */
#include "net.h"

#include <stddef.h>

#include <arpa/inet.h>
#include <awith/tcp.h>
#include <awith/tls.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct aw__tls {
    SSL *ssl;
    int fd;
    int err;          /* errno of the last failed socket call */
    bool sent_notify;
    bool closing;     /* a close is under way (it may be waiting) */
    size_t npre, ppre; /* pre[ppre, npre): read ahead before TLS started */
    char pre[];       /* the peer's first TLS bytes, read before the socket */
} aw__tls_t;

/* Has s been closed since t was read from it? Another task may close the
 * stream while this one waits, or after its wait woke it and before it
 * runs: the close frees t and the fd (whose number may then be reused).
 * So every wait on t's fd is followed by this test, before t is touched
 * again; it compares pointers only. aw_stream_close clears io_ctx before
 * it next suspends. */
static inline bool aw__tls_gone(const aw_stream_t *s, const aw__tls_t *t) { return s->io_ctx != t; }

/* ---- the BIO ---- */

static int aw__bio_write(BIO *b, const char *buf, int n) {
    aw__tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r = send(t->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (r < 0) {
        t->err = errno;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_write(b);
        return -1;
    }
    return (int)r;
}

static int aw__bio_read(BIO *b, char *buf, int n) {
    aw__tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->ppre < t->npre) {
        size_t k = t->npre - t->ppre < (size_t)n ? t->npre - t->ppre : (size_t)n;
        memcpy(buf, t->pre + t->ppre, k);
        t->ppre += k;
        return (int)k;
    }
    ssize_t r = recv(t->fd, buf, (size_t)n, 0);
    if (r < 0) {
        t->err = errno;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
        return -1;
    }
    return (int)r;
}

static long aw__bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int aw__bio_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *aw__bio_meth;

static void aw__bio_init(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "awith socket");
    if (m) {
        BIO_meth_set_write(m, aw__bio_write);
        BIO_meth_set_read(m, aw__bio_read);
        BIO_meth_set_ctrl(m, aw__bio_ctrl);
        BIO_meth_set_create(m, aw__bio_create);
    }
    aw__bio_meth = m;
}

static BIO_METHOD *aw__bio_method(void) { /* one per process, made once (loops may run on many threads) */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, aw__bio_init);
    return aw__bio_meth;
}

/* ---- errors ---- */

static const char *aw__ssl_reason(void) {
    static __thread char buf[200];
    unsigned long e = ERR_get_error();
    if (!e)
        return "unknown error";
    const char *r = ERR_reason_error_string(e);
    snprintf(buf, sizeof buf, "%s", r ? r : ERR_error_string(e, NULL));
    ERR_clear_error();
    return buf;
}

/* Wait for t's fd in direction dir: 0, the wait's error (raised), or
 * -EBADF (not raised) when another task closed s meanwhile, which freed
 * t: the caller must not touch t then (stream.h: the suspended
 * operations fail with -EBADF). */
static int aw__tls_wait_fd(aw_stream_t *s, aw__tls_t *t, int dir) {
    int rc = aw_fd_wait(t->fd, dir);
    if (rc == 0 && aw__tls_gone(s, t))
        return -EBADF;
    return rc;
}

/* Wait as OpenSSL asks after a call that returned rc. 0 to retry, 1 for a
 * clean TLS close, or a negative code (raised when `what` says so). */
static int aw__tls_wait(aw_stream_t *s, aw__tls_t *t, int rc, const char *what) {
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return aw__tls_wait_fd(s, t, AW_READ);
    case SSL_ERROR_WANT_WRITE:
        return aw__tls_wait_fd(s, t, AW_WRITE);
    case SSL_ERROR_ZERO_RETURN:
        return 1;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (!t->err)
            return 1; /* EOF without close_notify: end of stream */
        return -t->err;
    default: {
        long v = SSL_get_verify_result(t->ssl);
        if (what && v != X509_V_OK) {
            ERR_clear_error();
            return aw_raise(-EKEYREJECTED, "%s %s: certificate verify failed: %s", what, s->peer,
                            X509_verify_cert_error_string(v));
        }
        const char *why = aw__ssl_reason();
        if (what)
            return aw_raise(-EPROTO, "%s %s: %s", what, s->peer, why);
        if (strstr(why, "unexpected eof"))
            return 1; /* OpenSSL 3 reports a ragged EOF this way */
        /* the session is unusable now: break the stream with the reason,
         * which the failing read or write then reports (tls.h) */
        aw__stream_break(s, -EPROTO, "TLS: %s", why);
        return -EPROTO;
    }
    }
}

/* ---- the stream io ---- */

static ssize_t aw__tls_recv(aw_stream_t *s, void *buf, size_t n) {
    aw__tls_t *t = s->io_ctx;
    for (;;) {
        size_t got = 0;
        t->err = 0;
        int rc = SSL_read_ex(t->ssl, buf, n, &got);
        if (rc == 1)
            return (ssize_t)got;
        rc = aw__tls_wait(s, t, rc, NULL);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
    }
}

static ssize_t aw__tls_send(aw_stream_t *s, const void *buf, size_t n) {
    aw__tls_t *t = s->io_ctx;
    for (;;) {
        size_t put = 0;
        t->err = 0;
        int rc = SSL_write_ex(t->ssl, buf, n, &put);
        if (rc == 1)
            return (ssize_t)put;
        int e = SSL_get_error(t->ssl, rc);
        rc = aw__tls_wait(s, t, rc, NULL);
        if (rc == 1)
            return -EPIPE;
        if (rc < 0) {
            /* A write that must be retried holds a record built from
             * these bytes, partly on the wire: they are consumed though
             * none is counted as sent, and only a retry of this very
             * write may finish the record (another write would send the
             * old bytes as its own). A cut here is progress: the stream
             * is broken (K2), whatever the caller's count says. */
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                aw__stream_break(s, rc, "write to %s interrupted with a TLS record half sent", s->peer);
            return rc;
        }
    }
}

/* Send close_notify once. With `wait`, a socket that cannot take it now is
 * waited for (aw_fd_wait) and the shutdown retried: inside a with-exit that
 * is bounded by the exit's grace (the wait then fails with -ECANCELED and
 * the runtime reports the overrun), in an explicit close or shutdown by
 * the caller's deadlines and cancellation. It counts as sent only once
 * SSL_shutdown took it, so a later close tries again. Returns 0, or the
 * wait's error (raised; -EBADF, not raised, when another task closed s
 * meanwhile: t is gone); other TLS failures give up quietly (0). */
static int aw__tls_notify(aw_stream_t *s, aw__tls_t *t, bool wait) {
    if (t->sent_notify || !SSL_is_init_finished(t->ssl))
        return 0;
    int ret = 0;
    for (;;) {
        t->err = 0;
        int rc = SSL_shutdown(t->ssl); /* 0: sent, 1: both sides done */
        if (rc >= 0) {
            t->sent_notify = true;
            break;
        }
        if (!wait || SSL_get_error(t->ssl, rc) != SSL_ERROR_WANT_WRITE)
            break;
        ERR_clear_error();
        if ((ret = aw__tls_wait_fd(s, t, AW_WRITE)) < 0)
            return ret; /* out of grace / cancelled / closed by another task */
    }
    ERR_clear_error();
    return ret;
}

/* Half-close: close_notify first (it may wait for room), then the socket's
 * write side; cut short, the write side stays open so that nothing of the
 * record already queued is lost. */
static int aw__tls_shutdown(aw_stream_t *s) {
    aw__tls_t *t = s->io_ctx;
    int rc = aw__tls_notify(s, t, true);
    if (rc == -EBADF && aw__tls_gone(s, t))
        return aw_raise(rc, "shutdown %s: the stream was closed meanwhile", s->peer);
    if (rc < 0)
        return rc;
    shutdown(s->fd, SHUT_WR);
    return 0;
}

/* Close may wait for room for close_notify; another task may close the
 * stream meanwhile ("closing is always allowed"). That second close must
 * not wait in the same direction (-EBUSY) nor free t under the first:
 * it releases at once, and the first, finding t gone, returns without
 * touching it, the -EBADF of its wait dropped (a close returns 0). So
 * does a close while another task waits to write (a writer with its
 * record half sent, a shutdown): close_notify could only follow that
 * record, which only that task may finish; the close releases at once,
 * the -EBUSY of its wait dropped too. */
static void aw__tls_close(aw_stream_t *s) {
    aw__tls_t *t = s->io_ctx;
    if (!t)
        return;
    if (!t->closing) {
        t->closing = true;
        uint64_t mark = aw_err_mark();
        int rc = aw__tls_notify(s, t, !s->broken); /* close releases anyway */
        bool gone = aw__tls_gone(s, t);
        if (gone || rc == -EBUSY)
            aw_err_restore(mark);
        if (gone)
            return;
    }
    /* Discard what the peer sent and nobody read (TLS 1.3 session tickets
     * at least): close(2) with unread bytes resets the connection, and the
     * reset throws away what is still queued, close_notify included. */
    char junk[4096];
    for (int i = 0; i < 64 && recv(t->fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++)
        ;
    SSL_free(t->ssl);
    aw__free(t);
    s->io_ctx = NULL; /* gone, for the tasks still holding t (aw__tls_gone) */
}

static const aw_stream_io_t aw__tls_io = {aw__tls_recv, aw__tls_send, aw__tls_shutdown, aw__tls_close};

/* ---- contexts ---- */

static int aw__alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned inlen, void *arg) {
    (void)ssl;
    aw_tls_ctx_t *c = arg;
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, c->alpn, c->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

int aw_tls_ctx_init(aw_tls_ctx_t *c, const aw_tls_opts_t *o, bool server) {
    static const aw_tls_opts_t none;
    if (!o)
        o = &none;
    memset(c, 0, sizeof *c);
    c->server = server;
    c->no_verify = o->insecure_no_verify;
    c->server_name = o->server_name;
    if (o->alpn) { /* "a,b" -> "\1a\1b" */
        const char *p = o->alpn;
        while (*p) {
            size_t l = strcspn(p, ",");
            if (l == 0 || l > 255 || c->alpn_len + 1 + l > sizeof c->alpn)
                return aw_raise(-EINVAL, "TLS: bad ALPN list \"%s\"", o->alpn);
            c->alpn[c->alpn_len++] = (unsigned char)l;
            memcpy(c->alpn + c->alpn_len, p, l);
            c->alpn_len += (unsigned)l;
            p += l + (p[l] == ',');
        }
    }
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        return aw_raise(-ENOMEM, "TLS: %s", aw__ssl_reason());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int rc = 0;
    const char *what = NULL;
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
            what = o->ca_file;
    } else if (!server && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        what = "the system's CA store";
    }
    if (!what && o->cert_file && SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
        what = o->cert_file;
    if (!what && o->key_file && SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
        what = o->key_file;
    if (!what && o->key_file && SSL_CTX_check_private_key(ctx) != 1)
        what = o->key_file;
    if (what) {
        const char *why = aw__ssl_reason();
        rc = aw_raise(access(what, R_OK) == 0 || what[0] != '/' ? -EPROTO : -ENOENT,
                      "TLS: cannot load %s: %s", what, why);
        SSL_CTX_free(ctx);
        return rc;
    }
    if (server) {
        if (c->alpn_len)
            SSL_CTX_set_alpn_select_cb(ctx, aw__alpn_select, c);
    } else {
        SSL_CTX_set_verify(ctx, c->no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
        if (c->alpn_len)
            SSL_CTX_set_alpn_protos(ctx, c->alpn, c->alpn_len);
    }
    c->ssl_ctx = ctx;
    return 0;
}

void aw_tls_ctx_free(aw_tls_ctx_t *c) {
    SSL_CTX_free(c->ssl_ctx);
    c->ssl_ctx = NULL;
}

/* Put TLS on an open stream and run the handshake. Closes s on failure.
 * What the stream's buffer holds was read ahead from the socket before
 * TLS started (a STARTTLS line read with read_line takes what followed
 * it): the peer's first TLS bytes. They move into t, where the BIO reads
 * them before the socket; left in the buffer, the handshake would wait
 * for bytes already read, and reads would return them as decrypted data
 * (plaintext a man in the middle appended to STARTTLS, CVE-2011-0411). */
static int aw__tls_start(aw_stream_t *s, aw_tls_ctx_t *c, const char *name) {
    size_t ahead = s->wpos - s->rpos;
    aw__tls_t *t = aw__calloc(1, sizeof *t + ahead);
    if (t && ahead) {
        memcpy(t->pre, s->buf + s->rpos, ahead);
        t->npre = ahead;
        s->rpos = s->wpos = 0;
    }
    SSL *ssl = t && c->ssl_ctx ? SSL_new(c->ssl_ctx) : NULL;
    BIO *b = ssl ? BIO_new(aw__bio_method()) : NULL;
    if (!b) {
        SSL_free(ssl);
        aw__free(t);
        aw_stream_close(s);
        return aw_raise(c->ssl_ctx ? -ENOMEM : -EINVAL, "TLS with %s: %s", s->peer,
                        c->ssl_ctx ? "out of memory" : "context not initialised");
    }
    t->ssl = ssl;
    t->fd = s->fd;
    BIO_set_data(b, t);
    SSL_set_bio(ssl, b, b);
    s->io = &aw__tls_io;
    s->io_ctx = t;
    if (!c->server) {
        SSL_set_connect_state(ssl);
        /* SNI carries host names only: RFC 6066 §3 forbids IP literals
         * (a ':' never appears in a host name: that also covers an IPv6
         * address with a zone, "fe80::1%eth0", which inet_pton refuses). */
        struct in6_addr a;
        bool ip = inet_pton(AF_INET, name, &a) == 1 || strchr(name, ':');
        if (!ip)
            SSL_set_tlsext_host_name(ssl, name);
        /* The identity to verify: a name that cannot be set must fail the
         * connect, not leave the chain check alone to pass. */
        if (!c->no_verify && (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                                 : SSL_set1_host(ssl, name)) != 1) {
            ERR_clear_error();
            aw_stream_close(s);
            return aw_raise(-EINVAL, "TLS with %s: cannot verify the name \"%s\"", s->peer, name);
        }
    } else {
        SSL_set_accept_state(ssl);
    }
    for (;;) {
        t->err = 0;
        int rc = SSL_do_handshake(ssl);
        if (rc == 1)
            return 0;
        rc = aw__tls_wait(s, t, rc, "TLS handshake with");
        if (rc == 0)
            continue;
        if (rc == 1)
            rc = aw_raise(-ECONNRESET, "TLS handshake with %s: connection closed by the peer", s->peer);
        else if (rc != -ECANCELED && (!aw_err_current() || aw_err_current()->code != rc))
            rc = aw_raise(rc, "TLS handshake with %s: %s", s->peer, aw_strerror(rc));
        aw_stream_close(s);
        return rc;
    }
}

int aw_tls_connect(aw_stream_t *s, aw_tls_ctx_t *c, const char *host, int port) {
    int rc = aw_tcp_connect(s, host, port);
    if (rc < 0)
        return rc;
    return aw__tls_start(s, c, c->server_name ? c->server_name : host);
}

int aw_tls_accept(aw_stream_t *s, aw_tls_ctx_t *c) {
    if (s->fd < 0)
        return aw_raise(-EBADF, "TLS handshake on a closed stream (%s)", s->peer);
    /* A second handshake would put a second TLS state over the first
     * (leaking it) and wait for a ClientHello among the session's
     * records: refused, the stream left as it is. */
    if (s->io)
        return aw_raise(-EALREADY, "TLS handshake with %s: the stream already runs TLS", s->peer);
    return aw__tls_start(s, c, NULL);
}

const char *aw_tls_server_name(const aw_stream_t *s) {
    if (s->io != &aw__tls_io || !s->io_ctx)
        return NULL;
    return SSL_get_servername(((aw__tls_t *)s->io_ctx)->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *aw_tls_alpn(const aw_stream_t *s) {
    static __thread char buf[256];
    buf[0] = 0;
    if (s->io != &aw__tls_io || !s->io_ctx)
        return buf;
    const unsigned char *p;
    unsigned l;
    SSL_get0_alpn_selected(((aw__tls_t *)s->io_ctx)->ssl, &p, &l);
    if (p && l < sizeof buf) { /* none negotiated: p NULL, l 0 */
        memcpy(buf, p, l);
        buf[l] = 0;
    }
    return buf;
}

static int aw__tls_client_enter(void *self, void **out) {
    aw_tls_client_t *c = self;
    int rc = aw_tls_connect(&c->stream, c->ctx, c->host, c->port);
    if (rc < 0)
        return rc;
    *out = &c->stream;
    return 0;
}

_Static_assert(offsetof(aw_tls_client_t, stream) == 0, "the shared exit closes the first member");
const aw_cm_type_t aw_tls_client_type = {"tls_client", aw__tls_client_enter, aw__stream_cm_exit, 0, 0};
