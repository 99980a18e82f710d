"""`receptionist`: our own commands (brain checks, reports, the owner's console, notifications,
privacy, database migrations, provisioning; offline calls and the Realtime simulator where the
simulator package is installed). The LiveKit worker modes live in `python -m agent.worker`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any


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


def _database_settings() -> Any:
    """The settings of a command that needs only the database: one line and exit 2 when it is missing."""
    from agent.settings import SettingsError, load_settings

    try:
        settings = load_settings(openai_api_key="unused-for-database-commands")
    except SettingsError as e:
        raise _Refused(str(e)) from None
    if not settings.database_url:
        raise _Refused("missing required setting DATABASE_URL")
    if settings.database_pgbouncer:
        # transaction pooling loses what these rely on across statements: the console's LISTEN, the
        # advisory locks of migrations and retention, a report's longer statement timeout
        raise _Refused(
            "DATABASE_PGBOUNCER is for workers: receptionist commands need a session of their own; "
            "point DATABASE_URL at Postgres (or a session-pooled PgBouncer database) and unset it"
        )
    return settings


class _Refused(Exception):
    """A command that cannot run as asked; its message is the one line the user sees."""


def _db(args: argparse.Namespace) -> int:
    from agent.store.db import DatabaseNotReady, migrate

    settings = _database_settings()
    try:
        applied = asyncio.run(migrate(settings.database_url))
    except DatabaseNotReady as e:
        raise _Refused(str(e)) from None
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _business_name(settings: Any, name: str) -> tuple[str, str]:
    """A business's name as its brain file spells it, and its timezone; refused when brain files are
    there and none has that name (without readable brain files, the name is taken as typed, in UTC)."""
    from agent.brain import BrainError, load_brains

    try:
        brains = load_brains(settings.brain_path).all
    except BrainError:
        brains = []
    match = [b for b in brains if b.business.name.lower() == name.lower()]
    if brains and not match:
        names = ", ".join(b.business.name for b in brains)
        raise _Refused(f"no business named {name!r} in {settings.brain_path} (there: {names})")
    return (match[0].business.name, match[0].business.timezone) if match else (name, "UTC")


def _report(args: argparse.Namespace) -> int:
    from agent.quality_report import ReportArgsError, as_html, as_text, window
    from agent.store.db import open_pool
    from agent.store.kpis import business_kpis

    try:
        start, end = window(args.since, args.from_, args.to)
    except ReportArgsError as e:
        raise _Refused(str(e)) from None
    settings = _current_database()
    tz = "UTC"
    if args.business:
        # the business's own clock for "by hour" and "per day"; its name as the brain spells it
        args.business, tz = _business_name(settings, args.business)

    async def gather() -> dict[str, Any]:
        # the pool's 5 s statement limit is for callers waiting; a report over months may take longer;
        # three connections read the figures side by side from one snapshot (store/kpis.py)
        pool = await open_pool(settings.database_url, min_size=1, max_size=3, statement_timeout_ms=120_000)
        try:
            return await business_kpis(pool, start=start, end=end, business=args.business, tz=tz)
        finally:
            await pool.close()

    kpis = asyncio.run(gather())
    if args.html:
        Path(args.html).write_text(as_html(kpis), encoding="utf-8")
        print(f"wrote {args.html}: {kpis['calls']} calls")
    elif args.json:
        print(json.dumps(kpis, indent=2))
    else:
        print(as_text(kpis))
    return 0


def _current_database() -> Any:
    """Database-only settings, refused in one line when Postgres is unreachable or behind this code's
    schema (unlike a worker, a command has nothing to do without it)."""
    from agent.store.db import DatabaseNotReady, pending_migrations, require_current_schema

    settings = _database_settings()
    try:
        if pending_migrations(settings.database_url, connect_timeout=5):
            require_current_schema(settings.database_url)  # its message names what is missing
    except DatabaseNotReady as e:
        raise _Refused(str(e)) from None
    return settings


def _retention(args: argparse.Namespace) -> int:
    from agent.brain import BrainError, load_brains
    from agent.store.privacy import RetentionPolicy, format_counts, sweep

    settings = _current_database()
    try:
        brains = load_brains(settings.brain_path)
    except BrainError as e:
        raise _Refused(str(e)) from None
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
        raise _Refused(
            f"not a phone number: {args.number!r} (write it as +15035550111, or as people do, "
            f"503-555-0111, with --region for numbers outside {args.region.upper()})"
        ) from None
    settings = _current_database()
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


def _outbox(args: argparse.Namespace) -> int:
    from agent.store.db import open_pool
    from agent.store.outbox import NotRetryable, list_notifications, retry_notification

    notification_id = None
    if args.action == "retry":
        if args.id is None or not args.id.isdigit():
            raise _Refused("outbox retry needs the notification's id (see `receptionist outbox list`)")
        notification_id = int(args.id)
    elif args.id is not None:
        raise _Refused(f"outbox {args.action} takes no id")
    settings = _current_database()

    async def act() -> int:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            if notification_id is not None:
                try:
                    row = await retry_notification(pool, notification_id)
                except NotRetryable as e:
                    raise _Refused(str(e)) from None
                print(f"notification {row.id} ({row.kind} by {row.channel}) is queued again")
                return 0
            status = "dead" if args.action == "dead" else args.status
            rows = await list_notifications(pool, status=status, limit=args.limit)
        finally:
            await pool.close()
        for r in rows:
            line = (f"{r.id:>6}  {r.status:<7} {r.kind:<19} {r.channel:<7} {r.destination}"
                    f"  attempts={r.attempts}  {r.created_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip
            if r.last_error and r.status != "sent":
                line += f"  last error: {r.last_error}"
            print(line)
        if not rows:
            print("no dead notifications" if status == "dead" else "no notifications")
        return 0

    return asyncio.run(act())


def _notify(args: argparse.Namespace) -> int:
    import signal
    import threading

    # a supervisor may stop the sender while it still loads its channels (seconds on a busy host):
    # that is a clean stop too, before anything was claimed; the loop's own handler takes over later
    if threading.current_thread() is threading.main_thread():  # only there can Python take a signal
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    from dotenv import dotenv_values

    from agent import log_privacy
    from agent.brain import BrainError, load_brains
    from agent.calendar.caldav_sync import (
        CalendarChannel,
        CalendarConfigError,
        CalendarRefresher,
        accounts,
    )
    from agent.notify.channels import channels_from_settings
    from agent.notify.schedule import OwnerSchedule
    from agent.notify.sender import sender_from_settings
    from agent.store.db import open_pool

    settings = _current_database()
    log_privacy.install()  # texts' errors name their numbers: logs get the last 4 digits only
    if args.action == "inbound":
        return _notify_inbound(settings, args.host, args.port)
    try:
        # each business's digest time and quiet hours; a bad brain stops the sender, as it does a worker
        brains = load_brains(settings.brain_path).all
        # the CalDAV passwords, from the environment or .env like every other secret
        calendars = accounts(brains, {**dotenv_values(".env"), **os.environ})
    except (BrainError, CalendarConfigError) as e:
        raise _Refused(str(e)) from None
    schedule = OwnerSchedule(brains)

    async def run() -> None:
        # one connection holds a claimed batch while it is delivered; the others read transcripts for
        # email, the STOP list for SMS, build a digest, refresh the CalDAV copies, and hold a booking's
        # lock while its event is written (more calendar rows than that wait their turn)
        pool = await open_pool(settings.database_url, min_size=1, max_size=3, name="receptionist-notify")
        channels = channels_from_settings(settings, pool)
        if calendars:
            channels["calendar"] = CalendarChannel(pool, brains, calendars)
        sender = sender_from_settings(settings, pool, channels, schedule)
        refresher = CalendarRefresher(pool, brains, calendars, interval_s=settings.caldav_refresh_s)
        try:
            if args.once:
                await refresher.refresh()
                while await sender.deliver_due():
                    pass
            else:
                stop = asyncio.Event()  # SIGTERM ends the round in hand, then the process
                for sig in (signal.SIGINT, signal.SIGTERM):
                    asyncio.get_running_loop().add_signal_handler(sig, stop.set)
                print(f"{sender.name}: delivering notifications by "
                      f"{', '.join(sorted(channels)) or 'no channel (set SMTP_HOST, TWILIO_*, NOTIFY_WEBHOOK_SECRET)'}",
                      flush=True)  # fmt: skip
                await asyncio.gather(sender.run(stop), refresher.run(stop))
        finally:
            await sender.aclose()
            await pool.close()

    asyncio.run(run())
    return 0


def _calendar(args: argparse.Namespace) -> int:
    """`calendar feed-url`: the business's secret ICS feed URL, made on first use, replaced with --rotate."""
    from agent.store.calendar import feed_token
    from agent.store.db import open_pool

    settings = _database_settings()
    business, _ = _business_name(settings, args.business)
    _current_database()

    async def token() -> str:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            return await feed_token(pool, business, rotate=args.rotate)
        finally:
            await pool.close()

    base = (args.base_url or settings.web_public_url).rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise _Refused(f"the console's address must start with https:// or http://, got {base!r}")
    print(f"{base}/calendar/{asyncio.run(token())}.ics")
    if args.rotate:
        print("the previous URL no longer works: subscribe again with this one", file=sys.stderr)
    return 0


def _web(args: argparse.Namespace) -> int:
    import uvicorn

    from web.app import ConsoleConfig, create_app

    settings = _current_database()
    app = create_app(ConsoleConfig(settings.database_url, secure_cookies=settings.web_secure_cookies,
                                   brain_path=settings.brain_path))
    print(f"the owner's console: http://{args.host}:{args.port}/", flush=True)
    # behind a TLS-terminating proxy the forwarded scheme is trusted from loopback only (uvicorn's default)
    # an open Today page's event stream never ends by itself: a stop cuts those after a few seconds,
    # and the pages reconnect (to another replica, or to this one restarted)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(), proxy_headers=True,
                timeout_graceful_shutdown=5)
    return 0


def _users(args: argparse.Namespace) -> int:
    import getpass

    from agent.store.accounts import AccountError, add_user
    from agent.store.db import open_pool

    settings = _database_settings()
    businesses = [_business_name(settings, name)[0] for name in args.business]
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.email}: ")
        if getpass.getpass("again: ") != password:
            raise _Refused("the two passwords differ")
    _current_database()

    async def add() -> int:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            return await add_user(pool, args.email, password, role=args.role, businesses=businesses)
        finally:
            await pool.close()

    try:
        asyncio.run(add())
    except AccountError as e:
        raise _Refused(str(e)) from None
    sees = "every business" if args.role == "operator" else ", ".join(businesses)
    print(f"added {args.role} {args.email}: sees {sees}")
    return 0


def _users_token(args: argparse.Namespace) -> int:
    from agent.store.accounts import AccountError, add_api_token, revoke_api_tokens
    from agent.store.db import open_pool

    settings = _current_database()

    async def act() -> str:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            if args.revoke:
                n = await revoke_api_tokens(pool, args.email, args.name)
                which = f"named {args.name!r}" if args.name else "of theirs"
                return f"revoked {n} token{'' if n == 1 else 's'} {which} for {args.email}"
            token = await add_api_token(pool, args.email, args.name or "api")
            # only the token on stdout, so a script can capture it; the warning goes to the terminal
            print("this token is shown once; only its hash is stored", file=sys.stderr)
            return token
        finally:
            await pool.close()

    try:
        print(asyncio.run(act()))
    except AccountError as e:
        raise _Refused(str(e)) from None
    return 0


def _notify_inbound(settings: Any, host: str, port: int) -> int:
    """Twilio's SMS webhook (STOP / START) until SIGTERM; see agent/notify/inbound.py."""
    import signal

    from aiohttp import web

    from agent.notify.inbound import SMS_PATH, inbound_app
    from agent.store.db import open_pool

    if settings.twilio_auth_token is None:
        raise _Refused("notify inbound needs TWILIO_AUTH_TOKEN: it checks that each request comes from Twilio")

    async def serve() -> None:
        pool = await open_pool(settings.database_url, min_size=1, max_size=2, name="receptionist-inbound")
        app = inbound_app(pool, settings.twilio_auth_token.get_secret_value(), settings.twilio_sms_webhook_url)
        runner = web.AppRunner(app, access_log=None)  # an access log would hold callers' numbers
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            print(f"inbound SMS webhook on http://{host}:{port}{SMS_PATH}"
                  f" (signed for {settings.twilio_sms_webhook_url or 'the URL each request reaches'})",
                  flush=True)  # fmt: skip
            await stop.wait()
        finally:
            await runner.cleanup()
            await pool.close()

    try:
        asyncio.run(serve())
    except OSError as e:  # the port is taken: one line, non-zero, like every start-up failure
        raise _Refused(f"notify inbound: cannot listen on {host}:{port}: {e.strerror or e}") from None
    return 0


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
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-brain", help="validate brain file(s) or a directory of them")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=_check_brain)

    _add_installed_commands(sub)

    p = sub.add_parser("report", help="calls, bookings, hand-offs, quality flags and cost over a window")
    p.add_argument("--business", help="one business, by the name in its brain file (default: all)")
    p.add_argument("--since", help="a window ending now: 24h, 7d (the default), 4w")
    p.add_argument("--from", dest="from_", metavar="DATE", help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--to", metavar="DATE", help="last day, YYYY-MM-DD, inclusive (default: now)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print every figure as JSON")
    out.add_argument("--html", metavar="FILE", help="write one self-contained HTML page with charts")
    p.set_defaults(func=_report)

    p = sub.add_parser("web", help="the owner's console: calls, transcripts, messages and quality in a browser")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=_web)

    p = sub.add_parser("users", help="who may log in to the owner's console, and their API tokens")
    users = p.add_subparsers(dest="action", required=True)
    p = users.add_parser("add", help="a user who logs in with a password")
    p.add_argument("email")
    p.add_argument("--business", action="append", default=[],
                   help="a business this owner sees, by its brain file's name (repeat for several)")
    p.add_argument("--role", choices=["owner", "operator"], default="owner",
                   help="owner: their businesses only; operator: every business")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=_users)
    p = users.add_parser("token", help="print a new API token for a user (shown once), or revoke tokens")
    p.add_argument("email")
    p.add_argument("--name", help="what the token is for (default: api); names one token for --revoke")
    p.add_argument("--revoke", action="store_true", help="revoke the token named --name, or all the user's tokens")
    p.set_defaults(func=_users_token)

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


    p = sub.add_parser("outbox", help="notifications waiting, sent or dead; retry a dead one")
    p.add_argument("action", nargs="?", choices=["list", "retry", "dead"], default="list")
    p.add_argument("id", nargs="?", help="the notification to retry (its id in `outbox list`)")
    p.add_argument("--status", choices=["pending", "sent", "dead"], help="list only these")
    p.add_argument("--limit", type=int, default=50, help="newest first, this many (default 50)")
    p.set_defaults(func=_outbox)

    p = sub.add_parser("calendar", help="the owner's calendar: the secret ICS feed URL")
    p.add_argument("action", choices=["feed-url"])
    p.add_argument("--business", required=True, help="the business, as its brain file names it")
    p.add_argument("--rotate", action="store_true", help="replace the URL (the old one stops working)")
    p.add_argument("--base-url", help="the console's address (default WEB_PUBLIC_URL)")
    p.set_defaults(func=_calendar)

    p = sub.add_parser("notify", help="the notification sender (run one or more as their own processes)")
    p.add_argument("action", choices=["run", "inbound"],
                   help="run: deliver notifications and queue digests; inbound: Twilio's SMS webhook (STOP)")  # fmt: skip
    p.add_argument("--once", action="store_true", help="run: deliver what is due now, then exit")
    p.add_argument("--port", type=int, default=8090, help="inbound: the port to listen on (default 8090)")
    p.add_argument("--host", default="0.0.0.0", help="inbound: the address to listen on (default 0.0.0.0)")
    p.set_defaults(func=_notify)

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
    try:
        return int(args.func(args))
    except _Refused as e:
        print(f"receptionist: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
