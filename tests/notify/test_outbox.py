"""The outbox: one row per notification however often the journal replays it, delivery with
backoff until the attempts run out, and the operator's `receptionist outbox` commands."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from agent.cli import main
from agent.notify.sender import DeliveryFailed, OutboxSender
from agent.store.journal.encoding import encode_event
from agent.store.journal.events import CallStarted
from agent.store.journal.writer import CallJournal
from agent.store.outbox import attempts_of, list_notifications
from tests.notify.conftest import notification, queue


class RecordingChannel:
    """Stands in for a target only where the test is about the outbox, not about a channel."""

    def __init__(self, down: bool = False, attempts_awaited: int = 0) -> None:
        self.down = down
        self.delivered: list[str] = []
        self.attempts = 0
        self.awaited = asyncio.Event()
        self._attempts_awaited = attempts_awaited

    async def deliver(self, n) -> None:
        self.attempts += 1
        if self.attempts == self._attempts_awaited:
            self.awaited.set()
        if self.down:
            raise DeliveryFailed("target down")
        self.delivered.append(n.key)

    async def aclose(self) -> None:
        pass


def outbox_rows(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT key, status, attempts FROM outbox ORDER BY id").fetchall()


async def test_a_replayed_journal_queues_each_notification_once(db_url, tmp_path):
    spill_dir = tmp_path / "spill"
    call_id = uuid.uuid4()
    events = [CallStarted(call_id=call_id, business="Rose City Plumbing")] + [
        notification("webhook", "https://hooks.example/x", call_id=call_id, n=i) for i in range(3)
    ]
    await queue(db_url, spill_dir, events)
    # the same events again, as a spill file left by a journal that died before marking them written
    spill_dir.joinpath("journal-0-replayed.jsonl").write_bytes(
        b"".join(encode_event(n, e) for n, e in enumerate(events, 1))
    )
    journal = CallJournal(db_url, spill_dir)
    await journal.start()
    assert await journal.flush(timeout=30)
    await journal.aclose()
    assert journal.stats()["replayed"] == 4
    rows = outbox_rows(db_url)
    assert sorted(r[0] for r in rows) == sorted(e.key for e in events[1:])
    assert {r[1] for r in rows} == {"pending"}


async def test_a_target_that_stays_down_is_retried_then_dead_with_every_error_recorded(
    db_url, pool, tmp_path
):
    await queue(db_url, tmp_path / "spill", [notification("webhook", "https://hooks.example/x")])
    channel = RecordingChannel(down=True, attempts_awaited=3)
    sender = OutboxSender(pool, {"webhook": channel}, max_attempts=3, backoff_s=0.01,
                          backoff_max_s=0.02, poll_s=0.01)  # fmt: skip
    stop = asyncio.Event()
    runner = asyncio.create_task(sender.run(stop))
    async with asyncio.timeout(30):
        await channel.awaited.wait()
    stop.set()
    await runner  # the round that made the third attempt has committed
    assert channel.attempts == 3  # dead rows are not attempted again
    [dead] = await list_notifications(pool, status="dead")
    assert dead.attempts == 3 and dead.last_error == "target down"
    attempts = await attempts_of(pool, dead.id)
    assert [(a["attempt"], a["error"], a["sender"]) for a in attempts] == [
        (i, "target down", sender.name) for i in (1, 2, 3)
    ]
    assert channel.delivered == []


def test_backoff_doubles_from_the_first_wait_up_to_the_cap() -> None:
    sender = OutboxSender(None, {}, backoff_s=5, backoff_max_s=300)  # type: ignore[arg-type]
    waits = [sender.backoff(n).total_seconds() for n in range(1, 10)]
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_outbox_commands_list_dead_retry_and_refuse_bad_input(
    db_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", db_url)
    asyncio.run(queue(db_url, tmp_path / "spill", [notification("sms", "+15035550177")]))
    with psycopg.connect(db_url) as conn:
        [(row_id,)] = conn.execute(
            "UPDATE outbox SET status = 'dead', attempts = 12, last_error = 'Twilio 400 error 21211'"
            " RETURNING id"
        ).fetchall()
    assert main(["outbox", "dead"]) == 0
    out = capsys.readouterr().out
    assert f"{row_id}  dead" in out and "+15035550177" in out and "Twilio 400 error 21211" in out

    assert main(["outbox", "retry", str(row_id)]) == 0
    out = capsys.readouterr().out
    assert f"notification {row_id} (urgent_message by sms) is queued again" in out
    assert [r[1:] for r in outbox_rows(db_url)] == [("pending", 0)]
    assert main(["outbox", "dead"]) == 0
    assert capsys.readouterr().out == "no dead notifications\n"

    assert main(["outbox", "retry", "x1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the notification's id" in err
    assert main(["outbox", "retry", str(row_id + 1000)]) == 2
    assert capsys.readouterr().err == f"receptionist: no notification with id {row_id + 1000}\n"
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE outbox SET status = 'sent'")
    assert main(["outbox", "retry", str(row_id)]) == 2
    assert "already sent" in capsys.readouterr().err
    assert main(["outbox", "list"]) == 0
    assert f"{row_id}  sent" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["outbox", "list"], ["notify", "run", "--once"]])
def test_outbox_commands_without_a_database_are_one_line(argv, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/none")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect to Postgres at 127.0.0.1:1/none" in err
    assert "pw" not in err


def test_notify_run_in_process_leaves_the_callers_sigterm_handler(monkeypatch, capsys):
    """`notify run` stops cleanly on SIGTERM while it starts, but only for its own run: a program that
    calls it in-process (a test suite, a scheduler) keeps its own SIGTERM handler afterwards."""
    import signal

    def ours(*_):
        return None

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/none")
        assert main(["notify", "run", "--once"]) == 2
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, previous)
