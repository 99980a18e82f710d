"""The agent speaks first, and what it asks the model for is the brain's AI-disclosing greeting."""

from __future__ import annotations

from pathlib import Path

from agent.brain import load_brain, render_instructions
from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]


async def test_first_request_to_the_model_is_the_brains_greeting(call_stores, shared_sim) -> None:
    scenario = load_scenario(ROOT / "tests" / "scenarios" / "hours-saturday.yaml")
    report = await simulate(scenario, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    brain = load_brain(ROOT / "brains" / "plumbing.yaml")
    creates = shared_sim.client_events("response.create", key=report.sim_key)
    first = creates[0]["response"]["instructions"]
    assert brain.greeting_text() in first
    assert "AI" in brain.greeting_text().split(".")[0]
    # the system prompt went out once, up front, and holds no clock (it stays cacheable)
    updates = [e for e in shared_sim.client_events("session.update", key=report.sim_key)
               if "instructions" in e.get("session", {})]  # fmt: skip
    assert updates and updates[0]["session"]["instructions"] == render_instructions(brain)
    assert "2026-11-24" not in updates[0]["session"]["instructions"]  # the pinned "today"
    assert report.transcript[0]["role"] == "agent"
