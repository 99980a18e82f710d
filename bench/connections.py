"""The Postgres connection budget: what a caller waiting on a booking pays for PgBouncer. Job processes,
each with its own pool of DATABASE_POOL_SIZE (2) as a worker's are, book at once against a local
Postgres with max_connections = 30 and fsync on: straight to it, with statements prepared (the
default) and never prepared (as DATABASE_PGBOUNCER's pools are), and through PgBouncer in transaction
pooling mode (deploy/pgbouncer/pgbouncer.ini), with as many job processes and with 60.
Prints a table and writes bench/results/connections.json.

    python -m bench.connections [--processes 12] [--bookings 40] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.store.appointments import book, warm_up
from agent.store.db import migrate, open_pool
from bench.report import table, write

POOL_SIZE = 2  # DATABASE_POOL_SIZE's default
EPOCH = datetime(2031, 1, 6, 9, 0, tzinfo=UTC)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def bookings(dsn: str, processes: int, per_process: int, *, pgbouncer: bool) -> dict[str, Any]:
    """`processes` job processes, each its own pool, each booking `per_process` slots one after another."""
    pools = [
        await open_pool(dsn, min_size=1, max_size=POOL_SIZE, acquire_timeout=30, prepare=warm_up,
                        pgbouncer=pgbouncer)
        for _ in range(processes)
    ]  # fmt: skip
    run = uuid.uuid4().hex[:6]
    latencies: list[float] = []

    async def job_process(i: int) -> None:
        for j in range(per_process):
            start = EPOCH + timedelta(minutes=30 * j)
            t0 = time.perf_counter()
            await book(pools[i], f"bench-{run}-{i}", "Cleaning", f"caller {i}", "+14155550123",
                       start, start + timedelta(minutes=30), uuid.uuid4())  # fmt: skip
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(job_process(i) for i in range(processes)))
    finally:
        wall = time.perf_counter() - t0
        for pool in pools:
            await pool.close()
    return {
        "processes": processes,
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "bookings_per_s": round(len(latencies) / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=12,
                        help="job processes straight to Postgres (x2 connections, under its 30)")
    parser.add_argument("--bookings", type=int, default=40, help="bookings per job process")
    parser.add_argument("--quick", action="store_true", help="10 bookings per job process")
    args = parser.parse_args()  # fmt: skip
    per = 10 if args.quick else args.bookings

    from simulator.pgbouncer import PgBouncer
    from simulator.postgres import PgServer

    server = PgServer(durable=True, max_connections=30)
    server.start()
    bouncer = PgBouncer(server)
    try:
        bouncer.start()
        server.create_database("connections_bench")
        direct, pooled = server.dsn("connections_bench"), bouncer.dsn("connections_bench")

        async def run() -> dict[str, Any]:
            await migrate(direct)
            return {
                "direct, prepared": await bookings(direct, args.processes, per, pgbouncer=False),
                "direct, never prepared": await bookings(direct, args.processes, per, pgbouncer=True),
                "PgBouncer, never prepared": await bookings(pooled, args.processes, per, pgbouncer=True),
                "PgBouncer, 60 job processes": await bookings(pooled, 60, per, pgbouncer=True),
            }

        results = asyncio.run(run())
    finally:
        bouncer.stop()
        server.destroy()
    table(f"bookings by job processes with pools of {POOL_SIZE}, Postgres max_connections = 30",
          ["route", "job processes", "bookings", "p50 ms", "p99 ms", "per second"],
          [[name, r["processes"], r["n"], r["p50_ms"], r["p99_ms"], r["bookings_per_s"]]
           for name, r in results.items()])  # fmt: skip
    path = write("connections", {"bookings": results, "pool_size": POOL_SIZE}, quick=args.quick)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
