"""A job process's calls share its Postgres pool: the call's records (the journal) cost no connection
of their own, so the fleet's connections are replicas x job processes x DATABASE_POOL_SIZE; and more job
processes than Postgres takes connections are served through PgBouncer in transaction pooling mode."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from agent.brain import Brain, load_brain
from agent.call import CallContext
from agent.call_end import finish_call
from agent.settings import Settings, load_settings
from agent.store import runtime
from agent.store.appointments import Appointment, book
from agent.store.journal.events import CallStarted, TranscriptTurn
from agent.store.journal.writer import CallJournal
from simulator.pgbouncer import PgBouncer
from simulator.postgres import PgServer
from tests.tools.conftest import PLUMBING

CALLS = 12


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A job process that has not made its stores yet."""
    monkeypatch.setattr(runtime, "_loop_stores", weakref.WeakKeyDictionary())
    yield


async def _backends(db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_a_dozen_calls_in_one_process_hold_only_its_pool(
    db_url: str, tmp_path, fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_POOL_SIZE", "2")
    settings = load_settings(openai_api_key="x", database_url=db_url, journal_spill_dir=tmp_path)
    brain = load_brain(PLUMBING)
    opened = [await runtime.call_stores(settings) for _ in range(CALLS)]
    calls = []
    for stores in opened:
        call = CallContext(brain=brain, journal=stores.journal, pool=stores.pool, call_id=uuid.uuid4())
        call.start()
        for i in range(20):
            call.record_turn(role="caller" if i % 2 else "agent", text=f"turn {i}", started_at=1.0 * i,
                             ended_at=1.0 * i + 0.5, interrupted=False)  # fmt: skip
        calls.append(call)
    # every journal writing at once, and a booking-shaped query beside them
    assert all(await asyncio.gather(*(s.journal.flush(timeout=20) for s in opened)))
    assert await _backends(db_url) <= settings.database_pool_size
    for call, stores in zip(calls, opened, strict=True):
        finish_call(call, reason="caller_hangup")
        await stores.release(call)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*), count(ended_at) FROM calls")
        assert await cur.fetchone() == (CALLS, CALLS)
        cur = await conn.execute("SELECT count(*) FROM transcript_turns")
        assert await cur.fetchone() == (CALLS * 20,)
    await opened[0].pool.close()


JOB_PROCESSES = 60  # twice the small cluster's max_connections
TURNS = 10
FIRST_SLOT = datetime(2030, 5, 6, 8, 0, tzinfo=UTC)


async def _job_processes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, count: int
) -> list[runtime.CallStores]:
    """The stores of `count` job processes, each as its first call makes them: a pool of its own."""
    opened = []
    for _ in range(count):
        monkeypatch.setattr(runtime, "_loop_stores", weakref.WeakKeyDictionary())
        opened.append(await runtime.call_stores(settings))
    return opened


async def _call(stores: runtime.CallStores, brain: Brain, slot: int) -> Appointment:
    """One call as a job process records it: turns through the journal, a booking through the pool
    while those turns are being written, the call's ending, and the release at hang-up."""
    assert stores.pool is not None
    call = CallContext(brain=brain, journal=stores.journal, pool=stores.pool, call_id=uuid.uuid4())
    call.start()
    for i in range(TURNS // 2):
        call.record_turn(role="agent" if i % 2 else "caller", text=f"turn {i}", started_at=1.0 * i,
                         ended_at=1.0 * i + 0.5, interrupted=False)  # fmt: skip
    start = FIRST_SLOT + timedelta(minutes=30 * slot)
    booked = await book(stores.pool, call.brain.business.name, "Drain cleaning", "Ana", "+15035550111",
                        start, start + timedelta(minutes=30), call.call_id)  # fmt: skip
    call.record_tool_call(name="book_appointment", arguments={"slot": slot},
                          result=booked.confirmation_code, error=None, latency_ms=1.0)  # fmt: skip
    for i in range(TURNS // 2, TURNS):
        call.record_turn(role="agent" if i % 2 else "caller", text=f"turn {i}", started_at=1.0 * i,
                         ended_at=1.0 * i + 0.5, interrupted=False)  # fmt: skip
    finish_call(call, reason="caller_hangup")
    await stores.release(call)
    return booked


async def test_sixty_job_processes_through_pgbouncer_lose_nothing_on_thirty_connections(
    pgbouncer: PgBouncer, small_postgres: PgServer, small_db: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("DATABASE_PGBOUNCER", "true")  # as the README sets it for workers
    settings = load_settings(
        openai_api_key="x", database_url=pgbouncer.dsn(small_db), journal_spill_dir=tmp_path
    )
    brain = load_brain(PLUMBING)
    opened = await _job_processes(settings, monkeypatch, JOB_PROCESSES)
    try:
        # no job process was refused its pool: every call can book
        assert [s.pool is not None for s in opened] == [True] * JOB_PROCESSES
        booked = await asyncio.gather(*(_call(s, brain, n) for n, s in enumerate(opened)))
        assert len({b.confirmation_code for b in booked}) == JOB_PROCESSES
        assert opened[0].pool is not None
        async with opened[0].pool.connection() as conn:
            # a caller's statement is still bounded, by PgBouncer's connect_query
            cur = await conn.execute("SHOW statement_timeout")
            assert await cur.fetchone() == ("5s",)
    finally:
        for stores in opened:
            if stores.pool is not None:
                await stores.pool.close()
    async with await psycopg.AsyncConnection.connect(small_postgres.dsn(small_db)) as conn:
        cur = await conn.execute("SELECT count(*), count(ended_at) FROM calls")
        assert await cur.fetchone() == (JOB_PROCESSES, JOB_PROCESSES)
        cur = await conn.execute("SELECT count(*), count(DISTINCT (call_id, seq)) FROM transcript_turns")
        assert await cur.fetchone() == (JOB_PROCESSES * TURNS, JOB_PROCESSES * TURNS)
        cur = await conn.execute("SELECT count(*), count(DISTINCT call_id) FROM tool_calls")
        assert await cur.fetchone() == (JOB_PROCESSES, JOB_PROCESSES)
        cur = await conn.execute(
            "SELECT count(*), count(DISTINCT a.call_id) FROM appointments a"
            " JOIN calls c ON c.id = a.call_id"
        )
        assert await cur.fetchone() == (JOB_PROCESSES, JOB_PROCESSES)


async def test_job_processes_straight_to_that_postgres_are_refused_before_sixty(
    small_postgres: PgServer, small_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the workers need PgBouncer there: without it, a job process past max_connections opens no
    pool, so its caller cannot book."""
    settings = load_settings(
        openai_api_key="x", database_url=small_postgres.dsn(small_db), journal_spill_dir=tmp_path
    )
    opened: list[runtime.CallStores] = []
    try:
        while len(opened) < JOB_PROCESSES and (not opened or opened[-1].pool is not None):
            opened += await _job_processes(settings, monkeypatch, 1)
        assert opened[-1].pool is None
        assert len(opened) <= small_postgres.max_connections + 1
    finally:
        for stores in opened:
            if stores.journal is not None:
                await stores.journal.aclose(timeout=1)
            if stores.pool is not None:
                await stores.pool.close()


@pytest.mark.parametrize("argv", [["db", "migrate"], ["retention"], ["report"]])
def test_commands_refuse_transaction_pooling_in_one_line(
    argv: list[str], pgbouncer: PgBouncer, small_db: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Migrations and retention hold session advisory locks, the console LISTENs, a report needs its own
    statement timeout: through transaction pooling these would silently misbehave, so they refuse."""
    from agent.cli import main

    monkeypatch.setenv("DATABASE_URL", pgbouncer.dsn(small_db))
    monkeypatch.setenv("DATABASE_PGBOUNCER", "true")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DATABASE_PGBOUNCER is for workers" in err


async def test_journals_that_connect_by_themselves_through_pgbouncer_lose_nothing(
    pgbouncer: PgBouncer, small_postgres: PgServer, small_db: str, tmp_path: Path
) -> None:
    """A job process whose pool could not open at its start (Postgres was down), and a worker replaying
    spill files at start-up, write through a journal's own connection to the same DATABASE_URL."""
    journals = [CallJournal(pgbouncer.dsn(small_db), tmp_path, flush_interval=0.001) for _ in range(10)]
    for journal in journals:
        await journal.start()
    calls = [uuid.uuid4() for _ in journals]
    for round_ in range(TURNS):  # one batch per round, each one more run of the same statements
        for journal, call_id in zip(journals, calls, strict=True):
            if round_ == 0:
                journal.record(CallStarted(call_id=call_id, business="Rose City Plumbing"))
            journal.record(TranscriptTurn(call_id=call_id, role="caller", text=f"turn {round_}"))
        assert all(await asyncio.gather(*(j.flush(timeout=20) for j in journals)))
    for journal in journals:
        await journal.aclose(timeout=10)
    async with await psycopg.AsyncConnection.connect(small_postgres.dsn(small_db)) as conn:
        cur = await conn.execute("SELECT count(*) FROM transcript_turns")
        assert await cur.fetchone() == (len(journals) * TURNS,)


def test_calls_in_threads_of_one_worker_each_record_and_leave_no_connection(
    db_url: str, tmp_path: Path, fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WORKER_JOB_EXECUTOR=thread: each call runs on its own thread and event loop in the worker's
    process. Each gets stores it can use on its loop, records its call, books, and closes them as it
    ends: a busy worker does not gather connections call after call."""
    import threading

    monkeypatch.setenv("WORKER_JOB_EXECUTOR", "thread")
    settings = load_settings(openai_api_key="x", database_url=db_url, journal_spill_dir=tmp_path)
    brain = load_brain(PLUMBING)
    booked: list[Appointment] = []
    failures: list[BaseException] = []

    def one_call(slot: int) -> None:  # a job thread: its own loop, as LiveKit's thread executor runs it
        async def run() -> None:
            booked.append(await _call(await runtime.call_stores(settings), brain, slot))

        try:
            asyncio.run(run())
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            failures.append(e)

    threads = [threading.Thread(target=one_call, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert len({b.confirmation_code for b in booked}) == 6

    async def check() -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            cur = await conn.execute("SELECT count(*), count(ended_at) FROM calls")
            assert await cur.fetchone() == (6, 6)
        assert await _backends(db_url) == 0

    asyncio.run(check())
