"""The agent's speaking rate, as the transcript synchronizer paces its words by it: ours gives LiveKit's
events, value for value, on the model's voice at its own rate and on a recorded human voice, in frames
of any size, including the last partial window at the end of the audio."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.transcription import _speaking_rate, synchronizer

from agent import speaking_rate
from simulator.recordings import recorded_speech
from simulator.speech import MODEL_SAMPLE_RATE, model_voice, silence


async def _events(detector: object, pcm: bytes, rate: int, frame_ms: int) -> list[tuple[float, bool, float]]:
    stream = detector.stream()  # type: ignore[attr-defined]
    out: list[tuple[float, bool, float]] = []

    async def read() -> None:
        async for ev in stream:
            out.append((ev.timestamp, ev.speaking, ev.speaking_rate))

    reader = asyncio.create_task(read())
    step = rate * frame_ms // 1000 * 2
    for i in range(0, len(pcm), step):
        chunk = pcm[i : i + step]
        stream.push_frame(rtc.AudioFrame(chunk, rate, 1, len(chunk) // 2))
        await asyncio.sleep(0)
    stream.end_input()
    await reader
    return out


def _assert_same(ours: list[tuple[float, bool, float]], theirs: list[tuple[float, bool, float]]) -> None:
    assert len(ours) == len(theirs) and len(theirs) > 5
    assert any(s for _, s, _ in theirs) and not all(s for _, s, _ in theirs)  # speech and pauses both
    for (t1, s1, r1), (t2, s2, r2) in zip(ours, theirs, strict=True):
        assert t1 == pytest.approx(t2, abs=1e-9) and s1 == s2
        assert r1 == pytest.approx(r2, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("frame_ms", [10, 20, 100])
async def test_the_models_voice_gets_livekits_speaking_rate(frame_ms: int) -> None:
    said = await model_voice("Thanks for calling Rose City Plumbing. I'm the AI assistant, how can I help you today?")
    pcm = said + silence(700) + await model_voice("We're open until six on weekdays.")
    ours = await _events(speaking_rate.SpeakingRateDetector(), pcm, MODEL_SAMPLE_RATE, frame_ms)
    theirs = await _events(_speaking_rate.SpeakingRateDetector(), pcm, MODEL_SAMPLE_RATE, frame_ms)
    _assert_same(ours, theirs)


@pytest.mark.usefixtures("recorded_voice")
async def test_a_recorded_human_voice_gets_livekits_speaking_rate() -> None:
    pcm = recorded_speech("five oh three", 16000) + b"\0" * 16000 + recorded_speech("k seven p four m two", 16000)
    ours = await _events(speaking_rate.SpeakingRateDetector(), pcm, 16000, 20)
    theirs = await _events(_speaking_rate.SpeakingRateDetector(), pcm, 16000, 20)
    _assert_same(ours, theirs)


def test_every_session_paces_its_transcript_with_ours() -> None:
    speaking_rate.install()
    assert synchronizer.SpeakingRateDetector is speaking_rate.SpeakingRateDetector
    with pytest.raises(ValueError, match="defaults"):
        speaking_rate.SpeakingRateDetector(window_size=2.0)


async def test_a_quiet_stream_has_no_rate() -> None:
    pcm = (np.random.default_rng(3).standard_normal(MODEL_SAMPLE_RATE * 3) * 20).astype(np.int16).tobytes()
    ours = await _events(speaking_rate.SpeakingRateDetector(), pcm, MODEL_SAMPLE_RATE, 20)
    assert ours and all(r == 0.0 and not s for _, s, r in ours)
