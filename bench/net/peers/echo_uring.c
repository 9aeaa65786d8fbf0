/* echo_uring.c: the io_uring floor of bench-echo: `echo_uring PORT`, an
 * echo server on 127.0.0.1 with no runtime at all: one ring, multishot
 * accept, and per connection a recv whose completion queues the send of
 * what arrived, whose completion queues the next recv. Submissions are
 * batched: one io_uring_enter per round for every connection. It shows
 * what an io_uring backend could save over readiness + recv/send syscalls
 * (awith and libuv), on the same load. */
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ACCEPT, RECV, SEND };

typedef struct {
    int fd, off, len;
    char buf[4096];
} conn_t;

static struct io_uring ring;

static void queue(int op, conn_t *c, int fd) {
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) { /* ring full: flush and retry */
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    if (op == ACCEPT)
        io_uring_prep_multishot_accept(s, fd, NULL, NULL, 0);
    else if (op == RECV)
        io_uring_prep_recv(s, c->fd, c->buf, sizeof c->buf, 0);
    else
        io_uring_prep_send(s, c->fd, c->buf + c->off, (size_t)(c->len - c->off), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, (uint64_t)(uintptr_t)c | (uint64_t)op);
}

static void complete(uint64_t data, int res, unsigned flags, int listener) {
    int op = (int)(data & 3);
    conn_t *c = (conn_t *)(uintptr_t)(data & ~(uint64_t)3);
    if (op == ACCEPT) {
        if (!(flags & IORING_CQE_F_MORE)) /* the multishot ended: re-arm it */
            queue(ACCEPT, NULL, listener);
        if (res < 0)
            return;
        c = calloc(1, sizeof *c);
        if (!c) {
            close(res);
            return;
        }
        c->fd = res;
        queue(RECV, c, 0);
        return;
    }
    if (res <= 0) { /* EOF or error: the client is gone */
        close(c->fd);
        free(c);
        return;
    }
    if (op == RECV) {
        c->off = 0;
        c->len = res;
        queue(SEND, c, 0);
    } else {
        c->off += res;
        queue(c->off < c->len ? SEND : RECV, c, 0);
    }
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1024) < 0) {
        perror("echo_uring: listen");
        return 1;
    }
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int rc = io_uring_queue_init_params(1024, &ring, &p);
    if (rc < 0) {
        fprintf(stderr, "echo_uring: io_uring_queue_init: %s\n", strerror(-rc));
        return 1;
    }
    queue(ACCEPT, NULL, l);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            n++;
            complete(cqe->user_data, cqe->res, cqe->flags, l);
        }
        io_uring_cq_advance(&ring, n);
    }
}
