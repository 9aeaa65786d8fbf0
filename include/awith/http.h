/* awith/http.h: an HTTP client session (aiohttp's ClientSession) on
 * libcurl's multi-socket interface, driven by awith's loop.
 *
 *   aw_with (aw_http_session_t *s, aw_http_session(.base_url = "http://127.0.0.1:8080")) {
 *       aw_with (aw_http_response_t *r, aw_http_get(s, "/index.html")) {
 *           const char *text;
 *           if (aw_http_response_text(r, 0, &text, NULL) < 0)
 *               break;                      // the error is pending
 *           printf("%ld %s\n", aw_http_response_status(r), text);
 *       }
 *   }
 *
 * One session is one curl multi handle: its connections are kept alive and
 * reused by every request of the session (CURLINFO_NUM_CONNECTS counts
 * them: aw_http_session_stats), at most `max_host_connections` per host.
 * A session runs one driver task (in the loop's root group) that waits for
 * curl's sockets through one level-triggered epoll set registered in the
 * loop, and for curl's timer through a deadline; no thread, no task per
 * request or per socket.
 *
 * A response is entered when its headers have arrived (status and headers
 * readable); the body is then read whole (text, with a size limit) or
 * streamed in chunks (aw_http_response_read, or the aw_http_chunks
 * generator). At most 64 KiB is buffered ahead of a streaming reader (the
 * transfer is paused). Bodies are asked for in gzip or deflate
 * (Accept-Encoding) and decoded by the reader, a chunk per read, so that
 * memory per response stays bounded whatever the compression ratio (64 KiB
 * encoded plus one decoded chunk); a body in another coding (that the
 * caller asked for with its own Accept-Encoding) is handed out as it came,
 * its Content-Encoding header says which. Leaving the response block
 * releases it: a transfer that curl finished leaves its connection in the
 * pool; an unfinished one
 * (body not fully received, cancelled, timed out, failed) is removed from
 * the multi handle, which closes its connection: a half-read connection
 * never goes back to the pool (SEMANTICS K2).
 *
 * Errors (negative codes; the pending record's message names the method
 * and the URL, its password shown as "***", and gives curl's own
 * explanation):
 *   -ENXIO          the host name did not resolve (DNS)
 *   -ECONNREFUSED   connection refused (other connect failures: the errno)
 *   -ETIMEDOUT      connect_timeout, timeout or read_timeout expired
 *   -EPROTO         TLS failure (handshake, certificate verification)
 *   -EBADMSG        the server broke HTTP (a status line that is not
 *                   HTTP, bad headers, a header line or all headers past
 *                   curl's 100 KiB limit, bad chunked encoding, or
 *                   ambiguous framing: Content-Length headers that
 *                   disagree, or one with chunked encoding; such a
 *                   response is refused and its connection closed; bad
 *                   gzip or deflate data)
 *   -EPIPE          the body was cut short (connection closed before
 *                   Content-Length bytes, or mid-chunk)
 *   -ECONNRESET     the connection was reset
 *   -EFBIG          the body is larger than the limit given to text()
 *   -ELOOP          too many redirects
 *   -EPROTONOSUPPORT the URL's or a redirect's scheme is not in the
 *                   session's `protocols` (default: http and https)
 *   -EREMOTEIO      status >= 400 with raise_for_status (not a transport
 *                   error: without it, the status is just returned); the
 *                   record's origin is AW_ORIGIN_HTTP, origin_code the status
 *   -EINVAL         a malformed URL, a relative URL without a base_url,
 *                   a body generator that broke its Content-Length, a
 *                   header (or a session's default header: its open
 *                   fails) holding a line break, a method holding one
 *                   or a space (curl would send them as they are)
 *   -ECANCELED      cancelled (a deadline scope around the request turns
 *                   it into -ETIMEDOUT when the block is left)
 *   -EIO            any other curl failure
 * A session that is never closed is closed by its driver when the loop
 * shuts down, and reported (awith/log.h: stderr by default) with the
 * place it was opened. The cleanups still running at the shutdown
 * (exits, exit-stack callbacks) may use a session and close it: the
 * driver serves until no other task is alive, 10 s at most; a session
 * closed later has no connections left, but its close still frees it,
 * and one never closed is freed when the loop closes. */
#ifndef AWITH_HTTP_H
#define AWITH_HTTP_H

#include <awith/cm.h>
#include <awith/gen.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_http_session aw_http_session_t;
typedef struct aw_http_response aw_http_response_t;

typedef struct aw_http_session_opts {
    const char *base_url;           /* request URLs are resolved against it as a browser
                                       would (RFC 3986, libcurl's URL API): "/x" replaces
                                       its path, "x" its last segment (end a base path
                                       with "/"), an absolute URL replaces it */
    const char *const *headers;     /* default headers, "Name: value", NULL-ended */
    long max_host_connections;      /* per host; 0: 8 */
    long max_connections;           /* in total; 0: no limit */
                                    /* connections kept alive when idle: max_connections,
                                       or (no limit) 4 x max_host_connections; past that
                                       the oldest idle one is closed */
    bool cookies;                   /* keep cookies (in memory) across requests: curl's
                                       jar (RFC 6265), its path-match made the RFC's
                                       (libcurl 7.88 also sends Path=/a/b/ to /a/b; the
                                       session withholds it there, per redirect hop) */
    bool raise_for_status;          /* status >= 400 fails with -EREMOTEIO */
    bool no_redirects;              /* do not follow redirects (default: up to max_redirects,
                                       301 302 303 307 308, by aiohttp's rules: 303 makes
                                       every method but HEAD a GET without a body, 301 and
                                       302 change only POST so, 307 and 308 keep method and
                                       body; a dropped body drops the caller's
                                       Content-Length/-Type; another origin drops
                                       Authorization and Cookie, and the URL's
                                       user:password, which the same origin keeps; a
                                       generator's body is not sent twice: its 307/308
                                       is the response) */
    long max_redirects;             /* 0: 10 */
    const char *ca_file;            /* CA bundle (PEM); default: the system's */
    aw_ns_t connect_timeout;        /* default per request; 0: curl's (300 s) */
    aw_ns_t timeout;                /* whole transfer, redirects included; 0: none */
    aw_ns_t read_timeout;           /* longest silence while waiting for data; 0: none */
    size_t max_text;                /* default limit of text(); 0: 64 MiB */
    const char *protocols;          /* schemes allowed for requests and redirects, curl's
                                       list ("http,https,ftp"); NULL: "http,https" */
} aw_http_session_opts_t;

/* Open a session; *out is valid until aw_http_session_close(). Never
 * suspends. Returns 0, -ENOMEM, -EINVAL (outside a loop). The call site is
 * recorded for the unclosed-session report. */
#define aw_http_session_open(out, opts) aw__http_session_open((out), (opts), __FILE__, __LINE__)
AW_API int aw__http_session_open(aw_http_session_t **out, const aw_http_session_opts_t *opts,
                                 const char *file, int line);

/* Close: abort the session's unfinished transfers (their responses fail
 * with -ECANCELED and must still be closed), stop the driver, close every
 * connection, free the session. Suspends briefly (shielded); returns 0.
 * A session of aw_http_session() may be closed by hand inside its block
 * (aiohttp's close): all of the above but the free happens then, requests
 * after it fail with -EINVAL, and the block's exit frees it. */
AW_API int aw_http_session_close(aw_http_session_t *s);

typedef struct aw_http_session_stats {
    uint64_t requests;              /* transfers finished (any outcome) */
    uint64_t connects;              /* connections opened for them */
    size_t active;                  /* responses not yet closed */
} aw_http_session_stats_t;
AW_API void aw_http_session_stats(const aw_http_session_t *s, aw_http_session_stats_t *out);

/* The session as a manager: enter opens, exit closes. */
typedef struct aw_http_session_cm {
    aw_http_session_opts_t opts;
    aw_http_session_t *s;
    const char *file;
    int line;
} aw_http_session_cm_t;
extern AW_API const aw_cm_type_t aw_http_session_type;
#define aw_http_session(...)                                                               \
    aw_cm_temp(&aw_http_session_type, (aw_http_session_cm_t){.opts = {__VA_ARGS__},              \
                                                         .file = __FILE__, .line = __LINE__})

typedef struct aw_http_chunk {
    const void *data;
    size_t len;
} aw_http_chunk_t;

/* A request. Strings and arrays are borrowed until aw_http_request returns
 * (the body is copied, a body file is opened by then). */
typedef struct aw_http_request {
    const char *method;             /* GET (default), POST, PUT, DELETE, HEAD, PATCH, ... */
    const char *url;                /* absolute, or relative to the session's base_url
                                       (-EINVAL without one) */
    const char *const *headers;     /* "Name: value", NULL-ended; override the defaults */
    const char *const *query;       /* name, value, name, value, ..., NULL: URL-encoded,
                                       appended to the URL's own query */
    const void *body;               /* request body (copied) */
    size_t body_len;
    const char *body_file;          /* or: a file to upload (read as curl sends; a read
                                       error fails the request with its errno) */
    aw_gen_t *body_gen;             /* or: an async generator yielding aw_http_chunk_t *,
                                       pulled as curl sends (chunked; with a Content-Length
                                       in `headers`: that length and no chunking, and the
                                       generator must yield exactly that many bytes, else
                                       -EINVAL); borrowed until the response is closed,
                                       which closes it (or until a request that fails to
                                       start returns: closed too) */
    aw_ns_t connect_timeout;        /* override the session's (0: session's) */
    aw_ns_t timeout;
    aw_ns_t read_timeout;
    int raise_for_status;           /* 0: session's, 1: yes, -1: no */
} aw_http_request_t;

/* Send a request and wait for the response's headers. On success *out is a
 * response to close with aw_http_response_close(). On failure nothing is
 * left behind (enter is atomic, decision 7). A cancellation point. */
AW_API int aw_http_request(aw_http_session_t *s, const aw_http_request_t *req,
                           aw_http_response_t **out);

/* Release the response (see the top of this file for the connection's
 * fate). Never suspends, except to close a body generator (shielded);
 * returns 0. NULL is allowed. A response of aw_http_req() may be closed
 * by hand inside its block (aiohttp's release()): its connection goes
 * then, its status and headers stay readable (and its body if it was all
 * in; else read and text fail with -EBADF), and the block's exit frees
 * it. */
AW_API int aw_http_response_close(aw_http_response_t *r);

/* Status code of the final response (after redirects); HTTP status errors
 * are not failures unless raise_for_status. */
AW_API long aw_http_response_status(const aw_http_response_t *r);
/* The effective URL (after redirects). */
AW_API const char *aw_http_response_url(const aw_http_response_t *r);
/* Value of the first header named `name` (case-insensitive), or NULL.
 * Valid until the response is closed. The trailer fields of a chunked
 * body are not headers: they are dropped (as aiohttp does). */
AW_API const char *aw_http_response_header(const aw_http_response_t *r, const char *name);
/* Headers in order: returns false past the last. */
AW_API bool aw_http_response_header_at(const aw_http_response_t *r, size_t i, const char **name,
                                       const char **value);
/* Connections this transfer opened (0: it reused a kept-alive one). Known
 * once the transfer finished; -1 before. */
AW_API long aw_http_response_connects(const aw_http_response_t *r);

/* HTTP version of the response: 10, 11, 20 (HTTP/2 over TLS, multiplexed:
 * concurrent requests share one connection), 30; 0 if unknown. */
AW_API int aw_http_response_version(const aw_http_response_t *r);

/* Read the whole body (at most `limit` bytes; 0: the session's max_text) and
 * give it NUL-terminated in *text (owned by the response), its length in
 * *len (may be NULL). Returns the length, or an error (-EFBIG past the
 * limit: the transfer is aborted). A cancellation point (an encoded body
 * is decoded here, between turns as read() does). Called again, it
 * returns the same text (the limit is not looked at again); a read()
 * after it returns 0. Chunks already taken by read() are not in the text. */
AW_API long aw_http_response_text(aw_http_response_t *r, size_t limit, const char **text,
                                  size_t *len);
/* Next chunk of the body: *data (owned by the response, valid until the
 * next call) and the returned length; 0 at the end of the body, or an
 * error. A cancellation point even when data is ready (a deadline past due
 * ends the loop at the next call); a reader served from buffers yields to
 * the other tasks every 32 calls. */
AW_API long aw_http_response_read(aw_http_response_t *r, const void **data);

/* The response as a manager: enter sends the request, exit closes. */
typedef struct aw_http_response_cm {
    aw_http_session_t *s;
    aw_http_request_t req;
    aw_http_response_t *r;
} aw_http_response_cm_t;
extern AW_API const aw_cm_type_t aw_http_response_type;
#define aw_http_req(sess, ...) \
    aw_cm_temp(&aw_http_response_type, (aw_http_response_cm_t){.s = (sess), .req = {__VA_ARGS__}})
#define aw_http_get(sess, u, ...) aw_http_req((sess), .method = "GET", .url = (u), __VA_ARGS__)
#define aw_http_head(sess, u, ...) aw_http_req((sess), .method = "HEAD", .url = (u), __VA_ARGS__)
#define aw_http_delete(sess, u, ...) aw_http_req((sess), .method = "DELETE", .url = (u), __VA_ARGS__)
#define aw_http_post(sess, u, ...) aw_http_req((sess), .method = "POST", .url = (u), __VA_ARGS__)
#define aw_http_put(sess, u, ...) aw_http_req((sess), .method = "PUT", .url = (u), __VA_ARGS__)
#define aw_http_patch(sess, u, ...) aw_http_req((sess), .method = "PATCH", .url = (u), __VA_ARGS__)

/* The body in chunks, as an async generator yielding aw_http_chunk_t *:
 *   aw_for (aw_http_chunk_t *c, aw_http_chunks(r)) fwrite(c->data, 1, c->len, f);
 *   if (aw_status() < 0) ...        // a transfer error ends the loop, pending */
AW_API int aw__http_chunks_gen(aw_gen_t *g, void *arg);
#define aw_http_chunks(r) ((aw_gen_t){.fn = aw__http_chunks_gen, .arg = (r), .name = "aw_http_chunks", .file = __FILE__, .line = __LINE__})

/* Fetch many URLs (seed 004), at most `concurrency` in flight, yielding
 * aw_http_result_t * as each finishes (in completion order), or with
 * `.in_order = true` in the order of `urls`. A failure of one URL is
 * reported in its item (error, message) and does not stop the others.
 * In order, a URL that finished before the ones listed ahead of it keeps
 * its body and its place in the window until its turn: at most
 * `concurrency` URLs are started and not yet yielded (in flight or
 * waiting), so at most `concurrency` bodies are held, and a slow URL
 * holds back the start of the rest. Leaving the loop early cancels the
 * transfers in flight (their connections are closed) and drops the
 * results not yet yielded.
 *
 *   aw_http_fetch_t f = {.session = s, .urls = urls, .count = n, .concurrency = 8};
 *   aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) ...            */
typedef struct aw_http_result {
    size_t index;                   /* position in urls */
    const char *url;
    int error;                      /* 0, or the code aw_http_request/text would return */
    const char *message;            /* the error's message, or "" */
    long status;                    /* HTTP status (0 if no response) */
    const char *body;               /* NUL-terminated; valid until the next item */
    size_t len;
} aw_http_result_t;
typedef struct aw_http_fetch {
    aw_http_session_t *session;
    const char *const *urls;
    size_t count;
    size_t concurrency;             /* 0: 10 */
    size_t max_text;                /* per body; 0: the session's */
    bool in_order;                  /* yield in the order of urls */
} aw_http_fetch_t;
AW_API int aw__http_fetch_gen(aw_gen_t *g, void *arg);
#define aw_http_fetch_many(f) ((aw_gen_t){.fn = aw__http_fetch_gen, .arg = (f), .name = "aw_http_fetch_many", .file = __FILE__, .line = __LINE__})

#ifdef __cplusplus
}
#endif

#endif
