"""Recorded human speech for simulated callers: Asterisk's core sounds (one professional voice, the
Debian package asterisk-core-sounds-en-wav, CC-BY-SA-3.0), fetched once into a cache outside the
repository and spliced word by word into what a caller dictates ("five oh three", "b seven k").

A synthetic voice's prosody is not a caller's; these are real recordings of the words callers pause
between when they give a number, a code or a spelling.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "asterisk-core-sounds-en-wav"
VOICE_DIR = Path("usr/share/asterisk/sounds/en_US_f_Allison")  # inside the package
RECORDED_RATE = 8000

_DIGIT_WORDS = {
    "zero": "0", "oh": "oh", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
# the other words a caller dictates with: house numbers ("four hundred twelve"), emails ("at", "dot")
_NUMBER_WORDS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
    "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30",
    "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "hundred", "thousand": "thousand",
}  # fmt: skip
_SYMBOL_WORDS = {"at": "at", "dot": "dot", "dash": "dash"}
# words a caller leads into a number with ("number is ...")
_LEAD_IN_WORDS = {"number": "number", "is": "is", "your": "your"}
# the recordings start and end in digital silence; anything above this is the voice, fricatives included
_SILENCE_RMS = 30.0


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "receptionist"


def _apt_download(into: str) -> None:
    """`apt-get download`, refreshing the package lists once when a fresh machine has none."""
    download = ["apt-get", "download", PACKAGE]
    try:
        subprocess.run(download, cwd=into, check=True, capture_output=True, timeout=300)
    except subprocess.CalledProcessError:
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600)
        subprocess.run(download, cwd=into, check=True, capture_output=True, timeout=300)


def asterisk_sounds() -> Path:
    """The English voice's directory (digits/, letters/, ...), downloaded and extracted on first use.

    `apt-get download` fetches the package without installing it and `dpkg -x` unpacks it into
    ~/.cache/receptionist/asterisk-sounds-<version>; later calls (and other processes) reuse it.
    """
    root = cache_root()
    found = sorted(root.glob("asterisk-sounds-*/" + str(VOICE_DIR)))
    if found:
        return found[-1]
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetching-", dir=root) as tmp:
        try:
            _apt_download(tmp)
        except (OSError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", b"") or b""
            raise RuntimeError(
                f"cannot fetch the recorded caller voice: `apt-get download {PACKAGE}` failed "
                f"(run `apt-get update` first on a fresh machine): {detail.decode(errors='replace').strip() or e}"
            ) from e
        deb = next(Path(tmp).glob("*.deb"))
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        unpacked = Path(tmp) / "unpacked"
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True, timeout=300)
        final = root / f"asterisk-sounds-{version}"
        try:
            # a rename is atomic: a concurrent test process either wins or finds the directory there
            unpacked.rename(final)
        except OSError:
            if not (final / VOICE_DIR).is_dir():
                raise
    return final / VOICE_DIR


def _recording(word: str) -> Path:
    w = word.lower()
    if w in _DIGIT_WORDS:
        return asterisk_sounds() / "digits" / f"{_DIGIT_WORDS[w]}.wav"
    if w in _NUMBER_WORDS:
        return asterisk_sounds() / "digits" / f"{_NUMBER_WORDS[w]}.wav"
    if w in _SYMBOL_WORDS:
        return asterisk_sounds() / "letters" / f"{_SYMBOL_WORDS[w]}.wav"
    if w in _LEAD_IN_WORDS:
        return asterisk_sounds() / f"{_LEAD_IN_WORDS[w]}.wav"
    if len(w) == 1 and (w.isalpha() or w.isdigit()):
        folder = "letters" if w.isalpha() else "digits"
        return asterisk_sounds() / folder / f"{w}.wav"
    raise ValueError(f"no recording of {word!r}: the recorded voice knows digits (five, oh), numbers "
                     f"(twelve, forty, hundred), letters (b, k), at, dot, dash and number, is, your")


@functools.lru_cache(maxsize=256)
def _word(word: str, rate: int) -> bytes:
    """One recorded word as PCM16 mono at `rate`, without the silence around it."""
    pcm = subprocess.run(
        ["sox", "-q", "-R", str(_recording(word)), "-t", "raw", "-r", str(rate), "-e", "signed-integer",
         "-b", "16", "-c", "1", "-L", "-"],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    a = np.frombuffer(pcm, dtype=np.int16)
    frame = rate // 100  # 10 ms
    n = len(a) // frame * frame
    frames = a[:n].astype(np.float32).reshape(-1, frame)
    voiced = np.nonzero(np.sqrt((frames * frames).mean(axis=1)) > _SILENCE_RMS)[0]
    return a[voiced[0] * frame : (voiced[-1] + 1) * frame].tobytes()


def recording(path: Path, sample_rate: int) -> bytes:
    """A recorded phrase from a WAV file of any rate, as PCM16 mono at `sample_rate` (blocking)."""
    if not path.is_file():
        raise FileNotFoundError(f"no recording at {path}")
    return subprocess.run(
        ["sox", "-q", "-R", str(path), "-t", "raw", "-r", str(sample_rate), "-e", "signed-integer", "-b", "16", "-c", "1",
         "-L", "-"],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip


def recorded_speech(text: str, sample_rate: int) -> bytes:
    """A phrase of digits and letters in the recorded human voice, the words run together as one
    group is said ("five oh three"), as PCM16 mono at `sample_rate` (blocking; cached per word)."""
    words = text.replace(",", " ").split()
    if not words:
        raise ValueError("nothing to say")
    return b"".join(_word(w, sample_rate) for w in words)
