/* file.c: files on the thread pool, as managers.
 *
 * A blocking call is described by a job on the caller's stack and run by
 * aw_to_thread without an abandon hook: once a worker has it, the wait is
 * not cut short by a cancel (the call completes and its result is kept;
 * the cancel shows at the next cancellation point). That keeps the job
 * off the heap and makes an fd from open(2) impossible to lose. A call
 * still waiting for a free thread is taken back by a cancel (nothing ran:
 * -ECANCELED). aw_to_thread itself checks for cancellation first, so
 * every operation is a cancellation point.
 *
 * Opens without O_CREAT/O_TRUNC try openat2(RESOLVE_CACHED) on the loop's
 * thread first (the path is in the dentry cache: no I/O), as io_uring
 * does. Reads (and writes) try preadv2/pwritev2 with RWF_NOWAIT on the
 * loop's thread first: page-cache hits cost one syscall and no thread hop. When
 * the kernel says it would block (EAGAIN) or does not support the flag
 * (EOPNOTSUPP: remembered per file), the call goes to the pool. */
#include "../coro/alloc.h" /* aw__malloc ...: the allocator table */
#include <awith/err.h>
#include <awith/task.h>
#include <awith/with.h>
#include <awith/thread.h>
#include <awith/file.h>

#include <libgen.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum { J_OPEN, J_READ, J_PREAD, J_WRITE, J_FSYNC, J_MKSTEMP, J_RENAME, J_FSYNC_DIR };

/* aw_file_t.nowait_off: whether preadv2/pwritev2 with RWF_NOWAIT is worth
 * trying, and the FIFO whose read end was opened on the loop's thread. */
enum { AW__NOWAIT_TRY, AW__NOWAIT_OFF, AW__NOWAIT_FIFO };

typedef struct aw__fjob {
    int op, fd, flags;
    mode_t mode;
    const char *path, *path2;
    char *tmpl;
    void *buf;
    size_t n;
    off_t off;
    ssize_t r;
    int err;
    bool clear_nb;             /* a read: the fd kept O_NONBLOCK (read_all); EAGAIN clears it */
    bool fifo;                 /* a read: a FIFO opened without waiting for a writer */
} aw__fjob_t;

/* A read of 0 from a FIFO opened without O_NONBLOCK's wait for a writer
 * (aw__file_keep_fifo) is the end only once a writer has come: the kernel
 * says so by POLLHUP, which it raises for a read end only when a writer
 * opened since the read end did and none is left. Before that, wait here
 * (on the pool, as the blocking open did) for a writer's first bytes or
 * its close. True: read again. */
static bool aw__fifo_no_writer_yet(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR) {
    }
    if (n != 0)
        return n > 0 && (p.revents & POLLIN); /* bytes came since the read; else the end */
    while ((n = poll(&p, 1, -1)) < 0 && errno == EINTR) {
    }
    return n > 0;
}

static void aw__fjob_run(void *arg) {
    aw__fjob_t *j = arg;
    switch (j->op) {
    case J_OPEN: j->r = open(j->path, j->flags | O_CLOEXEC, j->mode); break;
    case J_READ:
    case J_PREAD:
        for (;;) {
            j->r = j->op == J_READ ? read(j->fd, j->buf, j->n) : pread(j->fd, j->buf, j->n, j->off);
            if (j->r == 0 && j->fifo && aw__fifo_no_writer_yet(j->fd))
                continue;
            if (j->r >= 0 || errno != EAGAIN || !j->clear_nb)
                break;
            /* a file system that honours O_NONBLOCK on a regular file:
             * blocking is what the pool is for */
            j->clear_nb = false;
            int fl = fcntl(j->fd, F_GETFL);
            if (fl < 0 || fcntl(j->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                break;
        }
        break;
    case J_WRITE: j->r = write(j->fd, j->buf, j->n); break;
    case J_FSYNC: j->r = fsync(j->fd); break;
    case J_MKSTEMP: j->r = mkostemp(j->tmpl, O_CLOEXEC); break;
    case J_RENAME: j->r = rename(j->path, j->path2); break;
    case J_FSYNC_DIR: {
        int d = open(j->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        j->r = d < 0 ? -1 : fsync(d);
        int e = errno;
        if (d >= 0)
            close(d);
        errno = e;
        break;
    }
    }
    j->err = j->r < 0 ? errno : 0;
}

/* Run a job on the pool: its result (>= 0) or -errno (not raised), or the
 * pool's own error (raised). */
static ssize_t aw__fjob(aw__fjob_t *j) {
    int rc = aw_to_thread(aw__fjob_run, j, NULL);
    if (rc < 0)
        return rc; /* the pool could not run it (raised) */
    return j->r < 0 ? -j->err : j->r;
}

static void aw__file_name(aw_file_t *f, const char *path) {
    size_t l = strlen(path);
    if (l < sizeof f->path)
        memcpy(f->path, path, l + 1);
    else
        snprintf(f->path, sizeof f->path, "...%s", path + l - (sizeof f->path - 4));
}

/* What an open for read_all learnt of the file's size. */
typedef struct aw__fsize {
    off_t size;                /* the size the kernel gave, or -1: unknown */
    bool at;                   /* read at explicit offsets (lseek moved the offset) */
} aw__fsize_t;

/* A FIFO opened on the loop's thread (with O_NONBLOCK, which does not
 * wait for the other end) is kept, not closed and opened again on the
 * pool as other files that are not regular are: that open and close
 * would be a reader (or writer) that comes and goes, and would let go a
 * peer waiting in its own open: a reader then saw the end before any
 * byte, a writer got EPIPE, and the open on the pool waited for a peer
 * that had left (for ever). A blocking open of the read end waits for a
 * writer; here the first read of 0 does (aw__fifo_no_writer_yet), unless
 * the caller asked for O_NONBLOCK. The flag is cleared otherwise: reads
 * and writes go to the pool. */
static int aw__file_keep_fifo(aw_file_t *f, int fd, int flags) {
    if (!(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    bool reads = (flags & O_ACCMODE) != O_WRONLY;
    f->nowait_off = reads && !(flags & O_NONBLOCK) ? AW__NOWAIT_FIFO : AW__NOWAIT_OFF;
    return 0;
}

/* Up to this size, what lseek(SEEK_END) says is taken as the size of the
 * buffer read_all starts with; beyond it a fstat says whether the file is
 * regular first (a directory says 2^31 or more, a block device its
 * capacity): 0.5 us against the reading of a MiB. */
#define AW__FILE_LSEEK_MAX ((off_t)1 << 20)

/* The open on the loop's thread decides whether read_all goes on there:
 * one lseek(SEEK_END), not a fstat (~235 ns against ~520 on this VM, 6%
 * of a small file): it gives the size, and says ESPIPE for what must
 * not be read on the loop's thread (FIFOs, terminals, sockets, stream
 * files). What has no size there (procfs: EINVAL) or a large one is
 * asked with fstat, as before; a seekable device or directory that
 * passes is read with RWF_NOWAIT like a file: that never blocks (EAGAIN
 * or EOPNOTSUPP send the read to the pool, which clears O_NONBLOCK if
 * the device says EAGAIN; a directory says EISDIR, as from the pool).
 * 0: go on with fd (a FIFO too: aw__file_keep_fifo); -EAGAIN: closed,
 * open it on the pool. */
static int aw__file_sized(aw_file_t *f, int fd, int flags, aw__fsize_t *sz) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end >= 0 && end <= AW__FILE_LSEEK_MAX) {
        *sz = (aw__fsize_t){end, true};
        return 0;
    }
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0 && S_ISFIFO(st.st_mode))
        return aw__file_keep_fifo(f, fd, flags);
    if (rc < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EAGAIN; /* not a regular file: open it the ordinary way */
    }
    *sz = (aw__fsize_t){st.st_size > 0 ? st.st_size : -1, end >= 0};
    return 0;
}

/* Open. sz (read_all's open, not NULL) gets what the open learnt of the
 * size, and O_NONBLOCK stays on a file opened on the loop's thread: the
 * fd is never handed out, Linux ignores the flag on regular files of
 * local file systems, and the pool's reads clear it if one says EAGAIN
 * (aw__fjob_run); it saves a fcntl per file. Such an fd is not tracked
 * either: read_all closes it on every way out, so it cannot be left
 * open, and the record (a calloc, two snprintf, a free) cost ~5% of a
 * small file. */
static int aw__file_open(aw_file_t *f, const char *path, int flags, mode_t mode, aw__fsize_t *sz) {
    bool keep_nb = sz != NULL;
    if (sz)
        *sz = (aw__fsize_t){-1, false};
    f->fd = -1;
    f->nowait_off = AW__NOWAIT_TRY;
    f->fast = 0;
    f->track = (aw_track_t){0};
    aw__file_name(f, path);
    ssize_t r = -EAGAIN;
    if (!(flags & (O_CREAT | O_TRUNC | O_TMPFILE))) {
        /* path in the dentry cache: open on the loop's thread (no hop) */
        int rc = aw_checkpoint();
        if (rc < 0)
            return rc;
        /* O_NONBLOCK: a FIFO or device must not block the loop in open
         * (such files go to the pool); with a lease held it says EAGAIN */
        struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NONBLOCK),
                               .resolve = RESOLVE_CACHED};
        r = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
        if (r < 0) {
            r = errno == ENOSYS || errno == EINVAL || errno == E2BIG || errno == EWOULDBLOCK ||
                        errno == ENXIO /* a FIFO without reader */
                    ? -EAGAIN : -errno;
        } else if (sz) {
            r = aw__file_sized(f, (int)r, flags, sz) < 0 ? -EAGAIN : r;
        } else {
            struct stat st;
            int src = fstat((int)r, &st);
            if (src == 0 && S_ISFIFO(st.st_mode)) {
                aw__file_keep_fifo(f, (int)r, flags);
            } else if (src < 0 || !S_ISREG(st.st_mode)) {
                close((int)r);
                r = -EAGAIN; /* not a regular file: open it the ordinary way */
            } else if (!(flags & O_NONBLOCK)) {
                fcntl((int)r, F_SETFL, flags & ~O_NONBLOCK);
            }
        }
    }
    if (r == -EAGAIN) {
        aw__fjob_t j = {.op = J_OPEN, .path = path, .flags = flags, .mode = mode};
        r = aw__fjob(&j);
        struct stat st; /* opened on the pool: its size, if it is a regular file */
        if (r >= 0 && sz && fstat((int)r, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
            sz->size = st.st_size;
    }
    if (r == -ECANCELED)
        return (int)r;
    if (r < 0)
        return aw_raise((int)r, "open %s: %s", path, aw_strerror((int)r));
    f->fd = (int)r;
    if (!keep_nb)
        aw_track_open(&f->track, "file", "%s", f->path); /* -ENOMEM: untracked, still open */
    return 0;
}

int aw_file_open(aw_file_t *f, const char *path, int flags, mode_t mode) {
    return aw__file_open(f, path, flags, mode, NULL);
}

static int aw__file_check(aw_file_t *f, const char *op) {
    if (f->fd < 0)
        return aw_raise(-EBADF, "%s %s: file is closed", op, f->path);
    return 0;
}

/* Entry of a read or write: a checkpoint, and a yield every 32 calls
 * served without a thread. */
static int aw__file_turn(aw_file_t *f) {
    if (++f->fast < 32)
        return aw_checkpoint();
    f->fast = 0;
    return aw_yield();
}

/* One read at `off` (-1: the current offset). */
static ssize_t aw__file_read(aw_file_t *f, void *buf, size_t n, off_t off, const char *op, bool nb) {
    int rc = aw__file_check(f, op);
    if (rc < 0)
        return rc;
    if (f->nowait_off == AW__NOWAIT_TRY) {
        if ((rc = aw__file_turn(f)) < 0)
            return rc;
        struct iovec iov = {buf, n};
        for (;;) {
            ssize_t r = preadv2(f->fd, &iov, 1, off, RWF_NOWAIT);
            if (r >= 0)
                return r;
            if (errno == EINTR)
                continue;
            if (errno == EOPNOTSUPP || errno == EINVAL)
                f->nowait_off = AW__NOWAIT_OFF; /* not here (pipes, some file systems) */
            else if (errno != EAGAIN)
                return aw_raise(-errno, "%s %s: %s", op, f->path, aw_strerror(-errno));
            break;
        }
    }
    aw__fjob_t j = {.op = off < 0 ? J_READ : J_PREAD, .fd = f->fd, .buf = buf, .n = n, .off = off,
                    .clear_nb = nb, .fifo = f->nowait_off == AW__NOWAIT_FIFO};
    ssize_t r = aw__fjob(&j);
    if (r < 0 && r != -ECANCELED)
        return aw_raise((int)r, "%s %s: %s", op, f->path, aw_strerror((int)r));
    return r;
}

ssize_t aw_file_read(aw_file_t *f, void *buf, size_t n) { return aw__file_read(f, buf, n, -1, "read", false); }

ssize_t aw_file_pread(aw_file_t *f, void *buf, size_t n, off_t off) {
    if (off < 0)
        return aw_raise(-EINVAL, "pread %s: negative offset", f->path);
    return aw__file_read(f, buf, n, off, "pread", false);
}

int aw_file_write(aw_file_t *f, const void *buf, size_t n) {
    int rc = aw__file_check(f, "write");
    if (rc < 0)
        return rc;
    if ((rc = aw__file_turn(f)) < 0)
        return rc;
    const char *p = buf;
    while (n > 0) {
        ssize_t r = -EAGAIN;
        if (f->nowait_off == AW__NOWAIT_TRY) {
            struct iovec iov = {(void *)p, n};
            r = pwritev2(f->fd, &iov, 1, -1, RWF_NOWAIT);
            if (r < 0) {
                r = -errno;
                if (r == -EOPNOTSUPP || r == -EINVAL) {
                    f->nowait_off = AW__NOWAIT_OFF;
                    r = -EAGAIN;
                }
            }
        }
        if (r == -EAGAIN || r == -EINTR) {
            aw__fjob_t j = {.op = J_WRITE, .fd = f->fd, .buf = (void *)p, .n = n};
            r = aw__fjob(&j);
            if (r == -ECANCELED)
                return (int)r;
        }
        if (r < 0)
            return aw_raise((int)r, "write %s: %s", f->path, aw_strerror((int)r));
        if (r == 0)
            return aw_raise(-EIO, "write %s: no progress", f->path);
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

off_t aw_file_seek(aw_file_t *f, off_t off, int whence) {
    int rc = aw__file_check(f, "seek");
    if (rc < 0)
        return rc;
    off_t r = lseek(f->fd, off, whence);
    if (r < 0)
        return aw_raise(-errno, "seek %s: %s", f->path, aw_strerror(-errno));
    return r;
}

int aw_file_sync(aw_file_t *f) {
    int rc = aw__file_check(f, "fsync");
    if (rc < 0)
        return rc;
    aw__fjob_t j = {.op = J_FSYNC, .fd = f->fd};
    ssize_t r = aw__fjob(&j);
    if (r < 0 && r != -ECANCELED)
        return aw_raise((int)r, "fsync %s: %s", f->path, aw_strerror((int)r));
    return (int)r;
}

int aw_file_close(aw_file_t *f) {
    if (f->fd < 0)
        return 0;
    int rc = close(f->fd);
    f->fd = -1;
    aw_track_close(&f->track);
    if (rc < 0 && errno != EINTR)
        return aw_raise(-errno, "close %s: %s", f->path, aw_strerror(-errno));
    return 0;
}

int aw_file_read_all(const char *path, char **out, size_t *len, size_t max) {
    *out = NULL;
    *len = 0;
    aw_file_t f;
    aw__fsize_t sz;
    /* 4 system calls for a small cached file, as many as a plain
     * open/read/read/close loop: openat2, lseek(SEEK_END) (the size, and
     * not a FIFO: aw__file_sized), the read, close; O_NONBLOCK stays
     * (aw__file_open). The buffer has room for one byte more than the
     * size, so a file that grew since is seen (the read fills the buffer
     * and the loop goes on); a read that stops exactly at a size > 0,
     * short of the buffer, is the end, and the confirming read (which
     * would return 0) is skipped. Files whose size says nothing (procfs:
     * 0; sysfs: 4096 for a few bytes; pipes and devices: opened on the
     * pool, unknown) stop at a read of 0, or a short read that does not
     * land on the size, as before. */
    int rc = aw__file_open(&f, path, O_RDONLY, 0, &sz);
    if (rc < 0)
        return rc;
    size_t cap = sz.size > 0 ? (size_t)sz.size + 1 : 4096;
    if (max && cap > max + 1)
        cap = max + 1;
    char *buf = aw__malloc(cap + 1);
    size_t n = 0;
    if (!buf)
        rc = aw_raise(-ENOMEM, "read %s: out of memory", path);
    while (rc == 0) {
        if (n == cap) { /* the file grew, or its size was unknown (procfs) */
            if (max && n > max) {
                rc = aw_raise(-EFBIG, "read %s: larger than %zu bytes", path, max);
                break;
            }
            char *nb = aw__realloc(buf, cap * 2 + 1);
            if (!nb) {
                rc = aw_raise(-ENOMEM, "read %s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = aw__file_read(&f, buf + n, cap - n, sz.at ? (off_t)n : -1, "read", true);
        if (r < 0)
            rc = (int)r;
        else if (r == 0)
            break;
        else if ((n += (size_t)r) == (size_t)sz.size && n < cap)
            break; /* short, at the size the kernel gave: the end */
    }
    if (rc == 0 && max && n > max)
        rc = aw_raise(-EFBIG, "read %s: larger than %zu bytes", path, max);
    int crc = aw_file_close(&f);
    if (rc == 0)
        rc = crc;
    if (rc < 0) {
        aw__free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* ---- managers ---- */

static int aw__file_enter(void *self, void **out) {
    aw_file_cm_t *c = self;
    int rc = aw_file_open(&c->file, c->path, c->flags, c->mode);
    if (rc < 0)
        return rc;
    *out = &c->file;
    return 0;
}

static int aw__file_exit(void *self, const aw_err_t *err) {
    (void)err;
    return aw_file_close(&((aw_file_cm_t *)self)->file);
}

const aw_cm_type_t aw_file_type = {"file", aw__file_enter, aw__file_exit, 0, 0};

static void aw__atomic_free(aw_file_cm_t *c) {
    aw__free(c->tmp);
    aw__free(c->target);
    c->tmp = c->target = NULL;
}

static int aw__atomic_enter(void *self, void **out) {
    aw_file_cm_t *c = self;
    c->file.fd = -1;
    c->file.nowait_off = c->file.fast = 0;
    aw__file_name(&c->file, c->path);
    size_t l = strlen(c->path);
    c->target = aw__strdup(c->path);
    c->tmp = aw__malloc(l + 16);
    if (!c->target || !c->tmp) {
        aw__atomic_free(c);
        return aw_raise(-ENOMEM, "atomic write %s: out of memory", c->path);
    }
    /* ".name.tmp-XXXXXX" beside the target: same file system, so rename is atomic */
    char *slash = strrchr(c->target, '/');
    size_t dl = slash ? (size_t)(slash - c->target) + 1 : 0;
    snprintf(c->tmp, l + 16, "%.*s.%s.XXXXXX", (int)dl, c->target, c->target + dl);
    aw__fjob_t j = {.op = J_MKSTEMP, .tmpl = c->tmp};
    ssize_t r = aw__fjob(&j);
    if (r < 0) {
        if (r != -ECANCELED)
            r = aw_raise((int)r, "atomic write %s: cannot create %s: %s", c->path, c->tmp,
                         aw_strerror((int)r));
        aw__atomic_free(c);
        return (int)r;
    }
    c->file.fd = (int)r;
    *out = &c->file;
    return 0;
}

static int aw__atomic_discard(aw_file_cm_t *c) {
    aw_file_close(&c->file);
    unlink(c->tmp); /* a fast metadata call: not worth a thread hop */
    aw__atomic_free(c);
    return 0;
}

static int aw__atomic_exit(void *self, const aw_err_t *err) {
    aw_file_cm_t *c = self;
    if (err)
        return aw__atomic_discard(c);
    if (c->file.fd < 0) {
        /* closed inside the block: its data was never synced, and a clean
         * exit that quietly kept the old content would lose it unseen */
        int rc = aw_raise(-EBADF, "atomic write %s: the file was closed inside the block; "
                          "nothing was written (leave the block to commit)", c->path);
        aw__atomic_discard(c);
        return rc;
    }
    int rc = aw_file_sync(&c->file);
    if (rc == 0 && fchmod(c->file.fd, c->mode) < 0)
        rc = aw_raise(-errno, "atomic write %s: chmod: %s", c->path, aw_strerror(-errno));
    if (rc == 0 && (rc = aw_file_close(&c->file)) == 0) {
        aw__fjob_t j = {.op = J_RENAME, .path = c->tmp, .path2 = c->target};
        ssize_t r = aw__fjob(&j);
        if (r < 0)
            rc = aw_raise((int)r, "atomic write %s: rename: %s", c->path, aw_strerror((int)r));
    }
    if (rc < 0)
        return aw__atomic_discard(c), rc;
    /* make the rename durable: fsync the directory */
    char *dir = aw__strdup(c->target);
    if (dir) {
        aw__fjob_t j = {.op = J_FSYNC_DIR, .path = dirname(dir)};
        ssize_t r = aw__fjob(&j);
        if (r < 0)
            rc = aw_raise((int)r, "atomic write %s: fsync of its directory: %s", c->path,
                          aw_strerror((int)r));
        aw__free(dir);
    }
    aw__atomic_free(c);
    return rc;
}

const aw_cm_type_t aw_file_atomic_type = {"file_atomic", aw__atomic_enter, aw__atomic_exit, 0, 0};

/* ---- lines ---- */

int aw_file_lines_gen(aw_gen_t *g, void *arg) {
    aw_file_lines_t *a = arg;
    size_t max = a->max ? a->max : (size_t)1 << 20;
    size_t cap = 65536;
    char *buf = aw__malloc(cap + 1);
    if (!buf)
        return aw_raise(-ENOMEM, "read lines of %s: out of memory", a->path);
    aw_line_t line = {0};
    int rc = 1; /* 1: the file did not open */
    aw_with (aw_file_t *f, aw_file(a->path, O_RDONLY, 0)) {
        rc = 0;
        size_t start = 0, end = 0; /* unread bytes: buf[start, end) */
        bool eof = false;
        while (rc == 0) {
            char *nl = memchr(buf + start, '\n', end - start);
            if (!nl && eof && start == end)
                break;
            /* the limit is the line's (its newline apart), checked on
             * every line and on a partial one as it grows: the buffer's
             * size only bounds it by powers of two */
            size_t text = nl ? (size_t)(nl - (buf + start)) : end - start;
            if (text > max) {
                rc = aw_raise(-EMSGSIZE, "read lines of %s: line %zu is longer than %zu bytes",
                              a->path, line.lineno + 1, max);
                break;
            }
            if (!nl && !eof) {
                if (start > 0) { /* move the partial line to the front */
                    memmove(buf, buf + start, end - start);
                    end -= start;
                    start = 0;
                }
                if (end == cap) { /* cap <= max here: the partial line fills it */
                    char *nb = aw__realloc(buf, cap * 2 + 1);
                    if (!nb) {
                        rc = aw_raise(-ENOMEM, "read lines of %s: out of memory", a->path);
                        break;
                    }
                    buf = nb;
                    cap *= 2;
                }
                ssize_t r = aw_file_read(f, buf + end, cap - end);
                if (r < 0)
                    rc = (int)r;
                else if (r == 0)
                    eof = true;
                else
                    end += (size_t)r;
                continue;
            }
            size_t len = nl ? (size_t)(nl - (buf + start)) + 1 : end - start;
            char saved = buf[start + len];
            buf[start + len] = 0;
            line.text = buf + start;
            line.len = len;
            line.lineno++;
            int y = aw_gen_yield(g, &line);
            buf[start + len] = saved;
            start += len;
            if (y < 0)
                break; /* the consumer left */
        }
    }
    aw__free(buf);
    if (rc == 1)
        return aw_status(); /* open's error */
    return rc < 0 ? rc : 0;
}
