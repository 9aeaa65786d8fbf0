/* timer.c: a 4-ary min-heap of timers keyed by (deadline, arm order).
 *
 * Timers are caller-owned (embedded in tasks, a page each when there are a
 * million). A heap that keeps a back-index in each timer writes into every
 * timer it moves: a pop of a million-timer heap moves ~10 slots, so ~10
 * writes to random task pages (cache and TLB misses; 18% of the timers
 * bench went to those stores). Here a slot holds the deadline, an id and
 * the arm's sequence number; the id is an entry in a dense table (`ent`)
 * that points to the timer. Sifting stays inside the slot array. Disarm
 * clears the entry (the slot is dead, its id kept until the slot leaves
 * the heap, so an id is never reused while a slot names it); a dead slot
 * is dropped when it reaches the top, or all at once when dead slots
 * outnumber live ones (a compaction and an O(n) heapify, O(1) amortised
 * per disarm; the heap stays under twice the armed timers). */
#include "loop.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "timer.c reads a heap slot as a little-endian 128-bit key"
#endif
_Static_assert(sizeof(aw__heap_slot_t) == 16 && offsetof(aw__heap_slot_t, when) == 8,
               "a slot is one 128-bit key: (when, seq, id)");

/* A slot as its key: when in the high half (signed), seq and id in the
 * low half (unsigned), so that one signed 128-bit comparison orders by
 * deadline, then by arm order (seqs are unique: the id never decides). */
static inline __int128 key(const aw__heap_slot_t *a) {
    __int128 k;
    memcpy(&k, a, sizeof k);
    return k;
}

/* a before b: earlier deadline, or the same one armed earlier. */
static inline int before(const aw__heap_slot_t *a, const aw__heap_slot_t *b) {
    return key(a) < key(b);
}

static void heap_up(aw__heap_t *h, size_t i) {
    aw__heap_slot_t x = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / AW__HEAP_D;
        if (!before(&x, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
}

/* before(), without branches: which child is smallest is a coin toss
 * for a heap of random deadlines, and a mispredicted branch per
 * comparison (three per level, ten levels at a million timers) cost
 * more than the comparisons; as flags, the compiler picks with cmov. */
static inline size_t before_flag(const aw__heap_slot_t *a, const aw__heap_slot_t *b) {
    return (size_t)(key(a) < key(b));
}

_Static_assert(AW__HEAP_D == 4, "min4 picks among four children");

/* The smallest of the four children starting at c (all present). */
static inline size_t min4(const aw__heap_slot_t *v, size_t c) {
    size_t a = c + before_flag(&v[c + 1], &v[c]);
    size_t b = c + 2 + before_flag(&v[c + 3], &v[c + 2]);
    size_t f = before_flag(&v[b], &v[a]);
    return a + ((b - a) & -f);
}

static void heap_down(aw__heap_t *h, size_t i) {
    aw__heap_slot_t x = h->v[i];
    size_t n = h->n;
    for (;;) {
        size_t c = AW__HEAP_D * i + 1, m;
        if (c + AW__HEAP_D <= n) {
            m = min4(h->v, c);
        } else { /* the last node, with fewer children */
            if (c >= n)
                break;
            m = c;
            for (size_t k = c + 1; k < n; k++)
                if (before(&h->v[k], &h->v[m]))
                    m = k;
        }
        if (!before(&h->v[m], &x))
            break;
        h->v[i] = h->v[m];
        i = m;
    }
    h->v[i] = x;
}

static void id_free(aw__heap_t *h, uint32_t id) {
    h->ent[id] = ((uintptr_t)h->free << 1) | 1;
    h->free = id + 1;
}

/* The top's removal (Floyd's bottom-up variant): the hole at the root
 * sinks along the smallest children to a leaf without comparing them
 * with the last slot, which then goes into it and rises. The last slot
 * is a leaf's, late in the order, so it rarely rises more than a level:
 * a level costs the three comparisons of min4, not four and a branch
 * (heap_down was 37% of the timers bench's instructions). */
static void pop_top(aw__heap_t *h) {
    id_free(h, h->v[0].id);
    size_t n = --h->n;
    if (!n)
        return;
    aw__heap_slot_t *v = h->v;
    size_t i = 0;
    for (;;) {
        size_t c = AW__HEAP_D * i + 1, m;
        if (c + AW__HEAP_D <= n) {
            m = min4(v, c);
        } else { /* the last node, with fewer children (the last slot not among them) */
            if (c >= n)
                break;
            m = c;
            for (size_t k = c + 1; k < n; k++)
                if (before(&v[k], &v[m]))
                    m = k;
        }
        v[i] = v[m];
        i = m;
    }
    v[i] = v[n];
    heap_up(h, i);
}

/* Drop every dead slot and rebuild the heap bottom-up (Floyd: O(n)). */
static void compact(aw__heap_t *h) {
    size_t j = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->ent[h->v[i].id])
            h->v[j++] = h->v[i];
        else
            id_free(h, h->v[i].id);
    }
    h->n = j;
    h->dead = 0;
    for (size_t i = j > 1 ? (j - 2) / AW__HEAP_D + 1 : 0; i-- > 0;)
        heap_down(h, i);
}

/* Double the slot array. The children of node i are slots 4i+1..4i+4:
 * with v[1] on a cache line's start, they are one line (64 bytes, four
 * 16-byte slots), so a sift down a million-timer heap misses once per
 * level, not twice (malloc's 16-byte alignment split them over two
 * lines three times in four). */
static int heap_grow(aw__heap_t *h) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    char *mem = aw__malloc(cap * sizeof(aw__heap_slot_t) + 64 + 64);
    if (!mem)
        return -ENOMEM;
    uintptr_t line = ((uintptr_t)mem + 63) & ~(uintptr_t)63;
    aw__heap_slot_t *v = (aw__heap_slot_t *)(line + 64) - 1;
    assert(((uintptr_t)&v[1] & 63) == 0);
    if (h->n)
        memcpy(v, h->v, h->n * sizeof *v);
    aw__free(h->mem);
    h->mem = mem;
    h->v = v;
    h->cap = cap;
    return 0;
}

aw__timer_t *aw__heap_top(aw__heap_t *h) {
    while (h->n) {
        uintptr_t e = h->ent[h->v[0].id];
        if (e)
            return (aw__timer_t *)e;
        h->dead--;
        pop_top(h);
    }
    return NULL;
}

aw__timer_t *aw__timer_pop_due(aw__heap_t *h, aw_ns_t now) {
    aw__timer_t *t = aw__heap_top(h);
    if (!t || h->v[0].when > now) /* the slot's copy: t's page may be cold */
        return NULL;
    t->id = 0;
    h->live--;
    pop_top(h);
    /* the next one due is likely fired next, after t's callback: start
     * bringing its timer (a task's page) in now, both ends (it may
     * straddle two lines of its task's record) */
    if (h->n) {
        uintptr_t e = h->ent[h->v[0].id];
        if (e) {
            __builtin_prefetch((void *)e, 1);
            __builtin_prefetch((char *)e + sizeof(aw__timer_t) - 1, 1);
        }
    }
    return t;
}

static int cmp_seq(const void *a, const void *b) {
    uint32_t x = (*(aw__heap_slot_t *const *)a)->seq, y = (*(aw__heap_slot_t *const *)b)->seq;
    return (x > y) - (x < y);
}

/* The sequence is about to wrap: number the slots 0..n-1 in arm order
 * (their order, and so the heap, unchanged) and go on from n. Once per
 * 2^32 - n arms. */
static int renumber(aw__heap_t *h) {
    aw__heap_slot_t **p = aw__malloc((h->n ? h->n : 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < h->n; i++)
        p[i] = &h->v[i];
    qsort(p, h->n, sizeof *p, cmp_seq);
    for (size_t i = 0; i < h->n; i++)
        p[i]->seq = (uint32_t)i;
    h->seq = (uint32_t)h->n;
    aw__free(p);
    return 0;
}

int aw__timer_arm(aw__heap_t *h, aw__timer_t *t, aw_ns_t when) {
    if (t->id)
        aw__timer_disarm(h, t);
    if (h->seq == UINT32_MAX && renumber(h) < 0)
        return -ENOMEM;
    if (h->n == h->cap && heap_grow(h) < 0)
        return -ENOMEM;
    uint32_t id;
    if (h->free) {
        id = h->free - 1;
        h->free = (uint32_t)(h->ent[id] >> 1);
    } else {
        if (h->nent == h->capent) {
            /* ids in use <= slots, and the slot array has room for one more */
            if (h->capent >= UINT32_MAX / 2)
                return -ENOMEM;
            uint32_t cap = h->capent ? h->capent * 2 : 64;
            uintptr_t *e = aw__realloc(h->ent, (size_t)cap * sizeof *e);
            if (!e)
                return -ENOMEM;
            h->ent = e;
            h->capent = cap;
        }
        id = h->nent++;
    }
    h->ent[id] = (uintptr_t)t;
    t->id = id + 1;
    t->when = when;
    h->v[h->n++] = (aw__heap_slot_t){.id = id, .seq = h->seq++, .when = when};
    h->live++;
    heap_up(h, h->n - 1);
    return 0;
}

void aw__timer_disarm(aw__heap_t *h, aw__timer_t *t) {
    if (!t->id)
        return;
    uint32_t id = t->id - 1;
    t->id = 0;
    h->live--;
    if (h->v[0].id == id) { /* the top (a fired timer): out at once */
        pop_top(h);
        return;
    }
    h->ent[id] = 0;
    if (++h->dead > h->live)
        compact(h);
}

void aw__heap_fini(aw__heap_t *h) {
    aw__free(h->mem);
    aw__free(h->ent);
    *h = (aw__heap_t){0};
}
