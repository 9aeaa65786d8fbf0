/* common.h: what the HTTP tests share: the servers (servers.h) as
 * Criterion fixtures, and small helpers run inside the loop. */
#ifndef AW_TEST_HTTP_COMMON_H
#define AW_TEST_HTTP_COMMON_H

#include "testutil.h"
#include "http/servers.h"

#include <awith/http.h>

static test_server_t srv __attribute__((unused)), bad __attribute__((unused));

static inline void start_nginx(void) { cr_assert_eq(ts_nginx_start(&srv, 0), 0, "nginx did not start"); }
static inline void start_nginx_tls(void) { cr_assert_eq(ts_nginx_start(&srv, 1), 0, "nginx (TLS) did not start"); }
static inline void start_both(void) {
    start_nginx();
    cr_assert_eq(ts_bad_start(&bad), 0, "the misbehaving server did not start");
}
static inline void stop_all(void) {
    ts_stop(&srv);
    ts_stop(&bad);
}

/* GET url, read the whole text; returns text()'s result, copies the text. */
static inline long get_text(aw_http_session_t *s, const char *url, char *out, size_t size,
                            long *status) {
    long n = -1;
    aw_with (aw_http_response_t *r, aw_http_get(s, url)) {
        const char *t;
        if (status)
            *status = aw_http_response_status(r);
        n = aw_http_response_text(r, 0, &t, NULL);
        if (n >= 0 && out)
            snprintf(out, size, "%s", t);
    }
    return aw_status() < 0 ? aw_status() : n;
}

static inline void check_message(const char *needle) {
    const aw_err_t *e = aw_err_current();
    cr_assert(e, "an error record is pending");
    cr_assert(strstr(e->msg, needle), "the message names %s: %s", needle, e->msg);
}

#endif
