"""`receptionist report`'s figures, computed in Postgres from call rows and their stored reports: exact
on a hand-made set of calls, and on calls that scenarios really made, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent.store.db import open_pool
from agent.store.kpis import business_kpis

ROOT = Path(__file__).resolve().parents[2]
RECEPTIONIST = str(Path(sys.executable).parent / "receptionist")
T0 = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 9 AM in Portland


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    p = await open_pool(db_url, min_size=1, max_size=2)
    try:
        yield p
    finally:
        await p.close()


def _report(gap_p50: float, gap_max: float, greeting: float, flags: list[str] = (), escalation: Any = None,
            cost: float | None = None) -> dict[str, Any]:  # fmt: skip
    r: dict[str, Any] = {
        "version": 1, "escalation": escalation,
        "timing": {"to_greeting_s": greeting, "response_gap_s": {"p50": gap_p50, "max": gap_max, "turns": 2}},
        "flags": [{"flag": f, "turns": [2]} for f in flags],
    }  # fmt: skip
    if cost is not None:
        r["cost"] = {"total": cost}
    return r


async def _call(pool: AsyncConnectionPool, *, business: str = "Rose City Plumbing", at: datetime = T0,
                outcome: str, end_reason: str = "agent_goodbye", report: dict[str, Any],
                tools: list[tuple[str, str | None, float]] = (), booked: bool = False,
                callback: bool = False, steps: list[tuple[str, str, str | None]] = ()) -> uuid.UUID:  # fmt: skip
    cid = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO calls (id, business, started_at, answered_at, ended_at, outcome, end_reason, summary)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (cid, business, at, at, at + timedelta(minutes=2), outcome, end_reason, Jsonb(report)),
        )
        for seq, (name, error, latency) in enumerate(tools, 1):
            await conn.execute(
                "INSERT INTO tool_calls (id, call_id, seq, name, error, latency_ms, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), cid, seq, name, error, latency, at),
            )
        for seq, (flow, step, refused) in enumerate(steps, 1):
            await conn.execute(
                "INSERT INTO call_events (id, call_id, seq, flow, step, refused, at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), cid, seq, flow, step, refused, at),
            )
        if booked:
            await conn.execute(
                "INSERT INTO appointments (business, service, customer_name, customer_phone, during,"
                " confirmation_code, call_id) VALUES (%s, 'Drain cleaning', 'A', '+15035550100',"
                " tstzrange(%s, %s), %s, %s)",
                (business, at + timedelta(days=1), at + timedelta(days=1, hours=1), uuid.uuid4().hex[:7], cid),
            )
        if callback:
            await conn.execute(
                "INSERT INTO messages (id, call_id, business, body, callback_requested) VALUES (%s, %s, %s, 'x', true)",
                (uuid.uuid4(), cid, business),
            )
    return cid


async def test_figures_over_a_hand_made_week(pool: AsyncConnectionPool) -> None:
    booking = ["started", "availability_checked", "slot_held", "details_read_back", "booked"]
    await _call(pool, outcome="booked", report=_report(0.3, 0.5, 0.9, cost=0.20), booked=True,
                tools=[("check_availability", None, 10.0), ("book_appointment", None, 20.0)],
                steps=[("booking", s, None) for s in booking])
    await _call(pool, outcome="message", report=_report(0.4, 2.6, 1.1, ["dead_air", "asked_for_human"],
                escalation={"reason": "explicit_request", "result": "refused", "then": "message"}, cost=0.30),
                tools=[("escalate_to_human", None, 1.0), ("take_message", None, 2.0)], callback=True)
    await _call(pool, outcome="abandoned", end_reason="caller_hangup", at=T0 + timedelta(hours=3),
                report=_report(0.5, 0.6, 1.0, ["hung_up_during_greeting"]),
                tools=[("check_availability", "closed", 12.0)],
                # dropped off after the times were offered; a refused step is no step reached
                steps=[("booking", "started", None), ("booking", "availability_checked", None),
                       ("booking", "availability_checked", "slot_held"), ("booking", "left", None)])
    await _call(pool, outcome="escalated", end_reason="transferred", at=T0 + timedelta(hours=3),
                report=_report(0.2, 0.3, 0.8, escalation={"reason": "legal", "result": "accepted"}))
    # outside the window, or another business: in no figure
    await _call(pool, outcome="booked", at=T0 - timedelta(days=30), report=_report(9, 9, 9), booked=True)
    await _call(pool, outcome="booked", business="Lakeview Dental", report=_report(9, 9, 9), booked=True)

    k = await business_kpis(pool, start=T0 - timedelta(days=7), end=T0 + timedelta(days=1),
                            business="Rose City Plumbing", tz="America/Los_Angeles")  # fmt: skip
    assert k["calls"] == 4 and k["answered"] == 4
    assert k["outcomes"] == {"booked": 1, "leads": 0, "messages": 1, "errors": 0}
    assert k["booking_completion"] == {"calls_with_booking_intent": 2, "booked": 1, "rate": 0.5}
    assert k["bookings_per_day"] == [{"day": "2026-11-24", "bookings": 1}]
    assert k["handoff_rate"] == 0.5 and k["transfer_success"] == 0.5
    assert k["callback_requests"] == 1
    assert k["hung_up"] == {"during_greeting": 1, "after_greeting": 0}
    assert k["flags_per_100_calls"] == {"asked_for_human": 25.0, "dead_air": 25.0, "hung_up_during_greeting": 25.0}
    assert k["response_gap_s"]["p50"] == 0.35  # median of 0.3, 0.4, 0.5, 0.2
    assert k["cost"] == {"total": 0.5, "per_call": 0.25, "per_booking": 0.5, "calls_with_cost": 2}
    assert k["calls_by_hour"] == {9: 2, 12: 2}  # local hours
    tools = {t["tool"]: (t["calls"], t["errors"]) for t in k["tools"]}
    assert tools["check_availability"] == (2, 1) and tools["book_appointment"] == (1, 0)
    assert k["funnel"] == {"booking": {"started": 2, "availability_checked": 2, "slot_held": 1,
                                       "details_read_back": 1, "booked": 1, "left": 1}}  # fmt: skip
    everyone = await business_kpis(pool, start=T0 - timedelta(days=7), end=T0 + timedelta(days=1))
    assert everyone["calls"] == 5 and everyone["business"] is None
    # one connection reads the same figures as three side by side (as `receptionist report` runs them)
    for size in (1, 3):
        other = await open_pool(pool.conninfo, min_size=1, max_size=size)
        try:
            assert await business_kpis(other, start=T0 - timedelta(days=7), end=T0 + timedelta(days=1),
                                       business="Rose City Plumbing", tz="America/Los_Angeles") == k  # fmt: skip
        finally:
            await other.close()


async def test_figures_read_side_by_side_come_from_one_snapshot(pool: AsyncConnectionPool, db_url: str) -> None:
    """A call that lands while the report is being read is in all of its figures or in none."""
    import psycopg

    await _call(pool, outcome="booked", report=_report(0.3, 0.5, 0.9, cost=0.20), booked=True,
                tools=[("book_appointment", None, 20.0)])
    wide = await open_pool(db_url, min_size=3, max_size=3)
    # a writer holds a new booked call uncommitted; the report starts, then the writer commits while
    # the side connections have not yet begun: with separate snapshots they would count it
    writer = await psycopg.AsyncConnection.connect(db_url)
    try:
        late = uuid.uuid4()
        await writer.execute(
            "INSERT INTO calls (id, business, started_at, answered_at, ended_at, outcome, end_reason, summary)"
            " VALUES (%s, 'Rose City Plumbing', %s, %s, %s, 'booked', 'agent_goodbye', %s)",
            (late, T0, T0, T0 + timedelta(minutes=2), Jsonb(_report(0.3, 0.5, 0.9, ["dead_air"], cost=0.2))),
        )
        await writer.execute(
            "INSERT INTO tool_calls (id, call_id, seq, name, latency_ms, created_at)"
            " VALUES (gen_random_uuid(), %s, 1, 'take_message', 3.0, %s)", (late, T0))
        from agent.store import kpis

        real_run = kpis._run
        committed = False

        async def run_after_commit(conn, names, params, out):  # type: ignore[no-untyped-def]
            # the lead connection has its snapshot; the call commits before any figure is read
            nonlocal committed
            if not committed:
                committed = True
                await writer.commit()
            await real_run(conn, names, params, out)

        kpis._run = run_after_commit  # type: ignore[assignment]
        try:
            k = await business_kpis(wide, start=T0 - timedelta(days=1), end=T0 + timedelta(days=1))
        finally:
            kpis._run = real_run  # type: ignore[assignment]
    finally:
        await writer.close()
        await wide.close()
    # calls, their flags and their tools are read by three queries on three connections
    taken = {t["tool"]: t["calls"] for t in k["tools"]}.get("take_message", 0)
    assert (k["calls"], k["flags_per_100_calls"], taken) in [(1, {}, 0), (2, {"dead_air": 50.0}, 1)], k


async def test_an_empty_window_reports_zero_calls_not_an_error(pool: AsyncConnectionPool) -> None:
    k = await business_kpis(pool, start=T0, end=T0 + timedelta(days=1))
    assert k["calls"] == 0 and k["handoff_rate"] is None and k["flags_per_100_calls"] == {}


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RECEPTIONIST, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_report_on_calls_the_scenarios_made(db_url: str, tmp_path: Path) -> None:
    """As a user runs it: calls recorded by `receptionist simulate` into DATABASE_URL, then reported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_URL", "BRAIN_PATH"))}
    env |= {"DATABASE_URL": db_url, "PYTHONPATH": str(ROOT), "BRAIN_PATH": str(ROOT / "brains")}
    scenarios = [ROOT / "tests/scenarios" / f"{n}.yaml" for n in ("book-drain-cleaning", "ask-for-human", "guard-false-hours")]
    ran = _run("simulate", "--database", "env", *map(str, scenarios), env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    # the scenarios pin their clocks in November 2026, so the window is theirs
    out = _run("report", "--business", "rose city plumbing", "--from", "2026-11-01", "--to", "2026-11-30",
               "--json", env=env, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    k = json.loads(out.stdout)
    assert k["business"] == "Rose City Plumbing" and k["calls"] == 3 and k["outcomes"]["booked"] == 1
    assert k["flags_per_100_calls"]["grounding_violation"] == pytest.approx(33.3)
    assert k["flags_per_100_calls"]["asked_for_human"] == pytest.approx(33.3)
    # the flows' steps the calls recorded (call_events), counted per step
    assert k["funnel"] == {
        "booking": {"started": 1, "availability_checked": 1, "slot_held": 1, "details_read_back": 1, "booked": 1},
        "escalation": {"requested": 1, "handoff_line": 1, "transferring": 1, "accepted": 1},
    }
    text = _run("report", "--business", "Rose City Plumbing", "--from", "2026-11-01", "--to", "2026-11-30",
                env=env, cwd=tmp_path).stdout  # fmt: skip
    assert "Booking funnel" in text and "details_read_back" in text, text
    page = tmp_path / "report.html"
    drawn = _run("report", "--business", "Rose City Plumbing", "--from", "2026-11-01", "--to", "2026-11-30",
                 "--html", str(page), env=env, cwd=tmp_path)  # fmt: skip
    assert drawn.returncode == 0 and drawn.stdout.strip() == f"wrote {page}: 3 calls", drawn.stderr
    text = page.read_text()
    assert text.count("<svg") == 3 and "http" not in text.replace('xmlns="http', "")  # nothing fetched
    for bad, says in [
        (["--since", "seven days"], "--since takes a count and a unit"),
        (["--from", "2026-13-01"], "dates are YYYY-MM-DD"),
        (["--business", "Nope Plumbing"], "no business named 'Nope Plumbing'"),
    ]:
        refused = _run("report", *bad, env=env, cwd=tmp_path)
        assert refused.returncode == 2 and says in refused.stderr and len(refused.stderr.splitlines()) == 1, refused.stderr
