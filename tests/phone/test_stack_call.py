"""End-to-end proof of the phone stack: a real SIP call through livekit-sip to a LiveKit agent.

The agent is tests/phone/tone_agent.py (a tone, no model), so this passes before the receptionist
is wired in and tells a stack problem apart from an agent problem.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from livekit import api

from tests.fixtures.stack import PhoneStack
from tests.phone.harness import CallFailed, find_sip_participant, place_call
from tests.phone.rtp import rms
from tests.phone.worker import WorkerFailed, running_worker

TRUNK_NUMBER = "+15035550100"
CALLER = "+15035550199"
AGENT_NAME = "test-receptionist"


@pytest.fixture(scope="module")
def tone_agent(phone_stack: PhoneStack) -> Iterator[Path]:
    """The tone agent as a worker process registered with the stack; yields its log path."""
    log = phone_stack.run_dir / "tone-agent.log"
    env = {**os.environ, **phone_stack.env(), "TONE_AGENT_NAME": AGENT_NAME}
    argv = [sys.executable, "-m", "tests.phone.tone_agent", "start", "--log-level", "debug"]
    try:
        with running_worker(argv, env=env, log=log, within=60):
            yield log
    except WorkerFailed as e:
        pytest.fail(str(e))


async def route_number_to_agent(
    stack: PhoneStack, *, hangup_after: float | None, agent_name: str = AGENT_NAME
) -> None:
    """The inbound trunk and dispatch rule a real deployment provisions, pointed at the tone agent."""
    await stack.clear_sip_routing()
    async with stack.api() as lk:
        trunk = await lk.sip.create_inbound_trunk(
            api.CreateSIPInboundTrunkRequest(
                trunk=api.SIPInboundTrunkInfo(name="stack test", numbers=[TRUNK_NUMBER])
            )
        )
        await lk.sip.create_dispatch_rule(
            api.CreateSIPDispatchRuleRequest(
                dispatch_rule=api.SIPDispatchRuleInfo(
                    name="stack test",
                    trunk_ids=[trunk.sip_trunk_id],
                    rule=api.SIPDispatchRule(
                        dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix="call-")
                    ),
                    room_config=api.RoomConfiguration(
                        agents=[
                            api.RoomAgentDispatch(
                                agent_name=agent_name,
                                metadata=json.dumps({"hangup_after": hangup_after}),
                            )
                        ]
                    ),
                )
            )
        )


@pytest.fixture
async def routed(phone_stack: PhoneStack, tone_agent: Path) -> AsyncIterator[PhoneStack]:
    yield phone_stack
    await phone_stack.clear_sip_routing()


async def test_call_is_answered_hears_the_agent_and_agent_hangs_up(routed: PhoneStack) -> None:
    await route_number_to_agent(routed, hangup_after=3)
    async with place_call(
        routed, to=TRUNK_NUMBER, from_=CALLER, audio_script=["Hello, is anyone there?"]
    ) as call:
        await call.wait_answered(within=60)
        await call.wait_for_voice(within=20)
        assert await call.wait_ended(within=30) == "far_end_bye", call.sip_trace()

    assert call.answered
    assert call.invite_sent_at is not None and call.first_voice_at is not None
    assert call.first_voice_at >= call.invite_sent_at
    audio = call.received_audio
    assert rms(audio) > 300, "the tone should be clearly audible through PCMU"


async def test_transfer_reaches_the_caller_as_refer(routed: PhoneStack) -> None:
    await route_number_to_agent(routed, hangup_after=None)
    async with place_call(routed, to=TRUNK_NUMBER, from_=CALLER) as call:
        await call.wait_answered(within=60)
        room, caller = await find_sip_participant(routed, call.sip_call_id)
        async with routed.api() as lk:
            await lk.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=room,
                    participant_identity=caller.identity,
                    transfer_to="tel:+15035550142",
                )
            )
        assert await call.wait_refer(within=10) == "tel:+15035550142"
        assert await call.wait_ended(within=30) == "refer", call.sip_trace()


async def test_caller_hangup_leaves_the_room_and_headers_become_attributes(
    routed: PhoneStack,
) -> None:
    await route_number_to_agent(routed, hangup_after=None)
    twilio = {
        "X-Twilio-AccountSid": "AC00000000000000000000000000000001",
        "X-Twilio-CallSid": "CA0001",
    }
    async with place_call(
        routed, to=TRUNK_NUMBER, from_=CALLER, audio_script=[1.0], headers=twilio
    ) as call:
        await call.wait_answered(within=60)
        room, caller = await find_sip_participant(routed, call.sip_call_id)
        await call.hangup()
    assert call.ended_by == "caller_bye"
    assert caller.identity == f"sip_{CALLER}"
    assert caller.attributes["sip.phoneNumber"] == CALLER
    assert caller.attributes["sip.trunkPhoneNumber"] == TRUNK_NUMBER
    assert caller.attributes["sip.twilio.callSid"] == "CA0001"
    assert caller.attributes["sip.twilio.accountSid"] == twilio["X-Twilio-AccountSid"]
    async with routed.api() as lk:
        for _ in range(50):
            people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            if caller.identity not in {p.identity for p in people.participants}:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"{caller.identity} still in {room} after the caller's BYE")


async def test_unrouted_number_rings_unanswered(phone_stack: PhoneStack) -> None:
    # livekit-sip drops an INVITE no trunk matches after 100/180 ("inbound flood") and ignores
    # the CANCEL: the caller hears ringing and nothing else. A misprovisioned number looks like this.
    await phone_stack.clear_sip_routing()
    async with place_call(phone_stack, to="+15035550111", from_=CALLER) as call:
        with pytest.raises(CallFailed):
            await call.wait_answered(within=5)
        await call.hangup(within=3)
    assert not call.answered
    assert call.cancel_sent_at is not None
    assert call.ended_by == "caller_cancel_unanswered", call.sip_trace()


async def test_caller_cancels_while_no_agent_picks_up(phone_stack: PhoneStack) -> None:
    await route_number_to_agent(phone_stack, hangup_after=None, agent_name="nobody-home")
    try:
        async with place_call(phone_stack, to=TRUNK_NUMBER, from_=CALLER) as call:
            with pytest.raises(CallFailed):
                await call.wait_answered(within=5)
            await call.hangup()
        assert not call.answered
        assert call.ended_by == "caller_cancel", call.sip_trace()
    finally:
        await phone_stack.clear_sip_routing()
