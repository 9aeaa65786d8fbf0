"""asyncio_core.py: the Python peers of the awith benchmarks.

Run with /usr/bin/python3 (it has python3-uvloop). Usage:

    asyncio_core.py WORKLOAD N [asyncio|uvloop]

Prints `key=value` tokens, each the median of 5 measurements, except
`idle`, which measures once per process (a fresh heap), so the caller
repeats it.

    switch N   two tasks each `await asyncio.sleep(0)` N times:
               switch_ns = time / (2N)
    spawn N    create_task + gather of N no-op tasks, in batches of 1000
               (as bench/spawn.c): spawn_ns = time / N
    spawn_live N  create_task of N no-op tasks, all live at once, then one
               gather: spawn_live_ns = time / N
    with N     `async with` a no-op class manager N times: with_ns
    timeout N  `async with asyncio.timeout(10)` entered and left: timeout_ns
    to_thread N  `await asyncio.to_thread(noop)` N times, one after
               another: to_thread_ns; then 8 tasks doing N/8 each
               at once: to_thread_par_ns (time / N)
    idle N     N tasks sleeping 1 h; VmRSS before and after they all
               started: idle_kib (per task), idle_total_mib
"""
import asyncio
import os
import statistics
import sys
import time

REPS = 5
BATCH = 1000


def median_of(fn):
    return statistics.median(fn() for _ in range(REPS))


async def switch(n):
    async def pinger():
        for _ in range(n):
            await asyncio.sleep(0)

    def once():
        return 0

    vals = []
    for _ in range(REPS):
        t0 = time.perf_counter_ns()
        await asyncio.gather(pinger(), pinger())
        vals.append((time.perf_counter_ns() - t0) / (2 * n))
    print(f"switch_ns={statistics.median(vals):.4f}")


async def spawn(n):
    async def noop():
        return None

    vals = []
    for _ in range(REPS):
        t0 = time.perf_counter_ns()
        left = n
        while left > 0:
            k = min(BATCH, left)
            await asyncio.gather(*[asyncio.create_task(noop()) for _ in range(k)])
            left -= k
        vals.append((time.perf_counter_ns() - t0) / n)
    print(f"spawn_ns={statistics.median(vals):.4f}")


async def spawn_live(n):
    async def noop():
        return None

    vals = []
    for _ in range(REPS):
        t0 = time.perf_counter_ns()
        await asyncio.gather(*[asyncio.create_task(noop()) for _ in range(n)])
        vals.append((time.perf_counter_ns() - t0) / n)
    print(f"spawn_live_ns={statistics.median(vals):.4f}")


class Noop:
    async def __aenter__(self):
        return self

    async def __aexit__(self, et, ev, tb):
        return None


async def with_(n):
    cm = Noop()
    vals = []
    for _ in range(REPS):
        t0 = time.perf_counter_ns()
        for i in range(n):
            async with cm:
                pass
            if i % 1000 == 999:  # let the loop run (as in bench/with.c)
                await asyncio.sleep(0)
        t1 = time.perf_counter_ns()
        for i in range(n):  # the loop alone, with the same yields, subtracted
            if i % 1000 == 999:
                await asyncio.sleep(0)
        t2 = time.perf_counter_ns()
        vals.append(((t1 - t0) - (t2 - t1)) / n)
    print(f"with_ns={statistics.median(vals):.4f}")


async def timeout(n):
    vals = []
    for _ in range(REPS):
        t0 = time.perf_counter_ns()
        for i in range(n):
            async with asyncio.timeout(10):
                pass
            if i % 1000 == 999:  # let the loop purge its cancelled timers
                await asyncio.sleep(0)
        t1 = time.perf_counter_ns()
        for i in range(n):
            if i % 1000 == 999:
                await asyncio.sleep(0)
        t2 = time.perf_counter_ns()
        vals.append(((t1 - t0) - (t2 - t1)) / n)
    print(f"timeout_ns={statistics.median(vals):.4f}")


def noop():
    return None


async def to_thread(n):
    async def seq(k):
        for _ in range(k):
            await asyncio.to_thread(noop)

    for name, tasks in (("to_thread_ns", 1), ("to_thread_par_ns", 8)):
        vals = []
        for _ in range(REPS):
            t0 = time.perf_counter_ns()
            await asyncio.gather(*[seq(n // tasks) for _ in range(tasks)])
            vals.append((time.perf_counter_ns() - t0) / (n // tasks * tasks))
        print(f"{name}={statistics.median(vals):.4f}")


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def idle(n):
    before = rss_kib()
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(n)]
    await asyncio.sleep(0)  # every task runs to its sleep
    await asyncio.sleep(0)
    after = rss_kib()
    print(f"idle_kib={(after - before) / n:.4f} idle_total_mib={(after - before) / 1024:.1f}",
          flush=True)
    os._exit(0)  # measured; tearing down 1,000,000 tasks would take longer than that


WORKLOADS = {"switch": switch, "spawn": spawn, "spawn_live": spawn_live, "with": with_, "timeout": timeout, "idle": idle,
             "to_thread": to_thread}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in WORKLOADS:
        sys.exit("usage: asyncio_core.py %s N [asyncio|uvloop]" % "|".join(WORKLOADS))
    work, n = WORKLOADS[sys.argv[1]], int(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "asyncio"
    if kind == "uvloop":
        import uvloop
        uvloop.run(work(n)) if hasattr(uvloop, "run") else (
            uvloop.install(), asyncio.run(work(n)))
    else:
        asyncio.run(work(n))


if __name__ == "__main__":
    main()
