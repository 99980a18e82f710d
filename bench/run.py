"""Runs the whole benchmark suite: `python -m bench.run [--quick] [--only NAME ...]`.

Prints a table per measurement, writes bench/results/<name>[-quick].json (machine, date, settings) and
bench/results/<name>[-quick].png. The full suite takes about 17 minutes on 2 cores, --quick about 7.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import psutil

from bench import barge_in, capacity, capacity_proc, compare, endpointing, report, response_gap
from bench.calls import (
    LIVEKIT_DEFAULT,
    MODEL_DELAY_MS,
    OURS,
    Flavour,
    SimulatorThread,
    all_model_lines,
    quiet_logs,
    settings_for,
    vad_model,
    warm_model_voice,
)
from bench.response_gap import print_levels, run_level

# the levers of issue 5 (7): speculative replies, shorter silences, shorter interruption, LiveKit's local
# audio end-of-turn model; and the defaults shipped before speculative replies, for before/after
NO_SPEC = Flavour("ours without speculation", "ours", settings_for(speculative_reply=False))
PREV = Flavour("previous defaults ep0.5/sil0.55", "ours",
               settings_for(min_endpointing_delay=0.5, vad_min_silence_duration=0.55, speculative_reply=False))
TD = Flavour("ours +TurnDetector ep0.2/sil0.25", "ours",
             settings_for(min_endpointing_delay=0.2, vad_min_silence_duration=0.25, max_endpointing_delay=2.5),
             turn_detector="v1-mini")
INT_05 = Flavour("ours int0.5", "ours", settings_for(min_interruption_duration=0.5))
# issue 14 part 4: without the noise gate and the backchannel rule, every sound the VAD hears is a turn
EVERY_SOUND = Flavour("ours, no gate/backchannels", "ours", settings_for(noise_gate_db=0, backchannel_seconds=0))

SUITE = ("response_gap", "endpointing", "barge_in", "capacity", "compare", "capacity_proc")


def _settings_doc() -> dict[str, Any]:
    return {"model_delay_ms": MODEL_DELAY_MS, "ours_defaults": OURS.describe(),
            "levers": {f.name: f.describe() for f in (NO_SPEC, PREV, TD, INT_05, EVERY_SOUND)}}


async def _suite(quick: bool, only: set[str]) -> None:
    quiet_logs()
    simt = SimulatorThread()
    simt.start()
    warm_model_voice(all_model_lines())
    for f in (OURS, PREV, TD):
        vad_model(f.settings.vad_min_silence_duration)
    vad_model(None)
    baseline_rss = round(psutil.Process().memory_info().rss / 2**20, 1)
    gap: dict[str, Any] | None = None
    try:
        if "response_gap" in only or "capacity" in only:
            gap = await response_gap.run(simt, quick=quick)
            if not quick:
                # the candidate levers at the load the target names (25 calls)
                cand = [await run_level(simt, f, 25, 4) for f in (NO_SPEC,)]
                print_levels("response gap of the candidate settings at 25 calls", cand)
                gap["candidates_at_25"] = [{k: v for k, v in r.items() if k != "samples"} for r in cand]
            print("wrote", report.write("response_gap", {"settings": _settings_doc(), **gap}, quick=quick))
            response_gap.plot(gap, quick=quick)
        if "endpointing" in only:
            # unprompted, every VAD-timed flavour cuts all 24 (measured: plain LiveKit VAD turn taking and our
            # previous defaults too); asked first is where they differ
            flavours = [LIVEKIT_DEFAULT, OURS, TD]
            ep = await endpointing.run(simt, flavours, quick=quick, prompted=[LIVEKIT_DEFAULT, OURS, PREV])
            print("wrote", report.write("endpointing", {"settings": _settings_doc(), **ep}, quick=quick))
            endpointing.plot(ep, quick=quick)
        if "barge_in" in only:
            flavours = [LIVEKIT_DEFAULT, OURS, EVERY_SOUND]
            bi = await barge_in.run(simt, flavours, quick=quick)
            print("wrote", report.write("barge_in", {"settings": _settings_doc(), **bi}, quick=quick))
            barge_in.plot(bi, quick=quick)
        if "capacity" in only and gap is not None:
            cap = await capacity.run(simt, gap, quick=quick, baseline_rss_mb=baseline_rss)
            print("wrote", report.write("capacity", {"settings": _settings_doc(), **cap}, quick=quick))
            capacity.plot(cap, quick=quick)
    finally:
        simt.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer calls and turns (about 4 minutes)")
    ap.add_argument("--only", nargs="*", choices=SUITE, help="run only these measurements")
    args = ap.parse_args()
    only = set(args.only or SUITE)
    t0 = time.monotonic()
    asyncio.run(_suite(args.quick, only))
    if "compare" in only:
        # child processes of its own; runs after the in-process suite so they never share the cores
        result = compare.run(quick=args.quick)
        print("wrote", report.write("compare", result, quick=args.quick))
        compare.plot(result, quick=args.quick)
    if "capacity_proc" in only:
        # the worker's real executor: one job process per call, after everything else has let go of the cores
        result = asyncio.run(capacity_proc.run(args.quick))
        print("wrote", report.write("capacity_proc", result, quick=args.quick))
        capacity_proc.plot(result, quick=args.quick)
    print(f"\nbench: done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
