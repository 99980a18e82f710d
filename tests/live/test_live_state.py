"""LiveState against a real redis-server, up and stopped."""

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent.live import LiveState

BIZ = "bright-smile-dental"
SLOT = datetime(2030, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
async def live(redis_url):
    state = LiveState(redis_url)
    yield state
    await state.aclose()


@pytest.fixture
async def other_replica(redis_url):
    state = LiveState(redis_url)
    yield state
    await state.aclose()


async def test_calls_are_visible_across_replicas_until_they_end(live, other_replica):
    a, b = uuid.uuid4(), uuid.uuid4()
    await live.register_call(a, BIZ, "+14155550123", "greeting")
    await other_replica.register_call(b, "other-biz", None, "greeting")
    await live.update_state(a, "booking")

    everywhere = await other_replica.active_calls()
    assert [(c.call_id, c.business, c.caller, c.state) for c in everywhere] == [
        (str(a), BIZ, "+14155550123", "booking"),
        (str(b), "other-biz", None, "greeting"),
    ]
    assert [c.call_id for c in await live.active_calls(BIZ)] == [str(a)]

    await live.end_call(a)
    assert [c.call_id for c in await other_replica.active_calls()] == [str(b)]
    assert await other_replica.active_calls(BIZ) == []


async def test_a_call_without_heartbeat_expires(live, other_replica):
    kept, lost = uuid.uuid4(), uuid.uuid4()
    await live.register_call(kept, BIZ, None, "talking", ttl_s=2)
    await other_replica.register_call(lost, BIZ, None, "talking", ttl_s=1)  # its replica dies
    listed = {str(kept), str(lost)}
    for _ in range(100):  # until the silent call has expired, heartbeating the live one meanwhile
        await live.heartbeat(kept)
        listed = {c.call_id for c in await live.active_calls(BIZ)}
        if str(lost) not in listed:
            break
        await asyncio.sleep(0.1)
    assert listed == {str(kept)}


async def test_rate_limit_per_caller(live):
    caller = "+14155550123"
    assert [await live.allow_call(caller, limit=3, window_s=60) for _ in range(4)] == [
        True, True, True, False,
    ]  # fmt: skip
    assert await live.allow_call("+14155550999", limit=3, window_s=60)
    assert await live.allow_call(
        None, limit=0, window_s=60
    )  # anonymous callers are not limited here


async def test_rate_limit_window_slides(live):
    caller = "+14155550123"
    assert await live.allow_call(caller, limit=1, window_s=1)
    assert not await live.allow_call(caller, limit=1, window_s=1)
    # a refused call is not counted, so asking again admits the caller once the first call leaves
    # the window (bounded: the window is 1 s)
    for _ in range(50):
        if allowed := await live.allow_call(caller, limit=1, window_s=1):
            break
        await asyncio.sleep(0.1)
    assert allowed


async def test_slot_holds(live, other_replica):
    a, b = uuid.uuid4(), uuid.uuid4()
    later = SLOT + timedelta(minutes=30)
    assert await live.hold_slot(BIZ, SLOT, a)
    assert not await other_replica.hold_slot(BIZ, SLOT, b)
    assert await live.hold_slot(BIZ, SLOT, a)  # the holder may re-hold (refresh)
    assert await other_replica.hold_slot(BIZ, later, b)
    assert await live.holds(BIZ) == {SLOT, later}
    assert await live.holds(BIZ, exclude_call=a) == {later}
    assert await live.holds("other-biz") == set()

    await other_replica.release_slot(BIZ, SLOT, b)  # not b's hold: no effect
    assert await live.holds(BIZ) == {SLOT, later}
    await live.release_slot(BIZ, SLOT, a)
    assert await live.holds(BIZ) == {later}
    assert await other_replica.hold_slot(BIZ, SLOT, b)


async def test_slot_hold_expires(live, other_replica):
    assert await live.hold_slot(BIZ, SLOT, "call-a", ttl_s=1)
    assert await live.holds(BIZ) == {SLOT}
    for _ in range(50):  # until the hold's 1 s has run out
        if not (held := await live.holds(BIZ)):
            break
        await asyncio.sleep(0.1)
    assert held == set()
    assert await other_replica.hold_slot(BIZ, SLOT, "call-b")


async def test_redis_down_degrades_with_one_warning(live, redis_server, caplog):
    call_id = uuid.uuid4()
    await live.register_call(call_id, BIZ, "+14155550123", "greeting")
    await asyncio.to_thread(redis_server.stop)
    caplog.set_level(logging.WARNING, logger="agent.live")

    for _ in range(3):
        await live.heartbeat(call_id)
        await live.update_state(call_id, "booking")
        assert await live.allow_call("+14155550123", limit=0, window_s=60) is True
        assert await live.hold_slot(BIZ, SLOT, call_id) is True
        assert await live.holds(BIZ) == set()
        assert await live.active_calls() == []
        await live.release_slot(BIZ, SLOT, call_id)
    await live.register_call(uuid.uuid4(), BIZ, None, "greeting")
    assert live.degraded
    down = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 1

    # Redis comes back empty (no persistence); the next heartbeat lists our call again
    await asyncio.to_thread(redis_server.start)
    await live.heartbeat(call_id)
    assert not live.degraded
    assert [(c.call_id, c.state) for c in await live.active_calls(BIZ)][0] == (
        str(call_id),
        "booking",
    )
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    await live.end_call(call_id)


async def test_unreachable_from_the_start(caplog):
    state = LiveState("redis://127.0.0.1:1/0")
    try:
        assert await state.allow_call("+14155550123", limit=1, window_s=60)
        assert await state.hold_slot(BIZ, SLOT, "c")
        assert await state.active_calls(BIZ) == []
    finally:
        await state.aclose()


async def test_a_frozen_redis_times_out_into_the_degraded_answer(live, redis_server):
    call_id = uuid.uuid4()
    await live.register_call(call_id, BIZ, None, "greeting")
    redis_server.pause()
    try:
        # each answer comes back after the short socket timeout, not after a hang
        assert await asyncio.wait_for(live.hold_slot(BIZ, SLOT, call_id), 2) is True
        assert await asyncio.wait_for(live.allow_call("+14155550123", 0, 60), 2) is True
        assert await asyncio.wait_for(live.active_calls(BIZ), 2) == []
        assert live.degraded
    finally:
        redis_server.resume()
    for _ in range(20):  # the timed-out connections are replaced
        if await live.active_calls(BIZ):
            break
        await asyncio.sleep(0.05)
    assert [c.call_id for c in await live.active_calls(BIZ)] == [str(call_id)]
