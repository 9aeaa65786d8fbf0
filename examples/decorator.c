/* examples/decorator.c -- seed 003, "Method 2: Using the
 * asynccontextmanager Decorator", and the decorator use of a manager.
 *
 *   @contextlib.asynccontextmanager
 *   async def resource_manager():
 *       resource = await setup_resource()
 *       try:
 *           yield resource
 *       finally:
 *           await cleanup_resource(resource)
 *
 * Setup and cleanup sit together in one function: aw_gencm(). Python can
 * also apply such a manager as a decorator (every call of the decorated
 * function runs inside a fresh instance); aw_gencm_call(gen, garg, fn, arg)
 * is that call. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

#define DC_IO_MS 10

typedef struct dc_resource {
    int serial;
} dc_resource;

static int dc_serial;

static int resource_manager(aw_gencm_t *g, void *arg) {
    dc_resource resource = {++dc_serial}; /* resource = await setup_resource() */
    if (aw_sleep_ms(DC_IO_MS) < 0)
        return aw_status();
    printf("Set up resource %d\n", resource.serial);
    int rc = aw_gencm_yield(g, &resource); /* try: yield resource */
    aw_sleep_ms(DC_IO_MS);                 /* finally: await cleanup_resource(resource) */
    printf("Cleaned up resource %d\n", resource.serial);
    return rc;
}

/* A function to decorate: it runs inside a fresh resource_manager. */
static int dc_job(void *arg) {
    printf("Job %s runs inside its own instance\n", (const char *)arg);
    return aw_yield();
}

int example_decorator(void *arg) {
    dc_serial = 0;
    aw_with (dc_resource *res, aw_gencm(resource_manager, NULL)) {
        printf("Using resource %d\n", res->serial);
    }
    if (aw_status() < 0)
        return aw_status();

    /* the decorator form: each call, a fresh instance */
    if (aw_gencm_call(resource_manager, NULL, dc_job, "a") < 0)
        return aw_status();
    return aw_gencm_call(resource_manager, NULL, dc_job, "b");
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_decorator, NULL) < 0; }
#endif
