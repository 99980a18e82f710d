"""The gate on an agent message's audio: what it passes on to the playout while the guard is still
reading a sentence, and after the guard has cut one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from livekit import rtc

from agent import playout_gate
from agent.playout_gate import PlayoutGate

RATE = 24000
FRAME_MS = 100


def _frames(count: int) -> list[rtc.AudioFrame]:
    samples = RATE * FRAME_MS // 1000
    # each frame's samples carry its number, so what was passed on can be told apart
    return [rtc.AudioFrame(bytes([n + 1, 0]) * samples, RATE, 1, samples) for n in range(count)]


async def _arriving(frames: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    for frame in frames:
        yield frame


def _ms(frames: list[rtc.AudioFrame]) -> float:
    return sum(f.samples_per_channel * 1000 / f.sample_rate for f in frames)


def _play(gate: PlayoutGate, frames: int) -> tuple[asyncio.Task[None], list[rtc.AudioFrame]]:
    """The playout taking what the gate passes on, as it comes: (its task, what it got so far)."""
    passed: list[rtc.AudioFrame] = []

    async def play() -> None:
        async for frame in gate.pass_on(_arriving(_frames(frames))):
            passed.append(frame)

    return asyncio.create_task(play()), passed


async def test_audio_past_a_cut_is_never_passed_on() -> None:
    gate = PlayoutGate()
    gate.stop_at(250)  # the claim starts mid-frame
    player, passed = _play(gate, 5)
    await asyncio.sleep(0.2)  # the rest of the audio has arrived; the guard's interrupt has not
    assert _ms(passed) == 250
    assert gate.received_ms == 500
    # the tail of the last frame passed is the start of frame 3, none of the claim's
    assert bytes(passed[-1].data.cast("B"))[:2] == bytes([3, 0])
    player.cancel()  # the interrupt
    await asyncio.gather(player, return_exceptions=True)


async def test_a_sentence_still_arriving_is_held_at_its_start_until_its_words_are_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(playout_gate, "HOLD_MAX_S", 60.0)  # the hold ends by its words, not by time
    gate = PlayoutGate()
    gate.hold_at(300)
    player, passed = _play(gate, 6)
    await asyncio.sleep(0.2)
    assert _ms(passed) == 300  # everything before the sentence, nothing of it
    gate.hold_at(None)  # its last word arrived
    await asyncio.wait_for(player, 5)
    assert _ms(passed) == 600  # then all of it, nothing lost


async def test_a_hold_ends_after_hold_max_s_and_a_sentence_is_held_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(playout_gate, "HOLD_MAX_S", 0.05)
    gate = PlayoutGate()
    gate.hold_at(300)
    passed = [f async for f in gate.pass_on(_arriving(_frames(6)))]
    assert _ms(passed) == 600
    assert gate.held_s > 0  # the silence it put into the playout, which later cuts are timed by


async def test_a_cut_while_held_passes_nothing_of_the_held_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(playout_gate, "HOLD_MAX_S", 60.0)
    gate = PlayoutGate()
    gate.hold_at(200)
    player, passed = _play(gate, 6)
    await asyncio.sleep(0.2)
    gate.stop_at(200)  # the guard found the held sentence false
    await asyncio.sleep(0.2)
    assert _ms(passed) == 200
    player.cancel()
    await asyncio.gather(player, return_exceptions=True)
