"""Twilio's webhooks. The inbound SMS one: a text saying STOP (or UNSUBSCRIBE, or another of the carriers'
opt-out words) puts its sender on the STOP list for the number it was sent to; START takes them off.
The trunk's disaster-recovery URL: the calls no worker can take (agent/notify/voice_fallback.py). Only
requests that carry Twilio's valid signature are read. Served by `receptionist notify inbound`, its own
small process, so neither URL depends on a sender, or a worker, being up; nor on Postgres: what a
request writes waits on disk while it is down (agent/store/webhook_backlog.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool
from twilio.request_validator import RequestValidator

from agent.log_privacy import mask_numbers
from agent.metrics import INBOUND, INBOUND_WAITING
from agent.notify.voice_fallback import (
    DIAL_ENDED_PATH,
    MESSAGE_ENDED_PATH,
    RECORDING_PATH,
    VOICE_PATH,
    TwilioFallback,
)
from agent.store.opt_outs import opt_in, opt_out
from agent.store.webhook_backlog import WebhookBacklog

log = logging.getLogger("receptionist.notify")

SMS_PATH = "/twilio/sms"
# the words US carriers and Twilio treat as opt-out and opt-in (the whole message, case and spaces aside)
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
# an empty reply: Twilio itself answers the opt-out words on our numbers, a second reply would be noise
OPTED_OUT, OPTED_IN = "opted_out", "opted_in"  # what a STOP and a START write (agent/store/webhook_backlog.py)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def keyword(body: str) -> str:
    """'Stop.' and ' stop all ' are STOP and STOPALL."""
    return re.sub(r"[^A-Z]", "", body.upper())


def inbound_app(
    pool: AsyncConnectionPool, auth_token: str, public_url: str | None = None, *, backlog: WebhookBacklog,
    calls: TwilioFallback | None = None, voice_url: str | None = None,
) -> web.Application:  # fmt: skip
    """The webhooks. `public_url`: the exact URL set on the Twilio number (what Twilio signs), when a
    proxy in front makes the request's own URL differ from it. `backlog`: where what a request writes
    waits while Postgres is down (the same one `calls` writes through), replayed while the app runs.
    `calls`: the TwiML for calls Twilio answers when no worker can (agent/notify/voice_fallback.py), at
    `voice_url` (TWILIO_VOICE_FALLBACK_URL, whose host the action URLs share) or at the request's own
    address."""
    validator = RequestValidator(auth_token)

    async def stopped(form: dict[str, str], at: datetime) -> None:
        await opt_out(pool, form["From"], form["To"], keyword(form.get("Body", "")), at)

    async def started(form: dict[str, str], at: datetime) -> bool:
        return await opt_in(pool, form["From"], form["To"], at)

    backlog.register(OPTED_OUT, stopped)
    backlog.register(OPTED_IN, started)

    async def signed_form(request: web.Request, url: str) -> dict[str, str] | None:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if not validator.validate(url, form, request.headers.get("X-Twilio-Signature", "")):
            log.warning("request refused: no valid Twilio signature for %s", url)
            return None
        return form

    async def sms(request: web.Request) -> web.Response:
        form = await signed_form(request, public_url or str(request.url))
        if form is None:
            return web.Response(status=403, text="invalid signature")
        sender, to, word = form.get("From", ""), form.get("To", ""), keyword(form.get("Body", ""))
        if sender and to and word in OPT_OUT_WORDS:
            await backlog.write(OPTED_OUT, form, datetime.now(UTC))
            log.info("%s texted %s to %s: no more texts to it", mask_numbers(sender), word, to)
        elif sender and to and word in OPT_IN_WORDS:
            written, had_opted_out = await backlog.write(OPTED_IN, form, datetime.now(UTC))
            if had_opted_out or not written:
                log.info("%s texted %s to %s: texts may go to it again", mask_numbers(sender), word, to)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(SMS_PATH, sms)
    app.router.add_get("/", health)
    if calls is not None:
        _voice_routes(app, calls, signed_form, voice_url)
    app.cleanup_ctx.append(_replaying(backlog))
    return app


def _replaying(backlog: WebhookBacklog) -> Callable[[web.Application], AsyncIterator[None]]:
    """While the app serves: what earlier processes left on disk taken over (`run` looks at once), and
    what waits replayed."""

    async def replaying(app: web.Application) -> AsyncIterator[None]:
        INBOUND_WAITING.set_function(lambda: backlog.waiting)
        stop = asyncio.Event()
        task = asyncio.create_task(backlog.run(stop))
        yield
        stop.set()
        await task
        backlog.close()

    return replaying


def metrics_app() -> web.Application:
    """GET /metrics: what this process counts (`receptionist_fallback_calls_total`,
    `receptionist_inbound_requests_waiting`), for Prometheus on a port of its own, never the public one
    Twilio reaches."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(INBOUND), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


def _voice_routes(
    app: web.Application, calls: TwilioFallback,
    signed_form: Callable[[web.Request, str], Awaitable[dict[str, str] | None]], voice_url: str | None,
) -> None:  # fmt: skip
    """POST /twilio/voice and the three requests its TwiML makes Twilio send back."""
    public_base = voice_url[: -len(VOICE_PATH)] if voice_url and voice_url.endswith(VOICE_PATH) else None

    def base_of(request: web.Request) -> str:
        return public_base or str(request.url.origin())

    def step(answer: Callable[[dict[str, str], str], Awaitable[str | None]]):  # noqa: ANN202
        async def handle(request: web.Request) -> web.Response:
            base = base_of(request)
            form = await signed_form(request, base + request.path)
            if form is None:
                return web.Response(status=403, text="invalid signature")
            twiml = await answer(form, base)
            return web.Response(text=twiml or EMPTY_TWIML, content_type="text/xml")

        return handle

    # the first two build TwiML with action URLs on `base`; the last two need only the form
    app.router.add_post(VOICE_PATH, step(calls.answer))
    app.router.add_post(DIAL_ENDED_PATH, step(calls.dial_ended))
    app.router.add_post(MESSAGE_ENDED_PATH, step(lambda form, _base: calls.message_ended(form)))
    app.router.add_post(RECORDING_PATH, step(lambda form, _base: calls.recording(form)))

    async def recordings(app: web.Application) -> AsyncIterator[None]:
        # voicemails whose audio Twilio still holds, tried again while the app serves
        stop = asyncio.Event()
        task = asyncio.create_task(calls.recordings.run(stop))
        yield
        stop.set()
        # a fetch under way may take a minute: it is claimed for 10, and tried again after that
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 5)
        await calls.aclose()

    app.cleanup_ctx.append(recordings)
