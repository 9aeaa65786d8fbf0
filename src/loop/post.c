/* post.c: work handed to the loop by other threads (aw_loop_ref,
 * aw_loop_post, aw_loop_unref). One reference block per loop, made on the
 * first aw_loop_ref() and shared by every reference: the loop holds one count of `refs`, each
 * aw_loop_ref() another, and the last to let go frees it, so a post after
 * the loop closed finds `closed` instead of freed memory. A post is one
 * malloc'd node; the eventfd is written only when the queue was empty (the
 * loop takes the whole queue each time it wakes). */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct aw__post {
    void (*fn)(void *);
    void *arg;
    aw__post_t *next;
};

static void aw__ref_put(aw_loop_ref_t *r) {
    pthread_mutex_lock(&r->mu);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
}

int aw_loop_ref(aw_loop_ref_t **out) {
    aw_loop_t *l = aw__loop_tls;
    if (!l)
        return -EPERM;
    if (!l->remote) {
        aw_loop_ref_t *r = calloc(1, sizeof *r);
        if (!r)
            return -ENOMEM;
        pthread_mutex_init(&r->mu, NULL);
        r->evfd = l->evfd;
        r->refs = 1; /* the loop's */
        l->remote = r;
    }
    aw_loop_ref_t *r = l->remote;
    pthread_mutex_lock(&r->mu);
    r->refs++;
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&r->expect, 1);
    *out = r;
    return 0;
}

/* Wake the loop (the caller holds r->mu, so the fd is still open). */
static void aw__ref_kick(aw_loop_ref_t *r) {
    uint64_t one = 1;
    ssize_t w = write(r->evfd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is saturated, the loop is awake anyway */
}

int aw_loop_post(aw_loop_ref_t *r, void (*fn)(void *), void *arg) {
    if (!r || !fn)
        return -EINVAL;
    aw__post_t *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->closed) {
        pthread_mutex_unlock(&r->mu);
        free(p);
        return -ESHUTDOWN;
    }
    atomic_fetch_add(&r->expect, 1);
    int wasempty = r->head == NULL;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    if (wasempty)
        aw__ref_kick(r);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void aw_loop_unref(aw_loop_ref_t *r) {
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_fetch_sub(&r->expect, 1);
    if (!r->closed)
        aw__ref_kick(r); /* the loop may now find it has nothing to wait for */
    pthread_mutex_unlock(&r->mu);
    aw__ref_put(r);
}

static aw__post_t *aw__post_take(aw_loop_ref_t *r) {
    pthread_mutex_lock(&r->mu);
    aw__post_t *p = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&r->mu);
    return p;
}

static void aw__post_run(aw_loop_ref_t *r, aw__post_t *p) {
    while (p) {
        aw__post_t *n = p->next;
        p->fn(p->arg);
        free(p);
        atomic_fetch_sub(&r->expect, 1);
        p = n;
    }
}

void aw__post_drain(aw_loop_t *l) {
    if (l->remote)
        aw__post_run(l->remote, aw__post_take(l->remote));
}

void aw__post_close(aw_loop_t *l) {
    aw_loop_ref_t *r = l->remote;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    pthread_mutex_unlock(&r->mu);
    aw__post_run(r, aw__post_take(r)); /* what was accepted runs */
    l->remote = NULL;
    aw__ref_put(r);
}
