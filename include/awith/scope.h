/* awith/scope.h: cancel scopes and deadlines (Trio's model).
 *
 * Cancellation is level-triggered and scoped: once a scope is cancelled,
 * every suspension point inside it returns -ECANCELED until the block of
 * that scope is left. Catching one -ECANCELED therefore cannot lose the
 * cancel. A shielded scope hides outer cancels and deadlines (exits run in
 * one automatically).
 *
 * A deadline is acted on only at a suspension point: a block that never
 * suspends is never interrupted. The effective deadline of a task is the
 * minimum over its enclosing scopes (up to a shield). A zero or past
 * deadline follows the same rules: the block starts, its first suspension
 * returns -ECANCELED.
 *
 * When a scope's own deadline expired and no enclosing scope is cancelled:
 *   fail-after:    the block's error becomes -ETIMEDOUT (context: the
 *                  -ECANCELED), even if the block swallowed the cancel;
 *   move-on-after: the block is left quietly; aw_scope_expired() says so.
 * When an outer cancel is also pending (same tick or not), the result is
 * -ECANCELED and the -ETIMEDOUT is recorded in its chain; it belongs to
 * that cancel, and the scope or group that ends the cancel drops it too
 * (a move-on around a fail-after of the same deadline is left quietly,
 * as in Trio).
 *
 * A scope ends only its own cancel (SEMANTICS M4): it drops the -ECANCELED
 * records on top of what the block raised (with the timeouts they
 * outranked) and nothing else. An error
 * raised while its cancel unwound the block (an exit failing, an exit
 * over its grace, a group's failure) leaves the scope with the cancel in
 * its context: "EIO <- ECANCELED" after a move-on or cancel scope,
 * "EIO <- ETIMEDOUT <- ECANCELED" after a fail-after (the failure, the
 * timeout, the cancel it caused, as Python 3.13 chains it).
 *
 * A scope is entered once: entering it again while its block runs fails
 * with -EBUSY, after its block ended with -EALREADY (SEMANTICS G6).
 *
 * Scopes live inside the aw_with block that entered them: no malloc. A
 * scope entered into an exit stack lasts until the stack's entry exits,
 * also when the block it was entered in ends first (as a timeout entered
 * into Python's AsyncExitStack): the scopes of that block stop applying
 * as it ends, the stack's keep applying (SEMANTICS M5).
 *
 *   aw_with (aw_scope_t *s, aw_fail_after(AW_MS(100))) { ... }
 *   aw_with (aw_scope_t *s, aw_move_on_after(AW_MS(100))) {
 *       ...
 *       if (aw_scope_expired(s)) ...  // inside the block: the deadline fired
 *   }
 */
#ifndef AWITH_SCOPE_H
#define AWITH_SCOPE_H

#include <awith/cm.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_scope aw_scope_t;
struct aw_task;

/* Fields are private; the struct is public only so that it can live on
 * the caller's stack. */
struct aw_scope {
    aw_scope_t *parent;          /* enclosing scope (may belong to a parent task) */
    struct aw_task *task;        /* the task whose stack holds the scope */
    aw_ns_t deadline;            /* absolute; AW_NEVER */
    aw_ns_t rel;                 /* relative deadline, resolved at enter; or exit grace */
    /* What the chain from here up to its first shield shows (the earliest
     * deadline, a cancel), valid while `epoch` is the thread's scope epoch
     * (src/core/scope.c): a suspension point reads it in O(1). */
    aw_ns_t chain_deadline;
    uint64_t epoch;              /* 0: not known */
    uint8_t chain_cancelled;
    uint32_t cancels;            /* cancel requests received */
    uint8_t kind;                /* AW__SCOPE_* */
    uint8_t cancelled;           /* level: set once, stays until the scope ends */
    uint8_t expired;             /* cancelled by its own deadline */
    uint8_t shield;
    uint8_t lazy;                /* exit shield: grace starts at first suspension */
    uint8_t held;                /* held at a generator's yield, in its cleanup (core/scope.c) */
};

enum { AW__SCOPE_PLAIN, AW__SCOPE_FAIL, AW__SCOPE_MOVE, AW__SCOPE_SHIELD, AW__SCOPE_ROOT, AW__SCOPE_GROUP };

extern AW_API const aw_cm_type_t aw_scope_type;

#define aw__scope_cm(k, r, d, sh) \
    aw_cm_temp(&aw_scope_type, (aw_scope_t){.kind = (k), .rel = (r), .deadline = (d), .shield = (sh)})

/* A plain cancel scope: aw_scope_cancel() on it ends the block quietly. */
#define aw_cancel_scope() aw__scope_cm(AW__SCOPE_MOVE, AW_NEVER, AW_NEVER, 0)
/* Fail with -ETIMEDOUT if still inside after `ns` (relative). */
#define aw_fail_after(ns) aw__scope_cm(AW__SCOPE_FAIL, (ns), AW_NEVER, 0)
/* Same, with an absolute deadline (aw_now() + ...). */
#define aw_fail_at(deadline) aw__scope_cm(AW__SCOPE_FAIL, AW_NEVER, (deadline), 0)
/* Leave the block quietly after `ns`. */
#define aw_move_on_after(ns) aw__scope_cm(AW__SCOPE_MOVE, (ns), AW_NEVER, 0)
#define aw_move_on_at(deadline) aw__scope_cm(AW__SCOPE_MOVE, AW_NEVER, (deadline), 0)
/* A shield: outer cancels and deadlines do not reach inside. Give it a
 * deadline (`ns`, AW_NEVER for none) so that it cannot hang. */
#define aw_shield(ns) aw__scope_cm(AW__SCOPE_MOVE, (ns), AW_NEVER, 1)

/* Cancel the scope: every suspension point inside (in this task and in
 * tasks of groups opened inside it) returns -ECANCELED from now on.
 * Idempotent; never suspends. Cost: O(tasks inside the scope). On a
 * scope whose block has ended (its state still in scope) it does nothing
 * but mark it cancelled, as Trio's cancel() after the block. */
AW_API void aw_scope_cancel(aw_scope_t *s);

/* Move the deadline (absolute; AW_NEVER disables it). Returns -EINVAL for
 * a scope that is not entered (before enter or after exit). */
AW_API int aw_scope_reschedule(aw_scope_t *s, aw_ns_t deadline);

/* Did this scope's own deadline fire? */
AW_API bool aw_scope_expired(const aw_scope_t *s);
/* Was this scope cancelled (by aw_scope_cancel or its deadline)? */
AW_API bool aw_scope_cancelled(const aw_scope_t *s);
/* The deadline currently in force for the calling task (min over scopes). */
AW_API aw_ns_t aw_effective_deadline(void);
/* Is a cancel marked on the calling task's chain (up to a shield): a
 * scope cancelled (aw_scope_cancel, a group stopping its children), or a
 * deadline a suspension point has already found passed? Reads no clock
 * and never suspends, so a deadline that passed while the task ran
 * without suspending shows at its next suspension point, not here: a CPU
 * loop under a deadline polls aw_checkpoint() (it reads the clock and
 * returns -ECANCELED), not this. */
AW_API bool aw_cancel_pending(void);

#ifdef __cplusplus
}
#endif

#endif
