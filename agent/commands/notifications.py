"""`receptionist outbox` (notifications waiting, sent or dead; retry a dead one) and
`receptionist notify` (the sender process, or Twilio's inbound SMS webhook)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from agent.commands.database import current_database
from agent.commands.refused import Refused


def show_outbox(args: argparse.Namespace) -> int:
    from agent.store.db import open_pool
    from agent.store.outbox import NotRetryable, list_notifications, retry_notification

    notification_id = None
    if args.action == "retry":
        if args.id is None or not args.id.isdigit():
            raise Refused(
                "outbox retry needs the notification's id (see `receptionist outbox list`)"
            )
        notification_id = int(args.id)
    elif args.id is not None:
        raise Refused(f"outbox {args.action} takes no id")
    settings = current_database()

    async def act() -> int:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            if notification_id is not None:
                try:
                    row = await retry_notification(pool, notification_id)
                except NotRetryable as e:
                    raise Refused(str(e)) from None
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


def run_notify(args: argparse.Namespace) -> int:
    import signal
    import threading

    # a supervisor may stop the sender while it still loads its channels (seconds on a busy host):
    # that is a clean stop too, before anything was claimed; the loop's own handler takes over later.
    # Only for this command's run: a process that calls it in-process (tests) gets its own back.
    previous = None
    if threading.current_thread() is threading.main_thread():  # only there can Python take a signal
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return _run_notify(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run_notify(args: argparse.Namespace) -> int:
    import signal

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
    from agent.settings import environment
    from agent.store.db import open_pool

    settings = current_database(outage_ok=args.action == "inbound")
    log_privacy.install()  # texts' errors name their numbers: logs get the last 4 digits only
    if args.action == "inbound":
        return _serve_inbound(settings, args.host, args.port, args.metrics_port)
    try:
        # each business's digest time and quiet hours; a bad brain stops the sender, as it does a worker
        brains = load_brains(settings.brain_path).all
        # the CalDAV passwords, from the environment or .env like every other secret
        calendars = accounts(brains, environment())
    except (BrainError, CalendarConfigError) as e:
        raise Refused(str(e)) from None
    schedule = OwnerSchedule(brains)

    async def run() -> None:
        # one connection holds a claimed batch while it is delivered; the others read transcripts for
        # email, the STOP list for SMS, build a digest, refresh the CalDAV copies, and hold a booking's
        # lock while its event is written (more calendar rows than that wait their turn)
        pool = await open_pool(
            settings.database_url, min_size=1, max_size=3, name="receptionist-notify"
        )
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


def _serve_inbound(settings: Any, host: str, port: int, metrics_port: int | None = None) -> int:
    """Twilio's SMS webhook (STOP / START) and the trunk's disaster-recovery URL until SIGTERM; see
    agent/notify/inbound.py."""
    import signal

    import psycopg
    from aiohttp import web

    from agent.brain import BrainError, load_brains
    from agent.notify.inbound import SMS_PATH, inbound_app, metrics_app
    from agent.notify.voice_fallback import VOICE_PATH, TwilioFallback
    from agent.store.audio import AudioStore
    from agent.store.db import open_pool
    from agent.store.webhook_backlog import WebhookBacklog

    if settings.twilio_auth_token is None:
        raise Refused(
            "notify inbound needs TWILIO_AUTH_TOKEN: it checks that each request comes from Twilio"
        )
    try:
        # the calls Twilio answers when no worker can: each hears its own business's lines
        brains = load_brains(settings.brain_path)
    except BrainError as e:
        raise Refused(str(e)) from None
    token = settings.twilio_auth_token.get_secret_value()

    async def serve() -> None:
        try:
            pool = await open_pool(settings.database_url, min_size=1, max_size=2, name="receptionist-inbound")
        except psycopg.Error as e:
            # calls no worker can take are answered all the same: what they write waits on disk
            print(f"notify inbound: Postgres is unreachable ({e}); what Twilio's requests write waits in"
                  f" {settings.journal_spill_dir} until it is back", file=sys.stderr, flush=True)  # fmt: skip
            pool = await open_pool(settings.database_url, min_size=1, max_size=2, name="receptionist-inbound",
                                   wait=False)  # fmt: skip
        backlog = WebhookBacklog(settings.journal_spill_dir)
        calls = TwilioFallback(
            pool, brains, backlog, account_sid=settings.twilio_account_sid, auth_token=token,
            voicemail_dir=settings.voicemail_dir, audio=AudioStore.from_settings(settings),
        )  # fmt: skip
        app = inbound_app(pool, token, settings.twilio_sms_webhook_url, backlog=backlog, calls=calls,
                          voice_url=settings.twilio_voice_fallback_url)  # fmt: skip
        runner = web.AppRunner(app, access_log=None)  # an access log would hold callers' numbers
        await runner.setup()
        metrics = web.AppRunner(metrics_app(), access_log=None) if metrics_port is not None else None
        try:
            await web.TCPSite(runner, host, port).start()
            if metrics is not None:
                await metrics.setup()
                await web.TCPSite(metrics, host, metrics_port).start()
                print(f"metrics on http://{host}:{metrics_port}/metrics", flush=True)
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            print(f"inbound SMS webhook on http://{host}:{port}{SMS_PATH}"
                  f" (signed for {settings.twilio_sms_webhook_url or 'the URL each request reaches'});"
                  f" calls no worker can take on http://{host}:{port}{VOICE_PATH}"
                  f" (signed for {settings.twilio_voice_fallback_url or 'the URL each request reaches'})",
                  flush=True)  # fmt: skip
            await stop.wait()
        finally:
            if metrics is not None:
                await metrics.cleanup()
            await runner.cleanup()
            await pool.close()

    try:
        asyncio.run(serve())
    except OSError as e:  # a port is taken: one line, non-zero, like every start-up failure
        ports = f"{port} or {metrics_port}" if metrics_port is not None else str(port)
        raise Refused(
            f"notify inbound: cannot listen on {host}:{ports}: {e.strerror or e}"
        ) from None
    return 0
