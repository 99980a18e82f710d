"""What moving booking into a LiveKit task costs: the booking call (tests/scenarios/book-drain-cleaning.yaml)
played through the real session and plugin against our Realtime simulator, on this checkout and on a
base commit (the last one before the booking task), side by side in one session on one machine.

The base runs twice: its own booking call (which booked without reading the details back, so the
caller had one turn fewer), and the same caller's words as today's call
(bench/scenarios/book-drain-cleaning-same-words.yaml: the read-back said in prose, then the caller's
yes), which is the comparison of the task's cost on one conversation.

Per version: the response gap of each caller turn (audio runs: end of the caller's speech -> the
agent's first audio, minus the simulator's model delay), the process CPU per call (text runs: no
real-time waits), and what the switch sends the model (each `session.update`: instructions and tools,
in bytes), plus how long the switch takes in our process (the model's start_booking call -> the task's
first `response.create`).

`--flow escalation` does the same for the hand-over to a person (tests/scenarios/ask-for-human.yaml,
base 5672972: the last commit before EscalationTask, when the hand-off line was the tool's reply).

    python -m bench.flow_switch [--flow booking|escalation] [--base COMMIT] [--calls 5] [--text-calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "tests/scenarios/book-drain-cleaning.yaml"
SAME_WORDS = ROOT / "bench" / "scenarios" / "book-drain-cleaning-same-words.yaml"
BASE = "3caf9f6"  # main before the booking task
# each flow: its call, the base before its task, the tool that enters it, and where results go
FLOWS: dict[str, dict[str, Any]] = {
    "booking": {"scenario": SCENARIO, "same_words": SAME_WORDS, "base": BASE, "entry": "start_booking",
                "result": "flow_switch"},
    "escalation": {"scenario": "tests/scenarios/ask-for-human.yaml", "same_words": None, "base": "5672972",
                   "entry": "escalate_to_human", "result": "flow_switch_escalation"},
}  # fmt: skip


async def _measure(
    repo: Path, scenario_path: Path, audio_calls: int, text_calls: int, entry: str
) -> dict[str, Any]:
    """Run inside a child whose `agent` and `simulator` are `repo`'s (PYTHONPATH)."""
    from simulator.runner import simulate
    from simulator.scenario import load_scenario
    from simulator.server import RealtimeSimulator
    from simulator.session import ScenarioDatabases, scenario_stores

    scenario = load_scenario(scenario_path)
    out: dict[str, Any] = {"gaps_ms": [], "cpu_s": [], "passed": [], "updates": [], "switch_ms": [],
                           "speculation": [], "responses": []}  # fmt: skip
    # each call in a fresh database of a throwaway cluster, as `receptionist simulate` runs it
    async with ScenarioDatabases("auto") as databases, RealtimeSimulator() as sim:
        for i in range(text_calls + audio_calls):
            audio = i >= text_calls
            async with scenario_stores(databases.for_scenario()) as stores:
                before = len(sim.events)
                cpu = time.process_time()
                report = await simulate(scenario, audio=audio, sim=sim, stores=stores)
                cpu = time.process_time() - cpu
            if not audio:
                # graded as the tests grade it (in audio runs the report's transcript times raise a
                # dead_air flag on both versions: the runner's own audio timings are the gaps here)
                out["passed"].append(report.passed)
            events = sim.events[before:]
            if audio:
                # measured on the audio: the caller's voice ends -> the agent's first audio
                out["gaps_ms"] += [
                    g - scenario.model_delay_ms for g in report.timings.get("response_gap_ms", [])
                ]
                # speculative replies: started at a pause, adopted at the end of turn, or abandoned
                out["speculation"].append(
                    {k: report.speculation.get(k) for k in ("started", "adopted", "abandoned")}
                )
                continue
            out["cpu_s"].append(cpu)
            out["responses"].append(
                sum(1 for e in events if e.direction == "client" and e.type == "response.create")
            )
            updates = [e for e in events if e.direction == "client" and e.type == "session.update"]
            out["updates"].append([
                {"instructions_bytes": len(str(e.event["session"].get("instructions") or "").encode()),
                 "tools": len(e.event["session"].get("tools") or []),
                 "tools_bytes": len(json.dumps(e.event["session"].get("tools") or []).encode())}
                for e in updates if "instructions" in e.event["session"] or "tools" in e.event["session"]
            ])  # fmt: skip
            called = [e.t for e in events if e.direction == "server"
                      and e.type == "response.function_call_arguments.done"
                      and e.event.get("name") == entry]  # fmt: skip
            if called:
                nxt = [
                    e.t
                    for e in events
                    if e.direction == "client" and e.type == "response.create" and e.t > called[0]
                ]
                if nxt:
                    out["switch_ms"].append((nxt[0] - called[0]) * 1000.0)
    return out


def _run_version(
    repo: Path, scenario: Path, audio_calls: int, text_calls: int, entry: str
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONHASHSEED": "0"}
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--measure", str(repo), "--scenario", str(scenario),
             "--calls", str(audio_calls), "--text-calls", str(text_calls), "--entry", entry, "--out", f.name],
            env=env, cwd=repo, check=True,
        )  # fmt: skip
        return json.loads(Path(f.name).read_text())


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    first = m["updates"][0] if m["updates"] else []
    return {
        "calls_passed": f"{sum(m['passed'])}/{len(m['passed'])}",
        "response_gap_ms": {
            "p50": _p(m["gaps_ms"], 0.5),
            "p95": _p(m["gaps_ms"], 0.95),
            "turns": len(m["gaps_ms"]),
        },
        "cpu_s_per_call": {"median": statistics.median(m["cpu_s"]) if m["cpu_s"] else None},
        "responses_per_call": statistics.median(m["responses"]) if m["responses"] else None,
        "session_updates_per_call": len(first),
        "session_updates": first,
        "switch_ms": {"p50": _p(m["switch_ms"], 0.5), "max": max(m["switch_ms"], default=None)},
        "speculative_replies_per_call": {
            k: statistics.mean(s[k] or 0 for s in m["speculation"]) if m["speculation"] else None
            for k in ("started", "adopted", "abandoned")
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", choices=sorted(FLOWS), default="booking", help="the flow whose task is measured")
    ap.add_argument("--base", help="the commit to compare with (default: the last before the flow's task)")
    ap.add_argument("--calls", type=int, default=5, help="audio calls per version (response gaps)")
    ap.add_argument(
        "--text-calls", type=int, default=10, help="text calls per version (CPU, session updates)"
    )
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--scenario", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--entry", default="start_booking", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure is not None:
        import logging

        logging.disable(logging.WARNING)
        result = asyncio.run(
            _measure(args.measure, args.scenario, args.calls, args.text_calls, args.entry)
        )
        args.out.write_text(json.dumps(result))
        return

    sys.path.insert(0, str(ROOT))
    from bench import report

    flow = FLOWS[args.flow]
    args.base = args.base or flow["base"]
    scenario_rel = flow["scenario"]

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), args.base],
            check=True,
        )
        try:
            # interleaved, so a busier minute on a shared machine falls on both
            runs = {"base": (base, base / scenario_rel), "head": (ROOT, ROOT / scenario_rel)}
            if flow["same_words"] is not None:
                runs = {"base": runs["base"], "base_same_words": (base, flow["same_words"]), "head": runs["head"]}
            raw: dict[str, list[dict[str, Any]]] = {k: [] for k in runs}
            for _ in range(2):
                for k, (repo, scenario) in runs.items():
                    raw[k].append(_run_version(
                        repo, scenario, (args.calls + 1) // 2, args.text_calls // 2, flow["entry"]
                    ))  # fmt: skip
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False
            )
    merged = {k: {f: [x for part in v for x in part[f]] for f in v[0]} for k, v in raw.items()}
    same_words = flow["same_words"]
    out = {"flow": args.flow, "base_commit": args.base, "scenario": scenario_rel,
           "same_words": str(same_words.relative_to(ROOT)) if same_words is not None else None,
           **{k: _summary(v) for k, v in merged.items()}, "samples": merged}  # fmt: skip
    rows = []
    for k in runs:
        s = out[k]
        upd = s["session_updates"]
        rows.append([k, s["calls_passed"], s["response_gap_ms"]["p50"], s["response_gap_ms"]["p95"],
                     s["response_gap_ms"]["turns"], s["responses_per_call"], s["cpu_s_per_call"]["median"], len(upd),
                     " + ".join(f"{u['instructions_bytes']}/{u['tools']}:{u['tools_bytes']}" for u in upd),
                     s["switch_ms"]["p50"],
                     "/".join(str(s["speculative_replies_per_call"][k]) for k in ("started", "adopted", "abandoned"))])  # fmt: skip
    print(report.table(
        f"{args.flow} call, base vs this checkout (session updates: instructions bytes / tools: tools bytes)",
        ["code", "passed", "gap p50 ms", "gap p95 ms", "turns", "responses/call", "CPU s/call", "updates", "sent",
         "switch ms",
         "speculative started/adopted/abandoned per call"],
        rows,
    ))  # fmt: skip
    print(report.write(flow["result"], out, quick=False))


if __name__ == "__main__":
    main()
