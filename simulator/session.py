"""Runs scenarios with real stores: DATABASE_URL when set, else a throwaway local Postgres (a fresh
database per scenario), so `receptionist simulate` grades calls on database state with nothing to
configure."""

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
from agent.store.journal.writer import CallJournal
from agent.store.records import snapshot
from simulator.postgres import PgServer
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
        rows = await snapshot(self.pool, call_id=call.call_id)
        business = await snapshot(self.pool, business=call.brain.business.name)
        rows["business_appointments"] = business["appointments"]
        return rows


class ScenarioDatabases:
    """Where each scenario's call is recorded. In the throwaway cluster every scenario gets a fresh
    database copied from a migrated template, so one scenario's seed or bookings never meet
    another's. DATABASE_URL is one database the scenarios share (rows stay there to inspect)."""

    TEMPLATE = "sim_template"

    def __init__(self, mode: Literal["auto", "env", "none"]) -> None:
        self.mode = mode
        self.shared: str | None = None
        self.server: PgServer | None = None

    async def __aenter__(self) -> ScenarioDatabases:
        env = os.environ.get("DATABASE_URL")
        if self.mode == "none" or (self.mode == "env" and not env):
            return self
        if env:
            await migrate(env)
            self.shared = env
            return self
        server = PgServer()
        try:
            server.start()
            await migrate(server.create_database(self.TEMPLATE))
        except BaseException:
            server.destroy()
            raise
        self.server = server
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.destroy()

    def for_scenario(self) -> str | None:
        """A DSN for the next scenario's call (a new database in the throwaway cluster), or None."""
        if self.server is None:
            return self.shared
        return self.server.create_database(f"sim_{uuid.uuid4().hex[:8]}", template=self.TEMPLATE)


@contextlib.asynccontextmanager
async def scenario_stores(dsn: str | None) -> AsyncIterator[ScenarioStores | None]:
    """Stores for one scenario's call, closed afterwards even if the call crashed."""
    if dsn is None:
        yield None
        return
    pool = await open_pool(dsn, min_size=1, max_size=4, prepare=appointments.warm_up)
    # a spill directory of its own: a journal replays what it finds there into its database
    with tempfile.TemporaryDirectory(prefix="sim-spill-") as spill:
        journal = CallJournal(dsn, Path(spill))
        try:
            await journal.start()
            yield ScenarioStores(pool=pool, journal=journal)
        finally:
            await journal.aclose(timeout=15)
            await pool.close()


async def run_scenarios(
    scenarios: list[Scenario], *, audio: bool = False, database: Literal["auto", "env", "none"] = "auto"
) -> list[CallReport]:
    """Run and grade each scenario; one that crashes gets a report carrying its error, and the
    rest still run."""
    reports: list[CallReport] = []
    async with ScenarioDatabases(database) as databases, RealtimeSimulator() as sim:
        for sc in scenarios:
            try:
                async with scenario_stores(databases.for_scenario()) as stores:
                    reports.append(await simulate(sc, audio=audio, sim=sim, stores=stores))
            except Exception as exc:
                log.debug("scenario %s crashed", sc.name, exc_info=True)
                reports.append(CallReport.crashed(sc, "audio" if audio else "text", exc))
    return reports
