/* tests/core/alloc.c: the allocator table (awith/alloc.h), SEMANTICS N1.
 *
 * The counting allocator puts a 16-byte header with a magic word before
 * every block it hands out. So a block of the table freed by libc's free
 * crashes (not a pointer malloc gave), and a libc block given to the
 * table's free fails the magic check: either way round, a call site that
 * bypasses the table is caught, not just counted. The workload touches
 * every layer that allocates (tasks, groups, errors, exit stacks, the
 * thread pool, cross-thread posts, timers, TCP, files) and, after
 * aw_main, every block must be back. */
#include <awith.h>
#include <awith/alloc.h>
#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC 0x61776974686d656dULL /* "awithmem" */
enum { HDR = 16 };
static atomic_long allocs, frees, bad;

static void *c_malloc(size_t n) {
    unsigned char *p = malloc(n + HDR);
    if (!p)
        return NULL;
    *(unsigned long long *)p = MAGIC;
    atomic_fetch_add(&allocs, 1);
    return p + HDR;
}

static unsigned char *c_head(void *q) {
    unsigned char *p = (unsigned char *)q - HDR;
    if (*(unsigned long long *)p != MAGIC) {
        atomic_fetch_add(&bad, 1);
        abort(); /* a block the table never made */
    }
    return p;
}

static void c_free(void *q) {
    if (!q)
        return;
    unsigned char *p = c_head(q);
    *(unsigned long long *)p = 0;
    atomic_fetch_add(&frees, 1);
    free(p);
}

static void *c_realloc(void *q, size_t n) {
    if (!q)
        return c_malloc(n);
    unsigned char *p = realloc(c_head(q), n + HDR);
    return p ? p + HDR : NULL;
}

static void *c_calloc(size_t n, size_t size) {
    if (size && n > (size_t)-1 / 2 / size)
        return NULL;
    void *q = c_malloc(n * size);
    if (q)
        memset(q, 0, n * size);
    return q;
}

static int try_set(void *arg) {
    int rc = aw_allocator_set(c_malloc, c_realloc, c_calloc, c_free);
    cr_assert_eq(rc, -EBUSY);
    cr_assert_eq(aw_status(), -EBUSY);
    cr_assert(strstr(aw_err_current()->msg, "too late"), "%s", aw_err_current()->msg);
    aw_err_clear();
    return 0;
}

Test(alloc, N1_refused_once_a_loop_exists_and_after_it_closed) {
    cr_assert_eq(aw_main(try_set, NULL), 0);
    cr_assert_eq(aw_allocator_set(c_malloc, c_realloc, c_calloc, c_free), -EBUSY);
    cr_assert_eq(aw_allocator_set(NULL, NULL, NULL, NULL), -EBUSY);
    cr_assert_eq(atomic_load(&allocs), 0, "the refused table was used");
}

static int empty(void *arg) { return 0; }

Test(alloc, N1_half_a_table_is_EINVAL_and_the_default_stays) {
    cr_assert_eq(aw_allocator_set(c_malloc, NULL, c_calloc, c_free), -EINVAL);
    cr_assert_eq(aw_main(empty, NULL), 0);
    cr_assert_eq(atomic_load(&allocs), 0);
}

Test(alloc, N1_set_twice_before_any_loop_the_last_one_wins) {
    cr_assert_eq(aw_allocator_set(c_malloc, c_realloc, c_calloc, c_free), 0);
    cr_assert_eq(aw_allocator_set(NULL, NULL, NULL, NULL), 0);
    cr_assert_eq(aw_main(empty, NULL), 0);
    cr_assert_eq(atomic_load(&allocs), 0);
}
