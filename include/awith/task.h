/* awith/task.h: tasks, stackful coroutines scheduled by the loop.
 *
 * A task runs `int fn(void *arg)` on its own stack; its return value is
 * its status (0 or a negative errno code). Tasks are spawned into a task
 * group (awith/group.h) or, with g == NULL, into the loop's root group,
 * which is cancelled and awaited when the main task returns: nothing is
 * ever orphaned.
 *
 * A task spawned into a cancelled scope still runs until its first
 * suspension point, which returns -ECANCELED (Trio's rule): its cleanup
 * always gets to run. */
#ifndef AWITH_TASK_H
#define AWITH_TASK_H

#include <awith/loop.h>
#include <awith/scope.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_task aw_task_t;
typedef struct aw_group aw_group_t;

/* An intrusive doubly linked list (src/core/list.h), embedded in public
 * structs; fields private. All-zero is empty. */
struct aw__link {
    struct aw__link *prev, *next;
};
typedef struct aw__list {
    struct aw__link *head, *tail;
} aw__list_t;

/* A FIFO of suspended tasks, embedded in synchronisation primitives. */
typedef aw__list_t aw_waitq_t;

typedef struct aw_task_opts {
    const char *name;        /* static string; default: the function's name */
    size_t stack_size;       /* 0: the loop's default (from the stack cache) */
} aw_task_opts_t;

/* Spawn fn(arg) into group `g` (NULL: the root group). If `handle` is not
 * NULL the task is joinable and *handle stays valid until aw_task_join()
 * returns or the group is left; otherwise the task is freed as soon as it
 * finishes. A joinable root-group task hands its failure to its joiner;
 * one that failed and is never joined is reported at loop close and makes
 * aw_main return -AW_EGROUP (SEMANTICS I6). The task starts at the group owner's next suspension point.
 * Never suspends. Returns 0, -ENOMEM, or -EINVAL (group not entered yet
 * or already left, or outside a loop). A group accepts children until its
 * last child is done: a child may spawn a sibling while the owner waits at
 * the end of the block (SEMANTICS M8). The spawn site and the function's name are recorded
 * for diagnostics. Cost: O(1), no malloc (the task lives at the top of its
 * stack, which comes from the loop's cache). */
#define aw_spawn(g, fn, arg, handle) \
    aw__spawn((g), (fn), (arg), NULL, (handle), #fn, __FILE__, __LINE__)
#define aw_spawn_opts(g, fn, arg, opts, handle) \
    aw__spawn((g), (fn), (arg), (opts), (handle), #fn, __FILE__, __LINE__)
AW_API int aw__spawn(aw_group_t *g, aw_task_fn fn, void *arg, const aw_task_opts_t *opts,
                     aw_task_t **handle, const char *name, const char *file, int line);

/* Wait for a joinable task and release it. Returns its status; if it
 * failed, a copy of its error chain is raised in the caller. A
 * cancellation point: on -ECANCELED the task is still joinable (and still
 * owned by its group). */
AW_API int aw_task_join(aw_task_t *t);

/* Cancel a task (its root scope). Idempotent; never suspends. */
AW_API void aw_task_cancel(aw_task_t *t);

/* The running task, or NULL on the loop's own stack. */
AW_API aw_task_t *aw_task_self(void);
AW_API const char *aw_task_name(const aw_task_t *t);
/* A number unique among this loop's tasks (for logs). */
AW_API uint64_t aw_task_id(const aw_task_t *t);

/* Give other ready tasks a turn. A cancellation point: -ECANCELED. */
AW_API int aw_yield(void);

/* Sleep `ns` (relative) or until `deadline` (absolute). A cancellation
 * point: returns 0, or -ECANCELED if cancelled or a deadline fired. */
AW_API int aw_sleep(aw_ns_t ns);
AW_API int aw_sleep_until(aw_ns_t deadline);
static inline int aw_sleep_ms(int64_t ms) { return aw_sleep(AW_MS(ms)); }

/* A checkpoint that does not suspend unless cancelled: returns -ECANCELED
 * if a cancel is pending, else 0. */
AW_API int aw_checkpoint(void);

#ifdef __cplusplus
}
#endif

#endif
