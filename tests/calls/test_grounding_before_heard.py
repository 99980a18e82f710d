"""The grounding guard reads the agent's transcript as it streams, ahead of the audio: a false sentence
is cut before the caller hears any of it, the model's copy of the turn is truncated to what was heard,
and the correction is said instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.grounding_playout import claim_and_cut_ms
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


@pytest.mark.parametrize(
    ("scenario_file", "opener"),
    [("guard-short-opener.yaml", "Good question."), ("guard-one-word-opener.yaml", "Sure.")],
    ids=["two-words", "one-word"],
)
async def test_a_false_claim_after_a_short_opener_is_cut_before_any_of_it_plays(
    scenario_file: str, opener: str, call_stores, shared_sim
) -> None:
    """Two words of opener leave the guard half a second of audio: the claim's sentence is judged as
    its words stream, not at its full stop (which comes long after the claim would have played).
    After one word the claim's words are still arriving when it is due to play: its audio waits."""
    scenario = load_scenario(SCENARIOS / scenario_file)
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    # on the simulator's clock: the audio was cut before the claim's first word played
    claim_ms, cut_ms = claim_and_cut_ms(shared_sim, report.sim_key, opener) or (None, None)
    assert claim_ms is not None and cut_ms <= claim_ms, (claim_ms, cut_ms)
    agent_turns = [t for t in report.transcript if t["role"] == "agent"]
    cut = next(t for t in agent_turns if t["text"].startswith(opener.split()[0]))
    assert cut["interrupted"] and "sunday" not in cut["text"].lower(), cut["text"]
    assert [(v["kind"], v["claim"], v["heard"]) for v in report.violations] == [
        ("hours", "We're open on Sundays", False)
    ]
    after = agent_turns[agent_turns.index(cut) + 1]
    assert after["text"].lower().startswith("sorry, correction: we're closed on sundays")
