/* examples/workers_gather.c -- seed 002, section 5, without the lock:
 *
 *   results = await asyncio.gather(worker("Worker 1"), worker("Worker 2"), worker("Worker 3"))
 *
 * aw_gather is gather with structure: it runs the calls as the children of
 * a task group, waits for every one, and fills their results in the order
 * of the calls (whatever order they finish in); the first failure cancels
 * the others and is returned (-AW_EGROUP, the failures as its members).
 * The three workers run concurrently, so the whole thing takes one sleep,
 * not three. (With a lock they would take turns; see workers_lock.c.) The
 * seed sleeps 1 s; here 100 ms. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

#define WORK_MS 100 /* the seed: asyncio.sleep(1) */

/* A gathered call returns its status and may store a result. */
static int worker(void *arg, void **result) {
    const char *name = arg;
    printf("%s: started\n", name);
    int rc = aw_sleep_ms(WORK_MS);
    if (rc < 0)
        return rc; /* cancelled: a sibling failed, or we were cancelled */
    printf("%s: finished\n", name);
    *result = (void *)name; /* `return name` */
    return 0;
}

int example_workers_gather(void *arg) {
    aw_result_t r[] = {AW_RESULT(worker, "Worker 1"), AW_RESULT(worker, "Worker 2"),
                       AW_RESULT(worker, "Worker 3")};
    if (aw_gather(r, 3) < 0) /* waits for all three */
        return aw_status(); /* -AW_EGROUP: the failures are its members */
    printf("All workers finished: %s, %s, %s\n", (char *)r[0].value, (char *)r[1].value,
           (char *)r[2].value);
    return 0;
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_workers_gather, NULL) < 0; }
#endif
