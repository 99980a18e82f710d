"""A worker's stores per call: the cross-replica registry, the per-caller rate limit, and a call
record that lands whatever happens to Redis."""

from __future__ import annotations

import uuid

from agent.brain import load_brain
from agent.call import CallContext
from agent.live import LiveState
from agent.settings import load_settings
from agent.store.runtime import CallStores

BRAIN = load_brain("brains/plumbing.yaml")


def _call(caller: str) -> CallContext:
    return CallContext(brain=BRAIN, call_id=uuid.uuid4(), caller_number=caller)


async def test_rate_limit_admits_up_to_the_limit_then_refuses(redis_url: str) -> None:
    live = LiveState(redis_url)
    stores = CallStores(load_settings(openai_api_key="x", caller_rate_limit=2), live=live)
    calls = [_call("+15035550111") for _ in range(3)]
    assert [await stores.admit(c) for c in calls] == [True, True, False]
    # another number is unaffected, and admitted calls are visible to every replica
    assert await stores.admit(_call("+15035550112"))
    active = await live.active_calls(BRAIN.business.name)
    assert {a.call_id for a in active} >= {str(calls[0].call_id), str(calls[1].call_id)}
    for c in calls[:2]:
        await stores.release(c)
    remaining = {a.call_id for a in await live.active_calls(BRAIN.business.name)}
    assert str(calls[0].call_id) not in remaining
    await live.aclose()


async def test_calls_are_admitted_when_redis_is_down(redis_server, redis_url: str) -> None:
    live = LiveState(redis_url)
    stores = CallStores(load_settings(openai_api_key="x", caller_rate_limit=1), live=live)
    redis_server.stop()
    try:
        # the limit can't be checked: the caller is answered anyway (a warning is logged)
        assert await stores.admit(_call("+15035550111"))
        assert await stores.admit(_call("+15035550111"))
    finally:
        redis_server.start()
        await live.aclose()


async def test_zero_means_unlimited(redis_url: str) -> None:
    live = LiveState(redis_url)
    stores = CallStores(load_settings(openai_api_key="x", caller_rate_limit=0), live=live)
    assert all([await stores.admit(_call("+15035550111")) for _ in range(5)])
    await live.aclose()
