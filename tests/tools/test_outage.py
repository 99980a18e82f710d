"""Postgres goes away in the middle of a call (the fault from the issue): the caller keeps hearing
answers, booking tools refuse with the 'booking system is not answering' sentence instead of crashing
or going silent, the message the caller leaves is kept, and once Postgres is back every transcript turn
and tool call of the call lands exactly once, in order. The whole call runs through the real
AgentSession and OpenAI plugin against the Realtime simulator."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from agent.call import CallContext
from agent.live import LiveState
from agent.store.appointments import warm_up
from agent.store.db import open_pool
from agent.store.journal.writer import CallJournal
from agent.tools.audit import _FALLBACK
from agent.tools.booking import UNAVAILABLE as _UNAVAILABLE
from simulator.postgres import PgServer
from simulator.runner import format_report, simulate
from simulator.scenario import Scenario
from simulator.session import ScenarioStores
from tests.tools.conftest import CALLER, describe_failures

OUTAGE_S = 30.0  # as long as the issue asks for
STOP_SETTLES_S = (
    4.0  # the caller pauses while Postgres is being stopped, so the next turns meet it down
)

log = logging.getLogger(__name__)


def outage_scenario() -> Scenario:
    """Hours and price (from the brain) work throughout; booking fails while Postgres is down and the
    caller leaves a message instead; after a long pause, booking works again."""
    return Scenario.model_validate(
        {
            "name": "postgres-outage-mid-call",
            "description": "Postgres is stopped after the first answer and comes back ~30 s later.",
            "brain": "brains/plumbing.yaml",
            # the caller's long pauses are part of the test, not silence to be chased up
            "brain_overrides": {"calls": {"silence_prompt_seconds": 120, "silence_hangup_seconds": 240}},
            "clock": "2026-11-24T10:00:00-08:00",
            "caller_number": CALLER,
            "greeting": [{"say": "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"}],
            "turns": [
                {"caller": "What are your hours on Saturday?",
                 "model": [{"tool": "get_opening_hours", "args": {"day": "saturday"}},
                           {"say": "On Saturday we're open {output[hours]}."}]},
                {"silence_s": STOP_SETTLES_S},
                {"caller": "And how much is a drain cleaning?",
                 "model": [{"tool": "get_service_details", "args": {"service": "drain cleaning"}},
                           {"say": "A drain cleaning is {output[price]}."}]},
                {"caller": "Can someone come out tomorrow morning?",
                 "model": [{"say": "Let me check tomorrow.", "tool": "check_availability",
                            "args": {"service": "drain cleaning", "day": "tomorrow"}},
                           {"say": "I'm sorry, our booking system isn't answering right now. I can take a "
                                   "message so the office calls you back to confirm a time."}]},
                {"caller": "Yes please. I'm Jordan Reyes, I'd like a drain cleaning tomorrow morning.",
                 "model": [{"tool": "take_message",
                            "args": {"caller_name": "Jordan Reyes",
                                     "message": "Wants a drain cleaning tomorrow morning; booking system was down.",
                                     "callback_requested": True, "urgency": "soon"}},
                           {"say": "I've left that message; the office will call you back at this number."}]},
                # the caller stays on the line while the outage runs its course
                {"silence_s": OUTAGE_S},
                {"caller": "Could you try the booking system once more?",
                 "model": [{"tool": "check_availability",
                            "args": {"service": "drain cleaning", "day": "tomorrow"}},
                           {"say": "It's working again: tomorrow I have {output[slots][0][say]} free."}]},
                {"caller": "That's fine, the office will call me. Bye!",
                 "model": [{"tool": "end_call"},
                           {"say": "Thanks for calling Rose City Plumbing. Goodbye!"}]},
            ],
            "expect": {
                "said": ["8 AM to 12 PM", "$120 to $150", "booking system isn't answering", "It's working again"],
                "tools": ["get_opening_hours", "get_service_details", "check_availability", "take_message",
                          "check_availability", "end_call"],
                "tool_errors": ["check_availability"],
                "outcome": "message",
                "ended_by": "agent",
                "db": {
                    "calls": [{"outcome": "message", "caller_number": CALLER, "end_reason": "agent_goodbye"}],
                    "messages": [{"caller_name": "Jordan Reyes", "phone": CALLER, "callback_requested": True}],
                },
            },
        }
    )  # fmt: skip


@dataclass
class StoresThroughAnOutage(ScenarioStores):
    """The scenario's stores, graded only once Postgres is back (as someone reading the records would)."""

    recovered: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[CallContext] = field(default_factory=list)

    async def snapshot(self, call: CallContext) -> dict[str, Any]:
        self.calls.append(call)
        await asyncio.wait_for(self.recovered.wait(), OUTAGE_S + 60)
        return await super().snapshot(call)


async def _turns_landed(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        dsn, autocommit=True, connect_timeout=2
    ) as conn:
        cur = await conn.execute("SELECT count(*) FROM transcript_turns")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _outage(
    pg: PgServer, dsn: str, stores: StoresThroughAnOutage, timeline: dict[str, float]
) -> None:
    """Stop Postgres once the first question has been answered (and recorded), start it OUTAGE_S later."""
    try:
        # greeting, the caller's question, the answer; watched in Postgres, where there is no event
        while await _turns_landed(dsn) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.to_thread(pg.stop)
        timeline["down"] = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(pg.start)
        timeline["up"] = time.monotonic()
    finally:
        stores.recovered.set()


async def test_call_rides_out_a_postgres_outage(
    pg_server: PgServer, db_url: str, redis_url: str, realtime_sim, tool_failures
) -> None:
    pool = await open_pool(db_url, min_size=1, max_size=4, prepare=warm_up)  # as a worker opens it
    journal = CallJournal(db_url, Path(tempfile.mkdtemp(prefix="outage-spill-")))
    await journal.start()
    live = LiveState(redis_url)
    stores = StoresThroughAnOutage(pool=pool, journal=journal, live=live)
    timeline: dict[str, float] = {}
    outage = asyncio.create_task(_outage(pg_server, db_url, stores, timeline))
    try:
        started = time.monotonic()
        report = await simulate(outage_scenario(), sim=realtime_sim, stores=stores)
        timeline["ended"] = time.monotonic()
        await outage
    finally:
        if not outage.done():
            outage.cancel()
        await journal.aclose(timeout=10)
        await live.aclose()
        await pool.close()
    log.info("outage timeline (s from call start): %s",
             {k: round(v - started, 1) for k, v in timeline.items()})  # fmt: skip

    assert report.passed, format_report(report)
    assert not tool_failures, describe_failures(tool_failures)
    assert "down" in timeline and "up" in timeline, "Postgres was never stopped"
    # the call really spanned the outage: the last turns came after Postgres was back
    assert timeline["ended"] > timeline["up"], format_report(report)

    # the caller always heard an answer: every caller turn is followed by an agent turn
    roles = [t["role"] for t in report.transcript]
    assert roles[0] == "agent" and all(
        "agent" in roles[i + 1 :] for i, r in enumerate(roles) if r == "caller"
    ), roles
    # the booking tool refused with the outage sentence while Postgres was down, never the catch-all
    errors = [c["error"] for c in report.tool_calls if c["error"]]
    assert errors == [_UNAVAILABLE], errors
    assert all(c["error"] != _FALLBACK for c in report.tool_calls)
    # ... and worked again once it was back
    last_check = [c for c in report.tool_calls if c["name"] == "check_availability"][-1]
    assert last_check["error"] is None and '"slots": [{' in last_check["result"]

    # everything the call recorded landed exactly once, in order, after the outage
    db = report.db
    assert db is not None
    assert [(t["seq"], t["role"], t["text"]) for t in db["transcript_turns"]] == [
        (i, t["role"], t["text"]) for i, t in enumerate(report.transcript, start=1)
    ]
    assert [(t["seq"], t["name"], t["error"], t["result"]) for t in db["tool_calls"]] == [
        (i, c["name"], c["error"], c["result"]) for i, c in enumerate(report.tool_calls, start=1)
    ]
    assert len(db["calls"]) == 1 and db["calls"][0]["ended_at"] is not None
    assert len(db["messages"]) == 1
    stats = journal.stats()
    assert stats["outages"] >= 1 and stats["rejected"] == 0, stats
