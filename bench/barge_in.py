"""Barge-in: caller speech onset during agent speech -> the agent's audio falls silent (CallerEar stops);
false interruptions: how often noise alone (car, hiss, babble, music, coughs through a phone channel)
pauses or cuts the agent, per 10 minutes of agent speech; and what backchannels ("mhm", "okay") do to
the agent's replies: cut them (the model answers "mhm") or pause them until the agent goes on."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from bench import report
from bench.audio import BARGE_IN_LINES, CALLER_SOUNDS, NOISES, PLAIN_LINES, phone_line, speech
from bench.calls import BenchCall, Flavour, SimulatorThread, script, stats, timelines


async def _barging_caller(call: BenchCall, rounds: int, rng: random.Random) -> list[dict[str, Any]]:
    """Ask, let the agent start its long answer, then talk over it 0.8-2 s in."""
    await call.start()
    out = []
    for i in range(rounds):
        await asyncio.sleep(rng.uniform(0.3, 0.8))
        question = PLAIN_LINES[i % len(PLAIN_LINES)]
        await call.say(question, speech(question))
        voice_at = await call.wait_speaking()
        if voice_at is None:
            out.append({"missed": "agent never spoke"})
            await call.wait_idle()
            continue
        seg = call.ear.segments[-1]
        await asyncio.sleep(rng.uniform(0.8, 2.0))
        line = BARGE_IN_LINES[i % len(BARGE_IN_LINES)]
        turn = await call.say(line, speech(line, "en-us"))
        stopped = seg.stopped_after(turn.start)
        out.append({
            "cut_ms": None if stopped is None else round((stopped - turn.start) * 1000, 1),
            "paused": any(p >= turn.start for p in call.ear.pauses),
            "cut": seg.interrupted,
        })
        await call.wait_idle()
    return out


async def barge_ins(simt: SimulatorThread, flavour: Flavour, calls: int, rounds: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    bench_calls = [BenchCall(simt, flavour, script(4 * rounds + 4, long_every=2)) for _ in range(calls)]

    async def one(c: BenchCall) -> list[dict[str, Any]]:
        await asyncio.sleep(rng.uniform(0, 2))
        try:
            return await _barging_caller(c, rounds, random.Random(rng.random()))
        finally:
            await c.close()

    rows = [r for rs in await asyncio.gather(*(one(c) for c in bench_calls)) for r in rs]
    cuts = [r["cut_ms"] for r in rows if r.get("cut_ms") is not None]
    return {"flavour": flavour.name, "settings": flavour.describe(), "barge_ins": len(rows),
            "not_stopped": sum(1 for r in rows if r.get("cut_ms") is None), "cut_off_ms": stats(cuts),
            "per_barge_in": rows}


async def _noisy_caller(call: BenchCall, noise: bytes) -> None:
    """The agent talks on (one long reply after another) while the caller's line carries only noise,
    from the call's first moment (the caller's surroundings do not start after the greeting)."""
    await call.start(wait_greeting=False)
    noise_done = call.mic.say(noise)
    await call.wait_idle(first=True)
    while not noise_done.done():
        call.session.generate_reply(instructions="Keep explaining.")  # type: ignore[union-attr]
        await call.wait_idle(within=60)


def _per_10min(count: int, speech_s: float) -> float | None:
    return round(count * 600 / speech_s, 1) if speech_s else None


async def noise_only(simt: SimulatorThread, flavour: Flavour, seconds: float, noises: dict[str, bytes]) -> dict[str, Any]:
    """Each caller sound under the agent's non-stop replies. What the caller hears: the agent cut (its
    reply ends, another begins), the agent paused and going on where it stopped, or neither."""
    out = {}
    bench_calls = {name: BenchCall(simt, flavour, script(200, long_every=1)) for name in noises}

    async def one(name: str) -> None:
        c = bench_calls[name]
        try:
            await _noisy_caller(c, noises[name])
        finally:
            await c.close()

    await asyncio.gather(*(one(n) for n in noises))
    tls = timelines(simt.events())
    for name, c in bench_calls.items():
        spoken_s = sum(s.played_s for s in c.ear.segments)
        noise_turns = len(tls[c.key].commits)
        stops = len(c.ear.pauses) + len(c.ear.cuts)
        out[name] = {"seconds": seconds, "agent_speech_s": round(spoken_s, 1), "pauses": len(c.ear.pauses),
                     "cuts": len(c.ear.cuts), "noise_taken_as_turn": noise_turns,
                     "false_interruptions_per_10min": _per_10min(stops, spoken_s),
                     "noise_turns_per_10min": _per_10min(noise_turns, spoken_s)}
    noise = {k: v for k, v in out.items() if k in NOISES}
    most = max(v["agent_speech_s"] for v in noise.values())
    total_s = sum(v["agent_speech_s"] for v in noise.values())
    total = sum(v["pauses"] + v["cuts"] for v in noise.values())
    return {"flavour": flavour.name, "settings": flavour.describe(), "by_noise": out, "agent_speech_s": round(total_s, 1),
            "false_interruptions_per_10min": _per_10min(total, total_s),
            # the agent talked for less than half as long as on its quietest track: the sound held it
            # silent (a stop counted once above)
            "silenced_by": [k for k, v in noise.items() if v["agent_speech_s"] < most / 2]}


async def run(simt: SimulatorThread, flavours: list[Flavour], *, quick: bool) -> dict[str, Any]:
    calls, rounds = (3, 3) if quick else (4, 5)
    seconds = 30.0 if quick else 60.0
    noises = {name: phone_line(make(seconds)) for name, make in CALLER_SOUNDS.items()}
    simt.forget_events()
    # every flavour at once: a few sessions each, far from loading the cores
    barge = await asyncio.gather(*(barge_ins(simt, f, calls, rounds) for f in flavours))
    report.table("barge-in cut-off (caller onset -> agent silent)",
                 ["flavour", "n", "not stopped", "p50 ms", "p95 ms", "max ms"],
                 [[b["flavour"], b["barge_ins"], b["not_stopped"], b["cut_off_ms"]["p50"], b["cut_off_ms"]["p95"],
                   b["cut_off_ms"]["max"]] for b in barge])
    simt.forget_events()
    noise = await asyncio.gather(*(noise_only(simt, f, seconds, noises) for f in flavours))
    report.table(f"caller sounds under {seconds:.0f} s of non-stop agent replies: paused+cut / turns taken / agent s",
                 ["flavour", "noise stops per 10 min", "silenced by", *noises],
                 [[r["flavour"], r["false_interruptions_per_10min"], ", ".join(r["silenced_by"]) or "-",
                   *[f'{v["pauses"]}+{v["cuts"]} / {v["noise_taken_as_turn"]} / {v["agent_speech_s"]:.0f}'
                     for v in r["by_noise"].values()]]
                  for r in noise])
    return {"noise_seconds": seconds, "barge_in": barge, "noise": noise}


@report.plot_if_possible
def plot(result: dict[str, Any], *, quick: bool) -> None:
    plt = report.pyplot()
    barge = result["barge_in"]
    noise = {r["flavour"]: r for r in result["noise"]}
    names = [b["flavour"] for b in barge]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(names, [x["cut_off_ms"]["p50"] or 0 for x in barge], label="p50")
    a.scatter(names, [x["cut_off_ms"]["p95"] or 0 for x in barge], color="k", marker="_", s=200, label="p95")
    a.axhline(250, color="green", lw=0.8, ls="--", label="target p50 250 ms")
    a.set_ylabel("ms (caller onset -> agent silent)")
    a.set_title("Barge-in cut-off")
    a.legend(fontsize=7)
    a.tick_params(axis="x", rotation=30, labelsize=7)
    sounds = list(barge and noise[names[0]]["by_noise"])
    width = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        rows = noise[n]["by_noise"]
        xs = [j + i * width for j in range(len(sounds))]
        b.bar(xs, [rows[k]["cuts"] for k in sounds], width, label=f"{n}: cut")
        b.bar(xs, [rows[k]["pauses"] for k in sounds], width, bottom=[rows[k]["cuts"] for k in sounds],
              fill=False, hatch="//", edgecolor=f"C{i}", label=f"{n}: paused, went on")
    b.set_xticks([j + 0.4 - width / 2 for j in range(len(sounds))], sounds)
    b.set_ylabel(f"times the agent stopped in {result['noise_seconds']:.0f} s")
    b.set_title("Caller sounds under the agent's replies")
    b.legend(fontsize=6)
    b.tick_params(axis="x", rotation=30, labelsize=7)
    fig.tight_layout()
    fig.savefig(report.plot_path("barge_in", quick=quick), dpi=110)
    plt.close(fig)
