"""read_aiofiles.py PATH REPS: read PATH in 64 KiB chunks with aiofiles,
REPS times; print the median as mib_per_s=<MiB/s>."""
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


async def main(path, reps):
    v = [await once(path) for _ in range(reps)]
    print(f"mib_per_s={statistics.median(v):.1f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
