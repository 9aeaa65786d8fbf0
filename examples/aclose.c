/* examples/aclose.c -- seed 002, section 10: explicit close (aclose()).
 *
 *   class AsyncResource:
 *       async def __aenter__(self):
 *           print("Resource acquired"); return self
 *       async def __aexit__(self, exc_type, exc_val, exc_tb):
 *           await self.aclose()
 *       async def aclose(self):
 *           print("Resource released")
 *
 * The exit is the close: one code path. The close is idempotent, so a
 * block may close its resource early (to release it as soon as it is not
 * needed) and the exit then has nothing left to do: released exactly
 * once. Closing always releases, and reports its error after releasing.
 * A resource opened without a block is closed the same way. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

typedef struct ac_resource {
    int open;
} ac_resource;

static int ac_open(ac_resource *r) {
    int rc = aw_checkpoint(); /* acquiring is a cancellation point */
    if (rc < 0)
        return rc;
    r->open = 1;
    puts("Resource acquired");
    return 0;
}

/* aclose(): idempotent; always releases. */
static int ac_close(ac_resource *r) {
    if (!r->open)
        return 0;
    r->open = 0;
    puts("Resource released");
    return 0;
}

static int ac_enter(void *self, void **out) {
    *out = self;
    return ac_open(self);
}

static int ac_exit(void *self, const aw_err_t *err) { return ac_close(self); }

static const aw_cm_type_t ac_type = {.name = "AsyncResource", .enter = ac_enter, .exit = ac_exit};

int example_aclose(void *arg) {
    ac_resource resource = {0};
    aw_with (aw_cm(&ac_type, &resource)) {
        puts("Using resource");
    }

    /* or explicitly, before the block ends */
    ac_resource resource2 = {0};
    aw_with (ac_resource *r, aw_cm(&ac_type, &resource2)) {
        ac_close(r);
        puts("Closed early; the exit has nothing left to do");
    }

    /* and without a block: the same close */
    ac_resource resource3 = {0};
    if (ac_open(&resource3) < 0)
        return aw_status();
    puts("Using resource without a block");
    ac_close(&resource3);
    return aw_status();
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_aclose, NULL) < 0; }
#endif
