"""The call journal's side of Postgres: one connection (or the pool's), a batch per transaction, and
poison events (refused for their data, not for the database's health) set aside in a rejected file."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from agent.store.journal.encoding import encode_event
from agent.store.journal.events import Event
from agent.store.journal.rows import EVENT_SQL

log = logging.getLogger(__name__)

# errors that belong to one event (bad data, missing call row) rather than to the database's health
_POISON_ERRORS = (psycopg.IntegrityError, psycopg.DataError)


class PostgresWrites:
    """Writes a CallJournal's batches; any error other than a poison event propagates, so the journal
    treats it as an outage. Counts into the journal's own stats (written, batches, rejected)."""

    def __init__(
        self,
        target: str | AsyncConnectionPool,
        rejected_path: Path,
        stats: dict[str, int],
        *,
        connect_timeout: int,
        write_timeout: float,
    ) -> None:
        self._target = target
        self._rejected_path = rejected_path
        self._stats = stats
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def write_batch(self, events: list[tuple[int, Event]]) -> None:
        """One transaction for the whole batch; a batch refused for its data is retried event by
        event so only the bad events are set aside."""
        async with asyncio.timeout(self._write_timeout), self._connection() as conn:
            try:
                async with conn.transaction():
                    await _apply(conn, [e for _, e in events])
            except _POISON_ERRORS:
                await self._write_one_by_one(conn, events)
        self._stats["written"] += len(events)
        self._stats["batches"] += 1

    def set_aside(self, lines: list[bytes]) -> None:
        """Keep encoded events Postgres (or the decoder) refused in the rejected file, fsync'd."""
        # set aside, never dropped: an operator can fix and replay them
        if not lines:
            return
        self._stats["rejected"] += len(lines)
        self._rejected_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._rejected_path, "ab") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())

    async def close(self) -> None:
        """Drop the own connection (after an error, or at the journal's close); a pool keeps its own."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - it is already broken; we only want it gone
                pass

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if isinstance(self._target, AsyncConnectionPool):
            async with self._target.connection(timeout=float(self._connect_timeout)) as conn:
                yield conn
            return
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._target,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name="receptionist-journal",
                tcp_user_timeout=5000,
                prepare_threshold=None,  # may be PgBouncer in transaction mode (store/db.py open_pool)
            )
        yield self._conn

    async def _write_one_by_one(
        self, conn: psycopg.AsyncConnection[Any], events: list[tuple[int, Event]]
    ) -> None:
        rejected: list[tuple[int, Event, BaseException]] = []
        async with conn.transaction():
            for n, event in events:
                try:
                    async with conn.transaction():
                        await _apply(conn, [event])
                except _POISON_ERRORS as exc:
                    rejected.append((n, event, exc))
        for _, event, exc in rejected:
            log.error("call journal: %s event for call %s refused: %s", event.type,
                      getattr(event, "call_id", None), exc)  # fmt: skip
        self.set_aside([encode_event(n, e) for n, e, _ in rejected])


async def _apply(conn: psycopg.AsyncConnection[Any], events: list[Event]) -> None:
    # consecutive events of one type go in one executemany (pipelined); order is preserved
    async with conn.cursor() as cur:
        start = 0
        while start < len(events):
            kind = events[start].type
            end = start
            while end < len(events) and events[end].type == kind:
                end += 1
            sql, params = EVENT_SQL[kind]
            await cur.executemany(sql, [params(e) for e in events[start:end]])
            start = end
