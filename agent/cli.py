"""`receptionist`: our own commands (brain checks, reports, the owner's console, notifications,
privacy, database migrations, provisioning; offline calls and the Realtime simulator where the
simulator package is installed): the arguments here, each command's body in agent/commands/. The
LiveKit worker modes live in `python -m agent.worker`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from agent.commands import (
    brain,
    calendar,
    console,
    database,
    notifications,
    privacy,
    report,
)
from agent.commands.refused import Refused

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# the long-running services log as the worker does; a one-off command prints its answer, and warnings
_SERVICES = ("web", "notify")


def _default_log_level(command: str) -> str:
    """LOG_LEVEL for a service, as the worker reads it (the process environment, else `.env`, else
    INFO); WARNING for any other command."""
    if command not in _SERVICES:
        return "WARNING"
    from agent.settings import environment

    level = (environment().get("LOG_LEVEL") or "INFO").strip().upper()
    if level not in LEVELS:
        raise Refused(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
    return level


def _provision(args: argparse.Namespace) -> int:
    from sip.provision import main as provision_main

    return provision_main(args.provision_args, prog="receptionist provision")


def _add_installed_commands(sub: Any) -> None:
    """Commands another installed package adds (entry points in the group `receptionist.commands`):
    the simulator's `simulate` and `simulator`. The worker's image ships without the simulator, so
    nothing here imports it; a package that is registered but absent adds nothing."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="receptionist.commands"):
        try:
            add_commands = entry.load()
        except ImportError:
            continue
        add_commands(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="receptionist", description=__doc__)
    parser.add_argument(
        "--log-level", type=str.upper, choices=LEVELS,
        help="default: LOG_LEVEL (the environment, else .env) for `web` and `notify`, WARNING for the others",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-brain", help="validate brain file(s) or a directory of them")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=brain.check_brain)

    _add_installed_commands(sub)

    p = sub.add_parser("report", help="calls, bookings, hand-offs, quality flags and cost over a window")
    p.add_argument("--business", help="one business, by the name in its brain file (default: all)")
    p.add_argument("--since", help="a window ending now: 24h, 7d (the default), 4w")
    p.add_argument("--from", dest="from_", metavar="DATE", help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--to", metavar="DATE", help="last day, YYYY-MM-DD, inclusive (default: now)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print every figure as JSON")
    out.add_argument("--html", metavar="FILE", help="write one self-contained HTML page with charts")
    p.set_defaults(func=report.show_report)

    p = sub.add_parser("web", help="the owner's console: calls, transcripts, messages and quality in a browser")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=console.serve_console)

    p = sub.add_parser("users", help="who may log in to the owner's console, and their API tokens")
    users = p.add_subparsers(dest="action", required=True)
    p = users.add_parser("add", help="a user who logs in with a password")
    p.add_argument("email")
    p.add_argument("--business", action="append", default=[],
                   help="a business this owner sees, by its brain file's name (repeat for several)")
    p.add_argument("--role", choices=["owner", "operator"], default="owner",
                   help="owner: their businesses only; operator: every business")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=console.add_console_user)
    p = users.add_parser("token", help="print a new API token for a user (shown once), or revoke tokens")
    p.add_argument("email")
    p.add_argument("--name", help="what the token is for (default: api); names one token for --revoke")
    p.add_argument("--revoke", action="store_true", help="revoke the token named --name, or all the user's tokens")
    p.set_defaults(func=console.console_user_token)

    p = sub.add_parser("db", help="database commands")
    p.add_argument("action", choices=["migrate"])
    p.set_defaults(func=database.migrate_database)

    p = sub.add_parser(
        "retention", help="strip personal data older than each brain's privacy.retain_days (once a day per fleet)"
    )
    p.add_argument("--dry-run", action="store_true", help="print what it would touch; change nothing")
    p.set_defaults(func=privacy.run_retention)

    p = sub.add_parser("forget", help="erase one phone number's personal data, and audit it")
    p.add_argument("number", help="the number: +15035550111, or as people write it (503-555-0111)")
    p.add_argument("--by", help="who asked for it, for the audit row (default: the OS user)")
    p.add_argument("--region", default="US", help="country of a number written without + (default US)")
    p.set_defaults(func=privacy.forget_number)


    p = sub.add_parser("outbox", help="notifications waiting, sent or dead; retry a dead one")
    p.add_argument("action", nargs="?", choices=["list", "retry", "dead"], default="list")
    p.add_argument("id", nargs="?", help="the notification to retry (its id in `outbox list`)")
    p.add_argument("--status", choices=["pending", "sent", "dead"], help="list only these")
    p.add_argument("--limit", type=int, default=50, help="newest first, this many (default 50)")
    p.set_defaults(func=notifications.show_outbox)

    p = sub.add_parser("calendar", help="the owner's calendar: the secret ICS feed URL")
    p.add_argument("action", choices=["feed-url"])
    p.add_argument("--business", required=True, help="the business, as its brain file names it")
    p.add_argument("--rotate", action="store_true", help="replace the URL (the old one stops working)")
    p.add_argument("--base-url", help="the console's address (default WEB_PUBLIC_URL)")
    p.set_defaults(func=calendar.calendar_feed_url)

    p = sub.add_parser("notify", help="the notification sender (run one or more as their own processes)")
    p.add_argument("action", choices=["run", "inbound"],
                   help="run: deliver notifications and queue digests; inbound: Twilio's SMS webhook (STOP)")  # fmt: skip
    p.add_argument("--once", action="store_true", help="run: deliver what is due now, then exit")
    p.add_argument("--port", type=int, default=8090, help="inbound: the port to listen on (default 8090)")
    p.add_argument("--host", default="0.0.0.0", help="inbound: the address to listen on (default 0.0.0.0)")
    p.add_argument("--metrics-port", type=int,
                   help="inbound: serve GET /metrics for Prometheus on this port too (default: not served)")  # fmt: skip
    p.set_defaults(func=notifications.run_notify)

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
    try:
        args.log_level = args.log_level or _default_log_level(args.command)
    except Refused as e:
        parser.error(str(e))
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.log_level != "DEBUG":
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # each request, headers and all
    try:
        return int(args.func(args))
    except Refused as e:
        print(f"receptionist: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
