/* idle.c -> bench-idle-conns: memory per idle TCP connection.
 *
 *   idle_conn_kib   growth of the server process's resident set (VmRSS)
 *                   while it holds N idle connections on 127.0.0.1,
 *                   divided by N (default 10,000; AW_BENCH_IDLE_CONNS).
 *                   awith: this program with --serve (the server manager
 *                   aw_server, one handler task per connection waiting in
 *                   aw_stream_read). Peer: Python asyncio
 *                   (asyncio.start_server, a handler awaiting reader.read).
 *                   The N connections come from a separate (forked)
 *                   process that opens them one by one and keeps them
 *                   open; the figure is taken once the server holds N more
 *                   fds and its RSS has settled.
 *
 * RLIMIT_NOFILE is raised (soft to hard) before anything starts; when the
 * hard limit cannot hold N connections plus some spare fds, a smaller N is
 * used and said so. ratio_asyncio is asyncio / awith: above 1 means awith
 * uses less memory. Each server is measured BENCH_IDLE_REPS times,
 * interleaved, and the median is printed. */
#include "../bench.h"
#include "net_bench.h"

#include <arpa/inet.h>
#include <awith/server.h>
#include <awith/tcp.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_IDLE_REPS 3
#define SPARE_FDS 64

static const char py_server[] =
    "import asyncio, sys\n"
    "async def handle(reader, writer):\n"
    "    await reader.read(64)\n"
    "    writer.close()\n"
    "async def main():\n"
    "    srv = await asyncio.start_server(handle, '127.0.0.1', int(sys.argv[1]), backlog=4096)\n"
    "    async with srv:\n"
    "        await srv.serve_forever()\n"
    "asyncio.run(main())\n";

/* ---- the awith server ---- */

static int idle(aw_stream_t *s, void *arg) {
    (void)arg;
    char buf[64];
    ssize_t n;
    while ((n = aw_stream_read(s, buf, sizeof buf)) > 0)
        ;
    return (int)n;
}

static int serve(void *arg) {
    int port = *(int *)arg;
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", port, &(aw_listen_opts_t){.backlog = 4096}))
    aw_with (aw_server_t *srv, aw_server(l, idle, NULL))
        while (aw_sleep(AW_MS(1000)) == 0)
            ;
    return aw_status();
}

/* ---- measuring ---- */

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static long rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

static long fd_count(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    long n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return d ? n - 2 : -1;
}

static void pause_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* The client: open n connections, report how many on `out`, hold them.
 * It keeps at most 1,000 connections ahead of the server's accepts
 * (counted in /proc/<srv>/fd from fds0) so that the listen backlog never
 * overflows (a dropped SYN costs a 1 s retransmission). */
static void client_main(pid_t srv, long fds0, int port, int n, int out) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        if (i % 250 == 0)
            for (int w = 0; w < 2000 && fd_count(srv) - fds0 < i - 1000; w++)
                pause_ms(1);
        if (connect_to(port) >= 0)
            ok++;
    }
    (void)!write(out, &ok, sizeof ok);
    for (;;)
        pause();
}

/* One run: start the server (argv), wait until it listens, take its RSS,
 * run the client, wait until the server holds n more fds and its RSS has
 * settled; KiB per connection, or BENCH_NA. */
static double run_one(char *const argv[], int port, int n) {
    pid_t srv = fork();
    if (srv == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    double r = BENCH_NA;
    int fd = -1;
    for (int i = 0; i < 500 && fd < 0; i++) { /* up to 5 s to start listening */
        pause_ms(10);
        fd = connect_to(port);
    }
    pid_t cli = -1;
    if (fd < 0)
        goto out;
    close(fd);
    pause_ms(100); /* the probe's handler ends */
    long fds0 = fd_count(srv), rss0 = rss_kib(srv);
    int pp[2];
    if (pipe(pp) < 0)
        goto out;
    cli = fork();
    if (cli == 0) {
        close(pp[0]);
        client_main(srv, fds0, port, n, pp[1]);
    }
    close(pp[1]);
    int opened = 0;
    if (read(pp[0], &opened, sizeof opened) != (ssize_t)sizeof opened || opened != n) {
        fprintf(stderr, "bench-idle-conns: the client opened %d of %d connections\n", opened, n);
        close(pp[0]);
        goto out;
    }
    close(pp[0]);
    for (int i = 0; i < 1000 && fd_count(srv) < fds0 + n; i++) /* up to 10 s to accept */
        pause_ms(10);
    if (fd_count(srv) < fds0 + n)
        goto out;
    long last = -1, now = rss_kib(srv);
    for (int i = 0; i < 100 && now != last; i++) { /* settled: same RSS 50 ms apart */
        pause_ms(50);
        last = now;
        now = rss_kib(srv);
    }
    if (now > 0 && rss0 > 0)
        r = (double)(now - rss0) / n;
out:
    if (cli > 0) {
        kill(cli, SIGKILL);
        waitpid(cli, NULL, 0);
    }
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    return r;
}

/* Raise the soft fd limit to the hard one; the count that fits. */
static int fit_count(int want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + SPARE_FDS) {
        int n = rl.rlim_cur > 2 * SPARE_FDS ? (int)rl.rlim_cur - SPARE_FDS : SPARE_FDS;
        bench_note("idle_conn_note",
                   "RLIMIT_NOFILE hard limit %llu cannot hold %d connections: measuring %d "
                   "(raise it with `ulimit -Hn` as root for the full figure)",
                   (unsigned long long)rl.rlim_max, want, n);
        return n;
    }
    return want;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--serve")) {
        int port = atoi(argv[2]);
        return bench_main(NULL, serve, &port) < 0;
    }
    signal(SIGPIPE, SIG_IGN);
    int want = atoi(bench_env("AW_BENCH_IDLE_CONNS", "10000"));
    int n = fit_count(want > 0 ? want : 10000);
    char self[512];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    if (l <= 0)
        return 1;
    self[l] = 0;
    char *py = (char *)bench_env("AW_BENCH_PYTHON", "/usr/bin/python3");
    double v[2][BENCH_IDLE_REPS];
    int got[2] = {0};
    for (int rep = 0; rep < BENCH_IDLE_REPS; rep++)
        for (int k = 0; k < 2; k++) {
            int port = free_port();
            char ps[16];
            snprintf(ps, sizeof ps, "%d", port);
            char *aw_argv[] = {self, "--serve", ps, NULL};
            char *py_argv[] = {py, "-c", (char *)py_server, ps, NULL};
            double x = run_one(k == 0 ? aw_argv : py_argv, port, n);
            if (x >= 0)
                v[k][got[k]++] = x;
        }
    double a = got[0] == BENCH_IDLE_REPS ? bench_median(v[0], got[0]) : BENCH_NA;
    double p = got[1] == BENCH_IDLE_REPS ? bench_median(v[1], got[1]) : BENCH_NA;
    const char *peers[] = {"asyncio", NULL};
    bench_config("VmRSS growth of the server per idle connection, %d connections from a forked "
                 "client, median of %d interleaved runs; awith: aw_server, a task per connection "
                 "in aw_stream_read; asyncio: start_server, a handler in reader.read",
                 n, BENCH_IDLE_REPS);
    bench_note("idle_conn_count", "%d", n);
    bench_print("idle_conn_kib", a, peers, &p);
    return a < 0;
}
