/* awith/cm.h: the manager protocol (Python's __aenter__/__aexit__).
 *
 * A manager type is a name, an enter and an exit. aw_with (awith/with.h)
 * drives it: enter runs before the block and may suspend; exit runs on
 * every way out of the block, shielded from cancellation and enclosing
 * deadlines, bounded by its own grace period, and may suspend.
 *
 * exit receives the error the block left with (NULL on a clean way out)
 * and returns:
 *   0            let that error (if any) propagate unchanged;
 *   AW_SUPPRESS  swallow it: execution continues after the block
 *                (-ECANCELED cannot be swallowed unless the type has
 *                AW_CM_SUPPRESS_CANCEL: a cancel is never lost);
 *   < 0          fail: the new error (raised with aw_raise, or made from
 *                the code) replaces the old one, which becomes its context.
 *                A code the block has no record of gets one, on top of
 *                what exit raised and left pending (as a task's return).
 * Whatever exit returns, the resource counts as released. An enter or exit
 * may raise and handle errors of its own (`if (aw_raise(...) < 0)
 * aw_err_clear();`): the clear drops only what it raised, never the error
 * it was handed or a pending cancel (SEMANTICS M2); returning err->code
 * afterwards still fails the block.
 *
 * Lifetime of a manager's state. A manager is a type and a pointer to its
 * state (`self`). The library's constructors (aw_file, aw_gencm,
 * aw_fail_after, aw_pool_item, aw_sqlite_tx, ...) build the state in a
 * compound literal, which C keeps alive only until the end of the
 * enclosing block; they say so by carrying its size (aw_cm_temp). aw_with
 * uses the state in place (the block ends before the literal does); the
 * exit stack, whose entries outlive the statement that built them, copies
 * such a state into storage of its own before entering it, so
 *     for (i = 0; i < n; i++) aw_exitstack_enter(st, aw_file(p[i], O_RDONLY, 0), (void **)&f[i]);
 * enters n distinct files. Only the state itself is copied: what its
 * fields point to (a path, a request's headers) must live as long as the
 * manager uses it (for most managers: until enter returns).
 *
 * A state given by pointer (aw_cm(type, &state), size 0) is borrowed: it
 * must outlive every entry of it, and a per-entry state (a connection slot,
 * an AW_GENCM_INIT instance) must not be entered again while entered.
 * Debug builds (no NDEBUG) abort with both entry sites when the exit stack
 * enters a borrowed state (other than NULL) that is still entered in the
 * same task (the mark of a compound literal or loop variable reused in a
 * loop), unless the type declares AW_CM_SHARED. */
#ifndef AWITH_CM_H
#define AWITH_CM_H

#include <awith/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AW_SUPPRESS 1

enum {
    AW_CM_SUPPRESS_CANCEL = 1u << 0, /* exit may swallow -ECANCELED */
    AW_CM_UNSHIELDED = 1u << 1,      /* exit sees outer cancels (scopes, groups) */
    AW_CM_SHARED = 1u << 2,          /* self is a long-lived object (a lock, a semaphore,
                                        a stream), not per-entry state: it may be entered
                                        several times at once */
};

typedef struct aw_cm_type {
    const char *name;
    int (*enter)(void *self, void **out);          /* 0 or -errno; may suspend */
    int (*exit)(void *self, const aw_err_t *err);  /* see above; may suspend */
    unsigned flags;
    aw_ns_t grace;                                 /* exit's grace; 0: the loop's */
    /* Optional: this instance's name in reports, traces and the dump (a
     * generator manager gives its function's); NULL: the type's name. */
    const char *(*describe)(const void *self);
} aw_cm_type_t;

/* A manager instance: a type and its state. Built by value, no malloc. */
typedef struct aw_cm {
    const aw_cm_type_t *type;
    void *self;
    size_t size;       /* > 0: self is a temporary of that many bytes, copied by
                          whatever keeps the manager past the statement; 0: borrowed */
} aw_cm_t;

/* A manager over caller-owned state (borrowed: see the lifetime rule). */
static inline aw_cm_t aw_cm(const aw_cm_type_t *type, void *self) {
    aw_cm_t cm = {type, self, 0};
    return cm;
}

/* A manager over a temporary state, given as a compound literal:
 *     #define my_conn(host) aw_cm_temp(&my_conn_type, (my_conn_t){.host = (host)})
 * The literal is evaluated once; its size (and alignment) are read at
 * compile time. A state aligned beyond max_align_t is treated as borrowed. */
#define aw_cm_temp(type, ...) \
    aw__cm_sized((type), &(__VA_ARGS__), \
                 __alignof__(__VA_ARGS__) <= __alignof__(max_align_t) ? sizeof(__VA_ARGS__) : 0)
static inline aw_cm_t aw__cm_sized(const aw_cm_type_t *type, void *self, size_t size) {
    aw_cm_t cm = {type, self, size};
    return cm;
}

/* The name of a manager instance in reports: its type's describe(self),
 * else the type's name. Never NULL; never suspends. */
static inline const char *aw_cm_name(aw_cm_t cm) {
    const char *n = NULL;
    if (cm.type)
        n = cm.type->describe ? cm.type->describe(cm.self) : cm.type->name;
    return n ? n : "?";
}

#ifdef __cplusplus
}
#endif

#endif
