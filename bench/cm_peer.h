/* cm_peer.h: the Python peer of the managers-toolkit benchmarks
 * (bench/peers/asyncio_cm.py), run on asyncio and on uvloop, and the
 * figure line with both ratios.
 *
 * Both sides measure CPU time (CLOCK_PROCESS_CPUTIME_ID, Python's
 * time.process_time_ns), not wall time: the figures are per operation of
 * one thread that never blocks, and CPU time keeps them meaningful on a
 * shared, loaded machine. */
#ifndef AW_BENCH_CM_PEER_H
#define AW_BENCH_CM_PEER_H

#include "bench.h"

#ifndef BENCH_CM_PY_SCRIPT
#define BENCH_CM_PY_SCRIPT "bench/peers/asyncio_cm.py"
#endif

/* `asyncio_cm.py work n kind`'s value of key (medians of 5 inside). */
static inline double cm_python(const char *work, long n, const char *kind, const char *key) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' %s %ld %s 2>/dev/null",
             bench_env("AW_BENCH_PYTHON", "/usr/bin/python3"),
             bench_env("AW_BENCH_CM_PY", BENCH_CM_PY_SCRIPT), work, n, kind);
    return bench_popen_value(cmd, key);
}

/* Print `figure awith=v asyncio=v uvloop=v ratio_asyncio=... ratio_uvloop=...`. */
static inline void cm_figure(const char *figure, double awith, const char *work, long pyn,
                             const char *key) {
    static const char *const peers[] = {"asyncio", "uvloop", NULL};
    double pv[2] = {cm_python(work, pyn, "asyncio", key), cm_python(work, pyn, "uvloop", key)};
    bench_print(figure, awith, peers, pv);
}

#endif
