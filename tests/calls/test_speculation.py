"""Speculative replies over the real audio path: the model is asked as soon as the caller falls
silent, its answer is played only once the turn has ended, and a caller who goes on after a short
pause is not answered early: the speculative response is cancelled and the whole turn answered. The
same holds for a human voice dictating a number in groups after the agent asked for it."""

from __future__ import annotations

from typing import Any

import pytest

from agent.settings import load_settings
from simulator.runner import caller_turns, format_report, simulate
from simulator.scenario import Scenario

GREETING = "Rose City Plumbing, AI assistant. How can I help?"
ANSWER = "Sure, Tuesday works for a drain cleaning."


def _scenario(caller: str, pause_ms: int) -> Scenario:
    return Scenario.model_validate({
        "name": "speculation",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": GREETING}],
        "turns": [
            {"caller": caller, "pause_ms": pause_ms, "model": [{"say": ANSWER}]},
            {"pause_before_ms": 1500, "hangup": True},
        ],
    })  # fmt: skip


def _voiced(report: Any) -> list[dict[str, Any]]:
    return [h for h in report.heard if h["first_voice"] is not None]


async def test_caller_who_goes_on_after_a_short_pause_is_answered_once_at_the_end(
    shared_sim, call_stores
) -> None:
    # 300 ms: long enough for the VAD to report silence (0.15 s), shorter than endpointing (0.45 s)
    scenario = _scenario("I'd like to book ... a drain cleaning on Tuesday", pause_ms=300)
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    key = report.sim_key

    # a reply was requested during the pause, and cancelled when the caller went on
    assert report.speculation["abandoned"] >= 1, report.speculation
    assert report.speculation["reasons"].get("caller resumed", 0) >= 1, report.speculation
    assert shared_sim.client_events("response.cancel", key=key), "the speculative response was never cancelled"

    # the caller heard the greeting and one answer, neither cut short: nothing was played mid-turn
    voiced = _voiced(report)
    assert len(voiced) == 2, report.heard
    assert not any(h["interrupted"] for h in report.heard), report.heard
    agent = [t["text"] for t in report.transcript if t["role"] == "agent"]
    assert agent.count(ANSWER) == 1, report.transcript

    # the whole sentence is one caller turn, before the one answer, in the record (its two parts
    # transcribed as each was committed)
    caller = report.caller_said
    assert "I'd like to book a drain cleaning on Tuesday" in caller, report.transcript
    rows = caller_turns(report.db["transcript_turns"])
    assert "I'd like to book a drain cleaning on Tuesday" in rows, report.db["transcript_turns"]


async def test_speculative_reply_is_adopted_without_a_second_request(shared_sim) -> None:
    scenario = _scenario("Can someone clear a blocked drain on Tuesday?", pause_ms=0)
    report = await simulate(scenario, audio=True, sim=shared_sim)
    assert report.passed, format_report(report)
    assert report.speculation["adopted"] >= 1, report.speculation
    # a dip in the caller's voice can look like a pause (0.15 s) and cost one cancelled request
    assert set(report.speculation["reasons"]) <= {"caller resumed"}, report.speculation
    abandoned = report.speculation["abandoned"]

    off = await simulate(
        scenario, audio=True, sim=shared_sim, settings=load_settings(openai_api_key="sim", speculative_reply=False)
    )
    assert off.passed, format_report(off)
    assert off.speculation == {}
    # the same requests cross the wire with or without speculation, plus one commit and one response
    # for each speculation the caller talked over: the adopted one is not requested a second time
    for event in ("input_audio_buffer.commit", "response.create"):
        on_n = len(shared_sim.client_events(event, key=report.sim_key))
        off_n = len(shared_sim.client_events(event, key=off.sim_key))
        assert on_n == off_n + abandoned, (event, on_n, off_n, report.speculation)
    assert len(_voiced(report)) == len(_voiced(off)) == 2


READBACK = "Thanks, I have five oh three, five five five, oh one eight seven."
DICTATED_NUMBER = Scenario.model_validate({
    "name": "speculation-dictated-number",
    "brain": "brains/plumbing.yaml",
    "clock": "2026-11-24T10:00:00-08:00",
    "greeting": [{"say": GREETING}],
    "turns": [
        {"caller": "I need someone to call me back.",
         "model": [{"say": "Sure. What's the best number to reach you?"}]},
        # a human voice dictating in groups, each pause long enough for a speculative request
        # (0.9 s of silence at the 1.2 s dictation delay: the pacing of addresses and spellings, and of
        # numbers with DICTATION_HOLD_SECONDS off) and shorter than the dictation delay
        {"caller": "five oh three ... five five five ... oh one eight seven", "voice": "recorded",
         "pause_ms": 1000, "model": [{"say": READBACK}]},
        {"pause_before_ms": 1500, "hangup": True},
    ],
})  # fmt: skip


@pytest.mark.usefixtures("recorded_voice")
@pytest.mark.parametrize("speculative", [True, False], ids=["speculative", "not-speculative"])
async def test_caller_dictating_a_number_hears_nothing_until_the_whole_number(
    speculative: bool, shared_sim
) -> None:
    settings = load_settings(openai_api_key="sim", speculative_reply=speculative, dictation_hold_seconds=0)
    report = await simulate(DICTATED_NUMBER, audio=True, sim=shared_sim, settings=settings)
    dictation = report.spoken[-1]

    # no agent audio at the caller's ear from the first group's first digit to the last group's end
    during = [h for h in report.heard if h["started"] < dictation["ended"]
              and (h["ended"] is None or h["ended"] > dictation["started"])]  # fmt: skip
    assert not during, (dictation, report.heard, format_report(report))

    # then one reply, after the whole number, heard to its end
    after = [h for h in _voiced(report) if h["first_voice"] >= dictation["ended"]]
    assert len(after) == 1 and not after[0]["interrupted"], (dictation, report.heard)
    agent = [t["text"] for t in report.transcript if t["role"] == "agent"]
    assert agent[-1] == READBACK and agent.count(READBACK) == 1, report.transcript
    caller = report.caller_said
    assert "five oh three five five five oh one eight seven" in caller, report.transcript
    assert report.passed, format_report(report)
    if speculative:
        # still requested ahead of the decision and adopted at it, for both caller turns
        assert report.speculation["adopted"] == 2, report.speculation


# the conditions: uneven pauses across the range callers use between digit groups, a model that
# takes 600 ms, speculation on; every pause shorter than the 1.2 s dictation delay (a longer one ends
# the turn by that setting, with or without speculation: bench/turn_taking.py measures how often)
UNEVEN = Scenario.model_validate({
    **DICTATED_NUMBER.model_dump(exclude_unset=True),
    "name": "speculation-dictated-number-uneven",
    "model_delay_ms": 600,  # simulate() sets the scenario's delay on the simulator
    "turns": [
        DICTATED_NUMBER.turns[0].model_dump(exclude_unset=True),
        {"caller": "five oh three ... five five five ... oh one ... eight seven", "voice": "recorded",
         "pauses_ms": [500, 1100, 800], "model": [{"say": READBACK}]},
        {"pause_before_ms": 1500, "hangup": True},
    ],
})  # fmt: skip


@pytest.mark.usefixtures("recorded_voice")
async def test_uneven_dictation_with_a_slow_model_is_not_answered_mid_number() -> None:
    from simulator.server import RealtimeSimulator

    async with RealtimeSimulator() as sim:
        report = await simulate(UNEVEN, audio=True, sim=sim)
    dictation = report.spoken[-1]
    during = [h for h in report.heard if h["started"] < dictation["ended"]
              and (h["ended"] is None or h["ended"] > dictation["started"])]  # fmt: skip
    assert not during, (dictation, report.heard, format_report(report))
    after = [h for h in _voiced(report) if h["first_voice"] >= dictation["ended"]]
    assert len(after) == 1 and not after[0]["interrupted"], (dictation, report.heard)
    caller = report.caller_said
    assert "five oh three five five five oh one eight seven" in caller, report.transcript
    assert report.passed, format_report(report)
