/* alloc.c: the allocator table (awith/alloc.h, src/coro/alloc.h).
 *
 * Four function pointers, libc's by default, replaced at most until the
 * table is fixed: at the first allocation through it or when a loop is
 * created, whichever comes first. A block must be freed by the allocator
 * that made it, and from then on blocks exist (a loop's, a thread pool's,
 * a pending error record's), so a later change would hand them to the
 * wrong free. This is process-wide state, the one kind the library
 * allows besides aw_log_set's hook (docs/design.md): the table is written
 * only before anything uses it and read-only after, like libuv's
 * uv_replace_allocator and libcurl's curl_global_init_mem, so loops on
 * any number of threads read it with no contention.
 *
 * The state word orders it: OPEN (replaceable), WRITING (a replace in
 * progress), FIXED. An allocation reads it (one acquire load, a plain
 * load on x86) and fixes it on the first call. In a fault-injection build
 * (-Dfault_injection=true) the default entries are libc's malloc and
 * friends as the library references them, so --wrap turns them into
 * src/coro/fault.c's wrappers: the sweep still sees (and fails) every
 * allocation made with the default table. Cost: one indirect call. */
#include "alloc.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { AW__ALLOC_OPEN, AW__ALLOC_WRITING, AW__ALLOC_FIXED };

static struct {
    void *(*malloc)(size_t);
    void *(*realloc)(void *, size_t);
    void *(*calloc)(size_t, size_t);
    void (*free)(void *);
} aw__alloc = {malloc, realloc, calloc, free};
static atomic_int aw__alloc_state;

void aw__alloc_freeze(void) {
    for (;;) {
        int s = atomic_load_explicit(&aw__alloc_state, memory_order_acquire);
        if (s == AW__ALLOC_FIXED)
            return;
        if (s == AW__ALLOC_OPEN &&
            atomic_compare_exchange_weak_explicit(&aw__alloc_state, &s, AW__ALLOC_FIXED,
                                                  memory_order_acq_rel, memory_order_acquire))
            return;
        if (s == AW__ALLOC_WRITING)
            sched_yield(); /* another thread is replacing it: four stores */
    }
}

int aw__alloc_replace(void *(*m)(size_t), void *(*r)(void *, size_t),
                      void *(*c)(size_t, size_t), void (*f)(void *)) {
    int open = AW__ALLOC_OPEN;
    if (!atomic_compare_exchange_strong_explicit(&aw__alloc_state, &open, AW__ALLOC_WRITING,
                                                 memory_order_acq_rel, memory_order_acquire))
        return -EBUSY;
    if (m) {
        aw__alloc.malloc = m;
        aw__alloc.realloc = r;
        aw__alloc.calloc = c;
        aw__alloc.free = f;
    } else {
        aw__alloc.malloc = malloc;
        aw__alloc.realloc = realloc;
        aw__alloc.calloc = calloc;
        aw__alloc.free = free;
    }
    atomic_store_explicit(&aw__alloc_state, AW__ALLOC_OPEN, memory_order_release);
    return 0;
}

static inline void aw__alloc_use(void) {
    if (__builtin_expect(atomic_load_explicit(&aw__alloc_state, memory_order_acquire) !=
                             AW__ALLOC_FIXED, 0))
        aw__alloc_freeze();
}

void *aw__malloc(size_t n) {
    aw__alloc_use();
    return aw__alloc.malloc(n);
}

void *aw__calloc(size_t n, size_t size) {
    aw__alloc_use();
    return aw__alloc.calloc(n, size);
}

void *aw__realloc(void *p, size_t n) {
    aw__alloc_use();
    return aw__alloc.realloc(p, n);
}

/* A non-NULL p came from the table, so the table is already fixed. */
void aw__free(void *p) {
    if (p)
        aw__alloc.free(p);
}

char *aw__strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = aw__malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *aw__strdup(const char *s) { return aw__strndup(s, (size_t)-1); }

int aw__vasprintf(char **out, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    *out = NULL;
    if (n < 0)
        return -1;
    char *s = aw__malloc((size_t)n + 1);
    if (!s)
        return -1;
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    *out = s;
    return n;
}
