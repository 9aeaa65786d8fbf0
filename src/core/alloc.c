/* alloc.c: aw_allocator_set and aw_free (awith/alloc.h), the public face
 * of the table in src/coro/alloc.c. Here in core/ because refusing a
 * change records an error (aw_raise), which coro/ cannot. */
#include "core.h"

#include <awith/alloc.h>
#include <errno.h>

int aw_allocator_set(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                     void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *)) {
    int given = !!malloc_fn + !!realloc_fn + !!calloc_fn + !!free_fn;
    if (given != 0 && given != 4)
        return aw_raise(-EINVAL, "aw_allocator_set: %d of malloc, realloc, calloc and free "
                                 "given: give all four, or none (libc's)", given);
    if (aw__alloc_replace(malloc_fn, realloc_fn, calloc_fn, free_fn) < 0)
        return aw_raise(-EBUSY, "aw_allocator_set: too late: the library has already "
                                "allocated or created a loop with the allocator in force; "
                                "call it first thing in main");
    return 0;
}

void aw_free(void *p) { aw__free(p); }
