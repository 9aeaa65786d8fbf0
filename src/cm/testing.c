/* testing.c: the cancel-every-point checker (awith/testing.h). One run is
 * one aw_main; the checker's state lives on the caller's stack and is
 * handed to the trace hook and the main task as their argument, so no
 * static state is involved. The manager bookkeeping is a small array of
 * live blocks: exits usually match the newest entry (a LIFO walk from the
 * end finds it at once). */
#include "../coro/alloc.h" /* aw__malloc ...: the allocator table */
#include <awith/testing.h>
#include <awith/scope.h>
#include <awith/with.h>

#include "../loop/loop.h" /* aw__loop_keep_stacks */

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct aw__t_live {
    const void *block;
    const char *manager, *file;
    int line;
} aw__t_live_t;

typedef struct aw__t_state {
    const aw_testing_t *t;
    aw_testing_inject_t how;
    int k, points, injected, active, status, err, violations;
    aw_scope_t *scope;
    aw__t_live_t *live;
    size_t nlive, cap;
    long enters;
} aw__t_state_t;

static FILE *aw__t_log(const aw__t_state_t *s) { return s->t->log ? s->t->log : stderr; }

__attribute__((format(printf, 2, 3))) static void aw__t_violation(aw__t_state_t *s,
                                                                  const char *fmt, ...) {
    static const char *const hows[] = {"plain run", "cancel at point", "deadline at point"};
    FILE *f = aw__t_log(s);
    va_list ap;
    va_start(ap, fmt);
    fprintf(f, "testing: %s: %s", s->t->name ? s->t->name : "?", hows[s->how]);
    if (s->how != AW_TESTING_NONE)
        fprintf(f, " %d", s->k);
    fputs(": ", f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
    s->violations++;
}

/* Open file descriptors of this process (., .. and the DIR's own fd not
 * counted). */
static int aw__t_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3;
}

static void aw__t_trace(const aw_trace_event_t *ev, void *arg) {
    aw__t_state_t *s = arg;
    switch (ev->kind) {
    case AW_TRACE_ENTERED:
        if (ev->rc < 0)
            break; /* a failed enter gets no exit */
        if (s->nlive == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 64;
            aw__t_live_t *p = aw__realloc(s->live, cap * sizeof *p);
            if (!p)
                abort(); /* a checker that loses track would lie */
            s->live = p;
            s->cap = cap;
        }
        s->live[s->nlive++] = (aw__t_live_t){ev->block, ev->manager, ev->file, ev->line};
        s->enters++;
        break;
    case AW_TRACE_EXITED: {
        size_t i = s->nlive;
        while (i > 0 && s->live[i - 1].block != ev->block)
            i--;
        if (i == 0) {
            aw__t_violation(s, "manager '%s' (block at %s:%d) exited without being entered, "
                            "or twice", ev->manager, ev->file, ev->line);
            break;
        }
        s->live[i - 1] = s->live[--s->nlive];
        break;
    }
    case AW_TRACE_POINT:
        if (!s->active)
            break;
        if (++s->points == s->k && s->how != AW_TESTING_NONE) {
            s->injected = 1;
            if (s->how == AW_TESTING_CANCEL)
                aw_scope_cancel(s->scope);
            else
                aw_scope_reschedule(s->scope, aw_now());
        }
        break;
    default:
        break;
    }
    if (s->t->trace)
        s->t->trace(ev, s->t->trace_arg);
}

static int aw__t_main(void *arg) {
    aw__t_state_t *s = arg;
    aw_trace_set(aw__t_trace, s);
    aw_with (aw_scope_t *scope, aw_fail_at(AW_NEVER)) {
        s->scope = scope;
        s->active = 1;
        s->status = s->t->fn(s->t->arg);
        s->err = aw_status();
        s->active = 0;
    }
    s->scope = NULL;
    aw_err_clear(); /* whatever the scenario left with: the run is judged after */
    /* the hook stays: tasks the scenario left in the root group exit their
     * managers during shutdown, and those exits count */
    return 0;
}

/* stdout to /dev/null and back; *saved is the original's copy (-1: none) */
static int aw__t_mute(int *saved) {
    fflush(stdout);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0)
        return -errno;
    *saved = dup(STDOUT_FILENO);
    if (*saved < 0 || dup2(null, STDOUT_FILENO) < 0) {
        int e = -errno;
        close(null);
        if (*saved >= 0)
            close(*saved);
        *saved = -1;
        return e;
    }
    close(null);
    return 0;
}

static void aw__t_unmute(int saved) {
    if (saved < 0)
        return;
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
}

static int aw__t_once(const aw_testing_t *t, aw_testing_inject_t how, int k,
                      aw_testing_result_t *res) {
    aw__t_state_t s = {.t = t, .how = how, .k = how == AW_TESTING_NONE ? 0 : k};
    int64_t semv[AW_TESTING_MAX_OBJS] = {0};
    if (t->reset)
        t->reset(t->arg);
    for (int i = 0; i < AW_TESTING_MAX_OBJS && t->sems[i]; i++)
        semv[i] = aw_sem_value(t->sems[i]);
    fflush(stdout);
    int fds = aw__t_fds();
    int rc = t->opts ? aw_main_opts(t->opts, aw__t_main, &s) : aw_main(aw__t_main, &s);
    fflush(stdout);
    int fds_after = aw__t_fds();
    if (rc != 0)
        aw__t_violation(&s, "the loop closed with a report (aw_main: %s): a task, a generator "
                        "or a failure outlived the scenario (see above)", aw_err_name(rc));
    if (fds_after != fds)
        aw__t_violation(&s, "%d fd(s) leaked", fds_after - fds);
    for (size_t i = 0; i < s.nlive; i++)
        aw__t_violation(&s, "manager '%s' entered at %s:%d never exited", s.live[i].manager,
                        s.live[i].file, s.live[i].line);
    /* a name may be NULL (AW_LOCK_INIT(NULL)): "?", as the dump says */
    for (int i = 0; i < AW_TESTING_MAX_OBJS && t->locks[i]; i++)
        if (aw_lock_owner(t->locks[i]) || t->locks[i]->waiters.head)
            aw__t_violation(&s, "lock '%s' is still %s",
                            t->locks[i]->name ? t->locks[i]->name : "?",
                            aw_lock_owner(t->locks[i]) ? "held" : "awaited");
    for (int i = 0; i < AW_TESTING_MAX_OBJS && t->sems[i]; i++)
        if (aw_sem_value(t->sems[i]) != semv[i] || t->sems[i]->waiters.head)
            aw__t_violation(&s, "semaphore '%s' has %lld permits (had %lld)%s",
                            t->sems[i]->name ? t->sems[i]->name : "?",
                            (long long)aw_sem_value(t->sems[i]), (long long)semv[i],
                            t->sems[i]->waiters.head ? " and waiters" : "");
    aw__free(s.live);
    if (res)
        *res = (aw_testing_result_t){.points = s.points, .injected = s.injected,
                                     .status = s.status, .err = s.err, .enters = s.enters,
                                     .violations = s.violations};
    return s.violations;
}

int aw_testing_run_once(const aw_testing_t *t, aw_testing_inject_t how, int k,
                        aw_testing_result_t *res) {
    if (!t || !t->fn || aw_loop_current())
        return -EINVAL;
    int saved = -1;
    if (t->mute_stdout) {
        int rc = aw__t_mute(&saved);
        if (rc < 0)
            return rc;
    }
    if (t->keep_stacks)
        aw__loop_keep_stacks(true);
    int v = aw__t_once(t, how, k, res);
    aw__t_unmute(saved);
    return v;
}

int aw_testing_run(const aw_testing_t *t, aw_testing_report_t *r) {
    aw_testing_report_t tmp;
    if (!r)
        r = &tmp;
    memset(r, 0, sizeof *r);
    if (!t || !t->fn || aw_loop_current())
        return -EINVAL;
    int saved = -1;
    if (t->mute_stdout) {
        int rc = aw__t_mute(&saved);
        if (rc < 0)
            return rc;
    }
    /* 1 + 2N loops in a row: each takes the stacks the one before left
     * (a fresh slab is most of a short run's cost); unmapped at the end
     * unless the caller keeps them */
    bool kept = aw__loop_keep_stacks(true);
    aw_testing_result_t one;
    aw__t_once(t, AW_TESTING_NONE, 0, &one);
    r->points = one.points;
    r->enters += one.enters;
    r->violations += one.violations;
    for (int how = AW_TESTING_CANCEL; how <= AW_TESTING_DEADLINE; how++)
        for (int k = 1; k <= r->points; k++) {
            aw__t_once(t, (aw_testing_inject_t)how, k, &one);
            r->enters += one.enters;
            r->violations += one.violations;
            if (!one.injected)
                r->missed++;
            else if (how == AW_TESTING_CANCEL)
                r->cancels++;
            else
                r->deadlines++;
        }
    if (!kept && !t->keep_stacks)
        aw__loop_keep_stacks(false);
    aw__t_unmute(saved);
    fprintf(t->log ? t->log : stderr,
            "testing: %s: %d points, %d cancels and %d deadlines injected (%d runs ended "
            "first), %ld managers entered and exited, %d violations\n",
            t->name ? t->name : "?", r->points, r->cancels, r->deadlines, r->missed, r->enters,
            r->violations);
    return r->violations;
}
