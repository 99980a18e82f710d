"""Store benchmark: booking and check_availability latency under 50 concurrent sessions, and
call-journal throughput.

Runs against --dsn (or $DATABASE_URL), or else a throwaway local PostgreSQL 15 cluster with fsync on.
Prints a table and writes bench/results/store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livekit.agents import RunContext  # noqa: E402

from agent.brain import load_brain  # noqa: E402
from agent.call import CallContext  # noqa: E402
from agent.store.appointments import SlotTaken, book, warm_up  # noqa: E402
from agent.store.db import migrate, open_pool  # noqa: E402
from agent.store.journal.events import CallEnded, CallStarted, TranscriptTurn  # noqa: E402
from agent.store.journal.writer import CallJournal  # noqa: E402
from agent.tools import check_availability  # noqa: E402

EPOCH = datetime(2031, 1, 6, 9, 0, tzinfo=UTC)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "mean_ms": round(statistics.fmean(latencies_ms), 2),
        "max_ms": round(max(latencies_ms), 2),
    }


async def bench_booking(dsn: str, sessions: int, per_session: int, pool_size: int) -> dict:
    """`sessions` callers booking at once, each its own run of distinct slots."""
    pool = await open_pool(dsn, min_size=pool_size, max_size=pool_size, acquire_timeout=30, prepare=warm_up)
    business = f"bench-{uuid.uuid4().hex[:6]}"
    latencies: list[float] = []

    async def session(i: int) -> None:
        for j in range(per_session):
            start = EPOCH + timedelta(days=i, minutes=30 * j)
            t0 = time.perf_counter()
            await book(pool, business, "Cleaning", f"caller {i}", "+14155550123",
                       start, start + timedelta(minutes=30), uuid.uuid4())  # fmt: skip
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(session(i) for i in range(sessions)))
    wall = time.perf_counter() - t0
    await pool.close()
    return {**summary(latencies), "bookings_per_s": round(len(latencies) / wall, 1)}


async def bench_contended(dsn: str, sessions: int, rounds: int) -> dict:
    """All sessions race for the same slot each round: one wins, the rest hear SlotTaken."""
    pool = await open_pool(dsn, min_size=sessions, max_size=sessions, acquire_timeout=30, prepare=warm_up)
    business = f"bench-{uuid.uuid4().hex[:6]}"
    latencies: list[float] = []
    winners = 0

    async def attempt(start: datetime) -> bool:
        t0 = time.perf_counter()
        try:
            await book(pool, business, "Cleaning", "caller", "+14155550123",
                       start, start + timedelta(minutes=30))  # fmt: skip
            return True
        except SlotTaken:
            return False
        finally:
            latencies.append((time.perf_counter() - t0) * 1000)

    for r in range(rounds):
        start = EPOCH + timedelta(hours=r)
        results = await asyncio.gather(*(attempt(start) for _ in range(sessions)))
        winners += sum(results)
    await pool.close()
    return {**summary(latencies), "rounds": rounds, "winners": winners}


class _ToolRun(RunContext[CallContext]):
    """What a tool reads of LiveKit's RunContext (only `.userdata`), without a live session."""

    def __init__(self, call: CallContext) -> None:  # no super().__init__: there is no session
        self._call = call

    @property
    def userdata(self) -> CallContext:
        return self._call


async def bench_availability(dsn: str, sessions: int, per_session: int, pool_size: int) -> dict:
    """`sessions` callers asking check_availability (the tool: calendar query plus free-slot maths)
    for a day with two bookings. No Redis here, so no slot holds are consulted."""
    brain = load_brain(ROOT / "brains" / "plumbing.yaml")
    now = datetime(2026, 11, 24, 10, 0, tzinfo=brain.tz)  # a Tuesday; Wednesday is a normal day
    pool = await open_pool(dsn, min_size=pool_size, max_size=pool_size, acquire_timeout=30, prepare=warm_up)
    day = datetime(2026, 11, 25, 8, 0, tzinfo=brain.tz)
    for h in (1, 5):
        await book(pool, brain.business.name, "Drain cleaning", "Booked Already", "+15035550100",
                   day + timedelta(hours=h), day + timedelta(hours=h, minutes=60))  # fmt: skip
    latencies: list[float] = []

    async def session() -> None:
        call = CallContext(brain=brain, dialed_number=brain.business.numbers[0],
                           caller_number="+15035550123", clock=lambda: now, pool=pool)  # fmt: skip
        for _ in range(per_session):
            t0 = time.perf_counter()
            await check_availability(_ToolRun(call), service="Drain cleaning", day="tomorrow")
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(sessions)))
    wall = time.perf_counter() - t0
    await pool.close()
    return {**summary(latencies), "checks_per_s": round(len(latencies) / wall, 1)}


async def bench_journal(dsn: str, calls: int, turns: int, spill_dir: Path) -> dict:
    journal = CallJournal(dsn, spill_dir, max_buffer=1_000_000, batch_size=1000)
    await journal.start()
    events = []
    for _ in range(calls):
        call_id = uuid.uuid4()
        events.append(CallStarted(call_id=call_id, business="bench", caller_number="+14155550123"))
        events += [
            TranscriptTurn(call_id=call_id, role="caller" if t % 2 else "agent",
                           text="I'd like to book a cleaning next Tuesday morning, please.")
            for t in range(turns)
        ]  # fmt: skip
        events.append(CallEnded(call_id=call_id, outcome="booked", end_reason="caller_hangup"))
    t0 = time.perf_counter()
    for event in events:
        journal.record(event)
    record_s = time.perf_counter() - t0
    assert await journal.flush(timeout=600)
    wall = time.perf_counter() - t0
    stats = journal.stats()
    await journal.aclose()
    return {
        "events": len(events),
        "events_per_s": round(len(events) / wall),
        "record_us_per_event": round(record_s / len(events) * 1e6, 2),
        "batches": stats["batches"],
        "mean_batch": round(stats["written"] / max(stats["batches"], 1), 1),
    }


async def run(dsn: str) -> dict:
    await migrate(dsn)
    with tempfile.TemporaryDirectory() as spill:
        return {
            "booking_50_sessions_pool_10": await bench_booking(dsn, 50, 20, 10),
            "booking_50_sessions_pool_50": await bench_booking(dsn, 50, 20, 50),
            "booking_50_racing_one_slot": await bench_contended(dsn, 50, 20),
            "availability_50_sessions_pool_10": await bench_availability(dsn, 50, 20, 10),
            "journal": await bench_journal(dsn, 200, 250, Path(spill)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "store.json")
    args = parser.parse_args()

    server = None
    dsn = args.dsn
    if dsn is None:
        from simulator.postgres import PgServer

        server = PgServer(durable=True)
        server.start()
        dsn = server.create_database("store_bench")
    try:
        results = asyncio.run(run(dsn))
    finally:
        if server is not None:
            server.destroy()

    print(f"{'':<32} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'per s':>8}")
    for name in ("booking_50_sessions_pool_10", "booking_50_sessions_pool_50",
                 "booking_50_racing_one_slot", "availability_50_sessions_pool_10"):  # fmt: skip
        r = results[name]
        rate = r.get("bookings_per_s", r.get("checks_per_s", ""))
        print(
            f"{name:<32} {r['n']:>6} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8} {rate:>8}"
        )
    j = results["journal"]
    print(f"\njournal: {j['events']} events, {j['events_per_s']} events/s, "
          f"record() {j['record_us_per_event']} us/event, {j['batches']} batches "
          f"(mean {j['mean_batch']} events)")  # fmt: skip

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "postgres": "local 15, fsync on" if server else "given dsn",
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
