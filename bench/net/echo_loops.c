/* echo_loops.c -> bench-echo-loops: TCP echo served by 1 loop and by 2
 * loops (aw_loops_run + aw_reuseport_server: one SO_REUSEPORT listener
 * per loop, shared nothing), on the same load.
 *
 *   echo_loops_rtt_per_s  round trips per second, 64-byte ping-pong, the
 *                    load from 2 client processes (peers/echo_client.c,
 *                    one epoll loop each, 50 connections each), summed.
 *                    loops1 and loops2 are the server with 1 and 2 loops;
 *                    ratio_loops1 = loops2 / loops1 (above 1: the second
 *                    loop helps).
 *   echo_loops_server_cpu_ns  the server process's CPU time (user +
 *                    system) per round trip; ratio_loops1 = loops1 /
 *                    loops2 (above 1: 2 loops spend less per round trip).
 *
 * Nothing is pinned: the clients and the loops share the machine's CPUs,
 * as a server and its load do on one host. On a 2-CPU machine the two
 * clients compete with the two loops for the same two CPUs, so the ratio
 * here is a floor: with the load elsewhere it would be higher. Each kind
 * is measured BENCH_NET_REPS times for AW_BENCH_ECHO_SECS seconds
 * (default 2), interleaved; the median is printed. */
#include "../bench.h"
#include "net_bench.h"

#include <awith/loops.h>
#include <awith/reuseport.h>
#include <awith/server.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_NET_REPS 3
enum { CLIENTS = 2, CONNS = 50 };

static int echo(aw_stream_t *s, void *arg) {
    (void)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = aw_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        if (aw_stream_write(s, buf, (size_t)n) < 0)
            return aw_status();
    }
}

static int serve(void *arg, int index) {
    (void)index;
    aw_with (aw_server_t *srv, aw_reuseport_server(arg, echo, NULL))
        aw_sleep_until(AW_NEVER);
    return aw_status();
}

/* The server process: n loops on one reserved port, until SIGTERM. */
static int serve_main(int n, int port) {
    aw_reuseport_t rp;
    if (aw_reuseport_open(&rp, "127.0.0.1", port, 1024) < 0)
        return 1;
    int rc = aw_loops_run(n, serve, &rp, NULL);
    aw_reuseport_close(&rp);
    return rc < 0;
}

typedef struct {
    double rtt_per_s, cpu_ns;
} fig_t;

static fig_t run_one(const char *self, int loops, double secs) {
    fig_t f = {BENCH_NA, BENCH_NA};
    int port = free_port();
    char ps[16], ls[16];
    snprintf(ps, sizeof ps, "%d", port);
    snprintf(ls, sizeof ls, "%d", loops);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--serve", ls, ps, (char *)NULL);
        _exit(127);
    }
    FILE *cl[CLIENTS];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/echo_client' %d %d %g", ECHO_PEER_DIR, port, CONNS, secs);
    for (int i = 0; i < CLIENTS; i++)
        cl[i] = popen(cmd, "r");
    double rate = 0, total = 0;
    int ok = 1;
    for (int i = 0; i < CLIENTS; i++) {
        double r = -1, t = -1;
        if (cl[i]) {
            char tok[128];
            while (fscanf(cl[i], "%127s", tok) == 1) {
                if (!strncmp(tok, "rtt_per_s=", 10))
                    r = atof(tok + 10);
                if (!strncmp(tok, "total=", 6))
                    t = atof(tok + 6);
            }
            if (pclose(cl[i]) != 0)
                r = -1;
        }
        if (r <= 0 || t <= 0)
            ok = 0;
        rate += r;
        total += t;
    }
    kill(pid, SIGTERM);
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    if (ok) {
        f.rtt_per_s = rate;
        f.cpu_ns = ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
                   ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
        f.cpu_ns /= total;
    }
    return f;
}

int main(int argc, char **argv) {
    if (argc > 3 && !strcmp(argv[1], "--serve"))
        return serve_main(atoi(argv[2]), atoi(argv[3]));
    signal(SIGPIPE, SIG_IGN);
    double secs = atof(bench_env("AW_BENCH_ECHO_SECS", "2"));
    char self[512];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    if (l <= 0)
        return 1;
    self[l] = 0;
    double v[2][BENCH_NET_REPS], c[2][BENCH_NET_REPS];
    int n[2] = {0, 0};
    for (int rep = 0; rep < BENCH_NET_REPS; rep++)
        for (int k = 0; k < 2; k++) {
            fig_t x = run_one(self, k + 1, secs);
            if (x.rtt_per_s > 0) {
                v[k][n[k]] = x.rtt_per_s;
                c[k][n[k]++] = x.cpu_ns;
            }
        }
    double rate[2], cpu[2];
    for (int k = 0; k < 2; k++) {
        rate[k] = n[k] == BENCH_NET_REPS ? bench_median(v[k], n[k]) : BENCH_NA;
        cpu[k] = n[k] == BENCH_NET_REPS ? bench_median(c[k], n[k]) : BENCH_NA;
    }
    printf("echo_loops_rtt_per_s loops1=%.0f loops2=%.0f", rate[0], rate[1]);
    if (rate[0] > 0 && rate[1] > 0)
        printf(" ratio_loops1=%.3g", rate[1] / rate[0]);
    printf(" cpus=%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("echo_loops_server_cpu_ns loops1=%.0f loops2=%.0f", cpu[0], cpu[1]);
    if (cpu[0] > 0 && cpu[1] > 0)
        printf(" ratio_loops1=%.3g", cpu[0] / cpu[1]);
    printf("\n");
    return 0;
}
