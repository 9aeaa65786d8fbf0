/* bench/http/http.c -> bench-http: GETs of a file from a local nginx
 * (started here, 127.0.0.1, keep-alive), three body sizes:
 *
 *   1k    20,000 GETs, 50 at a time
 *   64k    5,000 GETs, 10 at a time
 *   1m       500 GETs, 10 at a time
 *
 *   awith:          tasks sharing one aw_http_session, each looping
 *                   aw_with (response) + text(), as the seeds write it;
 *   curl_multi:     a plain C program on libcurl's multi interface
 *                   (curl_multi_poll), the dependency's own limit: bodies
 *                   counted and dropped, curl's default request;
 *   curl_multi_same: the same program doing awith's exchange: its request
 *                   (Accept-Encoding: gzip, deflate, which curl formats
 *                   at ~7,500 instructions a GET) and each body kept
 *                   whole in a buffer reused by its handle, as text()
 *                   keeps it (a 1 MiB copy is ~40 us here);
 *   aiohttp:        asyncio tasks sharing one ClientSession (limit as
 *                   the concurrency); aiohttp_uvloop: the same on uvloop
 *                   (1k only: the Python side is slow enough that one
 *                   loop says it).
 *
 * Then a 64 MiB download (streamed, chunk by chunk) vs curl(1) the command:
 * http_download_64m_s (seconds, ratio curl/awith) and MiB/s.
 *
 * Figures: http_get_<size>_ns, wall time per request (ratio = peer/awith,
 * > 1: awith faster); http_get_<size>_cpu_ns, the client process's CPU
 * time per request (robust on a loaded machine; nginx's CPU is not
 * counted); http_get_1k_rps. Each side is run separately (awith and the
 * curl programs taking turns), median of 5 (aiohttp: 3), all unpinned
 * (nginx needs the other CPU). */
#include "../bench.h"
#include "../../tests/http/servers.h"

#include <awith/http.h>

typedef struct {
    aw_http_session_t *s;
    long n;
    long failed;
} worker_t;

static const char *path;   /* "/1k.bin" ... */
static long body_len;      /* its size */

static int worker(void *arg) {
    worker_t *w = arg;
    for (long i = 0; i < w->n; i++) {
        aw_with (aw_http_response_t *r, aw_http_get(w->s, path)) {
            const char *t;
            if (aw_http_response_text(r, 0, &t, NULL) != body_len)
                w->failed++;
        }
        if (aw_status() < 0)
            return aw_status();
    }
    return 0;
}

static const char *base_url;
static long total, conc;
static double rate, cpu_per_req;

static int run(void *arg) {
    (void)arg;
    worker_t w[64];
    long failed = 0;
    aw_with (aw_http_session_t *s, aw_http_session(.base_url = base_url,
                                                   .max_host_connections = conc)) {
        double t0 = bench_now(), c0 = bench_cpu();
        aw_with (aw_group_t *g, aw_group()) {
            for (long i = 0; i < conc; i++) {
                w[i] = (worker_t){s, total / conc + (i < total % conc), 0};
                aw_spawn(g, worker, &w[i], NULL);
            }
        }
        double t = bench_now() - t0;
        rate = (double)total / (t / 1e9);
        cpu_per_req = (bench_cpu() - c0) / (double)total;
        for (long i = 0; i < conc; i++)
            failed += w[i].failed;
    }
    return failed ? -EIO : aw_status();
}

/* 64 MiB download, streamed (read() chunk by chunk, discarded). */
static double dl_mibs;
static char dl_url[128];

static int download(void *arg) {
    (void)arg;
    aw_with (aw_http_session_t *s, aw_http_session()) {
        double t0 = bench_now();
        long total = 0;
        aw_with (aw_http_response_t *r, aw_http_get(s, dl_url)) {
            const void *d;
            long n;
            while ((n = aw_http_response_read(r, &d)) > 0)
                total += n;
        }
        dl_mibs = (double)total / (1 << 20) / ((bench_now() - t0) / 1e9);
        if (total != 64L << 20)
            return aw_raise(-EIO, "downloaded %ld bytes", total);
    }
    return aw_status();
}

typedef struct {
    const char *name, *file;
    long len, total, conc;
    int py;                 /* peers: 2 asyncio and uvloop, 1 asyncio */
} size_t_;

static const size_t_ sizes[] = {
    {"1k", "1k.bin", 1024, 20000, 50, 2},
    {"64k", "64k.bin", 64 << 10, 5000, 10, 1},
    {"1m", "1m.bin", 1 << 20, 500, 10, 1},
};

/* One body size: awith, curl_multi, aiohttp; prints its figures. */
static int one_size(test_server_t *srv, const size_t_ *z) {
    char p[64];
    snprintf(p, sizeof p, "/%s", z->file);
    path = p;
    body_len = z->len;
    total = bench_n(z->total);
    conc = z->conc;
    char url[128], args[256];
    snprintf(url, sizeof url, "%s%s", srv->url, path);
    snprintf(args, sizeof args, "'%s' %ld %ld", url, total, conc);
    double pv[4] = {BENCH_NA, BENCH_NA, BENCH_NA, BENCH_NA};
    double pc[4] = {BENCH_NA, BENCH_NA, BENCH_NA, BENCH_NA};
    char cmd[1024];
    /* awith and the two curl programs take turns, so that load changes
     * on this shared machine fall on all three alike (run one after the
     * other, a ratio moved by 0.3 between runs) */
    double v[BENCH_REPS], cpu[BENCH_REPS];
    double rv[2][BENCH_REPS], rc[2][BENCH_REPS];
    int got[2] = {0, 0};
    aw_main(run, NULL); /* warm-up */
    for (int i = 0; i < BENCH_REPS; i++) {
        if (aw_main(run, NULL) < 0) {
            fprintf(stderr, "bench-http: the awith run (%s) failed\n", z->name);
            return -1;
        }
        v[i] = rate;
        cpu[i] = cpu_per_req;
        for (int k = 0; k < 2; k++) {
            snprintf(cmd, sizeof cmd, "'%s/curl_multi' %s%s 2>/dev/null",
                     bench_env("AW_BENCH_PEERS", BENCH_PEER_DIR), args, k ? " same" : "");
            double x[2];
            bench_popen_values(cmd, (const char *const[]){"rps", "cpu_ns", NULL}, x);
            if (x[0] > 0) {
                rv[k][got[k]] = x[0];
                rc[k][got[k]++] = x[1];
            }
        }
    }
    double awith = bench_median(v, BENCH_REPS), awith_cpu = bench_median(cpu, BENCH_REPS);
    for (int k = 0; k < 2; k++)
        if (got[k]) {
            pv[k] = bench_median(rv[k], got[k]);
            pc[k] = bench_median(rc[k], got[k]);
        }
    const char *kinds[] = {"asyncio", "uvloop"};
    for (int k = 0; k < z->py; k++) {
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' %ld %ld %s 3 2>/dev/null",
                 bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"), bench_env("AW_BENCH_PY", BENCH_PY_SCRIPT),
                 url, z->len > 4096 ? total / 5 : total, conc, kinds[k]);
        double x[2];
        bench_popen_values(cmd, (const char *const[]){"rps", "cpu_ns", NULL}, x);
        pv[2 + k] = x[0];
        pc[2 + k] = x[1];
    }
    const char *peers4[] = {"curl_multi", "curl_multi_same", "aiohttp", "aiohttp_uvloop", NULL};
    const char *peers3[] = {"curl_multi", "curl_multi_same", "aiohttp", NULL};
    const char *const *peers = z->py == 2 ? peers4 : peers3;
    double ns[4];
    for (int i = 0; i < 4; i++)
        ns[i] = pv[i] > 0 ? 1e9 / pv[i] : BENCH_NA;
    char name[64];
    snprintf(name, sizeof name, "http_get_%s_ns", z->name);
    bench_print(name, 1e9 / awith, peers, ns);
    snprintf(name, sizeof name, "http_get_%s_cpu_ns", z->name);
    bench_print(name, awith_cpu, peers, pc);
    if (z->py == 2) {
        printf("http_get_%s_rps awith=%.0f", z->name, awith);
        for (int i = 0; i < 4; i++)
            printf(pv[i] > 0 ? " %s=%.0f" : " %s=n/a", peers[i], pv[i]);
        printf(" (%ld GETs, %ld concurrent, keep-alive, local nginx)\n", total, conc);
    }
    return 0;
}

/* The parts bench/http/icount.sh measures one at a time:
 *   bench-http serve            start the nginx, print its URL, stop it
 *                               at EOF on stdin
 *   bench-http get URL PATH N C awith alone: N GETs of URL PATH, C at
 *                               a time; prints rps= cpu_ns= */
static int modes(int argc, char **argv) {
    if (!strcmp(argv[1], "serve")) {
        test_server_t srv = {0};
        if (ts_nginx_start(&srv, 0) < 0) {
            ts_stop(&srv);
            return 1;
        }
        char www[256];
        snprintf(www, sizeof www, "%s/www", srv.dir);
        ts_pattern_file(www, "64k.bin", (size_t)64 << 10);
        printf("%s\n", srv.url);
        fflush(stdout);
        char buf[64];
        while (fread(buf, 1, sizeof buf, stdin) > 0)
            ;
        ts_stop(&srv);
        return 0;
    }
    if (!strcmp(argv[1], "get") && argc == 6) {
        base_url = argv[2];
        path = argv[3];
        total = atol(argv[4]);
        conc = atol(argv[5]);
        if (conc < 1 || conc > 64 || total < conc)
            return 2;
        body_len = !strcmp(path, "/1k.bin") ? 1024 : !strcmp(path, "/64k.bin") ? 64 << 10 : 1 << 20;
        if (aw_main(run, NULL) < 0)
            return 1;
        printf("rps=%.1f cpu_ns=%.0f\n", rate, cpu_per_req);
        return 0;
    }
    fprintf(stderr, "usage: bench-http [serve | get URL PATH N C]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc > 1)
        return modes(argc, argv);
    test_server_t srv = {0};
    if (ts_nginx_start(&srv, 0) < 0) {
        fprintf(stderr, "bench-http: nginx did not start\n");
        ts_stop(&srv);
        return 1;
    }
    base_url = srv.url;
    char www[256];
    snprintf(www, sizeof www, "%s/www", srv.dir);
    ts_pattern_file(www, "64k.bin", (size_t)64 << 10);
    bench_config("wall and CPU time per GET, median of 5, awith and curl taking turns (aiohttp: 3, a fifth of the GETs for "
                 "64k and 1m); local nginx, keep-alive on every side; 1k: %ld GETs, 50 at a time; "
                 "64k: %ld, 10; 1m: %ld, 10; awith: one aw_http_session (max_host_connections = "
                 "the concurrency), text() per response; curl_multi: one multi handle, "
                 "CURLMOPT_MAX_HOST_CONNECTIONS = the concurrency, easy handles reused, bodies "
                 "dropped; curl_multi_same: the same with awith's request (Accept-Encoding: "
                 "gzip, deflate) and each body kept whole in a buffer its handle reuses, as "
                 "text() keeps it; aiohttp: "
                 "one ClientSession, TCPConnector(limit = the concurrency); unpinned",
                 bench_n(20000), bench_n(5000), bench_n(500));
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (one_size(&srv, &sizes[i]) < 0) {
            ts_stop(&srv);
            return 1;
        }

    /* 64 MiB: awith vs curl(1) */
    ts_pattern_file(www, "64m.bin", (size_t)64 << 20);
    snprintf(dl_url, sizeof dl_url, "%s/64m.bin", srv.url);
    double dv[BENCH_REPS], cv[BENCH_REPS];
    int nc = 0;
    for (int i = 0; i < BENCH_REPS; i++) {
        dv[i] = aw_main(download, NULL) == 0 ? dl_mibs : 0;
        char cmd[256];
        snprintf(cmd, sizeof cmd, "curl -s -o /dev/null '%s'", dl_url);
        double t0 = bench_now();
        if (ts_sh(cmd) == 0)
            cv[nc++] = 64.0 / ((bench_now() - t0) / 1e9);
    }
    ts_stop(&srv);
    double dl = bench_median(dv, BENCH_REPS), curl_cli = nc ? bench_median(cv, nc) : BENCH_NA;
    const char *cli[] = {"curl_cli", NULL};
    double cli_s[1] = {curl_cli > 0 ? 64.0 / curl_cli : BENCH_NA};
    bench_print("http_download_64m_s", dl > 0 ? 64.0 / dl : BENCH_NA, cli, cli_s);
    printf("http_download_64m_mibs awith=%.0f curl_cli=%.0f\n", dl, curl_cli);
    return 0;
}
