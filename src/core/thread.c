/* thread.c: aw_to_thread, a blocking call on the loop's pool. The job is
 * heap-allocated because a cancelled caller leaves before it finishes. */
#include "core.h"

#include <stdlib.h>

typedef struct aw__tjob {
    aw__job_t job;
    void (*work)(void *);
    void *arg;
    void (*abandon)(void *);
    aw_task_t *waiter;               /* NULL once the caller left */
} aw__tjob_t;

static void aw__tjob_work(aw__job_t *j) {
    aw__tjob_t *tj = (aw__tjob_t *)j;
    tj->work(tj->arg);
}

static void aw__tjob_done(aw__job_t *j) {
    aw__tjob_t *tj = (aw__tjob_t *)j;
    if (tj->waiter) {
        aw__task_wake(tj->waiter, j->rc); /* -ECHILD: lost in a fork */
        tj->waiter = NULL;
        return; /* the caller frees it */
    }
    if (tj->abandon)
        tj->abandon(tj->arg);
    aw__free(tj);
}

/* The caller is woken (a cancel, or the job's done). Ownership of a
 * job still out passes to the pool: its done hook abandons arg and frees
 * tj, maybe before the woken caller runs (tasks ahead of it in the run
 * queue, then a poll that drains the pool), so the caller must not read
 * tj again: wait_obj NULL tells it so. */
static void aw__tjob_unwait(aw_task_t *t) {
    aw__tjob_t *tj = t->wait_obj;
    tj->waiter = NULL;
    t->wait_obj = NULL;
}

int aw_to_thread(void (*work)(void *), void *arg, void (*abandon)(void *)) {
    aw_task_t *t = aw__task_cur();
    if (!t)
        return aw__no_task("aw_to_thread");
    int rc = aw_checkpoint();
    if (rc < 0) {
        /* -ECANCELED always hands arg over: abandon it now, work never ran */
        if (abandon)
            abandon(arg);
        return rc;
    }
    aw__tjob_t *tj = aw__calloc(1, sizeof *tj);
    if (!tj)
        return aw_raise(-ENOMEM, "aw_to_thread: out of memory");
    tj->job.work = aw__tjob_work;
    tj->job.done = aw__tjob_done;
    tj->work = work;
    tj->arg = arg;
    tj->abandon = abandon;
    tj->waiter = t;
    rc = aw__workers_submit(t->loop, &tj->job);
    if (rc == -ECHILD) {
        aw__free(tj);
        return aw_raise(rc, "aw_to_thread in a forked child whose loop is still the parent's: "
                            "call aw_loop_fork() in the child first");
    }
    if (rc < 0) {
        aw__free(tj);
        return aw_raise(rc, "aw_to_thread: cannot start the thread pool: %s", aw_strerror(rc));
    }
    t->wait_obj = tj;
    t->unwait = abandon ? aw__tjob_unwait : NULL;
    uint64_t mark = t->errseq;
    /* Cancellable even without abandon: until a worker takes the job,
     * nothing ran, so a cancel can take it back (Trio's to_thread is
     * cancellable while it waits for a thread). */
    rc = aw__task_wait(t, AW_NEVER, 1);
    if (rc == -ECANCELED && abandon && !t->wait_obj)
        return rc; /* the pool owns tj and arg now (tj may be freed already) */
    if (rc == -ECANCELED && !abandon) {
        if (!tj->waiter) {
            /* done since the cancel woke us: the call completed, its
             * result is kept; the cancel is seen at the next point */
            aw__err_drop_newer(t, mark);
            rc = tj->job.rc;
        } else if (aw__workers_unqueue(t->loop, &tj->job)) {
            aw__free(tj); /* never ran: arg is untouched, the caller's */
            return rc;
        } /* else a worker has it: waited for below */
    }
    if (rc == -ECHILD) { /* done by aw_loop_fork: its worker was the parent's */
        aw__free(tj);
        return aw_raise(rc, "aw_to_thread: the process forked while this call ran on the "
                            "parent's thread pool; it may have run partly, in the parent only");
    }
    if (rc < 0) {
        /* The wait never began (its deadline's timer could not be armed:
         * -ENOMEM), or a cancel came once a worker had the job (no
         * abandon: the call is not abandoned), but the job is queued or
         * running: freeing it now would pull it from under the worker.
         * Wait for it without the deadline (no timer, cannot fail); the
         * work then ran, so the call succeeded and the wait's error is
         * dropped. The deadline or cancel is seen at the caller's next
         * cancellation point. */
        tj->waiter = t;
        t->wait_obj = tj;
        t->unwait = NULL;
        rc = aw__task_wait(t, AW_NEVER, 0);
        aw__err_drop_newer(t, mark);
    }
    aw__free(tj);
    return rc < 0 ? rc : 0;
}
