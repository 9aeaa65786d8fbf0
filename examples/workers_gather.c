/* examples/workers_gather.c -- seed 002, section 5, without the lock:
 *
 *   await asyncio.gather(worker("Worker 1"), worker("Worker 2"), worker("Worker 3"))
 *
 * A task group is gather with structure: leaving the block waits for every
 * child; the first failure cancels the others. The three workers run
 * concurrently, so the whole thing takes one sleep, not three. (With a
 * lock they would take turns; locks come with sync/.) The seed sleeps 1 s;
 * here 100 ms. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

#define WORK_MS 100 /* the seed: asyncio.sleep(1) */

static int worker(void *arg) {
    const char *name = arg;
    printf("%s: started\n", name);
    int rc = aw_sleep_ms(WORK_MS);
    if (rc < 0)
        return rc; /* cancelled: the group is failing or being left */
    printf("%s: finished\n", name);
    return 0;
}

int example_workers_gather(void *arg) {
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, worker, "Worker 1", NULL);
        aw_spawn(g, worker, "Worker 2", NULL);
        aw_spawn(g, worker, "Worker 3", NULL);
    } /* waits for all three */
    if (aw_status() < 0)
        return aw_status(); /* -AW_EGROUP: the failures are its members */
    puts("All workers finished");
    return 0;
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_workers_gather, NULL) < 0; }
#endif
