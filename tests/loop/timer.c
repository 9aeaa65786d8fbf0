/* tests for src/loop/timer.c: the timer heap (arm, disarm, top). */
#include "../../src/loop/loop.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static void no_fire(aw__timer_t *t) { (void)t; }

/* Check the heap property and that every slot knows its index. */
static void heap_check(const aw__heap_t *h) {
    for (size_t i = 0; i < h->n; i++) {
        cr_assert_eq(h->v[i].t->idx, i + 1, "slot %zu: idx %zu", i, h->v[i].t->idx);
        cr_assert_eq(h->v[i].when, h->v[i].t->when, "slot %zu: stale deadline", i);
        if (i > 0)
            cr_assert_leq(h->v[(i - 1) / AW__HEAP_D].when, h->v[i].when, "heap order broken at %zu", i);
    }
}

static aw__timer_t *pop(aw__heap_t *h) {
    aw__timer_t *t = aw__heap_top(h);
    if (t)
        aw__timer_disarm(h, t);
    return t;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void) { /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

Test(timer, empty_heap) {
    aw__heap_t h = {0};
    cr_assert_null(aw__heap_top(&h));
    aw__timer_t t = {.fire = no_fire};
    cr_assert(!aw__timer_armed(&t));
    aw__timer_disarm(&h, &t); /* disarming an unarmed timer is a no-op */
    cr_assert_eq(h.n, 0);
}

Test(timer, pops_in_deadline_order) {
    aw__heap_t h = {0};
    enum { N = 1000 };
    aw__timer_t t[N];
    for (int i = 0; i < N; i++) {
        t[i] = (aw__timer_t){.fire = no_fire};
        cr_assert_eq(aw__timer_arm(&h, &t[i], (aw_ns_t)(next() % 500)), 0); /* with ties */
        cr_assert(aw__timer_armed(&t[i]));
    }
    heap_check(&h);
    aw_ns_t last = -1;
    for (int i = 0; i < N; i++) {
        aw__timer_t *x = pop(&h);
        cr_assert_not_null(x);
        cr_assert(!aw__timer_armed(x));
        cr_assert_geq(x->when, last);
        last = x->when;
    }
    cr_assert_null(aw__heap_top(&h));
    free(h.v);
}

Test(timer, random_arm_and_disarm_of_ten_thousand) {
    enum { N = 10000 };
    aw__heap_t h = {0};
    aw__timer_t *t = calloc(N, sizeof *t);
    for (int i = 0; i < N; i++)
        t[i].fire = no_fire;
    /* a random mix of arms, re-arms and disarms */
    size_t armed = 0;
    for (int op = 0; op < 5 * N; op++) {
        aw__timer_t *x = &t[next() % N];
        if (next() % 3 == 0) {
            armed -= aw__timer_armed(x);
            aw__timer_disarm(&h, x);
            cr_assert(!aw__timer_armed(x));
        } else {
            armed += !aw__timer_armed(x);
            cr_assert_eq(aw__timer_arm(&h, x, (aw_ns_t)(next() % 1000000)), 0);
        }
        cr_assert_eq(h.n, armed);
        if (op % 997 == 0)
            heap_check(&h);
    }
    heap_check(&h);
    /* every armed timer is in the heap, exactly once */
    for (int i = 0; i < N; i++)
        if (aw__timer_armed(&t[i]))
            cr_assert_eq(h.v[t[i].idx - 1].t, &t[i]);
    /* pops come out sorted, and are exactly the armed timers */
    aw_ns_t last = -1;
    size_t popped = 0;
    aw__timer_t *x;
    while ((x = pop(&h))) {
        cr_assert_geq(x->when, last, "pop %zu out of order", popped);
        last = x->when;
        popped++;
    }
    cr_assert_eq(popped, armed);
    for (int i = 0; i < N; i++)
        cr_assert(!aw__timer_armed(&t[i]));
    free(h.v);
    free(t);
}

Test(timer, disarm_of_a_middle_element) {
    aw__heap_t h = {0};
    enum { N = 31 };
    aw__timer_t t[N];
    for (int i = 0; i < N; i++) {
        t[i] = (aw__timer_t){.fire = no_fire};
        aw__timer_arm(&h, &t[i], (aw_ns_t)(i * 10));
    }
    heap_check(&h);
    /* every position in turn: the root, inner nodes, leaves, the last slot */
    for (size_t slot = 0; slot < N; slot++) {
        aw__timer_t *m = h.v[slot].t;
        aw_ns_t when = m->when;
        aw__timer_disarm(&h, m);
        cr_assert(!aw__timer_armed(m));
        cr_assert_eq(h.n, N - 1);
        heap_check(&h);
        for (size_t i = 0; i < h.n; i++)
            cr_assert_neq(h.v[i].t, m);
        aw__timer_arm(&h, m, when);
        heap_check(&h);
    }
    /* a middle element whose replacement must move up, not down: the last
     * slot holds a small deadline in another subtree */
    aw__heap_t g = {0};
    enum { G = 10 };
    aw__timer_t u[G];
    /* already a 4-ary heap, in this order: slot 1 (100) has children
     * 5..8 (101..104), slot 2 (1) has child 9 (5) */
    aw_ns_t w[G] = {0, 100, 1, 2, 3, 101, 102, 103, 104, 5};
    for (int i = 0; i < G; i++) {
        u[i] = (aw__timer_t){.fire = no_fire};
        aw__timer_arm(&g, &u[i], w[i]);
        cr_assert_eq(u[i].idx, (size_t)i + 1);
    }
    aw__timer_disarm(&g, &u[6]); /* 102 under 100; the last (5) replaces it and must rise */
    heap_check(&g);
    cr_assert_eq(g.v[1].t, &u[9], "5 moved up above 101");
    aw_ns_t expect[] = {0, 1, 2, 3, 5, 100, 101, 103, 104}, last;
    for (int i = 0; i < G - 1; i++) {
        aw__timer_t *x = pop(&g);
        cr_assert_eq(x->when, expect[i]);
        last = x->when;
    }
    (void)last;
    cr_assert_null(aw__heap_top(&g));
    free(g.v);
    free(h.v);
}

Test(timer, rearm_moves_a_timer) {
    aw__heap_t h = {0};
    enum { N = 100 };
    aw__timer_t t[N];
    for (int i = 0; i < N; i++) {
        t[i] = (aw__timer_t){.fire = no_fire};
        aw__timer_arm(&h, &t[i], 1000 + i);
    }
    /* earlier: to the top */
    aw__timer_arm(&h, &t[57], 5);
    heap_check(&h);
    cr_assert_eq(h.n, N, "re-arming does not duplicate");
    cr_assert_eq(aw__heap_top(&h), &t[57]);
    cr_assert_eq(t[57].when, 5);
    /* later: off the top, to the end of the order */
    aw__timer_arm(&h, &t[57], 5000);
    heap_check(&h);
    cr_assert_eq(h.n, N);
    cr_assert_eq(aw__heap_top(&h), &t[0]);
    /* the root moved later */
    aw__timer_arm(&h, &t[0], 4000);
    heap_check(&h);
    cr_assert_eq(aw__heap_top(&h), &t[1]);
    /* same deadline again: still armed once */
    aw__timer_arm(&h, &t[30], t[30].when);
    heap_check(&h);
    cr_assert_eq(h.n, N);
    aw__timer_t *x;
    aw_ns_t last = -1;
    int k = 0;
    while ((x = pop(&h))) {
        cr_assert_geq(x->when, last);
        last = x->when;
        if (k == N - 2)
            cr_assert_eq(x, &t[0], "4000 comes second to last");
        if (k == N - 1)
            cr_assert_eq(x, &t[57], "5000 comes last");
        k++;
    }
    cr_assert_eq(k, N);
    free(h.v);
}
