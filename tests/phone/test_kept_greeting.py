"""The greeting kept from the model's own audio, over a real phone call: the first call greets through
the model and its audio is kept, for the fleet too; the next caller hears that audio without the model
being asked (on a worker whose disk lacks it, from Postgres), and the model answers them from its
instructions, which say the call opened with the greeting (and what a caller who talked over it heard),
never from an assistant text in its conversation. A greeting whose words were not the brain's is never
kept. Asserted on what crosses SIP, what the simulator was asked and what lands in Postgres."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.brain import load_brain, load_brains
from agent.kept_greeting import LineShelf
from agent.settings import Settings
from agent.voiced_lines import lines_to_voice
from simulator.faults import Fault
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.postgres import TEMPLATE_DB, PgServer
from tests.fixtures.recording_audio import turns
from tests.fixtures.stack import ROOT, PhoneStack
from tests.phone.harness import Call, place_call
from tests.phone.rtp import SAMPLE_RATE
from tests.phone.test_receptionist_call import call_row, rows
from tests.phone.worker import WorkerFailed, off_the_loop, receptionist_worker

PLUMBING, DENTAL = "+15035550100", "+13125550142"
AGENT_NAME = "receptionist-kept-greeting"
GREETING = load_brain(ROOT / "brains" / "plumbing.yaml").greeting_text()
DENTAL_GREETING = load_brain(ROOT / "brains" / "dental.yaml").greeting_text()
ASKS_GREETING = "Greet the caller now"  # the model's instruction for the greeting (greeting_instructions)


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def db(pg_cluster: PgServer) -> Iterator[str]:
    name = f"kept_{uuid.uuid4().hex[:8]}"
    yield pg_cluster.create_database(name, template=TEMPLATE_DB)
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def greetings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("greetings")


@pytest.fixture(scope="module")
async def worker(phone_stack: PhoneStack, sim: RealtimeSimulator, db: str, greetings: Path) -> AsyncIterator[Path]:
    log = phone_stack.run_dir / "kept-greeting-worker.log"
    try:
        async with off_the_loop(receptionist_worker(
            phone_stack, agent_name=AGENT_NAME, openai_base_url=sim.base_url, database_url=db, log=log,
            extra_env={"GREETING_AUDIO": "true", "GREETING_AUDIO_DIR": str(greetings),
                       "RECORDINGS_DIR": str(phone_stack.run_dir / "kept-greeting-recordings")},
        )):  # fmt: skip
            yield log
    except WorkerFailed as e:
        pytest.fail(str(e))


def voiced_seconds(call: Call) -> float:
    """From the first to the last voice the caller has heard so far."""
    pcm = np.frombuffer(call.received_audio, dtype=np.int16).astype(np.float32) / 32768
    spans = turns(pcm, SAMPLE_RATE)
    assert spans, "the caller heard nothing"
    return spans[-1][1] - spans[0][0]


def connections_since(sim: RealtimeSimulator, t: float) -> set[int]:
    """The model connections opened since `t` (an earlier call's may still be closing then)."""
    events = sim.recorded(key=DEFAULT_KEY)
    before = max((e.connection for e in events if e.t < t), default=0)
    return {e.connection for e in events if e.connection > before}


def greetings_asked(sim: RealtimeSimulator, connection: int) -> int:
    return sum(ASKS_GREETING in str(e.event.get("response", {}).get("instructions", ""))
               for e in sim.recorded(key=DEFAULT_KEY, connection=connection, type="response.create"))  # fmt: skip


async def wait_kept(directory: Path, besides: set[Path] = frozenset(), within: float = 15) -> set[Path]:
    """The greetings kept in `directory` other than `besides`, once there is one."""
    deadline = time.monotonic() + within
    while not (kept := set(await asyncio.to_thread(directory.glob, "*.wav")) - besides):
        assert time.monotonic() < deadline, f"no greeting kept in {directory}"
        await asyncio.sleep(0.2)
    return kept


async def test_the_next_caller_hears_the_kept_greeting_without_the_model_being_asked(
    phone_stack: PhoneStack, sim: RealtimeSimulator, db: str, worker: Path, greetings: Path
) -> None:
    sim.add_script(DEFAULT_KEY, [{"say": GREETING}, {"say": "Yes, we come out on weekends."}])
    sim.queue_transcript("Do you come out on weekends?")
    # the first call: the model greets, word for word, and its audio is kept
    started = time.monotonic()
    async with place_call(phone_stack, to=PLUMBING, from_="+15035550111") as first:
        await first.wait_for_voice(within=60)
        await first.wait_agent_done()
        first_heard = voiced_seconds(first)
        await first.hangup()
    [first_conn] = connections_since(sim, started)
    assert greetings_asked(sim, first_conn) == 1
    kept = await wait_kept(greetings)
    assert len(kept) == 1
    # and for the fleet: a replica that never answered this brain, or a pod whose disk went with it, has
    # no file; this worker's is removed, so the next call is such a replica's
    deadline = time.monotonic() + 15  # the row is written after the file
    while not (shared := await rows(db, "SELECT text, voice FROM kept_lines")):
        assert time.monotonic() < deadline, "the kept greeting was not shared with the fleet"
        await asyncio.sleep(0.2)
    [(text, voice)] = [(r["text"], r["voice"]) for r in shared]
    assert text == GREETING and voice == Settings.model_fields["openai_voice"].default
    for path in kept:
        path.unlink()

    # the second call: the greeting is heard, and the model was never asked for it
    started = time.monotonic()
    async with place_call(phone_stack, to=PLUMBING, from_="+15035550112") as second:
        await second.wait_for_voice(within=60)
        await second.wait_agent_done()
        second_heard = voiced_seconds(second)
        asked_before = len(sim.asked)
        second.say("Do you come out on weekends?")
        await second.wait_sent()
        await second.wait_agent_done(after=time.time())
        await second.hangup()
    [second_conn] = connections_since(sim, started)
    assert greetings_asked(sim, second_conn) == 0
    assert await wait_kept(greetings) == kept  # written again from the fleet's copy
    # the same audio, to the packet's length: the kept file, not a new rendering
    assert abs(second_heard - first_heard) < 0.2, (first_heard, second_heard)
    # the model answered the caller's turn, alone in its conversation: no assistant text before it (which
    # can turn the real model to answering in text); its instructions say the call opened with the greeting
    reply = next(a for a in sim.asked[asked_before:] if a.said == "Yes, we come out on weekends.")
    assert [i["role"] for i in reply.items if i["role"] in ("assistant", "user")] == ["user"], reply.items
    told = [e.event["session"]["instructions"] for e in sim.recorded(key=DEFAULT_KEY, connection=second_conn,
            type="session.update") if "instructions" in e.event.get("session", {})]  # fmt: skip
    assert told and f'Every call opens with your greeting: "{GREETING}"' in told[-1]
    # the call's record has the greeting as the agent's first turn, as any call does
    row = await call_row(db, "+15035550112")
    said = await rows(db, "SELECT role, text FROM transcript_turns WHERE call_id = %s ORDER BY seq", row["id"])
    assert [(t["role"], t["text"]) for t in said][:2] == [("agent", GREETING), ("caller", "Do you come out on weekends?")]


async def test_a_greeting_not_in_the_brains_words_or_behind_the_hold_line_is_not_kept(
    phone_stack: PhoneStack, sim: RealtimeSimulator, worker: Path, greetings: Path
) -> None:
    before = set(await asyncio.to_thread(greetings.glob, "*.wav"))
    said = DENTAL_GREETING.replace("How can I help", "What can I do for you")
    assert said != DENTAL_GREETING
    sim.add_script(DEFAULT_KEY, [{"say": said}, {"say": DENTAL_GREETING}, {"say": DENTAL_GREETING}])
    # other words; the right words with their audio 2 s late, so the caller first heard the hold line
    # (HOLD_AFTER 0.7 s) in the greeting's own audio; the right words in time
    for caller, late in (("+13125550171", False), ("+13125550172", True), ("+13125550173", False)):
        if late:  # the key's next response.create is this call's greeting
            n = len(sim.recorded(key=DEFAULT_KEY, type="response.create")) + 1
            sim.set_fault(DEFAULT_KEY, Fault(kind="late_audio", at_response=n, delay_s=2.0))
        started = time.monotonic()
        try:
            async with place_call(phone_stack, to=DENTAL, from_=caller) as call:
                await call.wait_for_voice(within=60)
                await call.wait_agent_done()
                await call.hangup()
        finally:
            sim.set_fault(DEFAULT_KEY, None)
        if late:
            assert sim.faults_fired(DEFAULT_KEY), "the greeting's audio was not late"
        # nothing kept before, so each caller's greeting is the model's
        [conn] = connections_since(sim, started)
        assert greetings_asked(sim, conn) == 1, caller
    # only the third greeting was the brain's words and the model's audio alone, and it is kept
    assert len(await wait_kept(greetings, besides=before)) == 1


async def test_a_caller_who_talks_over_the_kept_greeting_stops_it_and_the_model_hears_how_far_it_got(
    phone_stack: PhoneStack, sim: RealtimeSimulator, db: str, worker: Path, greetings: Path
) -> None:
    reply = "I can get someone out today. What's the address?"
    turn = "Hi, I need someone to look at a leak under my sink today, it's dripping everywhere."
    if not await asyncio.to_thread(kept_shelf(greetings).path.exists):  # run alone: a first call keeps it
        sim.add_script(DEFAULT_KEY, [{"say": GREETING}])
        async with place_call(phone_stack, to=PLUMBING, from_="+15035550113") as first:
            await first.wait_agent_done(within=60)
            await first.hangup()
        await wait_kept(greetings)
    kept = kept_shelf(greetings).load()
    assert kept is not None
    sim.add_script(DEFAULT_KEY, [{"say": reply}])
    sim.queue_transcript(turn)
    started = time.monotonic()
    async with place_call(phone_stack, to=PLUMBING, from_="+15035550114") as call:
        await call.wait_for_voice(within=60)
        await asyncio.sleep(2.0)  # two seconds into the greeting
        call.say(turn)
        await call.wait_sent()
        await call.wait_agent_done(after=time.time())
        await call.hangup()
    [conn] = connections_since(sim, started)
    assert greetings_asked(sim, conn) == 0
    answered = next(a for a in sim.asked if a.said == reply)
    assert [i["role"] for i in answered.items if i["role"] in ("assistant", "user")] == ["user"], answered.items
    # the call's record has the greeting as far as the caller heard it, cut short
    # (in time order: the greeting's end is confirmed when the caller's turn is, and either may be
    # written first, as with the model's own greeting)
    row = await call_row(db, "+15035550114")
    said = await rows(db, "SELECT role, text, interrupted FROM transcript_turns WHERE call_id = %s"
                      " ORDER BY started_at", row["id"])  # fmt: skip
    assert [t["role"] for t in said] == ["agent", "caller", "agent"], said
    heard = said[0]["text"]
    assert said[0]["interrupted"], said
    assert heard and GREETING.startswith(heard.rstrip(" .,")) and len(heard) < len(GREETING) / 2, heard
    # and the model was told what the caller heard of it
    told = [e for e in sim.recorded(key=DEFAULT_KEY, connection=conn, type="session.update")
            if "cut short" in e.event.get("session", {}).get("instructions", "")]  # fmt: skip
    assert told and f'they heard only: "{heard}"' in told[0].event["session"]["instructions"]


def kept_shelf(directory: Path) -> LineShelf:
    """Where the worker keeps the plumber's greeting: its settings' model and voice are the defaults."""
    fields = Settings.model_fields
    return LineShelf(directory, GREETING, fields["openai_realtime_model"].default, fields["openai_voice"].default)


async def test_the_fleets_first_caller_hears_the_greeting_the_model_read_as_the_worker_started(
    phone_stack: PhoneStack, sim: RealtimeSimulator, pg_cluster: PgServer, tmp_path: Path
) -> None:
    """A fleet that has never answered a call (its own database and disk): the worker has the model read
    the brain's greeting and model-down lines as it starts, so even its first caller hears the greeting
    without the model being asked. Runs last: its worker takes the numbers' routing."""
    brains = tmp_path / "brains"
    brains.mkdir()
    (brains / "plumbing.yaml").symlink_to(ROOT / "brains" / "plumbing.yaml")
    lines = lines_to_voice(load_brains(brains).all)
    assert lines[0] == GREETING
    sim.add_script(DEFAULT_KEY, [{"say": text} for text in lines])
    name = f"voiced_{uuid.uuid4().hex[:8]}"
    fresh = pg_cluster.create_database(name, template=TEMPLATE_DB)
    try:
        async with off_the_loop(receptionist_worker(
            phone_stack, agent_name=f"{AGENT_NAME}-voiced", openai_base_url=sim.base_url, database_url=fresh,
            log=tmp_path / "worker.log",
            extra_env={"GREETING_AUDIO": "true", "VOICED_LINES": "true", "BRAIN_PATH": str(brains),
                       "GREETING_AUDIO_DIR": str(tmp_path / "greetings")},
        )):  # fmt: skip
            deadline = time.monotonic() + 60
            while len(kept := await rows(fresh, "SELECT text FROM kept_lines")) < len(lines):
                assert time.monotonic() < deadline, f"lines kept at start: {kept}"
                await asyncio.sleep(0.2)
            assert {r["text"] for r in kept} == set(lines)
            started = time.monotonic()
            async with place_call(phone_stack, to=PLUMBING, from_="+15035550115") as call:
                await call.wait_for_voice(within=60)
                await call.wait_agent_done()
                await call.hangup()
            [conn] = connections_since(sim, started)
            assert greetings_asked(sim, conn) == 0
            row = await call_row(fresh, "+15035550115")
            said = await rows(fresh, "SELECT role, text FROM transcript_turns WHERE call_id = %s", row["id"])
            assert [(t["role"], t["text"]) for t in said] == [("agent", GREETING)]
    finally:
        pg_cluster.drop_database(name)
