"""asyncio_cm.py: the Python peers of the managers-toolkit benchmarks.

Run with /usr/bin/python3. Usage:

    asyncio_cm.py WORKLOAD N [asyncio|uvloop]

Prints `key=value` tokens, each the median of 5 measurements of CPU time
(time.process_time_ns, as the C side: the machine may be shared).

    gencm N      enter + exit of an @asynccontextmanager (yield, nothing
                 else), N times: gencm_ns
    exitstack N  AsyncExitStack entering 10 no-op class managers, then
                 leaving: exitstack10_ns per stack
    lock N       100 tasks each doing N/100 times `async with lock:
                 await asyncio.sleep(0)`: lock_ns per acquire/release
    agen N       `async for` over an async generator of N items: agen_ns
                 per item
"""
import asyncio
import contextlib
import statistics
import sys
import time

REPS = 5


def report(key, vals):
    print(f"{key}={statistics.median(vals):.4f}")


@contextlib.asynccontextmanager
async def gen_cm():
    yield None


async def gencm(n):
    vals = []
    for _ in range(REPS):
        t0 = time.process_time_ns()
        for i in range(n):
            async with gen_cm():
                pass
            if i % 1000 == 999:  # as bench/gencm.c
                await asyncio.sleep(0)
        t1 = time.process_time_ns()
        for i in range(n):
            if i % 1000 == 999:
                await asyncio.sleep(0)
        t2 = time.process_time_ns()
        vals.append(((t1 - t0) - (t2 - t1)) / n)
    report("gencm_ns", vals)


class Noop:
    async def __aenter__(self):
        return self

    async def __aexit__(self, et, ev, tb):
        return None


async def exitstack(n):
    cms = [Noop() for _ in range(10)]
    vals = []
    for _ in range(REPS):
        t0 = time.process_time_ns()
        for _ in range(n):
            async with contextlib.AsyncExitStack() as st:
                for cm in cms:
                    await st.enter_async_context(cm)
        vals.append((time.process_time_ns() - t0) / n)
    report("exitstack10_ns", vals)


async def lock(n):
    tasks = 100
    per = max(1, n // tasks)
    vals = []
    for _ in range(REPS):
        lk = asyncio.Lock()

        async def worker():
            for _ in range(per):
                async with lk:
                    await asyncio.sleep(0)

        t0 = time.process_time_ns()
        await asyncio.gather(*[worker() for _ in range(tasks)])
        vals.append((time.process_time_ns() - t0) / (tasks * per))
    report("lock_ns", vals)


async def numbers(n):
    for i in range(n):
        yield i


async def agen(n):
    vals = []
    for _ in range(REPS):
        s = 0
        t0 = time.process_time_ns()
        async for v in numbers(n):
            s += v
        vals.append((time.process_time_ns() - t0) / n)
    report("agen_ns", vals)


WORKLOADS = {"gencm": gencm, "exitstack": exitstack, "lock": lock, "agen": agen}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in WORKLOADS:
        sys.exit("usage: asyncio_cm.py %s N [asyncio|uvloop]" % "|".join(WORKLOADS))
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
