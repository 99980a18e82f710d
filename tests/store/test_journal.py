"""The call journal against a real Postgres: order, batching, outages, spill replay, shutdown."""

import asyncio
import json
import signal
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest

from agent.store.db import open_pool
from agent.store.journal.encoding import encode_event
from agent.store.journal.events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    FlowStep,
    LeadRecord,
    MessageRecord,
    ToolCallRecord,
    TranscriptTurn,
    Violation,
)
from agent.store.journal.writer import CallJournal
from agent.store.records import snapshot
from tests.fixtures.spill import wait_for_spilled

BIZ = "bright-smile-dental"
ROOT = Path(__file__).resolve().parents[2]


def turns_in_db(dsn: str, call_id: uuid.UUID) -> list[tuple[int, str, int]]:
    """(seq, text, transaction id) per turn; the xid shows the order transactions committed in."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT seq, text, xmin::text::bigint FROM transcript_turns WHERE call_id = %s"
            " ORDER BY seq",
            (call_id,),
        ).fetchall()


def assert_exactly_once_in_order(rows: list[tuple[int, str, int]], n: int) -> None:
    assert [r[0] for r in rows] == list(range(1, n + 1))
    assert [r[1] for r in rows] == [f"turn {i}" for i in range(1, n + 1)]
    xids = [r[2] for r in rows]
    assert xids == sorted(xids), "a later turn committed before an earlier one"


def whole_call(call_id: uuid.UUID, turns: int) -> list:
    events: list = [
        CallStarted(call_id=call_id, business=BIZ, room="room-1", caller_number="+14155550123",
                    dialed_number="+14155550100", sip_call_id="SCL_1", twilio_call_sid="CA1"),
        CallAnswered(call_id=call_id),
    ]  # fmt: skip
    for i in range(1, turns + 1):
        events.append(TranscriptTurn(call_id=call_id, role="caller" if i % 2 else "agent",
                                     text=f"turn {i}"))  # fmt: skip
        if i % 10 == 0:
            events.append(ToolCallRecord(call_id=call_id, name="check_availability",
                                         arguments={"day": "2030-03-04"}, result="[]",
                                         latency_ms=12.5))  # fmt: skip
    events += [
        LeadRecord(call_id=call_id, business=BIZ, score=80, name="Ana", phone="+14155550123",
                   need="implant", urgency="this week", answers={"insured": "yes"}),
        MessageRecord(call_id=call_id, business=BIZ, body="Please call me back", caller_name="Ana",
                      phone="+14155550123", callback_requested=True),
        Violation(call_id=call_id, turn_seq=2, kind="invented_hours", claim="open Sundays",
                  correction="closed Sundays"),
        FlowStep(call_id=call_id, seq=1, flow="booking", step="started"),
        FlowStep(call_id=call_id, seq=2, flow="booking", step="started", refused="slot_held"),
        CallEnded(call_id=call_id, outcome="lead", end_reason="caller_hangup",
                  summary={"intent": "implant consult"}),
    ]  # fmt: skip
    return events


async def test_journal_writes_a_whole_call_in_order_and_in_batches(db_url, pool, tmp_path):
    call_id = uuid.uuid4()
    journal = CallJournal(db_url, tmp_path / "spill", batch_size=100)
    await journal.start()
    for event in whole_call(call_id, 600):
        journal.record(event)
    assert await journal.flush(timeout=30)
    stats = journal.stats()
    await journal.aclose()

    assert_exactly_once_in_order(turns_in_db(db_url, call_id), 600)
    assert stats["written"] == stats["recorded"] == 2 + 600 + 60 + 4 + 2
    assert 7 <= stats["batches"] < 100  # batched, not one transaction per event
    snap = await snapshot(pool, call_id=call_id)
    [call] = snap["calls"]
    assert call["outcome"] == "lead" and call["end_reason"] == "caller_hangup"
    assert call["answered_at"] is not None and call["ended_at"] is not None
    assert call["summary"] == {"intent": "implant consult"}
    assert [t["seq"] for t in snap["tool_calls"]] == list(range(1, 61))
    assert snap["tool_calls"][0]["arguments"] == {"day": "2030-03-04"}
    assert [(e["seq"], e["step"], e["refused"]) for e in snap["call_events"]] == [
        (1, "started", None), (2, "started", "slot_held")]  # fmt: skip
    assert snap["leads"][0]["answers"] == {"insured": "yes"} and snap["leads"][0]["score"] == 80
    assert snap["messages"][0]["callback_requested"] is True
    assert snap["violations"][0]["kind"] == "invented_hours"
    assert not list((tmp_path / "spill").glob("journal-*.jsonl"))  # nothing left behind


@pytest.mark.parametrize("target", ["dsn", "pool"])
async def test_postgres_outage_mid_call_loses_and_duplicates_nothing(
    db_url, pg_server, tmp_path, target
):
    call_id = uuid.uuid4()
    spill_dir = tmp_path / "spill"
    pool = (
        await open_pool(db_url, min_size=1, max_size=2, acquire_timeout=1)
        if target == "pool"
        else None
    )
    journal = CallJournal(pool or db_url, spill_dir, max_buffer=40, batch_size=25, max_backoff=0.2)
    await journal.start()
    journal.record(CallStarted(call_id=call_id, business=BIZ))
    total = 0

    async def talk(count: int) -> None:
        nonlocal total
        for _ in range(count):
            total += 1
            journal.record(TranscriptTurn(call_id=call_id, role="caller", text=f"turn {total}"))
            await asyncio.sleep(0.005)

    await talk(100)
    await asyncio.to_thread(pg_server.stop)
    await talk(500)  # a few seconds of conversation while Postgres is down
    spilled_during_outage = journal.stats()["spilled"]
    assert spilled_during_outage > 0
    assert list(spill_dir.glob("journal-*.jsonl"))
    restart = asyncio.create_task(asyncio.to_thread(pg_server.start))
    await talk(200)  # the call goes on while Postgres comes back
    await restart
    journal.record(CallEnded(call_id=call_id, outcome="message", end_reason="caller_hangup"))
    assert await journal.flush(timeout=30)
    stats = journal.stats()
    await journal.aclose()
    if pool is not None:
        await pool.close()

    assert stats["outages"] >= 1
    assert_exactly_once_in_order(turns_in_db(db_url, call_id), total)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT outcome FROM calls WHERE id = %s", (call_id,)).fetchone() == (
            "message",
        )
    assert not list(spill_dir.glob("journal-*.jsonl"))


CRASHING_WRITER = textwrap.dedent("""
    import asyncio, sys, uuid
    from agent.store.journal.events import CallStarted, TranscriptTurn
    from agent.store.journal.writer import CallJournal

    async def main():
        dsn, spill_dir, call_id = sys.argv[1], sys.argv[2], uuid.UUID(sys.argv[3])
        journal = CallJournal(dsn, spill_dir, max_buffer=10, max_backoff=0.1)
        await journal.start()
        journal.record(CallStarted(call_id=call_id, business="bright-smile-dental"))
        for i in range(1, 30):
            journal.record(TranscriptTurn(call_id=call_id, role="agent", text=f"turn {i}"))
        await journal._settle_spill_writes()
        print("spilled", journal.stats()["spilled"], flush=True)
        await asyncio.sleep(3600)  # killed here, mid-outage

    asyncio.run(main())
""")


async def test_fresh_journal_replays_the_spill_of_a_crashed_process(db_url, tmp_path):
    spill_dir = tmp_path / "spill"
    call_id = uuid.uuid4()
    dead_dsn = "postgresql://postgres@127.0.0.1:1/nowhere"  # Postgres unreachable for this process
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_WRITER, dead_dsn, str(spill_dir), str(call_id),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.split() == [b"spilled", b"30"]
        # while the writer lives, its spill file is locked: a new journal must leave it alone
        bystander = CallJournal(dead_dsn, spill_dir)
        await bystander.start()
        assert bystander._orphans == []
        await bystander.aclose(timeout=0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    [leftover] = spill_dir.glob("journal-*.jsonl")
    assert len(leftover.read_text().splitlines()) == 30

    journal = CallJournal(db_url, spill_dir)
    await journal.start()
    assert await journal.flush(timeout=30)
    assert journal.stats()["replayed"] == 30
    await journal.aclose()
    assert_exactly_once_in_order(turns_in_db(db_url, call_id), 29)
    assert not list(spill_dir.glob("journal-*.jsonl"))


async def test_replaying_events_already_written_inserts_nothing_twice(db_url, pool, tmp_path):
    spill_dir = tmp_path / "spill"
    call_id = uuid.uuid4()
    events = whole_call(call_id, 20)
    first = CallJournal(db_url, spill_dir)
    await first.start()
    events = [first.record(e) for e in events]  # with their seq numbers, as a spill would hold
    await first.aclose()
    spill_dir.joinpath("journal-0-replayed.jsonl").write_bytes(
        b"".join(encode_event(n, e) for n, e in enumerate(events, 1))
    )
    second = CallJournal(db_url, spill_dir)
    await second.start()
    assert await second.flush(timeout=30)
    await second.aclose()
    snap = await snapshot(pool, call_id=call_id)
    counts = {table: len(rows) for table, rows in snap.items()}
    assert counts == {"calls": 1, "transcript_turns": 20, "tool_calls": 2, "appointments": 0,
                      "leads": 1, "messages": 1, "violations": 1, "call_events": 2}  # fmt: skip


async def test_aclose_flushes_what_is_buffered(db_url, tmp_path):
    call_id = uuid.uuid4()
    journal = CallJournal(db_url, tmp_path / "spill", flush_interval=5.0)
    await journal.start()
    journal.record(CallStarted(call_id=call_id, business=BIZ))
    for i in range(1, 51):
        journal.record(TranscriptTurn(call_id=call_id, role="agent", text=f"turn {i}"))
    await journal.aclose(timeout=10)
    assert_exactly_once_in_order(turns_in_db(db_url, call_id), 50)
    assert not list((tmp_path / "spill").glob("*.jsonl"))


async def test_aclose_during_an_outage_keeps_everything_in_the_spill_file(
    db_url, pg_server, tmp_path
):
    spill_dir = tmp_path / "spill"
    call_id = uuid.uuid4()
    journal = CallJournal(db_url, spill_dir, max_backoff=0.1)
    await journal.start()
    journal.record(CallStarted(call_id=call_id, business=BIZ))
    for i in range(1, 11):
        journal.record(TranscriptTurn(call_id=call_id, role="agent", text=f"turn {i}"))
    assert await journal.flush(timeout=10)
    await asyncio.to_thread(pg_server.stop)
    for i in range(11, 41):
        journal.record(TranscriptTurn(call_id=call_id, role="agent", text=f"turn {i}"))
    await journal.aclose(timeout=0.5)
    [kept] = spill_dir.glob("journal-*.jsonl")
    assert [json.loads(line)["event"]["text"] for line in kept.read_text().splitlines()] == [
        f"turn {i}" for i in range(11, 41)
    ]
    # a late event after close is kept too
    journal.record(CallEnded(call_id=call_id, outcome="abandoned"))

    await asyncio.to_thread(pg_server.start)
    successor = CallJournal(db_url, spill_dir)
    await successor.start()
    assert await successor.flush(timeout=30)
    await successor.aclose()
    assert_exactly_once_in_order(turns_in_db(db_url, call_id), 40)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT outcome FROM calls").fetchall() == [("abandoned",)]
    assert not list(spill_dir.glob("journal-*.jsonl"))


async def test_an_event_postgres_refuses_is_set_aside_not_lost(db_url, pool, tmp_path):
    spill_dir = tmp_path / "spill"
    good, unknown = uuid.uuid4(), uuid.uuid4()
    journal = CallJournal(db_url, spill_dir)
    journal.record(CallStarted(call_id=good, business=BIZ))
    journal.record(TranscriptTurn(call_id=good, role="caller", text="turn 1"))
    journal.record(TranscriptTurn(call_id=unknown, role="caller", text="orphan turn"))
    journal.record(LeadRecord(call_id=good, business=BIZ, score=101))  # score out of range
    journal.record(TranscriptTurn(call_id=good, role="agent", text="turn 2"))
    await journal.start()
    assert await journal.flush(timeout=10)
    await journal.aclose()
    assert_exactly_once_in_order(turns_in_db(db_url, good), 2)
    assert journal.stats()["rejected"] == 2
    [rejected] = spill_dir.glob("rejected-*.jsonl")
    kinds = [json.loads(line)["type"] for line in rejected.read_text().splitlines()]
    assert kinds == ["turn", "lead"]


async def test_a_spill_the_disk_refuses_keeps_the_events_in_memory(db_url, tmp_path, monkeypatch):
    call_id = uuid.uuid4()
    journal = CallJournal(db_url, tmp_path / "spill", max_buffer=5)
    real_append = journal._spill.append
    failures = iter([OSError(28, "No space left on device")])

    def flaky_append(data):
        if (exc := next(failures, None)) is not None:
            raise exc
        real_append(data)

    monkeypatch.setattr(journal._spill, "append", flaky_append)
    journal.record(CallStarted(call_id=call_id, business=BIZ))
    for i in range(1, 21):  # overflows before the writer has even started
        journal.record(TranscriptTurn(call_id=call_id, role="agent", text=f"turn {i}"))
    await journal.start()
    assert await journal.flush(timeout=10)
    await journal.aclose()
    assert journal.stats()["rejected"] == 0
    assert_exactly_once_in_order(turns_in_db(db_url, call_id), 20)


OUTAGE_WRITER = textwrap.dedent("""
    import asyncio, sys, uuid
    from agent.store.journal.events import CallStarted, ToolCallRecord, TranscriptTurn
    from agent.store.journal.writer import CallJournal

    async def main():
        dsn, spill_dir, call_id = sys.argv[1], sys.argv[2], uuid.UUID(sys.argv[3])
        journal = CallJournal(dsn, spill_dir, max_backoff=0.1)
        await journal.start()
        journal.record(CallStarted(call_id=call_id, business="bright-smile-dental"))
        for i in range(1, 4):
            journal.record(TranscriptTurn(call_id=call_id, role="agent", text=f"turn {i}"))
        journal.record(ToolCallRecord(call_id=call_id, name="get_opening_hours", result="{}"))
        print("recorded", flush=True)
        await asyncio.sleep(3600)  # the process ends here however it ends, mid-outage

    asyncio.run(main())
""")


async def test_records_made_during_an_outage_reach_the_disk_before_the_process_ends(db_url, tmp_path):
    """A call's records, buffered far below max_buffer, must not wait for the buffer to fill or for a
    close that a killed job process never reaches."""
    spill_dir = tmp_path / "spill"
    call_id = uuid.uuid4()
    dead_dsn = "postgresql://postgres@127.0.0.1:1/nowhere"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OUTAGE_WRITER, dead_dsn, str(spill_dir), str(call_id),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"recorded\n"
        spilled = await wait_for_spilled(spill_dir, lambda events: len(events) == 5)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert [e.type for e in spilled] == ["call_started", "turn", "turn", "turn", "tool_call"]

    journal = CallJournal(db_url, spill_dir)  # the next journal, with Postgres reachable
    await journal.start()
    assert await journal.flush(timeout=30)
    await journal.aclose()
    assert_exactly_once_in_order(turns_in_db(db_url, call_id), 3)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM tool_calls WHERE call_id = %s", (call_id,)).fetchone() == (1,)
    assert not list(spill_dir.glob("journal-*.jsonl"))



def test_a_spill_file_is_never_taken_for_a_dead_journals_as_it_is_made(tmp_path, monkeypatch):
    """Another process (a journal starting up, the worker's replay) looks for dead journals' files
    just as this one makes its spill file: it must not find the new file unlocked, take it, find it
    empty and delete it, leaving the events to a file nobody can find."""
    from agent.store.journal import spill_file
    from agent.store.journal.spill_file import SpillFile, spill_files

    path = tmp_path / "journal-live.jsonl"
    real_flock = spill_file.fcntl.flock
    looked: list[bool] = []

    def flock(fd: int, op: int) -> None:
        if op == spill_file.fcntl.LOCK_EX and not looked:  # the owner about to lock its new file
            other = SpillFile.claim(path)
            looked.append(other is not None)
            if other is not None:
                other.close()  # empty: a replay deletes it
        real_flock(fd, op)

    monkeypatch.setattr(spill_file.fcntl, "flock", flock)
    event = TranscriptTurn(call_id=uuid.uuid4(), role="caller", text="my number is 503 555 0187")
    own = SpillFile(path)
    own.append_events([(1, event)])
    monkeypatch.setattr(spill_file.fcntl, "flock", real_flock)
    assert looked == [False]  # nothing there to take yet
    assert spill_files(tmp_path) == [path]
    assert SpillFile.claim(path) is None  # locked by its live journal
    own.close()  # the journal ends with the event unwritten: it stays for the next one
    assert [json.loads(line)["event"]["text"] for line in path.read_bytes().splitlines()] == [event.text]
