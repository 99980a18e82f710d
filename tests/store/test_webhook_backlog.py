"""The backlog of Twilio's requests on its own, with steps standing in for Postgres: what it keeps
while they fail, in which order it writes them, what it sets aside, and what a stopped process leaves
to the next one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import psycopg

from agent.store.webhook_backlog import REFUSED, WebhookBacklog

T0 = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


class Postgres:
    """Steps that write into a list, or fail as a Postgres that is down does."""

    def __init__(self) -> None:
        self.up = True
        self.written: list[tuple[str, str, datetime]] = []

    def step(self, name: str):  # noqa: ANN201
        async def write(form: dict[str, str], at: datetime) -> str:
            if not self.up:
                raise psycopg.OperationalError("connection refused")
            if form.get("Body") == "poison":
                raise ValueError("a request this code cannot write")
            self.written.append((name, form["CallSid"], at))
            return "ok"

        return write


def backlog_of(db: Postgres, directory, **kw) -> WebhookBacklog:
    backlog = WebhookBacklog(directory, **kw)
    for name in ("answered", "message"):
        backlog.register(name, db.step(name))
    return backlog


async def test_while_postgres_is_down_requests_wait_and_land_in_the_order_they_came(tmp_path) -> None:
    db = Postgres()
    backlog = backlog_of(db, tmp_path)
    assert await backlog.write("answered", {"CallSid": "CA1"}, T0) == (True, "ok")
    db.up = False
    # two requests Postgres failed at once may be kept the other way round
    assert await backlog.write("message", {"CallSid": "CA2"}, T0 + timedelta(seconds=2)) == (False, None)
    assert await backlog.write("answered", {"CallSid": "CA2"}, T0 + timedelta(seconds=1)) == (False, None)
    db.up = True
    # one that comes while others wait joins them, though Postgres is up
    assert await backlog.write("message", {"CallSid": "CA3"}, T0 + timedelta(seconds=3)) == (False, None)
    assert backlog.waiting == 3 and [n for n, _, _ in db.written] == ["answered"]
    assert await backlog.replay() == 3
    assert [(n, sid) for n, sid, _ in db.written] == [
        ("answered", "CA1"), ("answered", "CA2"), ("message", "CA2"), ("message", "CA3")]  # fmt: skip
    assert db.written[1][2] == T0 + timedelta(seconds=1)  # each at the time it came
    assert backlog.waiting == 0
    assert await backlog.write("answered", {"CallSid": "CA4"}, T0) == (True, "ok")  # straight in again
    backlog.close()
    assert list(tmp_path.glob("webhook-*.jsonl")) == []


async def test_a_request_that_can_never_be_written_is_set_aside_and_holds_nothing_back(tmp_path) -> None:
    db = Postgres()
    backlog = backlog_of(db, tmp_path)
    db.up = False
    await backlog.write("message", {"CallSid": "CA1", "Body": "poison"}, T0)
    await backlog.write("answered", {"CallSid": "CA2"}, T0 + timedelta(seconds=1))
    await backlog.write("gone", {"CallSid": "CA3"}, T0 + timedelta(seconds=2))  # a step this code lacks
    db.up = True
    assert await backlog.replay() == 3
    assert [(n, sid) for n, sid, _ in db.written] == [("answered", "CA2")]
    refused = [json.loads(line) for line in (tmp_path / REFUSED).read_text().splitlines()]
    assert [(r["form"]["CallSid"], r["error"].split(":")[0]) for r in refused] == [
        ("CA1", "ValueError"), ("CA3", "KeyError")]  # fmt: skip
    assert backlog.waiting == 0


async def test_a_stopped_process_leaves_what_waits_to_the_next_and_a_live_ones_file_is_left_alone(tmp_path) -> None:
    db = Postgres()
    db.up = False
    stopped, live = backlog_of(db, tmp_path), backlog_of(db, tmp_path)
    await stopped.write("answered", {"CallSid": "CA1"}, T0)
    await live.write("answered", {"CallSid": "CA2"}, T0)
    stopped.close()  # Postgres still down: its request stays on disk
    db.up = True
    following = backlog_of(db, tmp_path, retry_s=0.05)
    stop = asyncio.Event()
    run = asyncio.create_task(following.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not db.written:
            assert asyncio.get_running_loop().time() < deadline, "the stopped process's request never landed"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await run
    assert [sid for _, sid, _ in db.written] == ["CA1"]  # the live process's own waits for it
    assert live.waiting == 1 and await live.replay() == 1
    assert [sid for _, sid, _ in db.written] == ["CA1", "CA2"]


async def test_when_the_disk_fails_too_the_request_is_lost_loudly_and_nothing_raises(tmp_path, caplog) -> None:
    db = Postgres()
    db.up = False
    (tmp_path / "file").write_text("")
    backlog = backlog_of(db, tmp_path / "file")
    assert await backlog.write("answered", {"CallSid": "CA1"}, T0) == (False, None)
    assert "Twilio's request (answered, CA1) is lost" in caplog.text
    assert backlog.waiting == 0
