/* awith/alloc.h: the allocator the library uses for its own memory
 * (uv_replace_allocator, curl_global_init_mem, sqlite3_config's
 * SQLITE_CONFIG_MALLOC).
 *
 *   int main(void) {
 *       if (aw_allocator_set(my_malloc, my_realloc, my_calloc, my_free) < 0)
 *           return 1;                       // before anything else of awith
 *       return aw_main(run, NULL) < 0;
 *   }
 *
 * Every heap block awith allocates itself (loops, tasks' records, error
 * records, exit-stack slabs, thread-pool jobs, buffers, connections'
 * state) comes from the table's functions and goes back to its free.
 * Not covered: coroutine stacks (mmap'd, with a guard page), what libc
 * allocates for itself (stdio, getaddrinfo) and what the resource
 * libraries allocate (libpq has no hook; configure SQLite, libcurl and
 * OpenSSL with their own: sqlite3_config, curl_global_init_mem,
 * CRYPTO_set_mem_functions).
 *
 * Why process-wide state, when the rule is that nothing lives outside a
 * loop (docs/design.md, "Logging" is the other exception): a block must
 * go back to the allocator that made it, and blocks cross loops (a
 * message posted to another loop, a reuseport group); one table for the
 * process is the only answer that cannot free into the wrong heap. It is
 * set once, before the library allocates anything, and only read after,
 * so it costs loops on any number of threads no contention. */
#ifndef AWITH_ALLOC_H
#define AWITH_ALLOC_H

#include <awith/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Replace the allocator: every allocation of the library goes to these
 * from now on. All four non-NULL, with the C library's semantics (malloc
 * and calloc NULL on failure, realloc(NULL, n) allocates, free(NULL)
 * does nothing); they may be called from any thread that runs a loop or
 * a thread-pool job, concurrently, and must be thread-safe. All four NULL
 * puts libc's back.
 *
 * Call it before any other awith function: the table is fixed at the
 * first allocation the library makes or when the first loop is created
 * (aw_main, aw_loop_new, aw_loops_run), whichever comes first, and stays
 * fixed for the life of the process (a loop closed since may have left
 * blocks behind: the thread pool, a pending error record).
 *
 * Returns 0; -EBUSY the table is fixed (a loop exists or existed, or the
 * library already allocated); -EINVAL some but not all of the four are
 * NULL. Either failure records a message (which allocates, with the table
 * in force: a failed call leaves it fixed). Never suspends; any thread. */
AW_API int aw_allocator_set(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                            void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *));

/* Free a block the library handed to the caller (aw_file_read_all's
 * buffer, aw_pg_res_bytea's bytes): with the table's free, so it is
 * right whichever allocator is in force (plain free() is right only with
 * the default one). NULL does nothing. Never suspends; any thread. */
AW_API void aw_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
