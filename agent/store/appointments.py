"""Appointments the caller waits for: book, look up, reschedule, cancel. Double booking is refused by
Postgres itself (an exclusion constraint over the booked time ranges), never by a read-then-write race.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.range import Range
from psycopg_pool import AsyncConnectionPool

from agent.store.db import CONNECTION_ERRORS, StoreUnavailable

log = logging.getLogger(__name__)

# no 0/O or 1/I: a caller reads the code back over the phone
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 6  # characters, said aloud as two groups of three
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CODE_ATTEMPTS = 8
_COLUMNS = (
    "id, business, resource, service, customer_name, customer_phone, during, status,"
    " confirmation_code, call_id, updated_by_call, rescheduled_from, created_at, updated_at, text_consent"
)

# an overlap with a booked appointment inserts nothing and returns no row (see _insert)
_INSERT = (
    "INSERT INTO appointments (business, resource, service, customer_name, customer_phone, during,"
    " confirmation_code, call_id, rescheduled_from, text_consent, text_consent_at)"
    " VALUES (%s, %s, %s, %s, %s, tstzrange(%s, %s, '[)'), %s, %s, %s, %s,"
    " CASE WHEN %s::boolean IS NULL THEN NULL ELSE now() END)"
    " ON CONFLICT ON CONSTRAINT appointments_no_double_booking DO NOTHING"
    f" RETURNING {_COLUMNS}"
)


class SlotTaken(Exception):
    """The requested time overlaps an appointment already booked for the same business and resource."""

    def __init__(self, start: datetime, end: datetime) -> None:
        super().__init__(f"the slot {start.isoformat()} - {end.isoformat()} is already booked")
        self.start = start
        self.end = end


class AppointmentNotFound(LookupError):
    """No upcoming booked appointment matches what the caller gave."""


class NotYourAppointment(Exception):
    """The appointment exists but the caller's phone number is not the one it was booked with."""


@dataclass(frozen=True)
class Appointment:
    id: uuid.UUID
    business: str
    resource: str
    service: str
    customer_name: str
    customer_phone: str
    start: datetime
    end: datetime
    status: str
    confirmation_code: str
    call_id: uuid.UUID | None
    updated_by_call: uuid.UUID | None
    rescheduled_from: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    # whether the caller agreed to a text about it, on the call that last booked, moved or cancelled it
    text_consent: bool | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Appointment:
        during: Range[datetime] = row.pop("during")
        return cls(start=during.lower, end=during.upper, **row)  # type: ignore[arg-type]


def new_confirmation_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:3]}-{raw[3:]}"


def normalize_code(code: str) -> str:
    """'k7p 4m2', 'K7P4M2' and 'K7P-4M2' are the same code."""
    raw = re.sub(r"[^0-9A-Za-z]", "", code).upper()
    return f"{raw[:3]}-{raw[3:]}" if len(raw) == CODE_LENGTH else raw


def _check_interval(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("appointment times must be timezone-aware")
    if end <= start:
        raise ValueError("an appointment must end after it starts")


def _check_phone(phone: str) -> None:
    if not E164.match(phone):
        raise ValueError(f"{phone!r} is not an E.164 phone number")


@asynccontextmanager
async def _connection(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection; unreachable-database errors become StoreUnavailable."""
    try:
        async with pool.connection() as conn:
            yield conn
    except CONNECTION_ERRORS as exc:
        raise StoreUnavailable(f"appointments store unavailable: {exc}") from exc


async def _insert(
    conn: psycopg.AsyncConnection[Any],
    *,
    business: str,
    resource: str,
    service: str,
    customer_name: str,
    customer_phone: str,
    start: datetime,
    end: datetime,
    call_id: uuid.UUID | None,
    rescheduled_from: uuid.UUID | None = None,
    text_consent: bool | None = None,
) -> Appointment:
    """Insert a booked appointment, or raise SlotTaken: one statement, one round trip.

    The exclusion constraint is the arbiter of ON CONFLICT DO NOTHING, so an overlap returns no row
    instead of an error. With a plain INSERT, two callers racing for overlapping times could each wait
    on the other's uncommitted row until Postgres aborted one as a deadlock; speculative insertion
    backs off instead. Alone (autocommit) the statement is its own durable transaction; inside the
    caller's transaction (reschedule) each attempt gets a savepoint so that a retry is possible.
    """
    on_its_own = conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE
    for _ in range(_CODE_ATTEMPTS):
        try:
            async with nullcontext() if on_its_own else conn.transaction():
                cur = await conn.cursor(row_factory=dict_row).execute(
                    _INSERT,
                    (business, resource, service, customer_name, customer_phone, start, end,
                     new_confirmation_code(), call_id, rescheduled_from, text_consent, text_consent),
                )  # fmt: skip
                row = await cur.fetchone()
        except pg_errors.ExclusionViolation:  # not expected with the arbiter, but it means the same
            raise SlotTaken(start, end) from None
        except pg_errors.LockNotAvailable:
            # lock_timeout while the check waits on another call's uncommitted booking of an
            # overlapping time: that booking almost always commits, and the caller should hear
            # "just taken, here are others" rather than "the system is down"
            raise SlotTaken(start, end) from None
        except pg_errors.DeadlockDetected:
            # only the statement was rolled back; trying again gets the database's definite answer
            continue
        except pg_errors.UniqueViolation as exc:
            if exc.diag.constraint_name != "appointments_confirmation_code_key":
                raise
            continue
        if row is None:
            raise SlotTaken(start, end)
        return Appointment.from_row(row)
    raise RuntimeError("could not insert the appointment (confirmation code or deadlock retries)")


async def warm_up(conn: psycopg.AsyncConnection[Any]) -> None:
    """Book once on a new connection and roll it back, so the backend's first real booking is fast.

    A fresh backend loads catalogs, the exclusion index and btree_gist on its first booking: ~2 ms
    alone, tens of ms when a pool's worth of new connections meets a burst of callers. The pool runs
    this as it opens each connection, off any caller's path. Business '' and code 000-000 (0 is not in
    the code alphabet) can neither wait on nor hold up a real booking.
    """
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute(
                _INSERT,
                ("", "", "", "", "+10000000", datetime(2000, 1, 1, tzinfo=UTC),
                 datetime(2000, 1, 2, tzinfo=UTC), "000-000", None, None, None, None),
            )  # fmt: skip
    except psycopg.Error as exc:
        if conn.broken:
            raise
        # e.g. a database not migrated yet: the connection is still good, only colder
        log.debug("booking warm-up skipped: %s", exc)


async def book(
    pool: AsyncConnectionPool,
    business: str,
    service: str,
    customer_name: str,
    customer_phone: str,
    start: datetime,
    end: datetime,
    call_id: uuid.UUID | None = None,
    *,
    resource: str = "default",
    text_consent: bool | None = None,
) -> Appointment:
    """Book [start, end) or raise SlotTaken; the database arbitrates concurrent callers.
    `text_consent`: the caller's answer to "may we text you a confirmation?" (None: not asked).

    One INSERT in autocommit: committed (and, with synchronous_commit on, flushed to the WAL on disk)
    before it returns, so a confirmation code read to the caller is never lost. Do not relax
    synchronous_commit for this: it is the promise made to the caller.
    """
    _check_interval(start, end)
    _check_phone(customer_phone)
    async with _connection(pool) as conn:
        return await _insert(
            conn, business=business, resource=resource, service=service,
            customer_name=customer_name, customer_phone=customer_phone,
            start=start, end=end, call_id=call_id, text_consent=text_consent,
        )  # fmt: skip


async def busy_intervals(
    pool: AsyncConnectionPool,
    business: str,
    start: datetime,
    end: datetime,
    *,
    resource: str = "default",
) -> list[tuple[datetime, datetime]]:
    """Booked intervals overlapping [start, end), ordered by start."""
    _check_interval(start, end)
    async with _connection(pool) as conn:
        cur = await conn.execute(
            "SELECT lower(during), upper(during) FROM appointments"
            " WHERE business = %s AND resource = %s AND status = 'booked'"
            " AND during && tstzrange(%s, %s, '[)') ORDER BY lower(during)",
            (business, resource, start, end),
        )
        return [(lo, hi) for lo, hi in await cur.fetchall()]


async def find_for_caller(
    pool: AsyncConnectionPool,
    business: str,
    phone: str | None = None,
    code: str | None = None,
    now: datetime | None = None,
) -> list[Appointment]:
    """Upcoming booked appointments matching the phone number and/or confirmation code (both must
    match when both are given), soonest first."""
    if phone is None and code is None:
        raise ValueError("give a phone number or a confirmation code")
    now = now or datetime.now(UTC)
    where = ["business = %s", "status = 'booked'", "lower(during) > %s"]
    params: list[Any] = [business, now]
    if phone is not None:
        where.append("customer_phone = %s")
        params.append(phone)
    if code is not None:
        where.append("confirmation_code = %s")
        params.append(normalize_code(code))
    async with _connection(pool) as conn:
        cur = await conn.cursor(row_factory=dict_row).execute(
            f"SELECT {_COLUMNS} FROM appointments WHERE {' AND '.join(where)}"
            " ORDER BY lower(during)",
            params,
        )
        return [Appointment.from_row(r) for r in await cur.fetchall()]


async def _lock_booked(
    conn: psycopg.AsyncConnection[Any], business: str, ref: str | uuid.UUID
) -> Appointment:
    if isinstance(ref, uuid.UUID):
        column, value = "id", ref
    else:
        column, value = "confirmation_code", normalize_code(ref)
    cur = await conn.cursor(row_factory=dict_row).execute(
        f"SELECT {_COLUMNS} FROM appointments"
        f" WHERE business = %s AND {column} = %s AND status = 'booked' FOR UPDATE",
        (business, value),
    )
    row = await cur.fetchone()
    if row is None:
        raise AppointmentNotFound(f"no booked appointment {value} at {business}")
    return Appointment.from_row(row)


async def reschedule(
    pool: AsyncConnectionPool,
    business: str,
    appointment: str | uuid.UUID,
    new_start: datetime,
    new_end: datetime,
    phone: str,
    call_id: uuid.UUID | None = None,
    *,
    text_consent: bool | None = None,
) -> Appointment:
    """Move a booked appointment (by id or confirmation code) to a new time, atomically.

    The old row becomes 'rescheduled' and a new booked row (new confirmation code) points back to it;
    if the new time is taken the whole transaction rolls back and the old booking stands.
    """
    _check_interval(new_start, new_end)
    async with _connection(pool) as conn:
        async with conn.transaction():
            old = await _lock_booked(conn, business, appointment)
            if old.customer_phone != phone:
                raise NotYourAppointment("the phone number does not match this appointment")
            await conn.execute(
                "UPDATE appointments SET status = 'rescheduled', updated_at = now(),"
                " updated_by_call = %s WHERE id = %s",
                (call_id, old.id),
            )
            return await _insert(
                conn, business=business, resource=old.resource, service=old.service,
                customer_name=old.customer_name, customer_phone=old.customer_phone,
                start=new_start, end=new_end, call_id=call_id, rescheduled_from=old.id,
                text_consent=text_consent,
            )  # fmt: skip


async def cancel(
    pool: AsyncConnectionPool,
    business: str,
    code: str | uuid.UUID,
    phone: str,
    call_id: uuid.UUID | None = None,
    *,
    text_consent: bool | None = None,
) -> Appointment:
    """Cancel a booked appointment; refuses (NotYourAppointment) if the phone does not match."""
    async with _connection(pool) as conn:
        async with conn.transaction():
            old = await _lock_booked(conn, business, code)
            if old.customer_phone != phone:
                raise NotYourAppointment("the phone number does not match this appointment")
            cur = await conn.cursor(row_factory=dict_row).execute(
                "UPDATE appointments SET status = 'cancelled', updated_at = now(), updated_by_call = %s,"
                " text_consent = %s, text_consent_at = CASE WHEN %s::boolean IS NULL THEN NULL ELSE now() END"
                f" WHERE id = %s RETURNING {_COLUMNS}",
                (call_id, text_consent, text_consent, old.id),
            )
            row = await cur.fetchone()
            assert row is not None
            return Appointment.from_row(row)
