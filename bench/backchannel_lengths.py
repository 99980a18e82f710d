"""How long the call's VAD hears a backchannel and a short barge-in, offline: `python -m bench.backchannel_lengths`
(~1 minute; the first run also installs Piper into the cache, as bench.open_turns does).

BACKCHANNEL_SECONDS tells "mhm" over the agent's reply (the reply goes on) from "wait, actually"
(the agent stops and listens) by the caller's speech as the VAD counts it. This prints that count for
each phrase in three voices (espeak-ng en-gb and en-us, Piper's neural "joe"), each through the phone
channel after a second of quiet line and pushed through the call's own VAD (`own_vad`, the noise gate
on), and which side of the bound it falls. Writes bench/results/backchannel_lengths.json.

What it cannot show: synthetic voices read each phrase as a word, at one speed; a real "mm-hmm" is
hummed, drawn out or clipped by a caller's mood, and a real barge-in often goes on past its first words
(then it is a turn whatever its first words were).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from livekit.plugins import silero

from agent.settings import load_settings
from bench import audio, open_turns, report
from bench.vad_pauses import heard_speech

BACKCHANNELS = ["mhm", "mm-hmm", "uh huh", "okay", "right", "yeah", "I see", "sure", "got it", "oh okay",
                "yes", "yeah, yeah", "uh-huh, right", "okay, yeah"]  # fmt: skip
BARGE_INS = ["wait", "no", "stop", "hold on", "sorry, wait", "wait, actually", "no, that's wrong",
             "Excuse me, one second please."]  # fmt: skip
VOICES = ("en-gb", "en-us", "piper")
LEAD_MS, TAIL_MS = 1000, 1200


def _clip(text: str, voice: str, piper: Path) -> bytes:
    if voice != "piper":
        return audio.speech(text, voice)
    with tempfile.TemporaryDirectory() as d:
        pcm, rate = open_turns.synthesize(text, piper, Path(d) / "phrase.wav")
    return audio.resample(open_turns.trim(pcm, rate), rate, audio.CALLER_RATE)


async def run() -> dict[str, Any]:
    settings = load_settings(openai_api_key="bench")
    shared = silero.VAD.load(min_silence_duration=settings.vad_min_silence_duration)
    piper = open_turns.piper_python()
    rows = []
    for kind, phrases in (("backchannel", BACKCHANNELS), ("barge-in", BARGE_INS)):
        for text in phrases:
            for voice in VOICES:
                clip = _clip(text, voice, piper)
                line = audio.phone_line(audio.silence(LEAD_MS) + clip + audio.silence(TAIL_MS))
                spans = await heard_speech(line, shared, settings.noise_gate_db)
                heard = round(sum(e - s for s, e in spans), 3)
                rows.append({"kind": kind, "phrase": text, "voice": voice,
                             "clip_s": round(len(clip) / 2 / audio.CALLER_RATE, 3), "stretches": len(spans),
                             "heard_speech_s": heard,
                             "backchannel": 0 < heard < settings.backchannel_seconds})  # fmt: skip
    return {"backchannel_seconds": settings.backchannel_seconds, "noise_gate_db": settings.noise_gate_db,
            "vad_min_silence_s": settings.vad_min_silence_duration, "phrases": rows}  # fmt: skip


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    result = asyncio.run(run())
    bound = result["backchannel_seconds"]
    report.table(f"caller speech as the VAD hears it (s); * = under BACKCHANNEL_SECONDS {bound}: the reply goes on",
                 ["kind", "phrase", *VOICES],
                 [[kind, phrase, *[f'{r["heard_speech_s"]:.2f}{"*" if r["backchannel"] else ""}'
                                   for r in result["phrases"] if r["phrase"] == phrase]]
                  for kind, phrase in dict.fromkeys((r["kind"], r["phrase"]) for r in result["phrases"])])  # fmt: skip
    print("wrote", report.write("backchannel_lengths", result, quick=False))


if __name__ == "__main__":
    main()
