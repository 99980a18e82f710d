"""The console's Starlette application: its pages, the Postgres pool they share, and the error pages
(every refusal is a page that says why; an unexpected exception is a 500 page and a logged bug)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent.store.audio import AudioStore
from agent.store.db import open_pool
from web import api, pages
from web.auth import login, logout
from web.calendar_feed import calendar_feed
from web.templating import page
from web.today_events import CallEndings, today_events

if TYPE_CHECKING:
    from agent.brain import Brain

log = logging.getLogger("receptionist.web")

HERE = Path(__file__).parent

_TITLES = {400: "Bad request", 401: "Unauthorised", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           429: "Too many requests", 500: "Server error"}  # fmt: skip


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console needs from the settings."""

    database_url: str
    secure_cookies: bool = False
    # the brain files: timezones, the Brain page, the hours an owner's move keeps to, the calendar feeds
    brain_path: Path | None = None
    # where the workers move call audio (AUDIO_BUCKET): recordings and voicemails are read from there
    audio: AudioStore | None = None


def _for_api(request: Request) -> bool:
    return request.url.path.startswith(api.PREFIX + "/")


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _for_api(request):
        return api.refusal(exc.status_code, exc.detail, exc.headers)
    detail = exc.detail if exc.detail != _TITLES.get(exc.status_code) else ""
    return page(request, "error.html", exc.status_code, status=exc.status_code,
                title=_TITLES.get(exc.status_code, "Error"), detail=detail)  # fmt: skip


async def _crashed(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    if _for_api(request):
        return api.refusal(500, "something went wrong on our side; it has been logged")
    return page(request, "error.html", 500, status=500, title=_TITLES[500],
                detail="Something went wrong on our side; it has been logged.")  # fmt: skip


def _brains(brain_path: Path | None) -> dict[str, Brain]:
    """Each business's brain, by name; a business without a readable one is shown in UTC, and has no
    calendar feed."""
    from agent.brain import BrainError, load_brains

    if brain_path is None:
        return {}
    try:
        return {b.business.name: b for b in load_brains(brain_path).all}
    except BrainError as e:
        log.warning("brain files unreadable (%s): pages show times in UTC", e)
        return {}


def create_app(config: ConsoleConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # a page waits on one or two short queries; a handful of connections serve one owner's team
        app.state.pool = await open_pool(config.database_url, min_size=1, max_size=5, name="receptionist-web")
        # plus one connection per console process, listening for call endings (the Today page's events)
        app.state.call_endings = CallEndings(config.database_url)
        try:
            await app.state.call_endings.start()
            yield
        finally:
            await app.state.call_endings.aclose()
            await app.state.pool.close()

    app = Starlette(
        routes=[
            Route("/", pages.today_page),
            Route("/today/events", today_events),
            Route("/calls", pages.calls_page),
            Route("/calls/{call_id}", pages.call_page),
            Route("/appointments", pages.appointments_page),
            Route("/appointments/{appointment_id}/cancel", pages.cancel_appointment, methods=["POST"]),
            Route("/appointments/{appointment_id}/move", pages.move_appointment, methods=["POST"]),
            Route("/leads", pages.leads_page),
            Route("/leads/{lead_id}/contacted", pages.contacted, methods=["POST"]),
            Route("/calls/{call_id}/recording", pages.call_recording),
            Route("/messages", pages.messages_page),
            Route("/messages/{message_id}/called-back", pages.called_back, methods=["POST"]),
            Route("/messages/{message_id}/audio", pages.message_audio),
            Route("/quality", pages.quality_page),
            Route("/brain", pages.brain_page),
            Route("/calendar/{token}.ics", calendar_feed),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Mount(api.PREFIX, routes=api.routes),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={HTTPException: _refused, Exception: _crashed},
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.brains = _brains(config.brain_path)
    app.state.timezones = {name: b.business.timezone for name, b in app.state.brains.items()}
    return app


def pool_of(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool
