"""The console's Starlette application: its pages, the Postgres pool they share, and the error pages
(every refusal is a page that says why; an unexpected exception is a 500 page and a logged bug)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent.store.db import open_pool
from web import pages
from web.auth import login, logout
from web.templating import page

log = logging.getLogger("receptionist.web")

HERE = Path(__file__).parent

_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed", 500: "Server error"}


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console needs from the settings."""

    database_url: str
    secure_cookies: bool = False
    brain_path: Path | None = None  # where the businesses' timezones are read from


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.detail != _TITLES.get(exc.status_code) else ""
    return page(request, "error.html", exc.status_code, status=exc.status_code,
                title=_TITLES.get(exc.status_code, "Error"), detail=detail)  # fmt: skip


async def _crashed(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return page(request, "error.html", 500, status=500, title=_TITLES[500],
                detail="Something went wrong on our side; it has been logged.")  # fmt: skip


def _timezones(brain_path: Path | None) -> dict[str, str]:
    """Each business's timezone, from its brain file; a business without a readable one is shown in UTC."""
    from agent.brain import BrainError, load_brains

    if brain_path is None:
        return {}
    try:
        return {b.business.name: b.business.timezone for b in load_brains(brain_path).all}
    except BrainError as e:
        log.warning("brain files unreadable (%s): pages show times in UTC", e)
        return {}


def create_app(config: ConsoleConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # a page waits on one or two short queries; a handful of connections serve one owner's team
        app.state.pool = await open_pool(config.database_url, min_size=1, max_size=5, name="receptionist-web")
        try:
            yield
        finally:
            await app.state.pool.close()

    app = Starlette(
        routes=[
            Route("/", pages.today_page),
            Route("/calls", pages.calls_page),
            Route("/calls/{call_id}", pages.call_page),
            Route("/calls/{call_id}/recording", pages.call_recording),
            Route("/messages", pages.messages_page),
            Route("/messages/{message_id}/called-back", pages.called_back, methods=["POST"]),
            Route("/quality", pages.quality_page),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={HTTPException: _refused, Exception: _crashed},
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.timezones = _timezones(config.brain_path)
    return app


def pool_of(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool
