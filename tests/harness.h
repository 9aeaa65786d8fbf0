/* harness.h: the cancel-every-point harness (tests only).
 *
 * A scenario is a task function. The harness runs it as the main task of
 * a fresh loop, inside a fail-at scope of its own, and:
 *   1. once, counting the cancellation points reached by every task of the
 *      loop while the scenario runs (N; aw_checkpoint and every cancellable
 *      wait, including those of its children and generators);
 *   2. N times more, cancelling that scope at point k (k = 1..N): the point
 *      itself sees the cancel;
 *   3. N times more, moving the scope's deadline to "now" at point k: the
 *      point sees the deadline expire.
 * After every run it checks that
 *   - every manager entered (aw_with blocks, exit-stack entries, scopes,
 *     groups, locks, generator managers...) exited exactly once, seen
 *     through a trace hook (awith/trace.h);
 *   - no fd leaked (/proc/self/fd counted before and after the loop);
 *   - the loop closed with no task alive (aw_main did not report one);
 *   - every lock given in `locks` is free with no waiter, every semaphore
 *     in `sems` is back at its value before the run with no waiter
 *     (`reset`, if set, runs before each run: put static state back).
 * Memory leaks are ASan/LSan's job (the asan build runs the same tests).
 * The scenario's stdout goes to /dev/null; a summary line per scenario
 * goes to stderr ("harness: NAME: N points, C cancels and D deadlines
 * injected, V violations"), each violation on a line of its own.
 *
 *   aw_harness_t h = {.name = "timeout", .fn = example_timeout};
 *   aw_harness_report_t r;
 *   cr_assert_eq(aw_harness_run(&h, &r), 0);
 *
 * A scenario whose path depends on timing may reach fewer points in a run
 * than in the counting run; such a run injects nothing and is counted in
 * `missed`. One harness runs at a time (it uses static state). */
#ifndef AW_HARNESS_H
#define AW_HARNESS_H

#include "testutil.h"
#include <awith/trace.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { AW_HARNESS_MAX_OBJS = 8 };

typedef struct aw_harness {
    const char *name;
    aw_task_fn fn;                         /* the scenario */
    void *arg;
    void (*reset)(void *arg);              /* optional: before each run, outside the loop */
    aw_lock_t *locks[AW_HARNESS_MAX_OBJS]; /* checked free after each run */
    aw_sem_t *sems[AW_HARNESS_MAX_OBJS];   /* checked restored after each run */
} aw_harness_t;

typedef struct aw_harness_report {
    int points;          /* N: points of the counting run */
    int cancels;         /* runs where a cancel was injected */
    int deadlines;       /* runs where a deadline expiry was injected */
    int missed;          /* runs that ended before their point k */
    long enters;         /* managers entered, over all runs */
    int violations;      /* invariant violations, over all runs */
} aw_harness_report_t;

/* Run the scenario 1 + 2N times (see above). Returns the number of
 * violations (0: every run kept every invariant). */
static int aw_harness_run(const aw_harness_t *h, aw_harness_report_t *r);

/* ---- implementation ---- */

enum { AW__H_COUNT, AW__H_CANCEL, AW__H_DEADLINE };

typedef struct aw__h_live {
    const void *block;
    const char *manager, *file;
    int line;
} aw__h_live_t;

static struct aw__h_state {
    const aw_harness_t *h;
    int mode, k, points, injected, active, run_status;
    aw_scope_t *scope;
    aw__h_live_t *live;
    size_t nlive, cap;
    long enters;
    int violations;
} aw__hs;

__attribute__((format(printf, 1, 2))) static void aw__h_violation(const char *fmt, ...) {
    static const char *const modes[] = {"counting run", "cancel at point", "deadline at point"};
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: %s: %s %d: ", aw__hs.h->name, modes[aw__hs.mode],
            aw__hs.mode == AW__H_COUNT ? aw__hs.points : aw__hs.k);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    aw__hs.violations++;
}

static void aw__h_trace(const aw_trace_event_t *ev, void *arg) {
    (void)arg;
    struct aw__h_state *s = &aw__hs;
    switch (ev->kind) {
    case AW_TRACE_ENTERED:
        if (ev->rc < 0)
            break; /* a failed enter gets no exit */
        if (s->nlive == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->live = realloc(s->live, s->cap * sizeof *s->live);
            if (!s->live)
                abort();
        }
        s->live[s->nlive++] = (aw__h_live_t){ev->block, ev->manager, ev->file, ev->line};
        s->enters++;
        break;
    case AW_TRACE_EXITED: {
        size_t i = s->nlive;
        while (i > 0 && s->live[i - 1].block != ev->block)
            i--;
        if (i == 0) {
            aw__h_violation("manager '%s' (block at %s:%d) exited without being entered, or twice",
                            ev->manager, ev->file, ev->line);
            break;
        }
        s->live[i - 1] = s->live[--s->nlive];
        break;
    }
    case AW_TRACE_POINT:
        if (!s->active)
            break;
        if (++s->points == s->k && s->mode != AW__H_COUNT) {
            s->injected = 1;
            if (s->mode == AW__H_CANCEL)
                aw_scope_cancel(s->scope);
            else
                aw_scope_reschedule(s->scope, aw_now());
        }
        break;
    default:
        break;
    }
}

static int aw__h_main(void *arg) {
    struct aw__h_state *s = &aw__hs;
    aw_trace_set(aw__h_trace, NULL);
    aw_with (aw_scope_t *scope, aw_fail_at(AW_NEVER)) {
        s->scope = scope;
        s->active = 1;
        s->run_status = s->h->fn(s->h->arg);
        s->active = 0;
    }
    s->scope = NULL;
    aw_err_clear(); /* whatever the scenario left with: the run is judged below */
    return 0;
}

/* One run; returns 1 if it injected (or was the counting run). */
static int aw__h_once(int mode, int k, aw_harness_report_t *r) {
    struct aw__h_state *s = &aw__hs;
    const aw_harness_t *h = s->h;
    int64_t semv[AW_HARNESS_MAX_OBJS] = {0};
    if (h->reset)
        h->reset(h->arg);
    for (int i = 0; i < AW_HARNESS_MAX_OBJS && h->sems[i]; i++)
        semv[i] = aw_sem_value(h->sems[i]);
    s->mode = mode;
    s->k = k;
    s->points = 0;
    s->injected = 0;
    s->nlive = 0;
    fflush(stdout);
    int fds = aw_test_fds();
    int rc = aw_main(aw__h_main, NULL);
    fflush(stdout);
    int fds_after = aw_test_fds();
    if (rc != 0)
        aw__h_violation("the loop closed badly: %s (a task outlived the scenario?)",
                        aw_err_name(rc));
    if (fds_after != fds)
        aw__h_violation("%d fd(s) leaked", fds_after - fds);
    for (size_t i = 0; i < s->nlive; i++)
        aw__h_violation("manager '%s' entered at %s:%d never exited", s->live[i].manager,
                        s->live[i].file, s->live[i].line);
    for (int i = 0; i < AW_HARNESS_MAX_OBJS && h->locks[i]; i++)
        if (aw_lock_owner(h->locks[i]) || h->locks[i]->waiters.head)
            aw__h_violation("lock '%s' is still %s", h->locks[i]->name,
                            aw_lock_owner(h->locks[i]) ? "held" : "awaited");
    for (int i = 0; i < AW_HARNESS_MAX_OBJS && h->sems[i]; i++)
        if (aw_sem_value(h->sems[i]) != semv[i] || h->sems[i]->waiters.head)
            aw__h_violation("semaphore '%s' has %lld permits (had %lld)%s", h->sems[i]->name,
                            (long long)aw_sem_value(h->sems[i]), (long long)semv[i],
                            h->sems[i]->waiters.head ? " and waiters" : "");
    if (mode != AW__H_COUNT && !s->injected)
        r->missed++;
    return mode == AW__H_COUNT || s->injected;
}

static int aw_harness_run(const aw_harness_t *h, aw_harness_report_t *r) {
    struct aw__h_state *s = &aw__hs;
    memset(r, 0, sizeof *r);
    free(s->live);
    memset(s, 0, sizeof *s);
    s->h = h;
    /* the scenario prints: keep it out of the test's output */
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved < 0 || null < 0 || dup2(null, STDOUT_FILENO) < 0)
        abort();
    close(null);

    aw__h_once(AW__H_COUNT, 0, r);
    r->points = s->points;
    for (int k = 1; k <= r->points; k++)
        r->cancels += aw__h_once(AW__H_CANCEL, k, r);
    for (int k = 1; k <= r->points; k++)
        r->deadlines += aw__h_once(AW__H_DEADLINE, k, r);

    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    r->enters = s->enters;
    r->violations = s->violations;
    free(s->live);
    s->live = NULL;
    fprintf(stderr,
            "harness: %s: %d points, %d cancels and %d deadlines injected (%d runs ended "
            "first), %ld managers entered and exited, %d violations\n",
            h->name, r->points, r->cancels, r->deadlines, r->missed, r->enters, r->violations);
    return r->violations;
}

#endif
