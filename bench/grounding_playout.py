"""Grounding guard before playout: audio calls against the Realtime simulator (audio sent 4x faster
than real time, words in step with it, as the real API streams) in which the model follows true
sentences with a false one. Counts the false claims cut before the caller heard any of them, and how
long the guard's checks hold the event loop: one per complete sentence, one per word of the sentence
under way (the audio never waits for them). The same openers followed by true claims measure what
true sentences pay: the silence held before a sentence whose words were still arriving when it was
due to play (agent/playout_gate.py), and whether any true reply was cut.

    python -m bench.grounding_playout     # ~15 s a call; writes bench/results/grounding_playout.json
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from agent.brain import load_brain
from agent.brain.grounding import check_latest_sentence, check_sentence_under_way, sentences
from agent.metrics import GUARD_HOLDS
from agent.playout_gate import HOLD_MAX_S
from bench.report import table, write
from simulator.runner import simulate
from simulator.scenario import Scenario
from simulator.server import RealtimeSimulator
from simulator.speech import MODEL_SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "scenarios" / "guard-stopped-before-heard.yaml"
BYTES_PER_MS = MODEL_SAMPLE_RATE * 2 / 1000  # the model's PCM16 mono

# (true sentences said first, the false one, what the caller asked)
REPLIES = [
    ("Sure.", "We're open on Sundays from 9 AM to 5 PM.", "Are you open on Sundays?"),
    ("Good question.", "We open at 9 on weekdays.", "When do you open?"),
    ("Let me see.", "A drain cleaning is about $60.", "How much is a drain cleaning?"),
    ("Thanks for asking, I can help with that.", "We're open every day until 8 PM.", "What are your hours?"),
    ("Yes, we can help with that, and I can book it for you today.", "I have an opening on Sunday at 10 AM.",
     "Can someone come on the weekend?"),
    ("Happy to help.", "We also do sewer line replacement.", "Do you replace sewer lines?"),
    ("Of course. Our technicians are licensed and insured, and they bring the parts with them.",
     "The plumbing inspection is free.", "How much is an inspection?"),
    ("Sure thing.", "We're open on Christmas from 7 to 6.", "Are you open on Christmas?"),
    ("Okay.", "Water heater installation is around $500.", "What does a new water heater cost?"),
    ("Let me check the schedule for you.", "We close at 9 tonight.", "How late are you open?"),
]


# the same openers, each followed by a claim the brain bears out (plumbing brain, Tuesday 10 AM)
TRUE_REPLIES = [
    ("Sure.", "We're open on Saturdays from 8 AM to noon.", "Are you open on Saturdays?"),
    ("Good question.", "We open at 7 on weekdays.", "When do you open?"),
    ("Let me see.", "A drain cleaning is about $120 to $150.", "How much is a drain cleaning?"),
    ("Thanks for asking, I can help with that.", "We're open weekdays until 6 PM.", "What are your hours?"),
    ("Yes, we can help with that, and I can book it for you today.", "I have an opening on Saturday at 10 AM.",
     "Can someone come on the weekend?"),
    ("Happy to help.", "We also do water heater repair.", "Do you fix water heaters?"),
    ("Of course. Our technicians are licensed and insured, and they bring the parts with them.",
     "The plumbing inspection is $89.", "How much is an inspection?"),
    ("Sure thing.", "We're closed on Christmas.", "Are you open on Christmas?"),
    ("Okay.", "Water heater installation is around $1,200 to $2,800.", "What does a new water heater cost?"),
    ("Let me check the schedule for you.", "We close at 6 tonight.", "How late are you open?"),
]


def _scenario(before: str, claim: str, asked: str, *, true: bool = False) -> Scenario:
    raw = yaml.safe_load(TEMPLATE.read_text())
    raw["name"] = f"playout: {claim}"
    raw["turns"][0]["caller"] = asked
    raw["turns"][0]["model"] = [{"say": f"{before} {claim} Anything else I can help you with?"}]
    if true:
        raw["expect"] = {"said": [claim.lower()]}
    else:
        raw["turns"][0]["model"].append(
            {"say": "Sorry, correction: that was wrong, let me give you the right information."}
        )
        raw["expect"] = {"said": ["sorry, correction"]}
    return Scenario.model_validate(raw)


def _held_s() -> tuple[float, float]:
    """(total silence held, holds) so far in this process."""
    held = {s.name: s.value for s in GUARD_HOLDS.collect()[0].samples}
    return held["receptionist_guard_hold_seconds_sum"], held["receptionist_guard_hold_seconds_count"]


def claim_and_cut_ms(sim: RealtimeSimulator, key: str, before: str) -> tuple[float, float] | None:
    """(where the claim starts in its message's audio, where that audio was cut; inf if never), in ms.
    From the simulator's own stream (each word goes out with the audio chunk it is spoken in) and the
    plugin's truncate of the message, which it sends for what was played."""
    text, sent_ms, item = "", 0.0, None
    for e in sim.server_events(key=key):
        kind = e.get("type")
        if kind == "response.created":
            text, sent_ms, item = "", 0.0, None
        elif kind == "response.output_audio.delta":
            sent_ms += e["delta"] / BYTES_PER_MS
        elif kind == "response.output_audio_transcript.delta":
            text += e["delta"]
            item = e["item_id"]
            if text.strip().startswith(before) and len(text.strip()) > len(before):
                cuts = [t["audio_end_ms"] for t in sim.client_events("conversation.item.truncate", key=key)
                        if t["item_id"] == item]  # fmt: skip
                return sent_ms, (cuts[0] if cuts else float("inf"))
    return None


async def _calls(count: int) -> list[dict[str, Any]]:
    rows = []
    async with RealtimeSimulator() as sim:
        for before, claim, asked in (REPLIES * ((count + len(REPLIES) - 1) // len(REPLIES)))[:count]:
            held_before = _held_s()
            report = await simulate(_scenario(before, claim, asked), audio=True, sim=sim)
            # the guard records what it judged: the whole sentence, or its words so far when it cut earlier
            caught = [v for v in report.violations if claim.startswith(v["claim"])]
            claim_ms, cut_ms = claim_and_cut_ms(sim, report.sim_key, before) or (None, None)
            rows.append({
                "claim": claim, "true_before": before, "caught": bool(caught),
                # heard: the audio played past the claim's first word (the simulator's clock)
                "heard": claim_ms is None or cut_ms > claim_ms, "claim_starts_ms": claim_ms, "cut_at_ms": cut_ms,
                # what LiveKit's transcript, paced to the audio by estimate, records as heard
                "transcript_heard": caught[0]["heard"] if caught else None,
                "heard_text": next((t["text"] for t in report.transcript if t["role"] == "agent"
                                    and t["text"].startswith(before.split()[0]) and t["interrupted"]), None),
                "held_ms": round((_held_s()[0] - held_before[0]) * 1000),
            })  # fmt: skip
            print(f"{'heard' if rows[-1]['heard'] else 'stopped'}: {claim} {claim_ms} {cut_ms}", flush=True)
    return rows


async def _true_calls() -> list[dict[str, Any]]:
    """True replies behind the same openers: each must play whole; how long the gate held them."""
    rows = []
    async with RealtimeSimulator() as sim:
        for before, claim, asked in TRUE_REPLIES:
            held_before = _held_s()
            report = await simulate(_scenario(before, claim, asked, true=True), audio=True, sim=sim)
            held, holds = (a - b for a, b in zip(_held_s(), held_before, strict=True))
            reply = next(t for t in report.transcript if t["role"] == "agent" and t["text"].startswith(before))
            rows.append({
                "claim": claim, "true_before": before, "played_whole": not reply["interrupted"] and claim in reply["text"],
                "false_alarms": len(report.violations), "held_ms": round(held * 1000), "holds": int(holds),
            })  # fmt: skip
            print(f"true: {claim} held {rows[-1]['held_ms']} ms, whole: {rows[-1]['played_whole']}", flush=True)
    return rows


def _check_time_ms() -> dict[str, dict[str, float]]:
    """The guard's work on the call's loop as each reply's transcript streams word by word: one check
    of the sentence under way per word, one of each sentence once it is complete."""
    brain = load_brain(ROOT / "brains" / "plumbing.yaml")
    from datetime import datetime

    now = datetime.fromisoformat(yaml.safe_load(TEMPLATE.read_text())["clock"])
    per_word, per_sentence = [], []
    for _ in range(20):
        for before, claim, _ in REPLIES:
            words = f"{before} {claim} Anything else I can help you with?".split(" ")
            complete = 0
            for k in range(1, len(words) + 1):
                said = sentences(" ".join(words[:k]))
                if len(said) - 1 > complete:  # this word began a sentence: the one before is complete
                    complete = len(said) - 1
                    t = time.perf_counter()
                    check_latest_sentence(brain, said[:-1], now)
                    per_sentence.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                check_sentence_under_way(brain, said[:-1], said[-1], now)
                per_word.append((time.perf_counter() - t) * 1000)

    def spread(times: list[float]) -> dict[str, float]:
        times.sort()
        return {"median_ms": round(statistics.median(times), 3), "p99_ms": round(times[int(0.99 * (len(times) - 1))], 3)}

    return {"sentence": spread(per_sentence), "word": spread(per_word)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=len(REPLIES))
    args = parser.parse_args()
    rows = asyncio.run(_calls(args.calls))
    true_rows = asyncio.run(_true_calls())
    caught = [r for r in rows if r["caught"]]
    stopped = [r for r in rows if r["caught"] and not r["heard"]]
    share = round(len(stopped) / len(rows), 3) if rows else None
    check = _check_time_ms()
    table("false claims in audio calls (simulator, audio 4x faster than real time)",
          ["calls", "caught", "stopped before heard", "share stopped", "check/sentence median ms",
           "p99 ms", "check/word median ms", "p99 ms"],
          [[len(rows), len(caught), len(stopped), share, check["sentence"]["median_ms"], check["sentence"]["p99_ms"],
            check["word"]["median_ms"], check["word"]["p99_ms"]]])  # fmt: skip
    held = sorted(r["held_ms"] for r in true_rows)
    true_summary = {
        "replies": len(true_rows), "played_whole": sum(r["played_whole"] for r in true_rows),
        "false_alarms": sum(r["false_alarms"] for r in true_rows),
        "held": sum(1 for h in held if h > 0), "held_ms_median": statistics.median(held) if held else None,
        "held_ms_max": held[-1] if held else None,
    }  # fmt: skip
    table("true replies behind the same openers (the silence held before a sentence still arriving)",
          ["replies", "played whole", "false alarms", "held", "held ms median", "held ms max"],
          [[true_summary[k] for k in ("replies", "played_whole", "false_alarms", "held", "held_ms_median",
                                      "held_ms_max")]])  # fmt: skip
    path = write("grounding_playout", {"calls": len(rows), "caught": len(caught), "stopped_before_heard": len(stopped),
                 "share_stopped_before_heard": share, "check_per_sentence": check["sentence"],
                 "check_per_word": check["word"], "hold_max_s": HOLD_MAX_S, "true_replies": true_summary,
                 "per_call": rows, "per_true_reply": true_rows}, quick=False)  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
