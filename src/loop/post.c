/* post.c: work handed to the loop by other threads (aw_loop_ref,
 * aw_loop_post, aw_loop_post_wait, aw_loop_unref). One reference block
 * per loop, made on the first aw_loop_ref() and shared by every
 * reference: the loop holds one count of `refs`, each aw_loop_ref()
 * another, and the last to let go frees it, so a post after the loop
 * closed finds `closed` instead of freed memory. A post is one malloc'd
 * node; the eventfd is written only when the queue was empty (the loop
 * takes the whole queue each time it wakes).
 *
 * The queue holds at most `limit` posts (the loop's post_limit): posters
 * that outrun the loop are refused (-EAGAIN) or wait on `room`, which the
 * loop signals when it takes the queue and when it closes. So a flood
 * costs the loop at most `limit` calls per round, and the close at most
 * `limit` calls, however many threads post and for how long (8 flooding
 * threads used to queue 4 million posts and stretch the close of a
 * 20 ms program to half a second). */
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
        pthread_cond_destroy(&r->room);
        pthread_mutex_destroy(&r->mu);
        aw__free(r);
    }
}

int aw_loop_ref(aw_loop_ref_t **out) {
    aw_loop_t *l = aw__loop_tls;
    if (!l)
        return -EPERM;
    if (!l->remote) {
        aw_loop_ref_t *r = aw__calloc(1, sizeof *r);
        if (!r)
            return -ENOMEM;
        pthread_mutex_init(&r->mu, NULL);
        pthread_cond_init(&r->room, NULL);
        r->evfd = l->evfd;
        r->limit = l->opts.post_limit ? l->opts.post_limit : 16384;
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

/* Queue fn(arg); `wait`: sleep while the queue is full. */
static int aw__post(aw_loop_ref_t *r, void (*fn)(void *), void *arg, bool wait) {
    if (!r || !fn)
        return -EINVAL;
    aw__post_t *p = aw__malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    while (!r->closed && r->queued >= r->limit) {
        aw_loop_t *l = aw__loop_tls;
        if (!wait) {
            rc = -EAGAIN;
            break;
        }
        if (l && l->remote == r) { /* only this thread can make room */
            rc = -EDEADLK;
            break;
        }
        r->waiters++;
        pthread_cond_wait(&r->room, &r->mu);
        r->waiters--;
    }
    if (!rc && r->closed)
        rc = -ESHUTDOWN;
    if (rc) {
        pthread_mutex_unlock(&r->mu);
        aw__free(p);
        return rc;
    }
    atomic_fetch_add(&r->expect, 1);
    int wasempty = r->head == NULL;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    r->queued++;
    if (wasempty)
        aw__ref_kick(r);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int aw_loop_post(aw_loop_ref_t *r, void (*fn)(void *), void *arg) {
    return aw__post(r, fn, arg, false);
}

int aw_loop_post_wait(aw_loop_ref_t *r, void (*fn)(void *), void *arg) {
    return aw__post(r, fn, arg, true);
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

/* Take the whole queue (at most `limit` posts): its room goes back to
 * the posters at once, while the loop runs what it took. */
static aw__post_t *aw__post_take(aw_loop_ref_t *r) {
    pthread_mutex_lock(&r->mu);
    aw__post_t *p = r->head;
    r->head = r->tail = NULL;
    r->queued = 0;
    if (r->waiters)
        pthread_cond_broadcast(&r->room);
    pthread_mutex_unlock(&r->mu);
    return p;
}

static void aw__post_run(aw_loop_ref_t *r, aw__post_t *p) {
    while (p) {
        aw__post_t *n = p->next;
        p->fn(p->arg);
        aw__free(p);
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
    pthread_cond_broadcast(&r->room); /* waiting posters: -ESHUTDOWN */
    pthread_mutex_unlock(&r->mu);
    aw__post_run(r, aw__post_take(r)); /* what was accepted runs: <= limit calls */
    l->remote = NULL;
    aw__ref_put(r);
}

void aw__post_fork(aw_loop_t *l) {
    aw_loop_ref_t *r = l->remote;
    if (!r)
        return;
    /* Posts queued here were the parent's threads' (the parent runs them)
     * and references held by those threads will never be dropped here:
     * the child starts without the block. Its mutex may be held by a
     * parent thread forever: the block is left behind, not freed, and a
     * reference the child still holds posts into nothing that runs. */
    r->closed = 1;
    l->remote = NULL;
}
