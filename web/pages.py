"""The console's pages: Today, Calls, a call, Appointments, Leads, Messages, Quality, Brain. Each reads
through agent/store with the signed-in user's scope; bad input is a 400 page, a call, appointment,
lead or message outside the scope a 404 page."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from agent.brain import schedule
from agent.calendar.changes import CalendarChange, owner_change
from agent.quality_report import ReportArgsError, charts, headline, window
from agent.store import appointments as booking
from agent.store import console, outbox
from agent.store.accounts import Viewer
from agent.store.audio import stored
from agent.store.kpis import business_kpis
from web.auth import signed_in, viewer
from web.brains import brain_files, brain_of
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


def call_filter(request: Request, tz: str) -> console.CallFilter:
    """The Calls filters of the query string (the page's and the API's), validated; 400 otherwise."""
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
    # ASCII digits only: "²" is a digit to isdigit() but not a number to int()
    if not (raw_page.isascii() and raw_page.isdigit()) or not 1 <= int(raw_page) <= MAX_PAGE:
        raise _bad(f"page is a number from 1 to {MAX_PAGE} (got {raw_page!r})")
    return console.CallFilter(day_from, day_to, outcome, flag, caller, int(raw_page), tz)


def start_of_today(tz: str) -> datetime:
    return datetime.combine(datetime.now(ZoneInfo(tz)).date(), time(0), ZoneInfo(tz))


@signed_in
async def today_page(request: Request) -> Response:
    who = viewer(request)
    tz = timezone_of(request, who)
    start = start_of_today(tz)
    data = await console.today(request.app.state.pool, who, start, start + timedelta(days=1))
    if request.headers.get("HX-Request"):
        return page(request, "today_live.html", tz=tz, day=start.date(), **data)
    # where the page's event stream starts: an ending after this one is news to the page
    latest = await console.latest_ending(request.app.state.pool, who)
    return page(request, "today.html", tz=tz, day=start.date(), since=latest.isoformat() if latest else "", **data)


@signed_in
async def calls_page(request: Request) -> Response:
    who = viewer(request)
    tz = timezone_of(request, who)
    f = call_filter(request, tz)
    calls, more = await console.list_calls(request.app.state.pool, who, f)
    # links to the neighbouring pages keep the filters
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return page(request, "calls.html", tz=tz, calls=calls, f=f, more=more, query=query,
                outcomes=console.OUTCOMES)  # fmt: skip


@signed_in
async def call_page(request: Request) -> Response:
    who = viewer(request)
    call_id = path_id(request, "call_id", "call")
    call = await console.call_detail(request.app.state.pool, who, call_id)
    if call is None:  # another owner's call reads exactly like one that does not exist
        raise HTTPException(404, "There is no such call.")
    return page(request, "call.html", tz=timezone_of(request, who), call=call, report=call["summary"] or {},
                turns=spoken_turns(call["turns"]))  # fmt: skip


def spoken_turns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript as it was spoken: a caller's consecutive rows are one turn. A turn said in parts
    (a number dictated in groups, each pause committed while the agent waited for the rest) is stored
    as a row per part; it is read as one line, numbered with the rows it joins ("#4-6")."""
    turns: list[dict[str, Any]] = []
    for row in rows:
        last = turns[-1] if turns else None
        if last is not None and row["role"] == "caller" == last["role"]:
            last["text"] = f"{last['text']} {row['text']}".strip()
            last["last_seq"] = row["seq"]
            last["ended_at"] = row["ended_at"] or last["ended_at"]
            last["interrupted"] = last["interrupted"] or row["interrupted"]
        else:
            turns.append({**row, "last_seq": row["seq"]})
    return turns


@signed_in
async def call_recording(request: Request) -> Response:
    """The call's recording for the page's audio player: the same scope as the call's page."""
    who = viewer(request)
    call_id = path_id(request, "call_id", "recording")
    location = await console.call_recording(request.app.state.pool, who, call_id)
    return await _audio(request, location, f"{call_id}.ogg", "audio/ogg", "recording")


@signed_in
async def message_audio(request: Request) -> Response:
    """A voicemail for the messages' audio players: the same scope as the message."""
    who = viewer(request)
    message_id = path_id(request, "message_id", "message")
    found = await console.message_audio(request.app.state.pool, who, message_id)
    location, call_id = found if found is not None else (None, None)
    return await _audio(request, location if call_id else None, f"{call_id}.wav", "audio/wav", "voicemail")


async def _audio(request: Request, location: str | None, file_name: str, media_type: str, what: str) -> Response:
    """The audio a row names, from the worker's disk or the bucket the workers move it to. Only the
    worker's own file name for the call: a location in a row can never reach another file or object."""
    headers = {"Cache-Control": "private, no-store"}
    if location is None or location.rsplit("/", 1)[-1] != file_name:
        raise HTTPException(404, f"There is no such {what}.")
    if stored(location):
        store = request.app.state.config.audio
        body = await store.read(location) if store is not None else None
        if body is None:
            raise HTTPException(404, f"There is no such {what}.")
        return _ranged(body, media_type, headers, request.headers.get("range"))
    if not await asyncio.to_thread(Path(location).is_file):
        raise HTTPException(404, f"There is no such {what}.")
    return FileResponse(location, media_type=media_type, headers=headers)


def _ranged(body: bytes, media_type: str, headers: dict[str, str], asked: str | None) -> Response:
    """The bytes, or the one range a player asks for (Safari's plays nothing without it), as a file
    response would answer it."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    found = re.fullmatch(r"bytes=(\d*)-(\d*)", (asked or "").strip())
    if found is None or not (found[1] or found[2]):
        return Response(body, media_type=media_type, headers=headers)
    size = len(body)
    start, end = (int(found[1]), int(found[2] or size - 1)) if found[1] else (max(0, size - int(found[2])), size - 1)
    end = min(end, size - 1)
    if start > end:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    return Response(body[start : end + 1], status_code=206, media_type=media_type,
                    headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"})  # fmt: skip


@signed_in
async def messages_page(request: Request) -> Response:
    who = viewer(request)
    awaiting = narrowed(request, "awaiting")
    show = "awaiting" if awaiting else "all"
    rows = await console.list_messages(request.app.state.pool, who, awaiting_only=awaiting)
    return page(request, "messages.html", tz=timezone_of(request, who), messages=rows, show=show)


@signed_in
async def called_back(request: Request) -> Response:
    who = viewer(request)
    message_id = path_id(request, "message_id", "message")
    row = await console.mark_called_back(request.app.state.pool, who, message_id)
    if row is None:
        raise HTTPException(404, "There is no such message.")
    if request.headers.get("HX-Request"):  # htmx swaps just the message's row
        return page(request, "message_row.html", tz=timezone_of(request, who), m=row)
    return RedirectResponse("/messages", status_code=303)


@dataclass(frozen=True)
class QualityScope:
    business: str | None  # None: every business (an operator's choice)
    start: datetime
    end: datetime
    tz: str


def quality_scope(request: Request, who: Viewer) -> QualityScope:
    """The business and window the Quality query string asks for (the page's and the API's): one of
    the viewer's businesses, or (operator) any or all; 404 for another's, 400 for a bad window."""
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
    return QualityScope(business, start, end, tz)


@signed_in
async def quality_page(request: Request) -> Response:
    who = viewer(request)
    q = request.query_params
    scope = quality_scope(request, who)
    business, start, end = scope.business, scope.start, scope.end
    # the scope is the business named in the query: one of the viewer's, or (operator) any or all
    k: dict[str, Any] = await business_kpis(request.app.state.pool, start=start, end=end, business=business, tz=scope.tz)
    return page(request, "quality.html", k=k, rows=headline(k), charts=charts(k), business=business,
                businesses=who.businesses, since=q.get("since", ""), day_from=q.get("from", ""),
                day_to=q.get("to", ""), start=start.astimezone(UTC), end=end.astimezone(UTC))  # fmt: skip


def narrowed(request: Request, default: str) -> bool:
    """`show=<default>|all` (the page's and the API's): whether the list is narrowed to `default`."""
    show = request.query_params.get("show", default)
    if show not in (default, "all"):
        raise _bad(f"show is {default} or all (got {show!r})")
    return show == default


def path_id(request: Request, name: str, what: str) -> uuid.UUID:
    """The id in the path; a malformed one is a 404 like an unknown one (the page's and the API's)."""
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise HTTPException(404, f"There is no such {what}.") from None


WEEKS_AROUND = 520  # a week further than ten years from now is a typo or a probe


def week_start(request: Request, tz: str) -> date:
    """The Monday of the week asked for (`week`: any day in it), this week by default."""
    today = datetime.now(ZoneInfo(tz)).date()
    day = _day(request.query_params.get("week"), "week") or today
    if abs((day - today).days) > WEEKS_AROUND * 7:
        raise _bad(f"week is within {WEEKS_AROUND // 52} years of today (got {day.isoformat()})")
    return day - timedelta(days=day.weekday())


async def _week(request: Request, monday: date, status_code: int = 200, **extra: Any) -> Response:
    who = viewer(request)
    tz = timezone_of(request, who)
    zone = ZoneInfo(tz)
    start = datetime.combine(monday, time(0), zone)
    rows = await console.week_appointments(request.app.state.pool, who, start,
                                           datetime.combine(monday + timedelta(days=7), time(0), zone))  # fmt: skip
    days = [monday + timedelta(days=i) for i in range(7)]
    by_day: dict[date, list[dict[str, Any]]] = {d: [] for d in days}
    for a in rows:
        by_day[a["start"].astimezone(zone).date()].append(a)
    zones = request.app.state.timezones
    return page(request, "appointments.html", status_code, tz=tz, days=days, by_day=by_day, zones=zones,
                previous=monday - timedelta(days=7), next=monday + timedelta(days=7),
                multiple=who.everyone or len(who.businesses) > 1, **extra)  # fmt: skip


@signed_in
async def appointments_page(request: Request) -> Response:
    return await _week(request, week_start(request, timezone_of(request, viewer(request))))


async def appointment_in_scope(request: Request) -> dict[str, Any]:
    appointment_id = path_id(request, "appointment_id", "appointment")
    row = await console.appointment(request.app.state.pool, viewer(request), appointment_id)
    if row is None:  # another owner's appointment reads exactly like one that does not exist
        raise HTTPException(404, "There is no such appointment.")
    return row


def _week_of(request: Request, moment: datetime) -> date:
    local = moment.astimezone(ZoneInfo(timezone_of(request, viewer(request)))).date()
    return local - timedelta(days=local.weekday())


class ChangeRefused(Exception):
    """An owner's change to an appointment that is not made, with the sentence the page shows."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code


ALREADY_CHANGED = "This appointment was already cancelled or moved: nothing was changed."


def _upcoming(row: dict[str, Any]) -> None:
    """A caller can change only an appointment still to come (find_for_caller); so can the owner."""
    if row["start"] <= datetime.now(UTC):
        raise ChangeRefused(409, "This appointment has already begun: it can no longer be moved or cancelled.")


async def _refused_change(request: Request, row: dict[str, Any], status_code: int, error: str) -> Response:
    """The week the appointment is in, with why the change was refused next to it."""
    return await _week(request, _week_of(request, row["start"]), status_code, error=error, error_for=row["id"])


async def cancel(request: Request, row: dict[str, Any]) -> booking.Appointment:
    """The owner cancels an appointment in their scope (the page's and the API's one path): only one
    still to come, by the store's own rule, and the owner's calendar follows; ChangeRefused says why not."""
    _upcoming(row)
    try:
        # the store's own rule: only a booked appointment is cancelled, under the number it was booked with
        cancelled = await booking.cancel(request.app.state.pool, row["business"], row["id"], row["customer_phone"])
    except booking.AppointmentNotFound:
        raise ChangeRefused(409, ALREADY_CHANGED) from None
    await _sync_calendar(request, "cancelled", cancelled)
    return cancelled


@signed_in
async def cancel_appointment(request: Request) -> Response:
    row = await appointment_in_scope(request)
    try:
        await cancel(request, row)
    except ChangeRefused as refused:
        return await _refused_change(request, row, refused.status_code, str(refused))
    return RedirectResponse(f"/appointments?week={_week_of(request, row['start'])}", status_code=303)


def _new_start(brain_path: Path | None, row: dict[str, Any], raw: str) -> tuple[datetime, datetime]:
    """[start, end) of the move asked for, held to the rules a caller's move is held to (hours, notice,
    how far ahead, the slot grid, the service's length and buffer); ChangeRefused says why not."""
    brain = brain_of(brain_path, row["business"])
    if brain is None:
        raise ChangeRefused(409, f"There is no valid brain file for {row['business']}, so its opening hours "
                                 "are unknown: fix it (see Brain) before moving appointments.")  # fmt: skip
    service = brain.service(row["service"])
    if service is None:
        raise ChangeRefused(409, f"{row['service']} is no longer a service in the brain file.")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ChangeRefused(400, f"The new time is a day and a time, YYYY-MM-DD HH:MM (got {raw!r}).") from None
    if when.tzinfo is not None:
        raise ChangeRefused(400, f"Give the new time on the business's clock ({brain.business.timezone}).")
    when = when.replace(tzinfo=brain.tz)
    problem = schedule.slot_problem(brain, service, when, datetime.now(UTC))
    if problem:
        raise ChangeRefused(400, problem)
    return when, when + timedelta(minutes=service.duration_minutes + brain.booking.buffer_minutes)


async def move(request: Request, row: dict[str, Any], raw_start: str) -> booking.Appointment:
    """The owner moves an appointment in their scope to `raw_start` on the business's clock (the page's
    and the API's one path), held to a caller's rules, and the owner's calendar follows; ChangeRefused
    says why not."""
    _upcoming(row)
    start, end = _new_start(request.app.state.config.brain_path, row, raw_start)
    try:
        # the store's own rules: only a booked appointment moves, and Postgres refuses an overlap
        moved = await booking.reschedule(request.app.state.pool, row["business"], row["id"], start, end,
                                         row["customer_phone"])  # fmt: skip
    except booking.SlotTaken:
        raise ChangeRefused(409, f"{start:%Y-%m-%d %H:%M} is taken by another appointment: nothing was changed. "
                                 "Pick a free time.") from None  # fmt: skip
    except booking.AppointmentNotFound:
        raise ChangeRefused(409, ALREADY_CHANGED) from None
    await _sync_calendar(request, "moved", moved)
    return moved


@signed_in
async def move_appointment(request: Request) -> Response:
    row = await appointment_in_scope(request)
    try:
        moved = await move(request, row, str(request.state.form.get("start", "")).strip())
    except ChangeRefused as refused:
        return await _refused_change(request, row, refused.status_code, str(refused))
    return RedirectResponse(f"/appointments?week={_week_of(request, moved.start)}", status_code=303)


async def _sync_calendar(request: Request, change: CalendarChange, appointment: booking.Appointment) -> None:
    """The owner's CalDAV calendar follows a change made here as it follows one made on a call: an
    outbox row the notification sender delivers (none for a business without a calendar)."""
    brain = brain_of(request.app.state.config.brain_path, appointment.business)
    row = owner_change(brain, change, appointment, at=datetime.now(UTC)) if brain is not None else None
    if row is not None:
        await outbox.queue(request.app.state.pool, [row])


@signed_in
async def leads_page(request: Request) -> Response:
    who = viewer(request)
    open_only = narrowed(request, "open")
    show = "open" if open_only else "all"
    rows = await console.list_leads(request.app.state.pool, who, open_only=open_only)
    return page(request, "leads.html", tz=timezone_of(request, who), leads=rows, show=show)


@signed_in
async def contacted(request: Request) -> Response:
    who = viewer(request)
    row = await console.mark_contacted(request.app.state.pool, who, path_id(request, "lead_id", "lead"))
    if row is None:
        raise HTTPException(404, "There is no such lead.")
    if request.headers.get("HX-Request"):  # htmx swaps just the lead's row
        return page(request, "lead_row.html", tz=timezone_of(request, who), lead=row)
    return RedirectResponse("/leads", status_code=303)


@signed_in
async def brain_page(request: Request) -> Response:
    config = request.app.state.config
    return page(request, "brain.html", files=brain_files(config.brain_path, viewer(request)),
                brain_path=config.brain_path)  # fmt: skip
