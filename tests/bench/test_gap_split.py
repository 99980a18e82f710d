"""A turn's gap split at the simulator's record: the reply the caller heard is the last one whose audio
started before they heard it, asked for by the last request before that audio; a speculative reply
asked for earlier and cancelled does not count, nor another call's events."""

from __future__ import annotations

from typing import Any

from bench.turn_taking import gap_split
from simulator.server import RecordedEvent


def _event(t: float, direction: str, kind: str, key: str = "call", **fields: Any) -> RecordedEvent:
    return RecordedEvent(t, direction, key, 1, kind, {"type": kind, **fields})


END = 100.0  # the caller's last syllable


def test_the_heard_reply_and_its_request_are_found_past_a_cancelled_one() -> None:
    events = [
        _event(99.0, "client", "response.create"),  # speculative, at a pause mid-turn
        _event(99.6, "server", "response.output_audio.delta", response_id="r1"),
        _event(100.2, "client", "response.create"),  # the turn's reply
        _event(100.3, "client", "response.create", key="other"),
        _event(100.8, "server", "response.output_audio.delta", response_id="r2"),
        _event(100.9, "server", "response.output_audio.delta", response_id="r2"),
        _event(100.85, "server", "response.output_audio.delta", key="other", response_id="x"),
    ]
    assert gap_split(events, "call", END, heard=101.05) == {"ask_ms": 200, "model_ms": 600, "out_ms": 250}


def test_no_reply_audio_before_the_caller_heard_one_gives_no_split() -> None:
    events = [_event(100.2, "client", "response.create"),
              _event(101.5, "server", "response.output_audio.delta", response_id="r1")]  # fmt: skip
    assert gap_split(events, "call", END, heard=101.0) is None
