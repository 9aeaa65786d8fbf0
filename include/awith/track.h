/* awith/track.h: resources that must be closed, reported when they are
 * not. Files, streams, listeners, database connections, pools and HTTP
 * sessions register themselves when they open and leave when they close;
 * at loop close (aw_main) whatever is still registered is reported, with
 * its kind, its name and who opened it, and aw_main returns -EBUSY (when
 * it would have returned 0). A program's own resources join the same way:
 *
 *   typedef struct { int fd; aw_track_t track; } conn_t;
 *   static int conn_open(conn_t *conn, const char *host, int port) {
 *       if ((conn->fd = open_it(host, port)) < 0)
 *           return aw_status();
 *       return aw_track_open(&conn->track, "conn", "%s:%d", host, port);
 *   }
 *   static void conn_close(conn_t *conn) {
 *       close(conn->fd);
 *       aw_track_close(&conn->track);   // with the close, on every path
 *   }
 *
 * The handle lives in the resource; the registry keeps a small record of
 * its own (one malloc), so a resource whose memory is gone is still
 * reported safely. A handle closed after its loop has closed (the record
 * was reported and freed then) is a no-op. */
#ifndef AWITH_TRACK_H
#define AWITH_TRACK_H

#include <awith/base.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_track {          /* private; public for storage in resources */
    struct aw__track_rec *rec;    /* NULL: not tracked */
    uint64_t loop;                /* the id of the loop that holds rec */
} aw_track_t;

/* Register an open resource: kind is a static string ("file", "stream"),
 * the name is formatted (a path, a peer address). Records the task that
 * opened it and, when called from a manager's enter, the aw_with's
 * file:line (from an async generator's code outside its own blocks: the
 * line where the generator was made). Never suspends. Returns 0, -ENOMEM (the resource then goes
 * untracked, which is not an error for it) or -EPERM outside a loop. */
AW_API int aw_track_open(aw_track_t *t, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Unregister (the resource is closed). Idempotent; a no-op for a handle
 * never opened or whose loop has closed. Never suspends. */
AW_API void aw_track_close(aw_track_t *t);

#ifdef __cplusplus
}
#endif

#endif
