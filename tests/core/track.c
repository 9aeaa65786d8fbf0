/* tests for src/core/track.c: resources left open are reported at loop
 * close with who opened them, and make aw_main fail with -EBUSY (issue 10
 * item 9); closed ones leave no trace; a handle closed after its loop is
 * gone is a no-op. */
#include "capture.h"

#include <string.h>

typedef struct { int fd; aw_track_t track; } conn_t;
static conn_t leaked, kept;

static int leave_one_open(void *arg) {
    (void)arg;
    cr_assert_eq(aw_track_open(&leaked.track, "conn", "%s:%d", "db.example", 5432), 0);
    cr_assert_eq(aw_track_open(&kept.track, "conn", "closed one"), 0);
    aw_track_close(&kept.track);
    aw_track_close(&kept.track); /* idempotent */
    return 0;
}

Test(track, M9_a_resource_left_open_is_reported_and_fails_aw_main) {
    char err[2048];
    int rc = aw_test_main_stderr(leave_one_open, NULL, err, sizeof err);
    cr_assert_eq(rc, -EBUSY, "aw_main: %d", rc);
    cr_assert(strstr(err, "conn 'db.example:5432' was never closed"), "stderr: %s", err);
    cr_assert(strstr(err, "task 'main'"), "names who opened it: %s", err);
    cr_assert_null(strstr(err, "closed one"), "a closed one is not reported: %s", err);
    aw_track_close(&leaked.track); /* after its loop: a no-op, no use of freed memory */
}

static int close_all(void *arg) {
    (void)arg;
    cr_assert_eq(aw_track_open(&kept.track, "conn", "x"), 0);
    aw_track_close(&kept.track);
    return 0;
}

Test(track, closed_resources_leave_no_report) {
    char err[512];
    cr_assert_eq(aw_test_main_stderr(close_all, NULL, err, sizeof err), 0);
    cr_assert_eq(err[0], 0, "stderr: %s", err);
}

/* A manager's enter that opens a resource: the report names the aw_with. */
static int conn_enter(void *self, void **out) {
    conn_t *c = self;
    *out = c;
    return aw_track_open(&c->track, "conn", "from a manager");
}
static int conn_exit_forgets(void *self, const aw_err_t *err) {
    (void)self, (void)err;
    return 0; /* a buggy exit: never closes */
}
static const aw_cm_type_t conn_type = {.name = "conn", .enter = conn_enter,
                                       .exit = conn_exit_forgets};
static int leak_in_manager(void *arg) {
    (void)arg;
    aw_with (aw_cm(&conn_type, &leaked)) {
    }
    return 0;
}

Test(track, a_resource_opened_by_a_managers_enter_names_the_with) {
    char err[2048];
    cr_assert_eq(aw_test_main_stderr(leak_in_manager, NULL, err, sizeof err), -EBUSY);
    cr_assert(strstr(err, "entering the aw_with at") && strstr(err, "track.c:"), "stderr: %s",
              err);
}

Test(track, outside_a_loop_it_is_eperm_and_untracked) {
    conn_t c;
    cr_assert_eq(aw_track_open(&c.track, "conn", "x"), -EPERM);
    aw_track_close(&c.track); /* harmless */
}

/* M9: "where it was opened" is the user's code. Opened in a block, the
 * report names that aw_with; opened by the main task outside any block,
 * it names no site rather than aw_main's spawn of the main task, which
 * is in the library (src/core/main.c). */
static int leak_in_a_body(void *arg) {
    aw_with (aw_shield(AW_SEC(1)))
        cr_assert_eq(aw_track_open(&leaked.track, "conn", "in a body"), 0);
    cr_assert_eq(aw_track_open(&kept.track, "conn", "at top level"), 0);
    return 0;
}
Test(track, M9_the_site_named_is_the_users_not_the_librarys) {
    char err[2048];
    cr_assert_eq(aw_test_main_stderr(leak_in_a_body, NULL, err, sizeof err), -EBUSY);
    cr_assert(strstr(err, "'in a body' was never closed (opened by task 'main', inside the aw_with "
                          "at") && strstr(err, "tests/core/track.c:"), "stderr: %s", err);
    cr_assert(strstr(err, "'at top level' was never closed (opened by task 'main', outside any "
                          "aw_with)"), "stderr: %s", err);
    cr_assert_null(strstr(err, "src/core/main.c"), "stderr: %s", err);
}

/* "aw_main returns -EBUSY (when it would have returned 0)": a main task
 * that fails keeps its own error as aw_main's result, and the resource is
 * reported all the same; one opened by a child outside any block names
 * the child and where it was spawned. */
static int m9_child(void *arg) {
    return aw_track_open(&leaked.track, "conn", "by a child");
}
static int m9_fail_and_leak(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, m9_child, NULL, &t);
    cr_assert_eq(aw_task_join(t), 0);
    return aw_raise(-EIO, "main failed");
}
Test(track, M9_a_failed_main_keeps_its_error_and_the_leak_is_still_reported) {
    char err[4096];
    int rc = aw_test_main_stderr(m9_fail_and_leak, NULL, err, sizeof err);
    cr_assert_eq(rc, -EIO, "aw_main: %s", aw_err_name(rc));
    cr_assert(strstr(err, "conn 'by a child' was never closed (opened by task 'm9_child', "
                          "spawned at ") && strstr(err, "tests/core/track.c:"), "stderr: %s", err);
}

/* M9 in an async generator: a resource its code opens outside any block
 * of its own is reported with the line where the generator was made (its
 * aw_gen), the user's site, for a consumer that is the main task (whose
 * spawn site is aw_main's) as for any other; the task named is the
 * consumer it runs for. */
static int m9_gen(aw_gen_t *g, void *arg) {
    cr_assert_eq(aw_track_open((aw_track_t *)arg, "conn", "by a generator"), 0);
    int v = 1;
    aw_gen_yield(g, &v);
    return 0;
}
static int made_at[2];
static int m9_consumer(void *arg) {
    made_at[0] = __LINE__ + 1;
    aw_for (int *v, aw_gen(m9_gen, &leaked.track))
        break;
    return 0;
}
static int m9_gens(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, m9_consumer, NULL, &t);
    cr_assert_eq(aw_task_join(t), 0);
    made_at[1] = __LINE__ + 1;
    aw_for (int *v, aw_gen(m9_gen, &kept.track))
        break;
    return 0;
}
Test(track, M9_a_resource_opened_by_a_generator_names_where_it_was_made) {
    char err[4096], want[256];
    cr_assert_eq(aw_test_main_stderr(m9_gens, NULL, err, sizeof err), -EBUSY);
    snprintf(want, sizeof want, "(opened by task 'm9_consumer', in the generator made at %s:%d)",
             __FILE__, made_at[0]);
    cr_assert(strstr(err, want), "want %s\nstderr: %s", want, err);
    snprintf(want, sizeof want, "(opened by task 'main', in the generator made at %s:%d)",
             __FILE__, made_at[1]);
    cr_assert(strstr(err, want), "want %s\nstderr: %s", want, err);
}
