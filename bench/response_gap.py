"""Response gap: caller voice end -> first agent voice at the session output, minus the model delay, at
1..N concurrent calls in one process; and our code's share of it (first audio delta on the wire ->
first frame at the session output)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict
from typing import Any

from bench import report
from bench.audio import PLAIN_LINES, speech
from bench.calls import (
    MODEL_DELAY_MS,
    OURS,
    BenchCall,
    Flavour,
    ResourceMeter,
    SimulatorThread,
    adoptions,
    breakdown,
    script,
    speculation_counts,
    stats,
    timelines,
)


async def caller(call: BenchCall, turns: int, rng: random.Random) -> None:
    """A caller (already greeted) who asks `turns` plain questions, each after a short natural pause."""
    for i in range(turns):
        await asyncio.sleep(rng.uniform(0.3, 1.0))
        line = PLAIN_LINES[(i + rng.randrange(len(PLAIN_LINES))) % len(PLAIN_LINES)]
        await call.say(line, speech(line, "en-gb"))
        await call.wait_idle()


async def run_level(
    simt: SimulatorThread, flavour: Flavour, calls: int, turns: int, *, seed: int = 1, stagger_s: float = 3.0
) -> dict[str, Any]:
    """`calls` concurrent calls of `flavour`, `turns` each; their gaps, breakdowns and cost."""
    rng = random.Random(seed)
    for line in PLAIN_LINES:
        speech(line, "en-gb")  # render before the clock starts
    simt.forget_events()
    bench_calls = [BenchCall(simt, flavour, script(turns + 4)) for _ in range(calls)]

    async def answer(c: BenchCall, delay: float) -> None:
        await asyncio.sleep(delay)
        await c.start()

    # calls are answered (staggered) before the clock starts: this measures a steady state of N calls;
    # the stall a call start causes the others is measured by capacity.py
    await asyncio.gather(*(answer(c, rng.uniform(0, stagger_s)) for c in bench_calls))
    meter = ResourceMeter(simt)
    meter.start()

    async def one(c: BenchCall, delay: float) -> None:
        await asyncio.sleep(delay)
        await caller(c, turns, random.Random(rng.random()))

    try:
        await asyncio.gather(*(one(c, rng.uniform(0, 2.0)) for c in bench_calls))
    finally:
        cost = meter.stop()
        await asyncio.gather(*(c.close() for c in bench_calls))
    tls = timelines(simt.events())
    parts = []
    missing = 0
    for c in bench_calls:
        for t in c.turns:
            b = breakdown(t, tls[c.key], MODEL_DELAY_MS, adoptions(c))
            if b is None:
                missing += 1
            else:
                parts.append(b)
    pick = lambda f: [getattr(p, f) for p in parts if getattr(p, f) is not None]  # noqa: E731
    call_minutes = calls * cost["wall_s"] / 60
    return {
        "flavour": flavour.name,
        "calls": calls,
        "turns_per_call": turns,
        "unanswered_turns": missing,
        "gap_ms": stats(pick("gap_ms")),
        "endpoint_ms": stats(pick("endpoint_ms")),
        "ours_ms": stats(pick("ours_ms")),
        "ours_voice_ms": stats(pick("ours_voice_ms")),
        "model_ms": stats(pick("model_ms")),
        "held_ms": stats(pick("held_ms")),
        "speculation": speculation_counts(bench_calls, sum(len(c.turns) for c in bench_calls)),
        "cost": cost,
        "cpu_s_per_call_minute": round(cost["cpu_s"] / call_minutes, 3) if call_minutes else None,
        "samples": [asdict(p) for p in parts],
    }


def print_levels(title: str, levels: list[dict[str, Any]]) -> None:
    rows = []
    for r in levels:
        g, o = r["gap_ms"], r["ours_ms"]
        rows.append([r["flavour"], r["calls"], g["n"], g["p50"], g["p95"], g["p99"], r["endpoint_ms"]["p50"],
                     o["p50"], o["p99"], o["max"], r["unanswered_turns"], r["cost"]["cpu_cores"],
                     r["cost"]["rss_peak_mb"], r["cost"]["loop_lag_ms"]["p99"], r["cost"]["loop_lag_ms"]["max"],
                     (r.get("speculation") or {}).get("requests_per_caller_turn", "-")])
    report.table(title, ["flavour", "calls", "n", "gap p50", "p95", "p99", "endpoint p50", "ours p50",
                         "ours p99", "ours max", "unanswered", "cpu cores", "rss peak MB",
                         "loop lag p99", "lag max", "spec/turn"], rows)


async def run(simt: SimulatorThread, *, quick: bool, flavour: Flavour = OURS) -> dict[str, Any]:
    plan = [(1, 6), (10, 3)] if quick else [(1, 12), (10, 5), (25, 5), (40, 5)]
    levels = []
    for calls, turns in plan:
        levels.append(await run_level(simt, flavour, calls, turns))
        print_levels(f"response gap ({flavour.name}), so far", levels[-1:])
    print_levels(f"response gap minus {MODEL_DELAY_MS} ms model delay ({flavour.name})", levels)
    return {"model_delay_ms": MODEL_DELAY_MS, "flavour": flavour.describe(), "levels": levels}


@report.plot_if_possible
def plot(result: dict[str, Any], *, quick: bool) -> None:
    plt = report.pyplot()
    levels = result["levels"]
    xs = [r["calls"] for r in levels]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for q, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
        a.plot(xs, [r["gap_ms"][q] for r in levels], style, label=f"gap {q}")
    a.axhline(300, color="green", lw=0.8, ls="--", label="target p50 300 ms")
    a.axhline(450, color="red", lw=0.8, ls="--", label="target p99 450 ms")
    a.set_xlabel("concurrent calls (one process, 2 cores)")
    a.set_ylabel("ms (caller stops -> agent voice, minus model delay)")
    a.set_title("Response gap")
    a.legend(fontsize=7)
    for q, style in (("p50", "o-"), ("p99", "^:"), ("max", "x--")):
        b.plot(xs, [r["ours_ms"][q] for r in levels], style, label=f"our share {q}")
    b.axhline(10, color="red", lw=0.8, ls="--", label="target p99 10 ms")
    b.set_xlabel("concurrent calls")
    b.set_ylabel("ms (first audio delta -> session output)")
    b.set_title("Our code's share")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(report.plot_path("response_gap", quick=quick), dpi=110)
    plt.close(fig)
