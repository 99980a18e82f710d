"""Ends the calls of a replica (or a job process) that died mid-call: every worker sweeps the call
leases whose heartbeats stopped, claims each once, hangs up the caller's leg and finalises the row,
queuing in the same transaction what the call's own ending would have told the owner at once and can
still be known from Postgres: an urgent message the caller left before the worker died.

Nothing else would end them: livekit-sip keeps the caller's leg up while the room lives, and the room
lives while the caller is in it, so without this the caller hears silence until they give up and the
call row never gets its `ended_at`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from livekit import api

from agent.live.state import LiveState, LostCall
from agent.store.journal.rows import Notices, end_lost_call

log = logging.getLogger("receptionist.lost_calls")

END_REASON = "worker_lost"
# (business, call id, ended at, end reason) -> what ending that call tells its owner, or None
OwnerTold = Callable[[str, uuid.UUID, datetime, str], Notices | None]
# a lease whose call row never reaches Postgres (no database, records lost with a disk) is dropped
GIVE_UP_AFTER = timedelta(hours=1)


class LostCallSweeper:
    """One per worker process; `run()` sweeps every `interval_s` until cancelled."""

    def __init__(
        self,
        live: LiveState,
        *,
        database_url: str | None,
        livekit_url: str,
        api_key: str,
        api_secret: str,
        interval_s: float = 5.0,
        retry_after_s: float = 60.0,
        owner_told: OwnerTold | None = None,
    ) -> None:
        self._live = live
        self._owner_told = owner_told  # what a lost call's ending tells its owner at once (an urgent message)
        self._database_url = database_url
        self._livekit = (livekit_url, api_key, api_secret)  # LiveKit's client takes ws(s):// as http(s)://
        self._interval_s = interval_s
        self._retry_after_s = retry_after_s  # a claimed call not ended by then is offered again

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - a call claimed but not ended is offered again later
                log.exception("sweeping lost calls failed")
            await asyncio.sleep(self._interval_s)

    async def sweep(self) -> list[LostCall]:
        """End every call whose heartbeats stopped; returns those this replica finalised."""
        lost = await self._live.claim_lost_calls(retry_after_s=self._retry_after_s)
        if not lost:
            return []
        for call in lost:
            log.warning(
                "call %s lost its worker %s (found %s): hanging up its caller",
                call.call_id, call.worker or "?", call.lost_at.isoformat(),
            )  # fmt: skip
            await self._hang_up(call)
        finalised, waiting = await self._finalise(lost)
        for call in lost:
            if call in waiting and datetime.now(UTC) - call.lost_at < GIVE_UP_AFTER:
                continue  # offered again after retry_after_s, to whichever replica sweeps then
            if call in waiting:
                log.error("call %s: its row never reached Postgres; giving up", call.call_id)
            await self._live.forget_lost_call(call.call_id)
        return finalised

    async def _hang_up(self, call: LostCall) -> None:
        # deleting the room makes livekit-sip send the caller a BYE; an already closed room is fine
        if not call.room:
            return
        url, key, secret = self._livekit
        try:
            async with api.LiveKitAPI(url, key, secret) as lk:
                await lk.room.delete_room(api.DeleteRoomRequest(room=call.room))
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:
                log.warning("could not close room %s of lost call %s: %s", call.room, call.call_id, e)  # fmt: skip
        except Exception as e:  # noqa: BLE001 - the row is still finalised
            log.warning("could not close room %s of lost call %s: %s", call.room, call.call_id, e)

    async def _finalise(self, lost: list[LostCall]) -> tuple[list[LostCall], list[LostCall]]:
        """(finalised here, not finalisable yet); the others had ended already."""
        if not self._database_url:
            return [], []
        ended_at = datetime.now(UTC)
        finalised: list[LostCall] = []
        waiting: list[LostCall] = []
        try:
            async with await psycopg.AsyncConnection.connect(
                # never prepared: DATABASE_URL may be PgBouncer in transaction mode (db.py open_pool)
                self._database_url, connect_timeout=5, autocommit=True, prepare_threshold=None
            ) as conn:
                for call in lost:
                    done = await end_lost_call(
                        conn, uuid.UUID(call.call_id), end_reason=END_REASON, ended_at=ended_at,
                        then=self._owner_told(call.business, uuid.UUID(call.call_id), ended_at, END_REASON)
                        if self._owner_told is not None else None,
                    )  # fmt: skip
                    if done is None:  # its records may still be on their way from a spill file
                        waiting.append(call)
                    elif done:
                        finalised.append(call)
        except psycopg.Error as e:
            log.warning("Postgres unreachable while finalising lost calls (%s); retrying later", e)
            handled = {c.call_id for c in finalised}
            waiting = [c for c in lost if c.call_id not in handled]
        return finalised, waiting
