"""A job process's calls share its Postgres pool: the call's records (the journal) cost no connection
of their own, so the fleet's connections are replicas x job processes x DATABASE_POOL_SIZE."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from agent.brain import load_brain
from agent.call import CallContext
from agent.settings import load_settings
from agent.store import runtime
from tests.tools.conftest import PLUMBING

CALLS = 12


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A job process that has not made its stores yet."""
    monkeypatch.setattr(runtime, "_process_stores", None)
    yield


async def _backends(db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_a_dozen_calls_in_one_process_hold_only_its_pool(
    db_url: str, tmp_path, fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "2")
    settings = load_settings(openai_api_key="x", database_url=db_url, journal_spill_dir=tmp_path)
    brain = load_brain(PLUMBING)
    opened = [await runtime.call_stores(settings) for _ in range(CALLS)]
    calls = []
    for stores in opened:
        call = CallContext(brain=brain, journal=stores.journal, pool=stores.pool, call_id=uuid.uuid4())
        call.start()
        for i in range(20):
            call.record_turn(role="caller" if i % 2 else "agent", text=f"turn {i}", started_at=1.0 * i,
                             ended_at=1.0 * i + 0.5, interrupted=False)  # fmt: skip
        calls.append(call)
    # every journal writing at once, and a booking-shaped query beside them
    assert all(await asyncio.gather(*(s.journal.flush(timeout=20) for s in opened)))
    assert await _backends(db_url) <= settings.database_pool_size
    for call, stores in zip(calls, opened, strict=True):
        call.finish(reason="caller_hangup")
        await stores.release(call)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*), count(ended_at) FROM calls")
        assert await cur.fetchone() == (CALLS, CALLS)
        cur = await conn.execute("SELECT count(*) FROM transcript_turns")
        assert await cur.fetchone() == (CALLS * 20,)
    await opened[0].pool.close()
