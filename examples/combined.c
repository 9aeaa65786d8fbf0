/* examples/combined.c -- seed 003, "Working with Multiple Context
 * Managers": one statement, nested, combined; and seed 002's
 * combined_manager written with an exit stack (AsyncExitStack).
 *
 *   async with manager1() as res1, manager2() as res2: ...   # one statement
 *   async with manager1() as res1:                           # nested
 *       async with manager2() as res2: ...
 *   @asynccontextmanager
 *   async def combined_manager():                            # combined
 *       async with manager1() as res1:
 *           async with manager2() as res2:
 *               yield (res1, res2)
 *
 * All three enter 1 then 2 and exit 2 then 1. When the number of managers
 * is known only at run time, an exit stack enters them one by one and
 * exits them LIFO, like nested blocks: a manager made of managers is a
 * few lines (cb_pool below, a pool of N connections). */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

typedef struct cb_manager {
    const char *name;
} cb_manager;

static int cb_enter(void *self, void **out) {
    cb_manager *m = self;
    int rc = aw_yield(); /* an async setup */
    if (rc < 0)
        return rc;
    printf("enter %s\n", m->name);
    *out = (void *)m->name;
    return 0;
}

static int cb_exit(void *self, const aw_err_t *err) {
    cb_manager *m = self;
    aw_yield(); /* an async cleanup (shielded) */
    printf("exit %s\n", m->name);
    return 0;
}

static const aw_cm_type_t cb_type = {.name = "manager", .enter = cb_enter, .exit = cb_exit};
#define manager1() aw_cm_temp(&cb_type, (cb_manager){"manager1"})
#define manager2() aw_cm_temp(&cb_type, (cb_manager){"manager2"})

typedef struct cb_pair {
    const char *res1, *res2;
} cb_pair;

static int combined_manager(aw_gencm_t *g, void *arg) {
    int rc = 0;
    aw_with (const char *res1, manager1())
    aw_with (const char *res2, manager2()) {
        cb_pair pair = {res1, res2};
        rc = aw_gencm_yield(g, &pair); /* yield (res1, res2) */
    }
    return rc < 0 ? rc : aw_status();
}

/* A manager of N connections, made with an exit stack: enter opens them
 * one by one (if one fails, those already open close, in reverse); the
 * block gets them all; exit closes them LIFO. */
typedef struct cb_pool {
    int n;
    cb_manager conns[4];
    const char *names[4];
} cb_pool;

static const char *const cb_conn_names[] = {"conn 0", "conn 1", "conn 2", "conn 3"};

static int cb_pool_gen(aw_gencm_t *g, void *arg) {
    cb_pool *p = arg;
    int rc = 0;
    aw_with (aw_exitstack_t *stack, aw_exitstack()) {
        int i = 0;
        for (; i < p->n; i++) {
            p->conns[i].name = cb_conn_names[i];
            if (aw_exitstack_enter(stack, aw_cm(&cb_type, &p->conns[i]), (void **)&p->names[i]) < 0)
                break; /* leaves the for only */
        }
        if (i < p->n)
            aw_leave(); /* the ones entered so far exit, with the error */
        rc = aw_gencm_yield(g, p->names);
    }
    return rc < 0 ? rc : aw_status();
}

int example_combined(void *arg) {
    puts("-- one statement");
    aw_with (const char *res1, manager1())
    aw_with (const char *res2, manager2()) {
        printf("using %s and %s\n", res1, res2);
    }
    if (aw_status() < 0)
        return aw_status();

    puts("-- nested");
    aw_with (const char *res1, manager1()) {
        aw_with (const char *res2, manager2()) {
            printf("using %s and %s\n", res1, res2);
        }
    }
    if (aw_status() < 0)
        return aw_status();

    puts("-- combined");
    aw_with (cb_pair *both, aw_gencm(combined_manager, NULL)) {
        printf("using %s and %s\n", both->res1, both->res2);
    }
    if (aw_status() < 0)
        return aw_status();

    puts("-- combined with an exit stack");
    cb_pool pool = {.n = 3};
    aw_with (const char **names, aw_gencm(cb_pool_gen, &pool)) {
        printf("using %s, %s and %s\n", names[0], names[1], names[2]);
    }
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_combined, NULL) < 0; }
#endif
