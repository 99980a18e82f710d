"""The grounding guard reads the agent's transcript as it streams, ahead of the audio: a false sentence
is cut before the caller hears any of it, the model's copy of the turn is truncated to what was heard,
and the correction is said instead."""

from __future__ import annotations

from pathlib import Path

from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


async def test_a_false_sentence_is_cut_before_the_caller_hears_it(call_stores, shared_sim) -> None:
    scenario = load_scenario(SCENARIOS / "guard-stopped-before-heard.yaml")
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    agent_turns = [t for t in report.transcript if t["role"] == "agent"]
    cut = next(t for t in agent_turns if t["text"].lower().startswith("thanks for asking"))
    # what the caller heard of the reply: its true start, none of the false sentence
    assert cut["interrupted"], agent_turns
    assert "sunday" not in cut["text"].lower(), cut["text"]
    assert [(v["kind"], v["heard"]) for v in report.violations] == [("hours", False)]
    # the model's conversation holds only what was heard
    truncates = shared_sim.client_events("conversation.item.truncate", key=report.sim_key)
    assert truncates, (
        "the reply was cut locally but the model's copy still holds the false sentence"
    )
    # and the correction came next, whole
    after = agent_turns[agent_turns.index(cut) + 1]
    assert after["text"].lower().startswith("sorry, correction: we're closed on sundays")
    assert not after["interrupted"]
