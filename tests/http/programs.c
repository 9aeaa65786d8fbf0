/* tests/http/programs.c: a crawler, written as an aiohttp user writes
 * one: one session, a semaphore bounding concurrency, a task group (or
 * gather) of fetches, a deadline per request, one URL that fails and one
 * that hangs, and Ctrl-C (a real SIGINT) halfway. Checked: every result
 * and error accounted for, every response released, the session closed,
 * nothing reported but what the user caused. Lines covered: I2, I3, G1,
 * J1, K2, K4, (c) 18. */
#include "http/common.h"

#include <awith/gather.h>
#include <signal.h>

static char reports[4096];
static void keep_report(const char *msg, void *arg) {
    (void)arg;
    strncat(reports, msg, sizeof reports - strlen(reports) - 1);
}

enum { NURL = 8 };
static char urls[NURL][128];
static const char *paths_[NURL] = {"/index.html", "/1k.bin", "/ok", "/reset",
                                   "/stall", "/index.html", "/1k.bin", "/ok"};

typedef struct crawl {
    aw_http_session_t *s;
    aw_sem_t *sem;
    int in_flight, max_in_flight;
    int started, finished;
} crawl_t;
static crawl_t C;
static aw_sem_t slots = AW_SEM_INIT("slots", 2, 2);

static void make_urls(void) {
    for (int i = 0; i < NURL; i++) {
        bool misbehaving = i == 2 || i == 3 || i == 4 || i == 7;
        snprintf(urls[i], sizeof urls[i], "%s%s", misbehaving ? bad.url : srv.url, paths_[i]);
    }
}

/* async def fetch(url): async with sem: async with timeout(0.5):
 *     async with s.get(url) as r: return len(await r.text()) */
static int fetch(void *arg, void **value) {
    const char *url = arg;
    C.started++;
    aw_with (aw_sem_held(C.sem)) {
        if (++C.in_flight > C.max_in_flight)
            C.max_in_flight = C.in_flight;
        aw_with (aw_fail_after(AW_MS(500))) {
            aw_with (aw_http_response_t *r, aw_http_get(C.s, url)) {
                const char *t;
                long n = aw_http_response_text(r, 0, &t, NULL);
                if (n >= 0)
                    *value = (void *)(intptr_t)n;
            }
        }
        C.in_flight--;
    }
    C.finished++;
    return aw_status();
}

/* The crawler that keeps going: each failure is caught and recorded in
 * its slot (Python: return_exceptions=True). */
static int fetch_caught(void *arg, void **value) {
    int rc = fetch(arg, value);
    if (rc < 0) {
        *value = (void *)(intptr_t)rc;
        aw_err_clear();
    }
    return 0;
}

static int crawl_caught(void *arg) {
    aw_result_t r[NURL];
    int fds0 = aw_test_fds();
    aw_with (aw_http_session_t *s, aw_http_session()) {
        C.s = s;
        C.sem = &slots;
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < NURL; i++)
                aw_spawn_result(g, fetch_caught, urls[i], &r[i]);
        }
        cr_assert_eq(aw_status(), 0, "the group left with %s", aw_err_name(aw_status()));
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0, "every response released");
    }
    cr_assert_eq(aw_status(), 0);
    for (int i = 0; i < NURL; i++)
        cr_assert_eq(r[i].status, 0, "slot %d", i);
    long v[NURL];
    for (int i = 0; i < NURL; i++)
        v[i] = (long)(intptr_t)r[i].value;
    cr_assert_eq(v[0], 30);
    cr_assert_eq(v[1], 1024);
    cr_assert_eq(v[2], 3);
    cr_assert(v[3] == -ECONNRESET || v[3] == -EPIPE || v[3] == -EBADMSG, "/reset: %s",
              aw_err_name((int)v[3]));
    cr_assert_eq(v[4], -ETIMEDOUT, "/stall: %s", aw_err_name((int)v[4]));
    cr_assert_eq(v[5], 30);
    cr_assert_eq(v[6], 1024);
    cr_assert_eq(v[7], 3);
    cr_assert_eq(C.max_in_flight, 2);
    cr_assert_eq(C.started, NURL);
    cr_assert_eq(C.finished, NURL);
    cr_assert_eq(aw_test_fds(), fds0, "every connection closed with the session");
    return 0;
}
Test(programs, I3_a_crawler_accounts_for_every_url, .init = start_both, .fini = stop_all) {
    make_urls();
    aw_loop_opts_t o = {.log = keep_report};
    cr_assert_eq(aw_main_opts(&o, crawl_caught, NULL), 0);
    cr_assert_str_eq(reports, "", "nothing reported: %s", reports);
}

/* The strict crawler: gather fails with the group error, whose members are
 * the two failures (the hang as its timeout), in completion order; the
 * fetches the group cancelled are not failures. */
static int crawl_gather(void *arg) {
    aw_result_t r[NURL];
    for (int i = 0; i < NURL; i++)
        r[i] = (aw_result_t)AW_RESULT(fetch, urls[i]);
    aw_with (aw_http_session_t *s, aw_http_session()) {
        C.s = s;
        C.sem = &slots;
        int rc = aw_gather(r, NURL);
        cr_assert_eq(rc, -AW_EGROUP, "gather: %s", aw_err_name(rc));
        const aw_err_t *e = aw_err_current();
        int n = 0;
        for (const aw_err_t *m = e->members; m; m = m->next) {
            n++;
            cr_assert_neq(m->code, -ECANCELED, "a cancelled sibling is not a failure");
        }
        cr_assert_geq(n, 1);
        cr_assert_neq(r[3].status, 0);
        aw_err_clear();
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0, "every response released");
    }
    cr_assert_eq(C.in_flight, 0);
    cr_assert_eq(C.started, C.finished);
    return aw_status();
}
Test(programs, I2_a_strict_crawler_fails_with_the_failures_only, .init = start_both, .fini = stop_all) {
    make_urls();
    aw_loop_opts_t o = {.log = keep_report};
    cr_assert_eq(aw_main_opts(&o, crawl_gather, NULL), 0);
    cr_assert_str_eq(reports, "", "nothing reported: %s", reports);
}

/* Ctrl-C halfway: after three URLs are done, a real SIGINT. The crawl
 * stops: every response released, the session closed, aw_main returns
 * -ECANCELED after one line naming the signal. */
static int interrupter(void *arg) {
    while (C.finished < 3)
        if (aw_sleep_ms(1) < 0)
            return 0;
    kill(getpid(), SIGINT);
    return 0;
}
static int crawl_interrupted(void *arg) {
    aw_result_t r[NURL];
    int fds0 = aw_test_fds();
    aw_with (aw_http_session_t *s, aw_http_session()) {
        C.s = s;
        C.sem = &slots;
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, interrupter, NULL, NULL);
            for (int i = 0; i < NURL; i++)
                aw_spawn_result(g, fetch, urls[i], &r[i]);
        }
        cr_assert_eq(aw_status(), -ECANCELED, "the group left with %s", aw_err_name(aw_status()));
        aw_http_session_stats_t st;
        aw_http_session_stats(s, &st);
        cr_assert_eq(st.active, 0, "every response released");
    }
    for (int i = 0; i < NURL; i++)
        cr_assert_neq(r[i].status, -EINPROGRESS, "slot %d filled", i);
    cr_assert_eq(C.in_flight, 0);
    cr_assert_eq(C.started, C.finished);
    cr_assert_eq(aw_test_fds(), fds0);
    return aw_status();
}
Test(programs, K4_ctrl_c_halfway_through_a_crawl_releases_everything, .init = start_both,
     .fini = stop_all) {
    make_urls();
    aw_loop_opts_t o = {.log = keep_report, .cancel_on_signals = true};
    cr_assert_eq(aw_main_opts(&o, crawl_interrupted, NULL), -ECANCELED);
    cr_assert(strstr(reports, "INT received"), "%s", reports);
    fprintf(stderr, "reports: %s\n", reports);
}

/* ======== a mirror: downloads streamed into atomic files ======== */

/* Each download streams its body into aw_file_atomic: the file appears
 * whole, or not at all. /slow/1m.bin is cut by its deadline, /status/404
 * fails with raise_for_status: neither leaves a file or a temporary. */
#include <awith/file.h>
#include <dirent.h>
static char mdir[128];
typedef struct dl { const char *path; const char *dest; long got; } dl_t;
static int download(void *arg, void **value) {
    dl_t *d = arg;
    aw_with (aw_sem_held(C.sem))
    aw_with (aw_fail_after(AW_MS(300)))
    aw_with (aw_http_response_t *r, aw_http_get(C.s, d->path, .raise_for_status = 1))
    aw_with (aw_file_t *f, aw_file_atomic(d->dest, 0644)) {
        const void *data;
        long n;
        while ((n = aw_http_response_read(r, &data)) > 0) {
            if (aw_file_write(f, data, (size_t)n) < 0)
                break;
            d->got += n;
        }
    }
    return aw_status();
}
static int count_entries(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}
static int mirror_main(void *arg) {
    static char dest[3][192];
    static dl_t d[3] = {{"/1m.bin"}, {"/slow/1m.bin"}, {"/status/404"}};
    for (int i = 0; i < 3; i++) {
        snprintf(dest[i], sizeof dest[i], "%s/f%d", mdir, i);
        d[i].dest = dest[i];
    }
    int fds0 = aw_test_fds();
    aw_result_t r[3];
    aw_with (aw_http_session_t *s, aw_http_session(.base_url = srv.url)) {
        C.s = s;
        C.sem = &slots;
        aw_with (aw_group_t *g, aw_group()) {
            for (int i = 0; i < 3; i++)
                aw_spawn_result(g, (aw_result_fn)download, &d[i], &r[i]);
        }
        const aw_err_t *e = aw_err_current();
        cr_assert_not_null(e);
        cr_assert_eq(e->code, -AW_EGROUP);
        aw_err_clear();
    }
    cr_assert_eq(aw_test_fds(), fds0);
    /* the 404 fails first and cancels its siblings: what is left on disk
     * is whole files only */
    cr_assert_eq(r[2].status, -EREMOTEIO, "404: %s", aw_err_name(r[2].status));
    char p[256];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/f%d", mdir, i);
        struct stat st;
        if (stat(p, &st) == 0)
            cr_assert_eq(st.st_size, 1 << 20, "f%d is whole (%ld)", i, (long)st.st_size);
        else
            cr_assert_neq(r[i].status, 0, "f%d: the download succeeded but no file", i);
    }
    int n = count_entries(mdir);
    int whole = 0;
    for (int i = 0; i < 3; i++)
        whole += r[i].status == 0;
    cr_assert_eq(n, whole, "no temporary left behind (%d entries, %d whole)", n, whole);
    return 0;
}
Test(programs, K5_a_mirror_leaves_whole_files_or_none, .init = start_both, .fini = stop_all) {
    aw_test_mkdtemp(mdir, sizeof mdir, "mirror");
    aw_loop_opts_t o = {.log = keep_report};
    cr_assert_eq(aw_main_opts(&o, mirror_main, NULL), 0);
    cr_assert_str_eq(reports, "", "nothing reported: %s", reports);
    aw_test_rmtree(mdir);
}
