/* awith/pool.h: a generic resource pool (asyncpg's Pool, for anything).
 *
 *   aw_pool_t *pool;
 *   aw_pool_open(&pool, &aw_pg_pool_ops, (void *)dsn, &(aw_pool_opts_t){.max = 10});
 *   aw_with (aw_pg_t *db, aw_pool_item(pool)) { ... }   // acquire ... release
 *   aw_pool_close(pool, AW_SEC(5));
 *
 * Guarantees (SEMANTICS K1, K6, decision 7):
 * - never more than `max` items exist (idle + in use + being opened);
 * - waiters are served first come, first served; an item released while
 *   tasks wait goes straight to the first of them, which runs the `check`
 *   on it as on an idle one (and opens a new item in its slot if it
 *   fails);
 * - acquire is atomic with respect to cancellation: cancelled or timed out
 *   at any suspension point (waiting, opening, checking), it leaves the
 *   counts as they were; a waiter woken with an item (or a free slot) and
 *   cancelled before it ran passes it on to the next waiter;
 * - an item its `usable` callback rejects on release (e.g. a poisoned
 *   connection) is closed, never handed out again (K2).
 * Idle items older than max_idle (beyond `min`) and items older than
 * max_lifetime are closed lazily, on acquire and release (no timer task).
 * Costs: acquire and release are O(1) plus O(in use) to find an item on
 * release; no malloc once an item exists. One loop (thread) only. */
#ifndef AWITH_POOL_H
#define AWITH_POOL_H

#include <awith/cm.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aw_pool aw_pool_t;

/* What the pool does with an item; ctx is the pool's context argument. */
typedef struct aw_pool_ops {
    const char *name;                            /* for messages */
    int (*open)(void *ctx, void **item);         /* may suspend; 0 or -errno */
    void (*close)(void *ctx, void *item);        /* never suspends */
    int (*reset)(void *ctx, void *item);         /* on release, may suspend; < 0: close it (optional) */
    int (*check)(void *ctx, void *item);         /* health check on acquire, may suspend (optional) */
    bool (*usable)(void *ctx, void *item);       /* on release: false closes it (optional) */
} aw_pool_ops_t;

typedef struct aw_pool_opts {
    int min;                 /* opened by aw_pool_open, kept when idle; default 0 */
    int max;                 /* default 10 */
    aw_ns_t max_idle;        /* close items idle longer (beyond min); 0: never */
    aw_ns_t max_lifetime;    /* close items older than this; 0: never */
    aw_ns_t check_idle;      /* run check only on items idle at least this long; 0: always */
} aw_pool_opts_t;

typedef struct aw_pool_stats {
    int size;                /* idle + in_use + opening */
    int idle, in_use, opening, waiters;
    uint64_t acquired, created, destroyed, timeouts, check_failures, reset_failures;
} aw_pool_stats_t;

/* Make a pool and open `min` items. Suspends (opening). ops and ctx are
 * borrowed for the pool's life. 0, -EINVAL, -ENOMEM, or open's error
 * (nothing is left open then). */
AW_API int aw_pool_open(aw_pool_t **out, const aw_pool_ops_t *ops, void *ctx,
                        const aw_pool_opts_t *opts);

/* Take an item, waiting until `deadline` (absolute; AW_NEVER) when all
 * `max` are in use. A cancellation point. 0; -ETIMEDOUT (deadline passed:
 * the record names the pool and where its items are); -ECANCELED;
 * -ESHUTDOWN (pool closed); open's error. */
#define aw_pool_acquire(p, item, deadline) aw__pool_acquire((p), (item), (deadline), __FILE__, __LINE__)
AW_API int aw__pool_acquire(aw_pool_t *p, void **item, aw_ns_t deadline, const char *file, int line);

/* Give an item back: reset it (may suspend) and hand it to the first
 * waiter or keep it idle; close it if unusable, too old, or the reset
 * failed. 0, or -EINVAL (not an item of this pool in use). */
AW_API int aw_pool_release(aw_pool_t *p, void *item);
/* Give an item back to be closed (it is broken). Never suspends. */
AW_API int aw_pool_discard(aw_pool_t *p, void *item);

/* Close: fail waiters with -ESHUTDOWN, close idle items, wait up to
 * `grace` for items in use to come back (closing them as they do). 0, or
 * -EBUSY with a record listing each item still out, with where and by
 * which task it was acquired; the pool then frees itself when the last of
 * them is released (and, either way, not before every task still inside
 * aw_pool_acquire, a waiter told -ESHUTDOWN, has left it); one never
 * released is reported at loop close, like an open resource (M9). Suspends; not
 * a cancellation point (shielded). */
AW_API int aw_pool_close(aw_pool_t *p, aw_ns_t grace);

/* The pool's sizes and counters now, into *out (aw_pool_stats_t). Never
 * suspends; never fails. */
AW_API void aw_pool_stats(const aw_pool_t *p, aw_pool_stats_t *out);

/* Acquire as a manager: enter acquires, exit releases.
 *   aw_with (conn_t *c, aw_pool_item(pool)) { ... }
 *   aw_with (conn_t *c, aw_pool_item_timeout(pool, AW_MS(100))) { ... }
 * An item the block gives back itself (aw_pool_discard when it broke, or
 * aw_pool_release) is not given back again by the exit. */
typedef struct aw_pool_use {
    aw_pool_t *pool;
    aw_ns_t timeout;         /* relative; AW_NEVER */
    void *item;
    const char *file;
    int line;
} aw_pool_use_t;
extern AW_API const aw_cm_type_t aw_pool_use_type;
#define aw_pool_item_timeout(p, ns) \
    aw_cm_temp(&aw_pool_use_type, (aw_pool_use_t){(p), (ns), NULL, __FILE__, __LINE__})
#define aw_pool_item(p) aw_pool_item_timeout((p), AW_NEVER)

#ifdef __cplusplus
}
#endif

#endif
