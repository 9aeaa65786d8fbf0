/* awith/with.h: the `with` block (Python's `async with`).
 *
 *   aw_with (db_t *db, aw_cm(&db_type, &state)) {
 *       ...                      // db is what enter produced
 *   }                            // exit has run, whatever the way out
 *   aw_with (aw_locked(&m)) { ... } // no `as` target
 *
 * Exit runs on every way out of the block: its end, `break`, `continue`,
 * `return`, `goto` out, an error, a cancel, a deadline. Managers stacked as
 * consecutive aw_with lines enter in order and exit in reverse; if one
 * fails to enter, the ones already entered exit with that error and the
 * rest never enter. Entering allocates nothing: the block's state lives on
 * the task's stack.
 *
 * Errors work like exceptions. The error a block "leaves with" is the error
 * raised inside it and still pending (see awith/err.h): a failing call
 * raises it; aw_err_clear() handles it. So `return rc;` after a failed call
 * hands that error to exit, as an exception would, while a block with no
 * pending error exits clean. After the block, aw_status() is the error
 * that left it (enter's failure, the body's error, or exit's), or 0.
 *
 * `break` and `continue` inside the block leave the block (it is a loop
 * in disguise); to leave an enclosing loop use `goto` or a flag. aw_leave()
 * is `break`, for readability; aw_fail(code, fmt, ...) raises and leaves
 * (it is an if/else: inside an unbraced `if`, add braces, as GCC's
 * -Wdangling-else will remind you).
 *
 * A `return x` that is followed by a failing exit still returns x (C cannot
 * change it); the exit's error is pending in the caller: check
 * aw_status(). A task function that returns 0 that way does not drop it:
 * the exit's error becomes the task's status (SEMANTICS K5). */
#ifndef AWITH_WITH_H
#define AWITH_WITH_H

#include <awith/cm.h>
#include <awith/scope.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_with aw_with_t;
struct aw_with {                  /* private; public for stack storage */
    aw_cm_t cm;                   /* cm.size unset (see aw__with_prep) */
    void *value;                  /* what enter produced */
    uint64_t mark;                /* seq of the error pending at entry */
    aw_with_t *outer;             /* the task's enclosing with */
    struct aw_task *task;
    const char *file;
    int line;
    uint8_t state;                /* AW__WITH_* */
    uint8_t once;                 /* aw_with: the body runs, not left by its end or break */
    int code;                     /* exit: the code of the error the block left with */
    aw_ns_t since;                /* when the current phase started (introspection) */
    /* What enter and exit keep across the manager's call here rather than
     * in registers (one callee-saved register, not five, to spill): */
    uint64_t floor;               /* the task's err_floor, restored after the call */
    aw_with_t *exiting;           /* exit: the task's exiting, likewise (adjacent to floor) */
    uint64_t before;              /* exit: seq of the error pending when it began */
    aw_scope_t shield;            /* the exit's shield, when nested in another exit */
};

/* EXIT lasts after the exit (the record is off the task's chain by then). */
enum { AW__WITH_INIT, AW__WITH_ENTER, AW__WITH_BODY, AW__WITH_EXIT, AW__WITH_FAILED };

AW_API aw_with_t aw__with_init(aw_cm_t cm, const char *file, int line);
/* Enter w (prepared): true if the body is to run, with state BODY and
 * once set (a caller other than the macro clears once: K5 is the
 * block's business); false, state FAILED, if enter failed or was refused. */
AW_API bool aw__with_enter(aw_with_t *w);
AW_API void aw__with_cleanup(aw_with_t *w);

/* The fields enter reads, and nothing else: the record is ~180 bytes, and
 * zero-filling it (a designated initialiser) costs more than the whole
 * enter; enter and exit set the rest (enter sets state on every way out,
 * so none is stored here). cm.size is left unset: a with uses the state
 * in place and never reads it (the exit stack reads its own copy of cm).
 * Returns w, to mark the first pass of the macro's loop. */
static inline aw_with_t *aw__with_prep(aw_with_t *w, aw_cm_t cm, const char *file, int line) {
    w->cm.type = cm.type;
    w->cm.self = cm.self;
    w->file = file;
    w->line = line;
    return w;
}

/* The outer loop runs its condition twice: first (p == &w) it enters and
 * sets p to &w + 1 if the body is to run (NULL if enter failed), then
 * (after the body or a break) it ends the loop; w's cleanup runs the exit
 * on every way out of the statement. The inner loop runs the body while
 * p == &w + 1, a value the compiler follows from enter's result, so no
 * flag is stored or read back to run it. `once` is set by enter (with the
 * state, one store) and cleared on the way out by the end or a break, so
 * a cleanup that finds it set knows the block was left by return or goto
 * (SEMANTICS K5). */
#define aw__with_loop_(w, p, mgr)                                                      \
    for (aw_with_t w __attribute__((cleanup(aw__with_cleanup))),                       \
         *p = aw__with_prep(&w, (mgr), __FILE__, __LINE__);                            \
         p == &w ? (p = aw__with_enter(&w) ? &w + 1 : NULL, 1) : (w.once = 0);)
#define aw__with2_(w, decl, mgr)                                                      \
    aw__with_loop_(w, AW__CAT(w, _p), mgr)                                            \
        for (decl __attribute__((unused)) = w.value; AW__CAT(w, _p) == &w + 1;          \
             AW__CAT(w, _p) = NULL, w.once = 0)
#define aw__with1_(w, mgr)                                                            \
    aw__with_loop_(w, AW__CAT(w, _p), mgr)                                            \
        for (; AW__CAT(w, _p) == &w + 1; AW__CAT(w, _p) = NULL, w.once = 0)
#define aw__with2(decl, cm) aw__with2_(AW__CAT(aw__w, __COUNTER__), decl, cm)
#define aw__with1(cm) aw__with1_(AW__CAT(aw__w, __COUNTER__), cm)
#define aw__with_pick(_1, _2, name, ...) name
#define aw_with(...) aw__with_pick(__VA_ARGS__, aw__with2, aw__with1, _)(__VA_ARGS__)

#define aw_leave() break
#define aw_fail(...) if ((void)aw_raise(__VA_ARGS__), 1) break; else (void)0

#ifdef __cplusplus
}
#endif

#endif
