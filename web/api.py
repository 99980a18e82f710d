"""The console's JSON API under /api/v1: what the pages show, for scripts, with the pages' scope and
the pages' store queries. A script sends an API token (`Authorization: Bearer ...`, from `receptionist
users token`); a browser's session cookie works too, and then a POST carries its CSRF token in the
X-CSRF-Token header. Every refusal is JSON, {"error": "..."}, with its status."""

from __future__ import annotations

import functools
import hmac
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.store import console
from agent.store.accounts import Viewer, viewer_for, viewer_for_api_token
from agent.store.kpis import business_kpis
from web import pages
from web.auth import CSRF_HEADER, SESSION_COOKIE, Page
from web.pages import (
    call_filter,
    narrowed,
    path_id,
    quality_scope,
    start_of_today,
    timezone_of,
    week_start,
)

PREFIX = "/api/v1"
_BEARER = {"WWW-Authenticate": "Bearer"}


# -- what the API answers: these models are the OpenAPI description's schemas (web/openapi.py) --------


class ApiError(BaseModel):
    error: str = Field(description="why the request was refused, in a sentence")


class CallSummary(BaseModel):
    id: uuid.UUID
    business: str
    caller_number: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None = Field(description="booked, lead, message, escalated, answered, abandoned or error")
    end_reason: str | None
    duration_s: float | None
    flags: list[str] = Field(description="the call report's quality flags, e.g. dead_air")


class CallPage(BaseModel):
    calls: list[CallSummary] = Field(description=f"newest first, at most {console.CALLS_PER_PAGE}")
    page: int
    next_page: int | None = Field(description="the next page's number, or null on the last page")


class Turn(BaseModel):
    seq: int
    role: Literal["agent", "caller"]
    text: str
    started_at: datetime
    ended_at: datetime | None
    interrupted: bool


class ToolCall(BaseModel):
    seq: int
    name: str
    arguments: dict[str, Any]
    result: str | None
    error: str | None
    latency_ms: float | None
    created_at: datetime


class Violation(BaseModel):
    turn_seq: int | None
    kind: str
    claim: str = Field(description="what the receptionist said that its facts did not back")
    correction: str | None


class CallAppointment(BaseModel):
    service: str
    customer_name: str
    customer_phone: str
    start: datetime
    status: Literal["booked", "cancelled", "rescheduled"]
    confirmation_code: str


class CallLead(BaseModel):
    name: str | None
    phone: str | None
    need: str | None
    urgency: str | None
    score: int


class CallMessage(BaseModel):
    id: uuid.UUID
    caller_name: str | None
    phone: str | None
    body: str
    callback_requested: bool
    urgency: str | None
    called_back_at: datetime | None
    called_back_by: str | None = Field(description="the email of the user who called back")


class Message(CallMessage):
    call_id: uuid.UUID | None
    business: str
    created_at: datetime


class CallDetail(CallSummary):
    answered_at: datetime | None
    dialed_number: str | None
    report: dict[str, Any] | None = Field(description="the call report (summary, flags, timing, cost), once written")
    turns: list[Turn]
    tool_calls: list[ToolCall]
    violations: list[Violation]
    appointments: list[CallAppointment]
    leads: list[CallLead]
    messages: list[CallMessage]


class MessageList(BaseModel):
    messages: list[Message] = Field(description="newest first, at most 200")


class TodayCounts(BaseModel):
    calls: int
    booked: int
    flagged: int


class Booking(BaseModel):
    business: str
    service: str
    customer_name: str
    start: datetime
    confirmation_code: str
    call_id: uuid.UUID | None


class HotLead(BaseModel):
    name: str | None
    phone: str | None
    need: str | None
    score: int
    call_id: uuid.UUID | None


class Today(BaseModel):
    day: date
    timezone: str
    counts: TodayCounts
    calls: list[CallSummary] = Field(description="today's latest 20 calls")
    bookings: list[Booking] = Field(description="appointments booked today")
    hot_leads: list[HotLead]
    awaiting_callback: list[Message] = Field(description="callbacks still owed, whenever asked for")


class Outcomes(BaseModel):
    booked: int
    leads: int
    messages: int
    errors: int


class BookingCompletion(BaseModel):
    calls_with_booking_intent: int
    booked: int
    rate: float | None


class BookingsOnDay(BaseModel):
    day: date
    bookings: int


class HungUp(BaseModel):
    during_greeting: int
    after_greeting: int


class ResponseGap(BaseModel):
    p50: float | None
    p95: float | None


class ToolFigures(BaseModel):
    tool: str
    calls: int
    errors: int
    latency_p95_ms: float | None


class Cost(BaseModel):
    total: float | None
    per_call: float | None
    per_booking: float | None
    calls_with_cost: int


class Quality(BaseModel):
    """The figures of `receptionist report --json`, for calls started in [from, to)."""

    model_config = ConfigDict(populate_by_name=True)

    business: str | None = Field(description="null: every business (an operator's view)")
    from_: datetime = Field(alias="from")
    to: datetime
    timezone: str
    calls: int
    answered: int
    outcomes: Outcomes
    booking_completion: BookingCompletion
    bookings_per_day: list[BookingsOnDay]
    handoff_rate: float | None
    transfer_success: float | None
    callback_requests: int
    hung_up: HungUp
    flags_per_100_calls: dict[str, float]
    response_gap_s: ResponseGap
    time_to_greeting_p95_s: float | None
    tools: list[ToolFigures]
    violations_per_100_calls: float | None
    cost: Cost
    calls_by_hour: dict[int, int] = Field(description="calls started in each hour of the day (0-23), local time")


class Appointment(BaseModel):
    id: uuid.UUID
    business: str
    service: str
    customer_name: str
    customer_phone: str
    start: datetime
    end: datetime
    status: Literal["booked", "cancelled"] = Field(description="a moved appointment shows at its new time")
    confirmation_code: str
    call_id: uuid.UUID | None
    updated_at: datetime


class Move(BaseModel):
    """Where an appointment moves to: the same rules as a caller's move (opening hours, notice, the
    slot grid, no overlap)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="the new start on the business's clock, YYYY-MM-DDTHH:MM, without an offset",
                       examples=["2026-12-01T13:00"])  # fmt: skip


class Week(BaseModel):
    week: date = Field(description="its Monday, on the business's clock")
    timezone: str
    appointments: list[Appointment] = Field(description="starting in the week, soonest first")


class Lead(BaseModel):
    id: uuid.UUID
    call_id: uuid.UUID | None
    business: str
    name: str | None
    phone: str | None
    need: str | None
    urgency: str | None
    answers: dict[str, Any] = Field(description="the brain's qualifying questions, answered")
    score: int
    created_at: datetime
    contacted_at: datetime | None
    contacted_by: str | None = Field(description="the email of the user who contacted them")


class LeadList(BaseModel):
    leads: list[Lead] = Field(description="best score first, at most 200")


def _answer(model: BaseModel) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json", by_alias=True))


def refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The API's error response (the app's error handlers answer /api/ paths with it)."""
    return JSONResponse(ApiError(error=message).model_dump(), status_code=status, headers=headers)


# -- who is asking ----------------------------------------------------------------------------------


async def _api_viewer(request: Request) -> Viewer:
    pool = request.app.state.pool
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "Authorization is `Bearer <token>`", headers=_BEARER)
        who = await viewer_for_api_token(pool, token.strip())
        if who is None:
            raise HTTPException(401, "this API token is unknown or revoked", headers=_BEARER)
        return who
    # a browser on its session: never a token in a cookie (that would let any page's form spend it)
    session = request.cookies.get(SESSION_COOKIE)
    who = await viewer_for(pool, session) if session else None
    if who is None:
        raise HTTPException(401, "send an API token as `Authorization: Bearer <token>`", headers=_BEARER)
    if request.method not in ("GET", "HEAD"):
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, who.csrf_token):
            raise HTTPException(403, f"a change made with a session cookie needs its {CSRF_HEADER} header")
    return who


def authorised(handler: Page) -> Page:
    """The endpoint for a token's or a session's user (request.state.viewer); 401 for anyone else."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        request.state.viewer = await _api_viewer(request)
        return await handler(request)

    return guarded


# -- endpoints --------------------------------------------------------------------------------------


@authorised
async def calls(request: Request) -> Response:
    who: Viewer = request.state.viewer
    f = call_filter(request, timezone_of(request, who))
    rows, more = await console.list_calls(request.app.state.pool, who, f)
    return _answer(CallPage.model_validate({"calls": rows, "page": f.page, "next_page": f.page + 1 if more else None}))


@authorised
async def call(request: Request) -> Response:
    who: Viewer = request.state.viewer
    row = await console.call_detail(request.app.state.pool, who, path_id(request, "call_id", "call"))
    if row is None:  # another owner's call reads exactly like one that does not exist
        raise HTTPException(404, "There is no such call.")
    return _answer(CallDetail.model_validate(row | {"report": row["summary"]}))


@authorised
async def messages(request: Request) -> Response:
    who: Viewer = request.state.viewer
    rows = await console.list_messages(request.app.state.pool, who, awaiting_only=narrowed(request, "awaiting"))
    return _answer(MessageList.model_validate({"messages": rows}))


@authorised
async def called_back(request: Request) -> Response:
    who: Viewer = request.state.viewer
    row = await console.mark_called_back(request.app.state.pool, who, path_id(request, "message_id", "message"))
    if row is None:
        raise HTTPException(404, "There is no such message.")
    return _answer(Message.model_validate(row))


@authorised
async def today(request: Request) -> Response:
    who: Viewer = request.state.viewer
    tz = timezone_of(request, who)
    start = start_of_today(tz)
    data = await console.today(request.app.state.pool, who, start, start + timedelta(days=1))
    return _answer(Today.model_validate(data | {"day": start.date(), "timezone": tz}))


@authorised
async def quality(request: Request) -> Response:
    who: Viewer = request.state.viewer
    scope = quality_scope(request, who)
    k = await business_kpis(request.app.state.pool, start=scope.start, end=scope.end, business=scope.business,
                            tz=scope.tz)  # fmt: skip
    return _answer(Quality.model_validate(k))


@authorised
async def appointments(request: Request) -> Response:
    who: Viewer = request.state.viewer
    tz = timezone_of(request, who)
    monday = week_start(request, tz)
    zone = ZoneInfo(tz)
    rows = await console.week_appointments(request.app.state.pool, who, datetime.combine(monday, time(0), zone),
                                           datetime.combine(monday + timedelta(days=7), time(0), zone))  # fmt: skip
    return _answer(Week.model_validate({"week": monday, "timezone": tz, "appointments": rows}))


@authorised
async def leads(request: Request) -> Response:
    who: Viewer = request.state.viewer
    rows = await console.list_leads(request.app.state.pool, who, open_only=narrowed(request, "open"))
    return _answer(LeadList.model_validate({"leads": rows}))


@authorised
async def contacted(request: Request) -> Response:
    who: Viewer = request.state.viewer
    row = await console.mark_contacted(request.app.state.pool, who, path_id(request, "lead_id", "lead"))
    if row is None:
        raise HTTPException(404, "There is no such lead.")
    return _answer(Lead.model_validate(row))


async def _changed(request: Request, appointment_id: uuid.UUID) -> Response:
    row = await console.appointment(request.app.state.pool, request.state.viewer, appointment_id)
    return _answer(Appointment.model_validate(row))


@authorised
async def cancel_appointment(request: Request) -> Response:
    row = await pages.appointment_in_scope(request)
    try:
        cancelled = await pages.cancel(request, row)  # the Appointments page's own path
    except pages.ChangeRefused as refused:
        raise HTTPException(refused.status_code, str(refused)) from None
    return await _changed(request, cancelled.id)


@authorised
async def move_appointment(request: Request) -> Response:
    row = await pages.appointment_in_scope(request)
    try:
        move = Move.model_validate_json(await request.body())
    except ValidationError:
        raise HTTPException(400, 'the body is JSON, {"start": "YYYY-MM-DDTHH:MM"} on the business\'s clock') from None
    try:
        moved = await pages.move(request, row, move.start.strip())  # the Appointments page's own path
    except pages.ChangeRefused as refused:
        raise HTTPException(refused.status_code, str(refused)) from None
    return await _changed(request, moved.id)


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 description of these endpoints: public, like any API's reference."""
    from web.openapi import description  # it reads this module's models

    return JSONResponse(description())


routes = [
    Route("/calls", calls),
    Route("/calls/{call_id}", call),
    Route("/messages", messages),
    Route("/messages/{message_id}/called-back", called_back, methods=["POST"]),
    Route("/today", today),
    Route("/quality", quality),
    Route("/appointments", appointments),
    Route("/appointments/{appointment_id}/cancel", cancel_appointment, methods=["POST"]),
    Route("/appointments/{appointment_id}/move", move_appointment, methods=["POST"]),
    Route("/leads", leads),
    Route("/leads/{lead_id}/contacted", contacted, methods=["POST"]),
    Route("/openapi.json", openapi),
]
