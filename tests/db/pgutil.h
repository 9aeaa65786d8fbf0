/* pgutil.h: the PostgreSQL the test wrapper (with-postgres.sh) started. */
#ifndef AW_TEST_PGUTIL_H
#define AW_TEST_PGUTIL_H

#include <awith/pg.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

/* The DSN, tagged with this process's pid as application_name so that
 * connections can be counted per test process on the server. */
static inline const char *pg_dsn(void) {
    static char buf[512];
    const char *d = getenv("AW_TEST_PG_DSN");
    if (!d)
        cr_skip_test("AW_TEST_PG_DSN not set: run under tests/db/with-postgres.sh");
    snprintf(buf, sizeof buf, "%s?application_name=aw%d", d, (int)getpid());
    return buf;
}

/* A DSN with one part changed (user:password / database). */
static inline const char *pg_dsn_with(const char *userpass, const char *db) {
    static char buf[512];
    const char *h = getenv("AW_TEST_PG_HOST"), *p = getenv("AW_TEST_PG_PORT");
    if (!h || !p)
        cr_skip_test("AW_TEST_PG_DSN not set: run under tests/db/with-postgres.sh");
    snprintf(buf, sizeof buf, "postgresql://%s@%s:%s/%s", userpass, h, p, db);
    return buf;
}

/* Connections of this process open on the server (pg_stat_activity),
 * counted over a separate connection (not included). */
static inline long long pg_server_conns(void) {
    aw_pg_t *c;
    long long n = -1;
    char app[32];
    snprintf(app, sizeof app, "aw%d", (int)getpid());
    if (aw_pg_open(&c, getenv("AW_TEST_PG_DSN")) < 0)
        return -1;
    aw_pg_fetch_int(c, &n, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    aw_pg_args(aw_pg_text(app)));
    aw_pg_close(c);
    return n;
}

/* Connections of this process left on the server once every client has
 * closed. A backend leaves pg_stat_activity a moment after its client's
 * Terminate (it exits on its own schedule), so this waits up to 5 s for
 * the count to reach 0 and returns the last count: a leaked connection
 * stays and still fails the caller's check. Call it inside the loop. */
static inline long long pg_server_conns_settled(void) {
    long long n = -1;
    for (int i = 0; i < 500 && (n = pg_server_conns()) != 0; i++)
        aw_sleep_ms(10);
    return n;
}

/* Stop or start the server (fault tests). */
static inline int pg_ctl(const char *what) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s %s", getenv("AW_TEST_PG_CTL"), what);
    return system(cmd);
}

#endif
