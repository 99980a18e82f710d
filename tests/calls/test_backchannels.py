"""A backchannel over the agent's long reply, on the real audio path (espeak-ng caller, Silero VAD, the
Realtime simulator): "mhm" said into the reply leaves it whole, heard to its end and kept in the
transcript, with no turn answered, also while the worker's event loop is held up. That a real sentence
said over a reply still cuts it is
tests/calls/test_audio_call.py::test_barge_in_stops_agent_and_truncates_at_what_was_heard."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from livekit.agents import AgentSession

from simulator.runner import CallReport, format_report, simulate
from simulator.scenario import Scenario

GREETING = "Rose City Plumbing, AI assistant. How can I help?"
LONG_REPLY = "We can send a plumber tomorrow between eight and noon. The visit fee is eighty nine dollars."


QUESTION = "My kitchen sink is leaking, can someone come out?"


async def _over_the_reply(sim: Any, sound: str, into_ms: int, *, first: str = QUESTION,
                          answer: str = "Sorry, go ahead.") -> CallReport:  # fmt: skip
    """The caller's `first` words, the agent's long reply, and `sound` said `into_ms` into it; the
    model answers with `answer` if the sound is a turn (unanswered, the line is quiet long enough for
    the agent's check on the caller to take it instead)."""
    return await simulate(Scenario.model_validate({
        "name": f"{sound!r} over the reply",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": GREETING}],
        "turns": [
            {"caller": first, "model": [{"say": LONG_REPLY}]},
            {"caller": sound, "barge_in_ms": into_ms, "model": [{"say": answer}]},
            {"pause_before_ms": 200, "hangup": True},
        ],
    }), audio=True, sim=sim)  # fmt: skip


async def _mhm_over_the_reply(sim: Any) -> CallReport:
    return await _over_the_reply(sim, "mhm", 1500)


def _assert_reply_whole(report: CallReport) -> None:
    over = report.spoken[-1]
    heard = next(h for h in report.heard if h["started"] <= over["started"]
                 and (h["ended"] is None or h["ended"] > over["started"]))  # fmt: skip
    assert not heard["interrupted"], format_report(report)
    replies = [t for t in report.transcript if t["role"] == "agent" and t["text"] == LONG_REPLY]
    assert len(replies) == 1 and not replies[0]["interrupted"], report.transcript
    # "mhm" was no turn: nothing the caller said after their question reached the model
    caller = report.caller_said
    assert caller == [QUESTION], report.transcript


async def test_a_backchannel_over_the_reply_leaves_it_whole(shared_sim) -> None:
    _assert_reply_whole(await _mhm_over_the_reply(shared_sim))


async def test_a_backchannel_on_a_busy_worker_still_leaves_the_reply_whole(
    shared_sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker with many calls, or a garbage collection, holds its event loop up: here for 0.6 s,
    0.25 s after the caller starts their "mhm". The audio that came meanwhile is read late, all at once.
    The "mhm" lasted no longer on the line, so it is still no turn."""
    update = AgentSession._update_user_state
    stalls = []

    def stalling_update(self: AgentSession, state: str, **kw: Any) -> None:
        if state == "speaking" and self.agent_state == "speaking":
            stalls.append(asyncio.get_running_loop().call_later(0.25, time.sleep, 0.6))
        update(self, state, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(AgentSession, "_update_user_state", stalling_update)
    report = await _mhm_over_the_reply(shared_sim)
    assert stalls, "the caller was never heard over the agent's reply"
    _assert_reply_whole(report)


async def test_the_short_end_of_the_callers_sentence_over_the_reply_is_a_turn(shared_sim) -> None:
    """The caller pauses mid-sentence long enough to be answered, and finishes it ("Tuesday", as
    short as an "mhm") 0.7 s into the reply: past the yield window, so the reply is not taken back, but
    early enough that it is their sentence going on, not a backchannel. The agent stops and their words
    reach the model, where a backchannel's are dropped."""
    first = "Can someone come out to fix my water heater"
    report = await _over_the_reply(shared_sim, "Tuesday", 700, first=first,
                                   answer="Tuesday works. We can come between eight and noon.")  # fmt: skip
    # the transcript puts both parts of the sentence in one caller turn, as the model heard them
    assert report.caller_said == [f"{first} Tuesday"], format_report(report)
    assert report.transcript[-1] == {**report.transcript[-1], "role": "agent",
                                     "text": "Tuesday works. We can come between eight and noon."}, report.transcript  # fmt: skip


async def test_a_short_stop_over_the_reply_stops_it_by_its_words(shared_sim) -> None:
    """"Stop" is as short as an "mhm", and said 1.5 s into the reply it is let through like one; its
    transcript then says it was none: the agent stops and the model answers it."""
    report = await _over_the_reply(shared_sim, "stop", 1500)
    rows = [(t["role"], t["text"], t["interrupted"]) for t in report.transcript]
    reply = next(r for r in rows if r[0] == "agent" and r[1] and LONG_REPLY.startswith(r[1]))
    assert reply[2] and reply[1] != LONG_REPLY, format_report(report)  # cut where the caller heard it
    assert ("caller", "stop", False) in rows, rows
    assert rows[-1] == ("agent", "Sorry, go ahead.", False), rows
    answered = [a for a in shared_sim.asked if a.key == report.sim_key and a.said == "Sorry, go ahead."]
    assert len(answered) == 1 and answered[0].items[-1]["text"] == "stop", answered
