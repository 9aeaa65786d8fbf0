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
 * Whatever exit returns, the resource counts as released. */
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
};

typedef struct aw_cm_type {
    const char *name;
    int (*enter)(void *self, void **out);          /* 0 or -errno; may suspend */
    int (*exit)(void *self, const aw_err_t *err);  /* see above; may suspend */
    unsigned flags;
    aw_ns_t grace;                                 /* exit's grace; 0: the loop's */
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

#ifdef __cplusplus
}
#endif

#endif
