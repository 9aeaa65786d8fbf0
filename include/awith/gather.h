/* awith/gather.h: the children's results, in spawn order (asyncio.gather's
 * return value), on task groups.
 *
 *   results = await asyncio.gather(fetch("a"), fetch("b"), parse(buf))
 *
 * is, for a list of calls known up front:
 *
 *   aw_result_t r[] = {AW_RESULT(fetch, "a"), AW_RESULT(fetch, "b"), AW_RESULT(parse, buf)};
 *   if (aw_gather(r, 3) < 0)
 *       return aw_status();            // -AW_EGROUP: the failures are its members
 *   use(r[0].value, r[1].value, r[2].value);
 *
 * and, for children spawned as the body goes (any number, any group):
 *
 *   aw_result_t r[N];
 *   aw_with (aw_group_t *g, aw_group()) {
 *       for (int i = 0; i < N; i++)
 *           aw_spawn_result(g, fetch, urls[i], &r[i]);
 *   }   // every r[i] is filled once the block is left
 *
 * A child is `int fn(void *arg, void **value)`: it returns its status (0
 * or a negative errno code, as a task does) and may store a result in
 * *value (NULL until it does). The caller provides the slots (no malloc);
 * they must stay valid until the group is left.
 *
 * The failure rules are the group's (awith/group.h): the first child
 * failure cancels the siblings and the body, the group's error lists every
 * failure, a cancel from outside reaches every child. Unlike asyncio's
 * gather (SEMANTICS I11), nothing is left running when the results are
 * read. Each slot tells what became of its child:
 *   status   0 (value is its result), the child's error code (-EIO ...),
 *            -ECANCELED if the group (or an outside cancel) stopped it or
 *            it was never started; -EINPROGRESS while it runs. It is the
 *            child's task status: a `return 0` whose with block's exit
 *            then failed gives that exit's code (SEMANTICS K5).
 *   value    whatever the child stored, whatever its status: if it owns
 *            memory, the caller frees it. */
#ifndef AWITH_GATHER_H
#define AWITH_GATHER_H

#include <awith/group.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*aw_result_fn)(void *arg, void **value);

typedef struct aw_result {
    int status;                   /* see above */
    void *value;                  /* what the child stored in *value */
    aw_result_fn fn;              /* private: the call (AW_RESULT) */
    void *arg;
    const char *name;
} aw_result_t;

/* A slot for aw_gather: the call fn(arg, &value). */
#define AW_RESULT(fn_, arg_) \
    {.status = -EINPROGRESS, .fn = (fn_), .arg = (void *)(arg_), .name = #fn_}

/* Spawn fn(arg, &slot->value) into group `g` and collect its status and
 * value in *slot when it ends (g NULL: the loop's root group, awaited only
 * when aw_main ends: *slot must then live until the child is done). Never suspends; no malloc. Returns 0,
 * or aw_spawn's error (-ENOMEM, -EINVAL: group not open), raised and also
 * stored in slot->status (the child never runs). The task is named after
 * fn and the spawn site is recorded, as with aw_spawn. */
#define aw_spawn_result(g, fn, arg, slot) \
    aw__spawn_result((g), (fn), (arg), (slot), #fn, __FILE__, __LINE__)
AW_API int aw__spawn_result(aw_group_t *g, aw_result_fn fn, void *arg, aw_result_t *slot,
                            const char *name, const char *file, int line);

/* Run r[i].fn(r[i].arg, &r[i].value) for every i < n as the children of a
 * new group, wait for all of them, and fill every r[i].status. Suspends
 * until the last child is done; a cancel from outside is passed to the
 * children, awaited, and returned as -ECANCELED. Returns 0 if every child
 * succeeded, else the group's error, pending as for a group block:
 * -AW_EGROUP (members: each failure, in completion order), -ECANCELED, or
 * a spawn error (-ENOMEM: the children already started are cancelled;
 * the slots not started say -ECANCELED), -EINVAL (r NULL), -EPERM outside
 * a task. The children are named after their functions (AW_RESULT) and
 * recorded as spawned at the call site. */
#define aw_gather(r, n) aw__gather((r), (n), __FILE__, __LINE__)
AW_API int aw__gather(aw_result_t *r, size_t n, const char *file, int line);

#ifdef __cplusplus
}
#endif

#endif
