"""Side by side, same caller audio, same simulator: our receptionist session, a plain LiveKit 1.8.9
agent with its defaults, and Pipecat (OpenAI Realtime service, local Silero VAD). Each framework runs in
a child process of its own so CPU and memory are its alone."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from livekit import rtc

from bench import report
from bench.audio import BARGE_IN_LINES, PLAIN_LINES, speech
from bench.calls import (
    LIVEKIT_DEFAULT,
    LONG_REPLY,
    MODEL_DELAY_MS,
    OURS,
    BenchCall,
    ResourceMeter,
    SimulatorThread,
    all_model_lines,
    quiet_logs,
    script,
    stats,
    vad_model,
    warm_model_voice,
)

MIC_RATE = 16000  # pipecat's Silero takes 8/16 kHz only; all three get the same 16 kHz line


class PipecatCall(BenchCall):
    """The same caller microphone and ear around a Pipecat pipeline:
    mic -> user aggregator (Silero VAD) -> OpenAIRealtimeLLMService -> ear -> assistant aggregator."""

    settle_s = 1.5  # no agent state to read: idle means the ear has been quiet a while

    async def start(self, *, wait_greeting: bool = True) -> None:
        from pipecat.audio.vad.silero import SileroVADAnalyzer
        from pipecat.frames.frames import (
            InputAudioRawFrame,
            InterruptionFrame,
            LLMRunFrame,
            OutputAudioRawFrame,
            StartFrame,
            TTSStoppedFrame,
        )
        from pipecat.pipeline.pipeline import Pipeline
        from pipecat.pipeline.runner import PipelineRunner
        from pipecat.pipeline.task import PipelineParams, PipelineTask
        from pipecat.processors.aggregators.llm_context import LLMContext
        from pipecat.processors.aggregators.llm_response_universal import (
            LLMContextAggregatorPair,
            LLMUserAggregatorParams,
        )
        from pipecat.processors.frame_processor import FrameProcessor
        from pipecat.services.openai.realtime.events import (
            AudioConfiguration,
            AudioInput,
            InputAudioTranscription,
            SessionProperties,
        )
        from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

        mic, ear = self.mic, self.ear

        class CallerMouth(FrameProcessor):
            def __init__(self) -> None:
                super().__init__()
                self._pump: asyncio.Task[None] | None = None

            async def process_frame(self, frame: Any, direction: Any) -> None:
                await super().process_frame(frame, direction)
                if isinstance(frame, StartFrame) and self._pump is None:
                    self._pump = asyncio.create_task(self._speak())
                await self.push_frame(frame, direction)

            async def _speak(self) -> None:
                async for f in mic:
                    await self.push_frame(InputAudioRawFrame(audio=bytes(f.data), sample_rate=f.sample_rate, num_channels=1))

        class CallerEarSink(FrameProcessor):
            async def process_frame(self, frame: Any, direction: Any) -> None:
                await super().process_frame(frame, direction)
                if isinstance(frame, OutputAudioRawFrame):
                    n = len(frame.audio) // 2
                    await ear.capture_frame(rtc.AudioFrame(frame.audio, frame.sample_rate, frame.num_channels, n))
                elif isinstance(frame, InterruptionFrame):
                    ear.clear_buffer()
                elif isinstance(frame, TTSStoppedFrame):
                    ear.flush()
                await self.push_frame(frame, direction)

        self.simt.sim.add_script(self.key, self.steps)
        url = self.simt.sim.url_for(self.key).replace("http://", "ws://")
        llm = OpenAIRealtimeLLMService(
            api_key="sim",
            base_url=url,
            settings=OpenAIRealtimeLLMService.Settings(
                system_instruction="You are a friendly receptionist. Keep answers short.",
                session_properties=SessionProperties(
                    audio=AudioConfiguration(
                        input=AudioInput(transcription=InputAudioTranscription(), turn_detection=False)
                    )
                ),
            ),
        )
        context = LLMContext([{"role": "developer", "content": "Greet the caller."}])
        user, assistant = LLMContextAggregatorPair(
            context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
        )
        self.task = PipelineTask(
            Pipeline([CallerMouth(), user, llm, CallerEarSink(), assistant]),
            params=PipelineParams(audio_in_sample_rate=MIC_RATE, audio_out_sample_rate=24000),
        )
        self.runner_task = asyncio.create_task(PipelineRunner(handle_sigint=False).run(self.task))
        self.started_at = time.monotonic()
        await asyncio.sleep(0.5)
        await self.task.queue_frames([LLMRunFrame()])
        if wait_greeting:
            await self.wait_idle(first=True)

    async def close(self) -> None:
        self.mic.close()
        try:
            await asyncio.wait_for(self.task.cancel(), 5)
            await asyncio.wait_for(self.runner_task, 5)
        except Exception:  # noqa: BLE001 - a pipeline that will not stop must not hang the benchmark
            self.runner_task.cancel()

    def busy(self) -> bool:
        # no agent state to read: only the ear tells (hence the longer settle_s)
        return self.ear.speaking


FRAMEWORKS = ("ours", "livekit-default", "pipecat")


async def _child(framework: str, calls: int, turns: int, rounds: int) -> dict[str, Any]:
    quiet_logs()
    if framework == "pipecat":
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level="ERROR")
    simt = SimulatorThread()
    simt.start()
    warm_model_voice(all_model_lines())
    lines = [(t, speech(t, "en-gb", MIC_RATE)) for t in PLAIN_LINES]
    barges = [(t, speech(t, "en-us", MIC_RATE)) for t in BARGE_IN_LINES]
    # greeting, a short answer per plain turn, then per round a long answer (talked over) and a short one
    steps = script(turns)[: 1 + turns] + [{"say": LONG_REPLY}, {"say": "Sorry, go ahead."}] * rounds + script(4)[1:]
    make = {"ours": lambda: BenchCall(simt, OURS, steps, mic_rate=MIC_RATE),
            "livekit-default": lambda: BenchCall(simt, LIVEKIT_DEFAULT, steps, mic_rate=MIC_RATE),
            "pipecat": lambda: PipecatCall(simt, OURS, steps, mic_rate=MIC_RATE)}[framework]
    # models and modules every call of the process shares are loaded before the memory baseline
    if framework == "ours":
        vad_model(OURS.settings.vad_min_silence_duration)
    elif framework == "livekit-default":
        from livekit.local_inference import init_eot

        vad_model(None)
        init_eot()
    else:
        import pipecat.audio.vad.silero  # noqa: F401
        import pipecat.services.openai.realtime.llm  # noqa: F401
    rss_before = psutil.Process().memory_info().rss / 2**20
    rng = random.Random(5)
    bench_calls = [make() for _ in range(calls)]
    await asyncio.gather(*(c.start() for c in bench_calls))
    meter = ResourceMeter(simt)
    meter.start()
    gaps: list[float] = []
    cuts: list[float] = []
    missed = 0

    async def caller(c: BenchCall) -> None:
        nonlocal missed
        r = random.Random(rng.random())
        await asyncio.sleep(r.uniform(0, 2))
        for i in range(turns):
            await asyncio.sleep(r.uniform(0.3, 1.0))
            text, pcm = lines[(i + r.randrange(len(lines))) % len(lines)]
            t = await c.say(text, pcm)
            if t.gap_ms is None:
                missed += 1
            else:
                gaps.append(t.gap_ms - MODEL_DELAY_MS)
            await c.wait_idle()
        for i in range(rounds):
            await asyncio.sleep(r.uniform(0.3, 0.8))
            text, pcm = lines[i % len(lines)]
            await c.say(text, pcm)
            if await c.wait_speaking() is None:
                missed += 1
                continue
            seg = c.ear.segments[-1]
            await asyncio.sleep(r.uniform(0.8, 1.5))
            text, pcm = barges[i % len(barges)]
            t = await c.say(text, pcm)
            stopped = seg.stopped_after(t.start)
            if stopped is None:
                missed += 1
            else:
                cuts.append((stopped - t.start) * 1000)
            await c.wait_idle()

    try:
        await asyncio.gather(*(caller(c) for c in bench_calls))
    finally:
        cost = meter.stop()
        await asyncio.gather(*(c.close() for c in bench_calls))
        simt.stop()
    minutes = calls * cost["wall_s"] / 60
    return {
        "framework": framework,
        "calls": calls,
        "gap_ms": stats(gaps),
        "barge_in_ms": stats(cuts),
        "missed": missed,
        "cost": cost,
        "cpu_s_per_call_minute": round(cost["cpu_s"] / minutes, 3),
        "rss_before_mb": round(rss_before, 1),
        "mb_per_call": round((cost["rss_peak_mb"] - rss_before) / calls, 1),
    }


def run(*, quick: bool) -> dict[str, Any]:
    calls, turns, rounds = (4, 2, 1) if quick else (10, 3, 2)
    out: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for fw in FRAMEWORKS:
        path = Path(f"/tmp/bench-compare-{fw}.json")
        path.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "bench.compare", "--child", fw, "--calls", str(calls), "--turns", str(turns),
               "--rounds", str(rounds), "--out", str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not path.exists():
            failures[fw] = f"{' '.join(cmd)} -> exit {proc.returncode}: {proc.stderr[-1500:]}"
            print(f"compare: {fw} failed:\n{failures[fw]}", file=sys.stderr)
            continue
        out[fw] = json.loads(path.read_text())
    rows = [[fw, r["gap_ms"]["p50"], r["gap_ms"]["p99"], r["barge_in_ms"]["p50"], r["barge_in_ms"]["p95"],
             r["cpu_s_per_call_minute"], r["mb_per_call"], r["missed"]] for fw, r in out.items()]
    report.table(f"side by side ({calls} concurrent calls each, same caller audio, model delay subtracted)",
                 ["framework", "gap p50", "gap p99", "barge p50", "barge p95", "cpu s/call-min", "MB/call", "missed"],
                 rows)
    ratios = {}
    if "ours" in out:
        ours = out["ours"]
        for fw, r in out.items():
            if fw == "ours":
                continue
            div = lambda a, b: round(a / b, 2) if a is not None and b else None  # noqa: E731
            ratios[fw] = {
                "gap_p50": div(ours["gap_ms"]["p50"], r["gap_ms"]["p50"]),
                "gap_p99": div(ours["gap_ms"]["p99"], r["gap_ms"]["p99"]),
                "barge_in_p50": div(ours["barge_in_ms"]["p50"], r["barge_in_ms"]["p50"]),
                "cpu_per_call_minute": div(ours["cpu_s_per_call_minute"], r["cpu_s_per_call_minute"]),
                "mb_per_call": div(ours["mb_per_call"], r["mb_per_call"]),
            }
        report.table("ours / theirs (below 1 = ours is lower)", ["vs", "gap p50", "gap p99", "barge p50", "cpu", "memory"],
                     [[fw, *v.values()] for fw, v in ratios.items()])
    return {
        "calls": calls, "turns": turns, "barge_in_rounds": rounds, "mic_rate": MIC_RATE,
        "frameworks": out, "ratios_ours_over_theirs": ratios, "failures": failures,
        "not_like_for_like": [
            "ours runs the full receptionist (brain-rendered instructions, 10+ tools, call keeper, grounding "
            "guard); the plain LiveKit agent and Pipecat have a one-line prompt and no tools",
            "plain LiveKit 1.8.9 defaults use the local audio end-of-turn model (TurnDetector v1-mini), which "
            "on espeak-ng speech mostly says 'not finished' and waits the 2.5 s max delay",
            "Pipecat's output goes straight into CallerEar (its own output transport pacing is bypassed), "
            "and its idle detection uses a 1.5 s quiet settle since it exposes no agent state",
            "Pipecat's Silero runs on every 16 kHz frame in the pipeline; LiveKit's runs in an executor",
            "ours requests the reply speculatively when the caller pauses (0.15 s) and plays it at the end "
            "of the turn (0.45 s), hiding up to the model's delay; Pipecat ends the turn after its VAD's "
            "0.2 s stop time and requests the reply then; plain LiveKit does neither",
        ],
    }


@report.plot_if_possible
def plot(result: dict[str, Any], *, quick: bool) -> None:
    plt = report.pyplot()
    fw = result["frameworks"]
    names = list(fw)
    if not names:
        return
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for ax, (title, get) in zip(axes, [
        ("response gap p50 / p99 (ms)", lambda r: (r["gap_ms"]["p50"], r["gap_ms"]["p99"])),
        ("barge-in p50 / p95 (ms)", lambda r: (r["barge_in_ms"]["p50"], r["barge_in_ms"]["p95"])),
        ("CPU s per call-minute", lambda r: (r["cpu_s_per_call_minute"], None)),
        ("MB per call", lambda r: (r["mb_per_call"], None)),
    ], strict=True):
        vals = [get(fw[n]) for n in names]
        ax.bar(names, [v[0] or 0 for v in vals])
        if any(v[1] for v in vals):
            ax.scatter(names, [v[1] or 0 for v in vals], color="k", marker="_", s=300)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", rotation=20, labelsize=8)
    fig.tight_layout()
    fig.savefig(report.plot_path("compare", quick=quick), dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--child", choices=FRAMEWORKS)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.child:
        result = asyncio.run(_child(args.child, args.calls, args.turns, args.rounds))
        Path(args.out).write_text(json.dumps(result, indent=2))
        sys.stdout.flush()
        os._exit(0)  # leftover framework threads must not keep the child alive
    result = run(quick=args.quick)
    print("wrote", report.write("compare", result, quick=args.quick))
    plot(result, quick=args.quick)


if __name__ == "__main__":
    main()
