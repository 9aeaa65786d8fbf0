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
            aw_http_fetch_t f = {.session = s, .urls = urls, .count = 3};
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
