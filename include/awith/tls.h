/* awith/tls.h: TLS client and server streams (OpenSSL).
 *
 *   aw_tls_ctx_t ctx;
 *   aw_tls_ctx_init(&ctx, &(aw_tls_opts_t){.alpn = "http/1.1"}, false);
 *   aw_with (aw_stream_t *s, aw_tls_client(&ctx, "example.com", 443)) { ... }
 *   aw_tls_ctx_free(&ctx);
 *
 * A TLS stream is an aw_stream_t: every call of awith/stream.h works on it
 * (the record layer sits under the read buffer). Verification is ON by
 * default: the peer's chain must lead to a trusted CA (the system's, or
 * opts.ca_file) and name the host connected to (or opts.server_name);
 * turning it off takes `insecure_no_verify`. The client sends SNI for host
 * names, never for IP addresses (RFC 6066); a server reads it with
 * aw_tls_server_name. Closing sends close_notify, waiting for the socket
 * to take it within the exit's grace (a with-exit) or the caller's
 * deadlines (an explicit close), then releases anyway; aw_stream_shutdown
 * sends it, waiting for room for it as a write does (a cancellation
 * point; cut short, the write side stays open so that no record queued
 * is lost), then half-closes. A peer that closes without
 * close_notify reads as end of stream (Python's suppress_ragged_eofs).
 *
 * Errors: -EKEYREJECTED "certificate verify failed: <reason>" (unknown CA,
 * self-signed, expired, host name mismatch ...), -EPROTO (other TLS
 * failures, with OpenSSL's reason), plus those of TCP. */
#ifndef AWITH_TLS_H
#define AWITH_TLS_H

#include <awith/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_tls_opts {
    const char *ca_file;         /* PEM CAs to trust; NULL: the system's */
    const char *cert_file;       /* PEM certificate chain (server; client auth) */
    const char *key_file;        /* its private key */
    const char *server_name;     /* client: SNI and name to verify; NULL: the host */
    const char *alpn;            /* "h2,http/1.1": offered (client) / accepted (server) */
    bool insecure_no_verify;     /* client: accept ANY certificate. Testing only. */
} aw_tls_opts_t;

typedef struct aw_tls_ctx {      /* private; public for stack storage */
    void *ssl_ctx;               /* SSL_CTX * */
    bool server;
    bool no_verify;
    const char *server_name;
    unsigned char alpn[64];      /* wire format */
    unsigned alpn_len;
} aw_tls_ctx_t;

/* Make a context (loads certificates: do it once, share it). Never
 * suspends (reads files). -EINVAL/-ENOENT/-EPROTO with OpenSSL's reason. */
AW_API int aw_tls_ctx_init(aw_tls_ctx_t *ctx, const aw_tls_opts_t *opts, bool server);
AW_API void aw_tls_ctx_free(aw_tls_ctx_t *ctx);

/* Connect to host:port over TCP and run the client handshake. A
 * cancellation point; honours deadlines; on failure nothing stays open. */
AW_API int aw_tls_connect(aw_stream_t *s, aw_tls_ctx_t *ctx, const char *host, int port);

/* Run the server handshake on an accepted stream (e.g. in a server
 * handler, or after a STARTTLS line). Bytes the stream had read ahead
 * (aw_stream_buffered) are taken as the peer's first TLS bytes: the
 * handshake reads them first, and nothing received in the clear is ever
 * returned as data. On failure the stream is closed, except for
 * -EALREADY (s already runs TLS) and -EBADF (s is closed), which change
 * nothing. */
AW_API int aw_tls_accept(aw_stream_t *s, aw_tls_ctx_t *ctx);

/* The SNI host name: on a server stream, the one the client asked for;
 * on a client stream, the one sent. NULL if none (a client connecting by
 * IP address sends none: RFC 6066 allows host names only), or if s is
 * not a TLS stream. Borrowed: valid while s is open. Never suspends. */
AW_API const char *aw_tls_server_name(const aw_stream_t *s);

/* The protocol ALPN selected ("" if none). */
AW_API const char *aw_tls_alpn(const aw_stream_t *s);

typedef struct aw_tls_client {   /* private; public for stack storage */
    aw_stream_t stream;
    aw_tls_ctx_t *ctx;
    const char *host;
    int port;
} aw_tls_client_t;
extern AW_API const aw_cm_type_t aw_tls_client_type;
#define aw_tls_client(ctx_, host_, port_) \
    aw_cm_temp(&aw_tls_client_type, (aw_tls_client_t){.ctx = (ctx_), .host = (host_), .port = (port_)})

#ifdef __cplusplus
}
#endif

#endif
