"""The console's pages: Today, Calls, a call, Messages, Quality. Each reads through agent/store with
the signed-in user's scope; bad input is a 400 page, a call outside the scope a 404 page."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from agent.quality_report import ReportArgsError, charts, headline, window
from agent.store import console
from agent.store.accounts import Viewer
from agent.store.kpis import business_kpis
from web.auth import signed_in, viewer
from web.templating import page

MAX_PAGE = 10_000  # past this a page number is a typo or a probe, not a reader
_FLAG = re.compile(r"^[a-z_]{1,40}$")
_DIGITS = re.compile(r"^\d{1,15}$")


def timezone_of(request: Request, who: Viewer) -> str:
    """The clock an owner's pages use: their business's, when they have exactly one; else UTC."""
    zones = request.app.state.timezones
    return zones.get(who.businesses[0], "UTC") if len(who.businesses) == 1 else "UTC"


def _bad(detail: str) -> HTTPException:
    return HTTPException(400, detail)


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(f"{name} is a day, YYYY-MM-DD (got {raw!r})") from None


def _call_filter(request: Request, tz: str) -> console.CallFilter:
    q = request.query_params
    day_from, day_to = _day(q.get("from"), "from"), _day(q.get("to"), "to")
    if day_from and day_to and day_to < day_from:
        raise _bad("to is before from")
    outcome = q.get("outcome") or None
    if outcome and outcome not in console.OUTCOMES:
        raise _bad(f"outcome is one of {', '.join(console.OUTCOMES)} (got {outcome!r})")
    flag = q.get("flag") or None
    if flag and not _FLAG.match(flag):
        raise _bad(f"a flag is a word like dead_air (got {flag!r})")
    caller = re.sub(r"[\s()+.-]", "", q.get("caller") or "") or None
    if caller and not _DIGITS.match(caller):
        raise _bad(f"caller is digits of a phone number (got {q.get('caller')!r})")
    raw_page = q.get("page") or "1"
    if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
        raise _bad(f"page is a number from 1 to {MAX_PAGE} (got {raw_page!r})")
    return console.CallFilter(day_from, day_to, outcome, flag, caller, int(raw_page), tz)


@signed_in
async def today_page(request: Request) -> Response:
    who = viewer(request)
    tz = timezone_of(request, who)
    start = datetime.combine(datetime.now(ZoneInfo(tz)).date(), time(0), ZoneInfo(tz))
    data = await console.today(request.app.state.pool, who, start, start + timedelta(days=1))
    template = "today_live.html" if request.headers.get("HX-Request") else "today.html"
    return page(request, template, tz=tz, day=start.date(), **data)


@signed_in
async def calls_page(request: Request) -> Response:
    who = viewer(request)
    tz = timezone_of(request, who)
    f = _call_filter(request, tz)
    calls, more = await console.list_calls(request.app.state.pool, who, f)
    # links to the neighbouring pages keep the filters
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return page(request, "calls.html", tz=tz, calls=calls, f=f, more=more, query=query,
                outcomes=console.OUTCOMES)  # fmt: skip


@signed_in
async def call_page(request: Request) -> Response:
    who = viewer(request)
    try:
        call_id = uuid.UUID(request.path_params["call_id"])
    except ValueError:
        raise HTTPException(404, "There is no such call.") from None
    call = await console.call_detail(request.app.state.pool, who, call_id)
    if call is None:  # another owner's call reads exactly like one that does not exist
        raise HTTPException(404, "There is no such call.")
    return page(request, "call.html", tz=timezone_of(request, who), call=call, report=call["summary"] or {})


@signed_in
async def call_recording(request: Request) -> Response:
    """The call's recording for the page's audio player: the same scope as the call's page."""
    who = viewer(request)
    try:
        call_id = uuid.UUID(request.path_params["call_id"])
    except ValueError:
        raise HTTPException(404, "There is no such recording.") from None
    path = await console.call_recording(request.app.state.pool, who, call_id)
    # only the worker's own file name for this call: a path in the row can never reach another file
    if path is None or Path(path).name != f"{call_id}.ogg" or not await asyncio.to_thread(Path(path).is_file):
        raise HTTPException(404, "There is no such recording.")
    return FileResponse(path, media_type="audio/ogg", headers={"Cache-Control": "private, no-store"})


@signed_in
async def messages_page(request: Request) -> Response:
    who = viewer(request)
    show = request.query_params.get("show", "awaiting")
    if show not in ("awaiting", "all"):
        raise _bad(f"show is awaiting or all (got {show!r})")
    rows = await console.list_messages(request.app.state.pool, who, awaiting_only=show == "awaiting")
    return page(request, "messages.html", tz=timezone_of(request, who), messages=rows, show=show)


@signed_in
async def called_back(request: Request) -> Response:
    who = viewer(request)
    try:
        message_id = uuid.UUID(request.path_params["message_id"])
    except ValueError:
        raise HTTPException(404, "There is no such message.") from None
    row = await console.mark_called_back(request.app.state.pool, who, message_id)
    if row is None:
        raise HTTPException(404, "There is no such message.")
    if request.headers.get("HX-Request"):  # htmx swaps just the message's row
        return page(request, "message_row.html", tz=timezone_of(request, who), m=row)
    return RedirectResponse("/messages", status_code=303)


@signed_in
async def quality_page(request: Request) -> Response:
    who = viewer(request)
    q = request.query_params
    business: str | None = q.get("business") or None
    if business is None and not who.everyone:
        business = who.businesses[0] if who.businesses else None
    if business is not None and not who.everyone and business not in who.businesses:
        raise HTTPException(404, "There is no such business among yours.")
    if business is None and not who.everyone:
        raise HTTPException(404, "Your account sees no business yet.")
    try:
        start, end = window(q.get("since") or None, q.get("from") or None, q.get("to") or None)
    except ReportArgsError as e:
        raise _bad(str(e).replace("--", "")) from None
    tz = request.app.state.timezones.get(business, "UTC") if business else "UTC"
    # the scope is the business named in the query: one of the viewer's, or (operator) any or all
    k: dict[str, Any] = await business_kpis(request.app.state.pool, start=start, end=end, business=business, tz=tz)
    return page(request, "quality.html", k=k, rows=headline(k), charts=charts(k), business=business,
                businesses=who.businesses, since=q.get("since", ""), day_from=q.get("from", ""),
                day_to=q.get("to", ""), start=start.astimezone(UTC), end=end.astimezone(UTC))  # fmt: skip
