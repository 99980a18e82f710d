"""A caller over their hourly limit who rings a full fleet: hung up without a message, as a call over
the limit takes none, and the owner is not told of them (the limit is there to stop such a caller).
The message itself, over real SIP: tests/phone/test_all_lines_busy.py."""

from __future__ import annotations

from agent.brain import load_brain
from agent.brain.schema.notify import Notify
from agent.call_end import finish_call
from agent.fallback_audio import FallbackAudio
from agent.notify.at_once import at_once
from agent.overflow import BusyLine
from agent.settings import load_settings
from simulator.line import SimulatedLine
from tests.tools.conftest import PLUMBING, pinned_call


async def test_a_rate_limited_caller_to_a_busy_fleet_is_hung_up_and_not_told_of() -> None:
    brain = load_brain(PLUMBING).model_copy(update={"notify": Notify(sms=["+15035550177"])})
    call = pinned_call(brain)
    line = SimulatedLine()
    call.line = line
    busy = BusyLine(call, load_settings(openai_api_key="sim", _env_file=None), FallbackAudio({}, {}, 24000))

    async def over_the_limit(_call: object) -> bool:
        return False

    await busy.answer(admit=over_the_limit)
    assert line.actions == [("hang_up", "rate_limited")]
    finish_call(call, reason="caller_hangup")
    assert (call.outcome, call.end_reason) == ("error", "rate_limited")
    assert at_once(call) == []
