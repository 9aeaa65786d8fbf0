/* examples/error_handling.c -- seed 003, "Error Handling in Async Context
 * Managers".
 *
 *   1. an exception in the block is passed to __aexit__;
 *   2. __aexit__ receives its details;
 *   3. returning False propagates it;
 *   4. returning True suppresses it.
 *
 * In C, exit receives the error record (NULL on a clean way out) and
 * returns 0 (propagate), AW_SUPPRESS, or a new error, which replaces the
 * block's error and keeps it as its context (Python's `raise ... from`,
 * done implicitly): nothing is lost. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

typedef struct eh_policy {
    const char *name;
    int verdict; /* what exit returns when the block failed */
} eh_policy;

static int eh_enter(void *self, void **out) {
    *out = self;
    return aw_checkpoint();
}

static int eh_exit(void *self, const aw_err_t *err) {
    eh_policy *p = self;
    if (!err) {
        printf("[%s] exit: clean\n", p->name);
        return 0;
    }
    printf("[%s] exit received %s: %s\n", p->name, aw_err_name(err->code), err->msg);
    if (p->verdict < 0)
        return aw_raise(p->verdict, "cleanup of %s failed too", p->name);
    return p->verdict;
}

static const aw_cm_type_t eh_type = {.name = "policy", .enter = eh_enter, .exit = eh_exit};

static void eh_run(const char *name, int verdict, int fail) {
    aw_with (aw_cm_temp(&eh_type, (eh_policy){name, verdict})) {
        if (fail) {
            aw_fail(-EINVAL, "bad input");
        }
    }
    const aw_err_t *e = aw_err_current();
    if (!e) {
        printf("[%s] after the block: no error\n", name);
        return;
    }
    printf("[%s] after the block: %s: %s", name, aw_err_name(e->code), e->msg);
    if (e->context)
        printf(" (while handling %s: %s)", aw_err_name(e->context->code), e->context->msg);
    putchar('\n');
    if (e->code != -ECANCELED)
        aw_err_clear();
}

int example_error_handling(void *arg) {
    eh_run("clean", 0, 0);
    eh_run("propagate", 0, 1);
    eh_run("suppress", AW_SUPPRESS, 1);
    eh_run("replace", -EIO, 1);
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_error_handling, NULL) < 0; }
#endif
