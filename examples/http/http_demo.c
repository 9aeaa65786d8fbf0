/* examples/http/http_demo.c -- the seeds' aiohttp examples.
 *
 * Seed 001:
 *     async with aiohttp.ClientSession() as session:
 *         async with session.get('https://example.com') as resp:
 *             print(await resp.text())
 * Seed 004: a class-style manager AsyncHTTPClient(url) whose __aenter__
 * opens a session and GETs the URL, __aexit__ releases the response and
 * closes the session; an async generator async_fetch(urls) yielding each
 * page's text; then the same pages fetched concurrently with fetch-many
 * and a progress line.
 *
 * The pages come from a tiny HTTP/1.1 server (keep-alive) that runs as
 * tasks of the same loop, in a task group the example cancels at its end. */
#include <awith.h>
#include <awith/http.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_demo.h"

/* ---- the tiny server ---- */

static int demo_send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && errno == EAGAIN) {
            int rc = aw_fd_wait(fd, AW_WRITE);
            if (rc < 0)
                return rc;
        } else {
            return -errno;
        }
    }
    return 0;
}

/* One connection: requests one after another (keep-alive). */
static int demo_serve_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char req[4096];
    size_t got = 0;
    for (;;) {
        char *end = got ? memmem(req, got, "\r\n\r\n", 4) : NULL;
        if (!end) {
            if (got == sizeof req)
                break;
            ssize_t k = recv(fd, req + got, sizeof req - got, 0);
            if (k > 0) {
                got += (size_t)k;
                continue;
            }
            if (k < 0 && errno == EAGAIN && aw_fd_wait(fd, AW_READ) == 0)
                continue;
            break; /* closed, error or cancelled */
        }
        char path[128] = "/";
        sscanf(req, "%*s %127s", path);
        char body[256], head[256];
        int bl = snprintf(body, sizeof body, "<html><title>%s</title>page %s from the tiny server</html>",
                          path, path);
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n", bl);
        if (demo_send_all(fd, head, (size_t)hl) < 0 || demo_send_all(fd, body, (size_t)bl) < 0)
            break;
        size_t used = (size_t)(end + 4 - req);
        memmove(req, req + used, got - used);
        got -= used;
    }
    aw_fd_forget(fd);
    close(fd);
    return 0;
}

typedef struct demo_server {
    int lfd;
    aw_group_t *g;
    char url[64];
} demo_server_t;

static int demo_accept(void *arg) {
    demo_server_t *srv = arg;
    for (;;) {
        int c = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            if (aw_spawn(srv->g, demo_serve_conn, (void *)(intptr_t)c, NULL) < 0)
                close(c);
        } else if (errno != EAGAIN || aw_fd_wait(srv->lfd, AW_READ) < 0) {
            break;
        }
    }
    aw_fd_forget(srv->lfd);
    close(srv->lfd);
    return 0;
}

/* Listen on 127.0.0.1 (a free port) and serve in group g. */
static int demo_server_start(demo_server_t *srv, aw_group_t *g) {
    srv->g = g;
    srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (srv->lfd < 0 || bind(srv->lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(srv->lfd, 128) < 0 || getsockname(srv->lfd, (struct sockaddr *)&a, &len) < 0) {
        int rc = -errno;
        if (srv->lfd >= 0)
            close(srv->lfd);
        return aw_raise(rc, "demo server: cannot listen on 127.0.0.1: %s", aw_strerror(rc));
    }
    snprintf(srv->url, sizeof srv->url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    return aw_spawn(g, demo_accept, srv, NULL);
}

/* ---- seed 001 ---- */

static int seed001(const char *url) {
    aw_with (aw_http_session_t *session, aw_http_session()) {
        aw_with (aw_http_response_t *resp, aw_http_get(session, url)) {
            const char *text;
            if (aw_http_response_text(resp, 0, &text, NULL) < 0)
                break;
            printf("%s\n", text);
        }
    }
    return aw_status();
}

int example_http_get(void *arg) {
    (void)arg;
    demo_server_t srv;
    aw_with (aw_group_t *g, aw_group()) {
        if (demo_server_start(&srv, g) < 0)
            break;
        char url[96];
        snprintf(url, sizeof url, "%s/index.html", srv.url);
        seed001(url);
        aw_group_cancel(g); /* stop the server */
    }
    return aw_status();
}

/* ---- seed 004 ---- */

/* class AsyncHTTPClient: __aenter__ opens a session and GETs the URL,
 * returning the response; __aexit__ releases it and closes the session. */
typedef struct async_http_client {
    const char *url;
    aw_http_session_t *session;
    aw_http_response_t *response;
} async_http_client;

static int client_enter(void *self, void **out) {
    async_http_client *c = self;
    int rc = aw_http_session_open(&c->session, NULL);
    if (rc < 0)
        return rc;
    rc = aw_http_request(c->session, &(aw_http_request_t){.url = c->url}, &c->response);
    if (rc < 0) { /* enter is atomic: release what was acquired */
        aw_http_session_close(c->session);
        return rc;
    }
    *out = c->response;
    return 0;
}

static int client_exit(void *self, const aw_err_t *err) {
    (void)err;
    async_http_client *c = self;
    aw_http_response_close(c->response); /* await self.response.release() */
    return aw_http_session_close(c->session); /* await self.session.close() */
}

static const aw_cm_type_t async_http_client_type = {"AsyncHTTPClient", client_enter, client_exit};

/* async def async_fetch(urls): for url in urls: async with
 * AsyncHTTPClient(url) as response: yield await response.text() */
typedef struct {
    const char *const *urls;
    size_t n;
} fetch_args;

static int async_fetch(aw_gen_t *g, void *arg) {
    fetch_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        int stop = 0;
        aw_with (aw_http_response_t *response,
                 aw_cm_temp(&async_http_client_type, (async_http_client){.url = a->urls[i]})) {
            const char *data;
            if (aw_http_response_text(response, 0, &data, NULL) < 0)
                break;
            stop = aw_gen_yield(g, (void *)data) < 0;
        }
        if (stop || aw_status() < 0)
            break;
    }
    return aw_status();
}

int example_http_fetch(void *arg) {
    (void)arg;
    demo_server_t srv;
    aw_with (aw_group_t *g, aw_group()) {
        if (demo_server_start(&srv, g) < 0)
            break;
        enum { N = 24 };
        char buf[N][96];
        const char *urls[N];
        for (int i = 0; i < N; i++) {
            snprintf(buf[i], sizeof buf[i], "%s/page/%d", srv.url, i);
            urls[i] = buf[i];
        }
        /* the seed: three URLs, one after another */
        aw_for (const char *data, aw_gen(async_fetch, &((fetch_args){urls, 3})))
            printf("%s\n", data);
        if (aw_status() < 0)
            break;
        /* all of them, 8 at a time, with a progress line */
        size_t done = 0, bytes = 0, failed = 0;
        bool tty = isatty(STDOUT_FILENO); /* a progress line in place; in a log, a line each 8 */
        aw_with (aw_http_session_t *s, aw_http_session()) {
            aw_http_fetch_t f = {.session = s, .urls = urls, .count = N, .concurrency = 8};
            aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
                done++;
                bytes += res->len;
                failed += res->error != 0;
                if (tty || done % 8 == 0 || done == N)
                    printf("%s[%2zu/%d] %6zu bytes, %zu failed  %s%s", tty ? "\r" : "", done, N, bytes,
                           failed, res->url, tty ? "" : "\n");
                fflush(stdout);
            }
            aw_http_session_stats_t st;
            aw_http_session_stats(s, &st);
            printf("%sfetched %zu pages over %llu connection(s)\n", tty ? "\n" : "", done,
                   (unsigned long long)st.connects);
        }
        if (aw_status() == 0 && (done != N || failed))
            aw_raise(-EIO, "fetch-many: %zu of %d pages, %zu failed", done, N, failed);
        aw_group_cancel(g);
    }
    return aw_status();
}

int aw_example_http_demo(void) {
    int rc = aw_main(example_http_get, NULL);
    if (rc == 0)
        rc = aw_main(example_http_fetch, NULL);
    return rc;
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_example_http_demo() < 0; }
#endif
