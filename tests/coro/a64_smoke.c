/* a64_smoke.c: a self-contained check of the context switch (no
 * Criterion), built by tools/test-aarch64.sh for aarch64 (run under
 * qemu-aarch64) and natively for x86_64. Links switch_<arch>.S, coro.c
 * and stack.c; with -DAW_SMOKE_RUNTIME also the whole runtime, and then
 * runs a small aw_main too. Prints "<arch>: N checks passed" last and
 * exits non-zero on any failure. */
#include "../../src/coro/coro.h"

#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AW_SMOKE_RUNTIME
#include <awith.h>
#endif

#if defined(__aarch64__)
#define ARCH "aarch64"
#elif defined(__x86_64__)
#define ARCH "x86_64"
#else
#define ARCH "unknown"
#endif

static int npass, nfail;
#define CHECK(cond, ...)                                       \
    do {                                                       \
        if (cond) {                                            \
            npass++;                                           \
        } else {                                               \
            nfail++;                                           \
            if (nfail <= 20) {                                 \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                  \
                fputc('\n', stderr);                           \
            }                                                  \
        }                                                      \
    } while (0)

typedef struct co {
    aw__coro_t c;
    aw__stack_t *s;
} co_t;

static aw__coro_t th;

static co_t *co_new(void (*fn)(void *), void *arg, size_t size) {
    co_t *k = calloc(1, sizeof *k);
    k->s = aw__stack_map(size);
    if (!k->s) {
        fprintf(stderr, "aw__stack_map failed\n");
        exit(2);
    }
    aw__coro_init(&k->c, k->s->lo, k->s->hi, fn, arg);
    k->c.stack = k->s;
    return k;
}

static void co_free(co_t *k) {
    aw__coro_fini(&k->c);
    aw__stack_unmap(k->s);
    free(k);
}

static uint64_t opaque(uint64_t x) {
    volatile uint64_t v = x;
    return v;
}

/* ---- ping-pong ---- */

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
    CHECK(arg == (void *)0xb0b, "pp_b's arg is %p", arg);
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = (char)('0' + i);
        aw__coro_switch(&B->c, &th, 0);
    }
    trace[ntrace++] = 'B';
    aw__coro_switch(&B->c, &th, 1);
}

static void test_ping_pong(void) {
    A = co_new(pp_a, NULL, 64 * 1024);
    B = co_new(pp_b, (void *)0xb0b, 64 * 1024);
    for (int i = 0; i < 3; i++) {
        aw__coro_switch(&th, &A->c, 0);
        trace[ntrace++] = 'T';
    }
    aw__coro_switch(&th, &A->c, 0);
    aw__coro_switch(&th, &B->c, 0);
    trace[ntrace] = 0;
    CHECK(strcmp(trace, "a0Tb1Tc2TAB") == 0, "ping-pong trace %s", trace);
    co_free(A);
    co_free(B);
}

/* ---- many live locals (integers and doubles) across switches ---- */

enum { ROUNDS = 500 };
#define LCG(x, k) ((x) * 6364136223846793005ULL + (k))

static void live_run(uint64_t seed, void (*sw)(void), const char *who) {
    uint64_t v0 = opaque(seed), v1 = opaque(seed + 1), v2 = opaque(seed + 2), v3 = opaque(seed + 3),
             v4 = opaque(seed + 4), v5 = opaque(seed + 5), v6 = opaque(seed + 6), v7 = opaque(seed + 7),
             v8 = opaque(seed + 8), v9 = opaque(seed + 9), v10 = opaque(seed + 10),
             v11 = opaque(seed + 11), v12 = opaque(seed + 12), v13 = opaque(seed + 13);
    double d0 = (double)opaque(seed & 0xffff), d1 = d0 + 1, d2 = d0 + 2, d3 = d0 + 3, d4 = d0 + 4,
           d5 = d0 + 5, d6 = d0 + 6, d7 = d0 + 7;
    volatile uint64_t mv[14];
    volatile double md[8];
    for (int k = 0; k < 14; k++)
        mv[k] = seed + (uint64_t)k;
    for (int k = 0; k < 8; k++)
        md[k] = (double)(seed & 0xffff) + k;
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        v0 = LCG(v0, 1); v1 = LCG(v1, 3); v2 = LCG(v2, 5); v3 = LCG(v3, 7); v4 = LCG(v4, 9);
        v5 = LCG(v5, 11); v6 = LCG(v6, 13); v7 = LCG(v7, 15); v8 = LCG(v8, 17); v9 = LCG(v9, 19);
        v10 = LCG(v10, 21); v11 = LCG(v11, 23); v12 = LCG(v12, 25); v13 = LCG(v13, 27);
        d0 = d0 * 1.0000001 + 0.5; d1 = d1 * 0.9999999 - 0.25; d2 = d2 * 1.5 - d0;
        d3 = d3 * 0.75 + d1; d4 = d4 + d2 * 1e-3; d5 = d5 - d3 * 1e-3;
        d6 = d6 * 1.0000003 + 1.0 / 3.0; d7 = d7 * 0.5 + d6;
        for (int k = 0; k < 14; k++)
            mv[k] = LCG(mv[k], (uint64_t)(2 * k + 1));
        {
            double e0 = md[0], e1 = md[1], e2 = md[2], e3 = md[3], e4 = md[4], e5 = md[5],
                   e6 = md[6], e7 = md[7];
            e0 = e0 * 1.0000001 + 0.5; e1 = e1 * 0.9999999 - 0.25; e2 = e2 * 1.5 - e0;
            e3 = e3 * 0.75 + e1; e4 = e4 + e2 * 1e-3; e5 = e5 - e3 * 1e-3;
            e6 = e6 * 1.0000003 + 1.0 / 3.0; e7 = e7 * 0.5 + e6;
            md[0] = e0; md[1] = e1; md[2] = e2; md[3] = e3;
            md[4] = e4; md[5] = e5; md[6] = e6; md[7] = e7;
        }
        sw();
        uint64_t got[14] = {v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13};
        double gotd[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
        for (int k = 0; k < 14; k++)
            if (got[k] != mv[k] && bad++ < 3)
                fprintf(stderr, "%s round %d: integer local %d changed\n", who, r, k);
        for (int k = 0; k < 8; k++) {
            double m = md[k];
            if (memcmp(&gotd[k], &m, sizeof m) != 0 && bad++ < 3)
                fprintf(stderr, "%s round %d: double local %d changed (%g vs %g)\n", who, r, k,
                        gotd[k], m);
        }
    }
    CHECK(bad == 0, "%s: %d locals changed across switches", who, bad);
}

static void sw_a(void) { aw__coro_switch(&A->c, &B->c, 0); }
static void sw_b(void) { aw__coro_switch(&B->c, &th, 0); }
static void sw_t(void) { aw__coro_switch(&th, &A->c, 0); }
static void live_a(void *arg) {
    live_run(0x1111111111111111ULL, sw_a, "A");
    aw__coro_switch(&A->c, &th, 1);
}
static void live_b(void *arg) {
    live_run(0x2222222222222222ULL, sw_b, "B");
    aw__coro_switch(&B->c, &th, 1);
}

static void test_live_locals(void) {
    A = co_new(live_a, NULL, 64 * 1024);
    B = co_new(live_b, NULL, 64 * 1024);
    live_run(0x3333333333333333ULL, sw_t, "thread");
    aw__coro_switch(&th, &A->c, 0);
    aw__coro_switch(&th, &B->c, 0);
    co_free(A);
    co_free(B);
}

/* ---- the exact callee-saved registers, set and read in assembly ---- */

#if defined(__aarch64__)
enum { NREG = 19 }; /* x19-x28, x29, d8-d15 */
static const char *const regname[NREG] = {"x19", "x20", "x21", "x22", "x23", "x24", "x25",
                                          "x26", "x27", "x28", "x29", "d8",  "d9",  "d10",
                                          "d11", "d12", "d13", "d14", "d15"};

static void reg_switch(aw__coro_t *from, aw__coro_t *to, const uint64_t *vals, uint64_t *out) {
    register aw__coro_t *r0 __asm__("x0") = from;
    register aw__coro_t *r1 __asm__("x1") = to;
    register const uint64_t *r3 __asm__("x3") = vals;
    register uint64_t *r4 __asm__("x4") = out;
    __asm__ volatile(
        "sub sp, sp, #32\n\t"
        "stp x29, x4, [sp]\n\t"
        "ldp x19, x20, [x3, #0]\n\t"
        "ldp x21, x22, [x3, #16]\n\t"
        "ldp x23, x24, [x3, #32]\n\t"
        "ldp x25, x26, [x3, #48]\n\t"
        "ldp x27, x28, [x3, #64]\n\t"
        "ldr x29, [x3, #80]\n\t"
        "ldp d8, d9, [x3, #88]\n\t"
        "ldp d10, d11, [x3, #104]\n\t"
        "ldp d12, d13, [x3, #120]\n\t"
        "ldp d14, d15, [x3, #136]\n\t"
        "mov w2, #0\n\t"
        "bl aw__coro_switch_fn\n\t"
        "ldr x4, [sp, #8]\n\t"
        "stp x19, x20, [x4, #0]\n\t"
        "stp x21, x22, [x4, #16]\n\t"
        "stp x23, x24, [x4, #32]\n\t"
        "stp x25, x26, [x4, #48]\n\t"
        "stp x27, x28, [x4, #64]\n\t"
        "str x29, [x4, #80]\n\t"
        "stp d8, d9, [x4, #88]\n\t"
        "stp d10, d11, [x4, #104]\n\t"
        "stp d12, d13, [x4, #120]\n\t"
        "stp d14, d15, [x4, #136]\n\t"
        "ldr x29, [sp]\n\t"
        "add sp, sp, #32\n\t"
        : "+r"(r0), "+r"(r1), "+r"(r3), "+r"(r4)
        :
        : "x2", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16",
          "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
          "x30", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12",
          "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24",
          "v25", "v26", "v27", "v28", "v29", "v30", "v31", "memory", "cc");
}
#elif defined(__x86_64__)
enum { NREG = 6 };
static const char *const regname[NREG] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};

static void reg_switch(aw__coro_t *from, aw__coro_t *to, const uint64_t *vals, uint64_t *out) {
    __asm__ volatile(
        "movq %%rsp, %%rax\n\t"
        "subq $128, %%rsp\n\t"
        "andq $-16, %%rsp\n\t"
        "pushq %%rax\n\t"
        "pushq %%rbp\n\t"
        "pushq %%rdx\n\t"
        "pushq %%rdx\n\t"
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
#endif

static void reg_fill(uint64_t *v, uint64_t who, int r) {
    for (int k = 0; k < NREG; k++)
        v[k] = (who << 56) ^ ((uint64_t)r << 16) ^ (uint64_t)(k + 1) * 0x0101010101ULL;
}

static int reg_bad;

static void reg_b(void *arg) {
    for (int r = 0; r < 100; r++) {
        uint64_t v[NREG], o[NREG];
        reg_fill(v, 0xb, r);
        reg_switch(&B->c, &th, v, o);
        for (int k = 0; k < NREG; k++)
            if (o[k] != v[k] && reg_bad++ < 5)
                fprintf(stderr, "coroutine round %d: %s = %#llx, expected %#llx\n", r, regname[k],
                        (unsigned long long)o[k], (unsigned long long)v[k]);
    }
    aw__coro_switch(&B->c, &th, 1);
}

static void test_registers(void) {
    B = co_new(reg_b, NULL, 64 * 1024);
    for (int r = 0; r < 101; r++) {
        uint64_t v[NREG], o[NREG];
        reg_fill(v, 0xa, r);
        reg_switch(&th, &B->c, v, o);
        for (int k = 0; k < NREG; k++)
            if (o[k] != v[k] && reg_bad++ < 5)
                fprintf(stderr, "thread round %d: %s = %#llx, expected %#llx\n", r, regname[k],
                        (unsigned long long)o[k], (unsigned long long)v[k]);
    }
    CHECK(reg_bad == 0, "%d callee-saved register values lost (%d registers checked)", reg_bad, NREG);
    co_free(B);
}

/* ---- FP control (FPCR / MXCSR + x87 CW) is per coroutine ---- */

static unsigned hw_rounding(void) { /* the rounding bits as the hardware holds them */
#if defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (unsigned)(fpcr >> 22) & 3; /* RMode: 0 nearest, 1 +inf, 2 -inf, 3 zero */
#elif defined(__x86_64__)
    unsigned m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return (m >> 13) & 3; /* 0 nearest, 1 down, 2 up, 3 zero */
#else
    return 0;
#endif
}

static unsigned hw_code(int mode) {
#if defined(__aarch64__)
    return mode == FE_TONEAREST ? 0 : mode == FE_UPWARD ? 1 : mode == FE_DOWNWARD ? 2 : 3;
#else
    return mode == FE_TONEAREST ? 0 : mode == FE_DOWNWARD ? 1 : mode == FE_UPWARD ? 2 : 3;
#endif
}

__attribute__((noinline)) static double ddiv(double a, double b) {
    volatile double x = a, y = b, q;
    q = x / y;
    return q;
}

static int rounds_as(int mode) {
    volatile double up = ddiv(1.0, 3.0), down = ddiv(-1.0, 3.0);
    double nearest = 0x1.5555555555555p-2; /* 1/3 rounded to nearest is rounded down */
    switch (mode) {
    case FE_UPWARD: return up > nearest && -down == nearest;
    case FE_DOWNWARD: return up == nearest && -down > nearest;
    default: return up == nearest && -down == nearest;
    }
}

static void fp_expect(const char *who, int mode, int step) {
    CHECK(fegetround() == mode, "%s step %d: fegetround() %d, expected %d", who, step, fegetround(), mode);
    CHECK(hw_rounding() == hw_code(mode), "%s step %d: hardware rounding bits %u, expected %u", who,
          step, hw_rounding(), hw_code(mode));
    CHECK(rounds_as(mode), "%s step %d: 1/3 does not round as mode %d", who, step, mode);
}

static void fp_a(void *arg) {
    fp_expect("A fresh", FE_TONEAREST, 0);
    fesetround(FE_UPWARD);
    for (int i = 0; i < 20; i++) {
        aw__coro_switch(&A->c, &B->c, 0);
        fp_expect("A", FE_UPWARD, i);
    }
    aw__coro_switch(&A->c, &th, 1);
}

static void fp_b(void *arg) {
    fp_expect("B fresh", FE_TONEAREST, 0);
    fesetround(FE_DOWNWARD);
    for (int i = 0;; i++) {
        aw__coro_switch(&B->c, &th, 0);
        fp_expect("B", FE_DOWNWARD, i);
    }
}

static void test_rounding(void) {
    fesetround(FE_TOWARDZERO);
    A = co_new(fp_a, NULL, 64 * 1024);
    B = co_new(fp_b, NULL, 64 * 1024);
    for (int i = 0; i < 20; i++) {
        aw__coro_switch(&th, &A->c, 0);
        fp_expect("thread", FE_TOWARDZERO, i);
    }
    aw__coro_switch(&th, &A->c, 0);
    fp_expect("thread", FE_TOWARDZERO, 20);
    fesetround(FE_TONEAREST);
    co_free(A);
    co_free(B);
}

/* ---- alignment at entry, deep recursion ---- */

static co_t *C;
static uintptr_t entry_sp, entry_frame, entry_local;

#if defined(__x86_64__)
/* The stack pointer at a call from the entry: what the ABI aligns. (The
 * entry itself may be a leaf when the switch is inlined: a leaf's rsp
 * need not be aligned.) Frame address + 16 = the caller's rsp at the call. */
__attribute__((noinline)) static void sp_at_call(void) {
    entry_sp = (uintptr_t)__builtin_frame_address(0) + 16;
}
#endif

static void align_entry(void *arg) {
    _Alignas(16) volatile char buf[16];
    buf[0] = 1;
    entry_local = (uintptr_t)buf;
    entry_frame = (uintptr_t)__builtin_frame_address(0);
#if defined(__aarch64__)
    __asm__ volatile("mov %0, sp" : "=r"(entry_sp));
#elif defined(__x86_64__)
    sp_at_call();
#endif
    aw__coro_switch(&C->c, &th, 1);
}

static void test_alignment(void) {
    co_t *k[4];
    for (int j = 0; j < 4; j++) {
        C = k[j] = calloc(1, sizeof *C);
        C->s = aw__stack_map(32 * 1024);
        aw__coro_init(&C->c, C->s->lo, C->s->hi - 4 * j, align_entry, NULL);
        C->c.stack = C->s;
        aw__coro_switch(&th, &C->c, 0);
        CHECK(entry_sp % 16 == 0, "sp %#lx in the entry is not 16-byte aligned", (unsigned long)entry_sp);
        CHECK(entry_frame % 16 == 0, "frame address %#lx not 16-byte aligned", (unsigned long)entry_frame);
        CHECK(entry_local % 16 == 0, "aligned local at %#lx", (unsigned long)entry_local);
        CHECK(entry_sp > (uintptr_t)C->s->lo && entry_sp < (uintptr_t)C->s->hi, "entry off its stack");
    }
    for (int j = 0; j < 4; j++)
        co_free(k[j]);
}

static uintptr_t deep_top;
static size_t deep_depth;
static uint64_t deep_sum;

__attribute__((noinline)) static uint64_t recurse(size_t depth, size_t limit) {
    volatile unsigned char buf[512];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(depth + i);
    uint64_t sum = 0;
    if (deep_top - (uintptr_t)buf < limit) {
        sum = recurse(depth + 1, limit);
    } else {
        deep_depth = depth;
        aw__coro_switch(&C->c, &th, 0);
    }
    for (size_t i = 0; i < sizeof buf; i++)
        sum += buf[i];
    return sum;
}

static void deep_entry(void *arg) {
    volatile char here;
    deep_top = (uintptr_t)&here;
    deep_sum = recurse(0, (size_t)(uintptr_t)arg - 16 * 1024);
    aw__coro_switch(&C->c, &th, 1);
}

static void test_deep(void) {
    size_t size = 512 * 1024;
    C = co_new(deep_entry, (void *)(uintptr_t)size, size);
    aw__coro_switch(&th, &C->c, 0);
    aw__coro_switch(&th, &C->c, 0);
    uint64_t expect = 0;
    for (size_t d = 0; d <= deep_depth; d++)
        for (size_t i = 0; i < 512; i++)
            expect += (unsigned char)(d + i);
    CHECK(deep_depth > 100, "recursion depth %zu", deep_depth);
    CHECK(deep_sum == expect, "deep recursion sum %llu, expected %llu", (unsigned long long)deep_sum,
          (unsigned long long)expect);
    co_free(C);
}

/* ---- the stack cache ---- */

static void test_stacks(void) {
    aw__stack_cache_t sc;
    aw__stack_cache_init(&sc, 16 * 1024, 2);
    aw__stack_t *a = aw__stack_get(&sc), *b = aw__stack_get(&sc);
    aw__stack_put(&sc, a);
    CHECK(aw__stack_get(&sc) == a, "the cache is LIFO");
    int guarded = a->guarded + b->guarded;
    for (int i = 2; i < 64; i++)
        guarded += aw__stack_get(&sc)->guarded;
    CHECK(guarded == 2, "%d guarded stacks with a budget of 2", guarded);
    aw__stack_cache_fini(&sc);
    aw__stack_t *s = aw__stack_map(16 * 1024);
    CHECK(s->guarded && aw__stack_in_guard(s, s->lo - 1) && !aw__stack_in_guard(s, s->lo),
          "aw__stack_map's guard page");
    aw__stack_unmap(s);
}

/* ---- the runtime: tasks, sleeps, a group, a with ---- */

#ifdef AW_SMOKE_RUNTIME
static char log_[64];
static int nlog;
static void note(char c) {
    if (nlog < 63)
        log_[nlog++] = c;
}

static int sleeper(void *arg) {
    int ms = (int)(intptr_t)arg;
    double x = 1.0 + ms; /* a double live across the sleep */
    if (aw_sleep_ms(ms) < 0)
        return -1;
    note((char)('0' + ms / 10));
    return x == 1.0 + ms ? 0 : -EIO;
}

typedef struct res {
    int entered, exited;
    const aw_err_t *seen;
} res_t;

static int res_enter(void *self, void **out) {
    res_t *r = self;
    aw_sleep_ms(1);
    r->entered++;
    note('E');
    *out = r;
    return 0;
}

static int res_exit(void *self, const aw_err_t *err) {
    res_t *r = self;
    aw_sleep_ms(1);
    r->exited++;
    r->seen = err;
    note('X');
    return 0;
}

static const aw_cm_type_t res_type = {.name = "res", .enter = res_enter, .exit = res_exit};

static int fpu_task(void *arg) {
    fesetround(FE_UPWARD);
    for (int i = 0; i < 5; i++) {
        aw_yield();
        if (fegetround() != FE_UPWARD || !rounds_as(FE_UPWARD))
            return -EIO;
    }
    return 0;
}

static int smoke_main(void *arg) {
    res_t r = {0};
    aw_ns_t t0 = aw_now();
    aw_with (res_t *rp, aw_cm(&res_type, &r)) {
        CHECK(rp == &r, "with: the value is what enter produced");
        aw_with (aw_group_t *g, aw_group()) {
            aw_spawn(g, sleeper, (void *)(intptr_t)30, NULL);
            aw_spawn(g, sleeper, (void *)(intptr_t)10, NULL);
            aw_spawn(g, sleeper, (void *)(intptr_t)20, NULL);
            aw_spawn(g, fpu_task, NULL, NULL);
            note('g');
        }
        CHECK(aw_status() == 0, "group status %d", aw_status());
        note('b');
    }
    CHECK(aw_now() - t0 >= AW_MS(30), "the group waited for its sleepers");
    CHECK(r.entered == 1 && r.exited == 1 && r.seen == NULL, "with: enter %d exit %d err %p",
          r.entered, r.exited, (const void *)r.seen);
    CHECK(fegetround() == FE_TONEAREST, "the main task's rounding mode leaked: %d", fegetround());
    aw_task_t *t;
    aw_spawn(NULL, sleeper, (void *)(intptr_t)5, &t);
    CHECK(aw_task_join(t) == 0, "join");
    log_[nlog] = 0;
    CHECK(strcmp(log_, "Eg123bX0") == 0, "event order %s", log_);
    aw_loop_stats_t st;
    aw_loop_stats(&st);
    CHECK(st.tasks == 1 && st.switches > 10, "stats: %zu tasks, %llu switches", st.tasks,
          (unsigned long long)st.switches);
    return 0;
}

static void test_runtime(void) {
    int rc = aw_main(smoke_main, NULL);
    CHECK(rc == 0, "aw_main returned %d", rc);
}
#endif

int main(void) {
    aw__coro_init_thread(&th);
    test_ping_pong();
    test_live_locals();
    test_registers();
    test_rounding();
    test_alignment();
    test_deep();
    test_stacks();
#ifdef AW_SMOKE_RUNTIME
    test_runtime();
    const char *what = " (switch + runtime)";
#else
    const char *what = " (switch only)";
#endif
    aw__coro_fini(&th);
    if (nfail) {
        printf(ARCH ": %d of %d checks FAILED%s\n", nfail, npass + nfail, what);
        return 1;
    }
    printf(ARCH ": %d checks passed%s\n", npass, what);
    return 0;
}
