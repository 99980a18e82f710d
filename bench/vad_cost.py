"""What the caller's VAD costs a call's process: a caller's line (a request, then silence, phone
channel) fed in real time in 50 ms frames, as LiveKit's room input delivers it, through the call's
VAD (agent.livekit_internals.own_vad: Silero run on the call's loop, the noise gate at its default)
and through LiveKit's own Silero stream (each window sent to a thread of the loop's executor),
one after the other, `--rounds` times. Prints the process's CPU per second of caller audio, all
threads counted, and the event loop's wake-ups a second from another thread (what the executor's
replies cost).

    python -m bench.vad_cost [--seconds 20] [--rounds 3]   # writes bench/results/vad_cost.json
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from livekit import rtc
from livekit.plugins import silero

from agent.livekit_internals import own_vad
from agent.settings import load_settings
from bench import audio
from bench.report import table, write

FRAME_S = 0.05  # LiveKit's room input frames (AudioInputOptions.frame_size_ms)
LINE = "Hi, I'd like to book a drain cleaning for next Tuesday morning, if you have anything open."


async def _feed(vad_obj: Any, pcm: bytes) -> dict[str, float]:
    """Feed `pcm` in real time through one stream of `vad_obj`; the process's CPU and the loop's
    cross-thread wake-ups (call_soon_threadsafe) over it."""
    loop = asyncio.get_running_loop()
    woken = 0
    original = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal woken
        woken += 1
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
    stream = vad_obj.stream()
    frame = int(audio.CALLER_RATE * FRAME_S)
    drained = asyncio.create_task(_drain(stream))
    cpu0, t0 = time.process_time(), time.monotonic()
    try:
        for n, i in enumerate(range(0, len(pcm) // 2 - frame + 1, frame)):
            stream.push_frame(rtc.AudioFrame(pcm[2 * i : 2 * (i + frame)], audio.CALLER_RATE, 1, frame))
            await asyncio.sleep(max(0.0, t0 + (n + 1) * FRAME_S - time.monotonic()))
        stream.end_input()
        await drained
    finally:
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
    seconds = len(pcm) / 2 / audio.CALLER_RATE
    return {"cpu_ms_per_audio_s": (time.process_time() - cpu0) * 1000 / seconds, "wakeups_per_s": woken / seconds}


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def main(seconds: float, rounds: int) -> dict[str, Any]:
    settings = load_settings(openai_api_key="sim")
    line = audio.speech(LINE, "en-us")
    pcm = audio.phone_line(line + bytes(2 * int(max(0.0, seconds - len(line) / 2 / audio.CALLER_RATE) * audio.CALLER_RATE)))
    shared = silero.VAD.load(min_silence_duration=settings.vad_min_silence_duration)
    kinds = {
        "the call's VAD (Silero on the loop, gate at its default)": lambda: own_vad(
            shared, noise_gate_db=settings.noise_gate_db, min_silence=settings.vad_min_silence_duration),
        "LiveKit's Silero stream (executor)": lambda: silero.VAD(session=shared._onnx_session, opts=shared._opts),
    }  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for name, make in kinds.items():
            runs[name].append(await _feed(make(), pcm))
    return {
        "audio_s": round(len(pcm) / 2 / audio.CALLER_RATE, 2), "rounds": rounds, "frame_s": FRAME_S,
        "runs": runs,
        "median": {name: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]} for name, rs in runs.items()},
    }  # fmt: skip


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="caller audio per run (a request, then silence)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.seconds < 6 or args.rounds < 1:
        parser.error("--seconds must be at least 6 (the request) and --rounds at least 1")
    result = asyncio.run(main(args.seconds, args.rounds))
    path = write("vad_cost", result, quick=False)
    table(f"the caller's VAD, {result['audio_s']} s of caller audio in real time, median of {args.rounds} rounds",
          ["VAD", "CPU ms per audio s", "loop wake-ups from threads / s"],
          [[name, m["cpu_ms_per_audio_s"], m["wakeups_per_s"]] for name, m in result["median"].items()])  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    cli()
