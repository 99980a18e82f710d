"""How fast the owner's console answers on a big database: 100,000 calls and 1,000,000 transcript turns
seeded into a throwaway local Postgres, an owner signed in, then the Calls list (unfiltered, each
filter, deep pages), a call's page and the Quality page requested in turn. Times are server time: the
app runs in this process behind httpx's ASGI transport, so no network or browser is counted.
Prints a table and writes bench/results/console.json.

    python -m bench.console [--calls 100000] [--turns-per-call 10] [--requests 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from agent.store.db import migrate
from bench.report import table, write
from web.app import ConsoleConfig, create_app

ROOT = Path(__file__).resolve().parents[1]
OWNER_BUSINESS = "Rose City Plumbing"
BUSINESSES = [OWNER_BUSINESS, "Lakeview Family Dental", "Corner Bakery"]
PASSWORD = "bench password 1"


def seed(dsn: str, calls: int, turns_per_call: int) -> None:
    """Calls spread over the last 60 days across three businesses, each with its report, transcript
    and a tool call or two; written by Postgres itself (generate_series), then analysed."""
    outcomes = "ARRAY['booked','answered','message','lead','abandoned','escalated']"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute(
            f"""
            INSERT INTO calls (id, business, caller_number, dialed_number, started_at, answered_at, ended_at,
                               outcome, end_reason, summary)
            SELECT gen_random_uuid(), (ARRAY{BUSINESSES!r})[1 + i % 3],
                   '+1503' || lpad((i % 9000000 + 1000000)::text, 7, '0'), '+15035550100',
                   now() - make_interval(secs => i * (60 * 86400.0 / %(n)s)),
                   now() - make_interval(secs => i * (60 * 86400.0 / %(n)s) - 1),
                   now() - make_interval(secs => i * (60 * 86400.0 / %(n)s) - 120),
                   ({outcomes})[1 + (i * 7) % 6], 'agent_goodbye',
                   jsonb_build_object(
                       'version', 1,
                       'outcome', ({outcomes})[1 + (i * 7) % 6],
                       'timing', jsonb_build_object('to_greeting_s', 0.7 + (i % 80) / 100.0,
                                                    'response_gap_s', jsonb_build_object(
                                                        'p50', 0.2 + (i % 40) / 100.0, 'max', 0.5 + (i % 200) / 100.0)),
                       'flags', CASE WHEN i % 9 = 0 THEN '[{{"flag": "dead_air", "turns": [3]}}]'::jsonb
                                     WHEN i % 13 = 0 THEN '[{{"flag": "asked_for_human", "turns": [2]}}]'::jsonb
                                     ELSE '[]'::jsonb END,
                       'cost', jsonb_build_object('total', round((0.05 + (i % 50) / 100.0)::numeric, 4)))
            FROM generate_series(1, %(n)s) AS i
            """.replace("%(n)s", str(int(calls)))
        )
        conn.execute(
            """
            INSERT INTO transcript_turns (id, call_id, seq, role, text, started_at, ended_at)
            SELECT gen_random_uuid(), c.id, s, CASE WHEN s %% 2 = 0 THEN 'agent' ELSE 'caller' END,
                   CASE WHEN s %% 2 = 0 THEN 'Sure, let me check that for you. I have Tuesday at 9 in the morning.'
                        ELSE 'Can someone come out to look at a leak under the kitchen sink?' END,
                   c.started_at + make_interval(secs => s * 6), c.started_at + make_interval(secs => s * 6 + 4)
            FROM calls c, generate_series(0, %s) AS s
            """,
            (turns_per_call - 1,),
        )
        conn.execute(
            """
            INSERT INTO tool_calls (id, call_id, seq, name, arguments, result, latency_ms, created_at)
            SELECT gen_random_uuid(), c.id, s, (ARRAY['check_availability','book_appointment'])[s],
                   '{"service": "drain cleaning"}', '{"ok": true}', 12.5, c.started_at
            FROM calls c, generate_series(1, 2) AS s
            """
        )
        conn.execute("VACUUM ANALYZE")


async def _log_in(client: httpx.AsyncClient, email: str) -> None:
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "the login page has no CSRF token"
    done = await client.post("/login", data={"csrf_token": token.group(1), "email": email,
                                             "password": PASSWORD, "next": "/"})  # fmt: skip
    assert done.status_code == 303, f"login failed: {done.status_code}"


async def _timed(get: Callable[[], Awaitable[httpx.Response]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await get()
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, f"{r.request.url}: {r.status_code}"
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=20, method="inclusive") if len(ms) > 1 else ms * 19
    return {"n": len(ms), "p50": round(statistics.median(ms), 1), "p95": round(q[18], 1), "max": round(max(ms), 1)}


async def measure(dsn: str, requests: int) -> dict[str, Any]:
    app = create_app(ConsoleConfig(dsn, brain_path=ROOT / "brains"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.bench") as client:
            await _log_in(client, "owner@bench.example")
            with psycopg.connect(dsn) as conn:
                ids = [str(r[0]) for r in conn.execute(
                    "SELECT id FROM calls WHERE business = %s ORDER BY random() LIMIT %s",
                    (OWNER_BUSINESS, requests))]  # fmt: skip
            await client.get("/calls")  # the first request opens connections and compiles templates
            calls_lists = {
                "Calls, page 1": lambda: client.get("/calls"),
                "Calls, outcome=booked": lambda: client.get("/calls", params={"outcome": "booked"}),
                "Calls, flag=dead_air": lambda: client.get("/calls", params={"flag": "dead_air"}),
                "Calls, one week": lambda: client.get("/calls", params={"from": _days_ago(14), "to": _days_ago(7)}),
                "Calls, caller digits": lambda: client.get("/calls", params={"caller": "5551234"}),
                "Calls, page 40": lambda: client.get("/calls", params={"page": "40"}),
            }
            out: dict[str, Any] = {}
            per = max(requests // len(calls_lists), 5)
            for label, get in calls_lists.items():
                out[label] = _summary(await _timed(get, per))
            pick = iter(ids * 2)
            out["A call's page"] = _summary(await _timed(lambda: client.get(f"/calls/{next(pick)}"), requests))
            out["Quality, 30 days"] = _summary(await _timed(lambda: client.get("/quality", params={"since": "30d"}),
                                                            max(requests // 20, 5)))  # fmt: skip
            all_lists = [x for label in calls_lists for x in [out[label]["p95"]]]
            out["calls_list_worst_p95_ms"] = max(all_lists)
            return out


def _days_ago(n: int) -> str:
    from datetime import date, timedelta

    return (date.today() - timedelta(days=n)).isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--turns-per-call", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200, help="requests per kind of page (fewer for lists)")
    parser.add_argument("--quick", action="store_true", help="10,000 calls and 50 requests")
    args = parser.parse_args()
    calls, requests = (10_000, 50) if args.quick else (args.calls, args.requests)

    from simulator.postgres import PgServer

    server = PgServer(durable=True)
    server.start()
    try:
        dsn = server.create_database("console_bench")
        asyncio.run(migrate(dsn))
        t = time.perf_counter()
        seed(dsn, calls, args.turns_per_call)
        seeded_s = time.perf_counter() - t
        env = {"DATABASE_URL": dsn, "BRAIN_PATH": str(ROOT / "brains"), "PATH": "/usr/bin:/bin"}
        subprocess.run([str(Path(sys.executable).parent / "receptionist"), "users", "add", "owner@bench.example",
                        "--business", OWNER_BUSINESS, "--password-stdin"], input=PASSWORD + "\n", text=True,
                       env=env, check=True, capture_output=True, cwd=ROOT)  # fmt: skip
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM transcript_turns)").fetchone()
        assert row is not None
        results = asyncio.run(measure(dsn, requests))
    finally:
        server.destroy()
    rows = [[label, v["n"], v["p50"], v["p95"], v["max"]] for label, v in results.items() if isinstance(v, dict)]
    table(f"owner's console, server time, {row[0]:,} calls / {row[1]:,} turns (local Postgres 15)",
          ["page", "requests", "p50 ms", "p95 ms", "max ms"], rows)  # fmt: skip
    path = write("console", {"calls": row[0], "turns": row[1], "seed_s": round(seeded_s, 1), "pages": results,
                             "targets": {"lists_and_call_p95_ms": 150, "quality_ms": 1000}},
                 quick=args.quick)  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
