"""Answers the callers a full fleet left ringing, as soon as a worker has a free slot.

LiveKit offers a call's job to the workers once, as livekit-sip brings the caller into the room. When
every worker is full then, livekit-server logs "no workers with sufficient capacity" and never offers
it again: the caller rings until livekit-sip gives up (the trunk's ringing timeout, 30 s) and hears
SIP 486, while the call that ends a second later frees a slot nobody uses. A burst of calls (a radio
advert) meets exactly this.

So every worker with a free slot looks, every few seconds, for rooms whose caller is still ringing and
whose dispatch of this agent got no job at all (LiveKit records a job only once a worker took it), and
asks LiveKit to dispatch the agent there again, with the dispatch rule's own metadata. The caller hears
ringing a little longer, as at a busy office, and is then answered like any other. Workers claim a room
in Redis first, so of several free ones one dispatches it; a dispatch that again finds no free slot
leaves no job, and the room is tried again once the claim expires.

A caller who has rung OVERFLOW_AFTER_SECONDS and still finds every worker full would soon hear busy.
A worker with a free overflow slot (WORKER_OVERFLOW_CALLS) dispatches the agent to them marked
`all_lines_busy`: that job takes a message without the model (agent/overflow.py), which lasts about
20 s, so the caller leaves their name and number instead of hearing SIP 486.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from livekit import api

from agent.live.state import LiveState

log = logging.getLogger("receptionist.waiting_calls")

# how long a caller rings before a room with no job counts as passed over: LiveKit's own offer of the
# job takes well under a second, and a job it gave a worker is in the dispatch's state from then on
PASSED_OVER_AFTER_S = 3.0
_SIP = api.ParticipantInfo.Kind.SIP  # type: ignore[attr-defined]
_AGENT = api.ParticipantInfo.Kind.AGENT  # type: ignore[attr-defined]
_RINGING = "ringing"  # livekit-sip's sip.callStatus until the agent's audio is subscribed
# in a dispatch's metadata: every worker was full while this caller rang; take a message
ALL_LINES_BUSY = "all_lines_busy"


def takes_a_message(metadata: str) -> bool:
    """Whether a job's dispatch metadata marks a caller the full fleet left ringing (see the module)."""
    if ALL_LINES_BUSY not in metadata:  # the common case, without parsing
        return False
    try:
        found = json.loads(metadata)
    except ValueError:
        return False
    return isinstance(found, dict) and found.get(ALL_LINES_BUSY) is True


def marked_all_lines_busy(metadata: str) -> str:
    """The dispatch rule's metadata (a JSON object, or nothing) with the caller marked as above."""
    try:
        found = json.loads(metadata) if metadata else {}
    except ValueError:
        found = {}
    if not isinstance(found, dict):
        found = {}
    return json.dumps({**found, ALL_LINES_BUSY: True})


def _unmarked(metadata: str) -> str:
    """The metadata a marked dispatch was made from: the dispatch rule's own."""
    if not takes_a_message(metadata):
        return metadata
    found = json.loads(metadata)
    found.pop(ALL_LINES_BUSY)
    return json.dumps(found)


class WaitingCalls:
    """One per worker process; `run()` looks every `interval_s` while `free_slots()` or
    `free_overflow_slots()` says this worker could take calls, and dispatches the agent to at most that
    many callers, the longest ringing first: as a call while it has call slots, else, to a caller who
    has rung `overflow_after_s`, to take a message."""

    def __init__(
        self,
        live: LiveState,
        *,
        agent_name: str,
        livekit_url: str,
        api_key: str,
        api_secret: str,
        free_slots: Callable[[], int],
        free_overflow_slots: Callable[[], int] = lambda: 0,
        overflow_after_s: float = 20.0,
        interval_s: float = 2.0,
        claim_s: float = 4.0,
    ) -> None:
        self._live = live
        self._agent_name = agent_name
        self._livekit = (livekit_url, api_key, api_secret)  # LiveKit's client takes ws(s):// as http(s)://
        self._free_slots = free_slots
        self._free_overflow_slots = free_overflow_slots
        self._overflow_after_s = overflow_after_s
        self._interval_s = interval_s
        self._claim_s = claim_s

    async def run(self) -> None:
        url, key, secret = self._livekit
        async with api.LiveKitAPI(url, key, secret) as lk:  # one client (and its connections) for every round
            while True:
                try:
                    if (self._free_slots() > 0 or self._free_overflow_slots() > 0) and not self._live.degraded:
                        await self.sweep(lk)
                except Exception:  # noqa: BLE001 - LiveKit away for a moment: look again next round
                    log.exception("looking for callers left ringing failed")
                await asyncio.sleep(self._interval_s)

    async def sweep(self, lk: api.LiveKitAPI) -> list[str]:
        """Dispatch the agent again to the rooms passed over, as many as this worker has free slots;
        returns their names."""
        dispatched: list[str] = []
        calls, messages = self._free_slots(), self._free_overflow_slots()
        # a room whose call the registry lists has its agent: only the others are looked into (the
        # room count LiveKit reports leaves agents out, so it cannot tell an answered call from a
        # waiting one)
        hosted = {c.room for c in await self._live.active_calls()}
        rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
        now_s = time.time()
        for room in sorted(rooms, key=lambda r: r.creation_time):  # the longest ringing first
            # jobs this worker said yes to meanwhile hold slots too
            calls, messages = min(calls, self._free_slots()), min(messages, self._free_overflow_slots())
            if calls <= 0 and messages <= 0:
                break
            if room.name in hosted or now_s - room.creation_time < PASSED_OVER_AFTER_S:
                continue
            if calls <= 0 and now_s - room.creation_time < self._overflow_after_s:
                continue  # too soon for a message (the room is made as the caller rings): not looked into
            found = await self._passed_over(lk, room.name)
            if found is None:
                continue
            passed_over, rang_s = found
            take_message = calls <= 0
            if take_message and rang_s < self._overflow_after_s:
                continue  # a call may end and free a slot for them yet
            if not await self._live.claim_waiting_room(room.name, ttl_s=self._claim_s):
                continue  # another worker with a free slot has it
            await self._dispatch_again(lk, room.name, passed_over, rang_s=rang_s, take_message=take_message)
            dispatched.append(room.name)
            if take_message:
                messages -= 1
            else:
                calls -= 1
        return dispatched

    async def _passed_over(self, lk: api.LiveKitAPI, room: str) -> tuple[list[api.AgentDispatch], float] | None:
        """The room's dispatches of this agent when none got a job and its caller has been ringing for
        PASSED_OVER_AFTER_S, and for how long they have rung; None otherwise (an agent there, no caller
        ringing, or a job on its way)."""
        people = (await lk.room.list_participants(api.ListParticipantsRequest(room=room))).participants
        if any(p.kind == _AGENT for p in people):
            return None
        now_ms = time.time() * 1000
        ringing = [
            p for p in people
            if p.kind == _SIP and p.attributes.get("sip.callStatus") == _RINGING
            and now_ms - (p.joined_at_ms or p.joined_at * 1000) >= PASSED_OVER_AFTER_S * 1000
        ]  # fmt: skip
        if not ringing:
            return None
        ours = [d for d in await lk.agent_dispatch.list_dispatch(room_name=room) if d.agent_name == self._agent_name]
        if not ours or any(d.state.jobs for d in ours):
            return None  # not a room of ours, or a worker took its job and its agent is on its way
        first_rang_ms = min(p.joined_at_ms or p.joined_at * 1000 for p in ringing)
        return ours, (now_ms - first_rang_ms) / 1000

    async def _dispatch_again(
        self,
        lk: api.LiveKitAPI,
        room: str,
        passed_over: list[api.AgentDispatch],
        *,
        rang_s: float,
        take_message: bool,
    ) -> None:
        # the passed-over dispatches stay: deleting one would end a job LiveKit might still be giving
        # a worker for it (and put a second agent on the call for a moment); without a job they cost
        # nothing, and the room goes with the call
        # the dispatch rule's (the business the number belongs to); a marked dispatch that got no job
        # may be among them, in any order, and a call is dispatched unmarked
        metadata = _unmarked(passed_over[0].metadata)
        if take_message:
            metadata = marked_all_lines_busy(metadata)
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=self._agent_name, room=room, metadata=metadata)
        )
        if take_message:
            log.warning("a caller rang in %s for %.0f s with every worker full; a message will be taken",
                        room, rang_s)  # fmt: skip
        else:
            log.warning("a caller rang in %s with every worker full; dispatched the agent again", room)
