/* echo_uv.c: the libuv peer of bench-echo: `echo_uv PORT`, an echo server
 * on 127.0.0.1 written the usual libuv way (alloc_cb from a per-connection
 * buffer, uv_try_write first, uv_write when the kernel is full). */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
    uv_tcp_t tcp;
    char buf[4096];
} conn_t;

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} wreq_t;

static uv_loop_t *loop;

static void on_close(uv_handle_t *h) { free(h); }

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
    conn_t *c = (conn_t *)h;
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_written(uv_write_t *req, int status) {
    wreq_t *w = (wreq_t *)req;
    free(w->buf.base);
    free(w);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (n == 0)
        return;
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    int r = uv_try_write(s, &b, 1);
    if (r == n)
        return;
    if (r < 0)
        r = 0;
    wreq_t *w = malloc(sizeof *w);
    w->buf = uv_buf_init(malloc((size_t)n - (size_t)r), (unsigned)(n - r));
    memcpy(w->buf.base, buf->base + r, (size_t)(n - r));
    uv_write(&w->req, s, &w->buf, 1, on_written);
}

static void on_conn(uv_stream_t *server, int status) {
    if (status < 0)
        return;
    conn_t *c = malloc(sizeof *c);
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
        uv_tcp_nodelay(&c->tcp, 1);
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

int main(int argc, char **argv) {
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 7000, &addr);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) ||
        uv_listen((uv_stream_t *)&server, 1024, on_conn))
        return 1;
    return uv_run(loop, UV_RUN_DEFAULT);
}
