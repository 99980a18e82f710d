"""Fixtures for whole simulated calls: a shared Realtime simulator and real stores per call."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.store.db import open_pool
from agent.store.journal.writer import CallJournal
from simulator.server import RealtimeSimulator
from simulator.session import ScenarioStores


@pytest.fixture
async def call_stores(db_url: str, redis_url: str) -> AsyncIterator[ScenarioStores]:
    from agent.live import LiveState

    pool = await open_pool(db_url, min_size=1, max_size=4)
    journal = CallJournal(db_url, Path(tempfile.mkdtemp(prefix="spill-")))
    await journal.start()
    # live state of its own (its own key prefix): each test's call is a world of its own, so the
    # suite's many calls from one scenario number never meet the caller rate limit
    live = LiveState(redis_url, prefix=f"t{uuid.uuid4().hex[:10]}")
    stores = ScenarioStores(pool=pool, journal=journal, live=live)
    yield stores
    await journal.aclose(timeout=5)
    await pool.close()
    await live.aclose()


@pytest.fixture(scope="session")
async def shared_sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator() as sim:
        yield sim
