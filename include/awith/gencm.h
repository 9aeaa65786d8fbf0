/* awith/gencm.h: managers written as one function (Python's
 * @asynccontextmanager).
 *
 *   static int resource(aw_gencm_t *g, void *arg) {
 *       res_t *r = acquire(arg);             // enter: may suspend
 *       if (!r) return aw_status();          // enter failed: block skipped
 *       int rc = aw_gencm_yield(g, r);       // the block runs here
 *       release(r);                          // exit: shielded, may suspend
 *       return rc;                           // what leaves the block
 *   }
 *   aw_with (res_t *r, aw_gencm(resource, arg)) { ... }
 *
 * The function runs on a coroutine of its own (a stack from the loop's
 * cache), inside the cancel scopes of the task that uses it; its cleanup
 * runs in that task's exit shield, exactly like a class-style exit.
 *
 * aw_gencm_yield() hands the value to the block and returns, when the block
 * is over, 0 or the code of the error the block left with
 * (aw_gencm_error() gives its record). As Python throws the exception in
 * at the yield, that error is then pending inside the generator (a copy
 * of its record and of the newest 7 of its context chain, SEMANTICS M3,
 * C4; a cancel's record alone): every manager the generator holds open
 * around its yield (an aw_with, an exit stack, a transaction) gets it in
 * its exit and rolls back, and `return aw_status();` after the yield
 * propagates it. A clear in the cleanup drops only what the cleanup raised
 * (M2). Whatever the generator returns, the block's error appears once in
 * what leaves the block.
 *
 * Scopes and groups the generator holds open around its yield cover the
 * block while it runs (M3, as in Trio and asyncio): a deadline there
 * (`aw_with (aw_fail_after(t)) { aw_gencm_yield(g, v); }`) times the block
 * out, a move-on or cancel scope there cuts it, a group there cancels it
 * when a child fails. Such a generator should `return aw_status();` after
 * its managers: what they left (-ETIMEDOUT, a group error, or nothing when
 * a move-on scope ended its own cancel) is what leaves the block; the
 * yield's code would re-raise the cancel the scope already ended. A
 * cancel still visible to the user (from its own scopes) is never lost,
 * whatever the generator returns. The function's return value decides
 * what leaves the block, as Python's generator code does:
 *   return rc (the same code)  the block's error propagates unchanged;
 *   return 0                   the error is suppressed (handled) --
 *                              except -ECANCELED: a cancel is never lost;
 *   return another code < 0    it replaces the block's error, which becomes
 *                              its context;
 *   return AW_SUPPRESS         as 0; any other value > 0 is -AW_EPROTOCOL.
 * A record the function raised itself is kept (on top of the block's
 * error) even when it returns the block's code; returning -AW_ECLOSED,
 * the generator-closed signal, is -AW_EPROTOCOL (SEMANTICS C10).
 * Returning before yielding fails enter ("didn't yield" if it returned 0);
 * yielding twice fails ("didn't stop"). An instance is single-use: entering
 * it again gives -EALREADY naming the manager. */
#ifndef AWITH_GENCM_H
#define AWITH_GENCM_H

#include <awith/cm.h>
#include <awith/loop.h> /* aw_task_fn */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_gencm aw_gencm_t;
typedef int (*aw_gencm_fn)(aw_gencm_t *g, void *arg);

struct aw_gencm {                 /* private; public for stack storage */
    aw_gencm_fn fn;
    void *arg;
    const char *name;
    void *side;                   /* the generator's coroutine and the use's state (cm/gencm.c) */
    uint8_t state;                /* AW__GENCM_* */
};

enum { AW__GENCM_NEW, AW__GENCM_ENTER, AW__GENCM_YIELDED, AW__GENCM_EXIT, AW__GENCM_DONE };

extern AW_API const aw_cm_type_t aw_gencm_type;

/* A fresh single-use instance, as a manager (lives as long as the block). */
#define aw_gencm(fn_, arg_) aw_cm_temp(&aw_gencm_type, (aw_gencm_t)AW_GENCM_INIT(fn_, arg_))
/* An instance to declare yourself: aw_gencm_t m = AW_GENCM_INIT(fn, arg); */
#define AW_GENCM_INIT(fn_, arg_) {.fn = (fn_), .arg = (arg_), .name = #fn_}

/* From inside the generator function: see above. Suspends until the block
 * is over. -AW_EPROTOCOL if called twice or from outside the generator. */
AW_API int aw_gencm_yield(aw_gencm_t *g, void *value);
/* The error record the block left with, or NULL. Valid until the function
 * returns. */
AW_API const aw_err_t *aw_gencm_error(const aw_gencm_t *g);

/* The decorator form: run fn(arg) inside a fresh instance of gen(garg) and
 * return what leaves the block (0 or its error code). A negative return
 * of fn is the block's error, as a task's is its status: raised for it
 * ("returned EIO") if fn returned the code without raising it. */
AW_API int aw_gencm_call(aw_gencm_fn gen, void *garg, aw_task_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
