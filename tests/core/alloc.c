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
#include <awith/server.h>
#include <awith/tcp.h>
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

/* ---- the workload ---- */

static void on_thread(void *arg) { *(int *)arg += 1; }

static int child(void *arg) {
    aw_sleep(AW_MS(1));
    return (int)(intptr_t)arg;
}

static int echo(aw_stream_t *s, void *arg) {
    char line[64];
    ssize_t n = aw_stream_read_line(s, line, sizeof line);
    return n > 0 && aw_stream_write(s, line, (size_t)n) >= 0 ? 0 : (int)n;
}

static int noop_exit(void *self, const aw_err_t *err) { return 0; }
static int noop_enter(void *self, void **out) { return 0; }
static const aw_cm_type_t noop_type = {"noop", noop_enter, noop_exit};

static int workload(void *arg) {
    /* a group whose child fails: a group error with a member record */
    aw_with (aw_group_t *g, aw_group()) {
        aw_spawn(g, child, (void *)0, NULL);
        aw_spawn(g, child, (void *)(intptr_t)-EIO, NULL);
    }
    cr_assert_eq(aw_status(), -AW_EGROUP);
    aw_err_clear();
    /* an exit stack past its first slab */
    static char states[200];
    aw_with (aw_exitstack_t *st, aw_exitstack())
        for (int i = 0; i < 200; i++)
            aw_exitstack_enter(st, aw_cm(&noop_type, &states[i]), NULL);
    cr_assert_eq(aw_status(), 0);
    /* the thread pool */
    int ran = 0;
    cr_assert_eq(aw_to_thread(on_thread, &ran, NULL), 0);
    cr_assert_eq(ran, 1);
    /* a deadline (timer heap) */
    aw_with (aw_move_on_after(AW_MS(1)))
        aw_sleep(AW_SEC(10));
    /* TCP: a server, a connection, a line each way */
    aw_with (aw_listener_t *l, aw_tcp_listener("127.0.0.1", 0, NULL))
    aw_with (aw_server(l, echo, NULL))
    aw_with (aw_stream_t *s, aw_tcp_client("127.0.0.1", aw_listener_port(l))) {
        char line[16];
        cr_assert_eq(aw_stream_write(s, "hi\n", 3), 0);
        cr_assert_eq(aw_stream_read_line(s, line, sizeof line), 3);
    }
    cr_assert_eq(aw_status(), 0);
    /* a file read whole: the caller frees the buffer with aw_free */
    char *buf;
    size_t len;
    cr_assert_eq(aw_file_read_all("/proc/self/stat", &buf, &len, 1 << 20), 0);
    cr_assert_gt(len, 0);
    aw_free(buf);
    return 0;
}

Test(alloc, N1_every_block_goes_through_the_table_and_all_come_back) {
    cr_assert_eq(aw_allocator_set(c_malloc, c_realloc, c_calloc, c_free), 0);
    cr_assert_eq(aw_main(workload, NULL), 0);
    long a = atomic_load(&allocs), f = atomic_load(&frees);
    cr_assert_gt(a, 10, "only %ld allocations went through the table", a);
    cr_assert_eq(a, f, "%ld allocations, %ld frees: %ld blocks never came back", a, f, a - f);
    cr_assert_eq(atomic_load(&bad), 0);
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

/* L1, N1: a task still alive after the shutdown grace is reported and
 * never runs again; what it had raised (the -ECANCELED of the shutdown)
 * goes with the loop, not leaked. */
static int stuck_past_the_grace(void *arg) {
    aw_sleep(AW_SEC(3600)); /* cancelled by the shutdown: a record */
    aw_with (aw_shield(AW_NEVER))
        aw_sleep(AW_SEC(3600)); /* past the grace */
    return aw_status();
}
static int leaves_a_stuck_task(void *arg) {
    aw_spawn(NULL, stuck_past_the_grace, NULL, NULL);
    aw_sleep(AW_MS(5));
    return 0;
}
static void quiet(const char *msg, void *arg) {}

Test(alloc, L1_a_task_alive_past_the_grace_gives_every_block_back) {
    cr_assert_eq(aw_allocator_set(c_malloc, c_realloc, c_calloc, c_free), 0);
    aw_loop_opts_t o = {.shutdown_grace = AW_MS(20), .log = quiet};
    cr_assert_eq(aw_main_opts(&o, leaves_a_stuck_task, NULL), -EBUSY);
    long a = atomic_load(&allocs), f = atomic_load(&frees);
    cr_assert_eq(a, f, "%ld allocations, %ld frees: %ld blocks never came back", a, f, a - f);
}
