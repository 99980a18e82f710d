"""Notification tests' parts: a pool, queueing the way a call does, a real SMTP server (aiosmtpd) and
a webhook receiver that verifies signatures."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.message
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from psycopg_pool import AsyncConnectionPool

from agent.store.db import open_pool
from agent.store.journal.events import NotificationQueued
from agent.store.journal.writer import CallJournal


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(db_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


def notification(channel: str, destination: str, *, kind: str = "urgent_message",
                 summary: str = "Urgent message from Ana (+14155550123): the basement is flooding",
                 call_id: uuid.UUID | None = None, n: int = 0) -> NotificationQueued:  # fmt: skip
    call_id = call_id or uuid.uuid4()
    return NotificationQueued(
        key=f"{call_id}/{kind}/{channel}:{destination}/{n}", business="Rose City Plumbing",
        kind=kind, channel=channel, destination=destination, call_id=call_id,
        payload={"version": 1, "kind": kind, "business": "Rose City Plumbing",
                 "business_number": "+15035550100", "summary": summary,
                 "call": {"id": str(call_id), "caller_number": "+14155550123"},
                 "detail": {"message": "the basement is flooding"}},
    )  # fmt: skip


async def queue(db_url: str, spill_dir, events: list) -> None:
    """Through the call journal, the only writer of outbox rows."""
    journal = CallJournal(db_url, spill_dir, batch_size=500)
    await journal.start()
    for e in events:
        journal.record(e)
    assert await journal.flush(timeout=30)
    await journal.aclose()


# --- a real SMTP server (aiosmtpd), on its own thread and loop --------------------------------------


class SmtpInbox:
    """What an aiosmtpd server received; `expect(n)` gives an event set once n messages are in."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, threading.Event]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.recipients.append(list(envelope.rcpt_tos))
            for n, event in self._waiting:
                if len(self.messages) >= n:
                    event.set()
        return "250 Message accepted for delivery"

    def expect(self, n: int) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiting.append((n, event))
            if len(self.messages) >= n:
                event.set()
        return event


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """An SMTP server on a fixed port that a test can start late (an outage, then the fix)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = SmtpInbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Not started: the test starts it, so it can be down first."""
    server = SmtpServer()
    yield server
    server.stop()


# --- a webhook receiver that checks what a real one would ---------------------------------------

WEBHOOK_SECRET = "whsec-test-3f9a"


class WebhookReceiver:
    """Accepts a delivery only with a valid signature over a fresh, unseen timestamp (the check the
    README shows receivers); counts the deliveries it accepted by their id."""

    tolerance_s = 300

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.accepted: list[dict] = []
        self.refused: list[tuple[int, str]] = []
        self.seen_signatures: set[str] = set()
        self.url = ""
        self.down = False
        self._waiting: list[tuple[int, asyncio.Event]] = []

    async def handle(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="maintenance")
        body = await request.read()
        header = request.headers.get("X-Receptionist-Signature", "")
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(fields["t"])
        except (KeyError, ValueError):
            return self._refuse(400, "no signature")
        expected = hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("v1", "")):
            return self._refuse(401, "bad signature")
        if abs(time.time() - timestamp) > self.tolerance_s:
            return self._refuse(401, "timestamp too old")
        if fields["v1"] in self.seen_signatures:
            return self._refuse(409, "replayed")
        self.seen_signatures.add(fields["v1"])
        self.accepted.append(json.loads(body))
        for n, event in self._waiting:
            if len(self.accepted) >= n:
                event.set()
        return web.Response(status=204)

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refused.append((status, why))
        return web.Response(status=status, text=why)

    def expect(self, n: int) -> asyncio.Event:
        event = asyncio.Event()
        self._waiting.append((n, event))
        if len(self.accepted) >= n:
            event.set()
        return event


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on a free loopback port until the block ends; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    app = web.Application()
    app.router.add_post("/hooks/receptionist", receiver.handle)
    async with served(app) as base:
        receiver.url = f"{base}/hooks/receptionist"
        yield receiver
