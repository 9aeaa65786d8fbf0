/* tests/fault/err.c: error records when memory runs out (src/core/err.c
 * with the fault hooks). A failure must leave a record even when the
 * record's own allocation fails: callers write
 *   if (op() < 0) printf("%s\n", aw_err_current()->msg);
 * and `if (aw_status() < 0)` after a with block; without a record the
 * first crashes and the second takes the failure for a success. Found by
 * the fault sweep (exit_args, class_manager, generators, file_handling,
 * db_demo crashed; the mixed scenario saw failures with no record). */
#include <awith.h>
#include <criterion/criterion.h>
#include <string.h>

#include "../../src/coro/fault.h"

static int raise_without_memory(void *arg) {
    aw_fault_set(AW_FAULT_ALLOC, 1, ENOMEM, true); /* every allocation fails */
    int rc = aw_raise(-EIO, "disk %s failed", "sda");
    const aw_err_t *e = aw_err_current();
    aw_fault_set(AW_FAULT_ALLOC, 0, 0, false);
    cr_assert_eq(rc, -EIO);
    cr_assert_not_null(e, "a failure left no record");
    cr_assert_eq(e->code, -EIO);
    cr_assert_str_eq(e->msg, "disk sda failed");
    cr_assert_eq(aw_status(), -EIO);
    aw_err_clear();
    return 0;
}

Test(err_nomem, raise_leaves_a_record) { cr_assert_eq(aw_main(raise_without_memory, NULL), 0); }

/* Many raises without memory: each still changes the pending code, the
 * reserve is given back by aw_err_clear and serves again. */
static int many_raises(void *arg) {
    for (int round = 0; round < 3; round++) {
        aw_fault_set(AW_FAULT_ALLOC, 1, ENOMEM, true);
        for (int i = 0; i < 100; i++) {
            aw_raise(i % 2 ? -EIO : -ENOSPC, "raise %d", i);
            cr_assert_eq(aw_status(), i % 2 ? -EIO : -ENOSPC, "raise %d of round %d", i, round);
        }
        const aw_err_t *e = aw_err_current();
        cr_assert_not_null(e);
        cr_assert_str_eq(e->msg, "raise 99");
        aw_fault_set(AW_FAULT_ALLOC, 0, 0, false);
        aw_err_clear();
        cr_assert_null(aw_err_current());
    }
    return 0;
}

Test(err_nomem, reserve_is_reused) { cr_assert_eq(aw_main(many_raises, NULL), 0); }

/* A long message is cut, not lost. */
static int long_message(void *arg) {
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    aw_fault_set(AW_FAULT_ALLOC, 1, ENOMEM, true);
    aw_raise(-EPROTO, "%s", big);
    const aw_err_t *e = aw_err_current();
    aw_fault_set(AW_FAULT_ALLOC, 0, 0, false);
    cr_assert_not_null(e);
    cr_assert_gt(strlen(e->msg), 32);
    cr_assert_eq(e->msg[0], 'x');
    aw_err_clear();
    return 0;
}

Test(err_nomem, long_message_is_cut) { cr_assert_eq(aw_main(long_message, NULL), 0); }

/* Joining a failed task copies its record: without memory the joiner
 * still gets one. */
static int failing(void *arg) {
    aw_fault_set(AW_FAULT_ALLOC, 1, ENOMEM, true);
    return aw_raise(-ECONNRESET, "peer went away");
}

static int joiner(void *arg) {
    aw_task_t *t;
    cr_assert_eq(aw_spawn(NULL, failing, NULL, &t), 0);
    int rc = aw_task_join(t);
    const aw_err_t *e = aw_err_current();
    aw_fault_set(AW_FAULT_ALLOC, 0, 0, false);
    cr_assert_eq(rc, -ECONNRESET);
    cr_assert_not_null(e, "the joined task's failure left no record in the joiner");
    cr_assert_not_null(aw_err_find(e, -ECONNRESET));
    aw_err_clear();
    return 0;
}

Test(err_nomem, join_copies_the_record) { cr_assert_eq(aw_main(joiner, NULL), 0); }
