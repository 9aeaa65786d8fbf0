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

#include "alloc.h"

typedef struct aw__stack aw__stack_t;
typedef struct aw__coro aw__coro_t;

#if defined(__SANITIZE_ADDRESS__)
#define AW__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AW__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define AW__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AW__TSAN 1
#endif
#endif

/* A task's record (core/task.c) begins with its coroutine and lies on
 * the top page of its stack, next to the stack's descriptor: with many
 * live tasks every line of it is a cache miss at spawn and again at the
 * first run. The sanitizers' fields exist only in sanitizer builds, so
 * that the record and the descriptor's hot words share their last line
 * (issue 14: 9 lines a task at the top of its stack, not 10). */
struct aw__coro {
    void *sp;                  /* saved stack pointer while switched out */
    aw__stack_t *stack;        /* NULL for the thread's own stack */
    aw__coro_t *next;          /* run-queue link (loop layer) */
    void (*entry)(void *);     /* first function run on the stack */
    void *arg;
    /* The canary below an unguarded stack (aw__stack_canary), NULL for a
     * guarded one or the thread's: the check at every switch-out reads
     * it without the stack's descriptor (a line of its own), and a timer
     * that wakes the task can start bringing it in (in a packed slab it
     * lies on the neighbour stack's top page, cold when tasks wake in
     * deadline order). */
    const uint64_t *canary;
#if defined(AW__ASAN) || defined(AW__TSAN)
    void *asan_fake;           /* ASan fake-stack handle while switched out */
    const void *bottom;        /* stack bounds, for the sanitizers */
    size_t size;
    void *tsan_fiber;
#endif
};

/* Assembly: save into *from_sp, switch to to_sp (the coroutine `to`). */
void aw__ctx_switch(void **from_sp, void *to_sp, aw__coro_t *to);

/* Prepare `c` on `stack` so that the first switch to it calls
 * entry(arg) on the new stack; entry must never return. `top` is the
 * highest usable address (16-byte aligned). */
void aw__coro_init(aw__coro_t *c, void *lo, void *top,
                   void (*entry)(void *), void *arg);

/* Optimised x86_64 builds without sanitizers switch inline: the compiler
 * saves only the callee-saved registers that are live here (the clobber
 * list), and nothing is called, so the return-stack predictor stays in
 * step. Same protocol as aw__ctx_switch in switch_x86_64.S (read it
 * first): rbp and the FP control state are saved by hand, below the red
 * zone the compiler may be using. */
#if defined(__x86_64__) && defined(__OPTIMIZE__) && !defined(AW__ASAN) && !defined(AW__TSAN)
#define AW__INLINE_SWITCH 1
static inline __attribute__((always_inline)) void
aw__ctx_switch_inline(void **from_sp, void *to_sp, aw__coro_t *to) {
    register void **rdx __asm__("rdx") = from_sp;
    register void *rsi __asm__("rsi") = to_sp;
    register aw__coro_t *rdi __asm__("rdi") = to;
    __asm__ volatile("leaq -128(%%rsp), %%rsp\n\t"
                     "pushq %%rbp\n\t"
                     "subq $8, %%rsp\n\t"
                     "stmxcsr (%%rsp)\n\t"
                     "fnstcw 4(%%rsp)\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "movq %%rsp, (%%rdx)\n\t"
                     "movq %%rsi, %%rsp\n\t"
                     "popq %%rax\n\t"
                     "jmpq *%%rax\n"
                     "1:\n\t"
                     "ldmxcsr (%%rsp)\n\t"
                     "fldcw 4(%%rsp)\n\t"
                     "addq $8, %%rsp\n\t"
                     "popq %%rbp\n\t"
                     "leaq 128(%%rsp), %%rsp"
                     : "+d"(rdx), "+S"(rsi), "+D"(rdi)
                     :
                     : "rax", "rbx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
                       "r15", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                       "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
                       "xmm14", "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)",
                       "st(6)", "st(7)");
}
/* Switch from `from` to `to`. Inlined: with no call and no return the
 * return-stack predictor never mispredicts. */
static inline __attribute__((always_inline)) void
aw__coro_switch(aw__coro_t *from, aw__coro_t *to, int from_dying) {
    (void)from_dying;
    aw__ctx_switch_inline(&from->sp, to->sp, to);
}
#else
#define AW__INLINE_SWITCH 0
/* Switch from `from` to `to`, with sanitizer annotations. `from_dying`
 * says `from` will never run again (lets ASan free its fake stack). */
void aw__coro_switch(aw__coro_t *from, aw__coro_t *to, int from_dying);
#endif



/* The same, out of line: a function with the ABI's register rules. */
void aw__coro_switch_fn(aw__coro_t *from, aw__coro_t *to, int from_dying);

/* Bind `c` to the calling thread's own stack (the loop's context). */
void aw__coro_init_thread(aw__coro_t *c);
void aw__coro_fini(aw__coro_t *c);

/* ---- stacks (stack.c) ---- */

enum { AW__CANARY_WORDS = 8 };

struct aw__stack {
    char *lo;                  /* lowest usable byte (above the guard) */
    char *hi;                  /* one past the highest usable byte */
    aw__stack_t *next;         /* (unused: the cache keeps an array) */
    unsigned guarded;          /* a PROT_NONE page sits below lo */
    unsigned vg_id;            /* Valgrind stack id */
    uint64_t canary[AW__CANARY_WORDS]; /* last: the canary of the stack above */
};

struct aw__slab {
    char *map;
    size_t bytes, stride;      /* stacks at map + page + k * stride */
    unsigned carved;           /* stacks 0..carved-1 are made (lazily, one at a time) */
    unsigned guards;           /* stacks 0..guards-1 have a guard page below */
    unsigned maps;             /* memory mappings it accounts for (vm.max_map_count) */
};

typedef struct aw__stack_cache {
    /* The free stacks, LIFO (the warmest first), in an array of the
     * cache's own rather than a list through the descriptors: giving a
     * stack back then writes nothing on its page (with many live tasks
     * the descriptor's line is cold by the time its task ends). Room for
     * every stack made is reserved as it is made: a put cannot fail. */
    aw__stack_t **freev;
    size_t nfree, capfree;
    size_t size;               /* usable size of cached stacks */
    size_t guard_budget;       /* guarded stacks this cache may still make */
    size_t live, cached;       /* cached: free, or reserved in a slab, not yet made */
    struct aw__slab *slabs;    /* every slab mapping, unmapped at close */
    size_t nslabs, slabcap;
} aw__stack_cache_t;

#define AW__STACK_CANARY 0xa55afe57ac6a7a2dULL /* no zero byte */

void aw__stack_cache_init(aw__stack_cache_t *sc, size_t size, size_t guard_budget);
void aw__stack_cache_fini(aw__stack_cache_t *sc);
/* A stack of the cache's size: from the cache, or a new slab. NULL when
 * no memory or no mapping is left; aw__stack_why() says which. */
aw__stack_t *aw__stack_get(aw__stack_cache_t *sc);
void aw__stack_put(aw__stack_cache_t *sc, aw__stack_t *s);
/* The stack the next aw__stack_get hands out, if cached; not touched
 * (its descriptor sits at its hi: the caller may prefetch around it). */
static inline const aw__stack_t *aw__stack_peek(const aw__stack_cache_t *sc) {
    return sc->nfree ? sc->freev[sc->nfree - 1] : NULL;
}
/* A stack of another size: its own mapping, always guarded. */
aw__stack_t *aw__stack_map(size_t size);
void aw__stack_unmap(aw__stack_t *s);
/* Why the calling thread's last aw__stack_get/aw__stack_map failed:
 * 1 when the process's memory mappings reached the limit (maps made by
 * stacks, the limit: vm.max_map_count less a reserve, or the test knob),
 * 0 when the kernel had no memory. */
int aw__stack_why(size_t *maps, size_t *limit);
/* Tests: when nonzero, the number of memory mappings the stacks of the
 * whole process may account for (instead of vm.max_map_count less a
 * reserve). Set it before the loop makes its stacks. */
extern size_t aw__stack_map_max;
/* Mappings left to the rest of the process (libraries, malloc arenas,
 * thread stacks, mapped files) when stacks count against the limit. */
enum { AW__MAPS_RESERVE = 2048 };
/* Mappings the stacks of the process account for now. */
size_t aw__stack_maps(void);

/* Where an unguarded stack's canary lives: the 64 bytes just below its
 * lowest byte (the last words of the descriptor of the stack below, in a
 * packed slab), which an overflow overwrites first. 64 bytes, because
 * frames write sparsely: a 16-byte canary can fall between two return
 * addresses, or inside an ASan redzone (32 bytes that are never written).
 * A frame that skips more than that (a large array left untouched) can
 * step over it: that is what the guarded stacks are for. */
static inline uint64_t *aw__stack_canary(const aw__stack_t *s) {
    return (uint64_t *)(void *)(s->lo - AW__CANARY_WORDS * sizeof(uint64_t));
}
/* Nonzero when the canary below an unguarded stack is intact. */
static inline int aw__stack_ok(const aw__stack_t *s) {
    if (s->guarded)
        return 1;
    const uint64_t *c = aw__stack_canary(s);
    uint64_t diff = 0;
    for (int i = 0; i < AW__CANARY_WORDS; i++)
        diff |= c[i] ^ AW__STACK_CANARY;
    return diff == 0;
}
/* Nonzero when the canary below the stack c runs on is intact (or it
 * has none: guarded). What aw__stack_ok says of c->stack. */
static inline int aw__coro_stack_ok(const aw__coro_t *c) {
    const uint64_t *k = c->canary;
    if (!k)
        return 1;
    uint64_t diff = 0;
    for (int i = 0; i < AW__CANARY_WORDS; i++)
        diff |= k[i] ^ AW__STACK_CANARY;
    return diff == 0;
}
/* c is to run on s: remember where its canary is. */
static inline void aw__coro_set_stack(aw__coro_t *c, aw__stack_t *s) {
    c->stack = s;
    c->canary = s->guarded ? NULL : aw__stack_canary(s);
}
/* Is `addr` inside the guard page of `s`? */
int aw__stack_in_guard(const aw__stack_t *s, const void *addr);

#endif
