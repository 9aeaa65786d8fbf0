/* timer.c: a 4-ary min-heap of timers keyed by absolute deadline.
 * Arm, disarm and pop are O(log n); each timer remembers its slot so that
 * disarming a timer in the middle of the heap needs no search. Timers are
 * caller-owned (embedded in tasks); a slot holds the pointer and a copy of
 * the deadline, so sifting compares within the array, and the four
 * children of a node share a cache line: with a million timers spread
 * over a million task blocks, that is what keeps the heap fast. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>

static void aw__heap_set(aw__heap_t *h, size_t i, aw__heap_slot_t x) {
    h->v[i] = x;
    x.t->idx = i + 1;
}

static void aw__heap_up(aw__heap_t *h, size_t i) {
    aw__heap_slot_t x = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / AW__HEAP_D;
        if (h->v[p].when <= x.when)
            break;
        aw__heap_set(h, i, h->v[p]);
        i = p;
    }
    aw__heap_set(h, i, x);
}

static void aw__heap_down(aw__heap_t *h, size_t i) {
    aw__heap_slot_t x = h->v[i];
    for (;;) {
        size_t c = AW__HEAP_D * i + 1, end = c + AW__HEAP_D;
        if (c >= h->n)
            break;
        if (end > h->n)
            end = h->n;
        size_t m = c;
        for (size_t k = c + 1; k < end; k++)
            if (h->v[k].when < h->v[m].when)
                m = k;
        if (x.when <= h->v[m].when)
            break;
        aw__heap_set(h, i, h->v[m]);
        i = m;
    }
    aw__heap_set(h, i, x);
}

int aw__timer_arm(aw__heap_t *h, aw__timer_t *t, aw_ns_t when) {
    if (t->idx)
        aw__timer_disarm(h, t);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        aw__heap_slot_t *v = aw__realloc(h->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->when = when;
    h->v[h->n++] = (aw__heap_slot_t){when, t};
    aw__heap_up(h, h->n - 1);
    return 0;
}

void aw__timer_disarm(aw__heap_t *h, aw__timer_t *t) {
    if (!t->idx)
        return;
    size_t i = t->idx - 1;
    t->idx = 0;
    aw__heap_slot_t last = h->v[--h->n];
    if (i == h->n)
        return;
    aw__heap_set(h, i, last);
    if (i > 0 && h->v[(i - 1) / AW__HEAP_D].when > last.when)
        aw__heap_up(h, i);
    else
        aw__heap_down(h, i);
}
