"""Peers of bench/db: asyncpg (+uvloop) and aiosqlite on the same workloads.

  asyncpg_bench.py select DSN N TASKS POOL [uvloop]   N x SELECT $1::int
  asyncpg_bench.py tx DSN N TASKS POOL [uvloop]       N transactions, one INSERT each
  asyncpg_bench.py sqlite PATH N [uvloop]             N x SELECT ? on one aiosqlite connection

Each workload runs 5 times; prints ns=<median ns per query or transaction>
(sqlite: and cpu_ns=<median CPU ns of the process, its threads included,
per query>)."""
import asyncio
import statistics
import sys
import time

REPS = 5


async def pg_select(dsn, n, tasks, pool_size):
    import asyncpg
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
    per = n // tasks

    async def worker():
        for i in range(per):
            async with pool.acquire() as conn:
                v = await conn.fetchval("SELECT $1::int", i)
                assert v == i

    t0 = time.perf_counter_ns()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    t = time.perf_counter_ns() - t0
    await pool.close()
    return t / (per * tasks)


async def pg_tx(dsn, n, tasks, pool_size):
    import asyncpg
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_tx (id int, v text)")
        await conn.execute("TRUNCATE bench_tx")
    per = n // tasks

    async def worker(k):
        for i in range(per):
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await conn.execute("INSERT INTO bench_tx VALUES ($1, $2)", k * per + i, "x")

    t0 = time.perf_counter_ns()
    await asyncio.gather(*(worker(k) for k in range(tasks)))
    t = time.perf_counter_ns() - t0
    await pool.close()
    return t / (per * tasks)


async def sqlite_select(path, n):
    import aiosqlite
    async with aiosqlite.connect(path) as db:
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        for i in range(n):
            async with db.execute("SELECT ?", (i,)) as cur:
                row = await cur.fetchone()
                assert row[0] == i
        return (time.perf_counter_ns() - t0) / n, (time.process_time_ns() - c0) / n


def main():
    mode = sys.argv[1]
    if sys.argv[-1] == "uvloop":
        import uvloop
        uvloop.install()
    vals, cpu = [], []
    for _ in range(REPS):
        if mode == "select":
            vals.append(asyncio.run(pg_select(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
        elif mode == "tx":
            vals.append(asyncio.run(pg_tx(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
        else:
            wall, c = asyncio.run(sqlite_select(sys.argv[2], int(sys.argv[3])))
            vals.append(wall)
            cpu.append(c)
    print(f"ns={statistics.median(vals):.1f}" + (f" cpu_ns={statistics.median(cpu):.1f}" if cpu else ""))


main()
