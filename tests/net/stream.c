/* tests for src/net/stream.c: buffered reads (some, exactly, until/line),
 * writes with back-pressure, half-close, close, and what an interrupted
 * operation does to the stream (SEMANTICS K2). Real TCP sockets on
 * 127.0.0.1; both ends live in the test's loop. */
#include "netutil.h"

#include <stdlib.h>

static int fds0;

/* ---- reads ---- */

static int t_read_some(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_write(&a, "hello", 5), 0);
    char buf[16];
    ssize_t n = aw_stream_read(&b, buf, sizeof buf);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    aw_stream_close(&a);
    cr_assert_eq(aw_stream_read(&b, buf, sizeof buf), 0, "end of stream reads 0");
    cr_assert_eq(aw_stream_read(&b, buf, sizeof buf), 0, "and stays at 0");
    aw_stream_close(&b);
    return 0;
}
Test(stream, read_some_then_eof) {
    fds0 = aw_test_fds();
    aw_test_run(t_read_some, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

static int t_exact_eof(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    cr_assert_eq(aw_stream_write(&a, "abc", 3), 0);
    aw_stream_close(&a);
    char buf[10];
    int rc = aw_stream_read_exactly(&b, buf, 10);
    cr_assert_eq(rc, -EPIPE);
    cr_assert(msg_has("connection closed after 3 of 10 bytes"), "%s", msg_now());
    aw_err_clear();
    aw_stream_close(&b);
    return 0;
}
Test(stream, read_exactly_eof_says_k_of_n) { aw_test_run(t_exact_eof, NULL, 0); }

static int t_exact_big(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    size_t n = 3 * AW_STREAM_BUF + 17;
    unsigned char *out = malloc(n), *in = malloc(n);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(i * 7);
    /* a small read first leaves bytes buffered: read_exactly uses them */
    cr_assert_eq(aw_stream_write(&a, "xy", 2), 0);
    char two[1];
    cr_assert_eq(aw_stream_read_exactly(&b, two, 1), 0);
    aw_with (aw_group_t *g, aw_group()) {
        (void)g;
        cr_assert_eq(aw_stream_write(&a, out, n), 0);
        cr_assert_eq(aw_stream_read_exactly(&b, in, 1), 0);
        cr_assert_eq(in[0], 'y');
        cr_assert_eq(aw_stream_read_exactly(&b, in, n), 0);
    }
    cr_assert_eq(memcmp(in, out, n), 0);
    free(out);
    free(in);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, read_exactly_larger_than_buffer) { aw_test_run(t_exact_big, NULL, 0); }

static int t_lines(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    const char *text = "first\nsecond line\n\nlast";
    cr_assert_eq(aw_stream_write(&a, text, strlen(text)), 0);
    aw_stream_close(&a);
    char line[64];
    cr_assert_eq(aw_stream_read_line(&b, line, sizeof line), 6);
    cr_assert_eq(memcmp(line, "first\n", 6), 0);
    cr_assert_eq(aw_stream_read_line(&b, line, sizeof line), 12);
    cr_assert_eq(aw_stream_read_line(&b, line, sizeof line), 1);
    cr_assert_eq(aw_stream_read_line(&b, line, sizeof line), -EPIPE, "a last line without newline");
    cr_assert(msg_has("closed after 4 bytes without a delimiter"), "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(aw_stream_buffered(&b), 4, "the partial record stays buffered");
    cr_assert_eq(aw_stream_read(&b, line, sizeof line), 4);
    cr_assert_eq(aw_stream_read_line(&b, line, sizeof line), 0, "clean end of stream");
    aw_stream_close(&b);
    return 0;
}
Test(stream, read_line_and_partial_last_line) { aw_test_run(t_lines, NULL, 0); }

static int t_until_limit(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    cr_assert_eq(aw_stream_write(&a, "0123456789abcdef\r\nok\r\n", 22), 0);
    char rec[8];
    ssize_t n = aw_stream_read_until(&b, rec, sizeof rec, "\r\n", 2);
    cr_assert_eq(n, -EMSGSIZE);
    cr_assert(msg_has("no delimiter within 8 bytes"), "%s", msg_now());
    aw_err_clear();
    cr_assert(!aw_stream_broken(&b), "a record too long does not break the stream");
    char big[32];
    cr_assert_eq(aw_stream_read_until(&b, big, sizeof big, "\r\n", 2), 18, "nothing was consumed");
    cr_assert_eq(aw_stream_read_until(&b, rec, sizeof rec, "\r\n", 2), 4);
    cr_assert_eq(memcmp(rec, "ok\r\n", 4), 0);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, read_until_limit_fails_cleanly) { aw_test_run(t_until_limit, NULL, 0); }

/* A line longer than the whole buffer: -EMSGSIZE, not a hang. */
static int t_line_huge(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    size_t n = AW_STREAM_BUF + 100;
    char *x = malloc(n);
    memset(x, 'x', n);
    char *line = malloc(n);
    aw_with (aw_group_t *g, aw_group()) {
        (void)g;
        cr_assert_eq(aw_stream_write(&a, x, n), 0);
        cr_assert_eq(aw_stream_read_line(&b, line, n), -EMSGSIZE);
        aw_err_clear();
    }
    free(x);
    free(line);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, read_line_longer_than_buffer) { aw_test_run(t_line_huge, NULL, 0); }

/* ---- writes ---- */

typedef struct {
    aw_stream_t *s;
    size_t n;
    int rc;
    bool done;
    int ticks_while_writing;
} wjob_t;

static int writer(void *arg) {
    wjob_t *w = arg;
    char *buf = malloc(w->n);
    for (size_t i = 0; i < w->n; i++)
        buf[i] = (char)(i % 251);
    w->rc = aw_stream_write(w->s, buf, w->n);
    w->done = true;
    free(buf);
    return w->rc;
}

static int ticker(void *arg) {
    wjob_t *w = arg;
    while (!w->done) {
        w->ticks_while_writing++;
        if (aw_sleep(AW_MS(1)) < 0)
            break;
    }
    return 0;
}

static int t_backpressure(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    wjob_t w = {.s = &a, .n = 32u << 20};
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, writer, &w, NULL);
        aw_spawn(g, ticker, &w, NULL);
        /* nobody reads yet: the writer must suspend, not buffer 32 MiB */
        wait_until(net_outq(a.fd) > 0 && w.ticks_while_writing > 2);
        cr_assert(!w.done, "a 32 MiB write to a peer that does not read cannot complete");
        char *buf = malloc(65536);
        size_t got = 0;
        bool ok = true;
        while (got < w.n) {
            ssize_t r = aw_stream_read(&b, buf, 65536);
            cr_assert_gt(r, 0);
            for (ssize_t i = 0; i < r; i++)
                ok &= buf[i] == (char)((got + (size_t)i) % 251);
            got += (size_t)r;
        }
        free(buf);
        cr_assert(ok, "bytes arrive in order");
    }
    cr_assert_eq(w.rc, 0);
    cr_assert(w.done);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, write_suspends_when_kernel_buffer_full) { aw_test_run(t_backpressure, NULL, 0); }

static int t_half_close(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    cr_assert_eq(aw_stream_write(&a, "ping", 4), 0);
    cr_assert_eq(aw_stream_shutdown(&a), 0);
    cr_assert_eq(aw_stream_write(&a, "x", 1), -EPIPE, "write after shutdown");
    cr_assert(msg_has("after shutdown"), "%s", msg_now());
    aw_err_clear();
    char buf[8];
    cr_assert_eq(aw_stream_read_exactly(&b, buf, 4), 0);
    cr_assert_eq(aw_stream_read(&b, buf, sizeof buf), 0, "the server sees end of stream");
    cr_assert_eq(aw_stream_write(&b, "pong", 4), 0, "and can still answer");
    cr_assert_eq(aw_stream_read_exactly(&a, buf, 4), 0);
    cr_assert_eq(memcmp(buf, "pong", 4), 0);
    cr_assert_eq(aw_stream_flush(&a), 0);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, half_close) { aw_test_run(t_half_close, NULL, 0); }

static int t_close_twice(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    aw_with (aw_stream_t *s, aw_stream_closing(&b))
        cr_assert_eq(aw_stream_write(s, "x", 1), 0);
    cr_assert_eq(b.fd, -1, "the closing manager closed it");
    cr_assert_eq(aw_stream_close(&b), 0, "close is idempotent");
    char c;
    cr_assert_eq(aw_stream_read(&b, &c, 1), -EBADF);
    cr_assert(msg_has("closed stream"), "%s", msg_now());
    aw_err_clear();
    aw_stream_close(&a);
    return 0;
}
Test(stream, closing_manager_and_idempotent_close) {
    fds0 = aw_test_fds();
    aw_test_run(t_close_twice, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* ---- interruption (SEMANTICS K2) ---- */

typedef struct {
    aw_stream_t *s;
    void *buf;
    size_t n;
    int rc;
    int kind; /* 0 read_exactly, 1 read, 2 write, 3 read_line */
} op_t;

static int op_task(void *arg) {
    op_t *o = arg;
    switch (o->kind) {
    case 0: o->rc = aw_stream_read_exactly(o->s, o->buf, o->n); break;
    case 1: o->rc = (int)aw_stream_read(o->s, o->buf, o->n); break;
    case 2: o->rc = aw_stream_write(o->s, o->buf, o->n); break;
    default: o->rc = (int)aw_stream_read_line(o->s, o->buf, o->n); break;
    }
    return o->rc == -ECANCELED ? 0 : o->rc;
}

/* Cancel `o` once `ready(a, b)` holds; return the stream-level result. */
static void run_and_cancel(op_t *o, aw_stream_t *peer, int (*ready)(op_t *, aw_stream_t *)) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_task_t *t;
        cr_assert_eq(aw_spawn(g, op_task, o, &t), 0);
        wait_until(ready(o, peer));
        aw_task_cancel(t);
        aw_task_join(t);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
}

static int all_read(op_t *o, aw_stream_t *peer) { return net_inq(o->s->fd) == 0 && aw_stream_buffered(o->s) == 0; }
static int some_sent(op_t *o, aw_stream_t *peer) { return net_inq(peer->fd) > 0 && net_outq(o->s->fd) > 0; }

static int t_cancel_mid_read(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    size_t n = 2 * AW_STREAM_BUF;
    char *buf = calloc(1, n), *half = calloc(1, n / 2);
    cr_assert_eq(aw_stream_write(&a, half, n / 2), 0);
    op_t o = {.s = &b, .buf = buf, .n = n, .kind = 0};
    run_and_cancel(&o, &a, all_read); /* half of it consumed, then cancelled */
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert(aw_stream_broken(&b), "read_exactly interrupted after progress breaks the stream");
    cr_assert_eq(aw_stream_read(&b, buf, 1), -ENOTRECOVERABLE);
    cr_assert(msg_has("broken stream") && msg_has("interrupted after 65536 of 131072 bytes"), "%s",
              msg_now());
    aw_err_clear();
    free(buf);
    free(half);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, K2_cancel_mid_read_breaks_stream) { aw_test_run(t_cancel_mid_read, NULL, 0); }

static int in_buffer(op_t *o, aw_stream_t *peer) { return net_inq(o->s->fd) == 0 && aw_stream_buffered(o->s) > 0; }
static int nothing(op_t *o, aw_stream_t *peer) { return 1; }

static int t_cancel_small_exact(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    char buf[100];
    cr_assert_eq(aw_stream_write(&a, "0123456789", 10), 0);
    op_t o = {.s = &b, .buf = buf, .n = 20, .kind = 0};
    run_and_cancel(&o, &a, in_buffer);
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert(!aw_stream_broken(&b), "small read_exactly keeps its bytes buffered: cancel-safe");
    cr_assert_eq(aw_stream_buffered(&b), 10);
    cr_assert_eq(aw_stream_write(&a, "abcdefghij", 10), 0);
    cr_assert_eq(aw_stream_read_exactly(&b, buf, 20), 0);
    cr_assert_eq(memcmp(buf, "0123456789abcdefghij", 20), 0);
    /* the same for a line */
    cr_assert_eq(aw_stream_write(&a, "partial", 7), 0);
    o = (op_t){.s = &b, .buf = buf, .n = sizeof buf, .kind = 3};
    run_and_cancel(&o, &a, in_buffer);
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert(!aw_stream_broken(&b));
    cr_assert_eq(aw_stream_write(&a, " line\n", 6), 0);
    cr_assert_eq(aw_stream_read_line(&b, buf, sizeof buf), 13);
    /* and a read that had nothing yet */
    o = (op_t){.s = &b, .buf = buf, .n = sizeof buf, .kind = 1};
    run_and_cancel(&o, &a, nothing);
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert(!aw_stream_broken(&b), "a read cancelled before any byte leaves the stream intact");
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, K2_cancel_without_progress_keeps_stream) { aw_test_run(t_cancel_small_exact, NULL, 0); }

static int t_cancel_mid_write(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    size_t n = 64u << 20;
    char *buf = calloc(1, n);
    op_t o = {.s = &a, .buf = buf, .n = n, .kind = 2};
    run_and_cancel(&o, &b, some_sent);
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert(aw_stream_broken(&a), "a write interrupted after progress breaks the stream");
    cr_assert_eq(aw_stream_write(&a, "x", 1), -ENOTRECOVERABLE);
    cr_assert(msg_has("write to interrupted after"), "%s", msg_now());
    aw_err_clear();
    free(buf);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, K2_cancel_mid_write_breaks_stream) { aw_test_run(t_cancel_mid_write, NULL, 0); }

/* K2: "only close is left" on a broken stream, so no half-close either:
 * its FIN would tell the peer that the cut write's bytes were a complete
 * message, ended cleanly. */
static int t_broken_shutdown(void *arg) {
    (void)arg;
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    size_t n = 64u << 20;
    char *buf = calloc(1, n);
    op_t o = {.s = &a, .buf = buf, .n = n, .kind = 2};
    run_and_cancel(&o, &b, some_sent);
    cr_assert(aw_stream_broken(&a));
    cr_assert_eq(aw_stream_shutdown(&a), -ENOTRECOVERABLE, "a broken stream refuses the half-close");
    cr_assert(msg_has("broken stream") && msg_has("write to interrupted after"), "%s", msg_now());
    aw_err_clear();
    /* the peer reads the cut bytes, then nothing: no end of stream */
    size_t got = 0;
    ssize_t r = 1;
    aw_with (aw_move_on_after(AW_MS(50)))
        while ((r = aw_stream_read(&b, buf, n)) > 0)
            got += (size_t)r;
    cr_assert_gt(got, 0);
    cr_assert_neq(r, 0, "the peer saw no clean end of stream after the cut");
    aw_err_clear();
    free(buf);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, K2_a_broken_stream_refuses_shutdown) { aw_test_run(t_broken_shutdown, NULL, 0); }

/* A deadline is an interruption like a cancel: the block fails with
 * -ETIMEDOUT and a stream that had progress is broken. */
static int t_deadline_mid_read(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    char buf[8];
    cr_assert_eq(aw_stream_write(&a, "1234", 4), 0);
    aw_with (aw_fail_after(AW_MS(20)))
        aw_stream_read_exactly(&b, buf, 8);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    cr_assert(!aw_stream_broken(&b));
    cr_assert_eq(aw_stream_write(&a, "5678", 4), 0);
    cr_assert_eq(aw_stream_read_exactly(&b, buf, 8), 0);
    cr_assert_eq(memcmp(buf, "12345678", 8), 0);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, deadline_during_read_exactly) { aw_test_run(t_deadline_mid_read, NULL, 0); }

/* ---- J8: an interrupted read_exactly / write never loses bytes silently ----
 * (tokio's read_exact and write_all drop what they had done when
 * cancelled.) Either every byte reaches the reader in order, or the
 * stream is broken, says exactly how far it got, and refuses to go on. */
static size_t after_k(const char *msg) {
    const char *p = msg ? strstr(msg, "after ") : NULL;
    size_t k = (size_t)-1;
    if (p)
        sscanf(p, "after %zu of", &k);
    return k;
}
static int t_j8(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    /* a small read_exactly cancelled with part of its bytes there: they
     * stay buffered and the next call returns all of them, in order */
    char small[20];
    cr_assert_eq(aw_stream_write(&a, "0123456789", 10), 0);
    op_t o = {.s = &b, .buf = small, .n = 20, .kind = 0};
    run_and_cancel(&o, &a, in_buffer);
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert_eq(aw_stream_write(&a, "abcdefghij", 10), 0);
    cr_assert_eq(aw_stream_read_exactly(&b, small, 20), 0);
    cr_assert_eq(memcmp(small, "0123456789abcdefghij", 20), 0, "no byte lost");
    /* a large read_exactly cancelled after consuming some: broken, with
     * the count, rather than handing later bytes out as the start */
    size_t n = 2 * AW_STREAM_BUF;
    char *buf = calloc(1, n);
    cr_assert_eq(aw_stream_write(&a, buf, n / 2), 0);
    o = (op_t){.s = &b, .buf = buf, .n = n, .kind = 0};
    run_and_cancel(&o, &a, all_read);
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert_eq(aw_stream_write(&a, buf, n / 2), 0); /* the rest arrives */
    cr_assert_eq(aw_stream_read_exactly(&b, buf, n / 2), -ENOTRECOVERABLE);
    cr_assert_eq(after_k(msg_now()), n / 2, "says how much was consumed: %s", msg_now());
    aw_err_clear();
    aw_stream_close(&a);
    aw_stream_close(&b);
    /* a write cancelled after sending some: broken, and the count it
     * reports is exactly what the peer receives */
    cr_assert_eq(net_pair(&a, &b), 0);
    size_t big = 64u << 20;
    char *out = calloc(1, big);
    o = (op_t){.s = &a, .buf = out, .n = big, .kind = 2};
    run_and_cancel(&o, &b, some_sent);
    cr_assert_eq(o.rc, -ECANCELED);
    cr_assert_eq(aw_stream_write(&a, "x", 1), -ENOTRECOVERABLE);
    size_t k = after_k(msg_now());
    cr_assert(k > 0 && k < big, "%s", msg_now());
    aw_err_clear();
    aw_stream_close(&a);
    size_t got = 0;
    ssize_t r;
    while ((r = aw_stream_read(&b, out, big)) > 0)
        got += (size_t)r;
    cr_assert_eq(r, 0);
    cr_assert_eq(got, k, "the peer got exactly the %zu bytes the broken stream reported", k);
    aw_stream_close(&b);
    free(out);
    free(buf);
    return 0;
}
Test(stream, J8_an_interrupted_read_exactly_or_write_never_loses_bytes_silently) {
    fds0 = aw_test_fds();
    aw_test_run(t_j8, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* A stream and a listener left open are reported at loop close, by peer
 * and address, and aw_main fails with -EBUSY (issue 10 item 9). */
#include "../capture.h"
#include <awith/tcp.h>
static aw_listener_t leaked_l;
static aw_stream_t leaked_s;
static int leave_socket_open(void *arg) {
    cr_assert_eq(aw_tcp_listen(&leaked_l, "127.0.0.1", 0, NULL), 0);
    cr_assert_eq(aw_tcp_connect(&leaked_s, "127.0.0.1", leaked_l.port), 0);
    return 0;
}
Test(stream, M9_a_stream_and_a_listener_left_open_are_reported_at_loop_close) {
    char err[2048];
    cr_assert_eq(aw_test_main_stderr(leave_socket_open, NULL, err, sizeof err), -EBUSY);
    cr_assert(strstr(err, "stream '127.0.0.1:"), "stderr: %s", err);
    cr_assert(strstr(err, "listener '127.0.0.1:"), "stderr: %s", err);
    close(leaked_s.fd);
    close(leaked_l.fd);
    free(leaked_s.buf);
}

/* ---- one reader and one writer at a time (Trio's BusyResourceError,
 * asyncio's "already waiting for incoming data") ----
 * A second operation in the same direction while one is suspended in it
 * would take the first one's bytes or put its own in the middle of them;
 * it is refused with -EBUSY, and the first one goes on untouched. */
static aw_stream_t busy_a, busy_b;
static char *busy_big;
enum { BUSY_BIG = 4 << 20 };
static int big_writer(void *arg) {
    (void)arg;
    return aw_stream_write(&busy_a, busy_big, BUSY_BIG);
}
static int t_second_writer(void *arg) {
    cr_assert_eq(net_pair(&busy_a, &busy_b), 0);
    busy_big = malloc(BUSY_BIG);
    memset(busy_big, 'A', BUSY_BIG);
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, big_writer, NULL, NULL);
        wait_until(net_outq(busy_a.fd) > 0);   /* the writer is suspended, buffer full */
        char *buf = malloc(1 << 20);
        size_t got = 0;
        while (got < (1 << 20)) {              /* make room: the kernel takes more */
            ssize_t r = aw_stream_read(&busy_b, buf, (1 << 20) - got);
            cr_assert_gt(r, 0);
            got += (size_t)r;
        }
        cr_assert_eq(aw_stream_write(&busy_a, "BBBB", 4), -EBUSY, "a second writer is refused");
        cr_assert(msg_has("another task is writing"), "%s", msg_now());
        aw_err_clear();
        cr_assert(!aw_stream_broken(&busy_a), "the refusal made no progress: the stream is intact");
        for (;;) {
            ssize_t r = aw_stream_read(&busy_b, buf, 1 << 20);
            cr_assert_gt(r, 0);
            for (ssize_t i = 0; i < r; i++)
                cr_assert_eq(buf[i], 'A', "byte %zu is not the first writer's", got + (size_t)i);
            got += (size_t)r;
            if (got == BUSY_BIG)
                break;
        }
        free(buf);
    }
    cr_assert_eq(aw_status(), 0, "the first writer finished: %s", msg_now());
    free(busy_big);
    aw_stream_close(&busy_a);
    aw_stream_close(&busy_b);
    return 0;
}
Test(stream, a_second_writer_while_one_is_suspended_is_refused_not_interleaved) {
    fds0 = aw_test_fds();
    aw_test_run(t_second_writer, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

static char busy_got[100];
static int exact_reader(void *arg) {
    (void)arg;
    return aw_stream_read_exactly(&busy_b, busy_got, sizeof busy_got);
}
static int t_second_reader(void *arg) {
    cr_assert_eq(net_pair(&busy_a, &busy_b), 0);
    char first[50], second[50], buf[100];
    memset(first, '1', sizeof first);
    memset(second, '2', sizeof second);
    aw_with (aw_group_t *g, aw_group()) {
        cr_assert_eq(aw_stream_write(&busy_a, first, sizeof first), 0);
        aw_spawn(g, exact_reader, NULL, NULL);
        wait_until(aw_stream_buffered(&busy_b) == 50); /* it holds 50 of its 100 */
        cr_assert_eq(aw_stream_read(&busy_b, buf, sizeof buf), -EBUSY, "a second reader is refused");
        cr_assert(msg_has("another task is reading"), "%s", msg_now());
        aw_err_clear();
        cr_assert_eq(aw_stream_read_line(&busy_b, buf, sizeof buf), -EBUSY);
        aw_err_clear();
        cr_assert_eq(aw_stream_write(&busy_a, second, sizeof second), 0);
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(memcmp(busy_got, first, 50), 0);
    cr_assert_eq(memcmp(busy_got + 50, second, 50), 0, "the first reader got all its bytes");
    /* either direction alone is no conflict; after it, a read is fine */
    cr_assert_eq(aw_stream_write(&busy_a, "x", 1), 0);
    cr_assert_eq(aw_stream_read(&busy_b, buf, 1), 1);
    aw_stream_close(&busy_a);
    aw_stream_close(&busy_b);
    return 0;
}
Test(stream, a_second_reader_while_one_is_suspended_is_refused) {
    fds0 = aw_test_fds();
    aw_test_run(t_second_reader, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* The same rule where a user meets it: the first reader waits inside a
 * move-on scope; while it waits a second read is refused, and once its
 * scope has moved on (nothing consumed, the stream intact) the direction
 * is free again and the next read gets the bytes. */
static int busy_moved_on = 1;
static int reader_moving_on(void *arg) {
    char b[8];
    aw_with (aw_move_on_after(AW_MS(20)))
        busy_moved_on = (int)aw_stream_read(&busy_b, b, sizeof b);
    return aw_status();
}
static int t_busy_then_moved_on(void *arg) {
    cr_assert_eq(net_pair(&busy_a, &busy_b), 0);
    char buf[8];
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, reader_moving_on, NULL, NULL);
        aw_sleep_ms(1); /* it waits */
        cr_assert_eq(aw_stream_read(&busy_b, buf, sizeof buf), -EBUSY);
        aw_err_clear();
    }
    cr_assert_eq(aw_status(), 0, "%s", msg_now());
    cr_assert_eq(busy_moved_on, -ECANCELED, "its scope moved on");
    cr_assert(!aw_stream_broken(&busy_b));
    cr_assert_eq(aw_stream_write(&busy_a, "late", 4), 0);
    cr_assert_eq(aw_stream_read(&busy_b, buf, sizeof buf), 4, "the direction is free again: %s", msg_now());
    aw_stream_close(&busy_a);
    aw_stream_close(&busy_b);
    return 0;
}
Test(stream, a_reader_cut_by_its_move_on_frees_the_direction_for_the_next) {
    fds0 = aw_test_fds();
    aw_test_run(t_busy_then_moved_on, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* stream.h's one-writer rule covers the half-close too (Trio's send_eof
 * raises BusyResourceError while a send_all runs): shutting the write
 * side under a writer suspended halfway through its bytes would cut them
 * short and let the peer read the cut as a clean end of stream. The
 * shutdown is refused with -EBUSY and the writer finishes intact. */
static int t_shutdown_under_writer(void *arg) {
    (void)arg;
    cr_assert_eq(net_pair(&busy_a, &busy_b), 0);
    busy_big = malloc(BUSY_BIG);
    memset(busy_big, 'A', BUSY_BIG);
    size_t got = 0;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, big_writer, NULL, NULL);
        wait_until(net_outq(busy_a.fd) > 0); /* the writer is suspended, buffer full */
        cr_assert_eq(aw_stream_shutdown(&busy_a), -EBUSY, "a half-close under a writer is refused");
        cr_assert(msg_has("another task is writing"), "%s", msg_now());
        aw_err_clear();
        char *buf = malloc(1 << 20);
        ssize_t r;
        while (got < BUSY_BIG && (r = aw_stream_read(&busy_b, buf, 1 << 20)) > 0)
            got += (size_t)r;
        free(buf);
    }
    cr_assert_eq(aw_status(), 0, "the writer finished: %s", msg_now());
    cr_assert_eq(got, (size_t)BUSY_BIG, "every byte arrived");
    cr_assert_eq(aw_stream_shutdown(&busy_a), 0, "once the writer is done, the half-close works");
    char c;
    cr_assert_eq(aw_stream_read(&busy_b, &c, 1), 0);
    free(busy_big);
    aw_stream_close(&busy_a);
    aw_stream_close(&busy_b);
    return 0;
}
Test(stream, stream_h_a_shutdown_while_another_task_writes_is_refused) {
    fds0 = aw_test_fds();
    aw_test_run(t_shutdown_under_writer, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* ---- ports of Trio's check_half_closeable_stream and CPython's
 * test_streams (asserting what they assert, as error codes) ---- */

typedef struct {
    aw_stream_t *s;
    int kind; /* 0 read, 1 write of 16 MiB */
    ssize_t rc;
} blk_t;
static int blocked_op(void *arg) {
    blk_t *o = arg;
    if (o->kind == 0) {
        char c;
        o->rc = aw_stream_read(o->s, &c, 1);
    } else {
        size_t n = 16 << 20;
        char *x = calloc(1, n);
        o->rc = aw_stream_write(o->s, x, n);
        free(x);
    }
    aw_err_clear();
    return 0;
}

/* Trio: closing a stream while another task is blocked in receive_some or
 * send_all wakes it with ClosedResourceError (here -EBADF); the stream is
 * then closed, later operations fail the same way, close stays a no-op. */
static int t_close_while_blocked(void *arg) {
    for (int kind = 0; kind < 2; kind++) {
        aw_stream_t a, b;
        cr_assert_eq(net_pair(&a, &b), 0);
        blk_t o = {.s = &a, .kind = kind, .rc = 1};
        aw_with (aw_group_t *g, aw_group()) {
            cr_assert_eq(aw_spawn(g, blocked_op, &o, NULL), 0);
            aw_sleep(AW_MS(20));
            cr_assert_eq(o.rc, 1, "the %s is blocked", kind ? "write" : "read");
            cr_assert_eq(aw_stream_close(&a), 0);
        }
        cr_assert_eq(aw_status(), 0, "%s", msg_now());
        cr_assert_eq(o.rc, -EBADF, "kind %d: %zd", kind, o.rc);
        cr_assert_eq(aw_stream_write(&a, "", 0), -EBADF, "send_all(b'') on a closed stream");
        aw_err_clear();
        char c;
        cr_assert_eq(aw_stream_read(&a, &c, 1), -EBADF);
        aw_err_clear();
        cr_assert_eq(aw_stream_close(&a), 0);
        aw_stream_close(&b);
    }
    return 0;
}
Test(stream, trio_check_half_closeable_stream_close_while_blocked) {
    fds0 = aw_test_fds();
    aw_test_run(t_close_while_blocked, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds0);
}

/* Trio: send_eof twice is fine; send_all after it is ClosedResourceError
 * (-EPIPE "after shutdown"), even of nothing; the peer reads b"" again and
 * again; the other direction still works. */
static int t_send_eof_twice(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    cr_assert_eq(aw_stream_write(&a, "x", 1), 0);
    cr_assert_eq(aw_stream_shutdown(&a), 0);
    cr_assert_eq(aw_stream_shutdown(&a), 0, "%s", msg_now());
    cr_assert_eq(aw_stream_write(&a, "", 0), -EPIPE);
    aw_err_clear();
    char buf[4];
    cr_assert_eq(aw_stream_read(&b, buf, sizeof buf), 1);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(aw_stream_read(&b, buf, sizeof buf), 0);
    cr_assert_eq(aw_stream_write(&b, "y", 1), 0);
    cr_assert_eq(aw_stream_read(&a, buf, sizeof buf), 1);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, trio_check_half_closeable_stream_send_eof_twice) { aw_test_run(t_send_eof_twice, NULL, 0); }

/* CPython test_readexactly_zero_or_less, test_readline_empty_eof,
 * test_readuntil_multi_chunks(_1): readexactly(0) is b'' (even at EOF),
 * readline at EOF is b'', and a multi-byte separator split across
 * chunks is found. */
static int t_cpython_chunks(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    char buf[64];
    const char *chunks[] = {"QWEaa", "XYaa", "a", "aa", "a", "Xaaa", "aaa"};
    aw_with (aw_group_t *g, aw_group()) {
        (void)g;
        for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
            cr_assert_eq(aw_stream_write(&a, chunks[i], strlen(chunks[i])), 0);
            aw_sleep(AW_MS(2));
        }
        aw_stream_close(&a);
    }
    cr_assert_eq(aw_stream_read_until(&b, buf, sizeof buf, "aaa", 3), 10);
    cr_assert_eq(memcmp(buf, "QWEaaXYaaa", 10), 0);
    cr_assert_eq(aw_stream_read_until(&b, buf, sizeof buf, "aaa", 3), 3, "aaa");
    cr_assert_eq(aw_stream_read_until(&b, buf, sizeof buf, "aaa", 3), 4, "Xaaa");
    cr_assert_eq(aw_stream_read_until(&b, buf, sizeof buf, "aaa", 3), 3);
    cr_assert_eq(aw_stream_read_exactly(&b, buf, 0), 0);
    cr_assert_eq(aw_stream_read_line(&b, buf, sizeof buf), 0);
    cr_assert_eq(aw_stream_read_exactly(&b, buf, 0), 0, "readexactly(0) at EOF");
    aw_stream_close(&b);
    return 0;
}
Test(stream, cpython_readuntil_multi_chunks_and_empty_eof) { aw_test_run(t_cpython_chunks, NULL, 0); }

/* CPython test_readuntil_limit_found_sep / test_readline_limit: a record
 * whose separator ends exactly at the limit is returned; one byte over
 * is refused and nothing is consumed (LimitOverrunError). */
static int t_cpython_limit(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    cr_assert_eq(aw_stream_write(&a, "abcAAA", 6), 0);
    char buf[8];
    wait_until(net_inq(b.fd) == 6);
    cr_assert_eq(aw_stream_read_until(&b, buf, 5, "AAA", 3), -EMSGSIZE);
    aw_err_clear();
    cr_assert_eq(aw_stream_read_until(&b, buf, 6, "AAA", 3), 6, "%s", msg_now());
    cr_assert_eq(aw_stream_write(&a, "1234567\n", 8), 0);
    cr_assert_eq(aw_stream_read_line(&b, buf, 7), -EMSGSIZE);
    aw_err_clear();
    cr_assert_eq(aw_stream_buffered(&b) + (size_t)net_inq(b.fd), 8);
    cr_assert_eq(aw_stream_read_line(&b, buf, 8), 8);
    aw_stream_close(&a);
    aw_stream_close(&b);
    return 0;
}
Test(stream, cpython_readuntil_limit_found_sep) { aw_test_run(t_cpython_limit, NULL, 0); }

/* CPython test_readuntil_separator and test_readexactly_eof: an empty
 * separator is refused (ValueError: -EINVAL) with nothing consumed; EOF
 * inside readexactly is IncompleteReadError (-EPIPE) whose partial bytes
 * are in buf (stream.h: "the k bytes are consumed"). */
static int t_cpython_sep(void *arg) {
    aw_stream_t a, b;
    cr_assert_eq(net_pair(&a, &b), 0);
    cr_assert_eq(aw_stream_write(&a, "chunk", 5), 0);
    aw_stream_close(&a);
    char buf[16] = {0};
    cr_assert_eq(aw_stream_read_until(&b, buf, sizeof buf, "", 0), -EINVAL);
    aw_err_clear();
    cr_assert_eq(aw_stream_read_exactly(&b, buf, 10), -EPIPE);
    cr_assert(msg_has("after 5 of 10 bytes"), "%s", msg_now());
    aw_err_clear();
    cr_assert_eq(memcmp(buf, "chunk", 5), 0, "the partial bytes");
    cr_assert_eq(aw_stream_read(&b, buf, sizeof buf), 0);
    aw_stream_close(&b);
    return 0;
}
Test(stream, cpython_readuntil_separator_and_readexactly_eof) { aw_test_run(t_cpython_sep, NULL, 0); }
