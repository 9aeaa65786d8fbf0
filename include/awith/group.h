/* awith/group.h: task groups (structured concurrency; Trio's nursery,
 * asyncio's TaskGroup).
 *
 *   aw_with (aw_group_t *g, aw_group()) {
 *       aw_spawn(g, worker, "a", NULL);
 *       aw_spawn(g, worker, "b", NULL);
 *   }   // waits for both
 *
 * - Leaving the block waits for every child. Until the last one is done
 *   the group accepts new children, from the body or from its children
 *   (SEMANTICS M8); aw_spawn fails with -EINVAL only once it was left.
 * - The first child failure cancels the siblings and the body; leaving the
 *   block with an error cancels the children.
 * - The group's error (code -AW_EGROUP) lists every child failure in
 *   completion order in `members`; its context is the body's error, if
 *   any. Children the group cancelled are not failures.
 * - Cancelled from outside: children are cancelled and awaited, and a plain
 *   -ECANCELED propagates (with the group error in its chain if children
 *   had failed).
 * - aw_group_cancel() ends the group early; that is not an error. The
 *   group absorbs only its own cancel: a failure raised while it unwinds
 *   the body or a child (an exit failing, a nested group's error) is kept,
 *   the cancel in its context (SEMANTICS M4); a child's member record is
 *   its failure, not the cancel re-delivered over it.
 * - A group is used once (asyncio's TaskGroup): entered again inside its
 *   block it fails with -EBUSY, after its block with -EALREADY. */
#ifndef AWITH_GROUP_H
#define AWITH_GROUP_H

#include <awith/task.h>

#ifdef __cplusplus
extern "C" {
#endif

struct aw_group {                 /* private; public for stack storage */
    aw_scope_t scope;             /* encloses the body and every child */
    aw_task_t *owner;
    aw_group_t *outer;            /* the owner's enclosing group */
    aw__list_t children;          /* live children (aw_task_t.sibling) */
    aw__list_t done;              /* finished joinable children (the same link) */
    size_t nchildren;
    aw_err_t *failures, *failures_tail;
    size_t nfailures;
    uint8_t state;                /* AW__GROUP_* */
    uint8_t on_purpose;           /* cancelled by aw_group_cancel */
    uint8_t waiting;              /* the owner waits for the last child */
};

/* A group's life: made (not entered), open (the body runs), draining
 * (the owner waits at the end of the block for the last child: children
 * may still spawn siblings, SEMANTICS M8), closed (left). aw_spawn accepts
 * a child while the group is open or draining. */
enum { AW__GROUP_NEW, AW__GROUP_OPEN, AW__GROUP_DRAINING, AW__GROUP_CLOSED };

extern AW_API const aw_cm_type_t aw_group_type;
#define aw_group() aw_cm_temp(&aw_group_type, (aw_group_t){.state = AW__GROUP_NEW})

/* Cancel the group's body and children; leaving the block is then not an
 * error. Idempotent; never suspends. */
AW_API void aw_group_cancel(aw_group_t *g);
/* Live children. */
AW_API size_t aw_group_size(const aw_group_t *g);

#ifdef __cplusplus
}
#endif

#endif
