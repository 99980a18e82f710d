"""The Today page's live updates: each console process LISTENs on one connection for the call endings
the journal announces (pg_notify in the transaction that records the ending, so every replica hears
each committed one), and every open Today page gets, as server-sent events, those of its viewer's
businesses. A page that reconnects (console restarted, network blip) names the last ending it saw
(Last-Event-ID) and is told at once if a later one landed meanwhile."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from agent.store import console
from agent.store.accounts import Viewer, viewer_for
from agent.store.journal.rows import CALL_ENDED_CHANNEL
from web.auth import SESSION_COOKIE, signed_in, viewer

log = logging.getLogger("receptionist.web")

KEEPALIVE_S = 15.0  # a comment this often finds a closed tab (the write fails) and keeps proxies open
RETRY_MS = 5000  # how soon a browser reconnects after the stream drops
_RECONNECT_S = (1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class Ending:
    """A call's committed ending; business None: endings may have been missed (the listener was down)."""

    business: str | None
    ended_at: datetime | None


@dataclass(eq=False)
class _Subscriber:
    endings: asyncio.Queue[Ending] = field(default_factory=lambda: asyncio.Queue(maxsize=64))


class CallEndings:
    """The console process's one LISTEN connection, fanned out to its open event streams."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._subscribers: set[_Subscriber] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen before the console serves a page (fail fast if Postgres is unreachable)."""
        conn = await self._listen()
        self._task = asyncio.create_task(self._run(conn), name="call-endings")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conn = await psycopg.AsyncConnection.connect(self._database_url, autocommit=True,
                                                     application_name="receptionist-web-listen")  # fmt: skip
        await conn.execute(f"LISTEN {CALL_ENDED_CHANNEL}")
        return conn

    async def _run(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        attempt = 0
        while True:
            try:
                async with conn:
                    attempt = 0
                    async for note in conn.notifies():
                        self._announce(_parse(note.payload))
            except psycopg.Error as e:  # a dropped connection, a restarted or failed-over Postgres
                log.warning("lost the call-endings listener (%s): reconnecting", e)
            while True:
                await asyncio.sleep(_RECONNECT_S[min(attempt, len(_RECONNECT_S) - 1)])
                attempt += 1
                try:
                    conn = await self._listen()
                    break
                except psycopg.Error as e:
                    log.warning("call-endings listener still down (%s)", e)
            # whatever ended while nobody listened: every stream checks its own businesses
            self._announce(Ending(None, None))

    def _announce(self, ending: Ending) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber.endings.put_nowait(ending)
            except asyncio.QueueFull:  # a stream that far behind refreshes once for all of them anyway
                pass

    def subscribe(self) -> _Subscriber:
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)


def _parse(payload: str) -> Ending:
    try:
        raw = json.loads(payload)
        return Ending(str(raw["business"]), datetime.fromisoformat(raw["ended_at"]))
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable call-ending notice %r: every stream checks", payload)
        return Ending(None, None)


def _cursor(raw: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _sees(who: Viewer, business: str) -> bool:
    return who.everyone or business in who.businesses


def _event(ended_at: datetime | None, business: str | None) -> str:
    data = json.dumps({"business": business, "ended_at": ended_at.isoformat() if ended_at else None})
    return f"event: call_ended\nid: {ended_at.isoformat() if ended_at else ''}\ndata: {data}\n\n"


@signed_in
async def today_events(request: Request) -> Response:
    """`text/event-stream` of `call_ended` events for the viewer's businesses: the Today page refreshes
    on each. The cursor is the last ending the page has seen: its Last-Event-ID on a reconnect, the
    `since` the page was rendered with on the first connect (empty: it had seen none)."""
    pool = request.app.state.pool
    endings: CallEndings = request.app.state.call_endings
    session = request.cookies[SESSION_COOKIE]
    last_id = request.headers.get("Last-Event-ID", request.query_params.get("since"))
    seen = _cursor(last_id)

    async def stream() -> AsyncIterator[str]:
        nonlocal seen
        who = viewer(request)
        subscriber = endings.subscribe()
        try:
            yield f"retry: {RETRY_MS}\n\n"
            # a call may have ended between the page's rendering and this subscription
            pending: Ending | None = Ending(None, None)
            while True:
                if pending is None:
                    try:
                        pending = await asyncio.wait_for(subscriber.endings.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": still here\n\n"
                        continue
                ending, pending = pending, None
                if ending.business is not None and not _sees(who, ending.business):
                    continue
                # the session is checked again before anything is told: a signed-out or narrowed user
                # hears nothing more of calls they no longer see
                fresh = await viewer_for(pool, session)
                if fresh is None:
                    return
                who = fresh
                if ending.business is None:  # maybe missed: compare the latest ending with the cursor
                    latest = await console.latest_ending(pool, who)
                    if latest is None or (seen is not None and latest <= seen):
                        continue
                    # a client without any cursor is only told where things stand, not to refresh
                    yield _event(latest, None) if last_id is not None else f"id: {latest.isoformat()}\n\n"
                    seen = latest
                elif _sees(who, ending.business):
                    if ending.ended_at is not None and (seen is None or ending.ended_at > seen):
                        seen = ending.ended_at
                    yield _event(seen, ending.business)
        finally:
            endings.unsubscribe(subscriber)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip
