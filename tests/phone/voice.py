"""Caller speech for phone tests: text spoken by espeak-ng, or a WAV file, as 8 kHz 16-bit mono PCM.

sox does the resampling; results are cached per text so a suite speaks each line once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.phone.rtp import SAMPLE_RATE

_CACHE = Path(tempfile.gettempdir()) / "receptionist-phone-voice"


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed (apt-get install {package})")
    return path


def wav_to_pcm(path: Path) -> bytes:
    """Any WAV sox can read -> raw 8 kHz signed 16-bit little-endian mono."""
    sox = _require("sox", "sox")
    result = subprocess.run(
        [
            sox,
            "-q",
            "-R",
            str(path),
            "-t",
            "raw",
            "-r",
            str(SAMPLE_RATE),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-L",
            "-",
        ],
        check=True,
        capture_output=True,
    )
    return result.stdout


def speak(text: str, *, voice: str = "en-us", words_per_minute: int = 160) -> bytes:
    """The caller saying `text`, as 8 kHz PCM."""
    key = hashlib.sha256(f"{voice}|{words_per_minute}|{text}".encode()).hexdigest()[:24]
    cached = _CACHE / f"{key}.pcm"
    if cached.exists():
        return cached.read_bytes()
    espeak = _require("espeak-ng", "espeak-ng")
    _CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        pcm = wav_to_pcm(wav)
    # Write then rename so parallel test processes never read half a file.
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(pcm)
    partial.replace(cached)
    return pcm
