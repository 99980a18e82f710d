"""Quality over time: a business's calls in a window, aggregated in Postgres from the call rows and the
report each call left (`calls.summary`), for `receptionist report` and, later, the owner's console."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent.flows.steps import FLOW_STEPS

# a call shows booking intent when it looked for, held or booked a slot
BOOKING_TOOLS = ("check_availability", "start_booking", "hold_slot", "book_appointment")



_STEP_ORDER = {(str(f), str(s)): i for f, steps in FLOW_STEPS.items() for i, s in enumerate(steps)}


def _window(c: str = "") -> str:
    """Calls started in [start, end), of one business or all; `c` is the calls table's alias."""
    return (
        f"{c}started_at >= %(start)s AND {c}started_at < %(end)s"
        f" AND (%(business)s::text IS NULL OR {c}business = %(business)s)"
    )


_WINDOW = _window()
_C_WINDOW = _window("c.")

# the report's figures are columns Postgres derives from calls.summary (migration 007)
_TOTALS = f"""
SELECT count(*) AS calls,
       count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
       count(*) FILTER (WHERE outcome = 'booked') AS booked,
       count(*) FILTER (WHERE outcome = 'lead') AS leads,
       count(*) FILTER (WHERE outcome = 'message') AS messages,
       count(*) FILTER (WHERE outcome = 'error') AS errors,
       count(escalation_result) AS handoffs,
       count(*) FILTER (WHERE escalation_result = 'accepted') AS transfers_accepted,
       count(*) FILTER (WHERE escalation_result IN ('accepted', 'refused', 'not_attempted', 'caller_left')) AS transfers_tried,
       count(*) FILTER (WHERE flag_names @> '["hung_up_during_greeting"]') AS hung_up_during_greeting,
       count(*) FILTER (WHERE end_reason = 'caller_hangup' AND outcome = 'abandoned'
                        AND NOT coalesce(flag_names @> '["hung_up_during_greeting"]', false))
           AS hung_up_after_greeting,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY response_gap_p50_s) AS response_gap_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_gap_max_s) AS response_gap_p95_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY to_greeting_s) AS time_to_greeting_p95_s,
       sum(cost_total) AS cost_total,
       count(cost_total) AS calls_with_cost
FROM calls WHERE {_WINDOW}
"""

_BOOKING_INTENT = f"""
SELECT count(*) AS with_intent, count(*) FILTER (WHERE c.outcome = 'booked') AS completed
FROM calls c
WHERE {_C_WINDOW}
  AND EXISTS (SELECT 1 FROM tool_calls t WHERE t.call_id = c.id AND t.name = ANY(%(booking_tools)s))
"""

# a flag is raised at most once per call, so rows are calls
_FLAGS = f"""
SELECT f AS flag, count(*) AS calls
FROM calls c, jsonb_array_elements_text(coalesce(c.flag_names, '[]')) f
WHERE {_C_WINDOW}
GROUP BY 1 ORDER BY 2 DESC, 1
"""

_TOOLS = f"""
SELECT t.name AS tool, count(*) AS calls, count(t.error) AS errors,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY t.latency_ms) AS latency_p95_ms
FROM tool_calls t JOIN calls c ON c.id = t.call_id
WHERE {_C_WINDOW}
GROUP BY 1 ORDER BY 2 DESC, 1
"""

_VIOLATIONS = f"""
SELECT count(*) AS violations FROM violations v JOIN calls c ON c.id = v.call_id
WHERE {_C_WINDOW}
"""

_BY_HOUR = f"""
SELECT extract(hour FROM started_at AT TIME ZONE %(tz)s)::int AS hour, count(*) AS calls
FROM calls WHERE {_WINDOW} GROUP BY 1 ORDER BY 1
"""

# bookings made by calls in the window, by the local day the call was made
_BOOKINGS_BY_DAY = f"""
SELECT (c.started_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS bookings
FROM appointments a JOIN calls c ON c.id = a.call_id
WHERE {_C_WINDOW}
GROUP BY 1 ORDER BY 1
"""

# how many calls reached each step of each flow (agent/flows/steps.py): where callers drop off
_FUNNEL = f"""
SELECT e.flow, e.step, count(DISTINCT e.call_id) AS calls, min(e.seq) AS first_seq
FROM call_events e JOIN calls c ON c.id = e.call_id
WHERE e.refused IS NULL AND {_C_WINDOW}
GROUP BY 1, 2 ORDER BY 1, 4, 2
"""

_CALLBACKS = f"""
SELECT count(*) AS callback_requests FROM messages m JOIN calls c ON c.id = m.call_id
WHERE m.callback_requested AND {_C_WINDOW}
"""


def _per_100(n: int, calls: int) -> float | None:
    return round(100.0 * n / calls, 1) if calls else None


def _share(n: int, of: int) -> float | None:
    return round(n / of, 3) if of else None


def _num(x: Any, digits: int = 3) -> float | None:
    return None if x is None else round(float(x), digits)


# the queries split in groups of about equal cost (measured over 100,000 calls: the tool latencies'
# sort is the heaviest), each group on a connection of its own when the pool has one to spare
_GROUPS = (
    ("tools",),
    ("totals", "callbacks", "violations"),
    ("intent", "flags", "by_hour", "by_day", "funnel"),
)
_QUERIES = {"totals": (_TOTALS, "one"), "intent": (_BOOKING_INTENT, "one"), "flags": (_FLAGS, "all"),
            "tools": (_TOOLS, "all"), "violations": (_VIOLATIONS, "one"), "by_hour": (_BY_HOUR, "all"),
            "by_day": (_BOOKINGS_BY_DAY, "all"), "callbacks": (_CALLBACKS, "one"),
            "funnel": (_FUNNEL, "all")}  # fmt: skip


async def _run(conn: AsyncConnection[Any], names: tuple[str, ...], params: dict[str, Any], out: dict[str, Any]) -> None:
    # sorting a month of tool latencies for the percentiles spills to disk at the default 4 MB
    await conn.execute("SET LOCAL work_mem = '64MB'")
    cur = conn.cursor(row_factory=dict_row)
    for name in names:
        query, rows = _QUERIES[name]
        await cur.execute(query, params)
        out[name] = await (cur.fetchone() if rows == "one" else cur.fetchall())


async def _gather(pool: AsyncConnectionPool, params: dict[str, Any]) -> dict[str, Any]:
    """Every query's rows, all read from one snapshot of the database; the groups run side by side
    on as many connections as the pool allows (Postgres then uses both cores of a small server)."""
    out: dict[str, Any] = {}
    side = max(0, min(len(_GROUPS) - 1, pool.max_size - 1))
    async with pool.connection() as lead, lead.transaction():
        if not side:
            await _run(lead, tuple(n for g in _GROUPS for n in g), params, out)
            return out
        # the other connections read exactly what the first one sees: the report adds up
        await lead.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = await (await lead.execute("SELECT pg_export_snapshot()")).fetchone()
        assert row is not None
        snapshot = row[0]

        async def beside(names: tuple[str, ...]) -> None:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                await conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                await _run(conn, names, params, out)

        # the first group, and any the pool has no connection for, on the lead connection
        own = tuple(n for g in (_GROUPS[0], *_GROUPS[side + 1 :]) for n in g)
        await asyncio.gather(_run(lead, own, params, out), *(beside(g) for g in _GROUPS[1 : side + 1]))
    return out


async def business_kpis(
    pool: AsyncConnectionPool,
    *,
    start: datetime,
    end: datetime,
    business: str | None = None,
    tz: str = "UTC",
) -> dict[str, Any]:
    """Every figure of `receptionist report` for calls started in [start, end), one business or all."""
    params = {"start": start, "end": end, "business": business, "tz": tz, "booking_tools": list(BOOKING_TOOLS)}
    got = await _gather(pool, params)
    totals, intent, flags, tools = got["totals"], got["intent"], got["flags"], got["tools"]
    violations, by_hour, by_day = got["violations"]["violations"], got["by_hour"], got["by_day"]
    callbacks = got["callbacks"]["callback_requests"]
    assert totals is not None and intent is not None
    calls = totals["calls"]
    cost = totals["cost_total"]
    return {
        "business": business,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "timezone": tz,
        "calls": calls,
        "answered": totals["answered"],
        "outcomes": {k: totals[k] for k in ("booked", "leads", "messages", "errors")},
        "booking_completion": {
            "calls_with_booking_intent": intent["with_intent"],
            "booked": intent["completed"],
            "rate": _share(intent["completed"], intent["with_intent"]),
        },
        "bookings_per_day": [{"day": r["day"].isoformat(), "bookings": r["bookings"]} for r in by_day],
        "handoff_rate": _share(totals["handoffs"], calls),
        "transfer_success": _share(totals["transfers_accepted"], totals["transfers_tried"]),
        "callback_requests": callbacks,
        "hung_up": {"during_greeting": totals["hung_up_during_greeting"],
                    "after_greeting": totals["hung_up_after_greeting"]},  # fmt: skip
        "flags_per_100_calls": {r["flag"]: _per_100(r["calls"], calls) for r in flags},
        "response_gap_s": {"p50": _num(totals["response_gap_p50_s"]), "p95": _num(totals["response_gap_p95_s"])},
        "time_to_greeting_p95_s": _num(totals["time_to_greeting_p95_s"]),
        "tools": [
            {"tool": r["tool"], "calls": r["calls"], "errors": r["errors"],
             "latency_p95_ms": _num(r["latency_p95_ms"], 1)}
            for r in tools
        ],  # fmt: skip
        "violations_per_100_calls": _per_100(violations, calls),
        "cost": {
            "total": _num(cost, 4),
            "per_call": _num(cost / totals["calls_with_cost"], 4) if cost is not None else None,
            "per_booking": _num(cost / totals["booked"], 4) if cost is not None and totals["booked"] else None,
            "calls_with_cost": totals["calls_with_cost"],
        },
        "calls_by_hour": {r["hour"]: r["calls"] for r in by_hour},
        "funnel": _funnel(got["funnel"]),
    }


def _funnel(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """{flow: {step: calls that reached it}}, each flow's steps in the order calls reach them."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["flow"], {})[r["step"]] = r["calls"]
    for flow, steps in out.items():
        out[flow] = dict(sorted(steps.items(), key=lambda kv: _STEP_ORDER.get((flow, kv[0]), 99)))
    return out
