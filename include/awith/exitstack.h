/* awith/exitstack.h: a dynamic stack of exits (Python's AsyncExitStack).
 *
 *   aw_with (aw_exitstack_t *st, aw_exitstack()) {
 *       int i = 0;
 *       while (i < n && aw_exitstack_enter(st, aw_cm(&conn_type, &conns[i]), NULL) == 0)
 *           i++;
 *       if (i < n)
 *           aw_leave();          // the ones entered so far exit (aw_leave is
 *                                // `break`: inside the loop, it would leave the loop only)
 *       aw_exitstack_callback(st, log_done, "done");
 *       ...
 *   }   // exits run LIFO, like nested aw_with blocks
 *
 * Each entry exits exactly like an aw_with block would (shielded, with its
 * grace; it receives the error as the entries after it left it; it may
 * suppress, or fail with the old error as context), so the final error is
 * the same as with nested blocks: every error kept, in order, acyclic.
 * Entries are nodes bumped from slabs (room for 16 small entries, then
 * twice the last; the loop keeps a few first slabs, so a warm stack of up
 * to 16 costs no malloc): the stack is for a number of managers known
 * only at run time; use aw_with for a fixed set.
 *
 * Lifetime (awith/cm.h): the stack owns what its entries need. A manager
 * built by a constructor (aw_file, aw_gencm, aw_fail_after, aw_pool_item,
 * aw_sqlite_tx, aw_exitstack, ... : aw_cm_temp) is copied into the stack
 * before it is entered, so
 *     for (i = 0; i < n; i++)
 *         aw_exitstack_enter(st, aw_file(path[i], O_RDONLY, 0), (void **)&f[i]);
 * enters n distinct files, each closed once when the stack exits, and what
 * enter hands out (f[i]) stays valid until then. A state passed by pointer
 * (aw_cm(&type, &state)) is borrowed: it must live until the stack exits
 * (debug builds abort if one is entered again while still entered).
 *
 * Another task may fill the stack: a child of a group, or a generator,
 * given the stack by the task that holds it (Python's AsyncExitStack
 * shared with tasks or an async generator). Its entries outlive it and
 * exit in the task that unwinds the stack, seeing that task's error
 * (SEMANTICS M5). An entry that opens a scope (a deadline, a group, a
 * generator manager holding one around its yield) covers the task that
 * entered it, so only the task that holds the stack may enter one: a
 * generator's yield refuses one, and a child that ends with one left in
 * another task's stack stops the program, naming the entry's site. Only
 * that task may close such a stack: aw_exitstack_close from another task
 * fails with -EPERM, naming the entry, and closes nothing (Trio refuses
 * the same misnesting). */
#ifndef AWITH_EXITSTACK_H
#define AWITH_EXITSTACK_H

#include <awith/with.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw__xs_node aw__xs_node_t;
typedef struct aw__xs_slab aw__xs_slab_t;
typedef struct aw_exitstack {     /* private; public for stack storage */
    aw__xs_node_t *top;
    unsigned char *bump, *end;    /* the free part of the current slab */
    aw__xs_slab_t *slabs;         /* where the nodes live; the first is current */
    size_t n;
    uint64_t mark;                /* seq pending when the stack's block began */
} aw_exitstack_t;

extern AW_API const aw_cm_type_t aw_exitstack_type;
#define aw_exitstack() aw_cm_temp(&aw_exitstack_type, (aw_exitstack_t){0})

/* Enter `cm` now and push its exit; a temporary state (cm.size > 0) is
 * first copied into the stack, which owns it until the entry exits. May
 * suspend (if enter does); a cancellation point if enter is. Returns 0,
 * enter's error, or -ENOMEM; on failure nothing is pushed and the error is
 * pending. `out` (may be NULL) gets what enter produced. */
#define aw_exitstack_enter(st, cm, out) aw__exitstack_enter_at((st), (cm), (out), __FILE__, __LINE__)
AW_API int aw__exitstack_enter(aw_exitstack_t *st, aw_cm_t cm, void **out, const char *file, int line);
/* The same for a borrowed state (cm.size == 0), given in registers rather
 * than as a manager on the stack: the macro picks it when the size is 0,
 * which the compiler knows for aw_cm(...), so the test costs nothing. */
AW_API int aw__exitstack_enter_ref(aw_exitstack_t *st, const aw_cm_type_t *type, void *self,
                                   void **out, const char *file, int line);
static inline int aw__exitstack_enter_at(aw_exitstack_t *st, aw_cm_t cm, void **out,
                                         const char *file, int line) {
    if (cm.size)
        return aw__exitstack_enter(st, cm, out, file, line);
    return aw__exitstack_enter_ref(st, cm.type, cm.self, out, file, line);
}

/* Push an exit callback: fn(arg, err) may suppress (AW_SUPPRESS) or fail
 * (< 0), like a manager's exit. A NULL fn is -AW_EPROTOCOL, nothing pushed. */
AW_API int aw_exitstack_push_exit(aw_exitstack_t *st, int (*fn)(void *arg, const aw_err_t *err), void *arg);
/* Push a plain callback: fn(arg) cannot suppress; a negative return is a
 * failure (chained like an exit's), anything else is ignored. A NULL fn
 * is -AW_EPROTOCOL, nothing pushed. */
AW_API int aw_exitstack_callback(aw_exitstack_t *st, int (*fn)(void *arg), void *arg);

/* Move every entry to `dst`; `st` then has nothing to do. Ownership
 * passes: close `dst` with aw_exitstack_close. Entries `dst` already
 * holds are kept, below the moved ones (which exit first). */
AW_API void aw_exitstack_pop_all(aw_exitstack_t *st, aw_exitstack_t *dst);

/* Run every exit now, LIFO, as if leaving a block with no error; returns
 * the error they left (pending), or -ECANCELED if a cancel is visible,
 * else 0: an older error still pending is not the close's. Idempotent: a
 * second call does nothing and returns 0. Suspends if the exits do.
 * -EPERM, nothing closed: a scope or group in it was entered by another
 * task (see above). */
AW_API int aw_exitstack_close(aw_exitstack_t *st);
AW_API size_t aw_exitstack_size(const aw_exitstack_t *st);

#ifdef __cplusplus
}
#endif

#endif
