"""Fifty callers ask for the same slot at the same moment, each on a call of its own: exactly one gets
it, and every other caller hears a refusal that moves the conversation on (another caller is booking
it, or it was just taken, with the times still free). With Redis the slot hold refuses most of them
first; without it Postgres's exclusion constraint is the only arbiter, and must be enough."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from livekit.agents import ToolError
from psycopg_pool import AsyncConnectionPool

from agent.brain import Brain
from agent.call import CallContext
from agent.live import LiveState
from agent.store.db import open_pool
from agent.tools import book_appointment, check_availability, hold_slot
from tests.tools.conftest import TZ, describe_failures, pinned_call, run_tool

CALLERS = 50
SLOT = datetime(2026, 11, 25, 9, 0, tzinfo=TZ)  # Wednesday 9 AM, free, inside opening hours
BUSY_WITH_IT = "Another caller is booking that exact time right now"
JUST_TAKEN = re.compile(
    r"That time was just taken by another caller\. Still free that day: (.+)\.$"
)


class Replica:
    """One worker process: its own pool (and Redis client), shared by the calls it hosts."""

    def __init__(self, pool: AsyncConnectionPool, live: LiveState | None) -> None:
        self.pool = pool
        self.live = live


@pytest.fixture
async def replicas(
    request: pytest.FixtureRequest, db_url: str, redis_url: str
) -> AsyncIterator[list[Replica]]:
    count, pool_size, with_live = request.param
    made: list[Replica] = []
    for _ in range(count):
        pool = await open_pool(db_url, min_size=pool_size, max_size=pool_size)
        made.append(Replica(pool, LiveState(redis_url) if with_live else None))
    try:
        yield made
    finally:
        for r in made:
            await r.pool.close()
            if r.live is not None:
                await r.live.aclose()


SHAPES = [
    # (replicas, pool size each, Redis slot holds)
    pytest.param((5, 4, True), id="5-workers-pool4-redis-holds"),
    pytest.param((5, 4, False), id="5-workers-pool4-postgres-only"),
    pytest.param((1, CALLERS, True), id="one-connection-per-call-redis-holds"),
    pytest.param((1, CALLERS, False), id="one-connection-per-call-postgres-only"),
]


async def _book_for(call: CallContext, n: int) -> str | ToolError:
    try:
        return await run_tool(
            book_appointment, call, customer_name=f"Caller {n}", phone=f"+1503555{n:04d}",
            service="Drain cleaning", start=SLOT.strftime("%Y-%m-%dT%H:%M"),
        )  # fmt: skip
    except ToolError as e:
        return e


@pytest.mark.parametrize("replicas", SHAPES, indirect=True)
async def test_fifty_callers_one_slot_one_booking(
    replicas: list[Replica], plumbing: Brain, tool_failures
) -> None:
    calls = [
        pinned_call(plumbing, caller_number=f"+1503555{n:04d}", pool=r.pool, live=r.live)
        for n in range(CALLERS)
        for r in [replicas[n % len(replicas)]]
    ]
    assert len({c.call_id for c in calls}) == CALLERS
    results = await asyncio.gather(*(_book_for(c, n) for n, c in enumerate(calls)))

    assert not tool_failures, describe_failures(tool_failures)
    booked = [r for r in results if isinstance(r, str)]
    refused = [r.message for r in results if isinstance(r, ToolError)]
    assert len(booked) == 1 and len(refused) == CALLERS - 1, refused[:3]

    for message in refused:
        taken = JUST_TAKEN.match(message)
        assert message.startswith(BUSY_WITH_IT) or taken, message
        if taken:
            # the times offered instead are real and exclude the one just taken
            offered = taken.group(1).split(", ")
            assert "9 AM" not in offered and offered != ["none left that day"], offered
    if replicas[0].live is None:
        # no holds: every refusal comes from Postgres, with other times to offer
        assert all(JUST_TAKEN.match(m) for m in refused)

    pool = replicas[0].pool
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT lower(during), status, call_id FROM appointments WHERE business = %s",
            (plumbing.business.name,),
        )
        rows = await cur.fetchall()
    winner = next(c for c, r in zip(calls, results, strict=True) if isinstance(r, str))
    assert rows == [(SLOT, "booked", winner.call_id)]
    assert [c.outcome for c in calls].count("booked") == 1
    if replicas[0].live is not None:
        # nobody is left holding the slot once the dust settles
        assert await replicas[0].live.holds(plumbing.business.name) == set()


async def test_a_held_slot_is_offered_to_nobody_else(
    plumbing: Brain, tools_pool: AsyncConnectionPool, tools_live: LiveState, tool_failures
) -> None:
    """While one caller gives their name and number, the time they picked is theirs alone."""
    holder, other = (pinned_call(plumbing, pool=tools_pool, live=tools_live) for _ in range(2))
    start = SLOT.strftime("%Y-%m-%dT%H:%M")
    await run_tool(hold_slot, holder, service="Drain cleaning", start=start)

    def offered(result: str) -> list[str]:
        return [s["start"] for s in json.loads(result)["slots"]]

    ask = {"service": "Drain cleaning", "day": SLOT.date().isoformat()}
    assert start in offered(await run_tool(check_availability, holder, **ask))
    assert start not in offered(await run_tool(check_availability, other, **ask))
    with pytest.raises(ToolError, match=BUSY_WITH_IT):
        await run_tool(
            book_appointment, other, customer_name="Sam Other", phone="+15035550999",
            service="Drain cleaning", start=start,
        )  # fmt: skip
    booked = json.loads(
        await run_tool(
            book_appointment,
            holder,
            customer_name="Pat Caller",
            phone="+15035550123",
            service="Drain cleaning",
            start=start,
        )  # fmt: skip
    )
    assert booked["start"] == start
    # booked and released: the slot is gone from both callers' lists, and nobody holds it
    assert start not in offered(await run_tool(check_availability, other, **ask))
    assert await tools_live.holds(plumbing.business.name) == set()
    assert not tool_failures, describe_failures(tool_failures)
