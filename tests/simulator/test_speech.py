"""Rendered voices: the simulator's replies and the caller's words for tests."""

from __future__ import annotations

import shutil

import pytest

from simulator.speech import duration_ms, model_voice, render_speech, silence, tone


def test_silence_and_tone_are_pcm16_of_the_right_length() -> None:
    assert silence(250, 16000) == bytes(2 * 4000)
    assert duration_ms(silence(100)) == 100
    short, long = tone("hi", 24000), tone("a much longer sentence to say", 24000)
    assert len(short) % 2 == 0 and len(long) > len(short)
    assert any(short)


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_caller_speech_renders_at_any_rate(rate: int) -> None:
    pcm = render_speech("I would like to book a cleaning", rate)
    seconds = len(pcm) / 2 / rate
    assert len(pcm) % 2 == 0
    expected_speech = shutil.which("espeak-ng") is not None
    assert 1.0 < seconds < 4.0 if expected_speech else seconds > 0.3


async def test_model_voice_is_24khz_and_cached() -> None:
    first = await model_voice("Thanks for calling.")
    assert first == await model_voice("Thanks for calling.")
    assert 0.5 < len(first) / 2 / 24000 < 3.0
    assert await model_voice("Thanks for calling.", mode="tone") == tone(
        "Thanks for calling.", 24000
    )
