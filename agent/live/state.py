"""LiveState: the call registry (TTL + heartbeat), per-caller rate limiting and short slot holds.

Each registered call also holds a lease that outlives its process: when the heartbeats stop (the
replica or the job process died), a surviving replica claims the lease once and ends the call
(agent/live/lost_calls.py).

Nothing here is a record (Postgres keeps those). So when Redis is down every method degrades to a safe
default instead of failing the call: calls are allowed, holds granted, lists empty; one warning per
outage, not one per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")
_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)

# sliding window: drop entries older than the window, admit if under the limit
_ALLOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# a hold is granted to the first call, and again (refreshed) to the call that already holds it
_HOLD = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
# leases whose heartbeat stopped; each is re-leased to the claimer for ARGV[4] ms, so of two sweepers one
# gets a call, and a sweeper that dies (or loses the reply) before ending it leaves it to a later sweep
_CLAIM_LOST = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, cid in ipairs(ids) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), cid)
  local lease = ARGV[3] .. cid
  redis.call('HSETNX', lease, 'lost_at', ARGV[1])
  local info = redis.call('HMGET', lease, 'room', 'business', 'worker', 'lost_at')
  table.insert(out, {cid, info[4] or ARGV[1], info[1] or '', info[2] or '', info[3] or ''})
end
return out
"""
_UPDATE_STATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class ActiveCall:
    call_id: str
    business: str
    caller: str | None
    state: str
    started_at: datetime
    updated_at: datetime
    worker: str = ""  # LiveKit worker id of the replica hosting the call
    room: str = ""


@dataclass(frozen=True)
class LostCall:
    """A call whose heartbeats stopped, claimed by this replica to end it."""

    call_id: str
    room: str
    business: str
    worker: str
    lost_at: datetime  # when a sweeper first found it


@dataclass
class _HostedCall:
    call_id: str
    business: str
    caller: str | None
    state: str
    started_at: int  # epoch ms
    updated_at: int
    ttl_s: int
    room: str = ""
    worker: str = ""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _slot_key(start: datetime) -> str:
    if start.tzinfo is None:
        raise ValueError("slot start must be timezone-aware")
    return start.astimezone(UTC).isoformat()


class LiveState:
    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = "rcpt",
        socket_timeout: float = 0.25,
        op_timeout: float = 0.5,
    ) -> None:
        # no client-side retries: a retry loop during an outage is exactly the dead air we avoid
        self._redis = aioredis.Redis.from_url(
            redis_url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._p = prefix
        self._op_timeout = op_timeout
        self._down = False
        self._hosted: dict[str, _HostedCall] = {}  # calls running in this process
        self._allow = self._redis.register_script(_ALLOW)
        self._hold = self._redis.register_script(_HOLD)
        self._release = self._redis.register_script(_RELEASE)
        self._update_state = self._redis.register_script(_UPDATE_STATE)
        self._claim_lost = self._redis.register_script(_CLAIM_LOST)

    @property
    def degraded(self) -> bool:
        """True while the last Redis operation failed."""
        return self._down

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _guarded(self, what: str, op: Any, default: T) -> T:
        try:
            async with asyncio.timeout(self._op_timeout):
                result = await op
        except _DOWN_ERRORS as exc:
            if not self._down:
                self._down = True
                log.warning(
                    "live state: Redis unreachable during %s (%s); degrading until it returns "
                    "(calls allowed, slot holds granted, no cross-replica call list)", what, exc,
                )  # fmt: skip
            return default
        if self._down:
            self._down = False
            log.warning("live state: Redis is reachable again")
        return result  # type: ignore[no-any-return]

    # --- keys ---------------------------------------------------------------------------------------
    def _call_key(self, call_id: str) -> str:
        return f"{self._p}:call:{call_id}"

    def _calls_index(self, business: str | None) -> str:
        return f"{self._p}:calls" if business is None else f"{self._p}:calls:{business}"

    # a lease has no TTL of its own: it must outlive the process that stopped renewing it
    def _lease_key(self, call_id: str) -> str:
        return f"{self._p}:lease:{call_id}"

    @property
    def _leases(self) -> str:
        return f"{self._p}:leases"

    # --- call registry ------------------------------------------------------------------------------
    async def register_call(
        self,
        call_id: uuid.UUID | str,
        business: str,
        caller: str | None,
        state: str,
        ttl_s: int = 30,
        *,
        room: str = "",
        worker: str = "",
    ) -> None:
        """Announce a call; it disappears from active_calls unless heartbeat() comes within ttl_s,
        and its lease is then claimed by claim_lost_calls()."""
        now = _now_ms()
        call = _HostedCall(str(call_id), business, caller, state, now, now, ttl_s, room, worker)
        self._hosted[call.call_id] = call
        await self._guarded("register_call", self._write_call(call), None)

    async def _write_call(self, call: _HostedCall) -> None:
        # the whole entry is rewritten each time, so a Redis that restarted empty learns it again
        expiry = _now_ms() + call.ttl_s * 1000
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._call_key(call.call_id), mapping={
                "call_id": call.call_id, "business": call.business, "caller": call.caller or "",
                "state": call.state, "started_at": call.started_at, "updated_at": call.updated_at,
                "ttl": call.ttl_s, "room": call.room, "worker": call.worker,
            })  # fmt: skip
            pipe.expire(self._call_key(call.call_id), call.ttl_s)
            pipe.zadd(self._calls_index(None), {call.call_id: expiry})
            pipe.zadd(self._calls_index(call.business), {call.call_id: expiry})
            pipe.hset(self._lease_key(call.call_id), mapping={
                "room": call.room, "business": call.business, "worker": call.worker,
            })  # fmt: skip
            pipe.zadd(self._leases, {call.call_id: expiry})
            await pipe.execute()

    async def heartbeat(self, call_id: uuid.UUID | str) -> None:
        """Keep a call listed for another TTL."""
        cid = str(call_id)
        if cid in self._hosted:
            await self._guarded("heartbeat", self._write_call(self._hosted[cid]), None)
            return

        async def op() -> None:  # a call hosted by another process: extend only if still listed
            business, ttl = await self._redis.hmget(self._call_key(cid), ["business", "ttl"])
            if business is None or ttl is None:
                return
            expiry = _now_ms() + int(ttl) * 1000
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.expire(self._call_key(cid), int(ttl))
                pipe.zadd(self._calls_index(None), {cid: expiry}, xx=True)
                pipe.zadd(self._calls_index(business), {cid: expiry}, xx=True)
                pipe.zadd(self._leases, {cid: expiry}, xx=True)
                await pipe.execute()

        await self._guarded("heartbeat", op(), None)

    async def update_state(self, call_id: uuid.UUID | str, state: str) -> None:
        """Record what the call is doing now (e.g. "greeting", "booking", "transferring")."""
        cid = str(call_id)
        if cid in self._hosted:
            call = self._hosted[cid]
            call.state, call.updated_at = state, _now_ms()
            await self._guarded("update_state", self._write_call(call), None)
            return
        script = self._update_state(keys=[self._call_key(cid)], args=[state, _now_ms()])
        await self._guarded("update_state", script, 0)

    async def end_call(self, call_id: uuid.UUID | str) -> None:
        cid = str(call_id)
        hosted = self._hosted.pop(cid, None)

        async def op() -> None:
            business = (
                hosted.business
                if hosted
                else await self._redis.hget(self._call_key(cid), "business")
            )
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._call_key(cid))
                pipe.zrem(self._calls_index(None), cid)
                if business:
                    pipe.zrem(self._calls_index(business), cid)
                pipe.zrem(self._leases, cid)
                pipe.delete(self._lease_key(cid))
                await pipe.execute()

        await self._guarded("end_call", op(), None)

    async def claim_lost_calls(self, limit: int = 100, retry_after_s: float = 60) -> list[LostCall]:
        """Calls whose heartbeats stopped, each returned to one caller only; unless forget_lost_call()
        follows, the call is offered again after retry_after_s. [] when degraded."""

        async def op() -> list[LostCall]:
            args = [_now_ms(), limit, self._lease_key(""), int(retry_after_s * 1000)]
            rows = await self._claim_lost(keys=[self._leases], args=args)
            return [
                LostCall(
                    call_id=cid, room=room, business=business, worker=worker,
                    lost_at=datetime.fromtimestamp(int(lost_at) / 1000, UTC),
                )
                for cid, lost_at, room, business, worker in rows
            ]  # fmt: skip

        return await self._guarded("claim_lost_calls", op(), [])

    async def forget_lost_call(self, call_id: str) -> None:
        """A lost call has been ended: its lease goes."""

        async def op() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self._leases, call_id)
                pipe.delete(self._lease_key(call_id))
                await pipe.execute()

        await self._guarded("forget_lost_call", op(), None)

    async def claim_waiting_room(self, room: str, ttl_s: float) -> bool:
        """This replica dispatches the agent to a caller left ringing in `room` (agent/live/waiting_calls):
        True for one replica per `ttl_s`; False to all while Redis is away (no replica can be sure it
        is the only one, and two dispatches would put two agents on one call)."""

        async def op() -> bool:
            return bool(await self._redis.set(f"{self._p}:waiting:{room}", "1", nx=True, px=int(ttl_s * 1000)))

        return await self._guarded("claim_waiting_room", op(), False)

    async def active_calls(self, business: str | None = None) -> list[ActiveCall]:
        """Calls live on any replica (heartbeat within their TTL), oldest first. [] when degraded."""
        index = self._calls_index(business)

        async def op() -> list[ActiveCall]:
            await self._redis.zremrangebyscore(index, "-inf", _now_ms())
            ids = await self._redis.zrange(index, 0, -1)
            async with self._redis.pipeline(transaction=False) as pipe:
                for cid in ids:
                    pipe.hgetall(self._call_key(cid))
                rows = await pipe.execute()
            calls = [
                ActiveCall(
                    call_id=r["call_id"], business=r["business"], caller=r["caller"] or None,
                    state=r["state"],
                    started_at=datetime.fromtimestamp(int(r["started_at"]) / 1000, UTC),
                    updated_at=datetime.fromtimestamp(int(r["updated_at"]) / 1000, UTC),
                    worker=r.get("worker", ""), room=r.get("room", ""),
                )
                for r in rows
                if r  # expired between the index read and the fetch
            ]  # fmt: skip
            return sorted(calls, key=lambda c: c.started_at)

        return await self._guarded("active_calls", op(), [])

    # --- rate limiting ------------------------------------------------------------------------------
    async def allow_call(self, caller: str | None, limit: int, window_s: float) -> bool:
        """Sliding-window limit of calls per caller number; True (allow) when degraded or anonymous."""
        if not caller:
            return True
        key = f"{self._p}:rate:{caller}"
        args = [_now_ms(), int(window_s * 1000), limit, uuid.uuid4().hex]
        return bool(await self._guarded("allow_call", self._allow(keys=[key], args=args), 1))

    # --- slot holds ---------------------------------------------------------------------------------
    async def hold_slot(
        self, business: str, start: datetime, call_id: uuid.UUID | str, ttl_s: int = 120
    ) -> bool:
        """Hold a slot for this call while the caller decides; False if another call holds it.

        Degraded: True (Postgres's exclusion constraint still prevents a double booking)."""
        slot = _slot_key(start)
        keys = [f"{self._p}:hold:{business}:{slot}", f"{self._p}:holds:{business}"]
        args = [str(call_id), ttl_s, _now_ms() + ttl_s * 1000, slot]
        return bool(await self._guarded("hold_slot", self._hold(keys=keys, args=args), 1))

    async def holds(
        self, business: str, exclude_call: uuid.UUID | str | None = None
    ) -> set[datetime]:
        """Slot starts currently held (by calls other than exclude_call). Empty when degraded."""
        index = f"{self._p}:holds:{business}"

        async def op() -> set[datetime]:
            await self._redis.zremrangebyscore(index, "-inf", _now_ms())
            slots = await self._redis.zrange(index, 0, -1)
            if not slots:
                return set()
            owners = await self._redis.mget([f"{self._p}:hold:{business}:{s}" for s in slots])
            return {
                datetime.fromisoformat(s)
                for s, owner in zip(slots, owners, strict=True)
                if owner is not None and owner != (str(exclude_call) if exclude_call else None)
            }

        return await self._guarded("holds", op(), set())

    async def release_slot(self, business: str, start: datetime, call_id: uuid.UUID | str) -> None:
        """Release a hold, only if this call owns it."""
        slot = _slot_key(start)
        keys = [f"{self._p}:hold:{business}:{slot}", f"{self._p}:holds:{business}"]
        await self._guarded("release_slot", self._release(keys=keys, args=[str(call_id), slot]), 0)
