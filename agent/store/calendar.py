"""The calendar in Postgres: each business's secret feed token, the local copy of the busy times the
owner keeps in their CalDAV calendar (what check_availability reads, so no call waits on CalDAV), how
fresh that copy is, and the appointment a calendar event stands for across reschedules."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.range import Range
from psycopg_pool import AsyncConnectionPool

from agent.store.appointments import _COLUMNS as APPOINTMENT_COLUMNS
from agent.store.appointments import Appointment, _connection

# --- the ICS feed's token -----------------------------------------------------------------------


async def feed_token(pool: AsyncConnectionPool, business: str, *, rotate: bool = False) -> str:
    """The business's feed token, made on first use; `rotate` replaces it (the old URL stops working)."""
    fresh = secrets.token_urlsafe(24)
    async with pool.connection() as conn:
        if rotate:
            cur = await conn.execute(
                "INSERT INTO calendar_feeds (business, token) VALUES (%s, %s) ON CONFLICT (business)"
                " DO UPDATE SET token = excluded.token, created_at = now() RETURNING token",
                (business, fresh),
            )
        else:
            # DO UPDATE with no change, so the existing token comes back in the same statement
            cur = await conn.execute(
                "INSERT INTO calendar_feeds (business, token) VALUES (%s, %s) ON CONFLICT (business)"
                " DO UPDATE SET token = calendar_feeds.token RETURNING token",
                (business, fresh),
            )
        row = await cur.fetchone()
    assert row is not None
    return row[0]


async def business_of_feed(pool: AsyncConnectionPool, token: str) -> str | None:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT business FROM calendar_feeds WHERE token = %s", (token,))
        row = await cur.fetchone()
    return row[0] if row else None


async def feed_appointments(
    pool: AsyncConnectionPool, business: str, since: datetime
) -> list[tuple[uuid.UUID, Appointment]]:
    """Booked appointments ending after `since`, soonest first, each with its first booking's id
    (the event's UID: a moved booking stays the same event in a subscriber's calendar)."""
    columns = ", ".join(f"a.{c.strip()}" for c in APPOINTMENT_COLUMNS.split(","))
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "WITH RECURSIVE chain(id, root) AS ("
            "  SELECT id, id FROM appointments WHERE business = %(b)s AND rescheduled_from IS NULL"
            "  UNION ALL SELECT a.id, c.root FROM appointments a JOIN chain c ON a.rescheduled_from = c.id"
            f") SELECT chain.root AS _root, {columns} FROM appointments a JOIN chain ON chain.id = a.id"
            " WHERE a.status = 'booked' AND upper(a.during) > %(since)s ORDER BY lower(a.during)",
            {"b": business, "since": since},
        )
        return [(r.pop("_root"), Appointment.from_row(r)) for r in await cur.fetchall()]


# --- one event per booking, across reschedules ---------------------------------------------------


async def event_state(
    conn: psycopg.AsyncConnection[Any], appointment_id: uuid.UUID
) -> tuple[uuid.UUID, Appointment]:
    """(the first booking of the appointment's reschedule chain, the chain's latest row). A move makes
    a new row with a new code; the calendar keeps one event, named after the first, at the latest's
    time, so a move moves the event instead of adding one."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "WITH RECURSIVE back(id, rescheduled_from) AS ("
            "  SELECT id, rescheduled_from FROM appointments WHERE id = %s"
            "  UNION ALL SELECT a.id, a.rescheduled_from FROM appointments a JOIN back b ON a.id = b.rescheduled_from"
            "), root AS (SELECT id FROM back WHERE rescheduled_from IS NULL),"
            " fwd(id, depth) AS ("
            "  SELECT id, 0 FROM root"
            "  UNION ALL SELECT a.id, f.depth + 1 FROM appointments a JOIN fwd f ON a.rescheduled_from = f.id"
            ")"
            f" SELECT (SELECT id FROM root) AS root_id, {APPOINTMENT_COLUMNS} FROM appointments"
            " WHERE id = (SELECT id FROM fwd ORDER BY depth DESC LIMIT 1)",
            (appointment_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no appointment {appointment_id}")
    root = row.pop("root_id")
    return root, Appointment.from_row(row)


# --- the owner's busy times ----------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerEvent:
    uid: str
    start: datetime
    end: datetime
    summary: str


@dataclass(frozen=True)
class CopyAge:
    """How old the business's copy of its CalDAV calendar is (age None: never refreshed)."""

    age_s: float | None
    stale_after_s: float
    last_error: str | None

    @property
    def stale(self) -> bool:
        return self.age_s is None or self.age_s > self.stale_after_s


async def replace_owner_events(
    pool: AsyncConnectionPool, business: str, events: Sequence[OwnerEvent], stale_after_s: float
) -> None:
    """The refresh's whole view of the owner's events replaces the last one, in one transaction (a
    reader sees the old copy or the new, never half), and marks the copy fresh."""
    async with pool.connection() as conn, conn.transaction():
        # two senders refreshing at once take turns rather than interleave their deletes and inserts
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('calendar_busy:' || %s))", (business,))
        await conn.execute("DELETE FROM calendar_busy WHERE business = %s", (business,))
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO calendar_busy (business, event_uid, during, summary)"
                " VALUES (%s, %s, tstzrange(%s, %s, '[)'), %s) ON CONFLICT DO NOTHING",
                [(business, e.uid, e.start, e.end, e.summary[:200]) for e in events],
            )
        await conn.execute(
            "INSERT INTO calendar_sync (business, refreshed_at, stale_after_s) VALUES (%s, now(), %s)"
            " ON CONFLICT (business) DO UPDATE SET refreshed_at = now(), failing_since = NULL,"
            " last_error = NULL, stale_after_s = excluded.stale_after_s",
            (business, stale_after_s),
        )


async def refresh_failed(pool: AsyncConnectionPool, business: str, error: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO calendar_sync (business, failing_since, last_error) VALUES (%s, now(), %s)"
            " ON CONFLICT (business) DO UPDATE SET last_error = excluded.last_error,"
            " failing_since = COALESCE(calendar_sync.failing_since, now())",
            (business, error[:500]),
        )


async def owner_busy(
    pool: AsyncConnectionPool, business: str, start: datetime, end: datetime
) -> tuple[list[tuple[datetime, datetime]], CopyAge]:
    """The owner's busy intervals overlapping [start, end) from the local copy, and the copy's age by
    the database's clock (the call's clock may be pinned). One round trip, on the call path."""
    async with _connection(pool) as conn:
        cur = await conn.execute(
            "SELECT 'busy', lower(during), upper(during), NULL::float8, NULL::float8, NULL FROM calendar_busy"
            " WHERE business = %(b)s AND during && tstzrange(%(s)s, %(e)s, '[)')"
            " UNION ALL SELECT 'sync', NULL, NULL, extract(epoch FROM now() - refreshed_at)::float8,"
            " stale_after_s, last_error FROM calendar_sync WHERE business = %(b)s",
            {"b": business, "s": start, "e": end},
        )
        rows = await cur.fetchall()
    busy = sorted((lo, hi) for kind, lo, hi, _, _, _ in rows if kind == "busy")
    sync = [CopyAge(age, after, error) for kind, _, _, age, after, error in rows if kind == "sync"]
    return busy, sync[0] if sync else CopyAge(None, 0.0, None)


@dataclass(frozen=True)
class Conflict:
    event_uid: str
    event_summary: str
    event_start: datetime
    event_end: datetime
    appointment: Appointment


async def conflicts(pool: AsyncConnectionPool, business: str) -> list[Conflict]:
    """Booked appointments that an owner event in the copy overlaps (the owner added it over a booking)."""
    columns = ", ".join(f"a.{c.strip()}" for c in APPOINTMENT_COLUMNS.split(","))
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT b.event_uid AS _uid, b.summary AS _summary, b.during AS _during, " + columns +
            " FROM calendar_busy b JOIN appointments a ON a.business = b.business AND a.status = 'booked'"
            " AND a.during && b.during WHERE b.business = %s ORDER BY lower(a.during)",
            (business,),
        )  # fmt: skip
        rows: list[dict[str, Any]] = list(await cur.fetchall())
    found = []
    for r in rows:
        during: Range[datetime] = r.pop("_during")
        found.append(Conflict(r.pop("_uid"), r.pop("_summary"), during.lower, during.upper,  # type: ignore[arg-type]
                              Appointment.from_row(r)))  # fmt: skip
    return found
