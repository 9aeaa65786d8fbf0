/* examples/workers_lock.c -- seed 002, section 5: a lock shared by workers.
 *
 *   shared_resource = AsyncLock()        # wraps asyncio.Lock
 *   async def worker(name):
 *       async with shared_resource:
 *           print(f"{name}: Acquired lock")
 *           await asyncio.sleep(1)
 *           print(f"{name}: Releasing lock")
 *   await asyncio.gather(worker("Worker 1"), worker("Worker 2"), worker("Worker 3"))
 *
 * aw_lock_t is that lock, and aw_locked() its manager (the seed's AsyncLock
 * class is the same thing written by hand). The lock hands over in FIFO
 * order, so the workers take turns in the order they asked; the owner is
 * known (a release by another task is -EPERM). aw_gather (see
 * workers_gather.c) runs the three calls as a task group. The seed sleeps
 * 1 s; here 30 ms. */
#include <awith.h>
#include <stdio.h>

#include "examples.h"

#define WL_WORK_MS 30 /* the seed: asyncio.sleep(1) */

static aw_lock_t shared_resource = AW_LOCK_INIT("shared_resource");

static int wl_worker(void *arg, void **result) { /* result: None, as in the seed */
    const char *name = arg;
    aw_with (aw_locked(&shared_resource)) {
        printf("%s: Acquired lock\n", name);
        if (aw_sleep_ms(WL_WORK_MS) < 0)
            aw_leave(); /* cancelled: the lock is released all the same */
        printf("%s: Releasing lock\n", name);
    }
    return aw_status();
}

int example_workers_lock(void *arg) {
    aw_result_t r[] = {AW_RESULT(wl_worker, "Worker 1"), AW_RESULT(wl_worker, "Worker 2"),
                       AW_RESULT(wl_worker, "Worker 3")};
    return aw_gather(r, 3); /* await asyncio.gather(...) */
}

#ifndef AW_EXAMPLE_NO_MAIN
int main(void) { return aw_main(example_workers_lock, NULL) < 0; }
#endif
