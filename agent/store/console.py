"""What the owner's console reads and changes, each query scoped to the businesses the signed-in user
may see in its own WHERE clause (`business = ANY(...)`), so no row of another owner is ever fetched."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent.store.accounts import Viewer

OUTCOMES = ("booked", "lead", "message", "escalated", "answered", "abandoned", "error")
CALLS_PER_PAGE = 50


def _scope(viewer: Viewer) -> dict[str, Any]:
    return {"everyone": viewer.everyone, "businesses": list(viewer.businesses)}


def _in_scope(alias: str) -> str:
    return f"(%(everyone)s OR {alias}.business = ANY(%(businesses)s))"


def _list_scope(viewer: Viewer, alias: str) -> list[str]:
    """The scope as a list's WHERE writes it so Postgres can walk an index newest first and stop at a
    page: none for an operator (calls_started_idx), `business = x` for an owner of one business
    (calls_business_started_idx). `everyone OR business = ANY(...)`, planned once for every viewer,
    made it sort all of a business's calls for each page: 150-200 ms at 100,000 calls."""
    if viewer.everyone:
        return []
    if len(viewer.businesses) == 1:
        return [f"{alias}.business = (%(businesses)s::text[])[1]"]
    return [f"{alias}.business = ANY(%(businesses)s)"]


@dataclass(frozen=True)
class CallFilter:
    """The Calls page's filters, already validated: days are local to `tz`, inclusive."""

    day_from: date | None = None
    day_to: date | None = None
    outcome: str | None = None
    flag: str | None = None
    caller: str | None = None  # digits anywhere in the caller's number
    page: int = 1
    tz: str = "UTC"


_CALL_COLUMNS = """
c.id, c.business, c.caller_number, c.started_at, c.ended_at, c.outcome, c.end_reason,
extract(epoch FROM c.ended_at - c.started_at) AS duration_s,
coalesce((SELECT array_agg(f->>'flag') FROM jsonb_array_elements(
    CASE WHEN jsonb_typeof(c.summary->'flags') = 'array' THEN c.summary->'flags' ELSE '[]' END) f), '{}')
    AS flags
"""


async def list_calls(
    pool: AsyncConnectionPool, viewer: Viewer, f: CallFilter
) -> tuple[list[dict[str, Any]], bool]:
    """One page of calls, newest first, and whether another page follows."""
    where = _list_scope(viewer, "c") or ["true"]
    params: dict[str, Any] = _scope(viewer) | {"tz": f.tz, "limit": CALLS_PER_PAGE + 1,
                                               "offset": (f.page - 1) * CALLS_PER_PAGE}  # fmt: skip
    if f.day_from:
        where.append("c.started_at >= %(day_from)s::timestamp AT TIME ZONE %(tz)s")
        params["day_from"] = f.day_from
    if f.day_to:
        where.append("c.started_at < (%(day_to)s::date + 1)::timestamp AT TIME ZONE %(tz)s")
        params["day_to"] = f.day_to
    if f.outcome:
        where.append("c.outcome = %(outcome)s")
        params["outcome"] = f.outcome
    if f.flag:
        where.append("c.summary->'flags' @> jsonb_build_array(jsonb_build_object('flag', %(flag)s::text))")
        params["flag"] = f.flag
    if f.caller:
        where.append("c.caller_number LIKE '%%' || %(caller)s || '%%'")
        params["caller"] = f.caller
    sql = (f"SELECT {_CALL_COLUMNS} FROM calls c WHERE {' AND '.join(where)}"
           " ORDER BY c.started_at DESC, c.id DESC LIMIT %(limit)s OFFSET %(offset)s")  # fmt: skip
    async with pool.connection() as conn:
        rows = await (await conn.cursor(row_factory=dict_row).execute(sql, params)).fetchall()
    return rows[:CALLS_PER_PAGE], len(rows) > CALLS_PER_PAGE


async def call_detail(pool: AsyncConnectionPool, viewer: Viewer, call_id: uuid.UUID) -> dict[str, Any] | None:
    """A call with everything it left (transcript, tool calls, violations, bookings, lead, message),
    or None when there is no such call among the viewer's businesses."""
    params = _scope(viewer) | {"id": call_id}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        call = await (await cur.execute(
            f"SELECT {_CALL_COLUMNS}, c.answered_at, c.dialed_number, c.summary, c.recording_seconds FROM calls c"
            f" WHERE c.id = %(id)s AND {_in_scope('c')}", params)).fetchone()  # fmt: skip
        if call is None:
            return None
        # the call is in scope, so what hangs off it is too
        call["turns"] = await (await cur.execute(
            "SELECT seq, role, text, started_at, ended_at, interrupted FROM transcript_turns"
            " WHERE call_id = %(id)s ORDER BY seq", params)).fetchall()  # fmt: skip
        call["tool_calls"] = await (await cur.execute(
            "SELECT seq, name, arguments, result, error, latency_ms, created_at FROM tool_calls"
            " WHERE call_id = %(id)s ORDER BY seq", params)).fetchall()  # fmt: skip
        call["violations"] = await (await cur.execute(
            "SELECT turn_seq, kind, claim, correction FROM violations WHERE call_id = %(id)s"
            " ORDER BY turn_seq NULLS LAST, created_at", params)).fetchall()  # fmt: skip
        call["appointments"] = await (await cur.execute(
            "SELECT service, customer_name, customer_phone, lower(during) AS start, status, confirmation_code"
            " FROM appointments a WHERE (a.call_id = %(id)s OR a.updated_by_call = %(id)s)"
            f" AND {_in_scope('a')} ORDER BY created_at", params)).fetchall()  # fmt: skip
        call["leads"] = await (await cur.execute(
            f"SELECT name, phone, need, urgency, score FROM leads l WHERE l.call_id = %(id)s AND {_in_scope('l')}",
            params)).fetchall()  # fmt: skip
        call["messages"] = await (await cur.execute(
            "SELECT m.id, caller_name, phone, body, callback_requested, urgency, called_back_at, u.email AS"
            " called_back_by, m.audio_path IS NOT NULL AS has_audio"
            " FROM messages m LEFT JOIN users u ON u.id = m.called_back_by"
            f" WHERE m.call_id = %(id)s AND {_in_scope('m')}", params)).fetchall()  # fmt: skip
    return call


async def call_recording(pool: AsyncConnectionPool, viewer: Viewer, call_id: uuid.UUID) -> str | None:
    """Where a call's recording is, or None when the call has none or is not among the viewer's
    businesses."""
    params = _scope(viewer) | {"id": call_id}
    async with pool.connection() as conn:
        row = await (await conn.execute(
            f"SELECT c.recording_path FROM calls c WHERE c.id = %(id)s AND {_in_scope('c')}", params
        )).fetchone()  # fmt: skip
    return row[0] if row else None


async def message_audio(
    pool: AsyncConnectionPool, viewer: Viewer, message_id: uuid.UUID
) -> tuple[str, uuid.UUID | None] | None:
    """Where a message's audio (a voicemail) is, and its call; None when the message has none or is
    not among the viewer's businesses."""
    params = _scope(viewer) | {"id": message_id}
    async with pool.connection() as conn:
        row = await (await conn.execute(
            f"SELECT m.audio_path, m.call_id FROM messages m WHERE m.id = %(id)s AND m.audio_path IS NOT NULL"
            f" AND {_in_scope('m')}", params
        )).fetchone()  # fmt: skip
    return (row[0], row[1]) if row else None


_MESSAGE_COLUMNS = """
m.id, m.call_id, m.business, m.caller_name, m.phone, m.body, m.callback_requested, m.urgency,
m.created_at, m.called_back_at, u.email AS called_back_by, m.audio_path IS NOT NULL AS has_audio
"""


async def list_messages(
    pool: AsyncConnectionPool, viewer: Viewer, *, awaiting_only: bool, limit: int = 200
) -> list[dict[str, Any]]:
    """Messages newest first; `awaiting_only`: callbacks asked for and not yet made."""
    awaiting = " AND m.callback_requested AND m.called_back_at IS NULL" if awaiting_only else ""
    async with pool.connection() as conn:
        return await (await conn.cursor(row_factory=dict_row).execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m LEFT JOIN users u ON u.id = m.called_back_by"
            f" WHERE {_in_scope('m')}{awaiting} ORDER BY m.created_at DESC LIMIT %(limit)s",
            _scope(viewer) | {"limit": limit})).fetchall()  # fmt: skip


async def mark_called_back(pool: AsyncConnectionPool, viewer: Viewer, message_id: uuid.UUID) -> dict[str, Any] | None:
    """Records that the viewer called this message's caller back (the first such mark stands);
    None when the message is not among the viewer's businesses."""
    params = _scope(viewer) | {"id": message_id, "user": viewer.user_id}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "UPDATE messages m SET called_back_at = now(), called_back_by = %(user)s"
            f" WHERE m.id = %(id)s AND m.called_back_at IS NULL AND {_in_scope('m')}", params)  # fmt: skip
        return await (await cur.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m LEFT JOIN users u ON u.id = m.called_back_by"
            f" WHERE m.id = %(id)s AND {_in_scope('m')}", params)).fetchone()  # fmt: skip


async def today(
    pool: AsyncConnectionPool, viewer: Viewer, start: datetime, end: datetime
) -> dict[str, Any]:
    """The Today page: calls since `start`, bookings they made, hot leads, flagged calls, and every
    callback still owed (whenever it was asked for)."""
    params = _scope(viewer) | {"start": start, "end": end}
    window = f"c.started_at >= %(start)s AND c.started_at < %(end)s AND {_in_scope('c')}"
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        counts = await (await cur.execute(
            "SELECT count(*) AS calls, count(*) FILTER (WHERE outcome = 'booked') AS booked,"
            " count(*) FILTER (WHERE jsonb_typeof(summary->'flags') = 'array'"
            "                  AND jsonb_array_length(summary->'flags') > 0) AS flagged"
            f" FROM calls c WHERE {window}", params)).fetchone()  # fmt: skip
        calls = await (await cur.execute(
            f"SELECT {_CALL_COLUMNS} FROM calls c WHERE {window} ORDER BY c.started_at DESC LIMIT 20",
            params)).fetchall()  # fmt: skip
        bookings = await (await cur.execute(
            "SELECT a.business, a.service, a.customer_name, lower(a.during) AS start, a.confirmation_code,"
            " a.call_id FROM appointments a WHERE a.status = 'booked' AND a.created_at >= %(start)s"
            f" AND a.created_at < %(end)s AND {_in_scope('a')} ORDER BY lower(a.during)",
            params)).fetchall()  # fmt: skip
        hot_leads = await (await cur.execute(
            "SELECT l.name, l.phone, l.need, l.score, l.call_id FROM leads l JOIN calls c ON c.id = l.call_id"
            f" WHERE {window} AND (c.summary->'lead'->>'hot')::boolean ORDER BY l.score DESC",
            params)).fetchall()  # fmt: skip
    awaiting = await list_messages(pool, viewer, awaiting_only=True, limit=50)
    return {"counts": counts, "calls": calls, "bookings": bookings, "hot_leads": hot_leads,
            "awaiting_callback": awaiting}  # fmt: skip


async def latest_ending(pool: AsyncConnectionPool, viewer: Viewer) -> datetime | None:
    """When the viewer's latest call of the last two days ended: the Today page's live cursor (a call
    never lasts a day, so older endings cannot be news to a page of today)."""
    async with pool.connection() as conn:
        row = await (await conn.execute(
            f"SELECT max(c.ended_at) FROM calls c WHERE {_in_scope('c')}"
            " AND c.started_at > now() - interval '2 days'", _scope(viewer))).fetchone()  # fmt: skip
    return row[0] if row else None


_APPOINTMENT_COLUMNS = """
a.id, a.business, a.service, a.customer_name, a.customer_phone, lower(a.during) AS start,
upper(a.during) AS end, a.status, a.confirmation_code, a.call_id, a.updated_at
"""


async def week_appointments(
    pool: AsyncConnectionPool, viewer: Viewer, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Booked and cancelled appointments starting in [start, end), soonest first (a moved one shows
    once, at its new time: its old row is 'rescheduled')."""
    async with pool.connection() as conn:
        return await (await conn.cursor(row_factory=dict_row).execute(
            f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments a WHERE a.status IN ('booked', 'cancelled')"
            f" AND lower(a.during) >= %(start)s AND lower(a.during) < %(end)s AND {_in_scope('a')}"
            " ORDER BY lower(a.during), a.business",
            _scope(viewer) | {"start": start, "end": end})).fetchall()  # fmt: skip


async def appointment(pool: AsyncConnectionPool, viewer: Viewer, appointment_id: uuid.UUID) -> dict[str, Any] | None:
    """One appointment, or None when it is not among the viewer's businesses."""
    async with pool.connection() as conn:
        return await (await conn.cursor(row_factory=dict_row).execute(
            f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments a WHERE a.id = %(id)s AND {_in_scope('a')}",
            _scope(viewer) | {"id": appointment_id})).fetchone()  # fmt: skip


_LEAD_COLUMNS = """
l.id, l.call_id, l.business, l.name, l.phone, l.need, l.urgency, l.answers, l.score, l.created_at,
l.contacted_at, u.email AS contacted_by
"""


async def list_leads(
    pool: AsyncConnectionPool, viewer: Viewer, *, open_only: bool, limit: int = 200
) -> list[dict[str, Any]]:
    """Leads by score, best first (newest first among equals); `open_only`: not contacted yet."""
    still_open = " AND l.contacted_at IS NULL" if open_only else ""
    async with pool.connection() as conn:
        return await (await conn.cursor(row_factory=dict_row).execute(
            f"SELECT {_LEAD_COLUMNS} FROM leads l LEFT JOIN users u ON u.id = l.contacted_by"
            f" WHERE {_in_scope('l')}{still_open} ORDER BY l.score DESC, l.created_at DESC LIMIT %(limit)s",
            _scope(viewer) | {"limit": limit})).fetchall()  # fmt: skip


async def mark_contacted(pool: AsyncConnectionPool, viewer: Viewer, lead_id: uuid.UUID) -> dict[str, Any] | None:
    """Records that the viewer contacted this lead (the first such mark stands); None when the lead is
    not among the viewer's businesses."""
    params = _scope(viewer) | {"id": lead_id, "user": viewer.user_id}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "UPDATE leads l SET contacted_at = now(), contacted_by = %(user)s"
            f" WHERE l.id = %(id)s AND l.contacted_at IS NULL AND {_in_scope('l')}", params)  # fmt: skip
        return await (await cur.execute(
            f"SELECT {_LEAD_COLUMNS} FROM leads l LEFT JOIN users u ON u.id = l.contacted_by"
            f" WHERE l.id = %(id)s AND {_in_scope('l')}", params)).fetchone()  # fmt: skip
