"""What call reports cost: the time the report adds when a call ends (finish() with the report against
finish() without it, in the same run), and `receptionist report`'s aggregates over 100,000 seeded calls
in a local Postgres. Prints a table and writes bench/results/call_reports.json.

    python -m bench.call_reports [--calls 100000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent import call as call_module
from agent.brain import load_brain
from agent.call import CallContext
from agent.call_end import finish_call
from agent.store.db import migrate, open_pool
from agent.store.kpis import business_kpis
from bench.report import table, write

ROOT = Path(__file__).resolve().parents[1]
BRAIN = load_brain(ROOT / "brains" / "plumbing.yaml")
BUSINESSES = ["Rose City Plumbing", "Lakeview Dental", "Third Business"]
CALLER_LINES = [
    "Can someone come out tomorrow morning?", "No, I said Thursday.", "Can I talk to a manager?",
    "What are your hours on Saturday?", "This is ridiculous.", "Okay, thanks.",
]  # fmt: skip


class _Sink:
    def record(self, event: Any) -> None:  # the journal's record(): a queue append, measured apart
        pass


def _busy_call(turns: int, tools: int) -> CallContext:
    """A long, eventful call: the report's worst case is linear in turns and tool calls."""
    call = CallContext(brain=BRAIN, journal=_Sink())  # type: ignore[arg-type]
    call.start()
    t = time.time()
    for i in range(turns):
        role = "caller" if i % 2 else "agent"
        text = random.choice(CALLER_LINES) if role == "caller" else "Sure, let me check that for you."
        call.record_turn(role=role, text=text, started_at=t + i * 3, ended_at=t + i * 3 + 2, interrupted=i % 9 == 0)
    for i in range(tools):
        call.record_tool_call(name=random.choice(["check_availability", "book_appointment", "take_message"]),
                              arguments={"service": "drain cleaning"}, result=json.dumps({"booked": True}),
                              error="taken" if i % 5 == 0 else None, latency_ms=12.0)  # fmt: skip
    call.record_violation(turn_seq=2, kind="hours", claim="open Sunday", correction="closed Sunday")
    call.set_outcome("booked")
    return call


def bench_hang_up(n: int, turns: int, tools: int) -> dict[str, Any]:
    real = call_module.build_report

    def timed(with_report: bool) -> list[float]:
        call_module.build_report = real if with_report else (lambda c: None)  # type: ignore[assignment]
        out = []
        for _ in range(n):
            c = _busy_call(turns, tools)
            t = time.perf_counter()
            finish_call(c, reason="caller_hangup")
            out.append((time.perf_counter() - t) * 1000)
        return out

    try:
        timed(True)  # warm up regexes and imports
        base, with_report = timed(False), timed(True)
    finally:
        call_module.build_report = real
    q = statistics.quantiles
    return {
        "calls": n, "turns": turns, "tool_calls": tools,
        "finish_without_report_ms": {"p50": round(statistics.median(base), 3), "p99": round(q(base, n=100)[98], 3)},
        "finish_with_report_ms": {"p50": round(statistics.median(with_report), 3),
                                  "p99": round(q(with_report, n=100)[98], 3)},
    }  # fmt: skip


def _seed_rows(n: int, end: datetime) -> tuple[io.StringIO, io.StringIO]:
    calls, tools = io.StringIO(), io.StringIO()
    rnd = random.Random(7)
    for _ in range(n):
        cid = uuid.uuid4()
        at = end - timedelta(seconds=rnd.uniform(0, 30 * 86400))
        outcome = rnd.choice(["booked", "answered", "message", "lead", "abandoned", "escalated"])
        flags = [{"flag": f, "turns": [2]} for f in rnd.sample(["dead_air", "asked_for_human", "tool_error",
                                                                "frustration"], rnd.randint(0, 2))]  # fmt: skip
        summary = {"version": 1, "escalation": {"result": "accepted"} if outcome == "escalated" else None,
                   "timing": {"to_greeting_s": rnd.uniform(0.7, 1.5),
                              "response_gap_s": {"p50": rnd.uniform(0.2, 0.6), "max": rnd.uniform(0.4, 2.5)}},
                   "flags": flags, "cost": {"total": round(rnd.uniform(0.05, 0.6), 4)}}  # fmt: skip
        calls.write("\t".join([str(cid), rnd.choice(BUSINESSES), at.isoformat(), at.isoformat(),
                               (at + timedelta(minutes=2)).isoformat(), outcome, "agent_goodbye",
                               json.dumps(summary)]) + "\n")  # fmt: skip
        for seq in range(1, rnd.randint(1, 4) + 1):
            tools.write("\t".join([str(uuid.uuid4()), str(cid), str(seq), rnd.choice(
                ["check_availability", "book_appointment", "get_opening_hours", "take_message"]),
                "{}", f"{rnd.uniform(2, 30):.2f}", at.isoformat()]) + "\n")  # fmt: skip
    calls.seek(0)
    tools.seek(0)
    return calls, tools


async def bench_aggregates(dsn: str, n: int, runs: int) -> dict[str, Any]:
    await migrate(dsn)
    end = datetime.now(UTC)
    calls, tools = _seed_rows(n, end)
    pool = await open_pool(dsn, min_size=1, max_size=3)  # as `receptionist report` opens it
    try:
        async with pool.connection() as conn:
            await conn.execute("SET statement_timeout = 0")  # seeding, not a measured statement
            async with conn.cursor().copy(
                "COPY calls (id, business, started_at, answered_at, ended_at, outcome, end_reason, summary)"
                " FROM STDIN"
            ) as cp:
                await cp.write(calls.getvalue())
            async with conn.cursor().copy(
                "COPY tool_calls (id, call_id, seq, name, arguments, latency_ms, created_at) FROM STDIN"
            ) as cp:
                await cp.write(tools.getvalue())
            await conn.execute("ANALYZE")
            await conn.execute("RESET statement_timeout")
        out: dict[str, Any] = {"seeded_calls": n}
        for label, days, business in [("one business, 7 days", 7, BUSINESSES[0]),
                                      ("one business, 30 days", 30, BUSINESSES[0]),
                                      ("all businesses, 30 days", 30, None)]:  # fmt: skip
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                k = await business_kpis(pool, start=end - timedelta(days=days), end=end, business=business,
                                        tz="America/Los_Angeles")  # fmt: skip
                times.append((time.perf_counter() - t) * 1000)
            out[label] = {"calls_in_window": k["calls"], "median_ms": round(statistics.median(times), 1),
                          "max_ms": round(max(times), 1)}  # fmt: skip
        return out
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000, help="calls seeded for the aggregates")
    parser.add_argument("--quick", action="store_true", help="fewer samples and 20,000 calls")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.calls

    hang_up = bench_hang_up(200 if args.quick else 2000, turns=60, tools=20)
    table("call report on the hang-up path (a 60-turn, 20-tool call)", ["", "p50 ms", "p99 ms"], [
        ["finish() without the report", hang_up["finish_without_report_ms"]["p50"], hang_up["finish_without_report_ms"]["p99"]],
        ["finish() with the report", hang_up["finish_with_report_ms"]["p50"], hang_up["finish_with_report_ms"]["p99"]],
    ])  # fmt: skip

    from simulator.postgres import PgServer

    server = PgServer(durable=True)
    server.start()
    try:
        aggregates = asyncio.run(bench_aggregates(server.create_database("report_bench"), n, 3 if args.quick else 5))
    finally:
        server.destroy()
    table(f"receptionist report over {n:,} seeded calls (local Postgres 15)", ["window", "calls in it", "median ms", "max ms"],
          [[k, v["calls_in_window"], v["median_ms"], v["max_ms"]] for k, v in aggregates.items() if isinstance(v, dict)])  # fmt: skip
    path = write("call_reports", {"hang_up": hang_up, "aggregates": aggregates}, quick=args.quick)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
