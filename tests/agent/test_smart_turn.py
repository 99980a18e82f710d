"""Smart Turn v3.2 as a LiveKit turn detector (agent/smart_turn.py), on a recorded human voice: a whole
sentence reads as a finished turn and the same sentence stopped part way as an unfinished one, through
the stream the session feeds (48 kHz frames resampled to the model's 16 kHz, a prediction asked for at a
pause); a turn boundary forgets the audio before it; how long the pause has lasted past 0.2 s does not
change the judgement."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc

from agent.livekit_internals import missing
from agent.smart_turn import MODEL, THRESHOLD, SmartTurnDetector, SmartTurnModel, log_mel

SENTENCE = "sorry-youre-having-problems.wav"  # "I'm sorry you are having problems."


def _pcm(recorded_voice: Path, name: str, rate: int) -> np.ndarray:
    raw = subprocess.run(
        ["sox", "-R", str(recorded_voice / name), "-t", "raw", "-r", str(rate), "-e", "signed-integer", "-b", "16",
         "-c", "1", "-"], capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.int16)


async def _probability(detector: SmartTurnDetector, *clips: np.ndarray, flush_after_first: bool = False) -> float:
    """Push clips (48 kHz) and 500 ms of silence as 10 ms frames, then ask, as the session does at a pause."""
    stream = detector.stream()
    try:
        for i, clip in enumerate(clips):
            pcm = np.concatenate([clip, np.zeros(48000 // 2, dtype=np.int16)])
            for at in range(0, len(pcm), 480):
                chunk = pcm[at : at + 480]
                stream.push_audio(rtc.AudioFrame(chunk.tobytes(), 48000, 1, len(chunk)))
                await asyncio.sleep(0)  # the stream hands each frame on as a live call's would be
            if flush_after_first and i == 0:
                stream.flush()
        await asyncio.sleep(0.05)
        event = await stream.predict()
        return event.end_of_turn_probability
    finally:
        await stream.aclose()


@pytest.fixture(scope="module")
def detector() -> SmartTurnDetector:
    return SmartTurnDetector(model=SmartTurnModel.load())


def test_the_features_are_whispers_shape_and_scale() -> None:
    rng = np.random.default_rng(1)
    mel = log_mel(rng.standard_normal(16000 * 8).astype(np.float32))
    assert mel.shape == (80, 800) and mel.dtype == np.float32
    # clamped to 8 (log10) below the loudest, then (x + 4) / 4: a span of at most 2
    assert mel.max() - mel.min() <= 2.0 + 1e-6


async def test_a_whole_sentence_is_a_finished_turn_and_half_of_it_is_not(
    recorded_voice: Path, detector: SmartTurnDetector
) -> None:
    whole = _pcm(recorded_voice, SENTENCE, 48000)
    assert await _probability(detector, whole) > THRESHOLD
    assert await _probability(detector, whole[: int(len(whole) * 0.5)]) < THRESHOLD
    assert detector.model == MODEL and await detector.stream().supports_language(None)


async def test_a_turn_boundary_forgets_the_audio_before_it(recorded_voice: Path, detector: SmartTurnDetector) -> None:
    """A finished sentence, a turn boundary, then the start of another: only the unfinished one is judged."""
    whole = _pcm(recorded_voice, SENTENCE, 48000)
    half = whole[: int(len(whole) * 0.5)]
    assert await _probability(detector, whole, half, flush_after_first=True) < THRESHOLD


def test_a_longer_pause_does_not_change_the_judgement(recorded_voice: Path) -> None:
    model = SmartTurnModel.load()
    half = _pcm(recorded_voice, SENTENCE, 16000)
    half = half[: len(half) // 2].astype(np.float32) / 32768
    after = [model.probability(np.concatenate([half, np.zeros(int(16000 * s), dtype=np.float32)])) for s in (0.25, 0.5, 1.5)]
    assert max(after) < THRESHOLD and max(after) - min(after) < 1e-6, after


def test_livekit_still_has_what_the_detector_plugs_into() -> None:
    assert not [name for name in missing() if "TurnDetector" in name]
