"""Premature end of turn: on caller turns with natural 600-900 ms pauses (numbers in groups, "um, let me
check", addresses), how often the agent commits the turn and asks for a reply before the caller is done."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from bench import report
from bench.audio import CallerTurn, paused_corpus
from bench.calls import (
    GREETING as GREETING_LINE,
)
from bench.calls import (
    MODEL_DELAY_MS,
    BenchCall,
    Flavour,
    SimulatorThread,
    after,
    script,
    stats,
    timelines,
)

_MARGIN_S = 0.05  # a commit this close to the last syllable is the real end, not a cut

# what a receptionist asks just before each kind of turn (callers dictate numbers because they were
# asked for one); the agent's question is what lets ours wait longer for dictation
_PROMPTS = {
    "phone number": "What's the best phone number to reach you?",
    "address": "What's the address for the visit?",
    "spelling": "Could you spell your last name for me?",
    "reference": "Do you have your confirmation code?",
    "email": "What's your email address?",
    "date": "Which day suits you?",
    "insurance": "Who is your insurance with?",
    "reason": "What seems to be the problem?",
}


def prompted_script(turns: list[CallerTurn]) -> list[dict[str, Any]]:
    """Greeting, then before each turn the question a receptionist would have asked for it."""
    def ask(turn: CallerTurn) -> str:
        kind = turn.name.split(" (")[0].rstrip(" 0123456789")
        return _PROMPTS.get(kind, "How can I help?")

    steps = [{"say": f"{GREETING_LINE} {ask(turns[0])}"}] if turns else [{"say": GREETING_LINE}]
    steps += [{"say": f"Thanks. {ask(t)}"} for t in turns[1:]]
    return steps + [{"say": "Okay."}] * (2 * len(turns) + 4)  # slack for early answers


async def _caller(call: BenchCall, turns: list[CallerTurn], rng: random.Random) -> list[dict[str, Any]]:
    await call.start()
    said = []
    for turn in turns:
        await asyncio.sleep(rng.uniform(0.5, 1.0))
        t = await call.say(turn.text, turn.pcm, answer_within=6.0)
        await call.wait_idle(within=15)
        said.append({"turn": turn.name, "start": t.start, "end": t.end, "heard_voice": t.heard_voice})
    return said


async def run_flavour(
    simt: SimulatorThread, flavour: Flavour, corpus: list[CallerTurn], calls: int, *, seed: int = 7,
    prompted: bool = False,
) -> dict[str, Any]:
    """The whole corpus through `calls` concurrent sessions of `flavour`."""
    rng = random.Random(seed)
    shares = [corpus[i::calls] for i in range(calls)]
    bench_calls = [
        BenchCall(simt, flavour, prompted_script(s) if prompted else script(3 * len(s) + 4)) for s in shares
    ]

    async def one(c: BenchCall, turns: list[CallerTurn], delay: float) -> list[dict[str, Any]]:
        await asyncio.sleep(delay)
        try:
            return await _caller(c, turns, random.Random(rng.random()))
        finally:
            await c.close()

    results = await asyncio.gather(
        *(one(c, s, rng.uniform(0, 2)) for c, s in zip(bench_calls, shares, strict=True))
    )
    tls = timelines(simt.events())
    rows, premature, waits, gaps = [], 0, [], []
    for c, said in zip(bench_calls, results, strict=True):
        tl = tls[c.key]
        for s in said:
            early = [t for t in tl.commits if s["start"] < t < s["end"] - _MARGIN_S]
            cut = bool(early)
            premature += cut
            commit = after(tl.commits, s["end"] - _MARGIN_S)
            if not cut and commit is not None:
                waits.append((commit - s["end"]) * 1000)
            if not cut and s["heard_voice"] is not None:
                gaps.append((s["heard_voice"] - s["end"]) * 1000 - MODEL_DELAY_MS)
            rows.append({"turn": s["turn"], "premature": cut,
                         "cut_after_s": round(early[0] - s["start"], 2) if cut else None})
    n = len(rows)
    return {
        "flavour": flavour.name + (" (asked first)" if prompted else ""),
        "settings": flavour.describe(),
        "turns": n,
        "premature": premature,
        "premature_rate": round(premature / n, 3) if n else None,
        "endpoint_ms_on_paused_turns": stats(waits),
        "gap_ms_on_paused_turns": stats(gaps),
        "per_turn": rows,
    }


async def run(
    simt: SimulatorThread, flavours: list[Flavour], *, quick: bool, calls: int = 6,
    prompted: list[Flavour] | None = None,
) -> dict[str, Any]:
    """Every flavour on the corpus; then `prompted` ones again with the receptionist's question asked
    before each turn (what lets dictation-aware endpointing know a number is coming)."""
    corpus = paused_corpus(voices=("en-gb",) if quick else ("en-gb", "en-us"))
    runs = [(f, False) for f in flavours] + [(f, True) for f in prompted or []]
    out = []
    # two flavours at a time: the corpus is short, and 2x6 sessions leave the cores mostly idle
    for i in range(0, len(runs), 2):
        simt.forget_events()
        out += await asyncio.gather(
            *(run_flavour(simt, f, corpus, calls, prompted=p) for f, p in runs[i : i + 2])
        )
        print_rows(out[-2:], title="premature end of turn, so far")
    print_rows(out)
    return {"corpus": [{"name": t.name, "text": t.text, "pauses_ms": t.pauses_ms, "seconds": round(t.seconds, 2)}
                       for t in corpus], "flavours": out}


def print_rows(out: list[dict[str, Any]], title: str = "premature end of turn on paused caller turns") -> None:
    report.table(
        title,
        ["flavour", "turns", "premature", "rate", "endpoint p50", "endpoint p95", "gap p50", "gap p95"],
        [[r["flavour"], r["turns"], r["premature"], r["premature_rate"], r["endpoint_ms_on_paused_turns"]["p50"],
          r["endpoint_ms_on_paused_turns"]["p95"], r["gap_ms_on_paused_turns"]["p50"],
          r["gap_ms_on_paused_turns"]["p95"]] for r in out],
    )


@report.plot_if_possible
def plot(result: dict[str, Any], *, quick: bool) -> None:
    plt = report.pyplot()
    rows = result["flavours"]
    names = [r["flavour"] for r in rows]
    fig, a = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4))
    a.bar(names, [100 * (r["premature_rate"] or 0) for r in rows], color="tab:red")
    a.set_ylabel("% of paused turns answered too early")
    a.set_title("Premature end of turn (600-900 ms mid-turn pauses)")
    a.tick_params(axis="x", rotation=30, labelsize=7)
    fig.tight_layout()
    fig.savefig(report.plot_path("endpointing", quick=quick), dpi=110)
    plt.close(fig)
