"""A pool on the test's fresh database, and a way to queue notifications the way a call does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from agent.store.db import open_pool
from agent.store.journal import CallJournal, NotificationQueued


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(db_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


def notification(channel: str, destination: str, *, kind: str = "urgent_message",
                 summary: str = "Urgent message from Ana (+14155550123): the basement is flooding",
                 call_id: uuid.UUID | None = None, n: int = 0) -> NotificationQueued:  # fmt: skip
    call_id = call_id or uuid.uuid4()
    return NotificationQueued(
        key=f"{call_id}/{kind}/{channel}:{destination}/{n}", business="Rose City Plumbing",
        kind=kind, channel=channel, destination=destination, call_id=call_id,
        payload={"version": 1, "kind": kind, "business": "Rose City Plumbing",
                 "business_number": "+15035550100", "summary": summary,
                 "call": {"id": str(call_id), "caller_number": "+14155550123"},
                 "detail": {"message": "the basement is flooding"}},
    )  # fmt: skip


async def queue(db_url: str, spill_dir, events: list) -> None:
    """Through the call journal, the only writer of outbox rows."""
    journal = CallJournal(db_url, spill_dir, batch_size=500)
    await journal.start()
    for e in events:
        journal.record(e)
    assert await journal.flush(timeout=30)
    await journal.aclose()
