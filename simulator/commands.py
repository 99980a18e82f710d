"""The simulator's commands in `receptionist`: `simulate` (run call scenarios offline and grade them)
and `simulator` (serve the Realtime simulator on loopback). Registered as an entry point, so the
receptionist's own code never imports the simulator and its image can ship without it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def add_commands(sub: Any) -> None:
    """Add `simulate` and `simulator` to the `receptionist` command's subparsers."""
    p = sub.add_parser("simulate", help="run call scenario(s) offline and grade them")
    p.add_argument("scenarios", nargs="+", help="scenario YAML files or directories")
    p.add_argument("--audio", action="store_true", help="real audio: espeak-ng caller, Silero VAD, barge-in")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--database",
        choices=["auto", "env", "none"],
        default="auto",
        help="auto: DATABASE_URL if set, else a throwaway local Postgres; env: DATABASE_URL only; none",
    )
    p.set_defaults(func=_simulate)

    p = sub.add_parser("simulator", help="run the OpenAI Realtime simulator on loopback")
    p.add_argument("--scenario", help="scenario whose model steps and caller transcripts it plays")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--model-delay-ms", type=int, default=None)
    p.set_defaults(func=_simulator)


def _simulate(args: argparse.Namespace) -> int:
    from simulator.runner import format_report
    from simulator.scenario import ScenarioError, load_scenario, scenario_files
    from simulator.session import run_scenarios

    paths: list[Path] = []
    for raw in args.scenarios:
        p = Path(raw)
        paths.extend(scenario_files(p) if p.is_dir() else [p])
    try:
        scenarios = [load_scenario(p) for p in paths]
    except ScenarioError as e:
        print(str(e), file=sys.stderr)
        return 2
    reports = asyncio.run(run_scenarios(scenarios, audio=args.audio, database=args.database))
    if args.json:
        out = [r.to_json() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2, default=str))
    else:
        for r in reports:
            print(format_report(r))
            print()
        if len(reports) > 1:
            failed = [r.scenario for r in reports if not r.passed]
            print(f"{len(reports) - len(failed)} of {len(reports)} scenarios passed", end="")
            print(f"; failed: {', '.join(failed)}" if failed else "")
    return 0 if all(r.passed for r in reports) else 1


def _simulator(args: argparse.Namespace) -> int:
    from simulator.scenario import ScenarioError, load_scenario
    from simulator.server import RealtimeSimulator

    steps = []
    delay = args.model_delay_ms
    if args.scenario:
        try:
            sc = load_scenario(args.scenario)
        except ScenarioError as e:
            print(str(e), file=sys.stderr)
            return 2
        steps = sc.model_steps()
        delay = sc.model_delay_ms if delay is None else delay

    async def serve() -> None:
        sim = RealtimeSimulator(default_script=steps, model_delay_ms=delay or 0)
        if args.scenario:
            for turn in sc.turns:
                if turn.caller:
                    sim.queue_transcript(turn.caller)
        await sim.start(host="127.0.0.1", port=args.port)
        print(f"Realtime simulator listening: OPENAI_BASE_URL={sim.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0
