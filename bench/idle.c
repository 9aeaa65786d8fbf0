/* idle.c: resident memory per idle coroutine, at 1,000,000 coroutines,
 * with the loop's defaults (128 KiB stacks, guard pages for the first
 * 8192) and the kernel's defaults (vm.max_map_count = 65530).
 *
 * Each measurement runs in a fresh child process: VmRSS (/proc/self/status)
 * before spawning, then after 1,000,000 tasks have run to an aw_sleep of
 * an hour; the difference over the count is the figure, in KiB. The
 * tasks are then cancelled and the loop closed normally.
 *
 * Peer: asyncio and uvloop tasks sleeping an hour (100,000 of them: the
 * Python side takes ~30 us per task to set up here; the per-task figure
 * does not depend on the count), also one fresh process per measurement.
 *
 * On a machine whose page faults are slow (some VMs: 20 us instead of
 * 0.2 us) the count is lowered to fit a time budget (bench_fit) and the
 * detail line says so; AW_BENCH_FULL=1 keeps 1,000,000.
 *
 * Up to 5 measurements within a 20 s budget (bench_more), at least one;
 * Python gets as many, at most 3.
 *
 *   idle_kib       KiB per idle coroutine (median)
 *   idle_detail    total MiB, memory mappings at the peak, time to spawn
 *                  and park them all, measurements made */
#include "bench.h"

#include <sys/wait.h>
#include <unistd.h>

static long n;

typedef struct {
    double kib, total_mib, spawn_ms;
    long maps;
    int rc;
} res_t;

static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = atol(line + fl + 1);
    if (f)
        fclose(f);
    return v;
}

static long count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    long k = 0;
    int c;
    while (f && (c = fgetc(f)) != EOF)
        k += c == '\n';
    if (f)
        fclose(f);
    return k;
}

static int sleeper(void *arg) {
    (void)arg;
    aw_sleep(AW_SEC(3600));
    return 0;
}

static int measure(void *arg) {
    res_t *r = arg;
    long before = status_kib("VmRSS");
    double t0 = bench_now();
    aw_with (aw_group_t *g, aw_group()) {
        for (long i = 0; i < n; i++)
            if (aw_spawn(g, sleeper, NULL, NULL) < 0)
                aw_leave();
        if (aw_status() < 0)
            aw_leave();
        aw_yield(); /* every task runs to its sleep */
        r->spawn_ms = (bench_now() - t0) / 1e6;
        long after = status_kib("VmRSS");
        r->maps = count_maps();
        r->kib = (double)(after - before) / (double)n;
        r->total_mib = (double)(after - before) / 1024.0;
        aw_group_cancel(g);
    }
    return aw_status();
}

/* One measurement in a child process; the result comes back by pipe. */
static int measure_in_child(res_t *out) {
    int fd[2];
    if (pipe(fd) < 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fd[0]);
        res_t r = {0};
        r.rc = aw_main(measure, &r);
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], out, sizeof *out);
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (got != (ssize_t)sizeof *out || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "idle: the measuring child failed (status %#x)\n", st);
        return -1;
    }
    if (out->rc < 0)
        fprintf(stderr, "idle: aw_main returned %s\n", aw_err_name(out->rc));
    return 0;
}

static double python_median(const char *args, const char *key, int reps) {
    double v[BENCH_REPS];
    int k = 0;
    for (int i = 0; i < reps && i < BENCH_REPS; i++) {
        double x = bench_python(args, key);
        if (x < 0)
            return BENCH_NA;
        v[k++] = x;
    }
    return bench_median(v, k);
}

int main(void) {
    double fault_ns;
    long want = bench_n(1000000);
    n = bench_fit(want, 10, &fault_ns);
    double kib[BENCH_REPS], mib[BENCH_REPS], ms[BENCH_REPS], maps[BENCH_REPS];
    int k = 0;
    double start = bench_now();
    while (bench_more(k, start, 20)) {
        res_t r;
        if (measure_in_child(&r) < 0)
            break;
        kib[k] = r.kib;
        mib[k] = r.total_mib;
        ms[k] = r.spawn_ms;
        maps[k] = (double)r.maps;
        k++;
    }
    if (!k)
        return 1;
    long pyn = bench_n(100000);
    char args[64];
    const char *peers[] = {"asyncio", "uvloop", NULL};
    double pv[2];
    snprintf(args, sizeof args, "idle %ld asyncio", pyn);
    pv[0] = python_median(args, "idle_kib", k < 3 ? k : 3);
    snprintf(args, sizeof args, "idle %ld uvloop", pyn);
    pv[1] = python_median(args, "idle_kib", k < 3 ? k : 3);
    bench_config("VmRSS growth per task, median of %d fresh processes; awith: %ld coroutines%s, "
                 "128 KiB stacks, guard pages; asyncio/uvloop: %ld tasks in asyncio.sleep(3600), "
                 "median of %d processes", k, n,
                 n < want ? " (not 1,000,000: page faults cost too much here; AW_BENCH_FULL=1 for all)" : "",
                 pyn, k < 3 ? k : 3);
    bench_print("idle_kib", bench_median(kib, k), peers, pv);
    long mmc = -1;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &mmc) != 1)
            mmc = -1;
        fclose(f);
    }
    bench_note("idle_detail", "coroutines=%ld total_mib=%.0f maps=%.0f spawn_and_park_ms=%.0f "
               "max_map_count=%ld runs=%d page_fault_us=%.2g%s", n, bench_median(mib, k), bench_median(maps, k),
               bench_median(ms, k), mmc, k, fault_ns / 1e3,
               n < want ? " (fewer coroutines than 1,000,000: page faults are slow here; "
                          "AW_BENCH_FULL=1 for all)" : "");
    return 0;
}
