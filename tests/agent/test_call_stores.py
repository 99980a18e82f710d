"""A worker's stores per call: the cross-replica registry, the per-caller rate limit, and a call
record that lands whatever happens to Redis, with its prose summary when that is on."""

from __future__ import annotations

import time
import uuid

import psycopg

from agent.brain import load_brain
from agent.call import CallContext
from agent.call_end import finish_call
from agent.live import LiveState
from agent.settings import load_settings
from agent.store.journal.writer import CallJournal
from agent.store.runtime import CallStores
from simulator.server import RealtimeSimulator

BRAIN = load_brain("brains/plumbing.yaml")


def _call(caller: str) -> CallContext:
    return CallContext(brain=BRAIN, call_id=uuid.uuid4(), caller_number=caller)


async def test_rate_limit_admits_up_to_the_limit_then_refuses(redis_url: str) -> None:
    live = LiveState(redis_url)
    stores = CallStores(load_settings(openai_api_key="x", caller_rate_limit=2), live=live)
    calls = [_call("+15035550111") for _ in range(3)]
    assert [await stores.admit(c) for c in calls] == [True, True, False]
    # another number is unaffected, and admitted calls are visible to every replica
    other = _call("+15035550112")
    assert await stores.admit(other)
    active = await live.active_calls(BRAIN.business.name)
    assert {a.call_id for a in active} >= {str(calls[0].call_id), str(calls[1].call_id)}
    for c in calls[:2]:
        await stores.release(c)
    remaining = {a.call_id for a in await live.active_calls(BRAIN.business.name)}
    assert str(calls[0].call_id) not in remaining
    await stores.release(other)  # an admitted call keeps its lease alive until it is released
    await live.aclose()


async def test_calls_are_admitted_when_redis_is_down(redis_server, redis_url: str) -> None:
    live = LiveState(redis_url)
    stores = CallStores(load_settings(openai_api_key="x", caller_rate_limit=1), live=live)
    redis_server.stop()
    try:
        # the limit can't be checked: the caller is answered anyway (a warning is logged)
        answered = [_call("+15035550111"), _call("+15035550111")]
        assert await stores.admit(answered[0])
        assert await stores.admit(answered[1])
    finally:
        redis_server.start()
        for call in answered:
            await stores.release(call)
        await live.aclose()


async def test_zero_means_unlimited(redis_url: str) -> None:
    live = LiveState(redis_url)
    stores = CallStores(load_settings(openai_api_key="x", caller_rate_limit=0), live=live)
    calls = [_call("+15035550111") for _ in range(5)]
    assert all([await stores.admit(c) for c in calls])
    for c in calls:
        await stores.release(c)
    await live.aclose()


async def test_a_finished_calls_summary_is_added_before_its_record_is_closed(db_url: str, tmp_path) -> None:
    # the worker's path: LiveKit's shutdown callback finishes the call, then releases its stores
    async with RealtimeSimulator() as sim:
        settings = load_settings(
            openai_api_key="x", openai_base_url=sim.base_url, call_summary_model="gpt-4.1-mini"
        )
        journal = CallJournal(db_url, tmp_path)
        await journal.start()
        call = CallContext(brain=BRAIN, call_id=uuid.uuid4(), caller_number="+15035550111", journal=journal)
        call.start()
        now = time.time()
        for role, text in (("agent", "Rose City Plumbing, how can I help?"), ("caller", "Are you open on Saturday?")):
            call.record_turn(role=role, text=text, started_at=now, ended_at=now + 1, interrupted=False)
        finish_call(call, reason="caller_hung_up")
        await CallStores(settings).release(call)

    assert [key for key, _, _ in sim.chat_completions] == ["default"]  # OPENAI_BASE_URL's endpoint
    with psycopg.connect(db_url) as conn:
        (stored,) = conn.execute("SELECT summary FROM calls WHERE id = %s", (call.call_id,)).fetchone()
    assert stored["outcome"] == "abandoned"
    assert 'The caller first said: "Are you open on Saturday?"' in stored["prose"]["text"]
