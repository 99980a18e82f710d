"""What the noise gate does to a caller's own turn on a noisy line: a long request and a dictated phone
number, each over a quiet line, car noise, hiss and background voices (phone channel), through the
call's VAD with the gate off and at its default. Prints every silence the VAD reports inside the turn
(from the end of one stretch of speech to the start of the next); one as long as the end-of-turn
delay (MIN_ENDPOINTING_DELAY) would end the caller's turn there, mid-sentence.

    python -m bench.noise_gate     # ~1 min; writes bench/results/noise_gate.json
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import vad
from livekit.plugins import silero

from agent.livekit_internals import own_vad
from agent.settings import load_settings
from bench import audio
from bench.report import table, write

TURNS = [
    "Hi, I'd like to book a drain cleaning for next Tuesday morning because my kitchen sink has been "
    "backing up since the weekend.",
    "My number is five oh three, five five five, zero one six six, and my name is Dana Whitfield.",
]
LEAD_S, TAIL_S = 3.0, 1.5  # noise alone before the caller speaks (the gate learns the line), and after


def _lines() -> dict[str, Any]:
    def quiet(seconds: float) -> bytes:
        return bytes(2 * int(seconds * audio.CALLER_RATE))

    return {"quiet": quiet, "car 15 dB": lambda s: audio.car_noise(s, 15.0),
            "hiss 20 dB": lambda s: audio.hiss(s, 20.0), "voices 20 dB": lambda s: audio.babble(s, snr_db=20.0)}  # fmt: skip


async def _gaps(pcm: bytes, gate_db: float, min_silence: float) -> list[float]:
    """Silences (s) between stretches of speech, as the call's VAD reports them."""
    stream = own_vad(silero.VAD.load(min_silence_duration=min_silence), noise_gate_db=gate_db).stream()
    frame = audio.FRAME
    for i in range(0, len(pcm) // 2 - frame + 1, frame):
        stream.push_frame(rtc.AudioFrame(pcm[2 * i : 2 * (i + frame)], audio.CALLER_RATE, 1, frame))
    stream.end_input()
    edges = [
        (ev.type, ev.timestamp - (ev.silence_duration if ev.type == vad.VADEventType.END_OF_SPEECH else ev.speech_duration))
        async for ev in stream
        if ev.type in (vad.VADEventType.START_OF_SPEECH, vad.VADEventType.END_OF_SPEECH)
    ]  # fmt: skip
    return [round(b - a, 2) for (k1, a), (k2, b) in zip(edges, edges[1:], strict=False)
            if k1 == vad.VADEventType.END_OF_SPEECH and k2 == vad.VADEventType.START_OF_SPEECH]  # fmt: skip


async def run() -> dict[str, Any]:
    settings = load_settings(openai_api_key="sim")
    rows = []
    for text in TURNS:
        spoken = np.frombuffer(audio.speech(text, "en-us"), dtype=np.int16).astype(np.int32)
        lead = int(LEAD_S * audio.CALLER_RATE)
        for line, make in _lines().items():
            background = np.frombuffer(make(LEAD_S + len(spoken) / audio.CALLER_RATE + TAIL_S), dtype=np.int16)
            mixed = background.astype(np.int32)[: lead + len(spoken) + int(TAIL_S * audio.CALLER_RATE)]
            mixed[lead : lead + len(spoken)] += spoken
            pcm = audio.phone_line(np.clip(mixed, -32768, 32767).astype(np.int16).tobytes())
            row: dict[str, Any] = {"turn": text[:40], "line": line}
            for name, gate in (("gate off", 0.0), ("gate on", settings.noise_gate_db)):
                row[name] = await _gaps(pcm, gate, settings.vad_min_silence_duration)
            rows.append(row)
    return {"noise_gate_db": settings.noise_gate_db, "end_of_turn_s": settings.min_endpointing_delay,
            "turns": rows}  # fmt: skip


def main() -> None:
    result = asyncio.run(run())

    def longest(gaps: list[float]) -> float:
        return max(gaps, default=0.0)

    table(f"silences inside one caller turn (end of turn after {result['end_of_turn_s']} s)",
          ["turn", "line", "gate off: gaps", "longest s", f"gate {result['noise_gate_db']} dB: gaps", "longest s"],
          [[r["turn"], r["line"], len(r["gate off"]), longest(r["gate off"]), len(r["gate on"]), longest(r["gate on"])]
           for r in result["turns"]])  # fmt: skip
    print(f"\nwrote {write('noise_gate', result, quick=False)}")


if __name__ == "__main__":
    main()
