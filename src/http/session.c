/* session.c: the HTTP session on libcurl's multi-socket interface.
 *
 * Design. A session owns one CURLM (its connection pool), one epoll set
 * (level-triggered, as curl expects) holding the sockets curl asks for in
 * its socket callback, and one driver task. The loop's reactor, which is
 * edge-triggered and allows one waiter per fd and direction, sees only the
 * epoll set's fd: the driver waits for it to become readable with a
 * deadline at curl's timer (the timer callback reschedules the driver's
 * scope), then drains it with epoll_wait(0) and hands each ready socket to
 * curl_multi_socket_action. Because the inner set is level-triggered, a
 * socket curl did not drain shows up again at the next epoll_wait(0);
 * because the driver only suspends after epoll_wait(0) found nothing, the
 * next readiness is a new edge for the reactor. Cost per wake-up: one
 * epoll_wait(0) plus curl's own calls; per socket state change, one
 * epoll_ctl.
 *
 * Requests are easy handles added to the multi handle by the requesting
 * task, which then waits on its response's event; curl's callbacks (which
 * never suspend) fill the response's buffers and set the event; the
 * driver removes finished transfers (their connection goes back to the
 * pool) and wakes their owner. Everything runs on the loop's thread, and
 * tasks switch only at suspension points, never inside a curl call, so
 * the multi handle is never re-entered. */
#include "http.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define AW__HTTP_STREAM_AHEAD (64 * 1024) /* buffered ahead of a streaming reader */
#define AW__HTTP_SPARE 64                 /* easy handles kept for reuse */

/* A socket as the session's epoll set sees it. Curl's REMOVE is applied
 * lazily: the socket stays registered (a kept-alive connection is usually
 * wanted again by the next request, with the same events: no epoll_ctl at
 * all); if it reports an event while unwanted, it is deleted then. Curl
 * closes sockets through aw__http_close_cb, which forgets the entry (the
 * kernel drops a closed fd from the set). */
typedef struct aw__sock {
    uint8_t reg;                   /* in the epoll set */
    uint8_t want;                  /* curl wants events for it */
    uint32_t events;               /* what the set holds */
} aw__sock_t;

struct aw_http_session {
    CURLM *multi;
    CURLSH *share;                 /* cookies, when enabled */
    int epfd;
    aw__sock_t *socks;             /* by fd: what the epoll set holds, what curl wants */
    size_t nsocks;
    aw_task_t *driver;
    aw_scope_t *drv_scope;         /* the driver's wait, while it waits */
    aw_ns_t timer_at;              /* curl's timer (absolute), AW_NEVER */
    aw_ns_t drv_until;             /* the deadline the driver waits with */
    uint8_t in_api;                /* a task is inside a curl call (add, pause) */
    aw_http_session_opts_t opts;   /* string fields below are copies */
    char *base_url, *ca_file;
    char **headers;
    size_t nheaders;
    CURL *spare[AW__HTTP_SPARE];
    size_t nspare;
    aw_http_response_t *live;      /* responses not yet closed */
    size_t active;
    uint64_t requests, connects;
    const char *file;
    int line;
    uint8_t closing;
    uint8_t managed;               /* opened by the manager: its exit closes it */
};

static void aw__http_repause(aw_http_response_t *r);

/* ---- small helpers ---- */

static int aw__buf_put(aw__buf_t *b, const void *p, size_t n) {
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n + 1 > b->cap) {
        if (b->off) { /* slide the unread part down before growing */
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n + 1 > b->cap) {
            size_t cap = b->cap ? b->cap : 256; /* small: malloc's per-thread cache */
            while (cap < b->len + n + 1)
                cap *= 2;
            char *q = realloc(b->p, cap);
            if (!q)
                return -ENOMEM;
            b->p = q;
            b->cap = cap;
        }
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void aw__wake(aw_http_response_t *r) {
    aw_event_set(&r->ev);
    if (r->notify)
        aw_event_set(r->notify);
}

size_t aw__http_max_text(const aw_http_session_t *s) {
    return s->opts.max_text ? s->opts.max_text : (size_t)64 << 20;
}

/* ---- curl's callbacks (never suspend) ---- */

static aw__sock_t *aw__http_sock(aw_http_session_t *s, curl_socket_t fd) {
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= s->nsocks) {
        size_t n = s->nsocks ? s->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        aw__sock_t *v = realloc(s->socks, n * sizeof *v);
        if (!v)
            return NULL;
        memset(v + s->nsocks, 0, (n - s->nsocks) * sizeof *v);
        s->socks = v;
        s->nsocks = n;
    }
    return &s->socks[fd];
}

static int aw__http_sock_cb(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp) {
    (void)e, (void)sockp;
    aw_http_session_t *s = ud;
    aw__sock_t *k = aw__http_sock(s, fd);
    if (!k)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        k->want = 0; /* deleted lazily (see aw__sock_t) */
        return 0;
    }
    uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    k->want = 1;
    if (k->reg && k->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.fd = fd};
    int rc = epoll_ctl(s->epfd, k->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0 && errno == ENOENT)
        rc = epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (rc < 0 && errno == EEXIST)
        rc = epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
    k->reg = rc == 0;
    k->events = events;
    return rc == 0 ? 0 : -1;
}

/* Every socket curl opens comes through here: a stale entry for its fd
 * number (a socket curl closed without aw__http_close_cb, which some of its
 * connect paths do) is forgotten; the kernel already dropped it from the
 * epoll set. */
static curl_socket_t aw__http_open_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
    (void)purpose;
    aw_http_session_t *s = ud;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd >= 0 && (size_t)fd < s->nsocks)
        s->socks[fd] = (aw__sock_t){0};
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int aw__http_close_cb(void *ud, curl_socket_t fd) {
    aw_http_session_t *s = ud;
    if (fd >= 0 && (size_t)fd < s->nsocks)
        s->socks[fd] = (aw__sock_t){0};
    return close(fd);
}

static int aw__http_timer_cb(CURLM *m, long ms, void *ud) {
    (void)m;
    aw_http_session_t *s = ud;
    s->timer_at = ms < 0 ? AW_NEVER : aw_now() + AW_MS(ms);
    if (s->drv_scope && !s->in_api && s->drv_until != s->timer_at) {
        s->drv_until = s->timer_at;
        aw_scope_reschedule(s->drv_scope, s->timer_at);
    }
    return 0;
}

static size_t aw__http_header_cb(char *p, size_t sz, size_t n, void *ud) {
    aw_http_response_t *r = ud;
    size_t len = sz * n;
    r->last_rx = aw_now();
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) { /* a new response (redirect, 1xx) */
        r->hdr.len = r->hdr.off = 0;
        r->nhdr = 0;
        const char *sp = memchr(p, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    size_t k = len;
    while (k && (p[k - 1] == '\r' || p[k - 1] == '\n'))
        k--;
    if (k == 0) { /* end of this response's headers */
        if (r->status / 100 == 1)
            return len;
        if (r->status / 100 == 3 && r->s && !r->s->opts.no_redirects &&
            aw_http_response_header(r, "location"))
            return len; /* curl follows it */
        r->headers_done = 1;
        aw__wake(r);
        return len;
    }
    const char *colon = memchr(p, ':', k);
    if (!colon || p[0] == ' ' || p[0] == '\t')
        return len; /* obsolete line folding: ignored */
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    while (v < p + k && (*v == ' ' || *v == '\t'))
        v++;
    size_t vl = (size_t)(p + k - v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (aw__buf_put(&r->hdr, p, nl) < 0 || aw__buf_put(&r->hdr, "", 1) < 0 ||
        aw__buf_put(&r->hdr, v, vl) < 0 || aw__buf_put(&r->hdr, "", 1) < 0)
        return 0;
    r->nhdr++;
    return len;
}

static size_t aw__http_write_cb(char *p, size_t sz, size_t n, void *ud) {
    aw_http_response_t *r = ud;
    size_t len = sz * n;
    r->last_rx = aw_now();
    if (!r->headers_done) {
        r->headers_done = 1;
        aw__wake(r);
    }
    if (r->limit) {
        if (r->body.len - r->body.off + len > r->limit) {
            r->too_big = 1;
            return 0; /* CURLE_WRITE_ERROR: the transfer stops */
        }
    } else if (r->body.len - r->body.off >= AW__HTTP_STREAM_AHEAD) {
        r->paused = 1;
        return CURL_WRITEFUNC_PAUSE; /* curl keeps the data for later */
    }
    if (aw__buf_put(&r->body, p, len) < 0)
        return 0;
    aw__wake(r);
    return len;
}

static size_t aw__http_read_cb(char *p, size_t sz, size_t n, void *ud) {
    aw_http_response_t *r = ud;
    if (r->gen || r->up_eof) { /* fed by aw__http_pump, in the waiting task */
        size_t k = r->up.len - r->up.off;
        if (!k) {
            if (r->up_eof)
                return 0;
            r->need_data = r->up_paused = 1;
            aw__wake(r);
            return CURL_READFUNC_PAUSE;
        }
        if (k > sz * n)
            k = sz * n;
        memcpy(p, r->up.p + r->up.off, k);
        r->up.off += k;
        return k;
    }
    size_t got = fread(p, 1, sz * n, r->upload); /* a local file: short blocking read */
    return ferror(r->upload) ? CURL_READFUNC_ABORT : got;
}

/* ---- transfers ending ---- */

static void aw__http_count(aw_http_response_t *r) {
    long c = 0;
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &c);
    r->connects = c;
    if (r->s) {
        r->s->requests++;
        r->s->connects += (uint64_t)c;
    }
    if (!r->status)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
}

/* Take r's transfer out of the multi handle. Finished: its connection is
 * back in the pool. Unfinished: curl closes the connection (premature
 * end), so no half-read connection is ever reused (K2). */
static void aw__http_remove(aw_http_response_t *r, CURLcode result) {
    if (!r->in_multi)
        return;
    aw__http_count(r);
    curl_multi_remove_handle(r->s->multi, r->easy);
    r->in_multi = 0;
    r->done = 1;
    r->result = result;
    r->headers_done = 1;
    aw__wake(r);
}

static void aw__http_reap(aw_http_session_t *s) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        aw_http_response_t *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r)
            aw__http_remove(r, rc);
    }
}

/* Detach every live response from s (the session goes away under them):
 * their transfers are aborted, their waiters woken; closing them later
 * frees them alone. */
static void aw__http_detach_all(aw_http_session_t *s) {
    for (aw_http_response_t *r = s->live, *n; r; r = n) {
        n = r->next;
        aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
        if (s->share) /* let the share go, or curl_share_cleanup fails (in use) */
            curl_easy_setopt(r->easy, CURLOPT_SHARE, NULL);
        r->s = NULL;
        r->prev = r->next = NULL;
    }
    s->live = NULL;
    s->active = 0;
}

static void aw__http_free(aw_http_session_t *s) {
    if (s->multi)
        curl_multi_cleanup(s->multi); /* closes the pooled connections */
    for (size_t i = 0; i < s->nspare; i++)
        curl_easy_cleanup(s->spare[i]);
    if (s->share)
        curl_share_cleanup(s->share);
    if (s->epfd >= 0) {
        aw_fd_forget(s->epfd);
        close(s->epfd);
    }
    for (size_t i = 0; i < s->nheaders; i++)
        free(s->headers[i]);
    free(s->headers);
    free(s->socks);
    free(s->base_url);
    free(s->ca_file);
    free(s);
}

/* After a task's curl call (add_handle, pause): if curl asked for action
 * now, act here, in this task, instead of waking the driver for it (a
 * request on a kept-alive connection is sent right away); then move the
 * driver's deadline to curl's timer. */
static void aw__http_after(aw_http_session_t *s) {
    if (s->timer_at <= aw_now()) {
        int running;
        s->timer_at = AW_NEVER;
        curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        aw__http_reap(s);
    }
    s->in_api = 0;
    if (s->drv_scope && s->drv_until != s->timer_at) {
        s->drv_until = s->timer_at;
        aw_scope_reschedule(s->drv_scope, s->timer_at);
    }
}

/* ---- the driver ---- */

static int aw__http_driver(void *arg) {
    aw_http_session_t *s = arg;
    struct epoll_event evs[64];
    int running;
    while (!s->closing) {
        int n = epoll_wait(s->epfd, evs, 64, 0);
        if (n > 0) {
            for (int i = 0; i < n; i++) {
                uint32_t e = evs[i].events;
                int fd = evs[i].data.fd;
                if ((size_t)fd < s->nsocks && !s->socks[fd].want) { /* curl let go of it */
                    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
                    s->socks[fd].reg = 0;
                    continue;
                }
                int flags = (e & EPOLLIN ? CURL_CSELECT_IN : 0) |
                            (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                            (e & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(s->multi, fd, flags, &running);
            }
            aw__http_reap(s);
            if (aw_yield() < 0) /* let the woken readers run */
                break;
            continue;
        }
        if (s->timer_at <= aw_now()) {
            s->timer_at = AW_NEVER;
            curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            aw__http_reap(s);
            continue;
        }
        aw_with (aw_scope_t *sc, aw_move_on_at(s->timer_at)) {
            s->drv_scope = sc;
            s->drv_until = s->timer_at;
            aw_fd_wait(s->epfd, AW_READ);
            s->drv_scope = NULL;
        }
        if (aw_status() == -ECANCELED)
            break; /* the session closes, or the loop shuts down */
    }
    aw_err_clear();
    if (!s->closing && !s->managed) {
        /* Cancelled without aw_http_session_close: the loop is shutting
         * down with a session opened by hand still open (K4). A session
         * of a with block is left to its exit, which always runs: freeing
         * it here would pull it from under that exit. */
        fprintf(stderr,
                "awith: HTTP session opened at %s:%d was never closed "
                "(%zu response(s) still open); closing it at loop shutdown\n",
                s->file, s->line, s->active);
        aw__http_detach_all(s);
        aw__http_free(s);
    }
    return 0;
}

/* ---- the session ---- */


static pthread_once_t aw__curl_once = PTHREAD_ONCE_INIT;
static CURLcode aw__curl_rc;
static void aw__curl_init(void) { aw__curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int aw__http_session_open(aw_http_session_t **out, const aw_http_session_opts_t *opts,
                          const char *file, int line) {
    *out = NULL;
    if (!aw_task_self())
        return aw_raise(-EINVAL, "aw_http_session_open: not inside a task of a loop");
    pthread_once(&aw__curl_once, aw__curl_init); /* loops may run on several threads */
    if (aw__curl_rc != CURLE_OK)
        return aw_raise(-ENOMEM, "curl_global_init failed: %s", curl_easy_strerror(aw__curl_rc));
    aw_http_session_t *s = calloc(1, sizeof *s);
    if (!s)
        return aw_raise(-ENOMEM, "out of memory for an HTTP session");
    s->epfd = -1;
    s->file = file;
    s->line = line;
    s->timer_at = AW_NEVER;
    if (opts)
        s->opts = *opts;
    s->opts.base_url = s->opts.ca_file = NULL;
    s->opts.headers = NULL;
    int rc = -ENOMEM;
    if (opts && opts->headers) {
        size_t n = 0;
        while (opts->headers[n])
            n++;
        s->headers = calloc(n ? n : 1, sizeof *s->headers);
        if (!s->headers)
            goto undo;
        for (; s->nheaders < n; s->nheaders++)
            if (!(s->headers[s->nheaders] = strdup(opts->headers[s->nheaders])))
                goto undo;
    }
    if (opts && ((opts->base_url && !(s->base_url = strdup(opts->base_url))) ||
                 (opts->ca_file && !(s->ca_file = strdup(opts->ca_file)))))
        goto undo;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        rc = -errno;
        goto undo;
    }
    if (!(s->multi = curl_multi_init()))
        goto undo;
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, aw__http_sock_cb);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, aw__http_timer_cb);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      s->opts.max_host_connections ? s->opts.max_host_connections : 8L);
    if (s->opts.max_connections)
        curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, s->opts.max_connections);
    if (s->opts.cookies) {
        if (!(s->share = curl_share_init()))
            goto undo;
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    }
    rc = aw_spawn(NULL, aw__http_driver, s, &s->driver);
    if (rc < 0)
        goto undo;
    *out = s;
    return 0;
undo:
    aw__http_free(s);
    return aw_raise(rc, "cannot open an HTTP session: %s", aw_strerror(rc));
}

int aw_http_session_close(aw_http_session_t *s) {
    if (!s)
        return 0;
    s->closing = 1;
    aw__http_detach_all(s);
    aw_task_cancel(s->driver);
    aw_with (aw_shield(AW_SEC(10)))
        aw_task_join(s->driver); /* it returns 0 at once: nothing to report */
    aw__http_free(s);
    return 0;
}

void aw_http_session_stats(const aw_http_session_t *s, aw_http_session_stats_t *out) {
    out->requests = s->requests;
    out->connects = s->connects;
    out->active = s->active;
}

static int aw__http_session_enter(void *self, void **out) {
    aw_http_session_cm_t *c = self;
    int rc = aw__http_session_open(&c->s, &c->opts, c->file, c->line);
    if (rc == 0)
        c->s->managed = 1;
    *out = c->s;
    return rc;
}

static int aw__http_session_exit(void *self, const aw_err_t *err) {
    (void)err;
    aw_http_session_cm_t *c = self;
    int rc = aw_http_session_close(c->s);
    c->s = NULL;
    return rc;
}

const aw_cm_type_t aw_http_session_type = {"aw_http_session", aw__http_session_enter,
                                           aw__http_session_exit, 0, 0};

/* ---- requests ---- */

static bool aw__header_named(const char *line, const char *name, size_t nl) {
    return !strncasecmp(line, name, nl) && (line[nl] == ':' || line[nl] == ';');
}

/* The full URL: base_url + url (unless url has a scheme) + the query. */
static char *aw__http_url(aw_http_session_t *s, CURL *e, const aw_http_request_t *req) {
    aw__buf_t b = {0};
    const char *u = req->url ? req->url : "";
    int ok = 0;
    if (s->base_url && !strstr(u, "://")) {
        size_t bl = strlen(s->base_url);
        if (bl && s->base_url[bl - 1] == '/' && u[0] == '/')
            bl--;
        ok |= aw__buf_put(&b, s->base_url, bl);
        if (bl && s->base_url[bl - 1] != '/' && u[0] && u[0] != '/' && u[0] != '?')
            ok |= aw__buf_put(&b, "/", 1);
    }
    ok |= aw__buf_put(&b, u, strlen(u));
    for (size_t i = 0; req->query && req->query[i] && req->query[i + 1]; i += 2) {
        char *k = curl_easy_escape(e, req->query[i], 0);
        char *v = curl_easy_escape(e, req->query[i + 1], 0);
        if (!k || !v)
            ok = -ENOMEM;
        else {
            ok |= aw__buf_put(&b, i == 0 && !strchr(u, '?') ? "?" : "&", 1);
            ok |= aw__buf_put(&b, k, strlen(k));
            ok |= aw__buf_put(&b, "=", 1);
            ok |= aw__buf_put(&b, v, strlen(v));
        }
        curl_free(k);
        curl_free(v);
    }
    if (ok < 0) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static void aw__http_release(aw_http_response_t *r) {
    if (r->easy) {
        aw_http_session_t *s = r->s;
        /* kept configured for the session's next request; not with
         * cookies (curl 7.88 leaks the cookie file list of reused handles) */
        if (s && !s->share && s->nspare < AW__HTTP_SPARE) {
            s->spare[s->nspare++] = r->easy;
        } else {
            curl_easy_cleanup(r->easy);
        }
    }
    if (r->upload)
        fclose(r->upload);
    curl_slist_free_all(r->req_headers);
    free(r->url);
    free(r->hdr.p);
    free(r->body.p);
    free(r->up.p);
    free(r);
}

int aw_http_response_close(aw_http_response_t *r) {
    if (!r)
        return 0;
    aw_http_session_t *s = r->s;
    aw_gen_t *g = r->gen;
    if (s) {
        aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
        if (r->prev)
            r->prev->next = r->next;
        else
            s->live = r->next;
        if (r->next)
            r->next->prev = r->prev;
        s->active--;
    }
    aw__http_release(r);
    if (g) /* after the transfer is gone: curl cannot ask it for more */
        aw_gen_close(g);
    return 0;
}

static int aw__http_setup(aw_http_session_t *s, aw_http_response_t *r,
                          const aw_http_request_t *req, bool fresh) {
    CURL *e = r->easy;
    const char *m = r->method;
    if (fresh) { /* what stays the same for every request of the session */
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, aw__http_write_cb);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, aw__http_header_cb);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, aw__http_read_cb);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, aw__http_open_cb);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, s);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, aw__http_close_cb);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, s);
        curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        if (!s->opts.no_redirects) {
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(e, CURLOPT_MAXREDIRS, s->opts.max_redirects ? s->opts.max_redirects : 10L);
        }
        if (s->ca_file)
            curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
        if (s->share) {
            curl_easy_setopt(e, CURLOPT_SHARE, s->share);
            curl_easy_setopt(e, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
        }
    }
    /* what may differ: set every time, to its value or its default, so
     * that a reused handle needs no curl_easy_reset */
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* also: no upload, no NOBODY */
    /* HTTPS: wait for a connection being set up in case it multiplexes
     * (HTTP/2) rather than opening one per concurrent request */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncasecmp(r->url, "https:", 6) ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    aw_ns_t ct = req->connect_timeout ? req->connect_timeout : s->opts.connect_timeout;
    aw_ns_t tt = req->timeout ? req->timeout : s->opts.timeout;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ct > 0 ? (long)((ct + AW_MS(1) - 1) / AW_MS(1)) : 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, tt > 0 ? (long)((tt + AW_MS(1) - 1) / AW_MS(1)) : 0L);
    r->read_timeout = req->read_timeout ? req->read_timeout : s->opts.read_timeout;

    if (!strcasecmp(m, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (!strcasecmp(m, "POST") && !req->body_file)
        curl_easy_setopt(e, CURLOPT_POST, 1L);
    else if (strcasecmp(m, "GET"))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    if (req->body_file) {
        r->upload = fopen(req->body_file, "rb");
        if (!r->upload)
            return aw_raise(-errno, "%s %s: cannot open the body file %s: %s", m, r->url,
                            req->body_file, aw_strerror(-errno));
        fseeko(r->upload, 0, SEEK_END);
        curl_off_t size = ftello(r->upload);
        rewind(r->upload);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, size);
        if (strcasecmp(m, "PUT"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (req->body_gen) {
        r->gen = req->body_gen;
        if (!strcasecmp(m, "POST")) {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        } else {
            curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)-1);
            if (strcasecmp(m, "PUT"))
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        }
    } else if (req->body || !strcasecmp(m, "POST")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? (const char *)req->body : "");
    }
    /* headers: the session's defaults, unless the request names them too */
    for (size_t i = 0; i < s->nheaders + (req->headers ? SIZE_MAX / 2 : 0); i++) {
        const char *h;
        if (i < s->nheaders) {
            h = s->headers[i];
            size_t nl = strcspn(h, ":;");
            bool overridden = false;
            for (size_t j = 0; req->headers && req->headers[j]; j++)
                overridden |= aw__header_named(req->headers[j], h, nl);
            if (overridden)
                continue;
        } else if (!(h = req->headers[i - s->nheaders])) {
            break;
        }
        struct curl_slist *l = curl_slist_append(r->req_headers, h);
        if (!l)
            return aw_raise(-ENOMEM, "out of memory for request headers");
        r->req_headers = l;
    }
    if (req->body_gen || req->body_file) { /* no "Expect: 100-continue" round trip */
        struct curl_slist *l = curl_slist_append(r->req_headers, "Expect:");
        if (!l)
            return aw_raise(-ENOMEM, "out of memory for request headers");
        r->req_headers = l;
    }
    if (r->req_headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->req_headers);
    return 0;
}

/* A request that does not start: its body generator, borrowed until the
 * response is closed, is closed now (there will be no response). */
static int aw__http_not_started(const aw_http_request_t *req, int rc) {
    if (req->body_gen)
        aw_gen_close(req->body_gen);
    return rc;
}

int aw__http_start(aw_http_session_t *s, const aw_http_request_t *req, aw_http_response_t **out) {
    *out = NULL;
    if (!s || s->closing)
        return aw__http_not_started(req, aw_raise(-EINVAL, "HTTP request on a closed session"));
    aw_http_response_t *r = calloc(1, sizeof *r);
    if (!r)
        return aw__http_not_started(req, aw_raise(-ENOMEM, "out of memory for an HTTP request"));
    r->s = s;
    r->method = req->method ? req->method : "GET";
    r->connects = -1;
    r->raise_status = req->raise_for_status ? req->raise_for_status > 0 : s->opts.raise_for_status;
    bool fresh = !s->nspare;
    r->easy = fresh ? curl_easy_init() : s->spare[--s->nspare];
    r->last_rx = aw_now();
    int rc;
    if (!r->easy || !(r->url = aw__http_url(s, r->easy, req))) {
        rc = aw_raise(-ENOMEM, "out of memory for an HTTP request");
        if (fresh && r->easy) { /* never set up: must not join the spares */
            curl_easy_cleanup(r->easy);
            r->easy = NULL;
        }
        goto undo;
    }
    if ((rc = aw__http_setup(s, r, req, fresh)) < 0)
        goto undo;
    s->in_api = 1;
    CURLMcode mc = curl_multi_add_handle(s->multi, r->easy);
    if (mc != CURLM_OK) {
        s->in_api = 0;
        rc = aw_raise(mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, "%s %s: %s", r->method, r->url,
                      curl_multi_strerror(mc));
        goto undo;
    }
    r->in_multi = 1;
    aw__http_after(s);
    r->next = s->live;
    if (s->live)
        s->live->prev = r;
    s->live = r;
    s->active++;
    *out = r;
    return 0;
undo:
    r->s = s;
    aw__http_release(r);
    return aw__http_not_started(req, rc);
}

int aw__http_describe(const aw_http_response_t *r, char *msg, size_t size) {
    const char *what, *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
    int code;
    if (r->too_big) {
        snprintf(msg, size, "%s %s: the body is larger than %zu bytes", r->method, r->url, r->limit);
        return -EFBIG;
    }
    if (!r->s && r->result == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(msg, size, "%s %s: the session was closed", r->method, r->url);
        return -ECANCELED;
    }
    long oserr = 0;
    if (r->easy)
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr);
    switch (r->result) {
    case CURLE_OK:
        msg[0] = 0;
        return 0;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        code = -ENXIO, what = "cannot resolve the host name";
        break;
    case CURLE_COULDNT_CONNECT:
        code = oserr > 0 ? -(int)oserr : -ECONNREFUSED, what = "cannot connect";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = -ETIMEDOUT, what = "timed out";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        code = -EPROTO, what = "TLS failed";
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        code = -EBADMSG, what = "the server broke the HTTP protocol";
        break;
    case CURLE_PARTIAL_FILE:
        code = -EPIPE, what = "the body was cut short";
        break;
    case CURLE_GOT_NOTHING:
        code = -ECONNRESET, what = "the server closed the connection without a reply";
        break;
    case CURLE_RECV_ERROR:
        if (strstr(why, "eaders")) { /* curl 7.88: "Too large response headers" */
            code = -EBADMSG, what = "the response headers are too large";
            break;
        }
        /* fall through */
    case CURLE_SEND_ERROR:
        code = oserr > 0 ? -(int)oserr : -ECONNRESET, what = "the connection failed";
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        code = -ELOOP, what = "too many redirects";
        break;
    case CURLE_FILESIZE_EXCEEDED:
        code = -EFBIG, what = "the body is too large";
        break;
    case CURLE_URL_MALFORMAT:
        code = -EINVAL, what = "malformed URL";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        code = -EPROTONOSUPPORT, what = "unsupported protocol";
        break;
    case CURLE_OUT_OF_MEMORY:
        /* curl 7.88 also says this for headers past its 100 KiB limit */
        if (strstr(why, "header")) {
            code = -EBADMSG, what = "the response headers are too large";
            break;
        }
        code = -ENOMEM, what = "out of memory";
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        code = -ECANCELED, what = "aborted";
        break;
    default:
        code = -EIO, what = "transfer failed";
        break;
    }
    snprintf(msg, size, "%s %s: %s (curl: %s)", r->method, r->url, what, why);
    return code;
}

static int aw__http_fail(aw_http_response_t *r) {
    char msg[CURL_ERROR_SIZE + 512];
    int code = aw__http_describe(r, msg, sizeof msg);
    return code < 0 ? aw_raise(code, "%s", msg) : 0;
}

/* Pull the body generator while curl waits for data (in the waiting task:
 * the generator may suspend). Its failure fails the transfer. */
static int aw__http_pump(aw_http_response_t *r) {
    while (r->need_data && r->in_multi && r->gen) {
        void *v;
        int rc = aw_gen_next(r->gen, &v);
        if (rc < 0) {
            aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
            return aw_raise(rc, "%s %s: the body generator failed", r->method, r->url);
        }
        if (rc == 0) {
            r->gen = NULL; /* finished: nothing to close */
            r->up_eof = 1;
        } else {
            const aw_http_chunk_t *c = v;
            if (!c || !c->len)
                continue;
            if (aw__buf_put(&r->up, c->data, c->len) < 0) {
                aw__http_remove(r, CURLE_OUT_OF_MEMORY);
                return aw_raise(-ENOMEM, "out of memory for a request body");
            }
        }
        r->need_data = r->up_paused = 0;
        aw__http_repause(r);
    }
    return 0;
}

int aw__http_wait(aw_http_response_t *r, aw_event_t *ev) {
    if (r->need_data) {
        int rc = aw__http_pump(r);
        if (rc < 0 || r->done || r->headers_done)
            return rc;
    }
    aw_event_clear(ev);
    if (!r->read_timeout)
        return aw_event_wait(ev);
    aw_ns_t until = r->last_rx + r->read_timeout;
    if (until > aw_now()) {
        int rc = 0, idle = 0;
        aw_with (aw_scope_t *sc, aw_move_on_at(until)) {
            rc = aw_event_wait(ev);
            idle = rc == -ECANCELED && aw_scope_expired(sc);
        }
        if (aw_cancel_pending())
            return aw_checkpoint();
        if (!idle || r->last_rx + r->read_timeout > aw_now())
            return 0; /* progress (or a late byte): the caller looks again */
    }
    aw_http_session_t *s = r->s;
    if (s)
        aw__http_remove(r, CURLE_OPERATION_TIMEDOUT);
    return aw_raise(-ETIMEDOUT, "%s %s: no data for %lld ms (read_timeout)", r->method, r->url,
                    (long long)(r->read_timeout / AW_MS(1)));
}

/* Wait until r's headers are in (or the transfer ended). */
static int aw__http_wait_headers(aw_http_response_t *r) {
    while (!r->headers_done && !r->done) {
        int rc = aw__http_wait(r, &r->ev);
        if (rc < 0)
            return rc;
    }
    if (r->done && r->result != CURLE_OK)
        return aw__http_fail(r);
    if (r->raise_status && r->status >= 400)
        return aw_raise(-EREMOTEIO, "%s %s: HTTP status %ld", r->method, r->url, r->status);
    return 0;
}

int aw_http_request(aw_http_session_t *s, const aw_http_request_t *req, aw_http_response_t **out) {
    aw_http_response_t *r;
    int rc = aw__http_start(s, req, &r);
    if (rc < 0)
        return rc;
    rc = aw__http_wait_headers(r);
    if (rc < 0) {
        aw_http_response_close(r); /* enter is atomic: nothing half-acquired */
        return rc;
    }
    *out = r;
    return 0;
}

long aw_http_response_status(const aw_http_response_t *r) { return r->status; }
const char *aw_http_response_url(const aw_http_response_t *r) {
    char *u = NULL;
    if (r->easy)
        curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &u);
    return u ? u : r->url;
}
long aw_http_response_connects(const aw_http_response_t *r) { return r->done ? r->connects : -1; }
int aw_http_response_version(const aw_http_response_t *r) {
    long v = 0;
    if (r->easy)
        curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v);
    return v == CURL_HTTP_VERSION_1_0 ? 10 : v == CURL_HTTP_VERSION_1_1 ? 11
         : v == CURL_HTTP_VERSION_2_0 ? 20 : v == CURL_HTTP_VERSION_3 ? 30 : 0;
}

bool aw_http_response_header_at(const aw_http_response_t *r, size_t i, const char **name,
                                const char **value) {
    if (i >= r->nhdr)
        return false;
    const char *p = r->hdr.p;
    for (size_t k = 0; k < i; k++) {
        p += strlen(p) + 1;
        p += strlen(p) + 1;
    }
    *name = p;
    *value = p + strlen(p) + 1;
    return true;
}

const char *aw_http_response_header(const aw_http_response_t *r, const char *name) {
    const char *p = r->hdr.p;
    for (size_t k = 0; k < r->nhdr; k++) {
        const char *v = p + strlen(p) + 1;
        if (!strcasecmp(p, name))
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

/* Tell curl which directions stay paused (may deliver data right away). */
static void aw__http_repause(aw_http_response_t *r) {
    r->s->in_api = 1;
    curl_easy_pause(r->easy, (r->paused ? CURLPAUSE_RECV : 0) | (r->up_paused ? CURLPAUSE_SEND : 0));
    aw__http_after(r->s);
}

static void aw__http_unpause(aw_http_response_t *r) {
    if (r->paused && r->in_multi) {
        r->paused = 0;
        aw__http_repause(r);
    }
}

long aw_http_response_read(aw_http_response_t *r, const void **data) {
    r->body.off += r->last_chunk;
    r->last_chunk = 0;
    for (;;) {
        size_t n = r->body.len - r->body.off;
        if (n) {
            *data = r->body.p + r->body.off;
            r->last_chunk = n;
            return (long)n;
        }
        if (r->done) {
            if (r->result != CURLE_OK)
                return aw__http_fail(r);
            return 0;
        }
        r->body.off = r->body.len = 0;
        aw__http_unpause(r);
        if (r->body.len || r->done)
            continue;
        int rc = aw__http_wait(r, &r->ev);
        if (rc < 0)
            return rc;
    }
}

long aw_http_response_text(aw_http_response_t *r, size_t limit, const char **text, size_t *len) {
    r->body.off += r->last_chunk;
    r->last_chunk = 0;
    r->limit = limit ? limit : r->s ? aw__http_max_text(r->s) : (size_t)64 << 20;
    if (r->body.len - r->body.off > r->limit)
        r->too_big = 1;
    aw__http_unpause(r);
    while (!r->done && !r->too_big) {
        int rc = aw__http_wait(r, &r->ev);
        if (rc < 0)
            return rc;
    }
    if (r->too_big) {
        if (r->s)
            aw__http_remove(r, CURLE_WRITE_ERROR);
        return aw__http_fail(r);
    }
    if (r->result != CURLE_OK)
        return aw__http_fail(r);
    if (aw__buf_put(&r->body, "", 0) < 0) /* NUL-terminate even when empty */
        return aw_raise(-ENOMEM, "out of memory for a response body");
    size_t n = r->body.len - r->body.off;
    *text = r->body.p + r->body.off;
    if (len)
        *len = n;
    r->last_chunk = n;
    return (long)n;
}

static int aw__http_response_enter(void *self, void **out) {
    aw_http_response_cm_t *c = self;
    int rc = aw_http_request(c->s, &c->req, &c->r);
    *out = c->r;
    return rc;
}

static int aw__http_response_exit(void *self, const aw_err_t *err) {
    (void)err;
    aw_http_response_cm_t *c = self;
    aw_http_response_close(c->r);
    c->r = NULL;
    return 0;
}

const aw_cm_type_t aw_http_response_type = {"aw_http_response", aw__http_response_enter,
                                            aw__http_response_exit, 0, 0};
