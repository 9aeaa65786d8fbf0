/* tests for src/loop/timer.c: the timer heap (arm, disarm, top). */
#include "../../src/loop/loop.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static void no_fire(aw__timer_t *t) { (void)t; }

static int slot_before(const aw__heap_slot_t *a, const aw__heap_slot_t *b) {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* Check the heap property, that every live slot names its timer and
 * that the live and dead counts add up. */
static void heap_check(const aw__heap_t *h) {
    size_t live = 0, dead = 0;
    for (size_t i = 0; i < h->n; i++) {
        uint32_t id = h->v[i].id;
        cr_assert_lt(id, h->nent, "slot %zu: id %u past the table", i, id);
        uintptr_t e = h->ent[id];
        cr_assert_eq(e & 1, 0, "slot %zu: its id %u is on the free list", i, id);
        if (e) {
            const aw__timer_t *t = (const aw__timer_t *)e;
            cr_assert_eq(t->id, id + 1, "slot %zu: the timer's id %u", i, t->id);
            cr_assert_eq(h->v[i].when, t->when, "slot %zu: stale deadline", i);
            live++;
        } else {
            dead++;
        }
        if (i > 0)
            cr_assert(!slot_before(&h->v[i], &h->v[(i - 1) / AW__HEAP_D]), "heap order broken at %zu", i);
    }
    cr_assert_eq(live, h->live);
    cr_assert_eq(dead, h->dead);
    cr_assert_leq(h->dead, h->live, "dead slots outnumber live ones: not compacted");
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
    cr_assert_eq(h.live, 0);
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
    aw__timer_t *prev = NULL;
    for (int i = 0; i < N; i++) {
        aw__timer_t *x = pop(&h);
        cr_assert_not_null(x);
        cr_assert(!aw__timer_armed(x));
        cr_assert_geq(x->when, last);
        if (x->when == last)
            cr_assert_gt(x, prev, "a tie out of arm order");
        last = x->when;
        prev = x;
    }
    cr_assert_null(aw__heap_top(&h));
    aw__heap_fini(&h);
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
        cr_assert_eq(h.live, armed);
        if (op % 997 == 0)
            heap_check(&h);
    }
    heap_check(&h);
    /* every armed timer is in the heap, exactly once */
    for (int i = 0; i < N; i++)
        if (aw__timer_armed(&t[i]))
            cr_assert_eq(h.ent[t[i].id - 1], (uintptr_t)&t[i]);
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
    aw__heap_fini(&h);
    free(t);
}

static aw__timer_t *timer_in_slot(const aw__heap_t *h, size_t slot) {
    return (aw__timer_t *)h->ent[h->v[slot].id];
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
        aw__timer_t *m = timer_in_slot(&h, slot);
        if (!m)
            continue; /* a dead slot left by an earlier round */
        aw_ns_t when = m->when;
        aw__timer_disarm(&h, m);
        cr_assert(!aw__timer_armed(m));
        cr_assert_eq(h.live, N - 1);
        heap_check(&h);
        for (size_t i = 0; i < h.n; i++)
            cr_assert_neq(timer_in_slot(&h, i), m);
        aw__timer_arm(&h, m, when);
        heap_check(&h);
    }
    /* each timer comes out once, in order */
    aw_ns_t last = -1;
    for (int i = 0; i < N; i++) {
        aw__timer_t *x = pop(&h);
        cr_assert_eq(x, &t[i]);
        cr_assert_gt(x->when, last);
        last = x->when;
    }
    cr_assert_null(aw__heap_top(&h));
    cr_assert_eq(h.n, 0);
    aw__heap_fini(&h);
}

/* A disarmed timer's slot stays (dead) until it reaches the top; its id
 * must not be handed to another timer meanwhile, or that timer would fire
 * at the dead slot's deadline. */
Test(timer, a_dead_slot_never_fires_another_timer) {
    aw__heap_t h = {0};
    aw__timer_t keep[4], first = {.fire = no_fire}, a = {.fire = no_fire}, b = {.fire = no_fire};
    for (int i = 0; i < 4; i++) { /* live ones, so that dead slots are not compacted */
        keep[i] = (aw__timer_t){.fire = no_fire};
        aw__timer_arm(&h, &keep[i], 1000 + i);
    }
    aw__timer_arm(&h, &first, 5);
    aw__timer_arm(&h, &keep[0], 1000); /* re-armed: a dead slot below the top */
    aw__timer_arm(&h, &a, 20);
    aw__timer_arm(&h, &a, 30);         /* the slot at 20 is dead now */
    cr_assert_eq(h.dead, 2);
    cr_assert_eq(h.live, 6);
    aw__timer_arm(&h, &b, 500);        /* must not take the id of the slot at 20 */
    heap_check(&h);
    cr_assert_eq(pop(&h), &first);
    cr_assert_eq(aw__heap_top(&h), &a, "the dead slot at 20 named another timer");
    cr_assert_eq(h.dead, 1, "the dead slot at 20 is dropped once on top");
    cr_assert_eq(a.when, 30);
    cr_assert_eq(pop(&h), &a);
    cr_assert_eq(pop(&h), &b);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pop(&h), &keep[i]);
    cr_assert_null(aw__heap_top(&h));
    cr_assert_eq(h.n, 0);
    cr_assert_eq(h.dead, 0);
    /* the disarm of the top timer drops its slot at once */
    aw__timer_arm(&h, &a, 7);
    aw__timer_arm(&h, &b, 8);
    aw__timer_disarm(&h, &a);
    cr_assert_eq(h.n, 1);
    cr_assert_eq(h.dead, 0);
    cr_assert_eq(aw__heap_top(&h), &b);
    aw__heap_fini(&h);
}

/* Dead slots never outnumber live ones: disarming most timers compacts the
 * heap, and what is left still pops in order. */
Test(timer, compaction_keeps_order) {
    enum { N = 5000 };
    aw__heap_t h = {0};
    aw__timer_t *t = calloc(N, sizeof *t);
    for (int i = 0; i < N; i++) {
        t[i].fire = no_fire;
        aw__timer_arm(&h, &t[i], (aw_ns_t)(next() % 100000));
    }
    size_t peak = h.n;
    for (int i = 0; i < N; i++)
        if (i % 10) {
            aw__timer_disarm(&h, &t[i]);
            cr_assert_leq(h.dead, h.live + 1);
        }
    heap_check(&h);
    cr_assert_eq(h.live, N / 10);
    cr_assert_leq(h.n, 2 * h.live + 1, "%zu slots for %zu timers", h.n, h.live);
    cr_assert_leq(h.n, peak);
    aw_ns_t last = -1;
    size_t k = 0;
    aw__timer_t *x;
    while ((x = pop(&h))) {
        cr_assert_eq((x - t) % 10, 0, "a disarmed timer came out");
        cr_assert_geq(x->when, last);
        last = x->when;
        k++;
    }
    cr_assert_eq(k, N / 10);
    aw__heap_fini(&h);
    free(t);
}

/* Timers with the same deadline fire in the order they were armed, a
 * re-armed one counting from its latest arm. */
Test(timer, same_deadline_fires_in_arm_order) {
    enum { N = 2000 };
    aw__heap_t h = {0};
    aw__timer_t *t = calloc(N, sizeof *t);
    for (int i = 0; i < N; i++) {
        t[i].fire = no_fire;
        aw__timer_arm(&h, &t[i], (aw_ns_t)(i % 7)); /* 7 deadlines, heavily tied */
    }
    aw__timer_arm(&h, &t[0], 0); /* re-armed: now the last of deadline 0 */
    heap_check(&h);
    int prev[7];
    for (int d = 0; d < 7; d++)
        prev[d] = -1;
    aw__timer_t *x, *last0 = NULL;
    aw_ns_t last = -1;
    while ((x = pop(&h))) {
        int i = (int)(x - t), d = (int)x->when;
        cr_assert_geq(d, last);
        last = d;
        if (i != 0) {
            cr_assert_gt(i, prev[d], "deadline %d: timer %d after %d", d, i, prev[d]);
            prev[d] = i;
        }
        if (d == 0)
            last0 = x;
    }
    cr_assert_eq(last0, &t[0], "a re-armed timer goes behind the others of its deadline");
    aw__heap_fini(&h);
    free(t);
}

/* The arm sequence renumbers the armed slots before it wraps: timers of
 * one deadline armed across the wrap still fire in arm order, with some
 * armed long before (negative deadlines too: a deadline in the past). */
Test(timer, same_deadline_in_arm_order_across_the_sequence_wrap) {
    enum { N = 300 };
    aw__heap_t h = {0};
    aw__timer_t *t = calloc(N, sizeof *t);
    for (int i = 0; i < N / 3; i++) {
        t[i].fire = no_fire;
        aw__timer_arm(&h, &t[i], (aw_ns_t)(i % 3) - 1);
    }
    h.seq = UINT32_MAX - N / 3; /* the wrap comes in the middle of the next third */
    for (int i = N / 3; i < N; i++) {
        t[i].fire = no_fire;
        aw__timer_arm(&h, &t[i], (aw_ns_t)(i % 3) - 1);
        heap_check(&h);
    }
    cr_assert_lt(h.seq, (uint32_t)(2 * N), "renumbered: the sequence went on from the slot count");
    int prev[3] = {-1, -1, -1};
    aw_ns_t last = -2;
    aw__timer_t *x;
    int popped = 0;
    while ((x = pop(&h))) {
        int i = (int)(x - t), d = (int)x->when + 1;
        cr_assert_geq(x->when, last, "deadline order");
        last = x->when;
        cr_assert_gt(i, prev[d], "deadline %d: timer %d after %d", d - 1, i, prev[d]);
        prev[d] = i;
        popped++;
    }
    cr_assert_eq(popped, N);
    aw__heap_fini(&h);
    free(t);
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
    cr_assert_eq(h.live, N, "re-arming does not duplicate");
    cr_assert_eq(aw__heap_top(&h), &t[57]);
    cr_assert_eq(t[57].when, 5);
    /* later: off the top, to the end of the order */
    aw__timer_arm(&h, &t[57], 5000);
    heap_check(&h);
    cr_assert_eq(h.live, N);
    cr_assert_eq(aw__heap_top(&h), &t[0]);
    /* the root moved later */
    aw__timer_arm(&h, &t[0], 4000);
    heap_check(&h);
    cr_assert_eq(aw__heap_top(&h), &t[1]);
    /* same deadline again: still armed once */
    aw__timer_arm(&h, &t[30], t[30].when);
    heap_check(&h);
    cr_assert_eq(h.live, N);
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
    aw__heap_fini(&h);
}
