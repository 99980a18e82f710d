"""A sanity check on real conversational telephone speech: the two-speaker sample shipped inside the
`pyannote.audio` wheel (30 s, 16 kHz, MIT licence), with its own transcript (sample.stm: who said what,
when). `python -m bench.pyannote_sample`.

Both turn corpora are made (one professional voice's spliced digits; Piper's sentences); this is two
people talking. Each utterance end in the transcript is a boundary: a turn end when the other speaker
talks next, a join when the same speaker goes on. Each end-of-turn model is asked at each boundary as
LiveKit asks it (the audio up to the utterance's end, then VAD_SILENCE_S of silence: bench.eot_sweep's
method), on the recording and through the phone channel, and its answer read at its default threshold:
a turn end it calls unfinished would wait the timeout; a join it calls finished would be cut if the
pause were long enough.

What it cannot show: the recording is a mono mix, so the other speaker's backchannels and overlaps are
in what the model hears; the joins are 2-80 ms apart, far shorter than any VAD silence, so no detector
would ever be asked there in a call (the question is only what the model would answer); 9 turn ends and
4 joins are a sanity check, not a rate. The wheel is downloaded once (pip download, no dependencies,
nothing installed) into ~/.cache/receptionist/pyannote-audio-<version>/. Writes
bench/results/pyannote_sample.json.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.eot_sweep import RATE, VAD_SILENCE_S, Models, _to_16k
from bench.turn_corpus import phone_channel, read_wav
from simulator.recordings import cache_root

VERSION = "4.0.7"
MEMBERS = ("sample.wav", "sample.stm")
# each model's default threshold: below it the turn is heard unfinished (agent/turn_model.py)
THRESHOLDS = {"v1-mini": 0.36, "smart-turn": 0.5}


@dataclass
class Boundary:
    speaker: str
    text: str  # the utterance that ends here
    end_s: float
    kind: str  # "turn end" (the other speaker is next) or "join" (the same speaker goes on)
    gap_ms: int | None  # to the next utterance's start (negative: they overlap); None after the last


def fetch() -> Path:
    """The sample's directory in the cache, downloaded and extracted on first use."""
    root = cache_root() / f"pyannote-audio-{VERSION}"
    if all((root / m).exists() for m in MEMBERS):
        return root
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(root),
                    f"pyannote.audio=={VERSION}"], check=True, timeout=600)  # fmt: skip
    [wheel] = root.glob("pyannote_audio-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for m in MEMBERS:
            (root / m).write_bytes(z.read(f"pyannote/audio/sample/{m}"))
    wheel.unlink()
    return root


def boundaries(stm: str) -> list[Boundary]:
    """Every utterance end of an STM transcript (`uri channel speaker start end words...`)."""
    utterances = []
    for line in stm.splitlines():
        if line.strip():
            _, _, speaker, start, end, *words = line.split()
            utterances.append((float(start), float(end), speaker, " ".join(words)))
    utterances.sort()
    out = []
    for (_start, end, speaker, text), following in zip(utterances, [*utterances[1:], None], strict=True):
        if following is None:
            out.append(Boundary(speaker, text, end, "turn end", None))
            continue
        kind = "join" if following[2] == speaker else "turn end"
        out.append(Boundary(speaker, text, end, kind, round(1000 * (following[0] - end))))
    return out


def run() -> dict[str, Any]:
    root = fetch()
    pcm, rate = read_wav(root / "sample.wav")
    found = boundaries((root / "sample.stm").read_text())
    channels = {"recording": _to_16k(pcm, rate), "phone": _to_16k(phone_channel(pcm, rate), 8000)}
    models = Models()
    pad = np.zeros(int(RATE * VAD_SILENCE_S), dtype=np.int16)
    rows = []
    for channel, audio in channels.items():
        for b in found:
            heard = np.concatenate([audio[: int(RATE * b.end_s)], pad])
            p = models.score(heard)
            rows.append({"channel": channel, **b.__dict__, "p": {k: round(v, 3) for k, v in p.items()},
                         "finished": {k: p[k] >= t for k, t in THRESHOLDS.items()}})  # fmt: skip
    summary = {}
    for channel in channels:
        mine = [r for r in rows if r["channel"] == channel]
        ends = [r for r in mine if r["kind"] == "turn end"]
        joins = [r for r in mine if r["kind"] == "join"]
        summary[channel] = {
            name: {"turn_ends_heard_finished": f"{sum(r['finished'][name] for r in ends)} of {len(ends)}",
                   "joins_heard_unfinished": f"{sum(not r['finished'][name] for r in joins)} of {len(joins)}"}
            for name in THRESHOLDS
        }  # fmt: skip
    return {
        "source": f"pyannote.audio {VERSION} wheel, pyannote/audio/sample/ (MIT licence): sample.wav, sample.stm",
        "vad_silence_s": VAD_SILENCE_S, "thresholds": THRESHOLDS, "summary": summary, "boundaries": rows,
    }  # fmt: skip


def main() -> None:
    result = run()
    report.table(
        "the pyannote sample: each model's probability that the turn is over, at each utterance end",
        ["channel", "speaker", "ends with", "kind", "gap to next ms", "v1-mini", "smart-turn"],
        [[r["channel"], r["speaker"], r["text"][-32:], r["kind"], r["gap_ms"], r["p"]["v1-mini"],
          r["p"]["smart-turn"]] for r in result["boundaries"]],
    )  # fmt: skip
    for channel, s in result["summary"].items():
        print(channel, s)
    print("wrote", report.write("pyannote_sample", result, quick=False))


if __name__ == "__main__":
    main()
