/* echo.c -> bench-echo: TCP echo, 100 connections, 64-byte ping-pong.
 *
 *   echo_rtt_per_s   round trips per second through an echo server on
 *                    127.0.0.1, the load coming from a separate process
 *                    (peers/echo_client.c: one epoll loop, 100 connections,
 *                    each sends 64 bytes and waits for them back, again and
 *                    again). Servers, each in its own process on the same
 *                    load: awith (this program with --serve: aw_server +
 *                    aw_stream_read/aw_stream_write), libuv (peers/echo_uv.c),
 *                    Python asyncio on uvloop and plain asyncio
 *                    (peers/echo_uvloop.py, Protocol-based), and a bare
 *                    io_uring server (peers/echo_uring.c: no runtime, one
 *                    batched io_uring_enter per round), the floor that an
 *                    io_uring backend could reach on this kernel.
 *
 * The server runs on CPU 1 and the client on CPU 0 (pinned).
 *
 *   echo_server_cpu_ns  CPU time (user + system) the server process spent
 *                    per round trip, whole run: on a small machine the
 *                    client can be the bottleneck, and this figure still
 *                    shows what each server costs.
 *
 * ratio_<peer> is awith / peer for round trips per second and peer /
 * awith for CPU per round trip: above 1 means awith is better. Each server is measured BENCH_NET_REPS times for
 * AW_BENCH_ECHO_SECS seconds (default 2) and the median is printed. */
#include "../bench.h"
#include "net_bench.h"

#include <awith/server.h>
#include <awith/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_NET_REPS 3

static int echo(aw_stream_t *s, void *arg) {
    char buf[4096];
    for (;;) {
        ssize_t n = aw_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        if (aw_stream_write(s, buf, (size_t)n) < 0)
            return -1;
    }
}

static int serve(void *arg) {
    int port = *(int *)arg;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", port, &(aw_listen_opts_t){.backlog = 1024}))
        aw_server_serve(l, echo, NULL);
    return aw_status();
}

typedef struct {
    double rtt_per_s; /* as the client saw it */
    double cpu_ns;    /* server CPU time (user + system) per round trip */
} fig_t;

/* Pin the calling process to CPU `cpu` if the machine has more than one:
 * the server and the client each keep a CPU of their own, so no run
 * depends on where the scheduler happened to put them (unpinned, the same
 * server's figure moved by 2x between runs on a 2-CPU VM). */
static void pin(int cpu) {
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Start `argv` as a server, run the client against `port`, stop it. */
static fig_t run_one(char *const argv[], int port, double secs) {
    fig_t f = {BENCH_NA, BENCH_NA};
    pid_t pid = fork();
    if (pid == 0) {
        pin(1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/echo_client' %d 100 %g", ECHO_PEER_DIR, port, secs);
    cpu_set_t all;
    sched_getaffinity(0, sizeof all, &all);
    pin(0); /* the client, through popen's shell */
    FILE *p = popen(cmd, "r");
    sched_setaffinity(0, sizeof all, &all);
    double rate = BENCH_NA, total = BENCH_NA;
    if (p) {
        char tok[128];
        while (fscanf(p, "%127s", tok) == 1) {
            if (!strncmp(tok, "rtt_per_s=", 10))
                rate = atof(tok + 10);
            if (!strncmp(tok, "total=", 6))
                total = atof(tok + 6);
        }
        if (pclose(p) != 0)
            rate = BENCH_NA;
    }
    kill(pid, SIGTERM);
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    if (rate > 0 && total > 0) {
        f.rtt_per_s = rate;
        f.cpu_ns = ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
                   ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
        f.cpu_ns /= total;
    }
    return f;
}

/* One run of one server kind. */
static fig_t measure_one(const char *kind, const char *self, double secs) {
    fig_t na = {BENCH_NA, BENCH_NA};
    int port = free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    char peer[512];
    if (!strcmp(kind, "awith")) {
        char *argv[] = {(char *)self, "--serve", ps, NULL};
        return run_one(argv, port, secs);
    }
    if (!strcmp(kind, "libuv") || !strcmp(kind, "uring")) {
        snprintf(peer, sizeof peer, "%s/echo_%s", ECHO_PEER_DIR, !strcmp(kind, "libuv") ? "uv" : "uring");
        if (access(peer, X_OK) != 0)
            return na;
        char *argv[] = {peer, ps, NULL};
        return run_one(argv, port, secs);
    }
    char *py = (char *)bench_env("AW_BENCH_PYTHON", "/usr/bin/python3");
    char *argv[] = {py, ECHO_PY, ps, !strcmp(kind, "asyncio") ? "asyncio" : "uvloop", NULL};
    return run_one(argv, port, secs);
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--serve")) {
        int port = atoi(argv[2]);
        return bench_main(NULL, serve, &port) < 0;
    }
    signal(SIGPIPE, SIG_IGN);
    double secs = atof(bench_env("AW_BENCH_ECHO_SECS", "2"));
    char self[512];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    if (l <= 0)
        return 1;
    self[l] = 0;
    /* kinds[0] is awith; the rest are its peers. Runs are interleaved
     * (awith, libuv, ..., awith, ...) so that a change in the machine's
     * load hits every server alike. */
    enum { K = 5 };
    const char *kinds[K + 1] = {"awith", "libuv", "uring", "uvloop", "asyncio", NULL};
    double v[K][BENCH_NET_REPS], c[K][BENCH_NET_REPS];
    int n[K] = {0};
    for (int rep = 0; rep < BENCH_NET_REPS; rep++)
        for (int k = 0; k < K; k++) {
            fig_t x = measure_one(kinds[k], self, secs);
            if (x.rtt_per_s > 0) {
                v[k][n[k]] = x.rtt_per_s;
                c[k][n[k]++] = x.cpu_ns;
            }
        }
    double rate[K], cpu[K];
    for (int k = 0; k < K; k++) {
        rate[k] = n[k] == BENCH_NET_REPS ? bench_median(v[k], n[k]) : BENCH_NA;
        cpu[k] = n[k] == BENCH_NET_REPS ? bench_median(c[k], n[k]) : BENCH_NA;
    }
    bench_config("median of %d runs of %g s each; 100 connections x 64-byte ping-pong from one "
                 "epoll client process pinned to CPU 0, each server alone on CPU 1; awith: aw_server "
                 "+ aw_stream_read/write; libuv: uv_read/uv_write; uvloop/asyncio: Protocol-based; "
                 "uring: bare io_uring server, no runtime", BENCH_NET_REPS, secs);
    /* throughput: ratio = awith / peer */
    printf("echo_rtt_per_s awith=%.0f", rate[0]);
    for (int k = 1; k < K; k++)
        rate[k] < 0 ? printf(" %s=n/a", kinds[k]) : printf(" %s=%.0f", kinds[k], rate[k]);
    for (int k = 1; k < K; k++)
        if (rate[k] > 0 && rate[0] > 0)
            printf(" ratio_%s=%.3g", kinds[k], rate[0] / rate[k]);
    printf("\n");
    /* server CPU per round trip: ratio = peer / awith */
    bench_print("echo_server_cpu_ns", cpu[0], kinds + 1, cpu + 1);
    return 0;
}
