"""Every silence of the turn corpora scored by each end-of-turn detector, then swept over its threshold,
decision delay and timeout offline: `python -m bench.eot_sweep`.

livekit/eot-bench's method on our two materials (bench/turn_corpus.py: a human voice dictating; and
bench/open_turns.py: open sentences with fillers in a neural voice), clean and through the phone
channel. For each labelled silence of 100 ms or more, each audio model is asked once, as LiveKit asks it:
with the turn's audio up to VAD_SILENCE_S after the caller's last sound (a shorter silence never reaches
the model: the VAD has not ended speech). A setting (threshold t, delay d, timeout T) then ends the turn
d after the last sound when the model says at least t, T after it when not, and never before the
model has answered (VAD_SILENCE_S), as LiveKit counts its endpointing delays from the last sound. A hold
silence longer than that is a false cut-off; an end of turn waits that long. Silero VAD alone ends the
turn d after the last sound whatever was said (its own silence, 0.1-0.15 s, is shorter than any d here).

What this leaves out, and bench.turn_taking measures live: the model's reply time, speculative
replies, our dictation pacing (it reads the transcripts, not the audio), and the VAD's own lag.
Writes bench/results/eot_sweep.json and .png.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import open_turns, report, turn_corpus
from bench.audio import resample
from bench.turn_corpus import CorpusTurn, turn_audio

RATE = 16_000  # what both models read
VAD_SILENCE_S = 0.25  # LiveKit asks an audio model after this much VAD silence (its minimum for them)
THRESHOLDS = [round(x, 2) for x in (0.01, 0.03, 0.05, 0.09, 0.15, 0.2, 0.3, 0.36, 0.43, 0.5, 0.6, 0.7, 0.8, 0.9)]
DELAYS = [round(0.05 * i, 2) for i in range(3, 31)]  # 0.15 to 1.5 s
TIMEOUTS = [1.0, 1.5, 2.0, 2.5, 3.0]
BUDGETS_MS = (300, 600)  # false cut-offs at this decision time (eot-bench's columns)
CUT_RATES = (0.05, 0.10)  # ... and the quickest end of turn within this rate
MATERIALS = {"dictation": turn_corpus.build, "open": open_turns.build}
CHANNELS = ("clean", "phone")


@dataclass
class Scored:
    """One silence: how long it lasted (None: the end of the turn), and each model's probability."""

    material: str
    channel: str
    turn: str
    at_s: float
    hold_ms: int | None
    p: dict[str, float]


def _to_16k(pcm: bytes, rate: int) -> np.ndarray:
    """The turn at the models' rate, without dither (the same answer on the same audio every run)."""
    return np.frombuffer(resample(pcm, rate, RATE, dither=False), dtype=np.int16)


class Models:
    """LiveKit's v1-mini (its local library, as its `_LocalTransport` runs it: the last 1.2 s) and Smart
    Turn v3.2 (agent/smart_turn.py: up to 0.2 s after the last sound, the last 8 s)."""

    names = ("v1-mini", "smart-turn")

    def __init__(self) -> None:
        from livekit.local_inference import EOT

        from agent.smart_turn import SmartTurnModel

        self._v1 = EOT()
        self._smart = SmartTurnModel.load()
        self.seconds = {n: 0.0 for n in self.names}
        self.calls = 0

    def score(self, audio: np.ndarray) -> dict[str, float]:
        t0 = time.perf_counter()
        v1 = float(self._v1.predict(audio[-int(1.2 * RATE) :]))
        t1 = time.perf_counter()
        smart = self._smart.probability(audio.astype(np.float32) / 32768.0)
        self.seconds["v1-mini"] += t1 - t0
        self.seconds["smart-turn"] += time.perf_counter() - t1
        self.calls += 1
        return {"v1-mini": v1, "smart-turn": smart}


def score_turn(models: Models, material: str, channel: str, turn: CorpusTurn, audio: np.ndarray) -> list[Scored]:
    out = []
    pad = np.zeros(int(RATE * VAD_SILENCE_S), dtype=np.int16)
    for s in turn.silences:
        hold = s.ms if s.label == "hold" else None
        if hold is not None and hold < 1000 * VAD_SILENCE_S:
            out.append(Scored(material, channel, turn.name, s.at_s, hold, {}))  # never reaches a model
            continue
        upto = int(RATE * (s.at_s + VAD_SILENCE_S))
        seen = np.concatenate([audio, pad])[:upto]  # the end of a turn: silence after its last sound
        out.append(Scored(material, channel, turn.name, s.at_s, hold, models.score(seen)))
    return out


def decide_s(p: float | None, threshold: float | None, delay: float, timeout: float) -> float:
    """Seconds after the last sound at which the turn is ended (VAD alone: threshold None)."""
    if threshold is None:
        return delay
    if p is None or p >= threshold:  # a hold the VAD never ended has no probability: it is never cut
        return max(VAD_SILENCE_S, delay)
    return max(VAD_SILENCE_S, timeout)


def evaluate(rows: list[Scored], model: str | None, threshold: float | None, delay: float, timeout: float) -> dict[str, Any]:
    holds = [r for r in rows if r.hold_ms is not None]
    ends = [r for r in rows if r.hold_ms is None]
    # a hold shorter than the VAD's silence has no probability and is never cut
    cut = sum(r.hold_ms / 1000 > decide_s(r.p.get(model) if model else None, threshold, delay, timeout)
              for r in holds)  # fmt: skip
    waits = [1000 * decide_s(r.p.get(model) if model else None, threshold, delay, timeout) for r in ends]
    return {"cut": cut, "holds": len(holds), "cut_rate": round(cut / len(holds), 3) if holds else None,
            "end_ms_p50": round(float(np.percentile(waits, 50))), "end_ms_p95": round(float(np.percentile(waits, 95)))}  # fmt: skip


def sweep(rows: list[Scored]) -> dict[str, list[dict[str, Any]]]:
    """Every setting of every detector on `rows`, as (setting, outcome)."""
    out: dict[str, list[dict[str, Any]]] = {"vad": []}
    for d in DELAYS:
        out["vad"].append({"delay": d, **evaluate(rows, None, None, d, 0.0)})
    for m in Models.names:
        out[m] = [{"threshold": t, "delay": d, "timeout": T, **evaluate(rows, m, t, d, T)}
                  for t in THRESHOLDS for d in DELAYS for T in TIMEOUTS]  # fmt: skip
    return out


def front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The settings no other beats on both the cut-off rate and the end-of-turn wait (p50)."""
    best: list[dict[str, Any]] = []
    for p in sorted(points, key=lambda p: (p["end_ms_p50"], p["cut_rate"], p["end_ms_p95"])):
        if not best or p["cut_rate"] < best[-1]["cut_rate"]:
            best.append(p)
    return best


def summary(points: list[dict[str, Any]]) -> dict[str, Any]:
    """eot-bench's columns: the fewest false cut-offs deciding within 300 / 600 ms of the last sound
    (p50 of the ends), and the quickest p50 end of turn with at most 5% / 10% of the holds cut."""
    out: dict[str, Any] = {}
    for b in BUDGETS_MS:
        within = [p for p in points if p["end_ms_p50"] <= b]
        out[f"cut_rate_at_{b}ms"] = min((p["cut_rate"] for p in within), default=None)
    for r in CUT_RATES:
        within = [p for p in points if p["cut_rate"] <= r]
        pick = min(within, key=lambda p: (p["end_ms_p50"], p["end_ms_p95"]), default=None)
        out[f"at_{round(100 * r)}pct"] = pick
    return out


def run() -> dict[str, Any]:
    models = Models()
    rows: list[Scored] = []
    for material, build in MATERIALS.items():
        root, turns = build()
        for channel in CHANNELS:
            for t in turns:
                rows += score_turn(models, material, channel, t, _to_16k(*turn_audio(root, t, channel)))
    groups: dict[str, Any] = {}
    for material in MATERIALS:
        for channel in CHANNELS:
            mine = [r for r in rows if r.material == material and r.channel == channel]
            points = sweep(mine)
            groups[f"{material}/{channel}"] = {
                "holds": sum(r.hold_ms is not None for r in mine),
                "holds_reaching_a_model": sum(r.hold_ms is not None and bool(r.p) for r in mine),
                "ends": sum(r.hold_ms is None for r in mine),
                "detectors": {name: {"summary": summary(pts), "front": front(pts)} for name, pts in points.items()},
            }
    return {
        "vad_silence_s": VAD_SILENCE_S,
        "grid": {"thresholds": THRESHOLDS, "delays_s": DELAYS, "timeouts_s": TIMEOUTS},
        "inference_ms_mean": {n: round(1000 * s / max(1, models.calls), 1) for n, s in models.seconds.items()},
        "groups": groups,
        "silences": [r.__dict__ for r in rows],
    }


def print_rows(result: dict[str, Any]) -> None:
    rows = []
    for group, g in result["groups"].items():
        for name, d in g["detectors"].items():
            s = d["summary"]

            def setting(p: dict[str, Any] | None) -> str:
                if p is None:
                    return "-"
                shown = f"{p['end_ms_p50']} ms"
                if "threshold" in p:
                    return f"{shown} (th{p['threshold']} ep{p['delay']} max{p['timeout']})"
                return f"{shown} (ep{p['delay']})"

            rows.append([group, name, f"{g['holds']}", s["cut_rate_at_300ms"], s["cut_rate_at_600ms"],
                         setting(s["at_5pct"]), setting(s["at_10pct"])])  # fmt: skip
    report.table(
        "end of turn on every silence (offline): false cut-offs, and the p50 wait at a cut-off rate",
        ["material/channel", "detector", "holds", "cut @300 ms", "cut @600 ms", "wait @5% cut", "wait @10% cut"],
        rows,
    )
    print("mean inference ms:", result["inference_ms_mean"])


@report.plot_if_possible
def plot(result: dict[str, Any]) -> None:
    plt = report.pyplot()
    groups = list(result["groups"])
    fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 4.2), sharey=True)
    for a, group in zip(axes, groups, strict=True):
        for name, d in result["groups"][group]["detectors"].items():
            f = d["front"]
            a.step([p["end_ms_p50"] for p in f], [100 * p["cut_rate"] for p in f], where="post", label=name)
        a.set_title(group, fontsize=9)
        a.set_xlabel("end-of-turn wait p50 after the last sound (ms)")
        a.set_xlim(0, 3500)
        a.grid(alpha=0.3)
    axes[0].set_ylabel("% of mid-turn pauses cut off")
    axes[0].legend(fontsize=8)
    fig.suptitle("Every silence scored offline: the best settings of each detector", fontsize=10)
    fig.tight_layout()
    fig.savefig(report.plot_path("eot_sweep", quick=False), dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    t0 = time.monotonic()
    result = run()
    print_rows(result)
    print("wrote", report.write("eot_sweep", result, quick=False))
    plot(result)
    print(f"\neot_sweep: done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
