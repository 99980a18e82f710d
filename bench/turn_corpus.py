"""Caller turns in a recorded human voice for the turn-taking sweep: `python -m bench.turn_corpus
[--language en|es|fr]`.

Asterisk's core sounds (professional voices, Debian `asterisk-core-sounds-{en,es,fr}-wav`,
CC-BY-SA-3.0, 8 kHz) spliced word by word into dictated phone numbers, confirmation codes, spellings,
emails and (English only) house numbers, with the pauses between groups drawn from 0.2-2.5 s (mid-turn pauses reach 2.5 s at p95 in
call-centre audio). Each turn exists twice: `clean` (the recording as is) and `phone` (300-3400 Hz
band-pass, then G.711 mu-law, as a PSTN leg delivers it). Every silence of at least 100 ms is labelled
`hold` (the caller goes on) or `end` (the turn is over).

The audio goes to ~/.cache/receptionist/turn-corpus/<CORPUS_VERSION>-[<language>-]<package version>/,
never into the repository; only the labels (bench/results/turn_corpus_labels[_<language>].json) are
committed. Spanish (es_MX) and French (fr_CA) callers dictate the same kinds of turns as English ones,
drawn with the same seed, in their own digit words ("cinco cero tres", "cinq zéro trois"; a
North American number digit by digit, as in Canada), letters, "arroba"/"arobase" and
"punto"/"point", after the agent's question in their language.

What it cannot show: one voice reading isolated IVR words (no fillers, no "wait, actually", no
co-articulation between words, no rising "unfinished" intonation), only dictation-style turns (no open
sentences), no background noise, no second talker, and a channel that is simulated, not a real SIP leg.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.recordings import RECORDED_RATE, asterisk_sounds, recorded_speech

CORPUS_VERSION = "v1"  # bump when the turns, pauses or channel change: the cache is keyed by it
SEED = 14
PAUSE_RANGE_S = (0.2, 2.5)
MIN_SILENCE_MS = 100  # every silence this long is labelled, as livekit/eot-bench scores them
CHANNELS = ("clean", "phone")
LABELS = Path(__file__).resolve().parent / "results" / "turn_corpus_labels.json"
LANGUAGES = ("en", "es", "fr")

_SILENCE_RMS = 30.0  # as simulator.recordings: the recordings' silence is digital, anything above is voice
_DIGITS = ["oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# what a caller says for 0-9, "@" and "." in each language (simulator/recordings.py has each recorded)
_SPOKEN = {
    "en": (_DIGITS, "at", "dot"),
    "es": (["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"], "arroba", "punto"),
    "fr": (["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"], "arobase", "point"),
}  # fmt: skip
_LETTERS = list("abcdefghjkmnprstuvwxyz")  # what a code generator uses: no i, l, o, q
_NAMES = ["kowalski", "nguyen", "okafor", "schmidt", "fitzgerald", "delacroix"]
_UNITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

# what the receptionist asked just before each kind of turn (dictation pacing keys on it)
PROMPTS = {
    "phone": "What's the best phone number to reach you?",
    "code": "Do you have your confirmation code?",
    "spelling": "Could you spell your last name for me?",
    "email": "What's your email address?",
    "address": "What's the house number for the visit address?",
    "open": "How can I help you today?",  # bench/open_turns.py: open sentences, no dictation
}
# the same questions in Spanish and French; "{name}" is the name being spelled
PROMPTS_IN = {
    "en": {**PROMPTS, "spelling": "Thanks. How do you spell {name}?"},
    "es": {"phone": "¿Cuál es el mejor número para comunicarnos con usted?",
           "code": "¿Tiene su código de confirmación?", "spelling": "Gracias. ¿Cómo se escribe {name}?",
           "email": "¿Cuál es su correo electrónico?"},
    "fr": {"phone": "Quel est le meilleur numéro pour vous joindre?", "code": "Avez-vous votre code de confirmation?",
           "spelling": "Merci. Comment s'écrit {name}?", "email": "Quelle est votre adresse courriel?"},
}  # fmt: skip


def prompt(turn: CorpusTurn) -> str:
    """What the receptionist asks before `turn`, in the caller's language. A spelling's question names
    the name as the agent heard it, as the brain's instructions tell it to ("How do you spell
    Kowalski?"): the spelling is then paced towards it. Without a name, PROMPTS["spelling"], a 1.2 s
    pause ends it."""
    asked = PROMPTS_IN[turn.language][turn.kind]
    return asked.format(name="".join(turn.groups).replace(" ", "").capitalize())


@dataclass
class Silence:
    """One stretch of silence in a turn: `at_s` from the turn's first voice, `ms` long."""

    at_s: float
    ms: int
    label: str  # "hold": the caller goes on after it; "end": the turn is over


@dataclass
class CorpusTurn:
    name: str
    kind: str
    groups: list[str]  # what is said between pauses
    pauses_ms: list[int]  # drawn, between consecutive groups
    seconds: float = 0.0
    silences: list[Silence] = field(default_factory=list)
    language: str = "en"

    @property
    def text(self) -> str:
        return " ".join(self.groups)


def _groups(kind: str, rng: random.Random, language: str = "en") -> list[str]:
    digits, at, dot = _SPOKEN[language]
    if kind == "phone":
        d = [rng.choice(digits) for _ in range(10)]
        return [" ".join(d[:3]), " ".join(d[3:6]), " ".join(d[6:])]
    if kind == "code":
        sizes = rng.choice([(2, 2, 2), (3, 3), (2, 3, 2), (4, 2)])
        chars = [rng.choice(_LETTERS + digits[1:]) for _ in range(sum(sizes))]
        out, i = [], 0
        for n in sizes:
            out.append(" ".join(chars[i : i + n]))
            i += n
        return out
    if kind == "spelling":
        name = rng.choice(_NAMES)
        cuts = sorted(rng.sample(range(2, len(name) - 1), 2))
        return [" ".join(name[a:b]) for a, b in zip([0, *cuts], [*cuts, len(name)], strict=True)]
    if kind == "email":
        user = rng.choice(_NAMES)[: rng.randint(3, 5)]
        host = rng.choice(_NAMES)[: rng.randint(3, 4)]
        return [" ".join(user), f"{at} {' '.join(host)}", f"{dot} c o m"]
    if kind == "address":
        house = f"{rng.choice(_UNITS)} hundred {rng.choice(_TENS)} {rng.choice(_UNITS)}"
        return [house, f"{rng.choice(_UNITS)} {rng.choice('abcd')}"]  # then the flat: "three b"
    raise ValueError(kind)


_MIX = [("phone", 8), ("code", 6), ("spelling", 4), ("email", 2), ("address", 2)]


def plan(seed: int = SEED, language: str = "en") -> list[CorpusTurn]:
    """The turns and their drawn pauses (seeded: the same corpus on every machine). In Spanish and
    French, no house numbers: their recordings have no hundreds to say them with."""
    rng = random.Random(seed)
    turns = []
    for kind, n in _MIX:
        if kind == "address" and language != "en":
            continue
        for i in range(n):
            groups = _groups(kind, rng, language)
            pauses = [round(1000 * rng.uniform(*PAUSE_RANGE_S)) for _ in groups[1:]]
            turns.append(CorpusTurn(f"{kind} {i + 1}", kind, groups, pauses, language=language))
    return turns


def frame_rms(pcm: bytes, rate: int) -> np.ndarray:
    """The RMS of each whole 10 ms frame of PCM16 mono `pcm`."""
    a = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    frame = rate // 100
    n = len(a) // frame
    return np.sqrt((a[: n * frame].reshape(n, frame) ** 2).mean(axis=1))


def silences(pcm: bytes, rate: int, floor: float = _SILENCE_RMS) -> list[Silence]:
    """Every silence >= MIN_SILENCE_MS inside the turn (hold), and the end of turn after the last voice.
    A 10 ms frame whose RMS is at most `floor` is silence."""
    voiced = frame_rms(pcm, rate) > floor
    out, run_start = [], None
    for i, v in enumerate(voiced):
        if not v and run_start is None:
            run_start = i
        elif v and run_start is not None:
            if (i - run_start) * 10 >= MIN_SILENCE_MS:
                out.append(Silence(round(run_start / 100, 2), (i - run_start) * 10, "hold"))
            run_start = None
    last_voice = int(np.nonzero(voiced)[0][-1]) + 1
    out.append(Silence(round(last_voice / 100, 2), 0, "end"))  # open-ended: the caller now waits
    return out


def splice(turn: CorpusTurn, rate: int = RECORDED_RATE) -> bytes:
    """The turn's groups in the recorded voice joined by its drawn pauses, PCM16 mono at `rate`."""
    pieces = [recorded_speech(g, rate, turn.language) for g in turn.groups]
    out = pieces[0]
    for pause, piece in zip(turn.pauses_ms, pieces[1:], strict=True):
        out += bytes(2 * int(rate * pause / 1000)) + piece
    return out


def transcribed_parts(turn: CorpusTurn) -> list[tuple[str, float]]:
    """Each group and where its voice ends (s from the turn's first voice), for the simulator to
    transcribe the groups each commit holds. A silence follows each group; where a voice also pauses
    inside its words (the French recordings' stops in "sept", "quatre"), the groups' ends are counted
    from the recorded words' lengths and the drawn pauses instead."""
    if len(turn.silences) == len(turn.groups):
        return [(group, s.at_s) for group, s in zip(turn.groups, turn.silences, strict=True)]
    ends, t = [], 0.0
    for group, pause_ms in zip(turn.groups, [*turn.pauses_ms, 0], strict=True):
        t += len(recorded_speech(group, RECORDED_RATE, turn.language)) / 2 / RECORDED_RATE
        ends.append((group, round(t, 2)))
        t += pause_ms / 1000
    return ends


def phone_channel(pcm: bytes, rate: int = RECORDED_RATE) -> bytes:
    """What a PSTN leg delivers: 300-3400 Hz band-pass (sox, repeatably: its dither the same on every
    run), then an 8-bit G.711 mu-law round trip."""
    banded = subprocess.run(
        ["sox", "-q", "-R", "-t", "raw", "-r", str(rate), "-e", "signed-integer", "-b", "16", "-c", "1", "-L", "-",
         "-t", "raw", "-r", "8000", "-e", "signed-integer", "-b", "16", "-c", "1", "-L", "-", "sinc", "300-3400"],
        input=pcm, capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    x = np.frombuffer(banded, dtype=np.int16).astype(np.float64) / 32768.0
    mu = 255.0
    coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127)  # 8 bits on the wire
    y = np.sign(coded) * ((1 + mu) ** (np.abs(coded) / 127) - 1) / mu
    return np.clip(y * 32768, -32768, 32767).astype(np.int16).tobytes()


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def read_wav(path: Path) -> tuple[bytes, int]:
    """PCM16 mono and its sample rate."""
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate()


def cache_dir(language: str = "en") -> Path:
    """Keyed by the corpus version and the Asterisk package (language and version) the audio was
    spliced from."""
    package = next(p for p in asterisk_sounds(language).parents if p.name.startswith("asterisk-sounds-"))
    return package.parent / "turn-corpus" / f"{CORPUS_VERSION}-{package.name.removeprefix('asterisk-sounds-')}"


def labels_path(language: str = "en") -> Path:
    """Where a corpus's labels are committed: English keeps the name it had before other languages."""
    return LABELS if language == "en" else LABELS.with_name(f"{LABELS.stem}_{language}.json")


SOURCES = {
    "en": "Debian asterisk-core-sounds-en-wav (en_US_f_Allison), CC-BY-SA-3.0",
    "es": "Debian asterisk-core-sounds-es-wav (es_MX_f_Allison), CC-BY-SA-3.0",
    "fr": "Debian asterisk-core-sounds-fr-wav (fr_CA_f_June), CC-BY-SA-3.0",
}


def build(*, force: bool = False, language: str = "en") -> tuple[Path, list[CorpusTurn]]:
    """Build the corpus of `language` into the cache (or reuse it) and return its directory and
    labelled turns."""
    if language not in LANGUAGES:
        raise ValueError(f"no recorded corpus in {language!r}: choose one of {', '.join(LANGUAGES)}")
    root = cache_dir(language)
    labels = root / "labels.json"
    if labels.exists() and not force:
        return root, [turn_from(d) for d in json.loads(labels.read_text())["turns"]]
    for ch in CHANNELS:
        (root / ch).mkdir(parents=True, exist_ok=True)
    turns = plan(language=language)
    for t in turns:
        pcm = splice(t)
        t.seconds = round(len(pcm) / 2 / RECORDED_RATE, 2)
        t.silences = silences(pcm, RECORDED_RATE)
        write_wav(root / "clean" / f"{_slug(t.name)}.wav", pcm, RECORDED_RATE)
        write_wav(root / "phone" / f"{_slug(t.name)}.wav", phone_channel(pcm), RECORDED_RATE)
    doc = labels_doc(turns, source=SOURCES[language])
    labels.write_text(json.dumps(doc, indent=1) + "\n")
    return root, turns


def labels_doc(
    turns: list[CorpusTurn],
    *,
    source: str = "Debian asterisk-core-sounds-en-wav (en_US_f_Allison), CC-BY-SA-3.0",
    seed: int = SEED,
    pause_range_s: tuple[float, float] = PAUSE_RANGE_S,
    version: str = CORPUS_VERSION,
    clean: str = "the 8 kHz recording",
) -> dict[str, Any]:
    """What is committed of a corpus: how it was made and every turn's labelled silences."""
    holds = [s for t in turns for s in t.silences if s.label == "hold"]
    return {
        "corpus_version": version,
        "source": source,
        "seed": seed,
        "pause_range_s": pause_range_s,
        "min_silence_ms": MIN_SILENCE_MS,
        "channels": {"clean": clean, "phone": "sox sinc 300-3400 Hz, G.711 mu-law round trip"},
        "holds": len(holds),
        "holds_over_1200ms": sum(s.ms > 1200 for s in holds),
        "turns": [asdict(t) for t in turns],
    }


def turn_from(d: dict[str, Any]) -> CorpusTurn:
    return CorpusTurn(d["name"], d["kind"], d["groups"], d["pauses_ms"], d["seconds"],
                      [Silence(**s) for s in d["silences"]], d.get("language", "en"))  # fmt: skip


def _slug(name: str) -> str:
    return name.replace(" ", "-")


def turn_audio(root: Path, turn: CorpusTurn, channel: str) -> tuple[bytes, int]:
    return read_wav(root / channel / f"{_slug(turn.name)}.wav")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache has this version")
    ap.add_argument("--language", choices=LANGUAGES, default="en", help="the caller's language")
    args = ap.parse_args()
    root, turns = build(force=args.force, language=args.language)
    publish_labels(root, turns, labels_path(args.language))


def publish_labels(root: Path, turns: list[CorpusTurn], into: Path) -> None:
    """Copy a built corpus's labels into the repository (`into`) and say what it holds."""
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_text((root / "labels.json").read_text())
    holds = [s.ms for t in turns for s in t.silences if s.label == "hold"]
    print(f"{len(turns)} turns, {sum(t.seconds for t in turns):.0f} s per channel, {len(holds)} hold silences "
          f"({min(holds)}-{max(holds)} ms, {sum(h > 1200 for h in holds)} over 1.2 s) in {root}")
    print("labels:", into)


if __name__ == "__main__":
    main()
