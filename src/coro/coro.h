/* coro: the machine layer. A coroutine is a saved stack pointer and a
 * stack; switching saves the callee-saved registers and the FP control
 * state on the old stack and restores them from the new one (switch_*.S).
 * Everything else (scheduling, cancellation) lives in the layers above.
 *
 * Sanitizers: every switch is bracketed with ASan's fiber annotations and
 * TSan's fiber API when built with them; stacks are registered with
 * Valgrind. */
#ifndef AW_CORO_H
#define AW_CORO_H

#include <stddef.h>
#include <stdint.h>

typedef struct aw__stack aw__stack_t;
typedef struct aw__coro aw__coro_t;

struct aw__coro {
    void *sp;                  /* saved stack pointer while switched out */
    aw__stack_t *stack;        /* NULL for the thread's own stack */
    aw__coro_t *next;          /* run-queue link (loop layer) */
    void *asan_fake;           /* ASan fake-stack handle while switched out */
    const void *bottom;        /* stack bounds, for the sanitizers */
    size_t size;
    void *tsan_fiber;
    void (*entry)(void *);     /* first function run on the stack */
    void *arg;
};

/* Assembly: save into *from_sp, switch to to_sp. */
void aw__ctx_switch(void **from_sp, void *to_sp);

/* Prepare `c` on `stack` so that the first switch to it calls
 * entry(arg) on the new stack; entry must never return. `top` is the
 * highest usable address (16-byte aligned). */
void aw__coro_init(aw__coro_t *c, void *lo, void *top,
                   void (*entry)(void *), void *arg);

/* Switch from `from` to `to`, with sanitizer annotations. `from_dying`
 * says `from` will never run again (lets ASan free its fake stack). */
void aw__coro_switch(aw__coro_t *from, aw__coro_t *to, int from_dying);

/* Bind `c` to the calling thread's own stack (the loop's context). */
void aw__coro_init_thread(aw__coro_t *c);
void aw__coro_fini(aw__coro_t *c);

/* ---- stacks (stack.c) ---- */

struct aw__stack {
    char *lo;                  /* lowest usable byte (above the guard) */
    char *hi;                  /* one past the highest usable byte */
    aw__stack_t *next;         /* cache link */
    unsigned guarded;          /* a PROT_NONE page sits below lo */
    unsigned vg_id;            /* Valgrind stack id */
};

typedef struct aw__stack_cache {
    aw__stack_t *free;         /* LIFO: the warmest stack first */
    size_t size;               /* usable size of cached stacks */
    size_t guard_budget;       /* guarded stacks this cache may still make */
    size_t live, cached;
    void **slabs;              /* every slab mapping, unmapped at close */
    size_t nslabs, slabcap;
    size_t slab_bytes;
} aw__stack_cache_t;

#define AW__STACK_CANARY 0x5afe57ac6a7a2dULL

void aw__stack_cache_init(aw__stack_cache_t *sc, size_t size, size_t guard_budget);
void aw__stack_cache_fini(aw__stack_cache_t *sc);
/* A stack of the cache's size: from the cache, or a new slab. NULL on OOM. */
aw__stack_t *aw__stack_get(aw__stack_cache_t *sc);
void aw__stack_put(aw__stack_cache_t *sc, aw__stack_t *s);
/* A stack of another size: its own mapping, always guarded. */
aw__stack_t *aw__stack_map(size_t size);
void aw__stack_unmap(aw__stack_t *s);
/* Nonzero when the canary at the bottom of an unguarded stack is intact. */
static inline int aw__stack_ok(const aw__stack_t *s) {
    return s->guarded || *(const uint64_t *)s->lo == AW__STACK_CANARY;
}
/* Is `addr` inside the guard page of `s`? */
int aw__stack_in_guard(const aw__stack_t *s, const void *addr);

#endif
