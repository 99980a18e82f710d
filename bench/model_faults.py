"""What a caller hears when the model fails: each fault scenario (tests/scenarios/model-faults/) played in
real time, and the figures behind the 1.5 s dead-air rule: the silence the waiting caller heard, and how
long after the fault the model-free path (apology, transfer or voicemail) began.

Run: `python -m bench.model_faults` (prints a table, writes bench/results/model_faults.json).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent.settings import load_settings
from bench import report
from simulator.runner import CallReport, simulate
from simulator.scenario import load_scenario, scenario_files
from simulator.server import RealtimeSimulator

FAULTS = Path(__file__).resolve().parents[1] / "tests" / "scenarios" / "model-faults"


def _dead_air(call: CallReport, since: float) -> float | None:
    """Seconds from `since` until agent audio is heard (0 if it is already playing)."""
    later = []
    for seg in call.heard:
        if seg["first_voice"] is None:
            continue
        playing = seg["ended"] is None or seg["ended"] > since
        if seg["first_voice"] <= since and playing and seg["played_ms"] > 0:
            return 0.0
        if seg["first_voice"] >= since:
            later.append(seg["first_voice"])
    return min(later) - since if later else None


async def _one(path: Path, voicemail: Path) -> dict[str, Any]:
    scenario = load_scenario(path)
    settings = load_settings(openai_api_key="simulator", voicemail_dir=voicemail)
    async with RealtimeSimulator(model_delay_ms=scenario.model_delay_ms) as sim:
        call = await simulate(scenario, audio=True, settings=settings, sim=sim)
        struck = sim.faults_fired(call.sim_key)
    fault_at = struck[0] if struck else None
    # the caller waits from the fault, or from the end of the question it struck (a voicemail is
    # spoken after the fault and waits for nothing)
    asked = bool(call.spoken) and scenario.turns and not scenario.turns[0].after_tone
    waiting = max(fault_at, call.spoken[0]["ended"]) if fault_at and asked else fault_at
    # the model-free path's first line (the apology), timed from the hold line that covered the outage
    hold = next((t for t in call.transcript if t["text"] == "One moment, please."), None)
    apology = next((t for t in call.transcript if "technical trouble" in t["text"]), None)
    return {
        "scenario": scenario.name,
        "fault": scenario.fault.model_dump() if scenario.fault else None,
        "dead_air_s": None if waiting is None else _round(_dead_air(call, waiting)),
        "response_gap_ms": call.timings.get("response_gap_ms"),
        "apology_after_hold_s": _round(apology["t"] - hold["t"]) if apology and hold else None,
        "outcome": call.outcome,
        "end_reason": call.end_reason,
        "line": call.line_actions,
        "graded_without_db": [c.name for c in call.checks if not c.ok and c.name != "database state"],
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


async def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as voicemail:
        for path in scenario_files(FAULTS):
            rows.append(await _one(path, Path(voicemail)))
    report.table(
        "Model faults: silence a waiting caller hears (rule: <= 1.5 s)",
        ["scenario", "dead air s", "apology after hold s", "outcome", "end reason", "line"],
        [[r["scenario"], r["dead_air_s"], r["apology_after_hold_s"], r["outcome"], r["end_reason"],
          r["line"]] for r in rows],
    )  # fmt: skip
    out = report.write("model_faults", {"calls": rows}, quick=False)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
