/* tests for src/coro/stack.c: the stack cache (LIFO reuse, the guard
 * budget), guard pages and canaries; and, through the public API, that a
 * task overflowing its stack is killed with a message naming it. */
#include "../../src/coro/coro.h"
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* ---- the cache ---- */

Test(stack, cache_hands_back_the_warmest_stack) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 64 * 1024, 8192);
    aw__stack_t *a = aw__stack_get(&sc), *b = aw__stack_get(&sc), *c = aw__stack_get(&sc);
    cr_assert(a && b && c);
    cr_assert(a != b && b != c && a != c);
    cr_assert_eq(sc.live, 3);
    aw__stack_put(&sc, a);
    aw__stack_put(&sc, c);
    cr_assert_eq(sc.live, 1);
    /* last in, first out */
    cr_assert_eq(aw__stack_get(&sc), c);
    cr_assert_eq(aw__stack_get(&sc), a);
    aw__stack_t *d = aw__stack_get(&sc);
    cr_assert(d != a && d != b && d != c, "a fresh stack once the returned ones are used");
    cr_assert_eq(sc.live, 4);
    aw__stack_cache_fini(&sc);
}

Test(stack, cached_stacks_have_the_size_and_are_usable) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 20000, 8192); /* rounded up to pages */
    cr_assert_eq(sc.size % page(), 0);
    cr_assert_geq(sc.size, 20000);
    aw__stack_t *s[70]; /* more than one slab */
    for (int i = 0; i < 70; i++) {
        s[i] = aw__stack_get(&sc);
        cr_assert_not_null(s[i]);
        cr_assert_eq((uintptr_t)s[i]->hi % 16, 0, "the top is 16-byte aligned");
        cr_assert_geq((size_t)(s[i]->hi - s[i]->lo), sc.size - sizeof(aw__stack_t), "usable bytes");
        cr_assert((char *)s[i] >= s[i]->hi, "the descriptor sits above the usable range");
        memset(s[i]->lo, 0xa5, (size_t)(s[i]->hi - s[i]->lo)); /* all writable */
        cr_assert(aw__stack_ok(s[i]));
    }
    for (int i = 0; i < 70; i++)
        for (int j = i + 1; j < 70; j++)
            cr_assert(s[i]->hi <= s[j]->lo || s[j]->hi <= s[i]->lo, "stacks %d and %d overlap", i, j);
    cr_assert_eq(sc.nslabs, 2);
    for (int i = 0; i < 70; i++)
        aw__stack_put(&sc, s[i]);
    cr_assert_eq(sc.live, 0);
    cr_assert_eq(sc.cached, 128);
    aw__stack_cache_fini(&sc);
}

/* The budget is spent exactly: 2 guarded stacks, then canaries only. */
Test(stack, guard_budget_limits_guarded_stacks) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 2);
    int guarded = 0;
    for (int i = 0; i < 128; i++) {
        aw__stack_t *s = aw__stack_get(&sc);
        cr_assert_not_null(s);
        guarded += s->guarded != 0;
        if (!s->guarded)
            cr_assert_eq(*aw__stack_canary(s), AW__STACK_CANARY, "stack %d: no guard and no canary", i);
    }
    /* 2 from the budget, then packed slabs: only their lowest stack has
     * the slab's guard page below it */
    cr_assert_eq(guarded, 3);
    cr_assert_eq(sc.guard_budget, 0);
    aw__stack_cache_fini(&sc);
}

/* "A cache makes guarded stacks while its guard budget lasts and, past it,
 * canary stacks": the first stacks handed out are the guarded ones (so the
 * main task and the first tasks get guard pages). */
Test(stack, guard_budget_guards_the_first_stacks_handed_out) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 2);
    aw__stack_t *s0 = aw__stack_get(&sc), *s1 = aw__stack_get(&sc), *s2 = aw__stack_get(&sc);
    cr_expect(s0->guarded, "1st stack handed out is not guarded");
    cr_expect(s1->guarded, "2nd stack handed out is not guarded");
    cr_expect(!s2->guarded, "3rd stack handed out is guarded");
    aw__stack_cache_fini(&sc);
}

Test(stack, stack_ok_detects_an_overwritten_canary) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 1);
    /* with a budget of 1 all but one stack of the slab have canaries */
    aw__stack_t *s = NULL;
    for (int i = 0; i < 3 && (!s || s->guarded); i++)
        s = aw__stack_get(&sc);
    cr_assert(!s->guarded);
    cr_assert(aw__stack_ok(s));
    char *canary = (char *)aw__stack_canary(s);
    canary[3] ^= 1;
    cr_assert(!aw__stack_ok(s), "a flipped bit in the canary goes unnoticed");
    canary[3] ^= 1;
    cr_assert(aw__stack_ok(s));
    memset(s->lo, 0, 1024); /* the stack itself: fine */
    cr_assert(aw__stack_ok(s));
    memset(canary, 0xa5, 64);
    cr_assert(!aw__stack_ok(s));
    for (int i = 0; i < AW__CANARY_WORDS; i++)
        aw__stack_canary(s)[i] = AW__STACK_CANARY;
    cr_assert(aw__stack_ok(s));
    canary[63] = 0;
    cr_assert(!aw__stack_ok(s), "every byte counts");
    aw__stack_cache_fini(&sc);
}

/* Past the budget, slabs are packed: the canary of a stack is the last
 * word of the descriptor of the stack below, on that stack's top page,
 * and the lowest stack of the slab has the slab's guard page. */
Test(stack, packed_slab_canary_is_the_neighbours_last_word) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 0);
    aw__stack_t *s0 = aw__stack_get(&sc), *s1 = aw__stack_get(&sc);
    cr_assert(s0->guarded, "the slab's lowest stack sits on its guard page");
    cr_assert(!s1->guarded);
    cr_assert_eq(s1->lo, (char *)(s0 + 1), "packed: no gap between stacks");
    cr_assert_eq(aw__stack_canary(s1), s0->canary);
    cr_assert(aw__stack_ok(s1));
    s1->lo[-1] = 0; /* the first byte of an overflow */
    cr_assert(!aw__stack_ok(s1));
    aw__stack_cache_fini(&sc);
}

Test(stack, guarded_stacks_are_always_ok) {
    aw__stack_t *s = aw__stack_map(16 * 1024);
    cr_assert_not_null(s);
    cr_assert(s->guarded);
    memset(s->lo, 0, 64);
    cr_assert(aw__stack_ok(s));
    aw__stack_unmap(s);
}

Test(stack, in_guard) {
    size_t p = page();
    aw__stack_t *s = aw__stack_map(40000); /* odd sizes round up */
    cr_assert_not_null(s);
    cr_assert(s->guarded);
    cr_assert_geq((size_t)(s->hi - s->lo), 40000 - 64);
    cr_assert(aw__stack_in_guard(s, s->lo - 1));
    cr_assert(aw__stack_in_guard(s, s->lo - p));
    cr_assert(aw__stack_in_guard(s, s->lo - p / 2));
    cr_assert(!aw__stack_in_guard(s, s->lo - p - 1));
    cr_assert(!aw__stack_in_guard(s, s->lo));
    cr_assert(!aw__stack_in_guard(s, s->hi - 1));
    cr_assert(!aw__stack_in_guard(s, NULL));
    aw__stack_unmap(s);

    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 0); /* no guards but the slab's */
    aw__stack_get(&sc);
    s = aw__stack_get(&sc);
    cr_assert(!s->guarded);
    cr_assert(!aw__stack_in_guard(s, s->lo - 1), "an unguarded stack has no guard page");
    aw__stack_cache_fini(&sc);
}

Test(stack, the_guard_page_faults, .signal = SIGSEGV) {
    aw__stack_t *s = aw__stack_map(16 * 1024);
    cr_assert(s->guarded);
    signal(SIGSEGV, SIG_DFL); /* not ASan's report-and-exit handler */
    volatile char *g = s->lo - 1;
    *g = 1;
}

Test(stack, cache_guard_pages_fault, .signal = SIGSEGV) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 8192);
    aw__stack_t *s = aw__stack_get(&sc);
    aw__stack_get(&sc);
    aw__stack_t *t = aw__stack_get(&sc); /* one in the middle of the slab */
    cr_assert(s->guarded && t->guarded);
    signal(SIGSEGV, SIG_DFL);
    volatile char *g = t->lo - 1;
    *g = 1;
}

/* ---- overflow of a task's stack, through the public API ----
 *
 * The child process runs aw_main with stderr on a pipe; the parent checks
 * how it died and what it said. */

typedef struct child {
    int status;
    char err[8192];
} child_t;

static void run_child(const aw_loop_opts_t *opts, aw_task_fn fn, child_t *out) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(SIGABRT, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        alarm(30);
        int rc = aw_main_opts(opts, fn, NULL);
        fprintf(stderr, "aw_main returned %d\n", rc);
        _exit(rc == 0 ? 0 : 3);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], out->err + n, sizeof out->err - 1 - n)) > 0)
        n += (size_t)r;
    out->err[n] = 0;
    close(p[0]);
    cr_assert_eq(waitpid(pid, &out->status, 0), pid);
}

static void expect_abort(const child_t *c, const char *name, const char *how) {
    char want[128];
    snprintf(want, sizeof want, "stack overflow in task '%s'", name);
    cr_assert(WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT,
              "the child should die by SIGABRT; status %#x (%s%d); stderr:\n%s", c->status,
              WIFSIGNALED(c->status) ? "signal " : "exit ",
              WIFSIGNALED(c->status) ? WTERMSIG(c->status) : WEXITSTATUS(c->status), c->err);
    cr_assert(strstr(c->err, want), "stderr lacks \"%s\":\n%s", want, c->err);
    cr_assert(strstr(c->err, how), "stderr lacks \"%s\":\n%s", how, c->err);
}

static volatile int keep_going = 1;

/* Unbounded recursion: only a guard page stops it. */
__attribute__((noinline)) static int smash(int depth) {
    volatile char buf[1024];
    for (size_t i = 0; i < sizeof buf; i += 64)
        buf[i] = (char)depth;
    int r = keep_going ? smash(depth + 1) : 0;
    return r + buf[depth % 1024];
}

static int overflow_guarded(void *arg) { return smash(0); }

static int spawn_overflow_guarded(void *arg) {
    aw_spawn(NULL, overflow_guarded, NULL, NULL);
    aw_sleep_ms(5000);
    return 0;
}

Test(stack, guard_page_overflow_names_the_task) {
    child_t c;
    run_child(NULL, spawn_overflow_guarded, &c);
    expect_abort(&c, "overflow_guarded", "guard page");
}

static int main_overflows(void *arg) { return smash(0); }

Test(stack, guard_page_overflow_of_the_main_task) {
    child_t c;
    run_child(NULL, main_overflows, &c);
    expect_abort(&c, "main", "guard page");
}

/* Bounded overflow: `over` bytes below the stack's bottom, then unwind. A
 * canary stack cannot stop it; the canary check at the next suspension
 * (or at the task's end) must. The overrun lands on the canary, then on
 * the top of the stack below (or an unprotected gap page). */
static uintptr_t rec_top;
static size_t rec_limit;

__attribute__((noinline)) static int descend(int depth) {
    volatile char buf[256];
    for (size_t i = 0; i < sizeof buf; i += 16)
        buf[i] = (char)depth;
    int r = rec_top - (uintptr_t)buf < rec_limit ? descend(depth + 1) : 0;
    return r + buf[depth % 256];
}

static int overflow_canary(void *arg) {
    volatile char here;
    rec_top = (uintptr_t)&here;
    rec_limit = 64 * 1024 + 1024; /* the stack size, plus 1 KiB */
    int r = descend(0);
    aw_sleep_ms(1); /* the check runs here */
    fprintf(stderr, "overflow_canary survived its overflow (%d)\n", r);
    return 0;
}

static int spawn_overflow_canary(void *arg) {
    aw_task_t *t;
    aw_spawn(NULL, overflow_canary, NULL, &t);
    aw_task_join(t);
    return 0;
}

Test(stack, canary_overflow_names_the_task) {
    /* One guarded stack: whichever stack it is, the main task's or one
     * nobody uses, the second stack handed out (the overflowing task's)
     * is a canary stack. */
    aw_loop_opts_t o = {.stack_size = 64 * 1024, .guarded_stacks = 1};
    child_t c;
    run_child(&o, spawn_overflow_canary, &c);
    expect_abort(&c, "overflow_canary", "canary");
}

static int return_after_overflow(void *arg) {
    volatile char here;
    rec_top = (uintptr_t)&here;
    rec_limit = 64 * 1024 + 512;
    return descend(0) > 1000000 ? 1 : 0; /* the check at the task's end */
}

static int spawn_return_after_overflow(void *arg) {
    aw_spawn(NULL, return_after_overflow, NULL, NULL);
    aw_sleep_ms(100);
    return 0;
}

Test(stack, canary_is_checked_when_a_task_ends) {
    aw_loop_opts_t o = {.stack_size = 64 * 1024, .guarded_stacks = 1};
    child_t c;
    run_child(&o, spawn_return_after_overflow, &c);
    expect_abort(&c, "return_after_overflow", "canary");
}

static int fine(void *arg) {
    volatile char here;
    rec_top = (uintptr_t)&here;
    rec_limit = 32 * 1024; /* half the stack */
    descend(0);
    return aw_sleep_ms(1);
}

static int spawn_fine(void *arg) {
    for (int i = 0; i < 4; i++)
        aw_spawn(NULL, fine, NULL, NULL);
    return aw_sleep_ms(50);
}

Test(stack, canary_stacks_used_within_bounds_are_fine) {
    aw_loop_opts_t o = {.stack_size = 64 * 1024, .guarded_stacks = 1};
    child_t c;
    run_child(&o, spawn_fine, &c);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0, "status %#x; stderr:\n%s",
              c.status, c.err);
}

/* issue 14: stacks are made as they are first handed out, so a fresh
 * loop with a task or two touches a page or two, not a slab's 64 top
 * pages; the slab's address space is reserved (counted as cached). */
Test(stack, issue14_a_fresh_cache_makes_only_the_stacks_handed_out) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 8192);
    aw__stack_t *a = aw__stack_get(&sc);
    cr_assert_not_null(a);
    cr_assert_eq(sc.nslabs, 1);
    cr_assert_eq(sc.slabs[0].carved, 1, "made %u stacks for one", sc.slabs[0].carved);
    aw__stack_t *b = aw__stack_get(&sc);
    cr_assert_eq(sc.slabs[0].carved, 2);
    aw__stack_put(&sc, b);
    cr_assert_eq(aw__stack_get(&sc), b, "a returned stack is used before a new one is made");
    cr_assert_eq(sc.slabs[0].carved, 2);
    cr_assert_eq(sc.live + sc.cached, 64, "the slab's stacks: live or cached");
    aw__stack_cache_fini(&sc);
}

/* issue 14: every mapping the stacks make is counted against the limit
 * (vm.max_map_count less a reserve), and given back at close; past the
 * limit a get fails and says why. Guard markers (Linux 6.13+) do not split
 * a slab: one mapping for 64 guarded stacks; mprotect guards split it. */
Test(stack, issue14_mappings_are_counted_against_the_limit) {
    size_t base = aw__stack_maps();
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 8192);
    cr_assert_not_null(aw__stack_get(&sc));
    size_t one = aw__stack_maps() - base;
    cr_assert_geq(one, 1);
    cr_assert_leq(one, 1 + 2 * 64);
    aw__stack_map_max = aw__stack_maps(); /* no room for another slab */
    for (int i = 1; i < 64; i++)
        cr_assert_not_null(aw__stack_get(&sc), "stack %d of the slab already mapped", i);
    cr_assert_null(aw__stack_get(&sc), "a slab past the limit was made");
    size_t maps, limit;
    cr_assert_eq(aw__stack_why(&maps, &limit), 1, "the failure is not put on the map limit");
    cr_assert_eq(limit, aw__stack_map_max);
    aw__stack_map_max = 0;
    cr_assert_not_null(aw__stack_get(&sc), "the limit lifted, stacks come again");
    aw__stack_cache_fini(&sc);
    cr_assert_eq(aw__stack_maps(), base, "mappings not given back at close");
}
