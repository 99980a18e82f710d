"""Recorded human speech for simulated callers: Asterisk's core sounds (professional voices, the
Debian packages asterisk-core-sounds-{en,es,fr}-wav, CC-BY-SA-3.0), fetched once into a cache outside
the repository and spliced word by word into what a caller dictates ("five oh three", "b seven k";
"cinco cero tres"; "cinq un quatre").

A synthetic voice's prosody is not a caller's; these are real recordings of the words callers pause
between when they give a number, a code or a spelling. English is Allison Smith (en_US), Spanish her
Mexican Spanish recordings (es_MX), French June Wallack (fr_CA).
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RECORDED_RATE = 8000


@dataclass(frozen=True)
class RecordedVoice:
    """One language's recordings: the Debian package, the voice's directory inside it, and which
    file says each word a caller dictates with."""

    language: str
    package: str
    voice_dir: Path  # inside the package
    digits: dict[str, str]  # word -> digits/<file>.wav: digits, then the numbers of house numbers
    symbols: dict[str, str] = field(default_factory=dict)  # word -> letters/<file>.wav ("at", "dot")
    lead_in: dict[str, str] = field(default_factory=dict)  # word -> <file>.wav ("number is ...")

    @property
    def cache_name(self) -> str:
        """The cache directory's prefix; English keeps the name it had before other languages."""
        return "asterisk-sounds-" if self.language == "en" else f"asterisk-sounds-{self.language}-"

    def file(self, word: str) -> str | None:
        """The recording of `word` inside the voice's directory ("digits/5.wav"), or None."""
        w = word.lower()
        if w in self.digits:
            return f"digits/{self.digits[w]}.wav"
        if w in self.symbols:
            return f"letters/{self.symbols[w]}.wav"
        if w in self.lead_in:
            return f"{self.lead_in[w]}.wav"
        if len(w) == 1 and w.isascii() and w.isalnum():
            return f"{'letters' if w.isalpha() else 'digits'}/{w}.wav"
        return None

    def files(self, word: str) -> list[str] | None:
        """The recordings that say `word`, in order: its own, or a compound number's pieces, the longest
        piece at the end first, as the voice's own numbers are put together ("twenty-one": 20 then 1;
        "soixante-dix-huit": 60 then 18; "quatre-vingt-onze": 80 then 11); None if a piece has none."""
        parts = word.lower().split("-")
        out: list[str] = []
        end = len(parts)
        while end:
            start, found = next(((i, f) for i in range(end) if (f := self.file("-".join(parts[i:end])))),
                                (0, None))  # fmt: skip
            if found is None:
                return None
            out.insert(0, found)
            end = start
        return out


VOICES = {
    "en": RecordedVoice(
        "en", "asterisk-core-sounds-en-wav", Path("usr/share/asterisk/sounds/en_US_f_Allison"),
        digits={
            "zero": "0", "oh": "oh", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9",
            # house numbers ("four hundred twelve")
            "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
            "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30",
            "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
            "hundred": "hundred", "thousand": "thousand",
        },
        symbols={"at": "at", "dot": "dot", "dash": "dash"},
        lead_in={"number": "number", "is": "is", "your": "your"},
    ),
    "es": RecordedVoice(
        "es", "asterisk-core-sounds-es-wav", Path("usr/share/asterisk/sounds/es_MX_f_Allison"),
        digits={
            "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6",
            "siete": "7", "ocho": "8", "nueve": "9", "diez": "10", "once": "11", "doce": "12", "veinte": "20",
            "treinta": "30", "cuarenta": "40", "cincuenta": "50",
            # numbers said in pairs ("cuarenta y cinco, sesenta y siete")
            "trece": "13", "catorce": "14", "quince": "15", "dieciséis": "16", "diecisiete": "17", "dieciocho": "18",
            "diecinueve": "19", "veintiuno": "21", "veintidós": "22", "veintitrés": "23", "veinticuatro": "24",
            "veinticinco": "25", "veintiséis": "26", "veintisiete": "27", "veintiocho": "28", "veintinueve": "29",
            "sesenta": "60", "setenta": "70", "ochenta": "80", "noventa": "90", "y": "and",
        },
        symbols={"arroba": "at", "punto": "dot", "guion": "dash"},
    ),
    "fr": RecordedVoice(
        "fr", "asterisk-core-sounds-fr-wav", Path("usr/share/asterisk/sounds/fr_CA_f_June"),
        digits={
            "zéro": "0", "zero": "0", "un": "1", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "six": "6",
            "sept": "7", "huit": "8", "neuf": "9", "dix": "10", "onze": "11", "douze": "12", "vingt": "20",
            "trente": "30", "quarante": "40", "cinquante": "50",
            # numbers said in pairs ("douze, trente-quatre, soixante-dix-huit"): the rest of 13-99 is put
            # together from these (files)
            "treize": "13", "quatorze": "14", "quinze": "15", "seize": "16", "dix-sept": "17", "dix-huit": "18",
            "dix-neuf": "19", "soixante": "60", "soixante-dix": "70", "quatre-vingt": "80", "quatre-vingts": "80",
            "quatre-vingt-dix": "90", "et": "et",
        },
        symbols={"arobase": "at", "point": "dot", "tiret": "dash"},
    ),
}  # fmt: skip
# the recordings start and end in digital silence; anything above this is the voice, fricatives included
_SILENCE_RMS = 30.0


def voice_for(language: str) -> RecordedVoice:
    """The recorded voice of `language` ("es", or an espeak-ng voice name such as "en-gb" or "fr-fr")."""
    voice = VOICES.get(language.split("-")[0].lower())
    if voice is None:
        raise ValueError(f"no recorded voice speaks {language!r}: recorded voices are {', '.join(VOICES)}")
    return voice


def check_words(text: str, language: str, where: str = "") -> None:
    """Raise ValueError if the recorded voice of `language` has no recording of a word of `text`."""
    voice = voice_for(language)
    for word in text.replace(",", " ").split():
        if voice.files(word) is None:
            known = ", ".join([*voice.digits, *voice.symbols, *voice.lead_in])
            raise ValueError(f"{where + ': ' if where else ''}no recording of {word.lower()!r} in {voice.language}: "
                             f"the recorded voice knows letters (b, k), digits (0-9) and {known}")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "receptionist"


def _apt_download(package: str, into: str) -> None:
    """`apt-get download`, refreshing the package lists once when a fresh machine has none."""
    download = ["apt-get", "download", package]
    try:
        subprocess.run(download, cwd=into, check=True, capture_output=True, timeout=300)
    except subprocess.CalledProcessError:
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600)
        subprocess.run(download, cwd=into, check=True, capture_output=True, timeout=300)


def asterisk_sounds(language: str = "en") -> Path:
    """The voice's directory (digits/, letters/, ...), downloaded and extracted on first use.

    `apt-get download` fetches the package without installing it and `dpkg -x` unpacks it into
    ~/.cache/receptionist/asterisk-sounds-[<language>-]<version>; later calls (and other processes)
    reuse it.
    """
    voice = voice_for(language)
    root = cache_root()
    found = sorted(root.glob(f"{voice.cache_name}[0-9]*/{voice.voice_dir}"))
    if found:
        return found[-1]
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetching-", dir=root) as tmp:
        try:
            _apt_download(voice.package, tmp)
        except (OSError, subprocess.CalledProcessError) as e:
            detail = getattr(e, "stderr", b"") or b""
            raise RuntimeError(
                f"cannot fetch the recorded caller voice: `apt-get download {voice.package}` failed "
                f"(run `apt-get update` first on a fresh machine): {detail.decode(errors='replace').strip() or e}"
            ) from e
        deb = next(Path(tmp).glob("*.deb"))
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        unpacked = Path(tmp) / "unpacked"
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True, timeout=300)
        final = root / f"{voice.cache_name}{version}"
        try:
            # a rename is atomic: a concurrent test process either wins or finds the directory there
            unpacked.rename(final)
        except OSError:
            if not (final / voice.voice_dir).is_dir():
                raise
    return final / voice.voice_dir


def _word(word: str, rate: int, language: str = "en") -> bytes:
    """One word as PCM16 mono at `rate`: its recording, or a compound number's pieces run together."""
    check_words(word, language)
    return b"".join(_piece(f, rate, language) for f in voice_for(language).files(word) or [])


@functools.lru_cache(maxsize=256)
def _piece(file: str, rate: int, language: str) -> bytes:
    """One recording of the voice as PCM16 mono at `rate`, without the silence around it."""
    pcm = subprocess.run(
        ["sox", "-q", "-R", str(asterisk_sounds(language) / file), "-t", "raw", "-r", str(rate), "-e", "signed-integer",
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


def recorded_speech(text: str, sample_rate: int, language: str = "en") -> bytes:
    """A phrase of digits and letters in the recorded human voice of `language`, the words run
    together as one group is said ("five oh three"), as PCM16 mono at `sample_rate` (blocking; cached
    per word)."""
    words = text.replace(",", " ").split()
    if not words:
        raise ValueError("nothing to say")
    language = voice_for(language).language
    return b"".join(_word(w, sample_rate, language) for w in words)
