"""Runs scenarios with real stores: DATABASE_URL when set, else a throwaway local Postgres, so
`receptionist simulate` grades calls on database state with nothing to configure."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool

from agent.call import CallContext
from agent.store import appointments
from agent.store.db import migrate, open_pool
from agent.store.journal import CallJournal
from agent.store.records import snapshot
from simulator.runner import CallReport, simulate
from simulator.scenario import Scenario, SeedAppointment
from simulator.server import RealtimeSimulator

log = logging.getLogger("receptionist.simulate")


@dataclass
class ScenarioStores:
    """Stores for one simulated call: a journal of its own, shared pool and live state."""

    pool: AsyncConnectionPool
    journal: CallJournal
    live: Any | None = None

    async def seed(self, call: CallContext, rows: list[SeedAppointment]) -> None:
        """Book appointments as another call would have (through the same store code)."""
        for row in rows:
            start = row.start if row.start.tzinfo else row.start.replace(tzinfo=call.brain.tz)
            service = call.brain.service(row.service)
            if service is None:
                raise ValueError(f"seed: {row.service!r} is not a service of {call.brain.business.name}")
            end = start + timedelta(minutes=service.duration_minutes + call.brain.booking.buffer_minutes)
            appt = await appointments.book(
                self.pool, call.brain.business.name, service.name, row.customer_name,
                row.customer_phone, start, end, None,
            )  # fmt: skip
            if row.confirmation_code:
                async with self.pool.connection() as conn:
                    await conn.execute(
                        "UPDATE appointments SET confirmation_code = %s WHERE id = %s",
                        (appointments.normalize_code(row.confirmation_code), appt.id),
                    )

    async def snapshot(self, call: CallContext) -> dict[str, Any]:
        # everything the call recorded must be in Postgres before it is graded
        await self.journal.aclose(timeout=15)
        return await snapshot(self.pool, call_id=call.call_id)


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A throwaway Postgres cluster on loopback (as the tests use), torn down afterwards."""
    from simulator.postgres import PgServer

    server = PgServer()
    try:
        server.start()
        dsn = server.create_database(f"sim_{uuid.uuid4().hex[:8]}")
        yield dsn
    finally:
        server.destroy()


@contextlib.asynccontextmanager
async def _database(mode: Literal["auto", "env", "none"]) -> AsyncIterator[str | None]:
    env = os.environ.get("DATABASE_URL")
    if mode == "none" or (mode == "env" and not env):
        yield None
    elif env:
        yield env
    else:
        async with scratch_database() as dsn:
            yield dsn


async def run_scenarios(
    scenarios: list[Scenario], *, audio: bool = False, database: Literal["auto", "env", "none"] = "auto"
) -> list[CallReport]:
    reports: list[CallReport] = []
    async with _database(database) as dsn, RealtimeSimulator() as sim:
        pool = None
        if dsn is not None:
            await migrate(dsn)
            pool = await open_pool(dsn, min_size=1, max_size=4)
        spill = Path(tempfile.mkdtemp(prefix="sim-spill-"))
        try:
            for sc in scenarios:
                stores = None
                if pool is not None and dsn is not None:
                    journal = CallJournal(dsn, spill)
                    await journal.start()
                    stores = ScenarioStores(pool=pool, journal=journal)
                reports.append(await simulate(sc, audio=audio, sim=sim, stores=stores))
        finally:
            if pool is not None:
                await pool.close()
    return reports
