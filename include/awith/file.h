/* awith/file.h: files, as managers (Python's aiofiles).
 *
 *   aw_with (aw_file_t *f, aw_file("/etc/hostname", O_RDONLY, 0)) {
 *       char buf[256];
 *       ssize_t n = aw_file_read(f, buf, sizeof buf);
 *   }
 *
 *   aw_for (aw_line_t *l, aw_file_lines("/etc/passwd"))   // an async generator
 *       printf("%zu: %.*s", l->lineno, (int)l->len, l->text);
 *
 *   aw_with (aw_file_t *f, aw_file_atomic("/srv/conf.json", 0644))
 *       aw_file_write(f, json, len);     // all or nothing: renamed on success
 *
 * Blocking calls run on the loop's thread pool (aw_to_thread): the task
 * suspends, other tasks run. Reads and writes first try the call on the
 * loop's own thread with RWF_NOWAIT, which succeeds without blocking when
 * the data is in the page cache (the common case): no thread hop then.
 *
 * Every operation is a cancellation point on entry, and every 32nd call
 * served on the loop's thread yields, so that a long copy from the page
 * cache does not starve other tasks. Once a call is handed
 * to a thread it completes (its result is kept: no byte read is lost) and
 * a pending cancel is delivered at the next cancellation point; a call
 * still queued for a free thread is cut by a cancel or deadline (nothing
 * ran). Errors
 * name the path: "open /x/y: No such file or directory". */
#ifndef AWITH_FILE_H
#define AWITH_FILE_H

#include <awith/cm.h>
#include <awith/gen.h>
#include <awith/track.h>
#include <fcntl.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_file aw_file_t;
struct aw_file {                 /* private; public for stack storage */
    int fd;                      /* -1 once closed */
    uint8_t nowait_off;          /* RWF_NOWAIT not supported here; a FIFO (file.c) */
    uint8_t fast;                /* calls served without a thread since the last yield */
    char path[240];              /* for messages (truncated if longer) */
    aw_track_t track;            /* reported at loop close if never closed */
};

/* Open `path` (open(2) flags; O_CLOEXEC is added; mode for O_CREAT).
 * Returns 0 or -errno ("open PATH: ..."). On failure f->fd is -1. */
AW_API int aw_file_open(aw_file_t *f, const char *path, int flags, mode_t mode);

/* Read up to n bytes at the current offset: count, 0 at end of file. */
AW_API ssize_t aw_file_read(aw_file_t *f, void *buf, size_t n);
/* Read up to n bytes at `off` (the offset is not moved). */
AW_API ssize_t aw_file_pread(aw_file_t *f, void *buf, size_t n, off_t off);
/* Write all n bytes at the current offset. 0 or -errno (-ENOSPC ...). */
AW_API int aw_file_write(aw_file_t *f, const void *buf, size_t n);
/* lseek(2): the new offset or -errno. Never suspends. */
AW_API off_t aw_file_seek(aw_file_t *f, off_t off, int whence);
/* fsync(2) on the pool. */
AW_API int aw_file_sync(aw_file_t *f);
/* Close: always releases; idempotent; returns close(2)'s error (reported,
 * never dropped: SEMANTICS K5). Never suspends. */
AW_API int aw_file_close(aw_file_t *f);

/* Read a whole file into a new NUL-terminated buffer (*out, the caller's:
 * aw_free() it, or free() with the default allocator, awith/alloc.h;
 * *len without the NUL). -EFBIG beyond `max` bytes (0: no limit). */
AW_API int aw_file_read_all(const char *path, char **out, size_t *len, size_t max);

/* ---- managers ---- */

typedef struct aw_file_cm {      /* private; public for stack storage */
    aw_file_t file;
    const char *path;
    int flags;
    mode_t mode;
    char *tmp;                   /* atomic: the temporary file */
    char *target;                /* atomic: where it goes on success */
} aw_file_cm_t;

/* enter opens, exit closes (a close error fails the block). */
extern AW_API const aw_cm_type_t aw_file_type;
#define aw_file(path_, flags_, mode_) \
    aw_cm_temp(&aw_file_type, (aw_file_cm_t){.path = (path_), .flags = (flags_), .mode = (mode_)})

/* Atomic replacement of `path`: enter creates a temporary file in the
 * same directory (write-only); on a clean exit it is fsync'ed, given
 * `mode`, renamed over `path`, and the directory is fsync'ed; on an error
 * or a cancel it is closed and unlinked: nothing half-written is left. */
extern AW_API const aw_cm_type_t aw_file_atomic_type;
#define aw_file_atomic(path_, mode_) \
    aw_cm_temp(&aw_file_atomic_type, (aw_file_cm_t){.path = (path_), .mode = (mode_)})

/* ---- lines ---- */

typedef struct aw_line {
    char *text;                  /* the line, newline included, NUL-terminated */
    size_t len;                  /* bytes in text, newline included */
    size_t lineno;               /* 1-based */
} aw_line_t;

typedef struct aw_file_lines {   /* private; public for stack storage */
    const char *path;
    size_t max;                  /* longest line accepted; 0: 1 MiB */
} aw_file_lines_t;

/* The generator behind aw_file_lines: yields aw_line_t * (borrowed until
 * the next item). Fails with -EMSGSIZE on a line longer than `max`. The
 * file is closed when the aw_for is left, whatever the way out. */
AW_API int aw_file_lines_gen(aw_gen_t *g, void *arg);
#define aw_file_lines(path_) aw_gen(aw_file_lines_gen, &(aw_file_lines_t){.path = (path_)})

#ifdef __cplusplus
}
#endif

#endif
