"""The OpenAPI 3.1 description of the console's JSON API (served at /api/v1/openapi.json): the paths
written here, the response schemas generated from web/api.py's models, so the two cannot drift."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agent.store import console
from web import api
from web.auth import CSRF_HEADER
from web.pages import MAX_PAGE

_MODELS: list[type[BaseModel]] = [
    api.ApiError, api.CallPage, api.CallDetail, api.MessageList, api.Message, api.Today, api.Quality,
    api.Week, api.LeadList, api.Lead, api.Appointment, api.Move,
]  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _refused(description: str) -> dict[str, Any]:
    return _json(api.ApiError, description)


_UNAUTHORISED = _refused("no API token or session, or a revoked or unknown token")


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": f"the {what}'s id",
            "schema": {"type": "string", "format": "uuid"}}  # fmt: skip


def _get(summary: str, ok: tuple[type[BaseModel], str], params: list[dict[str, Any]], *,
         bad: str | None = None, missing: str | None = None) -> dict[str, Any]:  # fmt: skip
    responses: dict[str, Any] = {"200": _json(*ok), "401": _UNAUTHORISED}
    if bad:
        responses["400"] = _refused(bad)
    if missing:
        responses["404"] = _refused(missing)
    return {"get": {"summary": summary, "parameters": params, "responses": responses}}


_DAY = {"type": "string", "format": "date"}


def _appointment_change(summary: str, done: str, *, bad: str | None = None,
                        body: type[BaseModel] | None = None) -> dict[str, Any]:  # fmt: skip
    """A POST that changes an appointment as the Appointments page does, with the page's refusals."""
    operation: dict[str, Any] = {
        "summary": summary,
        "description": f"With a session cookie instead of a token, send its CSRF token as {CSRF_HEADER}.",
        "parameters": [_path_id("appointment_id", "appointment")],
        "responses": {
            "200": _json(api.Appointment, done),
            "401": _UNAUTHORISED,
            "403": _refused(f"a session cookie's request without its {CSRF_HEADER}"),
            "404": _refused("no such appointment among the businesses this user sees"),
            "409": _refused("already begun, already cancelled or moved, the slot is taken, or the business's "
                            "brain file is invalid: nothing was changed"),
        },
    }  # fmt: skip
    if bad is not None:
        operation["responses"]["400"] = _refused(bad)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return {"post": operation}


@functools.cache
def description() -> dict[str, Any]:
    _, schemas = models_json_schema([(m, "serialization") for m in _MODELS],
                                    ref_template="#/components/schemas/{model}")  # fmt: skip
    paths = {
        "/calls": _get(
            "Calls, newest first, filtered as on the Calls page",
            (api.CallPage, "one page of calls"),
            [
                _query("from", "first day, on the business's clock (inclusive)", _DAY),
                _query("to", "last day (inclusive)", _DAY),
                _query("outcome", "the call's outcome", {"type": "string", "enum": list(console.OUTCOMES)}),
                _query("flag", "a quality flag the call report raised", {"type": "string", "pattern": "^[a-z_]{1,40}$"}),
                _query("caller", "digits anywhere in the caller's number", {"type": "string"}),
                _query("page", "page number", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
            ],
            bad="a malformed filter or page number",
        ),
        "/calls/{call_id}": _get(
            "A call: transcript, tool calls, grounding violations, the report, what it booked or left",
            (api.CallDetail, "the call"),
            [_path_id("call_id", "call")],
            missing="no such call among the businesses this user sees",
        ),
        "/messages": _get(
            "Messages callers left, newest first",
            (api.MessageList, "the messages"),
            [_query("show", "awaiting: callbacks still owed; all: every message",
                    {"type": "string", "enum": ["awaiting", "all"], "default": "awaiting"})],  # fmt: skip
            bad="show is neither awaiting nor all",
        ),
        "/messages/{message_id}/called-back": {"post": {
            "summary": "Record that this user called the caller back (the first mark stands)",
            "description": f"With a session cookie instead of a token, send its CSRF token as {CSRF_HEADER}.",
            "parameters": [_path_id("message_id", "message")],
            "responses": {
                "200": _json(api.Message, "the message, marked"),
                "401": _UNAUTHORISED,
                "403": _refused(f"a session cookie's request without its {CSRF_HEADER}"),
                "404": _refused("no such message among the businesses this user sees"),
            },
        }},  # fmt: skip
        "/today": _get(
            "Today on the business's clock: counts, calls, bookings, hot leads, callbacks owed",
            (api.Today, "today so far"),
            [],
        ),
        "/quality": _get(
            "The quality figures (`receptionist report`) over a window",
            (api.Quality, "the figures"),
            [
                _query("business", "one of this user's businesses (default: the first); an operator may leave it out for all",
                       {"type": "string"}),  # fmt: skip
                _query("since", "a window ending now: 24h, 7d, 4w", {"type": "string"}),
                _query("from", "first day (inclusive), instead of since", _DAY),
                _query("to", "last day (inclusive)", _DAY),
            ],
            bad="a malformed window",
            missing="a business this user does not see",
        ),
        "/appointments": _get(
            "Appointments of a week, booked and cancelled, soonest first",
            (api.Week, "the week"),
            [_query("week", "any day of the week (default: this week)", _DAY)],
            bad="week is not a day, or more than ten years away",
        ),
        "/appointments/{appointment_id}/cancel": _appointment_change(
            "Cancel a booked appointment still to come; the owner's calendar follows",
            "the appointment, cancelled",
        ),
        "/appointments/{appointment_id}/move": _appointment_change(
            "Move a booked appointment still to come, held to the rules a caller's move is held to; "
            "the owner's calendar follows",
            "the appointment at its new time (a new id: the old one is kept as rescheduled)",
            bad="a malformed body or time, or a time the business's hours, notice or slot grid rule out",
            body=api.Move,
        ),
        "/leads": _get(
            "Leads by score, best first",
            (api.LeadList, "the leads"),
            [_query("show", "open: not contacted yet; all: every lead",
                    {"type": "string", "enum": ["open", "all"], "default": "open"})],  # fmt: skip
            bad="show is neither open nor all",
        ),
        "/leads/{lead_id}/contacted": {"post": {
            "summary": "Record that this user contacted the lead (the first mark stands)",
            "description": f"With a session cookie instead of a token, send its CSRF token as {CSRF_HEADER}.",
            "parameters": [_path_id("lead_id", "lead")],
            "responses": {
                "200": _json(api.Lead, "the lead, marked"),
                "401": _UNAUTHORISED,
                "403": _refused(f"a session cookie's request without its {CSRF_HEADER}"),
                "404": _refused("no such lead among the businesses this user sees"),
            },
        }},  # fmt: skip
        "/openapi.json": {"get": {
            "summary": "This description", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }},  # fmt: skip
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Receptionist console API",
            "version": "1",
            "description": "What the owner's console shows, as JSON, scoped to the businesses the user sees. "
            "Get a token with `receptionist users token EMAIL`.",
        },
        "servers": [{"url": api.PREFIX}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                          "description": "a token from `receptionist users token`"}},  # fmt: skip
        },
    }
