"""Letting a call in: the caller's hourly rate limit, then the call registered across replicas (with a
heartbeat, so a replica that dies leaves calls the others can end) until it is released. The worker
and the scenario runner admit calls through this one gate."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.call import CallContext
    from agent.live.state import LiveState

log = logging.getLogger("receptionist.stores")

REGISTRY_TTL_S = 30
RATE_WINDOW_S = 3600


class Admission:
    """One process's gate: `rate_limit` calls per caller number per hour (0 = unlimited)."""

    def __init__(self, live: LiveState, rate_limit: int) -> None:
        self.live = live
        self.rate_limit = rate_limit
        self._heartbeats: dict[str, asyncio.Task[None]] = {}

    async def admit(self, call: CallContext, *, worker: str = "") -> bool:
        """Register the call (under the LiveKit worker id hosting it); False when its caller number is
        over the rate limit, and then nothing is registered."""
        if (
            self.rate_limit
            and call.caller_number
            and not await self.live.allow_call(call.caller_number, self.rate_limit, RATE_WINDOW_S)
        ):
            log.warning(
                "rate limit: %s called more than %d times this hour", call.caller_number, self.rate_limit
            )
            return False
        key = str(call.call_id)
        await self.live.register_call(
            key, call.brain.business.name, call.caller_number or "", "active", ttl_s=REGISTRY_TTL_S,
            room=call.room, worker=worker,
        )  # fmt: skip
        self._heartbeats[key] = asyncio.create_task(self._beat(key))
        return True

    async def _beat(self, key: str) -> None:
        while True:
            await asyncio.sleep(REGISTRY_TTL_S / 3)
            await self.live.heartbeat(key)

    async def release(self, call: CallContext) -> None:
        """The call has ended: no longer live on any replica."""
        key = str(call.call_id)
        beat = self._heartbeats.pop(key, None)
        if beat is not None:
            beat.cancel()
        await self.live.end_call(key)
