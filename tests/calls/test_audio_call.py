"""The audio path end to end: espeak-ng caller speech as 16/48 kHz frames into the session, Silero VAD
ending the turn, the plugin committing and asking for a response, the agent's audio coming out, and
barge-in stopping it with a truncate that matches what the caller actually heard."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.mark.parametrize("rate", [16000, 48000])
async def test_caller_turn_is_heard_and_answered(rate: int, call_stores, shared_sim) -> None:
    scenario = load_scenario(SCENARIOS / "hours-saturday.yaml")
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores, caller_rate=rate)
    assert report.passed, format_report(report)
    key = report.sim_key
    commits = shared_sim.client_events("input_audio_buffer.commit", key=key)
    creates = shared_sim.client_events("response.create", key=key)
    assert len(commits) >= 1, "the local VAD never ended the caller's turn"
    assert len(creates) >= 3  # greeting, the turn, the reply after the tool output
    # the caller heard the agent: greeting and answer, both with real voice in them
    voiced = [h for h in report.heard if h["first_voice"] is not None]
    assert len(voiced) >= 2, report.heard
    assert report.timings["response_gap_ms"], "no agent audio after the caller's turn"
    caller_turns = [t for t in report.transcript if t["role"] == "caller"]
    assert caller_turns and "saturday" in caller_turns[0]["text"].lower()


async def test_barge_in_stops_agent_and_truncates_at_what_was_heard(call_stores, shared_sim) -> None:
    scenario = load_scenario(SCENARIOS / "interrupt-agent.yaml")
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    key = report.sim_key
    interrupted = [h for h in report.heard if h["interrupted"]]
    assert interrupted, f"the agent never stopped talking: {report.heard}"
    assert shared_sim.client_events("response.cancel", key=key) or shared_sim.client_events(
        "conversation.item.truncate", key=key
    )
    truncates = shared_sim.client_events("conversation.item.truncate", key=key)
    assert truncates, "no conversation.item.truncate after the interruption"
    played_ms = interrupted[0]["played_ms"]
    assert abs(truncates[0]["audio_end_ms"] - played_ms) <= 100, (truncates[0], played_ms)
    # the long answer is cut well before its end (~20 s of speech)
    assert played_ms < 10_000
    agent_turns = [t for t in report.transcript if t["role"] == "agent"]
    assert any(t["interrupted"] for t in agent_turns), report.transcript
    assert report.timings["barge_in_ms"], "barge-in was not measured"
