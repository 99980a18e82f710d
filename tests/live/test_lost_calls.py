"""Calls whose process died are ended by a surviving replica, once: real Redis leases, real Postgres rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from agent.brain import BrainDirectory, load_brain
from agent.brain.schema.notify import Notify
from agent.live import LiveState
from agent.live.lost_calls import LostCallSweeper, OwnerTold
from agent.notify.at_once import LostCallNotices
from agent.store.journal.events import CallEnded, CallStarted, MessageRecord
from agent.store.journal.writer import CallJournal
from tests.notify.test_at_once import OWNER
from tests.tools.conftest import PLUMBING

BIZ = "rose-city-plumbing"
NO_LIVEKIT = "ws://127.0.0.1:1"  # room deletion fails fast; the row is finalised all the same
SECRET = "a-secret-long-enough-for-hmac-sha256-signing"


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[LiveState, LiveState, LiveState]]:
    """The replica hosting the calls, and two survivors."""
    states = (LiveState(redis_url), LiveState(redis_url), LiveState(redis_url))
    yield states
    for state in states:
        await state.aclose()


def sweeper(live: LiveState, db_url: str | None, owner_told: OwnerTold | None = None) -> LostCallSweeper:
    return LostCallSweeper(
        live, database_url=db_url, livekit_url=NO_LIVEKIT, api_key="key", api_secret=SECRET,
        retry_after_s=0,  # a call not ended yet is offered again at the next sweep
        owner_told=owner_told,
    )  # fmt: skip


async def journal(db_url: str, spill: Path, *events: CallStarted | CallEnded | MessageRecord) -> None:
    writer = CallJournal(db_url, spill)
    await writer.start()
    for event in events:
        writer.record(event)
    assert await writer.flush(30)
    await writer.aclose()


async def until_expired(live: LiveState, call_id: uuid.UUID) -> None:
    """The host stopped heartbeating: wait until the registry no longer lists the call."""
    for _ in range(600):
        if str(call_id) not in {c.call_id for c in await live.active_calls()}:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_id} is still listed a minute after its last heartbeat")


def row(db_url: str, call_id: uuid.UUID) -> tuple[object, ...] | None:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT outcome, end_reason, ended_at IS NOT NULL FROM calls WHERE id = %s", (call_id,)
        ).fetchone()


async def test_two_survivors_end_a_lost_call_once(replicas, db_url: str, tmp_path: Path) -> None:
    host, survivor_a, survivor_b = replicas
    lost, alive = uuid.uuid4(), uuid.uuid4()
    started = (CallStarted(call_id=lost, business=BIZ), CallStarted(call_id=alive, business=BIZ))
    await journal(db_url, tmp_path, *started)
    await host.register_call(lost, BIZ, None, "active", ttl_s=1, room="room-lost", worker="AW_dead")
    await host.register_call(
        alive, BIZ, None, "active", ttl_s=30, room="room-alive", worker="AW_ok"
    )

    await until_expired(survivor_a, lost)
    swept = await asyncio.gather(
        sweeper(survivor_a, db_url).sweep(), sweeper(survivor_b, db_url).sweep()
    )

    ended = [(c.call_id, c.room, c.worker) for s in swept for c in s]
    assert ended == [(str(lost), "room-lost", "AW_dead")]
    assert row(db_url, lost) == ("error", "worker_lost", True)
    assert row(db_url, alive) == (None, None, False)  # still heartbeating: nobody touches it
    assert await sweeper(survivor_a, db_url).sweep() == []


async def test_a_call_that_ended_itself_keeps_its_ending(
    replicas, db_url: str, tmp_path: Path
) -> None:  # fmt: skip
    """Its process wrote the ending but could not unregister (Redis blinked): the lease expires later."""
    host, survivor, _ = replicas
    call = uuid.uuid4()
    await host.register_call(call, BIZ, None, "active", ttl_s=1, room="room-done")
    await journal(
        db_url, tmp_path, CallStarted(call_id=call, business=BIZ),
        CallEnded(call_id=call, outcome="booked", end_reason="caller hung up"),
    )  # fmt: skip
    await until_expired(survivor, call)
    assert await sweeper(survivor, db_url).sweep() == []
    assert row(db_url, call) == ("booked", "caller hung up", True)


async def test_a_lost_call_whose_row_is_still_spilled_is_ended_once_it_lands(
    replicas, db_url: str, tmp_path: Path
) -> None:  # fmt: skip
    host, survivor_a, survivor_b = replicas
    call = uuid.uuid4()
    await host.register_call(call, BIZ, None, "active", ttl_s=1, room="room-spilled")
    await until_expired(survivor_a, call)
    assert await sweeper(survivor_a, db_url).sweep() == []  # no row yet: offered again later

    # the spill file is replayed: the row lands
    await journal(db_url, tmp_path, CallStarted(call_id=call, business=BIZ))
    [ended] = await sweeper(survivor_b, db_url).sweep()
    assert ended.call_id == str(call)
    assert row(db_url, call) == ("error", "worker_lost", True)


async def test_postgres_down_keeps_the_claim_for_a_later_sweep(
    replicas, db_url: str, pg_server, tmp_path: Path
) -> None:  # fmt: skip
    host, survivor, _ = replicas
    call = uuid.uuid4()
    await journal(db_url, tmp_path, CallStarted(call_id=call, business=BIZ))
    await host.register_call(call, BIZ, None, "active", ttl_s=1, room="room-outage")
    await until_expired(survivor, call)
    await asyncio.to_thread(pg_server.stop)
    try:
        assert await sweeper(survivor, db_url).sweep() == []
    finally:
        await asyncio.to_thread(pg_server.start)
    [ended] = await sweeper(survivor, db_url).sweep()
    assert ended.call_id == str(call)
    assert row(db_url, call) == ("error", "worker_lost", True)


async def test_a_sweeper_that_dies_after_claiming_leaves_the_call_to_another(
    replicas, db_url: str, tmp_path: Path
) -> None:  # fmt: skip
    host, dying, survivor = replicas
    call = uuid.uuid4()
    await journal(db_url, tmp_path, CallStarted(call_id=call, business=BIZ))
    await host.register_call(call, BIZ, None, "active", ttl_s=1, room="room-orphan")
    await until_expired(survivor, call)
    [claimed] = await dying.claim_lost_calls(retry_after_s=1)  # ...and nothing more from it
    assert claimed.call_id == str(call)
    assert await survivor.claim_lost_calls() == []  # claimed: not offered twice at once

    for _ in range(600):  # until the claim lapses
        if ended := await sweeper(survivor, db_url).sweep():
            break
        await asyncio.sleep(0.1)
    assert [c.call_id for c in ended] == [str(call)]
    assert row(db_url, call) == ("error", "worker_lost", True)


def owned_brains(tmp_path: Path) -> BrainDirectory:
    """The plumber's brain, whose owner is told of urgent messages at once by email and text."""
    brain = load_brain(PLUMBING).model_copy(update={"notify": Notify(**OWNER)})
    return BrainDirectory(by_path={tmp_path / "plumbing.yaml": brain})


def outbox(db_url: str, call_id: uuid.UUID) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT kind, channel, destination, payload->>'summary', payload->'call'->>'end_reason' FROM outbox"
            " WHERE call_id = %s ORDER BY channel", (call_id,),
        ).fetchall()  # fmt: skip


async def test_an_urgent_message_left_before_the_worker_died_reaches_the_owner_once(
    replicas, db_url: str, tmp_path: Path
) -> None:  # fmt: skip
    """The caller left an emergency message, then the worker died before the call's own ending (which
    is what tells the owner): the survivors that end the call queue it, once for both of them."""
    host, survivor_a, survivor_b = replicas
    urgent, ordinary = uuid.uuid4(), uuid.uuid4()
    name = load_brain(PLUMBING).business.name
    await journal(
        db_url, tmp_path,
        CallStarted(call_id=urgent, business=name, caller_number="+15035550123"),
        MessageRecord(call_id=urgent, business=name, body="Water is pouring through the ceiling",
                      caller_name="Ana", urgency="emergency"),
        CallStarted(call_id=ordinary, business=name, caller_number="+15035550124"),
        MessageRecord(call_id=ordinary, business=name, body="Call me about a quote", caller_name="Bo",
                      urgency="normal"),
    )  # fmt: skip
    for call in (urgent, ordinary):
        await host.register_call(call, name, None, "active", ttl_s=1, room=f"room-{call}")
        await until_expired(survivor_a, call)

    brains = owned_brains(tmp_path)
    swept = await asyncio.gather(*(
        sweeper(live, db_url, LostCallNotices(brains)).sweep() for live in (survivor_a, survivor_b)
    ))

    assert sorted(c.call_id for s in swept for c in s) == sorted([str(urgent), str(ordinary)])
    summary = "Emergency message from Ana (+15035550123): Water is pouring through the ceiling"
    assert outbox(db_url, urgent) == [
        ("urgent_message", "email", OWNER["email"][0], summary, "worker_lost"),
        ("urgent_message", "sms", OWNER["sms"][0], summary, "worker_lost"),
    ]
    assert outbox(db_url, ordinary) == []
    assert row(db_url, urgent) == ("error", "worker_lost", True)


async def test_a_notice_that_cannot_be_made_does_not_keep_the_call_from_ending(
    replicas, db_url: str, tmp_path: Path
) -> None:  # fmt: skip
    """What the ending tells the owner fails (a bug, a row it cannot read): the call is ended all the
    same, once, rather than offered again every minute."""
    host, survivor, _ = replicas
    call = uuid.uuid4()
    await journal(db_url, tmp_path, CallStarted(call_id=call, business=BIZ))
    await host.register_call(call, BIZ, None, "active", ttl_s=1, room="room-notice")
    await until_expired(survivor, call)

    async def broken(conn) -> list:
        await conn.execute("SELECT no_such_column FROM calls")
        return []

    told = sweeper(survivor, db_url, lambda *_: broken)
    [ended] = await told.sweep()
    assert ended.call_id == str(call)
    assert row(db_url, call) == ("error", "worker_lost", True)
    assert await told.sweep() == []
