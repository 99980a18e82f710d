"""`receptionist`: our own commands (brain checks, offline calls, the Realtime simulator, database
migrations, personal data retention and erasure, provisioning). The LiveKit worker modes live in `python -m agent.worker`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.settings import Settings


def _check_brain(args: argparse.Namespace) -> int:
    from agent.brain import BrainError, load_brain, load_brains

    status = 0
    for raw in args.paths:
        path = Path(raw)
        try:
            if path.is_dir():
                directory = load_brains(path)
                for brain in directory.all:
                    print(f"ok: {brain.business.name} ({', '.join(brain.business.numbers) or 'no numbers'})")
            else:
                brain = load_brain(path)
                print(f"ok: {path}: {brain.business.name}, {len(brain.services)} services")
        except BrainError as e:
            print(str(e), file=sys.stderr)
            status = 1
    return status


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


def _database_settings() -> Settings | None:
    """Settings for a command that works on the database only, or None after saying what is missing."""
    from agent.settings import SettingsError, load_settings

    try:
        settings = load_settings(openai_api_key="unused-for-database-commands")
    except SettingsError as e:
        print(f"receptionist: {e}", file=sys.stderr)
        return None
    if not settings.database_url:
        print("receptionist: missing required setting DATABASE_URL", file=sys.stderr)
        return None
    return settings


def _db(args: argparse.Namespace) -> int:
    from agent.store.db import DatabaseNotReady, migrate

    settings = _database_settings()
    if settings is None:
        return 2
    assert settings.database_url is not None
    try:
        applied = asyncio.run(migrate(settings.database_url))
    except DatabaseNotReady as e:
        print(f"receptionist: {e}", file=sys.stderr)
        return 2
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _schema_problem(dsn: str) -> str | None:
    """Why the personal-data commands cannot run on this database yet, in one line, or None."""
    from agent.store.db import DatabaseNotReady, database_target, pending_migrations

    try:
        pending = pending_migrations(dsn, connect_timeout=5)
    except DatabaseNotReady as e:
        return str(e)
    if pending:
        return (
            f"the database schema is behind this code ({', '.join(pending)} not applied at "
            f"{database_target(dsn)}): run `receptionist db migrate` first"
        )
    return None


def _retention(args: argparse.Namespace) -> int:
    from agent.brain import BrainError, load_brains
    from agent.store.privacy import RetentionPolicy, format_counts, sweep

    settings = _database_settings()
    if settings is None:
        return 2
    assert settings.database_url is not None
    try:
        brains = load_brains(settings.brain_path)
    except BrainError as e:
        print(str(e), file=sys.stderr)
        return 2
    problem = _schema_problem(settings.database_url)
    if problem:
        print(f"receptionist: {problem}", file=sys.stderr)
        return 2
    policies = [RetentionPolicy(b.business.name, b.privacy.retain_days) for b in brains.all]
    result = asyncio.run(sweep(settings.database_url, policies, dry_run=args.dry_run))
    if not result.ran:
        print(f"retention: {result.why_not}; nothing done")
        return 0
    if args.dry_run:
        print("retention, dry run: what a run now would touch (nothing changed)")
    for policy in policies:
        if policy.retain_days is None:
            print(f"{policy.business}: kept forever (no privacy.retain_days)")
            continue
        cutoff = result.cutoffs[policy.business]
        print(f"{policy.business}: {policy.retain_days} days, personal data before {cutoff:%Y-%m-%d %H:%M} UTC")
        for line in format_counts(result.counts[policy.business]):
            print(f"  {line}")
    return 0


def _forget(args: argparse.Namespace) -> int:
    import getpass

    from livekit.agents import ToolError

    from agent.store.privacy import forget, format_counts
    from agent.tools.spoken import normalise_phone

    try:
        e164 = normalise_phone(args.number, args.region.upper())
    except ToolError:
        print(
            f"receptionist: not a phone number: {args.number!r} (write it as +15035550111, or as "
            f"people do, 503-555-0111, with --region for numbers outside {args.region.upper()})",
            file=sys.stderr,
        )
        return 2
    settings = _database_settings()
    if settings is None:
        return 2
    assert settings.database_url is not None
    problem = _schema_problem(settings.database_url)
    if problem:
        print(f"receptionist: {problem}", file=sys.stderr)
        return 2
    by = args.by or getpass.getuser()
    result = asyncio.run(forget(settings.database_url, e164, requested_by=by))
    print(f"forgot {result.number_masked} (requested by {by}; audit row {result.audit_id} in erasures)")
    for line in format_counts(result.counts):
        print(f"  {line}")
    for booking in result.cancelled:
        print(
            f"  cancelled: {booking.business}, {booking.service} on {booking.start:%Y-%m-%d %H:%M %Z}"
            f" (code {booking.confirmation_code}): tell the business the slot is free"
        )
    return 0


def _provision(args: argparse.Namespace) -> int:
    from sip.provision import main as provision_main

    return provision_main(args.provision_args, prog="receptionist provision")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="receptionist", description=__doc__)
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-brain", help="validate brain file(s) or a directory of them")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=_check_brain)

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

    p = sub.add_parser("db", help="database commands")
    p.add_argument("action", choices=["migrate"])
    p.set_defaults(func=_db)

    p = sub.add_parser(
        "retention", help="strip personal data older than each brain's privacy.retain_days (once a day per fleet)"
    )
    p.add_argument("--dry-run", action="store_true", help="print what it would touch; change nothing")
    p.set_defaults(func=_retention)

    p = sub.add_parser("forget", help="erase one phone number's personal data, and audit it")
    p.add_argument("number", help="the number: +15035550111, or as people write it (503-555-0111)")
    p.add_argument("--by", help="who asked for it, for the audit row (default: the OS user)")
    p.add_argument("--region", default="US", help="country of a number written without + (default US)")
    p.set_defaults(func=_forget)

    # provisioning's flags (and its --help) belong to sip.provision's parser, handed over below;
    # importing it here would slow every other command by the LiveKit and Twilio SDKs' imports
    p = sub.add_parser(
        "provision", add_help=False, help="set up LiveKit SIP trunk/dispatch rules and the Twilio side"
    )
    p.set_defaults(func=_provision)

    args, rest = parser.parse_known_args(argv)
    if args.command == "provision":
        args.provision_args = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
