/* bench/http/http.c -> bench-http: 20,000 GETs of a 1 KiB file from a local
 * nginx (started here, 127.0.0.1, keep-alive), 50 at a time.
 *
 *   awith:          50 tasks sharing one aw_http_session, each looping
 *                   aw_with (response) + text(), as the seeds write it;
 *   curl_multi:     a plain C program on libcurl's multi interface
 *                   (curl_multi_poll), the dependency's own limit;
 *   aiohttp:        50 asyncio tasks sharing one ClientSession (limit 50);
 *   aiohttp_uvloop: the same on uvloop.
 *
 * Then a 64 MiB download (streamed, chunk by chunk) vs curl(1) the command:
 * http_download_64m_s (seconds, ratio curl/awith) and MiB/s.
 *
 * Figures: http_get_1k_ns, wall time per request (ratio = peer/awith, > 1:
 * awith faster); http_get_1k_cpu_ns, the client process's CPU time per
 * request (robust on a loaded machine; nginx's CPU is not counted); and
 * requests/s for each. Each side is run separately (median of runs). */
#include "../bench.h"
#include "../../tests/http/servers.h"

#include <awith/http.h>

typedef struct {
    aw_http_session_t *s;
    long n;
    long failed;
} worker_t;

static int worker(void *arg) {
    worker_t *w = arg;
    for (long i = 0; i < w->n; i++) {
        aw_with (aw_http_response_t *r, aw_http_get(w->s, "/1k.bin")) {
            const char *t;
            if (aw_http_response_text(r, 0, &t, NULL) != 1024)
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

int main(void) {
    test_server_t srv = {0};
    if (ts_nginx_start(&srv, 0) < 0) {
        fprintf(stderr, "bench-http: nginx did not start\n");
        ts_stop(&srv);
        return 1;
    }
    base_url = srv.url;
    total = bench_n(20000);
    conc = 50;
    double v[BENCH_REPS], cpu[BENCH_REPS];
    aw_main(run, NULL); /* warm-up */
    for (int i = 0; i < BENCH_REPS; i++) {
        if (aw_main(run, NULL) < 0) {
            fprintf(stderr, "bench-http: the awith run failed\n");
            ts_stop(&srv);
            return 1;
        }
        v[i] = rate;
        cpu[i] = cpu_per_req;
    }
    double awith = bench_median(v, BENCH_REPS), awith_cpu = bench_median(cpu, BENCH_REPS);

    char url[128], args[256];
    snprintf(url, sizeof url, "%s/1k.bin", srv.url);
    snprintf(args, sizeof args, "'%s' %ld %ld", url, total, conc);
    double pv[3], pc[3];
    pv[0] = bench_peer("curl_multi", args, "rps");
    pc[0] = bench_peer("curl_multi", args, "cpu_ns");
    snprintf(args, sizeof args, "'%s' %ld %ld asyncio 3", url, total, conc);
    pv[1] = bench_python(args, "rps");
    pc[1] = bench_python(args, "cpu_ns");
    snprintf(args, sizeof args, "'%s' %ld %ld uvloop 3", url, total, conc);
    pv[2] = bench_python(args, "rps");
    pc[2] = bench_python(args, "cpu_ns");

    /* 64 MiB: awith vs curl(1) */
    char www[256];
    snprintf(www, sizeof www, "%s/www", srv.dir);
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

    const char *peers[] = {"curl_multi", "aiohttp", "aiohttp_uvloop", NULL};
    double ns[3];
    for (int i = 0; i < 3; i++)
        ns[i] = pv[i] > 0 ? 1e9 / pv[i] : BENCH_NA;
    bench_print("http_get_1k_ns", 1e9 / awith, peers, ns);
    bench_print("http_get_1k_cpu_ns", awith_cpu, peers, pc);
    printf("http_get_1k_rps awith=%.0f", awith);
    for (int i = 0; i < 3; i++)
        printf(pv[i] > 0 ? " %s=%.0f" : " %s=n/a", peers[i], pv[i]);
    printf(" (%ld GETs, %ld concurrent, keep-alive, local nginx)\n", total, conc);
    const char *cli[] = {"curl_cli", NULL};
    double cli_s[1] = {curl_cli > 0 ? 64.0 / curl_cli : BENCH_NA};
    bench_print("http_download_64m_s", dl > 0 ? 64.0 / dl : BENCH_NA, cli, cli_s);
    printf("http_download_64m_mibs awith=%.0f curl_cli=%.0f\n", dl, curl_cli);
    return 0;
}
