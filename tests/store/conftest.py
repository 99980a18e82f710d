"""A pool on the test's fresh database."""

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from agent.store.db import open_pool


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(db_url, min_size=1, max_size=10)
    yield pool
    await pool.close()
