"""aiohttp_get.py: N GETs of one URL, C at a time (C worker tasks sharing
one ClientSession with a connector limit of C, keep-alive), with asyncio or
uvloop. Repeats REPS times and prints the medians: rps=<requests/s>,
cpu_ns=<CPU time of the process per request>.

usage: aiohttp_get.py URL N C asyncio|uvloop [REPS]"""
import asyncio
import statistics
import sys
import time

import aiohttp


async def run(url, n, c):
    conn = aiohttp.TCPConnector(limit=c, limit_per_host=c)
    async with aiohttp.ClientSession(connector=conn) as session:
        left = n

        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                async with session.get(url) as resp:
                    body = await resp.read()
                    assert len(body) > 0

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(c)))
        return n / (time.perf_counter() - t0), (time.process_time() - c0) * 1e9 / n


def main():
    url, n, c, loop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    reps = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    if loop == "uvloop":
        import uvloop
        uvloop.install()
    runs = [asyncio.run(run(url, n, c)) for _ in range(reps)]
    print(f"rps={statistics.median(r for r, _ in runs):.1f} "
          f"cpu_ns={statistics.median(c for _, c in runs):.0f}")


if __name__ == "__main__":
    main()
