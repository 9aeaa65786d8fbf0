/* awith/gen.h: async generators and the `for` that consumes them
 * (Python's async generators and `async for`).
 *
 *   static int count(aw_gen_t *g, void *arg) {
 *       for (int i = 0; i < 3; i++)
 *           if (aw_gen_yield(g, &i) < 0)
 *               break;                      // the consumer left: clean up
 *       cleanup();                          // may suspend; shielded on close
 *       return 0;
 *   }
 *   aw_for (int *v, aw_gen(count, NULL)) {
 *       if (*v == 1) break;                 // leaves the for, like Python
 *   }                                       // count's cleanup has run here
 *
 * The generator runs on a coroutine of its own, on behalf of the consuming
 * task: inside its cancel scopes, and aw_task_self() is the consumer.
 * Leaving the `for` by any way (end, break, return, goto, error, cancel)
 * closes the generator before the next statement: aw_gen_yield returns
 * -AW_ECLOSED and the generator's cleanup runs in a shield, in the
 * consumer's task (SEMANTICS E, part (c) 8). The close is pending inside
 * the generator as a -AW_ECLOSED record (Python's GeneratorExit thrown in
 * at the yield, SEMANTICS M3): a manager it holds open around the yield (a
 * transaction) sees it in its exit and rolls back instead of committing;
 * returning 0, or -AW_ECLOSED, answers the close cleanly. Deterministic: no finalizer,
 * no garbage collector, no other task.
 *
 * A yield while a scope opened by the generator (timeout, cancel scope,
 * task group) is active fails with -AW_EPROTOCOL at the yield: the scope
 * would otherwise leak into the consumer ((c) 10).
 *
 * A generator that returns -AW_ECLOSED when close did not ask it to ends
 * with -AW_EPROTOCOL (the original as context), not as "finished"
 * (SEMANTICS C10, PEP 479). If the cleanup fails while the consumer is
 * being cancelled, -ECANCELED stays on top with the failure in its chain;
 * after a `return` from inside the loop it is pending in the caller, and a
 * task that returns 0 that way fails with it, as from a with block
 * (awith/with.h, SEMANTICS K5);
 * a cleanup that overruns the exit grace is cut and reported by name. A
 * generator never closed (aw_gen_next by hand) is listed at loop close,
 * with the line where it was made, and aw_main returns -EBUSY (E3).
 *
 * Next and yield hand the thread over directly (one switch each, no trip
 * through the loop), so, as in Python, a generator and a consumer that
 * never suspend for real (sleep, I/O, a contended lock, aw_yield) do not
 * let other tasks run meanwhile. */
#ifndef AWITH_GEN_H
#define AWITH_GEN_H

#include <awith/err.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_gen aw_gen_t;
typedef int (*aw_gen_fn)(aw_gen_t *g, void *arg);

struct aw_gen {                   /* private; public for stack storage */
    aw_gen_fn fn;
    void *arg;
    const char *name;
    struct aw_task *task;         /* the generator's coroutine */
    void *value;                  /* the last value yielded */
    int resume;                   /* what aw_gen_yield returns: 0 or -AW_ECLOSED */
    uint8_t state;                /* AW__GEN_* */
    uint8_t once;                 /* aw_for: the body is running */
    uint8_t ignored_close;
    const char *file;             /* where it was made (reports); NULL: unknown */
    int line;
};

enum { AW__GEN_NEW, AW__GEN_SUSPENDED, AW__GEN_RUNNING, AW__GEN_DONE };

#define AW_GEN_INIT(fn_, arg_) {.fn = (fn_), .arg = (arg_), .name = #fn_, .file = __FILE__, .line = __LINE__}
#define aw_gen(fn, arg) ((aw_gen_t)AW_GEN_INIT(fn, arg))

/* From the generator: hand `value` (borrowed by the consumer until its
 * next call) and suspend until the next item is asked for. Returns 0 to go
 * on, or -AW_ECLOSED when the consumer left (clean up and return), or
 * -AW_EPROTOCOL (a scope of the generator is open; called outside it). */
AW_API int aw_gen_yield(aw_gen_t *g, void *value);

/* From the consumer: run the generator to its next yield. Returns 1 with
 * *out set, 0 when it finished (and after close), or its error (< 0,
 * pending). -EBUSY while another task is inside next; -AW_EPROTOCOL (and
 * finished) for a generator made with a NULL function. A suspension point
 * in the generator's code; the consumer's own wait is not cancellable
 * (the generator sees the cancel and decides). */
AW_API int aw_gen_next(aw_gen_t *g, void **out);

/* Close: resume the generator with -AW_ECLOSED and run its cleanup,
 * shielded, in the calling task. Idempotent. Returns 0 or the cleanup's
 * error (pending); -AW_EPROTOCOL if it yielded again instead of finishing
 * (it is resumed until it does); -EBUSY while it is running. */
AW_API int aw_gen_close(aw_gen_t *g);

AW_API bool aw__gen_step(aw_gen_t *g);
AW_API void aw__gen_cleanup(aw_gen_t *g);

#define aw__for_(g, decl, gen)                                                    \
    for (aw_gen_t g __attribute__((cleanup(aw__gen_cleanup))) = (gen); aw__gen_step(&g);) \
        for (decl __attribute__((unused)) = g.value; g.once; g.once = 0)
/* `break` leaves the loop (and closes the generator); `continue` goes on. */
#define aw_for(decl, gen) aw__for_(AW__CAT(aw__g, __COUNTER__), decl, gen)

#ifdef __cplusplus
}
#endif

#endif
