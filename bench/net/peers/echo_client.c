/* echo_client.c: the load for bench-echo, in a process of its own.
 * `echo_client PORT CONNS SECONDS`: CONNS connections to 127.0.0.1:PORT,
 * each sending 64 bytes and waiting for the 64 bytes back, over and over,
 * driven by one epoll loop. Prints `rtt_per_s=<round trips per second>`
 * measured after a 0.3 s warm-up, and `total=<round trips>` over the
 * whole run (warm-up included). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    int port = atoi(argv[1]), conns = atoi(argv[2]);
    double secs = atof(argv[3]);
    int ep = epoll_create1(0);
    int *got = calloc((size_t)conns, sizeof *got);
    char msg[64], buf[4096];
    memset(msg, 'x', sizeof msg);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < conns; i++) {
        int fd = -1;
        for (int tries = 0; tries < 200; tries++) { /* the server may still be starting */
            fd = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
                break;
            close(fd);
            fd = -1;
            usleep(10000);
        }
        if (fd < 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)i << 32) | (uint32_t)fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
            return 1;
    }
    long count = 0, total = 0;
    double t0 = now(), start = t0 + 0.3, end = start + secs;
    int measuring = 0;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 1000);
        for (int k = 0; k < n; k++) {
            int i = (int)(evs[k].data.u64 >> 32), fd = (int)(uint32_t)evs[k].data.u64;
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                fprintf(stderr, "connection %d closed\n", i);
                return 1;
            }
            got[i] += (int)r;
            while (got[i] >= 64) {
                got[i] -= 64;
                count++;
                total++;
                if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
                    return 1;
            }
        }
        double t = now();
        if (!measuring && t >= start) {
            measuring = 1;
            count = 0;
        }
        if (t >= end)
            break;
    }
    printf("rtt_per_s=%.0f total=%ld\n", count / (now() - start), total);
    return 0;
}
