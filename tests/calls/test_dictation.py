"""A caller dictating a phone number in groups, with 800 ms pauses, after the agent asked for it: the
agent waits for the whole number instead of answering after the first group."""

from __future__ import annotations

from pathlib import Path

from agent.settings import load_settings
from agent.turn_pacing import invites_dictation
from simulator.runner import format_report, simulate
from simulator.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = {
    "name": "dictated-number",
    "brain": "brains/plumbing.yaml",
    "clock": "2026-11-24T10:00:00-08:00",
    "greeting": [{"say": "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"}],
    "turns": [
        {"caller": "I need someone to call me back.",
         "model": [{"say": "Sure. What's the best phone number to reach you?"}]},
        {"caller": "five oh three ... five five five ... oh one eight seven", "pause_ms": 800,
         "model": [{"say": "Thanks, I have five oh three, five five five, oh one eight seven."}]},
        {"pause_before_ms": 1500, "hangup": True},
    ],
}  # fmt: skip


def test_dictation_is_recognised_from_the_agents_question() -> None:
    for asked in ("What's the best phone number to reach you?", "Could you spell your last name?",
                  "And the address for the visit?", "Do you have your confirmation code?"):  # fmt: skip
        assert invites_dictation(asked), asked
    for said in ("Which day suits you?", "Your number is on file.", "How can I help?",
                 "I have five oh three, five five five."):  # fmt: skip
        assert not invites_dictation(said), said


async def test_agent_waits_for_the_whole_dictated_number(shared_sim) -> None:
    scenario = Scenario.model_validate(SCENARIO)
    report = await simulate(scenario, audio=True, sim=shared_sim)
    commits = shared_sim.client_events("input_audio_buffer.commit", key=report.sim_key)
    caller = [t["text"] for t in report.transcript if t["role"] == "caller"]
    assert len(commits) == 2, (commits, report.transcript)
    assert "five oh three five five five oh one eight seven" in caller, format_report(report)


async def test_without_dictation_pacing_the_same_caller_is_cut_off(shared_sim) -> None:
    """The control: at the normal 0.5 s endpointing the 800 ms pauses end the turn early."""
    scenario = Scenario.model_validate(SCENARIO)
    settings = load_settings(openai_api_key="sim", dictation_endpointing_delay=0.5)
    report = await simulate(scenario, audio=True, sim=shared_sim, settings=settings)
    commits = shared_sim.client_events("input_audio_buffer.commit", key=report.sim_key)
    assert len(commits) > 2, (commits, report.transcript)
