"""Yield on resume, measured: `python -m bench.yield_on_resume [--quick]`.

Each turn of the human-speech corpus (bench/turn_corpus.py: one recorded voice dictating numbers,
codes, spellings, emails, house numbers) is played as a caller who gives all but the last group,
pauses long enough to end the turn (past the 1.2 s dictation delay), and says the last group 0-300 ms
after the agent's reply became audible (the VAD hears them ~0.1 s later: inside the 0.5 s window). Real
sessions, real Silero VAD, the Realtime simulator at a 300 ms model delay, in real time, one call at a
time. For YIELD_WINDOW at its default and off (the usual barge-in):

- overlap: the caller's resumed speech onset -> the agent's audio falling silent, p50 / p95;
- stopped in time: the agent fell silent before the caller finished the resumed group;
- whole turn: the reply the caller finally heard was asked for with both parts committed and nothing
  of the agent's between the question and it (the cut reply deleted, not truncated and kept).

Writes bench/results/yield_on_resume[-quick].json. The groups are spoken through the scenario
runner's splicer (the corpus's words and voice, clean channel; the pauses between the first groups
are the corpus's, capped at 0.8 s so that only the planned pause ends the turn).
"""

from __future__ import annotations

import random
from typing import Any

from agent.settings import load_settings
from bench import report
from bench.calls import quiet_logs, stats
from bench.turn_corpus import PROMPTS, CorpusTurn, plan
from simulator.recordings import asterisk_sounds
from simulator.runner import simulate
from simulator.scenario import Scenario
from simulator.server import RealtimeSimulator

GREETING = "Thanks for calling Rose City Plumbing, this is the AI assistant."
EARLY_REPLY = "Thanks, I have that so far. Is there more?"
READBACK = "Thanks, I have all of it."
MAX_HOLD_MS = 800  # below the dictation delay: only the planned pause ends the first part
RESUME_MS = (0, 300)  # how far into the reply's audio the caller goes on
SETTINGS = {"yield 0.5 s (default)": 0.5, "yield off (usual barge-in)": 0.0}


def scenario(turn: CorpusTurn, resume_ms: int) -> Scenario:
    first, last = turn.groups[:-1], turn.groups[-1]
    return Scenario.model_validate({
        "name": f"yield {turn.name}",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": f"{GREETING} {PROMPTS[turn.kind]}"}],
        "turns": [
            {"caller": " ... ".join(first), "voice": "recorded",
             "pauses_ms": [min(p, MAX_HOLD_MS) for p in turn.pauses_ms[: len(first) - 1]],
             "model": [{"say": EARLY_REPLY}]},
            {"caller": last, "voice": "recorded", "barge_in_ms": resume_ms, "model": [{"say": READBACK}]},
            {"pause_before_ms": 1200, "hangup": True},
        ],
    })  # fmt: skip


async def one_call(sim: RealtimeSimulator, turn: CorpusTurn, resume_ms: int, window: float) -> dict[str, Any]:
    settings = load_settings(openai_api_key="sim", yield_window=window)
    call = await simulate(scenario(turn, resume_ms), audio=True, sim=sim, settings=settings)
    first, resumed = call.spoken[-2], call.spoken[-1]
    cut = next((h for h in call.heard if h["started"] <= resumed["started"]
                and (h["ended"] is None or h["ended"] > resumed["started"])), None)  # fmt: skip
    stop = next((s for s in (cut or {}).get("stops", []) if s >= resumed["started"]), None)
    answers = [a for a in sim.asked if a.key == call.sim_key and a.said == READBACK]
    whole = False
    if len(answers) == 1:
        items = answers[0].items
        start = max((i for i, item in enumerate(items) if PROMPTS[turn.kind] in item["text"]), default=-1)
        after = items[start + 1 :]
        spoken_ms = (first["ended"] - first["started"] + resumed["ended"] - resumed["started"]) * 1000
        whole = all(i["role"] == "user" for i in after) and sum(i["audio_ms"] for i in after) >= spoken_ms
    return {
        "turn": turn.name,
        "resume_ms": resume_ms,
        "resumed_into_reply": cut is not None,
        "overlap_ms": round((stop - resumed["started"]) * 1000, 1) if stop is not None else None,
        "stopped_before_caller_finished": stop is not None and stop < resumed["ended"],
        "answers_heard": len(answers),
        "whole_turn_answered": whole,
        "passed": call.passed,
    }


async def run(quick: bool, *, seed: int = 14) -> dict[str, Any]:
    quiet_logs()
    asterisk_sounds()
    turns = plan()
    if quick:
        turns = turns[::4]
    rng = random.Random(seed)
    offsets = [rng.randint(*RESUME_MS) for _ in turns]
    points = []
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        for name, window in SETTINGS.items():
            calls = []
            for turn, offset in zip(turns, offsets, strict=True):
                calls.append(await one_call(sim, turn, offset, window))
                print(f"  {name}: {turn.name}: {calls[-1]}", flush=True)
            into = [c for c in calls if c["resumed_into_reply"]]
            points.append({
                "setting": name,
                "yield_window_s": window,
                "calls": len(calls),
                "resumed_into_reply": len(into),
                "overlap_ms": stats([c["overlap_ms"] for c in into if c["overlap_ms"] is not None]),
                "stopped_before_caller_finished": sum(c["stopped_before_caller_finished"] for c in into),
                "whole_turn_answered": sum(c["whole_turn_answered"] for c in into),
                "each": calls,
            })  # fmt: skip
    print_rows(points)
    return {"model_delay_ms": 300, "resume_ms_range": list(RESUME_MS), "turns": len(turns), "points": points}


def print_rows(points: list[dict[str, Any]]) -> None:
    report.table(
        "yield on resume: caller goes on 0-300 ms into the reply (recorded voice, model 300 ms)",
        ["setting", "calls", "overlap p50 ms", "p95 ms", "stopped before caller finished", "whole turn answered"],
        [[p["setting"], p["resumed_into_reply"], p["overlap_ms"]["p50"], p["overlap_ms"]["p95"],
          f"{p['stopped_before_caller_finished']}/{p['resumed_into_reply']}",
          f"{p['whole_turn_answered']}/{p['resumed_into_reply']}"] for p in points],
    )  # fmt: skip


def main() -> None:
    report.main("yield_on_resume", __doc__, run, quick="every fourth corpus turn")


if __name__ == "__main__":
    main()
