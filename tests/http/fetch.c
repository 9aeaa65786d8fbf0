/* tests for src/http/fetch.c: fetch-many (seed 004) and the chunk stream. */
#include "testutil.h"
#include "http/servers.h"

#include <awith/http.h>

static test_server_t srv;
static void start_nginx(void) { cr_assert_eq(ts_nginx_start(&srv, 0), 0, "nginx did not start"); }
static void stop_all(void) { ts_stop(&srv); }

/* Every URL is yielded once, good ones with their body, bad ones with their
 * own error; at most `concurrency` connections are opened. */
static int t_fetch_all(void *arg) {
    char urls_buf[40][128];
    const char *urls[40];
    int refused_port = ts_free_port();
    for (int i = 0; i < 40; i++) {
        if (i % 10 == 3)
            snprintf(urls_buf[i], sizeof urls_buf[i], "%s/status/404", srv.url);
        else if (i % 10 == 7)
            snprintf(urls_buf[i], sizeof urls_buf[i], "http://127.0.0.1:%d/x", refused_port);
        else if (i == 9)
            snprintf(urls_buf[i], sizeof urls_buf[i], "http://no-such-host.invalid/");
        else
            snprintf(urls_buf[i], sizeof urls_buf[i], "%s/%s", srv.url, i % 2 ? "1k.bin" : "index.html");
        urls[i] = urls_buf[i];
    }
    int seen[40] = {0}, ok = 0, failed = 0;
    aw_with (aw_http_session_t *s, aw_http_session()) {
        aw_http_fetch_t f = {.session = s, .urls = urls, .count = 40, .concurrency = 5};
        aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
            size_t i = res->index;
            cr_assert_lt(i, 40);
            cr_assert_eq(seen[i]++, 0, "url %zu yielded once", i);
            cr_assert_str_eq(res->url, urls[i]);
            if (i == 9) {
                cr_assert_eq(res->error, -ENXIO);
                cr_assert(strstr(res->message, "no-such-host.invalid"));
                failed++;
            } else if (i % 10 == 7) {
                cr_assert_eq(res->error, -ECONNREFUSED, "url %zu: %d %s", i, res->error, res->message);
                cr_assert(strstr(res->message, urls[i]));
                failed++;
            } else if (i % 10 == 3) {
                cr_assert_eq(res->error, 0);
                cr_assert_eq(res->status, 404);
                cr_assert_str_eq(res->body, "not here\n");
                ok++;
            } else {
                cr_assert_eq(res->error, 0, "url %zu: %s", i, res->message);
                cr_assert_eq(res->status, 200);
                cr_assert_eq(res->len, i % 2 ? 1024u : 30u);
                ok++;
            }
        }
        cr_assert_eq(aw_status(), 0);
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0);
        cr_assert_leq(st.connects, 5 + 4 + 1, "at most 5 nginx connections (+ failed attempts)");
    }
    cr_assert_eq(ok + failed, 40);
    cr_assert_eq(failed, 5);
    return aw_status();
}

Test(fetch, yields_every_url_with_its_own_error, .init = start_nginx, .fini = stop_all) {
    int fds = aw_test_fds();
    aw_test_run(t_fetch_all, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* Leaving the loop early cancels the transfers in flight and closes their
 * connections (K2): the next request opens a new one. */
static int t_fetch_break(void *arg) {
    char urls_buf[12][128];
    const char *urls[12];
    for (int i = 0; i < 12; i++) {
        snprintf(urls_buf[i], sizeof urls_buf[i], "%s/%s", srv.url, i == 0 ? "1k.bin" : "slow/1m.bin");
        urls[i] = urls_buf[i];
    }
    aw_with (aw_http_session_t *s, aw_http_session(.max_host_connections = 4)) {
        aw_http_fetch_t f = {.session = s, .urls = urls, .count = 12, .concurrency = 4};
        int n = 0;
        aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
            cr_assert_eq(res->index, 0, "the small file comes first");
            n++;
            break;
        }
        cr_assert_eq(n, 1);
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0, "the 3 slow transfers were cancelled");
        cr_assert_eq(st.requests, 4);
        /* 4 connections were open: one went back to the pool, 3 were closed */
        int reused = 0;
        for (int i = 0; i < 4; i++) {
            aw_with (aw_http_response_t *r, aw_http_get(s, urls[0])) {
                const char *t;
                aw_http_response_text(r, 0, &t, NULL);
                reused += aw_http_response_connects(r) == 0;
            }
        }
        cr_assert_eq(reused, 4, "sequential requests reuse the one pooled connection");
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.connects, 4, "no half-read connection was reused");
    }
    return aw_status();
}

Test(fetch, break_cancels_in_flight_and_closes_their_connections, .init = start_nginx,
     .fini = stop_all) {
    int fds = aw_test_fds();
    aw_test_run(t_fetch_break, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

static int t_fetch_deadline(void *arg) {
    char url[128];
    snprintf(url, sizeof url, "%s/slow/1m.bin", srv.url);
    const char *urls[3] = {url, url, url};
    aw_with (aw_http_session_t *s, aw_http_session()) {
        int n = 0;
        aw_with (aw_fail_after(AW_MS(150))) {
            aw_http_fetch_t f = {.session = s, .urls = urls, .count = 3, .in_order = arg != NULL};
            aw_for (aw_http_result_t *res, aw_http_fetch_many(&f))
                n++;
        }
        cr_assert_eq(aw_status(), -ETIMEDOUT);
        aw_err_clear();
        cr_assert_eq(n, 0);
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0);
    }
    return aw_status();
}

Test(fetch, deadline_around_the_loop_cancels_everything, .init = start_nginx, .fini = stop_all) {
    int fds = aw_test_fds();
    aw_test_run(t_fetch_deadline, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

Test(fetch, in_order_deadline_around_the_loop_cancels_everything, .init = start_nginx,
     .fini = stop_all) {
    int fds = aw_test_fds();
    aw_test_run(t_fetch_deadline, "in order", 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* ---- in the order of the list (in_order) ---- */

static test_server_t bad;
static void start_bad(void) { cr_assert_eq(ts_bad_start(&bad), 0, "the misbehaving server did not start"); }
static void stop_bad(void) { ts_stop(&bad); }

/* URL 0 is answered only after URLs 1..3 were (the server's /gate/3): the
 * items still come 0, 1, 2, ...; while URL 0 is pending, the 3 finished
 * ones wait in the window and nothing else starts (at most 4 responses
 * held, 3 /ok served). */
static int t_in_order(void *arg) {
    char urls_buf[10][128];
    const char *urls[10];
    for (int i = 0; i < 10; i++) {
        snprintf(urls_buf[i], sizeof urls_buf[i], "%s/%s", bad.url, i == 0 ? "gate/3" : "ok");
        urls[i] = urls_buf[i];
    }
    aw_with (aw_http_session_t *s, aw_http_session()) {
        aw_http_fetch_t f = {.session = s, .urls = urls, .count = 10, .concurrency = 4,
                             .in_order = true};
        size_t want = 0;
        aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
            cr_assert_eq(res->index, want, "item %zu came where %zu was due", res->index, want);
            cr_assert_str_eq(res->url, urls[want]);
            cr_assert_eq(res->error, 0, "url %zu: %s", want, res->message);
            cr_assert_eq(res->status, 200);
            cr_assert_str_eq(res->body, want == 0 ? "gate\n" : "ok\n");
            if (want == 0) {
                aw_http_session_stats_t st;
                aw_http_session_stats(s, &st);
                cr_assert_eq(st.active, 4, "URL 0 and the 3 finished early are held, no more");
                cr_assert_eq(ts_served_in(bad.dir), 3, "URLs 1..3 finished first, 4.. not started");
            }
            want++;
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(want, 10);
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0);
        cr_assert_eq(st.requests, 10);
        cr_assert_leq(st.connects, 4, "at most 4 connections, reused");
    }
    return aw_status();
}

Test(fetch, in_order_yields_in_list_order_when_later_urls_finish_first, .init = start_bad,
     .fini = stop_bad) {
    int fds = aw_test_fds();
    aw_test_run(t_in_order, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* Per-URL errors come in their place in the list, each with its own code
 * and message, and do not stop the rest. URL 0 is held until URL 3 is
 * answered, so the failures after it are known before their turn. */
static int t_in_order_errors(void *arg) {
    char urls_buf[7][128];
    const char *urls[7];
    int refused_port = ts_free_port();
    snprintf(urls_buf[0], sizeof urls_buf[0], "%s/gate/1", bad.url);
    snprintf(urls_buf[1], sizeof urls_buf[1], "%s/truncated", bad.url);
    snprintf(urls_buf[2], sizeof urls_buf[2], "http://127.0.0.1:%d/x", refused_port);
    snprintf(urls_buf[3], sizeof urls_buf[3], "%s/ok", bad.url);
    snprintf(urls_buf[4], sizeof urls_buf[4], "http://no-such-host.invalid/");
    snprintf(urls_buf[5], sizeof urls_buf[5], "%s/nothing-here", bad.url);
    snprintf(urls_buf[6], sizeof urls_buf[6], "%s/ok", bad.url);
    for (int i = 0; i < 7; i++)
        urls[i] = urls_buf[i];
    const int want_err[7] = {0, -EPIPE, -ECONNREFUSED, 0, -ENXIO, 0, 0};
    const long want_status[7] = {200, 200, 0, 200, 0, 404, 200};
    aw_with (aw_http_session_t *s, aw_http_session()) {
        aw_http_fetch_t f = {.session = s, .urls = urls, .count = 7, .concurrency = 4,
                             .in_order = true};
        size_t want = 0;
        aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
            cr_assert_eq(res->index, want, "item %zu came where %zu was due", res->index, want);
            cr_assert_eq(res->error, want_err[want], "url %zu: %d %s", want, res->error, res->message);
            if (want_err[want]) {
                cr_assert(strstr(res->message, want == 4 ? "no-such-host.invalid" : urls[want]),
                          "url %zu: %s", want, res->message);
                cr_assert_str_eq(res->body, "");
            } else {
                cr_assert_str_eq(res->message, "");
                cr_assert_eq(res->status, want_status[want], "url %zu", want);
            }
            want++;
        }
        cr_assert_eq(aw_status(), 0, "per-URL errors are not the loop's");
        cr_assert_eq(want, 7);
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0);
    }
    return aw_status();
}

Test(fetch, in_order_reports_each_error_in_its_place, .init = start_bad, .fini = stop_bad) {
    int fds = aw_test_fds();
    aw_test_run(t_in_order_errors, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* Leaving an in-order loop mid-way: URL 2 finished early (waiting in the
 * window), URLs 3 and 4 are stalled mid-body in flight. All are released:
 * no response left, the stalled connections closed (not pooled), and the
 * pool still serves the next requests. */
static int t_in_order_break(void *arg) {
    char urls_buf[8][128];
    const char *urls[8];
    for (int i = 0; i < 8; i++) {
        snprintf(urls_buf[i], sizeof urls_buf[i], "%s/%s", bad.url,
                 i == 0 ? "gate/2" : i <= 2 ? "ok" : "stall");
        urls[i] = urls_buf[i];
    }
    aw_with (aw_http_session_t *s, aw_http_session()) {
        int fds0 = aw_test_fds();
        aw_http_fetch_t f = {.session = s, .urls = urls, .count = 8, .concurrency = 4,
                             .in_order = true};
        size_t n = 0;
        aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
            cr_assert_eq(res->index, n);
            cr_assert_eq(res->error, 0, "url %zu: %s", n, res->message);
            if (++n == 2) {
                aw_http_session_stats_t st;
                aw_http_session_stats(s, &st);
                cr_assert_eq(st.active, 4, "URLs 1, 2 (finished), 3, 4 (stalled) are held");
                break;
            }
        }
        cr_assert_eq(aw_status(), 0);
        cr_assert_eq(n, 2);
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0, "the window was released");
        cr_assert_eq(st.requests, 5, "URLs 0..4 started and ended, 5.. never started");
        /* left open: the pooled connections of URLs 0..2, at most; the two
         * stalled ones were closed */
        cr_assert_leq(aw_test_fds() - fds0, 3, "fds %d -> %d", fds0, aw_test_fds());
        /* (asked of curl, not of the server's count of accepts, which
         * may still be catching up with the stalled URLs' connections) */
        for (int i = 0; i < 3; i++) {
            aw_with (aw_http_response_t *r, aw_http_get(s, urls[1])) {
                const char *t;
                cr_assert_eq(aw_http_response_text(r, 0, &t, NULL), 3);
                cr_assert_str_eq(t, "ok\n");
                cr_assert_eq(aw_http_response_connects(r), 0,
                             "the next requests reuse a pooled connection");
            }
        }
        cr_assert_eq(aw_status(), 0);
    }
    return aw_status();
}

Test(fetch, in_order_break_releases_in_flight_and_waiting_results, .init = start_bad,
     .fini = stop_bad) {
    int fds = aw_test_fds();
    aw_test_run(t_in_order_break, NULL, 0);
    cr_assert_eq(aw_test_fds(), fds);
}

/* A URL that cannot even start (here: no session) keeps its error and its
 * message in its slot until its turn. */
static int t_in_order_start_fails(void *arg) {
    const char *urls[6] = {"http://127.0.0.1:1/a", "http://127.0.0.1:1/b", "http://127.0.0.1:1/c",
                           "http://127.0.0.1:1/d", "http://127.0.0.1:1/e", "http://127.0.0.1:1/f"};
    aw_http_fetch_t f = {.session = NULL, .urls = urls, .count = 6, .concurrency = 4,
                         .in_order = true};
    size_t want = 0;
    aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
        cr_assert_eq(res->index, want);
        cr_assert_str_eq(res->url, urls[want]);
        cr_assert_eq(res->error, -EINVAL);
        cr_assert(strstr(res->message, "closed session"), "%s", res->message);
        want++;
    }
    cr_assert_eq(want, 6);
    return aw_status();
}

Test(fetch, in_order_keeps_start_failures_in_their_place) {
    aw_test_run(t_in_order_start_fails, NULL, 0);
}

/* A gzip-encoded body whose framing is complete but whose gzip stream is
 * not (the server sent 200 bytes of a longer one) is an error, never a
 * short success: text() says -EBADMSG, and so does fetch-many's item
 * (its bodies are decoded as they arrive; before, that item came with
 * error 0 and the part decoded so far). */
static void start_gz_cut(void) {
    start_nginx();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cd %s/www && mkdir -p gz && gzip -c < index.html > gz/hello && "
             "gzip -c < 1m.bin | head -c 200 > gz/cut", srv.dir);
    cr_assert_eq(ts_sh(cmd), 0);
}

static int t_gz_cut(void *arg) {
    char urls_buf[2][128];
    const char *urls[2] = {urls_buf[0], urls_buf[1]};
    snprintf(urls_buf[0], sizeof urls_buf[0], "%s/gz/hello", srv.url);
    snprintf(urls_buf[1], sizeof urls_buf[1], "%s/gz/cut", srv.url);
    aw_with (aw_http_session_t *s, aw_http_session()) {
        aw_with (aw_http_response_t *r, aw_http_get(s, urls[1])) {
            const char *t;
            cr_assert_eq(aw_http_response_text(r, 0, &t, NULL), -EBADMSG);
        }
        cr_assert_eq(aw_status(), -EBADMSG);
        aw_err_clear();
        for (int in_order = 0; in_order < 2; in_order++) {
            aw_http_fetch_t f = {.session = s, .urls = urls, .count = 2, .in_order = in_order};
            int n = 0;
            aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
                n++;
                if (res->index == 0) {
                    cr_assert_eq(res->error, 0, "%s", res->message);
                    cr_assert_str_eq(res->body, "<html>hello from nginx</html>\n");
                } else {
                    cr_assert_eq(res->error, -EBADMSG, "in_order %d: error %d, %zu bytes", in_order,
                                 res->error, res->len);
                    cr_assert(strstr(res->message, "/gz/cut"), "%s", res->message);
                    cr_assert(strstr(res->message, "gzip"), "%s", res->message);
                }
            }
            cr_assert_eq(n, 2);
            cr_assert_eq(aw_status(), 0);
        }
    }
    return aw_status();
}

Test(fetch, a_gzip_body_cut_short_is_an_error_not_a_short_body, .init = start_gz_cut,
     .fini = stop_all) {
    aw_test_run(t_gz_cut, NULL, 0);
}
