"""The Today page's event stream, as an open page hears it: a call of the owner's business that the
journal ends is an event at once; another owner's never is; a page that reconnects after missing an
ending is told at once; a signed-out session's stream is not a stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from starlette.applications import Starlette

from agent.store.journal.events import CallEnded, CallStarted
from agent.store.journal.writer import CallJournal
from tests.web.conftest import log_in
from tests.web.test_console import DENTAL, PLUMBING


async def end_call(db_url: str, spill_dir: Path, business: str, caller: str, outcome: str = "booked") -> uuid.UUID:
    """A whole call, started and ended, written as the worker writes it: through the call journal."""
    call_id = uuid.uuid4()
    journal = CallJournal(db_url, spill_dir)
    await journal.start()
    journal.record(CallStarted(call_id=call_id, business=business, caller_number=caller))
    journal.record(CallEnded(call_id=call_id, outcome=outcome, end_reason="caller_hangup"))
    assert await journal.flush(timeout=30)
    await journal.aclose()
    return call_id


class EventStream:
    """A browser's EventSource on the app, spoken at the ASGI level (httpx's transport would wait for
    the end of a response that never ends)."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status: int | None = None
        self._buffer = ""

    async def next_block(self) -> dict[str, str]:
        """The next SSE message's fields (comments skipped); a guard against a hang, not a measure."""
        async with asyncio.timeout(60):
            return await self._next_block()

    async def _next_block(self) -> dict[str, str]:
        while "\n\n" not in self._buffer:
            message = await self.sent.get()
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self._buffer += message.get("body", b"").decode()
                if not message.get("more_body", False):
                    raise EOFError("the stream ended")
        block, self._buffer = self._buffer.split("\n\n", 1)
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        return fields if fields else await self._next_block()

    async def next_event(self) -> dict[str, Any]:
        """The next dispatched event: a message with data; a guard against a hang, not a measure."""
        async with asyncio.timeout(60):
            while "data" not in (block := await self._next_block()):
                pass
        return {"event": block.get("event"), "id": block.get("id"), "data": json.loads(block["data"])}


@asynccontextmanager
async def event_stream(app: Starlette, cookies: httpx.Cookies, query: str = "",
                       last_event_id: str | None = None) -> AsyncIterator[EventStream]:  # fmt: skip
    stream = EventStream()
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    headers = [(b"host", b"console.test"), (b"accept", b"text/event-stream"), (b"cookie", cookie.encode())]
    if last_event_id is not None:
        headers.append((b"last-event-id", last_event_id.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/today/events", "raw_path": b"/today/events", "query_string": query.encode(),
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("console.test", 80)}  # fmt: skip
    closed = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await closed.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await stream.sent.put(message)

    task = asyncio.create_task(app(scope, receive, send))
    try:
        yield stream
    finally:
        closed.set()  # the tab is closed: the app ends the stream
        await asyncio.wait_for(task, 60)


async def _signed_in(app: Starlette, email: str) -> httpx.Cookies:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as c:
        assert (await log_in(c, email)).status_code == 303
        return c.cookies


def _app(console: httpx.AsyncClient) -> Starlette:
    return console._transport.app  # type: ignore[attr-defined]


async def test_an_owners_open_today_page_hears_her_calls_end_and_never_anothers(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    add_user("ann@rosecity.example", PLUMBING)
    add_user("raj@lakeview.example", DENTAL)
    app = _app(console)
    ann, raj = await _signed_in(app, "ann@rosecity.example"), await _signed_in(app, "raj@lakeview.example")

    async with event_stream(app, ann, "since=") as ann_hears, event_stream(app, raj, "since=") as raj_hears:
        for stream in (ann_hears, raj_hears):  # subscribed: the stream has opened
            assert "retry" in await stream.next_block()
            assert stream.status == 200
        # B's call ends, then A's, then B's again: each hears only their own, in order
        await end_call(db_url, tmp_path / "spill", DENTAL, "+15035550177")
        await end_call(db_url, tmp_path / "spill", PLUMBING, "+15035550142")
        await end_call(db_url, tmp_path / "spill", DENTAL, "+15035550178")
        heard = await ann_hears.next_event()
        assert heard["event"] == "call_ended" and heard["data"]["business"] == PLUMBING
        assert [(await raj_hears.next_event())["data"]["business"] for _ in range(2)] == [DENTAL, DENTAL]


async def test_a_page_that_missed_an_ending_is_told_when_it_reconnects(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    add_user("ann@rosecity.example", PLUMBING)
    app = _app(console)
    await log_in(console, "ann@rosecity.example")
    ann = console.cookies
    await end_call(db_url, tmp_path / "spill", PLUMBING, "+15035550142")
    today = await console.get("/")
    since = today.text.split('data-since="', 1)[1].split('"', 1)[0]
    assert since  # the page knows the ending it shows

    # the page as rendered has seen everything: nothing to refresh, until another call ends
    async with event_stream(app, ann, urlencode({"since": since})) as hears:
        assert "retry" in await hears.next_block()
        await end_call(db_url, tmp_path / "spill", PLUMBING, "+15035550143")
        seen = await hears.next_event()
        assert seen["id"] > since

    # the console was away while a third call ended: the reconnecting page is told at once
    await end_call(db_url, tmp_path / "spill", PLUMBING, "+15035550144")
    async with event_stream(app, ann, urlencode({"since": since}), last_event_id=seen["id"]) as hears:
        assert (await hears.next_event())["id"] > seen["id"]


async def test_the_event_stream_is_for_a_signed_in_owner_only(console: httpx.AsyncClient) -> None:
    refused = await console.get("/today/events")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")


async def test_an_ending_while_the_console_lost_its_listener_still_reaches_the_page(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    add_user("ann@rosecity.example", PLUMBING)
    app = _app(console)
    ann = await _signed_in(app, "ann@rosecity.example")
    async with event_stream(app, ann, "since=") as hears:
        assert "retry" in await hears.next_block()
        # Postgres drops the console's listening connection (a restart, a failover), and a call ends
        with psycopg.connect(db_url, autocommit=True) as conn:
            dropped = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                   " WHERE application_name = 'receptionist-web-listen'"
                                   " AND datname = current_database()").fetchall()  # fmt: skip
        assert dropped == [(True,)]
        await end_call(db_url, tmp_path / "spill", PLUMBING, "+15035550142")
        assert (await hears.next_event())["data"]["business"] in (PLUMBING, None)
