"""Turn taking through the real phone path: a subset of both turn corpora played by sipp callers
through livekit-sip and livekit-server to a receptionist worker in `start` mode, with its shipped
defaults (or `--turn-model`), against the Realtime simulator at a 600 ms model delay and a 500 ms
transcriber, as bench.turn_taking's phone-channel points are.

One call per turn: the greeting asks the turn's question ("What's the best phone number to reach
you?"), the caller plays the turn's phone-channel audio (300-3400 Hz, G.711) as RTP, and what comes back
is judged at the caller's ear: agent voice arriving while the caller is still mid-turn is a cut-off;
otherwise the gap is the end of the caller's voice to the first loud agent packet. Then the same turns
are played in process, as bench.turn_taking plays them (same audio, settings and simulator delays, the
session's audio handed to it directly), and each turn is set beside itself, so what the SIP leg adds
shows turn by turn: jitter buffers, resampling, Opus both ways. Each answered turn's gap is split at
the simulator (bench.turn_taking.gap_split): before the reply is asked for (the caller's audio reaching
the agent, its VAD and turn decision), the model, and after its first audio (the way back to the ear).

`python -m bench.turn_sip [--per-material 8] [--turn-model v1-mini]`; writes
bench/results/turn_sip[-v1-mini].json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import open_turns, turn_corpus
from bench import turn_taking as tt
from bench.audio import resample
from bench.calls import SimulatorThread, quiet_logs, vad_model
from bench.report import table, write
from bench.turn_corpus import CorpusTurn, prompt, transcribed_parts, turn_audio
from simulator.postgres import migrated_database
from simulator.script import to_steps
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.stack import PhoneStack, running_stack
from tests.phone.harness import Call, place_call
from tests.phone.rtp import PCMU, SAMPLE_RATE, VOICE_RMS, rms, ulaw_decode
from tests.phone.worker import receptionist_worker

MODEL_DELAY_MS = 600
TRANSCRIPTION_MS = 500
PLUMBING = "+15035550100"
AGENT_NAME = "receptionist-turn-sip"
GREETING = "Thanks for calling Rose City Plumbing, this is the AI assistant."
READBACK = "Thanks, I have that. Anything else?"
ANSWER_WITHIN_S = 6.0  # after the caller's last syllable, as bench.turn_taking waits
IN_PROCESS_CALLS = 2  # sessions at once for the in-process run of the same turns (the SIP calls run one at a time)


def subset(per_material: int) -> list[tuple[str, CorpusTurn, bytes]]:
    """(material, turn, 8 kHz phone-channel PCM): the first `per_material` turns of each kind-ordered
    corpus taken round-robin over its kinds, so numbers, codes, spellings and addresses all appear."""
    out = []
    for material, (root, turns) in (("dictation", turn_corpus.build()), ("open", open_turns.build())):
        kinds: dict[str, list[CorpusTurn]] = {}
        for t in turns:
            kinds.setdefault(t.kind, []).append(t)
        picked: list[CorpusTurn] = []
        while len(picked) < per_material and any(kinds.values()):
            for queue in kinds.values():
                if queue and len(picked) < per_material:
                    picked.append(queue.pop(0))
        for t in picked:
            pcm, rate = turn_audio(root, t, "phone")
            if rate != SAMPLE_RATE:
                pcm = resample(pcm, rate, SAMPLE_RATE)
            out.append((material, t, pcm))
    return out


def _voiced_at(call: Call, since: float, until: float | None = None) -> float | None:
    """Arrival of the first loud agent packet in [since, until)."""
    assert call.rtp is not None
    for p in list(call.rtp.packets):
        if p.at >= since and (until is None or p.at < until) and p.payload_type == PCMU:
            if rms(ulaw_decode(p.payload)) > VOICE_RMS:
                return p.at
    return None


async def one_turn(
    stack: PhoneStack, sim: RealtimeSimulator, turn: CorpusTurn, pcm: bytes, caller: str, rng: random.Random
) -> dict[str, Any]:
    script = sim.script(DEFAULT_KEY)
    script.steps[script.cursor :] = to_steps(
        [{"say": f"{GREETING} {prompt(turn)}"}] + [{"say": READBACK}] * 8
    )
    async with place_call(stack, to=PLUMBING, from_=caller, max_seconds=120) as call:
        await call.wait_for_voice(within=60)
        await call.wait_agent_done(quiet_s=1.0, within=60)
        await asyncio.sleep(rng.uniform(0.4, 0.8))
        end_s = next(s.at_s for s in turn.silences if s.label == "end")
        parts = transcribed_parts(turn)
        sim.queue_transcript(turn.text, key=DEFAULT_KEY, parts=parts)
        assert call.rtp is not None
        await call.rtp.wait_sent()  # only the silence clock is running: the turn starts on the next packet
        start = time.time()
        call.rtp.queue_pcm(pcm)
        end = start + end_s
        await call.rtp.wait_sent()
        await asyncio.sleep(max(0.0, end + ANSWER_WITHIN_S - time.time()))
        cut_at = _voiced_at(call, start, end - tt._ONSET_SLACK_S)
        heard = None if cut_at is not None else _voiced_at(call, end - tt._ONSET_SLACK_S)
        await call.hangup()
    wall = time.time() - time.monotonic()  # the caller's packets are timed on the wall clock, the simulator's events not
    split = None if heard is None else tt.gap_split(sim.events, DEFAULT_KEY, end - wall, heard - wall)
    cut_after = None if cut_at is None else round(cut_at - start, 2)
    return {
        "turn": turn.name, "kind": turn.kind, "holds": sum(s.label == "hold" for s in turn.silences),
        "cut_after_s": cut_after, "in_hold": None if cut_after is None else tt._hold_cut(turn, cut_after),
        "gap_ms": None if heard is None else round((heard - end) * 1000), "gap_split": split,
    }  # fmt: skip


async def in_process(turns: list[tuple[str, CorpusTurn, bytes]], turn_model: str | None) -> dict[str, dict[str, Any]]:
    """turn name -> the same turn played in process (bench.turn_taking's harness: LiveKit's room input
    bypassed, the simulated phone channel's audio handed straight to the session), same settings, same
    simulator delays, this session: the baseline the SIP figures are set beside."""
    flavour = tt.OURS_V1_MINI if turn_model == "v1-mini" else tt.OURS
    quiet_logs()
    tt.warm_script_voice([t for _, t, _ in turns])
    vad_model(flavour.settings.vad_min_silence_duration)
    simt = SimulatorThread(model_delay_ms=MODEL_DELAY_MS, transcription_delay_ms=TRANSCRIPTION_MS)
    simt.start()
    try:
        audio = [(t, tt._to_caller_rate(pcm, SAMPLE_RATE)) for _, t, pcm in turns]
        point = await tt.run_point(simt, flavour, audio, IN_PROCESS_CALLS)
    finally:
        simt.stop()
    return {r["turn"]: r for r in point["per_turn"]}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    gaps = [r["gap_ms"] for r in rows if r["gap_ms"] is not None]
    splits = [r["gap_split"] for r in rows if r.get("gap_split")]
    return {
        "turns": len(rows), "turns_cut": sum(r["cut_after_s"] is not None for r in rows),
        "failed": sum("error" in r for r in rows),
        "unanswered": sum(r["cut_after_s"] is None and r["gap_ms"] is None and "error" not in r for r in rows),
        "gap_ms_p50": statistics.median(gaps) if gaps else None, "gap_ms_max": max(gaps, default=None),
        # the gap's parts (bench.turn_taking.gap_split), each a median over the answered turns
        "gap_split_p50": {part: statistics.median(x[part] for x in splits) if splits else None
                          for part in ("ask_ms", "model_ms", "out_ms")},
    }  # fmt: skip


async def main(per_material: int, turn_model: str | None) -> dict[str, Any]:
    turns = subset(per_material)
    rng = random.Random(14)
    run_dir = Path(tempfile.mkdtemp(prefix="turn-sip-"))
    rows: list[dict[str, Any]] = []
    async with migrated_database("turnsip") as dsn:
        env = {"LOG_LEVEL": "INFO", "RECORDINGS_DIR": str(run_dir / "recordings"),
               **({"TURN_MODEL": turn_model} if turn_model else {})}
        async with RealtimeSimulator(model_delay_ms=MODEL_DELAY_MS, transcription_delay_ms=TRANSCRIPTION_MS) as sim:
            sim.add_script(DEFAULT_KEY, [])
            with running_stack(run_dir) as stack, receptionist_worker(
                stack, agent_name=AGENT_NAME, openai_base_url=sim.base_url, database_url=dsn,
                log=run_dir / "worker.log", extra_env=env, within=180,
            ):  # fmt: skip
                for n, (material, turn, pcm) in enumerate(turns):
                    try:
                        row = await one_turn(stack, sim, turn, pcm, f"+1503556{n:04d}", rng)
                    except Exception as e:  # a call that failed is reported, and the run goes on
                        row = {"turn": turn.name, "kind": turn.kind, "cut_after_s": None, "gap_ms": None,
                               "error": f"{type(e).__name__}: {str(e)[:200]}"}  # fmt: skip
                    rows.append({"material": material, **row})
                    print(f"{material:9s} {turn.name:12s} cut_after={row['cut_after_s']} gap_ms={row['gap_ms']}",
                          flush=True)
    baseline = await in_process(turns, turn_model)
    compared = []
    for r in rows:
        o = baseline.get(r["turn"])
        compared.append({**r, "in_process": None if o is None else
                         {"cut_after_s": o["cut_after_s"], "gap_ms": o["gap_ms"], "gap_split": o["gap_split"]}})
    return {
        "what": "a subset of both turn corpora over real SIP (sipp -> livekit-sip -> livekit-server -> worker in "
                "start mode), one call per turn after the agent's question; judged at the caller's ear",
        "model_delay_ms": MODEL_DELAY_MS, "transcription_delay_ms": TRANSCRIPTION_MS,
        "turn_model": turn_model or "none", "in_process_calls_at_once": IN_PROCESS_CALLS,
        "by_material": {m: {"sip": _summary([r for r in compared if r["material"] == m]),
                            "in_process_same_turns": _summary([
                                r["in_process"]
                                for r in compared if r["material"] == m and r["in_process"]])}
                        for m in ("dictation", "open")},
        "per_turn": compared,
    }  # fmt: skip


def _parts(split: dict[str, int] | None) -> str:
    return "-" if not split else f"{split['ask_ms']}/{split['model_ms']}/{split['out_ms']}"


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-material", type=int, default=8, help="turns from each corpus")
    parser.add_argument("--turn-model", choices=["v1-mini"], default=None, help="the worker's TURN_MODEL")
    args = parser.parse_args()
    result = asyncio.run(main(args.per_material, args.turn_model))
    name = "turn_sip" + (f"-{args.turn_model}" if args.turn_model else "")
    path = write(name, result, quick=False)
    rows = []
    for r in result["per_turn"]:
        o = r["in_process"] or {}
        rows.append([r["material"], r["turn"], r["cut_after_s"], r["gap_ms"], _parts(r.get("gap_split")),
                     o.get("cut_after_s"), o.get("gap_ms"), _parts(o.get("gap_split"))])
    table(f"turn taking over SIP vs in process (model {MODEL_DELAY_MS} ms, transcriber {TRANSCRIPTION_MS} ms)",
          ["material", "turn", "SIP cut after s", "SIP gap ms", "ask/model/out ms",
           "in-process cut after s", "in-process gap ms", "ask/model/out ms"], rows)  # fmt: skip
    for m, s in result["by_material"].items():
        print(f"{m}: SIP {s['sip']}; in process, same turns {s['in_process_same_turns']}")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    cli()
