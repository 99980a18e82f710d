"""The noisy line under the turn benches (bench/turn_taking.py --noise): the caller's microphone carries
the line's noise under their speech and under the silences between, without end, and the noise sits
its SNR below the corpus's speech, measured after the phone channel."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bench.audio import CALLER_RATE
from bench.turn_taking import NOISE_BEDS, noise_bed
from simulator.line import CallerMicrophone

FRAME = CALLER_RATE // 50


def _rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))


async def test_the_background_is_under_speech_and_silence_and_loops() -> None:
    bed = (np.arange(3 * FRAME) % 7 * 10).astype(np.int16).tobytes()  # three frames, then again
    mic = CallerMicrophone(sample_rate=CALLER_RATE, background=bed)
    word = np.full(FRAME, 1000, dtype=np.int16).tobytes()
    said = mic.say(word)
    frames = [bytes((await mic.__anext__()).data) for _ in range(4)]
    await asyncio.wait_for(said, 1)
    got = [np.frombuffer(f, dtype=np.int16) for f in frames]
    noise = np.frombuffer(bed, dtype=np.int16).reshape(3, FRAME)
    assert np.array_equal(got[0], 1000 + noise[0])  # the caller's word, the line's noise under it
    assert np.array_equal(got[1], noise[1]) and np.array_equal(got[2], noise[2])  # silence is not silent
    assert np.array_equal(got[3], noise[0])  # and the noise goes on from its start
    mic.close()


async def test_a_quiet_line_stays_digitally_silent() -> None:
    mic = CallerMicrophone(sample_rate=CALLER_RATE)
    assert not any(np.frombuffer((await mic.__anext__()).data, dtype=np.int16))
    mic.close()


@pytest.mark.parametrize("name", list(NOISE_BEDS))
def test_each_noise_sits_its_snr_below_the_speech(name: str) -> None:
    speech_rms = 3000.0
    bed = noise_bed(name, speech_rms)
    assert len(bed) // 2 >= 59 * CALLER_RATE
    # its level is set after the phone channel, which takes most of a car's rumble
    assert 20 * np.log10(speech_rms / _rms(bed)) == pytest.approx(NOISE_BEDS[name][1], abs=0.1)
