"""What the call's VAD hears of a caller's pauses over a noisy line, offline: each turn of a corpus
(dictation: Asterisk's human voice; open: the neural voice's sentences), through the phone channel,
over a quiet line, car noise, hiss, background voices, hold music and car noise with coughs, pushed
through the call's own VAD (Silero behind the noise gate, as `agent.livekit_internals.own_vad` makes
it for a call), with no model, room or clock in the way: `python -m bench.vad_pauses [--material dictation|open] [--repeats N]
[--compare shipped "Silero alone"]` (~10 minutes with the defaults).

For each labelled mid-turn pause it scores the silence the VAD heard across it against the pause
itself. A longer one means the VAD missed the caller's first sound after the pause (a soft "u" or
"o" spelled over hiss): in a dictated number or code that silence is what DICTATION_HOLD_SECONDS is
held against, so a pause heard past it is a caller cut off mid-code. Also: silences heard inside the
caller's speech where there is no pause, and how much of the line alone (no caller) the VAD took for
speech. Each turn lies over its own stretch of the noise (a different start per turn and per repeat),
so a figure is not one noise sample's luck, and every setting compared hears the same stretches.
Prints a table, writes bench/results/vad_pauses[_open].json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import vad
from livekit.plugins import silero

from agent import noise_gate
from agent.livekit_internals import own_vad
from agent.settings import load_settings
from bench import audio, open_turns, report, turn_corpus
from bench.turn_taking import NOISE_BEDS, _to_caller_rate, noise_bed, phone_bed

LEAD_S, TAIL_S = 3.0, 1.0  # the line alone before the caller speaks (the gate learns it), and after
MUSIC_SNR_DB = 15.0
LONGER_S = 0.3  # a pause heard this much longer than it was: the caller's next sound was missed


def _beds(speech_rms: float) -> dict[str, np.ndarray | None]:
    beds: dict[str, np.ndarray | None] = {"quiet": None}
    for name in NOISE_BEDS:
        beds[name] = np.frombuffer(noise_bed(name, speech_rms), dtype=np.int16)
    # music behind the caller, set after the phone channel at its SNR as noise_bed sets the others
    beds[f"music {MUSIC_SNR_DB:.0f} dB"] = np.frombuffer(phone_bed(audio.hold_music, MUSIC_SNR_DB, speech_rms), dtype=np.int16)
    # what reading the caller's voice over a steady noise costs: a cough or a bump of the handset every
    # 3-6 s over car noise is as loud as a voice over it
    car = beds["car 15 dB"]
    assert car is not None
    bumps = audio.phone_line(audio.coughs(len(car) / audio.CALLER_RATE))[: 2 * len(car)]
    beds["car 15 dB, coughs"] = np.frombuffer(audio.mixed(car.tobytes(), bumps), dtype=np.int16)
    return beds


def _over(bed: np.ndarray | None, caller: bytes, offset: int) -> bytes:
    """The caller's turn after LEAD_S of the line alone and with TAIL_S after, over `bed` from `offset`."""
    said = np.frombuffer(caller, dtype=np.int16).astype(np.int32)
    lead = int(LEAD_S * audio.CALLER_RATE)
    n = lead + len(said) + int(TAIL_S * audio.CALLER_RATE)
    mix = np.zeros(n, dtype=np.int32)
    if bed is not None:
        mix += np.roll(np.tile(bed, n // len(bed) + 2), -(offset % len(bed)))[:n]
    mix[lead : lead + len(said)] += said
    return np.clip(mix, -32768, 32767).astype(np.int16).tobytes()


async def heard_speech(pcm: bytes, shared: silero.VAD, gate_db: float) -> list[tuple[float, float]]:
    """(start, end) s into `pcm` of each stretch the call's VAD hears as speech."""
    stream = own_vad(shared, noise_gate_db=gate_db).stream()
    frame = audio.FRAME
    for i in range(0, len(pcm) // 2 - frame + 1, frame):
        stream.push_frame(rtc.AudioFrame(pcm[2 * i : 2 * (i + frame)], audio.CALLER_RATE, 1, frame))
    stream.end_input()
    out, start = [], None
    end_s = len(pcm) / 2 / audio.CALLER_RATE
    async for ev in stream:
        if ev.type == vad.VADEventType.START_OF_SPEECH:
            start = ev.timestamp - ev.speech_duration
        elif ev.type == vad.VADEventType.END_OF_SPEECH and start is not None:
            out.append((start, ev.timestamp - ev.silence_duration))
            start = None
    if start is not None:
        out.append((start, end_s))
    return out


def _score(turn: turn_corpus.CorpusTurn, speech: list[tuple[float, float]], hold_s: float) -> dict[str, Any]:
    """Each labelled hold's heard silence minus the hold, and silences heard where the caller spoke on."""
    spans = [(s - LEAD_S, e - LEAD_S) for s, e in speech]
    silences = [(a[1], b[0]) for a, b in zip(spans, spans[1:], strict=False)]
    if spans:  # a caller never heard again after a pause: silence to the end of the turn
        silences.append((spans[-1][1], float("inf")))
    longer, past_hold = [], 0
    for h in (s for s in turn.silences if s.label == "hold"):
        a0, a1 = h.at_s, h.at_s + h.ms / 1000
        heard = max((min(b, turn.seconds + TAIL_S) - a for a, b in silences if a < a1 and b > a0), default=0.0)
        longer.append(heard - h.ms / 1000)
        past_hold += heard >= hold_s
    labelled = [(s.at_s, s.at_s + s.ms / 1000) for s in turn.silences]
    inside = [b - a for a, b in silences if b != float("inf") and b - a >= LONGER_S
              and not any(a < l1 and b > l0 for l0, l1 in labelled)]  # fmt: skip
    return {"longer": longer, "past_hold": past_hold, "inside": inside}


async def _line(turns: list[tuple[Any, bytes]], bed: np.ndarray | None, repeats: int, shared: silero.VAD,
                settings: Any) -> dict[str, Any]:
    longer: list[float] = []
    past_hold = inside = 0
    for r in range(repeats if bed is not None else 1):
        for i, (turn, pcm) in enumerate(turns):
            offset = int(((i * 7.3 + r * 13.1) % 50.0) * audio.CALLER_RATE)
            speech = await heard_speech(_over(bed, pcm, offset), shared, settings.noise_gate_db)
            scored = _score(turn, speech, settings.dictation_hold_seconds)
            longer += scored["longer"]
            past_hold += scored["past_hold"]
            inside += len(scored["inside"])
    alone = 0.0
    if bed is not None:
        alone = sum(b - a for a, b in await heard_speech(bed.tobytes(), shared, settings.noise_gate_db))
    x = np.array(longer)
    return {
        "pauses": len(x),
        "heard_longer_p50_s": round(float(np.median(x)), 3),
        "heard_longer_p90_s": round(float(np.percentile(x, 90)), 3),
        "heard_longer_max_s": round(float(x.max()), 3),
        "heard_much_longer": int((x > LONGER_S).sum()),
        "heard_past_dictation_hold": past_hold,
        "silences_inside_speech": inside,
        "line_alone_heard_as_speech_s": round(alone, 2),
        "line_alone_s": round(0.0 if bed is None else len(bed) / audio.CALLER_RATE, 1),
    }


SETTINGS = {"shipped": None, "Silero alone": 0.0}  # VOICE_OVER_STEADY_NOISE_P: as shipped, or never


async def run(material: str, repeats: int, compare: list[str]) -> dict[str, Any]:
    settings = load_settings(openai_api_key="sim")
    build = {"dictation": turn_corpus.build, "open": open_turns.build}[material]
    root, corpus = build()
    turns = [(t, _to_caller_rate(*turn_corpus.turn_audio(root, t, "phone"))) for t in corpus]
    level = audio.speech_level(b"".join(p for _, p in turns))
    shared = silero.VAD.load(min_silence_duration=settings.vad_min_silence_duration)
    shipped = noise_gate.VOICE_OVER_STEADY_NOISE_P
    lines: dict[str, Any] = {}
    started = time.monotonic()
    try:
        for name, bed in _beds(level).items():  # every setting hears the same stretches of the same noise
            lines[name] = {}
            for setting in compare:
                p = SETTINGS[setting]
                noise_gate.VOICE_OVER_STEADY_NOISE_P = shipped if p is None else p
                lines[name][setting] = scored = await _line(turns, bed, repeats, shared, settings)
                print(f"{name}, {setting}: {scored}", flush=True)
    finally:
        noise_gate.VOICE_OVER_STEADY_NOISE_P = shipped
    return {"material": material, "repeats": repeats, "turns": len(turns), "noise_gate_db": settings.noise_gate_db,
            "dictation_hold_seconds": settings.dictation_hold_seconds, "voice_over_steady_noise_p": shipped,
            "much_longer_s": LONGER_S, "seconds": round(time.monotonic() - started, 1), "lines": lines}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--material", choices=["dictation", "open"], default="dictation")
    ap.add_argument("--repeats", type=int, default=3, help="stretches of each noise per turn (default 3)")
    ap.add_argument("--compare", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                    help="what to score, each on the same noise: the VAD as shipped, and Silero alone deciding "
                         "on a steady line as before the caller's voice over it was read (default: both)")  # fmt: skip
    args = ap.parse_args()
    result = asyncio.run(run(args.material, args.repeats, args.compare))
    report.table(f"pauses as the call's VAD hears them, {args.material}, {result['turns']} turns x {args.repeats}",
                 ["line", "VAD", "pauses", "longer p50 s", "p90 s", "max s", f"> {LONGER_S} s longer",
                  "past the hold", "gaps in speech", "line alone heard s"],
                 [[k, a, v["pauses"], v["heard_longer_p50_s"], v["heard_longer_p90_s"], v["heard_longer_max_s"],
                   v["heard_much_longer"], v["heard_past_dictation_hold"], v["silences_inside_speech"],
                   v["line_alone_heard_as_speech_s"]] for k, by in result["lines"].items() for a, v in by.items()])  # fmt: skip
    name = "vad_pauses" + ("" if args.material == "dictation" else f"_{args.material}")
    print("wrote", report.write(name, result, quick=False))


if __name__ == "__main__":
    main()
