/* tests for src/core/err.c: the code table (names and texts), error
 * records (message, origin, task), chaining, acyclicity, printing. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* ---- the table ---- */

Test(err, every_awith_code_has_its_name_and_text) {
    struct { int code; const char *name, *text; } want[] = {
#define X(name, num, text) {-(num), "AW_E" #name, text},
        AW_ERR_MAP(X)
#undef X
    };
    size_t n = sizeof want / sizeof want[0];
    cr_assert_geq(n, 4);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(aw_err_name(want[i].code), want[i].name);
        cr_assert_str_eq(aw_strerror(want[i].code), want[i].text);
        for (size_t j = 0; j < i; j++) {
            cr_assert_neq(want[i].code, want[j].code, "two awith codes share a number");
            cr_assert_str_neq(want[i].name, want[j].name);
        }
    }
    cr_assert_eq(AW_EPROTOCOL, 4096);
    cr_assert_str_eq(aw_err_name(-AW_EGROUP), "AW_EGROUP");
}

Test(err, every_errno_code_has_a_name_and_a_text) {
    int named = 0;
    for (int e = 1; e < 4096; e++) {
        const char *n = aw_err_name(-e), *s = aw_strerror(-e);
        cr_assert_not_null(n);
        cr_assert_not_null(s);
        if (strcmp(n, "E?") == 0) {
            cr_assert_str_eq(s, "Unknown error", "code %d has a text but no name", e);
            continue;
        }
        named++;
        cr_assert_eq(n[0], 'E', "errno name '%s' of %d", n, e);
        cr_assert_str_neq(s, "Unknown error", "errno %s has no text", n);
    }
    cr_assert_geq(named, 100, "only %d errno codes are named", named);
    cr_assert_str_eq(aw_err_name(-ECANCELED), "ECANCELED");
    cr_assert_str_eq(aw_err_name(-ETIMEDOUT), "ETIMEDOUT");
    cr_assert_str_eq(aw_strerror(-ETIMEDOUT), strerror(ETIMEDOUT));
    cr_assert_str_eq(aw_strerror(-EBADF), strerror(EBADF));
}

Test(err, zero_positive_and_unknown_codes) {
    cr_assert_str_eq(aw_err_name(0), "OK");
    cr_assert_str_eq(aw_strerror(0), "Success");
    cr_assert_str_eq(aw_err_name(5), "E?");        /* positive: not a code */
    cr_assert_str_eq(aw_strerror(5), "Unknown error");
    cr_assert_str_eq(aw_err_name(-4000), "E?");
    cr_assert_str_eq(aw_strerror(-4000), "Unknown error");
    cr_assert_str_eq(aw_err_name(-5000), "E?");
    cr_assert_str_eq(aw_err_name(INT32_MIN), "E?");
    cr_assert_str_eq(aw_strerror(INT32_MIN), "Unknown error");
}

/* ---- records ---- */

static int raise_line;

static int raise_here(void) {
    raise_line = __LINE__ + 1;
    return aw_raise(-EIO, "read %d bytes of '%s'", 42, "data.bin");
}

static int records_origin(void *arg) {
    cr_assert_null(aw_err_current());
    cr_assert_eq(aw_status(), 0);
    cr_assert_eq(raise_here(), -EIO);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e);
    cr_assert_eq(e->code, -EIO);
    cr_assert_str_eq(e->msg, "read 42 bytes of 'data.bin'");
    cr_assert_str_eq(e->file, __FILE__);
    cr_assert_eq(e->line, raise_line);
    cr_assert_str_eq(e->func, "raise_here");
    cr_assert_str_eq(e->task, "reporter");
    cr_assert_null(e->context);
    cr_assert_null(e->members);
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    cr_assert_null(aw_err_current());
    cr_assert_eq(aw_status(), 0);
    return 0;
}

static int spawn_named(void *arg) {
    aw_task_t *t;
    aw_task_opts_t o = {.name = "reporter"};
    cr_assert_eq(aw_spawn_opts(NULL, records_origin, NULL, &o, &t), 0);
    cr_assert_eq(aw_task_join(t), 0);
    return 0;
}

Test(err, raise_records_message_origin_and_task) { aw_test_run(spawn_named, NULL, 0); }

static int long_message(void *arg) {
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    aw_raise(-E2BIG, "%s|%s", big, big);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(strlen(e->msg), 2 * (sizeof big - 1) + 1);
    cr_assert_eq(e->msg[sizeof big - 1], '|');
    aw_err_clear();
    return 0;
}

Test(err, long_messages_are_kept_whole) { aw_test_run(long_message, NULL, 0); }

static int raise_success(void *arg) {
    cr_assert_eq(aw_raise(0, "not an error"), -EINVAL);
    cr_assert_eq(aw_raise(7, "not an error either"), -EINVAL);
    cr_assert_eq(aw_status(), -EINVAL);
    cr_assert_eq(aw_err_count(aw_err_current()), 2);
    aw_err_clear();
    return 0;
}

Test(err, raising_success_is_made_a_visible_einval) { aw_test_run(raise_success, NULL, 0); }

/* Outside a task there is no chain to record into: the thread keeps its
 * last record (one, no context), which aw_err_current/aw_status read and
 * aw_err_clear drops (issue 10, item 10). */
Test(err, raise_outside_a_task_keeps_the_threads_last_record) {
    cr_assert_null(aw_err_current());
    cr_assert_eq(aw_raise(-ENOENT, "no file %s", "x"), -ENOENT);
    cr_assert_not_null(aw_err_current());
    cr_assert_str_eq(aw_err_current()->msg, "no file x");
    cr_assert_eq(aw_status(), -ENOENT);
    cr_assert_eq(aw_raise(-EBADF, "second"), -EBADF);
    cr_assert_eq(aw_status(), -EBADF, "the last one replaces it");
    cr_assert_null(aw_err_current()->context, "no chain outside a task");
    aw_err_clear();
    cr_assert_null(aw_err_current());
    cr_assert_eq(aw_status(), 0);
}

/* ---- chains ---- */

/* Floyd: a chain through context must end. */
static void assert_acyclic(const aw_err_t *e) {
    const aw_err_t *slow = e, *fast = e;
    while (fast && fast->context) {
        slow = slow->context;
        fast = fast->context->context;
        cr_assert_neq(slow, fast, "cycle in the error chain");
    }
    for (const aw_err_t *x = e; x; x = x->context)
        for (const aw_err_t *m = x->members; m; m = m->next)
            assert_acyclic(m);
}

static int a9_record(void *arg) {
    aw_raise(-EIO, "body failed");
    int line = __LINE__ + 1;
    aw_raise(-EPIPE, "cleanup failed too");
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_eq(e->line, line);
    cr_assert_not_null(e->context);
    cr_assert_eq(e->context->code, -EIO);
    cr_assert_str_eq(e->context->msg, "body failed");
    cr_assert_null(e->context->context);
    assert_acyclic(e);
    aw_err_clear();
    return 0;
}

Test(err, A9_second_raise_keeps_the_first_as_context) { aw_test_run(a9_record, NULL, 0); }

/* Managers whose exits fail, each with a message naming itself. */
typedef struct { const char *name; int code; } failer_t;
static int failer_enter(void *self, void **out) { *out = self; return 0; }
static int failer_exit(void *self, const aw_err_t *err) {
    failer_t *f = self;
    return aw_raise(f->code, "exit of %s failed", f->name);
}
static const aw_cm_type_t failer_type = {"failer", failer_enter, failer_exit, 0, 0};

static int b4_record(void *arg) {
    failer_t b = {"B", -EPIPE};
    aw_with (aw_cm(&failer_type, &b)) {
        aw_raise(-EIO, "body failed");
        aw_leave();
    }
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(e->code, -EPIPE);
    cr_assert_str_eq(e->msg, "exit of B failed");
    cr_assert_str_eq(e->func, "failer_exit");
    cr_assert_str_eq(e->task, "main");
    cr_assert_eq(e->context->code, -EIO);
    cr_assert_str_eq(e->context->func, "b4_record");
    assert_acyclic(e);
    cr_assert_eq(aw_err_count(e), 2);
    aw_err_clear();
    return 0;
}

Test(err, B4_exit_error_record_names_its_exit_and_chains_the_body_error) {
    aw_test_run(b4_record, NULL, 0);
}

static int b6_record(void *arg) {
    failer_t a = {"A", -EACCES}, b = {"B", -EPIPE}, c = {"C", -ENOSPC};
    aw_with (aw_cm(&failer_type, &a))
        aw_with (aw_cm(&failer_type, &b))
            aw_with (aw_cm(&failer_type, &c)) {
            }
    const aw_err_t *e = aw_err_current();
    const char *names[] = {"exit of A failed", "exit of B failed", "exit of C failed"};
    int codes[] = {-EACCES, -EPIPE, -ENOSPC};
    const aw_err_t *x = e;
    for (int i = 0; i < 3; i++, x = x->context) {
        cr_assert_not_null(x);
        cr_assert_eq(x->code, codes[i]);
        cr_assert_str_eq(x->msg, names[i]);
    }
    cr_assert_null(x, "nothing but the three exit errors");
    assert_acyclic(e);
    /* raise order: each record is newer than its context */
    for (x = e; x->context; x = x->context)
        cr_assert_gt(x->seq, x->context->seq);
    aw_err_clear();
    return 0;
}

Test(err, B6_three_failing_exits_chain_A_B_C_in_order) { aw_test_run(b6_record, NULL, 0); }

static int d5_many(void *arg) {
    enum { N = 1000 };
    for (int i = 0; i < N; i++)
        aw_raise(-(1 + i % 100), "error %d", i);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_err_count(e), N);
    assert_acyclic(e);
    int i = N - 1;
    for (const aw_err_t *x = e; x; x = x->context, i--) {
        char want[32];
        snprintf(want, sizeof want, "error %d", i);
        cr_assert_str_eq(x->msg, want);
        cr_assert_eq(x->code, -(1 + i % 100));
    }
    cr_assert_eq(i, -1);
    cr_assert_eq(aw_err_find(e, -1)->msg[6], '9'); /* newest -1: "error 900" */
    cr_assert_str_eq(aw_err_find(e, -1)->msg, "error 900");
    cr_assert_null(aw_err_find(e, -ECANCELED));
    aw_err_clear();
    cr_assert_null(aw_err_current());
    return 0;
}

Test(err, D5_every_raise_is_kept_newest_first_and_acyclic) { aw_test_run(d5_many, NULL, 0); }

static int cancel_dedup(void *arg) {
    aw_raise(-EIO, "first");
    aw_raise(-ECANCELED, "cancelled");
    aw_raise(-ECANCELED, "cancelled again");
    aw_raise(-ECANCELED, "and again");
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_err_count(e), 2);
    cr_assert_str_eq(e->msg, "cancelled");
    /* a different error in between chains a new cancel */
    aw_raise(-EPIPE, "x");
    aw_raise(-ECANCELED, "cancelled once more");
    cr_assert_eq(aw_err_count(aw_err_current()), 4);
    aw_err_clear();
    return 0;
}

Test(err, repeated_cancel_does_not_grow_the_chain) { aw_test_run(cancel_dedup, NULL, 0); }

static int ignore_cancel_loop(void *arg) {
    aw_task_cancel(aw_task_self());
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(aw_yield(), -ECANCELED);
    cr_assert_eq(aw_err_count(aw_err_current()), 1);
    aw_err_clear();
    return 0;
}

static int spawn_ignorer(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, ignore_cancel_loop, NULL, &t);
    cr_assert_eq(aw_task_join(t), 0);
    return 0;
}

Test(err, F1_a_loop_ignoring_a_level_cancel_keeps_one_record) {
    aw_test_run(spawn_ignorer, NULL, 0);
}

/* ---- a task's status and its record ---- */

static int returns_bare(void *arg) { return -ENOTCONN; }
static int raises_then_succeeds(void *arg) {
    aw_raise(-EIO, "handled by returning 0");
    return 0;
}

static int status_records(void *arg) {
    aw_task_t *t;
    aw_task_opts_t o = {.name = "bare"};
    aw_spawn_opts(NULL, returns_bare, NULL, &o, &t);
    cr_assert_eq(aw_task_join(t), -ENOTCONN);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e, "a bare negative return gets a record");
    cr_assert_eq(e->code, -ENOTCONN);
    cr_assert_not_null(strstr(e->msg, "bare"), "message names the task: %s", e->msg);
    cr_assert_not_null(strstr(e->msg, "ENOTCONN"));
    aw_err_clear();
    aw_spawn(NULL, raises_then_succeeds, NULL, &t);
    cr_assert_eq(aw_task_join(t), 0);
    cr_assert_null(aw_err_current(), "a task returning 0 handled its errors");
    return 0;
}

Test(err, bare_negative_return_gets_a_record_and_zero_drops_it) {
    aw_test_run(status_records, NULL, 0);
}

/* ---- printing ---- */

static int print_chain(void *arg) {
    aw_raise(-EIO, "the disk failed");
    aw_raise(-EPIPE, "the peer left");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    aw_err_print(aw_err_current(), f);
    fclose(f);
    char *a = strstr(buf, "EPIPE: the peer left");
    char *b = strstr(buf, "EIO: the disk failed");
    cr_assert(a && b && a < b, "newest first, context after:\n%s", buf);
    cr_assert_not_null(strstr(b - 20 > buf ? b - 20 : buf, "while handling"), "%s", buf);
    cr_assert_not_null(strstr(buf, "task 'main'"));
    cr_assert_not_null(strstr(buf, __FILE__));
    cr_assert_not_null(strstr(buf, "print_chain()"));
    free(buf);
    aw_err_clear();
    buf = NULL;
    f = open_memstream(&buf, &len);
    aw_err_print(NULL, f);
    fclose(f);
    cr_assert_str_eq(buf, "no error\n");
    free(buf);
    return 0;
}

Test(err, print_shows_chain_newest_first_with_origin) { aw_test_run(print_chain, NULL, 0); }

static int failing_child(void *arg) {
    aw_sleep_ms((intptr_t)arg);
    return aw_raise(-EIO, "child %d failed", (int)(intptr_t)arg);
}

static int group_members(void *arg) {
    int rc = 0;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, failing_child, (void *)(intptr_t)2, NULL);
        aw_spawn(g, failing_child, (void *)(intptr_t)0, NULL);
    }
    rc = aw_status();
    cr_assert_eq(rc, -AW_EGROUP);
    const aw_err_t *e = aw_err_current();
    cr_assert_not_null(e->members);
    cr_assert_str_eq(e->members->msg, "child 0 failed");
    assert_acyclic(e);
    cr_assert_geq(aw_err_count(e), 2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    aw_err_print(e, f);
    fclose(f);
    cr_assert_not_null(strstr(buf, "AW_EGROUP"), "%s", buf);
    cr_assert_not_null(strstr(buf, "member 1: EIO: child 0 failed"), "%s", buf);
    free(buf);
    aw_err_clear();
    return 0;
}

Test(err, D5_group_error_lists_members_and_prints_them) { aw_test_run(group_members, NULL, 0); }

/* aw_err_mark / aw_err_restore: handle what was raised since the mark,
 * nothing older; inside an exit, never the error it was handed. */
static int mark_restore(void *arg) {
    (void)arg;
    aw_raise(-EIO, "older");
    uint64_t m = aw_err_mark();
    aw_raise(-EINVAL, "the step's failure");
    aw_err_restore(m);
    cr_assert_eq(aw_status(), -EIO, "only what was raised since the mark went");
    aw_err_clear();
    cr_assert_eq(aw_err_mark(), 0);
    return 0;
}
Test(err, mark_and_restore_handle_only_what_was_raised_since) { aw_test_run(mark_restore, NULL, 0); }

static int restoring_exit(void *self, const aw_err_t *err) {
    (void)self, (void)err;
    aw_raise(-ENOENT, "the exit's own");
    aw_err_restore(0); /* a mark from before the block: clamped to the exit's floor */
    return 0;
}
static int restoring_enter(void *self, void **out) {
    *out = self;
    return 0;
}
static const aw_cm_type_t restoring_type = {.name = "restoring", .enter = restoring_enter,
                                            .exit = restoring_exit};
static int restore_in_exit(void *arg) {
    (void)arg;
    aw_with (aw_cm(&restoring_type, NULL)) {
        aw_raise(-EIO, "the body's");
    }
    cr_assert_eq(aw_status(), -EIO, "the block's error survives the exit's restore");
    aw_err_clear();
    return 0;
}
Test(err, restore_in_an_exit_never_drops_the_error_it_was_handed) {
    aw_test_run(restore_in_exit, NULL, 0);
}

/* ---- out of memory: the reserve never takes what an exit was handed ---- */

/* An allocator whose malloc fails on demand (the library's records come
 * from it; aw_allocator_set before the first loop of the process). */
static int oom_on;
static void *oom_malloc(size_t n) { return oom_on ? NULL : malloc(n); }
static void *oom_realloc(void *p, size_t n) { return oom_on ? NULL : realloc(p, n); }
static void *oom_calloc(size_t a, size_t b) { return oom_on ? NULL : calloc(a, b); }

static char oom_seen[64];
static int oom_exit(void *self, const aw_err_t *err) {
    (void)self;
    oom_on = 1;
    /* more failures than the per-thread reserve holds (16), each handled */
    for (int i = 0; i < 40; i++)
        aw_raise(-ENOSPC, "closing part %d failed", i);
    snprintf(oom_seen, sizeof oom_seen, "%s", err ? err->msg : "(none)");
    aw_err_clear(); /* handled: only what the exit raised (M2) */
    oom_on = 0;
    return 0;
}
static const aw_cm_type_t oom_type = {.name = "oom", .enter = failer_enter, .exit = oom_exit};

static int oom_main(void *arg) {
    (void)arg;
    aw_with (aw_cm(&oom_type, NULL)) {
        aw_raise(-EIO, "the body's failure");
    }
    cr_assert_str_eq(oom_seen, "the body's failure", "the exit's err was taken from under it");
    cr_assert_eq(aw_status(), -EIO, "the block's error was lost: %s", aw_err_name(aw_status()));
    cr_assert_str_eq(aw_err_current()->msg, "the body's failure");
    aw_err_clear();
    return 0;
}

/* SEMANTICS M2: out of memory, records come from a small reserve, and
 * when it is used up the oldest of the task's records make room; that
 * must never be the error the exit was handed (nor anything older than
 * the exit's own records), which the exit is reading and the block
 * still has to propagate. */
Test(err, M2_out_of_memory_an_exit_never_gives_up_the_error_it_was_handed) {
    cr_assert_eq(aw_allocator_set(oom_malloc, oom_realloc, oom_calloc, free), 0);
    aw_test_run(oom_main, NULL, 0);
}

/* I8 (Python: ExceptionGroup inside ExceptionGroup): a child whose own
 * group failed is a member whose members are its children's failures;
 * the count and the print reach every level, each member's chain with
 * it. */
static int nested_leaf(void *arg) {
    aw_sleep_ms((intptr_t)arg);
    return aw_raise(-EIO, "leaf %d failed", (int)(intptr_t)arg);
}
static int nested_inner(void *arg) {
    (void)arg;
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, nested_leaf, (void *)(intptr_t)0, NULL);
        aw_spawn(g, nested_leaf, (void *)(intptr_t)0, NULL);
    }
    return aw_status();
}
static int nested_print(void *arg) {
    (void)arg;
    aw_with (aw_group_t *g, aw_group())
        aw_spawn(g, nested_inner, NULL, NULL);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EGROUP);
    cr_assert(e->members && !e->members->next, "one member: the inner group's failure");
    const aw_err_t *in = e->members;
    cr_assert_eq(in->code, -AW_EGROUP);
    cr_assert(in->members && in->members->next && !in->members->next->next);
    cr_assert_eq(aw_err_count(e), 4);
    assert_acyclic(e);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    aw_err_print(e, f);
    fclose(f);
    const char *outer = strstr(buf, "error: AW_EGROUP");
    const char *inner = strstr(buf, "member 1: AW_EGROUP");
    const char *leaf1 = inner ? strstr(inner, "member 1: EIO: leaf 0 failed") : NULL;
    const char *leaf2 = leaf1 ? strstr(leaf1, "member 2: EIO: leaf 0 failed") : NULL;
    cr_assert(outer && inner && leaf1 && leaf2 && outer < inner, "%s", buf);
    /* each level is indented further than the one holding it */
    const char *l1 = leaf1, *i1 = inner;
    while (l1 > buf && l1[-1] == ' ') l1--;
    while (i1 > buf && i1[-1] == ' ') i1--;
    cr_assert_gt(leaf1 - l1, inner - i1, "a leaf is indented below its group:\n%s", buf);
    free(buf);
    aw_err_clear();
    return 0;
}
Test(err, I8_nested_group_errors_count_and_print_every_level) { aw_test_run(nested_print, NULL, 0); }

/* ---- long chains (CPython's test_excessive_nesting: 10000 callbacks in
 * one exit stack) ---- */

enum { LONG_CHAIN = 10000 };
static int fail_each(void *arg) {
    int *n = arg;
    return aw_raise(-EPIPE, "exit %d failed", ++*n);
}
/* A task whose exit stack of LONG_CHAIN callbacks all fail: its error is
 * a chain that long (decision 5: every exit error kept). */
static int long_chain_task(void *arg) {
    int n = 0;
    aw_with (aw_exitstack_t *st, aw_exitstack()) {
        for (int i = 0; i < LONG_CHAIN; i++)
            aw_exitstack_callback(st, fail_each, &n);
    }
    return aw_status();
}
static int long_chain_join(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, long_chain_task, NULL, &t);
    cr_assert_eq(aw_task_join(t), -EPIPE);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_err_count(e), LONG_CHAIN, "the whole chain is copied into the joiner");
    cr_assert_str_eq(e->msg, "exit 10000 failed");
    aw_err_clear();
    return 0;
}
Test(err, D5_a_joined_tasks_chain_of_10000_exit_errors_is_copied_whole) { aw_test_run(long_chain_join, NULL, 0); }

/* The same child, joinable but left to its group: its failure is copied
 * into the group's error. */
static int long_chain_group(void *arg) {
    aw_task_t *t;
    aw_with (aw_group_t *g, aw_group()) aw_spawn(g, long_chain_task, NULL, &t);
    const aw_err_t *e = aw_err_current();
    cr_assert_eq(aw_status(), -AW_EGROUP);
    cr_assert_not_null(e->members);
    cr_assert_eq(aw_err_count(e->members), LONG_CHAIN);
    aw_err_clear();
    return 0;
}
Test(err, D5_a_joinable_childs_chain_of_10000_exit_errors_reaches_its_group_whole) {
    aw_test_run(long_chain_group, NULL, 0);
}

/* A generator manager around a block that leaves such a chain: the
 * block's error is thrown in at the yield and propagates once. */
static int pass_through(aw_gencm_t *g, void *arg) { return aw_gencm_yield(g, NULL); }
static int long_chain_gencm(void *arg) {
    aw_with (aw_gencm(pass_through, NULL)) long_chain_task(NULL);
    cr_assert_eq(aw_status(), -EPIPE);
    cr_assert_eq(aw_err_count(aw_err_current()), LONG_CHAIN);
    aw_err_clear();
    return 0;
}
Test(err, D5_C6_a_chain_of_10000_exit_errors_passes_a_generator_manager_once) {
    aw_test_run(long_chain_gencm, NULL, 0);
}
