/* tests for src/core/with.c: the aw_with block, one test per line of
 * SEMANTICS.md sections A (one manager) and B (several managers), plus
 * part (c) items 7 (every exit error kept, in order, acyclic) and 13
 * (cleanup errors never orphaned). Lines marked ⚠ in SEMANTICS.md are
 * Python defects: those tests assert the opposite.
 *
 * The managers are "probes": a configurable enter/exit that logs into a
 * static buffer (enter of A logs 'A', exit of A logs 'a'; the body logs
 * '*', the statement after the block '.'), counts calls and remembers the
 * error record exit received. */
#include "testutil.h"

#include <ctype.h>
#include <string.h>

/* ---- the event log ---- */

static char logbuf[256];
static int nlog;

static void logc(char c) {
    if (nlog < (int)sizeof logbuf - 1) {
        logbuf[nlog++] = c;
        logbuf[nlog] = 0;
    }
}

static void log_reset(void) {
    nlog = 0;
    logbuf[0] = 0;
}

/* ---- the probe manager ---- */

typedef struct probe {
    char id;                  /* 'A', 'B', ...: logged upper-case by enter, lower by exit */
    /* configuration */
    int enter_rc;             /* < 0: enter fails with this code */
    int enter_raise;          /* ... raising a record (else: the bare code) */
    int enter_sleep_ms;       /* enter suspends this long after acquiring */
    int enter_transient;      /* enter raises -EAGAIN, "handles" it and succeeds */
    int exit_rc;              /* what exit returns */
    int exit_raise;           /* exit_rc < 0: raise a record (else: the bare code) */
    int exit_sleep_ms;        /* exit suspends this long */
    void *value;              /* what enter produces (default: the probe) */
    /* observations */
    int entered, exited;
    int held;                 /* acquired and not released */
    const aw_err_t *enter_err;/* the record enter raised */
    const aw_err_t *exit_err; /* what exit received (identity only; may be freed) */
    int exit_err_code;
    char exit_err_msg[128];
    const aw_err_t *exit_raised; /* the record exit raised (identity only) */
    int exit_sleep_rc;
    aw_ns_t exit_slept;
} probe_t;

static int probe_enter(void *self, void **out) {
    probe_t *p = self;
    p->entered++;
    logc(p->id);
    p->held++;
    if (p->enter_transient) {
        /* an error raised and dealt with inside enter (a retry) */
        aw_raise(-EAGAIN, "transient failure in enter of %c (retried)", p->id);
    }
    if (p->enter_sleep_ms) {
        int rc = aw_sleep_ms(p->enter_sleep_ms);
        if (rc < 0) {
            p->held--; /* a well-written enter releases what it took */
            return rc;
        }
    }
    if (p->enter_rc < 0) {
        p->held--;
        if (p->enter_raise) {
            int rc = aw_raise(p->enter_rc, "enter of %c failed", p->id);
            p->enter_err = aw_err_current();
            return rc;
        }
        return p->enter_rc;
    }
    *out = p->value ? p->value : p;
    return 0;
}

static int probe_exit(void *self, const aw_err_t *err) {
    probe_t *p = self;
    p->exited++;
    logc((char)tolower((unsigned char)p->id));
    p->exit_err = err;
    p->exit_err_code = err ? err->code : 0;
    snprintf(p->exit_err_msg, sizeof p->exit_err_msg, "%s", err ? err->msg : "");
    if (p->exit_sleep_ms) {
        aw_ns_t t0 = aw_now();
        p->exit_sleep_rc = aw_sleep_ms(p->exit_sleep_ms);
        p->exit_slept = aw_now() - t0;
        logc('~');
    }
    p->held--;
    if (p->exit_rc < 0 && p->exit_raise) {
        int rc = aw_raise(p->exit_rc, "exit of %c failed", p->id);
        p->exit_raised = aw_err_current();
        return rc;
    }
    return p->exit_rc;
}

static const aw_cm_type_t probe_type = {
    .name = "probe",
    .enter = probe_enter,
    .exit = probe_exit,
};

static const aw_cm_type_t probe_sc_type = {
    .name = "probe-suppress-cancel",
    .enter = probe_enter,
    .exit = probe_exit,
    .flags = AW_CM_SUPPRESS_CANCEL,
};

static const aw_cm_type_t probe_noexit_type = {
    .name = "probe-noexit",
    .enter = probe_enter,
    .exit = NULL,
};

static const aw_cm_type_t probe_noenter_type = {
    .name = "probe-noenter",
    .enter = NULL,
    .exit = probe_exit,
};

#define PCM(p) aw_cm(&probe_type, (p))

static probe_t pA, pB, pC;

static void probes_reset(void) {
    memset(&pA, 0, sizeof pA);
    memset(&pB, 0, sizeof pB);
    memset(&pC, 0, sizeof pC);
    pA.id = 'A';
    pB.id = 'B';
    pC.id = 'C';
    log_reset();
}

/* Walk a context chain; fail on a cycle (Floyd) or a chain longer than max.
 * Fills codes[] (up to max) and returns the length. */
static int chain_codes(const aw_err_t *e, int *codes, int max) {
    const aw_err_t *slow = e, *fast = e;
    while (fast && fast->context) {
        slow = slow->context;
        fast = fast->context->context;
        cr_assert_neq(slow, fast, "the error chain has a cycle");
    }
    int n = 0;
    for (; e; e = e->context) {
        cr_assert_lt(n, max, "the error chain is longer than %d", max);
        codes[n++] = e->code;
    }
    return n;
}

/* ================= A1: exit runs on every way out ================= */

static int a1_end(void *arg) {
    probes_reset();
    aw_with (PCM(&pA)) {
        logc('*');
    }
    logc('.');
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_eq(pA.entered, 1);
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A1_exit_runs_on_end) { aw_test_run(a1_end, NULL, 0); }

static int a1_break(void *arg) {
    probes_reset();
    int iterations = 0;
    for (int i = 0; i < 2; i++) {
        iterations++;
        aw_with (PCM(&pA)) {
            logc('*');
            break; /* leaves the block, not the enclosing loop */
            logc('X');
        }
        logc('.');
    }
    cr_assert_str_eq(logbuf, "A*a.A*a.");
    cr_assert_eq(iterations, 2, "break left the enclosing loop");
    cr_assert_eq(pA.entered, 2);
    cr_assert_eq(pA.exited, 2);
    cr_assert_eq(pA.exit_err_code, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A1_exit_runs_on_break) { aw_test_run(a1_break, NULL, 0); }

static int a1_continue(void *arg) {
    probes_reset();
    int iterations = 0;
    for (int i = 0; i < 2; i++) {
        iterations++;
        aw_with (PCM(&pA)) {
            logc('*');
            continue; /* leaves the block, not the enclosing iteration */
            logc('X');
        }
        logc('.');
    }
    cr_assert_str_eq(logbuf, "A*a.A*a.");
    cr_assert_eq(iterations, 2);
    cr_assert_eq(pA.exited, 2);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A1_exit_runs_on_continue) { aw_test_run(a1_continue, NULL, 0); }

static int return_from_with(probe_t *p, int x) {
    aw_with (PCM(p)) {
        logc('*');
        return x;
    }
    logc('X');
    return -1;
}

static int a1_return(void *arg) {
    probes_reset();
    int rc = return_from_with(&pA, 42);
    logc('.');
    cr_assert_eq(rc, 42);
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A1_exit_runs_on_return) { aw_test_run(a1_return, NULL, 0); }

static int a1_goto(void *arg) {
    probes_reset();
    aw_with (PCM(&pA)) {
        logc('*');
        goto out;
        logc('X');
    }
    logc('Y');
out:
    logc('.');
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A1_exit_runs_on_goto) { aw_test_run(a1_goto, NULL, 0); }

static int a1_error_leave(void *arg) {
    probes_reset();
    aw_with (PCM(&pA)) {
        logc('*');
        aw_raise(-EIO, "disk on fire");
        aw_leave();
        logc('X');
    }
    logc('.');
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, -EIO);
    cr_assert_str_eq(pA.exit_err_msg, "disk on fire");
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    return 0;
}

Test(with, A1_exit_runs_on_error_leave) { aw_test_run(a1_error_leave, NULL, 0); }

static int a1_error_fail(void *arg) {
    probes_reset();
    aw_with (PCM(&pA)) {
        logc('*');
        aw_fail(-EIO, "disk on fire: %d", 7);
        logc('X');
    }
    logc('.');
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, -EIO);
    cr_assert_str_eq(pA.exit_err_msg, "disk on fire: 7");
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    return 0;
}

Test(with, A1_exit_runs_on_error_fail) { aw_test_run(a1_error_fail, NULL, 0); }

/* A body that sleeps until cancelled, then leaves with the error. */
static int child_status_after;
static int sleepy_child(void *arg) {
    probe_t *p = arg;
    aw_with (PCM(p)) {
        logc('*');
        int rc = aw_sleep(AW_SEC(10));
        if (rc < 0)
            aw_leave();
        logc('X');
    }
    logc('.');
    child_status_after = aw_status();
    return aw_status();
}

static int a1_cancel(void *arg) {
    probes_reset();
    pA.exit_sleep_ms = 2; /* exit suspends: it runs shielded (decision 2) */
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, sleepy_child, &pA, &h), 0);
    cr_assert_eq(aw_sleep_ms(5), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(aw_status(), -ECANCELED);
    aw_err_clear();
    cr_assert_str_eq(logbuf, "A*a~.");
    cr_assert_eq(pA.entered, 1);
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, -ECANCELED);
    cr_assert_eq(pA.exit_sleep_rc, 0, "a shielded exit's sleep was cut by the cancel");
    cr_assert_geq(pA.exit_slept, AW_MS(2));
    cr_assert_eq(child_status_after, -ECANCELED);
    return 0;
}

Test(with, A1_exit_runs_on_cancel) { aw_test_run(a1_cancel, NULL, 0); }

static int a1_deadline(void *arg) {
    probes_reset();
    aw_ns_t t0 = aw_now();
    int body_rc = 1;
    aw_with (aw_scope_t *s, aw_fail_after(AW_MS(5))) {
        aw_with (PCM(&pA)) {
            logc('*');
            body_rc = aw_sleep(AW_SEC(10));
            if (body_rc < 0)
                aw_leave();
            logc('X');
        }
        logc('.');
        (void)s;
    }
    cr_assert_geq(aw_now() - t0, AW_MS(5));
    cr_assert_eq(body_rc, -ECANCELED);
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, -ECANCELED);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_not_null(aw_err_find(e, -ECANCELED), "the -ETIMEDOUT lost its -ECANCELED context");
    aw_err_clear();
    return 0;
}

Test(with, A1_exit_runs_on_deadline) { aw_test_run(a1_deadline, NULL, 0); }

/* ================= A2: enter fails ================= */

static int a2_raise(void *arg) {
    probes_reset();
    pA.enter_rc = -EACCES;
    pA.enter_raise = 1;
    int body = 0;
    aw_with (PCM(&pA)) {
        body = 1;
    }
    logc('.');
    cr_assert_eq(body, 0, "the body ran although enter failed");
    cr_assert_str_eq(logbuf, "A.");
    cr_assert_eq(pA.exited, 0, "exit was called although enter failed");
    cr_assert_eq(pA.held, 0);
    cr_assert_eq(aw_status(), -EACCES);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e, pA.enter_err, "the enter error was replaced, not propagated");
    cr_assert_str_eq(e->msg, "enter of A failed");
    cr_assert_null(e->context, "something was added to the enter error's context");
    cr_assert_eq(aw_err_count(e), 1);
    aw_err_clear();
    return 0;
}

Test(with, A2_enter_error_propagates_unchanged_and_exit_not_called) { aw_test_run(a2_raise, NULL, 0); }

static int a2_bare(void *arg) {
    probes_reset();
    pA.enter_rc = -EACCES; /* a bare code, no record */
    int body = 0;
    aw_with (PCM(&pA)) {
        body = 1;
    }
    cr_assert_eq(body, 0);
    cr_assert_eq(pA.exited, 0);
    cr_assert_eq(aw_status(), -EACCES);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_null(e->context);
    cr_assert_eq(aw_err_count(e), 1);
    aw_err_clear();
    return 0;
}

Test(with, A2_enter_bare_code_becomes_one_record_and_exit_not_called) { aw_test_run(a2_bare, NULL, 0); }

/* ================= A3: the `as` target ================= */

static int a3_value(void *arg) {
    probes_reset();
    static int resource = 1234;
    pA.value = &resource;
    int seen = 0;
    aw_with (int *r, PCM(&pA)) {
        cr_assert_eq(r, &resource);
        seen = *r;
    }
    cr_assert_eq(seen, 1234);
    /* default value: the probe itself */
    pB.value = NULL;
    aw_with (probe_t *q, PCM(&pB)) {
        cr_assert_eq(q, &pB);
    }
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A3_body_sees_enter_value) { aw_test_run(a3_value, NULL, 0); }

/* ================= A4: failure after enter, before the body's work ================= */

/* C has no failing `as (x, y)` unpacking; the analogue is the body's first
 * statement rejecting what enter produced. Exit is called with that error. */
static int a4_unpack(void *arg) {
    probes_reset();
    static int bad = -1;
    pA.value = &bad;
    aw_with (int *v, PCM(&pA)) {
        if (*v < 0) {
            aw_fail(-EINVAL, "enter produced %d, expected a positive value", *v);
        }
        logc('X');
    }
    cr_assert_str_eq(logbuf, "Aa");
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, -EINVAL);
    cr_assert_eq(aw_status(), -EINVAL);
    aw_err_clear();
    return 0;
}

Test(with, A4_failure_right_after_enter_reaches_exit) { aw_test_run(a4_unpack, NULL, 0); }

/* An error that enter raised and dealt with itself (a retry) is not the
 * block's error: a successful enter starts the body clean. */
static int a4_transient(void *arg) {
    probes_reset();
    pA.enter_transient = 1;
    aw_with (PCM(&pA)) {
        cr_assert_eq(aw_status(), 0, "an error handled inside a successful enter leaked into the body");
    }
    cr_assert_eq(pA.exited, 1);
    cr_assert_null(pA.exit_err);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A4_error_handled_inside_enter_does_not_reach_body_or_exit) { aw_test_run(a4_transient, NULL, 0); }

/* ================= A5: exit receives "no error" on normal ways out ================= */

static int a5_clean(void *arg) {
    probes_reset();
    /* end */
    aw_with (PCM(&pA)) {}
    cr_assert_eq(pA.exited, 1);
    cr_assert_null(pA.exit_err);
    /* return */
    pA.exit_err = (void *)1;
    cr_assert_eq(return_from_with(&pA, 7), 7);
    cr_assert_eq(pA.exited, 2);
    cr_assert_null(pA.exit_err);
    /* break */
    pA.exit_err = (void *)1;
    aw_with (PCM(&pA)) {
        break;
    }
    cr_assert_eq(pA.exited, 3);
    cr_assert_null(pA.exit_err);
    /* continue */
    pA.exit_err = (void *)1;
    aw_with (PCM(&pA)) {
        continue;
    }
    cr_assert_eq(pA.exited, 4);
    cr_assert_null(pA.exit_err);
    /* an error raised and handled inside the body */
    pA.exit_err = (void *)1;
    aw_with (PCM(&pA)) {
        aw_raise(-EIO, "handled below");
        aw_err_clear();
    }
    cr_assert_eq(pA.exited, 5);
    cr_assert_null(pA.exit_err);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A5_exit_receives_no_error_on_normal_way_out) { aw_test_run(a5_clean, NULL, 0); }

/* An error already pending before the block is not the block's error. */
static int a5_preexisting(void *arg) {
    probes_reset();
    aw_raise(-ENOENT, "raised before the block, not handled");
    const aw_err_t *before = aw_err_current();
    aw_with (PCM(&pA)) {
        logc('*');
    }
    cr_assert_eq(pA.exited, 1);
    cr_assert_null(pA.exit_err, "exit received an error raised before the block");
    cr_assert_eq(aw_err_current(), before);
    aw_err_clear();
    return 0;
}

Test(with, A5_error_pending_before_block_is_not_passed_to_exit) { aw_test_run(a5_preexisting, NULL, 0); }

/* ================= A6: exit receives the identical error ================= */

static int a6_identity(void *arg) {
    probes_reset();
    const aw_err_t *raised = NULL;
    int line = 0;
    aw_with (PCM(&pA)) {
        line = __LINE__ + 1;
        aw_raise(-EIO, "the body's error");
        raised = aw_err_current();
        aw_leave();
    }
    cr_assert_not_null(raised);
    cr_assert_eq(pA.exit_err, raised, "exit received a copy, not the body's record");
    cr_assert_eq(pA.exit_err_code, -EIO);
    cr_assert_str_eq(pA.exit_err_msg, "the body's error");
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e, raised);
    cr_assert_str_eq(e->file, __FILE__);
    cr_assert_eq(e->line, line, "origin line %d, expected %d", e->line, line);
    cr_assert_str_eq(e->func, "a6_identity");
    aw_err_clear();
    return 0;
}

Test(with, A6_exit_receives_identical_error_record) { aw_test_run(a6_identity, NULL, 0); }

/* ================= A7: suppress ================= */

static int a7_suppress(void *arg) {
    probes_reset();
    pA.exit_rc = AW_SUPPRESS;
    aw_with (PCM(&pA)) {
        logc('*');
        aw_fail(-EIO, "swallowed by exit");
        logc('X');
    }
    logc('.');
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_eq(pA.exit_err_code, -EIO);
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_err_current());
    return 0;
}

Test(with, A7_exit_suppress_continues_after_block) { aw_test_run(a7_suppress, NULL, 0); }

static int a7_keeps_older(void *arg) {
    probes_reset();
    pA.exit_rc = AW_SUPPRESS;
    aw_raise(-ENOENT, "pending before the block");
    const aw_err_t *before = aw_err_current();
    aw_with (PCM(&pA)) {
        aw_fail(-EIO, "swallowed by exit");
    }
    cr_assert_eq(pA.exit_err_code, -EIO);
    cr_assert_eq(aw_err_current(), before, "suppress dropped more than the block's error");
    cr_assert_eq(aw_status(), -ENOENT);
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}

Test(with, A7_suppress_swallows_only_the_blocks_error) { aw_test_run(a7_keeps_older, NULL, 0); }

/* ================= A8: exit returns 0: the error propagates unchanged ================= */

static int a8_propagate(void *arg) {
    probes_reset();
    const aw_err_t *raised = NULL;
    aw_with (PCM(&pA)) {
        aw_raise(-EIO, "propagates");
        raised = aw_err_current();
        aw_leave();
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e, raised, "the error was not re-raised as the same record");
    cr_assert_eq(e->code, -EIO);
    cr_assert_str_eq(e->msg, "propagates");
    cr_assert_null(e->context, "exit returning 0 added context");
    cr_assert_eq(aw_err_count(e), 1);
    aw_err_clear();
    return 0;
}

Test(with, A8_exit_returns_zero_error_propagates_unchanged) { aw_test_run(a8_propagate, NULL, 0); }

/* ================= A9: exit fails while handling an error ================= */

static int a9_chain(void *arg) {
    probes_reset();
    pA.exit_rc = -EPIPE;
    pA.exit_raise = 1;
    const aw_err_t *e1 = NULL;
    aw_with (PCM(&pA)) {
        aw_raise(-EIO, "E1");
        e1 = aw_err_current();
        aw_leave();
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_eq(e, pA.exit_raised);
    cr_assert_str_eq(e->msg, "exit of A failed");
    cr_assert_eq(e->context, e1, "E2's context is not E1");
    cr_assert_str_eq(e->context->msg, "E1");
    cr_assert_null(e1->context);
    cr_assert_eq(aw_err_count(e), 2);
    aw_err_clear();
    return 0;
}

Test(with, A9_exit_error_chains_body_error_as_context) { aw_test_run(a9_chain, NULL, 0); }

static int a9_bare(void *arg) {
    probes_reset();
    pA.exit_rc = -EPIPE; /* a bare code, no record */
    const aw_err_t *e1 = NULL;
    aw_with (PCM(&pA)) {
        aw_raise(-EIO, "E1");
        e1 = aw_err_current();
        aw_leave();
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_eq(e->context, e1);
    cr_assert_eq(aw_err_count(e), 2);
    aw_err_clear();
    return 0;
}

Test(with, A9_exit_bare_code_chains_body_error_as_context) { aw_test_run(a9_bare, NULL, 0); }

/* ================= A10: exit fails on the normal path ================= */

static int a10(void *arg) {
    probes_reset();
    pA.exit_rc = -EPIPE;
    pA.exit_raise = 1;
    aw_with (PCM(&pA)) {
        logc('*');
    }
    logc('.');
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_null(pA.exit_err);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_null(e->context, "an exit error on the normal path got a context");
    aw_err_clear();
    return 0;
}

Test(with, A10_exit_error_on_normal_path_has_no_context) { aw_test_run(a10, NULL, 0); }

/* ================= A11: exit fails on a `return x` path ================= */

/* Header (with.h): C cannot discard x, so `return x` still returns x and the
 * exit's error is pending in the caller (SEMANTICS says x is discarded). */
static int a11(void *arg) {
    probes_reset();
    pA.exit_rc = -EPIPE;
    pA.exit_raise = 1;
    int rc = return_from_with(&pA, 42);
    cr_assert_eq(rc, 42);
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(aw_status(), -EPIPE, "the exit error on the return path was lost");
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}

Test(with, A11_exit_error_on_return_path_is_pending_in_caller) { aw_test_run(a11, NULL, 0); }

/* ================= A12 ⚠: exit cannot swallow a cancel ================= */

static int a12_child_after_sleep;
static int a12_child(void *arg) {
    probe_t *p = arg;
    aw_with (PCM(p)) {
        int rc = aw_sleep(AW_SEC(10));
        if (rc < 0)
            aw_leave();
    }
    logc('.');
    child_status_after = aw_status();
    a12_child_after_sleep = aw_sleep_ms(1); /* level-triggered: still cancelled */
    return aw_status();
}

static int a12_no_swallow(void *arg) {
    probes_reset();
    pA.exit_rc = AW_SUPPRESS;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, a12_child, &pA, &h), 0);
    cr_assert_eq(aw_sleep_ms(5), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    aw_err_clear();
    cr_assert_str_eq(logbuf, "Aa.");
    cr_assert_eq(pA.exit_err_code, -ECANCELED);
    cr_assert_eq(child_status_after, -ECANCELED, "exit's AW_SUPPRESS swallowed the cancel");
    cr_assert_eq(a12_child_after_sleep, -ECANCELED);
    cr_assert_eq(rc, -ECANCELED);
    return 0;
}

Test(with, A12_exit_suppress_does_not_swallow_cancel) { aw_test_run(a12_no_swallow, NULL, 0); }

/* The explicit opt-in: AW_CM_SUPPRESS_CANCEL lets exit swallow the error.
 * The scope stays cancelled (level-triggered) until it is left. */
static int a12_opt_in(void *arg) {
    probes_reset();
    pA.exit_rc = AW_SUPPRESS;
    int body_rc = 1, inner_status = 1, again = 1;
    aw_with (aw_scope_t *s, aw_cancel_scope()) {
        aw_with (aw_cm(&probe_sc_type, &pA)) {
            aw_scope_cancel(s);
            body_rc = aw_sleep(AW_SEC(10));
            if (body_rc < 0)
                aw_leave();
        }
        inner_status = aw_status();
        again = aw_checkpoint();
    }
    cr_assert_eq(body_rc, -ECANCELED);
    cr_assert_eq(pA.exit_err_code, -ECANCELED);
    cr_assert_eq(inner_status, 0, "AW_CM_SUPPRESS_CANCEL did not let exit swallow the cancel");
    cr_assert_eq(again, -ECANCELED, "the scope stopped being cancelled");
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A12_suppress_cancel_flag_opts_in) { aw_test_run(a12_opt_in, NULL, 0); }

/* ================= A13: protocol checked before enter ================= */

static int a13(void *arg) {
    probes_reset();
    int body = 0;
    aw_with (aw_cm(&probe_noexit_type, &pA)) {
        body = 1;
    }
    cr_assert_eq(body, 0);
    cr_assert_eq(pA.entered, 0, "enter ran for a manager without exit");
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    const aw_err_t *e = aw_err_current();
    cr_assert(strstr(e->msg, "probe-noexit"), "message does not name the manager: %s", e->msg);
    cr_assert(strstr(e->msg, "exit"), "message does not say what is missing: %s", e->msg);
    aw_err_clear();

    aw_with (aw_cm(&probe_noenter_type, &pA)) {
        body = 1;
    }
    cr_assert_eq(body, 0);
    cr_assert_eq(pA.exited, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "probe-noenter"));
    aw_err_clear();

    aw_with (aw_cm(NULL, &pA)) {
        body = 1;
    }
    cr_assert_eq(body, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();
    cr_assert_str_eq(logbuf, "");
    return 0;
}

Test(with, A13_manager_without_exit_rejected_before_enter) { aw_test_run(a13, NULL, 0); }

/* ================= A14: invalid exit return value ================= */

/* exit's contract (cm.h): 0, AW_SUPPRESS or < 0. Anything else is a
 * protocol violation, reported with a message naming the manager; the
 * block's error is kept in its context. */
static int a14(void *arg) {
    probes_reset();
    pA.exit_rc = 7;
    aw_with (PCM(&pA)) {
        logc('*');
    }
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "exit returned 7; got %s", aw_err_name(aw_status()));
    cr_assert(strstr(aw_err_current()->msg, "probe"), "message does not name the manager: %s",
              aw_err_current()->msg);
    aw_err_clear();

    aw_with (PCM(&pA)) {
        aw_fail(-EIO, "E1");
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert_not_null(aw_err_find(aw_err_current(), -EIO), "the body error was lost");
    aw_err_clear();
    return 0;
}

Test(with, A14_invalid_exit_return_is_protocol_error) { aw_test_run(a14, NULL, 0); }

/* ================= A15: while exit is suspended, after-block waits ================= */

static int a15_after_started;
static int a15_watcher(void *arg) {
    logc('w');
    cr_assert_eq(a15_after_started, 0);
    return 0;
}

static int a15(void *arg) {
    probes_reset();
    pA.exit_sleep_ms = 5;
    aw_task_t *h;
    aw_ns_t t0 = aw_now();
    aw_with (PCM(&pA)) {
        cr_assert_eq(aw_spawn(NULL, a15_watcher, NULL, &h), 0);
        logc('*');
    }
    a15_after_started = 1;
    logc('.');
    cr_assert_geq(aw_now() - t0, AW_MS(5));
    cr_assert_eq(aw_task_join(h), 0);
    /* the watcher ran while exit slept, before the statement after the block */
    cr_assert_str_eq(logbuf, "A*aw~.");
    cr_assert_eq(pA.exit_sleep_rc, 0);
    return 0;
}

Test(with, A15_statement_after_block_waits_for_suspended_exit) { aw_test_run(a15, NULL, 0); }

/* ================= A16 ⚠: cancel while enter is suspended ================= */

/* A well-written enter cleans up what it acquired when cancelled while
 * suspended; exit is not called (enter failed) and nothing leaks. */
static int a16_child(void *arg) {
    probe_t *p = arg;
    aw_with (PCM(p)) {
        logc('*');
    }
    logc('.');
    child_status_after = aw_status();
    return aw_status();
}

static int a16_cancel(void *arg) {
    probes_reset();
    pA.enter_sleep_ms = 10000;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, a16_child, &pA, &h), 0);
    cr_assert_eq(aw_sleep_ms(5), 0);
    cr_assert_eq(pA.held, 1, "enter has not acquired yet");
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    aw_err_clear();
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_eq(child_status_after, -ECANCELED);
    cr_assert_str_eq(logbuf, "A.", "body or exit ran after a cancelled enter");
    cr_assert_eq(pA.entered, 1);
    cr_assert_eq(pA.exited, 0);
    cr_assert_eq(pA.held, 0, "the half-acquired resource leaked");
    return 0;
}

Test(with, A16_cancelled_enter_cleans_up_and_exit_not_called) { aw_test_run(a16_cancel, NULL, 0); }

static int a16_deadline(void *arg) {
    probes_reset();
    pA.enter_sleep_ms = 10000;
    aw_ns_t t0 = aw_now();
    aw_with (aw_fail_after(AW_MS(5))) {
        aw_with (PCM(&pA)) {
            logc('*');
        }
        logc('.');
    }
    cr_assert_geq(aw_now() - t0, AW_MS(5));
    cr_assert_str_eq(logbuf, "A.");
    cr_assert_eq(pA.exited, 0);
    cr_assert_eq(pA.held, 0);
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}

Test(with, A16_enter_cut_by_deadline_cleans_up_and_exit_not_called) { aw_test_run(a16_deadline, NULL, 0); }

/* ================= A17: a class-style manager can be re-entered ================= */

static int a17(void *arg) {
    probes_reset();
    aw_cm_t cm = PCM(&pA); /* one manager value, used three times */
    for (int i = 0; i < 3; i++) {
        aw_with (probe_t *p, cm) {
            cr_assert_eq(p, &pA);
            logc('*');
            if (i == 0) {
                aw_fail(-EIO, "first use fails");
            }
        }
        if (i == 0) {
            cr_assert_eq(pA.exit_err_code, -EIO);
            cr_assert_eq(aw_status(), -EIO);
            aw_err_clear();
        } else {
            cr_assert_null(pA.exit_err, "a stale error reached a later use");
        }
    }
    cr_assert_str_eq(logbuf, "A*aA*aA*a");
    cr_assert_eq(pA.entered, 3);
    cr_assert_eq(pA.exited, 3);
    cr_assert_eq(pA.held, 0);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, A17_class_manager_reentered_after_exit) { aw_test_run(a17, NULL, 0); }

/* ================= B: several managers ================= */

static int b1(void *arg) {
    probes_reset();
    aw_with (PCM(&pA))
    aw_with (PCM(&pB))
    aw_with (PCM(&pC)) {
        logc('*');
    }
    logc('.');
    cr_assert_str_eq(logbuf, "ABC*cba.");
    char stacked[32];
    strcpy(stacked, logbuf);
    /* the same with explicit nesting */
    probes_reset();
    aw_with (PCM(&pA)) {
        aw_with (PCM(&pB)) {
            aw_with (PCM(&pC)) {
                logc('*');
            }
        }
    }
    logc('.');
    cr_assert_str_eq(logbuf, stacked);
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, B1_stacked_enter_in_order_exit_in_reverse) { aw_test_run(b1, NULL, 0); }

static int b2(void *arg) {
    probes_reset();
    pB.enter_rc = -EACCES;
    pB.enter_raise = 1;
    int body = 0;
    aw_with (PCM(&pA))
    aw_with (PCM(&pB))
    aw_with (PCM(&pC)) {
        body = 1;
    }
    logc('.');
    cr_assert_eq(body, 0);
    cr_assert_str_eq(logbuf, "ABa.");
    cr_assert_eq(pA.exited, 1);
    cr_assert_eq(pA.exit_err_code, -EACCES, "A's exit did not receive B's enter error");
    cr_assert_eq(pA.exit_err, pB.enter_err);
    cr_assert_eq(pB.exited, 0, "B's exit was called although its enter failed");
    cr_assert_eq(pC.entered, 0, "C was entered after B failed");
    cr_assert_eq(aw_status(), -EACCES);
    cr_assert_eq(aw_err_current(), pB.enter_err);
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}

Test(with, B2_second_enter_fails_first_exits_third_never_enters) { aw_test_run(b2, NULL, 0); }

static int b3(void *arg) {
    probes_reset();
    pB.exit_rc = AW_SUPPRESS;
    aw_with (PCM(&pA))
    aw_with (PCM(&pB))
    aw_with (PCM(&pC)) {
        aw_fail(-EIO, "E1");
    }
    logc('.');
    cr_assert_str_eq(logbuf, "ABCcba.");
    cr_assert_eq(pC.exit_err_code, -EIO);
    cr_assert_eq(pB.exit_err_code, -EIO);
    cr_assert_null(pA.exit_err, "A saw an error that B suppressed");
    cr_assert_eq(aw_status(), 0);
    return 0;
}

Test(with, B3_outer_exit_sees_error_as_inner_left_it) { aw_test_run(b3, NULL, 0); }

static int b4(void *arg) {
    probes_reset();
    pB.exit_rc = -EPIPE;
    pB.exit_raise = 1;
    const aw_err_t *e1 = NULL;
    aw_with (PCM(&pA))
    aw_with (PCM(&pB)) {
        aw_raise(-EIO, "E1");
        e1 = aw_err_current();
        aw_leave();
    }
    cr_assert_str_eq(logbuf, "ABba");
    cr_assert_eq(pB.exit_err, e1);
    cr_assert_eq(pA.exit_err_code, -EPIPE, "A did not receive E2");
    cr_assert_eq(pA.exit_err, pB.exit_raised);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e, pB.exit_raised);
    cr_assert_eq(e->context, e1, "E2.context is not E1");
    aw_err_clear();
    return 0;
}

Test(with, B4_outer_exit_receives_inner_exit_error_with_context) { aw_test_run(b4, NULL, 0); }

static int b5(void *arg) {
    probes_reset();
    pB.exit_rc = -EPIPE;
    pB.exit_raise = 1;
    pA.exit_rc = AW_SUPPRESS;
    aw_with (PCM(&pA))
    aw_with (PCM(&pB)) {
        aw_fail(-EIO, "E1");
    }
    logc('.');
    cr_assert_str_eq(logbuf, "ABba.");
    cr_assert_eq(pA.exit_err_code, -EPIPE);
    cr_assert_eq(aw_status(), 0, "A suppressed E2 but %s is pending", aw_err_name(aw_status()));
    cr_assert_null(aw_err_current());
    return 0;
}

Test(with, B5_outer_suppress_completes_statement) { aw_test_run(b5, NULL, 0); }

static void b6_setup(void) {
    probes_reset();
    pA.exit_rc = -ENOSPC;
    pB.exit_rc = -EPIPE;
    pC.exit_rc = -EIO;
    pA.exit_raise = pB.exit_raise = pC.exit_raise = 1;
}

static int b6(void *arg) {
    b6_setup();
    aw_with (PCM(&pA))
    aw_with (PCM(&pB))
    aw_with (PCM(&pC)) {
        logc('*');
    }
    cr_assert_str_eq(logbuf, "ABC*cba");
    cr_assert_null(pC.exit_err);
    cr_assert_eq(pB.exit_err_code, -EIO);
    cr_assert_eq(pA.exit_err_code, -EPIPE);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ENOSPC);
    cr_assert_str_eq(e->msg, "exit of A failed");
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EPIPE);
    cr_assert_str_eq(e->context->msg, "exit of B failed");
    cr_assert_not_null(e->context->context);
    cr_assert_eq(e->context->context->code, -EIO);
    cr_assert_str_eq(e->context->context->msg, "exit of C failed");
    cr_assert_null(e->context->context->context);
    aw_err_clear();
    return 0;
}

Test(with, B6_all_exits_fail_chain_A_B_C) { aw_test_run(b6, NULL, 0); }

static int b7(void *arg) {
    probes_reset();
    pC.exit_rc = -EIO;
    pC.exit_raise = 1;
    pB.exit_rc = -EPIPE; /* bare code */
    pB.exit_sleep_ms = 1;
    aw_with (PCM(&pA))
    aw_with (PCM(&pB))
    aw_with (PCM(&pC)) {
        aw_fail(-ENOENT, "body");
    }
    logc('.');
    cr_assert_str_eq(logbuf, "ABCcb~a.");
    cr_assert_eq(pA.exited, 1, "a failing inner exit skipped the outer one");
    cr_assert_eq(pB.exited, 1);
    cr_assert_eq(pC.exited, 1);
    cr_assert_eq(pA.held + pB.held + pC.held, 0);
    int codes[8];
    int n = chain_codes(aw_err_current(), codes, 8);
    cr_assert_eq(n, 3);
    cr_assert_eq(codes[0], -EPIPE);
    cr_assert_eq(codes[1], -EIO);
    cr_assert_eq(codes[2], -ENOENT);
    aw_err_clear();
    return 0;
}

Test(with, B7_failing_inner_exit_never_skips_outer_exit) { aw_test_run(b7, NULL, 0); }

/* ================= (c)7: every exit error kept, in order, acyclic ================= */

static int c7_codes_stacked[8], c7_n_stacked;
static char c7_msgs_stacked[8][64];

static int c7(void *arg) {
    b6_setup();
    aw_with (PCM(&pA))
    aw_with (PCM(&pB))
    aw_with (PCM(&pC)) {
        logc('*');
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    c7_n_stacked = chain_codes(e, c7_codes_stacked, 8);
    cr_assert_eq(c7_n_stacked, 3);
    cr_assert_eq(aw_err_count(e), 3);
    cr_assert_eq(c7_codes_stacked[0], -ENOSPC, "the final error is not A's");
    cr_assert_eq(c7_codes_stacked[1], -EPIPE);
    cr_assert_eq(c7_codes_stacked[2], -EIO);
    int i = 0;
    for (const aw_err_t *x = e; x; x = x->context, i++)
        snprintf(c7_msgs_stacked[i], sizeof c7_msgs_stacked[i], "%s", x->msg);
    /* no record appears twice */
    cr_assert_neq(e, e->context);
    cr_assert_neq(e, e->context->context);
    cr_assert_neq(e->context, e->context->context);
    aw_err_clear();

    /* the same with three explicitly nested blocks */
    b6_setup();
    aw_with (PCM(&pA)) {
        aw_with (PCM(&pB)) {
            aw_with (PCM(&pC)) {
                logc('*');
            }
        }
    }
    e = aw_err_current();
    int codes[8];
    int n = chain_codes(e, codes, 8);
    cr_assert_eq(n, c7_n_stacked);
    i = 0;
    for (const aw_err_t *x = e; x; x = x->context, i++) {
        cr_assert_eq(x->code, c7_codes_stacked[i]);
        cr_assert_str_eq(x->msg, c7_msgs_stacked[i]);
    }
    aw_err_clear();
    return 0;
}

Test(with, c7_every_exit_error_kept_in_order_acyclic) { aw_test_run(c7, NULL, 0); }

/* ================= (c)13: cleanup errors are never orphaned ================= */

static int c13_child(void *arg) {
    probe_t *p = arg;
    aw_with (PCM(p)) {
        int rc = aw_sleep(AW_SEC(10));
        if (rc < 0)
            aw_leave();
    }
    child_status_after = aw_status();
    cr_assert_not_null(aw_err_find(aw_err_current(), -EIO), "the close failure was dropped");
    return aw_status();
}

static int c13(void *arg) {
    probes_reset();
    pA.exit_rc = -EIO; /* close fails */
    pA.exit_raise = 1;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, c13_child, &pA, &h), 0);
    cr_assert_eq(aw_sleep_ms(5), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(rc, -ECANCELED, "the task's final status is %s", aw_err_name(rc));
    cr_assert_eq(child_status_after, -ECANCELED);
    cr_assert_eq(pA.exit_err_code, -ECANCELED);
    const aw_err_t *e = aw_err_current(); /* the joined copy */
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ECANCELED);
    const aw_err_t *close = aw_err_find(e, -EIO);
    cr_assert_not_null(close, "the close failure is not in the cancel's chain");
    cr_assert_str_eq(close->msg, "exit of A failed");
    int codes[8];
    chain_codes(e, codes, 8);
    aw_err_clear();
    return 0;
}

Test(with, c13_cancel_then_failing_close_keeps_both) { aw_test_run(c13, NULL, 0); }

/* ================= K3: exit runs for a cancel, not only for errors ================= */

static int k3_child(void *arg) {
    aw_with (PCM((probe_t *)arg)) {
        logc('*');
        aw_sleep(AW_SEC(10));
        logc('!'); /* the body goes on after the failed sleep: the exit still sees the cancel */
    }
    return aw_status();
}
static int k3(void *arg) {
    probes_reset();
    pA.exit_sleep_ms = 1; /* cleanup that suspends */
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, k3_child, &pA, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    cr_assert_eq(aw_task_join(h), -ECANCELED);
    aw_err_clear();
    cr_assert_str_eq(logbuf, "A*!a~");
    cr_assert_eq(pA.exited, 1, "exit ran for the cancel");
    cr_assert_eq(pA.held, 0, "and released");
    cr_assert_eq(pA.exit_err_code, -ECANCELED, "it received the cancel, like any error");
    cr_assert_eq(pA.exit_sleep_rc, 0, "and its cleanup could suspend");
    return 0;
}
Test(with, K3_exit_runs_for_a_cancel_not_only_for_errors) { aw_test_run(k3, NULL, 0); }

/* ================= K5: a close error is never dropped ================= */

/* The body succeeded and the close (exit) fails: on the normal path the
 * error is what leaves the block; on a `return 0` path (Go's
 * `defer f.Close(); return nil`) it is pending in the caller, and a task
 * that returns 0 from inside the block fails with it. */
static int k5_task(void *arg) {
    aw_with (PCM((probe_t *)arg)) {
        logc('*');
        return 0; /* the body succeeded; the close fails after this */
    }
    return -1;
}
/* Left by `break`, the code after the block runs and can see the error:
 * returning 0 there is a decision, and handles it (no late marking). */
static int k5_break_task(void *arg) {
    aw_with (PCM((probe_t *)arg)) {
        logc('*');
        break;
    }
    return aw_status() == -EIO ? 0 : -EINVAL;
}
static int k5(void *arg) {
    probes_reset();
    pA.exit_rc = -EIO;
    pA.exit_raise = 1;
    aw_with (PCM(&pA)) {
    }
    cr_assert_eq(aw_status(), -EIO, "normal path");
    aw_err_clear();
    cr_assert_eq(return_from_with(&pA, 0), 0);
    cr_assert_eq(aw_status(), -EIO, "return path: pending in the caller");
    aw_err_clear();
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, k5_task, &pA, &h), 0);
    cr_assert_eq(aw_task_join(h), -EIO, "a task returning 0 from inside the block");
    cr_assert_not_null(aw_err_current());
    cr_assert_str_eq(aw_err_current()->msg, "exit of A failed");
    aw_err_clear();
    cr_assert_eq(aw_spawn(NULL, k5_break_task, &pA, &h), 0);
    cr_assert_eq(aw_task_join(h), 0, "left by break: the code after the block saw it");
    cr_assert_eq(pA.exited, 4);
    return 0;
}
Test(with, K5_a_close_error_is_reported_even_when_the_body_succeeded) { aw_test_run(k5, NULL, 0); }

/* ================= M2: an exit (or enter) handles only its own errors ================= */

/* A manager whose enter and exit each raise an error of their own and
 * handle it on the spot, the C spelling of try/except inside __aexit__:
 * `if (aw_raise(...) < 0) aw_err_clear();`. The exit then returns
 * `exit_rc`, or the code of the error it was handed when `reraise`. */
typedef struct {
    int entered, exited;
    int exit_rc;
    int reraise;
    int seen_code;            /* the code of what exit was handed */
    int after_clear_code;     /* err->code read again after the clear */
} selfh_t;

static int selfh_enter(void *self, void **out) {
    selfh_t *s = self;
    s->entered++;
    if (aw_raise(-EAGAIN, "transient failure in enter, handled") < 0)
        aw_err_clear();
    *out = s;
    return 0;
}

static int selfh_exit(void *self, const aw_err_t *err) {
    selfh_t *s = self;
    s->exited++;
    s->seen_code = err ? err->code : 0;
    if (aw_raise(-EIO, "cleanup hiccup, handled by the exit itself") < 0)
        aw_err_clear();
    /* the record it was handed is still the block's: readable after the clear */
    s->after_clear_code = err ? err->code : 0;
    if (s->reraise)
        return err ? err->code : 0;
    return s->exit_rc;
}

static const aw_cm_type_t selfh_type = {.name = "self-handling", .enter = selfh_enter,
                                        .exit = selfh_exit};

static int m2_body_error(void *arg) {
    selfh_t s = {0};
    aw_with (aw_cm(&selfh_type, &s)) {
        aw_fail(-EINVAL, "the body's own failure");
    }
    cr_assert_eq(s.seen_code, -EINVAL);
    cr_assert_eq(s.after_clear_code, -EINVAL);
    cr_assert_eq(aw_status(), -EINVAL, "the exit's clear erased the block's error (got %s)",
                 aw_err_name(aw_status()));
    cr_assert_eq(aw_err_count(aw_err_current()), 1, "the exit's own record leaked out");
    cr_assert_str_eq(aw_err_current()->msg, "the body's own failure");
    aw_err_clear();
    return 0;
}
Test(with, M2_exit_clearing_its_own_error_keeps_the_blocks_error) { aw_test_run(m2_body_error, NULL, 0); }

static int m2_reraise(void *arg) {
    selfh_t s = {.reraise = 1};
    aw_with (aw_cm(&selfh_type, &s)) {
        aw_fail(-EINVAL, "the body's own failure");
    }
    cr_assert_eq(aw_status(), -EINVAL, "returning the body's code after a clear left the block "
                 "clean (cm.h: < 0 is a failure)");
    cr_assert_eq(aw_err_count(aw_err_current()), 1, "the body's error was chained to itself");
    aw_err_clear();
    return 0;
}
Test(with, M2_exit_returning_the_body_code_after_its_own_clear_leaves_the_block_failed) {
    aw_test_run(m2_reraise, NULL, 0);
}

static int m2_cancel_child(void *arg) {
    selfh_t *s = arg;
    aw_with (aw_cm(&selfh_type, s)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}

static int m2_cancel(void *arg) {
    selfh_t s = {0};
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, m2_cancel_child, &s, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(s.seen_code, -ECANCELED);
    cr_assert_eq(rc, -ECANCELED, "the exit's clear erased the cancel: the task ended with %s",
                 aw_err_name(rc));
    aw_err_clear();
    return 0;
}
Test(with, M2_exit_clearing_its_own_error_keeps_a_pending_cancel) { aw_test_run(m2_cancel, NULL, 0); }

static int m2_enter(void *arg) {
    selfh_t s = {0};
    aw_raise(-EBADF, "an error the task has not handled yet");
    aw_with (aw_cm(&selfh_type, &s)) {
        cr_assert_eq(aw_status(), -EBADF, "the enter's clear erased an older pending error");
    }
    cr_assert_eq(s.entered, 1);
    cr_assert_eq(s.seen_code, 0, "the older error is not the block's");
    cr_assert_eq(aw_status(), -EBADF, "the enter's or exit's clear erased an older pending error");
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    aw_err_clear();
    return 0;
}
Test(with, M2_enter_clearing_its_own_error_keeps_older_pending_errors) { aw_test_run(m2_enter, NULL, 0); }

/* A block nested inside an exit: its body's clear handles what that body
 * raised, never the error the outer exit was handed. */
static int m2n_exit(void *self, const aw_err_t *err) {
    selfh_t *s = self;
    s->exited++;
    s->seen_code = err ? err->code : 0;
    aw_with (PCM(&pB)) {
        if (aw_raise(-EIO, "raised and handled in a block inside the exit") < 0)
            aw_err_clear();
    }
    s->after_clear_code = err ? err->code : 0;
    return 0;
}
static const aw_cm_type_t m2n_type = {.name = "nested-in-exit", .enter = selfh_enter, .exit = m2n_exit};

static int m2_nested(void *arg) {
    probes_reset();
    selfh_t s = {0};
    aw_with (aw_cm(&m2n_type, &s)) {
        aw_fail(-EINVAL, "the body's own failure");
    }
    cr_assert_eq(pB.exited, 1);
    cr_assert_eq(pB.exit_err_code, 0, "the inner block's error was handled in its body");
    cr_assert_eq(s.after_clear_code, -EINVAL);
    cr_assert_eq(aw_status(), -EINVAL, "a clear in a block inside the exit erased the block's error");
    aw_err_clear();
    return 0;
}
Test(with, M2_clear_in_a_block_inside_an_exit_keeps_the_outer_blocks_error) {
    aw_test_run(m2_nested, NULL, 0);
}

/* ================= audit of A and B: the halves the tests above leave out ================= */

/* A8's second sentence: records the exit raised and left pending are
 * dropped when it returns 0, on an error path and on a clean one. */
static int a8r_exit(void *self, const aw_err_t *err) {
    probe_t *p = self;
    p->exited++;
    p->exit_err = err;
    aw_raise(-EPIPE, "raised by exit %c, then returned 0", p->id);
    return 0;
}
static const aw_cm_type_t a8r_type = {.name = "a8r", .enter = probe_enter, .exit = a8r_exit};

static int a8_exit_record_dropped(void *arg) {
    probes_reset();
    const aw_err_t *raised = NULL;
    aw_with (aw_cm(&a8r_type, &pA)) {
        aw_raise(-EIO, "E1");
        raised = aw_err_current();
        aw_leave();
    }
    cr_assert_eq(pA.exit_err, raised);
    cr_assert_eq(aw_err_current(), raised, "the block's record is not what propagates");
    cr_assert_eq(aw_err_count(aw_err_current()), 1, "the exit's own record was kept");
    cr_assert_null(aw_err_find(aw_err_current(), -EPIPE));
    aw_err_clear();
    aw_with (aw_cm(&a8r_type, &pA)) {
        logc('*');
    }
    cr_assert_eq(pA.exited, 2);
    cr_assert_eq(aw_status(), 0, "a record exit left pending with return 0 leaked: %s",
                 aw_err_name(aw_status()));
    return 0;
}

Test(with, A8_records_an_exit_raised_before_returning_0_are_dropped) {
    aw_test_run(a8_exit_record_dropped, NULL, 0);
}

/* A9's last sentence: an exit that returns E1's own code and raises
 * nothing re-raises E1: the same record, no new one, no self-chain. */
static int a9_same_code(void *arg) {
    probes_reset();
    pA.exit_rc = -EIO; /* the body's code, bare */
    const aw_err_t *e1 = NULL;
    aw_with (PCM(&pA)) {
        aw_raise(-EIO, "E1");
        e1 = aw_err_current();
        aw_leave();
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e, e1, "a new record was made for a re-raise");
    cr_assert_null(e->context, "the re-raise chained E1 to something");
    cr_assert_eq(aw_err_count(e), 1);
    aw_err_clear();
    return 0;
}

Test(with, A9_exit_returning_the_blocks_code_bare_reraises_it_unchanged) {
    aw_test_run(a9_same_code, NULL, 0);
}

/* A9: the record made from an exit's bare code names the manager. */
static int a9_bare_names(void *arg) {
    probes_reset();
    pA.exit_rc = -EPIPE;
    aw_with (PCM(&pA)) {
        aw_fail(-EIO, "E1");
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert(strstr(e->msg, "probe"), "the record made for a bare exit code does not name the manager: %s",
              e->msg);
    aw_err_clear();
    return 0;
}

Test(with, A9_a_bare_exit_code_becomes_a_record_naming_the_manager) { aw_test_run(a9_bare_names, NULL, 0); }

/* A10: an exit failing on a clean way out gets as context what was
 * pending before the block, and nothing else. */
static int a10_pending(void *arg) {
    probes_reset();
    pA.exit_rc = -EPIPE;
    pA.exit_raise = 1;
    aw_raise(-ENOENT, "pending before the block");
    const aw_err_t *before = aw_err_current();
    aw_with (PCM(&pA)) {
        logc('*');
    }
    cr_assert_null(pA.exit_err);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_eq(e->context, before, "the exit error's context is not the older error");
    cr_assert_eq(aw_err_count(e), 2);
    aw_err_clear();
    return 0;
}

Test(with, A10_exit_error_context_is_only_what_was_pending_before) { aw_test_run(a10_pending, NULL, 0); }

/* A11's second sentence: a task function that returns 0 from inside a
 * block whose exit fails ends with the exit's error as its status. */
static int a11_task(void *arg) {
    probe_t *p = arg;
    aw_with (PCM(p)) {
        return 0;
    }
    return 0;
}

static int a11_task_status(void *arg) {
    probes_reset();
    pA.exit_rc = -EPIPE;
    pA.exit_raise = 1;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, a11_task, &pA, &h), 0);
    int rc = aw_task_join(h);
    cr_assert_eq(rc, -EPIPE, "the task ended with %s, not its exit's error", aw_err_name(rc));
    aw_err_clear();
    /* bare code too */
    probes_reset();
    pA.exit_rc = -EPIPE;
    cr_assert_eq(aw_spawn(NULL, a11_task, &pA, &h), 0);
    rc = aw_task_join(h);
    cr_assert_eq(rc, -EPIPE);
    aw_err_clear();
    return 0;
}

Test(with, A11_a_task_returning_0_through_a_failing_exit_ends_with_its_error) {
    aw_test_run(a11_task_status, NULL, 0);
}

/* A14: the protocol error names the value exit returned. */
static int a14_value(void *arg) {
    probes_reset();
    pA.exit_rc = 7;
    aw_with (PCM(&pA)) {
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert(strstr(aw_err_current()->msg, "7"), "the message does not name the value: %s",
              aw_err_current()->msg);
    aw_err_clear();
    /* A7: only AW_SUPPRESS suppresses; 2 neither suppresses nor passes */
    pA.exit_rc = 2;
    aw_with (PCM(&pA)) {
        aw_fail(-EIO, "E1");
    }
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "a positive value other than AW_SUPPRESS: %s",
                 aw_err_name(aw_status()));
    cr_assert_not_null(aw_err_find(aw_err_current(), -EIO));
    aw_err_clear();
    return 0;
}

Test(with, A14_A7_the_protocol_error_names_the_value_and_only_1_suppresses) {
    aw_test_run(a14_value, NULL, 0);
}

/* A14 under a cancel: an invalid exit value on a cancelled block keeps
 * the cancel on top (decision 3 / M4: a protocol error cannot hide it). */
static int a14_cancel_child(void *arg) {
    probe_t *p = arg;
    aw_with (PCM(p)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    child_status_after = aw_status();
    return aw_status();
}

static int a14_cancel(void *arg) {
    probes_reset();
    pA.exit_rc = 7;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, a14_cancel_child, &pA, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(pA.exited, 1);
    cr_assert(rc == -ECANCELED || rc == -AW_EPROTOCOL, "%s", aw_err_name(rc));
    cr_assert_not_null(aw_err_find(aw_err_current(), -ECANCELED), "the cancel left the chain");
    cr_assert_not_null(aw_err_find(aw_err_current(), -AW_EPROTOCOL), "the protocol error was lost");
    aw_err_clear();
    return 0;
}

Test(with, A14_an_invalid_exit_value_on_a_cancelled_block_keeps_both) { aw_test_run(a14_cancel, NULL, 0); }

/* A12 with a deadline: an exit returning AW_SUPPRESS on a block cut by its
 * deadline cannot swallow it; the fail-after still leaves with -ETIMEDOUT. */
static int a12_deadline(void *arg) {
    probes_reset();
    pA.exit_rc = AW_SUPPRESS;
    int after_block = 1;
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (PCM(&pA)) {
            if (aw_sleep(AW_SEC(10)) < 0)
                aw_leave();
        }
        after_block = aw_status();
    }
    cr_assert_eq(pA.exit_err_code, -ECANCELED);
    cr_assert_eq(after_block, -ECANCELED, "exit's AW_SUPPRESS swallowed the deadline's cancel");
    cr_assert_eq(aw_status(), -ETIMEDOUT);
    aw_err_clear();
    return 0;
}

Test(with, A12_exit_suppress_does_not_swallow_a_deadline) { aw_test_run(a12_deadline, NULL, 0); }

/* A12: suppressing a non-cancel error raised after a cancel (the body
 * failed differently while cancelled) drops that error, but the scope is
 * still cancelled: the next cancellation point returns -ECANCELED and the
 * task ends cancelled. */
static int a12_other_child(void *arg) {
    probe_t *p = arg;
    aw_with (PCM(p)) {
        if (aw_sleep(AW_SEC(10)) < 0) {
            aw_fail(-EIO, "the body failed while cancelled");
        }
    }
    a12_child_after_sleep = aw_sleep_ms(1);
    return aw_status();
}

static int a12_other(void *arg) {
    probes_reset();
    pA.exit_rc = AW_SUPPRESS;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, a12_other_child, &pA, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(pA.exit_err_code, -EIO);
    cr_assert_eq(a12_child_after_sleep, -ECANCELED, "the task stopped being cancelled");
    cr_assert_eq(rc, -ECANCELED, "%s", aw_err_name(rc));
    aw_err_clear();
    return 0;
}

Test(with, A12_suppressing_another_error_leaves_the_task_cancelled) { aw_test_run(a12_other, NULL, 0); }

/* A2 under a deadline: enter failing on its own (not cut) inside a
 * deadline that has not fired propagates unchanged; and B2 with a bare
 * enter code: A's exit receives the record made for it. */
static int a2_b2_bare(void *arg) {
    probes_reset();
    pB.enter_rc = -EACCES; /* bare */
    aw_with (aw_fail_after(AW_SEC(10))) {
        aw_with (PCM(&pA))
        aw_with (PCM(&pB))
        aw_with (PCM(&pC)) {
            logc('*');
        }
    }
    cr_assert_str_eq(logbuf, "ABa");
    cr_assert_eq(pA.exit_err_code, -EACCES);
    cr_assert_not_null(pA.exit_err);
    cr_assert_eq(aw_status(), -EACCES);
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    cr_assert(strstr(aw_err_current()->msg, "probe"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}

Test(with, B2_A2_a_bare_enter_code_reaches_the_outer_exit_as_one_record) { aw_test_run(a2_b2_bare, NULL, 0); }

/* B3 with a cancel: B suppressing a cancelled block cannot clear it for A
 * (decision 3): A still receives -ECANCELED. */
static int b3_cancel_child(void *arg) {
    aw_with (PCM(&pA))
    aw_with (PCM(&pB)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    return aw_status();
}

static int b3_cancel(void *arg) {
    probes_reset();
    pB.exit_rc = AW_SUPPRESS;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, b3_cancel_child, NULL, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(pB.exit_err_code, -ECANCELED);
    cr_assert_eq(pA.exit_err_code, -ECANCELED, "B's suppress hid the cancel from A");
    cr_assert_eq(rc, -ECANCELED);
    aw_err_clear();
    return 0;
}

Test(with, B3_an_inner_suppress_of_a_cancel_still_shows_it_to_the_outer_exit) { aw_test_run(b3_cancel, NULL, 0); }

/* B6/B7 under a deadline: all three exits fail after the deadline cut the
 * body; every exit runs, and the chain keeps every failure, the
 * -ETIMEDOUT and the -ECANCELED (G10 order: failures, timeout, cancel). */
static int b6_deadline(void *arg) {
    b6_setup();
    aw_with (aw_fail_after(AW_MS(2))) {
        aw_with (PCM(&pA))
        aw_with (PCM(&pB))
        aw_with (PCM(&pC)) {
            if (aw_sleep(AW_SEC(10)) < 0)
                aw_leave();
        }
    }
    cr_assert_eq(pA.exited + pB.exited + pC.exited, 3);
    cr_assert_eq(pC.exit_err_code, -ECANCELED);
    /* the cancel may be recorded again above each exit that failed while
     * it unwound (c13); the failures, the timeout and the cancel that
     * started it all must be there, in this order */
    int codes[16];
    int n = chain_codes(aw_err_current(), codes, 16);
    int want[] = {-ENOSPC, -EPIPE, -EIO, -ETIMEDOUT}, k = 0;
    for (int i = 0; i < n; i++) {
        if (codes[i] == -ECANCELED)
            continue;
        cr_assert_lt(k, 4, "an unexpected %s in the chain", aw_err_name(codes[i]));
        cr_assert_eq(codes[i], want[k], "link %d is %s", i, aw_err_name(codes[i]));
        k++;
    }
    cr_assert_eq(k, 4, "a failure was lost");
    cr_assert_eq(codes[0], -ENOSPC, "the outermost failure is not on top");
    cr_assert_eq(codes[n - 1], -ECANCELED, "the cancel the deadline caused is not at the bottom");
    aw_err_clear();
    return 0;
}

Test(with, B6_every_exit_failure_after_a_deadline_is_kept_with_the_timeout) { aw_test_run(b6_deadline, NULL, 0); }

/* A1/A5: aw_leave() with no error pending is a clean way out. */
static int a1_leave_clean(void *arg) {
    probes_reset();
    pA.exit_err = (void *)1;
    aw_with (PCM(&pA)) {
        logc('*');
        aw_leave();
        logc('X');
    }
    logc('.');
    cr_assert_str_eq(logbuf, "A*a.");
    cr_assert_null(pA.exit_err);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(with, A1_A5_aw_leave_without_an_error_is_a_clean_way_out) { aw_test_run(a1_leave_clean, NULL, 0); }

/* A2 in a cancelled task: enter failing with its own error after the
 * cancel arrived keeps both (decision 5), with the cancel on top. */
static int a2_cancel_enter(void *self, void **out) {
    int rc = aw_sleep(AW_SEC(10));
    if (rc < 0)
        return aw_raise(-EIO, "enter gave up after the cancel");
    return 0;
}
static const aw_cm_type_t a2c_type = {.name = "a2c", .enter = a2_cancel_enter, .exit = probe_exit};
static int a2c_child(void *arg) {
    aw_with (aw_cm(&a2c_type, &pA)) {
        logc('*');
    }
    return aw_status();
}
static int a2_cancel(void *arg) {
    probes_reset();
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, a2c_child, NULL, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(pA.exited, 0);
    cr_assert_str_eq(logbuf, "");
    cr_assert(rc == -EIO || rc == -ECANCELED, "%s", aw_err_name(rc));
    cr_assert_not_null(aw_err_find(aw_err_current(), -ECANCELED));
    cr_assert_not_null(aw_err_find(aw_err_current(), -EIO));
    aw_err_clear();
    return 0;
}
Test(with, A2_an_enter_failing_after_a_cancel_keeps_both) { aw_test_run(a2_cancel, NULL, 0); }

/* B2 with a cancel: the 2nd enter is cut while suspended (it releases
 * what it took); the 1st exits with -ECANCELED, the 3rd never enters,
 * the 2nd's exit is never called. */
static int b2c_child(void *arg) {
    aw_with (PCM(&pA))
    aw_with (PCM(&pB))
    aw_with (PCM(&pC)) {
        logc('*');
    }
    return aw_status();
}
static int b2_cancel(void *arg) {
    probes_reset();
    pB.enter_sleep_ms = 10000;
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, b2c_child, NULL, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    int rc = aw_task_join(h);
    cr_assert_eq(rc, -ECANCELED);
    cr_assert_str_eq(logbuf, "ABa");
    cr_assert_eq(pA.exit_err_code, -ECANCELED);
    cr_assert_eq(pB.exited, 0);
    cr_assert_eq(pB.held, 0);
    cr_assert_eq(pC.entered, 0);
    aw_err_clear();
    return 0;
}
Test(with, B2_a_second_enter_cut_by_a_cancel_exits_the_first_only) { aw_test_run(b2_cancel, NULL, 0); }

/* Terms: the error a block leaves with is the record raised inside it
 * and still pending, whatever the way out: a `return` or a `goto` with
 * such a record pending hands it to exit (A6), and it stays pending. */
static int return_with_pending(probe_t *p) {
    aw_with (PCM(p)) {
        aw_raise(-EIO, "raised, not handled, then return");
        return 5;
    }
    return -1;
}
static int a6_return(void *arg) {
    probes_reset();
    cr_assert_eq(return_with_pending(&pA), 5);
    cr_assert_eq(pA.exit_err_code, -EIO, "exit did not receive the pending record on return");
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    aw_with (PCM(&pB)) {
        aw_raise(-EPIPE, "raised, not handled, then goto");
        goto out;
    }
out:
    cr_assert_eq(pB.exit_err_code, -EPIPE, "exit did not receive the pending record on goto");
    cr_assert_eq(aw_status(), -EPIPE);
    aw_err_clear();
    return 0;
}
Test(with, A6_A1_a_record_pending_at_a_return_or_goto_reaches_exit) { aw_test_run(a6_return, NULL, 0); }

/* A8 and A9 on a cancelled block: an exit raising a record then
 * returning 0 leaves the cancel unchanged (its record dropped); an exit
 * returning -ECANCELED bare re-raises the cancel's record, no new one. */
static int a8c_child(void *arg) {
    const aw_cm_type_t *ty = arg;
    aw_with (aw_cm(ty, &pA)) {
        if (aw_sleep(AW_SEC(10)) < 0)
            aw_leave();
    }
    child_status_after = aw_err_count(aw_err_current());
    return aw_status();
}
static int a8_a9_cancel(void *arg) {
    probes_reset();
    aw_task_t *h;
    cr_assert_eq(aw_spawn(NULL, a8c_child, (void *)&a8r_type, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    cr_assert_eq(aw_task_join(h), -ECANCELED);
    cr_assert_eq(child_status_after, 1, "the chain holds %d records", child_status_after);
    cr_assert_null(aw_err_find(aw_err_current(), -EPIPE));
    aw_err_clear();
    probes_reset();
    pA.exit_rc = -ECANCELED; /* bare */
    cr_assert_eq(aw_spawn(NULL, a8c_child, (void *)&probe_type, &h), 0);
    cr_assert_eq(aw_sleep_ms(2), 0);
    aw_task_cancel(h);
    cr_assert_eq(aw_task_join(h), -ECANCELED);
    cr_assert_eq(child_status_after, 1, "a bare re-raise of the cancel added records: %d", child_status_after);
    aw_err_clear();
    return 0;
}
Test(with, A8_A9_an_exit_on_a_cancelled_block_reraising_or_dropping_its_record) { aw_test_run(a8_a9_cancel, NULL, 0); }

/* (c) 13 and decision 5 with the exit grace: an exit that overruns its
 * grace and then fails by returning a bare code (no record raised: its
 * close's errno) keeps that failure, below the overrun's -ETIMEDOUT, as
 * one that raised its failure does: "ETIMEDOUT <- EPIPE <- ECANCELED". */
static int overrun_enter(void *self, void **out) {
    *out = self;
    return 0;
}
static int overrun_bare_exit(void *self, const aw_err_t *err) {
    (void)self, (void)err;
    aw_sleep_ms(1000); /* cut by the grace */
    return -EPIPE;
}
static const aw_cm_type_t overrun_bare_type = {.name = "slow-close", .enter = overrun_enter,
                                               .exit = overrun_bare_exit, .grace = AW_MS(5)};
static int overrun_bare_main(void *arg) {
    (void)arg;
    aw_with (aw_cm(&overrun_bare_type, NULL)) {
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -ETIMEDOUT, "got %s", aw_err_name(e->code));
    const aw_err_t *pipe = aw_err_find(e, -EPIPE);
    cr_assert_not_null(pipe, "the exit's own failure was lost under the overrun");
    cr_assert_not_null(strstr(pipe->msg, "slow-close"), "names the manager: %s", pipe->msg);
    cr_assert_eq(e->context, pipe, "the failure right below the overrun");
    aw_err_clear();
    return 0;
}
Test(with, c13_a_bare_failure_of_an_exit_over_its_grace_is_kept) {
    aw_test_run(overrun_bare_main, NULL, 0);
}

/* Decision 5, as a task's and a generator manager's return are read: an
 * exit whose first step failed (its record left pending) and whose last
 * step then failed with a bare code fails with that code, the first
 * failure in its context: "EPIPE <- EIO", not the EPIPE dropped. A code
 * the block already has (the body's, re-raised) adds nothing. */
static int two_steps_exit(void *self, const aw_err_t *err) {
    (void)self, (void)err;
    aw_raise(-EIO, "flushing the buffer failed");
    return -EPIPE; /* closing failed too, bare */
}
static const aw_cm_type_t two_steps_type = {.name = "two-steps", .enter = overrun_enter,
                                            .exit = two_steps_exit};
static int reraise_after_own_exit(void *self, const aw_err_t *err) {
    (void)self;
    aw_raise(-EIO, "flushing the buffer failed");
    return err ? err->code : 0;
}
static const aw_cm_type_t reraise_type = {.name = "reraise", .enter = overrun_enter,
                                          .exit = reraise_after_own_exit};
static int two_steps_main(void *arg) {
    (void)arg;
    aw_with (aw_cm(&two_steps_type, NULL)) {
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EPIPE, "got %s: %s", aw_err_name(e->code), e->msg);
    cr_assert_not_null(strstr(e->msg, "two-steps"), "names the manager: %s", e->msg);
    cr_assert(e->context && e->context->code == -EIO);
    cr_assert_null(e->context->context);
    aw_err_clear();
    aw_with (aw_cm(&reraise_type, NULL)) {
        aw_raise(-ENOENT, "the body's");
    }
    e = aw_err_current();
    cr_assert_eq(aw_err_count(e), 2, "nothing added for a re-raise");
    cr_assert_eq(e->code, -EIO);
    cr_assert_eq(e->context->code, -ENOENT);
    aw_err_clear();
    return 0;
}
Test(with, A9_an_exit_failing_bare_after_raising_its_own_keeps_both) {
    aw_test_run(two_steps_main, NULL, 0);
}

/* A2 outside a task (Python: asyncio.timeout() outside a task raises
 * RuntimeError, test_timeout_without_task): the block is skipped, enter
 * never runs, and -EPERM is pending (the thread's last error) saying why,
 * as for any suspending call made there: the code after the block can
 * tell it did not run. */
Test(with, A2_a_block_used_outside_a_task_is_skipped_with_EPERM_pending) {
    probes_reset();
    pA.id = 'A';
    FILE *tmp = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int ran = 0;
    aw_with (PCM(&pA)) ran = 1;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(tmp);
    cr_assert_eq(ran, 0);
    cr_assert_eq(pA.entered, 0);
    cr_assert_eq(aw_status(), -EPERM, "got %s", aw_err_name(aw_status()));
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(strstr(e->msg, "outside a task"), "%s", e->msg);
    cr_assert_not_null(strstr(e->msg, "probe"), "names the manager: %s", e->msg);
    aw_err_clear();
}

/* ================= CPython's Lib/test/test_coroutines.py, ported =================
 *
 * The test_with_* tests of CoroutineTest and CoroAsyncIOCompatTest's
 * test_asyncio_1, written with probe managers: enter and exit are
 * __aenter__ and __aexit__, a raised record is an exception, the log is
 * the buffer of values the coroutine yielded. test_with_4 (a sync manager
 * given to `async with`) has no C counterpart: aw_with takes one kind of
 * manager. */

/* A manager whose enter and exit each suspend twice (Python's
 * AsyncYieldFrom of two values), logging around each suspension. */
static int two_step_enter(void *self, void **out) {
    probe_t *p = self;
    logc(p->id);
    if (aw_yield() < 0)
        return aw_status();
    logc(p->id);
    if (aw_yield() < 0)
        return aw_status();
    p->entered++;
    *out = p;
    return 0;
}
static int two_step_exit(void *self, const aw_err_t *err) {
    probe_t *p = self;
    p->exited++;
    p->exit_err_code = err ? err->code : 0;
    logc((char)tolower((unsigned char)p->id));
    aw_yield();
    logc((char)tolower((unsigned char)p->id));
    aw_yield();
    return p->exit_rc;
}
static const aw_cm_type_t two_step_type = {"two-step", two_step_enter, two_step_exit, 0, 0, NULL};

/* test_with_1: `async with A as a, B as b` enters A then B, exits B then
 * A; B's exit suppresses the body's ZeroDivisionError, so A's exit gets
 * no error and the statement completes. With C, which does not suppress,
 * the error propagates. */
static int cp_with_1(void *arg) {
    probes_reset();
    pB.exit_rc = AW_SUPPRESS;
    aw_with (probe_t *a, aw_cm(&two_step_type, &pA))
    aw_with (probe_t *b, aw_cm(&two_step_type, &pB)) {
        logc(a->id);
        logc(b->id);
        aw_fail(-EDOM, "division by zero");
    }
    cr_assert_str_eq(logbuf, "AABBABbbaa");
    cr_assert_eq(pB.exit_err_code, -EDOM);
    cr_assert_eq(pA.exit_err_code, 0, "B suppressed: A's exit sees no error");
    cr_assert_eq(aw_status(), 0);

    probes_reset();
    aw_with (probe_t *a, aw_cm(&two_step_type, &pA))
    aw_with (probe_t *c, aw_cm(&two_step_type, &pC)) {
        logc(a->id);
        logc(c->id);
        aw_fail(-EDOM, "division by zero");
    }
    cr_assert_str_eq(logbuf, "AACCACccaa");
    cr_assert_eq(pA.exit_err_code, -EDOM);
    cr_assert_eq(aw_status(), -EDOM);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_1) { aw_test_run(cp_with_1, NULL, 0); }

/* test_with_2 and test_with_3: a manager missing __aexit__ (or
 * __aenter__) is refused (TypeError "asynchronous context manager
 * protocol") and the body never runs; awith also never calls the enter
 * it has (A13). */
static int cp_with_2_3(void *arg) {
    probes_reset();
    int body = 0;
    aw_with (aw_cm(&probe_noexit_type, &pA)) body = 1;
    cr_assert_eq(body, 0);
    cr_assert_eq(pA.entered, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert_not_null(strstr(aw_err_current()->msg, "exit"), "%s", aw_err_current()->msg);
    aw_err_clear();
    aw_with (aw_cm(&probe_noenter_type, &pA)) body = 1;
    cr_assert_eq(body, 0);
    cr_assert_eq(pA.exited, 0);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    cr_assert_not_null(strstr(aw_err_current()->msg, "enter"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_2_and_3) { aw_test_run(cp_with_2_3, NULL, 0); }

/* test_with_5: an error raised in the body (a failed assert) leaves the
 * statement unchanged when exit returns None. */
static int cp_with_5(void *arg) {
    probes_reset();
    const aw_err_t *raised = NULL;
    aw_with (PCM(&pA)) {
        aw_raise(-EINVAL, "assertion failed");
        raised = aw_err_current();
        aw_leave();
    }
    cr_assert_eq(aw_status(), -EINVAL);
    cr_assert_eq(aw_err_current(), raised, "the same record");
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_5) { aw_test_run(cp_with_5, NULL, 0); }

/* test_with_6: __aenter__ returns something that is not an awaitable
 * (123): TypeError, the body does not run, and "it's important that
 * __aexit__ wasn't called". The C counterpart of an invalid value from
 * enter is a positive return (its contract, cm.h: 0 or -errno). */
static int bad_enter(void *self, void **out) {
    probe_t *p = self;
    p->entered++;
    *out = p;
    return 123;
}
static const aw_cm_type_t bad_enter_type = {"bad-enter", bad_enter, probe_exit, 0, 0, NULL};
static int cp_with_6(void *arg) {
    probes_reset();
    int body = 0;
    aw_with (aw_cm(&bad_enter_type, &pA)) body = 1;
    cr_assert_eq(pA.entered, 1);
    cr_assert_eq(body, 0, "an enter that broke its contract does not run the body");
    cr_assert_eq(pA.exited, 0, "nor the exit");
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "got %s", aw_err_name(aw_status()));
    cr_assert_not_null(strstr(aw_err_current()->msg, "bad-enter"), "%s", aw_err_current()->msg);
    cr_assert_not_null(strstr(aw_err_current()->msg, "123"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_6) { aw_test_run(cp_with_6, NULL, 0); }

/* test_with_7: __aexit__ returns an invalid value (444) while the body's
 * ZeroDivisionError propagates: TypeError, whose context is the body's
 * error. */
static int cp_with_7(void *arg) {
    probes_reset();
    pA.exit_rc = 444;
    aw_with (PCM(&pA)) aw_fail(-EDOM, "division by zero");
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(strstr(e->msg, "444"), "%s", e->msg);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EDOM);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_7) { aw_test_run(cp_with_7, NULL, 0); }

/* test_with_8: __aexit__ returns an invalid value (456) on the normal
 * way out, after `break`, after `continue` and after `return`: each
 * time the body ran once and the protocol error propagates. */
static int cp8_cnt;
static int cp8_return(void) {
    aw_with (PCM(&pA)) {
        cp8_cnt++;
        return 0;
    }
    return 1;
}
static int cp_with_8(void *arg) {
    probes_reset();
    pA.exit_rc = 456;
    aw_with (PCM(&pA)) cp8_cnt++;
    cr_assert_eq(cp8_cnt, 1);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();

    for (int i = 0; i < 2; i++) {
        aw_with (PCM(&pA)) {
            cp8_cnt++;
            break; /* leaves the block (with.h); the for goes on */
        }
        if (aw_status() < 0)
            break; /* the exception ends the loop, as in Python */
    }
    cr_assert_eq(cp8_cnt, 2);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();

    for (int i = 0; i < 2; i++) {
        aw_with (PCM(&pA)) {
            cp8_cnt++;
            continue;
        }
        if (aw_status() < 0)
            break;
    }
    cr_assert_eq(cp8_cnt, 3);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL);
    aw_err_clear();

    cr_assert_eq(cp8_return(), 0, "C cannot change the value returned (with.h)");
    cr_assert_eq(cp8_cnt, 4);
    cr_assert_eq(aw_status(), -AW_EPROTOCOL, "the exit's error is pending in the caller");
    aw_err_clear();
    cr_assert_eq(pA.exited, 4);
    return 0;
}
Test(with, cpython_test_with_8) { aw_test_run(cp_with_8, NULL, 0); }

/* test_with_9: __aexit__ raising on the normal way out: its error
 * propagates, after the body ran once. */
static int cp_with_9(void *arg) {
    probes_reset();
    pA.exit_rc = -EDOM;
    pA.exit_raise = 1;
    int cnt = 0;
    aw_with (PCM(&pA)) cnt++;
    cr_assert_eq(cnt, 1);
    cr_assert_eq(aw_status(), -EDOM);
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_9) { aw_test_run(cp_with_9, NULL, 0); }

/* test_with_10: two nested managers whose exits both raise
 * ZeroDivisionError while the body raised RuntimeError: the error is the
 * outer exit's, context the inner exit's, context the body's. */
static int cp_with_10(void *arg) {
    probes_reset();
    pA.exit_rc = pB.exit_rc = -EDOM;
    pA.exit_raise = pB.exit_raise = 1;
    aw_with (PCM(&pA)) {
        aw_with (PCM(&pB)) aw_fail(-ENOTRECOVERABLE, "RuntimeError");
    }
    int codes[8];
    int n = chain_codes(aw_err_current(), codes, 8);
    cr_assert_eq(n, 3);
    cr_assert_eq(codes[0], -EDOM);
    cr_assert_str_eq(aw_err_current()->msg, "exit of A failed");
    cr_assert_eq(codes[1], -EDOM);
    cr_assert_str_eq(aw_err_current()->context->msg, "exit of B failed");
    cr_assert_eq(codes[2], -ENOTRECOVERABLE);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_10) { aw_test_run(cp_with_10, NULL, 0); }

/* test_with_11: __aenter__ raising NotImplementedError: that error
 * propagates with no context; neither the body nor the exit runs. */
static int cp_with_11(void *arg) {
    probes_reset();
    pA.enter_rc = -ENOSYS;
    pA.enter_raise = 1;
    pA.exit_rc = -EDOM;
    pA.exit_raise = 1;
    int body = 0;
    aw_with (PCM(&pA)) {
        body = 1;
        aw_fail(-ENOTRECOVERABLE, "RuntimeError");
    }
    cr_assert_eq(body, 0);
    cr_assert_eq(pA.exited, 0);
    cr_assert_eq(aw_status(), -ENOSYS);
    cr_assert_eq(aw_err_current(), pA.enter_err);
    cr_assert_null(aw_err_current()->context);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_11) { aw_test_run(cp_with_11, NULL, 0); }

/* test_with_12: `async with CM() as cm` binds what __aenter__ returned,
 * and an __aexit__ returning True swallows the body's RuntimeError. */
static int cp_with_12(void *arg) {
    probes_reset();
    pA.exit_rc = AW_SUPPRESS;
    aw_with (probe_t *cm, PCM(&pA)) {
        cr_assert_eq(cm, &pA);
        aw_fail(-ENOTRECOVERABLE, "RuntimeError");
    }
    cr_assert_eq(pA.exit_err_code, -ENOTRECOVERABLE);
    cr_assert_eq(aw_status(), 0);
    return 0;
}
Test(with, cpython_test_with_12) { aw_test_run(cp_with_12, NULL, 0); }

/* test_with_13: __aenter__ failing (1/0) with an exit that would
 * suppress: the failure propagates, the body did not run and the exit
 * was not given the chance to swallow it. */
static int cp_with_13(void *arg) {
    probes_reset();
    pA.enter_rc = -EDOM;
    pA.exit_rc = AW_SUPPRESS;
    int cnt = 1;
    aw_with (PCM(&pA)) cnt += 1000;
    if (aw_status() == 0)
        cnt += 10000;
    cr_assert_eq(cnt, 1);
    cr_assert_eq(pA.exited, 0);
    cr_assert_eq(aw_status(), -EDOM);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_with_13) { aw_test_run(cp_with_13, NULL, 0); }

/* CoroAsyncIOCompatTest.test_asyncio_1: enter and exit each sleep; the
 * body sleeps and raises MyException; the exit sees that error (its
 * type's name is logged) after its own sleep, and the statement after the
 * block is not reached. */
static int cp_asyncio_1(void *arg) {
    probes_reset();
    pA.enter_sleep_ms = 10;
    pA.exit_sleep_ms = 10;
    aw_with (PCM(&pA)) {
        logc('*');
        cr_assert_eq(aw_sleep_ms(10), 0);
        aw_fail(-EBADMSG, "MyException");
    }
    if (aw_status() == 0)
        logc('!'); /* unreachable */
    cr_assert_str_eq(logbuf, "A*a~");
    cr_assert_eq(pA.exit_err_code, -EBADMSG);
    cr_assert_str_eq(pA.exit_err_msg, "MyException");
    cr_assert_eq(pA.exit_sleep_rc, 0);
    cr_assert_eq(aw_status(), -EBADMSG);
    aw_err_clear();
    return 0;
}
Test(with, cpython_test_asyncio_1) { aw_test_run(cp_asyncio_1, NULL, 0); }
