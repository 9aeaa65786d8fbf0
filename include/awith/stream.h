/* awith/stream.h: a buffered byte stream over a connected socket (TCP or
 * Unix), in the spirit of asyncio's StreamReader/StreamWriter.
 *
 *   aw_with (aw_stream_t *s, aw_tcp_client("example.com", 80)) {
 *       if (aw_stream_write(s, req, len) < 0) aw_leave();
 *       char line[256];
 *       ssize_t n = aw_stream_read_line(s, line, sizeof line);
 *       ...
 *   }                                   // closed, whatever the way out
 *
 * Reads go straight to recv(2) and only wait (aw_fd_wait) after EAGAIN or
 * after a short read (the socket was empty: the next edge will tell);
 * a small read buffer (AW_STREAM_BUF bytes, allocated on the first read
 * that needs it, never grown) serves read_exactly and read_until. Writes go
 * straight to send(2) with MSG_NOSIGNAL (a closed peer is -EPIPE, never
 * SIGPIPE) and suspend while the kernel's send buffer is full: that is the
 * back-pressure, and nothing is buffered in user space.
 *
 * Every operation is a cancellation point (it checks on entry, and its
 * waits are cancellable) and honours deadlines (aw_fail_after ...).
 *
 * One reader and one writer at a time: a task may read while another
 * writes, but a read (read, read_exactly, read_until, read_line) started
 * while another task is suspended in one is refused with -EBUSY ("another
 * task is reading this stream"), and so is a second write or a shutdown:
 * it would take the first one's bytes, put its own among them, or cut
 * them short (Trio's BusyResourceError). The refused call does nothing; the stream and the
 * first operation go on intact. Closing is always allowed: the suspended
 * operations then fail with -EBADF.
 *
 * Cancellation and partial progress (SEMANTICS K2): an operation
 * interrupted (cancel, deadline, error) after it consumed or sent part of
 * its bytes marks the stream *broken*: every later operation fails with
 * -ENOTRECOVERABLE and a message saying what broke it; only close is
 * left. An operation interrupted before it made progress leaves the stream
 * intact. read_exactly (n <= AW_STREAM_BUF) and read_until keep their bytes
 * in the buffer until they complete, so they never break the stream on a
 * cancel; read_exactly of more than AW_STREAM_BUF bytes and write can. A
 * TLS write cut while it waits for room always breaks the stream: OpenSSL
 * then holds a record of its bytes half sent, which only that very write
 * may finish.
 *
 * Errors (negative errno, raised with a message naming the peer):
 * -ECONNRESET, -EPIPE (peer closed; write after shutdown; EOF inside
 * read_exactly / read_until: "connection closed after k of n bytes"),
 * -EMSGSIZE (read_until: no delimiter within the limit; the bytes stay
 * buffered), -ETIMEDOUT/-ECANCELED (deadline, cancel), -ENOTRECOVERABLE
 * (broken), -EBADF (closed), -EBUSY (another task is in the same
 * direction). */
#ifndef AWITH_STREAM_H
#define AWITH_STREAM_H

#include <awith/cm.h>
#include <awith/track.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AW_STREAM_BUF 65536

typedef struct aw_stream aw_stream_t;

/* A transport layered on the socket (TLS: awith/tls.h). Private. recv and
 * send wait themselves (cancellable) and return a count (0: end of
 * stream) or a negative code; shutdown may wait as send does (TLS:
 * room for close_notify; plain: never); close may wait
 * (bounded by the caller's grace or deadline) and always releases. */
typedef struct aw_stream_io {
    ssize_t (*recv)(aw_stream_t *s, void *buf, size_t n);
    ssize_t (*send)(aw_stream_t *s, const void *buf, size_t n);
    int (*shutdown)(aw_stream_t *s);
    void (*close)(aw_stream_t *s);
} aw_stream_io_t;

struct aw_stream {               /* private; public for stack storage */
    int fd;                      /* -1 once closed */
    uint8_t eof;                 /* the peer shut its write side */
    uint8_t wshut;               /* we shut ours */
    uint8_t drained;             /* the last recv emptied the socket: wait before the next */
    uint8_t busy;                /* a read, a write in progress (stream.c): one of each at a time */
    int broken;                  /* 0, or the error that broke it */
    char *buf;                   /* read buffer, AW_STREAM_BUF bytes */
    uint32_t rpos, wpos;         /* unread bytes: buf[rpos, wpos) */
    const aw_stream_io_t *io;    /* NULL: plain socket */
    void *io_ctx;
    aw_track_t track;            /* reported at loop close if never closed */
    char why[96];                /* what broke it */
    char peer[64];               /* "127.0.0.1:8080", "[::1]:80", "/tmp/s" */
};

/* Adopt a connected socket: the stream owns fd from now on (it is made
 * non-blocking; aw_stream_close closes it). `peer` names it in messages
 * (NULL: "fd N"). Never suspends; never fails. */
AW_API void aw_stream_init(aw_stream_t *s, int fd, const char *peer);

/* Read some bytes (1..n) into buf. Returns the count, 0 at end of stream,
 * or < 0. Suspends only when nothing is available. */
AW_API ssize_t aw_stream_read(aw_stream_t *s, void *buf, size_t n);

/* Read exactly n bytes. Returns 0, or -EPIPE "connection closed after k
 * of n bytes" (the k bytes are consumed), or another error. */
AW_API int aw_stream_read_exactly(aw_stream_t *s, void *buf, size_t n);

/* Read up to and including the delimiter `delim` (dlen bytes) into buf
 * (room for cap bytes). Returns the length including the delimiter; 0 at
 * a clean end of stream (nothing buffered); -EMSGSIZE if no delimiter
 * within min(cap, AW_STREAM_BUF) bytes; -EPIPE if the stream ended inside
 * a record. On those two errors nothing is consumed: the bytes stay
 * buffered for aw_stream_read. */
AW_API ssize_t aw_stream_read_until(aw_stream_t *s, void *buf, size_t cap, const void *delim,
                                    size_t dlen);
/* aw_stream_read_until with "\n". The line is not NUL-terminated. */
AW_API ssize_t aw_stream_read_line(aw_stream_t *s, void *buf, size_t cap);

/* Write all n bytes. Returns 0 or < 0 (-EPIPE, -ECONNRESET, ...).
 * Suspends while the kernel's buffer is full. */
AW_API int aw_stream_write(aw_stream_t *s, const void *buf, size_t n);

/* Wait until what was written has been handed to the kernel. Writes are
 * never buffered in user space, so this only reports a broken or closed
 * stream (asyncio's drain()). A cancellation point. */
AW_API int aw_stream_flush(aw_stream_t *s);

/* Half-close: shut our write side (the peer reads end of stream); reads
 * go on. A plain stream never suspends; over TLS it first sends
 * close_notify, waiting for room as a write does (a cancellation point).
 * -EBUSY while another task is writing; -ENOTRECOVERABLE on a broken
 * stream (only close is left); -EBADF. */
AW_API int aw_stream_shutdown(aw_stream_t *s);

/* Close: release the socket and the buffer. Always releases; idempotent;
 * returns 0. A plain stream never suspends; a TLS stream may wait for the
 * socket to take close_notify, bounded by the exit's grace in a with-exit
 * (by the caller's deadlines otherwise), then releases anyway. */
AW_API int aw_stream_close(aw_stream_t *s);

/* Bytes buffered but not read yet. */
AW_API size_t aw_stream_buffered(const aw_stream_t *s);
/* Is the stream broken (see above)? */
AW_API bool aw_stream_broken(const aw_stream_t *s);

/* A manager that closes an already-open stream on exit (Python's
 * contextlib.aclosing): aw_with (aw_stream_t *s, aw_stream_closing(&st)). */
extern AW_API const aw_cm_type_t aw_stream_closing_type;
#define aw_stream_closing(s) aw_cm(&aw_stream_closing_type, (s))

#ifdef __cplusplus
}
#endif

#endif
