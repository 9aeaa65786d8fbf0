/* tests for src/coro/coro.c and src/coro/switch_*.S: the machine layer,
 * used directly through the private header (the static library resolves
 * the hidden symbols). Coroutines here never call Criterion's asserts:
 * a failed assert unwinds with longjmp, which must not cross stacks. They
 * record what they saw and the thread checks it. */
#include "../../src/coro/coro.h"

#include <criterion/criterion.h>
#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* ---- helpers ---- */

typedef struct co {
    aw__coro_t c;
    aw__stack_t *s;
} co_t;

static aw__coro_t th; /* the thread's own context */

static co_t *co_new(void (*fn)(void *), void *arg, size_t size) {
    co_t *k = calloc(1, sizeof *k);
    cr_assert_not_null(k);
    k->s = aw__stack_map(size);
    cr_assert_not_null(k->s, "aw__stack_map(%zu) failed", size);
    cr_assert(k->s->guarded, "aw__stack_map makes guarded stacks");
    aw__coro_init(&k->c, k->s->lo, k->s->hi, fn, arg);
    k->c.stack = k->s;
    return k;
}

static void co_free(co_t *k) {
    aw__coro_fini(&k->c);
    aw__stack_unmap(k->s);
    free(k);
}

/* Failures seen on a coroutine stack, checked later on the thread. */
static int nbad;
static char bad[256];
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond) && nbad++ == 0)                                        \
            snprintf(bad, sizeof bad, __VA_ARGS__);                        \
    } while (0)
#define NO_BAD() cr_assert_eq(nbad, 0, "%d failure(s) on coroutine stacks; first: %s", nbad, bad)

/* An opaque value: the compiler cannot fold it. */
static uint64_t opaque(uint64_t x) {
    volatile uint64_t v = x;
    return v;
}

/* ---- ping-pong between two coroutines and the thread ---- */

static co_t *A, *B;
static char trace[64];
static int ntrace;

static void pp_a(void *arg) {
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = (char)('a' + i);
        aw__coro_switch(&A->c, &B->c, 0);
    }
    trace[ntrace++] = 'A';
    aw__coro_switch(&A->c, &th, 1);
}

static void pp_b(void *arg) {
    CHECK(arg == (void *)0xb0b, "pp_b got arg %p", arg);
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = (char)('0' + i);
        aw__coro_switch(&B->c, &th, 0);
    }
    trace[ntrace++] = 'B';
    aw__coro_switch(&B->c, &th, 1);
}

Test(coro, ping_pong_between_two_coroutines_and_the_thread) {
    aw__coro_init_thread(&th);
    A = co_new(pp_a, NULL, 64 * 1024);
    B = co_new(pp_b, (void *)0xb0b, 64 * 1024);
    /* thread -> A -> B -> thread, three times; then A and B finish */
    for (int i = 0; i < 3; i++) {
        aw__coro_switch(&th, &A->c, 0);
        trace[ntrace++] = 'T';
    }
    aw__coro_switch(&th, &A->c, 0); /* A ends: 'A', back here */
    aw__coro_switch(&th, &B->c, 0); /* B ends: 'B', back here */
    trace[ntrace] = 0;
    NO_BAD();
    cr_assert_str_eq(trace, "a0Tb1Tc2TAB");
    co_free(A);
    co_free(B);
    aw__coro_fini(&th);
}

/* ---- callee-saved values: many live locals across switches ---- */

enum { ROUNDS = 2000 };

/* Each context keeps 16 integers and 8 doubles live across every switch
 * (more than there are callee-saved registers, so some sit in rbx/r12-r15
 * or x19-x28/d8-d15 and the rest in the frame) and a copy in memory; the
 * other contexts do the same with other values in the same registers. */
#define LCG(x, k) ((x) * 6364136223846793005ULL + (k))
#define STEP_ALL()                                                                 \
    do {                                                                           \
        v0 = LCG(v0, 1); v1 = LCG(v1, 3); v2 = LCG(v2, 5); v3 = LCG(v3, 7);        \
        v4 = LCG(v4, 9); v5 = LCG(v5, 11); v6 = LCG(v6, 13); v7 = LCG(v7, 15);     \
        v8 = LCG(v8, 17); v9 = LCG(v9, 19); v10 = LCG(v10, 21); v11 = LCG(v11, 23); \
        v12 = LCG(v12, 25); v13 = LCG(v13, 27); v14 = LCG(v14, 29); v15 = LCG(v15, 31); \
        d0 = d0 * 1.0000001 + 0.5; d1 = d1 * 0.9999999 - 0.25; d2 = d2 * 1.5 - d0; \
        d3 = d3 * 0.75 + d1; d4 = d4 + d2 * 1e-3; d5 = d5 - d3 * 1e-3;             \
        d6 = d6 * 1.0000003 + 1.0 / 3.0; d7 = d7 * 0.5 + d6;                       \
    } while (0)

typedef struct live {
    uint64_t v[16];
    double d[8];
} live_t;

/* Run ROUNDS steps, calling sw() between steps; report mismatches. */
static void live_run(uint64_t seed, void (*sw)(int), const char *who) {
    uint64_t v0 = opaque(seed), v1 = opaque(seed + 1), v2 = opaque(seed + 2), v3 = opaque(seed + 3),
             v4 = opaque(seed + 4), v5 = opaque(seed + 5), v6 = opaque(seed + 6), v7 = opaque(seed + 7),
             v8 = opaque(seed + 8), v9 = opaque(seed + 9), v10 = opaque(seed + 10),
             v11 = opaque(seed + 11), v12 = opaque(seed + 12), v13 = opaque(seed + 13),
             v14 = opaque(seed + 14), v15 = opaque(seed + 15);
    double d0 = (double)opaque(seed & 0xffff), d1 = d0 + 1, d2 = d0 + 2, d3 = d0 + 3, d4 = d0 + 4,
           d5 = d0 + 5, d6 = d0 + 6, d7 = d0 + 7;
    /* the same computation on a volatile copy, kept in memory */
    volatile live_t m;
    for (int k = 0; k < 16; k++)
        m.v[k] = seed + (uint64_t)k;
    for (int k = 0; k < 8; k++)
        m.d[k] = (double)(seed & 0xffff) + k;
    for (int r = 0; r < ROUNDS; r++) {
        STEP_ALL();
        for (int k = 0; k < 16; k++)
            m.v[k] = LCG(m.v[k], (uint64_t)(2 * k + 1));
        {
            double e0 = m.d[0], e1 = m.d[1], e2 = m.d[2], e3 = m.d[3], e4 = m.d[4], e5 = m.d[5],
                   e6 = m.d[6], e7 = m.d[7];
            e0 = e0 * 1.0000001 + 0.5; e1 = e1 * 0.9999999 - 0.25; e2 = e2 * 1.5 - e0;
            e3 = e3 * 0.75 + e1; e4 = e4 + e2 * 1e-3; e5 = e5 - e3 * 1e-3;
            e6 = e6 * 1.0000003 + 1.0 / 3.0; e7 = e7 * 0.5 + e6;
            m.d[0] = e0; m.d[1] = e1; m.d[2] = e2; m.d[3] = e3;
            m.d[4] = e4; m.d[5] = e5; m.d[6] = e6; m.d[7] = e7;
        }
        sw(r);
        uint64_t got[16] = {v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15};
        double gotd[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
        for (int k = 0; k < 16; k++)
            CHECK(got[k] == m.v[k], "%s round %d: integer local %d changed across a switch", who, r, k);
        for (int k = 0; k < 8; k++)
            CHECK(memcmp(&gotd[k], (const void *)&m.d[k], sizeof(double)) == 0,
                  "%s round %d: double local %d changed across a switch (%g vs %g)", who, r, k,
                  gotd[k], m.d[k]);
    }
}

static void sw_a(int r) { aw__coro_switch(&A->c, &B->c, 0); }
static void sw_b(int r) { aw__coro_switch(&B->c, &th, 0); }
static void sw_t(int r) { aw__coro_switch(&th, &A->c, 0); }

static void live_a(void *arg) {
    live_run(0x1111111111111111ULL, sw_a, "A");
    aw__coro_switch(&A->c, &th, 1);
}
static void live_b(void *arg) {
    live_run(0x2222222222222222ULL, sw_b, "B");
    aw__coro_switch(&B->c, &th, 1);
}

Test(coro, locals_survive_switches) {
    aw__coro_init_thread(&th);
    A = co_new(live_a, NULL, 64 * 1024);
    B = co_new(live_b, NULL, 64 * 1024);
    live_run(0x3333333333333333ULL, sw_t, "thread");
    /* A is at its last switch to B: let both finish */
    aw__coro_switch(&th, &A->c, 0); /* A finishes -> thread */
    aw__coro_switch(&th, &B->c, 0); /* B finishes -> thread */
    NO_BAD();
    co_free(A);
    co_free(B);
}

/* ---- the exact callee-saved registers, set and read in assembly ---- */

#if defined(__x86_64__)
enum { NREG = 6 }; /* rbx, rbp, r12, r13, r14, r15 */
static const char *const regname[NREG] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};

/* Load vals into the callee-saved registers, aw__coro_switch_fn(from, to),
 * store the registers into out once switched back. */
static void reg_switch(aw__coro_t *from, aw__coro_t *to, const uint64_t *vals, uint64_t *out) {
    __asm__ volatile(
        "movq %%rsp, %%rax\n\t"
        "subq $128, %%rsp\n\t" /* step over the red zone */
        "andq $-16, %%rsp\n\t"
        "pushq %%rax\n\t"     /* the old rsp */
        "pushq %%rbp\n\t"
        "pushq %%rdx\n\t"     /* out */
        "pushq %%rdx\n\t"     /* (alignment) */
        "movq 0(%%rcx), %%rbx\n\t"
        "movq 8(%%rcx), %%rbp\n\t"
        "movq 16(%%rcx), %%r12\n\t"
        "movq 24(%%rcx), %%r13\n\t"
        "movq 32(%%rcx), %%r14\n\t"
        "movq 40(%%rcx), %%r15\n\t"
        "xorl %%edx, %%edx\n\t"
        "call aw__coro_switch_fn\n\t"
        "popq %%rdx\n\t"
        "popq %%rdx\n\t"
        "movq %%rbx, 0(%%rdx)\n\t"
        "movq %%rbp, 8(%%rdx)\n\t"
        "movq %%r12, 16(%%rdx)\n\t"
        "movq %%r13, 24(%%rdx)\n\t"
        "movq %%r14, 32(%%rdx)\n\t"
        "movq %%r15, 40(%%rdx)\n\t"
        "popq %%rbp\n\t"
        "popq %%rsp\n\t"
        : "+D"(from), "+S"(to), "+c"(vals), "+d"(out)
        :
        : "rax", "rbx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "memory", "cc",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}
#define HAVE_REG_SWITCH 1
#endif

#ifdef HAVE_REG_SWITCH
static void reg_fill(uint64_t *v, uint64_t who, int r) {
    for (int k = 0; k < NREG; k++)
        v[k] = (who << 56) ^ ((uint64_t)r << 16) ^ (uint64_t)(k + 1) * 0x0101010101ULL;
}

static void reg_b(void *arg) {
    for (int r = 0; r < 100; r++) {
        uint64_t v[NREG], o[NREG];
        reg_fill(v, 0xb, r);
        reg_switch(&B->c, &th, v, o);
        for (int k = 0; k < NREG; k++)
            CHECK(o[k] == v[k], "coroutine round %d: %s was %#llx, expected %#llx", r, regname[k],
                  (unsigned long long)o[k], (unsigned long long)v[k]);
    }
    aw__coro_switch(&B->c, &th, 1);
}

Test(coro, callee_saved_registers_are_restored_exactly) {
    aw__coro_init_thread(&th);
    B = co_new(reg_b, NULL, 64 * 1024);
    for (int r = 0; r < 101; r++) {
        uint64_t v[NREG], o[NREG];
        reg_fill(v, 0xa, r);
        reg_switch(&th, &B->c, v, o);
        for (int k = 0; k < NREG; k++)
            cr_assert_eq(o[k], v[k], "thread round %d: %s was %#llx, expected %#llx", r,
                         regname[k], (unsigned long long)o[k], (unsigned long long)v[k]);
    }
    NO_BAD();
    co_free(B);
}
#endif

/* ---- the FP control state is per coroutine ---- */

#if defined(__x86_64__)
static unsigned get_mxcsr(void) {
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}
static unsigned get_fpcw(void) {
    unsigned short w;
    __asm__ volatile("fnstcw %0" : "=m"(w));
    return w;
}
/* rounding-control bits: MXCSR 14:13, x87 CW 11:10 (same encoding) */
#define RC_SSE() ((get_mxcsr() >> 13) & 3)
#define RC_X87() ((get_fpcw() >> 10) & 3)
static const unsigned rc_of[4] = {0, 1, 2, 3}; /* nearest, down, up, zero */
static unsigned rc_code(int mode) {
    switch (mode) {
    case FE_TONEAREST: return rc_of[0];
    case FE_DOWNWARD: return rc_of[1];
    case FE_UPWARD: return rc_of[2];
    default: return rc_of[3];
    }
}
#endif

/* Is the rounding mode really `mode` for double arithmetic (and, on
 * x86_64, for x87 long double arithmetic)? The divisions happen out of
 * line on opaque operands, so the compiler (which assumes the default
 * rounding mode) cannot fold, reuse or reorder them. */
__attribute__((noinline)) static double ddiv(double a, double b) {
    volatile double x = a, y = b, q;
    q = x / y;
    return q;
}
__attribute__((noinline)) static long double ldiv_(long double a, long double b) {
    volatile long double x = a, y = b, q;
    q = x / y;
    return q;
}

static int rounds_as(int mode) {
    volatile double up = ddiv(1.0, 3.0), down = ddiv(-1.0, 3.0);
    double nearest = 0x1.5555555555555p-2; /* 1/3 to nearest: rounded down */
    int ok = 1;
    switch (mode) {
    case FE_UPWARD: ok = up > nearest && -down == nearest; break;
    case FE_DOWNWARD: ok = up == nearest && -down > nearest; break;
    case FE_TOWARDZERO: ok = up == nearest && -down == nearest; break;
    case FE_TONEAREST: ok = up == nearest && -down == nearest; break;
    }
#if defined(__x86_64__)
    volatile long double lup = ldiv_(1.0L, 3.0L), ldown = ldiv_(-1.0L, 3.0L);
    long double lnear = 0xa.aaaaaaaaaaaaaabp-5L; /* 1/3 to nearest: rounded up */
    long double lbelow = 0xa.aaaaaaaaaaaaaaap-5L;
    switch (mode) {
    case FE_UPWARD: ok = ok && lup == lnear && -ldown == lbelow; break;
    case FE_DOWNWARD: ok = ok && lup == lbelow && -ldown == lnear; break;
    case FE_TOWARDZERO: ok = ok && lup == lbelow && -ldown == lbelow; break;
    case FE_TONEAREST: ok = ok && lup == lnear && -ldown == lnear; break;
    }
#endif
    return ok;
}

static void fp_expect(const char *who, int mode, int step) {
    CHECK(fegetround() == mode, "%s step %d: fegetround() = %d, expected %d", who, step,
          fegetround(), mode);
#if defined(__x86_64__)
    CHECK(RC_SSE() == rc_code(mode), "%s step %d: MXCSR rounding %u, expected %u", who, step,
          RC_SSE(), rc_code(mode));
    CHECK(RC_X87() == rc_code(mode), "%s step %d: x87 CW rounding %u, expected %u", who, step,
          RC_X87(), rc_code(mode));
#endif
    /* Valgrind tracks the control registers but computes SSE arithmetic
     * in round-to-nearest whatever MXCSR says: only check it natively. */
    if (!RUNNING_ON_VALGRIND)
        CHECK(rounds_as(mode), "%s step %d: arithmetic does not round as mode %d", who, step, mode);
}

static void fp_a(void *arg) {
    fp_expect("A (fresh)", FE_TONEAREST, 0); /* a new coroutine starts with the default */
    fesetround(FE_UPWARD);
    for (int i = 0; i < 50; i++) {
        aw__coro_switch(&A->c, &B->c, 0);
        fp_expect("A", FE_UPWARD, i);
    }
    aw__coro_switch(&A->c, &th, 1);
}

static void fp_b(void *arg) {
    fp_expect("B (fresh)", FE_TONEAREST, 0);
    fesetround(FE_DOWNWARD);
    for (int i = 0;; i++) {
        aw__coro_switch(&B->c, &th, 0);
        fp_expect("B", FE_DOWNWARD, i);
    }
}

Test(coro, rounding_mode_is_per_coroutine) {
    aw__coro_init_thread(&th);
    cr_assert_eq(fesetround(FE_TOWARDZERO), 0);
    A = co_new(fp_a, NULL, 64 * 1024);
    B = co_new(fp_b, NULL, 64 * 1024);
    for (int i = 0; i < 50; i++) {
        aw__coro_switch(&th, &A->c, 0); /* A -> B -> here */
        fp_expect("thread", FE_TOWARDZERO, i);
    }
    aw__coro_switch(&th, &A->c, 0); /* A finishes */
    fp_expect("thread", FE_TOWARDZERO, 50);
    fesetround(FE_TONEAREST);
    NO_BAD();
    co_free(A);
    co_free(B); /* B is suspended for good: its stack just goes */
}

/* ---- stack alignment at entry ---- */

static uintptr_t entry_frame, entry_local, nested_local, entry_sp;
static co_t *C;

__attribute__((noinline)) static void nested(void) {
    _Alignas(16) volatile char buf[16];
    buf[0] = 1;
    nested_local = (uintptr_t)buf;
}

static void align_entry(void *arg) {
    _Alignas(16) volatile char buf[32];
    buf[0] = 1;
    entry_local = (uintptr_t)buf;
    entry_frame = (uintptr_t)__builtin_frame_address(0);
#if defined(__x86_64__)
    __asm__ volatile("movq %%rsp, %0" : "=r"(entry_sp));
#elif defined(__aarch64__)
    __asm__ volatile("mov %0, sp" : "=r"(entry_sp));
#endif
    nested();
    aw__coro_switch(&C->c, &th, 1);
}

Test(coro, stack_is_16_byte_aligned_at_entry) {
    aw__coro_init_thread(&th);
    /* misaligned tops too: aw__coro_init rounds down to 16. The stacks
     * stay mapped until the end so that none reuses another's addresses
     * (under ASan a reused range would carry the dead frames' poison). */
    co_t *k[4];
    for (int j = 0; j < 4; j++) {
        int off = 4 * j;
        C = k[j] = calloc(1, sizeof *C);
        C->s = aw__stack_map(32 * 1024);
        cr_assert_not_null(C->s);
        aw__coro_init(&C->c, C->s->lo, C->s->hi - off, align_entry, NULL);
        C->c.stack = C->s;
        entry_frame = entry_local = nested_local = entry_sp = 0;
        aw__coro_switch(&th, &C->c, 0);
        cr_assert_eq(entry_local % 16, 0, "aligned local at %#lx (top - %d)", (unsigned long)entry_local, off);
        cr_assert_eq(nested_local % 16, 0, "aligned local in a call at %#lx", (unsigned long)nested_local);
        /* the frame address is the frame pointer: 16-byte aligned under both ABIs */
        cr_assert_eq(entry_frame % 16, 0, "frame address %#lx (top - %d)", (unsigned long)entry_frame, off);
        cr_assert(entry_sp > (uintptr_t)C->s->lo && entry_sp < (uintptr_t)C->s->hi,
                  "the entry runs on its own stack");
    }
    for (int j = 0; j < 4; j++)
        co_free(k[j]);
}

/* ---- deep recursion within the stack size ---- */

static uintptr_t deep_top, deep_low;
static size_t deep_depth;

__attribute__((noinline)) static uint64_t recurse(size_t depth, size_t limit) {
    volatile unsigned char buf[512];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(depth + i);
    uint64_t sum = 0;
    if (deep_top - (uintptr_t)buf < limit) {
        sum = recurse(depth + 1, limit);
    } else {
        deep_depth = depth;
        deep_low = (uintptr_t)buf;
        aw__coro_switch(&C->c, &th, 0); /* switch out and back at the deepest point */
    }
    for (size_t i = 0; i < sizeof buf; i++)
        sum += buf[i];
    return sum;
}

static uint64_t deep_sum;

static void deep_entry(void *arg) {
    size_t size = (size_t)(uintptr_t)arg;
    volatile char here;
    deep_top = (uintptr_t)&here;
    deep_sum = recurse(0, size - 16 * 1024); /* all but 16 KiB */
    aw__coro_switch(&C->c, &th, 1);
}

Test(coro, deep_recursion_within_the_stack_size) {
    aw__coro_init_thread(&th);
    size_t size = 1024 * 1024;
    C = co_new(deep_entry, (void *)(uintptr_t)size, size);
    aw__coro_switch(&th, &C->c, 0); /* at the deepest point */
    cr_assert_gt(deep_depth, 100);
    cr_assert(deep_low > (uintptr_t)C->s->lo && deep_low < (uintptr_t)C->s->lo + 32 * 1024,
              "the recursion reached near the bottom of the stack");
    aw__coro_switch(&th, &C->c, 0); /* unwinds and finishes */
    uint64_t expect = 0;
    for (size_t d = 0; d <= deep_depth; d++)
        for (size_t i = 0; i < 512; i++)
            expect += (unsigned char)(d + i);
    cr_assert_eq(deep_sum, expect);
    co_free(C);
}

/* ---- many coroutines, round robin ---- */

enum { NCO = 200, NROUND = 50 };
static co_t *ring[NCO];
static int counts[NCO];

static void ring_entry(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < NROUND; r++) {
        counts[id]++;
        aw__coro_t *next = id + 1 < NCO ? &ring[id + 1]->c : &th;
        aw__coro_switch(&ring[id]->c, next, r == NROUND - 1);
    }
    abort(); /* never resumed after its last, dying switch */
}

Test(coro, a_ring_of_coroutines) {
    aw__coro_init_thread(&th);
    for (int i = 0; i < NCO; i++)
        ring[i] = co_new(ring_entry, (void *)(intptr_t)i, 16 * 1024);
    for (int r = 0; r < NROUND; r++) {
        aw__coro_switch(&th, &ring[0]->c, 0);
        for (int i = 0; i < NCO; i++)
            cr_assert_eq(counts[i], r + 1);
    }
    for (int i = 0; i < NCO; i++)
        co_free(ring[i]);
}
