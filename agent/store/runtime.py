"""How a worker process reaches its stores: one Postgres pool and one Redis client per process (per
call's thread under `WORKER_JOB_EXECUTOR=thread`, where each call has its own event loop), one
journal per call writing through that pool. A store that is down degrades features; it never stops a call from being answered."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg_pool import AsyncConnectionPool

from agent.call_summary import add_prose_summary
from agent.live.admission import Admission
from agent.settings import Settings
from agent.store.appointments import warm_up
from agent.store.db import migrate, open_pool
from agent.store.journal.writer import CallJournal

if TYPE_CHECKING:
    from agent.call import CallContext
    from agent.live import LiveState

log = logging.getLogger("receptionist.stores")


@dataclass
class CallStores:
    settings: Settings
    pool: AsyncConnectionPool | None = None
    live: LiveState | None = None
    journal: CallJournal | None = None
    admission: Admission | None = None  # the process's (one per LiveState)

    def __post_init__(self) -> None:
        if self.live is not None and self.admission is None:
            self.admission = Admission(self.live, self.settings.caller_rate_limit)

    async def admit(self, call: CallContext, *, worker: str = "") -> bool:
        """Register the call across replicas (under the LiveKit worker id hosting it); False when this
        caller number is over its rate limit."""
        return True if self.admission is None else await self.admission.admit(call, worker=worker)

    async def release(self, call: CallContext) -> None:
        """Unregister the call, add the report's prose summary when it is on, and make the call's
        record durable (Postgres, or the spill file)."""
        if self.admission is not None:
            await self.admission.release(call)
        try:
            if self.settings.call_summary_model and call.journal is not None:  # else nowhere to keep it
                # the report lands before the summary is asked for: a job process stopped while the
                # model is still writing (LiveKit's shutdown limit) then costs only the summary
                await call.journal.flush(timeout=5, until_outage=True)
                await add_prose_summary(call, self.settings)
            if call.journal is not None:
                await call.journal.aclose(timeout=10)
        finally:
            await self.close_with_the_call()

    async def close_with_the_call(self) -> None:
        """Under the thread executor the call's thread and its event loop end with the call: so do the
        pool and the Redis client made on that loop. A job process's stores end with the process."""
        if self.settings.worker_job_executor != "thread":
            return
        _loop_stores.pop(asyncio.get_running_loop(), None)
        if self.pool is not None:
            await self.pool.close()
        if self.live is not None:
            await self.live.aclose()


# one pool and one Redis client per event loop: a job process has one loop; under the thread executor
# each call's thread runs its own, and a pool cannot be shared across loops
_loop_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CallStores] = weakref.WeakKeyDictionary()


async def call_stores(settings: Settings) -> CallStores:
    """This process's (this loop's) pool and live state, made once, plus a fresh journal for the call."""
    loop = asyncio.get_running_loop()
    if loop not in _loop_stores:
        stores = CallStores(settings)
        if settings.database_url:
            if os.environ.get("LIVEKIT_DEV_MODE") == "1":
                # console/dev: keep the schema current without a separate step
                try:
                    await migrate(settings.database_url)
                except Exception as e:  # noqa: BLE001 - an outage must not stop the call
                    log.warning("could not migrate the database (%s); continuing", e)
            try:
                stores.pool = await open_pool(
                    settings.database_url,
                    min_size=1,
                    max_size=settings.database_pool_size,
                    prepare=warm_up,
                    pgbouncer=settings.database_pgbouncer,
                )
            except Exception as e:  # noqa: BLE001
                log.warning(
                    "Postgres unreachable (%s): bookings unavailable, records spill to disk", e
                )
        else:
            log.warning(
                "DATABASE_URL is not set: calls are not recorded and bookings are unavailable"
            )
        if settings.redis_url:
            from agent.live import LiveState

            stores.live = LiveState(settings.redis_url)
            stores.admission = Admission(stores.live, settings.caller_rate_limit)
        _loop_stores[loop] = stores
    stores = _loop_stores[loop]
    journal = None
    if settings.database_url:
        # through the process's pool: a call costs no connection of its own (without a pool, because
        # Postgres was down when the process started, the journal connects by itself when it is back)
        journal = CallJournal(stores.pool or settings.database_url, settings.journal_spill_dir)
        try:
            await journal.start()
        except BaseException:
            await stores.close_with_the_call()
            raise
    return CallStores(
        settings,
        pool=stores.pool,
        live=stores.live,
        journal=journal,
        admission=stores.admission,
    )
