/* session.c: the HTTP session on libcurl's multi-socket interface: the
 * multi handle (the connection pool), the share (cookies), curl's socket
 * and timer callbacks, the driver task, and transfers ending.
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
 * Requests (request.c) are easy handles added to the multi handle by the
 * requesting task, which then waits on its response's event; curl's
 * callbacks (which never suspend; response.c) fill the response's buffers
 * and set the event; the driver removes finished transfers (their
 * connection goes back to the pool) and wakes their owner. Everything runs
 * on the loop's thread, and tasks switch only at suspension points, never
 * inside a curl call, so the multi handle is never re-entered. */
#include "http.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

size_t aw__http_max_text(const aw_http_session_t *s) {
    return s->opts.max_text ? s->opts.max_text : (size_t)64 << 20;
}

/* The deadline the driver waits with: curl's timer, or sooner its next
 * look at the loop's tasks (after the shutdown). */
static aw_ns_t aw__http_until(const aw_http_session_t *s) {
    return s->timer_at < s->poll_at ? s->timer_at : s->poll_at;
}

/* ---- curl's callbacks (never suspend) ---- */

static aw__sock_t *aw__http_sock(aw_http_session_t *s, curl_socket_t fd) {
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= s->nsocks) {
        size_t n = s->nsocks ? s->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        aw__sock_t *v = aw__realloc(s->socks, n * sizeof *v);
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
    if (!k) {
        s->cb_err = -ENOMEM; /* the socket table could not grow */
        return -1;
    }
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
    if (rc < 0)
        s->cb_err = -errno;
    return rc == 0 ? 0 : -1;
}

/* Every socket curl opens comes through here: a stale entry for its fd
 * number (a socket curl closed without aw__http_close_cb, which some of its
 * connect paths do) is forgotten; the kernel already dropped it from the
 * epoll set. */
curl_socket_t aw__http_open_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
    (void)purpose;
    aw_http_session_t *s = ud;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd >= 0 && (size_t)fd < s->nsocks)
        s->socks[fd] = (aw__sock_t){0};
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

int aw__http_close_cb(void *ud, curl_socket_t fd) {
    aw_http_session_t *s = ud;
    if (fd >= 0 && (size_t)fd < s->nsocks)
        s->socks[fd] = (aw__sock_t){0};
    return close(fd);
}

static int aw__http_timer_cb(CURLM *m, long ms, void *ud) {
    (void)m;
    aw_http_session_t *s = ud;
    s->timer_at = ms < 0 ? AW_NEVER : aw_now() + AW_MS(ms);
    aw_ns_t until = aw__http_until(s);
    if (s->drv_scope && !s->in_api && s->drv_until != until) {
        s->drv_until = until;
        aw_scope_reschedule(s->drv_scope, until);
    }
    return 0;
}

/* ---- transfers ending ---- */

static void aw__http_count(aw_http_response_t *r) {
    long c = 0;
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &c);
    r->connects = c + r->hop_connects; /* the hops' were counted in s as they went */
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
void aw__http_remove(aw_http_response_t *r, CURLcode result) {
    if (!r->in_multi)
        return;
    aw__http_count(r);
    aw__http_cookie_restore(r); /* ended before its request went out */
    curl_multi_remove_handle(r->s->multi, r->easy);
    r->in_multi = 0;
    r->done = 1;
    r->result = result;
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
        if (r && rc == CURLE_OK && r->redirecting && (rc = aw__http_follow(r)) == CURLE_OK)
            continue; /* the next hop is under way */
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

/* Curl refused to go on (our socket callback failed it: no memory for the
 * socket table, epoll_ctl failed): its transfers would wait forever, so
 * every one in flight ends now with our code, which their reads report. */
static void aw__http_fail_all(aw_http_session_t *s, int code) {
    for (aw_http_response_t *r = s->live; r; r = r->next) {
        if (!r->in_multi)
            continue;
        r->own_error = code;
        aw__http_remove(r, CURLE_ABORTED_BY_CALLBACK);
    }
}

/* After any curl call that may call our socket callback: curl 7.88 does
 * not always report the callback's failure (the socket is then simply
 * never watched), so our own record of it decides. */
static void aw__http_check(aw_http_session_t *s, CURLMcode mc) {
    if (mc == CURLM_OK && !s->cb_err)
        return;
    int code = s->cb_err ? s->cb_err : mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    s->cb_err = 0;
    aw__http_fail_all(s, code);
}

/* curl_multi_socket_action, and what to do when it fails. */
static void aw__http_act(aw_http_session_t *s, curl_socket_t fd, int flags) {
    int running;
    aw__http_check(s, curl_multi_socket_action(s->multi, fd, flags, &running));
}

void aw__http_urls_free(aw_http_session_t *s) {
    for (size_t i = 0; i < s->nurls; i++)
        aw__http_url_put(s->urls[i]);
    s->nurls = s->url_next = 0;
}

static void aw__http_free(aw_http_session_t *s) {
    aw__atclose_remove(&s->atclose); /* closed after all (aw__http_abandon) */
    if (s->multi)
        curl_multi_cleanup(s->multi); /* closes the pooled connections */
    for (size_t i = 0; i < s->nspare; i++)
        aw__http_record_free(s->spare[i]);
    aw__http_bufs_free(s);
    if (s->share)
        curl_share_cleanup(s->share);
    curl_slist_free_all(s->ae);
    if (s->cookie_scratch)
        curl_easy_cleanup(s->cookie_scratch);
    if (s->epfd >= 0) {
        aw_fd_forget(s->epfd);
        close(s->epfd);
    }
    for (size_t i = 0; i < s->nheaders; i++)
        aw__free(s->headers[i]);
    aw__free(s->headers);
    aw__free(s->socks);
    aw__free(s->base_url);
    curl_url_cleanup(s->base_h);
    aw__http_urls_free(s);
    aw__free(s->ca_file);
    aw__free(s->protocols);
    aw_track_close(&s->track);
    aw__free(s);
}

/* After a task's curl call (add_handle, pause): if curl asked for action
 * now, act here, in this task, instead of waking the driver for it (a
 * request on a kept-alive connection is sent right away); then move the
 * driver's deadline to curl's timer. */
void aw__http_after(aw_http_session_t *s) {
    aw__http_check(s, CURLM_OK); /* add_handle, pause: our callback may have failed */
    if (s->timer_at <= aw_now()) {
        s->timer_at = AW_NEVER;
        aw__http_act(s, CURL_SOCKET_TIMEOUT, 0);
        aw__http_reap(s);
    }
    s->in_api = 0;
    aw_ns_t until = aw__http_until(s);
    if (s->drv_scope && s->drv_until != until) {
        s->drv_until = until;
        aw_scope_reschedule(s->drv_scope, until);
    }
}

/* ---- the driver ---- */

/* Are tasks other than session drivers (the loop's servants, core.h)
 * alive in the loop? After the shutdown's cancel, only they can still use
 * a session or close it. */
static int aw__http_others(void) {
    struct aw__core *c = aw__loop_tls->core;
    return c->ntasks > c->nservants;
}

/* Let the loop go round (its timers and fds) until at, at the latest:
 * 0, or -ECANCELED. Without memory to arm the timer, a plain yield: not
 * the driver's end. */
static int aw__http_pause(aw_ns_t at) {
    int rc = aw_sleep_until(at);
    if (rc == -ECANCELED)
        return rc;
    if (rc < 0) {
        aw_err_clear();
        if (aw_yield() < 0)
            return -ECANCELED;
    }
    return 0;
}

/* The driver's loop, until the session closes or the driver is cancelled;
 * after the shutdown (s->lingering), also once no other task can still
 * use the session. */
static void aw__http_drive(aw_http_session_t *s) {
    struct epoll_event evs[64];
    while (!s->closing && (!s->lingering || aw__http_others())) {
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
                aw__http_act(s, fd, flags);
            }
            aw__http_reap(s);
            /* Let the woken readers run, and the loop go round: its timers
             * (the readers' deadlines) and the other fds. aw_yield would run
             * the driver again at once while the round's budget lasts (32
             * runs), each batch up to megabytes of curl's reading: a
             * reader's 5 ms deadline fired only once a 64 MiB body was in,
             * and its wait returned the body instead (SEMANTICS G1). */
            if (aw__http_pause(aw_now()) < 0)
                break;
            continue;
        }
        if (s->timer_at <= aw_now()) {
            s->timer_at = AW_NEVER;
            aw__http_act(s, CURL_SOCKET_TIMEOUT, 0);
            aw__http_reap(s);
            continue;
        }
        s->poll_at = s->lingering ? aw_now() + AW__HTTP_LINGER_POLL : AW_NEVER;
        aw_ns_t until = aw__http_until(s);
        aw_with (aw_scope_t *sc, aw_move_on_at(until)) {
            s->drv_scope = sc;
            s->drv_until = until;
            aw_fd_wait(s->epfd, AW_READ);
            s->drv_scope = NULL;
        }
        int rc = aw_status();
        if (rc == -ECANCELED)
            break; /* the session closes, or the loop shuts down */
        if (rc < 0) {
            /* The wait failed without suspending (no memory for the loop's
             * fd table to reach the epoll fd, or for the deadline's timer),
             * and would fail so again at once: the driver spun, and no
             * other task ran again, while each failure chained one more
             * error record. The error is the driver's own: cleared; it
             * pauses, then tries again (curl's sockets are polled at each
             * turn meanwhile). */
            aw_err_clear();
            if (aw__http_pause(aw_now() + AW__HTTP_RETRY) < 0)
                break;
        }
    }
}

/* Nobody closed s: freed, its record left for the report (K4). */
static void aw__http_free_unclosed(aw_http_session_t *s) {
    s->track.rec = NULL;
    aw__http_free(s);
}

static void aw__http_at_close(aw__atclose_t *a) {
    aw__http_free_unclosed(aw__container(a, aw_http_session_t, atclose));
}

/* The loop shuts down and nobody closed s, a session opened by hand: its
 * transfers end and its connections close now; its record stays,
 * reported at loop close (K4). Once no other task is alive, none can
 * close it any more: it is freed. A task still alive (its cleanup outran
 * the driver's service) may still close it, and that close frees it:
 * freeing it here would pull it from under that close. If none does,
 * the loop's close frees it, when no task runs any more. */
static void aw__http_abandon(aw_http_session_t *s) {
    s->closing = 1;
    aw__http_detach_all(s);
    if (aw__http_others()) {
        if (s->multi)
            curl_multi_cleanup(s->multi);
        s->multi = NULL;
        s->stopped = 1; /* its close has nothing left to do but free it */
        s->atclose.fn = aw__http_at_close;
        aw__atclose_add(&s->atclose);
        return;
    }
    aw__http_free_unclosed(s);
}

static int aw__http_driver(void *arg) {
    aw_http_session_t *s = arg;
    aw__loop_tls->core->nservants++;
    aw__http_drive(s); /* until the session closes, or the loop shuts down */
    aw_err_clear();
    if (!s->closing) {
        /* The loop shuts down with the session open. Whoever closes it
         * (its with block's exit; for a session opened by hand, a cleanup:
         * an exit stack's callback, the exit that opened it) still runs,
         * shielded (decision 2), and may make requests on it first (a
         * logout), which need the driver: it goes on in a shield that the
         * close cancels, while tasks other than session drivers are alive
         * (none else can close it). Bounded (an exit's default grace), for
         * a block whose exit never runs (in a generator never closed: E3)
         * must not hold the shutdown for its whole grace. */
        aw_with (aw_scope_t *linger, aw_shield(AW__HTTP_LINGER)) {
            s->drv_life = linger;
            s->lingering = 1;
            aw__http_drive(s);
            s->lingering = 0;
            s->poll_at = AW_NEVER;
            s->drv_life = NULL;
        }
        aw_err_clear();
    }
    if (s->orphaned) /* close gave up waiting for us: s is ours to free */
        aw__http_free(s);
    else if (!s->closing && !s->managed)
        aw__http_abandon(s); /* a session of a with block is left to its exit */
    aw__loop_tls->core->nservants--; /* last: aw__http_abandon counts this task as one */
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
    aw_http_session_t *s = aw__calloc(1, sizeof *s);
    if (!s)
        return aw_raise(-ENOMEM, "out of memory for an HTTP session");
    s->epfd = -1;
    s->file = file;
    s->line = line;
    s->timer_at = s->poll_at = AW_NEVER;
    if (opts)
        s->opts = *opts;
    s->opts.base_url = s->opts.ca_file = s->opts.protocols = NULL;
    s->opts.headers = NULL;
    int rc = -ENOMEM;
    long bad = opts ? aw__http_bad_header(opts->headers) : -1;
    if (bad >= 0) {
        aw__free(s);
        return aw_raise(-EINVAL, "cannot open an HTTP session: default header \"%.*s\" holds a "
                        "line break", (int)strcspn(opts->headers[bad], ":\r\n"), opts->headers[bad]);
    }
    if (opts && opts->headers) {
        size_t n = 0;
        while (opts->headers[n])
            n++;
        s->headers = aw__calloc(n ? n : 1, sizeof *s->headers);
        if (!s->headers)
            goto undo;
        for (; s->nheaders < n; s->nheaders++)
            if (!(s->headers[s->nheaders] = aw__strdup(opts->headers[s->nheaders])))
                goto undo;
    }
    if (!(s->protocols = aw__strdup(opts && opts->protocols ? opts->protocols : "http,https")))
        goto undo;
    CURL *probe = curl_easy_init(); /* is it a list curl takes? (checked once, here) */
    if (!probe)
        goto undo;
    CURLcode pc = curl_easy_setopt(probe, CURLOPT_PROTOCOLS_STR, s->protocols);
    curl_easy_cleanup(probe);
    if (pc != CURLE_OK) {
        aw__http_free(s);
        return aw_raise(-EINVAL, "cannot open an HTTP session: protocols \"%s\" is not a list "
                        "of schemes curl knows (%s)", opts->protocols, curl_easy_strerror(pc));
    }
    if (opts && ((opts->base_url && !(s->base_url = aw__strdup(opts->base_url))) ||
                 (opts->ca_file && !(s->ca_file = aw__strdup(opts->ca_file)))))
        goto undo;
    if (!(s->ae = curl_slist_append(NULL, AW__HTTP_AE)))
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
    long per_host = s->opts.max_host_connections ? s->opts.max_host_connections : 8L;
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    if (s->opts.max_connections)
        curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, s->opts.max_connections);
    /* The pool's size. Curl's default is 4 x the easy handles added when
     * a transfer ends: with a handle per request, removed as it ends, a
     * GET that ends while few others run trims the pool to a few
     * connections, and the next burst connects again (15% of the GETs
     * in bench-http did). Sized from the session's limits instead: every
     * connection of 4 hosts at their limit, or the total limit. */
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS,
                      s->opts.max_connections ? s->opts.max_connections : 4 * per_host);
    if (s->opts.cookies) {
        if (!(s->share = curl_share_init()))
            goto undo;
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    }
    rc = aw_spawn(NULL, aw__http_driver, s, &s->driver);
    if (rc < 0)
        goto undo;
    /* the report shows base_url as request messages show URLs: its
     * password hidden (a base that does not parse fails its first
     * request; its report then says only that there is one) */
    char *shown = NULL;
    bool oom = false;
    CURLU *b = s->base_url ? curl_url() : NULL;
    if (b && curl_url_set(b, CURLUPART_URL, s->base_url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK)
        shown = aw__http_shown(b, &oom);
    else if (s->base_url)
        oom = true;
    curl_url_cleanup(b);
    aw_track_open(&s->track, "HTTP session", "%s, opened at %s:%d",
                  shown ? shown : oom ? "a base URL" : s->base_url ? s->base_url : "no base URL",
                  file, line);
    aw__free(shown);
    *out = s;
    return 0;
undo:
    aw__http_free(s);
    return aw_raise(rc, "cannot open an HTTP session: %s", aw_strerror(rc));
}

/* Stop the session: abort its transfers, stop and join its driver.
 * 0, or the join's error (the driver still runs). */
static int aw__http_stop(aw_http_session_t *s) {
    s->closing = 1;
    aw__http_detach_all(s);
    if (s->drv_life) /* a managed session's driver runs shielded (see aw__http_driver) */
        aw_scope_cancel(s->drv_life);
    aw_task_cancel(s->driver);
    int rc = 0;
    aw_with (aw_shield(AW_SEC(10)))
        rc = aw_task_join(s->driver); /* the driver always returns 0 */
    return rc;
}

int aw_http_session_close(aw_http_session_t *s) {
    if (!s)
        return 0;
    if (!s->stopped) {
        int rc = aw__http_stop(s);
        if (rc < 0 && s->managed)
            return rc; /* the driver still runs: its block's exit tries again */
        if (rc < 0) {
            /* The join itself failed (no memory to arm its timer, the grace
             * ran out): the driver still runs and reads s. It frees s when it
             * ends; the session counts as closed either way. */
            s->orphaned = 1;
            return rc;
        }
        s->stopped = 1;
    }
    if (s->managed) {
        /* Closed by hand inside its with block (aiohttp allows it): the
         * connections go now, the record when the block's exit closes it
         * again, which then has nothing else to do (as file.h's close) */
        if (s->multi)
            curl_multi_cleanup(s->multi);
        s->multi = NULL;
        return 0;
    }
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
    c->s->managed = 0; /* this close frees it (also after a close by hand) */
    int rc = aw_http_session_close(c->s);
    c->s = NULL;
    return rc;
}

const aw_cm_type_t aw_http_session_type = {"aw_http_session", aw__http_session_enter,
                                           aw__http_session_exit, 0, 0};
