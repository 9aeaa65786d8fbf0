/* fault.c: fault injection for tests (fault.h), compiled only with
 * -Dfault_injection=true. libawith.so is then linked with
 * -Wl,--wrap=<f> for every function below, so the library's own calls to
 * f land in __wrap_f, which counts the call in its class and either fails
 * it (as the real call would fail: NULL, MAP_FAILED, -1 with errno, or an
 * error number) or passes it on to __real_f, the libc function. The wrap
 * works on the library's undefined references only: calls made by
 * libcurl, libpq, SQLite or the test program are neither counted nor
 * failed. In a build without the option nothing of this exists (meson.build
 * adds neither this file nor a single --wrap).
 *
 * It sits in coro/, the lowest layer, because coro/stack.c already maps
 * stacks: every layer above may have its calls wrapped. Cost when built:
 * one atomic add per wrapped call. */
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

static struct {
    atomic_long count, fired, n;
    atomic_int err, persistent;
    _Atomic(const char *) what;
} aw__fault[AW_FAULT_NCLASS];

static const int aw__fault_default[AW_FAULT_NCLASS] = {ENOMEM, EMFILE, EAGAIN, EIO};
static const char *const aw__fault_names[AW_FAULT_NCLASS] = {"alloc", "fd", "thread", "io"};

void aw_fault_set(int cls, long n, int err, bool persistent) {
    if (cls < 0 || cls >= AW_FAULT_NCLASS)
        return;
    atomic_store(&aw__fault[cls].n, 0); /* disarmed while the rest changes */
    atomic_store(&aw__fault[cls].count, 0);
    atomic_store(&aw__fault[cls].fired, 0);
    atomic_store(&aw__fault[cls].what, NULL);
    atomic_store(&aw__fault[cls].err, err ? err : aw__fault_default[cls]);
    atomic_store(&aw__fault[cls].persistent, persistent);
    atomic_store(&aw__fault[cls].n, n);
}

long aw_fault_count(int cls) {
    return cls >= 0 && cls < AW_FAULT_NCLASS ? atomic_load(&aw__fault[cls].count) : -1;
}

long aw_fault_fired(int cls) {
    return cls >= 0 && cls < AW_FAULT_NCLASS ? atomic_load(&aw__fault[cls].fired) : -1;
}

const char *aw_fault_what(int cls) {
    return cls >= 0 && cls < AW_FAULT_NCLASS ? atomic_load(&aw__fault[cls].what) : NULL;
}

const char *aw_fault_class_name(int cls) {
    return cls >= 0 && cls < AW_FAULT_NCLASS ? aw__fault_names[cls] : NULL;
}

/* Count a call of class cls made by `fn`: its errno to fail with, or 0
 * to let it through. */
static int aw__fault_hit(int cls, const char *fn) {
    long c = atomic_fetch_add_explicit(&aw__fault[cls].count, 1, memory_order_relaxed) + 1;
    long n = atomic_load_explicit(&aw__fault[cls].n, memory_order_relaxed);
    if (n <= 0 || c < n || (c > n && !atomic_load(&aw__fault[cls].persistent)))
        return 0;
    if (atomic_fetch_add(&aw__fault[cls].fired, 1) == 0 && getenv("AW_FAULT_TRACE")) {
        /* where the first injected failure lands (debugging a finding) */
        void *pc[32];
        int k = backtrace(pc, 32);
        fprintf(stderr, "aw-fault: %s failed here:\n", fn);
        backtrace_symbols_fd(pc, k, 2);
    }
    const char *none = NULL;
    atomic_compare_exchange_strong(&aw__fault[cls].what, &none, fn);
    return atomic_load(&aw__fault[cls].err);
}

#define AW__FAIL_ERRNO(cls, ret)                                                               \
    do {                                                                                       \
        int e_ = aw__fault_hit((cls), __func__ + 7); /* past "__wrap_" */                      \
        if (e_) {                                                                              \
            errno = e_;                                                                        \
            return (ret);                                                                      \
        }                                                                                      \
    } while (0)

/* ---- the wrappers: each declares its __real_ and mirrors its contract ---- */

#define AW__WRAP(ret, name, cls, failv, params, args)                                          \
    ret __real_##name params;                                                                  \
    ret __wrap_##name params;                                                                  \
    ret __wrap_##name params {                                                                 \
        AW__FAIL_ERRNO(cls, failv);                                                            \
        return __real_##name args;                                                             \
    }

/* allocations */
AW__WRAP(void *, malloc, AW_FAULT_ALLOC, NULL, (size_t n), (n))
AW__WRAP(void *, calloc, AW_FAULT_ALLOC, NULL, (size_t a, size_t b), (a, b))
AW__WRAP(void *, realloc, AW_FAULT_ALLOC, NULL, (void *p, size_t n), (p, n))
AW__WRAP(char *, strdup, AW_FAULT_ALLOC, NULL, (const char *s), (s))
AW__WRAP(char *, strndup, AW_FAULT_ALLOC, NULL, (const char *s, size_t n), (s, n))
AW__WRAP(void *, mmap, AW_FAULT_ALLOC, MAP_FAILED,
         (void *a, size_t n, int p, int f, int fd, off_t o), (a, n, p, f, fd, o))
AW__WRAP(void *, mmap64, AW_FAULT_ALLOC, MAP_FAILED,
         (void *a, size_t n, int p, int f, int fd, off_t o), (a, n, p, f, fd, o))

/* descriptors */
AW__WRAP(int, socket, AW_FAULT_FD, -1, (int d, int t, int p), (d, t, p))
AW__WRAP(int, accept4, AW_FAULT_FD, -1, (int fd, struct sockaddr *a, socklen_t *l, int f),
         (fd, a, l, f))
AW__WRAP(int, accept, AW_FAULT_FD, -1, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l))
AW__WRAP(int, epoll_create1, AW_FAULT_FD, -1, (int f), (f))
AW__WRAP(int, pipe2, AW_FAULT_FD, -1, (int p[2], int f), (p, f))
AW__WRAP(int, mkostemp, AW_FAULT_FD, -1, (char *t, int f), (t, f))
AW__WRAP(int, mkostemp64, AW_FAULT_FD, -1, (char *t, int f), (t, f))
AW__WRAP(FILE *, fopen, AW_FAULT_FD, NULL, (const char *p, const char *m), (p, m))
AW__WRAP(FILE *, fopen64, AW_FAULT_FD, NULL, (const char *p, const char *m), (p, m))

/* open and openat take a mode only with O_CREAT or O_TMPFILE; passing
 * one always is harmless (the kernel ignores it otherwise). */
#define AW__WRAP_OPEN(name)                                                                    \
    int __real_##name(const char *p, int f, ...);                                              \
    int __wrap_##name(const char *p, int f, ...);                                              \
    int __wrap_##name(const char *p, int f, ...) {                                             \
        va_list ap;                                                                            \
        va_start(ap, f);                                                                       \
        unsigned mode = va_arg(ap, unsigned);                                                  \
        va_end(ap);                                                                            \
        AW__FAIL_ERRNO(AW_FAULT_FD, -1);                                                       \
        return __real_##name(p, f, mode);                                                      \
    }
#define AW__WRAP_OPENAT(name)                                                                  \
    int __real_##name(int d, const char *p, int f, ...);                                       \
    int __wrap_##name(int d, const char *p, int f, ...);                                       \
    int __wrap_##name(int d, const char *p, int f, ...) {                                      \
        va_list ap;                                                                            \
        va_start(ap, f);                                                                       \
        unsigned mode = va_arg(ap, unsigned);                                                  \
        va_end(ap);                                                                            \
        AW__FAIL_ERRNO(AW_FAULT_FD, -1);                                                       \
        return __real_##name(d, p, f, mode);                                                   \
    }
AW__WRAP_OPEN(open)
AW__WRAP_OPEN(open64)
AW__WRAP_OPENAT(openat)
AW__WRAP_OPENAT(openat64)

/* threads: pthread_create returns its error, errno untouched */
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    int e = aw__fault_hit(AW_FAULT_THREAD, "pthread_create");
    return e ? e : __real_pthread_create(t, a, fn, arg);
}

/* I/O. An eventfd is the loop's doorbell, not I/O: the kernel fails its
 * 8-byte reads and writes with EAGAIN only, which the library expects,
 * so calls on the eventfds the library made are neither counted nor
 * failed (a failed doorbell would be a lost wake-up no real system
 * produces). close is wrapped to forget a closed eventfd's number. */
enum { AW__FAULT_MAXFD = 1 << 16 };
static atomic_uchar aw__fault_evfd[AW__FAULT_MAXFD];

static bool aw__fault_is_evfd(int fd) {
    return fd >= 0 && fd < AW__FAULT_MAXFD && atomic_load_explicit(&aw__fault_evfd[fd], memory_order_relaxed);
}

int __real_eventfd(unsigned v, int f);
int __wrap_eventfd(unsigned v, int f);
int __wrap_eventfd(unsigned v, int f) {
    AW__FAIL_ERRNO(AW_FAULT_FD, -1);
    int fd = __real_eventfd(v, f);
    if (fd >= 0 && fd < AW__FAULT_MAXFD)
        atomic_store(&aw__fault_evfd[fd], 1);
    return fd;
}

int __real_close(int fd);
int __wrap_close(int fd);
int __wrap_close(int fd) {
    if (fd >= 0 && fd < AW__FAULT_MAXFD)
        atomic_store(&aw__fault_evfd[fd], 0);
    return __real_close(fd);
}

#define AW__WRAP_RW(ret, name, params, args)                                                   \
    ret __real_##name params;                                                                  \
    ret __wrap_##name params;                                                                  \
    ret __wrap_##name params {                                                                 \
        if (!aw__fault_is_evfd(fd))                                                            \
            AW__FAIL_ERRNO(AW_FAULT_IO, -1);                                                   \
        return __real_##name args;                                                             \
    }
AW__WRAP_RW(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n))
AW__WRAP_RW(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n))
AW__WRAP(ssize_t, readv, AW_FAULT_IO, -1, (int fd, const struct iovec *v, int n), (fd, v, n))
AW__WRAP(ssize_t, writev, AW_FAULT_IO, -1, (int fd, const struct iovec *v, int n), (fd, v, n))
AW__WRAP(ssize_t, send, AW_FAULT_IO, -1, (int fd, const void *b, size_t n, int f), (fd, b, n, f))
AW__WRAP(ssize_t, recv, AW_FAULT_IO, -1, (int fd, void *b, size_t n, int f), (fd, b, n, f))
AW__WRAP(ssize_t, sendmsg, AW_FAULT_IO, -1, (int fd, const struct msghdr *m, int f), (fd, m, f))
AW__WRAP(ssize_t, recvmsg, AW_FAULT_IO, -1, (int fd, struct msghdr *m, int f), (fd, m, f))
AW__WRAP(ssize_t, pread, AW_FAULT_IO, -1, (int fd, void *b, size_t n, off_t o), (fd, b, n, o))
AW__WRAP(ssize_t, pread64, AW_FAULT_IO, -1, (int fd, void *b, size_t n, off_t o), (fd, b, n, o))
AW__WRAP(ssize_t, pwrite, AW_FAULT_IO, -1, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
AW__WRAP(ssize_t, pwrite64, AW_FAULT_IO, -1, (int fd, const void *b, size_t n, off_t o),
         (fd, b, n, o))
AW__WRAP(ssize_t, preadv2, AW_FAULT_IO, -1, (int fd, const struct iovec *v, int n, off_t o, int f),
         (fd, v, n, o, f))
AW__WRAP(ssize_t, preadv64v2, AW_FAULT_IO, -1,
         (int fd, const struct iovec *v, int n, off_t o, int f), (fd, v, n, o, f))
AW__WRAP(ssize_t, pwritev2, AW_FAULT_IO, -1, (int fd, const struct iovec *v, int n, off_t o, int f),
         (fd, v, n, o, f))
AW__WRAP(ssize_t, pwritev64v2, AW_FAULT_IO, -1,
         (int fd, const struct iovec *v, int n, off_t o, int f), (fd, v, n, o, f))
AW__WRAP(int, connect, AW_FAULT_IO, -1, (int fd, const struct sockaddr *a, socklen_t l), (fd, a, l))
