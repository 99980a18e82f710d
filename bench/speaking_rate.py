"""CPU of the speaking-rate estimate the transcript synchronizer runs over every second of the agent's
voice: LiveKit's stream against agent/speaking_rate.py, on the same audio in the same process,
interleaved: `python -m bench.speaking_rate [--quick]`.

The audio is the simulator's model voice (espeak-ng at the Realtime API's 24 kHz), pushed in 20 ms
frames as the room output receives them. Prints and writes bench/results/speaking_rate[-quick].json:
CPU ms per second of audio for each, and their ratio."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from livekit import rtc
from livekit.agents.voice.transcription import _speaking_rate

from agent import speaking_rate
from bench import report
from simulator.speech import MODEL_SAMPLE_RATE, duration_ms, model_voice

TEXT = ("Thanks for calling Rose City Plumbing, I'm the AI assistant. We're open from eight to six on weekdays, "
        "and a technician can come out tomorrow morning between nine and eleven. Would that work for you?")  # fmt: skip


async def _cpu_ms(detector: Any, frames: list[rtc.AudioFrame]) -> float:
    stream = detector.stream()

    async def read() -> None:
        async for _ in stream:
            pass

    reader = asyncio.create_task(read())
    start = time.process_time()
    for frame in frames:
        stream.push_frame(frame)
        await asyncio.sleep(0)
    stream.end_input()
    await reader
    return (time.process_time() - start) * 1000


async def run(rounds: int) -> dict[str, Any]:
    pcm = await model_voice(TEXT)
    step = MODEL_SAMPLE_RATE // 50 * 2
    frames = [rtc.AudioFrame(pcm[i : i + step], MODEL_SAMPLE_RATE, 1, len(pcm[i : i + step]) // 2)
              for i in range(0, len(pcm), step)]  # fmt: skip
    seconds = duration_ms(pcm) / 1000
    theirs, ours = [], []
    for _ in range(rounds):  # interleaved: a busy moment on a shared machine falls on both
        theirs.append(await _cpu_ms(_speaking_rate.SpeakingRateDetector(), frames) / seconds)
        ours.append(await _cpu_ms(speaking_rate.SpeakingRateDetector(), frames) / seconds)
    lk, us = statistics.median(theirs), statistics.median(ours)
    return {
        "audio_seconds": round(seconds, 2),
        "rounds": rounds,
        "livekit_cpu_ms_per_audio_s": round(lk, 2),
        "ours_cpu_ms_per_audio_s": round(us, 2),
        "ratio": round(us / lk, 3),
        "livekit_all": [round(x, 2) for x in theirs],
        "ours_all": [round(x, 2) for x in ours],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 rounds instead of 30")
    args = ap.parse_args()
    result = asyncio.run(run(5 if args.quick else 30))
    report.table("speaking-rate estimate, CPU per second of agent audio (median)",
                       ["LiveKit ms", "ours ms", "ours / LiveKit"],
                       [[result["livekit_cpu_ms_per_audio_s"], result["ours_cpu_ms_per_audio_s"], result["ratio"]]])  # fmt: skip
    print("wrote", report.write("speaking_rate", result, quick=args.quick))


if __name__ == "__main__":
    main()
