"""Operator metrics on a real phone call: a `start`-mode worker with METRICS_PORT set takes a SIP call
(sipp -> livekit-sip -> LiveKit, the Realtime simulator as the model), a real Prometheus scrapes it,
and the series come back through Prometheus's HTTP API: what an operator's dashboards and alerts see."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from agent.settings import default_max_calls
from simulator.server import RealtimeSimulator
from tests.fixtures.postgres import TEMPLATE_DB, PgServer
from tests.fixtures.prometheus import Prometheus, running_prometheus
from tests.fixtures.stack import ROOT, PhoneStack, free_port
from tests.phone.harness import place_call
from tests.phone.test_receptionist_call import (
    BOOKING_STEPS,
    GREETING,
    PLUMBING,
    call_row,
    first_free_slot,
    rows,
    script,
)
from tests.phone.worker import WorkerFailed, off_the_loop, receptionist_worker

AGENT_NAME = "receptionist-metrics"
CALLER = "+15035550174"
BUSINESS = 'business="Rose City Plumbing"'


@pytest.fixture(scope="module")
async def metrics_sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def metrics_db(pg_cluster: PgServer) -> Iterator[str]:
    name = f"metrics_{uuid.uuid4().hex[:8]}"
    dsn = pg_cluster.create_database(name, template=TEMPLATE_DB)
    yield dsn
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
async def scraped_worker(
    phone_stack: PhoneStack, metrics_sim: RealtimeSimulator, metrics_db: str
) -> AsyncIterator[Prometheus]:
    """The receptionist worker serving METRICS_PORT, and a Prometheus scraping it every second with
    the shipped alert rules loaded."""
    port = free_port()
    run_dir = phone_stack.run_dir / f"metrics-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir()
    try:
        async with off_the_loop(receptionist_worker(
            phone_stack, agent_name=AGENT_NAME, openai_base_url=metrics_sim.base_url,
            database_url=metrics_db, log=run_dir / "worker.log", extra_env={"METRICS_PORT": str(port)},
        )):  # fmt: skip
            with running_prometheus(
                [f"127.0.0.1:{port}"], run_dir / "prometheus",
                rule_files=[ROOT / "deploy" / "prometheus" / "alerts.yaml"],
            ) as prometheus:  # fmt: skip
                yield prometheus
    except WorkerFailed as e:
        pytest.fail(str(e))


async def agent_turns(dsn: str, caller: str, at_least: int, *, within: float = 60) -> None:
    """Until the call's agent has finished `at_least` turns (journaled once heard to the end)."""
    deadline = time.monotonic() + within
    while True:
        found = await rows(
            dsn,
            "SELECT t.seq FROM transcript_turns t JOIN calls c ON c.id = t.call_id "
            "WHERE c.caller_number = %s AND t.role = 'agent'",
            caller,
        )
        if len(found) >= at_least:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} agent turns after {within:.0f}s, expected {at_least}")
        await asyncio.sleep(0.3)


async def test_a_booking_call_reaches_prometheus(
    phone_stack: PhoneStack, metrics_sim: RealtimeSimulator, metrics_db: str, scraped_worker: Prometheus
) -> None:
    prometheus = scraped_worker
    # the worker itself, before any call: LiveKit's own series and ours on the one endpoint
    assert await prometheus.wait_for('up{job="receptionist"}', lambda v: v == 1) == 1
    await prometheus.wait_for("receptionist_postgres_up", lambda v: v == 1)
    # WORKER_MAX_CALLS unset: five calls for each core this machine lets the worker use
    assert await prometheus.value("receptionist_call_slots") == default_max_calls()
    assert await prometheus.value("receptionist_active_calls") == 0
    assert await prometheus.value("sum(lk_agents_child_process_count)") is not None

    slot = first_free_slot()
    script(
        metrics_sim,
        [
            {"say": GREETING},
            *BOOKING_STEPS(slot),
            {"tool": "end_call"},
            {"say": "Thanks for calling Rose City Plumbing. Goodbye!"},
        ],  # fmt: skip
        [f"Book me a drain cleaning at {slot:%H:%M} on {slot:%A}, I'm Dana Whitfield.", "Yes, that's right.",
         "That's all, thanks."],
    )
    async with place_call(phone_stack, to=PLUMBING, from_=CALLER, audio_script=[]) as call:
        await call.wait_answered(within=60)
        # during the call: Prometheus sees it as active, in our series and in LiveKit's
        await prometheus.wait_for("receptionist_active_calls", lambda v: v == 1)
        await prometheus.wait_for("sum(lk_agents_active_job_count)", lambda v: v == 1)
        await prometheus.wait_for("sum(receptionist_journal_pending_events)", lambda v: v >= 0)
        await agent_turns(metrics_db, CALLER, 1)  # the greeting has been heard
        call.say(f"Book me a drain cleaning at {slot:%H:%M} on {slot:%A}, I'm Dana Whitfield.")
        await agent_turns(metrics_db, CALLER, 2)  # the name and number read back
        call.say("Yes, that's right.")
        await agent_turns(metrics_db, CALLER, 4)  # "Booking that ...", the confirmation and "anything else?"
        call.say("That's all, thanks.")
        assert await call.wait_ended(within=60) == "far_end_bye", call.sip_trace()[-3000:]
    row = await call_row(metrics_db, CALLER)
    assert row["outcome"] == "booked", row
    report = row["summary"]

    # after the call: counted by outcome, timed, costed, exactly as its report says
    booked = await prometheus.wait_for(f'receptionist_calls_total{{{BUSINESS},outcome="booked"}}', lambda v: v >= 1)
    assert booked == 1
    assert await prometheus.value("sum(receptionist_calls_total)") == 1
    greeting = await prometheus.value(f"receptionist_time_to_greeting_seconds_count{{{BUSINESS}}}")
    assert greeting == 1
    assert await prometheus.value(f"receptionist_time_to_greeting_seconds_sum{{{BUSINESS}}}") == pytest.approx(
        report["timing"]["to_greeting_s"]
    )
    gaps = await prometheus.value(f"receptionist_response_gap_seconds_count{{{BUSINESS}}}")
    assert gaps == report["timing"]["response_gap_s"]["turns"] >= 2
    tool = await prometheus.value('receptionist_tool_latency_seconds_count{tool="book_appointment"}')
    assert tool == 1
    cost = await prometheus.value("sum(receptionist_call_cost_usd_total)")
    assert cost == pytest.approx(report["cost"]["total"]) and cost > 0
    tokens = await prometheus.value(f'receptionist_realtime_tokens_total{{{BUSINESS},kind="output_audio"}}')
    assert tokens == report["usage"]["output_audio_tokens"] > 0
    await prometheus.wait_for("receptionist_active_calls", lambda v: v == 0)
    assert await prometheus.value("receptionist_journal_spill_bytes") == 0

    # the shipped alert rules evaluate against these very series without error
    rules = await prometheus.rules()
    assert rules and all(rule["health"] == "ok" for rule in rules), rules
