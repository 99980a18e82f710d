"""The outbox in Postgres: claiming due notifications across sender replicas, recording each attempt,
and the operator's view (list, retry, dead). A call's notifications are written by the call journal
(`NotificationQueued`), so they exist exactly when their cause was recorded; the daily digest, whose
cause is the clock, is queued by the senders themselves (`queue`), once per business and day by its key.

Exactly once across replicas: a sender claims due rows with `FOR NO KEY UPDATE SKIP LOCKED` inside a
transaction it keeps open while it delivers them, and marks each row sent (or schedules its retry) in
that same transaction. Another sender skips locked rows and never sees a sent one as due. The one gap
left is a sender that dies after a target accepted a message and before its commit: the row is then
delivered again, with the same key (email Message-ID, webhook delivery id) so a receiver can drop it.
A text has no such key, so its send is committed on its own before Twilio is asked (`send_begun`), and
the next attempt asks Twilio first (agent/notify/channels.py).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent.store.journal.events import NotificationQueued

OutboxStatus = Literal["pending", "sent", "dead"]


@dataclass(frozen=True)
class Notification:
    id: int
    key: str
    business: str
    call_id: uuid.UUID | None
    kind: str
    channel: str
    destination: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


_COLUMNS = (
    "id, key, business, call_id, kind, channel, destination, payload, status, attempts,"
    " next_attempt_at, last_error, created_at, sent_at"
)


class Claim:
    """Due notifications locked by one sender, and the transaction that records their attempts."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], rows: list[Notification]) -> None:
        self.conn = conn
        self.rows = rows

    async def delivered(self, row: Notification, *, sender: str, started_at: datetime,
                        duration_ms: float) -> None:  # fmt: skip
        await self._attempt(row, sender, started_at, duration_ms, None)
        await self.conn.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = now(),"
            " last_error = NULL WHERE id = %s",
            (row.id,),
        )

    async def failed(self, row: Notification, *, sender: str, started_at: datetime,
                     duration_ms: float, error: str, retry_in: timedelta | None) -> None:  # fmt: skip
        """Record a failed attempt; retry_in None: no attempts left, the row is dead."""
        await self._attempt(row, sender, started_at, duration_ms, error)
        await self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s,"
            " status = CASE WHEN %s::interval IS NULL THEN 'dead' ELSE 'pending' END,"
            " next_attempt_at = now() + COALESCE(%s::interval, '0')"
            " WHERE id = %s",
            (error, retry_in, retry_in, row.id),
        )

    async def hold(self, row: Notification, until: datetime) -> None:
        """Leave the row for later (quiet hours) without counting an attempt."""
        await self.conn.execute("UPDATE outbox SET next_attempt_at = %s WHERE id = %s", (until, row.id))

    async def _attempt(self, row: Notification, sender: str, started_at: datetime,
                       duration_ms: float, error: str | None) -> None:  # fmt: skip
        await self.conn.execute(
            # numbered over the row's whole life: a retried row's attempt budget restarts, its history not
            "INSERT INTO outbox_attempts (outbox_id, attempt, sender, started_at, duration_ms, error)"
            " SELECT %s, COALESCE(max(attempt), 0) + 1, %s, %s, %s, %s FROM outbox_attempts"
            " WHERE outbox_id = %s",
            (row.id, sender, started_at, duration_ms, error, row.id),
        )
        await self.conn.execute("DELETE FROM outbox_sends WHERE outbox_id = %s", (row.id,))  # recorded now


@asynccontextmanager
async def claim_due(
    pool: AsyncConnectionPool, limit: int, now: datetime | None = None
) -> AsyncIterator[Claim]:
    """Lock up to `limit` notifications due at `now` (the database's clock when None), oldest due
    first, that no other sender holds; what the block records through the Claim commits together
    when it exits."""
    async with pool.connection() as conn, conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending'"
                " AND next_attempt_at <= coalesce(%s, now())"
                # not FOR UPDATE: a send begun (outbox_sends) references the row from another connection
                " ORDER BY next_attempt_at, id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
                (now, limit),
            )
            rows = [Notification(**r) for r in await cur.fetchall()]
        yield Claim(conn, rows)


async def queue(pool: AsyncConnectionPool, notifications: Sequence[NotificationQueued]) -> int:
    """Insert notifications that no row has the key of yet, due from their `created_at` (the
    queueing sender's clock); returns how many were new. Any number of senders may queue the same
    digest at once: the key's unique index keeps exactly one."""
    inserted = 0
    async with pool.connection() as conn, conn.transaction():
        for n in notifications:
            cur = await conn.execute(
                "INSERT INTO outbox (key, business, call_id, kind, channel, destination, payload,"
                " created_at, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (key) DO NOTHING",
                (n.key, n.business, n.call_id, n.kind, n.channel, n.destination,
                 Jsonb(n.payload), n.created_at, n.created_at),
            )  # fmt: skip
            inserted += cur.rowcount
    return inserted


async def existing_keys(pool: AsyncConnectionPool, keys: Sequence[str]) -> set[str]:
    """Which of these keys the outbox already has (sent, waiting or dead)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT key FROM outbox WHERE key = ANY(%s)", (list(keys),))
        return {k for (k,) in await cur.fetchall()}


async def list_notifications(
    pool: AsyncConnectionPool, *, status: OutboxStatus | None = None, limit: int = 50
) -> list[Notification]:
    """The newest notifications, optionally of one status."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE %(status)s::text IS NULL OR status = %(status)s"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"status": status, "limit": limit},
        )
        return [Notification(**r) for r in await cur.fetchall()]


class NotRetryable(Exception):
    """The notification does not exist or was already delivered; the message says which."""


async def retry_notification(pool: AsyncConnectionPool, notification_id: int) -> Notification:
    """Put a dead (or waiting) notification back at the front of the queue with a fresh set of
    attempts; a sent one stays sent, so a retry can never double a delivery."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now()"
            f" WHERE id = %s AND status <> 'sent' RETURNING {_COLUMNS}",
            (notification_id,),
        )
        row = await cur.fetchone()
        if row is not None:
            return Notification(**row)
        await cur.execute("SELECT status FROM outbox WHERE id = %s", (notification_id,))
        found = await cur.fetchone()
    if found is None:
        raise NotRetryable(f"no notification with id {notification_id}")
    raise NotRetryable(f"notification {notification_id} was already sent")


async def send_begun(pool: AsyncConnectionPool, notification_id: int) -> None:
    """Commit, apart from the sender's claim, that a delivery is about to be asked for: it stays if the
    sender dies before recording the attempt."""
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO outbox_sends (outbox_id) VALUES (%s)", (notification_id,))


async def first_try(pool: AsyncConnectionPool, notification_id: int) -> datetime | None:
    """When the row's first delivery was asked for, recorded or only begun; None if never."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT least((SELECT min(started_at) FROM outbox_attempts WHERE outbox_id = %s),"
            " (SELECT min(started_at) FROM outbox_sends WHERE outbox_id = %s))",
            (notification_id, notification_id),
        )
        row = await cur.fetchone()
    return row[0] if row else None


async def attempts_of(pool: AsyncConnectionPool, notification_id: int) -> list[dict[str, Any]]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT attempt, sender, started_at, duration_ms, error FROM outbox_attempts"
            " WHERE outbox_id = %s ORDER BY attempt",
            (notification_id,),
        )
        return list(await cur.fetchall())
