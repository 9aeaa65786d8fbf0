/* bench.h: what every benchmark program shares.
 *
 * A benchmark PRINTS figures and never judges them: one line per figure,
 *
 *   <figure> awith=<v> <peer>=<v> ... ratio_<peer>=<peer/awith> ...
 *
 * where every value has the figure's unit (the suffix of its name: _ns,
 * _kib) and ratio_<peer> is peer / awith: above 1 means awith is faster
 * (or smaller). Each measurement is repeated BENCH_REPS times and the
 * median is reported, for awith and for the peers alike.
 *
 * Peers are separate programs run on the same workload in the same run:
 * the C/C++ ones from the build's bench directory, the Python one
 * (bench/peers/asyncio_core.py) with /usr/bin/python3. Each prints
 * `key=value` tokens; a peer that is missing or fails shows as n/a.
 * Environment overrides: AW_BENCH_PEERS (directory of the compiled peers),
 * AW_BENCH_PY (the Python script), AW_BENCH_PYTHON (the interpreter),
 * AW_BENCH_SCALE (multiplies the workload sizes; e.g. 0.1 for a smoke
 * run), AW_BENCH_BUDGET (multiplies the time budgets of bench_more(): the
 * 1,000,000-coroutine benchmarks repeat up to 5 times within a budget,
 * since first-touch page faults make one run take from 1 s to a minute
 * depending on the machine). */
#ifndef AW_BENCH_H
#define AW_BENCH_H

#include <awith.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#ifndef BENCH_PEER_DIR
#define BENCH_PEER_DIR "bench/peers"
#endif
#ifndef BENCH_PY_SCRIPT
#define BENCH_PY_SCRIPT "bench/peers/asyncio_core.py"
#endif
#define BENCH_REPS 5
#define BENCH_NA (-1.0)

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU time of the whole process (user + system), in ns. */
static inline double bench_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bench__cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n) {
    if (n <= 0)
        return BENCH_NA;
    qsort(v, (size_t)n, sizeof *v, bench__cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A time budget for the slow measurements (1,000,000 coroutines): keep
 * repeating while fewer than BENCH_REPS were made and `budget_s` seconds
 * (scaled by AW_BENCH_BUDGET, default 1) have not passed since `start`;
 * at least one measurement is always made. */
static inline int bench_more(int done, double start, double budget_s) {
    if (done < 1)
        return 1;
    if (done >= BENCH_REPS)
        return 0;
    const char *s = getenv("AW_BENCH_BUDGET");
    double k = s && *s ? atof(s) : 1.0;
    return bench_now() - start < budget_s * k * 1e9;
}

/* Workload size, scaled by AW_BENCH_SCALE. */
static inline long bench_n(long n) {
    const char *s = getenv("AW_BENCH_SCALE");
    if (s && *s) {
        double k = atof(s);
        if (k > 0)
            n = (long)((double)n * k);
    }
    return n < 1 ? 1 : n;
}

/* Cost of a first-touch page fault on this machine, in ns: pages 132 KiB
 * apart in a fresh NORESERVE mapping, as coroutine stacks are laid out. */
static inline double bench_fault_ns(void) {
    const size_t k = 1024, stride = 132 * 1024;
    char *m = mmap(NULL, k * stride, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return 0;
    double t0 = bench_now();
    for (size_t i = 0; i < k; i++)
        ((volatile char *)m)[i * stride] = 1;
    double t = (bench_now() - t0) / (double)k;
    munmap(m, k * stride);
    return t;
}

/* How many coroutines the 1,000,000-coroutine benchmarks use. Each live
 * coroutine first-touches ~2 pages; on a machine where a page fault costs
 * ~0.2 us that is 0.4 s per million, but in some VMs it costs 20 us (40 s
 * per million, per measurement). So when `n` coroutines would spend more
 * than `budget_s` in page faults, the count is lowered to the largest of
 * 1, 2, 5 x 10^k that fits (the figures are per coroutine), and the
 * caller prints that it did. AW_BENCH_FULL=1 keeps `n` whatever it costs. */
static inline long bench_fit(long n, double budget_s, double *fault_ns) {
    *fault_ns = bench_fault_ns();
    const char *full = getenv("AW_BENCH_FULL");
    if (full && *full && *full != '0')
        return n;
    double max = budget_s * 1e9 / (2.0 * (*fault_ns > 1 ? *fault_ns : 1));
    if ((double)n <= max)
        return n;
    long best = 1000;
    for (long p = 1000; p <= n; p *= 10)
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3)
            if ((double)(p * m) <= max && p * m <= n)
                best = p * m;
    return best;
}

static inline const char *bench_env(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* Run a shell command and take the value of `key=` from its output; the
 * output is scanned token by token. BENCH_NA if missing or failed. */
static inline double bench_popen_value(const char *cmd, const char *key) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return BENCH_NA;
    char tok[256];
    double v = BENCH_NA;
    size_t kl = strlen(key);
    while (fscanf(p, "%255s", tok) == 1)
        if (!strncmp(tok, key, kl) && tok[kl] == '=')
            v = atof(tok + kl + 1);
    int st = pclose(p);
    return st == 0 ? v : BENCH_NA;
}

/* Like bench_popen_value, for several keys of one run: out[i] is the
 * value of keys[i] (NULL-terminated), BENCH_NA where missing or failed. */
static inline void bench_popen_values(const char *cmd, const char *const *keys, double *out) {
    int k = 0;
    while (keys[k])
        out[k++] = BENCH_NA;
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    char tok[256];
    while (fscanf(p, "%255s", tok) == 1)
        for (int i = 0; i < k; i++) {
            size_t kl = strlen(keys[i]);
            if (!strncmp(tok, keys[i], kl) && tok[kl] == '=')
                out[i] = atof(tok + kl + 1);
        }
    if (pclose(p) != 0)
        for (int i = 0; i < k; i++)
            out[i] = BENCH_NA;
}

/* The median over BENCH_REPS runs of a compiled peer: `<peers>/<prog> args`. */
static inline double bench_peer(const char *prog, const char *args, const char *key) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s 2>/dev/null",
             bench_env("AW_BENCH_PEERS", BENCH_PEER_DIR), prog, args);
    double v[BENCH_REPS];
    int n = 0;
    for (int i = 0; i < BENCH_REPS; i++) {
        double x = bench_popen_value(cmd, key);
        if (x < 0)
            return BENCH_NA;
        v[n++] = x;
    }
    return bench_median(v, n);
}

/* The Python peer: it repeats BENCH_REPS times itself and prints medians. */
static inline double bench_python(const char *args, const char *key) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' %s 2>/dev/null",
             bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"),
             bench_env("AW_BENCH_PY", BENCH_PY_SCRIPT), args);
    return bench_popen_value(cmd, key);
}

/* Print one figure line: name awith=v peer=v ... ratio_peer=v ...
 * `peers` is a NULL-terminated list of names, `pv` their values. */
static inline void bench_print(const char *name, double awith, const char *const *peers,
                               const double *pv) {
    printf("%s awith=%.4g", name, awith);
    for (int i = 0; peers && peers[i]; i++) {
        if (pv[i] < 0)
            printf(" %s=n/a", peers[i]);
        else
            printf(" %s=%.4g", peers[i], pv[i]);
    }
    for (int i = 0; peers && peers[i]; i++)
        if (pv[i] >= 0 && awith > 0)
            printf(" ratio_%s=%.3g", peers[i], pv[i] / awith);
    printf("\n");
    fflush(stdout);
}

/* A figure that has no peer (a count, a property of awith alone). */
static inline void bench_note(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void bench_note(const char *name, const char *fmt, ...) {
    va_list ap;
    printf("%s ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* The peers' configuration, printed once by each benchmark before its
 * figures so that a reader can check the comparison (pool size, reset on
 * release, keep-alive, pinning, warm or cold): a line
 *   config <text>
 * which tools/bench.sh copies into the JSON line of each of the
 * benchmark's figures. */
static inline void bench_config(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void bench_config(const char *fmt, ...) {
    va_list ap;
    printf("config ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Run the awith side: aw_main(fn, arg), complaining (not asserting) if it
 * fails. */
static inline int bench_main(const aw_loop_opts_t *opts, aw_task_fn fn, void *arg) {
    int rc = aw_main_opts(opts, fn, arg);
    if (rc < 0)
        fprintf(stderr, "bench: aw_main failed: %s (%s)\n", aw_err_name(rc), aw_strerror(rc));
    return rc;
}

/* fn(arg) run inside `depth` nested scopes: cancel scopes, or scopes
 * with a far deadline (bench/scopes.c, bench/ops.c). */
static inline int bench_in_scopes(int depth, bool deadlines, aw_task_fn fn, void *arg) {
    if (depth == 0)
        return fn(arg);
    int rc = 0;
    if (deadlines) {
        aw_with (aw_move_on_after(AW_SEC(1000)))
            rc = bench_in_scopes(depth - 1, deadlines, fn, arg);
    } else {
        aw_with (aw_cancel_scope())
            rc = bench_in_scopes(depth - 1, deadlines, fn, arg);
    }
    return rc;
}

/* A manager whose enter and exit do nothing and never suspend: the cost
 * of the machinery alone (bench/with.c, bench/exitstack.c). */
static inline int bench_noop_enter(void *self, void **out) {
    *out = self;
    return 0;
}
static inline int bench_noop_exit(void *self, const aw_err_t *err) {
    (void)self;
    (void)err;
    return 0;
}
static const aw_cm_type_t bench_noop_type __attribute__((unused)) = {
    "noop", bench_noop_enter, bench_noop_exit, 0, 0};

#endif
