/* tests/coro/fault.c: the fault-injection hooks themselves (src/coro/fault.c,
 * built with -Dfault_injection=true and linked into libawith.so only):
 * calls are counted per class, the N-th fails once or from then on, with
 * the errno asked for, and the program's own calls are never touched. */
#include <awith.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/coro/fault.h"

static int nothing(void *arg) { return 0; }

static int sleeper(void *arg) { return aw_sleep_ms(1); }

Test(fault, counts_the_library_calls_only) {
    aw_fault_set(AW_FAULT_ALLOC, 0, 0, false);
    free(malloc(16)); /* the program's own: not counted */
    cr_assert_eq(aw_fault_count(AW_FAULT_ALLOC), 0);
    cr_assert_eq(aw_main(nothing, NULL), 0);
    cr_assert_gt(aw_fault_count(AW_FAULT_ALLOC), 0);
    cr_assert_eq(aw_fault_fired(AW_FAULT_ALLOC), 0);
    cr_assert_null(aw_fault_what(AW_FAULT_ALLOC));
}

Test(fault, first_allocation_fails_once) {
    aw_fault_set(AW_FAULT_ALLOC, 1, 0, false);
    cr_assert_eq(aw_main(nothing, NULL), -ENOMEM); /* the loop's own block */
    cr_assert_eq(aw_fault_fired(AW_FAULT_ALLOC), 1);
    cr_assert_str_eq(aw_fault_what(AW_FAULT_ALLOC), "calloc");
    cr_assert_eq(aw_main(nothing, NULL), 0, "one-shot: the next calls succeed");
    cr_assert_eq(aw_fault_fired(AW_FAULT_ALLOC), 1);
}

Test(fault, persistent_fails_every_call_from_n) {
    aw_fault_set(AW_FAULT_FD, 1, EMFILE, true);
    cr_assert_eq(aw_main(nothing, NULL), -EMFILE); /* epoll_create1 */
    cr_assert_eq(aw_main(nothing, NULL), -EMFILE);
    cr_assert_eq(aw_fault_fired(AW_FAULT_FD), 2);
    cr_assert_str_eq(aw_fault_what(AW_FAULT_FD), "epoll_create1");
    aw_fault_set(AW_FAULT_FD, 0, 0, false);
    cr_assert_eq(aw_main(nothing, NULL), 0, "disarmed");
}

Test(fault, chosen_errno_and_classes_apart) {
    aw_fault_set(AW_FAULT_FD, 2, ENFILE, false); /* the eventfd, after epoll */
    aw_fault_set(AW_FAULT_ALLOC, 0, 0, false);
    cr_assert_eq(aw_main(sleeper, NULL), -ENFILE);
    cr_assert_str_eq(aw_fault_what(AW_FAULT_FD), "eventfd");
    cr_assert_eq(aw_fault_fired(AW_FAULT_ALLOC), 0);
    cr_assert_str_eq(aw_fault_class_name(AW_FAULT_IO), "io");
    cr_assert_null(aw_fault_class_name(AW_FAULT_NCLASS));
}
