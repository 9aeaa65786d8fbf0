/* timer.c: a binary min-heap of timers keyed by absolute deadline.
 * Arm, disarm and pop are O(log n); each timer remembers its slot so that
 * disarming a timer in the middle of the heap needs no search. Timers are
 * caller-owned (embedded in tasks); the heap only holds pointers. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>

static void aw__heap_set(aw__heap_t *h, size_t i, aw__timer_t *t) {
    h->v[i] = t;
    t->idx = i + 1;
}

static void aw__heap_up(aw__heap_t *h, size_t i) {
    aw__timer_t *t = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->when <= t->when)
            break;
        aw__heap_set(h, i, h->v[p]);
        i = p;
    }
    aw__heap_set(h, i, t);
}

static void aw__heap_down(aw__heap_t *h, size_t i) {
    aw__timer_t *t = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->when < h->v[c]->when)
            c++;
        if (t->when <= h->v[c]->when)
            break;
        aw__heap_set(h, i, h->v[c]);
        i = c;
    }
    aw__heap_set(h, i, t);
}

int aw__timer_arm(aw__heap_t *h, aw__timer_t *t, aw_ns_t when) {
    if (t->idx)
        aw__timer_disarm(h, t);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        aw__timer_t **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->when = when;
    h->v[h->n++] = t;
    aw__heap_up(h, h->n - 1);
    return 0;
}

void aw__timer_disarm(aw__heap_t *h, aw__timer_t *t) {
    if (!t->idx)
        return;
    size_t i = t->idx - 1;
    t->idx = 0;
    aw__timer_t *last = h->v[--h->n];
    if (i == h->n)
        return;
    aw__heap_set(h, i, last);
    if (i > 0 && h->v[(i - 1) / 2]->when > last->when)
        aw__heap_up(h, i);
    else
        aw__heap_down(h, i);
}
