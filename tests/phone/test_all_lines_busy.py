"""A caller who rings while every worker is full, and still finds it full after OVERFLOW_AFTER_SECONDS,
leaves a message instead of hearing busy, over real SIP (sipp, livekit-sip, livekit-server): a worker
with a free overflow slot answers them without the model (agent/overflow.py). Without it the caller
rings out the trunk's 30 s and hears SIP 486 (tests/phone/test_waiting_calls.py has the caller a slot
frees in time for)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from agent.brain.schema.calls import ModelDown
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.postgres import TEMPLATE_DB, PgServer
from tests.fixtures.stack import PhoneStack, free_port
from tests.phone.harness import find_sip_participant, place_call
from tests.phone.test_receptionist_call import GREETING, PLUMBING, call_row, rows
from tests.phone.worker import WorkerFailed, off_the_loop, receptionist_worker

AGENT_NAME = "receptionist-all-busy"
OVERFLOW_AFTER_S = 12  # well past the 3 s a waiting caller is first dispatched again after


@pytest.fixture(scope="module")
async def busy_sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def busy_db(pg_cluster: PgServer) -> Iterator[str]:
    name = f"all_busy_{uuid.uuid4().hex[:8]}"
    yield pg_cluster.create_database(name, template=TEMPLATE_DB)
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def voicemail_dir(phone_stack: PhoneStack) -> Path:
    return (phone_stack.run_dir / f"voicemail-{uuid.uuid4().hex[:6]}").resolve()


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
async def busy_worker(
    phone_stack: PhoneStack, busy_sim: RealtimeSimulator, busy_db: str, voicemail_dir: Path, metrics_port: int
) -> AsyncIterator[Path]:
    """The whole fleet: one worker with one call slot and one slot for a message."""
    log = phone_stack.run_dir / "all-busy-worker.log"
    try:
        async with off_the_loop(receptionist_worker(
            phone_stack, agent_name=AGENT_NAME, openai_base_url=busy_sim.base_url, database_url=busy_db,
            log=log, extra_env={"WORKER_MAX_CALLS": "1", "WORKER_OVERFLOW_CALLS": "1",
                                "OVERFLOW_AFTER_SECONDS": str(OVERFLOW_AFTER_S),
                                "VOICEMAIL_DIR": str(voicemail_dir), "METRICS_PORT": str(metrics_port)},
        )):  # fmt: skip
            yield log
    except WorkerFailed as e:
        pytest.fail(str(e))


async def busy_calls_counted(port: int, within: float = 15) -> float:
    """The worker's receptionist_all_lines_busy_calls_total for the plumber, once it is counted."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
            found = re.search(r'^receptionist_all_lines_busy_calls_total\{business="Rose City Plumbing"\} (\S+)$',
                              text, re.M)  # fmt: skip
            if found or time.monotonic() > deadline:
                return float(found.group(1)) if found else 0.0
            await asyncio.sleep(0.5)


async def test_a_caller_the_full_fleet_cannot_answer_leaves_a_message(
    phone_stack: PhoneStack, busy_sim: RealtimeSimulator, busy_db: str, busy_worker: Path, voicemail_dir: Path,
    metrics_port: int,
) -> None:
    first, second = "+15035550171", "+15035550172"
    # the first caller keeps talking while the second waits, so their call ends only with their hang-up
    busy_sim.add_script(DEFAULT_KEY, [{"say": GREETING}] + [{"say": "Take your time."}] * 4)
    talking = [3.0, "I am still looking for the invoice, one moment.", 8.0, "Still looking, sorry.",
               8.0, "Almost there, bear with me."]  # fmt: skip
    async with place_call(phone_stack, to=PLUMBING, from_=first, audio_script=talking) as held:
        await held.wait_answered(within=60)
        await held.wait_for_voice()
        async with place_call(phone_stack, to=PLUMBING, from_=second, audio_script=[]) as waiting:
            await find_sip_participant(phone_stack, waiting.sip_call_id, within=30)  # in LiveKit, ringing
            # the held call goes on; the second caller rings past OVERFLOW_AFTER_SECONDS, then hears
            # the busy line and the tone, and says their message
            await waiting.wait_answered(within=25)  # within the trunk's 30 s of ringing
            assert waiting.answered_at is not None and waiting.invite_sent_at is not None
            assert waiting.answered_at - waiting.invite_sent_at >= OVERFLOW_AFTER_S  # not a free slot's answer
            assert held.ended_by is None  # the caller the worker had is still on the line
            tone_done = await waiting.wait_agent_done(quiet_s=1.0, within=40)
            waiting.say("Hi, this is Dana Whitfield. My kitchen sink is leaking, please call me back.")
            # their silence ends the message; the goodbye, then our side hangs up
            assert await waiting.wait_ended(within=90) == "far_end_bye", waiting.sip_trace()
            assert waiting.rtp is not None and (waiting.rtp.last_voice_at or 0) > tone_done  # the goodbye
        await held.hangup()

    row = await call_row(busy_db, second)
    assert (row["outcome"], row["end_reason"]) == ("message", "all_lines_busy"), row
    assert row["answered_at"] is not None and row["business"] == "Rose City Plumbing", row
    [message] = await rows(busy_db, "SELECT * FROM messages WHERE call_id = %s", row["id"])
    assert message["body"].startswith("Voicemail (") and "every line was busy" in message["body"], message
    assert message["phone"] == second and message["callback_requested"], message
    path = Path(message["audio_path"])
    assert path.parent == voicemail_dir, message
    with wave.open(str(path)) as w:
        assert w.getnframes() / w.getframerate() >= 3.0  # the caller's sentence, not only silence
    # what the caller heard is on the transcript: the busy line (the model was never asked)
    said = [t["text"] for t in await rows(busy_db, "SELECT text FROM transcript_turns WHERE call_id = %s ORDER BY seq", row["id"])]
    assert said[0] == ModelDown().busy_line, said
    # the held caller's call was never disturbed; one agent answered each caller
    assert (await call_row(busy_db, first))["end_reason"] == "caller_hangup"
    assert len(await rows(busy_db, "SELECT id FROM calls WHERE caller_number = %s", second)) == 1
    # and the operator sees the fleet was too small for that moment
    assert await busy_calls_counted(metrics_port) == 1
