/* tests for src/cm/introspect.c ((c) 12 and 15). */
#include "testutil.h"

#include <string.h>

static aw_lock_t la = AW_LOCK_INIT("A"), lb = AW_LOCK_INIT("B");

static int take_ab(void *arg) {
    aw_with (aw_locked(&la)) {
        aw_sleep_ms(2);
        aw_with (aw_locked(&lb)) {
        }
    }
    return aw_status();
}
static int take_ba(void *arg) {
    aw_with (aw_locked(&lb)) {
        aw_sleep_ms(2);
        aw_with (aw_locked(&la)) {
        }
    }
    return aw_status();
}

static char *dump(int *cycles) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *cycles = aw_loop_dump(f);
    fclose(f);
    return buf;
}

static int deadlock(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, take_ab, NULL, NULL);
        aw_spawn(g, take_ba, NULL, NULL);
        aw_sleep_ms(10);
        int cycles;
        char *out = dump(&cycles);
        cr_assert_eq(cycles, 1, "one wait-for cycle:\n%s", out);
        cr_assert(strstr(out, "DEADLOCK: task 'take_ab'"), "%s", out);
        cr_assert(strstr(out, "holds lock 'A'"), "%s", out);
        cr_assert(strstr(out, "waits for lock 'B' held by task 'take_ba'"), "%s", out);
        cr_assert(strstr(out, "in manager 'lock' (enter phase"), "%s", out);
        free(out);
        aw_group_cancel(g); /* break the deadlock */
    }
    cr_assert_eq(aw_status(), 0);
    cr_assert_null(aw_lock_owner(&la));
    cr_assert_null(aw_lock_owner(&lb));
    return 0;
}
Test(introspect, c12_a_lock_cycle_is_flagged_as_a_deadlock) { aw_test_run(deadlock, NULL, 0); }

static int entered(void *arg) {
    aw_with (aw_fail_after(AW_SEC(5)))
    aw_with (aw_locked(&la)) {
        aw_sleep(AW_SEC(10));
    }
    return aw_status();
}
static int managers(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, entered, NULL, &t);
    aw_sleep_ms(2);
    int cycles;
    char *out = dump(&cycles);
    cr_assert_eq(cycles, 0);
    cr_assert(strstr(out, "task 'entered'"), "%s", out);
    cr_assert(strstr(out, "deadline: in "), "%s", out);
    cr_assert(strstr(out, "in manager 'lock' (body phase"), "%s", out);
    cr_assert(strstr(out, "in manager 'scope' (body phase"), "%s", out);
    cr_assert(strstr(out, "holds lock 'A'"), "%s", out);
    free(out);
    aw_task_cancel(t);
    aw_task_join(t);
    aw_err_clear();
    return 0;
}
Test(introspect, c15_the_dump_shows_managers_phases_deadlines_and_locks) { aw_test_run(managers, NULL, 0); }
