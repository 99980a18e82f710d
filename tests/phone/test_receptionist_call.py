"""The receptionist on a real phone call: sipp dials livekit-sip on loopback, the dispatch rule made by
sip.provision sends the call to our worker (a `dev`-mode process), and the Realtime simulator plays the
model. Asserted on what crosses SIP (200 OK, agent audio, BYE, REFER) and what lands in Postgres."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from agent.brain import load_brain, schedule
from agent.log_privacy import mask_numbers
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.postgres import TEMPLATE_DB, PgServer
from tests.fixtures.recording_audio import channels, turns
from tests.fixtures.stack import ROOT, PhoneStack
from tests.phone.harness import place_call
from tests.phone.worker import WorkerFailed, off_the_loop
from tests.phone.worker import receptionist_worker as run_worker

PLUMBING = "+15035550100"
CALLER = "+15035550187"
AGENT_NAME = "receptionist-e2e"
BRAIN = load_brain(ROOT / "brains" / "plumbing.yaml")
GREETING = "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"


@pytest.fixture(scope="module")
async def phone_sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def phone_db(pg_cluster: PgServer) -> Iterator[str]:
    name = f"phone_{uuid.uuid4().hex[:8]}"
    dsn = pg_cluster.create_database(name, template=TEMPLATE_DB)
    yield dsn
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="module")
def brains_billing_always_open(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped brains, with the plumber's billing office open around the clock: the worker runs on
    the wall clock, and a billing dispute must reach billing whenever the test runs (department hours
    are tested on a pinned clock in tests/tools/test_escalation.py)."""
    out = tmp_path_factory.mktemp("brains")
    for path in (ROOT / "brains").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for department in (data.get("escalation") or {}).get("departments", []):
            if department["name"] == "billing":
                department["hours"] = {day: [{"open": "00:00", "close": "24:00"}] for day in department["hours"]}
        (out / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return out


@pytest.fixture(scope="module")
async def receptionist_worker(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, recordings: Path,
    brains_billing_always_open: Path,
) -> AsyncIterator[Path]:  # fmt: skip
    log = phone_stack.run_dir / "receptionist-worker.log"
    try:
        async with off_the_loop(run_worker(
            phone_stack, agent_name=AGENT_NAME, openai_base_url=phone_sim.base_url, database_url=phone_db, log=log,
            extra_env={"RECORDINGS_DIR": str(recordings), "BRAIN_PATH": str(brains_billing_always_open)},
        )):
            yield log
    except WorkerFailed as e:
        pytest.fail(str(e))


def script(sim: RealtimeSimulator, steps: list[dict], transcripts: list[str]) -> None:
    sim.add_script(DEFAULT_KEY, steps)
    for t in transcripts:
        sim.queue_transcript(t)


def BOOKING_STEPS(slot: datetime) -> list[dict]:  # noqa: N802 (reads as the steps it stands for)
    """The model's side of a booking by phone: into the flow, hold the time, read the name and number
    back, then (once the caller said yes) book; the receptionist reads the code out and asks what
    else."""
    start = slot.strftime("%Y-%m-%dT%H:%M")
    return [
        {"tool": "start_booking"},
        {"tool": "hold_slot", "args": {"service": "drain cleaning", "start": start}},
        {"tool": "read_back_details", "args": {"customer_name": "Dana Whitfield"}},
        {"say": "I have {output[say]}. Is that right?"},
        {"say": "Booking that for you.", "tool": "book_appointment",
         "args": {"customer_name": "Dana Whitfield", "service": "drain cleaning", "start": start}},
        # the booking ends with the booking: the receptionist, with the call back, says it (one reply)
        {"say": "You're booked {output[day]} at {output[time]}. Your code is {output[spell_code]}. "
                "Is there anything else?"},
    ]  # fmt: skip


def first_free_slot() -> datetime:
    now = datetime.now(UTC).astimezone(BRAIN.tz)
    day = now.date()
    service = BRAIN.service("drain cleaning")
    for _ in range(14):
        day += timedelta(days=1)
        slots = schedule.candidate_slots(BRAIN, service, day, now, [])
        if slots:
            return slots[0]
    raise AssertionError("no free slot in two weeks")


async def call_row(dsn: str, caller: str, *, ended: bool = True, within: float = 30) -> dict:
    """The call's row once the journal has written it (and finalised it, when `ended`)."""
    deadline = time.monotonic() + within
    while True:
        async with await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn:
            cur = await conn.execute(
                "SELECT * FROM calls WHERE caller_number = %s ORDER BY started_at DESC LIMIT 1", (caller,)
            )
            row = await cur.fetchone()
        if row is not None and (row["ended_at"] is not None or not ended):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"no {'finalised ' if ended else ''}call row for {caller}: {row}")
        await asyncio.sleep(0.3)


async def wait_booked(dsn: str, caller: str, within: float = 60) -> None:
    """Until an appointment booked on a call from `caller` is in Postgres."""
    deadline = time.monotonic() + within
    sql = "SELECT 1 FROM appointments a JOIN calls c ON c.id = a.call_id WHERE c.caller_number = %s"
    while not await rows(dsn, sql, caller):
        if time.monotonic() > deadline:
            raise AssertionError(f"no booking from {caller} within {within}s")
        await asyncio.sleep(0.3)


async def call_row_with_recording(dsn: str, call_id: uuid.UUID, within: float = 30) -> dict:
    """The call's row once its recording is linked (the worker closes the file after the call row)."""
    deadline = time.monotonic() + within
    while True:
        found = await rows(dsn, "SELECT * FROM calls WHERE id = %s", call_id)
        if found and found[0]["recording_path"] is not None:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"the call's recording was never linked: {found}")
        await asyncio.sleep(0.3)


async def rows(dsn: str, sql: str, *args: object) -> list[dict]:
    async with await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn:
        return await (await conn.execute(sql, args)).fetchall()


async def test_booking_call_then_agent_hangs_up(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, receptionist_worker: Path,
    recordings: Path,
) -> None:
    slot = first_free_slot()
    script(
        phone_sim,
        [
            {"say": GREETING},
            *BOOKING_STEPS(slot),
            {"tool": "end_call"},
            {"say": "Thanks for calling Rose City Plumbing. Goodbye!"},
        ],  # fmt: skip
        [f"Book me a drain cleaning at {slot:%H:%M} on {slot:%A}, I'm Dana Whitfield.", "Yes, that's right.",
         "That's all, thanks."],
    )
    async with place_call(
        phone_stack, to=PLUMBING, from_=CALLER, audio_script=[],
        headers={"X-Twilio-CallSid": "CAe2e0001", "X-Twilio-VerStat": "TN-Validation-Passed-A"},
    ) as call:
        await call.wait_answered(within=60)
        greeted = await call.wait_for_voice(within=30)
        await call.wait_agent_done()  # the greeting, to its end
        call.say(f"Book me a drain cleaning at {slot:%H:%M} on {slot:%A}, I'm Dana Whitfield.")
        await call.wait_sent()
        await call.wait_agent_done(after=time.time())  # the name and number read back
        call.say("Yes, that's right.")
        await call.wait_sent()
        asked = time.time()
        # the booking is in Postgres, then the agent reads it back; the caller waits for the end of that
        await wait_booked(phone_db, CALLER)
        await call.wait_agent_done(after=asked)
        call.say("That's all, thanks.")
        ended = await call.wait_ended(within=60)
    assert call.answered and greeted >= call.invite_sent_at
    assert ended == "far_end_bye", call.sip_trace()[-3000:]
    row = await call_row(phone_db, CALLER)
    assert row["outcome"] == "booked" and row["end_reason"] == "agent_goodbye", row
    assert row["dialed_number"] == PLUMBING and row["twilio_call_sid"] == "CAe2e0001", row
    assert row["sip_call_id"], row
    # the carrier's STIR/SHAKEN verdict crossed SIP and is kept with the call (what caller ID proved)
    assert row["caller_verstat"] == "TN-Validation-Passed-A", row
    booked = await rows(phone_db, "SELECT * FROM appointments WHERE call_id = %s", row["id"])
    assert len(booked) == 1 and booked[0]["customer_phone"] == CALLER, booked
    assert booked[0]["during"].lower == slot
    # the worker's log lines of this call name it, LiveKit's own included
    log_text = await asyncio.to_thread(receptionist_worker.read_text, errors="replace")
    logged = [line for line in log_text.splitlines() if str(row["id"]) in line]
    assert any("livekit.agents" in line for line in logged), logged[-5:]
    # the plumbing brain records: the phone call's two voices are in the worker's file, linked from the row
    row = await call_row_with_recording(phone_db, row["id"])
    path = Path(row["recording_path"])
    assert path.parent == recordings, row
    caller_voice, agent_voice, rate = channels(path)  # FileNotFoundError: linked but not there
    assert abs(row["recording_seconds"] - len(caller_voice) / rate) < 0.05, row["recording_seconds"]
    assert turns(caller_voice, rate) and turns(agent_voice, rate)


ON_CALL, BILLING = (d.transfer_to for d in BRAIN.escalation.departments)
# what the call asks the model to say before the transfer (the brain's say_before)
HANDOFF_LINES = {d.transfer_to: BRAIN.escalation.say_before(d) for d in BRAIN.escalation.departments}


@pytest.mark.parametrize(
    ("caller", "reason", "said", "department"),
    [
        ("+15035550166", "explicit_request", "Can I talk to a real person please?", ON_CALL),
        ("+15035550167", "pricing_dispute", "You overcharged me, I want to talk to someone about my bill.", BILLING),
        ("+15035550168", "emergency", "A pipe burst and the kitchen is flooding!", ON_CALL),
    ],
    ids=["person", "billing-dispute", "emergency"],
)
async def test_transfer_request_sends_refer(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, receptionist_worker: Path,
    caller: str, reason: str, said: str, department: str,
) -> None:  # fmt: skip
    """The reason picks the department, and the REFER that crosses SIP names that department's number."""
    script(
        phone_sim,
        [
            {"say": GREETING},
            {"tool": "escalate_to_human", "args": {"reason": reason, "summary": said}},
            {"say": HANDOFF_LINES[department]},
        ],
        [said],
    )
    async with place_call(phone_stack, to=PLUMBING, from_=caller, audio_script=[]) as call:
        await call.wait_answered(within=60)
        await call.wait_agent_done()
        call.say(said)
        refer_to = await call.wait_refer(within=60)
        await call.wait_ended(within=30)
    assert refer_to == department
    row = await call_row(phone_db, caller)
    assert row["outcome"] == "escalated" and row["end_reason"] == "transferred", row
    assert row["summary"]["escalation"]["destination"] == department, row["summary"]


async def test_caller_hangs_up_mid_sentence(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, receptionist_worker: Path
) -> None:
    caller = "+15035550155"
    script(phone_sim, [{"say": GREETING}, {"say": "(never reached)"}], ["(cut off)"])
    async with place_call(phone_stack, to=PLUMBING, from_=caller, audio_script=[]) as call:
        await call.wait_answered(within=60)
        await call.wait_agent_done()
        call.say("Well, I was wondering whether you could come out on Thursday to look at a leak under")
        await call.wait_sent()  # hung up right as the words ran out, mid-sentence
        await call.hangup()
    row = await call_row(phone_db, caller)
    assert (row["outcome"], row["end_reason"]) == ("abandoned", "caller_hangup"), row
    assert "hung_up_during_greeting" not in row["flag_names"], row  # they heard it, then spoke
    turns = await rows(phone_db, "SELECT role, text FROM transcript_turns WHERE call_id = %s ORDER BY seq", row["id"])
    assert turns and turns[0]["role"] == "agent" and "AI assistant" in turns[0]["text"], turns
    # the agent's job ended because the caller hung up, not later when LiveKit closed the emptied room
    assert await job_ended(receptionist_worker, caller) == "caller hung up"


async def test_caller_hanging_up_during_the_greeting_is_flagged_for_the_owner(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, receptionist_worker: Path
) -> None:
    caller = "+15035550156"
    script(phone_sim, [{"say": GREETING}], [])
    async with place_call(phone_stack, to=PLUMBING, from_=caller, audio_script=[]) as call:
        await call.wait_answered(within=60)
        await call.wait_for_voice()
        await call.hangup()  # a second into "Thanks for calling...": the AI disclosure put them off
    row = await call_row(phone_db, caller)
    assert (row["outcome"], row["end_reason"]) == ("abandoned", "caller_hangup"), row
    assert "hung_up_during_greeting" in row["flag_names"], row
    assert await job_ended(receptionist_worker, caller) == "caller hung up"


async def job_ended(log: Path, caller: str, within: float = 30) -> str:
    """Why the job that took `caller`'s call ended, from the worker's log (its JSON lines)."""
    deadline = time.monotonic() + within
    while True:
        for line in (await asyncio.to_thread(log.read_text)).splitlines():
            # the room is named after the caller, whose number the log masks to its last 4 digits
            if '"process exiting"' in line and f"call-_{mask_numbers(caller)}_" in line:
                return json.loads(line)["reason"]
        if time.monotonic() > deadline:
            raise AssertionError(f"no job for {caller} ended within {within} s")
        await asyncio.sleep(0.3)
