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
 * made a guard (a guard marker, or PROT_NONE where markers are missing). Past it, packed: one guard page at the slab's bottom (so
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
 * slab is one mmap and its guard pages one call (below).
 *
 * What a cold coroutine costs is its top page, first touched (2-14 us on
 * a VM, most of it the page itself, not the trap). Everything else must
 * stay small next to it (issue 14):
 *  - guard pages are guard markers (MADV_GUARD_INSTALL, Linux 6.13+),
 *    installed for a whole slab in one process_madvise call (6.15+;
 *    else a madvise per page): no mapping split, ~0.5 us a stack, against
 *    ~3.5 us for an mprotect that splits the mapping in two. An older
 *    kernel (EINVAL) or Valgrind (which does not know them) gets mprotect.
 *  - stacks are made one at a time as they are first handed out: a
 *    fresh loop whose tasks are few touches a page or two, not a slab's
 *    64 top pages (a fuzzer or a test making a loop per run).
 *  - every mapping a slab accounts for is counted against
 *    vm.max_map_count (less a reserve for the rest of the process), so a
 *    process that reaches it is told so by name, not "out of memory". */
#include "coro.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0
#define VALGRIND_STACK_DEREGISTER(id) ((void)0)
#define RUNNING_ON_VALGRIND 0
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#define AW__PIDFD_SELF (-10001) /* PIDFD_SELF_THREAD_GROUP, Linux 6.15 */

enum { AW__SLAB_STACKS = 64 };

size_t aw__stack_map_max;
static _Atomic size_t aw__maps_total; /* mappings every stack cache accounts for */

/* What the kernel offers, learned once per process (relaxed atomics:
 * loops on several threads may learn it at once, with the same result). */
enum { AW__G_UNKNOWN, AW__G_PMADVISE, AW__G_MADVISE, AW__G_MPROTECT };
static _Atomic int aw__guard_how;

static __thread struct {
    int maps;
    size_t count, limit;
} aw__why;

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

/* vm.max_map_count, read once (65530, the kernel's default, if unreadable). */
static size_t aw__max_map_count(void) {
    static _Atomic size_t max;
    size_t m = atomic_load_explicit(&max, memory_order_relaxed);
    if (!m) {
        m = 65530;
        int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[32];
            ssize_t n = read(fd, buf, sizeof buf - 1);
            if (n > 0) {
                buf[n] = 0;
                unsigned long v = strtoul(buf, NULL, 10);
                if (v > 0)
                    m = v;
            }
            close(fd);
        }
        atomic_store_explicit(&max, m, memory_order_relaxed);
    }
    return m;
}

/* How many mappings the stacks may account for. */
static size_t aw__map_limit(void) {
    if (aw__stack_map_max)
        return aw__stack_map_max;
    size_t m = aw__max_map_count();
    return m > 2 * AW__MAPS_RESERVE ? m - AW__MAPS_RESERVE : m / 2;
}

/* The process's mappings now (a line of /proc/self/maps each); only on a
 * failure path. 0 if unreadable. */
static size_t aw__maps_now(void) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[4096];
    size_t lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

/* Reserve `n` mappings against the limit; 0, or -1 with the reason set. */
static int aw__maps_take(size_t n) {
    size_t limit = aw__map_limit();
    size_t cur = atomic_fetch_add_explicit(&aw__maps_total, n, memory_order_relaxed);
    if (cur + n <= limit)
        return 0;
    atomic_fetch_sub_explicit(&aw__maps_total, n, memory_order_relaxed);
    aw__why.maps = 1;
    aw__why.count = cur;
    aw__why.limit = aw__stack_map_max ? aw__stack_map_max : aw__max_map_count();
    return -1;
}

static void aw__maps_give(size_t n) {
    atomic_fetch_sub_explicit(&aw__maps_total, n, memory_order_relaxed);
}

/* A map or mprotect failed with `err`: tell a full map table (the kernel
 * says ENOMEM for both) from a lack of memory. */
static void aw__maps_failed(int err) {
    aw__why.maps = 0;
    if (err != ENOMEM)
        return;
    size_t now = aw__maps_now(), max = aw__max_map_count();
    if (now + 8 >= max) {
        aw__why.maps = 1;
        aw__why.count = now;
        aw__why.limit = max;
    }
}

int aw__stack_why(size_t *maps, size_t *limit) {
    if (maps)
        *maps = aw__why.count;
    if (limit)
        *limit = aw__why.limit;
    return aw__why.maps;
}

size_t aw__stack_maps(void) {
    return atomic_load_explicit(&aw__maps_total, memory_order_relaxed);
}

/* One process_madvise(2) on our own pages: 0 when all were done, else the
 * errno (EINVAL/EBADF/ENOSYS/EPERM: not supported here; EAGAIN: part). */
static int aw__pmadvise(struct iovec *iov, size_t n, int advice) {
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += iov[i].iov_len;
    long r = syscall(SYS_process_madvise, AW__PIDFD_SELF, iov, n, advice, 0);
    if (r < 0)
        return errno;
    return (size_t)r == want ? 0 : EAGAIN;
}

/* Guard pages at pages[0..n-1] (a page each). Returns how many of them
 * guard (all, or those an mprotect managed), *maps the mappings they add. */
static unsigned aw__guard(char **pages, unsigned n, unsigned *maps) {
    size_t page = aw__page();
    *maps = 0;
    int how = atomic_load_explicit(&aw__guard_how, memory_order_relaxed);
    if (how == AW__G_UNKNOWN) /* Valgrind does not know guard markers */
        how = RUNNING_ON_VALGRIND ? AW__G_MPROTECT : AW__G_PMADVISE;
    if (how == AW__G_PMADVISE) {
        struct iovec iov[AW__SLAB_STACKS];
        for (unsigned i = 0; i < n; i++)
            iov[i] = (struct iovec){pages[i], page};
        int e = aw__pmadvise(iov, n, MADV_GUARD_INSTALL);
        if (!e) {
            atomic_store_explicit(&aw__guard_how, how, memory_order_relaxed);
            return n;
        }
        how = AW__G_MADVISE; /* not supported, or partly done: one by one */
    }
    if (how == AW__G_MADVISE) {
        unsigned i = 0;
        while (i < n && madvise(pages[i], page, MADV_GUARD_INSTALL) == 0)
            i++;
        if (i == n) {
            atomic_store_explicit(&aw__guard_how, how, memory_order_relaxed);
            return n;
        }
        if (i > 0) /* it works here: this one failed for want of memory */
            return i;
        how = AW__G_MPROTECT;
    }
    atomic_store_explicit(&aw__guard_how, how, memory_order_relaxed);
    unsigned done = 0;
    for (unsigned i = 0; i < n; i++) {
        if (mprotect(pages[i], page, PROT_NONE) == 0) {
            done++;
            *maps += 2; /* the guard splits the mapping */
        }
    }
    return done;
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

static char *aw__slab_lo(const aw__stack_cache_t *sc, const struct aw__slab *sl, unsigned k) {
    (void)sc;
    return sl->map + aw__page() + (size_t)k * sl->stride;
}

/* A new slab: the mapping and its guard pages; its stacks are made later
 * (aw__stack_grow). */
static int aw__stack_slab(aw__stack_cache_t *sc) {
    aw__why.maps = 0;
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
    /* the worst case (mprotect guards: each splits the mapping) is taken
     * up front and the difference given back */
    size_t worst = 1 + 2 * (guards ? guards : 1);
    if (aw__maps_take(worst) < 0)
        return -1;
    char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        aw__maps_failed(errno);
        aw__maps_give(worst);
        return -1;
    }
    struct aw__slab *sl = &sc->slabs[sc->nslabs++];
    *sl = (struct aw__slab){.map = m, .bytes = bytes, .stride = stride};
    /* The guards go to the first stacks handed out (the lowest); a packed
     * slab has one, below its lowest stack. */
    char *pages[AW__SLAB_STACKS];
    size_t want = guards ? guards : 1;
    for (size_t i = 0; i < want; i++)
        pages[i] = m + i * stride;
    unsigned extra;
    sl->guards = aw__guard(pages, (unsigned)want, &extra);
    if (guards)
        sc->guard_budget -= sl->guards;
    sl->maps = 1 + extra;
    aw__maps_give(worst - sl->maps);
    sc->cached += AW__SLAB_STACKS;
    return 0;
}

/* Make the next stack: a new slab when the last is used up. One at a
 * time, on demand: a loop with few tasks touches few pages. (Populating a
 * batch's top pages in one process_madvise(MADV_POPULATE_WRITE) call was
 * measured and left out: on this VM a populated page costs more CPU than
 * a first-touch fault, 2.47 against 1.93 us, and made a cold coroutine
 * 1.44-1.52x its page instead of 1.2-1.3x; bench/stack.c.) */
static int aw__stack_grow(aw__stack_cache_t *sc) {
    struct aw__slab *sl = sc->nslabs ? &sc->slabs[sc->nslabs - 1] : NULL;
    if (!sl || sl->carved == AW__SLAB_STACKS) {
        if (aw__stack_slab(sc) < 0)
            return -1;
        sl = &sc->slabs[sc->nslabs - 1];
    }
    if (sc->live + sc->nfree == sc->capfree) { /* room for every stack made */
        size_t cap = sc->capfree ? sc->capfree * 2 : AW__SLAB_STACKS;
        aw__stack_t **v = aw__realloc(sc->freev, cap * sizeof *v);
        if (!v)
            return -1;
        sc->freev = v;
        sc->capfree = cap;
    }
    unsigned k = sl->carved++;
    aw__stack_t *s = aw__stack_carve(aw__slab_lo(sc, sl, k), sc->size, k < sl->guards);
    sc->freev[sc->nfree++] = s;
    return 0;
}

aw__stack_t *aw__stack_get(aw__stack_cache_t *sc) {
    if (!sc->nfree && aw__stack_grow(sc) < 0)
        return NULL;
    aw__stack_t *s = sc->freev[--sc->nfree];
    sc->cached--;
    sc->live++;
    return s;
}

void aw__stack_put(aw__stack_cache_t *sc, aw__stack_t *s) {
    sc->freev[sc->nfree++] = s;
    sc->cached++;
    sc->live--;
}

void aw__stack_cache_fini(aw__stack_cache_t *sc) {
    for (size_t i = 0; i < sc->nslabs; i++) {
        struct aw__slab *sl = &sc->slabs[i];
        for (unsigned k = 0; k < sl->carved; k++) {
            char *lo = aw__slab_lo(sc, sl, k);
            VALGRIND_STACK_DEREGISTER(((aw__stack_t *)(void *)(lo + sc->size) - 1)->vg_id);
        }
        munmap(sl->map, sl->bytes);
        aw__maps_give(sl->maps);
    }
    aw__free(sc->slabs);
    aw__free(sc->freev);
    *sc = (aw__stack_cache_t){0};
}

/* A stack of its own accounts for 2 mappings (its guard may split it). */
aw__stack_t *aw__stack_map(size_t size) {
    aw__why.maps = 0;
    size = aw__round_page(size < 16384 ? 16384 : size);
    if (aw__maps_take(2) < 0)
        return NULL;
    char *m = mmap(NULL, size + aw__page(), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        aw__maps_failed(errno);
        aw__maps_give(2);
        return NULL;
    }
    unsigned extra;
    unsigned guarded = aw__guard(&m, 1, &extra);
    return aw__stack_carve(m + aw__page(), size, guarded);
}

void aw__stack_unmap(aw__stack_t *s) {
    char *m = s->lo - aw__page();
    size_t len = (size_t)((char *)s + sizeof *s - m);
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    munmap(m, aw__round_page(len));
    aw__maps_give(2);
}

int aw__stack_in_guard(const aw__stack_t *s, const void *addr) {
    const char *a = addr;
    return s->guarded && a >= s->lo - aw__page() && a < s->lo;
}
