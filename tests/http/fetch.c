/* tests for src/http/fetch.c: fetch-many (seed 004) and the chunk stream. */
#include "testutil.h"
#include "http/servers.h"

#include <awith/http.h>

static test_server_t srv;
static void start_nginx(void) { cr_assert_eq(ts_nginx_start(&srv, 0), 0, "nginx did not start"); }
static void stop_all(void) { ts_stop(&srv); }
