"""The warm transfer on real phone legs: sipp calls the plumber about a bill, the agent rings billing (a
sipp phone behind livekit-sip's outbound trunk, made by sip.provision), briefs them, and leaves the
caller and billing talking; when billing is busy the caller is transferred cold (REFER) instead.
Asserted on what crosses SIP (INVITE to billing's number, audio both ways, REFER), what the model was
asked to say (the simulator's record) and the call's row in Postgres."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from livekit import api

from agent.warm_transfer import PERSON
from simulator.server import RealtimeSimulator
from tests.fixtures.stack import ROOT, PhoneStack, free_port
from tests.phone.harness import find_sip_participant, place_call, receive_call
from tests.phone.rtp import SAMPLE_RATE
from tests.phone.test_receptionist_call import GREETING, PLUMBING, call_row, phone_db, script  # noqa: F401
from tests.phone.worker import WorkerFailed, off_the_loop
from tests.phone.worker import receptionist_worker as run_worker

AGENT_NAME = "receptionist-warm"
BILLING = "+15035550192"  # brains/plumbing.yaml's billing department
DISPUTE = "You charged me twice for the drain cleaning, I want to talk to someone about my bill."
SUMMARY = "Dana Whitfield was charged twice for one drain cleaning and wants the second charge refunded."
BRIEFING = "Hi, this is the Rose City Plumbing assistant with a billing caller; putting them through now."


@pytest.fixture(scope="module")
async def phone_sim() -> AsyncIterator[RealtimeSimulator]:
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        yield sim


@pytest.fixture(scope="module")
def billing_port() -> int:
    """Where billing's phone answers: the outbound trunk's address, one sipp per test."""
    return free_port(tcp=False, udp=True)


@pytest.fixture(scope="module")
def brains_billing_warm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped brains, with the plumber's billing open around the clock (the worker runs on the
    wall clock) and taking transfers warm."""
    out = tmp_path_factory.mktemp("brains")
    for path in (ROOT / "brains").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for department in (data.get("escalation") or {}).get("departments", []):
            if department["name"] == "billing":
                department["hours"] = {day: [{"open": "00:00", "close": "24:00"}] for day in department["hours"]}
                department["transfer"] = "warm"
        (out / path.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return out


@pytest.fixture(scope="module")
async def warm_worker(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, brains_billing_warm: Path,  # noqa: F811
    billing_port: int,
) -> AsyncIterator[Path]:  # fmt: skip
    log = phone_stack.run_dir / "warm-transfer-worker.log"
    env = {
        "BRAIN_PATH": str(brains_billing_warm),
        # sip.provision makes the outbound trunk to billing's phone; sipp speaks UDP
        "SIP_OUTBOUND_ADDRESS": f"127.0.0.1:{billing_port}",
        "SIP_TRANSPORT": "udp",
        "WARM_TRANSFER_RING_SECONDS": "3",  # billing away from the phone: the caller waits this long
    }
    try:
        async with off_the_loop(run_worker(
            phone_stack, agent_name=AGENT_NAME, openai_base_url=phone_sim.base_url, database_url=phone_db,
            log=log, extra_env=env,
        )):  # fmt: skip
            yield log
    except WorkerFailed as e:
        pytest.fail(str(e))


def escalation_script(sim: RealtimeSimulator, briefing: str = BRIEFING) -> None:
    script(
        sim,
        [
            {"say": GREETING},
            {"tool": "escalate_to_human", "args": {"reason": "pricing_dispute", "summary": SUMMARY}},
            {"say": "One moment, I'm connecting you with our billing office."},  # the hand-off line
            # the second session, in the side room with billing
            {"say": briefing},
        ],
        [DISPUTE],
    )


def tone(path: Path, hz: float, seconds: float = 1.0) -> Path:
    """A WAV of a pure tone: a sound that neither speech nor the hold music contains."""
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes((np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes())
    return path


def tone_heard(pcm: bytes, hz: float) -> bool:
    """Whether a 100 ms stretch of `pcm` is (nearly all) the pure tone `hz`; speech and the hold music
    put at most a fifth of their energy that close to any one frequency."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(float)
    window = SAMPLE_RATE // 10
    freqs = np.fft.rfftfreq(window, 1 / SAMPLE_RATE)
    near = (freqs > hz - 30) & (freqs < hz + 30)
    for start in range(0, len(samples) - window, window):
        power = np.abs(np.fft.rfft(samples[start : start + window] * np.hanning(window))) ** 2
        if power.sum() > 1e3 * window and power[near].sum() > 0.8 * power.sum():
            return True
    return False


async def wait_in_room(stack: PhoneStack, room: str, identity: str, within: float = 60) -> None:
    """Until `identity` is a participant of `room`."""
    deadline = time.monotonic() + within
    async with stack.api() as lk:
        while True:
            people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            if any(p.identity == identity for p in people.participants):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{identity} never joined {room}: {[p.identity for p in people.participants]}")
            await asyncio.sleep(0.2)


async def test_warm_transfer_briefs_billing_then_leaves_them_with_the_caller(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, warm_worker: Path,  # noqa: F811
    billing_port: int, tmp_path: Path,
) -> None:  # fmt: skip
    caller = "+15035550171"
    escalation_script(phone_sim)
    # each says something the other must not hear before the briefing is over: a tone of their own
    billing_hello, caller_on_hold = tone(tmp_path / "billing.wav", 1300), tone(tmp_path / "caller.wav", 2100)
    async with (
        # billing says hello as a person does, a moment after picking up
        receive_call(port=billing_port, audio_script=[0.5, billing_hello], work_dir=tmp_path) as billing,
        place_call(phone_stack, to=PLUMBING, from_=caller) as call,
    ):
        await call.wait_answered(within=60)
        await call.wait_agent_done()
        call.say(DISPUTE)
        # billing's phone rings with billing's number, answers, and hears the briefing
        await billing.wait_answered(within=60)
        call.say(caller_on_hold)
        await billing.wait_for_voice(within=30)
        await asyncio.gather(call.wait_sent(), billing.wait_sent())
        briefing_over = (await call_row(phone_db, caller, ended=False))["ended_at"] is not None
        room, _ = await find_sip_participant(phone_stack, call.sip_call_id)
        await wait_in_room(phone_stack, room, PERSON)
        # the agent has left: the call is finalised while the caller is still on the line
        row = await call_row(phone_db, caller)
        assert call.ended_by is None, call.sip_trace()[-3000:]
        heard_before = (call.received_audio, billing.received_audio)
        # now the caller hears billing, and billing the caller
        spoke = time.time()
        billing.say("Hi Dana, this is Sam in billing. Let me look at that double charge.")
        await call.wait_agent_done(after=spoke)
        spoke = time.time()
        call.say("Thank you, it was the invoice from last Tuesday.")
        await billing.wait_agent_done(after=spoke)
        await call.hangup()
        # the caller hanging up ends billing's leg too
        assert await billing.wait_ended(within=30) == "far_end_bye"
    assert not briefing_over, "the tones ended after the briefing: the test proves nothing about hold"
    assert not tone_heard(heard_before[0], 1300), "the caller heard billing before billing was briefed"
    assert not tone_heard(heard_before[1], 2100), "billing heard the caller during the briefing"
    assert billing.to == BILLING, billing.sip_trace()[-3000:]
    assert row["outcome"] == "escalated" and row["end_reason"] == "transferred", row
    escalation = row["summary"]["escalation"]
    assert escalation["destination"] == f"tel:{BILLING}" and escalation["transfer"] == "warm", escalation
    # the owner reads what billing was told: the briefing is in the call's record
    assert escalation["briefing"] == BRIEFING, escalation
    # what the model was asked to tell billing: who, why, and what the caller needs
    asked = [e["response"].get("instructions") or "" for e in phone_sim.client_events("response.create")]
    briefing = [text for text in asked if SUMMARY in text]
    assert briefing and caller in briefing[0] and "billing" in briefing[0], asked


@pytest.mark.parametrize(
    ("answer", "caller", "billing_end"),
    [
        ("busy", "+15035550172", "rejected"),
        # billing rings past WARM_TRANSFER_RING_SECONDS and livekit-sip gives up on it
        ("never", "+15035550174", "unanswered"),
    ],
)
async def test_billing_busy_or_not_answering_in_time_transfers_cold(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, warm_worker: Path,  # noqa: F811
    billing_port: int, tmp_path: Path, answer: str, caller: str, billing_end: str,
) -> None:  # fmt: skip
    escalation_script(phone_sim)
    async with (
        receive_call(port=billing_port, answer=answer, work_dir=tmp_path) as billing,
        place_call(phone_stack, to=PLUMBING, from_=caller) as call,
    ):
        await call.wait_answered(within=60)
        await call.wait_agent_done()
        call.say(DISPUTE)
        assert await billing.wait_ended(within=60) == billing_end, billing.sip_trace()[-3000:]
        refer_to = await call.wait_refer(within=60)
        await call.wait_ended(within=30)
    assert billing.to == BILLING
    assert refer_to == f"tel:{BILLING}"
    row = await call_row(phone_db, caller)
    assert row["outcome"] == "escalated" and row["end_reason"] == "transferred", row
    escalation = row["summary"]["escalation"]
    assert escalation["transfer"] == "cold" and escalation["warm_failed"], escalation


async def test_caller_hanging_up_on_hold_ends_billings_leg_too(
    phone_stack: PhoneStack, phone_sim: RealtimeSimulator, phone_db: str, warm_worker: Path,  # noqa: F811
    billing_port: int, tmp_path: Path,
) -> None:  # fmt: skip
    caller = "+15035550173"
    # a briefing long enough that the caller is still on hold when LiveKit says they left: when
    # livekit-sip drops its connection instead of leaving the room, that takes livekit-server ~20 s
    escalation_script(phone_sim, briefing=" ".join([BRIEFING] * 8))
    async with (
        receive_call(port=billing_port, work_dir=tmp_path) as billing,
        place_call(phone_stack, to=PLUMBING, from_=caller) as call,
    ):
        await call.wait_answered(within=60)
        await call.wait_agent_done()
        call.say(DISPUTE)
        await billing.wait_answered(within=60)
        await call.hangup()
        # billing is not left on a line with nobody at the other end
        assert await billing.wait_ended(within=30) == "far_end_bye", billing.sip_trace()[-3000:]
    row = await call_row(phone_db, caller)
    assert row["end_reason"] != "transferred", row
    # the report says the caller hung up while billing was called, not that anyone took them
    assert row["summary"]["escalation"]["result"] == "caller_left", row["summary"]["escalation"]
    assert row["summary"]["flows"]["escalation"]["steps"][:3] == ["requested", "handoff_line", "transferring"]
    assert "accepted" not in row["summary"]["flows"]["escalation"]["steps"]
