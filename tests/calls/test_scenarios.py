"""Every shipped call scenario, run through the real AgentSession and OpenAI plugin against the
simulator, graded on what the agent said, the tools it ran and the rows it left in Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario, scenario_files

SCENARIOS = scenario_files(Path(__file__).resolve().parents[1] / "scenarios")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
async def test_scenario_text(path: Path, call_stores, shared_sim) -> None:
    scenario = load_scenario(path)
    report = await simulate(scenario, audio=False, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    # every call row is finalised, whatever ended it
    calls = report.db["calls"]
    assert len(calls) == 1 and calls[0]["ended_at"] is not None and calls[0]["outcome"], calls
    # and it explains itself: a report stored with the row, agreeing with it
    stored = calls[0]["summary"]
    assert stored["version"] == 1 and stored["outcome"] == calls[0]["outcome"], stored
    assert stored["end_reason"] == calls[0]["end_reason"] and stored["turns"]["agent"] >= 1, stored
    # the transcript in Postgres is the transcript the caller lived through, in order
    turns = [(t["role"], t["text"]) for t in report.db["transcript_turns"]]
    assert turns == [(t["role"], t["text"]) for t in report.transcript]
    tool_rows = [(t["name"], t["error"] is not None) for t in report.db["tool_calls"]]
    assert tool_rows == [(c["name"], c["error"] is not None) for c in report.tool_calls]
