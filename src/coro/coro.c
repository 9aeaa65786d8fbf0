/* coro.c: laying out a new coroutine's first frame, and the annotated
 * switch. The hot path is aw__coro_switch: without sanitizers it is one
 * call to the assembly switch. */
#include "coro.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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

#ifdef AW__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef AW__TSAN
#include <sanitizer/tsan_interface.h>
#endif

extern void aw__coro_trampoline(void);

/* Runs first on every new stack (via the trampoline). */
static void aw__coro_start(void *p) {
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
    c->asan_fake = NULL;
    c->bottom = lo;
    c->size = (size_t)(t - (uintptr_t)lo);
#ifdef AW__ASAN
    /* a coroutine that died mid-frame left redzones poisoned here */
    __asan_unpoison_memory_region(lo, c->size);
#endif
#if defined(__x86_64__)
    /* [sp]=mxcsr|fpcw, r15, r14, r13, r12, rbx, rbp, ret; after `ret`
     * rsp is 16-byte aligned, as the trampoline's call expects. */
    uint64_t *sp = (uint64_t *)(t - 80);
    memset(sp, 0, 80);
    sp[0] = 0x1F80 | ((uint64_t)0x037F << 32);
    sp[3] = (uint64_t)(uintptr_t)aw__coro_start; /* r13 */
    sp[4] = (uint64_t)(uintptr_t)c;              /* r12 */
    sp[7] = (uint64_t)(uintptr_t)aw__coro_trampoline;
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
#else
    c->tsan_fiber = NULL;
#endif
}

void aw__coro_init_thread(aw__coro_t *c) {
    memset(c, 0, sizeof *c);
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&a, &addr, &size) == 0) {
            c->bottom = addr;
            c->size = size;
        }
        pthread_attr_destroy(&a);
    }
#ifdef AW__TSAN
    c->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void aw__coro_fini(aw__coro_t *c) {
#ifdef AW__TSAN
    if (c->stack && c->tsan_fiber)
        __tsan_destroy_fiber(c->tsan_fiber);
#endif
    c->tsan_fiber = NULL;
}

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
    aw__ctx_switch(&from->sp, to->sp);
#ifdef AW__ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
}
