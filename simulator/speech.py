"""Audio for simulated calls: the model's voice (24 kHz PCM16) and the caller's speech for tests.

Speech comes from espeak-ng resampled by sox; a syllable-shaped tone stands in when they are missing.
"""

from __future__ import annotations

import asyncio
import functools
import math
import shutil
import subprocess
from array import array
from typing import Literal

VoiceMode = Literal["speech", "tone"]

VOICE_RMS = 300.0  # above this a 20 ms PCM16 frame counts as voice, not silence
MODEL_SAMPLE_RATE = 24000  # what the Realtime protocol carries, both directions
MODEL_VOICE = "en-us"
CALLER_VOICE = "en-gb"  # a different voice, so recordings tell the two sides apart

_TONE_HZ = 440.0
_SECONDS_PER_CHAR = 0.06  # roughly 15 characters a second, like unhurried speech
_SYLLABLE_S = 0.2


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def silence(ms: int, rate: int = MODEL_SAMPLE_RATE) -> bytes:
    """`ms` milliseconds of PCM16 mono silence."""
    return bytes(2 * (rate * ms // 1000))


def duration_ms(pcm: bytes, rate: int = MODEL_SAMPLE_RATE) -> int:
    return (len(pcm) // 2) * 1000 // rate


def tone(text: str, rate: int = MODEL_SAMPLE_RATE) -> bytes:
    """A 440 Hz tone pulsed like syllables, as long as the text would take to say."""
    seconds = max(0.3, len(text) * _SECONDS_PER_CHAR)
    n = int(seconds * rate)
    syllable = int(_SYLLABLE_S * rate)
    samples = array("h")
    for i in range(n):
        phase = (i % syllable) / syllable
        envelope = math.sin(math.pi * phase) ** 2  # silent edges between syllables
        samples.append(int(0.3 * 32767 * envelope * math.sin(2 * math.pi * _TONE_HZ * i / rate)))
    return samples.tobytes()


@functools.lru_cache(maxsize=512)
def _espeak(text: str, rate: int, voice: str) -> bytes:
    # text goes in on stdin so a line starting with "-" is never taken for an option
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout"],
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return subprocess.run(
        [
            "sox",
            "-q",
            "-R",
            "-t",
            "wav",
            "-",
            "-t",
            "raw",
            "-r",
            str(rate),
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-c",
            "1",
            "-L",
            "-",
        ],
        input=wav,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout


@functools.lru_cache(maxsize=512)
def _tone_cached(text: str, rate: int) -> bytes:
    return tone(text, rate)


def render_speech(
    text: str,
    sample_rate: int = MODEL_SAMPLE_RATE,
    *,
    voice: str = CALLER_VOICE,
    mode: VoiceMode = "speech",
) -> bytes:
    """Text as PCM16 mono at `sample_rate` (blocking; cached). Falls back to a tone without espeak-ng."""
    if mode == "speech" and espeak_available() and text.strip():
        return _espeak(text, sample_rate, voice)
    return _tone_cached(text, sample_rate)


async def model_voice(text: str, mode: VoiceMode = "speech", voice: str = MODEL_VOICE) -> bytes:
    """The simulated model's reply audio at 24 kHz, rendered off the event loop."""
    return await asyncio.to_thread(render_speech, text, MODEL_SAMPLE_RATE, voice=voice, mode=mode)


def rms(pcm: bytes) -> float:
    """The level of a stretch of PCM16 audio (compare with VOICE_RMS)."""
    import numpy as np

    a = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def voiced_only(pcm: bytes, rate: int, threshold_rms: float = VOICE_RMS) -> bytes:
    """The voiced stretch of an utterance: espeak pads ~20 ms before and ~300 ms after, which would
    lengthen every pause between phrases and count as caller speech in timings."""
    import numpy as np  # numpy comes with livekit; imported here to keep speech light to import

    a = np.frombuffer(pcm, dtype=np.int16)
    frame = rate // 50  # 20 ms
    n = len(a) // frame * frame
    frames = a[:n].astype(np.float32).reshape(-1, frame)
    voiced = np.nonzero(np.sqrt((frames * frames).mean(axis=1)) > threshold_rms)[0]
    if voiced.size == 0:
        return pcm
    return a[voiced[0] * frame : (voiced[-1] + 1) * frame].tobytes()
