"""read_aiofiles.py PATH REPS: read PATH in 64 KiB chunks with aiofiles,
REPS times; print the median as mib_per_s=<MiB/s>.
read_aiofiles.py DIR REPS small N: read DIR/f0 .. DIR/f<N-1> whole (open,
read, close each); print the median as files_per_s=<files/s>."""
import asyncio
import statistics
import sys
import time

import aiofiles


async def once(path):
    t = time.perf_counter()
    n = 0
    async with aiofiles.open(path, "rb") as f:
        while True:
            b = await f.read(65536)
            if not b:
                break
            n += len(b)
    return n / 2**20 / (time.perf_counter() - t)


async def small(d, n):
    t = time.perf_counter()
    for i in range(n):
        async with aiofiles.open(f"{d}/f{i}", "rb") as f:
            await f.read()
    return n / (time.perf_counter() - t)


async def main(path, reps):
    if len(sys.argv) > 3 and sys.argv[3] == "small":
        n = int(sys.argv[4])
        v = [await small(path, n) for _ in range(reps)]
        print(f"files_per_s={statistics.median(v):.1f}")
        return
    v = [await once(path) for _ in range(reps)]
    print(f"mib_per_s={statistics.median(v):.1f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
