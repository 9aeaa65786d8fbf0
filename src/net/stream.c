/* stream.c: buffered byte streams over connected sockets.
 *
 * The hot path (aw_stream_read / aw_stream_write with data or room
 * available) is one checkpoint and one syscall: recv/send are tried first
 * and the task waits (aw_fd_wait, edge-triggered, no epoll_ctl per wait)
 * only after EAGAIN. No malloc per operation: the read buffer is allocated
 * once, on the first operation that needs it.
 *
 * Partial progress and interruption: see stream.h. `aw__stream_break`
 * records what broke a stream; later operations report it. */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/fd.h>
#include <awith/stream.h>

#include "net.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void aw_stream_init(aw_stream_t *s, int fd, const char *peer) {
    memset(s, 0, offsetof(aw_stream_t, why));
    s->fd = fd;
    s->why[0] = 0;
    if (peer)
        snprintf(s->peer, sizeof s->peer, "%s", peer);
    else
        snprintf(s->peer, sizeof s->peer, "fd %d", fd);
    aw_track_open(&s->track, "stream", "%s", s->peer); /* -ENOMEM: untracked */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

__attribute__((format(printf, 3, 4)))
void aw__stream_break(aw_stream_t *s, int code, const char *fmt, ...) {
    if (s->broken)
        return;
    s->broken = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
}

/* Can an operation start? 0, or the error (raised). */
static int aw__stream_check(aw_stream_t *s, const char *op) {
    if (s->fd < 0)
        return aw_raise(-EBADF, "%s on a closed stream (%s)", op, s->peer);
    if (s->broken)
        return aw_raise(-ENOTRECOVERABLE, "%s on a broken stream to %s (%s): close it", op,
                        s->peer, s->why);
    return aw_checkpoint();
}

/* The directions of aw_stream_t.busy. */
enum { AW__STREAM_READING = 1, AW__STREAM_WRITING = 2 };

/* Start an operation in direction dir: as aw__stream_check, and refused
 * while another task is suspended in the same direction, whose bytes the
 * new one would take or interleave with (Trio's BusyResourceError).
 * Marks the direction busy until aw__stream_end. */
static int aw__stream_begin(aw_stream_t *s, const char *op, int dir) {
    int rc = aw__stream_check(s, op);
    if (rc < 0)
        return rc;
    if (s->busy & dir)
        return aw_raise(-EBUSY, "%s %s: another task is %s this stream (one reader and one writer at a time)",
                        op, s->peer, dir == AW__STREAM_READING ? "reading" : "writing");
    s->busy |= (uint8_t)dir;
    return 0;
}
static inline void aw__stream_end(aw_stream_t *s, int dir) { s->busy &= (uint8_t)~dir; }

/* A failed or interrupted operation: raise rc with a message, and break
 * the stream if it made progress or the connection itself failed. */
static int aw__stream_fail(aw_stream_t *s, int rc, const char *op, size_t done, size_t want) {
    bool interrupted = rc == -ECANCELED || rc == -ETIMEDOUT;
    /* An operation starts only on an intact stream: broken now with this
     * code, the transport broke it (TLS), and its reason says more. */
    if (s->broken == rc && !interrupted)
        return aw_raise(rc, "%s %s: %s (%s)", op, s->peer, aw_strerror(rc), s->why);
    if (done > 0 || !interrupted)
        aw__stream_break(s, rc, "%s %s after %zu of %zu bytes", op,
                         interrupted ? "interrupted" : aw_strerror(rc), done, want);
    if (interrupted)
        return rc; /* already raised by the wait */
    return aw_raise(rc, "%s %s: %s", op, s->peer, aw_strerror(rc));
}

/* recv once into p[0..n): count, 0 at EOF, or -errno (-EAGAIN never:
 * waits). The wait's -ECANCELED is returned as is. */
static ssize_t aw__stream_recv(aw_stream_t *s, void *p, size_t n) {
    if (s->io)
        return s->io->recv(s, p, n);
    if (s->drained) {
        /* The last recv returned less than asked: the socket was empty
         * then, and new data brings a new edge, which the reactor keeps
         * for us. Waiting first saves the recv that would say EAGAIN
         * (one syscall per request-response round trip). */
        int rc = aw_fd_wait(s->fd, AW_READ);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        ssize_t r = recv(s->fd, p, n, 0);
        if (r >= 0) {
            s->drained = r > 0 && (size_t)r < n;
            return r;
        }
        s->drained = 0;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        int rc = aw_fd_wait(s->fd, AW_READ);
        if (rc < 0)
            return rc;
    }
}

static int aw__stream_buf(aw_stream_t *s) {
    if (s->buf)
        return 0;
    s->buf = aw__malloc(AW_STREAM_BUF);
    if (!s->buf)
        return aw_raise(-ENOMEM, "stream to %s: no memory for a read buffer", s->peer);
    s->rpos = s->wpos = 0;
    return 0;
}

/* Read more into the buffer (compacting it first if its end is reached).
 * Returns the count, 0 at EOF, or < 0. */
static ssize_t aw__stream_fill(aw_stream_t *s) {
    if (s->eof)
        return 0;
    if (s->rpos == s->wpos)
        s->rpos = s->wpos = 0;
    else if (s->wpos == AW_STREAM_BUF && s->rpos > 0) {
        memmove(s->buf, s->buf + s->rpos, s->wpos - s->rpos);
        s->wpos -= s->rpos;
        s->rpos = 0;
    }
    if (s->wpos == AW_STREAM_BUF)
        return -ENOBUFS;
    ssize_t r = aw__stream_recv(s, s->buf + s->wpos, AW_STREAM_BUF - s->wpos);
    if (r > 0)
        s->wpos += (uint32_t)r;
    else if (r == 0)
        s->eof = 1;
    return r;
}

static ssize_t stream_read(aw_stream_t *s, void *buf, size_t n) {
    if (n == 0)
        return 0;
    size_t have = s->wpos - s->rpos;
    if (have) {
        if (have > n)
            have = n;
        memcpy(buf, s->buf + s->rpos, have);
        s->rpos += (uint32_t)have;
        return (ssize_t)have;
    }
    if (s->eof)
        return 0;
    ssize_t r = aw__stream_recv(s, buf, n);
    if (r == 0)
        s->eof = 1;
    if (r < 0)
        return aw__stream_fail(s, (int)r, "read from", 0, n);
    return r;
}

static int stream_read_exactly(aw_stream_t *s, void *buf, size_t n) {
    int rc;
    char *p = buf;
    if (n == 0)
        return 0;
    if (n <= AW_STREAM_BUF) {
        /* cancel-safe: the bytes stay buffered until all n are there */
        if (s->wpos - s->rpos < n && (rc = aw__stream_buf(s)) < 0)
            return rc;
        while (s->wpos - s->rpos < n) {
            if (s->wpos == AW_STREAM_BUF || AW_STREAM_BUF - s->rpos < n) {
                memmove(s->buf, s->buf + s->rpos, s->wpos - s->rpos);
                s->wpos -= s->rpos;
                s->rpos = 0;
            }
            ssize_t r = aw__stream_fill(s);
            if (r == 0) {
                size_t k = s->wpos - s->rpos;
                memcpy(p, s->buf + s->rpos, k);
                s->rpos = s->wpos;
                return aw_raise(-EPIPE, "read from %s: connection closed after %zu of %zu bytes",
                                s->peer, k, n);
            }
            if (r < 0)
                return aw__stream_fail(s, (int)r, "read_exactly from", 0, n);
        }
        memcpy(p, s->buf + s->rpos, n);
        s->rpos += (uint32_t)n;
        return 0;
    }
    size_t done = s->wpos - s->rpos;
    if (done)
        memcpy(p, s->buf + s->rpos, done);
    s->rpos = s->wpos;
    while (done < n) {
        if (s->eof)
            return aw_raise(-EPIPE, "read from %s: connection closed after %zu of %zu bytes",
                            s->peer, done, n);
        ssize_t r = aw__stream_recv(s, p + done, n - done);
        if (r < 0)
            return aw__stream_fail(s, (int)r, "read_exactly from", done, n);
        if (r == 0)
            s->eof = 1;
        done += (size_t)r;
    }
    return 0;
}

static ssize_t stream_read_until(aw_stream_t *s, void *buf, size_t cap, const void *delim, size_t dlen) {
    int rc;
    if (dlen == 0)
        return aw_raise(-EINVAL, "read_until: empty delimiter");
    if ((rc = aw__stream_buf(s)) < 0)
        return rc;
    size_t limit = cap < AW_STREAM_BUF ? cap : AW_STREAM_BUF;
    size_t scanned = 0; /* bytes after rpos known not to start a delimiter */
    for (;;) {
        size_t have = s->wpos - s->rpos;
        const char *base = s->buf + s->rpos;
        if (have >= dlen) {
            const char *hit = memmem(base + scanned, have - scanned, delim, dlen);
            if (hit) {
                size_t len = (size_t)(hit - base) + dlen;
                if (len > limit)
                    break;
                memcpy(buf, base, len);
                s->rpos += (uint32_t)len;
                return (ssize_t)len;
            }
            scanned = have - dlen + 1;
        }
        if (have >= limit)
            break;
        ssize_t r = aw__stream_fill(s);
        if (r == 0) {
            if (s->wpos == s->rpos)
                return 0;
            return aw_raise(-EPIPE,
                            "read from %s: connection closed after %zu bytes without a delimiter",
                            s->peer, (size_t)(s->wpos - s->rpos));
        }
        if (r < 0)
            return aw__stream_fail(s, (int)r, "read_until from", 0, limit);
    }
    return aw_raise(-EMSGSIZE, "read from %s: no delimiter within %zu bytes", s->peer, limit);
}

ssize_t aw_stream_read(aw_stream_t *s, void *buf, size_t n) {
    int rc = aw__stream_begin(s, "read", AW__STREAM_READING);
    if (rc < 0)
        return rc;
    ssize_t r = stream_read(s, buf, n);
    aw__stream_end(s, AW__STREAM_READING);
    return r;
}

int aw_stream_read_exactly(aw_stream_t *s, void *buf, size_t n) {
    int rc = aw__stream_begin(s, "read_exactly", AW__STREAM_READING);
    if (rc < 0)
        return rc;
    rc = stream_read_exactly(s, buf, n);
    aw__stream_end(s, AW__STREAM_READING);
    return rc;
}

ssize_t aw_stream_read_until(aw_stream_t *s, void *buf, size_t cap, const void *delim, size_t dlen) {
    int rc = aw__stream_begin(s, "read_until", AW__STREAM_READING);
    if (rc < 0)
        return rc;
    ssize_t r = stream_read_until(s, buf, cap, delim, dlen);
    aw__stream_end(s, AW__STREAM_READING);
    return r;
}

ssize_t aw_stream_read_line(aw_stream_t *s, void *buf, size_t cap) {
    return aw_stream_read_until(s, buf, cap, "\n", 1);
}

static int stream_write(aw_stream_t *s, const void *buf, size_t n) {
    int rc;
    if (s->wshut)
        return aw_raise(-EPIPE, "write to %s after shutdown", s->peer);
    const char *p = buf;
    size_t done = 0;
    while (done < n) {
        if (s->io) {
            ssize_t r = s->io->send(s, p + done, n - done);
            if (r < 0)
                return aw__stream_fail(s, (int)r, "write to", done, n);
            done += (size_t)r;
            continue;
        }
        ssize_t r = send(s->fd, p + done, n - done, MSG_NOSIGNAL);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == EAGAIN || e == EWOULDBLOCK) {
            rc = aw_fd_wait(s->fd, AW_WRITE);
            if (rc < 0)
                return aw__stream_fail(s, rc, "write to", done, n);
            continue;
        }
        return aw__stream_fail(s, -e, "write to", done, n);
    }
    return 0;
}

int aw_stream_write(aw_stream_t *s, const void *buf, size_t n) {
    int rc = aw__stream_begin(s, "write", AW__STREAM_WRITING);
    if (rc < 0)
        return rc;
    rc = stream_write(s, buf, n);
    aw__stream_end(s, AW__STREAM_WRITING);
    return rc;
}

int aw_stream_flush(aw_stream_t *s) { return aw__stream_check(s, "flush"); }

int aw_stream_shutdown(aw_stream_t *s) {
    if (s->fd < 0)
        return aw_raise(-EBADF, "shutdown of a closed stream (%s)", s->peer);
    if (s->wshut)
        return 0;
    if (s->broken) /* K2: only close is left; a FIN would end the cut bytes cleanly */
        return aw_raise(-ENOTRECOVERABLE, "shutdown on a broken stream to %s (%s): close it",
                        s->peer, s->why);
    /* The half-close is a write: under a writer suspended halfway it would
     * cut its bytes short, the peer reading the cut as a clean end. */
    if (s->busy & AW__STREAM_WRITING)
        return aw_raise(-EBUSY, "shutdown %s: another task is writing this stream (one reader "
                        "and one writer at a time)", s->peer);
    s->wshut = 1;
    if (s->io)
        return s->io->shutdown(s);
    if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
        int e = errno;
        return aw_raise(-e, "shutdown %s: %s", s->peer, aw_strerror(-e));
    }
    return 0;
}

int aw_stream_close(aw_stream_t *s) {
    if (s->io) {
        s->io->close(s); /* sends close_notify if it can without waiting */
        s->io = NULL;
        s->io_ctx = NULL;
    }
    if (s->fd >= 0) {
        aw_fd_forget(s->fd);
        close(s->fd);
        s->fd = -1;
    }
    aw__free(s->buf);
    s->buf = NULL;
    s->rpos = s->wpos = 0;
    aw_track_close(&s->track);
    return 0;
}

size_t aw_stream_buffered(const aw_stream_t *s) { return s->wpos - s->rpos; }
bool aw_stream_broken(const aw_stream_t *s) { return s->broken != 0; }

static int aw__closing_enter(void *self, void **out) {
    *out = self;
    return 0;
}
int aw__stream_cm_exit(void *self, const aw_err_t *err) {
    (void)err;
    return aw_stream_close(self); /* self starts with the stream (net.h) */
}
const aw_cm_type_t aw_stream_closing_type = {"stream", aw__closing_enter, aw__stream_cm_exit,
                                             AW_CM_SHARED, 0};
