/* coro.c: laying out a new coroutine's first frame, and the annotated
 * switch. The hot path is aw__coro_switch: without sanitizers it is one
 * call to the assembly switch. */
#include "coro.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef AW__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef AW__TSAN
#include <sanitizer/tsan_interface.h>
#endif

extern void aw__coro_trampoline(void); /* aarch64 */
extern void aw__coro_boot(void);       /* x86_64 */
void aw__coro_start(void *p);

/* Runs first on every new stack (via the boot code of switch_*.S). */
void aw__coro_start(void *p) {
    aw__coro_t *c = p;
#ifdef AW__ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    c->entry(c->arg);
    abort(); /* entry never returns: it switches away for good */
}

void aw__coro_init(aw__coro_t *c, void *lo, void *top,
                   void (*entry)(void *), void *arg) {
    uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
    c->entry = entry;
    c->arg = arg;
    c->stack = NULL;
    c->next = NULL;
    c->canary = NULL;
#if defined(AW__ASAN) || defined(AW__TSAN)
    c->asan_fake = NULL;
    c->bottom = lo;
    c->size = (size_t)(t - (uintptr_t)lo);
#else
    (void)lo;
#endif
#ifdef AW__ASAN
    /* a coroutine that died mid-frame left redzones poisoned here */
    __asan_unpoison_memory_region(lo, c->size);
#endif
#if defined(__x86_64__)
    /* the switch protocol of switch_x86_64.S: [resume][fp control][rbp] */
    uint64_t *sp = (uint64_t *)(t - 32);
    memset(sp, 0, 32);
    sp[0] = (uint64_t)(uintptr_t)aw__coro_boot;
    sp[1] = 0x1F80 | ((uint64_t)0x037F << 32); /* default MXCSR, x87 CW */
    c->sp = sp;
#elif defined(__aarch64__)
    uint64_t *sp = (uint64_t *)(t - 176);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)c;              /* x19 */
    sp[1] = (uint64_t)(uintptr_t)aw__coro_start; /* x20 */
    sp[11] = (uint64_t)(uintptr_t)aw__coro_trampoline; /* x30 */
    c->sp = sp;
#else
#error "awith: no context switch for this architecture (x86_64, aarch64)"
#endif
#ifdef AW__TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
#elif defined(AW__ASAN)
    c->tsan_fiber = NULL;
#endif
}

void aw__coro_init_thread(aw__coro_t *c) {
    memset(c, 0, sizeof *c);
#if defined(AW__ASAN) || defined(AW__TSAN)
    /* A thread's stack does not move: ask once per thread. For the main
     * thread glibc reads /proc/self/maps and two more syscalls each time,
     * a visible cost for a program running many short loops (the checker,
     * cm/testing.c). */
    static __thread void *bottom;
    static __thread size_t bsize;
    static __thread bool known;
    pthread_attr_t a;
    if (!known && pthread_getattr_np(pthread_self(), &a) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&a, &addr, &size) == 0) {
            bottom = addr;
            bsize = size;
            known = true;
        }
        pthread_attr_destroy(&a);
    }
    c->bottom = bottom;
    c->size = bsize;
#endif
#ifdef AW__TSAN
    c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void aw__coro_fini(aw__coro_t *c) {
#ifdef AW__TSAN
    if (c->stack && c->tsan_fiber)
        __tsan_destroy_fiber(c->tsan_fiber);
#endif
#if defined(AW__ASAN) || defined(AW__TSAN)
    c->tsan_fiber = NULL;
#else
    (void)c;
#endif
}

/* The switch as a real function (for callers in assembly: the tests).
 * Its only callers name it inside asm strings, which link-time
 * optimisation cannot see: without `used` (kept) and, under GCC,
 * `externally_visible` (not made local to the LTO unit) an LTO build
 * drops it and the callers fail to link. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((used, externally_visible))
#else
__attribute__((used))
#endif
void aw__coro_switch_fn(aw__coro_t *from, aw__coro_t *to, int from_dying) {
    aw__coro_switch(from, to, from_dying);
}

#if !AW__INLINE_SWITCH
void aw__coro_switch(aw__coro_t *from, aw__coro_t *to, int from_dying) {
#ifdef AW__ASAN
    __sanitizer_start_switch_fiber(from_dying ? NULL : &from->asan_fake,
                                   to->bottom, to->size);
#else
    (void)from_dying;
#endif
#ifdef AW__TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    aw__ctx_switch(&from->sp, to->sp, to);
#ifdef AW__ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}
#endif
