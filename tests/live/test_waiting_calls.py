"""Which rooms a worker with a free slot dispatches the agent to again: a caller ringing alone whose
dispatch got no job, once across replicas (real Redis claims); never a room with an agent, a job on
its way, another agent's dispatch, or while this worker is full. LiveKit's API is played by a fake
holding rooms, participants and dispatches as livekit-server reports them."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from livekit import api

from agent.live import LiveState
from agent.live.waiting_calls import WaitingCalls, marked_all_lines_busy, takes_a_message

AGENT = "receptionist"
SIP, AGENT_KIND = api.ParticipantInfo.Kind.SIP, api.ParticipantInfo.Kind.AGENT  # type: ignore[attr-defined]


@dataclass
class FakeLiveKit:
    """What livekit-server holds: rooms with their participants and agent dispatches."""

    rooms: dict[str, list[api.ParticipantInfo]] = field(default_factory=dict)
    looked_into: list[str] = field(default_factory=list)
    dispatches: dict[str, list[api.AgentDispatch]] = field(default_factory=dict)
    created: list[api.CreateAgentDispatchRequest] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def add(self, name: str, people: list[api.ParticipantInfo], *, agent: str = AGENT, jobs: int = 0) -> None:
        self.rooms[name] = people
        dispatch = api.AgentDispatch(id=f"AD_{name}", agent_name=agent, room=name, metadata='{"business": "plumbing"}')
        dispatch.state.jobs.extend(api.Job(id=f"AJ_{name}_{n}") for n in range(jobs))
        self.dispatches[name] = [dispatch]

    # the parts of LiveKitAPI the sweep uses
    @property
    def room(self) -> Any:
        return self

    @property
    def agent_dispatch(self) -> Any:
        return self

    async def list_rooms(self, _req: api.ListRoomsRequest) -> api.ListRoomsResponse:
        # as livekit-server counts them: agents left out; the rooms made one a second, the first oldest
        first = int(time.time()) - 60
        return api.ListRoomsResponse(rooms=[
            api.Room(name=n, num_participants=len([x for x in p if x.kind != AGENT_KIND]), creation_time=first + i)
            for i, (n, p) in enumerate(self.rooms.items())
        ])  # fmt: skip

    async def list_participants(self, req: api.ListParticipantsRequest) -> api.ListParticipantsResponse:
        self.looked_into.append(req.room)
        return api.ListParticipantsResponse(participants=self.rooms[req.room])

    async def list_dispatch(self, room_name: str) -> list[api.AgentDispatch]:
        return list(self.dispatches.get(room_name, []))

    async def delete_dispatch(self, dispatch_id: str, room_name: str) -> api.AgentDispatch:
        self.deleted.append(dispatch_id)
        self.dispatches[room_name] = [d for d in self.dispatches[room_name] if d.id != dispatch_id]
        return api.AgentDispatch(id=dispatch_id)

    async def create_dispatch(self, req: api.CreateAgentDispatchRequest) -> api.AgentDispatch:
        self.created.append(req)
        made = api.AgentDispatch(id=f"AD_again_{len(self.created)}", agent_name=req.agent_name, room=req.room,
                                 metadata=req.metadata)  # fmt: skip
        self.dispatches[req.room].append(made)
        return made


def caller(status: str = "ringing", rang_s: float = 10) -> api.ParticipantInfo:
    return api.ParticipantInfo(identity="sip_+15035550161", kind=SIP, attributes={"sip.callStatus": status},
                               joined_at_ms=int((time.time() - rang_s) * 1000))  # fmt: skip


@pytest.fixture
def livekit() -> FakeLiveKit:
    return FakeLiveKit()


@pytest.fixture
async def live(redis_url: str) -> AsyncIterator[LiveState]:
    state = LiveState(redis_url)
    yield state
    await state.aclose()


def worker(live: LiveState, *, free: int = 5, overflow: int = 0) -> WaitingCalls:
    return WaitingCalls(live, agent_name=AGENT, livekit_url="ws://127.0.0.1:1", api_key="key",
                        api_secret="secret", free_slots=lambda: free, free_overflow_slots=lambda: overflow,
                        overflow_after_s=20, claim_s=30)  # fmt: skip


async def test_a_caller_passed_over_is_dispatched_once_across_workers(livekit: FakeLiveKit, live: LiveState) -> None:
    livekit.add("call-_+15035550161_a", [caller()])
    first, second = worker(live), worker(live)
    assert await first.sweep(livekit) == ["call-_+15035550161_a"]
    assert await second.sweep(livekit) == []  # the first claimed it: two agents would answer one call
    [again] = livekit.created
    assert (again.agent_name, again.room, again.metadata) == (AGENT, "call-_+15035550161_a", '{"business": "plumbing"}')
    # the passed-over dispatch stays: deleting it would end a job LiveKit might still be placing
    assert livekit.deleted == []


async def test_rooms_that_are_not_waiting_for_a_free_slot_are_left_alone(livekit: FakeLiveKit, live: LiveState) -> None:
    agent = api.ParticipantInfo(identity="agent-AJ_1", kind=AGENT_KIND)
    livekit.add("answered", [caller("active"), agent])
    livekit.add("agent-on-its-way", [caller()], jobs=1)  # a worker took the job: its agent is joining
    livekit.add("another-agents", [caller()], agent="survey")
    livekit.add("just-rang", [caller(rang_s=0.5)])  # LiveKit's own offer may still be under way
    livekit.add("answered-alone", [caller("active")])  # the agent left after a warm transfer
    assert await worker(live).sweep(livekit) == []
    assert livekit.created == [] and livekit.deleted == []


async def test_a_full_worker_dispatches_nothing(livekit: FakeLiveKit, live: LiveState) -> None:
    livekit.add("call-_+15035550161_b", [caller()])
    assert await worker(live, free=0).sweep(livekit) == []
    assert livekit.created == []


async def test_one_free_slot_answers_the_longest_ringing_caller_and_a_hosted_call_is_not_looked_into(
    livekit: FakeLiveKit, live: LiveState
) -> None:
    agent = api.ParticipantInfo(identity="agent-AJ_1", kind=AGENT_KIND)
    livekit.add("call-_+15035550160_under-way", [caller("active"), agent])
    livekit.add("call-_+15035550161_first", [caller()])
    livekit.add("call-_+15035550162_second", [caller()])
    await live.register_call("c-1", "Rose City Plumbing", "+15035550160", "active",
                             room="call-_+15035550160_under-way", worker="AW_1")  # fmt: skip
    assert await worker(live, free=1).sweep(livekit) == ["call-_+15035550161_first"]
    assert "call-_+15035550160_under-way" not in livekit.looked_into  # the registry has its call


async def test_a_full_worker_takes_a_message_from_a_caller_about_to_hear_busy(
    livekit: FakeLiveKit, live: LiveState
) -> None:
    livekit.add("call-_+15035550161_long", [caller(rang_s=22)])
    livekit.add("call-_+15035550162_short", [caller(rang_s=8)])  # a call may still end and free a slot
    livekit.add("call-_+15035550163_longer", [caller(rang_s=25)])
    full = worker(live, free=0, overflow=2)
    assert await full.sweep(livekit) == ["call-_+15035550161_long", "call-_+15035550163_longer"]
    assert [json.loads(d.metadata) for d in livekit.created] == [{"business": "plumbing", "all_lines_busy": True}] * 2
    # a worker with a call slot free answers the caller who rang too short a time for a message
    assert await worker(live, free=1, overflow=1).sweep(livekit) == ["call-_+15035550162_short"]
    assert not takes_a_message(livekit.created[-1].metadata)
    # and with neither kind of slot free, nobody is dispatched
    livekit.add("call-_+15035550164_late", [caller(rang_s=24)])
    assert await worker(live, free=0, overflow=0).sweep(livekit) == []


async def test_a_caller_a_message_slot_missed_is_dispatched_as_a_call_once_a_call_slot_frees(
    livekit: FakeLiveKit, live: LiveState
) -> None:
    # the marked dispatch found no free message slot; LiveKit lists a room's dispatches in any order
    livekit.add("call-_+15035550165_missed", [caller(rang_s=23)])
    missed = api.AgentDispatch(id="AD_marked", agent_name=AGENT, room="call-_+15035550165_missed",
                               metadata=marked_all_lines_busy('{"business": "plumbing"}'))  # fmt: skip
    livekit.dispatches["call-_+15035550165_missed"].insert(0, missed)
    assert await worker(live, free=1).sweep(livekit) == ["call-_+15035550165_missed"]
    [again] = livekit.created
    assert json.loads(again.metadata) == {"business": "plumbing"}  # a call, with the rule's own metadata


def test_only_a_marked_dispatch_takes_a_message() -> None:
    assert not takes_a_message('{"business": "plumbing"}')
    assert not takes_a_message("")
    assert not takes_a_message('{"all_lines_busy": "yes"}')  # only the mark this worker writes
    assert not takes_a_message("all_lines_busy")  # not JSON
    assert takes_a_message(marked_all_lines_busy(""))
    assert takes_a_message(marked_all_lines_busy("not json"))
    assert json.loads(marked_all_lines_busy('{"numbers": ["+15035550100"]}')) == {
        "numbers": ["+15035550100"], "all_lines_busy": True}  # fmt: skip
