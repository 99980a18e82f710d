"""Recording with consent, on audio calls through the simulated line: the file holds the caller and the
agent on their own channels for the length of the call, and a caller who objects leaves no recording
behind, with the call's report saying so."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.brain import load_brain
from agent.settings import Settings, load_settings
from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario
from tests.fixtures.recording_audio import channels, turns

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios" / "recording"


def recording_settings(directory: Path) -> Settings:
    return load_settings(openai_api_key="simulator", recordings_dir=directory)


async def test_recorded_call_holds_both_voices_for_the_length_of_the_call(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    scenario = load_scenario(SCENARIOS / "recorded-call.yaml")
    report = await simulate(
        scenario, audio=True, settings=recording_settings(tmp_path), sim=shared_sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    # the greeting the model was asked for carries the consent line, after the AI disclosure
    brain = load_brain(ROOT / "brains" / "plumbing.yaml")
    greeting = shared_sim.client_events("response.create", key=report.sim_key)[0]["response"]["instructions"]
    assert f"AI assistant. {brain.recording.consent_line}" in greeting

    row = report.db["calls"][0]
    path = Path(row["recording_path"])
    assert path.parent == tmp_path, row
    caller, agent, rate = channels(path)  # FileNotFoundError: the row links a file that is not there
    # the row states the file's length, and the file runs from the answer to the hang-up
    assert abs(row["recording_seconds"] - len(caller) / rate) < 0.05, row["recording_seconds"]
    call_s = (row["ended_at"] - row["answered_at"]).total_seconds()
    assert abs(row["recording_seconds"] - call_s) < 0.5, (row["recording_seconds"], call_s)
    # both voices, each on its own channel, turn by turn as the call went: greeting, question,
    # answer, goodbye (nothing of the agent leaks onto the caller's channel, or back)
    spoken = [(start, "caller") for start, _ in turns(caller, rate)]
    spoken += [(start, "agent") for start, _ in turns(agent, rate)]
    assert [who for _, who in sorted(spoken)] == ["agent", "caller", "agent", "caller"], sorted(spoken)
    assert report.call_report["recording"] == {"consented": True, "stopped_at_s": None}


async def test_caller_who_objects_is_not_recorded_and_the_report_says_so(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    scenario = load_scenario(SCENARIOS / "recording-declined.yaml")
    report = await simulate(
        scenario, audio=True, settings=recording_settings(tmp_path), sim=shared_sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    # the model had the tool and was told when to use it
    tools = shared_sim.client_events("session.update", key=report.sim_key)
    offered = {t["name"] for e in tools for t in e.get("session", {}).get("tools", [])}
    assert "stop_recording" in offered
    instructions = next(e["session"]["instructions"] for e in tools if "instructions" in e.get("session", {}))
    assert "call stop_recording at once" in instructions
    # nothing of the call is kept: no file, no link on the row; the call itself went on
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
    row = report.db["calls"][0]
    assert row["recording_path"] is None and row["recording_seconds"] is None
    assert row["outcome"] == "answered"
    recording = report.call_report["recording"]
    assert recording["consented"] is False
    assert 0 < recording["stopped_at_s"] < report.call_report["timing"]["duration_s"], report.call_report
