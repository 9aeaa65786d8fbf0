/* tests for src/http/cookie.c: the session's cookie jar matches paths as
 * RFC 6265 5.1.4 says, where libcurl 7.88 does not (issue 11, 1.10): a
 * cookie with Path=/one/two/ is sent to /one/two/ and below, never to
 * /one/two; a cookie without Path gets the RFC's default-path (/dflt/sub
 * for /dflt/sub/set), which does match /dflt/sub. Against a real nginx
 * (servers.h) that echoes the Cookie header it got, one request at a
 * time, across redirects (each hop is its own request) and concurrently
 * (fetch-many: a request to /one/two/x in flight with one to /one/two
 * still gets the cookie). */
#include "http/common.h"

static void expect(aw_http_session_t *s, const char *url, const char *want) {
    char out[128] = "";
    get_text(s, url, out, sizeof out, NULL);
    cr_assert_str_eq(out, want, "GET %s", url);
}

static int t_path(void *arg) {
    aw_with (aw_http_session_t *s, aw_http_session(.base_url = srv.url, .cookies = true)) {
        get_text(s, "/one/set", NULL, 0, NULL); /* p=1; Path=/one/two/ */
        expect(s, "/one/two/", "cookie=[p=1]\n");
        expect(s, "/one/two/x", "cookie=[p=1]\n");
        expect(s, "/one/two", "cookie=[]\n"); /* curl alone sends it */
        expect(s, "/one/two?q=1", "cookie=[]\n");
        expect(s, "/one/twothree", "cookie=[]\n");
        expect(s, "/one/two/x", "cookie=[p=1]\n"); /* withheld once, not lost */
        get_text(s, "/ex/set", NULL, 0, NULL); /* e=1; Path=/ex/: its own directory */
        expect(s, "/ex/", "cookie=[e=1]\n");
        expect(s, "/ex", "cookie=[]\n");
    }
    return aw_status();
}

Test(http, cookie_path_with_a_trailing_slash_is_rfc6265s, .init = start_nginx, .fini = stop_all) {
    aw_test_run(t_path, NULL, 0);
}

static int t_default_path(void *arg) {
    aw_with (aw_http_session_t *s, aw_http_session(.base_url = srv.url, .cookies = true)) {
        get_text(s, "/dflt/sub/set", NULL, 0, NULL); /* d=1, no Path: /dflt/sub */
        expect(s, "/dflt/sub", "cookie=[d=1]\n");
        expect(s, "/dflt/sub/x", "cookie=[d=1]\n");
        expect(s, "/dflt", "cookie=[]\n");
        expect(s, "/dflt/subx", "cookie=[]\n");
    }
    return aw_status();
}

Test(http, cookie_default_path_is_rfc6265s, .init = start_nginx, .fini = stop_all) {
    aw_test_run(t_default_path, NULL, 0);
}

static int t_redirect(void *arg) {
    aw_with (aw_http_session_t *s, aw_http_session(.base_url = srv.url, .cookies = true)) {
        get_text(s, "/one/set", NULL, 0, NULL);
        /* /one/two/go (the cookie matches) redirects to /one/two (it does not) */
        expect(s, "/one/two/go", "cookie=[]\n");
        /* /one/go-x (no match) redirects to /one/two/x (a match) */
        expect(s, "/one/go-x", "cookie=[p=1]\n");
    }
    return aw_status();
}

Test(http, cookie_path_match_holds_for_each_redirect_hop, .init = start_nginx, .fini = stop_all) {
    aw_test_run(t_redirect, NULL, 0);
}

static int t_concurrent(void *arg) {
    aw_with (aw_http_session_t *s, aw_http_session(.base_url = srv.url, .cookies = true)) {
        get_text(s, "/one/set", NULL, 0, NULL);
        const char *urls[16];
        for (int i = 0; i < 16; i++)
            urls[i] = i % 2 ? "/one/two/x" : "/one/two";
        aw_http_fetch_t f = {.session = s, .urls = urls, .count = 16, .concurrency = 16};
        int n = 0;
        aw_for (aw_http_result_t *res, aw_http_fetch_many(&f)) {
            cr_assert_eq(res->error, 0, "%s", res->message);
            cr_assert_str_eq(res->body, res->index % 2 ? "cookie=[p=1]\n" : "cookie=[]\n",
                             "%s", res->url);
            n++;
        }
        cr_assert_eq(n, 16);
        expect(s, "/one/two/", "cookie=[p=1]\n");
    }
    return aw_status();
}

Test(http, cookie_withheld_from_one_request_reaches_the_others, .init = start_nginx,
     .fini = stop_all) {
    aw_test_run(t_concurrent, NULL, 0);
}
