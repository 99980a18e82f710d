"""Every way a phone call's process can end while Postgres is down keeps the call's records: the caller
hangs up, the agent hangs up, the worker gets SIGTERM mid-call, the job process is killed. Each time
the call row, its transcript turns and its tool calls are in the spill file, and reach Postgres exactly
once when it is back and the next journal starts (replay_spill, as the worker runs it at start-up)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from agent.store.journal.events import CallEnded, CallStarted, Event, ToolCallRecord, TranscriptTurn
from agent.store.journal.writer import replay_spill
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.postgres import TEMPLATE_DB, PgServer
from tests.fixtures.spill import spilled_events, wait_for_spilled
from tests.fixtures.stack import PhoneStack
from tests.phone.harness import Call, place_call
from tests.phone.worker import WorkerFailed, receptionist_worker

PLUMBING = "+15035550100"
AGENT_NAME = "receptionist-outage"
GREETING = "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"
QUESTION = "What are your hours on Saturday?"
ANSWER = "On Saturday we're open {output[hours]}."
HOURS_STEPS = [{"say": GREETING}, {"tool": "get_opening_hours", "args": {"day": "saturday"}}, {"say": ANSWER}]


@pytest.fixture(scope="module")
async def outage_sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def outage_db(pg_cluster: PgServer) -> Iterator[str]:
    name = f"outage_{uuid.uuid4().hex[:8]}"
    dsn = pg_cluster.create_database(name, template=TEMPLATE_DB)
    yield dsn
    if not pg_cluster.running:
        pg_cluster.start()
    pg_cluster.drop_database(name)


def start_worker(stack: PhoneStack, sim: RealtimeSimulator, db: str, spill_dir: Path, log: Path):
    return receptionist_worker(
        stack, agent_name=AGENT_NAME, openai_base_url=sim.base_url, database_url=db, log=log,
        extra_env={"JOURNAL_SPILL_DIR": str(spill_dir)},
    )  # fmt: skip


@pytest.fixture(scope="module")
def spill_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outage-spill")


class OutageWorker:
    """The module's worker: one start for all the tests. A test that ends it (SIGTERM) leaves the
    next test a new one, with the same spill directory."""

    def __init__(self, stack: PhoneStack, sim: RealtimeSimulator, db: str, spill_dir: Path) -> None:
        self.stack, self.sim, self.db, self.spill_dir = stack, sim, db, spill_dir
        self.running = contextlib.ExitStack()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0

    def alive(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.started += 1
            log = self.stack.run_dir / f"outage-worker-{self.started}.log"
            try:
                self.proc = self.running.enter_context(start_worker(self.stack, self.sim, self.db, self.spill_dir, log))
            except WorkerFailed as e:
                pytest.fail(str(e))
        return self.proc


@pytest.fixture(scope="module")
def outage_workers(
    phone_stack: PhoneStack, outage_sim: RealtimeSimulator, outage_db: str, spill_dir: Path
) -> Iterator[OutageWorker]:
    workers = OutageWorker(phone_stack, outage_sim, outage_db, spill_dir)
    with workers.running:
        yield workers


@pytest.fixture
async def outage_worker(outage_workers: OutageWorker) -> subprocess.Popen[bytes]:
    return await asyncio.to_thread(outage_workers.alive)  # the loop serves the simulator meanwhile


def of_call(events: list[Event], caller: str) -> list[Event]:
    """The records of the one call from `caller`."""
    [call_id] = {e.call_id for e in events if isinstance(e, CallStarted) and e.caller_number == caller}
    return records_of(events, call_id)


def records_of(events: list[Event], call_id: uuid.UUID) -> list[Event]:
    return [e for e in events if getattr(e, "call_id", None) == call_id]


def has(kind: type, **fields: object):
    def check(events: list[Event]) -> bool:
        return any(isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items()) for e in events)

    return check


async def talk_until_answered(call: Call, spill_dir: Path) -> None:
    """Greeting heard (its turn spilled), the question asked, the tool's answer spoken and spilled."""
    await call.wait_answered(within=60)
    await wait_for_spilled(spill_dir, has(TranscriptTurn, role="agent", text=GREETING))
    call.say(QUESTION)
    spilled = await wait_for_spilled(spill_dir, has(TranscriptTurn, role="agent", text="On Saturday we're open 8 AM to 12 PM."))
    assert has(ToolCallRecord, name="get_opening_hours")(spilled), spilled


async def assert_replayed_exactly_once(
    pg: PgServer, db: str, spill_dir: Path, call: list[Event], *, by_the_worker: bool = False
) -> None:
    """Postgres back, the next journal replays the spill file (`by_the_worker`: the idle worker's own,
    nothing here replays it): each record of the call lands once."""
    await asyncio.to_thread(pg.start)
    call_id = call[0].call_id
    # the ended job process may hold its file a moment longer; a journal skips a file still held
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while records_of(spilled_events(spill_dir), call_id) and loop.time() < deadline:
        if by_the_worker:
            await asyncio.sleep(0.5)
        else:
            await replay_spill(db, spill_dir)
    with psycopg.connect(db) as conn:
        calls = conn.execute("SELECT count(*), bool_and(ended_at IS NOT NULL) FROM calls WHERE id = %s", (call_id,)).fetchone()
        turns = conn.execute("SELECT role, text FROM transcript_turns WHERE call_id = %s ORDER BY seq", (call_id,)).fetchall()
        tools = conn.execute("SELECT name FROM tool_calls WHERE call_id = %s", (call_id,)).fetchall()
    assert calls == (1, any(isinstance(e, CallEnded) for e in call))
    assert turns == [(e.role, e.text) for e in call if isinstance(e, TranscriptTurn)]
    assert tools == [(e.name,) for e in call if isinstance(e, ToolCallRecord)]
    assert not records_of(spilled_events(spill_dir), call_id)  # replayed, so no longer kept


@pytest.mark.parametrize(
    ("caller", "by_the_worker"),
    [("+15035550141", False), ("+15035550145", True)],
    ids=["replayed-by-the-next-journal", "replayed-by-the-idle-worker"],
)
async def test_caller_hangs_up_while_postgres_is_down(
    phone_stack: PhoneStack, outage_sim: RealtimeSimulator, outage_db: str, pg_server: PgServer,
    outage_worker: subprocess.Popen[bytes], spill_dir: Path, caller: str, by_the_worker: bool,
) -> None:  # fmt: skip
    """`by_the_worker`: no call comes after it and the worker is not restarted, and the owner still
    sees the call once Postgres is back."""
    outage_sim.add_script(DEFAULT_KEY, HOURS_STEPS)
    outage_sim.queue_transcript(QUESTION)
    await asyncio.to_thread(pg_server.stop)
    async with place_call(phone_stack, to=PLUMBING, from_=caller) as call:
        await talk_until_answered(call, spill_dir)
        await call.hangup()
    spilled = of_call(await wait_for_spilled(spill_dir, has(CallEnded)), caller)
    await assert_replayed_exactly_once(pg_server, outage_db, spill_dir, spilled, by_the_worker=by_the_worker)


async def test_agent_hangs_up_while_postgres_is_down(
    phone_stack: PhoneStack, outage_sim: RealtimeSimulator, outage_db: str, pg_server: PgServer,
    outage_worker: subprocess.Popen[bytes], spill_dir: Path,
) -> None:  # fmt: skip
    caller = "+15035550142"
    outage_sim.add_script(
        DEFAULT_KEY, [*HOURS_STEPS, {"tool": "end_call"}, {"say": "Thanks for calling. Goodbye!"}]
    )
    outage_sim.queue_transcript(QUESTION)
    outage_sim.queue_transcript("That's all, thanks.")
    await asyncio.to_thread(pg_server.stop)
    async with place_call(phone_stack, to=PLUMBING, from_=caller) as call:
        await talk_until_answered(call, spill_dir)
        call.say("That's all, thanks.")
        assert await call.wait_ended(within=60) == "far_end_bye"
    spilled = of_call(await wait_for_spilled(spill_dir, has(CallEnded)), caller)
    await assert_replayed_exactly_once(pg_server, outage_db, spill_dir, spilled)


async def test_job_process_killed_while_postgres_is_down(
    phone_stack: PhoneStack, outage_sim: RealtimeSimulator, outage_db: str, pg_server: PgServer,
    outage_worker: subprocess.Popen[bytes], spill_dir: Path,
) -> None:  # fmt: skip
    caller = "+15035550143"
    outage_sim.add_script(DEFAULT_KEY, HOURS_STEPS)
    outage_sim.queue_transcript(QUESTION)
    await asyncio.to_thread(pg_server.stop)
    async with place_call(phone_stack, to=PLUMBING, from_=caller) as call:
        await talk_until_answered(call, spill_dir)
        # the call's job process is the one holding a spill file open (the out-of-memory killer's pick)
        [job] = [
            p for p in psutil.Process(outage_worker.pid).children(recursive=True)
            if any(Path(f.path).parent == spill_dir for f in p.open_files())
        ]  # fmt: skip
        job.send_signal(signal.SIGKILL)
        await asyncio.to_thread(job.wait, 30)
        await call.hangup()
    spilled = of_call(spilled_events(spill_dir), caller)
    assert not has(CallEnded)(spilled)  # nothing ran after the kill
    await assert_replayed_exactly_once(pg_server, outage_db, spill_dir, spilled)


async def test_sigterm_to_the_worker_mid_call_while_postgres_is_down(
    phone_stack: PhoneStack, outage_sim: RealtimeSimulator, outage_db: str, pg_server: PgServer,
    outage_worker: subprocess.Popen[bytes], spill_dir: Path,
) -> None:  # fmt: skip
    """SIGTERM drains: the call in progress goes on to its end, then the worker exits."""
    caller = "+15035550144"
    outage_sim.add_script(DEFAULT_KEY, HOURS_STEPS)
    outage_sim.queue_transcript(QUESTION)
    await asyncio.to_thread(pg_server.stop)
    async with place_call(phone_stack, to=PLUMBING, from_=caller) as call:
        await call.wait_answered(within=60)
        await wait_for_spilled(spill_dir, has(TranscriptTurn, role="agent", text=GREETING))
        outage_worker.send_signal(signal.SIGTERM)
        await talk_until_answered(call, spill_dir)
        await call.hangup()
    assert await asyncio.to_thread(outage_worker.wait, 60) == 0
    spilled = of_call(spilled_events(spill_dir), caller)
    assert has(CallEnded)(spilled)
    await assert_replayed_exactly_once(pg_server, outage_db, spill_dir, spilled)
