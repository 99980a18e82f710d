"""The ways a notification reaches the owner: email over SMTP (plain text and HTML, the transcript
attached), SMS through Twilio Messaging, and a signed webhook. Each takes one outbox row and either
delivers it or raises DeliveryFailed with what the target said; retries are the sender's business.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import logging
import smtplib
import ssl
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import aiohttp
from psycopg_pool import AsyncConnectionPool

from agent.notify.sender import Channel, DeliveryFailed, DeliveryRefused
from agent.store.opt_outs import opted_out
from agent.store.outbox import Notification, first_try, send_begun

if TYPE_CHECKING:
    from twilio.rest import Client

    from agent.settings import Settings

log = logging.getLogger("receptionist.notify")

SIGNATURE_HEADER = "X-Receptionist-Signature"
DELIVERY_HEADER = "X-Receptionist-Delivery"
TIMEOUT_S = 15.0


_TITLES = {
    "urgent_message": "Urgent message",
    "escalation_failed": "A caller could not reach a person",
    "hot_lead": "Hot lead",
    "grounding_violation": "The assistant said something wrong",
    "assistant_unreachable": "A call your assistant could not take",
    "digest": "Daily digest",
    "calendar_conflict": "Your calendar overlaps a booking",
}


def title(n: Notification) -> str:
    return f"{_TITLES.get(n.kind, n.kind)} - {n.business}"


# --- email --------------------------------------------------------------------------------------


class EmailChannel:
    """SMTP, through the stdlib client on a thread (one connection per message: notifications are
    rare, and a long-lived SMTP session would only time out between them)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        host: str,
        port: int,
        sender: str,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._pool = pool
        self._host, self._port, self._sender = host, port, sender
        self._security, self._username, self._password = security, username, password

    async def deliver(self, notification: Notification) -> None:
        transcript = await self._transcript(notification)
        message = self.compose(notification, transcript)
        try:
            await asyncio.to_thread(self._send, message)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}: {exc.smtp_error.decode(errors='replace')}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP {self._host}:{self._port}: {exc or type(exc).__name__}") from exc

    def compose(self, n: Notification, transcript: list[tuple[str, str]]) -> EmailMessage:
        payload = n.payload
        msg = EmailMessage()
        msg["Subject"] = title(n) + (f" ({payload['day']})" if payload.get("day") else "")
        msg["From"] = self._sender
        msg["To"] = n.destination
        msg["Date"] = formatdate(localtime=False)
        # the idempotency key as the Message-ID: a message delivered twice (a sender dying between
        # the server's OK and its commit) is one message to the mail client
        msg["Message-ID"] = f"<{hashlib.sha256(n.key.encode()).hexdigest()[:40]}@receptionist>"
        msg[DELIVERY_HEADER] = n.key
        if "text" in payload:
            # a message written whole (the digest): the same words in both parts
            msg.set_content(payload["text"])
            msg.add_alternative(
                f"<html><body><h2>{html.escape(msg['Subject'])}</h2>"
                f"<pre style='font-family: inherit; white-space: pre-wrap'>{html.escape(payload['text'])}</pre>"
                "</body></html>",
                subtype="html",
            )
            return msg
        details = _detail_lines(payload.get("detail") or {})
        call = payload.get("call") or {}
        plain = [payload.get("summary", ""), ""] + [f"{k}: {v}" for k, v in details]
        plain += ["", f"Call {call.get('id')} from {call.get('caller_number') or 'unknown'}"
                  f" ({call.get('outcome')}, {call.get('end_reason')})."]  # fmt: skip
        if transcript:
            plain.append("The transcript is attached.")
        msg.set_content("\n".join(plain))
        rows = "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in details
        )
        msg.add_alternative(
            f"<html><body><h2>{html.escape(title(n))}</h2>"
            f"<p>{html.escape(payload.get('summary', ''))}</p><table>{rows}</table>"
            f"<p>Call {html.escape(str(call.get('id')))} from "
            f"{html.escape(call.get('caller_number') or 'unknown')}.</p></body></html>",
            subtype="html",
        )
        if transcript:
            text = "\n".join(f"{role}: {line}" for role, line in transcript) + "\n"
            msg.add_attachment(text, subtype="plain", filename=f"transcript-{call.get('id')}.txt")
        return msg

    async def _transcript(self, n: Notification) -> list[tuple[str, str]]:
        if n.call_id is None:
            return []
        # the call's turns were journaled before its notifications, so they are all here
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT role, text FROM transcript_turns WHERE call_id = %s ORDER BY seq", (n.call_id,)
            )
            return [(role, text) for role, text in await cur.fetchall()]

    def _send(self, message: EmailMessage) -> None:
        if self._security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self._host, self._port, timeout=TIMEOUT_S, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=TIMEOUT_S)
        with smtp:
            if self._security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message)

    async def aclose(self) -> None:
        pass


def _detail_lines(detail: dict[str, Any]) -> list[tuple[str, Any]]:
    lines = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        if key == "violations":
            for v in value:
                lines.append(("said", f"{v.get('claim')} (correct: {v.get('correction')})"))
        elif isinstance(value, dict):
            lines += [(f"{key}.{k}", v) for k, v in value.items()]
        else:
            lines.append((key.replace("_", " "), value))
    return lines


# --- SMS ----------------------------------------------------------------------------------------

SMS_MAX = 600  # Twilio splits long texts into segments, each billed: the gist, not the whole story

# Twilio errors no retry can fix: 21211 invalid 'To' number, 21214 not reachable by text,
# 21610 the recipient replied STOP, 21612 not reachable from this number, 21614 not a mobile number
FINAL_TWILIO_ERRORS = {21211, 21214, 21610, 21612, 21614}


class SmsChannel:
    """Twilio Messaging, from the business's own number, through the official client on a thread.
    Every text is checked against the STOP list first (sms_opt_outs)."""

    def __init__(self, client: Client, pool: AsyncConnectionPool) -> None:
        self._client = client
        self._pool = pool

    async def deliver(self, notification: Notification) -> None:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        payload = notification.payload
        sender = payload.get("business_number")
        stopped = await opted_out(self._pool, notification.destination, sender)
        if stopped is not None:
            raise DeliveryRefused(
                f"{notification.destination} texted {stopped.keyword} to {sender} on"
                f" {stopped.opted_out_at:%Y-%m-%d}: no more texts to it (until it texts START)"
            )
        # a text to a caller is written whole; the owner gets the gist
        body = payload.get("sms") or f"{notification.business}: {payload.get('summary', '')}"
        if len(body) > SMS_MAX:
            body = body[: SMS_MAX - 1] + "…"
        first = await first_try(self._pool, notification.id)
        try:
            if first is not None and await self._sent_before(notification, sender, body, first):
                log.warning("text %s reached Twilio on an earlier attempt whose answer was lost;"
                            " not sent again", notification.key)  # fmt: skip
                return
            await send_begun(self._pool, notification.id)  # kept if this sender dies before its commit
            await asyncio.to_thread(
                self._client.messages.create,
                to=notification.destination,
                from_=sender,
                body=body,
            )
        except TwilioRestException as exc:
            why = f"Twilio {exc.status} error {exc.code}: {exc.msg}"
            if exc.code in FINAL_TWILIO_ERRORS:
                raise DeliveryRefused(f"{notification.destination} cannot take texts ({why})") from exc
            raise DeliveryFailed(why) from exc
        except (TwilioException, OSError) as exc:
            raise DeliveryFailed(f"Twilio unreachable: {exc}") from exc

    async def _sent_before(self, notification: Notification, sender: str | None, body: str, first: datetime) -> bool:
        """Whether Twilio already has this text: an attempt that failed may have been taken all the
        same (a timeout, a 5xx after Twilio queued it), a sender may have died after Twilio took it and
        before its commit, and Twilio's Messages API has no idempotency key, so a later attempt asks
        first: a text to that number from that sender with this body, created since this row's first
        try (another row's text, alike in words but sent before, does not count). Twilio lists texts
        newest first; a trial account prefixes the body, hence the ending."""
        # Twilio's times are in whole seconds, and its clock is not ours
        since = first - timedelta(seconds=5)

        def listed() -> bool:
            for message in self._client.messages.list(to=notification.destination, from_=sender, limit=20):
                if message.date_created is not None and message.date_created < since:
                    break
                if (message.body or "").endswith(body):
                    return True
            return False

        return await asyncio.to_thread(listed)

    async def aclose(self) -> None:
        pass


# --- webhook ------------------------------------------------------------------------------------


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over "<timestamp>.<body>" (README "Notifications")."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_body(n: Notification) -> bytes:
    """The versioned JSON a webhook receives: the notification's payload with its id (the key)."""
    return json.dumps({"id": n.key, **n.payload}, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookChannel:
    """A signed JSON POST; any 2xx is delivered, anything else is retried."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, notification: Notification) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        body = webhook_body(notification)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "receptionist-webhook/1",
            SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
            DELIVERY_HEADER: notification.key,
        }
        try:
            async with self._session.post(notification.destination, data=body, headers=headers) as resp:
                if resp.status // 100 != 2:
                    text = (await resp.text())[:200]
                    raise DeliveryFailed(f"HTTP {resp.status} from the webhook: {text}")
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(f"webhook unreachable: {exc or type(exc).__name__}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def channels_from_settings(settings: Settings, pool: AsyncConnectionPool) -> dict[str, Channel]:
    """The channels this deployment can use; a row for a missing one fails (and shows) as such."""
    channels: dict[str, Channel] = {}
    if settings.smtp_host:
        channels["email"] = EmailChannel(
            pool, host=settings.smtp_host, port=settings.smtp_port, sender=settings.notify_email_from,
            security=settings.smtp_security, username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        )  # fmt: skip
    if settings.twilio_account_sid and settings.twilio_auth_token:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        # a request Twilio does not answer ends before the sender's own limit, so no thread sends late
        client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                        http_client=TwilioHttpClient(timeout=TIMEOUT_S))  # fmt: skip
        channels["sms"] = SmsChannel(client, pool)
    if settings.notify_webhook_secret:
        channels["webhook"] = WebhookChannel(settings.notify_webhook_secret.get_secret_value().encode())
    return channels
