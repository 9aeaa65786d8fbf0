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
 * Whatever exit returns, the resource counts as released. An enter or exit
 * may raise and handle errors of its own (`if (aw_raise(...) < 0)
 * aw_err_clear();`): the clear drops only what it raised, never the error
 * it was handed or a pending cancel (SEMANTICS M2); returning err->code
 * afterwards still fails the block. */
#ifndef AWITH_CM_H
#define AWITH_CM_H

#include <awith/err.h>

#define AW_SUPPRESS 1

enum {
    AW_CM_SUPPRESS_CANCEL = 1u << 0, /* exit may swallow -ECANCELED */
    AW_CM_UNSHIELDED = 1u << 1,      /* exit sees outer cancels (scopes, groups) */
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
} aw_cm_t;

static inline aw_cm_t aw_cm(const aw_cm_type_t *type, void *self) {
    aw_cm_t cm = {type, self};
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

#endif
