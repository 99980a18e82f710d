"""Yield on resume over the real audio path, with a recorded human voice dictating a number: the caller
pauses long enough to end their turn, the agent starts its reply, and the caller goes on. Inside the
yield window the agent stops while the caller is still speaking, the model's copy of the reply is
deleted, and the one reply the caller hears was asked for with their whole number committed. Outside
the window the usual barge-in rules stay."""

from __future__ import annotations

from typing import Any

import pytest

from agent.settings import load_settings
from simulator.runner import CallReport, caller_turns, format_report, simulate
from simulator.scenario import Scenario
from simulator.server import ResponseAsked

GREETING = "Rose City Plumbing, AI assistant. How can I help?"
QUESTION = "Sure. What's the best number to reach you?"
# the reply to the first groups alone, long enough to be talked into at any point of the tests
EARLY_REPLY = "Thanks, I have five oh three, five five five. And the last four digits, please?"
READBACK = "Thanks, I have five oh three, five five five, oh one eight seven."


def _scenario(resumed: str, barge_in_ms: int) -> Scenario:
    return Scenario.model_validate({
        "name": "yield-on-resume",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": GREETING}],
        "turns": [
            {"caller": "I need someone to call me back.", "model": [{"say": QUESTION}]},
            # a pause past the dictation delay ends the turn after "five five five"
            {"caller": "five oh three ... five five five", "voice": "recorded", "pause_ms": 500,
             "model": [{"say": EARLY_REPLY}]},
            # ... and the caller goes on this far into the agent's reply
            {"caller": resumed, "voice": "recorded", "barge_in_ms": barge_in_ms,
             "model": [{"say": READBACK}]},
            {"pause_before_ms": 1500, "hangup": True},
        ],
    })  # fmt: skip


def _cut_reply(report: CallReport) -> dict[str, Any]:
    """The agent's audio the caller resumed into."""
    resumed = report.spoken[-1]
    return next(h for h in report.heard if h["started"] <= resumed["started"]
                and (h["ended"] is None or h["ended"] > resumed["started"]))  # fmt: skip


def _final_request(report: CallReport, sim: Any) -> ResponseAsked:
    answers = [a for a in sim.asked if a.key == report.sim_key and a.said == READBACK]
    assert len(answers) == 1, ([(a.number, a.said, a.status) for a in sim.asked if a.key == report.sim_key],
                               format_report(report))  # fmt: skip
    return answers[0]


def _after_question(asked: ResponseAsked) -> list[dict[str, Any]]:
    """The conversation the final reply was asked with, from the agent's question on."""
    start = next(i for i, item in enumerate(asked.items) if QUESTION in item["text"])
    return asked.items[start + 1 :]


def _assert_whole_turn_answered_once(report: CallReport, sim: Any) -> None:
    asked = _final_request(report, sim)
    turn = _after_question(asked)
    # nothing of the agent's between the question and the answer: the cut reply left the model's
    # conversation, and both parts of the number were committed before the answer was asked for
    assert [item["role"] for item in turn] and all(item["role"] == "user" for item in turn), turn
    first, resumed = report.spoken[-2], report.spoken[-1]
    spoken_ms = (first["ended"] - first["started"] + resumed["ended"] - resumed["started"]) * 1000
    assert sum(item["audio_ms"] for item in turn) >= spoken_ms, (turn, spoken_ms)
    # the caller heard that one answer once, after the whole number, to its end
    after = [h for h in report.heard if h["first_voice"] is not None and h["first_voice"] >= resumed["ended"]]
    assert len(after) == 1 and not after[0]["interrupted"], (resumed, report.heard)
    agent = [t["text"] for t in report.transcript if t["role"] == "agent"]
    assert agent[-1] == READBACK and agent.count(READBACK) == 1, report.transcript


@pytest.mark.usefixtures("recorded_voice")
async def test_caller_who_goes_on_as_the_reply_starts_gets_one_answer_to_the_whole_number(
    shared_sim, call_stores
) -> None:
    report = await simulate(_scenario("oh one eight seven", barge_in_ms=100), audio=True, sim=shared_sim,
                            stores=call_stores)  # fmt: skip
    cut, resumed = _cut_reply(report), report.spoken[-1]
    assert cut["interrupted"] and cut["stops"][0] < resumed["ended"], (cut, resumed, format_report(report))
    _assert_whole_turn_answered_once(report, shared_sim)
    # the call's record ends with the answer, after the whole number in the caller's words (the cut
    # reply left no row between its parts)
    rows = report.db["transcript_turns"]
    assert rows[-1]["role"] == "agent" and rows[-1]["text"] == READBACK, rows
    assert caller_turns(rows)[-1] == "five oh three five five five oh one eight seven", rows
    assert report.passed, format_report(report)


@pytest.mark.usefixtures("recorded_voice")
async def test_one_short_word_as_the_reply_starts_stops_it_even_below_the_interruption_duration(
    shared_sim,
) -> None:
    # a brain that lets the agent talk over anything shorter than a second: "oh" (0.5 s) would not
    # interrupt it, but said as the reply starts it is the caller's turn going on
    settings = load_settings(openai_api_key="sim", min_interruption_duration=1.0)
    report = await simulate(_scenario("oh", barge_in_ms=100), audio=True, sim=shared_sim, settings=settings)
    cut, resumed = _cut_reply(report), report.spoken[-1]
    # the agent fell silent while the caller was still saying the word
    assert cut["interrupted"] and cut["stops"][0] < resumed["ended"], (cut, resumed, format_report(report))
    _assert_whole_turn_answered_once(report, shared_sim)
    assert report.passed, format_report(report)


@pytest.mark.usefixtures("recorded_voice")
async def test_outside_the_window_the_usual_barge_in_rules_stay(shared_sim) -> None:
    # the same short word 1.5 s into the reply: shorter than the interruption duration, so the agent
    # talks on until the caller's turn ends, and what the caller heard of it stays in the conversation
    # (with the backchannel rule off: a lone "oh" over the reply would otherwise be a backchannel)
    settings = load_settings(openai_api_key="sim", min_interruption_duration=1.0, backchannel_seconds=0)
    report = await simulate(_scenario("oh", barge_in_ms=1500), audio=True, sim=shared_sim, settings=settings)
    cut, resumed = _cut_reply(report), report.spoken[-1]
    assert cut["stops"][0] > resumed["ended"], (cut, resumed, format_report(report))
    kept = [item for item in _after_question(_final_request(report, shared_sim)) if item["role"] == "assistant"]
    assert len(kept) == 1 and kept[0]["audio_ms"] > 0, format_report(report)
