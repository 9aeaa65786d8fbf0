/* list.h (private): the one intrusive doubly linked list of the runtime.
 *
 * A node (aw__link_t) is embedded in the object it links (a task, a wait
 * node, a lock, a pool entry); aw__container() gets the object back. A
 * list is a head and a tail (aw__list_t, declared in awith/task.h because
 * public structs embed it: a wait queue, a group's children). Both are
 * NULL-terminated, not circular, so all-zero is an empty list and an
 * unlinked node: the static initialisers (AW_LOCK_INIT, aw_group()) and
 * calloc'd objects need no init call. Every operation is O(1) and touches
 * only the node and its neighbours. */
#ifndef AW_CORE_LIST_H
#define AW_CORE_LIST_H

#include <awith/task.h>

#include <assert.h>
#include <stddef.h>

typedef struct aw__link aw__link_t;

#define aw__container(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static inline bool aw__list_empty(const aw__list_t *l) { return l->head == NULL; }

/* Is n on l? O(1): n is linked somewhere, or the lone head. Debug checks. */
static inline bool aw__list_holds(const aw__list_t *l, const aw__link_t *n) {
    return n->prev ? n->prev->next == n : l->head == n;
}

static inline void aw__list_push_back(aw__list_t *l, aw__link_t *n) {
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static inline void aw__list_push_front(aw__list_t *l, aw__link_t *n) {
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

/* n must be on l; afterwards it is unlinked (both pointers NULL). */
static inline void aw__list_remove(aw__list_t *l, aw__link_t *n) {
    assert(aw__list_holds(l, n));
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static inline aw__link_t *aw__list_pop_front(aw__list_t *l) {
    aw__link_t *n = l->head;
    if (n)
        aw__list_remove(l, n);
    return n;
}

/* for (each node n of l): n may not be removed inside; see _safe. */
#define aw__list_each(l, n) for (aw__link_t *n = (l)->head; n; n = n->next)
/* The same, n may be removed (or freed) inside. */
#define aw__list_each_safe(l, n)                                                   \
    for (aw__link_t *n = (l)->head, *aw__nx_##n = n ? n->next : NULL; n;           \
         n = aw__nx_##n, aw__nx_##n = n ? n->next : NULL)
/* The same, from the tail back to the head. */
#define aw__list_each_back_safe(l, n)                                              \
    for (aw__link_t *n = (l)->tail, *aw__pv_##n = n ? n->prev : NULL; n;           \
         n = aw__pv_##n, aw__pv_##n = n ? n->prev : NULL)

#endif
