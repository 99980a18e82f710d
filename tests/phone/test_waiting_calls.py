"""A caller who rings while every worker is full is answered once a slot frees, over real SIP (sipp,
livekit-sip, livekit-server): LiveKit offers a call's job once, and a worker that frees a slot
dispatches the agent again to the caller left ringing (agent/live/waiting_calls.py). Without it the
caller rings out the trunk's ringing timeout and hears SIP 486."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.postgres import TEMPLATE_DB, PgServer
from tests.fixtures.stack import PhoneStack, free_port
from tests.phone.harness import find_sip_participant, place_call
from tests.phone.test_receptionist_call import GREETING, PLUMBING, call_row, rows
from tests.phone.worker import WorkerFailed, off_the_loop, receptionist_worker

AGENT_NAME = "receptionist-one-slot"


@pytest.fixture(scope="module")
async def one_slot_sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def one_slot_db(pg_cluster: PgServer) -> Iterator[str]:
    name = f"waiting_{uuid.uuid4().hex[:8]}"
    yield pg_cluster.create_database(name, template=TEMPLATE_DB)
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
async def one_slot_worker(
    phone_stack: PhoneStack, one_slot_sim: RealtimeSimulator, one_slot_db: str
) -> AsyncIterator[Path]:
    """The whole fleet: one worker that takes one call at a time, with its health endpoint served as
    the image and the Kubernetes files serve it (its start-up runs beside the waiting callers' task)."""
    log = phone_stack.run_dir / "one-slot-worker.log"
    try:
        async with off_the_loop(receptionist_worker(
            phone_stack, agent_name=AGENT_NAME, openai_base_url=one_slot_sim.base_url, database_url=one_slot_db,
            log=log, extra_env={"WORKER_MAX_CALLS": "1", "HEALTH_PORT": str(free_port())},
        )):  # fmt: skip
            yield log
    except WorkerFailed as e:
        pytest.fail(str(e))


async def test_a_caller_ringing_while_the_fleet_is_full_is_answered_once_a_slot_frees(
    phone_stack: PhoneStack, one_slot_sim: RealtimeSimulator, one_slot_db: str, one_slot_worker: Path
) -> None:
    first, second = "+15035550161", "+15035550162"
    for _ in (first, second):
        one_slot_sim.add_script(DEFAULT_KEY, [{"say": GREETING}])
    async with place_call(phone_stack, to=PLUMBING, from_=first, audio_script=[]) as held:
        await held.wait_answered(within=60)
        await held.wait_for_voice()
        async with place_call(phone_stack, to=PLUMBING, from_=second, audio_script=[]) as waiting:
            # the second caller is in LiveKit, ringing, and LiveKit found no worker with a free slot
            room, _ = await find_sip_participant(phone_stack, waiting.sip_call_id, within=30)
            async with phone_stack.api() as lk:
                dispatches = await lk.agent_dispatch.list_dispatch(room_name=room)
            assert dispatches and not any(d.state.jobs for d in dispatches), dispatches
            assert not waiting.answered and waiting.ended_by is None
            await held.hangup()  # the slot frees
            await waiting.wait_answered(within=25)  # within the trunk's 30 s of ringing
            await waiting.wait_for_voice()
            await waiting.hangup()
    row = await call_row(one_slot_db, second)
    assert row["answered_at"] is not None and row["end_reason"] == "caller_hangup", row
    assert row["business"] == "Rose City Plumbing", row  # the dispatch rule's business came along
    # one agent answered it, not two: one call row for the second caller
    assert len(await rows(one_slot_db, "SELECT id FROM calls WHERE caller_number = %s", second)) == 1
    # and the worker's log, LiveKit's lines with their room and participant fields included, names
    # neither caller whole (README: numbers in logs are masked to their last 4 digits)
    logged = await asyncio.to_thread(one_slot_worker.read_text)
    assert "5035550161" not in logged and "5035550162" not in logged
    assert "call-_+*******0162_" in logged  # the room is still there to grep for, masked
