/* stack.c: coroutine stacks, carved from slabs and recycled LIFO.
 *
 * Design (the trade-off the 1,000,000-coroutine goal forces): a guard page
 * below every stack splits its mapping in two, and the kernel's default
 * vm.max_map_count (65530) then caps a process near 32,000 guarded stacks
 * (libdill's limit). So a cache makes guarded stacks while its guard budget
 * lasts (default: 8192 per loop, a quarter of what one process can afford)
 * and, past it, stacks guarded by a canary checked every time the
 * coroutine switches out and when it dies. A guarded overflow faults at
 * once and the loop's SIGSEGV handler names the task; a canary overflow is
 * caught at the next switch. Stacks come 64 to a slab (one mmap, NORESERVE,
 * untouched pages cost nothing), so 1,000,000 stacks need ~16,000 mappings.
 *
 * Two kinds of slab. While the budget lasts: a page below every stack,
 * made PROT_NONE. Past it, packed: one guard page at the slab's bottom (so
 * its lowest stack is guarded too) and stacks back to back. An unguarded
 * stack's canary is the 64 bytes right below it: in a packed slab, the
 * last words of the stack below's descriptor, on a page that stack touches
 * anyway. So an idle coroutine costs the pages at its top only (the
 * canary never faults in a page of its own), and an overflow's first byte
 * lands on the canary, then on the neighbour's top: the check at the next
 * switch aborts before the neighbour runs again.
 *
 * The stack's descriptor lives at the very top of its own stack, so a
 * cached stack costs no heap. Cost: get/put are O(1) list operations; a new
 * slab is one mmap, plus one mprotect per guarded stack. */
#include "coro.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0
#define VALGRIND_STACK_DEREGISTER(id) ((void)0)
#endif

enum { AW__SLAB_STACKS = 64 };

static size_t aw__page(void) {
    /* constant for the process; loops starting on several threads at once
     * may all compute it (aw_loops_run): relaxed atomics, not a data race */
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

static size_t aw__round_page(size_t n) {
    size_t p = aw__page();
    return (n + p - 1) & ~(p - 1);
}

/* Lay a descriptor at the top of [lo, lo+size): it ends exactly there
 * (size is a page multiple, the descriptor a multiple of 16 bytes). */
_Static_assert(sizeof(aw__stack_t) % 16 == 0, "the descriptor must end at the stack's top");
static aw__stack_t *aw__stack_carve(char *lo, size_t size, unsigned guarded) {
    aw__stack_t *s = (aw__stack_t *)(void *)(lo + size - sizeof(aw__stack_t));
    s->lo = lo;
    s->hi = (char *)s;
    s->next = NULL;
    s->guarded = guarded;
    for (int i = 0; i < AW__CANARY_WORDS; i++) {
        s->canary[i] = AW__STACK_CANARY; /* the stack above's (packed slabs) */
        if (!guarded)
            aw__stack_canary(s)[i] = AW__STACK_CANARY;
    }
    s->vg_id = VALGRIND_STACK_REGISTER(lo, lo + size);
    return s;
}

void aw__stack_cache_init(aw__stack_cache_t *sc, size_t size, size_t guard_budget) {
    *sc = (aw__stack_cache_t){0};
    sc->size = aw__round_page(size < 16384 ? 16384 : size);
    sc->guard_budget = guard_budget;
}

static int aw__stack_slab(aw__stack_cache_t *sc) {
    if (sc->nslabs == sc->slabcap) {
        size_t cap = sc->slabcap ? sc->slabcap * 2 : 16;
        struct aw__slab *n = aw__realloc(sc->slabs, cap * sizeof *n);
        if (!n)
            return -1;
        sc->slabs = n;
        sc->slabcap = cap;
    }
    size_t page = aw__page();
    size_t guards = sc->guard_budget < AW__SLAB_STACKS ? sc->guard_budget : AW__SLAB_STACKS;
    size_t stride = guards ? sc->size + page : sc->size; /* gapped or packed */
    size_t bytes = page + stride * AW__SLAB_STACKS;
    char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    sc->slabs[sc->nslabs++] = (struct aw__slab){m, bytes, stride};
    /* Push from the top so the lowest stack is handed out first; the
     * guards go to the first ones handed out. */
    for (int i = AW__SLAB_STACKS - 1; i >= 0; i--) {
        char *lo = m + page + (size_t)i * stride;
        unsigned guarded = 0;
        if ((size_t)i < guards || (!guards && i == 0)) {
            guarded = mprotect(lo - page, page, PROT_NONE) == 0;
            if (guarded && guards)
                sc->guard_budget--;
        }
        aw__stack_t *s = aw__stack_carve(lo, sc->size, guarded);
        s->next = sc->free;
        sc->free = s;
        sc->cached++;
    }
    return 0;
}

aw__stack_t *aw__stack_get(aw__stack_cache_t *sc) {
    if (!sc->free && aw__stack_slab(sc) < 0)
        return NULL;
    aw__stack_t *s = sc->free;
    sc->free = s->next;
    sc->cached--;
    sc->live++;
    return s;
}

void aw__stack_put(aw__stack_cache_t *sc, aw__stack_t *s) {
    s->next = sc->free;
    sc->free = s;
    sc->cached++;
    sc->live--;
}

void aw__stack_cache_fini(aw__stack_cache_t *sc) {
    for (size_t i = 0; i < sc->nslabs; i++) {
        struct aw__slab *sl = &sc->slabs[i];
        for (int k = 0; k < AW__SLAB_STACKS; k++) {
            char *lo = sl->map + aw__page() + (size_t)k * sl->stride;
            VALGRIND_STACK_DEREGISTER(((aw__stack_t *)(void *)(lo + sc->size) - 1)->vg_id);
        }
        munmap(sl->map, sl->bytes);
    }
    aw__free(sc->slabs);
    *sc = (aw__stack_cache_t){0};
}

aw__stack_t *aw__stack_map(size_t size) {
    size = aw__round_page(size < 16384 ? 16384 : size);
    char *m = mmap(NULL, size + aw__page(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    unsigned guarded = mprotect(m, aw__page(), PROT_NONE) == 0;
    return aw__stack_carve(m + aw__page(), size, guarded);
}

void aw__stack_unmap(aw__stack_t *s) {
    char *m = s->lo - aw__page();
    size_t len = (size_t)((char *)s + sizeof *s - m);
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    munmap(m, aw__round_page(len));
}

int aw__stack_in_guard(const aw__stack_t *s, const void *addr) {
    const char *a = addr;
    return s->guarded && a >= s->lo - aw__page() && a < s->lo;
}
