/* awith/err.h: errors as values.
 *
 * Every fallible awith call returns 0 (or a count) on success and a negative
 * errno code on failure -- never -1 with errno, because errno does not
 * survive exit handlers that run between a failure and its caller.
 *
 * A failure also leaves an error *record* pending on the current task:
 * code, message, origin (file, line, function) and `context`, the record it
 * replaced (Python's __context__). A record stays pending until the task
 * handles it with aw_err_clear(); an error raised while another is pending
 * chains onto it, so nothing is lost. Chains are acyclic by construction:
 * a record is owned by exactly one place (the task, or the record that
 * replaced it) and raising the pending record again is a no-op.
 *
 * A task group's error lists its children's failures in `members`, in
 * completion order, linked by `next`. */
#ifndef AWITH_ERR_H
#define AWITH_ERR_H

#include <awith/base.h>
#include <errno.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* awith's own codes, beyond errno's range; one table gives names and texts. */
#define AW_ERR_MAP(X)                                                         \
    X(PROTOCOL, 4096, "manager protocol violated")                            \
    X(GROUP, 4097, "one or more tasks of a group failed")                     \
    X(OVERFLOW, 4098, "stack overflow")                                       \
    X(CLOSED, 4099, "generator closed by its consumer")

enum {
#define AW__ERR_ENUM(name, num, text) AW_E##name = (num),
    AW_ERR_MAP(AW__ERR_ENUM)
#undef AW__ERR_ENUM
};

typedef struct aw_err aw_err_t;
struct aw_err {
    int code;                 /* negative: -ECANCELED, -AW_EGROUP, ... */
    const char *file;         /* where it was raised */
    int line;
    const char *func;
    const char *task;         /* name of the task that raised it */
    aw_err_t *context;        /* the error this one replaced, or NULL */
    aw_err_t *members;        /* group errors: child failures, in order */
    aw_err_t *next;           /* next member of the same group */
    int origin;               /* AW_ORIGIN_*: whose own code the two below are */
    int origin_code;          /* SQLite's extended result code, an HTTP status */
    char sqlstate[6];         /* PostgreSQL's SQLSTATE ("23505"), else "" */
    uint64_t seq;             /* private: raise order within the task */
    char msg[];               /* a sentence a person can act on */
};

/* Where a record's own code came from. The errno-style `code` is the
 * class a program branches on and the same in every layer (-EREMOTEIO:
 * the server or the database said no); the origin's code says exactly
 * what, in the terms of the resource's own documentation (an SQLite
 * unique violation is origin_code 2067, SQLITE_CONSTRAINT_UNIQUE):
 *   const aw_err_t *e = aw_err_find(aw_err_current(), -EREMOTEIO);
 *   if (e && e->origin == AW_ORIGIN_POSTGRES && !strcmp(e->sqlstate, "23505"))
 *       aw_err_clear();   // unique_violation: the row is there already
 *   else if (e && e->origin == AW_ORIGIN_HTTP && e->origin_code == 404)
 *       aw_err_clear();   // not found: nothing to do */
enum {
    AW_ORIGIN_NONE = 0, /* only the errno-style code */
    AW_ORIGIN_POSTGRES, /* sqlstate: the server's SQLSTATE */
    AW_ORIGIN_SQLITE,   /* origin_code: the extended result code */
    AW_ORIGIN_HTTP,     /* origin_code: the response's status */
};

/* Give the pending record (the one just raised) its origin: for a
 * resource of your own, as the PostgreSQL, SQLite and HTTP layers do.
 * `sqlstate` may be NULL (cut to 5 characters). Does nothing if no error
 * is pending. Never suspends. */
AW_API void aw_err_set_origin(int origin, int origin_code, const char *sqlstate);

/* Short name of a code ("ECANCELED", "AW_EGROUP"); "E?" if unknown.
 * Never suspends; the string is static. */
AW_API const char *aw_err_name(int code);

/* Human text of a code ("Operation canceled"); static, never NULL. */
AW_API const char *aw_strerror(int code);

/* Raise: record an error on the current task and return `code` (which must
 * be negative). The pending record, if any, becomes the new record's
 * context. Raising -ECANCELED while an -ECANCELED is pending adds nothing
 * (a loop that ignores cancellation does not grow a chain). Outside a
 * task (no task runs on this thread, or on the loop's own stack) there is
 * no chain to record into: the record becomes the thread's last error,
 * one record without context (message cut at 511 bytes), replacing the
 * previous one; aw_err_current(), aw_status() and aw_err_clear() called
 * outside a task read and drop it. A suspending call made outside a task
 * returns -EPERM with such a record saying why, and reports it (awith/log.h:
 * stderr by default) the first time on the thread (the caller may not look). Never
 * suspends. */
#define aw_raise(code, ...) aw__raise(__FILE__, __LINE__, __func__, (code), __VA_ARGS__)
AW_API int aw__raise(const char *file, int line, const char *func, int code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The current task's pending error record, or NULL. Borrowed: valid until
 * the next raise or clear on this task. */
AW_API const aw_err_t *aw_err_current(void);

/* The pending error's code, or 0. */
AW_API int aw_status(void);

/* Handle the pending error: drop it and its whole chain. Inside a
 * manager's enter or exit (and in blocks nested in one) it drops only the
 * records raised there: the error an exit was handed, a pending cancel and
 * older errors stay (an exit decides about those by its return value,
 * awith/cm.h). So `if (aw_raise(...) < 0) aw_err_clear();` is a local
 * try/except anywhere (SEMANTICS M2). Never suspends. */
AW_API void aw_err_clear(void);

/* A narrower try/except: aw_err_mark() names the errors pending now;
 * aw_err_restore(mark) handles what was raised since, and nothing older
 * (never below what aw_err_clear may drop, so not the error an exit was
 * handed). For code that tries a step, drops its failure and goes on:
 *     uint64_t m = aw_err_mark();
 *     if (try_step() < 0)
 *         aw_err_restore(m);   // the step's failure handled, the rest kept
 * Never suspend; outside a task, mark is 0 and restore a no-op. */
AW_API uint64_t aw_err_mark(void);
AW_API void aw_err_restore(uint64_t mark);

/* Print a record and its chain (and members) to `f`, one line each,
 * innermost context last, like a traceback. */
AW_API void aw_err_print(const aw_err_t *err, FILE *f);

/* Number of records reachable from `err` through context and members. */
AW_API int aw_err_count(const aw_err_t *err);

/* First record in err's context chain (err included) with this code. */
AW_API const aw_err_t *aw_err_find(const aw_err_t *err, int code);

#ifdef __cplusplus
}
#endif

#endif
