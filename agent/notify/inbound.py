"""Twilio's inbound SMS webhook: a text saying STOP (or UNSUBSCRIBE, or another of the carriers'
opt-out words) puts its sender on the STOP list for the number it was sent to; START takes them off.
Only requests that carry Twilio's valid signature are read. Served by `receptionist notify inbound`,
its own small process, so the owner's webhook URL never depends on a sender being up."""

from __future__ import annotations

import logging
import re

from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from twilio.request_validator import RequestValidator

from agent.log_privacy import mask_numbers
from agent.store.opt_outs import opt_in, opt_out

log = logging.getLogger("receptionist.notify")

SMS_PATH = "/twilio/sms"
# the words US carriers and Twilio treat as opt-out and opt-in (the whole message, case and spaces aside)
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
# an empty reply: Twilio itself answers the opt-out words on our numbers, a second reply would be noise
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def keyword(body: str) -> str:
    """'Stop.' and ' stop all ' are STOP and STOPALL."""
    return re.sub(r"[^A-Z]", "", body.upper())


def inbound_app(pool: AsyncConnectionPool, auth_token: str, public_url: str | None = None) -> web.Application:
    """The webhook. `public_url`: the exact URL set on the Twilio number (what Twilio signs), when a
    proxy in front makes the request's own URL differ from it."""
    validator = RequestValidator(auth_token)

    async def sms(request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        url = public_url or str(request.url)
        if not validator.validate(url, form, request.headers.get("X-Twilio-Signature", "")):
            log.warning("inbound SMS refused: no valid Twilio signature for %s", url)
            return web.Response(status=403, text="invalid signature")
        sender, to, word = form.get("From", ""), form.get("To", ""), keyword(form.get("Body", ""))
        if sender and to and word in OPT_OUT_WORDS:
            await opt_out(pool, sender, to, word)
            log.info("%s texted %s to %s: no more texts to it", mask_numbers(sender), word, to)
        elif sender and to and word in OPT_IN_WORDS and await opt_in(pool, sender, to):
            log.info("%s texted %s to %s: texts may go to it again", mask_numbers(sender), word, to)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(SMS_PATH, sms)
    app.router.add_get("/", health)
    return app
