"""Capacity of one process on this machine: the most concurrent calls whose response-gap p99 stays within
100 ms of the single-call figure, CPU seconds per call-minute, resident memory per call, and whether a
long call's memory grows (2 minutes measured, extrapolated to 10)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import psutil

from bench import report
from bench.audio import PLAIN_LINES, speech
from bench.calls import OURS, BenchCall, Flavour, SimulatorThread, script
from bench.response_gap import print_levels, run_level

P99_SLACK_MS = 100.0


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


async def long_calls(simt: SimulatorThread, flavour: Flavour, calls: int, seconds: float) -> dict[str, Any]:
    """`calls` calls talking without a break for `seconds`; RSS every second, fitted after warm-up."""
    rng = random.Random(3)
    proc = psutil.Process()
    bench_calls = [BenchCall(simt, flavour, script(400)) for _ in range(calls)]
    await asyncio.gather(*(c.start() for c in bench_calls))
    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    stop = t0 + seconds

    async def talk(c: BenchCall) -> None:
        i = 0
        while time.monotonic() < stop:
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            line = PLAIN_LINES[i % len(PLAIN_LINES)]
            await c.say(line, speech(line))
            await c.wait_idle()
            i += 1

    async def sample() -> None:
        while time.monotonic() < stop:
            samples.append((time.monotonic() - t0, proc.memory_info().rss / 2**20))
            simt.forget_events()  # the simulator's record is harness memory, not the agent's
            await asyncio.sleep(1.0)

    try:
        await asyncio.gather(sample(), *(talk(c) for c in bench_calls))
    finally:
        await asyncio.gather(*(c.close() for c in bench_calls))
    warm = [(t, r) for t, r in samples if t >= min(20.0, seconds / 3)]
    _, slope = _fit([t for t, _ in warm], [r for _, r in warm])  # MB per second, all calls
    per_call_per_min = slope * 60 / calls
    return {
        "calls": calls,
        "seconds": seconds,
        "turns": sum(len(c.turns) for c in bench_calls),
        "rss_mb_first": samples[0][1] if samples else None,
        "rss_mb_last": samples[-1][1] if samples else None,
        "growth_mb_per_call_minute": round(per_call_per_min, 3),
        "extrapolated_growth_mb_per_10min_call": round(per_call_per_min * 10, 2),
        "note": f"measured {seconds:.0f} s, fitted after warm-up and extrapolated linearly to a 10-minute call",
        "rss_samples": [(round(t, 1), round(r, 1)) for t, r in samples],
    }


async def run(
    simt: SimulatorThread, gap_result: dict[str, Any], *, quick: bool, baseline_rss_mb: float,
    flavour: Flavour = OURS,
) -> dict[str, Any]:
    levels = list(gap_result["levels"])
    single = next(r for r in levels if r["calls"] == 1)
    bound = single["gap_ms"]["p99"] + P99_SLACK_MS
    extra = [] if quick else [55, 70]
    for n in extra:
        if levels[-1]["gap_ms"]["p99"] > bound:
            break
        levels.append(await run_level(simt, flavour, n, 4))
        print_levels("capacity, so far", levels[-1:])
    within = [r["calls"] for r in levels if r["gap_ms"]["p99"] is not None and r["gap_ms"]["p99"] <= bound]
    capacity = max(within) if within else 0
    tried = max(r["calls"] for r in levels)
    a, b = _fit([r["calls"] for r in levels], [r["cost"]["cpu_cores"] for r in levels])
    per_call_rows = []
    for r in levels:
        mem = (r["cost"]["rss_peak_mb"] - baseline_rss_mb) / r["calls"]
        per_call_rows.append([r["calls"], r["gap_ms"]["p99"], r["gap_ms"]["p99"] <= bound, r["cost"]["cpu_cores"],
                              r["cpu_s_per_call_minute"], round(mem, 1), r["cost"]["loop_lag_ms"]["p99"]])
    report.table(
        f"capacity ({flavour.name}): p99 bound = single-call p99 {single['gap_ms']['p99']} + {P99_SLACK_MS:.0f} ms",
        ["calls", "gap p99", "within", "cpu cores", "cpu s/call-min", "MB/call", "loop lag p99"], per_call_rows)
    long = await long_calls(simt, flavour, 5, 30.0 if quick else 100.0)
    report.table("long calls: resident memory over time", ["calls", "seconds", "turns", "RSS first MB", "RSS last MB",
                 "MB/call-min", "MB per 10-min call (extrapolated)"],
                 [[long["calls"], long["seconds"], long["turns"], long["rss_mb_first"], long["rss_mb_last"],
                   long["growth_mb_per_call_minute"], long["extrapolated_growth_mb_per_10min_call"]]])
    return {
        "flavour": flavour.describe(),
        "p99_bound_ms": bound,
        "capacity_calls": capacity,
        "capacity_note": (f"p99 held at every level tried (up to {tried}); the real limit is higher"
                          if capacity == tried else f"p99 exceeded the bound above {capacity} calls"),
        "cpu_cores_fit": {"base": round(a, 4), "per_call": round(b, 4),
                          "text": f"{100 * a:.1f}% + {100 * b:.2f}% of a core per call"},
        "baseline_rss_mb": baseline_rss_mb,
        "levels": [{k: v for k, v in r.items() if k != "samples"} for r in levels],
        "long_call": long,
    }


@report.plot_if_possible
def plot(result: dict[str, Any], *, quick: bool) -> None:
    plt = report.pyplot()
    levels = result["levels"]
    xs = [r["calls"] for r in levels]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 4))
    a.plot(xs, [r["gap_ms"]["p99"] for r in levels], "^-", label="gap p99")
    a.axhline(result["p99_bound_ms"], color="red", ls="--", lw=0.8, label="single-call p99 + 100 ms")
    a.set_xlabel("concurrent calls")
    a.set_ylabel("ms")
    a.set_title("Response gap p99 vs load")
    a.legend(fontsize=7)
    b.plot(xs, [100 * r["cost"]["cpu_cores"] for r in levels], "o-")
    fit = result["cpu_cores_fit"]
    b.plot(xs, [100 * (fit["base"] + fit["per_call"] * x) for x in xs], "k:", label=fit["text"])
    b.set_xlabel("concurrent calls")
    b.set_ylabel("% of one core (agent side)")
    b.set_title("CPU")
    b.legend(fontsize=7)
    samples = result["long_call"]["rss_samples"]
    c.plot([t for t, _ in samples], [r for _, r in samples])
    c.set_xlabel(f"seconds ({result['long_call']['calls']} calls talking)")
    c.set_ylabel("process RSS (MB)")
    c.set_title("Memory over a long call")
    fig.tight_layout()
    fig.savefig(report.plot_path("capacity", quick=quick), dpi=110)
    plt.close(fig)
