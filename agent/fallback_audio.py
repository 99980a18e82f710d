"""What callers hear when the model is down, as audio: each brain's `calls.model_down` lines rendered
with espeak-ng at worker start (in the brain's voice) and cached as WAV files under
FALLBACK_AUDIO_DIR, so nothing on the model-free path needs the network. agent/fallback.py plays them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import wave
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from livekit import rtc

from agent.brain.schema.brain import Brain
from agent.brain.schema.calls import ModelDown

MODEL_RATE = 24000  # the Realtime model's audio rate

Line = Literal["hold", "transfer", "message", "goodbye", "busy"]
LINES: tuple[Line, ...] = ("hold", "transfer", "message", "goodbye", "busy")
FRAME_MS = 20


@dataclass(frozen=True)
class FallbackAudio:
    """One brain's model-down lines as PCM16 mono, ready to play without the model."""

    lines: dict[str, str]  # line -> its words (for the transcript)
    pcm: dict[str, bytes]
    rate: int

    def frames(self, line: Line) -> AsyncIterator[rtc.AudioFrame]:
        return pcm_frames(self.pcm[line], self.rate)


def frames_of(pcm: bytes, rate: int) -> Iterator[rtc.AudioFrame]:
    """PCM16 mono as 20 ms frames, the last padded with silence."""
    samples = rate * FRAME_MS // 1000
    step = samples * 2
    for i in range(0, len(pcm), step):
        chunk = pcm[i : i + step]
        chunk += bytes(step - len(chunk))
        yield rtc.AudioFrame(chunk, rate, 1, samples)


async def pcm_frames(pcm: bytes, rate: int) -> AsyncIterator[rtc.AudioFrame]:
    """`frames_of` as audio `session.say` can play."""
    for frame in frames_of(pcm, rate):
        yield frame


def write_wav(into: str | BinaryIO, pcm: bytes, rate: int) -> None:
    """PCM16 mono as a WAV file, at a path or into an open binary file."""
    with wave.open(into, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def _line_texts(down: ModelDown) -> dict[str, str]:
    return {
        "hold": down.hold_line,
        "transfer": down.transfer_line,
        "message": down.message_line,
        "goodbye": down.goodbye_line,
        "busy": down.busy_line,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "brain"


def render_fallback_audio(
    down: ModelDown, directory: Path, *, name: str = "default"
) -> FallbackAudio:
    """A brain's model-down lines, rendered with espeak-ng once and cached by voice and words.

    Raises RuntimeError when espeak-ng is missing or refuses the voice: at worker start, where it
    belongs, never on a call."""
    texts = _line_texts(down)
    directory.mkdir(parents=True, exist_ok=True)
    pcm: dict[str, bytes] = {}
    for line, text in texts.items():
        digest = hashlib.sha256(f"{down.voice}\n{text}".encode()).hexdigest()[:12]
        path = directory / f"{_slug(name)}-{line}-{digest}.wav"
        if not path.exists():
            _espeak_to_wav(text, down.voice, path)
        with wave.open(str(path), "rb") as w:
            pcm[line] = _to_model_rate(w.readframes(w.getnframes()), w.getframerate())
    return FallbackAudio(lines=texts, pcm=pcm, rate=MODEL_RATE)


def _in_the_models_voice(rendered: FallbackAudio, voiced: Callable[[str], bytes | None]) -> FallbackAudio:
    """The lines in the model's voice when all of them are kept, else as rendered. Runs as a call
    starts, until they are: the first line without the model's audio ends the look (no more files read)."""
    found: dict[str, bytes] = {}
    for line, text in rendered.lines.items():
        pcm = voiced(text)
        if pcm is None:
            return rendered
        found[line] = pcm
    return FallbackAudio(lines=rendered.lines, pcm=found, rate=MODEL_RATE)


def _to_model_rate(pcm: bytes, rate: int) -> bytes:
    """espeak-ng speaks at 22,050 Hz; the hold line joins the model's 24 kHz audio stream."""
    if rate == MODEL_RATE:
        return pcm
    resampler = rtc.AudioResampler(rate, MODEL_RATE, num_channels=1)
    out = bytearray()
    for frame in resampler.push(rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2)):
        out.extend(bytes(frame.data))
    for frame in resampler.flush():
        out.extend(bytes(frame.data))
    return bytes(out)


def _espeak_to_wav(text: str, voice: str, path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError(
            "espeak-ng is not installed; it renders what callers hear when the model is down"
        )
    # a name of its own: job processes (or console's job threads) may render the same line at once
    partial = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.partial")
    # words on stdin, so a line starting with "-" is never an option
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-w", str(partial)],
        input=text.encode(),
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0 or not partial.exists():
        raise RuntimeError(
            f"espeak-ng could not render with voice {voice!r}: {done.stderr.decode().strip()}"
        )
    partial.replace(path)  # whole files only: another worker may be reading the cache


class FallbackLibrary:
    """Every brain's rendered lines, found by the brain's `calls.model_down`; the default lines too,
    for the generic brain that answers numbers no brain claims.

    `voiced`: the model's own audio of a line (PCM16 mono at 24 kHz) when one is kept
    (agent/voiced_lines.py). A brain's lines are the model's when all of them are, so a call never
    switches voice between them; else espeak-ng's. Looked for again at each call until found: the
    worker has the model read them after this process may have started."""

    def __init__(
        self, brains: Iterable[Brain], directory: Path, voiced: Callable[[str], bytes | None] | None = None
    ) -> None:
        self._by_lines: dict[str, FallbackAudio] = {}
        self._voiced = voiced
        self._in_models_voice: set[str] = set()
        self._default = ModelDown().model_dump_json()
        self._by_lines[self._default] = render_fallback_audio(ModelDown(), directory)
        for brain in brains:
            key = brain.calls.model_down.model_dump_json()
            if key not in self._by_lines:
                self._by_lines[key] = render_fallback_audio(
                    brain.calls.model_down, directory, name=brain.business.name
                )

    def for_brain(self, brain: Brain) -> FallbackAudio:
        key = brain.calls.model_down.model_dump_json()
        if key not in self._by_lines:
            key = self._default
        if self._voiced is not None and key not in self._in_models_voice:
            voiced = _in_the_models_voice(self._by_lines[key], self._voiced)
            if voiced is not self._by_lines[key]:
                self._by_lines[key] = voiced
                self._in_models_voice.add(key)
        return self._by_lines[key]
