/* bulk.c -> bench-bulk: bulk transfer over loopback.
 *
 *   bulk_mib_per_s   1 GiB sent over one TCP connection on 127.0.0.1 from
 *                    one process to another, in 256 KiB writes, timed from
 *                    the first write to the receiver's 1-byte ack after end
 *                    of stream. awith on both sides (aw_stream_write /
 *                    aw_stream_read) vs a plain blocking C pair
 *                    (write(2)/read(2)): the kernel's loopback limit.
 *
 * ratio_blocking = awith / blocking (1 means awith reaches the kernel's
 * limit). Median of BENCH_NET_REPS runs; AW_BENCH_SCALE scales the size. */
#include "../bench.h"

#include <arpa/inet.h>
#include <awith/listener.h>
#include <awith/tcp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_NET_REPS 3
#define CHUNK (256 * 1024)

static size_t total;
static int lfd, port;
static char *buf;

static int awith_receiver(void *arg) {
    aw_listener_t l = {.fd = lfd, .family = AF_INET};
    aw_stream_t s;
    if (aw_listener_accept(&l, &s) < 0)
        return aw_status();
    size_t got = 0;
    ssize_t r;
    while ((r = aw_stream_read(&s, buf, CHUNK)) > 0)
        got += (size_t)r;
    if (got == total)
        aw_stream_write(&s, "k", 1);
    aw_stream_close(&s);
    aw_listener_close(&l);
    return aw_status();
}

static int awith_sender(void *arg) {
    double *out = arg;
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", port)) {
        double t0 = bench_now();
        for (size_t done = 0; done < total; done += CHUNK)
            if (aw_stream_write(s, buf, CHUNK) < 0)
                aw_leave();
        char k;
        if (aw_stream_shutdown(s) < 0 || aw_stream_read_exactly(s, &k, 1) < 0)
            aw_leave();
        *out = (double)total / (1 << 20) / ((bench_now() - t0) / 1e9);
    }
    return aw_status();
}

static void blocking_receiver(void) {
    int fd = accept(lfd, NULL, NULL);
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd, buf, CHUNK)) > 0)
        got += (size_t)r;
    if (got == total && write(fd, "k", 1) != 1)
        _exit(1);
    close(fd);
}

static double blocking_sender(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return BENCH_NA;
    double t0 = bench_now();
    for (size_t done = 0; done < total;) {
        ssize_t w = write(fd, buf, CHUNK);
        if (w <= 0)
            return BENCH_NA;
        done += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char k;
    if (read(fd, &k, 1) != 1)
        return BENCH_NA;
    close(fd);
    return (double)total / (1 << 20) / ((bench_now() - t0) / 1e9);
}

static void listen_any(void) {
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof sa;
    bind(lfd, (struct sockaddr *)&sa, sizeof sa);
    listen(lfd, 16);
    getsockname(lfd, (struct sockaddr *)&sa, &l);
    port = ntohs(sa.sin_port);
}

static double one(bool awith) {
    listen_any();
    pid_t pid = fork();
    if (pid == 0) {
        if (awith)
            _exit(bench_main(NULL, awith_receiver, NULL) < 0);
        blocking_receiver();
        _exit(0);
    }
    close(lfd);
    double v = BENCH_NA;
    if (awith)
        bench_main(NULL, awith_sender, &v);
    else
        v = blocking_sender();
    int st;
    waitpid(pid, &st, 0);
    return v;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    total = (size_t)bench_n(1024) << 20;
    total -= total % CHUNK;
    buf = malloc(CHUNK);
    memset(buf, 'b', CHUNK);
    double a[BENCH_NET_REPS], b[BENCH_NET_REPS];
    for (int i = 0; i < BENCH_NET_REPS; i++) {
        a[i] = one(true);
        b[i] = one(false);
    }
    double am = bench_median(a, BENCH_NET_REPS), bm = bench_median(b, BENCH_NET_REPS);
    bench_config("median of %d runs; %zu MiB over one loopback TCP connection, 256 KiB writes, "
                 "sender and receiver in two processes, unpinned; blocking: write(2)/read(2)",
                 BENCH_NET_REPS, total >> 20);
    printf("bulk_mib_per_s awith=%.0f blocking=%.0f ratio_blocking=%.3g\n", am, bm,
           am > 0 && bm > 0 ? am / bm : 0.0);
    free(buf);
    return 0;
}
