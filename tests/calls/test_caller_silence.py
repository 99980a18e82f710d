"""A caller who goes quiet hears "are you still there?" and then has the brain's
`silence_hangup_seconds` to answer it, counted from when they have heard it, not from when the agent
asked the model for it: a long check-in line must not eat the caller's time to answer."""

from __future__ import annotations

from simulator.runner import format_report, simulate
from simulator.scenario import Scenario

CHECK_IN = (
    "Hello? Are you still there? Take your time, I am here whenever you are ready to tell me what you "
    "need, and I can also take a message for the team."
)
ANSWER = "No problem, what can I do for you?"


def _scenario(*then: dict, goodbye: bool = False) -> Scenario:
    quiet = [{"say": CHECK_IN}] + ([{"say": "Goodbye, call back any time."}] if goodbye else [])
    return Scenario.model_validate({
        "name": "caller-silent-then-answers",
        "brain": "brains/plumbing.yaml",
        "brain_overrides": {"calls": {"silence_prompt_seconds": 2, "silence_hangup_seconds": 4}},
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": "Rose City Plumbing, AI assistant. How can I help?"}],
        "turns": [
            # quiet past the prompt; the runner then waits until the check-in has played out
            {"silence_s": 2.5, "model": quiet},
            *then,
        ],
    })  # fmt: skip


async def test_a_caller_who_answers_the_check_in_in_time_is_not_hung_up_on(call_stores, shared_sim) -> None:
    # the check-in takes several seconds to say; the caller answers 2 s after hearing it, within the 4 s
    answer = {"caller": "Sorry, yes, I'm here.", "pause_before_ms": 2000, "model": [{"say": ANSWER}]}
    scenario = _scenario(answer, {"pause_before_ms": 1500, "hangup": True})
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.error is None, format_report(report)
    assert report.end_reason == "caller_hangup" and report.ended_by == "caller", format_report(report)
    agent = [t["text"] for t in report.transcript if t["role"] == "agent"]
    assert CHECK_IN in agent and ANSWER in agent, format_report(report)
    assert not any("Goodbye" in t for t in agent), format_report(report)
    call = report.db["calls"][0] if report.db and report.db.get("calls") else None
    assert call is not None and call["end_reason"] == "caller_hangup", report.db


async def test_a_caller_who_stays_quiet_after_the_check_in_is_said_goodbye_to(call_stores, shared_sim) -> None:
    # the caller says nothing more: the goodbye comes, and the call ends as the caller's silence
    scenario = _scenario({"silence_s": 8}, goodbye=True)
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.error is None, format_report(report)
    assert (report.end_reason, report.ended_by) == ("caller_silent", "agent"), format_report(report)
    agent = [t["text"] for t in report.transcript if t["role"] == "agent"]
    assert agent[-1].startswith("Goodbye"), format_report(report)
